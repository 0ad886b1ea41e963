//! Live access tokens a node has read, so introspection and UserInfo skip the database
//! (docs/performance.md#token-cache).
//!
//! An entry is trusted only while three things hold:
//! - its tenant's **revocation epoch** (a random value in the session store, replaced after
//!   every committed revocation, before the revoking call answers) is the one read before the
//!   entry was filled: a revocation made through any node sharing the session store is seen by
//!   every node's next request;
//! - the node read the **change feed** within `FEED_TRUST` (a revocation by the CLI or an older
//!   release reaches it through the feed, and a node that cannot read the feed stops trusting
//!   what it holds);
//! - the token is still unexpired (checked by the caller, as for a stored row).
//!
//! Only access tokens are cached: a refresh token dies by being spent, which is no revocation.
//! Memory is bounded by an explicit byte budget; the oldest entries go first.

use latchkey_core::TenantId;
use latchkey_store::{StoredToken, TokenKind};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long after its last read of the change feed a node still trusts its entries.
pub const FEED_TRUST: Duration = Duration::from_secs(2);

type Key = (TenantId, String);

struct Entry {
    row: StoredToken,
    epoch: u64,
    bytes: usize,
}

#[derive(Default)]
struct Inner {
    map: HashMap<Key, Entry>,
    /// Insertion order, for eviction; keys already gone are skipped.
    order: VecDeque<Key>,
    bytes: usize,
    feed_read: Option<Instant>,
    hits: u64,
    misses: u64,
}

impl Inner {
    /// Drops `key`'s entry, if any, with its bytes.
    fn remove(&mut self, key: &Key) {
        if let Some(e) = self.map.remove(key) {
            self.bytes -= e.bytes;
        }
    }
}

/// What the cache holds, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub entries: usize,
    pub bytes: usize,
    pub budget: usize,
    /// Lookups answered from the cache, and lookups that went to the database.
    pub hits: u64,
    pub misses: u64,
}

pub struct TokenCache {
    budget: usize,
    inner: Mutex<Inner>,
}

/// What an entry costs: its strings and the fixed parts of the map, the row and the order.
fn cost(key: &Key, row: &StoredToken) -> usize {
    let strings = key.0.as_str().len()
        + key.1.len()
        + row.handle.len()
        + row.client_id.as_str().len()
        + row.user_id.as_ref().map_or(0, |u| u.as_str().len())
        + row.scope.len()
        + row.audience.as_ref().map_or(0, String::len)
        + row.grant.as_ref().map_or(0, |g| {
            g.id.len()
                + g.client_id.as_str().len()
                + g.user_id.as_str().len()
                + g.session_key.as_ref().map_or(0, String::len)
                + g.scope.len()
                + g.acr.as_ref().map_or(0, String::len)
                + g.amr.iter().map(|a| a.len() + size_of::<String>()).sum::<usize>()
        });
    // Key twice (map and order), the entry, and a hash map's per-slot slack.
    strings + key.1.len() + key.0.as_str().len() + 2 * size_of::<Key>() + size_of::<Entry>() + 16
}

