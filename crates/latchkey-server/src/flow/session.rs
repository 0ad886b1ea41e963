//! Browser sessions: a 256-bit random id in a cookie named per tenant (`__Host-` prefixed,
//! Secure, HttpOnly, SameSite=Lax, Path=/; without prefix and Secure only on an http loopback
//! development issuer), stored server-side under its SHA-256 with idle and absolute deadlines.

use crate::state::AppState;
use crate::web::blocking::Blocking;
use crate::web::cookies::{cookie, host_cookie_name, removal};
use crate::web::errors::AppError;
use crate::web::respond::see_other;
use actix_web::{HttpRequest, HttpResponse};
use latchkey_core::{Session, Tenant, User, UserId, UserStatus};
use latchkey_session::{Result, SessionId};
use latchkey_store::UserRepo;
use std::time::Duration;

/// The session cookie's name for a tenant (each tenant keeps its own session).
pub fn cookie_name(state: &AppState, tenant: &Tenant) -> String {
    host_cookie_name(state, &format!("lk-session-{}", tenant.slug))
}

fn ttl(session: &Session, now: i64) -> Duration {
    Duration::from_millis(
        u64::try_from(session.idle_deadline.min(session.absolute_deadline) - now)
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
        ip: crate::web::net::client_addr(req).map(|a| a.to_string()),
        last_seen: now,
        must_change_password: false,
        factor_due: None,
        federated: None,
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
pub async fn save(state: &AppState, tenant: &Tenant, id: &SessionId, session: &Session) -> Result<()> {
    let now = state.clock.now_millis();
    state
        .ephemeral
        .put_session(&tenant.id, id, session, ttl(session, now))
        .await
}

/// A 303 to the sign-in page with a notice that deletes the session cookie.
pub(crate) fn redirect_signed_out(
    state: &AppState,
    tenant: &Tenant,
    notice: &str,
) -> Result<HttpResponse, AppError> {
    let mut res = see_other(&crate::web::urls::login(
        &tenant.slug,
        Some(&format!("{notice}=1")),
    ));
    res.add_cookie(&removal(state, cookie_name(state, tenant)))
        .map_err(|e| AppError::internal("cookie", e))?;
    Ok(res)
}

/// A 303 to `location` that hands the browser its (new) session cookie.
pub(crate) fn redirect_into_session(
    state: &AppState,
    tenant: &Tenant,
    location: &str,
    id: &latchkey_session::SessionId,
) -> Result<HttpResponse, AppError> {
    let mut res = see_other(location);
    res.add_cookie(&cookie(
        state,
        cookie_name(state, tenant),
        id.cookie_value().to_owned(),
    ))
    .map_err(|e| AppError::internal("cookie", e))?;
    Ok(res)
}

/// The user may sign in and the session is not older than an administrator's reset.
pub(crate) fn session_valid_for(session: &latchkey_core::Session, u: &User) -> bool {
    u.status == UserStatus::Active && u.sessions_not_before.is_none_or(|nb| session.created_at >= nb)
}

/// The signed-in user of this tenant, or `None` (expired, signed out, deleted or disabled).
pub(crate) async fn signed_in(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
) -> Result<Option<(latchkey_session::SessionId, latchkey_core::Session, User)>, AppError> {
    let Some((id, s)) = current(state, req, tenant).await? else {
        return Ok(None);
    };
    // Half signed in: the second factor is still due.
    if s.factor_due.is_some() {
        return Ok(None);
    }
    let (tid, uid) = (tenant.id.clone(), s.user_id.clone());
    match state.store(move |db| db.user(&tid, &uid)).await? {
        Some(u) if session_valid_for(&s, &u) => Ok(Some((id, s, u))),
        _ => {
            state.ephemeral.delete_session(&tenant.id, &id).await?;
            Ok(None)
        }
    }
}
