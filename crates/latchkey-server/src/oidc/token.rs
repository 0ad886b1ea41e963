//! The token endpoint (RFC 6749 §3.2): client authentication, then one grant.

use super::{Failure, body_params, client, id_token_alg, issuer, lifetimes, oauth_json, read_body, sid_of};
use crate::state::AppState;
use crate::web::blocking::Blocking;
use crate::web::blocking::blocking;
use crate::web::errors::AppError;
use crate::web::tenant::InTenantJson;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use latchkey_core::{AccessTokenFormat, Client, GrantType, NewAuditEvent, Tenant, User, UserStatus};
use latchkey_keys::{Alg, KeyRing};
use latchkey_oidc::authorize::Params;
use latchkey_oidc::client_auth::{authenticate, parse_client_auth};
use latchkey_oidc::grant_client_credentials::check_client_credentials_grant;
use latchkey_oidc::grant_code::check_code_grant;
use latchkey_oidc::grant_refresh::check_refresh_grant;
use latchkey_oidc::tokens::{
    AT_JWT, Authentication, Envelope, access_token_claims, at_hash, id_token_claims,
};
use latchkey_oidc::{ErrorCode, OAuthError, scope};
use latchkey_store::{Grant, NewToken, OAuthRepo, Spend, TokenKind, UserRepo};
use serde_json::{Map, Value, json};
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
    super::cors(match handle(&state, &req, &t, &p, grant).await {
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
    t: &Tenant,
    p: &Params,
    grant: &str,
) -> Result<Value, Failure> {
    let c = authenticate_client(state, req, t, p, latchkey_oidc::discovery::TOKEN).await?;
    let wanted = match grant {
        "authorization_code" => GrantType::AuthorizationCode,
        "refresh_token" => GrantType::RefreshToken,
        "client_credentials" => GrantType::ClientCredentials,
        _ => {
            return Err(match p.get("grant_type") {
                None => OAuthError::invalid_request("grant_type is missing"),
                Some(g) => OAuthError::new(
                    ErrorCode::UnsupportedGrantType,
                    format!("grant_type {g:?} is not supported"),
                ),
            }
            .into());
        }
    };
    if !c.grant_types.contains(&wanted) {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            format!("this client may not use {grant}"),
        )
        .into());
    }
    match wanted {
        GrantType::AuthorizationCode => code_grant(state, t, c, p).await,
        GrantType::RefreshToken => refresh_grant(state, t, c, p).await,
        GrantType::ClientCredentials => client_credentials_grant(state, t, c, p).await,
    }
}

/// Authenticates the client of a token, introspection or revocation request.
pub(super) async fn authenticate_client(
    state: &AppState,
    req: &HttpRequest,
    t: &Tenant,
    p: &Params,
    endpoint: &str,
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
    let c = client(state, t, presented.client_id()).await?;
    let iss = issuer(state, t);
    let at = format!("{iss}{endpoint}");
    let now = state.clock.now_millis() / 1000;
    let jti = authenticate(&presented, c.as_ref(), &[&iss, &at], now).map_err(wrap)?;
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
        if !state.ephemeral.put_once(&t.id, &key, b"1", ttl).await? {
            return Err(OAuthError::invalid_client("the client assertion was already used").into());
        }
    }
    Ok(c)
}

/// What a user token speaks for.
struct Who<'a> {
    user: &'a User,
    grant: &'a Grant,
    nonce: Option<&'a str>,
    /// Milliseconds; `None`: no refresh token.
    refresh_expires_at: Option<i64>,
}

/// Tokens made for one response, with the rows to store.
struct Minted {
    body: Map<String, Value>,
    rows: Vec<NewToken>,
}

