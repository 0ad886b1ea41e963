//! The one guard on outgoing HTTP to URLs a tenant chooses (SAML metadata fetched over the
//! admin API and refreshed every hour, risk and certificate webhooks): server-side request
//! forgery toward the server's own network is refused.
//!
//! The host is resolved once, every address it resolves to is classified, and the request is
//! refused if *any* of them is not public (loopback, RFC 1918, link-local with the cloud
//! metadata address, unique-local, CGNAT, documentation, multicast, …, also inside IPv4-mapped
//! and other IPv4-embedding IPv6 forms), unless the operator's [`OutboundPolicy`] allows it. The
//! client then connects only to the addresses checked (DNS is pinned, proxies are not used), so
//! a name that resolves differently a moment later (DNS rebinding) can't move the request.
//! Redirects are never followed.

use crate::ServiceError;
use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::LazyLock;
use std::time::Duration;

/// Which non-public destinations the operator allows (`outbound_allow_private`): none by
/// default; hosts by name, addresses by CIDR, or all of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboundPolicy {
    allow_all: bool,
    hosts: Vec<String>,
    nets: Vec<IpNet>,
}

impl OutboundPolicy {
    /// Every destination allowed: the operator's own CLI (the operator is trusted).
    pub fn allow_all() -> Self {
        OutboundPolicy {
            allow_all: true,
            ..OutboundPolicy::default()
        }
    }

    /// The setting's entries: `*` (every address), a CIDR or address (`10.1.0.0/16`,
    /// `127.0.0.1`, `fd00::/8`), or a host name (`idp.corp.internal`, any case) whose
    /// addresses may be private. Returns the entry that is none of these.
    pub fn parse<'a>(entries: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        let mut policy = OutboundPolicy::default();
        for entry in entries.into_iter().map(str::trim).filter(|e| !e.is_empty()) {
            if entry == "*" {
                policy.allow_all = true;
            } else if let Ok(net) = entry.parse::<IpNet>() {
                policy.nets.push(net);
            } else if let Ok(ip) = entry.trim_matches(['[', ']']).parse::<IpAddr>() {
                policy.nets.push(IpNet::from(ip));
            } else if url::Host::parse(entry).is_ok_and(|h| matches!(h, url::Host::Domain(_))) {
                policy.hosts.push(entry.to_ascii_lowercase());
            } else {
                return Err(format!(
                    "{entry:?} is not `*`, an address, a CIDR such as 10.0.0.0/8 or a host name"
                ));
            }
        }
        Ok(policy)
    }

    /// Whether a request to `host` may go to `ip`, which is not public.
    fn allows(&self, host: &str, ip: IpAddr) -> bool {
        self.allow_all
            || self.hosts.iter().any(|h| h.eq_ignore_ascii_case(host))
            || self
                .nets
                .iter()
                .any(|n| n.contains(&ip) || n.contains(&canonical(ip)))
    }
}

/// IPv4 ranges that are not public destinations (IANA special-purpose registry, RFC 6890).
const V4: &[(&str, &str)] = &[
    ("0.0.0.0/8", "unspecified"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "shared (CGNAT)"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "IETF protocol assignment"),
    ("192.0.2.0/24", "documentation"),
    ("192.88.99.0/24", "6to4 relay"),
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("224.0.0.0/4", "multicast"),
    ("255.255.255.255/32", "broadcast"),
    ("240.0.0.0/4", "reserved"),
];

/// IPv6 ranges inside global unicast (2000::/3) that are not public destinations; everything
/// outside 2000::/3 is refused as a whole (loopback, unspecified, unique-local, link-local,
/// multicast, discard, …) after the IPv4-embedding forms are unwrapped.
const V6: &[(&str, &str)] = &[
    ("2001::/32", "Teredo"),
    ("2001:2::/48", "benchmarking"),
    ("2001:10::/28", "ORCHID"),
    ("2001:20::/28", "ORCHID"),
    ("2001:db8::/32", "documentation"),
    ("3fff::/20", "documentation"),
];

static RANGES: LazyLock<Vec<(IpNet, &'static str)>> = LazyLock::new(|| {
    V4.iter()
        .chain(V6)
        // The tables above are constants: a typo fails every test of this module.
        .filter_map(|(net, class)| Some((net.parse().ok()?, *class)))
        .collect()
});

