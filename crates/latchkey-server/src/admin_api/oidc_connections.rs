//! `/admin/t/{tenant}/oidc-connections…`: a tenant's upstream OpenID Connect (and OAuth 2.0)
//! connections as `latchkey oidc-connection` drives them, addressed by name (their URL-safe
//! natural id, as in `/t/{tenant}/federation/{name}/…`). A connection is made by
//! `latchkey_services::federation::connect`, as the CLI's: an OpenID Connect provider is
//! discovered first, behind the outbound guard (https, public addresses only unless
//! `outbound_allow_private` allows more, no redirects, 10 s; a failed fetch is one generic 422
//! whatever its cause), and its client secret sealed, or a `private_key_jwt` key made, under
//! the tenant's data key. Read with its `ETag`, changed by a JSON merge patch under `If-Match`
//! (with an optional new `client_secret`), discovered again, removed. The secret and the key
//! never leave the store; the store audits every change.

use super::policies::merge_patch_body;
use super::schema::{Closed, MergePatch};
use super::{
    Caller, audit, authenticate, etag_response, if_match, json_ok, key_str, not_found, paged, paging, query,
};
use crate::state::AppState;
use crate::web::blocking::Blocking;
use crate::web::errors::{AppError, Kind};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_core::{
    OidcConnection, Outcome, UpstreamAuth, UpstreamEndpoints, UpstreamKind, UpstreamOptions,
};
use latchkey_services::federation::{
    ConnectionSpec, check_options, connect, discovery_changed, prepare_update, refresh,
};
use latchkey_services::{ServiceError, outbound};
use latchkey_store::{StoreError, UpstreamRepo};
use serde_json::{Value, json};

/// The scopes an OpenID Connect connection asks for unless the body says otherwise.
const DEFAULT_SCOPES: [&str; 3] = ["openid", "email", "profile"];

/// The one answer to a discovery fetch the outbound guard refused or the network failed:
/// telling them apart would let a tenant admin probe the server's network.
const FETCH_FAILED: &str = "The discovery document or JWK Set could not be fetched: use a public https issuer (or discovery_url) that serves them (the server log has the reason).";

fn bad(message: impl Into<String>) -> AppError {
    AppError::new(Kind::BadRequest, message)
}

/// The answer to a failed `connect` or `prepare_update` of `action` on `target`. A fetch that
/// failed is the generic [`FETCH_FAILED`] 422, its cause logged at warn and, as much as the
/// tenant may know (`outbound::tenant_view`), audited as a failure; a discovery document or
/// JWK Set that was refused is 422 with the reason.
async fn refused(
    state: &AppState,
    caller: &Caller,
    (action, target): (&str, &str),
    e: ServiceError,
) -> AppError {
    match e {
        ServiceError::Store(e) => e.into(),
        ServiceError::Federation(f) => {
            AppError::new(Kind::Unprocessable, format!("Discovery was refused: {f}"))
        }
        other => match outbound::tenant_view(&other) {
            Some(view) => {
                tracing::warn!(tenant = %caller.tenant.slug, target, error = %other, "upstream discovery fetch failed");
                let details = json!({"error": view});
                match audit(state, caller, Outcome::Failure, action, target, details).await {
                    Ok(()) => AppError::new(Kind::Unprocessable, FETCH_FAILED),
                    Err(a) => a,
                }
            }
            None => other.into(),
        },
    }
}

/// Refuses members of `given` (an object) that `known` (the serialized defaults) lacks, so a
/// misspelt option is an error rather than a silent default; `at` names where (`options.`).
fn known_members(at: &str, given: &Value, known: &Value) -> Result<(), AppError> {
    let Some(members) = given.as_object() else {
        return Err(bad(format!("{} must be an object", at.trim_end_matches('.'))));
    };
    match members.keys().find(|k| known.get(k.as_str()).is_none()) {
        Some(k) => Err(bad(format!(
            "{at}{k} is not a member of an OpenID Connect connection's {}",
            at.trim_end_matches('.')
        ))),
        None => Ok(()),
    }
}

