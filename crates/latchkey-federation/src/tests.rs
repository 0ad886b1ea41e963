//! Each check of ID-token verification tried with a token that fails exactly it.

use super::*;
use latchkey_core::{OidcConnection, TenantId, UpstreamAuth, UpstreamKind, UpstreamOptions};
use latchkey_keys::{Alg, SigningKey};
use serde_json::{Value, json};

const ISS: &str = "https://idp.example.com";
const NOW: i64 = 1_800_000_000_000;

fn connection(issuer: &str) -> OidcConnection {
    OidcConnection {
        id: "c1".into(),
        tenant_id: TenantId("t".into()),
        name: "corp".into(),
        display_name: "Corp".into(),
        kind: UpstreamKind::Oidc,
        issuer: issuer.into(),
        discovery_url: None,
        allowed_tenant_ids: vec!["11111111-aaaa".into()],
        client_id: "latchkey".into(),
        client_auth: UpstreamAuth::ClientSecretBasic,
        secret_sealed: "x".into(),
        public_jwk: None,
        scopes: vec!["openid".into()],
        endpoints: None,
        options: UpstreamOptions::default(),
        discovered: None,
        discovery_error: None,
        next_refresh_at: None,
        created_at: 0,
        updated_at: 0,
    }
}

fn jwk(k: &SigningKey) -> Value {
    let mut j = k.public_jwk();
    j["kid"] = json!(k.kid());
    j["use"] = json!("sig");
    j
}

fn discovered(issuer: &str, keys: &[&SigningKey]) -> Discovered {
    let doc = json!({
        "issuer": issuer,
        "authorization_endpoint": "https://idp.example.com/authorize",
        "token_endpoint": "https://idp.example.com/token",
        "jwks_uri": "https://idp.example.com/jwks",
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
    });
    let d = read_discovery(doc.to_string().as_bytes(), issuer, NOW).unwrap();
    let set = json!({"keys": keys.iter().map(|k| jwk(k)).collect::<Vec<_>>()});
    with_jwks(d, set.to_string().as_bytes()).unwrap()
}

fn claims() -> Value {
    json!({
        "iss": ISS, "aud": "latchkey", "sub": "u-1", "nonce": "n-1",
        "iat": NOW / 1000, "exp": NOW / 1000 + 300,
        "email": "ada@corp.example", "email_verified": true, "amr": ["pwd", "mfa"],
        "groups": ["staff", "admins"],
    })
}

fn sign(k: &SigningKey, c: &Value) -> String {
    latchkey_keys::jwt::encode(k, &k.kid(), "JWT", c).unwrap()
}

fn check(
    c: &OidcConnection,
    d: &Discovered,
    raw: &str,
) -> Result<serde_json::Map<String, Value>, FederationError> {
    verify_id_token(
        c,
        d,
        raw,
        Verification {
            nonce: "n-1",
            now_ms: NOW,
            skew_ms: 60_000,
        },
    )
}

fn with(change: impl FnOnce(&mut Value)) -> Value {
    let mut c = claims();
    change(&mut c);
    c
}

#[test]
fn a_genuine_token_is_accepted_and_mapped() {
    let (rsa, _) = SigningKey::generate(Alg::RS256).unwrap();
    let (ec, _) = SigningKey::generate(Alg::ES256).unwrap();
    let d = discovered(ISS, &[&rsa, &ec]);
    let mut c = connection(ISS);
    c.options.mapping.groups = Some("groups".into());
    for k in [&rsa, &ec] {
        let got = check(&c, &d, &sign(k, &claims())).unwrap();
        let who = identity(&c, Some(&got), None).unwrap();
        assert_eq!(who.subject, "u-1");
        assert_eq!(who.email.as_deref(), Some("ada@corp.example"));
        assert!(who.email_verified && who.multi_factor());
        assert_eq!(who.groups, ["staff", "admins"]);
    }
}

