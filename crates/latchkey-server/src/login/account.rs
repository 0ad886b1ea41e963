//! The account page: profile, password change, and the sessions the user has.

use super::throttle::{Gate, Throttle};
use super::{
    AppError, Strings, audit, checked_return_to, client_ip, csrf, failure, hashing_error, html,
    new_password_problem, redirect_into_session, redirect_signed_out, see_other, session, signed_in, strings,
};
use crate::state::AppState;
use crate::web::blocking::Blocking;
use crate::web::form::FormParams;
use crate::web::tenant::InTenant;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use latchkey_core::{NewAuditEvent, Tenant, User};
use latchkey_session::SessionId;
use latchkey_store::{ClientRepo, OAuthRepo};
use serde_json::json;

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage<'a> {
    s: &'a Strings,
    slug: &'a str,
    tenant_name: &'a str,
    logo_url: Option<&'a str>,
    csrf: String,
    display: &'a str,
    username: &'a str,
    display_name: &'a str,
    email: &'a str,
    email_verified: bool,
    e: &'static crate::web::i18n::EmailStrings,
    /// Where to continue after a required password change.
    return_to: &'a str,
    sessions: Vec<SessionRow>,
    apps: Vec<AppRow>,
    passkey_allowed: bool,
    passkeys: Vec<PasskeyView>,
    /// The tenant lets users set up an authenticator app.
    totp_allowed: bool,
    totp_on: bool,
    recovery_left: String,
    /// The tenant's user attributes with this user's values.
    attributes: Vec<super::attributes::AttributeField>,
    error: Option<String>,
    notice: Option<&'a str>,
    /// Deleting the account: the strings, what it does under the tenant's policy, and whether a
    /// password (else a passkey) confirms it.
    l: &'a crate::web::i18n_lifecycle::LifecycleStrings,
    delete_intro: String,
    has_password: bool,
    /// Downloading one's data and one's recent security activity.
    p: &'a crate::web::i18n_privacy::PrivacyStrings,
    activity: Vec<super::privacy::ActivityRow>,
}

/// A passkey as the account page lists it.
struct PasskeyView {
    id: String,
    name: String,
    created: String,
    last_used: Option<String>,
}

/// An application the user allowed, with what it may do.
struct AppRow {
    client_id: String,
    name: String,
    scopes: String,
}

struct SessionRow {
    key: String,
    browser: String,
    ip: String,
    last_used: String,
    current: bool,
}

pub(super) fn when(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms / 1000)
        .ok()
        .and_then(|t| {
            t.format(&time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute] UTC"
            ))
            .ok()
        })
        .unwrap_or_default()
}

fn to_login(tenant: &Tenant) -> HttpResponse {
    let account = crate::web::urls::account(&tenant.slug, None);
    see_other(&crate::web::urls::login(
        &tenant.slug,
        Some(&format!("return_to={account}")),
    ))
}

pub(super) struct View<'a> {
    id: &'a SessionId,
    user: &'a User,
    status: StatusCode,
    return_to: Option<String>,
    error: Option<String>,
    notice: Option<&'a str>,
}

impl<'a> View<'a> {
    pub(super) fn error(id: &'a SessionId, user: &'a User, status: StatusCode, error: String) -> Self {
        Self {
            id,
            user,
            status,
            return_to: None,
            error: Some(error),
            notice: None,
        }
    }
}

pub(super) async fn render(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    v: View<'_>,
) -> Result<HttpResponse, AppError> {
    let s = strings(req);
    let sessions = session_rows(state, tenant, &v).await?;
    let apps = app_rows(state, s, tenant, v.user).await?;
    let (totp_on, left, passkeys) = factor_rows(state, tenant, v.user).await?;
    let attributes = super::attributes::fields(state, tenant, v.user).await?;
    let activity = super::privacy::activity_rows(state, req, tenant, v.user).await?;
    let display = v
        .user
        .display_name
        .clone()
        .unwrap_or_else(|| v.user.username.clone());
    let page = AccountPage {
        s: strings(req),
        slug: &tenant.slug,
        tenant_name: &tenant.display_name,
        logo_url: super::logo(tenant),
        csrf: csrf::token_for(v.id.cookie_value()),
        display: &display,
        username: &v.user.username,
        display_name: v.user.display_name.as_deref().unwrap_or_default(),
        email: v.user.email.as_deref().unwrap_or_default(),
        email_verified: v.user.email_verified,
        e: crate::web::i18n::email(s),
        return_to: v.return_to.as_deref().unwrap_or_default(),
        sessions,
        apps,
        passkey_allowed: tenant.policy.allows(latchkey_core::MfaMethod::Passkey),
        passkeys,
        totp_allowed: tenant.policy.allows(latchkey_core::MfaMethod::Totp),
        totp_on,
        recovery_left: s.recovery_left.replace("{n}", &left.to_string()),
        attributes,
        error: v.error,
        notice: v.notice,
        l: crate::web::i18n_lifecycle::of(s),
        delete_intro: delete_intro(s, tenant),
        has_password: v.user.password_hash.is_some(),
        p: crate::web::i18n_privacy::of(s),
        activity,
    };
    let mut res = html(state, req, v.status, page.render())?;
    // During a required password change the form's answer continues an interaction.
    if let Some(r) = v.return_to.as_deref() {
        super::allow_continuation(state, req, tenant, &mut res, r).await?;
    }
    Ok(res)
}

