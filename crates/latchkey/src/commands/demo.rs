//! `latchkey demo`: a ready-to-try setup on whatever storage is configured (the embedded default
//! unless told otherwise). Re-running it keeps the same ids and issues a fresh secret and password.
//! `main` serves once this has set things up, with the example portal (`portal`), a relying party
//! on loopback that signs in as the confidential client, beside Latchkey.

pub mod portal;

use crate::cli::{ClientCreate, ClientTokenFlags, Json, TenantArg};
use crate::context::Context;
use crate::error::CliError;
use crate::provision::{create_client, new_secret, password_hash};
use latchkey_core::{Client, OsRng, Tenant, TenantPolicy, random_token};
use latchkey_server::Config;
use latchkey_store::{
    AdminTokenRepo, ClientRepo, CredentialKind, NewAdminToken, NewTenant, NewUser, TenantRepo, UserRepo,
};

const SLUG: &str = "demo";
const CONFIDENTIAL: &str = "Demo web app (confidential)";
const PUBLIC: &str = "Demo single-page app (public)";
const USERNAME: &str = "demo";
/// The port the clients' redirect URIs name; the portal may run on another (`--portal-port`).
const DEFAULT_PORT: u16 = 8000;

/// Sets up (or refreshes) the demo tenant and prints it; closes the database before returning.
/// With a portal port other than 0, returns the example portal's settings for `serve`.
pub fn run(config: &Config, portal_port: u16) -> Result<Option<portal::Settings>, CliError> {
    let ctx = Context::open(config, &crate::context::Target::Home)?;
    let tenant = match ctx.db.tenant_by_slug(SLUG)? {
        Some(tenant) => tenant,
        None => ctx.db.create_tenant(
            ctx.actor(),
            &NewTenant {
                slug: SLUG.into(),
                display_name: Some("Latchkey Demo".into()),
                policy: TenantPolicy::default(),
            },
        )?,
    };
    let tenant = ctx.tenant(&tenant.slug)?;
    ctx.ring()?.ensure_tenant(&tenant.id, ctx.actor())?;
    let existing = ctx.db.list_clients(&tenant.id)?;
    let wanted = spec(CONFIDENTIAL, false, DEFAULT_PORT, portal_port);
    let (confidential, secret) = match existing.iter().find(|client| client.name == CONFIDENTIAL) {
        Some(client) => {
            let (secret, hash) = new_secret(&OsRng);
            ctx.db
                .set_client_secret_hash(&tenant.id, ctx.actor(), &client.client_id, &hash, None)?;
            (follow_portal(&ctx, &tenant, client, &wanted)?, Some(secret))
        }
        None => create_client(&ctx, &tenant, &wanted)?,
    };
    let public = match existing.iter().find(|client| client.name == PUBLIC) {
        Some(client) => client.clone(),
        None => create_client(&ctx, &tenant, &spec(PUBLIC, true, DEFAULT_PORT + 1, 0))?.0,
    };
    let password = set_demo_password(&ctx, &tenant)?;
    console_admin(&ctx, &tenant)?;
    let portal = match (portal_port, &secret) {
        (0, _) | (_, None) => None,
        (port, Some(secret)) => Some(portal::Settings {
            port,
            issuer: config.issuer(SLUG),
            client_id: confidential.client_id.to_string(),
            secret: secret.clone(),
            offline: confidential.scopes.iter().any(|s| s == "offline_access")
                && confidential
                    .grant_types
                    .contains(&latchkey_core::GrantType::RefreshToken),
        }),
    };
    let portal_port = portal.as_ref().map(|p| p.port);
    print(
        config,
        &confidential,
        secret.as_deref(),
        portal_port,
        &public,
        &password,
    );
    Ok(portal)
}

/// Serves Latchkey until a signal, and the example portal beside it on the same actix system.
pub fn serve(config: Config, portal: Option<portal::Settings>) -> Result<(), CliError> {
    actix_web::rt::System::new()
        .block_on(async move {
            if let Some(settings) = portal {
                portal::start(settings);
            }
            latchkey_server::serve(config).await
        })
        .map_err(CliError::from)
}

/// The demo client as registered for `port`, also sending back to the example portal when it
/// runs on `portal_port` (neither 0 nor `port`).
fn spec(name: &str, public: bool, port: u16, portal_port: u16) -> ClientCreate {
    let mut ports = vec![port];
    if portal_port != 0 && portal_port != port {
        ports.push(portal_port);
    }
    ClientCreate {
        tenant: TenantArg { tenant: SLUG.into() },
        name: name.into(),
        public,
        redirect_uris: ports
            .iter()
            .flat_map(|p| {
                [
                    format!("http://127.0.0.1:{p}/callback"),
                    format!("http://localhost:{p}/callback"),
                ]
            })
            .collect(),
        post_logout_redirect_uris: ports.iter().map(|p| format!("http://127.0.0.1:{p}/")).collect(),
        grants: Vec::new(),
        scopes: Vec::new(),
        auth_method: None,
        access_token_format: latchkey_core::AccessTokenFormat::Jwt,
        no_pkce: false,
        introspect_others: false,
        first_party: true,
        jwks_uri: None,
        jwks_file: None,
        tokens: ClientTokenFlags {
            id_token_alg: None,
            access_token_ttl: None,
            id_token_ttl: None,
            refresh_idle_ttl: None,
            refresh_absolute_ttl: None,
        },
        logout: crate::cli::ClientLogoutFlags::default(),
        subject: crate::cli::ClientSubjectFlags::default(),
        resources: Vec::new(),
        out: Json { json: false },
    }
}

