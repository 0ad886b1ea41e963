//! Writes the seed corpora that are minted rather than copied (JWTs, client authentication,
//! forms, WebAuthn) and the WebAuthn ceremony fixtures the `webauthn` target checks against.
//! `bash fuzz/make-seeds.sh` runs it and copies the SAML seeds; the fuzzers grow the corpora
//! from there. The WebAuthn answers come from a minimal software authenticator (packed
//! `none` attestation, the fixed P-256 key), so they verify end to end.

#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use latchkey_fuzz::{CLIENT_ID, ISSUER, JWT_NOW, RP_ID, RP_ORIGIN, TOKEN_ENDPOINT, key, sign_raw};
use latchkey_mfa::passkey::{RelyingParty, StoredPasskey};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn write(target: &str, name: &str, mode: Option<u8>, body: &[u8]) {
    let dir = root().join("corpus").join(target);
    std::fs::create_dir_all(&dir).unwrap();
    let mut bytes = mode.map(|m| vec![m]).unwrap_or_default();
    bytes.extend_from_slice(body);
    std::fs::write(dir.join(name), bytes).unwrap();
}

fn jwt_seeds() {
    let claims = json!({"iss": ISSUER, "aud": "client-1", "sub": "u1", "iat": JWT_NOW - 10,
        "nbf": JWT_NOW - 10, "exp": JWT_NOW + 300, "scope": "openid"});
    for (kid, alg) in [("ed", "EdDSA"), ("es", "ES256"), ("rs", "RS256")] {
        let header = json!({"alg": alg, "kid": kid, "typ": "at+jwt"}).to_string();
        let token = sign_raw(kid, header.as_bytes(), claims.to_string().as_bytes());
        write("jwt_decode", &format!("valid-{kid}"), Some(0), token.as_bytes());
        let (head, _) = token.rsplit_once('.').unwrap();
        write(
            "jwt_decode",
            &format!("bad-sig-{kid}"),
            Some(0),
            format!("{head}.AAAA").as_bytes(),
        );
    }
    let signed = |name: &str, header: Value, claims: Value| {
        write(
            "jwt_decode",
            name,
            Some(1),
            format!("{header}\n{claims}").as_bytes(),
        );
    };
    signed(
        "signed-ok",
        json!({"alg": "EdDSA", "kid": "ed", "typ": "at+jwt"}),
        claims.clone(),
    );
    signed(
        "signed-es",
        json!({"alg": "ES256", "kid": "es", "typ": "application/at+jwt"}),
        claims.clone(),
    );
    signed("signed-none", json!({"alg": "none", "kid": "ed"}), claims.clone());
    signed(
        "signed-crit",
        json!({"alg": "EdDSA", "kid": "ed", "crit": ["exp"]}),
        claims.clone(),
    );
    signed(
        "signed-hs256",
        json!({"alg": "HS256", "kid": "ed"}),
        claims.clone(),
    );
    signed(
        "signed-aud-list",
        json!({"alg": "EdDSA", "kid": "ed", "typ": "at+jwt"}),
        json!({"iss": ISSUER, "aud": ["x", "client-1"], "exp": JWT_NOW + 1, "nbf": JWT_NOW + 20}),
    );
    signed(
        "signed-expired",
        json!({"alg": "EdDSA", "kid": "ed"}),
        json!({"iss": ISSUER, "exp": JWT_NOW - 31, "iat": 1.5}),
    );
    write("jwt_decode", "not-jws", Some(0), b"a.b");
}

