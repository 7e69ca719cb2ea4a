//! Hostile input against a real `printbridge serve` process, over raw TCP.
//!
//! Every request here is written byte by byte by hand (HTTP/1.1 and IPP alike; no IPP library), so
//! the bytes on the wire are exactly the malformed ones we mean. For each malformed request the
//! server must answer with an IPP error status (client-error-bad-request,
//! client-error-request-entity-too-large or, for one over-long value,
//! client-error-request-value-too-long, checked in bytes 2..4 of the IPP response body) or close
//! the connection, and afterwards a Get-Printer-Attributes on a NEW connection must succeed: the
//! server survived. Further tests: clients that vanish mid-upload create no job, clients that leave
//! without reading the response, slowloris-style partial headers are timed out while others are
//! served, HTTP keep-alive, and the server still serves normal requests after all of it. IPP is
//! answered only on the paths of printers and their jobs. Connection exhaustion: 2,000 idle and
//! 500 slowloris connections from other loopback addresses do not lock out a normal client, one
//! address cannot take every connection, and a busy server shortens how long idle ones may wait.
//!
//! Fixed cases live here; random ones are the job of the cargo-fuzz target (`fuzz/`), whose corpus
//! `tests/fuzz_corpus.rs` replays.

mod common;

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use common::Appliance;

/// Read and write timeout of every test connection: a server that neither answers nor closes
/// within this time fails the case instead of hanging the test.
const IO_TIMEOUT: Duration = Duration::from_secs(15);
const RESOURCE: &str = "/ipp/print";

const BAD_REQUEST: u16 = 0x0400;
const TOO_LARGE: u16 = 0x0408;
/// client-error-request-value-too-long (RFC 8011 Appendix B.1.4.10): one value over its limit.
const VALUE_TOO_LONG: u16 = 0x0409;
const BAD_OR_TOO_LARGE: &[u16] = &[BAD_REQUEST, TOO_LARGE];

// ---------------------------------------------------------------------------------------------
// IPP request bytes, by hand (RFC 8010 §3)
// ---------------------------------------------------------------------------------------------

mod tag {
    pub const OPERATION: u8 = 0x01;
    pub const JOB: u8 = 0x02;
    pub const END: u8 = 0x03;
    pub const INTEGER: u8 = 0x21;
    pub const BOOLEAN: u8 = 0x22;
    pub const ENUM: u8 = 0x23;
    pub const BEG_COLLECTION: u8 = 0x34;
    pub const TEXT_LANG: u8 = 0x35;
    pub const NAME_LANG: u8 = 0x36;
    pub const END_COLLECTION: u8 = 0x37;
    pub const NAME: u8 = 0x42;
    pub const KEYWORD: u8 = 0x44;
    pub const URI: u8 = 0x45;
    pub const CHARSET: u8 = 0x47;
    pub const NATURAL_LANGUAGE: u8 = 0x48;
    pub const MIME_MEDIA_TYPE: u8 = 0x49;
    pub const MEMBER_NAME: u8 = 0x4A;
    pub const EXTENSION: u8 = 0x7F;
}

const GET_PRINTER_ATTRIBUTES: u16 = 0x000B;
const PRINT_JOB: u16 = 0x0002;
const GET_JOBS: u16 = 0x000A;

/// An IPP message under construction.
struct Ipp(Vec<u8>);

impl Ipp {
    /// IPP/2.0 header: version, operation-id, request-id.
    fn new(op: u16, request_id: u32) -> Ipp {
        let mut v = vec![2, 0];
        v.extend_from_slice(&op.to_be_bytes());
        v.extend_from_slice(&request_id.to_be_bytes());
        Ipp(v)
    }

    /// The header plus the mandatory operation attributes (RFC 8011 §4.1.4, §4.1.5).
    fn with_prelude(op: u16, request_id: u32, uri: &str) -> Ipp {
        Ipp::new(op, request_id)
            .group(tag::OPERATION)
            .attr(tag::CHARSET, "attributes-charset", b"utf-8")
            .attr(tag::NATURAL_LANGUAGE, "attributes-natural-language", b"en")
            .attr(tag::URI, "printer-uri", uri.as_bytes())
    }

    fn group(mut self, t: u8) -> Ipp {
        self.0.push(t);
        self
    }

    fn attr(self, t: u8, name: &str, value: &[u8]) -> Ipp {
        self.attr_raw(t, name.as_bytes(), value)
    }

    fn attr_raw(mut self, t: u8, name: &[u8], value: &[u8]) -> Ipp {
        self.0.push(t);
        self.0.extend_from_slice(&(name.len() as u16).to_be_bytes());
        self.0.extend_from_slice(name);
        self.0
            .extend_from_slice(&(value.len() as u16).to_be_bytes());
        self.0.extend_from_slice(value);
        self
    }

    /// Arbitrary bytes, for framing that `attr` cannot express (lying lengths, truncation).
    fn raw(mut self, bytes: &[u8]) -> Ipp {
        self.0.extend_from_slice(bytes);
        self
    }

    fn end(mut self) -> Vec<u8> {
        self.0.push(tag::END);
        self.0
    }

    /// Without the end-of-attributes tag.
    fn unterminated(self) -> Vec<u8> {
        self.0
    }
}

/// A well-formed Get-Printer-Attributes asking for one small attribute.
fn get_printer_attributes(uri: &str, request_id: u32) -> Vec<u8> {
    Ipp::with_prelude(GET_PRINTER_ATTRIBUTES, request_id, uri)
        .attr(tag::KEYWORD, "requested-attributes", b"printer-state")
        .end()
}

/// The attribute section of a well-formed Print-Job (the document follows it).
fn print_job_header(uri: &str, request_id: u32, job_name: &str) -> Vec<u8> {
    Ipp::with_prelude(PRINT_JOB, request_id, uri)
        .attr(tag::NAME, "requesting-user-name", b"mallory")
        .attr(tag::NAME, "job-name", job_name.as_bytes())
        .attr(tag::MIME_MEDIA_TYPE, "document-format", b"application/pdf")
        .end()
}

/// Get-Jobs which-jobs=all as the owner of the test jobs (others would not see their job-name).
fn get_jobs_all(uri: &str, request_id: u32) -> Vec<u8> {
    Ipp::with_prelude(GET_JOBS, request_id, uri)
        .attr(tag::NAME, "requesting-user-name", b"mallory")
        .attr(tag::KEYWORD, "which-jobs", b"all")
        .attr(tag::KEYWORD, "requested-attributes", b"job-id")
        .attr(tag::KEYWORD, "", b"job-state")
        .attr(tag::KEYWORD, "", b"job-name")
        .end()
}

// ---------------------------------------------------------------------------------------------
// HTTP/1.1 by hand
// ---------------------------------------------------------------------------------------------

/// An HTTP/1.1 POST of `body` with Content-Type: application/ipp and a truthful Content-Length.
fn http_post(port: u16, body: &[u8]) -> Vec<u8> {
    http_post_claiming(port, body, body.len())
}

/// Like [`http_post`] but with any Content-Length: lying ones included.
fn http_post_claiming(port: u16, body: &[u8], content_length: usize) -> Vec<u8> {
    let mut req = format!(
        "POST {RESOURCE} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/ipp\r\n\
         Content-Length: {content_length}\r\n\r\n"
    )
    .into_bytes();
    req.extend_from_slice(body);
    req
}

