//! Email verification links (docs/sign-up.md). Like password resets: a request stores the
//! token's SHA-256 with the blind index of the address it was sent to and queues the mail, with the audit event,
//! in one transaction; spending it marks that address verified. A token for an address the
//! user no longer has verifies nothing.

use crate::db::Db;
use crate::resets::{NewMail, insert_mail};
use crate::schema::email_verifications;
use crate::users::{NewUser, Person, created, insert_user, load, profile};
use crate::vault::Personal;
use crate::{AnyConnection, Result, StoreError};
use diesel::prelude::*;
use latchkey_core::{EditableBy, NewAuditEvent, TenantId, User, UserId};
use serde_json::json;

/// A verification link to store: its token's SHA-256, when it expires, and the mail carrying it
/// (sent to the user's current address).
#[derive(Debug, Clone)]
pub struct NewVerification<'a> {
    pub token_hash: &'a str,
    pub expires_at: i64,
    pub mail: &'a NewMail,
}

/// A live (unspent, unexpired) verification token: whose, and whether it was sent to the
/// address the user has now. The row keeps only the address's blind index (it outlives the
/// person in a backup; docs/privacy.md#erasure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveVerification {
    pub user: User,
    pub still_current: bool,
}

pub trait EmailVerificationRepo {
    /// Stores a verification link for the user's current address and queues its mail, audited
    /// `user.email_verification_requested`. `Invalid` when the user has no address or the mail
    /// goes elsewhere. Spent and expired tokens of the tenant older than a day are purged.
    fn request_email_verification(
        &self,
        t: &TenantId,
        actor: &str,
        user: &UserId,
        v: &NewVerification<'_>,
    ) -> Result<()>;
    /// Creates a user (audited as `action`: `user.create`, `user.signup`) with its attribute
    /// values (checked as an administrator's edit, audited `user.attributes_update`) and, when
    /// it has an unverified address, its verification link and mail, in one transaction: a
    /// refused value (`Invalid`, or `Conflict` for a unique value another user holds) leaves
    /// no user.
    fn create_user_verifying(
        &self,
        t: &TenantId,
        actor: &str,
        action: &str,
        new: &NewUser,
        v: Option<&NewVerification<'_>>,
        attributes: &[crate::AttributeChange],
    ) -> Result<User>;
    /// The user and address of a live token.
    fn email_verification(&self, t: &TenantId, token_hash: &str) -> Result<Option<LiveVerification>>;
    /// Spends the token (and every other open one of the user) and marks the address verified,
    /// audited `user.email_verified`. `NotFound` when the token is unknown, spent (also by a
    /// concurrent request) or expired; `Conflict` when the user's address is no longer the one
    /// the link was sent to.
    fn complete_email_verification(&self, t: &TenantId, token_hash: &str) -> Result<User>;
    /// An operator's or a vouching IdP's word: sets `email_verified`, audited
    /// `user.email_verified` (or `user.email_unverified`). `Invalid` for a user without address.
    fn set_email_verified(&self, t: &TenantId, actor: &str, user: &UserId, verified: bool) -> Result<User>;
}

fn invalid(message: &str) -> StoreError {
    StoreError::Invalid(latchkey_core::ValidationError {
        field: "email",
        message: message.to_owned(),
    })
}

fn insert_verification(
    c: &mut AnyConnection,
    vault: &Personal,
    t: &TenantId,
    user: &User,
    v: &NewVerification<'_>,
    now: i64,
) -> Result<NewAuditEvent> {
    let email = user
        .email
        .clone()
        .ok_or_else(|| invalid("the user has no email address to verify"))?;
    if v.mail.recipient != email {
        return Err(invalid("the verification mail must go to the user's address"));
    }
    diesel::delete(
        email_verifications::table.filter(
            email_verifications::tenant_id
                .eq(t.as_str())
                .and(email_verifications::expires_at.lt(now - 86_400_000)),
        ),
    )
    .execute(c)?;
    diesel::insert_into(email_verifications::table)
        .values((
            email_verifications::tenant_id.eq(t.as_str()),
            email_verifications::token_hash.eq(v.token_hash),
            email_verifications::user_id.eq(user.id.as_str()),
            email_verifications::email.eq(vault.required()?.blind("email", &email)),
            email_verifications::created_at.eq(now),
            email_verifications::expires_at.eq(v.expires_at),
        ))
        .execute(c)?;
    insert_mail(c, t, v.mail, now)?;
    Ok(NewAuditEvent::success(
        "system",
        "user.email_verification_requested",
        format!("user:{}", user.id),
        json!({"mail": v.mail.id, "expires_at": v.expires_at}),
    ))
}

/// Whether a link's stored address (a blind index; plaintext in a row from before sealing) is
/// `email`.
fn addressed_to(vault: &Personal, stored: &str, email: Option<&str>) -> bool {
    email.is_some_and(|e| {
        vault
            .index("email", e)
            .map_or(stored == e, |index| index == stored || stored == e)
    })
}

/// The user and the stored address of a live token.
fn live(c: &mut AnyConnection, t: &TenantId, token_hash: &str, now: i64) -> Result<Option<(UserId, String)>> {
    Ok(email_verifications::table
        .filter(
            email_verifications::tenant_id
                .eq(t.as_str())
                .and(email_verifications::token_hash.eq(token_hash))
                .and(email_verifications::used_at.is_null())
                .and(email_verifications::expires_at.gt(now)),
        )
        .select((email_verifications::user_id, email_verifications::email))
        .first::<(String, String)>(c)
        .optional()?
        .map(|(user, email)| (UserId(user), email)))
}

