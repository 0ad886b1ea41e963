//! The end of an account: deletion (by an operator, or asked for by the user) with what hangs
//! off the user, and deletion after a grace period. An account pending deletion is disabled
//! (so every sign-in path refuses it), its sessions are void and its OAuth grants revoked at
//! once; the retention pass deletes it when `deletion_due_at` passes, and an operator's restore
//! (or `enable`) brings it back.

use crate::db::Db;
use crate::resets::{NewMail, insert_mail};
use crate::schema::{invitations, oauth_grants, oauth_tokens, users};
use crate::users::profile;
use crate::{AnyConnection, Result, StoreError};
use diesel::prelude::*;
use latchkey_core::{NewAuditEvent, TenantId, UnixMillis, User, UserId, UserStatus};
use serde_json::json;

pub trait LifecycleRepo {
    /// Closes the account until `due_at`, when it is deleted: disabled, sessions void, OAuth
    /// grants revoked, `mail` queued, audited as `user.deletion_requested`.
    fn request_deletion(
        &self,
        t: &TenantId,
        actor: &str,
        id: &UserId,
        due_at: UnixMillis,
        mail: Option<&NewMail>,
    ) -> Result<User>;
    /// Restores an account pending deletion (active again), audited as `user.deletion_cancelled`;
    /// `Conflict` when no deletion is pending.
    fn cancel_deletion(&self, t: &TenantId, actor: &str, id: &UserId) -> Result<User>;
    /// When the user's pending deletion is due, if one is.
    fn deletion_due(&self, t: &TenantId, id: &UserId) -> Result<Option<UnixMillis>>;
    /// Deletes the tenant's users whose deletion is due at `now`, each audited as `user.delete`
    /// by `system`; returns their ids.
    fn purge_due_deletions(&self, t: &TenantId, now: UnixMillis) -> Result<Vec<UserId>>;
}

fn load(c: &mut AnyConnection, t: &TenantId, id: &UserId) -> Result<User> {
    crate::users::load(c, t, id)
}

/// Deletes the user and what the schema does not delete with it (their OAuth tokens outside
/// grants, the invitation that made them); grants, codes, consents, factors, passkeys, group
/// memberships and roles, SAML links, reset tokens and histories go by `ON DELETE CASCADE`.
/// Returns the audit details: the profile and what went with it.
pub(crate) fn erase(c: &mut AnyConnection, t: &TenantId, id: &UserId) -> Result<serde_json::Value> {
    let before = load(c, t, id)?;
    let grants: i64 = oauth_grants::table
        .filter(
            oauth_grants::tenant_id
                .eq(t.as_str())
                .and(oauth_grants::user_id.eq(id.as_str()))
                .and(oauth_grants::revoked_at.is_null()),
        )
        .count()
        .get_result(c)?;
    diesel::delete(
        oauth_tokens::table.filter(
            oauth_tokens::tenant_id
                .eq(t.as_str())
                .and(oauth_tokens::user_id.eq(id.as_str())),
        ),
    )
    .execute(c)?;
    diesel::delete(
        invitations::table.filter(
            invitations::tenant_id
                .eq(t.as_str())
                .and(invitations::user_id.eq(id.as_str())),
        ),
    )
    .execute(c)?;
    diesel::delete(users::table.filter(users::tenant_id.eq(t.as_str()).and(users::id.eq(id.as_str()))))
        .execute(c)?;
    let mut details = profile(&before);
    details["grants_revoked"] = json!(grants);
    Ok(details)
}

