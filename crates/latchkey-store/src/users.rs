//! Users of a tenant. Usernames and emails are unique per tenant and stored lowercased.

use crate::UserKey;
use crate::db::{Db, parse_enum};
use crate::schema::{password_history, user_attributes, users};
use crate::vault::{Personal, open_json, seal_json};
use crate::{AnyConnection, Result, StoreError};
use diesel::prelude::*;
use latchkey_core::{NewAuditEvent, TenantId, User, UserId, UserStatus, validate};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::Arc;

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
    profile_sealed: Option<String>,
}

/// What `users.profile_sealed` holds, sealed under the user's key.
#[derive(Serialize, Deserialize)]
struct Profile {
    username: String,
    email: Option<String>,
    display_name: Option<String>,
}

const PROFILE: &str = "users.profile";

/// A user as read, with the key their personal data is sealed under (`None` for a row written
/// before sealing existed) and the tenant's vault for what they change.
#[derive(Clone)]
pub(crate) struct Person {
    pub user: User,
    pub key: Option<Arc<dyn UserKey>>,
    vault: Personal,
}

impl std::ops::Deref for Person {
    type Target = User;
    fn deref(&self) -> &User {
        &self.user
    }
}

impl Person {
    /// The same person with `user` as their new state.
    pub fn with_user(&self, user: User) -> Person {
        Person { user, ..self.clone() }
    }

    /// A stable pseudonym of one of the person's identifiers, for audit details: keyed by their
    /// own key (tied to nobody once it is erased), or by the tenant's for an unsealed row.
    pub fn pseudonym(&self, what: &str, value: &str) -> String {
        match (&self.key, &self.vault.0) {
            (Some(k), _) => k.pseudonym(what, value),
            (None, Some(v)) => v.blind(&format!("audit:{what}"), value),
            (None, None) => "unsealed".to_owned(),
        }
    }
}

/// The `users` columns with the user's wrapped key, for every read of users.
type Joined = (Row, Option<String>);

macro_rules! joined_columns {
    () => {
        (Row::as_select(), crate::schema::user_keys::key_sealed.nullable())
    };
}

/// Opens a row: its sealed profile under the user's key, or the plaintext of an older row.
fn open_row(vault: &Personal, (r, wrapped): Joined) -> Result<Person> {
    let id = UserId(r.id);
    let key = vault.key_of(&id, wrapped.as_deref())?;
    let (username, email, display_name) = match (&r.profile_sealed, &key) {
        (Some(sealed), Some(k)) => {
            let p: Profile = open_json(&**k, PROFILE, sealed)?;
            (p.username, p.email, p.display_name)
        }
        // The key is gone: erased since this row was copied (a restored backup), or restored
        // without the key vault. Nothing opens it, so the user is not there.
        (Some(_), None) => return Err(StoreError::NotFound { what: "user" }),
        (None, _) => (r.username, r.email, r.display_name),
    };
    Ok(Person {
        user: User {
            id,
            tenant_id: TenantId(r.tenant_id),
            username,
            email,
            email_verified: r.email_verified,
            display_name,
            status: parse_enum("users.status", &r.status)?,
            password_hash: r.password_hash,
            password_changed_at: r.password_changed_at,
            sessions_not_before: r.sessions_not_before,
            created_at: r.created_at,
            updated_at: r.updated_at,
        },
        key,
        vault: vault.clone(),
    })
}

/// Opens rows for a list: one whose key is gone (a user erased since a restored backup, or a
/// backup restored without its key vault) is left out, counted in the log.
fn open_rows(vault: &Personal, rows: Vec<Joined>) -> Result<Vec<User>> {
    let mut out = Vec::with_capacity(rows.len());
    let mut gone = 0usize;
    for row in rows {
        match open_row(vault, row) {
            Ok(p) => out.push(p.user),
            Err(StoreError::NotFound { .. }) => gone += 1,
            Err(e) => return Err(e),
        }
    }
    if gone > 0 {
        tracing::warn!(gone, "users whose key is gone (erased) were left out of a list");
    }
    Ok(out)
}

