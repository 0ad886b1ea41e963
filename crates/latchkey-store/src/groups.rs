//! Groups (nested, without cycles), client roles, role assignments to users and groups, and a
//! user's effective access computed through every group in one query.
//!
//! Groups form a forest: a group is in at most one parent (`group_parents` is keyed by the
//! child), so each has one path, `/parent/child`. Adding a group to a group that is inside it
//! (or to itself) is refused with `StoreError::Cycle`; on PostgreSQL such changes take a
//! per-tenant advisory lock first, so two crossing additions can't both pass the check.

use crate::conn::AnyConnection;
use crate::db::Db;
use crate::schema::{
    client_roles, group_client_roles, group_parents, group_roles, groups, user_client_roles, user_groups,
};
use crate::{Result, StoreError};
use diesel::prelude::*;
use diesel::sql_types::{Nullable, Text};
use latchkey_core::{
    AnyRole, ClientId, ClientRole, ClientRoleId, EffectiveAccess, EffectiveGroup, Group, GroupId,
    NewAuditEvent, Principal, TenantId, UserId, validate,
};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// What changes in a group; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct GroupUpdate {
    pub name: Option<String>,
    /// `Some(None)` clears the description.
    pub description: Option<Option<String>>,
    /// The version (`updated_at`) the change was made against: a group changed since is
    /// `Stale`, not overwritten.
    pub if_version: Option<i64>,
}

/// A group's direct members.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupMembers {
    /// Users, as (id, username), by username.
    pub users: Vec<(UserId, String)>,
    /// Groups directly inside, by name.
    pub groups: Vec<Group>,
}

pub trait GroupRepo {
    fn create_group(&self, t: &TenantId, actor: &str, name: &str, description: Option<&str>)
    -> Result<Group>;
    /// Every group of the tenant with its path, by path.
    fn list_groups(&self, t: &TenantId) -> Result<Vec<Group>>;
    fn group_by_name(&self, t: &TenantId, name: &str) -> Result<Option<Group>>;
    /// The group with its path, if it is in tenant `t`.
    fn group(&self, t: &TenantId, id: &GroupId) -> Result<Option<Group>>;
    fn update_group(&self, t: &TenantId, actor: &str, id: &GroupId, update: &GroupUpdate) -> Result<Group>;
    /// Deletes the group, its memberships and role assignments; groups inside it become
    /// top-level groups.
    fn delete_group(&self, t: &TenantId, actor: &str, id: &GroupId) -> Result<()>;
    /// Adds a user or a group to `group`. A group already in another group is a `Conflict`; one
    /// that contains `group` (or is `group`) is a `Cycle`.
    fn add_member(&self, t: &TenantId, actor: &str, group: &GroupId, member: &Principal) -> Result<()>;
    fn remove_member(&self, t: &TenantId, actor: &str, group: &GroupId, member: &Principal) -> Result<()>;
    fn group_members(&self, t: &TenantId, group: &GroupId) -> Result<GroupMembers>;
    /// The groups the user is directly in (not through nesting).
    fn direct_groups(&self, t: &TenantId, user: &UserId) -> Result<Vec<GroupId>>;
    fn create_client_role(
        &self,
        t: &TenantId,
        actor: &str,
        client: &ClientId,
        name: &str,
        description: Option<&str>,
    ) -> Result<ClientRole>;
    fn list_client_roles(&self, t: &TenantId, client: &ClientId) -> Result<Vec<ClientRole>>;
    fn delete_client_role(&self, t: &TenantId, actor: &str, id: &ClientRoleId) -> Result<()>;
    /// Assigns a tenant or client role to a user or a group.
    fn assign(&self, t: &TenantId, actor: &str, to: &Principal, role: &AnyRole) -> Result<()>;
    fn unassign(&self, t: &TenantId, actor: &str, from: &Principal, role: &AnyRole) -> Result<()>;
    /// The names of the tenant roles and client roles assigned to a group itself.
    fn roles_of_group(&self, t: &TenantId, group: &GroupId) -> Result<(Vec<String>, Vec<ClientRole>)>;
    /// The user's tenant roles, client roles (per client) and groups, through every group they
    /// are in, directly or by nesting: one query.
    fn effective_access(&self, t: &TenantId, user: &UserId) -> Result<EffectiveAccess>;
}

