//! The OpenID Connect / OAuth 2.0 endpoints: HTTP in, `latchkey_oidc` decisions, HTTP out.
//! Protocol errors are decided here and rendered by `web::errors` (RFC 6749 §5.2 JSON), or sent
//! back to the client as redirects.

mod authorize;
mod discovery;
mod logout;
mod resource;
mod token;

use crate::state::AppState;
use crate::web::blocking::Blocking;
use crate::web::errors::AppError;
pub(crate) use crate::web::errors::{Failure, oauth_json, status_of};
use crate::web::form::{FormError, parse_form, parse_query};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_core::{Client, ClientId, Tenant};
use latchkey_oidc::authorize::Params;
pub(crate) use latchkey_oidc::lifetimes::lifetimes;
pub(crate) use latchkey_oidc::tokens::acr_of;
use latchkey_oidc::{GrantError, OAuthError};
use latchkey_store::ClientRepo;

/// The OIDC endpoints, relative to the tenant scope `/t/{tenant}`.
pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/.well-known/openid-configuration",
        web::get().to(discovery::discovery),
    )
    .route("/jwks", web::get().to(discovery::jwks))
    .route("/authorize", web::get().to(authorize::authorize))
    .route("/authorize", web::post().to(authorize::authorize))
    .route("/authorize/resume", web::get().to(authorize::resume))
    .route("/authorize/consent", web::post().to(authorize::consent))
    .route("/authorize/terms", web::get().to(authorize::terms_page))
    .route("/authorize/terms", web::post().to(authorize::terms_decide))
    .route("/token", web::post().to(token::token))
    .route(
        "/token",
        web::method(actix_web::http::Method::OPTIONS).to(preflight),
    )
    .route("/token", web::route().to(post_only))
    .route("/userinfo", web::get().to(resource::userinfo))
    .route("/userinfo", web::post().to(resource::userinfo))
    .route(
        "/userinfo",
        web::method(actix_web::http::Method::OPTIONS).to(preflight),
    )
    .route("/introspect", web::post().to(resource::introspect))
    .route("/introspect", web::route().to(post_only))
    .route("/revoke", web::post().to(resource::revoke))
    .route(
        "/revoke",
        web::method(actix_web::http::Method::OPTIONS).to(preflight),
    )
    .route("/revoke", web::route().to(post_only))
    .route("/end-session", web::get().to(logout::end_session))
    .route("/end-session", web::post().to(logout::end_session));
}

pub(crate) async fn form_post_js() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(include_str!("../../assets/form_post.js"))
}

/// The front-channel logout page's script: goes on once the clients' pages have loaded.
pub(crate) async fn frontchannel_js() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(include_str!("../../assets/frontchannel.js"))
}

/// CORS preflight for browser apps (SPAs) calling the token, userinfo and revocation endpoints.
/// No cookies are involved there (`Allow-Credentials` is never sent), so any origin may call.
async fn preflight() -> HttpResponse {
    HttpResponse::NoContent()
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, "GET, POST"))
        .insert_header((
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            "Authorization, Content-Type",
        ))
        .insert_header((header::ACCESS_CONTROL_MAX_AGE, "600"))
        .finish()
}

/// Lets browser apps read a token-family response (no credentials: cookies play no part).
pub(crate) fn cors(mut res: HttpResponse) -> HttpResponse {
    res.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        header::HeaderValue::from_static("*"),
    );
    res
}

/// RFC 6749 §3.2: the token endpoint (and its siblings) take POST only.
async fn post_only() -> HttpResponse {
    let mut res = oauth_json(
        StatusCode::METHOD_NOT_ALLOWED,
        &OAuthError::invalid_request("this endpoint takes POST with a form body"),
    );
    res.headers_mut()
        .insert(header::ALLOW, header::HeaderValue::from_static("POST"));
    res
}