/// A POST with Transfer-Encoding: chunked and the given raw chunked body.
fn http_post_chunked(port: u16, raw_chunked_body: &[u8]) -> Vec<u8> {
    let mut req = format!(
        "POST {RESOURCE} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/ipp\r\n\
         Transfer-Encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    req.extend_from_slice(raw_chunked_body);
    req
}

/// One chunk of a chunked body.
fn chunk(data: &[u8]) -> Vec<u8> {
    let mut v = format!("{:x}\r\n", data.len()).into_bytes();
    v.extend_from_slice(data);
    v.extend_from_slice(b"\r\n");
    v
}

#[derive(Debug)]
struct HttpResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl HttpResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The IPP status-code (bytes 2..4 of the body), when this is an IPP response.
    fn ipp_status(&self) -> Option<u16> {
        let is_ipp = self
            .header("content-type")
            .is_some_and(|v| v.starts_with("application/ipp"));
        (is_ipp && self.body.len() >= 8).then(|| u16::from_be_bytes([self.body[2], self.body[3]]))
    }

    fn ipp_request_id(&self) -> Option<u32> {
        (self.body.len() >= 8)
            .then(|| u32::from_be_bytes([self.body[4], self.body[5], self.body[6], self.body[7]]))
    }
}

/// A client connection that reads HTTP responses, keeping bytes that arrive early for the next one.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    fn open(port: u16) -> Conn {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to printbridge");
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        Conn {
            stream,
            buf: Vec::new(),
        }
    }

    /// Reads more bytes into `buf`; `Ok(0)` at EOF.
    fn fill(&mut self) -> io::Result<usize> {
        let mut tmp = [0u8; 16 * 1024];
        let n = self.stream.read(&mut tmp)?;
        self.buf.extend_from_slice(&tmp[..n]);
        Ok(n)
    }

    /// Reads one response. `Ok(None)`: the server closed the connection before sending any byte of it.
    /// A timeout is an error (the server neither answered nor closed).
    fn read_response(&mut self) -> io::Result<Option<HttpResponse>> {
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            if self.fill()? == 0 {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "EOF inside response headers",
                ));
            }
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).into_owned();
        self.buf.drain(..head_end);
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("bad status line {status_line:?}"),
                )
            })?;
        let headers: Vec<(String, String)> = lines
            .filter(|l| !l.is_empty())
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
            .collect();
        let mut resp = HttpResponse {
            status,
            headers,
            body: Vec::new(),
        };
        if (100..200).contains(&status) {
            // An interim response (100 Continue): the real one follows.
            return self.read_response();
        }
        if let Some(len) = resp
            .header("content-length")
            .and_then(|v| v.parse::<usize>().ok())
        {
            while self.buf.len() < len {
                if self.fill()? == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "EOF inside response body",
                    ));
                }
            }
            resp.body = self.buf.drain(..len).collect();
        } else if resp
            .header("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
        {
            loop {
                let line_end = loop {
                    if let Some(i) = find(&self.buf, b"\r\n") {
                        break i;
                    }
                    if self.fill()? == 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "EOF inside chunk size",
                        ));
                    }
                };
                let size_text = String::from_utf8_lossy(&self.buf[..line_end]).into_owned();
                let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16)
                    .map_err(|_| {
                    io::Error::new(io::ErrorKind::InvalidData, "bad chunk size")
                })?;
                self.buf.drain(..line_end + 2);
                while self.buf.len() < size + 2 {
                    if self.fill()? == 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "EOF inside chunk",
                        ));
                    }
                }
                resp.body.extend(self.buf.drain(..size));
                self.buf.drain(..2);
                if size == 0 {
                    break;
                }
            }
        } else {
            while self.fill()? != 0 {}
            resp.body = std::mem::take(&mut self.buf);
        }
        Ok(Some(resp))
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// What became of one request.
#[derive(Debug)]
enum Outcome {
    Response(HttpResponse),
    /// The server closed (FIN or RST) without a response.
    Closed(String),
}

/// Sends `raw` on a new connection (from a second thread, so a server that answers early and stops
/// reading cannot deadlock us) and reads one response.
fn exchange(port: u16, raw: Vec<u8>) -> Outcome {
    exchange_on(port, raw).0
}

/// [`exchange`], also returning the connection for a look at what follows the response.
fn exchange_on(port: u16, raw: Vec<u8>) -> (Outcome, Conn) {
    let mut conn = Conn::open(port);
    let mut writer = conn.stream.try_clone().unwrap();
    let sender = thread::spawn(move || {
        // The server may answer and close before it has read everything: EPIPE/ECONNRESET are fine.
        let _ = writer.write_all(&raw);
        let _ = writer.flush();
    });
    let outcome = match conn.read_response() {
        Ok(Some(r)) => Outcome::Response(r),
        Ok(None) => Outcome::Closed("EOF".into()),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::BrokenPipe
            ) =>
        {
            Outcome::Closed(e.to_string())
        }
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            panic!(
                "no response and no close within {IO_TIMEOUT:?}: the server hangs on this request"
            )
        }
        Err(e) => panic!("reading the response failed: {e}"),
    };
    sender.join().unwrap();
    (outcome, conn)
}

/// Sends a well-formed request on a new connection and returns its response; panics otherwise.
fn request(port: u16, ipp: &[u8]) -> HttpResponse {
    match exchange(port, http_post(port, ipp)) {
        Outcome::Response(r) => r,
        Outcome::Closed(why) => panic!("server closed the connection on a valid request ({why})"),
    }
}