#[derive(Queryable)]
struct GroupRow {
    id: String,
    tenant_id: String,
    name: String,
    description: Option<String>,
    created_at: i64,
    updated_at: i64,
    parent_id: Option<String>,
}

/// Builds `Group`s with their paths from rows that include every ancestor of each row.
fn with_paths(rows: Vec<GroupRow>) -> Vec<Group> {
    let by_id: HashMap<&str, (&str, Option<&str>)> = rows
        .iter()
        .map(|r| (r.id.as_str(), (r.name.as_str(), r.parent_id.as_deref())))
        .collect();
    let path_of = |id: &str| -> String {
        let mut names = Vec::new();
        let mut at = Some(id);
        // At most one step per group: stored data with a cycle can't loop here.
        while let Some(step) = at.filter(|_| names.len() <= by_id.len()) {
            let Some((name, parent)) = by_id.get(step) else {
                break;
            };
            names.push(*name);
            at = *parent;
        }
        names
            .iter()
            .rev()
            .fold(String::new(), |path, name| path + "/" + name)
    };
    let mut out: Vec<Group> = rows
        .iter()
        .map(|r| Group {
            id: GroupId(r.id.clone()),
            tenant_id: TenantId(r.tenant_id.clone()),
            name: r.name.clone(),
            description: r.description.clone(),
            parent_id: r.parent_id.clone().map(GroupId),
            path: path_of(&r.id),
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
        .collect();
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

fn group_rows(c: &mut AnyConnection, t: &TenantId, ids: Option<&[String]>) -> Result<Vec<GroupRow>> {
    let mut q = groups::table
        .left_join(
            group_parents::table.on(group_parents::tenant_id
                .eq(groups::tenant_id)
                .and(group_parents::group_id.eq(groups::id))),
        )
        .filter(groups::tenant_id.eq(t.as_str()))
        .select((
            groups::id,
            groups::tenant_id,
            groups::name,
            groups::description,
            groups::created_at,
            groups::updated_at,
            group_parents::parent_id.nullable(),
        ))
        .into_boxed();
    if let Some(ids) = ids {
        q = q.filter(groups::id.eq_any(ids.to_vec()));
    }
    Ok(q.load(c)?)
}

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = Text)]
    id: String,
}

/// Runs a read-only `sql_query` with text parameters on either backend. `$n` placeholders must
/// first appear in order: SQLite numbers named parameters by first appearance.
fn load_sql<T>(c: &mut AnyConnection, sql: &str, binds: &[&str]) -> Result<Vec<T>>
where
    T: QueryableByName<diesel::pg::Pg> + QueryableByName<diesel::sqlite::Sqlite> + 'static,
{
    Ok(match c {
        AnyConnection::Sqlite(lite) => {
            let mut q = diesel::sql_query(sql).into_boxed::<diesel::sqlite::Sqlite>();
            for b in binds {
                q = q.bind::<Text, _>(*b);
            }
            q.load(lite)?
        }
        AnyConnection::Postgres(pg) => {
            let mut q = diesel::sql_query(sql).into_boxed::<diesel::pg::Pg>();
            for b in binds {
                q = q.bind::<Text, _>(*b);
            }
            q.load(pg)?
        }
    })
}

/// The ids of `group` and every group it is inside, nearest first.
fn ancestors(c: &mut AnyConnection, t: &TenantId, group: &GroupId) -> Result<Vec<String>> {
    const SQL: &str = "WITH RECURSIVE up(id, depth) AS ( \
           SELECT id, 0 FROM groups WHERE tenant_id = $1 AND id = $2 \
         UNION \
           SELECT p.parent_id, up.depth + 1 FROM group_parents p JOIN up ON p.group_id = up.id \
           WHERE p.tenant_id = $1 AND up.depth < 1000) \
         SELECT id FROM up ORDER BY depth";
    Ok(load_sql::<IdRow>(c, SQL, &[t.as_str(), group.as_str()])?
        .into_iter()
        .map(|r| r.id)
        .collect())
}

