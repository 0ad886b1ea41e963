//! Rules for what operators and clients hand us. Each failure names the field and says what is wrong.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ValidationError {
    pub field: &'static str,
    pub message: String,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

fn err(field: &'static str, message: impl Into<String>) -> ValidationError {
    ValidationError {
        field,
        message: message.into(),
    }
}

/// Tenant slug: `^[a-z0-9][a-z0-9-]{1,62}$`. It becomes part of every issuer URL.
pub fn slug(s: &str) -> Result<(), ValidationError> {
    let ok = (2..=63).contains(&s.len())
        && s.bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(err(
            "slug",
            format!(
                "{s:?} is not a valid slug: use 2-63 characters a-z, 0-9 and '-', starting with a letter or digit"
            ),
        ))
    }
}

/// Usernames are compared case-insensitively, so they are stored lowercased.
/// Returns the normalized form.
pub fn username(s: &str) -> Result<String, ValidationError> {
    let n = s.trim().to_lowercase();
    if n.is_empty() || n.chars().count() > 128 {
        return Err(err("username", "must be 1-128 characters"));
    }
    if let Some(c) = n
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || "._@+-".contains(*c)))
    {
        return Err(err(
            "username",
            format!("character {c:?} is not allowed; use a-z, 0-9 and . _ @ + -"),
        ));
    }
    Ok(n)
}

/// A deliberately simple address check (the mailbox proves itself by verification later).
/// Returns the lowercased form.
pub fn email(s: &str) -> Result<String, ValidationError> {
    let n = s.trim().to_lowercase();
    let valid = n.len() <= 254
        && !n.chars().any(|c| c.is_whitespace() || c.is_control())
        && n.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        });
    if valid {
        Ok(n)
    } else {
        Err(err("email", format!("{s:?} is not an email address")))
    }
}

/// Human-facing names (tenant display name, client name, user display name).
pub fn display_name(field: &'static str, s: &str) -> Result<String, ValidationError> {
    let n = s.trim();
    if n.is_empty() || n.chars().count() > 200 {
        return Err(err(field, "must be 1-200 characters"));
    }
    if n.chars().any(char::is_control) {
        return Err(err(field, "must not contain control characters"));
    }
    Ok(n.to_owned())
}

/// A group name: 1-128 characters, no control characters, no `/` (it separates the names in a
/// group's path) and no surrounding spaces. Returns the trimmed name.
pub fn group_name(s: &str) -> Result<String, ValidationError> {
    let n = s.trim();
    if n.is_empty() || n.chars().count() > 128 {
        return Err(err(
            "name",
            format!("{s:?} is not a valid group name: use 1-128 characters"),
        ));
    }
    if n.chars().any(|c| c == '/' || c.is_control()) {
        return Err(err(
            "name",
            format!("{s:?} is not a valid group name: '/' and control characters are not allowed"),
        ));
    }
    Ok(n.to_owned())
}

/// A scope token (RFC 6749 §3.3: `1*( %x21 / %x23-5B / %x5D-7E )`).
pub fn scope(s: &str) -> Result<(), ValidationError> {
    let ok = !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b));
    if ok {
        Ok(())
    } else {
        Err(err(
            "scope",
            format!("{s:?} is not a valid scope token (RFC 6749 §3.3)"),
        ))
    }
}

