//! User attributes: the tenant's typed schema (`attribute_defs`) and each user's values
//! (`user_attributes`, JSON of the declared type). Every value is checked against its
//! definition here, whoever sets it; a user (on the account page) may change only attributes
//! the schema lets users edit. Unique attributes keep their canonical value in `unique_key`,
//! so the database itself refuses a second holder.

use crate::db::Db;
use crate::schema::{attribute_defs, user_attributes, users};
use crate::vault::{Personal, open_json};
use crate::{Result, StoreError, UserKey};
use diesel::prelude::*;
use latchkey_core::attributes::{MAX_ATTRIBUTES, attribute_name};
use latchkey_core::{AttributeDef, EditableBy, NewAuditEvent, TenantId, UserId, ValidationError};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

/// What changes in a definition; `None` leaves a field as it is. The kind never changes
/// (remove the attribute and define it again).
#[derive(Debug, Clone, Default)]
pub struct AttributeUpdate {
    /// `Some(None)` clears the label.
    pub label: Option<Option<String>>,
    pub required: Option<bool>,
    pub unique: Option<bool>,
    pub editable_by: Option<EditableBy>,
    /// The version (`updated_at`) the change was made against: a definition changed since is
    /// `Stale`, not overwritten.
    pub if_version: Option<i64>,
}

/// A user's attribute values by name.
pub type AttributeValues = BTreeMap<String, Value>;

/// One change to a user's values: the attribute and its new value (`None`: clear it).
pub type AttributeChange = (String, Option<Value>);

pub trait AttributeRepo {
    /// Declares an attribute (`created_at` and `tenant_id` are the store's).
    fn define_attribute(&self, t: &TenantId, actor: &str, def: &AttributeDef) -> Result<AttributeDef>;
    fn update_attribute(
        &self,
        t: &TenantId,
        actor: &str,
        name: &str,
        u: &AttributeUpdate,
    ) -> Result<AttributeDef>;
    /// Removes the definition and every user's value of it. With `if_version` (the
    /// `updated_at` the caller read) the delete itself is conditional: a definition changed
    /// since, also by a concurrent update, is `Stale` and nothing is removed.
    fn remove_attribute(&self, t: &TenantId, actor: &str, name: &str, if_version: Option<i64>) -> Result<()>;
    /// The tenant's schema, by name.
    fn attribute_defs(&self, t: &TenantId) -> Result<Vec<AttributeDef>>;
    fn user_attributes(&self, t: &TenantId, user: &UserId) -> Result<AttributeValues>;
    /// Checks `changes` against the schema as [`Self::set_user_attributes`] would, writing
    /// nothing (a new user's values, before the user exists).
    fn check_user_attributes(&self, t: &TenantId, changes: &[AttributeChange], by: EditableBy) -> Result<()>;
    /// Sets (`Some`) or clears (`None`) values of one user in one audited transaction, with
    /// every value checked against the schema. `by` is who edits: `EditableBy::User` may touch
    /// only user-editable attributes. Clearing a required attribute is refused. Returns the
    /// user's values after the change.
    fn set_user_attributes(
        &self,
        t: &TenantId,
        actor: &str,
        user: &UserId,
        changes: &[AttributeChange],
        by: EditableBy,
    ) -> Result<AttributeValues>;
}

type DefRow = (
    String,
    String,
    Option<String>,
    String,
    bool,
    bool,
    String,
    i64,
    i64,
);

fn def_of(r: DefRow) -> Result<AttributeDef> {
    Ok(AttributeDef {
        tenant_id: TenantId(r.0),
        name: r.1,
        label: r.2,
        kind: r.3.parse().map_err(StoreError::corrupt)?,
        required: r.4,
        unique: r.5,
        editable_by: r.6.parse().map_err(StoreError::corrupt)?,
        created_at: r.7,
        updated_at: r.8,
    })
}

fn defs(c: &mut crate::AnyConnection, t: &TenantId) -> Result<Vec<AttributeDef>> {
    attribute_defs::table
        .filter(attribute_defs::tenant_id.eq(t.as_str()))
        .order(attribute_defs::name.asc())
        .select((
            attribute_defs::tenant_id,
            attribute_defs::name,
            attribute_defs::label,
            attribute_defs::kind,
            attribute_defs::required,
            attribute_defs::is_unique,
            attribute_defs::editable_by,
            attribute_defs::created_at,
            attribute_defs::updated_at,
        ))
        .load::<DefRow>(c)?
        .into_iter()
        .map(def_of)
        .collect()
}

/// Where a value of attribute `name` is sealed (the AAD's column).
fn column(name: &str) -> String {
    format!("user_attributes.{name}")
}