fn one_group(c: &mut AnyConnection, t: &TenantId, group: &GroupId) -> Result<Group> {
    let ids = ancestors(c, t, group)?;
    with_paths(group_rows(c, t, Some(&ids))?)
        .into_iter()
        .find(|g| &g.id == group)
        .ok_or(StoreError::NotFound { what: "group" })
}

fn name_taken(name: &str) -> impl Fn(diesel::result::Error) -> StoreError + '_ {
    move |e| match StoreError::from(e) {
        StoreError::Conflict(_) => {
            StoreError::Conflict(format!("group {name:?} already exists in this tenant"))
        }
        other => other,
    }
}

/// Serializes nesting changes of one tenant on PostgreSQL (SQLite has one writer anyway).
fn lock_nesting(c: &mut AnyConnection, t: &TenantId) -> Result<()> {
    crate::db::xact_lock(c, &format!("latchkey-groups:{t}"))
}

fn target(p: &Principal) -> String {
    match p {
        Principal::User(u) => format!("user:{u}"),
        Principal::Group(g) => format!("group:{g}"),
    }
}

fn role_details(role: &AnyRole) -> serde_json::Value {
    match role {
        AnyRole::Tenant(r) => json!({"role_id": r.as_str()}),
        AnyRole::Client(r) => json!({"client_role_id": r.as_str()}),
    }
}

fn add_group_to_group(
    c: &mut AnyConnection,
    t: &TenantId,
    parent: &GroupId,
    child: &GroupId,
    now: i64,
) -> Result<()> {
    lock_nesting(c, t)?;
    let chain = ancestors(c, t, parent)?;
    if chain.is_empty() {
        return Err(StoreError::NotFound { what: "group" });
    }
    if chain.iter().any(|id| id == child.as_str()) {
        let msg = if parent == child {
            "a group cannot be a member of itself".to_owned()
        } else {
            "the group contains the group it would be added to: nesting them would make a cycle".to_owned()
        };
        return Err(StoreError::Cycle(msg));
    }
    let existing: Option<String> = group_parents::table
        .find((t.as_str(), child.as_str()))
        .select(group_parents::parent_id)
        .first(c)
        .optional()?;
    if let Some(other) = existing {
        let what = if other == parent.as_str() {
            "already in this group"
        } else {
            "already in another group"
        };
        return Err(StoreError::Conflict(format!(
            "the group is {what}; a group is in at most one group (remove it there first)"
        )));
    }
    diesel::insert_into(group_parents::table)
        .values((
            group_parents::tenant_id.eq(t.as_str()),
            group_parents::group_id.eq(child.as_str()),
            group_parents::parent_id.eq(parent.as_str()),
            group_parents::created_at.eq(now),
        ))
        .execute(c)
        .map_err(|e| match StoreError::from(e) {
            StoreError::BadReference(_) => {
                StoreError::BadReference("group does not exist in this tenant".into())
            }
            other => other,
        })?;
    Ok(())
}

pub(crate) fn add_user_to_group(
    c: &mut AnyConnection,
    t: &TenantId,
    group: &GroupId,
    user: &UserId,
    now: i64,
) -> Result<()> {
    diesel::insert_into(user_groups::table)
        .values((
            user_groups::tenant_id.eq(t.as_str()),
            user_groups::user_id.eq(user.as_str()),
            user_groups::group_id.eq(group.as_str()),
            user_groups::created_at.eq(now),
        ))
        .execute(c)
        .map_err(|e| match StoreError::from(e) {
            StoreError::Conflict(_) => StoreError::Conflict("the user is already in this group".into()),
            StoreError::BadReference(_) => {
                StoreError::BadReference("user or group does not exist in this tenant".into())
            }
            other => other,
        })?;
    Ok(())
}

