//! The HTTP face of Latchkey (actix-web 4 on rustls). Routes turn HTTP into calls on the protocol
//! crates and their results back into HTTP; errors become responses in `web::errors` only.
//!
//! `app` (the route table) and `jobs` (background work) sit on top; the features `login`, `oidc`,
//! `saml` and `admin_api` below them; `flow` (the sign-in lifecycle they share) below those; then
//! `web` (the HTTP kit), `state` (handles to the services) and the foundations (`config`,
//! `logging`, `tls`).

// Layers, top to bottom; a module imports only from layers below it, and the four features
// never import each other (`tests/layering.rs` checks it; docs/architecture.md explains it).
mod app;
mod jobs;

mod admin_api;
mod federation;
mod login;
mod oidc;
mod saml;

mod flow;

mod web;

mod state;

pub mod config;
mod logging;
mod tls;

pub use admin_api::console::{
    ACTIONS as CONSOLE_ACTIONS, PAGES as CONSOLE_PAGES, SYSTEM_ACTIONS as CONSOLE_SYSTEM_ACTIONS,
    SYSTEM_PAGES as CONSOLE_SYSTEM_PAGES,
};
pub use admin_api::openapi::{document as admin_openapi, needs as admin_openapi_needs};
pub use admin_api::{
    PREFIX as ADMIN_PREFIX, ROUTES as ADMIN_ROUTES, Route as AdminRoute,
    SYSTEM_PREFIX as ADMIN_SYSTEM_PREFIX, SYSTEM_ROUTES as ADMIN_SYSTEM_ROUTES,
};
pub use app::{run, serve};
pub use config::{Config, ConfigError, LogFormat};
pub use flow::interaction;
pub use flow::risk::STUFFING_WINDOW;
pub use jobs::{deliver_due, refresh_metadata, retention_pass};
pub use logging::init_logging;
pub use saml::sp_urls;
pub use state::{AppState, open_keys};
pub use web::errors::AppError;
pub use web::form::{FormError, FormParams, parse_form, parse_multipart, parse_query};
pub use web::observe::RequestId;

/// Why the server could not start or stopped: each names the setting or part at fault.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: String, source: std::io::Error },
    #[error("TLS: {setting} {}: {message}", path.display())]
    Tls {
        setting: &'static str,
        path: std::path::PathBuf,
        message: String,
    },
    /// `setting` says where the URL came from (`LATCHKEY_DATABASE_URL` or a region of
    /// `LATCHKEY_REGIONS`); `url` is shown without its password.
    #[error("{setting} ({url}): {source}")]
    Database {
        setting: String,
        url: String,
        source: latchkey_store::StoreError,
    },
    #[error(transparent)]
    Keys(#[from] latchkey_keys::KeyError),
    #[error("LATCHKEY_SESSION_STORE: {0}")]
    SessionStore(#[from] latchkey_session::SessionError),
    #[error(transparent)]
    Services(#[from] latchkey_services::ServiceError),
    #[error("password hashing: {0}")]
    Hasher(#[from] latchkey_mfa::PasswordError),
    #[error("the server stopped: {0}")]
    Stopped(std::io::Error),
    #[error("a start-up task failed: {0}")]
    Task(String),
}

/// Makes aws-lc-rs the process-wide rustls provider (idempotent).
pub fn init_crypto() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}
