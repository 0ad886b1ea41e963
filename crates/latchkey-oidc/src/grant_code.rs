//! The authorization code grant at the token endpoint (RFC 6749 §4.1.3, RFC 7636 §4.6): the code
//! is bound to its client, its redirect URI and its PKCE challenge, and lives a minute. A code
//! already spent is handled by the store, which revokes what the first use issued.

use crate::pkce::{CodeChallenge, check_code_verifier};
use crate::{OAuthError, authorize::Params};
use latchkey_core::Client;
use latchkey_store::StoredCode;

/// Checks a token request against the code it presents (`now` in milliseconds).
pub fn check_code_grant(code: &StoredCode, client: &Client, p: &Params, now: i64) -> Result<(), OAuthError> {
    if code.grant.client_id != client.client_id {
        return Err(OAuthError::invalid_grant("the code was issued to another client"));
    }
    if now >= code.expires_at {
        return Err(OAuthError::invalid_grant("the code has expired"));
    }
    if code.grant.revoked_at.is_some() {
        return Err(OAuthError::invalid_grant("the code's grant was revoked"));
    }
    if p.get("redirect_uri") != Some(&code.redirect_uri) {
        return Err(OAuthError::invalid_grant(
            "redirect_uri must be the one of the authorization request",
        ));
    }
    let stored = code.code_challenge.as_deref().map(CodeChallenge::from_stored);
    check_code_verifier(stored.as_ref(), p.get("code_verifier").map(String::as_str))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;
    use latchkey_core::{ClientId, ClientType, UserId};
    use latchkey_store::Grant;

    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn client(id: &str) -> Client {
        Client {
            client_id: ClientId(id.into()),
            ..crate::testing::client(ClientType::Public)
        }
    }

    fn code(challenge: Option<&str>) -> StoredCode {
        StoredCode {
            code_hash: "h".into(),
            grant: Grant {
                id: "g".into(),
                client_id: ClientId("c1".into()),
                user_id: UserId("u".into()),
                session_key: None,
                scope: "openid".into(),
                auth_time: 0,
                acr: None,
                amr: vec![],
                created_at: 0,
                expires_at: 1_000_000,
                revoked_at: None,
            },
            redirect_uri: "https://app/cb".into(),
            code_challenge: challenge.map(str::to_owned),
            nonce: None,
            created_at: 0,
            expires_at: 60_000,
            used_at: None,
        }
    }

    fn p(pairs: &[(&str, &str)]) -> Params {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn binds_client_redirect_pkce_and_time() {
        let good = p(&[("redirect_uri", "https://app/cb"), ("code_verifier", VERIFIER)]);
        let c = code(Some(CHALLENGE));
        assert!(check_code_grant(&c, &client("c1"), &good, 1_000).is_ok());
        let fails = |code: &StoredCode, cl: &str, params: &Params, now: i64| {
            check_code_grant(code, &client(cl), params, now).unwrap_err().code
        };
        assert_eq!(fails(&c, "c2", &good, 1_000), ErrorCode::InvalidGrant);
        assert_eq!(fails(&c, "c1", &good, 60_000), ErrorCode::InvalidGrant);
        let other_uri = p(&[("redirect_uri", "https://app/cb/"), ("code_verifier", VERIFIER)]);
        assert_eq!(fails(&c, "c1", &other_uri, 1_000), ErrorCode::InvalidGrant);
        let no_verifier = p(&[("redirect_uri", "https://app/cb")]);
        assert_eq!(fails(&c, "c1", &no_verifier, 1_000), ErrorCode::InvalidGrant);
        let wrong = p(&[
            ("redirect_uri", "https://app/cb"),
            ("code_verifier", &"a".repeat(43)),
        ]);
        assert_eq!(fails(&c, "c1", &wrong, 1_000), ErrorCode::InvalidGrant);
        // A code issued without PKCE can't be redeemed with a verifier, and vice versa.
        let plain = code(None);
        assert_eq!(fails(&plain, "c1", &good, 1_000), ErrorCode::InvalidGrant);
        assert!(check_code_grant(&plain, &client("c1"), &no_verifier, 1_000).is_ok());
    }
}
