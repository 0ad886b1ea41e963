//! Sign-in, sign-out, the account page and password reset: server-rendered (askama,
//! auto-escaped), usable without JavaScript. Unknown users and wrong passwords get the same
//! page, status and hashing work; attempts are throttled per account and per address; every
//! change is audited. `interaction` is the handoff other flows (OIDC) use to send a user here
//! and get them back signed in.

mod account;
pub(crate) mod csrf;
pub(crate) mod factor;
pub(crate) mod i18n;
pub mod interaction;
mod passkey;
mod reset;
pub mod session;
mod signin;
mod throttle;

use crate::errors::{AppError, blocking};
use crate::state::AppState;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
pub(crate) use i18n::Strings;
use latchkey_core::{NewAuditEvent, Outcome, Tenant, User, UserStatus};
use latchkey_mfa::PasswordError;
use latchkey_store::{AuditRepo, UserRepo};
use serde_json::json;

/// The sign-in and account routes, relative to the tenant scope `/t/{tenant}`.
pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/login", web::get().to(signin::login_page))
        .route("/login", web::post().to(signin::login_submit))
        .route("/logout", web::post().to(signin::logout))
        .route("/account", web::get().to(account::account))
        .route("/account/password", web::post().to(account::change_password))
        .route("/account/profile", web::post().to(account::update_profile))
        .route(
            "/account/sessions/revoke",
            web::post().to(account::revoke_session),
        )
        .route(
            "/account/sessions/revoke-all",
            web::post().to(account::revoke_all_sessions),
        )
        .route("/account/apps/revoke", web::post().to(account::revoke_app))
        .route(
            "/account/passkeys/options",
            web::post().to(passkey::register_options),
        )
        .route("/account/passkeys", web::post().to(passkey::register_finish))
        .route("/account/passkeys/rename", web::post().to(passkey::rename))
        .route("/account/passkeys/remove", web::post().to(passkey::remove))
        .route("/login/passkey/options", web::post().to(passkey::signin_options))
        .route("/login/passkey", web::post().to(passkey::signin_finish))
        .route(
            "/login/second-factor/passkey/options",
            web::post().to(passkey::factor_options),
        )
        .route(
            "/login/second-factor/passkey",
            web::post().to(passkey::factor_finish),
        )
        .route("/login/second-factor", web::get().to(factor::second_factor_page))
        .route(
            "/login/second-factor",
            web::post().to(factor::second_factor_submit),
        )
        .route(
            "/account/authenticator",
            web::get().to(factor::authenticator_page),
        )
        .route(
            "/account/authenticator",
            web::post().to(factor::authenticator_submit),
        )
        .route(
            "/account/authenticator/remove",
            web::post().to(factor::remove_authenticator),
        )
        .route(
            "/account/recovery-codes",
            web::post().to(factor::regenerate_codes),
        )
        .route("/password/forgot", web::get().to(reset::forgot_page))
        .route("/password/forgot", web::post().to(reset::forgot_submit))
        .route("/password/reset", web::get().to(reset::reset_page))
        .route("/password/reset", web::post().to(reset::reset_submit))
        .route("/brand.css", web::get().to(brand_css));
}

const LOCALE_COOKIE: &str = "lk-locale";

pub(crate) fn query_param(req: &HttpRequest, name: &str) -> Option<String> {
    web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
        .ok()
        .and_then(|q| q.get(name).cloned())
}

/// The reader's strings: `ui_locales` of the request (or of the pending interaction, `hint`),
/// else the language chosen earlier (a cookie), else `Accept-Language`.
pub(crate) fn strings_with(req: &HttpRequest, hint: Option<&str>) -> &'static Strings {
    let chosen = query_param(req, "ui_locales")
        .or_else(|| hint.map(str::to_owned))
        .or_else(|| req.cookie(LOCALE_COOKIE).map(|c| c.value().to_owned()));
    let accept = req
        .headers()
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    i18n::pick(chosen.as_deref(), accept)
}

fn strings(req: &HttpRequest) -> &'static Strings {
    strings_with(req, None)
}

/// An HTML page that is never cached. A language picked by `ui_locales` is remembered in a
/// cookie, so the forms that follow (POSTs without the parameter) keep it.
pub(crate) fn html(
    state: &AppState,
    req: &HttpRequest,
    status: StatusCode,
    body: Result<String, askama::Error>,
) -> Result<HttpResponse, AppError> {
    let body = body.map_err(|e| AppError::internal("template", e))?;
    let mut res = HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body);
    if let Some(lang) = query_param(req, "ui_locales").and_then(|l| i18n::supported(&l)) {
        let mut c = session::cookie(state, LOCALE_COOKIE.into(), lang.lang.into());
        c.set_max_age(actix_web::cookie::time::Duration::days(365));
        res.add_cookie(&c).map_err(|e| AppError::internal("cookie", e))?;
    }
    Ok(res)
}

