//! Email verification (docs/sign-up.md): the mailed single-use link, the page it opens, and the
//! "confirm your address first" page a tenant requiring verified addresses sends people to.
//!
//! The link carries a 256-bit token, stored as its SHA-256 with the address it went to, valid
//! for 24 hours. Opening it (GET) only shows a confirmation form: a mail scanner or a chat's link
//! preview fetching it spends nothing. The form's POST (CSRF-checked against the pre-session
//! cookie) spends it; a token for an address the account no longer has is refused. Re-sending
//! is limited per user.

use super::{AppError, Strings, csrf, html, presession_csrf_ok, retry_after, see_other, signed_in, strings};
use crate::state::AppState;
use crate::web::blocking::Blocking;
use crate::web::form::FormParams;
use crate::web::i18n::{self, EmailStrings};
use crate::web::respond::checked_return_to;
use crate::web::tenant::InTenant;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use latchkey_core::{Tenant, User};
use latchkey_store::{EmailVerificationRepo, StoreError};
use std::time::Duration;

/// Verification mails per user per hour (sign-up, email changes and re-sends together).
const MAILS_PER_USER: u64 = 3;

#[derive(Template)]
#[template(path = "verify_email.html")]
struct VerifyPage<'a> {
    s: &'a Strings,
    e: &'a EmailStrings,
    slug: &'a str,
    tenant_name: &'a str,
    logo_url: Option<&'a str>,
    csrf: String,
    token: &'a str,
    /// The address to confirm; `None` hides the form.
    email: Option<&'a str>,
    next: Option<&'a str>,
    error: Option<&'a str>,
    notice: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "unverified.html")]
struct UnverifiedPage<'a> {
    s: &'a Strings,
    e: &'a EmailStrings,
    slug: &'a str,
    tenant_name: &'a str,
    logo_url: Option<&'a str>,
    csrf: String,
    intro: String,
    has_email: bool,
    return_to: &'a str,
    error: Option<String>,
    notice: Option<&'a str>,
}

/// What a verification-mail request came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Sent {
    Queued,
    /// The per-user cap was reached: nothing sent, this long until the next may go.
    Capped(Duration),
    NoAddress,
}

/// Queues a verification link for the user's current address (one audited transaction), within
/// the per-user cap, and wakes the sender.
pub(super) async fn send_link(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    user: &User,
    actor: &str,
) -> Result<Sent, AppError> {
    if user.email.is_none() {
        return Ok(Sent::NoAddress);
    }
    let key = format!("verify-mail:user:{}", user.id);
    let hits = state
        .ephemeral
        .hit(&tenant.id, &key, Duration::from_secs(3600))
        .await?;
    if hits.count > MAILS_PER_USER {
        return Ok(Sent::Capped(hits.reset_in.max(Duration::from_secs(1))));
    }
    let e = i18n::email(strings(req));
    let (st, t, u, actor) = (state.clone(), tenant.clone(), user.clone(), actor.to_owned());
    state
        .store(move |db| -> Result<(), AppError> {
            let email = u.email.as_deref().unwrap_or_default();
            let p = prepare(&st, e, &t, (&u.username, email))?;
            Ok(db.request_email_verification(&t.id, &actor, &u.id, &p.verification())?)
        })
        .await?;
    state.mail.wake();
    Ok(Sent::Queued)
}

/// A fresh link for `(username, email)` and its mail, sealed (on the blocking pool: the data
/// key may have to be loaded).
pub(super) fn prepare(
    state: &AppState,
    e: &EmailStrings,
    tenant: &Tenant,
    who: (&str, &str),
) -> Result<latchkey_services::verification::Prepared, AppError> {
    let wording = latchkey_services::verification::Wording {
        subject: e.mail_subject,
        body: e.mail_body,
    };
    Ok(latchkey_services::verification::prepare(
        &state.keys,
        &*state.rng,
        (&tenant.id, &tenant.display_name),
        &state.config.issuer(&tenant.slug),
        who,
        &wording,
        state.clock.now_millis(),
    )?)
}

