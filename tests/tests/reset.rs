//! Password reset by mail (delivered over SMTP by the real client to a loopback receiver) and
//! the pending-interaction handoff, on SQLite + memory and PostgreSQL + Redis.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use latchkey_core::FixedClock;
use latchkey_server::interaction::{self, NewInteraction};
use latchkey_store::{AuditRepo, TenantRepo};
use latchkey_tests::browser::{Browser, PASSWORD, hidden, session_cookie, setup};
use latchkey_tests::{Backend, SmtpSink, TestServer};
use reqwest::StatusCode;
use std::sync::Arc;

const NEW_PASSWORD: &str = "meadow-lantern-quartz-77";

async fn request_reset(b: &mut Browser, s: &TestServer, name: &str) -> (StatusCode, String) {
    let (_, _, page) = b.get(s, "/t/acme/password/forgot").await;
    let csrf = hidden(&page, "csrf");
    let (st, _, page) = b
        .post(
            s,
            "/t/acme/password/forgot",
            &[("csrf", &csrf), ("username", name)],
            &[],
        )
        .await;
    (st, page)
}

fn audit_actions(s: &TestServer) -> Vec<String> {
    let t = s.state.db.tenant_by_slug("acme").unwrap().unwrap();
    s.state
        .db
        .audit_events(&t.id, 0, 1000)
        .unwrap()
        .into_iter()
        .map(|e| format!("{}:{}", e.action, e.details["reason"].as_str().unwrap_or("")))
        .collect()
}

