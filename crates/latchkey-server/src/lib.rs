//! The HTTP face of Latchkey (actix-web 4 on rustls). Routes turn HTTP into calls on the protocol
//! crates and their results back into HTTP; errors become responses in `errors` only.

mod admin_api;
mod cache;
pub mod config;
mod errors;
mod form;
mod logging;
pub mod login;
pub mod mail;
mod metrics;
mod net;
mod observe;
mod oidc;
mod pages;
pub mod risk;
mod routes;
pub mod saml;
mod state;
mod tls;

pub use config::{Config, ConfigError, LogFormat};
pub use errors::AppError;
pub use form::{FormError, parse_form};
pub use logging::init_logging;
pub use observe::RequestId;
pub use state::{AppState, open_keys};

use actix_web::{App, HttpServer, web};
use std::net::TcpListener;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: String, source: std::io::Error },
    #[error("TLS: {0}")]
    Tls(String),
    #[error("{0}")]
    Startup(String),
}

/// Makes aws-lc-rs the process-wide rustls provider (idempotent).
pub fn init_crypto() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// Builds the actix application for `state`.
fn app(
    state: AppState,
) -> App<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse<actix_web::body::BoxBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let limit = state.config.max_body_bytes;
    App::new()
        .app_data(web::Data::new(state.clone()))
        .app_data(web::PayloadConfig::new(limit))
        .wrap(observe::Observe::new(state))
        .configure(admin_api::configure)
        .configure(routes::configure)
        .default_service(web::to(routes::not_found))
}

/// Starts serving on an already bound listener; the returned server runs until its handle stops
/// it (`serve` does that on SIGTERM/SIGINT, letting in-flight requests finish).
pub fn run(listener: TcpListener, state: AppState) -> Result<actix_web::dev::Server, ServerError> {
    let config = Arc::clone(&state.config);
    let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    let factory_state = state.clone();
    // Signals are handled in `serve`: actix would stop at once on SIGINT, and both SIGTERM
    // and SIGINT should let in-flight requests finish.
    let mut server = HttpServer::new(move || app(factory_state.clone()))
        .disable_signals()
        .shutdown_timeout(config.shutdown_timeout_secs)
        .client_request_timeout(std::time::Duration::from_secs(10))
        .client_disconnect_timeout(std::time::Duration::from_secs(2))
        .max_connection_rate(256);
    let workers = config.workers.unwrap_or_else(state::cores);
    // Blocking work is almost all storage, which waits for one of the pool's connections: more
    // threads than connections only queue there, and each idle thread keeps its stack and heap
    // (actix allows 512 by default).
    let blocking = (state.db.pool_stats().max_size as usize).div_ceil(workers) + 2;
    server = server.workers(workers).worker_max_blocking_threads(blocking);
    let server = match &config.tls {
        Some(files) => {
            let tls = tls::server_config(files)?;
            server.listen_rustls_0_23(listener, tls)
        }
        None => server.listen(listener),
    }
    .map_err(|source| ServerError::Bind { addr, source })?;
    // The outbox sender lives as long as the server's runtime.
    actix_web::rt::spawn(mail::run_outbox(state));
    Ok(server.run())
}

/// `latchkey serve`: opens storage, applies migrations, and serves until a signal.
pub async fn serve(config: Config) -> Result<(), ServerError> {
    let state = AppState::open(config).await?;
    let listener = TcpListener::bind(state.config.listen).map_err(|source| ServerError::Bind {
        addr: state.config.listen.to_string(),
        source,
    })?;
    let scheme = if state.config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    if state.config.insecure_public_url() {
        tracing::warn!(
            public_url = %state.config.public_url,
            "public URL is plain http: cookies lose the Secure flag and __Host- prefix; development only"
        );
    }
    tracing::info!(
        listen = %state.config.listen,
        scheme,
        public_url = %state.config.public_url,
        database = %state.db.url().redacted(),
        session_store = state.ephemeral.backend_name(),
        version = env!("CARGO_PKG_VERSION"),
        "latchkey is serving"
    );
    actix_web::rt::spawn(key_scheduler(state.clone()));
    let server = run(listener, state)?;
    let handle = server.handle();
    actix_web::rt::spawn(async move {
        let signal = shutdown_signal().await;
        tracing::info!(signal, "shutting down: finishing in-flight requests");
        let graceful = handle.stop(true);
        // A second signal while draining means "now".
        tokio::select! {
            () = graceful => {}
            second = shutdown_signal() => {
                tracing::warn!(signal = second, "second signal: stopping without waiting");
                handle.stop(false).await;
            }
        }
    });
    server.await.map_err(|e| ServerError::Startup(e.to_string()))?;
    tracing::info!("latchkey stopped");
    Ok(())
}

