//! One contract for the short-lived state backends, run against memory and Redis.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use latchkey_core::{OsRng, SystemClock, TenantId, UserId};
use latchkey_session::{Ephemeral, MemoryStore, SessionId};
use latchkey_tests::session;
use std::sync::Arc;
use std::time::Duration;

const HOUR: Duration = Duration::from_secs(3600);

async fn sessions_are_stored_by_hash_and_scoped_to_their_tenant(s: Arc<dyn Ephemeral>) {
    let (a, b) = (TenantId("ta".into()), TenantId("tb".into()));
    let id = SessionId::generate(&OsRng);
    s.put_session(&a, &id, &session("ta", "alice"), HOUR)
        .await
        .unwrap();
    assert_eq!(
        s.get_session(&a, &id).await.unwrap(),
        Some(session("ta", "alice"))
    );
    assert_eq!(
        s.get_session(&b, &id).await.unwrap(),
        None,
        "tenant B must not see tenant A's session"
    );
    assert!(!s.delete_session(&b, &id).await.unwrap());
    assert!(
        s.get_session(&a, &SessionId::generate(&OsRng))
            .await
            .unwrap()
            .is_none()
    );
    assert!(s.delete_session(&a, &id).await.unwrap());
    assert_eq!(s.get_session(&a, &id).await.unwrap(), None);
    assert!(!s.delete_session(&a, &id).await.unwrap());
}

async fn sessions_expire(s: Arc<dyn Ephemeral>) {
    let t = TenantId("ta".into());
    let id = SessionId::generate(&OsRng);
    s.put_session(&t, &id, &session("ta", "alice"), Duration::from_millis(100))
        .await
        .unwrap();
    assert!(s.get_session(&t, &id).await.unwrap().is_some());
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert!(s.get_session(&t, &id).await.unwrap().is_none());
}

async fn sign_out_everywhere_removes_only_that_users_sessions(s: Arc<dyn Ephemeral>) {
    let t = TenantId("ta".into());
    let ids: Vec<SessionId> = (0..3).map(|_| SessionId::generate(&OsRng)).collect();
    for id in &ids {
        s.put_session(&t, id, &session("ta", "alice"), HOUR)
            .await
            .unwrap();
    }
    let bob = SessionId::generate(&OsRng);
    s.put_session(&t, &bob, &session("ta", "bob"), HOUR)
        .await
        .unwrap();
    let listed = s.list_user_sessions(&t, &UserId("alice".into())).await.unwrap();
    assert_eq!(listed.len(), 3);
    assert!(
        listed
            .iter()
            .all(|(k, _)| ids.iter().any(|id| id.storage_key() == *k)),
        "listed by storage key"
    );
    assert!(
        !s.delete_session_by_key(&t, &"0".repeat(64)).await.unwrap(),
        "an unknown key deletes nothing"
    );
    assert!(s.delete_session_by_key(&t, &listed[0].0).await.unwrap());
    assert_eq!(
        s.list_user_sessions(&t, &UserId("alice".into()))
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        s.delete_user_sessions(&t, &UserId("alice".into())).await.unwrap(),
        2
    );
    for id in &ids {
        assert!(s.get_session(&t, id).await.unwrap().is_none());
    }
    assert!(s.get_session(&t, &bob).await.unwrap().is_some());
    assert_eq!(
        s.delete_user_sessions(&t, &UserId("alice".into())).await.unwrap(),
        0
    );
}

async fn one_time_values_are_taken_once(s: Arc<dyn Ephemeral>) {
    let (a, b) = (TenantId("ta".into()), TenantId("tb".into()));
    assert!(s.put_once(&a, "code-1", b"grant", HOUR).await.unwrap());
    assert!(
        !s.put_once(&a, "code-1", b"other", HOUR).await.unwrap(),
        "an existing key is not overwritten"
    );
    assert_eq!(
        s.take(&b, "code-1").await.unwrap(),
        None,
        "another tenant can't take it"
    );
    assert_eq!(s.peek(&b, "code-1").await.unwrap(), None, "nor read it");
    for _ in 0..2 {
        assert_eq!(
            s.peek(&a, "code-1").await.unwrap().as_deref(),
            Some(&b"grant"[..]),
            "a peek leaves the value in place"
        );
    }
    assert_eq!(
        s.take(&a, "code-1").await.unwrap().as_deref(),
        Some(&b"grant"[..])
    );
    assert_eq!(
        s.take(&a, "code-1").await.unwrap(),
        None,
        "a second take gets nothing"
    );
    assert_eq!(s.peek(&a, "code-1").await.unwrap(), None, "taken means gone");
}

