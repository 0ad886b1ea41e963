//! The admin console (issue 22) over HTTP, on both backends: who gets in (a user holding a
//! console credential, after a second factor in this session), what they see (only the
//! sections their permissions allow; a direct URL to another is 403), what they do (through
//! the admin API, audited with the console credential), and the attacks: a form without its
//! CSRF token, an admin without a second factor, a user without a credential, one tenant's
//! admin at another tenant's console (every page and action, from the console's own lists).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use latchkey_core::{AuditEvent, TenantId, User, UserStatus};
use latchkey_server::{CONSOLE_ACTIONS, CONSOLE_PAGES};
use latchkey_store::{AuditFilter, AuditRepo, CredentialKind, NewAdminToken, NewUser, UserRepo};
use latchkey_tests::TestServer;
use latchkey_tests::browser::{Browser, PASSWORD, hidden, setup};
use latchkey_tests::console::{console_admin, location, password_then, signed_in_admin, totp_at, with_totp};

fn tid(s: &TestServer, slug: &str) -> TenantId {
    latchkey_tests::oidc::tenant(s, slug).id
}

fn user(s: &TestServer, slug: &str, name: &str) -> User {
    s.state.db.user_by_username(&tid(s, slug), name).unwrap().unwrap()
}

async fn add_user(s: &TestServer, slug: &str, name: &str) -> User {
    let hash = s.state.hasher.hash(PASSWORD.into()).await.unwrap();
    s.state
        .db
        .create_user(
            &tid(s, slug),
            "test",
            &NewUser {
                username: name.into(),
                email: Some(format!("{name}@{slug}.test")),
                password_hash: Some(hash),
                ..NewUser::default()
            },
        )
        .unwrap()
}

fn chain(s: &TestServer, slug: &str) -> Vec<AuditEvent> {
    s.state
        .db
        .audit_search(&tid(s, slug), &AuditFilter::default(), 0, 10_000)
        .unwrap()
}

async fn a_user_manager_signs_in_with_two_factors_and_manages_users(s: &TestServer) {
    setup(s, "acme").await;
    let alice = user(s, "acme", "alice");
    with_totp(s, "acme", &alice);
    console_admin(s, "acme", &alice, &["user-manager"]);
    let bob = add_user(s, "acme", "bob").await;
    // No session: to the sign-in page, coming back here.
    let (st, h, _) = Browser::default().get(s, "/t/acme/admin/users").await;
    assert_eq!(st, 303);
    assert!(
        location(&h).starts_with("/t/acme/login?return_to="),
        "{}",
        location(&h)
    );
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let mut b = signed_in_admin(s, "acme", "alice").await;
    let (st, _, page) = b.get(s, "/t/acme/admin/users").await;
    assert_eq!(st, 200, "{page}");
    assert!(page.contains(">bob<"), "{page}");
    assert!(page.contains("href=\"/t/acme/admin/users\""));
    assert!(
        !page.contains("href=\"/t/acme/admin/keys\""),
        "no keys link for a user manager"
    );
    for hidden_section in ["keys", "policies"] {
        let (st, _, page) = b.get(s, &format!("/t/acme/admin/{hidden_section}")).await;
        assert_eq!(st, 403, "{hidden_section}: {page}");
    }
    // Create a user through the console: the API does it, audited with the console credential.
    let csrf = hidden(&page, "csrf");
    let (st, h, body) = b
        .post(
            s,
            "/t/acme/admin/do/user-create",
            &[
                ("csrf", &csrf),
                ("back", "/t/acme/admin/users"),
                ("username", "carol"),
                ("email", "carol@acme.test"),
            ],
            &[],
        )
        .await;
    assert_eq!(st, 303, "{body}");
    let carol = user(s, "acme", "carol");
    assert_eq!(
        location(&h),
        format!("/t/acme/admin/users/{}?notice=User%20created.", carol.id)
    );
    let created = chain(s, "acme")
        .into_iter()
        .rev()
        .find(|e| e.action == "user.create")
        .unwrap();
    assert!(
        created.actor.starts_with("console:")
            && created
                .actor
                .ends_with(&format!(":user:{}#users:write", alice.id)),
        "{}",
        created.actor
    );
    disable_and_refusal(s, &mut b, &csrf, &bob).await;
}

/// Disables bob from his page, and tries what a user manager may not.
async fn disable_and_refusal(s: &TestServer, b: &mut Browser, csrf: &str, bob: &User) {
    // Disable bob: his page offers it; the action needs its confirmation and works with it.
    let (st, _, page) = b.get(s, &format!("/t/acme/admin/users/{}", bob.id)).await;
    assert_eq!(st, 200, "{page}");
    assert!(
        page.contains("The audit log is not shown"),
        "a user manager does not read the audit log: {page}"
    );
    let form = [
        ("csrf", csrf),
        ("back", "/t/acme/admin/users"),
        ("id", bob.id.as_str()),
        ("confirm", "yes"),
    ];
    let (st, _, body) = b.post(s, "/t/acme/admin/do/user-disable", &form, &[]).await;
    assert_eq!(st, 303, "{body}");
    assert_eq!(user(s, "acme", "bob").status, UserStatus::Disabled);
    // A user manager may not rotate keys: the API refuses, the console says so.
    let (st, h, _) = b
        .post(
            s,
            "/t/acme/admin/do/key-rotate",
            &[("csrf", csrf), ("back", "/t/acme/admin/"), ("confirm", "yes")],
            &[],
        )
        .await;
    assert_eq!(st, 303);
    assert!(location(&h).contains("error="), "{}", location(&h));
    assert!(
        chain(s, "acme")
            .iter()
            .any(|e| e.action == "admin.denied" && e.actor.starts_with("console:"))
    );
}

