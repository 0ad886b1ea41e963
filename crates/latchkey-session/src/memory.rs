//! In-process backend for the embedded default and single-node deployments. State is lost on
//! restart, which is acceptable for sessions only when one node runs (the docs say so).

use crate::{
    Ephemeral, OneTimeStore, RateCounter, RateHit, Result, SessionError, SessionId, SessionStore, ttl_millis,
};
use async_trait::async_trait;
use latchkey_core::{Clock, Session, TenantId, UserId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

#[derive(Debug)]
enum Value {
    Session(Box<Session>),
    Bytes(Vec<u8>),
    Count(u64),
}

#[derive(Debug)]
struct Entry {
    value: Value,
    expires_at: i64,
}

#[derive(Default)]
struct Inner {
    map: HashMap<String, Entry>,
    writes: u64,
}

pub struct MemoryStore {
    inner: Mutex<Inner>,
    clock: Arc<dyn Clock>,
}

fn key(t: &TenantId, kind: &str, k: &str) -> String {
    format!("{t}\u{0}{kind}\u{0}{k}")
}

impl MemoryStore {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            clock,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock can't leave a half-written entry: every write is one insert.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn deadline(&self, ttl: Duration) -> i64 {
        self.clock
            .now_millis()
            .saturating_add(i64::try_from(ttl_millis(ttl)).unwrap_or(i64::MAX))
    }

    /// Inserts, and every 1024 writes drops expired entries so memory stays bounded by live state.
    fn insert(&self, inner: &mut Inner, k: String, entry: Entry) {
        inner.writes += 1;
        if inner.writes.is_multiple_of(1024) {
            let now = self.clock.now_millis();
            inner.map.retain(|_, e| e.expires_at > now);
        }
        inner.map.insert(k, entry);
    }

    /// The live entry under `k`, dropping it if expired.
    fn live<'a>(&self, inner: &'a mut Inner, k: &str) -> Option<&'a mut Entry> {
        let now = self.clock.now_millis();
        if inner.map.get(k).is_some_and(|e| e.expires_at <= now) {
            inner.map.remove(k);
        }
        inner.map.get_mut(k)
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn put_session(&self, t: &TenantId, id: &SessionId, s: &Session, ttl: Duration) -> Result<()> {
        let entry = Entry {
            value: Value::Session(Box::new(s.clone())),
            expires_at: self.deadline(ttl),
        };
        let mut inner = self.lock();
        self.insert(&mut inner, key(t, "s", &id.storage_key()), entry);
        Ok(())
    }

    async fn get_session(&self, t: &TenantId, id: &SessionId) -> Result<Option<Session>> {
        let mut inner = self.lock();
        match self.live(&mut inner, &key(t, "s", &id.storage_key())) {
            None => Ok(None),
            Some(Entry {
                value: Value::Session(s),
                ..
            }) => Ok(Some((**s).clone())),
            Some(_) => Err(SessionError::Corrupt("not a session".into())),
        }
    }

    async fn delete_session(&self, t: &TenantId, id: &SessionId) -> Result<bool> {
        let k = key(t, "s", &id.storage_key());
        let mut inner = self.lock();
        let live = self.live(&mut inner, &k).is_some();
        inner.map.remove(&k);
        Ok(live)
    }

    async fn list_user_sessions(&self, t: &TenantId, user: &UserId) -> Result<Vec<(String, Session)>> {
        let prefix = key(t, "s", "");
        let now = self.clock.now_millis();
        let inner = self.lock();
        let mut out: Vec<(String, Session)> = inner
            .map
            .iter()
            .filter(|(k, e)| k.starts_with(&prefix) && e.expires_at > now)
            .filter_map(|(k, e)| match &e.value {
                Value::Session(s) if &s.user_id == user => {
                    Some((k[prefix.len()..].to_owned(), (**s).clone()))
                }
                _ => None,
            })
            .collect();
        out.sort_by_key(|(_, s)| std::cmp::Reverse(s.last_seen));
        Ok(out)
    }

    async fn delete_session_by_key(&self, t: &TenantId, storage_key: &str) -> Result<bool> {
        let k = key(t, "s", storage_key);
        let mut inner = self.lock();
        let live = self.live(&mut inner, &k).is_some();
        inner.map.remove(&k);
        Ok(live)
    }

    async fn delete_user_sessions(&self, t: &TenantId, user: &UserId) -> Result<u64> {
        let prefix = key(t, "s", "");
        let now = self.clock.now_millis();
        let mut inner = self.lock();
        let before = inner.map.len();
        let mut live_removed = 0;
        inner.map.retain(|k, e| {
            let mine = k.starts_with(&prefix) && matches!(&e.value, Value::Session(s) if &s.user_id == user);
            if mine && e.expires_at > now {
                live_removed += 1;
            }
            !mine
        });
        debug_assert!(inner.map.len() <= before);
        Ok(live_removed)
    }
}

