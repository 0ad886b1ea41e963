//! OIDC fixtures: clients registered straight in the store, and a browser that walks the
//! authorization flow (sign-in form, consent) until the redirect to the client.

#![allow(clippy::unwrap_used, clippy::missing_panics_doc)] // test kit: a failed unwrap is a failed test

use crate::browser::{Browser, PASSWORD, hidden};
use crate::{Site, TestServer};
use latchkey_core::{
    AccessTokenFormat, AuthMethod, Client, ClientSettings, ClientType, GrantType, Tenant, TenantPolicy,
};
use latchkey_oidc::pkce::s256;
use latchkey_store::{ClientRepo, NewClient, TenantRepo, TenantUpdate};
use reqwest::StatusCode;
use serde_json::Value;

pub const REDIRECT: &str = "http://127.0.0.1:8000/cb";
pub const POST_LOGOUT: &str = "http://127.0.0.1:8000/bye";
pub const SECRET: &str = "portal-secret-0123456789abcdefghijklmnop";

pub fn tenant(s: &TestServer, slug: &str) -> Tenant {
    s.state.db.tenant_by_slug(slug).unwrap().unwrap()
}

/// Changes tenant `slug`'s policy with `f`.
pub fn update_policy(s: &TestServer, slug: &str, f: impl FnOnce(&mut TenantPolicy)) {
    let t = tenant(s, slug);
    let mut policy = t.policy.clone();
    f(&mut policy);
    s.state
        .db
        .update_tenant(
            &t.id,
            "test",
            &TenantUpdate {
                policy: Some(policy),
                ..TenantUpdate::default()
            },
        )
        .unwrap();
}

/// The `openidconnect` crate's HTTP client, on the workspace's reqwest; never follows
/// redirects (the relying-party suites look at them).
pub async fn rp_http(req: openidconnect::HttpRequest) -> Result<openidconnect::HttpResponse, reqwest::Error> {
    let mut r = TestServer::client().request(req.method().clone(), req.uri().to_string());
    for (k, v) in req.headers() {
        r = r.header(k, v);
    }
    let res = r.body(req.body().clone()).send().await?;
    let mut out = http::Response::builder().status(res.status());
    for (k, v) in res.headers() {
        out = out.header(k, v);
    }
    Ok(out.body(res.bytes().await?.to_vec()).unwrap())
}

/// Registers a client; confidential ones use `client_secret_basic` with `SECRET`.
pub fn register(
    s: &TestServer,
    slug: &str,
    kind: ClientType,
    first_party: bool,
    format: AccessTokenFormat,
) -> Client {
    register_with(s, slug, kind, first_party, format, |_| {})
}

/// `register`, with `adjust` changing the registration first.
pub fn register_with(
    s: &TestServer,
    slug: &str,
    kind: ClientType,
    first_party: bool,
    format: AccessTokenFormat,
    adjust: impl FnOnce(&mut NewClient),
) -> Client {
    let t = tenant(s, slug);
    let mut new = new_client(kind);
    new.access_token_format = format;
    new.first_party = first_party;
    adjust(&mut new);
    s.state.db.create_client(&t.id, "test", &new).unwrap()
}

/// The registration `register` makes for `kind`, before any adjustment.
pub fn new_client(kind: ClientType) -> NewClient {
    let confidential = kind == ClientType::Confidential;
    let mut grants = vec![GrantType::AuthorizationCode, GrantType::RefreshToken];
    if confidential {
        grants.push(GrantType::ClientCredentials);
    }
    NewClient {
        name: format!("{kind} portal"),
        client_type: kind,
        auth_method: if confidential {
            AuthMethod::ClientSecretBasic
        } else {
            AuthMethod::None
        },
        secret_hash: confidential.then(|| latchkey_core::sha256_hex(SECRET.as_bytes())),
        redirect_uris: vec![REDIRECT.into()],
        post_logout_redirect_uris: vec![POST_LOGOUT.into()],
        grant_types: grants,
        scopes: ["openid", "profile", "email", "offline_access", "reports.read"]
            .map(String::from)
            .to_vec(),
        access_token_format: AccessTokenFormat::Jwt,
        require_pkce: true,
        introspect_others: false,
        first_party: false,
        jwks_uri: None,
        jwks: None,
        settings: ClientSettings::default(),
    }
}

/// A JWT's claims, read without checking anything (the suites check signatures elsewhere).
pub fn jwt_claims(jwt: &str) -> Value {
    use base64::Engine as _;
    let part = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap()
}

