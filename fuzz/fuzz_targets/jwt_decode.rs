//! Compact JWS verification and claim checks (`latchkey_keys::jwt::decode`) with fixed keys
//! `ed`, `es`, `rs` and a fixed clock. The first byte picks the mode: even, the rest is a
//! token as received; odd, the rest is `header JSON \n payload JSON`, signed here with the key
//! the header's `kid` names (`ed` when none), so mutations reach the checks behind the signature.
#![no_main]

use latchkey_fuzz::{ISSUER, JWT_NOW, key, sign_raw};
use latchkey_keys::jwt::{Expect, decode};
use libfuzzer_sys::fuzz_target;

fn expect(typ: Option<&'static str>, audience: Option<&'static str>) -> Expect<'static> {
    Expect {
        issuer: ISSUER,
        audience,
        typ,
        now: JWT_NOW,
        leeway_secs: 30,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let lookup = |kid: &str| key(kid).map(|k| k.verifying.clone());
    let token = if mode % 2 == 0 {
        String::from_utf8_lossy(rest).into_owned()
    } else {
        let (header, payload) = match rest.iter().position(|b| *b == b'\n') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &b""[..]),
        };
        let kid = serde_json::from_slice::<serde_json::Value>(header)
            .ok()
            .and_then(|h| h.get("kid").and_then(|k| k.as_str()).map(str::to_owned))
            .filter(|k| key(k).is_some() && k != "rs") // RSA signing is too slow to fuzz with
            .unwrap_or_else(|| "ed".to_owned());
        sign_raw(&kid, header, payload)
    };
    for exp in [expect(Some("at+jwt"), Some("client-1")), expect(None, None)] {
        if let Ok(claims) = decode(&token, lookup, &exp) {
            assert!(claims.is_object());
            assert_eq!(claims["iss"], ISSUER);
        }
    }
});
