//! A Back-Channel Logout receiver built the way relying-party libraries build one (OpenID
//! Connect Back-Channel Logout 1.0 §2.6): the logout token's signature is checked against the
//! issuer's JWK Set with the `openidconnect` crate's key types (not Latchkey's code), then
//! `typ`, `iss`, `aud`, `iat`/`exp`, `events`, `sub`/`sid`, no `nonce`, and `jti` once. It
//! answers 200 to a valid token and 400 to anything else, and keeps what it saw.

#![allow(clippy::unwrap_used, clippy::missing_panics_doc)] // test kit: a failed unwrap is a failed test

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use latchkey_core::Clock;
use openidconnect::JsonWebKey as _;
use openidconnect::core::{CoreJsonWebKeySet, CoreJwsSigningAlgorithm};
use serde_json::Value;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

pub const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// What the receiver made of one POST.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// A valid logout token's claims.
    Accepted(Value),
    /// Why the token was refused.
    Refused(String),
}

#[derive(Default)]
struct Seen {
    outcomes: Vec<Outcome>,
    /// The valid tokens as received, for replay tests.
    tokens: Vec<String>,
    jtis: HashSet<String>,
}

/// A receiver on a loopback port; `stop` closes it (the port stays known, so `start_on` can
/// bring it back).
pub struct Receiver {
    pub port: u16,
    issuer: String,
    audiences: Arc<Mutex<Vec<String>>>,
    seen: Arc<Mutex<Seen>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    /// A receiver on a free port for tokens of `issuer`; `expect_audience` names the clients.
    pub async fn start(issuer: &str, clock: Arc<dyn Clock>) -> Self {
        Self::start_on(0, issuer, clock).await
    }

    /// The same on `port` (0: any).
    pub async fn start_on(port: u16, issuer: &str, clock: Arc<dyn Clock>) -> Self {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (audiences, seen) = (
            Arc::new(Mutex::new(Vec::new())),
            Arc::new(Mutex::new(Seen::default())),
        );
        let check = Checker {
            issuer: issuer.to_owned(),
            audiences: Arc::clone(&audiences),
            seen: Arc::clone(&seen),
            clock,
        };
        let task = tokio::spawn(async move {
            loop {
                let Ok((conn, _)) = listener.accept().await else {
                    return;
                };
                let check = check.clone();
                tokio::spawn(async move { check.serve(conn).await });
            }
        });
        Self {
            port,
            issuer: issuer.to_owned(),
            audiences,
            seen,
            task,
        }
    }

    /// Where clients register it: `/bcl` on its port.
    pub fn uri(&self) -> String {
        format!("http://127.0.0.1:{}/bcl", self.port)
    }

    pub fn expect_audience(&self, client_id: &str) {
        self.audiences.lock().unwrap().push(client_id.to_owned());
    }

    pub fn outcomes(&self) -> Vec<Outcome> {
        self.seen.lock().unwrap().outcomes.clone()
    }

    /// The claims of the valid tokens received so far.
    pub fn accepted(&self) -> Vec<Value> {
        self.outcomes()
            .into_iter()
            .filter_map(|o| match o {
                Outcome::Accepted(c) => Some(c),
                Outcome::Refused(_) => None,
            })
            .collect()
    }

    /// The valid tokens as they arrived.
    pub fn tokens(&self) -> Vec<String> {
        self.seen.lock().unwrap().tokens.clone()
    }

    /// Why tokens were refused.
    pub fn refused(&self) -> Vec<String> {
        self.outcomes()
            .into_iter()
            .filter_map(|o| match o {
                Outcome::Refused(r) => Some(r),
                Outcome::Accepted(_) => None,
            })
            .collect()
    }