#[test]
fn each_forged_token_is_refused_with_its_reason() {
    let (key, _) = SigningKey::generate(Alg::RS256).unwrap();
    let (other, _) = SigningKey::generate(Alg::RS256).unwrap();
    let d = discovered(ISS, &[&key]);
    let c = connection(ISS);
    let none = {
        use base64::Engine as _;
        let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.",
            e.encode(br#"{"alg":"none","typ":"JWT"}"#),
            e.encode(claims().to_string())
        )
    };
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "wrong issuer",
            sign(&key, &with(|c| c["iss"] = json!("https://evil.example"))),
            "wrong_issuer",
        ),
        (
            "wrong audience",
            sign(&key, &with(|c| c["aud"] = json!("someone-else"))),
            "wrong_audience",
        ),
        ("other key", sign(&other, &claims()), "unknown_key"),
        ("alg none", none, "bad_signature"),
        (
            "expired",
            sign(&key, &with(|c| c["exp"] = json!(NOW / 1000 - 120))),
            "expired",
        ),
        (
            "issued in the future",
            sign(&key, &with(|c| c["iat"] = json!(NOW / 1000 + 600))),
            "expired",
        ),
        (
            "replayed nonce",
            sign(&key, &with(|c| c["nonce"] = json!("n-0"))),
            "nonce",
        ),
        (
            "no nonce",
            sign(
                &key,
                &with(|c| {
                    c.as_object_mut().unwrap().remove("nonce");
                }),
            ),
            "nonce",
        ),
        (
            "foreign azp",
            sign(&key, &with(|c| c["azp"] = json!("other-app"))),
            "wrong_audience",
        ),
        (
            "several audiences without azp",
            sign(&key, &with(|c| c["aud"] = json!(["latchkey", "other-app"]))),
            "wrong_audience",
        ),
    ];
    for (case, token, reason) in cases {
        let got = check(&c, &d, &token);
        assert_eq!(
            got.as_ref().err().map(FederationError::reason),
            Some(reason),
            "{case}: {got:?}"
        );
    }
}

#[test]
fn a_token_signed_with_the_client_secret_is_refused() {
    // A real HS256 MAC keyed with a value the attacker may know (a public client's "secret"):
    // symmetric algorithms are never accepted, whatever the key.
    use base64::Engine as _;
    let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let head = format!(
        "{}.{}",
        e.encode(br#"{"alg":"HS256","typ":"JWT"}"#),
        e.encode(claims().to_string())
    );
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, b"the-client-secret");
    let token = format!(
        "{head}.{}",
        e.encode(aws_lc_rs::hmac::sign(&key, head.as_bytes()))
    );
    let (k, _) = SigningKey::generate(Alg::RS256).unwrap();
    let mut d = discovered(ISS, &[&k]);
    d.signing_algs.push("HS256".into());
    let got = check(&connection(ISS), &d, &token);
    assert_eq!(got.err().map(|e| e.reason()), Some("bad_signature"));
}

#[test]
fn an_entra_template_accepts_only_allowed_tenants() {
    let template = "https://login.example.com/{tenantid}/v2.0";
    let (key, _) = SigningKey::generate(Alg::RS256).unwrap();
    let d = discovered(template, &[&key]);
    let c = connection(template);
    // RFC 9207 `iss` of an allowed directory passes; another directory's is refused before
    // its code is redeemed.
    assert!(check_response_issuer(&c, &d, Some("https://login.example.com/11111111-aaaa/v2.0")).is_ok());
    assert_eq!(
        check_response_issuer(&c, &d, Some("https://login.example.com/22222222-bbbb/v2.0"))
            .err()
            .map(|e| e.reason()),
        Some("iss_parameter")
    );
    let allowed = with(|c| {
        c["iss"] = json!("https://login.example.com/11111111-aaaa/v2.0");
        c["tid"] = json!("11111111-aaaa");
    });
    let got = check(&c, &d, &sign(&key, &allowed)).unwrap();
    assert_eq!(
        identity(&c, Some(&got), None).unwrap().subject,
        "11111111-aaaa:u-1"
    );
    let foreign = with(|c| {
        c["iss"] = json!("https://login.example.com/22222222-bbbb/v2.0");
        c["tid"] = json!("22222222-bbbb");
    });
    assert_eq!(
        check(&c, &d, &sign(&key, &foreign)).err().map(|e| e.reason()),
        Some("tenant_not_allowed")
    );
    // An allowed tid with another tenant's issuer: the issuer is built from the tid.
    let mixed = with(|c| {
        c["iss"] = json!("https://login.example.com/22222222-bbbb/v2.0");
        c["tid"] = json!("11111111-aaaa");
    });
    assert_eq!(
        check(&c, &d, &sign(&key, &mixed)).err().map(|e| e.reason()),
        Some("wrong_issuer")
    );
}

