//! The pending-interaction handoff: how a flow that needs a signed-in user (the OIDC
//! authorization endpoint) sends the browser to the sign-in page and gets it back.
//!
//! The flow stores what it needs (the validated request) server-side and gets an opaque,
//! 256-bit reference that expires (30 minutes, like Keycloak's login timeout) and is taken once.
//! The browser only ever sees `/t/{tenant}/login?interaction={id}`: the request itself is never
//! in a URL the user can edit, and where to continue is stored, not read from the browser. The
//! reference is also bound to the browser that started it by a cookie, so a link to someone
//! else's sign-in request leads nowhere.
//!
//! A flow calls `throttle::admit_pending` before `begin`: one client address may leave only so
//! many interactions pending per window.

use crate::state::AppState;
use crate::web::cookies;
use crate::web::errors::AppError;
use actix_web::HttpRequest;
use actix_web::HttpResponse;
use actix_web::cookie::Cookie;
use latchkey_core::Tenant;
use latchkey_session::Result;
use serde::{Deserialize, Serialize};
use std::time::Duration;

pub const TTL: Duration = Duration::from_secs(30 * 60);

/// What the starting flow hands over.
#[derive(Debug, Clone, Default)]
pub struct NewInteraction {
    /// Where to continue once signed in: a path of this tenant chosen by the server. The
    /// reference is appended as `interaction={id}`.
    pub resume: String,
    /// `login_hint`: prefills the username.
    pub login_hint: Option<String>,
    /// `ui_locales`: the sign-in pages' language.
    pub ui_locales: Option<String>,
    /// Shown as "to continue to …".
    pub client_name: Option<String>,
    /// Where the flow ends up (the client's redirect URI): the sign-in pages' forms may lead there.
    pub continues_to: Option<String>,
    /// The request asks for a fresh sign-in (`prompt=login`, `max_age`): a federated sign-in
    /// must not reuse the IdP's session (SAML `ForceAuthn`).
    pub fresh_login: bool,
    /// Whatever the flow needs to finish (the validated authorization request); opaque here.
    pub request: serde_json::Value,
}

/// A pending interaction as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Interaction {
    pub resume: String,
    pub login_hint: Option<String>,
    pub ui_locales: Option<String>,
    pub client_name: Option<String>,
    #[serde(default)]
    pub continues_to: Option<String>,
    #[serde(default)]
    pub fresh_login: bool,
    pub request: serde_json::Value,
    pub expires_at: i64,
    /// SHA-256 of the browser-binding cookie's value.
    binding: String,
}

impl Interaction {
    /// Where the browser goes once signed in.
    pub fn resume_url(&self, id: &str) -> String {
        let sep = if self.resume.contains('?') { '&' } else { '?' };
        format!("{}{sep}interaction={id}", self.resume)
    }
}

/// A started interaction: its reference and the cookie binding it to this browser.
pub struct Started {
    pub id: String,
    pub cookie: Cookie<'static>,
}

impl Started {
    pub fn login_url(&self, tenant: &Tenant) -> String {
        crate::web::urls::login(&tenant.slug, Some(&format!("interaction={}", self.id)))
    }
}

fn store_key(id: &str) -> String {
    format!("interaction:{}", latchkey_core::sha256_hex(id.as_bytes()))
}

/// The binding cookie's name: one per interaction, so several tabs can sign in at once.
pub fn cookie_name(state: &AppState, tenant: &Tenant, id: &str) -> String {
    let short = id.get(..12).unwrap_or(id);
    cookies::host_cookie_name(state, &format!("lk-ia-{}-{short}", tenant.slug))
}

/// The binding cookie's value this request carries for interaction `id`.
pub fn binding(state: &AppState, req: &HttpRequest, tenant: &Tenant, id: &str) -> Option<String> {
    req.cookie(&cookie_name(state, tenant, id))
        .map(|c| c.value().to_owned())
}

