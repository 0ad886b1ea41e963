//! Who may call the admin API (issue 21): the permission matrix generated from the route table
//! (each route refuses a credential holding everything but its permission, audited with it,
//! and lets one holding only it through), tenant isolation on every route, no granting beyond
//! one's own permissions, and OAuth admin clients. SQLite + memory and PostgreSQL + Redis.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use latchkey_core::{Permission, Permissions, TenantId, TenantPolicy, sha256_hex};
use latchkey_server::{ADMIN_PREFIX, ADMIN_ROUTES};
use latchkey_store::{
    AuditFilter, AuditRepo, ClientRepo, NewClient, NewTenant, NewUser, TenantRepo, UserRepo,
};
use latchkey_tests::TestServer;
use latchkey_tests::admin::{call, credential, token};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::HashMap;

fn tenant(s: &TestServer, slug: &str) -> TenantId {
    s.state
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
        .id
}

fn machine_client(resources: Vec<String>) -> NewClient {
    NewClient {
        name: "CI".into(),
        client_type: latchkey_core::ClientType::Confidential,
        auth_method: latchkey_core::AuthMethod::ClientSecretBasic,
        secret_hash: Some(sha256_hex(b"ci-secret")),
        redirect_uris: vec![],
        post_logout_redirect_uris: vec![],
        grant_types: vec![latchkey_core::GrantType::ClientCredentials],
        scopes: vec![],
        access_token_format: latchkey_core::AccessTokenFormat::Jwt,
        require_pkce: true,
        introspect_others: false,
        first_party: false,
        jwks_uri: None,
        jwks: None,
        settings: latchkey_core::ClientSettings {
            resources,
            ..latchkey_core::ClientSettings::default()
        },
    }
}

