//! Tenants: each is its own issuer with its own users, clients, policy and audit chain.

use crate::db::{Db, from_json, start_chain, to_json};
use crate::schema::tenants;
use crate::{Result, StoreError};
use diesel::IntoSql;
use diesel::prelude::*;
use latchkey_core::{NewAuditEvent, Tenant, TenantId, TenantPolicy, UnixMillis, validate};
use serde_json::json;

#[derive(Debug, Clone)]
pub struct NewTenant {
    pub slug: String,
    pub display_name: Option<String>,
    pub policy: TenantPolicy,
}

#[derive(Debug, Clone, Default)]
pub struct TenantUpdate {
    pub display_name: Option<String>,
    pub policy: Option<TenantPolicy>,
}

pub trait TenantRepo {
    fn create_tenant(&self, actor: &str, new: &NewTenant) -> Result<Tenant>;
    fn tenant(&self, id: &TenantId) -> Result<Option<Tenant>>;
    fn tenant_by_slug(&self, slug: &str) -> Result<Option<Tenant>>;
    fn list_tenants(&self) -> Result<Vec<Tenant>>;
    fn update_tenant(&self, id: &TenantId, actor: &str, change: &TenantUpdate) -> Result<Tenant> {
        self.update_tenant_if(id, actor, change, None)
    }
    /// `update_tenant` only while the tenant's version (`updated_at`) is `if_version`, else
    /// `Stale` with nothing written; the version moves on with every change.
    fn update_tenant_if(
        &self,
        id: &TenantId,
        actor: &str,
        change: &TenantUpdate,
        if_version: Option<UnixMillis>,
    ) -> Result<Tenant>;
    /// Deletes the tenant and everything it owns. Its audit chain stays (with the deletion as
    /// its last event) so its history remains verifiable.
    /// Deletes the tenant with everything it holds (its audit chain stays). With `if_version`
    /// (the `updated_at` the caller read) a tenant changed since is `Stale`, checked by the
    /// delete itself.
    fn delete_tenant(&self, id: &TenantId, actor: &str, if_version: Option<UnixMillis>) -> Result<()>;
}

/// A `tenants` row as stored.
#[derive(Queryable, Selectable)]
#[diesel(table_name = tenants)]
struct Row {
    id: String,
    slug: String,
    display_name: String,
    policy: String,
    created_at: i64,
    updated_at: i64,
}

fn from_row(r: Row) -> Result<Tenant> {
    Ok(Tenant {
        id: TenantId(r.id),
        slug: r.slug,
        display_name: r.display_name,
        policy: from_json("tenants.policy", &r.policy)?,
        created_at: r.created_at,
        updated_at: r.updated_at,
    })
}

fn find_tenant(c: &mut crate::AnyConnection, id: &TenantId) -> Result<Tenant> {
    let row = tenants::table
        .find(id.as_str())
        .select(Row::as_select())
        .first(c)
        .optional()?;
    row.map(from_row)
        .transpose()?
        .ok_or(StoreError::NotFound { what: "tenant" })
}

/// Tells tenant caches, once the change is over (committed or not), to look again.
struct Changed<'a>(&'a Db);

impl Drop for Changed<'_> {
    fn drop(&mut self) {
        self.0.tenant_changed();
    }
}

impl TenantRepo for Db {
    fn create_tenant(&self, actor: &str, new: &NewTenant) -> Result<Tenant> {
        validate::slug(&new.slug)?;
        let display_name =
            validate::display_name("display_name", new.display_name.as_deref().unwrap_or(&new.slug))?;
        let now = self.now();
        let tenant = Tenant {
            id: TenantId(self.new_id()),
            slug: new.slug.clone(),
            display_name,
            policy: new.policy.clone(),
            created_at: now,
            updated_at: now,
        };
        self.write(|c| {
            diesel::insert_into(tenants::table)
                .values((
                    tenants::id.eq(tenant.id.as_str()),
                    tenants::slug.eq(&tenant.slug),
                    tenants::display_name.eq(&tenant.display_name),
                    tenants::policy.eq(to_json(&tenant.policy)),
                    tenants::created_at.eq(now),
                    tenants::updated_at.eq(now),
                ))
                .execute(c)
                .map_err(|e| match StoreError::from(e) {
                    StoreError::Conflict(_) => {
                        StoreError::Conflict(format!("tenant {:?} already exists", tenant.slug))
                    }
                    other => other,
                })?;
            start_chain(c, &tenant.id)?;
            let link = crate::db::reserve(c, &tenant.id)?;
            let event = NewAuditEvent::success(
                actor,
                "tenant.create",
                format!("tenant:{}", tenant.id),
                json!({"slug": tenant.slug, "display_name": tenant.display_name, "policy": tenant.policy}),
            );
            self.record(c, &tenant.id, link, event)?;
            Ok(tenant.clone())
        })
    }

