//! The example portal `latchkey demo` serves on loopback (default <http://127.0.0.1:8000/>): a
//! tiny relying party, so a newcomer sees a whole sign-in without writing a client first. It is
//! the demo's confidential client, built on the `openidconnect` crate the way an application
//! would use it: authorization code with PKCE (S256), `state` and `nonce` kept server-side under
//! an HttpOnly SameSite=Lax cookie, the ID token validated (issuer, audience, signature from the
//! JWKS, nonce, `at_hash`), userinfo, and RP-initiated logout. The page shows what came back.
//!
//! Not a template for production: sessions live in this process's memory (at most
//! `MAX_SESSIONS`), over plain http on loopback. Discovery runs at each "Sign in" (retried for a
//! few seconds), so Latchkey may start after the portal and rotated keys are picked up.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::header::{self, ContentType};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, middleware::DefaultHeaders, web};
use askama::Template;
use base64::Engine as _;
use latchkey_core::{Rng, random_token};
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreIdToken, CoreTokenResponse, CoreUserInfoClaims,
};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndSessionUrl, EndpointMaybeSet,
    EndpointNotSet, EndpointSet, IssuerUrl, LogoutRequest, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    PkceCodeVerifier, PostLogoutRedirectUrl, ProviderMetadataWithLogout, RedirectUrl, Scope, TokenResponse,
};
use serde_json::Value;
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// The portal's cookie: the id of its server-side session.
const COOKIE: &str = "latchkey_demo_portal";
/// Sessions kept at most; the oldest goes first (this is a demo on loopback).
const MAX_SESSIONS: usize = 256;
/// Discovery attempts at "Sign in", a quarter second apart, while Latchkey starts.
const DISCOVERY_TRIES: u32 = 20;
const CSP: &str = "default-src 'none'; style-src 'self'; frame-ancestors 'none'; base-uri 'none'";
const CSS: &str = "body{font:16px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1b1b1f}\
h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2rem}h3{font-size:1rem;margin-bottom:.25rem}\
pre{background:#f3f4f6;padding:.75rem;overflow-x:auto;border-radius:6px;font-size:.85rem}\
button{font:inherit;padding:.5rem 1.25rem;border:0;border-radius:6px;background:#0b57d0;color:#fff;cursor:pointer}\
.error{border-left:4px solid #b3261e;padding-left:1rem}.muted{color:#5f6368}";

/// What the portal needs to know: where it listens and who it is at Latchkey.
#[derive(Debug, Clone)]
pub struct Settings {
    pub port: u16,
    pub issuer: String,
    pub client_id: String,
    pub secret: String,
    /// Whether to ask for `offline_access` (the client may use refresh tokens).
    pub offline: bool,
}

impl Settings {
    fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
    fn redirect_uri(&self) -> String {
        format!("{}/callback", self.origin())
    }
}

