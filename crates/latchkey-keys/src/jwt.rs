//! Compact JWS: signing with a ring key, and verification that takes the algorithm from the key
//! (found by `kid`), never from the token (RFC 8725 §3.1). `none`, unknown `kid`s, `crit`
//! headers and oversized tokens are refused before any signature work; `jku`, `x5u` and `jwk`
//! headers are never consulted.

use crate::{KeyError, SigningKey, VerifyingKey, unb64};
use serde_json::Value;

/// Tokens larger than this are refused before parsing (SECURITY-TESTS J8).
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Signs `claims` as a compact JWS, built in one buffer: this runs once per token issued.
pub fn encode(key: &SigningKey, kid: &str, typ: &str, claims: &Value) -> Result<String, KeyError> {
    use base64::Engine as _;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    // `alg` is ours and `kid` is base64url; only `typ` needs JSON escaping.
    let typ = serde_json::to_string(typ).map_err(|e| KeyError::Crypto(e.to_string()))?;
    let header = format!(r#"{{"alg":"{}","kid":"{kid}","typ":{typ}}}"#, key.alg().as_str());
    let mut out = String::with_capacity(1024);
    engine.encode_string(header.as_bytes(), &mut out);
    out.push('.');
    let mut json = Vec::with_capacity(512);
    serde_json::to_writer(&mut json, claims).map_err(|e| KeyError::Crypto(e.to_string()))?;
    engine.encode_string(&json, &mut out);
    let sig = key.sign(out.as_bytes())?;
    out.push('.');
    engine.encode_string(&sig, &mut out);
    Ok(out)
}

/// What a verified token must also satisfy (RFC 7519 §4.1, RFC 8725 §3.8–3.11).
#[derive(Debug, Clone)]
pub struct Expect<'a> {
    pub issuer: &'a str,
    /// Required audience; `None` skips the check (for tokens verified by their own issuer).
    pub audience: Option<&'a str>,
    pub typ: Option<&'a str>,
    /// Seconds since the epoch.
    pub now: i64,
    pub leeway_secs: i64,
}

fn refuse(m: impl Into<String>) -> KeyError {
    KeyError::Token(m.into())
}

/// Verifies the signature with the key named by `kid` and checks `iss`, `aud`, `exp`, `nbf`,
/// `iat` and `typ`; returns the claims.
pub fn decode(
    token: &str,
    key_for: impl Fn(&str) -> Option<VerifyingKey>,
    expect: &Expect<'_>,
) -> Result<Value, KeyError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(refuse("token too large"));
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(refuse("not a compact JWS"));
    };
    let header: Value = unb64(h)
        .and_then(|b| serde_json::from_slice(&b).ok())
        .filter(Value::is_object)
        .ok_or_else(|| refuse("header is not base64url JSON"))?;
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or_else(|| refuse("no alg"))?;
    if alg.eq_ignore_ascii_case("none") {
        return Err(refuse("alg none"));
    }
    if header.get("crit").is_some() {
        return Err(refuse("crit headers are not supported"));
    }
    let kid = header
        .get("kid")
        .and_then(Value::as_str)
        .ok_or_else(|| refuse("no kid"))?;
    let key = key_for(kid).ok_or_else(|| refuse("unknown kid"))?;
    if alg != key.alg.as_str() {
        return Err(refuse(format!("alg {alg} does not match the key's {}", key.alg)));
    }
    let sig = unb64(s).ok_or_else(|| refuse("signature is not base64url"))?;
    if !key.verify(format!("{h}.{p}").as_bytes(), &sig) {
        return Err(refuse("bad signature"));
    }
    if let Some(typ) = expect.typ {
        let got = header.get("typ").and_then(Value::as_str).unwrap_or_default();
        if !got.eq_ignore_ascii_case(typ) && !got.eq_ignore_ascii_case(&format!("application/{typ}")) {
            return Err(refuse(format!("typ {got:?}, expected {typ}")));
        }
    }
    let claims: Value = unb64(p)
        .and_then(|b| serde_json::from_slice(&b).ok())
        .filter(Value::is_object)
        .ok_or_else(|| refuse("payload is not base64url JSON"))?;
    check_claims(&claims, expect)?;
    Ok(claims)
}

