//! Password reset by email (OWASP Forgot Password cheat sheet). The request page answers the
//! same whether or not the account exists, and does the same work (one audited transaction);
//! the mail goes through the outbox. The link carries a 256-bit single-use token, stored as
//! its SHA-256, valid for 30 minutes, and works only in the browser that asked for it (a random
//! cookie set with the request, whose SHA-256 is stored with the token), so a link planted in
//! someone else's browser or read from a mailbox elsewhere sets no password. Following it moves
//! the token into a cookie and off the address bar; the new password meets the policy; every
//! session of the user ends.

use super::{
    AppError, Strings, audit, client_ip, csrf, failure, find_user, hashing_error, html, new_password_problem,
    presession_csrf_ok, retry_after, see_other, strings, with_presession,
};
use crate::state::AppState;
use crate::web::blocking::Blocking;
use crate::web::blocking::blocking;
use crate::web::form::FormParams;
use crate::web::tenant::InTenant;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use latchkey_core::{Tenant, User, UserStatus};
use latchkey_store::ResetRepo;
use std::time::Duration;

const TOKEN_TTL: Duration = Duration::from_secs(30 * 60);
/// Reset mails per account per hour: more requests are answered the same and send nothing.
const MAILS_PER_ACCOUNT: u64 = 3;
/// Reset requests per address per 15 minutes before 429.
const REQUESTS_PER_ADDRESS: u64 = 10;

#[derive(Template)]
#[template(path = "forgot.html")]
struct ForgotPage<'a> {
    s: &'a Strings,
    slug: &'a str,
    tenant_name: &'a str,
    logo_url: Option<&'a str>,
    csrf: String,
    username: &'a str,
    error: Option<String>,
    notice: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "reset.html")]
struct ResetPage<'a> {
    s: &'a Strings,
    slug: &'a str,
    tenant_name: &'a str,
    logo_url: Option<&'a str>,
    csrf: String,
    /// For password managers: whose password this is.
    username: &'a str,
    /// `None` when the link is spent or expired: the page then offers a new one.
    valid: bool,
    error: Option<String>,
}

fn render_forgot(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    status: StatusCode,
    username: &str,
    error: Option<String>,
    notice: Option<&str>,
) -> Result<HttpResponse, AppError> {
    with_presession(state, req, tenant, status, |csrf| {
        ForgotPage {
            s: strings(req),
            slug: &tenant.slug,
            tenant_name: &tenant.display_name,
            logo_url: super::logo(tenant),
            csrf,
            username,
            error,
            notice,
        }
        .render()
    })
}

pub(super) async fn forgot_page(
    req: HttpRequest,
    InTenant(tenant): InTenant,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    render_forgot(&state, &req, &tenant, StatusCode::OK, "", None, None)
}

fn token_hash(token: &str) -> String {
    latchkey_core::sha256_hex(format!("latchkey-reset-v1:{token}").as_bytes())
}

pub(super) async fn forgot_submit(
    req: HttpRequest,
    InTenant(tenant): InTenant,
    state: web::Data<AppState>,
    form: FormParams,
) -> Result<HttpResponse, AppError> {
    let s = strings(&req);
    let name = form.get("username").unwrap_or_default().trim();
    if !presession_csrf_ok(&state, &req, &tenant, form.get("csrf")) {
        let error = Some(s.form_expired.into());
        return render_forgot(&state, &req, &tenant, StatusCode::FORBIDDEN, name, error, None);
    }
    let ip = client_ip(&req);
    let hits = state
        .ephemeral
        .hit(
            &tenant.id,
            &format!("reset:ip:{ip}"),
            Duration::from_secs(15 * 60),
        )
        .await?;
    if hits.count > REQUESTS_PER_ADDRESS {
        let secs = hits.reset_in.as_secs().max(1);
        let error = Some(s.throttled.replace("{secs}", &secs.to_string()));
        let res = render_forgot(
            &state,
            &req,
            &tenant,
            StatusCode::TOO_MANY_REQUESTS,
            name,
            error,
            None,
        )?;
        return Ok(retry_after(res, secs));
    }
    // Every answer binds this browser, account or not, so the response says nothing.
    let browser = browser_binding(&state, &req, &tenant);
    let user = find_user(&state, &tenant, name).await?;
    let refusal = match &user {
        None => Some("unknown_user"),
        Some(u) if u.status != UserStatus::Active => Some("disabled"),
        Some(u) if u.email.is_none() => Some("no_email"),
        // An account without a password whose address nobody proved (made by a connection that
        // does not vouch for addresses): a link to that address would hand the account, and
        // the upstream identity it is joined to, to whoever holds the mailbox.
        Some(u) if u.password_hash.is_none() && !u.email_verified => Some("unverified_email"),
        Some(u) => {
            let key = format!("reset:user:{}", u.id);
            let sent = state
                .ephemeral
                .hit(&tenant.id, &key, Duration::from_secs(3600))
                .await?;
            (sent.count > MAILS_PER_ACCOUNT).then_some("throttled")
        }
    };
    match (user, refusal) {
        (Some(u), None) => send_link(&state, s, &tenant, &u, &browser_hash(&browser)).await?,
        (u, reason) => {
            let target = u.map_or_else(|| "user:unknown".to_owned(), |u| format!("user:{}", u.id));
            let reason = reason.unwrap_or("unknown_user");
            audit(
                &state,
                &tenant,
                failure("user.password_reset_request", target, reason),
            )
            .await?;
        }
    }
    // The same answer, whatever happened (no account enumeration).
    let mut res = render_forgot(
        &state,
        &req,
        &tenant,
        StatusCode::OK,
        "",
        None,
        Some(s.forgot_sent),
    )?;
    let mut c = crate::web::cookies::cookie(&state, browser_cookie_name(&state, &tenant), browser);
    c.set_max_age(actix_web::cookie::time::Duration::seconds(
        TOKEN_TTL.as_secs() as i64
    ));
    res.add_cookie(&c).map_err(|e| AppError::internal("cookie", e))?;
    Ok(res)
}

