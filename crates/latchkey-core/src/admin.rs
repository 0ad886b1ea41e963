//! Who may call the admin API: fine-grained permissions, grouped into built-in admin roles and a
//! tenant's custom ones. A credential starts with none (least privilege); every call names the
//! one permission it needs, and the refusal or success is audited with it.

use crate::model::wire_enum;
use serde::{Deserialize, Serialize};
use std::str::FromStr;

wire_enum!(
    /// One thing an admin credential may do. Tenant permissions act inside one tenant; the
    /// `system:` ones act on the installation and are never granted by a tenant.
    Permission {
        UsersRead = "users:read",
        UsersWrite = "users:write",
        UsersDisable = "users:disable",
        UsersDelete = "users:delete",
        UsersCredentials = "users:credentials",
        UsersExport = "users:export",
        SessionsRead = "sessions:read",
        SessionsRevoke = "sessions:revoke",
        GroupsRead = "groups:read",
        GroupsWrite = "groups:write",
        RolesRead = "roles:read",
        RolesWrite = "roles:write",
        AttributesRead = "attributes:read",
        AttributesWrite = "attributes:write",
        InvitationsRead = "invitations:read",
        InvitationsWrite = "invitations:write",
        ClientsRead = "clients:read",
        ClientsWrite = "clients:write",
        ClientsSecrets = "clients:secrets",
        SamlRead = "saml:read",
        SamlWrite = "saml:write",
        KeysRead = "keys:read",
        KeysManage = "keys:manage",
        PoliciesRead = "policies:read",
        PoliciesWrite = "policies:write",
        AuditRead = "audit:read",
        CredentialsRead = "credentials:read",
        CredentialsWrite = "credentials:write",
        IncidentsManage = "incidents:manage",
        TenantsRead = "system:tenants:read",
        TenantsWrite = "system:tenants:write",
        MasterKey = "system:master-key",
        SystemAuditRead = "system:audit:read",
    }
);

impl Permission {
    /// Whether this permission acts on the installation rather than inside one tenant.
    pub fn is_system(self) -> bool {
        self.as_str().starts_with("system:")
    }

    /// Whether this permission only reads.
    pub fn is_read(self) -> bool {
        self.as_str().ends_with(":read")
    }

    fn bit(self) -> u64 {
        let i = Permission::ALL.iter().position(|p| *p == self).unwrap_or(63);
        1 << i
    }
}

/// A set of permissions (a bit set: checked on every admin call, so it costs nothing).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Permissions(u64);

impl Permissions {
    pub const NONE: Permissions = Permissions(0);

    pub fn of(ps: impl IntoIterator<Item = Permission>) -> Self {
        ps.into_iter().fold(Self::NONE, Permissions::with)
    }

    /// Every tenant permission (no `system:` one).
    pub fn tenant_all() -> Self {
        Self::of(Permission::ALL.iter().copied().filter(|p| !p.is_system()))
    }

    #[must_use]
    pub fn with(self, p: Permission) -> Self {
        Self(self.0 | p.bit())
    }

    #[must_use]
    pub fn without(self, p: Permission) -> Self {
        Self(self.0 & !p.bit())
    }

    #[must_use]
    pub fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    pub fn contains(self, p: Permission) -> bool {
        self.0 & p.bit() != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = Permission> {
        Permission::ALL.iter().copied().filter(move |p| self.contains(*p))
    }

    /// Space-separated wire names, in declaration order (as stored).
    pub fn to_words(self) -> String {
        self.iter().map(Permission::as_str).collect::<Vec<_>>().join(" ")
    }

    /// Parses space-separated permission names; an unknown one is an error naming it.
    pub fn from_words(s: &str) -> Result<Self, String> {
        s.split_whitespace()
            .map(Permission::from_str)
            .collect::<Result<Vec<_>, _>>()
            .map(Self::of)
    }
}

impl Serialize for Permissions {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for Permissions {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Vec::<Permission>::deserialize(d).map(Self::of)
    }
}

/// On the wire a set is a list of permission names (duplicates are accepted and fold).
#[cfg(feature = "schema")]
impl schemars::JsonSchema for Permissions {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Permissions".into()
    }

