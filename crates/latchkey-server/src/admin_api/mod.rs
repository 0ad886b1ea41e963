//! The admin API: `/admin/t/{tenant}/…`, JSON, authorized by an admin credential of that tenant
//! (an `lka_` token, or an OAuth access token of an admin client) holding the permission the
//! route needs ([`routes::ROUTES`]). A credential never reaches another tenant's objects (the
//! lookup is keyed by tenant), objects of another tenant are simply not found, and every call,
//! reads and refusals included, is written to the tenant's audit chain.

mod accounts;
mod admin;
mod apply;
mod attributes;
mod chain;
mod clients;
pub(crate) mod console;
mod domains;
mod groups;
mod idempotency;
mod incidents;
mod invitations;
mod keys;
mod oidc_connections;
pub mod openapi;
mod policies;
mod routes;
mod saml;
mod saml_onboarding;
mod schema;
mod sessions;
mod system;
mod users;

pub(crate) use routes::configure;
pub use routes::{PREFIX, ROUTES, Route, SYSTEM_PREFIX, SYSTEM_ROUTES};

use crate::flow::throttle::Budget;
use crate::state::AppState;
use crate::web::blocking::Blocking;
use crate::web::errors::{AppError, Kind};
use crate::web::tenant::tenant;
use actix_web::HttpMessage as _;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_core::{
    AdminToken, ClientId, NewAuditEvent, Outcome, Permission, Permissions, Tenant, TenantId, UnixMillis,
    sha256_hex,
};
use latchkey_store::{AdminTokenRepo, AuditRepo, Db, StoreError, SystemTokenRepo};
use routes::Scope;
use serde_json::json;
use std::time::Duration;

/// Failed token presentations allowed per client (IPv4 address, IPv6 /64) and tenant per window.
const MAX_FAILURES: u64 = 20;
const FAILURE_WINDOW: Duration = Duration::from_secs(60);

/// An authenticated admin call: the tenant from the path, the credential that opened it, what
/// that credential may do, and the permission the route needed. In the system scope the tenant
/// is [`system_tenant`], which stands for the installation's audit chain and nothing else.
struct Caller {
    tenant: Tenant,
    principal: String,
    token: AdminToken,
    permissions: Permissions,
    need: Permission,
}

impl Caller {
    /// Who the audit chain names: the credential and the permission that let the call through.
    fn actor(&self) -> String {
        format!("{}#{}", self.principal, self.need)
    }

    /// Refuses (403, audited) unless the credential also has `p`; for calls that need more
    /// than their route's permission.
    async fn require(&self, req: &HttpRequest, state: &AppState, p: Permission) -> Result<(), AppError> {
        if self.permissions.contains(p) {
            return Ok(());
        }
        deny(req, state, self, p).await
    }
}

/// Audits a refusal for lack of `p` and answers 403.
async fn deny(req: &HttpRequest, state: &AppState, caller: &Caller, p: Permission) -> Result<(), AppError> {
    let event = NewAuditEvent {
        actor: caller.principal.clone(),
        action: "admin.denied".to_owned(),
        target: format!("{} {}", req.method(), req.path()),
        outcome: Outcome::Denied,
        details: json!({"needed": p}),
    };
    let tid = caller.tenant.id.clone();
    state.store(move |db| db.append_audit(&tid, event)).await?;
    Err(AppError::new(
        Kind::Forbidden,
        format!("This credential lacks the permission {p}."),
    )
    .json())
}

fn bearer(req: &HttpRequest) -> Option<&str> {
    let v = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer")
        && !token.is_empty()
        && token.len() <= latchkey_keys::jwt::MAX_TOKEN_BYTES)
        .then_some(token.trim())
}

