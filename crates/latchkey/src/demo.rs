//! `latchkey demo`: a ready-to-try setup on whatever storage is configured (the embedded default
//! unless told otherwise). Re-running it keeps the same ids and issues a fresh secret and password.

use crate::CliError;
use crate::admin::{actor, create_client, find_tenant, new_secret, open_db, password_hash};
use crate::cli::{ClientCreate, Json, TenantArg};
use latchkey_core::{Client, OsRng, TenantPolicy, random_token};
use latchkey_server::Config;
use latchkey_store::{ClientRepo, Db, NewTenant, NewUser, TenantRepo, UserRepo};

const SLUG: &str = "demo";
const CONFIDENTIAL: &str = "Demo web app (confidential)";
const PUBLIC: &str = "Demo single-page app (public)";
const USERNAME: &str = "demo";

pub fn run(config: Config) -> Result<(), CliError> {
    let db = open_db(&config)?;
    let tenant = match db.tenant_by_slug(SLUG)? {
        Some(t) => t,
        None => db.create_tenant(
            &actor(),
            &NewTenant {
                slug: SLUG.into(),
                display_name: Some("Latchkey Demo".into()),
                policy: TenantPolicy::default(),
            },
        )?,
    };
    let tenant = find_tenant(&db, &tenant.slug)?;
    crate::keys::open_ring(&config, &db)?.ensure_tenant(&tenant.id, &actor())?;
    let existing = db.list_clients(&tenant.id)?;
    let (confidential, secret) = match existing.iter().find(|c| c.name == CONFIDENTIAL) {
        Some(c) => {
            let (secret, hash) = new_secret(&OsRng);
            (
                db.set_client_secret_hash(&tenant.id, &actor(), &c.client_id, &hash)?,
                Some(secret),
            )
        }
        None => create_client(&db, &tenant, &spec(CONFIDENTIAL, false, 8000))?,
    };
    let public = match existing.iter().find(|c| c.name == PUBLIC) {
        Some(c) => c.clone(),
        None => create_client(&db, &tenant, &spec(PUBLIC, true, 8001))?.0,
    };
    let password = set_demo_password(&db, &tenant)?;
    print(&config, &confidential, secret.as_deref(), &public, &password);
    drop(db);
    crate::serve(config)
}

fn spec(name: &str, public: bool, port: u16) -> ClientCreate {
    ClientCreate {
        t: TenantArg { tenant: SLUG.into() },
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
        id_token_alg: None,
        access_token_ttl: None,
        id_token_ttl: None,
        refresh_idle_ttl: None,
        refresh_absolute_ttl: None,
        out: Json { json: false },
    }
}

fn set_demo_password(db: &Db, tenant: &latchkey_core::Tenant) -> Result<String, CliError> {
    let password = loop {
        let p = random_token(&OsRng, 12);
        if !p.to_lowercase().contains(USERNAME) {
            break p;
        }
    };
    let hash = password_hash(tenant, &password, USERNAME, None)?;
    match db.user_by_username(&tenant.id, USERNAME)? {
        Some(u) => {
            db.set_password_hash(&tenant.id, &actor(), &u.id, &hash)?;
        }
        None => {
            db.create_user(
                &tenant.id,
                &actor(),
                &NewUser {
                    username: USERNAME.into(),
                    email: Some("demo@example.com".into()),
                    display_name: Some("Demo User".into()),
                    password_hash: Some(hash),
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
            .map_or_else(|_| "(invalid)".into(), |u| u.redacted()),
        redact_userinfo(&config.session_store),
    );
}

/// Hides a password in a `scheme://user:password@host` string.
fn redact_userinfo(s: &str) -> String {
    match url::Url::parse(s) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => s.to_owned(),
    }
}
