//! `latchkey serve`: HTTP(S) until SIGTERM/SIGINT, on actix's runtime.

use crate::error::CliError;
use latchkey_server::Config;

pub fn run(config: Config) -> Result<(), CliError> {
    actix_web::rt::System::new()
        .block_on(latchkey_server::serve(config))
        .map_err(CliError::from)
}

/// `latchkey healthcheck`: `GET /readyz` on the listen address (loopback when it listens on every
/// address), 5 s at most. With native TLS the request names the public URL's host, so the
/// certificate is checked as clients check it.
pub fn healthcheck(config: &Config) -> Result<(), CliError> {
    let mut addr = config.listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    let mut client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy();
    let url = match (&config.tls, url::Url::parse(&config.public_url)) {
        (Some(_), Ok(public)) if public.host_str().is_some() => {
            let host = public.host_str().unwrap_or_default().to_owned();
            client = client.resolve(&host, addr);
            format!("https://{host}:{}/readyz", addr.port())
        }
        _ => format!("http://{addr}/readyz"),
    };
    let not_ready = |reason: String| CliError::NotReady {
        url: url.clone(),
        reason,
    };
    let client = client.build().map_err(|e| not_ready(e.to_string()))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CliError::AsyncRuntime)?;
    let status = rt
        .block_on(async { client.get(&url).send().await.map(|r| r.status()) })
        .map_err(|e| not_ready(e.to_string()))?;
    if status.is_success() {
        println!("ready");
        Ok(())
    } else {
        Err(not_ready(format!("answered {status}")))
    }
}
