//! The admin API's upstream OpenID Connect connections (`/admin/t/{tenant}/oidc-connections`):
//! made against a real issuer (tenant `up` of the same server, discovered over loopback with the
//! operator's opt-in), listed, read with an `ETag`, patched under `If-Match`, discovered again
//! and removed; with the attacks tried: a discovery document naming another issuer, a fetch
//! that fails or that the outbound guard refuses, a lost update, patches of fixed members, a
//! credential without the permission, another tenant's credential. The secret is never in an
//! answer. Runs on SQLite + memory and PostgreSQL + Redis.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use latchkey_core::{AuditEvent, Permission, TenantId, TenantPolicy};
use latchkey_store::{AuditFilter, AuditRepo, NewTenant, TenantRepo, UpstreamRepo};
use latchkey_tests::TestServer;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

const SECRET: &str = "s3cret-of-the-upstream-client";
const FETCH_FAILED: &str = "could not be fetched";

struct World {
    acme: TenantId,
    admin: String,
    reader: String,
    /// A credential of another tenant holding every permission.
    other: String,
}

fn tenant(s: &TestServer, slug: &str) -> TenantId {
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
}

/// Tenants `acme` (the relying party), `up` (its upstream issuer) and `beta`.
fn world(s: &TestServer) -> World {
    let acme = tenant(s, "acme");
    tenant(s, "up");
    let beta = tenant(s, "beta");
    World {
        admin: latchkey_tests::admin::token(s, &acme, &[Permission::SamlRead, Permission::SamlWrite]),
        reader: latchkey_tests::admin::token(s, &acme, &[Permission::SamlRead]),
        other: latchkey_tests::admin::with_role(s, &beta, "tenant-admin"),
        acme,
    }
}

/// One call: `body` as JSON, answered as (status, JSON body or null, headers).
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
    let text = res.text().await.unwrap();
    assert!(!text.contains(SECRET), "the secret is never answered: {text}");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::Null),
        headers,
    )
}

async fn read(s: &TestServer, path: &str, token: &str) -> (StatusCode, Value, HeaderMap) {
    call(s, ("GET", path), token, None, &[]).await
}

fn etag(h: &HeaderMap) -> String {
    h["etag"].to_str().unwrap().to_owned()
}

/// A problem document (RFC 9457) of `status` whose detail contains `says`.
fn problem(got: &(StatusCode, Value, HeaderMap), status: StatusCode, says: &str) {
    assert_eq!(got.0, status, "{}", got.1);
    assert_eq!(got.2["content-type"], "application/problem+json", "{}", got.1);
    let detail = got.1["detail"].as_str().unwrap_or_default();
    assert!(detail.contains(says), "{detail:?} should say {says:?}");
}

fn events(s: &TestServer, t: &TenantId, action: &str) -> Vec<AuditEvent> {
    let filter = AuditFilter {
        action: Some(action.into()),
        ..AuditFilter::default()
    };
    s.state.db.audit_search(t, &filter, 0, 1000).unwrap()
}

