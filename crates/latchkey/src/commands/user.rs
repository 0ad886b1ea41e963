//! `latchkey user …`: a tenant's users and their second factors. Passwords come from standard
//! input only (never argv, where `ps` shows them); reads of personal data are audited.

use crate::cli::{GrantsCmd, MfaCmd, MfaUser, UserCmd, UserRef};
use crate::context::Context;
use crate::error::CliError;
use crate::output::{done, emit, print_json, rfc3339, user_json};
use crate::provision::password_hash;
use latchkey_core::{Tenant, User, UserStatus};
use latchkey_services::verification::Prepared;
use latchkey_store::{
    EmailVerificationRepo, LifecycleRepo, MfaRepo, NewUser, OAuthRepo, UserRepo, UserUpdate,
};
use serde_json::json;
use std::io::BufRead;

/// `user create`'s arguments.
struct NewAccount {
    username: String,
    email: Option<String>,
    display_name: Option<String>,
    password_stdin: bool,
}

pub fn run(ctx: &Context<'_>, cmd: UserCmd) -> Result<(), CliError> {
    match cmd {
        UserCmd::Create {
            tenant,
            username,
            email,
            display_name,
            password_stdin,
            out,
        } => {
            let account = NewAccount {
                username,
                email,
                display_name,
                password_stdin,
            };
            create(ctx, tenant.slug(), account, out.json)
        }
        UserCmd::List { tenant, out } => list(ctx, tenant.slug(), out.json),
        UserCmd::Show(user) => show(ctx, &user),
        UserCmd::Disable(user) => set_status(ctx, &user, UserStatus::Disabled),
        UserCmd::Enable(user) => set_status(ctx, &user, UserStatus::Active),
        UserCmd::Delete(user) => delete(ctx, &user),
        UserCmd::Restore(user) => restore(ctx, &user),
        UserCmd::Erase { user, reason, yes } => erase(ctx, &user, &reason, yes),
        UserCmd::Seal { tenant, out } => seal(ctx, tenant.slug(), out.json),
        UserCmd::Mfa(MfaCmd::List(user)) => mfa_list(ctx, &user),
        UserCmd::Mfa(MfaCmd::Reset(user)) => mfa_reset(ctx, &user),
        UserCmd::Mfa(MfaCmd::Remove { user, factor }) => mfa_remove(ctx, &user, &factor),
        UserCmd::Grants(GrantsCmd::List(user)) => {
            let tenant = ctx.tenant(user.tenant.slug())?;
            let found = find(ctx, &tenant, &user.user)?;
            let (clients, _) = latchkey_services::grants::by_client(&ctx.db, &tenant.id, &found.id)?;
            emit(user.out.json, &json!(clients));
            Ok(())
        }
        UserCmd::Grants(GrantsCmd::Revoke { user, client }) => {
            let tenant = ctx.tenant(user.tenant.slug())?;
            let found = find(ctx, &tenant, &user.user)?;
            let client = client.map(latchkey_core::ClientId);
            let (consents, grants) =
                ctx.db
                    .revoke_user_grants(&tenant.id, ctx.actor(), &found.id, client.as_ref())?;
            done(
                user.out.json,
                &json!({"user": found.username, "consents_withdrawn": consents, "grants_revoked": grants}),
                &format!(
                    "{}: {consents} consents withdrawn, {grants} grants revoked",
                    found.username
                ),
            );
            Ok(())
        }
        UserCmd::SetPassword(user) => set_password(ctx, &user),
        UserCmd::Update {
            user,
            email,
            display_name,
        } => update(ctx, &user, email, display_name),
        UserCmd::VerifyEmail(user) => verify_email(ctx, &user),
        UserCmd::Export { tenant, user } => export(ctx, tenant.slug(), &user),
    }
}