/// What deleting the account does under the tenant's policy, in the reader's language.
fn delete_intro(s: &Strings, tenant: &Tenant) -> String {
    let l = crate::web::i18n_lifecycle::of(s);
    match tenant.policy.accounts.deletion_grace_days {
        0 => l.delete_now.to_owned(),
        days => l.delete_grace.replace("{days}", &days.to_string()),
    }
}

/// The user's live sessions, this one marked.
async fn session_rows(state: &AppState, tenant: &Tenant, v: &View<'_>) -> Result<Vec<SessionRow>, AppError> {
    let mine = v.id.storage_key();
    Ok(state
        .ephemeral
        .list_user_sessions(&tenant.id, &v.user.id)
        .await?
        .into_iter()
        .map(|(key, session)| SessionRow {
            current: key == mine,
            key,
            browser: session.user_agent.unwrap_or_else(|| "?".into()),
            ip: session.ip.unwrap_or_else(|| "?".into()),
            last_used: when(session.last_seen),
        })
        .collect())
}

/// The applications the user consented to, with their scopes in plain words.
async fn app_rows(
    state: &AppState,
    strings: &Strings,
    tenant: &Tenant,
    user: &User,
) -> Result<Vec<AppRow>, AppError> {
    let (tid, uid) = (tenant.id.clone(), user.id.clone());
    let consents = state
        .store(move |db| {
            let mut rows = Vec::new();
            for consent in db.consents(&tid, &uid)? {
                let name = db
                    .client(&tid, &consent.client_id)?
                    .map_or_else(|| consent.client_id.to_string(), |client| client.name);
                rows.push((consent.client_id.to_string(), name, consent.scope));
            }
            Ok::<_, latchkey_store::StoreError>(rows)
        })
        .await?;
    Ok(consents
        .into_iter()
        .map(|(client_id, name, scope)| AppRow {
            client_id,
            name,
            scopes: scope
                .split(' ')
                .map(|sc| crate::web::i18n::describe(strings, sc))
                .collect::<Vec<_>>()
                .join(" · "),
        })
        .collect())
}

/// Whether an authenticator app is on, the recovery codes left, and the passkeys.
async fn factor_rows(
    state: &AppState,
    tenant: &Tenant,
    user: &User,
) -> Result<(bool, usize, Vec<PasskeyView>), AppError> {
    let (tid, uid) = (tenant.id.clone(), user.id.clone());
    let (totp_on, left, keys) = state
        .store(move |db| {
            use latchkey_store::MfaRepo;
            let on = db.totp(&tid, &uid)?.is_some_and(|f| f.confirmed_at.is_some());
            Ok::<_, latchkey_store::StoreError>((
                on,
                db.recovery_codes_left(&tid, &uid)?,
                db.passkeys(&tid, &uid)?,
            ))
        })
        .await?;
    let passkeys = keys
        .into_iter()
        .map(|k| PasskeyView {
            id: k.id,
            name: k.name,
            created: when(k.created_at),
            last_used: k.last_used_at.map(when),
        })
        .collect();
    Ok((totp_on, left, passkeys))
}

pub(super) async fn account(
    req: HttpRequest,
    InTenant(tenant): InTenant,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let Some((id, session, user)) = signed_in(&state, &req, &tenant).await? else {
        return Ok(to_login(&tenant));
    };
    let q = req.query_string();
    let s = strings(&req);
    let notice = if session.must_change_password {
        Some(s.password_expired)
    } else if q.contains("mfa=required") {
        Some(s.cannot_remove_last)
    } else if q.contains("changed=1") {
        Some(s.password_changed)
    } else if q.contains("verified=1") {
        Some(crate::web::i18n::email(s).verified_done)
    } else if q.contains("verify_sent=1") {
        Some(crate::web::i18n::email(s).resent)
    } else {
        q.contains("saved=1").then_some(s.profile_saved)
    };
    let view = View {
        id: &id,
        user: &user,
        status: StatusCode::OK,
        return_to: checked_return_to(&tenant, super::query_param(&req, "return_to").as_deref()),
        error: None,
        notice,
    };
    render(&state, &req, &tenant, view).await
}