/// The values a username or email column may hold for `value`: its blind index and, for a row
/// written before sealing, the plaintext.
pub(crate) fn candidates(vault: &Personal, purpose: &str, value: &str) -> Vec<String> {
    let mut out = vec![value.to_owned()];
    out.extend(vault.index(purpose, value));
    out
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

pub(crate) fn load(c: &mut AnyConnection, vault: &Personal, t: &TenantId, id: &UserId) -> Result<Person> {
    let row: Joined = with_user_key!(users, id)
        .filter(users::tenant_id.eq(t.as_str()).and(users::id.eq(id.as_str())))
        .select(joined_columns!())
        .first(c)
        .optional()?
        .ok_or(StoreError::NotFound { what: "user" })?;
    open_row(vault, row)
}

/// The key `user`'s personal data is sealed under, read in the caller's transaction (`None`
/// for a user written before sealing, or one whose key is gone).
pub(crate) fn key_for(
    c: &mut AnyConnection,
    vault: &Personal,
    t: &TenantId,
    user: &UserId,
) -> Result<Option<Arc<dyn UserKey>>> {
    let wrapped: Option<String> = crate::schema::user_keys::table
        .filter(crate::schema::user_keys::tenant_id.eq(t.as_str()))
        .filter(crate::schema::user_keys::user_id.eq(user.as_str()))
        .select(crate::schema::user_keys::key_sealed)
        .first(c)
        .optional()?;
    vault.key_of(user, wrapped.as_deref())
}

/// Moves the user's TOTP seed and risk history from the tenant's data key to `key`; returns
/// how many moved.
fn reseal_secrets(
    c: &mut AnyConnection,
    vault: &Personal,
    (t, user): (&TenantId, &UserId),
    key: &dyn UserKey,
) -> Result<usize> {
    use crate::schema::{mfa_totp, risk_history};
    use crate::vault::{RISK_HISTORY, TOTP_SEED};
    /// Reads `$table.$value` of the user and, when under the data key, re-seals it under `key`.
    macro_rules! reseal {
        ($table:ident, $value:ident, $column:expr) => {{
            let row = $table::table
                .filter(
                    $table::tenant_id
                        .eq(t.as_str())
                        .and($table::user_id.eq(user.as_str())),
                )
                .select($table::$value)
                .first::<String>(c)
                .optional()?
                .filter(|v| !v.starts_with(crate::vault::PERSONAL_SEAL));
            match row {
                Some(old) => {
                    let plain = $column.open(vault, None, user, &old)?;
                    diesel::update(
                        $table::table.filter(
                            $table::tenant_id
                                .eq(t.as_str())
                                .and($table::user_id.eq(user.as_str())),
                        ),
                    )
                    .set($table::$value.eq($column.seal(vault, Some(key), user, &plain)?))
                    .execute(c)?
                }
                None => 0,
            }
        }};
    }
    Ok(reseal!(mfa_totp, seed_sealed, TOTP_SEED) + reseal!(risk_history, history_sealed, RISK_HISTORY))
}

/// The usernames of the users `ids`, in username order (users whose key is gone left out).
pub(crate) fn usernames(
    c: &mut AnyConnection,
    vault: &Personal,
    t: &TenantId,
    ids: Vec<String>,
) -> Result<Vec<(UserId, String)>> {
    let rows: Vec<Joined> = with_user_key!(users, id)
        .filter(users::tenant_id.eq(t.as_str()).and(users::id.eq_any(ids)))
        .select(joined_columns!())
        .load(c)?;
    let mut out: Vec<(UserId, String)> = open_rows(vault, rows)?
        .into_iter()
        .map(|u| (u.id, u.username))
        .collect();
    out.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(out)
}

/// The profile fields an audit event shows: identifiers as pseudonyms (see `UserKey::pseudonym`),
/// never the hash.
pub(crate) fn profile(p: &Person) -> serde_json::Value {
    json!({
        "username": p.pseudonym("username", &p.username),
        "email": p.email.as_deref().map(|e| p.pseudonym("email", e)),
        "email_verified": p.email_verified,
        "display_name": p.display_name.as_deref().map(|n| p.pseudonym("display_name", n)),
        "status": p.status,
    })
}

/// A new user's key, made before the transaction that stores the user: wrapping it may create
/// the tenant's data key, a write of its own.
pub(crate) struct NewKey {
    vault: Personal,
    key: Arc<dyn UserKey>,
    wrapped: String,
}

impl NewKey {
    /// The tenant's vault the key was made under.
    pub fn vault(&self) -> Personal {
        self.vault.clone()
    }

    /// The person a prepared user becomes once stored with this key.
    pub fn person(&self, user: &User) -> Person {
        Person {
            user: user.clone(),
            key: Some(Arc::clone(&self.key)),
            vault: self.vault.clone(),
        }
    }
}

/// The columns a profile change writes: the sealed profile and blind indexes for a sealed
/// row, the plaintext for an older one.
struct ProfileColumns {
    username: String,
    email: Option<String>,
    display_name: Option<String>,
    sealed: Option<String>,
}

fn profile_columns(vault: &Personal, key: Option<&Arc<dyn UserKey>>, u: &User) -> Result<ProfileColumns> {
    let Some(key) = key else {
        return Ok(ProfileColumns {
            username: u.username.clone(),
            email: u.email.clone(),
            display_name: u.display_name.clone(),
            sealed: None,
        });
    };
    let v = vault.required()?;
    let sealed = seal_json(
        &**key,
        PROFILE,
        &Profile {
            username: u.username.clone(),
            email: u.email.clone(),
            display_name: u.display_name.clone(),
        },
    )?;
    Ok(ProfileColumns {
        username: v.blind("username", &u.username),
        email: u.email.as_deref().map(|e| v.blind("email", e)),
        display_name: None,
        sealed: Some(sealed),
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

    /// The key a new user's personal data will be sealed under (see `NewKey`).
    pub(crate) fn new_user_key(&self, t: &TenantId, id: &UserId) -> Result<NewKey> {
        let vault = self.personal(t)?;
        let (key, wrapped) = vault.required()?.new_user_key(id)?;
        Ok(NewKey { vault, key, wrapped })
    }

    fn find_user_by(&self, t: &TenantId, column_is_username: bool, value: &str) -> Result<Option<User>> {
        let vault = self.personal(t)?;
        let mut conn = self.conn()?;
        let q = with_user_key!(users, id)
            .filter(users::tenant_id.eq(t.as_str()))
            .select(joined_columns!())
            .into_boxed();
        let q = if column_is_username {
            q.filter(users::username.eq_any(candidates(&vault, "username", value)))
        } else {
            q.filter(users::email.eq_any(candidates(&vault, "email", value)))
        };
        let rows: Vec<Joined> = q.limit(2).load(&mut *conn)?;
        for row in rows {
            let p = match open_row(&vault, row) {
                Ok(p) => p,
                Err(StoreError::NotFound { .. }) => continue,
                Err(e) => return Err(e),
            };
            let found = if column_is_username {
                p.username == value
            } else {
                p.email.as_deref() == Some(value)
            };
            if found {
                return Ok(Some(p.user));
            }
        }
        Ok(None)
    }

    /// The ids of the tenant's users holding attribute `name` with `value` (JSON, or text for
    /// a string), matched by the value's blind index or, for an older row, its plaintext.
    fn attribute_holders(&self, t: &TenantId, name: &str, value: &str) -> Result<Vec<String>> {
        let vault = self.personal(t)?;
        // Stored as JSON: a text value matches as the JSON string it is stored as.
        let as_json = serde_json::from_str::<serde_json::Value>(value)
            .map_or_else(|_| serde_json::Value::from(value).to_string(), |v| v.to_string());
        let text = serde_json::Value::from(value).to_string();
        let mut wanted = Vec::new();
        for v in [as_json, text] {
            wanted.extend(crate::attributes::value_candidates(&vault, name, &v));
        }
        Ok(user_attributes::table
            .filter(
                user_attributes::tenant_id
                    .eq(t.as_str())
                    .and(user_attributes::name.eq(name))
                    .and(user_attributes::value.eq_any(wanted)),
            )
            .select(user_attributes::user_id)
            .load(&mut *self.conn()?)?)
    }

    /// Every user of the tenant (status filtered in SQL), opened.
    fn all_users(
        &self,
        t: &TenantId,
        status: Option<UserStatus>,
        holders: Option<Vec<String>>,
    ) -> Result<Vec<User>> {
        let vault = self.personal(t)?;
        let mut q = with_user_key!(users, id)
            .filter(users::tenant_id.eq(t.as_str()))
            .select(joined_columns!())
            .into_boxed();
        if let Some(status) = status {
            q = q.filter(users::status.eq(status.as_str()));
        }
        if let Some(ids) = holders {
            q = q.filter(users::id.eq_any(ids));
        }
        let rows: Vec<Joined> = q.load(&mut *self.conn()?)?;
        let mut users = open_rows(&vault, rows)?;
        users.sort_by(|a, b| a.username.cmp(&b.username));
        Ok(users)
    }

    /// Seals up to `limit` of the tenant's users written before sealing existed (plaintext
    /// profile, no key): each gets a key, their profile and attribute values are sealed and
    /// their lookup columns become blind indexes, one audited transaction per user
    /// (`user.seal`). Run once every node runs this release (an older node can't read a
    /// sealed row). Returns how many were sealed.
    pub fn seal_plain_users(&self, t: &TenantId, limit: i64) -> Result<usize> {
        let plain: Vec<String> = users::table
            .filter(
                users::tenant_id
                    .eq(t.as_str())
                    .and(users::profile_sealed.is_null()),
            )
            .select(users::id)
            .limit(limit.clamp(1, 10_000))
            .load(&mut *self.conn()?)?;
        let mut sealed = 0;
        for id in plain.into_iter().map(UserId) {
            let key = self.new_user_key(t, &id)?;
            let done = self.audited_once(t, |c| {
                crate::db::xact_lock(c, &format!("latchkey-user:{t}:{id}"))?;
                let before = load(c, &key.vault, t, &id)?;
                if before.key.is_some() {
                    let event = NewAuditEvent::success(
                        "system",
                        "user.seal",
                        format!("user:{id}"),
                        json!({"already": true}),
                    );
                    return Ok((false, event));
                }
                let cols = profile_columns(&key.vault, Some(&key.key), &before)?;
                diesel::update(
                    users::table.filter(users::tenant_id.eq(t.as_str()).and(users::id.eq(id.as_str()))),
                )
                .set((
                    users::username.eq(&cols.username),
                    users::email.eq(&cols.email),
                    users::display_name.eq(&cols.display_name),
                    users::profile_sealed.eq(&cols.sealed),
                ))
                .execute(c)?;
                diesel::insert_into(crate::schema::user_keys::table)
                    .values((
                        crate::schema::user_keys::tenant_id.eq(t.as_str()),
                        crate::schema::user_keys::user_id.eq(id.as_str()),
                        crate::schema::user_keys::key_sealed.eq(&key.wrapped),
                        crate::schema::user_keys::created_at.eq(self.now()),
                    ))
                    .execute(c)?;
                let attributes = crate::attributes::seal_plain_values(c, &key.vault, (t, &id), &key.key)?;
                let identities = crate::identities::saml::seal_plain(c, &key.vault, t, (&id, &*key.key))?
                    + crate::identities::oidc::seal_plain(c, &key.vault, t, (&id, &*key.key))?;
                let secrets = reseal_secrets(c, &key.vault, (t, &id), &*key.key)?;
                let after = key.person(&before.user);
                let event = NewAuditEvent::success(
                    "system",
                    "user.seal",
                    format!("user:{id}"),
                    json!({
                        "profile": profile(&after),
                        "attributes": attributes,
                        "identities": identities,
                        "secrets": secrets,
                    }),
                );
                Ok((true, event))
            })?;
            sealed += usize::from(done);
        }
        if sealed > 0 {
            // The plaintext the rows held must not stay in SQLite's write-ahead log.
            self.scrub()?;
        }
        Ok(sealed)
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
        let vault = self.personal(t)?;
        vault.required()?;
        self.audited_once(t, |c| {
            crate::db::xact_lock(c, &format!("latchkey-user:{t}:{id}"))?;
            let before = load(c, &vault, t, id)?;
            if let Some(v) = if_version.filter(|v| *v != before.updated_at) {
                return Err(StoreError::Stale(format!("user {id} changed since version {v}")));
            }
            let mut after = before.clone();
            apply(&mut after.user);
            if after.email != before.email {
                after.user.email_verified = false;
            }
            // The version moves on even within one millisecond.
            after.user.updated_at = self.now().max(before.updated_at + 1);
            let cols = profile_columns(&vault, after.key.as_ref(), &after)?;
            diesel::update(
                users::table.filter(users::tenant_id.eq(t.as_str()).and(users::id.eq(id.as_str()))),
            )
            .set((
                users::email.eq(&cols.email),
                users::email_verified.eq(after.email_verified),
                users::display_name.eq(&cols.display_name),
                users::profile_sealed.eq(&cols.sealed),
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
                .set((
                    users::deletion_due_at.eq(None::<i64>),
                    users::deletion_reason.eq(None::<String>),
                ))
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
            Ok((after.user, event))
        })
    }
}

impl UserRepo for Db {
    fn create_user(&self, t: &TenantId, actor: &str, new: &NewUser) -> Result<User> {
        let user = self.prepare_user(t, new)?;
        let key = self.new_user_key(t, &user.id)?;
        self.audited(t, |c| {
            insert_user(c, &user, &key)?;
            let event = NewAuditEvent::success(
                actor,
                "user.create",
                format!("user:{}", user.id),
                created(&key.person(&user)),
            );
            Ok((user.clone(), event))
        })
    }

    fn user(&self, t: &TenantId, id: &UserId) -> Result<Option<User>> {
        let vault = self.personal(t)?;
        let mut conn = self.conn()?;
        match load(&mut conn, &vault, t, id) {
            Ok(p) => Ok(Some(p.user)),
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
        self.all_users(t, None, None)
    }

    /// Sealed names can't be ordered or matched by the database: the tenant's users are opened
    /// and then ordered, filtered and cut here (about 3 µs a user).
    fn users_page(&self, t: &TenantId, q: &UserQuery) -> Result<Vec<User>> {
        let holders = match &q.attribute {
            Some((name, value)) => Some(self.attribute_holders(t, name, value)?),
            None => None,
        };
        let prefix = q
            .prefix
            .as_deref()
            .filter(|p| !p.is_empty())
            .map(str::to_lowercase);
        let limit = usize::try_from(q.limit.clamp(1, 1000)).unwrap_or(1000);
        Ok(self
            .all_users(t, q.status, holders)?
            .into_iter()
            .filter(|u| q.after.as_ref().is_none_or(|after| u.username > *after))
            .filter(|u| {
                prefix.as_deref().is_none_or(|p| {
                    u.username.starts_with(p)
                        || u.email.as_deref().is_some_and(|e| e.starts_with(p))
                        || u.display_name
                            .as_deref()
                            .is_some_and(|n| n.to_lowercase().starts_with(p))
                })
            })
            .take(limit)
            .collect())
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
        let vault = self.personal(t)?;
        self.audited(t, |c| {
            let written = write_password(c, &vault, t, id, hash, now)?;
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
            Ok((written.after.user, event))
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
        let vault = self.personal(t)?;
        self.audited(t, |c| {
            let details = crate::lifecycle::erase(c, &vault, t, id)?;
            let event = NewAuditEvent::success(actor, "user.delete", format!("user:{id}"), details);
            Ok(((), event))
        })?;
        self.scrub()
    }
}

/// Inserts a prepared user (see `Db::prepare_user`) sealed under `key`, with the key, inside
/// the caller's transaction; a taken username or email is a `Conflict` naming which (a row
/// written before sealing, holding the same name in plaintext, counts too).
pub(crate) fn insert_user(c: &mut AnyConnection, user: &User, key: &NewKey) -> Result<()> {
    let t = &user.tenant_id;
    let mut taken = candidates(&key.vault, "username", &user.username);
    if let Some(e) = &user.email {
        taken.extend(candidates(&key.vault, "email", e));
    }
    let clash: Option<(String, Option<String>)> = users::table
        .filter(users::tenant_id.eq(t.as_str()))
        .filter(users::username.eq_any(&taken).or(users::email.eq_any(&taken)))
        .select((users::username, users::email))
        .first(c)
        .optional()?;
    if let Some((name, _)) = clash {
        let what = if taken[..2.min(taken.len())].contains(&name) {
            "username"
        } else {
            "email"
        };
        return Err(if what == "username" {
            StoreError::Conflict(format!(
                "username {:?} already exists in this tenant",
                user.username
            ))
        } else {
            StoreError::Conflict(format!(
                "email {:?} is already used in this tenant",
                user.email.as_deref().unwrap_or_default()
            ))
        });
    }
    let cols = profile_columns(&key.vault, Some(&key.key), user)?;
    diesel::insert_into(users::table)
        .values((
            users::id.eq(user.id.as_str()),
            users::tenant_id.eq(t.as_str()),
            users::username.eq(&cols.username),
            users::email.eq(&cols.email),
            users::email_verified.eq(user.email_verified),
            users::display_name.eq(&cols.display_name),
            users::profile_sealed.eq(&cols.sealed),
            users::status.eq(user.status.as_str()),
            users::password_hash.eq(&user.password_hash),
            users::password_changed_at.eq(user.password_changed_at),
            users::created_at.eq(user.created_at),
            users::updated_at.eq(user.updated_at),
        ))
        .execute(c)
        .map_err(|e| conflict(e, &user.username, user.email.as_deref()))?;
    diesel::insert_into(crate::schema::user_keys::table)
        .values((
            crate::schema::user_keys::tenant_id.eq(t.as_str()),
            crate::schema::user_keys::user_id.eq(user.id.as_str()),
            crate::schema::user_keys::key_sealed.eq(&key.wrapped),
            crate::schema::user_keys::created_at.eq(user.created_at),
        ))
        .execute(c)?;
    Ok(())
}

/// The details of a `user.create` event.
pub(crate) fn created(p: &Person) -> serde_json::Value {
    let mut details = profile(p);
    details["password_set"] = json!(p.password_hash.is_some());
    details
}

/// What a password change did: the user before and after, and the OAuth grants it revoked.
pub(crate) struct PasswordWritten {
    pub before: Person,
    pub after: Person,
    pub grants_revoked: usize,
}

/// Replaces the password hash and stamps `password_changed_at`; the replaced hash joins the
/// history (the newest 24 are kept), and every OAuth grant of the user is revoked with its
/// tokens (offline ones too): whoever held the old password must not keep a refresh token
/// past a change, a reset or an operator's new password. Runs inside the caller's audited
/// transaction, so the new password and the revocation commit together.
pub(crate) fn write_password(
    c: &mut AnyConnection,
    vault: &Personal,
    t: &TenantId,
    id: &UserId,
    hash: &str,
    now: i64,
) -> Result<PasswordWritten> {
    let before = load(c, vault, t, id)?;
    let mut after = before.clone();
    after.user.password_hash = Some(hash.to_owned());
    after.user.password_changed_at = Some(now);
    after.user.updated_at = now;
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
