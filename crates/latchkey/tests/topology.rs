//! Issue 23's topology test: three `latchkey serve` processes on one PostgreSQL database and one
//! Redis, behind HAProxy (Debian's), under steady mixed load through the proxy: refresh chains,
//! sign-ins with code flows, introspection. One node is killed with SIGKILL (errors only for
//! what was in flight on it, no refresh chain lost, no acknowledged token lost), restarted, and
//! another stopped with SIGTERM (no error at all: it drains). Then a client change and a key
//! rotation made through one node's admin API are enforced by the others within a second.
//! Figures are printed
//! (`cargo test -p latchkey --test topology -- --nocapture`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use latchkey_tests::browser::PASSWORD;
use latchkey_tests::remote::{
    Portal, REDIRECT, REGISTER_PORTAL, authorize_path, code_flow, introspect, redeem, serve, token,
};
use latchkey_tests::{PrivateRedis, Remote, Site, TestServer, free_port};
use serde_json::Value;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CHAINS: usize = 4;
const FLOWS: usize = 2;

struct Cluster {
    env: Vec<(String, String)>,
    dir: tempfile::TempDir,
    nodes: Vec<(u16, Option<Child>)>,
    haproxy: Child,
    proxy: Remote,
}

impl Cluster {
    fn cli(&self, args: &[&str]) -> String {
        self.cli_on(None, args)
    }

