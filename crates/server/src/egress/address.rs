//! Which addresses customer webhooks may connect to: public ones, plus the
//! private ranges the configuration allows (`webhooks.allow_private`,
//! `webhooks.allowed_networks`), and the DNS resolver that enforces it.

use super::Refused;
use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// What customer webhook deliveries may connect to.
#[derive(Debug, Clone, Default)]
pub struct AddressPolicy {
    allow_private: bool,
    allowed: Vec<IpNet>,
}

/// An entry of `webhooks.allowed_networks` that is not a network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is neither a network like 10.20.0.0/16 or fd00::/8 nor an IP address")]
pub struct NetworkError(pub String);

impl AddressPolicy {
    /// `allowed` entries are networks (`10.20.0.0/16`) or single addresses.
    pub fn new(allow_private: bool, allowed: &[String]) -> Result<AddressPolicy, NetworkError> {
        let allowed = allowed
            .iter()
            .map(|s| {
                let s = s.trim();
                s.parse::<IpNet>()
                    .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                    .map(|n| n.trunc())
                    .map_err(|_| NetworkError(s.to_string()))
            })
            .collect::<Result<_, _>>()?;
        Ok(AddressPolicy {
            allow_private,
            allowed,
        })
    }

    /// Why `ip` may not be connected to (`"a loopback address"`, ...), or
    /// `None` when it may: a public address, or one the config allows.
    pub fn refuses(&self, ip: IpAddr) -> Option<&'static str> {
        let ip = canonical(ip);
        let kind = non_public(ip)?;
        let allowed = self.allow_private || self.allowed.iter().any(|n| n.contains(&ip));
        (!allowed).then_some(kind)
    }

    /// Refuses a URL whose host is an IP address the policy does not allow
    /// (such hosts never reach the resolver). Names pass: they are checked
    /// when the connection is made.
    pub fn check_url(&self, url: &reqwest::Url) -> Result<(), Refused> {
        // The URL parser has normalized the host: `0x7f.1` is `127.0.0.1`,
        // an IPv6 address is in brackets.
        let host = url.host_str().unwrap_or_default();
        let Ok(ip) = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        else {
            return Ok(());
        };
        match self.refuses(ip) {
            None => Ok(()),
            Some(kind) => Err(Refused::Address {
                host: url.host_str().unwrap_or_default().to_string(),
                addr: ip,
                kind,
            }),
        }
    }
}

/// An IPv4 address written as IPv6 (`::ffff:127.0.0.1`) is the IPv4 one.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(a) => a.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The kind of a non-public address, or `None` for a public one.
fn non_public(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(a) => non_public_v4(a),
        IpAddr::V6(a) => non_public_v6(a),
    }
}

fn non_public_v4(a: Ipv4Addr) -> Option<&'static str> {
    let [first, second, ..] = a.octets();
    if a.is_loopback() {
        Some("a loopback address")
    } else if a.is_private() {
        Some("a private address")
    } else if a.is_link_local() {
        Some("a link-local address")
    } else if first == 0 {
        Some("an unspecified address")
    } else if first == 100 && (64..128).contains(&second) {
        Some("a shared (carrier-grade NAT) address")
    } else if a.is_broadcast() || a.is_multicast() {
        Some("a broadcast or multicast address")
    } else {
        None
    }
}

fn non_public_v6(a: Ipv6Addr) -> Option<&'static str> {
    let s = a.segments();
    let embedded_v4 = |hi: u16, lo: u16| {
        let [a, b] = hi.to_be_bytes();
        let [c, d] = lo.to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    };
    if a.is_loopback() {
        Some("a loopback address")
    } else if a.is_unspecified() {
        Some("an unspecified address")
    } else if (s[0] & 0xfe00) == 0xfc00 {
        Some("a private (unique local) address")
    } else if (s[0] & 0xffc0) == 0xfe80 {
        Some("a link-local address")
    } else if a.is_multicast() {
        Some("a broadcast or multicast address")
    } else if s[..6] == [0, 0, 0, 0, 0, 0] || s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        // IPv4-compatible and NAT64 addresses reach the IPv4 one.
        non_public_v4(embedded_v4(s[6], s[7]))
    } else if s[0] == 0x2002 {
        // 6to4 carries the IPv4 address in bits 16..48.
        non_public_v4(embedded_v4(s[1], s[2]))
    } else {
        None
    }
}

/// Resolves names with the system resolver and keeps only the addresses
/// the policy allows; a name with none left is refused.
pub(super) struct GuardedResolver {
    policy: AddressPolicy,
}

impl GuardedResolver {
    pub(super) fn new(policy: AddressPolicy) -> GuardedResolver {
        GuardedResolver { policy }
    }
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut refused = None;
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| match policy.refuses(a.ip()) {
                    None => true,
                    Some(kind) => {
                        refused.get_or_insert((a.ip(), kind));
                        false
                    }
                })
                .collect();
            match (allowed.is_empty(), refused) {
                (true, Some((addr, kind))) => Err(Box::new(Refused::Address {
                    host: host.clone(),
                    addr,
                    kind,
                })
                    as Box<dyn std::error::Error + Send + Sync>),
                _ => Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("an address")
    }

    #[test]
    fn private_ranges_are_refused_unless_allowed() {
        let strict = AddressPolicy::default();
        for a in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
        ] {
            assert!(strict.refuses(ip(a)).is_some(), "{a}");
        }
        for a in ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "100.128.0.1"] {
            assert_eq!(strict.refuses(ip(a)), None, "{a}");
        }
        let listed = AddressPolicy::new(false, &["10.20.0.0/16".into(), "127.0.0.1".into()])
            .expect("networks");
        assert_eq!(listed.refuses(ip("10.20.5.6")), None);
        assert_eq!(listed.refuses(ip("127.0.0.1")), None);
        assert_eq!(listed.refuses(ip("::ffff:127.0.0.1")), None);
        assert!(listed.refuses(ip("10.21.0.1")).is_some());
        assert!(listed.refuses(ip("127.0.0.2")).is_some());
        let open = AddressPolicy::new(true, &[]).expect("no networks");
        assert_eq!(open.refuses(ip("192.168.1.1")), None);
        assert_eq!(
            AddressPolicy::new(false, &["10.0.0.0/33".into()]).map(|_| ()),
            Err(NetworkError("10.0.0.0/33".into()))
        );
    }

    #[test]
    fn urls_with_address_hosts_are_checked_names_pass() {
        let strict = AddressPolicy::default();
        let url = |s: &str| reqwest::Url::parse(s).expect("a URL");
        let refused = strict
            .check_url(&url("http://127.0.0.1:9/hooks"))
            .expect_err("loopback");
        assert_eq!(
            refused.to_string(),
            "127.0.0.1 is a loopback address (127.0.0.1): refused (customer webhooks go only to public addresses unless webhooks.allow_private or webhooks.allowed_networks allows it)"
        );
        assert!(strict.check_url(&url("http://[::1]:9/hooks")).is_err());
        assert!(strict.check_url(&url("https://93.184.216.34/h")).is_ok());
        assert!(strict.check_url(&url("http://0x7f.1:9/hooks")).is_err());
        assert!(strict.check_url(&url("http://localhost:9/hooks")).is_ok());
    }
}
