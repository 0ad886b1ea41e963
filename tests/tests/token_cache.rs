//! Issue 26 item 1: each node caches live access tokens (docs/performance.md#token-cache), and a
//! revocation is still immediate: after the revoking call returns, every node sharing the
//! session store refuses the token; a revocation made elsewhere (the CLI, straight in the
//! database) reaches every node through the change feed within a second. Three nodes on one
//! database, on both backends.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use latchkey_core::{AccessTokenFormat, Client, ClientType, NewAuditEvent};
use latchkey_store::OAuthRepo;
use latchkey_tests::browser::{Browser, setup};
use latchkey_tests::oidc::{SECRET, code, redeem, register, tenant};
use latchkey_tests::{Backend, TestServer};
use serde_json::Value;
use std::time::{Duration, Instant};

async fn post(s: &TestServer, path: &str, c: &Client, form: &[(&str, &str)]) -> (u16, Value) {
    let res = TestServer::client()
        .post(s.url(path))
        .basic_auth(c.client_id.as_str(), Some(SECRET))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn client_token(s: &TestServer, c: &Client) -> String {
    let (status, body) = post(s, "/t/acme/token", c, &[("grant_type", "client_credentials")]).await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

async fn active(s: &TestServer, c: &Client, token: &str) -> bool {
    let (status, body) = post(s, "/t/acme/introspect", c, &[("token", token)]).await;
    assert_eq!(status, 200, "{body}");
    body["active"].as_bool().unwrap()
}

/// The node's cache hits so far.
async fn hits(s: &TestServer) -> u64 {
    let text = s.metrics().await;
    text.lines()
        .find_map(|l| l.strip_prefix("latchkey_token_cache_hits_total "))
        .unwrap()
        .parse()
        .unwrap()
}

/// Introspects `token` on every node until each answers from its cache (after its first read
/// of the change feed, every node trusts what it holds).
async fn cached_everywhere(nodes: &[&TestServer], c: &Client, token: &str) {
    for n in nodes {
        let start = Instant::now();
        loop {
            let before = hits(n).await;
            assert!(active(n, c, token).await, "live on {}", n.base_url);
            if hits(n).await > before {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "never cached on {}",
                n.base_url
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn within_a_second(nodes: &[&TestServer], c: &Client, token: &str, what: &str) -> Duration {
    let start = Instant::now();
    for n in nodes {
        while active(n, c, token).await {
            assert!(
                start.elapsed() < Duration::from_secs(1),
                "{what}: still active on {}",
                n.base_url
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    start.elapsed()
}

/// After a revocation: refused by the `others` on their very next request when they share the
/// revoking node's session store (its epochs), else within a second through the feed.
async fn refused_elsewhere(others: &[&TestServer], shared: bool, c: &Client, token: &str) {
    if shared {
        for n in others {
            assert!(!active(n, c, token).await, "refused at once on {}", n.base_url);
        }
    } else {
        // In-process session stores share no epoch: the feed tells the other nodes.
        within_a_second(others, c, token, "through the feed").await;
    }
}

async fn revocation_is_immediate_on_every_node(backend: Backend) {
    let Some((a, db)) = TestServer::start_on(backend, &[]) else {
        return;
    };
    let sessions = a.state.config.session_store.clone();
    let shared = sessions != "memory";
    let master = latchkey_tests::master_of(&db.db).to_base64();
    let node = || {
        TestServer::start_with(&[
            ("LATCHKEY_DATABASE_URL", db.url.as_str()),
            ("LATCHKEY_SESSION_STORE", sessions.as_str()),
            ("LATCHKEY_MASTER_KEY", master.as_str()),
        ])
        .unwrap()
    };
    let (b, c) = (node(), node());
    let all = [&a, &b, &c];
    setup(&a, "acme").await;
    let client = register(
        &a,
        "acme",
        ClientType::Confidential,
        true,
        AccessTokenFormat::Opaque,
    );

    // A client's token, revoked (RFC 7009) on node A.
    let token = client_token(&a, &client).await;
    cached_everywhere(&all, &client, &token).await;
    let (status, _) = post(&a, "/t/acme/revoke", &client, &[("token", token.as_str())]).await;
    assert_eq!(status, 200);
    assert!(
        !active(&a, &client, &token).await,
        "refused by the revoking node at once"
    );
    refused_elsewhere(&[&b, &c], shared, &client, &token).await;

    // A user's access token goes with its grant when the refresh token is revoked.
    let mut browser = Browser::default();
    let code = code(&a, &mut browser, &client).await;
    let (status, tokens) = redeem(&a, &client, &code).await;
    assert_eq!(status.as_u16(), 200, "{tokens}");
    let (at, rt) = (
        tokens["access_token"].as_str().unwrap(),
        tokens["refresh_token"].as_str().unwrap(),
    );
    cached_everywhere(&all, &client, at).await;
    let (status, _) = post(&b, "/t/acme/revoke", &client, &[("token", rt)]).await;
    assert_eq!(status, 200);
    assert!(!active(&b, &client, at).await, "the grant's access token");
    refused_elsewhere(&[&a, &c], shared, &client, at).await;

    // Revoked where no node's epoch is touched (the CLI, an older release): the feed carries it.
    let token = client_token(&c, &client).await;
    cached_everywhere(&all, &client, &token).await;
    let t = tenant(&a, "acme");
    let handle = latchkey_core::sha256_hex(token.as_bytes());
    let event = NewAuditEvent::success(
        "cli:test",
        "oauth.revoke",
        format!("client:{}", client.client_id),
        Value::Null,
    );
    assert!(a.state.db.revoke_token(&t.id, &handle, event).unwrap());
    let took = within_a_second(&all, &client, &token, "a revocation outside the nodes").await;
    eprintln!("a revocation in the database reached every node after {took:?}");
}

latchkey_tests::on_both_backends!(revocation_is_immediate_on_every_node);