/// Signs and assembles the tokens of one response (CPU work: called off the async threads).
#[allow(clippy::too_many_arguments)]
fn mint(
    keys: &KeyRing,
    rng: &dyn latchkey_core::Rng,
    iss: &str,
    t: &Tenant,
    c: &Client,
    who: Option<&Who<'_>>,
    scope: &str,
    audience: &str,
    now_ms: i64,
) -> Result<Minted, AppError> {
    let life = lifetimes(t, c);
    let now = now_ms / 1000;
    let jti = latchkey_core::random_token(rng, 16);
    let env = Envelope {
        issuer: iss,
        client_id: c.client_id.as_str(),
        iat: now,
        exp: now + life.access_secs,
        jti: &jti,
    };
    let authn = who.map(|w| Authentication {
        user: w.user,
        auth_time: w.grant.auth_time / 1000,
        acr: w.grant.acr.as_deref(),
        amr: &w.grant.amr,
    });
    let sign_err = |e: latchkey_keys::KeyError| AppError::internal("token signing", e);
    // A tenant made without keys (directly in the database) gets its first ones on first use.
    let sign = |alg: Alg, typ: &str, claims: &Value| match keys.sign(&t.id, alg, typ, claims) {
        Err(latchkey_keys::KeyError::Refused(_)) => {
            keys.ensure_tenant(&t.id, "system")?;
            keys.sign(&t.id, alg, typ, claims)
        }
        other => other,
    };
    let mut rows = Vec::new();
    let row = |handle: String, kind: TokenKind, expires_at: i64| NewToken {
        handle,
        kind,
        grant_id: who.map(|w| w.grant.id.clone()),
        client_id: c.client_id.clone(),
        user_id: who.map(|w| w.user.id.clone()),
        scope: scope.to_owned(),
        audience: Some(audience.to_owned()),
        expires_at,
    };
    let access_token = match c.access_token_format {
        AccessTokenFormat::Jwt => {
            let claims = access_token_claims(&env, audience, scope, authn.as_ref());
            let token = sign(Alg::ES256, AT_JWT, &claims).map_err(sign_err)?;
            if who.is_some() {
                rows.push(row(jti.clone(), TokenKind::Access, env.exp * 1000));
            }
            token
        }
        AccessTokenFormat::Opaque => {
            let token = latchkey_core::random_token(rng, 32);
            rows.push(row(
                latchkey_core::sha256_hex(token.as_bytes()),
                TokenKind::Access,
                env.exp * 1000,
            ));
            token
        }
    };
    let mut body = Map::new();
    if let (Some(w), Some(a)) = (who, authn.as_ref())
        && scope::contains(scope, scope::OPENID)
    {
        let alg = id_token_alg(c);
        let id_jti = latchkey_core::random_token(rng, 16);
        let id_env = Envelope {
            exp: now + life.id_secs,
            jti: &id_jti,
            ..env.clone()
        };
        let sid = w.grant.session_key.as_deref().map(sid_of);
        let hash = at_hash(&access_token, alg);
        let claims = id_token_claims(&id_env, a, scope, w.nonce, sid.as_deref(), Some(&hash));
        body.insert(
            "id_token".into(),
            json!(sign(alg, "JWT", &claims).map_err(sign_err)?),
        );
    }
    if let Some(exp) = who.and_then(|w| w.refresh_expires_at) {
        let refresh = latchkey_core::random_token(rng, 32);
        rows.push(row(
            latchkey_core::sha256_hex(refresh.as_bytes()),
            TokenKind::Refresh,
            exp,
        ));
        body.insert("refresh_token".into(), json!(refresh));
    }
    body.insert("access_token".into(), json!(access_token));
    body.insert("token_type".into(), json!("Bearer"));
    body.insert("expires_in".into(), json!(life.access_secs));
    if !scope.is_empty() {
        body.insert("scope".into(), json!(scope));
    }
    Ok(Minted { body, rows })
}

/// The audit event of a token request: the client acting on the grant's user.
fn event(c: &Client, action: &str, grant: &Grant) -> NewAuditEvent {
    NewAuditEvent::success(
        &format!("client:{}", c.client_id),
        action,
        format!("user:{}", grant.user_id),
        json!({"grant": grant.id, "scope": grant.scope}),
    )
}

