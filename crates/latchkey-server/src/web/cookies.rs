//! Cookies with Latchkey's attributes: `__Host-` prefixed, HttpOnly, SameSite=Lax and Secure,
//! except on an http loopback development issuer.

use crate::state::AppState;
use actix_web::cookie::{Cookie, SameSite};

/// A cookie name with the `__Host-` prefix (Secure, Path=/, no Domain), dropped only on an
/// http loopback development issuer, where browsers refuse the prefix.
pub fn host_cookie_name(state: &AppState, name: &str) -> String {
    if state.config.insecure_public_url() {
        name.to_owned()
    } else {
        format!("__Host-{name}")
    }
}

/// A cookie with Latchkey's attributes.
pub fn cookie(state: &AppState, name: String, value: String) -> Cookie<'static> {
    Cookie::build(name, value)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(!state.config.insecure_public_url())
        .finish()
}

/// A cookie that deletes `name`.
pub fn removal(state: &AppState, name: String) -> Cookie<'static> {
    let mut c = cookie(state, name, String::new());
    c.make_removal();
    c
}
