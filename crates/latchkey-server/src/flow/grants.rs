//! Revoking OAuth grants when a session or a user's sign-ins end (logout, password change, an
//! administrator's reset): every feature that ends sessions revokes the same way.

use crate::state::AppState;
use crate::web::blocking::Blocking;
use crate::web::errors::AppError;
use latchkey_core::Tenant;
use latchkey_store::{GrantsOf, OAuthRepo};

/// `GrantsOf` with owned parts, to cross into a blocking task.
pub(crate) enum Owned {
    User(latchkey_core::UserId),
    Session(String),
}

impl Owned {
    fn as_ref(&self) -> GrantsOf<'_> {
        match self {
            Self::User(u) => GrantsOf::User(u),
            Self::Session(k) => GrantsOf::Session(k),
        }
    }
}

/// Revokes grants (and their tokens) with an audit event; returns how many.
pub(crate) async fn revoke_grants(
    state: &AppState,
    tenant: &Tenant,
    which: Owned,
    reason: &'static str,
) -> Result<usize, AppError> {
    let tid = tenant.id.clone();
    let target = match &which {
        Owned::User(u) => format!("user:{u}"),
        Owned::Session(_) => "session".to_owned(),
    };
    let ev = latchkey_core::NewAuditEvent::success(
        "system",
        "oauth.revoke_grants",
        target,
        serde_json::json!({"reason": reason}),
    );
    let n = state
        .store(move |db| db.revoke_grants(&tid, which.as_ref(), reason, ev))
        .await?;
    if n > 0 {
        state.metrics.oauth("revoke", "grant", reason);
    }
    // The store may have queued Back-Channel Logout notices with the revocation.
    state.mail.wake();
    Ok(n)
}
