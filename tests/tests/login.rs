//! Sign-in over HTTP (SECURITY-TESTS L1–L8): sessions, cookies, CSRF, identical failures,
//! throttling, timeouts with a controlled clock, tenant separation, sign-out, restart on Redis.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use latchkey_core::FixedClock;
use latchkey_store::{NewUser, TenantRepo, UserRepo};
use latchkey_tests::browser::{Browser, PASSWORD, hidden, session_cookie, setup};
use latchkey_tests::{TestDb, TestServer};
use reqwest::StatusCode;
use reqwest::header::SET_COOKIE;
use std::sync::Arc;

async fn sign_in_sets_a_hardened_session_cookie_and_shows_the_account(s: &TestServer) {
    setup(s, "acme").await;
    let mut b = Browser::default();
    let (_, _, page) = b.get(s, "/t/acme/login").await;
    for needle in [
        "<label for=\"username\">",
        "autocomplete=\"username webauthn\"",
        "autocomplete=\"current-password\"",
        "<label for=\"password\">",
        "acme Corp",
        "lang=\"en\"",
    ] {
        assert!(page.contains(needle), "{needle}");
    }
    let (st, h, _) = b.sign_in(s, "acme", "alice", PASSWORD).await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    assert_eq!(h["location"], "/t/acme/account");
    let set = h
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("lk-session-acme="))
        .unwrap();
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(set.contains(attr), "{set}");
    }
    let id = session_cookie(&b, "acme").unwrap();
    assert_eq!(id.len(), 43, "256-bit id");
    let (st, _, page) = b.get(s, "/t/acme/account").await;
    assert_eq!(st, StatusCode::OK);
    assert!(page.contains("Signed in as <strong>alice</strong>"));
    // The store keeps the session under the id's hash only.
    let stored = s
        .state
        .ephemeral
        .get_session(
            &s.state.db.tenant_by_slug("acme").unwrap().unwrap().id,
            &latchkey_session::SessionId::from_cookie(&id),
        )
        .await
        .unwrap();
    assert_eq!(stored.unwrap().amr, ["pwd"]);
    // Email works as the sign-in name too; German when asked.
    let mut b2 = Browser::default();
    assert_eq!(
        b2.sign_in(s, "acme", "alice@acme.test", PASSWORD).await.0,
        StatusCode::SEE_OTHER
    );
    let res = TestServer::client()
        .get(s.url("/t/acme/login"))
        .header("accept-language", "de-DE,de;q=0.9")
        .send()
        .await
        .unwrap();
    assert!(res.text().await.unwrap().contains("Anmelden bei"));
}

async fn unknown_user_and_wrong_password_look_the_same(s: &TestServer) {
    setup(s, "acme").await;
    let before = s.state.hasher.dummy_runs();
    let (st1, _, wrong) = Browser::default()
        .sign_in(s, "acme", "alice", "not-the-password-1")
        .await;
    let (st2, _, unknown) = Browser::default()
        .sign_in(s, "acme", "mallory", "not-the-password-1")
        .await;
    assert_eq!(st1, StatusCode::UNAUTHORIZED);
    assert_eq!(st1, st2);
    let strip = |p: &str| {
        p.replace(&hidden(p, "csrf"), "")
            .replace("value=\"alice\"", "")
            .replace("value=\"mallory\"", "")
    };
    assert_eq!(strip(&wrong), strip(&unknown), "same page");
    assert!(wrong.contains("role=\"alert\""));
    assert_eq!(
        s.state.hasher.dummy_runs(),
        before + 1,
        "the unknown user cost a (dummy) hash"
    );
    // A disabled user's correct password is refused the same way.
    let t = s.state.db.tenant_by_slug("acme").unwrap().unwrap();
    let alice = s.state.db.user_by_username(&t.id, "alice").unwrap().unwrap();
    s.state
        .db
        .set_user_status(&t.id, "test", &alice.id, latchkey_core::UserStatus::Disabled)
        .unwrap();
    let (st3, _, disabled) = Browser::default().sign_in(s, "acme", "alice", PASSWORD).await;
    assert_eq!(st3, StatusCode::UNAUTHORIZED);
    assert_eq!(strip(&disabled), strip(&wrong));
    let actions: Vec<String> = latchkey_store::AuditRepo::audit_events(&s.state.db, &t.id, 0, 100)
        .unwrap()
        .into_iter()
        .map(|e| format!("{}:{}", e.action, e.details["reason"].as_str().unwrap_or("")))
        .collect();
    for a in [
        "login.failure:bad_password",
        "login.failure:unknown_user",
        "login.failure:disabled",
    ] {
        assert!(actions.contains(&a.to_owned()), "{a} in {actions:?}");
    }
}

