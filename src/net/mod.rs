//! The only code that binds or accepts sockets: listeners (IPv4 and IPv6), and HTTP/1.1 serving of IPP
//! (RFC 8010 §4) with keep-alive, chunked bodies and `Expect: 100-continue` (hyper handles those), and
//! the printer icons; every other request goes to the web pages ([`crate::web`]). Request bytes are
//! framed with the bounded IPP reader before any parser sees them; the document streams on to the
//! spool.

pub mod linger;
pub mod page;
pub mod router;
pub mod tls;

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::TryStreamExt;
use http_body_util::{BodyExt, BodyStream, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, AUTHORIZATION, CONNECTION, CONTENT_TYPE, HOST};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::codec::ipp::{self, FrameError, Scanner};
use crate::codec::ipp_status::{self as status, Status};
use crate::ipp::{DocumentBody, Printer, RequestContext};

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
}

/// Binds `addr`. IPv6 wildcard sockets are IPv6-only so that `0.0.0.0` and `[::]` can both be
/// listed on the same port, as the default configuration does.
pub fn bind(addr: SocketAddr) -> Result<TcpListener, NetError> {
    let err = |source| NetError::Bind { addr, source };
    let domain = if addr.is_ipv6() {
        socket2::Domain::IPV6
    } else {
        socket2::Domain::IPV4
    };
    let socket = socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))
        .map_err(err)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true).map_err(err)?;
    }
    socket.set_reuse_address(true).map_err(err)?;
    socket.set_nonblocking(true).map_err(err)?;
    socket.bind(&addr.into()).map_err(err)?;
    socket.listen(1024).map_err(err)?;
    TcpListener::from_std(socket.into()).map_err(err)
}

/// What the HTTP layer serves.
pub struct HttpService {
    /// The default queue, at `/ipp/print`.
    pub printer: Arc<Printer>,
    /// The `[[queue]]`s, each at its own resource (`/ipp/print/NAME`).
    pub queues: Vec<Arc<Printer>>,
    pub icons: page::Icons,
    pub header_timeout: Duration,
    /// A document upload that sends nothing for this long is dropped.
    pub document_idle_timeout: Duration,
    /// TLS on the same port (first byte 0x16) and by HTTP Upgrade; `None` serves plain HTTP only.
    pub tls: Option<tls::Tls>,
    /// Connections served at once; more wait in the kernel's accept queue.
    pub connections: Arc<tokio::sync::Semaphore>,
    /// The web pages (every request that is not IPP) and the authentication of all requests.
    pub web: crate::web::Web,
}

/// The first byte of a TLS ClientHello record (RFC 8446 §5.1: content type handshake).
const TLS_HANDSHAKE: u8 = 0x16;

/// Accepts connections on `listener` until `shutdown` turns true; each connection is served on
/// its own task, and a failing connection never affects the others. Plain HTTP and TLS share the
/// port, as with CUPS: a first byte of 0x16 starts a TLS handshake.
pub async fn serve(
    listener: TcpListener,
    service: Arc<HttpService>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let permit = tokio::select! {
            p = service.connections.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
            _ = shutdown.changed() => return,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let _ = stream.set_nodelay(true);
        let local = stream.local_addr().ok();
        let service = service.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            // Shared with a connection upgraded to TLS (RFC 2817), which outlives this task.
            let permit = ConnectionPermit(Arc::new(permit));
            let mut first = [0u8; 1];
            let peeked =
                tokio::time::timeout(service.header_timeout, stream.peek(&mut first)).await;
            let is_tls = match peeked {
                Ok(Ok(1)) => first[0] == TLS_HANDSHAKE,
                // Silent for the whole header timeout, gone, or failed: close now. Handing the
                // connection to hyper would give a silent client a second header timeout.
                _ => return,
            };
            match (&service.tls, is_tls) {
                (Some(tls), true) => {
                    match tokio::time::timeout(service.header_timeout, tls.acceptor.accept(stream))
                        .await
                    {
                        Ok(Ok(tls_stream)) => {
                            serve_http(tls_stream, service, local, peer, "ipps", shutdown, permit)
                                .await
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, "TLS handshake failed: {e}"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
                _ => serve_http(stream, service, local, peer, "ipp", shutdown, permit).await,
            }
        });
    }
}

/// A connection's place in [`HttpService::connections`], held until the connection closes (also
/// after an upgrade to TLS, which hyper serves on another task).
#[derive(Clone)]
struct ConnectionPermit(#[allow(dead_code)] Arc<tokio::sync::OwnedSemaphorePermit>);

/// Serves HTTP/1.1 on one connection (plain, TLS, or upgraded to TLS) until it closes.
fn serve_http<I>(
    io: I,
    service: Arc<HttpService>,
    local: Option<SocketAddr>,
    peer: SocketAddr,
    scheme: &'static str,
    mut shutdown: watch::Receiver<bool>,
    permit: ConnectionPermit,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    Box::pin(async move {
        let header_timeout = service.header_timeout;
        let svc_service = service.clone();
        let svc_shutdown = shutdown.clone();
        let svc = hyper::service::service_fn(move |mut req: Request<Incoming>| {
            let service = svc_service.clone();
            let shutdown = svc_shutdown.clone();
            req.extensions_mut().insert(permit.clone());
            async move { Ok::<_, Infallible>(service.route(req, local, peer, scheme, shutdown).await) }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(header_timeout)
            .keep_alive(true)
            .serve_connection(TokioIo::new(linger::LingeringClose::new(io)), svc)
            .with_upgrades();
        tokio::pin!(conn);
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(%peer, "connection ended: {e}");
                }
            }
            _ = shutdown.changed() => {
                conn.as_mut().graceful_shutdown();
                let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
            }
        }
    })
}

/// Whether a request asks to switch this connection to TLS (RFC 2817 §3: `Upgrade: TLS/1.x`),
/// as `ipptool -E` and CUPS do.
fn wants_tls_upgrade(req: &Request<Incoming>) -> bool {
    req.headers()
        .get(hyper::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|p| p.trim().to_ascii_uppercase().starts_with("TLS/"))
        })
}

