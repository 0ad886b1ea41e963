//! Rows out and back in, for `latchkey backup` and `restore`: every table read in one
//! snapshot as JSON objects (column → value), in an order where each table comes after the
//! tables it references, and written back in that order into a database of either kind. The
//! catalog names the tables and columns, so a new table is backed up without a change here.
//! The change feed (`changes`) and diesel's migration record are not data and are skipped.

use crate::conn::AnyConnection;
use crate::db::Db;
use crate::{Result, StoreError};
use diesel::connection::Connection;
use diesel::prelude::*;
use diesel::sql_types::Text;
use diesel_migrations::MigrationHarness;
use latchkey_core::TenantId;
use serde_json::{Map, Value};

/// Tables that are not data.
const SKIPPED: &[&str] = &["__diesel_schema_migrations", "changes"];
/// Tables of the installation, not of a tenant: left out of a backup of some tenants.
const SYSTEM_ONLY: &[&str] = &["system_tokens"];
/// Rows per INSERT while restoring.
const BATCH: usize = 500;

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

#[derive(QueryableByName)]
struct Column {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    ty: String,
}

#[derive(QueryableByName)]
struct Edge {
    #[diesel(sql_type = Text)]
    child: String,
    #[diesel(sql_type = Text)]
    parent: String,
}

#[derive(QueryableByName)]
struct JsonRow {
    #[diesel(sql_type = Text)]
    row: String,
}

/// One row: column → value.
pub type Row = Map<String, Value>;
/// Where `dump` sends rows.
pub type RowSink<'a> = dyn FnMut(&Table, Row) -> Result<()> + 'a;
/// Where `restore` takes rows from: (table, row), `None` at the end.
pub type RowSource<'a> = dyn FnMut() -> Result<Option<(String, Row)>> + 'a;

/// A table as the catalog describes it.
#[derive(Debug, Clone)]
pub struct Table {
    pub name: String,
    pub columns: Vec<String>,
    /// Columns that hold booleans (SQLite stores them as 0 and 1; the dump says true/false).
    booleans: Vec<String>,
}

/// Which tables a dump holds: a backup's data leaves each user's key out (crypto-shredding:
/// an erased user's rows in an old backup must not open), and the key vault is only those.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// Every table (moving a tenant).
    Everything,
    /// Every table but `user_keys` (a backup).
    Data,
    /// `user_keys` alone (the key vault, kept in its newest copy only).
    Vault,
}

impl Part {
    fn holds(self, table: &str) -> bool {
        match self {
            Part::Everything => true,
            Part::Data => table != VAULT,
            Part::Vault => table == VAULT,
        }
    }
}

/// The table of users' keys.
const VAULT: &str = "user_keys";

/// Which rows a dump holds.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    All,
    Tenants(&'a [TenantId]),
}

fn catalog(c: &mut AnyConnection) -> Result<Vec<Table>> {
    let (names, edges): (Vec<Name>, Vec<Edge>) = match c {
        AnyConnection::Postgres(pg) => (
            diesel::sql_query(
                "SELECT table_name::text AS name FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY 1",
            )
            .load(pg)?,
            diesel::sql_query(
                "SELECT conrelid::regclass::text AS child, confrelid::regclass::text AS parent \
                 FROM pg_constraint WHERE contype = 'f' AND connamespace = current_schema()::regnamespace",
            )
            .load(pg)?,
        ),
        AnyConnection::Sqlite(lite) => (
            diesel::sql_query(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY 1",
            )
            .load(lite)?,
            diesel::sql_query(
                "SELECT m.name AS child, f.\"table\" AS parent FROM sqlite_master m \
                 JOIN pragma_foreign_key_list(m.name) f WHERE m.type = 'table'",
            )
            .load(lite)?,
        ),
    };
    let names: Vec<String> = names
        .into_iter()
        .map(|n| n.name.trim_matches('"').to_owned())
        .filter(|n| !SKIPPED.contains(&n.as_str()))
        .collect();
    let mut tables = Vec::new();
    for name in order(&names, &edges)? {
        let columns: Vec<Column> = match c {
            AnyConnection::Postgres(pg) => diesel::sql_query(
                "SELECT column_name::text AS name, data_type::text AS ty FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
            )
            .bind::<Text, _>(&name)
            .load(pg)?,
            AnyConnection::Sqlite(lite) => {
                diesel::sql_query("SELECT name, type AS ty FROM pragma_table_info(?)")
                    .bind::<Text, _>(&name)
                    .load(lite)?
            }
        };
        tables.push(Table {
            booleans: columns
                .iter()
                .filter(|c| c.ty.to_ascii_lowercase().starts_with("bool"))
                .map(|c| c.name.clone())
                .collect(),
            columns: columns.into_iter().map(|c| c.name).collect(),
            name,
        });
    }
    Ok(tables)
}

