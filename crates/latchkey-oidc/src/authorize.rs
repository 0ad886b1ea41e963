//! The authorization endpoint (RFC 6749 §4.1.1, OIDC Core §3.1.2): checking the request, and
//! deciding what it needs next (sign-in, consent, or a code).
//!
//! Errors come in two kinds. Until the client and its redirect URI are known good, nothing may
//! be sent to the redirect URI (RFC 6749 §4.1.2.1, RFC 9700 §4.11): those errors are shown to
//! the user on a page. After that, errors go back to the client with `state` and `iss`.

use crate::pkce::{CodeChallenge, check_code_challenge};
use crate::redirect::check_redirect_uri;
use crate::{ErrorCode, OAuthError, scope};
use latchkey_core::{Client, ClientType, GrantType};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Request parameters, each name once.
pub type Params = BTreeMap<String, String>;

/// How the authorization response travels (OAuth 2.0 Multiple Response Types, Form Post).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseMode {
    Query,
    FormPost,
}

impl ResponseMode {
    pub const SUPPORTED: [&'static str; 2] = ["query", "form_post"];
}

/// Where responses (and errors, once it is known good) go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub redirect_uri: String,
    pub response_mode: ResponseMode,
    /// Returned byte for byte.
    pub state: Option<String>,
}

/// `prompt` values (OIDC Core §3.1.2.1). `select_account` is accepted and means nothing here.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prompt {
    pub none: bool,
    pub login: bool,
    pub consent: bool,
}

/// A checked authorization request, as kept server-side while the user signs in and consents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizationRequest {
    pub client_id: String,
    pub target: Target,
    /// Requested scopes the client is registered for.
    pub scope: Vec<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub prompt: Prompt,
    /// Seconds.
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    pub acr_values: Vec<String>,
    pub ui_locales: Option<String>,
}

impl AuthorizationRequest {
    pub fn is_openid(&self) -> bool {
        self.scope.iter().any(|s| s == scope::OPENID)
    }
}

/// Why a request was refused, and where the refusal goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizeError {
    /// Shown to the user: the client or redirect URI is not known good.
    Page(OAuthError),
    /// Sent to the client's redirect URI.
    Redirect(OAuthError, Target),
}

const MAX_STATE: usize = 2048;
const MAX_NONCE: usize = 512;
const MAX_HINT: usize = 256;

fn too_long(name: &str, value: Option<&String>, max: usize) -> Option<OAuthError> {
    value
        .filter(|v| v.len() > max)
        .map(|_| OAuthError::invalid_request(format!("{name} is longer than {max} bytes")))
}

/// The `client_id` the request names, if any (to look the client up).
pub fn client_id(p: &Params) -> Option<&str> {
    p.get("client_id").map(String::as_str).filter(|c| !c.is_empty())
}

/// Checks a request against the client it names (`None` when unknown).
pub fn check_authorization_request(
    p: &Params,
    client: Option<&Client>,
) -> Result<AuthorizationRequest, AuthorizeError> {
    let (client, redirect_uri) = check_client_and_redirect_uri(p, client)?;

    // From here on, errors go to the client, in the response mode it asked for if that is valid.
    let mode = response_mode(p);
    let target = Target {
        redirect_uri: redirect_uri.to_owned(),
        response_mode: *mode.as_ref().unwrap_or(&ResponseMode::Query),
        state: p.get("state").cloned(),
    };
    let fail = |e: OAuthError| AuthorizeError::Redirect(e, target.clone());
    check_request_form(p, client, mode).map_err(fail)?;
    let scopes = granted_scopes(p, client).map_err(fail)?;
    let challenge = check_pkce(p, client).map_err(fail)?;
    let prompt = check_prompt(p.get("prompt").map(String::as_str)).map_err(fail)?;
    let max_age = check_max_age(p).map_err(fail)?;
    Ok(AuthorizationRequest {
        client_id: client.client_id.to_string(),
        target: target.clone(),
        scope: scopes,
        nonce: p.get("nonce").cloned(),
        code_challenge: challenge.map(|c| c.as_str().to_owned()),
        prompt,
        max_age,
        login_hint: p.get("login_hint").cloned().filter(|h| !h.is_empty()),
        acr_values: words(p, "acr_values"),
        ui_locales: p.get("ui_locales").cloned().filter(|h| !h.is_empty()),
    })
}