/// A protocol request's form body: malformed bodies are `invalid_request` (413 when too large).
/// Parameters travel in the body only: a query string as well is refused (SECURITY-TESTS O14).
pub(crate) fn body_params(req: &HttpRequest, body: &[u8]) -> Result<Params, (StatusCode, OAuthError)> {
    if !req.query_string().is_empty() {
        return Err((
            StatusCode::BAD_REQUEST,
            OAuthError::invalid_request("send the parameters in the form body, not in the query"),
        ));
    }
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    parse_form(ct, body, max_body(req))
        .map(|f| f.0)
        .map_err(form_error)
}

pub(crate) fn query_params(req: &HttpRequest) -> Result<Params, (StatusCode, OAuthError)> {
    parse_query(req.query_string()).map(|f| f.0).map_err(form_error)
}

/// The parameters of a request that may come as GET (query) or POST (form body).
pub(crate) async fn request_params(
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<Params, (StatusCode, OAuthError)> {
    if req.method() == actix_web::http::Method::POST {
        let body = read_body(req, payload).await?;
        body_params(req, &body)
    } else {
        query_params(req)
    }
}

fn max_body(req: &HttpRequest) -> usize {
    req.app_data::<web::Data<AppState>>()
        .map_or(64 * 1024, |s| s.config.max_body_bytes)
}

fn form_error(e: FormError) -> (StatusCode, OAuthError) {
    let status = match e {
        FormError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        FormError::WrongContentType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        _ => StatusCode::BAD_REQUEST,
    };
    (status, OAuthError::invalid_request(e.to_string()))
}

/// The body as bytes, with the size limit (413 beyond it).
pub(crate) async fn read_body(
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<web::Bytes, (StatusCode, OAuthError)> {
    let max = max_body(req);
    payload
        .to_bytes_limited(max)
        .await
        .map_err(|_| form_error(FormError::TooLarge(max)))?
        .map_err(|_| {
            (
                StatusCode::BAD_REQUEST,
                OAuthError::invalid_request("the request body could not be read"),
            )
        })
}

/// The tenant's issuer URL.
pub(crate) fn issuer(state: &AppState, tenant: &Tenant) -> String {
    state.config.issuer(&tenant.slug)
}

/// The tenant's client `id`, if registered.
pub(crate) async fn client(state: &AppState, tenant: &Tenant, id: &str) -> Result<Option<Client>, AppError> {
    lookup(state, tenant, id, true).await
}

/// The client as stored now, refreshing the cache: for credentials the cached copy refused,
/// which may predate a secret rotation made by another process (the CLI, another node).
pub(crate) async fn fresh_client(
    state: &AppState,
    tenant: &Tenant,
    id: &str,
) -> Result<Option<Client>, AppError> {
    lookup(state, tenant, id, false).await
}

async fn lookup(
    state: &AppState,
    tenant: &Tenant,
    id: &str,
    cached: bool,
) -> Result<Option<Client>, AppError> {
    if id.is_empty() || id.len() > 128 {
        return Ok(None);
    }
    let cid = ClientId(id.to_owned());
    if cached && let Some(c) = state.clients.get(&(tenant.id.clone(), cid.clone()), 0) {
        return Ok(Some(c));
    }
    let tid = tenant.id.clone();
    let found = state.store(move |db| db.client(&tid, &cid)).await?;
    if let Some(c) = &found {
        state
            .clients
            .put((c.tenant_id.clone(), c.client_id.clone()), c.clone(), 0);
    }
    Ok(found)
}

/// A grant's failure: protocol errors go to the client; a store failure is a 503 or 500 as
/// everywhere, and a signing failure a 500.
impl From<GrantError> for Failure {
    fn from(e: GrantError) -> Self {
        match e {
            GrantError::OAuth(e) | GrantError::Replay(e) => Self::OAuth(e),
            GrantError::Store(e) => Self::App(e.into()),
            GrantError::Keys(e) => Self::App(signing_failed(e)),
        }
    }
}

/// A token could not be signed: the key ring could not be loaded (the store's answer: 503 while
/// the database is down) or signing itself failed (logged, and a 500 for the client).
pub(crate) fn signing_failed(e: latchkey_keys::KeyError) -> AppError {
    match e {
        latchkey_keys::KeyError::Store(s) => s.into(),
        other => AppError::internal("token signing", other),
    }
}
