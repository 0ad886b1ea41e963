//! Comparing a file with a tenant: an ordered list of typed changes, each with the line an
//! operator reads (`+ group staff`, `~ client Portal: scopes …`, `- role old`). Objects the file
//! does not mention are deleted only with `prune`; otherwise the plan lists them as kept.

use super::current::{Current, RoleName};
use super::file::{AttributeSpec, ClientEntry, SecretRef, TenantFile};
use super::refuse;
use super::saml::Metadata;
use crate::ServiceError;
use crate::clients::{registration, uses_secret};
use latchkey_core::{Client, ClientId, OsRng, TenantPolicy, sha256_hex};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// The shortest secret a reference may name.
const MIN_SECRET_CHARS: usize = 32;

/// Resolves a client secret reference to the secret (the CLI reads the environment or a file;
/// the admin API refuses every reference).
pub trait Secrets {
    fn resolve(&self, at: &str, reference: &SecretRef) -> Result<String, ServiceError>;
}

/// What a change does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Op {
    Create,
    Update,
    Delete,
}

/// One change, in the order `apply` makes them.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Change {
    pub op: Op,
    /// `tenant`, `attribute`, `group`, `role`, `client`, `client_role`, `assignment` or
    /// `saml_connection`.
    pub kind: &'static str,
    pub name: String,
    /// The change as a diff line.
    pub line: String,
    #[serde(skip)]
    pub(crate) action: Action,
}

/// An object of the tenant that the file does not mention, left as it is (no `prune`).
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Kept {
    pub kind: &'static str,
    pub name: String,
    pub line: String,
}

/// The changes that make a tenant what a file says.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Plan {
    pub tenant: String,
    pub prune: bool,
    pub changes: Vec<Change>,
    pub kept: Vec<Kept>,
}

impl Plan {
    /// Every line, changes first, then what is kept.
    pub fn lines(&self) -> impl Iterator<Item = &str> {
        self.changes
            .iter()
            .map(|c| c.line.as_str())
            .chain(self.kept.iter().map(|k| k.line.as_str()))
    }

    /// The admin-permission areas the changes touch (`policies`, `attributes`, `groups`,
    /// `roles`, `clients`, `saml`), for a caller that needs `{area}:write` for each.
    pub fn areas(&self) -> std::collections::BTreeSet<&'static str> {
        self.changes
            .iter()
            .map(|c| match c.kind {
                "tenant" => "policies",
                "attribute" => "attributes",
                "group" => "groups",
                "role" | "assignment" => "roles",
                "saml_connection" => "saml",
                _ => "clients",
            })
            .collect()
    }

    /// Whether applying needs the key ring: a new SAML connection's SP key is sealed with it.
    pub fn needs_keys(&self) -> bool {
        self.changes
            .iter()
            .any(|c| matches!(c.action, Action::CreateSaml(..)))
    }

    /// Whether the plan creates the tenant.
    pub fn creates_tenant(&self) -> bool {
        self.changes
            .iter()
            .any(|c| matches!(c.action, Action::CreateTenant { .. }))
    }
}

/// What `apply` does for a change. Objects are named as in the file; ids are looked up when the
/// change is made, since earlier changes create them.
#[derive(Debug, Clone)]
pub(crate) enum Action {
    CreateTenant {
        display_name: Option<String>,
        policy: TenantPolicy,
    },
    UpdateTenant {
        display_name: Option<String>,
        policy: Option<TenantPolicy>,
    },
    DefineAttribute(AttributeSpec),
    UpdateAttribute(AttributeSpec),
    RemoveAttribute(String),
    CreateGroup(String, Option<String>),
    DescribeGroup(String, Option<String>),
    DeleteGroup(String),
    Unnest {
        group: String,
        parent: String,
    },
    Nest {
        group: String,
        parent: String,
    },
    CreateRole(String, Option<String>),
    DescribeRole(RoleName, Option<String>),
    DeleteRole(String),
    CreateClient(Box<ClientEntry>, Option<String>),
    UpdateClient(Box<ClientEntry>),
    SetSecret {
        client: String,
        hash: String,
    },
    DeleteClient(ClientId),
    CreateClientRole {
        client: String,
        name: String,
        description: Option<String>,
    },
    DeleteClientRole {
        client: String,
        name: String,
    },
    Assign(RoleName, String),
    Unassign(RoleName, String),
    /// A connection to make, with the time its SP certificate starts and refreshes count from.
    CreateSaml(Box<crate::saml::ConnectionSpec>, i64),
    /// A connection (by name) and its change.
    UpdateSaml(String, Box<latchkey_store::SamlConnectionUpdate>),
    DeleteSaml(String),
}

