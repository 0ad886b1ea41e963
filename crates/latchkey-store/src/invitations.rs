//! Invitations into a tenant. Creating or re-sending one stores its token's SHA-256 and queues
//! the mail that carries the token in one audited transaction (as password resets do), so a
//! mail exists exactly when its token does. Accepting spends the token, creates the user (with
//! a password or a passkey) and adds the invited groups, in one audited transaction: of two
//! concurrent acceptances exactly one creates a user.

use crate::db::{Db, from_json, to_json};
use crate::resets::{NewMail, insert_mail};
use crate::schema::{invitations, mfa_passkeys, users};
use crate::users::{NewKey, created, insert_user};
use crate::vault::Personal;
use crate::{AnyConnection, NewUser, Result, StoreError};
use diesel::prelude::*;
use latchkey_core::{GroupId, NewAuditEvent, TenantId, UnixMillis, User, UserId, validate};
use serde::Serialize;
use serde_json::json;

/// Where an invitation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum InvitationStatus {
    Pending,
    Accepted,
    Expired,
    Revoked,
}

impl std::str::FromStr for InvitationStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "pending" => Ok(Self::Pending),
            "accepted" => Ok(Self::Accepted),
            "expired" => Ok(Self::Expired),
            "revoked" => Ok(Self::Revoked),
            other => Err(format!(
                "unknown status {other:?}: expected pending, accepted, expired or revoked"
            )),
        }
    }
}

/// An invitation as operators see it (never its token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Invitation {
    pub id: String,
    pub tenant_id: TenantId,
    pub email: String,
    /// The username the account gets (the email address when none was given).
    pub username: String,
    pub display_name: Option<String>,
    pub groups: Vec<GroupId>,
    pub invited_by: String,
    pub created_at: UnixMillis,
    /// When the current link was mailed (creation or the last re-send).
    pub sent_at: UnixMillis,
    pub expires_at: UnixMillis,
    pub accepted_at: Option<UnixMillis>,
    pub revoked_at: Option<UnixMillis>,
    /// The user the invitation became.
    pub user_id: Option<UserId>,
    pub status: InvitationStatus,
}

/// What an administrator asks for.
#[derive(Debug, Clone, Default)]
pub struct NewInvitation {
    pub email: String,
    pub username: Option<String>,
    pub display_name: Option<String>,
    pub groups: Vec<GroupId>,
    pub expires_at: UnixMillis,
}

/// A passkey registered while accepting.
#[derive(Debug, Clone)]
pub struct NewPasskey {
    pub id: String,
    pub name: String,
    pub credential: String,
}

/// How the invited person signs in from now on: a password (a PHC string), a passkey, or both.
#[derive(Debug, Clone)]
pub struct Acceptance {
    /// Chosen by the caller (a passkey ceremony names the user before the user exists).
    pub user_id: UserId,
    pub password_hash: Option<String>,
    pub passkey: Option<NewPasskey>,
}

/// Why a token was not accepted; nothing was created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No invitation has this token (never issued, or replaced by a re-send).
    Unknown,
    Spent,
    Expired,
    Revoked,
    /// A user with the invited email (or username) exists by now.
    Taken,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown_token",
            Self::Spent => "already_accepted",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
            Self::Taken => "account_exists",
        }
    }
}

