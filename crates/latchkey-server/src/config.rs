//! One typed configuration: an optional TOML file, overridden by `LATCHKEY_*` environment
//! variables. Loading is a pure function of (file contents, environment) so tests need no process
//! state. Every error names the setting.

use ipnet::IpNet;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("configuration: {setting}: {message}")]
pub struct ConfigError {
    pub setting: String,
    pub message: String,
}

fn cfg_err(setting: &str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        setting: setting.to_owned(),
        message: message.into(),
    }
}

/// A configured secret: usable, but never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// Without a trailing slash; tenant issuers are `{public_url}/t/{slug}`.
    pub public_url: String,
    pub database_url: String,
    pub session_store: String,
    /// The name of the home region: the one `database_url` and `session_store` hold
    /// (`LATCHKEY_REGION`, default `default`).
    pub region: String,
    /// The other regions this node serves, each a full Latchkey database of its own
    /// (`LATCHKEY_REGIONS`, see [`regions`]).
    pub regions: Vec<RegionSetting>,
    /// For a `rediss://` session store: the CA (PEM) that signed the server's certificate
    /// (without it, the system's roots).
    pub redis_ca_file: Option<PathBuf>,
    /// For a `rediss://` session store that asks for a client certificate (PEM files).
    pub redis_client_tls: Option<TlsFiles>,
    pub keys_dir: PathBuf,
    pub log: String,
    pub log_format: LogFormat,
    pub tls: Option<TlsFiles>,
    pub trusted_proxies: Vec<IpNet>,
    pub allow_insecure_http: bool,
    /// Bearer token for `/metrics` from non-loopback clients; without it only loopback may scrape.
    pub metrics_token: Option<Secret>,
    /// The 256-bit master key (base64); without it, `master.key` in `keys_dir` is used.
    pub master_key: Option<Secret>,
    /// A program and its arguments whose standard output is the master key (a KMS or secret
    /// manager's client), run at start; exclusive with `master_key`.
    pub master_key_command: Option<Vec<String>>,
    /// Seconds between key-rotation scheduler passes.
    pub key_scheduler_secs: u64,
    /// Largest request body accepted anywhere (bytes).
    pub max_body_bytes: usize,
    /// HTTP worker threads (default: one per core).
    pub workers: Option<usize>,
    /// Seconds in-flight requests get to finish after SIGTERM/SIGINT.
    pub shutdown_timeout_secs: u64,
    /// Seconds between SIGTERM and closing the listener, while `/readyz` fails and requests are
    /// still served: long enough for the load balancer's health check to take the node out.
    pub drain_delay_secs: u64,
    /// Where mail goes (`smtps://user:pass@host:465`, `smtp://host:587?tls=required`; plain
    /// `smtp://` only to loopback). Without it, mail is written to the log on a development
    /// issuer and held in the outbox otherwise.
    pub smtp_url: Option<Secret>,
    /// The `From` of every mail.
    pub mail_from: String,
    /// Seconds between outbox passes (new mail also wakes the sender at once).
    pub mail_poll_secs: u64,
    /// The WebAuthn relying-party id: the public URL's host (the default) or a parent domain of
    /// it. Never an IP address.
    pub webauthn_rp_id: Option<String>,
    /// MaxMind-format databases (city and/or ASN) for the geographic risk signals; none: off.
    pub geoip_db: Vec<PathBuf>,
    /// A file of CIDR ranges (one per line, `#` comments) whose sign-ins are denied.
    pub risk_denylist: Option<PathBuf>,
    /// How client addresses appear in logs.
    pub log_ip: LogIp,
    /// Refused SAML responses per client address (IPv6: per /64) and tenant in a minute before
    /// the ACS answers 429 without parsing or auditing.
    pub saml_acs_refusals_per_minute: u64,
    /// How long a request's database work may take, waiting for a connection included; work
    /// that would commit later is rolled back and answered 503 (its client has likely gone).
    pub database_deadline_ms: u64,
    /// Bytes of live access tokens a node keeps to answer introspection and UserInfo without
    /// the database (docs/performance.md#token-cache); 0 turns the cache off.
    pub token_cache_bytes: usize,
    /// Sign-ins one client address (IPv6: per /64) may leave pending per tenant in 15 minutes:
    /// OIDC interactions and SAML requests the server keeps for someone not yet signed in.
    pub pending_signins_per_address: u64,
    /// Non-public destinations tenant-chosen URLs (SAML metadata, webhooks) may reach: hosts,
    /// CIDRs or `*`; by default none (see `latchkey_services::outbound`).
    pub outbound_allow_private: latchkey_services::OutboundPolicy,
    /// The DNS server domain verification asks for TXT records (`address:port`); `None`: the
    /// system's (`/etc/resolv.conf`).
    pub dns_resolver: Option<SocketAddr>,
    /// Development and tests only: the HTTP challenge of domain verification is fetched over
    /// plain http from this address instead of `https://{domain}` (still through the outbound
    /// guard).
    pub domain_check_http_addr: Option<SocketAddr>,
}

/// A region besides the home one: its name, its database and its session store.
#[derive(Clone, PartialEq, Eq)]
pub struct RegionSetting {
    pub name: String,
    pub database_url: String,
    pub session_store: String,
}

impl std::fmt::Debug for RegionSetting {
    /// Without the URLs' secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = latchkey_store::DatabaseUrl::parse(&self.database_url)
            .map_or_else(|_| "(unparsable)".into(), |u| u.redacted());
        f.debug_struct("RegionSetting")
            .field("name", &self.name)
            .field("database_url", &shown)
            .finish_non_exhaustive()
    }
}

/// Client addresses in logs: whole, or cut to their /24 (IPv4) or /48 (IPv6) network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogIp {
    Full,
    Truncated,
}

impl LogIp {
    pub fn show(self, ip: std::net::IpAddr) -> String {
        match self {
            LogIp::Full => ip.to_string(),
            LogIp::Truncated => latchkey_risk::network_of(ip),
        }
    }
}

