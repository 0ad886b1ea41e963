//! `/admin/t/{tenant}/keys…`: the tenant's signing keys as `latchkey keys` drives them, through
//! the same key-ring calls and so the same state machine (docs/keys.md): list, rotate (a
//! pending key), activate, retire, revoke. A transition the key's state does not allow is 409
//! with the reason. Private material never leaves the ring. The master key and the data keys
//! are system-scope work and are not here.

use super::{Caller, NoQuery, audit, authenticate, body, json_ok, query};
use crate::state::AppState;
use crate::web::blocking::blocking;
use crate::web::errors::{AppError, Kind};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_core::Outcome;
use latchkey_keys::{Alg, KeyError, KeyRing, RingKey};
use serde_json::json;

/// A key-ring refusal as the admin API answers it: an unknown kid is 404, a transition the
/// key's state does not allow 409 with the ring's reason.
fn key_error(e: KeyError) -> AppError {
    match e {
        KeyError::UnknownKey(_) => AppError::not_found("No such signing key in this tenant."),
        KeyError::Refused(why) => AppError::new(Kind::Conflict, why),
        other => AppError::from(other),
    }
}

/// Runs `f` on the tenant's key ring on the blocking pool (it reads and writes the store).
async fn on_ring<T: Send + 'static>(
    state: &AppState,
    caller: &Caller,
    f: impl FnOnce(&KeyRing, &latchkey_core::TenantId) -> Result<T, KeyError> + Send + 'static,
) -> Result<T, AppError> {
    let (keys, tid) = (state.keys.clone(), caller.tenant.id.clone());
    blocking(move || f(&keys, &tid).map_err(key_error)).await
}

/// The key `kid` as it is now.
async fn key(state: &AppState, caller: &Caller, kid: String) -> Result<RingKey, AppError> {
    on_ring(state, caller, move |ring, t| {
        ring.list(t)?
            .into_iter()
            .find(|k| k.kid == kid)
            .ok_or(KeyError::UnknownKey(kid))
    })
    .await
}

/// `GET /admin/t/{tenant}/keys`: every signing key with its state and transition times (Unix
/// ms); public and private material stay out.
pub(super) async fn list(
    req: HttpRequest,
    slug: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    async {
        let caller = authenticate(&req, &state, &slug).await?;
        let NoQuery {} = query(&req)?;
        let keys = on_ring(&state, &caller, KeyRing::list).await?;
        let details = json!({"keys": keys.len()});
        audit(&state, &caller, Outcome::Success, "keys.list", "keys", details).await?;
        Ok(json_ok(&keys))
    }
    .await
    .map_err(AppError::problem)
}

#[derive(serde::Deserialize, schemars::JsonSchema, Default)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "KeyRotation")]
pub(super) struct RotateBody {
    /// `ES256`, `RS256` or `EdDSA`; ES256 when absent.
    alg: Option<Alg>,
}

/// `POST /admin/t/{tenant}/keys/rotate`: a new pending key of `alg`, published in JWKS at once
/// and signing once activated (by `…/activate` or the scheduler after the pre-publication
/// period). 201 with the key; `Idempotency-Key` makes a retry create no second key.
pub(super) async fn rotate(
    req: HttpRequest,
    slug: web::Path<String>,
    state: web::Data<AppState>,
    bytes: web::Bytes,
) -> Result<HttpResponse, AppError> {
    async {
        let caller = authenticate(&req, &state, &slug).await?;
        let NoQuery {} = query(&req)?;
        let b: RotateBody = body(&bytes, true)?;
        let run = async {
            let (alg, actor) = (b.alg.unwrap_or(Alg::ES256), caller.actor());
            let kid = on_ring(&state, &caller, move |ring, t| ring.rotate(t, alg, &actor)).await?;
            let made = key(&state, &caller, kid).await?;
            let view = serde_json::to_value(&made).map_err(|e| AppError::internal("key", e))?;
            Ok((StatusCode::CREATED, view))
        };
        super::idempotency::once(&state, &caller, (&req, &bytes), run).await
    }
    .await
    .map_err(AppError::problem)
}

/// A test token and the key that signed it.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub(super) struct TestToken {
    /// A compact JWS for nobody (audience `latchkey-test-token`), valid five minutes.
    token: String,
    kid: String,
    alg: Alg,
}

/// `POST /admin/t/{tenant}/keys/test-token` `{"alg"?}` (ES256 by default): a five-minute
/// token for nobody, signed by the active key and verified against the published ones, with
/// the kid that signed it (`latchkey keys test-token`).
pub(super) async fn test_token(
    req: HttpRequest,
    slug: web::Path<String>,
    state: web::Data<AppState>,
    bytes: web::Bytes,
) -> Result<HttpResponse, AppError> {
    async {
        let caller = authenticate(&req, &state, &slug).await?;
        let NoQuery {} = query(&req)?;
        let b: RotateBody = body(&bytes, true)?;
        let alg = b.alg.unwrap_or(Alg::ES256);
        let issuer = state.config.issuer(&caller.tenant.slug);
        let (token, kid) = on_ring(&state, &caller, move |ring, t| ring.test_token(t, &issuer, alg)).await?;
        let target = format!("key:{kid}");
        audit(
            &state,
            &caller,
            Outcome::Success,
            "keys.test_token",
            &target,
            json!({"alg": alg}),
        )
        .await?;
        Ok(json_ok(&TestToken { token, kid, alg }))
    }
    .await
    .map_err(AppError::problem)
}

/// What `activate`, `retire` and `revoke` do to a key.
#[derive(Clone, Copy)]
enum Transition {
    Activate,
    Retire,
    Revoke,
}

/// A key after a transition; for a revoke, the kid of the key that signs in its place (`null`
/// when none does).
#[derive(serde::Serialize, schemars::JsonSchema)]
pub(super) struct KeyAfter {
    #[serde(flatten)]
    key: RingKey,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[allow(clippy::option_option)] // only on a revoke, and then a kid or `null`
    replacement: Option<Option<String>>,
}

/// `POST /admin/t/{tenant}/keys/{kid}/{activate|retire|revoke}`: the transition, checked by
/// the key ring as the CLI's is; 200 with the key after it (and, for a revoke, the key that
/// signs in its place, if any).
async fn transition(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
    step: Transition,
) -> Result<HttpResponse, AppError> {
    async {
        let (slug, kid) = path.into_inner();
        let caller = authenticate(&req, &state, &slug).await?;
        let NoQuery {} = query(&req)?;
        let (id, actor) = (kid.clone(), caller.actor());
        let replacement = on_ring(&state, &caller, move |ring, t| match step {
            Transition::Activate => ring.activate(t, &id, &actor).map(|()| None),
            Transition::Retire => ring.retire(t, &id, &actor).map(|()| None),
            Transition::Revoke => ring.revoke(t, &id, &actor),
        })
        .await?;
        let after = key(&state, &caller, kid).await?;
        Ok(json_ok(&KeyAfter {
            key: after,
            replacement: matches!(step, Transition::Revoke).then_some(replacement),
        }))
    }
    .await
    .map_err(AppError::problem)
}

pub(super) async fn activate(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    transition(req, path, state, Transition::Activate).await
}

pub(super) async fn retire(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    transition(req, path, state, Transition::Retire).await
}

pub(super) async fn revoke(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    transition(req, path, state, Transition::Revoke).await
}
