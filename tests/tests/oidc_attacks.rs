//! The O* and J* attacks of SECURITY-TESTS.md, tried against a running Latchkey on both
//! backends: each must be refused.

#![allow(clippy::unwrap_used, clippy::many_single_char_names)] // test code: a failed unwrap is a failed test; s, c, b: server, client, browser

use base64::Engine as _;
use latchkey_core::{AccessTokenFormat, Client, ClientType};
use latchkey_tests::TestServer;
use latchkey_tests::browser::{Browser, setup};
use latchkey_tests::oidc::{
    REDIRECT, SECRET, VERIFIER, authorize, authorize_path, code, query, redeem, refresh, register,
    register_with, token, userinfo,
};
use serde_json::Value;

fn fixture_client(s: &TestServer, kind: ClientType) -> Client {
    register(s, "acme", kind, true, AccessTokenFormat::Jwt)
}

async fn redirect_near_misses_get_a_page_not_a_redirect(s: &TestServer) {
    setup(s, "acme").await;
    let c = fixture_client(s, ClientType::Confidential);
    let mut b = Browser::default();
    for bad in [
        "http://127.0.0.1:8001/cb",
        "http://127.0.0.1:8000/cb/",
        "http://127.0.0.1:8000/cb/x",
        "http://127.0.0.1:8000/cb?x=1",
        "http://127.0.0.1:8000/cb/../cb",
        "http://evil@127.0.0.1:8000/cb",
        "https://127.0.0.1:8000/cb",
        "http://127.0.0.1:8000/CB",
        "http://127.0.0.1:8000/cb#f",
        "https://evil.example/cb",
    ] {
        let (st, h, page) = b.get(s, &authorize_path(&c, &[("redirect_uri", bad)])).await;
        assert_eq!(st, 400, "{bad}");
        assert!(h.get("location").is_none(), "{bad} must not redirect");
        assert!(page.contains("redirect_uri"), "{page}");
    }
    // An unknown client gets the page too.
    let (st, h, _) = b
        .get(
            s,
            "/t/acme/authorize?client_id=nope&redirect_uri=https://evil.example/&response_type=code",
        )
        .await;
    assert_eq!((st.as_u16(), h.get("location").is_none()), (400, true));
}

async fn errors_after_the_redirect_check_go_back_with_state_and_iss(s: &TestServer) {
    setup(s, "acme").await;
    let c = fixture_client(s, ClientType::Confidential);
    let public = fixture_client(s, ClientType::Public);
    let mut b = Browser::default();
    let printable: String = (0x20u8..0x7f).map(char::from).collect();
    for (client, extra, want) in [
        (&c, vec![("response_type", "token")], "unsupported_response_type"),
        (
            &c,
            vec![("response_type", "code id_token")],
            "unsupported_response_type",
        ),
        (&c, vec![("code_challenge_method", "plain")], "invalid_request"),
        (&c, vec![("response_mode", "fragment")], "invalid_request"),
        (
            &public,
            vec![("code_challenge", ""), ("code_challenge_method", "")],
            "invalid_request",
        ),
        (
            &c,
            vec![("request", "eyJhbGciOiJub25lIn0.e30.")],
            "request_not_supported",
        ),
    ] {
        let mut extra = extra;
        extra.push(("state", printable.as_str()));
        let (st, h, _) = b.get(s, &authorize_path(client, &extra)).await;
        assert_eq!(st, 303, "{extra:?}");
        let loc = h["location"].to_str().unwrap();
        assert!(loc.starts_with(REDIRECT), "{loc}");
        let q = query(loc);
        assert_eq!(q["error"], want, "{extra:?}");
        assert_eq!(q["state"], printable, "state returned byte for byte");
        assert_eq!(q["iss"], s.issuer("acme"));
    }
    // Without a session prompt=none says login_required instead of showing a page.
    let (st, h, _) = b.get(s, &authorize_path(&c, &[("prompt", "none")])).await;
    assert_eq!(st, 303);
    assert_eq!(query(h["location"].to_str().unwrap())["error"], "login_required");
}