/// The settings, as a TOML file spells them (all optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    listen: Option<String>,
    public_url: Option<String>,
    database_url: Option<String>,
    session_store: Option<String>,
    region: Option<String>,
    regions: Option<String>,
    redis_ca_file: Option<String>,
    redis_client_cert: Option<String>,
    redis_client_key: Option<String>,
    keys_dir: Option<String>,
    log: Option<String>,
    log_format: Option<String>,
    tls_cert: Option<String>,
    tls_key: Option<String>,
    trusted_proxies: Option<StringOrList>,
    allow_insecure_http: Option<bool>,
    metrics_token: Option<String>,
    master_key: Option<String>,
    master_key_command: Option<String>,
    key_scheduler_secs: Option<u64>,
    max_body_bytes: Option<usize>,
    workers: Option<usize>,
    shutdown_timeout_secs: Option<u64>,
    drain_delay_secs: Option<u64>,
    smtp_url: Option<String>,
    mail_from: Option<String>,
    mail_poll_secs: Option<u64>,
    webauthn_rp_id: Option<String>,
    geoip_db: Option<StringOrList>,
    risk_denylist: Option<String>,
    log_ip: Option<String>,
    saml_acs_refusals_per_minute: Option<u64>,
    database_deadline_ms: Option<u64>,
    token_cache_bytes: Option<u64>,
    pending_signins_per_address: Option<u64>,
    outbound_allow_private: Option<StringOrList>,
    dns_resolver: Option<String>,
    domain_check_http_addr: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum StringOrList {
    One(String),
    Many(Vec<String>),
}

/// Every environment variable Latchkey reads, with its TOML key.
pub const ENV_SETTINGS: &[(&str, &str)] = &[
    ("LATCHKEY_LISTEN", "listen"),
    ("LATCHKEY_PUBLIC_URL", "public_url"),
    ("LATCHKEY_DATABASE_URL", "database_url"),
    ("LATCHKEY_SESSION_STORE", "session_store"),
    ("LATCHKEY_REGION", "region"),
    ("LATCHKEY_REGIONS", "regions"),
    ("LATCHKEY_REDIS_CA_FILE", "redis_ca_file"),
    ("LATCHKEY_REDIS_CLIENT_CERT", "redis_client_cert"),
    ("LATCHKEY_REDIS_CLIENT_KEY", "redis_client_key"),
    ("LATCHKEY_KEYS_DIR", "keys_dir"),
    ("LATCHKEY_LOG", "log"),
    ("LATCHKEY_LOG_FORMAT", "log_format"),
    ("LATCHKEY_TLS_CERT", "tls_cert"),
    ("LATCHKEY_TLS_KEY", "tls_key"),
    ("LATCHKEY_TRUSTED_PROXIES", "trusted_proxies"),
    ("LATCHKEY_ALLOW_INSECURE_HTTP", "allow_insecure_http"),
    ("LATCHKEY_METRICS_TOKEN", "metrics_token"),
    ("LATCHKEY_MASTER_KEY", "master_key"),
    ("LATCHKEY_MASTER_KEY_COMMAND", "master_key_command"),
    ("LATCHKEY_KEY_SCHEDULER_SECS", "key_scheduler_secs"),
    ("LATCHKEY_MAX_BODY_BYTES", "max_body_bytes"),
    ("LATCHKEY_WORKERS", "workers"),
    ("LATCHKEY_SHUTDOWN_TIMEOUT_SECS", "shutdown_timeout_secs"),
    ("LATCHKEY_DRAIN_DELAY_SECS", "drain_delay_secs"),
    ("LATCHKEY_SMTP_URL", "smtp_url"),
    ("LATCHKEY_MAIL_FROM", "mail_from"),
    ("LATCHKEY_MAIL_POLL_SECS", "mail_poll_secs"),
    ("LATCHKEY_WEBAUTHN_RP_ID", "webauthn_rp_id"),
    ("LATCHKEY_GEOIP_DB", "geoip_db"),
    ("LATCHKEY_RISK_DENYLIST", "risk_denylist"),
    ("LATCHKEY_LOG_IP", "log_ip"),
    (
        "LATCHKEY_SAML_ACS_REFUSALS_PER_MINUTE",
        "saml_acs_refusals_per_minute",
    ),
    ("LATCHKEY_DATABASE_DEADLINE_MS", "database_deadline_ms"),
    ("LATCHKEY_TOKEN_CACHE_BYTES", "token_cache_bytes"),
    (
        "LATCHKEY_PENDING_SIGNINS_PER_ADDRESS",
        "pending_signins_per_address",
    ),
    ("LATCHKEY_OUTBOUND_ALLOW_PRIVATE", "outbound_allow_private"),
    ("LATCHKEY_DNS_RESOLVER", "dns_resolver"),
    ("LATCHKEY_DOMAIN_CHECK_HTTP_ADDR", "domain_check_http_addr"),
];

/// Variables with the prefix that are not settings but are allowed (test harness, tooling).
fn ignored_env(name: &str) -> bool {
    name.starts_with("LATCHKEY_TEST_") || name == "LATCHKEY_CONFIG"
}

pub const DEFAULT_DATABASE_URL: &str = "sqlite://./latchkey-data/latchkey.db";

impl Config {
    /// The session store's TLS files, read (a `rediss://` store); an unreadable file is named.
    pub fn redis_tls(&self) -> Result<latchkey_session::RedisTls, ConfigError> {
        let read = |setting: &str, path: &Path| {
            std::fs::read(path).map_err(|e| cfg_err(setting, format!("cannot read {}: {e}", path.display())))
        };
        let ca_pem = match &self.redis_ca_file {
            Some(p) => Some(read("LATCHKEY_REDIS_CA_FILE", p)?),
            None => None,
        };
        let client = match &self.redis_client_tls {
            Some(files) => Some((
                read("LATCHKEY_REDIS_CLIENT_CERT", &files.cert)?,
                read("LATCHKEY_REDIS_CLIENT_KEY", &files.key)?,
            )),
            None => None,
        };
        Ok(latchkey_session::RedisTls { ca_pem, client })
    }

