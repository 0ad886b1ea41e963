//! Proving a tenant controls a domain (issue 22, SAML onboarding): the challenge a claim
//! publishes and the check that reads it back, by DNS (a TXT record at
//! `_latchkey-challenge.{domain}`) or HTTP (`https://{domain}/.well-known/latchkey-verification.txt`,
//! fetched through the outbound guard). A failed check says which step failed (no record, wrong
//! value, HTTP status, timeout, refused address) and nothing more of what the network answered.

use crate::outbound::{self, OutboundPolicy};
use hickory_resolver::Resolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;
use std::net::SocketAddr;
use std::time::Duration;

/// A check takes at most this long.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(10);
/// The HTTP challenge's body is read up to this many bytes.
const HTTP_MAX_BYTES: usize = 1024;

/// Where the DNS challenge is published.
pub fn dns_name(domain: &str) -> String {
    format!("_latchkey-challenge.{domain}")
}

/// What the DNS challenge's TXT record says.
pub fn dns_value(token: &str) -> String {
    format!("latchkey-verification={token}")
}

/// Where the HTTP challenge is published.
pub fn http_url(domain: &str) -> String {
    format!("https://{domain}/.well-known/latchkey-verification.txt")
}

/// A domain as claims hold it: lowercase, without a trailing dot, at least two labels of
/// letters, digits and inner hyphens (IDNs in their `xn--` form), at most 253 characters.
///
/// # Errors
/// What is wrong with it, for the caller's 400.
pub fn normalize(domain: &str) -> Result<String, String> {
    let d = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    let labels: Vec<&str> = d.split('.').collect();
    let label_ok = |l: &&str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    if d.len() > 253 || labels.len() < 2 || !labels.iter().all(label_ok) {
        return Err(
            "domain must be a DNS name such as corp.example (letters, digits, hyphens; IDNs as xn--)".into(),
        );
    }
    if labels
        .last()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err("domain must be a DNS name, not an address".into());
    }
    Ok(d)
}

/// Why a check did not verify the claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckFailure {
    /// No TXT record at the name, or the name does not exist.
    NoRecord,
    /// TXT records (or a file) are there, but none carries the token.
    WrongValue,
    /// The DNS server failed to answer (SERVFAIL, refused, unreachable).
    DnsError,
    /// No answer within the check's time.
    Timeout,
    /// The web server answered this status.
    HttpStatus(u16),
    /// The connection failed (refused, reset, TLS).
    HttpError,
    /// The body is larger than a token.
    TooLarge,
    /// The outbound guard refused the host's address (a class such as `loopback`).
    Refused(&'static str),
}

impl CheckFailure {
    /// A short, stable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NoRecord => "no_record",
            Self::WrongValue => "wrong_value",
            Self::DnsError => "dns_error",
            Self::Timeout => "timeout",
            Self::HttpStatus(_) => "http_status",
            Self::HttpError => "http_error",
            Self::TooLarge => "too_large",
            Self::Refused(_) => "address_refused",
        }
    }

    /// The code and what it means, for the administrator.
    pub fn message(&self) -> String {
        let text = match self {
            Self::NoRecord => "no TXT record was found at the challenge name".into(),
            Self::WrongValue => "the record or file does not carry the expected value".into(),
            Self::DnsError => "the DNS server did not answer the query".into(),
            Self::Timeout => format!("no answer within {} seconds", CHECK_TIMEOUT.as_secs()),
            Self::HttpStatus(s) => format!("the web server answered HTTP {s}"),
            Self::HttpError => "the connection to the web server failed".into(),
            Self::TooLarge => format!("the file is larger than {HTTP_MAX_BYTES} bytes"),
            Self::Refused(class) => {
                format!("the host has a {class} address, which this server does not call")
            }
        };
        format!("{}: {text}", self.code())
    }
}

