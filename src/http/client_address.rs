//! The client's address: the TCP peer, or, when that peer is one of the operator's
//! `[http] trusted_proxies`, the address the proxies name in `Forwarded` (RFC 7239 §5.2,
//! `for=`) or, without that field, `X-Forwarded-For`.
//!
//! Any client can write those fields, so they are believed only from a trusted peer, and
//! only as far as the chain of trusted proxies goes: the answer is the right-most address
//! that is not itself a trusted proxy (RFC 7239 §7.4 warns that the left-most values are
//! whatever the client sent). Everything that limits or records "the client's address"
//! (rate limits, the verification throttle, evidence, logs) reads [`ClientAddress`] from the
//! request's extensions, set by [`attach`] before routing.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;

use crate::config::Cidr;

/// The client's address as this service judges it (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress(pub IpAddr);

impl ClientAddress {
    /// The address set by [`attach`], or the TCP peer when the router runs without it, or
    /// `0.0.0.0` when not even that is known (a request built in a test).
    pub fn of(extensions: &axum::http::Extensions) -> IpAddr {
        ClientAddress::known(extensions).unwrap_or(IpAddr::from([0, 0, 0, 0]))
    }

    /// The address set by [`attach`], or the TCP peer, or `None`.
    pub fn known(extensions: &axum::http::Extensions) -> Option<IpAddr> {
        extensions
            .get::<ClientAddress>()
            .map(|ClientAddress(ip)| *ip)
            .or_else(|| {
                extensions
                    .get::<ConnectInfo<SocketAddr>>()
                    .map(|ConnectInfo(addr)| addr.ip())
            })
    }
}

/// Middleware: judges the client's address and puts it into the request's extensions.
pub async fn attach(
    State(trusted): State<Arc<[Cidr]>>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
        .unwrap_or(IpAddr::from([0, 0, 0, 0]));
    let client = resolve(peer, request.headers(), &trusted);
    request.extensions_mut().insert(ClientAddress(client));
    next.run(request).await
}

/// The client's address for a request from `peer` with `headers`.
pub fn resolve(peer: IpAddr, headers: &HeaderMap, trusted: &[Cidr]) -> IpAddr {
    let peer = peer.to_canonical();
    let is_trusted = |ip: IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    // RFC 7239 §4: several `Forwarded` fields are one list, in order; `Forwarded` wins over
    // the older, unspecified `X-Forwarded-For` when a proxy sends both.
    let forwarded: Vec<&str> = headers
        .get_all("forwarded")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(forwarded_for)
        .collect();
    let hops: Vec<&str> = if forwarded.is_empty() {
        headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|hop| !hop.is_empty())
            .collect()
    } else {
        forwarded
    };
    let mut client = peer;
    for hop in hops.iter().rev() {
        // An obfuscated or `unknown` node (RFC 7239 §6) cannot be told apart from its
        // neighbours: stop at the last proxy that named it.
        let Some(ip) = node_address(hop) else {
            return client;
        };
        client = ip;
        if !is_trusted(ip) {
            return ip;
        }
    }
    client
}

/// The `for=` value of one forwarded-element (`for=192.0.2.60;proto=http;by=…`).
fn forwarded_for(element: &str) -> Option<&str> {
    element.split(';').find_map(|pair| {
        let (name, value) = pair.trim().split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("for")
            .then(|| value.trim())
    })
}

