//! A forging OpenID provider for the federation suite: discovery, a JWK Set, an authorization
//! endpoint that sends the browser straight back, and a token endpoint whose ID token breaks
//! exactly one rule (the `Case`), so each of Latchkey's checks is tried on its own. With
//! `Case::Genuine` it is an honest provider, which shows that the other cases fail for their
//! one flaw. `/user` answers like GitHub's user endpoint, for OAuth 2.0 connections.

#![allow(clippy::unwrap_used, clippy::missing_panics_doc)] // test kit: a failed unwrap is a failed test

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use latchkey_keys::{Alg, SigningKey};
use serde_json::json;
use std::sync::{Arc, Mutex};
use tokio::io::AsyncWriteExt as _;

pub const CLIENT_ID: &str = "forge-client";
pub const CLIENT_SECRET: &str = "forge-secret-0123456789";

/// What the next ID token gets wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Case {
    Genuine,
    /// `iss` of another provider (e.g. another connection's issuer: a mix-up).
    Issuer(String),
    WrongAudience,
    /// Signed by a key the JWK Set does not hold.
    OtherKey,
    /// Signed by a key the JWK Set does not hold, under the `kid` of one it does.
    OtherKeySameKid,
    AlgNone,
    Expired,
    /// The nonce of the previous sign-in (a replayed ID token).
    ReplayedNonce,
    /// The callback's RFC 9207 `iss` names another issuer.
    ResponseIssuer(String),
    /// The callback carries no `iss` though discovery announces it.
    NoResponseIssuer,
}

#[derive(Default)]
struct State {
    case: Option<Case>,
    /// The PKCE challenge of the last authorization request.
    challenge: String,
    /// Token requests whose `code_verifier` did not match it.
    bad_verifiers: usize,
    /// Entra ID's multi-tenant form: tokens and responses name this directory's issuer
    /// (`{issuer}/{tid}/v2.0`) and carry `tid`.
    entra_tid: Option<String>,
    nonces: Vec<String>,
    tokens: usize,
}