/// When a change runs: creations and updates first (parents before children), deletions
/// last (links before the objects they link).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Stage {
    Tenant,
    Attributes,
    Groups,
    Unnest,
    Nest,
    Roles,
    Clients,
    ClientRoles,
    Assign,
    /// After roles and groups: a connection's `role_map` and `group_map` may name new ones.
    Saml,
    Unassign,
    DeleteSaml,
    DeleteClientRoles,
    DeleteClients,
    DeleteRoles,
    DeleteGroups,
    DeleteAttributes,
}

/// Collects changes by stage and the objects kept.
pub(super) struct Builder {
    pub(super) prune: bool,
    changes: Vec<(Stage, Change)>,
    kept: Vec<Kept>,
}

impl Builder {
    pub(super) fn add(
        &mut self,
        stage: Stage,
        op: Op,
        (kind, name): (&'static str, &str),
        line: String,
        action: Action,
    ) {
        self.changes.push((
            stage,
            Change {
                op,
                kind,
                name: name.to_owned(),
                line,
                action,
            },
        ));
    }

    /// An object not in the file: deleted with `prune`, else kept.
    pub(super) fn extra(
        &mut self,
        stage: Stage,
        (kind, name): (&'static str, &str),
        what: &str,
        action: Action,
    ) {
        if self.prune {
            self.add(stage, Op::Delete, (kind, name), format!("- {what}"), action);
        } else {
            self.kept.push(Kept {
                kind,
                name: name.to_owned(),
                line: format!("- {what} (kept: not in file; use --prune)"),
            });
        }
    }
}

/// The plan that makes `current` what `file` says. References to secrets are resolved through
/// `secrets` (only their hashes are kept); a secret that already authenticates the client plans
/// no change. `metadata` holds the IdP metadata fetched for the file's connections
/// ([`Metadata::fetch`]).
pub fn plan(
    current: &Current,
    file: &TenantFile,
    prune: bool,
    secrets: &dyn Secrets,
    metadata: &Metadata,
) -> Result<Plan, ServiceError> {
    if let Some(t) = &current.tenant
        && t.slug != file.tenant
    {
        return Err(refuse(
            "tenant",
            format!("the file describes tenant {:?}, not {:?}", file.tenant, t.slug),
        ));
    }
    let mut b = Builder {
        prune,
        changes: Vec::new(),
        kept: Vec::new(),
    };
    tenant(&mut b, current, file);
    attributes(&mut b, current, file)?;
    groups(&mut b, current, file);
    roles(&mut b, current, file);
    clients(&mut b, current, file, (secrets, metadata))?;
    assignments(&mut b, current, file);
    super::saml::plan(&mut b, current, file, metadata)?;
    b.changes.sort_by_key(|(stage, _)| *stage);
    Ok(Plan {
        tenant: file.tenant.clone(),
        prune,
        changes: b.changes.into_iter().map(|(_, c)| c).collect(),
        kept: b.kept,
    })
}

fn show(v: &impl Serialize) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// `field from → to` for each top-level member that differs.
fn diff(before: &Value, after: &Value) -> Vec<String> {
    let empty = serde_json::Map::new();
    let (b, a) = (
        before.as_object().unwrap_or(&empty),
        after.as_object().unwrap_or(&empty),
    );
    a.iter()
        .filter(|(k, v)| b.get(*k) != Some(*v))
        .map(|(k, v)| format!("{k} {} → {}", show(&b.get(k)), show(v)))
        .collect()
}

fn tenant(b: &mut Builder, current: &Current, file: &TenantFile) {
    let Some(t) = &current.tenant else {
        b.add(
            Stage::Tenant,
            Op::Create,
            ("tenant", &file.tenant),
            format!("+ tenant {}", file.tenant),
            Action::CreateTenant {
                display_name: file.display_name.clone(),
                policy: file.policy.clone().unwrap_or_default(),
            },
        );
        return;
    };
    let mut parts = Vec::new();
    let display_name = file.display_name.clone().filter(|d| *d != t.display_name);
    if let Some(d) = &display_name {
        parts.push(format!("display_name {} → {}", show(&t.display_name), show(d)));
    }
    let policy = file.policy.clone().map(|mut p| {
        p.risk
            .webhook_secret_sealed
            .clone_from(&t.policy.risk.webhook_secret_sealed);
        p
    });
    let policy = policy.filter(|p| *p != t.policy);
    if let Some(p) = &policy {
        let (before, after) = (json!(t.policy), json!(p));
        let sections: Vec<&str> = after
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, v)| before.get(k.as_str()) != Some(*v))
            .map(|(k, _)| k.as_str())
            .collect();
        parts.push(format!("policy ({})", sections.join(", ")));
    }
    if !parts.is_empty() {
        b.add(
            Stage::Tenant,
            Op::Update,
            ("tenant", &t.slug),
            format!("~ tenant {}: {}", t.slug, parts.join("; ")),
            Action::UpdateTenant { display_name, policy },
        );
    }
}