    /// Where the master key comes from, as [`latchkey_keys::load_master_key`] takes it.
    pub fn master_key_input(&self) -> latchkey_keys::KeyInput<'_> {
        match (&self.master_key_command, &self.master_key) {
            (Some(argv), _) => latchkey_keys::KeyInput::Command(argv),
            (None, Some(key)) => latchkey_keys::KeyInput::Value(key.expose()),
            (None, None) => latchkey_keys::KeyInput::Unset,
        }
    }

    /// Reads `file` if given (else `$LATCHKEY_CONFIG`, else `latchkey.toml` in the working
    /// directory if present), then applies the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let from_env = std::env::var_os("LATCHKEY_CONFIG")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        let (path, required, source) = match (file, from_env) {
            (Some(p), _) => (p.to_path_buf(), true, "--config"),
            (None, Some(p)) => (p, true, "LATCHKEY_CONFIG"),
            (None, None) => (PathBuf::from("latchkey.toml"), false, "latchkey.toml"),
        };
        let toml = match std::fs::read_to_string(&path) {
            Ok(s) => Some(s),
            Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                return Err(cfg_err(source, format!("cannot read {}: {e}", path.display())));
            }
        };
        let env: Vec<(String, String)> = std::env::vars_os()
            .filter_map(|(k, v)| {
                Some((
                    k.into_string().ok()?,
                    v.into_string().unwrap_or_else(|_| "\u{fffd}".into()),
                ))
            })
            .collect();
        // Logs go to standard error, so that is the stream whose kind picks the format.
        let is_terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
        Self::from_sources(toml.as_deref(), &env, is_terminal)
    }

    /// The pure core of `load`.
    pub fn from_sources(
        toml_text: Option<&str>,
        env: &[(String, String)],
        is_terminal: bool,
    ) -> Result<Self, ConfigError> {
        let mut raw: Raw = match toml_text {
            Some(t) => toml::from_str(t).map_err(|e| cfg_err("config file", e.message().to_owned()))?,
            None => Raw::default(),
        };
        for (name, value) in env.iter().filter(|(k, _)| k.starts_with("LATCHKEY_")) {
            if ignored_env(name) {
                continue;
            }
            let Some((_, key)) = ENV_SETTINGS.iter().find(|(n, _)| n == name) else {
                return Err(cfg_err(name, "unknown setting (see docs/configuration.md)"));
            };
            apply_env(&mut raw, name, key, value)?;
        }
        Self::from_raw(raw, is_terminal)
    }

    fn from_raw(raw: Raw, is_terminal: bool) -> Result<Self, ConfigError> {
        let listen_s = raw.listen.clone().unwrap_or_else(|| "127.0.0.1:8080".into());
        let listen = listen_s.parse::<SocketAddr>().map_err(|_| {
            cfg_err(
                "LATCHKEY_LISTEN",
                format!("{listen_s:?} is not an address:port such as 127.0.0.1:8080"),
            )
        })?;
        let allow_insecure_http = raw.allow_insecure_http.unwrap_or(false);
        let public_url = public_url(
            raw.public_url.as_deref().unwrap_or("http://localhost:8080"),
            allow_insecure_http,
        )?;
        let (database_url, session_store, region, regions) = storage(&raw)?;
        let redis_client_tls = redis_client_tls(&raw, &session_store)?;
        let log_format = log_format(raw.log_format.as_deref(), is_terminal)?;
        let log = raw.log.clone().unwrap_or_else(|| "info".into());
        tracing_subscriber::EnvFilter::try_new(&log).map_err(|e| cfg_err("LATCHKEY_LOG", e.to_string()))?;
        let tls = tls_files(raw.tls_cert.clone(), raw.tls_key.clone())?;
        let trusted_proxies = match &raw.trusted_proxies {
            None => Vec::new(),
            Some(StringOrList::One(s)) => parse_cidrs(s.split(',').map(str::trim).filter(|s| !s.is_empty()))?,
            Some(StringOrList::Many(v)) => parse_cidrs(v.iter().map(|s| s.trim()))?,
        };
        check_ranges(&raw)?;
        if let Some(rp) = &raw.webauthn_rp_id {
            check_rp_id(rp, &public_url)?;
        }
        let mail_from = mail_from(raw.mail_from.clone(), &public_url)?;
        let log_ip = log_ip(raw.log_ip.as_deref())?;
        let outbound_allow_private = outbound_allow_private(raw.outbound_allow_private.as_ref())?;
        let dns_resolver = socket_addr("LATCHKEY_DNS_RESOLVER", raw.dns_resolver.as_deref())?;
        let domain_check_http_addr = socket_addr(
            "LATCHKEY_DOMAIN_CHECK_HTTP_ADDR",
            raw.domain_check_http_addr.as_deref(),
        )?;
        Ok(Config {
            outbound_allow_private,
            dns_resolver,
            domain_check_http_addr,
            geoip_db: geoip_paths(raw.geoip_db),
            risk_denylist: raw.risk_denylist.map(PathBuf::from),
            log_ip,
            listen,
            public_url,
            database_url,
            session_store,
            region,
            regions,
            redis_ca_file: raw.redis_ca_file.map(PathBuf::from),
            redis_client_tls,
            keys_dir: raw.keys_dir.unwrap_or_else(|| "./keys".into()).into(),
            log,
            log_format,
            tls,
            trusted_proxies,
            allow_insecure_http,
            metrics_token: raw.metrics_token.map(Secret),
            master_key_command: master_key_command(
                raw.master_key.as_deref(),
                raw.master_key_command.as_deref(),
            )?,
            master_key: raw.master_key.map(Secret),
            key_scheduler_secs: raw.key_scheduler_secs.unwrap_or(60),
            max_body_bytes: raw.max_body_bytes.unwrap_or(64 * 1024),
            workers: raw.workers,
            shutdown_timeout_secs: raw.shutdown_timeout_secs.unwrap_or(30),
            drain_delay_secs: raw.drain_delay_secs.unwrap_or(0),
            smtp_url: raw.smtp_url.map(Secret),
            mail_from,
            mail_poll_secs: raw.mail_poll_secs.unwrap_or(10),
            webauthn_rp_id: raw.webauthn_rp_id,
            saml_acs_refusals_per_minute: raw.saml_acs_refusals_per_minute.unwrap_or(60),
            database_deadline_ms: raw.database_deadline_ms.unwrap_or(3_000),
            token_cache_bytes: usize::try_from(raw.token_cache_bytes.unwrap_or(4 << 20))
                .unwrap_or(usize::MAX),
            pending_signins_per_address: raw.pending_signins_per_address.unwrap_or(200),
        })
    }

    /// `{public_url}/t/{slug}`: the tenant's OIDC issuer.
    pub fn issuer(&self, slug: &str) -> String {
        format!("{}/t/{slug}", self.public_url)
    }

    /// Whether the public URL is plain http (development on loopback).
    pub fn insecure_public_url(&self) -> bool {
        self.public_url.starts_with("http://")
    }
}

