//! The admin API's system scope (issue 21): `/admin/system/…` opened by `lks_` system
//! credentials only. Tenants are created (with a first admin credential), read, renamed under
//! `If-Match`, deleted, and their data keys rotated; every route needs exactly its `system:`
//! permission (generated from the route table); tenant credentials never open it and system
//! credentials never open a tenant; the calls are audited in the chain `system`.
//! SQLite + memory and PostgreSQL + Redis.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use latchkey_core::{Permission, Permissions, TenantId};
use latchkey_server::{ADMIN_SYSTEM_PREFIX, ADMIN_SYSTEM_ROUTES};
use latchkey_store::{AuditFilter, AuditRepo, CredentialKind, NewAdminToken, SystemTokenRepo, TenantRepo};
use latchkey_tests::TestServer;
use latchkey_tests::admin::{call, system_token, with_role};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn system_all() -> Vec<Permission> {
    Permission::ALL
        .iter()
        .copied()
        .filter(|p| p.is_system())
        .collect()
}

fn system_chain(s: &TestServer) -> Vec<latchkey_core::AuditEvent> {
    s.state
        .db
        .audit_search(&TenantId::system(), &AuditFilter::default(), 0, 10_000)
        .unwrap()
}

/// A route's path with `{tenant}` filled.
fn fill(path: &str, slug: &str) -> String {
    format!("{ADMIN_SYSTEM_PREFIX}{}", path.replace("{tenant}", slug))
}