async fn a_replayed_code_fails_and_revokes_what_it_issued(s: &TestServer) {
    setup(s, "acme").await;
    let c = fixture_client(s, ClientType::Confidential);
    let mut b = Browser::default();
    let code = code(s, &mut b, &c).await;
    let (st, first) = redeem(s, &c, &code).await;
    assert_eq!(st, 200, "{first}");
    let at = first["access_token"].as_str().unwrap();
    assert_eq!(userinfo(s, "acme", at).await, 200);
    // A leaked spent code without its PKCE verifier is refused and revokes nothing: it must not
    // let whoever found it sign the user out of the app (issue 19 item 10).
    let wrong = "a".repeat(43);
    let leaked = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("code_verifier", wrong.as_str()),
        ("redirect_uri", REDIRECT),
    ];
    let (st, body) = token(s, &c, &leaked).await;
    assert_eq!(
        (st.as_u16(), body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert_eq!(userinfo(s, "acme", at).await, 200, "the grant lives on");
    let (st, again) = redeem(s, &c, &code).await;
    assert_eq!(
        (st.as_u16(), again["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert_eq!(
        userinfo(s, "acme", at).await,
        401,
        "the first use's access token is revoked"
    );
    let (st, r) = refresh(s, &c, first["refresh_token"].as_str().unwrap()).await;
    assert_eq!((st.as_u16(), r["error"].as_str()), (400, Some("invalid_grant")));
}

async fn pkce_and_redirect_bindings_hold_at_the_token_endpoint(s: &TestServer) {
    setup(s, "acme").await;
    let c = fixture_client(s, ClientType::Confidential);
    let mut b = Browser::default();
    let code = code(s, &mut b, &c).await;
    let wrong_verifier = "a".repeat(43);
    for form in [
        vec![
            ("code_verifier", wrong_verifier.as_str()),
            ("redirect_uri", REDIRECT),
        ],
        vec![("redirect_uri", REDIRECT)],
        vec![
            ("code_verifier", VERIFIER),
            ("redirect_uri", "http://127.0.0.1:8000/cb/"),
        ],
    ] {
        let mut f = vec![("grant_type", "authorization_code"), ("code", code.as_str())];
        f.extend(form.iter().copied());
        let (st, body) = token(s, &c, &f).await;
        assert_eq!(
            (st.as_u16(), body["error"].as_str()),
            (400, Some("invalid_grant")),
            "{form:?}"
        );
    }
    // The failed attempts spent nothing: the right verifier still works once.
    assert_eq!(redeem(s, &c, &code).await.0, 200);
}

async fn refresh_reuse_revokes_the_family_and_one_of_64_concurrent_wins(s: &TestServer) {
    setup(s, "acme").await;
    let c = fixture_client(s, ClientType::Confidential);
    let mut b = Browser::default();
    // Within the grace window the token rotated last is refused without revoking anything...
    let (_, first) = redeem(s, &c, &code(s, &mut b, &c).await).await;
    let rt1 = first["refresh_token"].as_str().unwrap().to_owned();
    let (_, second) = refresh(s, &c, &rt1).await;
    let rt2 = second["refresh_token"].as_str().unwrap().to_owned();
    let (st, again) = refresh(s, &c, &rt1).await;
    assert_eq!(
        (st.as_u16(), again["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (st, third) = refresh(s, &c, &rt2).await;
    assert_eq!(st, 200, "the grant lives on: {third}");
    // ...but two rotations back it is reuse, window or not.
    let (st, _) = refresh(s, &c, &rt1).await;
    assert_eq!(st, 400);
    let rt3 = third["refresh_token"].as_str().unwrap();
    assert_eq!(refresh(s, &c, rt3).await.0, 400, "reuse revoked the family");

    // Without a grace window, reuse revokes at once.
    latchkey_tests::oidc::update_policy(s, "acme", |p| p.tokens.refresh_reuse_grace_secs = 0);
    let (_, first) = redeem(s, &c, &code(s, &mut b, &c).await).await;
    let rt1 = first["refresh_token"].as_str().unwrap().to_owned();
    let (st, second) = refresh(s, &c, &rt1).await;
    assert_eq!(st, 200, "{second}");
    let rt2 = second["refresh_token"].as_str().unwrap().to_owned();
    let (st, reuse) = refresh(s, &c, &rt1).await;
    assert_eq!(
        (st.as_u16(), reuse["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert_eq!(
        refresh(s, &c, &rt2).await.0,
        400,
        "reuse revoked the newer token too"
    );
    assert_eq!(
        userinfo(s, "acme", second["access_token"].as_str().unwrap()).await,
        401
    );

    let (_, fresh) = redeem(s, &c, &code(s, &mut b, &c).await).await;
    let rt = fresh["refresh_token"].as_str().unwrap().to_owned();
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let (s_url, id, rt) = (s.url("/t/acme/token"), c.client_id.to_string(), rt.clone());
            tokio::spawn(async move {
                TestServer::client()
                    .post(s_url)
                    .basic_auth(id, Some(SECRET))
                    .form(&[("grant_type", "refresh_token"), ("refresh_token", rt.as_str())])
                    .send()
                    .await
                    .unwrap()
                    .status()
            })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        let st = t.await.unwrap();
        assert!(st == 200 || st == 400, "{st}");
        ok += usize::from(st == 200);
    }
    assert_eq!(ok, 1, "exactly one concurrent refresh succeeds");
}

async fn client_authentication_attacks_are_refused(s: &TestServer) {
    setup(s, "acme").await;
    let c = fixture_client(s, ClientType::Confidential);
    let other = fixture_client(s, ClientType::Confidential);
    let public = fixture_client(s, ClientType::Public);
    let cc = [("grant_type", "client_credentials")];
    let send = |req: reqwest::RequestBuilder| async move {
        let res = req.send().await.unwrap();
        let (st, h) = (res.status(), res.headers().clone());
        (st, h, res.json::<Value>().await.unwrap())
    };
    let url = s.url("/t/acme/token");
    let http = TestServer::client();
    let (st, h, body) = send(
        http.post(&url)
            .basic_auth(c.client_id.as_str(), Some("wrong"))
            .form(&cc),
    )
    .await;
    assert_eq!(
        (st.as_u16(), body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    assert!(h["www-authenticate"].to_str().unwrap().starts_with("Basic"));
    // The right secret for another client.
    let (st, _, _) = send(
        http.post(&url)
            .basic_auth(other.client_id.as_str(), Some("x"))
            .form(&cc),
    )
    .await;
    assert_eq!(st, 401);
    for header in ["Basic !!!", "Basic bm9jb2xvbg=="] {
        let (st, _, body) = send(http.post(&url).header("authorization", header).form(&cc)).await;
        assert_eq!(
            (st.as_u16(), body["error"].as_str()),
            (401, Some("invalid_client")),
            "{header}"
        );
    }
    let (st, _, body) = send(
        http.post(&url)
            .basic_auth(c.client_id.as_str(), Some(SECRET))
            .form(&[("grant_type", "client_credentials"), ("client_secret", SECRET)]),
    )
    .await;
    assert_eq!(
        (st.as_u16(), body["error"].as_str()),
        (400, Some("invalid_request")),
        "two methods"
    );
    let (st, _, body) = send(http.post(&url).form(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", "x"),
        ("client_id", public.client_id.as_str()),
        ("client_secret", SECRET),
    ]))
    .await;
    assert_eq!(
        (st.as_u16(), body["error"].as_str()),
        (401, Some("invalid_client")),
        "public client with a secret"
    );
    malformed_token_requests_are_refused(s, &c).await;
}

/// GET, wrong content type, duplicate parameters, oversized bodies, an unsupported grant.
async fn malformed_token_requests_are_refused(s: &TestServer, c: &Client) {
    let send = |req: reqwest::RequestBuilder| async move {
        let res = req.send().await.unwrap();
        let (st, h) = (res.status(), res.headers().clone());
        (st, h, res.json::<Value>().await.unwrap())
    };
    let url = s.url("/t/acme/token");
    let http = TestServer::client();
    assert_eq!(http.get(&url).send().await.unwrap().status(), 405);
    let res = http
        .post(&url)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 415);
    let res = http
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials&grant_type=password")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let res = http
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("x={}", "a".repeat(2 * 1024 * 1024)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    let (st, _, body) = send(
        http.post(&url)
            .basic_auth(c.client_id.as_str(), Some(SECRET))
            .form(&[("grant_type", "password")]),
    )
    .await;
    assert_eq!(
        (st.as_u16(), body["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
}

fn forge(token: &str, header: &str) -> String {
    let rest = token.split_once('.').unwrap().1;
    format!(
        "{}.{rest}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(header)
    )
}

async fn forged_and_foreign_tokens_are_refused(s: &TestServer) {
    setup(s, "acme").await;
    setup(s, "other").await;
    let c = fixture_client(s, ClientType::Confidential);
    let mut b = Browser::default();
    let (_, tokens) = redeem(s, &c, &code(s, &mut b, &c).await).await;
    let at = tokens["access_token"].as_str().unwrap();
    assert_eq!(userinfo(s, "acme", at).await, 200);
    assert_eq!(
        userinfo(s, "other", at).await,
        401,
        "tenant A's token at tenant B"
    );
    let kid = {
        let h = at.split('.').next().unwrap();
        let v: Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(h)
                .unwrap(),
        )
        .unwrap();
        v["kid"].as_str().unwrap().to_owned()
    };
    let none = format!(
        "{}.",
        forge(at, &format!(r#"{{"alg":"none","kid":"{kid}","typ":"at+jwt"}}"#))
            .rsplit_once('.')
            .unwrap()
            .0
    );
    assert_eq!(userinfo(s, "acme", &none).await, 401, "alg none");
    let hs = forge(at, &format!(r#"{{"alg":"HS256","kid":"{kid}","typ":"at+jwt"}}"#));
    assert_eq!(userinfo(s, "acme", &hs).await, 401, "HS256 with the public key");
    let mut parts: Vec<&str> = at.split('.').collect();
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"sub":"admin"}"#);
    parts[1] = &payload;
    assert_eq!(
        userinfo(s, "acme", &parts.join(".")).await,
        401,
        "modified payload"
    );
    // The ID token is not an access token (typ).
    assert_eq!(
        userinfo(s, "acme", tokens["id_token"].as_str().unwrap()).await,
        401
    );
    let res = TestServer::client()
        .get(s.url("/t/acme/userinfo"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert!(
        res.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
}

async fn introspection_and_revocation_need_the_owning_client(s: &TestServer) {
    setup(s, "acme").await;
    let c = fixture_client(s, ClientType::Confidential);
    let other = fixture_client(s, ClientType::Confidential);
    let mut b = Browser::default();
    let (_, tokens) = redeem(s, &c, &code(s, &mut b, &c).await).await;
    let at = tokens["access_token"].as_str().unwrap();
    let http = TestServer::client();
    let post = |path: &str, who: &Client, token: &str| {
        http.post(s.url(path))
            .basic_auth(who.client_id.as_str(), Some(SECRET))
            .form(&[("token", token.to_owned())])
            .send()
    };
    let res = http
        .post(s.url("/t/acme/introspect"))
        .form(&[("token", at)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401, "introspection needs client authentication");
    let mine: Value = post("/t/acme/introspect", &c, at)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(mine["active"], true);
    assert_eq!(mine["client_id"], c.client_id.as_str());
    let theirs: Value = post("/t/acme/introspect", &other, at)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(theirs, serde_json::json!({"active": false}));
    assert_eq!(
        post("/t/acme/revoke", &c, "unknown-token")
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(post("/t/acme/revoke", &other, at).await.unwrap().status(), 400);
    assert_eq!(
        userinfo(s, "acme", at).await,
        200,
        "another client could not revoke it"
    );
    assert_eq!(post("/t/acme/revoke", &c, at).await.unwrap().status(), 200);
    assert_eq!(userinfo(s, "acme", at).await, 401);
    let gone: Value = post("/t/acme/introspect", &c, at)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(gone["active"], false);
    client_credentials_jwt_is_revoked_through_the_deny_list(s, &c).await;
}

/// A client-credentials JWT is revoked through the jti deny-list.
async fn client_credentials_jwt_is_revoked_through_the_deny_list(s: &TestServer, c: &Client) {
    let http = TestServer::client();
    let post = |path: &str, who: &Client, token: &str| {
        http.post(s.url(path))
            .basic_auth(who.client_id.as_str(), Some(SECRET))
            .form(&[("token", token.to_owned())])
            .send()
    };
    let (st, cc) = token(
        s,
        c,
        &[("grant_type", "client_credentials"), ("scope", "reports.read")],
    )
    .await;
    assert_eq!(st, 200, "{cc}");
    let cct = cc["access_token"].as_str().unwrap();
    let live: Value = post("/t/acme/introspect", c, cct)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (live["active"].as_bool(), live["sub"].as_str()),
        (Some(true), Some(c.client_id.as_str()))
    );
    assert_eq!(post("/t/acme/revoke", c, cct).await.unwrap().status(), 200);
    let dead: Value = post("/t/acme/introspect", c, cct)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(dead["active"], false);
}

async fn client_credentials_tokens_carry_no_user(s: &TestServer) {
    setup(s, "acme").await;
    let c = register_with(
        s,
        "acme",
        ClientType::Confidential,
        true,
        AccessTokenFormat::Jwt,
        |n| {
            n.settings.resources = vec!["https://api.example.com/".into()];
        },
    );
    let (st, body) = token(
        s,
        &c,
        &[
            ("grant_type", "client_credentials"),
            ("resource", "https://api.example.com/"),
        ],
    )
    .await;
    assert_eq!(st, 200, "{body}");
    assert!(body.get("refresh_token").is_none() && body.get("id_token").is_none());
    let payload = body["access_token"].as_str().unwrap().split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["aud"], "https://api.example.com/");
    assert_eq!(claims["sub"], c.client_id.as_str());
    assert!(claims.get("auth_time").is_none());
    assert_eq!(
        userinfo(s, "acme", body["access_token"].as_str().unwrap()).await,
        401
    );
    let (st, body) = token(
        s,
        &c,
        &[("grant_type", "client_credentials"), ("scope", "openid")],
    )
    .await;
    assert_eq!(
        (st.as_u16(), body["error"].as_str()),
        (400, Some("invalid_scope"))
    );
}

/// RFC 8707 §2: a client gets tokens only for the resources it is registered for; one
/// registered for none may not name any (the audience is then the client itself).
async fn client_credentials_refuse_resources_the_client_may_not_ask_for(s: &TestServer) {
    setup(s, "acme").await;
    let bare = fixture_client(s, ClientType::Confidential);
    let listed = register_with(
        s,
        "acme",
        ClientType::Confidential,
        true,
        AccessTokenFormat::Jwt,
        |n| {
            n.settings.resources = vec!["https://reports.example.com/".into()];
        },
    );
    for (c, resource) in [
        (&bare, "https://payroll.example.com/"),
        (&bare, "https://reports.example.com/"),
        (&listed, "https://payroll.example.com/"),
        (&listed, "https://reports.example.com"),
        (&listed, "https://reports.example.com/#x"),
        (&listed, ""),
    ] {
        let (st, body) = token(
            s,
            c,
            &[("grant_type", "client_credentials"), ("resource", resource)],
        )
        .await;
        assert_eq!(
            (st.as_u16(), body["error"].as_str()),
            (400, Some("invalid_target")),
            "{resource:?}: {body}"
        );
        assert!(body.get("access_token").is_none());
    }
    let (st, body) = token(s, &bare, &[("grant_type", "client_credentials")]).await;
    assert_eq!(st, 200, "{body}");
}

async fn consent_can_be_denied_and_withdrawn(s: &TestServer) {
    setup(s, "acme").await;
    let c = register(s, "acme", ClientType::Public, false, AccessTokenFormat::Opaque);
    let mut b = Browser::default();
    let back = authorize(s, &mut b, &authorize_path(&c, &[]), "acme", false).await;
    assert_eq!(query(&back)["error"], "access_denied");
    let back = authorize(s, &mut b, &authorize_path(&c, &[]), "acme", true).await;
    let (st, tokens) = redeem(s, &c, &query(&back)["code"]).await;
    assert_eq!(st, 200, "{tokens}");
    // Consent is remembered: the next request issues a code without asking.
    let (st, h, _) = b.get(s, &authorize_path(&c, &[])).await;
    assert_eq!(st, 303);
    assert!(query(h["location"].to_str().unwrap()).contains_key("code"));
    let (_, _, page) = b.get(s, "/t/acme/account").await;
    assert!(page.contains("public portal"), "the account page lists the app");
    let csrf = latchkey_tests::browser::hidden(&page, "csrf");
    let (st, _, _) = b
        .post(
            s,
            "/t/acme/account/apps/revoke",
            &[("csrf", &csrf), ("client_id", c.client_id.as_str())],
            &[],
        )
        .await;
    assert_eq!(st, 303);
    let (st, r) = refresh(s, &c, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!((st.as_u16(), r["error"].as_str()), (400, Some("invalid_grant")));
    // prompt=none now needs consent again.
    let (_, h, _) = b.get(s, &authorize_path(&c, &[("prompt", "none")])).await;
    assert_eq!(
        query(h["location"].to_str().unwrap())["error"],
        "consent_required"
    );
}

latchkey_tests::e2e!(
    redirect_near_misses_get_a_page_not_a_redirect,
    errors_after_the_redirect_check_go_back_with_state_and_iss,
    a_replayed_code_fails_and_revokes_what_it_issued,
    pkce_and_redirect_bindings_hold_at_the_token_endpoint,
    refresh_reuse_revokes_the_family_and_one_of_64_concurrent_wins,
    client_authentication_attacks_are_refused,
    forged_and_foreign_tokens_are_refused,
    introspection_and_revocation_need_the_owning_client,
    client_credentials_tokens_carry_no_user,
    client_credentials_refuse_resources_the_client_may_not_ask_for,
    consent_can_be_denied_and_withdrawn,
);

/// A key store that fails while a JWT access token is checked is the server's fault (500), not
/// the token's: a 401 would make the client throw a good token away and sign its user in again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_key_store_is_a_server_error_not_an_invalid_token() {
    let db = latchkey_tests::TestDb::sqlite();
    let clock = std::sync::Arc::new(latchkey_core::FixedClock::new(1_800_000_000_000));
    let s = TestServer::start_with_clock(&[("LATCHKEY_DATABASE_URL", &db.url)], clock.clone()).unwrap();
    setup(&s, "acme").await;
    let c = fixture_client(&s, ClientType::Confidential);
    let mut b = Browser::default();
    let code = code(&s, &mut b, &c).await;
    let (st, tokens) = redeem(&s, &c, &code).await;
    assert_eq!(st, 200, "{tokens}");
    let at = tokens["access_token"].as_str().unwrap();
    assert_eq!(at.split('.').count(), 3, "a JWT access token");
    assert_eq!(userinfo(&s, "acme", at).await, 200);
    assert!(db.raw_sql("UPDATE signing_keys SET public_jwk = 'tampered'") > 0);
    // The trigger on signing_keys tells the node through the change feed (a poll or two); the
    // ring is then loaded again, and a key that no longer parses is a 500, never a 401.
    let tampered = std::time::Instant::now();
    loop {
        let st = userinfo(&s, "acme", at).await;
        if st == 500 {
            break;
        }
        assert_eq!(
            st, 200,
            "until the node learns of the change, the cached ring answers"
        );
        assert!(
            tampered.elapsed() < std::time::Duration::from_secs(2),
            "the change feed did not reach the ring"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // And it stays so once the cache's own 5 s would have run out.
    clock.advance_millis(6_000);
    assert_eq!(userinfo(&s, "acme", at).await, 500);
}
