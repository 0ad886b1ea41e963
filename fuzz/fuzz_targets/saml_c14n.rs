//! Exclusive c14n of a whole document, with and without an InclusiveNamespaces PrefixList.
//! Canonical output must parse again and be its own canonical form.
#![no_main]

use latchkey_saml::fuzzing::canonicalize_document;
use latchkey_saml::xml::RESPONSE;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = canonicalize_document(text, RESPONSE, &["#default", "xs", "saml"]);
    let Ok(once) = canonicalize_document(text, RESPONSE, &[]) else {
        return;
    };
    let once = String::from_utf8(once).expect("c14n output is UTF-8");
    let twice = canonicalize_document(&once, RESPONSE, &[])
        .unwrap_or_else(|e| panic!("canonical form does not parse again ({e}): {once:?}"));
    assert_eq!(once.as_bytes(), &twice[..], "c14n is not idempotent");
});
