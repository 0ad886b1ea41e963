//! What a tenant has now, read once: the input of `plan` and `export`, so both are plain
//! functions over data.

use latchkey_core::{AttributeDef, Client, ClientRole, Group, Role, SamlConnection, Tenant};
use latchkey_store::{AttributeRepo, ClientRepo, Db, GroupRepo, RoleRepo, SamlRepo};
use std::collections::{BTreeMap, BTreeSet};

/// A role as the file names it: a tenant role, or a role of the client of that name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum RoleName {
    Tenant(String),
    Client { client: String, role: String },
}

impl std::fmt::Display for RoleName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RoleName::Tenant(r) => write!(f, "role {r}"),
            RoleName::Client { client, role } => write!(f, "client {client} role {role}"),
        }
    }
}

/// A tenant's objects as the file sees them. `tenant` is `None` for a tenant about to be
/// created (everything in the file is then new).
#[derive(Debug, Clone, Default)]
pub struct Current {
    pub(crate) tenant: Option<Tenant>,
    pub(crate) attributes: Vec<AttributeDef>,
    /// By path.
    pub(crate) groups: Vec<Group>,
    pub(crate) roles: Vec<Role>,
    /// By name, then `client_id`.
    pub(crate) clients: Vec<Client>,
    /// Each client's roles, by `client_id`.
    pub(crate) client_roles: BTreeMap<String, Vec<ClientRole>>,
    /// (role, group name) of every assignment of a role to a group.
    pub(crate) assignments: BTreeSet<(RoleName, String)>,
    /// By name.
    pub(crate) saml: Vec<SamlConnection>,
}

impl Current {
    /// Reads tenant `tenant`'s objects (a few queries per group: tenants have tens of them).
    pub fn load(db: &Db, tenant: &Tenant) -> Result<Self, latchkey_store::StoreError> {
        let t = &tenant.id;
        let groups = db.list_groups(t)?;
        let clients = db.list_clients(t)?;
        let mut client_roles = BTreeMap::new();
        for c in &clients {
            client_roles.insert(c.client_id.0.clone(), db.list_client_roles(t, &c.client_id)?);
        }
        let client_name: BTreeMap<&str, &str> = clients
            .iter()
            .map(|c| (c.client_id.as_str(), c.name.as_str()))
            .collect();
        let mut assignments = BTreeSet::new();
        for g in &groups {
            let (roles, of_clients) = db.roles_of_group(t, &g.id)?;
            for r in roles {
                assignments.insert((RoleName::Tenant(r), g.name.clone()));
            }
            for r in of_clients {
                let client = client_name.get(r.client_id.as_str()).copied().unwrap_or_default();
                let role = RoleName::Client {
                    client: client.to_owned(),
                    role: r.name,
                };
                assignments.insert((role, g.name.clone()));
            }
        }
        let mut saml = db.list_saml_connections(t)?;
        saml.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Current {
            tenant: Some(tenant.clone()),
            attributes: db.attribute_defs(t)?,
            groups,
            roles: db.list_roles(t)?,
            clients,
            client_roles,
            assignments,
            saml,
        })
    }

    /// A tenant that does not exist yet.
    pub fn empty() -> Self {
        Self::default()
    }

    pub(crate) fn group_name(&self, id: &str) -> Option<&str> {
        self.groups
            .iter()
            .find(|g| g.id.as_str() == id)
            .map(|g| g.name.as_str())
    }

    pub(crate) fn roles_of(&self, client_id: &str) -> &[ClientRole] {
        self.client_roles.get(client_id).map_or(&[], Vec::as_slice)
    }
}
