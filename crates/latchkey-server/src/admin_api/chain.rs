//! `GET /admin/t/{tenant}/audit/verify`: the tenant's audit chain walked and checked as
//! `latchkey audit verify` does (`latchkey_audit::verify`), answered as a result rather than
//! an error: a broken chain is a finding, not a failed call.

use super::{NoQuery, audit, authenticate, json_ok, path_tenant, query};
use crate::state::AppState;
use crate::web::blocking::Blocking;
use crate::web::errors::AppError;
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_audit::{AuditError, Verdict};
use latchkey_core::Outcome;
use latchkey_store::AuditRepo;
use serde_json::json;

fn audit_error(e: AuditError) -> AppError {
    match e {
        AuditError::Store(e) => AppError::from(e),
        other @ AuditError::Io(_) => AppError::internal("audit chain", other),
    }
}

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

/// What a retention run deleted.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub(super) struct RetentionRun {
    audit_events_deleted: u64,
    risk_histories_deleted: u64,
}

/// `{"ok": true, "events": N, "head_hash": …}` for an intact chain; `{"ok": false,
/// "events": N, "first_broken_seq": S, "reason": …}` for a broken one (N the events checked
/// before S, counted from the retention anchor).
/// The call's own `audit.verify` event is appended after the walk.
pub(super) async fn verify(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    async {
        let caller = authenticate(&req, &state, &path_tenant(&req)).await?;
        let NoQuery {} = query(&req)?;
        let tid = caller.tenant.id.clone();
        let (verdict, anchor) = state
            .store(move |db| {
                let verdict = latchkey_audit::verify(db, &tid).map_err(audit_error)?;
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

/// `POST /admin/t/{tenant}/audit/retention`: the tenant's audit and risk-history retention
/// applied now, as the server does daily (`latchkey audit retention`); answers what went.
/// Needs `policies:write`: it deletes no more than the policy's retention already will.
pub(super) async fn retention(
    req: HttpRequest,
    slug: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    async {
        let caller = authenticate(&req, &state, &slug).await?;
        let NoQuery {} = query(&req)?;
        let (t, now) = (caller.tenant.clone(), state.clock.now_millis());
        let done = state
            .store(move |db| latchkey_audit::apply_retention(db, &t, now).map_err(audit_error))
            .await?;
        let answer = RetentionRun {
            audit_events_deleted: done.audit_events_deleted,
            risk_histories_deleted: done.risk_histories_deleted,
        };
        let target = format!("tenant:{}", caller.tenant.id);
        let details = json!({"audit_events_deleted": answer.audit_events_deleted,
                             "risk_histories_deleted": answer.risk_histories_deleted});
        audit(
            &state,
            &caller,
            Outcome::Success,
            "audit.retention_run",
            &target,
            details,
        )
        .await?;
        Ok(json_ok(&answer))
    }
    .await
    .map_err(AppError::problem)
}
