//! Reading and appending a tenant's audit chain. Verification lives in `latchkey-audit`.

use crate::db::{Db, from_json};
use crate::schema::audit_events;
use crate::{Result, StoreError};
use diesel::prelude::*;
use latchkey_core::{AuditEvent, NewAuditEvent, Outcome, TenantId};

pub trait AuditRepo {
    /// Appends a security event on its own (changes append theirs in their own transaction).
    fn append_audit(&self, t: &TenantId, event: NewAuditEvent) -> Result<AuditEvent>;
    /// Events with `seq > after`, in order, at most `limit`.
    fn audit_events(&self, t: &TenantId, after: i64, limit: i64) -> Result<Vec<AuditEvent>>;
    /// The chain head: (last seq, last hash), `None` if the chain was never started.
    fn audit_head(&self, t: &TenantId) -> Result<Option<(i64, String)>>;
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
            self.record(c, t, link, event)
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

    fn audit_head(&self, t: &TenantId) -> Result<Option<(i64, String)>> {
        use crate::schema::audit_heads;
        let mut conn = self.conn()?;
        Ok(audit_heads::table
            .find(t.as_str())
            .select((audit_heads::seq, audit_heads::hash))
            .first::<(i64, String)>(&mut *conn)
            .optional()?)
    }
}
