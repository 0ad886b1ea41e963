//! The admin API's users, attributes, effective access, grants and group versions (issue 21,
//! item 1): the CLI's `user`, `attribute` and `role effective` over HTTP, through the same
//! checks. Lost updates are 412, creates replay under `Idempotency-Key`, another tenant's
//! objects are 404, a reader is refused writes (403, audited), and revoking a user's grants
//! ends their refresh token. Runs on SQLite + memory and PostgreSQL + Redis.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use latchkey_core::{AccessTokenFormat, ClientType, Permission, TenantId, User};
use latchkey_store::{AttributeRepo, AuditRepo, MfaRepo, TenantRepo, UserRepo};
use latchkey_tests::TestServer;
use latchkey_tests::browser::{Browser, setup};
use latchkey_tests::oidc::{code, redeem, refresh, register};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

/// A password the default policy accepts.
const GOOD: &str = "Vq7#mZ2!tLp9@xR4";

struct World {
    a: TenantId,
    alice: User,
    reader: String,
    admin: String,
    b_admin: String,
}

/// What a read-only helpdesk holds on these endpoints.
const READ: &[Permission] = &[
    Permission::UsersRead,
    Permission::AttributesRead,
    Permission::SessionsRead,
    Permission::GroupsRead,
];

/// Everything these endpoints need.
const ALL: &[Permission] = &[
    Permission::UsersRead,
    Permission::UsersWrite,
    Permission::UsersCredentials,
    Permission::AttributesRead,
    Permission::AttributesWrite,
    Permission::SessionsRead,
    Permission::SessionsRevoke,
    Permission::GroupsRead,
    Permission::GroupsWrite,
];

fn token(s: &TestServer, t: &TenantId, permissions: &[Permission]) -> String {
    latchkey_tests::admin::token(s, t, permissions)
}

/// Tenants `acme` and `beta`, each with alice; tokens of acme (reader, admin) and beta (admin).
async fn world(s: &TestServer) -> World {
    setup(s, "acme").await;
    setup(s, "beta").await;
    let db = &s.state.db;
    let a = db.tenant_by_slug("acme").unwrap().unwrap().id;
    let b = db.tenant_by_slug("beta").unwrap().unwrap().id;
    World {
        alice: db.user_by_username(&a, "alice").unwrap().unwrap(),
        reader: token(s, &a, READ),
        admin: token(s, &a, ALL),
        b_admin: token(s, &b, ALL),
        a,
    }
}

/// Any call: `headers` added, `body` sent as JSON; the status, JSON answer and headers.
async fn call(
    s: &TestServer,
    (method, path): (&str, &str),
    token: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> (StatusCode, Value, HeaderMap) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut r = TestServer::client()
        .request(method, s.url(path))
        .bearer_auth(token);
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    if let Some(b) = body {
        r = r.header("content-type", "application/json").body(b.to_string());
    }
    let res = r.send().await.unwrap();
    let (st, h) = (res.status(), res.headers().clone());
    (st, res.json().await.unwrap_or(Value::Null), h)
}

fn etag(h: &HeaderMap) -> String {
    h.get("etag").unwrap().to_str().unwrap().to_owned()
}

fn actions(s: &TestServer, t: &TenantId) -> Vec<String> {
    s.state
        .db
        .audit_events(t, 0, 10_000)
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect()
}

/// Every audit event of the tenant as text, to look for what must never be there.
fn audit_text(s: &TestServer, t: &TenantId) -> String {
    let events = s.state.db.audit_events(t, 0, 10_000).unwrap();
    serde_json::to_string(&events.iter().map(|e| &e.details).collect::<Vec<_>>()).unwrap()
}