/// The IPv4 address an IPv6 address stands for, when it embeds one the network would reach:
/// IPv4-mapped (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`, deprecated), NAT64
/// (`64:ff9b::a.b.c.d`) and 6to4 (`2002:aabb:ccdd::`).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let v4 = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    match s {
        [0, 0, 0, 0, 0, 0xffff, hi, lo] | [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] | [0x2002, hi, lo, ..] => {
            Some(v4(hi, lo))
        }
        [0, 0, 0, 0, 0, 0, hi, lo] if ip != Ipv6Addr::UNSPECIFIED && ip != Ipv6Addr::LOCALHOST => {
            Some(v4(hi, lo))
        }
        _ => None,
    }
}

/// `ip` with an embedded IPv4 address unwrapped.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => embedded_v4(v6).map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// Why `ip` is not a public destination (`"loopback"`, `"private"`, `"link-local"`, …), or
/// `None` for a public address. IPv6 forms that embed an IPv4 address are judged by it.
pub fn non_public(ip: IpAddr) -> Option<&'static str> {
    let ip = canonical(ip);
    if let Some((_, class)) = RANGES.iter().find(|(net, _)| net.contains(&ip)) {
        return Some(class);
    }
    match ip {
        IpAddr::V4(_) => None,
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            match first {
                _ if v6.is_unspecified() => Some("unspecified"),
                _ if v6.is_loopback() => Some("loopback"),
                0xfc00..=0xfdff => Some("unique-local"),
                0xfe80..=0xfebf => Some("link-local"),
                0xfec0..=0xfeff => Some("site-local"),
                0xff00..=0xffff => Some("multicast"),
                0x2000..=0x3fff => None,
                _ => Some("reserved"),
            }
        }
    }
}

/// A request the guard let through: a client that connects only to the checked addresses.
pub struct Checked {
    pub client: reqwest::Client,
    pub url: url::Url,
}

/// Resolves `url`'s host (within `timeout`), refuses it unless every address is public or
/// allowed by `policy`, and returns a client pinned to those addresses: no redirects, no proxy,
/// `timeout` for the request.
pub async fn check(policy: &OutboundPolicy, url: &str, timeout: Duration) -> Result<Checked, ServiceError> {
    let fail = |problem: String| ServiceError::Fetch {
        url: url.to_owned(),
        problem,
    };
    let parsed = url::Url::parse(url).map_err(|e| fail(format!("not a URL: {e}")))?;
    let port = parsed
        .port_or_known_default()
        .ok_or_else(|| fail("no port for this scheme".into()))?;
    let (host, addrs): (String, Vec<SocketAddr>) = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => (ip.to_string(), vec![SocketAddr::new(ip.into(), port)]),
        Some(url::Host::Ipv6(ip)) => (ip.to_string(), vec![SocketAddr::new(ip.into(), port)]),
        Some(url::Host::Domain(d)) => {
            // The lookup counts against the request's time: a slow resolver can't hold it longer.
            let found = tokio::time::timeout(timeout, tokio::net::lookup_host((d, port)))
                .await
                .map_err(|_| fail(format!("resolving {d}: timed out")))?
                .map_err(|e| fail(format!("resolving {d}: {e}")))?
                .collect::<Vec<_>>();
            (d.to_ascii_lowercase(), found)
        }
        None => return Err(fail("no host".into())),
    };
    if addrs.is_empty() {
        return Err(fail(format!("{host} resolves to no address")));
    }
    for a in &addrs {
        if let Some(class) = non_public(a.ip())
            && !policy.allows(&host, a.ip())
        {
            return Err(ServiceError::AddressRefused {
                url: url.to_owned(),
                address: a.ip(),
                class,
            });
        }
    }
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(timeout);
    if let Some(url::Host::Domain(d)) = parsed.host() {
        builder = builder.resolve_to_addrs(d, &addrs);
    }
    let client = builder.build().map_err(|e| fail(format!("client: {e}")))?;
    Ok(Checked { client, url: parsed })
}