    /// Waits (at most 10 s) until `n` valid tokens arrived; answers them.
    pub async fn wait_for(&self, n: usize) -> Vec<Value> {
        for _ in 0..200 {
            if self.accepted().len() >= n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.accepted()
    }

    /// POSTs `token` to the receiver as Latchkey does: the status it answered.
    pub async fn post(&self, token: &str) -> u16 {
        crate::TestServer::client()
            .post(self.uri())
            .form(&[("logout_token", token)])
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// Closes the port; what was received stays readable.
    pub fn stop(&self) {
        self.task.abort();
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Clone)]
struct Checker {
    issuer: String,
    audiences: Arc<Mutex<Vec<String>>>,
    seen: Arc<Mutex<Seen>>,
    clock: Arc<dyn Clock>,
}

impl Checker {
    async fn serve(&self, mut conn: tokio::net::TcpStream) {
        let Some((_, body)) = read_request(&mut conn).await else {
            return;
        };
        let token = url::form_urlencoded::parse(body.as_bytes())
            .find(|(k, _)| k == "logout_token")
            .map(|(_, v)| v.into_owned());
        let outcome = match &token {
            Some(t) => match self.validate(t).await {
                Ok(claims) => {
                    self.seen.lock().unwrap().tokens.push(t.clone());
                    Outcome::Accepted(claims)
                }
                Err(e) => Outcome::Refused(e),
            },
            None => Outcome::Refused("no logout_token".into()),
        };
        let status = match outcome {
            Outcome::Accepted(_) => "200 OK",
            Outcome::Refused(_) => "400 Bad Request",
        };
        self.seen.lock().unwrap().outcomes.push(outcome);
        let _ = conn
            .write_all(
                format!("HTTP/1.1 {status}\r\ncache-control: no-store\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .as_bytes(),
            )
            .await;
    }

    /// §2.6 steps 1–8 (step 9, ending the RP's session, is the caller's).
    async fn validate(&self, token: &str) -> Result<Value, String> {
        let parts: Vec<&str> = token.split('.').collect();
        let [h, p, sig] = parts[..] else {
            return Err("not a compact JWS".into());
        };
        let header: Value = decode(h)?;
        let claims: Value = decode(p)?;
        if header["typ"] != "logout+jwt" {
            return Err(format!("typ {}", header["typ"]));
        }
        let alg: CoreJwsSigningAlgorithm =
            serde_json::from_value(header["alg"].clone()).map_err(|e| format!("alg: {e}"))?;
        if alg == CoreJwsSigningAlgorithm::None {
            return Err("alg none".into());
        }
        let keys: CoreJsonWebKeySet = crate::TestServer::client()
            .get(format!("{}/jwks", self.issuer))
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        let kid = header["kid"].as_str().ok_or("no kid")?;
        let key = keys
            .keys()
            .iter()
            .find(|k| k.key_id().map(|id| id.as_str()) == Some(kid))
            .ok_or_else(|| format!("kid {kid} is not in the JWK Set"))?;
        let signature = B64.decode(sig).map_err(|e| e.to_string())?;
        key.verify_signature(&alg, format!("{h}.{p}").as_bytes(), &signature)
            .map_err(|e| format!("signature: {e}"))?;
        self.check_claims(&claims)?;
        Ok(claims)
    }

    fn check_claims(&self, c: &Value) -> Result<(), String> {
        if c["iss"] != self.issuer.as_str() {
            return Err(format!("iss {}", c["iss"]));
        }
        let aud: Vec<&str> = match &c["aud"] {
            Value::String(a) => vec![a.as_str()],
            Value::Array(list) => list.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        let expected = self.audiences.lock().unwrap().clone();
        if !aud.iter().any(|a| expected.iter().any(|e| e == a)) {
            return Err(format!("aud {}", c["aud"]));
        }
        let now = self.clock.now_millis() / 1000;
        let iat = c["iat"].as_i64().ok_or("no iat")?;
        if (iat - now).abs() > 120 {
            return Err(format!("iat {iat} is {} s from now", iat - now));
        }
        if c["exp"].as_i64().is_some_and(|exp| exp <= now) {
            return Err("expired".into());
        }
        if !c["events"][EVENT].is_object() {
            return Err(format!("events {}", c["events"]));
        }
        if c.get("nonce").is_some() {
            return Err("a logout token must not carry a nonce".into());
        }
        if c.get("sub").is_none() && c.get("sid").is_none() {
            return Err("neither sub nor sid".into());
        }
        let jti = c["jti"].as_str().ok_or("no jti")?;
        if !self.seen.lock().unwrap().jtis.insert(jti.to_owned()) {
            return Err(format!("jti {jti} was used before"));
        }
        Ok(())
    }
}

fn decode(part: &str) -> Result<Value, String> {
    let bytes = B64.decode(part).map_err(|e| e.to_string())?;
    serde_json::from_slice(&bytes).map_err(|e| e.to_string())
}

/// One HTTP/1.1 request's body (by Content-Length), or `None` if the peer went away.
/// One HTTP/1.1 request: its head (request line and headers) and body.
pub(crate) async fn read_request(conn: &mut tokio::net::TcpStream) -> Option<(String, String)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), conn.read(&mut chunk))
            .await
            .ok()?
            .ok()?;
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .and_then(|v| v.trim().parse().ok())
                })
                .unwrap_or(0);
            if body.len() >= len {
                return Some((head.to_owned(), body.to_owned()));
            }
        }
        if n == 0 {
            return None;
        }
    }
}