async fn forms_without_their_csrf_token_change_nothing(s: &TestServer) {
    setup(s, "acme").await;
    let alice = user(s, "acme", "alice");
    with_totp(s, "acme", &alice);
    console_admin(s, "acme", &alice, &["tenant-admin"]);
    let bob = add_user(s, "acme", "bob").await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let mut b = signed_in_admin(s, "acme", "alice").await;
    let (_, _, page) = b.get(s, "/t/acme/admin/").await;
    let csrf = hidden(&page, "csrf");
    let before = chain(s, "acme").len();
    for op in CONSOLE_ACTIONS {
        let path = format!("/t/acme/admin/do/{op}");
        let form = [
            ("id", bob.id.as_str()),
            ("confirm", "yes"),
            ("username", "mallory"),
            ("name", "x"),
        ];
        let (st, _, body) = b.post(s, &path, &form, &[]).await;
        assert_eq!(st, 403, "{op} without a token: {body}");
        let wrong = "0".repeat(64);
        let (st, _, body) = b
            .post(
                s,
                &path,
                &[("csrf", wrong.as_str()), ("id", bob.id.as_str())],
                &[],
            )
            .await;
        assert_eq!(st, 403, "{op} with a wrong token: {body}");
        // A cross-site post with the right token is refused too.
        let form = [
            ("csrf", csrf.as_str()),
            ("id", bob.id.as_str()),
            ("confirm", "yes"),
        ];
        let (st, _, _) = b.post(s, &path, &form, &[("sec-fetch-site", "cross-site")]).await;
        assert_eq!(st, 403, "{op} cross-site");
    }
    assert_eq!(user(s, "acme", "bob").status, UserStatus::Active);
    assert!(
        s.state
            .db
            .user_by_username(&tid(s, "acme"), "mallory")
            .unwrap()
            .is_none()
    );
    let after: Vec<AuditEvent> = chain(s, "acme").into_iter().skip(before).collect();
    assert!(
        after.iter().all(|e| !e.actor.starts_with("console:")),
        "no console call: {after:#?}"
    );
    // Every listed action exists: with its token it is not "no such action".
    for op in CONSOLE_ACTIONS {
        let (st, _, body) = b
            .post(
                s,
                &format!("/t/acme/admin/do/{op}"),
                &[("csrf", csrf.as_str()), ("id", "nobody")],
                &[],
            )
            .await;
        assert_ne!(st, 404, "{op}: {body}");
    }
}

async fn no_console_without_a_credential_or_a_second_factor(s: &TestServer) {
    setup(s, "acme").await;
    // bob: a second factor, but no console credential.
    let bob = add_user(s, "acme", "bob").await;
    with_totp(s, "acme", &bob);
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let mut b = Browser::default();
    let (st, at, _) = password_then(s, &mut b, "acme", "bob", "/t/acme/admin/").await;
    let (st, page) = if st == 303 && at.contains("second-factor") {
        let back = totp_at(s, &mut b, "acme", &at).await;
        let (st, _, page) = b.get(s, &back).await;
        (st, page)
    } else {
        (st, String::new())
    };
    assert_eq!(st, 403, "{page}");
    assert!(
        chain(s, "acme")
            .iter()
            .any(|e| e.action == "console.denied" && e.details["reason"] == "not_an_admin")
    );
    // carol: a console credential, no second factor: refused, and adding a factor in this
    // session does not open the console.
    let carol = add_user(s, "acme", "carol").await;
    console_admin(s, "acme", &carol, &["tenant-admin"]);
    let mut b = Browser::default();
    let (st, _, page) = password_then(s, &mut b, "acme", "carol", "/t/acme/admin/users").await;
    assert_eq!(st, 403, "{page}");
    assert!(page.contains("second factor"), "{page}");
    with_totp(s, "acme", &carol);
    let (st, _, page) = b.get(s, "/t/acme/admin/users").await;
    assert_eq!(
        st, 403,
        "a factor added after this session began does not count: {page}"
    );
    assert!(
        chain(s, "acme")
            .iter()
            .any(|e| e.action == "console.denied" && e.details["reason"] == "second_factor_missing")
    );
}

async fn one_tenants_admin_never_reaches_another_tenants_console(s: &TestServer) {
    setup(s, "acme").await;
    setup(s, "beta").await;
    let alice = user(s, "acme", "alice");
    with_totp(s, "acme", &alice);
    console_admin(s, "acme", &alice, &["tenant-admin"]);
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let mut b = signed_in_admin(s, "acme", "alice").await;
    let (_, _, page) = b.get(s, "/t/acme/admin/").await;
    let csrf = hidden(&page, "csrf");
    // A tenant admin sees alice's sign-in in her security activity, with its risk score.
    let (st, _, page) = b.get(s, &format!("/t/acme/admin/users/{}", alice.id)).await;
    assert_eq!(st, 200, "{page}");
    let activity = page
        .split("<caption>Recent security activity</caption>")
        .nth(1)
        .unwrap();
    assert!(
        activity.contains("<td>login.success</td><td>success</td><td>"),
        "{activity}"
    );
    for p in CONSOLE_PAGES {
        let (st, _, page) = b.get(s, &format!("/t/acme/admin/{p}")).await;
        assert_eq!(st, 200, "own tenant {p}: {page}");
        let (st, h, _) = b.get(s, &format!("/t/beta/admin/{p}")).await;
        assert_eq!(st, 303, "beta/{p}");
        assert!(
            location(&h).starts_with("/t/beta/login"),
            "beta/{p}: {}",
            location(&h)
        );
    }
    let beta_alice = user(s, "beta", "alice");
    for op in CONSOLE_ACTIONS {
        let form = [
            ("csrf", csrf.as_str()),
            ("id", beta_alice.id.as_str()),
            ("confirm", "yes"),
        ];
        let (st, h, _) = b.post(s, &format!("/t/beta/admin/do/{op}"), &form, &[]).await;
        assert!(
            st == 303 && location(&h).starts_with("/t/beta/login") || st == 403,
            "beta {op}: {st}"
        );
        // acme's console acting on beta's user by id: the API finds no such user in acme.
    }
    assert_eq!(user(s, "beta", "alice").status, UserStatus::Active);
    assert!(chain(s, "beta").iter().all(|e| !e.actor.starts_with("console:")));
}