// One reset from request to used link, step by step: splitting it would hide the order.
#[allow(clippy::too_many_lines)]
async fn reset_by_mail(backend: Backend) {
    let sink = SmtpSink::start().await;
    let Some((s, db)) = TestServer::start_on(backend, &[("LATCHKEY_SMTP_URL", &sink.url)]) else {
        return;
    };
    setup(&s, "acme").await;
    setup(&s, "other").await;
    // alice is signed in somewhere; the reset must end that session.
    let mut elsewhere = Browser::default();
    elsewhere.sign_in(&s, "acme", "alice", PASSWORD).await;
    assert!(session_cookie(&elsewhere, "acme").is_some());

    // Same answer for a known and an unknown account (and no mail for the unknown one).
    let mut b = Browser::default();
    let (st1, known) = request_reset(&mut b, &s, "alice").await;
    let (st2, unknown) = request_reset(&mut b, &s, "nobody@acme.test").await;
    assert_eq!((st1, st2), (StatusCode::OK, StatusCode::OK));
    assert_eq!(
        known, unknown,
        "the page does not tell whether the account exists"
    );
    assert!(known.contains("a reset link is on its way"), "{known}");
    let mails = sink.wait_for(1, 10).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(sink.received().len(), 1, "one mail, for the real account");
    let mail = &mails[0];
    assert_eq!(mail.rcpt_to, ["alice@acme.test"]);
    assert!(mail.data.contains("Subject: Reset your password for acme Corp"));
    let link = mail.link().unwrap();
    let prefix = format!("{}/t/acme/password/reset?token=", s.base_url);
    assert!(link.starts_with(&prefix), "{link}");
    let token = &link[prefix.len()..];
    assert_eq!(token.len(), 43, "256-bit token");
    // Stored hashed; the sealed body is dropped once sent.
    let dump = String::from_utf8_lossy(&db.dump()).into_owned();
    assert!(!dump.contains(token), "the token is not stored in the clear");
    let actions = audit_actions(&s);
    assert!(actions.contains(&"user.password_reset_request:".to_owned()));
    assert!(actions.contains(&"user.password_reset_request:unknown_user".to_owned()));

    // A token of tenant acme means nothing in tenant other.
    let mut stranger = Browser::default();
    stranger
        .get(&s, &format!("/t/other/password/reset?token={token}"))
        .await;
    let (st, _, page) = stranger.get(&s, "/t/other/password/reset").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(page.contains("invalid, already used or expired"));

    // Following the link moves the token out of the address bar into a cookie.
    let path = &link[s.base_url.len()..];
    let (st, h, _) = b.get(&s, path).await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    assert_eq!(h["location"], "/t/acme/password/reset");
    let (st, _, page) = b.get(&s, "/t/acme/password/reset").await;
    assert_eq!(st, StatusCode::OK);
    assert!(page.contains("autocomplete=\"new-password\""));
    let csrf = hidden(&page, "csrf");

    // A foreign CSRF token is refused; a weak password is refused with what is missing.
    let (st, _, _) = b
        .post(
            &s,
            "/t/acme/password/reset",
            &[("csrf", "forged"), ("new_password", NEW_PASSWORD)],
            &[],
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, _, page) = b
        .post(
            &s,
            "/t/acme/password/reset",
            &[("csrf", &csrf), ("new_password", "short")],
            &[],
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        page.contains("The password needs at least 12 characters (it has 5)"),
        "{page}"
    );
    let (st, _, page) = b
        .post(
            &s,
            "/t/acme/password/reset",
            &[("csrf", &csrf), ("new_password", PASSWORD)],
            &[],
        )
        .await;
    assert_eq!(
        st,
        StatusCode::UNPROCESSABLE_ENTITY,
        "the current password is not new"
    );
    assert!(page.contains("not used recently"));

    // The reset itself: every session ends, the new password works, the old one does not.
    let (st, h, _) = b
        .post(
            &s,
            "/t/acme/password/reset",
            &[("csrf", &csrf), ("new_password", NEW_PASSWORD)],
            &[],
        )
        .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    assert_eq!(h["location"], "/t/acme/login?reset=1");
    let (_, _, page) = b.get(&s, "/t/acme/login?reset=1").await;
    assert!(page.contains("Your password has been reset"));
    let (st, _, _) = elsewhere.get(&s, "/t/acme/account").await;
    assert_eq!(st, StatusCode::SEE_OTHER, "the other session ended");
    assert_eq!(
        Browser::default().sign_in(&s, "acme", "alice", PASSWORD).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        Browser::default()
            .sign_in(&s, "acme", "alice", NEW_PASSWORD)
            .await
            .0,
        StatusCode::SEE_OTHER
    );
    assert!(audit_actions(&s).contains(&"user.password_reset:".to_owned()));

    // The link works once.
    let mut again = Browser::default();
    again.get(&s, path).await;
    let (st, _, page) = again.get(&s, "/t/acme/password/reset").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(page.contains("invalid, already used or expired"));
    let (st, _, _) = again
        .post(
            &s,
            "/t/acme/password/reset",
            &[("csrf", &csrf), ("new_password", "another-fine-passphrase-9")],
            &[],
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
}

async fn reset_requests_are_capped(backend: Backend) {
    let sink = SmtpSink::start().await;
    let Some((s, _db)) = TestServer::start_on(backend, &[("LATCHKEY_SMTP_URL", &sink.url)]) else {
        return;
    };
    setup(&s, "acme").await;
    let mut b = Browser::default();
    let mut pages = Vec::new();
    for _ in 0..5 {
        let (st, page) = request_reset(&mut b, &s, "alice").await;
        assert_eq!(st, StatusCode::OK);
        pages.push(page);
    }
    assert!(
        pages.windows(2).all(|w| w[0] == w[1]),
        "capped or not, the answer is the same"
    );
    sink.wait_for(3, 10).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(sink.received().len(), 3, "at most 3 mails per account per hour");
    assert!(audit_actions(&s).contains(&"user.password_reset_request:throttled".to_owned()));
    // The address is capped across accounts: the 11th request in 15 minutes waits.
    let mut last = None;
    for _ in 0..6 {
        let csrf = hidden(&b.get(&s, "/t/acme/password/forgot").await.2, "csrf");
        last = Some(
            b.post(
                &s,
                "/t/acme/password/forgot",
                &[("csrf", &csrf), ("username", "someone")],
                &[],
            )
            .await,
        );
    }
    let (st, h, _) = last.unwrap();
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS);
    assert!(h["retry-after"].to_str().unwrap().parse::<u64>().unwrap() > 0);
}