/// The query parameters of a URL.
pub fn query(url: &str) -> std::collections::HashMap<String, String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Follows same-site redirects from `path` (signing alice in and allowing consent on the way,
/// when `sign_in`/`allow`) until the browser is sent to the client; returns that URL.
pub async fn authorize(s: &impl Site, b: &mut Browser, path: &str, slug: &str, allow: bool) -> String {
    let mut next = path.to_owned();
    for _ in 0..10 {
        let (st, h, page) = b.get(s, &next).await;
        if st.is_redirection() {
            let loc = h.get("location").unwrap().to_str().unwrap().to_owned();
            if !loc.starts_with('/') {
                return loc;
            }
            next = loc;
            continue;
        }
        assert_eq!(st, 200, "{next}: {page}");
        if page.contains("name=\"password\"") {
            let form = [
                ("csrf", hidden(&page, "csrf")),
                ("interaction", hidden(&page, "interaction")),
                ("username", "alice".to_owned()),
                ("password", PASSWORD.to_owned()),
                ("return_to", String::new()),
            ];
            let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let (st, h, page) = b.post(s, &format!("/t/{slug}/login"), &pairs, &[]).await;
            assert!(st.is_redirection(), "sign-in failed: {page}");
            h.get("location").unwrap().to_str().unwrap().clone_into(&mut next);
        } else if page.contains("authorize/consent") {
            let decision = if allow { "allow" } else { "deny" };
            let form = [
                ("csrf", hidden(&page, "csrf")),
                ("interaction", hidden(&page, "interaction")),
                ("decision", decision.to_owned()),
            ];
            let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let (st, h, page) = b
                .post(s, &format!("/t/{slug}/authorize/consent"), &pairs, &[])
                .await;
            assert!(st.is_redirection(), "consent failed: {page}");
            return h.get("location").unwrap().to_str().unwrap().to_owned();
        } else {
            panic!("unexpected page at {next}: {page}");
        }
    }
    panic!("too many redirects from {path}");
}

pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

pub fn enc(v: &str) -> String {
    url::form_urlencoded::byte_serialize(v.as_bytes()).collect()
}

pub fn authorize_path(c: &Client, extra: &[(&str, &str)]) -> String {
    let mut params: Vec<(String, String)> = [
        ("client_id", c.client_id.as_str()),
        ("redirect_uri", REDIRECT),
        ("response_type", "code"),
        ("scope", "openid email offline_access"),
        ("state", "st"),
        ("nonce", "n-0S6_WzA2Mj"),
        ("code_challenge_method", "S256"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    params.push(("code_challenge".into(), s256(VERIFIER)));
    for (k, v) in extra {
        params.retain(|(n, _)| n != k);
        if !v.is_empty() {
            params.push(((*k).to_owned(), (*v).to_owned()));
        }
    }
    let q: Vec<String> = params.iter().map(|(k, v)| format!("{k}={}", enc(v))).collect();
    format!("/t/acme/authorize?{}", q.join("&"))
}

/// Signs alice in and returns a fresh code for `c`.
pub async fn code(s: &impl Site, b: &mut Browser, c: &Client) -> String {
    let back = authorize(s, b, &authorize_path(c, &[]), "acme", true).await;
    query(&back)["code"].clone()
}

pub async fn token(s: &impl Site, c: &Client, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let mut req = TestServer::client().post(s.url("/t/acme/token")).form(form);
    if c.client_type == ClientType::Confidential {
        req = req.basic_auth(c.client_id.as_str(), Some(SECRET));
    }
    let res = req.send().await.unwrap();
    let st = res.status();
    assert_eq!(res.headers()["cache-control"], "no-store");
    (st, res.json().await.unwrap())
}

pub async fn redeem(s: &impl Site, c: &Client, code: &str) -> (StatusCode, Value) {
    token(
        s,
        c,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("client_id", c.client_id.as_str()),
        ],
    )
    .await
}

pub async fn refresh(s: &impl Site, c: &Client, rt: &str) -> (StatusCode, Value) {
    token(
        s,
        c,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt),
            ("client_id", c.client_id.as_str()),
        ],
    )
    .await
}

pub async fn userinfo(s: &TestServer, slug: &str, at: &str) -> StatusCode {
    TestServer::client()
        .get(s.url(&format!("/t/{slug}/userinfo")))
        .bearer_auth(at)
        .send()
        .await
        .unwrap()
        .status()
}
