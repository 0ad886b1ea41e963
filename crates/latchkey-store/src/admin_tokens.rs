//! Admin credentials and a tenant's custom admin roles. A credential is an `lka_` bearer token
//! (stored as SHA-256) or one of the tenant's clients (its OAuth access tokens); it holds admin
//! roles and single permissions, and starts with none.

use crate::conn::AnyConnection;
use crate::db::Db;
use crate::schema::{admin_roles, admin_tokens};
use crate::{Result, StoreError};
use diesel::prelude::*;
use latchkey_core::{
    AdminRoleDef, AdminToken, BuiltinAdminRole, ClientId, NewAuditEvent, Permissions, TenantId, UnixMillis,
    UserId, ValidationError, validate,
};
use serde_json::json;
use std::str::FromStr;

/// How a new credential proves itself.
#[derive(Debug, Clone)]
pub enum CredentialKind {
    /// The SHA-256 of an `lka_` token.
    TokenHash(String),
    /// A client of the tenant, by its OAuth access tokens.
    Client(ClientId),
    /// A user of the tenant, by signing in to the admin console with two factors.
    User(UserId),
    /// For a system credential: an operator's account in a tenant, by signing in there to the
    /// system console with two factors.
    Operator(TenantId, UserId),
}

/// A credential to create.
#[derive(Debug, Clone)]
pub struct NewAdminToken {
    pub name: String,
    pub roles: Vec<String>,
    pub permissions: Permissions,
    pub kind: CredentialKind,
    pub expires_at: Option<UnixMillis>,
}

/// What may change on a credential or a custom role: its grants.
#[derive(Debug, Clone, Default)]
pub struct Grants {
    pub roles: Option<Vec<String>>,
    pub permissions: Option<Permissions>,
    pub description: Option<String>,
}

pub trait AdminTokenRepo {
    fn create_admin_token(&self, t: &TenantId, actor: &str, new: &NewAdminToken) -> Result<AdminToken>;
    /// The token with this hash, only if it belongs to tenant `t`.
    fn admin_token_by_hash(&self, t: &TenantId, token_hash: &str) -> Result<Option<AdminToken>>;
    /// The credential of client `client` of tenant `t`, if it is one.
    fn admin_token_by_client(&self, t: &TenantId, client: &ClientId) -> Result<Option<AdminToken>>;
    /// The console credential of user `user` of tenant `t`, if they are an admin.
    fn admin_token_by_user(&self, t: &TenantId, user: &UserId) -> Result<Option<AdminToken>>;
    fn admin_token(&self, t: &TenantId, id: &str) -> Result<Option<AdminToken>>;
    fn list_admin_tokens(&self, t: &TenantId) -> Result<Vec<AdminToken>>;
    /// Replaces the credential's roles and/or permissions (`if_version`: its `updated_at`).
    fn update_admin_token(
        &self,
        t: &TenantId,
        actor: &str,
        id: &str,
        if_version: Option<UnixMillis>,
        grants: &Grants,
    ) -> Result<AdminToken>;
    fn revoke_admin_token(&self, t: &TenantId, actor: &str, id: &str) -> Result<()>;
    /// Everything the credential may do: its permissions and those of its roles, read now (a
    /// changed custom role changes its holders at once).
    fn effective_permissions(&self, t: &TenantId, token: &AdminToken) -> Result<Permissions>;

    fn create_admin_role(
        &self,
        t: &TenantId,
        actor: &str,
        name: &str,
        description: &str,
        permissions: Permissions,
    ) -> Result<AdminRoleDef>;
    fn admin_role(&self, t: &TenantId, name: &str) -> Result<Option<AdminRoleDef>>;
    fn list_admin_roles(&self, t: &TenantId) -> Result<Vec<AdminRoleDef>>;
    fn update_admin_role(
        &self,
        t: &TenantId,
        actor: &str,
        name: &str,
        if_version: Option<UnixMillis>,
        grants: &Grants,
    ) -> Result<AdminRoleDef>;
    /// Deletes a custom role no credential holds (409 names how many still do).
    fn delete_admin_role(&self, t: &TenantId, actor: &str, name: &str) -> Result<()>;
}

/// An `admin_tokens` row as stored (the hash is never read back).
#[derive(Queryable, Selectable)]
#[diesel(table_name = admin_tokens)]
struct Row {
    id: String,
    tenant_id: String,
    name: String,
    roles: String,
    permissions: String,
    client_id: Option<String>,
    user_id: Option<String>,
    created_at: i64,
    expires_at: Option<i64>,
    updated_at: i64,
}

