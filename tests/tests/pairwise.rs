//! Pairwise subject identifiers (OIDC Core §8.1) and the claim allow-list, on both backends, as
//! relying parties see them: the `openidconnect` crate's relying party signs in through
//! discovery and code + PKCE and checks the ID token and userinfo's `sub`. Two pairwise clients
//! in different sectors are told different values for the same user, the same sector the same
//! value, every sign-in the same value, a public client the user's id; access tokens with a
//! pairwise `sub` work at userinfo and introspection, and one whose `sub` was changed (re-signed
//! with the tenant's own key) is refused; back-channel logout tokens and `id_token_hint` speak
//! the client's value. A client whose allow-list names `email` gets no other user claim
//! whatever it asks for. A `sector_identifier_uri` is fetched (from a loopback server the
//! operator allows) and one that does not list every redirect URI is refused.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use latchkey_core::claims::ClaimMapper;
use latchkey_core::{
    AccessTokenFormat, ClaimSource, ClaimsConfig, Client, ClientType, SubjectType, TenantId, TokenTarget,
};
use latchkey_keys::Alg;
use latchkey_store::{ClientRepo as _, NewClient, UserRepo as _};
use latchkey_tests::TestServer;
use latchkey_tests::admin::{call, with_role};
use latchkey_tests::browser::{Browser, setup};
use latchkey_tests::logout::Receiver;
use latchkey_tests::oidc::{
    POST_LOGOUT, REDIRECT, SECRET, authorize, enc, jwt_claims, query, refresh, register_with,
    rp_http as http, tenant,
};
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreSubjectIdentifierType, CoreUserInfoClaims,
};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, ProviderMetadataWithLogout, RedirectUrl, Scope, TokenResponse,
};
use serde_json::{Value, json};

/// Redirect URIs on three hosts' worth of sectors: 127.0.0.1 (two clients) and localhost.
const SAME_HOST: &str = "http://127.0.0.1:9000/other";
const OTHER_HOST: &str = "http://localhost:8000/cb";

fn tid(s: &TestServer) -> TenantId {
    tenant(s, "acme").id
}

fn alice(s: &TestServer) -> String {
    s.state
        .db
        .user_by_username(&tid(s), "alice")
        .unwrap()
        .unwrap()
        .id
        .to_string()
}

/// A first-party confidential client of `acme` with `redirect` as its only redirect URI.
fn portal(
    s: &TestServer,
    redirect: &str,
    format: AccessTokenFormat,
    adjust: impl FnOnce(&mut NewClient),
) -> Client {
    register_with(s, "acme", ClientType::Confidential, true, format, |n| {
        n.redirect_uris = vec![redirect.to_owned()];
        n.scopes.push("groups".into());
        adjust(n);
    })
}

fn pairwise(n: &mut NewClient) {
    n.settings.subject_type = SubjectType::Pairwise;
}

/// What the relying party holds after one sign-in.
struct SignedIn {
    /// The verified ID token's `sub`.
    sub: String,
    id_token: String,
    access_token: String,
    refresh_token: Option<String>,
    /// UserInfo as the library read it, after checking its `sub` against the ID token's.
    userinfo: CoreUserInfoClaims,
}

