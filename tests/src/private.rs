//! Private instances of the dependencies, for tests that must stop or kill them: a PostgreSQL
//! cluster made with `initdb` on a free port, and a `redis-server` on a free port. Both use the
//! machine's own binaries (PostgreSQL's from `/usr/lib/postgresql/*/bin`).

#![allow(clippy::missing_panics_doc)] // test kit: a failed setup is a failed test

use crate::unavailable;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Waits until `port` accepts TCP connections.
pub fn wait_for_port(port: u16, within: Duration) -> bool {
    let until = Instant::now() + within;
    while Instant::now() < until {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

/// A PostgreSQL cluster of this test's own.
pub struct PrivatePostgres {
    pub port: u16,
    bin: PathBuf,
    dir: PathBuf,
}

impl PrivatePostgres {
    /// `initdb` and start a cluster (trust auth, user `postgres`); `None` (skip, or fail under
    /// CI) when PostgreSQL's binaries are missing.
    pub fn start() -> Option<Self> {
        let Some(bin) = postgres_bin() else {
            return unavailable(
                "PostgreSQL binaries (initdb, pg_ctl)",
                "not under /usr/lib/postgresql",
            );
        };
        let dir = std::env::temp_dir().join(format!(
            "latchkey-pg-{}",
            latchkey_core::random_token(&latchkey_core::OsRng, 6)
                .to_lowercase()
                .replace(['-', '_'], "x")
        ));
        let pg = PrivatePostgres {
            port: free_port(),
            bin,
            dir,
        };
        pg.run(
            "initdb",
            &["-D", &pg.data(), "-U", "postgres", "--auth=trust", "--no-sync"],
        );
        pg.start_again();
        assert!(
            pg.answers(Duration::from_secs(30)),
            "private PostgreSQL did not start"
        );
        Some(pg)
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn data(&self) -> String {
        self.dir.display().to_string()
    }

    /// A PostgreSQL binary, run as the `postgres` user when we are root (PostgreSQL refuses
    /// to run as root).
    fn command(&self, tool: &str) -> Command {
        let path = self.bin.join(tool);
        if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            Command::new(&path)
        }
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let out = self
            .command(tool)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("{tool}: {e}"));
        assert!(
            out.status.success(),
            "{tool} {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts the cluster without waiting for it to accept connections.
    pub fn start_again(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c fsync=off -c max_connections=100",
            self.port,
            self.data()
        );
        let log = format!("{}/server.log", self.data());
        self.run(
            "pg_ctl",
            &["-D", &self.data(), "-o", &options, "-l", &log, "-W", "start"],
        );
    }

    /// `pg_ctl stop -m immediate`: every backend dies at once, as in a crash.
    pub fn stop_immediately(&self) {
        self.run("pg_ctl", &["-D", &self.data(), "-m", "immediate", "stop"]);
    }

    /// Whether a real query succeeds before `within` passes (polled every few milliseconds).
    pub fn answers(&self, within: Duration) -> bool {
        use diesel::{Connection, RunQueryDsl};
        let until = Instant::now() + within;
        while Instant::now() < until {
            if let Ok(mut c) = diesel::PgConnection::establish(&format!("{}?connect_timeout=2", self.url()))
                && diesel::sql_query("SELECT 1").execute(&mut c).is_ok()
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .args(["-D", &self.data(), "-m", "immediate", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn postgres_bin() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").exists() && p.join("pg_ctl").exists())
        .collect();
    found.sort();
    found.pop()
}

/// A `redis-server` of this test's own, with an append-only file written on every command so a
/// `kill -9` loses nothing acknowledged (as a production Redis holding sessions is set up).
pub struct PrivateRedis {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl PrivateRedis {
    pub fn start() -> Option<Self> {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut r = PrivateRedis {
            port: free_port(),
            dir,
            child: None,
        };
        if let Err(e) = r.spawn() {
            return unavailable("redis-server", &e);
        }
        Some(r)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) -> Result<(), String> {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--appendonly", "yes", "--appendfsync", "always", "--save", ""])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| e.to_string())?;
        self.child = Some(child);
        if wait_for_port(self.port, Duration::from_secs(10)) {
            Ok(())
        } else {
            Err("redis-server did not listen".into())
        }
    }

    /// `kill -9`.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port and directory (it reloads its append-only file).
    pub fn restart(&mut self) {
        self.spawn().expect("redis-server restarts");
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
    }
}