/// The credential a bearer value names in tenant `t`: an `lka_` token by its hash, or an OAuth
/// access token of a client that is an admin credential, for the admin API's audience.
async fn credential(
    state: &AppState,
    t: &Tenant,
    presented: &str,
) -> Result<Option<(String, AdminToken)>, AppError> {
    let now = state.clock.now_millis();
    if presented.starts_with("lka_") {
        let (tid, hash) = (t.id.clone(), sha256_hex(presented.as_bytes()));
        let found = state.store(move |db| db.admin_token_by_hash(&tid, &hash)).await?;
        return Ok(found
            .filter(|tok| !tok.is_expired(now))
            .map(|tok| (format!("admin_token:{}", tok.id), tok)));
    }
    let Some(token) = crate::flow::bearer::inspect(state, t, presented, false).await? else {
        return Ok(None);
    };
    // A user's token never opens the admin API, and a client's only when issued for it.
    if token.user.is_some() || token.aud.as_deref() != Some(audience(state, t).as_str()) {
        return Ok(None);
    }
    let (tid, cid) = (t.id.clone(), ClientId(token.client_id));
    let found = state
        .store(move |db| db.admin_token_by_client(&tid, &cid))
        .await?;
    Ok(found.filter(|tok| !tok.is_expired(now)).map(|tok| {
        (
            format!(
                "admin_client:{}",
                tok.client_id.as_ref().map_or("", ClientId::as_str)
            ),
            tok,
        )
    }))
}

/// A console admin's credential (a user-bound `admin_tokens` row) on an in-process call from
/// the console ([`console::api`]). Only Latchkey's own code puts it on a request: extensions
/// never come from the wire.
#[derive(Clone)]
pub(crate) struct ConsoleCredential {
    pub principal: String,
    pub token: AdminToken,
}

/// The system credential an `lks_` value names (system routes take nothing else).
async fn system_credential(
    state: &AppState,
    presented: &str,
) -> Result<Option<(String, AdminToken)>, AppError> {
    if !presented.starts_with("lks_") {
        return Ok(None);
    }
    let now = state.clock.now_millis();
    let hash = sha256_hex(presented.as_bytes());
    let found = state.store(move |db| db.system_token_by_hash(&hash)).await?;
    Ok(found
        .filter(|tok| !tok.is_expired(now))
        .map(|tok| (format!("system_token:{}", tok.id), tok)))
}

/// The installation as the [`Caller`] of a system route sees it: the audit chain `system`.
fn system_tenant() -> Tenant {
    Tenant {
        id: TenantId::system(),
        slug: TenantId::SYSTEM.to_owned(),
        display_name: TenantId::SYSTEM.to_owned(),
        policy: latchkey_core::TenantPolicy::default(),
        created_at: 0,
        updated_at: 0,
    }
}

/// The audience (RFC 8707 resource) of access tokens for tenant `t`'s admin API: its base URL.
fn audience(state: &AppState, t: &Tenant) -> String {
    latchkey_services::clients::admin_audience(&state.config.public_url, &t.slug)
}

/// Resolves the tenant and the credential and checks the permission the matched route needs
/// (from [`routes::ROUTES`]); counts failures per address so guessing is throttled. Refusals
/// for lack of permission are audited with the permission.
async fn authenticate(req: &HttpRequest, state: &AppState, slug: &str) -> Result<Caller, AppError> {
    async {
        if req.method() == actix_web::http::Method::POST {
            idempotency::key(req)?;
        }
        let (scope, route) = req
            .match_pattern()
            .and_then(|p| routes::route_for(req.method().as_str(), &p))
            .ok_or_else(|| AppError::internal("admin route table", "route missing from ROUTES"))?;
        let need = route.permission;
        let t = match scope {
            Scope::Tenant => tenant(state, slug).await.map_err(AppError::problem)?,
            Scope::System => system_tenant(),
        };
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
        let console = req.extensions().get::<ConsoleCredential>().cloned();
        let found = match (console, bearer(req), scope) {
            // A console credential opens its own scope only: a tenant's console its tenant, the
            // system console (an operator's system credential) the system routes.
            (Some(c), _, Scope::Tenant | Scope::System) => {
                (c.token.tenant_id == t.id).then_some((c.principal, c.token))
            }
            (None, Some(presented), Scope::Tenant) => credential(state, &t, presented).await?,
            (None, Some(presented), Scope::System) => system_credential(state, presented).await?,
            (None, None, _) => None,
        };
        let Some((principal, token)) = found else {
            budget.failed().await?;
            tracing::warn!(tenant = %t.slug, client_ip = %addr.map_or_else(String::new, |a| state.config.log_ip.show(a)), "admin API: missing, unknown or expired credential");
            return Err(AppError::new(
                Kind::Unauthorized,
                match scope {
                    Scope::Tenant => "A valid admin credential for this tenant is required.",
                    Scope::System => "A valid system credential (lks_) is required.",
                },
            )
            .json());
        };
        budget.release().await?;
        let permissions = match scope {
            Scope::Tenant => {
                let (tid, tok) = (t.id.clone(), token.clone());
                state.store(move |db| db.effective_permissions(&tid, &tok)).await?
            }
            Scope::System => latchkey_store::system_permissions(&token),
        };
        let caller = Caller {
            tenant: t,
            principal,
            token,
            permissions,
            need,
        };
        for p in std::iter::once(&need).chain(route.also) {
            caller.require(req, state, *p).await?;
        }
        Ok(caller)
    }
    .await
    .map_err(AppError::problem)
}

