//! Pairwise clients' `sector_identifier_uri`s in a tenant file (docs/oidc.md#pairwise-subjects):
//! fetched before planning, like IdP metadata, for the clients a plan would create or whose URI
//! or redirect URIs it changes (`crate::sector`); the plan refuses such a client whose document
//! was not checked for exactly its redirect URIs.

use super::current::Current;
use super::file::TenantFile;
use super::refuse;
use super::saml::Metadata;
use crate::sector::{self, Verified};
use crate::{OutboundPolicy, ServiceError};
use latchkey_core::Client;

/// The file's clients whose sector documents need fetching, each with where it is in the file
/// (`clients[0].settings.sector_identifier_uri`), its entry and the tenant's client of its name.
fn wanted<'c, 'f>(
    current: &'c Current,
    file: &'f TenantFile,
) -> impl Iterator<Item = (String, &'f super::ClientEntry, Option<&'c Client>)> {
    file.clients.iter().enumerate().filter_map(|(i, entry)| {
        let old = current.clients.iter().find(|c| c.name == entry.name.trim());
        sector::to_check(old, &entry.redirect_uris, &entry.settings)?;
        Some((format!("clients[{i}].settings.sector_identifier_uri"), entry, old))
    })
}

impl Metadata {
    /// The sector documents [`Metadata::fetch`] would fetch, each with where it is in the file.
    /// The admin API asks for `clients:write` before fetching any.
    pub fn sectors_to_fetch<'f>(current: &Current, file: &'f TenantFile) -> Vec<(String, &'f str)> {
        wanted(current, file)
            .filter_map(|(at, entry, _)| Some((at, entry.settings.sector_identifier_uri.as_deref()?)))
            .collect()
    }

    /// Whether the sector document `uri` was found to list exactly `redirect_uris`.
    pub(super) fn sector_checked(&self, uri: &str, redirect_uris: &[String]) -> bool {
        self.sectors
            .iter()
            .any(|v| v.uri == uri && v.redirect_uris == redirect_uris)
    }
}

/// Fetches and checks the sector documents of `file`'s pairwise clients that a plan over
/// `current` would create or change (`sector::verify_change` under `policy`). A failure names
/// the entry; a fetch that failed says no more than `outbound::tenant_view`.
pub(super) async fn fetch(
    policy: &OutboundPolicy,
    current: &Current,
    file: &TenantFile,
) -> Result<Vec<Verified>, ServiceError> {
    let mut out = Vec::new();
    for (at, entry, old) in wanted(current, file) {
        let checked = sector::verify_change(policy, old, &entry.redirect_uris, &entry.settings).await;
        match checked {
            Ok(v) => out.extend(v),
            Err(e) => {
                tracing::warn!(at = %at, error = %e, "tenant file: sector_identifier_uri check failed");
                let told = crate::outbound::tenant_view(&e).unwrap_or_else(|| e.to_string());
                return Err(refuse(at, told));
            }
        }
    }
    Ok(out)
}

/// In the plan: a client going from `old` to `new` whose sector document needs checking was
/// checked, for these redirect URIs.
pub(super) fn check(
    at: &str,
    old: Option<&Client>,
    new: &latchkey_store::NewClient,
    metadata: &Metadata,
) -> Result<(), ServiceError> {
    match sector::to_check(old, &new.redirect_uris, &new.settings) {
        Some(uri) if !metadata.sector_checked(uri, &new.redirect_uris) => Err(refuse(
            format!("{at}.settings.sector_identifier_uri"),
            "its document was not fetched (the tenant changed since); plan again",
        )),
        _ => Ok(()),
    }
}