/// The known client and the redirect URI to use for it. Until both are known good, errors are
/// shown on a page (RFC 6749 §4.1.2.1).
fn check_client_and_redirect_uri<'a>(
    p: &'a Params,
    client: Option<&'a Client>,
) -> Result<(&'a Client, &'a str), AuthorizeError> {
    let page = |m: &str| AuthorizeError::Page(OAuthError::invalid_request(m));
    if client_id(p).is_none() {
        return Err(page("The request names no client (client_id is missing)."));
    }
    let client = client.ok_or_else(|| page("The application that sent you here is not registered."))?;
    let requested = p
        .get("redirect_uri")
        .ok_or_else(|| page("The request has no redirect_uri."))?;
    let native = client.client_type == ClientType::Public;
    let redirect_uri = check_redirect_uri(requested, &client.redirect_uris, native)
        .map_err(|_| page("The redirect_uri is not registered for this application."))?;
    // A loopback redirect keeps the port the app asked for.
    let redirect_uri = if redirect_uri == requested {
        redirect_uri
    } else {
        requested
    };
    Ok((client, redirect_uri))
}

/// The `response_mode` asked for, or the unsupported value.
fn response_mode(p: &Params) -> Result<ResponseMode, String> {
    match p.get("response_mode").map(String::as_str) {
        None | Some("query") => Ok(ResponseMode::Query),
        Some("form_post") => Ok(ResponseMode::FormPost),
        Some(other) => Err(other.to_owned()),
    }
}

/// What the request may ask for at all, in this order: a supported response mode, no request
/// objects, `response_type=code` for a client allowed the code grant, and no over-long values.
fn check_request_form(
    p: &Params,
    client: &Client,
    mode: Result<ResponseMode, String>,
) -> Result<(), OAuthError> {
    if let Err(other) = mode {
        return Err(OAuthError::invalid_request(format!(
            "response_mode {other:?} is not supported; use query or form_post"
        )));
    }
    if p.contains_key("request") {
        return Err(OAuthError::new(
            ErrorCode::RequestNotSupported,
            "request objects are not supported",
        ));
    }
    if p.contains_key("request_uri") {
        return Err(OAuthError::new(
            ErrorCode::RequestUriNotSupported,
            "request_uri is not supported",
        ));
    }
    match p.get("response_type").map(String::as_str) {
        None => return Err(OAuthError::invalid_request("response_type is missing")),
        Some("code") => {}
        Some(_) => {
            return Err(OAuthError::new(
                ErrorCode::UnsupportedResponseType,
                "only response_type=code is supported",
            ));
        }
    }
    if !client.grant_types.contains(&GrantType::AuthorizationCode) {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "this client may not use the authorization code grant",
        ));
    }
    if let Some(e) = too_long("state", p.get("state"), MAX_STATE)
        .or_else(|| too_long("nonce", p.get("nonce"), MAX_NONCE))
        .or_else(|| too_long("login_hint", p.get("login_hint"), MAX_HINT))
        .or_else(|| too_long("ui_locales", p.get("ui_locales"), MAX_HINT))
        .or_else(|| too_long("acr_values", p.get("acr_values"), MAX_HINT))
    {
        return Err(e);
    }
    Ok(())
}

/// The requested scopes the client is registered for.
fn granted_scopes(p: &Params, client: &Client) -> Result<Vec<String>, OAuthError> {
    let requested = scope::parse(p.get("scope").map(String::as_str))?;
    let mut scopes = scope::allowed(&requested, &client.scopes);
    let can_refresh = client.grant_types.contains(&GrantType::RefreshToken);
    // OIDC Core §11: offline access is an OpenID Connect request for a client that may refresh.
    if !can_refresh || !scopes.iter().any(|s| s == scope::OPENID) {
        scopes.retain(|s| s != scope::OFFLINE_ACCESS);
    }
    Ok(scopes)
}

/// The PKCE challenge (RFC 7636), required of public clients and clients registered with
/// `require_pkce`.
fn check_pkce(p: &Params, client: &Client) -> Result<Option<CodeChallenge>, OAuthError> {
    let challenge = check_code_challenge(
        p.get("code_challenge").map(String::as_str),
        p.get("code_challenge_method").map(String::as_str),
    )?;
    if challenge.is_none() && (client.require_pkce || client.client_type == ClientType::Public) {
        return Err(OAuthError::invalid_request(
            "code_challenge (PKCE, S256) is required for this client",
        ));
    }
    Ok(challenge)
}