/// Stores a pending interaction and returns its reference and binding cookie.
pub async fn begin(state: &AppState, tenant: &Tenant, new: NewInteraction) -> Result<Started> {
    let id = latchkey_core::random_token(&*state.rng, 32);
    let bind = latchkey_core::random_token(&*state.rng, 32);
    let stored = Interaction {
        resume: new.resume,
        login_hint: new.login_hint,
        ui_locales: new.ui_locales,
        client_name: new.client_name,
        continues_to: new.continues_to,
        fresh_login: new.fresh_login,
        request: new.request,
        expires_at: state.clock.now_millis() + TTL.as_millis() as i64,
        binding: latchkey_core::sha256_hex(bind.as_bytes()),
    };
    let bytes =
        serde_json::to_vec(&stored).map_err(|e| latchkey_session::SessionError::Corrupt(e.to_string()))?;
    state
        .ephemeral
        .put_once(&tenant.id, &store_key(&id), &bytes, TTL)
        .await?;
    let mut cookie = cookies::cookie(state, cookie_name(state, tenant, &id), bind);
    cookie.set_max_age(actix_web::cookie::time::Duration::seconds(TTL.as_secs() as i64));
    Ok(Started { id, cookie })
}

fn decode(state: &AppState, bytes: Option<Vec<u8>>, binding: Option<&str>) -> Option<Interaction> {
    let i: Interaction = serde_json::from_slice(&bytes?).ok()?;
    let presented = latchkey_core::sha256_hex(binding?.as_bytes());
    let bound = subtle::ConstantTimeEq::ct_eq(presented.as_bytes(), i.binding.as_bytes());
    (bool::from(bound) && state.clock.now_millis() < i.expires_at).then_some(i)
}

/// The pending interaction `id`, left in place; `None` when unknown, expired, or started by
/// another browser (`binding` is the cookie value this browser presented).
pub async fn load(
    state: &AppState,
    tenant: &Tenant,
    id: &str,
    binding: Option<&str>,
) -> Result<Option<Interaction>> {
    if id.len() != 43 {
        return Ok(None);
    }
    let bytes = state.ephemeral.peek(&tenant.id, &store_key(id)).await?;
    Ok(decode(state, bytes, binding))
}

/// Takes the pending interaction `id` for good: of any number of concurrent finishes, one gets
/// it. A browser that did not start it gets `None` and leaves it in place.
pub async fn finish(
    state: &AppState,
    tenant: &Tenant,
    id: &str,
    binding: Option<&str>,
) -> Result<Option<Interaction>> {
    if load(state, tenant, id, binding).await?.is_none() {
        return Ok(None);
    }
    let bytes = state.ephemeral.take(&tenant.id, &store_key(id)).await?;
    Ok(decode(state, bytes, binding))
}

/// When `return_to` continues a pending interaction that ends at a client, lets the page's
/// forms lead there (browsers check `form-action` on every redirect of a form submission).
pub(crate) async fn allow_continuation(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    res: &mut HttpResponse,
    return_to: &str,
) -> Result<(), AppError> {
    let Some(id) = return_to.split("interaction=").nth(1) else {
        return Ok(());
    };
    let id = id.split('&').next().unwrap_or_default();
    let binding = binding(state, req, tenant, id);
    if let Some(dest) = load(state, tenant, id, binding.as_deref())
        .await?
        .and_then(|i| i.continues_to)
    {
        crate::web::observe::allow_form_action(res, &dest);
    }
    Ok(())
}

/// What a sign-in through a connection, started with `?interaction=`, carries on: where to go
/// once signed in, whether a fresh authentication is asked for (`prompt=login`, `max_age`), and
/// the portal's `login_hint`.
#[derive(Debug, Default)]
pub(crate) struct Onward {
    pub resume: Option<String>,
    pub fresh: bool,
    pub login_hint: Option<String>,
}

/// The `interaction` this request names, as an [`Onward`]; without one, an empty one.
/// `Ok(Err(page))`: it is unknown, expired or another browser's, and the page says so.
pub(crate) async fn onward(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
) -> Result<std::result::Result<Onward, HttpResponse>, AppError> {
    let Some(id) = crate::web::respond::query_param(req, "interaction").filter(|i| !i.is_empty()) else {
        return Ok(Ok(Onward::default()));
    };
    let binding = binding(state, req, tenant, &id);
    Ok(match load(state, tenant, &id, binding.as_deref()).await? {
        Some(i) => Ok(Onward {
            resume: Some(i.resume_url(&id)),
            fresh: i.fresh_login,
            login_hint: i.login_hint,
        }),
        None => Err(crate::web::pages::message_response(
            actix_web::http::StatusCode::BAD_REQUEST,
            "Sign-in expired",
            "This sign-in request has expired or belongs to another browser. Go back to the application and start again.",
        )),
    })
}