/// `user export`: the same document as the account page's download, on standard output.
fn export(ctx: &Context<'_>, slug: &str, name: &str) -> Result<(), CliError> {
    let tenant = ctx.tenant(slug)?;
    let user = find(ctx, &tenant, name)?;
    let sessions = redis_sessions(ctx, &tenant, &user)?;
    let request = latchkey_services::privacy::ExportRequest {
        tenant: &tenant,
        user: &user,
        sessions,
        actor: ctx.actor(),
        now: ctx.now_millis(),
    };
    let document = latchkey_services::privacy::export(&ctx.db, request).map_err(CliError::Privacy)?;
    print_json(&json!(document));
    Ok(())
}

/// The user's sessions when they live in Redis; `None` for the embedded store, which only the
/// server's process can read.
fn redis_sessions(
    ctx: &Context<'_>,
    tenant: &Tenant,
    user: &User,
) -> Result<Option<Vec<latchkey_core::Session>>, CliError> {
    let url = &ctx.config.session_store;
    if !url.starts_with("redis") {
        return Ok(None);
    }
    let tls = ctx.config.redis_tls().map_err(CliError::Config)?;
    let (tid, uid) = (tenant.id.clone(), user.id.clone());
    let listed = crate::commands::saml::block_on(async move {
        let clock = std::sync::Arc::new(latchkey_core::SystemClock);
        let store = latchkey_session::open(url, &tls, clock).await?;
        store.list_user_sessions(&tid, &uid).await
    })?;
    let sessions = listed.map_err(CliError::Sessions)?;
    Ok(Some(sessions.into_iter().map(|(_, s)| s).collect()))
}

/// A user by username or, failing that, by id.
fn find(ctx: &Context<'_>, tenant: &Tenant, name: &str) -> Result<User, CliError> {
    ctx.user(tenant, name)
}

/// Reads one line (the password) from standard input.
fn read_password() -> Result<String, CliError> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(CliError::Stdin)?;
    let password = line.strip_suffix('\n').unwrap_or(&line);
    let password = password.strip_suffix('\r').unwrap_or(password).to_owned();
    if password.is_empty() {
        return Err(CliError::NoPassword);
    }
    Ok(password)
}

fn create(ctx: &Context<'_>, slug: &str, account: NewAccount, json: bool) -> Result<(), CliError> {
    let tenant = ctx.tenant(slug)?;
    let password_hash = if account.password_stdin {
        let normalized = latchkey_core::validate::username(&account.username)?;
        Some(password_hash(
            &tenant,
            &read_password()?,
            &normalized,
            account.email.as_deref(),
        )?)
    } else {
        None
    };
    let new = NewUser {
        username: account.username,
        email: account.email,
        display_name: account.display_name,
        password_hash,
        email_verified: false,
    };
    // A new address gets its verification link in the transaction that creates the user.
    let prepared = match &new.email {
        Some(email) => {
            let username = latchkey_core::validate::username(&new.username)?;
            let email = latchkey_core::validate::email(email)?;
            Some(verification_mail(ctx, &tenant, &username, &email)?)
        }
        None => None,
    };
    let user = ctx.db.create_user_verifying(
        &tenant.id,
        ctx.actor(),
        "user.create",
        &new,
        prepared.as_ref().map(Prepared::verification).as_ref(),
        &[],
    )?;
    emit(json, &user_json(&user));
    Ok(())
}

/// A verification link for `email` and its sealed mail (delivered by the server's outbox).
fn verification_mail(
    ctx: &Context<'_>,
    tenant: &Tenant,
    username: &str,
    email: &str,
) -> Result<Prepared, CliError> {
    let ring = ctx.ring()?;
    Ok(latchkey_services::verification::prepare(
        &ring,
        &latchkey_core::OsRng,
        (&tenant.id, &tenant.display_name),
        &ctx.issuer(&tenant.slug),
        (username, email),
        &latchkey_services::verification::ENGLISH,
        ctx.now_millis(),
    )?)
}

