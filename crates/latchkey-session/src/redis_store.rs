//! Redis backend (redis 1.x, tokio connection manager). Keys are `{prefix}{tenant}:{kind}:{key}`;
//! every write sets its TTL in the same round trip (one atomic pipeline), so nothing lives forever.

use crate::{
    Ephemeral, OneTimeStore, RateCounter, RateHit, Result, SessionError, SessionId, SessionStore, ttl_millis,
};
use async_trait::async_trait;
use latchkey_core::{Admit, Breaker, BreakerState, Session, TenantId, UserId};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone)]
pub struct RedisStore {
    conn: Link,
    prefix: String,
    /// Open while Redis is known to be down: callers get `CircuitOpen` at once.
    breaker: Arc<Breaker>,
}

/// Whether an error means Redis is unreachable (as opposed to a refused command).
fn means_down(e: &redis::RedisError) -> bool {
    e.is_io_error() || e.is_connection_refusal() || e.is_connection_dropped() || e.is_timeout()
}

/// How the store reaches the Redis primary: one address, or whichever the Sentinels name.
#[derive(Clone)]
enum Link {
    Direct(ConnectionManager),
    Sentinel(Arc<SentinelLink>),
}

/// A primary found through Sentinel: the connection to it, dropped when it stops answering or
/// says it is a replica now (a failover), so the next command asks the Sentinels again.
struct SentinelLink {
    sentinel: tokio::sync::Mutex<redis::sentinel::SentinelClient>,
    current: std::sync::RwLock<Option<ConnectionManager>>,
    config: ConnectionManagerConfig,
}

impl SentinelLink {
    fn current(&self) -> Option<ConnectionManager> {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl Link {
    async fn conn(&self) -> redis::RedisResult<ConnectionManager> {
        match self {
            Link::Direct(c) => Ok(c.clone()),
            Link::Sentinel(s) => {
                if let Some(c) = s.current() {
                    return Ok(c);
                }
                let mut sentinel = s.sentinel.lock().await;
                // Another command may have found the primary while this one waited.
                if let Some(c) = s.current() {
                    return Ok(c);
                }
                let client = sentinel.async_get_client().await?;
                let c = ConnectionManager::new_with_config(client, s.config.clone()).await?;
                *s.current
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(c.clone());
                tracing::info!(
                    dependency = "session_store",
                    "connected to the Redis primary the Sentinels name"
                );
                Ok(c)
            }
        }
    }

    /// After `e`: forget a Sentinel-found primary that is gone or no longer primary.
    fn failed(&self, e: &redis::RedisError) {
        if let Link::Sentinel(s) = self
            && (means_down(e) || e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::ReadOnly))
        {
            *s.current
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        }
    }
}

/// `redis-sentinel://[user:password@]host:port[,host:port…]/primary-name[/db]`: the Sentinels
/// to ask, the name they monitor the primary under, and the credentials and database of the
/// primary (the Sentinels themselves are asked without credentials).
fn sentinel_client(url: &str) -> std::result::Result<redis::sentinel::SentinelClient, String> {
    let rest = url
        .strip_prefix("redis-sentinel://")
        .ok_or("a Sentinel URL starts with redis-sentinel://")?;
    let (auth, rest) = match rest.rsplit_once('@') {
        Some((auth, rest)) => (Some(auth), rest),
        None => (None, rest),
    };
    let (hosts, path) = rest.split_once('/').ok_or(
        "a Sentinel URL names the primary after the hosts: redis-sentinel://h1:26379,h2:26379/mymaster",
    )?;
    let mut parts = path.split('/');
    let name = parts
        .next()
        .filter(|n| !n.is_empty())
        .ok_or("the primary's name is missing")?;
    let db: i64 = match parts.next() {
        None | Some("") => 0,
        Some(d) => d.parse().map_err(|_| format!("{d:?} is not a database number"))?,
    };
    let sentinels: Vec<String> = hosts
        .split(',')
        .filter(|h| !h.is_empty())
        .map(|h| format!("redis://{h}"))
        .collect();
    if sentinels.is_empty() {
        return Err("no Sentinel host".into());
    }
    let mut node = redis::RedisConnectionInfo::default().set_db(db);
    if let Some(auth) = auth {
        let (user, password) = auth.split_once(':').unwrap_or(("", auth));
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        if !user.is_empty() {
            node = node.set_username(decode(user));
        }
        if !password.is_empty() {
            node = node.set_password(decode(password));
        }
    }
    redis::sentinel::SentinelClient::build(
        sentinels,
        name,
        Some(redis::sentinel::SentinelNodeConnectionInfo::default().set_redis_connection_info(node)),
        redis::sentinel::SentinelServerType::Master,
    )
    .map_err(|e| e.to_string())
}

/// TLS for a `rediss://` session store: the CA that signed the server's certificate (PEM;
/// without it the system's roots), and a client certificate and key (PEM) when the server
/// asks for one.
#[derive(Clone, Default)]
pub struct RedisTls {
    pub ca_pem: Option<Vec<u8>>,
    pub client: Option<(Vec<u8>, Vec<u8>)>,
}

/// The oldest Redis the store's commands run on (`PEXPIRE … GT` is 7.0).
pub const MIN_REDIS_VERSION: (u32, u32) = (7, 0);

/// Refuses a server older than [`MIN_REDIS_VERSION`], naming both versions.
async fn check_version(conn: &mut ConnectionManager) -> Result<()> {
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query_async(conn)
        .await
        .map_err(unavailable)?;
    supported(&info).map_err(SessionError::Unavailable)
}

/// Whether `INFO server`'s `redis_version` is at least [`MIN_REDIS_VERSION`].
fn supported(info: &str) -> std::result::Result<(), String> {
    let version = info
        .lines()
        .find_map(|l| l.strip_prefix("redis_version:"))
        .map_or("unknown", str::trim);
    let mut parts = version.split('.').map(|p| p.parse::<u32>().ok());
    match (parts.next().flatten(), parts.next().flatten()) {
        (Some(major), Some(minor)) if (major, minor) >= MIN_REDIS_VERSION => Ok(()),
        _ => Err(format!(
            "Redis {version} is too old: Latchkey needs {}.{} or newer",
            MIN_REDIS_VERSION.0, MIN_REDIS_VERSION.1
        )),
    }
}

fn unavailable(e: redis::RedisError) -> SessionError {
    SessionError::Unavailable(e.to_string())
}

impl RedisStore {
    /// Connects (failing fast when Redis is unreachable); afterwards the manager reconnects by
    /// itself, so an outage ends without a restart.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self> {
        Self::connect_with(url, prefix, &RedisTls::default()).await
    }

