//! The one IPP-over-HTTP endpoint (RFC 8010 §4): every IPP speaker that serves requests (the
//! appliance's printers, the cloud's Infrastructure Printers) implements [`IppHandler`], and
//! [`respond`] does the HTTP side once: the content-type check, credentials before the body is
//! read, the bounded attribute-section reader (no parser sees bytes it did not frame), framing
//! errors that echo the request-id, the document stream with its idle timeout, the 401 challenge,
//! an optional document after the response (Fetch-Document), and one log line per request.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use futures_util::{StreamExt, TryStreamExt};
use http_body_util::{BodyExt, BodyStream};
use hyper::header::{HeaderName, HeaderValue, CONNECTION, CONTENT_TYPE};
use hyper::{HeaderMap, Request, Response, StatusCode};
use tokio::io::{AsyncRead, AsyncReadExt};

use super::server::{Conn, HttpResponse};
use crate::codec::ipp::{self, FrameError, Limits, Message, Scanner};
use crate::codec::ipp_status::{self as status, Status};

/// The rest of the HTTP request body after the attribute section (the document, if any), or a
/// document sent after the IPP response.
pub type DocumentBody = Box<dyn AsyncRead + Send + Unpin>;

/// How the endpoint frames a handler's requests.
#[derive(Debug, Clone, Copy)]
pub struct EndpointLimits {
    pub limits: Limits,
    /// The attribute section must arrive within this (as long as the HTTP headers get).
    pub section_timeout: Duration,
    /// A document upload that sends nothing for this long is dropped.
    pub document_idle_timeout: Duration,
}

/// What the endpoint knows of a request before its body is read.
pub struct IppHead<'a> {
    /// The HTTP request path (without the query).
    pub path: &'a str,
    pub headers: &'a HeaderMap,
    pub conn: &'a Conn,
    /// The client's address: the peer, or what a trusted reverse proxy says it is.
    pub client: SocketAddr,
}

/// A handler's answer.
pub struct IppReply {
    pub message: Message,
    /// Sent after the IPP response in the same body (Fetch-Document, PWG 5100.18 §6.7).
    pub document: Option<DocumentBody>,
    /// The request lacks acceptable credentials: the HTTP status and headers to answer with (a
    /// 401 challenge, RFC 8010 §4.1.1) around the IPP response.
    pub challenge: Option<(StatusCode, Vec<(HeaderName, HeaderValue)>)>,
    /// For the log line: which printer answered and who asked (a user or a device, by name or
    /// id; never a credential).
    pub printer: String,
    pub who: Option<String>,
}

impl IppReply {
    pub fn new(message: Message, printer: String) -> IppReply {
        IppReply {
            message,
            document: None,
            challenge: None,
            printer,
            who: None,
        }
    }
}

/// A service that answers IPP requests (in the spirit of hickory-dns's `RequestHandler`).
pub trait IppHandler: Send + Sync {
    /// What [`IppHandler::admit`] found out about the request (who sent it, the target).
    type Admitted: Send;

    fn limits(&self) -> EndpointLimits;

    /// Runs before the body is read, so a refusal (no such printer, bad credentials) costs no
    /// upload. `Err` is the HTTP answer as it is.
    fn admit(
        &self,
        head: IppHead<'_>,
    ) -> impl Future<Output = Result<Self::Admitted, HttpResponse>> + Send;

    /// Answers one framed request; `document` is what follows the attribute section.
    fn handle(
        &self,
        request: Message,
        document: DocumentBody,
        admitted: Self::Admitted,
    ) -> impl Future<Output = IppReply> + Send;
}

/// Whether a request carries IPP (`Content-Type: application/ipp`).
pub fn is_ipp(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().to_ascii_lowercase().starts_with("application/ipp"))
}

