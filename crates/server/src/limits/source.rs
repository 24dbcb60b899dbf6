//! Where a request comes from: the peer address of the connection, or,
//! when that peer is a trusted proxy, the address the proxies recorded in
//! `X-Forwarded-For`. Anyone can write that header, so it is read only
//! from trusted proxies, right to left: each trusted hop vouches for the
//! address before it, and the first untrusted one is the client.

use axum::http::HeaderMap;
use ipnet::IpNet;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

/// The client's address. `peer` is `None` when the server was not given
/// the connection's address (then every such request shares one source).
pub fn client_address(peer: Option<SocketAddr>, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let peer = peer.map_or(IpAddr::from([0, 0, 0, 0]), |p| canonical(p.ip()));
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Some(ip) = parse_hop(hop) else {
            // Garbage recorded by a trusted proxy: the last address known
            // for sure is the hop that recorded it.
            return client;
        };
        client = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    client
}

/// `1.2.3.4`, `1.2.3.4:567`, `2001:db8::1` or `[2001:db8::1]:567`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    hop.parse::<SocketAddr>().ok().map(|s| canonical(s.ip()))
}

/// IPv4 addresses that arrive mapped into IPv6 are the IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The key limits count under: an IPv4 address, or the /64 an IPv6
/// address is in (one host usually holds a whole /64, so limiting single
/// IPv6 addresses would limit nothing).
pub fn limit_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(bits))
        }
        v4 => v4,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    fn peer(s: &str) -> Option<SocketAddr> {
        Some(SocketAddr::new(s.parse().unwrap(), 443))
    }

    #[test]
    fn forwarded_addresses_count_only_from_trusted_proxies() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        // Untrusted peer: its header is ignored.
        assert_eq!(
            client_address(peer("203.0.113.9"), &headers(&["1.1.1.1"]), &trusted),
            ip("203.0.113.9")
        );
        // Trusted peer: the rightmost untrusted hop, whatever the client
        // wrote further left.
        assert_eq!(
            client_address(
                peer("10.0.0.2"),
                &headers(&["6.6.6.6, 198.51.100.7", "10.0.0.1"]),
                &trusted
            ),
            ip("198.51.100.7")
        );
        // Only proxies in the chain: the leftmost.
        assert_eq!(
            client_address(peer("10.0.0.2"), &headers(&["10.0.0.1"]), &trusted),
            ip("10.0.0.1")
        );
        // No header, or garbage: the proxy itself.
        assert_eq!(
            client_address(peer("10.0.0.2"), &HeaderMap::new(), &trusted),
            ip("10.0.0.2")
        );
        assert_eq!(
            client_address(peer("10.0.0.2"), &headers(&["bogus"]), &trusted),
            ip("10.0.0.2")
        );
        assert_eq!(
            client_address(peer("10.0.0.2"), &headers(&["[2001:db8::1]:80"]), &trusted),
            ip("2001:db8::1")
        );
        assert_eq!(
            client_address(peer("::ffff:192.0.2.1"), &HeaderMap::new(), &trusted),
            ip("192.0.2.1")
        );
        assert_eq!(
            client_address(None, &HeaderMap::new(), &trusted),
            ip("0.0.0.0")
        );
    }

    #[test]
    fn ipv6_addresses_are_limited_per_64() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(limit_key(ip("2001:db8:1:2:3:4:5:6")), ip("2001:db8:1:2::"));
        assert_eq!(limit_key(ip("192.0.2.1")), ip("192.0.2.1"));
    }
}
