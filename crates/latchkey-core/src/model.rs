//! The tenant, user, role and client models as the rest of Latchkey sees them.

use crate::{ClientId, RoleId, TenantId, UnixMillis, UserId};
use serde::{Deserialize, Serialize};

/// Declares a string-valued enum with its wire name, parsing and display.
macro_rules! wire_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $wire:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
        pub enum $name {
            $(#[serde(rename = $wire)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $wire),+ }
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($wire => Ok($name::$variant),)+
                    other => Err(format!(
                        "unknown value {other:?}; expected one of: {}",
                        [$($wire),+].join(", ")
                    )),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use wire_enum;

wire_enum!(
    /// RFC 6749 §2.1 client types.
    ClientType { Public = "public", Confidential = "confidential" }
);
wire_enum!(
    /// Token endpoint authentication methods (OIDC Core §9, RFC 7591 §2).
    AuthMethod {
        ClientSecretBasic = "client_secret_basic",
        ClientSecretPost = "client_secret_post",
        PrivateKeyJwt = "private_key_jwt",
        None = "none",
    }
);
wire_enum!(
    /// Grant types a client may use (RFC 6749 §4, §6).
    GrantType {
        AuthorizationCode = "authorization_code",
        RefreshToken = "refresh_token",
        ClientCredentials = "client_credentials",
    }
);
wire_enum!(
    /// Access-token format per client: RFC 9068 JWT or an opaque handle.
    AccessTokenFormat { Jwt = "jwt", Opaque = "opaque" }
);
wire_enum!(
    /// Whether users may or must use a second factor.
    MfaMode { Off = "off", Optional = "optional", Required = "required" }
);
wire_enum!(
    /// Second-factor kinds a tenant allows.
    MfaMethod { Passkey = "passkey", Totp = "totp" }
);
wire_enum!(
    /// What a half-finished sign-in still needs.
    FactorDue { Verify = "verify", Enrol = "enrol" }
);
wire_enum!(
    /// Whether a user may sign in.
    UserStatus { Active = "active", Disabled = "disabled" }
);

/// A tenant's password rules. Defaults follow NIST SP 800-63B: length, no composition rules, no expiry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default, deny_unknown_fields)]
pub struct PasswordPolicy {
    pub min_length: u32,
    pub max_length: u32,
    pub require_lowercase: bool,
    pub require_uppercase: bool,
    pub require_digit: bool,
    pub require_symbol: bool,
    /// Days until a password must be changed; `None` means never.
    pub expiry_days: Option<u32>,
    /// How many previous passwords may not be reused; 0 turns history off.
    pub history: u32,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self {
            min_length: 12,
            max_length: 128,
            require_lowercase: false,
            require_uppercase: false,
            require_digit: false,
            require_symbol: false,
            expiry_days: None,
            history: 0,
        }
    }
}

/// Server-side session lifetimes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default, deny_unknown_fields)]
pub struct SessionPolicy {
    pub idle_timeout_secs: u32,
    pub absolute_timeout_secs: u32,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self {
            idle_timeout_secs: 30 * 60,
            absolute_timeout_secs: 12 * 3600,
        }
    }
}

/// Signing-key rotation. A new key is published this long before it signs, and a retired key stays
/// published until the longest-lived token it signed has expired, plus a margin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default, deny_unknown_fields)]
pub struct KeyPolicy {
    pub rotation_days: u32,
    pub prepublish_hours: u32,
    pub max_token_lifetime_secs: u32,
    pub retire_margin_hours: u32,
}

impl Default for KeyPolicy {
    fn default() -> Self {
        Self {
            rotation_days: 90,
            prepublish_hours: 48,
            max_token_lifetime_secs: 24 * 3600,
            retire_margin_hours: 24,
        }
    }
}

