//! Operator commands. Each change is one store call, i.e. one transaction with its audit event,
//! so a failed command leaves nothing half-written.

use crate::CliError;
use crate::cli::{
    AdminTokenCmd, AuditCmd, ClientCmd, ClientCreate, Command, MfaCmd, PolicyFlags, RoleArg, TenantCmd,
    UserCmd, UserRef,
};
use crate::output::{client_json, emit, print_human, print_json, rfc3339, tenant_json, user_json};
use latchkey_core::{
    AdminRole, AuthMethod, ClientId, ClientSettings, ClientType, GrantType, OsRng, Rng, SystemClock, Tenant,
    TenantId, TenantPolicy, User, UserId, UserStatus, random_token, sha256_hex,
};
use latchkey_mfa::{HashParams, check_password_policy, hash_password};
use latchkey_server::Config;
use latchkey_store::{
    AdminTokenRepo, AuditRepo, ClientRepo, DatabaseUrl, Db, NewClient, NewTenant, NewUser, PoolOptions,
    TenantRepo, TenantUpdate, UserRepo,
};
use serde_json::json;
use std::io::BufRead;
use std::sync::Arc;

/// Who the audit log says acted: the operating-system user running the CLI.
pub fn actor() -> String {
    let name = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .or_else(|| {
            let status = std::fs::read_to_string("/proc/self/status").ok()?;
            let uid = status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))?
                .split_whitespace()
                .next()?
                .to_owned();
            Some(format!("uid{uid}"))
        });
    format!("cli:{}", name.unwrap_or_else(|| "unknown".into()))
}

/// Opens the configured database and brings its schema up to date.
pub fn open_db(config: &Config) -> Result<Db, CliError> {
    let url = DatabaseUrl::parse(&config.database_url)
        .map_err(|e| CliError::Input(format!("LATCHKEY_DATABASE_URL: {e}")))?;
    let opts = PoolOptions {
        max_size: 2,
        ..PoolOptions::for_url(&url)
    };
    let db = Db::open(&url, &opts, Arc::new(SystemClock), Arc::new(OsRng))
        .map_err(|e| CliError::Runtime(format!("LATCHKEY_DATABASE_URL ({}): {e}", url.redacted())))?;
    db.migrate().map_err(|e| CliError::Runtime(e.to_string()))?;
    Ok(db)
}

pub fn run(config: &Config, command: Command) -> Result<(), CliError> {
    let db = open_db(config)?;
    match command {
        Command::Migrate => {
            println!("database schema is up to date ({})", db.url().redacted());
            Ok(())
        }
        Command::Tenant(c) => tenant(config, &db, c),
        Command::Client(c) => client(&db, c),
        Command::User(c) => user(&db, c),
        Command::Audit(c) => audit(&db, c),
        Command::AdminToken(c) => admin_token(&db, c),
        Command::Keys(c) => crate::keys::run(config, &db, c),
        Command::Saml(c) => crate::saml::run(config, &db, c),
        Command::Role(c) => role(&db, c),
        Command::Serve | Command::Demo => unreachable!("handled in main"),
    }
}

/// Reads of personal data by an operator are audit events too.
fn audit_read(
    db: &Db,
    t: &TenantId,
    action: &str,
    target: String,
    details: serde_json::Value,
) -> Result<(), CliError> {
    db.append_audit(
        t,
        latchkey_core::NewAuditEvent::success(&actor(), action, target, details),
    )?;
    Ok(())
}

pub fn find_tenant(db: &Db, slug: &str) -> Result<Tenant, CliError> {
    db.tenant_by_slug(slug)?
        .ok_or_else(|| CliError::Input(format!("no tenant {slug:?}")))
}