/// `replace` changes only a present value, in place: nobody can `put_once` around it.
async fn one_time_values_are_replaced_only_when_present(s: Arc<dyn Ephemeral>) {
    let (a, b) = (TenantId("ta".into()), TenantId("tb".into()));
    assert!(
        !s.replace(&a, "idem", b"done", HOUR).await.unwrap(),
        "nothing to replace"
    );
    assert_eq!(s.peek(&a, "idem").await.unwrap(), None, "and nothing created");
    assert!(s.put_once(&a, "idem", b"pending", HOUR).await.unwrap());
    assert!(
        !s.replace(&b, "idem", b"other", HOUR).await.unwrap(),
        "another tenant's"
    );
    assert!(s.replace(&a, "idem", b"done", HOUR).await.unwrap());
    assert!(!s.put_once(&a, "idem", b"again", HOUR).await.unwrap());
    assert_eq!(s.peek(&a, "idem").await.unwrap().as_deref(), Some(&b"done"[..]));
    // The new lifetime applies.
    assert!(
        s.replace(&a, "idem", b"short", Duration::from_millis(100))
            .await
            .unwrap()
    );
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(
        s.peek(&a, "idem").await.unwrap(),
        None,
        "expired with its new lifetime"
    );
}

async fn one_time_values_expire(s: Arc<dyn Ephemeral>) {
    let t = TenantId("ta".into());
    assert!(
        s.put_once(&t, "nonce", b"x", Duration::from_millis(100))
            .await
            .unwrap()
    );
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(s.peek(&t, "nonce").await.unwrap(), None);
    assert_eq!(s.take(&t, "nonce").await.unwrap(), None);
    assert!(
        s.put_once(&t, "nonce", b"y", HOUR).await.unwrap(),
        "an expired key can be set again"
    );
}

async fn of_64_concurrent_takes_exactly_one_wins(s: Arc<dyn Ephemeral>) {
    let t = TenantId("ta".into());
    for round in 0..3 {
        let key = format!("race-{round}");
        assert!(s.put_once(&t, &key, b"prize", HOUR).await.unwrap());
        let tasks: Vec<_> = (0..64)
            .map(|_| {
                let (s, t, key) = (s.clone(), t.clone(), key.clone());
                tokio::spawn(async move { s.take(&t, &key).await.unwrap() })
            })
            .collect();
        let mut winners = 0;
        for task in tasks {
            if task.await.unwrap().is_some() {
                winners += 1;
            }
        }
        assert_eq!(winners, 1, "round {round}");
    }
}

async fn rate_counters_count_per_window_and_reset(s: Arc<dyn Ephemeral>) {
    let (a, b) = (TenantId("ta".into()), TenantId("tb".into()));
    let w = Duration::from_millis(300);
    for n in 1..=5 {
        let hit = s.hit(&a, "ip:203.0.113.7", w).await.unwrap();
        assert_eq!(hit.count, n);
        assert!(hit.reset_in <= w && hit.reset_in > Duration::ZERO, "{hit:?}");
    }
    assert_eq!(s.count(&a, "ip:203.0.113.7").await.unwrap(), 5);
    let left = s
        .window_left(&a, "ip:203.0.113.7")
        .await
        .unwrap()
        .expect("an open window");
    assert!(left <= w && left > Duration::ZERO, "{left:?}");
    assert_eq!(s.window_left(&b, "ip:203.0.113.7").await.unwrap(), None);
    assert_eq!(
        s.count(&b, "ip:203.0.113.7").await.unwrap(),
        0,
        "counters are per tenant"
    );
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(
        s.hit(&a, "ip:203.0.113.7", w).await.unwrap().count,
        1,
        "a new window starts from one"
    );
    s.reset(&a, "ip:203.0.113.7").await.unwrap();
    assert_eq!(s.count(&a, "ip:203.0.113.7").await.unwrap(), 0);
}

