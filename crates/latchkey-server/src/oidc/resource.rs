//! Using and inspecting tokens: UserInfo (OIDC Core §5.3, RFC 6750 bearer), introspection
//! (RFC 7662) and revocation (RFC 7009).
//!
//! JWT access tokens of users are checked against their stored row (so revoking the grant
//! reaches them); client-credentials JWTs are stateless and revoked through a `jti` deny-list
//! kept in the session store until they expire.

use super::token::authenticate_client;
use super::{Failure, body_params, issuer, oauth_json, read_body};
use crate::flow::bearer::{deny_key, inspect};
use crate::flow::subject::subject;
use crate::state::AppState;
use crate::web::blocking::Blocking;
use crate::web::errors::AppError;
use crate::web::tenant::InTenantJson;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use latchkey_core::{NewAuditEvent, Tenant, TokenTarget, UserId, UserStatus};
use latchkey_oidc::{ErrorCode, OAuthError, UserLookup as _, claims, scope};
use latchkey_store::{OAuthRepo, TokenKind};
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::time::Duration;

/// RFC 6750 §3: a bearer error with its `WWW-Authenticate` challenge.
fn bearer_error(code: Option<ErrorCode>, description: &str) -> HttpResponse {
    let mut challenge = "Bearer realm=\"latchkey\"".to_owned();
    let status = match code {
        None => StatusCode::UNAUTHORIZED,
        Some(c) => {
            let _ = write!(
                challenge,
                ", error=\"{}\", error_description=\"{description}\"",
                c.as_str()
            );
            super::status_of(c)
        }
    };
    let mut res = match code {
        Some(c) => oauth_json(status, &OAuthError::new(c, description)),
        None => HttpResponse::build(status)
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .finish(),
    };
    if let Ok(v) = header::HeaderValue::from_str(&challenge) {
        res.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    res
}

/// GET or POST `/t/{tenant}/userinfo`.
pub(super) async fn userinfo(
    req: HttpRequest,
    tenant: Result<InTenantJson, AppError>,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> HttpResponse {
    let mut res = match userinfo_inner(&req, tenant, &state, payload).await {
        Ok(r) => r,
        Err(e) => e.json().error_response(),
    };
    // Called from browsers with a bearer token, never with cookies.
    res.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        header::HeaderValue::from_static("*"),
    );
    res
}

async fn userinfo_inner(
    req: &HttpRequest,
    tenant: Result<InTenantJson, AppError>,
    state: &AppState,
    payload: web::Payload,
) -> Result<HttpResponse, AppError> {
    let InTenantJson(t) = tenant?;
    let header_token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, tok)| tok.trim().to_owned());
    let mut body_token = None;
    if req.method() == actix_web::http::Method::POST
        && req
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/x-www-form-urlencoded"))
    {
        match read_body(req, payload).await.and_then(|b| body_params(req, &b)) {
            Ok(p) => body_token = p.get("access_token").cloned(),
            Err((status, e)) => return Ok(oauth_json(status, &e)),
        }
    }
    let token = match (header_token, body_token) {
        (Some(_), Some(_)) => {
            return Ok(bearer_error(
                Some(ErrorCode::InvalidRequest),
                "send the token one way only",
            ));
        }
        (Some(t), None) | (None, Some(t)) => t,
        (None, None) => return Ok(bearer_error(None, "")),
    };
    let invalid = || {
        bearer_error(
            Some(ErrorCode::InvalidToken),
            "the access token is invalid, expired or revoked",
        )
    };
    let Some(info) = inspect(state, &t, &token, true).await? else {
        return Ok(invalid());
    };
    if info.kind != TokenKind::Access || info.user.is_none() {
        return Ok(invalid());
    }
    if !scope::contains(&info.scope, scope::OPENID) {
        return Ok(bearer_error(
            Some(ErrorCode::InsufficientScope),
            "the token lacks the openid scope",
        ));
    }
    let Some(user) = info.user_row.filter(|u| u.status == UserStatus::Active) else {
        return Ok(invalid());
    };
    let Some(c) = super::client(state, &t, &info.client_id).await? else {
        return Ok(invalid());
    };
    let mut claims = scope::user_claims(&user, &info.scope);
    let extra = authorization_claims(state, &t, &c, &user.id, &info.scope, TokenTarget::Userinfo).await?;
    for (k, v) in extra {
        claims.entry(k).or_insert(v);
    }
    claims::minimise(&mut claims, c.settings.allowed_claims.as_deref());
    let sub = subject(state, &t, &c, &user.id).await?;
    claims.insert("sub".into(), json!(sub));
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(Value::Object(claims)))
}

