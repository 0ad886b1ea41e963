//! Outages under load (issue 19, items 1 and 3): a private PostgreSQL cluster stopped with
//! `pg_ctl stop -m immediate` and a private `redis-server` killed with SIGKILL, each for 10 s,
//! while clients keep working (client credentials, introspection, refresh chains, sign-ins).
//!
//! During the outage every request is answered within a second (503 with `Retry-After` where it
//! needs the dead part); afterwards every refresh chain continues, nothing acknowledged is lost
//! or brought back, and the first success comes soon after the dependency answers again.

#![allow(clippy::unwrap_used)]

use latchkey_core::{AccessTokenFormat, ClientType};
use latchkey_tests::browser::{Browser, PASSWORD, hidden, setup};
use latchkey_tests::oidc::{self, SECRET};
use latchkey_tests::{PrivatePostgres, PrivateRedis, TestServer, redis_url};
use reqwest::StatusCode;
use serde_json::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The two outage tests each load the machine; they take turns.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const OUTAGE: Duration = Duration::from_secs(10);
/// How long a load client waits for an answer (longer than the server's 3 s database deadline,
/// as a relying party's HTTP client would).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);
const CHAINS: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    ClientCredentials,
    Introspect,
    Refresh,
    SignIn,
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    op: Op,
    start: Instant,
    end: Instant,
    /// 0 when no answer came (transport error or the client's timeout).
    status: u16,
    retry_after: bool,
}

#[derive(Default)]
struct Log {
    samples: Mutex<Vec<Sample>>,
    lost_chains: Mutex<Vec<String>>,
}

