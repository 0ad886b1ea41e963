//! Bearer access tokens as every feature checks them: a JWT access token verified against the
//! tenant's keys (a user's also against its stored row, so revoking the grant reaches it, and
//! its `sub` against the row's user as its client knows them; a client's against the `jti`
//! deny-list), or an opaque one by its stored hash. `Inspected::user` is always the user's id.
//! UserInfo and introspection use it, and so does the admin API for OAuth admin clients.

use crate::state::AppState;
use crate::web::blocking::Blocking;
use crate::web::errors::AppError;
use latchkey_core::{Tenant, User, UserId};
use latchkey_keys::KeyError;
use latchkey_keys::jwt::Expect;
use latchkey_store::{OAuthRepo, StoredToken, TokenKind, UserRepo};
use serde_json::Value;

/// What a live token says.
pub(crate) struct Inspected {
    pub kind: TokenKind,
    pub client_id: String,
    pub user: Option<UserId>,
    pub scope: String,
    pub aud: Option<String>,
    pub iat: i64,
    pub exp: i64,
    pub jti: Option<String>,
    /// The stored row, when there is one.
    pub handle: Option<String>,
    /// The token's user, when the caller asked for it (read in the same trip as the token).
    pub user_row: Option<User>,
}

/// A stored token and, when asked for and the token has one, its user: at most one
/// blocking-pool trip. A live access token comes from this node's cache when the tenant's
/// revocation epoch allows (`web::revocation`), and is put there when read.
async fn stored(
    state: &AppState,
    tenant: &Tenant,
    handle: String,
    load_user: bool,
) -> Result<(Option<StoredToken>, Option<User>), AppError> {
    use crate::web::revocation;
    // Read before the row: a revocation committed after this read replaces it.
    let epoch = if state.config.token_cache_bytes > 0 {
        revocation::epoch(state, &tenant.id).await
    } else {
        None
    };
    let tid = tenant.id.clone();
    if let Some(row) = revocation::cached(state, &tid, &handle, epoch) {
        let user = match row.user_id.clone() {
            Some(uid) if load_user => state.store(move |db| db.user(&tid, &uid)).await?,
            _ => None,
        };
        return Ok((Some(row), user));
    }
    let (row, user) = state
        .store(move |db| -> Result<_, AppError> {
            let row = db.token(&tid, &handle)?;
            let user = match row.as_ref().and_then(|r| r.user_id.as_ref()) {
                Some(uid) if load_user => db.user(&tid, uid)?,
                _ => None,
            };
            Ok((row, user))
        })
        .await?;
    if let (Some(epoch), Some(r)) = (epoch, &row)
        && r.is_live(state.clock.now_millis())
    {
        state.tokens.put(&tenant.id, r, epoch);
    }
    Ok((row, user))
}

pub(crate) fn deny_key(jti: &str) -> String {
    format!("revoked-jti:{}", latchkey_core::sha256_hex(jti.as_bytes()))
}

fn is_jwt(token: &str) -> bool {
    token.bytes().filter(|b| *b == b'.').count() == 2
}

/// The claims of a valid access-token JWT of tenant `t`; `None` for a token that fails
/// verification. A storage or key failure is an error (a 500), never an invalid token.
async fn verify_jwt(
    state: &AppState,
    tenant: &Tenant,
    token: &str,
    leeway_secs: i64,
) -> Result<Option<Value>, AppError> {
    let (iss, now, token) = (
        state.config.issuer(&tenant.slug),
        state.clock.now_millis() / 1000,
        token.to_owned(),
    );
    state
        .with_keys(tenant, move |keys, tenant| {
            let expect = Expect {
                issuer: &iss,
                audience: None,
                typ: Some(latchkey_oidc::tokens::AT_JWT),
                now,
                leeway_secs,
            };
            match keys.verify(&tenant.id, &token, &expect) {
                Ok(claims) => Ok(Some(claims)),
                Err(KeyError::Token(_)) => Ok(None),
                Err(e) => Err(AppError::from(e)),
            }
        })
        .await
}

/// Whether a user's JWT access token says what its stored row says: the same client, and a
/// `sub` naming the row's user as that client knows them (their id, or its pairwise value).
async fn minted_for(
    state: &AppState,
    tenant: &Tenant,
    row: &StoredToken,
    client_id: Option<String>,
    sub: Option<String>,
) -> Result<bool, AppError> {
    let (Some(user), Some(client_id), Some(sub)) = (&row.user_id, client_id, sub) else {
        return Ok(false);
    };
    if client_id != row.client_id.as_str() {
        return Ok(false);
    }
    crate::flow::subject::names(state, tenant, &row.client_id, user, &sub).await
}

/// The live token `token` of tenant `t` (access or refresh), or `None` for anything else.
pub(crate) async fn inspect(
    state: &AppState,
    tenant: &Tenant,
    token: &str,
    load_user: bool,
) -> Result<Option<Inspected>, AppError> {
    if token.is_empty() || token.len() > latchkey_keys::jwt::MAX_TOKEN_BYTES {
        return Ok(None);
    }
    let now = state.clock.now_millis();
    if is_jwt(token) {
        let Some(claims) = verify_jwt(state, tenant, token, 0).await? else {
            return Ok(None);
        };
        let s = |k: &str| claims.get(k).and_then(Value::as_str).map(str::to_owned);
        let Some(jti) = s("jti") else { return Ok(None) };
        let (mut user, mut user_row) = (None, None);
        if claims.get("auth_time").is_some() {
            let (row, u) = stored(state, tenant, jti.clone(), load_user).await?;
            let Some(row) = row.filter(|r| r.is_live(now)) else {
                return Ok(None);
            };
            if !minted_for(state, tenant, &row, s("client_id"), s("sub")).await? {
                return Ok(None);
            }
            (user, user_row) = (row.user_id, u);
        } else if state.ephemeral.peek(&tenant.id, &deny_key(&jti)).await?.is_some() {
            return Ok(None);
        }
        let n = |k: &str| claims.get(k).and_then(Value::as_i64).unwrap_or_default();
        return Ok(Some(Inspected {
            kind: TokenKind::Access,
            client_id: s("client_id").unwrap_or_default(),
            user,
            scope: s("scope").unwrap_or_default(),
            aud: s("aud"),
            iat: n("iat"),
            exp: n("exp"),
            jti: Some(jti.clone()),
            handle: claims.get("auth_time").is_some().then_some(jti),
            user_row,
        }));
    }
    let handle = latchkey_core::sha256_hex(token.as_bytes());
    let (row, user_row) = stored(state, tenant, handle.clone(), load_user).await?;
    let Some(row) = row.filter(|r| r.is_live(now)) else {
        return Ok(None);
    };
    Ok(Some(Inspected {
        kind: row.kind,
        client_id: row.client_id.to_string(),
        user: row.user_id,
        scope: row.scope,
        aud: row.audience,
        iat: row.created_at / 1000,
        exp: row.expires_at / 1000,
        jti: None,
        handle: Some(handle),
        user_row,
    }))
}
