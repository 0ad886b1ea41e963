//! `latchkey client …`: a tenant's OAuth/OIDC clients. Secrets are shown once and stored as
//! their SHA-256.

use crate::cli::{ClientCmd, ClientCreate, ClientUpdate};
use crate::context::Context;
use crate::error::CliError;
use crate::output::{client_json, done, emit, print_human, print_json, rfc3339};
use crate::provision::{create_client, new_secret, sector_checked, uses_secret};
use latchkey_core::{ClaimsConfig, Client, ClientId, OsRng, Tenant};
use latchkey_store::ClientRepo;
use serde_json::json;
use std::io::Read as _;

pub fn run(ctx: &Context<'_>, cmd: ClientCmd) -> Result<(), CliError> {
    match cmd {
        ClientCmd::Create(spec) => create(ctx, &spec),
        ClientCmd::Update(spec) => update(ctx, &spec),
        ClientCmd::List { tenant, out } => list(ctx, tenant.slug(), out.json),
        ClientCmd::Show {
            tenant,
            client_id,
            out,
        } => {
            let client = find(ctx, &ctx.tenant(tenant.slug())?, &client_id)?;
            emit(out.json, &client_json(&client));
            Ok(())
        }
        ClientCmd::Delete {
            tenant,
            client_id,
            out,
        } => delete(ctx, tenant.slug(), &client_id, out.json),
        ClientCmd::RotateSecret {
            tenant,
            client_id,
            overlap,
            out,
        } => rotate_secret(ctx, tenant.slug(), &client_id, overlap.as_deref(), out.json),
        ClientCmd::Claims {
            tenant,
            client_id,
            set,
            reset,
            out,
        } => claims(ctx, tenant.slug(), &client_id, (set.as_deref(), reset), out.json),
        ClientCmd::Preview {
            tenant,
            client_id,
            user,
            scope,
        } => preview(ctx, tenant.slug(), &client_id, &user, &scope),
    }
}

/// The claims the client would get for `user` (JSON, like the admin API's preview).
fn preview(ctx: &Context<'_>, slug: &str, client_id: &str, user: &str, scope: &str) -> Result<(), CliError> {
    use latchkey_oidc::UserLookup as _;
    let tenant = ctx.tenant(slug)?;
    let client = find(ctx, &tenant, client_id)?;
    let user = ctx.user(&tenant, user)?;
    let facts = ctx.db.claim_facts(&tenant.id, &user.id)?;
    // The key ring is opened only for a pairwise client, whose `sub` needs the tenant's salt.
    let sub = match client.settings.subject_type {
        latchkey_core::SubjectType::Public => user.id.to_string(),
        latchkey_core::SubjectType::Pairwise => {
            let ring = ctx.ring()?;
            latchkey_oidc::subject::subject_for(&client, user.id.as_str(), || ring.pairwise_salt(&tenant.id))?
        }
    };
    let amr = ["pwd".to_owned(), "otp".to_owned(), "mfa".to_owned()];
    let issuer = ctx.config.issuer(&tenant.slug);
    let p = latchkey_oidc::grants::preview(
        (&issuer, &tenant),
        &client,
        Some((&user, sub.as_str(), amr.as_slice())),
        (scope, client.client_id.as_str()),
        Some(&facts),
        ctx.now_millis(),
    );
    print_json(&serde_json::json!({
        "client_id": client.client_id, "user_id": user.id, "scope": scope,
        "id_token": p.id_token, "access_token": p.access_token, "userinfo": p.userinfo,
    }));
    Ok(())
}

