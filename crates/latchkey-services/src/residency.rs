//! Moving a tenant between regions (docs/residency.md): every row of the tenant, its audit
//! chain and keys included, copied from one region's database into another's, checked table
//! by table, recorded as a `tenant.move` event at the end of the tenant's own chain, then
//! deleted from the old region. Used by `latchkey tenant move` and the admin API alike.
//!
//! Sessions and other take-once values live in the old region's session store and are not
//! carried over: the tenant's users sign in again.

use crate::ServiceError;
use latchkey_core::{NewAuditEvent, Tenant, TenantId};
use latchkey_store::{AuditRepo, Db, Row, Scope};
use std::collections::BTreeMap;

/// What a move did: the regions, and the rows of each table it carried.
#[derive(Debug, Clone, serde::Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct MoveReport {
    pub tenant: TenantId,
    pub slug: String,
    pub from: String,
    pub to: String,
    /// Rows per table, as copied and counted in the new region.
    pub rows: BTreeMap<String, usize>,
}

/// One region's end of a move: its name and its database.
pub struct Side<'a> {
    pub region: &'a str,
    pub db: &'a Db,
}

/// Moves `tenant` from `from` to `to` as `actor`. Nothing is deleted from `from` until `to`
/// holds as many rows of every table as `from` does; if the tenant changed meanwhile (its
/// counts differ), the copy is removed again and `from` keeps the tenant.
pub fn move_tenant(
    tenant: &Tenant,
    from: &Side<'_>,
    to: &Side<'_>,
    actor: &str,
) -> Result<MoveReport, ServiceError> {
    if from.region == to.region {
        return Err(ServiceError::Refused(format!(
            "tenant {} is already in region {}",
            tenant.slug, to.region
        )));
    }
    let ids = [tenant.id.clone()];
    let mut rows: Vec<(String, Row)> = Vec::new();
    from.db
        .dump(Scope::Tenants(&ids), &mut |_| Ok(()), &mut |t, row| {
            rows.push((t.name.clone(), row));
            Ok(())
        })?;
    let mut copied = rows.into_iter();
    let written = to
        .db
        .import_tenant(&tenant.id, &tenant.slug, &mut || Ok(copied.next()))?;
    let (before, after) = (from.db.tenant_rows(&tenant.id)?, to.db.tenant_rows(&tenant.id)?);
    if before != after || before != written {
        to.db.purge_tenant(&tenant.id)?;
        return Err(ServiceError::Refused(format!(
            "tenant {} changed while it was copied (rows {before:?} in {}, {after:?} in {}); \
             nothing was moved, try again",
            tenant.slug, from.region, to.region
        )));
    }
    let rows: BTreeMap<String, usize> = after.into_iter().collect();
    to.db.append_audit(
        &tenant.id,
        NewAuditEvent::success(
            actor,
            "tenant.move",
            format!("tenant:{}", tenant.id),
            serde_json::json!({"from": from.region, "to": to.region, "rows": rows, "actor": actor}),
        ),
    )?;
    from.db.purge_tenant(&tenant.id)?;
    Ok(MoveReport {
        tenant: tenant.id.clone(),
        slug: tenant.slug.clone(),
        from: from.region.to_owned(),
        to: to.region.to_owned(),
        rows,
    })
}
