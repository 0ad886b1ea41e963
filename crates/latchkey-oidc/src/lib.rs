//! OpenID Connect and OAuth 2.0 protocol logic as plain functions (one file per endpoint, grant
//! or rule; `check_*` validators), free of HTTP and storage: the server translates requests
//! into calls here and `OAuthError`s into responses in one place.

mod error;
pub mod pkce;
pub mod redirect;

pub use error::{ErrorCode, OAuthError};
