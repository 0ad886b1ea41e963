//! The relying party toward a tenant's upstream providers (OpenID Connect, or OAuth 2.0 with a
//! user endpoint such as GitHub), as plain functions over what was fetched: reading a discovery
//! document and JWK Set, the authorization request (code + PKCE S256 + state + nonce), the token
//! request with its client authentication (`client_secret_basic`, `client_secret_post`,
//! `private_key_jwt`), ID-token verification and the mapping of claims to the person. The
//! server and `latchkey-services` do the HTTP; nothing here does I/O.
//!
//! ID tokens are verified with the `openidconnect` crate's verifier (signature by a key of the
//! discovered JWK Set only, asymmetric algorithms only, `iss`, `aud`, `exp`, `nonce`), plus what
//! it leaves to the caller: `azp`, `iat` in the future, the Entra `{tenantid}` issuer and its
//! allowed tenants.

mod error;
mod identity;
mod request;
mod verify;

pub use error::FederationError;
pub use identity::{Upstream, identity};
pub use request::{
    AuthParams, Credential, TokenRequest, TokenResponse, assertion_audience, authorization_url,
    client_assertion, code_challenge, parse_token_response, token_request,
};
pub use verify::{Verification, verify_id_token};

use latchkey_core::Discovered;
use serde::Deserialize;

/// The largest discovery document or JWK Set read (Entra's are ~2 KiB and ~10 KiB).
pub const MAX_DOCUMENT_BYTES: usize = 256 * 1024;

/// The parts of an OpenID Provider's metadata (Discovery §3) a relying party uses.
#[derive(Deserialize)]
struct Metadata {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: Option<String>,
    userinfo_endpoint: Option<String>,
    jwks_uri: String,
    #[serde(default)]
    id_token_signing_alg_values_supported: Vec<String>,
    #[serde(default)]
    authorization_response_iss_parameter_supported: bool,
}

/// An endpoint the upstream names: https, or http on a loopback host (development and tests).
pub fn check_endpoint(field: &str, u: &str) -> Result<url::Url, FederationError> {
    let shown: String = u.chars().take(200).collect();
    let bad = |why: &str| FederationError::Discovery(format!("{field} {shown:?}: {why}"));
    let parsed = url::Url::parse(u).map_err(|_| bad("not an absolute URL"))?;
    if !parsed.username().is_empty() || parsed.password().is_some() || parsed.fragment().is_some() {
        return Err(bad("carries user information or a fragment"));
    }
    let loopback = match parsed.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => return Err(bad("has no host")),
    };
    match parsed.scheme() {
        "https" => Ok(parsed),
        "http" if loopback => Ok(parsed),
        _ => Err(bad("is not https")),
    }
}

/// Reads a discovery document fetched for `expected_issuer` (Discovery §4.3: the issuer it
/// names must be exactly the one asked for; a `{tenantid}` template must come back as the same
/// template). Returns it without keys: `with_jwks` adds them once `jwks_uri` is fetched.
pub fn read_discovery(doc: &[u8], expected_issuer: &str, now: i64) -> Result<Discovered, FederationError> {
    if doc.len() > MAX_DOCUMENT_BYTES {
        return Err(FederationError::Discovery(
            "the document is larger than 256 KiB".into(),
        ));
    }
    let m: Metadata = serde_json::from_slice(doc)
        .map_err(|e| FederationError::Discovery(format!("not a provider metadata document: {e}")))?;
    if m.issuer != expected_issuer {
        return Err(FederationError::IssuerMismatch {
            expected: expected_issuer.to_owned(),
            found: m.issuer.chars().take(200).collect(),
        });
    }
    let token_endpoint = m.token_endpoint.ok_or_else(|| {
        FederationError::Discovery("no token_endpoint (implicit-only providers are not supported)".into())
    })?;
    check_endpoint("authorization_endpoint", &m.authorization_endpoint)?;
    check_endpoint("token_endpoint", &token_endpoint)?;
    check_endpoint("jwks_uri", &m.jwks_uri)?;
    if let Some(u) = &m.userinfo_endpoint {
        check_endpoint("userinfo_endpoint", u)?;
    }
    Ok(Discovered {
        issuer: m.issuer,
        authorization_endpoint: m.authorization_endpoint,
        token_endpoint,
        userinfo_endpoint: m.userinfo_endpoint,
        jwks_uri: m.jwks_uri,
        signing_algs: m.id_token_signing_alg_values_supported,
        iss_parameter: m.authorization_response_iss_parameter_supported,
        jwks: String::new(),
        refreshed_at: now,
    })
}

/// Checks a fetched JWK Set and keeps it with the discovery result.
pub fn with_jwks(mut d: Discovered, jwks: &[u8]) -> Result<Discovered, FederationError> {
    if jwks.len() > MAX_DOCUMENT_BYTES {
        return Err(FederationError::Jwks("the JWK Set is larger than 256 KiB".into()));
    }
    let text = std::str::from_utf8(jwks).map_err(|_| FederationError::Jwks("not UTF-8".into()))?;
    let set: openidconnect::core::CoreJsonWebKeySet =
        serde_json::from_str(text).map_err(|e| FederationError::Jwks(format!("not a JWK Set: {e}")))?;
    if set.keys().is_empty() {
        return Err(FederationError::Jwks("the JWK Set holds no key".into()));
    }
    text.clone_into(&mut d.jwks);
    Ok(d)
}

/// RFC 9207: the `iss` of an authorization response must be the connection's issuer; a
/// provider that announces the parameter must send it. Defeats mix-up between connections.
/// For Entra's `{tenantid}` issuer, the concrete issuer of an allowed directory.
pub fn check_response_issuer(
    c: &latchkey_core::OidcConnection,
    d: &Discovered,
    iss: Option<&str>,
) -> Result<(), FederationError> {
    let allowed = |i: &str| {
        template_tenant(&d.issuer, i)
            .is_some_and(|tid| c.allowed_tenant_ids.iter().any(|a| a.eq_ignore_ascii_case(tid)))
    };
    match iss {
        Some(i) if i == d.issuer || allowed(i) => Ok(()),
        Some(i) => Err(FederationError::IssParameter(i.chars().take(200).collect())),
        None if d.iss_parameter => Err(FederationError::IssParameter(String::new())),
        None => Ok(()),
    }
}

/// The tenant id of `issuer` when it is `template` with `{tenantid}` replaced by one.
fn template_tenant<'a>(template: &str, issuer: &'a str) -> Option<&'a str> {
    let (head, tail) = template.split_once(latchkey_core::upstream::TENANT_PLACEHOLDER)?;
    let tid = issuer.strip_prefix(head)?.strip_suffix(tail)?;
    (!tid.is_empty() && tid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')).then_some(tid)
}

#[cfg(test)]
mod tests;