    fn json_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "array", "items": g.subschema_for::<Permission>()})
    }
}

wire_enum!(
    /// The admin roles every tenant has. A tenant can add custom roles beside them.
    BuiltinAdminRole {
        TenantAdmin = "tenant-admin",
        UserManager = "user-manager",
        Auditor = "auditor",
        ReadOnly = "read-only",
        SystemAdmin = "system-admin",
    }
);

impl BuiltinAdminRole {
    /// A built-in role a tenant's credential may hold (all but `system-admin`), by name; the
    /// error says which names there are. A new tenant's first credential takes only these.
    pub fn tenant_role(name: &str) -> Result<Self, String> {
        match Self::from_str(name.trim()) {
            Ok(r) if r != Self::SystemAdmin => Ok(r),
            _ => Err(format!(
                "{name:?} is not a built-in tenant role (tenant-admin, user-manager, auditor, read-only)"
            )),
        }
    }

    /// What the role grants.
    pub fn permissions(self) -> Permissions {
        use Permission as P;
        match self {
            Self::TenantAdmin => Permissions::tenant_all(),
            // Helpdesk: people and their access, not the tenant's configuration.
            Self::UserManager => Permissions::of([
                P::UsersRead,
                P::UsersWrite,
                P::UsersDisable,
                P::UsersCredentials,
                P::UsersExport,
                P::SessionsRead,
                P::SessionsRevoke,
                P::GroupsRead,
                P::GroupsWrite,
                P::RolesRead,
                P::AttributesRead,
                P::InvitationsRead,
                P::InvitationsWrite,
                P::ClientsRead,
            ]),
            // Reads the audit trail and the security configuration it refers to.
            Self::Auditor => Permissions::of([
                P::AuditRead,
                P::CredentialsRead,
                P::KeysRead,
                P::PoliciesRead,
                P::SamlRead,
                P::ClientsRead,
                P::UsersRead,
                P::SessionsRead,
            ]),
            Self::ReadOnly => Permissions::of(
                Permission::ALL
                    .iter()
                    .copied()
                    .filter(|p| p.is_read() && !p.is_system() && *p != P::AuditRead),
            ),
            Self::SystemAdmin => Permissions::of(Permission::ALL.iter().copied().filter(|p| p.is_system())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permissions_round_trip_and_unknown_names_are_refused() {
        let set = Permissions::of([Permission::UsersRead, Permission::KeysManage]);
        assert_eq!(set.to_words(), "users:read keys:manage");
        assert_eq!(Permissions::from_words("keys:manage  users:read"), Ok(set));
        assert!(Permissions::from_words("users:read users:everything").is_err());
        assert!(Permission::ALL.len() <= 63, "the bit set has 63 places");
    }

    #[test]
    fn built_in_roles_keep_tenant_and_system_apart() {
        let admin = BuiltinAdminRole::TenantAdmin.permissions();
        assert!(admin.iter().all(|p| !p.is_system()));
        assert!(admin.contains(Permission::KeysManage));
        let system = BuiltinAdminRole::SystemAdmin.permissions();
        assert!(system.iter().all(Permission::is_system));
        let ro = BuiltinAdminRole::ReadOnly.permissions();
        assert!(ro.iter().all(Permission::is_read), "{ro:?}");
        assert!(!ro.contains(Permission::AuditRead));
        assert!(
            !BuiltinAdminRole::UserManager
                .permissions()
                .contains(Permission::ClientsWrite)
        );
        assert!(
            BuiltinAdminRole::Auditor
                .permissions()
                .contains(Permission::AuditRead)
        );
    }
}
