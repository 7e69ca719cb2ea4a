//! Serving an axum router (the cloud service) on the one accept loop ([`super::server`]): handlers
//! see the client's address as `ConnectInfo<SocketAddr>` — behind a trusted reverse proxy, the
//! address the proxy reports in `X-Forwarded-For` — and the connection as `Extension<Conn>`.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::ConnectInfo;
use axum::Router;
use futures_util::future::BoxFuture;
use hyper::body::Incoming;
use hyper::Request;
use tower::ServiceExt;

use super::server::{Conn, HttpHandler, HttpResponse};

/// An axum router as the handler of a server.
pub struct RouterHttp {
    pub router: Router,
    /// Peers whose `X-Forwarded-For` is believed (reverse proxies, load balancers).
    pub trusted_proxies: Vec<IpAddr>,
}

impl HttpHandler for RouterHttp {
    fn serve(
        self: Arc<Self>,
        req: Request<Incoming>,
        conn: Conn,
    ) -> BoxFuture<'static, HttpResponse> {
        let client = client_address(conn.peer, &self.trusted_proxies, req.headers());
        let mut req = req.map(axum::body::Body::new);
        req.extensions_mut().insert(ConnectInfo(client));
        req.extensions_mut().insert(conn);
        let router = self.router.clone();
        Box::pin(async move {
            let r: Result<HttpResponse, Infallible> = router.oneshot(req).await;
            r.unwrap_or_else(|e| match e {})
        })
    }
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
