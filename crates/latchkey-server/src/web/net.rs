//! Who is on the other end: `X-Forwarded-For` and `X-Forwarded-Proto` are believed only when the
//! direct peer is a configured trusted proxy (SECURITY-TESTS L9).

use ipnet::IpNet;
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientInfo {
    pub ip: IpAddr,
    /// The client's connection to us (or to our trusted proxy) is HTTPS.
    pub https: bool,
}

/// The client's address as the request middleware resolved it (`None` outside a request).
pub(crate) fn client_addr(req: &actix_web::HttpRequest) -> Option<IpAddr> {
    actix_web::HttpMessage::extensions(req)
        .get::<ClientInfo>()
        .map(|c| c.ip)
}

/// The unit a per-address rate limit counts: an IPv4 address, or an IPv6 /64 (one subscriber's
/// network, where a single host can pick any of 2^64 addresses).
pub(crate) fn rate_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return v4.to_string();
            }
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

fn trusted(ip: IpAddr, proxies: &[IpNet]) -> bool {
    proxies.iter().any(|n| n.contains(&ip))
}

/// Resolves the client from the socket peer and, when the peer is trusted, the forwarding headers.
/// `X-Forwarded-For` is read right to left, skipping trusted hops; the first untrusted address is
/// the client (a client can prepend anything, but can't forge what our proxies append).
pub fn resolve(
    peer: Option<IpAddr>,
    forwarded_for: &[&str],
    forwarded_proto: Option<&str>,
    native_tls: bool,
    proxies: &[IpNet],
) -> ClientInfo {
    let peer = peer.unwrap_or(IpAddr::from([0, 0, 0, 0]));
    if !trusted(peer, proxies) {
        return ClientInfo {
            ip: peer,
            https: native_tls,
        };
    }
    let hops: Vec<IpAddr> = forwarded_for
        .iter()
        .flat_map(|h| h.split(','))
        .filter_map(|s| s.trim().parse::<IpAddr>().ok())
        .collect();
    let ip = hops
        .iter()
        .rev()
        .copied()
        .find(|ip| !trusted(*ip, proxies))
        .or(hops.first().copied())
        .unwrap_or(peer);
    let https = match forwarded_proto.map(|p| p.split(',').next().unwrap_or("").trim().to_ascii_lowercase()) {
        Some(p) if p == "https" => true,
        Some(p) if p == "http" => false,
        _ => native_tls,
    };
    ClientInfo { ip, https }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_keys_are_an_ipv4_address_or_an_ipv6_64() {
        let key = |s: &str| rate_key(s.parse().unwrap());
        assert_eq!(key("203.0.113.7"), "203.0.113.7");
        assert_eq!(key("::ffff:203.0.113.7"), "203.0.113.7");
        assert_eq!(key("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(key("2001:db8:1:2:ffff:1:2:3"), key("2001:db8:1:2::9"));
        assert_ne!(key("2001:db8:1:3::1"), key("2001:db8:1:2::1"));
    }

    fn nets(s: &[&str]) -> Vec<IpNet> {
        s.iter().map(|n| n.parse().unwrap()).collect()
    }

    #[test]
    fn untrusted_peer_cannot_spoof_its_address_or_scheme() {
        let c = resolve(
            Some("203.0.113.9".parse().unwrap()),
            &["1.2.3.4"],
            Some("https"),
            false,
            &nets(&["10.0.0.0/8"]),
        );
        assert_eq!(c.ip, "203.0.113.9".parse::<IpAddr>().unwrap());
        assert!(!c.https);
    }

    #[test]
    fn trusted_proxy_chain_yields_first_untrusted_hop_from_the_right() {
        let proxies = nets(&["10.0.0.0/8"]);
        let c = resolve(
            Some("10.0.0.2".parse().unwrap()),
            &["6.6.6.6, 198.51.100.7", "10.0.0.1"],
            Some("https"),
            false,
            &proxies,
        );
        assert_eq!(c.ip, "198.51.100.7".parse::<IpAddr>().unwrap());
        assert!(c.https);
    }

    #[test]
    fn garbage_forwarded_for_falls_back_to_the_peer() {
        let c = resolve(
            Some("10.0.0.2".parse().unwrap()),
            &["not-an-ip"],
            None,
            true,
            &nets(&["10.0.0.0/8"]),
        );
        assert_eq!(c.ip, "10.0.0.2".parse::<IpAddr>().unwrap());
        assert!(c.https);
    }
}
