//! Sign-in, sign-out and the account page: server-rendered (askama, auto-escaped), usable
//! without JavaScript. Unknown users and wrong passwords get the same page, status and hashing
//! work; attempts are throttled per account and per address; every change is audited.

mod csrf;
mod i18n;
pub mod session;
mod throttle;

use crate::errors::{AppError, blocking};
use crate::form::FormParams;
use crate::net::ClientInfo;
use crate::routes::tenant;
use crate::state::AppState;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use askama::Template;
use i18n::Strings;
use latchkey_core::{NewAuditEvent, Outcome, Tenant, User, UserStatus};
use latchkey_mfa::PasswordError;
use latchkey_store::{AuditRepo, UserRepo};
use serde_json::json;
use throttle::{Gate, Throttle};

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/t/{tenant}/login", web::get().to(login_page))
        .route("/t/{tenant}/login", web::post().to(login_submit))
        .route("/t/{tenant}/logout", web::post().to(logout))
        .route("/t/{tenant}/account", web::get().to(account))
        .route("/t/{tenant}/account/password", web::post().to(change_password))
        .route("/t/{tenant}/account/profile", web::post().to(update_profile))
        .route(
            "/t/{tenant}/account/sessions/revoke",
            web::post().to(revoke_session),
        )
        .route(
            "/t/{tenant}/account/sessions/revoke-all",
            web::post().to(revoke_all_sessions),
        )
        .route("/t/{tenant}/brand.css", web::get().to(brand_css));
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    s: &'a Strings,
    slug: &'a str,
    tenant_name: &'a str,
    logo_url: Option<&'a str>,
    csrf: String,
    return_to: &'a str,
    username: &'a str,
    error: Option<String>,
    notice: Option<&'a str>,
}

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
    sessions: Vec<SessionRow>,
    error: Option<String>,
    notice: Option<&'a str>,
}

struct SessionRow {
    key: String,
    browser: String,
    ip: String,
    last_used: String,
    current: bool,
}

fn strings(req: &HttpRequest) -> &'static Strings {
    let ui = web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
        .ok()
        .and_then(|q| q.get("ui_locales").cloned());
    let accept = req
        .headers()
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    i18n::pick(ui.as_deref(), accept)
}

fn html(status: StatusCode, body: Result<String, askama::Error>) -> Result<HttpResponse, AppError> {
    let body = body.map_err(|e| AppError::internal("template", e))?;
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body))
}

fn logo(t: &Tenant) -> Option<&str> {
    t.policy
        .branding
        .logo_url
        .as_deref()
        .filter(|u| u.starts_with("https://"))
}

/// Only a path inside this tenant may be a destination (no open redirect, O15).
fn safe_return_to(t: &Tenant, value: Option<&str>) -> String {
    let prefix = format!("/t/{}/", t.slug);
    match value {
        Some(v)
            if v.starts_with(&prefix)
                && !v.contains("//")
                && !v.contains('\\')
                && !v.contains("/../")
                && v.len() < 1024 =>
        {
            v.to_owned()
        }
        _ => format!("/t/{}/account", t.slug),
    }
}

/// A full hashing queue is a 503 with `Retry-After`, not a failure.
fn hashing_error(e: PasswordError) -> AppError {
    match e {
        PasswordError::Busy => AppError::unavailable("password service"),
        other => AppError::internal("password hashing", other),
    }
}

fn client_ip(req: &HttpRequest) -> String {
    req.extensions()
        .get::<ClientInfo>()
        .map_or_else(|| "unknown".into(), |c| c.ip.to_string())
}

/// The pre-session value binding the sign-in form's CSRF token, made on first view.
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

struct Form<'a> {
    return_to: &'a str,
    username: &'a str,
    error: Option<String>,
    notice: Option<&'a str>,
}

fn render_login(
    state: &AppState,
    req: &HttpRequest,
    t: &Tenant,
    status: StatusCode,
    f: Form<'_>,
) -> Result<HttpResponse, AppError> {
    let (binding, new_cookie) = presession(state, req, t);
    let page = LoginPage {
        s: strings(req),
        slug: &t.slug,
        tenant_name: &t.display_name,
        logo_url: logo(t),
        csrf: csrf::token_for(&binding),
        return_to: f.return_to,
        username: f.username,
        error: f.error,
        notice: f.notice,
    };
    let mut res = html(status, page.render())?;
    if let Some(c) = new_cookie {
        res.add_cookie(&c).map_err(|e| AppError::internal("cookie", e))?;
    }
    Ok(res)
}