pub trait InvitationRepo {
    /// Validates and stores the invitation with its token's SHA-256, and queues `mail` (which
    /// carries the token; its recipient is the caller's, normalized with `validate::email`), audited as `invitation.create`. `Conflict` when a user with the email
    /// or username exists, or a pending invitation for the email does; `BadReference` for a
    /// group not in the tenant.
    fn create_invitation(
        &self,
        t: &TenantId,
        actor: &str,
        new: &NewInvitation,
        token_hash: &str,
        mail: &NewMail,
    ) -> Result<Invitation>;
    fn invitation(&self, t: &TenantId, id: &str) -> Result<Option<Invitation>>;
    /// The invitation a token belongs to, whatever its status.
    fn invitation_by_token(&self, t: &TenantId, token_hash: &str) -> Result<Option<Invitation>>;
    /// The pending invitation for an address (normalized with `validate::email`), if any.
    fn pending_invitation(&self, t: &TenantId, email: &str) -> Result<Option<Invitation>>;
    /// Newest first; `status` filters.
    fn list_invitations(&self, t: &TenantId, status: Option<InvitationStatus>) -> Result<Vec<Invitation>>;
    /// One page, newest first: after `after` (the previous page's last `(created_at, id)`), at
    /// most `limit` (1 to 1000), of `status` when given; filtered in the database.
    fn invitations_page(
        &self,
        t: &TenantId,
        status: Option<InvitationStatus>,
        after: Option<(UnixMillis, String)>,
        limit: i64,
    ) -> Result<Vec<Invitation>>;
    /// Revokes a pending invitation (`Conflict` when it is no longer pending).
    fn revoke_invitation(&self, t: &TenantId, actor: &str, id: &str) -> Result<Invitation>;
    /// A new token (the old one stops working), a new expiry and a new mail, for an invitation
    /// that is pending or expired (`Conflict` when accepted or revoked).
    fn resend_invitation(
        &self,
        t: &TenantId,
        actor: &str,
        id: &str,
        token_hash: &str,
        expires_at: UnixMillis,
        mail: &NewMail,
    ) -> Result<Invitation>;
    /// Spends the token and creates the user in the invited groups, audited as
    /// `invitation.accept` and `user.create`; a refusal is audited and changes nothing else.
    fn accept_invitation(
        &self,
        t: &TenantId,
        token_hash: &str,
        how: &Acceptance,
    ) -> Result<std::result::Result<(Invitation, User), Refusal>>;
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = invitations)]
struct Row {
    tenant_id: String,
    id: String,
    email: String,
    username: Option<String>,
    display_name: Option<String>,
    groups: String,
    invited_by: String,
    created_at: i64,
    sent_at: i64,
    expires_at: i64,
    accepted_at: Option<i64>,
    revoked_at: Option<i64>,
    user_id: Option<String>,
}

fn status_at(r: &Row, now: i64) -> InvitationStatus {
    if r.accepted_at.is_some() {
        InvitationStatus::Accepted
    } else if r.revoked_at.is_some() {
        InvitationStatus::Revoked
    } else if r.expires_at <= now {
        InvitationStatus::Expired
    } else {
        InvitationStatus::Pending
    }
}

fn from_row(r: Row, now: i64) -> Result<Invitation> {
    let status = status_at(&r, now);
    Ok(Invitation {
        groups: from_json("invitations.groups", &r.groups)?,
        status,
        tenant_id: TenantId(r.tenant_id),
        id: r.id,
        username: r.username.unwrap_or_else(|| r.email.clone()),
        email: r.email,
        display_name: r.display_name,
        invited_by: r.invited_by,
        created_at: r.created_at,
        sent_at: r.sent_at,
        expires_at: r.expires_at,
        accepted_at: r.accepted_at,
        revoked_at: r.revoked_at,
        user_id: r.user_id.map(UserId),
    })
}

fn find(c: &mut AnyConnection, t: &TenantId, id: &str, now: i64) -> Result<Option<Invitation>> {
    invitations::table
        .filter(invitations::tenant_id.eq(t.as_str()).and(invitations::id.eq(id)))
        .select(Row::as_select())
        .first(c)
        .optional()?
        .map(|r| from_row(r, now))
        .transpose()
}

fn by_token(c: &mut AnyConnection, t: &TenantId, token_hash: &str, now: i64) -> Result<Option<Invitation>> {
    invitations::table
        .filter(
            invitations::tenant_id
                .eq(t.as_str())
                .and(invitations::token_hash.eq(token_hash)),
        )
        .select(Row::as_select())
        .first(c)
        .optional()?
        .map(|r| from_row(r, now))
        .transpose()
}

/// The pending invitation for `email` (normalized), if any: at most one exists.
fn pending_for(c: &mut AnyConnection, t: &TenantId, email: &str, now: i64) -> Result<Option<Invitation>> {
    invitations::table
        .filter(
            invitations::tenant_id
                .eq(t.as_str())
                .and(invitations::email.eq(email))
                .and(invitations::accepted_at.is_null())
                .and(invitations::revoked_at.is_null())
                .and(invitations::expires_at.gt(now)),
        )
        .select(Row::as_select())
        .first(c)
        .optional()?
        .map(|r| from_row(r, now))
        .transpose()
}