/// Looks up the TXT records at [`dns_name`] (through `resolver`, else the system's) and
/// accepts one whose character-strings joined are [`dns_value`].
///
/// # Errors
/// Why the claim is not proven.
pub async fn check_dns(resolver: Option<SocketAddr>, domain: &str, token: &str) -> Result<(), CheckFailure> {
    let resolver = match resolver {
        Some(addr) => {
            let mut server = NameServerConfig::udp(addr.ip());
            let mut udp = ConnectionConfig::udp();
            udp.port = addr.port();
            server.connections = vec![udp];
            let config = ResolverConfig::from_parts(None, vec![], vec![server]);
            Resolver::builder_with_config(config, TokioRuntimeProvider::default())
        }
        None => Resolver::builder_tokio().map_err(|_| CheckFailure::DnsError)?,
    };
    let mut resolver = resolver;
    let opts = resolver.options_mut();
    opts.timeout = Duration::from_secs(4);
    opts.attempts = 2;
    opts.cache_size = 0;
    let resolver = resolver.build().map_err(|_| CheckFailure::DnsError)?;
    let name = format!("{}.", dns_name(domain));
    let found = match tokio::time::timeout(CHECK_TIMEOUT, resolver.txt_lookup(name)).await {
        Err(_) => return Err(CheckFailure::Timeout),
        Ok(Err(e)) if e.is_no_records_found() || e.is_nx_domain() => return Err(CheckFailure::NoRecord),
        Ok(Err(e)) if e.to_string().contains("timed out") => return Err(CheckFailure::Timeout),
        Ok(Err(_)) => return Err(CheckFailure::DnsError),
        Ok(Ok(found)) => found,
    };
    let want = dns_value(token);
    let texts: Vec<String> = found
        .answers()
        .iter()
        .filter_map(|r| match &r.data {
            RData::TXT(txt) => Some(
                txt.txt_data
                    .iter()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect::<String>(),
            ),
            _ => None,
        })
        .collect();
    if texts.is_empty() {
        Err(CheckFailure::NoRecord)
    } else if texts.iter().any(|t| t.trim() == want) {
        Ok(())
    } else {
        Err(CheckFailure::WrongValue)
    }
}

/// Fetches [`http_url`] through the outbound guard (no redirects, [`CHECK_TIMEOUT`], a small
/// body) and accepts a body that is the token. `dev_addr` (development and tests only) fetches
/// `http://{dev_addr}/.well-known/latchkey-verification.txt` instead, still guarded.
///
/// # Errors
/// Why the claim is not proven.
pub async fn check_http(
    policy: &OutboundPolicy,
    dev_addr: Option<SocketAddr>,
    domain: &str,
    token: &str,
) -> Result<(), CheckFailure> {
    let url = match dev_addr {
        Some(a) => format!("http://{a}/.well-known/latchkey-verification.txt"),
        None => http_url(domain),
    };
    let checked = match outbound::check(policy, &url, CHECK_TIMEOUT).await {
        Ok(c) => c,
        Err(crate::ServiceError::AddressRefused { class, .. }) => return Err(CheckFailure::Refused(class)),
        Err(_) => return Err(CheckFailure::HttpError),
    };
    let fetch = async {
        let mut res = checked
            .client
            .get(checked.url)
            .header(reqwest::header::HOST, domain)
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    CheckFailure::Timeout
                } else {
                    CheckFailure::HttpError
                }
            })?;
        if !res.status().is_success() {
            return Err(CheckFailure::HttpStatus(res.status().as_u16()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = res.chunk().await.map_err(|_| CheckFailure::HttpError)? {
            if body.len() + chunk.len() > HTTP_MAX_BYTES {
                return Err(CheckFailure::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    };
    let body = tokio::time::timeout(CHECK_TIMEOUT, fetch)
        .await
        .map_err(|_| CheckFailure::Timeout)??;
    if String::from_utf8_lossy(&body).trim() == token {
        Ok(())
    } else {
        Err(CheckFailure::WrongValue)
    }
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn domains_are_normalized_or_refused() {
        assert_eq!(normalize(" Corp.Example. ").unwrap(), "corp.example");
        assert_eq!(
            normalize("xn--bcher-kva.example").unwrap(),
            "xn--bcher-kva.example"
        );
        for bad in [
            "",
            "example",
            "-a.example",
            "a-.example",
            "a..example",
            "a_b.example",
            "127.0.0.1",
            "a/b.example",
            "a.example:80",
        ] {
            assert!(normalize(bad).is_err(), "{bad}");
        }
        assert!(normalize(&format!("{}.example", "a".repeat(64))).is_err());
    }
}