/// A reset link works only in the browser that asked for it: someone who plants their own link
/// (for their own account) in a victim's browser, or a link read from a mailbox elsewhere, sets
/// no password, even with the CSRF token the link's holder can compute. The user who opens it on
/// another device is told to request the reset from there.
async fn a_reset_link_works_only_in_the_browser_that_asked_for_it(backend: Backend) {
    let sink = SmtpSink::start().await;
    let Some((s, _db)) = TestServer::start_on(backend, &[("LATCHKEY_SMTP_URL", &sink.url)]) else {
        return;
    };
    setup(&s, "acme").await;
    let mut asked = Browser::default();
    request_reset(&mut asked, &s, "alice").await;
    let link = sink.wait_for(1, 10).await[0].link().unwrap();
    let path = &link[s.base_url.len()..];
    let token = &link[link.find("token=").unwrap() + 6..];
    let csrf = latchkey_core::sha256_hex(format!("latchkey-csrf-v1:{token}").as_bytes());

    // A fresh browser, and one that asked for a reset of its own (another binding cookie).
    let fresh = Browser::default();
    let mut own = Browser::default();
    request_reset(&mut own, &s, "nobody@acme.test").await;
    for mut other in [fresh, own] {
        let (st, _, _) = other.get(&s, path).await;
        assert_eq!(st, StatusCode::SEE_OTHER);
        let (st, _, page) = other.get(&s, "/t/acme/password/reset").await;
        assert_eq!(st, StatusCode::BAD_REQUEST);
        assert!(page.contains("requested in another browser"), "{page}");
        assert!(
            page.contains("/t/acme/password/forgot"),
            "offers a new request here"
        );
        assert!(!page.contains("new-password"), "no form");
        other.get(&s, path).await;
        let (st, _, page) = other
            .post(
                &s,
                "/t/acme/password/reset",
                &[("csrf", &csrf), ("new_password", NEW_PASSWORD)],
                &[],
            )
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{page}");
    }
    assert_eq!(
        Browser::default().sign_in(&s, "acme", "alice", PASSWORD).await.0,
        StatusCode::SEE_OTHER,
        "the password did not change"
    );

    // The browser that asked still can.
    asked.get(&s, path).await;
    let (st, _, page) = asked.get(&s, "/t/acme/password/reset").await;
    assert_eq!(st, StatusCode::OK, "{page}");
    let (st, _, _) = asked
        .post(
            &s,
            "/t/acme/password/reset",
            &[("csrf", &hidden(&page, "csrf")), ("new_password", NEW_PASSWORD)],
            &[],
        )
        .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_link_works_only_in_the_browser_that_asked_for_it_sqlite_memory() {
    a_reset_link_works_only_in_the_browser_that_asked_for_it(Backend::SqliteMemory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_link_works_only_in_the_browser_that_asked_for_it_postgres_redis() {
    a_reset_link_works_only_in_the_browser_that_asked_for_it(Backend::PostgresRedis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_by_mail_sqlite_memory() {
    reset_by_mail(Backend::SqliteMemory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_by_mail_postgres_redis() {
    reset_by_mail(Backend::PostgresRedis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_requests_are_capped_sqlite_memory() {
    reset_requests_are_capped(Backend::SqliteMemory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_requests_are_capped_postgres_redis() {
    reset_requests_are_capped(Backend::PostgresRedis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_links_expire_after_30_minutes() {
    let sink = SmtpSink::start().await;
    let db = latchkey_tests::TestDb::sqlite();
    let clock = Arc::new(FixedClock::new(1_800_000_000_000));
    let s = TestServer::start_with_clock(
        &[
            ("LATCHKEY_DATABASE_URL", &db.url),
            ("LATCHKEY_SMTP_URL", &sink.url),
        ],
        clock.clone(),
    )
    .unwrap();
    setup(&s, "acme").await;
    let mut b = Browser::default();
    request_reset(&mut b, &s, "alice").await;
    let link = sink.wait_for(1, 10).await[0].link().unwrap();
    b.get(&s, &link[s.base_url.len()..]).await;
    clock.advance_millis(29 * 60_000);
    assert_eq!(b.get(&s, "/t/acme/password/reset").await.0, StatusCode::OK);
    clock.advance_millis(60_000);
    let (st, _, page) = b.get(&s, "/t/acme/password/reset").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(page.contains("invalid, already used or expired"));
}

/// Without SMTP a development issuer delivers to the log: the outbox row is marked sent and its
/// sealed body dropped; nothing waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_smtp_a_development_issuer_writes_mail_to_the_log() {
    let Some((s, db)) = TestServer::start_on(Backend::SqliteMemory, &[("LATCHKEY_MAIL_POLL_SECS", "1")])
    else {
        return;
    };
    setup(&s, "acme").await;
    request_reset(&mut Browser::default(), &s, "alice").await;
    let mut delivered = 0;
    for _ in 0..100 {
        delivered = db.raw_sql(
            "UPDATE mail_outbox SET attempts = attempts WHERE sent_at IS NOT NULL AND body_sealed IS NULL",
        );
        if delivered == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(delivered, 1);
}

async fn interactions_hand_off_and_come_back(s: &TestServer) {
    setup(s, "acme").await;
    let t = s.state.db.tenant_by_slug("acme").unwrap().unwrap();
    let started = interaction::begin(
        &s.state,
        &t,
        NewInteraction {
            resume: "/t/acme/authorize/continue".into(),
            login_hint: Some("alice".into()),
            ui_locales: Some("de".into()),
            client_name: Some("Acme <Portal>".into()),
            continues_to: None,
            fresh_login: false,
            request: serde_json::json!({"client_id": "portal", "scope": "openid"}),
        },
    )
    .await
    .unwrap();
    let url = started.login_url(&t);
    assert_eq!(url, format!("/t/acme/login?interaction={}", started.id));
    let cookie_name = started.cookie.name().to_owned();
    let binding = started.cookie.value().to_owned();

    // Another browser with the same link gets nowhere: the reference is bound to its starter.
    let (st, _, page) = Browser::default().get(s, &url).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(page.contains("has expired"));

    let mut b = Browser::default();
    b.cookies.insert(cookie_name, binding.clone());
    let (st, _, page) = b.get(s, &url).await;
    assert_eq!(st, StatusCode::OK);
    assert!(page.contains("lang=\"de\""), "ui_locales of the request");
    assert!(page.contains("value=\"alice\""), "login_hint prefills");
    assert!(page.contains("Acme &#60;Portal&#62;") || page.contains("Acme &lt;Portal&gt;"));
    assert_eq!(hidden(&page, "interaction"), started.id);
    // A tampered reference is refused.
    let mut forged = started.id.clone();
    forged.replace_range(..1, if forged.starts_with('A') { "B" } else { "A" });
    let (st, _, _) = b.get(s, &format!("/t/acme/login?interaction={forged}")).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);

    // Signing in continues at the stored place, not at a return_to the browser sends.
    let csrf = hidden(&page, "csrf");
    let (st, h, _) = b
        .post(
            s,
            "/t/acme/login",
            &[
                ("csrf", &csrf),
                ("username", "alice"),
                ("password", PASSWORD),
                ("interaction", &started.id),
                ("return_to", "/t/acme/elsewhere"),
            ],
            &[],
        )
        .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    assert_eq!(
        h["location"],
        format!("/t/acme/authorize/continue?interaction={}", started.id)
    );

    // The flow takes it once; a wrong binding gets nothing and leaves it in place.
    assert!(
        interaction::finish(&s.state, &t, &started.id, Some("wrong"))
            .await
            .unwrap()
            .is_none()
    );
    let done = interaction::finish(&s.state, &t, &started.id, Some(&binding))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done.request["client_id"], "portal");
    assert!(
        interaction::finish(&s.state, &t, &started.id, Some(&binding))
            .await
            .unwrap()
            .is_none(),
        "single use"
    );
    let (st, _, _) = b.get(s, &url).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "a finished interaction is gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interactions_expire() {
    let db = latchkey_tests::TestDb::sqlite();
    let clock = Arc::new(FixedClock::new(1_800_000_000_000));
    let s = TestServer::start_with_clock(&[("LATCHKEY_DATABASE_URL", &db.url)], clock.clone()).unwrap();
    setup(&s, "acme").await;
    let t = s.state.db.tenant_by_slug("acme").unwrap().unwrap();
    let started = interaction::begin(&s.state, &t, NewInteraction::default())
        .await
        .unwrap();
    let binding = started.cookie.value().to_owned();
    clock.advance_millis(interaction::TTL.as_millis() as i64 - 1);
    assert!(
        interaction::load(&s.state, &t, &started.id, Some(&binding))
            .await
            .unwrap()
            .is_some()
    );
    clock.advance_millis(1);
    assert!(
        interaction::finish(&s.state, &t, &started.id, Some(&binding))
            .await
            .unwrap()
            .is_none()
    );
}

/// A mail that can't be delivered yet waits, sealed, and survives a data-key rotation: the
/// rotation re-seals queued bodies before it deletes the old key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_mail_survives_a_data_key_rotation() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("smtp://{}", closed.local_addr().unwrap());
    drop(closed);
    let Some((s, db)) = TestServer::start_on(Backend::SqliteMemory, &[("LATCHKEY_SMTP_URL", &url)]) else {
        return;
    };
    setup(&s, "acme").await;
    request_reset(&mut Browser::default(), &s, "alice").await;
    let t = s.state.db.tenant_by_slug("acme").unwrap().unwrap();
    // The first attempt fails (nobody listens) and schedules a retry; the body stays sealed.
    let mut waiting = 0;
    for _ in 0..100 {
        waiting = db.raw_sql("UPDATE mail_outbox SET attempts = attempts WHERE attempts = 1 AND last_error IS NOT NULL AND body_sealed IS NOT NULL");
        if waiting == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(waiting, 1, "one failed attempt, body kept for the retry");
    let (new_dek, resealed) = s.state.keys.rotate_dek(&t.id, "test", 10, None).unwrap();
    assert!(resealed >= 1, "the mail body was re-sealed: {resealed}");
    assert_eq!(
        s.state.db.data_keys(&t.id).unwrap().len(),
        1,
        "old data key deleted"
    );
    let (id, sealed): (String, String) = {
        use diesel::prelude::*;
        let mut c = diesel::SqliteConnection::establish(db.url.trim_start_matches("sqlite://")).unwrap();
        diesel::sql_query("SELECT id, body_sealed FROM mail_outbox")
            .load::<MailRow>(&mut c)
            .unwrap()
            .into_iter()
            .map(|r| (r.id, r.body_sealed))
            .next()
            .unwrap()
    };
    assert!(sealed.starts_with(&format!("v1.{new_dek}.")), "{sealed}");
    let aad = latchkey_keys::Aad {
        tenant: t.id.as_str(),
        table: "mail_outbox",
        column: "body_sealed",
        row: &id,
    };
    let body = String::from_utf8(s.state.keys.open_sealed(&t.id, aad, &sealed).unwrap()).unwrap();
    assert!(body.contains("/t/acme/password/reset?token="));
}

#[derive(diesel::QueryableByName)]
struct MailRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    id: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    body_sealed: String,
}

/// A language picked by `ui_locales` stays for the forms that follow, policy messages included.
async fn a_chosen_language_is_kept_across_posts(s: &TestServer) {
    setup(s, "acme").await;
    let mut b = Browser::default();
    let (_, _, page) = b.get(s, "/t/acme/login?ui_locales=de").await;
    assert!(page.contains("lang=\"de\""));
    assert_eq!(b.cookies.get("lk-locale").map(String::as_str), Some("de"));
    let csrf = hidden(&page, "csrf");
    let (st, _, page) = b
        .post(
            s,
            "/t/acme/login",
            &[
                ("csrf", &csrf),
                ("username", "alice"),
                ("password", "wrong-password-1"),
            ],
            &[],
        )
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert!(page.contains("Benutzername oder Passwort ist falsch."), "{page}");
    b.sign_in(s, "acme", "alice", PASSWORD).await;
    let (_, _, page) = b.get(s, "/t/acme/account").await;
    let csrf = hidden(&page, "csrf");
    let (st, _, page) = b
        .post(
            s,
            "/t/acme/account/password",
            &[
                ("csrf", &csrf),
                ("current_password", PASSWORD),
                ("new_password", "kurz"),
            ],
            &[],
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        page.contains("Das Passwort braucht mindestens 12 Zeichen (es hat 4)"),
        "{page}"
    );
}

/// With an expired password, signing in for an interaction goes to the password change first
/// and continues to the interaction after it.
async fn an_expired_password_is_changed_before_the_interaction_continues(s: &TestServer) {
    setup(s, "acme").await;
    let t = s.state.db.tenant_by_slug("acme").unwrap().unwrap();
    let mut policy = t.policy.clone();
    // Zero days: every password is expired at once (the test can't move the server's clock).
    policy.password.expiry_days = Some(0);
    let change = latchkey_store::TenantUpdate {
        display_name: None,
        policy: Some(policy),
    };
    s.state.db.update_tenant(&t.id, "test", &change).unwrap();
    let t = s.state.db.tenant_by_slug("acme").unwrap().unwrap();
    let started = interaction::begin(
        &s.state,
        &t,
        NewInteraction {
            resume: "/t/acme/authorize/continue".into(),
            ..NewInteraction::default()
        },
    )
    .await
    .unwrap();
    let mut b = Browser::default();
    b.cookies.insert(
        started.cookie.name().to_owned(),
        started.cookie.value().to_owned(),
    );
    let (_, _, page) = b.get(s, &started.login_url(&t)).await;
    let csrf = hidden(&page, "csrf");
    let (_, h, _) = b
        .post(
            s,
            "/t/acme/login",
            &[
                ("csrf", &csrf),
                ("username", "alice"),
                ("password", PASSWORD),
                ("interaction", &started.id),
            ],
            &[],
        )
        .await;
    let resume = format!("/t/acme/authorize/continue?interaction={}", started.id);
    let location = h["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with("/t/acme/account?return_to="), "{location}");
    let (_, _, page) = b.get(s, &location).await;
    assert!(page.contains("Your password has expired"));
    assert_eq!(hidden(&page, "return_to"), resume);
    let (st, h, _) = b
        .post(
            s,
            "/t/acme/account/password",
            &[
                ("csrf", &hidden(&page, "csrf")),
                ("current_password", PASSWORD),
                ("new_password", NEW_PASSWORD),
                ("return_to", &resume),
            ],
            &[],
        )
        .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    assert_eq!(h["location"], resume.as_str());
}

latchkey_tests::e2e!(
    interactions_hand_off_and_come_back,
    a_chosen_language_is_kept_across_posts,
    an_expired_password_is_changed_before_the_interaction_continues,
);