/// One of each object in tenant `slug`, made over the API; answers the value each path
/// parameter takes.
async fn objects(s: &TestServer, t: &TenantId, slug: &str) -> HashMap<&'static str, String> {
    let admin = credential(s, t, &["tenant-admin"], &[], None);
    let db = &s.state.db;
    let user = db
        .create_user(
            t,
            "test",
            &NewUser {
                username: "alice".into(),
                ..NewUser::default()
            },
        )
        .unwrap();
    let client = db.create_client(t, "test", &machine_client(vec![])).unwrap();
    let base = format!("/admin/t/{slug}");
    let made = |v: &Value, k: &str| v[k].as_str().unwrap_or_else(|| panic!("{k} in {v}")).to_owned();
    let mk = |path: &str, body: &'static str| {
        let (admin, path) = (admin.clone(), format!("{base}{path}"));
        async move {
            let (st, v) = call(s, "POST", &path, &admin, Some(body)).await;
            assert_eq!(st, StatusCode::CREATED, "{path}: {v}");
            v
        }
    };
    let group = mk("/groups", r#"{"name":"staff"}"#).await;
    let role = mk("/roles", r#"{"name":"employee"}"#).await;
    let client_role = mk(
        &format!("/clients/{}/roles", client.client_id),
        r#"{"name":"viewer"}"#,
    )
    .await;
    let invitation = mk("/invitations", r#"{"email":"new@example.test"}"#).await;
    let admin_role = mk(
        "/admin-roles",
        r#"{"name":"helpdesk","permissions":["users:read"]}"#,
    )
    .await;
    let cred = mk("/credentials", r#"{"name":"spare"}"#).await;
    let attribute = mk("/attributes", r#"{"name":"region","kind":"string"}"#).await;
    let mut ids = HashMap::new();
    ids.insert("tenant", slug.to_owned());
    ids.insert("user", user.id.to_string());
    ids.insert("client", client.client_id.to_string());
    ids.insert("group", made(&group, "id"));
    ids.insert("role", made(&role, "id"));
    ids.insert("client_role", made(&client_role, "id"));
    ids.insert("invitation", made(&invitation, "id"));
    ids.insert("admin_role", made(&admin_role, "name"));
    ids.insert("credential", made(&cred, "id"));
    ids.insert("attribute", made(&attribute, "name"));
    let (saml, saml_test) = saml_objects(s, &base, &admin, slug).await;
    ids.insert("saml", saml);
    ids.insert("saml_test", saml_test);
    // An OAuth 2.0 connection: made without discovery, so without a fetch.
    let oidc = mk(
        "/oidc-connections",
        r#"{"name":"github","kind":"oauth2","issuer":"https://github.com","client_id":"Iv1.test","client_secret":"s","endpoints":{"authorization_endpoint":"https://github.com/login/oauth/authorize","token_endpoint":"https://github.com/login/oauth/access_token","userinfo_endpoint":"https://api.github.com/user"}}"#,
    )
    .await;
    ids.insert("oidc", made(&oidc, "name"));
    let (st, v) = call(
        s,
        "POST",
        &format!("{base}/domains"),
        &admin,
        Some(r#"{"domain":"corp.example","method":"dns"}"#),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    ids.insert("domain", made(&v, "domain"));
    s.state.keys.ensure_tenant(t, "test").unwrap();
    let (st, keys) = call(s, "GET", &format!("{base}/keys"), &admin, None).await;
    assert_eq!(st, StatusCode::OK, "{keys}");
    let kid = keys
        .as_array()
        .and_then(|k| k.first())
        .map(|k| made(k, "kid"))
        .expect("a key");
    ids.insert("kid", kid);
    ids
}

/// A SAML connection `corp` of the tenant and a test sign-in of it: (its name, the test's id).
async fn saml_objects(s: &TestServer, base: &str, admin: &str, slug: &str) -> (String, String) {
    let made = |v: &Value, k: &str| v[k].as_str().unwrap_or_else(|| panic!("{k} in {v}")).to_owned();
    let now = latchkey_core::Clock::now_millis(&*s.state.clock);
    let cert = latchkey_saml::generate_sp_key("Test IdP signing", now)
        .unwrap()
        .certificate;
    let metadata = format!(
        r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="https://idp.{slug}.test/saml"><md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor><md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.{slug}.test/sso"/></md:IDPSSODescriptor></md:EntityDescriptor>"#
    );
    let body = json!({"name": "corp", "metadata_xml": metadata}).to_string();
    let (st, v) = call(s, "POST", &format!("{base}/saml-connections"), admin, Some(&body)).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let saml = made(&v, "name");
    let (st, v) = call(
        s,
        "POST",
        &format!("{base}/saml-connections/corp/tests"),
        admin,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    (saml, made(&v, "id"))
}

/// A route's path with its parameters filled from `ids`, by the resource each belongs to.
fn fill(path: &str, ids: &HashMap<&'static str, String>) -> String {
    let resource = path.trim_start_matches('/').split('/').next().unwrap_or_default();
    let id_of = || match resource {
        "users" => "user",
        "clients" => "client",
        "groups" => "group",
        "roles" => "role",
        "invitations" => "invitation",
        "credentials" => "credential",
        "saml-connections" => "saml",
        "oidc-connections" => "oidc",
        other => panic!("no test object for /{other}/{{id}}: add one to `objects`"),
    };
    let mut out = String::new();
    for seg in path.split('/').filter(|s| !s.is_empty()) {
        let v = match seg {
            "{id}" => ids[id_of()].clone(),
            "{name}" if path.contains("attributes/") => ids["attribute"].clone(),
            "{name}" => ids["admin_role"].clone(),
            "{kind}" => "users".into(),
            "{member}" | "{principal}" => ids["user"].clone(),
            "{role}" => ids["client_role"].clone(),
            "{session}" => "no-such-session".into(),
            "{factor}" => "totp".into(),
            "{client}" => ids["client"].clone(),
            "{kid}" => ids["kid"].clone(),
            "{test}" => ids["saml_test"].clone(),
            "{domain}" => ids["domain"].clone(),
            s if s.starts_with('{') => panic!("no test value for {s} in {path}"),
            s => s.into(),
        };
        out.push('/');
        out.push_str(&v);
    }
    out
}

/// For each route: every permission but its own is 403 and audited with the permission; its
/// own alone passes (a read answers 2xx on a real object; a write gets past authorization on a
/// missing one, so the matrix changes nothing).
#[allow(clippy::too_many_lines)] // the matrix: one loop, its refusals counted against the audit
async fn each_route_needs_exactly_its_permission(s: &TestServer) {
    assert!(ADMIN_PREFIX.ends_with("/{tenant}"));
    let t = tenant(s, "acme");
    let ids = objects(s, &t, "acme").await;
    let mut fake = ids.clone();
    // Every object but the tenant, named by an id that exists nowhere.
    for k in ids.keys().filter(|k| **k != "tenant") {
        fake.insert(k, format!("missing-{k}"));
    }
    let before = s
        .state
        .db
        .audit_search(&t, &AuditFilter::default(), 0, 1000)
        .unwrap()
        .len();
    let mut refusals = 0;
    for r in ADMIN_ROUTES {
        let needed: Vec<Permission> = std::iter::once(r.permission)
            .chain(r.also.iter().copied())
            .collect();
        let path = format!("/admin/t/acme{}", fill(r.path, &ids));
        let body = (r.method != "GET" && r.method != "DELETE").then_some("{}");
        for p in &needed {
            let everything_else: Vec<Permission> = Permissions::tenant_all().without(*p).iter().collect();
            let all_but = token(s, &t, &everything_else);
            let (st, v) = call(s, r.method, &path, &all_but, body).await;
            assert_eq!(st, StatusCode::FORBIDDEN, "{} {path} without {p}: {v}", r.method);
            assert!(v["detail"].as_str().unwrap().contains(p.as_str()), "{v}");
            refusals += 1;
        }

        let only = token(s, &t, &needed);
        let (path, want_2xx) = if r.method == "GET" {
            (path, true)
        } else {
            (format!("/admin/t/acme{}", fill(r.path, &fake)), false)
        };
        let (st, v) = call(s, r.method, &path, &only, body).await;
        assert!(
            st != StatusCode::FORBIDDEN && st != StatusCode::UNAUTHORIZED && !st.is_server_error(),
            "{} {path} with only {}: {st} {v}",
            r.method,
            r.permission
        );
        assert!(
            !want_2xx || st.is_success(),
            "{} {path} with only {}: {st} {v}",
            r.method,
            r.permission
        );
    }
    let denied: Vec<Value> = s
        .state
        .db
        .audit_search(&t, &AuditFilter::default(), 0, 10_000)
        .unwrap()
        .into_iter()
        .skip(before)
        .filter(|e| e.action == "admin.denied")
        .map(|e| e.details["needed"].clone())
        .collect();
    assert_eq!(
        denied.len(),
        refusals,
        "one audited refusal per route and permission"
    );
    for r in ADMIN_ROUTES {
        assert!(
            denied.contains(&json!(r.permission)),
            "no refusal audited for {}",
            r.permission
        );
    }
}

/// Tenant isolation on every route: tenant beta's all-powerful credential gets 404 for each
/// of acme's objects, and nothing of acme's changes.
async fn another_tenants_objects_are_not_found_on_any_route(s: &TestServer) {
    let a = tenant(s, "acme");
    let b = tenant(s, "beta");
    let ids = objects(s, &a, "acme").await;
    let beta = credential(s, &b, &["tenant-admin"], &[], None);
    let acme_admin = credential(s, &a, &["tenant-admin"], &[], None);
    let (_, users_before) = call(s, "GET", "/admin/t/acme/users", &acme_admin, None).await;
    for r in ADMIN_ROUTES.iter().filter(|r| r.path.contains('{')) {
        let path = format!("/admin/t/beta{}", fill(r.path, &ids));
        let body = (r.method != "GET" && r.method != "DELETE").then_some("{}");
        let (st, v) = call(s, r.method, &path, &beta, body).await;
        let refused_body =
            matches!(st, StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY) && body.is_some();
        assert!(
            st == StatusCode::NOT_FOUND || refused_body,
            "{} {path}: {st} {v}",
            r.method
        );
    }
    // And acme's own credential can't reach across by naming beta in the path (a few tries:
    // each is a failed authentication, and those are throttled).
    for method in ["GET", "POST", "PATCH", "PUT", "DELETE"] {
        let r = ADMIN_ROUTES.iter().find(|r| r.method == method).unwrap();
        let path = format!("/admin/t/beta{}", fill(r.path, &ids));
        let (st, _) = call(s, r.method, &path, &acme_admin, Some("{}")).await;
        assert_eq!(
            st,
            StatusCode::UNAUTHORIZED,
            "{method} {path} with acme's credential"
        );
    }
    let (_, users_after) = call(s, "GET", "/admin/t/acme/users", &acme_admin, None).await;
    assert_eq!(users_before, users_after);
}

/// Nobody grants what they don't hold: a credential manager without `clients:write` can't make
/// a tenant admin, a custom role with it, or give it to themselves.
async fn credentials_cannot_grant_beyond_their_own(s: &TestServer) {
    let t = tenant(s, "acme");
    let mgr = token(
        s,
        &t,
        &[
            Permission::CredentialsWrite,
            Permission::CredentialsRead,
            Permission::UsersRead,
        ],
    );
    let post = |path: &'static str, body: &'static str| call(s, "POST", path, &mgr, Some(body));
    let (st, v) = post(
        "/admin/t/acme/credentials",
        r#"{"name":"x","roles":["tenant-admin"]}"#,
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    let (st, v) = post(
        "/admin/t/acme/credentials",
        r#"{"name":"x","permissions":["clients:write"]}"#,
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    let (st, v) = post(
        "/admin/t/acme/admin-roles",
        r#"{"name":"sneaky","permissions":["keys:manage"]}"#,
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    // Within reach: allowed, and the new token can do exactly that.
    let (st, v) = post(
        "/admin/t/acme/credentials",
        r#"{"name":"reader","permissions":["users:read"]}"#,
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let made = v["token"].as_str().unwrap().to_owned();
    assert_eq!(
        call(s, "GET", "/admin/t/acme/users", &made, None).await.0,
        StatusCode::OK
    );
    assert_eq!(
        call(s, "GET", "/admin/t/acme/clients", &made, None).await.0,
        StatusCode::FORBIDDEN
    );
    // Raising its own grants is the same refusal.
    let (_, me) = call(s, "GET", "/admin/t/acme/credentials", &mgr, None).await;
    let mine = me
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["permissions"].as_array().unwrap().len() == 3)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (st, v) = call(
        s,
        "PATCH",
        &format!("/admin/t/acme/credentials/{mine}"),
        &mgr,
        Some(r#"{"roles":["tenant-admin"]}"#),
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    // A system permission is never a tenant's to give.
    let root = credential(s, &t, &["tenant-admin"], &[], None);
    let (st, v) = call(
        s,
        "POST",
        "/admin/t/acme/credentials",
        &root,
        Some(r#"{"name":"x","permissions":["system:tenants:write"]}"#),
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
}

/// Automation with standard OAuth: a client of the tenant that is an admin credential gets an
/// access token for the admin API's audience by client credentials and calls the API with the
/// credential's permissions; other audiences, other tenants and revoked credentials are refused.
#[allow(clippy::too_many_lines)] // one story: the credential's life, its token refused at each turn
async fn an_oauth_admin_client_calls_with_its_permissions(s: &TestServer) {
    let t = tenant(s, "acme");
    let audience = latchkey_services::clients::admin_audience(&s.state.config.public_url, "acme");
    let mut new = machine_client(vec![audience.clone(), "https://api.acme.test/".into()]);
    new.name = "CI bot".into();
    let client = s.state.db.create_client(&t, "test", &new).unwrap();
    // The client id is generated; make the test's basic auth name it.
    let root = credential(s, &t, &["tenant-admin"], &[], None);
    let (st, v) = call(
        s,
        "POST",
        "/admin/t/acme/credentials",
        &root,
        Some(&format!(
            r#"{{"name":"ci","client_id":"{}","roles":["user-manager"]}}"#,
            client.client_id
        )),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["kind"], "client");
    assert!(v.get("token").is_none(), "no lka_ token for a client credential");
    let id = v["id"].as_str().unwrap().to_owned();
    let at = |resource: Option<&str>| {
        let (cid, resource) = (client.client_id.to_string(), resource.map(str::to_owned));
        async move {
            let mut form = vec![("grant_type".to_owned(), "client_credentials".to_owned())];
            if let Some(r) = resource {
                form.push(("resource".into(), r));
            }
            let res = TestServer::client()
                .post(s.url("/t/acme/token"))
                .basic_auth(cid, Some("ci-secret"))
                .form(&form)
                .send()
                .await
                .unwrap();
            let st = res.status();
            let v: Value = res.json().await.unwrap();
            assert_eq!(st, StatusCode::OK, "{v}");
            v["access_token"].as_str().unwrap().to_owned()
        }
    };
    let good = at(Some(&audience)).await;
    assert_eq!(
        call(s, "GET", "/admin/t/acme/users", &good, None).await.0,
        StatusCode::OK
    );
    let (st, v) = call(s, "POST", "/admin/t/acme/clients", &good, Some("{}")).await;
    assert_eq!(
        st,
        StatusCode::FORBIDDEN,
        "user-manager may not register clients: {v}"
    );
    // The change is audited with the client and the permission that let it through.
    let events = s
        .state
        .db
        .audit_search(&t, &AuditFilter::default(), 0, 10_000)
        .unwrap();
    let read = events.iter().rev().find(|e| e.action == "user.list").unwrap();
    assert_eq!(
        read.actor,
        format!("admin_client:{}#users:read", client.client_id)
    );
    // A token for another audience, or for the client itself, opens nothing here.
    for other in [at(Some("https://api.acme.test/")).await, at(None).await] {
        assert_eq!(
            call(s, "GET", "/admin/t/acme/users", &other, None).await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    // Nor at another tenant's admin API.
    tenant(s, "beta");
    assert_eq!(
        call(s, "GET", "/admin/t/beta/users", &good, None).await.0,
        StatusCode::UNAUTHORIZED
    );
    // A revoked credential stops the client's tokens at once.
    assert_eq!(
        call(
            s,
            "DELETE",
            &format!("/admin/t/acme/credentials/{id}"),
            &root,
            None
        )
        .await
        .0,
        StatusCode::OK
    );
    assert_eq!(
        call(s, "GET", "/admin/t/acme/users", &good, None).await.0,
        StatusCode::UNAUTHORIZED
    );
    // A client not registered for the admin API can't be made one.
    let plain = s
        .state
        .db
        .create_client(&t, "test", &machine_client(vec![]))
        .unwrap();
    let (st, v) = call(
        s,
        "POST",
        "/admin/t/acme/credentials",
        &root,
        Some(&format!(r#"{{"name":"x","client_id":"{}"}}"#, plain.client_id)),
    )
    .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(v["detail"].as_str().unwrap().contains(&audience), "{v}");
}

latchkey_tests::e2e!(
    each_route_needs_exactly_its_permission,
    another_tenants_objects_are_not_found_on_any_route,
    credentials_cannot_grant_beyond_their_own,
    an_oauth_admin_client_calls_with_its_permissions,
);