/// An invitation that is pending or expired, for a change (`what`: "revoked", "re-sent"):
/// `NotFound`, or `Conflict` once accepted or revoked.
fn open_invitation(
    c: &mut AnyConnection,
    t: &TenantId,
    id: &str,
    now: i64,
    what: &str,
) -> Result<Invitation> {
    let found = find(c, t, id, now)?.ok_or(StoreError::NotFound { what: "invitation" })?;
    if matches!(
        found.status,
        InvitationStatus::Accepted | InvitationStatus::Revoked
    ) {
        return Err(StoreError::Conflict(format!(
            "invitation {id} is {}, so it can't be {what}",
            json!(found.status).as_str().unwrap_or_default()
        )));
    }
    Ok(found)
}

/// The audit view of an invitation (no token).
/// Identifiers as keyed hashes (the tenant's blind index): the audit chain outlives the person.
fn details(vault: &Personal, i: &Invitation) -> serde_json::Value {
    let hide = |what: &str, v: &str| vault.index(&format!("audit:{what}"), v);
    json!({
        "email": hide("email", &i.email),
        "username": hide("username", &i.username),
        "groups": i.groups,
        "expires_at": i.expires_at,
    })
}

fn target(id: &str) -> String {
    format!("invitation:{id}")
}

/// A user with this email or username exists in the tenant.
fn account_exists(
    c: &mut AnyConnection,
    vault: &Personal,
    t: &TenantId,
    email: &str,
    username: &str,
) -> Result<Option<String>> {
    let emails = crate::users::candidates(vault, "email", email);
    let found: Vec<Option<String>> = users::table
        .filter(
            users::tenant_id.eq(t.as_str()).and(
                users::email
                    .eq_any(&emails)
                    .or(users::username.eq_any(crate::users::candidates(vault, "username", username))),
            ),
        )
        .select(users::email)
        .load(c)?;
    Ok(found.into_iter().next().map(|e| {
        if e.is_some_and(|e| emails.contains(&e)) {
            format!("a user with the email {email:?} exists in this tenant")
        } else {
            format!("username {username:?} already exists in this tenant")
        }
    }))
}

fn group_exists(c: &mut AnyConnection, t: &TenantId, group: &GroupId) -> Result<bool> {
    use crate::schema::groups as g;
    Ok(g::table
        .filter(g::tenant_id.eq(t.as_str()).and(g::id.eq(group.as_str())))
        .select(g::id)
        .first::<String>(c)
        .optional()?
        .is_some())
}

fn check_groups(c: &mut AnyConnection, t: &TenantId, groups: &[GroupId]) -> Result<()> {
    for group in groups {
        if !group_exists(c, t, group)? {
            return Err(StoreError::BadReference(format!(
                "group {group} does not exist in this tenant"
            )));
        }
    }
    Ok(())
}

impl Db {
    fn prepare_invitation(&self, t: &TenantId, actor: &str, new: &NewInvitation) -> Result<Invitation> {
        let email = validate::email(&new.email)?;
        let username = validate::username(new.username.as_deref().unwrap_or(&email))?;
        let display_name = new
            .display_name
            .as_deref()
            .map(|n| validate::display_name("display_name", n))
            .transpose()?;
        let mut groups = new.groups.clone();
        groups.sort();
        groups.dedup();
        if groups.len() > 64 {
            return Err(StoreError::Invalid(latchkey_core::ValidationError {
                field: "groups",
                message: "at most 64 groups".into(),
            }));
        }
        let now = self.now();
        Ok(Invitation {
            id: self.new_id(),
            tenant_id: t.clone(),
            email,
            username,
            display_name,
            groups,
            invited_by: actor.to_owned(),
            created_at: now,
            sent_at: now,
            expires_at: new.expires_at,
            accepted_at: None,
            revoked_at: None,
            user_id: None,
            status: InvitationStatus::Pending,
        })
    }
}

