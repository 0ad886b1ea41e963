//! `/admin/t/{tenant}/clients/{id}…`: one client, read with its `ETag` and changed by a JSON
//! merge patch (RFC 7396) under `If-Match`, and its secret rotated. Writes need the admin role
//! and are audited by the store with the change (docs/admin-api.md).

use super::{
    Caller, audit, authenticate, body, etag_response, if_match, json_ok, key_str, missing, not_found, paged,
    paging, query,
};
use crate::state::AppState;
use crate::web::blocking::Blocking;
use crate::web::errors::{AppError, Kind};
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_core::{Client, ClientId, Outcome};
use latchkey_services::clients::{ClientSpec, registration};
use latchkey_services::{ServiceError, outbound, sector};
use latchkey_store::{ClientRepo, MAX_SECRET_OVERLAP_MS, StoreError};
use serde_json::{Value, json};

async fn caller_and_id(
    req: &HttpRequest,
    state: &AppState,
    path: web::Path<(String, String)>,
) -> Result<(Caller, ClientId), AppError> {
    let (slug, id) = path.into_inner();
    Ok((authenticate(req, state, &slug).await?, ClientId(id)))
}

/// A new client with its secret, in this answer only (`null` for a client without one).
#[derive(serde::Serialize, schemars::JsonSchema)]
pub(super) struct NewClient {
    #[serde(flatten)]
    client: Client,
    client_secret: Option<String>,
}

/// `POST /admin/t/{tenant}/clients`: registers a client from a [`ClientSpec`] (the defaults of
/// `latchkey client create`); 201 with the client and, for the secret methods, its
/// `client_secret` (in this answer only). With `Idempotency-Key`, a retry gets the same answer.
pub(super) async fn create(
    req: HttpRequest,
    slug: web::Path<String>,
    state: web::Data<AppState>,
    bytes: web::Bytes,
) -> Result<HttpResponse, AppError> {
    async {
        let caller = authenticate(&req, &state, &slug).await?;
        let run = async {
            let spec: ClientSpec = super::object(&bytes)?;
            let (new, secret) = registration(&spec, &*state.rng).map_err(StoreError::from)?;
            let at = ("client.create", "clients");
            sector_checked(&state, &caller, at, None, (&new.redirect_uris, &new.settings)).await?;
            let (tid, actor) = (caller.tenant.id.clone(), caller.actor());
            let client = state
                .store(move |db| db.create_client(&tid, &actor, &new))
                .await?;
            let view = serde_json::to_value(NewClient {
                client,
                client_secret: secret,
            })
            .map_err(|e| AppError::internal("client", e))?;
            Ok((actix_web::http::StatusCode::CREATED, view))
        };
        if bytes.len() > super::MAX_BODY {
            return Err(AppError::new(
                Kind::PayloadTooLarge,
                "The request body is too large.",
            ));
        }
        super::idempotency::once(&state, &caller, (&req, &bytes), run).await
    }
    .await
    .map_err(AppError::problem)
}

#[derive(serde::Serialize, schemars::JsonSchema)]
pub(super) struct ClientDeleted {
    deleted: &'static str,
    client_id: ClientId,
}

/// `DELETE /admin/t/{tenant}/clients/{id}`: deletes the client (its grants and tokens stop
/// working); with `If-Match`, 412 when it changed since.
pub(super) async fn delete(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    async {
        let (caller, cid) = caller_and_id(&req, &state, path).await?;
        let version = if_match(&req)?;
        let (tid, id, actor) = (caller.tenant.id.clone(), cid.clone(), caller.actor());
        state
            .store(move |db| db.delete_client(&tid, &actor, &id, version))
            .await
            .map_err(missing("client"))?;
        state.clients.remove(&(caller.tenant.id.clone(), cid.clone()));
        Ok(json_ok(&ClientDeleted {
            deleted: "client",
            client_id: cid,
        }))
    }
    .await
    .map_err(AppError::problem)
}

/// `GET /admin/t/{tenant}/clients/{id}`: the client with its `ETag`.
pub(super) async fn get(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    async {
        let (caller, cid) = caller_and_id(&req, &state, path).await?;
        let (tid, id) = (caller.tenant.id.clone(), cid.clone());
        let client = state
            .store(move |db| db.client(&tid, &id))
            .await?
            .ok_or_else(|| not_found("client"))?;
        let target = format!("client:{cid}");
        audit(
            &state,
            &caller,
            Outcome::Success,
            "client.read",
            &target,
            json!({}),
        )
        .await?;
        Ok(etag_response(&client, client.updated_at))
    }
    .await
    .map_err(AppError::problem)
}

