//! Reading and appending a tenant's audit chain. Verification lives in `latchkey-audit`.

use crate::db::{Db, from_json};
use crate::schema::{audit_events, audit_heads};
use crate::{Result, StoreError};
use diesel::prelude::*;
use latchkey_core::{AuditEvent, GENESIS_HASH, NewAuditEvent, Outcome, TenantId};

/// Which events a search returns; every field narrows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Events where `user:<id>` is the actor or the target.
    pub user: Option<String>,
    /// An exact action (`login.failure`) or a prefix ending in `*` (`login.*`).
    pub action: Option<String>,
    /// Unix milliseconds, inclusive.
    pub since: Option<i64>,
    /// Unix milliseconds, exclusive.
    pub until: Option<i64>,
    /// An exact target (`saml:<connection id>`).
    pub target: Option<String>,
}

impl AuditFilter {
    fn matches_action(&self, action: &str) -> bool {
        match self.action.as_deref() {
            None => true,
            Some(a) => match a.strip_suffix('*') {
                Some(prefix) => action.starts_with(prefix),
                None => action == a,
            },
        }
    }
}

/// Where a chain now starts after retention: the last deleted event's sequence number and
/// hash (0 and the genesis hash while nothing was deleted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    pub seq: i64,
    pub hash: String,
}

pub trait AuditRepo {
    /// Appends a security event on its own (changes append theirs in their own transaction).
    fn append_audit(&self, t: &TenantId, event: NewAuditEvent) -> Result<AuditEvent>;
    /// Events with `seq > after`, in order, at most `limit`.
    fn audit_events(&self, t: &TenantId, after: i64, limit: i64) -> Result<Vec<AuditEvent>>;
    /// The chain head: (last seq, last hash), `None` if the chain was never started.
    fn audit_head(&self, t: &TenantId) -> Result<Option<(i64, String)>>;
    /// Where verification starts.
    fn audit_anchor(&self, t: &TenantId) -> Result<Anchor>;
    /// Events matching `filter` with `seq > after`, in order, at most `limit`.
    fn audit_search(
        &self,
        t: &TenantId,
        filter: &AuditFilter,
        after: i64,
        limit: i64,
    ) -> Result<Vec<AuditEvent>>;
    /// Deletes the oldest events recorded before `cutoff` (never the newest event), moves the
    /// anchor to the last one deleted and records `audit.retention` in the same transaction.
    /// Returns how many were deleted.
    fn prune_audit(&self, t: &TenantId, cutoff: i64) -> Result<u64>;
}

/// An `audit_events` row as stored.
#[derive(Queryable, Selectable)]
#[diesel(table_name = audit_events)]
struct Row {
    tenant_id: String,
    seq: i64,
    at: i64,
    actor: String,
    action: String,
    target: String,
    outcome: String,
    details: String,
    prev_hash: String,
    hash: String,
}

fn from_row(r: Row) -> Result<AuditEvent> {
    Ok(AuditEvent {
        outcome: Outcome::parse(&r.outcome)
            .ok_or_else(|| StoreError::corrupt(format!("audit_events.outcome: {:?}", r.outcome)))?,
        details: from_json("audit_events.details", &r.details)?,
        tenant_id: TenantId(r.tenant_id),
        seq: r.seq,
        at: r.at,
        actor: r.actor,
        action: r.action,
        target: r.target,
        prev_hash: r.prev_hash,
        hash: r.hash,
    })
}

impl AuditRepo for Db {
    fn append_audit(&self, t: &TenantId, event: NewAuditEvent) -> Result<AuditEvent> {
        self.write(|c| {
            let link = crate::db::reserve(c, t)?;
            self.record(c, t, link, event.clone())
        })
    }

    fn audit_events(&self, t: &TenantId, after: i64, limit: i64) -> Result<Vec<AuditEvent>> {
        let mut conn = self.conn()?;
        audit_events::table
            .filter(
                audit_events::tenant_id
                    .eq(t.as_str())
                    .and(audit_events::seq.gt(after)),
            )
            .order(audit_events::seq.asc())
            .limit(limit)
            .select(Row::as_select())
            .load(&mut *conn)?
            .into_iter()
            .map(from_row)
            .collect()
    }