async fn a_client_preview_shows_what_the_portal_gets_for_a_user(s: &TestServer) {
    use latchkey_core::{AccessTokenFormat, ClientType, Permission};
    use latchkey_tests::admin::{call, token, with_role};
    setup(s, "acme").await;
    let alice = user(s, "acme", "alice");
    let c = latchkey_tests::oidc::register(s, "acme", ClientType::Confidential, true, AccessTokenFormat::Jwt);
    let admin = with_role(s, &tid(s, "acme"), "tenant-admin");
    let (st, role) = call(
        s,
        "POST",
        "/admin/t/acme/roles",
        &admin,
        Some(r#"{"name": "approver"}"#),
    )
    .await;
    assert_eq!(st, 201, "{role}");
    let path = format!(
        "/admin/t/acme/roles/{}/users/{}",
        role["id"].as_str().unwrap(),
        alice.id
    );
    assert!(call(s, "PUT", &path, &admin, None).await.0.is_success());
    let preview = format!("/admin/t/acme/clients/{}/preview?user=alice", c.client_id);
    let (st, p) = call(s, "GET", &preview, &admin, None).await;
    assert_eq!(st, 200, "{p}");
    assert_eq!(p["id_token"]["sub"], alice.id.as_str());
    assert_eq!(p["id_token"]["aud"], c.client_id.as_str());
    assert_eq!(p["id_token"]["iss"], s.state.config.issuer("acme"));
    assert_eq!(p["id_token"]["email"], "alice@acme.test");
    assert_eq!(p["userinfo"]["sub"], alice.id.as_str());
    let roles = p.to_string();
    assert!(roles.contains("approver"), "the role is released somewhere: {p}");
    // It needs users:read besides clients:read; an unknown user is 404; nothing was minted.
    let clients_only = token(s, &tid(s, "acme"), &[Permission::ClientsRead]);
    assert_eq!(call(s, "GET", &preview, &clients_only, None).await.0, 403);
    let nobody = format!("/admin/t/acme/clients/{}/preview?user=nobody", c.client_id);
    assert_eq!(call(s, "GET", &nobody, &admin, None).await.0, 404);
    // The console's application page shows the same documents.
    with_totp(s, "acme", &alice);
    console_admin(s, "acme", &alice, &["tenant-admin"]);
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let mut b = signed_in_admin(s, "acme", "alice").await;
    let (st, _, page) = b
        .get(s, &format!("/t/acme/admin/clients/{}?user=alice", c.client_id))
        .await;
    assert_eq!(st, 200, "{page}");
    assert!(page.contains("<h2>ID token</h2>"), "{page}");
    assert!(
        page.contains(&format!("&#34;sub&#34;: &#34;{}&#34;", alice.id)),
        "{page}"
    );
}

async fn an_operator_runs_the_installation_from_the_system_console(s: &TestServer) {
    use latchkey_server::{CONSOLE_SYSTEM_ACTIONS, CONSOLE_SYSTEM_PAGES};
    use latchkey_store::{SystemTokenRepo, TenantRepo};
    setup(s, "ops").await;
    let olga = user(s, "ops", "alice");
    with_totp(s, "ops", &olga);
    // A tenant console credential is not an operator's.
    console_admin(s, "ops", &olga, &["tenant-admin"]);
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let mut b = signed_in_admin(s, "ops", "alice").await;
    let (st, _, page) = b.get(s, "/t/ops/admin/system/").await;
    assert_eq!(st, 403, "{page}");
    assert!(
        chain(s, "ops")
            .iter()
            .any(|e| e.action == "console.denied" && e.details["reason"] == "not_an_operator")
    );
    let new = NewAdminToken {
        name: "olga".into(),
        roles: vec!["system-admin".into()],
        permissions: latchkey_core::Permissions::NONE,
        kind: CredentialKind::Operator(tid(s, "ops"), olga.id.clone()),
        expires_at: None,
    };
    s.state.db.create_system_token("test", &new).unwrap();
    for p in CONSOLE_SYSTEM_PAGES {
        let (st, _, page) = b.get(s, &format!("/t/ops/admin/system/{p}")).await;
        assert_eq!(st, 200, "{p}: {page}");
    }
    let (_, _, page) = b.get(s, "/t/ops/admin/system/").await;
    assert!(page.contains(">ops<"), "{page}");
    let csrf = hidden(&page, "csrf");
    for op in CONSOLE_SYSTEM_ACTIONS {
        let path = format!("/t/ops/admin/system/do/{op}");
        let (st, _, _) = b
            .post(s, &path, &[("slug", "ops"), ("confirm", "yes")], &[])
            .await;
        assert_eq!(st, 403, "{op} without its CSRF token");
    }
    let form = [
        ("csrf", csrf.as_str()),
        ("slug", "globex"),
        ("display_name", "Globex"),
    ];
    let (st, h, body) = b
        .post(s, "/t/ops/admin/system/do/tenant-create", &form, &[])
        .await;
    assert_eq!(st, 303, "{body}");
    assert!(location(&h).contains("notice="), "{}", location(&h));
    assert_eq!(
        s.state.db.tenant_by_slug("globex").unwrap().unwrap().display_name,
        "Globex"
    );
    let system = s
        .state
        .db
        .audit_search(&TenantId::system(), &AuditFilter::default(), 0, 10_000)
        .unwrap();
    assert!(
        system
            .iter()
            .any(|e| e.action == "tenant.create" && e.actor.starts_with("console:")),
        "{system:#?}"
    );
    // The operator's session is the ops tenant's: other tenants' consoles don't know it.
    let (st, h, _) = b.get(s, "/t/globex/admin/system/").await;
    assert_eq!(st, 303);
    assert!(location(&h).starts_with("/t/globex/login"));
}

/// Users are found by a name, username or email prefix in any case, and by an attribute's
/// value; a malformed attribute filter is a 400 the console shows, not an error page.
async fn users_are_found_by_name_and_by_attribute(s: &TestServer) {
    use latchkey_tests::admin::{call, with_role};
    setup(s, "acme").await;
    let bob = add_user(s, "acme", "bob").await;
    add_user(s, "acme", "dora").await;
    let admin = with_role(s, &tid(s, "acme"), "tenant-admin");
    let (st, v) = call(
        s,
        "PATCH",
        &format!("/admin/t/acme/users/{}", bob.id),
        &admin,
        Some(r#"{"display_name": "Robert Builder"}"#),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let (st, v) = call(
        s,
        "POST",
        "/admin/t/acme/attributes",
        &admin,
        Some(r#"{"name": "region", "kind": "string"}"#),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    let path = format!("/admin/t/acme/users/{}/attributes/region", bob.id);
    assert!(
        call(s, "PUT", &path, &admin, Some(r#""emea""#))
            .await
            .0
            .is_success()
    );
    let names = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|u| u["username"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, v) = call(s, "GET", "/admin/t/acme/users?q=ROB", &admin, None).await;
    assert_eq!(names(&v), ["bob"], "display name, case-insensitive");
    let (_, v) = call(
        s,
        "GET",
        "/admin/t/acme/users?attribute=region%3Demea",
        &admin,
        None,
    )
    .await;
    assert_eq!(names(&v), ["bob"]);
    let (_, v) = call(
        s,
        "GET",
        "/admin/t/acme/users?attribute=region%3Dapac",
        &admin,
        None,
    )
    .await;
    assert!(names(&v).is_empty());
    assert_eq!(
        call(s, "GET", "/admin/t/acme/users?attribute=region", &admin, None)
            .await
            .0,
        400
    );
    let alice = user(s, "acme", "alice");
    with_totp(s, "acme", &alice);
    console_admin(s, "acme", &alice, &["tenant-admin"]);
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let mut b = signed_in_admin(s, "acme", "alice").await;
    let (st, _, page) = b.get(s, "/t/acme/admin/users?attribute=region%3Demea").await;
    assert_eq!(st, 200, "{page}");
    assert!(page.contains(">bob<") && !page.contains(">dora<"), "{page}");
    let (st, _, page) = b.get(s, "/t/acme/admin/users?attribute=region").await;
    assert_eq!(st, 200);
    assert!(
        page.contains("role=\"alert\"") && page.contains("name=value"),
        "{page}"
    );
}

/// Keys: a rotation publishes a pending key, which the page then offers to activate or revoke
/// (each saying what changes for relying parties); the audit page exports what it shows.
async fn keys_rotate_and_the_audit_exports_from_the_console(s: &TestServer) {
    setup(s, "acme").await;
    let alice = user(s, "acme", "alice");
    with_totp(s, "acme", &alice);
    console_admin(s, "acme", &alice, &["tenant-admin"]);
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let mut b = signed_in_admin(s, "acme", "alice").await;
    let (_, _, page) = b.get(s, "/t/acme/admin/keys").await;
    assert!(!page.contains("Revoke this key"), "no pending key yet: {page}");
    let csrf = hidden(&page, "csrf");
    let form = [
        ("csrf", csrf.as_str()),
        ("back", "/t/acme/admin/keys"),
        ("confirm", "yes"),
    ];
    let (st, h, _) = b.post(s, "/t/acme/admin/do/key-rotate", &form, &[]).await;
    assert_eq!(st, 303);
    assert!(location(&h).contains("notice="), "{}", location(&h));
    let (_, _, page) = b.get(s, "/t/acme/admin/keys").await;
    assert!(page.contains("<td>pending</td>"), "{page}");
    assert!(
        page.contains("Sign with this key now") && page.contains("Revoke this key"),
        "{page}"
    );
    assert!(
        page.contains("relying part"),
        "the confirmations say what changes for relying parties"
    );
    let res = TestServer::client()
        .get(s.url("/t/acme/admin/audit/export?format=csv&action=keys.*"))
        .header("cookie", b.header())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    assert!(
        res.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    let csv = res.text().await.unwrap();
    assert!(csv.lines().next().unwrap().contains("seq"), "{csv}");
    assert!(csv.contains(",keys.rotate,"), "{csv}");
}

/// A group made in the console gets a member from the user's page, shows them on its own page,
/// loses them again, and is deleted (with its confirmation).
async fn groups_are_managed_from_the_console(s: &TestServer) {
    setup(s, "acme").await;
    let alice = user(s, "acme", "alice");
    let bob = add_user(s, "acme", "bob").await;
    with_totp(s, "acme", &alice);
    console_admin(s, "acme", &alice, &["tenant-admin"]);
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let mut b = signed_in_admin(s, "acme", "alice").await;
    let (_, _, page) = b.get(s, "/t/acme/admin/groups").await;
    let csrf = hidden(&page, "csrf");
    let poster = b.clone();
    let post = |op: &'static str, form: Vec<(&'static str, String)>| {
        let mut b = poster.clone();
        let csrf = csrf.clone();
        async move {
            let mut all = vec![("csrf", csrf)];
            all.extend(form);
            let pairs: Vec<(&str, &str)> = all.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let (st, h, body) = b.post(s, &format!("/t/acme/admin/do/{op}"), &pairs, &[]).await;
            assert_eq!(st, 303, "{op}: {body}");
            location(&h)
        }
    };
    let to = post(
        "group-create",
        vec![
            ("name", "engineers".into()),
            ("back", "/t/acme/admin/groups".into()),
        ],
    )
    .await;
    assert!(to.contains("notice="), "{to}");
    let group = latchkey_store::GroupRepo::group_by_name(&s.state.db, &tid(s, "acme"), "engineers")
        .unwrap()
        .unwrap();
    post(
        "user-group",
        vec![("id", bob.id.to_string()), ("group", group.id.to_string())],
    )
    .await;
    let (st, _, page) = b.get(s, &format!("/t/acme/admin/groups/{}", group.id)).await;
    assert_eq!(st, 200, "{page}");
    assert!(page.contains(">bob<"), "{page}");
    post(
        "group-member-remove",
        vec![("group", group.id.to_string()), ("id", bob.id.to_string())],
    )
    .await;
    let (_, _, page) = b.get(s, &format!("/t/acme/admin/groups/{}", group.id)).await;
    assert!(!page.contains(">bob<"), "{page}");
    post(
        "group-delete",
        vec![("group", group.id.to_string()), ("confirm", "yes".into())],
    )
    .await;
    assert!(
        latchkey_store::GroupRepo::group_by_name(&s.state.db, &tid(s, "acme"), "engineers")
            .unwrap()
            .is_none()
    );
}

/// A role is created, assigned to a user from their page, and deleted (with its confirmation):
/// the user loses it.
async fn roles_are_created_assigned_and_deleted(s: &TestServer) {
    use latchkey_store::{GroupRepo, RoleRepo};
    let (mut browser, csrf) = tenant_admin(s).await;
    let bob = add_user(s, "acme", "bob").await;
    let tenant = tid(s, "acme");
    let back = ("back", "/t/acme/admin/groups");
    let (_, to, _) = act(
        s,
        &mut browser,
        ("role-create", &csrf),
        &[("name", "auditor"), back],
    )
    .await;
    assert!(to.contains("notice="), "{to}");
    let role = s
        .state
        .db
        .list_roles(&tenant)
        .unwrap()
        .into_iter()
        .find(|r| r.name == "auditor")
        .unwrap();
    let assign = [("id", bob.id.as_str()), ("role", role.id.as_str())];
    let (_, to, _) = act(s, &mut browser, ("user-role", &csrf), &assign).await;
    assert!(to.contains("notice="), "{to}");
    assert_eq!(
        s.state.db.effective_access(&tenant, &bob.id).unwrap().roles,
        ["auditor"]
    );
    let (_, _, page) = browser.get(s, "/t/acme/admin/groups").await;
    assert!(
        page.contains("Delete a role") && page.contains(role.id.as_str()),
        "{page}"
    );
    let delete = [("role", role.id.as_str()), back];
    let (st, _, _) = act(s, &mut browser, ("role-delete", &csrf), &delete).await;
    assert_eq!(st, 400, "no confirmation, no deletion");
    assert_eq!(
        s.state.db.effective_access(&tenant, &bob.id).unwrap().roles,
        ["auditor"]
    );
    let delete = [delete[0], delete[1], ("confirm", "yes")];
    let (_, to, _) = act(s, &mut browser, ("role-delete", &csrf), &delete).await;
    assert!(to.contains("notice="), "{to}");
    assert!(
        s.state
            .db
            .effective_access(&tenant, &bob.id)
            .unwrap()
            .roles
            .is_empty()
    );
    assert!(
        s.state
            .db
            .list_roles(&tenant)
            .unwrap()
            .iter()
            .all(|r| r.name != "auditor")
    );
}

/// Registering a portal from the console: the API's checks apply (a wildcard redirect URI is
/// refused with its reason), and a good one answers its client id and secret this once.
async fn an_application_is_registered_from_the_console(s: &TestServer) {
    use latchkey_store::ClientRepo;
    setup(s, "acme").await;
    let alice = user(s, "acme", "alice");
    with_totp(s, "acme", &alice);
    console_admin(s, "acme", &alice, &["tenant-admin"]);
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let mut b = signed_in_admin(s, "acme", "alice").await;
    let (_, _, page) = b.get(s, "/t/acme/admin/clients").await;
    assert!(page.contains("Register an application"), "{page}");
    let csrf = hidden(&page, "csrf");
    let bad = [
        ("csrf", csrf.as_str()),
        ("back", "/t/acme/admin/clients"),
        ("name", "Wild"),
        ("client_type", "confidential"),
        ("redirect_uris", "https://*.acme.test/cb"),
    ];
    let (st, h, _) = b.post(s, "/t/acme/admin/do/client-create", &bad, &[]).await;
    assert_eq!(st, 303);
    assert!(location(&h).contains("error="), "{}", location(&h));
    let good = [
        ("csrf", csrf.as_str()),
        ("back", "/t/acme/admin/clients"),
        ("name", "Reports"),
        ("client_type", "confidential"),
        (
            "redirect_uris",
            "https://reports.acme.test/cb\r\nhttps://reports.acme.test/cb2",
        ),
    ];
    let (st, _, shown) = b.post(s, "/t/acme/admin/do/client-create", &good, &[]).await;
    assert_eq!(st, 200, "{shown}");
    let clients = s.state.db.list_clients(&tid(s, "acme")).unwrap();
    let c = clients.iter().find(|c| c.name == "Reports").unwrap();
    assert_eq!(c.redirect_uris.len(), 2);
    assert!(shown.contains(c.client_id.as_str()), "{shown}");
    assert!(
        shown.contains("<dt>client_secret</dt><dd>") && shown.contains("shown this once"),
        "{shown}"
    );
    assert!(clients.iter().all(|c| c.name != "Wild"));
}

/// A tenant admin (alice, with TOTP) signed in to acme's console, and her forms' CSRF token.
async fn tenant_admin(s: &TestServer) -> (Browser, String) {
    setup(s, "acme").await;
    let alice = user(s, "acme", "alice");
    with_totp(s, "acme", &alice);
    console_admin(s, "acme", &alice, &["tenant-admin"]);
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let mut browser = signed_in_admin(s, "acme", "alice").await;
    let (_, _, page) = browser.get(s, "/t/acme/admin/").await;
    let csrf = hidden(&page, "csrf");
    (browser, csrf)
}

/// Posts console action `op` with `csrf` and `fields`: the status, `Location` and body.
async fn act(
    s: &TestServer,
    browser: &mut Browser,
    (op, csrf): (&str, &str),
    fields: &[(&str, &str)],
) -> (reqwest::StatusCode, String, String) {
    let mut form = vec![("csrf", csrf)];
    form.extend_from_slice(fields);
    let (st, headers, body) = browser
        .post(s, &format!("/t/acme/admin/do/{op}"), &form, &[])
        .await;
    (st, location(&headers), body)
}

fn acme_policy(s: &TestServer) -> latchkey_core::TenantPolicy {
    use latchkey_store::TenantRepo;
    s.state.db.tenant_by_slug("acme").unwrap().unwrap().policy
}

/// The policy page: each section a typed form with what each field changes; a section saves
/// through the API (unticked boxes are `false`), and a value of the wrong kind is refused with
/// its field named, changing nothing.
async fn policies_are_changed_field_by_field(s: &TestServer) {
    let (mut browser, csrf) = tenant_admin(s).await;
    let (st, _, page) = browser.get(s, "/t/acme/admin/policies").await;
    assert_eq!(st, 200, "{page}");
    assert!(
        page.contains("name=\"idle_timeout_secs\"") && page.contains("Seconds without activity"),
        "{page}"
    );
    let op = ("policy-section", csrf.as_str());
    let session = [
        ("section", "session"),
        ("idle_timeout_secs", "900"),
        ("absolute_timeout_secs", "28800"),
    ];
    let (_, to, _) = act(s, &mut browser, op, &session).await;
    assert!(to.contains("notice="), "{to}");
    let policy = acme_policy(s).session;
    assert_eq!(
        (policy.idle_timeout_secs, policy.absolute_timeout_secs),
        (900, 28800)
    );
    let mut password = [
        ("section", "password"),
        ("min_length", "14"),
        ("max_length", "128"),
        ("require_digit", "on"),
        ("expiry_days", ""),
        ("history", "3"),
    ];
    let (_, to, _) = act(s, &mut browser, op, &password).await;
    assert!(to.contains("notice="), "{to}");
    let policy = acme_policy(s).password;
    assert_eq!(
        (policy.min_length, policy.history, policy.expiry_days),
        (14, 3, None)
    );
    assert!(policy.require_digit && !policy.require_symbol && !policy.require_uppercase);
    password[1].1 = "fourteen";
    let (st, to, _) = act(s, &mut browser, op, &password).await;
    assert_eq!(st, 303);
    assert!(to.contains("error=") && to.contains("min_length"), "{to}");
    assert_eq!(acme_policy(s).password.min_length, 14);
    let mfa = [("section", "mfa"), ("mode", "sometimes"), ("methods", "totp")];
    let (_, to, _) = act(s, &mut browser, op, &mfa).await;
    assert!(to.contains("error=") && to.contains("mode"), "{to}");
    let signup = [
        ("section", "signup"),
        ("mode", "open-for-domains"),
        ("domains", "acme.test, corp.test"),
    ];
    let (_, to, _) = act(s, &mut browser, op, &signup).await;
    assert!(to.contains("notice="), "{to}");
    assert_eq!(acme_policy(s).signup.domains, ["acme.test", "corp.test"]);
    let (_, to, _) = act(s, &mut browser, op, &[("section", "keys")]).await;
    assert!(to.contains("error="), "{to}");
    policies_for_privacy(s, &mut browser, op).await;
}

/// The retention and terms sections: typed fields, the API's rules (warned, then disabled,
/// then deleted; terms need their text's address).
async fn policies_for_privacy(s: &TestServer, browser: &mut Browser, op: (&str, &str)) {
    let (_, _, page) = browser.get(s, "/t/acme/admin/policies").await;
    assert!(
        page.contains("name=\"inactive_disable_days\"") && page.contains("name=\"outbox_days\""),
        "{page}"
    );
    let mut retention = [
        ("section", "retention"),
        ("audit_days", "400"),
        ("risk_history_days", "200"),
        ("inactive_notify_days", "30"),
        ("inactive_disable_days", "60"),
        ("inactive_delete_days", ""),
        ("consent_days", "365"),
        ("invitation_days", "14"),
        ("outbox_days", "7"),
    ];
    let (_, to, _) = act(s, browser, op, &retention).await;
    assert!(to.contains("notice="), "{to}");
    let r = acme_policy(s).retention;
    assert_eq!(
        (
            r.audit_days,
            r.inactive_notify_days,
            r.inactive_disable_days,
            r.inactive_delete_days,
            r.outbox_days
        ),
        (400, Some(30), Some(60), None, 7)
    );
    retention[4].1 = "20";
    let (_, to, _) = act(s, browser, op, &retention).await;
    assert!(
        to.contains("error=") && to.contains("inactive_disable_days"),
        "{to}"
    );
    assert_eq!(acme_policy(s).retention.inactive_disable_days, Some(60));
    let terms = [("section", "terms"), ("version", "v1"), ("url", "")];
    let (_, to, _) = act(s, browser, op, &terms).await;
    assert!(to.contains("error=") && to.contains("terms.url"), "{to}");
    let terms = [
        ("section", "terms"),
        ("version", "v1"),
        ("url", "https://acme.test/terms"),
    ];
    let (_, to, _) = act(s, browser, op, &terms).await;
    assert!(to.contains("notice="), "{to}");
    assert_eq!(acme_policy(s).terms.version.as_deref(), Some("v1"));
}

/// A user manager may not read policies (403) nor change them through the form (the API's
/// refusal comes back as the page's error, and nothing changes).
async fn a_user_manager_cannot_change_policies(s: &TestServer) {
    setup(s, "acme").await;
    let bob = add_user(s, "acme", "bob").await;
    with_totp(s, "acme", &bob);
    console_admin(s, "acme", &bob, &["user-manager"]);
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let mut manager = signed_in_admin(s, "acme", "bob").await;
    let (st, _, _) = manager.get(s, "/t/acme/admin/policies").await;
    assert_eq!(st, 403);
    let (_, _, page) = manager.get(s, "/t/acme/admin/").await;
    let csrf = hidden(&page, "csrf");
    let session = [
        ("section", "session"),
        ("idle_timeout_secs", "60"),
        ("absolute_timeout_secs", "60"),
    ];
    let (st, to, _) = act(s, &mut manager, ("policy-section", &csrf), &session).await;
    assert_eq!(st, 303);
    assert!(to.contains("error="), "{to}");
    assert_eq!(acme_policy(s).session.idle_timeout_secs, 1800);
}

/// Registers "Reports" from the console; its client.
async fn reports(s: &TestServer, browser: &mut Browser, csrf: &str) -> latchkey_core::Client {
    use latchkey_store::ClientRepo;
    let made = [
        ("name", "Reports"),
        ("client_type", "confidential"),
        ("redirect_uris", "https://reports.acme.test/cb"),
    ];
    let (st, _, _) = act(s, browser, ("client-create", csrf), &made).await;
    assert_eq!(st, 200);
    let clients = s.state.db.list_clients(&tid(s, "acme")).unwrap();
    clients.into_iter().find(|c| c.name == "Reports").unwrap()
}

/// An application's page edits its name and URIs through the API's checks.
async fn an_application_is_edited(s: &TestServer) {
    use latchkey_store::ClientRepo;
    let (mut browser, csrf) = tenant_admin(s).await;
    let client = reports(s, &mut browser, &csrf).await;
    let id = client.client_id.as_str();
    let back = format!("/t/acme/admin/clients/{id}");
    let (st, _, page) = browser.get(s, &back).await;
    assert_eq!(st, 200);
    assert!(
        page.contains("Change the application")
            && page.contains("Rotate the client secret")
            && page.contains("Delete the application"),
        "{page}"
    );
    let op = ("client-update", csrf.as_str());
    let wild = [
        ("client", id),
        ("name", "Reports"),
        ("redirect_uris", "https://*.acme.test/cb"),
    ];
    let (st, to, _) = act(s, &mut browser, op, &wild).await;
    assert_eq!(st, 303);
    assert!(to.contains("error="), "{to}");
    let edit = [
        ("back", back.as_str()),
        ("client", id),
        ("name", "Reports 2"),
        (
            "redirect_uris",
            "https://reports.acme.test/cb\r\nhttps://reports.acme.test/new",
        ),
        ("post_logout_redirect_uris", "https://reports.acme.test/bye"),
    ];
    let (_, to, _) = act(s, &mut browser, op, &edit).await;
    assert!(to.starts_with(&format!("{back}?notice=")), "{to}");
    let after = s
        .state
        .db
        .client(&tid(s, "acme"), &client.client_id)
        .unwrap()
        .unwrap();
    assert_eq!(after.name, "Reports 2");
    // The page carries the version it shows: a second edit from the same, now stale, page
    // is refused (412 from the API) instead of overwriting the first.
    // As a browser submits it: the attribute's `&#34;` decoded.
    let stale = hidden(&page, "etag").replace("&#34;", "\"");
    assert_eq!(stale, format!("\"{}\"", client.updated_at));
    let lost = [
        ("back", back.as_str()),
        ("client", id),
        ("etag", stale.as_str()),
        ("name", "Overwritten"),
    ];
    let (_, to, _) = act(s, &mut browser, op, &lost).await;
    assert!(to.contains("error=") && to.contains("Someone%20changed"), "{to}");
    let stored = || {
        s.state
            .db
            .client(&tid(s, "acme"), &client.client_id)
            .unwrap()
            .unwrap()
    };
    assert_eq!(stored().name, "Reports 2");
    let (_, _, fresh) = browser.get(s, &back).await;
    let current = hidden(&fresh, "etag").replace("&#34;", "\"");
    let redo = [
        ("back", back.as_str()),
        ("client", id),
        ("etag", current.as_str()),
        ("name", "Reports 3"),
        ("redirect_uris", "https://reports.acme.test/cb"),
    ];
    let (_, to, _) = act(s, &mut browser, op, &redo).await;
    assert!(to.contains("notice="), "{to}");
    assert_eq!(stored().name, "Reports 3");
    assert_eq!(
        after.redirect_uris,
        ["https://reports.acme.test/cb", "https://reports.acme.test/new"]
    );
    assert_eq!(after.post_logout_redirect_uris, ["https://reports.acme.test/bye"]);
}

/// Rotation needs the confirmation, shows the new secret once (only its hash is stored) and
/// keeps the old one for the overlap chosen; deletion needs it too and removes the client.
async fn an_application_secret_is_rotated_and_the_application_deleted(s: &TestServer) {
    use latchkey_store::ClientRepo;
    let (mut browser, csrf) = tenant_admin(s).await;
    let client = reports(s, &mut browser, &csrf).await;
    let (tenant, id) = (tid(s, "acme"), client.client_id.clone());
    let stored = || s.state.db.client(&tenant, &id).unwrap();
    let op = ("client-rotate-secret", csrf.as_str());
    let rotate = [("client", id.as_str()), ("overlap_secs", "3600")];
    let (st, _, page) = act(s, &mut browser, op, &rotate).await;
    assert_eq!(st, 400, "{page}");
    assert!(page.contains("tick its confirmation"), "{page}");
    assert_eq!(stored().unwrap().secret_hash, client.secret_hash);
    let confirmed = [rotate[0], rotate[1], ("confirm", "yes")];
    let (st, _, shown) = act(s, &mut browser, op, &confirmed).await;
    assert_eq!(st, 200, "{shown}");
    let rotated = stored().unwrap();
    let secret = shown
        .split("<dt>client_secret</dt><dd>")
        .nth(1)
        .and_then(|r| r.split('<').next())
        .unwrap();
    assert_ne!(rotated.secret_hash, client.secret_hash);
    let hash = latchkey_core::sha256_hex(secret.as_bytes());
    assert_eq!(rotated.secret_hash.as_deref(), Some(hash.as_str()));
    assert!(rotated.previous_secret.is_some() && shown.contains("The old secret works until"));
    let delete = [("client", id.as_str())];
    let (st, _, _) = act(s, &mut browser, ("client-delete", &csrf), &delete).await;
    assert_eq!(st, 400);
    assert!(stored().is_some());
    let delete = [("client", id.as_str()), ("confirm", "yes")];
    let (st, to, _) = act(s, &mut browser, ("client-delete", &csrf), &delete).await;
    assert_eq!(st, 303);
    assert!(to.starts_with("/t/acme/admin/clients?notice="), "{to}");
    assert!(stored().is_none());
}

/// A multipart form body with boundary `B0und`: fields, and files (`Some(filename)`).
fn multipart(parts: &[(&str, Option<&str>, &str)]) -> Vec<u8> {
    use std::fmt::Write as _;
    let mut body = String::new();
    for (name, file, value) in parts {
        let filename = file
            .map(|f| format!("; filename=\"{f}\"\r\nContent-Type: text/xml"))
            .unwrap_or_default();
        let _ = write!(
            body,
            "--B0und\r\nContent-Disposition: form-data; name=\"{name}\"{filename}\r\n\r\n{value}\r\n"
        );
    }
    body.push_str("--B0und--\r\n");
    body.into_bytes()
}

/// The SAML guide takes the IdP's metadata as an uploaded file (`multipart/form-data`, as the
/// browser sends a file input); a file and a pasted document together are refused, and so is
/// an upload without the CSRF token or a malformed body.
async fn saml_metadata_is_uploaded_as_a_file(s: &TestServer) {
    use latchkey_store::SamlRepo;
    let (mut browser, _) = tenant_admin(s).await;
    let (st, _, page) = browser.get(s, "/t/acme/admin/saml?kind=okta&name=okta").await;
    assert_eq!(st, 200);
    assert!(
        page.contains("enctype=\"multipart/form-data\"") && page.contains("type=\"file\""),
        "{page}"
    );
    let csrf = hidden(&page, "csrf");
    let (xml, _) = latchkey_tests::saml_idp::metadata_xml(s, "https://idp.okta.test/saml");
    let (path, ct) = (
        "/t/acme/admin/do/saml-create",
        "multipart/form-data; boundary=B0und",
    );
    let file = ("metadata_file", Some("okta.xml"), xml.as_str());
    let both = [
        ("csrf", None, csrf.as_str()),
        ("name", None, "okta"),
        ("metadata_xml", None, &xml),
        file,
    ];
    let (st, headers, _) = browser.post_body(s, path, ct, multipart(&both)).await;
    assert_eq!(st, 303);
    assert!(location(&headers).contains("error="), "{}", location(&headers));
    let tenant = tid(s, "acme");
    assert!(
        s.state
            .db
            .saml_connection_by_name(&tenant, "okta")
            .unwrap()
            .is_none()
    );
    let forged = [("name", None, "okta"), file];
    let (st, _, _) = browser.post_body(s, path, ct, multipart(&forged)).await;
    assert_eq!(st, 403);
    let (st, _, _) = browser
        .post_body(s, path, ct, b"--B0und\r\nno end".to_vec())
        .await;
    assert_eq!(st, 400);
    let upload = [
        ("csrf", None, csrf.as_str()),
        ("name", None, "okta"),
        ("kind", None, "okta"),
        ("display_name", None, "Okta"),
        ("metadata_url", None, ""),
        ("metadata_xml", None, ""),
        file,
    ];
    let (st, headers, body) = browser.post_body(s, path, ct, multipart(&upload)).await;
    assert_eq!(st, 303, "{body}");
    let to = location(&headers);
    assert!(to.starts_with("/t/acme/admin/saml/okta?notice="), "{to}");
    let made = s
        .state
        .db
        .saml_connection_by_name(&tenant, "okta")
        .unwrap()
        .unwrap();
    assert_eq!(made.idp.entity_id, "https://idp.okta.test/saml");
}

/// The user list pages by 100 with a "Next page" link that keeps the search.
async fn the_user_list_pages(s: &TestServer) {
    setup(s, "acme").await;
    let alice = user(s, "acme", "alice");
    with_totp(s, "acme", &alice);
    console_admin(s, "acme", &alice, &["user-manager"]);
    let tenant = tid(s, "acme");
    for i in 0..105 {
        let new = NewUser {
            username: format!("page{i:03}"),
            ..NewUser::default()
        };
        s.state.db.create_user(&tenant, "test", &new).unwrap();
    }
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let mut browser = signed_in_admin(s, "acme", "alice").await;
    let (st, _, first) = browser.get(s, "/t/acme/admin/users?q=page").await;
    assert_eq!(st, 200);
    assert!(
        first.contains(">page099<") && !first.contains(">page100<"),
        "{first}"
    );
    let next = first
        .split("<a href=\"")
        .filter_map(|r| r.split('"').next())
        .find(|href| href.contains("cursor="))
        .unwrap()
        .replace("&#38;", "&");
    assert!(next.contains("q=page"), "{next}");
    let (st, _, second) = browser.get(s, &next).await;
    assert_eq!(st, 200);
    assert!(
        second.contains(">page100<") && second.contains(">page104<") && !second.contains(">page099<"),
        "{second}"
    );
    assert!(!second.contains("cursor="), "the last page has no next link");
}

latchkey_tests::e2e!(
    a_user_manager_signs_in_with_two_factors_and_manages_users,
    forms_without_their_csrf_token_change_nothing,
    no_console_without_a_credential_or_a_second_factor,
    one_tenants_admin_never_reaches_another_tenants_console,
    a_client_preview_shows_what_the_portal_gets_for_a_user,
    an_operator_runs_the_installation_from_the_system_console,
    users_are_found_by_name_and_by_attribute,
    keys_rotate_and_the_audit_exports_from_the_console,
    groups_are_managed_from_the_console,
    an_application_is_registered_from_the_console,
    policies_are_changed_field_by_field,
    a_user_manager_cannot_change_policies,
    an_application_is_edited,
    an_application_secret_is_rotated_and_the_application_deleted,
    saml_metadata_is_uploaded_as_a_file,
    the_user_list_pages,
    roles_are_created_assigned_and_deleted,
);
