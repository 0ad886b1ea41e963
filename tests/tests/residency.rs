//! Data residency (issue 25 item 6, docs/residency.md): two PostgreSQL databases stand for two
//! regions. A tenant pinned to region B is served, signed in to and administered without a
//! single row written to region A's database, and a node whose credentials for A are refused
//! serves it all the same; a node without B does not know it; a slug is one tenant across
//! regions; a bad `LATCHKEY_REGIONS` is refused by name; a move is verified, audited and leaves
//! nothing behind.

#![allow(clippy::unwrap_used, clippy::many_single_char_names)] // test code

use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl};
use latchkey_core::{AccessTokenFormat, ClientType, Permission};
use latchkey_server::AppState;
use latchkey_store::{AuditRepo, ClientRepo, Db, TenantRepo};
use latchkey_tests::admin::{call, system_token};
use latchkey_tests::browser::{Browser, PASSWORD};
use latchkey_tests::oidc::{code, new_client, redeem, userinfo};
use latchkey_tests::{TestDb, TestServer};
use serde_json::json;
use std::collections::BTreeMap;

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// Rows per table of the database at `url`, every table of its schema.
fn rows_per_table(url: &str) -> BTreeMap<String, i64> {
    let mut c = PgConnection::establish(url).unwrap();
    let tables: Vec<Name> = diesel::sql_query(
        "SELECT table_name::text AS name FROM information_schema.tables \
         WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
    )
    .load(&mut c)
    .unwrap();
    tables
        .into_iter()
        .map(|t| {
            let n: Count = diesel::sql_query(format!("SELECT COUNT(*) AS n FROM \"{}\"", t.name))
                .get_result(&mut c)
                .unwrap();
            (t.name, n.n)
        })
        .collect()
}

/// Tables whose row counts differ between `before` and `after`.
fn changed(before: &BTreeMap<String, i64>, after: &BTreeMap<String, i64>) -> Vec<String> {
    after
        .iter()
        .filter(|(t, n)| before.get(*t) != Some(*n))
        .map(|(t, n)| format!("{t}: {:?} → {n}", before.get(t)))
        .collect()
}

fn region<'s>(s: &'s TestServer, name: &str) -> &'s AppState {
    s.state.region_named(name).unwrap()
}

