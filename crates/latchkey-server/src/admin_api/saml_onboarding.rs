//! `/admin/t/{tenant}/saml-connections/{name}/tests…` and `…/health`: what the console's SAML
//! onboarding pages call. A test sign-in is made here and run by the browser
//! (the SAML feature's test mode); its result is read back here. Health gathers the metadata
//! refresh state, the IdP certificates' expiry and the connection's recent refusals by reason
//! from the audit chain.

use super::{Caller, audit, authenticate, json_ok, not_found};
use crate::flow::saml_test::{self, SamlTest};
use crate::state::AppState;
use crate::web::blocking::Blocking;
use crate::web::errors::AppError;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_core::{Outcome, SamlConnection};
use latchkey_store::SamlRepo;
use serde_json::json;

async fn caller_and_connection(
    req: &HttpRequest,
    state: &AppState,
    slug: &str,
    name: String,
) -> Result<(Caller, SamlConnection), AppError> {
    let caller = authenticate(req, state, slug).await?;
    let tid = caller.tenant.id.clone();
    let c = state
        .store(move |db| db.saml_connection_by_name(&tid, &name))
        .await?
        .ok_or_else(|| not_found("SAML connection"))?;
    Ok((caller, c))
}

/// A test made: its public handle, and how the console's window starts it.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub(super) struct NewTest {
    /// The test's handle for `GET …/tests/{id}`.
    id: String,
    connection: String,
    /// Where the window posts `start` (a form POST, `application/x-www-form-urlencoded`).
    start_url: String,
    /// The one-time token the form carries as `start`; a secret, never put in a URL.
    start: String,
    /// When an unstarted or unfinished test lapses (Unix ms).
    expires_at: i64,
}

/// `POST /admin/t/{tenant}/saml-connections/{name}/tests`: makes a test sign-in of the
/// connection. 201 with its `id`, the `start_url` and the one-time `start` token: the console
/// opens a window that posts `start` to `start_url`, which runs the real sign-in at the IdP
/// and records the outcome instead of signing anyone in.
pub(super) async fn create(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    async {
        let (slug, name) = path.into_inner();
        let (caller, c) = caller_and_connection(&req, &state, &slug, name).await?;
        let (test, start) = saml_test::create(&state, &caller.tenant, &c, &caller.actor()).await?;
        let target = format!("saml:{}", c.id);
        let details = json!({"name": c.name, "test": test.id});
        audit(
            &state,
            &caller,
            Outcome::Success,
            "saml.test.create",
            &target,
            details,
        )
        .await?;
        let start_url = format!(
            "{}/saml/{}/test",
            state.config.issuer(&caller.tenant.slug),
            c.name
        );
        Ok(HttpResponse::Created()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(NewTest {
                id: test.id,
                connection: c.name,
                start_url,
                start,
                expires_at: test.expires_at,
            }))
    }
    .await
    .map_err(AppError::problem)
}

/// `GET /admin/t/{tenant}/saml-connections/{name}/tests/{test}`: the test's status (`pending`,
/// `succeeded`, `refused`) and outcome. 404 for a test of another connection or tenant, or one
/// no longer kept (15 minutes).
pub(super) async fn get(
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    async {
        let (slug, name, id) = path.into_inner();
        let (caller, c) = caller_and_connection(&req, &state, &slug, name).await?;
        let test: SamlTest = saml_test::load(&state, &caller.tenant, &id)
            .await?
            .filter(|t| t.connection_id == c.id)
            .ok_or_else(|| not_found("SAML test sign-in"))?;
        let target = format!("saml:{}", c.id);
        let details = json!({"name": c.name, "test": test.id});
        audit(
            &state,
            &caller,
            Outcome::Success,
            "saml.test.read",
            &target,
            details,
        )
        .await?;
        Ok(json_ok(&test))
    }
    .await
    .map_err(AppError::problem)
}

/// `GET /admin/t/{tenant}/saml-connections/{name}/health`: the last metadata refresh, each IdP
/// signing certificate's expiry (`warning` under 30 days, `expired` past it), refused sign-ins
/// of the last 7 days by reason, and the last successful sign-in
/// ([`latchkey_services::saml_health`]).
pub(super) async fn health(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    async {
        let (slug, name) = path.into_inner();
        let (caller, c) = caller_and_connection(&req, &state, &slug, name).await?;
        let now = state.clock.now_millis();
        let (tid, c2) = (caller.tenant.id.clone(), c.clone());
        let health = state
            .store(move |db| latchkey_services::saml_health::connection_health(db, &tid, &c2, now))
            .await?;
        let target = format!("saml:{}", c.id);
        audit(
            &state,
            &caller,
            Outcome::Success,
            "saml.health.read",
            &target,
            json!({"name": c.name}),
        )
        .await?;
        Ok(json_ok(&health))
    }
    .await
    .map_err(AppError::problem)
}
