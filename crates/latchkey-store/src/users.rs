//! Users of a tenant. Usernames and emails are unique per tenant and stored lowercased.

use crate::db::{Db, parse_enum};
use crate::schema::{password_history, user_attributes, users};
use crate::{AnyConnection, Result, StoreError};
use diesel::prelude::*;
use latchkey_core::{NewAuditEvent, TenantId, User, UserId, UserStatus, validate};
use serde_json::json;

#[derive(Debug, Clone, Default)]
pub struct NewUser {
    pub username: String,
    pub email: Option<String>,
    pub display_name: Option<String>,
    /// An argon2id PHC string made by `latchkey-mfa`; never a plain password.
    pub password_hash: Option<String>,
    /// Someone vouches for `email` (a SAML connection set to); otherwise it starts unverified.
    pub email_verified: bool,
}

/// Profile changes; `Some(None)` clears a field. A changed email is no longer verified.
#[derive(Debug, Clone, Default)]
pub struct UserUpdate {
    pub email: Option<Option<String>>,
    pub display_name: Option<Option<String>>,
    /// The version (`updated_at`) the change was made against: a user changed since is
    /// `Stale`, not overwritten.
    pub if_version: Option<i64>,
}

pub trait UserRepo {
    fn create_user(&self, t: &TenantId, actor: &str, new: &NewUser) -> Result<User>;
    fn user(&self, t: &TenantId, id: &UserId) -> Result<Option<User>>;
    fn user_by_username(&self, t: &TenantId, username: &str) -> Result<Option<User>>;
    fn user_by_email(&self, t: &TenantId, email: &str) -> Result<Option<User>>;
    fn list_users(&self, t: &TenantId) -> Result<Vec<User>>;
    /// One page of the tenant's users in username order: those after `q.after`, at most
    /// `q.limit` (1 to 1000), filtered by status and by a prefix of the username or email.
    fn users_page(&self, t: &TenantId, q: &UserQuery) -> Result<Vec<User>>;
    fn update_user(&self, t: &TenantId, actor: &str, id: &UserId, change: &UserUpdate) -> Result<User>;
    fn set_user_status(&self, t: &TenantId, actor: &str, id: &UserId, status: UserStatus) -> Result<User>;
    /// Replaces the password hash (a PHC string) and stamps `password_changed_at`.
    fn set_password_hash(&self, t: &TenantId, actor: &str, id: &UserId, hash: &str) -> Result<User>;
    fn delete_user(&self, t: &TenantId, actor: &str, id: &UserId) -> Result<()>;
    /// The user's previous password hashes, newest first, at most `n`.
    fn password_history(&self, t: &TenantId, id: &UserId, n: u32) -> Result<Vec<String>>;
    /// Stores a fresh hash of the same password (new parameters); the password's age is kept.
    fn rehash_password(&self, t: &TenantId, id: &UserId, hash: &str) -> Result<User>;
}

/// A page of users (keyset paging: `after` is the last username of the previous page).
#[derive(Debug, Clone, Default)]
pub struct UserQuery {
    pub after: Option<String>,
    pub limit: i64,
    pub status: Option<UserStatus>,
    /// Users whose username, email or display name starts with it (case-insensitive).
    pub prefix: Option<String>,
    /// Users with this attribute value: (name, value as JSON, or as text for a string).
    pub attribute: Option<(String, String)>,
}

diesel::define_sql_function! {
    /// SQL `lower`, for a case-insensitive display-name prefix on both engines.
    fn lower(x: diesel::sql_types::Nullable<diesel::sql_types::Text>) -> diesel::sql_types::Nullable<diesel::sql_types::Text>;
}

/// `text` as a LIKE pattern matching itself literally, then anything (`\` escapes).
fn prefix_pattern(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 1);
    for ch in text.chars() {
        if matches!(ch, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(ch);
    }
    out.push('%');
    out
}

/// A `users` row as stored.
#[derive(Queryable, Selectable)]
#[diesel(table_name = users)]
struct Row {
    id: String,
    tenant_id: String,
    username: String,
    email: Option<String>,
    display_name: Option<String>,
    status: String,
    password_hash: Option<String>,
    password_changed_at: Option<i64>,
    created_at: i64,
    updated_at: i64,
    sessions_not_before: Option<i64>,
    email_verified: bool,
}

fn from_row(r: Row) -> Result<User> {
    Ok(User {
        id: UserId(r.id),
        tenant_id: TenantId(r.tenant_id),
        username: r.username,
        email: r.email,
        email_verified: r.email_verified,
        display_name: r.display_name,
        status: parse_enum("users.status", &r.status)?,
        password_hash: r.password_hash,
        password_changed_at: r.password_changed_at,
        sessions_not_before: r.sessions_not_before,
        created_at: r.created_at,
        updated_at: r.updated_at,
    })
}