fn apply_env(raw: &mut Raw, name: &str, key: &str, value: &str) -> Result<(), ConfigError> {
    let parse_num = |v: &str| {
        v.trim()
            .parse::<usize>()
            .map_err(|_| cfg_err(name, format!("{v:?} is not a number")))
    };
    let v = Some(value.to_owned());
    match key {
        "listen" => raw.listen = v,
        "public_url" => raw.public_url = v,
        "database_url" => raw.database_url = v,
        "session_store" => raw.session_store = v,
        "region" => raw.region = v,
        "regions" => raw.regions = v,
        "redis_ca_file" => raw.redis_ca_file = v,
        "redis_client_cert" => raw.redis_client_cert = v,
        "redis_client_key" => raw.redis_client_key = v,
        "keys_dir" => raw.keys_dir = v,
        "log" => raw.log = v,
        "log_format" => raw.log_format = v,
        "tls_cert" => raw.tls_cert = v,
        "tls_key" => raw.tls_key = v,
        "trusted_proxies" => raw.trusted_proxies = Some(StringOrList::One(value.to_owned())),
        "allow_insecure_http" => {
            raw.allow_insecure_http = Some(match value.trim() {
                "1" | "true" | "yes" => true,
                "0" | "false" | "no" | "" => false,
                other => return Err(cfg_err(name, format!("{other:?}: expected 1 or 0"))),
            });
        }
        "metrics_token" => raw.metrics_token = v,
        "master_key" => raw.master_key = v,
        "master_key_command" => raw.master_key_command = v,
        "key_scheduler_secs" => raw.key_scheduler_secs = Some(parse_num(value)? as u64),
        "max_body_bytes" => raw.max_body_bytes = Some(parse_num(value)?),
        "workers" => raw.workers = Some(parse_num(value)?),
        "shutdown_timeout_secs" => raw.shutdown_timeout_secs = Some(parse_num(value)? as u64),
        "drain_delay_secs" => raw.drain_delay_secs = Some(parse_num(value)? as u64),
        "smtp_url" => raw.smtp_url = v.filter(|s| !s.is_empty()),
        "mail_from" => raw.mail_from = v,
        "mail_poll_secs" => raw.mail_poll_secs = Some(parse_num(value)? as u64),
        "webauthn_rp_id" => raw.webauthn_rp_id = v.filter(|s| !s.is_empty()),
        "geoip_db" => raw.geoip_db = Some(StringOrList::One(value.to_owned())),
        "risk_denylist" => raw.risk_denylist = v.filter(|s| !s.is_empty()),
        "log_ip" => raw.log_ip = v,
        "saml_acs_refusals_per_minute" => raw.saml_acs_refusals_per_minute = Some(parse_num(value)? as u64),
        "database_deadline_ms" => raw.database_deadline_ms = Some(parse_num(value)? as u64),
        "token_cache_bytes" => raw.token_cache_bytes = Some(parse_num(value)? as u64),
        "pending_signins_per_address" => raw.pending_signins_per_address = Some(parse_num(value)? as u64),
        "outbound_allow_private" => raw.outbound_allow_private = Some(StringOrList::One(value.to_owned())),
        "dns_resolver" => raw.dns_resolver = v.filter(|s| !s.is_empty()),
        "domain_check_http_addr" => raw.domain_check_http_addr = v.filter(|s| !s.is_empty()),
        _ => return Err(cfg_err(name, "unknown setting")),
    }
    Ok(())
}

/// An optional `address:port` setting.
fn socket_addr(name: &str, value: Option<&str>) -> Result<Option<SocketAddr>, ConfigError> {
    value
        .map(|v| {
            v.parse::<SocketAddr>()
                .map_err(|_| cfg_err(name, format!("{v:?} is not an address:port such as 127.0.0.1:53")))
        })
        .transpose()
}

/// Mail carries reset links: it leaves only over TLS, except to a relay on this machine.
fn check_smtp_url(s: &str) -> Result<(), ConfigError> {
    let setting = "LATCHKEY_SMTP_URL";
    // The message never repeats the URL: it may hold the relay's password.
    let url = url::Url::parse(s).map_err(|e| cfg_err(setting, format!("not a URL: {e}")))?;
    let host = url.host_str().unwrap_or_default();
    if host.is_empty() {
        return Err(cfg_err(setting, "names no host"));
    }
    let tls_required = url.query_pairs().any(|(k, v)| k == "tls" && v == "required");
    match url.scheme() {
        "smtps" => Ok(()),
        "smtp" if tls_required || is_loopback(host) => Ok(()),
        "smtp" => Err(cfg_err(
            setting,
            "plain smtp:// is allowed only to loopback; use smtps://host:465 or smtp://host:587?tls=required",
        )),
        other => Err(cfg_err(
            setting,
            format!("scheme {other:?}: expected smtps or smtp"),
        )),
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `outbound_allow_private`: comma-separated (env) or a list (TOML) of hosts, addresses, CIDRs
/// or `*`.
fn outbound_allow_private(
    given: Option<&StringOrList>,
) -> Result<latchkey_services::OutboundPolicy, ConfigError> {
    let parsed = match given {
        None => Ok(latchkey_services::OutboundPolicy::default()),
        Some(StringOrList::One(s)) => latchkey_services::OutboundPolicy::parse(s.split(',')),
        Some(StringOrList::Many(v)) => latchkey_services::OutboundPolicy::parse(v.iter().map(String::as_str)),
    };
    parsed.map_err(|e| cfg_err("LATCHKEY_OUTBOUND_ALLOW_PRIVATE", e))
}

fn parse_cidrs<'a>(items: impl Iterator<Item = &'a str>) -> Result<Vec<IpNet>, ConfigError> {
    items
        .map(|s| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    cfg_err(
                        "LATCHKEY_TRUSTED_PROXIES",
                        format!("{s:?} is not a CIDR such as 10.0.0.0/8"),
                    )
                })
        })
        .collect()
}