/// The token a request names, if it looks like one.
fn token_of(value: Option<&str>) -> Option<String> {
    value
        .filter(|t| {
            t.len() == 43
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map(str::to_owned)
}

struct VerifyView<'a> {
    status: StatusCode,
    token: &'a str,
    email: Option<&'a str>,
    next: Option<&'a str>,
    error: Option<&'a str>,
    notice: Option<&'a str>,
}

fn render_verify(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    v: &VerifyView<'_>,
) -> Result<HttpResponse, AppError> {
    let s = strings(req);
    crate::flow::csrf::with_presession(state, req, tenant, v.status, |csrf| {
        VerifyPage {
            s,
            e: i18n::email(s),
            slug: &tenant.slug,
            tenant_name: &tenant.display_name,
            logo_url: super::logo(tenant),
            csrf,
            token: v.token,
            email: v.email,
            next: v.next,
            error: v.error,
            notice: v.notice,
        }
        .render()
    })
}

fn refused(error: &str) -> VerifyView<'_> {
    VerifyView {
        status: StatusCode::BAD_REQUEST,
        token: "",
        email: None,
        next: None,
        error: Some(error),
        notice: None,
    }
}

/// GET `/email/verify?token=…`: the confirmation form; spends nothing.
pub(super) async fn verify_page(
    req: HttpRequest,
    InTenant(tenant): InTenant,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let e = i18n::email(strings(&req));
    let Some(token) = token_of(super::query_param(&req, "token").as_deref()) else {
        return render_verify(&state, &req, &tenant, &refused(e.verify_invalid));
    };
    let (tid, hash) = (
        tenant.id.clone(),
        latchkey_services::verification::token_hash(&token),
    );
    let found = state.store(move |db| db.email_verification(&tid, &hash)).await?;
    let Some(live) = found else {
        return render_verify(&state, &req, &tenant, &refused(e.verify_invalid));
    };
    let email = match live.user.email {
        Some(email) if live.still_current => email,
        _ => return render_verify(&state, &req, &tenant, &refused(e.verify_stale)),
    };
    let view = VerifyView {
        status: StatusCode::OK,
        token: &token,
        email: Some(&email),
        next: None,
        error: None,
        notice: None,
    };
    let mut res = render_verify(&state, &req, &tenant, &view)?;
    // The token is in this page's address: it must not leave in a `Referer`.
    res.headers_mut().insert(
        actix_web::http::header::REFERRER_POLICY,
        actix_web::http::header::HeaderValue::from_static("no-referrer"),
    );
    Ok(res)
}

/// POST `/email/verify`: spends the token and marks the address verified.
pub(super) async fn verify_submit(
    req: HttpRequest,
    InTenant(tenant): InTenant,
    state: web::Data<AppState>,
    form: FormParams,
) -> Result<HttpResponse, AppError> {
    let s = strings(&req);
    let e = i18n::email(s);
    if !presession_csrf_ok(&state, &req, &tenant, form.get("csrf")) {
        let view = VerifyView {
            status: StatusCode::FORBIDDEN,
            ..refused(s.form_expired)
        };
        return render_verify(&state, &req, &tenant, &view);
    }
    let Some(token) = token_of(form.get("token")) else {
        return render_verify(&state, &req, &tenant, &refused(e.verify_invalid));
    };
    let (tid, hash) = (
        tenant.id.clone(),
        latchkey_services::verification::token_hash(&token),
    );
    let outcome = state
        .store(move |db| match db.complete_email_verification(&tid, &hash) {
            Ok(u) => Ok(Ok(u)),
            Err(e @ (StoreError::NotFound { .. } | StoreError::Conflict(_))) => Ok(Err(e)),
            Err(e) => Err(e),
        })
        .await?;
    let user = match outcome {
        Ok(user) => user,
        Err(StoreError::Conflict(_)) => {
            return render_verify(&state, &req, &tenant, &refused(e.verify_stale));
        }
        Err(_) => return render_verify(&state, &req, &tenant, &refused(e.verify_invalid)),
    };
    tracing::info!(tenant = %tenant.slug, user = %user.id, "email verified");
    // Signed in here as this user: back to the account page; otherwise on to sign in.
    let here = signed_in(&state, &req, &tenant)
        .await?
        .is_some_and(|(_, _, u)| u.id == user.id);
    let next = if here {
        crate::web::urls::account(&tenant.slug, Some("verified=1"))
    } else {
        crate::web::urls::login(&tenant.slug, None)
    };
    let view = VerifyView {
        status: StatusCode::OK,
        token: "",
        email: None,
        next: Some(&next),
        error: None,
        notice: Some(e.verified_done),
    };
    render_verify(&state, &req, &tenant, &view)
}

