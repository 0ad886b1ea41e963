//! The pool, migrations, readiness, and the audited write transaction every change goes through.

use crate::conn::{AnyConnection, DatabaseUrl, Manager};
use crate::schema::{audit_events, audit_heads};
use crate::{Result, StoreError};
use diesel::prelude::*;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use latchkey_core::{Admit, AuditEvent, Breaker, BreakerState, Clock, NewAuditEvent, Rng, TenantId};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");

/// A pooled connection; it derefs to the diesel connection and stamps its return to the pool.
pub(crate) struct Conn(r2d2::PooledConnection<Manager>);

impl std::ops::Deref for Conn {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        &self.0.conn
    }
}

impl std::ops::DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.0.conn
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.0.returned_at = Some(std::time::Instant::now());
    }
}

#[derive(Debug, Clone)]
pub struct PoolOptions {
    pub max_size: u32,
    /// How long a caller waits for a connection before the store answers `Unavailable`.
    pub connection_timeout: Duration,
    /// While the database is down, one caller per interval tries it again.
    pub probe_every: Duration,
    /// How long one wait for a pooled connection lasts before the breaker is looked at again.
    /// Each new wait may have r2d2 open another connection on its own thread, so a short-lived
    /// process (the CLI) waits in one piece: a connection still being opened while it exits
    /// can crash libpq's TLS teardown (seen as a CLI killed by a signal under load).
    pub wait_slice: Duration,
}

impl PoolOptions {
    pub fn for_url(url: &DatabaseUrl) -> Self {
        Self {
            max_size: if url.is_sqlite() { 8 } else { 16 },
            connection_timeout: Duration::from_secs(5),
            probe_every: Duration::from_millis(25),
            wait_slice: WAIT_SLICE,
        }
    }
}

/// Holds a PostgreSQL advisory lock named `name` until the transaction ends, so read-then-write
/// work on one thing runs one at a time; nothing on SQLite, which has one writer anyway.
pub(crate) fn xact_lock(c: &mut AnyConnection, name: &str) -> Result<()> {
    if let AnyConnection::Postgres(pg) = c {
        diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind::<diesel::sql_types::Text, _>(name)
            .execute(pg)?;
    }
    Ok(())
}

/// The advisory lock key migrations hold on PostgreSQL ("latchkey" in ASCII, as an integer).
const MIGRATION_LOCK: i64 = 0x6c61_7463_686b_6579;

/// The longest pause between r2d2's attempts to open a connection while the database is down.
const RECONNECT_BACKOFF_CAP: Duration = Duration::from_millis(50);

/// How long one wait for a pooled connection lasts before the breaker is looked at again.
const WAIT_SLICE: Duration = Duration::from_millis(25);

/// How many times a transaction that lost to a concurrent one (deadlock, serialization failure)
/// is run again before the caller is answered 503.
const CONTENTION_RETRIES: u32 = 3;

#[derive(Debug, Clone, Copy)]
pub struct PoolStats {
    pub connections: u32,
    pub idle: u32,
    pub max_size: u32,
}

/// The store: a connection pool plus the clock and randomness used for ids and timestamps.
#[derive(Clone)]
pub struct Db {
    pool: r2d2::Pool<Manager>,
    url: DatabaseUrl,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) rng: Arc<dyn Rng>,
    /// SQLite has one writer at a time, and its busy wait sleeps in steps of milliseconds; this
    /// process's writers take turns here instead. `None` on PostgreSQL.
    writer: Option<Arc<std::sync::Mutex<()>>>,
    /// Bumped by every tenant change made through this process, so per-node caches of tenants
    /// drop what they hold at once (changes from other processes wait for the cache's TTL).
    pub(crate) tenant_writes: Arc<std::sync::atomic::AtomicU64>,
    /// Open while the database is known to be down: callers get `Unavailable` at once.
    breaker: Arc<Breaker>,
    connection_timeout: Duration,
    wait_slice: Duration,
    /// Seals personal data under per-user keys (see `vault`); `None` until the key ring opens.
    vault: Option<Arc<dyn crate::Vault>>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("url", &self.url.redacted())
            .finish_non_exhaustive()
    }
}

