//! Second factors: the verification step after the password, the authenticator-app enrolment
//! (also forced right after the password when the tenant requires MFA), recovery codes.
//!
//! A session whose second factor is still due (`Session::factor_due`) signs nobody in: it only
//! reaches these pages. Finishing the step starts a new session id with the added methods
//! (`otp`, `mfa`), so the half-finished session's cookie is worth nothing afterwards.

use super::{AppError, Strings, audit, checked_return_to, csrf, html, see_other, session, strings};
use crate::flow::factor::{any_session, can_enrol, complete, has_factor, has_totp, is_last_factor};
use crate::flow::throttle::Budget;
use crate::state::AppState;
use crate::web::blocking::Blocking;
use crate::web::errors::Kind;
use crate::web::form::FormParams;
use crate::web::tenant::InTenant;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use base64::Engine as _;
use latchkey_core::{FactorDue, MfaMethod, NewAuditEvent, Session, Tenant, User};
use latchkey_mfa::{recovery, totp};
use latchkey_session::SessionId;
use latchkey_store::MfaRepo;
use serde_json::json;
use std::time::Duration;

/// Wrong codes allowed per user in `WINDOW` (SECURITY-TESTS T5).
const ATTEMPTS: u64 = 5;
const WINDOW: Duration = Duration::from_secs(5 * 60);

fn query_return_to(req: &HttpRequest, tenant: &Tenant) -> String {
    checked_return_to(tenant, super::query_param(req, "return_to").as_deref())
        .unwrap_or_else(|| crate::web::urls::account(&tenant.slug, None))
}

/// The user's wrong-code budget: a code is checked only while the wrong codes counted plus the
/// checks in flight stay within `ATTEMPTS`, so parallel guesses get no more.
fn budget<'a>(state: &'a AppState, tenant: &'a Tenant, user: &User) -> Budget<'a> {
    Budget {
        store: &*state.ephemeral,
        tenant: &tenant.id,
        key: format!("mfa:{}", user.id),
        allowed: ATTEMPTS,
        window: WINDOW,
    }
}

/// Accepts a TOTP code for `seed` once per time step (SECURITY-TESTS T2): `Ok(Err(message))`
/// for a wrong or replayed code.
async fn check_code(
    state: &AppState,
    tenant: &Tenant,
    user: &User,
    seed: &[u8],
    code: &str,
    strings: &'static Strings,
) -> Result<Result<(), &'static str>, AppError> {
    let now = u64::try_from(state.clock.now_millis() / 1000).unwrap_or_default();
    let Some(step) = totp::verify(seed, code, now) else {
        return Ok(Err(strings.bad_code));
    };
    let key = format!("totp-step:{}:{step}", user.id);
    let ttl = Duration::from_secs(totp::STEP_SECS * (2 * totp::SKEW + 2));
    if !state.ephemeral.put_once(&tenant.id, &key, b"1", ttl).await? {
        return Ok(Err(strings.code_reused));
    }
    Ok(Ok(()))
}

#[derive(Template)]
#[template(path = "second_factor.html")]
struct SecondFactorPage<'a> {
    s: &'a Strings,
    slug: &'a str,
    tenant_name: &'a str,
    logo_url: Option<&'a str>,
    csrf: String,
    return_to: &'a str,
    error: Option<&'a str>,
    has_passkeys: bool,
}

async fn second_factor_html(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    (sid, user): (&SessionId, &User),
    return_to: &str,
    status: StatusCode,
    error: Option<&str>,
) -> Result<HttpResponse, AppError> {
    let (tid, uid) = (tenant.id.clone(), user.id.clone());
    let has_passkeys = !state.store(move |db| db.passkeys(&tid, &uid)).await?.is_empty();
    let page = SecondFactorPage {
        s: strings(req),
        slug: &tenant.slug,
        tenant_name: &tenant.display_name,
        logo_url: super::logo(tenant),
        csrf: csrf::token_for(sid.cookie_value()),
        return_to,
        error,
        has_passkeys,
    };
    let mut res = html(state, req, status, page.render())?;
    super::allow_continuation(state, req, tenant, &mut res, return_to).await?;
    Ok(res)
}

fn to_login(tenant: &Tenant) -> HttpResponse {
    see_other(&crate::web::urls::login(&tenant.slug, None))
}

/// GET `/t/{tenant}/login/second-factor`.
pub(super) async fn second_factor_page(
    req: HttpRequest,
    InTenant(tenant): InTenant,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let Some((sid, s, user)) = any_session(&state, &req, &tenant).await? else {
        return Ok(to_login(&tenant));
    };
    if s.factor_due != Some(FactorDue::Verify) {
        return Ok(to_login(&tenant));
    }
    second_factor_html(
        &state,
        &req,
        &tenant,
        (&sid, &user),
        &query_return_to(&req, &tenant),
        StatusCode::OK,
        None,
    )
    .await
}