/// GET `/email/unverified?return_to=…`: where a tenant requiring verified addresses sends a
/// signed-in user whose address is not, before anything is issued to a client.
pub(super) async fn unverified_page(
    req: HttpRequest,
    InTenant(tenant): InTenant,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let return_to = checked_return_to(&tenant, super::query_param(&req, "return_to").as_deref())
        .unwrap_or_else(|| crate::web::urls::account(&tenant.slug, None));
    let Some((id, _, user)) = signed_in(&state, &req, &tenant).await? else {
        return Ok(see_other(&crate::web::urls::login(
            &tenant.slug,
            Some(&format!("return_to={}", crate::web::urls::encode(&return_to))),
        )));
    };
    let notice = req
        .query_string()
        .contains("sent=1")
        .then_some(i18n::email(strings(&req)).resent);
    render_unverified(
        &state,
        &req,
        &tenant,
        (id.cookie_value(), &user),
        &return_to,
        (StatusCode::OK, None, notice),
    )
    .await
}

async fn render_unverified(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    (session_cookie, user): (&str, &User),
    return_to: &str,
    (status, error, notice): (StatusCode, Option<String>, Option<&str>),
) -> Result<HttpResponse, AppError> {
    let s = strings(req);
    let e = i18n::email(s);
    let intro = match &user.email {
        Some(email) => e.unverified_intro.replace("{email}", email),
        None => e.unverified_none.to_owned(),
    };
    let page = UnverifiedPage {
        s,
        e,
        slug: &tenant.slug,
        tenant_name: &tenant.display_name,
        logo_url: super::logo(tenant),
        csrf: csrf::token_for(session_cookie),
        intro,
        has_email: user.email.is_some(),
        return_to,
        error,
        notice,
    };
    let mut res = html(state, req, status, page.render())?;
    super::allow_continuation(state, req, tenant, &mut res, return_to).await?;
    Ok(res)
}

/// POST `/email/resend`: a new link for the signed-in user's address, within the per-user cap;
/// back to the page that asked (`return_to`: the "confirm first" page; else the account page).
pub(super) async fn resend(
    req: HttpRequest,
    InTenant(tenant): InTenant,
    state: web::Data<AppState>,
    form: FormParams,
) -> Result<HttpResponse, AppError> {
    let (tenant, id, user) = match super::account::account_form(&req, tenant, &state, &form).await? {
        Ok(found) => found,
        Err(to_login) => return Ok(to_login),
    };
    let return_to = checked_return_to(&tenant, form.get("return_to"));
    if user.email_verified {
        let back = return_to.unwrap_or_else(|| crate::web::urls::account(&tenant.slug, None));
        return Ok(see_other(&back));
    }
    let who = format!("user:{}", user.id);
    match send_link(&state, &req, &tenant, &user, &who).await? {
        Sent::Capped(wait) => {
            let s = strings(&req);
            let secs = wait.as_secs().max(1);
            let error = Some(s.throttled.replace("{secs}", &secs.to_string()));
            let back = return_to.unwrap_or_else(|| crate::web::urls::account(&tenant.slug, None));
            let res = render_unverified(
                &state,
                &req,
                &tenant,
                (id.cookie_value(), &user),
                &back,
                (StatusCode::TOO_MANY_REQUESTS, error, None),
            )
            .await?;
            Ok(retry_after(res, secs))
        }
        Sent::Queued | Sent::NoAddress => Ok(see_other(&match return_to {
            Some(r) => format!("{}&sent=1", crate::flow::email::page_for(&tenant, &r)),
            None => crate::web::urls::account(&tenant.slug, Some("verify_sent=1")),
        })),
    }
}