/// `PATCH /admin/t/{tenant}/clients/{id}`: a JSON merge patch over the client's JSON form
/// (`application/merge-patch+json` or `application/json`), checked like a registration; with
/// `If-Match`, 412 when the client changed since. Answers the client and its new `ETag`.
pub(super) async fn update(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
    bytes: web::Bytes,
) -> Result<HttpResponse, AppError> {
    async {
        let (caller, cid) = caller_and_id(&req, &state, path).await?;
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
        let merge: Value = body(&bytes, false)?;
        let version = if_match(&req)?;
        let verified = sector_for_patch(&state, &caller, &cid, &merge).await?;
        let (tid, id, actor) = (caller.tenant.id.clone(), cid.clone(), caller.actor());
        let client = state
            .store(move |db| {
                db.update_client(&tid, &actor, &id, version, &|c| {
                    let after = latchkey_core::patch::patched_client(c, &merge).map_err(StoreError::from)?;
                    sector::still_verified(c, &after, verified.as_ref())?;
                    Ok(after)
                })
            })
            .await
            .map_err(missing("client"))?;
        state.clients.remove(&(client.tenant_id.clone(), cid));
        Ok(etag_response(&client, client.updated_at))
    }
    .await
    .map_err(AppError::problem)
}

/// The one answer to a sector document that could not be fetched (refused address, connection,
/// timeout, TLS, HTTP status, size): telling them apart would let a tenant admin probe the
/// server's network.
const SECTOR_FETCH_FAILED: &str = "The sector_identifier_uri could not be fetched: use a public https URL that answers with a JSON array of the client's redirect URIs (the server log has the reason).";

/// OIDC Registration §2: the sector document of a pairwise client going from `before` to
/// (`redirect_uris`, `settings`), fetched through the outbound guard when it is new or the
/// redirect URIs changed. A document without every redirect URI is 422 with the reason; a
/// fetch that failed is the generic 422, its cause logged and, as much as the tenant may know,
/// audited as a failure of `action` on `target`.
async fn sector_checked(
    state: &AppState,
    caller: &Caller,
    (action, target): (&str, &str),
    before: Option<&Client>,
    (redirect_uris, settings): (&[String], &latchkey_core::ClientSettings),
) -> Result<Option<sector::Verified>, AppError> {
    let policy = &state.config.outbound_allow_private;
    let e = match sector::verify_change(policy, before, redirect_uris, settings).await {
        Ok(verified) => return Ok(verified),
        Err(e) => e,
    };
    if let ServiceError::SectorIdentifier { .. } = e {
        return Err(AppError::new(Kind::Unprocessable, e.to_string()));
    }
    let Some(view) = outbound::tenant_view(&e) else {
        return Err(e.into());
    };
    tracing::warn!(tenant = %caller.tenant.slug, target, error = %e, "sector_identifier_uri fetch failed");
    let uri = settings.sector_identifier_uri.as_deref();
    let details = json!({"sector_identifier_uri": uri, "error": view});
    audit(state, caller, Outcome::Failure, action, target, details).await?;
    Err(AppError::new(Kind::Unprocessable, SECTOR_FETCH_FAILED))
}

/// [`sector_checked`] for the client `cid` as `merge` would leave it (the store applies the
/// patch again and refuses it if the client changed in between, `sector::still_verified`).
async fn sector_for_patch(
    state: &AppState,
    caller: &Caller,
    cid: &ClientId,
    merge: &Value,
) -> Result<Option<sector::Verified>, AppError> {
    let (tid, id) = (caller.tenant.id.clone(), cid.clone());
    let Some(before) = state.store(move |db| db.client(&tid, &id)).await? else {
        return Ok(None);
    };
    // A patch that does not apply is refused by the store's own run with the reason.
    let Ok(after) = latchkey_core::patch::patched_client(&before, merge) else {
        return Ok(None);
    };
    let target = format!("client:{cid}");
    let wanted = (after.redirect_uris.as_slice(), &after.settings);
    sector_checked(state, caller, ("client.update", &target), Some(&before), wanted).await
}

#[derive(serde::Deserialize, schemars::JsonSchema, Default)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "SecretRotation")]
pub(super) struct RotateBody {
    /// How long the old secret keeps working; absent or 0: it stops at once.
    #[serde(default)]
    #[schemars(range(max = MAX_OVERLAP_SECS))]
    overlap_secs: u64,
}

/// At most 30 days.
const MAX_OVERLAP_SECS: u64 = MAX_SECRET_OVERLAP_MS as u64 / 1000;

/// The new secret, in this answer only.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub(super) struct RotatedSecret {
    client_id: ClientId,
    client_secret: String,
    /// When the old secret stops working (Unix ms), or `null`: it already has.
    previous_secret_expires_at: Option<latchkey_core::UnixMillis>,
}