async fn released_hits_are_taken_back_without_going_below_zero(s: Arc<dyn Ephemeral>) {
    let t = TenantId("ta".into());
    s.release(&t, "busy:acct:carol").await.unwrap();
    assert_eq!(s.count(&t, "busy:acct:carol").await.unwrap(), 0);
    assert_eq!(
        s.window_left(&t, "busy:acct:carol").await.unwrap(),
        None,
        "releasing creates no window"
    );
    for _ in 0..3 {
        s.hit(&t, "busy:acct:carol", HOUR).await.unwrap();
    }
    s.release(&t, "busy:acct:carol").await.unwrap();
    assert_eq!(s.count(&t, "busy:acct:carol").await.unwrap(), 2);
    assert!(
        s.window_left(&t, "busy:acct:carol").await.unwrap().is_some(),
        "the window stays"
    );
    // 64 reservations taken and released in parallel leave the counter where it was.
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let (s, t) = (s.clone(), t.clone());
            tokio::spawn(async move {
                s.hit(&t, "busy:acct:carol", HOUR).await.unwrap();
                s.release(&t, "busy:acct:carol").await.unwrap();
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(s.count(&t, "busy:acct:carol").await.unwrap(), 2);
    for _ in 0..5 {
        s.release(&t, "busy:acct:carol").await.unwrap();
    }
    assert_eq!(
        s.count(&t, "busy:acct:carol").await.unwrap(),
        0,
        "never below zero"
    );
    assert_eq!(s.hit(&t, "busy:acct:carol", HOUR).await.unwrap().count, 1);
}

async fn concurrent_hits_are_all_counted(s: Arc<dyn Ephemeral>) {
    let t = TenantId("ta".into());
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let (s, t) = (s.clone(), t.clone());
            tokio::spawn(async move { s.hit(&t, "acct:alice", HOUR).await.unwrap().count })
        })
        .collect();
    let mut counts = Vec::new();
    for task in tasks {
        counts.push(task.await.unwrap());
    }
    counts.sort_unstable();
    assert_eq!(
        counts,
        (1..=64).collect::<Vec<u64>>(),
        "every hit gets its own count"
    );
}

async fn ping_answers(s: Arc<dyn Ephemeral>) {
    s.ping().await.unwrap();
}

macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(std::sync::Arc::new(super::MemoryStore::new(std::sync::Arc::new(super::SystemClock)))).await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let Some(store) = latchkey_tests::redis_store().await else { return };
                    super::$name(std::sync::Arc::new(store)).await;
                }
            )*
        }
    };
}

contract!(
    sessions_are_stored_by_hash_and_scoped_to_their_tenant,
    sessions_expire,
    sign_out_everywhere_removes_only_that_users_sessions,
    one_time_values_are_taken_once,
    one_time_values_are_replaced_only_when_present,
    one_time_values_expire,
    of_64_concurrent_takes_exactly_one_wins,
    rate_counters_count_per_window_and_reset,
    concurrent_hits_are_all_counted,
    released_hits_are_taken_back_without_going_below_zero,
    ping_answers,
);

