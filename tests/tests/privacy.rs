//! Privacy rights (issue 25): a person's data export from the account page and the admin API
//! holds every category and no secret; the account page lists the person's own security
//! activity; the tenant's terms of service are accepted before a code and again when they
//! change; every consent given, changed or withdrawn is a ledger event with its scopes and the
//! terms version. On SQLite + memory and PostgreSQL + Redis.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use latchkey_core::{
    AccessTokenFormat, AnyRole, AttributeDef, AttributeKind, AuditEvent, ClientType, EditableBy, Permission,
    Principal, TenantId, User,
};
use latchkey_store::{
    AttributeRepo, AuditRepo, GroupRepo, MfaRepo, RoleRepo, TenantRepo, TermsRepo, UserRepo,
};
use latchkey_tests::browser::{Browser, PASSWORD, hidden, session_cookie, setup};
use latchkey_tests::oidc::{SECRET, authorize_path, code, query, redeem, register, update_policy};
use latchkey_tests::{Backend, TestServer, admin};
use reqwest::StatusCode;
use serde_json::{Value, json};

const ACTOR: &str = "test";

fn tenant(s: &TestServer) -> TenantId {
    s.state.db.tenant_by_slug("acme").unwrap().unwrap().id
}

fn alice(s: &TestServer) -> User {
    s.state.db.user_by_username(&tenant(s), "alice").unwrap().unwrap()
}

fn events(s: &TestServer, action: &str) -> Vec<AuditEvent> {
    s.state
        .db
        .audit_events(&tenant(s), 0, 10_000)
        .unwrap()
        .into_iter()
        .filter(|e| e.action == action)
        .collect()
}

/// Secrets alice holds after `model`: none of them may appear in an export.
struct Secrets(Vec<String>);

/// alice with an attribute, a group with a role, an authenticator app with recovery codes, a
/// passkey, a session and a client's tokens. Returns her browser and the secrets to look for.
async fn model(s: &TestServer) -> (Browser, Secrets) {
    let (db, t, person) = (&s.state.db, tenant(s), alice(s));
    let def = AttributeDef {
        tenant_id: t.clone(),
        name: "department".into(),
        label: None,
        kind: AttributeKind::String,
        required: false,
        unique: false,
        editable_by: EditableBy::Admin,
        created_at: 0,
        updated_at: 0,
    };
    db.define_attribute(&t, ACTOR, &def).unwrap();
    let values = [("department".to_owned(), Some(json!("Research-Unit-7")))];
    db.set_user_attributes(&t, ACTOR, &person.id, &values, EditableBy::Admin)
        .unwrap();
    let staff = db.create_group(&t, ACTOR, "staff", None).unwrap();
    db.add_member(&t, ACTOR, &staff.id, &Principal::User(person.id.clone()))
        .unwrap();
    let role = db.create_role(&t, ACTOR, "report-reader", None).unwrap();
    db.assign(&t, ACTOR, &Principal::Group(staff.id), &AnyRole::Tenant(role.id))
        .unwrap();
    let c = register(s, "acme", ClientType::Confidential, true, AccessTokenFormat::Jwt);
    let mut b = Browser::default();
    let code = code(s, &mut b, &c).await;
    let (st, tokens) = redeem(s, &c, &code).await;
    assert_eq!(st, StatusCode::OK, "{tokens}");
    // Factors after the sign-in, which would otherwise ask for one.
    let seed = "SEALED-TOTP-SEED-0b7c1e";
    db.begin_totp(&t, &person.id, seed.as_bytes()).unwrap();
    let recovery = ["a1".repeat(32), "b2".repeat(32)];
    db.confirm_totp(&t, &person.id, &recovery).unwrap();
    let credential = r#"{"cred":"PASSKEY-CREDENTIAL-9f3e"}"#;
    db.add_passkey(&t, &person.id, "cred-id-1", "Laptop key", credential)
        .unwrap();
    let mut secrets = vec![
        PASSWORD.to_owned(),
        SECRET.to_owned(),
        person.password_hash.clone().unwrap(),
        "$argon2".to_owned(),
        seed.to_owned(),
        "PASSKEY-CREDENTIAL".to_owned(),
        code,
        session_cookie(&b, "acme").unwrap(),
    ];
    secrets.extend(recovery);
    for k in ["access_token", "refresh_token", "id_token"] {
        secrets.push(tokens[k].as_str().unwrap().to_owned());
    }
    (b, Secrets(secrets))
}