fn attributes(b: &mut Builder, current: &Current, file: &TenantFile) -> Result<(), ServiceError> {
    for (i, a) in file.attributes.iter().enumerate() {
        let Some(old) = current.attributes.iter().find(|d| d.name == a.name) else {
            let line = format!("+ attribute {} ({})", a.name, a.kind);
            b.add(
                Stage::Attributes,
                Op::Create,
                ("attribute", &a.name),
                line,
                Action::DefineAttribute(a.clone()),
            );
            continue;
        };
        if old.kind != a.kind {
            return Err(refuse(
                format!("attributes[{i}].kind"),
                format!(
                    "attribute {:?} is {} and a kind can't change; remove it first (attribute remove)",
                    a.name, old.kind
                ),
            ));
        }
        let view = |label: &Option<String>, required, unique, editable_by| json!({"label": label, "required": required, "unique": unique, "editable_by": editable_by});
        let changed = diff(
            &view(&old.label, old.required, old.unique, old.editable_by),
            &view(&a.label, a.required, a.unique, a.editable_by),
        );
        if !changed.is_empty() {
            let line = format!("~ attribute {}: {}", a.name, changed.join("; "));
            b.add(
                Stage::Attributes,
                Op::Update,
                ("attribute", &a.name),
                line,
                Action::UpdateAttribute(a.clone()),
            );
        }
    }
    for old in &current.attributes {
        if !file.attributes.iter().any(|a| a.name == old.name) {
            let what = format!("attribute {}", old.name);
            b.extra(
                Stage::DeleteAttributes,
                ("attribute", &old.name),
                &what,
                Action::RemoveAttribute(old.name.clone()),
            );
        }
    }
    Ok(())
}

