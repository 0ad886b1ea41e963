//! Per-user sign-in history for risk scoring, sealed here under the person's own key (an
//! erased user's history, in any copy, no longer opens; docs/privacy.md#erasure). Concurrent sign-ins of one user may overwrite each other's additions: the
//! history is a bounded sample, not a record (the audit log is the record).

use crate::Result;
use crate::db::Db;
use crate::schema::{risk_history, user_keys};
use crate::vault::RISK_HISTORY;
use diesel::prelude::*;
use latchkey_core::{TenantId, UserId};

pub trait RiskRepo {
    /// The history as saved, `None` before the first successful sign-in.
    fn risk_history(&self, t: &TenantId, user: &UserId) -> Result<Option<Vec<u8>>>;
    fn save_risk_history(&self, t: &TenantId, user: &UserId, history: &[u8]) -> Result<()>;
    /// Deletes histories of the tenant not updated since `cutoff`; returns how many.
    fn prune_risk_history(&self, t: &TenantId, cutoff: i64) -> Result<u64>;
}

impl RiskRepo for Db {
    fn risk_history(&self, t: &TenantId, user: &UserId) -> Result<Option<Vec<u8>>> {
        let vault = self.personal(t)?;
        let row: Option<(String, Option<String>)> = with_user_key!(risk_history, user_id)
            .filter(risk_history::tenant_id.eq(t.as_str()))
            .filter(risk_history::user_id.eq(user.as_str()))
            .select((risk_history::history_sealed, user_keys::key_sealed.nullable()))
            .first(&mut *self.conn()?)
            .optional()?;
        let Some((stored, wrapped)) = row else {
            return Ok(None);
        };
        let key = vault.key_of(user, wrapped.as_deref())?;
        RISK_HISTORY.open(&vault, key.as_deref(), user, &stored).map(Some)
    }

    fn save_risk_history(&self, t: &TenantId, user: &UserId, history: &[u8]) -> Result<()> {
        // One upsert: concurrent first sign-ins of a user each save a history, and an update
        // followed by an insert raced into a unique violation (a 409 at sign-in).
        const UPSERT: &str = "INSERT INTO risk_history (tenant_id, user_id, history_sealed, updated_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id, user_id) \
             DO UPDATE SET history_sealed = excluded.history_sealed, updated_at = excluded.updated_at";
        use diesel::sql_types::{BigInt, Text};
        let vault = self.personal(t)?;
        // Sealed before the write takes its connection (an older user's history goes under the
        // tenant's data key, which may have to be made).
        let key = crate::users::key_for(&mut *self.conn()?, &vault, t, user)?;
        let sealed = RISK_HISTORY.seal(&vault, key.as_deref(), user, history)?;
        let sealed = sealed.as_str();
        let now = self.now();
        self.write(|c| {
            let query = diesel::sql_query(UPSERT)
                .bind::<Text, _>(t.as_str())
                .bind::<Text, _>(user.as_str())
                .bind::<Text, _>(sealed)
                .bind::<BigInt, _>(now);
            match c {
                crate::AnyConnection::Sqlite(lite) => query.execute(lite)?,
                crate::AnyConnection::Postgres(pg) => query.execute(pg)?,
            };
            Ok(())
        })
    }

    fn prune_risk_history(&self, t: &TenantId, cutoff: i64) -> Result<u64> {
        self.write(|c| {
            let n = diesel::delete(
                risk_history::table.filter(
                    risk_history::tenant_id
                        .eq(t.as_str())
                        .and(risk_history::updated_at.lt(cutoff)),
                ),
            )
            .execute(c)?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
    }
}
