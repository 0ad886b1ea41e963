//! CSRF defence for every state-changing form (SECURITY-TESTS L5): a token bound to the session
//! (or, before sign-in, to a pre-session cookie), compared in constant time; plus `Origin` and
//! `Sec-Fetch-Site` checks where the browser sends them.

use crate::state::AppState;
use actix_web::HttpRequest;
use latchkey_core::Tenant;
use subtle::ConstantTimeEq;

/// The pre-session cookie that binds the sign-in form's token.
pub fn presession_cookie_name(state: &AppState, tenant: &Tenant) -> String {
    super::session::host_cookie_name(state, &format!("lk-form-{}", tenant.slug))
}

/// The token a form carries, derived from the value it is bound to (a session id or the
/// pre-session cookie), so it can't be used with another session.
pub fn token_for(binding: &str) -> String {
    latchkey_core::sha256_hex(format!("latchkey-csrf-v1:{binding}").as_bytes())
}

/// Checks the form's token against its binding and the request's origin.
pub fn check(state: &AppState, req: &HttpRequest, binding: Option<&str>, presented: Option<&str>) -> bool {
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
    match (binding, presented) {
        (Some(b), Some(p)) => bool::from(token_for(b).as_bytes().ct_eq(p.as_bytes())),
        _ => false,
    }
}
