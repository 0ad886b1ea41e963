//! Redis Sentinel (issue 23): a primary, a replica and three Sentinels on loopback. The session
//! store finds the primary through the Sentinels; the primary is killed with SIGKILL under a
//! steady write load; the Sentinels promote the replica and the store follows it by itself.
//! Every session written before the kill is still there, writes succeed again, and the error
//! window is printed (`cargo test -p latchkey-tests --test sentinel -- --nocapture`).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use latchkey_core::{OsRng, TenantId};
use latchkey_session::{RedisStore, SessionId, SessionStore};
use latchkey_tests::{free_port, session, wait_for_port};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const HOUR: Duration = Duration::from_secs(3600);

struct Processes(Vec<Child>);

impl Drop for Processes {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn redis(dir: &std::path::Path, args: &[&str]) -> Child {
    Command::new("redis-server")
        .args(args)
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// A primary, its replica and three Sentinels watching it as `main`: the processes, the two
/// data ports and the store's URL.
fn start(dir: &std::path::Path) -> (Processes, u16, u16, String) {
    let (primary, replica) = (free_port(), free_port());
    let mut ps = Processes(Vec::new());
    for (port, of) in [(primary, None), (replica, Some(primary.to_string()))] {
        let d = dir.join(port.to_string());
        std::fs::create_dir(&d).unwrap();
        let p = port.to_string();
        let mut args = vec![
            "--port",
            &p,
            "--bind",
            "127.0.0.1",
            "--appendonly",
            "yes",
            "--save",
            "",
        ];
        if let Some(of) = &of {
            args.extend(["--replicaof", "127.0.0.1", of]);
        }
        ps.0.push(redis(&d, &args));
        assert!(wait_for_port(port, Duration::from_secs(10)));
    }
    let mut sentinels = Vec::new();
    for _ in 0..3 {
        let port = free_port();
        let conf = dir.join(format!("sentinel-{port}.conf"));
        std::fs::write(
            &conf,
            format!(
                "port {port}\nbind 127.0.0.1\nsentinel monitor main 127.0.0.1 {primary} 2\n\
                 sentinel down-after-milliseconds main 1000\nsentinel failover-timeout main 10000\n"
            ),
        )
        .unwrap();
        ps.0.push(
            Command::new("redis-server")
                .arg(&conf)
                .arg("--sentinel")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        assert!(wait_for_port(port, Duration::from_secs(10)));
        sentinels.push(format!("127.0.0.1:{port}"));
    }
    let url = format!("redis-sentinel://{}/main", sentinels.join(","));
    (ps, primary, replica, url)
}

async fn connection(port: u16) -> redis::aio::MultiplexedConnection {
    redis::Client::open(format!("redis://127.0.0.1:{port}"))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// Waits until the replica has every write the primary acknowledged (WAIT on the primary).
async fn replicated(primary: u16) {
    let mut direct = connection(primary).await;
    let synced = Instant::now();
    loop {
        let acked: i64 = redis::cmd("WAIT")
            .arg(1)
            .arg(200)
            .query_async(&mut direct)
            .await
            .unwrap();
        if acked == 1 {
            return;
        }
        assert!(
            synced.elapsed() < Duration::from_secs(20),
            "the replica never caught up"
        );
    }
}

/// Writes a session every 10 ms until `stop`: how many succeeded, and when each failed.
fn write_load(store: Arc<RedisStore>, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<(u32, Vec<Instant>)> {
    tokio::spawn(async move {
        let t = TenantId("t".into());
        let (mut ok, mut errors) = (0u32, Vec::new());
        while !stop.load(Ordering::Relaxed) {
            let id = SessionId::generate(&OsRng);
            match store.put_session(&t, &id, &session("t", "load"), HOUR).await {
                Ok(()) => ok += 1,
                Err(_) => errors.push(Instant::now()),
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        (ok, errors)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_follows_a_sentinel_failover_and_keeps_its_sessions() {
    if Command::new("redis-server").arg("--version").output().is_err() {
        assert!(std::env::var("CI").is_err(), "redis-server is missing");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (mut ps, primary, replica, url) = start(dir.path());
    let store = Arc::new(RedisStore::connect(&url, "sentinel-test:").await.unwrap());
    let t = TenantId("t".into());
    let mut before = Vec::new();
    for i in 0..50 {
        let id = SessionId::generate(&OsRng);
        store
            .put_session(&t, &id, &session("t", &format!("u{i}")), HOUR)
            .await
            .unwrap();
        before.push(id);
    }
    replicated(primary).await;
    let stop = Arc::new(AtomicBool::new(false));
    let load = write_load(store.clone(), stop.clone());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let killed = Instant::now();
    let mut old = ps.0.remove(0);
    old.kill().unwrap();
    old.wait().unwrap();
    // Writes succeed again once the Sentinels promoted the replica.
    let recovered = loop {
        let id = SessionId::generate(&OsRng);
        if store
            .put_session(&t, &id, &session("t", "probe"), HOUR)
            .await
            .is_ok()
            && store.get_session(&t, &id).await.unwrap().is_some()
        {
            break killed.elapsed();
        }
        assert!(
            killed.elapsed() < Duration::from_secs(30),
            "no failover within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let (ok, errors) = load.await.unwrap();
    let window = match (errors.first(), errors.last()) {
        (Some(a), Some(b)) => b.duration_since(*a),
        _ => Duration::ZERO,
    };
    eprintln!(
        "Sentinel failover: writes succeed again {recovered:?} after the kill; {} failed writes over {window:?}, {ok} succeeded",
        errors.len()
    );
    for id in &before {
        assert!(
            store.get_session(&t, id).await.unwrap().is_some(),
            "a session written before the failover is gone"
        );
    }
    assert!(errors.iter().all(|e| *e >= killed), "no errors before the kill");
    let info: String = redis::cmd("INFO")
        .arg("replication")
        .query_async(&mut connection(replica).await)
        .await
        .unwrap();
    assert!(
        info.lines().any(|l| l.trim() == "role:master"),
        "the replica was promoted: {info}"
    );
}
