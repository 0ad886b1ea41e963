//! The CLI's one error type, and the one place that turns it into an exit code and a message:
//! exit 2 for input the operator can fix (usage, validation, duplicates, unknown names,
//! configuration), exit 1 for a failure at run time (database unreachable, broken audit chain).

use latchkey_audit::AuditError;
use latchkey_core::ValidationError;
use latchkey_keys::KeyError;
use latchkey_mfa::PasswordError;
use latchkey_saml::SamlError;
use latchkey_server::{ConfigError, ServerError};
use latchkey_store::StoreError;
use std::path::PathBuf;
use std::process::ExitCode;

/// What went wrong, with what the operator needs to fix it. The messages are part of the CLI's
/// contract (scripts and docs/operations.md quote them).
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    /// The configuration file or a `LATCHKEY_*` variable is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("LATCHKEY_DATABASE_URL: {0}")]
    DatabaseUrl(StoreError),
    /// The database did not open; `setting` names where its URL came from, `url` has its
    /// password redacted.
    #[error("{setting} ({url}): {source}")]
    DatabaseOpen {
        setting: &'static str,
        url: String,
        source: StoreError,
    },
    /// `--region`/`--to` names a region the configuration does not have.
    #[error("no region {0:?} (the home region and LATCHKEY_REGIONS name the regions)")]
    NoRegion(String),
    #[error(transparent)]
    Migration(StoreError),
    /// A store call failed; whether the operator is at fault depends on the kind.
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Validation(#[from] ValidationError),
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// The key ring did not open (master key missing, unsafe or not the one the data needs).
    #[error("{0}")]
    KeyRing(latchkey_keys::KeyError),
    #[error(transparent)]
    Server(#[from] ServerError),
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// The session store (Redis) could not be read.
    #[error("LATCHKEY_SESSION_STORE: {0}")]
    Sessions(latchkey_session::SessionError),
    #[error("audit chain of {chain} is broken at sequence number {seq}: {reason}")]
    ChainBroken { chain: String, seq: i64, reason: String },
    #[error("no tenant {0:?}")]
    NoTenant(String),
    /// `audit` commands also take a deleted tenant's id, whose chain outlives it.
    #[error("no tenant {0:?} (give a slug, or a deleted tenant's id)")]
    NoChain(String),
    /// A client, user, role or SAML connection the tenant does not have.
    #[error("no {what} {name:?} in tenant {tenant:?}")]
    NotInTenant {
        what: &'static str,
        name: String,
        tenant: String,
    },
    /// A flag's value breaks a rule; the message names the flag and the rule.
    #[error("{0}")]
    BadFlag(String),
    #[error("{0:?}: expected on or off")]
    NotOnOff(String),
    #[error("{flag} {value:?}: expected RFC 3339 (2026-11-01T00:00:00Z) or a date (2026-11-01)")]
    BadInstant { flag: &'static str, value: String },
    /// A file named by a flag could not be read.
    #[error("{flag} {}: {source}", path.display())]
    File {
        flag: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("reading the password from standard input: {0}")]
    Stdin(std::io::Error),
    /// A backup or restore failed; says why.
    #[error(transparent)]
    Backup(latchkey_services::ServiceError),
    /// A user's data could not be exported or erased.
    #[error("{0}")]
    Privacy(latchkey_services::ServiceError),
    /// `healthcheck`: the server did not answer ready.
    #[error("{url}: {reason}")]
    NotReady { url: String, reason: String },
    #[error("no password on standard input")]
    NoPassword,
    /// The password breaks the tenant's policy.
    #[error(transparent)]
    PasswordPolicy(PasswordError),
    #[error(transparent)]
    PasswordHash(PasswordError),
    #[error("client {0} does not authenticate with a secret")]
    NoClientSecret(String),
    #[error("{} exists from an unfinished rotation; move it away first", .0.display())]
    StagedKeyExists(PathBuf),
    /// The database already uses the new master key; only the file swap failed.
    #[error("data re-wrapped, but swapping key files failed ({source}); the new key is {}", staged.display())]
    KeySwap { staged: PathBuf, source: std::io::Error },
    #[error("--metadata-url: {0}")]
    MetadataUrl(latchkey_services::ServiceError),
    /// `origin` says where the metadata came from: "metadata in FILE" or "metadata from URL".
    #[error("{origin} refused: {reason}")]
    MetadataRefused { origin: String, reason: SamlError },
    #[error("{0}")]
    MetadataFetch(latchkey_services::ServiceError),
    #[error(
        "SAML connection {0:?} has its metadata from a file; replace it with `saml update --metadata-file` or `--metadata-url`"
    )]
    NotRefreshable(String),
    #[error("refreshing {name:?} failed (the last good metadata stays in use): {reason}")]
    RefreshFailed {
        name: String,
        reason: latchkey_services::ServiceError,
    },
    /// An upstream provider's discovery that failed or was refused (`oidc-connection`).
    #[error("{0}")]
    Upstream(latchkey_services::ServiceError),
    #[error("refreshing {name:?} failed (the last good discovery stays in use): {reason}")]
    DiscoveryFailed {
        name: String,
        reason: latchkey_services::ServiceError,
    },
    #[error("{domain} is not verified: {reason}")]
    DomainUnverified { domain: String, reason: String },
    #[error("generating the SP key: {0}")]
    SpKey(SamlError),
    /// A tenant file that can't be applied, or an apply that stopped halfway.
    #[error("{0}")]
    TenantFile(latchkey_services::ServiceError),
    /// A pairwise client's `sector_identifier_uri` that could not be fetched, or whose
    /// document does not list the client's redirect URIs.
    #[error("{0}")]
    Sector(latchkey_services::ServiceError),
    /// The small async runtime for a network call did not start.
    #[error("{0}")]
    AsyncRuntime(std::io::Error),
}

