//! Browser sessions: a 256-bit random id in a cookie named per tenant (`__Host-` prefixed,
//! Secure, HttpOnly, SameSite=Lax, Path=/; without prefix and Secure only on an http loopback
//! development issuer), stored server-side under its SHA-256 with idle and absolute deadlines.

use crate::state::AppState;
use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, SameSite};
use latchkey_core::{Session, Tenant, UserId};
use latchkey_session::{Result, SessionId};
use std::time::Duration;

/// A cookie name with the `__Host-` prefix (Secure, Path=/, no Domain), dropped only on an
/// http loopback development issuer, where browsers refuse the prefix.
pub fn host_cookie_name(state: &AppState, name: &str) -> String {
    if state.config.insecure_public_url() {
        name.to_owned()
    } else {
        format!("__Host-{name}")
    }
}

/// The session cookie's name for a tenant (each tenant keeps its own session).
pub fn cookie_name(state: &AppState, tenant: &Tenant) -> String {
    host_cookie_name(state, &format!("lk-session-{}", tenant.slug))
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

fn ttl(s: &Session, now: i64) -> Duration {
    Duration::from_millis(
        u64::try_from(s.idle_deadline.min(s.absolute_deadline) - now)
            .unwrap_or(1)
            .max(1),
    )
}

/// Starts a session after authentication, always under a new id (fixation defence, L1).
pub async fn start(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    user: &UserId,
    amr: Vec<String>,
    previous: Option<&SessionId>,
) -> Result<(SessionId, Session)> {
    if let Some(old) = previous {
        state.ephemeral.delete_session(&tenant.id, old).await?;
    }
    let now = state.clock.now_millis();
    let policy = &tenant.policy.session;
    let absolute = now + i64::from(policy.absolute_timeout_secs) * 1000;
    let session = Session {
        tenant_id: tenant.id.clone(),
        user_id: user.clone(),
        auth_time: now,
        amr,
        acr: None,
        created_at: now,
        idle_deadline: (now + i64::from(policy.idle_timeout_secs) * 1000).min(absolute),
        absolute_deadline: absolute,
        device_id: None,
        risk: None,
        user_agent: req
            .headers()
            .get(actix_web::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(200).collect()),
        ip: crate::net::client_addr(req).map(|a| a.to_string()),
        last_seen: now,
        must_change_password: false,
        factor_due: None,
    };
    let id = SessionId::generate(&*state.rng);
    state
        .ephemeral
        .put_session(&tenant.id, &id, &session, ttl(&session, now))
        .await?;
    Ok((id, session))
}

/// The request's live session for this tenant, its idle deadline moved forward; expired
/// sessions are deleted and count as none (L2: enforced on the server, not by the cookie).
pub async fn current(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
) -> Result<Option<(SessionId, Session)>> {
    let Some(c) = req.cookie(&cookie_name(state, tenant)) else {
        return Ok(None);
    };
    if c.value().len() != 43 {
        return Ok(None);
    }
    let id = SessionId::from_cookie(c.value());
    let Some(mut s) = state.ephemeral.get_session(&tenant.id, &id).await? else {
        return Ok(None);
    };
    let now = state.clock.now_millis();
    if s.tenant_id != tenant.id || now >= s.idle_deadline || now >= s.absolute_deadline {
        state.ephemeral.delete_session(&tenant.id, &id).await?;
        return Ok(None);
    }
    s.idle_deadline =
        (now + i64::from(tenant.policy.session.idle_timeout_secs) * 1000).min(s.absolute_deadline);
    s.last_seen = now;
    state
        .ephemeral
        .put_session(&tenant.id, &id, &s, ttl(&s, now))
        .await?;
    Ok(Some((id, s)))
}

/// Stores a changed session under the same id.
pub async fn save(state: &AppState, tenant: &Tenant, id: &SessionId, s: &Session) -> Result<()> {
    let now = state.clock.now_millis();
    state.ephemeral.put_session(&tenant.id, id, s, ttl(s, now)).await
}
