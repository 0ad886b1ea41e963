//! Invitations (issue 20, item 6): created through the admin API, mailed through the outbox to
//! a real SMTP receiver, accepted in the browser with a password; links that are spent,
//! expired, revoked or replaced are refused with nothing created; concurrent acceptances make
//! one user. On SQLite + memory and PostgreSQL + Redis.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use latchkey_core::{FixedClock, TenantId};
use latchkey_store::{AuditRepo, GroupRepo, InvitationRepo, NewUser, TenantRepo, UserRepo};
use latchkey_tests::browser::{Browser, hidden, session_cookie, setup};
use latchkey_tests::{Backend, SmtpSink, TestServer};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;

const NEW_PASSWORD: &str = "harbor-violet-summit-58";

fn tenant(s: &TestServer) -> TenantId {
    s.state.db.tenant_by_slug("acme").unwrap().unwrap().id
}

fn admin_token(s: &TestServer, role: &str) -> String {
    latchkey_tests::admin::with_role(s, &tenant(s), role)
}

async fn call(
    s: &TestServer,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let url = s.url(&format!("/admin/t/acme{path}"));
    let c = TestServer::client();
    let mut req = match method {
        "POST" => c.post(url),
        _ => c.get(url),
    }
    .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    let st = res.status();
    (st, res.json().await.unwrap_or(Value::Null))
}

/// Fixture: tenant acme (alice), groups staff and finance, and an admin token.
async fn world(s: &TestServer) -> String {
    setup(s, "acme").await;
    let t = tenant(s);
    for g in ["staff", "finance"] {
        s.state.db.create_group(&t, "test", g, None).unwrap();
    }
    admin_token(s, "tenant-admin")
}

/// The token of the newest mail to `to`, as its link's path.
async fn link_to(s: &TestServer, sink: &SmtpSink, n: usize, to: &str) -> String {
    let mails = sink.wait_for(n, 10).await;
    let mail = mails.iter().rev().find(|m| m.rcpt_to == [to]).unwrap();
    let link = mail.link().unwrap();
    let prefix = format!("{}/t/acme/invitation?token=", s.base_url);
    assert!(link.starts_with(&prefix), "{link}");
    link[s.base_url.len()..].to_owned()
}

/// Follows the mailed link in `b` and returns the page it lands on.
async fn open(b: &mut Browser, s: &TestServer, path: &str) -> (StatusCode, String) {
    let (st, h, _) = b.get(s, path).await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    assert_eq!(
        h["location"], "/t/acme/invitation",
        "the token leaves the address bar"
    );
    let (st, _, page) = b.get(s, "/t/acme/invitation").await;
    (st, page)
}

async fn accept(b: &mut Browser, s: &TestServer, csrf: &str, password: &str) -> (StatusCode, String, String) {
    let (st, h, page) = b
        .post(
            s,
            "/t/acme/invitation",
            &[("csrf", csrf), ("new_password", password)],
            &[],
        )
        .await;
    let location = h
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (st, location, page)
}

fn users(s: &TestServer) -> Vec<String> {
    let mut names: Vec<String> = s
        .state
        .db
        .list_users(&tenant(s))
        .unwrap()
        .into_iter()
        .map(|u| u.username)
        .collect();
    names.sort();
    names
}

fn actions(s: &TestServer) -> Vec<String> {
    s.state
        .db
        .audit_events(&tenant(s), 0, 1000)
        .unwrap()
        .into_iter()
        .map(|e| format!("{}:{}", e.action, e.details["reason"].as_str().unwrap_or("")))
        .collect()
}

