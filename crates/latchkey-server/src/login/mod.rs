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
    let ip = client_ip(&req);
    let throttle = Throttle {
        store: &*state.ephemeral,
        tenant: &t.id,
    };
    if let Gate::Wait(left) = throttle.check(username, &ip).await? {
        audit(
            &state,
            &t,
            failure("login.throttled", "user:unknown".into(), "throttled"),
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
            throttle.failed(username, &ip).await?;
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
    throttle.succeeded(username).await?;
    if verdict.needs_rehash
        && let Ok(hash) = state.hasher.hash(password.to_owned()).await
    {
        let (db, tid, uid) = (state.db.clone(), t.id.clone(), user.id.clone());
        blocking(move || db.rehash_password(&tid, &uid, &hash)).await?;
    }
    let previous = req
        .cookie(&session::cookie_name(&state, &t))
        .map(|c| latchkey_session::SessionId::from_cookie(c.value()));
    let (id, _) = session::start(&state, &req, &t, &user.id, vec!["pwd".into()], previous.as_ref()).await?;
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
    let mut res = HttpResponse::SeeOther()
        .insert_header((header::LOCATION, return_to.clone()))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish();
    res.add_cookie(&session::cookie(
        &state,
        session::cookie_name(&state, &t),
        id.cookie_value().to_owned(),
    ))
    .map_err(|e| AppError::internal("cookie", e))?;
    Ok(res)
}

async fn account(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let t = tenant(&state, &path).await?;
    let Some((id, s)) = session::current(&state, &req, &t).await? else {
        let to = format!("/t/{}/login?return_to=/t/{}/account", t.slug, t.slug);
        return Ok(HttpResponse::SeeOther()
            .insert_header((header::LOCATION, to))
            .finish());
    };
    let (db, tid, uid) = (state.db.clone(), t.id.clone(), s.user_id.clone());
    let Some(user) = blocking(move || db.user(&tid, &uid)).await? else {
        state.ephemeral.delete_session(&t.id, &id).await?;
        return Ok(HttpResponse::SeeOther()
            .insert_header((header::LOCATION, format!("/t/{}/login", t.slug)))
            .finish());
    };
    let display = user.display_name.clone().unwrap_or_else(|| user.username.clone());
    let page = AccountPage {
        s: strings(&req),
        slug: &t.slug,
        tenant_name: &t.display_name,
        logo_url: logo(&t),
        csrf: csrf::token_for(id.cookie_value()),
        display: &display,
    };
    html(StatusCode::OK, page.render())
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
    let mut res = HttpResponse::SeeOther()
        .insert_header((header::LOCATION, format!("/t/{}/login?signed_out=1", t.slug)))
        .finish();
    res.add_cookie(&session::removal(&state, session::cookie_name(&state, &t)))
        .map_err(|e| AppError::internal("cookie", e))?;
    Ok(res)
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