/// Binds `127.0.0.1:{port}` and serves the portal on the current actix system. A port that can't
/// be bound is reported on stderr and the demo goes on without the portal.
pub fn start(settings: Settings) {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, settings.port));
    let http = match http_client() {
        Ok(http) => http,
        Err(e) => {
            eprintln!("example portal: no HTTP client ({e}); the demo goes on without it");
            return;
        }
    };
    let shared = web::Data::new(Portal {
        settings,
        http,
        sessions: Mutex::default(),
    });
    let server = HttpServer::new(move || {
        App::new()
            .app_data(shared.clone())
            .wrap(
                DefaultHeaders::new()
                    .add((header::CONTENT_SECURITY_POLICY, CSP))
                    .add((header::CACHE_CONTROL, "no-store"))
                    .add((header::REFERRER_POLICY, "no-referrer"))
                    .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff")),
            )
            .route("/", web::get().to(home))
            .route("/portal.css", web::get().to(css))
            .route("/login", web::post().to(login))
            .route("/callback", web::get().to(callback))
            .route("/logout", web::post().to(logout))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(1)
    .bind(addr);
    match server {
        Ok(server) => {
            tracing::info!(%addr, "example portal is serving");
            actix_web::rt::spawn(server.run());
        }
        Err(e) => {
            eprintln!(
                "example portal: cannot listen on {addr}: {e}; the demo goes on without it \
                 (choose another port with --portal-port N, or 0 for none)"
            );
            tracing::warn!(%addr, error = %e, "example portal not started");
        }
    }
}

/// The openidconnect client for Latchkey's metadata as discovered.
type Rp = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// Latchkey as discovered at one sign-in.
struct Provider {
    client: Rp,
    end_session: Option<EndSessionUrl>,
}

/// A sign-in under way: what the callback must match (OIDC Core §3.1.2.1, RFC 7636).
struct Pending {
    state: String,
    nonce: Nonce,
    verifier: PkceCodeVerifier,
    provider: Arc<Provider>,
}

/// What a signed-in page shows, and the ID token kept as the logout hint.
struct SignedIn {
    view: TokensView,
    id_token: CoreIdToken,
    provider: Arc<Provider>,
}

enum Session {
    Pending(Pending),
    SignedIn(Box<SignedIn>),
}

struct Portal {
    settings: Settings,
    http: reqwest::Client,
    /// Session id → session, with a serial number for evicting the oldest.
    sessions: Mutex<Sessions>,
}

#[derive(Default)]
struct Sessions {
    next: u64,
    by_id: HashMap<String, (u64, Session)>,
}

impl Sessions {
    /// Keeps `session` under a fresh random id, which it returns.
    fn insert(&mut self, rng: &dyn Rng, session: Session) -> String {
        if self.by_id.len() >= MAX_SESSIONS
            && let Some(oldest) = self
                .by_id
                .iter()
                .min_by_key(|(_, (n, _))| *n)
                .map(|(id, _)| id.clone())
        {
            self.by_id.remove(&oldest);
        }
        let id = random_token(rng, 32);
        self.next += 1;
        self.by_id.insert(id.clone(), (self.next, session));
        id
    }

    /// Removes and returns the session: each is used once (a sign-in's state can't be replayed).
    fn take(&mut self, id: &str) -> Option<Session> {
        self.by_id.remove(id).map(|(_, s)| s)
    }
}

/// Why a sign-in or sign-out failed, in words for the page.
#[derive(Debug, thiserror::Error)]
enum PortalError {
    #[error("Latchkey did not answer discovery at {issuer}: {detail}")]
    Discovery { issuer: String, detail: String },
    #[error("No sign-in was started in this browser, or it was already used. Start again.")]
    NoSignIn,
    #[error("The state does not match the sign-in this browser started, so the answer was refused.")]
    StateMismatch,
    #[error("The answer came from {0}, not from this portal's issuer, so it was refused.")]
    WrongIssuer(String),
    #[error("Latchkey answered with an error: {error}{}", in_parens(.description.as_deref()))]
    Provider {
        error: String,
        description: Option<String>,
    },
    #[error("The answer carries no authorization code.")]
    NoCode,
    #[error("{step} failed: {detail}")]
    Step { step: &'static str, detail: String },
}

fn in_parens(s: Option<&str>) -> String {
    s.map(|s| format!(" ({s})")).unwrap_or_default()
}

fn step(step: &'static str) -> impl FnOnce(String) -> PortalError {
    move |detail| PortalError::Step { step, detail }
}

impl Portal {
    fn sessions(&self) -> std::sync::MutexGuard<'_, Sessions> {
        // A panic while holding the lock leaves plain data behind; keep serving.
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn session_of(&self, req: &HttpRequest) -> Option<Session> {
        req.cookie(COOKIE).and_then(|c| self.sessions().take(c.value()))
    }

    /// Discovery (and the JWKS), retried while Latchkey may still be starting.
    async fn discover(&self) -> Result<Provider, PortalError> {
        let issuer = &self.settings.issuer;
        let url = IssuerUrl::new(issuer.clone()).map_err(|e| step("the issuer URL")(e.to_string()))?;
        let http = |req| send(self.http.clone(), req);
        let mut tries = 0;
        let meta = loop {
            tries += 1;
            match ProviderMetadataWithLogout::discover_async(url.clone(), &http).await {
                Ok(meta) => break meta,
                Err(e) if tries >= DISCOVERY_TRIES => {
                    return Err(PortalError::Discovery {
                        issuer: issuer.clone(),
                        detail: chain(&e),
                    });
                }
                Err(_) => actix_web::rt::time::sleep(Duration::from_millis(250)).await,
            }
        };
        let end_session = meta.additional_metadata().end_session_endpoint.clone();
        let redirect = RedirectUrl::new(self.settings.redirect_uri())
            .map_err(|e| step("the redirect URI")(e.to_string()))?;
        let client = CoreClient::from_provider_metadata(
            meta,
            ClientId::new(self.settings.client_id.clone()),
            Some(ClientSecret::new(self.settings.secret.clone())),
        )
        .set_redirect_uri(redirect);
        Ok(Provider { client, end_session })
    }

    /// Code for tokens, the ID token checked, then userinfo (OIDC Core §3.1.3, §5.3).
    async fn finish(&self, pending: Pending, code: String) -> Result<SignedIn, PortalError> {
        let http = |req| send(self.http.clone(), req);
        let client = &pending.provider.client;
        let tokens: CoreTokenResponse = client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|e| step("the token request")(e.to_string()))?
            .set_pkce_verifier(pending.verifier)
            .request_async(&http)
            .await
            .map_err(|e| step("the token request")(chain(&e)))?;
        let id_token = tokens
            .id_token()
            .ok_or_else(|| step("the token response")("no ID token".into()))?;
        let verifier = client.id_token_verifier();
        let claims = id_token
            .claims(&verifier, &pending.nonce)
            .map_err(|e| step("checking the ID token")(chain(&e)))?;
        if let Some(expected) = claims.access_token_hash() {
            let alg = id_token
                .signing_alg()
                .map_err(|e| step("checking at_hash")(e.to_string()))?;
            let key = id_token
                .signing_key(&verifier)
                .map_err(|e| step("checking at_hash")(e.to_string()))?;
            let actual = AccessTokenHash::from_token(tokens.access_token(), alg, key)
                .map_err(|e| step("checking at_hash")(e.to_string()))?;
            if actual != *expected {
                return Err(step("checking at_hash")(
                    "it does not match the access token".into(),
                ));
            }
        }
        let info: CoreUserInfoClaims = client
            .user_info(tokens.access_token().clone(), Some(claims.subject().clone()))
            .map_err(|e| step("userinfo")(e.to_string()))?
            .request_async(&http)
            .await
            .map_err(|e| step("userinfo")(chain(&e)))?;
        let raw_id = id_token.to_string();
        let access = tokens.access_token().secret();
        Ok(SignedIn {
            view: TokensView {
                id_token: decode_jwt(&raw_id).unwrap_or_default(),
                access_token: decode_jwt(access),
                refresh_token: tokens.refresh_token().is_some(),
                scope: tokens
                    .scopes()
                    .map(|s| s.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ")),
                userinfo: serde_json::to_value(&info)
                    .map(|v| pretty(&v))
                    .unwrap_or_default(),
            },
            id_token: id_token.clone(),
            provider: pending.provider.clone(),
        })
    }
}

/// The `openidconnect` HTTP client on the workspace's reqwest (rustls). It never follows
/// redirects: discovery, token and userinfo answer directly, and a redirect could send the
/// client's credentials or the access token elsewhere (as openidconnect's documentation warns).
fn http_client() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
}

async fn send(
    http: reqwest::Client,
    req: openidconnect::HttpRequest,
) -> Result<openidconnect::HttpResponse, reqwest::Error> {
    let (parts, body) = req.into_parts();
    let res = http
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await?;
    let status = res.status();
    let headers = res.headers().clone();
    let mut out = openidconnect::HttpResponse::new(res.bytes().await?.to_vec());
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    Ok(out)
}

/// An error and its sources, one sentence (openidconnect nests the useful part).
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        s = format!("{s}: {cause}");
        next = cause.source();
    }
    s
}

