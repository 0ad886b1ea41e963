//! IdP metadata import: entity and IDPSSODescriptor selection, endpoints, signing certificates
//! (X.509 parsing, key strength, validity at the fixtures' clock).
#![no_main]

use latchkey_fuzz::SAML_NOW;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = latchkey_saml::parse_idp_metadata(text, SAML_NOW);
    }
});