fn needs(p: &Params, name: &str) -> Result<String, Failure> {
    p.get(name)
        .filter(|v| !v.is_empty())
        .cloned()
        .ok_or_else(|| OAuthError::invalid_request(format!("{name} is missing")).into())
}

/// An active user, or the reason the grant is dead.
fn active_user(db: &latchkey_store::Db, t: &Tenant, grant: &Grant) -> Result<User, Failure> {
    active(db.user(&t.id, &grant.user_id).map_err(AppError::from)?)
}

fn active(user: Option<User>) -> Result<User, Failure> {
    match user {
        Some(u) if u.status == UserStatus::Active => Ok(u),
        _ => Err(OAuthError::invalid_grant("the user can no longer sign in").into()),
    }
}

async fn code_grant(state: &AppState, t: &Tenant, c: Client, p: &Params) -> Result<Value, Failure> {
    let code = needs(p, "code")?;
    let (db, keys, rng, clock) = (
        state.db.clone(),
        Arc::clone(&state.keys),
        Arc::clone(&state.rng),
        Arc::clone(&state.clock),
    );
    let (iss, t2, p) = (issuer(state, t), t.clone(), p.clone());
    let replayed = blocking(move || -> Result<Result<Value, Failure>, AppError> {
        let t = &t2;
        let Some(stored) = db.code(&t.id, &latchkey_core::sha256_hex(code.as_bytes()))? else {
            return Ok(Err(OAuthError::invalid_grant("the code is not valid").into()));
        };
        let replay =
            || OAuthError::invalid_grant("the code was already used; what it issued is revoked").into();
        if stored.used_at.is_some() {
            let ev = event(&c, "oauth.token", &stored.grant);
            db.redeem_code(&t.id, &stored, &[], ev)?;
            return Ok(Err(replay()));
        }
        if let Err(e) = check_code_grant(&stored, &c, &p, clock.now_millis()) {
            return Ok(Err(e.into()));
        }
        let user = match active_user(&db, t, &stored.grant) {
            Ok(u) => u,
            Err(f) => return Ok(Err(f)),
        };
        let now = clock.now_millis();
        let life = lifetimes(t, &c);
        let refresh = c
            .grant_types
            .contains(&GrantType::RefreshToken)
            .then(|| (now + life.refresh_idle_secs * 1000).min(stored.grant.expires_at));
        let who = Who {
            user: &user,
            grant: &stored.grant,
            nonce: stored.nonce.as_deref(),
            refresh_expires_at: refresh,
        };
        let m = mint(
            &keys,
            &*rng,
            &iss,
            t,
            &c,
            Some(&who),
            &stored.grant.scope,
            c.client_id.as_str(),
            now,
        )?;
        match db.redeem_code(&t.id, &stored, &m.rows, event(&c, "oauth.token", &stored.grant))? {
            Spend::Spent => Ok(Ok(Value::Object(m.body))),
            Spend::Replayed { .. } => Ok(Err(replay())),
        }
    })
    .await?;
    if let Err(Failure::OAuth(e)) = &replayed
        && e.description.contains("already used")
    {
        state.metrics.oauth("reuse", "authorization_code", "revoked");
    }
    replayed
}

