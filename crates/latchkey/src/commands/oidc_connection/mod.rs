//! `latchkey oidc-connection …`: a tenant's upstream OpenID Connect (and OAuth 2.0) connections
//! as operators drive them. Connecting (discovery first, the client secret sealed or the
//! `private_key_jwt` key made under the tenant's data key) and discovery are
//! `latchkey_services::federation`'s, shared with the admin API.

mod flags;
mod view;

use crate::cli::{OidcAdd, OidcConnectionCmd, OidcUpdate};
use crate::commands::saml::block_on;
use crate::context::Context;
use crate::error::CliError;
use crate::output::done;
use latchkey_core::{OidcConnection, Tenant, UpstreamAuth, UpstreamKind, UpstreamOptions};
use latchkey_services::federation::{self, ConnectionSpec};
use latchkey_services::{OutboundPolicy, ServiceError};
use latchkey_store::UpstreamRepo;
use serde_json::json;
use std::sync::Arc;
use view::{connection_json, show};

/// The scopes an OpenID Connect connection asks for unless `--scope` says otherwise.
const DEFAULT_SCOPES: [&str; 3] = ["openid", "email", "profile"];

pub fn run(ctx: &Context<'_>, cmd: OidcConnectionCmd) -> Result<(), CliError> {
    let now = ctx.now_millis();
    match cmd {
        OidcConnectionCmd::Add(spec) => add(ctx, &spec, now),
        OidcConnectionCmd::List { tenant, out } => list(ctx, tenant.slug(), out.json),
        OidcConnectionCmd::Show { tenant, name, out } => {
            let tenant = ctx.tenant(tenant.slug())?;
            let connection = find(ctx, &tenant, &name)?;
            show(out.json, &connection_json(ctx, &tenant, &connection));
            Ok(())
        }
        OidcConnectionCmd::Update(change) => update(ctx, &change, now),
        OidcConnectionCmd::Remove { tenant, name, out } => remove(ctx, tenant.slug(), &name, out.json),
        OidcConnectionCmd::Refresh { tenant, name, out } => refresh(ctx, tenant.slug(), &name, now, out.json),
    }
}

fn find(ctx: &Context<'_>, tenant: &Tenant, name: &str) -> Result<OidcConnection, CliError> {
    ctx.db
        .oidc_connection_by_name(&tenant.id, name)?
        .ok_or_else(|| CliError::NotInTenant {
            what: "OpenID Connect connection",
            name: name.to_owned(),
            tenant: tenant.slug.clone(),
        })
}

/// A failure of `latchkey_services::federation`: the store's and the key ring's as such, the
/// rest (a fetch, a refused discovery document) as the upstream's.
fn upstream(e: ServiceError) -> CliError {
    match e {
        ServiceError::Store(e) => CliError::Store(e),
        ServiceError::Keys(e) => CliError::Keys(e),
        other => CliError::Upstream(other),
    }
}

fn list(ctx: &Context<'_>, slug: &str, json: bool) -> Result<(), CliError> {
    let tenant = ctx.tenant(slug)?;
    let connections = ctx.db.list_oidc_connections(&tenant.id)?;
    if json {
        crate::output::print_json(
            &connections
                .iter()
                .map(|connection| connection_json(ctx, &tenant, connection))
                .collect(),
        );
    } else {
        for c in connections {
            let kind = serde_json::to_value(c.kind).unwrap_or_default();
            println!(
                "{}\t{}\t{}\t{}\t{}",
                c.name,
                c.display_name,
                kind.as_str().unwrap_or_default(),
                c.issuer,
                c.options.domains.join(",")
            );
        }
    }
    Ok(())
}

/// The secret flags against the method: the secret methods need one, `private_key_jwt` takes
/// none (a key is made).
fn secret_for(
    auth: UpstreamAuth,
    secret: Option<String>,
    required: bool,
) -> Result<Option<String>, CliError> {
    match (auth, secret) {
        (UpstreamAuth::PrivateKeyJwt, Some(_)) => Err(CliError::BadFlag(
            "--client-auth private_key_jwt signs with a key Latchkey makes: give no client secret".into(),
        )),
        (UpstreamAuth::PrivateKeyJwt, None) => Ok(None),
        (_, None) if required => Err(CliError::BadFlag(
            "give the client secret with --client-secret-file PATH or --client-secret-env VAR".into(),
        )),
        (_, secret) => Ok(secret),
    }
}

