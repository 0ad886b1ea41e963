//! What the fuzz targets share: the fixed clock, the SAML connection the test fixtures were
//! signed for, and fixed signing keys (so that mutated inputs reach the checks behind a
//! signature). Everything here is a test fixture, never a secret.

#![allow(clippy::missing_panics_doc)]

use latchkey_core::IdpDescriptor;
use latchkey_core::saml::BINDING_REDIRECT;
use latchkey_keys::{Alg, SigningKey, VerifyingKey};
use latchkey_saml::Expected;
use std::sync::OnceLock;

/// The SAML fixtures' clock: 2030-01-01T00:01:00Z.
pub const SAML_NOW: i64 = 1_893_456_060_000;
pub const ACS: &str = "https://sso.example/t/acme/saml/corp/acs";
pub const SP: &str = "https://sso.example/t/acme/saml/corp/metadata";

/// The JWT targets' clock (seconds); the seeds are valid around it.
pub const JWT_NOW: i64 = 1_900_000_000;
pub const ISSUER: &str = "https://sso.example/t/acme";
pub const CLIENT_ID: &str = "client-1";
pub const TOKEN_ENDPOINT: &str = "https://sso.example/t/acme/token";

/// A PEM certificate as SAML carries it (base64 DER on one line).
fn saml_cert(pem: &str) -> String {
    pem.lines().filter(|l| !l.starts_with("-----")).collect()
}

/// The IdP of `crates/latchkey-saml/tests/fixtures`, pinning both the main and the review
/// fixtures' certificates (as during a key rollover).
pub fn saml_idp() -> &'static IdpDescriptor {
    static IDP: OnceLock<IdpDescriptor> = OnceLock::new();
    IDP.get_or_init(|| IdpDescriptor {
        entity_id: "https://idp.corp.example/metadata".into(),
        sso_url: "https://idp.corp.example/sso".into(),
        sso_binding: BINDING_REDIRECT.into(),
        certificates: vec![
            saml_cert(include_str!("../../crates/latchkey-saml/tests/fixtures/idp.crt")),
            saml_cert(include_str!(
                "../../crates/latchkey-saml/tests/fixtures/review.crt"
            )),
        ],
        wants_signed_requests: false,
        slo_url: None,
        slo_response_url: None,
    })
}

/// What the fixtures answer: request `_req1` at the ACS above, at `SAML_NOW`, 60 s skew.
pub fn saml_expected() -> Expected<'static> {
    Expected {
        idp: saml_idp(),
        sp_entity_id: SP,
        acs_url: ACS,
        in_response_to: Some("_req1"),
        allow_unsolicited: false,
        now: SAML_NOW,
        skew_ms: 60_000,
        sp_key_pkcs8: None,
        content_ciphers: latchkey_saml::ContentCipher::GCM,
    }
}

/// A fixed key per algorithm, named by its `kid`: `ed`, `es`, `rs`.
pub struct FixedKey {
    pub kid: &'static str,
    pub signing: SigningKey,
    pub verifying: VerifyingKey,
}

pub fn keys() -> &'static [FixedKey] {
    static KEYS: OnceLock<Vec<FixedKey>> = OnceLock::new();
    KEYS.get_or_init(|| {
        [
            ("ed", Alg::EdDSA, &include_bytes!("../fixtures/ed25519.pk8")[..]),
            ("es", Alg::ES256, &include_bytes!("../fixtures/p256.pk8")[..]),
            ("rs", Alg::RS256, &include_bytes!("../fixtures/rsa2048.pk8")[..]),
        ]
        .into_iter()
        .map(|(kid, alg, pkcs8)| {
            let signing = SigningKey::from_pkcs8(alg, pkcs8).expect("fixture key");
            let verifying = VerifyingKey::from_jwk(alg, &signing.public_jwk()).expect("fixture jwk");
            FixedKey {
                kid,
                signing,
                verifying,
            }
        })
        .collect()
    })
}

pub fn key(kid: &str) -> Option<&'static FixedKey> {
    keys().iter().find(|k| k.kid == kid)
}

/// A compact JWS over exactly these header and payload bytes, signed with the key `kid`.
pub fn sign_raw(kid: &str, header: &[u8], payload: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut out = b64.encode(header);
    out.push('.');
    out.push_str(&b64.encode(payload));
    let sig = key(kid)
        .expect("fixture kid")
        .signing
        .sign(out.as_bytes())
        .expect("signing");
    out.push('.');
    out.push_str(&b64.encode(sig));
    out
}

/// The fixed keys as a registered JWK Set (what a `private_key_jwt` client registers).
pub fn jwks() -> serde_json::Value {
    let keys: Vec<serde_json::Value> = keys()
        .iter()
        .map(|k| {
            let mut jwk = k.signing.public_jwk();
            jwk["kid"] = k.kid.into();
            jwk
        })
        .collect();
    serde_json::json!({ "keys": keys })
}

/// The WebAuthn relying party of the `webauthn` target and its seeds.
pub const RP_ID: &str = "sso.example";
pub const RP_ORIGIN: &str = "https://sso.example";