fn tenant(config: &Config, db: &Db, cmd: TenantCmd) -> Result<(), CliError> {
    let show = |t: &Tenant, json: bool| {
        let v = tenant_json(t, &config.issuer(&t.slug));
        emit(json, &v);
    };
    match cmd {
        TenantCmd::Create {
            slug,
            display_name,
            out,
        } => {
            // Open the key ring first: no tenant is created when its keys could not be.
            let ring = crate::keys::open_ring(config, db)?;
            let t = db.create_tenant(
                &actor(),
                &NewTenant {
                    slug,
                    display_name,
                    policy: TenantPolicy::default(),
                },
            )?;
            ring.ensure_tenant(&t.id, &actor())?;
            show(&t, out.json);
        }
        TenantCmd::List { out } => {
            let ts = db.list_tenants()?;
            if out.json {
                print_json(
                    &ts.iter()
                        .map(|t| tenant_json(t, &config.issuer(&t.slug)))
                        .collect(),
                );
            } else {
                for t in ts {
                    println!("{}\t{}\t{}", t.slug, t.display_name, config.issuer(&t.slug));
                }
            }
        }
        TenantCmd::Show { slug, out } => show(&find_tenant(db, &slug)?, out.json),
        TenantCmd::Update {
            slug,
            display_name,
            policy,
            out,
        } => {
            let t = find_tenant(db, &slug)?;
            let mut new_policy = apply_policy(t.policy.clone(), &policy)?;
            let webhook_secret = match policy.risk_webhook.as_deref() {
                None => None,
                Some("") => {
                    new_policy.risk.webhook_url = None;
                    new_policy.risk.webhook_secret_sealed = None;
                    None
                }
                Some(url) => {
                    // https, or http on loopback; no fragments, user info or wildcards.
                    if !url.starts_with("http") {
                        return Err(CliError::Input(format!("--risk-webhook {url:?}: use https")));
                    }
                    latchkey_core::validate::redirect_uri("--risk-webhook", url)?;
                    let ring = crate::keys::open_ring(config, db)?;
                    let secret = format!("whsec_{}", random_token(&OsRng, 32));
                    new_policy.risk.webhook_secret_sealed = Some(ring.seal(
                        &t.id,
                        latchkey_services::webhook::secret_aad(&t.id),
                        secret.as_bytes(),
                    )?);
                    new_policy.risk.webhook_url = Some(url.to_owned());
                    Some(secret)
                }
            };
            let change = TenantUpdate {
                display_name,
                policy: Some(new_policy),
            };
            let updated = db.update_tenant(&t.id, &actor(), &change)?;
            match webhook_secret {
                Some(secret) if out.json => {
                    let mut v = tenant_json(&updated, &config.issuer(&updated.slug));
                    v["risk_webhook_secret"] = json!(secret);
                    print_json(&v);
                }
                Some(secret) => {
                    show(&updated, false);
                    println!("risk webhook secret (shown once; signs X-Latchkey-Signature): {secret}");
                }
                None => show(&updated, out.json),
            }
        }
        TenantCmd::Delete { slug, out } => {
            let t = find_tenant(db, &slug)?;
            db.delete_tenant(&t.id, &actor())?;
            done(
                out.json,
                json!({"deleted": "tenant", "slug": slug, "id": t.id}),
                &format!(
                    "deleted tenant {slug} (id {}; its audit chain stays readable by that id)",
                    t.id
                ),
            );
        }
    }
    Ok(())
}

pub fn done(json: bool, v: serde_json::Value, text: &str) {
    if json { print_json(&v) } else { println!("{text}") }
}

/// Token lifetimes: short access and ID tokens, codes of at most a minute (RFC 9700 §4.2.1 via
/// RFC 6749 §4.1.2), refresh lifetimes whose absolute limit is not below the idle one.
fn apply_token_policy(p: &mut TenantPolicy, f: &PolicyFlags) -> Result<(), CliError> {
    let t = &mut p.tokens;
    let bad = |m: String| Err(CliError::Input(m));
    let max = p.keys.max_token_lifetime_secs;
    for (flag, v, target) in [
        ("--access-token-ttl", f.access_token_ttl, &mut t.access_token_secs),
        ("--id-token-ttl", f.id_token_ttl, &mut t.id_token_secs),
    ] {
        if let Some(v) = v {
            if !(10..=max).contains(&v) {
                return bad(format!(
                    "{flag} must be 10 to {max} seconds (the key policy's maximum token lifetime)"
                ));
            }
            *target = v;
        }
    }
    if let Some(v) = f.code_ttl {
        if !(10..=60).contains(&v) {
            return bad("--code-ttl must be 10 to 60 seconds".into());
        }
        t.code_secs = v;
    }
    if let Some(v) = f.refresh_idle_ttl {
        t.refresh_idle_secs = v;
    }
    if let Some(v) = f.refresh_absolute_ttl {
        t.refresh_absolute_secs = v;
    }
    if t.refresh_idle_secs < 60 || t.refresh_absolute_secs < t.refresh_idle_secs {
        return bad("refresh lifetimes: idle at least 60 s and absolute at least idle".into());
    }
    Ok(())
}