fn corrupt(what: &str, e: &str) -> StoreError {
    StoreError::corrupt(format!("{what}: {e}"))
}

fn from_row(r: Row) -> Result<AdminToken> {
    Ok(AdminToken {
        id: r.id,
        tenant_id: TenantId(r.tenant_id),
        name: r.name,
        roles: r.roles.split_whitespace().map(str::to_owned).collect(),
        permissions: Permissions::from_words(&r.permissions)
            .map_err(|e| corrupt("admin_tokens.permissions", &e))?,
        client_id: r.client_id.map(ClientId),
        user_id: r.user_id.map(UserId),
        created_at: r.created_at,
        expires_at: r.expires_at,
        updated_at: r.updated_at,
    })
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = admin_roles)]
struct RoleRow {
    name: String,
    description: String,
    permissions: String,
    created_at: i64,
    updated_at: i64,
}

fn role_from_row(r: RoleRow) -> Result<AdminRoleDef> {
    Ok(AdminRoleDef {
        permissions: Permissions::from_words(&r.permissions)
            .map_err(|e| corrupt("admin_roles.permissions", &e))?,
        name: r.name,
        description: r.description,
        created_at: r.created_at,
        updated_at: r.updated_at,
    })
}

fn invalid(field: &'static str, message: impl Into<String>) -> StoreError {
    StoreError::Invalid(ValidationError {
        field,
        message: message.into(),
    })
}

/// A tenant credential or role never carries `system:` permissions: those act on every tenant.
fn tenant_scoped(field: &'static str, p: Permissions) -> Result<()> {
    match p.iter().find(|p| p.is_system()) {
        Some(sys) => Err(invalid(
            field,
            format!("{sys} is a system permission; a tenant's credentials cannot hold it"),
        )),
        None => Ok(()),
    }
}

/// Role names: each built-in (not the system one) or a custom role of the tenant, once.
fn check_roles(c: &mut AnyConnection, t: &TenantId, roles: &[String]) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for r in roles {
        let r = r.trim();
        match BuiltinAdminRole::from_str(r) {
            Ok(BuiltinAdminRole::SystemAdmin) => {
                return Err(invalid(
                    "roles",
                    "system-admin acts on every tenant; a tenant's credentials cannot hold it",
                ));
            }
            Ok(_) => {}
            Err(_) => {
                let n: i64 = admin_roles::table
                    .filter(admin_roles::tenant_id.eq(t.as_str()).and(admin_roles::name.eq(r)))
                    .count()
                    .get_result(c)?;
                if n == 0 {
                    return Err(StoreError::BadReference(format!(
                        "no admin role {r:?} in this tenant (built-in: tenant-admin, user-manager, auditor, read-only)"
                    )));
                }
            }
        }
        if !out.iter().any(|o| o == r) {
            out.push(r.to_owned());
        }
    }
    Ok(out)
}

fn role_name(name: &str) -> Result<String> {
    let n = name.trim();
    let ok = (2..=63).contains(&n.len())
        && n.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if !ok {
        return Err(invalid("name", "an admin role name is 2-63 of a-z, 0-9, - and _"));
    }
    if BuiltinAdminRole::from_str(n).is_ok() {
        return Err(StoreError::Conflict(format!("{n} is a built-in admin role")));
    }
    Ok(n.to_owned())
}

fn load(c: &mut AnyConnection, t: &TenantId, id: &str) -> Result<AdminToken> {
    admin_tokens::table
        .filter(
            admin_tokens::tenant_id
                .eq(t.as_str())
                .and(admin_tokens::id.eq(id)),
        )
        .select(Row::as_select())
        .first(c)
        .optional()?
        .map(from_row)
        .transpose()?
        .ok_or(StoreError::NotFound {
            what: "admin credential",
        })
}

fn load_role(c: &mut AnyConnection, t: &TenantId, name: &str) -> Result<AdminRoleDef> {
    admin_roles::table
        .filter(
            admin_roles::tenant_id
                .eq(t.as_str())
                .and(admin_roles::name.eq(name)),
        )
        .select(RoleRow::as_select())
        .first(c)
        .optional()?
        .map(role_from_row)
        .transpose()?
        .ok_or(StoreError::NotFound { what: "admin role" })
}