async fn login_page(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let t = tenant(&state, &path).await?;
    let q = web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string()).ok();
    let return_to = safe_return_to(
        &t,
        q.as_ref().and_then(|q| q.get("return_to")).map(String::as_str),
    );
    let notice = q
        .as_ref()
        .and_then(|q| q.get("signed_out"))
        .map(|_| strings(&req).signed_out);
    render_login(
        &state,
        &req,
        &t,
        StatusCode::OK,
        Form {
            return_to: &return_to,
            username: "",
            error: None,
            notice,
        },
    )
}

async fn audit(state: &AppState, t: &Tenant, event: NewAuditEvent) -> Result<(), AppError> {
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

async fn login_submit(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
    form: FormParams,
) -> Result<HttpResponse, AppError> {
    let t = tenant(&state, &path).await?;
    let s = strings(&req);
    let username = form.get("username").unwrap_or_default().trim();
    let password = form.get("password").unwrap_or_default();
    let return_to = safe_return_to(&t, form.get("return_to"));
    let again = |error: String| Form {
        return_to: &return_to,
        username,
        error: Some(error),
        notice: None,
    };

    let binding = req
        .cookie(&csrf::presession_cookie_name(&state, &t))
        .map(|c| c.value().to_owned());
    if !csrf::check(&state, &req, binding.as_deref(), form.get("csrf")) {
        return render_login(
            &state,
            &req,
            &t,
            StatusCode::FORBIDDEN,
            again(s.form_expired.into()),
        );
    }
    // Look the user up by username, then by email; an unknown user still costs a full hash.
    let user: Option<User> = {
        let (db, tid, name) = (state.db.clone(), t.id.clone(), username.to_owned());
        blocking(move || match db.user_by_username(&tid, &name)? {
            Some(u) => Ok(Some(u)),
            None if name.contains('@') => db.user_by_email(&tid, &name),
            None => Ok(None),
        })
        .await?
    };
    // Throttled per account (whichever name was typed) or, for unknown names, per name typed.
    let account = user
        .as_ref()
        .map_or_else(|| username.to_lowercase(), |u| format!("id:{}", u.id));
    let throttled_target = user
        .as_ref()
        .map_or_else(|| "user:unknown".to_owned(), |u| format!("user:{}", u.id));
    let ip = client_ip(&req);
    let throttle = Throttle {
        store: &*state.ephemeral,
        tenant: &t.id,
    };
    if let Gate::Wait(left) = throttle.check(&account, &ip).await? {
        audit(
            &state,
            &t,
            failure("login.throttled", throttled_target, "throttled"),
        )
        .await?;
        let mut res = render_login(
            &state,
            &req,
            &t,
            StatusCode::TOO_MANY_REQUESTS,
            again(s.throttled.replace("{secs}", &left.as_secs().max(1).to_string())),
        )?;
        res.headers_mut().insert(
            header::RETRY_AFTER,
            header::HeaderValue::from(left.as_secs().max(1)),
        );
        return Ok(res);
    }

    let stored = user.as_ref().and_then(|u| u.password_hash.clone());
    let verdict = match state.hasher.verify(password.to_owned(), stored).await {
        Ok(v) => v,
        Err(PasswordError::Busy) => {
            let mut res = render_login(
                &state,
                &req,
                &t,
                StatusCode::SERVICE_UNAVAILABLE,
                again(s.busy.into()),
            )?;
            res.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("2"));
            return Ok(res);
        }
        Err(e) => return Err(AppError::internal("password hashing", e)),
    };
    let reason = match &user {
        None => Some("unknown_user"),
        Some(_) if !verdict.matches => Some("bad_password"),
        Some(u) if u.status != UserStatus::Active => Some("disabled"),
        Some(_) => None,
    };
    let user = match (reason, user) {
        (None, Some(u)) => u,
        (Some(reason), u) => {
            throttle.failed(&account, &ip).await?;
            let target = u.map_or_else(|| "user:unknown".to_owned(), |u| format!("user:{}", u.id));
            audit(&state, &t, failure("login.failure", target, reason)).await?;
            return render_login(
                &state,
                &req,
                &t,
                StatusCode::UNAUTHORIZED,
                again(s.bad_credentials.into()),
            );
        }
        (None, None) => unreachable!("no reason means a known user"),
    };
    throttle.succeeded(&account).await?;
    if verdict.needs_rehash
        && let Ok(hash) = state.hasher.hash(password.to_owned()).await
    {
        let (db, tid, uid) = (state.db.clone(), t.id.clone(), user.id.clone());
        blocking(move || db.rehash_password(&tid, &uid, &hash)).await?;
    }
    let previous = req
        .cookie(&session::cookie_name(&state, &t))
        .map(|c| latchkey_session::SessionId::from_cookie(c.value()));
    let (id, mut started) =
        session::start(&state, &req, &t, &user.id, vec!["pwd".into()], previous.as_ref()).await?;
    // An expired password (when the tenant's policy sets an expiry) must be changed first.
    let expired = latchkey_mfa::password_expired(
        &t.policy.password,
        user.password_changed_at,
        state.clock.now_millis(),
    );
    let return_to = if expired {
        started.must_change_password = true;
        session::save(&state, &t, &id, &started).await?;
        format!("/t/{}/account", t.slug)
    } else {
        return_to
    };
    audit(
        &state,
        &t,
        NewAuditEvent::success(
            &format!("user:{}", user.id),
            "login.success",
            format!("user:{}", user.id),
            json!({"amr": ["pwd"], "ip": ip}),
        ),
    )
    .await?;
    redirect_into_session(&state, &t, &return_to, &id)
}