/// `names` with every table after the tables it references (self-references ignored).
fn order(names: &[String], edges: &[Edge]) -> Result<Vec<String>> {
    let mut done: Vec<String> = Vec::new();
    let mut left: Vec<&String> = names.iter().collect();
    while !left.is_empty() {
        let before = left.len();
        left.retain(|t| {
            let ready = edges.iter().all(|e| {
                e.child.trim_matches('"') != t.as_str()
                    || e.parent.trim_matches('"') == t.as_str()
                    || done.iter().any(|d| d == e.parent.trim_matches('"'))
                    || !names.iter().any(|n| n == e.parent.trim_matches('"'))
            });
            if ready {
                done.push((*t).clone());
            }
            !ready
        });
        if left.len() == before {
            return Err(StoreError::Database(format!(
                "foreign keys form a cycle among {left:?}"
            )));
        }
    }
    Ok(done)
}

fn quoted(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// The WHERE clause that keeps `scope`'s rows of `t` (None: the table is left out).
fn filter(t: &Table, scope: Scope<'_>, placeholders: &str) -> Option<String> {
    match scope {
        Scope::Tenants(_) if SYSTEM_ONLY.contains(&t.name.as_str()) => None,
        Scope::Tenants(_) if t.name == "tenants" => Some(format!(" WHERE id IN ({placeholders})")),
        Scope::Tenants(_) if t.columns.iter().any(|c| c == "tenant_id") => {
            Some(format!(" WHERE tenant_id IN ({placeholders})"))
        }
        // Everything, or installation-wide rows without a secret (the master key's check).
        Scope::All | Scope::Tenants(_) => Some(String::new()),
    }
}

impl Db {
    /// The newest migration applied to this database.
    pub fn schema_version(&self) -> Result<Option<String>> {
        let mut conn = self.conn()?;
        let applied = match &mut *conn {
            AnyConnection::Postgres(c) => c.applied_migrations(),
            AnyConnection::Sqlite(c) => c.applied_migrations(),
        }
        .map_err(|e| StoreError::Migration(e.to_string()))?;
        Ok(applied.into_iter().map(|v| v.to_string()).max())
    }

    /// Every row of `scope` in one consistent snapshot (a read-only repeatable-read transaction
    /// on PostgreSQL, one read transaction on SQLite), table by table in reference order:
    /// `table` once before each table's rows, `row` per row.
    pub fn dump(
        &self,
        scope: Scope<'_>,
        table: &mut dyn FnMut(&Table) -> Result<()>,
        row: &mut RowSink<'_>,
    ) -> Result<()> {
        self.dump_part(scope, Part::Everything, table, row)
    }

    /// `dump` of the tables of `part` only.
    pub fn dump_part(
        &self,
        scope: Scope<'_>,
        part: Part,
        table: &mut dyn FnMut(&Table) -> Result<()>,
        row: &mut RowSink<'_>,
    ) -> Result<()> {
        let mut conn = self.conn()?;
        let ids: Vec<String> = match scope {
            Scope::All => Vec::new(),
            Scope::Tenants(t) => t.iter().map(|t| t.as_str().to_owned()).collect(),
        };
        conn.transaction(|c| {
            if let AnyConnection::Postgres(pg) = c {
                // The whole dump sees one snapshot, and writes nothing.
                diesel::sql_query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    .execute(pg)?;
            }
            dump_in(c, (scope, part), &ids, table, row)
        })
    }
}

fn dump_in(
    c: &mut AnyConnection,
    (scope, part): (Scope<'_>, Part),
    ids: &[String],
    table: &mut dyn FnMut(&Table) -> Result<()>,
    row: &mut RowSink<'_>,
) -> Result<()> {
    for t in catalog(c)?.into_iter().filter(|t| part.holds(&t.name)) {
        let is_pg = matches!(c, AnyConnection::Postgres(_));
        let placeholders: Vec<String> = (1..=ids.len())
            .map(|i| if is_pg { format!("${i}") } else { "?".to_owned() })
            .collect();
        let Some(filter) = filter(&t, scope, &placeholders.join(", ")) else {
            continue;
        };
        table(&t)?;
        let select = if is_pg {
            format!(
                "SELECT row_to_json(t)::text AS row FROM {} t{filter}",
                quoted(&t.name)
            )
        } else {
            let pairs: Vec<String> = t
                .columns
                .iter()
                .map(|col| format!("'{}', {}", col.replace('\'', "''"), quoted(col)))
                .collect();
            format!(
                "SELECT json_object({}) AS row FROM {}{filter}",
                pairs.join(", "),
                quoted(&t.name)
            )
        };
        let bound: &[String] = if filter.is_empty() { &[] } else { ids };
        let rows: Vec<JsonRow> = match c {
            AnyConnection::Postgres(pg) => {
                let mut q = diesel::sql_query(&select).into_boxed::<diesel::pg::Pg>();
                for id in bound {
                    q = q.bind::<Text, _>(id.clone());
                }
                q.load(pg)?
            }
            AnyConnection::Sqlite(lite) => {
                let mut q = diesel::sql_query(&select).into_boxed::<diesel::sqlite::Sqlite>();
                for id in bound {
                    q = q.bind::<Text, _>(id.clone());
                }
                q.load(lite)?
            }
        };
        for r in rows {
            let Value::Object(mut map) = serde_json::from_str(&r.row)
                .map_err(|e| StoreError::Database(format!("{}: unreadable row: {e}", t.name)))?
            else {
                return Err(StoreError::Database(format!(
                    "{}: a row is not an object",
                    t.name
                )));
            };
            for b in &t.booleans {
                if let Some(v) = map.get_mut(b)
                    && let Some(n) = v.as_i64()
                {
                    *v = Value::Bool(n != 0);
                }
            }
            row(&t, map)?;
        }
    }
    Ok(())
}

impl Db {
    /// Writes the rows `next` yields (table, row; in dump order) in one transaction, into a
    /// database without tenants. With `full`, every table's rows are replaced (the seeds a
    /// fresh database has, such as the system audit chain's head, included); otherwise only the
    /// master key's check is. Returns the rows written per table.
    pub fn restore(&self, full: bool, next: &mut RowSource<'_>) -> Result<Vec<(String, usize)>> {
        let mut conn = self.conn()?;
        conn.transaction(|c| {
            let tenants: i64 = crate::schema::tenants::table.count().get_result(c)?;
            if tenants > 0 {
                return Err(StoreError::Conflict(format!(
                    "the target database has {tenants} tenants; restore into an empty database"
                )));
            }
            let tables = catalog(c)?;
            let cleared: Vec<&Table> = if full {
                tables.iter().rev().collect()
            } else {
                tables.iter().filter(|t| t.name == "master_key_checks").collect()
            };
            for t in cleared {
                diesel::sql_query(format!("DELETE FROM {}", quoted(&t.name))).execute(c)?;
            }
            write_rows(c, &tables, next)
        })
    }

    /// Rows of tenant `id` per table that holds any (`tenants` and every table with a
    /// `tenant_id` column), in reference order: what a move copies and then checks.
    pub fn tenant_rows(&self, id: &TenantId) -> Result<Vec<(String, usize)>> {
        let mut conn = self.conn()?;
        let tables = catalog(&mut conn)?;
        let mut counts = Vec::new();
        for t in tables.iter().filter(|t| of_tenants(t)) {
            let n = count_of(&mut conn, t, id)?;
            if n > 0 {
                counts.push((t.name.clone(), n));
            }
        }
        Ok(counts)
    }

    /// Adds tenant `id`'s rows, as `dump` with [`Scope::Tenants`] yields them, to a database
    /// that may hold other tenants, in one transaction. Installation-wide tables (the master
    /// key's check) are left as they are here. Refuses when this database already has a tenant
    /// with that id or `slug`. Returns the rows written per table.
    pub fn import_tenant(
        &self,
        id: &TenantId,
        slug: &str,
        next: &mut RowSource<'_>,
    ) -> Result<Vec<(String, usize)>> {
        use crate::schema::tenants;
        let _changed = TenantChanged(self);
        let mut conn = self.conn()?;
        conn.transaction(|c| {
            let clash: i64 = tenants::table
                .filter(tenants::id.eq(id.as_str()).or(tenants::slug.eq(slug)))
                .count()
                .get_result(c)?;
            if clash > 0 {
                return Err(StoreError::Conflict(format!(
                    "the target database already has a tenant with id {id} or slug {slug:?}"
                )));
            }
            let tables = catalog(c)?;
            let mut tenant_rows = || -> Result<Option<(String, Row)>> {
                while let Some((name, row)) = next()? {
                    if tables.iter().any(|t| t.name == name && of_tenants(t)) {
                        return Ok(Some((name, row)));
                    }
                }
                Ok(None)
            };
            write_rows(c, &tables, &mut tenant_rows)
        })
    }

    /// Deletes every row of tenant `id`, its audit chain included, in one transaction: the
    /// last step of a move, once the rows are in the other region. Returns the rows deleted
    /// per table.
    pub fn purge_tenant(&self, id: &TenantId) -> Result<Vec<(String, usize)>> {
        let _changed = TenantChanged(self);
        let mut conn = self.conn()?;
        conn.transaction(|c| {
            let tables = catalog(c)?;
            let mut counts = Vec::new();
            for t in tables.iter().rev().filter(|t| of_tenants(t)) {
                let column = if t.name == "tenants" { "id" } else { "tenant_id" };
                let sql = format!(
                    "DELETE FROM {} WHERE {column} = {}",
                    quoted(&t.name),
                    placeholder(c)
                );
                let n = match c {
                    AnyConnection::Postgres(pg) => {
                        diesel::sql_query(sql).bind::<Text, _>(id.as_str()).execute(pg)?
                    }
                    AnyConnection::Sqlite(lite) => diesel::sql_query(sql)
                        .bind::<Text, _>(id.as_str())
                        .execute(lite)?,
                };
                if n > 0 {
                    counts.push((t.name.clone(), n));
                }
            }
            counts.reverse();
            Ok(counts)
        })
    }
}

/// Tells tenant caches, once a move's step is over, to look again.
struct TenantChanged<'a>(&'a Db);

impl Drop for TenantChanged<'_> {
    fn drop(&mut self) {
        self.0.tenant_changed();
    }
}

