//! `/admin/t/{tenant}/users/{id}/sessions…`: a helpdesk's view of where a user is signed in,
//! and ending those sessions with the applications' tokens tied to them, as the user's own
//! account page does. Reads need a reader token, ends the admin role; all are audited.

use super::{audit, authenticate, json_ok, not_found};
use crate::flow::grants::{Owned, revoke_grants};
use crate::state::AppState;
use crate::web::blocking::Blocking;
use crate::web::errors::AppError;
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_core::{Outcome, Tenant, UnixMillis, UserId};
use latchkey_store::UserRepo;
use serde_json::json;

/// The user, when they are in the tenant (else the tenant's 404).
async fn user_in(state: &AppState, tenant: &Tenant, id: &str) -> Result<UserId, AppError> {
    let (tid, uid) = (tenant.id.clone(), UserId(id.to_owned()));
    let found = state.store(move |db| db.user(&tid, &uid)).await?;
    found.map(|u| u.id).ok_or_else(|| not_found("user"))
}

/// A live session as a helpdesk sees it.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub(super) struct SessionView {
    /// A key naming the session, never its cookie.
    id: String,
    created_at: UnixMillis,
    last_seen: UnixMillis,
    auth_time: UnixMillis,
    amr: Vec<String>,
    acr: Option<String>,
    ip: Option<String>,
    user_agent: Option<String>,
    idle_deadline: UnixMillis,
    absolute_deadline: UnixMillis,
}

#[derive(serde::Serialize, schemars::JsonSchema)]
pub(super) struct SessionEnded {
    ended: &'static str,
    id: String,
    grants_revoked: usize,
}

#[derive(serde::Serialize, schemars::JsonSchema)]
pub(super) struct SessionsEnded {
    sessions_ended: u64,
    grants_revoked: usize,
}

/// `GET …/users/{id}/sessions`: the live sessions, newest first: `id` (a key naming the
/// session, never its cookie), times, how the user signed in, address and browser.
pub(super) async fn list(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    async {
        let (slug, id) = path.into_inner();
        let caller = authenticate(&req, &state, &slug).await?;
        let uid = user_in(&state, &caller.tenant, &id).await?;
        let mut sessions = state
            .ephemeral
            .list_user_sessions(&caller.tenant.id, &uid)
            .await?;
        sessions.sort_by_key(|(_, s)| std::cmp::Reverse(s.created_at));
        let shown: Vec<SessionView> = sessions
            .into_iter()
            .map(|(id, s)| SessionView {
                id,
                created_at: s.created_at,
                last_seen: s.last_seen,
                auth_time: s.auth_time,
                amr: s.amr,
                acr: s.acr,
                ip: s.ip,
                user_agent: s.user_agent,
                idle_deadline: s.idle_deadline,
                absolute_deadline: s.absolute_deadline,
            })
            .collect();
        let target = format!("user:{uid}");
        let details = json!({"sessions": shown.len()});
        audit(
            &state,
            &caller,
            Outcome::Success,
            "session.list",
            &target,
            details,
        )
        .await?;
        Ok(json_ok(&shown))
    }
    .await
    .map_err(AppError::problem)
}

/// `DELETE …/users/{id}/sessions/{session}`: ends one session and revokes the grants made in
/// it; 404 for a session that is not this user's.
pub(super) async fn end_one(
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    async {
        let (slug, id, key) = path.into_inner();
        let caller = authenticate(&req, &state, &slug).await?;
        let uid = user_in(&state, &caller.tenant, &id).await?;
        let t = &caller.tenant;
        let owned = state
            .ephemeral
            .list_user_sessions(&t.id, &uid)
            .await?
            .into_iter()
            .any(|(k, _)| k == key);
        if !owned || !state.ephemeral.delete_session_by_key(&t.id, &key).await? {
            return Err(not_found("session"));
        }
        let grants = revoke_grants(&state, t, Owned::Session(key.clone()), "admin_revoked").await?;
        let target = format!("user:{uid}");
        let details = json!({"session": key.get(..16), "grants": grants});
        audit(
            &state,
            &caller,
            Outcome::Success,
            "session.revoke",
            &target,
            details,
        )
        .await?;
        Ok(json_ok(&SessionEnded {
            ended: "session",
            id: key,
            grants_revoked: grants,
        }))
    }
    .await
    .map_err(AppError::problem)
}

/// `DELETE …/users/{id}/sessions`: signs the user out everywhere and revokes every grant of
/// theirs (offline ones too), as "sign out everywhere" on the account page does.
pub(super) async fn end_all(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    async {
        let (slug, id) = path.into_inner();
        let caller = authenticate(&req, &state, &slug).await?;
        let uid = user_in(&state, &caller.tenant, &id).await?;
        let t = &caller.tenant;
        let sessions = state.ephemeral.delete_user_sessions(&t.id, &uid).await?;
        let grants = revoke_grants(&state, t, Owned::User(uid.clone()), "admin_signed_out").await?;
        let target = format!("user:{uid}");
        let details = json!({"sessions": sessions, "grants": grants});
        audit(
            &state,
            &caller,
            Outcome::Success,
            "session.revoke_all",
            &target,
            details,
        )
        .await?;
        Ok(json_ok(&SessionsEnded {
            sessions_ended: sessions,
            grants_revoked: grants,
        }))
    }
    .await
    .map_err(AppError::problem)
}