/// The sector document of `client` as `patch` would leave it, when it needs fetching: from
/// anywhere when the operator typed a new URL (as `saml add` does), under the server's
/// outbound guard when the URL is the stored one, which a tenant admin may have chosen.
fn sector_for_patch(
    ctx: &Context<'_>,
    client: &Client,
    patch: &serde_json::Value,
) -> Result<Option<latchkey_services::sector::Verified>, CliError> {
    // A patch that does not apply is refused by the update with the reason.
    let Ok(after) = latchkey_core::patch::patched_client(client, patch) else {
        return Ok(None);
    };
    let typed = after.settings.sector_identifier_uri != client.settings.sector_identifier_uri;
    let policy = if typed {
        latchkey_services::OutboundPolicy::allow_all()
    } else {
        ctx.config.outbound_allow_private.clone()
    };
    let wanted = (after.redirect_uris.as_slice(), &after.settings);
    sector_checked(&policy, Some(client), wanted)
}

fn find(ctx: &Context<'_>, tenant: &Tenant, client_id: &str) -> Result<Client, CliError> {
    ctx.db
        .client(&tenant.id, &ClientId(client_id.to_owned()))?
        .ok_or_else(|| CliError::NotInTenant {
            what: "client",
            name: client_id.to_owned(),
            tenant: tenant.slug.clone(),
        })
}

fn create(ctx: &Context<'_>, spec: &ClientCreate) -> Result<(), CliError> {
    let tenant = ctx.tenant(spec.tenant.slug())?;
    let (client, secret) = create_client(ctx, &tenant, spec)?;
    if spec.out.json {
        print_json(&json!({"client_id": client.client_id, "client_secret": secret}));
    } else {
        print_human(&client_json(&client));
        if let Some(secret) = secret {
            println!("client_secret  {secret}\n(shown once: only its hash is stored)");
        }
    }
    Ok(())
}

fn list(ctx: &Context<'_>, slug: &str, json: bool) -> Result<(), CliError> {
    let tenant = ctx.tenant(slug)?;
    let clients = ctx.db.list_clients(&tenant.id)?;
    if json {
        print_json(&clients.iter().map(client_json).collect());
    } else {
        for client in clients {
            println!("{}\t{}\t{}", client.client_id, client.client_type, client.name);
        }
    }
    Ok(())
}

fn delete(ctx: &Context<'_>, slug: &str, client_id: &str, json: bool) -> Result<(), CliError> {
    let tenant = ctx.tenant(slug)?;
    let client = find(ctx, &tenant, client_id)?;
    ctx.db
        .delete_client(&tenant.id, ctx.actor(), &client.client_id, None)?;
    done(
        json,
        &json!({"deleted": "client", "client_id": client.client_id}),
        &format!("deleted client {}", client.client_id),
    );
    Ok(())
}

/// A new secret, shown once; the old one stops working at once or after the overlap.
fn rotate_secret(
    ctx: &Context<'_>,
    slug: &str,
    client_id: &str,
    overlap: Option<&str>,
    json: bool,
) -> Result<(), CliError> {
    let tenant = ctx.tenant(slug)?;
    let client = find(ctx, &tenant, client_id)?;
    if !uses_secret(client.auth_method) {
        return Err(CliError::NoClientSecret(client_id.to_owned()));
    }
    let max_secs = u64::try_from(latchkey_store::MAX_SECRET_OVERLAP_MS / 1000).unwrap_or(0);
    let overlap = overlap
        .map(|o| super::invite::duration_ms("--overlap", o, max_secs))
        .transpose()?;
    let until = overlap.map(|ms| ctx.now_millis() + ms);
    let (secret, hash) = new_secret(&OsRng);
    let rotated = ctx
        .db
        .set_client_secret_hash(&tenant.id, ctx.actor(), &client.client_id, &hash, until)?;
    let old_until = rotated.previous_secret.as_ref().map(|p| rfc3339(p.expires_at));
    let human = match &old_until {
        Some(t) => format!(
            "client_secret  {secret}\n(shown once: only its hash is stored; the old secret works until {t})"
        ),
        None => format!(
            "client_secret  {secret}\n(shown once: only its hash is stored; the old secret no longer works)"
        ),
    };
    done(
        json,
        &json!({"client_id": client.client_id, "client_secret": secret, "previous_secret_expires_at": old_until}),
        &human,
    );
    Ok(())
}

