//! Serving an axum router (the cloud service) on an already-bound listener with what the appliance's
//! IPP listener has: TLS on the same port (a first byte of 0x16 starts a handshake), a header
//! timeout against slow clients, a bound on connections served at once, and graceful shutdown.
//! Handlers see the client's address as `ConnectInfo<SocketAddr>`; behind a trusted reverse proxy
//! that is the address the proxy reports in `X-Forwarded-For`.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper::Request;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;

use super::tls::Tls;

/// How [`serve_router`] serves.
#[derive(Clone)]
pub struct RouterOptions {
    /// TLS on the same port; `None` serves plain HTTP only.
    pub tls: Option<Tls>,
    /// A connection must send its request headers (and a TLS client its handshake) within this.
    pub header_timeout: Duration,
    /// Connections served at once; more wait in the kernel's accept queue.
    pub max_connections: usize,
    /// Peers whose `X-Forwarded-For` is believed (reverse proxies, load balancers).
    pub trusted_proxies: Vec<IpAddr>,
}

/// The first byte of a TLS ClientHello record (RFC 8446 §5.1: content type handshake).
const TLS_HANDSHAKE: u8 = 0x16;

/// Accepts connections on `listener` until `shutdown` turns true and serves `app` on each.
pub async fn serve_router(
    listener: TcpListener,
    app: Router,
    options: RouterOptions,
    mut shutdown: watch::Receiver<bool>,
) {
    let options = Arc::new(options);
    let permits = Arc::new(tokio::sync::Semaphore::new(options.max_connections.max(1)));
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = stopped(&mut shutdown) => break,
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
            _ = stopped(&mut shutdown) => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let options = options.clone();
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            let _permit = permit;
            let mut first = [0u8; 1];
            let peeked =
                tokio::time::timeout(options.header_timeout, stream.peek(&mut first)).await;
            let is_tls = match peeked {
                Ok(Ok(1)) => first[0] == TLS_HANDSHAKE,
                _ => return,
            };
            match (&options.tls, is_tls) {
                (Some(tls), true) => {
                    match tokio::time::timeout(options.header_timeout, tls.acceptor.accept(stream))
                        .await
                    {
                        Ok(Ok(s)) => serve_connection(s, app, peer, &options, shutdown).await,
                        Ok(Err(e)) => tracing::debug!(%peer, "TLS handshake failed: {e}"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
                _ => serve_connection(stream, app, peer, &options, shutdown).await,
            }
        });
        // Reap finished connections so the set does not grow with the server's lifetime.
        while connections.try_join_next().is_some() {}
    }
    // Let connections finish their current request (each shuts down gracefully on the signal).
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while connections.join_next().await.is_some() {}
    })
    .await;
}

async fn serve_connection<I>(
    io: I,
    app: Router,
    peer: SocketAddr,
    options: &RouterOptions,
    mut shutdown: watch::Receiver<bool>,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let trusted = options.trusted_proxies.clone();
    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
        let app = app.clone();
        let client = client_address(peer, &trusted, req.headers());
        async move {
            let mut req = req.map(axum::body::Body::new);
            req.extensions_mut().insert(ConnectInfo(client));
            Ok::<_, Infallible>(app.oneshot(req).await.unwrap_or_else(|e| match e {}))
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_timeout)
        .keep_alive(true)
        .serve_connection(TokioIo::new(super::linger::LingeringClose::new(io)), svc);
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(%peer, "connection ended: {e}");
            }
        }
        _ = stopped(&mut shutdown) => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
        }
    }
}

/// Resolves once `shutdown` is true (the guard `wait_for` returns is dropped here, so callers'
/// futures stay `Send`).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|s| *s).await;
}

/// The client's address: the TCP peer, or, when the peer is a trusted proxy, the right-most
/// `X-Forwarded-For` entry that is not itself a trusted proxy (entries further left are whatever
/// the client wrote and cannot be believed).
pub fn client_address(
    peer: SocketAddr,
    trusted: &[IpAddr],
    headers: &hyper::HeaderMap,
) -> SocketAddr {
    if !trusted.contains(&peer.ip()) {
        return peer;
    }
    let mut hops: Vec<IpAddr> = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        let Ok(text) = value.to_str() else {
            return peer;
        };
        for item in text.split(',') {
            match parse_hop(item.trim()) {
                Some(ip) => hops.push(ip),
                None => return peer,
            }
        }
    }
    match hops.into_iter().rev().find(|ip| !trusted.contains(ip)) {
        Some(ip) => SocketAddr::new(ip, 0),
        None => peer,
    }
}

/// One `X-Forwarded-For` entry: an address, possibly `[v6]:port` or `v4:port`.
fn parse_hop(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    s.parse::<SocketAddr>().ok().map(|a| a.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> hyper::HeaderMap {
        let mut h = hyper::HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let proxy: IpAddr = "10.0.0.2".parse().unwrap();
        let peer = SocketAddr::new(proxy, 5555);
        let direct: SocketAddr = "192.0.2.9:4444".parse().unwrap();
        let h = headers(&["203.0.113.7"]);
        // Not trusted: the header is ignored.
        assert_eq!(client_address(direct, &[proxy], &h), direct);
        assert_eq!(client_address(peer, &[], &h), peer);
        // Trusted: the client as the proxy saw it.
        assert_eq!(
            client_address(peer, &[proxy], &h).ip(),
            "203.0.113.7".parse::<IpAddr>().unwrap()
        );
        // A client-forged left part is skipped: the right-most untrusted hop counts.
        let h = headers(&["1.2.3.4, 203.0.113.7"]);
        assert_eq!(
            client_address(peer, &[proxy], &h).ip(),
            "203.0.113.7".parse::<IpAddr>().unwrap()
        );
        // Two proxies in a row, entries split over two header lines, ports and brackets.
        let inner: IpAddr = "10.0.0.3".parse().unwrap();
        let h = headers(&["[2001:db8::1]:443", "10.0.0.3"]);
        assert_eq!(
            client_address(peer, &[proxy, inner], &h).ip(),
            "2001:db8::1".parse::<IpAddr>().unwrap()
        );
        // Garbage: fall back to the peer rather than guess.
        assert_eq!(client_address(peer, &[proxy], &headers(&["unknown"])), peer);
        assert_eq!(client_address(peer, &[proxy], &headers(&[])), peer);
    }
}
