//! SAML connections: an enterprise customer's identity provider attached to one tenant. Latchkey
//! is the SAML service provider toward it; the IdP's metadata (entity id, single sign-on URL,
//! signing certificates) is what Latchkey trusts, nothing the responses carry.

use crate::{TenantId, UnixMillis};
use serde::{Deserialize, Serialize};

/// SAML 2.0 Bindings §3.4 and §3.5.
pub const BINDING_REDIRECT: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect";
pub const BINDING_POST: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST";

/// What Latchkey takes from the IdP's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct IdpDescriptor {
    pub entity_id: String,
    /// The SingleSignOnService location Latchkey sends AuthnRequests to.
    pub sso_url: String,
    /// Its binding (`BINDING_REDIRECT` preferred, else `BINDING_POST`).
    pub sso_binding: String,
    /// Every signing certificate (base64 DER), so an IdP can roll its key over; responses are
    /// verified against these only.
    pub certificates: Vec<String>,
    /// `WantAuthnRequestsSigned` in the IdP's metadata.
    #[serde(default)]
    pub wants_signed_requests: bool,
    /// The IdP's SingleLogoutService (HTTP-Redirect binding): `Location` for our
    /// `LogoutRequest`s, `ResponseLocation` (else `Location`) for our `LogoutResponse`s. `None`:
    /// the IdP takes no logout from Latchkey.
    #[serde(default)]
    pub slo_url: Option<String>,
    #[serde(default)]
    pub slo_response_url: Option<String>,
}

/// Which assertion attributes give the user's email, name and groups (by `Name` or
/// `FriendlyName`). `None` for email means the NameID when it is an address.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AttributeMapping {
    pub email: Option<String>,
    pub name: Option<String>,
    pub groups: Option<String>,
}

/// Per-connection behaviour, all off unless the operator turns it on (except JIT).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SamlOptions {
    /// Email domains this connection claims: home-realm discovery sends them there.
    #[serde(default)]
    pub domains: Vec<String>,
    /// Accept responses Latchkey did not ask for (IdP-initiated sign-in). Off by default: an
    /// unsolicited response can't be tied to the browser that presents it.
    #[serde(default)]
    pub allow_idp_initiated: bool,
    /// Create a user at the first sign-in.
    #[serde(default = "yes")]
    pub jit: bool,
    /// Link a first sign-in to an existing local account with the same email, when the address
    /// is in one of `domains` (the connection is trusted for that domain). Off by default.
    #[serde(default)]
    pub link_existing: bool,
    /// The IdP vouches for the addresses it asserts: a user whose address it asserts is
    /// `email_verified`. Off by default (most IdPs let users type any address).
    #[serde(default)]
    pub email_verified: bool,
    /// Take the IdP's word that it did multi-factor authentication (its AuthnContextClassRef);
    /// otherwise the tenant's MFA policy asks for a Latchkey factor.
    #[serde(default)]
    pub trust_idp_mfa: bool,
    /// Sign AuthnRequests (RSA-SHA256 over the HTTP-Redirect query).
    #[serde(default)]
    pub sign_requests: bool,
    /// Also accept encrypted assertions with AES-CBC content encryption. Off by default: only
    /// AES-GCM is accepted, since CBC in XML Encryption is open to padding-oracle attacks
    /// (Jager and Somorovsky, CCS 2011). For IdPs that can't do GCM.
    #[serde(default)]
    pub legacy_cbc: bool,
    /// A pinned metadata-signing certificate (base64 DER): metadata fetched or refreshed must
    /// carry a valid enveloped signature by it, or it is refused and the last good metadata
    /// stays.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_signer: Option<String>,
    #[serde(default)]
    pub mapping: AttributeMapping,
    /// IdP group → tenant role; groups grant roles only through this map.
    #[serde(default)]
    pub role_map: Vec<(String, String)>,
    /// IdP group → Latchkey group: at each sign-in the user is put in the mapped groups the
    /// IdP names and taken out of the others the map names; other memberships are left alone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub group_map: Vec<(String, String)>,
}

fn yes() -> bool {
    true
}

impl Default for SamlOptions {
    fn default() -> Self {
        Self {
            domains: Vec::new(),
            allow_idp_initiated: false,
            jit: true,
            link_existing: false,
            email_verified: false,
            trust_idp_mfa: false,
            sign_requests: false,
            legacy_cbc: false,
            metadata_signer: None,
            mapping: AttributeMapping::default(),
            role_map: Vec::new(),
            group_map: Vec::new(),
        }
    }
}

/// A tenant's SAML connection as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SamlConnection {
    pub id: String,
    pub tenant_id: TenantId,
    /// URL-safe name (a slug): `/t/{tenant}/saml/{name}/…`.
    pub name: String,
    pub display_name: String,
    pub idp: IdpDescriptor,
    /// Where metadata is refreshed from; `None` when it came from a file.
    pub metadata_url: Option<String>,
    pub options: SamlOptions,
    /// Latchkey's own certificate for this connection (base64 DER): signs AuthnRequests and
    /// receives encrypted assertions. Its private key is sealed and never serialized.
    pub sp_certificate: String,
    #[serde(skip_serializing, default)]
    pub sp_key_sealed: String,
    pub metadata_refreshed_at: Option<UnixMillis>,
    /// Why the last refresh failed (the last good metadata stays in use).
    pub metadata_error: Option<String>,
    pub next_refresh_at: Option<UnixMillis>,
    pub created_at: UnixMillis,
    pub updated_at: UnixMillis,
}
