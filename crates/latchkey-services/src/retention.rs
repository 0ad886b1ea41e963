//! The tenant's retention policy applied (docs/privacy.md#retention), once per pass of the
//! server's scheduler: inactive accounts warned, then disabled, then deleted; consents left
//! unused withdrawn; spent invitations and delivered mail purged. The audit chain and the
//! risk history are pruned by `latchkey_audit::apply_retention`; sessions expire in their store
//! and OAuth codes, tokens and grants a day after they expire (`purge_expired_oauth`).

use crate::ServiceError;
use latchkey_core::{Rng, Tenant, UnixMillis, UserStatus};
use latchkey_keys::KeyRing;
use latchkey_store::{Channel, Db, Inactive, RetentionRepo};
use serde::Serialize;

const DAY_MS: i64 = 86_400_000;
/// Accounts looked at per step and pass; the next pass goes on.
const BATCH: i64 = 500;

const NOTICE_SUBJECT: &str = "Your account at {tenant} is about to be closed";
const NOTICE_BODY: &str = "Hello {user},\n\nyour account at {tenant} has not been used since {since}. {what}\n\nTo keep it, sign in before then.\n";

/// What one pass did for one tenant.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Applied {
    pub inactive_notified: usize,
    pub inactive_disabled: usize,
    pub inactive_deleted: usize,
    pub consents_expired: u64,
    pub invitations_purged: u64,
    pub messages_purged: u64,
}

impl Applied {
    pub fn is_empty(&self) -> bool {
        self == &Applied::default()
    }
}

fn day(ms: UnixMillis) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms / 1000)
        .ok()
        .and_then(|t| {
            t.format(&time::macros::format_description!("[year]-[month]-[day]"))
                .ok()
        })
        .unwrap_or_default()
}

fn cutoff(now: UnixMillis, days: u32) -> UnixMillis {
    now - i64::from(days) * DAY_MS
}

/// Applies `tenant`'s retention policy at `now`. Store work: run it off the async threads.
pub fn apply(
    db: &Db,
    keys: &KeyRing,
    rng: &dyn Rng,
    tenant: &Tenant,
    now: UnixMillis,
) -> Result<Applied, ServiceError> {
    let r = &tenant.policy.retention;
    let t = &tenant.id;
    let mut out = Applied::default();
    if let Some(days) = r.inactive_notify_days {
        for u in db.inactive_users(t, cutoff(now, days), BATCH)? {
            let unwarned = u.notified_at.is_none_or(|n| n < u.last_active);
            if u.status == UserStatus::Active && unwarned && u.email.is_some() {
                notify(db, keys, rng, tenant, &u)?;
                out.inactive_notified += 1;
            }
        }
    }
    if let Some(days) = r.inactive_disable_days {
        for u in db.inactive_users(t, cutoff(now, days), BATCH)? {
            if u.status == UserStatus::Active && db.disable_inactive(t, &u.id, u.last_active)? {
                out.inactive_disabled += 1;
            }
        }
    }
    if let Some(days) = r.inactive_delete_days {
        for u in db.inactive_users(t, cutoff(now, days), BATCH)? {
            if db.delete_inactive(t, &u.id, u.last_active)? {
                out.inactive_deleted += 1;
            }
        }
    }
    if let Some(days) = r.consent_days {
        out.consents_expired = db.expire_consents(t, cutoff(now, days))?;
    }
    out.invitations_purged = db.purge_invitations(t, cutoff(now, r.invitation_days))?;
    out.messages_purged = db.purge_outbox(t, cutoff(now, r.outbox_days))?;
    Ok(out)
}

/// Mails the person when their account will be disabled or deleted, and records it.
fn notify(db: &Db, keys: &KeyRing, rng: &dyn Rng, tenant: &Tenant, u: &Inactive) -> Result<(), ServiceError> {
    let r = &tenant.policy.retention;
    let when = |days: Option<u32>| days.map(|d| day(u.last_active + i64::from(d) * DAY_MS));
    let what = match (when(r.inactive_disable_days), when(r.inactive_delete_days)) {
        (Some(off), Some(gone)) => format!("It will be disabled on {off} and deleted on {gone}."),
        (Some(off), None) => format!("It will be disabled on {off}."),
        (None, Some(gone)) => format!("It will be deleted on {gone}."),
        (None, None) => "It may be closed.".to_owned(),
    };
    let fill = |text: &str| {
        text.replace("{user}", &u.username)
            .replace("{tenant}", &tenant.display_name)
            .replace("{since}", &day(u.last_active))
            .replace("{what}", &what)
    };
    let Some(address) = u.email.as_deref() else {
        return Ok(());
    };
    let mail = crate::mail::compose(
        keys,
        rng,
        Channel::Mail,
        &tenant.id,
        address,
        &fill(NOTICE_SUBJECT),
        &fill(NOTICE_BODY),
    )?;
    db.notify_inactive(&tenant.id, &u.id, &mail)?;
    Ok(())
}
