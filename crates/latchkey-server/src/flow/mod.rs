//! The sign-in lifecycle every feature shares: sessions, CSRF, throttling, the interaction
//! handoff from a protocol flow to the sign-in pages and back, second factors, risk, realm
//! discovery, grant revocation, audit, notifications, and the one function that completes a
//! sign-in whatever the method (`complete`).
//!
//! Architecture Invariant: `flow` imports `web`, `state` and the foundations, never a feature.

pub(crate) mod audit;
pub(crate) mod bearer;
pub(crate) mod complete;
pub(crate) mod csrf;
pub(crate) mod email;
pub(crate) mod factor;
pub(crate) mod federated;
pub(crate) mod frontchannel;
pub(crate) mod grants;
pub mod interaction;
pub(crate) mod notify;
pub(crate) mod privacy;
pub(crate) mod realm;
pub mod risk;
pub(crate) mod saml_logout;
pub(crate) mod saml_test;
pub(crate) mod session;
pub(crate) mod subject;
pub(crate) mod throttle;
pub(crate) mod users;