/// An account form's preamble: the tenant, the signed-in session and user, and the CSRF check
/// bound to that session. `Ok(Err(redirect))` sends someone not signed in to the sign-in page.
pub(super) async fn account_form(
    req: &HttpRequest,
    tenant: Tenant,
    state: &AppState,
    form: &FormParams,
) -> Result<Result<(Tenant, SessionId, User), HttpResponse>, AppError> {
    let Some((id, _, user)) = signed_in(state, req, &tenant).await? else {
        return Ok(Err(to_login(&tenant)));
    };
    if !csrf::check(state, req, Some(id.cookie_value()), form.get("csrf")) {
        return Err(AppError::new(
            crate::web::errors::Kind::Forbidden,
            strings(req).form_expired,
        ));
    }
    Ok(Ok((tenant, id, user)))
}

/// Changes the password (the current one is required, the policy applies), signs out every
/// other session, and continues under a new session id: to `return_to` when a required
/// change interrupted something, else back to the account page.
pub(super) async fn change_password(
    req: HttpRequest,
    InTenant(t): InTenant,
    state: web::Data<AppState>,
    form: FormParams,
) -> Result<HttpResponse, AppError> {
    let (t, id, user) = match account_form(&req, t, &state, &form).await? {
        Ok(found) => found,
        Err(to_login) => return Ok(to_login),
    };
    let s = strings(&req);
    let current = form.get("current_password").unwrap_or_default().to_owned();
    let new = form.get("new_password").unwrap_or_default().to_owned();
    let return_to = checked_return_to(&t, form.get("return_to"));
    let fail = |status, error: String| View {
        return_to: return_to.clone(),
        ..View::error(&id, &user, status, error)
    };
    let ip = client_ip(&req);
    let throttle = Throttle {
        store: &*state.ephemeral,
        tenant: &t,
    };
    let account = format!("id:{}", user.id);
    if let Gate::Wait(left) = throttle.check(&account, &ip).await? {
        let msg = s.throttled.replace("{secs}", &left.as_secs().max(1).to_string());
        let res = render(&state, &req, &t, fail(StatusCode::TOO_MANY_REQUESTS, msg)).await?;
        return Ok(super::retry_after(res, left.as_secs()));
    }
    let verdict = state
        .hasher
        .verify(current, user.password_hash.clone())
        .await
        .map_err(hashing_error)?;
    let who = format!("user:{}", user.id);
    if !verdict.matches {
        throttle.failed(&account, &ip).await?;
        let event = NewAuditEvent {
            actor: who.clone(),
            ..failure("user.password_change", who, "wrong_current_password")
        };
        audit(&state, &t, event).await?;
        let view = fail(StatusCode::BAD_REQUEST, s.wrong_current_password.into());
        return render(&state, &req, &t, view).await;
    }
    throttle.release(&account, &ip).await?;
    if let Some(problem) = new_password_problem(&state, s, &t, &user, &new).await? {
        return render(&state, &req, &t, fail(StatusCode::UNPROCESSABLE_ENTITY, problem)).await;
    }
    let hash = state.hasher.hash(new).await.map_err(hashing_error)?;
    let (tid, uid) = (t.id.clone(), user.id.clone());
    state
        .store(move |db| latchkey_store::UserRepo::set_password_hash(db, &tid, &who, &uid, &hash))
        .await?;
    state.ephemeral.delete_user_sessions(&t.id, &user.id).await?;
    let (new_id, _) = session::start(&state, &req, &t, &user.id, vec!["pwd".into()], None).await?;
    let next = return_to.unwrap_or_else(|| crate::web::urls::account(&t.slug, Some("changed=1")));
    redirect_into_session(&state, &t, &next, &new_id)
}