/// Names which uniqueness rule a conflict hit.
fn conflict(e: diesel::result::Error, username: &str, email: Option<&str>) -> StoreError {
    match StoreError::from(e) {
        StoreError::Conflict(m) if m.contains("email") => StoreError::Conflict(format!(
            "email {:?} is already used in this tenant",
            email.unwrap_or_default()
        )),
        StoreError::Conflict(_) => {
            StoreError::Conflict(format!("username {username:?} already exists in this tenant"))
        }
        other => other,
    }
}

pub(crate) fn load(c: &mut AnyConnection, t: &TenantId, id: &UserId) -> Result<User> {
    users::table
        .filter(users::tenant_id.eq(t.as_str()).and(users::id.eq(id.as_str())))
        .select(Row::as_select())
        .first(c)
        .optional()?
        .map(from_row)
        .transpose()?
        .ok_or(StoreError::NotFound { what: "user" })
}

/// The profile fields an audit event shows (never the hash).
pub(crate) fn profile(u: &User) -> serde_json::Value {
    json!({
        "username": u.username,
        "email": u.email,
        "email_verified": u.email_verified,
        "display_name": u.display_name,
        "status": u.status,
    })
}

impl Db {
    /// Validates and normalizes a new user (lowercased username and email) and gives it an id.
    pub(crate) fn prepare_user(&self, t: &TenantId, new: &NewUser) -> Result<User> {
        let username = validate::username(&new.username)?;
        let email = new.email.as_deref().map(validate::email).transpose()?;
        let display_name = new
            .display_name
            .as_deref()
            .map(|n| validate::display_name("display_name", n))
            .transpose()?;
        let now = self.now();
        Ok(User {
            id: UserId(self.new_id()),
            tenant_id: t.clone(),
            username,
            email_verified: new.email_verified && email.is_some(),
            email,
            display_name,
            status: UserStatus::Active,
            password_hash: new.password_hash.clone(),
            password_changed_at: new.password_hash.as_ref().map(|_| now),
            sessions_not_before: None,
            created_at: now,
            updated_at: now,
        })
    }

    fn find_user_by(&self, t: &TenantId, column_is_username: bool, value: &str) -> Result<Option<User>> {
        let mut conn = self.conn()?;
        let q = users::table
            .filter(users::tenant_id.eq(t.as_str()))
            .select(Row::as_select())
            .into_boxed();
        let q = if column_is_username {
            q.filter(users::username.eq(value))
        } else {
            q.filter(users::email.eq(value))
        };
        q.first(&mut *conn).optional()?.map(from_row).transpose()
    }

    /// Applies one change to a user and records before/after.
    fn change_user(
        &self,
        t: &TenantId,
        actor: &str,
        id: &UserId,
        (action, if_version): (&str, Option<i64>),
        apply: impl FnOnce(&mut User),
    ) -> Result<User> {
        self.audited_once(t, |c| {
            crate::db::xact_lock(c, &format!("latchkey-user:{t}:{id}"))?;
            let before = load(c, t, id)?;
            if let Some(v) = if_version.filter(|v| *v != before.updated_at) {
                return Err(StoreError::Stale(format!("user {id} changed since version {v}")));
            }
            let mut after = before.clone();
            apply(&mut after);
            if after.email != before.email {
                after.email_verified = false;
            }
            // The version moves on even within one millisecond.
            after.updated_at = self.now().max(before.updated_at + 1);
            diesel::update(
                users::table.filter(users::tenant_id.eq(t.as_str()).and(users::id.eq(id.as_str()))),
            )
            .set((
                users::email.eq(&after.email),
                users::email_verified.eq(after.email_verified),
                users::display_name.eq(&after.display_name),
                users::status.eq(after.status.as_str()),
                users::password_hash.eq(&after.password_hash),
                users::password_changed_at.eq(after.password_changed_at),
                users::updated_at.eq(after.updated_at),
            ))
            .execute(c)
            .map_err(|e| conflict(e, &after.username, after.email.as_deref()))?;
            // Enabling an account pending deletion restores it: the deletion is off.
            if after.status == UserStatus::Active && before.status != UserStatus::Active {
                diesel::update(
                    users::table.filter(users::tenant_id.eq(t.as_str()).and(users::id.eq(id.as_str()))),
                )
                .set(users::deletion_due_at.eq(None::<i64>))
                .execute(c)?;
            }
            // A disabled user's tokens die with the change, not at their next use.
            if after.status == UserStatus::Disabled && before.status != UserStatus::Disabled {
                crate::oauth::revoke_matching(
                    c,
                    t,
                    crate::GrantsOf::User(id),
                    after.updated_at,
                    "user_disabled",
                )?;
            }
            let event = NewAuditEvent::success(
                actor,
                action,
                format!("user:{id}"),
                json!({"before": profile(&before), "after": profile(&after)}),
            );
            Ok((after, event))
        })
    }
}