/// Everything a tenant's administrator can tune. Stored as JSON so later features add fields
/// with defaults instead of migrations.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default, deny_unknown_fields)]
pub struct TenantPolicy {
    pub password: PasswordPolicy,
    pub session: SessionPolicy,
    /// Second factors: off, optional (users may enrol) or required.
    pub mfa: MfaPolicy,
    /// Before `mfa`: read as `mfa.mode = required`, never written.
    #[serde(skip_serializing)]
    pub mfa_required: bool,
    pub keys: KeyPolicy,
    pub branding: Branding,
    pub tokens: TokenPolicy,
    pub risk: RiskPolicy,
    pub retention: RetentionPolicy,
    pub throttle: ThrottlePolicy,
    pub email: EmailPolicy,
    pub signup: SignupPolicy,
    pub accounts: AccountPolicy,
    /// Terms of service users accept before a code is issued to a client (docs/privacy.md).
    /// Left out when unset, so nodes that predate it keep reading tenants that don't use it.
    #[serde(skip_serializing_if = "TermsPolicy::is_unset")]
    pub terms: TermsPolicy,
}

/// The tenant's terms of service: while `version` is set, a user who has not accepted that
/// version is shown the terms (at `url`) before any code is issued, and again when it changes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default, deny_unknown_fields)]
pub struct TermsPolicy {
    /// A label of the text in force (`2026-12`, `v3`); changing it asks everyone again.
    pub version: Option<String>,
    /// Where the text is, https.
    pub url: Option<String>,
}

impl TermsPolicy {
    pub fn is_unset(&self) -> bool {
        self.version.is_none() && self.url.is_none()
    }
}

/// The end of an account (docs/operations.md): how long a user's own deletion waits.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default, deny_unknown_fields)]
pub struct AccountPolicy {
    /// Days (0-90) between a user's request to delete their account and its deletion. During
    /// them the account is closed (no sign-in) and an operator can restore it; 0 deletes at once.
    pub deletion_grace_days: u32,
    /// Days (0-90) between an operator's erasure of a user (`latchkey user erase`, the admin
    /// API) and its execution. During them the account is closed and the erasure can be
    /// cancelled (`user restore`); 0 erases at once.
    pub erasure_grace_days: u32,
}

wire_enum!(
    /// Who may create their own account (docs/sign-up.md).
    SignupMode {
        Off = "off",
        InviteOnly = "invite-only",
        Open = "open",
        OpenForDomains = "open-for-domains",
    }
);

/// Self-service sign-up: off by default; `open-for-domains` admits only addresses in `domains`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default, deny_unknown_fields)]
pub struct SignupPolicy {
    pub mode: SignupMode,
    /// Lowercased domains `open-for-domains` admits (exact match, no subdomains).
    pub domains: Vec<String>,
}

impl Default for SignupPolicy {
    fn default() -> Self {
        Self {
            mode: SignupMode::Off,
            domains: Vec::new(),
        }
    }
}

impl SignupPolicy {
    /// Whether an address (already normalized) may sign up under this policy's mode and
    /// domains; other refusals (a domain a SAML connection claims) are the caller's.
    pub fn admits(&self, email: &str) -> bool {
        let domain = email.rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
        match self.mode {
            SignupMode::Open => true,
            SignupMode::OpenForDomains => self.domains.iter().any(|d| d.eq_ignore_ascii_case(domain)),
            SignupMode::Off | SignupMode::InviteOnly => false,
        }
    }
}

/// Email addresses (docs/sign-up.md): with `require_verified`, `/authorize` issues no code to a
/// user whose address is not verified; the user is asked to verify it first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default, deny_unknown_fields)]
pub struct EmailPolicy {
    pub require_verified: bool,
}

/// Brute-force limits on sign-in (docs/sign-in.md). An account backs off after
/// `account_free_failures` failures in 15 minutes, a client (an IPv4 address or an IPv6 /64)
/// after `address_free_failures` failures across accounts; successes are never counted.
/// Clients in `address_allow` (CIDRs: a corporate egress) skip the per-address limit only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default, deny_unknown_fields)]
pub struct ThrottlePolicy {
    pub account_free_failures: u32,
    pub address_free_failures: u32,
    pub address_allow: Vec<String>,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        Self {
            account_free_failures: 5,
            address_free_failures: 50,
            address_allow: Vec::new(),
        }
    }
}

