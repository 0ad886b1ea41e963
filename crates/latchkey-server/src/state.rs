//! What every request handler can reach.

use crate::metrics::Metrics;
use crate::{Config, ServerError};
use latchkey_core::{Clock, OsRng, Rng, SystemClock};
use latchkey_keys::{KeyRing, MasterKeySource};
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
    pub mail: Arc<crate::mail::Mailer>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) clients: Arc<crate::oidc::ClientCache>,
    /// Tenants by slug, 5 s (every tenant route reads its tenant).
    pub(crate) tenants: Arc<crate::cache::TtlCache<String, latchkey_core::Tenant>>,
    /// Serialized discovery documents by tenant slug (they depend on the configuration only).
    pub(crate) discovery: Arc<crate::cache::TtlCache<String, actix_web::web::Bytes>>,
    pub(crate) risk: Arc<crate::risk::RiskEngine>,
}

/// Opens the key ring with the configured master key. A key file is generated only while
/// nothing is encrypted yet; a wrong or missing key for existing data is an error.
pub fn open_keys(config: &Config, db: &Db, clock: Arc<dyn Clock>) -> Result<KeyRing, String> {
    let has_data = KeyRing::has_encrypted_data(db).map_err(|e| e.to_string())?;
    let (master, source) = latchkey_keys::load_master_key(
        config.master_key.as_ref().map(crate::config::Secret::expose),
        &config.keys_dir,
        !has_data,
    )
    .map_err(|e| e.to_string())?;
    if let MasterKeySource::Generated(path) = &source {
        tracing::warn!(path = %path.display(), "generated a new master key: back it up, data encrypted under it is lost without it");
    }
    KeyRing::open(db.clone(), master, clock).map_err(|e| e.to_string())
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
        let mail = crate::mail::Mailer::new(&config).map_err(ServerError::Startup)?;
        let risk = crate::risk::RiskEngine::open(&config).map_err(ServerError::Startup)?;
        let config = Arc::new(config);
        let (db, keys) = {
            let (clock, rng, url, config) = (clock.clone(), rng.clone(), url.clone(), Arc::clone(&config));
            let shown = url.redacted();
            tokio::task::spawn_blocking(move || -> Result<(Db, KeyRing), String> {
                let db = Db::open(&url, &PoolOptions::for_url(&url), clock.clone(), rng)
                    .map_err(|e| format!("LATCHKEY_DATABASE_URL ({shown}): {e}"))?;
                db.migrate()
                    .map_err(|e| format!("LATCHKEY_DATABASE_URL ({shown}): {e}"))?;
                let keys = open_keys(&config, &db, clock)?;
                Ok((db, keys))
            })
            .await
            .map_err(|e| ServerError::Startup(e.to_string()))?
            .map_err(ServerError::Startup)?
        };
        let ephemeral = latchkey_session::open(&config.session_store, clock.clone())
            .await
            .map_err(|e| ServerError::Startup(format!("LATCHKEY_SESSION_STORE: {e}")))?;
        // At most one argon2id hash per core at once; a bounded queue behind them.
        let cores = cores();
        let hasher = latchkey_mfa::PasswordHasher::new(
            latchkey_mfa::HashParams::default(),
            cores,
            64 * cores,
            rng.clone(),
        )
        .map_err(|e| ServerError::Startup(e.to_string()))?;
        Ok(Self {
            config,
            db,
            ephemeral,
            keys: Arc::new(keys),
            hasher: Arc::new(hasher),
            clock,
            rng,
            mail: Arc::new(mail),
            metrics: Arc::new(Metrics::default()),
            clients: Arc::new(crate::oidc::client_cache()),
            tenants: Arc::new(crate::cache::TtlCache::new(
                std::time::Duration::from_secs(5),
                100_000,
            )),
            discovery: Arc::new(crate::cache::TtlCache::new(
                std::time::Duration::from_secs(3600),
                100_000,
            )),
            risk: Arc::new(risk),
        })
    }
}

impl AppState {
    /// Runs `f` with tenant `t`'s key ring where that is cheapest: here when the ring is cached
    /// (no store access, and the hand-off to the blocking pool costs more than an ES256
    /// signature), else on the blocking pool, where the ring may be loaded.
    pub(crate) async fn with_keys<T, E>(
        &self,
        t: &latchkey_core::Tenant,
        f: impl FnOnce(&KeyRing, &latchkey_core::Tenant) -> Result<T, E> + Send + 'static,
    ) -> Result<T, crate::errors::AppError>
    where
        T: Send + 'static,
        E: Into<crate::errors::AppError> + Send + 'static,
    {
        if self.keys.is_cached(&t.id) {
            return f(&self.keys, t).map_err(Into::into);
        }
        let (keys, t) = (Arc::clone(&self.keys), t.clone());
        crate::errors::blocking(move || f(&keys, &t)).await
    }
}

/// The cores this process may use: one argon2id hash and one actix worker each by default.
pub(crate) fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, std::num::NonZero::get)
}
