//! The change feed (`changes`): rows written by triggers in the transaction that changes a
//! tenant, a client, a signing or data key, or the master key check, or that revokes an access
//! token. Nodes follow it to drop
//! what they cache, so a change made anywhere reaches every node within one poll.

use crate::Result;
use crate::db::Db;
use crate::schema::changes;
use diesel::prelude::*;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// What changed, as the feed names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Changed {
    /// A tenant row (slug, display name, policy); `subject` is the slug after the change.
    Tenant,
    /// A client; `subject` is its client id.
    Client,
    /// A signing key or data key of the tenant.
    Keys,
    /// The master key check: the master key was replaced.
    Master,
    /// An access token of the tenant was revoked, or deleted while live; `subject` is its
    /// handle.
    Tokens,
    /// A kind this version does not know (written by a newer node): drop everything.
    Other(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub id: i64,
    pub tenant_id: String,
    pub kind: Changed,
    pub subject: String,
}

impl Changed {
    fn parse(kind: String) -> Self {
        match kind.as_str() {
            "tenant" => Self::Tenant,
            "client" => Self::Client,
            "keys" => Self::Keys,
            "master" => Self::Master,
            "tokens" => Self::Tokens,
            _ => Self::Other(kind),
        }
    }
}

/// At most this many rows per poll; a burst larger than that is read over several polls.
const PAGE: i64 = 1000;

impl Db {
    /// The newest change id (0 on an empty feed): where a node that caches nothing yet starts.
    pub fn latest_change(&self) -> Result<i64> {
        let mut conn = self.conn()?;
        let id: Option<i64> = changes::table
            .select(diesel::dsl::max(changes::id))
            .first(&mut *conn)?;
        Ok(id.unwrap_or(0))
    }

    /// Changes with an id above `after`, oldest first, at most `PAGE`.
    pub fn changes_after(&self, after: i64) -> Result<Vec<Change>> {
        let mut conn = self.conn()?;
        let rows: Vec<(i64, String, String, String)> = changes::table
            .filter(changes::id.gt(after))
            .order(changes::id.asc())
            .limit(PAGE)
            .select((changes::id, changes::tenant_id, changes::kind, changes::subject))
            .load(&mut *conn)?;
        Ok(rows
            .into_iter()
            .map(|(id, tenant_id, kind, subject)| Change {
                id,
                tenant_id,
                kind: Changed::parse(kind),
                subject,
            })
            .collect())
    }

    /// Deletes changes recorded before `before` (Unix ms, the database's clock).
    pub fn prune_changes(&self, before: i64) -> Result<usize> {
        self.write(|c| Ok(diesel::delete(changes::table.filter(changes::at.lt(before))).execute(c)?))
    }
}

/// Which changes a node has applied. Ids are handed out when a transaction writes its row but
/// become visible when it commits, so a lower id can appear after a higher one: the follower
/// reads again everything above the newest id it saw `window` ago and skips the ids it applied.
#[derive(Debug)]
pub struct Follower {
    /// Every id at or below this is applied or never will be.
    floor: i64,
    applied: BTreeMap<i64, Instant>,
    window: Duration,
}

impl Follower {
    /// Starts after `latest` (nothing older matters to a node with empty caches).
    pub fn new(latest: i64, window: Duration) -> Self {
        Self {
            floor: latest,
            applied: BTreeMap::new(),
            window,
        }
    }

    /// The id to read after.
    pub fn floor(&self) -> i64 {
        self.floor
    }

    /// The changes among `read` not applied yet, remembered as applied at `now`; ids applied
    /// longer than the window ago move the floor up and are forgotten.
    pub fn take(&mut self, read: Vec<Change>, now: Instant) -> Vec<Change> {
        let fresh: Vec<Change> = read
            .into_iter()
            .filter(|c| c.id > self.floor && !self.applied.contains_key(&c.id))
            .collect();
        for c in &fresh {
            self.applied.insert(c.id, now);
        }
        let old: Vec<i64> = self
            .applied
            .iter()
            .filter(|(_, at)| now.duration_since(**at) >= self.window)
            .map(|(id, _)| *id)
            .collect();
        for id in old {
            self.applied.remove(&id);
            self.floor = self.floor.max(id);
        }
        fresh
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(id: i64) -> Change {
        Change {
            id,
            tenant_id: "t".into(),
            kind: Changed::Client,
            subject: format!("c{id}"),
        }
    }

    fn ids(cs: &[Change]) -> Vec<i64> {
        cs.iter().map(|c| c.id).collect()
    }

    #[test]
    fn a_late_commit_below_the_newest_id_is_still_applied_once() {
        let start = Instant::now();
        let mut f = Follower::new(10, Duration::from_secs(10));
        // Id 12 commits first; 11 belongs to a transaction still open.
        assert_eq!(ids(&f.take(vec![change(12)], start)), vec![12]);
        assert_eq!(f.floor(), 10, "the floor waits for the window");
        let later = start + Duration::from_secs(1);
        assert_eq!(
            ids(&f.take(vec![change(11), change(12)], later)),
            vec![11],
            "11 arrives late and is applied; 12 is not applied twice"
        );
        let much_later = start + Duration::from_secs(12);
        assert!(f.take(vec![change(11), change(12)], much_later).is_empty());
        assert_eq!(f.floor(), 12, "applied ids older than the window move the floor");
        assert!(f.take(vec![change(5)], much_later).is_empty(), "below the floor");
    }

    #[test]
    fn kinds_are_parsed_and_unknown_kinds_kept() {
        assert_eq!(Changed::parse("keys".into()), Changed::Keys);
        assert_eq!(Changed::parse("master".into()), Changed::Master);
        assert_eq!(Changed::parse("tokens".into()), Changed::Tokens);
        assert_eq!(Changed::parse("webhook".into()), Changed::Other("webhook".into()));
    }
}
