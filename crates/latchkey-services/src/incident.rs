//! Incident response (docs/privacy.md#incident-response): one call that voids a tenant's (or
//! some users') sessions and tokens, optionally invalidates their passwords and replaces the
//! tenant's signing keys at once, and queues a notice to every affected person; then says who
//! was told when. For `latchkey incident` and `POST /admin/t/{tenant}/incidents` alike.

use crate::ServiceError;
use latchkey_core::{Clock, NewAuditEvent, Rng, Tenant, UnixMillis, User, UserId};
use latchkey_keys::{KeyRing, KeyState};
use latchkey_store::{Affected, AuditRepo, Channel, Db, IncidentRepo, LockedDown, NewMail, UserRepo};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The notice's text when the operator gives none. `{user}`, `{tenant}`, `{incident}` and
/// `{password}` (a sentence about the password, or nothing) are filled in.
pub const DEFAULT_SUBJECT: &str = "Security notice from {tenant}";
pub const DEFAULT_BODY: &str = "Hello {user},\n\nas a precaution after a security incident, {tenant} has signed you out everywhere and ended the access of the applications you use with your account.{password}\n\nSign in again when you next use them. If you notice anything unusual, contact your administrator.\n\nReference: {incident}\n";
const PASSWORD_SENTENCE: &str =
    " Your password was reset too: choose a new one with \"Forgot your password?\" on the sign-in page.";

/// What to do. Voiding sessions and grants always happens.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct IncidentPlan {
    /// Usernames or ids; empty or absent: every user of the tenant.
    #[serde(default)]
    pub users: Vec<String>,
    /// Invalidate the affected users' passwords (a reset link sets a new one).
    #[serde(default)]
    pub reset_passwords: bool,
    /// Replace every signing key of the tenant now: what the old keys signed stops verifying.
    #[serde(default)]
    pub rotate_keys: bool,
    /// Mail every affected user who has an address.
    #[serde(default)]
    pub notify: bool,
    /// The notice's subject and body (defaults above); same placeholders.
    pub subject: Option<String>,
    pub body: Option<String>,
}

/// What was done, and who was told when.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct IncidentReport {
    pub incident: String,
    pub tenant: String,
    pub started_at: UnixMillis,
    pub finished_at: UnixMillis,
    pub scope: &'static str,
    pub locked_down: LockedDown,
    /// New active keys and the keys revoked, when `rotate_keys`.
    pub keys: Option<KeysReplaced>,
    pub notified: Vec<Notified>,
    /// Affected users who got no notice, and why.
    pub not_notified: Vec<NotNotified>,
}

#[derive(Debug, Default, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct KeysReplaced {
    pub revoked: Vec<String>,
    pub active: Vec<String>,
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Notified {
    pub user_id: String,
    pub username: String,
    pub address: String,
    /// The outbox message: its delivery is retried until it is sent.
    pub message: String,
    pub queued_at: UnixMillis,
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct NotNotified {
    pub user_id: String,
    pub username: String,
    pub reason: &'static str,
}

/// Why an incident can't run as asked.
fn refused(message: impl Into<String>) -> ServiceError {
    ServiceError::Refused(message.into())
}

/// The handles an incident needs.
pub struct Responder<'a> {
    pub db: &'a Db,
    pub keys: &'a KeyRing,
    pub rng: &'a dyn Rng,
    pub clock: &'a dyn Clock,
}

