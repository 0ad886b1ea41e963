//! Upstream OpenID Connect connections: another identity provider (Entra ID, Okta, Google, another
//! Latchkey, or an OAuth 2.0-only provider such as GitHub) that a tenant's people sign in with.
//! Latchkey is the relying party toward it. What Latchkey trusts is what the operator configured
//! (the issuer, the client, the allowed Entra tenants) and the keys discovery found at that
//! issuer, never what a token claims about itself.

use crate::{TenantId, UnixMillis};
use serde::{Deserialize, Serialize};

/// The `{tenantid}` placeholder of Entra ID's multi-tenant issuer
/// (`https://login.microsoftonline.com/{tenantid}/v2.0`): the token's `tid` fills it.
pub const TENANT_PLACEHOLDER: &str = "{tenantid}";

/// What the upstream speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum UpstreamKind {
    /// OpenID Connect: discovery, an ID token verified against the issuer's JWKS.
    Oidc,
    /// OAuth 2.0 with a user endpoint and no ID token (GitHub): endpoints are configured, the
    /// person is whoever the user endpoint says the access token belongs to.
    Oauth2,
}

/// How Latchkey authenticates to the upstream's token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum UpstreamAuth {
    ClientSecretBasic,
    ClientSecretPost,
    /// RFC 7523 client assertion signed with the connection's own key, whose public half is
    /// published at `/t/{tenant}/federation/{name}/jwks`.
    PrivateKeyJwt,
}

/// Endpoints configured by hand (OAuth 2.0-only providers) instead of discovered.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct UpstreamEndpoints {
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    /// The user endpoint (OIDC UserInfo, or GitHub's `/user`).
    pub userinfo_endpoint: String,
}

/// Which claims (of the ID token, then UserInfo) give the user's subject, email, name and
/// groups. Defaults are the OIDC standard claims; GitHub's `/user` needs `subject: id`,
/// `name: name`, `email: email`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ClaimMapping {
    #[serde(default = "sub")]
    pub subject: String,
    #[serde(default = "email")]
    pub email: String,
    #[serde(default = "name")]
    pub name: String,
    /// `None`: the upstream's groups are not read.
    #[serde(default)]
    pub groups: Option<String>,
}

fn sub() -> String {
    "sub".into()
}
fn email() -> String {
    "email".into()
}
fn name() -> String {
    "name".into()
}

impl Default for ClaimMapping {
    fn default() -> Self {
        Self {
            subject: sub(),
            email: email(),
            name: name(),
            groups: None,
        }
    }
}

/// Per-connection behaviour; the account rules are those of SAML connections.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct UpstreamOptions {
    /// Email domains this connection claims: home-realm discovery sends them here.
    #[serde(default)]
    pub domains: Vec<String>,
    /// Create a user at the first sign-in.
    #[serde(default = "yes")]
    pub jit: bool,
    /// Link a first sign-in to an existing local account with the same email, when the address
    /// is in one of `domains` and verified upstream. Off by default.
    #[serde(default)]
    pub link_existing: bool,
    /// Take the upstream's `email_verified: true` as verification. Off by default: many
    /// providers let users type any address.
    #[serde(default)]
    pub trust_email_verified: bool,
    /// Take the upstream's `amr` containing `mfa` (or `acr` naming MFA) as multi-factor;
    /// otherwise the tenant's MFA policy asks for a Latchkey factor.
    #[serde(default)]
    pub trust_upstream_mfa: bool,
    /// Also read the UserInfo endpoint after the ID token (its claims fill what the ID token
    /// lacks; its `sub` must equal the ID token's).
    #[serde(default)]
    pub userinfo: bool,
    #[serde(default)]
    pub mapping: ClaimMapping,
    /// Upstream group → tenant role; groups grant roles only through this map.
    #[serde(default)]
    pub role_map: Vec<(String, String)>,
    /// Upstream group → Latchkey group, kept in step at every sign-in.
    #[serde(default)]
    pub group_map: Vec<(String, String)>,
    /// Upstream claim → user attribute of the tenant's schema, set at every sign-in from the
    /// claim's value (checked against the attribute's type; a claim that is absent leaves the
    /// value alone).
    #[serde(default)]
    pub attribute_map: Vec<(String, String)>,
}

