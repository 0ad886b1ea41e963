//! Several nodes on one database (issue 23): a change made on one node, or by the CLI, reaches
//! the others' caches through the change feed within a second, on both backends: a client's
//! redirect URIs, the tenant (policy, name), a signing-key rotation, and a replaced master key.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use latchkey_core::{AccessTokenFormat, ClientType};
use latchkey_keys::{Alg, KeyRing, MasterKey};
use latchkey_store::{ClientRepo, TenantRepo};
use latchkey_tests::Backend;
use latchkey_tests::TestServer;
use latchkey_tests::browser::setup;
use latchkey_tests::oidc::{authorize_path, register, tenant};
use std::time::{Duration, Instant};

/// Polls `check` until it holds and returns how long that took; fails after `limit`.
async fn within<F, Fut>(limit: Duration, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return start.elapsed();
        }
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn status(s: &TestServer, path: &str) -> u16 {
    TestServer::client()
        .get(s.url(path))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn changes_reach_every_node_within_a_second(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("master.b64");
    let old = MasterKey::generate().unwrap();
    std::fs::write(&key_file, old.to_base64()).unwrap();
    let command = format!("cat {}", key_file.display());
    let from_command = [
        ("LATCHKEY_MASTER_KEY", ""),
        ("LATCHKEY_MASTER_KEY_COMMAND", command.as_str()),
    ];
    let Some((a, db)) = TestServer::start_on(backend, &from_command) else {
        return;
    };
    let sessions = a.state.config.session_store.clone();
    let b = TestServer::start_with(&[
        ("LATCHKEY_DATABASE_URL", db.url.as_str()),
        ("LATCHKEY_SESSION_STORE", sessions.as_str()),
        from_command[0],
        from_command[1],
    ])
    .unwrap();
    setup(&a, "acme").await;
    let c = register(&a, "acme", ClientType::Public, false, AccessTokenFormat::Jwt);
    let t = tenant(&a, "acme");
    let path = authorize_path(&c, &[]);
    assert_eq!(
        status(&b, &path).await,
        303,
        "node B knows (and caches) the client"
    );

    // A client's redirect URIs, changed elsewhere (here: node A's store, as the CLI would).
    a.state
        .db
        .update_client(&t.id, "test", &c.client_id, None, &|c| {
            let mut c = c.clone();
            c.redirect_uris = vec!["http://127.0.0.1:8000/moved".into()];
            Ok(c)
        })
        .unwrap();
    let took = within(
        Duration::from_secs(1),
        "the old redirect URI refused on node B",
        || async { status(&b, &path).await == 400 },
    )
    .await;
    eprintln!("client change seen by the other node after {took:?}");

    tenant_change_reaches(&a, &b, &t).await;

    // A signing-key rotation on node A is published by node B.
    assert_eq!(status(&b, "/t/acme/jwks").await, 200, "node B caches the ring");
    let pending = a.state.keys.rotate(&t.id, Alg::ES256, "test").unwrap();
    let took = within(Duration::from_secs(1), "the new key in node B's JWKS", || async {
        let jwks = TestServer::client()
            .get(b.url("/t/acme/jwks"))
            .send()
            .await
            .unwrap();
        jwks.text().await.unwrap().contains(&pending)
    })
    .await;
    eprintln!("key rotation served by the other node after {took:?}");

    master_key_replaced(&a, &b, &key_file, &old, &pending).await;
}

/// The tenant (its policy and name; cached 5 s) changed on node A is served by node B.
async fn tenant_change_reaches(a: &TestServer, b: &TestServer, t: &latchkey_core::Tenant) {
    let page = |s: &TestServer| {
        let url = s.url("/t/acme/login");
        async move {
            TestServer::client()
                .get(url)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    assert!(page(b).await.contains("acme Corp"), "node B caches the tenant");
    a.state
        .db
        .update_tenant(
            &t.id,
            "test",
            &latchkey_store::TenantUpdate {
                display_name: Some("Acme Renamed".into()),
                ..latchkey_store::TenantUpdate::default()
            },
        )
        .unwrap();
    let took = within(Duration::from_secs(1), "the new name on node B", || async {
        page(b).await.contains("Acme Renamed")
    })
    .await;
    eprintln!("tenant change seen by the other node after {took:?}");
}

/// The master key replaced (the operator updates the secret, then re-wraps): both nodes take
/// the new key from their command, without a restart.
async fn master_key_replaced(
    a: &TestServer,
    b: &TestServer,
    key_file: &std::path::Path,
    old: &MasterKey,
    pending: &str,
) {
    let t = tenant(a, "acme");
    // take the new key from their command, without a restart.
    let new = MasterKey::generate().unwrap();
    std::fs::write(key_file, new.to_base64()).unwrap();
    KeyRing::rotate_master(&a.state.db, old, &new, "test").unwrap();
    let took = within(
        Duration::from_secs(2),
        "both nodes on the new master key",
        || async { a.state.keys.master_key_id() == new.id && b.state.keys.master_key_id() == new.id },
    )
    .await;
    eprintln!("master key replacement taken by both nodes after {took:?}");
    // With nothing cached, node B unwraps the tenant's data key under the new master key.
    b.state.keys.invalidate_all();
    let jwks = TestServer::client()
        .get(b.url("/t/acme/jwks"))
        .send()
        .await
        .unwrap();
    assert_eq!(jwks.status(), 200);
    assert!(jwks.text().await.unwrap().contains(pending));
    assert!(
        b.state
            .keys
            .seal(
                &t.id,
                latchkey_keys::Aad {
                    tenant: t.id.as_str(),
                    table: "t",
                    column: "c",
                    row: "r"
                },
                b"x"
            )
            .is_ok()
    );
}

/// A node whose key source still yields the old key keeps it, says why, and does not write a
/// data key the new master key cannot open.
async fn a_node_without_the_new_master_key_adds_no_data_key(backend: Backend) {
    let old = MasterKey::generate().unwrap();
    let old_b64 = old.to_base64();
    let Some((a, _db)) = TestServer::start_on(backend, &[("LATCHKEY_MASTER_KEY", old_b64.as_str())]) else {
        return;
    };
    setup(&a, "acme").await;
    let t = tenant(&a, "acme");
    let new = MasterKey::generate().unwrap();
    KeyRing::rotate_master(&a.state.db, &old, &new, "test").unwrap();
    // The node saw the change (it follows the feed) but its environment still holds the old key.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(a.state.keys.master_key_id(), old.id);
    let before = a.state.db.data_keys(&t.id).unwrap().len();
    let err = a.state.keys.rotate_dek(&t.id, "test", 10, Some(1)).unwrap_err();
    assert!(err.to_string().contains("was replaced"), "{err}");
    assert_eq!(
        a.state.db.data_keys(&t.id).unwrap().len(),
        before,
        "nothing written"
    );
    assert!(
        a.state
            .db
            .data_keys(&t.id)
            .unwrap()
            .iter()
            .all(|k| k.kek_id == new.id),
        "every data key still opens under the new master key"
    );
}

latchkey_tests::on_both_backends!(
    changes_reach_every_node_within_a_second,
    a_node_without_the_new_master_key_adds_no_data_key,
);
