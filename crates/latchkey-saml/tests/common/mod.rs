//! What the response tests share: the fixtures' clock and addresses, and the connection they
//! were signed for.

#![allow(dead_code, clippy::unwrap_used)] // each test binary uses some of it

use latchkey_core::IdpDescriptor;
use latchkey_core::saml::BINDING_REDIRECT;
use latchkey_saml::Expected;

pub const NOW: i64 = 1_893_456_060_000; // 2030-01-01T00:01:00Z
pub const ACS: &str = "https://sso.example/t/acme/saml/corp/acs";
pub const SP: &str = "https://sso.example/t/acme/saml/corp/metadata";

pub fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// A PEM certificate fixture as SAML carries it (base64 DER on one line).
pub fn cert(name: &str) -> String {
    fixture(name)
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect()
}

pub fn idp(certs: &[&str]) -> IdpDescriptor {
    IdpDescriptor {
        entity_id: "https://idp.corp.example/metadata".into(),
        sso_url: "https://idp.corp.example/sso".into(),
        sso_binding: BINDING_REDIRECT.into(),
        certificates: certs.iter().map(|c| cert(c)).collect(),
        wants_signed_requests: false,
        slo_url: None,
        slo_response_url: None,
    }
}

/// What the fixtures answer: request `_req1` at the ACS above, at `NOW`, 60 s skew.
pub fn expected(idp: &IdpDescriptor) -> Expected<'_> {
    Expected {
        idp,
        sp_entity_id: SP,
        acs_url: ACS,
        in_response_to: Some("_req1"),
        allow_unsolicited: false,
        now: NOW,
        skew_ms: 60_000,
        sp_key_pkcs8: None,
        content_ciphers: latchkey_saml::ContentCipher::GCM,
    }
}