fn client_auth_seeds() {
    let basic = B64.encode(format!("{CLIENT_ID}:s3cret"));
    let std_basic = base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:s%33cret"));
    write(
        "client_assertion",
        "basic",
        Some(0),
        format!("Basic {basic}\ngrant_type=client_credentials").as_bytes(),
    );
    write(
        "client_assertion",
        "basic-escaped",
        Some(0),
        format!("basic {std_basic}\nclient_id={CLIENT_ID}").as_bytes(),
    );
    write(
        "client_assertion",
        "post",
        Some(0),
        format!("\nclient_id={CLIENT_ID}&client_secret=s3cret").as_bytes(),
    );
    write(
        "client_assertion",
        "public",
        Some(0),
        format!("\nclient_id={CLIENT_ID}").as_bytes(),
    );
    write(
        "client_assertion",
        "two-methods",
        Some(0),
        format!("Basic {basic}\nclient_secret=x&client_assertion=y").as_bytes(),
    );
    let claims = json!({"iss": CLIENT_ID, "sub": CLIENT_ID, "aud": TOKEN_ENDPOINT, "jti": "j1",
        "exp": JWT_NOW + 60, "iat": JWT_NOW});
    let token = sign_raw(
        "es",
        br#"{"alg":"ES256","kid":"es"}"#,
        claims.to_string().as_bytes(),
    );
    write("client_assertion", "assertion", Some(0), format!(
        "\nclient_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion={token}&client_id={CLIENT_ID}"
    ).as_bytes());
    write(
        "client_assertion",
        "claims-ed",
        Some(1),
        claims.to_string().as_bytes(),
    );
    write(
        "client_assertion",
        "claims-es",
        Some(3),
        json!({"iss": CLIENT_ID, "sub": CLIENT_ID, "aud": [ISSUER], "jti": "j2", "exp": JWT_NOW + 301})
            .to_string()
            .as_bytes(),
    );
}

fn form_seeds() {
    for (i, body) in [
        &b"grant_type=authorization_code&code=abc&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&code_verifier=x"[..],
        b"a=1&a=2",
        b"name+with+plus=%E2%9C%93&empty&=v&&",
        b"bad=%ZZ&utf8=%C3%28",
        b"response_type=code&scope=openid%20email&state=s%26t",
    ]
    .iter()
    .enumerate()
    {
        write("form", &format!("body-{i}"), Some(i as u8), body);
    }
}

/// An ECDSA P-256 signature as WebAuthn carries it (ASN.1 DER), from the fixed r||s form.
fn der_signature(fixed: &[u8]) -> Vec<u8> {
    let int = |b: &[u8]| {
        let b = &b[b.iter().position(|x| *x != 0).unwrap_or(b.len() - 1)..];
        let mut v = vec![0x02];
        if b[0] & 0x80 != 0 {
            v.push(b.len() as u8 + 1);
            v.push(0);
        } else {
            v.push(b.len() as u8);
        }
        v.extend_from_slice(b);
        v
    };
    let (r, s) = fixed.split_at(32);
    let body = [int(r), int(s)].concat();
    [vec![0x30, body.len() as u8], body].concat()
}

fn client_data(kind: &str, challenge: &str) -> Vec<u8> {
    json!({"type": kind, "challenge": challenge, "origin": RP_ORIGIN, "crossOrigin": false})
        .to_string()
        .into_bytes()
}

const CRED_ID: [u8; 16] = *b"latchkey-fuzz-01";
const USER: &str = "6f1c2a4e-0d6b-4a53-9a51-3c1f1f2b7e10";

/// `authData` with an attested credential: the fixed P-256 key as a COSE EC2 key.
fn attested_auth_data() -> Vec<u8> {
    let jwk = key("es").unwrap().signing.public_jwk();
    let coord = |k: &str| B64.decode(jwk[k].as_str().unwrap()).unwrap();
    let mut cose = vec![0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21, 0x58, 0x20];
    cose.extend(coord("x"));
    cose.extend([0x22, 0x58, 0x20]);
    cose.extend(coord("y"));
    let mut data = Sha256::digest(RP_ID).to_vec();
    data.push(0x45); // user present, user verified, attested credential data
    data.extend([0, 0, 0, 0]);
    data.extend([0u8; 16]); // AAGUID
    data.extend([0, CRED_ID.len() as u8]);
    data.extend(CRED_ID);
    data.extend(cose);
    data
}

