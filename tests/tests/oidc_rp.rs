//! A real relying party (the `openidconnect` crate, unchanged) against a running Latchkey:
//! discovery, code + PKCE for a confidential and a public client, ID-token validation,
//! userinfo, refresh, RP-initiated logout. The user's part is done by the HTTP browser here and
//! in Chromium by `tests/browser`.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use latchkey_core::{AccessTokenFormat, ClientType};
use latchkey_tests::TestServer;
use latchkey_tests::browser::{Browser, setup};
use latchkey_tests::oidc::{POST_LOGOUT, REDIRECT, SECRET, authorize, query, register};
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreUserInfoClaims};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, LogoutRequest, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, PostLogoutRedirectUrl, ProviderMetadataWithLogout, RedirectUrl,
    Scope, TokenResponse,
};

use latchkey_tests::oidc::rp_http as http;

async fn discover(s: &TestServer) -> ProviderMetadataWithLogout {
    ProviderMetadataWithLogout::discover_async(IssuerUrl::new(s.issuer("acme")).unwrap(), &http)
        .await
        .unwrap()
}

/// The path and query of an absolute URL on the server.
fn local(s: &TestServer, url: &str) -> String {
    url.strip_prefix(&s.base_url).unwrap().to_owned()
}

/// The user's part in Debian's Chromium (tests/browser/drive-login.mjs): the URL the browser is
/// sent to under the redirect URI. `None` where Chromium or playwright-core is missing (outside CI).
async fn in_chromium(authorize_url: &str) -> Option<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("browser");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !dir.join("node_modules/playwright-core").exists() || !std::path::Path::new(&chromium).exists() {
        return latchkey_tests::unavailable("Chromium with playwright-core", "run npm ci in tests/browser");
    }
    let url = authorize_url.to_owned();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .current_dir(&dir)
            .args([
                "drive-login.mjs",
                &url,
                REDIRECT,
                "alice",
                latchkey_tests::browser::PASSWORD,
            ])
            .output()
            .expect("node runs")
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    Some(String::from_utf8(out.stdout).unwrap().trim().to_owned())
}

