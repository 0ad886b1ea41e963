//! `latchkey demo`: a ready-to-try setup on whatever storage is configured (the embedded default
//! unless told otherwise). Re-running it keeps the same ids and issues a fresh secret and password.
//! `main` serves once this has set things up.

use crate::cli::{ClientCreate, ClientTokenFlags, Json, TenantArg};
use crate::context::Context;
use crate::error::CliError;
use crate::provision::{create_client, new_secret, password_hash};
use latchkey_core::{Client, OsRng, Tenant, TenantPolicy, random_token};
use latchkey_server::Config;
use latchkey_store::{ClientRepo, NewTenant, NewUser, TenantRepo, UserRepo};

const SLUG: &str = "demo";
const CONFIDENTIAL: &str = "Demo web app (confidential)";
const PUBLIC: &str = "Demo single-page app (public)";
const USERNAME: &str = "demo";

/// Sets up (or refreshes) the demo tenant and prints it; closes the database before returning.
pub fn run(config: &Config) -> Result<(), CliError> {
    let ctx = Context::open(config)?;
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
    let (confidential, secret) = match existing.iter().find(|client| client.name == CONFIDENTIAL) {
        Some(client) => {
            let (secret, hash) = new_secret(&OsRng);
            (
                ctx.db
                    .set_client_secret_hash(&tenant.id, ctx.actor(), &client.client_id, &hash, None)?,
                Some(secret),
            )
        }
        None => create_client(&ctx, &tenant, &spec(CONFIDENTIAL, false, 8000))?,
    };
    let public = match existing.iter().find(|client| client.name == PUBLIC) {
        Some(client) => client.clone(),
        None => create_client(&ctx, &tenant, &spec(PUBLIC, true, 8001))?.0,
    };
    let password = set_demo_password(&ctx, &tenant)?;
    print(config, &confidential, secret.as_deref(), &public, &password);
    Ok(())
}

fn spec(name: &str, public: bool, port: u16) -> ClientCreate {
    ClientCreate {
        tenant: TenantArg { tenant: SLUG.into() },
        name: name.into(),
        public,
        redirect_uris: vec![
            format!("http://127.0.0.1:{port}/callback"),
            format!("http://localhost:{port}/callback"),
        ],
        post_logout_redirect_uris: vec![format!("http://127.0.0.1:{port}/")],
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
        resources: Vec::new(),
        out: Json { json: false },
    }
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

fn print(config: &Config, confidential: &Client, secret: Option<&str>, public: &Client, password: &str) {
    let issuer = config.issuer(SLUG);
    println!(
        "\n  Latchkey demo\n  ─────────────\n  issuer              {issuer}\n  discovery           {issuer}/.well-known/openid-configuration\n\n  confidential client {}\n  client secret       {}\n  redirect URIs       {}\n\n  public client       {}\n  redirect URIs       {}\n\n  user                {USERNAME}\n  password            {password}\n\n  database            {}\n  session store       {}\n",
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
