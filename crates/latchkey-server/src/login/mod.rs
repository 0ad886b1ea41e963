//! Sign-in, sign-out, the account page and password reset: server-rendered (askama,
//! auto-escaped), usable without JavaScript. Unknown users and wrong passwords get the same
//! page, status and hashing work; attempts are throttled per account and per address; every
//! change is audited. `interaction` is the handoff other flows (OIDC) use to send a user here
//! and get them back signed in.

mod account;
mod attributes;
mod deletion;
mod factor;
mod invitation;
mod passkey;
mod privacy;
mod reset;
mod signin;
mod signup;
mod verify;

// The lifecycle and kit pieces the pages here use (visible to the submodules).
use crate::flow::audit::{audit, failure};
use crate::flow::csrf::{self, presession_csrf_ok, with_presession};
use crate::flow::interaction::{self, allow_continuation};
use crate::flow::session::{self, redirect_into_session, redirect_signed_out, signed_in};
use crate::flow::throttle;
use crate::flow::users::{find_user, hashing_error};
use crate::state::AppState;
use crate::web::blocking::Blocking;
use crate::web::errors::AppError;
use crate::web::i18n::{self, Strings};
use crate::web::respond::{
    checked_return_to, client_ip, html, logo, query_param, retry_after, safe_return_to, see_other, strings,
    strings_with,
};
use crate::web::tenant::InTenant;
use actix_web::http::header;
use actix_web::{HttpResponse, web};
use latchkey_core::{Tenant, User};
use latchkey_mfa::PasswordError;
use latchkey_store::UserRepo;

/// The sign-in and account routes, relative to the tenant scope `/t/{tenant}`.
pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/login", web::get().to(signin::login_page))
        .route("/login", web::post().to(signin::login_submit))
        .route("/logout", web::post().to(signin::logout))
        .route("/account", web::get().to(account::account))
        .route("/account/password", web::post().to(account::change_password))
        .route("/account/profile", web::post().to(account::update_profile))
        .route("/account/attributes", web::post().to(attributes::update))
        .route(
            "/account/sessions/revoke",
            web::post().to(account::revoke_session),
        )
        .route(
            "/account/sessions/revoke-all",
            web::post().to(account::revoke_all_sessions),
        )
        .route("/account/apps/revoke", web::post().to(account::revoke_app))
        .route("/account/delete", web::post().to(deletion::with_password))
        .route("/account/export", web::post().to(privacy::download))
        .route(
            "/account/delete/passkey/options",
            web::post().to(deletion::passkey_options),
        )
        .route(
            "/account/delete/passkey",
            web::post().to(deletion::passkey_finish),
        )
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
        .route("/brand.css", web::get().to(brand_css));
    onboarding(cfg);
}

/// How people get an account and prove their address: sign-up, email verification, password
/// reset and invitations.
fn onboarding(cfg: &mut web::ServiceConfig) {
    cfg.route("/signup", web::get().to(signup::signup_page))
        .route("/signup", web::post().to(signup::signup_submit))
        .route("/email/verify", web::get().to(verify::verify_page))
        .route("/email/verify", web::post().to(verify::verify_submit))
        .route("/email/unverified", web::get().to(verify::unverified_page))
        .route("/email/resend", web::post().to(verify::resend))
        .route("/password/forgot", web::get().to(reset::forgot_page))
        .route("/password/forgot", web::post().to(reset::forgot_submit))
        .route("/password/reset", web::get().to(reset::reset_page))
        .route("/password/reset", web::post().to(reset::reset_submit))
        .route("/invitation", web::get().to(invitation::page))
        .route("/invitation", web::post().to(invitation::submit))
        .route(
            "/invitation/passkey/options",
            web::post().to(invitation::passkey_options),
        )
        .route("/invitation/passkey", web::post().to(invitation::passkey_finish));
}

/// Why `new` can't be the user's next password (the tenant's policy, or reuse of the current or
/// a remembered password), in the reader's language; `None` when it can.
async fn new_password_problem(
    state: &AppState,
    strings: &Strings,
    tenant: &Tenant,
    user: &User,
    new: &str,
) -> Result<Option<String>, AppError> {
    let ids: Vec<&str> = std::iter::once(user.username.as_str())
        .chain(user.email.as_deref())
        .collect();
    match latchkey_mfa::check_password_policy(new, &tenant.policy.password, &ids) {
        Err(PasswordError::Policy(v)) => return Ok(Some(i18n::policy_message(strings, &v))),
        Err(e) => return Err(hashing_error(e)),
        Ok(()) => {}
    }
    let (tid, uid, n) = (tenant.id.clone(), user.id.clone(), tenant.policy.password.history);
    let mut previous = state.store(move |db| db.password_history(&tid, &uid, n)).await?;
    previous.extend(user.password_hash.clone());
    for old in previous {
        let reused = state
            .hasher
            .verify(new.to_owned(), Some(old))
            .await
            .map_err(hashing_error)?;
        if reused.matches {
            return Ok(Some(strings.password_reused.into()));
        }
    }
    Ok(None)
}

pub(crate) async fn passkey_js() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(include_str!("../../assets/passkey.js"))
}

/// The tenant's colours as a stylesheet (inline styles are forbidden by the CSP).
async fn brand_css(InTenant(tenant): InTenant) -> Result<HttpResponse, AppError> {
    let color = tenant
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