fn groups(b: &mut Builder, current: &Current, file: &TenantFile) {
    for g in &file.groups {
        let name = g.name.trim();
        let old = current.groups.iter().find(|o| o.name == name);
        let old_parent = old
            .and_then(|o| o.parent_id.as_ref())
            .and_then(|p| current.group_name(p.as_str()));
        match old {
            None => {
                let action = Action::CreateGroup(name.to_owned(), g.description.clone());
                b.add(
                    Stage::Groups,
                    Op::Create,
                    ("group", name),
                    format!("+ group {name}"),
                    action,
                );
            }
            Some(o) if o.description != g.description => {
                let line = format!(
                    "~ group {name}: description {} → {}",
                    show(&o.description),
                    show(&g.description)
                );
                let action = Action::DescribeGroup(name.to_owned(), g.description.clone());
                b.add(Stage::Groups, Op::Update, ("group", name), line, action);
            }
            Some(_) => {}
        }
        let new_parent = g.parent.as_deref().map(str::trim);
        if old_parent == new_parent {
            continue;
        }
        let line = format!(
            "~ group {name}: parent {} → {}",
            old_parent.unwrap_or("(top level)"),
            new_parent.unwrap_or("(top level)")
        );
        if let Some(p) = old_parent {
            let action = Action::Unnest {
                group: name.to_owned(),
                parent: p.to_owned(),
            };
            let line = if new_parent.is_some() {
                format!("~ group {name}: leaves {p}")
            } else {
                line.clone()
            };
            b.add(Stage::Unnest, Op::Update, ("group", name), line, action);
        }
        if let Some(p) = new_parent {
            let action = Action::Nest {
                group: name.to_owned(),
                parent: p.to_owned(),
            };
            b.add(Stage::Nest, Op::Update, ("group", name), line, action);
        }
    }
    for old in &current.groups {
        if !file.groups.iter().any(|g| g.name.trim() == old.name) {
            let what = format!("group {}", old.name);
            b.extra(
                Stage::DeleteGroups,
                ("group", &old.name),
                &what,
                Action::DeleteGroup(old.name.clone()),
            );
        }
    }
}

fn roles(b: &mut Builder, current: &Current, file: &TenantFile) {
    for r in &file.roles {
        match current.roles.iter().find(|o| o.name == r.name) {
            None => {
                let action = Action::CreateRole(r.name.clone(), r.description.clone());
                b.add(
                    Stage::Roles,
                    Op::Create,
                    ("role", &r.name),
                    format!("+ role {}", r.name),
                    action,
                );
            }
            Some(o) if o.description != r.description => {
                let line = format!(
                    "~ role {}: description {} → {}",
                    r.name,
                    show(&o.description),
                    show(&r.description)
                );
                let action = Action::DescribeRole(RoleName::Tenant(r.name.clone()), r.description.clone());
                b.add(Stage::Roles, Op::Update, ("role", &r.name), line, action);
            }
            Some(_) => {}
        }
    }
    for old in &current.roles {
        if !file.roles.iter().any(|r| r.name == old.name) {
            let what = format!("role {}", old.name);
            b.extra(
                Stage::DeleteRoles,
                ("role", &old.name),
                &what,
                Action::DeleteRole(old.name.clone()),
            );
        }
    }
}

/// The members of a client that the file manages, as JSON, for comparing.
fn client_view(c: &Client) -> Value {
    json!({
        "auth_method": c.auth_method, "redirect_uris": c.redirect_uris,
        "post_logout_redirect_uris": c.post_logout_redirect_uris, "grant_types": c.grant_types,
        "scopes": c.scopes, "access_token_format": c.access_token_format,
        "require_pkce": c.require_pkce, "introspect_others": c.introspect_others,
        "first_party": c.first_party, "jwks_uri": c.jwks_uri, "jwks": c.jwks, "settings": c.settings,
    })
}