/// `options` as given (members checked, nested `mapping` too), read.
fn strict_options(given: &Value) -> Result<UpstreamOptions, AppError> {
    let known = serde_json::to_value(UpstreamOptions::default()).unwrap_or_default();
    known_members("options.", given, &known)?;
    if let Some(mapping) = given.get("mapping") {
        known_members("options.mapping.", mapping, &known["mapping"])?;
    }
    serde_json::from_value(given.clone()).map_err(|e| bad(format!("options: {e}")))
}

/// `endpoints` as given (members checked), read.
fn strict_endpoints(given: &Value) -> Result<UpstreamEndpoints, AppError> {
    let known = serde_json::to_value(UpstreamEndpoints::default()).unwrap_or_default();
    known_members("endpoints.", given, &known)?;
    serde_json::from_value(given.clone()).map_err(|e| bad(format!("endpoints: {e}")))
}

/// The connection named `name` in the caller's tenant (404 when there is none).
async fn connection(state: &AppState, caller: &Caller, name: String) -> Result<OidcConnection, AppError> {
    let tid = caller.tenant.id.clone();
    state
        .store(move |db| db.oidc_connection_by_name(&tid, &name))
        .await?
        .ok_or_else(|| not_found("OpenID Connect connection"))
}

async fn caller_and_name(
    req: &HttpRequest,
    state: &AppState,
    path: web::Path<(String, String)>,
) -> Result<(Caller, String), AppError> {
    let (slug, name) = path.into_inner();
    Ok((authenticate(req, state, &slug).await?, name))
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct OidcQuery {
    #[schemars(range(min = 1, max = 1000))]
    limit: Option<i64>,
    cursor: Option<String>,
    /// A name prefix.
    q: Option<String>,
    /// The connection claiming this domain.
    domain: Option<String>,
}

/// `GET /admin/t/{tenant}/oidc-connections`: a page of connections by name; `q` a name prefix,
/// `domain` the connection claiming a domain.
pub(super) async fn list(
    req: HttpRequest,
    slug: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    async {
        let caller = authenticate(&req, &state, &slug).await?;
        let q: OidcQuery = query(&req)?;
        let (limit, after) = paging(q.limit, q.cursor.as_deref())?;
        let after = after.map(|k| key_str(&k, 0)).transpose()?;
        let tid = caller.tenant.id.clone();
        let all = state.store(move |db| db.list_oidc_connections(&tid)).await?;
        let domain = q.domain.as_deref().map(str::to_lowercase);
        let page: Vec<OidcConnection> = all
            .into_iter()
            .filter(|c| after.as_ref().is_none_or(|a| c.name.as_str() > a.as_str()))
            .filter(|c| q.q.as_ref().is_none_or(|p| c.name.starts_with(p.as_str())))
            .filter(|c| domain.as_ref().is_none_or(|d| c.options.domains.contains(d)))
            .take(usize::try_from(limit).unwrap_or(0))
            .collect();
        let details = json!({"connections": page.len(), "q": q.q, "domain": q.domain});
        audit(
            &state,
            &caller,
            Outcome::Success,
            "oidc.connection.list",
            "oidc",
            details,
        )
        .await?;
        let mut filters = Vec::new();
        if let Some(p) = q.q {
            filters.push(("q", p));
        }
        if let Some(d) = q.domain {
            filters.push(("domain", d));
        }
        Ok(paged(&req, &page, limit, |c| json!([c.name]), &filters))
    }
    .await
    .map_err(AppError::problem)
}

fn oidc() -> UpstreamKind {
    UpstreamKind::Oidc
}

fn client_secret_basic() -> UpstreamAuth {
    UpstreamAuth::ClientSecretBasic
}

/// A connection to make: `ConnectionSpec` with the secret.
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "NewOidcConnection")]
pub(super) struct CreateBody {
    name: String,
    /// Shown on the sign-in page (default: the name).
    display_name: Option<String>,
    #[serde(default = "oidc")]
    kind: UpstreamKind,
    /// The issuer (OpenID Connect, discovered now), possibly with `{tenantid}`; for `oauth2`
    /// a label naming the provider.
    issuer: String,
    /// Where discovery is read (default: `{issuer}/.well-known/openid-configuration`).
    discovery_url: Option<String>,
    /// Entra tenant ids a `{tenantid}` issuer accepts.
    #[serde(default)]
    allowed_tenant_ids: Vec<String>,
    client_id: String,
    #[serde(default = "client_secret_basic")]
    client_auth: UpstreamAuth,
    /// Required for `client_secret_basic` and `client_secret_post`; none for
    /// `private_key_jwt` (a key is made, its public half in `public_jwk`).
    client_secret: Option<String>,
    /// Default `["openid", "email", "profile"]` for `oidc`, none for `oauth2`.
    scopes: Option<Vec<String>>,
    /// The endpoints of an `oauth2` provider.
    #[schemars(with = "Option<Closed<UpstreamEndpoints>>")]
    endpoints: Option<Value>,
    #[serde(default)]
    #[schemars(with = "Option<Closed<UpstreamOptions>>")]
    options: Option<Value>,
}

