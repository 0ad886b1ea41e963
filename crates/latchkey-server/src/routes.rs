//! The routes this issue owns: health, readiness, metrics, assets, the per-tenant scope and its
//! discovery document. Later protocol endpoints mount under `/t/{tenant}`.

use crate::errors::{AppError, Kind, blocking};
use crate::net::ClientInfo;
use crate::pages::{CSS, message_page};
use crate::state::AppState;
use actix_web::http::header;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, ResponseError, web};
use latchkey_core::Tenant;
use latchkey_store::TenantRepo;
use serde_json::json;

use std::time::Duration;

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(index))
        .route("/healthz", web::route().guard(get_or_head()).to(healthz))
        .route("/readyz", web::route().guard(get_or_head()).to(readyz))
        .route("/metrics", web::get().to(metrics))
        .route("/assets/latchkey.css", web::get().to(css))
        .route("/assets/passkey.js", web::get().to(crate::login::passkey_js))
        .route("/assets/form_post.js", web::get().to(crate::oidc::form_post_js))
        // Every tenant route in one scope: its pattern is matched once per request, then the
        // routes inside are plain paths (one regex per route was most of discovery's CPU).
        .service(
            web::scope("/t/{tenant}")
                .configure(crate::login::configure)
                .configure(crate::oidc::configure)
                .configure(crate::saml::configure)
                .route("/.well-known/openid-configuration", web::get().to(discovery))
                .route("/jwks", web::get().to(jwks))
                .default_service(web::to(tenant_not_found)),
        );
}

/// Load balancers probe with GET or HEAD (actix answers HEAD without a body).
fn get_or_head() -> impl actix_web::guard::Guard {
    actix_web::guard::Any(actix_web::guard::Get()).or(actix_web::guard::Head())
}

/// Looks a tenant up by its slug; an unknown or malformed slug is a 404.
pub(crate) async fn tenant(state: &AppState, slug: &str) -> Result<Tenant, AppError> {
    let unknown = || AppError::not_found(format!("There is no tenant called {slug:?} here."));
    if latchkey_core::validate::slug(slug).is_err() {
        return Err(unknown());
    }
    let generation = state.db.tenant_generation();
    if let Some(t) = state.tenants.get(&slug.to_owned(), generation) {
        return Ok(t);
    }
    let db = state.db.clone();
    let s = slug.to_owned();
    let t = blocking(move || db.tenant_by_slug(&s))
        .await?
        .ok_or_else(unknown)?;
    state.tenants.put(slug.to_owned(), t.clone(), generation);
    Ok(t)
}

fn wants_json(req: &HttpRequest) -> bool {
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    accept.contains("application/json") && !accept.contains("text/html")
}

pub(crate) async fn not_found(req: HttpRequest) -> HttpResponse {
    let e = AppError::not_found("There is nothing at this address.");
    if wants_json(&req) { e.json() } else { e }.error_response()
}

/// Unknown tenant first (so nothing reveals which paths exist), then unknown path.
async fn tenant_not_found(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let slug = req.match_info().get("tenant").unwrap_or_default().to_owned();
    let json = wants_json(&req);
    let e = match tenant(&state, &slug).await {
        Err(e) => e,
        Ok(_) => AppError::not_found("There is nothing at this address."),
    };
    if json { e.json() } else { e }.error_response()
}

async fn index() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(message_page(
            "Latchkey",
            "This is a Latchkey identity provider. Sign-in starts from your application.",
        ))
}

async fn css() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(CSS)
}

/// Liveness: the process answers. Deliberately touches no dependency.
async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(json!({"status": "ok"}))
}

/// Readiness: the database and the session store both answer within a couple of seconds.
async fn readyz(state: web::Data<AppState>) -> HttpResponse {
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
    for (part, result) in [("database", database), ("session_store", sessions)] {
        match result {
            Ok(()) => checks.insert(part.into(), json!("ok")),
            Err(detail) => {
                tracing::warn!(part, error = %detail, "readiness check failed");
                ready = false;
                checks.insert(part.into(), json!("unavailable"))
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
        res.insert_header((header::RETRY_AFTER, "5"));
    }
    res.json(json!({"status": if ready { "ready" } else { "unavailable" }, "checks": checks}))
}

/// Prometheus scrape. Loopback clients may always scrape; others need the bearer token.
async fn metrics(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
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
    let body = state
        .metrics
        .render(state.db.pool_stats(), backend, state.ephemeral.backend_name());
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body))
}

/// OpenID Connect Discovery 1.0 §4: the tenant's provider metadata.
async fn discovery(path: web::Path<String>, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let t = tenant(&state, &path).await.map_err(AppError::json)?;
    // The document depends on the issuer only: serialized once per tenant and node.
    let body = if let Some(b) = state.discovery.get(&t.slug, 0) {
        b
    } else {
        let doc = latchkey_oidc::discovery::metadata(&state.config.issuer(&t.slug));
        let b = web::Bytes::from(doc.to_string());
        state.discovery.put(t.slug.clone(), b.clone(), 0);
        b
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .content_type("application/json")
        .body(body))
}

/// The tenant's JWK Set (RFC 7517 §5): public parts of pending, active and retired keys. Cached
/// for less than half the pre-publication period, so a new key is seen before it signs.
async fn jwks(path: web::Path<String>, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let t = tenant(&state, &path).await.map_err(AppError::json)?;
    let set = state
        .with_keys(&t, |keys, t| keys.jwks_json(&t.id))
        .await
        .map_err(AppError::json)?;
    Ok(HttpResponse::Ok()
        .insert_header((
            header::CACHE_CONTROL,
            format!("public, max-age={}", latchkey_keys::JWKS_MAX_AGE_SECS),
        ))
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .content_type("application/jwk-set+json")
        .body(set.as_bytes().to_vec()))
}
