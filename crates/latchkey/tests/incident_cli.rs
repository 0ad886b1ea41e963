//! Incident response from the CLI against a running server (issue 25, item 7): `latchkey
//! incident --tenant T` voids every session and refresh token of T, invalidates passwords,
//! replaces the signing keys and mails every affected user; the running server refuses all of
//! it at once, the mails go out through SMTP, the report lists who was told when, and another
//! tenant is untouched. The admin API runs the same for named users. SQLite + memory and
//! PostgreSQL + Redis.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use latchkey_core::{AccessTokenFormat, ClientType, Permission, TenantId};
use latchkey_store::{AuditRepo, NewUser, TenantRepo, UserRepo};
use latchkey_tests::browser::{Browser, PASSWORD, setup};
use latchkey_tests::oidc::{code, redeem, refresh, register};
use latchkey_tests::{Backend, SmtpSink, TestServer, admin};
use reqwest::StatusCode;
use serde_json::Value;
use std::process::{Command, Output, Stdio};

fn cli(s: &Settings, args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_latchkey"));
    c.args(args).stdin(Stdio::null());
    for (k, _) in std::env::vars() {
        if k.starts_with("LATCHKEY_") {
            c.env_remove(k);
        }
    }
    c.env("LATCHKEY_DATABASE_URL", &s.db)
        .env("LATCHKEY_MASTER_KEY", &s.master)
        .env("LATCHKEY_SESSION_STORE", &s.sessions);
    let out = c.output().unwrap();
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
    out
}

struct Settings {
    db: String,
    master: String,
    sessions: String,
}

fn tenant(s: &TestServer, slug: &str) -> TenantId {
    s.state.db.tenant_by_slug(slug).unwrap().unwrap().id
}

fn add_user(s: &TestServer, slug: &str, name: &str, email: Option<&str>) {
    let new = NewUser {
        username: name.into(),
        email: email.map(str::to_owned),
        ..NewUser::default()
    };
    s.state.db.create_user(&tenant(s, slug), "test", &new).unwrap();
}