impl CreateBody {
    fn spec(self) -> Result<ConnectionSpec, AppError> {
        let options = strict_options(&self.options.unwrap_or_else(|| json!({})))?;
        let endpoints = self.endpoints.as_ref().map(strict_endpoints).transpose()?;
        let scopes = self.scopes.unwrap_or_else(|| match self.kind {
            UpstreamKind::Oidc => DEFAULT_SCOPES.map(str::to_owned).to_vec(),
            UpstreamKind::Oauth2 => Vec::new(),
        });
        Ok(ConnectionSpec {
            name: self.name,
            display_name: self.display_name,
            kind: self.kind,
            issuer: self.issuer,
            discovery_url: self.discovery_url,
            allowed_tenant_ids: self.allowed_tenant_ids,
            client_id: self.client_id,
            client_auth: self.client_auth,
            client_secret: self.client_secret,
            scopes,
            endpoints,
            options,
        })
    }
}

/// `POST /admin/t/{tenant}/oidc-connections`: connects an upstream (an OpenID Connect one
/// discovered first). 201 with the connection; `Idempotency-Key` makes a retry connect nothing
/// twice. 409 for a taken name or a domain another connection claims; 422 when discovery fails.
pub(super) async fn create(
    req: HttpRequest,
    slug: web::Path<String>,
    state: web::Data<AppState>,
    bytes: web::Bytes,
) -> Result<HttpResponse, AppError> {
    async {
        let caller = authenticate(&req, &state, &slug).await?;
        let run = async {
            let spec = super::object::<CreateBody>(&bytes)?.spec()?;
            let target = format!("oidc:{}", spec.name);
            let now = state.clock.now_millis();
            let outbound = &state.config.outbound_allow_private;
            let actor = caller.actor();
            let made = match connect(
                &state.db,
                &state.keys,
                outbound,
                &caller.tenant,
                &actor,
                spec,
                now,
            )
            .await
            {
                Ok(made) => made,
                Err(e) => return Err(refused(&state, &caller, ("oidc.connection.create", &target), e).await),
            };
            let view = serde_json::to_value(&made).map_err(|e| AppError::internal("oidc connection", e))?;
            Ok((StatusCode::CREATED, view))
        };
        super::idempotency::once(&state, &caller, (&req, &bytes), run).await
    }
    .await
    .map_err(AppError::problem)
}

/// `GET /admin/t/{tenant}/oidc-connections/{name}`: the connection with its `ETag`.
pub(super) async fn get(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    async {
        let (caller, name) = caller_and_name(&req, &state, path).await?;
        let c = connection(&state, &caller, name).await?;
        let target = format!("oidc:{}", c.id);
        let details = json!({"name": c.name});
        audit(
            &state,
            &caller,
            Outcome::Success,
            "oidc.connection.read",
            &target,
            details,
        )
        .await?;
        Ok(etag_response(&c, c.updated_at))
    }
    .await
    .map_err(AppError::problem)
}

