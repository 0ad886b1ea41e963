//! `Idempotency-Key` on creates (IETF draft-ietf-httpapi-idempotency-key-header): a create
//! retried with the same key (a timeout, a lost answer) gets the first answer again and creates
//! nothing; the same key with another request is 422, one still running 409. Keys belong to
//! one admin credential and live 24 hours in the session store (shared by all nodes on Redis).
//! The stored answer is sealed under the tenant's data key: a created client's secret is in it.
//! In the system scope (no data key of its own) it is sealed under the key of the tenant the
//! call created, named by the answer's `id`.

use super::Caller;
use crate::state::AppState;
use crate::web::errors::{AppError, Kind};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use latchkey_core::TenantId;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::Duration;

const TTL: Duration = Duration::from_secs(24 * 3600);
const MAX_KEY: usize = 255;

/// What is kept under a key: the request's fingerprint, then the answer once there is one
/// (its body sealed).
#[derive(Serialize, Deserialize)]
struct Record {
    fingerprint: String,
    status: Option<u16>,
    sealed: Option<String>,
    /// The tenant whose data key sealed the answer.
    #[serde(default)]
    under: Option<TenantId>,
}

fn aad<'a>(tenant: &'a str, slot: &'a str) -> latchkey_keys::Aad<'a> {
    latchkey_keys::Aad {
        tenant,
        table: "idempotency",
        column: "answer",
        row: slot,
    }
}

/// Whose data key seals `body`: the caller's tenant, or in the system scope the tenant made.
fn sealer(caller: &Caller, body: &Value) -> Result<TenantId, AppError> {
    if caller.tenant.id.as_str() != TenantId::SYSTEM {
        return Ok(caller.tenant.id.clone());
    }
    body["id"]
        .as_str()
        .map(TenantId::from)
        .ok_or_else(|| AppError::internal("idempotency", "a system create answered no tenant id"))
}

async fn seal(state: &AppState, t: TenantId, slot: &str, body: &Value) -> Result<String, AppError> {
    let (keys, slot) = (state.keys.clone(), slot.to_owned());
    let plain = body.to_string().into_bytes();
    crate::web::blocking::blocking(move || keys.seal(&t, aad(t.as_str(), &slot), &plain)).await
}

async fn open(state: &AppState, t: TenantId, slot: &str, sealed: String) -> Result<Value, AppError> {
    let (keys, slot) = (state.keys.clone(), slot.to_owned());
    let plain =
        crate::web::blocking::blocking(move || keys.open_sealed(&t, aad(t.as_str(), &slot), &sealed)).await?;
    serde_json::from_slice(&plain).map_err(|e| AppError::internal("idempotent answer", e))
}

fn answer(status: StatusCode, body: &Value) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(body)
}

fn encode(r: &Record) -> Vec<u8> {
    serde_json::to_vec(r).unwrap_or_default()
}

/// The request's `Idempotency-Key`, if it has one; a malformed one is 400 on every POST (a
/// POST that creates nothing takes the header and ignores it, as the document says).
pub(super) fn key(req: &HttpRequest) -> Result<Option<&str>, AppError> {
    let Some(key) = req.headers().get("idempotency-key") else {
        return Ok(None);
    };
    key.to_str()
        .ok()
        .map(|k| k.trim().trim_matches('"'))
        .filter(|k| !k.is_empty() && k.len() <= MAX_KEY && k.bytes().all(|b| b.is_ascii_graphic()))
        .map(Some)
        .ok_or_else(|| {
            AppError::new(
                Kind::BadRequest,
                "Idempotency-Key must be 1 to 255 visible ASCII characters.",
            )
        })
}

/// Runs the create `run` once per `Idempotency-Key` (or every time without one) and answers
/// what it answered.
pub(super) async fn once(
    state: &AppState,
    caller: &Caller,
    (req, bytes): (&HttpRequest, &[u8]),
    run: impl Future<Output = Result<(StatusCode, Value), AppError>>,
) -> Result<HttpResponse, AppError> {
    let Some(key) = key(req)? else {
        return run.await.map(|(status, body)| answer(status, &body));
    };
    let slot = format!(
        "idempotency:{}",
        latchkey_core::sha256_hex(format!("{}\n{key}", caller.token.id).as_bytes())
    );
    let mut seen = format!("{}\n{}\n", req.method(), req.path()).into_bytes();
    seen.extend_from_slice(bytes);
    let fingerprint = latchkey_core::sha256_hex(&seen);
    let t = &caller.tenant.id;
    let pending = Record {
        fingerprint: fingerprint.clone(),
        status: None,
        sealed: None,
        under: None,
    };
    if state.ephemeral.put_once(t, &slot, &encode(&pending), TTL).await? {
        return match run.await {
            Ok((status, body)) => {
                let under = sealer(caller, &body)?;
                let done = Record {
                    fingerprint,
                    status: Some(status.as_u16()),
                    sealed: Some(seal(state, under.clone(), &slot, &body).await?),
                    under: Some(under),
                };
                state.ephemeral.replace(t, &slot, &encode(&done), TTL).await?;
                Ok(answer(status, &body))
            }
            Err(e) => {
                // Nothing was made: a corrected retry with the same key may run.
                state.ephemeral.take(t, &slot).await?;
                Err(e)
            }
        };
    }
    let kept = state
        .ephemeral
        .peek(t, &slot)
        .await?
        .and_then(|b| serde_json::from_slice::<Record>(&b).ok());
    match kept {
        Some(r) if r.fingerprint != fingerprint => Err(AppError::new(
            Kind::Unprocessable,
            "This Idempotency-Key was used for a different request.",
        )),
        Some(Record {
            status: Some(status),
            sealed: Some(sealed),
            under,
            ..
        }) => replay(state, caller, &slot, (status, sealed, under)).await,
        _ => Err(AppError::new(
            Kind::Conflict,
            "A request with this Idempotency-Key is still being processed; retry shortly.",
        )),
    }
}

/// The kept answer, opened, marked `Idempotent-Replayed`.
async fn replay(
    state: &AppState,
    caller: &Caller,
    slot: &str,
    (status, sealed, under): (u16, String, Option<TenantId>),
) -> Result<HttpResponse, AppError> {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let under = under.unwrap_or_else(|| caller.tenant.id.clone());
    // The tenant whose key sealed it may be gone since (a system create, then a delete).
    let body = open(state, under, slot, sealed).await.map_err(|e| {
        tracing::warn!(error = %e.message, "idempotency: kept answer unreadable");
        AppError::new(
            Kind::Conflict,
            "The answer kept for this Idempotency-Key can no longer be read; use a new key.",
        )
    })?;
    let mut res = answer(status, &body);
    res.headers_mut().insert(
        actix_web::http::header::HeaderName::from_static("idempotent-replayed"),
        actix_web::http::header::HeaderValue::from_static("true"),
    );
    Ok(res)
}
