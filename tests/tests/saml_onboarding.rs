//! SAML onboarding (issue 22, item 4) end to end on both backends, against the pysaml2 test IdP
//! (`tests/saml/idp.py`): a test sign-in runs the real flow and shows the decoded assertion
//! without signing anyone in, provisioning or linking; a refused one names the audit reason and
//! what to change at the IdP; tests are scoped to their tenant and connection and start once;
//! a connection's health shows certificate expiry and refused sign-ins by reason.

#![allow(clippy::unwrap_used, clippy::too_many_lines, clippy::many_single_char_names)] // test code

use latchkey_core::{AuditEvent, Outcome, Permission, SamlConnection, SamlOptions, Tenant};
use latchkey_store::{AuditFilter, AuditRepo, RoleRepo, SamlRepo, TenantRepo, UserRepo};
use latchkey_tests::TestServer;
use latchkey_tests::admin::{call, token};
use latchkey_tests::browser::{Browser, session_cookie, setup};
use latchkey_tests::saml_idp::{SamlIdp, form_fields};
use reqwest::StatusCode;
use serde_json::{Value, json};

const SLUG: &str = "acme";

fn tenant(s: &TestServer, slug: &str) -> Tenant {
    s.state.db.tenant_by_slug(slug).unwrap().unwrap()
}

fn corp_options() -> SamlOptions {
    let mut o = SamlOptions {
        domains: vec!["corp.example".into()],
        ..SamlOptions::default()
    };
    o.mapping.email = Some("mail".into());
    o.mapping.name = Some("displayName".into());
    o.mapping.groups = Some("groups".into());
    o.role_map = vec![
        ("admins".into(), "administrator".into()),
        ("auditors".into(), "auditor".into()),
    ];
    o.group_map = vec![("engineering".into(), "engineers".into())];
    o
}

/// Tenant `slug` with the roles and groups the maps name, connected to `idp` as `name`, and
/// the IdP given our SP metadata.
async fn connect(s: &TestServer, idp: &SamlIdp, slug: &str, name: &str) -> SamlConnection {
    setup(s, slug).await;
    let t = tenant(s, slug);
    s.state
        .db
        .create_role(&t.id, "test", "administrator", None)
        .unwrap();
    latchkey_store::GroupRepo::create_group(&s.state.db, &t.id, "test", "engineers", None).unwrap();
    let now = s.state.clock.now_millis();
    let descriptor = latchkey_saml::parse_idp_metadata(&idp.metadata(false).await, now).unwrap();
    let c = latchkey_tests::saml_idp::create_connection(s, slug, name, descriptor, corp_options(), None);
    let (st, _, sp_metadata) = Browser::default()
        .get(s, &format!("/t/{slug}/saml/{name}/metadata"))
        .await;
    assert_eq!(st, StatusCode::OK);
    idp.register_sp(&sp_metadata).await;
    c
}

fn admin(s: &TestServer, slug: &str) -> String {
    token(
        s,
        &tenant(s, slug).id,
        &[Permission::SamlRead, Permission::SamlWrite],
    )
}

