//! System credentials: `lks_` bearer tokens (stored as SHA-256) for the installation's scope,
//! holding only `system:` permissions (one by one or by the built-in role `system-admin`).
//! Their changes are recorded in the audit chain [`TenantId::SYSTEM`].

use crate::admin_tokens::{CredentialKind, Grants, NewAdminToken, regrant};
use crate::db::Db;
use crate::schema::system_tokens;
use crate::{Result, StoreError};
use diesel::prelude::*;
use latchkey_core::{
    AdminToken, BuiltinAdminRole, NewAuditEvent, Permissions, TenantId, UnixMillis, UserId, ValidationError,
    validate,
};
use serde_json::json;
use std::str::FromStr;

pub trait SystemTokenRepo {
    /// A new system credential; `new.kind` is a token hash or an operator.
    fn create_system_token(&self, actor: &str, new: &NewAdminToken) -> Result<AdminToken>;
    fn system_token_by_hash(&self, token_hash: &str) -> Result<Option<AdminToken>>;
    /// The system credential of the operator `user` of tenant `t`, if they are one.
    fn system_token_by_user(&self, t: &TenantId, user: &UserId) -> Result<Option<AdminToken>>;
    fn system_token(&self, id: &str) -> Result<Option<AdminToken>>;
    fn list_system_tokens(&self) -> Result<Vec<AdminToken>>;
    /// Replaces its roles and/or permissions (`if_version`: its `updated_at`).
    fn update_system_token(
        &self,
        actor: &str,
        id: &str,
        if_version: Option<UnixMillis>,
        grants: &Grants,
    ) -> Result<AdminToken>;
    fn revoke_system_token(&self, actor: &str, id: &str) -> Result<()>;
}

/// What a system credential may do: its permissions and those of `system-admin` if it holds it.
pub fn system_permissions(token: &AdminToken) -> Permissions {
    token
        .roles
        .iter()
        .filter(|r| r.as_str() == BuiltinAdminRole::SystemAdmin.as_str())
        .fold(token.permissions, |all, _| {
            all.union(BuiltinAdminRole::SystemAdmin.permissions())
        })
        .iter()
        .filter(|p| p.is_system())
        .fold(Permissions::NONE, Permissions::with)
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = system_tokens)]
struct Row {
    id: String,
    name: String,
    roles: String,
    permissions: String,
    created_at: i64,
    user_id: Option<String>,
    expires_at: Option<i64>,
    updated_at: i64,
}

fn from_row(r: Row) -> Result<AdminToken> {
    Ok(AdminToken {
        id: r.id,
        tenant_id: TenantId::system(),
        name: r.name,
        roles: r.roles.split_whitespace().map(str::to_owned).collect(),
        permissions: Permissions::from_words(&r.permissions)
            .map_err(|e| StoreError::corrupt(format!("system_tokens.permissions: {e}")))?,
        client_id: None,
        user_id: r.user_id.map(UserId),
        created_at: r.created_at,
        expires_at: r.expires_at,
        updated_at: r.updated_at,
    })
}

fn invalid(field: &'static str, message: impl Into<String>) -> StoreError {
    StoreError::Invalid(ValidationError {
        field,
        message: message.into(),
    })
}

/// Only `system:` permissions and the one system role: a system credential acts on the
/// installation, a tenant's objects are reached with that tenant's credentials.
fn system_scoped(roles: Option<&[String]>, permissions: Option<Permissions>) -> Result<Vec<String>> {
    if let Some(p) = permissions.and_then(|p| p.iter().find(|p| !p.is_system())) {
        return Err(invalid(
            "permissions",
            format!("{p} is a tenant permission; a system credential holds only system: ones"),
        ));
    }
    let mut out: Vec<String> = Vec::new();
    for r in roles.unwrap_or_default() {
        let r = r.trim();
        if BuiltinAdminRole::from_str(r) != Ok(BuiltinAdminRole::SystemAdmin) {
            return Err(invalid(
                "roles",
                format!("{r:?} is not a system role (the one system role is system-admin)"),
            ));
        }
        if !out.iter().any(|o| o == r) {
            out.push(r.to_owned());
        }
    }
    Ok(out)
}

fn chain() -> TenantId {
    TenantId::system()
}

fn load(c: &mut crate::AnyConnection, id: &str) -> Result<AdminToken> {
    system_tokens::table
        .find(id)
        .select(Row::as_select())
        .first(c)
        .optional()?
        .map(from_row)
        .transpose()?
        .ok_or(StoreError::NotFound {
            what: "system credential",
        })
}

