//! A SAML connection's per-connection behaviour (`SamlOptions`) from the command's flags; on
//! `update`, only the flags given change.

use crate::cli::SamlFlags;
use crate::context::Context;
use crate::error::CliError;
use latchkey_core::{SamlOptions, Tenant};
use latchkey_store::{GroupRepo, RoleRepo};

/// Applies the option flags to `options`; roles in `--role-map` and groups in `--group-map`
/// must exist in the tenant.
pub fn apply(
    ctx: &Context<'_>,
    tenant: &Tenant,
    mut options: SamlOptions,
    flags: &SamlFlags,
) -> Result<SamlOptions, CliError> {
    if let Some(domains) = &flags.domains {
        options.domains = domains
            .split(',')
            .map(str::trim)
            .filter(|domain| !domain.is_empty())
            .map(str::to_owned)
            .collect();
    }
    for (given, target) in [
        (flags.allow_idp_initiated, &mut options.allow_idp_initiated),
        (flags.jit, &mut options.jit),
        (flags.link_existing, &mut options.link_existing),
        (flags.email_verified, &mut options.email_verified),
        (flags.trust_idp_mfa, &mut options.trust_idp_mfa),
        (flags.sign_requests, &mut options.sign_requests),
        (flags.legacy_cbc, &mut options.legacy_cbc),
    ] {
        if let Some(on) = given {
            *target = on;
        }
    }
    for entry in &flags.map {
        apply_mapping(&mut options, entry)?;
    }
    if !flags.role_map.is_empty() {
        options.role_map = role_map(ctx, tenant, &flags.role_map)?;
    }
    if !flags.group_map.is_empty() {
        options.group_map = group_map(ctx, tenant, &flags.group_map)?;
    }
    if let Some(path) = &flags.metadata_signing_cert {
        options.metadata_signer = Some(signing_certificate(path)?);
    }
    Ok(options)
}

/// `--metadata-signing-cert FILE`: a PEM certificate or its base64 DER, checked to carry a
/// key signatures can be verified with (RSA of 2048 bits or more, or ECDSA P-256).
fn signing_certificate(path: &std::path::Path) -> Result<String, CliError> {
    let text = std::fs::read_to_string(path).map_err(|source| CliError::File {
        flag: "--metadata-signing-cert",
        path: path.to_owned(),
        source,
    })?;
    let b64 = latchkey_services::saml::certificate_base64(&text);
    latchkey_saml::certs::check_signing_certificate(&b64)
        .map_err(|e| CliError::BadFlag(format!("--metadata-signing-cert {}: {e}", path.display())))?;
    Ok(b64)
}

/// One `--map email|name|groups=ATTR`; an empty ATTR resets to the default.
fn apply_mapping(options: &mut SamlOptions, entry: &str) -> Result<(), CliError> {
    let (key, attribute) = entry.split_once('=').ok_or_else(|| {
        CliError::BadFlag(format!(
            "--map {entry:?}: expected email=ATTR, name=ATTR or groups=ATTR"
        ))
    })?;
    let attribute = Some(attribute.trim().to_owned()).filter(|name| !name.is_empty());
    match key.trim() {
        "email" => options.mapping.email = attribute,
        "name" => options.mapping.name = attribute,
        "groups" => options.mapping.groups = attribute,
        other => {
            return Err(CliError::BadFlag(format!(
                "--map {other:?}: map email, name or groups"
            )));
        }
    }
    Ok(())
}

/// The `--role-map GROUP=ROLE` entries as pairs, duplicates dropped.
fn role_map(
    ctx: &Context<'_>,
    tenant: &Tenant,
    entries: &[String],
) -> Result<Vec<(String, String)>, CliError> {
    let roles: Vec<String> = ctx
        .db
        .list_roles(&tenant.id)?
        .into_iter()
        .map(|role| role.name)
        .collect();
    pairs(tenant, ("--role-map", "role"), &roles, entries)
}

/// The `--group-map IDP_GROUP=GROUP` entries as pairs, duplicates dropped.
fn group_map(
    ctx: &Context<'_>,
    tenant: &Tenant,
    entries: &[String],
) -> Result<Vec<(String, String)>, CliError> {
    let groups: Vec<String> = ctx
        .db
        .list_groups(&tenant.id)?
        .into_iter()
        .map(|group| group.name)
        .collect();
    pairs(tenant, ("--group-map", "group"), &groups, entries)
}

/// `IDP_GROUP=NAME` entries whose NAME is one of `known` (a role or group of the tenant).
fn pairs(
    tenant: &Tenant,
    (flag, what): (&str, &str),
    known: &[String],
    entries: &[String],
) -> Result<Vec<(String, String)>, CliError> {
    let mut map = Vec::with_capacity(entries.len());
    for entry in entries {
        let (group, name) = entry
            .split_once('=')
            .map(|(group, name)| (group.trim(), name.trim()))
            .filter(|(group, name)| !group.is_empty() && !name.is_empty())
            .ok_or_else(|| {
                CliError::BadFlag(format!(
                    "{flag} {entry:?}: expected IDP_GROUP={}",
                    what.to_uppercase()
                ))
            })?;
        if !known.iter().any(|k| k == name) {
            return Err(CliError::BadFlag(format!(
                "{flag} {entry:?}: no {what} {name:?} in tenant {:?}",
                tenant.slug
            )));
        }
        let pair = (group.to_owned(), name.to_owned());
        if !map.contains(&pair) {
            map.push(pair);
        }
    }
    Ok(map)
}
