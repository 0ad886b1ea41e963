//! A connection's settings from the command's flags; on `update`, only the flags given change.
//! The roles and groups the maps name are checked against the tenant by
//! `latchkey_services::federation::check_options`, as over the admin API.

use crate::cli::{OidcEndpoints, OidcFlags, OidcSecret, OidcUpdate};
use crate::error::CliError;
use crate::provision::{SecretSource, read_secret};
use latchkey_core::{OidcConnection, UpstreamEndpoints, UpstreamKind, UpstreamOptions};

/// `--on`/`--no-on` as a change: `None` when neither was given.
fn either(on: bool, off: bool) -> Option<bool> {
    match (on, off) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    }
}

/// Applies the option flags to `options`.
pub fn apply(mut options: UpstreamOptions, flags: &OidcFlags) -> Result<UpstreamOptions, CliError> {
    if !flags.domains.is_empty() {
        options.domains = flags.domains.iter().map(|d| d.trim().to_owned()).collect();
    }
    for (given, target) in [
        (either(flags.jit, flags.no_jit), &mut options.jit),
        (
            either(flags.link_existing, flags.no_link_existing),
            &mut options.link_existing,
        ),
        (
            either(flags.trust_email_verified, flags.no_trust_email_verified),
            &mut options.trust_email_verified,
        ),
        (
            either(flags.trust_upstream_mfa, flags.no_trust_upstream_mfa),
            &mut options.trust_upstream_mfa,
        ),
        (either(flags.userinfo, flags.no_userinfo), &mut options.userinfo),
    ] {
        if let Some(on) = given {
            *target = on;
        }
    }
    let defaults = latchkey_core::ClaimMapping::default();
    for (given, target, default) in [
        (&flags.map_subject, &mut options.mapping.subject, defaults.subject),
        (&flags.map_email, &mut options.mapping.email, defaults.email),
        (&flags.map_name, &mut options.mapping.name, defaults.name),
    ] {
        if let Some(claim) = given {
            *target = Some(claim.trim().to_owned())
                .filter(|c| !c.is_empty())
                .unwrap_or(default);
        }
    }
    if let Some(claim) = &flags.map_groups {
        options.mapping.groups = Some(claim.trim().to_owned()).filter(|c| !c.is_empty());
    }
    if !flags.role_map.is_empty() {
        options.role_map = pairs("--role-map", &flags.role_map)?;
    }
    if !flags.group_map.is_empty() {
        options.group_map = pairs("--group-map", &flags.group_map)?;
    }
    if !flags.attribute_map.is_empty() {
        options.attribute_map = pairs("--attribute-map", &flags.attribute_map)?;
    }
    Ok(options)
}

/// `UPSTREAM=NAME` entries as pairs, duplicates dropped.
fn pairs(flag: &str, entries: &[String]) -> Result<Vec<(String, String)>, CliError> {
    let mut map = Vec::with_capacity(entries.len());
    for entry in entries {
        let pair = entry
            .split_once('=')
            .map(|(group, name)| (group.trim().to_owned(), name.trim().to_owned()))
            .filter(|(group, name)| !group.is_empty() && !name.is_empty())
            .ok_or_else(|| CliError::BadFlag(format!("{flag} {entry:?}: expected UPSTREAM_GROUP=NAME")))?;
        if !map.contains(&pair) {
            map.push(pair);
        }
    }
    Ok(map)
}

/// The endpoints of an OAuth 2.0 connection: `current` with the flags given over it (all three
/// needed); an OpenID Connect connection's are discovered, so the flags are refused for it.
pub fn endpoints(
    kind: UpstreamKind,
    current: Option<UpstreamEndpoints>,
    flags: &OidcEndpoints,
) -> Result<Option<UpstreamEndpoints>, CliError> {
    let given = [&flags.authorization, &flags.token, &flags.user];
    if kind == UpstreamKind::Oidc {
        if given.iter().any(|g| g.is_some()) {
            return Err(CliError::BadFlag(
                "--authorization-endpoint, --token-endpoint and --userinfo-endpoint are for --kind oauth2; an OpenID Connect provider's are discovered".into(),
            ));
        }
        return Ok(current);
    }
    let mut e = current.unwrap_or_default();
    for (flag, target) in [
        (&flags.authorization, &mut e.authorization_endpoint),
        (&flags.token, &mut e.token_endpoint),
        (&flags.user, &mut e.userinfo_endpoint),
    ] {
        if let Some(url) = flag {
            target.clone_from(url);
        }
    }
    if e.authorization_endpoint.is_empty() || e.token_endpoint.is_empty() || e.userinfo_endpoint.is_empty() {
        return Err(CliError::BadFlag(
            "--kind oauth2 needs --authorization-endpoint, --token-endpoint and --userinfo-endpoint".into(),
        ));
    }
    Ok(Some(e))
}

/// The client secret `--client-secret-file` or `--client-secret-env` names, if either.
pub fn secret(flags: &OidcSecret) -> Result<Option<String>, CliError> {
    let (flag, source) = match (&flags.client_secret_file, &flags.client_secret_env) {
        (Some(path), _) => ("--client-secret-file", SecretSource::File(path)),
        (None, Some(name)) => ("--client-secret-env", SecretSource::Env(name)),
        (None, None) => return Ok(None),
    };
    let secret = read_secret(&source).map_err(|e| CliError::BadFlag(format!("{flag}: {e}")))?;
    if secret.is_empty() {
        return Err(CliError::BadFlag(format!("{flag}: the client secret is empty")));
    }
    Ok(Some(secret))
}

/// `before` with the settings `update`'s flags give (not its options or secret).
pub fn changed(before: &OidcConnection, spec: &OidcUpdate) -> Result<OidcConnection, CliError> {
    let mut after = before.clone();
    if let Some(name) = &spec.display_name {
        after.display_name.clone_from(name);
    }
    if let Some(issuer) = &spec.issuer {
        after.issuer.clone_from(issuer);
    }
    if let Some(url) = &spec.discovery_url {
        after.discovery_url = Some(url.clone()).filter(|u| !u.is_empty());
    }
    if !spec.allowed_tenant_ids.is_empty() {
        after.allowed_tenant_ids.clone_from(&spec.allowed_tenant_ids);
    }
    if let Some(id) = &spec.client_id {
        after.client_id.clone_from(id);
    }
    if let Some(auth) = spec.client_auth {
        after.client_auth = auth;
    }
    if !spec.scopes.is_empty() {
        after.scopes.clone_from(&spec.scopes);
    }
    after.endpoints = endpoints(after.kind, after.endpoints.take(), &spec.endpoints)?;
    Ok(after)
}
