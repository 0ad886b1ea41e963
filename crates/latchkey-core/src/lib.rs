//! Latchkey's domain vocabulary: identifiers, the tenant/user/client/role models, tenant policy,
//! validation rules for what operators and clients send, the audit-chain hash, and the injected
//! `Clock` and `Rng`. No I/O lives here.

pub mod admin;
pub mod attributes;
mod audit;
pub mod breaker;
pub mod claims;
mod clock;
mod groups;
mod ids;
mod model;
pub mod patch;
mod rng;
pub mod saml;
pub mod subject;
pub mod upstream;
pub mod validate;

pub use admin::{BuiltinAdminRole, Permission, Permissions};
pub use attributes::{AttributeDef, AttributeKind, EditableBy};
pub use audit::{AuditEvent, GENESIS_HASH, NewAuditEvent, Outcome};
pub use breaker::{Admit, Breaker, BreakerState};
pub use claims::{ClaimMapper, ClaimSource, ClaimsConfig, TokenTarget};
pub use clock::{Clock, FixedClock, SystemClock, UnixMillis};
pub use groups::{AnyRole, ClientRole, EffectiveAccess, EffectiveGroup, Group, Principal};
pub use ids::{ClientId, ClientRoleId, GroupId, RoleId, TenantId, UserId};
pub use model::{
    AccessTokenFormat, AccountPolicy, AdminRoleDef, AdminToken, AuthMethod, Branding, Client, ClientSettings,
    ClientType, EmailPolicy, FactorDue, FederatedSession, GrantType, KeyPolicy, MfaMethod, MfaMode,
    MfaPolicy, PasswordPolicy, PreviousSecret, RetentionPolicy, RiskPolicy, Role, Session, SessionPolicy,
    SignupMode, SignupPolicy, Tenant, TenantPolicy, TermsPolicy, ThrottlePolicy, TokenPolicy,
    TrustedAuthenticator, User, UserStatus,
};
pub use rng::{OsRng, Rng, SeededRng, random_token, random_uuid, sha256, sha256_hex, sid_of};
pub use saml::{AttributeMapping, IdpDescriptor, SamlConnection, SamlOptions};
pub use subject::SubjectType;
pub use upstream::{
    ClaimMapping, Discovered, OidcConnection, UpstreamAuth, UpstreamEndpoints, UpstreamKind, UpstreamOptions,
};
pub use validate::ValidationError;
