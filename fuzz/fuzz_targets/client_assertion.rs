//! Client authentication at the token endpoint (`latchkey_oidc::client_auth`): reading the
//! credentials from the `Authorization` header and the form, then authenticating them against
//! a registered client, `private_key_jwt` with the fixed JWK Set. The first byte picks the
//! mode: even, the rest is `Authorization header \n form body`; odd, the rest is the claims of
//! a client assertion signed here with the fixed `ed` key (or `es` when the byte is 3 mod 4).
#![no_main]

use latchkey_core::{AccessTokenFormat, AuthMethod, Client, ClientId, ClientSettings, ClientType, GrantType};
use latchkey_fuzz::{CLIENT_ID, ISSUER, JWT_NOW, TOKEN_ENDPOINT, jwks, sign_raw};
use latchkey_oidc::authorize::Params;
use latchkey_oidc::client_auth::{JWT_BEARER, Presented, authenticate, parse_client_auth};
use libfuzzer_sys::fuzz_target;

fn client(auth_method: AuthMethod) -> Client {
    Client {
        client_id: ClientId(CLIENT_ID.into()),
        tenant_id: "t".into(),
        name: "Fuzz".into(),
        secret_hash: Some(latchkey_core::sha256_hex(b"s3cret")),
        previous_secret: None,
        client_type: ClientType::Confidential,
        auth_method,
        redirect_uris: vec![],
        post_logout_redirect_uris: vec![],
        grant_types: vec![GrantType::ClientCredentials],
        scopes: vec![],
        access_token_format: AccessTokenFormat::Jwt,
        require_pkce: true,
        introspect_others: false,
        first_party: false,
        jwks_uri: None,
        jwks: Some(jwks()),
        settings: ClientSettings::default(),
        created_at: 0,
        updated_at: 0,
    }
}

fn request(mode: u8, rest: &[u8]) -> (Option<String>, Params) {
    if mode % 2 == 1 {
        let kid = if mode % 4 == 3 { "es" } else { "ed" };
        let header = format!(
            r#"{{"alg":"{}","kid":"{kid}"}}"#,
            if kid == "es" { "ES256" } else { "EdDSA" }
        );
        let token = sign_raw(kid, header.as_bytes(), rest);
        let params = [
            ("client_assertion_type", JWT_BEARER.to_owned()),
            ("client_assertion", token),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        return (None, params);
    }
    let (header, body) = match rest.iter().position(|b| *b == b'\n') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (&b""[..], rest),
    };
    let header = (!header.is_empty()).then(|| String::from_utf8_lossy(header).into_owned());
    (header, url::form_urlencoded::parse(body).into_owned().collect())
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (authorization, params) = request(mode, rest);
    let Ok(presented) = parse_client_auth(authorization.as_deref(), &params) else {
        return;
    };
    let method = match presented {
        Presented::Basic { .. } => AuthMethod::ClientSecretBasic,
        Presented::Post { .. } => AuthMethod::ClientSecretPost,
        Presented::Assertion { .. } => AuthMethod::PrivateKeyJwt,
        Presented::None { .. } => AuthMethod::None,
    };
    let registered = client(method);
    let known = (presented.client_id() == CLIENT_ID).then_some(&registered);
    if let Ok(Some(jti)) = authenticate(&presented, known, &[ISSUER, TOKEN_ENDPOINT], JWT_NOW) {
        assert!(!jti.jti.is_empty() && jti.exp <= JWT_NOW + 300);
    }
});