/// Login risk: score bands and where alerts go. Scores at or above `step_up` ask for a second
/// factor (refused when the user has none), at or above `deny` refuse the sign-in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default, deny_unknown_fields)]
pub struct RiskPolicy {
    pub enabled: bool,
    pub step_up: u8,
    pub deny: u8,
    /// Mail the user when they sign in from a device not seen before.
    pub notify_new_device: bool,
    /// Elevated decisions are POSTed here as JSON, signed with HMAC-SHA256.
    pub webhook_url: Option<String>,
    /// The webhook's HMAC key, sealed under the tenant's data key. Left out when there is none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_secret_sealed: Option<String>,
}

impl Default for RiskPolicy {
    fn default() -> Self {
        Self {
            enabled: true,
            step_up: 40,
            deny: 80,
            notify_new_device: false,
            webhook_url: None,
            webhook_secret_sealed: None,
        }
    }
}

/// How long a tenant keeps what it records. Sessions end with their absolute timeout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default, deny_unknown_fields)]
pub struct RetentionPolicy {
    pub audit_days: u32,
    pub risk_history_days: u32,
    /// Days without a sign-in after which the person is told by mail that their account will
    /// be disabled (and deleted); unset: never.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inactive_notify_days: Option<u32>,
    /// Days without a sign-in after which the account is disabled; unset: never.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inactive_disable_days: Option<u32>,
    /// Days without a sign-in after which the account is deleted; unset: never.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inactive_delete_days: Option<u32>,
    /// Days a consent lasts unless given or changed again; unset: until withdrawn.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consent_days: Option<u32>,
    /// Days accepted, revoked or expired invitations are kept.
    pub invitation_days: u32,
    /// Days delivered or abandoned mail, webhook and logout messages are kept.
    pub outbox_days: u32,
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        Self {
            audit_days: 365,
            risk_history_days: 365,
            inactive_notify_days: None,
            inactive_disable_days: None,
            inactive_delete_days: None,
            consent_days: None,
            invitation_days: 30,
            outbox_days: 30,
        }
    }
}

/// A tenant's second-factor rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default, deny_unknown_fields)]
pub struct MfaPolicy {
    pub mode: MfaMode,
    pub methods: Vec<MfaMethod>,
    /// Passkey models the tenant trusts; when any are listed, registration requires their
    /// attestation (direct, chained to the CA). Empty: attestation `none` (the default).
    pub passkey_attestation: Vec<TrustedAuthenticator>,
}

/// An authenticator model by AAGUID and the CA its attestation certificates chain to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct TrustedAuthenticator {
    pub aaguid: String,
    pub ca_pem: String,
}

impl Default for MfaPolicy {
    fn default() -> Self {
        Self {
            mode: MfaMode::Optional,
            methods: vec![MfaMethod::Passkey, MfaMethod::Totp],
            passkey_attestation: Vec::new(),
        }
    }
}

impl TenantPolicy {
    /// The effective MFA mode (a policy written before `mfa` existed may say `mfa_required`).
    pub fn mfa_mode(&self) -> MfaMode {
        if self.mfa_required {
            MfaMode::Required
        } else {
            self.mfa.mode
        }
    }

    pub fn allows(&self, m: MfaMethod) -> bool {
        self.mfa_mode() != MfaMode::Off && self.mfa.methods.contains(&m)
    }
}

/// Token lifetimes of a tenant; a client may shorten or lengthen its own (`ClientSettings`).
/// Defaults follow Keycloak and the OAuth Security BCP: short access tokens, 60-second codes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default, deny_unknown_fields)]
pub struct TokenPolicy {
    pub access_token_secs: u32,
    pub id_token_secs: u32,
    pub code_secs: u32,
    /// A refresh token unused this long dies; each rotation starts the idle time again.
    pub refresh_idle_secs: u32,
    /// No refresh token of a grant lives past this, rotation or not.
    pub refresh_absolute_secs: u32,
    /// For this long after a rotation, the token just rotated coming back from its own client
    /// is answered `invalid_grant` without revoking the grant: a retry after a lost answer, or a
    /// second tab that refreshed at the same moment, does not sign the user out. 0 turns it off.
    pub refresh_reuse_grace_secs: u32,
}

impl Default for TokenPolicy {
    fn default() -> Self {
        Self {
            access_token_secs: 600,
            id_token_secs: 600,
            code_secs: 60,
            refresh_idle_secs: 30 * 86_400,
            refresh_absolute_secs: 90 * 86_400,
            refresh_reuse_grace_secs: 10,
        }
    }
}

