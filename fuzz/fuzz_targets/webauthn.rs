//! The WebAuthn JSON the server accepts from the browser (`latchkey_mfa::passkey`), checked
//! against ceremony states and a stored passkey made by `examples/seeds.rs` (relying party
//! `sso.example`). The first byte picks the ceremony: registration, discoverable sign-in
//! (identify, then verify), or second-factor authentication.
#![no_main]

use latchkey_mfa::passkey::{RelyingParty, StoredPasskey};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

const REGISTRATION: &str = include_str!("../fixtures/webauthn/registration-state.json");
const DISCOVERABLE: &str = include_str!("../fixtures/webauthn/discoverable-state.json");
const AUTHENTICATION: &str = include_str!("../fixtures/webauthn/authentication-state.json");
const PASSKEY: &str = include_str!("../fixtures/webauthn/passkey.json");

fn rp() -> &'static RelyingParty {
    static RP: OnceLock<RelyingParty> = OnceLock::new();
    RP.get_or_init(|| {
        let origin = url::Url::parse(latchkey_fuzz::RP_ORIGIN).expect("fixed origin");
        RelyingParty::new(latchkey_fuzz::RP_ID, &origin, "Latchkey").expect("fixed relying party")
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Ok(response) = std::str::from_utf8(rest) else {
        return;
    };
    let stored = StoredPasskey {
        id: String::new(),
        credential: PASSKEY.trim().to_owned(),
    };
    match mode % 3 {
        0 => {
            let _ = rp().finish_registration(response, REGISTRATION);
        }
        1 => {
            if rp().identify(response).is_ok() {
                let _ = rp().finish_discoverable(response, DISCOVERABLE, &stored);
            }
        }
        _ => {
            let _ = rp().finish_authentication(response, AUTHENTICATION, std::slice::from_ref(&stored));
        }
    }
});