/// Whether `t` holds tenants' rows: `tenants` itself and every table with a `tenant_id`.
fn of_tenants(t: &Table) -> bool {
    t.name == "tenants" || t.columns.iter().any(|c| c == "tenant_id")
}

fn placeholder(c: &AnyConnection) -> &'static str {
    if matches!(c, AnyConnection::Postgres(_)) {
        "$1"
    } else {
        "?"
    }
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// Rows of tenant `id` in `t`.
fn count_of(c: &mut AnyConnection, t: &Table, id: &TenantId) -> Result<usize> {
    let column = if t.name == "tenants" { "id" } else { "tenant_id" };
    let sql = format!(
        "SELECT COUNT(*) AS n FROM {} WHERE {column} = {}",
        quoted(&t.name),
        placeholder(c)
    );
    let counted: Count = match c {
        AnyConnection::Postgres(pg) => diesel::sql_query(sql)
            .bind::<Text, _>(id.as_str())
            .get_result(pg)?,
        AnyConnection::Sqlite(lite) => diesel::sql_query(sql)
            .bind::<Text, _>(id.as_str())
            .get_result(lite)?,
    };
    usize::try_from(counted.n).map_err(|e| StoreError::Database(format!("{}: count: {e}", t.name)))
}

/// Inserts what `next` yields (table, row; in reference order) in batches, counting rows per
/// table.
fn write_rows(
    c: &mut AnyConnection,
    tables: &[Table],
    next: &mut RowSource<'_>,
) -> Result<Vec<(String, usize)>> {
    let mut counts: Vec<(String, usize)> = Vec::new();
    let mut batch: Vec<Value> = Vec::new();
    let mut current: Option<&Table> = None;
    loop {
        let item = next()?;
        let switch = match (&item, current) {
            (Some((name, _)), Some(t)) => *name != t.name || batch.len() >= BATCH,
            (None, _) => true,
            (Some(_), None) => false,
        };
        if switch && let Some(t) = current {
            insert(c, t, std::mem::take(&mut batch))?;
        }
        let Some((name, row)) = item else {
            return Ok(counts);
        };
        let t = tables.iter().find(|t| t.name == name).ok_or_else(|| {
            StoreError::Database(format!("the backup has a table {name:?} this database lacks"))
        })?;
        if let Some(unknown) = row.keys().find(|k| !t.columns.contains(k)) {
            return Err(StoreError::Database(format!(
                "{name}: the backup has a column {unknown:?} this database lacks"
            )));
        }
        match counts.last_mut() {
            Some((n, count)) if *n == name => *count += 1,
            _ => counts.push((name, 1)),
        }
        current = Some(t);
        batch.push(Value::Object(row));
    }
}