/// Connects the upstream; prints what its administrator needs (the redirect URI, and for
/// `private_key_jwt` the public key and JWKS URL). The operator typed the URLs, so they are
/// fetched from anywhere (loopback http included), as `saml add --metadata-url`.
fn add(ctx: &Context<'_>, spec: &OidcAdd, now: i64) -> Result<(), CliError> {
    let tenant = ctx.tenant(spec.tenant.slug())?;
    let options = flags::apply(UpstreamOptions::default(), &spec.opts)?;
    let endpoints = flags::endpoints(spec.kind, None, &spec.endpoints)?;
    let secret = secret_for(spec.client_auth, flags::secret(&spec.secret)?, true)?;
    let scopes = if spec.scopes.is_empty() && spec.kind == UpstreamKind::Oidc {
        DEFAULT_SCOPES.map(str::to_owned).to_vec()
    } else {
        spec.scopes.clone()
    };
    let ring = Arc::new(ctx.ring()?);
    let connection = block_on(federation::connect(
        &ctx.db,
        &ring,
        &OutboundPolicy::allow_all(),
        &tenant,
        ctx.actor(),
        ConnectionSpec {
            name: spec.name.clone(),
            display_name: spec.display_name.clone(),
            kind: spec.kind,
            issuer: spec.issuer.clone(),
            discovery_url: spec.discovery_url.clone(),
            allowed_tenant_ids: spec.allowed_tenant_ids.clone(),
            client_id: spec.client_id.clone(),
            client_auth: spec.client_auth,
            client_secret: secret,
            scopes,
            endpoints,
            options,
        },
        now,
    ))?
    .map_err(upstream)?;
    show(spec.out.json, &connection_json(ctx, &tenant, &connection));
    Ok(())
}

/// Changes what the flags give (the rest stays), under the version read: a change made
/// meanwhile makes this one fail instead of being lost.
fn update(ctx: &Context<'_>, spec: &OidcUpdate, now: i64) -> Result<(), CliError> {
    let tenant = ctx.tenant(spec.tenant.slug())?;
    let before = find(ctx, &tenant, &spec.name)?;
    let mut after = flags::changed(&before, spec)?;
    let mut options = flags::apply(after.options.clone(), &spec.opts)?;
    if spec.no_domains {
        options.domains.clear();
    }
    if spec.no_role_map {
        options.role_map.clear();
    }
    if spec.no_group_map {
        options.group_map.clear();
    }
    if spec.no_attribute_map {
        options.attribute_map.clear();
    }
    after.options = options;
    federation::check_options(&ctx.db, &tenant, &after.options).map_err(upstream)?;
    let secret = flags::secret(&spec.secret)?;
    let leaves_key =
        before.client_auth == UpstreamAuth::PrivateKeyJwt && after.client_auth != before.client_auth;
    let secret = secret_for(after.client_auth, secret, leaves_key)?;
    let ring = Arc::new(ctx.ring()?);
    let after = block_on(federation::prepare_update(
        &ring,
        &OutboundPolicy::allow_all(),
        &tenant,
        &before,
        after,
        secret,
        now,
    ))?
    .map_err(upstream)?;
    let stored = ctx
        .db
        .update_oidc_connection(&tenant.id, ctx.actor(), &after, Some(before.updated_at))?;
    show(spec.out.json, &connection_json(ctx, &tenant, &stored));
    Ok(())
}

/// Removes the connection and the links of its users' upstream identities (the users stay).
fn remove(ctx: &Context<'_>, slug: &str, name: &str, json: bool) -> Result<(), CliError> {
    let tenant = ctx.tenant(slug)?;
    let connection = find(ctx, &tenant, name)?;
    ctx.db
        .delete_oidc_connection(&tenant.id, ctx.actor(), &connection.id, None)?;
    done(
        json,
        &json!({"deleted": "oidc_connection", "name": connection.name, "id": connection.id}),
        &format!(
            "removed OpenID Connect connection {} (id {})",
            connection.name, connection.id
        ),
    );
    Ok(())
}

/// Discovers now, under the configured outbound guard as the server's hourly refresh (the
/// stored URL may be a tenant admin's choice). On failure the last good discovery stays, the
/// error is recorded, and the command exits 1.
fn refresh(ctx: &Context<'_>, slug: &str, name: &str, now: i64, json: bool) -> Result<(), CliError> {
    let tenant = ctx.tenant(slug)?;
    let connection = find(ctx, &tenant, name)?;
    if connection.kind == UpstreamKind::Oauth2 {
        return Err(CliError::BadFlag(format!(
            "{name:?} is an OAuth 2.0 connection: its endpoints are configured, there is nothing to discover"
        )));
    }
    let outbound = &ctx.config.outbound_allow_private;
    match block_on(federation::refresh(&ctx.db, outbound, &connection, now))? {
        Ok(after) => {
            let mut shown = connection_json(ctx, &tenant, &after);
            shown["changed"] = json!(federation::discovery_changed(&connection, &after));
            show(json, &shown);
            Ok(())
        }
        Err(reason) => Err(CliError::DiscoveryFailed {
            name: name.to_owned(),
            reason,
        }),
    }
}
