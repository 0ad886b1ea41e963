//! OpenID Connect and OAuth 2.0 protocol logic as plain functions (one file per endpoint, grant
//! or rule; `check_*` validators), free of HTTP: the server translates requests into calls here
//! and `OAuthError`s into responses in one place.

pub mod authorize;
pub mod client_auth;
pub mod discovery;
mod error;
pub mod grant_client_credentials;
pub mod grant_code;
pub mod grant_refresh;
pub mod logout;
pub mod pkce;
pub mod redirect;
pub mod scope;
pub mod tokens;

#[cfg(test)]
mod testing;

pub use error::{ErrorCode, OAuthError};