/// The cookie that binds reset links to the browser that asked for them.
fn browser_cookie_name(state: &AppState, tenant: &Tenant) -> String {
    crate::web::cookies::host_cookie_name(state, &format!("lk-reset-browser-{}", tenant.slug))
}

/// This browser's binding value: the one it holds (so an earlier link keeps working), else new.
fn browser_binding(state: &AppState, req: &HttpRequest, tenant: &Tenant) -> String {
    req.cookie(&browser_cookie_name(state, tenant))
        .map(|c| c.value().to_owned())
        .filter(|v| v.len() == 43)
        .unwrap_or_else(|| latchkey_core::random_token(&*state.rng, 32))
}

fn browser_hash(binding: &str) -> String {
    latchkey_core::sha256_hex(format!("latchkey-reset-browser-v1:{binding}").as_bytes())
}

/// Stores a fresh token and queues its mail (one transaction), then wakes the sender.
async fn send_link(
    state: &AppState,
    strings: &Strings,
    t: &Tenant,
    u: &User,
    browser_hash: &str,
) -> Result<(), AppError> {
    let token = latchkey_core::random_token(&*state.rng, 32);
    let link = format!("{}/password/reset?token={token}", state.config.issuer(&t.slug));
    let subject = strings.mail_reset_subject.replace("{tenant}", &t.display_name);
    let body = strings
        .mail_reset_body
        .replace("{user}", &u.username)
        .replace("{tenant}", &t.display_name)
        .replace("{link}", &link);
    let recipient = u.email.clone().unwrap_or_default();
    let expires = state.clock.now_millis() + TOKEN_TTL.as_millis() as i64;
    let (st, tid, uid, hash) = (state.clone(), t.id.clone(), u.id.clone(), token_hash(&token));
    let browser = browser_hash.to_owned();
    blocking(move || -> Result<(), AppError> {
        let mail = latchkey_services::mail::compose(
            &st.keys,
            &*st.rng,
            latchkey_store::Channel::Mail,
            &tid,
            &recipient,
            &subject,
            &body,
        )?;
        Ok(st
            .db
            .request_password_reset(&tid, &uid, (&hash, &browser), expires, &mail)?)
    })
    .await?;
    state.mail.wake();
    Ok(())
}

fn reset_cookie_name(state: &AppState, tenant: &Tenant) -> String {
    crate::web::cookies::host_cookie_name(state, &format!("lk-reset-{}", tenant.slug))
}

/// What the reset cookie this browser holds comes to.
enum Link {
    /// A live token of an active user, requested in this browser.
    Live(String, Box<User>),
    /// A live token requested in another browser.
    OtherBrowser,
    /// No token, or an unknown, spent or expired one, or one of a user who can't sign in.
    Invalid,
}

/// The reset token this browser holds, checked: live, its user active, and bound to this
/// browser (the binding compared in constant time).
async fn live_token(state: &AppState, req: &HttpRequest, tenant: &Tenant) -> Result<Link, AppError> {
    let Some(token) = req
        .cookie(&reset_cookie_name(state, tenant))
        .map(|c| c.value().to_owned())
        .filter(|v| v.len() == 43)
    else {
        return Ok(Link::Invalid);
    };
    let (tid, hash) = (tenant.id.clone(), token_hash(&token));
    let found = state
        .store(move |db| -> Result<Option<(Option<String>, User)>, AppError> {
            let Some(live) = db.password_reset_user(&tid, &hash)? else {
                return Ok(None);
            };
            let user = latchkey_store::UserRepo::user(db, &tid, &live.user)?;
            Ok(user.map(|u| (live.browser_hash, u)))
        })
        .await?;
    let Some((bound, user)) = found.filter(|(_, u)| u.status == UserStatus::Active) else {
        return Ok(Link::Invalid);
    };
    let Some(bound) = bound else {
        return Ok(Link::Invalid);
    };
    let presented = req
        .cookie(&browser_cookie_name(state, tenant))
        .map(|c| browser_hash(c.value()))
        .unwrap_or_default();
    if bool::from(subtle::ConstantTimeEq::ct_eq(
        presented.as_bytes(),
        bound.as_bytes(),
    )) {
        Ok(Link::Live(token, Box::new(user)))
    } else {
        Ok(Link::OtherBrowser)
    }
}

