//! Fixtures for the unit tests of this crate.

use latchkey_core::{AccessTokenFormat, AuthMethod, Client, ClientId, ClientSettings, ClientType, GrantType};

/// A client `c1` of tenant `t` with no URIs or scopes; public ones use `none`, confidential ones
/// `client_secret_basic`.
pub fn client(kind: ClientType) -> Client {
    Client {
        client_id: ClientId("c1".into()),
        tenant_id: "t".into(),
        name: "Portal".into(),
        secret_hash: None,
        client_type: kind,
        auth_method: if kind == ClientType::Public {
            AuthMethod::None
        } else {
            AuthMethod::ClientSecretBasic
        },
        redirect_uris: vec![],
        post_logout_redirect_uris: vec![],
        grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        scopes: vec![],
        access_token_format: AccessTokenFormat::Jwt,
        require_pkce: true,
        introspect_others: false,
        first_party: false,
        jwks_uri: None,
        jwks: None,
        settings: ClientSettings::default(),
        created_at: 0,
        updated_at: 0,
    }
}