/// A 303 to the sign-in page's "signed out" notice that deletes the session cookie.
fn redirect_signed_out(state: &AppState, t: &Tenant) -> Result<HttpResponse, AppError> {
    let mut res = HttpResponse::SeeOther()
        .insert_header((header::LOCATION, format!("/t/{}/login?signed_out=1", t.slug)))
        .finish();
    res.add_cookie(&session::removal(state, session::cookie_name(state, t)))
        .map_err(|e| AppError::internal("cookie", e))?;
    Ok(res)
}

/// A 303 to `location` that hands the browser its (new) session cookie.
fn redirect_into_session(
    state: &AppState,
    t: &Tenant,
    location: &str,
    id: &latchkey_session::SessionId,
) -> Result<HttpResponse, AppError> {
    let mut res = HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location.to_owned()))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish();
    res.add_cookie(&session::cookie(
        state,
        session::cookie_name(state, t),
        id.cookie_value().to_owned(),
    ))
    .map_err(|e| AppError::internal("cookie", e))?;
    Ok(res)
}

/// The signed-in user of this tenant, or `None` (expired, signed out, deleted or disabled).
async fn signed_in(
    state: &AppState,
    req: &HttpRequest,
    t: &Tenant,
) -> Result<Option<(latchkey_session::SessionId, latchkey_core::Session, User)>, AppError> {
    let Some((id, s)) = session::current(state, req, t).await? else {
        return Ok(None);
    };
    let (db, tid, uid) = (state.db.clone(), t.id.clone(), s.user_id.clone());
    match blocking(move || db.user(&tid, &uid)).await? {
        Some(u) if u.status == UserStatus::Active => Ok(Some((id, s, u))),
        _ => {
            state.ephemeral.delete_session(&t.id, &id).await?;
            Ok(None)
        }
    }
}

fn to_login(t: &Tenant) -> HttpResponse {
    let to = format!("/t/{}/login?return_to=/t/{}/account", t.slug, t.slug);
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to))
        .finish()
}

fn when(ms: i64) -> String {
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

struct AccountView<'a> {
    id: &'a latchkey_session::SessionId,
    user: &'a User,
    status: StatusCode,
    error: Option<String>,
    notice: Option<&'a str>,
}

async fn render_account(
    state: &AppState,
    req: &HttpRequest,
    t: &Tenant,
    v: AccountView<'_>,
) -> Result<HttpResponse, AppError> {
    let mine = v.id.storage_key();
    let sessions = state
        .ephemeral
        .list_user_sessions(&t.id, &v.user.id)
        .await?
        .into_iter()
        .map(|(key, s)| SessionRow {
            current: key == mine,
            key,
            browser: s.user_agent.unwrap_or_else(|| "?".into()),
            ip: s.ip.unwrap_or_else(|| "?".into()),
            last_used: when(s.last_seen),
        })
        .collect();
    let display = v
        .user
        .display_name
        .clone()
        .unwrap_or_else(|| v.user.username.clone());
    let page = AccountPage {
        s: strings(req),
        slug: &t.slug,
        tenant_name: &t.display_name,
        logo_url: logo(t),
        csrf: csrf::token_for(v.id.cookie_value()),
        display: &display,
        username: &v.user.username,
        display_name: v.user.display_name.as_deref().unwrap_or_default(),
        email: v.user.email.as_deref().unwrap_or_default(),
        sessions,
        error: v.error,
        notice: v.notice,
    };
    html(v.status, page.render())
}

