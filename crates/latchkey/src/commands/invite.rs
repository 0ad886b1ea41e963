//! `latchkey invite …`: invitations into a tenant. The link goes only into the mail (through
//! the outbox, which a running server delivers); the store keeps its token's SHA-256.

use crate::cli::{InvitationRef, InviteCmd};
use crate::context::Context;
use crate::error::CliError;
use crate::output::{emit, print_json, rfc3339};
use latchkey_core::{OsRng, Tenant};
use latchkey_services::ServiceError;
use latchkey_services::invite::{Inviter, MAX_TTL_SECS};
use latchkey_store::{Invitation, InvitationRepo, InvitationStatus, NewInvitation};
use serde_json::{Value, json};

pub fn run(ctx: &Context<'_>, cmd: InviteCmd) -> Result<(), CliError> {
    match cmd {
        InviteCmd::Create {
            tenant,
            email,
            groups,
            username,
            display_name,
            expires_in,
            out,
        } => {
            let tenant = ctx.tenant(tenant.slug())?;
            let ttl = parse_ttl("--expires-in", &expires_in)?;
            let groups = groups
                .iter()
                .map(|name| ctx.group(&tenant, name).map(|g| g.id))
                .collect::<Result<Vec<_>, _>>()?;
            let new = NewInvitation {
                email,
                username,
                display_name,
                groups,
                expires_at: ctx.now_millis() + ttl,
            };
            let invitation = with_inviter(ctx, &tenant, |inviter| inviter.create(&new))?;
            emit(out.json, &invitation_json(&invitation));
            Ok(())
        }
        InviteCmd::List { tenant, status, out } => {
            let tenant = ctx.tenant(tenant.slug())?;
            let status = status
                .map(|s| s.parse::<InvitationStatus>().map_err(CliError::BadFlag))
                .transpose()?;
            let list = ctx.db.list_invitations(&tenant.id, status)?;
            ctx.audit_read(&tenant.id, "invitation.list", "invitations".into(), json!({}))?;
            if out.json {
                print_json(&list.iter().map(invitation_json).collect());
            } else {
                for i in list {
                    println!(
                        "{}\t{}\t{}\t{}",
                        i.id,
                        i.email,
                        json!(i.status).as_str().unwrap_or_default(),
                        rfc3339(i.expires_at)
                    );
                }
            }
            Ok(())
        }
        InviteCmd::Revoke(r) => {
            let tenant = ctx.tenant(r.tenant.slug())?;
            let invitation = ctx.db.revoke_invitation(&tenant.id, ctx.actor(), &r.id)?;
            emit(r.out.json, &invitation_json(&invitation));
            Ok(())
        }
        InviteCmd::Resend {
            invitation: InvitationRef { tenant, id, out },
            expires_in,
        } => {
            let tenant = ctx.tenant(tenant.slug())?;
            let ttl = parse_ttl("--expires-in", &expires_in)?;
            let expires_at = ctx.now_millis() + ttl;
            let invitation = with_inviter(ctx, &tenant, |inviter| inviter.resend(&id, expires_at))?;
            emit(out.json, &invitation_json(&invitation));
            Ok(())
        }
    }
}

fn with_inviter<T>(
    ctx: &Context<'_>,
    tenant: &Tenant,
    f: impl FnOnce(&Inviter<'_>) -> Result<T, ServiceError>,
) -> Result<T, CliError> {
    let keys = ctx.ring()?;
    let issuer = ctx.issuer(&tenant.slug);
    let inviter = Inviter {
        db: &ctx.db,
        keys: &keys,
        rng: &OsRng,
        issuer: &issuer,
        tenant,
        actor: ctx.actor(),
        now: ctx.now_millis(),
    };
    f(&inviter).map_err(|e| match e {
        ServiceError::Store(e) => CliError::Store(e),
        ServiceError::Keys(e) => CliError::Keys(e),
        other => CliError::BadFlag(other.to_string()),
    })
}

/// `90m`, `12h` or `7d`, from a minute to 90 days, in milliseconds.
fn parse_ttl(flag: &str, s: &str) -> Result<i64, CliError> {
    duration_ms(flag, s, MAX_TTL_SECS)
}

/// A duration flag in minutes, hours or days (`90m`, `12h`, `7d`), from 1 minute to `max_secs`,
/// in milliseconds.
pub(crate) fn duration_ms(flag: &str, s: &str, max_secs: u64) -> Result<i64, CliError> {
    let bad = || {
        CliError::BadFlag(format!(
            "{flag} {s:?}: expected minutes, hours or days (90m, 12h, 7d), at most {}d",
            max_secs / 86_400
        ))
    };
    let (n, unit) = s.trim().split_at(s.trim().len().saturating_sub(1));
    let n: u64 = n.parse().map_err(|_| bad())?;
    let secs = match unit {
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(3600),
        "d" => n.checked_mul(86_400),
        _ => None,
    }
    .filter(|secs| (60..=max_secs).contains(secs))
    .ok_or_else(bad)?;
    i64::try_from(secs * 1000).map_err(|_| bad())
}

pub(crate) fn invitation_json(i: &Invitation) -> Value {
    json!({
        "id": i.id, "email": i.email, "username": i.username, "display_name": i.display_name,
        "groups": i.groups, "status": i.status, "invited_by": i.invited_by,
        "created_at": rfc3339(i.created_at), "sent_at": rfc3339(i.sent_at),
        "expires_at": rfc3339(i.expires_at), "accepted_at": i.accepted_at.map(rfc3339),
        "revoked_at": i.revoked_at.map(rfc3339), "user_id": i.user_id,
    })
}

#[cfg(test)]
mod tests {
    use super::parse_ttl;

    #[test]
    fn expiry_takes_minutes_hours_days_up_to_ninety_days() {
        assert_eq!(parse_ttl("f", "7d").unwrap(), 7 * 86_400_000);
        assert_eq!(parse_ttl("f", "12h").unwrap(), 12 * 3_600_000);
        assert_eq!(parse_ttl("f", "90m").unwrap(), 90 * 60_000);
        for bad in ["", "d", "0d", "91d", "7w", "-1d", "7", "99999999999999999999d"] {
            assert!(parse_ttl("f", bad).is_err(), "{bad}");
        }
    }
}