pub struct Forge {
    pub issuer: String,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Forge {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Forge {
    /// A provider on a free loopback port whose tokens are dated by `clock` (the server's).
    pub async fn start(clock: Arc<dyn latchkey_core::Clock>) -> Self {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let issuer = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let key = Arc::new(SigningKey::generate(Alg::RS256).unwrap().0);
        let other = Arc::new(SigningKey::generate(Alg::RS256).unwrap().0);
        let state = Arc::new(Mutex::new(State::default()));
        let serve = Server {
            clock,
            issuer: issuer.clone(),
            key,
            other,
            state: Arc::clone(&state),
        };
        let task = tokio::spawn(async move {
            loop {
                let Ok((conn, _)) = listener.accept().await else {
                    return;
                };
                let serve = serve.clone();
                tokio::spawn(async move { serve.serve(conn).await });
            }
        });
        Self { issuer, state, task }
    }

    pub fn set_case(&self, case: Case) {
        self.state.lock().unwrap().case = Some(case);
    }

    /// Speaks as Entra ID's multi-tenant endpoint for directory `tid`: discovery at
    /// `/organizations/v2.0/.well-known/openid-configuration` names the issuer
    /// `{issuer}/{tenantid}/v2.0`, and tokens `{issuer}/{tid}/v2.0` with `tid`.
    pub fn set_entra_tenant(&self, tid: &str) {
        self.state.lock().unwrap().entra_tid = Some(tid.to_owned());
    }

    /// The Entra-style issuer template and discovery URL.
    pub fn entra(&self) -> (String, String) {
        (
            format!("{}/{{tenantid}}/v2.0", self.issuer),
            format!(
                "{}/organizations/v2.0/.well-known/openid-configuration",
                self.issuer
            ),
        )
    }

    /// Token requests whose PKCE `code_verifier` did not fit the authorization request's
    /// `code_challenge` (S256).
    pub fn bad_verifiers(&self) -> usize {
        self.state.lock().unwrap().bad_verifiers
    }

    /// How many tokens the token endpoint issued.
    pub fn tokens_issued(&self) -> usize {
        self.state.lock().unwrap().tokens
    }
}

#[derive(Clone)]
struct Server {
    clock: Arc<dyn latchkey_core::Clock>,
    issuer: String,
    key: Arc<SigningKey>,
    other: Arc<SigningKey>,
    state: Arc<Mutex<State>>,
}

impl Server {
    async fn serve(&self, mut conn: tokio::net::TcpStream) {
        let Some((head, body)) = crate::logout::read_request(&mut conn).await else {
            return;
        };
        let target = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
        let url = url::Url::parse(&format!("{}{target}", self.issuer)).unwrap();
        let q = |name: &str| {
            url.query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        let (status, extra, out) = match url.path() {
            "/.well-known/openid-configuration" => ("200 OK", String::new(), self.discovery(&self.issuer)),
            "/organizations/v2.0/.well-known/openid-configuration" => (
                "200 OK",
                String::new(),
                self.discovery(&format!("{}/{{tenantid}}/v2.0", self.issuer)),
            ),
            "/jwks" => {
                let mut jwk = self.key.public_jwk();
                jwk["kid"] = json!(self.key.kid());
                ("200 OK", String::new(), json!({"keys": [jwk]}).to_string())
            }
            "/authorize" => {
                {
                    let mut st = self.state.lock().unwrap();
                    st.nonces.push(q("nonce"));
                    st.challenge = q("code_challenge");
                }
                let iss = match self.case() {
                    Case::ResponseIssuer(other) => format!("&iss={}", crate::oidc::enc(&other)),
                    Case::NoResponseIssuer => String::new(),
                    _ => format!("&iss={}", crate::oidc::enc(&self.token_issuer())),
                };
                let back = format!(
                    "{}?code=forged-code&state={}{iss}",
                    q("redirect_uri"),
                    crate::oidc::enc(&q("state")),
                );
                ("302 Found", format!("location: {back}\r\n"), String::new())
            }
            "/token" if body.contains("code=forged-code") => {
                self.check_verifier(&body);
                ("200 OK", String::new(), self.token())
            }
            // A GitHub-like user endpoint for OAuth 2.0 connections.
            "/user"
                if head
                    .to_ascii_lowercase()
                    .contains("authorization: bearer forged-at") =>
            {
                (
                    "200 OK",
                    String::new(),
                    json!({"id": 4242, "login": "octo", "name": "Octo Cat", "email": "octo@forge.test"})
                        .to_string(),
                )
            }
            _ => ("404 Not Found", String::new(), "{}".into()),
        };
        let _ = conn
            .write_all(
                format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\n{extra}content-length: {}\r\nconnection: close\r\n\r\n{out}",
                    out.len()
                )
                .as_bytes(),
            )
            .await;
    }

    /// RFC 7636 §4.6 with S256: counts a verifier that does not hash to the challenge.
    fn check_verifier(&self, body: &str) {
        let verifier = url::form_urlencoded::parse(body.as_bytes())
            .find(|(k, _)| k == "code_verifier")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        let mut st = self.state.lock().unwrap();
        if st.challenge.is_empty() || latchkey_federation::code_challenge(&verifier) != st.challenge {
            st.bad_verifiers += 1;
        }
    }

    fn case(&self) -> Case {
        self.state.lock().unwrap().case.clone().unwrap_or(Case::Genuine)
    }

    /// The issuer tokens name: the provider's, or the Entra directory's.
    fn token_issuer(&self) -> String {
        match &self.state.lock().unwrap().entra_tid {
            Some(tid) => format!("{}/{tid}/v2.0", self.issuer),
            None => self.issuer.clone(),
        }
    }

    fn discovery(&self, issuer: &str) -> String {
        let i = &self.issuer;
        json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{i}/authorize"),
            "token_endpoint": format!("{i}/token"),
            "jwks_uri": format!("{i}/jwks"),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "authorization_response_iss_parameter_supported": true,
        })
        .to_string()
    }

    fn token(&self) -> String {
        let case = self.case();
        let (nonce, previous) = {
            let mut st = self.state.lock().unwrap();
            st.tokens += 1;
            let n = st.nonces.len();
            (
                st.nonces.last().cloned().unwrap_or_default(),
                n.checked_sub(2)
                    .and_then(|i| st.nonces.get(i).cloned())
                    .unwrap_or_default(),
            )
        };
        let now = self.clock.now_millis() / 1000;
        let mut claims = json!({
            "iss": self.token_issuer(), "aud": CLIENT_ID, "sub": "mallory-1", "nonce": nonce,
            "iat": now, "exp": now + 300, "email": "mallory@forge.test", "email_verified": true,
        });
        if let Some(tid) = &self.state.lock().unwrap().entra_tid {
            claims["tid"] = json!(tid);
        }
        match &case {
            Case::Issuer(other) => claims["iss"] = json!(other),
            Case::WrongAudience => claims["aud"] = json!("another-client"),
            Case::Expired => {
                claims["iat"] = json!(now - 900);
                claims["exp"] = json!(now - 600);
            }
            Case::ReplayedNonce => claims["nonce"] = json!(previous),
            _ => {}
        }
        let id_token = match case {
            Case::OtherKey => {
                latchkey_keys::jwt::encode(&self.other, &self.other.kid(), "JWT", &claims).unwrap()
            }
            Case::OtherKeySameKid => {
                latchkey_keys::jwt::encode(&self.other, &self.key.kid(), "JWT", &claims).unwrap()
            }
            Case::AlgNone => format!(
                "{}.{}.",
                B64.encode(br#"{"alg":"none","typ":"JWT"}"#),
                B64.encode(claims.to_string())
            ),
            _ => latchkey_keys::jwt::encode(&self.key, &self.key.kid(), "JWT", &claims).unwrap(),
        };
        json!({"access_token": "forged-at", "token_type": "Bearer", "id_token": id_token}).to_string()
    }
}
