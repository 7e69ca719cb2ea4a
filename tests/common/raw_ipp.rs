//! IPP requests encoded byte by byte (RFC 8010 §3.1), for what ipptool and the crate's codec
//! cannot send: names that are not valid text, a compressed document sent as it is. Posted over
//! plain HTTP/1.1 to a server on loopback.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

pub const TAG_OPERATION: u8 = 0x01;
pub const TAG_END: u8 = 0x03;
pub const TAG_INTEGER: u8 = 0x21;
pub const TAG_NAME: u8 = 0x42;
pub const TAG_KEYWORD: u8 = 0x44;
pub const TAG_URI: u8 = 0x45;
pub const TAG_CHARSET: u8 = 0x47;
pub const TAG_LANGUAGE: u8 = 0x48;
pub const TAG_MIME: u8 = 0x49;

/// One attribute (RFC 8010 §3.1.4): value-tag, name-length, name, value-length, value.
pub fn attr(out: &mut Vec<u8>, tag: u8, name: &str, value: &[u8]) {
    out.push(tag);
    out.extend_from_slice(&(name.len() as u16).to_be_bytes());
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(&(value.len() as u16).to_be_bytes());
    out.extend_from_slice(value);
}

/// A Print-Job request (IPP/2.0, request-id 1) to `printer_uri` as user `tester`, with `more`
/// operation attributes (tag, name, value) after the required ones, then `document`.
pub fn print_job_request(
    printer_uri: &str,
    more: &[(u8, &str, &[u8])],
    document: &[u8],
) -> Vec<u8> {
    let mut body = vec![2, 0, 0, 2, 0, 0, 0, 1, TAG_OPERATION];
    attr(&mut body, TAG_CHARSET, "attributes-charset", b"utf-8");
    attr(
        &mut body,
        TAG_LANGUAGE,
        "attributes-natural-language",
        b"en",
    );
    attr(&mut body, TAG_URI, "printer-uri", printer_uri.as_bytes());
    attr(&mut body, TAG_NAME, "requesting-user-name", b"tester");
    for (tag, name, value) in more {
        attr(&mut body, *tag, name, value);
    }
    body.push(TAG_END);
    body.extend_from_slice(document);
    body
}

/// POSTs the IPP request `body` to `path` on 127.0.0.1:`port` (`Connection: close`) and returns
/// the IPP response: the bytes after the HTTP header. Panics when there is no HTTP response.
pub fn post(port: u16, path: &str, body: &[u8], read_timeout: Duration) -> Vec<u8> {
    let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.set_read_timeout(Some(read_timeout)).unwrap();
    write!(
        conn,
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/ipp\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    conn.write_all(body).unwrap();
    let mut response = Vec::new();
    // A reset after the answer still leaves the answer to check.
    let _ = conn.read_to_end(&mut response);
    let start = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| {
            panic!(
                "no HTTP response to POST {path}: {:?}",
                String::from_utf8_lossy(&response)
            )
        })
        + 4;
    response[start..].to_vec()
}

/// The status-code of an IPP response (RFC 8010 §3.1.1).
pub fn status(ipp: &[u8]) -> u16 {
    assert!(ipp.len() >= 8, "IPP response too short: {ipp:02x?}");
    u16::from_be_bytes([ipp[2], ipp[3]])
}

/// The first integer `job-id` in an IPP response, if any.
pub fn job_id(ipp: &[u8]) -> Option<u32> {
    let marker = b"\x21\x00\x06job-id\x00\x04";
    let at = ipp.windows(marker.len()).position(|w| w == marker)? + marker.len();
    Some(u32::from_be_bytes(ipp.get(at..at + 4)?.try_into().unwrap()))
}
