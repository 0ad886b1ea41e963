//! An HTTP "browser" for the sign-in tests: keeps cookies, never follows redirects, reads
//! hidden form fields. Plus the fixture most sign-in tests start from.

#![allow(clippy::unwrap_used, clippy::missing_panics_doc)] // test kit: a failed unwrap is a failed test

use crate::{Site, TestServer};
use latchkey_core::TenantPolicy;
use latchkey_store::{NewTenant, NewUser, TenantRepo, UserRepo};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, SET_COOKIE};
use std::collections::HashMap;

/// alice's password in `setup`.
pub const PASSWORD: &str = "tulip-gravel-orbit-42";

/// Tenant `slug` ("{slug} Corp") with user alice (alice@{slug}.test, `PASSWORD`).
pub async fn setup(s: &TestServer, slug: &str) {
    let t = s
        .state
        .db
        .create_tenant(
            "test",
            &NewTenant {
                slug: slug.into(),
                display_name: Some(format!("{slug} Corp")),
                policy: TenantPolicy::default(),
            },
        )
        .unwrap();
    s.state.keys.ensure_tenant(&t.id, "test").unwrap();
    let hash = s.state.hasher.hash(PASSWORD.into()).await.unwrap();
    s.state
        .db
        .create_user(
            &t.id,
            "test",
            &NewUser {
                username: "alice".into(),
                email: Some(format!("alice@{slug}.test")),
                password_hash: Some(hash),
                ..NewUser::default()
            },
        )
        .unwrap();
}

/// A browser: keeps cookies by name, never follows redirects.
#[derive(Default, Clone)]
pub struct Browser {
    pub cookies: HashMap<String, String>,
}

impl Browser {
    pub fn header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub fn absorb(&mut self, headers: &HeaderMap) {
        for sc in headers.get_all(SET_COOKIE) {
            let sc = sc.to_str().unwrap();
            let (pair, _) = sc.split_once(';').unwrap_or((sc, ""));
            let (k, v) = pair.split_once('=').unwrap();
            if v.is_empty() || sc.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.into(), v.into());
            }
        }
    }

    pub async fn get(&mut self, s: &impl Site, path: &str) -> (StatusCode, HeaderMap, String) {
        let res = TestServer::client()
            .get(s.url(path))
            .header("cookie", self.header())
            .send()
            .await
            .unwrap();
        let (st, h) = (res.status(), res.headers().clone());
        self.absorb(&h);
        (st, h, res.text().await.unwrap())
    }

    pub async fn post(
        &mut self,
        s: &impl Site,
        path: &str,
        form: &[(&str, &str)],
        extra: &[(&str, &str)],
    ) -> (StatusCode, HeaderMap, String) {
        let mut req = TestServer::client()
            .post(s.url(path))
            .header("cookie", self.header())
            .form(form);
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        let res = req.send().await.unwrap();
        let (st, h) = (res.status(), res.headers().clone());
        self.absorb(&h);
        (st, h, res.text().await.unwrap())
    }

    /// Posts `body` as `content_type` (a multipart form with a file, say).
    pub async fn post_body(
        &mut self,
        s: &impl Site,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> (StatusCode, HeaderMap, String) {
        let res = TestServer::client()
            .post(s.url(path))
            .header("cookie", self.header())
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        let (st, h) = (res.status(), res.headers().clone());
        self.absorb(&h);
        (st, h, res.text().await.unwrap())
    }

    /// Opens the sign-in page and returns its CSRF token.
    pub async fn form_token(&mut self, s: &impl Site, slug: &str) -> String {
        let (st, _, page) = self.get(s, &format!("/t/{slug}/login")).await;
        assert_eq!(st, StatusCode::OK);
        hidden(&page, "csrf")
    }

    pub async fn sign_in(
        &mut self,
        s: &impl Site,
        slug: &str,
        user: &str,
        password: &str,
    ) -> (StatusCode, HeaderMap, String) {
        let csrf = self.form_token(s, slug).await;
        self.post(
            s,
            &format!("/t/{slug}/login"),
            &[
                ("csrf", &csrf),
                ("username", user),
                ("password", password),
                ("return_to", ""),
            ],
            &[],
        )
        .await
    }
}

/// The value of hidden input `name` in `page`.
pub fn hidden(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {page}"))
        + marker.len();
    page[start..start + page[start..].find('"').unwrap()].to_owned()
}

/// The session cookie of tenant `slug` (http loopback name).
pub fn session_cookie(b: &Browser, slug: &str) -> Option<String> {
    b.cookies.get(&format!("lk-session-{slug}")).cloned()
}