fn public_url(s: &str, allow_insecure: bool) -> Result<String, ConfigError> {
    let setting = "LATCHKEY_PUBLIC_URL";
    let url = url::Url::parse(s).map_err(|e| cfg_err(setting, format!("{s:?} is not a URL: {e}")))?;
    if url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(cfg_err(
            setting,
            "must not contain user information, a query or a fragment",
        ));
    }
    let host = url.host_str().unwrap_or_default();
    match url.scheme() {
        "https" => {}
        "http" => {
            if !is_loopback(host) && !allow_insecure {
                return Err(cfg_err(
                    setting,
                    format!(
                        "{s:?} uses http on a non-loopback host; use https (or set LATCHKEY_ALLOW_INSECURE_HTTP=1 for a trusted test network)"
                    ),
                ));
            }
        }
        other => {
            return Err(cfg_err(
                setting,
                format!("scheme {other:?}: expected https or http"),
            ));
        }
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// `LATCHKEY_MASTER_KEY_COMMAND` split into words as a POSIX shell would (quotes, backslashes;
/// no expansion: it is run without a shell). Set with a non-empty `LATCHKEY_MASTER_KEY` it is
/// refused: one source of the key, not a precedence rule to remember.
fn master_key_command(key: Option<&str>, command: Option<&str>) -> Result<Option<Vec<String>>, ConfigError> {
    const SETTING: &str = "LATCHKEY_MASTER_KEY_COMMAND";
    let Some(command) = command.filter(|c| !c.trim().is_empty()) else {
        return Ok(None);
    };
    if key.is_some_and(|k| !k.trim().is_empty()) {
        return Err(cfg_err(
            SETTING,
            "set LATCHKEY_MASTER_KEY or LATCHKEY_MASTER_KEY_COMMAND, not both",
        ));
    }
    match shlex::split(command) {
        Some(words) if !words.is_empty() => Ok(Some(words)),
        _ => Err(cfg_err(SETTING, format!("{command:?}: unbalanced quotes"))),
    }
}

/// `memory`, `redis://…` or `rediss://…` (Redis over TLS).
fn session_store(value: Option<String>) -> Result<String, ConfigError> {
    let session_store = value.unwrap_or_else(|| "memory".into());
    if !(session_store == "memory"
        || session_store.starts_with("redis://")
        || session_store.starts_with("rediss://")
        || session_store.starts_with("redis-sentinel://"))
    {
        return Err(cfg_err(
            "LATCHKEY_SESSION_STORE",
            format!("{session_store:?}: expected memory, redis://…, rediss://… or redis-sentinel://…"),
        ));
    }
    Ok(session_store)
}

/// The home region's database, session store and name, and the other regions.
fn storage(raw: &Raw) -> Result<(String, String, String, Vec<RegionSetting>), ConfigError> {
    let database_url = raw
        .database_url
        .clone()
        .unwrap_or_else(|| DEFAULT_DATABASE_URL.into());
    latchkey_store::DatabaseUrl::parse(&database_url)
        .map_err(|e| cfg_err("LATCHKEY_DATABASE_URL", e.to_string()))?;
    let session_store = session_store(raw.session_store.clone())?;
    let region = region_name("LATCHKEY_REGION", raw.region.as_deref().unwrap_or("default"))?;
    let regions = regions(
        raw.regions.as_deref().unwrap_or_default(),
        &region,
        &session_store,
    )?;
    Ok((database_url, session_store, region, regions))
}

/// A region's name: 1 to 32 of `a-z`, `0-9` and `-`.
fn region_name(setting: &str, name: &str) -> Result<String, ConfigError> {
    let ok = (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(name.to_owned())
    } else {
        Err(cfg_err(
            setting,
            format!("{name:?} is not a region name (1 to 32 of a-z, 0-9 and -)"),
        ))
    }
}

/// `LATCHKEY_REGIONS`: `name=DATABASE_URL[|SESSION_STORE]` entries separated by `;`. Neither
/// `;` nor `|` may appear in a URL (percent-encode them: `%3B`, `%7C`). A region without its
/// own session store shares the node's only when that is `memory` (node-local); sessions are
/// tenant data, so a Redis store is never shared between regions.
fn regions(value: &str, home: &str, home_sessions: &str) -> Result<Vec<RegionSetting>, ConfigError> {
    const SETTING: &str = "LATCHKEY_REGIONS";
    let mut out: Vec<RegionSetting> = Vec::new();
    for entry in value.split(';').map(str::trim).filter(|e| !e.is_empty()) {
        let Some((name, rest)) = entry.split_once('=') else {
            return Err(cfg_err(
                SETTING,
                "each region is name=DATABASE_URL[|SESSION_STORE]",
            ));
        };
        let name = region_name(SETTING, name.trim())?;
        if name == home || out.iter().any(|r| r.name == name) {
            return Err(cfg_err(SETTING, format!("region {name:?} is named twice")));
        }
        let mut parts = rest.split('|').map(str::trim);
        let database_url = parts.next().unwrap_or_default().to_owned();
        let sessions = parts.next().map(str::to_owned);
        if parts.next().is_some() {
            return Err(cfg_err(SETTING, format!("region {name:?}: more than one '|'")));
        }
        latchkey_store::DatabaseUrl::parse(&database_url)
            .map_err(|e| cfg_err(SETTING, format!("region {name:?}: {e}")))?;
        let session_store = match sessions {
            Some(s) => session_store(Some(s))
                .map_err(|e| cfg_err(SETTING, format!("region {name:?}: {}", e.message)))?,
            None if home_sessions == "memory" => "memory".to_owned(),
            None => {
                return Err(cfg_err(
                    SETTING,
                    format!(
                        "region {name:?} needs its own session store (name=DATABASE_URL|redis://…): \
                         sessions stay in their region"
                    ),
                ));
            }
        };
        out.push(RegionSetting {
            name,
            database_url,
            session_store,
        });
    }
    Ok(out)
}

/// JSON unless unset on a terminal (then pretty).
fn log_format(value: Option<&str>, is_terminal: bool) -> Result<LogFormat, ConfigError> {
    match value {
        None if is_terminal => Ok(LogFormat::Pretty),
        None | Some("json") => Ok(LogFormat::Json),
        Some("pretty") => Ok(LogFormat::Pretty),
        Some(other) => Err(cfg_err(
            "LATCHKEY_LOG_FORMAT",
            format!("{other:?}: expected json or pretty"),
        )),
    }
}

/// Native TLS needs both files, or neither.
fn tls_files(cert: Option<String>, key: Option<String>) -> Result<Option<TlsFiles>, ConfigError> {
    pair(("LATCHKEY_TLS_CERT", cert), ("LATCHKEY_TLS_KEY", key))
}

/// The session store's client certificate and key; any Redis TLS setting needs `rediss://`.
fn redis_client_tls(raw: &Raw, session_store: &str) -> Result<Option<TlsFiles>, ConfigError> {
    let files = pair(
        ("LATCHKEY_REDIS_CLIENT_CERT", raw.redis_client_cert.clone()),
        ("LATCHKEY_REDIS_CLIENT_KEY", raw.redis_client_key.clone()),
    )?;
    if (raw.redis_ca_file.is_some() || files.is_some()) && !session_store.starts_with("rediss://") {
        return Err(cfg_err(
            "LATCHKEY_SESSION_STORE",
            "the Redis TLS settings need a rediss:// session store",
        ));
    }
    Ok(files)
}

/// A certificate and its key, both set or neither.
fn pair(
    (cert_setting, cert): (&str, Option<String>),
    (key_setting, key): (&str, Option<String>),
) -> Result<Option<TlsFiles>, ConfigError> {
    match (cert, key) {
        (None, None) => Ok(None),
        (Some(cert), Some(key)) => Ok(Some(TlsFiles {
            cert: cert.into(),
            key: key.into(),
        })),
        (Some(_), None) => Err(cfg_err(
            key_setting,
            format!("{cert_setting} is set but the key is not"),
        )),
        (None, Some(_)) => Err(cfg_err(
            cert_setting,
            format!("{key_setting} is set but the certificate is not"),
        )),
    }
}

/// The numeric settings' bounds, the metrics token's length and the SMTP URL.
fn check_ranges(raw: &Raw) -> Result<(), ConfigError> {
    if raw
        .max_body_bytes
        .is_some_and(|b| !(1024..=16 * 1024 * 1024).contains(&b))
    {
        return Err(cfg_err(
            "LATCHKEY_MAX_BODY_BYTES",
            "must be between 1024 and 16777216",
        ));
    }
    if raw.key_scheduler_secs.is_some_and(|s| !(1..=86_400).contains(&s)) {
        return Err(cfg_err(
            "LATCHKEY_KEY_SCHEDULER_SECS",
            "must be between 1 and 86400",
        ));
    }
    if raw.drain_delay_secs.is_some_and(|s| s > 300) {
        return Err(cfg_err("LATCHKEY_DRAIN_DELAY_SECS", "must be between 0 and 300"));
    }
    if raw.workers.is_some_and(|w| !(1..=512).contains(&w)) {
        return Err(cfg_err("LATCHKEY_WORKERS", "must be between 1 and 512"));
    }
    if raw.metrics_token.as_deref().is_some_and(|t| t.len() < 16) {
        return Err(cfg_err(
            "LATCHKEY_METRICS_TOKEN",
            "must be at least 16 characters",
        ));
    }
    if raw.mail_poll_secs.is_some_and(|s| !(1..=3600).contains(&s)) {
        return Err(cfg_err("LATCHKEY_MAIL_POLL_SECS", "must be between 1 and 3600"));
    }
    if raw
        .saml_acs_refusals_per_minute
        .is_some_and(|n| !(1..=1_000_000).contains(&n))
    {
        return Err(cfg_err(
            "LATCHKEY_SAML_ACS_REFUSALS_PER_MINUTE",
            "must be between 1 and 1000000",
        ));
    }
    if raw
        .pending_signins_per_address
        .is_some_and(|n| !(1..=1_000_000).contains(&n))
    {
        return Err(cfg_err(
            "LATCHKEY_PENDING_SIGNINS_PER_ADDRESS",
            "must be between 1 and 1000000",
        ));
    }
    if raw
        .database_deadline_ms
        .is_some_and(|n| !(100..=60_000).contains(&n))
    {
        return Err(cfg_err(
            "LATCHKEY_DATABASE_DEADLINE_MS",
            "must be between 100 and 60000",
        ));
    }
    if raw.token_cache_bytes.is_some_and(|n| n > 1 << 30) {
        return Err(cfg_err(
            "LATCHKEY_TOKEN_CACHE_BYTES",
            "must be between 0 and 1073741824",
        ));
    }
    if let Some(smtp) = &raw.smtp_url {
        check_smtp_url(smtp)?;
    }
    Ok(())
}

/// The WebAuthn RP ID must be the public URL's host or a parent domain of it (WebAuthn §5.1.4).
fn check_rp_id(rp: &str, public_url: &str) -> Result<(), ConfigError> {
    let host = url::Url::parse(public_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default();
    if rp.parse::<std::net::IpAddr>().is_ok() || !(host == rp || host.ends_with(&format!(".{rp}"))) {
        return Err(cfg_err(
            "LATCHKEY_WEBAUTHN_RP_ID",
            format!(
                "{rp:?} must be the public URL's host {host:?} or a parent domain of it, not an IP address"
            ),
        ));
    }
    Ok(())
}

/// The `From` of every mail: as set (one line, an address), else no-reply at the public host.
fn mail_from(value: Option<String>, public_url: &str) -> Result<String, ConfigError> {
    match value {
        Some(m) if m.contains('@') && !m.contains(['\r', '\n']) => Ok(m),
        Some(m) => Err(cfg_err(
            "LATCHKEY_MAIL_FROM",
            format!("{m:?} is not an address such as Acme <no-reply@example.com>"),
        )),
        None => Ok(format!(
            "Latchkey <no-reply@{}>",
            url::Url::parse(public_url)
                .ok()
                .and_then(|u| u.host_str().map(str::to_owned))
                .unwrap_or_else(|| "localhost".into())
        )),
    }
}

fn geoip_paths(value: Option<StringOrList>) -> Vec<PathBuf> {
    match value {
        None => Vec::new(),
        Some(StringOrList::One(s)) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
            .collect(),
        Some(StringOrList::Many(v)) => v.into_iter().map(PathBuf::from).collect(),
    }
}

fn log_ip(value: Option<&str>) -> Result<LogIp, ConfigError> {
    match value.map(str::trim) {
        None | Some("truncated") => Ok(LogIp::Truncated),
        Some("full") => Ok(LogIp::Full),
        Some(other) => Err(cfg_err(
            "LATCHKEY_LOG_IP",
            format!("{other:?}: expected truncated or full"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn defaults_are_the_embedded_setup() {
        let c = Config::from_sources(None, &[], false).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.public_url, "http://localhost:8080");
        assert_eq!(c.database_url, DEFAULT_DATABASE_URL);
        assert_eq!(c.session_store, "memory");
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(
            Config::from_sources(None, &[], true).unwrap().log_format,
            LogFormat::Pretty
        );
        assert_eq!(c.issuer("demo"), "http://localhost:8080/t/demo");
    }

    #[test]
    fn private_outbound_destinations_are_refused_unless_listed() {
        let c = Config::from_sources(None, &[], false).unwrap();
        assert_eq!(
            c.outbound_allow_private,
            latchkey_services::OutboundPolicy::default()
        );
        let listed = Config::from_sources(
            None,
            &env(&[("LATCHKEY_OUTBOUND_ALLOW_PRIVATE", "idp.corp.internal, 10.0.0.0/8")]),
            false,
        )
        .unwrap();
        assert_eq!(
            listed.outbound_allow_private,
            latchkey_services::OutboundPolicy::parse(["idp.corp.internal", "10.0.0.0/8"]).unwrap()
        );
        let file = Config::from_sources(Some("outbound_allow_private = [\"*\"]"), &[], false).unwrap();
        assert_eq!(
            file.outbound_allow_private,
            latchkey_services::OutboundPolicy::allow_all()
        );
        let e = Config::from_sources(
            None,
            &env(&[("LATCHKEY_OUTBOUND_ALLOW_PRIVATE", "10.0.0.0/40")]),
            false,
        )
        .unwrap_err();
        assert_eq!(e.setting, "LATCHKEY_OUTBOUND_ALLOW_PRIVATE");
    }

    #[test]
    fn client_addresses_are_truncated_in_logs_unless_asked() {
        let c = Config::from_sources(None, &[], false).unwrap();
        assert_eq!(c.log_ip, LogIp::Truncated);
        assert_eq!(c.log_ip.show("203.0.113.77".parse().unwrap()), "203.0.113.0/24");
        assert_eq!(
            c.log_ip.show("2001:db8:1:2::9".parse().unwrap()),
            "2001:db8:1::/48"
        );
        let full = Config::from_sources(None, &env(&[("LATCHKEY_LOG_IP", "full")]), false).unwrap();
        assert_eq!(full.log_ip.show("203.0.113.77".parse().unwrap()), "203.0.113.77");
        let err = Config::from_sources(None, &env(&[("LATCHKEY_LOG_IP", "hashed")]), false).unwrap_err();
        assert_eq!(err.setting, "LATCHKEY_LOG_IP");
        let geo =
            Config::from_sources(None, &env(&[("LATCHKEY_GEOIP_DB", "/a.mmdb, /b.mmdb")]), false).unwrap();
        assert_eq!(geo.geoip_db.len(), 2);
    }

    #[test]
    fn environment_overrides_the_file() {
        let file = "listen = \"0.0.0.0:9000\"\npublic_url = \"https://sso.example.com/\"\ntrusted_proxies = [\"10.0.0.0/8\"]";
        let c =
            Config::from_sources(Some(file), &env(&[("LATCHKEY_LISTEN", "127.0.0.1:7000")]), false).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:7000");
        assert_eq!(c.public_url, "https://sso.example.com");
        assert_eq!(c.trusted_proxies.len(), 1);
    }

    #[test]
    fn secrets_do_not_show_in_debug_output() {
        let c = Config::from_sources(
            None,
            &env(&[
                ("LATCHKEY_MASTER_KEY", "c2VjcmV0LW1hc3Rlci1rZXk="),
                ("LATCHKEY_METRICS_TOKEN", "metrics-token-123456"),
            ]),
            false,
        )
        .unwrap();
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("c2VjcmV0") && !shown.contains("metrics-token"),
            "{shown}"
        );
        assert_eq!(c.master_key.unwrap().expose(), "c2VjcmV0LW1hc3Rlci1rZXk=");
    }

    #[test]
    fn mail_leaves_over_tls_except_to_loopback() {
        for ok in [
            "smtps://user:pass@mail.example.com:465",
            "smtp://mail.example.com:587?tls=required",
            "smtp://127.0.0.1:2525",
        ] {
            let c = Config::from_sources(None, &env(&[("LATCHKEY_SMTP_URL", ok)]), false).unwrap();
            assert!(
                !format!("{c:?}").contains("pass@"),
                "the relay password stays hidden"
            );
        }
        let e = Config::from_sources(
            None,
            &env(&[("LATCHKEY_SMTP_URL", "smtp://user:hunter2@mail.example.com")]),
            false,
        )
        .unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
        let c = Config::from_sources(None, &[], false).unwrap();
        assert_eq!(c.mail_from, "Latchkey <no-reply@localhost>");
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = Config::from_sources(Some("lisen = \"x\""), &[], false).unwrap_err();
        assert!(e.to_string().contains("lisen"), "{e}");
        let e = Config::from_sources(None, &env(&[("LATCHKEY_LISTN", "x")]), false).unwrap_err();
        assert_eq!(e.setting, "LATCHKEY_LISTN");
        assert!(Config::from_sources(None, &env(&[("LATCHKEY_TEST_POSTGRES_URL", "x")]), false).is_ok());
    }

    #[test]
    fn malformed_values_name_their_setting() {
        for (k, v) in [
            ("LATCHKEY_LISTEN", "localhost"),
            ("LATCHKEY_PUBLIC_URL", "not a url"),
            ("LATCHKEY_DATABASE_URL", "mysql://x"),
            ("LATCHKEY_SESSION_STORE", "memcached://x"),
            ("LATCHKEY_LOG_FORMAT", "xml"),
            ("LATCHKEY_TRUSTED_PROXIES", "10.0.0.0/33"),
            ("LATCHKEY_MAX_BODY_BYTES", "lots"),
            ("LATCHKEY_TLS_CERT", "/tmp/cert.pem"),
            ("LATCHKEY_ALLOW_INSECURE_HTTP", "maybe"),
            ("LATCHKEY_WORKERS", "513"),
            ("LATCHKEY_SMTP_URL", "smtp://mail.example.com:25"),
            ("LATCHKEY_SMTP_URL", "http://mail.example.com"),
            ("LATCHKEY_MAIL_FROM", "nobody"),
            ("LATCHKEY_MAIL_POLL_SECS", "0"),
            ("LATCHKEY_PENDING_SIGNINS_PER_ADDRESS", "0"),
        ] {
            let e = Config::from_sources(None, &env(&[(k, v)]), false).unwrap_err();
            let expected = if k == "LATCHKEY_TLS_CERT" {
                "LATCHKEY_TLS_KEY"
            } else {
                k
            };
            assert_eq!(e.setting, expected, "{k}={v}: {e}");
        }
    }

    #[test]
    fn plain_http_public_url_only_on_loopback_unless_allowed() {
        for ok in [
            "http://localhost:8080",
            "http://127.0.0.1:8080",
            "http://[::1]:8080",
            "https://sso.example.com",
        ] {
            assert!(
                Config::from_sources(None, &env(&[("LATCHKEY_PUBLIC_URL", ok)]), false).is_ok(),
                "{ok}"
            );
        }
        let e = Config::from_sources(
            None,
            &env(&[("LATCHKEY_PUBLIC_URL", "http://sso.example.com")]),
            false,
        )
        .unwrap_err();
        assert_eq!(e.setting, "LATCHKEY_PUBLIC_URL");
        let ok = Config::from_sources(
            None,
            &env(&[
                ("LATCHKEY_PUBLIC_URL", "http://sso.example.com"),
                ("LATCHKEY_ALLOW_INSECURE_HTTP", "1"),
            ]),
            false,
        );
        assert!(ok.is_ok());
    }

    #[test]
    fn a_master_key_command_is_split_like_a_shell_and_exclusive_with_the_key() {
        let argv = master_key_command(None, Some("vault kv get -field=key 'secret/latch key'")).unwrap();
        assert_eq!(
            argv.unwrap(),
            ["vault", "kv", "get", "-field=key", "secret/latch key"]
        );
        assert_eq!(master_key_command(Some(""), Some("  ")).unwrap(), None);
        let both = master_key_command(Some("c2VjcmV0"), Some("cat /run/key")).unwrap_err();
        assert!(both.to_string().contains("not both"), "{both}");
        let open = master_key_command(None, Some("cat 'unterminated")).unwrap_err();
        assert!(open.to_string().contains("unbalanced quotes"), "{open}");
    }

    #[test]
    fn regions_are_read_with_their_session_stores_and_never_show_passwords() {
        let c = Config::from_sources(
            None,
            &env(&[
                ("LATCHKEY_REGION", "eu"),
                ("LATCHKEY_SESSION_STORE", "redis://eu-redis"),
                (
                    "LATCHKEY_REGIONS",
                    " us=postgres://lk:s3cret@us-db/lk|redis://us-redis ; ap=postgres://ap-db/lk|memory;",
                ),
            ]),
            false,
        )
        .unwrap();
        assert_eq!(c.region, "eu");
        let names: Vec<(&str, &str)> = c
            .regions
            .iter()
            .map(|r| (r.name.as_str(), r.session_store.as_str()))
            .collect();
        assert_eq!(names, [("us", "redis://us-redis"), ("ap", "memory")]);
        assert!(!format!("{c:?}").contains("s3cret"));
        let home = Config::from_sources(None, &[], false).unwrap();
        assert_eq!((home.region.as_str(), home.regions.len()), ("default", 0));
        let err = Config::from_sources(None, &env(&[("LATCHKEY_REGION", "EU!")]), false).unwrap_err();
        assert_eq!(err.setting, "LATCHKEY_REGION");
    }

    #[test]
    fn rediss_is_accepted_and_redis_tls_settings_need_it() {
        let c = Config::from_sources(
            None,
            &env(&[("LATCHKEY_SESSION_STORE", "rediss://cache:6380")]),
            false,
        )
        .unwrap();
        assert_eq!(c.session_store, "rediss://cache:6380");
        let ca = ("LATCHKEY_REDIS_CA_FILE", "/etc/latchkey/redis-ca.pem");
        let e = Config::from_sources(
            None,
            &env(&[("LATCHKEY_SESSION_STORE", "redis://cache"), ca]),
            false,
        )
        .unwrap_err();
        assert_eq!(e.setting, "LATCHKEY_SESSION_STORE", "{e}");
        let half = [
            ("LATCHKEY_SESSION_STORE", "rediss://cache"),
            ("LATCHKEY_REDIS_CLIENT_CERT", "/c.pem"),
        ];
        let e = Config::from_sources(None, &env(&half), false).unwrap_err();
        assert_eq!(e.setting, "LATCHKEY_REDIS_CLIENT_KEY", "{e}");
        let c = Config::from_sources(
            None,
            &env(&[("LATCHKEY_SESSION_STORE", "rediss://cache"), ca]),
            false,
        )
        .unwrap();
        let e = c.redis_tls().err().expect("the CA file does not exist");
        assert!(
            e.setting == "LATCHKEY_REDIS_CA_FILE" && e.to_string().contains("cannot read"),
            "{e}"
        );
    }
}