    /// [`connect`](Self::connect) with TLS settings for a `rediss://` URL (a private CA, a
    /// client certificate); the server's version is checked before anything is stored.
    pub async fn connect_with(url: &str, prefix: &str, tls: &RedisTls) -> Result<Self> {
        let bad = |e: redis::RedisError| SessionError::BadUrl(e.to_string());
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        if url.starts_with("redis-sentinel://") {
            if tls.ca_pem.is_some() || tls.client.is_some() {
                return Err(SessionError::BadUrl(
                    "Redis TLS settings are not supported with Sentinel yet".into(),
                ));
            }
            let link = Link::Sentinel(Arc::new(SentinelLink {
                sentinel: tokio::sync::Mutex::new(sentinel_client(url).map_err(SessionError::BadUrl)?),
                current: std::sync::RwLock::default(),
                config,
            }));
            let mut conn = tokio::time::timeout(Duration::from_secs(5), link.conn())
                .await
                .map_err(|_| {
                    SessionError::Unavailable("timed out asking the Sentinels for the primary".into())
                })?
                .map_err(unavailable)?;
            check_version(&mut conn).await?;
            return Ok(Self::with_link(link, prefix));
        }
        let client = if url.starts_with("rediss://") {
            let info = redis::IntoConnectionInfo::into_connection_info(url).map_err(bad)?;
            let certificates = redis::TlsCertificates {
                client_tls: tls
                    .client
                    .clone()
                    .map(|(client_cert, client_key)| redis::ClientTlsConfig {
                        client_cert,
                        client_key,
                    }),
                root_cert: tls.ca_pem.clone(),
            };
            redis::Client::build_with_tls(info, certificates).map_err(bad)?
        } else {
            if tls.ca_pem.is_some() || tls.client.is_some() {
                return Err(SessionError::BadUrl(
                    "Redis TLS settings are given but the URL is redis://, not rediss://".into(),
                ));
            }
            redis::Client::open(url).map_err(bad)?
        };
        let conn = tokio::time::timeout(
            Duration::from_secs(5),
            ConnectionManager::new_with_config(client, config),
        )
        .await
        .map_err(|_| SessionError::Unavailable("timed out connecting to Redis".into()))?
        .map_err(unavailable)?;
        check_version(&mut conn.clone()).await?;
        Ok(Self::with_link(Link::Direct(conn), prefix))
    }

