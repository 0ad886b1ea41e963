//! Latchkey's relational storage: one diesel implementation serving SQLite (the embedded default)
//! and PostgreSQL (production), embedded migrations for both, and narrow repository traits that
//! take the `TenantId` first. Every change is written with its audit event in one transaction.

/// `$table` left-joined with the key of the user its `$user` column names (`user_keys`, on
/// tenant and user): personal data and the key that opens it in one query.
macro_rules! with_user_key {
    ($table:ident, $user:ident) => {
        $table::table.left_join(
            crate::schema::user_keys::table.on(crate::schema::user_keys::tenant_id
                .eq($table::tenant_id)
                .and(crate::schema::user_keys::user_id.eq($table::$user))),
        )
    };
}

mod admin_tokens;
mod attributes;
mod audit;
mod backup;
mod changes;
mod clients;
mod conn;
mod db;
pub mod deadline;
mod domains;
mod error;
mod groups;
mod identities;
mod incidents;
mod invitations;
mod keys;
mod lifecycle;
mod mfa;
mod oauth;
mod resets;
mod retention;
pub mod revocations;
mod risk;
mod roles;
mod saml;
mod schema;
mod system_tokens;
mod tenants;
mod terms;
mod upstream;
mod users;
mod vault;
mod verifications;

pub use admin_tokens::{AdminTokenRepo, CredentialKind, Grants, NewAdminToken};
pub use attributes::{AttributeChange, AttributeRepo, AttributeUpdate, AttributeValues};
pub use audit::{Anchor, AuditFilter, AuditRepo};
pub use backup::{Part, Row, RowSink, RowSource, Scope, Table};
pub use changes::{Change, Changed, Follower};
pub use clients::{ClientRepo, MAX_SECRET_OVERLAP_MS, NewClient};
pub use conn::{AnyConnection, DatabaseUrl};
pub use db::{Db, PoolOptions, PoolStats};
pub use domains::{DomainMethod, DomainRepo, TenantDomain};
pub use error::StoreError;
pub use groups::{GroupMembers, GroupRepo, GroupUpdate};
pub use incidents::{Affected, IncidentRepo, LockedDown};
pub use invitations::{
    Acceptance, Invitation, InvitationRepo, InvitationStatus, NewInvitation, NewPasskey, Refusal,
};
pub use keys::{KeyTx, SealedValue, StoredDataKey, StoredSigningKey};
pub use lifecycle::LifecycleRepo;
pub use mfa::{MfaRepo, PasskeyRow, StoredTotp};
pub use oauth::{
    Consent, Grant, GrantsOf, NewCode, NewToken, OAuthRepo, Spend, StoredCode, StoredToken, TokenKind,
};
pub use resets::{
    Channel, LiveReset, LogoutNotice, LogoutSubject, MailOutbox, NewMail, QueuedMail, ResetRepo,
};
pub use retention::{Inactive, RetentionRepo};
pub use risk::RiskRepo;
pub use roles::RoleRepo;
pub use saml::{CertificatesChanged, NewSamlConnection, SamlConnectionUpdate, SamlRepo};
pub use system_tokens::{SystemTokenRepo, system_permissions};
pub use tenants::{NewTenant, TenantRepo, TenantUpdate};
pub use terms::TermsRepo;
pub use upstream::UpstreamRepo;
pub use users::{NewUser, UserQuery, UserRepo, UserUpdate};
pub use vault::{BLIND_PREFIX, PERSONAL_SEAL, TenantVault, UserKey, Vault};
pub use verifications::{EmailVerificationRepo, LiveVerification, NewVerification};

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