/// The tenant slug of the matched path; empty in the system scope, whose routes name none.
fn path_tenant(req: &HttpRequest) -> String {
    req.match_info().get("tenant").unwrap_or_default().to_owned()
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
    object(bytes)
}

/// A JSON request body of at most [`MAX_BODY`] bytes, whatever its type.
fn value(bytes: &[u8]) -> Result<serde_json::Value, AppError> {
    if bytes.len() > MAX_BODY {
        return Err(AppError::new(Kind::PayloadTooLarge, "The request body is too large.").json());
    }
    serde_json::from_slice(bytes)
        .map_err(|e| AppError::new(Kind::BadRequest, format!("Bad JSON body: {e}")).json())
}

/// A JSON object as `T`. Only an object: serde would also take an array for a struct, member
/// by position, which no schema of ours allows.
fn object<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    let bad = |e: String| AppError::new(Kind::BadRequest, format!("Bad JSON body: {e}")).json();
    match serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))? {
        v @ serde_json::Value::Object(_) => serde_json::from_value(v).map_err(|e| bad(e.to_string())),
        _ => Err(bad("the body is a JSON object".into())),
    }
}

/// For a merge-patch member that may be `null` (RFC 7396: remove it): absent is `None` (by
/// `#[serde(default)]`), `null` is `Some(None)`; and for one that may not, `null` is refused.
fn present<'de, T: serde::Deserialize<'de>, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
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

/// A read the token allows: fetched within the caller's tenant, audited, returned as JSON,
/// with the `ETag` of its `version` for an object that has one.
async fn audited_read<T: serde::Serialize + Send + 'static>(
    req: &HttpRequest,
    state: &AppState,
    slug: &str,
    (action, target, what): (&str, String, &str),
    fetch: impl FnOnce(&Db, TenantId) -> Result<Option<T>, StoreError> + Send + 'static,
    version: Option<fn(&T) -> UnixMillis>,
) -> Result<HttpResponse, AppError> {
    async {
        let caller = authenticate(req, state, slug).await?;
        let tid = caller.tenant.id.clone();
        let value = state
            .store(move |db| fetch(db, tid))
            .await?
            .ok_or_else(|| not_found(what))?;
        audit(state, &caller, Outcome::Success, action, &target, json!({})).await?;
        Ok(match version {
            Some(v) => etag_response(&value, v(&value)),
            None => json_ok(&value),
        })
    }
    .await
    .map_err(AppError::problem)
}

/// The query of a call that takes no parameters: any is refused.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NoQuery {}

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

/// An object's `ETag`: its version (`updated_at`), which every change moves on (RFC 9110 §8.8.3).
fn etag(version: UnixMillis) -> String {
    format!("\"{version}\"")
}

/// The object as JSON with its version as `ETag`.
fn etag_response(v: &impl serde::Serialize, version: UnixMillis) -> HttpResponse {
    let mut res = json_ok(v);
    if let Ok(v) = header::HeaderValue::from_str(&etag(version)) {
        res.headers_mut().insert(header::ETAG, v);
    }
    res
}