/// POST `/t/{tenant}/login/second-factor`: a code from the app, or a recovery code.
pub(super) async fn second_factor_submit(
    req: HttpRequest,
    InTenant(tenant): InTenant,
    state: web::Data<AppState>,
    form: FormParams,
) -> Result<HttpResponse, AppError> {
    let Some((sid, session_now, user)) = any_session(&state, &req, &tenant).await? else {
        return Ok(to_login(&tenant));
    };
    if session_now.factor_due != Some(FactorDue::Verify) {
        return Ok(to_login(&tenant));
    }
    if !csrf::check(&state, &req, Some(sid.cookie_value()), form.get("csrf")) {
        return Err(AppError::new(Kind::Forbidden, strings(&req).form_expired));
    }
    let s = strings(&req);
    let next = checked_return_to(&tenant, form.get("return_to"))
        .unwrap_or_else(|| crate::web::urls::account(&tenant.slug, None));
    let again = async |status, msg: &str| {
        second_factor_html(&state, &req, &tenant, (&sid, &user), &next, status, Some(msg)).await
    };
    let budget = budget(&state, &tenant, &user);
    if !budget.reserve().await? {
        let msg = s.throttled.replace("{secs}", &WINDOW.as_secs().to_string());
        return again(StatusCode::TOO_MANY_REQUESTS, &msg).await;
    }
    if let Some(code) = form.get("recovery_code").filter(|c| !c.trim().is_empty()) {
        let (tid, uid, hash) = (tenant.id.clone(), user.id.clone(), recovery::hash(code));
        if !state
            .store(move |db| db.use_recovery_code(&tid, &uid, &hash))
            .await?
        {
            budget.failed().await?;
            return again(StatusCode::UNAUTHORIZED, s.bad_recovery).await;
        }
        budget.release().await?;
        notify_recovery_use(&state, &tenant, &user, s).await?;
        return Ok(
            complete(&state, &req, &tenant, (&sid, &session_now), &["mfa"], &next)
                .await?
                .0,
        );
    }
    let code = form.get("code").unwrap_or_default();
    let Some(seed) = confirmed_seed(&state, &tenant, &user).await? else {
        budget.release().await?;
        return Ok(to_login(&tenant));
    };
    if let Err(msg) = check_code(&state, &tenant, &user, &seed, code, s).await? {
        budget.failed().await?;
        let who = format!("user:{}", user.id);
        audit(
            &state,
            &tenant,
            NewAuditEvent::failure(
                &who,
                "login.second_factor",
                who.clone(),
                json!({"reason": "bad_code"}),
            ),
        )
        .await?;
        return again(StatusCode::UNAUTHORIZED, msg).await;
    }
    budget.release().await?;
    let (tid, uid) = (tenant.id.clone(), user.id.clone());
    state.store(move |db| db.totp_used(&tid, &uid)).await?;
    Ok(complete(
        &state,
        &req,
        &tenant,
        (&sid, &session_now),
        &["otp", "mfa"],
        &next,
    )
    .await?
    .0)
}

/// The seed of the user's confirmed app (or, with `pending`, of the enrolment under way).
async fn seed(
    state: &AppState,
    tenant: &Tenant,
    user: &User,
    confirmed: bool,
) -> Result<Option<Vec<u8>>, AppError> {
    let (tid, uid) = (tenant.id.clone(), user.id.clone());
    let Some(stored) = state.store(move |db| db.totp(&tid, &uid)).await? else {
        return Ok(None);
    };
    if stored.confirmed_at.is_some() != confirmed {
        return Ok(None);
    }
    Ok(Some(stored.seed))
}

async fn confirmed_seed(state: &AppState, tenant: &Tenant, user: &User) -> Result<Option<Vec<u8>>, AppError> {
    seed(state, tenant, user, true).await
}

/// Tells the user by mail that a recovery code was used (when they have an address).
async fn notify_recovery_use(
    state: &AppState,
    t: &Tenant,
    user: &User,
    strings: &Strings,
) -> Result<(), AppError> {
    let Some(to) = user.email.clone() else {
        return Ok(());
    };
    let body = strings.mail_recovery_body.replace("{tenant}", &t.display_name);
    crate::flow::notify::queue(
        state,
        latchkey_store::Channel::Mail,
        &t.id,
        &to,
        strings.mail_recovery_subject,
        body,
    )
    .await
}

#[derive(Template)]
#[template(path = "authenticator.html")]
struct AuthenticatorPage<'a> {
    s: &'a Strings,
    slug: &'a str,
    tenant_name: &'a str,
    logo_url: Option<&'a str>,
    csrf: String,
    return_to: &'a str,
    required: bool,
    passkey_allowed: bool,
    qr: Option<String>,
    secret: Option<String>,
    error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "recovery_codes.html")]