/// Region B's tenant `acme`: created over the system API, a user made over its admin API, a
/// group, a client, then alice signs in through the code flow and uses her tokens.
async fn traffic_for_acme(s: &TestServer, system: &str) -> Db {
    // Onboarding with an `Idempotency-Key`: the retry is answered from region B's store.
    let create = || async {
        let body = json!({"slug": "acme", "region": "b", "admin_credential": {"name": "ops", "roles": ["tenant-admin"]}});
        let res = TestServer::client()
            .post(s.url("/admin/system/tenants"))
            .bearer_auth(system)
            .header("idempotency-key", "onboard-acme")
            .json(&body)
            .send()
            .await
            .unwrap();
        (res.status(), res.json::<serde_json::Value>().await.unwrap())
    };
    let (st, made) = create().await;
    let (again_st, again) = create().await;
    assert_eq!((again_st, &again), (st, &made), "the retry answers the same");
    assert_eq!(st, 201, "{made}");
    assert_eq!(made["region"], "b");
    let admin = made["admin_credential"]["token"].as_str().unwrap().to_owned();
    let b = region(s, "b").db.clone();
    let t = b.tenant_by_slug("acme").unwrap().unwrap();
    let user = json!({"username": "alice", "email": "alice@acme.test", "password": PASSWORD});
    let (st, body) = call(s, "POST", "/admin/t/acme/users", &admin, Some(&user.to_string())).await;
    assert_eq!(st, 201, "{body}");
    let (st, body) = call(
        s,
        "POST",
        "/admin/t/acme/groups",
        &admin,
        Some(r#"{"name":"staff"}"#),
    )
    .await;
    assert_eq!(st, 201, "{body}");
    let mut spec = new_client(ClientType::Confidential);
    spec.first_party = true;
    spec.access_token_format = AccessTokenFormat::Jwt;
    let c = b.create_client(&t.id, "test", &spec).unwrap();
    let mut browser = Browser::default();
    let (st, tokens) = redeem(s, &c, &code(s, &mut browser, &c).await).await;
    assert_eq!(st, 200, "{tokens}");
    assert_eq!(
        userinfo(s, "acme", tokens["access_token"].as_str().unwrap()).await,
        200
    );
    let (st, verified) = call(s, "GET", "/admin/t/acme/audit/verify", &admin, None).await;
    assert_eq!(st, 200, "{verified}");
    b
}

/// The whole story on one pair of databases (each step needs the one before).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_pinned_to_region_b_never_writes_to_region_a() {
    let (Some(a), Some(b)) = (TestDb::postgres(), TestDb::postgres()) else {
        return;
    };
    let master = latchkey_keys::MasterKey::generate().unwrap().to_base64();
    let regions = format!("b={}", b.url);
    let node = TestServer::start_with(&[
        ("LATCHKEY_DATABASE_URL", &a.url),
        ("LATCHKEY_REGION", "a"),
        ("LATCHKEY_REGIONS", &regions),
        ("LATCHKEY_MASTER_KEY", &master),
    ])
    .unwrap();
    let system = system_token(&node, &[], &[Permission::TenantsWrite, Permission::TenantsRead]);
    let (a_before, b_before) = (rows_per_table(&a.url), rows_per_table(&b.url));

    let b_db = traffic_for_acme(&node, &system).await;
    let (a_after, b_after) = (rows_per_table(&a.url), rows_per_table(&b.url));
    assert!(
        changed(&a_before, &a_after).is_empty(),
        "region A changed: {:?}",
        changed(&a_before, &a_after)
    );
    for grown in [
        "tenants",
        "users",
        "clients",
        "groups",
        "audit_events",
        "signing_keys",
    ] {
        assert!(
            b_after[grown] > b_before[grown],
            "region B's {grown} did not grow"
        );
    }
    assert!(node.state.db.tenant_by_slug("acme").unwrap().is_none());
    // The system scope reads the tenant in its region, auditing there; its list (audited at
    // home with a count only) shows each tenant's region.
    let (st, shown) = call(&node, "GET", "/admin/system/tenants/acme", &system, None).await;
    assert_eq!((st.as_u16(), &shown["region"]), (200, &json!("b")), "{shown}");
    assert!(changed(&a_before, &rows_per_table(&a.url)).is_empty());
    let (st, listed) = call(&node, "GET", "/admin/system/tenants", &system, None).await;
    assert_eq!(st, 200, "{listed}");
    assert_eq!(listed[0]["slug"], "acme");
    assert_eq!(listed[0]["region"], "b");

    // A slug is one tenant across the node's regions, whichever region is asked for.
    for region in [None, Some("a"), Some("b")] {
        let body = json!({"slug": "acme", "region": region}).to_string();
        let (st, _) = call(&node, "POST", "/admin/system/tenants", &system, Some(&body)).await;
        assert_eq!(st, 409, "a second acme in {region:?}");
    }
    let body = json!({"slug": "other", "region": "mars"}).to_string();
    let (st, _) = call(&node, "POST", "/admin/system/tenants", &system, Some(&body)).await;
    assert_eq!(st, 422, "an unknown region is refused");

    a_node_refused_by_region_a_serves_acme(&a, &b, &master).await;
    a_node_without_region_b_does_not_know_acme(&a, &master).await;

    moving_acme_to_region_a_leaves_nothing_in_b(&node, &system, &b_db).await;
    drop(node);
}