    fn audit_anchor(&self, t: &TenantId) -> Result<Anchor> {
        let mut conn = self.conn()?;
        Ok(audit_heads::table
            .find(t.as_str())
            .select((audit_heads::anchor_seq, audit_heads::anchor_hash))
            .first::<(i64, String)>(&mut *conn)
            .optional()?
            .map_or_else(
                || Anchor {
                    seq: 0,
                    hash: GENESIS_HASH.to_owned(),
                },
                |(seq, hash)| Anchor { seq, hash },
            ))
    }

    fn audit_search(
        &self,
        t: &TenantId,
        filter: &AuditFilter,
        after: i64,
        limit: i64,
    ) -> Result<Vec<AuditEvent>> {
        let mut conn = self.conn()?;
        let mut q = audit_events::table
            .filter(
                audit_events::tenant_id
                    .eq(t.as_str())
                    .and(audit_events::seq.gt(after)),
            )
            .into_boxed();
        if let Some(user) = &filter.user {
            let who = format!("user:{user}");
            q = q.filter(
                audit_events::actor
                    .eq(who.clone())
                    .or(audit_events::target.eq(who)),
            );
        }
        match filter.action.as_deref().map(|a| (a, a.strip_suffix('*'))) {
            Some((_, Some(prefix))) => q = q.filter(audit_events::action.like(format!("{prefix}%"))),
            Some((exact, None)) => q = q.filter(audit_events::action.eq(exact.to_owned())),
            None => {}
        }
        if let Some(target) = &filter.target {
            q = q.filter(audit_events::target.eq(target.clone()));
        }
        if let Some(since) = filter.since {
            q = q.filter(audit_events::at.ge(since));
        }
        if let Some(until) = filter.until {
            q = q.filter(audit_events::at.lt(until));
        }
        q.order(audit_events::seq.asc())
            .limit(limit)
            .select(Row::as_select())
            .load(&mut *conn)?
            .into_iter()
            .map(from_row)
            // LIKE treats `_` as a wildcard; the prefix is checked exactly here.
            .filter(|e| e.as_ref().map_or(true, |e| filter.matches_action(&e.action)))
            .collect()
    }

    fn prune_audit(&self, t: &TenantId, cutoff: i64) -> Result<u64> {
        self.write(|c| {
            let head: i64 = audit_heads::table
                .find(t.as_str())
                .select(audit_heads::seq)
                .first(c)?;
            let last_old: Option<i64> = audit_events::table
                .filter(
                    audit_events::tenant_id
                        .eq(t.as_str())
                        .and(audit_events::at.lt(cutoff))
                        .and(audit_events::seq.lt(head)),
                )
                .select(diesel::dsl::max(audit_events::seq))
                .first(c)?;
            let Some(through) = last_old else {
                return Ok(0);
            };
            let hash: String = audit_events::table
                .find((t.as_str(), through))
                .select(audit_events::hash)
                .first(c)?;
            let deleted = diesel::delete(
                audit_events::table.filter(
                    audit_events::tenant_id
                        .eq(t.as_str())
                        .and(audit_events::seq.le(through)),
                ),
            )
            .execute(c)?;
            diesel::update(audit_heads::table.find(t.as_str()))
                .set((
                    audit_heads::anchor_seq.eq(through),
                    audit_heads::anchor_hash.eq(&hash),
                ))
                .execute(c)?;
            let link = crate::db::reserve(c, t)?;
            let deleted = u64::try_from(deleted).unwrap_or(0);
            self.record(
                c,
                t,
                link,
                NewAuditEvent::success(
                    "system",
                    "audit.retention",
                    format!("tenant:{t}"),
                    serde_json::json!({"deleted": deleted, "anchor_seq": through, "anchor_hash": hash, "cutoff": cutoff}),
                ),
            )?;
            Ok(deleted)
        })
    }

    fn audit_head(&self, t: &TenantId) -> Result<Option<(i64, String)>> {
        let mut conn = self.conn()?;
        Ok(audit_heads::table
            .find(t.as_str())
            .select((audit_heads::seq, audit_heads::hash))
            .first::<(i64, String)>(&mut *conn)
            .optional()?)
    }
}
