//! `/admin/t/{tenant}/groups…` and `/roles…`: groups and their members, tenant roles and their
//! assignment to users and groups, as the CLI's `group` and `role` commands do them. Writes
//! need the admin role and are audited by the store; reads are audited here.

use super::{audit, authenticate, body, etag_response, if_match, json_ok, list_of, missing, not_found};
use crate::state::AppState;
use crate::web::blocking::Blocking;
use crate::web::errors::{AppError, Kind};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_core::{
    AnyRole, ClientId, ClientRole, ClientRoleId, Group, GroupId, Outcome, Principal, RoleId, TenantId, UserId,
};
use latchkey_store::{ClientRepo, Db, GroupRepo, GroupUpdate, RoleRepo, StoreError};
use serde_json::json;

#[derive(serde::Deserialize, schemars::JsonSchema, Default)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "NewNamed")]
pub(super) struct NewBody {
    name: String,
    description: Option<String>,
}

/// An admin's create from `{"name", "description"}`: 201 with what `make` made;
/// `Idempotency-Key` works.
async fn create_named<T: serde::Serialize + Send + 'static>(
    (req, slug, state): (&HttpRequest, &str, &AppState),
    bytes: &[u8],
    make: impl FnOnce(&Db, &TenantId, &str, &NewBody) -> Result<T, StoreError> + Send + 'static,
) -> Result<HttpResponse, AppError> {
    async {
        let caller = authenticate(req, state, slug).await?;
        let run = async {
            let b: NewBody = body(bytes, false)?;
            let (tid, actor) = (caller.tenant.id.clone(), caller.actor());
            let created = state.store(move |db| make(db, &tid, &actor, &b)).await?;
            Ok((StatusCode::CREATED, json!(created)))
        };
        super::idempotency::once(state, &caller, (req, bytes), run).await
    }
    .await
    .map_err(AppError::problem)
}

/// `GET …/groups`: a page of groups by path (`/staff/finance`).
pub(super) async fn list_groups(
    req: HttpRequest,
    slug: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let fetch = |db: &Db, t: &TenantId| db.list_groups(t);
    list_of((&req, &slug, &state), ("group.list", "groups"), fetch, |g| {
        g.path.clone()
    })
    .await
}

/// `POST …/groups` `{"name", "description"}`: 201 with the group (top level; nest it with the
/// members call).
pub(super) async fn create_group(
    req: HttpRequest,
    slug: web::Path<String>,
    state: web::Data<AppState>,
    bytes: web::Bytes,
) -> Result<HttpResponse, AppError> {
    create_named((&req, &slug, &state), &bytes, |db, t, actor, b| {
        db.create_group(t, actor, &b.name, b.description.as_deref())
    })
    .await
}

/// A group, its direct members and the roles assigned to it.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub(super) struct GroupView {
    group: Group,
    members: Members,
    /// Tenant role names.
    roles: Vec<String>,
    client_roles: Vec<ClientRole>,
}

#[derive(serde::Serialize, schemars::JsonSchema)]
struct Members {
    users: Vec<Member>,
    groups: Vec<Group>,
}

#[derive(serde::Serialize, schemars::JsonSchema)]
struct Member {
    id: UserId,
    username: String,
}

/// `GET …/groups/{id}`: the group, its direct members and the roles assigned to it.
pub(super) async fn get_group(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    async {
        let (slug, id) = path.into_inner();
        let caller = authenticate(&req, &state, &slug).await?;
        let (tid, gid) = (caller.tenant.id.clone(), GroupId(id.clone()));
        let found = state
            .store(move |db| {
                let Some(g) = db.group(&tid, &gid)? else {
                    return Ok(None);
                };
                let members = db.group_members(&tid, &gid)?;
                let (roles, client_roles) = db.roles_of_group(&tid, &gid)?;
                Ok::<_, StoreError>(Some((g, members, roles, client_roles)))
            })
            .await?;
        let (g, members, roles, client_roles) = found.ok_or_else(|| not_found("group"))?;
        let users: Vec<Member> = members
            .users
            .into_iter()
            .map(|(id, username)| Member { id, username })
            .collect();
        let target = format!("group:{id}");
        audit(
            &state,
            &caller,
            Outcome::Success,
            "group.read",
            &target,
            json!({}),
        )
        .await?;
        let version = g.updated_at;
        let view = GroupView {
            group: g,
            members: Members {
                users,
                groups: members.groups,
            },
            roles,
            client_roles,
        };
        Ok(etag_response(&view, version))
    }
    .await
    .map_err(AppError::problem)
}

