//! Sign-in through a tenant's upstream OpenID Connect (or OAuth 2.0) provider: the start (code
//! flow with PKCE S256, `state` and `nonce`), the callback (the redirect URI registered
//! upstream), and the JWK Set of the connection's `private_key_jwt` key. The protocol decisions
//! are `latchkey-federation`'s and the upstream calls `latchkey-services`'; here live the
//! pending request (take-once, in the session store), its browser binding, accounts (through
//! `flow::federated`, the rules SAML uses) and the way back into the OIDC flow.
//!
//! The upstream sends the browser back with a top-level GET, so a `SameSite=Lax` cookie made for
//! this one sign-in comes with it and binds the callback to the browser that started it.

mod callback;

use crate::flow::interaction;
use crate::state::AppState;
use crate::web::blocking::Blocking;
use crate::web::errors::AppError;
use crate::web::tenant::tenant;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_core::{OidcConnection, Tenant};
use latchkey_store::UpstreamRepo;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How long a started sign-in may take upstream.
const PENDING_TTL: Duration = Duration::from_secs(15 * 60);

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/federation/{connection}/login", web::get().to(start))
        .route(
            "/federation/{connection}/callback",
            web::get().to(callback::callback),
        )
        .route("/federation/{connection}/jwks", web::get().to(jwks));
}

/// The tenant and connection a `/t/{tenant}/federation/{connection}/…` path names (404
/// otherwise).
async fn named(
    state: &AppState,
    path: web::Path<(String, String)>,
) -> Result<(Tenant, OidcConnection), AppError> {
    let (slug, name) = path.into_inner();
    let t = tenant(state, &slug).await?;
    let unknown = || AppError::not_found("There is no such sign-in connection here.");
    if latchkey_core::validate::slug(&name).is_err() {
        return Err(unknown());
    }
    let tid = t.id.clone();
    let c = state
        .store(move |db| db.oidc_connection_by_name(&tid, &name))
        .await?
        .ok_or_else(unknown)?;
    Ok((t, c))
}

/// The redirect URI of connection `c` (what the upstream has registered).
fn redirect_uri(state: &AppState, t: &Tenant, c: &OidcConnection) -> String {
    crate::web::urls::federation_callback(&state.config.issuer(&t.slug), &c.name)
}

/// A sign-in sent upstream and not answered yet, stored under the hash of its `state`.
#[derive(Debug, Serialize, Deserialize)]
struct Pending {
    connection_id: String,
    nonce: String,
    /// The PKCE code verifier (RFC 7636), never sent until the token request.
    verifier: String,
    /// Where to go once signed in (the OIDC flow's resume URL), chosen by the server.
    resume: Option<String>,
    /// SHA-256 of the binding cookie's value.
    binding: String,
    /// `prompt=login` was sent: the upstream's `auth_time` must be after `started_at`.
    fresh: bool,
    started_at: i64,
    expires_at: i64,
}

fn pending_key(state_param: &str) -> String {
    format!(
        "oidc-request:{}",
        latchkey_core::sha256_hex(state_param.as_bytes())
    )
}

fn binding_cookie_name(state: &AppState, t: &Tenant, state_param: &str) -> String {
    let short = state_param.get(..12).unwrap_or(state_param);
    crate::web::cookies::host_cookie_name(state, &format!("lk-fed-{}-{short}", t.slug))
}

/// Starts a sign-in: stores the pending request and sends the browser upstream.
async fn start(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let (t, c) = named(&state, path).await?;
    let onward = match interaction::onward(&state, &req, &t).await? {
        Ok(o) => o,
        Err(page) => return Ok(page),
    };
    let Some(endpoints) = c.endpoints() else {
        return Ok(crate::web::pages::message_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "Sign-in unavailable",
            &format!(
                "Signing in with {} is not available yet. Try again later, or contact your administrator.",
                c.display_name
            ),
        ));
    };
    crate::flow::throttle::admit_pending(&state, &req, &t).await?;
    let state_param = latchkey_core::random_token(&*state.rng, 32);
    let binding = latchkey_core::random_token(&*state.rng, 32);
    let now = state.clock.now_millis();
    let pending = Pending {
        connection_id: c.id.clone(),
        nonce: latchkey_core::random_token(&*state.rng, 32),
        verifier: latchkey_core::random_token(&*state.rng, 48),
        resume: onward.resume,
        binding: latchkey_core::sha256_hex(binding.as_bytes()),
        fresh: onward.fresh,
        started_at: now,
        expires_at: now + PENDING_TTL.as_millis() as i64,
    };
    let redirect = redirect_uri(&state, &t, &c);
    let url = latchkey_federation::authorization_url(
        &c,
        &endpoints,
        &latchkey_federation::AuthParams {
            redirect_uri: &redirect,
            state: &state_param,
            nonce: &pending.nonce,
            code_verifier: &pending.verifier,
            prompt: pending.fresh.then_some("login"),
            login_hint: onward.login_hint.as_deref(),
        },
    )
    .map_err(|e| AppError::internal("building an authorization request", e))?;
    let bytes =
        serde_json::to_vec(&pending).map_err(|e| AppError::internal("pending upstream sign-in", e))?;
    state
        .ephemeral
        .put_once(&t.id, &pending_key(&state_param), &bytes, PENDING_TTL)
        .await?;
    let mut cookie =
        crate::web::cookies::cookie(&state, binding_cookie_name(&state, &t, &state_param), binding);
    cookie.set_max_age(actix_web::cookie::time::Duration::seconds(
        PENDING_TTL.as_secs() as i64
    ));
    let mut res = crate::web::respond::see_other(&url);
    res.add_cookie(&cookie)
        .map_err(|e| AppError::internal("cookie", e))?;
    Ok(res)
}

/// The public half of the connection's `private_key_jwt` key, for the upstream to pin or fetch
/// (RFC 7517 JWK Set). 404 for a connection that authenticates with a secret.
async fn jwks(
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let (_, c) = named(&state, path).await?;
    let Some(jwk) = c.public_jwk.as_deref() else {
        return Err(AppError::not_found("This connection has no key of its own."));
    };
    let key: serde_json::Value =
        serde_json::from_str(jwk).map_err(|e| AppError::internal("the connection's public key", e))?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .json(serde_json::json!({ "keys": [key] })))
}