/// Moving acme to region A over the admin API: served from A, its chain verifies, B has none
/// of its rows.
async fn moving_acme_to_region_a_leaves_nothing_in_b(node: &TestServer, system: &str, b_db: &Db) {
    let t = b_db.tenant_by_slug("acme").unwrap().unwrap();
    let (st, report) = call(
        node,
        "POST",
        "/admin/system/tenants/acme/move",
        system,
        Some(r#"{"to":"a"}"#),
    )
    .await;
    assert_eq!(st, 200, "{report}");
    assert_eq!(
        (report["from"].as_str(), report["to"].as_str()),
        (Some("b"), Some("a"))
    );
    assert!(report["rows"]["users"].as_u64() == Some(1), "{report}");
    assert!(
        b_db.tenant_rows(&t.id).unwrap().is_empty(),
        "region B kept rows of acme"
    );
    let moved = node.state.db.tenant_by_slug("acme").unwrap().unwrap();
    assert_eq!(moved.id, t.id);
    let verdict = latchkey_audit::verify(&node.state.db, &t.id).unwrap();
    assert!(
        matches!(verdict, latchkey_audit::Verdict::Intact { .. }),
        "{verdict:?}"
    );
    let events = node.state.db.audit_events(&t.id, 0, 10_000).unwrap();
    let last = events.last().unwrap();
    assert_eq!(last.action, "tenant.move");
    assert_eq!(last.details["from"], "b");
    assert_eq!(last.details["to"], "a");
    // The node's caches follow: a fresh sign-in is served from region A.
    let mut spec = new_client(ClientType::Confidential);
    spec.first_party = true;
    let c = node.state.db.create_client(&t.id, "test", &spec).unwrap();
    let mut browser = Browser::default();
    let mut served = false;
    for _ in 0..40 {
        let (st, _, _) = browser
            .get(node, "/t/acme/.well-known/openid-configuration")
            .await;
        if st == 200 && latchkey_tests::oidc::tenant(node, "acme").id == t.id {
            served = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(served, "acme is not served after the move");
    let (st, tokens) = redeem(node, &c, &code(node, &mut browser, &c).await).await;
    assert_eq!(st, 200, "{tokens}");
}

/// A second node whose only way into region A is a role A refuses: it starts (A is not served
/// there) and serves acme from region B, sign-in included.
async fn a_node_refused_by_region_a_serves_acme(a: &TestDb, b: &TestDb, master: &str) {
    let a_name = a.url.rsplit('/').next().unwrap().split('?').next().unwrap();
    let role = format!(
        "lk_norights_{}",
        latchkey_core::random_token(&latchkey_core::OsRng, 6)
            .to_lowercase()
            .replace(['-', '_'], "x")
    );
    a.raw_sql(&format!("CREATE ROLE {role} LOGIN"));
    a.raw_sql(&format!("REVOKE CONNECT ON DATABASE \"{a_name}\" FROM PUBLIC"));
    let base = a.url.split("://").nth(1).unwrap().split_once('@').unwrap().1;
    let refused_url = format!("postgres://{role}@{base}");
    assert!(
        PgConnection::establish(&refused_url).is_err(),
        "the role must not reach A"
    );
    let regions = format!("a={refused_url}");
    let node = TestServer::start_with(&[
        ("LATCHKEY_DATABASE_URL", &b.url),
        ("LATCHKEY_REGION", "b"),
        ("LATCHKEY_REGIONS", &regions),
        ("LATCHKEY_MASTER_KEY", master),
    ])
    .unwrap();
    assert!(
        node.state.region_named("a").is_none(),
        "region A cannot be served here"
    );
    let t = node.state.db.tenant_by_slug("acme").unwrap().unwrap();
    let mut spec = new_client(ClientType::Confidential);
    spec.first_party = true;
    let c = node.state.db.create_client(&t.id, "test", &spec).unwrap();
    let mut browser = Browser::default();
    let (st, tokens) = redeem(&node, &c, &code(&node, &mut browser, &c).await).await;
    assert_eq!(st, 200, "{tokens}");
    assert_eq!(
        userinfo(&node, "acme", tokens["access_token"].as_str().unwrap()).await,
        200
    );
    drop(node);
    a.raw_sql(&format!("GRANT CONNECT ON DATABASE \"{a_name}\" TO PUBLIC"));
}

/// A node with region A only: acme's routes are 404s like any unknown tenant's.
async fn a_node_without_region_b_does_not_know_acme(a: &TestDb, master: &str) {
    let node = TestServer::start_with(&[
        ("LATCHKEY_DATABASE_URL", &a.url),
        ("LATCHKEY_REGION", "a"),
        ("LATCHKEY_MASTER_KEY", master),
    ])
    .unwrap();
    for path in [
        "/t/acme/.well-known/openid-configuration",
        "/t/acme/login",
        "/admin/t/acme/users",
    ] {
        let res = TestServer::client().get(node.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 404, "{path}");
    }
    drop(node);
}

#[test]
fn a_bad_regions_setting_is_refused_by_name() {
    for (value, says) in [
        ("b", "name=DATABASE_URL"),
        ("B=postgres://h/b", "is not a region name"),
        ("b=mysql://h/b", "expected sqlite://PATH or postgres://"),
        ("b=postgres://h/b;b=postgres://h/c", "named twice"),
        ("default=postgres://h/b", "named twice"),
        ("b=postgres://h/b|redis://r|x", "more than one '|'"),
        ("b=postgres://h/b|memcache://r", "expected memory"),
    ] {
        let err = TestServer::start_with(&[("LATCHKEY_REGIONS", value)])
            .err()
            .unwrap_or_else(|| panic!("{value:?} was accepted"));
        assert!(err.contains("LATCHKEY_REGIONS"), "{value:?}: {err}");
        assert!(err.contains(says), "{value:?}: {err}");
    }
    let err = TestServer::start_with(&[
        ("LATCHKEY_SESSION_STORE", "redis://127.0.0.1:6379"),
        ("LATCHKEY_REGIONS", "b=postgres://h/b"),
    ])
    .err()
    .unwrap();
    assert!(err.contains("needs its own session store"), "{err}");
}
