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

#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct UsersQuery {
    #[schemars(range(min = 1, max = 1000))]
    limit: Option<i64>,
    cursor: Option<String>,
    status: Option<UserStatus>,
    /// A username, email or display-name prefix (case-insensitive).
    q: Option<String>,
    /// `name=value`: users with that attribute value (a JSON value, or text for a string).
    attribute: Option<String>,
}

/// `GET /admin/t/{tenant}/users`: a page of users in username order, filtered by `status` and
/// `q` (a username or email prefix); see [`paged`].
pub(super) async fn list_users(
    req: HttpRequest,
    slug: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    async {
        let caller = authenticate(&req, &state, &slug).await?;
        let q: UsersQuery = query(&req)?;
        let (limit, after) = paging(q.limit, q.cursor.as_deref())?;
        let after = after.map(|k| key_str(&k, 0)).transpose()?;
        let query = latchkey_store::UserQuery {
            after,
            limit,
            status: q.status,
            prefix: q.q.clone(),
            attribute: match q.attribute.as_deref().map(|a| a.split_once('=')) {
                None => None,
                Some(Some((n, v))) if !n.is_empty() => Some((n.to_owned(), v.to_owned())),
                Some(_) => return Err(AppError::new(Kind::BadRequest, "attribute is name=value")),
            },
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
        if let Some(a) = q.attribute {
            filters.push(("attribute", a));
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

#[derive(serde::Serialize, schemars::JsonSchema)]
pub(super) struct UserDeleted {
    deleted: &'static str,
    id: UserId,
    sessions_ended: u64,
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
        Ok(json_ok(&UserDeleted {
            deleted: "user",
            id: uid,
            sessions_ended: sessions,
        }))
    }
    .await
    .map_err(AppError::problem)
}

/// The body of an erasure.
#[derive(Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct EraseBody {
    /// Why: a request or ticket number, 1-500 characters on one line (it stays in the audit
    /// log, so not the person's name).
    reason: String,
}

/// `POST /admin/t/{tenant}/users/{id}/erase`: erases the user (docs/privacy.md#erasure) at once,
/// or closes the account and erases it after the tenant's `accounts.erasure_grace_days`. Their
/// sessions end either way.
pub(super) async fn erase_user(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
    bytes: web::Bytes,
) -> Result<HttpResponse, AppError> {
    async {
        let (slug, id) = path.into_inner();
        let caller = authenticate(&req, &state, &slug).await?;
        let body: EraseBody = super::body(&bytes, false)?;
        let (tenant, uid, actor) = (caller.tenant.clone(), UserId(id), caller.actor());
        let now = state.clock.now_millis();
        let gone = uid.clone();
        let erasure = state
            .store(move |db| latchkey_services::privacy::erase(db, &tenant, &actor, &gone, &body.reason, now))
            .await
            .map_err(missing("user"))?;
        state
            .ephemeral
            .delete_user_sessions(&caller.tenant.id, &uid)
            .await?;
        Ok(json_ok(&erasure))
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

#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct AuditQuery {
    user: Option<String>,
    /// Exact, or a prefix as `prefix*`.
    action: Option<String>,
    since: Option<i64>,
    until: Option<i64>,
    after: Option<i64>,
    #[schemars(range(min = 1, max = 1000))]
    limit: Option<i64>,
    format: Option<AuditFormat>,
}

#[derive(Clone, Copy, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(super) enum AuditFormat {
    Json,
    Jsonl,
    Csv,
}

/// A page of audit events; `next_after` is the `after` of the next page, on a full one.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub(super) struct AuditPage {
    events: Vec<latchkey_core::AuditEvent>,
    next_after: Option<i64>,
}

/// `GET /admin/t/{tenant}/audit`: the tenant's audit events, filtered like `latchkey audit
/// search`: `user`, `action` (exact or `prefix*`), `since`/`until` (Unix ms, inclusive/exclusive),
/// `after` (a sequence number, for paging), `limit` (1-1000, default 100), and `format`
/// (`json`, the default, with `next_after` for the next page; `jsonl`; or `csv`).
pub(super) async fn search_audit(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    async {
        let caller = authenticate(&req, &state, &path_tenant(&req)).await?;
        let q: AuditQuery = query(&req)?;
        let format = match q.format.unwrap_or(AuditFormat::Json) {
            AuditFormat::Json => None,
            AuditFormat::Jsonl => Some(latchkey_audit::Format::Jsonl),
            AuditFormat::Csv => Some(latchkey_audit::Format::Csv),
        };
        let filter = latchkey_store::AuditFilter {
            user: q.user,
            action: q.action,
            since: q.since,
            until: q.until,
            target: None,
        };
        let limit = q.limit.unwrap_or(100);
        if !(1..=1000).contains(&limit) {
            return Err(AppError::new(Kind::BadRequest, "limit must be 1 to 1000"));
        }
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
            return Ok(json_ok(&AuditPage { events, next_after }));
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