fn attestation_object(auth_data: &[u8]) -> Vec<u8> {
    let mut o = vec![0xa3, 0x63];
    o.extend(b"fmt");
    o.push(0x64);
    o.extend(b"none");
    o.push(0x67);
    o.extend(b"attStmt");
    o.push(0xa0);
    o.push(0x68);
    o.extend(b"authData");
    o.extend([0x58, auth_data.len() as u8]);
    o.extend(auth_data);
    o
}

fn assertion(challenge: &str, counter: u8) -> Value {
    let cdj = client_data("webauthn.get", challenge);
    let mut auth = Sha256::digest(RP_ID).to_vec();
    auth.push(0x05); // user present, user verified
    auth.extend([0, 0, 0, counter]);
    let signed = [auth.clone(), Sha256::digest(&cdj).to_vec()].concat();
    let sig = der_signature(&key("es").unwrap().signing.sign(&signed).unwrap());
    let hex = USER.replace('-', "");
    let user: Vec<u8> = (0..16)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    json!({"id": B64.encode(CRED_ID), "rawId": B64.encode(CRED_ID), "type": "public-key",
        "response": {"authenticatorData": B64.encode(&auth), "clientDataJSON": B64.encode(&cdj),
            "signature": B64.encode(sig), "userHandle": B64.encode(user)},
        "extensions": {}})
}

fn challenge(options: &Value) -> String {
    options["publicKey"]["challenge"].as_str().unwrap().to_owned()
}

fn webauthn_seeds() {
    let fixtures = root().join("fixtures").join("webauthn");
    std::fs::create_dir_all(&fixtures).unwrap();
    let origin = url::Url::parse(RP_ORIGIN).unwrap();
    let rp = RelyingParty::new(RP_ID, &origin, "Latchkey").unwrap();

    let (options, state) = rp.start_registration(USER, "alice", "Alice", &[], &[]).unwrap();
    let auth_data = attested_auth_data();
    let registration = json!({"id": B64.encode(CRED_ID), "rawId": B64.encode(CRED_ID), "type": "public-key",
        "response": {"attestationObject": B64.encode(attestation_object(&auth_data)),
            "clientDataJSON": B64.encode(client_data("webauthn.create", &challenge(&options))),
            "transports": ["internal"]},
        "extensions": {}});
    let stored: StoredPasskey = rp.finish_registration(&registration.to_string(), &state).unwrap();
    std::fs::write(fixtures.join("registration-state.json"), &state).unwrap();
    std::fs::write(fixtures.join("passkey.json"), &stored.credential).unwrap();
    write(
        "webauthn",
        "registration",
        Some(0),
        registration.to_string().as_bytes(),
    );

    let (options, state) = rp.start_discoverable().unwrap();
    let answer = assertion(&challenge(&options), 1);
    assert_eq!(rp.identify(&answer.to_string()).unwrap().0, USER);
    rp.finish_discoverable(&answer.to_string(), &state, &stored)
        .unwrap();
    std::fs::write(fixtures.join("discoverable-state.json"), &state).unwrap();
    write("webauthn", "discoverable", Some(1), answer.to_string().as_bytes());

    let (options, state) = rp.start_authentication(std::slice::from_ref(&stored)).unwrap();
    let answer = assertion(&challenge(&options), 2);
    rp.finish_authentication(&answer.to_string(), &state, std::slice::from_ref(&stored))
        .unwrap();
    std::fs::write(fixtures.join("authentication-state.json"), &state).unwrap();
    write(
        "webauthn",
        "authentication",
        Some(2),
        answer.to_string().as_bytes(),
    );
}

fn main() {
    jwt_seeds();
    client_auth_seeds();
    form_seeds();
    webauthn_seeds();
    println!("seeds written under {}", root().join("corpus").display());
}
