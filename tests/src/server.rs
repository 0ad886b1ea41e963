//! `TestServer`: Latchkey booted in-process, through the same `AppState::open` path as
//! `latchkey serve`, on a free loopback port.

use crate::{TestDb, redis_url, unavailable};
use latchkey_server::{AppState, Config};
use std::net::TcpListener;
use std::sync::mpsc;
use std::thread::JoinHandle;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The embedded default: a SQLite file and in-process sessions.
    SqliteMemory,
    /// Production shape: a fresh PostgreSQL database and Redis.
    PostgresRedis,
}

pub struct TestServer {
    /// `http://localhost:{port}`; also the public URL, so issuers are `{base_url}/t/{slug}`.
    pub base_url: String,
    pub state: AppState,
    handle: actix_web::dev::ServerHandle,
    thread: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Boots on `backend` with a fresh database; `None` when the backend is unreachable outside CI.
    pub fn start(backend: Backend) -> Option<(Self, TestDb)> {
        Self::start_on(backend, &[])
    }

    /// `start` with extra `LATCHKEY_*` settings.
    pub fn start_on(backend: Backend, extra: &[(&str, &str)]) -> Option<(Self, TestDb)> {
        Self::start_on_clocked(backend, extra, std::sync::Arc::new(latchkey_core::SystemClock))
    }

    /// `start_on` with a clock the test controls.
    pub fn start_on_clocked(
        backend: Backend,
        extra: &[(&str, &str)],
        clock: std::sync::Arc<dyn latchkey_core::Clock>,
    ) -> Option<(Self, TestDb)> {
        let (db, sessions) = match backend {
            Backend::SqliteMemory => (TestDb::sqlite(), "memory".to_owned()),
            Backend::PostgresRedis => {
                let db = TestDb::postgres()?;
                if let Err(e) = std::net::TcpStream::connect(redis_url().trim_start_matches("redis://")) {
                    return unavailable("Redis", &e.to_string());
                }
                (db, redis_url())
            }
        };
        let mut settings = vec![
            ("LATCHKEY_DATABASE_URL", db.url.as_str()),
            ("LATCHKEY_SESSION_STORE", sessions.as_str()),
            // The test's own handle seals personal data under the same master key.
            ("LATCHKEY_MASTER_KEY", db.master.as_str()),
        ];
        settings.extend_from_slice(extra);
        let server = Self::start_with_clock(&settings, clock).expect("latchkey starts");
        Some((server, db))
    }

    /// Boots with the given `LATCHKEY_*` settings on top of the defaults (listen and public URL
    /// are chosen here). Returns the startup error message if Latchkey refuses to start.
    pub fn start_with(settings: &[(&str, &str)]) -> Result<Self, String> {
        Self::start_with_clock(settings, std::sync::Arc::new(latchkey_core::SystemClock))
    }

    /// `start_with` on a clock the test controls.
    pub fn start_with_clock(
        settings: &[(&str, &str)],
        clock: std::sync::Arc<dyn latchkey_core::Clock>,
    ) -> Result<Self, String> {
        latchkey_server::init_crypto();
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        let base_url = format!("http://localhost:{port}");
        // A fresh master key per server unless the test brings its own (restarts keep theirs).
        let master = latchkey_keys::MasterKey::generate()
            .map_err(|e| e.to_string())?
            .to_base64();
        let mut env: Vec<(String, String)> = vec![
            ("LATCHKEY_MASTER_KEY".into(), master),
            ("LATCHKEY_LISTEN".into(), format!("127.0.0.1:{port}")),
            ("LATCHKEY_PUBLIC_URL".into(), base_url.clone()),
            (
                "LATCHKEY_LOG".into(),
                std::env::var("LATCHKEY_TEST_LOG").unwrap_or_else(|_| "error".into()),
            ),
            ("LATCHKEY_WORKERS".into(), "2".into()),
            ("LATCHKEY_SHUTDOWN_TIMEOUT_SECS".into(), "1".into()),
        ];
        env.extend(settings.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let config = Config::from_sources(None, &env, false).map_err(|e| e.to_string())?;
        latchkey_server::init_logging(&config);
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let state = match AppState::open_with_clock(config, clock).await {
                    Ok(s) => s,
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                        return;
                    }
                };
                match latchkey_server::run(listener, state.clone()) {
                    Ok(server) => {
                        let _ = tx.send(Ok((server.handle(), state)));
                        let _ = server.await;
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                    }
                }
            });
        });
        match rx.recv() {
            Ok(Ok((handle, state))) => Ok(TestServer {
                base_url,
                state,
                handle,
                thread: Some(thread),
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => Err("the server thread died during startup".into()),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// The Prometheus text of `/metrics` (asked from loopback, which needs no token).
    pub async fn metrics(&self) -> String {
        Self::client()
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("the metrics text")
    }

    pub fn issuer(&self, slug: &str) -> String {
        format!("{}/t/{slug}", self.base_url)
    }

    /// An HTTP client that does not follow redirects (tests look at them).
    pub fn client() -> reqwest::Client {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(20))
            .build()
            .expect("http client")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Where the HTTP helpers send requests: an in-process `TestServer`, or any base URL (a
/// process, or a load balancer in front of several).
pub trait Site {
    fn url(&self, path: &str) -> String;
}

impl Site for TestServer {
    fn url(&self, path: &str) -> String {
        TestServer::url(self, path)
    }
}

/// A Latchkey reached at a base URL such as `http://127.0.0.1:8080`.
#[derive(Debug, Clone)]
pub struct Remote(pub String);

impl Site for Remote {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.0)
    }
}
