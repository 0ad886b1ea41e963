//! The admin API: `/admin/t/{tenant}/…`, JSON, authorized by a bearer token that belongs to that
//! tenant and carries a role. A token never reaches another tenant's objects (the lookup is keyed
//! by tenant), objects of another tenant are simply not found, and every call, reads included, is
//! written to the tenant's audit chain.

mod apply;
mod clients;
mod groups;
mod idempotency;
mod invitations;
mod sessions;

use crate::flow::throttle::Budget;
use crate::state::AppState;
use crate::web::blocking::Blocking;
use crate::web::errors::{AppError, Kind};
use crate::web::tenant::tenant;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_core::{
    AdminRole, AdminToken, NewAuditEvent, Outcome, Tenant, TenantId, UserId, UserStatus, sha256_hex,
};
use latchkey_store::{AdminTokenRepo, AuditRepo, ClientRepo, Db, StoreError, UserRepo};
use serde_json::json;
use std::time::Duration;

/// Failed token presentations allowed per client (IPv4 address, IPv6 /64) and tenant per window.
const MAX_FAILURES: u64 = 20;
const FAILURE_WINDOW: Duration = Duration::from_secs(60);

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/admin/t/{tenant}")
            .route("/users", web::get().to(list_users))
            .route("/users/{id}", web::get().to(get_user))
            .route("/users/{id}/disable", web::post().to(disable_user))
            .route("/users/{id}/enable", web::post().to(enable_user))
            .route("/users/{id}", web::delete().to(delete_user))
            .route("/users/{id}/restore", web::post().to(restore_user))
            .route("/users/{id}/sessions", web::get().to(sessions::list))
            .route("/users/{id}/sessions", web::delete().to(sessions::end_all))
            .route(
                "/users/{id}/sessions/{session}",
                web::delete().to(sessions::end_one),
            )
            .route("/invitations", web::post().to(invitations::create))
            .route("/invitations", web::get().to(invitations::list))
            .route("/invitations/{id}/revoke", web::post().to(invitations::revoke))
            .route("/invitations/{id}/resend", web::post().to(invitations::resend))
            .route("/clients", web::get().to(list_clients))
            .route("/clients", web::post().to(clients::create))
            .route("/clients/{id}", web::delete().to(clients::delete))
            .route("/clients/{id}", web::get().to(clients::get))
            .route("/clients/{id}", web::patch().to(clients::update))
            .route(
                "/clients/{id}/rotate-secret",
                web::post().to(clients::rotate_secret),
            )
            .route("/groups", web::get().to(groups::list_groups))
            .route("/groups", web::post().to(groups::create_group))
            .route("/groups/{id}", web::get().to(groups::get_group))
            .route("/groups/{id}", web::patch().to(groups::update_group))
            .route("/groups/{id}", web::delete().to(groups::delete_group))
            .route(
                "/groups/{id}/members/{kind}/{member}",
                web::put().to(groups::member),
            )
            .route(
                "/groups/{id}/members/{kind}/{member}",
                web::delete().to(groups::member),
            )
            .route("/clients/{id}/roles", web::get().to(groups::list_client_roles))
            .route("/clients/{id}/roles", web::post().to(groups::create_client_role))
            .route(
                "/clients/{id}/roles/{role}",
                web::delete().to(groups::delete_client_role),
            )
            .route(
                "/clients/{id}/roles/{role}/{kind}/{principal}",
                web::put().to(groups::client_assignment),
            )
            .route(
                "/clients/{id}/roles/{role}/{kind}/{principal}",
                web::delete().to(groups::client_assignment),
            )
            .route("/roles", web::get().to(groups::list_roles))
            .route("/roles", web::post().to(groups::create_role))
            .route("/roles/{id}", web::delete().to(groups::delete_role))
            .route(
                "/roles/{id}/{kind}/{principal}",
                web::put().to(groups::assignment),
            )
            .route(
                "/roles/{id}/{kind}/{principal}",
                web::delete().to(groups::assignment),
            )
            .route("/audit", web::get().to(search_audit))
            .route("/export", web::get().to(apply::export))
            .service(
                web::resource("/apply")
                    .app_data(web::PayloadConfig::new(apply::MAX_FILE_BODY))
                    .route(web::post().to(apply::apply)),
            ),
    );
}

/// An authenticated admin call: the tenant from the path and the token that opened it.
struct Caller {
    tenant: Tenant,
    token: AdminToken,
}

impl Caller {
    fn actor(&self) -> String {
        format!("admin_token:{}", self.token.id)
    }
}

fn bearer(req: &HttpRequest) -> Option<&str> {
    let v = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && token.len() <= 256).then_some(token.trim())
}