/// What a merge patch of a group may change; `null` clears the description.
#[allow(clippy::option_option)] // absent, `null` or a value: a merge patch's three cases
#[derive(serde::Deserialize, schemars::JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct GroupPatch {
    #[serde(default, deserialize_with = "super::present")]
    #[schemars(with = "String")]
    name: Option<String>,
    #[serde(default, deserialize_with = "super::present")]
    description: Option<Option<String>>,
}

/// `PATCH …/groups/{id}`: a merge patch of `name` and `description` (`null` clears it); with
/// `If-Match`, 412 when the group changed since. Answers the group and its new `ETag`.
pub(super) async fn update_group(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
    bytes: web::Bytes,
) -> Result<HttpResponse, AppError> {
    async {
        let (slug, id) = path.into_inner();
        let caller = authenticate(&req, &state, &slug).await?;
        let asked: GroupPatch = super::merge_object(&req, &bytes)?;
        let update = GroupUpdate {
            if_version: if_match(&req)?,
            name: asked.name,
            description: asked.description,
        };
        let (tid, gid, actor) = (caller.tenant.id.clone(), GroupId(id), caller.actor());
        let g = state
            .store(move |db| db.update_group(&tid, &actor, &gid, &update))
            .await
            .map_err(missing("group"))?;
        Ok(etag_response(&g, g.updated_at))
    }
    .await
    .map_err(AppError::problem)
}

/// What a `DELETE` removed: its kind and id.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub(super) struct Deleted {
    deleted: &'static str,
    id: String,
}

/// `DELETE …/groups/{id}`: its memberships and role assignments go; groups inside it become
/// top-level groups.
pub(super) async fn delete_group(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    async {
        let (slug, id) = path.into_inner();
        let caller = authenticate(&req, &state, &slug).await?;
        let (tid, gid, actor) = (caller.tenant.id.clone(), GroupId(id.clone()), caller.actor());
        state
            .store(move |db| db.delete_group(&tid, &actor, &gid))
            .await
            .map_err(missing("group"))?;
        Ok(json_ok(&Deleted { deleted: "group", id }))
    }
    .await
    .map_err(AppError::problem)
}

/// For calls whose only input is the path: a reference the store can't find in the tenant is
/// a 404 like any other missing object, never a hint that it exists elsewhere.
fn path_refs(e: AppError) -> AppError {
    if matches!(e.kind, Kind::NotFound | Kind::BadRequest) {
        AppError::not_found(e.message).json()
    } else {
        e.json()
    }
}

/// A user or group named in a path: `users/{id}` or `groups/{id}`.
fn principal(kind: &str, id: String) -> Result<Principal, AppError> {
    match kind {
        "users" => Ok(Principal::User(UserId(id))),
        "groups" => Ok(Principal::Group(GroupId(id))),
        _ => Err(not_found("resource")),
    }
}

