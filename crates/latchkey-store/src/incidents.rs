//! Incident response in the store (docs/privacy.md#incident-response): voiding the sessions and
//! grants of a tenant's users, or of some, in one transaction, optionally with their passwords,
//! and queueing the notices with one audit event per person notified.

use crate::Result;
use crate::db::Db;
use crate::oauth::{GrantsOf, revoke_matching};
use crate::resets::{NewMail, insert_mail};
use crate::schema::users;
use diesel::prelude::*;
use latchkey_core::{NewAuditEvent, TenantId, UserId};
use serde_json::json;

/// Whose sessions an incident voids.
#[derive(Debug, Clone, Copy)]
pub enum Affected<'a> {
    Tenant,
    Users(&'a [UserId]),
}

/// What `lock_down` changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct LockedDown {
    /// Users whose sessions are now void (`sessions_not_before`).
    pub users: usize,
    /// Grants revoked, with every refresh and access token of theirs.
    pub grants_revoked: usize,
    /// Passwords invalidated (the person sets a new one through a reset link).
    pub passwords_invalidated: usize,
}

pub trait IncidentRepo {
    /// Voids every session and grant of `who` at once, and with `reset_passwords` their
    /// passwords too, in one transaction audited as `incident.lock_down` (`incident` names it).
    fn lock_down(
        &self,
        t: &TenantId,
        actor: &str,
        incident: &str,
        who: Affected<'_>,
        reset_passwords: bool,
    ) -> Result<LockedDown>;
    /// Queues one notice per person, each audited as `incident.notify` (the message id, so
    /// the report can say who was told when).
    fn queue_incident_notices(
        &self,
        t: &TenantId,
        actor: &str,
        incident: &str,
        notices: &[(UserId, NewMail)],
    ) -> Result<()>;
}

/// Sessions of the users (every user of the tenant when `ids` is empty) made before `now` are
/// void: `flow::session` refuses them whatever store they live in.
fn void_sessions(c: &mut crate::AnyConnection, t: &TenantId, ids: &[&str], now: i64) -> Result<usize> {
    let set = (users::sessions_not_before.eq(now), users::updated_at.eq(now));
    let tenant = users::tenant_id.eq(t.as_str());
    Ok(if ids.is_empty() {
        diesel::update(users::table.filter(tenant)).set(set).execute(c)?
    } else {
        diesel::update(users::table.filter(tenant.and(users::id.eq_any(ids))))
            .set(set)
            .execute(c)?
    })
}

/// Removes the users' passwords: a stolen one no longer signs in, and the person chooses a new
/// one through a reset link sent to their verified address.
fn invalidate_passwords(c: &mut crate::AnyConnection, t: &TenantId, ids: &[&str], now: i64) -> Result<usize> {
    let set = (
        users::password_hash.eq(None::<String>),
        users::password_changed_at.eq(now),
    );
    let with_password = users::tenant_id
        .eq(t.as_str())
        .and(users::password_hash.is_not_null());
    Ok(if ids.is_empty() {
        diesel::update(users::table.filter(with_password))
            .set(set)
            .execute(c)?
    } else {
        diesel::update(users::table.filter(with_password.and(users::id.eq_any(ids))))
            .set(set)
            .execute(c)?
    })
}

impl IncidentRepo for Db {
    fn lock_down(
        &self,
        t: &TenantId,
        actor: &str,
        incident: &str,
        who: Affected<'_>,
        reset_passwords: bool,
    ) -> Result<LockedDown> {
        let now = self.now();
        self.audited(t, |c| {
            let ids: Vec<&str> = match who {
                Affected::Tenant => Vec::new(),
                Affected::Users(list) => list.iter().map(UserId::as_str).collect(),
            };
            let voided = void_sessions(c, t, &ids, now)?;
            let passwords = if reset_passwords {
                invalidate_passwords(c, t, &ids, now)?
            } else {
                0
            };
            let reason = "incident";
            let grants = match who {
                Affected::Tenant => revoke_matching(c, t, GrantsOf::Tenant, now, reason)?,
                Affected::Users(list) => list
                    .iter()
                    .map(|u| revoke_matching(c, t, GrantsOf::User(u), now, reason))
                    .sum::<Result<usize>>()?,
            };
            let done = LockedDown {
                users: voided,
                grants_revoked: grants,
                passwords_invalidated: passwords,
            };
            let details = json!({
                "incident": incident,
                "scope": if ids.is_empty() { "tenant" } else { "users" },
                "users": ids,
                "result": done,
            });
            let event = NewAuditEvent::success(actor, "incident.lock_down", format!("tenant:{t}"), details);
            Ok((done, event))
        })
    }

    fn queue_incident_notices(
        &self,
        t: &TenantId,
        actor: &str,
        incident: &str,
        notices: &[(UserId, NewMail)],
    ) -> Result<()> {
        let now = self.now();
        self.audited_all(t, |c| {
            let mut events = Vec::with_capacity(notices.len());
            for (user, mail) in notices {
                insert_mail(c, t, mail, now)?;
                let details = json!({"incident": incident, "message": mail.id});
                events.push(NewAuditEvent::success(
                    actor,
                    "incident.notify",
                    format!("user:{user}"),
                    details,
                ));
            }
            Ok(((), events))
        })
    }
}
