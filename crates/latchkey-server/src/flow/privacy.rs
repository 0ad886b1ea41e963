//! A person's data as the account page and the admin API hand it out (docs/privacy.md): the
//! one export, with the sessions only the server's session store knows, and the person's own
//! security activity.

use crate::state::AppState;
use crate::web::blocking::Blocking;
use crate::web::errors::AppError;
use latchkey_core::{Tenant, User};
use latchkey_services::privacy::{self, Activity, ExportRequest, UserExport};

/// How far back the account page's activity list reaches, and how long it is.
const ACTIVITY_DAYS: i64 = 90;
const ACTIVITY_LINES: usize = 25;

/// Everything held about `user`, audited as `user.export` by `actor`.
pub(crate) async fn export(
    state: &AppState,
    tenant: &Tenant,
    user: &User,
    actor: &str,
) -> Result<UserExport, AppError> {
    let sessions = state
        .ephemeral
        .list_user_sessions(&tenant.id, &user.id)
        .await?
        .into_iter()
        .map(|(_, s)| s)
        .collect();
    let (tenant, user, actor) = (tenant.clone(), user.clone(), actor.to_owned());
    let now = state.clock.now_millis();
    state
        .store(move |db| {
            let request = ExportRequest {
                tenant: &tenant,
                user: &user,
                sessions: Some(sessions),
                actor: &actor,
                now,
            };
            privacy::export(db, request)
        })
        .await
}

/// The person's recent security events, newest first.
pub(crate) async fn activity(
    state: &AppState,
    tenant: &Tenant,
    user: &User,
) -> Result<Vec<Activity>, AppError> {
    let since = state.clock.now_millis() - ACTIVITY_DAYS * 86_400_000;
    let (tenant, user) = (tenant.clone(), user.clone());
    state
        .store(move |db| privacy::activity(db, &tenant, &user, since, ACTIVITY_LINES))
        .await
}