    fn tenant(&self, id: &TenantId) -> Result<Option<Tenant>> {
        let mut conn = self.conn()?;
        let row = tenants::table
            .find(id.as_str())
            .select(Row::as_select())
            .first(&mut *conn)
            .optional()?;
        row.map(from_row).transpose()
    }

    fn tenant_by_slug(&self, slug: &str) -> Result<Option<Tenant>> {
        let mut conn = self.conn()?;
        let row = tenants::table
            .filter(tenants::slug.eq(slug))
            .select(Row::as_select())
            .first(&mut *conn)
            .optional()?;
        row.map(from_row).transpose()
    }

    fn list_tenants(&self) -> Result<Vec<Tenant>> {
        let mut conn = self.conn()?;
        let rows = tenants::table
            .select(Row::as_select())
            .order(tenants::slug.asc())
            .load(&mut *conn)?;
        rows.into_iter().map(from_row).collect()
    }

    fn update_tenant_if(
        &self,
        id: &TenantId,
        actor: &str,
        change: &TenantUpdate,
        if_version: Option<UnixMillis>,
    ) -> Result<Tenant> {
        let _changed = Changed(self);
        let stale = |v: UnixMillis| StoreError::Stale(format!("tenant {id} changed since version {v}"));
        let display_name = change
            .display_name
            .as_deref()
            .map(|n| validate::display_name("display_name", n))
            .transpose()?;
        self.audited(id, |c| {
            let before = find_tenant(c, id)?;
            if let Some(v) = if_version.filter(|v| *v != before.updated_at) {
                return Err(stale(v));
            }
            let mut after = before.clone();
            if let Some(n) = &display_name {
                after.display_name.clone_from(n);
            }
            if let Some(p) = &change.policy {
                after.policy = p.clone();
            }
            after.updated_at = self.now().max(before.updated_at + 1);
            // Under `if_version`, only the version read above may be replaced: a change that
            // committed meanwhile makes this one stale.
            let version = if_version.map_or(-1, |_| before.updated_at);
            let n = diesel::update(
                tenants::table.filter(
                    tenants::id.eq(id.as_str()).and(
                        tenants::updated_at
                            .eq(version)
                            .or((version < 0).into_sql::<diesel::sql_types::Bool>()),
                    ),
                ),
            )
            .set((
                tenants::display_name.eq(&after.display_name),
                tenants::policy.eq(to_json(&after.policy)),
                tenants::updated_at.eq(after.updated_at),
            ))
            .execute(c)?;
            if n == 0 {
                return Err(stale(before.updated_at));
            }
            let event = NewAuditEvent::success(
                actor,
                "tenant.update",
                format!("tenant:{id}"),
                json!({
                    "before": {"display_name": before.display_name, "policy": before.policy},
                    "after": {"display_name": after.display_name, "policy": after.policy},
                }),
            );
            Ok((after, event))
        })
    }

    fn delete_tenant(&self, id: &TenantId, actor: &str, if_version: Option<UnixMillis>) -> Result<()> {
        let _changed = Changed(self);
        self.audited(id, |c| {
            let before = find_tenant(c, id)?;
            let row = tenants::table.filter(tenants::id.eq(id.as_str()));
            // One statement checks the version and deletes: a change committed after the caller
            // read the tenant makes it match nothing.
            let n = match if_version {
                Some(v) => diesel::delete(row.filter(tenants::updated_at.eq(v))).execute(c)?,
                None => diesel::delete(row).execute(c)?,
            };
            if n == 0 {
                let v = if_version.unwrap_or(before.updated_at);
                return Err(StoreError::Stale(format!(
                    "tenant {id} changed since version {v}"
                )));
            }
            let event = NewAuditEvent::success(
                actor,
                "tenant.delete",
                format!("tenant:{id}"),
                json!({"slug": before.slug, "display_name": before.display_name}),
            );
            Ok(((), event))
        })
    }
}
