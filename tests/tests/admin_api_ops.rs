//! The admin API's operator endpoints: SAML connections, signing keys, tenant policies and
//! audit verification, each with its attacks tried (another tenant's token, a read-only token,
//! a lost update, a replayed create, bad metadata and bad patches). Runs on SQLite + memory and
//! PostgreSQL + Redis.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use latchkey_core::{Permission, TenantId, TenantPolicy};
use latchkey_store::{AuditFilter, AuditRepo, NewTenant, SamlRepo, TenantRepo};
use latchkey_tests::TestServer;
use latchkey_tests::saml_idp::{SamlIdp, metadata_xml};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

struct World {
    a: TenantId,
    a_reader: String,
    a_admin: String,
    b_admin: String,
}

/// What a read-only credential of these endpoints holds.
const READS: [Permission; 4] = [
    Permission::SamlRead,
    Permission::KeysRead,
    Permission::PoliciesRead,
    Permission::AuditRead,
];

/// A token with the reads, and with the writes when `writes`.
fn token(s: &TestServer, t: &TenantId, writes: bool) -> String {
    let mut perms = READS.to_vec();
    if writes {
        perms.extend([
            Permission::SamlWrite,
            Permission::KeysManage,
            Permission::PoliciesWrite,
        ]);
    }
    latchkey_tests::admin::token(s, t, &perms)
}

/// Tenants `acme` and `beta`, each with its signing keys; a reader and an admin token of acme,
/// an admin token of beta.
fn world(s: &TestServer) -> World {
    let tenant = |slug: &str| {
        let t = s
            .state
            .db
            .create_tenant(
                "test",
                &NewTenant {
                    slug: slug.into(),
                    display_name: None,
                    policy: TenantPolicy::default(),
                },
            )
            .unwrap()
            .id;
        s.state.keys.ensure_tenant(&t, "test").unwrap();
        t
    };
    let (a, b) = (tenant("acme"), tenant("beta"));
    World {
        a_reader: token(s, &a, false),
        a_admin: token(s, &a, true),
        b_admin: token(s, &b, true),
        a,
    }
}

/// One call: `body` as JSON (or with the content type in `headers`), answered as (status,
/// JSON body or null, headers).
async fn call(
    s: &TestServer,
    (method, path): (&str, &str),
    token: &str,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> (StatusCode, Value, HeaderMap) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut r = TestServer::client()
        .request(method, s.url(path))
        .bearer_auth(token);
    if let Some(b) = body {
        r = r.header("content-type", "application/json").body(b.to_owned());
    }
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    let res = r.send().await.unwrap();
    let (status, headers) = (res.status(), res.headers().clone());
    (status, res.json().await.unwrap_or(Value::Null), headers)
}

fn etag(h: &HeaderMap) -> String {
    h["etag"].to_str().unwrap().to_owned()
}

/// A problem document (RFC 9457) of `status` whose detail contains `says`.
fn problem(got: &(StatusCode, Value, HeaderMap), status: StatusCode, says: &str) {
    assert_eq!(got.0, status, "{}", got.1);
    assert_eq!(got.2["content-type"], "application/problem+json", "{}", got.1);
    assert_eq!(got.1["status"], status.as_u16());
    let detail = got.1["detail"].as_str().unwrap_or_default();
    assert!(detail.contains(says), "{detail:?} should say {says:?}");
}

fn events(s: &TestServer, t: &TenantId, action: &str) -> Vec<latchkey_core::AuditEvent> {
    let filter = AuditFilter {
        action: Some(action.into()),
        ..AuditFilter::default()
    };
    s.state.db.audit_search(t, &filter, 0, 1000).unwrap()
}

