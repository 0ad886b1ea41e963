//! What tokens say: RFC 9068 access-token claims, OIDC Core §2 ID-token claims, `at_hash`,
//! the ID token's algorithm, and the `acr` and `sid` values they carry.

use crate::scope;
use base64::Engine as _;
use latchkey_core::{Client, User};
use serde_json::{Map, Value, json};
use sha2::Digest as _;

/// RFC 9068 §2.1 header `typ` of JWT access tokens.
pub const AT_JWT: &str = "at+jwt";

/// Who a user token speaks for and how they signed in.
#[derive(Debug, Clone)]
pub struct Authentication<'a> {
    pub user: &'a User,
    /// The `sub` the client knows the user by: their id, or its pairwise value
    /// (`crate::subject::subject_for`).
    pub sub: &'a str,
    /// Seconds since the epoch.
    pub auth_time: i64,
    pub acr: Option<&'a str>,
    pub amr: &'a [String],
}

/// One token's envelope: issuer, client, times (seconds) and id.
#[derive(Debug, Clone)]
pub struct Envelope<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub iat: i64,
    pub exp: i64,
    pub jti: &'a str,
}

fn authn_claims(m: &mut Map<String, Value>, a: &Authentication<'_>) {
    m.insert("sub".into(), json!(a.sub));
    m.insert("auth_time".into(), json!(a.auth_time));
    if let Some(acr) = a.acr {
        m.insert("acr".into(), json!(acr));
    }
    if !a.amr.is_empty() {
        m.insert("amr".into(), json!(a.amr));
    }
}

/// RFC 9068 §2.2: `iss`, `exp`, `aud`, `sub`, `client_id`, `iat`, `jti`, `scope`, and for users
/// `auth_time`, `acr`, `amr`. A client-credentials token's `sub` is the client (§2.2, §5).
pub fn access_token_claims(
    e: &Envelope<'_>,
    audience: &str,
    scope: &str,
    user: Option<&Authentication<'_>>,
) -> Value {
    let mut m = Map::new();
    m.insert("iss".into(), json!(e.issuer));
    m.insert("exp".into(), json!(e.exp));
    m.insert("aud".into(), json!(audience));
    m.insert("sub".into(), json!(e.client_id));
    m.insert("client_id".into(), json!(e.client_id));
    m.insert("iat".into(), json!(e.iat));
    m.insert("jti".into(), json!(e.jti));
    if !scope.is_empty() {
        m.insert("scope".into(), json!(scope));
    }
    if let Some(a) = user {
        authn_claims(&mut m, a);
    }
    Value::Object(m)
}

/// OIDC Core §2 and §3.1.3.6: the ID token for `aud` = client, with `azp`, `nonce`, `sid`,
/// `at_hash`, and the user's claims the scope releases.
pub fn id_token_claims(
    e: &Envelope<'_>,
    a: &Authentication<'_>,
    scope: &str,
    nonce: Option<&str>,
    sid: Option<&str>,
    at_hash: Option<&str>,
) -> Value {
    let mut m = Map::new();
    m.insert("iss".into(), json!(e.issuer));
    m.insert("aud".into(), json!(e.client_id));
    m.insert("azp".into(), json!(e.client_id));
    m.insert("exp".into(), json!(e.exp));
    m.insert("iat".into(), json!(e.iat));
    m.insert("jti".into(), json!(e.jti));
    authn_claims(&mut m, a);
    if let Some(n) = nonce {
        m.insert("nonce".into(), json!(n));
    }
    if let Some(s) = sid {
        m.insert("sid".into(), json!(s));
    }
    if let Some(h) = at_hash {
        m.insert("at_hash".into(), json!(h));
    }
    m.extend(scope::user_claims(a.user, scope));
    Value::Object(m)
}

/// OIDC Core §3.1.3.6: base64url of the left half of the access token's hash, with the hash of
/// the ID token's algorithm (SHA-256 for RS256/ES256, SHA-512 for EdDSA).
pub fn at_hash(access_token: &str, alg: latchkey_keys::Alg) -> String {
    let digest: Vec<u8> = match alg {
        latchkey_keys::Alg::EdDSA => sha2::Sha512::digest(access_token.as_bytes()).to_vec(),
        _ => sha2::Sha256::digest(access_token.as_bytes()).to_vec(),
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..digest.len() / 2])
}

/// The ID-token signing algorithm of a client: its registered `id_token_signed_response_alg`
/// (OIDC Registration §2), else RS256, which OIDC Core §15.1 requires every provider to offer.
pub fn id_token_alg(c: &Client) -> latchkey_keys::Alg {
    c.settings
        .id_token_signed_response_alg
        .as_deref()
        .and_then(|a| a.parse().ok())
        .unwrap_or(latchkey_keys::Alg::RS256)
}