    fn with_link(conn: Link, prefix: &str) -> Self {
        Self {
            conn,
            prefix: prefix.to_owned(),
            breaker: Arc::new(Breaker::new("session_store", Duration::from_millis(50))),
        }
    }

    fn key(&self, t: &TenantId, kind: &str, k: &str) -> String {
        format!("{}{t}:{kind}:{k}", self.prefix)
    }

    fn user_index(&self, t: &TenantId, user: &UserId) -> String {
        self.key(t, "us", user.as_str())
    }

    /// Every command goes through here: refused at once while the breaker is open (but for one
    /// probe per interval), and each outcome that says whether Redis is up reaches the breaker.
    async fn run<T: redis::FromRedisValue>(&self, cmd: impl FnOnce() -> Query) -> Result<T> {
        if self.breaker.admit() == Admit::Refused {
            return Err(SessionError::CircuitOpen);
        }
        let result = match self.conn.conn().await {
            Ok(mut conn) => match cmd() {
                Query::Cmd(c) => c.query_async(&mut conn).await,
                Query::Pipe(p) => p.query_async(&mut conn).await,
            },
            Err(e) => Err(e),
        };
        if let Err(e) = &result {
            self.conn.failed(e);
        }
        match &result {
            Ok(_) => {
                if self.breaker.success() {
                    tracing::info!(
                        dependency = "session_store",
                        "Redis answers again; circuit closed"
                    );
                }
            }
            Err(error) if means_down(error) => {
                if self.breaker.failure() {
                    tracing::warn!(dependency = "session_store", %error, "Redis is down; circuit open");
                }
            }
            Err(_) => {}
        }
        result.map_err(unavailable)
    }
}

enum Query {
    Cmd(redis::Cmd),
    Pipe(redis::Pipeline),
}

#[async_trait]
impl SessionStore for RedisStore {
    async fn put_session(&self, t: &TenantId, id: &SessionId, s: &Session, ttl: Duration) -> Result<()> {
        let k = self.key(t, "s", &id.storage_key());
        let idx = self.user_index(t, &s.user_id);
        let json = serde_json::to_vec(s).map_err(|e| SessionError::Corrupt(e.to_string()))?;
        let ms = ttl_millis(ttl);
        // The index of a user's sessions lives as long as the longest of them (GT only extends).
        self.run::<()>(|| {
            let mut p = redis::pipe();
            p.atomic()
                .cmd("SET")
                .arg(&k)
                .arg(json)
                .arg("PX")
                .arg(ms)
                .ignore()
                .cmd("SADD")
                .arg(&idx)
                .arg(id.storage_key())
                .ignore()
                .cmd("PEXPIRE")
                .arg(&idx)
                .arg(ms)
                .arg("GT")
                .ignore()
                .cmd("PEXPIRE")
                .arg(&idx)
                .arg(ms)
                .arg("NX")
                .ignore();
            Query::Pipe(p)
        })
        .await
    }

    async fn get_session(&self, t: &TenantId, id: &SessionId) -> Result<Option<Session>> {
        let k = self.key(t, "s", &id.storage_key());
        let raw: Option<Vec<u8>> = self.run(|| Query::Cmd(redis::cmd("GET").arg(&k).clone())).await?;
        raw.map(|b| serde_json::from_slice(&b).map_err(|e| SessionError::Corrupt(e.to_string())))
            .transpose()
    }

    async fn delete_session(&self, t: &TenantId, id: &SessionId) -> Result<bool> {
        let k = self.key(t, "s", &id.storage_key());
        let n: u64 = self.run(|| Query::Cmd(redis::cmd("DEL").arg(&k).clone())).await?;
        Ok(n > 0)
    }

