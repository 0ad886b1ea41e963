//! Retention in the store (docs/privacy.md#retention): when people last signed in, the
//! inactive accounts the retention pass warns, disables and deletes, and the purge of spent
//! invitations, delivered mail and consents left unused. Each change is audited.

use crate::Result;
use crate::db::Db;
use crate::resets::{NewMail, insert_mail};
use crate::schema::{invitations, mail_outbox, oauth_consents, user_activity, users};
use diesel::prelude::*;
use latchkey_core::{NewAuditEvent, TenantId, UnixMillis, UserId, UserStatus};
use serde_json::json;

/// An account the retention pass looks at: active, with when it was last used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inactive {
    pub id: UserId,
    pub username: String,
    pub email: Option<String>,
    /// The last sign-in, or the account's creation when it never signed in.
    pub last_active: UnixMillis,
    /// When the person was told, since their last sign-in.
    pub notified_at: Option<UnixMillis>,
    pub status: UserStatus,
}

pub trait RetentionRepo {
    /// Records a completed sign-in (and forgets any inactivity notice).
    fn record_sign_in(&self, t: &TenantId, user: &UserId, at: UnixMillis) -> Result<()>;
    /// Accounts of the tenant last active before `cutoff`, oldest first, at most `limit`.
    fn inactive_users(&self, t: &TenantId, cutoff: UnixMillis, limit: i64) -> Result<Vec<Inactive>>;
    /// Queues the inactivity notice and records it (`user.inactivity_notice`).
    fn notify_inactive(&self, t: &TenantId, user: &UserId, mail: &NewMail) -> Result<()>;
    /// Disables an account unused since `last_active`, unless it signed in meanwhile
    /// (`user.disable`, reason `inactive`); true when it did.
    fn disable_inactive(&self, t: &TenantId, user: &UserId, last_active: UnixMillis) -> Result<bool>;
    /// Deletes an account unused since `last_active`, unless it signed in meanwhile
    /// (`user.delete`, reason `inactive`); true when it did.
    fn delete_inactive(&self, t: &TenantId, user: &UserId, last_active: UnixMillis) -> Result<bool>;
    /// Deletes delivered or abandoned outbox rows older than `cutoff`; how many.
    fn purge_outbox(&self, t: &TenantId, cutoff: UnixMillis) -> Result<u64>;
    /// Deletes invitations accepted, revoked or expired before `cutoff`; how many.
    fn purge_invitations(&self, t: &TenantId, cutoff: UnixMillis) -> Result<u64>;
    /// Withdraws consents neither given nor changed since `cutoff` (the person is asked again
    /// next time), each audited as `consent.expire`; how many.
    fn expire_consents(&self, t: &TenantId, cutoff: UnixMillis) -> Result<u64>;
}

/// id, username, email, created_at, status, last sign-in, notified at.
type InactiveRow = (String, i64, String, Option<i64>, Option<i64>);

/// The last activity of `user`, read in a transaction.
fn last_active(c: &mut crate::AnyConnection, t: &TenantId, user: &UserId) -> Result<Option<i64>> {
    let created: Option<i64> = users::table
        .filter(users::tenant_id.eq(t.as_str()).and(users::id.eq(user.as_str())))
        .select(users::created_at)
        .first(c)
        .optional()?;
    let signed_in: Option<i64> = user_activity::table
        .find((t.as_str(), user.as_str()))
        .select(user_activity::last_sign_in_at)
        .first(c)
        .optional()?;
    Ok(created.map(|c| signed_in.unwrap_or(c).max(c)))
}

impl RetentionRepo for Db {
    fn record_sign_in(&self, t: &TenantId, user: &UserId, at: UnixMillis) -> Result<()> {
        const UPSERT: &str = "INSERT INTO user_activity (tenant_id, user_id, last_sign_in_at, notified_at) \
             VALUES ($1, $2, $3, NULL) ON CONFLICT (tenant_id, user_id) \
             DO UPDATE SET last_sign_in_at = excluded.last_sign_in_at, notified_at = NULL";
        use diesel::sql_types::{BigInt, Text};
        self.write(|c| {
            let query = diesel::sql_query(UPSERT)
                .bind::<Text, _>(t.as_str())
                .bind::<Text, _>(user.as_str())
                .bind::<BigInt, _>(at);
            match c {
                crate::AnyConnection::Sqlite(lite) => query.execute(lite)?,
                crate::AnyConnection::Postgres(pg) => query.execute(pg)?,
            };
            Ok(())
        })
    }

    fn inactive_users(&self, t: &TenantId, cutoff: UnixMillis, limit: i64) -> Result<Vec<Inactive>> {
        let mut conn = self.conn()?;
        let joined = users::table.left_join(
            user_activity::table.on(user_activity::tenant_id
                .eq(users::tenant_id)
                .and(user_activity::user_id.eq(users::id))),
        );
        let rows: Vec<InactiveRow> = joined
            .filter(users::tenant_id.eq(t.as_str()))
            .filter(users::deletion_due_at.is_null())
            .filter(
                user_activity::last_sign_in_at
                    .lt(cutoff)
                    .or(user_activity::last_sign_in_at
                        .is_null()
                        .and(users::created_at.lt(cutoff))),
            )
            .select((
                users::id,
                users::created_at,
                users::status,
                user_activity::last_sign_in_at.nullable(),
                user_activity::notified_at.nullable(),
            ))
            .order(users::created_at.asc())
            .limit(limit)
            .load(&mut *conn)?;
        // Names and addresses are sealed: each user is opened (a bounded batch, off the
        // request path).
        let vault = self.personal(t)?;
        let mut out = Vec::with_capacity(rows.len());
        for (id, created, status, signed_in, notified) in rows {
            let id = UserId(id);
            let person = match crate::users::load(&mut conn, &vault, t, &id) {
                Ok(p) => p,
                Err(crate::StoreError::NotFound { .. }) => continue,
                Err(e) => return Err(e),
            };
            out.push(Inactive {
                username: person.username.clone(),
                email: person.email.clone(),
                id,
                last_active: signed_in.unwrap_or(created).max(created),
                notified_at: notified,
                status: if status == UserStatus::Active.as_str() {
                    UserStatus::Active
                } else {
                    UserStatus::Disabled
                },
            });
        }
        Ok(out)
    }