/// Per-client settings kept as JSON, so new ones need no migration. `None` means the tenant's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default, deny_unknown_fields)]
pub struct ClientSettings {
    /// JWS algorithm of the client's ID tokens (OIDC Registration); RS256 when unset.
    pub id_token_signed_response_alg: Option<String>,
    pub access_token_secs: Option<u32>,
    pub id_token_secs: Option<u32>,
    pub refresh_idle_secs: Option<u32>,
    pub refresh_absolute_secs: Option<u32>,
    /// The resource indicators (RFC 8707) this client may ask tokens for; a `resource` not
    /// listed is refused with `invalid_target`. Empty: no `resource` is accepted, and the
    /// token's audience is the client itself. Left out of the JSON when empty, so nodes that
    /// predate the field keep reading clients that don't use it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
    /// What the client's tokens say about the user's roles, groups and attributes
    /// (docs/authorization.md). Left out when default, like `resources`.
    #[serde(skip_serializing_if = "crate::ClaimsConfig::is_default")]
    pub claims: crate::ClaimsConfig,
    /// Back-Channel Logout 1.0: where a logout token is POSTed when a session the client got
    /// tokens in ends. Left out when unset, like the fields above.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backchannel_logout_uri: Option<String>,
    /// The logout token must carry `sid` (it always does when the grant came from a session).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub backchannel_logout_session_required: bool,
    /// Front-Channel Logout 1.0: a page of the client loaded in an iframe of the logout page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frontchannel_logout_uri: Option<String>,
    /// `iss` and `sid` are added to the front-channel URI.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub frontchannel_logout_session_required: bool,
    /// OIDC Core §8: `public` (the user's id as `sub`) or `pairwise` (a `sub` of its own per
    /// sector, docs/oidc.md#pairwise-subjects). Left out when public, like the fields above.
    #[serde(skip_serializing_if = "crate::subject::is_public")]
    pub subject_type: crate::SubjectType,
    /// OIDC Registration §2: a URL of a JSON array holding every redirect URI of the client;
    /// its host is the pairwise sector (`crate::subject::sector_identifier`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sector_identifier_uri: Option<String>,
    /// When set, the most the client is told about a user: no claim outside this list reaches
    /// its tokens, userinfo or introspection, whatever scopes it asks for. Protocol claims
    /// (`crate::subject::PROTOCOL_CLAIMS`) always go. Unset: the scopes decide.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_claims: Option<Vec<String>>,
}