/// Answers one IPP-over-HTTP request with `handler`.
pub async fn respond<H, B>(
    handler: &H,
    req: Request<B>,
    conn: &Conn,
    client: SocketAddr,
) -> HttpResponse
where
    H: IppHandler,
    B: hyper::body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: std::fmt::Display + Into<Box<dyn std::error::Error + Send + Sync>> + Send + Sync,
{
    if !is_ipp(req.headers()) {
        return plain(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "POST requests must carry application/ipp\n",
        );
    }
    let path = req.uri().path().to_string();
    let (parts, mut body) = req.into_parts();
    let admitted = match handler
        .admit(IppHead {
            path: &path,
            headers: &parts.headers,
            conn,
            client,
        })
        .await
    {
        Ok(a) => a,
        Err(refusal) => return refusal,
    };
    let settings = handler.limits();
    let deadline = tokio::time::Instant::now() + settings.section_timeout;
    let (mut buf, end) = match read_attribute_section(&mut body, &settings.limits, deadline).await {
        Ok(x) => x,
        Err((buf, SectionError::Frame(e))) => return frame_error(&buf, e, client),
        Err((buf, SectionError::TimedOut)) => {
            tracing::info!(peer = %client, "IPP attribute section not received within {:?}", settings.section_timeout);
            let mut r = status_response(
                &buf,
                status::TIMEOUT,
                "the request was not received in time".into(),
            );
            r.headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
            return r;
        }
        Err((_, SectionError::Body(e))) => {
            tracing::debug!(peer = %client, "request body failed: {e}");
            return plain(StatusCode::BAD_REQUEST, "request body could not be read\n");
        }
    };
    let (msg, used) = match ipp::parse_message(&buf[..end], &settings.limits) {
        Ok(x) => x,
        Err(e) => return frame_error(&buf, e, client),
    };
    let rest = buf.split_off(used).freeze();
    let document = document_reader(rest, body, settings.document_idle_timeout);
    let op = msg.code;
    let reply = handler.handle(msg, document, admitted).await;
    tracing::info!(
        op = format_args!("0x{op:04x}"),
        printer = %reply.printer,
        status = format_args!("0x{:04x}", reply.message.code),
        who = reply.who.as_deref().unwrap_or("-"),
        peer = %client,
        "IPP"
    );
    let mut out = Vec::with_capacity(4096);
    ipp::encode_message(&reply.message, &mut out);
    let mut http = match reply.document {
        None => Response::new(Body::from(out)),
        Some(document) => {
            let head =
                futures_util::stream::once(async move { Ok::<Bytes, io::Error>(Bytes::from(out)) });
            let data = tokio_util::io::ReaderStream::new(document);
            Response::new(Body::from_stream(head.chain(data)))
        }
    };
    http.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/ipp"));
    if let Some((code, headers)) = reply.challenge {
        *http.status_mut() = code;
        for (k, v) in headers {
            http.headers_mut().append(k, v);
        }
    }
    http
}

/// The document after the attribute section: the bytes already read, then the rest of the body,
/// each wait for more bounded by `idle`. A client that stops sending mid-document must not hold
/// the connection and its staging file forever; CUPS streams as its filters produce output, so
/// the bound is generous.
fn document_reader<B>(rest: Bytes, body: B, idle: Duration) -> DocumentBody
where
    B: hyper::body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send + Sync,
{
    let stream = BodyStream::new(body)
        .try_filter_map(|frame| std::future::ready(Ok(frame.into_data().ok())))
        .map_err(io::Error::other);
    let stream = futures_util::stream::unfold(Box::pin(stream), move |mut s| async move {
        match tokio::time::timeout(idle, s.try_next()).await {
            Ok(Ok(Some(bytes))) => Some((Ok(bytes), s)),
            Ok(Ok(None)) => None,
            Ok(Err(e)) => Some((Err(e), s)),
            Err(_) => Some((
                Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "document upload stalled",
                )),
                s,
            )),
        }
    });
    let reader = tokio_util::io::StreamReader::new(Box::pin(stream));
    Box::new(std::io::Cursor::new(rest).chain(reader))
}

