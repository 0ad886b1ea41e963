//! The token endpoint (RFC 6749 §3.2): client authentication, then one grant. The request is
//! parsed and redeemed by `latchkey_oidc`; this module moves it between HTTP and the blocking
//! pool and writes the answer.

use super::{Failure, body_params, client, issuer, oauth_json, read_body};
use crate::state::AppState;
use crate::web::blocking::Blocking;
use crate::web::errors::AppError;
use crate::web::tenant::InTenantJson;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use latchkey_core::{Client, Clock, Rng, Tenant};
use latchkey_keys::KeyRing;
use latchkey_oidc::authorize::Params;
use latchkey_oidc::client_auth::{authenticate, parse_client_auth};
use latchkey_oidc::grants::client_credentials::check_client_credentials_grant;
use latchkey_oidc::grants::refresh_token::{self, Refused};
use latchkey_oidc::grants::{authorization_code, client_credentials};
use latchkey_oidc::token_request::{ClientCredentialsRequest, CodeRequest, RefreshRequest};
use latchkey_oidc::{Ctx, GrantError, OAuthError, TokenRequest, TokenResponse};
use latchkey_store::Db;
use latchkey_store::OAuthRepo;
use std::sync::Arc;

/// POST `/t/{tenant}/token`.
pub(super) async fn token(
    req: HttpRequest,
    tenant: Result<InTenantJson, AppError>,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> HttpResponse {
    let t = match tenant {
        Ok(InTenantJson(t)) => t,
        Err(e) => return e.error_response(),
    };
    let p = match read_body(&req, payload).await.and_then(|b| body_params(&req, &b)) {
        Ok(p) => p,
        Err((status, e)) => return oauth_json(status, &e),
    };
    let grant = match p.get("grant_type").map(String::as_str) {
        Some("authorization_code") => "authorization_code",
        Some("refresh_token") => "refresh_token",
        Some("client_credentials") => "client_credentials",
        _ => "other",
    };
    super::cors(match handle(&state, &req, &t, &p).await {
        Ok(body) => {
            state.metrics.oauth("token", grant, "ok");
            HttpResponse::Ok()
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .insert_header((header::PRAGMA, "no-cache"))
                .json(body)
        }
        Err(f) => {
            state.metrics.oauth("token", grant, f.label());
            f.respond()
        }
    })
}

async fn handle(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    p: &Params,
) -> Result<TokenResponse, Failure> {
    let c = authenticate_client(state, req, tenant, p).await?;
    match TokenRequest::parse(p, &c)? {
        TokenRequest::AuthorizationCode(r) => code_grant(state, tenant, c, r).await,
        TokenRequest::RefreshToken(r) => refresh_grant(state, tenant, c, r).await,
        TokenRequest::ClientCredentials(r) => client_credentials_grant(state, tenant, c, &r).await,
    }
}

/// Authenticates the client of a token, introspection or revocation request.
pub(super) async fn authenticate_client(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    p: &Params,
) -> Result<Client, Failure> {
    let auth = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let wrap = |e: latchkey_oidc::client_auth::ClientAuthError| {
        if e.basic {
            Failure::Basic(e.error)
        } else {
            Failure::OAuth(e.error)
        }
    };
    let presented = parse_client_auth(auth, p).map_err(wrap)?;
    let mut c = client(state, tenant, presented.client_id()).await?;
    // A client assertion's only audience is the issuer: one made out to an endpoint URL could
    // have been minted for another server's endpoint (the 2025 audience-injection findings).
    let iss = issuer(state, tenant);
    let now = state.clock.now_millis() / 1000;
    let mut checked = authenticate(&presented, c.as_ref(), &[&iss], now);
    if checked.is_err() && c.is_some() {
        // The cached copy may predate a rotation: a new secret works at once.
        c = super::fresh_client(state, tenant, presented.client_id()).await?;
        checked = authenticate(&presented, c.as_ref(), &[&iss], now);
    }
    let jti = checked.map_err(wrap)?;
    let Some(c) = c else {
        return Err(OAuthError::invalid_client("client authentication failed").into());
    };
    if let Some(j) = jti {
        // RFC 7523 §3 item 7: an assertion is used once.
        let key = format!(
            "assertion-jti:{}:{}",
            c.client_id,
            latchkey_core::sha256_hex(j.jti.as_bytes())
        );
        let ttl = std::time::Duration::from_secs(u64::try_from(j.exp - now).unwrap_or(0) + 60);
        if !state.ephemeral.put_once(&tenant.id, &key, b"1", ttl).await? {
            return Err(OAuthError::invalid_client("the client assertion was already used").into());
        }
    }
    Ok(c)
}

/// The grant's surroundings for `latchkey_oidc`, built where the grant runs.
fn ctx<'a>(t: &'a Tenant, iss: &'a str, clock: &'a Arc<dyn Clock>, rng: &'a Arc<dyn Rng>) -> Ctx<'a> {
    Ctx {
        tenant: t,
        issuer: iss,
        clock: &**clock,
        rng: &**rng,
    }
}

async fn code_grant(
    state: &AppState,
    tenant: &Tenant,
    client: Client,
    r: CodeRequest,
) -> Result<TokenResponse, Failure> {
    redeem(state, tenant, "authorization_code", move |db, keys, ctx| {
        authorization_code::exchange(db, keys, ctx, &client, &r)
    })
    .await
}

/// Runs a grant's redemption on the blocking pool in the tenant's context (the store
/// transaction and the signatures); a replayed code or token is counted in the metrics.
async fn redeem(
    state: &AppState,
    tenant: &Tenant,
    grant: &'static str,
    f: impl FnOnce(&Db, &KeyRing, &Ctx<'_>) -> Result<TokenResponse, GrantError> + Send + 'static,
) -> Result<TokenResponse, Failure> {
    let (keys, rng, clock) = (
        Arc::clone(&state.keys),
        Arc::clone(&state.rng),
        Arc::clone(&state.clock),
    );
    let (iss, tenant) = (issuer(state, tenant), tenant.clone());
    let answer = state
        .store(move |db| -> Result<_, AppError> {
            let ctx = ctx(&tenant, &iss, &clock, &rng);
            Ok(f(db, &keys, &ctx))
        })
        .await?;
    if let Err(GrantError::Replay(_)) = &answer {
        state.metrics.oauth("reuse", grant, "revoked");
    }
    Ok(answer?)
}

async fn refresh_grant(
    state: &AppState,
    tenant: &Tenant,
    client: Client,
    r: RefreshRequest,
) -> Result<TokenResponse, Failure> {
    let (tid, r2) = (tenant.id.clone(), r.clone());
    // The token and its grant's user in one trip to the blocking pool.
    let found = state.store(move |db| refresh_token::find(db, &tid, &r2)).await?;
    let rotation = match refresh_token::check(found, &client, &r, state.clock.now_millis()) {
        Ok(rotation) => rotation,
        Err(Refused::Invalid(e)) => return Err(e.into()),
        Err(Refused::Reused(reuse)) => {
            // RFC 9700 §4.14.2: a rotated token presented again means it leaked (unless it is
            // the one rotated last, back within the grace window).
            let t = tenant.clone();
            let (error, revoked) = state
                .store(move |db| refresh_token::revoke_reused(db, &t, &client, &reuse))
                .await?;
            let outcome = if revoked { "revoked" } else { "tolerated" };
            state.metrics.oauth("reuse", "refresh_token", outcome);
            return Err(error.into());
        }
        Err(Refused::UserInactive { user_id, error }) => {
            crate::flow::grants::revoke_grants(
                state,
                tenant,
                crate::flow::grants::Owned::User(user_id),
                "user_disabled",
            )
            .await?;
            return Err(error.into());
        }
    };
    if let Some(key) = rotation.session_key() {
        let live = state
            .ephemeral
            .list_user_sessions(&tenant.id, &rotation.user().id)
            .await?;
        if !live.iter().any(|(k, _)| k == key) {
            crate::flow::grants::revoke_grants(
                state,
                tenant,
                crate::flow::grants::Owned::Session(key.to_owned()),
                "session_ended",
            )
            .await?;
            return Err(OAuthError::invalid_grant("the session this grant belongs to has ended").into());
        }
    }
    redeem(state, tenant, "refresh_token", move |db, keys, ctx| {
        refresh_token::rotate(db, keys, ctx, &client, &rotation)
    })
    .await
}

async fn client_credentials_grant(
    state: &AppState,
    tenant: &Tenant,
    client: Client,
    r: &ClientCredentialsRequest,
) -> Result<TokenResponse, Failure> {
    let (scope, audience) =
        check_client_credentials_grant(&client, r.scope.as_deref(), r.resource.as_deref())?;
    let (iss, rng, clock) = (
        issuer(state, tenant),
        Arc::clone(&state.rng),
        Arc::clone(&state.clock),
    );
    let issued = state
        .with_keys(tenant, move |keys, tenant| {
            let ctx = ctx(tenant, &iss, &clock, &rng);
            client_credentials::issue(keys, &ctx, &client, &scope, &audience).map_err(super::signing_failed)
        })
        .await?;
    if !issued.rows.is_empty() {
        let (tid, rows) = (tenant.id.clone(), issued.rows);
        state.store(move |db| db.store_tokens(&tid, &rows)).await?;
    }
    Ok(issued.response)
}
