//! The end of an account: deletion (by an operator, or asked for by the user) with what hangs
//! off the user, and deletion after a grace period. An account pending deletion is disabled
//! (so every sign-in path refuses it), its sessions are void and its OAuth grants revoked at
//! once; the retention pass deletes it when `deletion_due_at` passes, and an operator's restore
//! (or `enable`) brings it back.

use crate::db::Db;
use crate::resets::{NewMail, insert_mail};
use crate::schema::{invitations, mail_outbox, oauth_grants, oauth_tokens, user_keys, users};
use crate::users::{Person, profile};
use crate::vault::Personal;
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
    /// Erases the user now: their rows and the key their personal data is sealed under, in one
    /// transaction audited as `user.erase` with `reason` (identifiers as pseudonyms); then, on
    /// SQLite, the write-ahead log is emptied so no page of the erased rows stays in it.
    /// Returns the audit details.
    fn erase_user(&self, t: &TenantId, actor: &str, id: &UserId, reason: &str) -> Result<serde_json::Value>;
    /// Closes the account now and erases it at `due_at` (the tenant's grace period), as
    /// `request_deletion` does without a mail, recording `reason`; audited as
    /// `user.erasure_scheduled`.
    fn schedule_erasure(
        &self,
        t: &TenantId,
        actor: &str,
        id: &UserId,
        due_at: UnixMillis,
        reason: &str,
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

fn load(c: &mut AnyConnection, vault: &Personal, t: &TenantId, id: &UserId) -> Result<Person> {
    crate::users::load(c, vault, t, id)
}

/// Deletes the user and what the schema does not delete with it (their OAuth tokens outside
/// grants, the invitation that made them); grants, codes, consents, factors, passkeys, group
/// memberships and roles, SAML links, reset tokens and histories go by `ON DELETE CASCADE`.
/// Returns the audit details: the profile and what went with it.
pub(crate) fn erase(
    c: &mut AnyConnection,
    vault: &Personal,
    t: &TenantId,
    id: &UserId,
) -> Result<serde_json::Value> {
    let before = load(c, vault, t, id)?;
    // Their live tokens go with them (below, and by cascade).
    crate::revocations::note(t);
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
    // Mail still queued to the person's address goes too (it names them).
    if let Some(email) = &before.email {
        diesel::delete(
            mail_outbox::table.filter(
                mail_outbox::tenant_id
                    .eq(t.as_str())
                    .and(mail_outbox::recipient.eq(email)),
            ),
        )
        .execute(c)?;
    }
    // The key goes with the user (also by `ON DELETE CASCADE`): whatever was sealed under it,
    // here or in a copy, no longer opens.
    diesel::delete(
        user_keys::table.filter(
            user_keys::tenant_id
                .eq(t.as_str())
                .and(user_keys::user_id.eq(id.as_str())),
        ),
    )
    .execute(c)?;
    diesel::delete(users::table.filter(users::tenant_id.eq(t.as_str()).and(users::id.eq(id.as_str()))))
        .execute(c)?;
    let mut details = profile(&before);
    details["key_destroyed"] = json!(before.key.is_some());
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
        self.close_account(t, (actor, "user.deletion_requested"), id, due_at, (mail, None))
    }

    fn schedule_erasure(
        &self,
        t: &TenantId,
        actor: &str,
        id: &UserId,
        due_at: UnixMillis,
        reason: &str,
    ) -> Result<User> {
        let reason = erasure_reason(reason)?;
        self.close_account(
            t,
            (actor, "user.erasure_scheduled"),
            id,
            due_at,
            (None, Some(&reason)),
        )
    }

    fn erase_user(&self, t: &TenantId, actor: &str, id: &UserId, reason: &str) -> Result<serde_json::Value> {
        let reason = erasure_reason(reason)?;
        let vault = self.personal(t)?;
        let details = self.audited(t, |c| {
            let mut details = erase(c, &vault, t, id)?;
            details["reason"] = json!(reason);
            let event = NewAuditEvent::success(actor, "user.erase", format!("user:{id}"), details.clone());
            Ok((details, event))
        })?;
        self.scrub()?;
        Ok(details)
    }

    fn cancel_deletion(&self, t: &TenantId, actor: &str, id: &UserId) -> Result<User> {
        let now = self.now();
        let vault = self.personal(t)?;
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
                users::deletion_reason.eq(None::<String>),
                users::updated_at.eq(now),
            ))
            .execute(c)?;
            let after = load(c, &vault, t, id)?;
            let event = NewAuditEvent::success(
                actor,
                "user.deletion_cancelled",
                format!("user:{id}"),
                json!({"was_due_at": due, "after": profile(&after)}),
            );
            Ok((after.user, event))
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
        let vault = self.personal(t)?;
        let mut deleted = Vec::new();
        for id in due.into_iter().map(UserId) {
            let done = self.audited(t, |c| {
                // Restored (or deleted by another node) since the list was read: skip it.
                let due: Option<(Option<i64>, Option<String>)> = users::table
                    .filter(users::tenant_id.eq(t.as_str()).and(users::id.eq(id.as_str())))
                    .select((users::deletion_due_at, users::deletion_reason))
                    .first(c)
                    .optional()?;
                let (due, reason) = due.unwrap_or((None, None));
                let still_due = due.is_some_and(|d| d <= now);
                if !still_due {
                    let event = NewAuditEvent::success(
                        "system",
                        "user.deletion_skipped",
                        format!("user:{id}"),
                        json!({"reason": "no longer due"}),
                    );
                    return Ok((false, event));
                }
                let mut details = erase(c, &vault, t, &id)?;
                // A scheduled erasure keeps its reason; a deletion the user asked for says so.
                let action = if reason.is_some() {
                    "user.erase"
                } else {
                    "user.delete"
                };
                details["reason"] = json!(reason.as_deref().unwrap_or("deletion_due"));
                Ok((
                    true,
                    NewAuditEvent::success("system", action, format!("user:{id}"), details),
                ))
            })?;
            if done {
                deleted.push(id);
            }
        }
        if !deleted.is_empty() {
            self.scrub()?;
        }
        Ok(deleted)
    }
}

