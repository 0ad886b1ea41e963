//! CSRF defence for every state-changing form (SECURITY-TESTS L5): a token bound to the session
//! (or, before sign-in, to a pre-session cookie), compared in constant time; plus `Origin` and
//! `Sec-Fetch-Site` checks where the browser sends them.

use crate::state::AppState;
use crate::web::cookies::{cookie, host_cookie_name};
use crate::web::errors::AppError;
use crate::web::respond::html;
use actix_web::HttpRequest;
use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use latchkey_core::Tenant;
use subtle::ConstantTimeEq;

/// The pre-session cookie that binds the sign-in form's token.
pub fn presession_cookie_name(state: &AppState, tenant: &Tenant) -> String {
    host_cookie_name(state, &format!("lk-form-{}", tenant.slug))
}

/// The token a form carries, derived from the value it is bound to (a session id or the
/// pre-session cookie), so it can't be used with another session.
pub fn token_for(binding: &str) -> String {
    latchkey_core::sha256_hex(format!("latchkey-csrf-v1:{binding}").as_bytes())
}

/// Checks the form's token against its binding and the request's origin.
pub fn check(state: &AppState, req: &HttpRequest, binding: Option<&str>, presented: Option<&str>) -> bool {
    if !same_origin(state, req) {
        return false;
    }
    match (binding, presented) {
        (Some(b), Some(p)) => bool::from(token_for(b).as_bytes().ct_eq(p.as_bytes())),
        _ => false,
    }
}

/// Whether the request may come from our own pages: not `Sec-Fetch-Site: cross-site`, and no
/// `Origin` other than ours.
pub fn same_origin(state: &AppState, req: &HttpRequest) -> bool {
    if req
        .headers()
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "cross-site")
    {
        return false;
    }
    // Browsers send `Origin: null` for same-origin form posts under `Referrer-Policy:
    // no-referrer`; that tells nothing, so only a real, different origin is refused.
    if let Some(origin) = req
        .headers()
        .get("origin")
        .and_then(|v| v.to_str().ok())
        .filter(|o| *o != "null")
    {
        let ours = url::Url::parse(&state.config.public_url)
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_default();
        if origin != ours {
            return false;
        }
    }
    true
}

/// The pre-session value binding a signed-out form's CSRF token, made on first view.
pub(crate) fn presession(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
) -> (String, Option<actix_web::cookie::Cookie<'static>>) {
    let name = presession_cookie_name(state, tenant);
    if let Some(c) = req.cookie(&name).filter(|c| c.value().len() == 43) {
        (c.value().to_owned(), None)
    } else {
        let v = latchkey_core::random_token(&*state.rng, 32);
        (v.clone(), Some(cookie(state, name, v)))
    }
}

/// The CSRF check of a signed-out form (sign-in, forgotten password).
pub(crate) fn presession_csrf_ok(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    presented: Option<&str>,
) -> bool {
    let binding = req
        .cookie(&presession_cookie_name(state, tenant))
        .map(|c| c.value().to_owned());
    check(state, req, binding.as_deref(), presented)
}

/// Renders a signed-out page whose form token is bound to the pre-session cookie.
pub(crate) fn with_presession<F>(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    status: StatusCode,
    render: F,
) -> Result<HttpResponse, AppError>
where
    F: FnOnce(String) -> Result<String, askama::Error>,
{
    let (binding, new_cookie) = presession(state, req, tenant);
    let mut res = html(state, req, status, render(token_for(&binding)))?;
    if let Some(c) = new_cookie {
        res.add_cookie(&c).map_err(|e| AppError::internal("cookie", e))?;
    }
    Ok(res)
}