impl SystemTokenRepo for Db {
    fn create_system_token(&self, actor: &str, new: &NewAdminToken) -> Result<AdminToken> {
        let name = validate::display_name("name", &new.name)?;
        let roles = system_scoped(Some(&new.roles), Some(new.permissions))?;
        let (hash, operator) = match &new.kind {
            CredentialKind::TokenHash(h) => (Some(h.as_str()), None),
            CredentialKind::Operator(t, u) => (None, Some((t.clone(), u.clone()))),
            _ => {
                return Err(invalid(
                    "kind",
                    "a system credential is an lks_ token or an operator",
                ));
            }
        };
        let now = self.now();
        let token = AdminToken {
            id: self.new_id(),
            tenant_id: chain(),
            name,
            roles,
            permissions: new.permissions,
            client_id: None,
            user_id: operator.as_ref().map(|(_, u)| u.clone()),
            created_at: now,
            expires_at: new.expires_at,
            updated_at: now,
        };
        self.audited(&chain(), |c| {
            diesel::insert_into(system_tokens::table)
                .values((
                    system_tokens::id.eq(&token.id),
                    system_tokens::name.eq(&token.name),
                    system_tokens::roles.eq(token.roles.join(" ")),
                    system_tokens::permissions.eq(token.permissions.to_words()),
                    system_tokens::token_hash.eq(hash),
                    system_tokens::user_tenant_id.eq(operator.as_ref().map(|(t, _)| t.as_str())),
                    system_tokens::user_id.eq(operator.as_ref().map(|(_, u)| u.as_str())),
                    system_tokens::created_at.eq(token.created_at),
                    system_tokens::expires_at.eq(token.expires_at),
                    system_tokens::updated_at.eq(token.updated_at),
                ))
                .execute(c)?;
            let event = NewAuditEvent::success(
                actor,
                "system_token.create",
                format!("system_token:{}", token.id),
                json!({"name": token.name, "roles": token.roles, "permissions": token.permissions,
                       "operator": operator.as_ref().map(|(t, u)| format!("{t}/{u}")),
                       "expires_at": token.expires_at}),
            );
            Ok((token.clone(), event))
        })
    }

    fn system_token_by_hash(&self, token_hash: &str) -> Result<Option<AdminToken>> {
        let mut conn = self.conn()?;
        system_tokens::table
            .filter(system_tokens::token_hash.eq(token_hash))
            .select(Row::as_select())
            .first(&mut *conn)
            .optional()?
            .map(from_row)
            .transpose()
    }

    fn system_token_by_user(&self, t: &TenantId, user: &UserId) -> Result<Option<AdminToken>> {
        let mut conn = self.conn()?;
        system_tokens::table
            .filter(
                system_tokens::user_tenant_id
                    .eq(t.as_str())
                    .and(system_tokens::user_id.eq(user.as_str())),
            )
            .select(Row::as_select())
            .first(&mut *conn)
            .optional()?
            .map(from_row)
            .transpose()
    }

    fn system_token(&self, id: &str) -> Result<Option<AdminToken>> {
        let mut conn = self.conn()?;
        match load(&mut conn, id) {
            Ok(t) => Ok(Some(t)),
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn list_system_tokens(&self) -> Result<Vec<AdminToken>> {
        let mut conn = self.conn()?;
        system_tokens::table
            .select(Row::as_select())
            .order((system_tokens::created_at.asc(), system_tokens::id.asc()))
            .load(&mut *conn)?
            .into_iter()
            .map(from_row)
            .collect()
    }

    fn update_system_token(
        &self,
        actor: &str,
        id: &str,
        if_version: Option<UnixMillis>,
        grants: &Grants,
    ) -> Result<AdminToken> {
        let roles = grants
            .roles
            .as_deref()
            .map(|r| system_scoped(Some(r), None))
            .transpose()?;
        system_scoped(None, grants.permissions)?;
        let now = self.now();
        self.audited(&chain(), |c| {
            let mut tok = load(c, id)?;
            if let Some(v) = if_version.filter(|v| *v != tok.updated_at) {
                return Err(StoreError::Stale(format!(
                    "system credential changed since version {v}"
                )));
            }
            let details = regrant(&mut tok, roles.clone(), grants.permissions, now);
            diesel::update(system_tokens::table.find(id))
                .set((
                    system_tokens::roles.eq(tok.roles.join(" ")),
                    system_tokens::permissions.eq(tok.permissions.to_words()),
                    system_tokens::updated_at.eq(tok.updated_at),
                ))
                .execute(c)?;
            let event = NewAuditEvent::success(
                actor,
                "system_token.update",
                format!("system_token:{id}"),
                details,
            );
            Ok((tok.clone(), event))
        })
    }

    fn revoke_system_token(&self, actor: &str, id: &str) -> Result<()> {
        self.audited(&chain(), |c| {
            if diesel::delete(system_tokens::table.find(id)).execute(c)? == 0 {
                return Err(StoreError::NotFound {
                    what: "system credential",
                });
            }
            let event = NewAuditEvent::success(
                actor,
                "system_token.revoke",
                format!("system_token:{id}"),
                json!({}),
            );
            Ok(((), event))
        })
    }
}
