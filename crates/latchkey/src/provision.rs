//! Creating clients and setting passwords the way operators expect, for the `client` and `user`
//! commands and for `demo`, which sets up the same things.

use crate::cli::ClientCreate;
use crate::context::Context;
use crate::error::CliError;
use latchkey_core::{
    AuthMethod, Client, ClientSettings, ClientType, GrantType, OsRng, Rng, Tenant, random_token, sha256_hex,
};
use latchkey_mfa::{HashParams, check_password_policy, hash_password};
use latchkey_store::{ClientRepo, NewClient};

/// 256-bit client secret: returned to show once, stored as its SHA-256.
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

/// Fills in the defaults an operator expects and registers the client; returns it and its secret.
pub fn create_client(
    ctx: &Context<'_>,
    tenant: &Tenant,
    spec: &ClientCreate,
) -> Result<(Client, Option<String>), CliError> {
    if spec.public && spec.no_pkce {
        return Err(CliError::BadFlag(
            "--no-pkce: public clients always use PKCE".into(),
        ));
    }
    let jwks = spec.jwks_file.as_deref().map(read_jwks).transpose()?;
    let auth_method = spec.auth_method.unwrap_or(if spec.public {
        AuthMethod::None
    } else {
        AuthMethod::ClientSecretBasic
    });
    let secret = uses_secret(auth_method).then(|| new_secret(&OsRng));
    let new = NewClient {
        name: spec.name.clone(),
        client_type: if spec.public {
            ClientType::Public
        } else {
            ClientType::Confidential
        },
        auth_method,
        secret_hash: secret.as_ref().map(|(_, hash)| hash.clone()),
        redirect_uris: spec.redirect_uris.clone(),
        post_logout_redirect_uris: spec.post_logout_redirect_uris.clone(),
        grant_types: grant_types(&spec.grants),
        scopes: scopes(&spec.scopes),
        access_token_format: spec.access_token_format,
        require_pkce: !spec.no_pkce,
        introspect_others: spec.introspect_others,
        first_party: spec.first_party,
        jwks_uri: spec.jwks_uri.clone(),
        jwks,
        settings: ClientSettings {
            id_token_signed_response_alg: spec.tokens.id_token_alg.clone(),
            access_token_secs: spec.tokens.access_token_ttl,
            id_token_secs: spec.tokens.id_token_ttl,
            refresh_idle_secs: spec.tokens.refresh_idle_ttl,
            refresh_absolute_secs: spec.tokens.refresh_absolute_ttl,
            resources: spec.resources.clone(),
            claims: latchkey_core::ClaimsConfig::default(),
        },
    };
    let client = ctx.db.create_client(&tenant.id, ctx.actor(), &new)?;
    Ok((client, secret.map(|(secret, _)| secret)))
}

/// The code flow with refresh unless told otherwise.
fn grant_types(given: &[GrantType]) -> Vec<GrantType> {
    if given.is_empty() {
        vec![GrantType::AuthorizationCode, GrantType::RefreshToken]
    } else {
        let mut grants = given.to_vec();
        grants.dedup();
        grants
    }
}

/// The OpenID Connect basics, refresh, and the user's roles and groups unless told otherwise.
fn scopes(given: &[String]) -> Vec<String> {
    if given.is_empty() {
        ["openid", "profile", "email", "offline_access", "roles", "groups"]
            .map(String::from)
            .to_vec()
    } else {
        given.to_vec()
    }
}

/// The client's public JWK Set for private_key_jwt, from `--jwks-file`.
fn read_jwks(path: &std::path::Path) -> Result<serde_json::Value, CliError> {
    let text = std::fs::read_to_string(path).map_err(|source| CliError::File {
        flag: "--jwks-file",
        path: path.to_owned(),
        source,
    })?;
    serde_json::from_str(&text)
        .map_err(|e| CliError::BadFlag(format!("--jwks-file {}: not JSON: {e}", path.display())))
}

/// Checks the tenant's policy and hashes with argon2id.
pub fn password_hash(
    tenant: &Tenant,
    password: &str,
    username: &str,
    email: Option<&str>,
) -> Result<String, CliError> {
    let identifiers: Vec<&str> = std::iter::once(username).chain(email).collect();
    check_password_policy(password, &tenant.policy.password, &identifiers)
        .map_err(CliError::PasswordPolicy)?;
    hash_password(password, HashParams::default(), &OsRng).map_err(CliError::PasswordHash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_secret_is_256_bits_and_stored_as_sha256() {
        let (secret, hash) = new_secret(&OsRng);
        assert_eq!(secret.len(), 43);
        assert_eq!(hash, sha256_hex(secret.as_bytes()));
        assert_ne!(new_secret(&OsRng).0, secret);
    }
}
