//! Early IPP errors at the HTTP layer: the server answers a request from its attribute section
//! (or its headers) before the document that follows has arrived. Every such answer must reach a
//! client that keeps sending its document while it watches for the answer, as CUPS, ipptool and
//! the phones do, over plain HTTP and TLS, with Content-Length and chunked bodies of 0 B, 1 KiB,
//! 1 MiB and 100 MiB; and the server must neither buffer the unread document nor read it for
//! ever (RFC 9112 §9.6: close in stages, after the client has had the chance to read).
//!
//! The client here is written with tokio and tokio-rustls (trusting the appliance's self-signed
//! certificate) so the test controls how the body is sent; the large bodies are streamed from one
//! 64 KiB block, never held.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::Appliance;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

const KIB: u64 = 1024;
const MIB: u64 = 1024 * 1024;
const BODY_SIZES: [u64; 4] = [0, KIB, MIB, 100 * MIB];
/// Guards against a hung exchange; not a performance bound.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(120);

// ---- IPP requests --------------------------------------------------------------------------------

const TAG_OPERATION: u8 = 0x01;
const TAG_END: u8 = 0x03;
const TAG_CHARSET: u8 = 0x47;
const TAG_LANGUAGE: u8 = 0x48;
const TAG_URI: u8 = 0x45;
const TAG_NAME: u8 = 0x42;
const TAG_MIME: u8 = 0x49;
const PRINT_JOB: u16 = 0x0002;

use common::raw_ipp::attr;

/// A Print-Job attribute section: `version`, `request_id`, then the usual operation attributes,
/// changed by `edit` (which gets the operation group being built).
fn print_job(
    version: (u8, u8),
    request_id: u32,
    printer_uri: &str,
    edit: impl FnOnce(&mut Vec<u8>),
) -> Vec<u8> {
    let mut v = vec![version.0, version.1];
    v.extend_from_slice(&PRINT_JOB.to_be_bytes());
    v.extend_from_slice(&request_id.to_be_bytes());
    v.push(TAG_OPERATION);
    let mut group = Vec::new();
    attr(&mut group, TAG_CHARSET, "attributes-charset", b"utf-8");
    attr(
        &mut group,
        TAG_LANGUAGE,
        "attributes-natural-language",
        b"en",
    );
    attr(&mut group, TAG_URI, "printer-uri", printer_uri.as_bytes());
    attr(&mut group, TAG_NAME, "requesting-user-name", b"tester");
    edit(&mut group);
    v.extend_from_slice(&group);
    v.push(TAG_END);
    v
}

/// One way of getting an early error, and the answer it must get.
struct Case {
    name: &'static str,
    /// The HTTP resource posted to.
    path: String,
    ipp: Vec<u8>,
    /// Extra request header lines (`Name: value`).
    headers: Vec<String>,
    /// The HTTP status codes that are right.
    http_status: &'static [u16],
    /// The IPP status-code of the answer; `None` when the answer is not IPP.
    ipp_status: Option<u16>,
    request_id: u32,
}

fn cases(port: u16) -> Vec<Case> {
    let uri = format!("ipp://127.0.0.1:{port}/ipp/print");
    let ok = |name, ipp: Vec<u8>, status: u16, request_id: u32| Case {
        name,
        path: "/ipp/print".into(),
        ipp,
        headers: Vec::new(),
        http_status: &[200],
        ipp_status: Some(status),
        request_id,
    };
    let missing_charset = {
        // The operation attributes without attributes-charset (RFC 8011 §4.1.4).
        let mut v = vec![2, 0];
        v.extend_from_slice(&PRINT_JOB.to_be_bytes());
        v.extend_from_slice(&14u32.to_be_bytes());
        v.push(TAG_OPERATION);
        attr(&mut v, TAG_URI, "printer-uri", uri.as_bytes());
        v.push(TAG_END);
        v
    };
    let too_large = print_job((2, 0), 15, &uri, |g| {
        // 288 000 bytes of attributes: more than the 256 KiB default [limits] allow.
        for _ in 0..9 {
            attr(g, TAG_NAME, "job-name", &[b'x'; 32000]);
        }
    });
    let nope = format!("ipp://127.0.0.1:{port}/ipp/print/nope");
    vec![
        // RFC 8011 §4.1.8: server-error-version-not-supported.
        ok(
            "bad version",
            print_job((9, 9), 11, &uri, |_| {}),
            0x0503,
            11,
        ),
        // RFC 8011 §4.1.1: request-id 0 is client-error-bad-request.
        ok(
            "bad request-id",
            print_job((1, 1), 0, &uri, |_| {}),
            0x0400,
            0,
        ),
        ok("missing operation attributes", missing_charset, 0x0400, 14),
        // RFC 8011 §4.1.4 / §5.4.6: client-error-document-format-not-supported.
        ok(
            "unsupported document-format",
            print_job((2, 0), 13, &uri, |g| {
                attr(
                    g,
                    TAG_MIME,
                    "document-format",
                    b"application/x-not-a-format",
                )
            }),
            0x040A,
            13,
        ),
        // RFC 8011 Appendix B: client-error-request-entity-too-large.
        ok("too-large request", too_large, 0x0408, 15),
        Case {
            path: "/ipp/print/nope".into(),
            ..ok(
                "not-found URI",
                print_job((2, 0), 16, &nope, |_| {}),
                0x0406,
                16,
            )
        },
    ]
}