impl Db {
    /// Creates the invited user (in the invited groups that still exist, with the passkey)
    /// inside the caller's transaction; returns the user and the groups joined.
    fn make_invited_user(
        &self,
        c: &mut AnyConnection,
        (t, key): (&TenantId, &NewKey),
        inv: &Invitation,
        how: &Acceptance,
        now: i64,
    ) -> Result<(User, Vec<GroupId>)> {
        let mut user = self.prepare_user(
            t,
            &NewUser {
                username: inv.username.clone(),
                email: Some(inv.email.clone()),
                display_name: inv.display_name.clone(),
                password_hash: how.password_hash.clone(),
                // The single-use link reached this address: it is verified.
                email_verified: true,
            },
        )?;
        user.id = how.user_id.clone();
        insert_user(c, &user, key)?;
        let mut joined = Vec::new();
        for group in &inv.groups {
            // A group deleted since the invitation is skipped.
            if group_exists(c, t, group)? {
                crate::groups::add_user_to_group(c, t, group, &user.id, now)?;
                joined.push(group.clone());
            }
        }
        if let Some(key) = &how.passkey {
            diesel::insert_into(mfa_passkeys::table)
                .values((
                    mfa_passkeys::tenant_id.eq(t.as_str()),
                    mfa_passkeys::id.eq(&key.id),
                    mfa_passkeys::user_id.eq(user.id.as_str()),
                    mfa_passkeys::name.eq(&key.name),
                    mfa_passkeys::credential.eq(&key.credential),
                    mfa_passkeys::created_at.eq(now),
                ))
                .execute(c)?;
        }
        Ok((user, joined))
    }
}

impl InvitationRepo for Db {
    fn create_invitation(
        &self,
        t: &TenantId,
        actor: &str,
        new: &NewInvitation,
        token_hash: &str,
        message: &NewMail,
    ) -> Result<Invitation> {
        let inv = self.prepare_invitation(t, actor, new)?;
        let now = inv.created_at;
        let vault = self.personal(t)?;
        self.audited(t, |c| {
            if let Some(why) = account_exists(c, &vault, t, &inv.email, &inv.username)? {
                return Err(StoreError::Conflict(why));
            }
            if let Some(id) = pending_for(c, t, &inv.email, now)?.map(|p| p.id) {
                return Err(StoreError::Conflict(format!(
                    "invitation {id} for {:?} is pending; re-send or revoke it",
                    inv.email
                )));
            }
            check_groups(c, t, &inv.groups)?;
            diesel::insert_into(invitations::table)
                .values((
                    invitations::tenant_id.eq(t.as_str()),
                    invitations::id.eq(&inv.id),
                    invitations::email.eq(&inv.email),
                    invitations::username.eq(Some(&inv.username).filter(|u| **u != inv.email)),
                    invitations::display_name.eq(&inv.display_name),
                    invitations::groups.eq(to_json(&inv.groups)),
                    invitations::token_hash.eq(token_hash),
                    invitations::invited_by.eq(actor),
                    invitations::created_at.eq(now),
                    invitations::sent_at.eq(now),
                    invitations::expires_at.eq(inv.expires_at),
                ))
                .execute(c)?;
            insert_mail(c, t, message, now)?;
            let mut d = details(&vault, &inv);
            d["mail"] = json!(message.id);
            let event = NewAuditEvent::success(actor, "invitation.create", target(&inv.id), d);
            Ok((inv.clone(), event))
        })
    }

    fn invitation(&self, t: &TenantId, id: &str) -> Result<Option<Invitation>> {
        find(&mut *self.conn()?, t, id, self.now())
    }

    fn invitation_by_token(&self, t: &TenantId, token_hash: &str) -> Result<Option<Invitation>> {
        by_token(&mut *self.conn()?, t, token_hash, self.now())
    }

    fn pending_invitation(&self, t: &TenantId, email: &str) -> Result<Option<Invitation>> {
        pending_for(&mut *self.conn()?, t, email, self.now())
    }