fn apply_policy(mut p: TenantPolicy, f: &PolicyFlags) -> Result<TenantPolicy, CliError> {
    if let Some(n) = f.password_min_length {
        if n < 8 {
            return Err(CliError::Input(
                "--password-min-length must be at least 8 (NIST SP 800-63B)".into(),
            ));
        }
        p.password.min_length = n;
    }
    if let Some(n) = f.password_max_length {
        if n < 64 {
            return Err(CliError::Input(
                "--password-max-length must be at least 64 (NIST SP 800-63B)".into(),
            ));
        }
        p.password.max_length = n;
    }
    if p.password.min_length > p.password.max_length {
        return Err(CliError::Input(
            "the minimum password length exceeds the maximum".into(),
        ));
    }
    let set = |target: &mut bool, v: Option<bool>| {
        if let Some(v) = v {
            *target = v;
        }
    };
    set(&mut p.password.require_lowercase, f.password_require_lowercase);
    set(&mut p.password.require_uppercase, f.password_require_uppercase);
    set(&mut p.password.require_digit, f.password_require_digit);
    set(&mut p.password.require_symbol, f.password_require_symbol);
    if let Some(m) = f.mfa {
        p.mfa.mode = m;
        p.mfa_required = false;
    }
    if f.passkey_trust_none {
        p.mfa.passkey_attestation.clear();
    }
    for entry in &f.passkey_trust {
        let (aaguid, file) = entry
            .split_once('=')
            .ok_or_else(|| CliError::Input(format!("--passkey-trust {entry:?}: expected AAGUID=FILE")))?;
        let aaguid = aaguid.trim().to_ascii_lowercase();
        let hex: String = aaguid.chars().filter(|c| *c != '-').collect();
        if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(CliError::Input(format!(
                "--passkey-trust: {aaguid:?} is not an AAGUID"
            )));
        }
        let ca_pem = std::fs::read_to_string(file)
            .map_err(|e| CliError::Input(format!("--passkey-trust {file}: {e}")))?;
        if !ca_pem.contains("-----BEGIN CERTIFICATE-----") {
            return Err(CliError::Input(format!(
                "--passkey-trust {file}: not a PEM certificate"
            )));
        }
        latchkey_mfa::passkey::check_trusted(&[latchkey_mfa::passkey::TrustedModel {
            aaguid: aaguid.clone(),
            ca_pem: ca_pem.clone(),
        }])
        .map_err(|e| CliError::Input(format!("--passkey-trust {entry}: {e}")))?;
        p.mfa.passkey_attestation.retain(|t| t.aaguid != aaguid);
        p.mfa
            .passkey_attestation
            .push(latchkey_core::TrustedAuthenticator { aaguid, ca_pem });
    }
    if let Some(methods) = &f.mfa_methods {
        if methods.is_empty() {
            return Err(CliError::Input(
                "--mfa-methods needs at least one of passkey, totp".into(),
            ));
        }
        p.mfa.methods.clone_from(methods);
    }
    if let Some(d) = f.password_expiry_days {
        p.password.expiry_days = (d > 0).then_some(d);
    }
    if f.password_history.is_some_and(|h| h > 24) {
        return Err(CliError::Input(
            "--password-history keeps at most the last 24 passwords".into(),
        ));
    }
    if let Some(h) = f.password_history {
        p.password.history = h;
    }
    if let Some(u) = &f.logo_url {
        if !u.is_empty() {
            latchkey_core::validate::https_url("logo_url", u)?;
        }
        p.branding.logo_url = (!u.is_empty()).then(|| u.clone());
    }
    if let Some(c) = &f.primary_color {
        let ok = c.is_empty()
            || (c.len() == 7 && c.starts_with('#') && c[1..].bytes().all(|b| b.is_ascii_hexdigit()));
        if !ok {
            return Err(CliError::Input(format!(
                "--primary-color {c:?}: expected #rrggbb"
            )));
        }
        p.branding.primary_color = (!c.is_empty()).then(|| c.to_ascii_lowercase());
    }
    apply_token_policy(&mut p, f)?;
    if let Some(d) = f.key_rotation_days {
        p.keys.rotation_days = d;
    }
    if let Some(h) = f.key_prepublish_hours {
        p.keys.prepublish_hours = h;
    }
    if let Some(s) = f.max_token_lifetime_secs {
        p.keys.max_token_lifetime_secs = s;
    }
    // Pre-publication must outlast two JWKS cache periods, and rotation must leave room for it.
    let min_prepublish = (2 * latchkey_keys::JWKS_MAX_AGE_SECS).div_ceil(3600) as u32;
    if p.keys.prepublish_hours < min_prepublish {
        return Err(CliError::Input(format!(
            "--key-prepublish-hours must be at least {min_prepublish} (twice the JWKS cache lifetime)"
        )));
    }
    if u64::from(p.keys.rotation_days) * 24 <= u64::from(p.keys.prepublish_hours) {
        return Err(CliError::Input(
            "--key-rotation-days must be longer than the pre-publication period".into(),
        ));
    }
    if p.keys.max_token_lifetime_secs == 0 {
        return Err(CliError::Input(
            "--max-token-lifetime-secs must be positive".into(),
        ));
    }
    apply_risk_policy(&mut p, f)?;
    if let Some(s) = f.session_idle_timeout {
        p.session.idle_timeout_secs = s;
    }
    if let Some(s) = f.session_absolute_timeout {
        p.session.absolute_timeout_secs = s;
    }
    if p.session.idle_timeout_secs < 60 || p.session.idle_timeout_secs > p.session.absolute_timeout_secs {
        return Err(CliError::Input(
            "the session idle timeout must be at least 60 s and at most the absolute timeout".into(),
        ));
    }
    Ok(p)
}