/// The roles, groups and mapped attributes client `c` releases into `target` for the user
/// (docs/authorization.md), within its claim allow-list; read at the time of the call, so they
/// are current.
async fn authorization_claims(
    state: &AppState,
    tenant: &Tenant,
    c: &latchkey_core::Client,
    user: &UserId,
    scope: &str,
    target: TokenTarget,
) -> Result<serde_json::Map<String, Value>, AppError> {
    let facts = if claims::needs_facts(&c.settings.claims, scope) {
        let (tid, uid) = (tenant.id.clone(), user.clone());
        Some(state.store(move |db| db.claim_facts(&tid, &uid)).await?)
    } else {
        None
    };
    let mut m = claims::release(
        &c.settings.claims,
        c.client_id.as_str(),
        scope,
        facts.as_ref(),
        target,
    );
    claims::minimise(&mut m, c.settings.allowed_claims.as_deref());
    Ok(m)
}

/// What introspection says about the user of an access or refresh token of client
/// `client_id`: `sub` as that client knows them, and (access tokens) what a JWT would carry.
async fn about_user(
    state: &AppState,
    tenant: &Tenant,
    (client_id, kind, scope): (&str, TokenKind, &str),
    user: &UserId,
) -> Result<serde_json::Map<String, Value>, AppError> {
    let Some(c) = super::client(state, tenant, client_id).await? else {
        return Ok(serde_json::Map::new());
    };
    let mut m = if kind == TokenKind::Access {
        authorization_claims(state, tenant, &c, user, scope, TokenTarget::AccessToken).await?
    } else {
        serde_json::Map::new()
    };
    m.insert("sub".into(), json!(subject(state, tenant, &c, user).await?));
    Ok(m)
}

/// A client-authenticated form POST (introspection, revocation) that names a token. A refusal
/// is counted under `metric` (event, kind) and is the answer.
async fn authenticated(
    req: &HttpRequest,
    found: Result<InTenantJson, AppError>,
    state: &AppState,
    payload: web::Payload,
    metric: (&'static str, &'static str),
) -> Result<(Tenant, latchkey_core::Client, String), HttpResponse> {
    let checked = async {
        let InTenantJson(tenant) = found.map_err(|e| e.error_response())?;
        let params = read_body(req, payload)
            .await
            .and_then(|b| body_params(req, &b))
            .map_err(|(status, e)| oauth_json(status, &e))?;
        let client = authenticate_client(state, req, &tenant, &params)
            .await
            .map_err(Failure::respond)?;
        match params.get("token").filter(|t| !t.is_empty()) {
            Some(token) => Ok((tenant, client, token.clone())),
            None => Err(oauth_json(
                StatusCode::BAD_REQUEST,
                &OAuthError::invalid_request("token is missing"),
            )),
        }
    }
    .await;
    if checked.is_err() {
        state.metrics.oauth(metric.0, metric.1, "error");
    }
    checked
}