/// A `PUT` (make the link) or `DELETE` (undo it) naming a user or group (`kind`, `id`) in the
/// path: the admin role, then `change(db, tenant, actor, who, make)` on the blocking pool; a
/// path that names nothing in this tenant is 404. Answers whether the link now stands.
async fn link(
    (req, slug, state): (&HttpRequest, &str, &AppState),
    (kind, id): (&str, &str),
    change: impl FnOnce(&Db, &TenantId, &str, &Principal, bool) -> Result<(), StoreError> + Send + 'static,
) -> Result<bool, AppError> {
    let caller = authenticate(req, state, slug).await?;
    let who = principal(kind, id.to_owned())?;
    let make = *req.method() == actix_web::http::Method::PUT;
    let (tid, actor) = (caller.tenant.id.clone(), caller.actor());
    state
        .store(move |db| change(db, &tid, &actor, &who, make))
        .await
        .map_err(path_refs)?;
    Ok(make)
}

/// A user or group a path names: `users` or `groups`, and its id.
#[derive(serde::Serialize, schemars::JsonSchema)]
struct Named {
    kind: String,
    id: String,
}

#[derive(serde::Serialize, schemars::JsonSchema)]
pub(super) struct Membership {
    group: String,
    member: Named,
    /// Whether the member is in the group now (`PUT`) or no longer (`DELETE`).
    member_now: bool,
}

#[derive(serde::Serialize, schemars::JsonSchema)]
pub(super) struct Assignment {
    role: String,
    principal: Named,
    assigned: bool,
}

#[derive(serde::Serialize, schemars::JsonSchema)]
pub(super) struct ClientAssignment {
    client_role: String,
    principal: Named,
    assigned: bool,
}