/// What every export must show of `model`'s alice, and must not.
fn check_export(doc: &Value, secrets: &Secrets, sessions: bool) {
    let text = doc.to_string();
    for secret in &secrets.0 {
        assert!(
            !text.contains(secret.as_str()),
            "the export holds a secret ({secret:.12}…)"
        );
    }
    assert_eq!(doc["format"], "latchkey-user-export/1");
    assert_eq!(doc["tenant"]["slug"], "acme");
    assert_eq!(doc["profile"]["username"], "alice");
    assert_eq!(doc["profile"]["email"], "alice@acme.test");
    assert_eq!(doc["profile"]["has_password"], true);
    assert_eq!(doc["attributes"]["department"], "Research-Unit-7");
    assert_eq!(doc["access"]["roles"], json!(["report-reader"]));
    assert_eq!(doc["access"]["groups"][0]["path"], "/staff");
    assert!(doc["factors"]["totp"]["confirmed_at"].is_i64(), "{doc}");
    assert_eq!(doc["factors"]["recovery_codes_left"], 2);
    assert_eq!(doc["factors"]["passkeys"][0]["name"], "Laptop key");
    if sessions {
        let list = doc["sessions"].as_array().unwrap();
        assert_eq!(list.len(), 1, "{doc}");
        assert_eq!(list[0]["amr"], json!(["pwd"]));
    } else {
        assert!(doc["sessions"].is_null());
    }
    let apps = doc["applications"].as_array().unwrap();
    assert_eq!(apps.len(), 1, "{doc}");
    assert!(apps[0]["consent"]["scope"].as_str().unwrap().contains("email"));
    assert_eq!(apps[0]["grants"].as_array().unwrap().len(), 1);
    assert!(doc["linked_identities"].as_array().unwrap().is_empty());
    assert!(doc["sign_in_history"]["networks"].is_array(), "{doc}");
    let actions: Vec<&str> = doc["audit_events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for a in [
        "user.create",
        "login.success",
        "mfa.passkey.register",
        "consent.grant",
    ] {
        assert!(actions.contains(&a), "{a} in {actions:?}");
    }
    assert_eq!(doc["audit_events_truncated"], false);
}

async fn export_holds_every_category_and_no_secret(backend: Backend) {
    let Some((s, _db)) = TestServer::start_on(backend, &[]) else {
        return;
    };
    setup(&s, "acme").await;
    let (mut b, secrets) = model(&s).await;
    let t = tenant(&s);

    // The admin API: only with users:export.
    let reader = admin::token(&s, &t, &[Permission::UsersRead, Permission::SessionsRead]);
    let path = format!("/admin/t/acme/users/{}/export", alice(&s).id);
    let (st, _) = admin::call(&s, "GET", &path, &reader, None).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let exporter = admin::token(&s, &t, &[Permission::UsersExport]);
    let (st, doc) = admin::call(&s, "GET", &path, &exporter, None).await;
    assert_eq!(st, StatusCode::OK, "{doc}");
    check_export(&doc, &secrets, true);
    let (st, _) = admin::call(&s, "GET", "/admin/t/acme/users/nobody/export", &exporter, None).await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    // The account page: a CSRF-checked POST answers a download.
    let (st, _, page) = b.get(&s, "/t/acme/account").await;
    assert_eq!(st, StatusCode::OK);
    assert!(page.contains("<h2>Your data</h2>"), "{page}");
    let csrf = hidden(&page, "csrf");
    let (st, _, _) = b
        .post(&s, "/t/acme/account/export", &[("csrf", "forged")], &[])
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, h, body) = b
        .post(&s, "/t/acme/account/export", &[("csrf", &csrf)], &[])
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let disposition = h["content-disposition"].to_str().unwrap();
    assert_eq!(disposition, "attachment; filename=\"acme-alice-data.json\"");
    assert_eq!(h["cache-control"], "no-store");
    check_export(&serde_json::from_str(&body).unwrap(), &secrets, true);
    // Signed out, the form leads to the sign-in page.
    let (st, _, _) = Browser::default()
        .post(&s, "/t/acme/account/export", &[("csrf", &csrf)], &[])
        .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    // Five downloads an hour, then 429 with Retry-After.
    for _ in 0..4 {
        let (st, _, _) = b
            .post(&s, "/t/acme/account/export", &[("csrf", &csrf)], &[])
            .await;
        assert_eq!(st, StatusCode::OK);
    }
    let (st, h, page) = b
        .post(&s, "/t/acme/account/export", &[("csrf", &csrf)], &[])
        .await;
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS, "{page}");
    assert!(h.contains_key("retry-after"));

    // Each export is audited with who asked.
    let exports = events(&s, "user.export");
    assert_eq!(exports.len(), 6, "one by the admin API, five by alice");
    assert!(
        exports[0].actor.starts_with("admin_token:"),
        "{}",
        exports[0].actor
    );
    assert_eq!(exports[1].actor, format!("user:{}", alice(&s).id));
    assert_eq!(exports[1].target, format!("user:{}", alice(&s).id));

    // Transparency: the account page lists the person's own security activity, newest first.
    let (_, _, page) = b.get(&s, "/t/acme/account").await;
    let activity = &page[page.find("id=\"activity\"").unwrap()..];
    let activity = &activity[..activity.find("</ul>").unwrap()];
    assert!(activity.contains("Downloaded your data"), "{activity}");
    assert!(activity.contains("<strong>Signed in</strong>"), "{activity}");
    assert!(
        activity.contains("127.0.0.1"),
        "the address of the sign-in: {activity}"
    );
    assert!(activity.contains("risk: allow"), "the decision: {activity}");
    assert!(activity.contains("Allowed an application"), "{activity}");
    assert!(
        activity.find("Downloaded your data") < activity.find("<strong>Signed in</strong>"),
        "newest first: {activity}"
    );
}

