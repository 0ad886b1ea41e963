//! Revocation epochs: what lets a node trust the live access tokens it caches
//! (docs/performance.md#token-cache, `latchkey_services::token_cache`).
//!
//! Each tenant has one random 64-bit value in the session store. Store work that commits a
//! revocation (`latchkey_store::revocations`) replaces it before `state.store(…)` returns, so
//! before the revoking request answers; a cached token is used only while the value read on the
//! request is the one read before its row was. Random, not a counter: a value that expired or
//! was evicted from Redis and made again can never repeat an old one.

use crate::state::AppState;
use latchkey_core::TenantId;
use std::time::{Duration, Instant};

const KEY: &str = "revocation-epoch";
/// Long enough to outlive every cached entry many times; a missing value is made again.
const TTL: Duration = Duration::from_secs(24 * 3600);

fn fresh(state: &AppState) -> [u8; 8] {
    let mut v = [0u8; 8];
    state.rng.fill(&mut v);
    v
}

/// Tenant `t`'s current epoch, made when there is none; `None` when the session store can't
/// say (the cache is then neither read nor filled).
pub(crate) async fn epoch(state: &AppState, t: &TenantId) -> Option<u64> {
    for _ in 0..2 {
        match state.ephemeral.peek(t, KEY).await {
            Ok(Some(v)) => return <[u8; 8]>::try_from(v.as_slice()).ok().map(u64::from_be_bytes),
            Ok(None) => {
                let v = fresh(state);
                match state.ephemeral.put_once(t, KEY, &v, TTL).await {
                    Ok(true) => return Some(u64::from_be_bytes(v)),
                    // Another request made it first: read theirs.
                    Ok(false) => {}
                    Err(_) => return None,
                }
            }
            Err(_) => return None,
        }
    }
    None
}

/// Replaces the epochs of `tenants` after their revocations committed. A session store that
/// fails here leaves other nodes to learn of the revocation from the change feed (within a
/// poll); this node forgets its own entries at once either way.
pub(crate) async fn revoked(state: &AppState, tenants: &[TenantId]) {
    for t in tenants {
        state.tokens.forget_tenant(t);
        let v = fresh(state);
        let replaced = match state.ephemeral.replace(t, KEY, &v, TTL).await {
            Ok(true) => Ok(()),
            Ok(false) => state.ephemeral.put_once(t, KEY, &v, TTL).await.map(|_| ()),
            Err(e) => Err(e),
        };
        if let Err(e) = replaced {
            tracing::warn!(tenant = %t, error = %e, "a revocation could not reach the other nodes' token caches at once; the change feed carries it within a poll");
        }
    }
}

/// The cached row of live access token `handle`, if this node may trust it now.
pub(crate) fn cached(
    state: &AppState,
    t: &TenantId,
    handle: &str,
    epoch: Option<u64>,
) -> Option<latchkey_store::StoredToken> {
    state.tokens.get(t, handle, epoch?, Instant::now())
}
