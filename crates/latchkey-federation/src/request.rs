//! What Latchkey sends upstream: the authorization request (RFC 6749 §4.1.1 with PKCE, RFC
//! 7636, and OIDC's `nonce`) and the token request with its client authentication (RFC 6749
//! §2.3.1, RFC 7523 §2.2), and what it reads back from the token endpoint.

use crate::FederationError;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use latchkey_core::{OidcConnection, UpstreamAuth, UpstreamEndpoints, UpstreamKind};
use latchkey_keys::SigningKey;
use serde::Deserialize;
use serde_json::json;
use sha2::Digest as _;

/// How long a client assertion is valid (RFC 7523 §3: short).
const ASSERTION_TTL_SECS: i64 = 60;

/// The per-sign-in values of an authorization request.
#[derive(Debug, Clone, Default)]
pub struct AuthParams<'a> {
    pub redirect_uri: &'a str,
    pub state: &'a str,
    pub nonce: &'a str,
    pub code_verifier: &'a str,
    /// `login` when the portal asked for a fresh sign-in.
    pub prompt: Option<&'a str>,
    pub login_hint: Option<&'a str>,
}

/// RFC 7636 §4.2: `BASE64URL(SHA256(verifier))`.
pub fn code_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()))
}

/// The URL the browser is sent to.
pub fn authorization_url(
    c: &OidcConnection,
    endpoints: &UpstreamEndpoints,
    p: &AuthParams<'_>,
) -> Result<String, FederationError> {
    let mut url = crate::check_endpoint("authorization_endpoint", &endpoints.authorization_endpoint)?;
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", &c.client_id)
            .append_pair("redirect_uri", p.redirect_uri)
            .append_pair("scope", &c.scopes.join(" "))
            .append_pair("state", p.state)
            .append_pair("code_challenge", &code_challenge(p.code_verifier))
            .append_pair("code_challenge_method", "S256");
        if c.kind == UpstreamKind::Oidc {
            q.append_pair("nonce", p.nonce);
            if let Some(prompt) = p.prompt {
                q.append_pair("prompt", prompt);
                // With `max_age` the provider must send `auth_time` (OIDC Core §3.1.2.1), so
                // a reused session can be told from a fresh sign-in.
                q.append_pair("max_age", "0");
            }
        }
        if let Some(hint) = p.login_hint {
            q.append_pair("login_hint", hint);
        }
    }
    Ok(url.to_string())
}

/// A token request ready to POST: its form and, for `client_secret_basic`, the
/// `Authorization` header's value.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub form: Vec<(&'static str, String)>,
    pub authorization: Option<String>,
}

/// The client's credential: its secret, or its `private_key_jwt` key.
pub enum Credential<'a> {
    Secret(&'a str),
    Key(&'a SigningKey),
}

/// RFC 6749 §2.3.1: id and secret are form-urlencoded before the Basic encoding.
fn basic(id: &str, secret: &str) -> String {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", enc(id), enc(secret)))
    )
}

/// The audience of a client assertion to `c`: its issuer (draft-ietf-oauth-rfc7523bis: the
/// issuer alone, so an assertion can't be replayed at another server that shares an endpoint
/// URL), or the token endpoint where there is no single issuer (OAuth 2.0 providers, Entra's
/// `{tenantid}` template).
pub fn assertion_audience<'a>(c: &'a OidcConnection, token_endpoint: &'a str) -> &'a str {
    match (c.kind, c.discovered.as_ref()) {
        (UpstreamKind::Oidc, Some(d)) if !c.templated() => &d.issuer,
        _ => token_endpoint,
    }
}

/// The authorization-code token request (RFC 6749 §4.1.3 with the PKCE verifier).
pub fn token_request(
    c: &OidcConnection,
    token_endpoint: &str,
    code: &str,
    p: &AuthParams<'_>,
    credential: &Credential<'_>,
    jti: &str,
    now_secs: i64,
) -> Result<TokenRequest, FederationError> {
    let mut form = vec![
        ("grant_type", "authorization_code".to_owned()),
        ("code", code.to_owned()),
        ("redirect_uri", p.redirect_uri.to_owned()),
        ("code_verifier", p.code_verifier.to_owned()),
    ];
    let mut authorization = None;
    match (c.client_auth, credential) {
        (UpstreamAuth::ClientSecretBasic, Credential::Secret(s)) => {
            authorization = Some(basic(&c.client_id, s));
        }
        (UpstreamAuth::ClientSecretPost, Credential::Secret(s)) => {
            form.push(("client_id", c.client_id.clone()));
            form.push(("client_secret", (*s).to_owned()));
        }
        (UpstreamAuth::PrivateKeyJwt, Credential::Key(k)) => {
            form.push(("client_id", c.client_id.clone()));
            form.push((
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned(),
            ));
            form.push((
                "client_assertion",
                client_assertion(
                    k,
                    &c.client_id,
                    assertion_audience(c, token_endpoint),
                    jti,
                    now_secs,
                )?,
            ));
        }
        _ => {
            return Err(FederationError::Assertion(
                "the stored credential does not fit the client authentication method".into(),
            ));
        }
    }
    Ok(TokenRequest { form, authorization })
}

/// RFC 7523 §3 client assertion: `iss` = `sub` = the client id, `aud` (see
/// `assertion_audience`), a fresh `jti`, one minute.
pub fn client_assertion(
    key: &SigningKey,
    client_id: &str,
    audience: &str,
    jti: &str,
    now_secs: i64,
) -> Result<String, FederationError> {
    let claims = json!({
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "jti": jti,
        "iat": now_secs,
        "exp": now_secs + ASSERTION_TTL_SECS,
    });
    latchkey_keys::jwt::encode(key, &key.kid(), "JWT", &claims)
        .map_err(|e| FederationError::Assertion(e.to_string()))
}

/// What a token endpoint answered (RFC 6749 §5.1; OIDC Core §3.1.3.3 adds `id_token`).
#[derive(Debug, Clone, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    #[serde(default)]
    pub token_type: String,
    #[serde(default)]
    pub id_token: Option<String>,
}

#[derive(Deserialize)]
struct ErrorResponse {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

/// Reads a token response (JSON, as asked for with `Accept: application/json`); an error
/// response (RFC 6749 §5.2) becomes `TokenResponse` with its bounded code and description.
pub fn parse_token_response(status: u16, body: &[u8]) -> Result<TokenResponse, FederationError> {
    let bounded = |s: &str| s.chars().take(200).collect::<String>();
    if let Ok(e) = serde_json::from_slice::<ErrorResponse>(body) {
        return Err(FederationError::TokenResponse(format!(
            "{} ({})",
            bounded(&e.error),
            bounded(e.error_description.as_deref().unwrap_or("no description"))
        )));
    }
    if !(200..300).contains(&status) {
        return Err(FederationError::TokenResponse(format!("HTTP status {status}")));
    }
    let t: TokenResponse = serde_json::from_slice(body)
        .map_err(|e| FederationError::TokenResponse(format!("not a token response: {e}")))?;
    if !t.token_type.is_empty() && !t.token_type.eq_ignore_ascii_case("bearer") {
        return Err(FederationError::TokenResponse(format!(
            "token_type {:?} is not Bearer",
            bounded(&t.token_type)
        )));
    }
    Ok(t)
}
