//! Second factors of users: the authenticator app (a TOTP seed, sealed here under the person's
//! own key, docs/privacy.md#erasure) and recovery codes (SHA-256, spent once). Every
//! change is audited in its transaction.

use crate::db::Db;
use crate::schema::{mfa_passkeys, mfa_recovery_codes, mfa_totp, user_keys, users};
use crate::vault::TOTP_SEED;
use crate::{AnyConnection, Result, StoreError};
use diesel::prelude::*;
use latchkey_core::{NewAuditEvent, TenantId, UserId};
use serde_json::json;

/// A user's authenticator app as stored (its seed opened).
#[derive(Clone, PartialEq, Eq)]
pub struct StoredTotp {
    pub seed: Vec<u8>,
    pub created_at: i64,
    /// `None` while enrolment waits for its first valid code.
    pub confirmed_at: Option<i64>,
    pub last_used_at: Option<i64>,
}

impl std::fmt::Debug for StoredTotp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredTotp")
            .field("seed", &"<secret>")
            .field("created_at", &self.created_at)
            .field("confirmed_at", &self.confirmed_at)
            .field("last_used_at", &self.last_used_at)
            .finish()
    }
}

/// A registered passkey.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = mfa_passkeys)]
pub struct PasskeyRow {
    /// base64url credential id.
    pub id: String,
    pub user_id: String,
    pub name: String,
    pub credential: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

pub trait MfaRepo {
    fn passkeys(&self, t: &TenantId, user: &UserId) -> Result<Vec<PasskeyRow>>;
    /// The tenant's passkey with credential id `id` (another tenant's is unknown here).
    fn passkey(&self, t: &TenantId, id: &str) -> Result<Option<PasskeyRow>>;
    /// Registers a passkey; `Conflict` when the credential is registered already (to anyone).
    fn add_passkey(&self, t: &TenantId, user: &UserId, id: &str, name: &str, credential: &str) -> Result<()>;
    /// Records a use, with the credential's new counter and flags when they moved.
    fn passkey_used(&self, t: &TenantId, id: &str, credential: Option<&str>) -> Result<()>;
    fn rename_passkey(&self, t: &TenantId, user: &UserId, id: &str, name: &str) -> Result<bool>;
    /// Removes the user's passkey `id`; `actor` is who removed it (the user, an administrator).
    /// When it was the user's last second factor, their recovery codes go in the same
    /// transaction (as with [`Self::remove_totp`]).
    fn remove_passkey(&self, t: &TenantId, actor: &str, user: &UserId, id: &str) -> Result<bool>;
    fn totp(&self, t: &TenantId, user: &UserId) -> Result<Option<StoredTotp>>;
    /// Starts (or restarts) an enrolment with `seed`; `Conflict` when a confirmed app exists.
    fn begin_totp(&self, t: &TenantId, user: &UserId, seed: &[u8]) -> Result<()>;
    /// Confirms the enrolment, storing `recovery_hashes` (the first factor's codes) with it.
    fn confirm_totp(&self, t: &TenantId, user: &UserId, recovery_hashes: &[String]) -> Result<()>;
    /// Records a successful use.
    fn totp_used(&self, t: &TenantId, user: &UserId) -> Result<()>;
    /// Removes the user's authenticator app (also an enrolment not confirmed); when no second
    /// factor is left (no confirmed app, no passkey), the recovery codes go in the same
    /// transaction.
    fn remove_totp(&self, t: &TenantId, actor: &str, user: &UserId) -> Result<bool>;
    fn recovery_codes_left(&self, t: &TenantId, user: &UserId) -> Result<usize>;
    /// Replaces every recovery code of the user.
    fn replace_recovery_codes(&self, t: &TenantId, user: &UserId, hashes: &[String]) -> Result<()>;
    /// Spends a recovery code; false when unknown or spent (also by a concurrent request).
    fn use_recovery_code(&self, t: &TenantId, user: &UserId, hash: &str) -> Result<bool>;
    /// Removes every factor and recovery code of the user and voids their sessions (an
    /// administrator's reset). `NotFound`, with nothing written or audited, for a user the
    /// tenant doesn't have.
    fn reset_mfa(&self, t: &TenantId, actor: &str, user: &UserId) -> Result<usize>;
}

fn who(user: &UserId) -> String {
    format!("user:{user}")
}

fn insert_codes(
    c: &mut AnyConnection,
    t: &TenantId,
    user: &UserId,
    hashes: &[String],
    now: i64,
) -> Result<()> {
    diesel::delete(
        mfa_recovery_codes::table
            .filter(mfa_recovery_codes::tenant_id.eq(t.as_str()))
            .filter(mfa_recovery_codes::user_id.eq(user.as_str())),
    )
    .execute(c)?;
    for h in hashes {
        diesel::insert_into(mfa_recovery_codes::table)
            .values((
                mfa_recovery_codes::tenant_id.eq(t.as_str()),
                mfa_recovery_codes::user_id.eq(user.as_str()),
                mfa_recovery_codes::code_hash.eq(h),
                mfa_recovery_codes::created_at.eq(now),
            ))
            .execute(c)?;
    }
    Ok(())
}

/// After a factor is removed: when the user has no second factor left (no confirmed
/// authenticator app, no passkey), removes their recovery codes too, so no code outlives the
/// factors it backs up. Returns how many codes went.
fn codes_without_factor(c: &mut AnyConnection, t: &TenantId, user: &UserId) -> Result<usize> {
    let apps: i64 = mfa_totp::table
        .filter(mfa_totp::tenant_id.eq(t.as_str()))
        .filter(mfa_totp::user_id.eq(user.as_str()))
        .filter(mfa_totp::confirmed_at.is_not_null())
        .count()
        .get_result(c)?;
    let passkeys: i64 = mfa_passkeys::table
        .filter(mfa_passkeys::tenant_id.eq(t.as_str()))
        .filter(mfa_passkeys::user_id.eq(user.as_str()))
        .count()
        .get_result(c)?;
    if apps + passkeys > 0 {
        return Ok(0);
    }
    Ok(diesel::delete(
        mfa_recovery_codes::table
            .filter(mfa_recovery_codes::tenant_id.eq(t.as_str()))
            .filter(mfa_recovery_codes::user_id.eq(user.as_str())),
    )
    .execute(c)?)
}

fn totp_row(t: &TenantId, user: &UserId) -> (String, String) {
    (t.as_str().to_owned(), user.as_str().to_owned())
}

fn passkey_event(user: &UserId, action: &str, id: &str, details: serde_json::Value) -> NewAuditEvent {
    let mut d = details;
    if let Some(o) = d.as_object_mut() {
        o.insert("passkey".into(), json!(id.get(..16).unwrap_or(id)));
    }
    NewAuditEvent::success(&who(user), action, who(user), d)
}

impl MfaRepo for Db {
    fn passkeys(&self, t: &TenantId, user: &UserId) -> Result<Vec<PasskeyRow>> {
        Ok(mfa_passkeys::table
            .filter(mfa_passkeys::tenant_id.eq(t.as_str()))
            .filter(mfa_passkeys::user_id.eq(user.as_str()))
            .order(mfa_passkeys::created_at.asc())
            .select(PasskeyRow::as_select())
            .load(&mut *self.conn()?)?)
    }

