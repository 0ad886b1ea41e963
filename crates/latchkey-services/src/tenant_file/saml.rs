//! SAML connections in a tenant file: fetching the metadata a plan needs (async, before
//! planning), planning creations, updates and deletions, and making them through
//! `saml::connect` and the store's SAML update, as `latchkey saml add|update` and the admin API.
//!
//! A connection's metadata source is compared as stored: a URL by the URL (the server refreshes
//! it hourly, so its document is fetched only for a new connection or a new URL); an inline
//! document by what Latchkey reads from it (entity id, SSO URL and binding, signing
//! certificates), which is all the store keeps of it.

use super::current::Current;
use super::file::{SamlConnectionEntry, TenantFile};
use super::plan::{Action, Builder, Stage};
use super::refuse;
use crate::ServiceError;
use crate::saml::{ConnectionSpec, METADATA_REFRESH_MS};
use latchkey_core::{IdpDescriptor, SamlConnection, SamlOptions};
use latchkey_store::SamlConnectionUpdate;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

/// What a plan needs fetched first: IdP metadata, by URL, and the time metadata is read at
/// (certificates valid then; the next refresh an hour after it); and the sector documents of
/// pairwise clients (`super::sectors`).
#[derive(Debug, Clone, Default)]
pub struct Metadata {
    pub now: i64,
    documents: BTreeMap<String, String>,
    /// Sector documents found to list their clients' redirect URIs.
    pub(super) sectors: Vec<crate::sector::Verified>,
}

impl Metadata {
    /// Nothing fetched: enough for a file whose connections' URLs the tenant already has.
    pub fn none(now: i64) -> Self {
        Metadata {
            now,
            documents: BTreeMap::new(),
            sectors: Vec::new(),
        }
    }

    /// Fetches the metadata of every connection of `file` that a plan over `current` would
    /// create from a URL or move to a new URL (`saml::fetch_metadata` under `policy`: its URL
    /// rules, the outbound guard, 10 s, 1 MiB), and the sector documents its pairwise clients
    /// need checked ([`Metadata::sectors_to_fetch`]). A failure names the entry
    /// (`saml_connections[0].metadata_url`) and says no more than `outbound::tenant_view` (the
    /// cause goes to the log), so a file can't probe the network.
    pub async fn fetch(
        policy: &crate::OutboundPolicy,
        current: &Current,
        file: &TenantFile,
        now: i64,
    ) -> Result<Self, ServiceError> {
        let mut documents = BTreeMap::new();
        for (at, url) in Self::to_fetch(current, file) {
            if documents.contains_key(url) {
                continue;
            }
            let text = crate::saml::fetch_metadata(policy, url).await.map_err(|e| {
                tracing::warn!(at = %at, error = %e, "tenant file: metadata fetch failed");
                let told = crate::outbound::tenant_view(&e).unwrap_or_else(|| e.to_string());
                refuse(at, told)
            })?;
            documents.insert(url.to_owned(), text);
        }
        let sectors = super::sectors::fetch(policy, current, file).await?;
        Ok(Metadata {
            now,
            documents,
            sectors,
        })
    }

    /// The URLs [`Metadata::fetch`] would fetch, each with where it is in the file
    /// (`saml_connections[0].metadata_url`): those of new connections and changed URLs. The
    /// admin API asks for `saml:write` before fetching any.
    pub fn to_fetch<'f>(current: &Current, file: &'f TenantFile) -> Vec<(String, &'f str)> {
        let stored = |name: &str| current.saml.iter().find(|c| c.name == name);
        file.saml_connections
            .iter()
            .enumerate()
            .filter_map(|(i, entry)| {
                let url = entry.metadata_url.as_deref()?;
                let same = stored(&entry.name).is_some_and(|c| c.metadata_url.as_deref() == Some(url));
                (!same).then(|| (format!("saml_connections[{i}].metadata_url"), url))
            })
            .collect()
    }
}

/// Plans the file's connections against the tenant's: created, updated, or (not in the file)
/// kept or deleted with `prune`.
pub(super) fn plan(
    b: &mut Builder,
    current: &Current,
    file: &TenantFile,
    metadata: &Metadata,
) -> Result<(), ServiceError> {
    for (i, entry) in file.saml_connections.iter().enumerate() {
        let at = format!("saml_connections[{i}]");
        let options = entry.stored_options();
        check_references(&at, &options, current, file, b.prune)?;
        let old = current.saml.iter().find(|c| c.name == entry.name);
        let idp = new_metadata(&at, entry, old, &options, metadata)?;
        match old {
            None => create(b, entry, options, idp, metadata.now)?,
            Some(old) => update(b, old, entry, options, idp, metadata.now),
        }
    }
    for old in &current.saml {
        if !file.saml_connections.iter().any(|c| c.name == old.name) {
            let what = format!("saml_connection {}", old.name);
            let action = Action::DeleteSaml(old.name.clone());
            b.extra(Stage::DeleteSaml, ("saml_connection", &old.name), &what, action);
        }
    }
    Ok(())
}