impl TokenCache {
    /// A cache holding at most `budget` bytes of entries (0: caches nothing).
    pub fn new(budget: usize) -> Self {
        Self {
            budget,
            inner: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The node read the change feed (and applied what it said).
    pub fn feed_read(&self, at: Instant) {
        self.lock().feed_read = Some(at);
    }

    /// The entry for `handle`, if it was filled under `epoch` and the feed is fresh at `now`.
    pub fn get(&self, t: &TenantId, handle: &str, epoch: u64, now: Instant) -> Option<StoredToken> {
        let mut inner = self.lock();
        if inner
            .feed_read
            .is_none_or(|at| now.saturating_duration_since(at) >= FEED_TRUST)
        {
            return None;
        }
        let key = (t.clone(), handle.to_owned());
        let found = match inner.map.get(&key) {
            Some(e) if e.epoch == epoch => Some(e.row.clone()),
            Some(_) => {
                // Filled before a revocation: whatever it says may be stale.
                inner.remove(&key);
                None
            }
            None => None,
        };
        if found.is_some() {
            inner.hits += 1;
        } else {
            inner.misses += 1;
        }
        found
    }

    /// Remembers a live access token read under `epoch` (read before the row was).
    pub fn put(&self, t: &TenantId, row: &StoredToken, epoch: u64) {
        if row.kind != TokenKind::Access {
            return;
        }
        let key = (t.clone(), row.handle.clone());
        let bytes = cost(&key, row);
        if bytes > self.budget {
            return;
        }
        let mut inner = self.lock();
        inner.remove(&key);
        while inner.bytes + bytes > self.budget {
            let Some(oldest) = inner.order.pop_front() else {
                break;
            };
            inner.remove(&oldest);
        }
        inner.order.push_back(key.clone());
        inner.bytes += bytes;
        inner.map.insert(
            key,
            Entry {
                row: row.clone(),
                epoch,
                bytes,
            },
        );
        // Keys of entries removed other than by eviction stay in the order until they reach
        // its front; past twice the live entries, it is rebuilt.
        if inner.order.len() > 2 * inner.map.len() + 64 {
            let Inner { map, order, .. } = &mut *inner;
            order.retain(|k| map.contains_key(k));
        }
    }

    /// Forgets one token (the feed says it was revoked or deleted).
    pub fn forget(&self, t: &TenantId, handle: &str) {
        self.lock().remove(&(t.clone(), handle.to_owned()));
    }

    /// Forgets the tenant's tokens (this node revoked some).
    pub fn forget_tenant(&self, t: &TenantId) {
        let mut inner = self.lock();
        let mut freed = 0;
        inner.map.retain(|(tenant, _), e| {
            let keep = tenant != t;
            if !keep {
                freed += e.bytes;
            }
            keep
        });
        inner.bytes -= freed;
    }

    /// Forgets everything (a feed row of a kind this version does not know).
    pub fn clear(&self) {
        let mut inner = self.lock();
        inner.map.clear();
        inner.order.clear();
        inner.bytes = 0;
    }

    pub fn usage(&self) -> Usage {
        let inner = self.lock();
        Usage {
            entries: inner.map.len(),
            bytes: inner.bytes,
            budget: self.budget,
            hits: inner.hits,
            misses: inner.misses,
        }
    }

    /// The cache's metric families, in Prometheus text.
    pub fn render(&self, out: &mut String) {
        use std::fmt::Write as _;
        let u = self.usage();
        for (name, kind, help, value) in [
            (
                "latchkey_token_cache_bytes",
                "gauge",
                "Bytes held by the live access-token cache.",
                u.bytes as u64,
            ),
            (
                "latchkey_token_cache_budget_bytes",
                "gauge",
                "The token cache's byte budget (LATCHKEY_TOKEN_CACHE_BYTES).",
                u.budget as u64,
            ),
            (
                "latchkey_token_cache_entries",
                "gauge",
                "Access tokens in the cache.",
                u.entries as u64,
            ),
            (
                "latchkey_token_cache_hits_total",
                "counter",
                "Token lookups answered from the cache.",
                u.hits,
            ),
            (
                "latchkey_token_cache_misses_total",
                "counter",
                "Token lookups that read the database (absent, stale or untrusted).",
                u.misses,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use latchkey_core::ClientId;

    fn row(handle: &str, kind: TokenKind) -> StoredToken {
        StoredToken {
            handle: handle.into(),
            kind,
            client_id: ClientId("reports".into()),
            user_id: None,
            scope: "reports.read".into(),
            audience: None,
            created_at: 0,
            expires_at: 1,
            used_at: None,
            revoked_at: None,
            grant: None,
        }
    }

    fn t() -> TenantId {
        TenantId("acme".into())
    }

    #[test]
    fn an_entry_holds_only_under_its_epoch_and_a_fresh_feed() {
        let c = TokenCache::new(1 << 20);
        let now = Instant::now();
        c.put(&t(), &row("h1", TokenKind::Access), 7);
        assert!(c.get(&t(), "h1", 7, now).is_none(), "no feed read yet: untrusted");
        c.feed_read(now);
        assert_eq!(c.get(&t(), "h1", 7, now).unwrap().handle, "h1");
        assert!(
            c.get(&t(), "h1", 7, now + FEED_TRUST).is_none(),
            "the feed went stale"
        );
        assert!(c.get(&t(), "h1", 8, now).is_none(), "a revocation since");
        assert!(c.get(&t(), "h1", 7, now).is_none(), "and the entry is gone");
        assert_eq!(c.usage().entries, 0);
        assert_eq!(c.usage().bytes, 0);
    }

    #[test]
    fn refresh_tokens_are_never_cached() {
        let c = TokenCache::new(1 << 20);
        c.feed_read(Instant::now());
        c.put(&t(), &row("r1", TokenKind::Refresh), 1);
        assert!(c.get(&t(), "r1", 1, Instant::now()).is_none());
    }

    #[test]
    fn the_byte_budget_holds_and_the_oldest_go_first() {
        let one = cost(&(t(), "h000".into()), &row("h000", TokenKind::Access));
        let c = TokenCache::new(one * 10);
        let now = Instant::now();
        c.feed_read(now);
        for i in 0..25 {
            c.put(&t(), &row(&format!("h{i:03}"), TokenKind::Access), 1);
            assert!(c.usage().bytes <= one * 10, "over budget after {i}");
        }
        assert_eq!(c.usage().entries, 10);
        assert!(c.get(&t(), "h000", 1, now).is_none(), "the oldest was evicted");
        assert!(c.get(&t(), "h024", 1, now).is_some(), "the newest is there");
        c.forget(&t(), "h024");
        assert!(c.get(&t(), "h024", 1, now).is_none());
        assert_eq!(c.usage().entries, 9);
        let other = TenantId("other".into());
        c.put(&other, &row("o1", TokenKind::Access), 1);
        c.forget_tenant(&t());
        assert_eq!(c.usage().entries, 1, "only the other tenant's is left");
        assert_eq!(
            c.usage().bytes,
            cost(&(other.clone(), "o1".into()), &row("o1", TokenKind::Access))
        );
        c.clear();
        let u = c.usage();
        assert_eq!((u.entries, u.bytes, u.budget), (0, 0, one * 10));
        assert_eq!((u.hits, u.misses), (1, 2), "{u:?}");
        let mut text = String::new();
        c.render(&mut text);
        assert!(
            text.contains(&format!("latchkey_token_cache_budget_bytes {}", one * 10)),
            "{text}"
        );
        assert!(
            text.contains(&format!("latchkey_token_cache_hits_total {}", u.hits)),
            "{text}"
        );
    }

    #[test]
    fn forgotten_keys_do_not_pile_up_in_the_order() {
        let c = TokenCache::new(1 << 20);
        for i in 0..1000 {
            let h = format!("h{i}");
            c.put(&t(), &row(&h, TokenKind::Access), 1);
            c.forget(&t(), &h);
        }
        assert!(c.lock().order.len() <= 64 + 2, "{}", c.lock().order.len());
    }
}
