//! Making a plan's changes, in order, each through the store's ordinary operation (so each is
//! audited as usual, in its own transaction). A failure stops at that change: the ones before it
//! are made, none after it; planning and applying the same file again converges.

use super::current::RoleName;
use super::file::ClientEntry;
use super::plan::{Action, Change, Plan};
use super::refuse;
use crate::ServiceError;
use crate::clients::registration;
use latchkey_core::{
    AnyRole, AttributeDef, ClientId, ClientRoleId, GroupId, Principal, Rng, RoleId, Tenant, TenantId,
};
use latchkey_keys::KeyRing;
use latchkey_store::{
    AttributeRepo, AttributeUpdate, ClientRepo, Db, GroupRepo, GroupUpdate, NewTenant, RoleRepo, SamlRepo,
    TenantRepo, TenantUpdate,
};
use serde::Serialize;
use std::collections::BTreeMap;

/// A secret made for a new client: in this answer only.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct NewSecret {
    pub client: String,
    pub client_id: String,
    pub client_secret: String,
}

/// What `apply` did.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Applied {
    /// How many changes were made (all of the plan's).
    pub applied: usize,
    /// The `client_id` of each client created, by name.
    pub created_clients: BTreeMap<String, String>,
    /// Secrets generated for new confidential clients without a `client_secret` reference.
    pub secrets: Vec<NewSecret>,
}

/// The ids of the tenant's objects by the names the file uses, kept up to date as changes
/// create objects.
struct Ids {
    tenant: Tenant,
    groups: BTreeMap<String, GroupId>,
    roles: BTreeMap<String, RoleId>,
    clients: BTreeMap<String, ClientId>,
    client_roles: BTreeMap<(String, String), ClientRoleId>,
}

impl Ids {
    fn load(db: &Db, tenant: Tenant) -> Result<Self, ServiceError> {
        let t = &tenant.id;
        let mut clients = BTreeMap::new();
        let mut client_roles = BTreeMap::new();
        for c in db.list_clients(t)? {
            for r in db.list_client_roles(t, &c.client_id)? {
                client_roles.insert((c.name.clone(), r.name), r.id);
            }
            clients.insert(c.name, c.client_id);
        }
        Ok(Ids {
            groups: db.list_groups(t)?.into_iter().map(|g| (g.name, g.id)).collect(),
            roles: db.list_roles(t)?.into_iter().map(|r| (r.name, r.id)).collect(),
            clients,
            client_roles,
            tenant,
        })
    }

    fn t(&self) -> &TenantId {
        &self.tenant.id
    }

    fn group(&self, name: &str) -> Result<GroupId, ServiceError> {
        self.groups.get(name).cloned().ok_or_else(|| gone("group", name))
    }

    fn client(&self, name: &str) -> Result<ClientId, ServiceError> {
        self.clients
            .get(name)
            .cloned()
            .ok_or_else(|| gone("client", name))
    }

    fn role(&self, role: &RoleName) -> Result<AnyRole, ServiceError> {
        match role {
            RoleName::Tenant(r) => self
                .roles
                .get(r)
                .cloned()
                .map(AnyRole::Tenant)
                .ok_or_else(|| gone("role", r)),
            RoleName::Client { client, role } => self
                .client_roles
                .get(&(client.clone(), role.clone()))
                .cloned()
                .map(AnyRole::Client)
                .ok_or_else(|| gone("client role", &format!("{client}/{role}"))),
        }
    }
}

fn gone(what: &str, name: &str) -> ServiceError {
    refuse(
        format!("{what} {name}"),
        "changed since the plan was made; plan again",
    )
}