/// Resolves the tenant and the token; counts failures per address so guessing is throttled.
async fn authenticate(
    req: &HttpRequest,
    state: &AppState,
    slug: &str,
    need: AdminRole,
) -> Result<Caller, AppError> {
    async {
        let t = tenant(state, slug).await.map_err(AppError::problem)?;
        let addr = crate::web::net::client_addr(req);
        // Reserved before the lookup, so parallel guesses get no more than `MAX_FAILURES`.
        let budget = Budget {
            store: &*state.ephemeral,
            tenant: &t.id,
            key: format!("admin-auth:{}", addr.map_or_else(String::new, latchkey_risk::throttle_key)),
            allowed: MAX_FAILURES,
            window: FAILURE_WINDOW,
        };
        if !budget.reserve().await? {
            return Err(AppError::new(
                Kind::TooManyRequests,
                "Too many failed attempts; try again later.",
            )
            .json());
        }
        let found = match bearer(req) {
            Some(presented) => {
                let (tid, hash) = (t.id.clone(), sha256_hex(presented.as_bytes()));
                state.store(move |db| db.admin_token_by_hash(&tid, &hash)).await?
            }
            None => None,
        };
        let Some(token) = found.filter(|tok| !tok.is_expired(state.clock.now_millis())) else {
            budget.failed().await?;
            tracing::warn!(tenant = %t.slug, client_ip = %addr.map_or_else(String::new, |a| state.config.log_ip.show(a)), "admin API: missing, unknown or expired token");
            return Err(AppError::new(
                Kind::Unauthorized,
                "A valid admin token for this tenant is required.",
            )
            .json());
        };
        budget.release().await?;
        let caller = Caller { tenant: t, token };
        if need == AdminRole::Admin && caller.token.role != AdminRole::Admin {
            let path = req.path().to_owned();
            audit(
                state,
                &caller,
                Outcome::Denied,
                "admin.denied",
                &path,
                json!({"needed_role": "admin"}),
            )
            .await?;
            return Err(AppError::new(Kind::Forbidden, "This token may only read.").json());
        }
        Ok(caller)
    }
    .await
    .map_err(AppError::problem)
}

async fn audit(
    state: &AppState,
    caller: &Caller,
    outcome: Outcome,
    action: &str,
    target: &str,
    details: serde_json::Value,
) -> Result<(), AppError> {
    let event = NewAuditEvent {
        actor: caller.actor(),
        action: action.to_owned(),
        target: target.to_owned(),
        outcome,
        details,
    };
    let tid = caller.tenant.id.clone();
    state
        .store(move |db| db.append_audit(&tid, event))
        .await
        .map(drop)
}

/// The largest request body the admin API reads.
const MAX_BODY: usize = 16 * 1024;

/// A JSON request body of at most [`MAX_BODY`] bytes; an empty one is `T::default()` when
/// `empty_ok`.
fn body<T: serde::de::DeserializeOwned + Default>(bytes: &[u8], empty_ok: bool) -> Result<T, AppError> {
    if bytes.len() > MAX_BODY {
        return Err(AppError::new(Kind::PayloadTooLarge, "The request body is too large.").json());
    }
    if empty_ok && bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(bytes)
        .map_err(|e| AppError::new(Kind::BadRequest, format!("Bad JSON body: {e}")).json())
}

fn json_ok(v: &impl serde::Serialize) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(v)
}

fn not_found(what: &str) -> AppError {
    AppError::not_found(format!("No such {what} in this tenant.")).json()
}

/// A store answer as JSON, a missing object named as `what` of this tenant.
fn missing(what: &'static str) -> impl Fn(AppError) -> AppError {
    move |e| {
        if e.kind == Kind::NotFound {
            not_found(what)
        } else {
            e.json()
        }
    }
}

/// A read the token allows: fetched within the caller's tenant, audited, returned as JSON.
async fn audited_read<T: serde::Serialize + Send + 'static>(
    req: &HttpRequest,
    state: &AppState,
    slug: &str,
    (action, target, what): (&str, String, &str),
    fetch: impl FnOnce(&Db, TenantId) -> Result<Option<T>, StoreError> + Send + 'static,
) -> Result<HttpResponse, AppError> {
    async {
        let caller = authenticate(req, state, slug, AdminRole::Reader).await?;
        let tid = caller.tenant.id.clone();
        let value = state
            .store(move |db| fetch(db, tid))
            .await?
            .ok_or_else(|| not_found(what))?;
        audit(state, &caller, Outcome::Success, action, &target, json!({})).await?;
        Ok(json_ok(&value))
    }
    .await
    .map_err(AppError::problem)
}