async fn csrf_is_required_and_bound(s: &TestServer) {
    setup(s, "acme").await;
    let mut victim = Browser::default();
    let token = victim.form_token(s, "acme").await;
    let creds = |csrf: &str| {
        vec![
            ("csrf".to_owned(), csrf.to_owned()),
            ("username".into(), "alice".into()),
            ("password".into(), PASSWORD.into()),
        ]
    };
    let post = |b: &mut Browser, form: Vec<(String, String)>, extra: Vec<(&'static str, String)>| {
        let mut b2 = b.clone();
        async move {
            let f: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let e: Vec<(&str, &str)> = extra.iter().map(|(k, v)| (*k, v.as_str())).collect();
            b2.post(s, "/t/acme/login", &f, &e).await.0
        }
    };
    assert_eq!(
        post(&mut victim, creds("")[1..].to_vec(), vec![]).await,
        StatusCode::FORBIDDEN,
        "missing token"
    );
    let mut attacker = Browser::default();
    let foreign = attacker.form_token(s, "acme").await;
    assert_eq!(
        post(&mut victim, creds(&foreign), vec![]).await,
        StatusCode::FORBIDDEN,
        "someone else's token"
    );
    assert_eq!(
        post(
            &mut victim,
            creds(&token),
            vec![("sec-fetch-site", "cross-site".into())]
        )
        .await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        post(
            &mut victim,
            creds(&token),
            vec![("origin", "https://evil.example".into())]
        )
        .await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        post(&mut victim, creds(&token), vec![("origin", s.base_url.clone())]).await,
        StatusCode::SEE_OTHER
    );
    // Sign-out needs the session's token too.
    victim.sign_in(s, "acme", "alice", PASSWORD).await;
    let (st, _, _) = victim.post(s, "/t/acme/logout", &[("csrf", &token)], &[]).await;
    assert_eq!(
        st,
        StatusCode::FORBIDDEN,
        "the pre-session token does not sign out a session"
    );
    assert_eq!(
        victim.get(s, "/t/acme/account").await.0,
        StatusCode::OK,
        "still signed in"
    );
}

async fn session_id_rotates_at_sign_in_and_dies_at_sign_out(s: &TestServer) {
    setup(s, "acme").await;
    let mut b = Browser::default();
    b.cookies.insert("lk-session-acme".into(), "A".repeat(43));
    b.sign_in(s, "acme", "alice", PASSWORD).await;
    let first = session_cookie(&b, "acme").unwrap();
    assert_ne!(first, "A".repeat(43), "a planted id is never adopted (fixation)");
    b.sign_in(s, "acme", "alice", PASSWORD).await;
    let second = session_cookie(&b, "acme").unwrap();
    assert_ne!(first, second, "a new id at every sign-in");
    let mut old = Browser::default();
    old.cookies.insert("lk-session-acme".into(), first);
    assert_eq!(
        old.get(s, "/t/acme/account").await.0,
        StatusCode::SEE_OTHER,
        "the replaced session is gone"
    );
    let (_, _, page) = b.get(s, "/t/acme/account").await;
    let csrf = hidden(&page, "csrf");
    let (st, h, _) = b.post(s, "/t/acme/logout", &[("csrf", &csrf)], &[]).await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    assert_eq!(h["location"], "/t/acme/login?signed_out=1");
    assert!(session_cookie(&b, "acme").is_none(), "cookie cleared");
    let mut replay = Browser::default();
    replay.cookies.insert("lk-session-acme".into(), second);
    let (st, h, _) = replay.get(s, "/t/acme/account").await;
    assert_eq!(st, StatusCode::SEE_OTHER, "the server-side session is gone too");
    assert!(h["location"].to_str().unwrap().starts_with("/t/acme/login"));
}