/// A JSON merge patch body (RFC 7396: `application/merge-patch+json`, or `application/json`;
/// anything else is 415), at most [`MAX_BODY`] bytes.
fn merge_patch(req: &HttpRequest, bytes: &[u8]) -> Result<serde_json::Value, AppError> {
    let mime = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if mime != "application/merge-patch+json" && mime != "application/json" {
        return Err(AppError::new(
            Kind::UnsupportedMediaType,
            "Send a JSON merge patch (application/merge-patch+json).",
        ));
    }
    body(bytes, false)
}

/// A merge patch of the members `T` has (a JSON object: [`body`] takes no other).
fn merge_object<T: serde::de::DeserializeOwned>(req: &HttpRequest, bytes: &[u8]) -> Result<T, AppError> {
    serde_json::from_value(merge_patch(req, bytes)?)
        .map_err(|e| AppError::new(Kind::BadRequest, format!("Bad JSON body: {e}")).json())
}

/// The version `If-Match` names; `None` without the header or for `*`. Anything but one strong
/// tag of ours can match no version: 412 (RFC 9110 §13.1.1).
fn if_match(req: &HttpRequest) -> Result<Option<UnixMillis>, AppError> {
    let Some(v) = req.headers().get(header::IF_MATCH) else {
        return Ok(None);
    };
    let v = v.to_str().unwrap_or_default().trim();
    if v == "*" {
        return Ok(None);
    }
    v.strip_prefix('"')
        .and_then(|x| x.strip_suffix('"'))
        .and_then(|x| x.parse::<UnixMillis>().ok())
        .map(Some)
        .ok_or_else(|| {
            AppError::new(
                Kind::PreconditionFailed,
                "If-Match names no version of this object: read it again for its ETag.",
            )
        })
}

/// `limit` and `cursor` of a list: a page is a JSON array of at most `limit` items; a full one
/// has `Link: <…>; rel="next"` with the cursor of the next.
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct PageQuery {
    #[schemars(range(min = 1, max = 1000))]
    limit: Option<i64>,
    cursor: Option<String>,
}

/// A page of `items` (sorted by `key`) after the cursor's key.
pub(super) fn page_of<T: serde::Serialize>(
    req: &HttpRequest,
    mut items: Vec<T>,
    q: &PageQuery,
    key: impl Fn(&T) -> String,
) -> Result<(HttpResponse, usize), AppError> {
    let (limit, after) = paging(q.limit, q.cursor.as_deref())?;
    let after = after.map(|k| key_str(&k, 0)).transpose()?;
    items.sort_by_key(&key);
    let page: Vec<T> = items
        .into_iter()
        .filter(|i| after.as_ref().is_none_or(|a| key(i).as_str() > a.as_str()))
        .take(usize::try_from(limit).unwrap_or(100))
        .collect();
    let n = page.len();
    Ok((paged(req, &page, limit, |i| json!([key(i)]), &[]), n))
}

/// A reader's page of one kind of the tenant's objects (fetched whole, sorted by `key`; a tenant
/// has tens of groups and roles, not millions), audited `action` on `what`.
pub(super) async fn list_of<T: serde::Serialize + Send + 'static>(
    (req, slug, state): (&HttpRequest, &str, &AppState),
    (action, what): (&str, &str),
    fetch: impl FnOnce(&Db, &TenantId) -> Result<Vec<T>, StoreError> + Send + 'static,
    key: impl Fn(&T) -> String,
) -> Result<HttpResponse, AppError> {
    async {
        let caller = authenticate(req, state, slug).await?;
        let q: PageQuery = query(req)?;
        let tid = caller.tenant.id.clone();
        let all = state.store(move |db| fetch(db, &tid)).await?;
        let (res, n) = page_of(req, all, &q, key)?;
        audit(state, &caller, Outcome::Success, action, what, json!({what: n})).await?;
        Ok(res)
    }
    .await
    .map_err(AppError::problem)
}