/// Waits for SIGTERM or SIGINT and names which arrived.
async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    if let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
        tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        }
    } else {
        // Without our handlers the default actions still stop the process.
        std::future::pending::<()>().await;
        "none"
    }
}

/// Applies every tenant's retention (audit segments with an anchor, risk histories); a failure
/// for one tenant is logged and the others go on. Returns the events deleted.
pub fn retention_pass(state: &AppState) -> u64 {
    let tenants = match latchkey_store::TenantRepo::list_tenants(&state.db) {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(error = %e, "retention: listing tenants failed");
            return 0;
        }
    };
    let mut deleted = 0;
    for t in tenants {
        match latchkey_audit::apply_retention(&state.db, &t, state.clock.now_millis()) {
            Ok(r) => {
                deleted += r.audit_events_deleted;
                if r.audit_events_deleted + r.risk_histories_deleted > 0 {
                    tracing::info!(tenant = %t.slug, audit_events = r.audit_events_deleted, risk_histories = r.risk_histories_deleted, "retention applied");
                }
            }
            Err(e) => tracing::warn!(tenant = %t.slug, error = %e, "retention failed for tenant"),
        }
    }
    deleted
}

/// Runs the key-rotation scheduler for every tenant (and purges expired OAuth state, and refreshes
/// SAML metadata), now and
/// then every `key_scheduler_secs`. Safe with several nodes: each transition happens under the tenant's
/// key lock, so only one node makes it.
async fn key_scheduler(state: AppState) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(state.config.key_scheduler_secs));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_retention = i64::MIN;
    loop {
        every.tick().await;
        // Retention hourly (its cut-offs are in days).
        if state.clock.now_millis().saturating_sub(last_retention) >= 3_600_000 {
            last_retention = state.clock.now_millis();
            let s = state.clone();
            if let Err(e) = actix_web::web::block(move || retention_pass(&s)).await {
                tracing::warn!(error = %e, "retention pass panicked");
            }
        }
        let s = state.clone();
        let outcome = actix_web::web::block(move || -> Result<(), latchkey_keys::KeyError> {
            // Spent and expired codes, tokens and grants go a day after they expire.
            match latchkey_store::OAuthRepo::purge_expired_oauth(&s.db) {
                Ok(0) => {}
                Ok(n) => tracing::info!(rows = n, "purged expired OAuth state"),
                Err(e) => tracing::warn!(error = %e, "purging expired OAuth state failed"),
            }
            for t in latchkey_store::TenantRepo::list_tenants(&s.db)? {
                // An unfinished data-key rotation moves on by one batch per pass.
                if s.db.data_keys(&t.id).is_ok_and(|d| d.len() > 1)
                    && let Err(e) = s.keys.rotate_dek(&t.id, "system:key-scheduler", 100, Some(1))
                {
                    tracing::warn!(tenant = %t.slug, error = %e, "continuing a data-key rotation failed");
                }
                match s.keys.tick(&t.id, &t.policy.keys, "system:key-scheduler") {
                    Ok(report) if !report.is_empty() => {
                        tracing::info!(tenant = %t.slug, report = %serde_json::json!(report), "signing keys rotated");
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(tenant = %t.slug, error = %e, "key scheduler failed for tenant"),
                }
            }
            Ok(())
        })
        .await;
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "key scheduler pass failed"),
            Err(e) => tracing::warn!(error = %e, "key scheduler pass panicked"),
        }
        // SAML metadata fetched from URLs, each due connection claimed by one node.
        saml::refresh_pass(&state).await;
    }
}
