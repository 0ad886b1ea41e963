//! Verified email (issue 20, item 4): links mailed over real SMTP to a loopback receiver, the
//! `email_verified` claim through the real token and userinfo endpoints, and the tenant policy
//! that holds codes back until the address is verified; on SQLite + memory and PostgreSQL +
//! Redis.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use latchkey_core::{AccessTokenFormat, ClientType, FixedClock, User};
use latchkey_store::{AuditRepo, TenantRepo, UserRepo};
use latchkey_tests::browser::{Browser, hidden, setup};
use latchkey_tests::oidc::{REDIRECT, authorize, authorize_path, query, redeem, register, update_policy};
use latchkey_tests::{Backend, SmtpSink, TestServer};
use reqwest::StatusCode;
use serde_json::Value;
use std::sync::Arc;

fn alice(s: &TestServer) -> User {
    let t = s.state.db.tenant_by_slug("acme").unwrap().unwrap();
    s.state.db.user_by_username(&t.id, "alice").unwrap().unwrap()
}

fn actions(s: &TestServer) -> Vec<String> {
    let t = s.state.db.tenant_by_slug("acme").unwrap().unwrap();
    s.state
        .db
        .audit_events(&t.id, 0, 1000)
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect()
}

/// Changes the signed-in user's address on the account page.
async fn change_email(b: &mut Browser, s: &TestServer, email: &str) -> (StatusCode, String) {
    let (st, _, page) = b.get(s, "/t/acme/account").await;
    assert_eq!(st, StatusCode::OK);
    let csrf = hidden(&page, "csrf");
    let (st, h, _) = b
        .post(
            s,
            "/t/acme/account/profile",
            &[("csrf", &csrf), ("email", email), ("display_name", "")],
            &[],
        )
        .await;
    let location = h
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (st, location)
}

/// The path of the verification link in the `n`th mail (1-based), once it arrived.
async fn link_in_mail(sink: &SmtpSink, s: &TestServer, n: usize, to: &str) -> String {
    let mails = sink.wait_for(n, 10).await;
    let mail = &mails[n - 1];
    assert_eq!(mail.rcpt_to, [to]);
    assert!(
        mail.text().contains("Confirm your email address"),
        "{}",
        mail.text()
    );
    let link = mail.link().unwrap();
    let prefix = format!("{}/t/acme/email/verify?token=", s.base_url);
    assert!(link.starts_with(&prefix), "{link}");
    assert_eq!(link.len() - prefix.len(), 43, "a 256-bit token");
    link[s.base_url.len()..].to_owned()
}