impl Db {
    /// Opens the pool and checks that the database answers. A SQLite file's directory is created.
    pub fn open(
        url: &DatabaseUrl,
        opts: &PoolOptions,
        clock: Arc<dyn Clock>,
        rng: Arc<dyn Rng>,
    ) -> Result<Self> {
        if let DatabaseUrl::Sqlite(path) = url
            && let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Unavailable(format!("cannot create {}: {e}", dir.display())))?;
        }
        // No minimum of idle connections: r2d2 would keep opening them on its own threads, and a
        // connection being opened while a short-lived process (the CLI) exits can crash libpq's
        // TLS teardown. Connections now open only when a caller asks for one and waits.
        let breaker = Arc::new(Breaker::new("database", opts.probe_every));
        let pool = r2d2::Pool::builder()
            .max_size(opts.max_size)
            .min_idle(Some(0))
            // Callers' waits are bounded in `conn` (deadline, pool timeout, breaker); r2d2's own
            // timeout only caps the back-off of its connect retries (at half of it), so a
            // database that comes back is reconnected within tens of milliseconds.
            .connection_timeout(RECONNECT_BACKOFF_CAP * 2)
            .test_on_check_out(true)
            .error_handler(Box::new(LogErrors))
            .build(Manager {
                url: url.clone(),
                breaker: Arc::clone(&breaker),
            })
            .map_err(|e| StoreError::Unavailable(format!("{}: {e}", url.redacted())))?;
        let db = Self {
            pool,
            url: url.clone(),
            clock,
            rng,
            writer: url.is_sqlite().then(|| Arc::new(std::sync::Mutex::new(()))),
            tenant_writes: Arc::default(),
            breaker,
            connection_timeout: opts.connection_timeout,
            wait_slice: opts.wait_slice,
            vault: None,
        };
        // Fail now, not at the first request, when the database can't be reached.
        drop(
            db.conn()
                .map_err(|e| StoreError::Unavailable(format!("{}: {e}", url.redacted())))?,
        );
        Ok(db)
    }

    /// This handle with `vault` sealing personal data (the pool is shared with `self`).
    #[must_use]
    pub fn with_vault(&self, vault: Arc<dyn crate::Vault>) -> Db {
        Db {
            vault: Some(vault),
            ..self.clone()
        }
    }

    /// Whether personal data can be written through this handle.
    pub fn has_vault(&self) -> bool {
        self.vault.is_some()
    }

    /// Tenant `t`'s personal-data keys, taken before a connection (see `Vault::tenant`).
    pub(crate) fn personal(&self, t: &TenantId) -> Result<crate::vault::Personal> {
        Ok(crate::vault::Personal(
            self.vault.as_ref().map(|v| v.tenant(t)).transpose()?,
        ))
    }

    /// After an erasure: on SQLite (whose connections overwrite deleted content, `secure_delete`)
    /// the write-ahead log is copied into the database and cut to nothing, so no earlier image
    /// of an erased row's page stays in it. PostgreSQL keeps no such file of ours: its dead
    /// rows are gone from every dump, and the key that opened them is gone too.
    pub(crate) fn scrub(&self) -> Result<()> {
        if self.writer.is_none() {
            return Ok(());
        }
        let _turn = self
            .writer
            .as_ref()
            .map(|m| m.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        let mut conn = self.conn()?;
        diesel::sql_query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&mut *conn)?;
        Ok(())
    }

    /// The database's circuit breaker, for readiness and metrics.
    pub fn breaker(&self) -> BreakerState {
        self.breaker.state()
    }

    /// Seconds a caller refused while the database is down should wait before trying again.
    pub fn retry_after_secs(&self) -> u64 {
        self.breaker.retry_after_secs()
    }

    pub fn url(&self) -> &DatabaseUrl {
        &self.url
    }

    /// Applies pending migrations for this dialect; returns the names applied.
    ///
    /// On PostgreSQL the migrations run under a session advisory lock, so nodes starting at
    /// once take turns: the first applies them, the others then find nothing pending. (SQLite
    /// takes its write lock per migration transaction; one file has one writer anyway.)
    pub fn migrate(&self) -> Result<Vec<String>> {
        let mut conn = self.conn()?;
        let applied = match &mut *conn {
            AnyConnection::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS).map(names),
            AnyConnection::Postgres(c) => {
                diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK})")).execute(c)?;
                let applied = c.run_pending_migrations(POSTGRES_MIGRATIONS).map(names);
                diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})")).execute(c)?;
                applied
            }
        };
        applied.map_err(|e| StoreError::Migration(e.to_string()))
    }

    /// Applies migrations one at a time until `version` is applied (a restore brings a backup's
    /// rows into the schema they were taken from, then migrates the rest). Refuses a version
    /// this binary does not have.
    pub fn migrate_to(&self, version: &str) -> Result<Vec<String>> {
        fn up_to<C: MigrationHarness<B>, B: diesel::backend::Backend>(
            c: &mut C,
            source: fn() -> EmbeddedMigrations,
            version: &str,
        ) -> std::result::Result<Vec<String>, String> {
            use diesel::migration::MigrationSource;
            let known: Vec<String> = MigrationSource::<B>::migrations(&source())
                .map_err(|e| e.to_string())?
                .iter()
                .map(|m| m.name().version().to_string())
                .collect();
            if !known.iter().any(|v| v == version) {
                return Err(format!(
                    "this binary has no migration {version}: the backup is from a newer Latchkey"
                ));
            }
            let mut applied = Vec::new();
            loop {
                let done = c.applied_migrations().map_err(|e| e.to_string())?;
                if done.iter().any(|v| v.to_string() == version) {
                    return Ok(applied);
                }
                applied.push(
                    c.run_next_migration(source())
                        .map_err(|e| e.to_string())?
                        .to_string(),
                );
            }
        }
        let mut conn = self.conn()?;
        let applied = match &mut *conn {
            AnyConnection::Sqlite(c) => up_to(c, || SQLITE_MIGRATIONS, version),
            AnyConnection::Postgres(c) => {
                diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK})")).execute(c)?;
                let applied = up_to(c, || POSTGRES_MIGRATIONS, version);
                diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})")).execute(c)?;
                applied
            }
        };
        applied.map_err(StoreError::Migration)
    }

    /// Readiness: a connection within `timeout` that answers a query.
    pub fn ping(&self, timeout: Duration) -> Result<()> {
        let mut conn = crate::deadline::within(Instant::now() + timeout, || self.conn())?;
        diesel::sql_query("SELECT 1").execute(&mut *conn)?;
        Ok(())
    }

    pub fn pool_stats(&self) -> PoolStats {
        let s = self.pool.state();
        PoolStats {
            connections: s.connections,
            idle: s.idle_connections,
            max_size: self.pool.max_size(),
        }
    }

    /// A pooled connection. While the breaker is open this answers `Unavailable` at once (one
    /// caller per probe interval tries a connection of its own first); otherwise it waits for the
    /// pool until the caller's deadline or the pool timeout, looking at the breaker between
    /// short waits so an outage found meanwhile ends the wait.
    pub(crate) fn conn(&self) -> Result<Conn> {
        match self.breaker.admit() {
            Admit::Refused => return Err(StoreError::CircuitOpen),
            Admit::Probe => self.probe()?,
            Admit::Closed => {}
        }
        let limit =
            crate::deadline::remaining().map_or(self.connection_timeout, |d| d.min(self.connection_timeout));
        let start = Instant::now();
        loop {
            let left = limit.saturating_sub(start.elapsed());
            match self
                .pool
                .get_timeout(left.min(self.wait_slice).max(Duration::from_millis(1)))
            {
                Ok(c) => return Ok(Conn(c)),
                Err(_) if self.breaker.state().open => return Err(StoreError::CircuitOpen),
                Err(e) if left <= self.wait_slice => return Err(e.into()),
                Err(_) => {}
            }
        }
    }

    /// The probe while the breaker is open: a connection of its own, outside the pool.
    fn probe(&self) -> Result<()> {
        crate::conn::establish_reported(&self.url, &self.breaker)
            .map(drop)
            .map_err(|e| StoreError::Unavailable(format!("database is down: {e}")))
    }

    /// How many tenant changes this process has made (see `tenant_writes`).
    pub fn tenant_generation(&self) -> u64 {
        self.tenant_writes.load(std::sync::atomic::Ordering::Acquire)
    }

    pub(crate) fn tenant_changed(&self) {
        self.tenant_writes
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    pub(crate) fn now(&self) -> i64 {
        self.clock.now_millis()
    }

    pub(crate) fn new_id(&self) -> String {
        latchkey_core::random_uuid(&*self.rng)
    }

    /// A write transaction. On SQLite the process's writers first take turns (see `writer`);
    /// `f` must not start another write. A transaction that lost to a concurrent one is run
    /// again (a few times), and one that would commit after the caller's deadline is rolled back.
    pub(crate) fn write<T>(&self, mut f: impl FnMut(&mut AnyConnection) -> Result<T>) -> Result<T> {
        let mut attempt = 0;
        loop {
            let result = {
                let _turn = self
                    .writer
                    .as_ref()
                    .map(|m| m.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
                let mut conn = self.conn()?;
                crate::revocations::begin();
                let result = conn.transaction(|c| {
                    let value = f(c)?;
                    if crate::deadline::passed() {
                        return Err(StoreError::DeadlinePassed(
                            "the caller's deadline passed before COMMIT; rolled back".into(),
                        ));
                    }
                    Ok(value)
                });
                crate::revocations::end(result.is_ok());
                result
            };
            match result {
                Err(StoreError::Contention(why))
                    if attempt < CONTENTION_RETRIES && !crate::deadline::passed() =>
                {
                    attempt += 1;
                    tracing::debug!(attempt, %why, "transaction lost to a concurrent one; running it again");
                    // A short, growing pause so the transactions that collided do not meet again.
                    std::thread::sleep(Duration::from_millis(u64::from(attempt) * 3));
                }
                other => return other,
            }
        }
    }

    /// `write` for work that can run only once (it consumes what it was given): not retried.
    pub(crate) fn write_once<T>(&self, f: impl FnOnce(&mut AnyConnection) -> Result<T>) -> Result<T> {
        let mut f = Some(f);
        self.write(|c| match f.take() {
            Some(f) => f(c),
            None => Err(StoreError::Contention("lost to a concurrent transaction".into())),
        })
    }

    /// `audited` for a change that can run only once: not retried.
    pub(crate) fn audited_once<T>(
        &self,
        tenant: &TenantId,
        change: impl FnOnce(&mut AnyConnection) -> Result<(T, NewAuditEvent)>,
    ) -> Result<T> {
        let mut change = Some(change);
        self.audited(tenant, |c| match change.take() {
            Some(f) => f(c),
            None => Err(StoreError::Contention("lost to a concurrent transaction".into())),
        })
    }

    /// Runs `change` in one transaction together with the audit event it returns.
    ///
    /// The tenant's audit head is bumped under a lock, so a tenant's chain is appended strictly
    /// in order even with several Latchkey nodes; an unknown tenant is `NotFound`. On SQLite the
    /// bump is the first statement (it takes the write lock at once: no read-to-write upgrade).
    /// On PostgreSQL it is the last: the head's row lock lasts until COMMIT, and taken first it
    /// made every audited write of a tenant (each refresh-token rotation) wait for the whole
    /// transaction before it. The head is always the last lock taken, so lock order stays one
    /// way.
    pub(crate) fn audited<T>(
        &self,
        tenant: &TenantId,
        mut change: impl FnMut(&mut AnyConnection) -> Result<(T, NewAuditEvent)>,
    ) -> Result<T> {
        self.audited_all(tenant, |c| change(c).map(|(value, event)| (value, vec![event])))
    }

    /// `audited` with several events (in order), for a change that is more than one thing to
    /// the audit log. The first is reserved where `audited` reserves it, the rest after.
    pub(crate) fn audited_all<T>(
        &self,
        tenant: &TenantId,
        mut change: impl FnMut(&mut AnyConnection) -> Result<(T, Vec<NewAuditEvent>)>,
    ) -> Result<T> {
        let sqlite = self.writer.is_some();
        self.write(|c| {
            let early = if sqlite { Some(reserve(c, tenant)?) } else { None };
            if early.is_none() {
                head_exists(c, tenant)?;
            }
            let (value, events) = change(c)?;
            let mut early = early;
            for event in events {
                let link = match early.take() {
                    Some(link) => link,
                    None => reserve(c, tenant)?,
                };
                self.record(c, tenant, link, event)?;
            }
            Ok(value)
        })
    }

    /// Writes the event at the reserved position and moves the head's hash on.
    pub(crate) fn record(
        &self,
        c: &mut AnyConnection,
        tenant: &TenantId,
        link: Link,
        event: NewAuditEvent,
    ) -> Result<AuditEvent> {
        let mut row = AuditEvent {
            tenant_id: tenant.clone(),
            seq: link.seq,
            at: self.now(),
            actor: event.actor,
            action: event.action,
            target: event.target,
            outcome: event.outcome,
            details: event.details,
            prev_hash: link.prev_hash,
            hash: String::new(),
        };
        row.hash = row.compute_hash();
        if let AnyConnection::Postgres(pg) = c {
            // One round trip: the event and the head's new hash in one statement.
            use diesel::sql_types::{BigInt, Text};
            diesel::sql_query(
                "WITH e AS (INSERT INTO audit_events \
                 (tenant_id, seq, at, actor, action, target, outcome, details, prev_hash, hash) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)) \
                 UPDATE audit_heads SET hash = $10 WHERE tenant_id = $1",
            )
            .bind::<Text, _>(tenant.as_str())
            .bind::<BigInt, _>(row.seq)
            .bind::<BigInt, _>(row.at)
            .bind::<Text, _>(&row.actor)
            .bind::<Text, _>(&row.action)
            .bind::<Text, _>(&row.target)
            .bind::<Text, _>(row.outcome.as_str())
            .bind::<Text, _>(row.details.to_string())
            .bind::<Text, _>(&row.prev_hash)
            .bind::<Text, _>(&row.hash)
            .execute(pg)?;
            return Ok(row);
        }
        diesel::insert_into(audit_events::table)
            .values((
                audit_events::tenant_id.eq(tenant.as_str()),
                audit_events::seq.eq(row.seq),
                audit_events::at.eq(row.at),
                audit_events::actor.eq(&row.actor),
                audit_events::action.eq(&row.action),
                audit_events::target.eq(&row.target),
                audit_events::outcome.eq(row.outcome.as_str()),
                audit_events::details.eq(row.details.to_string()),
                audit_events::prev_hash.eq(&row.prev_hash),
                audit_events::hash.eq(&row.hash),
            ))
            .execute(c)?;
        diesel::update(audit_heads::table.find(tenant.as_str()))
            .set(audit_heads::hash.eq(&row.hash))
            .execute(c)?;
        Ok(row)
    }
}

/// A reserved position in a tenant's audit chain.
pub(crate) struct Link {
    seq: i64,
    prev_hash: String,
}

pub(crate) fn reserve(c: &mut AnyConnection, tenant: &TenantId) -> Result<Link> {
    let (seq, prev_hash) = diesel::update(audit_heads::table.find(tenant.as_str()))
        .set(audit_heads::seq.eq(audit_heads::seq + 1))
        .returning((audit_heads::seq, audit_heads::hash))
        .get_result::<(i64, String)>(c)
        .optional()?
        .ok_or(StoreError::NotFound { what: "tenant" })?;
    Ok(Link { seq, prev_hash })
}

/// `NotFound` unless the tenant has a chain (a plain read: no lock).
fn head_exists(c: &mut AnyConnection, tenant: &TenantId) -> Result<()> {
    let found = audit_heads::table
        .find(tenant.as_str())
        .select(audit_heads::seq)
        .first::<i64>(c)
        .optional()?;
    found.map(drop).ok_or(StoreError::NotFound { what: "tenant" })
}

/// Starts a tenant's chain (called in the transaction that creates the tenant).
pub(crate) fn start_chain(c: &mut AnyConnection, tenant: &TenantId) -> Result<()> {
    diesel::insert_into(audit_heads::table)
        .values((
            audit_heads::tenant_id.eq(tenant.as_str()),
            audit_heads::seq.eq(0_i64),
            audit_heads::hash.eq(latchkey_core::GENESIS_HASH),
        ))
        .execute(c)?;
    Ok(())
}

fn names(v: Vec<diesel::migration::MigrationVersion<'_>>) -> Vec<String> {
    v.into_iter().map(|m| m.to_string()).collect()
}

/// Pool errors (failed connects) go to the log once each; callers see `Unavailable`.
#[derive(Debug)]
struct LogErrors;

impl r2d2::HandleError<diesel::ConnectionError> for LogErrors {
    fn handle_error(&self, error: diesel::ConnectionError) {
        tracing::warn!(%error, "database connection failed");
    }
}

/// Decodes a JSON column written by this crate.
pub(crate) fn from_json<T: serde::de::DeserializeOwned>(column: &str, s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| StoreError::corrupt(format!("{column}: {e}")))
}

pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> String {
    // Serializing our own plain data types can't fail.
    serde_json::to_string(v).unwrap_or_default()
}

pub(crate) fn parse_enum<T: std::str::FromStr<Err = String>>(column: &str, s: &str) -> Result<T> {
    s.parse()
        .map_err(|e| StoreError::corrupt(format!("{column}: {e}")))
}