/// Gives `tok` the roles and permissions asked (those `Some`) and a new version; answers the
/// audit details (each from → to).
pub(crate) fn regrant(
    tok: &mut AdminToken,
    roles: Option<Vec<String>>,
    permissions: Option<Permissions>,
    now: UnixMillis,
) -> serde_json::Value {
    let before = (tok.roles.clone(), tok.permissions);
    if let Some(r) = roles {
        tok.roles = r;
    }
    if let Some(p) = permissions {
        tok.permissions = p;
    }
    tok.updated_at = now.max(tok.updated_at + 1);
    json!({"roles": {"from": before.0, "to": tok.roles},
           "permissions": {"from": before.1, "to": tok.permissions}})
}

fn stale(what: &str, v: UnixMillis) -> StoreError {
    StoreError::Stale(format!("{what} changed since version {v}"))
}

impl Db {
    /// The one credential `find` selects.
    fn one_token(
        &self,
        find: impl FnOnce(&mut AnyConnection) -> QueryResult<Option<Row>>,
    ) -> Result<Option<AdminToken>> {
        let mut conn = self.conn()?;
        find(&mut conn)?.map(from_row).transpose()
    }
}

impl AdminTokenRepo for Db {
    fn create_admin_token(&self, t: &TenantId, actor: &str, new: &NewAdminToken) -> Result<AdminToken> {
        let name = validate::display_name("name", &new.name)?;
        tenant_scoped("permissions", new.permissions)?;
        let now = self.now();
        let id = self.new_id();
        self.audited(t, |c| {
            let roles = check_roles(c, t, &new.roles)?;
            let (hash, client, user) = match &new.kind {
                CredentialKind::TokenHash(h) => (Some(h.as_str()), None, None),
                CredentialKind::Client(cid) => (None, Some(cid.clone()), None),
                CredentialKind::User(uid) => (None, None, Some(uid.clone())),
                CredentialKind::Operator(..) => {
                    return Err(invalid(
                        "kind",
                        "an operator is a system credential, not a tenant's",
                    ));
                }
            };
            let token = AdminToken {
                id: id.clone(),
                tenant_id: t.clone(),
                name: name.clone(),
                roles,
                permissions: new.permissions,
                client_id: client,
                user_id: user,
                created_at: now,
                expires_at: new.expires_at,
                updated_at: now,
            };
            diesel::insert_into(admin_tokens::table)
                .values((
                    admin_tokens::id.eq(&token.id),
                    admin_tokens::tenant_id.eq(t.as_str()),
                    admin_tokens::name.eq(&token.name),
                    admin_tokens::roles.eq(token.roles.join(" ")),
                    admin_tokens::permissions.eq(token.permissions.to_words()),
                    admin_tokens::token_hash.eq(hash),
                    admin_tokens::client_id.eq(token.client_id.as_ref().map(ClientId::as_str)),
                    admin_tokens::user_id.eq(token.user_id.as_ref().map(UserId::as_str)),
                    admin_tokens::created_at.eq(token.created_at),
                    admin_tokens::expires_at.eq(token.expires_at),
                    admin_tokens::updated_at.eq(token.updated_at),
                ))
                .execute(c)?;
            let event = NewAuditEvent::success(
                actor,
                "admin_token.create",
                format!("admin_token:{}", token.id),
                json!({"name": token.name, "roles": token.roles, "permissions": token.permissions,
                       "client_id": token.client_id, "user_id": token.user_id,
                       "expires_at": token.expires_at}),
            );
            Ok((token.clone(), event))
        })
    }

    fn admin_token_by_hash(&self, t: &TenantId, token_hash: &str) -> Result<Option<AdminToken>> {
        self.one_token(|c| {
            admin_tokens::table
                .filter(
                    admin_tokens::tenant_id
                        .eq(t.as_str())
                        .and(admin_tokens::token_hash.eq(token_hash)),
                )
                .select(Row::as_select())
                .first(c)
                .optional()
        })
    }

    fn admin_token_by_client(&self, t: &TenantId, client: &ClientId) -> Result<Option<AdminToken>> {
        self.one_token(|c| {
            admin_tokens::table
                .filter(
                    admin_tokens::tenant_id
                        .eq(t.as_str())
                        .and(admin_tokens::client_id.eq(client.as_str())),
                )
                .select(Row::as_select())
                .first(c)
                .optional()
        })
    }