    fn invitations_page(
        &self,
        t: &TenantId,
        status: Option<InvitationStatus>,
        after: Option<(UnixMillis, String)>,
        limit: i64,
    ) -> Result<Vec<Invitation>> {
        use invitations::{accepted_at, created_at, expires_at, id, revoked_at};
        let now = self.now();
        let mut q = invitations::table
            .filter(invitations::tenant_id.eq(t.as_str()))
            .select(Row::as_select())
            .order((created_at.desc(), id.asc()))
            .limit(limit.clamp(1, 1000))
            .into_boxed();
        if let Some((at, last)) = after {
            q = q.filter(created_at.lt(at).or(created_at.eq(at).and(id.gt(last))));
        }
        q = match status {
            None => q,
            Some(InvitationStatus::Accepted) => q.filter(accepted_at.is_not_null()),
            Some(InvitationStatus::Revoked) => q.filter(accepted_at.is_null().and(revoked_at.is_not_null())),
            Some(InvitationStatus::Pending) => q.filter(
                accepted_at
                    .is_null()
                    .and(revoked_at.is_null())
                    .and(expires_at.gt(now)),
            ),
            Some(InvitationStatus::Expired) => q.filter(
                accepted_at
                    .is_null()
                    .and(revoked_at.is_null())
                    .and(expires_at.le(now)),
            ),
        };
        q.load(&mut *self.conn()?)?
            .into_iter()
            .map(|r| from_row(r, now))
            .collect()
    }

    fn list_invitations(&self, t: &TenantId, status: Option<InvitationStatus>) -> Result<Vec<Invitation>> {
        let now = self.now();
        let rows = invitations::table
            .filter(invitations::tenant_id.eq(t.as_str()))
            .select(Row::as_select())
            .order((invitations::created_at.desc(), invitations::id.asc()))
            .load(&mut *self.conn()?)?;
        rows.into_iter()
            .filter(|r| status.is_none_or(|s| status_at(r, now) == s))
            .map(|r| from_row(r, now))
            .collect()
    }

    fn revoke_invitation(&self, t: &TenantId, actor: &str, id: &str) -> Result<Invitation> {
        let now = self.now();
        let vault = self.personal(t)?;
        self.audited(t, |c| {
            open_invitation(c, t, id, now, "revoked")?;
            diesel::update(
                invitations::table.filter(invitations::tenant_id.eq(t.as_str()).and(invitations::id.eq(id))),
            )
            .set(invitations::revoked_at.eq(now))
            .execute(c)?;
            let after = find(c, t, id, now)?.ok_or(StoreError::NotFound { what: "invitation" })?;
            let event =
                NewAuditEvent::success(actor, "invitation.revoke", target(id), details(&vault, &after));
            Ok((after, event))
        })
    }

    fn resend_invitation(
        &self,
        t: &TenantId,
        actor: &str,
        id: &str,
        token_hash: &str,
        expires_at: UnixMillis,
        message: &NewMail,
    ) -> Result<Invitation> {
        let now = self.now();
        let vault = self.personal(t)?;
        self.audited(t, |c| {
            let before = open_invitation(c, t, id, now, "re-sent")?;
            if let Some(why) = account_exists(c, &vault, t, &before.email, &before.username)? {
                return Err(StoreError::Conflict(why));
            }
            diesel::update(
                invitations::table.filter(invitations::tenant_id.eq(t.as_str()).and(invitations::id.eq(id))),
            )
            .set((
                invitations::token_hash.eq(token_hash),
                invitations::sent_at.eq(now),
                invitations::expires_at.eq(expires_at),
            ))
            .execute(c)?;
            insert_mail(c, t, message, now)?;
            let after = find(c, t, id, now)?.ok_or(StoreError::NotFound { what: "invitation" })?;
            let mut d = details(&vault, &after);
            d["mail"] = json!(message.id);
            let event = NewAuditEvent::success(actor, "invitation.resend", target(id), d);
            Ok((after, event))
        })
    }