/// The values the `value` column may hold for the JSON text `json`: its blind index and, for a
/// row written before sealing, the text itself.
pub(crate) fn value_candidates(vault: &Personal, name: &str, json: &str) -> Vec<String> {
    let mut out = vec![json.to_owned()];
    out.extend(vault.index(&format!("attr:{name}"), json));
    out
}

fn values(
    c: &mut crate::AnyConnection,
    vault: &Personal,
    t: &TenantId,
    user: &UserId,
) -> Result<AttributeValues> {
    let rows: Vec<(String, String, Option<String>)> = user_attributes::table
        .filter(user_attributes::tenant_id.eq(t.as_str()))
        .filter(user_attributes::user_id.eq(user.as_str()))
        .select((
            user_attributes::name,
            user_attributes::value,
            user_attributes::value_sealed,
        ))
        .load(c)?;
    if rows.is_empty() {
        return Ok(AttributeValues::new());
    }
    let key = crate::users::key_for(c, vault, t, user)?;
    rows.into_iter()
        .map(|(n, v, sealed)| {
            let value = match (sealed, &key) {
                (Some(sealed), Some(k)) => open_json(&**k, &column(&n), &sealed)?,
                (Some(_), None) => {
                    return Err(StoreError::Sealed(format!("user {user}'s key is gone")));
                }
                (None, _) => serde_json::from_str(&v).map_err(StoreError::corrupt)?,
            };
            Ok((n, value))
        })
        .collect()
}

fn refused(message: String) -> StoreError {
    StoreError::Invalid(ValidationError {
        field: "attribute",
        message,
    })
}

fn label(l: Option<&str>) -> Result<Option<String>> {
    l.map(|l| latchkey_core::validate::display_name("label", l))
        .transpose()
        .map_err(Into::into)
}

/// A checked change: the attribute, and its JSON text and unique key (`None`: clear it).
type CheckedChange = (String, Option<(String, Option<String>)>);

/// Checks each change against the schema and `by`.
fn checked(
    schema: &[AttributeDef],
    changes: &[AttributeChange],
    by: EditableBy,
) -> Result<Vec<CheckedChange>> {
    let mut out = Vec::with_capacity(changes.len());
    for (name, value) in changes {
        let Some(def) = schema.iter().find(|d| &d.name == name) else {
            return Err(refused(format!("{name}: no such attribute in this tenant")));
        };
        if by == EditableBy::User && def.editable_by != EditableBy::User {
            return Err(refused(format!("{name}: only an administrator may change it")));
        }
        let row = match value {
            None if def.required => return Err(refused(format!("{name}: a value is required"))),
            None => None,
            Some(v) => {
                let v = def.check(v).map_err(|e| refused(e.to_string()))?;
                Some((v.to_string(), def.unique_key(&v)))
            }
        };
        out.push((name.clone(), row));
    }
    Ok(out)
}

/// Writes `changes` (checked against the schema for `by`) to the values of `user`, who must
/// exist, in the caller's transaction; a unique value another user holds is `Conflict`.
/// Returns the names changed, for the audit event (values may be personal data).
pub(crate) fn write_values(
    c: &mut crate::AnyConnection,
    vault: &Personal,
    (t, user): (&TenantId, &UserId),
    changes: &[AttributeChange],
    by: EditableBy,
    now: i64,
) -> Result<Vec<String>> {
    let rows = checked(&defs(c, t)?, changes, by)?;
    let under = match crate::users::key_for(c, vault, t, user)? {
        Some(k) => Some((k, vault.required()?.clone())),
        None => None,
    };
    let key = |name: &str| {
        user_attributes::table
            .filter(user_attributes::tenant_id.eq(t.as_str()))
            .filter(user_attributes::user_id.eq(user.as_str()))
            .filter(user_attributes::name.eq(name.to_owned()))
    };
    for (name, row) in &rows {
        diesel::delete(key(name)).execute(c)?;
        if let Some((value, unique_key)) = row {
            // A sealed user's value is sealed under their key; `value` and `unique_key` hold
            // blind indexes, so lookups and the uniqueness rule work on equal values.
            let (value, unique_key, sealed) = match &under {
                Some((k, v)) => {
                    let purpose = format!("attr:{name}");
                    (
                        v.blind(&purpose, value),
                        unique_key.as_deref().map(|u| v.blind(&purpose, u)),
                        Some(k.seal(&column(name), value.as_bytes())?),
                    )
                }
                None => (value.clone(), unique_key.clone(), None),
            };
            diesel::insert_into(user_attributes::table)
                .values((
                    user_attributes::tenant_id.eq(t.as_str()),
                    user_attributes::user_id.eq(user.as_str()),
                    user_attributes::name.eq(name),
                    user_attributes::value.eq(value),
                    user_attributes::unique_key.eq(unique_key),
                    user_attributes::value_sealed.eq(sealed),
                    user_attributes::updated_at.eq(now),
                ))
                .execute(c)
                .map_err(|e| match StoreError::from(e) {
                    StoreError::Conflict(_) => {
                        StoreError::Conflict(format!("{name}: another user already has this value"))
                    }
                    other => other,
                })?;
        }
    }
    Ok(rows.into_iter().map(|(n, _)| n).collect())
}