#[allow(clippy::too_many_lines)] // one incident, before and after
async fn an_incident_voids_a_tenant_and_tells_its_users(backend: Backend) {
    let sink = SmtpSink::start().await;
    let master = latchkey_keys::MasterKey::generate().unwrap().to_base64();
    let extra = [
        ("LATCHKEY_SMTP_URL", sink.url.as_str()),
        ("LATCHKEY_MASTER_KEY", master.as_str()),
        ("LATCHKEY_MAIL_POLL_SECS", "1"),
    ];
    let Some((s, db)) = TestServer::start_on(backend, &extra) else {
        return;
    };
    let settings = Settings {
        db: db.url.clone(),
        master,
        sessions: match backend {
            Backend::SqliteMemory => "memory".into(),
            Backend::PostgresRedis => latchkey_tests::redis_url(),
        },
    };
    setup(&s, "acme").await;
    setup(&s, "other").await;
    add_user(&s, "acme", "bob", Some("bob@acme.test"));
    add_user(&s, "acme", "carol", None);
    let c = register(&s, "acme", ClientType::Confidential, true, AccessTokenFormat::Jwt);
    let mut alice = Browser::default();
    let code = code(&s, &mut alice, &c).await;
    let (_, tokens) = redeem(&s, &c, &code).await;
    let rt = tokens["refresh_token"].as_str().unwrap().to_owned();
    let at = tokens["access_token"].as_str().unwrap().to_owned();
    let mut other = Browser::default();
    assert_eq!(
        other.sign_in(&s, "other", "alice", PASSWORD).await.0,
        StatusCode::SEE_OTHER
    );
    let jwks_before = s.state.keys.jwks_json(&tenant(&s, "acme")).unwrap().to_string();

    // Without a terminal to confirm on, nothing happens without --yes.
    let out = cli(&settings, &["incident", "--tenant", "acme", "--notify"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--yes"));
    assert!(
        s.state
            .db
            .audit_events(&tenant(&s, "acme"), 0, 1000)
            .unwrap()
            .iter()
            .all(|e| !e.action.starts_with("incident."))
    );

    let out = cli(
        &settings,
        &[
            "incident",
            "--tenant",
            "acme",
            "--reset-passwords",
            "--rotate-keys",
            "--notify",
            "--yes",
        ],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["scope"], "tenant");
    assert_eq!(report["locked_down"]["users"], 3, "{report}");
    assert_eq!(report["locked_down"]["grants_revoked"], 1, "{report}");
    assert_eq!(
        report["locked_down"]["passwords_invalidated"], 1,
        "only alice had one: {report}"
    );
    assert!(
        !report["keys"]["revoked"].as_array().unwrap().is_empty(),
        "{report}"
    );
    let told: Vec<&str> = report["notified"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["address"].as_str().unwrap())
        .collect();
    assert_eq!(told, ["alice@acme.test", "bob@acme.test"], "{report}");
    assert!(report["notified"][0]["queued_at"].as_i64().unwrap() >= report["started_at"].as_i64().unwrap());
    assert_eq!(report["not_notified"][0]["username"], "carol");

    // The running server refuses all of it at once: refresh token, session, old password,
    // and the access token (its grant is revoked and its key gone from the JWKS).
    let (st, body) = refresh(&s, &c, &rt).await;
    assert_eq!(
        (st, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let (st, h, _) = alice.get(&s, "/t/acme/account").await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    assert!(h["location"].to_str().unwrap().starts_with("/t/acme/login"));
    assert_eq!(
        latchkey_tests::oidc::userinfo(&s, "acme", &at).await,
        StatusCode::UNAUTHORIZED
    );
    s.state.keys.invalidate(&tenant(&s, "acme"));
    let jwks_after = s.state.keys.jwks_json(&tenant(&s, "acme")).unwrap().to_string();
    let old_kid = report["keys"]["revoked"][0].as_str().unwrap();
    assert!(jwks_before.contains(old_kid) && !jwks_after.contains(old_kid));
    let (st, _, _) = Browser::default().sign_in(&s, "acme", "alice", PASSWORD).await;
    assert_eq!(
        st,
        StatusCode::UNAUTHORIZED,
        "the old password no longer signs in"
    );

    // The mails go out through SMTP within seconds, with the reset sentence.
    let mails = sink.wait_for(2, 30).await;
    assert_eq!(mails.len(), 2);
    let text = mails
        .iter()
        .map(latchkey_tests::ReceivedMail::text)
        .collect::<String>();
    assert!(text.contains("Security notice from acme Corp"), "{text}");
    assert!(text.contains("Forgot your password?"), "{text}");
    assert!(text.contains(report["incident"].as_str().unwrap()), "{text}");

    // Another tenant is untouched.
    let (st, _, _) = other.get(&s, "/t/other/account").await;
    assert_eq!(st, StatusCode::OK);

    // The audit chain has the incident, and one notice event per person told.
    let actions: Vec<String> = s
        .state
        .db
        .audit_events(&tenant(&s, "acme"), 0, 1000)
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    for a in [
        "incident.start",
        "incident.lock_down",
        "keys.revoke",
        "incident.finish",
    ] {
        assert!(actions.iter().any(|x| x == a), "{a} in {actions:?}");
    }
    assert_eq!(actions.iter().filter(|a| *a == "incident.notify").count(), 2);
}

/// The admin API runs the same for named users: only they are signed out.
async fn the_admin_api_responds_for_named_users(backend: Backend) {
    let Some((s, _db)) = TestServer::start_on(backend, &[]) else {
        return;
    };
    setup(&s, "acme").await;
    add_user(&s, "acme", "bob", Some("bob@acme.test"));
    let c = register(&s, "acme", ClientType::Confidential, true, AccessTokenFormat::Jwt);
    let mut alice = Browser::default();
    let code = code(&s, &mut alice, &c).await;
    let (_, tokens) = redeem(&s, &c, &code).await;
    let rt = tokens["refresh_token"].as_str().unwrap().to_owned();
    let t = tenant(&s, "acme");

    let helpdesk = admin::with_role(&s, &t, "user-manager");
    let body = r#"{"users": ["bob"]}"#;
    let (st, _) = admin::call(&s, "POST", "/admin/t/acme/incidents", &helpdesk, Some(body)).await;
    assert_eq!(
        st,
        StatusCode::FORBIDDEN,
        "incidents:manage is the tenant admin's"
    );
    let responder = admin::token(&s, &t, &[Permission::IncidentsManage]);
    let (st, e) = admin::call(
        &s,
        "POST",
        "/admin/t/acme/incidents",
        &responder,
        Some(r#"{"users": ["nobody"]}"#),
    )
    .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    let (st, e) = admin::call(
        &s,
        "POST",
        "/admin/t/acme/incidents",
        &responder,
        Some(r#"{"user": ["bob"]}"#),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "unknown field: {e}");
    let (st, e) = admin::call(&s, "POST", "/admin/t/acme/incidents", &responder, None).await;
    assert_eq!(
        st,
        StatusCode::BAD_REQUEST,
        "no body never means the whole tenant: {e}"
    );
    assert_eq!(alice.get(&s, "/t/acme/account").await.0, StatusCode::OK);
    let (st, report) = admin::call(&s, "POST", "/admin/t/acme/incidents", &responder, Some(body)).await;
    assert_eq!(st, StatusCode::OK, "{report}");
    assert_eq!(report["scope"], "users");
    assert_eq!(report["locked_down"]["users"], 1);
    // alice was not named: her session and refresh token still work.
    assert_eq!(alice.get(&s, "/t/acme/account").await.0, StatusCode::OK);
    let (st, body) = refresh(&s, &c, &rt).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let (st, report) = admin::call(
        &s,
        "POST",
        "/admin/t/acme/incidents",
        &responder,
        Some(r#"{"users": ["alice"]}"#),
    )
    .await;
    assert_eq!(
        (st, report["locked_down"]["users"].as_u64()),
        (StatusCode::OK, Some(1))
    );
    assert_eq!(alice.get(&s, "/t/acme/account").await.0, StatusCode::SEE_OTHER);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incident_voids_a_tenant_and_tells_its_users_sqlite_memory() {
    an_incident_voids_a_tenant_and_tells_its_users(Backend::SqliteMemory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incident_voids_a_tenant_and_tells_its_users_postgres_redis() {
    an_incident_voids_a_tenant_and_tells_its_users(Backend::PostgresRedis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_responds_for_named_users_sqlite_memory() {
    the_admin_api_responds_for_named_users(Backend::SqliteMemory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_responds_for_named_users_postgres_redis() {
    the_admin_api_responds_for_named_users(Backend::PostgresRedis).await;
}
