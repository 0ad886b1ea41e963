//! A POSTed SAML response: guarded parse, envelope checks, XMLDSig (exclusive c14n, digest,
//! signature against the pinned fixture certificates), assertion reading, at the fixtures'
//! clock. Inputs not starting with `<` go through the HTTP-POST base64 decoding first.
#![no_main]

use latchkey_fuzz::saml_expected;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let exp = saml_expected();
    if text.starts_with('<') {
        if let Ok(a) = latchkey_saml::validate(text, &exp) {
            // Whatever verified must be readable the way the bridge reads it.
            let _ = (a.multi_factor(), a.values("mail"));
        }
    } else if let Ok(xml) = latchkey_saml::decode_post(text) {
        let _ = latchkey_saml::validate(&xml, &exp);
    }
});