async fn refresh_grant(state: &AppState, t: &Tenant, c: Client, p: &Params) -> Result<Value, Failure> {
    let handle = latchkey_core::sha256_hex(needs(p, "refresh_token")?.as_bytes());
    let (tid, h) = (t.id.clone(), handle.clone());
    // The token and its grant's user in one trip to the blocking pool.
    let (tok, user) = state
        .store(move |db| -> Result<_, AppError> {
            let tok = db.token(&tid, &h)?;
            let user = match tok.as_ref().and_then(|t| t.grant.as_ref()) {
                Some(g) => db.user(&tid, &g.user_id)?,
                None => None,
            };
            Ok((tok, user))
        })
        .await?;
    let Some(tok) = tok else {
        return Err(OAuthError::invalid_grant("the refresh token is not valid").into());
    };
    let now = state.clock.now_millis();
    let Some(grant) = tok.grant.clone() else {
        return Err(OAuthError::invalid_grant("the refresh token is not valid").into());
    };
    let reuse = OAuthError::invalid_grant("the refresh token was already used; its grant is revoked");
    if tok.kind == TokenKind::Refresh && tok.used_at.is_some() && tok.client_id == c.client_id {
        // RFC 9700 §4.14.2: a rotated token presented again means it leaked.
        let ev = event(&c, "oauth.refresh", &grant);
        let (tid, gid) = (t.id.clone(), grant.id.clone());
        state
            .store(move |db| db.rotate_refresh(&tid, &handle, &gid, &[], ev))
            .await?;
        state.metrics.oauth("reuse", "refresh_token", "revoked");
        return Err(reuse.into());
    }
    let granted = check_refresh_grant(&tok, &c, p.get("scope").map(String::as_str), now)?;
    let user = match active(user) {
        Ok(u) => u,
        Err(f) => {
            crate::flow::grants::revoke_grants(
                state,
                t,
                crate::flow::grants::Owned::User(grant.user_id.clone()),
                "user_disabled",
            )
            .await?;
            return Err(f);
        }
    };
    if !scope::contains(&grant.scope, scope::OFFLINE_ACCESS)
        && let Some(key) = &grant.session_key
    {
        let live = state.ephemeral.list_user_sessions(&t.id, &user.id).await?;
        if !live.iter().any(|(k, _)| k == key) {
            crate::flow::grants::revoke_grants(
                state,
                t,
                crate::flow::grants::Owned::Session(key.clone()),
                "session_ended",
            )
            .await?;
            return Err(OAuthError::invalid_grant("the session this grant belongs to has ended").into());
        }
    }
    let (db, keys, rng) = (state.db.clone(), Arc::clone(&state.keys), Arc::clone(&state.rng));
    let (iss, t2) = (issuer(state, t), t.clone());
    let body = blocking(move || -> Result<Result<Value, Failure>, AppError> {
        let life = lifetimes(&t2, &c);
        let who = Who {
            user: &user,
            grant: &grant,
            nonce: None,
            refresh_expires_at: Some((now + life.refresh_idle_secs * 1000).min(grant.expires_at)),
        };
        let m = mint(
            &keys,
            &*rng,
            &iss,
            &t2,
            &c,
            Some(&who),
            &granted,
            c.client_id.as_str(),
            now,
        )?;
        match db.rotate_refresh(
            &t2.id,
            &handle,
            &grant.id,
            &m.rows,
            event(&c, "oauth.refresh", &grant),
        )? {
            Spend::Spent => Ok(Ok(Value::Object(m.body))),
            Spend::Replayed { .. } => Ok(Err(reuse.into())),
        }
    })
    .await?;
    if body.is_err() {
        state.metrics.oauth("reuse", "refresh_token", "revoked");
    }
    body
}

async fn client_credentials_grant(
    state: &AppState,
    t: &Tenant,
    c: Client,
    p: &Params,
) -> Result<Value, Failure> {
    let (granted, audience) = check_client_credentials_grant(
        &c,
        p.get("scope").map(String::as_str),
        p.get("resource").map(String::as_str),
    )?;
    let (iss, now, rng) = (issuer(state, t), state.clock.now_millis(), Arc::clone(&state.rng));
    let m = state
        .with_keys(t, move |keys, t| {
            mint(keys, &*rng, &iss, t, &c, None, &granted, &audience, now)
        })
        .await?;
    if !m.rows.is_empty() {
        let tid = t.id.clone();
        state.store(move |db| db.store_tokens(&tid, &m.rows)).await?;
    }
    Ok(Value::Object(m.body))
}
