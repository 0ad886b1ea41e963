//! `GET /admin/t/{tenant}/audit/verify`: the tenant's audit chain walked and checked as
//! `latchkey audit verify` does (`latchkey_audit::verify`), answered as a result rather than
//! an error: a broken chain is a finding, not a failed call.

use super::{NoQuery, audit, authenticate, json_ok, query};
use crate::state::AppState;
use crate::web::blocking::Blocking;
use crate::web::errors::AppError;
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_audit::{AuditError, Verdict};
use latchkey_core::Outcome;
use latchkey_store::AuditRepo;
use serde_json::json;

/// The chain's verdict: intact with its head, or the first broken event and why.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub(super) struct Verification {
    ok: bool,
    /// The events checked (before the broken one), from the retention anchor.
    events: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    head_hash: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    first_broken_seq: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

/// `{"ok": true, "events": N, "head_hash": …}` for an intact chain; `{"ok": false,
/// "events": N, "first_broken_seq": S, "reason": …}` for a broken one (N the events checked
/// before S, counted from the retention anchor).
/// The call's own `audit.verify` event is appended after the walk.
pub(super) async fn verify(
    req: HttpRequest,
    slug: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    async {
        let caller = authenticate(&req, &state, &slug).await?;
        let NoQuery {} = query(&req)?;
        let tid = caller.tenant.id.clone();
        let (verdict, anchor) = state
            .store(move |db| {
                let verdict = latchkey_audit::verify(db, &tid).map_err(|e| match e {
                    AuditError::Store(e) => AppError::from(e),
                    other @ AuditError::Io(_) => AppError::internal("audit verify", other),
                })?;
                Ok::<_, AppError>((verdict, db.audit_anchor(&tid)?.seq))
            })
            .await?;
        let answer = match verdict {
            Verdict::Intact { events, head_hash } => Verification {
                ok: true,
                events,
                head_hash: Some(head_hash),
                first_broken_seq: None,
                reason: None,
            },
            Verdict::Broken { seq, reason } => Verification {
                ok: false,
                events: u64::try_from(seq - 1 - anchor).unwrap_or(0),
                head_hash: None,
                first_broken_seq: Some(seq),
                reason: Some(reason),
            },
        };
        let target = format!("tenant:{}", caller.tenant.id);
        let details =
            json!({"ok": answer.ok, "events": answer.events, "first_broken_seq": answer.first_broken_seq});
        audit(
            &state,
            &caller,
            Outcome::Success,
            "audit.verify",
            &target,
            details,
        )
        .await?;
        Ok(json_ok(&answer))
    }
    .await
    .map_err(AppError::problem)
}
