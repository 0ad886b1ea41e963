//! The OpenID Connect / OAuth 2.0 endpoints: HTTP in, `latchkey_oidc` decisions, HTTP out.
//! Errors become RFC 6749 §5.2 JSON (or redirects, or pages) here and nowhere else.
//! Throughout: `t` is the tenant, `c` the client, `p` the request parameters.
#![allow(clippy::many_single_char_names)]

mod authorize;
mod logout;
mod resource;
mod token;

pub(crate) use authorize::describe as describe_scope;
pub(crate) use authorize::{forces_login, form_post};

use crate::errors::{AppError, Kind, blocking};
use crate::form::{FormError, parse_form, parse_query};
use crate::state::AppState;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_core::{Client, ClientId, Tenant, TenantId};
use latchkey_oidc::authorize::Params;
pub(crate) use latchkey_oidc::lifetimes::lifetimes;
pub(crate) use latchkey_oidc::tokens::acr_of;
use latchkey_oidc::{ErrorCode, GrantError, OAuthError};
use latchkey_store::{ClientRepo, GrantsOf, OAuthRepo};
use std::time::Duration;

/// The OIDC endpoints, relative to the tenant scope `/t/{tenant}`.
pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/authorize", web::get().to(authorize::authorize))
        .route("/authorize", web::post().to(authorize::authorize))
        .route("/authorize/resume", web::get().to(authorize::resume))
        .route("/authorize/consent", web::post().to(authorize::consent))
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

/// An RFC 6749 §5.2 error body, never cached.
pub(crate) fn oauth_json(status: StatusCode, e: &OAuthError) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(serde_json::json!({"error": e.code.as_str(), "error_description": e.description}))
}

/// The status an error code gets at the token endpoint family (RFC 6749 §5.2).
pub(crate) fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::InvalidClient | ErrorCode::InvalidToken => StatusCode::UNAUTHORIZED,
        ErrorCode::InsufficientScope => StatusCode::FORBIDDEN,
        ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// An endpoint failure: a protocol error for the client, or an operational one.
pub(crate) enum Failure {
    OAuth(OAuthError),
    /// `invalid_client` for `client_secret_basic`: 401 with `WWW-Authenticate: Basic`.
    Basic(OAuthError),
    App(AppError),
}

impl From<OAuthError> for Failure {
    fn from(e: OAuthError) -> Self {
        Self::OAuth(e)
    }
}

impl From<AppError> for Failure {
    fn from(e: AppError) -> Self {
        Self::App(e)
    }
}

impl From<latchkey_session::SessionError> for Failure {
    fn from(e: latchkey_session::SessionError) -> Self {
        Self::App(e.into())
    }
}

impl Failure {
    pub(crate) fn respond(self) -> HttpResponse {
        match self {
            Self::OAuth(e) => oauth_json(status_of(e.code), &e),
            Self::Basic(e) => {
                let mut res = oauth_json(StatusCode::UNAUTHORIZED, &e);
                res.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    header::HeaderValue::from_static("Basic realm=\"latchkey\", charset=\"UTF-8\""),
                );
                res
            }
            Self::App(e) => actix_web::ResponseError::error_response(&e.json()),
        }
    }

    /// The metrics label of the outcome.
    pub(crate) fn label(&self) -> &'static str {
        match self {
            Self::OAuth(e) | Self::Basic(e) => e.code.as_str(),
            Self::App(e) if e.kind == Kind::Unavailable => "temporarily_unavailable",
            Self::App(_) => "server_error",
        }
    }
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
pub(crate) fn issuer(state: &AppState, t: &Tenant) -> String {
    state.config.issuer(&t.slug)
}

/// Clients by tenant and id for 10 s: the token endpoint reads one on every call.
pub type ClientCache = crate::cache::TtlCache<(TenantId, ClientId), Client>;

pub(crate) fn client_cache() -> ClientCache {
    ClientCache::new(Duration::from_secs(10), 10_000)
}

/// The tenant's client `id`, if registered.
pub(crate) async fn client(state: &AppState, t: &Tenant, id: &str) -> Result<Option<Client>, AppError> {
    if id.is_empty() || id.len() > 128 {
        return Ok(None);
    }
    let cid = ClientId(id.to_owned());
    if let Some(c) = state.clients.get(&(t.id.clone(), cid.clone()), 0) {
        return Ok(Some(c));
    }
    let (db, tid) = (state.db.clone(), t.id.clone());
    let found = blocking(move || db.client(&tid, &cid)).await?;
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

/// A token could not be signed: logged, and a 500 for the client.
pub(crate) fn signing_failed(e: latchkey_keys::KeyError) -> AppError {
    AppError::internal("token signing", e)
}

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
    t: &Tenant,
    which: Owned,
    reason: &'static str,
) -> Result<usize, AppError> {
    let (db, tid) = (state.db.clone(), t.id.clone());
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
    let n = blocking(move || db.revoke_grants(&tid, which.as_ref(), reason, ev)).await?;
    if n > 0 {
        state.metrics.oauth("revoke", "grant", reason);
    }
    Ok(n)
}
