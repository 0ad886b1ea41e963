//! `/admin/t/{tenant}/clients/{id}/…`: changes to a client. Writes need the admin role and are
//! audited by the store with the change (docs/admin-api.md).

use super::{authenticate, body, json_ok, missing};
use crate::state::AppState;
use crate::web::blocking::Blocking;
use crate::web::errors::{AppError, Kind};
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_core::{AdminRole, ClientId};
use latchkey_store::{ClientRepo, MAX_SECRET_OVERLAP_MS};
use serde_json::json;

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RotateBody {
    /// How long the old secret keeps working; absent or 0: it stops at once.
    #[serde(default)]
    overlap_secs: u64,
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
        let caller = authenticate(&req, &state, &slug, AdminRole::Admin).await?;
        let b: RotateBody = body(&bytes, true)?;
        let max = u64::try_from(MAX_SECRET_OVERLAP_MS / 1000).unwrap_or(0);
        if b.overlap_secs > max {
            let m = format!("overlap_secs must be 0 to {max}");
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
        Ok(json_ok(&json!({
            "client_id": client.client_id,
            "client_secret": secret,
            "previous_secret_expires_at": client.previous_secret.map(|p| p.expires_at),
        })))
    }
    .await
    .map_err(AppError::json)
}