/// A JWT's header and claims as pretty JSON, for display only (nothing here checks a
/// signature); `None` for a token that isn't a JWS compact serialization of JSON.
fn decode_jwt(token: &str) -> Option<DecodedJwt> {
    let mut parts = token.split('.');
    let (Some(header), Some(claims), Some(_sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let json = |part: &str| -> Option<String> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .ok()?;
        Some(pretty(&serde_json::from_slice::<Value>(&bytes).ok()?))
    };
    Some(DecodedJwt {
        header: json(header)?,
        claims: json(claims)?,
    })
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

/// The authorization response's parameters (RFC 6749 §4.1.2, RFC 9207 `iss`).
#[derive(Debug, Default)]
struct CallbackParams {
    code: Option<String>,
    state: Option<String>,
    iss: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

impl CallbackParams {
    fn parse(query: &str) -> Self {
        let mut p = Self::default();
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            let slot = match &*k {
                "code" => &mut p.code,
                "state" => &mut p.state,
                "iss" => &mut p.iss,
                "error" => &mut p.error,
                "error_description" => &mut p.error_description,
                _ => continue,
            };
            slot.get_or_insert_with(|| v.into_owned());
        }
        p
    }
}

/// The checks before a code is redeemed: a sign-in this browser started, its `state`, the
/// issuer (mix-up defence), then an error or a code. The pending sign-in is spent either way.
fn check_callback(
    session: Option<Session>,
    p: CallbackParams,
    issuer: &str,
) -> Result<(Pending, String), PortalError> {
    let Some(Session::Pending(pending)) = session else {
        return Err(PortalError::NoSignIn);
    };
    if p.state.as_deref() != Some(pending.state.as_str()) {
        return Err(PortalError::StateMismatch);
    }
    if let Some(iss) = p.iss.filter(|iss| iss != issuer) {
        return Err(PortalError::WrongIssuer(iss));
    }
    if let Some(error) = p.error {
        return Err(PortalError::Provider {
            error,
            description: p.error_description,
        });
    }
    let code = p.code.ok_or(PortalError::NoCode)?;
    Ok((pending, code))
}

#[derive(Default)]
struct DecodedJwt {
    header: String,
    claims: String,
}

struct TokensView {
    id_token: DecodedJwt,
    access_token: Option<DecodedJwt>,
    refresh_token: bool,
    scope: Option<String>,
    userinfo: String,
}

#[derive(Template)]
#[template(path = "portal.html")]
struct Page<'a> {
    issuer: &'a str,
    tokens: Option<&'a TokensView>,
    error: Option<String>,
}

fn page(status: actix_web::http::StatusCode, page: &Page<'_>) -> HttpResponse {
    match page.render() {
        Ok(html) => HttpResponse::build(status)
            .content_type(ContentType::html())
            .body(html),
        Err(e) => HttpResponse::InternalServerError().body(format!("template: {e}")),
    }
}

fn error_page(settings: &Settings, e: &PortalError) -> HttpResponse {
    tracing::info!(error = %e, "example portal: sign-in failed");
    page(
        actix_web::http::StatusCode::BAD_REQUEST,
        &Page {
            issuer: &settings.issuer,
            tokens: None,
            error: Some(e.to_string()),
        },
    )
}

fn session_cookie(value: String) -> Cookie<'static> {
    Cookie::build(COOKIE, value)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .finish()
}