/// Seals `user`'s attribute values written before sealing (see `Db::seal_plain_users`) under
/// `key`, in the caller's transaction; returns how many.
pub(crate) fn seal_plain_values(
    c: &mut crate::AnyConnection,
    vault: &Personal,
    (t, user): (&TenantId, &UserId),
    key: &Arc<dyn UserKey>,
) -> Result<usize> {
    let v = vault.required()?;
    let rows: Vec<(String, String, Option<String>)> = user_attributes::table
        .filter(user_attributes::tenant_id.eq(t.as_str()))
        .filter(user_attributes::user_id.eq(user.as_str()))
        .filter(user_attributes::value_sealed.is_null())
        .select((
            user_attributes::name,
            user_attributes::value,
            user_attributes::unique_key,
        ))
        .load(c)?;
    for (name, value, unique_key) in &rows {
        let purpose = format!("attr:{name}");
        diesel::update(
            user_attributes::table
                .filter(user_attributes::tenant_id.eq(t.as_str()))
                .filter(user_attributes::user_id.eq(user.as_str()))
                .filter(user_attributes::name.eq(name)),
        )
        .set((
            user_attributes::value.eq(v.blind(&purpose, value)),
            user_attributes::unique_key.eq(unique_key.as_deref().map(|u| v.blind(&purpose, u))),
            user_attributes::value_sealed.eq(Some(key.seal(&column(name), value.as_bytes())?)),
        ))
        .execute(c)?;
    }
    Ok(rows.len())
}

impl AttributeRepo for Db {
    fn define_attribute(&self, t: &TenantId, actor: &str, def: &AttributeDef) -> Result<AttributeDef> {
        let name = attribute_name(&def.name)?;
        let now = self.now();
        let def = AttributeDef {
            tenant_id: t.clone(),
            name,
            label: label(def.label.as_deref())?,
            created_at: now,
            updated_at: now,
            ..def.clone()
        };
        self.audited(t, |c| {
            let count: i64 = attribute_defs::table
                .filter(attribute_defs::tenant_id.eq(t.as_str()))
                .count()
                .get_result(c)?;
            if usize::try_from(count).unwrap_or(usize::MAX) >= MAX_ATTRIBUTES {
                return Err(StoreError::Conflict(format!(
                    "a tenant has at most {MAX_ATTRIBUTES} attributes"
                )));
            }
            diesel::insert_into(attribute_defs::table)
                .values((
                    attribute_defs::tenant_id.eq(t.as_str()),
                    attribute_defs::name.eq(&def.name),
                    attribute_defs::label.eq(&def.label),
                    attribute_defs::kind.eq(def.kind.as_str()),
                    attribute_defs::required.eq(def.required),
                    attribute_defs::is_unique.eq(def.unique),
                    attribute_defs::editable_by.eq(def.editable_by.as_str()),
                    attribute_defs::created_at.eq(def.created_at),
                    attribute_defs::updated_at.eq(def.updated_at),
                ))
                .execute(c)
                .map_err(|e| match StoreError::from(e) {
                    StoreError::Conflict(_) => {
                        StoreError::Conflict(format!("attribute {:?} already exists", def.name))
                    }
                    other => other,
                })?;
            let event = NewAuditEvent::success(
                actor,
                "attribute.define",
                format!("attribute:{}", def.name),
                json!({"kind": def.kind, "required": def.required, "unique": def.unique, "editable_by": def.editable_by}),
            );
            Ok((def.clone(), event))
        })
    }