    fn passkey(&self, t: &TenantId, id: &str) -> Result<Option<PasskeyRow>> {
        Ok(mfa_passkeys::table
            .find((t.as_str(), id))
            .select(PasskeyRow::as_select())
            .first(&mut *self.conn()?)
            .optional()?)
    }

    fn add_passkey(&self, t: &TenantId, user: &UserId, id: &str, name: &str, credential: &str) -> Result<()> {
        let now = self.now();
        self.audited(t, |c| {
            let taken = mfa_passkeys::table
                .find((t.as_str(), id))
                .select(mfa_passkeys::id)
                .first::<String>(c)
                .optional()?;
            if taken.is_some() {
                return Err(StoreError::Conflict("this passkey is registered already".into()));
            }
            diesel::insert_into(mfa_passkeys::table)
                .values((
                    mfa_passkeys::tenant_id.eq(t.as_str()),
                    mfa_passkeys::id.eq(id),
                    mfa_passkeys::user_id.eq(user.as_str()),
                    mfa_passkeys::name.eq(name),
                    mfa_passkeys::credential.eq(credential),
                    mfa_passkeys::created_at.eq(now),
                ))
                .execute(c)?;
            Ok((
                (),
                passkey_event(user, "mfa.passkey.register", id, json!({"name": name})),
            ))
        })
    }

    fn passkey_used(&self, t: &TenantId, id: &str, credential: Option<&str>) -> Result<()> {
        let now = self.now();
        self.write(|c| {
            let target = mfa_passkeys::table.find((t.as_str(), id));
            match credential {
                Some(cred) => diesel::update(target)
                    .set((
                        mfa_passkeys::last_used_at.eq(now),
                        mfa_passkeys::credential.eq(cred),
                    ))
                    .execute(c)?,
                None => diesel::update(target)
                    .set(mfa_passkeys::last_used_at.eq(now))
                    .execute(c)?,
            };
            Ok(())
        })
    }