    fn accept_invitation(
        &self,
        t: &TenantId,
        token_hash: &str,
        how: &Acceptance,
    ) -> Result<std::result::Result<(Invitation, User), Refusal>> {
        let now = self.now();
        let key = self.new_user_key(t, &how.user_id)?;
        let vault = self.personal(t)?;
        self.audited_all(t, |c| {
            let refuse = |why: Refusal, id: &str| {
                let event = NewAuditEvent::failure(
                    "anonymous",
                    "invitation.accept",
                    target(id),
                    json!({"reason": why.as_str()}),
                );
                Ok((Err(why), vec![event]))
            };
            let Some(inv) = by_token(c, t, token_hash, now)? else {
                return refuse(Refusal::Unknown, "unknown");
            };
            match inv.status {
                InvitationStatus::Pending => {}
                InvitationStatus::Accepted => return refuse(Refusal::Spent, &inv.id),
                InvitationStatus::Expired => return refuse(Refusal::Expired, &inv.id),
                InvitationStatus::Revoked => return refuse(Refusal::Revoked, &inv.id),
            }
            if account_exists(c, &vault, t, &inv.email, &inv.username)?.is_some() {
                // On PostgreSQL a concurrent acceptance may have committed since the read
                // above, making this very account: then the link is spent, not taken.
                let spent =
                    by_token(c, t, token_hash, now)?.is_some_and(|i| i.status == InvitationStatus::Accepted);
                let why = if spent { Refusal::Spent } else { Refusal::Taken };
                return refuse(why, &inv.id);
            }
            // Spent first, on the condition that it is still live: of two concurrent
            // acceptances, the second waits for this row and then finds nothing to spend.
            let spent = diesel::update(
                invitations::table.filter(
                    invitations::tenant_id
                        .eq(t.as_str())
                        .and(invitations::id.eq(&inv.id))
                        .and(invitations::token_hash.eq(token_hash))
                        .and(invitations::accepted_at.is_null())
                        .and(invitations::revoked_at.is_null())
                        .and(invitations::expires_at.gt(now)),
                ),
            )
            .set((
                invitations::accepted_at.eq(now),
                invitations::user_id.eq(how.user_id.as_str()),
            ))
            .execute(c)?;
            if spent != 1 {
                return refuse(Refusal::Spent, &inv.id);
            }
            let (user, joined) = self.make_invited_user(c, (t, &key), &inv, how, now)?;
            let who = format!("user:{}", user.id);
            let accepted = NewAuditEvent::success(
                &who,
                "invitation.accept",
                target(&inv.id),
                json!({
                    "user": user.id,
                    "groups": joined,
                    "password": how.password_hash.is_some(),
                    "passkey": how.passkey.as_ref().map(|k| k.id.get(..16).unwrap_or(&k.id)),
                }),
            );
            let mut made = created(&key.person(&user));
            made["invitation"] = json!(inv.id);
            made["email_verified_by"] = json!("invitation");
            let create = NewAuditEvent::success(&who, "user.create", who.clone(), made);
            let inv = find(c, t, &inv.id, now)?.ok_or(StoreError::NotFound { what: "invitation" })?;
            Ok((Ok((inv, user)), vec![accepted, create]))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(accepted: Option<i64>, revoked: Option<i64>, expires_at: i64) -> Row {
        Row {
            tenant_id: "t".into(),
            id: "i".into(),
            email: "a@b.test".into(),
            username: None,
            display_name: None,
            groups: "[]".into(),
            invited_by: "cli:ops".into(),
            created_at: 0,
            sent_at: 0,
            expires_at,
            accepted_at: accepted,
            revoked_at: revoked,
            user_id: None,
        }
    }

    #[test]
    fn an_accepted_invitation_stays_accepted_and_expiry_is_exclusive() {
        assert_eq!(status_at(&row(None, None, 100), 99), InvitationStatus::Pending);
        assert_eq!(status_at(&row(None, None, 100), 100), InvitationStatus::Expired);
        assert_eq!(status_at(&row(None, Some(5), 100), 99), InvitationStatus::Revoked);
        assert_eq!(
            status_at(&row(Some(5), None, 100), 500),
            InvitationStatus::Accepted
        );
        let i = from_row(row(None, None, 100), 0).unwrap();
        assert_eq!(
            i.username, "a@b.test",
            "without a username, the email is the username"
        );
        assert!(
            from_row(
                Row {
                    groups: "{".into(),
                    ..row(None, None, 1)
                },
                0
            )
            .is_err()
        );
    }

    #[test]
    fn statuses_parse_from_their_names_only() {
        for s in ["pending", "accepted", "expired", "revoked"] {
            assert_eq!(json!(s.parse::<InvitationStatus>().unwrap()), json!(s));
        }
        assert!("Pending".parse::<InvitationStatus>().is_err());
    }
}