/// The 400 page for a link that can't be used here, with the reason.
fn refuse_link(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    link: &Link,
) -> Result<HttpResponse, AppError> {
    let s = strings(req);
    let error = if matches!(link, Link::OtherBrowser) {
        s.reset_other_browser
    } else {
        s.reset_invalid
    };
    render_reset(
        state,
        req,
        tenant,
        StatusCode::BAD_REQUEST,
        None,
        Some(error.into()),
    )
}

fn render_reset(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    status: StatusCode,
    live: Option<(&str, &User)>,
    error: Option<String>,
) -> Result<HttpResponse, AppError> {
    let page = ResetPage {
        s: strings(req),
        slug: &tenant.slug,
        tenant_name: &tenant.display_name,
        logo_url: super::logo(tenant),
        csrf: live.map(|(token, _)| csrf::token_for(token)).unwrap_or_default(),
        username: live.map(|(_, u)| u.username.as_str()).unwrap_or_default(),
        valid: live.is_some(),
        error,
    };
    let mut res = html(state, req, status, page.render())?;
    if live.is_none() {
        res.add_cookie(&crate::web::cookies::removal(
            state,
            reset_cookie_name(state, tenant),
        ))
        .map_err(|e| AppError::internal("cookie", e))?;
    }
    Ok(res)
}

/// `?token=` from the mail: kept in a cookie and dropped from the address bar (history,
/// screenshots, `Referer`) by a redirect; without it, the form for the token in the cookie.
pub(super) async fn reset_page(
    req: HttpRequest,
    InTenant(tenant): InTenant,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    if let Some(token) = super::query_param(&req, "token") {
        let mut res = see_other(&crate::web::urls::password_reset(&tenant.slug));
        let mut c = crate::web::cookies::cookie(&state, reset_cookie_name(&state, &tenant), token);
        c.set_max_age(actix_web::cookie::time::Duration::seconds(
            TOKEN_TTL.as_secs() as i64
        ));
        res.add_cookie(&c).map_err(|e| AppError::internal("cookie", e))?;
        return Ok(res);
    }
    match live_token(&state, &req, &tenant).await? {
        Link::Live(token, user) => {
            render_reset(&state, &req, &tenant, StatusCode::OK, Some((&token, &user)), None)
        }
        other => refuse_link(&state, &req, &tenant, &other),
    }
}

pub(super) async fn reset_submit(
    req: HttpRequest,
    InTenant(t): InTenant,
    state: web::Data<AppState>,
    form: FormParams,
) -> Result<HttpResponse, AppError> {
    let s = strings(&req);
    let (token, user) = match live_token(&state, &req, &t).await? {
        Link::Live(token, user) => (token, *user),
        other => return refuse_link(&state, &req, &t, &other),
    };
    // The form's token is bound to the reset token itself.
    if !csrf::check(&state, &req, Some(&token), form.get("csrf")) {
        let error = Some(s.form_expired.into());
        return render_reset(
            &state,
            &req,
            &t,
            StatusCode::FORBIDDEN,
            Some((&token, &user)),
            error,
        );
    }
    let new = form.get("new_password").unwrap_or_default().to_owned();
    if let Some(problem) = new_password_problem(&state, s, &t, &user, &new).await? {
        let live = Some((token.as_str(), &user));
        return render_reset(
            &state,
            &req,
            &t,
            StatusCode::UNPROCESSABLE_ENTITY,
            live,
            Some(problem),
        );
    }
    let hash = state.hasher.hash(new).await.map_err(hashing_error)?;
    let (db, tid, th) = (state.db.clone(), t.id.clone(), token_hash(&token));
    match web::block(move || db.complete_password_reset(&tid, &th, &hash))
        .await
        .map_err(|e| AppError::internal("blocking task", e))?
    {
        Ok(_) => {}
        // Spent by a concurrent request between the check and now.
        Err(latchkey_store::StoreError::NotFound { .. }) => {
            let error = Some(s.reset_invalid.into());
            return render_reset(&state, &req, &t, StatusCode::BAD_REQUEST, None, error);
        }
        Err(e) => return Err(e.into()),
    }
    let ended = state.ephemeral.delete_user_sessions(&t.id, &user.id).await?;
    tracing::info!(tenant = %t.slug, user = %user.id, sessions_ended = ended, "password reset");
    let mut res = super::redirect_signed_out(&state, &t, "reset")?;
    for name in [reset_cookie_name(&state, &t), browser_cookie_name(&state, &t)] {
        res.add_cookie(&crate::web::cookies::removal(&state, name))
            .map_err(|e| AppError::internal("cookie", e))?;
    }
    Ok(res)
}