    fn rename_passkey(&self, t: &TenantId, user: &UserId, id: &str, name: &str) -> Result<bool> {
        self.audited(t, |c| {
            let n = diesel::update(
                mfa_passkeys::table
                    .filter(mfa_passkeys::tenant_id.eq(t.as_str()))
                    .filter(mfa_passkeys::id.eq(id))
                    .filter(mfa_passkeys::user_id.eq(user.as_str())),
            )
            .set(mfa_passkeys::name.eq(name))
            .execute(c)?;
            Ok((
                n > 0,
                passkey_event(user, "mfa.passkey.rename", id, json!({"name": name})),
            ))
        })
    }

    fn remove_passkey(&self, t: &TenantId, actor: &str, user: &UserId, id: &str) -> Result<bool> {
        self.audited(t, |c| {
            let n = diesel::delete(
                mfa_passkeys::table
                    .filter(mfa_passkeys::tenant_id.eq(t.as_str()))
                    .filter(mfa_passkeys::id.eq(id))
                    .filter(mfa_passkeys::user_id.eq(user.as_str())),
            )
            .execute(c)?;
            let codes = if n > 0 {
                codes_without_factor(c, t, user)?
            } else {
                0
            };
            let details = json!({"removed": n > 0, "recovery_codes_removed": codes});
            let mut event = passkey_event(user, "mfa.passkey.remove", id, details);
            actor.clone_into(&mut event.actor);
            Ok((n > 0, event))
        })
    }

    fn totp(&self, t: &TenantId, user: &UserId) -> Result<Option<StoredTotp>> {
        let vault = self.personal(t)?;
        let row = with_user_key!(mfa_totp, user_id)
            .filter(mfa_totp::tenant_id.eq(t.as_str()))
            .filter(mfa_totp::user_id.eq(user.as_str()))
            .select((
                mfa_totp::seed_sealed,
                user_keys::key_sealed.nullable(),
                mfa_totp::created_at,
                mfa_totp::confirmed_at,
                mfa_totp::last_used_at,
            ))
            .first::<(String, Option<String>, i64, Option<i64>, Option<i64>)>(&mut *self.conn()?)
            .optional()?;
        let Some((stored, wrapped, created_at, confirmed_at, last_used_at)) = row else {
            return Ok(None);
        };
        let key = vault.key_of(user, wrapped.as_deref())?;
        Ok(Some(StoredTotp {
            seed: TOTP_SEED.open(&vault, key.as_deref(), user, &stored)?,
            created_at,
            confirmed_at,
            last_used_at,
        }))
    }

    fn begin_totp(&self, t: &TenantId, user: &UserId, seed: &[u8]) -> Result<()> {
        let vault = self.personal(t)?;
        // Sealed before the write takes its connection (see `RiskRepo::save_risk_history`).
        let key = crate::users::key_for(&mut *self.conn()?, &vault, t, user)?;
        let seed_sealed = TOTP_SEED.seal(&vault, key.as_deref(), user, seed)?;
        let seed_sealed = seed_sealed.as_str();
        let now = self.now();
        self.write(|c| {
            let confirmed = mfa_totp::table
                .find(totp_row(t, user))
                .select(mfa_totp::confirmed_at)
                .first::<Option<i64>>(c)
                .optional()?;
            match confirmed {
                Some(Some(_)) => Err(StoreError::Conflict(
                    "an authenticator app is already set up".into(),
                )),
                Some(None) => {
                    diesel::update(mfa_totp::table.find(totp_row(t, user)))
                        .set((
                            mfa_totp::seed_sealed.eq(seed_sealed),
                            mfa_totp::created_at.eq(now),
                        ))
                        .execute(c)?;
                    Ok(())
                }
                None => {
                    diesel::insert_into(mfa_totp::table)
                        .values((
                            mfa_totp::tenant_id.eq(t.as_str()),
                            mfa_totp::user_id.eq(user.as_str()),
                            mfa_totp::seed_sealed.eq(seed_sealed),
                            mfa_totp::created_at.eq(now),
                        ))
                        .execute(c)?;
                    Ok(())
                }
            }
        })
    }

    fn confirm_totp(&self, t: &TenantId, user: &UserId, recovery_hashes: &[String]) -> Result<()> {
        let now = self.now();
        self.audited(t, |c| {
            let n = diesel::update(
                mfa_totp::table
                    .filter(mfa_totp::tenant_id.eq(t.as_str()))
                    .filter(mfa_totp::user_id.eq(user.as_str()))
                    .filter(mfa_totp::confirmed_at.is_null()),
            )
            .set((mfa_totp::confirmed_at.eq(now), mfa_totp::last_used_at.eq(now)))
            .execute(c)?;
            if n == 0 {
                return Err(StoreError::NotFound {
                    what: "pending authenticator enrolment",
                });
            }
            if !recovery_hashes.is_empty() {
                insert_codes(c, t, user, recovery_hashes, now)?;
            }
            let event = NewAuditEvent::success(
                &who(user),
                "mfa.totp.enrol",
                who(user),
                json!({"recovery_codes": recovery_hashes.len()}),
            );
            Ok(((), event))
        })
    }