/// Follows same-site redirects from `path`, signing alice in on the way, until a page that is
/// not the sign-in form (returned as `Ok(page)`) or the browser is sent to the client
/// (`Err(url)`).
async fn walk(s: &TestServer, b: &mut Browser, path: &str) -> Result<String, String> {
    let mut next = path.to_owned();
    for _ in 0..10 {
        let (st, h, page) = b.get(s, &next).await;
        if st.is_redirection() {
            let loc = h["location"].to_str().unwrap().to_owned();
            if !loc.starts_with('/') {
                return Err(loc);
            }
            next = loc;
            continue;
        }
        assert_eq!(st, StatusCode::OK, "{next}: {page}");
        if !page.contains("name=\"password\"") {
            return Ok(page);
        }
        let form = [
            ("csrf", hidden(&page, "csrf")),
            ("interaction", hidden(&page, "interaction")),
            ("username", "alice".to_owned()),
            ("password", PASSWORD.to_owned()),
            ("return_to", String::new()),
        ];
        let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (st, h, page) = b.post(s, "/t/acme/login", &pairs, &[]).await;
        assert!(st.is_redirection(), "sign-in failed: {page}");
        h["location"].to_str().unwrap().clone_into(&mut next);
    }
    panic!("too many redirects from {path}");
}

/// Posts the terms page's form with `decision` (and the version shown unless `version` says
/// otherwise); returns where the browser goes next.
async fn decide(
    s: &TestServer,
    b: &mut Browser,
    page: &str,
    decision: &str,
    version: Option<&str>,
) -> String {
    let shown = hidden(page, "version");
    let form = [
        ("csrf", hidden(page, "csrf")),
        ("interaction", hidden(page, "interaction")),
        ("version", version.map_or(shown, str::to_owned)),
        ("decision", decision.to_owned()),
    ];
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (st, h, page) = b.post(s, "/t/acme/authorize/terms", &pairs, &[]).await;
    assert_eq!(st, StatusCode::SEE_OTHER, "{page}");
    h["location"].to_str().unwrap().to_owned()
}

fn set_terms(s: &TestServer, version: &str) {
    update_policy(s, "acme", |p| {
        p.terms.version = Some(version.to_owned());
        p.terms.url = Some("https://acme.test/terms".to_owned());
    });
}