/// Makes a test of connection `name`: (its id, the start path, the start token).
async fn new_test(s: &TestServer, slug: &str, name: &str, tok: &str) -> (String, String, String) {
    let (st, v) = call(
        s,
        "POST",
        &format!("/admin/t/{slug}/saml-connections/{name}/tests"),
        tok,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let start_url = v["start_url"].as_str().unwrap();
    assert_eq!(start_url, format!("{}/saml/{name}/test", s.issuer(slug)));
    let start = v["start"].as_str().unwrap().to_owned();
    let id = v["id"].as_str().unwrap().to_owned();
    assert_ne!(start, id);
    assert!(!start_url.contains(&start), "the start token is not in a URL");
    assert!(v["expires_at"].as_i64().unwrap() > s.state.clock.now_millis());
    let path = start_url.strip_prefix(&s.base_url).unwrap().to_owned();
    (id, path, start)
}

/// The browser posts the start token and goes to the IdP: the IdP's auto-submit form.
async fn start_at_idp(
    s: &TestServer,
    b: &mut Browser,
    path: &str,
    start: &str,
    case: Option<&str>,
) -> (String, Vec<(String, String)>) {
    let (st, h, page) = b.post(s, path, &[("start", start)], &[]).await;
    assert_eq!(st, StatusCode::SEE_OTHER, "{page}");
    let mut to_idp = h.get("location").unwrap().to_str().unwrap().to_owned();
    assert!(to_idp.contains("SAMLRequest="), "{to_idp}");
    if let Some(case) = case {
        to_idp = format!("{to_idp}&case={case}");
    }
    let res = TestServer::client().get(&to_idp).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    form_fields(&res.text().await.unwrap())
}

async fn post_acs(
    s: &TestServer,
    b: &mut Browser,
    action: &str,
    fields: &[(String, String)],
    extra: &[(&str, &str)],
) -> (StatusCode, String) {
    let path = action.strip_prefix(&s.base_url).unwrap_or(action);
    let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (st, _, page) = b.post(s, path, &pairs, extra).await;
    (st, page)
}

fn events(s: &TestServer, slug: &str, action: &str) -> Vec<AuditEvent> {
    let filter = AuditFilter {
        action: Some(action.into()),
        ..AuditFilter::default()
    };
    s.state
        .db
        .audit_search(&tenant(s, slug).id, &filter, 0, 1000)
        .unwrap()
}

async fn get_test(s: &TestServer, slug: &str, name: &str, id: &str, tok: &str) -> (StatusCode, Value) {
    call(
        s,
        "GET",
        &format!("/admin/t/{slug}/saml-connections/{name}/tests/{id}"),
        tok,
        None,
    )
    .await
}

/// A test sign-in through the real IdP: the result shows issuer, NameID, attributes, groups
/// and the roles they map to, the certificate used and the skew; nobody is signed in, no user
/// is created or linked, no role given. The start token works once, from our origin only.
async fn test_sign_in_shows_the_assertion_and_signs_nobody_in(s: &TestServer) {
    let idp = SamlIdp::start();
    let c = connect(s, &idp, SLUG, "corp").await;
    let t = tenant(s, SLUG);
    let tok = admin(s, SLUG);
    let users_before = s.state.db.list_users(&t.id).unwrap().len();
    let (id, path, start) = new_test(s, SLUG, "corp", &tok).await;
    let (st, v) = get_test(s, SLUG, "corp", &id, &tok).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["status"], "pending");

    let mut b = Browser::default();
    // A cross-site post can't start it (and doesn't spend the token).
    let (st, _, page) = b
        .post(
            s,
            &path,
            &[("start", &start)],
            &[("sec-fetch-site", "cross-site")],
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{page}");
    let (action, fields) = start_at_idp(s, &mut b, &path, &start, None).await;
    // The token is spent.
    let (st, _, page) = Browser::default().post(s, &path, &[("start", &start)], &[]).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(page.contains("started already or has expired"), "{page}");

    let (st, page) = post_acs(s, &mut b, &action, &fields, &[]).await;
    assert_eq!(st, StatusCode::OK, "{page}");
    assert!(page.contains("Test sign-in finished"), "{page}");
    assert!(page.contains("acme Corp"), "the tenant's look: {page}");
    assert!(session_cookie(&b, SLUG).is_none(), "no session");
    assert_eq!(
        s.state.db.list_users(&t.id).unwrap().len(),
        users_before,
        "no JIT user"
    );
    assert!(
        s.state
            .db
            .saml_identity(&t.id, &c.id, "alice@corp.example")
            .unwrap()
            .is_none(),
        "no link"
    );
    assert!(events(s, SLUG, "saml.acs").is_empty(), "not a sign-in");

    let (st, v) = get_test(s, SLUG, "corp", &id, &tok).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "succeeded", "{v}");
    let a = &v["assertion"];
    assert_eq!(a["issuer"], idp.entity_id.as_str());
    assert_eq!(a["name_id"], "alice@corp.example");
    assert_eq!(a["email"], "alice@corp.example");
    assert_eq!(a["display_name"], "Alice Example");
    assert_eq!(a["groups"], json!(["engineering", "admins"]));
    assert_eq!(a["roles"], json!(["administrator"]));
    assert_eq!(a["mapped_groups"], json!(["engineers"]));
    assert!(a["linked_user"].is_null());
    let attributes = a["attributes"].as_array().unwrap();
    assert!(
        attributes
            .iter()
            .any(|x| x["name"] == "mail" && x["values"] == json!(["alice@corp.example"])),
        "{a}"
    );
    let (entity_id, _) = latchkey_server::sp_urls(&s.state, SLUG, "corp");
    assert_eq!(a["audience"], entity_id.as_str());
    assert!(!a["in_response_to"].as_str().unwrap().is_empty(), "{a}");
    let cert = latchkey_saml::certs::info(&c.idp.certificates[0]).unwrap();
    assert_eq!(a["signing_certificate"]["sha256"], cert.sha256.as_str());
    assert_eq!(a["signing_certificate"]["not_after"], cert.not_after);
    assert!(a["time_skew_seconds"].as_f64().unwrap().abs() < 60.0, "{a}");
    assert!(a["response_signed"].as_bool().unwrap() || a["assertion_signed"].as_bool().unwrap());

    let audited = events(s, SLUG, "saml.test");
    assert_eq!(audited.len(), 1);
    assert_eq!(audited[0].outcome, Outcome::Success);
    assert_eq!(audited[0].details["outcome"], "succeeded");
}

