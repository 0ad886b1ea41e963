//! Process-wide services that need no HTTP server: the mail and webhook outbox, the risk
//! engine's data (GeoIP, deny-list), SAML metadata fetching, per-node caches and the metrics
//! registry. The server's state holds handles to these; the CLI uses the same code (metadata
//! refresh, webhook secrets), so neither reaches into the other.
//!
//! Architecture Invariant: nothing here depends on actix or knows a route.

pub mod backchannel;
pub mod backup;
pub mod cache;
pub mod clients;
pub mod domains;
mod error;
pub mod federation;
pub mod grants;
pub mod incident;
pub mod invite;
pub mod mail;
pub mod metrics;
pub mod outbound;
pub mod policy;
pub mod privacy;
pub mod residency;
pub mod retention;
pub mod risk_engine;
pub mod saml;
pub mod saml_health;
pub mod sector;
pub mod tenant_file;
pub mod token_cache;
pub mod verification;
pub mod webhook;

pub use cache::TtlCache;
pub use error::ServiceError;
pub use mail::{MailSettings, Mailer};
pub use metrics::Metrics;
pub use outbound::OutboundPolicy;
pub use risk_engine::RiskEngine;

/// Runs blocking store or key work on tokio's blocking pool (background work: the request
/// paths use the server's bounded pool instead).
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ServiceError> + Send + 'static,
) -> Result<T, ServiceError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ServiceError::Task(e.to_string()))?
}