/// The existing client, its redirect URIs set to those of `wanted` (the portal's port may have
/// changed since the last run).
fn follow_portal(
    ctx: &Context<'_>,
    tenant: &Tenant,
    client: &Client,
    wanted: &ClientCreate,
) -> Result<Client, CliError> {
    let edit = |c: &Client| {
        let mut c = c.clone();
        c.redirect_uris.clone_from(&wanted.redirect_uris);
        c.post_logout_redirect_uris
            .clone_from(&wanted.post_logout_redirect_uris);
        Ok(c)
    };
    if client.redirect_uris == wanted.redirect_uris
        && client.post_logout_redirect_uris == wanted.post_logout_redirect_uris
    {
        return Ok(client.clone());
    }
    Ok(ctx
        .db
        .update_client(&tenant.id, ctx.actor(), &client.client_id, None, &edit)?)
}

/// A fresh random password for the demo user (created if missing), returned to print.
fn set_demo_password(ctx: &Context<'_>, tenant: &Tenant) -> Result<String, CliError> {
    let password = loop {
        let candidate = random_token(&OsRng, 12);
        if !candidate.to_lowercase().contains(USERNAME) {
            break candidate;
        }
    };
    let hash = password_hash(tenant, &password, USERNAME, None)?;
    match ctx.db.user_by_username(&tenant.id, USERNAME)? {
        Some(user) => {
            ctx.db
                .set_password_hash(&tenant.id, ctx.actor(), &user.id, &hash)?;
        }
        None => {
            ctx.db.create_user(
                &tenant.id,
                ctx.actor(),
                &NewUser {
                    username: USERNAME.into(),
                    email: Some("demo@example.com".into()),
                    display_name: Some("Demo User".into()),
                    password_hash: Some(hash),
                    email_verified: false,
                },
            )?;
        }
    }
    Ok(password)
}

/// The demo user administers the demo tenant in the console (which asks them for a second
/// factor: they add one on their account page first).
fn console_admin(ctx: &Context<'_>, tenant: &Tenant) -> Result<(), CliError> {
    let Some(user) = ctx.db.user_by_username(&tenant.id, USERNAME)? else {
        return Ok(());
    };
    if ctx.db.admin_token_by_user(&tenant.id, &user.id)?.is_none() {
        let new = NewAdminToken {
            name: "demo console admin".into(),
            roles: vec!["tenant-admin".into()],
            permissions: latchkey_core::Permissions::NONE,
            kind: CredentialKind::User(user.id),
            expires_at: None,
        };
        ctx.db.create_admin_token(&tenant.id, ctx.actor(), &new)?;
    }
    Ok(())
}

fn print(
    config: &Config,
    confidential: &Client,
    secret: Option<&str>,
    portal_port: Option<u16>,
    public: &Client,
    password: &str,
) {
    let issuer = config.issuer(SLUG);
    let portal_url = portal_port.map_or_else(
        || "(off: --portal-port 0)".to_owned(),
        |port| format!("http://127.0.0.1:{port}/"),
    );
    println!(
        "\n  Latchkey demo\n  ─────────────\n  issuer              {issuer}\n  discovery           {issuer}/.well-known/openid-configuration\n  example portal      {portal_url}\n  admin console       {}/t/{SLUG}/admin/\n                      (as the demo user, once it has a second factor: {}/t/{SLUG}/account)\n\n  confidential client {}\n  client secret       {}\n  redirect URIs       {}\n\n  public client       {}\n  redirect URIs       {}\n\n  user                {USERNAME}\n  password            {password}\n\n  database            {}\n  session store       {}\n",
        config.public_url,
        config.public_url,
        confidential.client_id,
        secret.unwrap_or("(unchanged)"),
        confidential.redirect_uris.join(", "),
        public.client_id,
        public.redirect_uris.join(", "),
        latchkey_store::DatabaseUrl::parse(&config.database_url)
            .map_or_else(|_| "(invalid)".into(), |url| url.redacted()),
        redact_userinfo(&config.session_store),
    );
}

/// Hides a password in a `scheme://user:password@host` string.
fn redact_userinfo(s: &str) -> String {
    match url::Url::parse(s) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("***"));
            url.to_string()
        }
        _ => s.to_owned(),
    }
}
