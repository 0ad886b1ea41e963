//! The route table: the only module that names every feature. Also builds the actix
//! application and runs the server.
//!
//! Architecture Invariant: a feature's routes are mounted here and nowhere else; features never
//! mount or call each other.

mod ops;

use crate::state::AppState;
use crate::{Config, ServerError, jobs, tls};
use actix_web::{App, HttpServer, web};
use std::net::TcpListener;
use std::sync::Arc;

fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(ops::index))
        .route(
            "/healthz",
            web::route().guard(ops::get_or_head()).to(ops::healthz),
        )
        .route("/readyz", web::route().guard(ops::get_or_head()).to(ops::readyz))
        .route("/metrics", web::get().to(ops::metrics))
        .route("/assets/latchkey.css", web::get().to(ops::css))
        .route("/assets/passkey.js", web::get().to(crate::login::passkey_js))
        .route(
            "/assets/console.css",
            web::get().to(crate::admin_api::console::css),
        )
        .route("/assets/form_post.js", web::get().to(crate::oidc::form_post_js))
        .route(
            "/assets/frontchannel.js",
            web::get().to(crate::oidc::frontchannel_js),
        )
        // Every tenant route in one scope: its pattern is matched once per request, then the
        // routes inside are plain paths (one regex per route was most of discovery's CPU).
        .service(
            web::scope("/t/{tenant}")
                .configure(crate::login::configure)
                .configure(crate::oidc::configure)
                .configure(crate::saml::configure)
                .configure(crate::federation::configure)
                .configure(crate::admin_api::console::configure)
                .default_service(web::to(ops::tenant_not_found)),
        );
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
        // Innermost: hands tenant routes their region's state (a no-op with one region).
        .wrap(crate::web::region::RegionRouting::new(state.clone()))
        .wrap(crate::web::observe::Observe::new(state))
        .configure(crate::admin_api::configure)
        .configure(configure)
        .default_service(web::to(ops::not_found))
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
    let workers = config.workers.unwrap_or_else(crate::state::cores);
    // Blocking work is almost all storage, which waits for one of the pool's connections: more
    // threads than connections only queue there, and each idle thread keeps its stack and heap
    // (actix allows 512 by default).
    let connections: usize = state.regions().map(|r| r.db.pool_stats().max_size as usize).sum();
    let blocking = connections.div_ceil(workers) + 2;
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
    // Every node follows the change feed, so caches drop changes made elsewhere.
    // Each region has its own change feed and outbox.
    for region in state.regions() {
        actix_web::rt::spawn(jobs::follow_changes(region.clone()));
        actix_web::rt::spawn(jobs::run_outbox(region.clone()));
    }
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
        region = %state.region,
        other_regions = ?state.other_regions.iter().map(|r| r.region.to_string()).collect::<Vec<_>>(),
        version = env!("CARGO_PKG_VERSION"),
        "latchkey is serving"
    );
    for region in state.regions() {
        actix_web::rt::spawn(jobs::key_scheduler(region.clone()));
    }
    let drain_delay = std::time::Duration::from_secs(state.config.drain_delay_secs);
    let server = run(listener, state.clone())?;
    let handle = server.handle();
    actix_web::rt::spawn(async move {
        let signal = shutdown_signal().await;
        if !drain_delay.is_zero() {
            // Still serving: the load balancer's next readiness probe takes this node out.
            tracing::info!(
                signal,
                delay_secs = drain_delay.as_secs(),
                "draining: /readyz fails, connections close after their answer"
            );
            state.start_draining();
            // A second signal ends the delay (not the in-flight requests' time to finish).
            tokio::select! {
                () = tokio::time::sleep(drain_delay) => {}
                second = shutdown_signal() => tracing::info!(signal = second, "second signal: draining ends early"),
            }
        }
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
    server.await.map_err(ServerError::Stopped)?;
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
