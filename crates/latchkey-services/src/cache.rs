//! Small per-node caches of database rows read on every request (tenants, clients). Entries live
//! `ttl` (how long a change made by another node or the CLI may go unseen) and are dropped at once
//! when this process's own changes move the generation on.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct TtlCache<K, V> {
    ttl: Duration,
    max: usize,
    map: Mutex<HashMap<K, (Instant, u64, V)>>,
}

impl<K: Hash + Eq, V: Clone> TtlCache<K, V> {
    pub fn new(ttl: Duration, max: usize) -> Self {
        Self {
            ttl,
            max,
            map: Mutex::new(HashMap::new()),
        }
    }

    /// The value stored under `key` at `generation`, if still fresh.
    pub fn get(&self, key: &K, generation: u64) -> Option<V> {
        let map = self.map.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(key)
            .filter(|(at, g, _)| *g == generation && at.elapsed() < self.ttl)
            .map(|(_, _, v)| v.clone())
    }

    /// Forgets `key` (this process changed it).
    pub fn remove(&self, key: &K) {
        let mut map = self.map.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        map.remove(key);
    }

    /// Forgets everything (a change that may touch any entry).
    pub fn clear(&self) {
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }

    pub fn put(&self, key: K, value: V, generation: u64) {
        let mut map = self.map.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= self.max {
            map.retain(|_, (at, g, _)| *g == generation && at.elapsed() < self.ttl);
            if map.len() >= self.max {
                map.clear();
            }
        }
        map.insert(key, (Instant::now(), generation, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_follow_the_generation() {
        let c = TtlCache::new(Duration::from_millis(50), 2);
        c.put("a", 1, 0);
        assert_eq!(c.get(&"a", 0), Some(1));
        assert_eq!(c.get(&"a", 1), None, "a change in this process drops it");
        c.remove(&"a");
        assert_eq!(c.get(&"a", 0), None, "removed");
        c.put("a", 1, 0);
        c.clear();
        assert_eq!(c.get(&"a", 0), None, "cleared");
        c.put("b", 2, 0);
        c.put("c", 3, 0);
        assert!(c.map.lock().unwrap().len() <= 2, "bounded");
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(c.get(&"c", 0), None, "expired");
    }
}
