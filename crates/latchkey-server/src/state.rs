//! What every request handler can reach: the configuration and handles to the stores and the
//! services. No feature types live here (Architecture Invariant: `state` imports only the
//! foundations below it).

use crate::{Config, ServerError};
use latchkey_core::{Client, ClientId, Clock, OsRng, Rng, SystemClock, Tenant, TenantId};
use latchkey_keys::{KeyRing, MasterKeySource};
use latchkey_services::{Mailer, Metrics, RiskEngine, TtlCache};
use latchkey_session::Ephemeral;
use latchkey_store::{DatabaseUrl, Db, PoolOptions};
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub db: Db,
    pub ephemeral: Arc<dyn Ephemeral>,
    pub keys: Arc<KeyRing>,
    pub hasher: Arc<latchkey_mfa::PasswordHasher>,
    pub clock: Arc<dyn Clock>,
    pub rng: Arc<dyn Rng>,
    pub mail: Arc<Mailer>,
    pub(crate) metrics: Arc<Metrics>,
    /// Clients by (tenant, client id), 10 s (every token request reads its client).
    pub(crate) clients: Arc<TtlCache<(TenantId, ClientId), Client>>,
    /// Tenants by slug, 5 s (every tenant route reads its tenant).
    pub(crate) tenants: Arc<TtlCache<String, Tenant>>,
    /// Serialized discovery documents by tenant slug (they depend on the configuration only).
    pub(crate) discovery: Arc<TtlCache<String, actix_web::web::Bytes>>,
    pub(crate) risk: Arc<RiskEngine>,
    /// Permits to parse unauthenticated SAML (half the cores, at least one): a flood of hostile
    /// responses queues here instead of taking every core from the requests behind it.
    pub(crate) saml_parsers: Arc<tokio::sync::Semaphore>,
    /// Set on SIGTERM: `/readyz` fails and connections close, while requests are still served.
    pub(crate) draining: Arc<std::sync::atomic::AtomicBool>,
}

/// Opens the key ring with the configured master key. A key file is generated only while
/// nothing is encrypted yet; a wrong or missing key for existing data is an error.
pub fn open_keys(
    config: &Config,
    db: &Db,
    clock: Arc<dyn Clock>,
) -> Result<KeyRing, latchkey_keys::KeyError> {
    let has_data = KeyRing::has_encrypted_data(db)?;
    let (master, source) =
        latchkey_keys::load_master_key(config.master_key_input(), &config.keys_dir, !has_data)?;
    if let MasterKeySource::Generated(path) = &source {
        tracing::warn!(path = %path.display(), "generated a new master key: back it up, data encrypted under it is lost without it");
    }
    KeyRing::open(db.clone(), master, clock)
}

impl AppState {
    /// Opens the database (applying migrations), the key ring and the session store, failing
    /// with a message that names the part that is unreachable or wrong.
    pub async fn open(config: Config) -> Result<Self, ServerError> {
        Self::open_with_clock(config, Arc::new(SystemClock)).await
    }

    /// `open` with a given clock (tests move time instead of sleeping).
    pub async fn open_with_clock(config: Config, clock: Arc<dyn Clock>) -> Result<Self, ServerError> {
        let rng: Arc<dyn Rng> = Arc::new(OsRng);
        let url = DatabaseUrl::parse(&config.database_url).map_err(|e| {
            ServerError::Config(crate::config::ConfigError {
                setting: "LATCHKEY_DATABASE_URL".into(),
                message: e.to_string(),
            })
        })?;
        let mail = Mailer::new(&latchkey_services::MailSettings {
            from: &config.mail_from,
            smtp_url: config.smtp_url.as_ref().map(crate::config::Secret::expose),
            development: config.insecure_public_url(),
            outbound: config.outbound_allow_private.clone(),
            public_url: &config.public_url,
        })?;
        let risk = RiskEngine::open(&config.geoip_db, config.risk_denylist.as_ref())?;
        let config = Arc::new(config);
        let (db, keys) = {
            let (clock, rng, url, config) = (clock.clone(), rng.clone(), url.clone(), Arc::clone(&config));
            let shown = url.redacted();
            tokio::task::spawn_blocking(move || -> Result<(Db, KeyRing), ServerError> {
                let database = |source| ServerError::Database {
                    url: shown.clone(),
                    source,
                };
                let db = Db::open(&url, &PoolOptions::for_url(&url), clock.clone(), rng).map_err(database)?;
                db.migrate().map_err(database)?;
                let keys = open_keys(&config, &db, clock)?;
                Ok((db, keys))
            })
            .await
            .map_err(|e| ServerError::Task(e.to_string()))??
        };
        // Personal data is sealed under per-user keys the ring wraps (crypto-shredding).
        let keys = Arc::new(keys);
        let db = db.with_vault(Arc::new(latchkey_keys::PersonalVault::new(Arc::clone(&keys))));
        let ephemeral =
            latchkey_session::open(&config.session_store, &config.redis_tls()?, clock.clone()).await?;
        // At most one argon2id hash per core at once; a bounded queue behind them.
        let cores = cores();
        let hasher = latchkey_mfa::PasswordHasher::new(
            latchkey_mfa::HashParams::default(),
            cores,
            64 * cores,
            rng.clone(),
        )?;
        Ok(Self {
            config,
            db,
            ephemeral,
            keys,
            hasher: Arc::new(hasher),
            clock,
            rng,
            mail: Arc::new(mail),
            metrics: Arc::new(Metrics::default()),
            clients: Arc::new(TtlCache::new(std::time::Duration::from_secs(10), 10_000)),
            tenants: Arc::new(TtlCache::new(std::time::Duration::from_secs(5), 100_000)),
            discovery: Arc::new(TtlCache::new(std::time::Duration::from_secs(3600), 100_000)),
            risk: Arc::new(risk),
            saml_parsers: Arc::new(tokio::sync::Semaphore::new((cores / 2).max(1))),
            draining: Arc::default(),
        })
    }

    pub(crate) fn draining(&self) -> bool {
        self.draining.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Starts draining: load balancers see `/readyz` fail and stop sending new requests here.
    pub fn start_draining(&self) {
        self.draining.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The cores this process may use: one argon2id hash and one actix worker each by default.
pub(crate) fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, std::num::NonZero::get)
}