struct RecoveryCodesPage<'a> {
    s: &'a Strings,
    slug: &'a str,
    tenant_name: &'a str,
    logo_url: Option<&'a str>,
    codes: Vec<String>,
    next: &'a str,
}

/// The session for the enrolment pages: signed in, or owing an enrolment.
pub(crate) async fn enrolling(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
) -> Result<Option<(SessionId, Session, User)>, AppError> {
    Ok(any_session(state, req, tenant)
        .await?
        .filter(|(_, s, _)| matches!(s.factor_due, None | Some(FactorDue::Enrol))))
}

#[allow(clippy::too_many_arguments)]
fn authenticator_html(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    (sid, s, user): (&SessionId, &Session, &User),
    seed: Option<&[u8]>,
    return_to: &str,
    status: StatusCode,
    error: Option<&str>,
) -> Result<HttpResponse, AppError> {
    let account = user.email.as_deref().unwrap_or(&user.username);
    let (qr, secret) = match seed {
        Some(seed) => {
            let uri = totp::otpauth_uri(&tenant.display_name, account, seed);
            let svg = totp::qr_svg(&uri).ok_or_else(|| AppError::internal("QR code", "URI too long"))?;
            (
                Some(format!(
                    "data:image/svg+xml;base64,{}",
                    base64::engine::general_purpose::STANDARD.encode(svg)
                )),
                Some(totp::base32(seed)),
            )
        }
        None => (None, None),
    };
    let page = AuthenticatorPage {
        s: strings(req),
        slug: &tenant.slug,
        tenant_name: &tenant.display_name,
        logo_url: super::logo(tenant),
        csrf: csrf::token_for(sid.cookie_value()),
        return_to,
        required: s.factor_due == Some(FactorDue::Enrol),
        passkey_allowed: tenant.policy.allows(MfaMethod::Passkey),
        qr,
        secret,
        error,
    };
    html(state, req, status, page.render())
}

/// GET `/t/{tenant}/account/authenticator`: the QR code and key of a new (or pending) app.
pub(super) async fn authenticator_page(
    req: HttpRequest,
    InTenant(tenant): InTenant,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let Some((sid, s, user)) = enrolling(&state, &req, &tenant).await? else {
        return Ok(to_login(&tenant));
    };
    if !can_enrol(&tenant) {
        return Err(AppError::new(
            Kind::Forbidden,
            "Second factors are not enabled here.",
        ));
    }
    let totp_open = tenant.policy.allows(MfaMethod::Totp) && !has_totp(&state, &tenant, &user.id).await?;
    if !totp_open && s.factor_due != Some(FactorDue::Enrol) {
        return Ok(see_other(&crate::web::urls::account(&tenant.slug, None)));
    }
    // Reloading shows the same key, so an app that already scanned it keeps working.
    let seed = match seed(&state, &tenant, &user, false).await? {
        Some(seed) => Some(seed),
        None if totp_open => {
            let mut fresh = vec![0u8; totp::SEED_BYTES];
            state.rng.fill(&mut fresh);
            let (tid, uid, seed) = (tenant.id.clone(), user.id.clone(), fresh.clone());
            state.store(move |db| db.begin_totp(&tid, &uid, &seed)).await?;
            Some(fresh)
        }
        None => None,
    };
    let return_to = query_return_to(&req, &tenant);
    authenticator_html(
        &state,
        &req,
        &tenant,
        (&sid, &s, &user),
        seed.as_deref(),
        &return_to,
        StatusCode::OK,
        None,
    )
}

/// Confirms the authenticator app. The first factor brings the recovery codes (returned to be
/// shown once); a second one keeps those the user has.
async fn confirm_totp(state: &AppState, tenant: &Tenant, user: &User) -> Result<Vec<String>, AppError> {
    let first = !has_factor(state, tenant, &user.id).await?;
    let codes = if first {
        recovery::generate(&*state.rng)
    } else {
        Vec::new()
    };
    let hashes: Vec<String> = codes.iter().map(|c| recovery::hash(c)).collect();
    let (tid, uid) = (tenant.id.clone(), user.id.clone());
    state
        .store(move |db| db.confirm_totp(&tid, &uid, &hashes))
        .await?;
    Ok(codes)
}