/// The IdP sends the wrong audience: the test is refused with the reason a sign-in's audit
/// event records and a hint naming our entity id, on a German page; the refusal is audited as
/// `saml.test`, not as a sign-in.
async fn test_sign_in_refusal_names_the_reason_and_the_fix(s: &TestServer) {
    let idp = SamlIdp::start();
    connect(s, &idp, SLUG, "corp").await;
    let tok = admin(s, SLUG);
    let (id, path, start) = new_test(s, SLUG, "corp", &tok).await;
    let mut b = Browser::default();
    let (action, fields) = start_at_idp(s, &mut b, &path, &start, Some("wrong_audience")).await;
    let (st, page) = post_acs(s, &mut b, &action, &fields, &[("accept-language", "de")]).await;
    assert_eq!(st, StatusCode::OK, "{page}");
    assert!(page.contains("Testanmeldung beendet"), "{page}");
    assert!(session_cookie(&b, SLUG).is_none());

    let (st, v) = get_test(s, SLUG, "corp", &id, &tok).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["status"], "refused", "{v}");
    assert!(v["assertion"].is_null());
    assert_eq!(v["refusal"]["reason"], "audience");
    let (entity_id, _) = latchkey_server::sp_urls(&s.state, SLUG, "corp");
    let hint = v["refusal"]["hint"].as_str().unwrap();
    assert!(hint.contains("Entity ID") && hint.contains(&entity_id), "{hint}");
    let audited = events(s, SLUG, "saml.test");
    assert_eq!(audited.len(), 1);
    assert_eq!(audited[0].outcome, Outcome::Failure);
    assert_eq!(audited[0].details["reason"], "audience");
    assert!(events(s, SLUG, "saml.acs").is_empty());
}

