//! The admin API over HTTP: tenant isolation (SECURITY-TESTS M1), roles, token handling,
//! audited reads, throttled guessing. Runs on SQLite + memory and PostgreSQL + Redis.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use latchkey_core::{Client, TenantId, TenantPolicy, User, UserStatus, sha256_hex};
use latchkey_store::{
    AdminTokenRepo, AuditRepo, ClientRepo, GroupRepo, NewClient, NewTenant, NewUser, TenantRepo, UserRepo,
};
use latchkey_tests::TestServer;
use reqwest::StatusCode;
use serde_json::Value;

struct World {
    a: TenantId,
    b: TenantId,
    alice: User,
    portal: Client,
    a_reader: String,
    a_admin: String,
    b_admin: String,
}

fn token(s: &TestServer, t: &TenantId, role: &str, expires_at: Option<i64>) -> String {
    latchkey_tests::admin::credential(s, t, &[role], &[], expires_at)
}

fn world(s: &TestServer) -> World {
    let db = &s.state.db;
    let tenant = |slug: &str| {
        db.create_tenant(
            "test",
            &NewTenant {
                slug: slug.into(),
                display_name: None,
                policy: TenantPolicy::default(),
            },
        )
        .unwrap()
        .id
    };
    let (a, b) = (tenant("acme"), tenant("beta"));
    let alice = db
        .create_user(
            &a,
            "test",
            &NewUser {
                username: "alice".into(),
                password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$SECRETHASH".into()),
                ..NewUser::default()
            },
        )
        .unwrap();
    db.create_user(
        &b,
        "test",
        &NewUser {
            username: "bob".into(),
            ..NewUser::default()
        },
    )
    .unwrap();
    let portal = db
        .create_client(
            &a,
            "test",
            &NewClient {
                name: "Portal".into(),
                client_type: latchkey_core::ClientType::Confidential,
                auth_method: latchkey_core::AuthMethod::ClientSecretBasic,
                secret_hash: Some(sha256_hex(b"portal-secret")),
                redirect_uris: vec!["https://portal.acme.test/cb".into()],
                post_logout_redirect_uris: vec![],
                grant_types: vec![latchkey_core::GrantType::AuthorizationCode],
                scopes: vec!["openid".into()],
                access_token_format: latchkey_core::AccessTokenFormat::Jwt,
                require_pkce: true,
                introspect_others: false,
                first_party: false,
                jwks_uri: None,
                jwks: None,
                settings: latchkey_core::ClientSettings::default(),
            },
        )
        .unwrap();
    World {
        a_reader: token(s, &a, "read-only", None),
        a_admin: token(s, &a, "tenant-admin", None),
        b_admin: token(s, &b, "tenant-admin", None),
        a,
        b,
        alice,
        portal,
    }
}