    async fn list_user_sessions(&self, t: &TenantId, user: &UserId) -> Result<Vec<(String, Session)>> {
        let idx = self.user_index(t, user);
        let members: Vec<String> = self
            .run(|| Query::Cmd(redis::cmd("SMEMBERS").arg(&idx).clone()))
            .await?;
        if members.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = members.iter().map(|m| self.key(t, "s", m)).collect();
        let values: Vec<Option<Vec<u8>>> = self
            .run(|| Query::Cmd(redis::cmd("MGET").arg(&keys).clone()))
            .await?;
        let mut out = Vec::new();
        let mut gone = Vec::new();
        for (member, value) in members.into_iter().zip(values) {
            match value {
                Some(raw) => {
                    let s: Session =
                        serde_json::from_slice(&raw).map_err(|e| SessionError::Corrupt(e.to_string()))?;
                    if &s.user_id == user {
                        out.push((member, s));
                    }
                }
                None => gone.push(member),
            }
        }
        if !gone.is_empty() {
            // Expired sessions leave their index entries behind; tidy them.
            self.run::<()>(|| Query::Cmd(redis::cmd("SREM").arg(&idx).arg(&gone).clone()))
                .await?;
        }
        out.sort_by_key(|(_, s)| std::cmp::Reverse(s.last_seen));
        Ok(out)
    }

    async fn delete_session_by_key(&self, t: &TenantId, storage_key: &str) -> Result<bool> {
        let k = self.key(t, "s", storage_key);
        let n: u64 = self.run(|| Query::Cmd(redis::cmd("DEL").arg(&k).clone())).await?;
        Ok(n > 0)
    }

    async fn delete_user_sessions(&self, t: &TenantId, user: &UserId) -> Result<u64> {
        let idx = self.user_index(t, user);
        let session_prefix = self.key(t, "s", "");
        // One script, so a session created meanwhile is either deleted or keeps its index entry.
        self.run(|| {
            Query::Cmd(
                redis::cmd("EVAL")
                    .arg(DELETE_USER_SESSIONS)
                    .arg(1)
                    .arg(&idx)
                    .arg(&session_prefix)
                    .clone(),
            )
        })
        .await
    }
}

const DELETE_USER_SESSIONS: &str = r"
local n = 0
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  n = n + redis.call('DEL', ARGV[1] .. id)
end
redis.call('DEL', KEYS[1])
return n
";

impl RedisStore {
    /// `SET key value <cond> PX ttl` for a one-time value: `NX` only if absent, `XX` only if
    /// present; whether it was set.
    async fn set_if(
        &self,
        t: &TenantId,
        k: &str,
        (value, ttl): (&[u8], Duration),
        cond: &str,
    ) -> Result<bool> {
        let k = self.key(t, "o", k);
        let ms = ttl_millis(ttl);
        let set: Option<String> = self
            .run(|| {
                Query::Cmd(
                    redis::cmd("SET")
                        .arg(&k)
                        .arg(value)
                        .arg(cond)
                        .arg("PX")
                        .arg(ms)
                        .clone(),
                )
            })
            .await?;
        Ok(set.is_some())
    }
}

#[async_trait]
impl OneTimeStore for RedisStore {
    async fn put_once(&self, t: &TenantId, k: &str, value: &[u8], ttl: Duration) -> Result<bool> {
        self.set_if(t, k, (value, ttl), "NX").await
    }

    async fn peek(&self, t: &TenantId, k: &str) -> Result<Option<Vec<u8>>> {
        let k = self.key(t, "o", k);
        self.run(|| Query::Cmd(redis::cmd("GET").arg(&k).clone())).await
    }

    async fn replace(&self, t: &TenantId, k: &str, value: &[u8], ttl: Duration) -> Result<bool> {
        // SET … XX sets only an existing key, in one command.
        self.set_if(t, k, (value, ttl), "XX").await
    }

    async fn take(&self, t: &TenantId, k: &str) -> Result<Option<Vec<u8>>> {
        let k = self.key(t, "o", k);
        // GETDEL is one atomic command: concurrent takers can't both see the value.
        self.run(|| Query::Cmd(redis::cmd("GETDEL").arg(&k).clone()))
            .await
    }
}