/// The `openidconnect` relying party's sign-in for client `id` (with `secret`) at `redirect`,
/// asking for `scopes`; `b` signs alice in the first time and is remembered after.
async fn sign_in(
    s: &TestServer,
    b: &mut Browser,
    (id, secret): (&str, &str),
    redirect: &str,
    scopes: &[&str],
) -> SignedIn {
    let meta = ProviderMetadataWithLogout::discover_async(IssuerUrl::new(s.issuer("acme")).unwrap(), &http)
        .await
        .unwrap();
    assert!(
        meta.subject_types_supported()
            .contains(&CoreSubjectIdentifierType::Pairwise),
        "discovery offers pairwise subjects"
    );
    let client = CoreClient::from_provider_metadata(
        meta,
        ClientId::new(id.to_owned()),
        Some(ClientSecret::new(secret.to_owned())),
    )
    .set_redirect_uri(RedirectUrl::new(redirect.to_owned()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut req = client.authorize_url(
        CoreAuthenticationFlow::AuthorizationCode,
        CsrfToken::new_random,
        Nonce::new_random,
    );
    for sc in scopes {
        req = req.add_scope(Scope::new((*sc).into()));
    }
    let (url, _, nonce) = req.set_pkce_challenge(challenge).url();
    let path = url.as_str().strip_prefix(&s.base_url).unwrap();
    let back = authorize(s, b, path, "acme", true).await;
    let tokens = client
        .exchange_code(AuthorizationCode::new(query(&back)["code"].clone()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .unwrap();
    let id_token = tokens.id_token().unwrap();
    let sub = id_token
        .claims(&client.id_token_verifier(), &nonce)
        .unwrap()
        .subject()
        .clone();
    let userinfo: CoreUserInfoClaims = client
        .user_info(tokens.access_token().clone(), Some(sub.clone()))
        .unwrap()
        .request_async(&http)
        .await
        .unwrap();
    SignedIn {
        sub: sub.to_string(),
        id_token: id_token.to_string(),
        access_token: tokens.access_token().secret().clone(),
        refresh_token: tokens.refresh_token().map(|r| r.secret().clone()),
        userinfo,
    }
}

async fn sign_in_as(s: &TestServer, b: &mut Browser, c: &Client, redirect: &str) -> SignedIn {
    sign_in(s, b, (c.client_id.as_str(), SECRET), redirect, &["email"]).await
}

/// The value OIDC Core §8.1 says a client of `sector` gets for alice, with the tenant's salt.
fn expected(s: &TestServer, sector: &str) -> String {
    let salt = s.state.keys.pairwise_salt(&tid(s)).unwrap();
    latchkey_oidc::subject::pairwise(&salt, sector, &alice(s))
}

async fn userinfo(s: &TestServer, at: &str) -> (u16, Value) {
    let res = TestServer::client()
        .get(s.url("/t/acme/userinfo"))
        .bearer_auth(at)
        .send()
        .await
        .unwrap();
    let st = res.status().as_u16();
    (st, res.json().await.unwrap_or(Value::Null))
}

async fn introspect(s: &TestServer, c: &Client, token: &str) -> Value {
    TestServer::client()
        .post(s.url("/t/acme/introspect"))
        .basic_auth(c.client_id.as_str(), Some(SECRET))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn pairwise_sub_differs_per_sector_and_is_stable(s: &TestServer) {
    setup(s, "acme").await;
    let a = portal(s, REDIRECT, AccessTokenFormat::Jwt, pairwise);
    let same_sector = portal(s, SAME_HOST, AccessTokenFormat::Jwt, pairwise);
    let other_sector = portal(s, OTHER_HOST, AccessTokenFormat::Jwt, pairwise);
    let public = portal(s, REDIRECT, AccessTokenFormat::Jwt, |_| {});
    let mut b = Browser::default();
    let first = sign_in_as(s, &mut b, &a, REDIRECT).await;
    let again = sign_in_as(s, &mut b, &a, REDIRECT).await;
    let same = sign_in_as(s, &mut b, &same_sector, SAME_HOST).await;
    let other = sign_in_as(s, &mut b, &other_sector, OTHER_HOST).await;
    let plain = sign_in_as(s, &mut b, &public, REDIRECT).await;
    let id = alice(s);
    assert_eq!(plain.sub, id, "a public client is told the user's id");
    assert_ne!(first.sub, id, "a pairwise client is not");
    assert_eq!(first.sub, again.sub, "signing in again gives the same sub");
    assert_eq!(first.sub, same.sub, "one sector (host 127.0.0.1), one sub");
    assert_ne!(first.sub, other.sub, "another sector (localhost), another sub");
    assert_ne!(other.sub, id);
    assert_eq!(first.sub, expected(s, "127.0.0.1"));
    assert_eq!(other.sub, expected(s, "localhost"));
    // A new browser session, a new sign-in with the password: still the same.
    let later = sign_in_as(s, &mut Browser::default(), &a, REDIRECT).await;
    assert_eq!(later.sub, first.sub);
    // The access token and a refreshed ID token say the same; the stored token keeps the id.
    let at = jwt_claims(&first.access_token);
    assert_eq!(at["sub"], first.sub.as_str());
    let row = latchkey_store::OAuthRepo::token(&s.state.db, &tid(s), at["jti"].as_str().unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(row.user_id.unwrap().as_str(), id);
    let (st, body) = refresh(s, &a, first.refresh_token.as_deref().unwrap()).await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(
        jwt_claims(body["id_token"].as_str().unwrap())["sub"],
        first.sub.as_str()
    );
    assert_eq!(
        jwt_claims(body["access_token"].as_str().unwrap())["sub"],
        first.sub.as_str()
    );
}

async fn pairwise_access_tokens_work_and_a_changed_sub_is_refused(s: &TestServer) {
    setup(s, "acme").await;
    let a = portal(s, REDIRECT, AccessTokenFormat::Jwt, pairwise);
    let opaque = portal(s, OTHER_HOST, AccessTokenFormat::Opaque, pairwise);
    let mut b = Browser::default();
    let got = sign_in_as(s, &mut b, &a, REDIRECT).await;
    assert_eq!(
        got.userinfo.subject().as_str(),
        got.sub,
        "the library matched userinfo's sub"
    );
    let (st, info) = userinfo(s, &got.access_token).await;
    assert_eq!((st, info["sub"].as_str()), (200, Some(got.sub.as_str())));
    let seen = introspect(s, &a, &got.access_token).await;
    assert_eq!(
        (seen["active"].as_bool(), seen["sub"].as_str()),
        (Some(true), Some(got.sub.as_str()))
    );
    let seen = introspect(s, &a, got.refresh_token.as_deref().unwrap()).await;
    assert_eq!(
        seen["sub"],
        got.sub.as_str(),
        "a refresh token names the user the same way"
    );
    // An opaque token of a pairwise client: introspection says its own sector's value.
    let o = sign_in_as(s, &mut b, &opaque, OTHER_HOST).await;
    let seen = introspect(s, &opaque, &o.access_token).await;
    assert_eq!(
        (seen["active"].as_bool(), seen["sub"].as_str()),
        (Some(true), Some(o.sub.as_str()))
    );
    assert_ne!(o.sub, got.sub);
    // SECURITY: a token whose `sub` no longer matches its stored row is refused, even signed
    // with the tenant's own key (an attacker can't; this checks the row check itself).
    let forge = |sub: &str| {
        let mut claims = jwt_claims(&got.access_token);
        claims["sub"] = json!(sub);
        s.state.keys.sign(&tid(s), Alg::ES256, "at+jwt", &claims).unwrap()
    };
    let (st, _) = userinfo(s, &forge(&got.sub)).await;
    assert_eq!(st, 200, "re-signed as it was, the token still works");
    for (what, sub) in [
        ("another sector's value", o.sub.clone()),
        (
            "another user's value",
            latchkey_oidc::subject::pairwise(
                &s.state.keys.pairwise_salt(&tid(s)).unwrap(),
                "127.0.0.1",
                "some-other-user",
            ),
        ),
        ("a made-up value", "x".repeat(43)),
    ] {
        let token = forge(&sub);
        let (st, _) = userinfo(s, &token).await;
        assert_eq!(st, 401, "{what}");
        assert_eq!(introspect(s, &a, &token).await["active"], false, "{what}");
    }
}

async fn logout_tokens_and_id_token_hints_speak_the_clients_sub(s: &TestServer) {
    setup(s, "acme").await;
    let clock: std::sync::Arc<dyn latchkey_core::Clock> = std::sync::Arc::new(latchkey_core::SystemClock);
    let receiver = Receiver::start(&s.issuer("acme"), clock).await;
    let client = portal(s, REDIRECT, AccessTokenFormat::Jwt, |n| {
        pairwise(n);
        n.settings.backchannel_logout_uri = Some(receiver.uri());
    });
    receiver.expect_audience(client.client_id.as_str());
    let mut browser = Browser::default();
    let got = sign_in_as(s, &mut browser, &client, REDIRECT).await;
    // A hint naming the signed-in user by the client's pairwise value ends the session at once.
    let path = format!(
        "/t/acme/end-session?id_token_hint={}&post_logout_redirect_uri={}",
        enc(&got.id_token),
        enc(POST_LOGOUT)
    );
    let (st, h, page) = browser.get(s, &path).await;
    assert_eq!(st.as_u16(), 303, "trusted, not asked: {page}");
    assert!(h["location"].to_str().unwrap().starts_with(POST_LOGOUT));
    latchkey_server::deliver_due(&s.state).await.unwrap();
    let told = receiver.wait_for(1).await;
    assert_eq!(told.len(), 1, "{:?}", receiver.outcomes());
    assert_eq!(
        told[0]["sub"],
        got.sub.as_str(),
        "the logout token says the client's sub"
    );
}

/// Alice's ID token, userinfo, access token and introspection for a client with `allowed`
/// (and a static mapper `tier`), asking for profile, email and groups.
async fn released(s: &TestServer, allowed: Option<&[&str]>) -> [Value; 4] {
    let tier = ClaimMapper {
        claim: "tier".into(),
        source: ClaimSource::Value(json!("gold")),
        scope: None,
        tokens: TokenTarget::ALL.to_vec(),
    };
    let c = portal(s, REDIRECT, AccessTokenFormat::Jwt, |n| {
        n.settings.allowed_claims = allowed.map(|a| a.iter().map(|c| (*c).to_owned()).collect());
        n.settings.claims = ClaimsConfig {
            mappers: vec![tier],
            ..ClaimsConfig::default()
        };
    });
    let scopes = ["profile", "email", "groups"];
    let got = sign_in(
        s,
        &mut Browser::default(),
        (c.client_id.as_str(), SECRET),
        REDIRECT,
        &scopes,
    )
    .await;
    let (st, info) = userinfo(s, &got.access_token).await;
    assert_eq!(st, 200);
    let seen = introspect(s, &c, &got.access_token).await;
    [
        jwt_claims(&got.id_token),
        info,
        jwt_claims(&got.access_token),
        seen,
    ]
}

async fn the_allow_list_holds_against_scope_requests(s: &TestServer) {
    setup(s, "acme").await;
    // Without a list the scopes release the profile, the groups and the mapped claim…
    let [id, info, at, _] = released(s, None).await;
    for c in [&id, &info] {
        assert!(
            c.get("preferred_username").is_some() && c.get("updated_at").is_some(),
            "{c}"
        );
        assert!(c.get("groups").is_some() && c.get("tier").is_some(), "{c}");
    }
    assert!(at.get("tier").is_some() && at.get("groups").is_some(), "{at}");
    // …with `email` only, nothing else, wherever the client looks.
    let [id, info, at, seen] = released(s, Some(&["email"])).await;
    let capped = [
        "name",
        "preferred_username",
        "updated_at",
        "email_verified",
        "groups",
        "tier",
    ];
    for (place, c) in [
        ("ID token", &id),
        ("userinfo", &info),
        ("access token", &at),
        ("introspection", &seen),
    ] {
        for claim in capped {
            assert!(c.get(claim).is_none(), "{place} carries {claim}: {c}");
        }
    }
    assert_eq!(id["email"], "alice@acme.test");
    assert_eq!(info["email"], "alice@acme.test");
    for protocol in [
        "iss",
        "sub",
        "aud",
        "exp",
        "iat",
        "nonce",
        "auth_time",
        "at_hash",
        "sid",
    ] {
        assert!(id.get(protocol).is_some(), "the ID token keeps {protocol}");
    }
    assert!(at.get("scope").is_some() && at.get("client_id").is_some());
    assert_eq!(seen["active"], true);
    // The store checks the names: a protocol claim can't be listed.
    let err = s
        .state
        .db
        .create_client(&tid(s), "test", &{
            let mut n = latchkey_tests::oidc::new_client(ClientType::Confidential);
            n.settings.allowed_claims = Some(vec!["sub".into()]);
            n
        })
        .unwrap_err();
    assert!(err.to_string().contains("protocol claim"), "{err}");
}

/// Serves `body` at every path of a loopback port; the count says how many requests came.
async fn serve(body: String) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/sector.json", listener.local_addr().unwrap());
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf).await;
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(body.as_bytes()).await;
        }
    });
    (url, hits)
}

/// A pairwise client with redirect URIs on two hosts, over the admin API.
fn multi_host(sector_uri: Option<&str>) -> String {
    let mut settings = json!({"subject_type": "pairwise"});
    if let Some(u) = sector_uri {
        settings["sector_identifier_uri"] = json!(u);
    }
    json!({
        "name": "Partner",
        "redirect_uris": [REDIRECT, OTHER_HOST],
        "grant_types": ["authorization_code"],
        "scopes": ["openid", "email"],
        "first_party": true,
        "settings": settings,
    })
    .to_string()
}

fn clients(s: &TestServer) -> usize {
    s.state.db.list_clients(&tid(s)).unwrap().len()
}

async fn a_sector_identifier_uri_must_list_every_redirect_uri(s: &TestServer) {
    setup(s, "acme").await;
    let admin = with_role(s, &tid(s), "tenant-admin");
    let (good, hits) = serve(json!([REDIRECT, OTHER_HOST, "https://elsewhere.example/cb"]).to_string()).await;
    let (short, _) = serve(json!([REDIRECT]).to_string()).await;
    // Two hosts and no sector: refused, as OIDC Core §8.1 says.
    let (st, body) = call(
        s,
        "POST",
        "/admin/t/acme/clients",
        &admin,
        Some(&multi_host(None)),
    )
    .await;
    assert_eq!(st, 400, "{body}");
    assert!(body.to_string().contains("several hosts"), "{body}");
    // A document that lacks a redirect URI: refused, naming it; nothing is registered.
    let before = clients(s);
    let (st, body) = call(
        s,
        "POST",
        "/admin/t/acme/clients",
        &admin,
        Some(&multi_host(Some(&short))),
    )
    .await;
    assert_eq!(st, 422, "{body}");
    assert!(body.to_string().contains(OTHER_HOST), "{body}");
    assert_eq!(clients(s), before);
    // One that lists them all: registered, and its host is the sector.
    let (st, made) = call(
        s,
        "POST",
        "/admin/t/acme/clients",
        &admin,
        Some(&multi_host(Some(&good))),
    )
    .await;
    assert_eq!(st, 201, "{made}");
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1);
    let (id, secret) = (
        made["client_id"].as_str().unwrap(),
        made["client_secret"].as_str().unwrap(),
    );
    let got = sign_in(s, &mut Browser::default(), (id, secret), OTHER_HOST, &["email"]).await;
    assert_eq!(
        got.sub,
        expected(s, "127.0.0.1"),
        "the sector is the document's host"
    );
    // A change of name fetches nothing; a redirect URI the document lacks is refused.
    let at = format!("/admin/t/acme/clients/{id}");
    let (st, body) = call(s, "PATCH", &at, &admin, Some(r#"{"name": "Partner portal"}"#)).await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(
        hits.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "nothing fetched"
    );
    let patch = json!({"redirect_uris": [REDIRECT, OTHER_HOST, "http://localhost:9000/new"]}).to_string();
    let (st, body) = call(s, "PATCH", &at, &admin, Some(&patch)).await;
    assert_eq!(st, 422, "{body}");
    assert!(body.to_string().contains("http://localhost:9000/new"), "{body}");
    let stored = s
        .state
        .db
        .client(&tid(s), &latchkey_core::ClientId(id.into()))
        .unwrap()
        .unwrap();
    assert_eq!(stored.redirect_uris, [REDIRECT, OTHER_HOST], "unchanged");
    // A public client has no sector.
    let patch = r#"{"settings": {"subject_type": null}}"#;
    let (st, body) = call(s, "PATCH", &at, &admin, Some(patch)).await;
    assert_eq!(st, 400, "{body}");
    assert!(body.to_string().contains("only a pairwise client"), "{body}");
}

/// Tenants as code: a file's pairwise client is checked like one made over the API (its sector
/// document fetched before planning), and exporting and applying again changes nothing.
async fn tenant_files_check_sector_documents_and_round_trip_the_settings(s: &TestServer) {
    setup(s, "acme").await;
    let admin = with_role(s, &tid(s), "tenant-admin");
    let (good, hits) = serve(json!([REDIRECT, OTHER_HOST]).to_string()).await;
    let (short, _) = serve(json!([REDIRECT]).to_string()).await;
    let file = |uri: &str| {
        json!({"tenant": "acme", "clients": [{
            "name": "Partner", "redirect_uris": [REDIRECT, OTHER_HOST],
            "grant_types": ["authorization_code"], "scopes": ["openid", "email"],
            "settings": {"subject_type": "pairwise", "sector_identifier_uri": uri, "allowed_claims": ["email"]},
        }]})
        .to_string()
    };
    let (st, body) = call(s, "POST", "/admin/t/acme/apply", &admin, Some(&file(&short))).await;
    assert_eq!(st, 400, "{body}");
    let told = body.to_string();
    assert!(
        told.contains("clients[0].settings.sector_identifier_uri") && told.contains(OTHER_HOST),
        "{body}"
    );
    assert_eq!(clients(s), 0, "nothing applied");
    let (st, body) = call(s, "POST", "/admin/t/acme/apply", &admin, Some(&file(&good))).await;
    assert_eq!(st, 200, "{body}");
    let (st, exported) = call(s, "GET", "/admin/t/acme/export", &admin, None).await;
    assert_eq!(st, 200);
    let settings = &exported["clients"][0]["settings"];
    assert_eq!(
        (
            &settings["subject_type"],
            &settings["sector_identifier_uri"],
            &settings["allowed_claims"]
        ),
        (&json!("pairwise"), &json!(good), &json!(["email"])),
        "{exported}"
    );
    let fetched = hits.load(std::sync::atomic::Ordering::SeqCst);
    let path = "/admin/t/acme/apply?dry_run=true";
    let (st, plan) = call(s, "POST", path, &admin, Some(&exported.to_string())).await;
    assert_eq!((st.as_u16(), &plan["changes"]), (200, &json!([])), "{plan}");
    assert_eq!(
        hits.load(std::sync::atomic::Ordering::SeqCst),
        fetched,
        "nothing new to fetch"
    );
}

/// SECURITY: without the operator's `outbound_allow_private`, a sector_identifier_uri on
/// loopback is never fetched; the answer is the generic 422 of every failed fetch.
async fn a_loopback_sector_identifier_uri_is_not_fetched_by_default(s: &TestServer) {
    setup(s, "acme").await;
    let admin = with_role(s, &tid(s), "tenant-admin");
    let (url, hits) = serve(json!([REDIRECT, OTHER_HOST]).to_string()).await;
    let (st, body) = call(
        s,
        "POST",
        "/admin/t/acme/clients",
        &admin,
        Some(&multi_host(Some(&url))),
    )
    .await;
    assert_eq!(st, 422, "{body}");
    assert!(body.to_string().contains("could not be fetched"), "{body}");
    assert_eq!(
        hits.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "no connection was made"
    );
    assert_eq!(clients(s), 0);
}

latchkey_tests::e2e!(
    pairwise_sub_differs_per_sector_and_is_stable,
    pairwise_access_tokens_work_and_a_changed_sub_is_refused,
    the_allow_list_holds_against_scope_requests,
    a_loopback_sector_identifier_uri_is_not_fetched_by_default,
);

// The sector documents and the logout receiver listen on loopback: the operator allows it.
latchkey_tests::e2e_with!(
    loopback_allowed,
    &[
        ("LATCHKEY_OUTBOUND_ALLOW_PRIVATE", "127.0.0.1"),
        ("LATCHKEY_MAIL_POLL_SECS", "3600"),
    ],
    a_sector_identifier_uri_must_list_every_redirect_uri,
    tenant_files_check_sector_documents_and_round_trip_the_settings,
    logout_tokens_and_id_token_hints_speak_the_clients_sub,
);
