//! `/admin/t/{tenant}/saml-connections…`: a tenant's SAML connections as `latchkey saml`
//! drives them, addressed by name (their URL-safe natural id, as in `/t/{tenant}/saml/{name}/…`).
//! A connection is made from IdP metadata given inline or fetched from a URL (the
//! `latchkey-services` fetch behind the outbound guard: https, public addresses only unless
//! `outbound_allow_private` allows more, no redirects, 10 s, 1 MiB; a failed fetch is one
//! generic 422 whatever its cause), with a fresh
//! SP key sealed under the tenant's data key (`latchkey_services::saml::connect`, as the CLI);
//! read with its `ETag`, changed by a JSON merge patch under `If-Match`, refreshed, removed.
//! The SP private key never leaves the store.

use super::policies::merge_patch_body;
use super::schema::{Closed, MergePatch};
use super::{
    Caller, audit, authenticate, etag_response, if_match, json_ok, key_str, not_found, paged, paging, query,
};
use crate::state::AppState;
use crate::web::blocking::{Blocking, blocking};
use crate::web::errors::{AppError, Kind};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_core::{IdpDescriptor, Outcome, SamlConnection, SamlOptions};
use latchkey_services::outbound;
use latchkey_services::saml::{
    ConnectionSpec, METADATA_MAX_BYTES, METADATA_REFRESH_MS, certificate_base64, check_metadata_url,
    check_options, connect, fetch_metadata, refresh_connection,
};
use latchkey_store::{SamlConnectionUpdate, SamlRepo, StoreError};
use serde_json::{Value, json};

/// The largest request body these routes read: metadata of up to 1 MiB, JSON-escaped.
pub(super) const MAX_BODY: usize = crate::web::limits::ADMIN_METADATA_MAX_BODY;

/// The request body, at most [`MAX_BODY`] bytes (metadata is larger than other admin bodies).
async fn read_body(payload: web::Payload) -> Result<web::Bytes, AppError> {
    let too_large = || AppError::new(Kind::PayloadTooLarge, "The request body is too large.");
    payload
        .to_bytes_limited(MAX_BODY)
        .await
        .map_err(|_| too_large())?
        .map_err(|e| bad(format!("The request body could not be read: {e}")))
}

fn bad(message: impl Into<String>) -> AppError {
    AppError::new(Kind::BadRequest, message)
}

/// Members of `options` the connection's options don't have are refused (serde would skip
/// them), so a misspelt option is an error rather than a silent default.
fn strict_options(given: &Value) -> Result<SamlOptions, AppError> {
    let options: SamlOptions =
        serde_json::from_value(given.clone()).map_err(|e| bad(format!("options: {e}")))?;
    let mut known = serde_json::to_value(&options).unwrap_or_default();
    if let Some(k) = known.as_object_mut() {
        k.entry("metadata_signer").or_insert(Value::Null);
        k.entry("group_map").or_insert(Value::Null);
    }
    let unknown = |at: &str, given: &Value, known: &Value| -> Result<(), AppError> {
        match given.as_object() {
            Some(members) => match members.keys().find(|k| known.get(k.as_str()).is_none()) {
                Some(k) => Err(bad(format!("{at}{k} is not an option of a SAML connection"))),
                None => Ok(()),
            },
            None => Err(bad(format!("{at} must be an object"))),
        }
    };
    unknown("options.", given, &known)?;
    if let Some(mapping) = given.get("mapping") {
        unknown("options.mapping.", mapping, &known["mapping"])?;
    }
    Ok(options)
}

/// A pinned metadata-signing certificate as PEM or base64 DER, kept as base64 DER.
fn signer_der(options: &mut SamlOptions) {
    if let Some(pem) = &options.metadata_signer {
        options.metadata_signer = Some(certificate_base64(pem));
    }
}

/// Parses IdP metadata (verifying it against `signer` when one is pinned) off the async
/// threads; a refused document is `status` with the reason.
async fn parse(
    text: String,
    now: i64,
    signer: Option<String>,
    status: Kind,
) -> Result<IdpDescriptor, AppError> {
    if text.len() > METADATA_MAX_BYTES {
        return Err(AppError::new(status, "The metadata is larger than 1 MiB."));
    }
    blocking(move || {
        latchkey_saml::parse_idp_metadata_signed_by(&text, now, signer.as_deref())
            .map_err(|e| AppError::new(status, format!("The metadata was refused: {e}")))
    })
    .await
}