impl Responder<'_> {
    /// Runs `plan` on `tenant` for `actor`. Store work: run it off the async threads.
    pub fn run(
        &self,
        tenant: &Tenant,
        actor: &str,
        plan: &IncidentPlan,
    ) -> Result<IncidentReport, ServiceError> {
        let started_at = self.clock.now_millis();
        let incident = format!("inc-{}", &latchkey_core::random_token(self.rng, 9));
        let named = self.named_users(tenant, &plan.users)?;
        let scope = if named.is_some() { "users" } else { "tenant" };
        let start = json!({"incident": incident, "scope": scope, "users": plan.users,
            "reset_passwords": plan.reset_passwords, "rotate_keys": plan.rotate_keys, "notify": plan.notify});
        self.db.append_audit(
            &tenant.id,
            NewAuditEvent::success(actor, "incident.start", format!("tenant:{}", tenant.id), start),
        )?;
        let ids: Vec<UserId> = named.iter().flatten().map(|u| u.id.clone()).collect();
        let who = if named.is_some() {
            Affected::Users(&ids)
        } else {
            Affected::Tenant
        };
        let locked_down = self
            .db
            .lock_down(&tenant.id, actor, &incident, who, plan.reset_passwords)?;
        let keys = if plan.rotate_keys {
            Some(self.replace_keys(tenant, actor)?)
        } else {
            None
        };
        let affected = match named {
            Some(users) => users,
            None => self.db.list_users(&tenant.id)?,
        };
        let (notified, not_notified) = if plan.notify {
            self.notify(tenant, actor, &incident, plan, &affected)?
        } else {
            (Vec::new(), Vec::new())
        };
        let report = IncidentReport {
            incident,
            tenant: tenant.slug.clone(),
            started_at,
            finished_at: self.clock.now_millis(),
            scope,
            locked_down,
            keys,
            notified,
            not_notified,
        };
        let details = json!({"incident": report.incident, "locked_down": report.locked_down,
            "keys": report.keys, "notified": report.notified.len(), "not_notified": report.not_notified.len()});
        self.db.append_audit(
            &tenant.id,
            NewAuditEvent::success(actor, "incident.finish", format!("tenant:{}", tenant.id), details),
        )?;
        Ok(report)
    }

    /// The users a plan names (`None`: the whole tenant); an unknown name refuses the plan
    /// before anything is done.
    fn named_users(&self, tenant: &Tenant, names: &[String]) -> Result<Option<Vec<User>>, ServiceError> {
        if names.is_empty() {
            return Ok(None);
        }
        if names.len() > 10_000 {
            return Err(refused(
                "at most 10000 users by name; leave the list out for the whole tenant",
            ));
        }
        let mut users: Vec<User> = Vec::with_capacity(names.len());
        for name in names {
            let found = match self.db.user_by_username(&tenant.id, name)? {
                Some(u) => Some(u),
                None => self.db.user(&tenant.id, &UserId(name.clone()))?,
            };
            let user =
                found.ok_or_else(|| refused(format!("no user {name:?} in tenant {:?}", tenant.slug)))?;
            if !users.iter().any(|u| u.id == user.id) {
                users.push(user);
            }
        }
        Ok(Some(users))
    }

    /// Revokes every published signing key (pending and retired ones first, so an active key's
    /// revocation makes a fresh successor instead of promoting one from the same database).
    fn replace_keys(&self, tenant: &Tenant, actor: &str) -> Result<KeysReplaced, ServiceError> {
        let mut keys = self.keys.list(&tenant.id)?;
        keys.retain(|k| k.state.published());
        keys.sort_by_key(|k| k.state == KeyState::Active);
        let mut out = KeysReplaced::default();
        for k in keys {
            self.keys.revoke(&tenant.id, &k.kid, actor)?;
            out.revoked.push(k.kid);
        }
        out.active = self
            .keys
            .list(&tenant.id)?
            .into_iter()
            .filter(|k| k.state == KeyState::Active)
            .map(|k| k.kid)
            .collect();
        Ok(out)
    }

    /// Queues the notice to each affected user with an address, 500 to a transaction.
    fn notify(
        &self,
        tenant: &Tenant,
        actor: &str,
        incident: &str,
        plan: &IncidentPlan,
        users: &[User],
    ) -> Result<(Vec<Notified>, Vec<NotNotified>), ServiceError> {
        let subject = plan.subject.as_deref().unwrap_or(DEFAULT_SUBJECT);
        let body = plan.body.as_deref().unwrap_or(DEFAULT_BODY);
        if subject.len() > 200 || body.len() > 20_000 {
            return Err(refused(
                "the notice's subject is at most 200 bytes and its body 20000",
            ));
        }
        let password = if plan.reset_passwords {
            PASSWORD_SENTENCE
        } else {
            ""
        };
        let (mut notified, mut skipped) = (Vec::new(), Vec::new());
        for chunk in users.chunks(500) {
            let mut batch: Vec<(UserId, NewMail)> = Vec::new();
            for u in chunk {
                let Some(address) = u.email.as_deref() else {
                    skipped.push(NotNotified {
                        user_id: u.id.to_string(),
                        username: u.username.clone(),
                        reason: "no email address",
                    });
                    continue;
                };
                let fill = |text: &str| {
                    text.replace("{user}", &u.username)
                        .replace("{tenant}", &tenant.display_name)
                        .replace("{incident}", incident)
                        .replace("{password}", password)
                };
                let mail = crate::mail::compose(
                    self.keys,
                    self.rng,
                    Channel::Mail,
                    &tenant.id,
                    address,
                    &fill(subject),
                    &fill(body),
                )?;
                notified.push(Notified {
                    user_id: u.id.to_string(),
                    username: u.username.clone(),
                    address: address.to_owned(),
                    message: mail.id.clone(),
                    queued_at: self.clock.now_millis(),
                });
                batch.push((u.id.clone(), mail));
            }
            if !batch.is_empty() {
                self.db
                    .queue_incident_notices(&tenant.id, actor, incident, &batch)?;
            }
        }
        Ok((notified, skipped))
    }
}