// One relying-party flow, sign-in to logout: splitting it would hide the order of the steps.
#[allow(clippy::too_many_lines)]
async fn run_flow(s: &TestServer, kind: ClientType, format: AccessTokenFormat) {
    setup(s, "acme").await;
    let registered = register(s, "acme", kind, kind == ClientType::Confidential, format);
    let meta = discover(s).await;
    let end_session = meta.additional_metadata().end_session_endpoint.clone().unwrap();
    let secret = (kind == ClientType::Confidential).then(|| ClientSecret::new(SECRET.into()));
    let client =
        CoreClient::from_provider_metadata(meta, ClientId::new(registered.client_id.to_string()), secret)
            .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("offline_access".into()))
        .set_pkce_challenge(challenge)
        .url();
    let mut b = Browser::default();
    let back = authorize(s, &mut b, &local(s, url.as_str()), "acme", true).await;
    assert!(back.starts_with(REDIRECT), "{back}");
    let q = query(&back);
    assert_eq!(q["state"], *state.secret(), "state round-trips");
    assert_eq!(q["iss"], s.issuer("acme"), "RFC 9207 iss");

    let tokens = client
        .exchange_code(AuthorizationCode::new(q["code"].clone()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .unwrap();
    let id_token = tokens.id_token().unwrap();
    let claims = id_token.claims(&client.id_token_verifier(), &nonce).unwrap();
    assert_eq!(claims.preferred_username().unwrap().as_str(), "alice");
    assert_eq!(claims.email().unwrap().as_str(), "alice@acme.test");
    assert!(claims.auth_time().is_some());
    assert_eq!(
        *id_token.signing_alg().unwrap(),
        openidconnect::core::CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256
    );
    // at_hash binds the access token (OIDC Core §3.1.3.8).
    let expected = openidconnect::AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&client.id_token_verifier()).unwrap(),
    )
    .unwrap();
    assert_eq!(claims.access_token_hash(), Some(&expected));

    let info: CoreUserInfoClaims = client
        .user_info(tokens.access_token().clone(), None)
        .unwrap()
        .request_async(&http)
        .await
        .unwrap();
    assert_eq!(info.subject(), claims.subject());
    assert_eq!(info.email().unwrap().as_str(), "alice@acme.test");

    let refreshed = client
        .exchange_refresh_token(tokens.refresh_token().unwrap())
        .unwrap()
        .request_async(&http)
        .await
        .unwrap();
    assert_ne!(
        refreshed.refresh_token().unwrap().secret(),
        tokens.refresh_token().unwrap().secret()
    );
    let again = refreshed
        .id_token()
        .unwrap()
        .claims(&client.id_token_verifier(), |_: Option<&Nonce>| Ok(()));
    assert_eq!(again.unwrap().subject(), claims.subject());
    let info: CoreUserInfoClaims = client
        .user_info(refreshed.access_token().clone(), None)
        .unwrap()
        .request_async(&http)
        .await
        .unwrap();
    assert_eq!(info.subject(), claims.subject());

    // RP-initiated logout with a trusted hint ends the session at once.
    let logout = LogoutRequest::from(end_session)
        .set_id_token_hint(id_token)
        .set_post_logout_redirect_uri(PostLogoutRedirectUrl::new(POST_LOGOUT.into()).unwrap())
        .set_state(CsrfToken::new("bye-state".into()))
        .http_get_url();
    let (st, h, _) = b.get(s, &local(s, logout.as_str())).await;
    assert_eq!(st, 303);
    assert_eq!(h["location"], format!("{POST_LOGOUT}?state=bye-state"));
    // Afterwards prompt=none gets login_required.
    let (url, _, _) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .set_pkce_challenge(PkceCodeChallenge::new_random_sha256().0)
        .add_prompt(openidconnect::core::CoreAuthPrompt::None)
        .url();
    let (st, h, _) = b.get(s, &local(s, url.as_str())).await;
    assert_eq!(st, 303);
    assert_eq!(query(h["location"].to_str().unwrap())["error"], "login_required");
}

/// The same relying party with the user in Chromium, by label, consent page included.
async fn a_person_in_chromium_signs_in_to_the_relying_party(s: &TestServer) {
    setup(s, "acme").await;
    let registered = register(s, "acme", ClientType::Public, false, AccessTokenFormat::Jwt);
    let client = CoreClient::from_provider_metadata(
        discover(s).await,
        ClientId::new(registered.client_id.to_string()),
        None,
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".into()))
        .set_pkce_challenge(challenge)
        .url();
    let Some(back) = in_chromium(url.as_str()).await else {
        return;
    };
    let q = query(&back);
    assert_eq!(q["state"], *state.secret());
    assert_eq!(q["iss"], s.issuer("acme"));
    let tokens = client
        .exchange_code(AuthorizationCode::new(q["code"].clone()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .unwrap();
    let claims = tokens
        .id_token()
        .unwrap()
        .claims(&client.id_token_verifier(), &nonce)
        .unwrap();
    assert_eq!(claims.email().unwrap().as_str(), "alice@acme.test");
    let info: CoreUserInfoClaims = client
        .user_info(tokens.access_token().clone(), None)
        .unwrap()
        .request_async(&http)
        .await
        .unwrap();
    assert_eq!(info.subject(), claims.subject());
}

async fn confidential_client_signs_in_refreshes_and_logs_out(s: &TestServer) {
    run_flow(s, ClientType::Confidential, AccessTokenFormat::Jwt).await;
}

async fn public_client_with_consent_and_opaque_tokens(s: &TestServer) {
    run_flow(s, ClientType::Public, AccessTokenFormat::Opaque).await;
}

latchkey_tests::e2e!(
    a_person_in_chromium_signs_in_to_the_relying_party,
    confidential_client_signs_in_refreshes_and_logs_out,
    public_client_with_consent_and_opaque_tokens,
);
