//! The one error type of the services: what failed, with the context an operator needs.

use latchkey_keys::KeyError;
use latchkey_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// A setting can't be used; names the setting.
    #[error("{setting}: {message}")]
    Setting { setting: &'static str, message: String },
    /// A file a setting names can't be used.
    #[error("{setting} ({}): {message}", path.display())]
    SettingFile {
        setting: &'static str,
        path: std::path::PathBuf,
        message: String,
    },
    #[error("metadata URL {url:?}: {problem}")]
    MetadataUrl { url: String, problem: &'static str },
    #[error("fetching {url}: {problem}")]
    Fetch { url: String, problem: String },
    /// The outbound guard refused the URL: its host has a non-public address the operator has
    /// not allowed (`outbound_allow_private`).
    #[error("{url}: not fetched, its host has the {class} address {address} (see outbound_allow_private)")]
    AddressRefused {
        url: String,
        address: std::net::IpAddr,
        class: &'static str,
    },
    #[error("metadata from {url} refused: {source}")]
    MetadataRefused {
        url: String,
        source: latchkey_saml::SamlError,
    },
    /// A pairwise client's `sector_identifier_uri` answered, but not with a JSON array of URLs
    /// holding every redirect URI of the client (OIDC Registration §2).
    #[error("sector_identifier_uri {uri}: {problem}")]
    SectorIdentifier { uri: String, problem: String },
    #[error("the entity id changed from {old:?} to {new:?}")]
    EntityIdChanged { old: String, new: String },
    #[error("the SP key could not be made: {0}")]
    SpKey(latchkey_saml::SamlError),
    #[error("the connection has no metadata URL")]
    NoMetadataUrl,
    #[error("the connection is gone")]
    ConnectionGone,
    #[error("the tenant is gone")]
    TenantGone,
    #[error("the tenant has no webhook secret")]
    NoWebhookSecret,
    #[error("the message has no body")]
    NoBody,
    #[error("the message body is not UTF-8")]
    BodyNotUtf8,
    #[error("webhook: {0}")]
    Webhook(String),
    #[error("webhook answered HTTP {0}")]
    WebhookStatus(u16),
    /// A queued message that can never be sent (its recipient is gone): given up at once.
    #[error("not deliverable: {0}")]
    Undeliverable(String),
    #[error("mail: {0}")]
    Mail(String),
    #[error("background task failed: {0}")]
    Task(String),
    /// A tenant file (docs/tenants-as-code.md) that can't be applied; `at` says where in it.
    #[error("{at}: {message}")]
    TenantFile { at: String, message: String },
    /// Applying a tenant file stopped at `line`, after `done` changes were made.
    #[error("{source} (at `{line}`, after {done} changes; nothing after it was applied)")]
    Applying {
        line: String,
        done: usize,
        source: Box<ServiceError>,
    },
    /// A request the caller can correct (an unknown user named, a text too long); says why.
    #[error("{0}")]
    Refused(String),
    /// A backup that can't be written, read or restored; says why.
    #[error("backup: {0}")]
    Backup(String),
    /// An upstream provider's document, token or answer refused.
    #[error(transparent)]
    Federation(#[from] latchkey_federation::FederationError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Keys(#[from] KeyError),
}
