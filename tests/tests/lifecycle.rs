//! The end of an account (issue 20, item 7): a user deletes their own account from the account
//! page, confirmed by their password and CSRF-protected, at once or after the tenant's grace
//! period (closed meanwhile, deleted by the retention pass when due, restorable by an
//! operator); an operator deletes a user through the admin API. Deletion ends the sessions and
//! the refresh tokens. On SQLite + memory and PostgreSQL + Redis.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use latchkey_core::{AccessTokenFormat, ClientType, FixedClock, TenantId, User, UserStatus};
use latchkey_store::{AuditRepo, LifecycleRepo, TenantRepo, UserRepo};
use latchkey_tests::browser::{Browser, PASSWORD, hidden, session_cookie, setup};
use latchkey_tests::oidc::{code, redeem, refresh, register, update_policy};
use latchkey_tests::{Backend, SmtpSink, TestServer};
use reqwest::StatusCode;
use std::sync::Arc;

const DAY: i64 = 86_400_000;

fn tenant(s: &TestServer) -> TenantId {
    s.state.db.tenant_by_slug("acme").unwrap().unwrap().id
}

fn alice(s: &TestServer) -> Option<User> {
    s.state.db.user_by_username(&tenant(s), "alice").unwrap()
}

/// alice signed in (in the returned browser) with a refresh token of a first-party client.
async fn signed_in_with_tokens(s: &TestServer) -> (Browser, latchkey_core::Client, String) {
    let c = register(s, "acme", ClientType::Confidential, true, AccessTokenFormat::Jwt);
    let mut b = Browser::default();
    let code = code(s, &mut b, &c).await;
    let (st, tokens) = redeem(s, &c, &code).await;
    assert_eq!(st, StatusCode::OK, "{tokens}");
    let rt = tokens["refresh_token"].as_str().unwrap().to_owned();
    assert!(session_cookie(&b, "acme").is_some());
    (b, c, rt)
}

async fn delete_form(
    b: &mut Browser,
    s: &TestServer,
    csrf: &str,
    password: &str,
) -> (StatusCode, String, String) {
    let (st, h, page) = b
        .post(
            s,
            "/t/acme/account/delete",
            &[("csrf", csrf), ("current_password", password)],
            &[],
        )
        .await;
    let location = h
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (st, location, page)
}

fn actions(s: &TestServer) -> Vec<String> {
    s.state
        .db
        .audit_events(&tenant(s), 0, 1000)
        .unwrap()
        .into_iter()
        .map(|e| {
            format!(
                "{}:{}:{}",
                e.action,
                e.actor.split(':').next().unwrap_or_default(),
                e.details["reason"].as_str().unwrap_or("")
            )
        })
        .collect()
}

// The whole self-deletion, with each refusal first, in order.
#[allow(clippy::too_many_lines)]
async fn a_user_deletes_their_own_account_at_once(backend: Backend) {
    let sink = SmtpSink::start().await;
    let Some((s, _db)) = TestServer::start_on(backend, &[("LATCHKEY_SMTP_URL", &sink.url)]) else {
        return;
    };
    setup(&s, "acme").await;
    let (mut b, c, rt) = signed_in_with_tokens(&s).await;
    let copy = b.clone();
    let (st, _, page) = b.get(&s, "/t/acme/account").await;
    assert_eq!(st, StatusCode::OK);
    assert!(page.contains("<h2>Delete my account</h2>"), "{page}");
    assert!(page.contains("<label for=\"delete_password\">Your password, to confirm</label>"));
    assert!(page.contains("at once"));
    let csrf = hidden(&page, "csrf");

    // A forged or missing form token, and a wrong password, delete nothing.
    let (st, _, _) = delete_form(&mut b, &s, "forged", PASSWORD).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, _, _) = b
        .post(
            &s,
            "/t/acme/account/delete",
            &[("current_password", PASSWORD)],
            &[],
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, _, _) = b
        .post(
            &s,
            "/t/acme/account/delete",
            &[("csrf", &csrf), ("current_password", PASSWORD)],
            &[("origin", "https://evil.example")],
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "a cross-site POST");
    let (st, _, page) = delete_form(&mut b, &s, &csrf, "not-my-password").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(
        page.contains("The password is incorrect. Your account was not deleted."),
        "{page}"
    );
    assert!(alice(&s).is_some());
    assert_eq!(
        b.get(&s, "/t/acme/account").await.0,
        StatusCode::OK,
        "still signed in"
    );
    // Signed out, the form leads to the sign-in page and deletes nothing.
    let (st, location, _) = delete_form(&mut Browser::default(), &s, &csrf, PASSWORD).await;
    assert_eq!(
        (st, location.as_str()),
        (StatusCode::SEE_OTHER, "/t/acme/login?return_to=/t/acme/account")
    );

    let (st, location, _) = delete_form(&mut b, &s, &csrf, PASSWORD).await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    assert_eq!(location, "/t/acme/login?deleted=1");
    assert!(session_cookie(&b, "acme").is_none(), "the cookie is removed");
    assert!(alice(&s).is_none(), "the user is gone");
    let (_, _, page) = b.get(&s, &location).await;
    assert!(page.contains("Your account has been deleted."), "{page}");
    // Every session and refresh token of the account is dead.
    let mut old = copy;
    let (st, h, _) = old.get(&s, "/t/acme/account").await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    assert!(h["location"].to_str().unwrap().starts_with("/t/acme/login"));
    let (st, body) = refresh(&s, &c, &rt).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
    let (st, _, _) = Browser::default().sign_in(&s, "acme", "alice", PASSWORD).await;
    assert_ne!(st, StatusCode::SEE_OTHER, "no account to sign in to");

    let mails = sink.wait_for(1, 10).await;
    assert_eq!(mails[0].rcpt_to, ["alice@acme.test"]);
    assert!(mails[0].data.contains("Subject: Your account has been deleted"));
    let actions = actions(&s);
    assert!(
        actions.contains(&"user.delete:user:wrong_password".to_owned()),
        "{actions:?}"
    );
    assert!(actions.contains(&"user.delete:user:".to_owned()), "{actions:?}");
}