    fn update_attribute(
        &self,
        t: &TenantId,
        actor: &str,
        name: &str,
        u: &AttributeUpdate,
    ) -> Result<AttributeDef> {
        let new_label = u.label.as_ref().map(|l| label(l.as_deref())).transpose()?;
        let now = self.now();
        self.audited(t, |c| {
            crate::db::xact_lock(c, &format!("latchkey-attribute:{t}:{name}"))?;
            let Some(mut def) = defs(c, t)?.into_iter().find(|d| d.name == name) else {
                return Err(StoreError::NotFound { what: "attribute" });
            };
            if let Some(v) = u.if_version.filter(|v| *v != def.updated_at) {
                return Err(StoreError::Stale(format!(
                    "attribute {name} changed since version {v}"
                )));
            }
            def.updated_at = now.max(def.updated_at + 1);
            if let Some(l) = &new_label {
                def.label.clone_from(l);
            }
            def.required = u.required.unwrap_or(def.required);
            def.editable_by = u.editable_by.unwrap_or(def.editable_by);
            let unique_changed = u.unique.is_some_and(|x| x != def.unique);
            def.unique = u.unique.unwrap_or(def.unique);
            diesel::update(
                attribute_defs::table
                    .filter(attribute_defs::tenant_id.eq(t.as_str()))
                    .filter(attribute_defs::name.eq(name)),
            )
            .set((
                attribute_defs::label.eq(&def.label),
                attribute_defs::required.eq(def.required),
                attribute_defs::is_unique.eq(def.unique),
                attribute_defs::editable_by.eq(def.editable_by.as_str()),
                attribute_defs::updated_at.eq(def.updated_at),
            ))
            .execute(c)?;
            if unique_changed {
                // Values are stored canonical, so the value itself is the unique key.
                let rows = user_attributes::table
                    .filter(user_attributes::tenant_id.eq(t.as_str()))
                    .filter(user_attributes::name.eq(name));
                let done = if def.unique {
                    diesel::update(rows)
                        .set(user_attributes::unique_key.eq(user_attributes::value.nullable()))
                        .execute(c)
                } else {
                    diesel::update(rows)
                        .set(user_attributes::unique_key.eq(None::<String>))
                        .execute(c)
                };
                done.map_err(|e| match StoreError::from(e) {
                    StoreError::Conflict(_) => StoreError::Conflict(format!(
                        "{name}: two users hold the same value, so it can't be made unique"
                    )),
                    other => other,
                })?;
            }
            let event = NewAuditEvent::success(
                actor,
                "attribute.update",
                format!("attribute:{name}"),
                json!({"required": def.required, "unique": def.unique, "editable_by": def.editable_by}),
            );
            Ok((def, event))
        })
    }

    fn remove_attribute(&self, t: &TenantId, actor: &str, name: &str, if_version: Option<i64>) -> Result<()> {
        self.audited(t, |c| {
            diesel::delete(
                user_attributes::table
                    .filter(user_attributes::tenant_id.eq(t.as_str()))
                    .filter(user_attributes::name.eq(name)),
            )
            .execute(c)?;
            let def = attribute_defs::table
                .filter(attribute_defs::tenant_id.eq(t.as_str()))
                .filter(attribute_defs::name.eq(name));
            // One statement checks the version and deletes: an update committed after the
            // caller read the definition makes it match nothing (and the values come back).
            let n = match if_version {
                Some(v) => diesel::delete(def.filter(attribute_defs::updated_at.eq(v))).execute(c)?,
                None => diesel::delete(def).execute(c)?,
            };
            if n == 0 {
                let exists: i64 = def.count().get_result(c)?;
                return Err(match if_version {
                    Some(v) if exists > 0 => {
                        StoreError::Stale(format!("attribute {name} changed since version {v}"))
                    }
                    _ => StoreError::NotFound { what: "attribute" },
                });
            }
            let event =
                NewAuditEvent::success(actor, "attribute.remove", format!("attribute:{name}"), json!({}));
            Ok(((), event))
        })
    }

    fn attribute_defs(&self, t: &TenantId) -> Result<Vec<AttributeDef>> {
        let mut conn = self.conn()?;
        defs(&mut conn, t)
    }

    fn user_attributes(&self, t: &TenantId, user: &UserId) -> Result<AttributeValues> {
        let vault = self.personal(t)?;
        let mut conn = self.conn()?;
        values(&mut conn, &vault, t, user)
    }

    fn check_user_attributes(&self, t: &TenantId, changes: &[AttributeChange], by: EditableBy) -> Result<()> {
        let mut conn = self.conn()?;
        checked(&defs(&mut conn, t)?, changes, by).map(drop)
    }

    fn set_user_attributes(
        &self,
        t: &TenantId,
        actor: &str,
        user: &UserId,
        changes: &[AttributeChange],
        by: EditableBy,
    ) -> Result<AttributeValues> {
        let now = self.now();
        let vault = self.personal(t)?;
        self.audited(t, |c| {
            let exists: i64 = users::table
                .filter(users::tenant_id.eq(t.as_str()))
                .filter(users::id.eq(user.as_str()))
                .count()
                .get_result(c)?;
            if exists == 0 {
                return Err(StoreError::NotFound { what: "user" });
            }
            let names = write_values(c, &vault, (t, user), changes, by, now)?;
            // Names only: values may be personal data, and the audit log is kept for years.
            let event = NewAuditEvent::success(
                actor,
                "user.attributes_update",
                format!("user:{user}"),
                json!({"attributes": names}),
            );
            Ok((values(c, &vault, t, user)?, event))
        })
    }
}