/// Inserts one assignment row; the four (principal, role) kinds each have their table.
fn insert_assignment(
    c: &mut AnyConnection,
    t: &TenantId,
    to: &Principal,
    role: &AnyRole,
    now: i64,
) -> Result<usize> {
    use crate::schema::user_roles;
    let (tid, at) = (t.as_str(), now);
    let n = match (to, role) {
        (Principal::User(u), AnyRole::Tenant(r)) => diesel::insert_into(user_roles::table)
            .values((
                user_roles::tenant_id.eq(tid),
                user_roles::user_id.eq(u.as_str()),
                user_roles::role_id.eq(r.as_str()),
                user_roles::created_at.eq(at),
            ))
            .execute(c),
        (Principal::Group(g), AnyRole::Tenant(r)) => diesel::insert_into(group_roles::table)
            .values((
                group_roles::tenant_id.eq(tid),
                group_roles::group_id.eq(g.as_str()),
                group_roles::role_id.eq(r.as_str()),
                group_roles::created_at.eq(at),
            ))
            .execute(c),
        (Principal::User(u), AnyRole::Client(r)) => diesel::insert_into(user_client_roles::table)
            .values((
                user_client_roles::tenant_id.eq(tid),
                user_client_roles::user_id.eq(u.as_str()),
                user_client_roles::client_role_id.eq(r.as_str()),
                user_client_roles::created_at.eq(at),
            ))
            .execute(c),
        (Principal::Group(g), AnyRole::Client(r)) => diesel::insert_into(group_client_roles::table)
            .values((
                group_client_roles::tenant_id.eq(tid),
                group_client_roles::group_id.eq(g.as_str()),
                group_client_roles::client_role_id.eq(r.as_str()),
                group_client_roles::created_at.eq(at),
            ))
            .execute(c),
    };
    n.map_err(|e| match StoreError::from(e) {
        StoreError::Conflict(_) => StoreError::Conflict(format!("the {} already has this role", who(to))),
        StoreError::BadReference(_) => {
            StoreError::BadReference(format!("{} or role does not exist in this tenant", who(to)))
        }
        other => other,
    })
}

fn delete_assignment(c: &mut AnyConnection, t: &TenantId, from: &Principal, role: &AnyRole) -> Result<usize> {
    use crate::schema::user_roles;
    let tid = t.as_str();
    Ok(match (from, role) {
        (Principal::User(u), AnyRole::Tenant(r)) => diesel::delete(
            user_roles::table.filter(
                user_roles::tenant_id
                    .eq(tid)
                    .and(user_roles::user_id.eq(u.as_str()))
                    .and(user_roles::role_id.eq(r.as_str())),
            ),
        )
        .execute(c)?,
        (Principal::Group(g), AnyRole::Tenant(r)) => diesel::delete(
            group_roles::table.filter(
                group_roles::tenant_id
                    .eq(tid)
                    .and(group_roles::group_id.eq(g.as_str()))
                    .and(group_roles::role_id.eq(r.as_str())),
            ),
        )
        .execute(c)?,
        (Principal::User(u), AnyRole::Client(r)) => diesel::delete(
            user_client_roles::table.filter(
                user_client_roles::tenant_id
                    .eq(tid)
                    .and(user_client_roles::user_id.eq(u.as_str()))
                    .and(user_client_roles::client_role_id.eq(r.as_str())),
            ),
        )
        .execute(c)?,
        (Principal::Group(g), AnyRole::Client(r)) => diesel::delete(
            group_client_roles::table.filter(
                group_client_roles::tenant_id
                    .eq(tid)
                    .and(group_client_roles::group_id.eq(g.as_str()))
                    .and(group_client_roles::client_role_id.eq(r.as_str())),
            ),
        )
        .execute(c)?,
    })
}

fn who(p: &Principal) -> &'static str {
    match p {
        Principal::User(_) => "user",
        Principal::Group(_) => "group",
    }
}

#[derive(QueryableByName)]
struct AccessRow {
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = Nullable<Text>)]
    a: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    b: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    c: Option<String>,
}

