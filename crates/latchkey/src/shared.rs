//! What the CLI shares with the server, all from `latchkey-services` (never server internals):
//! SAML metadata checks, fetching and refresh, and the associated data that binds sealed values
//! to their rows.

pub(crate) use latchkey_services::saml::{
    METADATA_REFRESH_MS, check_metadata_url, fetch_metadata, refresh_connection,
};
pub(crate) use latchkey_services::webhook::secret_aad as webhook_secret_aad;