impl EmailVerificationRepo for Db {
    fn request_email_verification(
        &self,
        t: &TenantId,
        actor: &str,
        user: &UserId,
        v: &NewVerification<'_>,
    ) -> Result<()> {
        let now = self.now();
        let vault = self.personal(t)?;
        self.audited(t, |c| {
            let u = load(c, &vault, t, user)?;
            let event = insert_verification(c, &vault, t, &u, v, now)?;
            Ok((
                (),
                NewAuditEvent {
                    actor: actor.to_owned(),
                    ..event
                },
            ))
        })
    }

    fn create_user_verifying(
        &self,
        t: &TenantId,
        actor: &str,
        action: &str,
        new: &NewUser,
        v: Option<&NewVerification<'_>>,
        attributes: &[crate::AttributeChange],
    ) -> Result<User> {
        let user = self.prepare_user(t, new)?;
        let key = self.new_user_key(t, &user.id)?;
        let vault = self.personal(t)?;
        let now = self.now();
        self.audited_all(t, |c| {
            insert_user(c, &user, &key)?;
            let mut events = vec![NewAuditEvent::success(
                actor,
                action,
                format!("user:{}", user.id),
                created(&key.person(&user)),
            )];
            if !attributes.is_empty() {
                let names = crate::attributes::write_values(
                    c,
                    &vault,
                    (t, &user.id),
                    attributes,
                    EditableBy::Admin,
                    now,
                )?;
                // Names only: values may be personal data.
                events.push(NewAuditEvent::success(
                    actor,
                    "user.attributes_update",
                    format!("user:{}", user.id),
                    json!({"attributes": names}),
                ));
            }
            if let Some(v) = v.filter(|_| user.email.is_some() && !user.email_verified) {
                let event = insert_verification(c, &vault, t, &user, v, now)?;
                events.push(NewAuditEvent {
                    actor: actor.to_owned(),
                    ..event
                });
            }
            Ok((user.clone(), events))
        })
    }

    fn email_verification(&self, t: &TenantId, token_hash: &str) -> Result<Option<LiveVerification>> {
        let now = self.now();
        let vault = self.personal(t)?;
        let mut conn = self.conn()?;
        let Some((user, stored)) = live(&mut conn, t, token_hash, now)? else {
            return Ok(None);
        };
        let person = match load(&mut conn, &vault, t, &user) {
            Ok(p) => p,
            Err(StoreError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(Some(LiveVerification {
            still_current: addressed_to(&vault, &stored, person.email.as_deref()),
            user: person.user,
        }))
    }

    fn complete_email_verification(&self, t: &TenantId, token_hash: &str) -> Result<User> {
        let now = self.now();
        let vault = self.personal(t)?;
        self.audited(t, |c| {
            // Inside the audited transaction, which holds the tenant's lock, two concurrent
            // spends of one token can't both find it.
            let (user, stored) = live(c, t, token_hash, now)?.ok_or(StoreError::NotFound {
                what: "live email verification token",
            })?;
            let before = load(c, &vault, t, &user)?;
            if !addressed_to(&vault, &stored, before.email.as_deref()) {
                return Err(StoreError::Conflict(
                    "the link was sent to an address the account no longer has".into(),
                ));
            }
            diesel::update(
                email_verifications::table.filter(
                    email_verifications::tenant_id
                        .eq(t.as_str())
                        .and(email_verifications::user_id.eq(user.as_str()))
                        .and(email_verifications::used_at.is_null()),
                ),
            )
            .set(email_verifications::used_at.eq(now))
            .execute(c)?;
            let after = mark(c, t, &before, true, now)?;
            let who = format!("user:{}", before.id);
            let event = NewAuditEvent::success(
                &who,
                "user.email_verified",
                who.clone(),
                json!({"email": profile(&after)["email"], "by": "link"}),
            );
            Ok((after.user, event))
        })
    }

    fn set_email_verified(&self, t: &TenantId, actor: &str, user: &UserId, verified: bool) -> Result<User> {
        let now = self.now();
        let vault = self.personal(t)?;
        self.audited(t, |c| {
            let before = load(c, &vault, t, user)?;
            if before.email.is_none() {
                return Err(invalid("the user has no email address"));
            }
            let after = mark(c, t, &before, verified, now)?;
            let action = if verified {
                "user.email_verified"
            } else {
                "user.email_unverified"
            };
            let event = NewAuditEvent::success(
                actor,
                action,
                format!("user:{user}"),
                json!({"before": profile(&before), "after": profile(&after)}),
            );
            Ok((after.user, event))
        })
    }
}

fn mark(c: &mut AnyConnection, t: &TenantId, before: &Person, verified: bool, now: i64) -> Result<Person> {
    use crate::schema::users;
    diesel::update(
        users::table.filter(
            users::tenant_id
                .eq(t.as_str())
                .and(users::id.eq(before.id.as_str())),
        ),
    )
    .set((users::email_verified.eq(verified), users::updated_at.eq(now)))
    .execute(c)?;
    Ok(before.with_user(User {
        email_verified: verified,
        updated_at: now,
        ..before.user.clone()
    }))
}
