//! OIDC fixtures: clients registered straight in the store, and a browser that walks the
//! authorization flow (sign-in form, consent) until the redirect to the client.

#![allow(clippy::unwrap_used, clippy::missing_panics_doc)] // test kit: a failed unwrap is a failed test

use crate::TestServer;
use crate::browser::{Browser, PASSWORD, hidden};
use latchkey_core::{AccessTokenFormat, AuthMethod, Client, ClientSettings, ClientType, GrantType, Tenant};
use latchkey_store::{ClientRepo, NewClient, TenantRepo};

pub const REDIRECT: &str = "http://127.0.0.1:8000/cb";
pub const POST_LOGOUT: &str = "http://127.0.0.1:8000/bye";
pub const SECRET: &str = "portal-secret-0123456789abcdefghijklmnop";

pub fn tenant(s: &TestServer, slug: &str) -> Tenant {
    s.state.db.tenant_by_slug(slug).unwrap().unwrap()
}

/// Registers a client; confidential ones use `client_secret_basic` with `SECRET`.
pub fn register(
    s: &TestServer,
    slug: &str,
    kind: ClientType,
    first_party: bool,
    format: AccessTokenFormat,
) -> Client {
    let t = tenant(s, slug);
    let confidential = kind == ClientType::Confidential;
    let mut grants = vec![GrantType::AuthorizationCode, GrantType::RefreshToken];
    if confidential {
        grants.push(GrantType::ClientCredentials);
    }
    s.state
        .db
        .create_client(
            &t.id,
            "test",
            &NewClient {
                name: format!("{kind} portal"),
                client_type: kind,
                auth_method: if confidential {
                    AuthMethod::ClientSecretBasic
                } else {
                    AuthMethod::None
                },
                secret_hash: confidential.then(|| latchkey_core::sha256_hex(SECRET.as_bytes())),
                redirect_uris: vec![REDIRECT.into()],
                post_logout_redirect_uris: vec![POST_LOGOUT.into()],
                grant_types: grants,
                scopes: ["openid", "profile", "email", "offline_access", "reports.read"]
                    .map(String::from)
                    .to_vec(),
                access_token_format: format,
                require_pkce: true,
                introspect_others: false,
                first_party,
                jwks_uri: None,
                jwks: None,
                settings: ClientSettings::default(),
            },
        )
        .unwrap()
}

/// The query parameters of a URL.
pub fn query(url: &str) -> std::collections::HashMap<String, String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Follows same-site redirects from `path` (signing alice in and allowing consent on the way,
/// when `sign_in`/`allow`) until the browser is sent to the client; returns that URL.
pub async fn authorize(s: &TestServer, b: &mut Browser, path: &str, slug: &str, allow: bool) -> String {
    let mut next = path.to_owned();
    for _ in 0..10 {
        let (st, h, page) = b.get(s, &next).await;
        if st.is_redirection() {
            let loc = h.get("location").unwrap().to_str().unwrap().to_owned();
            if !loc.starts_with('/') {
                return loc;
            }
            next = loc;
            continue;
        }
        assert_eq!(st, 200, "{next}: {page}");
        if page.contains("name=\"password\"") {
            let form = [
                ("csrf", hidden(&page, "csrf")),
                ("interaction", hidden(&page, "interaction")),
                ("username", "alice".to_owned()),
                ("password", PASSWORD.to_owned()),
                ("return_to", String::new()),
            ];
            let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let (st, h, page) = b.post(s, &format!("/t/{slug}/login"), &pairs, &[]).await;
            assert!(st.is_redirection(), "sign-in failed: {page}");
            h.get("location").unwrap().to_str().unwrap().clone_into(&mut next);
        } else if page.contains("authorize/consent") {
            let decision = if allow { "allow" } else { "deny" };
            let form = [
                ("csrf", hidden(&page, "csrf")),
                ("interaction", hidden(&page, "interaction")),
                ("decision", decision.to_owned()),
            ];
            let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let (st, h, page) = b
                .post(s, &format!("/t/{slug}/authorize/consent"), &pairs, &[])
                .await;
            assert!(st.is_redirection(), "consent failed: {page}");
            return h.get("location").unwrap().to_str().unwrap().to_owned();
        } else {
            panic!("unexpected page at {next}: {page}");
        }
    }
    panic!("too many redirects from {path}");
}