impl Log {
    fn record(&self, op: Op, start: Instant, res: &Result<reqwest::Response, reqwest::Error>) {
        let (status, retry_after) = match res {
            Ok(r) => (r.status().as_u16(), r.headers().contains_key("retry-after")),
            Err(_) => (0, false),
        };
        self.samples.lock().unwrap().push(Sample {
            op,
            start,
            end: Instant::now(),
            status,
            retry_after,
        });
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(CLIENT_TIMEOUT)
        .build()
        .unwrap()
}

/// What the load runs against: tenant acme, alice, a confidential client and its chains.
struct Fixture {
    client: latchkey_core::Client,
    access_token: String,
    chains: Vec<String>,
    /// A refresh token whose revocation was acknowledged before the outage.
    revoked: String,
}

async fn fixture(s: &TestServer) -> Fixture {
    setup(s, "acme").await;
    let c = oidc::register(s, "acme", ClientType::Confidential, true, AccessTokenFormat::Jwt);
    let mut chains = Vec::new();
    let mut access_token = String::new();
    for _ in 0..=CHAINS {
        let mut b = Browser::default();
        let code = oidc::code(s, &mut b, &c).await;
        let (st, body) = oidc::redeem(s, &c, &code).await;
        assert_eq!(st, 200, "{body}");
        body["access_token"]
            .as_str()
            .unwrap()
            .clone_into(&mut access_token);
        chains.push(body["refresh_token"].as_str().unwrap().to_owned());
    }
    let revoked = chains.pop().unwrap();
    let res = client()
        .post(s.url("/t/acme/revoke"))
        .basic_auth(c.client_id.as_str(), Some(SECRET))
        .form(&[("token", revoked.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    Fixture {
        client: c,
        access_token,
        chains,
        revoked,
    }
}

/// Starts the load; it runs until `stop` is set.
fn load(
    s: &TestServer,
    f: &Fixture,
    log: &Arc<Log>,
    stop: &Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<String>> {
    let mut tasks = Vec::new();
    for (i, rt) in f.chains.iter().enumerate() {
        let (url, log, stop, c, rt) = (
            s.url("/t/acme/token"),
            log.clone(),
            stop.clone(),
            f.client.clone(),
            rt.clone(),
        );
        tasks.push(tokio::spawn(refresh_chain(i, url, c, rt, log, stop)));
    }
    for op in [Op::ClientCredentials, Op::Introspect, Op::SignIn] {
        for _ in 0..2 {
            let (base, log, stop, c, at) = (
                s.base_url.clone(),
                log.clone(),
                stop.clone(),
                f.client.clone(),
                f.access_token.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let http = client();
                while !stop.load(Ordering::Relaxed) {
                    let start = Instant::now();
                    let res = match op {
                        Op::ClientCredentials => {
                            http.post(format!("{base}/t/acme/token"))
                                .basic_auth(c.client_id.as_str(), Some(SECRET))
                                .form(&[("grant_type", "client_credentials")])
                                .send()
                                .await
                        }
                        Op::Introspect => {
                            http.post(format!("{base}/t/acme/introspect"))
                                .basic_auth(c.client_id.as_str(), Some(SECRET))
                                .form(&[("token", at.as_str())])
                                .send()
                                .await
                        }
                        Op::SignIn => sign_in(&http, &base).await,
                        Op::Refresh => unreachable!("chains run on their own"),
                    };
                    log.record(op, start, &res);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                String::new()
            }));
        }
    }
    tasks
}

/// One client's refresh chain: it keeps the token it holds until an answer gives it the next
/// (a 503 or no answer means: try again with the same token). Returns the token it ends with.
async fn refresh_chain(
    i: usize,
    url: String,
    c: latchkey_core::Client,
    mut rt: String,
    log: Arc<Log>,
    stop: Arc<AtomicBool>,
) -> String {
    let http = client();
    while !stop.load(Ordering::Relaxed) {
        let start = Instant::now();
        let res = http
            .post(&url)
            .basic_auth(c.client_id.as_str(), Some(SECRET))
            .form(&[("grant_type", "refresh_token"), ("refresh_token", rt.as_str())])
            .send()
            .await;
        log.record(Op::Refresh, start, &res);
        let mut pause = 5;
        if let Ok(r) = res {
            let status = r.status();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            if status == StatusCode::OK {
                body["refresh_token"].as_str().unwrap().clone_into(&mut rt);
                pause = 20;
            } else if status != StatusCode::SERVICE_UNAVAILABLE {
                log.lost_chains
                    .lock()
                    .unwrap()
                    .push(format!("chain {i}: {status} {body}"));
                return rt;
            }
        }
        // A paced chain; one that failed tries again soon (recovery is measured on these).
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
    rt
}

/// A password sign-in from a fresh browser; the answer recorded is the POST's (or the first
/// page's when that already failed).
async fn sign_in(http: &reqwest::Client, base: &str) -> Result<reqwest::Response, reqwest::Error> {
    let page = http.get(format!("{base}/t/acme/login")).send().await?;
    if page.status() != StatusCode::OK {
        return Ok(page);
    }
    let cookies: Vec<String> = page
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_owned))
        .collect();
    let html = page.text().await?;
    http.post(format!("{base}/t/acme/login"))
        .header("cookie", cookies.join("; "))
        .form(&[
            ("csrf", hidden(&html, "csrf").as_str()),
            ("username", "alice"),
            ("password", PASSWORD),
            ("return_to", ""),
        ])
        .send()
        .await
}

/// What the load saw, checked against the outage's timeline.
struct Timeline {
    down_at: Instant,
    /// When a fresh connection first got an answer from the restarted dependency.
    answering_at: Instant,
}

fn check(samples: &[Sample], t: &Timeline, needs_dependency: &[Op]) -> String {
    let during: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.start >= t.down_at && s.start < t.answering_at)
        .collect();
    assert!(
        during.len() > 50,
        "the load kept running: {} requests",
        during.len()
    );
    let slowest = during.iter().map(|s| s.end - s.start).max().unwrap();
    assert!(
        // The pool's timeout (5 s) is what this guards against; idle runs see 0.5-0.7 s.
        slowest < Duration::from_secs(2),
        "during the outage every request is answered within 2 s; slowest {slowest:?}"
    );
    for s in &during {
        assert!(
            matches!(s.status, 200 | 303 | 503),
            "during the outage only answers or 503: {s:?}"
        );
        assert!(
            s.status != 503 || s.retry_after,
            "a 503 says when to retry: {s:?}"
        );
    }
    assert!(
        during
            .iter()
            .any(|s| s.status == 503 && needs_dependency.contains(&s.op)),
        "requests that need the dependency got 503"
    );
    for s in samples {
        assert!(
            matches!(s.status, 200 | 303 | 503),
            "never a 5xx but 503, never a refusal from the outage: {s:?}"
        );
    }
    // Recovery: the first request that needs the dependency and succeeds after it answers.
    let first = samples
        .iter()
        .filter(|s| s.op == Op::Refresh && s.status == 200 && s.end > t.answering_at)
        .map(|s| s.end)
        .min()
        .expect("refreshes succeed after the outage");
    let recovery = first.saturating_duration_since(t.answering_at);
    assert!(
        // Without the breaker's probe this waited out the pool's 5 s timeout; on an idle machine
        // it is 1-30 ms, and CI under full load has seen 125 ms: the bound is about the former.
        recovery < Duration::from_millis(500),
        "the first success comes within 500 ms of the dependency answering: {recovery:?}"
    );
    let n503 = during.iter().filter(|s| s.status == 503).count();
    format!(
        "{} requests during the outage ({n503} answered 503), slowest {slowest:?}; first refresh \
         {recovery:?} after the dependency answered",
        during.len()
    )
}

/// After the load: each chain's last token still refreshes, and the revoked one stays revoked.
async fn after(s: &TestServer, f: &Fixture, tasks: Vec<tokio::task::JoinHandle<String>>, log: &Log) {
    let mut ends = Vec::new();
    for t in tasks {
        ends.push(t.await.unwrap());
    }
    let lost = log.lost_chains.lock().unwrap().clone();
    assert!(lost.is_empty(), "no refresh chain is lost: {lost:?}");
    for rt in ends.iter().filter(|rt| !rt.is_empty()) {
        let (st, body) = oidc::refresh(s, &f.client, rt).await;
        assert_eq!(st, 200, "the chain continues: {body}");
    }
    let res: Value = client()
        .post(s.url("/t/acme/introspect"))
        .basic_auth(f.client.client_id.as_str(), Some(SECRET))
        .form(&[("token", f.revoked.as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        res["active"], false,
        "a revocation acknowledged before the outage holds"
    );
}

async fn run_load(
    s: &TestServer,
    f: &Fixture,
    outage: impl AsyncFnOnce() -> Timeline,
) -> (
    Timeline,
    Vec<Sample>,
    Vec<tokio::task::JoinHandle<String>>,
    Arc<Log>,
) {
    let (log, stop) = (Arc::new(Log::default()), Arc::new(AtomicBool::new(false)));
    let tasks = load(s, f, &log, &stop);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let timeline = outage().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    let samples = log.samples.lock().unwrap().clone();
    (timeline, samples, tasks, log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_postgres_outage_under_load_answers_fast_and_loses_nothing() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(pg) = PrivatePostgres::start() else {
        return;
    };
    let s = start(&pg.url(), &redis_url());
    let f = fixture(&s).await;
    let pg = Arc::new(pg);
    let p = pg.clone();
    let (t, samples, tasks, log) = run_load(&s, &f, async move || {
        let down_at = Instant::now();
        let p2 = p.clone();
        tokio::task::spawn_blocking(move || p2.stop_immediately())
            .await
            .unwrap();
        tokio::time::sleep(OUTAGE).await;
        let p2 = p.clone();
        let answering_at = tokio::task::spawn_blocking(move || {
            p2.start_again();
            assert!(p2.answers(Duration::from_secs(30)));
            Instant::now()
        })
        .await
        .unwrap();
        Timeline {
            down_at,
            answering_at,
        }
    })
    .await;
    let summary = check(&samples, &t, &[Op::Refresh, Op::SignIn]);
    eprintln!("PostgreSQL outage: {summary}");
    after(&s, &f, tasks, &log).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_redis_outage_under_load_answers_fast_and_loses_nothing() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(redis) = PrivateRedis::start() else {
        return;
    };
    let Some(pgdb) = latchkey_tests::TestDb::postgres() else {
        return;
    };
    let s = start(&pgdb.url, &redis.url());
    let f = fixture(&s).await;
    // A browser signed in before the outage keeps its session through it.
    let mut kept = Browser::default();
    let (st, _, _) = kept.sign_in(&s, "acme", "alice", PASSWORD).await;
    assert_eq!(st, 303);
    let redis = Arc::new(tokio::sync::Mutex::new(redis));
    let r = redis.clone();
    let (t, samples, tasks, log) = run_load(&s, &f, async move || {
        let down_at = Instant::now();
        r.lock().await.kill();
        tokio::time::sleep(OUTAGE).await;
        let mut guard = r.lock().await;
        guard.restart();
        let port = guard.port;
        drop(guard);
        let answering_at = tokio::task::spawn_blocking(move || {
            assert!(redis_answers(port, Duration::from_secs(10)));
            Instant::now()
        })
        .await
        .unwrap();
        Timeline {
            down_at,
            answering_at,
        }
    })
    .await;
    let summary = check(&samples, &t, &[Op::SignIn]);
    eprintln!("Redis outage: {summary}");
    after(&s, &f, tasks, &log).await;
    let (st, _, _) = kept.get(&s, "/t/acme/account").await;
    assert_eq!(st, 200, "a session acknowledged before the outage survives it");
    drop(redis);
}

/// Starts Latchkey on `database` and `sessions`. A rotation committed for a client that got no
/// answer shows up as a lost chain: its retry is refused (`invalid_grant`, superseded or reuse).
fn start(database: &str, sessions: &str) -> TestServer {
    TestServer::start_with(&[
        ("LATCHKEY_DATABASE_URL", database),
        ("LATCHKEY_SESSION_STORE", sessions),
        ("LATCHKEY_WORKERS", "4"),
    ])
    .unwrap()
}

fn redis_answers(port: u16, within: Duration) -> bool {
    use std::io::{Read, Write};
    let until = Instant::now() + within;
    while Instant::now() < until {
        if let Ok(mut c) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            let mut buf = [0_u8; 16];
            if c.write_all(b"PING\r\n").is_ok()
                && c.read(&mut buf).is_ok_and(|n| buf[..n].starts_with(b"+PONG"))
            {
                return true;
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}