impl Db {
    /// Writes the users' keys `next` yields (a key vault's `user_keys` rows) into a restored
    /// database, in one transaction: a key whose user is not in the data (erased after the
    /// vault was written, or outside the restored tenants) is skipped. Returns (written,
    /// skipped).
    pub fn restore_vault(&self, next: &mut RowSource<'_>) -> Result<(usize, usize)> {
        use crate::schema::{user_keys, users};
        let mut conn = self.conn()?;
        conn.transaction(|c| {
            let (mut written, mut skipped) = (0, 0);
            while let Some((table, row)) = next()? {
                if table != VAULT {
                    return Err(StoreError::Database(format!(
                        "the key vault has a row of {table:?}, not of {VAULT}"
                    )));
                }
                let text = |k: &str| {
                    row.get(k)
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                        .ok_or_else(|| StoreError::Database(format!("{VAULT}: a row without {k}")))
                };
                let (tenant, user, key) = (text("tenant_id")?, text("user_id")?, text("key_sealed")?);
                let created = row.get("created_at").and_then(Value::as_i64).unwrap_or(0);
                let exists: i64 = users::table
                    .filter(users::tenant_id.eq(&tenant).and(users::id.eq(&user)))
                    .count()
                    .get_result(c)?;
                if exists == 0 {
                    skipped += 1;
                    continue;
                }
                diesel::insert_into(user_keys::table)
                    .values((
                        user_keys::tenant_id.eq(&tenant),
                        user_keys::user_id.eq(&user),
                        user_keys::key_sealed.eq(&key),
                        user_keys::created_at.eq(created),
                    ))
                    .execute(c)?;
                written += 1;
            }
            Ok((written, skipped))
        })
    }
}

/// One INSERT for `rows` of `t`, the JSON turned into the table's types by the database.
fn insert(c: &mut AnyConnection, t: &Table, rows: Vec<Value>) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let json = Value::Array(rows).to_string();
    match c {
        AnyConnection::Postgres(pg) => {
            let sql = format!(
                "INSERT INTO {0} SELECT * FROM json_populate_recordset(NULL::{0}, $1::json)",
                quoted(&t.name)
            );
            diesel::sql_query(sql).bind::<Text, _>(json).execute(pg)?;
        }
        AnyConnection::Sqlite(lite) => {
            let columns: Vec<String> = t.columns.iter().map(|c| quoted(c)).collect();
            let values: Vec<String> = t
                .columns
                .iter()
                .map(|c| format!("json_extract(value, '$.{}')", quoted(c).replace('\'', "''")))
                .collect();
            let sql = format!(
                "INSERT INTO {} ({}) SELECT {} FROM json_each(?)",
                quoted(&t.name),
                columns.join(", "),
                values.join(", ")
            );
            diesel::sql_query(sql).bind::<Text, _>(json).execute(lite)?;
        }
    }
    Ok(())
}