#[test]
fn discovery_must_name_the_issuer_asked_for() {
    let doc = json!({
        "issuer": "https://evil.example", "authorization_endpoint": "https://evil.example/a",
        "token_endpoint": "https://evil.example/t", "jwks_uri": "https://evil.example/j",
    });
    assert_eq!(
        read_discovery(doc.to_string().as_bytes(), ISS, NOW)
            .err()
            .map(|e| e.reason()),
        Some("issuer_mismatch")
    );
    let plain_http = json!({
        "issuer": ISS, "authorization_endpoint": "http://idp.example.com/a",
        "token_endpoint": "https://idp.example.com/t", "jwks_uri": "https://idp.example.com/j",
    });
    assert_eq!(
        read_discovery(plain_http.to_string().as_bytes(), ISS, NOW)
            .err()
            .map(|e| e.reason()),
        Some("discovery")
    );
}

#[test]
fn the_response_issuer_parameter_defeats_mix_up() {
    let (key, _) = SigningKey::generate(Alg::RS256).unwrap();
    let mut d = discovered(ISS, &[&key]);
    assert!(check_response_issuer(&connection(ISS), &d, Some(ISS)).is_ok());
    assert!(check_response_issuer(&connection(ISS), &d, None).is_ok());
    assert_eq!(
        check_response_issuer(&connection(ISS), &d, Some("https://other.example"))
            .err()
            .map(|e| e.reason()),
        Some("iss_parameter")
    );
    d.iss_parameter = true;
    assert_eq!(
        check_response_issuer(&connection(ISS), &d, None)
            .err()
            .map(|e| e.reason()),
        Some("iss_parameter")
    );
}

#[test]
fn userinfo_must_describe_the_same_subject() {
    let c = connection(ISS);
    let id: serde_json::Map<String, Value> = serde_json::from_value(claims()).unwrap();
    let info: serde_json::Map<String, Value> = serde_json::from_value(json!({"sub": "u-2"})).unwrap();
    assert_eq!(
        identity(&c, Some(&id), Some(&info)),
        Err(FederationError::SubjectMismatch)
    );
}

#[test]
fn oauth2_providers_map_the_user_endpoint() {
    let mut c = connection("https://github.com");
    c.kind = UpstreamKind::Oauth2;
    c.options.mapping.subject = "id".into();
    let info: serde_json::Map<String, Value> = serde_json::from_value(
        json!({"id": 583_231, "login": "octocat", "name": "The Octocat", "email": "octo@github.example"}),
    )
    .unwrap();
    let who = identity(&c, None, Some(&info)).unwrap();
    assert_eq!(who.subject, "583231");
    assert_eq!(who.name.as_deref(), Some("The Octocat"));
    assert!(!who.email_verified, "no email_verified claim: not verified");
    let empty = serde_json::Map::new();
    assert_eq!(
        identity(&c, None, Some(&empty)).err().map(|e| e.reason()),
        Some("no_subject")
    );
}

#[test]
fn the_token_request_authenticates_as_configured() {
    let mut c = connection(ISS);
    let p = AuthParams {
        redirect_uri: "https://lk.example/cb",
        state: "s",
        nonce: "n",
        code_verifier: "v",
        ..AuthParams::default()
    };
    let basic = token_request(
        &c,
        "https://idp.example.com/token",
        "code",
        &p,
        &request::Credential::Secret("a:b"),
        "j",
        1,
    )
    .unwrap();
    assert_eq!(basic.authorization.as_deref(), Some("Basic bGF0Y2hrZXk6YSUzQWI="));
    assert!(!basic.form.iter().any(|(k, _)| *k == "client_secret"));
    c.client_auth = UpstreamAuth::PrivateKeyJwt;
    let (key, _) = SigningKey::generate(Alg::RS256).unwrap();
    let assertion = signed_assertion(&c, &p, &key);
    let verifying = latchkey_keys::VerifyingKey::from_jwk(Alg::RS256, &key.public_jwk()).unwrap();
    let (head, sig) = assertion.rsplit_once('.').unwrap();
    use base64::Engine as _;
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(sig)
        .unwrap();
    assert!(verifying.verify(head.as_bytes(), &sig));
    // A secret where a key is configured is refused, not sent.
    assert!(
        token_request(
            &c,
            "https://idp.example.com/token",
            "code",
            &p,
            &request::Credential::Secret("s"),
            "j",
            1
        )
        .is_err()
    );
    let url = authorization_url(
        &c,
        &c.endpoints().unwrap_or(latchkey_core::UpstreamEndpoints {
            authorization_endpoint: "https://idp.example.com/authorize?x=1".into(),
            ..Default::default()
        }),
        &p,
    )
    .unwrap();
    assert!(url.starts_with("https://idp.example.com/authorize?x=1&response_type=code"));
    assert!(url.contains(&format!("code_challenge={}", code_challenge("v"))) && url.contains("nonce=n"));
}

