//! Roles and their assignment to users, within one tenant (least privilege starts here).

use crate::db::Db;
use crate::schema::{client_roles, roles, user_roles};
use crate::{Result, StoreError};
use diesel::prelude::*;
use latchkey_core::{AnyRole, NewAuditEvent, Role, RoleId, TenantId, UserId, validate};
use serde_json::json;

pub trait RoleRepo {
    fn create_role(&self, t: &TenantId, actor: &str, name: &str, description: Option<&str>) -> Result<Role>;
    fn list_roles(&self, t: &TenantId) -> Result<Vec<Role>>;
    fn delete_role(&self, t: &TenantId, actor: &str, id: &RoleId) -> Result<()>;
    /// Fails with `BadReference` when the user or role is not in tenant `t`.
    fn assign_role(&self, t: &TenantId, actor: &str, user: &UserId, role: &RoleId) -> Result<()>;
    fn unassign_role(&self, t: &TenantId, actor: &str, user: &UserId, role: &RoleId) -> Result<()>;
    fn roles_of_user(&self, t: &TenantId, user: &UserId) -> Result<Vec<Role>>;
    /// Sets (or, with `None`, clears) the description of a tenant role or a client role.
    fn describe_role(
        &self,
        t: &TenantId,
        actor: &str,
        role: &AnyRole,
        description: Option<&str>,
    ) -> Result<()>;
}

/// A `roles` row as stored.
#[derive(Queryable, Selectable)]
#[diesel(table_name = roles)]
struct Row {
    id: String,
    tenant_id: String,
    name: String,
    description: Option<String>,
    created_at: i64,
}

fn from_row(r: Row) -> Role {
    Role {
        id: RoleId(r.id),
        tenant_id: TenantId(r.tenant_id),
        name: r.name,
        description: r.description,
        created_at: r.created_at,
    }
}

/// Role names are identifiers portals check (`admin`, `billing:read`): scope-token characters.
pub(crate) fn role_name(name: &str) -> Result<()> {
    validate::scope(name).map_err(|_| {
        StoreError::Invalid(latchkey_core::ValidationError {
            field: "name",
            message: format!(
                "{name:?} is not a valid role name: 1-128 printable characters without spaces or quotes"
            ),
        })
    })
}

impl RoleRepo for Db {
    fn create_role(&self, t: &TenantId, actor: &str, name: &str, description: Option<&str>) -> Result<Role> {
        role_name(name)?;
        let role = Role {
            id: RoleId(self.new_id()),
            tenant_id: t.clone(),
            name: name.to_owned(),
            description: description.map(str::to_owned),
            created_at: self.now(),
        };
        self.audited(t, |c| {
            diesel::insert_into(roles::table)
                .values((
                    roles::id.eq(role.id.as_str()),
                    roles::tenant_id.eq(t.as_str()),
                    roles::name.eq(&role.name),
                    roles::description.eq(&role.description),
                    roles::created_at.eq(role.created_at),
                ))
                .execute(c)
                .map_err(|e| match StoreError::from(e) {
                    StoreError::Conflict(_) => {
                        StoreError::Conflict(format!("role {name:?} already exists in this tenant"))
                    }
                    other => other,
                })?;
            let event = NewAuditEvent::success(
                actor,
                "role.create",
                format!("role:{}", role.id),
                json!({"name": name}),
            );
            Ok((role.clone(), event))
        })
    }

    fn list_roles(&self, t: &TenantId) -> Result<Vec<Role>> {
        let mut conn = self.conn()?;
        Ok(roles::table
            .filter(roles::tenant_id.eq(t.as_str()))
            .select(Row::as_select())
            .order(roles::name.asc())
            .load(&mut *conn)?
            .into_iter()
            .map(from_row)
            .collect())
    }