impl LifecycleRepo for Db {
    fn request_deletion(
        &self,
        t: &TenantId,
        actor: &str,
        id: &UserId,
        due_at: UnixMillis,
        mail: Option<&NewMail>,
    ) -> Result<User> {
        let now = self.now();
        self.audited(t, |c| {
            let before = load(c, t, id)?;
            diesel::update(
                users::table.filter(users::tenant_id.eq(t.as_str()).and(users::id.eq(id.as_str()))),
            )
            .set((
                users::status.eq(UserStatus::Disabled.as_str()),
                users::deletion_due_at.eq(due_at),
                users::sessions_not_before.eq(now),
                users::updated_at.eq(now),
            ))
            .execute(c)?;
            let revoked = crate::oauth::revoke_matching(
                c,
                t,
                crate::GrantsOf::User(id),
                now,
                "user_deletion_requested",
            )?;
            if let Some(m) = mail {
                insert_mail(c, t, m, now)?;
            }
            let after = load(c, t, id)?;
            let event = NewAuditEvent::success(
                actor,
                "user.deletion_requested",
                format!("user:{id}"),
                json!({
                    "before": profile(&before),
                    "due_at": due_at,
                    "grants_revoked": revoked,
                    "mail": mail.map(|m| &m.id),
                }),
            );
            Ok((after, event))
        })
    }

    fn cancel_deletion(&self, t: &TenantId, actor: &str, id: &UserId) -> Result<User> {
        let now = self.now();
        self.audited(t, |c| {
            let due: Option<i64> = users::table
                .filter(users::tenant_id.eq(t.as_str()).and(users::id.eq(id.as_str())))
                .select(users::deletion_due_at)
                .first::<Option<i64>>(c)
                .optional()?
                .ok_or(StoreError::NotFound { what: "user" })?;
            let Some(due) = due else {
                return Err(StoreError::Conflict("no deletion of this user is pending".into()));
            };
            diesel::update(
                users::table.filter(users::tenant_id.eq(t.as_str()).and(users::id.eq(id.as_str()))),
            )
            .set((
                users::status.eq(UserStatus::Active.as_str()),
                users::deletion_due_at.eq(None::<i64>),
                users::updated_at.eq(now),
            ))
            .execute(c)?;
            let after = load(c, t, id)?;
            let event = NewAuditEvent::success(
                actor,
                "user.deletion_cancelled",
                format!("user:{id}"),
                json!({"was_due_at": due, "after": profile(&after)}),
            );
            Ok((after, event))
        })
    }

    fn deletion_due(&self, t: &TenantId, id: &UserId) -> Result<Option<UnixMillis>> {
        Ok(users::table
            .filter(users::tenant_id.eq(t.as_str()).and(users::id.eq(id.as_str())))
            .select(users::deletion_due_at)
            .first::<Option<i64>>(&mut *self.conn()?)
            .optional()?
            .flatten())
    }

    fn purge_due_deletions(&self, t: &TenantId, now: UnixMillis) -> Result<Vec<UserId>> {
        let due: Vec<String> = users::table
            .filter(
                users::tenant_id
                    .eq(t.as_str())
                    .and(users::deletion_due_at.le(now)),
            )
            .select(users::id)
            .limit(500)
            .load(&mut *self.conn()?)?;
        let mut deleted = Vec::new();
        for id in due.into_iter().map(UserId) {
            let done = self.audited(t, |c| {
                // Restored (or deleted by another node) since the list was read: skip it.
                let still_due = users::table
                    .filter(users::tenant_id.eq(t.as_str()).and(users::id.eq(id.as_str())))
                    .select(users::deletion_due_at)
                    .first::<Option<i64>>(c)
                    .optional()?
                    .flatten()
                    .is_some_and(|d| d <= now);
                if !still_due {
                    let event = NewAuditEvent::success(
                        "system",
                        "user.deletion_skipped",
                        format!("user:{id}"),
                        json!({"reason": "no longer due"}),
                    );
                    return Ok((false, event));
                }
                let mut details = erase(c, t, &id)?;
                details["reason"] = json!("deletion_due");
                Ok((
                    true,
                    NewAuditEvent::success("system", "user.delete", format!("user:{id}"), details),
                ))
            })?;
            if done {
                deleted.push(id);
            }
        }
        Ok(deleted)
    }
}