/// `GET /admin/t/{tenant}/users`: a page of users in username order, filtered by `status` and
/// `q` (a username or email prefix); see [`paged`].
async fn list_users(
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
        let caller = authenticate(&req, &state, &slug, AdminRole::Reader).await?;
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

/// A list call's query string, unknown parameters refused.
fn query<Q: serde::de::DeserializeOwned>(req: &HttpRequest) -> Result<Q, AppError> {
    web::Query::<Q>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .map_err(|e| AppError::new(Kind::BadRequest, format!("Bad query: {e}")))
}

/// `limit` (1 to 1000, default 100) and the key a `cursor` carries.
fn paging(
    limit: Option<i64>,
    cursor: Option<&str>,
) -> Result<(i64, Option<Vec<serde_json::Value>>), AppError> {
    use base64::Engine as _;
    let limit = limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(AppError::new(Kind::BadRequest, "limit must be 1 to 1000"));
    }
    let after = cursor
        .map(|c| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(c)
                .ok()
                .filter(|b| b.len() <= 1024)
                .and_then(|b| serde_json::from_slice::<Vec<serde_json::Value>>(&b).ok())
                .ok_or_else(|| AppError::new(Kind::BadRequest, "cursor is not one this API returned"))
        })
        .transpose()?;
    Ok((limit, after))
}

/// Part `i` of a cursor's key as text (400 when it is not).
fn key_str(key: &[serde_json::Value], i: usize) -> Result<String, AppError> {
    key.get(i)
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| AppError::new(Kind::BadRequest, "cursor is not one this API returned"))
}

/// A page as a JSON array. A full page has `Link: <…>; rel="next"` (RFC 8288) with the same
/// `filters` and an opaque cursor holding `key` of its last item, so the next page starts
/// after it however the list changes meanwhile.
fn paged<T: serde::Serialize>(
    req: &HttpRequest,
    items: &[T],
    limit: i64,
    key: impl Fn(&T) -> serde_json::Value,
    filters: &[(&str, String)],
) -> HttpResponse {
    use base64::Engine as _;
    let mut res = json_ok(&items);
    if items.len() == usize::try_from(limit).unwrap_or(0)
        && let Some(last) = items.last()
    {
        let cursor = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key(last).to_string());
        let mut next = url::form_urlencoded::Serializer::new(String::new());
        next.append_pair("limit", &limit.to_string());
        next.append_pair("cursor", &cursor);
        for (k, v) in filters {
            next.append_pair(k, v);
        }
        let link = format!("<{}?{}>; rel=\"next\"", req.path(), next.finish());
        if let Ok(v) = header::HeaderValue::from_str(&link) {
            res.headers_mut().insert(header::LINK, v);
        }
    }
    res
}

async fn get_user(
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
    )
    .await
}

/// `GET /admin/t/{tenant}/clients`: a page of clients by name; see [`paged`].
async fn list_clients(
    req: HttpRequest,
    slug: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Query {
        limit: Option<i64>,
        cursor: Option<String>,
    }
    async {
        let caller = authenticate(&req, &state, &slug, AdminRole::Reader).await?;
        let q: Query = query(&req)?;
        let (limit, after) = paging(q.limit, q.cursor.as_deref())?;
        let after = after
            .map(|k| Ok::<_, AppError>((key_str(&k, 0)?, key_str(&k, 1)?)))
            .transpose()?;
        let tid = caller.tenant.id.clone();
        let clients = state.store(move |db| db.clients_page(&tid, after, limit)).await?;
        let details = json!({"clients": clients.len()});
        audit(
            &state,
            &caller,
            Outcome::Success,
            "client.list",
            "clients",
            details,
        )
        .await?;
        Ok(paged(
            &req,
            &clients,
            limit,
            |c| json!([c.name, c.client_id]),
            &[],
        ))
    }
    .await
    .map_err(AppError::problem)
}

async fn set_status(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
    status: UserStatus,
) -> Result<HttpResponse, AppError> {
    async {
        let (slug, id) = path.into_inner();
        let caller = authenticate(&req, &state, &slug, AdminRole::Admin).await?;
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

async fn disable_user(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    set_status(req, path, state, UserStatus::Disabled).await
}

async fn enable_user(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    set_status(req, path, state, UserStatus::Active).await
}

/// `DELETE /admin/t/{tenant}/users/{id}`: deletes the user at once with what hangs off them
/// (grants and tokens, factors, memberships, consents) and ends their sessions.
async fn delete_user(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    async {
        let (slug, id) = path.into_inner();
        let caller = authenticate(&req, &state, &slug, AdminRole::Admin).await?;
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
async fn restore_user(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    async {
        let (slug, id) = path.into_inner();
        let caller = authenticate(&req, &state, &slug, AdminRole::Admin).await?;
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
async fn search_audit(
    req: HttpRequest,
    slug: web::Path<String>,
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
        let caller = authenticate(&req, &state, &slug, AdminRole::Reader).await?;
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