async fn a_session_of_tenant_a_means_nothing_in_tenant_b(s: &TestServer) {
    setup(s, "acme").await;
    setup(s, "beta").await;
    let mut b = Browser::default();
    b.sign_in(s, "acme", "alice", PASSWORD).await;
    let id = session_cookie(&b, "acme").unwrap();
    let mut other = Browser::default();
    other.cookies.insert("lk-session-beta".into(), id);
    assert_eq!(other.get(s, "/t/beta/account").await.0, StatusCode::SEE_OTHER);
}

async fn failures_back_off_and_never_lock_forever(s: &TestServer) {
    setup(s, "acme").await;
    for _ in 0..5 {
        assert_eq!(
            Browser::default()
                .sign_in(s, "acme", "alice", "wrong-password-xyz")
                .await
                .0,
            StatusCode::UNAUTHORIZED
        );
    }
    let (st, h, page) = Browser::default().sign_in(s, "acme", "alice", PASSWORD).await;
    assert_eq!(
        st,
        StatusCode::TOO_MANY_REQUESTS,
        "even the right password waits during back-off"
    );
    let wait: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=900).contains(&wait), "{wait}");
    assert!(page.contains("Too many attempts"));
    // The back-off is short at first and ends by itself.
    tokio::time::sleep(std::time::Duration::from_millis(1100 * wait)).await;
    assert_eq!(
        Browser::default().sign_in(s, "acme", "alice", PASSWORD).await.0,
        StatusCode::SEE_OTHER
    );
    // Another account from the same address is not locked by alice's failures.
    let t = s.state.db.tenant_by_slug("acme").unwrap().unwrap();
    let hash = s.state.hasher.hash(PASSWORD.into()).await.unwrap();
    s.state
        .db
        .create_user(
            &t.id,
            "test",
            &NewUser {
                username: "bob".into(),
                password_hash: Some(hash),
                ..NewUser::default()
            },
        )
        .unwrap();
    assert_eq!(
        Browser::default().sign_in(s, "acme", "bob", PASSWORD).await.0,
        StatusCode::SEE_OTHER
    );
}

async fn failures_count_per_account_whatever_name_is_typed(s: &TestServer) {
    setup(s, "acme").await;
    for name in ["alice", "ALICE", "alice@acme.test", "alice", "alice@acme.test"] {
        assert_eq!(
            Browser::default()
                .sign_in(s, "acme", name, "wrong-password-xyz")
                .await
                .0,
            StatusCode::UNAUTHORIZED
        );
    }
    let (st, _, _) = Browser::default()
        .sign_in(s, "acme", "alice@acme.test", PASSWORD)
        .await;
    assert_eq!(
        st,
        StatusCode::TOO_MANY_REQUESTS,
        "username and email share one counter"
    );
}

