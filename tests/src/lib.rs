//! The test kit: fresh databases (a SQLite file, or a PostgreSQL database created and dropped on
//! the server at 127.0.0.1:5432), session stores (memory, or Redis with a unique key prefix), a
//! TCP proxy that can cut a dependency off and bring it back, and `TestServer`, which boots
//! Latchkey in-process on a free loopback port.
//!
//! PostgreSQL and Redis are found through `LATCHKEY_TEST_POSTGRES_URL` and
//! `LATCHKEY_TEST_REDIS_URL`. With `CI=true` they are mandatory; elsewhere a test that needs an
//! unreachable one prints a loud notice and skips.

pub mod admin;
pub mod browser;
pub mod console;
pub mod forge;
pub mod logout;
pub mod node_op;
pub mod oidc;
mod private;
mod proxy;
pub mod remote;
pub mod saml_idp;
mod server;
mod smtp;

pub use private::{PrivatePostgres, PrivateRedis, free_port, wait_for_port};
pub use proxy::Proxy;
pub use server::{Backend, Remote, Site, TestServer};
pub use smtp::{ReceivedMail, SmtpSink};

use diesel::{Connection, PgConnection, RunQueryDsl};
use latchkey_core::{OsRng, SystemClock};
use latchkey_store::{DatabaseUrl, Db, PoolOptions};
use std::sync::Arc;

pub fn postgres_admin_url() -> String {
    std::env::var("LATCHKEY_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/postgres".into())
}