/// `POST /admin/t/{tenant}/clients/{id}/rotate-secret`: a new secret, in this answer only
/// (`client_secret`); the old one stops at once or after `overlap_secs` (at most 30 days),
/// `previous_secret_expires_at` (Unix ms). 400 for a client without a secret.
pub(super) async fn rotate_secret(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
    bytes: web::Bytes,
) -> Result<HttpResponse, AppError> {
    async {
        let (slug, id) = path.into_inner();
        let caller = authenticate(&req, &state, &slug).await?;
        let b: RotateBody = body(&bytes, true)?;
        if b.overlap_secs > MAX_OVERLAP_SECS {
            let m = format!("overlap_secs must be 0 to {MAX_OVERLAP_SECS}");
            return Err(AppError::new(Kind::BadRequest, m));
        }
        let overlap_ms = i64::try_from(b.overlap_secs).unwrap_or(0) * 1000;
        let until = (overlap_ms > 0).then(|| state.clock.now_millis() + overlap_ms);
        let secret = latchkey_core::random_token(&*state.rng, 32);
        let hash = latchkey_core::sha256_hex(secret.as_bytes());
        let (tid, cid, actor) = (caller.tenant.id.clone(), ClientId(id), caller.actor());
        let client = state
            .store(move |db| db.set_client_secret_hash(&tid, &actor, &cid, &hash, until))
            .await
            .map_err(missing("client"))?;
        state
            .clients
            .remove(&(client.tenant_id.clone(), client.client_id.clone()));
        Ok(json_ok(&RotatedSecret {
            client_id: client.client_id,
            client_secret: secret,
            previous_secret_expires_at: client.previous_secret.map(|p| p.expires_at),
        }))
    }
    .await
    .map_err(AppError::problem)
}

/// `GET /admin/t/{tenant}/clients`: a page of clients by name; see [`paged`].
pub(super) async fn list(
    req: HttpRequest,
    slug: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    async {
        let caller = authenticate(&req, &state, &slug).await?;
        let q: super::PageQuery = query(&req)?;
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

/// `user` (an id or username; without one, the client acting for itself) and the `scope` to
/// preview (default `openid profile email roles groups`).
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct PreviewQuery {
    user: Option<String>,
    scope: Option<String>,
}

/// What the client would get for the user, unsigned; nothing is minted or stored.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub(super) struct PreviewView {
    client_id: ClientId,
    user_id: Option<latchkey_core::UserId>,
    scope: String,
    id_token: Value,
    access_token: Value,
    userinfo: Value,
}

/// The client, and the user with their claim facts and the `sub` the client knows them by.
type Found = (
    Client,
    Option<(latchkey_core::User, latchkey_oidc::claims::ClaimFacts, String)>,
);

/// The client, and the user by username or id with their claim facts and `sub` (`None` when
/// not asked for); `Ok(None)` for an unknown client, 404 for an unknown user.
fn preview_subjects(
    (db, keys): (&latchkey_store::Db, &latchkey_keys::KeyRing),
    tid: &latchkey_core::TenantId,
    cid: &ClientId,
    name: Option<&str>,
) -> Result<Option<Found>, AppError> {
    use latchkey_oidc::UserLookup as _;
    use latchkey_store::UserRepo as _;
    let Some(client) = db.client(tid, cid)? else {
        return Ok(None);
    };
    let Some(name) = name else {
        return Ok(Some((client, None)));
    };
    let user = match db.user_by_username(tid, name)? {
        Some(u) => u,
        None => db
            .user(tid, &latchkey_core::UserId(name.to_owned()))?
            .ok_or(StoreError::NotFound { what: "user" })?,
    };
    let facts = db.claim_facts(tid, &user.id)?;
    let sub = latchkey_oidc::subject::subject_for(&client, user.id.as_str(), || keys.pairwise_salt(tid))?;
    Ok(Some((client, Some((user, facts, sub)))))
}

/// `GET /admin/t/{tenant}/clients/{id}/preview?user=…&scope=…`: the ID token, JWT access token
/// and userinfo claims the client would get for the user now (a sign-in with a password and a
/// second factor), with its claim mapping applied (docs/authorization.md).
pub(super) async fn preview(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    async {
        let (caller, id) = caller_and_id(&req, &state, path).await?;
        let q: PreviewQuery = query(&req)?;
        let scope = q
            .scope
            .unwrap_or_else(|| "openid profile email roles groups".to_owned());
        let (tid, cid, name) = (caller.tenant.id.clone(), id.clone(), q.user.clone());
        let keys = std::sync::Arc::clone(&state.keys);
        let found = state
            .store(move |db| preview_subjects((db, &keys), &tid, &cid, name.as_deref()))
            .await
            .map_err(missing("user"))?;
        let (client, who) = found.ok_or_else(|| not_found("client"))?;
        let amr = ["pwd".to_owned(), "otp".to_owned(), "mfa".to_owned()];
        let issuer = state.config.issuer(&caller.tenant.slug);
        let p = latchkey_oidc::grants::preview(
            (&issuer, &caller.tenant),
            &client,
            who.as_ref().map(|(u, _, sub)| (u, sub.as_str(), amr.as_slice())),
            (&scope, client.client_id.as_str()),
            who.as_ref().map(|(_, f, _)| f),
            state.clock.now_millis(),
        );
        let user_id = who.map(|(u, _, _)| u.id);
        let target = format!("client:{}", client.client_id);
        let details = json!({"user_id": user_id, "scope": scope});
        audit(
            &state,
            &caller,
            Outcome::Success,
            "client.preview",
            &target,
            details,
        )
        .await?;
        Ok(json_ok(&PreviewView {
            client_id: client.client_id,
            user_id,
            scope,
            id_token: p.id_token,
            access_token: p.access_token,
            userinfo: p.userinfo,
        }))
    }
    .await
    .map_err(AppError::problem)
}
