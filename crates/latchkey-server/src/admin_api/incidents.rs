//! `POST /admin/t/{tenant}/incidents`: incident response (docs/privacy.md#incident-response),
//! the same `latchkey_services::incident` as `latchkey incident`. Sessions are voided in the
//! database (`sessions_not_before`), so every node refuses them whatever store holds them.

use super::{authenticate, body, json_ok};
use crate::state::AppState;
use crate::web::blocking::blocking;
use crate::web::errors::AppError;
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_services::incident::{IncidentPlan, Responder};

pub(super) async fn incident(
    req: HttpRequest,
    slug: web::Path<String>,
    state: web::Data<AppState>,
    bytes: web::Bytes,
) -> Result<HttpResponse, AppError> {
    async {
        let caller = authenticate(&req, &state, &slug).await?;
        // A body is required, `{}` included: no request without one runs on the whole tenant.
        let plan: IncidentPlan = body(&bytes, false)?;
        let (st, tenant, actor) = (state.clone(), caller.tenant.clone(), caller.actor());
        // A whole tenant's notices can outlast a request's database deadline: this runs on the
        // blocking pool without one, each step in its own transaction.
        let report = blocking(move || {
            let responder = Responder {
                db: &st.db,
                keys: &st.keys,
                rng: &*st.rng,
                clock: &*st.clock,
            };
            responder.run(&tenant, &actor, &plan)
        })
        .await?;
        // The keys changed under this node's cached ring; other nodes follow the change feed.
        state.keys.invalidate(&caller.tenant.id);
        if !report.notified.is_empty() {
            state.mail.wake();
        }
        Ok(json_ok(&report))
    }
    .await
    .map_err(AppError::problem)
}