#[allow(clippy::too_many_lines)] // one story: decline, a stale version, accept, a new version
async fn terms_are_accepted_before_a_code_and_again_when_they_change(backend: Backend) {
    let Some((s, _db)) = TestServer::start_on(backend, &[]) else {
        return;
    };
    setup(&s, "acme").await;
    set_terms(&s, "2026-12");
    let c = register(&s, "acme", ClientType::Confidential, true, AccessTokenFormat::Jwt);
    let mut b = Browser::default();
    // Without offline_access a first-party client asks no consent: the terms alone hold it.
    let start = authorize_path(&c, &[("scope", "openid email")]);

    // The terms page comes after sign-in, before any code; declining sends access_denied.
    let page = walk(&s, &mut b, &start).await.unwrap();
    assert!(page.contains("<h1>Terms of service</h1>"), "{page}");
    assert!(page.contains("href=\"https://acme.test/terms\""), "{page}");
    assert!(page.contains("(Version 2026-12)"), "{page}");
    assert!(!page.contains("have changed"), "never accepted before: {page}");
    let (st, _, _) = b
        .post(
            &s,
            "/t/acme/authorize/terms",
            &[
                ("interaction", &hidden(&page, "interaction")),
                ("decision", "accept"),
            ],
            &[],
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "no CSRF token");
    let back = decide(&s, &mut b, &page, "decline", None).await;
    let q = query(&back);
    assert_eq!(
        (q["error"].as_str(), q["state"].as_str()),
        ("access_denied", "st")
    );
    assert!(!q.contains_key("code"));
    assert_eq!(events(&s, "terms.decline").len(), 1);
    assert!(
        s.state
            .db
            .accepted_terms(&tenant(&s), &alice(&s).id)
            .unwrap()
            .is_none()
    );

    // Accepting a version other than the one in force records nothing and shows the page again.
    let page = walk(&s, &mut b, &start).await.unwrap();
    let next = decide(&s, &mut b, &page, "accept", Some("2025-01")).await;
    let page = walk(&s, &mut b, &next).await.unwrap();
    assert!(page.contains("<h1>Terms of service</h1>"), "{page}");
    assert!(events(&s, "terms.accept").is_empty());

    // Accepting continues the request: the client gets its code.
    let next = decide(&s, &mut b, &page, "accept", None).await;
    let back = walk(&s, &mut b, &next).await.unwrap_err();
    let code = query(&back)["code"].clone();
    let (st, tokens) = redeem(&s, &c, &code).await;
    assert_eq!(st, StatusCode::OK, "{tokens}");
    let (version, _) = s
        .state
        .db
        .accepted_terms(&tenant(&s), &alice(&s).id)
        .unwrap()
        .unwrap();
    assert_eq!(version, "2026-12");
    // Accepted once, not asked again.
    let back = walk(&s, &mut b, &start).await.unwrap_err();
    assert!(query(&back).contains_key("code"), "{back}");

    // A new version asks again, saying the terms changed; prompt=none can't ask.
    set_terms(&s, "2027-01");
    let none = authorize_path(&c, &[("scope", "openid email"), ("prompt", "none")]);
    let back = walk(&s, &mut b, &none).await.unwrap_err();
    assert_eq!(query(&back)["error"], "interaction_required");
    let page = walk(&s, &mut b, &start).await.unwrap();
    assert!(
        page.contains("The terms have changed since you last accepted them."),
        "{page}"
    );
    let next = decide(&s, &mut b, &page, "accept", None).await;
    let back = walk(&s, &mut b, &next).await.unwrap_err();
    assert!(query(&back).contains_key("code"), "{back}");

    // The ledger: each acceptance with its version and the one before.
    let accepted: Vec<(Value, Value)> = events(&s, "terms.accept")
        .into_iter()
        .map(|e| (e.details["version"].clone(), e.details["previous"].clone()))
        .collect();
    assert_eq!(
        accepted,
        vec![
            (json!("2026-12"), Value::Null),
            (json!("2027-01"), json!("2026-12"))
        ]
    );
}

/// alice through the consent page with `scope`; returns the client's redirect.
async fn consent_to(s: &TestServer, b: &mut Browser, c: &latchkey_core::Client, scope: &str) -> String {
    let page = walk(s, b, &authorize_path(c, &[("scope", scope)])).await.unwrap();
    assert!(page.contains("authorize/consent"), "{page}");
    let form = [
        ("csrf", hidden(&page, "csrf")),
        ("interaction", hidden(&page, "interaction")),
        ("decision", "allow".to_owned()),
    ];
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (st, h, page) = b.post(s, "/t/acme/authorize/consent", &pairs, &[]).await;
    assert!(st.is_redirection(), "{page}");
    h["location"].to_str().unwrap().to_owned()
}