fn apply_risk_policy(p: &mut TenantPolicy, f: &PolicyFlags) -> Result<(), CliError> {
    if let Some(on) = f.risk {
        p.risk.enabled = on;
    }
    if let Some(on) = f.risk_notify_new_device {
        p.risk.notify_new_device = on;
    }
    if let Some(n) = f.risk_stepup {
        p.risk.step_up = n;
    }
    if let Some(n) = f.risk_deny {
        p.risk.deny = n;
    }
    if p.risk.step_up == 0 || p.risk.deny > 100 || p.risk.step_up > p.risk.deny {
        return Err(CliError::Input(
            "risk bands: --risk-stepup between 1 and --risk-deny, --risk-deny at most 100 (100 = never deny below a full score)".into(),
        ));
    }
    if let Some(d) = f.audit_retention_days {
        if d < 30 {
            return Err(CliError::Input(
                "--audit-retention-days must be at least 30".into(),
            ));
        }
        p.retention.audit_days = d;
    }
    if let Some(d) = f.risk_history_retention_days {
        if d < 1 {
            return Err(CliError::Input(
                "--risk-history-retention-days must be at least 1".into(),
            ));
        }
        p.retention.risk_history_days = d;
    }
    Ok(())
}

/// 256-bit client secret: returned to show once, stored as its SHA-256.
pub fn new_secret(rng: &dyn Rng) -> (String, String) {
    let secret = random_token(rng, 32);
    let hash = sha256_hex(secret.as_bytes());
    (secret, hash)
}

/// Fills in the defaults an operator expects and registers the client; returns it and its secret.
pub fn create_client(
    db: &Db,
    tenant: &Tenant,
    c: &ClientCreate,
) -> Result<(latchkey_core::Client, Option<String>), CliError> {
    let client_type = if c.public {
        ClientType::Public
    } else {
        ClientType::Confidential
    };
    let auth_method = c.auth_method.unwrap_or(if c.public {
        AuthMethod::None
    } else {
        AuthMethod::ClientSecretBasic
    });
    let grant_types = if c.grants.is_empty() {
        vec![GrantType::AuthorizationCode, GrantType::RefreshToken]
    } else {
        let mut g = c.grants.clone();
        g.dedup();
        g
    };
    let scopes = if c.scopes.is_empty() {
        ["openid", "profile", "email", "offline_access"]
            .map(String::from)
            .to_vec()
    } else {
        c.scopes.clone()
    };
    if c.public && c.no_pkce {
        return Err(CliError::Input(
            "--no-pkce: public clients always use PKCE".into(),
        ));
    }
    let jwks = match &c.jwks_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| CliError::Input(format!("--jwks-file {}: {e}", path.display())))?;
            Some(
                serde_json::from_str(&text)
                    .map_err(|e| CliError::Input(format!("--jwks-file {}: not JSON: {e}", path.display())))?,
            )
        }
        None => None,
    };
    let secret = matches!(
        auth_method,
        AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost
    )
    .then(|| new_secret(&OsRng));
    let new = NewClient {
        name: c.name.clone(),
        client_type,
        auth_method,
        secret_hash: secret.as_ref().map(|(_, h)| h.clone()),
        redirect_uris: c.redirect_uris.clone(),
        post_logout_redirect_uris: c.post_logout_redirect_uris.clone(),
        grant_types,
        scopes,
        access_token_format: c.access_token_format,
        require_pkce: !c.no_pkce,
        introspect_others: c.introspect_others,
        first_party: c.first_party,
        jwks_uri: c.jwks_uri.clone(),
        jwks,
        settings: ClientSettings {
            id_token_signed_response_alg: c.id_token_alg.clone(),
            access_token_secs: c.access_token_ttl,
            id_token_secs: c.id_token_ttl,
            refresh_idle_secs: c.refresh_idle_ttl,
            refresh_absolute_secs: c.refresh_absolute_ttl,
        },
    };
    let client = db.create_client(&tenant.id, &actor(), &new)?;
    Ok((client, secret.map(|(s, _)| s)))
}