/// The one answer to a metadata fetch the outbound guard refused or the network failed
/// (refused address, connection refused, timeout, TLS, HTTP status, size): telling them apart
/// would let a tenant admin probe the server's network.
const FETCH_FAILED: &str = "The metadata could not be fetched from metadata_url: use a public https URL that answers with the metadata (the server log has the reason).";

/// A fetch that failed (`e`): the cause to the log at warn and, as much as the tenant may
/// know (`outbound::tenant_view`), to a failure audit event of `action` on `target`; the
/// answer is the generic [`FETCH_FAILED`] 422.
async fn fetch_failed(
    state: &AppState,
    caller: &Caller,
    (action, target): (&str, &str),
    url: &str,
    e: &latchkey_services::ServiceError,
) -> AppError {
    tracing::warn!(tenant = %caller.tenant.slug, target, error = %e, "SAML metadata fetch failed");
    let view = outbound::tenant_view(e).unwrap_or_else(|| e.to_string());
    let details = json!({"metadata_url": url, "error": view});
    match audit(state, caller, Outcome::Failure, action, target, details).await {
        Ok(()) => AppError::new(Kind::Unprocessable, FETCH_FAILED),
        Err(a) => a,
    }
}

/// Fetches and parses the metadata at `url` through the outbound guard, for `action` on
/// `target`: a URL of the wrong form is 400 with the reason, a fetch that fails is the generic
/// 422 of [`fetch_failed`], a document that fails is 422 with the reason.
async fn fetched(
    state: &AppState,
    caller: &Caller,
    (action, target): (&str, &str),
    url: &str,
    signer: Option<String>,
) -> Result<IdpDescriptor, AppError> {
    check_metadata_url(url).map_err(|e| bad(e.to_string()))?;
    let text = match fetch_metadata(&state.config.outbound_allow_private, url).await {
        Ok(text) => text,
        Err(e) => return Err(fetch_failed(state, caller, (action, target), url, &e).await),
    };
    parse(text, state.clock.now_millis(), signer, Kind::Unprocessable).await
}