fn yes() -> bool {
    true
}

impl Default for UpstreamOptions {
    fn default() -> Self {
        Self {
            domains: Vec::new(),
            jit: true,
            link_existing: false,
            trust_email_verified: false,
            trust_upstream_mfa: false,
            userinfo: false,
            mapping: ClaimMapping::default(),
            role_map: Vec::new(),
            group_map: Vec::new(),
            attribute_map: Vec::new(),
        }
    }
}

/// What discovery found at the issuer (OpenID Connect Discovery 1.0), kept with the connection
/// and refreshed hourly; the JWKS also on a `kid` it does not hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Discovered {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    #[serde(default)]
    pub userinfo_endpoint: Option<String>,
    pub jwks_uri: String,
    /// `id_token_signing_alg_values_supported`.
    #[serde(default)]
    pub signing_algs: Vec<String>,
    /// RFC 9207 `authorization_response_iss_parameter_supported`: the callback must carry `iss`.
    #[serde(default)]
    pub iss_parameter: bool,
    /// The JWK Set as fetched (JSON text).
    pub jwks: String,
    pub refreshed_at: UnixMillis,
}

/// A tenant's upstream OpenID Connect (or OAuth 2.0) connection as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct OidcConnection {
    pub id: String,
    pub tenant_id: TenantId,
    /// URL-safe name (a slug): `/t/{tenant}/federation/{name}/…`.
    pub name: String,
    pub display_name: String,
    pub kind: UpstreamKind,
    /// The issuer (OIDC), possibly with `{tenantid}`; for OAuth 2.0 providers a label that
    /// names them (`https://github.com`).
    pub issuer: String,
    /// Where discovery is read; `{issuer}/.well-known/openid-configuration` when `None`
    /// (required for a `{tenantid}` issuer, e.g. `…/organizations/v2.0/.well-known/…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovery_url: Option<String>,
    /// Entra tenant ids a `{tenantid}` issuer accepts; nothing else is.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_tenant_ids: Vec<String>,
    pub client_id: String,
    pub client_auth: UpstreamAuth,
    /// The client secret, or the `private_key_jwt` key (PKCS#8), sealed under the tenant's data
    /// key; never serialized.
    #[serde(skip_serializing, default)]
    pub secret_sealed: String,
    /// The public JWK of the `private_key_jwt` key (JSON), published for the upstream to pin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_jwk: Option<String>,
    pub scopes: Vec<String>,
    /// Configured endpoints (OAuth 2.0 providers); discovery's otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoints: Option<UpstreamEndpoints>,
    pub options: UpstreamOptions,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovered: Option<Discovered>,
    /// Why the last discovery failed (the last good one stays in use).
    pub discovery_error: Option<String>,
    pub next_refresh_at: Option<UnixMillis>,
    pub created_at: UnixMillis,
    pub updated_at: UnixMillis,
}

impl OidcConnection {
    /// Where discovery is read.
    pub fn discovery_location(&self) -> String {
        self.discovery_url.clone().unwrap_or_else(|| {
            format!(
                "{}/.well-known/openid-configuration",
                self.issuer.trim_end_matches('/')
            )
        })
    }

    /// Whether the issuer is Entra's multi-tenant template.
    pub fn templated(&self) -> bool {
        self.issuer.contains(TENANT_PLACEHOLDER)
    }

    /// The endpoints to use: configured ones, else discovered ones.
    pub fn endpoints(&self) -> Option<UpstreamEndpoints> {
        self.endpoints.clone().or_else(|| {
            self.discovered.as_ref().map(|d| UpstreamEndpoints {
                authorization_endpoint: d.authorization_endpoint.clone(),
                token_endpoint: d.token_endpoint.clone(),
                userinfo_endpoint: d.userinfo_endpoint.clone().unwrap_or_default(),
            })
        })
    }
}