/// One statement: the groups the user is in (closed upward through `group_parents`), then the
/// tenant roles and client roles held by the user or any of those groups.
const EFFECTIVE_SQL: &str = "WITH RECURSIVE member_of(group_id) AS ( \
       SELECT group_id FROM user_groups WHERE tenant_id = $1 AND user_id = $2 \
     UNION \
       SELECT p.parent_id FROM group_parents p JOIN member_of m ON p.group_id = m.group_id \
       WHERE p.tenant_id = $1) \
     SELECT 'group' AS kind, g.id AS a, g.name AS b, p.parent_id AS c \
       FROM groups g LEFT JOIN group_parents p ON p.tenant_id = g.tenant_id AND p.group_id = g.id \
       WHERE g.tenant_id = $1 AND g.id IN (SELECT group_id FROM member_of) \
     UNION ALL \
     SELECT 'role', r.name, NULL, NULL FROM roles r WHERE r.tenant_id = $1 AND ( \
       r.id IN (SELECT role_id FROM user_roles WHERE tenant_id = $1 AND user_id = $2) \
       OR r.id IN (SELECT role_id FROM group_roles \
                   WHERE tenant_id = $1 AND group_id IN (SELECT group_id FROM member_of))) \
     UNION ALL \
     SELECT 'client_role', cr.client_id, cr.name, NULL FROM client_roles cr WHERE cr.tenant_id = $1 AND ( \
       cr.id IN (SELECT client_role_id FROM user_client_roles WHERE tenant_id = $1 AND user_id = $2) \
       OR cr.id IN (SELECT client_role_id FROM group_client_roles \
                    WHERE tenant_id = $1 AND group_id IN (SELECT group_id FROM member_of)))";

fn effective_from_rows(t: &TenantId, rows: Vec<AccessRow>) -> Result<EffectiveAccess> {
    let mut roles = BTreeSet::new();
    let mut client_roles: BTreeMap<ClientId, BTreeSet<String>> = BTreeMap::new();
    let mut group_rows = Vec::new();
    for row in rows {
        match (row.kind.as_str(), row.a, row.b) {
            ("group", Some(id), Some(name)) => group_rows.push(GroupRow {
                id,
                tenant_id: t.as_str().to_owned(),
                name,
                description: None,
                created_at: 0,
                updated_at: 0,
                parent_id: row.c,
            }),
            ("role", Some(name), _) => {
                roles.insert(name);
            }
            ("client_role", Some(client), Some(name)) => {
                client_roles.entry(ClientId(client)).or_default().insert(name);
            }
            (kind, ..) => {
                return Err(StoreError::corrupt(format!(
                    "effective access row of kind {kind}"
                )));
            }
        }
    }
    Ok(EffectiveAccess {
        roles: roles.into_iter().collect(),
        client_roles: client_roles
            .into_iter()
            .map(|(k, v)| (k, v.into_iter().collect()))
            .collect(),
        groups: with_paths(group_rows)
            .into_iter()
            .map(|g| EffectiveGroup {
                name: g.name,
                path: g.path,
            })
            .collect(),
    })
}

#[derive(Queryable)]
struct ClientRoleRow {
    id: String,
    tenant_id: String,
    client_id: String,
    name: String,
    description: Option<String>,
    created_at: i64,
}

fn client_role(r: ClientRoleRow) -> ClientRole {
    ClientRole {
        id: ClientRoleId(r.id),
        tenant_id: TenantId(r.tenant_id),
        client_id: ClientId(r.client_id),
        name: r.name,
        description: r.description,
        created_at: r.created_at,
    }
}

const CLIENT_ROLE_COLUMNS: (
    client_roles::id,
    client_roles::tenant_id,
    client_roles::client_id,
    client_roles::name,
    client_roles::description,
    client_roles::created_at,
) = (
    client_roles::id,
    client_roles::tenant_id,
    client_roles::client_id,
    client_roles::name,
    client_roles::description,
    client_roles::created_at,
);