    fn notify_inactive(&self, t: &TenantId, user: &UserId, mail: &NewMail) -> Result<()> {
        let now = self.now();
        self.audited(t, |c| {
            let since = last_active(c, t, user)?.unwrap_or(now);
            let updated = diesel::update(user_activity::table.find((t.as_str(), user.as_str())))
                .set(user_activity::notified_at.eq(now))
                .execute(c)?;
            if updated == 0 {
                // Never signed in: the row starts at the account's creation.
                diesel::insert_into(user_activity::table)
                    .values((
                        user_activity::tenant_id.eq(t.as_str()),
                        user_activity::user_id.eq(user.as_str()),
                        user_activity::last_sign_in_at.eq(since),
                        user_activity::notified_at.eq(now),
                    ))
                    .execute(c)?;
            }
            insert_mail(c, t, mail, now)?;
            let details = json!({"last_active": since, "message": mail.id});
            let event = NewAuditEvent::success(
                "system",
                "user.inactivity_notice",
                format!("user:{user}"),
                details,
            );
            Ok(((), event))
        })
    }

    fn disable_inactive(&self, t: &TenantId, user: &UserId, seen: UnixMillis) -> Result<bool> {
        let now = self.now();
        self.audited(t, |c| {
            let still = last_active(c, t, user)? == Some(seen);
            let who = format!("user:{user}");
            if !still {
                let event = NewAuditEvent::success("system", "user.inactivity_skipped", who, json!({}));
                return Ok((false, event));
            }
            diesel::update(
                users::table.filter(users::tenant_id.eq(t.as_str()).and(users::id.eq(user.as_str()))),
            )
            .set((
                users::status.eq(UserStatus::Disabled.as_str()),
                users::sessions_not_before.eq(now),
                users::updated_at.eq(now),
            ))
            .execute(c)?;
            let grants = crate::oauth::revoke_matching(c, t, crate::GrantsOf::User(user), now, "inactive")?;
            let details = json!({"reason": "inactive", "last_active": seen, "grants_revoked": grants});
            Ok((
                true,
                NewAuditEvent::success("system", "user.disable", who, details),
            ))
        })
    }

    fn delete_inactive(&self, t: &TenantId, user: &UserId, seen: UnixMillis) -> Result<bool> {
        let vault = self.personal(t)?;
        let deleted = self.audited(t, |c| {
            let who = format!("user:{user}");
            if last_active(c, t, user)? != Some(seen) {
                let event = NewAuditEvent::success("system", "user.inactivity_skipped", who, json!({}));
                return Ok((false, event));
            }
            let mut details = crate::lifecycle::erase(c, &vault, t, user)?;
            details["reason"] = json!("inactive");
            details["last_active"] = json!(seen);
            Ok((
                true,
                NewAuditEvent::success("system", "user.delete", who, details),
            ))
        })?;
        if deleted {
            self.scrub()?;
        }
        Ok(deleted)
    }

    fn purge_outbox(&self, t: &TenantId, cutoff: UnixMillis) -> Result<u64> {
        self.write(|c| {
            let done = mail_outbox::sent_at
                .lt(cutoff)
                .or(mail_outbox::failed_at.lt(cutoff));
            let n =
                diesel::delete(mail_outbox::table.filter(mail_outbox::tenant_id.eq(t.as_str()).and(done)))
                    .execute(c)?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
    }

    fn purge_invitations(&self, t: &TenantId, cutoff: UnixMillis) -> Result<u64> {
        self.write(|c| {
            let over = invitations::accepted_at
                .lt(cutoff)
                .or(invitations::revoked_at.lt(cutoff))
                .or(invitations::expires_at.lt(cutoff));
            let n =
                diesel::delete(invitations::table.filter(invitations::tenant_id.eq(t.as_str()).and(over)))
                    .execute(c)?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
    }

    fn expire_consents(&self, t: &TenantId, cutoff: UnixMillis) -> Result<u64> {
        let stale: Vec<(String, String, String)> = oauth_consents::table
            .filter(oauth_consents::tenant_id.eq(t.as_str()))
            .filter(oauth_consents::updated_at.lt(cutoff))
            .select((
                oauth_consents::user_id,
                oauth_consents::client_id,
                oauth_consents::scope,
            ))
            .limit(500)
            .load(&mut *self.conn()?)?;
        let mut n = 0;
        for (user, client, scope) in stale {
            let gone = self.audited(t, |c| {
                let key = (t.as_str(), user.as_str(), client.as_str());
                let deleted = diesel::delete(
                    oauth_consents::table
                        .find(key)
                        .filter(oauth_consents::updated_at.lt(cutoff)),
                )
                .execute(c)?;
                let details =
                    json!({"client_id": client, "scope": scope, "change": "expired", "deleted": deleted});
                let event =
                    NewAuditEvent::success("system", "consent.expire", format!("user:{user}"), details);
                Ok((deleted, event))
            })?;
            n += u64::try_from(gone).unwrap_or(0);
        }
        Ok(n)
    }
}
