//! Groups and client roles, and what a user holds through them: the authorization model of
//! `docs/authorization.md`.

use crate::{ClientId, ClientRoleId, GroupId, RoleId, TenantId, UnixMillis, UserId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A tenant group. Groups nest: a group has at most one parent, so it has one `path`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Group {
    pub id: GroupId,
    pub tenant_id: TenantId,
    pub name: String,
    pub description: Option<String>,
    pub parent_id: Option<GroupId>,
    /// The names from the top-level group down to this one, Keycloak style: `/staff/finance`.
    pub path: String,
    pub created_at: UnixMillis,
    /// The version: moves on with every change of the name or description.
    #[serde(default)]
    pub updated_at: UnixMillis,
}

/// A role defined by one client (application), such as `reports:read` of the reporting portal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ClientRole {
    pub id: ClientRoleId,
    pub tenant_id: TenantId,
    pub client_id: ClientId,
    pub name: String,
    pub description: Option<String>,
    pub created_at: UnixMillis,
}

/// Who a group membership or a role assignment is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Principal {
    User(UserId),
    Group(GroupId),
}

/// A role, of the tenant or of one client: what `role assign` hands out.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AnyRole {
    Tenant(RoleId),
    Client(ClientRoleId),
}

/// A group a user is in, directly or through a group inside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct EffectiveGroup {
    pub name: String,
    pub path: String,
}

/// Everything a user holds: their own roles plus those of every group they are in, through
/// nesting too. Names are sorted and appear once.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct EffectiveAccess {
    /// Tenant roles.
    pub roles: Vec<String>,
    /// Client roles by `client_id`.
    pub client_roles: BTreeMap<ClientId, Vec<String>>,
    /// Groups, sorted by path.
    pub groups: Vec<EffectiveGroup>,
}
