//! The `sub` a client knows a user by (OIDC Core §8: the user's id, or its pairwise value for a
//! pairwise client), where it is needed outside the token endpoint: userinfo and introspection
//! answers, the check of a JWT access token against its stored row, and end-session's
//! `id_token_hint`. Stored rows, sessions and audit events keep the user's id.

use crate::state::AppState;
use crate::web::blocking::Blocking;
use crate::web::errors::AppError;
use latchkey_core::{Client, ClientId, SubjectType, Tenant, UserId};
use latchkey_oidc::subject::subject_for;
use latchkey_store::ClientRepo;
use std::sync::Arc;

/// The `sub` client `c` knows `user` by. The tenant's pairwise salt comes from the key ring,
/// through the blocking pool the first time this node needs it.
pub(crate) async fn subject(
    state: &AppState,
    tenant: &Tenant,
    c: &Client,
    user: &UserId,
) -> Result<String, AppError> {
    if c.settings.subject_type == SubjectType::Public {
        return Ok(user.to_string());
    }
    let salt = if let Some(salt) = state.keys.cached_pairwise_salt(&tenant.id) {
        salt
    } else {
        let (keys, tid) = (Arc::clone(&state.keys), tenant.id.clone());
        state.store(move |_| keys.pairwise_salt(&tid)).await?
    };
    Ok(subject_for(c, user.as_str(), || Ok(salt))?)
}

/// Whether `sub`, read from a token of client `client_id`, names `user` the way that client
/// knows them. The user's id itself always does (a public client's tokens, or tokens minted
/// before the client turned pairwise), so only another value costs a client lookup.
pub(crate) async fn names(
    state: &AppState,
    tenant: &Tenant,
    client_id: &ClientId,
    user: &UserId,
    sub: &str,
) -> Result<bool, AppError> {
    if sub == user.as_str() {
        return Ok(true);
    }
    let Some(c) = client(state, tenant, client_id).await? else {
        return Ok(false);
    };
    Ok(c.settings.subject_type == SubjectType::Pairwise && subject(state, tenant, &c, user).await? == sub)
}

/// The client from the per-node cache, else the store (and then cached).
async fn client(state: &AppState, tenant: &Tenant, id: &ClientId) -> Result<Option<Client>, AppError> {
    let key = (tenant.id.clone(), id.clone());
    if let Some(c) = state.clients.get(&key, 0) {
        return Ok(Some(c));
    }
    let (tid, cid) = key.clone();
    let found = state.store(move |db| db.client(&tid, &cid)).await?;
    if let Some(c) = &found {
        state.clients.put(key, c.clone(), 0);
    }
    Ok(found)
}