pub(crate) fn logo(t: &Tenant) -> Option<&str> {
    t.policy
        .branding
        .logo_url
        .as_deref()
        .filter(|u| u.starts_with("https://"))
}

/// When `return_to` continues a pending interaction that ends at a client, lets the page's
/// forms lead there (browsers check `form-action` on every redirect of a form submission).
pub(crate) async fn allow_continuation(
    state: &AppState,
    req: &HttpRequest,
    t: &Tenant,
    res: &mut HttpResponse,
    return_to: &str,
) -> Result<(), AppError> {
    let Some(id) = return_to.split("interaction=").nth(1) else {
        return Ok(());
    };
    let id = id.split('&').next().unwrap_or_default();
    let binding = interaction::binding(state, req, t, id);
    if let Some(dest) = interaction::load(state, t, id, binding.as_deref())
        .await?
        .and_then(|i| i.continues_to)
    {
        crate::observe::allow_form_action(res, &dest);
    }
    Ok(())
}

/// Only a path inside this tenant may be a destination (no open redirect, O15).
fn safe_return_to(t: &Tenant, value: Option<&str>) -> String {
    checked_return_to(t, value).unwrap_or_else(|| format!("/t/{}/account", t.slug))
}

fn checked_return_to(t: &Tenant, value: Option<&str>) -> Option<String> {
    let prefix = format!("/t/{}/", t.slug);
    value
        .filter(|v| {
            v.starts_with(&prefix)
                && !v.contains("//")
                && !v.contains('\\')
                && !v.contains("/../")
                && !v.chars().any(char::is_control)
                && v.len() < 1024
        })
        .map(str::to_owned)
}

/// A full hashing queue is a 503 with `Retry-After`, not a failure.
fn hashing_error(e: PasswordError) -> AppError {
    match e {
        PasswordError::Busy => AppError::unavailable("password service"),
        other => AppError::internal("password hashing", other),
    }
}

pub(crate) fn client_ip(req: &HttpRequest) -> String {
    crate::net::client_addr(req).map_or_else(|| "unknown".into(), |a| a.to_string())
}

/// The pre-session value binding a signed-out form's CSRF token, made on first view.
fn presession(
    state: &AppState,
    req: &HttpRequest,
    t: &Tenant,
) -> (String, Option<actix_web::cookie::Cookie<'static>>) {
    let name = csrf::presession_cookie_name(state, t);
    if let Some(c) = req.cookie(&name).filter(|c| c.value().len() == 43) {
        (c.value().to_owned(), None)
    } else {
        let v = latchkey_core::random_token(&*state.rng, 32);
        (v.clone(), Some(session::cookie(state, name, v)))
    }
}

/// The CSRF check of a signed-out form (sign-in, forgotten password).
fn presession_csrf_ok(state: &AppState, req: &HttpRequest, t: &Tenant, presented: Option<&str>) -> bool {
    let binding = req
        .cookie(&csrf::presession_cookie_name(state, t))
        .map(|c| c.value().to_owned());
    csrf::check(state, req, binding.as_deref(), presented)
}

/// Renders a signed-out page whose form token is bound to the pre-session cookie.
fn with_presession<F>(
    state: &AppState,
    req: &HttpRequest,
    t: &Tenant,
    status: StatusCode,
    render: F,
) -> Result<HttpResponse, AppError>
where
    F: FnOnce(String) -> Result<String, askama::Error>,
{
    let (binding, new_cookie) = presession(state, req, t);
    let mut res = html(state, req, status, render(csrf::token_for(&binding)))?;
    if let Some(c) = new_cookie {
        res.add_cookie(&c).map_err(|e| AppError::internal("cookie", e))?;
    }
    Ok(res)
}

/// Adds `Retry-After` to a throttled answer.
fn retry_after(mut res: HttpResponse, secs: u64) -> HttpResponse {
    res.headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from(secs.max(1)));
    res
}

pub(crate) async fn audit(state: &AppState, t: &Tenant, event: NewAuditEvent) -> Result<(), AppError> {
    let (db, tid) = (state.db.clone(), t.id.clone());
    blocking(move || db.append_audit(&tid, event)).await.map(drop)
}

fn failure(action: &str, target: String, reason: &str) -> NewAuditEvent {
    NewAuditEvent {
        actor: "anonymous".into(),
        action: action.into(),
        target,
        outcome: Outcome::Failure,
        details: json!({"reason": reason}),
    }
}

/// The user a sign-in name means: a username, else an email address.
async fn find_user(state: &AppState, t: &Tenant, name: &str) -> Result<Option<User>, AppError> {
    let (db, tid, name) = (state.db.clone(), t.id.clone(), name.to_owned());
    blocking(move || match db.user_by_username(&tid, &name)? {
        Some(u) => Ok(Some(u)),
        None if name.contains('@') => db.user_by_email(&tid, &name),
        None => Ok(None),
    })
    .await
}