/// The `email_verified` claim userinfo releases for a fresh code of `b`'s user.
async fn claims(s: &TestServer, b: &mut Browser, c: &latchkey_core::Client) -> Value {
    let back = authorize(s, b, &authorize_path(c, &[]), "acme", true).await;
    let (st, tokens) = redeem(s, c, &query(&back)["code"]).await;
    assert_eq!(st, StatusCode::OK, "{tokens}");
    let res = TestServer::client()
        .get(s.url("/t/acme/userinfo"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

/// Opens a link (GET, as a link preview would) and returns the confirmation form's fields.
async fn open_link(b: &mut Browser, s: &TestServer, path: &str) -> (String, String) {
    let (st, h, page) = b.get(s, path).await;
    assert_eq!(st, StatusCode::OK, "{page}");
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert!(page.contains("Confirm email address"), "{page}");
    (hidden(&page, "csrf"), hidden(&page, "token"))
}

// One address change from the account page to a verified claim, step by step.
#[allow(clippy::too_many_lines)]
async fn an_email_change_is_verified_by_its_link(backend: Backend) {
    let sink = SmtpSink::start().await;
    let Some((s, db)) = TestServer::start_on(backend, &[("LATCHKEY_SMTP_URL", &sink.url)]) else {
        return;
    };
    setup(&s, "acme").await;
    let c = register(&s, "acme", ClientType::Confidential, true, AccessTokenFormat::Jwt);
    let mut b = Browser::default();
    let before = claims(&s, &mut b, &c).await;
    assert_eq!(before["email"], "alice@acme.test");
    assert_eq!(before["email_verified"], false, "nobody verified it");

    let (st, location) = change_email(&mut b, &s, "Alice.New@acme.test").await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    assert_eq!(location, "/t/acme/account?saved=1&verify_sent=1");
    let path = link_in_mail(&sink, &s, 1, "alice.new@acme.test").await;
    let token = path.rsplit('=').next().unwrap().to_owned();
    let dump = String::from_utf8_lossy(&db.dump()).into_owned();
    assert!(!dump.contains(&token), "the token is stored hashed");

    // A link preview (GET, any number of times, any browser) spends nothing.
    let mut preview = Browser::default();
    open_link(&mut preview, &s, &path).await;
    open_link(&mut preview, &s, &path).await;
    assert!(!alice(&s).email_verified);

    // The POST needs the form's CSRF token: forged or missing is refused and changes nothing.
    let mut reader = Browser::default();
    let (csrf, form_token) = open_link(&mut reader, &s, &path).await;
    assert_eq!(form_token, token);
    for bad in ["forged", ""] {
        let (st, _, _) = reader
            .post(
                &s,
                "/t/acme/email/verify",
                &[("csrf", bad), ("token", &token)],
                &[],
            )
            .await;
        assert_eq!(st, StatusCode::FORBIDDEN);
    }
    let (st, _, _) = Browser::default()
        .post(
            &s,
            "/t/acme/email/verify",
            &[("csrf", &csrf), ("token", &token)],
            &[],
        )
        .await;
    assert_eq!(
        st,
        StatusCode::FORBIDDEN,
        "the token is bound to the reader's cookie"
    );
    assert!(!alice(&s).email_verified);

    // Confirmed once; the link is spent.
    let (st, _, page) = reader
        .post(
            &s,
            "/t/acme/email/verify",
            &[("csrf", &csrf), ("token", &token)],
            &[],
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{page}");
    assert!(page.contains("Your email address is confirmed"), "{page}");
    assert!(alice(&s).email_verified);
    let (st, _, page) = reader
        .post(
            &s,
            "/t/acme/email/verify",
            &[("csrf", &csrf), ("token", &token)],
            &[],
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(page.contains("invalid, already used or expired"), "{page}");
    let (st, _, _) = reader.get(&s, &path).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);

    let after = claims(&s, &mut b, &c).await;
    assert_eq!(after["email"], "alice.new@acme.test");
    assert_eq!(after["email_verified"], true);
    let (_, _, page) = b.get(&s, "/t/acme/account").await;
    assert!(page.contains("confirmed"), "{page}");

    // Another change makes the address unverified again; a link for an address the account
    // no longer has verifies nothing.
    change_email(&mut b, &s, "alice.second@acme.test").await;
    assert!(!alice(&s).email_verified);
    let stale = link_in_mail(&sink, &s, 2, "alice.second@acme.test").await;
    change_email(&mut b, &s, "alice.third@acme.test").await;
    link_in_mail(&sink, &s, 3, "alice.third@acme.test").await;
    let (st, _, page) = Browser::default().get(&s, &stale).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(page.contains("no longer has"), "{page}");
    let stale_token = stale.rsplit('=').next().unwrap();
    let (st, _, _) = reader
        .post(
            &s,
            "/t/acme/email/verify",
            &[("csrf", &csrf), ("token", stale_token)],
            &[],
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(!alice(&s).email_verified);
    assert_eq!(claims(&s, &mut b, &c).await["email_verified"], false);

    let actions = actions(&s);
    assert!(actions.iter().any(|a| a == "user.email_verification_requested"));
    assert!(actions.iter().any(|a| a == "user.email_verified"));
}

/// A tenant requiring verified addresses issues no code until the address is verified; the
/// person is told so, can have the link sent again, and continues afterwards.
#[allow(clippy::too_many_lines)]
async fn require_verified_holds_codes_back(backend: Backend) {
    let sink = SmtpSink::start().await;
    let Some((s, _db)) = TestServer::start_on(backend, &[("LATCHKEY_SMTP_URL", &sink.url)]) else {
        return;
    };
    setup(&s, "acme").await;
    update_policy(&s, "acme", |p| p.email.require_verified = true);
    let c = register(&s, "acme", ClientType::Confidential, true, AccessTokenFormat::Jwt);
    let mut b = Browser::default();
    let (st, h, _) = b.get(&s, &authorize_path(&c, &[])).await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let login = h["location"].to_str().unwrap().to_owned();
    let (_, _, page) = b.get(&s, &login).await;
    let form = [
        ("csrf", hidden(&page, "csrf")),
        ("interaction", hidden(&page, "interaction")),
        ("username", "alice".to_owned()),
        ("password", latchkey_tests::browser::PASSWORD.to_owned()),
        ("return_to", String::new()),
    ];
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (st, h, _) = b.post(&s, "/t/acme/login", &pairs, &[]).await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let resume = h["location"].to_str().unwrap().to_owned();
    assert!(
        resume.starts_with("/t/acme/authorize/resume?interaction="),
        "{resume}"
    );
    let (st, h, _) = b.get(&s, &resume).await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let held = h["location"].to_str().unwrap().to_owned();
    assert!(
        held.starts_with("/t/acme/email/unverified?return_to="),
        "no code: {held}"
    );

    // The page says why, in words, with a way to get a new link.
    let (st, _, page) = b.get(&s, &held).await;
    assert_eq!(st, StatusCode::OK);
    assert!(page.contains("Confirm your email address first"), "{page}");
    assert!(page.contains("alice@acme.test"));
    let csrf = hidden(&page, "csrf");
    let return_to = hidden(&page, "return_to");
    assert_eq!(return_to, resume);
    // Continuing before verifying comes back here, again without a code.
    let (st, h, _) = b.get(&s, &resume).await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    assert!(
        h["location"]
            .to_str()
            .unwrap()
            .starts_with("/t/acme/email/unverified")
    );
    // prompt=none can't show the page: the client hears interaction_required, no code.
    let none = authorize_path(&c, &[("prompt", "none"), ("scope", "openid email")]);
    let (st, h, _) = b.get(&s, &none).await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let to_client = h["location"].to_str().unwrap();
    assert!(to_client.starts_with(REDIRECT), "{to_client}");
    assert_eq!(query(to_client)["error"], "interaction_required");
    assert!(!query(to_client).contains_key("code"));

    // Re-send: a forged form is refused; the real one mails a link.
    let (st, _, _) = b
        .post(
            &s,
            "/t/acme/email/resend",
            &[("csrf", "forged"), ("return_to", &return_to)],
            &[],
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert!(sink.received().is_empty());
    let (st, h, _) = b
        .post(
            &s,
            "/t/acme/email/resend",
            &[("csrf", &csrf), ("return_to", &return_to)],
            &[],
        )
        .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    assert!(h["location"].to_str().unwrap().ends_with("&sent=1"));
    let path = link_in_mail(&sink, &s, 1, "alice@acme.test").await;
    // Verified in the same browser: the flow continues to the client with a code.
    let (csrf, token) = open_link(&mut b, &s, &path).await;
    let (st, _, _) = b
        .post(
            &s,
            "/t/acme/email/verify",
            &[("csrf", &csrf), ("token", &token)],
            &[],
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let back = authorize(&s, &mut b, &resume, "acme", true).await;
    assert!(back.starts_with(REDIRECT), "{back}");
    let (st, tokens) = redeem(&s, &c, &query(&back)["code"]).await;
    assert_eq!(st, StatusCode::OK, "{tokens}");

    // Re-sends are capped per user: 429 with Retry-After.
    let (_, _, page) = b.get(&s, "/t/acme/account").await;
    let csrf = hidden(&page, "csrf");
    change_email(&mut b, &s, "alice2@acme.test").await;
    let mut last = StatusCode::OK;
    let mut retry = None;
    for _ in 0..4 {
        let (st, h, _) = b.post(&s, "/t/acme/email/resend", &[("csrf", &csrf)], &[]).await;
        last = st;
        retry = h.get("retry-after").map(|v| v.to_str().unwrap().to_owned());
    }
    assert_eq!(last, StatusCode::TOO_MANY_REQUESTS);
    assert!(retry.is_some());
}

async fn verification_links_expire_after_a_day() {
    let sink = SmtpSink::start().await;
    let clock = Arc::new(FixedClock::new(1_800_000_000_000));
    let Some((s, _db)) = TestServer::start_on_clocked(
        Backend::SqliteMemory,
        &[("LATCHKEY_SMTP_URL", &sink.url)],
        clock.clone(),
    ) else {
        return;
    };
    setup(&s, "acme").await;
    let mut b = Browser::default();
    b.sign_in(&s, "acme", "alice", latchkey_tests::browser::PASSWORD)
        .await;
    change_email(&mut b, &s, "alice.new@acme.test").await;
    let path = link_in_mail(&sink, &s, 1, "alice.new@acme.test").await;
    let mut reader = Browser::default();
    let (csrf, token) = open_link(&mut reader, &s, &path).await;
    clock.advance_millis(24 * 3600 * 1000 + 1000);
    let (st, _, page) = reader.get(&s, &path).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(page.contains("expired"), "{page}");
    let (st, _, _) = reader
        .post(
            &s,
            "/t/acme/email/verify",
            &[("csrf", &csrf), ("token", &token)],
            &[],
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(!alice(&s).email_verified);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_change_is_verified_by_its_link_sqlite_memory() {
    an_email_change_is_verified_by_its_link(Backend::SqliteMemory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_change_is_verified_by_its_link_postgres_redis() {
    an_email_change_is_verified_by_its_link(Backend::PostgresRedis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_verified_holds_codes_back_sqlite_memory() {
    require_verified_holds_codes_back(Backend::SqliteMemory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_verified_holds_codes_back_postgres_redis() {
    require_verified_holds_codes_back(Backend::PostgresRedis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verification_links_expire_after_a_day_sqlite_memory() {
    verification_links_expire_after_a_day().await;
}