// One browser session editing its profile, step by step: each step's state feeds the next.
#[allow(clippy::too_many_lines)]
async fn the_profile_is_edited_with_validation_and_audit(s: &TestServer) {
    setup(s, "acme").await;
    let t = s.state.db.tenant_by_slug("acme").unwrap().unwrap();
    s.state
        .db
        .create_user(
            &t.id,
            "test",
            &NewUser {
                username: "bob".into(),
                email: Some("bob@acme.test".into()),
                ..NewUser::default()
            },
        )
        .unwrap();
    let mut b = Browser::default();
    b.sign_in(s, "acme", "alice", PASSWORD).await;
    let (_, _, page) = b.get(s, "/t/acme/account").await;
    assert!(page.contains("autocomplete=\"email\"") && page.contains("value=\"alice@acme.test\""));
    let csrf = hidden(&page, "csrf");
    let (st, _, page) = b
        .post(
            s,
            "/t/acme/account/profile",
            &[
                ("csrf", &csrf),
                ("display_name", "Alice"),
                ("email", "not-an-email"),
            ],
            &[],
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("is not an email address"), "{page}");
    let (st, _, _) = b
        .post(
            s,
            "/t/acme/account/profile",
            &[
                ("csrf", &csrf),
                ("display_name", "Alice"),
                ("email", "BOB@acme.test"),
            ],
            &[],
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "another user's email");
    let (st, h, _) = b
        .post(
            s,
            "/t/acme/account/profile",
            &[
                ("csrf", &csrf),
                ("display_name", "Alice <Admin>"),
                ("email", "Alice@New.example"),
            ],
            &[],
        )
        .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    // A new address is saved unverified and gets a verification link (docs/sign-up.md).
    assert_eq!(h["location"], "/t/acme/account?saved=1&verify_sent=1");
    let (_, _, page) = b.get(s, "/t/acme/account?saved=1").await;
    assert!(!page.contains("Alice <Admin>"), "unescaped: {page}");
    assert!(
        page.contains("Alice &#60;Admin&#62;") || page.contains("Alice &lt;Admin&gt;"),
        "{page}"
    );
    assert!(page.contains("Your profile has been saved."));
    let alice = s.state.db.user_by_username(&t.id, "alice").unwrap().unwrap();
    assert_eq!(alice.email.as_deref(), Some("alice@new.example"));
    let mut events = latchkey_store::AuditRepo::audit_events(&s.state.db, &t.id, 0, 1000).unwrap();
    let requested = events.pop().unwrap();
    assert_eq!(requested.action, "user.email_verification_requested");
    let last = events.pop().unwrap();
    assert_eq!(
        (last.action.as_str(), last.actor),
        ("user.update", format!("user:{}", alice.id))
    );
    // Without the session's CSRF token nothing changes.
    let (st, _, _) = b
        .post(
            s,
            "/t/acme/account/profile",
            &[("csrf", "x"), ("display_name", "Mallory")],
            &[],
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert_eq!(
        s.state
            .db
            .user(&t.id, &alice.id)
            .unwrap()
            .unwrap()
            .display_name
            .as_deref(),
        Some("Alice <Admin>")
    );
}

async fn return_to_stays_inside_the_tenant(s: &TestServer) {
    setup(s, "acme").await;
    for (given, expected) in [
        ("/t/acme/account", "/t/acme/account"),
        ("https://evil.example/", "/t/acme/account"),
        ("//evil.example/", "/t/acme/account"),
        ("/t/beta/account", "/t/acme/account"),
        ("/t/acme/../../evil", "/t/acme/account"),
    ] {
        let mut b = Browser::default();
        let csrf = b.form_token(s, "acme").await;
        let (_, h, _) = b
            .post(
                s,
                "/t/acme/login",
                &[
                    ("csrf", &csrf),
                    ("username", "alice"),
                    ("password", PASSWORD),
                    ("return_to", given),
                ],
                &[],
            )
            .await;
        assert_eq!(h["location"], expected, "{given}");
    }
}

async fn the_account_page_lists_and_ends_sessions(s: &TestServer) {
    setup(s, "acme").await;
    let mut laptop = Browser::default();
    let mut phone = Browser::default();
    laptop.sign_in(s, "acme", "alice", PASSWORD).await;
    phone.sign_in(s, "acme", "alice", PASSWORD).await;
    let (_, _, page) = laptop.get(s, "/t/acme/account").await;
    assert_eq!(page.matches("<li>").count(), 2, "{page}");
    assert!(page.contains("this browser"));
    assert!(
        !page.contains(&session_cookie(&phone, "acme").unwrap()),
        "ids are never shown, only their hashes"
    );
    // Sign the phone out from the laptop.
    let csrf = hidden(&page, "csrf");
    let key = hidden(&page, "session");
    let (st, _, _) = laptop
        .post(
            s,
            "/t/acme/account/sessions/revoke",
            &[("csrf", &csrf), ("session", &key)],
            &[],
        )
        .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    assert_eq!(
        phone.get(s, "/t/acme/account").await.0,
        StatusCode::SEE_OTHER,
        "the phone is signed out"
    );
    assert_eq!(
        laptop.get(s, "/t/acme/account").await.0,
        StatusCode::OK,
        "the laptop is not"
    );
    // Another user's session key can't be revoked through one's own account.
    let t = s.state.db.tenant_by_slug("acme").unwrap().unwrap();
    let hash = s.state.hasher.hash(PASSWORD.into()).await.unwrap();
    s.state
        .db
        .create_user(
            &t.id,
            "test",
            &NewUser {
                username: "bob".into(),
                password_hash: Some(hash),
                ..NewUser::default()
            },
        )
        .unwrap();
    let mut bob = Browser::default();
    bob.sign_in(s, "acme", "bob", PASSWORD).await;
    let bob_key =
        latchkey_session::SessionId::from_cookie(&session_cookie(&bob, "acme").unwrap()).storage_key();
    laptop
        .post(
            s,
            "/t/acme/account/sessions/revoke",
            &[("csrf", &csrf), ("session", &bob_key)],
            &[],
        )
        .await;
    assert_eq!(
        bob.get(s, "/t/acme/account").await.0,
        StatusCode::OK,
        "bob's session survives alice's attempt"
    );
    // Sign out everywhere.
    phone.sign_in(s, "acme", "alice", PASSWORD).await;
    let (st, h, _) = laptop
        .post(s, "/t/acme/account/sessions/revoke-all", &[("csrf", &csrf)], &[])
        .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    assert_eq!(h["location"], "/t/acme/login?signed_out=1");
    assert_eq!(laptop.get(s, "/t/acme/account").await.0, StatusCode::SEE_OTHER);
    assert_eq!(phone.get(s, "/t/acme/account").await.0, StatusCode::SEE_OTHER);
    assert_eq!(bob.get(s, "/t/acme/account").await.0, StatusCode::OK);
}

async fn changing_the_password_needs_the_current_one_and_ends_other_sessions(s: &TestServer) {
    setup(s, "acme").await;
    let mut b = Browser::default();
    let mut other = Browser::default();
    b.sign_in(s, "acme", "alice", PASSWORD).await;
    other.sign_in(s, "acme", "alice", PASSWORD).await;
    let (_, _, page) = b.get(s, "/t/acme/account").await;
    let csrf = hidden(&page, "csrf");
    let change = |current: &'static str, new: &'static str| {
        vec![
            ("csrf", csrf.clone()),
            ("current_password", current.to_owned()),
            ("new_password", new.to_owned()),
        ]
    };
    let post = |b: &mut Browser, v: Vec<(&'static str, String)>| {
        let mut b2 = b.clone();
        async move {
            let f: Vec<(&str, &str)> = v.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let r = b2.post(s, "/t/acme/account/password", &f, &[]).await;
            (r, b2)
        }
    };
    let ((st, _, page), _) = post(&mut b, change("not-my-password", "another-long-phrase-7")).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(page.contains("The current password is incorrect."));
    let ((st, _, page), _) = post(&mut b, change(PASSWORD, "short")).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("at least 12 characters"), "{page}");
    let ((st, _, page), _) = post(&mut b, change(PASSWORD, "password1234")).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("commonly used"), "{page}");
    let before = session_cookie(&b, "acme").unwrap();
    let ((st, h, _), after) = post(&mut b, change(PASSWORD, "another-long-phrase-7")).await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    assert_eq!(h["location"], "/t/acme/account?changed=1");
    let mut b = after;
    assert_ne!(
        session_cookie(&b, "acme").unwrap(),
        before,
        "a new session id after the change"
    );
    assert_eq!(b.get(s, "/t/acme/account").await.0, StatusCode::OK);
    assert_eq!(
        other.get(s, "/t/acme/account").await.0,
        StatusCode::SEE_OTHER,
        "other sessions end"
    );
    assert_eq!(
        Browser::default().sign_in(s, "acme", "alice", PASSWORD).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        Browser::default()
            .sign_in(s, "acme", "alice", "another-long-phrase-7")
            .await
            .0,
        StatusCode::SEE_OTHER
    );
}