fn client(db: &Db, cmd: ClientCmd) -> Result<(), CliError> {
    let find = |t: &Tenant, id: &str| {
        db.client(&t.id, &ClientId(id.to_owned()))?
            .ok_or_else(|| CliError::Input(format!("no client {id:?} in tenant {:?}", t.slug)))
    };
    match cmd {
        ClientCmd::Create(c) => {
            let t = find_tenant(db, &c.t.tenant)?;
            let (client, secret) = create_client(db, &t, &c)?;
            if c.out.json {
                print_json(&json!({"client_id": client.client_id, "client_secret": secret}));
            } else {
                print_human(&client_json(&client));
                if let Some(s) = secret {
                    println!("client_secret  {s}\n(shown once: only its hash is stored)");
                }
            }
        }
        ClientCmd::List { t, out } => {
            let t = find_tenant(db, &t.tenant)?;
            let cs = db.list_clients(&t.id)?;
            if out.json {
                print_json(&cs.iter().map(client_json).collect());
            } else {
                for c in cs {
                    println!("{}\t{}\t{}", c.client_id, c.client_type, c.name);
                }
            }
        }
        ClientCmd::Show { t, client_id, out } => {
            let c = find(&find_tenant(db, &t.tenant)?, &client_id)?;
            emit(out.json, &client_json(&c));
        }
        ClientCmd::Delete { t, client_id, out } => {
            let t = find_tenant(db, &t.tenant)?;
            let c = find(&t, &client_id)?;
            db.delete_client(&t.id, &actor(), &c.client_id)?;
            done(
                out.json,
                json!({"deleted": "client", "client_id": c.client_id}),
                &format!("deleted client {}", c.client_id),
            );
        }
        ClientCmd::RotateSecret { t, client_id, out } => {
            let t = find_tenant(db, &t.tenant)?;
            let c = find(&t, &client_id)?;
            if !matches!(
                c.auth_method,
                AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost
            ) {
                return Err(CliError::Input(format!(
                    "client {client_id} does not authenticate with a secret"
                )));
            }
            let (secret, hash) = new_secret(&OsRng);
            db.set_client_secret_hash(&t.id, &actor(), &c.client_id, &hash)?;
            done(
                out.json,
                json!({"client_id": c.client_id, "client_secret": secret}),
                &format!("client_secret  {secret}\n(shown once: only its hash is stored)"),
            );
        }
    }
    Ok(())
}

/// Reads one line (the password) from standard input; never from argv, where `ps` shows it.
fn read_password() -> Result<String, CliError> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| CliError::Input(format!("reading the password from standard input: {e}")))?;
    let pw = line.strip_suffix('\n').unwrap_or(&line);
    let pw = pw.strip_suffix('\r').unwrap_or(pw).to_owned();
    if pw.is_empty() {
        return Err(CliError::Input("no password on standard input".into()));
    }
    Ok(pw)
}

/// Checks the tenant's policy and hashes with argon2id.
pub fn password_hash(
    tenant: &Tenant,
    password: &str,
    username: &str,
    email: Option<&str>,
) -> Result<String, CliError> {
    let ids: Vec<&str> = std::iter::once(username).chain(email).collect();
    check_password_policy(password, &tenant.policy.password, &ids)
        .map_err(|e| CliError::Input(e.to_string()))?;
    hash_password(password, HashParams::default(), &OsRng).map_err(|e| CliError::Runtime(e.to_string()))
}

fn find_user(db: &Db, t: &Tenant, name: &str) -> Result<User, CliError> {
    if let Some(u) = db.user_by_username(&t.id, name)? {
        return Ok(u);
    }
    db.user(&t.id, &UserId(name.to_owned()))?
        .ok_or_else(|| CliError::Input(format!("no user {name:?} in tenant {:?}", t.slug)))
}

fn user(db: &Db, cmd: UserCmd) -> Result<(), CliError> {
    let show = |u: &User, json: bool| {
        emit(json, &user_json(u));
    };
    match cmd {
        UserCmd::Create {
            t,
            username,
            email,
            display_name,
            password_stdin,
            out,
        } => {
            let t = find_tenant(db, &t.tenant)?;
            let password_hash = if password_stdin {
                let normalized = latchkey_core::validate::username(&username)?;
                Some(password_hash(
                    &t,
                    &read_password()?,
                    &normalized,
                    email.as_deref(),
                )?)
            } else {
                None
            };
            let u = db.create_user(
                &t.id,
                &actor(),
                &NewUser {
                    username,
                    email,
                    display_name,
                    password_hash,
                },
            )?;
            show(&u, out.json);
        }
        UserCmd::List { t, out } => {
            let t = find_tenant(db, &t.tenant)?;
            let us = db.list_users(&t.id)?;
            audit_read(db, &t.id, "user.list", "users".into(), json!({}))?;
            if out.json {
                print_json(&us.iter().map(user_json).collect());
            } else {
                for u in us {
                    println!(
                        "{}\t{}\t{}\t{}",
                        u.id,
                        u.username,
                        u.email.as_deref().unwrap_or("-"),
                        u.status
                    );
                }
            }
        }
        UserCmd::Show(UserRef { t, user, out }) => {
            let t = find_tenant(db, &t.tenant)?;
            let u = find_user(db, &t, &user)?;
            audit_read(db, &t.id, "user.read", format!("user:{}", u.id), json!({}))?;
            show(&u, out.json);
        }
        UserCmd::Disable(r) => set_status(db, r, UserStatus::Disabled)?,
        UserCmd::Enable(r) => set_status(db, r, UserStatus::Active)?,
        UserCmd::Delete(UserRef { t, user, out }) => {
            let t = find_tenant(db, &t.tenant)?;
            let u = find_user(db, &t, &user)?;
            db.delete_user(&t.id, &actor(), &u.id)?;
            done(
                out.json,
                json!({"deleted": "user", "id": u.id, "username": u.username}),
                &format!("deleted user {}", u.username),
            );
        }
        UserCmd::Mfa(cmd) => mfa(db, cmd)?,
        UserCmd::SetPassword(UserRef { t, user, out }) => {
            let t = find_tenant(db, &t.tenant)?;
            let u = find_user(db, &t, &user)?;
            let hash = password_hash(&t, &read_password()?, &u.username, u.email.as_deref())?;
            let u = db.set_password_hash(&t.id, &actor(), &u.id, &hash)?;
            show(&u, out.json);
        }
    }
    Ok(())
}

