//! An IdP's metadata, read from a file or fetched (https, or http on loopback; 10 s, 1 MiB) and
//! parsed by `latchkey-saml`.

use crate::error::CliError;
use crate::shared::{check_metadata_url, fetch_metadata};
use latchkey_core::IdpDescriptor;
use latchkey_services::OutboundPolicy;
use std::path::Path;

const MAX_METADATA_BYTES: usize = 1 << 20;

/// The parsed metadata and the URL to refresh it from (none for a file); `None` when neither
/// source was given. With `signer` (a pinned metadata-signing certificate) the document must
/// carry a valid signature by it.
pub fn load(
    file: Option<&Path>,
    url: Option<&str>,
    now: i64,
    signer: Option<&str>,
) -> Result<Option<(IdpDescriptor, Option<String>)>, CliError> {
    match (file, url) {
        (Some(path), _) => {
            let text = read_file(path)?;
            Ok(Some((
                parse(format!("metadata in {}", path.display()), &text, now, signer)?,
                None,
            )))
        }
        (None, Some(url)) => {
            check_url(url)?;
            let text = fetch(url)?;
            Ok(Some((
                parse(format!("metadata from {url}"), &text, now, signer)?,
                Some(url.to_owned()),
            )))
        }
        (None, None) => Ok(None),
    }
}

fn read_file(path: &Path) -> Result<String, CliError> {
    let bytes = std::fs::read(path).map_err(|source| CliError::File {
        flag: "--metadata-file",
        path: path.to_owned(),
        source,
    })?;
    if bytes.len() > MAX_METADATA_BYTES {
        return Err(CliError::BadFlag(format!(
            "--metadata-file {}: larger than 1 MiB",
            path.display()
        )));
    }
    String::from_utf8(bytes)
        .map_err(|_| CliError::BadFlag(format!("--metadata-file {}: not UTF-8", path.display())))
}

/// `origin` says where the text came from, for the error message.
fn parse(origin: String, text: &str, now: i64, signer: Option<&str>) -> Result<IdpDescriptor, CliError> {
    latchkey_saml::parse_idp_metadata_signed_by(text, now, signer)
        .map_err(|reason| CliError::MetadataRefused { origin, reason })
}

fn check_url(url: &str) -> Result<(), CliError> {
    check_metadata_url(url).map(drop).map_err(CliError::MetadataUrl)
}

/// Runs `future` on a small runtime of its own (the CLI is synchronous).
pub fn block_on<T>(future: impl std::future::Future<Output = T>) -> Result<T, CliError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CliError::AsyncRuntime)?;
    Ok(runtime.block_on(future))
}

/// GETs the metadata (no redirects, 10 s, at most 1 MiB); a failure is a runtime error (exit 1).
/// The operator typed this URL, so any address is allowed (loopback http included); URLs
/// stored in a connection, which a tenant admin may have chosen, are refreshed under the
/// server's outbound guard instead (`refresh-metadata`).
fn fetch(url: &str) -> Result<String, CliError> {
    check_url(url)?;
    block_on(fetch_metadata(&OutboundPolicy::allow_all(), url))?.map_err(CliError::MetadataFetch)
}