type HttpResponse = Response<Full<Bytes>>;

fn plain(status: StatusCode, body: &str) -> HttpResponse {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// The `host[:port]` to put in URIs: the Host header when it is well-formed, else the local address.
fn request_host(req: &Request<Incoming>, local: Option<SocketAddr>) -> String {
    let from_header = req
        .headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 255
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.:[]%_".contains(&b))
        })
        .map(str::to_string);
    match (from_header, local) {
        (Some(h), Some(l)) if !h.contains(':') || h.ends_with(']') => format!("{h}:{}", l.port()),
        (Some(h), _) => h,
        (None, Some(l)) => l.to_string(),
        (None, None) => "localhost".into(),
    }
}

impl HttpService {
    async fn route(
        self: &Arc<Self>,
        mut req: Request<Incoming>,
        local: Option<SocketAddr>,
        peer: SocketAddr,
        scheme: &'static str,
        shutdown: watch::Receiver<bool>,
    ) -> HttpResponse {
        let host = request_host(&req, local);
        let path = req.uri().path().to_string();
        let is_options = req.method() == Method::OPTIONS;
        if let (Some(tls), "ipp", true, true) =
            (&self.tls, scheme, is_options, wants_tls_upgrade(&req))
        {
            // RFC 2817 §3.3: answer 101, run the TLS handshake on the same connection, then send the
            // response to the original request (OPTIONS) over TLS — CUPS waits for it.
            let on_upgrade = hyper::upgrade::on(&mut req);
            let tls = tls.clone();
            let service = self.clone();
            let Some(permit) = req.extensions_mut().remove::<ConnectionPermit>() else {
                return plain(StatusCode::INTERNAL_SERVER_ERROR, "no connection permit\n");
            };
            tokio::spawn(async move {
                match on_upgrade.await {
                    // As on the direct TLS path: a client that never finishes the handshake is
                    // dropped after the header timeout, not held forever.
                    Ok(upgraded) => match tokio::time::timeout(
                        service.header_timeout,
                        tls.acceptor.accept(TokioIo::new(upgraded)),
                    )
                    .await
                    {
                        Ok(Ok(mut stream)) => {
                            use tokio::io::AsyncWriteExt;
                            let answer = b"HTTP/1.1 200 OK\r\nAllow: GET, HEAD, OPTIONS, POST\r\nContent-Length: 0\r\n\r\n";
                            if stream.write_all(answer).await.is_ok()
                                && stream.flush().await.is_ok()
                            {
                                serve_http(stream, service, local, peer, "ipps", shutdown, permit)
                                    .await;
                            }
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, "TLS handshake after Upgrade failed: {e}")
                        }
                        Err(_) => tracing::debug!(%peer, "TLS handshake after Upgrade timed out"),
                    },
                    Err(e) => tracing::debug!(%peer, "HTTP Upgrade failed: {e}"),
                }
            });
            let mut r = Response::new(Full::new(Bytes::new()));
            *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
            r.headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("Upgrade"));
            r.headers_mut().insert(
                hyper::header::UPGRADE,
                HeaderValue::from_static("TLS/1.2,HTTP/1.1"),
            );
            return r;
        }
        match (req.method(), path.as_str()) {
            (&Method::OPTIONS, _) => {
                let mut r = plain(StatusCode::OK, "");
                r.headers_mut().insert(
                    hyper::header::ALLOW,
                    HeaderValue::from_static("GET, HEAD, OPTIONS, POST"),
                );
                r
            }
            (&Method::POST, _) => {
                let is_ipp = req
                    .headers()
                    .get(CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.trim().to_ascii_lowercase().starts_with("application/ipp"));
                if !is_ipp {
                    if crate::web::takes_forms(&path) {
                        return self
                            .web
                            .handle(req, crate::web::Conn { host, scheme, peer })
                            .await;
                    }
                    return plain(
                        StatusCode::UNSUPPORTED_MEDIA_TYPE,
                        "POST requests must carry application/ipp\n",
                    );
                }
                // Credentials are checked before the request is read: a refusal costs no upload.
                let conn = crate::web::Conn { host, scheme, peer };
                let authorization = req.headers().get(AUTHORIZATION).map(HeaderValue::as_bytes);
                let identity = match self
                    .web
                    .auth
                    .authenticate(authorization, peer.ip(), conn.is_secure())
                    .await
                {
                    Ok(identity) => identity,
                    Err(e) => return crate::web::ipp_refusal(&e, self.tls.is_some()),
                };
                let ctx = RequestContext {
                    host: conn.host.clone(),
                    scheme,
                    is_admin: identity.as_ref().is_some_and(|i| i.admin),
                    authenticated_user: identity.map(|i| i.name),
                };
                self.ipp(req, &path, ctx, peer).await
            }
            (&Method::GET | &Method::HEAD, p) if p.starts_with("/icons/") => {
                match self.icons.get(p) {
                    Some(png) => {
                        let mut r = Response::new(Full::new(png));
                        r.headers_mut()
                            .insert(CONTENT_TYPE, HeaderValue::from_static("image/png"));
                        r
                    }
                    None => plain(StatusCode::NOT_FOUND, "no such icon\n"),
                }
            }
            _ => {
                self.web
                    .handle(req, crate::web::Conn { host, scheme, peer })
                    .await
            }
        }
    }

    /// Every queue, the default one first.
    fn all_queues(&self) -> impl Iterator<Item = &Arc<Printer>> {
        std::iter::once(&self.printer).chain(self.queues.iter())
    }

    /// The queue an IPP request is for: the one whose resource (or one of whose jobs) the HTTP
    /// request path names; else, for a client that posts elsewhere (e.g. to `/`), the one its
    /// job-uri or printer-uri names; else the default queue, which answers
    /// client-error-not-found for a printer-uri that is not its own, as it always has.
    fn queue_for(&self, path: &str, msg: &ipp::Message) -> &Arc<Printer> {
        if let Some(p) = self.all_queues().find(|p| p.answers_at(path)) {
            return p;
        }
        for target in ["job-uri", "printer-uri"] {
            let named = msg
                .group(ipp::tag::OPERATION)
                .and_then(|g| g.get(target))
                .and_then(|a| a.first())
                .and_then(ipp::Value::as_str)
                .map(crate::ipp::uri_path);
            if let Some(target_path) = named {
                if let Some(p) = self.all_queues().find(|p| p.answers_at(&target_path)) {
                    return p;
                }
            }
        }
        &self.printer
    }

    async fn ipp(
        &self,
        req: Request<Incoming>,
        path: &str,
        ctx: RequestContext,
        peer: SocketAddr,
    ) -> HttpResponse {
        // The same for every queue: they all come from [limits].
        let limits = self.printer.config.limits;
        let mut body = req.into_body();
        // The attribute section gets as long as the HTTP headers did: a client that stalls in it
        // would otherwise hold the connection (and its buffer) forever.
        let deadline = tokio::time::Instant::now() + self.header_timeout;
        let (mut buf, end) = match read_attribute_section(&mut body, &limits, deadline).await {
            Ok(x) => x,
            Err((buf, SectionError::Frame(e))) => return ipp_error(&buf, e, peer),
            Err((buf, SectionError::TimedOut)) => {
                tracing::info!(%peer, "IPP attribute section not received within {:?}", self.header_timeout);
                let mut r = ipp_status_response(
                    &buf,
                    CLIENT_ERROR_TIMEOUT,
                    "the request was not received in time".into(),
                );
                r.headers_mut()
                    .insert(CONNECTION, HeaderValue::from_static("close"));
                return r;
            }
            Err((_, SectionError::Body(e))) => {
                tracing::debug!(%peer, "request body failed: {e}");
                return plain(StatusCode::BAD_REQUEST, "request body could not be read\n");
            }
        };
        let (msg, used) = match ipp::parse_message(&buf[..end], &limits) {
            Ok(x) => x,
            Err(e) => return ipp_error(&buf, e, peer),
        };
        let rest = buf.split_off(used).freeze();
        let stream = BodyStream::new(body)
            .try_filter_map(|frame| std::future::ready(Ok(frame.into_data().ok())))
            .map_err(io::Error::other);
        // A client that stops sending mid-document must not hold the connection and its staging
        // file forever; CUPS streams as its filters produce output, so the default is generous.
        let idle = self.document_idle_timeout;
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
        let doc: DocumentBody = Box::new(std::io::Cursor::new(rest).chain(reader));
        let printer = self.queue_for(path, &msg).clone();
        let resp = if Arc::ptr_eq(&printer, &self.printer) {
            printer.handle(msg, doc, &ctx).await
        } else {
            // A [[queue]]'s log lines (jobs accepted, printer paused, ...) say which queue.
            use tracing::Instrument;
            let span = tracing::info_span!("queue", resource = %printer.config.resource);
            printer.handle(msg, doc, &ctx).instrument(span).await
        };
        let mut out = Vec::with_capacity(4096);
        ipp::encode_message(&resp, &mut out);
        if resp.code == status::NOT_AUTHENTICATED {
            // HTTP 401 + WWW-Authenticate is how IPP clients learn to ask for a password.
            let secure = ctx.scheme == "ipps" || peer.ip().is_loopback();
            return crate::web::ipp_challenge(secure, self.tls.is_some(), out);
        }
        ipp_response(out)
    }
}