fn mfa(db: &Db, cmd: MfaCmd) -> Result<(), CliError> {
    use latchkey_store::MfaRepo;
    match cmd {
        MfaCmd::List(r) => {
            let t = find_tenant(db, &r.t.tenant)?;
            let u = find_user(db, &t, &r.username)?;
            let totp = db.totp(&t.id, &u.id)?;
            let out = json!({
                "user": u.username,
                "policy": t.policy.mfa_mode(),
                "totp": totp.map(|f| json!({
                    "confirmed_at": f.confirmed_at.map(rfc3339),
                    "last_used_at": f.last_used_at.map(rfc3339),
                })),
                "recovery_codes_left": db.recovery_codes_left(&t.id, &u.id)?,
            });
            emit(r.out.json, &out);
        }
        MfaCmd::Reset(r) => {
            let t = find_tenant(db, &r.t.tenant)?;
            let u = find_user(db, &t, &r.username)?;
            let removed = db.reset_mfa(&t.id, &actor(), &u.id)?;
            emit(
                r.out.json,
                &json!({"user": u.username, "removed": removed, "sessions": "ended"}),
            );
        }
    }
    Ok(())
}

fn set_status(db: &Db, r: UserRef, status: UserStatus) -> Result<(), CliError> {
    let t = find_tenant(db, &r.t.tenant)?;
    let u = find_user(db, &t, &r.user)?;
    let u = db.set_user_status(&t.id, &actor(), &u.id, status)?;
    emit(r.out.json, &user_json(&u));
    Ok(())
}

fn role(db: &Db, cmd: crate::cli::RoleCmd) -> Result<(), CliError> {
    use crate::cli::RoleCmd;
    use latchkey_store::RoleRepo;
    let role_json = |r: &latchkey_core::Role| json!({"id": r.id.as_str(), "name": r.name, "description": r.description, "created_at": rfc3339(r.created_at)});
    match cmd {
        RoleCmd::Create {
            t,
            name,
            description,
            out,
        } => {
            let t = find_tenant(db, &t.tenant)?;
            let r = db.create_role(&t.id, &actor(), &name, description.as_deref())?;
            emit(out.json, &role_json(&r));
        }
        RoleCmd::List { t, out } => {
            let t = find_tenant(db, &t.tenant)?;
            let roles = db.list_roles(&t.id)?;
            if out.json {
                print_json(&roles.iter().map(role_json).collect());
            } else {
                for r in roles {
                    println!("{}\t{}", r.name, r.description.unwrap_or_default());
                }
            }
        }
        RoleCmd::Remove { t, name, out } => {
            let t = find_tenant(db, &t.tenant)?;
            let r = db
                .list_roles(&t.id)?
                .into_iter()
                .find(|r| r.name == name)
                .ok_or_else(|| CliError::Input(format!("no role {name:?} in tenant {:?}", t.slug)))?;
            db.delete_role(&t.id, &actor(), &r.id)?;
            done(
                out.json,
                json!({"deleted": "role", "name": r.name, "id": r.id.as_str()}),
                &format!("removed role {}", r.name),
            );
        }
    }
    Ok(())
}

fn admin_token(db: &Db, cmd: AdminTokenCmd) -> Result<(), CliError> {
    let token_json = |k: &latchkey_core::AdminToken| {
        json!({
            "id": k.id, "name": k.name, "role": k.role, "created_at": rfc3339(k.created_at),
            "expires_at": k.expires_at.map(rfc3339),
        })
    };
    match cmd {
        AdminTokenCmd::Create {
            t,
            name,
            role,
            expires_in_days,
            out,
        } => {
            let t = find_tenant(db, &t.tenant)?;
            let role = match role {
                RoleArg::Reader => AdminRole::Reader,
                RoleArg::Admin => AdminRole::Admin,
            };
            let token = format!("lka_{}", random_token(&OsRng, 32));
            let expires_at = (expires_in_days > 0).then(|| {
                latchkey_core::Clock::now_millis(&SystemClock) + i64::from(expires_in_days) * 86_400_000
            });
            let k = db.create_admin_token(
                &t.id,
                &actor(),
                &name,
                role,
                &sha256_hex(token.as_bytes()),
                expires_at,
            )?;
            let mut v = token_json(&k);
            v["token"] = json!(token);
            if out.json {
                print_json(&v);
            } else {
                print_human(&v);
                println!("(the token is shown once: only its hash is stored)");
            }
        }
        AdminTokenCmd::List { t, out } => {
            let t = find_tenant(db, &t.tenant)?;
            let ks = db.list_admin_tokens(&t.id)?;
            if out.json {
                print_json(&ks.iter().map(token_json).collect());
            } else {
                for k in ks {
                    println!(
                        "{}\t{}\t{}\t{}",
                        k.id,
                        k.role,
                        k.name,
                        k.expires_at.map_or_else(|| "never".into(), rfc3339)
                    );
                }
            }
        }
        AdminTokenCmd::Revoke { t, id, out } => {
            let t = find_tenant(db, &t.tenant)?;
            db.revoke_admin_token(&t.id, &actor(), &id)?;
            done(
                out.json,
                json!({"revoked": "admin_token", "id": id}),
                &format!("revoked admin token {id}"),
            );
        }
    }
    Ok(())
}