impl GroupRepo for Db {
    fn create_group(
        &self,
        t: &TenantId,
        actor: &str,
        name: &str,
        description: Option<&str>,
    ) -> Result<Group> {
        let name = validate::group_name(name)?;
        let now = self.now();
        let group = Group {
            id: GroupId(self.new_id()),
            tenant_id: t.clone(),
            path: format!("/{name}"),
            name,
            description: description.map(str::to_owned),
            parent_id: None,
            created_at: now,
            updated_at: now,
        };
        self.audited(t, |c| {
            diesel::insert_into(groups::table)
                .values((
                    groups::id.eq(group.id.as_str()),
                    groups::tenant_id.eq(t.as_str()),
                    groups::name.eq(&group.name),
                    groups::description.eq(&group.description),
                    groups::created_at.eq(group.created_at),
                    groups::updated_at.eq(group.updated_at),
                ))
                .execute(c)
                .map_err(name_taken(&group.name))?;
            let event = NewAuditEvent::success(
                actor,
                "group.create",
                format!("group:{}", group.id),
                json!({"name": group.name}),
            );
            Ok((group.clone(), event))
        })
    }

    fn list_groups(&self, t: &TenantId) -> Result<Vec<Group>> {
        let mut conn = self.conn()?;
        Ok(with_paths(group_rows(&mut conn, t, None)?))
    }