/// Shows the client's claim configuration, or replaces it from a JSON file (`-`: standard
/// input) or with the default. Printed as stored, with the defaults filled in.
fn claims(
    ctx: &Context<'_>,
    slug: &str,
    client_id: &str,
    (set, reset): (Option<&std::path::Path>, bool),
    json: bool,
) -> Result<(), CliError> {
    let tenant = ctx.tenant(slug)?;
    let client = find(ctx, &tenant, client_id)?;
    let config = match set {
        Some(path) => Some(read_claims(path)?),
        None if reset => Some(ClaimsConfig::default()),
        None => None,
    };
    let client = match config {
        Some(c) => ctx
            .db
            .set_client_claims(&tenant.id, ctx.actor(), &client.client_id, &c)?,
        None => client,
    };
    let shown = serde_json::to_value(&client.settings.claims).unwrap_or_default();
    if json {
        print_json(&shown);
    } else {
        println!("{}", serde_json::to_string_pretty(&shown).unwrap_or_default());
    }
    Ok(())
}

fn read_claims(path: &std::path::Path) -> Result<ClaimsConfig, CliError> {
    read_json("--set", path)
}

/// A JSON document from `path` (`-`: standard input, at most 1 MiB) for flag `flag`.
fn read_json<T: serde::de::DeserializeOwned>(
    flag: &'static str,
    path: &std::path::Path,
) -> Result<T, CliError> {
    let file = |source| CliError::File {
        flag,
        path: path.to_owned(),
        source,
    };
    let text = if path.as_os_str() == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin().take(1 << 20), &mut s).map_err(file)?;
        s
    } else {
        std::fs::read_to_string(path).map_err(file)?
    };
    serde_json::from_str(&text).map_err(|e| CliError::BadFlag(format!("{flag} {}: {e}", path.display())))
}

/// The merge patch `client update`'s flags ask for, over `--patch FILE` when given: the same
/// patch the admin API's PATCH takes, so both check the same things.
fn update_patch(spec: &ClientUpdate) -> Result<serde_json::Value, CliError> {
    let mut patch = match &spec.patch {
        Some(path) => read_json("--patch", path)?,
        None => json!({}),
    };
    let mut top = serde_json::Map::new();
    let mut settings = serde_json::Map::new();
    let put = |m: &mut serde_json::Map<String, serde_json::Value>, k: &str, v: serde_json::Value| {
        m.insert(k.to_owned(), v);
    };
    if let Some(v) = &spec.name {
        put(&mut top, "name", json!(v));
    }
    for (key, list) in [
        ("redirect_uris", &spec.redirect_uris),
        ("post_logout_redirect_uris", &spec.post_logout_redirect_uris),
        ("scopes", &spec.scopes),
    ] {
        if !list.is_empty() {
            put(&mut top, key, json!(list));
        }
    }
    if !spec.grants.is_empty() {
        put(&mut top, "grant_types", json!(spec.grants));
    }
    if let Some(m) = spec.auth_method {
        put(&mut top, "auth_method", json!(m));
    }
    if let Some(f) = spec.access_token_format {
        put(&mut top, "access_token_format", json!(f));
    }
    for (key, flag) in [
        ("require_pkce", spec.require_pkce),
        ("introspect_others", spec.introspect_others),
        ("first_party", spec.first_party),
    ] {
        if let Some(b) = flag {
            put(&mut top, key, json!(b));
        }
    }
    if let Some(u) = &spec.jwks_uri {
        put(&mut top, "jwks_uri", json!(u));
    }
    if let Some(path) = &spec.jwks_file {
        put(
            &mut top,
            "jwks",
            read_json::<serde_json::Value>("--jwks-file", path)?,
        );
    }
    if let Some(a) = &spec.tokens.id_token_alg {
        put(&mut settings, "id_token_signed_response_alg", json!(a));
    }
    for (key, ttl) in [
        ("access_token_secs", spec.tokens.access_token_ttl),
        ("id_token_secs", spec.tokens.id_token_ttl),
        ("refresh_idle_secs", spec.tokens.refresh_idle_ttl),
        ("refresh_absolute_secs", spec.tokens.refresh_absolute_ttl),
    ] {
        if let Some(t) = ttl {
            put(&mut settings, key, json!(t));
        }
    }
    if !spec.resources.is_empty() {
        put(&mut settings, "resources", json!(spec.resources));
    }
    logout_patch(&spec.logout, &mut settings);
    subject_patch(&spec.subject, &mut settings);
    if !settings.is_empty() {
        top.insert("settings".into(), serde_json::Value::Object(settings));
    }
    overlay(&mut patch, serde_json::Value::Object(top));
    Ok(patch)
}