impl MemoryStore {
    /// Stores a one-time value when the key's presence is `present` (Redis `SET XX`/`NX`).
    fn set_if(&self, t: &TenantId, k: &str, (value, ttl): (&[u8], Duration), present: bool) -> bool {
        let k = key(t, "o", k);
        let mut inner = self.lock();
        if self.live(&mut inner, &k).is_some() != present {
            return false;
        }
        let entry = Entry {
            value: Value::Bytes(value.to_vec()),
            expires_at: self.deadline(ttl),
        };
        self.insert(&mut inner, k, entry);
        true
    }
}

#[async_trait]
impl OneTimeStore for MemoryStore {
    async fn put_once(&self, t: &TenantId, k: &str, value: &[u8], ttl: Duration) -> Result<bool> {
        Ok(self.set_if(t, k, (value, ttl), false))
    }

    async fn peek(&self, t: &TenantId, k: &str) -> Result<Option<Vec<u8>>> {
        let k = key(t, "o", k);
        let mut inner = self.lock();
        match self.live(&mut inner, &k) {
            Some(Entry {
                value: Value::Bytes(b),
                ..
            }) => Ok(Some(b.clone())),
            _ => Ok(None),
        }
    }

    async fn replace(&self, t: &TenantId, k: &str, value: &[u8], ttl: Duration) -> Result<bool> {
        Ok(self.set_if(t, k, (value, ttl), true))
    }

    async fn take(&self, t: &TenantId, k: &str) -> Result<Option<Vec<u8>>> {
        let k = key(t, "o", k);
        let mut inner = self.lock();
        if self.live(&mut inner, &k).is_none() {
            return Ok(None);
        }
        match inner.map.remove(&k) {
            Some(Entry {
                value: Value::Bytes(b),
                ..
            }) => Ok(Some(b)),
            _ => Ok(None),
        }
    }
}

#[async_trait]
impl RateCounter for MemoryStore {
    async fn hit(&self, t: &TenantId, k: &str, window: Duration) -> Result<RateHit> {
        let k = key(t, "r", k);
        let now = self.clock.now_millis();
        let mut inner = self.lock();
        if let Some(Entry {
            value: Value::Count(n),
            expires_at,
        }) = self.live(&mut inner, &k)
        {
            *n += 1;
            let reset_in = Duration::from_millis(u64::try_from(*expires_at - now).unwrap_or(0));
            return Ok(RateHit { count: *n, reset_in });
        }
        let entry = Entry {
            value: Value::Count(1),
            expires_at: self.deadline(window),
        };
        self.insert(&mut inner, k, entry);
        Ok(RateHit {
            count: 1,
            reset_in: Duration::from_millis(ttl_millis(window)),
        })
    }

    async fn count(&self, t: &TenantId, k: &str) -> Result<u64> {
        let mut inner = self.lock();
        Ok(match self.live(&mut inner, &key(t, "r", k)) {
            Some(Entry {
                value: Value::Count(n),
                ..
            }) => *n,
            _ => 0,
        })
    }

    async fn window_left(&self, t: &TenantId, k: &str) -> Result<Option<Duration>> {
        let now = self.clock.now_millis();
        let mut inner = self.lock();
        Ok(match self.live(&mut inner, &key(t, "r", k)) {
            Some(Entry {
                value: Value::Count(_),
                expires_at,
            }) => Some(Duration::from_millis(
                u64::try_from(*expires_at - now).unwrap_or(0),
            )),
            _ => None,
        })
    }

    async fn reset(&self, t: &TenantId, k: &str) -> Result<()> {
        self.lock().map.remove(&key(t, "r", k));
        Ok(())
    }

    async fn release(&self, t: &TenantId, k: &str) -> Result<()> {
        let mut inner = self.lock();
        if let Some(Entry {
            value: Value::Count(n),
            ..
        }) = self.live(&mut inner, &key(t, "r", k))
        {
            *n = n.saturating_sub(1);
        }
        Ok(())
    }
}

#[async_trait]
impl Ephemeral for MemoryStore {
    async fn ping(&self) -> Result<()> {
        Ok(())
    }

    fn backend_name(&self) -> &'static str {
        "memory"
    }
}
