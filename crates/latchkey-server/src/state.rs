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
    /// The region whose database and session store these handles reach (`Config::region` for
    /// the home one).
    pub region: Arc<str>,
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
    /// Live access tokens read from this region's database (`flow::revocation`).
    pub(crate) tokens: Arc<latchkey_services::token_cache::TokenCache>,
    pub(crate) risk: Arc<RiskEngine>,
    /// Permits to parse unauthenticated SAML (half the cores, at least one): a flood of hostile
    /// responses queues here instead of taking every core from the requests behind it.
    pub(crate) saml_parsers: Arc<tokio::sync::Semaphore>,
    /// Set on SIGTERM: `/readyz` fails and connections close, while requests are still served.
    pub(crate) draining: Arc<std::sync::atomic::AtomicBool>,
    /// The other regions this node serves (`LATCHKEY_REGIONS`), each with its own database,
    /// key ring, session store and caches; empty in those regions' own states.
    pub(crate) other_regions: Arc<Vec<AppState>>,
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
        let mail = Mailer::new(&latchkey_services::MailSettings {
            from: &config.mail_from,
            smtp_url: config.smtp_url.as_ref().map(crate::config::Secret::expose),
            development: config.insecure_public_url(),
            outbound: config.outbound_allow_private.clone(),
            public_url: &config.public_url,
        })?;
        let risk = RiskEngine::open(&config.geoip_db, config.risk_denylist.as_ref())?;
        let config = Arc::new(config);
        let opened = |setting: String, url: String, sessions: String| {
            let (config, clock, rng) = (Arc::clone(&config), clock.clone(), rng.clone());
            async move { open_region(&config, clock, rng, (&setting, &url, &sessions)).await }
        };
        let home = opened(
            "LATCHKEY_DATABASE_URL".to_owned(),
            config.database_url.clone(),
            config.session_store.clone(),
        )
        .await?;
        // At most one argon2id hash per core at once; a bounded queue behind them.
        let cores = cores();
        let hasher = latchkey_mfa::PasswordHasher::new(
            latchkey_mfa::HashParams::default(),
            cores,
            64 * cores,
            rng.clone(),
        )?;
        let mut state = Self {
            config: Arc::clone(&config),
            region: Arc::from(config.region.as_str()),
            db: home.db,
            ephemeral: home.ephemeral,
            keys: home.keys,
            hasher: Arc::new(hasher),
            clock: clock.clone(),
            rng: rng.clone(),
            mail: Arc::new(mail),
            metrics: Arc::new(Metrics::default()),
            clients: Arc::new(TtlCache::new(std::time::Duration::from_secs(10), 10_000)),
            tenants: Arc::new(TtlCache::new(std::time::Duration::from_secs(5), 100_000)),
            discovery: Arc::new(TtlCache::new(std::time::Duration::from_secs(3600), 100_000)),
            tokens: Arc::new(latchkey_services::token_cache::TokenCache::new(
                config.token_cache_bytes,
            )),
            risk: Arc::new(risk),
            saml_parsers: Arc::new(tokio::sync::Semaphore::new((cores / 2).max(1))),
            draining: Arc::default(),
            other_regions: Arc::default(),
        };
        let mut others = Vec::new();
        for r in &config.regions {
            match opened(
                format!("LATCHKEY_REGIONS ({})", r.name),
                r.database_url.clone(),
                r.session_store.clone(),
            )
            .await
            {
                Ok(handles) => others.push(state.in_region(&r.name, handles)),
                // A region this node cannot open is not served here (its tenants 404 on this
                // node, as on a node without it); only the home region must open.
                Err(e) => {
                    tracing::error!(region = %r.name, error = %e, "region not served: it could not be opened");
                }
            }
        }
        state.other_regions = Arc::new(others);
        Ok(state)
    }

    /// This state's shared parts (configuration, hasher, mail, metrics, risk, permits) with
    /// region `name`'s own database, key ring, session store and caches.
    fn in_region(&self, name: &str, handles: RegionHandles) -> Self {
        Self {
            region: Arc::from(name),
            db: handles.db,
            ephemeral: handles.ephemeral,
            keys: handles.keys,
            clients: Arc::new(TtlCache::new(std::time::Duration::from_secs(10), 10_000)),
            tenants: Arc::new(TtlCache::new(std::time::Duration::from_secs(5), 100_000)),
            discovery: Arc::new(TtlCache::new(std::time::Duration::from_secs(3600), 100_000)),
            tokens: Arc::new(latchkey_services::token_cache::TokenCache::new(
                self.config.token_cache_bytes,
            )),
            other_regions: Arc::default(),
            ..self.clone()
        }
    }

    /// Every region this node serves, the home one first.
    pub fn regions(&self) -> impl Iterator<Item = &AppState> {
        std::iter::once(self).chain(self.other_regions.iter())
    }

    /// The state of region `name`, if this node serves it.
    pub fn region_named(&self, name: &str) -> Option<&AppState> {
        self.regions().find(|r| &*r.region == name)
    }

    pub(crate) fn draining(&self) -> bool {
        self.draining.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Starts draining: load balancers see `/readyz` fail and stop sending new requests here.
    pub fn start_draining(&self) {
        self.draining.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// What a region has of its own.
struct RegionHandles {
    db: Db,
    ephemeral: Arc<dyn Ephemeral>,
    keys: Arc<KeyRing>,
}

/// Opens one region's database (applying migrations), key ring (the node's master key) and
/// session store; `setting` names where its URL came from in errors. Never logs the URL's
/// secrets.
async fn open_region(
    config: &Arc<Config>,
    clock: Arc<dyn Clock>,
    rng: Arc<dyn Rng>,
    (setting, database_url, session_store): (&str, &str, &str),
) -> Result<RegionHandles, ServerError> {
    let url = DatabaseUrl::parse(database_url).map_err(|e| {
        ServerError::Config(crate::config::ConfigError {
            setting: setting.into(),
            message: e.to_string(),
        })
    })?;
    let (db, keys) = {
        let (clock, config) = (clock.clone(), Arc::clone(config));
        let shown = url.redacted();
        let setting = setting.to_owned();
        tokio::task::spawn_blocking(move || -> Result<(Db, KeyRing), ServerError> {
            let database = |source| ServerError::Database {
                setting: setting.clone(),
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
    let ephemeral = latchkey_session::open(session_store, &config.redis_tls()?, clock).await?;
    Ok(RegionHandles { db, ephemeral, keys })
}

/// The cores this process may use: one argon2id hash and one actix worker each by default.
pub(crate) fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, std::num::NonZero::get)
}
