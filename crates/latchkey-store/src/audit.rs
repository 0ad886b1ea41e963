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

type Row = (
    String,
    i64,
    i64,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
);

fn from_row(r: Row) -> Result<AuditEvent> {
    Ok(AuditEvent {
        tenant_id: TenantId(r.0),
        seq: r.1,
        at: r.2,
        actor: r.3,
        action: r.4,
        target: r.5,
        outcome: Outcome::parse(&r.6)
            .ok_or_else(|| StoreError::corrupt(format!("audit_events.outcome: {:?}", r.6)))?,
        details: from_json("audit_events.details", &r.7)?,
        prev_hash: r.8,
        hash: r.9,
    })
}

impl AuditRepo for Db {
    fn append_audit(&self, t: &TenantId, event: NewAuditEvent) -> Result<AuditEvent> {
        let mut conn = self.conn()?;
        conn.transaction(|c| {
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
            .select((
                audit_events::tenant_id,
                audit_events::seq,
                audit_events::at,
                audit_events::actor,
                audit_events::action,
                audit_events::target,
                audit_events::outcome,
                audit_events::details,
                audit_events::prev_hash,
                audit_events::hash,
            ))
            .load::<Row>(&mut *conn)?
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