/// What a merge patch over a connection's JSON form may change (with a new `client_secret`);
/// the other members may only be sent back as they are.
// The schema of what `patched` reads (it merges into the JSON form itself).
#[derive(schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(super) struct OidcPatch {
    #[serde(default)]
    display_name: String,
    /// A new issuer is discovered now.
    #[serde(default)]
    issuer: String,
    /// A new URL is discovered now; `null` reads `{issuer}/.well-known/openid-configuration`.
    #[serde(default)]
    discovery_url: Option<String>,
    #[serde(default)]
    allowed_tenant_ids: Vec<String>,
    #[serde(default)]
    client_id: String,
    /// To `private_key_jwt` makes a key; from it needs a `client_secret`.
    #[serde(default = "client_secret_basic")]
    client_auth: UpstreamAuth,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    endpoints: Option<MergePatch<UpstreamEndpoints>>,
    #[serde(default)]
    options: MergePatch<UpstreamOptions>,
    /// A new client secret (the secret methods); never shown again.
    #[serde(default)]
    client_secret: Option<String>,
}

/// Members of the JSON form a patch can't change.
const FIXED: [&str; 10] = [
    "id",
    "tenant_id",
    "name",
    "kind",
    "public_jwk",
    "discovered",
    "discovery_error",
    "next_refresh_at",
    "created_at",
    "updated_at",
];

/// Members a patch may change (some are left out of the JSON form when empty).
const CHANGEABLE: [&str; 9] = [
    "display_name",
    "issuer",
    "discovery_url",
    "allowed_tenant_ids",
    "client_id",
    "client_auth",
    "scopes",
    "endpoints",
    "options",
];

/// `c` with a merge patch over its JSON form applied, and the new `client_secret` it carries.
fn patched(c: &OidcConnection, mut patch: Value) -> Result<(OidcConnection, Option<String>), AppError> {
    let secret = match patch.as_object_mut().and_then(|p| p.remove("client_secret")) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(_) => return Err(bad("client_secret must be a string")),
    };
    if let Some(k) = patch.as_object().and_then(|p| {
        p.keys()
            .find(|k| !FIXED.contains(&k.as_str()) && !CHANGEABLE.contains(&k.as_str()))
    }) {
        return Err(bad(format!(
            "{k} is not a member of an OpenID Connect connection"
        )));
    }
    let shown = serde_json::to_value(c).map_err(|e| AppError::internal("oidc connection", e))?;
    let mut merged = shown.clone();
    latchkey_core::patch::merge_patch(&mut merged, &patch);
    if let Some(k) = FIXED.iter().find(|k| merged.get(**k) != shown.get(**k)) {
        return Err(bad(format!("{k} can't be changed")));
    }
    if let Some(o) = patch.get("options").filter(|o| !o.is_null()) {
        strict_options(o)?;
    }
    if let Some(e) = merged.get("endpoints").filter(|e| !e.is_null()) {
        strict_endpoints(e)?;
    }
    let after: OidcConnection =
        serde_json::from_value(merged).map_err(|e| bad(format!("Bad connection: {e}")))?;
    Ok((after, secret))
}

/// `PATCH /admin/t/{tenant}/oidc-connections/{name}`: a JSON merge patch over the connection
/// as `GET` shows it (see [`patched`]), plus an optional `client_secret`; with `If-Match`, 412
/// when it changed since (a discovery refresh included). A new issuer or discovery URL is
/// discovered now (422 when that fails, nothing changed). Answers the connection and its new
/// `ETag`; the store audits the change.
pub(super) async fn update(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
    bytes: web::Bytes,
) -> Result<HttpResponse, AppError> {
    async {
        let (caller, name) = caller_and_name(&req, &state, path).await?;
        let merge = merge_patch_body(&req, &bytes)?;
        let asked = if_match(&req)?;
        let c = connection(&state, &caller, name).await?;
        if let Some(v) = asked.filter(|v| *v != c.updated_at) {
            return Err(StoreError::Stale(format!("the connection changed since version {v}")).into());
        }
        let (after, secret) = patched(&c, merge)?;
        let (tenant, options) = (caller.tenant.clone(), after.options.clone());
        state
            .store(move |db| check_options(db, &tenant, &options))
            .await?;
        let target = format!("oidc:{}", c.id);
        let outbound = &state.config.outbound_allow_private;
        let now = state.clock.now_millis();
        let after = match prepare_update(&state.keys, outbound, &caller.tenant, &c, after, secret, now).await
        {
            Ok(after) => after,
            Err(e) => return Err(refused(&state, &caller, ("oidc.connection.update", &target), e).await),
        };
        let (tid, actor, version) = (caller.tenant.id.clone(), caller.actor(), c.updated_at);
        // The version read is the one replaced: a change committed meanwhile (an update, a
        // refresh) makes this one 412 instead of being lost.
        let stored = state
            .store(move |db| db.update_oidc_connection(&tid, &actor, &after, Some(version)))
            .await?;
        Ok(etag_response(&stored, stored.updated_at))
    }
    .await
    .map_err(AppError::problem)
}

