//! Audit events of the sign-in lifecycle, appended on the blocking pool.

use crate::state::AppState;
use crate::web::blocking::Blocking;
use crate::web::errors::AppError;
use latchkey_core::{NewAuditEvent, Outcome, Tenant};
use latchkey_store::AuditRepo;
use serde_json::json;

pub(crate) async fn audit(state: &AppState, tenant: &Tenant, event: NewAuditEvent) -> Result<(), AppError> {
    let tid = tenant.id.clone();
    state
        .store(move |db| db.append_audit(&tid, event))
        .await
        .map(drop)
}

pub(crate) fn failure(action: &str, target: String, reason: &str) -> NewAuditEvent {
    NewAuditEvent {
        actor: "anonymous".into(),
        action: action.into(),
        target,
        outcome: Outcome::Failure,
        details: json!({"reason": reason}),
    }
}