/// A redirect URI a client may register (RFC 6749 §3.1.2, RFC 8252 §7, Security BCP §4.1):
/// absolute, no fragment, no userinfo, no wildcards; `https`, `http` only on a loopback host,
/// or a private-use scheme in reverse-domain form (`com.example.app:/cb`) for native apps.
/// Matching later is by exact string, so nothing is normalized.
pub fn redirect_uri(field: &'static str, s: &str) -> Result<(), ValidationError> {
    let bad = |m: &str| Err(err(field, format!("{s:?} {m}")));
    if s.len() > 2000 {
        return bad("is longer than 2000 characters");
    }
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("contains whitespace or control characters");
    }
    if s.contains('#') {
        return bad("must not contain a fragment");
    }
    if s.contains('*') {
        return bad("must not contain wildcards");
    }
    // Backslashes and a missing authority are read differently by different URL parsers
    // (WHATWG turns `https:\\evil` and `https:///evil` into hosts); refuse them outright.
    if s.contains('\\') {
        return bad("must not contain backslashes");
    }
    let Ok(url) = url::Url::parse(s) else {
        return bad("is not an absolute URI");
    };
    if !url.username().is_empty() || url.password().is_some() {
        return bad("must not contain user information");
    }
    match url.scheme() {
        "https" | "http"
            if !s[url.scheme().len()..].starts_with("://")
                || s[url.scheme().len() + 3..].starts_with('/') =>
        {
            return bad("must be scheme://host/…");
        }
        "https" => {
            if url.host_str().is_none_or(str::is_empty) {
                return bad("has no host");
            }
        }
        "http" => {
            let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
            if !loopback {
                return bad("uses http on a non-loopback host; use https");
            }
        }
        scheme => {
            // RFC 8252 §7.1: private-use schemes are reverse domain names, which also keeps
            // `javascript:`, `data:` and `file:` out.
            let reverse_domain = scheme.contains('.') && scheme.split('.').all(|p| !p.is_empty());
            if !reverse_domain {
                return bad(
                    "uses a scheme that is neither https, loopback http, nor a reverse-domain private-use scheme",
                );
            }
        }
    }
    Ok(())
}

/// A back- or front-channel logout URI (OIDC Back-Channel Logout §2.2, Front-Channel Logout
/// §2): a redirect URI's rules, but only `https` or loopback `http`, since Latchkey or the
/// browser calls it as a web address.
pub fn logout_uri(field: &'static str, s: &str) -> Result<(), ValidationError> {
    redirect_uri(field, s)?;
    if s.starts_with("https://") || s.starts_with("http://") {
        Ok(())
    } else {
        Err(err(
            field,
            format!("{s:?} is not an https (or loopback http) URL"),
        ))
    }
}

/// An absolute `https` URL (metadata and key-set locations).
pub fn https_url(field: &'static str, s: &str) -> Result<(), ValidationError> {
    let ok = s.len() <= 2000
        && s.starts_with("https://")
        && url::Url::parse(s).is_ok_and(|u| {
            u.host_str().is_some_and(|h| !h.is_empty())
                && u.fragment().is_none()
                && u.username().is_empty()
                && u.password().is_none()
        });
    if ok {
        Ok(())
    } else {
        Err(err(field, format!("{s:?} is not an https URL")))
    }
}

/// A resource indicator (RFC 8707 §2): an absolute URI without a fragment, at most 512 bytes.
pub fn resource(field: &'static str, s: &str) -> Result<(), ValidationError> {
    let ok =
        s.len() <= 512 && url::Url::parse(s).is_ok_and(|u| u.fragment().is_none() && !u.cannot_be_a_base());
    if ok {
        Ok(())
    } else {
        Err(err(
            field,
            format!("{s:?} is not an absolute URI without a fragment (RFC 8707 §2)"),
        ))
    }
}