/// The IPP attributes of a response, flattened: (group tag, name, value tag, value bytes). Additional
/// values carry the name of their attribute. Enough for the flat responses these tests read.
fn ipp_attributes(body: &[u8]) -> Vec<(u8, String, u8, Vec<u8>)> {
    let mut out = Vec::new();
    let (mut i, mut group, mut last) = (8usize, 0u8, String::new());
    while i < body.len() {
        let t = body[i];
        if t == tag::END {
            break;
        }
        if t < 0x10 {
            group = t;
            i += 1;
            continue;
        }
        let nl = u16::from_be_bytes([body[i + 1], body[i + 2]]) as usize;
        let name = String::from_utf8_lossy(&body[i + 3..i + 3 + nl]).into_owned();
        let at = i + 3 + nl;
        let vl = u16::from_be_bytes([body[at], body[at + 1]]) as usize;
        let value = body[at + 2..at + 2 + vl].to_vec();
        if nl > 0 {
            last = name;
        }
        out.push((group, last.clone(), t, value));
        i = at + 2 + vl;
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------------------------

/// The server process is still running and a Get-Printer-Attributes on a new connection succeeds.
fn assert_alive(app: &mut Appliance, after: &str) {
    if let Ok(Some(status)) = app.child.try_wait() {
        panic!("printbridge exited ({status}) after: {after}");
    }
    let rid = 0x5A5A_0001;
    let resp = match exchange(
        app.port,
        http_post(app.port, &get_printer_attributes(&app.uri, rid)),
    ) {
        Outcome::Response(r) => r,
        Outcome::Closed(why) => panic!(
            "after {after}: Get-Printer-Attributes on a new connection got no response ({why})"
        ),
    };
    assert_eq!(
        resp.status, 200,
        "after {after}: HTTP status of Get-Printer-Attributes: {resp:?}"
    );
    assert_eq!(
        resp.ipp_status(),
        Some(0x0000),
        "after {after}: IPP status of Get-Printer-Attributes: {resp:?}"
    );
    assert_eq!(
        resp.ipp_request_id(),
        Some(rid),
        "after {after}: request-id not echoed"
    );
}

/// The request was answered with one of the `allowed` IPP error statuses, or the connection closed.
/// With `http_level`, the request is broken at the HTTP layer (request line, headers, chunked framing),
/// so no IPP message ever arrived: an HTTP 4xx (400, 431) is then the right answer too (RFC 9112),
/// provided the server closes the connection after it rather than read on in a byte stream it can no
/// longer frame.
fn assert_rejected(
    case: &str,
    outcome: &Outcome,
    conn: &mut Conn,
    allowed: &[u16],
    echoed_request_id: Option<u32>,
    http_level: bool,
) {
    match outcome {
        Outcome::Closed(why) => eprintln!("{case}: connection closed without a response ({why})"),
        Outcome::Response(resp) if http_level && (400..500).contains(&resp.status) => {
            match conn.read_response() {
                Ok(None) => {}
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
                other => panic!(
                    "{case}: after its HTTP 400 the server did not close the connection: {other:?}"
                ),
            }
            eprintln!("{case}: HTTP {}, then the connection closed", resp.status);
        }
        Outcome::Response(resp) => {
            // IPP errors travel in a 200 OK (RFC 8010 §4.2.1).
            assert_eq!(resp.status, 200, "{case}: HTTP status: {resp:?}");
            let status = resp
                .ipp_status()
                .unwrap_or_else(|| panic!("{case}: the response is not an IPP message: {resp:?}"));
            assert!(
                allowed.contains(&status),
                "{case}: IPP status 0x{status:04x}, expected one of {allowed:04x?}: {resp:?}"
            );
            if let Some(rid) = echoed_request_id {
                assert_eq!(
                    resp.ipp_request_id(),
                    Some(rid),
                    "{case}: request-id not echoed"
                );
            }
            eprintln!("{case}: IPP status 0x{status:04x}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The corpus of malformed requests
// ---------------------------------------------------------------------------------------------

struct Case {
    name: &'static str,
    /// The complete HTTP request bytes.
    http: Vec<u8>,
    allowed: &'static [u16],
    /// The request-id the error response must echo (when the IPP header arrived intact).
    request_id: Option<u32>,
}

const RID: u32 = 0x0102_0304;

/// Every malformed request, as full HTTP bytes.
fn malformed_cases(port: u16, uri: &str) -> Vec<Case> {
    let post = |ipp: Vec<u8>| http_post(port, &ipp);
    let gpa = || Ipp::with_prelude(GET_PRINTER_ATTRIBUTES, RID, uri);
    let mut cases = Vec::new();
    let mut add =
        |name: &'static str, http: Vec<u8>, allowed: &'static [u16], request_id: Option<u32>| {
            cases.push(Case {
                name,
                http,
                allowed,
                request_id,
            })
        };

    add("empty body", post(Vec::new()), &[BAD_REQUEST], None);
    add(
        "truncated header (3 bytes)",
        post(vec![2, 0, 0]),
        &[BAD_REQUEST],
        None,
    );
    add(
        "truncated header (7 bytes)",
        post(vec![2, 0, 0, 0x0B, 0, 0, 0]),
        &[BAD_REQUEST],
        None,
    );
    add(
        "header only, no attribute section",
        post(Ipp::new(GET_PRINTER_ATTRIBUTES, RID).0),
        &[BAD_REQUEST],
        Some(RID),
    );

    // An attribute cut in the middle of its name, with the body ending there.
    add(
        "truncated attribute",
        post(
            Ipp::new(GET_PRINTER_ATTRIBUTES, RID)
                .group(tag::OPERATION)
                .raw(&[tag::CHARSET, 0, 18])
                .raw(b"attri")
                .0,
        ),
        &[BAD_REQUEST],
        Some(RID),
    );
    // value-length 0x1000, only "utf-8" and the end tag follow.
    add(
        "value length past the end",
        post(
            Ipp::new(GET_PRINTER_ATTRIBUTES, RID)
                .group(tag::OPERATION)
                .raw(&[tag::CHARSET, 0, 18])
                .raw(b"attributes-charset")
                .raw(&[0x10, 0x00])
                .raw(b"utf-8")
                .end(),
        ),
        &[BAD_REQUEST],
        Some(RID),
    );
    add(
        "name length past the end",
        post(gpa().raw(&[tag::KEYWORD, 0xFF, 0xFF, b'a']).end()),
        &[BAD_REQUEST, TOO_LARGE],
        Some(RID),
    );
    add(
        "unknown delimiter tag 0x08",
        post(gpa().group(0x08).end()),
        &[BAD_REQUEST],
        Some(RID),
    );
    add(
        "unknown delimiter tag 0x0F",
        post(gpa().group(0x0F).end()),
        &[BAD_REQUEST],
        Some(RID),
    );
    add(
        "delimiter tag 0x00",
        post(gpa().group(0x00).end()),
        &[BAD_REQUEST],
        Some(RID),
    );
    add(
        "extension tag 0x7F",
        post(
            gpa()
                .attr(tag::EXTENSION, "x-ext", &[0, 0, 0, 0x41, 1, 2])
                .end(),
        ),
        &[BAD_REQUEST],
        Some(RID),
    );
    add(
        "value tag 0x80",
        post(gpa().attr(0x80, "x", b"y").end()),
        &[BAD_REQUEST],
        Some(RID),
    );
    add(
        "value tag 0xFF",
        post(gpa().attr(0xFF, "x", b"y").end()),
        &[BAD_REQUEST],
        Some(RID),
    );

    // The `ipp` crate 8.0.0 panics on these: the inner text length points past the value.
    let mut bad_inner = vec![0, 2, b'e', b'n', 0, 200];
    bad_inner.extend_from_slice(b"abc");
    add(
        "textWithLanguage with a bad inner text length",
        post(gpa().attr(tag::TEXT_LANG, "job-name", &bad_inner).end()),
        &[BAD_REQUEST],
        Some(RID),
    );
    add(
        "nameWithLanguage with a bad inner text length",
        post(
            gpa()
                .attr(tag::NAME_LANG, "requesting-user-name", &bad_inner)
                .end(),
        ),
        &[BAD_REQUEST],
        Some(RID),
    );
    add(
        "textWithLanguage with a bad inner language length",
        post(
            gpa()
                .attr(
                    tag::TEXT_LANG,
                    "job-name",
                    &[0xFF, 0xF0, b'e', b'n', 0, 1, b'x'],
                )
                .end(),
        ),
        &[BAD_REQUEST],
        Some(RID),
    );
    add(
        "nameWithLanguage shorter than its length prefixes",
        post(
            gpa()
                .attr(tag::NAME_LANG, "requesting-user-name", &[0])
                .end(),
        ),
        &[BAD_REQUEST],
        Some(RID),
    );
    add(
        "nameWithLanguage with bytes after the inner strings",
        post(
            gpa()
                .attr(
                    tag::NAME_LANG,
                    "requesting-user-name",
                    &[0, 2, b'e', b'n', 0, 1, b'x', 0, 0],
                )
                .end(),
        ),
        &[BAD_REQUEST],
        Some(RID),
    );

    // 200,000 attributes (1.4 MB): far past both the attribute count and the section size.
    let mut many = gpa();
    for _ in 0..200_000 {
        many = many.attr(tag::KEYWORD, "x", b"y");
    }
    add(
        "200,000 attributes",
        post(many.end()),
        BAD_OR_TOO_LARGE,
        None,
    );
    // 2,049 attributes (14 KB): only the attribute count is exceeded.
    let mut some = gpa();
    for _ in 0..2_049 {
        some = some.attr(tag::KEYWORD, "x", b"y");
    }
    add(
        "2,049 attributes",
        post(some.end()),
        &[TOO_LARGE],
        Some(RID),
    );

    add(
        "a value of 40,000 bytes",
        post(
            gpa()
                .attr(tag::NAME, "requesting-user-name", &[b'a'; 40_000])
                .end(),
        ),
        &[VALUE_TOO_LONG],
        Some(RID),
    );
    add(
        "a value of 65,535 bytes",
        post(gpa().attr(0x41, "job-name", &[b'a'; 65_535]).end()),
        &[VALUE_TOO_LONG],
        Some(RID),
    );

    // Collections nested 100 deep (the limit is 8), properly closed.
    let mut deep = gpa()
        .group(tag::JOB)
        .attr(tag::BEG_COLLECTION, "media-col", b"");
    for _ in 0..99 {
        deep = deep
            .attr(tag::MEMBER_NAME, "", b"m")
            .attr(tag::BEG_COLLECTION, "", b"");
    }
    for _ in 0..100 {
        deep = deep.attr(tag::END_COLLECTION, "", b"");
    }
    add(
        "collections nested 100 deep",
        post(deep.end()),
        &[BAD_REQUEST],
        Some(RID),
    );
    // Never closed at all.
    let mut open = gpa()
        .group(tag::JOB)
        .attr(tag::BEG_COLLECTION, "media-col", b"");
    for _ in 0..99 {
        open = open
            .attr(tag::MEMBER_NAME, "", b"m")
            .attr(tag::BEG_COLLECTION, "", b"");
    }
    add(
        "collections nested 100 deep, never closed",
        post(open.end()),
        &[BAD_REQUEST],
        Some(RID),
    );
    add(
        "collection closed by the end-of-attributes tag",
        post(
            gpa()
                .group(tag::JOB)
                .attr(tag::BEG_COLLECTION, "media-col", b"")
                .attr(tag::MEMBER_NAME, "", b"media-type")
                .attr(tag::KEYWORD, "", b"stationery")
                .end(),
        ),
        &[BAD_REQUEST],
        Some(RID),
    );

    // 1setOf with 100,000 values (600 KB) and with 1,025 values (6 KB; the limit is 1,024).
    let mut set = gpa().attr(tag::KEYWORD, "requested-attributes", b"a");
    for _ in 1..100_000 {
        set = set.attr(tag::KEYWORD, "", b"a");
    }
    add(
        "1setOf with 100,000 values",
        post(set.end()),
        BAD_OR_TOO_LARGE,
        None,
    );
    let mut set = gpa().attr(tag::KEYWORD, "requested-attributes", b"a");
    for _ in 1..1_025 {
        set = set.attr(tag::KEYWORD, "", b"a");
    }
    add(
        "1setOf with 1,025 values",
        post(set.end()),
        &[TOO_LARGE],
        Some(RID),
    );

    add(
        "endCollection without begCollection",
        post(
            gpa()
                .group(tag::JOB)
                .attr(tag::END_COLLECTION, "", b"")
                .end(),
        ),
        &[BAD_REQUEST],
        Some(RID),
    );
    add(
        "memberAttrName at top level",
        post(
            gpa()
                .group(tag::JOB)
                .attr(tag::MEMBER_NAME, "", b"media-type")
                .end(),
        ),
        &[BAD_REQUEST],
        Some(RID),
    );
    add(
        "memberAttrName with a name inside a collection",
        post(
            gpa()
                .group(tag::JOB)
                .attr(tag::BEG_COLLECTION, "media-col", b"")
                .attr(tag::MEMBER_NAME, "oops", b"media-type")
                .attr(tag::END_COLLECTION, "", b"")
                .end(),
        ),
        &[BAD_REQUEST],
        Some(RID),
    );
    add(
        "member value without memberAttrName",
        post(
            gpa()
                .group(tag::JOB)
                .attr(tag::BEG_COLLECTION, "media-col", b"")
                .attr(tag::KEYWORD, "", b"x")
                .attr(tag::END_COLLECTION, "", b"")
                .end(),
        ),
        &[BAD_REQUEST],
        Some(RID),
    );
    add(
        "boolean of length 2",
        post(gpa().attr(tag::BOOLEAN, "my-jobs", &[0, 1]).end()),
        &[BAD_REQUEST],
        Some(RID),
    );
    add(
        "boolean of value 2",
        post(gpa().attr(tag::BOOLEAN, "my-jobs", &[2]).end()),
        &[BAD_REQUEST],
        Some(RID),
    );
    add(
        "integer of length 3",
        post(gpa().attr(tag::INTEGER, "limit", &[0, 0, 1]).end()),
        &[BAD_REQUEST],
        Some(RID),
    );
    add(
        "enum of length 0",
        post(gpa().attr(tag::ENUM, "operations-supported", &[]).end()),
        &[BAD_REQUEST],
        Some(RID),
    );
    add(
        "dateTime of length 10",
        post(gpa().attr(0x31, "x-date", &[0; 10]).end()),
        &[BAD_REQUEST],
        Some(RID),
    );
    add(
        "resolution of length 8",
        post(gpa().attr(0x32, "printer-resolution", &[0; 8]).end()),
        &[BAD_REQUEST],
        Some(RID),
    );
    add(
        "rangeOfInteger of length 4",
        post(gpa().attr(0x33, "page-ranges", &[0; 4]).end()),
        &[BAD_REQUEST],
        Some(RID),
    );
    add(
        "invalid UTF-8 in a name value",
        post(
            gpa()
                .attr(tag::NAME, "requesting-user-name", &[b'a', 0xFF, 0xFE, b'b'])
                .end(),
        ),
        &[BAD_REQUEST],
        Some(RID),
    );
    add(
        "invalid UTF-8 in an attribute name",
        post(
            gpa()
                .attr_raw(tag::KEYWORD, &[b'x', 0xC3, 0x28], b"v")
                .end(),
        ),
        &[BAD_REQUEST],
        Some(RID),
    );
    add(
        "request-id 0",
        post(get_printer_attributes(uri, 0)),
        &[BAD_REQUEST],
        Some(0),
    );
    add(
        "additional value without an attribute",
        post(
            Ipp::new(GET_PRINTER_ATTRIBUTES, RID)
                .group(tag::OPERATION)
                .attr(tag::KEYWORD, "", b"x")
                .end(),
        ),
        &[BAD_REQUEST],
        Some(RID),
    );
    add(
        "value before any group",
        post(
            Ipp::new(GET_PRINTER_ATTRIBUTES, RID)
                .attr(tag::CHARSET, "attributes-charset", b"utf-8")
                .end(),
        ),
        &[BAD_REQUEST],
        Some(RID),
    );
    add(
        "attribute section without end tag, then EOF",
        post(gpa().unterminated()),
        &[BAD_REQUEST],
        Some(RID),
    );
    add(
        "no end tag, section still growing past 256 KiB",
        post({
            let mut g = gpa();
            for _ in 0..8 {
                g = g.attr(0x41, "x", &[b'a'; 32_000]);
            }
            g.unterminated()
        }),
        BAD_OR_TOO_LARGE,
        None,
    );
    add(
        "missing operation group",
        post(Ipp::new(GET_PRINTER_ATTRIBUTES, RID).group(tag::JOB).end()),
        &[BAD_REQUEST],
        Some(RID),
    );
    add(
        "charset missing",
        post(
            Ipp::new(GET_PRINTER_ATTRIBUTES, RID)
                .group(tag::OPERATION)
                .attr(tag::URI, "printer-uri", uri.as_bytes())
                .end(),
        ),
        &[BAD_REQUEST],
        Some(RID),
    );
    add(
        "two operation groups",
        post(gpa().group(tag::OPERATION).end()),
        &[BAD_REQUEST],
        Some(RID),
    );

    // Chunked bodies whose chunk sizes are garbage: hyper fails the body before a whole IPP message
    // arrived. An IPP error, an HTTP 400 followed by a close, or a close are all fine (see
    // `assert_rejected`).
    let mut head = chunk(&gpa().0[..8]);
    head.extend_from_slice(b"zz\r\nhello\r\n0\r\n\r\n");
    add(
        "chunked: garbage chunk size after a valid chunk",
        http_post_chunked(port, &head),
        &[BAD_REQUEST],
        None,
    );
    add(
        "chunked: non-hex chunk size",
        http_post_chunked(port, b"GARBAGE\r\n\x02\x00\r\n0\r\n\r\n"),
        &[BAD_REQUEST],
        None,
    );
    add(
        "chunked: chunk size overflowing 64 bits",
        http_post_chunked(
            port,
            b"FFFFFFFFFFFFFFFFFFFFFFFF\r\n\x02\x00\x00\x0b\r\n0\r\n\r\n",
        ),
        &[BAD_REQUEST],
        None,
    );
    add(
        "chunked: negative chunk size",
        http_post_chunked(port, b"-5\r\nabcde\r\n0\r\n\r\n"),
        &[BAD_REQUEST],
        None,
    );
    add(
        "chunked: chunk shorter than its size, then EOF",
        {
            let mut r = http_post_chunked(port, b"100\r\n\x02\x00\x00\x0b");
            r.extend_from_slice(b"\r\n");
            r
        },
        &[BAD_REQUEST],
        None,
    );

    // Broken at the HTTP layer.
    add(
        "http: garbage request line",
        b"GARBAGE\r\n\r\n".to_vec(),
        &[BAD_REQUEST],
        None,
    );
    add(
        "http: 1 MiB header",
        {
            let mut r =
                format!("POST {RESOURCE} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ").into_bytes();
            r.extend_from_slice(&vec![b'a'; 1 << 20]);
            r.extend_from_slice(b"\r\nContent-Type: application/ipp\r\nContent-Length: 0\r\n\r\n");
            r
        },
        &[BAD_REQUEST],
        None,
    );
    add(
        "http: two different Content-Lengths",
        {
            let ipp = get_printer_attributes(uri, RID);
            let mut r = format!(
                "POST {RESOURCE} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/ipp\r\n\
                 Content-Length: {}\r\nContent-Length: 3\r\n\r\n",
                ipp.len()
            )
            .into_bytes();
            r.extend_from_slice(&ipp);
            r
        },
        &[BAD_REQUEST],
        None,
    );
    // Expect: 100-continue (CUPS sends it) with a malformed body.
    add(
        "Expect: 100-continue with a truncated header",
        {
            let mut r = format!(
                "POST {RESOURCE} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/ipp\r\n\
                 Expect: 100-continue\r\nContent-Length: 5\r\n\r\n"
            )
            .into_bytes();
            r.extend_from_slice(&[2, 0, 0, 0x0B, 0]);
            r
        },
        &[BAD_REQUEST],
        None,
    );
    cases
}

#[test]
fn malformed_requests_are_rejected_and_the_server_survives() {
    let tmp = tempfile::tempdir().unwrap();
    let mut app = Appliance::start(tmp.path(), &[]);
    assert_alive(&mut app, "start");

    let cases = malformed_cases(app.port, &app.uri);
    for case in cases {
        let started = Instant::now();
        // A body that ends early leaves the server waiting for the rest: the chunked case with a short
        // chunk is followed by a half-close so the server sees EOF (hyper then fails the body).
        let half_close = case.name.contains("then EOF");
        let (outcome, mut conn) = if half_close {
            let mut conn = Conn::open(app.port);
            conn.stream.write_all(&case.http).unwrap();
            conn.stream.shutdown(Shutdown::Write).unwrap();
            let outcome = match conn.read_response() {
                Ok(Some(r)) => Outcome::Response(r),
                Ok(None) => Outcome::Closed("EOF".into()),
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                    Outcome::Closed(e.to_string())
                }
                Err(e) => panic!("{}: {e}", case.name),
            };
            (outcome, conn)
        } else {
            exchange_on(app.port, case.http)
        };
        let http_level = case.name.starts_with("chunked:") || case.name.starts_with("http:");
        assert_rejected(
            case.name,
            &outcome,
            &mut conn,
            case.allowed,
            case.request_id,
            http_level,
        );
        assert!(
            started.elapsed() < IO_TIMEOUT,
            "{}: took {:?}",
            case.name,
            started.elapsed()
        );
        assert_alive(&mut app, case.name);
    }

    // And it keeps serving ordinary requests: 50 of them, each on its own connection.
    for i in 0..50u32 {
        let resp = request(app.port, &get_printer_attributes(&app.uri, 1000 + i));
        assert_eq!(
            resp.ipp_status(),
            Some(0x0000),
            "normal request {i} after the hostile corpus: {resp:?}"
        );
        assert_eq!(resp.ipp_request_id(), Some(1000 + i));
    }
    assert!(
        app.child.try_wait().unwrap().is_none(),
        "printbridge exited"
    );
}

#[test]
fn http_keep_alive_serves_two_ipp_requests_on_one_connection() {
    let tmp = tempfile::tempdir().unwrap();
    let app = Appliance::start(tmp.path(), &[]);
    let mut conn = Conn::open(app.port);
    for rid in [11u32, 12] {
        conn.stream
            .write_all(&http_post(app.port, &get_printer_attributes(&app.uri, rid)))
            .unwrap();
        let resp = conn
            .read_response()
            .unwrap()
            .unwrap_or_else(|| panic!("connection closed before response {rid}"));
        assert_eq!(resp.status, 200);
        assert_eq!(resp.ipp_status(), Some(0x0000), "{resp:?}");
        assert_eq!(resp.ipp_request_id(), Some(rid));
        assert!(!resp
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close")));
    }
    // A malformed request on a kept-alive connection is answered, and the connection still serves.
    conn.stream
        .write_all(&http_post(app.port, &[2, 0, 0]))
        .unwrap();
    let resp = conn
        .read_response()
        .unwrap()
        .expect("response to the malformed request");
    assert_eq!(resp.ipp_status(), Some(BAD_REQUEST), "{resp:?}");
    conn.stream
        .write_all(&http_post(app.port, &get_printer_attributes(&app.uri, 13)))
        .unwrap();
    let resp = conn
        .read_response()
        .unwrap()
        .expect("third response on the same connection");
    assert_eq!(resp.ipp_status(), Some(0x0000), "{resp:?}");
    assert_eq!(resp.ipp_request_id(), Some(13));
}

/// Jobs the server knows, as (job-id, job-state, job-name).
fn list_jobs(app: &Appliance) -> Vec<(i32, i32, String)> {
    let resp = request(app.port, &get_jobs_all(&app.uri, 77));
    assert_eq!(resp.ipp_status(), Some(0x0000), "Get-Jobs: {resp:?}");
    let mut jobs: Vec<(i32, i32, String)> = Vec::new();
    for (group, name, _, value) in ipp_attributes(&resp.body) {
        if group != tag::JOB {
            continue;
        }
        let int = || i32::from_be_bytes(value[..4].try_into().unwrap());
        match name.as_str() {
            "job-id" => jobs.push((int(), 0, String::new())),
            "job-state" => jobs.last_mut().expect("job-id first").1 = int(),
            "job-name" => {
                jobs.last_mut().expect("job-id first").2 =
                    String::from_utf8_lossy(&value).into_owned()
            }
            _ => {}
        }
    }
    jobs
}

#[test]
fn a_client_vanishing_mid_upload_creates_no_job() {
    let tmp = tempfile::tempdir().unwrap();
    let mut app = Appliance::start(tmp.path(), &[]);
    let mut partial = b"%PDF-1.4\n".to_vec();
    partial.extend_from_slice(&[b'x'; 20_000]);

    // Content-Length promises 1 MB; 20 KB of document arrive, then the client goes away, three ways.
    for (i, how) in ["close", "reset", "half-close"].into_iter().enumerate() {
        let mut body = print_job_header(&app.uri, 100 + i as u32, &format!("vanish-{how}"));
        let claimed = body.len() + 1_000_000;
        body.extend_from_slice(&partial);
        let mut conn = Conn::open(app.port);
        conn.stream
            .write_all(&http_post_claiming(app.port, &body, claimed))
            .unwrap();
        thread::sleep(Duration::from_millis(300));
        match how {
            "close" => drop(conn),
            "reset" => {
                let sock = socket2::SockRef::from(&conn.stream);
                sock.set_linger(Some(Duration::ZERO)).unwrap();
                drop(conn);
            }
            _ => {
                // The server sees EOF mid-body; if it answers, it must not report success.
                conn.stream.shutdown(Shutdown::Write).unwrap();
                match conn.read_response() {
                    Ok(Some(resp)) => {
                        if let Some(status) = resp.ipp_status() {
                            assert!(
                                status >= 0x0400,
                                "Print-Job with a truncated document succeeded: {resp:?}"
                            );
                        }
                    }
                    Ok(None) => {}
                    Err(e) => assert!(
                        !matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                        ),
                        "no answer and no close after the client's half-close: {e}"
                    ),
                }
            }
        }
        assert_alive(&mut app, &format!("Print-Job client vanished ({how})"));
    }

    // A chunked Print-Job whose document turns into garbage chunk sizes half way.
    let mut raw = chunk(&print_job_header(&app.uri, 150, "vanish-chunked-garbage"));
    raw.extend(chunk(&partial));
    raw.extend_from_slice(b"not-a-chunk-size\r\n");
    match exchange(app.port, http_post_chunked(app.port, &raw)) {
        Outcome::Response(resp) => {
            if let Some(status) = resp.ipp_status() {
                assert!(
                    status >= 0x0400,
                    "Print-Job with a broken chunked document succeeded: {resp:?}"
                );
            }
        }
        Outcome::Closed(_) => {}
    }
    assert_alive(
        &mut app,
        "Print-Job with garbage chunk sizes in its document",
    );

    // Give the server time to notice and clean up, then look.
    thread::sleep(Duration::from_secs(1));
    let jobs = list_jobs(&app);
    assert!(
        jobs.is_empty(),
        "jobs were created from vanished uploads: {jobs:?}"
    );
    let printed: Vec<_> = std::fs::read_dir(app.output_dir())
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(
        printed.is_empty(),
        "output from vanished uploads: {printed:?}"
    );

    // Control: the same Print-Job sent in full is accepted and listed, so the empty list above meant
    // something.
    let mut body = print_job_header(&app.uri, 200, "complete");
    body.extend_from_slice(&common::one_page_pdf("hostile input"));
    let resp = request(app.port, &body);
    assert!(
        matches!(resp.ipp_status(), Some(0x0000 | 0x0001)),
        "complete Print-Job: {resp:?}"
    );
    let jobs = list_jobs(&app);
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0].2, "complete");
}

#[test]
fn clients_that_leave_without_reading_the_response_do_no_harm() {
    let tmp = tempfile::tempdir().unwrap();
    let mut app = Appliance::start(tmp.path(), &[]);
    for i in 0..20u32 {
        let mut stream = TcpStream::connect(("127.0.0.1", app.port)).unwrap();
        stream
            .write_all(&http_post(
                app.port,
                &get_printer_attributes(&app.uri, 300 + i),
            ))
            .unwrap();
        if i % 2 == 1 {
            // Abortive close: RST instead of FIN.
            socket2::SockRef::from(&stream)
                .set_linger(Some(Duration::ZERO))
                .unwrap();
        }
        drop(stream);
    }
    // The same with a large response pending (requested-attributes=all) and with a Get-Jobs.
    for i in 0..10u32 {
        let mut stream = TcpStream::connect(("127.0.0.1", app.port)).unwrap();
        let ipp = if i % 2 == 0 {
            Ipp::with_prelude(GET_PRINTER_ATTRIBUTES, 400 + i, &app.uri)
                .attr(tag::KEYWORD, "requested-attributes", b"all")
                .end()
        } else {
            get_jobs_all(&app.uri, 400 + i)
        };
        stream.write_all(&http_post(app.port, &ipp)).unwrap();
        stream.shutdown(Shutdown::Both).unwrap();
    }
    thread::sleep(Duration::from_millis(300));
    assert_alive(&mut app, "clients that left without reading");
}

#[test]
fn slowloris_partial_headers_are_timed_out_while_others_are_served() {
    // The server's default header timeout is 30 s; give it 5 s of slack and no more.
    const DEADLINE: Duration = Duration::from_secs(35);
    let tmp = tempfile::tempdir().unwrap();
    let mut app = Appliance::start(tmp.path(), &[]);
    let port = app.port;
    let started = Instant::now();

    // 8 clients trickle a header byte every 500 ms and never finish; 4 send nothing after connecting;
    // 2 send a request line only.
    let mut slow = Vec::new();
    for i in 0..14 {
        slow.push(thread::spawn(move || -> Result<Duration, String> {
            let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
            s.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
            s.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
            let begin = Instant::now();
            let mut trickle = format!(
                "POST {RESOURCE} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/ipp\r\n"
            )
            .into_bytes();
            trickle.extend_from_slice(b"X-Slow: ");
            trickle.extend_from_slice(&[b'a'; 1000]);
            match i {
                0..8 => {}
                8..12 => trickle.clear(),
                _ => {
                    let line = format!("POST {RESOURCE} HTTP/1.1\r\n");
                    s.write_all(line.as_bytes()).map_err(|e| e.to_string())?;
                    trickle.clear();
                }
            }
            let mut next = 0;
            let mut buf = [0u8; 1024];
            while begin.elapsed() < DEADLINE + Duration::from_secs(3) {
                if next < trickle.len() && s.write_all(&trickle[next..next + 1]).is_err() {
                    return Ok(begin.elapsed()); // reset by the server
                }
                next += 1;
                match s.read(&mut buf) {
                    Ok(_) => return Ok(begin.elapsed()), // EOF, or a 408 response before closing
                    Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
                    Err(_) => return Ok(begin.elapsed()),
                }
            }
            Err(format!("slow client {i} still connected after {:?}", begin.elapsed()))
        }));
    }

    // Meanwhile, everyone else is served promptly.
    let mut served = 0;
    while slow.iter().any(|t| !t.is_finished())
        && started.elapsed() < DEADLINE + Duration::from_secs(5)
    {
        let t0 = Instant::now();
        let resp = request(port, &get_printer_attributes(&app.uri, 500 + served));
        assert_eq!(
            resp.ipp_status(),
            Some(0x0000),
            "request while slow clients hold connections: {resp:?}"
        );
        assert!(
            t0.elapsed() < Duration::from_secs(2),
            "a normal request took {:?} while slow clients wait",
            t0.elapsed()
        );
        served += 1;
        thread::sleep(Duration::from_millis(500));
    }
    assert!(
        served >= 5,
        "only {served} requests served while slow clients were connected"
    );
    for (i, t) in slow.into_iter().enumerate() {
        let closed_after = t.join().unwrap().unwrap_or_else(|e| panic!("{e}"));
        assert!(
            closed_after <= DEADLINE,
            "slow client {i} was only closed after {closed_after:?}"
        );
        eprintln!("slow client {i}: closed by the server after {closed_after:?}");
    }
    assert_alive(&mut app, "slowloris");
}

#[test]
fn a_stalled_attribute_section_is_timed_out() {
    // The HTTP headers arrive whole; the IPP attribute section stops after 20 bytes and the client
    // keeps the connection open. The server must not wait for the rest forever: it answers (with an
    // IPP error) or closes within its header timeout (30 s by default) plus slack, and serves others
    // meanwhile.
    const DEADLINE: Duration = Duration::from_secs(35);
    let tmp = tempfile::tempdir().unwrap();
    let mut app = Appliance::start(tmp.path(), &[]);
    let started = Instant::now();
    let ipp = get_printer_attributes(&app.uri, RID);
    let mut stalled = Vec::new();
    for _ in 0..4 {
        let mut conn = Conn::open(app.port);
        conn.stream
            .write_all(&http_post_claiming(app.port, &ipp[..20], ipp.len()))
            .unwrap();
        conn.stream
            .set_read_timeout(Some(Duration::from_millis(250)))
            .unwrap();
        stalled.push(Some(conn));
    }
    let mut served = 0u32;
    while stalled.iter().any(Option::is_some) {
        assert!(
            started.elapsed() < DEADLINE,
            "the server still waits for the rest of a stalled attribute section after {:?}",
            started.elapsed()
        );
        for slot in stalled.iter_mut() {
            let Some(conn) = slot else { continue };
            match conn.read_response() {
                Ok(Some(resp)) => {
                    let status = resp.ipp_status();
                    assert!(
                        matches!(status, Some(0x0400 | 0x0405)),
                        "stalled request answered with {resp:?}"
                    );
                    eprintln!(
                        "stalled request answered after {:?} with IPP status {status:04x?}",
                        started.elapsed()
                    );
                    *slot = None;
                }
                Ok(None) => {
                    eprintln!("stalled request closed after {:?}", started.elapsed());
                    *slot = None;
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => {
                    eprintln!("stalled request ended after {:?}: {e}", started.elapsed());
                    *slot = None;
                }
            }
        }
        let resp = request(app.port, &get_printer_attributes(&app.uri, 600 + served));
        assert_eq!(resp.ipp_status(), Some(0x0000), "{resp:?}");
        served += 1;
    }
    assert_alive(&mut app, "stalled attribute sections");
}

// ---------------------------------------------------------------------------------------------
// IPP only where a printer is (issue 11 item 5)
// ---------------------------------------------------------------------------------------------

/// A POST of `body` as application/ipp to `path`.
fn http_post_to(port: u16, path: &str, body: &[u8]) -> Vec<u8> {
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/ipp\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    req
}

fn response_to(port: u16, raw: Vec<u8>, what: &str) -> HttpResponse {
    match exchange(port, raw) {
        Outcome::Response(r) => r,
        Outcome::Closed(why) => panic!("{what}: the server closed without an answer ({why})"),
    }
}

#[test]
fn ipp_is_answered_only_on_the_paths_of_printers_and_their_jobs() {
    let tmp = tempfile::tempdir().unwrap();
    let mut app = Appliance::start(tmp.path(), &[]);
    let port = app.port;
    let valid = get_printer_attributes(&app.uri, 7);

    // A valid request posted anywhere but a printer's or a job's path: HTTP 404, no IPP answer.
    for path in [
        "/../../../../etc/passwd",
        "/",
        "/admin",
        "/ipp",
        "/ipp/printer",
    ] {
        let r = response_to(port, http_post_to(port, path, &valid), path);
        assert_eq!(r.status, 404, "POST {path}: {r:?}");
        assert_ne!(
            r.ipp_status(),
            Some(0x0000),
            "POST {path} answered successful-ok"
        );
    }
    // Where a queue or a job could be but is not: client-error-not-found, the request-id echoed.
    for path in ["/ipp/print/../print", "/ipp/print/nope", "/ipp/print/7/x"] {
        let r = response_to(port, http_post_to(port, path, &valid), path);
        assert_eq!(r.ipp_status(), Some(0x0406), "POST {path}: {r:?}");
        assert_eq!(r.ipp_request_id(), Some(7), "POST {path}");
    }

    // The printer's resource and a job's path under it are answered.
    for path in [RESOURCE, "/ipp/print/7"] {
        let r = response_to(port, http_post_to(port, path, &valid), path);
        assert_eq!(r.status, 200, "POST {path}: {r:?}");
        assert_eq!(r.ipp_status(), Some(0x0000), "POST {path}: {r:?}");
        assert_eq!(r.ipp_request_id(), Some(7));
    }

    // The printer-uri must name the resource the request was posted to: client-error-not-found.
    let elsewhere = get_printer_attributes(&format!("ipp://127.0.0.1:{port}/ipp/other"), 8);
    let r = response_to(
        port,
        http_post_to(port, RESOURCE, &elsewhere),
        "other printer-uri",
    );
    assert_eq!(r.ipp_status(), Some(0x0406), "{r:?}");
    // So must a job-uri: a job of another resource is not reached through this one.
    let job_elsewhere = Ipp::new(0x0009, 9)
        .group(tag::OPERATION)
        .attr(tag::CHARSET, "attributes-charset", b"utf-8")
        .attr(tag::NATURAL_LANGUAGE, "attributes-natural-language", b"en")
        .attr(
            tag::URI,
            "job-uri",
            format!("ipp://127.0.0.1:{port}/ipp/other/1").as_bytes(),
        )
        .end();
    let r = response_to(
        port,
        http_post_to(port, RESOURCE, &job_elsewhere),
        "other job-uri",
    );
    assert_eq!(r.ipp_status(), Some(0x0406), "{r:?}");
    assert_alive(&mut app, "requests to paths that are no printer's");
}

// ---------------------------------------------------------------------------------------------
// Connection exhaustion (issue 11 item 2)
// ---------------------------------------------------------------------------------------------

/// Raises this test process's open-files limit to the hard limit; fails unless `needed` fit.
#[allow(clippy::unnecessary_cast)] // rlim_t is 32 bits on some targets
fn raise_open_files(needed: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed in.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        lim.rlim_cur = lim.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
    }
    assert!(
        lim.rlim_cur as u64 >= needed,
        "this test holds {needed} sockets but the hard open-files limit is {}; raise it \
         (`ulimit -Hn`, or LimitNOFILE= for a CI service)",
        lim.rlim_cur
    );
}

/// A TCP connection to the appliance from the loopback address `from` (the whole of 127/8 is
/// loopback, so each address is another client).
fn connect_from(from: [u8; 4], port: u16) -> io::Result<TcpStream> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    let local = std::net::SocketAddr::from((from, 0));
    socket.bind(&local.into())?;
    socket.connect(&std::net::SocketAddr::from(([127, 0, 0, 1], port)).into())?;
    Ok(socket.into())
}

/// Whether the server has closed `s` (EOF or reset); `s` is non-blocking.
fn closed_by_server(s: &mut TcpStream) -> bool {
    let mut b = [0u8; 64];
    match s.read(&mut b) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != io::ErrorKind::WouldBlock,
    }
}

/// Keeps `idle` silent connections and `slow` slowloris connections (a header line every round,
/// never the end of the headers) open from their addresses until `stop`; reopens what the server
/// closes, as an attacker would. Counts the connections the server closed.
struct Siege {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    established: std::sync::mpsc::Receiver<()>,
    worker: thread::JoinHandle<Result<usize, String>>,
}

impl Siege {
    fn start(port: u16, idle: usize, slow: usize, per_address: usize, first_address: u8) -> Siege {
        use std::sync::atomic::{AtomicBool, Ordering};
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let (tx, established) = std::sync::mpsc::channel();
        let flag = stop.clone();
        let worker = thread::spawn(move || -> Result<usize, String> {
            let address = |i: usize| [127, 0, 0, first_address + (i / per_address) as u8];
            let open = |i: usize| -> Result<TcpStream, String> {
                let mut s = connect_from(address(i), port).map_err(|e| format!("connect: {e}"))?;
                if i >= idle {
                    s.write_all(
                        format!("POST {RESOURCE} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n")
                            .as_bytes(),
                    )
                    .map_err(|e| format!("slowloris start: {e}"))?;
                }
                s.set_nonblocking(true).map_err(|e| e.to_string())?;
                Ok(s)
            };
            let mut socks = Vec::with_capacity(idle + slow);
            for i in 0..idle + slow {
                socks.push(open(i)?);
            }
            let _ = tx.send(());
            let mut reopened = 0;
            while !flag.load(Ordering::Relaxed) {
                for (i, s) in socks.iter_mut().enumerate() {
                    let mut gone = closed_by_server(s);
                    if !gone && i >= idle {
                        gone = matches!(s.write(b"X-Slow: a\r\n"), Ok(0) | Err(_));
                    }
                    if gone {
                        *s = open(i)?;
                        reopened += 1;
                    }
                }
                thread::sleep(Duration::from_millis(500));
            }
            Ok(reopened)
        });
        Siege {
            stop,
            established,
            worker,
        }
    }

    fn end(self) -> usize {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.worker
            .join()
            .unwrap()
            .unwrap_or_else(|e| panic!("the siege failed: {e}"))
    }
}

/// Sends `ipp` from the loopback address `from` on a new connection and reads the response.
fn request_from(from: [u8; 4], port: u16, ipp: &[u8]) -> HttpResponse {
    let stream = connect_from(from, port).expect("connect from another loopback address");
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    let mut conn = Conn {
        stream,
        buf: Vec::new(),
    };
    conn.stream.write_all(&http_post(port, ipp)).unwrap();
    match conn.read_response() {
        Ok(Some(r)) => r,
        Ok(None) => panic!("the server closed the normal client's connection without an answer"),
        Err(e) => panic!("the normal client got no answer: {e}"),
    }
}

#[test]
fn thousands_of_idle_and_slowloris_connections_do_not_lock_out_a_normal_client() {
    const IDLE: usize = 2_000;
    const SLOW: usize = 500;
    raise_open_files((IDLE + SLOW) as u64 + 512);
    let tmp = tempfile::tempdir().unwrap();
    let mut app = Appliance::start(tmp.path(), &[]);
    let port = app.port;
    // 50 connections from each of 127.0.0.10 .. 127.0.0.59: under the per-client bound, so the
    // server must really hold them all.
    let siege = Siege::start(port, IDLE, SLOW, 50, 10);
    siege
        .established
        .recv_timeout(Duration::from_secs(120))
        .expect("the idle and slowloris connections could not all be opened");
    // A normal client from another address, several times while the siege goes on (the siege
    // reopens whatever the server closes).
    for round in 0..5u32 {
        let r = request_from(
            [127, 0, 0, 2],
            port,
            &get_printer_attributes(&app.uri, 900 + round),
        );
        assert_eq!(r.status, 200, "round {round}: {r:?}");
        assert_eq!(r.ipp_status(), Some(0x0000), "round {round}: {r:?}");
        assert_eq!(r.ipp_request_id(), Some(900 + round));
        thread::sleep(Duration::from_secs(1));
    }
    let reopened = siege.end();
    eprintln!("the server closed {reopened} idle or slowloris connections during the siege");
    assert_alive(&mut app, "2,000 idle and 500 slowloris connections");
}

#[test]
fn one_client_address_cannot_take_every_connection() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("printbridge.toml");
    std::fs::write(&config, "[server]\nmax_connections_per_client = 8\n").unwrap();
    let mut app = Appliance::start(
        &tmp.path().join("state"),
        &["--config", config.to_str().unwrap()],
    );
    let port = app.port;
    let mut held: Vec<TcpStream> = (0..8)
        .map(|_| connect_from([127, 0, 0, 20], port).unwrap())
        .collect();
    // The ninth from the same address is closed at once, without a request.
    let mut ninth = connect_from([127, 0, 0, 20], port).unwrap();
    ninth.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let mut b = [0u8; 16];
    match ninth.read(&mut b) {
        Ok(0) => {}
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
        other => panic!("the ninth connection from one address was not closed: {other:?}"),
    }
    // The eight held ones are still open, and another address is served.
    for s in &mut held {
        s.set_nonblocking(true).unwrap();
        assert!(
            !closed_by_server(s),
            "a connection within the bound was closed"
        );
    }
    let r = request_from([127, 0, 0, 21], port, &get_printer_attributes(&app.uri, 31));
    assert_eq!(r.ipp_status(), Some(0x0000), "{r:?}");
    // Once one of the eight goes, the address may connect again and is served.
    drop(held.pop());
    thread::sleep(Duration::from_millis(300));
    let r = request_from([127, 0, 0, 20], port, &get_printer_attributes(&app.uri, 32));
    assert_eq!(r.ipp_status(), Some(0x0000), "{r:?}");
    drop(held);
    assert_alive(&mut app, "one address at its connection bound");
}

