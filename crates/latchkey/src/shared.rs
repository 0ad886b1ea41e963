//! The server internals the CLI reuses: SAML metadata checks, fetching and refresh, and the
//! associated data that binds sealed values to their rows. They are moving out of
//! `latchkey-server` into a crate of their own; this one `use` is what changes when they do.

pub(crate) use latchkey_server::{
    risk::webhook_secret_aad,
    saml::{METADATA_REFRESH_MS, check_metadata_url, fetch_metadata, refresh_connection, sp_key_aad},
};