#[async_trait]
impl RateCounter for RedisStore {
    async fn hit(&self, t: &TenantId, k: &str, window: Duration) -> Result<RateHit> {
        let k = self.key(t, "r", k);
        let ms = ttl_millis(window);
        let (count, pttl): (u64, i64) = self
            .run(|| {
                let mut p = redis::pipe();
                p.atomic()
                    .cmd("INCR")
                    .arg(&k)
                    .cmd("PEXPIRE")
                    .arg(&k)
                    .arg(ms)
                    .arg("NX")
                    .ignore()
                    .cmd("PTTL")
                    .arg(&k);
                Query::Pipe(p)
            })
            .await?;
        Ok(RateHit {
            count,
            reset_in: Duration::from_millis(u64::try_from(pttl).unwrap_or(0)),
        })
    }

    async fn count(&self, t: &TenantId, k: &str) -> Result<u64> {
        let k = self.key(t, "r", k);
        let n: Option<u64> = self.run(|| Query::Cmd(redis::cmd("GET").arg(&k).clone())).await?;
        Ok(n.unwrap_or(0))
    }

    async fn window_left(&self, t: &TenantId, k: &str) -> Result<Option<Duration>> {
        let k = self.key(t, "r", k);
        let ms: i64 = self
            .run(|| Query::Cmd(redis::cmd("PTTL").arg(&k).clone()))
            .await?;
        // -2: no key; -1: no expiry (never set by us).
        Ok(u64::try_from(ms).ok().map(Duration::from_millis))
    }

    async fn reset(&self, t: &TenantId, k: &str) -> Result<()> {
        let k = self.key(t, "r", k);
        self.run::<()>(|| Query::Cmd(redis::cmd("DEL").arg(&k).clone()))
            .await
    }

    async fn release(&self, t: &TenantId, k: &str) -> Result<()> {
        let k = self.key(t, "r", k);
        self.run::<()>(|| Query::Cmd(redis::cmd("EVAL").arg(RELEASE).arg(1).arg(&k).clone()))
            .await
    }
}

/// DECR keeps the key's expiry; a missing or zero counter stays as it is.
const RELEASE: &str = r"
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n > 0 then redis.call('DECR', KEYS[1]) end
return 0
";

#[async_trait]
impl Ephemeral for RedisStore {
    async fn ping(&self) -> Result<()> {
        let pong: String = self.run(|| Query::Cmd(redis::cmd("PING").clone())).await?;
        if pong == "PONG" {
            Ok(())
        } else {
            Err(SessionError::Unavailable(format!("PING answered {pong:?}")))
        }
    }

    fn breaker(&self) -> Option<BreakerState> {
        Some(self.breaker.state())
    }

    fn backend_name(&self) -> &'static str {
        "redis"
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sentinel_urls_name_hosts_and_the_primary() {
        let err = |url: &str| super::sentinel_client(url).err().unwrap_or_default();
        assert!(super::sentinel_client("redis-sentinel://a:26379,b:26379/main").is_ok());
        assert!(super::sentinel_client("redis-sentinel://app:p%40ss@a:26379/main/3").is_ok());
        assert!(err("redis-sentinel://a:26379").contains("names the primary"));
        assert!(err("redis-sentinel://a:26379/").contains("name is missing"));
        assert!(err("redis-sentinel:///main").contains("no Sentinel host"));
        assert!(err("redis-sentinel://a:26379/main/x").contains("not a database number"));
        assert!(err("redis://a:26379/main").contains("starts with redis-sentinel://"));
    }

    #[test]
    fn redis_older_than_7_0_is_refused_with_both_versions_named() {
        let info = |v: &str| format!("# Server\r\nredis_version:{v}\r\nredis_mode:standalone\r\n");
        assert!(super::supported(&info("7.0.15")).is_ok());
        assert!(super::supported(&info("7.2.4")).is_ok());
        assert!(super::supported(&info("10.0.0")).is_ok());
        let old = super::supported(&info("6.2.14")).unwrap_err();
        assert!(old.contains("6.2.14") && old.contains("7.0"), "{old}");
        assert!(super::supported("# Server\r\n").unwrap_err().contains("unknown"));
        assert!(super::supported(&info("seven")).is_err());
    }
}