    fn delete_role(&self, t: &TenantId, actor: &str, id: &RoleId) -> Result<()> {
        self.audited(t, |c| {
            let n = diesel::delete(
                roles::table.filter(roles::tenant_id.eq(t.as_str()).and(roles::id.eq(id.as_str()))),
            )
            .execute(c)?;
            if n == 0 {
                return Err(StoreError::NotFound { what: "role" });
            }
            Ok((
                (),
                NewAuditEvent::success(actor, "role.delete", format!("role:{id}"), json!({})),
            ))
        })
    }

    fn assign_role(&self, t: &TenantId, actor: &str, user: &UserId, role: &RoleId) -> Result<()> {
        self.audited(t, |c| {
            diesel::insert_into(user_roles::table)
                .values((
                    user_roles::tenant_id.eq(t.as_str()),
                    user_roles::user_id.eq(user.as_str()),
                    user_roles::role_id.eq(role.as_str()),
                    user_roles::created_at.eq(self.now()),
                ))
                .execute(c)
                .map_err(|e| match StoreError::from(e) {
                    StoreError::Conflict(_) => StoreError::Conflict("the user already has this role".into()),
                    StoreError::BadReference(_) => {
                        StoreError::BadReference("user or role does not exist in this tenant".into())
                    }
                    other => other,
                })?;
            let event = NewAuditEvent::success(
                actor,
                "role.assign",
                format!("user:{user}"),
                json!({"role_id": role.as_str()}),
            );
            Ok(((), event))
        })
    }

    fn unassign_role(&self, t: &TenantId, actor: &str, user: &UserId, role: &RoleId) -> Result<()> {
        self.audited(t, |c| {
            let n = diesel::delete(
                user_roles::table.filter(
                    user_roles::tenant_id
                        .eq(t.as_str())
                        .and(user_roles::user_id.eq(user.as_str()))
                        .and(user_roles::role_id.eq(role.as_str())),
                ),
            )
            .execute(c)?;
            if n == 0 {
                return Err(StoreError::NotFound {
                    what: "role assignment",
                });
            }
            let event = NewAuditEvent::success(
                actor,
                "role.unassign",
                format!("user:{user}"),
                json!({"role_id": role.as_str()}),
            );
            Ok(((), event))
        })
    }

    fn roles_of_user(&self, t: &TenantId, user: &UserId) -> Result<Vec<Role>> {
        let mut conn = self.conn()?;
        Ok(user_roles::table
            .inner_join(
                roles::table.on(roles::id
                    .eq(user_roles::role_id)
                    .and(roles::tenant_id.eq(user_roles::tenant_id))),
            )
            .filter(
                user_roles::tenant_id
                    .eq(t.as_str())
                    .and(user_roles::user_id.eq(user.as_str())),
            )
            .select(Row::as_select())
            .order(roles::name.asc())
            .load(&mut *conn)?
            .into_iter()
            .map(from_row)
            .collect())
    }

    fn describe_role(
        &self,
        t: &TenantId,
        actor: &str,
        role: &AnyRole,
        description: Option<&str>,
    ) -> Result<()> {
        self.audited(t, |c| {
            let (n, target) = match role {
                AnyRole::Tenant(id) => (
                    diesel::update(
                        roles::table.filter(roles::tenant_id.eq(t.as_str()).and(roles::id.eq(id.as_str()))),
                    )
                    .set(roles::description.eq(description))
                    .execute(c)?,
                    format!("role:{id}"),
                ),
                AnyRole::Client(id) => (
                    diesel::update(
                        client_roles::table.filter(
                            client_roles::tenant_id
                                .eq(t.as_str())
                                .and(client_roles::id.eq(id.as_str())),
                        ),
                    )
                    .set(client_roles::description.eq(description))
                    .execute(c)?,
                    format!("client_role:{id}"),
                ),
            };
            if n == 0 {
                return Err(StoreError::NotFound { what: "role" });
            }
            let event = NewAuditEvent::success(
                actor,
                "role.describe",
                target,
                json!({"description": description}),
            );
            Ok(((), event))
        })
    }
}