/// The chain to read: a tenant by slug, or, for a deleted tenant, by its id.
struct ChainRef {
    id: TenantId,
    name: String,
}

fn audit_tenant(db: &Db, value: &str) -> Result<ChainRef, CliError> {
    if let Some(t) = db.tenant_by_slug(value)? {
        return Ok(ChainRef {
            id: t.id,
            name: t.slug,
        });
    }
    let id = TenantId(value.to_owned());
    if db.tenant(&id)?.is_none() && db.audit_head(&id)?.is_some() {
        return Ok(ChainRef {
            id,
            name: format!("deleted tenant {value}"),
        });
    }
    Err(CliError::Input(format!(
        "no tenant {value:?} (give a slug, or a deleted tenant's id)"
    )))
}

fn audit(db: &Db, cmd: AuditCmd) -> Result<(), CliError> {
    match cmd {
        AuditCmd::Verify { t, out } => {
            let t = audit_tenant(db, &t.tenant)?;
            let verdict = latchkey_audit::verify(db, &t.id).map_err(|e| CliError::Runtime(e.to_string()))?;
            match &verdict {
                latchkey_audit::Verdict::Intact { events, head_hash } => {
                    done(
                        out.json,
                        serde_json::to_value(&verdict).unwrap_or_default(),
                        &format!(
                            "audit chain of {} is intact: {events} events, head {head_hash}",
                            t.name
                        ),
                    );
                    Ok(())
                }
                latchkey_audit::Verdict::Broken { seq, reason } => {
                    if out.json {
                        print_json(&serde_json::to_value(&verdict).unwrap_or_default());
                    }
                    Err(CliError::Runtime(format!(
                        "audit chain of {} is broken at sequence number {seq}: {reason}",
                        t.name
                    )))
                }
            }
        }
        AuditCmd::Export { t, format, filter } => {
            let t = audit_tenant(db, &t.tenant)?;
            let filter = audit_filter(&filter)?;
            let format = match format {
                crate::cli::ExportFormat::Jsonl => latchkey_audit::Format::Jsonl,
                crate::cli::ExportFormat::Csv => latchkey_audit::Format::Csv,
            };
            let stdout = std::io::stdout();
            let mut lock = std::io::BufWriter::new(stdout.lock());
            let n = latchkey_audit::export(db, &t.id, &filter, format, &mut lock)
                .map_err(|e| CliError::Runtime(e.to_string()))?;
            audit_read(
                db,
                &t.id,
                "audit.export",
                format!("tenant:{}", t.id),
                json!({"events": n}),
            )?;
            Ok(())
        }
        AuditCmd::Search {
            t,
            filter,
            limit,
            out,
        } => {
            let t = audit_tenant(db, &t.tenant)?;
            let filter = audit_filter(&filter)?;
            let events = db.audit_search(&t.id, &filter, 0, i64::from(limit.clamp(1, 10_000)))?;
            audit_read(
                db,
                &t.id,
                "audit.read",
                format!("tenant:{}", t.id),
                json!({"events": events.len()}),
            )?;
            if out.json {
                print_json(&events.iter().map(|e| json!(e)).collect());
            } else {
                for e in &events {
                    println!(
                        "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                        e.seq,
                        rfc3339(e.at),
                        e.actor,
                        e.action,
                        e.target,
                        e.outcome.as_str(),
                        e.details
                    );
                }
            }
            Ok(())
        }
        AuditCmd::Retention { t, out } => {
            let t = find_tenant(db, &t.tenant)?;
            let r = latchkey_audit::apply_retention(db, &t, latchkey_core::Clock::now_millis(&SystemClock))
                .map_err(|e| CliError::Runtime(e.to_string()))?;
            done(
                out.json,
                serde_json::to_value(r).unwrap_or_default(),
                &format!(
                    "retention applied to {}: {} audit events and {} risk histories deleted",
                    t.slug, r.audit_events_deleted, r.risk_histories_deleted
                ),
            );
            Ok(())
        }
    }
}