// The whole path from the admin's call to the signed-in user, step by step.
#[allow(clippy::too_many_lines)]
async fn an_invitation_is_mailed_and_accepted_with_a_password(backend: Backend) {
    let sink = SmtpSink::start().await;
    let Some((s, db)) = TestServer::start_on(backend, &[("LATCHKEY_SMTP_URL", &sink.url)]) else {
        return;
    };
    let admin = world(&s).await;
    let reader = admin_token(&s, "read-only");
    let body = json!({"email": "Dora@Acme.test", "display_name": "Dora", "groups": ["staff", "finance"]});

    // A reader may look but not invite; bad bodies and unknown groups are 400, never 500.
    let (st, _) = call(&s, &reader, "POST", "/invitations", Some(body.clone())).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    for bad in [
        json!({"email": "x@acme.test", "groups": ["nope"]}),
        json!({"email": "not-an-address"}),
        json!({"email": "x@acme.test", "admin": true}),
        json!({"email": "x@acme.test", "expires_in_secs": 0}),
        json!([1, 2]),
    ] {
        let (st, v) = call(&s, &admin, "POST", "/invitations", Some(bad.clone())).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{bad} → {v}");
    }
    // An address that already has an account is refused at creation.
    let (st, v) = call(
        &s,
        &admin,
        "POST",
        "/invitations",
        Some(json!({"email": "alice@acme.test"})),
    )
    .await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");

    let (st, inv) = call(&s, &admin, "POST", "/invitations", Some(body.clone())).await;
    assert_eq!(st, StatusCode::CREATED, "{inv}");
    assert_eq!(inv["email"], "dora@acme.test");
    assert_eq!(inv["username"], "dora@acme.test");
    assert_eq!(inv["status"], "pending");
    assert!(inv.get("token").is_none() && inv.get("token_hash").is_none());
    // One pending invitation per address.
    let (st, _) = call(&s, &admin, "POST", "/invitations", Some(body)).await;
    assert_eq!(st, StatusCode::CONFLICT);
    let (st, list) = call(&s, &reader, "GET", "/invitations?status=pending", None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (st, _) = call(&s, &reader, "GET", "/invitations?status=bogus", None).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);

    // The mail carries the link; the store keeps only a hash of its token.
    let path = link_to(&s, &sink, 1, "dora@acme.test").await;
    let token = path.rsplit('=').next().unwrap().to_owned();
    assert_eq!(token.len(), 43, "256-bit token");
    assert!(!String::from_utf8_lossy(&db.dump()).contains(&token));

    // Looking at the page (a link preview, twice) spends nothing.
    let mut preview = Browser::default();
    for _ in 0..2 {
        let (st, page) = open(&mut preview, &s, &path).await;
        assert_eq!(st, StatusCode::OK);
        assert!(page.contains("Your username is dora@acme.test"), "{page}");
        assert!(page.contains("<label for=\"new_password\">"));
    }
    assert_eq!(users(&s), ["alice"]);

    let mut b = Browser::default();
    let (_, page) = open(&mut b, &s, &path).await;
    let csrf = hidden(&page, "csrf");
    // A forged form token and a weak password are refused; nothing is created.
    let (st, _, _) = accept(&mut b, &s, "forged", NEW_PASSWORD).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, _, page) = accept(&mut b, &s, &csrf, "short").await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("at least 12 characters"), "{page}");
    assert_eq!(users(&s), ["alice"]);

    // Accepted: the user exists, active, in both groups, and is signed in.
    let (st, location, _) = accept(&mut b, &s, &csrf, NEW_PASSWORD).await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    assert_eq!(location, "/t/acme/account");
    assert!(session_cookie(&b, "acme").is_some());
    let (st, _, page) = b.get(&s, "/t/acme/account").await;
    assert_eq!(st, StatusCode::OK);
    assert!(page.contains("Dora"), "{page}");
    let t = tenant(&s);
    let dora = s.state.db.user_by_email(&t, "dora@acme.test").unwrap().unwrap();
    assert_eq!(dora.status, latchkey_core::UserStatus::Active);
    assert!(dora.email_verified, "the link reached the address");
    let access = s.state.db.effective_access(&t, &dora.id).unwrap();
    let mut groups: Vec<&str> = access.groups.iter().map(|g| g.name.as_str()).collect();
    groups.sort_unstable();
    assert_eq!(groups, ["finance", "staff"]);
    // The password works for a normal sign-in too.
    let mut again = Browser::default();
    let (st, _, _) = again.sign_in(&s, "acme", "dora@acme.test", NEW_PASSWORD).await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    assert!(session_cookie(&again, "acme").is_some());

    // The link is spent: the page and a replayed form are refused, nothing more is created.
    let mut late = Browser::default();
    let (st, page) = open(&mut late, &s, &path).await;
    assert_eq!(st, StatusCode::GONE);
    assert!(page.contains("used already"), "{page}");
    let (st, _, _) = accept(&mut b, &s, &csrf, NEW_PASSWORD).await;
    assert_eq!(
        st,
        StatusCode::BAD_REQUEST,
        "the cookie is gone with the acceptance"
    );
    let (st, list) = call(&s, &reader, "GET", "/invitations?status=accepted", None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(list[0]["user_id"], dora.id.as_str());
    assert_eq!(users(&s), ["alice", "dora@acme.test"]);
    let actions = actions(&s);
    for expected in [
        "invitation.create:",
        "invitation.accept:",
        "user.create:",
        "invitation.list:",
        "admin.denied:",
    ] {
        assert!(
            actions.contains(&expected.to_owned()),
            "{expected} in {actions:?}"
        );
    }
}

