//! Single Logout: the HTTP-Redirect query (duplicate and missing parameters, percent and base64
//! decoding, the signature over the raw octets, DEFLATE with its output cap) and the
//! `LogoutRequest`/`LogoutResponse` checks on the XML itself (the query signature is never
//! forged here, so the XML checks are fuzzed directly).
#![no_main]

use latchkey_fuzz::{SAML_NOW, saml_idp};
use latchkey_saml::logout::{Expect, parse_logout_request, parse_logout_response, receive};
use libfuzzer_sys::fuzz_target;

const SLO: &str = "https://sso.example/t/acme/saml/corp/slo";

fuzz_target!(|data: &[u8]| {
    let Some((first, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let idp = saml_idp();
    if first % 2 == 0 {
        let _ = receive(text, &idp.certificates);
    } else {
        let exp = Expect {
            idp_entity_id: &idp.entity_id,
            destination: SLO,
            now: SAML_NOW,
            skew_ms: 90_000,
        };
        let _ = parse_logout_request(text, &exp);
        let _ = parse_logout_response(text, &exp, "_ours");
    }
});