async fn account(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let t = tenant(&state, &path).await?;
    let Some((id, session, user)) = signed_in(&state, &req, &t).await? else {
        return Ok(to_login(&t));
    };
    let q = req.query_string();
    let notice = if session.must_change_password {
        Some(strings(&req).password_expired)
    } else if q.contains("changed=1") {
        Some(strings(&req).password_changed)
    } else {
        q.contains("saved=1").then_some(strings(&req).profile_saved)
    };
    render_account(
        &state,
        &req,
        &t,
        AccountView {
            id: &id,
            user: &user,
            status: StatusCode::OK,
            error: None,
            notice,
        },
    )
    .await
}

/// An account form's preamble: the tenant, the signed-in session and user, and the CSRF check
/// bound to that session. `Ok(Err(redirect))` sends someone not signed in to the sign-in page.
async fn account_form(
    req: &HttpRequest,
    slug: &str,
    state: &AppState,
    form: &FormParams,
) -> Result<Result<(Tenant, latchkey_session::SessionId, User), HttpResponse>, AppError> {
    let t = tenant(state, slug).await?;
    let Some((id, _, user)) = signed_in(state, req, &t).await? else {
        return Ok(Err(to_login(&t)));
    };
    if !csrf::check(state, req, Some(id.cookie_value()), form.get("csrf")) {
        return Err(AppError::new(
            crate::errors::Kind::Forbidden,
            strings(req).form_expired,
        ));
    }
    Ok(Ok((t, id, user)))
}

/// Changes the password (the current one is required, the policy applies), signs out every
/// other session, and continues under a new session id.
async fn change_password(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
    form: FormParams,
) -> Result<HttpResponse, AppError> {
    let (t, id, user) = match account_form(&req, &path, &state, &form).await? {
        Ok(found) => found,
        Err(to_login) => return Ok(to_login),
    };
    let s = strings(&req);
    let current = form.get("current_password").unwrap_or_default().to_owned();
    let new = form.get("new_password").unwrap_or_default().to_owned();
    let ip = client_ip(&req);
    let throttle = Throttle {
        store: &*state.ephemeral,
        tenant: &t.id,
    };
    let fail = |status, error: String| AccountView {
        id: &id,
        user: &user,
        status,
        error: Some(error),
        notice: None,
    };
    let account = format!("id:{}", user.id);
    if let Gate::Wait(left) = throttle.check(&account, &ip).await? {
        let msg = s.throttled.replace("{secs}", &left.as_secs().max(1).to_string());
        return render_account(&state, &req, &t, fail(StatusCode::TOO_MANY_REQUESTS, msg)).await;
    }
    let verdict = state
        .hasher
        .verify(current.clone(), user.password_hash.clone())
        .await
        .map_err(hashing_error)?;
    if !verdict.matches {
        throttle.failed(&account, &ip).await?;
        audit(
            &state,
            &t,
            NewAuditEvent {
                actor: format!("user:{}", user.id),
                ..failure(
                    "user.password_change",
                    format!("user:{}", user.id),
                    "wrong_current_password",
                )
            },
        )
        .await?;
        return render_account(
            &state,
            &req,
            &t,
            fail(StatusCode::BAD_REQUEST, s.wrong_current_password.into()),
        )
        .await;
    }
    let ids: Vec<&str> = std::iter::once(user.username.as_str())
        .chain(user.email.as_deref())
        .collect();
    if let Err(e) = latchkey_mfa::check_password_policy(&new, &t.policy.password, &ids) {
        let msg = e.to_string().trim_start_matches("password policy: ").to_owned();
        return render_account(&state, &req, &t, fail(StatusCode::UNPROCESSABLE_ENTITY, msg)).await;
    }
    // Not the current password, nor one of the last N the policy remembers.
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
            .verify(new.clone(), Some(old))
            .await
            .map_err(hashing_error)?;
        if reused.matches {
            return render_account(
                &state,
                &req,
                &t,
                fail(StatusCode::UNPROCESSABLE_ENTITY, s.password_reused.into()),
            )
            .await;
        }
    }
    let hash = state.hasher.hash(new).await.map_err(hashing_error)?;
    let (db, tid, uid, actor) = (
        state.db.clone(),
        t.id.clone(),
        user.id.clone(),
        format!("user:{}", user.id),
    );
    blocking(move || db.set_password_hash(&tid, &actor, &uid, &hash)).await?;
    state.ephemeral.delete_user_sessions(&t.id, &user.id).await?;
    let (new_id, _) = session::start(&state, &req, &t, &user.id, vec!["pwd".into()], None).await?;
    redirect_into_session(&state, &t, &format!("/t/{}/account?changed=1", t.slug), &new_id)
}

