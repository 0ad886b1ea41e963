//! Store and key-ring work off the async executor, in one place: `state.store(…)` for the
//! database, `state.with_keys(…)` for signing where it is cheapest.

use crate::state::AppState;
use crate::web::errors::AppError;
use latchkey_core::Tenant;
use latchkey_keys::KeyRing;
use latchkey_store::Db;
use std::sync::Arc;

/// Runs blocking work (the store, the key ring) off the async executor; a failed thread becomes a
/// logged 500.
pub(crate) async fn blocking<T: Send + 'static, E: Into<AppError> + Send + 'static>(
    f: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, AppError> {
    actix_web::web::block(f)
        .await
        .map_err(|e| AppError::internal("blocking task", e))?
        .map_err(Into::into)
}

/// Blocking work on the handles in `AppState`.
pub(crate) trait Blocking {
    /// Runs `f` with the database on the blocking pool (the pool's connections block), within
    /// the request's database deadline (`LATCHKEY_DATABASE_DEADLINE_MS`).
    async fn store<T, E>(&self, f: impl FnOnce(&Db) -> Result<T, E> + Send + 'static) -> Result<T, AppError>
    where
        T: Send + 'static,
        E: Into<AppError> + Send + 'static;

    /// Runs `f` with tenant `t`'s key ring where that is cheapest: here when the ring is cached
    /// (no store access, and the hand-off to the blocking pool costs more than an ES256
    /// signature), else on the blocking pool, where the ring may be loaded.
    async fn with_keys<T, E>(
        &self,
        t: &Tenant,
        f: impl FnOnce(&KeyRing, &Tenant) -> Result<T, E> + Send + 'static,
    ) -> Result<T, AppError>
    where
        T: Send + 'static,
        E: Into<AppError> + Send + 'static;
}

impl Blocking for AppState {
    async fn store<T, E>(&self, f: impl FnOnce(&Db) -> Result<T, E> + Send + 'static) -> Result<T, AppError>
    where
        T: Send + 'static,
        E: Into<AppError> + Send + 'static,
    {
        let db = self.db.clone();
        // The deadline starts now, so time queued for a blocking thread counts against it.
        let deadline =
            std::time::Instant::now() + std::time::Duration::from_millis(self.config.database_deadline_ms);
        let (result, revoked) = blocking(move || {
            Ok::<_, AppError>(latchkey_store::revocations::collect(|| {
                latchkey_store::deadline::within(deadline, || f(&db))
            }))
        })
        .await?;
        // Before the caller answers: no node trusts a token this work revoked.
        if !revoked.is_empty() {
            crate::web::revocation::revoked(self, &revoked).await;
        }
        result.map_err(Into::into)
    }

    async fn with_keys<T, E>(
        &self,
        tenant: &Tenant,
        f: impl FnOnce(&KeyRing, &Tenant) -> Result<T, E> + Send + 'static,
    ) -> Result<T, AppError>
    where
        T: Send + 'static,
        E: Into<AppError> + Send + 'static,
    {
        if self.keys.is_cached(&tenant.id) {
            return f(&self.keys, tenant).map_err(Into::into);
        }
        let (keys, tenant) = (Arc::clone(&self.keys), tenant.clone());
        blocking(move || f(&keys, &tenant)).await
    }
}