fn plain(code: StatusCode, body: &'static str) -> HttpResponse {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = code;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// Why [`read_attribute_section`] failed.
#[derive(Debug)]
enum SectionError {
    Frame(FrameError),
    /// The body failed at the HTTP level (broken chunked framing, connection lost).
    Body(String),
    TimedOut,
}

/// Reads `body` until [`Scanner`] finds the end of the IPP attribute section, before `deadline`.
/// Returns the bytes read so far (possibly some document data past the section) and the section's
/// length; on failure, the bytes read so far (to echo the request-id) and why.
async fn read_attribute_section<B>(
    body: &mut B,
    limits: &Limits,
    deadline: tokio::time::Instant,
) -> Result<(BytesMut, usize), (BytesMut, SectionError)>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    let mut buf = BytesMut::new();
    let mut scanner = Scanner::new();
    let mut ended = false;
    loop {
        if buf.len() >= 8 {
            match scanner.feed(&buf, limits) {
                Ok(Some(n)) => return Ok((buf, n)),
                Ok(None) => {}
                Err(e) => return Err((buf, SectionError::Frame(e))),
            }
        }
        if ended {
            return Err((buf, SectionError::Frame(FrameError::Truncated)));
        }
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => return Err((buf, SectionError::TimedOut)),
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    buf.extend_from_slice(&data);
                }
            }
            Ok(Some(Err(e))) => return Err((buf, SectionError::Body(e.to_string()))),
            Ok(None) => ended = true,
        }
    }
}

/// An IPP error response for a request that could not be framed: echoes the request-id when the
/// header arrived, so the client can match it (RFC 8011 §4.1.1). One value longer than a value
/// may be is request-value-too-long (0x0409, RFC 8011 Appendix B.1.4.10: "a variable-length
/// value that is longer than the maximum length"; IPP/1.0's request-uri-too-long had this code);
/// every other limit (the section's size, the number of attributes or values) is the request
/// being too large, request-entity-too-large (0x0408, Appendix B.1.4.9).
fn frame_error(buf: &[u8], e: FrameError, client: SocketAddr) -> HttpResponse {
    tracing::info!(peer = %client, "rejected malformed IPP request: {e}");
    let code = match e {
        FrameError::ValueTooLong { .. } => status::REQUEST_VALUE_TOO_LONG,
        ref e if e.is_too_large() => status::REQUEST_ENTITY_TOO_LARGE,
        _ => status::BAD_REQUEST,
    };
    status_response(buf, code, format!("malformed request: {e}"))
}