#[test]
fn a_busy_server_shortens_the_time_idle_connections_may_hold_their_place() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("printbridge.toml");
    // Idle connections get 600 s, but only 1 s once 10 connections are open.
    std::fs::write(
        &config,
        "[server]\nheader_timeout_seconds = 600\nbusy_connections = 10\n\
         busy_header_timeout_seconds = 1\n",
    )
    .unwrap();
    let mut app = Appliance::start(
        &tmp.path().join("state"),
        &["--config", config.to_str().unwrap()],
    );
    let port = app.port;
    // Five idle connections: the server is not busy, they keep their places.
    let mut first: Vec<TcpStream> = (0..5)
        .map(|_| connect_from([127, 0, 0, 30], port).unwrap())
        .collect();
    thread::sleep(Duration::from_secs(3));
    for s in &mut first {
        s.set_nonblocking(true).unwrap();
        assert!(
            !closed_by_server(s),
            "an idle connection was closed while the server was not busy"
        );
        s.set_nonblocking(false).unwrap();
    }
    // Twenty more, held by a client that reopens what the server closes: now it is busy, and idle
    // connections are closed long before their 600 s (nothing would be reopened otherwise).
    let siege = Siege::start(port, 20, 0, 20, 31);
    siege
        .established
        .recv_timeout(Duration::from_secs(60))
        .expect("the idle connections could not be opened");
    thread::sleep(Duration::from_secs(4));
    let reopened = siege.end();
    assert!(
        reopened > 0,
        "no idle connection was closed while the server was busy"
    );
    drop(first);
    let r = request_from([127, 0, 0, 32], port, &get_printer_attributes(&app.uri, 41));
    assert_eq!(r.ipp_status(), Some(0x0000), "{r:?}");
    assert_alive(&mut app, "a busy server");
}