/// A connection after a refresh, and whether discovery found anything new.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub(super) struct Refreshed {
    #[serde(flatten)]
    connection: OidcConnection,
    changed: bool,
}

#[derive(serde::Serialize, schemars::JsonSchema)]
pub(super) struct OidcDeleted {
    deleted: &'static str,
    name: String,
    id: String,
}

/// `POST /admin/t/{tenant}/oidc-connections/{name}/refresh`: reads the discovery document and
/// JWK Set now, as the hourly refresh does. 200 with the connection and `changed`; 409 for an
/// OAuth 2.0 connection (its endpoints are configured); 422 when discovery fails (the last
/// good discovery stays, the failure is recorded and audited by the refresh).
pub(super) async fn refresh_now(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    async {
        let (caller, name) = caller_and_name(&req, &state, path).await?;
        let c = connection(&state, &caller, name).await?;
        if c.kind == UpstreamKind::Oauth2 {
            return Err(AppError::new(
                Kind::Conflict,
                "This is an OAuth 2.0 connection: its endpoints are configured, there is nothing to discover.",
            ));
        }
        let now = state.clock.now_millis();
        let after = refresh(&state.db, &state.config.outbound_allow_private, &c, now)
            .await
            .map_err(|e| match e {
                ServiceError::Store(e) => AppError::from(e),
                other if outbound::tenant_view(&other).is_some() => {
                    tracing::warn!(tenant = %caller.tenant.slug, connection = %c.name, error = %other, "upstream discovery fetch failed");
                    AppError::new(
                        Kind::Unprocessable,
                        format!("Refreshing failed (the last good discovery stays in use). {FETCH_FAILED}"),
                    )
                }
                other => AppError::new(
                    Kind::Unprocessable,
                    format!("Refreshing failed (the last good discovery stays in use): {other}"),
                ),
            })?;
        let changed = discovery_changed(&c, &after);
        let target = format!("oidc:{}", c.id);
        let details = json!({"name": c.name, "changed": changed});
        audit(&state, &caller, Outcome::Success, "oidc.connection.refresh", &target, details).await?;
        let version = after.updated_at;
        Ok(etag_response(
            &Refreshed {
                connection: after,
                changed,
            },
            version,
        ))
    }
    .await
    .map_err(AppError::problem)
}

/// `DELETE /admin/t/{tenant}/oidc-connections/{name}`: removes the connection and the links of
/// its users' upstream identities (the users stay); with `If-Match`, 412 when it changed since.
pub(super) async fn delete(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    async {
        let (caller, name) = caller_and_name(&req, &state, path).await?;
        let asked = if_match(&req)?;
        let (tid, actor) = (caller.tenant.id.clone(), caller.actor());
        let gone = state
            .store(move |db| {
                let c = db
                    .oidc_connection_by_name(&tid, &name)?
                    .ok_or(StoreError::NotFound {
                        what: "OpenID Connect connection",
                    })?;
                // The version is checked by the delete itself (a refresh may commit meanwhile).
                db.delete_oidc_connection(&tid, &actor, &c.id, asked)?;
                Ok::<_, StoreError>(c)
            })
            .await
            .map_err(super::missing("OpenID Connect connection"))?;
        Ok(json_ok(&OidcDeleted {
            deleted: "oidc_connection",
            name: gone.name,
            id: gone.id,
        }))
    }
    .await
    .map_err(AppError::problem)
}
