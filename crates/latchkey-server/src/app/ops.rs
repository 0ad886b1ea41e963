//! Routes that belong to no feature: the landing page, liveness, readiness, metrics, the shared
//! stylesheet and the not-found answers.

use crate::state::AppState;
use crate::web::errors::{AppError, Kind};
use crate::web::net::ClientInfo;
use crate::web::pages::{CSS, message_page};
use crate::web::respond::wants_json;
use crate::web::tenant::tenant;
use actix_web::http::header;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, ResponseError, web};
use serde_json::json;
use std::time::Duration;

/// Load balancers probe with GET or HEAD (actix answers HEAD without a body).
pub(super) fn get_or_head() -> impl actix_web::guard::Guard {
    actix_web::guard::Any(actix_web::guard::Get()).or(actix_web::guard::Head())
}

pub(super) async fn not_found(req: HttpRequest) -> HttpResponse {
    let e = AppError::not_found("There is nothing at this address.");
    if wants_json(&req) { e.json() } else { e }.error_response()
}

/// Unknown tenant first (so nothing reveals which paths exist), then unknown path.
pub(super) async fn tenant_not_found(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let slug = req.match_info().get("tenant").unwrap_or_default().to_owned();
    let json = wants_json(&req);
    let e = match tenant(&state, &slug).await {
        Err(e) => e,
        Ok(_) => AppError::not_found("There is nothing at this address."),
    };
    if json { e.json() } else { e }.error_response()
}

pub(super) async fn index() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(message_page(
            "Latchkey",
            "This is a Latchkey identity provider. Sign-in starts from your application.",
        ))
}

pub(super) async fn css() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(CSS)
}

/// Liveness: the process answers. Deliberately touches no dependency.
pub(super) async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(json!({"status": "ok"}))
}

/// The dependencies' circuit breakers, by the names `/readyz` and `/metrics` use.
fn breakers(state: &AppState) -> Vec<(&'static str, latchkey_core::BreakerState)> {
    let mut all = vec![("database", state.db.breaker())];
    all.extend(state.ephemeral.breaker().map(|b| ("session_store", b)));
    all
}

/// Readiness: the database and the session store both answer within a couple of seconds. While a
/// dependency's breaker is open the check answers at once (its probe decides), and says so.
pub(super) async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    if state.draining() {
        return HttpResponse::ServiceUnavailable()
            .insert_header(("cache-control", "no-store"))
            .json(json!({"status": "draining"}));
    }
    let db = state.db.clone();
    let database = tokio::time::timeout(
        Duration::from_secs(3),
        web::block(move || db.ping(Duration::from_secs(2))),
    )
    .await
    .map_err(|_| "timed out".to_owned())
    .and_then(|r| r.map_err(|e| e.to_string()))
    .and_then(|r| r.map_err(|e| e.to_string()));
    let sessions = tokio::time::timeout(Duration::from_secs(3), state.ephemeral.ping())
        .await
        .map_err(|_| "timed out".to_owned())
        .and_then(|r| r.map_err(|e| e.to_string()));
    let mut checks = serde_json::Map::new();
    let mut ready = true;
    let open: Vec<&str> = breakers(&state)
        .into_iter()
        .filter(|(_, b)| b.open)
        .map(|(name, _)| name)
        .collect();
    for (part, result) in [("database", database), ("session_store", sessions)] {
        match result {
            Ok(()) => checks.insert(part.into(), json!("ok")),
            Err(detail) => {
                tracing::warn!(part, error = %detail, "readiness check failed");
                ready = false;
                let why = if open.contains(&part) {
                    "circuit_open"
                } else {
                    "unavailable"
                };
                checks.insert(part.into(), json!(why))
            }
        };
    }
    let mut res = if ready {
        HttpResponse::Ok()
    } else {
        HttpResponse::ServiceUnavailable()
    };
    res.insert_header((header::CACHE_CONTROL, "no-store"));
    if !ready {
        res.insert_header((header::RETRY_AFTER, "1"));
    }
    res.json(json!({"status": if ready { "ready" } else { "unavailable" }, "checks": checks}))
}

/// Prometheus scrape. Loopback clients may always scrape; others need the bearer token.
pub(super) async fn metrics(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let client = req.extensions().get::<ClientInfo>().copied();
    let loopback = client.is_some_and(|c| c.ip.is_loopback());
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let token_ok = match (&state.config.metrics_token, presented) {
        (Some(expected), Some(got)) => bool::from(subtle::ConstantTimeEq::ct_eq(
            expected.expose().as_bytes(),
            got.as_bytes(),
        )),
        _ => false,
    };
    if !loopback && !token_ok {
        return Err(AppError::new(
            Kind::Forbidden,
            "Metrics are served to loopback clients or with the metrics token.",
        ));
    }
    let backend = if state.db.url().is_sqlite() {
        "sqlite"
    } else {
        "postgres"
    };
    let mut body = state.metrics.render(
        state.db.pool_stats(),
        (backend, state.ephemeral.backend_name()),
        &breakers(&state),
    );
    state.tokens.render(&mut body);
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body))
}