async fn get(s: &TestServer, path: &str, token: &str) -> (StatusCode, Value, reqwest::header::HeaderMap) {
    let res = TestServer::client()
        .get(s.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let (status, headers) = (res.status(), res.headers().clone());
    (status, res.json().await.unwrap_or(Value::Null), headers)
}

async fn post(s: &TestServer, path: &str, token: &str) -> (StatusCode, Value) {
    let res = TestServer::client()
        .post(s.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn a_reader_sees_its_tenant_without_secrets(s: &TestServer) {
    let w = world(s);
    let (status, users, headers) = get(s, "/admin/t/acme/users", &w.a_reader).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["cache-control"], "no-store");
    let names: Vec<&str> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alice"], "only tenant A's users");
    let (status, user, _) = get(s, &format!("/admin/t/acme/users/{}", w.alice.id), &w.a_reader).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(user["username"], "alice");
    let (status, client, _) = get(
        s,
        &format!("/admin/t/acme/clients/{}", w.portal.client_id),
        &w.a_reader,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(client["name"], "Portal");
    let (_, clients, _) = get(s, "/admin/t/acme/clients", &w.a_reader).await;
    let everything = format!("{users}{user}{client}{clients}");
    for secret in [
        "SECRETHASH",
        "argon2",
        &sha256_hex(b"portal-secret"),
        "secret_hash",
        "password_hash",
    ] {
        assert!(!everything.contains(secret), "admin API leaks {secret}");
    }
}

async fn tenant_b_cannot_read_update_or_reference_tenant_a(s: &TestServer) {
    let w = world(s);
    let a_before = s.state.db.audit_head(&w.a).unwrap();
    // B's valid token on B's paths, naming A's objects: not found, and nothing changes.
    for path in [
        format!("/admin/t/beta/users/{}", w.alice.id),
        format!("/admin/t/beta/clients/{}", w.portal.client_id),
    ] {
        let (status, body, headers) = get(s, &path, &w.b_admin).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(body["error"], "not_found");
        // An RFC 9457 problem document.
        assert_eq!(headers["content-type"], "application/problem+json");
        assert_eq!(body["status"], 404);
        assert_eq!(body["type"], "urn:latchkey:problem:not_found");
        assert!(
            body["detail"].as_str().is_some_and(|d| d.contains("No such")),
            "{body}"
        );
    }
    let (status, _) = post(
        s,
        &format!("/admin/t/beta/users/{}/disable", w.alice.id),
        &w.b_admin,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        s.state.db.user(&w.a, &w.alice.id).unwrap().unwrap().status,
        UserStatus::Active
    );
    let (_, users, _) = get(s, "/admin/t/beta/users", &w.b_admin).await;
    assert!(!users.to_string().contains("alice"));
    // B's token on A's paths: not a credential there at all.
    for path in [
        "/admin/t/acme/users".to_owned(),
        format!("/admin/t/acme/users/{}", w.alice.id),
    ] {
        let (status, body, headers) = get(s, &path, &w.b_admin).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(body["error"], "invalid_token");
        assert!(
            headers["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer")
        );
    }
    let (status, _) = post(
        s,
        &format!("/admin/t/acme/users/{}/disable", w.alice.id),
        &w.b_admin,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        s.state.db.user(&w.a, &w.alice.id).unwrap().unwrap().status,
        UserStatus::Active
    );
    assert_eq!(
        s.state.db.audit_head(&w.a).unwrap(),
        a_before,
        "B's attempts wrote nothing into A's chain"
    );
    let _ = w.b;
}

async fn only_an_admin_token_changes_users_and_every_call_is_audited(s: &TestServer) {
    let w = world(s);
    let path = format!("/admin/t/acme/users/{}/disable", w.alice.id);
    let (status, body) = post(s, &path, &w.a_reader).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"], "access_denied");
    assert_eq!(
        s.state.db.user(&w.a, &w.alice.id).unwrap().unwrap().status,
        UserStatus::Active
    );
    let (status, body) = post(s, &path, &w.a_admin).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "disabled");
    let (status, body) = post(
        s,
        &format!("/admin/t/acme/users/{}/enable", w.alice.id),
        &w.a_admin,
    )
    .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("active"))
    );
    get(s, &format!("/admin/t/acme/users/{}", w.alice.id), &w.a_reader).await;
    get(s, "/admin/t/acme/clients", &w.a_reader).await;

    let events = s.state.db.audit_events(&w.a, 0, 1000).unwrap();
    let tail: Vec<(String, String)> = events
        .iter()
        .rev()
        .take(5)
        .rev()
        .map(|e| (e.action.clone(), e.outcome.as_str().to_owned()))
        .collect();
    let expected = [
        ("admin.denied", "denied"),
        ("user.disable", "success"),
        ("user.enable", "success"),
        ("user.read", "success"),
        ("client.list", "success"),
    ];
    assert_eq!(tail, expected.map(|(a, o)| (a.to_owned(), o.to_owned())));
    assert!(
        events
            .iter()
            .rev()
            .take(5)
            .all(|e| e.actor.starts_with("admin_token:"))
    );
    assert!(matches!(
        latchkey_audit::verify(&s.state.db, &w.a).unwrap(),
        latchkey_audit::Verdict::Intact { .. }
    ));
}