/// Saves the display name and email (both optional; the email stays unique in the tenant).
async fn update_profile(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
    form: FormParams,
) -> Result<HttpResponse, AppError> {
    let (t, id, user) = match account_form(&req, &path, &state, &form).await? {
        Ok(found) => found,
        Err(to_login) => return Ok(to_login),
    };
    let field = |name: &str| {
        form.get(name)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let change = latchkey_store::UserUpdate {
        email: Some(field("email")),
        display_name: Some(field("display_name")),
    };
    let (db, tid, uid, actor) = (
        state.db.clone(),
        t.id.clone(),
        user.id.clone(),
        format!("user:{}", user.id),
    );
    match actix_web::web::block(move || db.update_user(&tid, &actor, &uid, &change)).await {
        Ok(Ok(_)) => Ok(HttpResponse::SeeOther()
            .insert_header((header::LOCATION, format!("/t/{}/account?saved=1", t.slug)))
            .finish()),
        Ok(Err(latchkey_store::StoreError::Invalid(e))) => {
            let view = AccountView {
                id: &id,
                user: &user,
                status: StatusCode::UNPROCESSABLE_ENTITY,
                error: Some(e.message),
                notice: None,
            };
            render_account(&state, &req, &t, view).await
        }
        Ok(Err(latchkey_store::StoreError::Conflict(m))) => {
            let view = AccountView {
                id: &id,
                user: &user,
                status: StatusCode::CONFLICT,
                error: Some(m),
                notice: None,
            };
            render_account(&state, &req, &t, view).await
        }
        Ok(Err(e)) => Err(e.into()),
        Err(e) => Err(AppError::internal("blocking task", e)),
    }
}

/// Signs out one of the user's other sessions, named by its storage key.
async fn revoke_session(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
    form: FormParams,
) -> Result<HttpResponse, AppError> {
    let (t, _, user) = match account_form(&req, &path, &state, &form).await? {
        Ok(found) => found,
        Err(to_login) => return Ok(to_login),
    };
    let key = form.get("session").unwrap_or_default();
    // Only a session of this user: the key must be among the user's own.
    let owned = state
        .ephemeral
        .list_user_sessions(&t.id, &user.id)
        .await?
        .into_iter()
        .any(|(k, _)| k == key);
    if owned && state.ephemeral.delete_session_by_key(&t.id, key).await? {
        let who = format!("user:{}", user.id);
        audit(
            &state,
            &t,
            NewAuditEvent::success(
                &who,
                "session.revoke",
                who.clone(),
                json!({"session": &key[..16]}),
            ),
        )
        .await?;
    }
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, format!("/t/{}/account", t.slug)))
        .finish())
}

/// "Sign out everywhere": every session of the user, this one included.
async fn revoke_all_sessions(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
    form: FormParams,
) -> Result<HttpResponse, AppError> {
    let (t, _, user) = match account_form(&req, &path, &state, &form).await? {
        Ok(found) => found,
        Err(to_login) => return Ok(to_login),
    };
    let n = state.ephemeral.delete_user_sessions(&t.id, &user.id).await?;
    let who = format!("user:{}", user.id);
    audit(
        &state,
        &t,
        NewAuditEvent::success(&who, "session.revoke_all", who.clone(), json!({"sessions": n})),
    )
    .await?;
    redirect_signed_out(&state, &t)
}

async fn logout(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
    form: FormParams,
) -> Result<HttpResponse, AppError> {
    let t = tenant(&state, &path).await?;
    let current = session::current(&state, &req, &t).await?;
    let binding = current.as_ref().map(|(id, _)| id.cookie_value().to_owned());
    if !csrf::check(&state, &req, binding.as_deref(), form.get("csrf")) {
        return Err(AppError::new(
            crate::errors::Kind::Forbidden,
            strings(&req).form_expired,
        ));
    }
    if let Some((id, s)) = current {
        state.ephemeral.delete_session(&t.id, &id).await?;
        let who = format!("user:{}", s.user_id);
        audit(
            &state,
            &t,
            NewAuditEvent::success(&who, "logout", who.clone(), json!({})),
        )
        .await?;
    }
    redirect_signed_out(&state, &t)
}

/// The tenant's colours as a stylesheet (inline styles are forbidden by the CSP).
async fn brand_css(path: web::Path<String>, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let t = tenant(&state, &path).await?;
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