impl CliError {
    fn exit_code(&self) -> u8 {
        match self {
            CliError::Store(e) | CliError::Keys(KeyError::Store(e)) => store_exit_code(e),
            CliError::TenantFile(e) | CliError::Backup(e) | CliError::Privacy(e) => service_exit_code(e),
            // A document that lists the wrong URIs is the operator's to fix; a fetch that fails
            // is the network's.
            CliError::Sector(e) => match e {
                latchkey_services::ServiceError::SectorIdentifier { .. } => 2,
                other => service_exit_code(other),
            },
            // A document the upstream serves that is refused is the operator's to fix (the
            // issuer or discovery URL); a fetch that fails is the network's.
            CliError::Upstream(e) => match e {
                latchkey_services::ServiceError::Federation(_) => 2,
                _ => 1,
            },
            CliError::Server(e) => match e {
                ServerError::Config(_) => 2,
                _ => 1,
            },
            CliError::Keys(e) => match e {
                KeyError::UnknownKey(_) | KeyError::Refused(_) => 2,
                _ => 1,
            },
            CliError::Config(_)
            | CliError::DatabaseUrl(_)
            | CliError::Validation(_)
            | CliError::NoTenant(_)
            | CliError::NoRegion(_)
            | CliError::NoChain(_)
            | CliError::NotInTenant { .. }
            | CliError::BadFlag(_)
            | CliError::NotOnOff(_)
            | CliError::BadInstant { .. }
            | CliError::File { .. }
            | CliError::Stdin(_)
            | CliError::NoPassword
            | CliError::PasswordPolicy(_)
            | CliError::NoClientSecret(_)
            | CliError::StagedKeyExists(_)
            | CliError::MetadataUrl(_)
            | CliError::MetadataRefused { .. }
            | CliError::NotRefreshable(_) => 2,
            CliError::DatabaseOpen { .. }
            | CliError::Migration(_)
            | CliError::KeyRing(_)
            | CliError::Audit(_)
            | CliError::ChainBroken { .. }
            | CliError::PasswordHash(_)
            | CliError::KeySwap { .. }
            | CliError::MetadataFetch(_)
            | CliError::RefreshFailed { .. }
            | CliError::DiscoveryFailed { .. }
            | CliError::DomainUnverified { .. }
            | CliError::SpKey(_)
            | CliError::AsyncRuntime(_)
            | CliError::Sessions(_)
            | CliError::NotReady { .. } => 1,
        }
    }

    /// Prints the error to standard error (as `{"error": …}` under `--json`) and gives its exit
    /// code.
    pub(crate) fn report(&self, json: bool) -> ExitCode {
        if json {
            eprintln!("{}", serde_json::json!({"error": self.to_string()}));
        } else {
            eprintln!("error: {self}");
        }
        ExitCode::from(self.exit_code())
    }
}

/// A tenant file's faults exit 2, as do the store's refusals while applying it; the rest 1.
fn service_exit_code(e: &latchkey_services::ServiceError) -> u8 {
    use latchkey_services::ServiceError;
    match e {
        ServiceError::TenantFile { .. } | ServiceError::Backup(_) | ServiceError::Refused(_) => 2,
        ServiceError::Store(e) => store_exit_code(e),
        ServiceError::Applying { source, .. } => service_exit_code(source),
        _ => 1,
    }
}

/// The operator's mistakes (bad values, duplicates, unknown names) exit 2; the rest 1.
fn store_exit_code(e: &StoreError) -> u8 {
    match e {
        StoreError::Invalid(_)
        | StoreError::Conflict(_)
        | StoreError::BadReference(_)
        | StoreError::Cycle(_)
        | StoreError::NotFound { .. }
        | StoreError::BadUrl(_) => 2,
        _ => 1,
    }
}