impl UserRepo for Db {
    fn create_user(&self, t: &TenantId, actor: &str, new: &NewUser) -> Result<User> {
        let user = self.prepare_user(t, new)?;
        self.audited(t, |c| {
            insert_user(c, &user)?;
            let event =
                NewAuditEvent::success(actor, "user.create", format!("user:{}", user.id), created(&user));
            Ok((user.clone(), event))
        })
    }

    fn user(&self, t: &TenantId, id: &UserId) -> Result<Option<User>> {
        let mut conn = self.conn()?;
        match load(&mut conn, t, id) {
            Ok(u) => Ok(Some(u)),
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn user_by_username(&self, t: &TenantId, username: &str) -> Result<Option<User>> {
        self.find_user_by(t, true, &username.trim().to_lowercase())
    }

    fn user_by_email(&self, t: &TenantId, email: &str) -> Result<Option<User>> {
        self.find_user_by(t, false, &email.trim().to_lowercase())
    }

    fn list_users(&self, t: &TenantId) -> Result<Vec<User>> {
        let mut conn = self.conn()?;
        users::table
            .filter(users::tenant_id.eq(t.as_str()))
            .select(Row::as_select())
            .order(users::username.asc())
            .load(&mut *conn)?
            .into_iter()
            .map(from_row)
            .collect()
    }

    fn users_page(&self, t: &TenantId, q: &UserQuery) -> Result<Vec<User>> {
        let mut query = users::table
            .filter(users::tenant_id.eq(t.as_str()))
            .select(Row::as_select())
            .order(users::username.asc())
            .limit(q.limit.clamp(1, 1000))
            .into_boxed();
        if let Some(after) = &q.after {
            query = query.filter(users::username.gt(after.clone()));
        }
        if let Some(status) = q.status {
            query = query.filter(users::status.eq(status.as_str()));
        }
        if let Some(p) = q.prefix.as_deref().filter(|p| !p.is_empty()) {
            let pattern = prefix_pattern(&p.to_lowercase());
            query = query.filter(
                users::username
                    .like(pattern.clone())
                    .escape('\\')
                    .or(users::email.like(pattern.clone()).escape('\\'))
                    .or(lower(users::display_name).like(pattern).escape('\\')),
            );
        }
        if let Some((name, value)) = &q.attribute {
            // Stored as JSON: a text value matches as the JSON string it is stored as.
            let as_json = serde_json::from_str::<serde_json::Value>(value).map_or_else(
                |_| serde_json::Value::from(value.as_str()).to_string(),
                |v| v.to_string(),
            );
            let text = serde_json::Value::from(value.as_str()).to_string();
            let holders = user_attributes::table
                .filter(
                    user_attributes::tenant_id
                        .eq(t.as_str())
                        .and(user_attributes::name.eq(name.clone()))
                        .and(user_attributes::value.eq_any(vec![as_json, text])),
                )
                .select(user_attributes::user_id);
            query = query.filter(users::id.eq_any(holders));
        }
        let mut conn = self.conn()?;
        query.load(&mut *conn)?.into_iter().map(from_row).collect()
    }

    fn update_user(&self, t: &TenantId, actor: &str, id: &UserId, change: &UserUpdate) -> Result<User> {
        let email = match &change.email {
            Some(Some(e)) => Some(Some(validate::email(e)?)),
            other => other.clone(),
        };
        let display_name = match &change.display_name {
            Some(Some(n)) => Some(Some(validate::display_name("display_name", n)?)),
            other => other.clone(),
        };
        self.change_user(t, actor, id, ("user.update", change.if_version), |u| {
            if let Some(e) = email {
                u.email = e;
            }
            if let Some(n) = display_name {
                u.display_name = n;
            }
        })
    }

    fn set_user_status(&self, t: &TenantId, actor: &str, id: &UserId, status: UserStatus) -> Result<User> {
        let action = match status {
            UserStatus::Active => "user.enable",
            UserStatus::Disabled => "user.disable",
        };
        self.change_user(t, actor, id, (action, None), |u| u.status = status)
    }

    fn set_password_hash(&self, t: &TenantId, actor: &str, id: &UserId, hash: &str) -> Result<User> {
        let now = self.now();
        self.audited(t, |c| {
            let written = write_password(c, t, id, hash, now)?;
            let event = NewAuditEvent::success(
                actor,
                "user.set_password",
                format!("user:{id}"),
                json!({
                    "before": profile(&written.before),
                    "after": profile(&written.after),
                    "grants_revoked": written.grants_revoked,
                }),
            );
            Ok((written.after, event))
        })
    }

    fn password_history(&self, t: &TenantId, id: &UserId, n: u32) -> Result<Vec<String>> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let mut conn = self.conn()?;
        Ok(password_history::table
            .filter(
                password_history::tenant_id
                    .eq(t.as_str())
                    .and(password_history::user_id.eq(id.as_str())),
            )
            .select(password_history::hash)
            .order(password_history::created_at.desc())
            .limit(i64::from(n))
            .load(&mut *conn)?)
    }

    fn rehash_password(&self, t: &TenantId, id: &UserId, hash: &str) -> Result<User> {
        self.change_user(t, "system", id, ("user.password_rehash", None), |u| {
            u.password_hash = Some(hash.to_owned());
        })
    }

    fn delete_user(&self, t: &TenantId, actor: &str, id: &UserId) -> Result<()> {
        self.audited(t, |c| {
            let details = crate::lifecycle::erase(c, t, id)?;
            let event = NewAuditEvent::success(actor, "user.delete", format!("user:{id}"), details);
            Ok(((), event))
        })
    }
}

/// Inserts a prepared user (see `Db::prepare_user`) inside the caller's transaction; a taken
/// username or email is a `Conflict` naming which.
pub(crate) fn insert_user(c: &mut AnyConnection, user: &User) -> Result<()> {
    diesel::insert_into(users::table)
        .values((
            users::id.eq(user.id.as_str()),
            users::tenant_id.eq(user.tenant_id.as_str()),
            users::username.eq(&user.username),
            users::email.eq(&user.email),
            users::email_verified.eq(user.email_verified),
            users::display_name.eq(&user.display_name),
            users::status.eq(user.status.as_str()),
            users::password_hash.eq(&user.password_hash),
            users::password_changed_at.eq(user.password_changed_at),
            users::created_at.eq(user.created_at),
            users::updated_at.eq(user.updated_at),
        ))
        .execute(c)
        .map_err(|e| conflict(e, &user.username, user.email.as_deref()))?;
    Ok(())
}

/// The details of a `user.create` event.
pub(crate) fn created(u: &User) -> serde_json::Value {
    let mut details = profile(u);
    details["password_set"] = json!(u.password_hash.is_some());
    details
}

/// What a password change did: the user before and after, and the OAuth grants it revoked.
pub(crate) struct PasswordWritten {
    pub before: User,
    pub after: User,
    pub grants_revoked: usize,
}

/// Replaces the password hash and stamps `password_changed_at`; the replaced hash joins the
/// history (the newest 24 are kept), and every OAuth grant of the user is revoked with its
/// tokens (offline ones too): whoever held the old password must not keep a refresh token
/// past a change, a reset or an operator's new password. Runs inside the caller's audited
/// transaction, so the new password and the revocation commit together.
pub(crate) fn write_password(
    c: &mut AnyConnection,
    t: &TenantId,
    id: &UserId,
    hash: &str,
    now: i64,
) -> Result<PasswordWritten> {
    let before = load(c, t, id)?;
    let mut after = before.clone();
    after.password_hash = Some(hash.to_owned());
    after.password_changed_at = Some(now);
    after.updated_at = now;
    diesel::update(users::table.filter(users::tenant_id.eq(t.as_str()).and(users::id.eq(id.as_str()))))
        .set((
            users::password_hash.eq(&after.password_hash),
            users::password_changed_at.eq(after.password_changed_at),
            users::updated_at.eq(now),
        ))
        .execute(c)?;
    // The replaced hash joins the history (the newest 24 are kept) in the same transaction.
    if let Some(old) = &before.password_hash {
        diesel::insert_into(password_history::table)
            .values((
                password_history::tenant_id.eq(t.as_str()),
                password_history::user_id.eq(id.as_str()),
                password_history::hash.eq(old),
                password_history::created_at.eq(now),
            ))
            .execute(c)?;
        let keep: Vec<i64> = password_history::table
            .filter(
                password_history::tenant_id
                    .eq(t.as_str())
                    .and(password_history::user_id.eq(id.as_str())),
            )
            .select(password_history::created_at)
            .order(password_history::created_at.desc())
            .limit(24)
            .load(c)?;
        if let Some(oldest) = keep.last().filter(|_| keep.len() == 24) {
            diesel::delete(
                password_history::table.filter(
                    password_history::tenant_id
                        .eq(t.as_str())
                        .and(password_history::user_id.eq(id.as_str()))
                        .and(password_history::created_at.lt(*oldest)),
                ),
            )
            .execute(c)?;
        }
    }
    let grants_revoked =
        crate::oauth::revoke_matching(c, t, crate::GrantsOf::User(id), now, "password_changed")?;
    Ok(PasswordWritten {
        before,
        after,
        grants_revoked,
    })
}
