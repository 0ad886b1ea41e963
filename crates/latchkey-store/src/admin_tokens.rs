//! Admin-API bearer tokens: one tenant, one role, optional expiry; stored as SHA-256.

use crate::db::{Db, parse_enum};
use crate::schema::admin_tokens;
use crate::{Result, StoreError};
use diesel::prelude::*;
use latchkey_core::{AdminRole, AdminToken, NewAuditEvent, TenantId, UnixMillis, validate};
use serde_json::json;

pub trait AdminTokenRepo {
    fn create_admin_token(
        &self,
        t: &TenantId,
        actor: &str,
        name: &str,
        role: AdminRole,
        token_hash: &str,
        expires_at: Option<UnixMillis>,
    ) -> Result<AdminToken>;
    /// The token with this hash, only if it belongs to tenant `t`.
    fn admin_token_by_hash(&self, t: &TenantId, token_hash: &str) -> Result<Option<AdminToken>>;
    fn list_admin_tokens(&self, t: &TenantId) -> Result<Vec<AdminToken>>;
    fn revoke_admin_token(&self, t: &TenantId, actor: &str, id: &str) -> Result<()>;
}

/// An `admin_tokens` row as stored (the hash is never read back).
#[derive(Queryable, Selectable)]
#[diesel(table_name = admin_tokens)]
struct Row {
    id: String,
    tenant_id: String,
    name: String,
    role: String,
    created_at: i64,
    expires_at: Option<i64>,
}

fn from_row(r: Row) -> Result<AdminToken> {
    Ok(AdminToken {
        id: r.id,
        tenant_id: TenantId(r.tenant_id),
        name: r.name,
        role: parse_enum("admin_tokens.role", &r.role)?,
        created_at: r.created_at,
        expires_at: r.expires_at,
    })
}

impl AdminTokenRepo for Db {
    fn create_admin_token(
        &self,
        t: &TenantId,
        actor: &str,
        name: &str,
        role: AdminRole,
        token_hash: &str,
        expires_at: Option<UnixMillis>,
    ) -> Result<AdminToken> {
        let name = validate::display_name("name", name)?;
        let token = AdminToken {
            id: self.new_id(),
            tenant_id: t.clone(),
            name,
            role,
            created_at: self.now(),
            expires_at,
        };
        self.audited(t, |c| {
            diesel::insert_into(admin_tokens::table)
                .values((
                    admin_tokens::id.eq(&token.id),
                    admin_tokens::tenant_id.eq(t.as_str()),
                    admin_tokens::name.eq(&token.name),
                    admin_tokens::role.eq(token.role.as_str()),
                    admin_tokens::token_hash.eq(token_hash),
                    admin_tokens::created_at.eq(token.created_at),
                    admin_tokens::expires_at.eq(token.expires_at),
                ))
                .execute(c)?;
            let event = NewAuditEvent::success(
                actor,
                "admin_token.create",
                format!("admin_token:{}", token.id),
                json!({"name": token.name, "role": token.role, "expires_at": token.expires_at}),
            );
            Ok((token.clone(), event))
        })
    }

    fn admin_token_by_hash(&self, t: &TenantId, token_hash: &str) -> Result<Option<AdminToken>> {
        let mut conn = self.conn()?;
        admin_tokens::table
            .filter(
                admin_tokens::tenant_id
                    .eq(t.as_str())
                    .and(admin_tokens::token_hash.eq(token_hash)),
            )
            .select(Row::as_select())
            .first(&mut *conn)
            .optional()?
            .map(from_row)
            .transpose()
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
                return Err(StoreError::NotFound { what: "admin token" });
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
}