/// `max_age` in seconds (OIDC Core §3.1.2.1).
fn check_max_age(p: &Params) -> Result<Option<i64>, OAuthError> {
    p.get("max_age")
        .map(|v| {
            v.parse::<u32>()
                .map(i64::from)
                .map_err(|_| OAuthError::invalid_request("max_age must be a non-negative integer"))
        })
        .transpose()
}

/// The space-separated words of parameter `name`.
fn words(p: &Params, name: &str) -> Vec<String> {
    p.get(name)
        .map(|v| {
            v.split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn check_prompt(v: Option<&str>) -> Result<Prompt, OAuthError> {
    let mut p = Prompt::default();
    for word in v.unwrap_or_default().split(' ').filter(|s| !s.is_empty()) {
        match word {
            "none" => p.none = true,
            "login" => p.login = true,
            "consent" => p.consent = true,
            "select_account" => {}
            other => {
                return Err(OAuthError::invalid_request(format!(
                    "prompt value {other:?} is not supported"
                )));
            }
        }
    }
    if p.none && (p.login || p.consent) {
        return Err(OAuthError::invalid_request(
            "prompt=none can't be combined with other values",
        ));
    }
    Ok(p)
}

/// The browser's signed-in state as the decision needs it.
#[derive(Debug, Clone, Copy)]
pub struct SignedIn {
    /// Seconds since the epoch.
    pub auth_time: i64,
    /// The user authenticated during this authorization request (after it started).
    pub during_request: bool,
    /// The session's methods meet the request's `acr_values`.
    pub acr_met: bool,
}

/// What the request needs next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    SignIn,
    /// Signed in, but the request asks for a stronger authentication (`acr_values`).
    StepUp,
    Consent,
    /// Issue a code for these scopes.
    Issue,
    Refuse(OAuthError),
}

/// Decides the next step from the session, the consent on record and the client.
/// `consented` is the scope string the user allowed this client before, if any.
pub fn next_step(
    req: &AuthorizationRequest,
    signed_in: Option<SignedIn>,
    consented: Option<&str>,
    first_party: bool,
    now: i64,
) -> Next {
    let needs_login = match signed_in {
        None => true,
        Some(s) if s.during_request => false,
        // max_age=0 asks for a fresh sign-in, like prompt=login (OIDC Core §3.1.2.1).
        Some(s) => req.prompt.login || req.max_age.is_some_and(|max| max == 0 || now - s.auth_time > max),
    };
    if needs_login {
        return if req.prompt.none {
            Next::Refuse(OAuthError::new(
                ErrorCode::LoginRequired,
                "the user is not signed in",
            ))
        } else {
            Next::SignIn
        };
    }
    if signed_in.is_some_and(|s| !s.acr_met) {
        return if req.prompt.none {
            Next::Refuse(OAuthError::new(
                ErrorCode::InteractionRequired,
                "the requested authentication context needs the user",
            ))
        } else {
            Next::StepUp
        };
    }
    let asked = scope::join(&req.scope);
    let covered = consented.is_some_and(|c| scope::is_subset(&asked, c));
    let offline = req.scope.iter().any(|s| s == scope::OFFLINE_ACCESS);
    let needs_consent = req.prompt.consent || (!covered && (!first_party || offline));
    if needs_consent {
        return if req.prompt.none {
            Next::Refuse(OAuthError::new(
                ErrorCode::ConsentRequired,
                "the user has not consented",
            ))
        } else {
            Next::Consent
        };
    }
    Next::Issue
}

/// The parameters of a successful or failed authorization response, `iss` included (RFC 9207).
pub fn response_params(
    issuer: &str,
    target: &Target,
    result: Result<&str, &OAuthError>,
) -> Vec<(&'static str, String)> {
    let mut out = Vec::with_capacity(4);
    match result {
        Ok(code) => out.push(("code", code.to_owned())),
        Err(e) => {
            out.push(("error", e.code.as_str().to_owned()));
            out.push(("error_description", e.description.clone()));
        }
    }
    if let Some(s) = &target.state {
        out.push(("state", s.clone()));
    }
    out.push(("iss", issuer.to_owned()));
    out
}

/// The redirect URI with `params` added to its query (RFC 6749 §4.1.2: keep its own query).
pub fn query_url(redirect_uri: &str, params: &[(&str, String)]) -> String {
    let mut url = redirect_uri.to_owned();
    let mut sep = if url.contains('?') { '&' } else { '?' };
    for (k, v) in params {
        url.push(sep);
        url.push_str(k);
        url.push('=');
        url.extend(url::form_urlencoded::byte_serialize(v.as_bytes()));
        sep = '&';
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(kind: ClientType) -> Client {
        Client {
            redirect_uris: vec!["https://app.example.com/cb".into(), "http://127.0.0.1/cb".into()],
            scopes: ["openid", "profile", "email", "offline_access"]
                .map(String::from)
                .to_vec(),
            ..crate::testing::client(kind)
        }
    }

    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn params(extra: &[(&str, &str)]) -> Params {
        let mut p: Params = [
            ("client_id", "c1"),
            ("redirect_uri", "https://app.example.com/cb"),
            ("response_type", "code"),
            ("scope", "openid email admin"),
            ("state", "s t&=?#"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        for (k, v) in extra {
            if v.is_empty() {
                p.remove(*k);
            } else {
                p.insert((*k).to_owned(), (*v).to_owned());
            }
        }
        p
    }

    fn code_of(r: Result<AuthorizationRequest, AuthorizeError>) -> (&'static str, bool) {
        match r {
            Ok(_) => ("ok", false),
            Err(AuthorizeError::Page(e)) => (e.code.as_str(), false),
            Err(AuthorizeError::Redirect(e, t)) => {
                assert_eq!(t.state.as_deref(), Some("s t&=?#"));
                (e.code.as_str(), true)
            }
        }
    }

    #[test]
    fn a_good_request_keeps_allowed_scopes_and_state() {
        let c = client(ClientType::Confidential);
        let r = check_authorization_request(&params(&[]), Some(&c)).unwrap();
        assert_eq!(r.scope, ["openid", "email"]);
        assert_eq!(r.target.state.as_deref(), Some("s t&=?#"));
        assert_eq!(r.code_challenge.as_deref(), Some(CHALLENGE));
    }

    #[test]
    fn client_and_redirect_errors_stay_on_the_page() {
        let c = client(ClientType::Confidential);
        assert_eq!(
            code_of(check_authorization_request(&params(&[]), None)),
            ("invalid_request", false)
        );
        for bad in [
            "https://app.example.com/cb/",
            "https://app.example.com/cb?x=1",
            "https://app.example.com:443/cb",
            "https://evil@app.example.com/cb",
            "https://app.example.com/CB",
            "http://app.example.com/cb",
            "https://app.example.com/cb#f",
            "",
        ] {
            let r = check_authorization_request(&params(&[("redirect_uri", bad)]), Some(&c));
            assert_eq!(code_of(r), ("invalid_request", false), "{bad}");
        }
        // Loopback port variance is for native (public) clients only.
        let r =
            check_authorization_request(&params(&[("redirect_uri", "http://127.0.0.1:5555/cb")]), Some(&c));
        assert_eq!(code_of(r), ("invalid_request", false));
        let public = client(ClientType::Public);
        let r = check_authorization_request(
            &params(&[("redirect_uri", "http://127.0.0.1:5555/cb")]),
            Some(&public),
        )
        .unwrap();
        assert_eq!(r.target.redirect_uri, "http://127.0.0.1:5555/cb");
    }

    #[test]
    fn later_errors_redirect_with_state() {
        let c = client(ClientType::Confidential);
        for (extra, want) in [
            (&[("response_type", "token")][..], "unsupported_response_type"),
            (
                &[("response_type", "code id_token")][..],
                "unsupported_response_type",
            ),
            (&[("response_type", "")][..], "invalid_request"),
            (&[("code_challenge_method", "plain")][..], "invalid_request"),
            (
                &[("code_challenge", ""), ("code_challenge_method", "")][..],
                "invalid_request",
            ),
            (&[("response_mode", "fragment")][..], "invalid_request"),
            (&[("prompt", "none login")][..], "invalid_request"),
            (&[("prompt", "bogus")][..], "invalid_request"),
            (&[("max_age", "-1")][..], "invalid_request"),
            (&[("request", "eyJ")][..], "request_not_supported"),
            (&[("request_uri", "https://x")][..], "request_uri_not_supported"),
            (&[("scope", "openid \"")][..], "invalid_scope"),
        ] {
            let r = check_authorization_request(&params(extra), Some(&c));
            assert_eq!(code_of(r), (want, true), "{extra:?}");
        }
    }

    #[test]
    fn a_legacy_confidential_client_may_skip_pkce_but_a_public_one_may_not() {
        let mut c = client(ClientType::Confidential);
        c.require_pkce = false;
        let p = params(&[("code_challenge", ""), ("code_challenge_method", "")]);
        assert!(check_authorization_request(&p, Some(&c)).is_ok());
        let mut public = client(ClientType::Public);
        public.require_pkce = false;
        assert_eq!(
            code_of(check_authorization_request(&p, Some(&public))),
            ("invalid_request", true)
        );
    }

    fn req(extra: &[(&str, &str)]) -> AuthorizationRequest {
        check_authorization_request(&params(extra), Some(&client(ClientType::Confidential))).unwrap()
    }

    #[test]
    fn next_step_follows_prompt_max_age_and_consent() {
        let now = 10_000;
        let old = Some(SignedIn {
            auth_time: now - 600,
            during_request: false,
            acr_met: true,
        });
        let fresh = Some(SignedIn {
            auth_time: now,
            during_request: true,
            acr_met: true,
        });
        let weak = Some(SignedIn {
            auth_time: now,
            during_request: true,
            acr_met: false,
        });
        assert_eq!(
            next_step(&req(&[]), weak, Some("openid email"), true, now),
            Next::StepUp
        );
        assert!(
            matches!(next_step(&req(&[("prompt", "none")]), weak, Some("openid email"), true, now), Next::Refuse(e) if e.code == ErrorCode::InteractionRequired)
        );
        let r = req(&[]);
        assert_eq!(next_step(&r, None, None, false, now), Next::SignIn);
        let none = req(&[("prompt", "none")]);
        assert!(
            matches!(next_step(&none, None, None, true, now), Next::Refuse(e) if e.code == ErrorCode::LoginRequired)
        );
        assert!(
            matches!(next_step(&none, old, None, false, now), Next::Refuse(e) if e.code == ErrorCode::ConsentRequired)
        );
        assert_eq!(
            next_step(&none, old, Some("openid email"), false, now),
            Next::Issue
        );
        assert_eq!(next_step(&r, old, None, false, now), Next::Consent);
        assert_eq!(next_step(&r, old, None, true, now), Next::Issue);
        assert_eq!(
            next_step(&req(&[("prompt", "login")]), old, None, true, now),
            Next::SignIn
        );
        assert_eq!(
            next_step(&req(&[("prompt", "login")]), fresh, None, true, now),
            Next::Issue
        );
        assert_eq!(
            next_step(&req(&[("max_age", "300")]), old, None, true, now),
            Next::SignIn
        );
        assert_eq!(
            next_step(&req(&[("max_age", "900")]), old, None, true, now),
            Next::Issue
        );
        assert_eq!(
            next_step(
                &req(&[("prompt", "consent")]),
                old,
                Some("openid email"),
                true,
                now
            ),
            Next::Consent
        );
        // offline_access needs consent even for a first-party client.
        let offline = req(&[("scope", "openid offline_access")]);
        assert_eq!(offline.scope, ["openid", "offline_access"]);
        assert_eq!(next_step(&offline, old, None, true, now), Next::Consent);
        assert_eq!(
            next_step(&offline, old, Some("openid offline_access"), true, now),
            Next::Issue
        );
    }

    #[test]
    fn responses_carry_state_and_iss_and_keep_the_redirect_query() {
        let t = Target {
            redirect_uri: "https://app.example.com/cb?tenant=a".into(),
            response_mode: ResponseMode::Query,
            state: Some("a b&c".into()),
        };
        let p = response_params("https://idp/t/x", &t, Ok("CODE"));
        let url = query_url(&t.redirect_uri, &p);
        assert_eq!(
            url,
            "https://app.example.com/cb?tenant=a&code=CODE&state=a+b%26c&iss=https%3A%2F%2Fidp%2Ft%2Fx"
        );
        let e = OAuthError::new(ErrorCode::AccessDenied, "no");
        let p = response_params("i", &t, Err(&e));
        assert_eq!(p[0], ("error", "access_denied".to_owned()));
    }
}
