//! Discovery (OpenID Connect Discovery 1.0 §4) and the JWK Set (RFC 7517 §5).

use crate::state::AppState;
use crate::web::blocking::Blocking;
use crate::web::errors::AppError;
use crate::web::tenant::InTenantJson;
use actix_web::http::header;
use actix_web::{HttpResponse, web};

/// OpenID Connect Discovery 1.0 §4: the tenant's provider metadata.
pub(super) async fn discovery(t: InTenantJson, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
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
pub(super) async fn jwks(tenant: InTenantJson, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let set = state
        .with_keys(&tenant, |keys, tenant| keys.jwks_json(&tenant.id))
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