/// `user update`: a changed address is unverified and gets a verification link.
fn update(
    ctx: &Context<'_>,
    reference: &UserRef,
    email: Option<String>,
    display_name: Option<String>,
) -> Result<(), CliError> {
    let tenant = ctx.tenant(reference.tenant.slug())?;
    let user = find(ctx, &tenant, &reference.user)?;
    let clear_or = |v: Option<String>| v.map(|v| Some(v).filter(|v| !v.trim().is_empty()));
    let change = UserUpdate {
        email: clear_or(email),
        display_name: clear_or(display_name),
        if_version: None,
    };
    let after = ctx.db.update_user(&tenant.id, ctx.actor(), &user.id, &change)?;
    if let Some(email) = after.email.as_deref().filter(|_| after.email != user.email) {
        let p = verification_mail(ctx, &tenant, &after.username, email)?;
        ctx.db
            .request_email_verification(&tenant.id, ctx.actor(), &after.id, &p.verification())?;
    }
    emit(reference.out.json, &user_json(&after));
    Ok(())
}

/// `user verify-email`: the operator vouches for the address.
fn verify_email(ctx: &Context<'_>, reference: &UserRef) -> Result<(), CliError> {
    let tenant = ctx.tenant(reference.tenant.slug())?;
    let user = find(ctx, &tenant, &reference.user)?;
    let user = ctx
        .db
        .set_email_verified(&tenant.id, ctx.actor(), &user.id, true)?;
    emit(reference.out.json, &user_json(&user));
    Ok(())
}

fn list(ctx: &Context<'_>, slug: &str, json: bool) -> Result<(), CliError> {
    let tenant = ctx.tenant(slug)?;
    let users = ctx.db.list_users(&tenant.id)?;
    ctx.audit_read(&tenant.id, "user.list", "users".into(), json!({}))?;
    if json {
        print_json(&users.iter().map(user_json).collect());
    } else {
        for user in users {
            println!(
                "{}\t{}\t{}\t{}",
                user.id,
                user.username,
                user.email.as_deref().unwrap_or("-"),
                user.status
            );
        }
    }
    Ok(())
}

fn show(ctx: &Context<'_>, reference: &UserRef) -> Result<(), CliError> {
    let tenant = ctx.tenant(reference.tenant.slug())?;
    let user = find(ctx, &tenant, &reference.user)?;
    ctx.audit_read(&tenant.id, "user.read", format!("user:{}", user.id), json!({}))?;
    let mut shown = user_json(&user);
    if let Some(due) = ctx.db.deletion_due(&tenant.id, &user.id)? {
        shown["deletion_due_at"] = json!(crate::output::rfc3339(due));
    }
    emit(reference.out.json, &shown);
    Ok(())
}

fn set_status(ctx: &Context<'_>, reference: &UserRef, status: UserStatus) -> Result<(), CliError> {
    let tenant = ctx.tenant(reference.tenant.slug())?;
    let user = find(ctx, &tenant, &reference.user)?;
    let user = ctx
        .db
        .set_user_status(&tenant.id, ctx.actor(), &user.id, status)?;
    emit(reference.out.json, &user_json(&user));
    Ok(())
}

fn delete(ctx: &Context<'_>, reference: &UserRef) -> Result<(), CliError> {
    let tenant = ctx.tenant(reference.tenant.slug())?;
    let user = find(ctx, &tenant, &reference.user)?;
    ctx.db.delete_user(&tenant.id, ctx.actor(), &user.id)?;
    done(
        reference.out.json,
        &json!({"deleted": "user", "id": user.id, "username": user.username}),
        &format!("deleted user {}", user.username),
    );
    Ok(())
}

fn erase(ctx: &Context<'_>, reference: &UserRef, reason: &str, yes: bool) -> Result<(), CliError> {
    let tenant = ctx.tenant(reference.tenant.slug())?;
    let user = find(ctx, &tenant, &reference.user)?;
    crate::output::confirm(
        yes,
        &format!(
            "erase user {} of tenant {}: their personal data can never be opened again",
            user.username, tenant.slug
        ),
        &user.username,
    )?;
    let done_ =
        latchkey_services::privacy::erase(&ctx.db, &tenant, ctx.actor(), &user.id, reason, ctx.now_millis())
            .map_err(CliError::Privacy)?;
    let text = match done_.due_at {
        Some(due) => format!(
            "user {} is closed and will be erased at {} (cancel with `latchkey user restore`)",
            user.username,
            crate::output::rfc3339(due)
        ),
        None => format!("erased user {} ({})", user.username, user.id),
    };
    done(
        reference.out.json,
        &serde_json::to_value(&done_).unwrap_or_default(),
        &text,
    );
    Ok(())
}