/// Connects `corp` in acme from inline metadata.
async fn corp(s: &TestServer, admin: &str) {
    let (xml, _) = metadata_xml(s, "https://idp.acme.test/saml");
    let body =
        json!({"name": "corp", "metadata_xml": xml, "options": {"domains": ["acme.test"]}}).to_string();
    let (st, made, _) = call(
        s,
        ("POST", "/admin/t/acme/saml-connections"),
        admin,
        Some(&body),
        &[],
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{made}");
}

async fn signing_keys_follow_the_key_ring_state_machine(s: &TestServer) {
    let w = world(s);
    let admin = w.a_admin.as_str();
    let (st, keys, _) = call(s, ("GET", "/admin/t/acme/keys"), &w.a_reader, None, &[]).await;
    assert_eq!(st, StatusCode::OK);
    let keys = keys.as_array().unwrap().clone();
    assert!(keys.len() >= 2, "{keys:?}");
    for k in &keys {
        let members: Vec<&str> = k.as_object().unwrap().keys().map(String::as_str).collect();
        for m in &members {
            assert!(
                [
                    "kid",
                    "alg",
                    "state",
                    "created_at",
                    "activated_at",
                    "retired_at",
                    "removed_at"
                ]
                .contains(m),
                "no key material in a listing: {m}"
            );
        }
    }
    let old = keys
        .iter()
        .find(|k| k["alg"] == "ES256" && k["state"] == "active")
        .unwrap()["kid"]
        .as_str()
        .unwrap()
        .to_owned();

    // A rotation is a create: 201, and a retry with the same key makes no second key.
    let retry = [("idempotency-key", "rotate-1")];
    let body = Some(r#"{"alg":"ES256"}"#);
    let first = call(s, ("POST", "/admin/t/acme/keys/rotate"), admin, body, &retry).await;
    assert_eq!(first.0, StatusCode::CREATED, "{}", first.1);
    assert_eq!(first.1["state"], "pending");
    let again = call(s, ("POST", "/admin/t/acme/keys/rotate"), admin, body, &retry).await;
    assert_eq!(again.0, StatusCode::CREATED);
    assert_eq!(again.1["kid"], first.1["kid"]);
    assert_eq!(again.2["idempotent-replayed"], "true");
    let new = first.1["kid"].as_str().unwrap().to_owned();
    let (_, keys, _) = call(s, ("GET", "/admin/t/acme/keys"), admin, None, &[]).await;
    assert_eq!(keys.as_array().unwrap().len(), 3, "one key made, not two");

    // The only active key can't retire; a pending one activates once, then not again.
    let path = format!("/admin/t/acme/keys/{old}/retire");
    let refused = call(s, ("POST", &path), admin, None, &[]).await;
    problem(&refused, StatusCode::CONFLICT, "only active");
    let path = format!("/admin/t/acme/keys/{new}/activate");
    let (st, key, _) = call(s, ("POST", &path), admin, None, &[]).await;
    assert_eq!((st, key["state"].as_str()), (StatusCode::OK, Some("active")));
    let refused = call(s, ("POST", &path), admin, None, &[]).await;
    problem(&refused, StatusCode::CONFLICT, "only a pending key");

    // The replaced key is retired by the activation; revoking it takes it out of JWKS.
    let path = format!("/admin/t/acme/keys/{old}/revoke");
    let (st, key, _) = call(s, ("POST", &path), admin, None, &[]).await;
    assert_eq!(
        (st, key["state"].as_str()),
        (StatusCode::OK, Some("revoked")),
        "{key}"
    );
    let refused = call(s, ("POST", &path), admin, None, &[]).await;
    problem(&refused, StatusCode::CONFLICT, "already revoked");
    let unknown = call(s, ("POST", "/admin/t/acme/keys/nope/retire"), admin, None, &[]).await;
    problem(&unknown, StatusCode::NOT_FOUND, "signing key");
    assert_eq!(events(s, &w.a, "keys.list").len(), 2);
    assert_eq!(events(s, &w.a, "keys.activate").len(), 1);
}

async fn another_tenants_keys_and_connections_are_not_found(s: &TestServer) {
    let w = world(s);
    let (xml, _) = metadata_xml(s, "https://idp.acme.test/saml");
    let body = json!({"name": "corp", "metadata_xml": xml}).to_string();
    let (st, _, _) = call(
        s,
        ("POST", "/admin/t/acme/saml-connections"),
        &w.a_admin,
        Some(&body),
        &[],
    )
    .await;
    assert_eq!(st, StatusCode::CREATED);
    let (_, keys, _) = call(s, ("GET", "/admin/t/acme/keys"), &w.a_admin, None, &[]).await;
    let kid = keys[0]["kid"].as_str().unwrap().to_owned();
    let b = w.b_admin.as_str();
    for (method, path) in [
        ("POST", format!("/admin/t/beta/keys/{kid}/revoke")),
        ("POST", format!("/admin/t/beta/keys/{kid}/activate")),
        ("GET", "/admin/t/beta/saml-connections/corp".to_owned()),
        ("PATCH", "/admin/t/beta/saml-connections/corp".to_owned()),
        ("DELETE", "/admin/t/beta/saml-connections/corp".to_owned()),
        ("POST", "/admin/t/beta/saml-connections/corp/refresh".to_owned()),
        (
            "GET",
            "/admin/t/beta/saml-connections/corp/certificates".to_owned(),
        ),
    ] {
        let body = (method == "PATCH").then_some(r#"{"display_name":"Mine"}"#);
        let got = call(s, (method, &path), b, body, &[]).await;
        assert_eq!(got.0, StatusCode::NOT_FOUND, "{method} {path}: {}", got.1);
    }
    let (st, list, _) = call(s, ("GET", "/admin/t/beta/saml-connections"), b, None, &[]).await;
    assert_eq!((st, list), (StatusCode::OK, json!([])));
    // Tenant B's token is no credential for tenant A at all.
    let (st, _, _) = call(s, ("GET", "/admin/t/acme/keys"), b, None, &[]).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let ring = s.state.keys.list(&w.a).unwrap();
    assert!(
        ring.iter().all(|k| k.state.as_str() != "revoked"),
        "nothing of A changed"
    );
    let c = s.state.db.saml_connection_by_name(&w.a, "corp").unwrap().unwrap();
    assert_eq!(c.display_name, "corp");
}

async fn a_read_only_token_is_refused_every_write_and_audited(s: &TestServer) {
    let w = world(s);
    let reader = w.a_reader.as_str();
    let (xml, _) = metadata_xml(s, "https://idp.acme.test/saml");
    let create = json!({"name": "corp", "metadata_xml": xml}).to_string();
    let writes = [
        ("POST", "/admin/t/acme/keys/rotate", None),
        ("POST", "/admin/t/acme/keys/any/activate", None),
        ("POST", "/admin/t/acme/keys/any/retire", None),
        ("POST", "/admin/t/acme/keys/any/revoke", None),
        (
            "PATCH",
            "/admin/t/acme/policies",
            Some(r#"{"password":{"min_length":8}}"#),
        ),
        ("POST", "/admin/t/acme/saml-connections", Some(create.as_str())),
        ("PATCH", "/admin/t/acme/saml-connections/corp", Some("{}")),
        ("DELETE", "/admin/t/acme/saml-connections/corp", None),
        ("POST", "/admin/t/acme/saml-connections/corp/refresh", None),
    ];
    for (method, path, body) in writes {
        let got = call(s, (method, path), reader, body, &[]).await;
        problem(&got, StatusCode::FORBIDDEN, "");
    }
    assert_eq!(events(s, &w.a, "admin.denied").len(), writes.len());
    assert!(s.state.db.list_saml_connections(&w.a).unwrap().is_empty());
    // Reads are allowed and audited.
    for path in [
        "/admin/t/acme/keys",
        "/admin/t/acme/policies",
        "/admin/t/acme/audit/verify",
    ] {
        let (st, _, _) = call(s, ("GET", path), reader, None, &[]).await;
        assert_eq!(st, StatusCode::OK, "{path}");
    }
    assert_eq!(events(s, &w.a, "policy.read").len(), 1);
}

async fn policies_change_by_merge_patch_under_if_match(s: &TestServer) {
    let w = world(s);
    let admin = w.a_admin.as_str();
    let (st, policy, h) = call(s, ("GET", "/admin/t/acme/policies"), admin, None, &[]).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(policy["password"]["min_length"], 12);
    assert!(policy["risk"].get("webhook_secret_sealed").is_none());
    let v1 = etag(&h);
    let patch = r##"{"password":{"min_length":14},"branding":{"primary_color":"#0B57D0"}}"##;
    let (st, after, h) = call(
        s,
        ("PATCH", "/admin/t/acme/policies"),
        admin,
        Some(patch),
        &[("if-match", &v1)],
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{after}");
    assert_eq!(after["password"]["min_length"], 14);
    assert_eq!(
        after["branding"]["primary_color"], "#0b57d0",
        "normalized like the CLI"
    );
    assert_eq!(after["password"]["max_length"], 128, "the rest stays");
    let v2 = etag(&h);
    assert_ne!(v1, v2);
    let stored = s.state.db.tenant(&w.a).unwrap().unwrap();
    assert_eq!(stored.policy.password.min_length, 14);

    // A lost update: the second writer with the first version gets 412 and writes nothing.
    let lost = r#"{"password":{"min_length":20}}"#;
    let stale = call(
        s,
        ("PATCH", "/admin/t/acme/policies"),
        admin,
        Some(lost),
        &[("if-match", &v1)],
    )
    .await;
    problem(&stale, StatusCode::PRECONDITION_FAILED, "");
    assert_eq!(
        s.state
            .db
            .tenant(&w.a)
            .unwrap()
            .unwrap()
            .policy
            .password
            .min_length,
        14
    );
}

async fn policy_patches_that_break_a_rule_or_no_policy_are_refused(s: &TestServer) {
    let w = world(s);
    let admin = w.a_admin.as_str();
    let (_, _, h) = call(s, ("GET", "/admin/t/acme/policies"), admin, None, &[]).await;
    let v1 = etag(&h);
    // A rule broken: 422 naming the field; nothing written.
    let weak = call(
        s,
        ("PATCH", "/admin/t/acme/policies"),
        admin,
        Some(r#"{"password":{"min_length":4}}"#),
        &[],
    )
    .await;
    problem(&weak, StatusCode::UNPROCESSABLE_ENTITY, "password.min_length");
    let wide = r#"{"throttle":{"address_allow":["0.0.0.0/0"]}}"#;
    let wide = call(s, ("PATCH", "/admin/t/acme/policies"), admin, Some(wide), &[]).await;
    problem(&wide, StatusCode::UNPROCESSABLE_ENTITY, "throttle.address_allow");
    // Not a patch of a policy: 400; not JSON: 415.
    for bad in [
        r#"{"pasword":{"min_length":14}}"#,
        r#"{"password":{"min_length":"long"}}"#,
        r#"{"risk":{"webhook_url":"https://hooks.acme.test/x"}}"#,
        r#"{"mfa_required":true}"#,
        "[1]",
        "{not json",
    ] {
        let got = call(s, ("PATCH", "/admin/t/acme/policies"), admin, Some(bad), &[]).await;
        problem(&got, StatusCode::BAD_REQUEST, "");
    }
    let res = TestServer::client()
        .patch(s.url("/admin/t/acme/policies"))
        .bearer_auth(admin)
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(
        s.state.db.tenant(&w.a).unwrap().unwrap().updated_at.to_string(),
        v1.trim_matches('"')
    );
    assert!(events(s, &w.a, "tenant.update").is_empty());
}

async fn the_audit_chain_is_verified_over_the_api(s: &TestServer) {
    let w = world(s);
    let (st, v, _) = call(s, ("GET", "/admin/t/acme/audit/verify"), &w.a_reader, None, &[]).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["ok"], true, "{v}");
    assert!(v["events"].as_u64().unwrap() > 0);
    assert!(v["head_hash"].is_string());
    let (_, v2, _) = call(s, ("GET", "/admin/t/acme/audit/verify"), &w.a_reader, None, &[]).await;
    assert_eq!(
        v2["events"].as_u64().unwrap(),
        v["events"].as_u64().unwrap() + 1,
        "the first verification was itself recorded"
    );
    let got = call(
        s,
        ("GET", "/admin/t/acme/audit/verify?deep=1"),
        &w.a_reader,
        None,
        &[],
    )
    .await;
    problem(&got, StatusCode::BAD_REQUEST, "");
}

/// `keys test-token` and `audit retention` over the API: the token is signed by the active key
/// the list shows; a bad algorithm is 400; both need their write permission.
async fn a_test_token_and_retention_run_over_the_api(s: &TestServer) {
    let w = world(s);
    let path = ("POST", "/admin/t/acme/keys/test-token");
    let (st, v, _) = call(s, path, &w.a_admin, Some(r#"{"alg":"RS256"}"#), &[]).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["token"].as_str().unwrap().split('.').count(), 3);
    let (_, keys, _) = call(s, ("GET", "/admin/t/acme/keys"), &w.a_reader, None, &[]).await;
    let active: Vec<&Value> = keys
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["state"] == "active" && k["alg"] == "RS256")
        .collect();
    assert_eq!(active.len(), 1, "{keys}");
    assert_eq!(active[0]["kid"], v["kid"], "signed by the active RS256 key");
    let got = call(s, path, &w.a_admin, Some(r#"{"alg":"HS256"}"#), &[]).await;
    problem(&got, StatusCode::BAD_REQUEST, "");
    let got = call(s, path, &w.a_reader, None, &[]).await;
    problem(&got, StatusCode::FORBIDDEN, "keys:manage");

    let path = ("POST", "/admin/t/acme/audit/retention");
    let got = call(s, path, &w.a_reader, None, &[]).await;
    problem(&got, StatusCode::FORBIDDEN, "policies:write");
    let (st, v, _) = call(s, path, &w.a_admin, None, &[]).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(
        v["audit_events_deleted"], 0,
        "nothing is older than the retention: {v}"
    );
    assert_eq!(events(s, &w.a, "audit.retention_run").len(), 1);
}

async fn saml_connections_are_created_once_and_listed(s: &TestServer) {
    let w = world(s);
    let admin = w.a_admin.as_str();
    let (xml, cert) = metadata_xml(s, "https://idp.acme.test/saml");
    let body = json!({
        "name": "corp", "display_name": "Corp SSO", "metadata_xml": xml,
        "options": {"domains": ["Acme.test"], "jit": false},
    })
    .to_string();
    let retry = [("idempotency-key", "corp-1")];
    let (st, made, _) = call(
        s,
        ("POST", "/admin/t/acme/saml-connections"),
        admin,
        Some(&body),
        &retry,
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{made}");
    assert_eq!(made["idp"]["entity_id"], "https://idp.acme.test/saml");
    assert_eq!(made["options"]["domains"], json!(["acme.test"]));
    assert_eq!(made["options"]["jit"], false);
    assert!(made.get("sp_key_sealed").is_none(), "the SP key never leaves");
    let (st, again, h) = call(
        s,
        ("POST", "/admin/t/acme/saml-connections"),
        admin,
        Some(&body),
        &retry,
    )
    .await;
    assert_eq!((st, &again["id"]), (StatusCode::CREATED, &made["id"]));
    assert_eq!(h["idempotent-replayed"], "true");
    assert_eq!(s.state.db.list_saml_connections(&w.a).unwrap().len(), 1);
    let taken = call(
        s,
        ("POST", "/admin/t/acme/saml-connections"),
        admin,
        Some(&body),
        &[],
    )
    .await;
    problem(&taken, StatusCode::CONFLICT, "");

    let (st, list, _) = call(
        s,
        ("GET", "/admin/t/acme/saml-connections?q=co&domain=acme.test"),
        &w.a_reader,
        None,
        &[],
    )
    .await;
    assert_eq!((st, list.as_array().unwrap().len()), (StatusCode::OK, 1));
    let (_, none, _) = call(s, ("GET", "/admin/t/acme/saml-connections?q=x"), admin, None, &[]).await;
    assert_eq!(none, json!([]));
    let (st, certs, _) = call(
        s,
        ("GET", "/admin/t/acme/saml-connections/corp/certificates"),
        &w.a_reader,
        None,
        &[],
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let info = latchkey_saml::certs::info(&cert).unwrap();
    assert_eq!(certs[0]["sha256"], info.sha256);
    assert!(certs[0]["subject"].as_str().unwrap().contains("Test IdP signing"));
    assert!(certs[0]["issuer"].is_string() && certs[0]["valid_now"] == true);
    assert!(certs[0]["not_after"].as_i64().unwrap() > certs[0]["not_before"].as_i64().unwrap());
}

async fn saml_connections_change_by_merge_patch_under_if_match(s: &TestServer) {
    let w = world(s);
    let admin = w.a_admin.as_str();
    corp(s, admin).await;
    let (st, _, h) = call(
        s,
        ("GET", "/admin/t/acme/saml-connections/corp"),
        &w.a_reader,
        None,
        &[],
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let v1 = etag(&h);
    let patch = r#"{"display_name":"Acme Corp","options":{"link_existing":true}}"#;
    let (st, after, h) = call(
        s,
        ("PATCH", "/admin/t/acme/saml-connections/corp"),
        admin,
        Some(patch),
        &[("if-match", &v1)],
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{after}");
    assert_eq!(
        (after["display_name"].as_str(), &after["options"]["link_existing"]),
        (Some("Acme Corp"), &json!(true))
    );
    assert_eq!(
        after["options"]["domains"],
        json!(["acme.test"]),
        "options merge member by member"
    );
    assert_ne!(etag(&h), v1);
    let stale = call(
        s,
        ("PATCH", "/admin/t/acme/saml-connections/corp"),
        admin,
        Some(r#"{"display_name":"Lost"}"#),
        &[("if-match", &v1)],
    )
    .await;
    problem(&stale, StatusCode::PRECONDITION_FAILED, "");
    for bad in [
        r#"{"name":"other"}"#,
        r#"{"idp":{"entity_id":"https://evil.test"}}"#,
        r#"{"options":{"jitt":true}}"#,
        r#"{"sp_key_sealed":"x"}"#,
        r#"{"options":{"role_map":[["admins","no-such-role"]]}}"#,
        r#"{"metadata_xml":"<not-metadata/>"}"#,
    ] {
        let got = call(
            s,
            ("PATCH", "/admin/t/acme/saml-connections/corp"),
            admin,
            Some(bad),
            &[],
        )
        .await;
        problem(&got, StatusCode::BAD_REQUEST, "");
    }
    let c = s.state.db.saml_connection_by_name(&w.a, "corp").unwrap().unwrap();
    assert_eq!(c.display_name, "Acme Corp", "refused patches wrote nothing");
}

async fn saml_connections_are_removed_under_if_match(s: &TestServer) {
    let w = world(s);
    let admin = w.a_admin.as_str();
    corp(s, admin).await;
    let (_, _, h) = call(
        s,
        ("GET", "/admin/t/acme/saml-connections/corp"),
        admin,
        None,
        &[],
    )
    .await;
    let v1 = etag(&h);
    let patch = r#"{"display_name":"Acme Corp"}"#;
    let (st, _, _) = call(
        s,
        ("PATCH", "/admin/t/acme/saml-connections/corp"),
        admin,
        Some(patch),
        &[],
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let inline = call(
        s,
        ("POST", "/admin/t/acme/saml-connections/corp/refresh"),
        admin,
        None,
        &[],
    )
    .await;
    problem(&inline, StatusCode::CONFLICT, "inline");
    let stale = call(
        s,
        ("DELETE", "/admin/t/acme/saml-connections/corp"),
        admin,
        None,
        &[("if-match", &v1)],
    )
    .await;
    problem(&stale, StatusCode::PRECONDITION_FAILED, "");
    let (st, gone, _) = call(
        s,
        ("DELETE", "/admin/t/acme/saml-connections/corp"),
        admin,
        None,
        &[],
    )
    .await;
    assert_eq!((st, &gone["name"]), (StatusCode::OK, &json!("corp")));
    let missing = call(
        s,
        ("GET", "/admin/t/acme/saml-connections/corp"),
        admin,
        None,
        &[],
    )
    .await;
    problem(&missing, StatusCode::NOT_FOUND, "SAML connection");
    for action in [
        "saml.connection.create",
        "saml.connection.update",
        "saml.connection.delete",
        "saml.connection.read",
    ] {
        assert!(!events(s, &w.a, action).is_empty(), "{action} audited");
    }
}

async fn bad_metadata_is_refused_with_a_problem_document(s: &TestServer) {
    let w = world(s);
    let admin = w.a_admin.as_str();
    let post = |body: String| async move {
        call(
            s,
            ("POST", "/admin/t/acme/saml-connections"),
            admin,
            Some(&body),
            &[],
        )
        .await
    };
    let got = post(json!({"name": "corp", "metadata_xml": "<md:EntityDescriptor"}).to_string()).await;
    problem(&got, StatusCode::BAD_REQUEST, "metadata was refused");
    let doctype = r#"<!DOCTYPE x [<!ENTITY e "e">]><x>&e;</x>"#;
    let got = post(json!({"name": "corp", "metadata_xml": doctype}).to_string()).await;
    problem(&got, StatusCode::BAD_REQUEST, "refused");
    let got = post(json!({"name": "corp"}).to_string()).await;
    problem(&got, StatusCode::BAD_REQUEST, "metadata_xml or metadata_url");
    let (xml, _) = metadata_xml(s, "https://idp.acme.test/saml");
    let got = post(
        json!({"name": "corp", "metadata_xml": xml, "metadata_url": "https://idp.acme.test/m"}).to_string(),
    )
    .await;
    problem(&got, StatusCode::BAD_REQUEST, "one of them");
    let got = post(json!({"name": "corp", "metadata_xml": xml, "options": {"bogus": 1}}).to_string()).await;
    problem(&got, StatusCode::BAD_REQUEST, "options.bogus");
    let got = post(json!({"name": "corp", "metadata_xml": xml, "secret": "x"}).to_string()).await;
    problem(&got, StatusCode::BAD_REQUEST, "");
    // The fetch keeps its limits: plain http off loopback and user information are refused
    // before anything is fetched.
    for url in [
        "http://idp.example.com/metadata",
        "https://user:pw@idp.example.com/m",
        "file:///etc/passwd",
    ] {
        let got = post(json!({"name": "corp", "metadata_url": url}).to_string()).await;
        problem(&got, StatusCode::BAD_REQUEST, "metadata URL");
    }
    assert!(s.state.db.list_saml_connections(&w.a).unwrap().is_empty());
}

/// The one detail of a metadata fetch that failed or was refused, whatever the cause.
const FETCH_FAILED: &str = "The metadata could not be fetched from metadata_url";

/// A loopback listener that records whether anything connected to it.
struct Listener {
    port: u16,
    socket: std::net::TcpListener,
}

impl Listener {
    fn start() -> Self {
        let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        socket.set_nonblocking(true).unwrap();
        Listener {
            port: socket.local_addr().unwrap().port(),
            socket,
        }
    }

    fn was_connected(&self) -> bool {
        self.socket.accept().is_ok()
    }
}

/// SECURITY: server-side request forgery. With the default `outbound_allow_private`, a
/// metadata URL whose host is or resolves to a non-public address (loopback by address or by
/// name, RFC 1918, the cloud metadata address, an IPv4-mapped loopback) is refused over the
/// API, on create, on a change and on refresh, and by the hourly refresh, before any
/// connection; the answer is the same 422 as any failed fetch, the refusal is audited.
async fn metadata_urls_on_internal_addresses_are_refused_without_a_connection(s: &TestServer) {
    let w = world(s);
    let admin = w.a_admin.as_str();
    let listener = Listener::start();
    let port = listener.port;
    let urls = [
        format!("http://127.0.0.1:{port}/metadata"),
        format!("http://localhost:{port}/metadata"),
        format!("https://[::ffff:127.0.0.1]:{port}/metadata"),
        format!("http://[::1]:{port}/metadata"),
        "https://10.0.0.1/metadata".to_owned(),
        "https://192.168.1.1/metadata".to_owned(),
        "https://169.254.169.254/latest/meta-data/".to_owned(),
        "https://100.64.0.1/metadata".to_owned(),
        "https://[fd00::1]/metadata".to_owned(),
    ];
    let mut details = Vec::new();
    for url in &urls {
        let body = json!({"name": "corp", "metadata_url": url}).to_string();
        let got = call(
            s,
            ("POST", "/admin/t/acme/saml-connections"),
            admin,
            Some(&body),
            &[],
        )
        .await;
        problem(&got, StatusCode::UNPROCESSABLE_ENTITY, FETCH_FAILED);
        details.push(got.1["detail"].clone());
    }
    assert!(
        details.windows(2).all(|d| d[0] == d[1]),
        "one detail for all: {details:?}"
    );
    assert!(s.state.db.list_saml_connections(&w.a).unwrap().is_empty());
    let refused = events(s, &w.a, "saml.connection.create");
    assert_eq!(refused.len(), urls.len());
    assert!(
        refused
            .iter()
            .all(|e| e.outcome == latchkey_core::Outcome::Failure)
    );
    for e in &refused {
        let error = e.details["error"].as_str().unwrap_or_default();
        assert!(error.contains("which this server does not call"), "{error}");
    }

    // A connection made from a document can't be pointed at an internal address either.
    corp(s, admin).await;
    let got = call(
        s,
        ("PATCH", "/admin/t/acme/saml-connections/corp"),
        admin,
        Some(&json!({"metadata_url": urls[0]}).to_string()),
        &[],
    )
    .await;
    problem(&got, StatusCode::UNPROCESSABLE_ENTITY, FETCH_FAILED);
    let c = s.state.db.saml_connection_by_name(&w.a, "corp").unwrap().unwrap();
    assert_eq!(c.metadata_url, None);

    stored_internal_urls_are_not_refreshed(s, &w, &c, &urls[1], port).await;
    assert!(!listener.was_connected(), "nothing was fetched");
}

/// SECURITY: server-side request forgery through the webhook. A webhook call queued for an
/// internal address (a URL set before the guard, or by the operator without the opt-in) is
/// attempted and refused before any connection: it fails and waits for its retry.
async fn webhook_calls_to_internal_addresses_are_not_made(s: &TestServer) {
    use latchkey_store::{Channel, MailOutbox};
    let w = world(s);
    let listener = Listener::start();
    let url = format!("http://127.0.0.1:{}/hooks/latchkey", listener.port);
    let sealed = s
        .state
        .keys
        .seal(&w.a, latchkey_services::webhook::secret_aad(&w.a), b"whsec_test")
        .unwrap();
    let mut policy = TenantPolicy::default();
    policy.risk.webhook_url = Some(url.clone());
    policy.risk.webhook_secret_sealed = Some(sealed);
    let update = latchkey_store::TenantUpdate {
        display_name: None,
        policy: Some(policy),
    };
    s.state.db.update_tenant(&w.a, "test", &update).unwrap();
    let call = latchkey_services::mail::compose(
        &s.state.keys,
        &*s.state.rng,
        Channel::Webhook,
        &w.a,
        &url,
        "risk.deny",
        "{}",
    )
    .unwrap();
    s.state.db.queue_mail(&w.a, &call).unwrap();
    assert_eq!(s.state.db.due_mail(&[Channel::Webhook], 10).unwrap().len(), 1);
    assert_eq!(latchkey_server::deliver_due(&s.state).await.unwrap(), 0);
    assert!(
        s.state.db.due_mail(&[Channel::Webhook], 10).unwrap().is_empty(),
        "attempted, failed, waiting for its retry"
    );
    assert!(!listener.was_connected(), "no connection was made");
}

/// A connection whose stored URL is internal (set by the operator's CLI, or before the
/// guard): the refresh over the API and the hourly one refuse it, and the error the tenant can
/// read names no port.
async fn stored_internal_urls_are_not_refreshed(
    s: &TestServer,
    w: &World,
    c: &latchkey_core::SamlConnection,
    url: &str,
    port: u16,
) {
    let admin = w.a_admin.as_str();
    let stored = latchkey_store::SamlConnectionUpdate {
        metadata_url: Some(Some(url.to_owned())),
        ..Default::default()
    };
    s.state
        .db
        .update_saml_connection_if(&w.a, "test", &c.id, &stored, None)
        .unwrap();
    let got = call(
        s,
        ("POST", "/admin/t/acme/saml-connections/corp/refresh"),
        admin,
        None,
        &[],
    )
    .await;
    problem(&got, StatusCode::UNPROCESSABLE_ENTITY, FETCH_FAILED);
    let err = latchkey_server::refresh_metadata(&s.state, &w.a, &c.id)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("loopback"), "{err}");
    let after = s.state.db.saml_connection(&w.a, &c.id).unwrap().unwrap();
    assert_eq!(after.idp, c.idp, "the metadata stays");
    let recorded = after.metadata_error.unwrap();
    assert!(
        recorded.contains("loopback") && !recorded.contains(&port.to_string()),
        "{recorded}"
    );
}

/// With the operator's opt-in (`LATCHKEY_OUTBOUND_ALLOW_PRIVATE=127.0.0.1`) the test IdP on
/// loopback is fetched and refreshed; a fetch that fails answers the same detail whether the
/// URL is 404, nobody listens, or the address is still refused (10.0.0.1 is not allowed).
async fn a_connection_from_a_url_is_fetched_and_refreshed(s: &TestServer) {
    let w = world(s);
    let idp = SamlIdp::start();
    let admin = w.a_admin.as_str();
    let body = json!({"name": "corp", "metadata_url": idp.metadata_url}).to_string();
    let (st, made, _) = call(
        s,
        ("POST", "/admin/t/acme/saml-connections"),
        admin,
        Some(&body),
        &[],
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{made}");
    assert_eq!(made["idp"]["entity_id"], idp.entity_id.as_str());
    assert_eq!(made["metadata_url"], idp.metadata_url.as_str());
    assert!(made["next_refresh_at"].is_i64());
    let (st, after, _) = call(
        s,
        ("POST", "/admin/t/acme/saml-connections/corp/refresh"),
        admin,
        None,
        &[],
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{after}");
    assert_eq!(after["changed"], false);
    assert!(after["metadata_refreshed_at"].is_i64());
    let c = s.state.db.saml_connection_by_name(&w.a, "corp").unwrap().unwrap();
    latchkey_server::refresh_metadata(&s.state, &w.a, &c.id)
        .await
        .unwrap();
    // New URLs that fail are refused with one detail and change nothing.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut details = Vec::new();
    for broken in [
        format!("{}/no-such-metadata", idp.base_url),
        format!("http://127.0.0.1:{closed}/metadata"),
        "https://10.0.0.1/metadata".to_owned(),
    ] {
        let got = call(
            s,
            ("PATCH", "/admin/t/acme/saml-connections/corp"),
            admin,
            Some(&json!({"metadata_url": broken}).to_string()),
            &[],
        )
        .await;
        problem(&got, StatusCode::UNPROCESSABLE_ENTITY, FETCH_FAILED);
        details.push(got.1["detail"].clone());
    }
    assert!(details.windows(2).all(|d| d[0] == d[1]), "{details:?}");
    let c = s.state.db.saml_connection_by_name(&w.a, "corp").unwrap().unwrap();
    assert_eq!(c.metadata_url.as_deref(), Some(idp.metadata_url.as_str()));
}

latchkey_tests::e2e!(
    a_test_token_and_retention_run_over_the_api,
    signing_keys_follow_the_key_ring_state_machine,
    another_tenants_keys_and_connections_are_not_found,
    a_read_only_token_is_refused_every_write_and_audited,
    policies_change_by_merge_patch_under_if_match,
    policy_patches_that_break_a_rule_or_no_policy_are_refused,
    the_audit_chain_is_verified_over_the_api,
    saml_connections_are_created_once_and_listed,
    saml_connections_change_by_merge_patch_under_if_match,
    saml_connections_are_removed_under_if_match,
    bad_metadata_is_refused_with_a_problem_document,
    metadata_urls_on_internal_addresses_are_refused_without_a_connection,
    webhook_calls_to_internal_addresses_are_not_made,
);

// The test IdP serves its metadata on loopback: the operator allows that address.
latchkey_tests::e2e_with!(
    loopback_allowed,
    &[("LATCHKEY_OUTBOUND_ALLOW_PRIVATE", "127.0.0.1")],
    a_connection_from_a_url_is_fetched_and_refreshed,
);