    fn group(&self, t: &TenantId, id: &GroupId) -> Result<Option<Group>> {
        let mut conn = self.conn()?;
        match one_group(&mut conn, t, id) {
            Ok(g) => Ok(Some(g)),
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn group_by_name(&self, t: &TenantId, name: &str) -> Result<Option<Group>> {
        let mut conn = self.conn()?;
        let id: Option<String> = groups::table
            .filter(groups::tenant_id.eq(t.as_str()).and(groups::name.eq(name.trim())))
            .select(groups::id)
            .first(&mut *conn)
            .optional()?;
        id.map(|id| one_group(&mut conn, t, &GroupId(id))).transpose()
    }

    fn update_group(&self, t: &TenantId, actor: &str, id: &GroupId, update: &GroupUpdate) -> Result<Group> {
        let name = update.name.as_deref().map(validate::group_name).transpose()?;
        let now = self.now();
        self.audited(t, |c| {
            crate::db::xact_lock(c, &format!("latchkey-group:{t}:{id}"))?;
            let before = one_group(c, t, id)?;
            if let Some(v) = update.if_version.filter(|v| *v != before.updated_at) {
                return Err(StoreError::Stale(format!("group {id} changed since version {v}")));
            }
            let version = now.max(before.updated_at + 1);
            let name = name.clone().unwrap_or(before.name.clone());
            let description = update.description.clone().unwrap_or(before.description.clone());
            diesel::update(
                groups::table.filter(groups::tenant_id.eq(t.as_str()).and(groups::id.eq(id.as_str()))),
            )
            .set((
                groups::name.eq(&name),
                groups::description.eq(&description),
                groups::updated_at.eq(version),
            ))
            .execute(c)
            .map_err(name_taken(&name))?;
            let after = one_group(c, t, id)?;
            let event = NewAuditEvent::success(
                actor,
                "group.update",
                format!("group:{id}"),
                json!({"name": after.name, "previous_name": before.name,
                       "description_changed": after.description != before.description}),
            );
            Ok((after, event))
        })
    }

    fn delete_group(&self, t: &TenantId, actor: &str, id: &GroupId) -> Result<()> {
        self.audited(t, |c| {
            lock_nesting(c, t)?;
            let name: Option<String> = groups::table
                .filter(groups::tenant_id.eq(t.as_str()).and(groups::id.eq(id.as_str())))
                .select(groups::name)
                .first(c)
                .optional()?;
            let name = name.ok_or(StoreError::NotFound { what: "group" })?;
            diesel::delete(
                groups::table.filter(groups::tenant_id.eq(t.as_str()).and(groups::id.eq(id.as_str()))),
            )
            .execute(c)?;
            let event = NewAuditEvent::success(
                actor,
                "group.delete",
                format!("group:{id}"),
                json!({"name": name}),
            );
            Ok(((), event))
        })
    }

    fn add_member(&self, t: &TenantId, actor: &str, group: &GroupId, member: &Principal) -> Result<()> {
        self.audited(t, |c| {
            let now = self.now();
            match member {
                Principal::User(u) => add_user_to_group(c, t, group, u, now)?,
                Principal::Group(child) => add_group_to_group(c, t, group, child, now)?,
            }
            let event = NewAuditEvent::success(
                actor,
                "group.add_member",
                format!("group:{group}"),
                json!({"member": target(member)}),
            );
            Ok(((), event))
        })
    }

    fn remove_member(&self, t: &TenantId, actor: &str, group: &GroupId, member: &Principal) -> Result<()> {
        self.audited(t, |c| {
            let n = match member {
                Principal::User(u) => diesel::delete(
                    user_groups::table.filter(
                        user_groups::tenant_id
                            .eq(t.as_str())
                            .and(user_groups::user_id.eq(u.as_str()))
                            .and(user_groups::group_id.eq(group.as_str())),
                    ),
                )
                .execute(c)?,
                Principal::Group(child) => diesel::delete(
                    group_parents::table.filter(
                        group_parents::tenant_id
                            .eq(t.as_str())
                            .and(group_parents::group_id.eq(child.as_str()))
                            .and(group_parents::parent_id.eq(group.as_str())),
                    ),
                )
                .execute(c)?,
            };
            if n == 0 {
                return Err(StoreError::NotFound {
                    what: "group membership",
                });
            }
            let event = NewAuditEvent::success(
                actor,
                "group.remove_member",
                format!("group:{group}"),
                json!({"member": target(member)}),
            );
            Ok(((), event))
        })
    }

    fn group_members(&self, t: &TenantId, group: &GroupId) -> Result<GroupMembers> {
        let vault = self.personal(t)?;
        let mut conn = self.conn()?;
        let ids: Vec<String> = user_groups::table
            .filter(
                user_groups::tenant_id
                    .eq(t.as_str())
                    .and(user_groups::group_id.eq(group.as_str())),
            )
            .select(user_groups::user_id)
            .load(&mut *conn)?;
        let users = crate::users::usernames(&mut conn, &vault, t, ids)?;
        let children: Vec<String> = group_parents::table
            .filter(
                group_parents::tenant_id
                    .eq(t.as_str())
                    .and(group_parents::parent_id.eq(group.as_str())),
            )
            .select(group_parents::group_id)
            .load(&mut *conn)?;
        let parent = one_group(&mut conn, t, group)?;
        let mut groups: Vec<Group> = group_rows(&mut conn, t, Some(&children))?
            .into_iter()
            .map(|r| Group {
                path: format!("{}/{}", parent.path, r.name),
                id: GroupId(r.id),
                tenant_id: t.clone(),
                name: r.name,
                description: r.description,
                parent_id: r.parent_id.map(GroupId),
                created_at: r.created_at,
                updated_at: r.updated_at,
            })
            .collect();
        groups.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(GroupMembers { users, groups })
    }

    fn create_client_role(
        &self,
        t: &TenantId,
        actor: &str,
        client: &ClientId,
        name: &str,
        description: Option<&str>,
    ) -> Result<ClientRole> {
        crate::roles::role_name(name)?;
        let role = ClientRole {
            id: ClientRoleId(self.new_id()),
            tenant_id: t.clone(),
            client_id: client.clone(),
            name: name.to_owned(),
            description: description.map(str::to_owned),
            created_at: self.now(),
        };
        self.audited(t, |c| {
            diesel::insert_into(client_roles::table)
                .values((
                    client_roles::id.eq(role.id.as_str()),
                    client_roles::tenant_id.eq(t.as_str()),
                    client_roles::client_id.eq(client.as_str()),
                    client_roles::name.eq(&role.name),
                    client_roles::description.eq(&role.description),
                    client_roles::created_at.eq(role.created_at),
                ))
                .execute(c)
                .map_err(|e| match StoreError::from(e) {
                    StoreError::Conflict(_) => {
                        StoreError::Conflict(format!("client {client} already has a role {name:?}"))
                    }
                    StoreError::BadReference(_) => {
                        StoreError::BadReference(format!("client {client} does not exist in this tenant"))
                    }
                    other => other,
                })?;
            let event = NewAuditEvent::success(
                actor,
                "client_role.create",
                format!("client_role:{}", role.id),
                json!({"client_id": client.as_str(), "name": name}),
            );
            Ok((role.clone(), event))
        })
    }

    fn list_client_roles(&self, t: &TenantId, client: &ClientId) -> Result<Vec<ClientRole>> {
        let mut conn = self.conn()?;
        Ok(client_roles::table
            .filter(
                client_roles::tenant_id
                    .eq(t.as_str())
                    .and(client_roles::client_id.eq(client.as_str())),
            )
            .select(CLIENT_ROLE_COLUMNS)
            .order(client_roles::name.asc())
            .load::<ClientRoleRow>(&mut *conn)?
            .into_iter()
            .map(client_role)
            .collect())
    }

    fn delete_client_role(&self, t: &TenantId, actor: &str, id: &ClientRoleId) -> Result<()> {
        self.audited(t, |c| {
            let n = diesel::delete(
                client_roles::table.filter(
                    client_roles::tenant_id
                        .eq(t.as_str())
                        .and(client_roles::id.eq(id.as_str())),
                ),
            )
            .execute(c)?;
            if n == 0 {
                return Err(StoreError::NotFound { what: "client role" });
            }
            let event = NewAuditEvent::success(
                actor,
                "client_role.delete",
                format!("client_role:{id}"),
                json!({}),
            );
            Ok(((), event))
        })
    }

    fn assign(&self, t: &TenantId, actor: &str, to: &Principal, role: &AnyRole) -> Result<()> {
        self.audited(t, |c| {
            insert_assignment(c, t, to, role, self.now())?;
            Ok((
                (),
                NewAuditEvent::success(actor, "role.assign", target(to), role_details(role)),
            ))
        })
    }

    fn unassign(&self, t: &TenantId, actor: &str, from: &Principal, role: &AnyRole) -> Result<()> {
        self.audited(t, |c| {
            if delete_assignment(c, t, from, role)? == 0 {
                return Err(StoreError::NotFound {
                    what: "role assignment",
                });
            }
            Ok((
                (),
                NewAuditEvent::success(actor, "role.unassign", target(from), role_details(role)),
            ))
        })
    }

    fn roles_of_group(&self, t: &TenantId, group: &GroupId) -> Result<(Vec<String>, Vec<ClientRole>)> {
        use crate::schema::roles;
        let mut conn = self.conn()?;
        let tenant_roles: Vec<String> = group_roles::table
            .inner_join(
                roles::table.on(roles::tenant_id
                    .eq(group_roles::tenant_id)
                    .and(roles::id.eq(group_roles::role_id))),
            )
            .filter(
                group_roles::tenant_id
                    .eq(t.as_str())
                    .and(group_roles::group_id.eq(group.as_str())),
            )
            .select(roles::name)
            .order(roles::name.asc())
            .load(&mut *conn)?;
        let client: Vec<ClientRole> = group_client_roles::table
            .inner_join(
                client_roles::table.on(client_roles::tenant_id
                    .eq(group_client_roles::tenant_id)
                    .and(client_roles::id.eq(group_client_roles::client_role_id))),
            )
            .filter(
                group_client_roles::tenant_id
                    .eq(t.as_str())
                    .and(group_client_roles::group_id.eq(group.as_str())),
            )
            .select(CLIENT_ROLE_COLUMNS)
            .order((client_roles::client_id.asc(), client_roles::name.asc()))
            .load::<ClientRoleRow>(&mut *conn)?
            .into_iter()
            .map(client_role)
            .collect();
        Ok((tenant_roles, client))
    }

    fn direct_groups(&self, t: &TenantId, user: &UserId) -> Result<Vec<GroupId>> {
        let mut conn = self.conn()?;
        Ok(user_groups::table
            .filter(user_groups::tenant_id.eq(t.as_str()))
            .filter(user_groups::user_id.eq(user.as_str()))
            .select(user_groups::group_id)
            .load::<String>(&mut *conn)?
            .into_iter()
            .map(GroupId)
            .collect())
    }

    fn effective_access(&self, t: &TenantId, user: &UserId) -> Result<EffectiveAccess> {
        let mut conn = self.conn()?;
        let rows = load_sql::<AccessRow>(&mut conn, EFFECTIVE_SQL, &[t.as_str(), user.as_str()])?;
        effective_from_rows(t, rows)
    }
}