/// How the tenant's pages look: its name comes from the tenant, these from its administrator.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default, deny_unknown_fields)]
pub struct Branding {
    /// An https URL of the logo shown above the sign-in form.
    pub logo_url: Option<String>,
    /// `#rrggbb`: buttons and links.
    pub primary_color: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Tenant {
    pub id: TenantId,
    pub slug: String,
    pub display_name: String,
    pub policy: TenantPolicy,
    pub created_at: UnixMillis,
    pub updated_at: UnixMillis,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct User {
    pub id: UserId,
    pub tenant_id: TenantId,
    pub username: String,
    pub email: Option<String>,
    /// The user proved they read mail at `email` (a verification link, or a SAML connection
    /// that vouches for its addresses). Any change of `email` clears it.
    #[serde(default)]
    pub email_verified: bool,
    pub display_name: Option<String>,
    pub status: UserStatus,
    /// PHC string (argon2id). Never serialized to operators or logs.
    #[serde(skip_serializing)]
    pub password_hash: Option<String>,
    pub password_changed_at: Option<UnixMillis>,
    /// Sessions created before this are void (set by an administrator's MFA reset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sessions_not_before: Option<UnixMillis>,
    pub created_at: UnixMillis,
    pub updated_at: UnixMillis,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Role {
    pub id: RoleId,
    pub tenant_id: TenantId,
    pub name: String,
    pub description: Option<String>,
    pub created_at: UnixMillis,
}

/// A replaced client secret during its overlap: only the end is shown, never the hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct PreviousSecret {
    /// SHA-256 (hex) of the old secret.
    #[serde(skip_serializing, default)]
    pub hash: String,
    pub expires_at: UnixMillis,
}

impl Client {
    /// The hashes of the secrets that authenticate this client at `now`: the current one and,
    /// during an overlap, the one it replaced.
    pub fn secret_hashes(&self, now: UnixMillis) -> impl Iterator<Item = &str> {
        let previous = self
            .previous_secret
            .as_ref()
            .filter(|p| now < p.expires_at)
            .map(|p| p.hash.as_str());
        self.secret_hash.as_deref().into_iter().chain(previous)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Client {
    pub client_id: ClientId,
    pub tenant_id: TenantId,
    pub name: String,
    /// SHA-256 (hex) of the secret; the secret itself is shown once and never stored.
    #[serde(skip_serializing)]
    pub secret_hash: Option<String>,
    /// The secret a rotation replaced, still accepted until it expires (an overlap lets the
    /// client be redeployed with the new one without an outage).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_secret: Option<PreviousSecret>,
    pub client_type: ClientType,
    pub auth_method: AuthMethod,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub grant_types: Vec<GrantType>,
    pub scopes: Vec<String>,
    pub access_token_format: AccessTokenFormat,
    /// PKCE required (always for public clients; a confidential client may opt out for legacy RPs).
    pub require_pkce: bool,
    /// May introspect tokens issued to other clients of the tenant (RFC 7662 resource servers).
    pub introspect_others: bool,
    /// First-party clients skip the consent screen.
    pub first_party: bool,
    /// Where the client publishes its keys for `private_key_jwt` (RFC 7523).
    pub jwks_uri: Option<String>,
    /// The client's public keys, registered by value (a JWK Set).
    pub jwks: Option<serde_json::Value>,
    #[serde(default)]
    pub settings: ClientSettings,
    pub created_at: UnixMillis,
    pub updated_at: UnixMillis,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_enums_round_trip_and_reject_unknown() {
        for m in AuthMethod::ALL {
            assert_eq!(m.as_str().parse::<AuthMethod>().unwrap(), *m);
        }
        let err = "implicit".parse::<GrantType>().unwrap_err();
        assert!(err.contains("authorization_code"), "{err}");
    }

    #[test]
    fn tenant_policy_fills_defaults_and_refuses_unknown_fields() {
        let p: TenantPolicy = serde_json::from_str(r#"{"password":{"min_length":14}}"#).unwrap();
        assert_eq!(p.password.min_length, 14);
        assert_eq!(p.password.max_length, 128);
        assert!(serde_json::from_str::<TenantPolicy>(r#"{"pasword":{}}"#).is_err());
    }

    #[test]
    fn a_policy_without_accounts_deletes_at_once() {
        let p: TenantPolicy = serde_json::from_str(r#"{"password":{}}"#).unwrap();
        assert_eq!(p.accounts.deletion_grace_days, 0);
        let p: TenantPolicy = serde_json::from_str(r#"{"accounts":{"deletion_grace_days":14}}"#).unwrap();
        assert_eq!(p.accounts.deletion_grace_days, 14);
        assert!(serde_json::from_str::<TenantPolicy>(r#"{"accounts":{"grace":1}}"#).is_err());
    }

    #[test]
    fn an_old_mfa_required_policy_still_reads_and_means_required() {
        let p: TenantPolicy = serde_json::from_str(r#"{"mfa_required":true}"#).unwrap();
        assert_eq!(p.mfa_mode(), MfaMode::Required);
        assert!(!serde_json::to_string(&p).unwrap().contains("mfa_required"));
        assert_eq!(TenantPolicy::default().mfa_mode(), MfaMode::Optional);
    }

    #[test]
    fn signup_is_off_by_default_and_domains_are_exact() {
        let p = TenantPolicy::default();
        assert_eq!(p.signup.mode, SignupMode::Off);
        assert!(!p.email.require_verified);
        assert!(!p.signup.admits("a@b.com"));
        let p = SignupPolicy {
            mode: SignupMode::OpenForDomains,
            domains: vec!["b.com".into()],
        };
        assert!(p.admits("a@b.com"));
        assert!(!p.admits("a@evil-b.com"));
        assert!(!p.admits("a@x.b.com"));
        let p: TenantPolicy =
            serde_json::from_str(r#"{"signup":{"mode":"open-for-domains","domains":["b.com"]}}"#).unwrap();
        assert_eq!(p.signup.mode, SignupMode::OpenForDomains);
    }

    #[test]
    fn secrets_are_not_serialized() {
        let u = User {
            id: "u".into(),
            tenant_id: "t".into(),
            username: "alice".into(),
            email: None,
            email_verified: false,
            display_name: None,
            status: UserStatus::Active,
            password_hash: Some("$argon2id$secret".into()),
            password_changed_at: None,
            sessions_not_before: None,
            created_at: 0,
            updated_at: 0,
        };
        assert!(!serde_json::to_string(&u).unwrap().contains("argon2id"));
    }
}

/// A signed-in browser session, kept server-side (the cookie holds only a random id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Session {
    pub tenant_id: TenantId,
    pub user_id: UserId,
    /// When the user last actively authenticated (OIDC `auth_time`).
    pub auth_time: UnixMillis,
    /// Authentication methods used (RFC 8176 values: `pwd`, `otp`, `hwk`, `mfa`…).
    pub amr: Vec<String>,
    pub acr: Option<String>,
    pub created_at: UnixMillis,
    /// Idle deadline: moves forward on activity, never past `absolute_deadline`.
    pub idle_deadline: UnixMillis,
    pub absolute_deadline: UnixMillis,
    pub device_id: Option<String>,
    /// The risk engine's decision for the login that made this session.
    pub risk: Option<String>,
    /// Shown on the account page's session list.
    #[serde(default)]
    pub user_agent: Option<String>,
    #[serde(default)]
    pub ip: Option<String>,
    #[serde(default)]
    pub last_seen: UnixMillis,
    /// The password expired: nothing but changing it is allowed in this session.
    #[serde(default)]
    pub must_change_password: bool,
    /// A second factor is still due (`verify` or `enrol`): until it is done the session signs
    /// nobody in; it only reaches the second-factor pages.
    #[serde(default)]
    pub factor_due: Option<FactorDue>,
    /// The upstream sign-in this session came from, for Single Logout (docs/logout.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub federated: Option<FederatedSession>,
}

/// Where a federated session came from: enough to ask the IdP to end its session too (a SAML
/// `LogoutRequest` names the NameID and SessionIndex) and to find this session when the IdP
/// asks Latchkey to end it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct FederatedSession {
    /// The connection's id: a connection removed and made again under the same name (perhaps
    /// toward another IdP) is another connection, and is never sent this NameID.
    pub connection_id: String,
    /// The connection's name (`/t/{tenant}/saml/{name}/…`).
    pub connection: String,
    pub name_id: String,
    #[serde(default)]
    pub name_id_format: Option<String>,
    #[serde(default)]
    pub session_index: Option<String>,
}

/// A bearer token for a tenant's admin API. The token itself is shown once; only its SHA-256 is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AdminToken {
    pub id: String,
    pub tenant_id: TenantId,
    pub name: String,
    /// Admin roles by name: built-in ones (`tenant-admin`, …) or the tenant's custom ones.
    pub roles: Vec<String>,
    /// Permissions given one by one, beside the roles'.
    pub permissions: crate::Permissions,
    /// Set when the credential is a client of the tenant: its OAuth access tokens for the admin
    /// API are accepted instead of an `lka_` token.
    pub client_id: Option<ClientId>,
    /// Set when the credential is a user of the tenant: they open the admin console by signing
    /// in with two factors.
    #[serde(default)]
    pub user_id: Option<UserId>,
    pub created_at: UnixMillis,
    pub expires_at: Option<UnixMillis>,
    /// The version an `If-Match` names.
    pub updated_at: UnixMillis,
}

/// A tenant's own admin role: a named set of permissions credentials can hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AdminRoleDef {
    pub name: String,
    pub description: String,
    pub permissions: crate::Permissions,
    pub created_at: UnixMillis,
    pub updated_at: UnixMillis,
}

impl AdminToken {
    pub fn is_expired(&self, now: UnixMillis) -> bool {
        self.expires_at.is_some_and(|e| e <= now)
    }
}
