//! `/admin/t/{tenant}/policies`: the tenant's policy (password, MFA, sessions, tokens, keys,
//! risk, retention, throttling, sign-up, accounts), read with an `ETag` (the tenant's version)
//! and changed by a JSON merge patch (RFC 7396) under `If-Match`. The result is checked by
//! `latchkey_services::policy::check`, the rules `latchkey tenant update` keeps; a broken rule
//! is 422 naming the field. The risk webhook's URL and secret are not changed here (the secret
//! is shown once, by the CLI).

use super::{NoQuery, audit, authenticate, body, etag_response, if_match, query};
use crate::state::AppState;
use crate::web::blocking::Blocking;
use crate::web::errors::{AppError, Kind};
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_core::{Outcome, Tenant, TenantPolicy};
use latchkey_store::{StoreError, TenantRepo, TenantUpdate};
use serde_json::{Value, json};

/// A PATCH body's media type: a merge patch, or plain JSON; anything else is 415.
pub(super) fn merge_patch_body(req: &HttpRequest, bytes: &[u8]) -> Result<Value, AppError> {
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
    let patch: Value = body(bytes, false)?;
    if !patch.is_object() {
        return Err(AppError::new(
            Kind::BadRequest,
            "A merge patch here is a JSON object.",
        ));
    }
    Ok(patch)
}

/// The policy as the API shows it: its JSON form without the risk webhook's sealed secret,
/// and the MFA mode in force.
fn view(policy: &TenantPolicy) -> Value {
    let mut shown = policy.clone();
    shown.mfa.mode = policy.mfa_mode();
    shown.risk.webhook_secret_sealed = None;
    let mut v = serde_json::to_value(&shown).unwrap_or_default();
    if let Some(risk) = v.get_mut("risk").and_then(Value::as_object_mut) {
        risk.remove("webhook_secret_sealed");
    }
    v
}

/// `before` with `patch` merged over its view: the new policy, or 400 for a patch that is not
/// one of a policy (unknown members, wrong types, the webhook), 422 naming the field for a
/// rule it breaks.
fn patched(before: &TenantPolicy, patch: &Value) -> Result<TenantPolicy, AppError> {
    let shown = view(before);
    let mut merged = shown.clone();
    latchkey_core::patch::merge_patch(&mut merged, patch);
    let bad = |message: String| AppError::new(Kind::BadRequest, message);
    for member in ["webhook_url", "webhook_secret_sealed"] {
        if merged["risk"].get(member) != shown["risk"].get(member) {
            return Err(bad(format!(
                "risk.{member} is set with `latchkey tenant update --risk-webhook` (its secret is shown once)"
            )));
        }
    }
    if merged.get("mfa_required").is_some() {
        return Err(bad(
            "mfa_required is not a member of the policy: set mfa.mode".into()
        ));
    }
    let mut after: TenantPolicy =
        serde_json::from_value(merged).map_err(|e| bad(format!("not a tenant policy: {e}")))?;
    after
        .risk
        .webhook_secret_sealed
        .clone_from(&before.risk.webhook_secret_sealed);
    after.mfa_required = before.mfa_required && after.mfa.mode == before.mfa_mode();
    latchkey_services::policy::check(after).map_err(|e| AppError::new(Kind::Unprocessable, e.to_string()))
}

/// `GET /admin/t/{tenant}/policies`: the policy with its `ETag`.
pub(super) async fn get(
    req: HttpRequest,
    slug: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    async {
        let caller = authenticate(&req, &state, &slug).await?;
        let NoQuery {} = query(&req)?;
        let tenant = fresh(&state, &caller.tenant).await?;
        let target = format!("tenant:{}", tenant.id);
        audit(
            &state,
            &caller,
            Outcome::Success,
            "policy.read",
            &target,
            json!({}),
        )
        .await?;
        Ok(etag_response(&view(&tenant.policy), tenant.updated_at))
    }
    .await
    .map_err(AppError::problem)
}

/// The tenant as stored now (the extractor's copy may be seconds old, its version with it).
async fn fresh(state: &AppState, t: &Tenant) -> Result<Tenant, AppError> {
    let tid = t.id.clone();
    state
        .store(move |db| db.tenant(&tid)?.ok_or(StoreError::NotFound { what: "tenant" }))
        .await
}

/// `PATCH /admin/t/{tenant}/policies`: a JSON merge patch over the policy as `GET` shows it;
/// with `If-Match`, 412 when the tenant changed since. Answers the policy and its new `ETag`.
/// The store audits the change (`tenant.update`, before and after).
pub(super) async fn update(
    req: HttpRequest,
    slug: web::Path<String>,
    state: web::Data<AppState>,
    bytes: web::Bytes,
) -> Result<HttpResponse, AppError> {
    async {
        let caller = authenticate(&req, &state, &slug).await?;
        let NoQuery {} = query(&req)?;
        let patch = merge_patch_body(&req, &bytes)?;
        let asked = if_match(&req)?;
        let (tid, actor) = (caller.tenant.id.clone(), caller.actor());
        let tenant = state
            .store(move |db| {
                let before = db.tenant(&tid)?.ok_or(StoreError::NotFound { what: "tenant" })?;
                if let Some(v) = asked.filter(|v| *v != before.updated_at) {
                    return Err(StoreError::Stale(format!("the tenant changed since version {v}")).into());
                }
                let change = TenantUpdate {
                    display_name: None,
                    policy: Some(patched(&before.policy, &patch)?),
                };
                // The version read is the one replaced: a change committed meanwhile is a 412,
                // not a lost update.
                Ok::<_, AppError>(db.update_tenant_if(&tid, &actor, &change, Some(before.updated_at))?)
            })
            .await?;
        Ok(etag_response(&view(&tenant.policy), tenant.updated_at))
    }
    .await
    .map_err(AppError::problem)
}