/// Expired, revoked and replaced links are refused with a page that says why; nothing is made.
#[allow(clippy::too_many_lines)]
async fn dead_links_are_refused(backend: Backend) {
    let sink = SmtpSink::start().await;
    let clock = Arc::new(FixedClock::new(1_900_000_000_000));
    let Some((s, _db)) =
        TestServer::start_on_clocked(backend, &[("LATCHKEY_SMTP_URL", &sink.url)], clock.clone())
    else {
        return;
    };
    let admin = world(&s).await;
    let create = |email: &str, secs: u64| json!({"email": email, "expires_in_secs": secs});
    let (_, resent) = call(
        &s,
        &admin,
        "POST",
        "/invitations",
        Some(create("a@acme.test", 3600)),
    )
    .await;
    let (_, revoked) = call(
        &s,
        &admin,
        "POST",
        "/invitations",
        Some(create("r@acme.test", 3600)),
    )
    .await;
    let (_, expiring) = call(
        &s,
        &admin,
        "POST",
        "/invitations",
        Some(create("e@acme.test", 3600)),
    )
    .await;
    let a_old = link_to(&s, &sink, 3, "a@acme.test").await;
    let r_link = link_to(&s, &sink, 3, "r@acme.test").await;
    let e_link = link_to(&s, &sink, 3, "e@acme.test").await;

    // Re-sent: a new link works, the old one is unknown.
    let a_id = resent["id"].as_str().unwrap();
    let (st, v) = call(&s, &admin, "POST", &format!("/invitations/{a_id}/resend"), None).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let a_new = link_to(&s, &sink, 4, "a@acme.test").await;
    assert_ne!(a_old, a_new);
    let mut b = Browser::default();
    let (st, page) = open(&mut b, &s, &a_old).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(page.contains("newest mail"), "{page}");
    let (st, _) = open(&mut b, &s, &a_new).await;
    assert_eq!(st, StatusCode::OK);

    // Revoked: refused on the page and on a form sent from a page opened before.
    let mut early = Browser::default();
    let (_, page) = open(&mut early, &s, &r_link).await;
    let csrf = hidden(&page, "csrf");
    let r_id = revoked["id"].as_str().unwrap();
    let (st, _) = call(&s, &admin, "POST", &format!("/invitations/{r_id}/revoke"), None).await;
    assert_eq!(st, StatusCode::OK);
    let (st, _) = call(&s, &admin, "POST", &format!("/invitations/{r_id}/revoke"), None).await;
    assert_eq!(st, StatusCode::CONFLICT, "revoked already");
    let (st, _) = call(&s, &admin, "POST", &format!("/invitations/{r_id}/resend"), None).await;
    assert_eq!(st, StatusCode::CONFLICT, "a revoked invitation is not re-sent");
    let (st, _, page) = accept(&mut early, &s, &csrf, NEW_PASSWORD).await;
    assert_eq!(st, StatusCode::GONE);
    assert!(page.contains("withdrawn"), "{page}");
    let (st, page) = open(&mut Browser::default(), &s, &r_link).await;
    assert_eq!(st, StatusCode::GONE);
    assert!(page.contains("withdrawn"));
    let (st, _) = call(&s, &admin, "POST", "/invitations/nope/revoke", None).await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    // Expired after its hour: refused, listed as expired, and a re-send revives it.
    let mut late = Browser::default();
    let (_, page) = open(&mut late, &s, &e_link).await;
    let csrf = hidden(&page, "csrf");
    clock.advance_millis(3_600_000);
    let (st, _, page) = accept(&mut late, &s, &csrf, NEW_PASSWORD).await;
    assert_eq!(st, StatusCode::GONE);
    assert!(page.contains("expired"), "{page}");
    let (_, list) = call(&s, &admin, "GET", "/invitations?status=expired", None).await;
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&expiring["id"].as_str().unwrap()), "{list}");
    let e_id = expiring["id"].as_str().unwrap();
    let (st, _) = call(
        &s,
        &admin,
        "POST",
        &format!("/invitations/{e_id}/resend"),
        Some(json!({"expires_in_secs": 600})),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let e_new = link_to(&s, &sink, 5, "e@acme.test").await;
    let (st, _) = open(&mut Browser::default(), &s, &e_new).await;
    assert_eq!(st, StatusCode::OK);

    // No token of acme means anything in another tenant.
    setup(&s, "other").await;
    let token = e_new.rsplit('=').next().unwrap();
    let mut stranger = Browser::default();
    stranger
        .get(&s, &format!("/t/other/invitation?token={token}"))
        .await;
    let (st, _, _) = stranger.get(&s, "/t/other/invitation").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    // A garbage cookie is just an unknown invitation.
    let mut junk = Browser::default();
    junk.cookies.insert("lk-invite-acme".into(), "x".repeat(43));
    assert_eq!(
        junk.get(&s, "/t/acme/invitation").await.0,
        StatusCode::BAD_REQUEST
    );

    assert_eq!(users(&s), ["alice"], "no refused link made a user");
    let actions = actions(&s);
    for expected in [
        "invitation.resend:",
        "invitation.revoke:",
        "invitation.accept:revoked",
        "invitation.accept:expired",
    ] {
        assert!(
            actions.contains(&expected.to_owned()),
            "{expected} in {actions:?}"
        );
    }
}