/// The connection named `name` in the caller's tenant (404 when there is none).
async fn connection(state: &AppState, caller: &Caller, name: String) -> Result<SamlConnection, AppError> {
    let tid = caller.tenant.id.clone();
    state
        .store(move |db| db.saml_connection_by_name(&tid, &name))
        .await?
        .ok_or_else(|| not_found("SAML connection"))
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
pub(super) struct SamlQuery {
    #[schemars(range(min = 1, max = 1000))]
    limit: Option<i64>,
    cursor: Option<String>,
    /// A name prefix.
    q: Option<String>,
    /// The connection claiming this domain.
    domain: Option<String>,
}

/// `GET /admin/t/{tenant}/saml-connections`: a page of connections by name; `q` a name prefix,
/// `domain` the connection claiming a domain.
pub(super) async fn list(
    req: HttpRequest,
    slug: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    async {
        let caller = authenticate(&req, &state, &slug).await?;
        let q: SamlQuery = query(&req)?;
        let (limit, after) = paging(q.limit, q.cursor.as_deref())?;
        let after = after.map(|k| key_str(&k, 0)).transpose()?;
        let tid = caller.tenant.id.clone();
        let all = state.store(move |db| db.list_saml_connections(&tid)).await?;
        let domain = q.domain.as_deref().map(str::to_lowercase);
        let page: Vec<SamlConnection> = all
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
            "saml.connection.list",
            "saml",
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

#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "NewSamlConnection")]
pub(super) struct CreateBody {
    name: String,
    display_name: Option<String>,
    /// The IdP's metadata document (the connection is not refreshed).
    metadata_xml: Option<String>,
    /// Where the IdP publishes its metadata; fetched now and refreshed hourly.
    metadata_url: Option<String>,
    #[serde(default)]
    #[schemars(with = "Option<Closed<SamlOptions>>")]
    options: Option<Value>,
}

/// What a merge patch over a connection's JSON form may change; the other members may only be
/// sent back as they are.
// The schema of what `change_from_patch` reads (it merges into the JSON form itself).
#[derive(schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(super) struct SamlPatch {
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    options: MergePatch<SamlOptions>,
    /// A new URL is fetched now; `null` stops refreshing and keeps the metadata.
    #[serde(default)]
    metadata_url: Option<String>,
    /// Replaces the metadata from a document.
    #[serde(default)]
    metadata_xml: Option<String>,
}

/// `POST /admin/t/{tenant}/saml-connections`: connects an IdP from `metadata_xml` or
/// `metadata_url` (one of them); `sign_requests` defaults to what the metadata asks for. 201
/// with the connection; `Idempotency-Key` makes a retry connect nothing twice. 409 for a taken
/// name or a domain another connection claims.
pub(super) async fn create(
    req: HttpRequest,
    slug: web::Path<String>,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, AppError> {
    async {
        let caller = authenticate(&req, &state, &slug).await?;
        let bytes = read_body(payload).await?;
        let run = async {
            let b: CreateBody = super::object(&bytes)?;
            let given = b.options.unwrap_or_else(|| json!({}));
            let mut options = strict_options(&given)?;
            signer_der(&mut options);
            let now = state.clock.now_millis();
            let signer = options.metadata_signer.clone();
            let (idp, metadata_url) = match (b.metadata_xml, b.metadata_url) {
                (Some(xml), None) => (parse(xml, now, signer, Kind::BadRequest).await?, None),
                (None, Some(url)) => {
                    let target = format!("saml:{}", b.name);
                    let at = ("saml.connection.create", target.as_str());
                    (fetched(&state, &caller, at, &url, signer).await?, Some(url))
                }
                _ => {
                    return Err(bad(
                        "Give the metadata as metadata_xml or metadata_url (one of them).",
                    ));
                }
            };
            if given.get("sign_requests").is_none() {
                options.sign_requests = idp.wants_signed_requests;
            }
            let spec = ConnectionSpec {
                name: b.name,
                display_name: b.display_name,
                idp,
                metadata_url,
                options,
            };
            let (db, keys, tenant, actor) = (
                state.db.clone(),
                state.keys.clone(),
                caller.tenant.clone(),
                caller.actor(),
            );
            let made = blocking(move || connect(&db, &keys, &tenant, &actor, spec, now)).await?;
            let view = serde_json::to_value(&made).map_err(|e| AppError::internal("saml", e))?;
            Ok((StatusCode::CREATED, view))
        };
        super::idempotency::once(&state, &caller, (&req, &bytes), run).await
    }
    .await
    .map_err(AppError::problem)
}

/// `GET /admin/t/{tenant}/saml-connections/{name}`: the connection with its `ETag`.
pub(super) async fn get(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    async {
        let (caller, name) = caller_and_name(&req, &state, path).await?;
        let c = connection(&state, &caller, name).await?;
        let target = format!("saml:{}", c.id);
        audit(
            &state,
            &caller,
            Outcome::Success,
            "saml.connection.read",
            &target,
            json!({"name": c.name}),
        )
        .await?;
        Ok(etag_response(&c, c.updated_at))
    }
    .await
    .map_err(AppError::problem)
}

/// An IdP signing certificate as read, or why it could not be.
#[derive(serde::Serialize, schemars::JsonSchema)]
#[serde(untagged)]
pub(super) enum Certificate {
    Read {
        subject: String,
        issuer: String,
        not_before: i64,
        not_after: i64,
        sha256: String,
        valid_now: bool,
    },
    Unreadable {
        error: String,
    },
}

/// `GET /admin/t/{tenant}/saml-connections/{name}/certificates`: the IdP's signing
/// certificates: subject, issuer, validity (Unix ms), SHA-256 fingerprint, valid now.
pub(super) async fn certificates(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    async {
        let (caller, name) = caller_and_name(&req, &state, path).await?;
        let c = connection(&state, &caller, name).await?;
        let now = state.clock.now_millis();
        let certs: Vec<Certificate> = c
            .idp
            .certificates
            .iter()
            .map(|der| match latchkey_saml::certs::info(der) {
                Ok(i) => Certificate::Read {
                    valid_now: i.valid_at(now),
                    subject: i.subject,
                    issuer: i.issuer,
                    not_before: i.not_before,
                    not_after: i.not_after,
                    sha256: i.sha256,
                },
                Err(e) => Certificate::Unreadable { error: e.to_string() },
            })
            .collect();
        let target = format!("saml:{}", c.id);
        let details = json!({"name": c.name, "certificates": certs.len()});
        audit(
            &state,
            &caller,
            Outcome::Success,
            "saml.certificates.read",
            &target,
            details,
        )
        .await?;
        Ok(json_ok(&certs))
    }
    .await
    .map_err(AppError::problem)
}

/// What a patch over the connection's JSON form may change; the rest is fixed.
const FIXED: [&str; 9] = [
    "id",
    "tenant_id",
    "name",
    "idp",
    "sp_certificate",
    "metadata_refreshed_at",
    "metadata_error",
    "next_refresh_at",
    "created_at",
];

/// The change a merge patch over `c`'s JSON form asks for: `display_name`, `options` (merged
/// member by member), `metadata_url` (a new URL is fetched now; `null` stops refreshing and
/// keeps the metadata), and `metadata_xml`, which replaces the metadata from a document.
async fn change_from_patch(
    (state, caller): (&AppState, &Caller),
    c: &SamlConnection,
    mut patch: Value,
    now: i64,
) -> Result<SamlConnectionUpdate, AppError> {
    let xml = match patch.as_object_mut().and_then(|p| p.remove("metadata_xml")) {
        None | Some(Value::Null) => None,
        Some(Value::String(x)) => Some(x),
        Some(_) => return Err(bad("metadata_xml must be a string")),
    };
    let shown = serde_json::to_value(c).map_err(|e| AppError::internal("saml", e))?;
    let mut merged = shown.clone();
    latchkey_core::patch::merge_patch(&mut merged, &patch);
    if let Some(k) = patch
        .as_object()
        .and_then(|p| p.keys().find(|k| shown.get(k.as_str()).is_none()))
    {
        return Err(bad(format!("{k} is not a member of a SAML connection")));
    }
    if let Some(k) = FIXED
        .iter()
        .chain(["updated_at"].iter())
        .find(|k| merged.get(**k) != shown.get(**k))
    {
        return Err(bad(format!("{k} can't be changed")));
    }
    let display_name = merged["display_name"]
        .as_str()
        .ok_or_else(|| bad("display_name must be a string"))?
        .to_owned();
    let mut options = strict_options(merged.get("options").unwrap_or(&Value::Null))?;
    signer_der(&mut options);
    let url = match merged.get("metadata_url") {
        None | Some(Value::Null) => None,
        Some(Value::String(u)) => Some(u.clone()),
        Some(_) => return Err(bad("metadata_url must be a string or null")),
    };
    let mut change = SamlConnectionUpdate {
        display_name: (display_name != c.display_name).then_some(display_name),
        options: (options != c.options).then(|| options.clone()),
        ..SamlConnectionUpdate::default()
    };
    let signer = options.metadata_signer.clone();
    match (xml, url) {
        (Some(_), Some(_)) => return Err(bad("Give metadata_xml or metadata_url, not both.")),
        (Some(xml), None) => {
            change.idp = Some(parse(xml, now, signer, Kind::BadRequest).await?);
            change.metadata_url = Some(None);
        }
        (None, Some(url)) if c.metadata_url.as_deref() != Some(url.as_str()) => {
            let target = format!("saml:{}", c.id);
            let at = ("saml.connection.update", target.as_str());
            change.idp = Some(fetched(state, caller, at, &url, signer).await?);
            change.next_refresh_at = Some(Some(now + METADATA_REFRESH_MS));
            change.metadata_url = Some(Some(url));
        }
        (None, None) if c.metadata_url.is_some() => change.metadata_url = Some(None),
        _ => {}
    }
    Ok(change)
}

/// `PATCH /admin/t/{tenant}/saml-connections/{name}`: a JSON merge patch over the connection
/// as `GET` shows it (see [`change_from_patch`]); with `If-Match`, 412 when it changed since.
/// Answers the connection and its new `ETag`; the store audits the change.
pub(super) async fn update(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, AppError> {
    async {
        let (caller, name) = caller_and_name(&req, &state, path).await?;
        let bytes = read_body(payload).await?;
        let merge = merge_patch_body(&req, &bytes)?;
        let asked = if_match(&req)?;
        let c = connection(&state, &caller, name).await?;
        if let Some(v) = asked.filter(|v| *v != c.updated_at) {
            return Err(StoreError::Stale(format!("the connection changed since version {v}")).into());
        }
        let change = change_from_patch((&state, &caller), &c, merge, state.clock.now_millis()).await?;
        let (db, tenant, actor) = (state.db.clone(), caller.tenant.clone(), caller.actor());
        let after = blocking(move || {
            if let Some(o) = &change.options {
                check_options(&db, &tenant, o)?;
            }
            // The version read is the one replaced: a change committed meanwhile (an update, a
            // refresh) makes this one 412 instead of being lost.
            Ok::<_, AppError>(db.update_saml_connection_if(
                &tenant.id,
                &actor,
                &c.id,
                &change,
                Some(c.updated_at),
            )?)
        })
        .await?;
        Ok(etag_response(&after, after.updated_at))
    }
    .await
    .map_err(AppError::problem)
}

/// A connection after a refresh, and whether its metadata changed.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub(super) struct Refreshed {
    #[serde(flatten)]
    connection: SamlConnection,
    changed: bool,
}

#[derive(serde::Serialize, schemars::JsonSchema)]
pub(super) struct SamlDeleted {
    deleted: &'static str,
    name: String,
    id: String,
}

/// `POST /admin/t/{tenant}/saml-connections/{name}/refresh`: fetches the metadata from its URL
/// now, as the hourly refresh does. 200 with the connection and `changed`; 409 for a
/// connection whose metadata was given inline; 422 when the fetch or the document fails (the
/// last good metadata stays, the failure is recorded and audited).
pub(super) async fn refresh(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    async {
        let (caller, name) = caller_and_name(&req, &state, path).await?;
        let c = connection(&state, &caller, name).await?;
        if c.metadata_url.is_none() {
            return Err(AppError::new(
                Kind::Conflict,
                "This connection's metadata was given inline: replace it with PATCH (metadata_xml or metadata_url).",
            ));
        }
        let now = state.clock.now_millis();
        let outbound = &state.config.outbound_allow_private;
        let after = refresh_connection(&state.db, state.keys.clone(), state.rng.clone(), outbound, &c, now)
            .await
            .map_err(|e| match e {
                latchkey_services::ServiceError::Store(e) => AppError::from(e),
                // Recorded and audited (as much as the tenant may know) by the refresh itself.
                other if outbound::tenant_view(&other).is_some() => {
                    tracing::warn!(tenant = %caller.tenant.slug, connection = %c.name, error = %other, "SAML metadata fetch failed");
                    AppError::new(
                        Kind::Unprocessable,
                        format!("Refreshing failed (the last good metadata stays in use). {FETCH_FAILED}"),
                    )
                }
                other => AppError::new(
                    Kind::Unprocessable,
                    format!("Refreshing failed (the last good metadata stays in use): {other}"),
                ),
            })?;
        let changed = after.idp != c.idp;
        if after.idp.certificates != c.idp.certificates {
            // A certificate-change alert may be waiting in the outbox.
            state.mail.wake();
        }
        let target = format!("saml:{}", c.id);
        let details = json!({"name": c.name, "changed": changed});
        audit(&state, &caller, Outcome::Success, "saml.connection.refresh", &target, details).await?;
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

/// `DELETE /admin/t/{tenant}/saml-connections/{name}`: removes the connection and the links of
/// its users' identities (the users stay); with `If-Match`, 412 when it changed since.
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
                    .saml_connection_by_name(&tid, &name)?
                    .ok_or(StoreError::NotFound {
                        what: "SAML connection",
                    })?;
                // The version is checked by the delete itself (a refresh may commit meanwhile).
                db.delete_saml_connection(&tid, &actor, &c.id, asked)?;
                Ok::<_, StoreError>(c)
            })
            .await
            .map_err(super::missing("SAML connection"))?;
        Ok(json_ok(&SamlDeleted {
            deleted: "saml_connection",
            name: gone.name,
            id: gone.id,
        }))
    }
    .await
    .map_err(AppError::problem)
}