/// The roles of `role_map` and the groups of `group_map` are the file's, or the tenant's when
/// they are not about to be pruned; a pinned metadata signer is a usable certificate.
fn check_references(
    at: &str,
    options: &SamlOptions,
    current: &Current,
    file: &TenantFile,
    prune: bool,
) -> Result<(), ServiceError> {
    let mut roles: BTreeSet<&str> = file.roles.iter().map(|r| r.name.as_str()).collect();
    let mut groups: BTreeSet<&str> = file.groups.iter().map(|g| g.name.trim()).collect();
    if !prune {
        roles.extend(current.roles.iter().map(|r| r.name.as_str()));
        groups.extend(current.groups.iter().map(|g| g.name.as_str()));
    }
    for (j, (_, role)) in options.role_map.iter().enumerate() {
        if !roles.contains(role.as_str()) {
            return Err(refuse(
                format!("{at}.options.role_map[{j}]"),
                format!("no role {role:?} in the file or the tenant"),
            ));
        }
    }
    for (j, (_, group)) in options.group_map.iter().enumerate() {
        if !groups.contains(group.as_str()) {
            return Err(refuse(
                format!("{at}.options.group_map[{j}]"),
                format!("no group {group:?} in the file or the tenant"),
            ));
        }
    }
    if let Some(signer) = &options.metadata_signer {
        latchkey_saml::certs::check_signing_certificate(signer)
            .map_err(|e| refuse(format!("{at}.options.metadata_signer"), e.to_string()))?;
    }
    Ok(())
}

/// The IdP metadata the connection takes, or `None` when its stored source is unchanged: the
/// same URL, or an inline document that reads as the stored metadata. New metadata must parse
/// (and carry a valid signature by a pinned metadata signer).
fn new_metadata(
    at: &str,
    entry: &SamlConnectionEntry,
    old: Option<&SamlConnection>,
    options: &SamlOptions,
    metadata: &Metadata,
) -> Result<Option<IdpDescriptor>, ServiceError> {
    let signer = options.metadata_signer.as_deref();
    let read = |field: &str, text: &str| {
        latchkey_saml::parse_idp_metadata_signed_by(text, metadata.now, signer)
            .map_err(|e| refuse(format!("{at}.{field}"), format!("the metadata was refused: {e}")))
    };
    if let Some(url) = &entry.metadata_url {
        if old.is_some_and(|c| c.metadata_url.as_ref() == Some(url)) {
            return Ok(None);
        }
        let Some(text) = metadata.documents.get(url) else {
            return Err(refuse(
                format!("{at}.metadata_url"),
                "its metadata was not fetched (the tenant changed since); plan again",
            ));
        };
        return read("metadata_url", text).map(Some);
    }
    let xml = entry.metadata_xml.as_deref().unwrap_or_default();
    if let Some(c) = old.filter(|c| c.metadata_url.is_none()) {
        // Compared without the signature: a document that reads as the stored metadata is the
        // metadata the connection already trusts (an export carries no signature).
        if latchkey_saml::parse_idp_metadata(xml, metadata.now).is_ok_and(|idp| idp == c.idp) {
            return Ok(None);
        }
    }
    read("metadata_xml", xml).map(Some)
}

fn create(
    b: &mut Builder,
    entry: &SamlConnectionEntry,
    options: SamlOptions,
    idp: Option<IdpDescriptor>,
    now: i64,
) -> Result<(), ServiceError> {
    let Some(idp) = idp else {
        return Err(refuse("saml_connections", "a new connection needs its metadata"));
    };
    let spec = ConnectionSpec {
        name: entry.name.clone(),
        display_name: Some(entry.shown_name()),
        idp,
        metadata_url: entry.metadata_url.clone(),
        options,
    };
    let line = format!("+ saml_connection {} ({})", entry.name, spec.idp.entity_id);
    b.add(
        Stage::Saml,
        super::Op::Create,
        ("saml_connection", &entry.name),
        line,
        Action::CreateSaml(Box::new(spec), now),
    );
    Ok(())
}

/// The change that makes `old` what `entry` says, if any: its display name, options and
/// metadata source (a new URL is refreshed hourly from now; a document stops the refreshes).
fn update(
    b: &mut Builder,
    old: &SamlConnection,
    entry: &SamlConnectionEntry,
    options: SamlOptions,
    idp: Option<IdpDescriptor>,
    now: i64,
) {
    let name = entry.shown_name();
    let mut parts = Vec::new();
    let mut change = SamlConnectionUpdate::default();
    if name != old.display_name {
        parts.push(format!("display_name {:?} → {name:?}", old.display_name));
        change.display_name = Some(name);
    }
    if options != old.options {
        parts.push(format!(
            "options ({})",
            changed_members(&old.options, &options).join(", ")
        ));
        change.options = Some(options);
    }
    if let Some(idp) = idp {
        parts.push(match &entry.metadata_url {
            Some(u) => format!(
                "metadata_url {} → {u}",
                old.metadata_url.as_deref().unwrap_or("(inline)")
            ),
            None => "metadata_xml (new metadata)".to_owned(),
        });
        change.metadata_url = Some(entry.metadata_url.clone());
        change.next_refresh_at = Some(entry.metadata_url.as_ref().map(|_| now + METADATA_REFRESH_MS));
        change.idp = Some(idp);
    }
    if !parts.is_empty() {
        let line = format!("~ saml_connection {}: {}", old.name, parts.join("; "));
        b.add(
            Stage::Saml,
            super::Op::Update,
            ("saml_connection", &old.name),
            line,
            Action::UpdateSaml(old.name.clone(), Box::new(change)),
        );
    }
}

/// The members of two options that differ (one left out counts as different).
fn changed_members(before: &SamlOptions, after: &SamlOptions) -> Vec<String> {
    let (b, a) = (json!(before), json!(after));
    let names: BTreeSet<&String> = [&b, &a]
        .into_iter()
        .filter_map(serde_json::Value::as_object)
        .flat_map(serde_json::Map::keys)
        .collect();
    names
        .into_iter()
        .filter(|k| b.get(k.as_str()) != a.get(k.as_str()))
        .cloned()
        .collect()
}