fn clients(
    b: &mut Builder,
    current: &Current,
    file: &TenantFile,
    (secrets, metadata): (&dyn Secrets, &Metadata),
) -> Result<(), ServiceError> {
    for (i, entry) in file.clients.iter().enumerate() {
        let at = format!("clients[{i}]");
        let name = entry.name.trim();
        let same: Vec<&Client> = current.clients.iter().filter(|c| c.name == name).collect();
        if same.len() > 1 {
            return Err(refuse(
                at,
                format!(
                    "the tenant has {} clients named {name:?}; rename all but one",
                    same.len()
                ),
            ));
        }
        let (new, _) = registration(&entry.spec(), &OsRng).map_err(|e| refuse(&at, e.to_string()))?;
        super::sectors::check(&at, same.first().copied(), &new, metadata)?;
        let hash = match &entry.client_secret {
            None => None,
            Some(r) => Some(secret_hash(
                secrets,
                &format!("{at}.client_secret"),
                r,
                new.auth_method,
            )?),
        };
        let Some(old) = same.first() else {
            let action = Action::CreateClient(Box::new(entry.clone()), hash);
            b.add(
                Stage::Clients,
                Op::Create,
                ("client", name),
                format!("+ client {name}"),
                action,
            );
            client_roles(b, name, &[], entry);
            continue;
        };
        client_update(b, &at, old, entry, new, hash)?;
        client_roles(b, name, current.roles_of(old.client_id.as_str()), entry);
    }
    for old in &current.clients {
        if !file.clients.iter().any(|c| c.name.trim() == old.name) {
            let what = format!("client {} ({})", old.name, old.client_id);
            let action = Action::DeleteClient(old.client_id.clone());
            b.extra(Stage::DeleteClients, ("client", &old.name), &what, action);
        }
    }
    Ok(())
}

/// The changes that make an existing client what its entry says: its members, then its
/// secret when the referenced one does not authenticate it.
fn client_update(
    b: &mut Builder,
    at: &str,
    old: &Client,
    entry: &ClientEntry,
    new: latchkey_store::NewClient,
    hash: Option<String>,
) -> Result<(), ServiceError> {
    let name = old.name.as_str();
    if old.client_type != entry.client_type {
        return Err(refuse(
            format!("{at}.client_type"),
            format!("client {name:?} is {} and its type can't change", old.client_type),
        ));
    }
    let desired = registered(old, &new);
    let changed = diff(&client_view(old), &client_view(&desired));
    if !changed.is_empty() {
        let line = format!("~ client {name}: {}", changed.join("; "));
        b.add(
            Stage::Clients,
            Op::Update,
            ("client", name),
            line,
            Action::UpdateClient(Box::new(entry.clone())),
        );
    }
    if let (Some(hash), Some(r)) = (hash, &entry.client_secret)
        && old.secret_hash.as_deref() != Some(hash.as_str())
    {
        let line = format!("~ client {name}: client_secret (from {r})");
        let action = Action::SetSecret {
            client: name.to_owned(),
            hash,
        };
        b.add(Stage::Clients, Op::Update, ("client", name), line, action);
    }
    Ok(())
}

/// `c` with what a registration sets (all but its identity, type and secrets), for comparing
/// and for `client update`.
pub(crate) fn registered(c: &Client, new: &latchkey_store::NewClient) -> Client {
    let mut c = c.clone();
    c.auth_method = new.auth_method;
    c.redirect_uris.clone_from(&new.redirect_uris);
    c.post_logout_redirect_uris
        .clone_from(&new.post_logout_redirect_uris);
    c.grant_types.clone_from(&new.grant_types);
    c.scopes.clone_from(&new.scopes);
    c.access_token_format = new.access_token_format;
    c.require_pkce = new.require_pkce;
    c.introspect_others = new.introspect_others;
    c.first_party = new.first_party;
    c.jwks_uri.clone_from(&new.jwks_uri);
    c.jwks.clone_from(&new.jwks);
    c.settings.clone_from(&new.settings);
    c
}

