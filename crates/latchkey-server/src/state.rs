//! What every request handler can reach.

use crate::metrics::Metrics;
use crate::{Config, ServerError};
use latchkey_core::{Clock, OsRng, Rng, SystemClock};
use latchkey_session::Ephemeral;
use latchkey_store::{DatabaseUrl, Db, PoolOptions};
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub db: Db,
    pub ephemeral: Arc<dyn Ephemeral>,
    pub clock: Arc<dyn Clock>,
    pub rng: Arc<dyn Rng>,
    pub(crate) metrics: Arc<Metrics>,
}

impl AppState {
    /// Opens the database (applying migrations) and the session store, failing with a message
    /// that names the unreachable part.
    pub async fn open(config: Config) -> Result<Self, ServerError> {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let rng: Arc<dyn Rng> = Arc::new(OsRng);
        let url = DatabaseUrl::parse(&config.database_url).map_err(|e| {
            ServerError::Config(crate::config::ConfigError {
                setting: "LATCHKEY_DATABASE_URL".into(),
                message: e.to_string(),
            })
        })?;
        let db = {
            let (clock, rng, url) = (clock.clone(), rng.clone(), url.clone());
            let shown = url.redacted();
            tokio::task::spawn_blocking(move || -> Result<Db, String> {
                let db =
                    Db::open(&url, &PoolOptions::for_url(&url), clock, rng).map_err(|e| e.to_string())?;
                db.migrate().map_err(|e| e.to_string())?;
                Ok(db)
            })
            .await
            .map_err(|e| ServerError::Startup(e.to_string()))?
            .map_err(|e| ServerError::Startup(format!("LATCHKEY_DATABASE_URL ({shown}): {e}")))?
        };
        let ephemeral = latchkey_session::open(&config.session_store, clock.clone())
            .await
            .map_err(|e| ServerError::Startup(format!("LATCHKEY_SESSION_STORE: {e}")))?;
        Ok(Self::new(config, db, ephemeral, clock, rng))
    }

    pub fn new(
        config: Config,
        db: Db,
        ephemeral: Arc<dyn Ephemeral>,
        clock: Arc<dyn Clock>,
        rng: Arc<dyn Rng>,
    ) -> Self {
        Self {
            config: Arc::new(config),
            db,
            ephemeral,
            clock,
            rng,
            metrics: Arc::new(Metrics::default()),
        }
    }
}
