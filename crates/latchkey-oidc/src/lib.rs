//! OpenID Connect and OAuth 2.0 protocol logic as plain functions (one file per endpoint, grant
//! or rule; `check_*` validators), free of HTTP: the server translates requests into calls here
//! and `OAuthError`s into responses in one place.
//!
//! The token endpoint: `TokenRequest::parse` reads a request once; `grants::*` redeem it over a
//! `GrantStore` and a `Signer`; `memory::MemoryOAuth` is an in-memory store for tests.

pub mod authorize;
pub mod claims;
pub mod client_auth;
pub mod discovery;
mod error;
pub mod grants;
pub mod lifetimes;
pub mod logout;
pub mod memory;
pub mod pkce;
pub mod redirect;
pub mod scope;
pub mod subject;
pub mod token_request;
pub mod tokens;

#[cfg(test)]
mod testing;

pub use error::{ErrorCode, OAuthError};
pub use grants::{Ctx, GrantError, GrantStore, Issued, Signer, TokenResponse, UserLookup};
pub use token_request::TokenRequest;
