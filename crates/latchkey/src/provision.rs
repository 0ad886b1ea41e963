//! Creating clients, setting passwords and reading secrets the way operators expect, for the
//! `client`, `user`, `apply` and `oidc-connection` commands and for `demo`, which sets up the
//! same things.

use crate::cli::ClientCreate;
use crate::context::Context;
use crate::error::CliError;
use latchkey_core::{Client, ClientSettings, ClientType, OsRng, Tenant};
use latchkey_mfa::{HashParams, check_user_password, hash_password};
use latchkey_services::clients::{ClientSpec, registration};
use latchkey_services::{OutboundPolicy, sector};
use latchkey_store::ClientRepo;

pub use latchkey_services::clients::{new_secret, uses_secret};

/// The largest secret file read.
const MAX_SECRET_FILE: u64 = 64 * 1024;

/// Where a secret is read from: never the command line, which `ps` and shell history show.
pub enum SecretSource<'a> {
    /// An environment variable of this process.
    Env(&'a str),
    /// A file, of which at most 64 KiB are read.
    File(&'a std::path::Path),
}

/// The secret, one trailing newline (`\n` or `\r\n`) dropped; the error says what failed.
pub fn read_secret(source: &SecretSource<'_>) -> Result<String, String> {
    use std::io::Read as _;
    let secret = match source {
        SecretSource::Env(name) => std::env::var(name)
            .map_err(|_| format!("environment variable {name} is not set (or not UTF-8)"))?,
        SecretSource::File(path) => {
            let mut text = String::new();
            std::fs::File::open(path)
                .and_then(|f| f.take(MAX_SECRET_FILE).read_to_string(&mut text))
                .map_err(|e| format!("reading {}: {e}", path.display()))?;
            text
        }
    };
    let secret = secret
        .strip_suffix('\n')
        .map_or(secret.as_str(), |s| s.strip_suffix('\r').unwrap_or(s));
    Ok(secret.to_owned())
}

/// Fills in the defaults an operator expects (`latchkey_services::clients`, shared with the
/// admin API) and registers the client; returns it and its secret.
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
    let wanted = ClientSpec {
        name: spec.name.clone(),
        client_type: if spec.public {
            ClientType::Public
        } else {
            ClientType::Confidential
        },
        auth_method: spec.auth_method,
        redirect_uris: spec.redirect_uris.clone(),
        post_logout_redirect_uris: spec.post_logout_redirect_uris.clone(),
        grant_types: spec.grants.clone(),
        scopes: spec.scopes.clone(),
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
            backchannel_logout_uri: spec.logout.backchannel_logout_uri.clone(),
            backchannel_logout_session_required: spec.logout.backchannel_logout_session_required
                == Some(true),
            frontchannel_logout_uri: spec.logout.frontchannel_logout_uri.clone(),
            frontchannel_logout_session_required: spec.logout.frontchannel_logout_session_required
                == Some(true),
            subject_type: spec.subject.subject_type.unwrap_or_default(),
            sector_identifier_uri: spec.subject.sector_identifier_uri.clone(),
            allowed_claims: spec.subject.allowed_claims_list(),
        },
    };
    let (new, secret) = registration(&wanted, &OsRng).map_err(latchkey_store::StoreError::from)?;
    // The operator typed the URL: fetched from wherever it is, as `saml add` does.
    sector_checked(
        &OutboundPolicy::allow_all(),
        None,
        (&new.redirect_uris, &new.settings),
    )?;
    let client = ctx.db.create_client(&tenant.id, ctx.actor(), &new)?;
    Ok((client, secret))
}

/// OIDC Registration §2: the sector document of a pairwise client going from `before` to
/// (`redirect_uris`, `settings`), fetched under `policy` and checked when it is new or the
/// redirect URIs changed (`latchkey_services::sector`); what was verified, for the update.
pub fn sector_checked(
    policy: &OutboundPolicy,
    before: Option<&Client>,
    (redirect_uris, settings): (&[String], &ClientSettings),
) -> Result<Option<sector::Verified>, CliError> {
    if sector::to_check(before, redirect_uris, settings).is_none() {
        return Ok(None);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CliError::AsyncRuntime)?;
    runtime
        .block_on(sector::verify_change(policy, before, redirect_uris, settings))
        .map_err(CliError::Sector)
}

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
    check_user_password(password, &tenant.policy.password, username, email)
        .map_err(CliError::PasswordPolicy)?;
    hash_password(password, HashParams::default(), &OsRng).map_err(CliError::PasswordHash)
}