/// Connects `up` (tenant `up` of this server) to acme with `extra` members in the body.
async fn connect_up(s: &TestServer, admin: &str, extra: Value) -> (StatusCode, Value, HeaderMap) {
    let mut body = json!({
        "name": "up",
        "display_name": "Up sign-in",
        "issuer": s.issuer("up"),
        "client_id": "acme-portal",
        "client_secret": SECRET,
        "options": {"domains": ["up.example"], "mapping": {"groups": "groups"}},
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let body = body.to_string();
    call(
        s,
        ("POST", "/admin/t/acme/oidc-connections"),
        admin,
        Some(&body),
        &[],
    )
    .await
}

async fn connections_are_created_listed_read_and_removed(s: &TestServer) {
    let w = world(s);
    let (st, made, _) = connect_up(s, &w.admin, json!({})).await;
    assert_eq!(st, StatusCode::CREATED, "{made}");
    assert_eq!(made["issuer"], s.issuer("up"));
    assert_eq!(made["discovered"]["issuer"], s.issuer("up"), "discovered at once");
    assert!(made["discovered"]["jwks"].as_str().unwrap().contains("\"kid\""));
    assert_eq!(made["scopes"], json!(["openid", "email", "profile"]));
    assert_eq!(made["client_auth"], "client_secret_basic");
    assert!(made.get("secret_sealed").is_none() && made.get("client_secret").is_none());
    let stored = s
        .state
        .db
        .oidc_connection_by_name(&w.acme, "up")
        .unwrap()
        .unwrap();
    assert!(!stored.secret_sealed.is_empty() && !stored.secret_sealed.contains(SECRET));
    assert_eq!(events(s, &w.acme, "oidc.connection.create").len(), 1);

    let (st, listed, _) = read(s, "/admin/t/acme/oidc-connections", &w.reader).await;
    assert_eq!(st, StatusCode::OK);
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["up"]);
    let (_, by_domain, _) = read(s, "/admin/t/acme/oidc-connections?domain=up.example", &w.reader).await;
    assert_eq!(by_domain.as_array().unwrap().len(), 1);
    let (st, got, h) = read(s, "/admin/t/acme/oidc-connections/up", &w.reader).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(got["id"], made["id"]);
    let v1 = etag(&h);
    assert_eq!(v1, format!("\"{}\"", got["updated_at"]));

    // Removed under If-Match: a stale version is refused, the current one removes it.
    let (st, _, _) = call(
        s,
        ("DELETE", "/admin/t/acme/oidc-connections/up"),
        &w.admin,
        None,
        &[("if-match", "\"1\"")],
    )
    .await;
    assert_eq!(st, StatusCode::PRECONDITION_FAILED);
    let (st, gone, _) = call(
        s,
        ("DELETE", "/admin/t/acme/oidc-connections/up"),
        &w.admin,
        None,
        &[("if-match", &v1)],
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{gone}");
    assert_eq!(
        (gone["deleted"].as_str(), gone["name"].as_str()),
        (Some("oidc_connection"), Some("up"))
    );
    let (st, _, _) = read(s, "/admin/t/acme/oidc-connections/up", &w.reader).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_eq!(events(s, &w.acme, "oidc.connection.delete").len(), 1);
}

async fn connections_change_by_merge_patch_under_if_match(s: &TestServer) {
    let w = world(s);
    let (st, made, _) = connect_up(s, &w.admin, json!({})).await;
    assert_eq!(st, StatusCode::CREATED, "{made}");
    let v1 = format!("\"{}\"", made["updated_at"]);
    let before = s
        .state
        .db
        .oidc_connection_by_name(&w.acme, "up")
        .unwrap()
        .unwrap();
    let change = json!({
        "display_name": "Up (new)",
        "options": {"link_existing": true},
        "client_secret": "the-rotated-secret",
    })
    .to_string();
    let path = "/admin/t/acme/oidc-connections/up";
    let (st, after, h) = call(s, ("PATCH", path), &w.admin, Some(&change), &[("if-match", &v1)]).await;
    assert_eq!(st, StatusCode::OK, "{after}");
    assert_eq!(after["display_name"], "Up (new)");
    assert_eq!(after["options"]["link_existing"], true);
    assert_eq!(
        after["options"]["domains"],
        json!(["up.example"]),
        "options merge member by member"
    );
    assert_eq!(after["options"]["mapping"]["groups"], "groups");
    assert!(!after.to_string().contains("the-rotated-secret"));
    assert_ne!(etag(&h), v1);
    let stored = s
        .state
        .db
        .oidc_connection_by_name(&w.acme, "up")
        .unwrap()
        .unwrap();
    assert_ne!(
        stored.secret_sealed, before.secret_sealed,
        "the secret was replaced"
    );
    let update = events(s, &w.acme, "oidc.connection.update");
    assert_eq!(update.len(), 1);
    assert_eq!(update[0].details["changes"]["secret"], "replaced");
    // A lost update is refused.
    let lost = r#"{"display_name":"Lost"}"#;
    let stale = call(s, ("PATCH", path), &w.admin, Some(lost), &[("if-match", &v1)]).await;
    problem(&stale, StatusCode::PRECONDITION_FAILED, "");
}

/// Patches of members a connection can't change, unknown members, options naming what the
/// tenant lacks and values the store refuses are 400 and write nothing.
async fn bad_patches_are_refused_and_write_nothing(s: &TestServer) {
    let w = world(s);
    let (st, made, _) = connect_up(s, &w.admin, json!({})).await;
    assert_eq!(st, StatusCode::CREATED, "{made}");
    let path = "/admin/t/acme/oidc-connections/up";
    let stored = s
        .state
        .db
        .oidc_connection_by_name(&w.acme, "up")
        .unwrap()
        .unwrap();
    for bad in [
        r#"{"name":"other"}"#,
        r#"{"kind":"oauth2"}"#,
        r#"{"discovered":null}"#,
        r#"{"public_jwk":"{}"}"#,
        r#"{"secret_sealed":"x"}"#,
        r#"{"options":{"jitt":true}}"#,
        r#"{"options":{"mapping":{"subjekt":"id"}}}"#,
        r#"{"options":{"role_map":[["admins","no-such-role"]]}}"#,
        r#"{"scopes":["email"]}"#,
        r#"{"client_secret":42}"#,
        r#"{"client_auth":"client_secret_jwt"}"#,
    ] {
        let got = call(s, ("PATCH", path), &w.admin, Some(bad), &[]).await;
        problem(&got, StatusCode::BAD_REQUEST, "");
    }
    let now = s
        .state
        .db
        .oidc_connection_by_name(&w.acme, "up")
        .unwrap()
        .unwrap();
    assert_eq!(now.updated_at, stored.updated_at, "refused patches wrote nothing");

    // Leaving a secret method for private_key_jwt makes a key; leaving it needs a secret.
    let (st, keyed, _) = call(
        s,
        ("PATCH", path),
        &w.admin,
        Some(r#"{"client_auth":"private_key_jwt"}"#),
        &[],
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{keyed}");
    assert!(keyed["public_jwk"].as_str().unwrap().contains("RS256"));
    let back = r#"{"client_auth":"client_secret_post"}"#;
    let got = call(s, ("PATCH", path), &w.admin, Some(back), &[]).await;
    problem(&got, StatusCode::BAD_REQUEST, "client secret");
}

async fn a_private_key_jwt_connection_shows_only_its_public_key(s: &TestServer) {
    let w = world(s);
    // A private_key_jwt connection gets a key whose public half is shown, and no secret.
    let extra = json!({"client_auth": "private_key_jwt", "client_secret": null, "options": {}});
    let (st, jwt, _) = connect_up(s, &w.admin, extra).await;
    assert_eq!(st, StatusCode::CREATED, "{jwt}");
    let public: Value = serde_json::from_str(jwt["public_jwk"].as_str().unwrap()).unwrap();
    assert_eq!(
        (public["kty"].as_str(), public["alg"].as_str()),
        (Some("RSA"), Some("RS256"))
    );
    assert!(public.get("d").is_none(), "only the public half: {public}");

    let stored = s
        .state
        .db
        .oidc_connection_by_name(&w.acme, "up")
        .unwrap()
        .unwrap();
    assert_eq!(stored.public_jwk.as_deref(), jwt["public_jwk"].as_str());
}

/// A discovery document that names another issuer is refused with the reason, and one that
/// can't be fetched with one generic detail; neither leaves a connection.
async fn refused_discoveries_leave_nothing(s: &TestServer) {
    let w = world(s);
    let elsewhere = json!({
        "issuer": "https://login.example.test",
        "discovery_url": format!("{}/.well-known/openid-configuration", s.issuer("up")),
    });
    let got = connect_up(s, &w.admin, elsewhere).await;
    problem(&got, StatusCode::UNPROCESSABLE_ENTITY, "issuer");
    assert!(
        got.1["detail"].as_str().unwrap().contains(&s.issuer("up")),
        "{}",
        got.1
    );
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let got = connect_up(
        s,
        &w.admin,
        json!({"issuer": format!("http://127.0.0.1:{closed}")}),
    )
    .await;
    problem(&got, StatusCode::UNPROCESSABLE_ENTITY, FETCH_FAILED);
    let missing = json!({"issuer": format!("{}/nothing-here", s.issuer("up"))});
    let got = connect_up(s, &w.admin, missing).await;
    problem(&got, StatusCode::UNPROCESSABLE_ENTITY, FETCH_FAILED);
    assert!(s.state.db.list_oidc_connections(&w.acme).unwrap().is_empty());
    let create = events(s, &w.acme, "oidc.connection.create");
    assert_eq!(create.len(), 2, "the failed fetches are audited: {create:?}");
    for e in &create {
        assert_eq!(e.outcome, latchkey_core::Outcome::Failure);
        assert_eq!(e.details["error"], "the URL could not be fetched");
    }
}

/// Without the operator's opt-in, an issuer on loopback is refused before anything is fetched,
/// answered with the same generic detail; the audit event says only that the address was
/// refused.
async fn loopback_issuers_are_refused_without_the_operators_opt_in(s: &TestServer) {
    let w = world(s);
    let got = connect_up(s, &w.admin, json!({})).await;
    problem(&got, StatusCode::UNPROCESSABLE_ENTITY, FETCH_FAILED);
    assert!(s.state.db.list_oidc_connections(&w.acme).unwrap().is_empty());
    let create = events(s, &w.acme, "oidc.connection.create");
    let error = create[0].details["error"].as_str().unwrap();
    assert!(error.contains("loopback"), "{error}");
    // An OAuth 2.0 provider is not discovered: its endpoints are configured.
    let github = json!({
        "name": "github",
        "kind": "oauth2",
        "issuer": "https://github.com",
        "client_id": "Iv1.example",
        "client_secret": SECRET,
        "endpoints": {
            "authorization_endpoint": "https://github.com/login/oauth/authorize",
            "token_endpoint": "https://github.com/login/oauth/access_token",
            "userinfo_endpoint": "https://api.github.com/user",
        },
        "options": {"mapping": {"subject": "id"}},
    })
    .to_string();
    let (st, made, _) = call(
        s,
        ("POST", "/admin/t/acme/oidc-connections"),
        &w.admin,
        Some(&github),
        &[],
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{made}");
    assert!(made["discovered"].is_null() && made["scopes"] == json!([]));
    let got = call(
        s,
        ("POST", "/admin/t/acme/oidc-connections/github/refresh"),
        &w.admin,
        None,
        &[],
    )
    .await;
    problem(&got, StatusCode::CONFLICT, "nothing to discover");
}

async fn refresh_discovers_again(s: &TestServer) {
    let w = world(s);
    let (st, made, _) = connect_up(s, &w.admin, json!({})).await;
    assert_eq!(st, StatusCode::CREATED, "{made}");
    let path = "/admin/t/acme/oidc-connections/up/refresh";
    let (st, after, h) = call(s, ("POST", path), &w.admin, None, &[]).await;
    assert_eq!(st, StatusCode::OK, "{after}");
    assert_eq!(after["changed"], false);
    assert_eq!(etag(&h), format!("\"{}\"", after["updated_at"]));
    assert!(after["discovered"]["refreshed_at"].as_i64() >= made["discovered"]["refreshed_at"].as_i64());
    assert_eq!(events(s, &w.acme, "oidc.connection.refresh").len(), 1);
    // A refresh is a new version: a change read before it can't write the old discovery back.
    let before = format!("\"{}\"", made["updated_at"]);
    assert_ne!(etag(&h), before);
    let stale = call(
        s,
        ("PATCH", "/admin/t/acme/oidc-connections/up"),
        &w.admin,
        Some(r#"{"display_name":"Late"}"#),
        &[("if-match", &before)],
    )
    .await;
    problem(&stale, StatusCode::PRECONDITION_FAILED, "");
}

/// Reads need `saml:read`, changes `saml:write` (403, audited with the permission); another
/// tenant's credential finds nothing.
async fn permissions_and_tenants_are_kept(s: &TestServer) {
    let w = world(s);
    let (st, _, _) = connect_up(s, &w.admin, json!({})).await;
    assert_eq!(st, StatusCode::CREATED);
    let body = r#"{"display_name":"x"}"#;
    for (method, path, with) in [
        ("POST", "/admin/t/acme/oidc-connections", Some(body)),
        ("PATCH", "/admin/t/acme/oidc-connections/up", Some(body)),
        ("DELETE", "/admin/t/acme/oidc-connections/up", None),
        ("POST", "/admin/t/acme/oidc-connections/up/refresh", None),
    ] {
        let got = call(s, (method, path), &w.reader, with, &[]).await;
        problem(&got, StatusCode::FORBIDDEN, "saml:write");
    }
    let nothing = latchkey_tests::admin::token(s, &w.acme, &[Permission::UsersRead]);
    let got = call(s, ("GET", "/admin/t/acme/oidc-connections"), &nothing, None, &[]).await;
    problem(&got, StatusCode::FORBIDDEN, "saml:read");
    let denied = events(s, &w.acme, "admin.denied");
    assert_eq!(denied.len(), 5);
    for (method, path) in [
        ("GET", "/admin/t/beta/oidc-connections/up"),
        ("DELETE", "/admin/t/beta/oidc-connections/up"),
    ] {
        let (st, _, _) = call(s, (method, path), &w.other, None, &[]).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{method} {path}");
    }
    assert_eq!(s.state.db.list_oidc_connections(&w.acme).unwrap().len(), 1);
}

latchkey_tests::e2e!(loopback_issuers_are_refused_without_the_operators_opt_in);

// Tenant `up` is discovered over loopback: the operator allows that address.
latchkey_tests::e2e_with!(
    loopback_allowed,
    &[("LATCHKEY_OUTBOUND_ALLOW_PRIVATE", "127.0.0.1")],
    connections_are_created_listed_read_and_removed,
    connections_change_by_merge_patch_under_if_match,
    bad_patches_are_refused_and_write_nothing,
    a_private_key_jwt_connection_shows_only_its_public_key,
    refused_discoveries_leave_nothing,
    refresh_discovers_again,
    permissions_and_tenants_are_kept,
);