    /// `cli` against another database than the cluster's (a restore target).
    fn cli_on(&self, database: Option<&str>, args: &[&str]) -> String {
        let out = Command::new(env!("CARGO_BIN_EXE_latchkey"))
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .envs(database.map(|d| ("LATCHKEY_DATABASE_URL", d)))
            .env("LATCHKEY_LOG", "error")
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(out.status.success(), "latchkey {args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    }

    fn start_node(&mut self, i: usize) {
        let bin = std::path::Path::new(env!("CARGO_BIN_EXE_latchkey"));
        self.nodes[i].1 = Some(serve(bin, self.nodes[i].0, &self.env, self.dir.path()));
    }

    fn signal(&mut self, i: usize, signal: &str) -> Child {
        let child = self.nodes[i].1.take().unwrap();
        let ok = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
        child
    }

    fn node(&self, i: usize) -> Remote {
        Remote(format!("http://127.0.0.1:{}", self.nodes[i].0))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for (_, child) in &mut self.nodes {
            if let Some(c) = child {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        let _ = self.haproxy.kill();
        let _ = self.haproxy.wait();
    }
}

fn haproxy_config(front: u16, nodes: &[u16]) -> String {
    let servers = nodes.iter().enumerate().fold(String::new(), |mut out, (i, p)| {
        use std::fmt::Write as _;
        let _ = writeln!(out, "    server n{i} 127.0.0.1:{p}");
        out
    });
    format!(
        "global\n    maxconn 1024\n\
         defaults\n    mode http\n    timeout connect 1s\n    timeout client 20s\n    timeout server 20s\n\
         \x20   retries 2\n    option redispatch 1\n    retry-on conn-failure empty-response\n\
         frontend web\n    bind 127.0.0.1:{front}\n    option forwardfor\n    default_backend latchkey\n\
         backend latchkey\n    balance roundrobin\n    option httpchk\n    http-check send meth GET uri /readyz\n\
         \x20   http-check expect status 200\n    default-server check inter 300ms fall 1 rise 2\n{servers}"
    )
}

/// Every failed request: when, what, and why.
#[derive(Default)]
struct Errors(Mutex<Vec<(Instant, &'static str, String)>>);

impl Errors {
    fn push(&self, what: &'static str, why: String) {
        self.0.lock().unwrap().push((Instant::now(), what, why));
    }
    fn between(&self, from: Instant, to: Instant) -> Vec<(Instant, &'static str, String)> {
        let all = self.0.lock().unwrap();
        all.iter()
            .filter(|(at, _, _)| *at >= from && *at < to)
            .cloned()
            .collect()
    }
}

/// The shared state of the load: stop flag, errors, acknowledged refresh tokens.
struct Load {
    stop: AtomicBool,
    errors: Errors,
    ok: std::sync::atomic::AtomicU64,
    /// Each chain's newest acknowledged refresh token.
    chains: Vec<Mutex<String>>,
    /// Refresh tokens from code flows the proxy acknowledged (never used: must stay active).
    issued: Mutex<Vec<String>>,
}

fn spawn_load(
    load: &Arc<Load>,
    proxy: &Remote,
    portal: &Arc<Portal>,
    access: String,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    for i in 0..CHAINS {
        let (load, proxy, portal) = (load.clone(), proxy.clone(), portal.clone());
        tasks.push(tokio::spawn(async move {
            while !load.stop.load(Ordering::Relaxed) {
                let rt = load.chains[i].lock().unwrap().clone();
                match token(
                    &proxy,
                    &portal,
                    &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
                )
                .await
                {
                    Ok(t) => {
                        t["refresh_token"]
                            .as_str()
                            .unwrap()
                            .clone_into(&mut load.chains[i].lock().unwrap());
                        load.ok.fetch_add(1, Ordering::Relaxed);
                    }
                    // The chain goes on from the newest token it was given.
                    Err(e) => load.errors.push("refresh", e),
                }
            }
        }));
    }
    for i in 0..FLOWS {
        let (load, proxy, portal) = (load.clone(), proxy.clone(), portal.clone());
        tasks.push(tokio::spawn(async move {
            let (user, ip) = (format!("user{i}"), format!("10.0.0.{}", i + 1));
            while !load.stop.load(Ordering::Relaxed) {
                let issued = match code_flow(&proxy, &portal, &user, &ip).await {
                    Ok(code) => redeem(&proxy, &portal, &code).await,
                    Err(e) => Err(e),
                };
                match issued {
                    Ok(t) => {
                        load.issued
                            .lock()
                            .unwrap()
                            .push(t["refresh_token"].as_str().unwrap().to_owned());
                        load.ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => load.errors.push("code flow", e),
                }
            }
        }));
    }
    let (load, proxy, portal) = (load.clone(), proxy.clone(), portal.clone());
    tasks.push(tokio::spawn(async move {
        while !load.stop.load(Ordering::Relaxed) {
            match introspect(&proxy, &portal, &access).await {
                Ok(true) => {
                    load.ok.fetch_add(1, Ordering::Relaxed);
                }
                Ok(false) => load.errors.push("introspection", "inactive".into()),
                Err(e) => load.errors.push("introspection", e),
            }
        }
    }));
    tasks
}

/// Polls every live node until `check` holds on all of them; the time it took.
async fn on_every_node<F, Fut>(c: &Cluster, nodes: &[usize], what: &str, check: F) -> Duration
where
    F: Fn(Remote) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    for &i in nodes {
        while !check(c.node(i)).await {
            assert!(
                start.elapsed() < Duration::from_secs(3),
                "{what}: node {i} not within 3 s"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    start.elapsed()
}

fn setup() -> Option<(Cluster, PrivateRedis, Portal)> {
    if Command::new("haproxy").arg("-v").output().is_err() {
        assert!(
            std::env::var("CI").is_err(),
            "haproxy is missing (scripts/install-deps.sh --test)"
        );
        eprintln!("SKIPPED: haproxy is not installed");
        return None;
    }
    let (db_url, _, _) = latchkey_tests::create_pg_database()?;
    let redis = PrivateRedis::start()?;
    let front = free_port();
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let master = latchkey_keys::MasterKey::generate().unwrap().to_base64();
    let env: Vec<(String, String)> = [
        ("LATCHKEY_DATABASE_URL", db_url.as_str()),
        ("LATCHKEY_SESSION_STORE", redis.url().as_str()),
        ("LATCHKEY_MASTER_KEY", master.as_str()),
        ("LATCHKEY_PUBLIC_URL", &format!("http://localhost:{front}")),
        ("LATCHKEY_TRUSTED_PROXIES", "127.0.0.1"),
        ("LATCHKEY_DRAIN_DELAY_SECS", "2"),
        ("LATCHKEY_SHUTDOWN_TIMEOUT_SECS", "10"),
        ("LATCHKEY_WORKERS", "2"),
        ("LATCHKEY_LOG", "warn"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("haproxy.cfg");
    std::fs::write(&cfg, haproxy_config(front, &ports)).unwrap();
    let haproxy = Command::new("haproxy")
        .args(["-db", "-f"])
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut c = Cluster {
        env,
        dir,
        nodes: ports.iter().map(|p| (*p, None)).collect(),
        haproxy,
        proxy: Remote(format!("http://127.0.0.1:{front}")),
    };
    let portal = seed(&c);
    for i in 0..3 {
        c.start_node(i);
    }
    Some((c, redis, portal))
}

/// The tenant, one user per load task and the portal (a first-party confidential client).
fn seed(c: &Cluster) -> Portal {
    c.cli(&["migrate"]);
    c.cli(&["tenant", "create", "acme"]);
    for i in 0..FLOWS.max(CHAINS) {
        let out = Command::new(env!("CARGO_BIN_EXE_latchkey"))
            .args([
                "user",
                "create",
                "--tenant",
                "acme",
                "--username",
                &format!("user{i}"),
                "--password-stdin",
            ])
            .envs(c.env.iter().map(|(k, v)| (k, v)))
            .current_dir(c.dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write as _;
                child.stdin.take().unwrap().write_all(PASSWORD.as_bytes())?;
                child.wait()
            })
            .unwrap();
        assert!(out.success());
    }
    Portal::from_json(&c.cli(REGISTER_PORTAL))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_behind_haproxy_lose_nothing_when_one_dies() {
    let Some((mut c, _redis, portal)) = setup() else {
        return;
    };
    let portal = Arc::new(portal);
    // HAProxy marks the nodes up after two good checks.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let mut chains = Vec::new();
    let mut access = String::new();
    for i in 0..CHAINS {
        let code = code_flow(&c.proxy, &portal, &format!("user{i}"), &format!("10.0.1.{i}"))
            .await
            .unwrap();
        let t = redeem(&c.proxy, &portal, &code).await.unwrap();
        access = t["access_token"].as_str().unwrap().to_owned();
        chains.push(Mutex::new(t["refresh_token"].as_str().unwrap().to_owned()));
    }
    let load = Arc::new(Load {
        stop: AtomicBool::new(false),
        errors: Errors::default(),
        ok: 0.into(),
        chains,
        issued: Mutex::default(),
    });
    let tasks = spawn_load(&load, &c.proxy, &portal, access);
    let acknowledged = kill_then_drain(&mut c, &load, tasks).await;
    nothing_lost(&c, &load, &portal).await;
    backup_restores(&c, &portal, &load, acknowledged).await;
    invalidation_reaches_every_node(&mut c, &portal).await;
}

/// Under the load: SIGKILL one node (only what was in flight on it may fail), start it again,
/// then SIGTERM another (it drains: nothing fails). Stops the load.
async fn kill_then_drain(c: &mut Cluster, load: &Load, tasks: Vec<tokio::task::JoinHandle<()>>) -> usize {
    tokio::time::sleep(Duration::from_secs(2)).await;
    // A backup under the load: what was acknowledged before it started must be in it.
    let acknowledged = load.issued.lock().unwrap().len();
    let file = c.dir.path().join("under-load.backup");
    let started = Instant::now();
    tokio::task::block_in_place(|| c.cli(&["backup", "-o", file.to_str().unwrap()]));
    eprintln!("backup under load took {:?}", started.elapsed());
    // The users' keys, written after the data (crypto-shredding: docs/privacy.md#erasure).
    let vault = c.dir.path().join("under-load.vault");
    tokio::task::block_in_place(|| c.cli(&["backup", "--vault", "-o", vault.to_str().unwrap()]));
    tokio::time::sleep(Duration::from_secs(1)).await;

    // SIGKILL: only what was in flight on that node may fail.
    let killed_at = Instant::now();
    let mut dead = c.signal(1, "-KILL");
    dead.wait().unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let kill_errors = load.errors.between(killed_at, Instant::now());
    c.start_node(1);
    tokio::time::sleep(Duration::from_secs(1)).await;

    // SIGTERM: the node drains; nothing fails.
    let before_drain = load.ok.load(Ordering::Relaxed);
    let drained_at = Instant::now();
    let draining = c.signal(2, "-TERM");
    let stopped = tokio::task::spawn_blocking(move || {
        let mut d = draining;
        d.wait().unwrap()
    })
    .await
    .unwrap();
    let drain_took = drained_at.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let drain_errors = load.errors.between(drained_at, Instant::now());
    let during_drain = load.ok.load(Ordering::Relaxed) - before_drain;
    load.stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    assert!(stopped.success(), "the drained node exits 0: {stopped:?}");
    let total_errors = load.errors.0.lock().unwrap().len();
    eprintln!(
        "load: {} requests answered; SIGKILL: {} errors {:?}; SIGTERM: {} errors, {during_drain} answered while it drained, stopped after {drain_took:?}; {total_errors} errors in all",
        load.ok.load(Ordering::Relaxed),
        kill_errors.len(),
        kill_errors
            .iter()
            .map(|(_, w, e)| format!("{w}: {e}"))
            .collect::<Vec<_>>(),
        drain_errors.len(),
    );
    // At most one request per load task can be in flight on the killed node.
    assert!(kill_errors.len() <= CHAINS + FLOWS + 1, "{kill_errors:?}");
    assert!(
        kill_errors
            .iter()
            .all(|(at, _, _)| at.duration_since(killed_at) < Duration::from_secs(1)),
        "errors only right after the kill"
    );
    assert!(drain_errors.is_empty(), "{drain_errors:?}");
    assert_eq!(total_errors, kill_errors.len(), "no error outside the kill");
    assert!(during_drain > 0);
    acknowledged
}

/// The backup taken under load, restored into a fresh PostgreSQL database and a fresh SQLite
/// file: each verifies, serves every user's sign-in, and knows every refresh token that was
/// acknowledged before the backup began.
async fn backup_restores(c: &Cluster, portal: &Portal, load: &Load, acknowledged: usize) {
    let file = c.dir.path().join("under-load.backup");
    let (pg, _, _) = latchkey_tests::create_pg_database().unwrap();
    let lite = format!("sqlite://{}", c.dir.path().join("restored.db").display());
    let issued: Vec<String> = load.issued.lock().unwrap()[..acknowledged].to_vec();
    assert!(acknowledged > 0, "code flows were acknowledged before the backup");
    for target in [pg.as_str(), lite.as_str()] {
        let vault = c.dir.path().join("under-load.vault");
        c.cli_on(
            Some(target),
            &[
                "restore",
                "-i",
                file.to_str().unwrap(),
                "--vault",
                vault.to_str().unwrap(),
            ],
        );
        let verified = c.cli_on(Some(target), &["audit", "verify", "--tenant", "acme"]);
        assert!(verified.contains("is intact"), "{verified}");
        let port = free_port();
        let mut env = c.env.clone();
        env.push(("LATCHKEY_DATABASE_URL".into(), target.to_owned()));
        let bin = std::path::Path::new(env!("CARGO_BIN_EXE_latchkey"));
        let mut node = serve(bin, port, &env, c.dir.path());
        let restored = Remote(format!("http://127.0.0.1:{port}"));
        for rt in &issued {
            assert!(
                introspect(&restored, portal, rt).await.unwrap(),
                "a refresh token acknowledged before the backup is missing from it"
            );
        }
        for i in 0..CHAINS.max(FLOWS) {
            let code = code_flow(&restored, portal, &format!("user{i}"), &format!("10.0.2.{i}"))
                .await
                .unwrap_or_else(|e| panic!("user{i} cannot sign in after the restore: {e}"));
            redeem(&restored, portal, &code).await.unwrap();
        }
        let _ = node.kill();
        let _ = node.wait();
        eprintln!(
            "restored into {}: {acknowledged} refresh tokens active, every user signs in",
            target.split(':').next().unwrap_or_default()
        );
    }
}

async fn nothing_lost(c: &Cluster, load: &Load, portal: &Portal) {
    // No chain lost: each chain's newest acknowledged token still refreshes.
    for chain in &load.chains {
        let rt = chain.lock().unwrap().clone();
        token(
            &c.proxy,
            portal,
            &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
        )
        .await
        .unwrap_or_else(|e| panic!("a refresh chain was lost: {e}"));
    }
    // No acknowledged write lost: every token a code flow returned is active.
    let issued = load.issued.lock().unwrap().clone();
    assert!(!issued.is_empty());
    for rt in &issued {
        assert!(
            introspect(&c.proxy, portal, rt).await.unwrap(),
            "an issued refresh token is gone"
        );
    }
    eprintln!(
        "{} refresh chains and {} issued refresh tokens intact",
        load.chains.len(),
        issued.len()
    );
}

/// A client change and a key rotation made through one node's admin API are enforced by the
/// other nodes within 1 s.
async fn invalidation_reaches_every_node(c: &mut Cluster, portal: &Portal) {
    c.start_node(2);
    let old = authorize_path(portal, REDIRECT);
    let status = |n: Remote, path: String| async move {
        TestServer::client()
            .get(n.url(&path))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    for i in 0..3 {
        assert_eq!(
            status(c.node(i), old.clone()).await,
            303,
            "node {i} has the client cached"
        );
    }
    // Changed through node 0's admin API; the other nodes must enforce it.
    let admin: Value = serde_json::from_str(&c.cli(&[
        "admin-token",
        "create",
        "--tenant",
        "acme",
        "--name",
        "ops",
        "--role",
        "tenant-admin",
        "--json",
    ]))
    .unwrap();
    let bearer = admin["token"].as_str().unwrap().to_owned();
    let patched = TestServer::client()
        .patch(c.node(0).url(&format!("/admin/t/acme/clients/{}", portal.id)))
        .bearer_auth(&bearer)
        .header("content-type", "application/merge-patch+json")
        .body(r#"{"redirect_uris": ["http://127.0.0.1:8000/moved"]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200, "{:?}", patched.text().await);
    let took = on_every_node(c, &[1, 2], "redirect change", |n| {
        let old = old.clone();
        async move { status(n, old).await == 400 }
    })
    .await;
    eprintln!("client change made through node 0 enforced by nodes 1 and 2 after {took:?}");
    assert!(took < Duration::from_secs(1), "{took:?}");

    for i in 0..3 {
        assert_eq!(status(c.node(i), "/t/acme/jwks".into()).await, 200);
    }
    // Rotated through node 1's admin API; the other nodes must publish it.
    let rotated: Value = TestServer::client()
        .post(c.node(1).url("/admin/t/acme/keys/rotate"))
        .bearer_auth(&bearer)
        .json(&serde_json::json!({"alg": "ES256"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kid = rotated["kid"].as_str().expect("the new kid").to_owned();
    let took = on_every_node(c, &[0, 2], "key rotation", |n| {
        let kid = kid.clone();
        async move {
            let jwks = TestServer::client()
                .get(n.url("/t/acme/jwks"))
                .send()
                .await
                .unwrap();
            jwks.text().await.unwrap().contains(&kid)
        }
    })
    .await;
    eprintln!("key rotation made through node 1 served by nodes 0 and 2 after {took:?}");
    assert!(took < Duration::from_secs(1), "{took:?}");
    let verified = c.cli(&["audit", "verify", "--tenant", "acme"]);
    assert!(verified.contains("is intact"), "{verified}");
}