async fn bad_tokens_are_refused(s: &TestServer) {
    let w = world(s);
    let expired = token(s, &w.a, "tenant-admin", Some(1));
    let c = TestServer::client();
    let no_token = c.get(s.url("/admin/t/acme/users")).send().await.unwrap();
    assert_eq!(no_token.status(), StatusCode::UNAUTHORIZED);
    for bad in [expired.as_str(), "lka_guess", "", &w.a_reader.to_uppercase()] {
        let (status, _, _) = get(s, "/admin/t/acme/users", bad).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{bad}");
    }
    // Basic auth or a token in the query string is not accepted.
    let res = c
        .get(s.url("/admin/t/acme/users"))
        .basic_auth(&w.a_reader, Some("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = c
        .get(s.url(&format!("/admin/t/acme/users?access_token={}", w.a_reader)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    // A revoked token stops working at once.
    let tokens = s.state.db.list_admin_tokens(&w.a).unwrap();
    let id = tokens
        .iter()
        .find(|k| k.roles == ["read-only"])
        .unwrap()
        .id
        .clone();
    s.state.db.revoke_admin_token(&w.a, "test", &id).unwrap();
    let (status, _, _) = get(s, "/admin/t/acme/users", &w.a_reader).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Unknown tenants are 404, as everywhere.
    let (status, _, _) = get(s, "/admin/t/nobody/users", &w.a_admin).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn guessing_tokens_is_throttled(s: &TestServer) {
    let w = world(s);
    for i in 0..20 {
        let (status, _, _) = get(s, "/admin/t/acme/users", &format!("lka_guess{i}")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, body, headers) = get(s, "/admin/t/acme/users", "lka_guess-more").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body["error"], "too_many_requests");
    assert_eq!(headers["retry-after"], "60");
    // Even the right token waits out the window from the same address: guessing can't be
    // interleaved with a known-good token to reset the counter.
    let (status, _, _) = get(s, "/admin/t/acme/users", &w.a_reader).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // Another tenant is unaffected.
    let (status, _, _) = get(s, "/admin/t/beta/users", &w.b_admin).await;
    assert_eq!(status, StatusCode::OK);
}

/// 30 guesses at once get no more lookups than 20 sequential ones: each lookup is answered
/// `401`, the rest `429`.
async fn parallel_guesses_get_no_more_than_the_limit(s: &TestServer) {
    world(s);
    let guesses: Vec<String> = (0..30).map(|i| format!("lka_guess{i}")).collect();
    let statuses =
        futures_util::future::join_all(guesses.iter().map(|g| get(s, "/admin/t/acme/users", g))).await;
    let looked_up = statuses
        .iter()
        .filter(|(st, _, _)| *st == StatusCode::UNAUTHORIZED)
        .count();
    eprintln!("30 parallel wrong admin tokens: {looked_up} looked up");
    assert!(
        looked_up <= 20,
        "{looked_up} of 30 parallel guesses were looked up"
    );
    assert!(
        statuses
            .iter()
            .all(|(st, _, _)| *st == StatusCode::UNAUTHORIZED || *st == StatusCode::TOO_MANY_REQUESTS)
    );
}

/// A client-credentials token request with `secret`: the status says whether it authenticated.
async fn cc_token(s: &TestServer, client_id: &str, secret: &str) -> StatusCode {
    TestServer::client()
        .post(s.url("/t/acme/token"))
        .basic_auth(client_id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .status()
}

/// Secret rotation with an overlap (issue 21): both secrets work until it ends, then only the
/// new one; without one the old secret stops at once; a rotation made elsewhere (the CLI)
/// works at once despite this node's client cache. Only an admin of the tenant may rotate.
#[allow(clippy::too_many_lines)] // one story: the steps depend on the clock moving in order
async fn secret_rotation_overlaps(backend: latchkey_tests::Backend) {
    let clock = std::sync::Arc::new(latchkey_core::FixedClock::new(1_900_000_000_000));
    let Some((s, _db)) = TestServer::start_on_clocked(backend, &[], clock.clone()) else {
        return;
    };
    let w = world(&s);
    let cc = s
        .state
        .db
        .create_client(
            &w.a,
            "test",
            &NewClient {
                name: "Batch".into(),
                secret_hash: Some(sha256_hex(b"cc-old")),
                redirect_uris: vec![],
                grant_types: vec![latchkey_core::GrantType::ClientCredentials],
                scopes: vec![],
                ..new_client_like(&w.portal)
            },
        )
        .unwrap();
    let id = cc.client_id.as_str();
    assert_eq!(cc_token(&s, id, "cc-old").await, StatusCode::OK);
    let path = format!("/admin/t/acme/clients/{id}/rotate-secret");
    let rotate = |token: &str, body: &'static str| {
        TestServer::client()
            .post(s.url(&path))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    // Refused: a reader, another tenant's admin, an overlap past 30 days.
    assert_eq!(
        rotate(&w.a_reader, "{}").await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        rotate(&w.b_admin, "{}").await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    let (st, _) = post(
        &s,
        &format!("/admin/t/beta/clients/{id}/rotate-secret"),
        &w.b_admin,
    )
    .await;
    assert_eq!(
        st,
        StatusCode::NOT_FOUND,
        "tenant B's admin can't name tenant A's client"
    );
    let too_long = rotate(&w.a_admin, r#"{"overlap_secs": 2600000}"#).await.unwrap();
    assert_eq!(too_long.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        cc_token(&s, id, "cc-old").await,
        StatusCode::OK,
        "nothing changed"
    );

    let res = rotate(&w.a_admin, r#"{"overlap_secs": 3600}"#).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let v: Value = res.json().await.unwrap();
    let new = v["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(v["previous_secret_expires_at"], 1_900_000_000_000_i64 + 3_600_000);
    assert_eq!(
        cc_token(&s, id, &new).await,
        StatusCode::OK,
        "the new one at once"
    );
    assert_eq!(
        cc_token(&s, id, "cc-old").await,
        StatusCode::OK,
        "the old one meanwhile"
    );
    assert_eq!(cc_token(&s, id, "neither").await, StatusCode::UNAUTHORIZED);
    clock.advance_millis(3_600_000);
    assert_eq!(
        cc_token(&s, id, "cc-old").await,
        StatusCode::UNAUTHORIZED,
        "overlap over"
    );
    assert_eq!(cc_token(&s, id, &new).await, StatusCode::OK);

    // Without an overlap the old secret stops at once.
    let res = rotate(&w.a_admin, "").await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["previous_secret_expires_at"], Value::Null);
    let newest = v["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(cc_token(&s, id, &new).await, StatusCode::UNAUTHORIZED);
    assert_eq!(cc_token(&s, id, &newest).await, StatusCode::OK);

    // Rotated by another process (the CLI): the new secret works before the cache expires.
    s.state
        .db
        .set_client_secret_hash(&w.a, "cli:ops", &cc.client_id, &sha256_hex(b"from-cli"), None)
        .unwrap();
    assert_eq!(cc_token(&s, id, "from-cli").await, StatusCode::OK);

    let rotations: Vec<Value> = s
        .state
        .db
        .audit_events(&w.a, 0, 1000)
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "client.rotate_secret")
        .map(|e| e.details)
        .collect();
    assert_eq!(rotations.len(), 3, "{rotations:?}");
    assert_eq!(rotations[0]["previous_secret_expires_at"], 1_900_003_600_000_i64);
    let dump = serde_json::to_string(&rotations).unwrap();
    assert!(
        !dump.contains(&new) && !dump.contains(&sha256_hex(b"cc-old")),
        "no secrets"
    );
}

/// A registration like `c`'s, to vary.
fn new_client_like(c: &Client) -> NewClient {
    NewClient::from(c)
}

/// `PATCH` with a JSON merge patch under `If-Match` (issue 21): a lost update is 412 and
/// writes nothing; the change is live at once; fixed and unknown members, bad types and
/// broken registration rules are 400; a reader is 403; another tenant's admin 404.
#[allow(clippy::too_many_lines)] // one client's story: each refusal is checked against its state
async fn clients_change_by_merge_patch_under_if_match(s: &TestServer) {
    let w = world(s);
    let cc = s
        .state
        .db
        .create_client(
            &w.a,
            "test",
            &NewClient {
                name: "Batch".into(),
                secret_hash: Some(sha256_hex(b"cc-secret")),
                redirect_uris: vec![],
                grant_types: vec![latchkey_core::GrantType::ClientCredentials],
                scopes: vec![],
                ..NewClient::from(&w.portal)
            },
        )
        .unwrap();
    let id = cc.client_id.as_str();
    let path = format!("/admin/t/acme/clients/{id}");
    let scoped = |scope: &'static str| async move {
        TestServer::client()
            .post(s.url("/t/acme/token"))
            .basic_auth(id, Some("cc-secret"))
            .form(&[("grant_type", "client_credentials"), ("scope", scope)])
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(
        scoped("reports").await,
        StatusCode::BAD_REQUEST,
        "not allowed yet"
    );
    let (st, _, h) = get(s, &path, &w.a_reader).await;
    assert_eq!(st, StatusCode::OK);
    let v1 = h["etag"].to_str().unwrap().to_owned();
    let send = |token: &str, if_match: Option<&str>, mime: &str, body: &str| {
        let mut r = TestServer::client()
            .patch(s.url(&path))
            .bearer_auth(token)
            .header("content-type", mime)
            .body(body.to_owned());
        if let Some(m) = if_match {
            r = r.header("if-match", m);
        }
        r.send()
    };
    const MP: &str = "application/merge-patch+json";
    let res = send(
        &w.a_admin,
        Some(&v1),
        MP,
        r#"{"scopes":["reports"],"settings":{"access_token_secs":120}}"#,
    )
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let v2 = res.headers()["etag"].to_str().unwrap().to_owned();
    assert_ne!(v1, v2);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["scopes"], serde_json::json!(["reports"]));
    assert_eq!(body["settings"]["access_token_secs"], 120);
    assert_eq!(scoped("reports").await, StatusCode::OK, "live at once");
    // The same ETag again: the change in between would be lost, so 412 and nothing written.
    let res = send(&w.a_admin, Some(&v1), MP, r#"{"name":"Lost"}"#)
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PRECONDITION_FAILED);
    for stale in ["W/\"1\"", "nonsense", "\"1\", \"2\""] {
        let res = send(&w.a_admin, Some(stale), MP, r#"{"name":"Lost"}"#)
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::PRECONDITION_FAILED, "{stale}");
    }
    let (_, now, h) = get(s, &path, &w.a_reader).await;
    assert_eq!(now["name"], "Batch");
    assert_eq!(h["etag"].to_str().unwrap(), v2);
    // Refused: fixed and unknown members, wrong types, broken rules, wrong media type.
    for bad in [
        r#"{"client_id":"other"}"#,
        r#"{"client_type":"public"}"#,
        r#"{"secret_hash":"x"}"#,
        r#"{"scopes":"reports"}"#,
        r#"{"grant_types":["authorization_code"]}"#,
        r#"{"settings":{"access_token_secs":1}}"#,
        "[1,2]",
    ] {
        let res = send(&w.a_admin, None, MP, bad).await.unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
    let res = send(&w.a_admin, None, "text/plain", r#"{"name":"X"}"#)
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let res = send(&w.a_reader, None, MP, r#"{"name":"X"}"#).await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = TestServer::client()
        .patch(s.url(&format!("/admin/t/beta/clients/{id}")))
        .bearer_auth(&w.b_admin)
        .header("content-type", MP)
        .body(r#"{"name":"X"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let (_, now, h) = get(s, &path, &w.a_reader).await;
    assert_eq!(
        (now["name"].as_str(), h["etag"].to_str().unwrap()),
        (Some("Batch"), v2.as_str())
    );
    let changed: Vec<Value> = s
        .state
        .db
        .audit_events(&w.a, 0, 1000)
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "client.update")
        .map(|e| e.details)
        .collect();
    assert_eq!(changed.len(), 1, "{changed:?}");
    assert_eq!(
        changed[0]["changed"]["scopes"]["to"],
        serde_json::json!(["reports"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_rotation_overlaps_sqlite_memory() {
    secret_rotation_overlaps(latchkey_tests::Backend::SqliteMemory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_rotation_overlaps_postgres_redis() {
    secret_rotation_overlaps(latchkey_tests::Backend::PostgresRedis).await;
}

/// Users come in pages (issue 21): following `Link: rel="next"` visits each user once, in
/// username order; filters narrow the pages; a forged cursor or limit is 400.
async fn users_are_listed_in_pages_with_filters(s: &TestServer) {
    let w = world(s);
    for name in ["dora", "dan", "carl", "bea", "d_x"] {
        let u = s
            .state
            .db
            .create_user(
                &w.a,
                "test",
                &NewUser {
                    username: name.into(),
                    email: Some(format!("{name}@acme.test")),
                    ..NewUser::default()
                },
            )
            .unwrap();
        if name.starts_with('d') {
            s.state
                .db
                .set_user_status(&w.a, "test", &u.id, UserStatus::Disabled)
                .unwrap();
        }
    }
    let mut seen = Vec::new();
    let mut next = Some("/admin/t/acme/users?limit=2".to_owned());
    let mut pages = 0;
    while let Some(path) = next.take() {
        let (st, body, h) = get(s, &path, &w.a_reader).await;
        assert_eq!(st, StatusCode::OK, "{path}: {body}");
        let page = body.as_array().unwrap();
        assert!(page.len() <= 2);
        seen.extend(page.iter().map(|u| u["username"].as_str().unwrap().to_owned()));
        next = h.get("link").map(|l| {
            let l = l.to_str().unwrap();
            assert!(l.ends_with("; rel=\"next\""), "{l}");
            l[1..l.find('>').unwrap()].to_owned()
        });
        pages += 1;
        assert!(pages < 10, "paging ends");
    }
    assert_eq!(seen, ["alice", "bea", "carl", "d_x", "dan", "dora"]);
    let names = |body: &Value| -> Vec<String> {
        body.as_array()
            .unwrap()
            .iter()
            .map(|u| u["username"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, body, _) = get(s, "/admin/t/acme/users?status=disabled&limit=10", &w.a_reader).await;
    assert_eq!(names(&body), ["d_x", "dan", "dora"]);
    // The prefix is literal: `d_` matches d_x only, not every d followed by one character.
    let (_, body, _) = get(s, "/admin/t/acme/users?q=d_", &w.a_reader).await;
    assert_eq!(names(&body), ["d_x"]);
    let (_, body, _) = get(s, "/admin/t/acme/users?q=carl%40acme", &w.a_reader).await;
    assert_eq!(names(&body), ["carl"], "by email prefix too");
    for bad in ["limit=0", "limit=1001", "cursor=%25%25", "status=gone", "page=2"] {
        let (st, _, _) = get(s, &format!("/admin/t/acme/users?{bad}"), &w.a_reader).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{bad}");
    }
    // Clients page by name, ties by id: three clients of one name are each seen once.
    for _ in 0..3 {
        s.state
            .db
            .create_client(&w.a, "test", &NewClient::from(&w.portal))
            .unwrap();
    }
    let all = follow(s, "/admin/t/acme/clients?limit=1", &w.a_reader).await;
    let ids: Vec<&str> = all.iter().map(|c| c["client_id"].as_str().unwrap()).collect();
    let mut unique = ids.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!((ids.len(), unique.len()), (4, 4), "{ids:?}");
    let (st, _, _) = get(s, "/admin/t/acme/clients?cursor=WyJhIl0", &w.a_reader).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "a cursor of the wrong shape");
}

/// Every item of a paged list, following `Link: rel="next"` from `path`.
async fn follow(s: &TestServer, path: &str, token: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut next = Some(path.to_owned());
    for _ in 0..50 {
        let Some(path) = next.take() else {
            return items;
        };
        let (st, body, h) = get(s, &path, token).await;
        assert_eq!(st, StatusCode::OK, "{path}: {body}");
        items.extend(body.as_array().unwrap().iter().cloned());
        next = h
            .get("link")
            .map(|l| l.to_str().unwrap().split('>').next().unwrap()[1..].to_owned());
    }
    panic!("paging did not end");
}

/// `POST …/clients` with the CLI's defaults, its secret shown once and replayed (sealed) under
/// an `Idempotency-Key`; `DELETE` ends it; bad registrations are 400 (issue 21).
async fn clients_are_created_once_and_deleted(s: &TestServer) {
    let w = world(s);
    let create = |token: &str, key: Option<&'static str>, body: &'static str| {
        let mut r = TestServer::client()
            .post(s.url("/admin/t/acme/clients"))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body);
        if let Some(k) = key {
            r = r.header("idempotency-key", k);
        }
        r.send()
    };
    let body = r#"{"name": "Batch", "grant_types": ["client_credentials"], "scopes": ["reports"]}"#;
    let res = create(&w.a_admin, Some("batch-1"), body).await.unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let first: Value = res.json().await.unwrap();
    let (id, secret) = (
        first["client_id"].as_str().unwrap().to_owned(),
        first["client_secret"].as_str().unwrap().to_owned(),
    );
    assert_eq!(first["auth_method"], "client_secret_basic", "the CLI's default");
    let res = create(&w.a_admin, Some("batch-1"), body).await.unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    assert!(res.headers().contains_key("idempotent-replayed"));
    let again: Value = res.json().await.unwrap();
    assert_eq!(again, first, "the same client and secret, not a second client");
    assert_eq!(s.state.db.list_clients(&w.a).unwrap().len(), 2);
    assert_eq!(
        cc_token(s, &id, &secret).await,
        StatusCode::OK,
        "the secret works"
    );
    // Refused: a public client for client_credentials, an unknown field, a reader.
    for bad in [
        r#"{"name": "SPA", "client_type": "public", "grant_types": ["client_credentials"]}"#,
        r#"{"name": "X", "client_secret": "chosen"}"#,
        r#"{"grant_types": ["client_credentials"]}"#,
    ] {
        let res = create(&w.a_admin, None, bad).await.unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
    assert_eq!(
        create(&w.a_reader, None, body).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(s.state.db.list_clients(&w.a).unwrap().len(), 2);
    // Deleting: a stale If-Match is 412; then gone, and its secret with it.
    let del = |m: Option<&'static str>| {
        let mut r = TestServer::client()
            .delete(s.url(&format!("/admin/t/acme/clients/{id}")))
            .bearer_auth(&w.a_admin);
        if let Some(m) = m {
            r = r.header("if-match", m);
        }
        r.send()
    };
    assert_eq!(
        del(Some("\"1\"")).await.unwrap().status(),
        StatusCode::PRECONDITION_FAILED
    );
    assert_eq!(del(None).await.unwrap().status(), StatusCode::OK);
    assert_eq!(del(None).await.unwrap().status(), StatusCode::NOT_FOUND);
    assert_eq!(cc_token(s, &id, &secret).await, StatusCode::UNAUTHORIZED);
    let actions: Vec<String> = s
        .state
        .db
        .audit_events(&w.a, 0, 1000)
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    let count = |a: &str| actions.iter().filter(|x| *x == a).count();
    assert_eq!(
        (count("client.create"), count("client.delete")),
        (2, 1),
        "{actions:?}"
    );
}

use latchkey_tests::admin::call;

/// Over the API: groups `staff` ⊃ `finance` ∋ alice, and role `employee` assigned to `staff`;
/// returns (staff, finance, employee). A taken name and a cycle are 409.
async fn api_groups(s: &TestServer, w: &World) -> (String, String, String) {
    let admin = w.a_admin.as_str();
    let made = |v: &Value| v["id"].as_str().unwrap().to_owned();
    let create = |body: &'static str| call(s, "POST", "/admin/t/acme/groups", admin, Some(body));
    let (st, staff) = create(r#"{"name":"staff"}"#).await;
    assert_eq!(st, StatusCode::CREATED, "{staff}");
    let (staff, finance) = (made(&staff), made(&create(r#"{"name":"finance"}"#).await.1));
    assert_eq!(
        create(r#"{"name":"staff"}"#).await.0,
        StatusCode::CONFLICT,
        "a taken name"
    );
    let member = |g: &str, kind: &str, m: &str| format!("/admin/t/acme/groups/{g}/members/{kind}/{m}");
    let put = |path: String| async move { call(s, "PUT", &path, admin, None).await.0 };
    assert_eq!(put(member(&staff, "groups", &finance)).await, StatusCode::OK);
    assert_eq!(
        put(member(&finance, "groups", &staff)).await,
        StatusCode::CONFLICT,
        "a cycle"
    );
    assert_eq!(
        put(member(&finance, "users", w.alice.id.as_str())).await,
        StatusCode::OK
    );
    let roles = "/admin/t/acme/roles";
    let (st, role) = call(s, "POST", roles, admin, Some(r#"{"name":"employee"}"#)).await;
    assert_eq!(st, StatusCode::CREATED);
    let role = made(&role);
    assert_eq!(
        put(format!("{roles}/{role}/groups/{staff}")).await,
        StatusCode::OK
    );
    (staff, finance, role)
}

/// Groups nest, members join, and a role assigned to the outer group reaches alice at once;
/// reads show the members and roles, and groups page by path (issue 21).
async fn groups_nest_and_roles_follow_over_the_api(s: &TestServer) {
    let w = world(s);
    let (staff, _, _) = api_groups(s, &w).await;
    let access = s.state.db.effective_access(&w.a, &w.alice.id).unwrap();
    assert_eq!(access.roles, ["employee"], "through two levels");
    let (_, shown) = call(
        s,
        "GET",
        &format!("/admin/t/acme/groups/{staff}"),
        &w.a_reader,
        None,
    )
    .await;
    assert_eq!(shown["roles"], serde_json::json!(["employee"]));
    assert_eq!(shown["members"]["groups"][0]["path"], "/staff/finance");
    let paths: Vec<Value> = follow(s, "/admin/t/acme/groups?limit=1", &w.a_reader)
        .await
        .into_iter()
        .map(|g| g["path"].clone())
        .collect();
    assert_eq!(
        paths,
        [serde_json::json!("/staff"), serde_json::json!("/staff/finance")]
    );
    let actions: Vec<String> = s
        .state
        .db
        .audit_events(&w.a, 0, 1000)
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    for a in ["group.create", "role.create", "group.read", "group.list"] {
        assert!(actions.contains(&a.to_owned()), "{a} in {actions:?}");
    }
}

/// Patches name only what may change; readers, other tenants and unknown kinds are refused;
/// unassigning and deleting take effect at once.
async fn group_changes_are_checked_and_undone_over_the_api(s: &TestServer) {
    let w = world(s);
    let (staff, finance, role) = api_groups(s, &w).await;
    let admin = w.a_admin.as_str();
    let g = |rest: &str| format!("/admin/t/acme/groups/{rest}");
    let (st, patched) = call(
        s,
        "PATCH",
        &g(&finance),
        admin,
        Some(r#"{"description":"Money"}"#),
    )
    .await;
    assert_eq!(
        (st, patched["description"].as_str()),
        (StatusCode::OK, Some("Money"))
    );
    let (st, _) = call(s, "PATCH", &g(&finance), admin, Some(r#"{"parent_id":"x"}"#)).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    // As the OpenAPI document says: a name is never null, a patch is an object, and it comes
    // as a merge patch or JSON.
    for bad in [r#"{"name":null}"#, r#"["Renamed"]"#] {
        let (st, _) = call(s, "PATCH", &g(&finance), admin, Some(bad)).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{bad}");
    }
    let res = TestServer::client()
        .patch(s.url(&g(&finance)))
        .bearer_auth(admin)
        .header("content-type", "text/plain")
        .body(r#"{"description":"Text"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let alice = w.alice.id.as_str();
    let alice_in = g(&format!("{finance}/members/users/{alice}"));
    assert_eq!(
        call(s, "DELETE", &alice_in, &w.a_reader, None).await.0,
        StatusCode::FORBIDDEN
    );
    let beta = format!("/admin/t/beta/groups/{staff}/members/users/{alice}");
    assert_eq!(
        call(s, "PUT", &beta, &w.b_admin, None).await.0,
        StatusCode::NOT_FOUND
    );
    let robots = g(&format!("{finance}/members/robots/{alice}"));
    assert_eq!(
        call(s, "PUT", &robots, admin, None).await.0,
        StatusCode::NOT_FOUND
    );
    let assign = format!("/admin/t/acme/roles/{role}/groups/{staff}");
    assert_eq!(call(s, "DELETE", &assign, admin, None).await.0, StatusCode::OK);
    assert!(
        s.state
            .db
            .effective_access(&w.a, &w.alice.id)
            .unwrap()
            .roles
            .is_empty()
    );
    assert_eq!(call(s, "DELETE", &g(&staff), admin, None).await.0, StatusCode::OK);
    assert_eq!(
        call(s, "GET", &g(&staff), &w.a_reader, None).await.0,
        StatusCode::NOT_FOUND
    );
}

/// A helpdesk lists where alice is signed in and ends one session, then all of them, with
/// the grants tied to them (issue 21); a reader can't, another tenant can't name her.
async fn sessions_are_listed_and_ended_by_an_admin(s: &TestServer) {
    use latchkey_tests::browser::{Browser, PASSWORD};
    let w = world(s);
    s.state.keys.ensure_tenant(&w.a, "test").unwrap();
    let hash = s.state.hasher.hash(PASSWORD.into()).await.unwrap();
    s.state
        .db
        .set_password_hash(&w.a, "test", &w.alice.id, &hash)
        .unwrap();
    let (mut laptop, mut phone) = (Browser::default(), Browser::default());
    for b in [&mut laptop, &mut phone] {
        assert_eq!(
            b.sign_in(s, "acme", "alice", PASSWORD).await.0,
            StatusCode::SEE_OTHER
        );
    }
    let list = format!("/admin/t/acme/users/{}/sessions", w.alice.id);
    let (st, sessions) = call(s, "GET", &list, &w.a_reader, None).await;
    assert_eq!(st, StatusCode::OK);
    let ids: Vec<String> = sessions
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 2, "{sessions}");
    assert_eq!(sessions[0]["amr"], serde_json::json!(["pwd"]));
    let one = format!("{list}/{}", ids[0]);
    assert_eq!(
        call(s, "DELETE", &one, &w.a_reader, None).await.0,
        StatusCode::FORBIDDEN
    );
    let beta = format!("/admin/t/beta/users/{}/sessions", w.alice.id);
    assert_eq!(
        call(s, "DELETE", &beta, &w.b_admin, None).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(call(s, "DELETE", &one, &w.a_admin, None).await.0, StatusCode::OK);
    assert_eq!(
        call(s, "DELETE", &one, &w.a_admin, None).await.0,
        StatusCode::NOT_FOUND,
        "gone"
    );
    assert_eq!(
        call(s, "GET", &list, &w.a_reader, None)
            .await
            .1
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let (st, all) = call(s, "DELETE", &list, &w.a_admin, None).await;
    assert_eq!((st, all["sessions_ended"].as_u64()), (StatusCode::OK, Some(1)));
    assert!(
        call(s, "GET", &list, &w.a_reader, None)
            .await
            .1
            .as_array()
            .unwrap()
            .is_empty()
    );
    for b in [&mut laptop, &mut phone] {
        let (st, _, _) = b.get(s, "/t/acme/account").await;
        assert_eq!(st, StatusCode::SEE_OTHER, "signed out: sent to sign in");
    }
    let actions: Vec<String> = s
        .state
        .db
        .audit_events(&w.a, 0, 1000)
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    for a in ["session.list", "session.revoke", "session.revoke_all"] {
        assert!(actions.contains(&a.to_owned()), "{a} in {actions:?}");
    }
}

/// A client's own roles over the API (issue 21): made, assigned to a group, seen in effective
/// access at once, and kept to their client: another client's path, another tenant, a reader
/// are refused.
async fn client_roles_are_managed_over_the_api(s: &TestServer) {
    let w = world(s);
    let (staff, finance, _) = api_groups(s, &w).await;
    let admin = w.a_admin.as_str();
    let portal = w.portal.client_id.as_str();
    let roles = format!("/admin/t/acme/clients/{portal}/roles");
    let (st, made) = call(s, "POST", &roles, admin, Some(r#"{"name":"reports:read"}"#)).await;
    assert_eq!(st, StatusCode::CREATED, "{made}");
    let role = made["id"].as_str().unwrap().to_owned();
    let on_finance = format!("{roles}/{role}/groups/{finance}");
    assert_eq!(call(s, "PUT", &on_finance, admin, None).await.0, StatusCode::OK);
    let access = s.state.db.effective_access(&w.a, &w.alice.id).unwrap();
    assert_eq!(access.client_roles[&w.portal.client_id], ["reports:read"]);
    let (_, listed) = call(s, "GET", &roles, &w.a_reader, None).await;
    assert_eq!(listed[0]["name"], "reports:read");
    // Kept to its client and tenant.
    let other = s
        .state
        .db
        .create_client(&w.a, "test", &NewClient::from(&w.portal))
        .unwrap();
    let wrong = format!(
        "/admin/t/acme/clients/{}/roles/{role}/groups/{staff}",
        other.client_id
    );
    assert_eq!(call(s, "PUT", &wrong, admin, None).await.0, StatusCode::NOT_FOUND);
    let beta = format!("/admin/t/beta/clients/{portal}/roles");
    assert_eq!(
        call(s, "GET", &beta, &w.b_admin, None).await.0,
        StatusCode::NOT_FOUND
    );
    let (st, _) = call(s, "POST", &beta, &w.b_admin, Some(r#"{"name":"x"}"#)).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_eq!(
        call(s, "PUT", &on_finance, &w.a_reader, None).await.0,
        StatusCode::FORBIDDEN
    );
    // Unassigned, then deleted.
    assert_eq!(
        call(s, "DELETE", &on_finance, admin, None).await.0,
        StatusCode::OK
    );
    let access = s.state.db.effective_access(&w.a, &w.alice.id).unwrap();
    assert!(access.client_roles.is_empty(), "{access:?}");
    let gone = format!("{roles}/{role}");
    assert_eq!(call(s, "DELETE", &gone, admin, None).await.0, StatusCode::OK);
    assert_eq!(
        call(s, "DELETE", &gone, admin, None).await.0,
        StatusCode::NOT_FOUND
    );
}

latchkey_tests::e2e!(
    client_roles_are_managed_over_the_api,
    sessions_are_listed_and_ended_by_an_admin,
    groups_nest_and_roles_follow_over_the_api,
    group_changes_are_checked_and_undone_over_the_api,
    clients_are_created_once_and_deleted,
    users_are_listed_in_pages_with_filters,
    clients_change_by_merge_patch_under_if_match,
    parallel_guesses_get_no_more_than_the_limit,
    a_reader_sees_its_tenant_without_secrets,
    tenant_b_cannot_read_update_or_reference_tenant_a,
    only_an_admin_token_changes_users_and_every_call_is_audited,
    bad_tokens_are_refused,
    guessing_tokens_is_throttled,
);