async fn users_are_created_once_with_checked_values(s: &TestServer) {
    let w = world(s).await;
    let admin = w.admin.as_str();
    let (st, def, _) = call(
        s,
        ("POST", "/admin/t/acme/attributes"),
        admin,
        &[],
        Some(&json!({"name": "region", "kind": "string"})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{def}");
    let new = json!({"username": "dora", "email": "Dora@Acme.test", "display_name": "Dora",
                     "password": GOOD, "attributes": {"region": "emea"}});
    let key = [("idempotency-key", "create-dora-1")];
    let (st, dora, h) = call(s, ("POST", "/admin/t/acme/users"), admin, &key, Some(&new)).await;
    assert_eq!(st, StatusCode::CREATED, "{dora}");
    assert!(h.get("idempotent-replayed").is_none());
    assert_eq!(
        (dora["username"].as_str(), dora["email_verified"].as_bool()),
        (Some("dora"), Some(false))
    );
    assert!(dora.get("password_hash").is_none() && dora.get("password").is_none());
    let (st, again, h) = call(s, ("POST", "/admin/t/acme/users"), admin, &key, Some(&new)).await;
    assert_eq!((st, &again["id"]), (StatusCode::CREATED, &dora["id"]));
    assert_eq!(h.get("idempotent-replayed").unwrap(), "true");
    let (st, _, _) = call(s, ("POST", "/admin/t/acme/users"), admin, &[], Some(&new)).await;
    assert_eq!(st, StatusCode::CONFLICT, "the username is taken: made once");
    assert!(
        !audit_text(s, &w.a).contains(GOOD),
        "the password is never in the chain"
    );
    let path = format!("/admin/t/acme/users/{}", dora["id"].as_str().unwrap());
    let (st, vals, _) = call(s, ("GET", &format!("{path}/attributes")), &w.reader, &[], None).await;
    assert_eq!(
        (st, &vals["attributes"]),
        (StatusCode::OK, &json!({"region": "emea"}))
    );
    let bad = json!({"username": "fay", "attributes": {"region": 7}});
    let (st, _, _) = call(s, ("POST", "/admin/t/acme/users"), admin, &[], Some(&bad)).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "a value the schema refuses");
    assert!(s.state.db.user_by_username(&w.a, "fay").unwrap().is_none());
    let a = actions(s, &w.a);
    assert!(a.contains(&"user.create".to_owned()) && a.contains(&"attribute.read_values".to_owned()));
}

async fn users_change_under_if_match(s: &TestServer) {
    let w = world(s).await;
    let admin = w.admin.as_str();
    let path = format!("/admin/t/acme/users/{}", w.alice.id);
    let (st, _, h) = call(s, ("GET", &path), &w.reader, &[], None).await;
    assert_eq!(st, StatusCode::OK);
    let v1 = etag(&h);
    assert_eq!(
        call(s, ("POST", &format!("{path}/verify-email")), admin, &[], None)
            .await
            .0,
        StatusCode::OK
    );
    let (st, _, h) = call(s, ("GET", &path), &w.reader, &[], None).await;
    let v2 = etag(&h);
    assert_ne!(v1, v2, "verifying moved the version");
    let change = json!({"email": "alice@new.test", "display_name": null});
    let (st2, _, _) = call(s, ("PATCH", &path), admin, &[("if-match", &v1)], Some(&change)).await;
    assert_eq!(
        (st, st2),
        (StatusCode::OK, StatusCode::PRECONDITION_FAILED),
        "a lost update"
    );
    let (st, after, h) = call(s, ("PATCH", &path), admin, &[("if-match", &v2)], Some(&change)).await;
    assert_eq!(st, StatusCode::OK, "{after}");
    assert_eq!(after["email"], "alice@new.test");
    assert_eq!(
        (after["display_name"].is_null(), after["email_verified"].as_bool()),
        (true, Some(false))
    );
    assert_ne!(etag(&h), v2);
    for bad in [
        json!({"username": "x"}),
        json!({"email": 3}),
        json!({"status": "active"}),
    ] {
        let (st, p, _) = call(s, ("PATCH", &path), admin, &[], Some(&bad)).await;
        assert_eq!(
            (st, p["status"].as_u64()),
            (StatusCode::BAD_REQUEST, Some(400)),
            "{bad}"
        );
    }

    let alice = path;
    let (st, mfa, _) = call(s, ("GET", &format!("{alice}/mfa")), &w.reader, &[], None).await;
    assert_eq!(
        (st, mfa["totp"].is_null(), mfa["recovery_codes_left"].as_u64()),
        (StatusCode::OK, true, Some(0))
    );
    let (st, reset, _) = call(s, ("DELETE", &format!("{alice}/mfa")), admin, &[], None).await;
    assert_eq!(st, StatusCode::OK, "{reset}");
    let (st, roles, _) = call(s, ("GET", &format!("{alice}/roles")), &w.reader, &[], None).await;
    assert_eq!((st, &roles["roles"]), (StatusCode::OK, &json!([])));
    let a = actions(s, &w.a);
    for want in [
        "user.email_verified",
        "user.update",
        "user.read",
        "mfa.read",
        "user.read_access",
        "mfa.reset",
    ] {
        assert!(a.contains(&want.to_owned()), "{want} in {a:?}");
    }
}

async fn weak_and_breached_passwords_are_refused(s: &TestServer) {
    let w = world(s).await;
    let path = format!("/admin/t/acme/users/{}/password", w.alice.id);
    for weak in ["short", "password1234", "alice-alice-alice"] {
        let (st, p, h) = call(
            s,
            ("POST", &path),
            &w.admin,
            &[],
            Some(&json!({"password": weak})),
        )
        .await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{weak}: {p}");
        assert_eq!(h.get("content-type").unwrap(), "application/problem+json");
        assert!(!p.to_string().contains(weak), "never echoed: {p}");
    }
    let new = json!({"username": "eve", "password": "password1234"});
    let (st, _, _) = call(s, ("POST", "/admin/t/acme/users"), &w.admin, &[], Some(&new)).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        s.state.db.user_by_username(&w.a, "eve").unwrap().is_none(),
        "nothing made"
    );
    let (st, user, _) = call(
        s,
        ("POST", &path),
        &w.admin,
        &[],
        Some(&json!({"password": GOOD})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{user}");
    assert!(!user.to_string().contains(GOOD));
    let stored = s.state.db.user(&w.a, &w.alice.id).unwrap().unwrap();
    assert!(
        s.state
            .hasher
            .verify(GOOD.into(), stored.password_hash)
            .await
            .unwrap()
            .matches
    );
    assert!(!audit_text(s, &w.a).contains(GOOD));
    let extra = json!({"password": GOOD, "force": true});
    assert_eq!(
        call(s, ("POST", &path), &w.admin, &[], Some(&extra)).await.0,
        StatusCode::BAD_REQUEST
    );
}

async fn attributes_are_defined_versioned_and_values_checked(s: &TestServer) {
    let w = world(s).await;
    let admin = w.admin.as_str();
    let def = json!({"name": "employee_no", "kind": "number", "label": "Employee number"});
    let (st, made, _) = call(s, ("POST", "/admin/t/acme/attributes"), admin, &[], Some(&def)).await;
    assert_eq!(st, StatusCode::CREATED, "{made}");
    let (st, _, _) = call(s, ("POST", "/admin/t/acme/attributes"), admin, &[], Some(&def)).await;
    assert_eq!(st, StatusCode::CONFLICT);
    let (st, list, _) = call(s, ("GET", "/admin/t/acme/attributes"), &w.reader, &[], None).await;
    assert_eq!((st, list.as_array().unwrap().len()), (StatusCode::OK, 1));
    let one = "/admin/t/acme/attributes/employee_no";
    let (_, _, h) = call(s, ("GET", one), &w.reader, &[], None).await;
    let v1 = etag(&h);
    let (st, changed, h) = call(
        s,
        ("PATCH", one),
        admin,
        &[("if-match", &v1)],
        Some(&json!({"label": null, "unique": true})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{changed}");
    assert_eq!(
        (changed["label"].is_null(), changed["unique"].as_bool()),
        (true, Some(true))
    );
    assert_ne!(etag(&h), v1);
    let (st, _, _) = call(
        s,
        ("PATCH", one),
        admin,
        &[("if-match", &v1)],
        Some(&json!({"required": true})),
    )
    .await;
    assert_eq!(st, StatusCode::PRECONDITION_FAILED, "a lost update");
    let (st, _, _) = call(s, ("PATCH", one), admin, &[], Some(&json!({"kind": "string"}))).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "the kind is fixed");

    let (_, _, h) = call(s, ("GET", one), &w.reader, &[], None).await;
    let (st, _, _) = call(s, ("DELETE", one), admin, &[("if-match", &v1)], None).await;
    assert_eq!(st, StatusCode::PRECONDITION_FAILED);
    let (st, _, _) = call(s, ("DELETE", one), admin, &[("if-match", &etag(&h))], None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        call(s, ("GET", one), &w.reader, &[], None).await.0,
        StatusCode::NOT_FOUND
    );
    let a = actions(s, &w.a);
    for want in [
        "attribute.define",
        "attribute.update",
        "attribute.remove",
        "attribute.list",
        "attribute.read",
    ] {
        assert!(a.contains(&want.to_owned()), "{want} in {a:?}");
    }
}

/// `PUT` and `DELETE …/users/{id}/attributes/{name}`: checked against the schema as `latchkey
/// attribute set` is: a wrong type, `null`, an undeclared name and clearing a required value are
/// 400, and nothing is stored.
async fn attribute_values_are_checked_against_the_schema(s: &TestServer) {
    let w = world(s).await;
    let admin = w.admin.as_str();
    let def = json!({"name": "employee_no", "kind": "number"});
    let (st, _, _) = call(s, ("POST", "/admin/t/acme/attributes"), admin, &[], Some(&def)).await;
    assert_eq!(st, StatusCode::CREATED);
    let def = json!({"name": "cost_center", "kind": "string", "required": true});
    let (st, _, _) = call(s, ("POST", "/admin/t/acme/attributes"), admin, &[], Some(&def)).await;
    assert_eq!(st, StatusCode::CREATED);
    let value = format!("/admin/t/acme/users/{}/attributes/employee_no", w.alice.id);
    for bad in [json!("forty-two"), json!([1]), json!(null)] {
        let (st, p, _) = call(s, ("PUT", &value), admin, &[], Some(&bad)).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{bad}: {p}");
    }
    let (st, _, _) = call(
        s,
        (
            "PUT",
            &format!("/admin/t/acme/users/{}/attributes/nope", w.alice.id),
        ),
        admin,
        &[],
        Some(&json!(1)),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "not in the schema");
    let (st, vals, _) = call(s, ("PUT", &value), admin, &[], Some(&json!(42))).await;
    assert_eq!(
        (st, &vals["attributes"]),
        (StatusCode::OK, &json!({"employee_no": 42}))
    );
    let (st, vals, _) = call(s, ("DELETE", &value), admin, &[], None).await;
    assert_eq!((st, &vals["attributes"]), (StatusCode::OK, &json!({})));
    let required = format!("/admin/t/acme/users/{}/attributes/cost_center", w.alice.id);
    let (st, _, _) = call(s, ("PUT", &required), admin, &[], Some(&json!("cc-1"))).await;
    assert_eq!(st, StatusCode::OK);
    let (st, _, _) = call(s, ("DELETE", &required), admin, &[], None).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "a required value stays");
    let kept = s.state.db.user_attributes(&w.a, &w.alice.id).unwrap();
    assert_eq!(
        serde_json::to_value(kept).unwrap(),
        json!({"cost_center": "cc-1"})
    );
}

async fn group_changes_need_the_current_version(s: &TestServer) {
    let w = world(s).await;
    let (st, g, _) = call(
        s,
        ("POST", "/admin/t/acme/groups"),
        &w.admin,
        &[],
        Some(&json!({"name": "staff"})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{g}");
    let path = format!("/admin/t/acme/groups/{}", g["id"].as_str().unwrap());
    let (_, _, h) = call(s, ("GET", &path), &w.reader, &[], None).await;
    let v1 = etag(&h);
    let (st, after, h) = call(
        s,
        ("PATCH", &path),
        &w.admin,
        &[("if-match", &v1)],
        Some(&json!({"description": "Everyone"})),
    )
    .await;
    assert_eq!(
        (st, after["description"].as_str()),
        (StatusCode::OK, Some("Everyone"))
    );
    assert_ne!(etag(&h), v1);
    let (st, _, _) = call(
        s,
        ("PATCH", &path),
        &w.admin,
        &[("if-match", &v1)],
        Some(&json!({"name": "crew"})),
    )
    .await;
    assert_eq!(st, StatusCode::PRECONDITION_FAILED, "a lost update");
    let (st, _, _) = call(
        s,
        ("PATCH", &path),
        &w.admin,
        &[("if-match", "W/\"1\"")],
        Some(&json!({"name": "crew"})),
    )
    .await;
    assert_eq!(st, StatusCode::PRECONDITION_FAILED, "a weak tag matches nothing");
    let (_, now, _) = call(s, ("GET", &path), &w.reader, &[], None).await;
    assert_eq!(now["group"]["name"], "staff", "neither refused change was made");
}

/// One factor removed by an administrator: listed without its credential, removed once, and
/// refused to a reader and to another tenant's token.
async fn one_factor_is_removed_by_an_admin(s: &TestServer) {
    let w = world(s).await;
    s.state
        .db
        .add_passkey(&w.a, &w.alice.id, "cred-1", "Laptop", "SECRET-CREDENTIAL")
        .unwrap();
    let mfa = format!("/admin/t/acme/users/{}/mfa", w.alice.id);
    let (st, listed, _) = call(s, ("GET", &mfa), &w.reader, &[], None).await;
    assert_eq!(
        (st, &listed["passkeys"][0]["name"]),
        (StatusCode::OK, &json!("Laptop"))
    );
    assert!(!listed.to_string().contains("SECRET-CREDENTIAL"), "{listed}");
    let one = format!("{mfa}/cred-1");
    assert_eq!(
        call(s, ("DELETE", &one), &w.reader, &[], None).await.0,
        StatusCode::FORBIDDEN
    );
    let beta = format!("/admin/t/beta/users/{}/mfa/cred-1", w.alice.id);
    assert_eq!(
        call(s, ("DELETE", &beta), &w.b_admin, &[], None).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(s, ("DELETE", &one), &w.admin, &[], None).await.0,
        StatusCode::OK
    );
    assert_eq!(
        call(s, ("DELETE", &one), &w.admin, &[], None).await.0,
        StatusCode::NOT_FOUND
    );
    let totp = format!("{mfa}/totp");
    assert_eq!(
        call(s, ("DELETE", &totp), &w.admin, &[], None).await.0,
        StatusCode::NOT_FOUND
    );
    let (_, listed, _) = call(s, ("GET", &mfa), &w.reader, &[], None).await;
    assert_eq!(listed["passkeys"], json!([]));
    let removed = s.state.db.audit_events(&w.a, 0, 10_000).unwrap();
    let by_admin = removed
        .iter()
        .any(|e| e.action == "mfa.passkey.remove" && e.actor.starts_with("admin_token:"));
    assert!(by_admin, "audited with the admin as actor");
}

/// A create whose unique attribute value another user holds is 409 and leaves no user (the
/// user and the values are one transaction).
async fn a_taken_unique_value_creates_no_user(s: &TestServer) {
    let w = world(s).await;
    let admin = w.admin.as_str();
    let def = json!({"name": "badge", "kind": "string", "unique": true});
    let (st, made, _) = call(s, ("POST", "/admin/t/acme/attributes"), admin, &[], Some(&def)).await;
    assert_eq!(st, StatusCode::CREATED, "{made}");
    let alices = format!("/admin/t/acme/users/{}/attributes/badge", w.alice.id);
    let (st, set, _) = call(s, ("PUT", &alices), admin, &[], Some(&json!("B-1"))).await;
    assert_eq!(st, StatusCode::OK, "{set}");
    let creates = |a: &[String]| a.iter().filter(|x| *x == "user.create").count();
    let before = creates(&actions(s, &w.a));
    let gus = json!({"username": "gus", "email": "gus@acme.test", "attributes": {"badge": "B-1"}});
    let (st, got, _) = call(s, ("POST", "/admin/t/acme/users"), admin, &[], Some(&gus)).await;
    assert_eq!(st, StatusCode::CONFLICT, "{got}");
    assert!(
        s.state.db.user_by_username(&w.a, "gus").unwrap().is_none(),
        "no user left behind"
    );
    assert_eq!(creates(&actions(s, &w.a)), before, "no user.create audited");
    let gus = json!({"username": "gus", "attributes": {"badge": "B-2"}});
    let (st, got, _) = call(s, ("POST", "/admin/t/acme/users"), admin, &[], Some(&gus)).await;
    assert_eq!(st, StatusCode::CREATED, "{got}");
}

/// Removing a user's last second factor removes their recovery codes with it (as Keycloak and
/// GitHub do): codes without a factor would be a second factor nobody manages.
async fn the_last_factor_takes_the_recovery_codes_with_it(s: &TestServer) {
    let w = world(s).await;
    let (db, t, u) = (&s.state.db, &w.a, &w.alice.id);
    db.begin_totp(t, u, b"twenty-byte-seed-abc").unwrap();
    db.confirm_totp(t, u, &["h1".into(), "h2".into(), "h3".into()])
        .unwrap();
    db.add_passkey(t, u, "cred-1", "Laptop", "CREDENTIAL").unwrap();
    let mfa = format!("/admin/t/acme/users/{u}/mfa");
    let left = || async {
        let (_, listed, _) = call(s, ("GET", &mfa), &w.reader, &[], None).await;
        listed["recovery_codes_left"].as_u64()
    };
    assert_eq!(left().await, Some(3));
    let (st, _, _) = call(s, ("DELETE", &format!("{mfa}/totp")), &w.admin, &[], None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(left().await, Some(3), "the passkey is still a second factor");
    let (st, _, _) = call(s, ("DELETE", &format!("{mfa}/cred-1")), &w.admin, &[], None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(left().await, Some(0), "no factor left: no codes");
    assert_eq!(db.recovery_codes_left(t, u).unwrap(), 0);
    // An enrolment not confirmed is no factor: removing the passkey takes the codes.
    db.replace_recovery_codes(t, u, &["h4".into()]).unwrap();
    db.add_passkey(t, u, "cred-2", "Phone", "CREDENTIAL").unwrap();
    db.begin_totp(t, u, b"twenty-byte-seed-abc").unwrap();
    assert!(db.remove_passkey(t, "test", u, "cred-2").unwrap());
    assert_eq!(db.recovery_codes_left(t, u).unwrap(), 0);
}

/// Every write of these modules on alice (`u`) or attribute `region`, tenant-relative.
fn writes(u: &str) -> [(&'static str, String, Option<Value>); 9] {
    [
        ("PATCH", format!("/users/{u}"), Some(json!({"display_name": "X"}))),
        (
            "POST",
            format!("/users/{u}/password"),
            Some(json!({"password": GOOD})),
        ),
        ("POST", format!("/users/{u}/verify-email"), None),
        ("DELETE", format!("/users/{u}/mfa"), None),
        ("DELETE", format!("/users/{u}/grants"), None),
        (
            "PUT",
            format!("/users/{u}/attributes/region"),
            Some(json!("emea")),
        ),
        ("DELETE", format!("/users/{u}/attributes/region"), None),
        (
            "PATCH",
            "/attributes/region".to_owned(),
            Some(json!({"required": true})),
        ),
        ("DELETE", "/attributes/region".to_owned(), None),
    ]
}

/// Tenant B's token finds none of tenant A's objects on these endpoints, and a reader token is
/// refused every write (403, audited `admin.denied`) and changes nothing.
async fn other_tenants_and_readers_are_refused(s: &TestServer) {
    let w = world(s).await;
    let def = json!({"name": "region", "kind": "string"});
    assert_eq!(
        call(s, ("POST", "/admin/t/acme/attributes"), &w.admin, &[], Some(&def))
            .await
            .0,
        StatusCode::CREATED
    );
    let u = w.alice.id.as_str();
    let reads = [
        format!("/admin/t/beta/users/{u}"),
        format!("/admin/t/beta/users/{u}/mfa"),
        format!("/admin/t/beta/users/{u}/roles"),
        format!("/admin/t/beta/users/{u}/grants"),
        format!("/admin/t/beta/users/{u}/attributes"),
        "/admin/t/beta/attributes/region".to_owned(),
    ];
    for p in &reads {
        assert_eq!(
            call(s, ("GET", p), &w.b_admin, &[], None).await.0,
            StatusCode::NOT_FOUND,
            "{p}"
        );
    }
    let writes = writes(u);
    for (m, p, body) in &writes {
        let beta = format!("/admin/t/beta{p}");
        let (st, _, _) = call(s, (m, &beta), &w.b_admin, &[], body.as_ref()).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{m} {beta}");
        let acme = format!("/admin/t/acme{p}");
        let (st, _, _) = call(s, (m, &acme), &w.reader, &[], body.as_ref()).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{m} {acme}");
    }
    let new = json!({"username": "mallory"});
    assert_eq!(
        call(s, ("POST", "/admin/t/acme/users"), &w.reader, &[], Some(&new))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        call(
            s,
            ("POST", "/admin/t/acme/attributes"),
            &w.reader,
            &[],
            Some(&def)
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    let denied = actions(s, &w.a).iter().filter(|a| *a == "admin.denied").count();
    assert_eq!(denied, writes.len() + 2, "every refusal is audited");
    let alice = s.state.db.user(&w.a, &w.alice.id).unwrap().unwrap();
    assert_eq!(alice, w.alice, "nothing changed");
    assert!(s.state.db.user_by_username(&w.a, "mallory").unwrap().is_none());
}

/// An administrator revokes a user's grants: the client is listed with its consent and grant,
/// and after the revocation its refresh token is refused at the token endpoint.
async fn revoking_grants_ends_the_refresh_token(s: &TestServer) {
    let w = world(s).await;
    let portal = register(s, "acme", ClientType::Confidential, true, AccessTokenFormat::Jwt);
    let mut browser = Browser::default();
    let code = code(s, &mut browser, &portal).await;
    let (st, tokens) = redeem(s, &portal, &code).await;
    assert_eq!(st, StatusCode::OK, "{tokens}");
    let rt = tokens["refresh_token"].as_str().unwrap().to_owned();
    let path = format!("/admin/t/acme/users/{}/grants", w.alice.id);
    let (st, grants, _) = call(s, ("GET", &path), &w.reader, &[], None).await;
    assert_eq!(st, StatusCode::OK);
    let listed = grants.as_array().unwrap();
    assert_eq!(listed.len(), 1, "{grants}");
    assert_eq!(listed[0]["client_id"], portal.client_id.as_str());
    assert_eq!(listed[0]["grants"].as_array().unwrap().len(), 1, "{grants}");
    assert!(!grants.to_string().contains(&rt), "no token in the listing");
    let other = format!("{path}/{}", "no-such-client");
    let (st, none, _) = call(s, ("DELETE", &other), &w.admin, &[], None).await;
    assert_eq!((st, none["grants_revoked"].as_u64()), (StatusCode::OK, Some(0)));
    assert_eq!(
        call(s, ("DELETE", &path), &w.reader, &[], None).await.0,
        StatusCode::FORBIDDEN
    );
    let (st, gone, _) = call(
        s,
        ("DELETE", &format!("{path}/{}", portal.client_id)),
        &w.admin,
        &[],
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{gone}");
    assert_eq!(gone["grants_revoked"].as_u64(), Some(1));
    let (st, err) = refresh(s, &portal, &rt).await;
    assert_eq!(
        (st, err["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let (_, grants, _) = call(s, ("GET", &path), &w.reader, &[], None).await;
    assert_eq!(grants, json!([]));
    let a = actions(s, &w.a);
    assert!(a.contains(&"oauth.revoke_user_grants".to_owned()) && a.contains(&"grant.list".to_owned()));
}

latchkey_tests::e2e!(
    users_are_created_once_with_checked_values,
    users_change_under_if_match,
    attribute_values_are_checked_against_the_schema,
    weak_and_breached_passwords_are_refused,
    attributes_are_defined_versioned_and_values_checked,
    group_changes_need_the_current_version,
    other_tenants_and_readers_are_refused,
    revoking_grants_ends_the_refresh_token,
    one_factor_is_removed_by_an_admin,
    a_taken_unique_value_creates_no_user,
    the_last_factor_takes_the_recovery_codes_with_it,
);