/// A test id is found only under its own tenant and connection; a read-only credential can't
/// make tests; ids of the wrong shape are 404, never 500.
async fn tests_are_scoped_to_their_tenant_and_connection(s: &TestServer) {
    let idp = SamlIdp::start();
    connect(s, &idp, SLUG, "corp").await;
    let now = s.state.clock.now_millis();
    let d = latchkey_saml::parse_idp_metadata(&idp.metadata(false).await, now).unwrap();
    latchkey_tests::saml_idp::create_connection(s, SLUG, "other", d, SamlOptions::default(), None);
    connect(s, &idp, "globex", "corp").await;
    let tok = admin(s, SLUG);
    let globex = admin(s, "globex");
    let (id, _, _) = new_test(s, SLUG, "corp", &tok).await;
    assert_eq!(get_test(s, SLUG, "corp", &id, &tok).await.0, StatusCode::OK);
    assert_eq!(
        get_test(s, SLUG, "other", &id, &tok).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get_test(s, "globex", "corp", &id, &globex).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get_test(s, SLUG, "corp", &id, &globex).await.0,
        StatusCode::UNAUTHORIZED
    );
    for bad in ["x", "..%2F..", &"a".repeat(22)] {
        assert_eq!(
            get_test(s, SLUG, "corp", bad, &tok).await.0,
            StatusCode::NOT_FOUND,
            "{bad}"
        );
    }
    let reader = token(s, &tenant(s, SLUG).id, &[Permission::SamlRead]);
    let (st, _) = call(
        s,
        "POST",
        &format!("/admin/t/{SLUG}/saml-connections/corp/tests"),
        &reader,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, _) = call(
        s,
        "POST",
        &format!("/admin/t/{SLUG}/saml-connections/nope/tests"),
        &tok,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    // A start token of another connection starts nothing there.
    let (_, _, start) = new_test(s, SLUG, "corp", &tok).await;
    let (st, _, _) = Browser::default()
        .post(
            s,
            &format!("/t/{SLUG}/saml/other/test"),
            &[("start", &start)],
            &[],
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
}

/// Health: certificate expiry (ok, warning under 30 days, expired), a refused sign-in counted
/// by its reason, the last successful sign-in; a test's refusal is not counted.
async fn health_shows_certificate_expiry_and_failures_by_reason(s: &TestServer) {
    let idp = SamlIdp::start();
    let c = connect(s, &idp, SLUG, "corp").await;
    let t = tenant(s, SLUG);
    let tok = admin(s, SLUG);
    let now = s.state.clock.now_millis();
    let day = 86_400_000;
    let soon = latchkey_saml::generate_sp_key("soon", now - 3640 * day).unwrap();
    let gone = latchkey_saml::generate_sp_key("gone", now - 3660 * day).unwrap();
    let mut idp_desc = c.idp.clone();
    idp_desc.certificates.push(soon.certificate);
    idp_desc.certificates.push(gone.certificate);
    s.state
        .db
        .update_saml_connection(
            &t.id,
            "test",
            &c.id,
            &latchkey_store::SamlConnectionUpdate {
                idp: Some(idp_desc),
                ..latchkey_store::SamlConnectionUpdate::default()
            },
        )
        .unwrap();

    // One real sign-in, then one refused for its audience.
    let mut b = Browser::default();
    let signed_in = sign_in(s, &mut b, None).await;
    assert_eq!(signed_in, StatusCode::SEE_OTHER);
    let refused = sign_in(s, &mut Browser::default(), Some("wrong_audience")).await;
    assert_eq!(refused, StatusCode::BAD_REQUEST);
    // A test's refusal is not a sign-in's.
    let (_, path, start) = new_test(s, SLUG, "corp", &tok).await;
    let mut b = Browser::default();
    let (action, fields) = start_at_idp(s, &mut b, &path, &start, Some("wrong_audience")).await;
    post_acs(s, &mut b, &action, &fields, &[]).await;

    let (st, h) = call(
        s,
        "GET",
        &format!("/admin/t/{SLUG}/saml-connections/corp/health"),
        &tok,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{h}");
    assert_eq!(h["connection"], "corp");
    assert_eq!(h["metadata"]["outcome"], "inline");
    let certs = h["certificates"].as_array().unwrap();
    assert_eq!(certs.len(), 3, "{h}");
    assert_eq!(certs[0]["warning"], false);
    assert!(certs[0]["days_left"].as_i64().unwrap() > 300);
    assert_eq!(certs[1]["warning"], true);
    assert_eq!(certs[1]["expired"], false);
    assert!((8..=10).contains(&certs[1]["days_left"].as_i64().unwrap()), "{h}");
    assert_eq!(certs[2]["expired"], true);
    assert_eq!(certs[2]["warning"], true);
    assert!(certs[2]["days_left"].as_i64().unwrap() < 0);
    assert_eq!(h["failures"]["by_reason"], json!({"audience": 1}), "{h}");
    assert_eq!(h["failures"]["total"], 1);
    assert!(h["last_sign_in_at"].as_i64().unwrap() >= now);
    assert_eq!(h["attention"], true);
    let reader = token(s, &t.id, &[Permission::UsersRead]);
    let (st, _) = call(
        s,
        "GET",
        &format!("/admin/t/{SLUG}/saml-connections/corp/health"),
        &reader,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
}

/// An SP-initiated sign-in (no OIDC interaction) through connection `corp`: the ACS's status.
async fn sign_in(s: &TestServer, b: &mut Browser, case: Option<&str>) -> StatusCode {
    let (st, h, page) = b.get(s, &format!("/t/{SLUG}/saml/corp/login")).await;
    assert_eq!(st, StatusCode::SEE_OTHER, "{page}");
    let mut to_idp = h.get("location").unwrap().to_str().unwrap().to_owned();
    if let Some(case) = case {
        to_idp = format!("{to_idp}&case={case}");
    }
    let res = TestServer::client().get(&to_idp).send().await.unwrap();
    let (action, fields) = form_fields(&res.text().await.unwrap());
    post_acs(s, b, &action, &fields, &[]).await.0
}

/// The console's SAML pages: the guide shows the values to copy for the IdP kind, the
/// connection page its health, and a test sign-in started from the console (its start token in
/// a form body, never a URL) ends in the decoded assertion with mapped roles, or, with the
/// wrong audience at the IdP, in the refusal's reason and what to change.
async fn the_console_runs_a_test_sign_in_and_shows_its_outcome(s: &TestServer) {
    use latchkey_tests::browser::hidden;
    use latchkey_tests::console::{console_admin, signed_in_admin, with_totp};
    let idp = SamlIdp::start();
    connect(s, &idp, SLUG, "corp").await;
    let alice = s
        .state
        .db
        .user_by_username(&tenant(s, SLUG).id, "alice")
        .unwrap()
        .unwrap();
    with_totp(s, SLUG, &alice);
    console_admin(s, SLUG, &alice, &["tenant-admin"]);
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let mut admin = signed_in_admin(s, SLUG, "alice").await;
    let (st, _, guide) = admin.get(s, "/t/acme/admin/saml?kind=okta&name=okta1").await;
    assert_eq!(st, StatusCode::OK, "{guide}");
    let (entity, acs) = latchkey_server::sp_urls(&s.state, SLUG, "okta1");
    assert!(
        guide.contains("Audience URI (SP Entity ID)") && guide.contains(&entity) && guide.contains(&acs),
        "{guide}"
    );
    let (st, _, page) = admin.get(s, "/t/acme/admin/saml/corp").await;
    assert_eq!(st, StatusCode::OK, "{page}");
    assert!(page.contains("IdP signing certificates"), "{page}");
    for (case, want) in [
        (None, "Decoded assertion"),
        (Some("wrong_audience"), "What to change at the IdP"),
    ] {
        let csrf = hidden(&page, "csrf");
        let form = [
            ("csrf", csrf.as_str()),
            ("back", "/t/acme/admin/saml/corp"),
            ("name", "corp"),
        ];
        let (st, _, started) = admin.post(s, "/t/acme/admin/do/saml-test", &form, &[]).await;
        assert_eq!(st, StatusCode::OK, "{started}");
        assert!(started.contains("target=\"_blank\""), "{started}");
        let start = hidden(&started, "start");
        let result = started
            .split("<p><a href=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_owned();
        assert!(!result.contains(&start), "the start token is not in a URL");
        let (_, _, pending) = admin.get(s, &result).await;
        assert!(pending.contains("pending"), "{pending}");
        // The new window: the IdP, then back to the ACS; nobody is signed in.
        let mut window = Browser::default();
        let (action, fields) = start_at_idp(s, &mut window, "/t/acme/saml/corp/test", &start, case).await;
        let (st, _) = post_acs(s, &mut window, &action, &fields, &[]).await;
        assert_eq!(st, StatusCode::OK);
        assert!(session_cookie(&window, SLUG).is_none());
        let (st, _, shown) = admin.get(s, &result).await;
        assert_eq!(st, StatusCode::OK);
        assert!(shown.contains(want), "{shown}");
        if case.is_none() {
            assert!(shown.contains("administrator"), "the mapped role: {shown}");
        } else {
            assert!(shown.contains("audience"), "{shown}");
        }
    }
}

latchkey_tests::e2e!(
    the_console_runs_a_test_sign_in_and_shows_its_outcome,
    test_sign_in_shows_the_assertion_and_signs_nobody_in,
    test_sign_in_refusal_names_the_reason_and_the_fix,
    tests_are_scoped_to_their_tenant_and_connection,
    health_shows_certificate_expiry_and_failures_by_reason,
);
