//! A tenant as a file: every managed object written out explicitly, sorted, with no secret (nor
//! a SAML connection's SP key), so two exports of an unchanged tenant are byte for byte the same and applying one plans nothing.

use super::current::{Current, RoleName};
use super::file::{AttributeSpec, ClientEntry, Format, GroupSpec, RoleSpec, SamlConnectionEntry, TenantFile};
use super::refuse;
use crate::ServiceError;
use std::collections::BTreeMap;

/// The file that describes `current` (a loaded tenant). Client secrets are left out: a client
/// exported so keeps its secret when the file is applied. Two clients of one name can't be
/// told apart in a file, so they are refused (rename one first).
pub fn export(current: &Current) -> Result<TenantFile, ServiceError> {
    let Some(tenant) = &current.tenant else {
        return Err(refuse("tenant", "the tenant does not exist"));
    };
    let mut policy = tenant.policy.clone();
    policy.risk.webhook_secret_sealed = None;
    let mut groups_of: BTreeMap<&RoleName, Vec<String>> = BTreeMap::new();
    for (role, group) in &current.assignments {
        groups_of.entry(role).or_default().push(group.clone());
    }
    let groups_for = |role: RoleName| groups_of.get(&role).cloned().unwrap_or_default();
    let clients = client_entries(current, &groups_for)?;
    Ok(TenantFile {
        tenant: tenant.slug.clone(),
        display_name: Some(tenant.display_name.clone()),
        policy: Some(policy),
        attributes: current
            .attributes
            .iter()
            .map(|a| AttributeSpec {
                name: a.name.clone(),
                label: a.label.clone(),
                kind: a.kind,
                required: a.required,
                unique: a.unique,
                editable_by: a.editable_by,
            })
            .collect(),
        groups: current
            .groups
            .iter()
            .map(|g| GroupSpec {
                name: g.name.clone(),
                description: g.description.clone(),
                parent: g
                    .parent_id
                    .as_ref()
                    .and_then(|p| current.group_name(p.as_str()))
                    .map(str::to_owned),
            })
            .collect(),
        roles: current
            .roles
            .iter()
            .map(|r| RoleSpec {
                name: r.name.clone(),
                description: r.description.clone(),
                groups: groups_for(RoleName::Tenant(r.name.clone())),
            })
            .collect(),
        clients,
        saml_connections: current.saml.iter().map(saml_entry).collect(),
    })
}

/// A connection with its metadata source and all its options; its SP key and certificate are
/// Latchkey's and stay out. The store keeps what was read from an inline document, not the
/// document: such a connection is written with a minimal document regenerated from it (entity
/// id, SSO URL and binding, signing certificates), which applies as no change.
fn saml_entry(c: &latchkey_core::SamlConnection) -> SamlConnectionEntry {
    SamlConnectionEntry {
        name: c.name.clone(),
        display_name: Some(c.display_name.clone()),
        metadata_url: c.metadata_url.clone(),
        metadata_xml: c
            .metadata_url
            .is_none()
            .then(|| latchkey_saml::idp_metadata(&c.idp)),
        options: c.options.clone(),
    }
}

/// The tenant's clients with their roles; two of one name can't be told apart in a file.
fn client_entries(
    current: &Current,
    groups_for: &dyn Fn(RoleName) -> Vec<String>,
) -> Result<Vec<ClientEntry>, ServiceError> {
    let mut clients: Vec<ClientEntry> = Vec::new();
    for c in &current.clients {
        if clients.iter().any(|e| e.name == c.name) {
            return Err(refuse(
                format!("clients ({})", c.name),
                "two clients have this name; rename one (client update --name) to export",
            ));
        }
        let roles = current
            .roles_of(c.client_id.as_str())
            .iter()
            .map(|r| RoleSpec {
                name: r.name.clone(),
                description: r.description.clone(),
                groups: groups_for(RoleName::Client {
                    client: c.name.clone(),
                    role: r.name.clone(),
                }),
            })
            .collect();
        clients.push(ClientEntry {
            name: c.name.clone(),
            client_type: c.client_type,
            auth_method: Some(c.auth_method),
            redirect_uris: c.redirect_uris.clone(),
            post_logout_redirect_uris: c.post_logout_redirect_uris.clone(),
            grant_types: c.grant_types.clone(),
            scopes: c.scopes.clone(),
            access_token_format: c.access_token_format,
            require_pkce: c.require_pkce,
            introspect_others: c.introspect_others,
            first_party: c.first_party,
            jwks_uri: c.jwks_uri.clone(),
            jwks: c.jwks.clone(),
            settings: c.settings.clone(),
            roles,
            client_secret: None,
        });
    }
    Ok(clients)
}

/// The file as text, in the field order of [`TenantFile`].
pub fn render(file: &TenantFile, format: Format) -> Result<String, ServiceError> {
    match format {
        Format::Json => serde_json::to_string_pretty(file)
            .map(|s| s + "\n")
            .map_err(|e| refuse("(file)", e.to_string())),
        Format::Yaml => serde_saphyr::to_string(file).map_err(|e| refuse("(file)", e.to_string())),
    }
}
