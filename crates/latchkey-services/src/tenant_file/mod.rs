//! Tenants as code (docs/tenants-as-code.md): one declarative file describes a tenant's policy,
//! attribute schema, groups, roles, clients and SAML connections. `export` writes such a file
//! from a tenant, `plan` compares a file with a tenant and lists the changes, `apply` makes them
//! through the store's ordinary audited operations. The CLI (`latchkey apply`, `latchkey export`) and the
//! admin API (`…/apply`, `…/export`) both call these.
//!
//! Secrets are never in the file: a client secret is a reference (`{env: NAME}` or
//! `{file: PATH}`) that the caller resolves; the admin API resolves none.
//!
//! IdP metadata from a URL is fetched before planning ([`Metadata::fetch`], async, only for the
//! connections a plan would create or repoint), as are pairwise clients' sector documents, so
//! `plan` and `apply` stay synchronous.
//!
//! What does not live here: reading files or the environment for the CLI, HTTP.

mod apply;
mod current;
mod export;
mod file;
mod plan;
mod saml;
mod sectors;

pub use apply::{Applied, NewSecret, apply};
pub use current::Current;
pub use export::{export, render};
pub use file::{
    AttributeSpec, ClientEntry, ClientRoleSpec, Format, GroupSpec, MAX_FILE_BYTES, RoleSpec,
    SamlConnectionEntry, SecretRef, TenantFile, parse,
};
pub use plan::{Change, Kept, Op, Plan, Secrets, plan};
pub use saml::Metadata;

use crate::ServiceError;

/// A refusal of the file, naming where in it (`clients[1].client_secret`).
pub(crate) fn refuse(at: impl Into<String>, message: impl Into<String>) -> ServiceError {
    ServiceError::TenantFile {
        at: at.into(),
        message: message.into(),
    }
}
