//! OIDC behaviour beyond the happy path, on both backends: re-authentication (`prompt=login`,
//! `max_age`), logout confirmation and what it ends, disabled users, `private_key_jwt`,
//! `form_post`, discovery.

#![allow(clippy::unwrap_used, clippy::many_single_char_names)] // test code; s, c, b: server, client, browser

use latchkey_core::{AccessTokenFormat, AuthMethod, ClientSettings, ClientType, GrantType, UserStatus};
use latchkey_keys::{Alg, SigningKey};
use latchkey_store::{ClientRepo, NewClient, ResetRepo, UserRepo};
use latchkey_tests::TestServer;
use latchkey_tests::browser::PASSWORD;
use latchkey_tests::browser::{Browser, hidden, setup};
use latchkey_tests::oidc::{
    authorize, authorize_path, code, query, redeem, refresh, register, tenant, userinfo,
};
use serde_json::{Value, json};

fn id_token_claims(tokens: &Value) -> Value {
    use base64::Engine as _;
    let payload = tokens["id_token"].as_str().unwrap().split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

async fn prompt_login_and_max_age_force_a_new_sign_in(s: &TestServer) {
    setup(s, "acme").await;
    let c = register(s, "acme", ClientType::Confidential, true, AccessTokenFormat::Jwt);
    let mut b = Browser::default();
    let (_, first) = redeem(s, &c, &code(s, &mut b, &c).await).await;
    let first_auth = id_token_claims(&first)["auth_time"].as_i64().unwrap();
    // With a live session a plain request needs no sign-in at all.
    let (st, h, _) = b.get(s, &authorize_path(&c, &[])).await;
    assert_eq!(st, 303);
    assert!(h["location"].to_str().unwrap().contains("code="));
    for extra in [("prompt", "login"), ("max_age", "0")] {
        let (st, h, _) = b.get(s, &authorize_path(&c, &[extra])).await;
        assert_eq!(st, 303);
        let loc = h["location"].to_str().unwrap();
        assert!(
            loc.starts_with("/t/acme/login?interaction="),
            "{extra:?} must ask again: {loc}"
        );
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let back = authorize(s, &mut b, loc, "acme", true).await;
        let code = query(&back)
            .get("code")
            .cloned()
            .unwrap_or_else(|| panic!("{extra:?}: {back}"));
        let (st, tokens) = redeem(s, &c, &code).await;
        assert_eq!(st, 200, "{tokens}");
        assert!(
            id_token_claims(&tokens)["auth_time"].as_i64().unwrap() > first_auth,
            "{extra:?}"
        );
    }
    // max_age=0 with prompt=none can't be met silently.
    let (_, h, _) = b
        .get(s, &authorize_path(&c, &[("max_age", "0"), ("prompt", "none")]))
        .await;
    assert_eq!(query(h["location"].to_str().unwrap())["error"], "login_required");
}

async fn logout_without_a_hint_is_confirmed_and_ends_online_grants_only(s: &TestServer) {
    setup(s, "acme").await;
    let c = register(s, "acme", ClientType::Confidential, true, AccessTokenFormat::Jwt);
    let mut b = Browser::default();
    let online_path = authorize_path(&c, &[("scope", "openid email")]);
    let online = authorize(s, &mut b, &online_path, "acme", true).await;
    let (_, online) = redeem(s, &c, &query(&online)["code"]).await;
    // offline_access needs consent even for a first-party client.
    let offline = authorize(s, &mut b, &authorize_path(&c, &[]), "acme", true).await;
    let (_, offline) = redeem(s, &c, &query(&offline)["code"]).await;
    assert!(offline["scope"].as_str().unwrap().contains("offline_access"));

    let path = format!(
        "/t/acme/end-session?client_id={}&post_logout_redirect_uri={}&state=s1",
        c.client_id,
        latchkey_tests::oidc::enc(latchkey_tests::oidc::POST_LOGOUT)
    );
    let (st, _, page) = b.get(s, &path).await;
    assert_eq!(st, 200, "a link alone does not sign out: {page}");
    assert!(page.contains("Do you want to sign out"));
    // A forged confirmation (no CSRF token) does nothing.
    let (st, _, _) = b.post(s, "/t/acme/end-session", &[("confirm", "yes")], &[]).await;
    assert_eq!(st, 200);
    let form = [
        ("csrf", hidden(&page, "csrf")),
        ("confirm", "yes".to_owned()),
        ("client_id", hidden(&page, "client_id")),
        (
            "post_logout_redirect_uri",
            hidden(&page, "post_logout_redirect_uri"),
        ),
        ("state", hidden(&page, "state")),
    ];
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (st, h, _) = b.post(s, "/t/acme/end-session", &pairs, &[]).await;
    assert_eq!(st, 303);
    assert_eq!(
        h["location"],
        format!("{}?state=s1", latchkey_tests::oidc::POST_LOGOUT)
    );
    let (st, r) = refresh(s, &c, online["refresh_token"].as_str().unwrap()).await;
    assert_eq!((st.as_u16(), r["error"].as_str()), (400, Some("invalid_grant")));
    assert_eq!(
        userinfo(s, "acme", online["access_token"].as_str().unwrap()).await,
        401
    );
    let (st, r) = refresh(s, &c, offline["refresh_token"].as_str().unwrap()).await;
    assert_eq!(st, 200, "offline access outlives the session: {r}");
    // An unregistered post-logout URI is refused on a page, never followed.
    let (st, h, _) = b
        .get(
            s,
            &format!(
                "/t/acme/end-session?client_id={}&post_logout_redirect_uri=https%3A%2F%2Fevil.example%2F",
                c.client_id
            ),
        )
        .await;
    assert_eq!((st.as_u16(), h.get("location").is_none()), (400, true));
}

async fn signing_out_everywhere_ends_offline_refresh_tokens_too(s: &TestServer) {
    setup(s, "acme").await;
    let c = register(s, "acme", ClientType::Confidential, true, AccessTokenFormat::Jwt);
    let mut b = Browser::default();
    let (_, tokens) = redeem(s, &c, &code(s, &mut b, &c).await).await;
    assert!(tokens["scope"].as_str().unwrap().contains("offline_access"));
    let (_, _, page) = b.get(s, "/t/acme/account").await;
    let csrf = hidden(&page, "csrf");
    let (st, _, _) = b
        .post(s, "/t/acme/account/sessions/revoke-all", &[("csrf", &csrf)], &[])
        .await;
    assert_eq!(st, 303);
    let (st, r) = refresh(s, &c, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!((st.as_u16(), r["error"].as_str()), (400, Some("invalid_grant")));
}

async fn a_disabled_user_loses_refresh_and_userinfo(s: &TestServer) {
    setup(s, "acme").await;
    let c = register(
        s,
        "acme",
        ClientType::Confidential,
        true,
        AccessTokenFormat::Opaque,
    );
    let mut b = Browser::default();
    let (_, tokens) = redeem(s, &c, &code(s, &mut b, &c).await).await;
    let t = tenant(s, "acme");
    let alice = s.state.db.user_by_username(&t.id, "alice").unwrap().unwrap();
    s.state
        .db
        .set_user_status(&t.id, "test", &alice.id, UserStatus::Disabled)
        .unwrap();
    assert_eq!(
        userinfo(s, "acme", tokens["access_token"].as_str().unwrap()).await,
        401
    );
    let (st, r) = refresh(s, &c, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!((st.as_u16(), r["error"].as_str()), (400, Some("invalid_grant")));
    // Enabled again, the grant stays dead: disabling revoked it.
    s.state
        .db
        .set_user_status(&t.id, "test", &alice.id, UserStatus::Active)
        .unwrap();
    assert_eq!(
        refresh(s, &c, tokens["refresh_token"].as_str().unwrap()).await.0,
        400
    );
}

async fn private_key_jwt_assertions_are_single_use(s: &TestServer) {
    setup(s, "acme").await;
    let t = tenant(s, "acme");
    let (key, _) = SigningKey::generate(Alg::ES256).unwrap();
    let kid = key.kid();
    let mut jwk = key.public_jwk();
    jwk["kid"] = json!(kid);
    let c = s
        .state
        .db
        .create_client(
            &t.id,
            "test",
            &NewClient {
                name: "jwt service".into(),
                client_type: ClientType::Confidential,
                auth_method: AuthMethod::PrivateKeyJwt,
                secret_hash: None,
                redirect_uris: vec![],
                post_logout_redirect_uris: vec![],
                grant_types: vec![GrantType::ClientCredentials],
                scopes: vec!["reports.read".into()],
                access_token_format: AccessTokenFormat::Jwt,
                require_pkce: true,
                introspect_others: false,
                first_party: false,
                jwks_uri: None,
                jwks: Some(json!({"keys": [jwk]})),
                settings: ClientSettings::default(),
            },
        )
        .unwrap();
    let now = s.state.clock.now_millis() / 1000;
    let id = c.client_id.to_string();
    let assertion = |aud: &str, jti: &str| {
        let claims = json!({"iss": id, "sub": id, "aud": aud, "exp": now + 60, "iat": now, "jti": jti});
        latchkey_keys::jwt::encode(&key, &kid, "JWT", &claims).unwrap()
    };
    let send = |a: String| async move {
        TestServer::client()
            .post(s.url("/t/acme/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", a.as_str()),
            ])
            .send()
            .await
            .unwrap()
            .status()
    };
    let good = assertion(&s.issuer("acme"), "j-1");
    assert_eq!(send(good.clone()).await, 200);
    assert_eq!(send(good).await, 401, "a replayed assertion");
    // Issue 19 item 10: only the issuer is an audience (the 2025 audience-injection findings);
    // an assertion made out to the token endpoint could have been made for another server.
    assert_eq!(
        send(assertion(&format!("{}/token", s.issuer("acme")), "j-2")).await,
        401,
        "the token endpoint as aud"
    );
    assert_eq!(
        send(assertion("https://other.example/token", "j-3")).await,
        401,
        "wrong aud"
    );
}

async fn form_post_delivers_the_response_to_the_client_origin_only(s: &TestServer) {
    setup(s, "acme").await;
    let c = register(s, "acme", ClientType::Confidential, true, AccessTokenFormat::Jwt);
    let mut b = Browser::default();
    code(s, &mut b, &c).await;
    let res = TestServer::client()
        .get(s.url(&authorize_path(
            &c,
            &[("response_mode", "form_post"), ("state", "a\"<b>")],
        )))
        .header("cookie", b.header())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let csp = res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("form-action http://127.0.0.1:8000;"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"));
    let page = res.text().await.unwrap();
    assert!(page.contains("action=\"http://127.0.0.1:8000/cb\""), "{page}");
    assert!(page.contains("name=\"code\""));
    let state = page
        .split("name=\"state\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    assert!(
        !state.contains('<') && state.starts_with("a&"),
        "state is escaped: {state}"
    );
    assert!(page.contains("/assets/form_post.js"));
}

async fn pages_of_a_flow_let_their_forms_lead_to_the_client_only(s: &TestServer) {
    setup(s, "acme").await;
    let c = register(s, "acme", ClientType::Public, false, AccessTokenFormat::Jwt);
    let mut b = Browser::default();
    let csp = |h: &reqwest::header::HeaderMap| h["content-security-policy"].to_str().unwrap().to_owned();
    let (_, h, _) = b.get(s, "/t/acme/login").await;
    assert!(
        csp(&h).contains("form-action 'self';"),
        "no flow, no other origin: {}",
        csp(&h)
    );
    let (_, h, _) = b.get(s, &authorize_path(&c, &[])).await;
    let login = h["location"].to_str().unwrap().to_owned();
    let (_, h, page) = b.get(s, &login).await;
    assert!(
        csp(&h).contains("form-action 'self' http://127.0.0.1:8000;"),
        "{}",
        csp(&h)
    );
    let form = [
        ("csrf", hidden(&page, "csrf")),
        ("interaction", hidden(&page, "interaction")),
        ("username", "alice".to_owned()),
        ("password", latchkey_tests::browser::PASSWORD.to_owned()),
    ];
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (_, h, _) = b.post(s, "/t/acme/login", &pairs, &[]).await;
    let (_, h, _) = b.get(s, h["location"].to_str().unwrap()).await;
    assert!(
        csp(&h).contains("form-action 'self' http://127.0.0.1:8000;"),
        "consent page: {}",
        csp(&h)
    );
    assert!(csp(&h).contains("frame-ancestors 'none'"));
}

async fn discovery_publishes_what_the_endpoints_do(s: &TestServer) {
    setup(s, "acme").await;
    let meta: Value = TestServer::client()
        .get(s.url("/t/acme/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let iss = s.issuer("acme");
    assert_eq!(meta["issuer"], iss);
    for (field, path) in [
        ("authorization_endpoint", "/authorize"),
        ("token_endpoint", "/token"),
        ("userinfo_endpoint", "/userinfo"),
        ("jwks_uri", "/jwks"),
        ("introspection_endpoint", "/introspect"),
        ("revocation_endpoint", "/revoke"),
        ("end_session_endpoint", "/end-session"),
    ] {
        assert_eq!(meta[field], format!("{iss}{path}"), "{field}");
    }
    assert_eq!(meta["response_types_supported"], json!(["code"]));
    assert_eq!(meta["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(meta["authorization_response_iss_parameter_supported"], true);
    assert!(
        meta["id_token_signing_alg_values_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("RS256"))
    );
    // Browser apps may call the token and userinfo endpoints from their own origin.
    for path in ["/t/acme/token", "/t/acme/userinfo"] {
        let res = TestServer::client()
            .request(reqwest::Method::OPTIONS, s.url(path))
            .header("origin", "https://spa.example")
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 204, "{path}");
        assert_eq!(res.headers()["access-control-allow-origin"], "*");
        assert!(res.headers().get("access-control-allow-credentials").is_none());
    }
    // Every advertised endpoint answers (none is a 404).
    for field in ["token_endpoint", "introspection_endpoint", "revocation_endpoint"] {
        let url = meta[field].as_str().unwrap();
        let st = TestServer::client()
            .post(url)
            .form(&[("x", "y")])
            .send()
            .await
            .unwrap()
            .status();
        assert!(st == 400 || st == 401, "{field}: {st}");
    }
}

async fn tokens_consents_reuse_and_logouts_are_audited_and_counted(s: &TestServer) {
    setup(s, "acme").await;
    latchkey_tests::oidc::update_policy(s, "acme", |p| p.tokens.refresh_reuse_grace_secs = 0);
    let c = register(s, "acme", ClientType::Public, false, AccessTokenFormat::Jwt);
    let mut b = Browser::default();
    let (_, tokens) = redeem(s, &c, &code(s, &mut b, &c).await).await;
    let rt = tokens["refresh_token"].as_str().unwrap();
    assert_eq!(refresh(s, &c, rt).await.0, 200);
    assert_eq!(refresh(s, &c, rt).await.0, 400);
    let t = tenant(s, "acme");
    let events = latchkey_store::AuditRepo::audit_events(&s.state.db, &t.id, 0, 1000).unwrap();
    let seen = |action: &str| events.iter().filter(|e| e.action == action).count();
    for action in [
        "consent.grant",
        "oauth.authorize",
        "oauth.token",
        "oauth.refresh",
        "oauth.refresh_reuse",
    ] {
        assert_eq!(
            seen(action),
            1,
            "{action} in {:?}",
            events.iter().map(|e| &e.action).collect::<Vec<_>>()
        );
    }
    let reuse = events.iter().find(|e| e.action == "oauth.refresh_reuse").unwrap();
    assert_eq!(reuse.outcome, latchkey_core::Outcome::Failure);
    assert!(matches!(
        latchkey_audit::verify(&s.state.db, &t.id).unwrap(),
        latchkey_audit::Verdict::Intact { .. }
    ));
    let page = s.metrics().await;
    for line in [
        r#"latchkey_oauth_events_total{event="token",grant="authorization_code",outcome="ok"} 1"#,
        r#"latchkey_oauth_events_total{event="token",grant="refresh_token",outcome="ok"} 1"#,
        r#"latchkey_oauth_events_total{event="token",grant="refresh_token",outcome="invalid_grant"} 1"#,
        r#"latchkey_oauth_events_total{event="reuse",grant="refresh_token",outcome="revoked"} 1"#,
        r#"latchkey_oauth_events_total{event="consent",grant="code",outcome="ok"} 1"#,
    ] {
        assert!(page.contains(line), "{line} in\n{page}");
    }
}

/// Issue 19 item 9: a new password ends every refresh token of the user, offline ones too,
/// whichever way it was set (the account page, a reset link, an operator). An intruder who
/// had the old password keeps nothing once the owner recovers the account.
async fn a_new_password_ends_every_refresh_token(s: &TestServer) {
    setup(s, "acme").await;
    let c = register(s, "acme", ClientType::Confidential, true, AccessTokenFormat::Jwt);
    let t = tenant(s, "acme");
    let alice = s.state.db.user_by_username(&t.id, "alice").unwrap().unwrap();
    let offline = |b: &mut Browser| {
        let mut b = b.clone();
        let c = c.clone();
        async move {
            let (st, tokens) = redeem(s, &c, &code(s, &mut b, &c).await).await;
            assert_eq!(st, 200, "{tokens}");
            assert!(tokens["scope"].as_str().unwrap().contains("offline_access"));
            tokens["refresh_token"].as_str().unwrap().to_owned()
        }
    };
    let refused = |rt: String| {
        let c = c.clone();
        async move {
            let (st, r) = refresh(s, &c, &rt).await;
            (st.as_u16(), r["error"].as_str().map(str::to_owned))
        }
    };
    let invalid = (400, Some("invalid_grant".to_owned()));

    // 1. An operator's `latchkey user set-password`.
    let rt = offline(&mut Browser::default()).await;
    let hash = s.state.hasher.hash(PASSWORD.into()).await.unwrap();
    s.state
        .db
        .set_password_hash(&t.id, "cli:test", &alice.id, &hash)
        .unwrap();
    assert_eq!(refused(rt).await, invalid, "after an operator's new password");
    // 2. A reset link (to the same password: any new hash counts).
    let rt = offline(&mut Browser::default()).await;
    let hash = s.state.hasher.hash(PASSWORD.into()).await.unwrap();
    let mail = latchkey_store::NewMail {
        channel: latchkey_store::Channel::Mail,
        id: "mail-19".into(),
        recipient: "alice@acme.test".into(),
        subject: "reset".into(),
        body_sealed: "sealed".into(),
    };
    s.state
        .db
        .request_password_reset(
            &t.id,
            &alice.id,
            ("token-hash-19", "browser-hash-19"),
            i64::MAX / 2,
            &mail,
        )
        .unwrap();
    s.state
        .db
        .complete_password_reset(&t.id, "token-hash-19", &hash)
        .unwrap();
    assert_eq!(refused(rt).await, invalid, "after a reset");

    // 3. The user changes it on the account page (from another browser than the app's); last,
    //    since the test kit signs in with PASSWORD.
    let mut app = Browser::default();
    let rt = offline(&mut app).await;
    let mut owner = Browser::default();
    owner.sign_in(s, "acme", "alice", PASSWORD).await;
    let (_, _, page) = owner.get(s, "/t/acme/account").await;
    let form = [
        ("csrf", hidden(&page, "csrf")),
        ("current_password", PASSWORD.to_owned()),
        ("new_password", "a-brand-new-long-phrase-19".to_owned()),
    ];
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (st, _, _) = owner.post(s, "/t/acme/account/password", &pairs, &[]).await;
    assert_eq!(st, 303);
    assert_eq!(refused(rt).await, invalid, "after a change on the account page");
}

latchkey_tests::e2e!(
    tokens_consents_reuse_and_logouts_are_audited_and_counted,
    prompt_login_and_max_age_force_a_new_sign_in,
    logout_without_a_hint_is_confirmed_and_ends_online_grants_only,
    a_disabled_user_loses_refresh_and_userinfo,
    signing_out_everywhere_ends_offline_refresh_tokens_too,
    a_new_password_ends_every_refresh_token,
    private_key_jwt_assertions_are_single_use,
    form_post_delivers_the_response_to_the_client_origin_only,
    pages_of_a_flow_let_their_forms_lead_to_the_client_only,
    discovery_publishes_what_the_endpoints_do,
);