fn seal(ctx: &Context<'_>, slug: &str, json: bool) -> Result<(), CliError> {
    let tenant = ctx.tenant(slug)?;
    let mut sealed = 0;
    loop {
        let n = ctx.db.seal_plain_users(&tenant.id, 500)?;
        sealed += n;
        if n == 0 {
            break;
        }
    }
    done(
        json,
        &json!({"tenant": tenant.slug, "sealed": sealed}),
        &format!("sealed {sealed} users of {}", tenant.slug),
    );
    Ok(())
}

fn restore(ctx: &Context<'_>, reference: &UserRef) -> Result<(), CliError> {
    let tenant = ctx.tenant(reference.tenant.slug())?;
    let user = find(ctx, &tenant, &reference.user)?;
    let user = ctx.db.cancel_deletion(&tenant.id, ctx.actor(), &user.id)?;
    emit(reference.out.json, &user_json(&user));
    Ok(())
}

fn set_password(ctx: &Context<'_>, reference: &UserRef) -> Result<(), CliError> {
    let tenant = ctx.tenant(reference.tenant.slug())?;
    let user = find(ctx, &tenant, &reference.user)?;
    let hash = password_hash(&tenant, &read_password()?, &user.username, user.email.as_deref())?;
    let user = ctx
        .db
        .set_password_hash(&tenant.id, ctx.actor(), &user.id, &hash)?;
    emit(reference.out.json, &user_json(&user));
    Ok(())
}

/// The user's second factors and recovery codes left.
fn mfa_list(ctx: &Context<'_>, reference: &MfaUser) -> Result<(), CliError> {
    let tenant = ctx.tenant(reference.tenant.slug())?;
    let user = find(ctx, &tenant, &reference.username)?;
    let totp = ctx.db.totp(&tenant.id, &user.id)?;
    let factors = json!({
        "user": user.username,
        "policy": tenant.policy.mfa_mode(),
        "totp": totp.map(|factor| json!({
            "confirmed_at": factor.confirmed_at.map(rfc3339),
            "last_used_at": factor.last_used_at.map(rfc3339),
        })),
        "recovery_codes_left": ctx.db.recovery_codes_left(&tenant.id, &user.id)?,
    });
    emit(reference.out.json, &factors);
    Ok(())
}

/// One factor: `totp`, or a passkey by id; an unknown one is an error.
fn mfa_remove(ctx: &Context<'_>, reference: &MfaUser, factor: &str) -> Result<(), CliError> {
    let tenant = ctx.tenant(reference.tenant.slug())?;
    let user = find(ctx, &tenant, &reference.username)?;
    let removed = if factor == "totp" {
        ctx.db.remove_totp(&tenant.id, ctx.actor(), &user.id)?
    } else {
        ctx.db.remove_passkey(&tenant.id, ctx.actor(), &user.id, factor)?
    };
    if !removed {
        return Err(CliError::NotInTenant {
            what: "second factor",
            name: factor.to_owned(),
            tenant: tenant.slug,
        });
    }
    emit(
        reference.out.json,
        &json!({"user": user.username, "removed": factor}),
    );
    Ok(())
}

/// For a user who lost their device: every second factor and recovery code goes, and their
/// sessions end.
fn mfa_reset(ctx: &Context<'_>, reference: &MfaUser) -> Result<(), CliError> {
    let tenant = ctx.tenant(reference.tenant.slug())?;
    let user = find(ctx, &tenant, &reference.username)?;
    let removed = ctx.db.reset_mfa(&tenant.id, ctx.actor(), &user.id)?;
    emit(
        reference.out.json,
        &json!({"user": user.username, "removed": removed, "sessions": "ended"}),
    );
    Ok(())
}