// The grace period from the request to the retention pass that deletes the account.
#[allow(clippy::too_many_lines)]
async fn a_grace_period_closes_the_account_until_it_is_due(backend: Backend) {
    let sink = SmtpSink::start().await;
    let clock = Arc::new(FixedClock::new(1_900_000_000_000));
    let Some((s, _db)) =
        TestServer::start_on_clocked(backend, &[("LATCHKEY_SMTP_URL", &sink.url)], clock.clone())
    else {
        return;
    };
    setup(&s, "acme").await;
    update_policy(&s, "acme", |p| p.accounts.deletion_grace_days = 7);
    let (mut b, c, rt) = signed_in_with_tokens(&s).await;
    let (_, _, page) = b.get(&s, "/t/acme/account").await;
    assert!(page.contains("deleted after 7 days"), "{page}");
    let csrf = hidden(&page, "csrf");
    let requested_at = latchkey_core::Clock::now_millis(&*clock);
    let (st, location, _) = delete_form(&mut b, &s, &csrf, PASSWORD).await;
    assert_eq!(
        (st, location.as_str()),
        (StatusCode::SEE_OTHER, "/t/acme/login?deletion_scheduled=1")
    );
    let (_, _, page) = b.get(&s, &location).await;
    assert!(
        page.contains("will be deleted when the waiting period ends"),
        "{page}"
    );

    // Closed at once: no session, no sign-in, no refresh, but still there.
    let user = alice(&s).unwrap();
    assert_eq!(user.status, UserStatus::Disabled);
    let due = s.state.db.deletion_due(&tenant(&s), &user.id).unwrap();
    assert_eq!(due, Some(requested_at + 7 * DAY));
    assert_eq!(b.get(&s, "/t/acme/account").await.0, StatusCode::SEE_OTHER);
    let mut again = Browser::default();
    let (st, _, _) = again.sign_in(&s, "acme", "alice", PASSWORD).await;
    assert_ne!(st, StatusCode::SEE_OTHER);
    assert!(session_cookie(&again, "acme").is_none());
    let (st, body) = refresh(&s, &c, &rt).await;
    assert_eq!(
        (st, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let mails = sink.wait_for(1, 10).await;
    assert!(mails[0].data.contains("Subject: Your account will be deleted"));

    // The retention pass leaves it until it is due, then deletes it.
    clock.advance_millis(7 * DAY - 1);
    latchkey_server::retention_pass(&s.state);
    assert!(alice(&s).is_some(), "not due yet");
    clock.advance_millis(1);
    latchkey_server::retention_pass(&s.state);
    assert!(alice(&s).is_none(), "deleted when due");
    let actions = actions(&s);
    assert!(
        actions.contains(&"user.deletion_requested:user:".to_owned()),
        "{actions:?}"
    );
    assert!(
        actions.contains(&"user.delete:system:deletion_due".to_owned()),
        "{actions:?}"
    );
}

/// An operator restores an account pending deletion, then deletes it through the admin API:
/// its session and refresh token die with it; a reader token may do neither.
async fn an_operator_restores_and_deletes(backend: Backend) {
    let Some((s, _db)) = TestServer::start(backend) else {
        return;
    };
    setup(&s, "acme").await;
    update_policy(&s, "acme", |p| p.accounts.deletion_grace_days = 30);
    let t = tenant(&s);
    let token = |role| latchkey_tests::admin::with_role(&s, &t, role);
    let (admin, reader) = (token("tenant-admin"), token("read-only"));
    let call = |method: reqwest::Method, path: String, bearer: String| {
        let url = s.url(&format!("/admin/t/acme{path}"));
        async move {
            TestServer::client()
                .request(method, url)
                .bearer_auth(bearer)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    let (mut b, _, _) = signed_in_with_tokens(&s).await;
    let (_, _, page) = b.get(&s, "/t/acme/account").await;
    delete_form(&mut b, &s, &hidden(&page, "csrf"), PASSWORD).await;
    let id = alice(&s).unwrap().id;
    let restore = format!("/users/{id}/restore");
    assert_eq!(
        call(reqwest::Method::POST, restore.clone(), reader.clone()).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        call(reqwest::Method::POST, restore.clone(), admin.clone()).await,
        StatusCode::OK
    );
    assert_eq!(alice(&s).unwrap().status, UserStatus::Active);
    assert_eq!(s.state.db.deletion_due(&t, &id).unwrap(), None);
    assert_eq!(
        call(reqwest::Method::POST, restore, admin.clone()).await,
        StatusCode::CONFLICT
    );

    // Restored, alice signs in again; the operator's deletion ends that session and its tokens.
    let (mut b, c, rt) = signed_in_with_tokens(&s).await;
    let path = format!("/users/{id}");
    assert_eq!(
        call(reqwest::Method::DELETE, path.clone(), reader).await,
        StatusCode::FORBIDDEN
    );
    assert!(alice(&s).is_some());
    assert_eq!(
        call(reqwest::Method::DELETE, path.clone(), admin.clone()).await,
        StatusCode::OK
    );
    assert!(alice(&s).is_none());
    assert_eq!(b.get(&s, "/t/acme/account").await.0, StatusCode::SEE_OTHER);
    let (st, body) = refresh(&s, &c, &rt).await;
    assert_eq!(
        (st, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    assert_eq!(
        call(reqwest::Method::DELETE, path, admin).await,
        StatusCode::NOT_FOUND
    );
    let actions = actions(&s);
    for a in [
        "user.deletion_cancelled:admin_token:",
        "user.delete:admin_token:",
        "admin.denied:admin_token:",
    ] {
        assert!(actions.contains(&a.to_owned()), "{a} in {actions:?}");
    }
}

/// An operator erases a user over the admin API (issue 25 item 2): a reason is required, a
/// reader may not, and the erasure ends the session and the refresh token like a deletion.
async fn an_operator_erases_over_the_api(backend: Backend) {
    let Some((s, _db)) = TestServer::start(backend) else {
        return;
    };
    setup(&s, "acme").await;
    let t = tenant(&s);
    let token = |role| latchkey_tests::admin::with_role(&s, &t, role);
    let (admin, reader) = (token("tenant-admin"), token("read-only"));
    let (mut b, c, rt) = signed_in_with_tokens(&s).await;
    let id = alice(&s).unwrap().id;
    let url = s.url(&format!("/admin/t/acme/users/{id}/erase"));
    let erase = |bearer: &str, body: Option<&str>| {
        let mut req = TestServer::client()
            .post(url.clone())
            .bearer_auth(bearer.to_owned());
        if let Some(body) = body {
            req = req
                .header("content-type", "application/json")
                .body(body.to_owned());
        }
        async move {
            let res = req.send().await.unwrap();
            let status = res.status();
            (status, res.json::<serde_json::Value>().await.unwrap_or_default())
        }
    };
    let reason = r#"{"reason": "GDPR request 4711"}"#;
    assert_eq!(erase(&reader, Some(reason)).await.0, StatusCode::FORBIDDEN);
    assert_eq!(erase(&admin, None).await.0, StatusCode::BAD_REQUEST, "no body");
    assert_eq!(
        erase(&admin, Some(r#"{"reason": "  "}"#)).await.0,
        StatusCode::BAD_REQUEST,
        "a blank reason"
    );
    assert!(alice(&s).is_some(), "nothing was erased yet");
    let (st, done) = erase(&admin, Some(reason)).await;
    assert_eq!(st, StatusCode::OK, "{done}");
    assert_eq!(done["status"], "erased");
    assert_eq!(done["key_destroyed"], true);
    assert!(alice(&s).is_none());
    assert_eq!(b.get(&s, "/t/acme/account").await.0, StatusCode::SEE_OTHER);
    let (st, body) = refresh(&s, &c, &rt).await;
    assert_eq!(
        (st, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    assert_eq!(erase(&admin, Some(reason)).await.0, StatusCode::NOT_FOUND);
    assert!(
        actions(&s).contains(&"user.erase:admin_token:GDPR request 4711".to_owned()),
        "{:?}",
        actions(&s)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_erases_over_the_api_sqlite_memory() {
    an_operator_erases_over_the_api(Backend::SqliteMemory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_erases_over_the_api_postgres_redis() {
    an_operator_erases_over_the_api(Backend::PostgresRedis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_deletes_their_own_account_at_once_sqlite_memory() {
    a_user_deletes_their_own_account_at_once(Backend::SqliteMemory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_deletes_their_own_account_at_once_postgres_redis() {
    a_user_deletes_their_own_account_at_once(Backend::PostgresRedis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grace_period_closes_the_account_until_it_is_due_sqlite_memory() {
    a_grace_period_closes_the_account_until_it_is_due(Backend::SqliteMemory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grace_period_closes_the_account_until_it_is_due_postgres_redis() {
    a_grace_period_closes_the_account_until_it_is_due(Backend::PostgresRedis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_restores_and_deletes_sqlite_memory() {
    an_operator_restores_and_deletes(Backend::SqliteMemory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_restores_and_deletes_postgres_redis() {
    an_operator_restores_and_deletes(Backend::PostgresRedis).await;
}