fn removal() -> Cookie<'static> {
    let mut c = session_cookie(String::new());
    c.make_removal();
    c
}

fn see_other(location: &str) -> actix_web::HttpResponseBuilder {
    let mut r = HttpResponse::SeeOther();
    r.insert_header((header::LOCATION, location));
    r
}

/// `/`: the welcome page, or what the signed-in session received.
async fn home(portal: web::Data<Portal>, req: HttpRequest) -> HttpResponse {
    let id = req.cookie(COOKIE).map(|c| c.value().to_owned());
    let sessions = portal.sessions();
    let tokens = match id.as_deref().and_then(|id| sessions.by_id.get(id)) {
        Some((_, Session::SignedIn(s))) => Some(&s.view),
        _ => None,
    };
    page(
        actix_web::http::StatusCode::OK,
        &Page {
            issuer: &portal.settings.issuer,
            tokens,
            error: None,
        },
    )
}

async fn css() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .body(CSS)
}

/// "Sign in": discovery, a fresh state, nonce and PKCE verifier kept server-side, then off to
/// the authorization endpoint (OIDC Core §3.1.2.1).
async fn login(portal: web::Data<Portal>, req: HttpRequest) -> HttpResponse {
    let provider = match portal.discover().await {
        Ok(p) => Arc::new(p),
        Err(e) => return error_page(&portal.settings, &e),
    };
    let rng = latchkey_core::OsRng;
    let state = CsrfToken::new(random_token(&rng, 32));
    let nonce = Nonce::new(random_token(&rng, 32));
    let verifier = PkceCodeVerifier::new(random_token(&rng, 48));
    let mut auth = provider
        .client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            move || state,
            move || nonce,
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .set_pkce_challenge(PkceCodeChallenge::from_code_verifier_sha256(&verifier));
    if portal.settings.offline {
        auth = auth.add_scope(Scope::new("offline_access".into()));
    }
    let (url, state, nonce) = auth.url();
    let state = state.secret().clone();
    let mut sessions = portal.sessions();
    if let Some(old) = req.cookie(COOKIE) {
        sessions.take(old.value());
    }
    let id = sessions.insert(
        &rng,
        Session::Pending(Pending {
            state,
            nonce,
            verifier,
            provider,
        }),
    );
    see_other(url.as_str()).cookie(session_cookie(id)).finish()
}

