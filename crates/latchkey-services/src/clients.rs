//! A client registration as operators write it, for the CLI's `client create` and the admin
//! API's `POST …/clients` alike: what is left out gets the defaults an operator expects, a
//! secret is made for the secret methods (shown once, stored as its SHA-256), and the store
//! checks the rest like any registration.

use latchkey_core::{
    AccessTokenFormat, AuthMethod, ClientSettings, ClientType, GrantType, Rng, ValidationError, random_token,
    sha256_hex,
};
use latchkey_store::NewClient;
use serde::Deserialize;

/// What an operator asks for; every field but `name` may be left out.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ClientSpec {
    pub name: String,
    #[serde(default = "confidential")]
    pub client_type: ClientType,
    /// `none` for a public client, else `client_secret_basic`.
    #[serde(default)]
    pub auth_method: Option<AuthMethod>,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    /// The code flow with refresh when empty.
    #[serde(default)]
    pub grant_types: Vec<GrantType>,
    /// The OpenID Connect basics, refresh, roles and groups when empty.
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default = "jwt")]
    pub access_token_format: AccessTokenFormat,
    #[serde(default = "yes")]
    pub require_pkce: bool,
    #[serde(default)]
    pub introspect_others: bool,
    #[serde(default)]
    pub first_party: bool,
    #[serde(default)]
    pub jwks_uri: Option<String>,
    #[serde(default)]
    pub jwks: Option<serde_json::Value>,
    #[serde(default)]
    pub settings: ClientSettings,
}

fn confidential() -> ClientType {
    ClientType::Confidential
}
fn jwt() -> AccessTokenFormat {
    AccessTokenFormat::Jwt
}
fn yes() -> bool {
    true
}

/// A 256-bit client secret and the SHA-256 the store keeps.
pub fn new_secret(rng: &dyn Rng) -> (String, String) {
    let secret = random_token(rng, 32);
    let hash = sha256_hex(secret.as_bytes());
    (secret, hash)
}

/// Whether clients with this method authenticate with a secret we issue.
pub fn uses_secret(method: AuthMethod) -> bool {
    matches!(
        method,
        AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost
    )
}

/// The registration `spec` asks for, with its new secret (`None` for a public or
/// `private_key_jwt` client).
pub fn registration(
    spec: &ClientSpec,
    rng: &dyn Rng,
) -> Result<(NewClient, Option<String>), ValidationError> {
    let public = spec.client_type == ClientType::Public;
    if public && !spec.require_pkce {
        return Err(ValidationError {
            field: "require_pkce",
            message: "public clients always use PKCE".into(),
        });
    }
    let auth_method = spec.auth_method.unwrap_or(if public {
        AuthMethod::None
    } else {
        AuthMethod::ClientSecretBasic
    });
    let secret = uses_secret(auth_method).then(|| new_secret(rng));
    let mut grant_types = if spec.grant_types.is_empty() {
        vec![GrantType::AuthorizationCode, GrantType::RefreshToken]
    } else {
        spec.grant_types.clone()
    };
    grant_types.dedup();
    let scopes = if spec.scopes.is_empty() {
        ["openid", "profile", "email", "offline_access", "roles", "groups"]
            .map(String::from)
            .to_vec()
    } else {
        spec.scopes.clone()
    };
    let new = NewClient {
        name: spec.name.clone(),
        client_type: spec.client_type,
        auth_method,
        secret_hash: secret.as_ref().map(|(_, hash)| hash.clone()),
        redirect_uris: spec.redirect_uris.clone(),
        post_logout_redirect_uris: spec.post_logout_redirect_uris.clone(),
        grant_types,
        scopes,
        access_token_format: spec.access_token_format,
        require_pkce: spec.require_pkce,
        introspect_others: spec.introspect_others,
        first_party: spec.first_party,
        jwks_uri: spec.jwks_uri.clone(),
        jwks: spec.jwks.clone(),
        settings: spec.settings.clone(),
    };
    Ok((new, secret.map(|(secret, _)| secret)))
}

/// The audience (RFC 8707 resource) of access tokens for tenant `slug`'s admin API: its base
/// URL, so a token for one tenant's admin API is worth nothing at another's.
pub fn admin_audience(public_url: &str, slug: &str) -> String {
    format!("{}/admin/t/{slug}", public_url.trim_end_matches('/'))
}

/// Why client `c` cannot be an admin credential, if it cannot: it must authenticate, use the
/// client credentials grant, and be registered for the admin API's `audience` as a resource.
pub fn admin_client_problem(c: &latchkey_core::Client, audience: &str) -> Option<String> {
    if !c
        .grant_types
        .contains(&latchkey_core::GrantType::ClientCredentials)
        || c.auth_method == AuthMethod::None
    {
        return Some(format!(
            "client {}: an admin client needs credentials and the client_credentials grant",
            c.client_id
        ));
    }
    (!c.settings.resources.iter().any(|r| r == audience)).then(|| {
        format!(
            "client {}: register the admin API as one of its resources first: {audience}",
            c.client_id
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_secret_is_256_bits_and_stored_as_sha256() {
        let (secret, hash) = new_secret(&latchkey_core::OsRng);
        assert_eq!(secret.len(), 43);
        assert_eq!(hash, sha256_hex(secret.as_bytes()));
        assert_ne!(new_secret(&latchkey_core::OsRng).0, secret);
    }

    #[test]
    fn defaults_fill_what_is_left_out() {
        let spec: ClientSpec = serde_json::from_str(r#"{"name": "Portal"}"#).unwrap();
        let (new, secret) = registration(&spec, &latchkey_core::OsRng).unwrap();
        assert_eq!(new.auth_method, AuthMethod::ClientSecretBasic);
        assert_eq!(
            new.secret_hash.as_deref(),
            secret.as_deref().map(|s| sha256_hex(s.as_bytes())).as_deref()
        );
        assert_eq!(
            new.grant_types,
            [GrantType::AuthorizationCode, GrantType::RefreshToken]
        );
        assert!(new.scopes.contains(&"roles".to_owned()) && new.require_pkce);
        let public: ClientSpec = serde_json::from_str(r#"{"name": "SPA", "client_type": "public"}"#).unwrap();
        let (new, secret) = registration(&public, &latchkey_core::OsRng).unwrap();
        assert_eq!(
            (new.auth_method, secret, new.secret_hash),
            (AuthMethod::None, None, None)
        );
        let lax: ClientSpec =
            serde_json::from_str(r#"{"name": "SPA", "client_type": "public", "require_pkce": false}"#)
                .unwrap();
        assert!(registration(&lax, &latchkey_core::OsRng).is_err());
        assert!(serde_json::from_str::<ClientSpec>(r#"{"name": "X", "secret": "s"}"#).is_err());
    }
}