latchkey_tests::e2e!(
    the_account_page_lists_and_ends_sessions,
    changing_the_password_needs_the_current_one_and_ends_other_sessions,
    sign_in_sets_a_hardened_session_cookie_and_shows_the_account,
    unknown_user_and_wrong_password_look_the_same,
    csrf_is_required_and_bound,
    session_id_rotates_at_sign_in_and_dies_at_sign_out,
    a_session_of_tenant_a_means_nothing_in_tenant_b,
    failures_back_off_and_never_lock_forever,
    return_to_stays_inside_the_tenant,
    failures_count_per_account_whatever_name_is_typed,
    the_profile_is_edited_with_validation_and_audit,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_absolute_timeouts_are_enforced_by_the_server() {
    let db = TestDb::sqlite();
    let clock = Arc::new(FixedClock::new(1_800_000_000_000));
    let s = TestServer::start_with_clock(&[("LATCHKEY_DATABASE_URL", &db.url)], clock.clone()).unwrap();
    setup(&s, "acme").await;
    let mut b = Browser::default();
    b.sign_in(&s, "acme", "alice", PASSWORD).await;
    // Activity within the idle timeout (30 min) keeps the session alive…
    for _ in 0..3 {
        clock.advance_millis(29 * 60_000);
        assert_eq!(b.get(&s, "/t/acme/account").await.0, StatusCode::OK);
    }
    // …but 30 idle minutes end it.
    clock.advance_millis(30 * 60_000);
    assert_eq!(b.get(&s, "/t/acme/account").await.0, StatusCode::SEE_OTHER);
    // The absolute timeout (12 h) ends even a busy session.
    b.sign_in(&s, "acme", "alice", PASSWORD).await;
    for _ in 0..24 {
        clock.advance_millis(29 * 60_000);
        assert_eq!(b.get(&s, "/t/acme/account").await.0, StatusCode::OK);
    }
    clock.advance_millis(29 * 60_000);
    assert_eq!(
        b.get(&s, "/t/acme/account").await.0,
        StatusCode::SEE_OTHER,
        "past 12 h"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_session_survives_a_restart() {
    let Some(db) = TestDb::postgres() else { return };
    if latchkey_tests::redis_store().await.is_none() {
        return;
    }
    let master = latchkey_keys::MasterKey::generate().unwrap().to_base64();
    let redis = latchkey_tests::redis_url();
    let settings = [
        ("LATCHKEY_DATABASE_URL", db.url.as_str()),
        ("LATCHKEY_SESSION_STORE", redis.as_str()),
        ("LATCHKEY_MASTER_KEY", master.as_str()),
    ];
    let s = TestServer::start_with(&settings).unwrap();
    setup(&s, "acme").await;
    let mut b = Browser::default();
    b.sign_in(&s, "acme", "alice", PASSWORD).await;
    drop(s);
    let again = TestServer::start_with(&settings).unwrap();
    assert_eq!(b.get(&again, "/t/acme/account").await.0, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
// One password's life over 90+ days, step by step: each change depends on the last.
#[allow(clippy::too_many_lines)]
async fn expired_passwords_must_be_changed_and_recent_ones_not_reused() {
    let db = TestDb::sqlite();
    let clock = Arc::new(FixedClock::new(1_800_000_000_000));
    let s = TestServer::start_with_clock(&[("LATCHKEY_DATABASE_URL", &db.url)], clock.clone()).unwrap();
    setup(&s, "acme").await;
    let t = s.state.db.tenant_by_slug("acme").unwrap().unwrap();
    let mut policy = t.policy.clone();
    policy.password.expiry_days = Some(90);
    policy.password.history = 3;
    s.state
        .db
        .update_tenant(
            &t.id,
            "test",
            &latchkey_store::TenantUpdate {
                display_name: None,
                policy: Some(policy),
            },
        )
        .unwrap();

    // Within 90 days nothing is asked.
    clock.advance_millis(89 * 86_400_000);
    let (_, h, _) = Browser::default().sign_in(&s, "acme", "alice", PASSWORD).await;
    assert_eq!(h["location"], "/t/acme/account");
    // After 90 days the sign-in lands on the account page with the demand to change it.
    clock.advance_millis(2 * 86_400_000);
    let mut b = Browser::default();
    let csrf = b.form_token(&s, "acme").await;
    let (_, h, _) = b
        .post(
            &s,
            "/t/acme/login",
            &[
                ("csrf", &csrf),
                ("username", "alice"),
                ("password", PASSWORD),
                ("return_to", "/t/acme/somewhere"),
            ],
            &[],
        )
        .await;
    assert_eq!(
        h["location"], "/t/acme/account?return_to=%2Ft%2Facme%2Fsomewhere",
        "return_to waits until the password is changed"
    );
    let (_, _, page) = b.get(&s, h["location"].to_str().unwrap()).await;
    assert!(page.contains("Your password has expired"));
    assert_eq!(hidden(&page, "return_to"), "/t/acme/somewhere");
    let id = latchkey_session::SessionId::from_cookie(&session_cookie(&b, "acme").unwrap());
    assert!(
        s.state
            .ephemeral
            .get_session(&t.id, &id)
            .await
            .unwrap()
            .unwrap()
            .must_change_password
    );

    // Rotate through passwords; the current one and the last three are refused.
    let mut current = PASSWORD.to_owned();
    let mut used = vec![PASSWORD.to_owned()];
    for i in 0..3 {
        let next = format!("fresh-passphrase-number-{i}");
        let token = hidden(&b.get(&s, "/t/acme/account").await.2, "csrf");
        // The first change carries on where the sign-in was going.
        let return_to = if i == 0 { "/t/acme/somewhere" } else { "" };
        let (st, h, _) = b
            .post(
                &s,
                "/t/acme/account/password",
                &[
                    ("csrf", &token),
                    ("current_password", &current),
                    ("new_password", &next),
                    ("return_to", return_to),
                ],
                &[],
            )
            .await;
        assert_eq!(st, StatusCode::SEE_OTHER, "change {i}");
        let expected = if i == 0 {
            "/t/acme/somewhere"
        } else {
            "/t/acme/account?changed=1"
        };
        assert_eq!(h["location"], expected);
        used.push(next.clone());
        current = next;
    }
    for old in used.iter().rev().take(4) {
        let token = hidden(&b.get(&s, "/t/acme/account").await.2, "csrf");
        let (st, _, page) = b
            .post(
                &s,
                "/t/acme/account/password",
                &[
                    ("csrf", &token),
                    ("current_password", &current),
                    ("new_password", old),
                ],
                &[],
            )
            .await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{old} must be refused");
        assert!(page.contains("not used recently"));
    }
    // After a change the demand is gone.
    let (_, _, page) = b.get(&s, "/t/acme/account").await;
    assert!(!page.contains("Your password has expired"));
}
