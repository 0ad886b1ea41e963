//! Redirect URI matching (RFC 6749 §3.1.2, RFC 9700 §4.1.3): the requested URI must equal one
//! of the client's registered URIs as an exact string. The one exception is RFC 8252 §7.3: a
//! native app's loopback redirect (`http://127.0.0.1/…` or `http://[::1]/…`) may use any port,
//! since the app picks a free one at run time. Nothing is normalised: a near miss (other port,
//! case, trailing slash, extra query, userinfo, fragment) is a different URI.

use crate::OAuthError;

/// The registered URI the request named, or an error for the error page (never a redirect to
/// an unregistered URI).
pub fn check_redirect_uri<'a>(
    requested: &str,
    registered: &'a [String],
    native_loopback_ports: bool,
) -> Result<&'a str, OAuthError> {
    if let Some(exact) = registered.iter().find(|r| r.as_str() == requested) {
        return Ok(exact);
    }
    if native_loopback_ports
        && let Some(r) = registered
            .iter()
            .find(|r| same_except_loopback_port(requested, r))
    {
        return Ok(r);
    }
    Err(OAuthError::invalid_request(
        "redirect_uri is not registered for this client",
    ))
}

/// `http://127.0.0.1:PORT/path?query` against a registered `http://127.0.0.1/path?query`
/// (or with `[::1]`): equal except for the port.
fn same_except_loopback_port(requested: &str, registered: &str) -> bool {
    for host in ["http://127.0.0.1", "http://[::1]"] {
        let (Some(requested_rest), Some(registered_rest)) =
            (requested.strip_prefix(host), registered.strip_prefix(host))
        else {
            continue;
        };
        // The registered URI names no port, or the same rest would already have matched.
        let registered_rest = registered_rest.strip_prefix(':').map_or(registered_rest, |r| {
            r.trim_start_matches(|c: char| c.is_ascii_digit())
        });
        let Some(after_port) = requested_rest.strip_prefix(':') else {
            return requested_rest == registered_rest;
        };
        let digits = after_port.len() - after_port.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        let (port, path) = after_port.split_at(digits);
        return !port.is_empty()
            && port.len() <= 5
            && port.parse::<u32>().is_ok_and(|p| (1..=65_535).contains(&p))
            && (path.is_empty() || path.starts_with('/') || path.starts_with('?'))
            && path == registered_rest;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(uris: &[&str]) -> Vec<String> {
        uris.iter().map(|u| (*u).to_owned()).collect()
    }

    #[test]
    fn only_the_exact_string_matches() {
        let r = reg(&["https://portal.example.com/cb"]);
        assert_eq!(
            check_redirect_uri("https://portal.example.com/cb", &r, false).unwrap(),
            "https://portal.example.com/cb"
        );
        // SECURITY-TESTS O1: every near miss is refused.
        for miss in [
            "https://portal.example.com:8443/cb",
            "https://portal.example.com/cb/evil",
            "https://portal.example.com/cb?x=1",
            "https://portal.example.com/cb/../cb",
            "https://portal.example.com/cb/",
            "https://portal.example.com@evil.example/cb",
            "https://evil.example@portal.example.com/cb",
            "http://portal.example.com/cb",
            "https://portal.example.com/CB",
            "https://PORTAL.example.com/cb",
            "https://portal.example.com/cb#frag",
            "https://portal.example.com/cb%2F",
            "https://portal.example.com.evil.example/cb",
            " https://portal.example.com/cb",
            "",
        ] {
            assert!(check_redirect_uri(miss, &r, false).is_err(), "{miss}");
            assert!(check_redirect_uri(miss, &r, true).is_err(), "{miss} (native)");
        }
    }

    #[test]
    fn native_apps_may_pick_a_loopback_port() {
        let r = reg(&["http://127.0.0.1/callback", "http://[::1]/cb?app=1"]);
        assert!(check_redirect_uri("http://127.0.0.1:51234/callback", &r, true).is_ok());
        assert!(check_redirect_uri("http://127.0.0.1/callback", &r, true).is_ok());
        assert!(check_redirect_uri("http://[::1]:8080/cb?app=1", &r, true).is_ok());
        // Only for native clients, and only the port may differ.
        assert!(check_redirect_uri("http://127.0.0.1:51234/callback", &r, false).is_err());
        for miss in [
            "http://127.0.0.1:51234/callback/x",
            "http://127.0.0.1:51234/callbacK",
            "http://127.0.0.1:0/callback",
            "http://127.0.0.1:99999/callback",
            "http://127.0.0.1:/callback",
            "http://127.0.0.1:80x/callback",
            "http://127.0.0.1:5123@evil.example/callback",
            "http://localhost:51234/callback",
            "https://127.0.0.1:51234/callback",
            "http://[::1]:8080/cb",
        ] {
            assert!(check_redirect_uri(miss, &r, true).is_err(), "{miss}");
        }
    }
}