/// Saves the display name and email (both optional; the email stays unique in the tenant).
pub(super) async fn update_profile(
    req: HttpRequest,
    InTenant(tenant): InTenant,
    state: web::Data<AppState>,
    form: FormParams,
) -> Result<HttpResponse, AppError> {
    let (tenant, id, user) = match account_form(&req, tenant, &state, &form).await? {
        Ok(found) => found,
        Err(to_login) => return Ok(to_login),
    };
    let field = |name: &str| {
        form.get(name)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let email = field("email");
    // An address in a domain a SAML connection claims belongs to that IdP: nobody may put it on
    // their own account (where a trusted connection could later link to it).
    if let Some(e) = email.as_deref().filter(|e| Some(*e) != user.email.as_deref())
        && crate::flow::realm::for_email(&state, &tenant, e).await?.is_some()
    {
        let message = "Addresses in this domain are managed by your organisation's sign-in.".to_owned();
        return render(
            &state,
            &req,
            &tenant,
            View::error(&id, &user, StatusCode::UNPROCESSABLE_ENTITY, message),
        )
        .await;
    }
    let change = latchkey_store::UserUpdate {
        email: Some(email),
        display_name: Some(field("display_name")),
        if_version: None,
    };
    let (db, tid, uid, actor) = (
        state.db.clone(),
        tenant.id.clone(),
        user.id.clone(),
        format!("user:{}", user.id),
    );
    let who = actor.clone();
    let outcome = web::block(move || latchkey_store::UserRepo::update_user(&db, &tid, &actor, &uid, &change))
        .await
        .map_err(|e| AppError::internal("blocking task", e))?;
    let (status, message) = match outcome {
        Ok(after) => {
            // A new address is unverified until its owner follows the link mailed to it.
            let mut query = "saved=1";
            if after.email.is_some() && after.email != user.email {
                query = match super::verify::send_link(&state, &req, &tenant, &after, &who).await? {
                    super::verify::Sent::Queued => "saved=1&verify_sent=1",
                    _ => "saved=1",
                };
            }
            return Ok(see_other(&crate::web::urls::account(&tenant.slug, Some(query))));
        }
        Err(latchkey_store::StoreError::Invalid(e)) => (StatusCode::UNPROCESSABLE_ENTITY, e.message),
        Err(latchkey_store::StoreError::Conflict(m)) => (StatusCode::CONFLICT, m),
        Err(e) => return Err(e.into()),
    };
    render(&state, &req, &tenant, View::error(&id, &user, status, message)).await
}

/// Signs out one of the user's other sessions, named by its storage key.
pub(super) async fn revoke_session(
    req: HttpRequest,
    InTenant(tenant): InTenant,
    state: web::Data<AppState>,
    form: FormParams,
) -> Result<HttpResponse, AppError> {
    let (tenant, _, user) = match account_form(&req, tenant, &state, &form).await? {
        Ok(found) => found,
        Err(to_login) => return Ok(to_login),
    };
    let key = form.get("session").unwrap_or_default();
    // Only a session of this user: the key must be among the user's own.
    let owned = state
        .ephemeral
        .list_user_sessions(&tenant.id, &user.id)
        .await?
        .into_iter()
        .any(|(k, _)| k == key);
    if owned && state.ephemeral.delete_session_by_key(&tenant.id, key).await? {
        crate::flow::grants::revoke_grants(
            &state,
            &tenant,
            crate::flow::grants::Owned::Session(key.to_owned()),
            "session_revoked",
        )
        .await?;
        let who = format!("user:{}", user.id);
        let event = NewAuditEvent::success(
            &who,
            "session.revoke",
            who.clone(),
            json!({"session": &key[..16]}),
        );
        audit(&state, &tenant, event).await?;
    }
    Ok(see_other(&crate::web::urls::account(&tenant.slug, None)))
}

/// "Sign out everywhere": every session of the user, this one included.
pub(super) async fn revoke_all_sessions(
    req: HttpRequest,
    InTenant(tenant): InTenant,
    state: web::Data<AppState>,
    form: FormParams,
) -> Result<HttpResponse, AppError> {
    let (tenant, _, user) = match account_form(&req, tenant, &state, &form).await? {
        Ok(found) => found,
        Err(to_login) => return Ok(to_login),
    };
    let n = state.ephemeral.delete_user_sessions(&tenant.id, &user.id).await?;
    // Everywhere includes the applications' refresh tokens, offline ones too.
    crate::flow::grants::revoke_grants(
        &state,
        &tenant,
        crate::flow::grants::Owned::User(user.id.clone()),
        "signed_out_everywhere",
    )
    .await?;
    let who = format!("user:{}", user.id);
    audit(
        &state,
        &tenant,
        NewAuditEvent::success(&who, "session.revoke_all", who.clone(), json!({"sessions": n})),
    )
    .await?;
    redirect_signed_out(&state, &tenant, "signed_out")
}

/// Withdraws the consent given to an application; its refresh tokens die with it.
pub(super) async fn revoke_app(
    req: HttpRequest,
    InTenant(tenant): InTenant,
    state: web::Data<AppState>,
    form: FormParams,
) -> Result<HttpResponse, AppError> {
    let (tenant, _, user) = match account_form(&req, tenant, &state, &form).await? {
        Ok(found) => found,
        Err(to_login) => return Ok(to_login),
    };
    let client = latchkey_core::ClientId(form.get("client_id").unwrap_or_default().to_owned());
    let (tid, uid) = (tenant.id.clone(), user.id.clone());
    if state
        .store(move |db| db.revoke_consent(&tid, &uid, &client))
        .await?
    {
        state.metrics.oauth("consent", "revoke", "ok");
    }
    Ok(see_other(&crate::web::urls::account(&tenant.slug, None)))
}
