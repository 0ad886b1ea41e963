//! The HTTP kit every feature uses: errors and their one mapping to responses, the tenant
//! extractor, form parsing, responses and cookies, CSP and the request middleware, pages,
//! strings in the reader's language, and blocking work off the async threads.
//!
//! Architecture Invariant: `web` knows no feature and no sign-in step; it imports only `state`
//! and the foundations.

pub(crate) mod blocking;
pub(crate) mod cookies;
pub mod errors;
pub mod form;
pub(crate) mod i18n;
pub(crate) mod i18n_lifecycle;
pub(crate) mod i18n_privacy;
pub(crate) mod limits;
pub(crate) mod net;
pub mod observe;
pub(crate) mod pages;
pub mod region;
pub(crate) mod respond;
pub(crate) mod revocation;
pub(crate) mod tenant;
pub(crate) mod urls;