/// The SHA-256 of the secret a reference names, for a client whose method uses a secret.
fn secret_hash(
    secrets: &dyn Secrets,
    at: &str,
    r: &SecretRef,
    method: latchkey_core::AuthMethod,
) -> Result<String, ServiceError> {
    if !uses_secret(method) {
        return Err(refuse(
            at,
            format!("a client with auth_method {method} has no secret"),
        ));
    }
    let secret = secrets.resolve(at, r)?;
    if secret.chars().count() < MIN_SECRET_CHARS {
        return Err(refuse(
            at,
            format!("the secret from {r} is shorter than {MIN_SECRET_CHARS} characters"),
        ));
    }
    Ok(sha256_hex(secret.as_bytes()))
}

fn client_roles(b: &mut Builder, client: &str, old: &[latchkey_core::ClientRole], entry: &ClientEntry) {
    for r in &entry.roles {
        let id = format!("{client}/{}", r.name);
        match old.iter().find(|o| o.name == r.name) {
            None => {
                let action = Action::CreateClientRole {
                    client: client.to_owned(),
                    name: r.name.clone(),
                    description: r.description.clone(),
                };
                let line = format!("+ client {client} role {}", r.name);
                b.add(Stage::ClientRoles, Op::Create, ("client_role", &id), line, action);
            }
            Some(o) if o.description != r.description => {
                let line = format!(
                    "~ client {client} role {}: description {} → {}",
                    r.name,
                    show(&o.description),
                    show(&r.description)
                );
                let role = RoleName::Client {
                    client: client.to_owned(),
                    role: r.name.clone(),
                };
                let action = Action::DescribeRole(role, r.description.clone());
                b.add(Stage::ClientRoles, Op::Update, ("client_role", &id), line, action);
            }
            Some(_) => {}
        }
    }
    for o in old {
        if !entry.roles.iter().any(|r| r.name == o.name) {
            let action = Action::DeleteClientRole {
                client: client.to_owned(),
                name: o.name.clone(),
            };
            let what = format!("client {client} role {}", o.name);
            b.extra(
                Stage::DeleteClientRoles,
                ("client_role", &format!("{client}/{}", o.name)),
                &what,
                action,
            );
        }
    }
}

/// Role assignments to groups. Only those between a role and a group both in the file are
/// managed: the others go with their role or group when it is pruned, or stay with it.
fn assignments(b: &mut Builder, current: &Current, file: &TenantFile) {
    let mut desired: BTreeSet<(RoleName, String)> = BTreeSet::new();
    for r in &file.roles {
        for g in &r.groups {
            desired.insert((RoleName::Tenant(r.name.clone()), g.trim().to_owned()));
        }
    }
    for c in &file.clients {
        for r in &c.roles {
            for g in &r.groups {
                let role = RoleName::Client {
                    client: c.name.trim().to_owned(),
                    role: r.name.clone(),
                };
                desired.insert((role, g.trim().to_owned()));
            }
        }
    }
    let in_file = |role: &RoleName, group: &str| {
        file.groups.iter().any(|g| g.name.trim() == group)
            && match role {
                RoleName::Tenant(r) => file.roles.iter().any(|x| x.name == *r),
                RoleName::Client { client, role } => file
                    .clients
                    .iter()
                    .any(|c| c.name.trim() == client && c.roles.iter().any(|x| x.name == *role)),
            }
    };
    for (role, group) in desired.difference(&current.assignments) {
        let name = format!("{role} → group {group}");
        let line = format!("+ assign {name}");
        let action = Action::Assign(role.clone(), group.clone());
        b.add(Stage::Assign, Op::Create, ("assignment", &name), line, action);
    }
    for (role, group) in current.assignments.difference(&desired) {
        if in_file(role, group) {
            let name = format!("{role} → group {group}");
            let what = format!("assign {name}");
            b.extra(
                Stage::Unassign,
                ("assignment", &name),
                &what,
                Action::Unassign(role.clone(), group.clone()),
            );
        }
    }
}