pub fn redis_url() -> String {
    std::env::var("LATCHKEY_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Called when a real dependency is unreachable: fails under CI, skips loudly elsewhere.
/// Returns `None` so callers can `let Some(x) = … else { return };`.
pub fn unavailable<T>(what: &str, detail: &str) -> Option<T> {
    assert!(
        !ci(),
        "{what} is required under CI=true but is unreachable: {detail}"
    );
    eprintln!(
        "\n!!!!!!!! SKIPPED: {what} is unreachable ({detail}); set CI=true to make this a failure !!!!!!!!\n"
    );
    None
}

/// A database for one test, removed when dropped.
pub struct TestDb {
    pub url: String,
    /// Seals personal data with a key ring under `master`, opened at its first use (a test
    /// that brings its own master key and never writes a user through it registers none).
    pub db: Db,
    /// The master key (base64) this handle's key ring uses; `TestServer` starts with it.
    pub master: String,
    cleanup: Cleanup,
}

/// A key ring opened at the first personal data written or read (see `TestDb::db`).
struct LazyVault {
    db: Db,
    master: String,
    vault: std::sync::OnceLock<Result<latchkey_keys::PersonalVault, String>>,
}

impl latchkey_store::Vault for LazyVault {
    fn tenant(
        &self,
        t: &latchkey_core::TenantId,
    ) -> Result<Arc<dyn latchkey_store::TenantVault>, latchkey_store::StoreError> {
        let vault = self.vault.get_or_init(|| {
            let master = latchkey_keys::MasterKey::from_base64(&self.master).map_err(|e| e.to_string())?;
            latchkey_keys::KeyRing::open(self.db.clone(), master, Arc::new(SystemClock))
                .map(|ring| latchkey_keys::PersonalVault::new(Arc::new(ring)))
                .map_err(|e| e.to_string())
        });
        match vault {
            Ok(v) => v.tenant(t),
            Err(e) => Err(latchkey_store::StoreError::Sealed(e.clone())),
        }
    }
}

/// The master keys of the test databases this process made, by URL.
static MASTERS: std::sync::Mutex<Vec<(String, String)>> = std::sync::Mutex::new(Vec::new());

/// The master key a `TestDb`'s handle seals personal data under, for a test that opens a key
/// ring of its own on the same database.
pub fn master_of(db: &Db) -> latchkey_keys::MasterKey {
    let url = db.url().redacted();
    let masters = MASTERS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let (_, key) = masters
        .iter()
        .find(|(u, _)| *u == url)
        .expect("a database made by TestDb");
    latchkey_keys::MasterKey::from_base64(key).expect("master key")
}

/// `db` with a lazily opened key ring under a fresh master key; returns both.
fn with_vault(db: Db) -> (Db, String) {
    let master = latchkey_keys::MasterKey::generate()
        .expect("master key")
        .to_base64();
    MASTERS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push((db.url().redacted(), master.clone()));
    let vault = LazyVault {
        db: db.clone(),
        master: master.clone(),
        vault: std::sync::OnceLock::new(),
    };
    (db.with_vault(Arc::new(vault)), master)
}

enum Cleanup {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

impl TestDb {
    /// A fresh SQLite file in a temporary directory, migrated.
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("sqlite://{}", dir.path().join("latchkey.db").display());
        let (db, master) = with_vault(open(&url));
        TestDb {
            url,
            db,
            master,
            cleanup: Cleanup::Sqlite(dir),
        }
    }

    /// A fresh PostgreSQL database, migrated; `None` (skip) when the server is unreachable outside CI.
    pub fn postgres() -> Option<Self> {
        let (url, admin_url, name) = create_pg_database()?;
        let (db, master) = with_vault(open(&url));
        Some(TestDb {
            url,
            db,
            master,
            cleanup: Cleanup::Postgres { admin_url, name },
        })
    }

    /// Every byte the database holds on disk (SQLite file and its WAL) or in a `pg_dump`.
    pub fn dump(&self) -> Vec<u8> {
        match &self.cleanup {
            Cleanup::Sqlite(_) => {
                let path = self.url.trim_start_matches("sqlite://");
                let mut all = std::fs::read(path).expect("sqlite file");
                if let Ok(wal) = std::fs::read(format!("{path}-wal")) {
                    all.extend(wal);
                }
                all
            }
            Cleanup::Postgres { .. } => {
                let out = std::process::Command::new("pg_dump")
                    .arg(&self.url)
                    .output()
                    .expect("pg_dump runs");
                assert!(
                    out.status.success(),
                    "pg_dump: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                out.stdout
            }
        }
    }

    /// Waits (at most 5 s) until an outbox row on `channel` has failed its first attempt and the
    /// failure is recorded (the server's own outbox task may be the one making it); answers how
    /// many such rows there are.
    pub async fn first_failures_recorded(&self, channel: &str) -> usize {
        let sql = format!(
            "UPDATE mail_outbox SET attempts = attempts WHERE channel = '{channel}' \
             AND attempts = 1 AND last_error IS NOT NULL AND sent_at IS NULL"
        );
        let mut recorded = 0;
        for _ in 0..100 {
            recorded = self.raw_sql(&sql);
            if recorded > 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        recorded
    }

    /// Runs raw SQL against the database behind the store (to play an attacker with DB access).
    pub fn raw_sql(&self, sql: &str) -> usize {
        match &self.cleanup {
            Cleanup::Sqlite(_) => {
                let path = self.url.trim_start_matches("sqlite://");
                let mut c = diesel::SqliteConnection::establish(path).expect("sqlite connection");
                // The server writes at the same time (the scheduler, the outbox): wait for it.
                diesel::sql_query("PRAGMA busy_timeout = 5000")
                    .execute(&mut c)
                    .expect("busy timeout");
                diesel::sql_query(sql).execute(&mut c).expect("raw sql")
            }
            Cleanup::Postgres { .. } => {
                let mut c = PgConnection::establish(&self.url).expect("postgres connection");
                diesel::sql_query(sql).execute(&mut c).expect("raw sql")
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Cleanup::Postgres { admin_url, name } = &self.cleanup
            && let Ok(mut c) = PgConnection::establish(admin_url)
        {
            let _ =
                diesel::sql_query(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).execute(&mut c);
        }
    }
}

/// Another handle on a test database, with its own clock (for tests that move time).
pub fn open_with_clock(url: &str, clock: Arc<dyn latchkey_core::Clock>) -> Db {
    let parsed = DatabaseUrl::parse(url).expect("database url");
    Db::open(&parsed, &PoolOptions::for_url(&parsed), clock, Arc::new(OsRng)).expect("open db")
}

fn open(url: &str) -> Db {
    let parsed = DatabaseUrl::parse(url).expect("database url");
    let db = Db::open(
        &parsed,
        &PoolOptions::for_url(&parsed),
        Arc::new(SystemClock),
        Arc::new(OsRng),
    )
    .expect("open db");
    db.migrate().expect("migrate");
    db
}

/// Creates `latchkey_test_<random>` on the test server; returns (its URL, the admin URL, its name).
pub fn create_pg_database() -> Option<(String, String, String)> {
    let admin_url = postgres_admin_url();
    let mut admin = match PgConnection::establish(&admin_url) {
        Ok(c) => c,
        Err(e) => return unavailable("PostgreSQL", &e.to_string()),
    };
    let name = format!(
        "latchkey_test_{}",
        latchkey_core::random_token(&OsRng, 9)
            .to_lowercase()
            .replace(['-', '_'], "x")
    );
    diesel::sql_query(format!("CREATE DATABASE \"{name}\""))
        .execute(&mut admin)
        .expect("create database");
    let base = admin_url.rsplit_once('/').map_or(admin_url.as_str(), |(b, _)| b);
    // No TLS to the loopback server: with it, a pool thread still connecting when a test binary
    // exits ran into OpenSSL's exit-time cleanup on the main thread and crashed the process
    // (SIGSEGV in `CRYPTO_THREAD_write_lock` after every test had passed).
    let tls = if admin_url.contains("sslmode=") {
        ""
    } else {
        "?sslmode=disable"
    };
    Some((format!("{base}/{name}{tls}"), admin_url.clone(), name))
}

/// A Redis-backed session store with a key prefix no other test uses.
pub async fn redis_store() -> Option<latchkey_session::RedisStore> {
    let prefix = format!("latchkey-test:{}:", latchkey_core::random_token(&OsRng, 9));
    match latchkey_session::RedisStore::connect(&redis_url(), &prefix).await {
        Ok(s) => Some(s),
        Err(e) => unavailable("Redis", &e.to_string()),
    }
}

/// Runs each named `async fn(Backend)` (a test that starts its own servers) as two tests: on
/// SQLite + memory and on PostgreSQL + Redis.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name($crate::Backend::SqliteMemory).await } )*
        }
        mod postgres {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name($crate::Backend::PostgresRedis).await } )*
        }
    };
}

/// `e2e!` with more `LATCHKEY_*` settings, in a module of its own so one file can have both:
/// `e2e_with!(module, &[("LATCHKEY_…", "…")], test, …)`.
#[macro_export]
macro_rules! e2e_with {
    ($module:ident, $settings:expr, $($name:ident),* $(,)?) => {
        mod $module {
            mod sqlite_memory {
                $(
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $name() {
                        let (s, _db) = $crate::TestServer::start_on($crate::Backend::SqliteMemory, $settings)
                            .expect("server starts");
                        super::super::$name(&s).await;
                    }
                )*
            }
            mod postgres_redis {
                $(
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $name() {
                        let Some((s, _db)) = $crate::TestServer::start_on($crate::Backend::PostgresRedis, $settings)
                        else { return };
                        super::super::$name(&s).await;
                    }
                )*
            }
        }
    };
}

/// Runs each named `async fn(&TestServer)` as two tests: on SQLite + memory and on
/// PostgreSQL + Redis (skipped loudly outside CI when those are unreachable).
#[macro_export]
macro_rules! e2e {
    ($($name:ident),* $(,)?) => {
        mod sqlite_memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let (s, _db) = $crate::TestServer::start($crate::Backend::SqliteMemory).expect("server starts");
                    super::$name(&s).await;
                }
            )*
        }
        mod postgres_redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some((s, _db)) = $crate::TestServer::start($crate::Backend::PostgresRedis) else { return };
                    super::$name(&s).await;
                }
            )*
        }
    };
}

/// Runs `cmd` with `stdin` (if any) written to its standard input and closed; its output.
pub fn run_with_stdin(mut cmd: std::process::Command, stdin: Option<&str>) -> std::process::Output {
    use std::io::Write as _;
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the command starts");
    let mut input = child.stdin.take().expect("its standard input");
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).expect("standard input written");
    }
    drop(input);
    child.wait_with_output().expect("the command ends")
}

/// A session of `user` in tenant `t` with fixed times: what the session-store tests store.
pub fn session(t: &str, user: &str) -> latchkey_core::Session {
    latchkey_core::Session {
        tenant_id: latchkey_core::TenantId(t.into()),
        user_id: latchkey_core::UserId(user.into()),
        auth_time: 1,
        amr: vec!["pwd".into()],
        acr: None,
        created_at: 1,
        idle_deadline: 2,
        absolute_deadline: 3,
        device_id: None,
        risk: None,
        user_agent: None,
        ip: None,
        last_seen: 1,
        must_change_password: false,
        factor_due: None,
        federated: None,
    }
}