/// Makes `plan`'s changes as `actor`. The tenant is the plan's (created first when the plan
/// says so). `rng` makes the secrets of new clients that have no reference; `keys` seals the SP
/// keys of new SAML connections (needed only when [`Plan::needs_keys`]).
pub fn apply(
    db: &Db,
    keys: Option<&KeyRing>,
    actor: &str,
    plan: &Plan,
    rng: &dyn Rng,
) -> Result<Applied, ServiceError> {
    let tenant = match plan.changes.first().map(|c| &c.action) {
        Some(Action::CreateTenant { display_name, policy }) => db.create_tenant(
            actor,
            &NewTenant {
                slug: plan.tenant.clone(),
                display_name: display_name.clone(),
                policy: policy.clone(),
            },
        )?,
        _ => db
            .tenant_by_slug(&plan.tenant)?
            .ok_or_else(|| refuse("tenant", format!("no tenant {:?}", plan.tenant)))?,
    };
    let mut ids = Ids::load(db, tenant)?;
    let mut applied = Applied {
        applied: 0,
        created_clients: BTreeMap::new(),
        secrets: Vec::new(),
    };
    for change in &plan.changes {
        let made = match &change.action {
            Action::CreateSaml(..) | Action::UpdateSaml(..) | Action::DeleteSaml(_) => {
                saml(db, keys, actor, &ids.tenant, &change.action)
            }
            _ => one(db, actor, &mut ids, change, rng, &mut applied),
        };
        made.map_err(|e| ServiceError::Applying {
            line: change.line.clone(),
            done: applied.applied,
            source: Box::new(e),
        })?;
        applied.applied += 1;
    }
    Ok(applied)
}

/// One change. Long but flat: one arm per kind of change, each a store call.
#[allow(clippy::too_many_lines)]
fn one(
    db: &Db,
    actor: &str,
    ids: &mut Ids,
    change: &Change,
    rng: &dyn Rng,
    applied: &mut Applied,
) -> Result<(), ServiceError> {
    let t = ids.t().clone();
    match &change.action {
        // Made before the loop; SAML changes by `saml` (they need the key ring).
        Action::CreateTenant { .. }
        | Action::CreateSaml(..)
        | Action::UpdateSaml(..)
        | Action::DeleteSaml(_) => {}
        Action::UpdateTenant { display_name, policy } => {
            // The stored webhook secret stays: the file never carries it.
            let now = db.tenant(&t)?.ok_or_else(|| gone("tenant", &ids.tenant.slug))?;
            let policy = policy.clone().map(|mut p| {
                p.risk
                    .webhook_secret_sealed
                    .clone_from(&now.policy.risk.webhook_secret_sealed);
                p
            });
            let update = TenantUpdate {
                display_name: display_name.clone(),
                policy,
            };
            ids.tenant = db.update_tenant(&t, actor, &update)?;
        }
        Action::DefineAttribute(a) => {
            let def = AttributeDef {
                tenant_id: t.clone(),
                name: a.name.clone(),
                label: a.label.clone(),
                kind: a.kind,
                required: a.required,
                unique: a.unique,
                editable_by: a.editable_by,
                created_at: 0,
                updated_at: 0,
            };
            db.define_attribute(&t, actor, &def)?;
        }
        Action::UpdateAttribute(a) => {
            let update = AttributeUpdate {
                label: Some(a.label.clone()),
                required: Some(a.required),
                unique: Some(a.unique),
                editable_by: Some(a.editable_by),
                if_version: None,
            };
            db.update_attribute(&t, actor, &a.name, &update)?;
        }
        Action::RemoveAttribute(name) => db.remove_attribute(&t, actor, name, None)?,
        Action::CreateGroup(name, description) => {
            let g = db.create_group(&t, actor, name, description.as_deref())?;
            ids.groups.insert(g.name, g.id);
        }
        Action::DescribeGroup(name, description) => {
            let update = GroupUpdate {
                name: None,
                description: Some(description.clone()),
                if_version: None,
            };
            db.update_group(&t, actor, &ids.group(name)?, &update)?;
        }
        Action::DeleteGroup(name) => db.delete_group(&t, actor, &ids.group(name)?)?,
        Action::Unnest { group, parent } => {
            let child = Principal::Group(ids.group(group)?);
            db.remove_member(&t, actor, &ids.group(parent)?, &child)?;
        }
        Action::Nest { group, parent } => {
            let child = Principal::Group(ids.group(group)?);
            db.add_member(&t, actor, &ids.group(parent)?, &child)?;
        }
        Action::CreateRole(name, description) => {
            let r = db.create_role(&t, actor, name, description.as_deref())?;
            ids.roles.insert(r.name, r.id);
        }
        Action::DescribeRole(role, description) => {
            db.describe_role(&t, actor, &ids.role(role)?, description.as_deref())?;
        }
        Action::DeleteRole(name) => {
            let role = ids.roles.get(name).cloned().ok_or_else(|| gone("role", name))?;
            db.delete_role(&t, actor, &role)?;
        }
        Action::CreateClient(entry, hash) => {
            create_client(db, actor, ids, entry, hash.as_deref(), rng, applied)?;
        }
        Action::UpdateClient(entry) => {
            let (new, _) =
                registration(&entry.spec(), rng).map_err(|e| refuse(&entry.name, e.to_string()))?;
            let edit = |c: &latchkey_core::Client| Ok(super::plan::registered(c, &new));
            db.update_client(&t, actor, &ids.client(entry.name.trim())?, None, &edit)?;
        }
        Action::SetSecret { client, hash } => {
            db.set_client_secret_hash(&t, actor, &ids.client(client)?, hash, None)?;
        }
        Action::DeleteClient(id) => db.delete_client(&t, actor, id, None)?,
        Action::CreateClientRole {
            client,
            name,
            description,
        } => {
            let r = db.create_client_role(&t, actor, &ids.client(client)?, name, description.as_deref())?;
            ids.client_roles.insert((client.clone(), r.name), r.id);
        }
        Action::DeleteClientRole { client, name } => {
            let role = RoleName::Client {
                client: client.clone(),
                role: name.clone(),
            };
            let AnyRole::Client(id) = ids.role(&role)? else {
                return Err(gone("client role", name));
            };
            db.delete_client_role(&t, actor, &id)?;
        }
        Action::Assign(role, group) => {
            db.assign(&t, actor, &Principal::Group(ids.group(group)?), &ids.role(role)?)?;
        }
        Action::Unassign(role, group) => {
            db.unassign(&t, actor, &Principal::Group(ids.group(group)?), &ids.role(role)?)?;
        }
    }
    Ok(())
}