/// An IPP response with status `code` to the request whose first bytes are `buf`.
fn status_response(buf: &[u8], code: u16, message: String) -> HttpResponse {
    let mut resp = Status::new(code, message).into_response();
    if buf.len() >= 8 {
        resp.request_id = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
        let v = (buf[0], buf[1]);
        resp.version = if status::version_supported(v) {
            v
        } else {
            (1, 1)
        };
    } else {
        resp.version = (1, 1);
    }
    let mut out = Vec::new();
    ipp::encode_message(&resp, &mut out);
    let mut r = Response::new(Body::from(out));
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/ipp"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::StreamBody;
    use hyper::body::Frame;

    fn gpa_bytes() -> Vec<u8> {
        let mut v = vec![2, 0, 0, 0x0B, 0, 0, 0, 9, 0x01];
        v.extend_from_slice(&[0x47, 0, 18]);
        v.extend_from_slice(b"attributes-charset");
        v.extend_from_slice(&[0, 5]);
        v.extend_from_slice(b"utf-8");
        v.push(0x03);
        v
    }

    type TestBody =
        StreamBody<futures_util::stream::BoxStream<'static, Result<Frame<Bytes>, io::Error>>>;

    /// A body that delivers `parts` and then, unless `ends`, never delivers anything again.
    fn body(parts: Vec<Vec<u8>>, ends: bool) -> TestBody {
        let frames =
            futures_util::stream::iter(parts.into_iter().map(|p| Ok(Frame::data(Bytes::from(p)))));
        let stream = if ends {
            frames.boxed()
        } else {
            frames.chain(futures_util::stream::pending()).boxed()
        };
        StreamBody::new(stream)
    }

    fn soon() -> tokio::time::Instant {
        tokio::time::Instant::now() + Duration::from_millis(200)
    }

    #[tokio::test]
    async fn attribute_section_split_across_frames_is_found() {
        let req = gpa_bytes();
        let mut parts: Vec<Vec<u8>> = req.chunks(3).map(<[u8]>::to_vec).collect();
        parts.push(b"%PDF".to_vec());
        let (buf, end) =
            read_attribute_section(&mut body(parts, false), &Limits::default(), soon())
                .await
                .unwrap();
        assert_eq!(end, req.len());
        assert_eq!(&buf[..end], &req[..]);
    }

    #[tokio::test]
    async fn stalled_attribute_section_times_out() {
        let req = gpa_bytes();
        let started = std::time::Instant::now();
        let (buf, e) = read_attribute_section(
            &mut body(vec![req[..12].to_vec()], false),
            &Limits::default(),
            soon(),
        )
        .await
        .unwrap_err();
        assert!(matches!(e, SectionError::TimedOut), "{e:?}");
        assert_eq!(&buf[..], &req[..12]);
        assert!(started.elapsed() < Duration::from_secs(5));
        let r = status_response(&buf, status::TIMEOUT, "late".into());
        assert_eq!(r.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn truncated_attribute_section_is_a_frame_error() {
        let req = gpa_bytes();
        let (_, e) = read_attribute_section(
            &mut body(vec![req[..12].to_vec()], true),
            &Limits::default(),
            soon(),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(e, SectionError::Frame(FrameError::Truncated)),
            "{e:?}"
        );
    }

    /// An in-process handler: refuses when told to, else echoes the document after a
    /// successful-ok, or answers not-authenticated.
    struct Echo {
        refuse: bool,
        challenge: bool,
    }

    impl IppHandler for Echo {
        type Admitted = String;

        fn limits(&self) -> EndpointLimits {
            EndpointLimits {
                limits: Limits::default(),
                section_timeout: Duration::from_secs(5),
                document_idle_timeout: Duration::from_secs(5),
            }
        }

        async fn admit(&self, head: IppHead<'_>) -> Result<String, HttpResponse> {
            if self.refuse {
                return Err(plain(StatusCode::FORBIDDEN, "no\n"));
            }
            Ok(head.path.to_string())
        }

        async fn handle(&self, request: Message, mut doc: DocumentBody, path: String) -> IppReply {
            let mut data = Vec::new();
            doc.read_to_end(&mut data).await.unwrap();
            let code = if self.challenge {
                status::NOT_AUTHENTICATED
            } else {
                status::OK
            };
            let mut message = Status::new(code, "x").into_response();
            message.request_id = request.request_id;
            let mut reply = IppReply::new(message, path);
            if self.challenge {
                reply.challenge = Some((StatusCode::UNAUTHORIZED, Vec::new()));
            } else {
                reply.document = Some(Box::new(std::io::Cursor::new(data)));
            }
            reply
        }
    }

    fn conn() -> Conn {
        Conn {
            local: None,
            peer: "192.0.2.1:1".parse().unwrap(),
            scheme: "ipp",
        }
    }

    fn post(content_type: &str, body: Vec<u8>) -> Request<http_body_util::Full<Bytes>> {
        Request::post("/ipp/print")
            .header(CONTENT_TYPE, content_type)
            .body(http_body_util::Full::new(Bytes::from(body)))
            .unwrap()
    }

    async fn run(h: &Echo, req: Request<http_body_util::Full<Bytes>>) -> (StatusCode, Bytes) {
        let c = conn();
        let r = respond(h, req, &c, c.peer).await;
        let code = r.status();
        (code, r.into_body().collect().await.unwrap().to_bytes())
    }

    #[tokio::test]
    async fn the_endpoint_checks_the_type_admits_frames_and_streams_the_document_after() {
        let ok = Echo {
            refuse: false,
            challenge: false,
        };
        // Not IPP: 415, the handler never sees it.
        let (code, _) = run(&ok, post("text/plain", gpa_bytes())).await;
        assert_eq!(code, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        // Refused before the body is read: the handler's answer as it is.
        let refuse = Echo {
            refuse: true,
            challenge: false,
        };
        let (code, _) = run(&refuse, post("application/ipp", gpa_bytes())).await;
        assert_eq!(code, StatusCode::FORBIDDEN);
        // Framed, handled; what followed the attribute section comes back after the response.
        let mut body = gpa_bytes();
        body.extend_from_slice(b"%PDF-1.7 document");
        let (code, bytes) = run(&ok, post("application/ipp", body)).await;
        assert_eq!(code, StatusCode::OK);
        assert_eq!(&bytes[2..4], &status::OK.to_be_bytes());
        assert_eq!(&bytes[4..8], &9u32.to_be_bytes());
        assert!(bytes.ends_with(b"%PDF-1.7 document"));
        // Malformed: an IPP error with the request-id, the handler never sees it.
        let (code, bytes) = run(&ok, post("application/ipp", gpa_bytes()[..12].to_vec())).await;
        assert_eq!(code, StatusCode::OK);
        assert_eq!(&bytes[2..4], &status::BAD_REQUEST.to_be_bytes());
        assert_eq!(&bytes[4..8], &9u32.to_be_bytes());
        // A challenge becomes the HTTP status around the IPP response.
        let challenge = Echo {
            refuse: false,
            challenge: true,
        };
        let (code, bytes) = run(&challenge, post("application/ipp", gpa_bytes())).await;
        assert_eq!(code, StatusCode::UNAUTHORIZED);
        assert_eq!(&bytes[2..4], &status::NOT_AUTHENTICATED.to_be_bytes());
    }

    #[tokio::test]
    async fn frame_errors_echo_the_request_id() {
        let mut req = gpa_bytes();
        req[4..8].copy_from_slice(&77u32.to_be_bytes());
        let peer: SocketAddr = "192.0.2.1:1".parse().unwrap();
        let r = frame_error(&req[..10], FrameError::Truncated, peer);
        let bytes = r.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[2..4], &status::BAD_REQUEST.to_be_bytes());
        assert_eq!(&bytes[4..8], &77u32.to_be_bytes());
    }

    #[tokio::test]
    async fn an_over_long_value_is_value_too_long_and_other_limits_entity_too_large() {
        let req = gpa_bytes();
        let peer: SocketAddr = "192.0.2.1:1".parse().unwrap();
        let cases = [
            (
                FrameError::ValueTooLong {
                    len: 40_000,
                    limit: 32_767,
                },
                status::REQUEST_VALUE_TOO_LONG,
            ),
            (
                FrameError::TooManyAttributes(2048),
                status::REQUEST_ENTITY_TOO_LARGE,
            ),
            (
                FrameError::SectionTooLarge(256 * 1024),
                status::REQUEST_ENTITY_TOO_LARGE,
            ),
            (
                FrameError::TooManyValues(1024),
                status::REQUEST_ENTITY_TOO_LARGE,
            ),
            (FrameError::BadTag(0x09), status::BAD_REQUEST),
        ];
        for (e, want) in cases {
            let what = e.to_string();
            let r = frame_error(&req, e, peer);
            let bytes = r.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(&bytes[2..4], &want.to_be_bytes(), "{what}");
        }
    }
}