/// The unauthenticated case, for an appliance with `print_requires_authentication`: with no
/// credentials the IPP answer is client-error-not-authenticated in an HTTP 401 (decided after the
/// attribute section); with wrong ones, a 401 (429 once the address is locked out) decided from
/// the headers alone.
fn auth_cases(port: u16) -> Vec<Case> {
    let uri = format!("ipp://127.0.0.1:{port}/ipp/print");
    vec![
        Case {
            name: "unauthenticated",
            path: "/ipp/print".into(),
            ipp: print_job((2, 0), 21, &uri, |_| {}),
            headers: Vec::new(),
            http_status: &[401],
            ipp_status: Some(0x0402),
            request_id: 21,
        },
        Case {
            name: "wrong credentials",
            path: "/ipp/print".into(),
            ipp: print_job((2, 0), 22, &uri, |_| {}),
            // "nobody:wrong"
            headers: vec!["Authorization: Basic bm9ib2R5Ondyb25n".into()],
            // 429 once the address is locked out after repeated failures (RFC 6585 §4).
            http_status: &[401, 429],
            ipp_status: None,
            request_id: 22,
        },
    ]
}

// ---- the client --------------------------------------------------------------------------------

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Transport {
    Plain,
    Tls,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Framing {
    ContentLength,
    Chunked,
}

fn tls_connector(cert: &Path) -> tokio_rustls::TlsConnector {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(cert).expect("read the appliance's certificate") {
        roots.add(c.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

async fn connect(port: u16, transport: Transport, tls: &tokio_rustls::TlsConnector) -> Box<dyn Io> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    match transport {
        Transport::Plain => Box::new(tcp),
        Transport::Tls => {
            let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
            Box::new(tls.connect(name, tcp).await.expect("TLS handshake"))
        }
    }
}

/// The answer as the client read it.
#[derive(Debug)]
struct Answer {
    http_status: u16,
    body: Vec<u8>,
}

/// Reads one HTTP/1.1 response with a Content-Length body (what the server sends for IPP).
async fn read_response(r: &mut (impl AsyncRead + Unpin)) -> Result<Answer, String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16384];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = r
            .read(&mut chunk)
            .await
            .map_err(|e| format!("reading the response head after {} bytes: {e}", buf.len()))?;
        if n == 0 {
            return Err(format!(
                "connection closed after {} bytes of response head",
                buf.len()
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let http_status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status line in {head:?}"))?;
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .ok_or_else(|| format!("no Content-Length in {head:?}"))?;
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        let n = r.read(&mut chunk).await.map_err(|e| {
            format!(
                "reading the response body after {} of {length} bytes: {e}",
                body.len()
            )
        })?;
        if n == 0 {
            return Err(format!(
                "connection closed after {} of {length} body bytes",
                body.len()
            ));
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    Ok(Answer { http_status, body })
}

/// Sends the request head, the IPP attribute section and `doc_len` bytes of document (streamed
/// from one block) until done or `stop` is set. Returns the document bytes written.
async fn send_request(
    w: &mut (impl AsyncWrite + Unpin),
    case: &Case,
    doc_len: u64,
    framing: Framing,
    stop: &AtomicBool,
) -> std::io::Result<u64> {
    let mut head = format!(
        "POST {} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/ipp\r\n",
        case.path
    );
    for h in &case.headers {
        head.push_str(h);
        head.push_str("\r\n");
    }
    match framing {
        Framing::ContentLength => head.push_str(&format!(
            "Content-Length: {}\r\n\r\n",
            case.ipp.len() as u64 + doc_len
        )),
        Framing::Chunked => head.push_str("Transfer-Encoding: chunked\r\n\r\n"),
    }
    let frame = |data: &[u8]| -> Vec<u8> {
        match framing {
            Framing::ContentLength => data.to_vec(),
            Framing::Chunked => {
                let mut v = format!("{:x}\r\n", data.len()).into_bytes();
                v.extend_from_slice(data);
                v.extend_from_slice(b"\r\n");
                v
            }
        }
    };
    let mut first = head.into_bytes();
    first.extend_from_slice(&frame(&case.ipp));
    w.write_all(&first).await?;
    let mut block = b"%PDF-1.4\n".to_vec();
    block.resize(64 * KIB as usize, b'.');
    let mut sent = 0u64;
    while sent < doc_len {
        if stop.load(Ordering::SeqCst) {
            return Ok(sent);
        }
        let n = (doc_len - sent).min(block.len() as u64) as usize;
        w.write_all(&frame(&block[..n])).await?;
        sent += n as u64;
    }
    if framing == Framing::Chunked {
        w.write_all(b"0\r\n\r\n").await?;
    }
    w.flush().await?;
    Ok(sent)
}

/// One exchange: sends `case` with a document of `doc_len` bytes while reading the answer, and
/// stops sending once the answer is complete. Like CUPS (`cupsWriteRequestData` checks for an
/// answer after each write and gives up on a failed write), a write that fails before the answer
/// has been read loses the exchange: that is how a reset connection loses the answer for real
/// clients even though its bytes may already sit in the client's socket.
async fn exchange(
    port: u16,
    tls: &tokio_rustls::TlsConnector,
    case: &Case,
    doc_len: u64,
    transport: Transport,
    framing: Framing,
) -> Result<Answer, String> {
    let io = connect(port, transport, tls).await;
    let (mut r, mut w) = tokio::io::split(io);
    let stop = AtomicBool::new(false);
    let sending = async {
        match send_request(&mut w, case, doc_len, framing, &stop).await {
            // Once the answer is in, the server may close: later write errors do not matter.
            Err(e) if !stop.load(Ordering::SeqCst) => Err(format!(
                "a write failed before the answer had been read ({e}); CUPS gives up here"
            )),
            _ => Ok(()),
        }
    };
    let reading = async {
        let answer = read_response(&mut r).await;
        stop.store(true, Ordering::SeqCst);
        answer
    };
    let (answer, sent) =
        tokio::time::timeout(EXCHANGE_TIMEOUT, async { tokio::join!(reading, sending) })
            .await
            .map_err(|_| format!("no answer within {EXCHANGE_TIMEOUT:?}"))?;
    sent?;
    answer
}

fn check(case: &Case, answer: &Answer) -> Result<(), String> {
    if !case.http_status.contains(&answer.http_status) {
        return Err(format!(
            "HTTP status {} (want {:?})",
            answer.http_status, case.http_status
        ));
    }
    let Some(want) = case.ipp_status else {
        return Ok(());
    };
    let b = &answer.body;
    if b.len() < 9 || *b.last().unwrap() != TAG_END {
        return Err(format!("not a whole IPP response: {b:02x?}"));
    }
    let status = u16::from_be_bytes([b[2], b[3]]);
    let id = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
    if (status, id) != (want, case.request_id) {
        return Err(format!(
            "IPP status 0x{status:04x} request-id {id} (want 0x{want:04x}, {})",
            case.request_id
        ));
    }
    Ok(())
}

/// Peak resident memory of a process, from /proc (VmHWM).
fn peak_rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmHWM in /proc/PID/status")
        * 1024
}

/// Runs every case × body size × transport × framing against the server on `port` (whose
/// self-signed certificate is `cert`), four exchanges at a time; returns the failures.
async fn run_matrix(port: u16, cert: &Path, cases: Vec<Case>) -> Vec<String> {
    let tls = tls_connector(cert);
    let cases = Arc::new(cases);
    let mut cells = Vec::new();
    for c in 0..cases.len() {
        for &size in &BODY_SIZES {
            for transport in [Transport::Plain, Transport::Tls] {
                for framing in [Framing::ContentLength, Framing::Chunked] {
                    cells.push((c, size, transport, framing));
                }
            }
        }
    }
    let limit = Arc::new(tokio::sync::Semaphore::new(4));
    let mut tasks = tokio::task::JoinSet::new();
    for (c, size, transport, framing) in cells {
        let (cases, tls, limit) = (cases.clone(), tls.clone(), limit.clone());
        tasks.spawn(async move {
            let _slot = limit.acquire().await.unwrap();
            let case = &cases[c];
            let outcome = exchange(port, &tls, case, size, transport, framing)
                .await
                .and_then(|a| check(case, &a));
            outcome.map_err(|e| {
                format!(
                    "{} / {size} B / {transport:?} / {framing:?}: {e}",
                    case.name
                )
            })
        });
    }
    let mut failures = Vec::new();
    while let Some(r) = tasks.join_next().await {
        if let Err(e) = r.unwrap() {
            failures.push(e);
        }
    }
    failures.sort();
    failures
}

fn certificate(app: &Appliance) -> std::path::PathBuf {
    app.state_dir.join("tls/certificate.pem")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn every_early_error_reaches_a_client_that_is_still_sending() {
    let state = tempfile::tempdir().unwrap();
    let app = Appliance::start(state.path(), &[]);
    let before = peak_rss_bytes(app.child.id());
    let failures = runtime().block_on(run_matrix(app.port, &certificate(&app), cases(app.port)));
    let peak = peak_rss_bytes(app.child.id());
    println!(
        "appliance peak RSS: {} MiB before the exchanges, {} MiB after",
        before / MIB,
        peak / MIB
    );
    assert!(
        failures.is_empty(),
        "{} exchange(s) lost or got the wrong answer:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // 100 MiB documents were offered 24 times: a server that buffered one would show it.
    assert!(
        peak - before < 40 * MIB,
        "the appliance's peak RSS grew from {} to {} MiB: did it buffer an unread document?",
        before / MIB,
        peak / MIB
    );
}

#[test]
fn refusals_for_missing_or_wrong_credentials_reach_a_client_that_is_still_sending() {
    let state = tempfile::tempdir().unwrap();
    let config = state.path().join("printbridge.toml");
    std::fs::write(&config, "[auth]\nprint_requires_authentication = true\n").unwrap();
    let app = Appliance::start(state.path(), &["--config", config.to_str().unwrap()]);
    let failures = runtime().block_on(run_matrix(
        app.port,
        &certificate(&app),
        auth_cases(app.port),
    ));
    assert!(
        failures.is_empty(),
        "{} exchange(s) lost or got the wrong answer:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// A client that reads the answer and then goes on sending its 100 MiB document without looking
/// again: the server must stop reading (the lingering close is bounded in bytes and time), so the
/// client's writes fail long before the whole document is out.
#[test]
fn a_client_that_keeps_sending_after_the_answer_is_cut_off() {
    let state = tempfile::tempdir().unwrap();
    let app = Appliance::start(state.path(), &[]);
    let tls = tls_connector(&certificate(&app));
    let case = cases(app.port).remove(1); // bad request-id
    runtime().block_on(async {
        for transport in [Transport::Plain, Transport::Tls] {
            let io = connect(app.port, transport, &tls).await;
            let (mut r, mut w) = tokio::io::split(io);
            let never = AtomicBool::new(false);
            let doc = 100 * MIB;
            let (answer, sent) = tokio::time::timeout(EXCHANGE_TIMEOUT, async {
                tokio::join!(
                    read_response(&mut r),
                    send_request(&mut w, &case, doc, Framing::ContentLength, &never)
                )
            })
            .await
            .expect("the exchange ends");
            let answer = answer.unwrap_or_else(|e| panic!("{transport:?}: {e}"));
            check(&case, &answer).unwrap_or_else(|e| panic!("{transport:?}: {e}"));
            assert!(
                sent.is_err(),
                "{transport:?}: the server read all {doc} bytes of a document nobody wanted"
            );
        }
    });
}

/// The cloud's Infrastructure Printers are served through the same listener code: a bad request
/// (request-id 0, RFC 8011 §4.1.1) and a printer that does not exist (client-error-not-found),
/// each with every body size, transport and framing, reach the client too.
#[test]
fn the_clouds_early_errors_reach_a_client_that_is_still_sending() {
    let data = tempfile::tempdir().unwrap();
    let cloud = common::cloud::start_cloud_with(data.path(), None, None, &["--tls-self-signed"]);
    let port: u16 = cloud
        .base
        .rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .unwrap_or_else(|| panic!("no port in {}", cloud.base));
    // A printer id of the right form that names no printer.
    let path = "/ipp/print/0b0e2a6e-93f5-4bd4-9c4f-3f1d2b7c5a10";
    let uri = format!("ipp://127.0.0.1:{port}{path}");
    let case = |name, ipp, status, request_id| Case {
        name,
        path: path.into(),
        ipp,
        headers: Vec::new(),
        http_status: &[200],
        ipp_status: Some(status),
        request_id,
    };
    let cases = vec![
        case(
            "cloud: bad request-id",
            print_job((2, 0), 0, &uri, |_| {}),
            0x0400,
            0,
        ),
        case(
            "cloud: no such printer",
            print_job((2, 0), 31, &uri, |_| {}),
            0x0406,
            31,
        ),
    ];
    let cert = data.path().join("tls/certificate.pem");
    let failures = runtime().block_on(run_matrix(port, &cert, cases));
    assert!(
        failures.is_empty(),
        "{} exchange(s) lost or got the wrong answer:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