    fn totp_used(&self, t: &TenantId, user: &UserId) -> Result<()> {
        let now = self.now();
        self.write(|c| {
            diesel::update(mfa_totp::table.find(totp_row(t, user)))
                .set(mfa_totp::last_used_at.eq(now))
                .execute(c)?;
            Ok(())
        })
    }

    fn remove_totp(&self, t: &TenantId, actor: &str, user: &UserId) -> Result<bool> {
        self.audited(t, |c| {
            let n = diesel::delete(mfa_totp::table.find(totp_row(t, user))).execute(c)?;
            let codes = if n > 0 {
                codes_without_factor(c, t, user)?
            } else {
                0
            };
            let details = json!({"removed": n > 0, "recovery_codes_removed": codes});
            let event = NewAuditEvent::success(actor, "mfa.totp.remove", who(user), details);
            Ok((n > 0, event))
        })
    }

    fn recovery_codes_left(&self, t: &TenantId, user: &UserId) -> Result<usize> {
        let n: i64 = mfa_recovery_codes::table
            .filter(mfa_recovery_codes::tenant_id.eq(t.as_str()))
            .filter(mfa_recovery_codes::user_id.eq(user.as_str()))
            .filter(mfa_recovery_codes::used_at.is_null())
            .count()
            .get_result(&mut *self.conn()?)?;
        Ok(usize::try_from(n).unwrap_or_default())
    }

    fn replace_recovery_codes(&self, t: &TenantId, user: &UserId, hashes: &[String]) -> Result<()> {
        let now = self.now();
        self.audited(t, |c| {
            insert_codes(c, t, user, hashes, now)?;
            let event = NewAuditEvent::success(
                &who(user),
                "mfa.recovery_codes.regenerate",
                who(user),
                json!({"count": hashes.len()}),
            );
            Ok(((), event))
        })
    }

    fn use_recovery_code(&self, t: &TenantId, user: &UserId, hash: &str) -> Result<bool> {
        let now = self.now();
        self.audited(t, |c| {
            let n = diesel::update(
                mfa_recovery_codes::table
                    .filter(mfa_recovery_codes::tenant_id.eq(t.as_str()))
                    .filter(mfa_recovery_codes::user_id.eq(user.as_str()))
                    .filter(mfa_recovery_codes::code_hash.eq(hash))
                    .filter(mfa_recovery_codes::used_at.is_null()),
            )
            .set(mfa_recovery_codes::used_at.eq(now))
            .execute(c)?;
            let event = if n == 1 {
                NewAuditEvent::success(&who(user), "mfa.recovery_code.use", who(user), json!({}))
            } else {
                NewAuditEvent::failure(
                    &who(user),
                    "mfa.recovery_code.use",
                    who(user),
                    json!({"reason": "unknown_or_spent"}),
                )
            };
            Ok((n == 1, event))
        })
    }

    fn reset_mfa(&self, t: &TenantId, actor: &str, user: &UserId) -> Result<usize> {
        let now = self.now();
        self.audited(t, |c| {
            let found = diesel::update(
                users::table
                    .filter(users::tenant_id.eq(t.as_str()))
                    .filter(users::id.eq(user.as_str())),
            )
            .set(users::sessions_not_before.eq(now))
            .execute(c)?;
            if found == 0 {
                // Rolls back: an unknown user gets no audit event claiming a reset.
                return Err(StoreError::NotFound { what: "user" });
            }
            // The sessions end, and with them every grant they made (offline ones too).
            crate::oauth::revoke_matching(c, t, crate::GrantsOf::User(user), now, "mfa_reset")?;
            let mut n = diesel::delete(mfa_totp::table.find(totp_row(t, user))).execute(c)?;
            n += diesel::delete(
                mfa_passkeys::table
                    .filter(mfa_passkeys::tenant_id.eq(t.as_str()))
                    .filter(mfa_passkeys::user_id.eq(user.as_str())),
            )
            .execute(c)?;
            n += diesel::delete(
                mfa_recovery_codes::table
                    .filter(mfa_recovery_codes::tenant_id.eq(t.as_str()))
                    .filter(mfa_recovery_codes::user_id.eq(user.as_str())),
            )
            .execute(c)?;
            let event = NewAuditEvent::success(actor, "mfa.reset", who(user), json!({"rows": n}));
            Ok((n, event))
        })
    }
}
