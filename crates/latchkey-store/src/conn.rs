//! Connections: one enum over SQLite and PostgreSQL, set up the way Latchkey needs them.

use crate::StoreError;
use diesel::connection::SimpleConnection;
use diesel::{Connection, ConnectionError, PgConnection, SqliteConnection};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(diesel::MultiConnection)]
pub enum AnyConnection {
    Postgres(PgConnection),
    Sqlite(SqliteConnection),
}

/// A parsed `LATCHKEY_DATABASE_URL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// `sqlite://PATH` (relative or absolute).
    Sqlite(PathBuf),
    /// `postgres://…` or `postgresql://…`, passed to libpq.
    Postgres(String),
}

impl DatabaseUrl {
    pub fn parse(s: &str) -> Result<Self, StoreError> {
        if let Some(path) = s.strip_prefix("sqlite://") {
            if path.is_empty() || path == ":memory:" {
                return Err(StoreError::BadUrl(
                    "sqlite:// needs a file path (an in-memory database would not be shared by the pool)"
                        .into(),
                ));
            }
            Ok(DatabaseUrl::Sqlite(PathBuf::from(path)))
        } else if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            Ok(DatabaseUrl::Postgres(s.to_owned()))
        } else {
            Err(StoreError::BadUrl(
                "expected sqlite://PATH or postgres://…".into(),
            ))
        }
    }

    /// The URL without any password, for logs and error messages.
    pub fn redacted(&self) -> String {
        match self {
            DatabaseUrl::Sqlite(p) => format!("sqlite://{}", p.display()),
            DatabaseUrl::Postgres(u) => match url::Url::parse(u) {
                Ok(mut parsed) => {
                    if parsed.password().is_some() {
                        let _ = parsed.set_password(Some("***"));
                    }
                    let pairs: Vec<(String, String)> = parsed
                        .query_pairs()
                        .map(|(k, v)| {
                            let v = if k.eq_ignore_ascii_case("password") {
                                "***".into()
                            } else {
                                v.into_owned()
                            };
                            (k.into_owned(), v)
                        })
                        .collect();
                    if !pairs.is_empty() {
                        parsed.query_pairs_mut().clear().extend_pairs(pairs);
                    }
                    parsed.to_string()
                }
                Err(_) => "postgres://(unparsable)".into(),
            },
        }
    }

    pub fn is_sqlite(&self) -> bool {
        matches!(self, DatabaseUrl::Sqlite(_))
    }
}

/// Per-connection SQLite settings: WAL for concurrent readers, foreign keys enforced (SQLite's
/// default is off), and a busy timeout (first, so the rest of the setup waits for a lock too)
/// so writers queue instead of failing.
const SQLITE_SETUP: &str = "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; \
     PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON;";

/// Connects with a bounded connect timeout so an unreachable PostgreSQL fails fast.
pub(crate) fn establish(url: &DatabaseUrl) -> Result<AnyConnection, ConnectionError> {
    match url {
        DatabaseUrl::Sqlite(path) => {
            let path = path
                .to_str()
                .ok_or_else(|| ConnectionError::InvalidConnectionUrl("path is not UTF-8".into()))?;
            let mut c = SqliteConnection::establish(path)?;
            c.batch_execute(SQLITE_SETUP)
                .map_err(ConnectionError::CouldntSetupConfiguration)?;
            Ok(AnyConnection::Sqlite(c))
        }
        DatabaseUrl::Postgres(u) => {
            let u = if u.contains("connect_timeout=") {
                u.clone()
            } else if u.contains('?') {
                format!("{u}&connect_timeout=5")
            } else {
                format!("{u}?connect_timeout=5")
            };
            let mut c = PgConnection::establish(&u)?;
            // A query stuck on a dead server must not hold a request (or a pool slot) forever.
            c.batch_execute("SET statement_timeout = '15s'; SET lock_timeout = '10s'; SET TIME ZONE 'UTC';")
                .map_err(ConnectionError::CouldntSetupConfiguration)?;
            Ok(AnyConnection::Postgres(c))
        }
    }
}

/// Opens connections for the pool and tells the breaker what each attempt found, so a refused
/// connect opens it and a connect that works again (the pool's own or a probe's) closes it.
pub(crate) struct Manager {
    pub(crate) url: DatabaseUrl,
    pub(crate) breaker: std::sync::Arc<latchkey_core::Breaker>,
}

/// `establish`, with the outcome reported to `breaker` (only transitions are logged): the one
/// way both the pool and the breaker's probe connect. A SQLite file is not a server that goes
/// down: a failed open there (a lock held by another process during setup) is the caller's
/// error, not an outage, so it is not reported.
pub(crate) fn establish_reported(
    url: &DatabaseUrl,
    breaker: &latchkey_core::Breaker,
) -> Result<AnyConnection, ConnectionError> {
    let r = establish(url);
    if url.is_sqlite() {
        return r;
    }
    match &r {
        Ok(_) => {
            if breaker.success() {
                tracing::info!(dependency = "database", "database answers again; circuit closed");
            }
        }
        Err(error) => {
            if breaker.failure() {
                tracing::warn!(dependency = "database", %error, "database is down; circuit open");
            }
        }
    }
    r
}

/// A connection used this recently is taken as alive without a `SELECT 1` round trip at
/// checkout (HikariCP's `aliveBypassWindowMs` does the same, with 500 ms). A connection that died
/// in between fails its next statement, is found broken and is dropped, as one that dies right
/// after the check would.
const ALIVE_BYPASS: Duration = Duration::from_millis(500);

/// A pooled connection and when its last use ended.
pub(crate) struct Tracked {
    pub(crate) conn: AnyConnection,
    pub(crate) returned_at: Option<Instant>,
}

impl r2d2::ManageConnection for Manager {
    type Connection = Tracked;
    type Error = ConnectionError;

    fn connect(&self) -> Result<Tracked, ConnectionError> {
        Ok(Tracked {
            conn: establish_reported(&self.url, &self.breaker)?,
            returned_at: None,
        })
    }

    fn is_valid(&self, t: &mut Tracked) -> Result<(), ConnectionError> {
        if t.returned_at.is_some_and(|at| at.elapsed() < ALIVE_BYPASS) {
            return Ok(());
        }
        t.conn
            .batch_execute("SELECT 1")
            .map_err(ConnectionError::CouldntSetupConfiguration)
    }

    fn has_broken(&self, t: &mut Tracked) -> bool {
        std::thread::panicking() || diesel::r2d2::R2D2Connection::is_broken(&mut t.conn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_schemes_and_refuses_others() {
        assert_eq!(
            DatabaseUrl::parse("sqlite://./x.db").unwrap(),
            DatabaseUrl::Sqlite("./x.db".into())
        );
        assert!(DatabaseUrl::parse("postgres://u@h/db").is_ok());
        assert!(DatabaseUrl::parse("mysql://h/db").is_err());
        assert!(DatabaseUrl::parse("sqlite://:memory:").is_err());
    }

    #[test]
    fn redaction_hides_the_password() {
        let u = DatabaseUrl::parse("postgres://bob:hunter2@db.internal/latchkey").unwrap();
        assert!(!u.redacted().contains("hunter2"));
        assert!(u.redacted().contains("bob"));
        let q =
            DatabaseUrl::parse("postgres://db.internal/latchkey?user=bob&password=hunter2&sslmode=require")
                .unwrap();
        assert!(!q.redacted().contains("hunter2"), "{}", q.redacted());
        assert!(q.redacted().contains("sslmode=require"));
    }
}