pub use latchkey_core::sid_of;

/// The `acr` (OIDC Core §2) the authentication methods `amr` satisfy, if any.
pub fn acr_of(amr: &[String]) -> Option<String> {
    latchkey_mfa::acr::acr_for(amr).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use latchkey_core::UserStatus;

    fn user() -> User {
        User {
            id: "u1".into(),
            tenant_id: "t".into(),
            username: "alice".into(),
            email: Some("a@example.com".into()),
            email_verified: false,
            display_name: None,
            status: UserStatus::Active,
            password_hash: None,
            password_changed_at: None,
            sessions_not_before: None,
            created_at: 0,
            updated_at: 0,
        }
    }

    fn env() -> Envelope<'static> {
        Envelope {
            issuer: "https://idp/t/a",
            client_id: "c1",
            iat: 100,
            exp: 700,
            jti: "j",
        }
    }

    #[test]
    fn access_tokens_name_the_user_or_the_client() {
        let u = user();
        let amr = vec!["pwd".to_owned()];
        let a = Authentication {
            user: &u,
            sub: "u1",
            auth_time: 90,
            acr: Some("urn:latchkey:acr:pwd"),
            amr: &amr,
        };
        let c = access_token_claims(&env(), "https://api", "openid email", Some(&a));
        assert_eq!(
            (c["sub"].as_str(), c["client_id"].as_str()),
            (Some("u1"), Some("c1"))
        );
        assert_eq!(c["aud"], "https://api");
        assert_eq!(c["amr"], json!(["pwd"]));
        let machine = access_token_claims(&env(), "c1", "reports", None);
        assert_eq!(machine["sub"], "c1");
        assert!(machine.get("auth_time").is_none());
    }

    #[test]
    fn id_tokens_carry_nonce_azp_and_scoped_claims() {
        let u = user();
        let a = Authentication {
            user: &u,
            sub: "u1",
            auth_time: 90,
            acr: None,
            amr: &[],
        };
        let c = id_token_claims(&env(), &a, "openid", Some("n-1"), Some("sid"), Some("h"));
        assert_eq!((c["aud"].as_str(), c["azp"].as_str()), (Some("c1"), Some("c1")));
        assert_eq!(c["nonce"], "n-1");
        assert!(c.get("email").is_none());
        let c = id_token_claims(&env(), &a, "openid email", None, None, None);
        assert_eq!(c["email"], "a@example.com");
        assert!(c.get("nonce").is_none());
    }

    #[test]
    fn id_token_alg_follows_the_client() {
        let mut c = crate::testing::client(latchkey_core::ClientType::Public);
        assert_eq!(id_token_alg(&c), latchkey_keys::Alg::RS256);
        c.settings.id_token_signed_response_alg = Some("ES256".into());
        assert_eq!(id_token_alg(&c), latchkey_keys::Alg::ES256);
        c.settings.id_token_signed_response_alg = Some("EdDSA".into());
        assert_eq!(id_token_alg(&c), latchkey_keys::Alg::EdDSA);
        c.settings.id_token_signed_response_alg = Some("none".into());
        assert_eq!(id_token_alg(&c), latchkey_keys::Alg::RS256, "never unsigned");
    }

    #[test]
    fn acr_comes_from_amr() {
        let amr = |m: &[&str]| m.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        use latchkey_mfa::acr::{MFA, PHR, PWD};
        assert_eq!(acr_of(&amr(&[])), None);
        assert_eq!(acr_of(&amr(&["pwd"])).as_deref(), Some(PWD));
        assert_eq!(acr_of(&amr(&["pwd", "otp", "mfa"])).as_deref(), Some(MFA));
        assert_eq!(acr_of(&amr(&["hwk", "mfa"])).as_deref(), Some(PHR));
    }

    #[test]
    fn sid_names_the_session_without_revealing_its_key() {
        let sid = sid_of("session-key");
        assert_eq!(sid.len(), 32);
        assert!(!sid.contains("session-key"));
        assert_eq!(sid, sid_of("session-key"));
        assert_ne!(sid, sid_of("session-key2"));
    }

    #[test]
    fn at_hash_matches_the_oidc_example() {
        // OIDC Core Appendix A.3 (RS256, SHA-256).
        assert_eq!(
            at_hash(
                "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y",
                latchkey_keys::Alg::RS256
            ),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
    }
}