/// A SAML connection's change, as `latchkey saml add|update|remove` and the admin API make it:
/// created by `saml::connect` (a fresh SP key sealed with `keys`), updated through the store
/// after the options' references are checked again (they may have changed since the plan).
fn saml(
    db: &Db,
    keys: Option<&KeyRing>,
    actor: &str,
    tenant: &Tenant,
    action: &Action,
) -> Result<(), ServiceError> {
    let id_of = |name: &str| -> Result<String, ServiceError> {
        db.saml_connection_by_name(&tenant.id, name)?
            .map(|c| c.id)
            .ok_or_else(|| gone("saml_connection", name))
    };
    match action {
        Action::CreateSaml(spec, now) => {
            let keys = keys.ok_or_else(|| {
                refuse(
                    format!("saml_connection {}", spec.name),
                    "a new connection's SP key needs the key ring",
                )
            })?;
            crate::saml::connect(db, keys, tenant, actor, (**spec).clone(), *now)?;
        }
        Action::UpdateSaml(name, change) => {
            if let Some(options) = &change.options {
                crate::saml::check_options(db, tenant, options)?;
            }
            db.update_saml_connection(&tenant.id, actor, &id_of(name)?, change)?;
        }
        Action::DeleteSaml(name) => db.delete_saml_connection(&tenant.id, actor, &id_of(name)?, None)?,
        _ => {}
    }
    Ok(())
}

/// Registers a client as `client create` would, with the referenced secret's hash or, for a
/// secret method without a reference, a generated secret returned once.
fn create_client(
    db: &Db,
    actor: &str,
    ids: &mut Ids,
    entry: &ClientEntry,
    hash: Option<&str>,
    rng: &dyn Rng,
    applied: &mut Applied,
) -> Result<(), ServiceError> {
    let (mut new, mut secret) =
        registration(&entry.spec(), rng).map_err(|e| refuse(&entry.name, e.to_string()))?;
    if let Some(h) = hash {
        new.secret_hash = Some(h.to_owned());
        secret = None;
    }
    let client = db.create_client(ids.t(), actor, &new)?;
    applied
        .created_clients
        .insert(client.name.clone(), client.client_id.0.clone());
    if let Some(s) = secret {
        applied.secrets.push(NewSecret {
            client: client.name.clone(),
            client_id: client.client_id.0.clone(),
            client_secret: s,
        });
    }
    ids.clients.insert(client.name, client.client_id);
    Ok(())
}
