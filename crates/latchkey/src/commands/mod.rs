//! One module per command group, each owning its group's execution. They share what they need
//! through `context`, `output` and `provision`, never through each other.

pub mod admin_token;
pub mod apply;
pub mod attribute;
pub mod audit;
pub mod backup;
pub mod client;
pub mod demo;
pub mod domain;
pub mod group;
pub mod incident;
pub mod invite;
pub mod keys;
pub mod migrate;
pub mod oidc_connection;
pub mod role;
pub mod saml;
pub mod serve;
pub mod tenant;
pub mod user;