/// POST `/t/{tenant}/account/authenticator`: the first code confirms the app.
pub(super) async fn authenticator_submit(
    req: HttpRequest,
    InTenant(tenant): InTenant,
    state: web::Data<AppState>,
    form: FormParams,
) -> Result<HttpResponse, AppError> {
    let Some((sid, session_now, user)) = enrolling(&state, &req, &tenant).await? else {
        return Ok(to_login(&tenant));
    };
    if !csrf::check(&state, &req, Some(sid.cookie_value()), form.get("csrf")) {
        return Err(AppError::new(Kind::Forbidden, strings(&req).form_expired));
    }
    let s = strings(&req);
    let next = checked_return_to(&tenant, form.get("return_to"))
        .unwrap_or_else(|| crate::web::urls::account(&tenant.slug, None));
    let Some(seed) = seed(&state, &tenant, &user, false).await? else {
        return Ok(see_other(&crate::web::urls::account(&tenant.slug, None)));
    };
    let fail = |status, msg| {
        authenticator_html(
            &state,
            &req,
            &tenant,
            (&sid, &session_now, &user),
            Some(&seed),
            &next,
            status,
            Some(msg),
        )
    };
    let budget = budget(&state, &tenant, &user);
    if !budget.reserve().await? {
        let msg = s.throttled.replace("{secs}", &WINDOW.as_secs().to_string());
        return fail(StatusCode::TOO_MANY_REQUESTS, &msg);
    }
    let checked = check_code(
        &state,
        &tenant,
        &user,
        &seed,
        form.get("code").unwrap_or_default(),
        s,
    )
    .await?;
    if let Err(msg) = checked {
        budget.failed().await?;
        return fail(StatusCode::UNAUTHORIZED, msg);
    }
    budget.release().await?;
    let codes = confirm_totp(&state, &tenant, &user).await?;
    // Enrolling during sign-in also finishes the sign-in with the new factor.
    let cookie = if session_now.factor_due == Some(FactorDue::Enrol) {
        let (_, new_id) = complete(
            &state,
            &req,
            &tenant,
            (&sid, &session_now),
            &["otp", "mfa"],
            &next,
        )
        .await?;
        Some(new_id)
    } else {
        None
    };
    let mut res = if codes.is_empty() {
        see_other(&next)
    } else {
        codes_page(&state, &req, &tenant, codes, &next)?
    };
    if let Some(id) = cookie {
        res.add_cookie(&crate::web::cookies::cookie(
            &state,
            session::cookie_name(&state, &tenant),
            id.cookie_value().to_owned(),
        ))
        .map_err(|e| AppError::internal("cookie", e))?;
    }
    Ok(res)
}

fn codes_page(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    codes: Vec<String>,
    next: &str,
) -> Result<HttpResponse, AppError> {
    let page = RecoveryCodesPage {
        s: strings(req),
        slug: &tenant.slug,
        tenant_name: &tenant.display_name,
        logo_url: super::logo(tenant),
        codes,
        next,
    };
    html(state, req, StatusCode::OK, page.render())
}

/// POST `/t/{tenant}/account/authenticator/remove`.
pub(super) async fn remove_authenticator(
    req: HttpRequest,
    InTenant(tenant): InTenant,
    state: web::Data<AppState>,
    form: FormParams,
) -> Result<HttpResponse, AppError> {
    let (tenant, _, user) = match super::account::account_form(&req, tenant, &state, &form).await? {
        Ok(found) => found,
        Err(to_login) => return Ok(to_login),
    };
    // W7: the only factor stays while the policy requires one.
    if is_last_factor(&state, &tenant, &user).await? {
        return Ok(see_other(&crate::web::urls::account(
            &tenant.slug,
            Some("mfa=required"),
        )));
    }
    let (tid, uid) = (tenant.id.clone(), user.id.clone());
    let who = format!("user:{}", user.id);
    state.store(move |db| db.remove_totp(&tid, &who, &uid)).await?;
    Ok(see_other(&crate::web::urls::account(&tenant.slug, None)))
}

/// POST `/t/{tenant}/account/recovery-codes`: ten new codes, the old ones void.
pub(super) async fn regenerate_codes(
    req: HttpRequest,
    InTenant(tenant): InTenant,
    state: web::Data<AppState>,
    form: FormParams,
) -> Result<HttpResponse, AppError> {
    let (tenant, _, user) = match super::account::account_form(&req, tenant, &state, &form).await? {
        Ok(found) => found,
        Err(to_login) => return Ok(to_login),
    };
    if !has_factor(&state, &tenant, &user.id).await? {
        return Ok(see_other(&crate::web::urls::account(&tenant.slug, None)));
    }
    let codes = recovery::generate(&*state.rng);
    let hashes: Vec<String> = codes.iter().map(|c| recovery::hash(c)).collect();
    let (tid, uid) = (tenant.id.clone(), user.id.clone());
    state
        .store(move |db| db.replace_recovery_codes(&tid, &uid, &hashes))
        .await?;
    codes_page(
        &state,
        &req,
        &tenant,
        codes,
        &crate::web::urls::account(&tenant.slug, None),
    )
}