/// An instant given as RFC 3339 or a plain date (midnight UTC), as Unix milliseconds.
fn parse_instant(flag: &str, v: &str) -> Result<i64, CliError> {
    use time::format_description::well_known::Rfc3339;
    let t = time::OffsetDateTime::parse(v, &Rfc3339)
        .or_else(|_| time::OffsetDateTime::parse(&format!("{v}T00:00:00Z"), &Rfc3339))
        .map_err(|_| {
            CliError::Input(format!(
                "{flag} {v:?}: expected RFC 3339 (2026-11-01T00:00:00Z) or a date (2026-11-01)"
            ))
        })?;
    Ok(i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX))
}

fn audit_filter(f: &crate::cli::AuditFilterArgs) -> Result<latchkey_store::AuditFilter, CliError> {
    Ok(latchkey_store::AuditFilter {
        user: f.user.clone(),
        action: f.action.clone(),
        since: f
            .since
            .as_deref()
            .map(|v| parse_instant("--since", v))
            .transpose()?,
        until: f
            .until
            .as_deref()
            .map(|v| parse_instant("--until", v))
            .transpose()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_flags_are_checked() {
        let p = TenantPolicy::default();
        let f = PolicyFlags {
            password_min_length: Some(4),
            ..PolicyFlags::default()
        };
        assert!(apply_policy(p.clone(), &f).is_err());
        let f = PolicyFlags {
            password_max_length: Some(32),
            ..PolicyFlags::default()
        };
        assert!(apply_policy(p.clone(), &f).is_err());
        let f = PolicyFlags {
            password_expiry_days: Some(90),
            password_require_digit: Some(true),
            ..PolicyFlags::default()
        };
        let out = apply_policy(p.clone(), &f).unwrap();
        assert_eq!(out.password.expiry_days, Some(90));
        assert!(out.password.require_digit);
        let f = PolicyFlags {
            primary_color: Some("red".into()),
            ..PolicyFlags::default()
        };
        assert!(apply_policy(p.clone(), &f).is_err());
        let f = PolicyFlags {
            logo_url: Some("http://logo.example/x.png".into()),
            ..PolicyFlags::default()
        };
        assert!(apply_policy(p.clone(), &f).is_err(), "logos over https only");
        let f = PolicyFlags {
            logo_url: Some("https://logo.example/x.png".into()),
            primary_color: Some("#0B57D0".into()),
            ..PolicyFlags::default()
        };
        let b = apply_policy(p.clone(), &f).unwrap().branding;
        assert_eq!(b.primary_color.as_deref(), Some("#0b57d0"));
        let f = PolicyFlags {
            key_prepublish_hours: Some(1),
            ..PolicyFlags::default()
        };
        assert!(
            apply_policy(p.clone(), &f).is_err(),
            "pre-publication shorter than two JWKS cache periods"
        );
        let f = PolicyFlags {
            key_rotation_days: Some(1),
            ..PolicyFlags::default()
        };
        assert!(
            apply_policy(p.clone(), &f).is_err(),
            "rotation shorter than pre-publication"
        );
        let f = PolicyFlags {
            key_rotation_days: Some(30),
            key_prepublish_hours: Some(6),
            ..PolicyFlags::default()
        };
        assert_eq!(apply_policy(p.clone(), &f).unwrap().keys.rotation_days, 30);
        let f = PolicyFlags {
            password_expiry_days: Some(0),
            ..PolicyFlags::default()
        };
        assert_eq!(apply_policy(out, &f).unwrap().password.expiry_days, None);
    }

    #[test]
    fn token_lifetimes_are_bounded() {
        let p = TenantPolicy::default();
        let with = |f: PolicyFlags| apply_policy(p.clone(), &f);
        let ok = with(PolicyFlags {
            access_token_ttl: Some(300),
            code_ttl: Some(30),
            refresh_idle_ttl: Some(3600),
            refresh_absolute_ttl: Some(7200),
            ..PolicyFlags::default()
        })
        .unwrap()
        .tokens;
        assert_eq!(
            (ok.access_token_secs, ok.code_secs, ok.refresh_absolute_secs),
            (300, 30, 7200)
        );
        for bad in [
            PolicyFlags {
                code_ttl: Some(600),
                ..PolicyFlags::default()
            },
            PolicyFlags {
                access_token_ttl: Some(2 * 86_400),
                ..PolicyFlags::default()
            },
            PolicyFlags {
                id_token_ttl: Some(1),
                ..PolicyFlags::default()
            },
            PolicyFlags {
                refresh_idle_ttl: Some(7200),
                refresh_absolute_ttl: Some(3600),
                ..PolicyFlags::default()
            },
        ] {
            assert!(with(bad).is_err());
        }
    }

    #[test]
    fn client_secret_is_256_bits_and_stored_as_sha256() {
        let (secret, hash) = new_secret(&OsRng);
        assert_eq!(secret.len(), 43);
        assert_eq!(hash, sha256_hex(secret.as_bytes()));
        assert_ne!(new_secret(&OsRng).0, secret);
    }
}