#[tokio::test]
async fn memory_store_follows_the_injected_clock() {
    let clock = Arc::new(latchkey_core::FixedClock::new(1_000_000));
    let s = MemoryStore::new(clock.clone());
    let t = TenantId("t".into());
    let id = SessionId::generate(&OsRng);
    latchkey_session::SessionStore::put_session(&s, &t, &id, &session("t", "u"), Duration::from_secs(60))
        .await
        .unwrap();
    clock.advance_millis(59_999);
    assert!(
        latchkey_session::SessionStore::get_session(&s, &t, &id)
            .await
            .unwrap()
            .is_some()
    );
    clock.advance_millis(1);
    assert!(
        latchkey_session::SessionStore::get_session(&s, &t, &id)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn redis_keys_hold_only_the_session_ids_hash() {
    let Some(store) = latchkey_tests::redis_store().await else {
        return;
    };
    let t = TenantId("ta".into());
    let id = SessionId::generate(&OsRng);
    latchkey_session::SessionStore::put_session(&store, &t, &id, &session("ta", "alice"), HOUR)
        .await
        .unwrap();
    let client = ::redis::Client::open(latchkey_tests::redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = ::redis::cmd("KEYS")
        .arg("latchkey-test:*")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(keys.iter().any(|k| k.ends_with(&id.storage_key())));
    assert!(
        !keys.iter().any(|k| k.contains(id.cookie_value())),
        "the raw session id must never be a key"
    );
    let ttl: i64 = ::redis::cmd("PTTL")
        .arg(keys.iter().find(|k| k.ends_with(&id.storage_key())).unwrap())
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(ttl > 0 && ttl <= 3_600_000, "TTL set with the write: {ttl}");
}

#[tokio::test]
async fn unreachable_redis_is_a_clear_unavailable_error() {
    let err = latchkey_session::RedisStore::connect("redis://127.0.0.1:1", "x:")
        .await
        .err()
        .expect("must fail");
    assert!(
        matches!(err, latchkey_session::SessionError::Unavailable(_)),
        "{err}"
    );
}

/// PEM of DER bytes under `label`.
fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

/// A private CA, and a certificate and key (PEM) it signed for `names`.
struct Pki {
    ca: String,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

impl Pki {
    fn new() -> Self {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Latchkey test CA");
        let ca = pem("CERTIFICATE", params.self_signed(&key).unwrap().der());
        Pki {
            ca,
            issuer: rcgen::Issuer::new(params, key),
        }
    }

    fn issue(&self, names: &[&str]) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let cert = rcgen::CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &self.issuer)
            .unwrap();
        (
            pem("CERTIFICATE", cert.der()),
            pem("PRIVATE KEY", &key.serialize_der()),
        )
    }
}

/// A `redis-server` speaking only TLS on a free port, with a certificate from `pki` for
/// `localhost`, asking clients for certificates from the same CA.
fn tls_redis(pki: &Pki, dir: &std::path::Path) -> (std::process::Child, u16) {
    let (server_cert, server_key) = pki.issue(&["localhost"]);
    let file = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let port = latchkey_tests::free_port();
    let redis = std::process::Command::new("redis-server")
        .args([
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ])
        .args(["--tls-cert-file", &file("server.pem", &server_cert)])
        .args(["--tls-key-file", &file("server.key", &server_key)])
        .args(["--tls-ca-cert-file", &file("ca.pem", &pki.ca)])
        .args(["--tls-auth-clients", "yes"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("redis-server");
    assert!(latchkey_tests::wait_for_port(
        port,
        std::time::Duration::from_secs(10)
    ));
    (redis, port)
}

/// `rediss://` (issue 23): a private Redis that speaks only TLS and wants client certificates.
/// With its CA and a client certificate the store works; without the CA (system roots), without
/// a client certificate, or over plain `redis://`, connecting fails as Unavailable, not a panic.
#[tokio::test]
async fn rediss_with_a_private_ca_and_a_client_certificate() {
    use latchkey_session::{RedisStore, RedisTls, SessionError};
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    let (mut redis, port) = tls_redis(&pki, dir.path());
    let (client_cert, client_key) = pki.issue(&["latchkey"]);
    let url = format!("rediss://localhost:{port}");
    let tls = RedisTls {
        ca_pem: Some(pki.ca.clone().into_bytes()),
        client: Some((client_cert.into_bytes(), client_key.into_bytes())),
    };
    let store = RedisStore::connect_with(&url, "tls:", &tls)
        .await
        .expect("TLS connect");
    latchkey_session::Ephemeral::ping(&store).await.unwrap();
    let refused = [
        (
            "no client certificate",
            RedisTls {
                client: None,
                ..tls.clone()
            },
            url.clone(),
        ),
        (
            "the system's roots",
            RedisTls {
                ca_pem: None,
                ..tls.clone()
            },
            url.clone(),
        ),
        (
            "plain redis://",
            RedisTls::default(),
            format!("redis://localhost:{port}"),
        ),
    ];
    for (case, tls, url) in refused {
        let err = RedisStore::connect_with(&url, "tls:", &tls)
            .await
            .err()
            .expect(case);
        assert!(matches!(err, SessionError::Unavailable(_)), "{case}: {err}");
    }
    let mixed = RedisStore::connect_with(
        &format!("redis://localhost:{port}"),
        "tls:",
        &RedisTls {
            ca_pem: Some(pki.ca.into_bytes()),
            client: None,
        },
    )
    .await
    .err()
    .expect("TLS settings on redis://");
    assert!(matches!(mixed, SessionError::BadUrl(_)), "{mixed}");
    let _ = redis.kill();
    let _ = redis.wait();
}