/// Eight browsers send the same accepted form at once: one user, the others refused.
async fn concurrent_acceptances_make_one_user(backend: Backend) {
    let sink = SmtpSink::start().await;
    let Some((s, _db)) = TestServer::start_on(backend, &[("LATCHKEY_SMTP_URL", &sink.url)]) else {
        return;
    };
    let admin = world(&s).await;
    let (st, _) = call(
        &s,
        &admin,
        "POST",
        "/invitations",
        Some(json!({"email": "c@acme.test", "username": "carol", "groups": ["staff"]})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED);
    let path = link_to(&s, &sink, 1, "c@acme.test").await;
    let mut b = Browser::default();
    let (_, page) = open(&mut b, &s, &path).await;
    let csrf = hidden(&page, "csrf");
    let s = Arc::new(s);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (s, mut b, csrf) = (Arc::clone(&s), b.clone(), csrf.clone());
            tokio::spawn(async move { accept(&mut b, &s, &csrf, NEW_PASSWORD).await.0 })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    let won = statuses.iter().filter(|st| **st == StatusCode::SEE_OTHER).count();
    assert_eq!(won, 1, "{statuses:?}");
    assert!(
        statuses
            .iter()
            .all(|st| [StatusCode::SEE_OTHER, StatusCode::GONE].contains(st)),
        "{statuses:?}"
    );
    assert_eq!(users(&s), ["alice", "carol"]);
}

/// An account with the invited address made after the invitation: acceptance is refused.
async fn an_account_made_meanwhile_wins(backend: Backend) {
    let sink = SmtpSink::start().await;
    let Some((s, _db)) = TestServer::start_on(backend, &[("LATCHKEY_SMTP_URL", &sink.url)]) else {
        return;
    };
    let admin = world(&s).await;
    call(
        &s,
        &admin,
        "POST",
        "/invitations",
        Some(json!({"email": "m@acme.test"})),
    )
    .await;
    let path = link_to(&s, &sink, 1, "m@acme.test").await;
    let mut b = Browser::default();
    let (_, page) = open(&mut b, &s, &path).await;
    let csrf = hidden(&page, "csrf");
    s.state
        .db
        .create_user(
            &tenant(&s),
            "test",
            &NewUser {
                username: "mallory".into(),
                email: Some("m@acme.test".into()),
                ..NewUser::default()
            },
        )
        .unwrap();
    let (st, _, page) = accept(&mut b, &s, &csrf, NEW_PASSWORD).await;
    assert_eq!(st, StatusCode::CONFLICT);
    assert!(page.contains("exists already"), "{page}");
    assert!(session_cookie(&b, "acme").is_none());
    assert_eq!(users(&s), ["alice", "mallory"]);
    assert!(actions(&s).contains(&"invitation.accept:account_exists".to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invitation_is_mailed_and_accepted_with_a_password_sqlite_memory() {
    an_invitation_is_mailed_and_accepted_with_a_password(Backend::SqliteMemory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invitation_is_mailed_and_accepted_with_a_password_postgres_redis() {
    an_invitation_is_mailed_and_accepted_with_a_password(Backend::PostgresRedis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_links_are_refused_sqlite_memory() {
    dead_links_are_refused(Backend::SqliteMemory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_links_are_refused_postgres_redis() {
    dead_links_are_refused(Backend::PostgresRedis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_acceptances_make_one_user_sqlite_memory() {
    concurrent_acceptances_make_one_user(Backend::SqliteMemory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_acceptances_make_one_user_postgres_redis() {
    concurrent_acceptances_make_one_user(Backend::PostgresRedis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_made_meanwhile_wins_sqlite_memory() {
    an_account_made_meanwhile_wins(Backend::SqliteMemory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_made_meanwhile_wins_postgres_redis() {
    an_account_made_meanwhile_wins(Backend::PostgresRedis).await;
}

/// `Idempotency-Key` (issue 21): a retried create answers the first result and neither makes
/// a second invitation nor mails again; the key with another body is 422; a failed create
/// leaves the key free for a corrected retry; keys belong to one admin credential.
async fn a_replayed_idempotency_key_creates_nothing(backend: Backend) {
    let sink = SmtpSink::start().await;
    let Some((s, _db)) = TestServer::start_on(backend, &[("LATCHKEY_SMTP_URL", &sink.url)]) else {
        return;
    };
    let admin = world(&s).await;
    let post = |token: String, key: &'static str, body: Value| {
        let s = &s;
        async move {
            let res = TestServer::client()
                .post(s.url("/admin/t/acme/invitations"))
                .bearer_auth(token)
                .header("idempotency-key", key)
                .json(&body)
                .send()
                .await
                .unwrap();
            let (st, replayed) = (res.status(), res.headers().contains_key("idempotent-replayed"));
            (st, replayed, res.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let body = json!({"email": "ida@acme.test"});
    let (st, replayed, first) = post(admin.clone(), "k-1", body.clone()).await;
    assert_eq!((st, replayed), (StatusCode::CREATED, false), "{first}");
    let (st, replayed, again) = post(admin.clone(), "k-1", body.clone()).await;
    assert_eq!((st, replayed), (StatusCode::CREATED, true));
    assert_eq!(again, first, "the first answer, again");
    let t = tenant(&s);
    assert_eq!(s.state.db.list_invitations(&t, None).unwrap().len(), 1);
    // The same key for another request.
    let (st, _, err) = post(admin.clone(), "k-1", json!({"email": "other@acme.test"})).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    // A create that fails keeps nothing: the corrected request may use the key.
    let (st, _, _) = post(admin.clone(), "k-2", json!({"email": "not-an-address"})).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _, _) = post(admin.clone(), "k-2", json!({"email": "jo@acme.test"})).await;
    assert_eq!(st, StatusCode::CREATED);
    // Another credential's key of the same name is another key: a real create (409 here,
    // since ida's invitation is pending), not a replay.
    let other = admin_token(&s, "tenant-admin");
    let (st, replayed, _) = post(other, "k-1", body).await;
    assert_eq!((st, replayed), (StatusCode::CONFLICT, false));
    let (st, _, _) = post(admin.clone(), "k 3", json!({"email": "x@acme.test"})).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "a key with a space is refused");
    assert_eq!(s.state.db.list_invitations(&t, None).unwrap().len(), 2);
    // Listed in pages, newest first, with the status filter done in the database.
    let (st, page) = call(&s, &admin, "GET", "/invitations?limit=1", None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(page[0]["email"], "jo@acme.test", "newest first");
    let (_, revoked) = call(
        &s,
        &admin,
        "POST",
        &format!("/invitations/{}/revoke", first["id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(revoked["status"], "revoked");
    let (_, pending) = call(&s, &admin, "GET", "/invitations?status=pending", None).await;
    assert_eq!(pending.as_array().unwrap().len(), 1);
    assert_eq!(pending[0]["email"], "jo@acme.test");
    let (st, _) = call(&s, &admin, "GET", "/invitations?status=lost", None).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    sink.wait_for(2, 10).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        sink.wait_for(2, 1).await.len(),
        2,
        "one mail per invitation, none per replay"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_idempotency_key_creates_nothing_sqlite_memory() {
    a_replayed_idempotency_key_creates_nothing(Backend::SqliteMemory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_idempotency_key_creates_nothing_postgres_redis() {
    a_replayed_idempotency_key_creates_nothing(Backend::PostgresRedis).await;
}