fn check_claims(c: &Value, e: &Expect<'_>) -> Result<(), KeyError> {
    if c.get("iss").and_then(Value::as_str) != Some(e.issuer) {
        return Err(refuse("iss mismatch"));
    }
    if let Some(aud) = e.audience {
        let ok = match c.get("aud") {
            Some(Value::String(a)) => a == aud,
            Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(aud)),
            _ => false,
        };
        if !ok {
            return Err(refuse("aud mismatch"));
        }
    }
    let num = |k: &str| c.get(k).and_then(Value::as_i64);
    let exp = num("exp").ok_or_else(|| refuse("no exp"))?;
    // Saturating: a signed `exp` near i64::MAX overflowed here (fuzz/corpus/jwt_decode/exp-max).
    if e.now > exp.saturating_add(e.leeway_secs) {
        return Err(refuse("expired"));
    }
    if num("nbf").is_some_and(|nbf| e.now + e.leeway_secs < nbf) {
        return Err(refuse("not yet valid"));
    }
    if num("iat").is_some_and(|iat| e.now + e.leeway_secs < iat) {
        return Err(refuse("issued in the future"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Alg, b64};
    use serde_json::json;

    const ISS: &str = "https://sso.example.com/t/acme";

    fn expect(now: i64) -> Expect<'static> {
        Expect {
            issuer: ISS,
            audience: Some("client-1"),
            typ: Some("at+jwt"),
            now,
            leeway_secs: 30,
        }
    }

    fn setup(alg: Alg) -> (SigningKey, String, VerifyingKey) {
        let (k, _) = SigningKey::generate(alg).unwrap();
        let kid = k.kid();
        let vk = VerifyingKey::from_jwk(alg, &k.public_jwk()).unwrap();
        (k, kid, vk)
    }

    fn claims() -> Value {
        json!({"iss": ISS, "aud": "client-1", "sub": "u1", "iat": 1000, "nbf": 1000, "exp": 2000})
    }

    #[test]
    fn valid_tokens_verify_for_every_algorithm() {
        for alg in Alg::ALL {
            let (k, kid, vk) = setup(alg);
            let t = encode(&k, &kid, "at+jwt", &claims()).unwrap();
            let got = decode(&t, |id| (id == kid).then(|| vk.clone()), &expect(1500)).unwrap();
            assert_eq!(got["sub"], "u1");
        }
    }

    #[test]
    fn attacks_on_the_header_are_refused() {
        let (k, kid, vk) = setup(Alg::ES256);
        let lookup = |id: &str| (id == kid).then(|| vk.clone());
        let token = encode(&k, &kid, "at+jwt", &claims()).unwrap();
        let (_, rest) = token.split_once('.').unwrap();
        let forge = |h: Value| format!("{}.{rest}", b64(h.to_string().as_bytes()));
        for (h, why) in [
            (json!({"alg": "none", "kid": kid, "typ": "at+jwt"}), "alg none"),
            (
                json!({"alg": "HS256", "kid": kid, "typ": "at+jwt"}),
                "HMAC with the public key",
            ),
            (
                json!({"alg": "RS256", "kid": kid, "typ": "at+jwt"}),
                "alg not the key's",
            ),
            (
                json!({"alg": "ES256", "kid": "../../etc/passwd", "typ": "at+jwt"}),
                "path kid",
            ),
            (
                json!({"alg": "ES256", "kid": "x' OR '1'='1", "typ": "at+jwt"}),
                "SQL kid",
            ),
            (
                json!({"alg": "ES256", "typ": "at+jwt", "jwk": k.public_jwk()}),
                "embedded jwk, no kid",
            ),
            (
                json!({"alg": "ES256", "kid": kid, "typ": "at+jwt", "crit": ["exp"]}),
                "crit",
            ),
            (json!({"alg": "ES256", "kid": kid, "typ": "JWT"}), "typ confusion"),
        ] {
            assert!(decode(&forge(h), lookup, &expect(1500)).is_err(), "{why}");
        }
        let alg_none_unsigned = format!(
            "{}.{}.",
            b64(br#"{"alg":"none"}"#),
            rest.split('.').next().unwrap()
        );
        assert!(decode(&alg_none_unsigned, lookup, &expect(1500)).is_err());
    }

    #[test]
    fn a_modified_payload_fails() {
        let (k, kid, vk) = setup(Alg::EdDSA);
        let token = encode(&k, &kid, "at+jwt", &claims()).unwrap();
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        let mut c = claims();
        c["sub"] = json!("admin");
        parts[1] = b64(c.to_string().as_bytes());
        assert!(decode(&parts.join("."), |_| Some(vk.clone()), &expect(1500)).is_err());
    }

    #[test]
    fn time_issuer_and_audience_are_checked() {
        let (k, kid, vk) = setup(Alg::ES256);
        let lookup = |_: &str| Some(vk.clone());
        let t = encode(&k, &kid, "at+jwt", &claims()).unwrap();
        assert!(decode(&t, lookup, &expect(2029)).is_ok(), "within leeway");
        assert!(decode(&t, lookup, &expect(2031)).is_err(), "expired");
        assert!(decode(&t, lookup, &expect(969)).is_err(), "nbf in the future");
        assert!(
            decode(
                &t,
                lookup,
                &Expect {
                    issuer: "https://other/t/acme",
                    ..expect(1500)
                }
            )
            .is_err()
        );
        assert!(
            decode(
                &t,
                lookup,
                &Expect {
                    audience: Some("client-2"),
                    ..expect(1500)
                }
            )
            .is_err()
        );
        let mut no_exp = claims();
        no_exp.as_object_mut().unwrap().remove("exp");
        let t = encode(&k, &kid, "at+jwt", &no_exp).unwrap();
        assert!(decode(&t, lookup, &expect(1500)).is_err(), "exp is required");
        assert!(decode(&"a".repeat(MAX_TOKEN_BYTES + 1), lookup, &expect(1500)).is_err());
    }

    #[test]
    fn an_exp_at_the_end_of_time_neither_overflows_nor_expires() {
        let (k, kid, vk) = setup(Alg::EdDSA);
        let mut c = claims();
        c["exp"] = json!(i64::MAX);
        let t = encode(&k, &kid, "at+jwt", &c).unwrap();
        assert!(decode(&t, |_| Some(vk.clone()), &expect(1500)).is_ok());
    }
}