#[test]
fn email_verified_vouches_only_for_the_email_claim_of_its_own_document() {
    let c = connection(ISS);
    let map = |v: Value| -> serde_json::Map<String, Value> { serde_json::from_value(v).unwrap() };
    // The flag in the ID token, the address in UserInfo: not vouched for.
    let id = map(json!({"sub": "u-1", "email_verified": true}));
    let info = map(json!({"sub": "u-1", "email": "ada@corp.example"}));
    let who = identity(&c, Some(&id), Some(&info)).unwrap();
    assert_eq!(who.email.as_deref(), Some("ada@corp.example"));
    assert!(!who.email_verified);
    // A verified `email` does not vouch for another mapped claim.
    let mut by_upn = connection(ISS);
    by_upn.options.mapping.email = "preferred_username".into();
    let id = map(
        json!({"sub": "u-1", "preferred_username": "ceo@corp.example", "email": "me@else.example", "email_verified": true}),
    );
    let who = identity(&by_upn, Some(&id), None).unwrap();
    assert_eq!(who.email.as_deref(), Some("ceo@corp.example"));
    assert!(!who.email_verified);
    // Entra's multi-tenant `email` is whatever a directory admin typed (nOAuth): never vouched.
    let entra = connection("https://login.example.com/{tenantid}/v2.0");
    let id = map(
        json!({"sub": "u-1", "tid": "11111111-aaaa", "email": "ceo@corp.example", "email_verified": true}),
    );
    assert!(!identity(&entra, Some(&id), None).unwrap().email_verified);
}

#[test]
fn userinfo_without_sub_is_refused() {
    let c = connection(ISS);
    let id: serde_json::Map<String, Value> = serde_json::from_value(claims()).unwrap();
    let info: serde_json::Map<String, Value> =
        serde_json::from_value(json!({"email": "x@y.example"})).unwrap();
    assert_eq!(
        identity(&c, Some(&id), Some(&info)),
        Err(FederationError::SubjectMismatch)
    );
}

/// The client assertion of a token request made with `key` at 100 s.
fn signed_assertion(c: &OidcConnection, p: &AuthParams<'_>, key: &SigningKey) -> String {
    let req = token_request(
        c,
        "https://idp.example.com/token",
        "code",
        p,
        &request::Credential::Key(key),
        "j1",
        100,
    )
    .unwrap();
    req.form
        .into_iter()
        .find(|(k, _)| *k == "client_assertion")
        .unwrap()
        .1
}

#[test]
fn a_client_assertion_names_the_issuer_alone() {
    let (key, _) = SigningKey::generate(Alg::RS256).unwrap();
    let mut c = connection(ISS);
    c.client_auth = UpstreamAuth::PrivateKeyJwt;
    c.discovered = Some(discovered(ISS, &[&key]));
    let p = AuthParams {
        redirect_uri: "https://lk.example/cb",
        code_verifier: "v",
        ..AuthParams::default()
    };
    let token_endpoint = "https://idp.example.com/token";
    let assertion = signed_assertion(&c, &p, &key);
    let claims = {
        use base64::Engine as _;
        let part = assertion.split('.').nth(1).unwrap();
        serde_json::from_slice::<Value>(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(part)
                .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(
        claims["aud"],
        json!(ISS),
        "the issuer, a string, not the endpoint"
    );
    assert_eq!(
        (claims["iss"].clone(), claims["sub"].clone()),
        (json!("latchkey"), json!("latchkey"))
    );
    assert_eq!(claims["exp"], json!(160));
    // A fresh sign-in asks for `auth_time` too.
    let fresh = AuthParams {
        prompt: Some("login"),
        ..p.clone()
    };
    let url = authorization_url(&c, &c.endpoints().unwrap(), &fresh).unwrap();
    assert!(url.contains("prompt=login") && url.contains("max_age=0"), "{url}");
    // An OAuth 2.0 provider has no issuer to name: its token endpoint.
    c.kind = UpstreamKind::Oauth2;
    assert_eq!(request::assertion_audience(&c, token_endpoint), token_endpoint);
}
