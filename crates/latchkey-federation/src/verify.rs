//! ID-token validation (OIDC Core §3.1.3.7) with the `openidconnect` crate's verifier, and the
//! checks it leaves to its caller.

use crate::FederationError;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use latchkey_core::upstream::TENANT_PLACEHOLDER;
use latchkey_core::{Discovered, OidcConnection};
use openidconnect::core::{CoreIdToken, CoreIdTokenVerifier, CoreJsonWebKeySet, CoreJwsSigningAlgorithm};
use openidconnect::{ClaimsVerificationError, ClientId, IssuerUrl, Nonce, SignatureVerificationError};
use serde_json::{Map, Value};
use std::str::FromStr as _;

/// The largest ID token read.
const MAX_ID_TOKEN_BYTES: usize = 16 * 1024;

/// What a verification needs besides the token: the nonce sent, the time and the tolerated
/// clock difference.
#[derive(Debug, Clone, Copy)]
pub struct Verification<'a> {
    pub nonce: &'a str,
    pub now_ms: i64,
    pub skew_ms: i64,
}

/// Asymmetric algorithms only: an `HS256` token "signed" with the client secret, or `none`,
/// is refused whatever the upstream advertises.
fn asymmetric(name: &str) -> Option<CoreJwsSigningAlgorithm> {
    use CoreJwsSigningAlgorithm as A;
    Some(match name {
        "RS256" => A::RsaSsaPkcs1V15Sha256,
        "RS384" => A::RsaSsaPkcs1V15Sha384,
        "RS512" => A::RsaSsaPkcs1V15Sha512,
        "PS256" => A::RsaSsaPssSha256,
        "PS384" => A::RsaSsaPssSha384,
        "PS512" => A::RsaSsaPssSha512,
        "ES256" => A::EcdsaP256Sha256,
        "ES384" => A::EcdsaP384Sha384,
        "EdDSA" => A::EdDsa,
        _ => return None,
    })
}

/// The payload's claims, read without verification: only to choose the Entra issuer to
/// verify against, and after verification to read the claims the verifier checked.
fn payload(raw: &str) -> Result<Map<String, Value>, FederationError> {
    let part = raw
        .split('.')
        .nth(1)
        .ok_or_else(|| FederationError::Malformed("not a compact JWS".into()))?;
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| FederationError::Malformed("payload is not base64url".into()))?;
    serde_json::from_slice(&bytes)
        .map_err(|_| FederationError::Malformed("payload is not a JSON object".into()))
}

fn text<'a>(claims: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    claims.get(name).and_then(Value::as_str)
}

/// The issuer this token must carry: the configured one, or for Entra's `{tenantid}` template
/// the template filled with the token's `tid` when that tenant is allowed.
fn expected_issuer(c: &OidcConnection, unverified: &Map<String, Value>) -> Result<String, FederationError> {
    if !c.templated() {
        return Ok(c.issuer.clone());
    }
    let tid = text(unverified, "tid").unwrap_or_default();
    if !c.allowed_tenant_ids.iter().any(|t| t.eq_ignore_ascii_case(tid)) {
        return Err(FederationError::TenantNotAllowed(tid.chars().take(64).collect()));
    }
    Ok(c.issuer.replace(TENANT_PLACEHOLDER, tid))
}

fn mapped(e: ClaimsVerificationError) -> FederationError {
    match e {
        ClaimsVerificationError::SignatureVerification(SignatureVerificationError::NoMatchingKey) => {
            FederationError::UnknownKey
        }
        ClaimsVerificationError::SignatureVerification(s) => FederationError::Signature(s.to_string()),
        ClaimsVerificationError::InvalidIssuer(m) => FederationError::Issuer(m),
        ClaimsVerificationError::InvalidAudience(m) => FederationError::Audience(m),
        ClaimsVerificationError::Expired(m) => FederationError::Expired(m),
        ClaimsVerificationError::InvalidNonce(m) => FederationError::Nonce(m),
        other => FederationError::Malformed(other.to_string()),
    }
}

/// Verifies an ID token from the token endpoint and returns its claims. `UnknownKey` means the
/// JWK Set may be stale: refetch it once and verify again.
pub fn verify_id_token(
    c: &OidcConnection,
    d: &Discovered,
    raw: &str,
    v: Verification<'_>,
) -> Result<Map<String, Value>, FederationError> {
    if raw.len() > MAX_ID_TOKEN_BYTES {
        return Err(FederationError::Malformed("larger than 16 KiB".into()));
    }
    let unverified = payload(raw)?;
    let issuer = expected_issuer(c, &unverified)?;
    let token = CoreIdToken::from_str(raw).map_err(|e| FederationError::Malformed(e.to_string()))?;
    let jwks: CoreJsonWebKeySet =
        serde_json::from_str(&d.jwks).map_err(|e| FederationError::Jwks(e.to_string()))?;
    let mut algs: Vec<CoreJwsSigningAlgorithm> =
        d.signing_algs.iter().filter_map(|a| asymmetric(a)).collect();
    if algs.is_empty() {
        // Discovery §3: RS256 is the default when nothing is advertised.
        algs.push(CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256);
    }
    let issuer_url = IssuerUrl::new(issuer).map_err(|e| FederationError::Issuer(e.to_string()))?;
    let now = v.now_ms;
    let lenient = chrono::DateTime::from_timestamp_millis(now - v.skew_ms)
        .ok_or_else(|| FederationError::Expired("the clock is out of range".into()))?;
    let latest_iat = now + v.skew_ms;
    let verifier =
        CoreIdTokenVerifier::new_public_client(ClientId::new(c.client_id.clone()), issuer_url, jwks)
            .set_allowed_algs(algs)
            // `exp` with the tolerated skew: the verifier compares it with this time.
            .set_time_fn(move || lenient)
            .set_issue_time_verifier_fn(move |iat| {
                if iat.timestamp_millis() > latest_iat {
                    Err(format!("issued in the future ({iat})"))
                } else {
                    Ok(())
                }
            });
    token
        .claims(&verifier, &Nonce::new(v.nonce.to_owned()))
        .map_err(mapped)?;
    // The verifier checked the signature over these bytes; read every claim from them.
    let claims = unverified;
    // §3.1.3.7 steps 4 and 5, which the verifier leaves out.
    let several = claims
        .get("aud")
        .and_then(Value::as_array)
        .is_some_and(|a| a.len() > 1);
    match text(&claims, "azp") {
        Some(azp) if azp != c.client_id => {
            return Err(FederationError::Audience(format!(
                "azp {:?} is not this client",
                azp.chars().take(100).collect::<String>()
            )));
        }
        None if several => {
            return Err(FederationError::Audience("several audiences and no azp".into()));
        }
        _ => {}
    }
    Ok(claims)
}
