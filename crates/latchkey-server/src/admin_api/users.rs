//! `/admin/t/{tenant}/users…` and `/audit`: users read, paged, disabled and enabled, deleted and
//! restored; the tenant's audit log searched and exported.

use super::{
    audit, audited_read, authenticate, json_ok, key_str, missing, paged, paging, path_tenant, query,
};
use crate::state::AppState;
use crate::web::blocking::Blocking;
use crate::web::errors::{AppError, Kind};
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_core::{Outcome, UserId, UserStatus};
use latchkey_store::{AuditRepo, UserRepo};
use serde_json::json;

/// `GET /admin/t/{tenant}/users`: a page of users in username order, filtered by `status` and
/// `q` (a username or email prefix); see [`paged`].
pub(super) async fn list_users(
    req: HttpRequest,
    slug: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Query {
        limit: Option<i64>,
        cursor: Option<String>,
        status: Option<UserStatus>,
        q: Option<String>,
    }
    async {
        let caller = authenticate(&req, &state, &slug).await?;
        let q: Query = query(&req)?;
        let (limit, after) = paging(q.limit, q.cursor.as_deref())?;
        let after = after.map(|k| key_str(&k, 0)).transpose()?;
        let query = latchkey_store::UserQuery {
            after,
            limit,
            status: q.status,
            prefix: q.q.clone(),
        };
        let tid = caller.tenant.id.clone();
        let users = state.store(move |db| db.users_page(&tid, &query)).await?;
        let details = json!({"users": users.len(), "status": q.status, "q": q.q});
        audit(&state, &caller, Outcome::Success, "user.list", "users", details).await?;
        let mut filters = Vec::new();
        if let Some(st) = q.status {
            filters.push(("status", st.as_str().to_owned()));
        }
        if let Some(p) = q.q {
            filters.push(("q", p));
        }
        Ok(paged(&req, &users, limit, |u| json!([u.username]), &filters))
    }
    .await
    .map_err(AppError::problem)
}

pub(super) async fn get_user(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let (slug, id) = path.into_inner();
    let target = format!("user:{id}");
    audited_read(
        &req,
        &state,
        &slug,
        ("user.read", target, "user"),
        move |db, t| db.user(&t, &UserId(id)),
        Some(|u: &latchkey_core::User| u.updated_at),
    )
    .await
}

pub(super) async fn set_status(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
    status: UserStatus,
) -> Result<HttpResponse, AppError> {
    async {
        let (slug, id) = path.into_inner();
        let caller = authenticate(&req, &state, &slug).await?;
        let (tid, uid, actor) = (caller.tenant.id.clone(), UserId(id), caller.actor());
        let user = state
            .store(move |db| db.set_user_status(&tid, &actor, &uid, status))
            .await
            .map_err(missing("user"))?;
        Ok(json_ok(&user))
    }
    .await
    .map_err(AppError::problem)
}

pub(super) async fn disable_user(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    set_status(req, path, state, UserStatus::Disabled).await
}

pub(super) async fn enable_user(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    set_status(req, path, state, UserStatus::Active).await
}

/// `DELETE /admin/t/{tenant}/users/{id}`: deletes the user at once with what hangs off them
/// (grants and tokens, factors, memberships, consents) and ends their sessions.
pub(super) async fn delete_user(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    async {
        let (slug, id) = path.into_inner();
        let caller = authenticate(&req, &state, &slug).await?;
        let (tid, uid, actor) = (caller.tenant.id.clone(), UserId(id), caller.actor());
        let gone = uid.clone();
        state
            .store(move |db| db.delete_user(&tid, &actor, &gone))
            .await
            .map_err(missing("user"))?;
        let sessions = state
            .ephemeral
            .delete_user_sessions(&caller.tenant.id, &uid)
            .await?;
        Ok(json_ok(
            &json!({"deleted": "user", "id": uid, "sessions_ended": sessions}),
        ))
    }
    .await
    .map_err(AppError::problem)
}

/// `POST /admin/t/{tenant}/users/{id}/restore`: cancels a pending deletion (409 when none is).
pub(super) async fn restore_user(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    async {
        let (slug, id) = path.into_inner();
        let caller = authenticate(&req, &state, &slug).await?;
        let (tid, uid, actor) = (caller.tenant.id.clone(), UserId(id), caller.actor());
        let user = state
            .store(move |db| latchkey_store::LifecycleRepo::cancel_deletion(db, &tid, &actor, &uid))
            .await
            .map_err(missing("user"))?;
        Ok(json_ok(&user))
    }
    .await
    .map_err(AppError::problem)
}

/// `GET /admin/t/{tenant}/audit`: the tenant's audit events, filtered like `latchkey audit
/// search`: `user`, `action` (exact or `prefix*`), `since`/`until` (Unix ms, inclusive/exclusive),
/// `after` (a sequence number, for paging), `limit` (1-1000, default 100), and `format`
/// (`json`, the default, with `next_after` for the next page; `jsonl`; or `csv`).
pub(super) async fn search_audit(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Query {
        user: Option<String>,
        action: Option<String>,
        since: Option<i64>,
        until: Option<i64>,
        after: Option<i64>,
        limit: Option<i64>,
        format: Option<String>,
    }
    async {
        let caller = authenticate(&req, &state, &path_tenant(&req)).await?;
        let q = web::Query::<Query>::from_query(req.query_string())
            .map_err(|e| AppError::new(Kind::BadRequest, format!("Bad query: {e}")))?
            .into_inner();
        let format = match q.format.as_deref().unwrap_or("json") {
            "json" => None,
            "jsonl" => Some(latchkey_audit::Format::Jsonl),
            "csv" => Some(latchkey_audit::Format::Csv),
            other => {
                return Err(AppError::new(
                    Kind::BadRequest,
                    format!("format {other:?}: expected json, jsonl or csv"),
                ));
            }
        };
        let filter = latchkey_store::AuditFilter {
            user: q.user,
            action: q.action,
            since: q.since,
            until: q.until,
        };
        let limit = q.limit.unwrap_or(100).clamp(1, 1000);
        let (tid, f, after) = (caller.tenant.id.clone(), filter.clone(), q.after.unwrap_or(0));
        let events = state.store(move |db| db.audit_search(&tid, &f, after, limit)).await?;
        audit(
            &state,
            &caller,
            Outcome::Success,
            "audit.read",
            &format!("tenant:{}", caller.tenant.id),
            json!({"events": events.len(), "filter": {"user": filter.user, "action": filter.action, "since": filter.since, "until": filter.until}}),
        )
        .await?;
        let Some(format) = format else {
            let next_after = (events.len() == usize::try_from(limit).unwrap_or(0))
                .then(|| events.last().map(|e| e.seq))
                .flatten();
            return Ok(json_ok(&json!({"events": events, "next_after": next_after})));
        };
        let mut body = Vec::new();
        latchkey_audit::write_events(&mut body, &events, format)
            .map_err(|e| AppError::internal("audit export", e))?;
        let content_type = match format {
            latchkey_audit::Format::Csv => "text/csv; charset=utf-8",
            latchkey_audit::Format::Jsonl => "application/x-ndjson",
        };
        Ok(HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .content_type(content_type)
            .body(body))
    }
    .await
    .map_err(AppError::problem)
}