/// `/callback`: the checks, the code exchange and userinfo; then `/` shows the result.
async fn callback(portal: web::Data<Portal>, req: HttpRequest) -> HttpResponse {
    let session = portal.session_of(&req);
    let params = CallbackParams::parse(req.query_string());
    let result = match check_callback(session, params, &portal.settings.issuer) {
        Ok((pending, code)) => portal.finish(pending, code).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(signed_in) => {
            let id = portal
                .sessions()
                .insert(&latchkey_core::OsRng, Session::SignedIn(Box::new(signed_in)));
            see_other("/").cookie(session_cookie(id)).finish()
        }
        Err(e) => {
            let mut res = error_page(&portal.settings, &e);
            let _ = res.add_removal_cookie(&removal());
            res
        }
    }
}

/// "Sign out": the portal's session ends here, then Latchkey's by RP-initiated logout with the
/// ID token as hint (OpenID Connect RP-Initiated Logout 1.0 §2).
async fn logout(portal: web::Data<Portal>, req: HttpRequest) -> HttpResponse {
    let Some(Session::SignedIn(s)) = portal.session_of(&req) else {
        return see_other("/").cookie(removal()).finish();
    };
    let back = format!("{}/", portal.settings.origin());
    let Some(end_session) = s.provider.end_session.clone() else {
        return see_other(&back).cookie(removal()).finish();
    };
    let mut logout = LogoutRequest::from(end_session)
        .set_id_token_hint(&s.id_token)
        .set_client_id(ClientId::new(portal.settings.client_id.clone()));
    if let Ok(uri) = PostLogoutRedirectUrl::new(back) {
        logout = logout.set_post_logout_redirect_uri(uri);
    }
    see_other(logout.http_get_url().as_str())
        .cookie(removal())
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending() -> Session {
        let meta: ProviderMetadataWithLogout = serde_json::from_value(serde_json::json!({
            "issuer": "http://localhost:8080/t/demo",
            "authorization_endpoint": "http://localhost:8080/t/demo/authorize",
            "jwks_uri": "http://localhost:8080/t/demo/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        }))
        .unwrap();
        let client = CoreClient::from_provider_metadata(meta, ClientId::new("c".into()), None);
        Session::Pending(Pending {
            state: "the-state".into(),
            nonce: Nonce::new("n".into()),
            verifier: PkceCodeVerifier::new("v".repeat(43)),
            provider: Arc::new(Provider {
                client,
                end_session: None,
            }),
        })
    }

    const ISSUER: &str = "http://localhost:8080/t/demo";

    fn check(session: Option<Session>, query: &str) -> Result<String, PortalError> {
        check_callback(session, CallbackParams::parse(query), ISSUER).map(|(_, code)| code)
    }

    #[test]
    fn a_callback_with_the_started_state_yields_its_code() {
        let code = check(
            Some(pending()),
            "code=abc&state=the-state&iss=http%3A%2F%2Flocalhost%3A8080%2Ft%2Fdemo",
        );
        assert_eq!(code.unwrap(), "abc");
    }

    #[test]
    fn a_callback_with_another_state_or_none_is_refused() {
        assert!(matches!(
            check(Some(pending()), "code=abc&state=forged"),
            Err(PortalError::StateMismatch)
        ));
        assert!(matches!(
            check(Some(pending()), "code=abc"),
            Err(PortalError::StateMismatch)
        ));
        // A duplicated parameter can't smuggle a second value past the check.
        assert!(matches!(
            check(Some(pending()), "code=abc&state=forged&state=the-state"),
            Err(PortalError::StateMismatch)
        ));
    }

    #[test]
    fn a_callback_without_a_started_sign_in_is_refused() {
        assert!(matches!(
            check(None, "code=abc&state=the-state"),
            Err(PortalError::NoSignIn)
        ));
    }

    #[test]
    fn a_callback_from_another_issuer_is_refused() {
        let e = check(
            Some(pending()),
            "code=abc&state=the-state&iss=https%3A%2F%2Fevil.example",
        )
        .unwrap_err();
        assert!(matches!(e, PortalError::WrongIssuer(ref iss) if iss == "https://evil.example"));
    }

    #[test]
    fn an_error_answer_is_shown_with_its_description() {
        let e = check(
            Some(pending()),
            "error=access_denied&error_description=the+user+said+no&state=the-state",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "Latchkey answered with an error: access_denied (the user said no)"
        );
    }

    #[test]
    fn a_session_is_taken_once() {
        let mut sessions = Sessions::default();
        let id = sessions.insert(&latchkey_core::OsRng, pending());
        assert!(sessions.take(&id).is_some());
        assert!(sessions.take(&id).is_none());
    }

    #[test]
    fn the_oldest_session_goes_when_full() {
        let mut sessions = Sessions::default();
        let first = sessions.insert(&latchkey_core::OsRng, pending());
        for _ in 0..MAX_SESSIONS {
            sessions.insert(&latchkey_core::OsRng, pending());
        }
        assert_eq!(sessions.by_id.len(), MAX_SESSIONS);
        assert!(sessions.take(&first).is_none());
    }

    #[test]
    fn a_jwt_is_decoded_for_display_and_anything_else_is_not() {
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let jwt = format!(
            "{}.{}.sig",
            b64(r#"{"alg":"RS256","kid":"k1"}"#),
            b64(r#"{"sub":"u1"}"#)
        );
        let d = decode_jwt(&jwt).unwrap();
        assert!(d.header.contains("\"kid\": \"k1\""), "{}", d.header);
        assert!(d.claims.contains("\"sub\": \"u1\""), "{}", d.claims);
        assert!(decode_jwt("opaque-token").is_none());
        assert!(decode_jwt(&format!("{}.{}", b64("{}"), b64("{}"))).is_none());
        assert!(decode_jwt(&format!("{}.bm90IGpzb24.sig", b64("{}"))).is_none());
    }
}