#[allow(clippy::too_many_lines)] // one user's consents in order: given, changed, withdrawn twice
async fn every_consent_change_is_a_ledger_event(backend: Backend) {
    let Some((s, _db)) = TestServer::start_on(backend, &[]) else {
        return;
    };
    setup(&s, "acme").await;
    let tid = tenant(&s);
    s.state.db.accept_terms(&tid, &alice(&s).id, "v1").unwrap();
    set_terms(&s, "v1");
    let c = register(
        &s,
        "acme",
        ClientType::Confidential,
        false,
        AccessTokenFormat::Jwt,
    );
    let mut b = Browser::default();
    let back = consent_to(&s, &mut b, &c, "openid").await;
    assert!(query(&back).contains_key("code"), "{back}");
    let back = consent_to(&s, &mut b, &c, "openid email").await;
    assert!(query(&back).contains_key("code"), "{back}");

    // Withdrawn from the account page.
    let (_, _, page) = b.get(&s, "/t/acme/account").await;
    let form = [
        ("csrf", hidden(&page, "csrf")),
        ("client_id", c.client_id.to_string()),
    ];
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (st, _, page) = b.post(&s, "/t/acme/account/apps/revoke", &pairs, &[]).await;
    assert!(st.is_redirection(), "{page}");
    // Given again, then withdrawn by an operator through the admin API.
    let back = consent_to(&s, &mut b, &c, "openid").await;
    assert!(query(&back).contains_key("code"), "{back}");
    let admin = admin::token(&s, &tid, &[Permission::SessionsRevoke]);
    let path = format!("/admin/t/acme/users/{}/grants", alice(&s).id);
    let (st, body) = admin::call(&s, "DELETE", &path, &admin, None).await;
    assert_eq!(st, StatusCode::OK, "{body}");

    let ledger: Vec<(String, Value, Value, Value, Value)> = s
        .state
        .db
        .audit_events(&tid, 0, 10_000)
        .unwrap()
        .into_iter()
        .filter(|e| e.action.starts_with("consent."))
        .map(|e| {
            let d = &e.details;
            assert_eq!(d["client_id"], c.client_id.as_str(), "{d}");
            assert_eq!(d["terms_version"], "v1", "{d}");
            (
                e.action,
                d["change"].clone(),
                d["scope"].clone(),
                d["added"].clone(),
                json!(e.actor.split(':').next()),
            )
        })
        .collect();
    assert_eq!(
        ledger,
        vec![
            (
                "consent.grant".into(),
                json!("given"),
                json!("openid"),
                json!("openid"),
                json!("user")
            ),
            (
                "consent.grant".into(),
                json!("changed"),
                json!("openid email"),
                json!("email"),
                json!("user")
            ),
            (
                "consent.revoke".into(),
                json!("withdrawn"),
                json!("openid email"),
                Value::Null,
                json!("user")
            ),
            (
                "consent.grant".into(),
                json!("given"),
                json!("openid"),
                json!("openid"),
                json!("user")
            ),
            (
                "consent.revoke".into(),
                json!("withdrawn"),
                json!("openid"),
                Value::Null,
                json!("admin_token")
            ),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_holds_every_category_and_no_secret_sqlite_memory() {
    export_holds_every_category_and_no_secret(Backend::SqliteMemory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_holds_every_category_and_no_secret_postgres_redis() {
    export_holds_every_category_and_no_secret(Backend::PostgresRedis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terms_are_accepted_before_a_code_and_again_when_they_change_sqlite_memory() {
    terms_are_accepted_before_a_code_and_again_when_they_change(Backend::SqliteMemory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terms_are_accepted_before_a_code_and_again_when_they_change_postgres_redis() {
    terms_are_accepted_before_a_code_and_again_when_they_change(Backend::PostgresRedis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_consent_change_is_a_ledger_event_sqlite_memory() {
    every_consent_change_is_a_ledger_event(Backend::SqliteMemory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_consent_change_is_a_ledger_event_postgres_redis() {
    every_consent_change_is_a_ledger_event(Backend::PostgresRedis).await;
}