/// `PUT` / `DELETE …/groups/{id}/members/{users|groups}/{member}`: adds or removes a member;
/// a group inside another is a nesting (409 when it would make a cycle or already has a parent).
pub(super) async fn member(
    req: HttpRequest,
    path: web::Path<(String, String, String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    async {
        let (slug, id, kind, member) = path.into_inner();
        let gid = GroupId(id.clone());
        let add = link(
            (&req, &slug, &state),
            (&kind, &member),
            move |db, t, actor, who, add| {
                if add {
                    db.add_member(t, actor, &gid, who)
                } else {
                    db.remove_member(t, actor, &gid, who)
                }
            },
        )
        .await?;
        Ok(json_ok(&Membership {
            group: id,
            member: Named { kind, id: member },
            member_now: add,
        }))
    }
    .await
    .map_err(AppError::problem)
}

/// `GET …/roles`: a page of tenant roles by name.
pub(super) async fn list_roles(
    req: HttpRequest,
    slug: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let fetch = |db: &Db, t: &TenantId| db.list_roles(t);
    list_of((&req, &slug, &state), ("role.list", "roles"), fetch, |r| {
        r.name.clone()
    })
    .await
}

/// `POST …/roles` `{"name", "description"}`: 201 with the role.
pub(super) async fn create_role(
    req: HttpRequest,
    slug: web::Path<String>,
    state: web::Data<AppState>,
    bytes: web::Bytes,
) -> Result<HttpResponse, AppError> {
    create_named((&req, &slug, &state), &bytes, |db, t, actor, b| {
        db.create_role(t, actor, &b.name, b.description.as_deref())
    })
    .await
}

/// `DELETE …/roles/{id}`: the role and its assignments.
pub(super) async fn delete_role(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    async {
        let (slug, id) = path.into_inner();
        let caller = authenticate(&req, &state, &slug).await?;
        let (tid, rid, actor) = (caller.tenant.id.clone(), RoleId(id.clone()), caller.actor());
        state
            .store(move |db| db.delete_role(&tid, &actor, &rid))
            .await
            .map_err(missing("role"))?;
        Ok(json_ok(&Deleted { deleted: "role", id }))
    }
    .await
    .map_err(AppError::problem)
}

/// `PUT` / `DELETE …/roles/{id}/{users|groups}/{principal}`: assigns or unassigns the role.
pub(super) async fn assignment(
    req: HttpRequest,
    path: web::Path<(String, String, String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    async {
        let (slug, id, kind, to) = path.into_inner();
        let role = AnyRole::Tenant(RoleId(id.clone()));
        let add = link(
            (&req, &slug, &state),
            (&kind, &to),
            move |db, t, actor, who, add| assign(db, (t, actor), who, &role, add),
        )
        .await?;
        Ok(json_ok(&Assignment {
            role: id,
            principal: Named { kind, id: to },
            assigned: add,
        }))
    }
    .await
    .map_err(AppError::problem)
}

/// Assigns (`add`) or unassigns a role.
fn assign(
    db: &Db,
    (t, actor): (&TenantId, &str),
    who: &Principal,
    role: &AnyRole,
    add: bool,
) -> Result<(), StoreError> {
    if add {
        db.assign(t, actor, who, role)
    } else {
        db.unassign(t, actor, who, role)
    }
}

/// The client's role `role`, or 404 when the client or the role (of this client) is not here.
fn client_role_of(db: &Db, t: &TenantId, client: &ClientId, role: &str) -> Result<ClientRoleId, StoreError> {
    db.client(t, client)?
        .ok_or(StoreError::NotFound { what: "client" })?;
    db.list_client_roles(t, client)?
        .into_iter()
        .find(|r| r.id.as_str() == role)
        .map(|r| r.id)
        .ok_or(StoreError::NotFound { what: "client role" })
}

/// `GET …/clients/{id}/roles`: a page of the client's roles by name.
pub(super) async fn list_client_roles(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let (slug, id) = path.into_inner();
    let cid = ClientId(id);
    let fetch = move |db: &Db, t: &TenantId| {
        db.client(t, &cid)?
            .ok_or(StoreError::NotFound { what: "client" })?;
        db.list_client_roles(t, &cid)
    };
    list_of(
        (&req, &slug, &state),
        ("client_role.list", "client_roles"),
        fetch,
        |r| r.name.clone(),
    )
    .await
}

/// `POST …/clients/{id}/roles` `{"name", "description"}`: 201 with the client role.
pub(super) async fn create_client_role(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
    bytes: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let (slug, id) = path.into_inner();
    let cid = ClientId(id);
    create_named((&req, &slug, &state), &bytes, move |db, t, actor, b| {
        db.client(t, &cid)?
            .ok_or(StoreError::NotFound { what: "client" })?;
        db.create_client_role(t, actor, &cid, &b.name, b.description.as_deref())
    })
    .await
}

/// `DELETE …/clients/{id}/roles/{role}`: the client role and its assignments.
pub(super) async fn delete_client_role(
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    async {
        let (slug, id, role) = path.into_inner();
        let caller = authenticate(&req, &state, &slug).await?;
        let (tid, cid, actor, r) = (
            caller.tenant.id.clone(),
            ClientId(id),
            caller.actor(),
            role.clone(),
        );
        state
            .store(move |db| {
                let rid = client_role_of(db, &tid, &cid, &r)?;
                db.delete_client_role(&tid, &actor, &rid)
            })
            .await
            .map_err(path_refs)?;
        Ok(json_ok(&Deleted {
            deleted: "client_role",
            id: role,
        }))
    }
    .await
    .map_err(AppError::problem)
}

/// `PUT` / `DELETE …/clients/{id}/roles/{role}/{users|groups}/{principal}`: assigns or
/// unassigns the client role.
pub(super) async fn client_assignment(
    req: HttpRequest,
    path: web::Path<(String, String, String, String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    async {
        let (slug, id, role, kind, to) = path.into_inner();
        let (cid, r) = (ClientId(id), role.clone());
        let add = link(
            (&req, &slug, &state),
            (&kind, &to),
            move |db, t, actor, who, add| {
                let rid = AnyRole::Client(client_role_of(db, t, &cid, &r)?);
                assign(db, (t, actor), who, &rid, add)
            },
        )
        .await?;
        Ok(json_ok(&ClientAssignment {
            client_role: role,
            principal: Named { kind, id: to },
            assigned: add,
        }))
    }
    .await
    .map_err(AppError::problem)
}