/// GETs `url` through the guard ([`check`]: `policy`, `timeout`) and answers its body, at most
/// `max_bytes`; anything but a 2xx is a failure. For small documents a tenant names.
pub async fn get(
    policy: &OutboundPolicy,
    url: &str,
    timeout: Duration,
    max_bytes: usize,
) -> Result<Vec<u8>, ServiceError> {
    let fail = |problem: String| ServiceError::Fetch {
        url: url.to_owned(),
        problem,
    };
    let checked = check(policy, url, timeout).await?;
    let mut res = checked
        .client
        .get(checked.url)
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|e| fail(error_chain(&e)))?;
    if !res.status().is_success() {
        return Err(fail(format!("HTTP {}", res.status().as_u16())));
    }
    let mut body = Vec::new();
    while let Some(chunk) = res.chunk().await.map_err(|e| fail(error_chain(&e)))? {
        if body.len() + chunk.len() > max_bytes {
            return Err(fail(format!("larger than {max_bytes} bytes")));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// An error with its sources ("error sending request: … connection refused"), for the log.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// What an outbound failure may tell a tenant (a problem detail, the connection's recorded
/// error, its audit event): whether the guard refused the address, which the tenant can work
/// out from DNS anyway, but nothing about what the network answered (connection refused,
/// timeout, TLS, HTTP status), which would turn the fetch into a port scanner. `None` for an
/// error that is not an outbound one.
pub fn tenant_view(e: &ServiceError) -> Option<String> {
    match e {
        ServiceError::AddressRefused { class, .. } => Some(format!(
            "the URL was not fetched: its host has a {class} address, which this server does not call"
        )),
        ServiceError::Fetch { .. } => Some("the URL could not be fetched".into()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(s: &str) -> Option<&'static str> {
        non_public(s.parse().unwrap())
    }

    #[test]
    fn every_range_table_entry_parses() {
        assert_eq!(RANGES.len(), V4.len() + V6.len());
    }

    #[test]
    fn non_public_ipv4_ranges_are_classified_at_both_edges() {
        for (first, last, want) in [
            ("0.0.0.0", "0.255.255.255", "unspecified"),
            ("10.0.0.0", "10.255.255.255", "private"),
            ("100.64.0.0", "100.127.255.255", "shared (CGNAT)"),
            ("127.0.0.0", "127.255.255.255", "loopback"),
            ("169.254.0.0", "169.254.255.255", "link-local"),
            ("172.16.0.0", "172.31.255.255", "private"),
            ("192.0.0.0", "192.0.0.255", "IETF protocol assignment"),
            ("192.0.2.0", "192.0.2.255", "documentation"),
            ("192.88.99.0", "192.88.99.255", "6to4 relay"),
            ("192.168.0.0", "192.168.255.255", "private"),
            ("198.18.0.0", "198.19.255.255", "benchmarking"),
            ("198.51.100.0", "198.51.100.255", "documentation"),
            ("203.0.113.0", "203.0.113.255", "documentation"),
            ("224.0.0.0", "239.255.255.255", "multicast"),
            ("240.0.0.0", "255.255.255.254", "reserved"),
            ("255.255.255.255", "255.255.255.255", "broadcast"),
        ] {
            assert_eq!(class(first), Some(want), "{first}");
            assert_eq!(class(last), Some(want), "{last}");
        }
        assert_eq!(class("169.254.169.254"), Some("link-local"), "cloud metadata");
    }

    #[test]
    fn public_ipv4_addresses_next_to_the_ranges_pass() {
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "9.255.255.255",
            "11.0.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "126.255.255.255",
            "128.0.0.0",
            "169.253.255.255",
            "169.255.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.0.1.0",
            "192.0.3.0",
            "192.167.255.255",
            "192.169.0.0",
            "198.17.255.255",
            "198.20.0.0",
            "203.0.112.255",
            "223.255.255.255",
        ] {
            assert_eq!(class(ip), None, "{ip}");
        }
    }

    #[test]
    fn non_public_ipv6_ranges_are_classified() {
        for (ip, want) in [
            ("::", "unspecified"),
            ("::1", "loopback"),
            ("fc00::", "unique-local"),
            ("fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "unique-local"),
            ("fe80::", "link-local"),
            ("febf:ffff::1", "link-local"),
            ("fec0::1", "site-local"),
            ("ff02::1", "multicast"),
            ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "multicast"),
            ("100::1", "reserved"),
            ("64:ff9b:1::1", "reserved"),
            ("1fff:ffff::1", "reserved"),
            ("4000::1", "reserved"),
            ("2001:db8::1", "documentation"),
            ("3fff::1", "documentation"),
            ("2001::1", "Teredo"),
            ("2001:2::1", "benchmarking"),
            ("2001:10::1", "ORCHID"),
            ("2001:20::1", "ORCHID"),
        ] {
            assert_eq!(class(ip), Some(want), "{ip}");
        }
        for ip in [
            "2000::1",
            "2606:4700:4700::1111",
            "2a00:1450:4001::1",
            "3ffe:ffff::1",
        ] {
            assert_eq!(class(ip), None, "{ip}");
        }
    }

    #[test]
    fn ipv6_forms_of_ipv4_addresses_are_judged_by_the_ipv4_address() {
        for (ip, want) in [
            ("::ffff:127.0.0.1", Some("loopback")),
            ("::ffff:7f00:1", Some("loopback")),
            ("::ffff:10.1.2.3", Some("private")),
            ("::ffff:169.254.169.254", Some("link-local")),
            ("::ffff:192.168.0.1", Some("private")),
            ("::ffff:100.64.0.1", Some("shared (CGNAT)")),
            ("::ffff:0.0.0.0", Some("unspecified")),
            ("::127.0.0.1", Some("loopback")),
            ("::10.0.0.1", Some("private")),
            ("64:ff9b::127.0.0.1", Some("loopback")),
            ("64:ff9b::a9fe:a9fe", Some("link-local")),
            ("2002:7f00:1::", Some("loopback")),
            ("2002:a9fe:a9fe::1", Some("link-local")),
            ("2002:c0a8:1::1", Some("private")),
            ("::ffff:8.8.8.8", None),
            ("64:ff9b::8.8.8.8", None),
            ("2002:808:808::1", None),
        ] {
            assert_eq!(class(ip), want, "{ip}");
        }
    }

    #[test]
    fn the_setting_allows_listed_hosts_networks_or_everything() {
        let p =
            OutboundPolicy::parse(["idp.corp.internal", "10.1.0.0/16", " 127.0.0.1 ", "", "[::1]"]).unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(p.allows("IDP.corp.internal", ip("10.9.9.9")));
        assert!(p.allows("other.example", ip("10.1.200.3")));
        assert!(
            p.allows("other.example", ip("::ffff:10.1.0.1")),
            "mapped forms of a listed network"
        );
        assert!(p.allows("127.0.0.1", ip("127.0.0.1")));
        assert!(p.allows("localhost", ip("::1")));
        assert!(!p.allows("other.example", ip("10.2.0.1")));
        assert!(!p.allows("other.example", ip("169.254.169.254")));
        assert!(
            !p.allows("corp.internal", ip("10.9.9.9")),
            "a host is its exact name"
        );
        assert!(OutboundPolicy::parse(["*"]).unwrap().allows("x", ip("127.0.0.1")));
        assert!(!OutboundPolicy::default().allows("localhost", ip("127.0.0.1")));
        for bad in ["10.0.0.0/33", "http://x", "a b", "::1/129"] {
            assert!(OutboundPolicy::parse([bad]).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn refused_addresses_are_refused_before_any_connection() {
        let none = OutboundPolicy::default();
        for url in [
            "http://127.0.0.1:9/m",
            "https://10.0.0.1/m",
            "http://169.254.169.254/latest/meta-data/",
            "https://[::ffff:127.0.0.1]/m",
            "https://[fd00::1]/m",
            "http://localhost:9/m",
        ] {
            let e = check(&none, url, Duration::from_secs(1)).await.err().unwrap();
            assert!(matches!(e, ServiceError::AddressRefused { .. }), "{url}: {e}");
            assert!(tenant_view(&e).unwrap().contains("does not call"), "{url}");
        }
        let loopback = OutboundPolicy::parse(["127.0.0.0/8", "::1"]).unwrap();
        assert!(
            check(&loopback, "http://localhost:9/m", Duration::from_secs(1))
                .await
                .is_ok()
        );
        let e = check(&loopback, "https://10.0.0.1/m", Duration::from_secs(1))
            .await
            .err()
            .unwrap();
        assert!(
            matches!(e, ServiceError::AddressRefused { class: "private", .. }),
            "{e}"
        );
    }

    #[test]
    fn the_tenant_view_of_a_failed_fetch_says_nothing_of_the_network() {
        let view = |problem: &str| {
            tenant_view(&ServiceError::Fetch {
                url: "https://idp.example/m".into(),
                problem: problem.into(),
            })
        };
        let refused = view("error sending request: connection refused");
        for other in ["operation timed out", "invalid peer certificate", "HTTP 404"] {
            assert_eq!(view(other), refused);
        }
    }
}
