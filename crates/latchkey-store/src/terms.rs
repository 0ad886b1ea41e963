//! Which version of the tenant's terms of service a user last accepted (docs/privacy.md). The
//! row is what the authorization endpoint checks; every acceptance is also a `terms.accept`
//! event in the same transaction, so the audit chain is the ledger of who accepted what when.

use crate::Result;
use crate::db::Db;
use crate::schema::user_terms;
use diesel::prelude::*;
use latchkey_core::{NewAuditEvent, TenantId, UserId};
use serde_json::json;

pub trait TermsRepo {
    /// The version the user last accepted and when, `None` if they never did.
    fn accepted_terms(&self, t: &TenantId, user: &UserId) -> Result<Option<(String, i64)>>;
    /// Records that the user accepted `version` now, audited as `terms.accept`.
    fn accept_terms(&self, t: &TenantId, user: &UserId, version: &str) -> Result<()>;
}

/// The terms version `user` accepted, read inside a transaction (for consent events).
pub(crate) fn accepted_version(
    c: &mut crate::AnyConnection,
    t: &TenantId,
    user: &UserId,
) -> Result<Option<String>> {
    Ok(user_terms::table
        .find((t.as_str(), user.as_str()))
        .select(user_terms::version)
        .first(c)
        .optional()?)
}

impl TermsRepo for Db {
    fn accepted_terms(&self, t: &TenantId, user: &UserId) -> Result<Option<(String, i64)>> {
        let mut conn = self.conn()?;
        Ok(user_terms::table
            .find((t.as_str(), user.as_str()))
            .select((user_terms::version, user_terms::accepted_at))
            .first(&mut *conn)
            .optional()?)
    }

    fn accept_terms(&self, t: &TenantId, user: &UserId, version: &str) -> Result<()> {
        let now = self.now();
        self.audited(t, |c| {
            let previous = accepted_version(c, t, user)?;
            let key = (t.as_str(), user.as_str());
            if previous.is_some() {
                diesel::update(user_terms::table.find(key))
                    .set((user_terms::version.eq(version), user_terms::accepted_at.eq(now)))
                    .execute(c)?;
            } else {
                diesel::insert_into(user_terms::table)
                    .values((
                        user_terms::tenant_id.eq(t.as_str()),
                        user_terms::user_id.eq(user.as_str()),
                        user_terms::version.eq(version),
                        user_terms::accepted_at.eq(now),
                    ))
                    .execute(c)?;
            }
            let who = format!("user:{user}");
            let details = json!({"version": version, "previous": previous});
            Ok((
                (),
                NewAuditEvent::success(&who, "terms.accept", who.clone(), details),
            ))
        })
    }
}