/// For each system route: every other system permission is 403, audited in the system chain
/// with the permission; its own alone gets through.
async fn each_system_route_needs_exactly_its_permission(s: &TestServer) {
    let root = system_token(s, &["system-admin"], &[]);
    let (st, v) = call(
        s,
        "POST",
        "/admin/system/tenants",
        &root,
        Some(r#"{"slug":"acme"}"#),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let before = system_chain(s).len();
    let mut refusals = 0;
    for r in ADMIN_SYSTEM_ROUTES {
        let path = fill(r.path, "acme");
        let body = (r.method != "GET" && r.method != "DELETE").then_some("{}");
        let all_but: Vec<Permission> = system_all().into_iter().filter(|p| *p != r.permission).collect();
        let (st, v) = call(s, r.method, &path, &system_token(s, &[], &all_but), body).await;
        assert_eq!(
            st,
            StatusCode::FORBIDDEN,
            "{} {path} without {}: {v}",
            r.method,
            r.permission
        );
        assert!(
            v["detail"].as_str().unwrap().contains(r.permission.as_str()),
            "{v}"
        );
        refusals += 1;
        // Only the permission: reads answer 2xx; writes go to a tenant that does not exist
        // (so the matrix changes nothing) and get past authorization.
        let only = system_token(s, &[], &[r.permission]);
        let path = if r.method == "GET" {
            path
        } else {
            fill(r.path, "missing")
        };
        let (st, v) = call(s, r.method, &path, &only, body).await;
        assert!(
            st != StatusCode::FORBIDDEN && st != StatusCode::UNAUTHORIZED && !st.is_server_error(),
            "{} {path} with only {}: {st} {v}",
            r.method,
            r.permission
        );
        assert!(
            r.method != "GET" || st.is_success(),
            "{} {path}: {st} {v}",
            r.method
        );
    }
    let denied: Vec<Value> = system_chain(s)
        .into_iter()
        .skip(before)
        .filter(|e| e.action == "admin.denied")
        .map(|e| e.details["needed"].clone())
        .collect();
    assert_eq!(denied.len(), refusals, "one audited refusal per system route");
}

/// Scopes don't mix: a tenant's all-powerful credential is 401 on every system route, and a
/// system credential with every system permission is 401 on a tenant's routes.
async fn tenant_and_system_credentials_do_not_cross(s: &TestServer) {
    let root = system_token(s, &["system-admin"], &[]);
    let (st, v) = call(
        s,
        "POST",
        "/admin/system/tenants",
        &root,
        Some(r#"{"slug":"acme"}"#),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let t = TenantId(v["id"].as_str().unwrap().to_owned());
    let tenant_admin = with_role(s, &t, "tenant-admin");
    for r in ADMIN_SYSTEM_ROUTES {
        let body = (r.method != "GET" && r.method != "DELETE").then_some("{}");
        let (st, v) = call(s, r.method, &fill(r.path, "acme"), &tenant_admin, body).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED, "{} {}: {v}", r.method, r.path);
    }
    for path in [
        "/admin/t/acme/users",
        "/admin/t/acme/clients",
        "/admin/t/acme/audit",
    ] {
        assert_eq!(
            call(s, "GET", path, &root, None).await.0,
            StatusCode::UNAUTHORIZED,
            "{path}"
        );
    }
    // The tenant still exists: nothing above changed it.
    assert!(s.state.db.tenant_by_slug("acme").unwrap().is_some());
    // A system credential holds system permissions only, and a tenant's never holds one.
    let bad = NewAdminToken {
        name: "x".into(),
        roles: vec!["tenant-admin".into()],
        permissions: Permissions::NONE,
        kind: CredentialKind::TokenHash("00".repeat(32)),
        expires_at: None,
    };
    assert!(s.state.db.create_system_token("test", &bad).is_err());
    let bad = NewAdminToken {
        roles: vec![],
        permissions: Permissions::of([Permission::UsersRead]),
        ..bad
    };
    assert!(s.state.db.create_system_token("test", &bad).is_err());
    let (st, v) = call(
        s,
        "POST",
        "/admin/t/acme/credentials",
        &tenant_admin,
        Some(r#"{"name":"up","permissions":["system:tenants:write"]}"#),
    )
    .await;
    assert!(
        st.is_client_error(),
        "a tenant credential can't hold system: {st} {v}"
    );
}

/// A tenant's life over the system scope: created with its first credential (which then
/// manages the tenant), listed, read with an ETag, renamed (a stale ETag is 412), its data key
/// rotated, deleted; every call in the system audit chain, which verifies.
#[allow(clippy::too_many_lines)] // one tenant's whole life, in order
async fn a_tenant_is_onboarded_and_removed_over_the_api(s: &TestServer) {
    let root = system_token(s, &["system-admin"], &[]);
    let body = json!({"slug": "acme", "display_name": "Acme",
                      "admin_credential": {"name": "ci", "roles": ["tenant-admin"]}})
    .to_string();
    let (st, made) = call(s, "POST", "/admin/system/tenants", &root, Some(&body)).await;
    assert_eq!(st, StatusCode::CREATED, "{made}");
    assert_eq!(made["slug"], "acme");
    assert!(made["issuer"].as_str().unwrap().ends_with("/t/acme"), "{made}");
    let lka = made["admin_credential"]["token"].as_str().unwrap().to_owned();
    assert!(lka.starts_with("lka_"));
    // The first credential manages the tenant, and its signing keys exist.
    let (st, v) = call(
        s,
        "POST",
        "/admin/t/acme/groups",
        &lka,
        Some(r#"{"name":"staff"}"#),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let (st, keys) = call(s, "GET", "/admin/t/acme/keys", &lka, None).await;
    assert_eq!(st, StatusCode::OK);
    assert!(!keys.as_array().unwrap().is_empty(), "{keys}");
    // Same slug again: 409; a bad first credential: 422 and no tenant made.
    let (st, _) = call(
        s,
        "POST",
        "/admin/system/tenants",
        &root,
        Some(r#"{"slug":"acme"}"#),
    )
    .await;
    assert_eq!(st, StatusCode::CONFLICT);
    let bad = r#"{"slug":"beta","admin_credential":{"name":"x","roles":["system-admin"]}}"#;
    let (st, v) = call(s, "POST", "/admin/system/tenants", &root, Some(bad)).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(s.state.db.tenant_by_slug("beta").unwrap().is_none());
    let (st, v) = call(
        s,
        "POST",
        "/admin/system/tenants",
        &root,
        Some(r#"{"slug":"beta","extra":1}"#),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");

    let (st, list) = call(s, "GET", "/admin/system/tenants", &root, None).await;
    assert_eq!(st, StatusCode::OK);
    let slugs: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["slug"].as_str().unwrap())
        .collect();
    assert_eq!(slugs, ["acme"]);

    // Rename under If-Match: the current ETag works once, then it is stale.
    let res = TestServer::client()
        .get(s.url("/admin/system/tenants/acme"))
        .bearer_auth(&root)
        .send()
        .await
        .unwrap();
    let etag = res.headers()["etag"].to_str().unwrap().to_owned();
    let patch = |tag: String, name: &'static str| {
        let root = root.clone();
        async move {
            let res = TestServer::client()
                .patch(s.url("/admin/system/tenants/acme"))
                .bearer_auth(&root)
                .header("content-type", "application/merge-patch+json")
                .header("if-match", tag)
                .body(json!({"display_name": name}).to_string())
                .send()
                .await
                .unwrap();
            (res.status(), res.json::<Value>().await.unwrap())
        }
    };
    let (st, v) = patch(etag.clone(), "Acme Corp").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["display_name"], "Acme Corp");
    let (st, _) = patch(etag.clone(), "Lost Update").await;
    assert_eq!(st, StatusCode::PRECONDITION_FAILED);
    // A delete under the stale ETag is refused too, and the tenant stays.
    let res = TestServer::client()
        .delete(s.url("/admin/system/tenants/acme"))
        .bearer_auth(&root)
        .header("if-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PRECONDITION_FAILED);
    assert!(s.state.db.tenant_by_slug("acme").unwrap().is_some());
    assert_eq!(
        s.state.db.tenant_by_slug("acme").unwrap().unwrap().display_name,
        "Acme Corp"
    );

    // A data-key rotation finishes in one call here and keeps sealed values readable.
    let (st, v) = call(s, "POST", "/admin/system/tenants/acme/rotate-dek", &root, None).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["done"], true, "{v}");
    let (st, _) = call(s, "GET", "/admin/t/acme/keys", &lka, None).await;
    assert_eq!(st, StatusCode::OK, "signing keys open under the new data key");

    let t = s.state.db.tenant_by_slug("acme").unwrap().unwrap();
    let (st, v) = call(s, "DELETE", "/admin/system/tenants/acme", &root, None).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(
        call(s, "GET", "/admin/system/tenants/acme", &root, None).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(s, "GET", "/admin/t/acme/users", &lka, None).await.0,
        StatusCode::NOT_FOUND
    );
    // The tenant's own chain stays, with its deletion.
    let own = s
        .state
        .db
        .audit_search(&t.id, &AuditFilter::default(), 0, 1000)
        .unwrap();
    assert!(
        own.iter()
            .any(|e| e.action == "tenant.delete" && e.actor.starts_with("system_token:"))
    );

    // The system chain names each call and the permission that let it through, and verifies.
    let actions: Vec<String> = system_chain(s).iter().map(|e| e.action.clone()).collect();
    for a in [
        "system_token.create",
        "tenant.create",
        "tenant.list",
        "tenant.read",
        "keys.rotate_dek",
        "tenant.delete",
    ] {
        assert!(actions.iter().any(|x| x == a), "{a} not in {actions:?}");
    }
    let (st, v) = call(s, "GET", "/admin/system/audit/verify", &root, None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["ok"], true, "{v}");
    let (st, v) = call(s, "GET", "/admin/system/audit?action=tenant.*", &root, None).await;
    assert_eq!(st, StatusCode::OK);
    let events = v["events"].as_array().unwrap();
    assert!(
        events
            .iter()
            .all(|e| e["action"].as_str().unwrap().starts_with("tenant."))
    );
    assert!(
        events
            .iter()
            .any(|e| e["actor"].as_str().unwrap().ends_with("#system:tenants:write")),
        "{v}"
    );
}

/// A tenant create retried with the same `Idempotency-Key` answers the first answer (the same
/// first credential, which works) and makes nothing more; another body with it is 422.
async fn a_retried_tenant_create_makes_one_tenant(s: &TestServer) {
    let root = system_token(s, &["system-admin"], &[]);
    let body = r#"{"slug":"acme","admin_credential":{"name":"ci","roles":["read-only"]}}"#;
    let post = |b: &'static str| {
        let root = root.clone();
        async move {
            let res = TestServer::client()
                .post(s.url("/admin/system/tenants"))
                .bearer_auth(&root)
                .header("content-type", "application/json")
                .header("idempotency-key", "onboard-acme-1")
                .body(b)
                .send()
                .await
                .unwrap();
            (res.status(), res.json::<Value>().await.unwrap())
        }
    };
    let (st, first) = post(body).await;
    assert_eq!(st, StatusCode::CREATED, "{first}");
    let (st, again) = post(body).await;
    assert_eq!(st, StatusCode::CREATED, "{again}");
    assert_eq!(first, again);
    let token = again["admin_credential"]["token"].as_str().unwrap();
    assert_eq!(
        call(s, "GET", "/admin/t/acme/users", token, None).await.0,
        StatusCode::OK
    );
    assert_eq!(s.state.db.list_tenants().unwrap().len(), 1);
    let (st, v) = post(r#"{"slug":"other"}"#).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    // A revoked system credential stops at once.
    let id = s.state.db.list_system_tokens().unwrap()[0].id.clone();
    s.state.db.revoke_system_token("test", &id).unwrap();
    assert_eq!(
        call(s, "GET", "/admin/system/tenants", &root, None).await.0,
        StatusCode::UNAUTHORIZED
    );
}

latchkey_tests::e2e!(
    each_system_route_needs_exactly_its_permission,
    tenant_and_system_credentials_do_not_cross,
    a_tenant_is_onboarded_and_removed_over_the_api,
    a_retried_tenant_create_makes_one_tenant,
);
