//! Second factors in the sign-in lifecycle: what a session still owes (a verification or an
//! enrolment), marking it, and finishing the step with a new session id carrying the added
//! methods. The pages that collect a factor are `login`'s.

use crate::flow::audit::audit;
use crate::flow::session::{self, redirect_into_session};
use crate::state::AppState;
use crate::web::blocking::Blocking;
use crate::web::errors::AppError;
use crate::web::respond::{add_cookie, json_redirect};
use actix_web::{HttpRequest, HttpResponse};
use latchkey_core::{FactorDue, MfaMethod, MfaMode, NewAuditEvent, Session, Tenant, User};
use latchkey_session::SessionId;
use latchkey_store::{MfaRepo, UserRepo};
use serde_json::json;

/// This browser's session and user, second factor done or not.
pub(crate) async fn any_session(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
) -> Result<Option<(SessionId, Session, User)>, AppError> {
    let Some((id, s)) = session::current(state, req, tenant).await? else {
        return Ok(None);
    };
    let (tid, uid) = (tenant.id.clone(), s.user_id.clone());
    Ok(state
        .store(move |db| db.user(&tid, &uid))
        .await?
        .filter(|u| session::session_valid_for(&s, u))
        .map(|u| (id, s, u)))
}

/// How many second factors the user has: a confirmed authenticator app and each passkey;
/// with `before`, only those set up before that time.
async fn factor_count(
    state: &AppState,
    tenant: &Tenant,
    user: &latchkey_core::UserId,
    before: Option<i64>,
) -> Result<usize, AppError> {
    let (tid, uid) = (tenant.id.clone(), user.clone());
    let counts = move |at: i64| before.is_none_or(|limit| at < limit);
    state
        .store(move |db| {
            let totp = db
                .totp(&tid, &uid)?
                .and_then(|f| f.confirmed_at)
                .is_some_and(counts);
            let passkeys = db.passkeys(&tid, &uid)?;
            let keys = passkeys.iter().filter(|p| counts(p.created_at)).count();
            Ok::<_, latchkey_store::StoreError>(usize::from(totp) + keys)
        })
        .await
}

/// Whether the user has a second factor.
pub(crate) async fn has_factor(
    state: &AppState,
    tenant: &Tenant,
    user: &latchkey_core::UserId,
) -> Result<bool, AppError> {
    Ok(factor_count(state, tenant, user, None).await? > 0)
}

/// Removing one factor would leave none while the tenant requires MFA (W7).
pub(crate) async fn is_last_factor(state: &AppState, tenant: &Tenant, user: &User) -> Result<bool, AppError> {
    Ok(tenant.policy.mfa_mode() == MfaMode::Required
        && factor_count(state, tenant, &user.id, None).await? <= 1)
}

/// Whether the user has an authenticator app set up (confirmed).
pub(crate) async fn has_totp(
    state: &AppState,
    tenant: &Tenant,
    user: &latchkey_core::UserId,
) -> Result<bool, AppError> {
    let (tid, uid) = (tenant.id.clone(), user.clone());
    Ok(state
        .store(move |db| db.totp(&tid, &uid))
        .await?
        .is_some_and(|f| f.confirmed_at.is_some()))
}

/// What a session of `user` still owes before it signs anyone in: a verification when the user
/// has a factor, an enrolment when the tenant requires one and the user has none.
pub(crate) async fn due_for(
    state: &AppState,
    tenant: &Tenant,
    user: &User,
) -> Result<Option<FactorDue>, AppError> {
    if has_factor(state, tenant, &user.id).await? {
        return Ok(Some(FactorDue::Verify));
    }
    let must = tenant.policy.mfa_mode() == MfaMode::Required && can_enrol(tenant);
    Ok(must.then_some(FactorDue::Enrol))
}

/// What a signed-in user must do to reach a stronger context (`acr_values`): verify a factor
/// they had before this session started; `None` when there is none. A step-up never offers an
/// enrolment, and a factor set up during the session does not count: whoever holds only the
/// password must not reach the strongest `acr` by adding a factor of their own.
pub(crate) async fn due_for_step_up(
    state: &AppState,
    tenant: &Tenant,
    user: &User,
    session_started: i64,
) -> Result<Option<FactorDue>, AppError> {
    let earlier = factor_count(state, tenant, &user.id, Some(session_started)).await?;
    Ok((earlier > 0).then_some(FactorDue::Verify))
}

/// The tenant lets users set up some second factor.
pub(crate) fn can_enrol(tenant: &Tenant) -> bool {
    tenant.policy.allows(MfaMethod::Totp) || tenant.policy.allows(MfaMethod::Passkey)
}

/// Where a session owing `due` goes, continuing to `next` afterwards.
pub(crate) fn page_for(tenant: &Tenant, due: FactorDue, next: &str) -> String {
    match due {
        FactorDue::Verify => crate::web::urls::second_factor(&tenant.slug, next),
        FactorDue::Enrol => crate::web::urls::authenticator(&tenant.slug, next),
    }
}

/// Marks the session as owing a second factor and returns where the browser goes, or `None`
/// when nothing is owed.
pub(crate) async fn require_if_due(
    state: &AppState,
    tenant: &Tenant,
    user: &User,
    sid: &SessionId,
    s: &mut Session,
    next: &str,
) -> Result<Option<String>, AppError> {
    let Some(due) = due_for(state, tenant, user).await? else {
        return Ok(None);
    };
    s.factor_due = Some(due);
    session::save(state, tenant, sid, s).await?;
    Ok(Some(page_for(tenant, due, next)))
}

/// Finishes the sign-in: a new session id carrying the added methods, then on to `next`.
pub(crate) async fn complete(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    (sid, old): (&SessionId, &Session),
    added: &[&str],
    next: &str,
) -> Result<(HttpResponse, SessionId), AppError> {
    let mut amr = old.amr.clone();
    for m in added {
        if !amr.iter().any(|a| a == m) {
            amr.push((*m).to_owned());
        }
    }
    let (new_id, mut fresh) =
        session::start(state, req, tenant, &old.user_id, amr.clone(), Some(sid)).await?;
    fresh.must_change_password = old.must_change_password;
    session::save(state, tenant, &new_id, &fresh).await?;
    let who = format!("user:{}", old.user_id);
    audit(
        state,
        tenant,
        NewAuditEvent::success(&who, "login.second_factor", who.clone(), json!({"amr": amr})),
    )
    .await?;
    let mut res = redirect_into_session(state, tenant, next, &new_id)?;
    // Every factor done: the device, network and place become known for the user.
    add_cookie(
        &mut res,
        crate::flow::risk::remember(state, req, tenant, &old.user_id, None).await?,
    )?;
    Ok((res, new_id))
}

/// `complete` for the passkey script: 200 `{redirect}` with the new session cookie.
pub(crate) async fn complete_json(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    session_now: (&SessionId, &Session),
    added: &[&str],
    next: &str,
) -> Result<HttpResponse, AppError> {
    let (res, _) = complete(state, req, tenant, session_now, added, next).await?;
    json_redirect(&res, &json!({"redirect": next}))
}
