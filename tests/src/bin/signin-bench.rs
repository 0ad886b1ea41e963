//! Sign-in throughput next to the argon2id bound, in one run on this machine.
//!
//! `argon2`: how many OWASP-parameter argon2id verifications per second the cores do, hashing
//! in parallel with nothing else. `sign-in`: full round trips against a release Latchkey on the
//! embedded default: GET the sign-in page (CSRF token and pre-session cookie), POST the form,
//! get the session cookie and the redirect. Each sign-in costs exactly one argon2id
//! verification, so the ratio says how much the rest of the server costs.
//! Usage: cargo run --release -p latchkey-tests --bin signin-bench [seconds]  (writes
//! bench/results/signin.md)

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: failing loudly is right

use latchkey_core::{OsRng, TenantPolicy};
use latchkey_mfa::{HashMemory, HashParams, hash_password, verify_password_with};
use latchkey_store::{NewTenant, NewUser, TenantRepo, UserRepo};
use latchkey_tests::{TestDb, TestServer};
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const PASSWORD: &str = "tulip-gravel-orbit-42";

fn argon2_per_second(seconds: u64, threads: usize) -> f64 {
    let hash = hash_password(PASSWORD, HashParams::default(), &OsRng).unwrap();
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            let (hash, done) = (hash.clone(), Arc::clone(&done));
            s.spawn(move || {
                // One working memory per thread, as the server's hashing threads keep: the bound
                // is argon2id's own work, not page faults of a fresh 19 MiB each time.
                let mut memory = HashMemory::default();
                while start.elapsed() < Duration::from_secs(seconds) {
                    assert!(verify_password_with(PASSWORD, &hash, &mut memory));
                    done.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

async fn sign_in(client: &reqwest::Client, base: &str, n: u64) -> bool {
    // A different client address per sign-in (through a trusted proxy header), so the per-address
    // brute-force limits do not turn a benchmark into a 429 test.
    let ip = format!("10.{}.{}.{}", (n >> 16) & 255, (n >> 8) & 255, n & 255);
    let res = client
        .get(format!("{base}/t/bench/login"))
        .header("x-forwarded-for", &ip)
        .send()
        .await
        .unwrap();
    let cookie = res
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .to_owned();
    let page = res.text().await.unwrap();
    let marker = "name=\"csrf\" value=\"";
    let start = page.find(marker).unwrap() + marker.len();
    let csrf = &page[start..start + 64];
    let res = client
        .post(format!("{base}/t/bench/login"))
        .header("x-forwarded-for", &ip)
        .header("cookie", cookie)
        .form(&[
            ("csrf", csrf),
            ("username", "bench"),
            ("password", PASSWORD),
            ("return_to", ""),
        ])
        .send()
        .await
        .unwrap();
    res.status() == reqwest::StatusCode::SEE_OTHER && res.headers().get("set-cookie").is_some()
}

const ROUNDS: usize = 5;

/// This process's CPU time so far (user + system), from /proc/self/stat.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or_default();
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Sign-ins per second from `clients` concurrent clients for `seconds`, and failures.
async fn sign_ins_per_second(
    client: &reqwest::Client,
    base: &str,
    seconds: u64,
    clients: usize,
    counter: &Arc<AtomicU64>,
) -> (f64, u64) {
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (client, base, ok, failed, counter) = (
                client.clone(),
                base.to_owned(),
                ok.clone(),
                failed.clone(),
                counter.clone(),
            );
            tokio::spawn(async move {
                while start.elapsed() < Duration::from_secs(seconds) {
                    let n = counter.fetch_add(1, Ordering::Relaxed);
                    if sign_in(&client, &base, n).await {
                        ok.fetch_add(1, Ordering::Relaxed)
                    } else {
                        failed.fetch_add(1, Ordering::Relaxed)
                    };
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let per_second = ok.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64();
    (per_second, failed.load(Ordering::Relaxed))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let seconds: u64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(10);
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
    let db = TestDb::sqlite();
    let s = TestServer::start_with(&[
        ("LATCHKEY_DATABASE_URL", &db.url),
        ("LATCHKEY_TRUSTED_PROXIES", "127.0.0.1/32"),
        ("LATCHKEY_LOG", "error"),
    ])
    .unwrap();
    let t = s
        .state
        .db
        .create_tenant(
            "bench",
            &NewTenant {
                slug: "bench".into(),
                display_name: None,
                policy: TenantPolicy::default(),
            },
        )
        .unwrap();
    let hash = s.state.hasher.hash(PASSWORD.into()).await.unwrap();
    s.state
        .db
        .create_user(
            &t.id,
            "bench",
            &NewUser {
                username: "bench".into(),
                password_hash: Some(hash),
                ..NewUser::default()
            },
        )
        .unwrap();

    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let clients = std::env::var("BENCH_CLIENTS")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(8 * cores);
    let counter = Arc::new(AtomicU64::new(0));
    // Phases alternate, so a slow spell of the machine hits both sides alike; medians reported.
    let mut rows = String::new();
    let (mut hashes, mut sign_ins, mut ratios, mut failures) = (Vec::new(), Vec::new(), Vec::new(), 0);
    // Warm-up (not counted): connections, worker and hashing threads, caches.
    sign_ins_per_second(&client, &s.base_url, 2, clients, &counter).await;
    for round in 1..=ROUNDS {
        let raw = tokio::task::spawn_blocking(move || argon2_per_second(seconds, cores))
            .await
            .unwrap();
        let (cpu0, wall0) = (cpu_seconds(), Instant::now());
        let (per_second, failed) =
            sign_ins_per_second(&client, &s.base_url, seconds, clients, &counter).await;
        let busy = 100.0 * (cpu_seconds() - cpu0) / (wall0.elapsed().as_secs_f64() * cores as f64);
        writeln!(
            rows,
            "| {round} | {raw:.1} | {per_second:.1} | {:.1} % | {busy:.0} % |",
            100.0 * per_second / raw
        )
        .unwrap();
        hashes.push(raw);
        sign_ins.push(per_second);
        ratios.push(100.0 * per_second / raw);
        failures += failed;
    }
    let (raw, per_second, pct) = (median(&mut hashes), median(&mut sign_ins), median(&mut ratios));
    let report = format!(
        "# Sign-in throughput next to the argon2id bound\n\n\
         {cores} cores, release build, embedded default (SQLite + in-process sessions), argon2id m=19456 KiB t=2 p=1, {clients} concurrent clients. After a 2 s warm-up, {ROUNDS} rounds of {seconds} s per phase; the phases alternate, so a slow spell of the machine (a shared host) hits both sides of a round alike, and the ratio is the median of the rounds' ratios.\n\n\
         | round | argon2id verifications/s ({cores} threads, nothing else) | sign-ins/s (GET page + POST form + session, HTTP end to end) | ratio | CPU busy during sign-ins |\n|---|---|---|---|---|\n\
         {rows}\
         | median | {raw:.1} | {per_second:.1} | {pct:.1} % | |\n\n\
         Sign-in throughput is {pct:.1} % of the argon2 bound (median of the rounds' ratios; {failures} failed round trips).\n"
    );
    std::fs::create_dir_all("bench/results").unwrap();
    std::fs::write("bench/results/signin.md", &report).unwrap();
    print!("{report}");
}
