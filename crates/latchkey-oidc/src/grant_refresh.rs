//! The refresh token grant (RFC 6749 §6, RFC 9700 §4.14.2): bound to its client, rotated on
//! every use (the store spends it), scope may only narrow.

use crate::{OAuthError, scope};
use latchkey_core::Client;
use latchkey_store::{StoredToken, TokenKind};

/// The scope the new tokens get; `now` in milliseconds. A token already spent is left for the
/// store to detect (and revoke its family), so it is not refused here.
pub fn check_refresh_grant(
    token: &StoredToken,
    client: &Client,
    requested_scope: Option<&str>,
    now: i64,
) -> Result<String, OAuthError> {
    if token.kind != TokenKind::Refresh || token.client_id != client.client_id {
        return Err(OAuthError::invalid_grant(
            "the refresh token is not valid for this client",
        ));
    }
    let grant = token
        .grant
        .as_ref()
        .ok_or_else(|| OAuthError::invalid_grant("the refresh token has no grant"))?;
    if token.revoked_at.is_some() || grant.revoked_at.is_some() {
        return Err(OAuthError::invalid_grant("the refresh token was revoked"));
    }
    if now >= token.expires_at || now >= grant.expires_at {
        return Err(OAuthError::invalid_grant("the refresh token has expired"));
    }
    match requested_scope.filter(|s| !s.is_empty()) {
        None => Ok(token.scope.clone()),
        Some(req) => {
            let asked = scope::parse(Some(req))?;
            let asked = scope::join(&asked);
            if scope::is_subset(&asked, &token.scope) {
                Ok(asked)
            } else {
                Err(OAuthError::invalid_scope(
                    "a refresh may only narrow the granted scope",
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;
    use latchkey_core::{ClientId, ClientType, UserId};
    use latchkey_store::Grant;

    fn client(id: &str) -> Client {
        Client {
            client_id: ClientId(id.into()),
            ..crate::testing::client(ClientType::Public)
        }
    }

    fn token() -> StoredToken {
        StoredToken {
            handle: "h".into(),
            kind: TokenKind::Refresh,
            client_id: ClientId("c1".into()),
            user_id: Some(UserId("u".into())),
            scope: "openid email offline_access".into(),
            audience: None,
            created_at: 0,
            expires_at: 10_000,
            used_at: None,
            revoked_at: None,
            grant: Some(Grant {
                id: "g".into(),
                client_id: ClientId("c1".into()),
                user_id: UserId("u".into()),
                session_key: None,
                scope: "openid email offline_access".into(),
                auth_time: 0,
                acr: None,
                amr: vec![],
                created_at: 0,
                expires_at: 20_000,
                revoked_at: None,
            }),
        }
    }

    #[test]
    fn narrows_never_widens_and_stays_with_its_client() {
        let t = token();
        assert_eq!(check_refresh_grant(&t, &client("c1"), None, 5).unwrap(), t.scope);
        assert_eq!(
            check_refresh_grant(&t, &client("c1"), Some("email openid"), 5).unwrap(),
            "email openid"
        );
        let e = check_refresh_grant(&t, &client("c1"), Some("openid profile"), 5).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidScope);
        let e = check_refresh_grant(&t, &client("c2"), None, 5).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidGrant);
        assert!(check_refresh_grant(&t, &client("c1"), None, 10_000).is_err());
        let mut revoked = token();
        revoked.grant.as_mut().unwrap().revoked_at = Some(1);
        assert!(check_refresh_grant(&revoked, &client("c1"), None, 5).is_err());
    }
}