/// Lays the flags' patch `over` the `--patch` one: objects member by member, anything else
/// replaces, and a `null` stays a `null` (a removal the patch asks for; `merge_patch` would
/// apply it here, between two patches, and lose it).
fn overlay(base: &mut serde_json::Value, over: serde_json::Value) {
    match (base, over) {
        (serde_json::Value::Object(b), serde_json::Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(existing) if existing.is_object() && v.is_object() => overlay(existing, v),
                    _ => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (base, over) => *base = over,
    }
}

/// The logout flags as settings of a merge patch; an empty URI removes it (a null).
fn logout_patch(
    l: &crate::cli::ClientLogoutFlags,
    settings: &mut serde_json::Map<String, serde_json::Value>,
) {
    for (key, uri) in [
        ("backchannel_logout_uri", &l.backchannel_logout_uri),
        ("frontchannel_logout_uri", &l.frontchannel_logout_uri),
    ] {
        if let Some(u) = uri {
            settings.insert(key.into(), if u.is_empty() { json!(null) } else { json!(u) });
        }
    }
    for (key, flag) in [
        (
            "backchannel_logout_session_required",
            l.backchannel_logout_session_required,
        ),
        (
            "frontchannel_logout_session_required",
            l.frontchannel_logout_session_required,
        ),
    ] {
        if let Some(b) = flag {
            settings.insert(key.into(), json!(b));
        }
    }
}

/// The subject and claim flags as settings of a merge patch; an empty value removes the
/// setting (a null).
fn subject_patch(
    f: &crate::cli::ClientSubjectFlags,
    settings: &mut serde_json::Map<String, serde_json::Value>,
) {
    if let Some(t) = f.subject_type {
        settings.insert("subject_type".into(), json!(t));
    }
    if let Some(u) = &f.sector_identifier_uri {
        settings.insert(
            "sector_identifier_uri".into(),
            if u.is_empty() { json!(null) } else { json!(u) },
        );
    }
    if f.allowed_claims.is_some() {
        settings.insert("allowed_claims".into(), json!(f.allowed_claims_list()));
    }
}

/// Changes the client by the merge patch its flags make (docs/operations.md).
fn update(ctx: &Context<'_>, spec: &ClientUpdate) -> Result<(), CliError> {
    let tenant = ctx.tenant(spec.tenant.slug())?;
    let client = find(ctx, &tenant, &spec.client_id)?;
    let patch = update_patch(spec)?;
    if patch.as_object().is_some_and(serde_json::Map::is_empty) {
        return Err(CliError::BadFlag(
            "client update: name at least one change (see --help), or --patch FILE".into(),
        ));
    }
    let verified = sector_for_patch(ctx, &client, &patch)?;
    let updated = ctx.db.update_client(
        &tenant.id,
        ctx.actor(),
        &client.client_id,
        spec.if_version,
        &|c| {
            let after =
                latchkey_core::patch::patched_client(c, &patch).map_err(latchkey_store::StoreError::from)?;
            latchkey_services::sector::still_verified(c, &after, verified.as_ref())?;
            Ok(after)
        },
    )?;
    emit(spec.out.json, &client_json(&updated));
    Ok(())
}