/// POST `/t/{tenant}/introspect` (RFC 7662).
pub(super) async fn introspect(
    req: HttpRequest,
    found: Result<InTenantJson, AppError>,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> HttpResponse {
    let metric = ("introspect", "introspection");
    let (tenant, client, token) = match authenticated(&req, found, &state, payload, metric).await {
        Ok(found) => found,
        Err(refused) => return refused,
    };
    let info = match inspect(&state, &tenant, &token, false).await {
        Ok(i) => i,
        Err(e) => return e.json().error_response(),
    };
    // A client sees its own tokens; others only with the may-introspect-others flag.
    let visible = info.filter(|i| i.client_id == client.client_id.as_str() || client.introspect_others);
    let body = match visible {
        None => json!({"active": false}),
        Some(i) => {
            let mut m = serde_json::Map::new();
            m.insert("active".into(), json!(true));
            m.insert("iss".into(), json!(issuer(&state, &tenant)));
            m.insert("client_id".into(), json!(i.client_id));
            m.insert(
                "token_type".into(),
                json!(match i.kind {
                    TokenKind::Access => "Bearer",
                    TokenKind::Refresh => "refresh_token",
                }),
            );
            if !i.scope.is_empty() {
                m.insert("scope".into(), json!(i.scope));
            }
            // A client's own token names it; a user's names the user as the client knows them
            // (`about_user`).
            if i.user.is_none() {
                m.insert("sub".into(), json!(i.client_id));
            }
            if let Some(a) = i.aud {
                m.insert("aud".into(), json!(a));
            }
            m.insert("iat".into(), json!(i.iat));
            m.insert("exp".into(), json!(i.exp));
            if let Some(j) = i.jti {
                m.insert("jti".into(), json!(j));
            }
            // A resource server with opaque tokens reads what a JWT would have said.
            if let Some(user) = &i.user {
                let token = (i.client_id.as_str(), i.kind, i.scope.as_str());
                match about_user(&state, &tenant, token, user).await {
                    Ok(extra) => {
                        for (k, v) in extra {
                            m.entry(k).or_insert(v);
                        }
                    }
                    Err(e) => return e.json().error_response(),
                }
            }
            Value::Object(m)
        }
    };
    let outcome = if body["active"] == json!(true) {
        "active"
    } else {
        "inactive"
    };
    state.metrics.oauth("introspect", "introspection", outcome);
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(body)
}

/// POST `/t/{tenant}/revoke` (RFC 7009): 200 whether or not the token was known.
pub(super) async fn revoke(
    req: HttpRequest,
    found: Result<InTenantJson, AppError>,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> HttpResponse {
    let metric = ("revoke", "revocation");
    let (tenant, client, token) = match authenticated(&req, found, &state, payload, metric).await {
        Ok(found) => found,
        Err(refused) => return refused,
    };
    super::cors(match revoke_inner(&state, &tenant, &client, &token).await {
        Ok(outcome) => {
            state.metrics.oauth("revoke", "revocation", outcome);
            HttpResponse::Ok()
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .finish()
        }
        Err(f) => {
            state.metrics.oauth("revoke", "revocation", f.label());
            f.respond()
        }
    })
}

async fn revoke_inner(
    state: &AppState,
    tenant: &Tenant,
    c: &latchkey_core::Client,
    token: &str,
) -> Result<&'static str, Failure> {
    let Some(info) = inspect(state, tenant, token, false).await? else {
        return Ok("unknown");
    };
    if info.client_id != c.client_id.as_str() {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "the token was issued to another client",
        )
        .into());
    }
    let event = NewAuditEvent::success(
        &format!("client:{}", c.client_id),
        "oauth.revoke",
        info.user
            .as_ref()
            .map_or_else(|| format!("client:{}", c.client_id), |u| format!("user:{u}")),
        json!({"kind": if info.kind == TokenKind::Refresh { "refresh" } else { "access" }}),
    );
    if let Some(handle) = info.handle {
        let tid = tenant.id.clone();
        state
            .store(move |db| db.revoke_token(&tid, &handle, event))
            .await?;
    } else if let Some(jti) = info.jti {
        let left = info.exp - state.clock.now_millis() / 1000;
        let ttl = Duration::from_secs(u64::try_from(left).unwrap_or(0) + 60);
        state
            .ephemeral
            .put_once(&tenant.id, &deny_key(&jti), b"1", ttl)
            .await?;
        crate::flow::audit::audit(state, tenant, event).await?;
    }
    Ok("revoked")
}
