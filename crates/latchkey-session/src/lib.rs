//! Short-lived server-side state: browser sessions, take-once values (authorization codes,
//! nonces, SAML request ids, TOTP steps) and rate counters. Two backends, in-process memory and
//! Redis, pass one contract suite (`tests/` in the workspace).

mod memory;
mod redis_store;

pub use memory::MemoryStore;
pub use redis_store::{MIN_REDIS_VERSION, RedisStore, RedisTls};

use async_trait::async_trait;
use latchkey_core::{Rng, Session, TenantId, UserId};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The backend can't be reached; callers answer 503.
    #[error("session store unavailable: {0}")]
    Unavailable(String),
    /// The backend is known to be down (its circuit breaker is open): answered at once.
    #[error("session store is down (circuit open)")]
    CircuitOpen,
    #[error("session store URL: {0}")]
    BadUrl(String),
    #[error("stored session is corrupt: {0}")]
    Corrupt(String),
}

pub type Result<T, E = SessionError> = std::result::Result<T, E>;

/// A session id: 256 random bits for the cookie; the store only ever sees its SHA-256.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionId(String);

impl SessionId {
    pub fn generate(rng: &dyn Rng) -> Self {
        Self(latchkey_core::random_token(rng, 32))
    }

    /// Wraps the cookie value as received.
    pub fn from_cookie(value: &str) -> Self {
        Self(value.to_owned())
    }

    pub fn cookie_value(&self) -> &str {
        &self.0
    }

    /// The key the store uses, so a leaked store dump can't be replayed as cookies.
    pub fn storage_key(&self) -> String {
        latchkey_core::sha256_hex(self.0.as_bytes())
    }
}

impl std::fmt::Debug for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionId(***)")
    }
}

#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Stores (or replaces) a session; it expires after `ttl` unless put again.
    async fn put_session(&self, t: &TenantId, id: &SessionId, s: &Session, ttl: Duration) -> Result<()>;
    async fn get_session(&self, t: &TenantId, id: &SessionId) -> Result<Option<Session>>;
    /// Returns whether a session was removed.
    async fn delete_session(&self, t: &TenantId, id: &SessionId) -> Result<bool>;
    /// "Sign out everywhere": removes every session of the user; returns how many.
    async fn delete_user_sessions(&self, t: &TenantId, user: &UserId) -> Result<u64>;
    /// The user's live sessions with their storage keys (the SHA-256 of each id, never the id).
    async fn list_user_sessions(&self, t: &TenantId, user: &UserId) -> Result<Vec<(String, Session)>>;
    /// Removes one session by storage key (for "sign out that device").
    async fn delete_session_by_key(&self, t: &TenantId, storage_key: &str) -> Result<bool>;
}

#[async_trait]
pub trait OneTimeStore: Send + Sync {
    /// Stores `value` under `key` unless the key is already present; returns whether it was stored.
    async fn put_once(&self, t: &TenantId, key: &str, value: &[u8], ttl: Duration) -> Result<bool>;
    /// The value, left in place (for state read several times and taken once at the end).
    async fn peek(&self, t: &TenantId, key: &str) -> Result<Option<Vec<u8>>>;
    /// Removes and returns the value atomically: of any number of concurrent takes, one gets it.
    async fn take(&self, t: &TenantId, key: &str) -> Result<Option<Vec<u8>>>;
    /// Replaces the value of a key that is present, with a new lifetime, in one step (no
    /// moment without it, so nobody can `put_once` in between); returns whether it was there.
    async fn replace(&self, t: &TenantId, key: &str, value: &[u8], ttl: Duration) -> Result<bool>;
}

/// The state of a fixed-window counter after a hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateHit {
    /// Hits in the current window, this one included.
    pub count: u64,
    /// Time until the window closes.
    pub reset_in: Duration,
}

#[async_trait]
pub trait RateCounter: Send + Sync {
    /// Counts a hit in a fixed window that starts at the first hit and lasts `window`.
    async fn hit(&self, t: &TenantId, key: &str, window: Duration) -> Result<RateHit>;
    /// The current count without adding a hit.
    async fn count(&self, t: &TenantId, key: &str) -> Result<u64>;
    /// Time left in the current window, `None` when no window is open.
    async fn window_left(&self, t: &TenantId, key: &str) -> Result<Option<Duration>>;
    async fn reset(&self, t: &TenantId, key: &str) -> Result<()>;
    /// Takes back one hit (a reservation whose outcome is known): never below zero, the window
    /// unchanged, nothing created when no window is open.
    async fn release(&self, t: &TenantId, key: &str) -> Result<()>;
}

/// Everything short-lived, from one backend, plus a readiness check.
#[async_trait]
pub trait Ephemeral: SessionStore + OneTimeStore + RateCounter {
    async fn ping(&self) -> Result<()>;
    fn backend_name(&self) -> &'static str;
    /// The backend's circuit breaker; `None` for a backend that cannot go down (memory).
    fn breaker(&self) -> Option<latchkey_core::BreakerState> {
        None
    }
}

/// Opens the backend named by `LATCHKEY_SESSION_STORE`: `memory`, `redis://…` or
/// `rediss://…` (TLS, with `tls`).
pub async fn open(
    spec: &str,
    tls: &RedisTls,
    clock: std::sync::Arc<dyn latchkey_core::Clock>,
) -> Result<std::sync::Arc<dyn Ephemeral>> {
    if spec == "memory" {
        Ok(std::sync::Arc::new(MemoryStore::new(clock)))
    } else if spec.starts_with("redis://")
        || spec.starts_with("rediss://")
        || spec.starts_with("redis-sentinel://")
    {
        Ok(std::sync::Arc::new(
            RedisStore::connect_with(spec, "latchkey:", tls).await?,
        ))
    } else {
        Err(SessionError::BadUrl(
            "expected memory, redis://… or rediss://…".into(),
        ))
    }
}

fn ttl_millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_id_is_256_bits_and_stored_hashed() {
        let id = SessionId::generate(&latchkey_core::OsRng);
        assert_eq!(id.cookie_value().len(), 43);
        assert_eq!(id.storage_key().len(), 64);
        assert!(!id.storage_key().contains(id.cookie_value()));
        assert_eq!(format!("{id:?}"), "SessionId(***)");
    }
}