/// Why `new` can't be the user's next password (the tenant's policy, or reuse of the current or
/// a remembered password), in the reader's language; `None` when it can.
async fn new_password_problem(
    state: &AppState,
    s: &Strings,
    t: &Tenant,
    user: &User,
    new: &str,
) -> Result<Option<String>, AppError> {
    let ids: Vec<&str> = std::iter::once(user.username.as_str())
        .chain(user.email.as_deref())
        .collect();
    match latchkey_mfa::check_password_policy(new, &t.policy.password, &ids) {
        Err(PasswordError::Policy(v)) => return Ok(Some(i18n::policy_message(s, &v))),
        Err(e) => return Err(hashing_error(e)),
        Ok(()) => {}
    }
    let (db, tid, uid, n) = (
        state.db.clone(),
        t.id.clone(),
        user.id.clone(),
        t.policy.password.history,
    );
    let mut previous = blocking(move || db.password_history(&tid, &uid, n)).await?;
    previous.extend(user.password_hash.clone());
    for old in previous {
        let reused = state
            .hasher
            .verify(new.to_owned(), Some(old))
            .await
            .map_err(hashing_error)?;
        if reused.matches {
            return Ok(Some(s.password_reused.into()));
        }
    }
    Ok(None)
}

pub(crate) fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location.to_owned()))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

/// A 200 JSON answer for `/assets/passkey.js` (which navigates to its `redirect` itself) that
/// carries the cookies the equivalent 303 `from` sets.
pub(crate) fn json_redirect(from: &HttpResponse, body: &serde_json::Value) -> Result<HttpResponse, AppError> {
    let mut out = HttpResponse::Ok().json(body);
    for c in from.cookies() {
        out.add_cookie(&c.into_owned())
            .map_err(|e| AppError::internal("cookie", e))?;
    }
    Ok(out)
}

/// A 303 to the sign-in page with a notice that deletes the session cookie.
fn redirect_signed_out(state: &AppState, t: &Tenant, notice: &str) -> Result<HttpResponse, AppError> {
    let mut res = see_other(&format!("/t/{}/login?{notice}=1", t.slug));
    res.add_cookie(&session::removal(state, session::cookie_name(state, t)))
        .map_err(|e| AppError::internal("cookie", e))?;
    Ok(res)
}

/// A 303 to `location` that hands the browser its (new) session cookie.
pub(crate) fn redirect_into_session(
    state: &AppState,
    t: &Tenant,
    location: &str,
    id: &latchkey_session::SessionId,
) -> Result<HttpResponse, AppError> {
    let mut res = see_other(location);
    res.add_cookie(&session::cookie(
        state,
        session::cookie_name(state, t),
        id.cookie_value().to_owned(),
    ))
    .map_err(|e| AppError::internal("cookie", e))?;
    Ok(res)
}

/// Sets `cookie` on `res` when there is one.
pub(crate) fn add_cookie(
    res: &mut HttpResponse,
    cookie: Option<actix_web::cookie::Cookie<'static>>,
) -> Result<(), AppError> {
    match cookie {
        Some(c) => res.add_cookie(&c).map_err(|e| AppError::internal("cookie", e)),
        None => Ok(()),
    }
}

/// The user may sign in and the session is not older than an administrator's reset.
pub(crate) fn session_valid_for(s: &latchkey_core::Session, u: &User) -> bool {
    u.status == UserStatus::Active && u.sessions_not_before.is_none_or(|nb| s.created_at >= nb)
}

/// The signed-in user of this tenant, or `None` (expired, signed out, deleted or disabled).
pub(crate) async fn signed_in(
    state: &AppState,
    req: &HttpRequest,
    t: &Tenant,
) -> Result<Option<(latchkey_session::SessionId, latchkey_core::Session, User)>, AppError> {
    let Some((id, s)) = session::current(state, req, t).await? else {
        return Ok(None);
    };
    // Half signed in: the second factor is still due.
    if s.factor_due.is_some() {
        return Ok(None);
    }
    let (db, tid, uid) = (state.db.clone(), t.id.clone(), s.user_id.clone());
    match blocking(move || db.user(&tid, &uid)).await? {
        Some(u) if session_valid_for(&s, &u) => Ok(Some((id, s, u))),
        _ => {
            state.ephemeral.delete_session(&t.id, &id).await?;
            Ok(None)
        }
    }
}

pub(crate) async fn passkey_js() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(include_str!("../../assets/passkey.js"))
}

/// The tenant's colours as a stylesheet (inline styles are forbidden by the CSP).
async fn brand_css(path: web::Path<String>, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let t = crate::routes::tenant(&state, &path).await?;
    let color = t
        .policy
        .branding
        .primary_color
        .as_deref()
        .filter(|c| c.len() == 7 && c.starts_with('#') && c[1..].bytes().all(|b| b.is_ascii_hexdigit()));
    let body = color.map_or_else(String::new, |c| format!(":root {{ --accent: {c}; }}\n"));
    Ok(HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .body(body))
}