/// Why [`read_attribute_section`] failed.
#[derive(Debug)]
enum SectionError {
    Frame(FrameError),
    /// The body failed at the HTTP level (broken chunked framing, connection lost).
    Body(String),
    TimedOut,
}

/// client-error-timeout, 0x0405 (RFC 8011 Appendix B: the client took too long to
/// send the request).
const CLIENT_ERROR_TIMEOUT: u16 = 0x0405;

/// Reads `body` until [`Scanner`] finds the end of the IPP attribute section, before `deadline`.
/// Returns the bytes read so far (possibly some document data past the section) and the section's
/// length; on failure, the bytes read so far (to echo the request-id) and why.
async fn read_attribute_section<B>(
    body: &mut B,
    limits: &ipp::Limits,
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

fn ipp_response(bytes: Vec<u8>) -> HttpResponse {
    let mut r = Response::new(Full::new(Bytes::from(bytes)));
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/ipp"));
    r
}

/// An IPP error response for a request that could not be framed: echoes the request-id when the
/// header arrived, so the client can match it (RFC 8011 §4.1.1).
fn ipp_error(buf: &[u8], e: FrameError, peer: SocketAddr) -> HttpResponse {
    tracing::info!(%peer, "rejected malformed IPP request: {e}");
    let code = if e.is_too_large() {
        status::REQUEST_ENTITY_TOO_LARGE
    } else {
        status::BAD_REQUEST
    };
    ipp_status_response(buf, code, format!("malformed request: {e}"))
}

/// An IPP response with status `code` to the request whose first bytes are `buf`.
fn ipp_status_response(buf: &[u8], code: u16, message: String) -> HttpResponse {
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
    ipp_response(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::StreamBody;
    use hyper::body::Frame;
    use std::time::Duration;

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
        use futures_util::StreamExt;
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
            read_attribute_section(&mut body(parts, false), &ipp::Limits::default(), soon())
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
            &ipp::Limits::default(),
            soon(),
        )
        .await
        .unwrap_err();
        assert!(matches!(e, SectionError::TimedOut), "{e:?}");
        assert_eq!(&buf[..], &req[..12]);
        assert!(started.elapsed() < Duration::from_secs(5));
        let r = ipp_status_response(&buf, CLIENT_ERROR_TIMEOUT, "late".into());
        assert_eq!(r.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn truncated_attribute_section_is_a_frame_error() {
        let req = gpa_bytes();
        let (_, e) = read_attribute_section(
            &mut body(vec![req[..12].to_vec()], true),
            &ipp::Limits::default(),
            soon(),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(e, SectionError::Frame(FrameError::Truncated)),
            "{e:?}"
        );
    }
}