    fn admin_token_by_user(&self, t: &TenantId, user: &UserId) -> Result<Option<AdminToken>> {
        self.one_token(|c| {
            admin_tokens::table
                .filter(
                    admin_tokens::tenant_id
                        .eq(t.as_str())
                        .and(admin_tokens::user_id.eq(user.as_str())),
                )
                .select(Row::as_select())
                .first(c)
                .optional()
        })
    }

    fn admin_token(&self, t: &TenantId, id: &str) -> Result<Option<AdminToken>> {
        let mut conn = self.conn()?;
        match load(&mut conn, t, id) {
            Ok(tok) => Ok(Some(tok)),
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn list_admin_tokens(&self, t: &TenantId) -> Result<Vec<AdminToken>> {
        let mut conn = self.conn()?;
        admin_tokens::table
            .filter(admin_tokens::tenant_id.eq(t.as_str()))
            .select(Row::as_select())
            .order((admin_tokens::created_at.asc(), admin_tokens::id.asc()))
            .load(&mut *conn)?
            .into_iter()
            .map(from_row)
            .collect()
    }

    fn update_admin_token(
        &self,
        t: &TenantId,
        actor: &str,
        id: &str,
        if_version: Option<UnixMillis>,
        grants: &Grants,
    ) -> Result<AdminToken> {
        if let Some(p) = grants.permissions {
            tenant_scoped("permissions", p)?;
        }
        let now = self.now();
        self.audited(t, |c| {
            let mut tok = load(c, t, id)?;
            if let Some(v) = if_version.filter(|v| *v != tok.updated_at) {
                return Err(stale("admin credential", v));
            }
            let roles = grants
                .roles
                .as_deref()
                .map(|r| check_roles(c, t, r))
                .transpose()?;
            let details = regrant(&mut tok, roles, grants.permissions, now);
            diesel::update(
                admin_tokens::table.filter(
                    admin_tokens::tenant_id
                        .eq(t.as_str())
                        .and(admin_tokens::id.eq(id)),
                ),
            )
            .set((
                admin_tokens::roles.eq(tok.roles.join(" ")),
                admin_tokens::permissions.eq(tok.permissions.to_words()),
                admin_tokens::updated_at.eq(tok.updated_at),
            ))
            .execute(c)?;
            let event =
                NewAuditEvent::success(actor, "admin_token.update", format!("admin_token:{id}"), details);
            Ok((tok.clone(), event))
        })
    }

    fn revoke_admin_token(&self, t: &TenantId, actor: &str, id: &str) -> Result<()> {
        self.audited(t, |c| {
            let n = diesel::delete(
                admin_tokens::table.filter(
                    admin_tokens::tenant_id
                        .eq(t.as_str())
                        .and(admin_tokens::id.eq(id)),
                ),
            )
            .execute(c)?;
            if n == 0 {
                return Err(StoreError::NotFound {
                    what: "admin credential",
                });
            }
            Ok((
                (),
                NewAuditEvent::success(
                    actor,
                    "admin_token.revoke",
                    format!("admin_token:{id}"),
                    json!({}),
                ),
            ))
        })
    }

    fn effective_permissions(&self, t: &TenantId, token: &AdminToken) -> Result<Permissions> {
        let mut all = token.permissions;
        let mut custom = Vec::new();
        for r in &token.roles {
            match BuiltinAdminRole::from_str(r) {
                Ok(BuiltinAdminRole::SystemAdmin) => {}
                Ok(b) => all = all.union(b.permissions()),
                Err(_) => custom.push(r.as_str()),
            }
        }
        if custom.is_empty() {
            return Ok(all);
        }
        let mut conn = self.conn()?;
        let words: Vec<String> = admin_roles::table
            .filter(
                admin_roles::tenant_id
                    .eq(t.as_str())
                    .and(admin_roles::name.eq_any(custom)),
            )
            .select(admin_roles::permissions)
            .load(&mut *conn)?;
        for w in words {
            let p = Permissions::from_words(&w).map_err(|e| corrupt("admin_roles.permissions", &e))?;
            all = all.union(p);
        }
        // Never a system permission through a tenant, whatever the rows say.
        Ok(all
            .iter()
            .filter(|p| !p.is_system())
            .fold(Permissions::NONE, Permissions::with))
    }

    fn create_admin_role(
        &self,
        t: &TenantId,
        actor: &str,
        name: &str,
        description: &str,
        permissions: Permissions,
    ) -> Result<AdminRoleDef> {
        let name = role_name(name)?;
        tenant_scoped("permissions", permissions)?;
        let description = description.trim().chars().take(500).collect::<String>();
        let now = self.now();
        self.audited(t, |c| {
            let role = AdminRoleDef {
                name: name.clone(),
                description: description.clone(),
                permissions,
                created_at: now,
                updated_at: now,
            };
            diesel::insert_into(admin_roles::table)
                .values((
                    admin_roles::tenant_id.eq(t.as_str()),
                    admin_roles::name.eq(&role.name),
                    admin_roles::description.eq(&role.description),
                    admin_roles::permissions.eq(role.permissions.to_words()),
                    admin_roles::created_at.eq(now),
                    admin_roles::updated_at.eq(now),
                ))
                .execute(c)
                .map_err(|e| match StoreError::from(e) {
                    StoreError::Conflict(_) => {
                        StoreError::Conflict(format!("admin role {name} already exists"))
                    }
                    other => other,
                })?;
            let event = NewAuditEvent::success(
                actor,
                "admin_role.create",
                format!("admin_role:{name}"),
                json!({"permissions": permissions}),
            );
            Ok((role, event))
        })
    }

    fn admin_role(&self, t: &TenantId, name: &str) -> Result<Option<AdminRoleDef>> {
        let mut conn = self.conn()?;
        match load_role(&mut conn, t, name) {
            Ok(r) => Ok(Some(r)),
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn list_admin_roles(&self, t: &TenantId) -> Result<Vec<AdminRoleDef>> {
        let mut conn = self.conn()?;
        admin_roles::table
            .filter(admin_roles::tenant_id.eq(t.as_str()))
            .select(RoleRow::as_select())
            .order(admin_roles::name.asc())
            .load(&mut *conn)?
            .into_iter()
            .map(role_from_row)
            .collect()
    }

    fn update_admin_role(
        &self,
        t: &TenantId,
        actor: &str,
        name: &str,
        if_version: Option<UnixMillis>,
        grants: &Grants,
    ) -> Result<AdminRoleDef> {
        if let Some(p) = grants.permissions {
            tenant_scoped("permissions", p)?;
        }
        if grants.roles.is_some() {
            return Err(invalid(
                "roles",
                "an admin role holds permissions, not other roles",
            ));
        }
        let now = self.now();
        self.audited(t, |c| {
            let mut role = load_role(c, t, name)?;
            if let Some(v) = if_version.filter(|v| *v != role.updated_at) {
                return Err(stale("admin role", v));
            }
            let before = role.permissions;
            if let Some(p) = grants.permissions {
                role.permissions = p;
            }
            if let Some(d) = &grants.description {
                role.description = d.trim().chars().take(500).collect();
            }
            role.updated_at = now.max(role.updated_at + 1);
            diesel::update(
                admin_roles::table.filter(
                    admin_roles::tenant_id
                        .eq(t.as_str())
                        .and(admin_roles::name.eq(name)),
                ),
            )
            .set((
                admin_roles::permissions.eq(role.permissions.to_words()),
                admin_roles::description.eq(&role.description),
                admin_roles::updated_at.eq(role.updated_at),
            ))
            .execute(c)?;
            let event = NewAuditEvent::success(
                actor,
                "admin_role.update",
                format!("admin_role:{name}"),
                json!({"permissions": {"from": before, "to": role.permissions}}),
            );
            Ok((role.clone(), event))
        })
    }

    fn delete_admin_role(&self, t: &TenantId, actor: &str, name: &str) -> Result<()> {
        self.audited(t, |c| {
            load_role(c, t, name)?;
            let holders = admin_tokens::table
                .filter(admin_tokens::tenant_id.eq(t.as_str()))
                .select(admin_tokens::roles)
                .load::<String>(c)?
                .iter()
                .filter(|r| r.split_whitespace().any(|x| x == name))
                .count();
            if holders > 0 {
                return Err(StoreError::Conflict(format!(
                    "admin role {name} is held by {holders} credential(s); take it from them first"
                )));
            }
            diesel::delete(
                admin_roles::table.filter(
                    admin_roles::tenant_id
                        .eq(t.as_str())
                        .and(admin_roles::name.eq(name)),
                ),
            )
            .execute(c)?;
            Ok((
                (),
                NewAuditEvent::success(
                    actor,
                    "admin_role.delete",
                    format!("admin_role:{name}"),
                    json!({}),
                ),
            ))
        })
    }
}