/// A JWK Set (RFC 7517 §5) of public keys: private members are refused so a client can't
/// register (and Latchkey never stores) its private key by mistake.
pub fn public_jwk_set(set: &serde_json::Value) -> Result<(), ValidationError> {
    const PRIVATE: [&str; 7] = ["d", "p", "q", "dp", "dq", "qi", "k"];
    let keys = set
        .get("keys")
        .and_then(serde_json::Value::as_array)
        .filter(|k| !k.is_empty() && k.len() <= 20);
    let Some(keys) = keys else {
        return Err(err(
            "jwks",
            "must be a JWK Set: {\"keys\": [ … ]} with 1 to 20 keys",
        ));
    };
    for k in keys {
        let Some(obj) = k.as_object() else {
            return Err(err("jwks", "every key must be a JSON object"));
        };
        if !matches!(
            obj.get("kty").and_then(serde_json::Value::as_str),
            Some("RSA" | "EC" | "OKP")
        ) {
            return Err(err("jwks", "every key needs kty RSA, EC or OKP"));
        }
        if let Some(m) = PRIVATE.iter().find(|m| obj.contains_key(**m)) {
            return Err(err(
                "jwks",
                format!("key contains the private member {m:?}; register public keys only"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slug_follows_the_pattern() {
        for ok in ["demo", "a1", "acme-corp", "0x"] {
            assert!(slug(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "a",
            "-acme",
            "Acme",
            "acme_corp",
            "acme corp",
            "äcme",
            &"a".repeat(64),
        ] {
            assert!(slug(bad).is_err(), "{bad}");
        }
        assert!(slug(&"a".repeat(63)).is_ok());
    }

    #[test]
    fn username_is_lowercased_and_restricted() {
        assert_eq!(username("  Alice@Example.com ").unwrap(), "alice@example.com");
        assert!(username("al ice").is_err());
        assert!(username("<script>").is_err());
        assert!(username("").is_err());
    }

    #[test]
    fn email_needs_local_part_and_dotted_domain() {
        assert_eq!(email("Bob@Example.COM").unwrap(), "bob@example.com");
        for bad in [
            "bob",
            "@example.com",
            "bob@localhost",
            "bob@@x.com",
            "b ob@x.com",
            "bob@x.com.",
        ] {
            assert!(email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn redirect_uri_accepts_https_loopback_and_private_use() {
        for ok in [
            "https://app.example.com/callback",
            "https://app.example.com:8443/cb?x=1",
            "http://127.0.0.1:9000/cb",
            "http://localhost/cb",
            "http://[::1]:8000/cb",
            "com.example.app:/oauth2redirect",
        ] {
            assert!(redirect_uri("redirect_uri", ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn redirect_uri_refuses_dangerous_forms() {
        for bad in [
            "/relative",
            "https://app.example.com/cb#frag",
            "https://good@evil.example/cb",
            "https://*.example.com/cb",
            "http://app.example.com/cb",
            "javascript:alert(1)",
            "data:text/html,hi",
            "file:///etc/passwd",
            "myapp:/cb",
            "https://app.example.com/c b",
            "https:///nohost",
            "https:/app.example.com/cb",
            "https:\\\\evil.example\\cb",
            "http://127.0.0.1\\@evil.example/cb",
        ] {
            assert!(redirect_uri("redirect_uri", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn jwk_sets_must_be_public_keys() {
        let ok = serde_json::json!({"keys": [{"kty": "EC", "crv": "P-256", "x": "a", "y": "b"}]});
        assert!(public_jwk_set(&ok).is_ok());
        let private =
            serde_json::json!({"keys": [{"kty": "EC", "crv": "P-256", "x": "a", "y": "b", "d": "secret"}]});
        assert!(public_jwk_set(&private).unwrap_err().message.contains("\"d\""));
        let symmetric = serde_json::json!({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]});
        assert!(public_jwk_set(&symmetric).is_err());
        assert!(public_jwk_set(&serde_json::json!({"keys": []})).is_err());
        assert!(public_jwk_set(&serde_json::json!([1])).is_err());
        assert!(https_url("jwks_uri", "https://rp.example.com/jwks.json").is_ok());
        assert!(https_url("jwks_uri", "http://rp.example.com/jwks.json").is_err());
        assert!(https_url("jwks_uri", "https://user:pw@rp.example.com/jwks.json").is_err());
    }

    #[test]
    fn group_names_have_no_slash_or_control_characters() {
        assert_eq!(group_name(" Finance team ").unwrap(), "Finance team");
        assert!(group_name("staff/finance").is_err());
        assert!(group_name("a\nb").is_err());
        assert!(group_name("  ").is_err());
        assert!(group_name(&"x".repeat(129)).is_err());
    }

    #[test]
    fn scope_tokens_follow_rfc6749() {
        assert!(scope("openid").is_ok());
        assert!(scope("api:read").is_ok());
        assert!(scope("two words").is_err());
        assert!(scope("quote\"d").is_err());
        assert!(scope("").is_err());
    }
}
