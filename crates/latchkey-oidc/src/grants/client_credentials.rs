//! The client credentials grant (RFC 6749 §4.4) with resource indicators (RFC 8707): no user,
//! so no user scopes; unknown scopes are refused (there is nobody to drop them for); the
//! `resource`, one the client is registered for, becomes the audience.

use super::issue::mint;
use super::{Ctx, Issued, Signer};
use crate::{ErrorCode, OAuthError, scope};
use latchkey_core::{Client, GrantType};
use latchkey_keys::KeyError;

/// RFC 6749 §4.4.3: an access token for the client itself, with the scope and audience
/// `check_client_credentials_grant` granted; no refresh or ID token. It belongs to no grant, so
/// the caller stores its `rows` (an opaque token's hash; a JWT needs none) with
/// `OAuthRepo::store_tokens`. Touches no store: with a cached key ring it is CPU work only.
pub fn issue(
    signer: &dyn Signer,
    ctx: &Ctx<'_>,
    c: &Client,
    scope: &str,
    audience: &str,
) -> Result<Issued, KeyError> {
    mint(signer, ctx, c, None, (scope, audience), ctx.clock.now_millis())
}

/// The token's scope and audience.
pub fn check_client_credentials_grant(
    client: &Client,
    requested_scope: Option<&str>,
    resource: Option<&str>,
) -> Result<(String, String), OAuthError> {
    if !client.grant_types.contains(&GrantType::ClientCredentials) {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "this client may not use the client credentials grant",
        ));
    }
    let machine: Vec<String> = client
        .scopes
        .iter()
        .filter(|s| !scope::USER_SCOPES.contains(&s.as_str()))
        .cloned()
        .collect();
    let granted = match requested_scope.filter(|s| !s.is_empty()) {
        None => machine,
        Some(req) => {
            let asked = scope::parse(Some(req))?;
            if let Some(bad) = asked.iter().find(|s| !machine.contains(s)) {
                return Err(OAuthError::invalid_scope(format!(
                    "scope {bad:?} is not available to this client without a user"
                )));
            }
            asked
        }
    };
    let audience = match resource {
        None => client.client_id.to_string(),
        Some(r) => check_resource(client, r)?,
    };
    Ok((scope::join(&granted), audience))
}

/// RFC 8707 §2: an absolute URI without a fragment that the client is registered for, compared
/// as a string. A client registered for none may ask for none: accepting any URI would let it
/// mint tokens for every API that trusts this issuer.
pub fn check_resource(client: &Client, r: &str) -> Result<String, OAuthError> {
    if latchkey_core::validate::resource("resource", r).is_err() {
        return Err(OAuthError::new(
            ErrorCode::InvalidTarget,
            "resource must be an absolute URI without a fragment",
        ));
    }
    if !client.settings.resources.iter().any(|allowed| allowed == r) {
        return Err(OAuthError::new(
            ErrorCode::InvalidTarget,
            "the resource is not one this client is registered for",
        ));
    }
    Ok(r.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use latchkey_core::{ClientId, ClientType};

    fn client(grants: Vec<GrantType>) -> Client {
        let mut c = Client {
            client_id: ClientId("svc".into()),
            grant_types: grants,
            scopes: ["openid", "reports.read", "reports.write"]
                .map(String::from)
                .to_vec(),
            ..crate::testing::client(ClientType::Confidential)
        };
        c.settings.resources = vec!["https://api.example.com/".into()];
        c
    }

    #[test]
    fn a_resource_the_client_is_not_registered_for_is_invalid_target() {
        let c = client(vec![GrantType::ClientCredentials]);
        for other in [
            "https://api.example.com",
            "https://api.example.com/x",
            "https://API.example.com/",
            "https://payroll.example.com/",
        ] {
            let e = check_client_credentials_grant(&c, None, Some(other)).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidTarget, "{other}");
            assert!(!e.description.contains(other), "not echoed: {}", e.description);
        }
        // A client registered for no resource may ask for none, but still gets a token for itself.
        let mut bare = c.clone();
        bare.settings.resources.clear();
        let e = check_client_credentials_grant(&bare, None, Some("https://api.example.com/")).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidTarget);
        assert_eq!(
            check_client_credentials_grant(&bare, None, None).unwrap().1,
            "svc"
        );
    }

    #[test]
    fn machine_scopes_only_and_resource_as_audience() {
        let c = client(vec![GrantType::ClientCredentials]);
        assert_eq!(
            check_client_credentials_grant(&c, None, None).unwrap(),
            ("reports.read reports.write".into(), "svc".into())
        );
        let (s, aud) =
            check_client_credentials_grant(&c, Some("reports.read"), Some("https://api.example.com/"))
                .unwrap();
        assert_eq!(
            (s.as_str(), aud.as_str()),
            ("reports.read", "https://api.example.com/")
        );
        for bad in ["openid", "admin"] {
            let e = check_client_credentials_grant(&c, Some(bad), None).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidScope, "{bad}");
        }
        for bad in ["api", "https://api/#x", "/relative"] {
            let e = check_client_credentials_grant(&c, None, Some(bad)).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidTarget, "{bad}");
        }
        let e = check_client_credentials_grant(&client(vec![GrantType::AuthorizationCode]), None, None)
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::UnauthorizedClient);
    }

    #[test]
    fn client_credentials_scope_is_limited_to_the_client() {
        use crate::testing::{TestSigner, World, decode};
        let mut w = World::new();
        w.client = client(vec![GrantType::ClientCredentials]);
        let (scope, aud) = check_client_credentials_grant(&w.client, Some("reports.read"), None).unwrap();
        let issued = issue(&TestSigner, &w.ctx(), &w.client, &scope, &aud).unwrap();
        let r = &issued.response;
        assert_eq!(
            (r.scope.as_deref(), r.refresh_token.as_ref(), r.id_token.as_ref()),
            (Some("reports.read"), None, None)
        );
        let (_, claims) = decode(&r.access_token);
        assert_eq!(
            (claims["sub"].as_str(), claims["aud"].as_str()),
            (Some("svc"), Some("svc"))
        );
        assert_eq!(claims["scope"], "reports.read");
        assert!(issued.rows.is_empty(), "a JWT for a client is not stored");
        let e = check_client_credentials_grant(&w.client, Some("reports.read admin"), None).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidScope);
    }

    #[test]
    fn opaque_client_credentials_tokens_are_stored_by_hash() {
        use crate::testing::{TestSigner, World};
        use latchkey_store::OAuthRepo;
        let mut w = World::new();
        w.client = Client {
            access_token_format: latchkey_core::AccessTokenFormat::Opaque,
            ..client(vec![GrantType::ClientCredentials])
        };
        let issued = issue(&TestSigner, &w.ctx(), &w.client, "reports.read", "https://api/").unwrap();
        let [row] = issued.rows.as_slice() else {
            panic!("{:?}", issued.rows)
        };
        let token = &issued.response.access_token;
        assert_eq!(row.handle, latchkey_core::sha256_hex(token.as_bytes()));
        assert_eq!((row.user_id.as_ref(), row.grant_id.as_ref()), (None, None));
        w.store.store_tokens(&w.tenant.id, &issued.rows).unwrap();
        let stored = w.stored(token);
        assert_eq!(stored.audience.as_deref(), Some("https://api/"));
        assert_eq!(stored.expires_at, crate::testing::NOW + 600_000);
    }
}