/// The IP address of a node (RFC 7239 §6): `192.0.2.1`, `192.0.2.1:4711`,
/// `"[2001:db8::1]:4711"`, `2001:db8::1` (as `X-Forwarded-For` writes it); `None` for
/// `unknown`, an obfuscated identifier (`_hidden`) or anything else.
fn node_address(node: &str) -> Option<IpAddr> {
    let node = node.trim();
    let node = node
        .strip_prefix('"')
        .and_then(|n| n.strip_suffix('"'))
        .unwrap_or(node);
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Some(rest) = node.strip_prefix('[') {
        let (inside, _port) = rest.split_once(']')?;
        return inside
            .parse::<std::net::Ipv6Addr>()
            .ok()
            .map(|ip| IpAddr::V6(ip).to_canonical());
    }
    let (host, port) = node.rsplit_once(':')?;
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("address")
    }

    #[test]
    fn forwarding_fields_from_an_untrusted_peer_are_ignored() {
        let h = headers(&[
            ("x-forwarded-for", "198.51.100.7"),
            ("forwarded", "for=198.51.100.8"),
        ]);
        assert_eq!(resolve(ip("203.0.113.5"), &h, &[]), ip("203.0.113.5"));
        let trusted = [Cidr::parse("10.0.0.0/8").expect("cidr")];
        assert_eq!(resolve(ip("203.0.113.5"), &h, &trusted), ip("203.0.113.5"));
    }

    #[test]
    fn the_right_most_untrusted_hop_is_the_client() {
        let trusted = [Cidr::parse("10.0.0.0/8").expect("cidr")];
        let peer = ip("10.0.0.2");
        // The client wrote a spoofed first hop; the proxies appended the real one.
        let h = headers(&[("x-forwarded-for", "1.2.3.4, 198.51.100.7, 10.0.0.9")]);
        assert_eq!(resolve(peer, &h, &trusted), ip("198.51.100.7"));
        // Several fields are one list.
        let h = headers(&[
            ("x-forwarded-for", "1.2.3.4"),
            ("x-forwarded-for", "198.51.100.9"),
        ]);
        assert_eq!(resolve(peer, &h, &trusted), ip("198.51.100.9"));
        // No field: the proxy itself.
        assert_eq!(resolve(peer, &HeaderMap::new(), &trusted), peer);
        // Only trusted hops: the left-most of them.
        let h = headers(&[("x-forwarded-for", "10.1.1.1, 10.2.2.2")]);
        assert_eq!(resolve(peer, &h, &trusted), ip("10.1.1.1"));
    }

    #[test]
    fn forwarded_is_read_as_rfc_7239_writes_it_and_wins_over_x_forwarded_for() {
        let trusted = [Cidr::parse("10.0.0.0/8").expect("cidr")];
        let peer = ip("10.0.0.2");
        let h = headers(&[
            (
                "forwarded",
                "for=192.0.2.43;proto=https, For=\"[2001:db8:cafe::17]:4711\";by=10.0.0.2",
            ),
            ("x-forwarded-for", "198.51.100.1"),
        ]);
        assert_eq!(resolve(peer, &h, &trusted), ip("2001:db8:cafe::17"));
        let h = headers(&[("forwarded", "for=192.0.2.43:8080, for=10.3.3.3")]);
        assert_eq!(resolve(peer, &h, &trusted), ip("192.0.2.43"));
        // An unknown or obfuscated node stops the walk at the proxy that named it.
        let h = headers(&[("forwarded", "for=192.0.2.43, for=unknown, for=10.3.3.3")]);
        assert_eq!(resolve(peer, &h, &trusted), ip("10.3.3.3"));
        let h = headers(&[("forwarded", "for=_hidden")]);
        assert_eq!(resolve(peer, &h, &trusted), peer);
    }

    #[test]
    fn nodes_parse_with_and_without_ports() {
        assert_eq!(node_address("192.0.2.1"), Some(ip("192.0.2.1")));
        assert_eq!(node_address("192.0.2.1:4711"), Some(ip("192.0.2.1")));
        assert_eq!(
            node_address("\"[2001:db8::1]:80\""),
            Some(ip("2001:db8::1"))
        );
        assert_eq!(node_address("[2001:db8::1]"), Some(ip("2001:db8::1")));
        assert_eq!(node_address("2001:db8::1"), Some(ip("2001:db8::1")));
        assert_eq!(node_address("::ffff:192.0.2.1"), Some(ip("192.0.2.1")));
        assert_eq!(node_address("unknown"), None);
        assert_eq!(node_address("_gazonk"), None);
        assert_eq!(node_address("192.0.2.1:"), None);
    }
}
