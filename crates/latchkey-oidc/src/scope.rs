//! Scopes (RFC 6749 §3.3) and the claims they release (OIDC Core §5.4). Scopes a client is not
//! registered for are dropped from user requests (as node-oidc-provider and Keycloak do) and
//! refused for client credentials, where there is nobody to ask; a user's claims are released
//! by scope only.

use crate::OAuthError;
use latchkey_core::User;
use serde_json::{Map, Value, json};

pub const OPENID: &str = "openid";
pub const OFFLINE_ACCESS: &str = "offline_access";
/// Scopes that speak about a user: never in a client-credentials token. `roles` and `groups`
/// release the user's effective roles and groups (`crate::claims`).
pub const USER_SCOPES: [&str; 6] = [OPENID, "profile", "email", OFFLINE_ACCESS, "roles", "groups"];

/// The claims each standard scope releases.
pub const PROFILE_CLAIMS: [&str; 3] = ["name", "preferred_username", "updated_at"];
pub const EMAIL_CLAIMS: [&str; 2] = ["email", "email_verified"];

/// Splits a `scope` parameter: `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`, deduplicated,
/// in request order.
pub fn parse(scope: Option<&str>) -> Result<Vec<String>, OAuthError> {
    let mut out: Vec<String> = Vec::new();
    for s in scope.unwrap_or_default().split(' ').filter(|s| !s.is_empty()) {
        if !s
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
        {
            return Err(OAuthError::invalid_scope(
                "scope contains characters RFC 6749 §3.3 does not allow",
            ));
        }
        if s.len() > 128 || out.len() >= 64 {
            return Err(OAuthError::invalid_scope("scope is too long"));
        }
        if !out.iter().any(|o| o == s) {
            out.push(s.to_owned());
        }
    }
    Ok(out)
}

pub fn join(scopes: &[String]) -> String {
    scopes.join(" ")
}

pub fn contains(scope: &str, name: &str) -> bool {
    scope.split(' ').any(|s| s == name)
}

/// Every scope of `narrower` is in `wider`.
pub fn is_subset(narrower: &str, wider: &str) -> bool {
    narrower
        .split(' ')
        .filter(|s| !s.is_empty())
        .all(|s| contains(wider, s))
}

/// The requested scopes the client is registered for, in request order.
pub fn allowed(requested: &[String], registered: &[String]) -> Vec<String> {
    requested
        .iter()
        .filter(|s| registered.contains(s))
        .cloned()
        .collect()
}

/// The user's claims the granted `scope` releases (besides `sub`).
pub fn user_claims(user: &User, scope: &str) -> Map<String, Value> {
    let mut m = Map::new();
    if contains(scope, "profile") {
        if let Some(n) = &user.display_name {
            m.insert("name".into(), json!(n));
        }
        m.insert("preferred_username".into(), json!(user.username));
        m.insert("updated_at".into(), json!(user.updated_at / 1000));
    }
    if contains(scope, "email")
        && let Some(e) = &user.email
    {
        m.insert("email".into(), json!(e));
        // Latchkey does not verify addresses itself (yet): say so instead of guessing.
        m.insert("email_verified".into(), json!(false));
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use latchkey_core::UserStatus;

    #[test]
    fn parses_dedups_and_refuses_bad_characters() {
        assert_eq!(parse(Some("openid  email openid")).unwrap(), ["openid", "email"]);
        assert!(parse(None).unwrap().is_empty());
        assert!(parse(Some("openid \"x\"")).is_err());
        assert!(parse(Some("a\\b")).is_err());
    }

    #[test]
    fn subset_and_allowed() {
        assert!(is_subset("openid email", "email openid profile"));
        assert!(!is_subset("openid admin", "openid email"));
        let req = parse(Some("openid admin email")).unwrap();
        assert_eq!(
            allowed(&req, &["openid".into(), "email".into()]),
            ["openid", "email"]
        );
    }

    #[test]
    fn claims_follow_scopes_only() {
        let u = User {
            id: "u1".into(),
            tenant_id: "t".into(),
            username: "alice".into(),
            email: Some("alice@example.com".into()),
            display_name: Some("Alice".into()),
            status: UserStatus::Active,
            password_hash: None,
            password_changed_at: None,
            sessions_not_before: None,
            created_at: 0,
            updated_at: 5_000,
        };
        assert!(user_claims(&u, "openid").is_empty());
        let p = user_claims(&u, "openid profile");
        assert_eq!(p["name"], "Alice");
        assert!(p.get("email").is_none());
        let e = user_claims(&u, "openid email");
        assert_eq!(e["email"], "alice@example.com");
        assert!(e.get("name").is_none());
    }
}