impl Db {
    /// Closes the account until `due_at` (see `request_deletion`), audited as `action`.
    fn close_account(
        &self,
        t: &TenantId,
        (actor, action): (&str, &str),
        id: &UserId,
        due_at: UnixMillis,
        (mail, reason): (Option<&NewMail>, Option<&str>),
    ) -> Result<User> {
        let now = self.now();
        let vault = self.personal(t)?;
        self.audited(t, |c| {
            let before = load(c, &vault, t, id)?;
            diesel::update(
                users::table.filter(users::tenant_id.eq(t.as_str()).and(users::id.eq(id.as_str()))),
            )
            .set((
                users::status.eq(UserStatus::Disabled.as_str()),
                users::deletion_due_at.eq(due_at),
                users::deletion_reason.eq(reason),
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
            let after = load(c, &vault, t, id)?;
            let event = NewAuditEvent::success(
                actor,
                action,
                format!("user:{id}"),
                json!({
                    "before": profile(&before),
                    "due_at": due_at,
                    "grants_revoked": revoked,
                    "mail": mail.map(|m| &m.id),
                    "reason": reason,
                }),
            );
            Ok((after.user, event))
        })
    }
}

/// A reason for an erasure: required, one line, at most 500 characters (it is kept in the audit
/// log, so it should name a request, not the person).
fn erasure_reason(reason: &str) -> Result<String> {
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 || reason.chars().any(char::is_control) {
        return Err(StoreError::Invalid(latchkey_core::ValidationError {
            field: "reason",
            message: "give a reason of 1-500 characters on one line (a ticket or request number, not the person's name)"
                .into(),
        }));
    }
    Ok(reason.to_owned())
}
