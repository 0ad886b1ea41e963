//! Tenants as code (docs/tenants-as-code.md): a tenant built from a file exports as that file,
//! applying twice changes nothing the second time, `prune` alone deletes what the file does not
//! mention, secrets are references (never in clear, never resolved over the API), bad files get
//! clear errors, a dry run changes nothing, and the API's tokens stay within their tenant and
//! role. Runs on SQLite + memory and PostgreSQL + Redis.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use latchkey_core::{TenantId, TenantPolicy};
use latchkey_services::ServiceError;
use latchkey_services::tenant_file::{self, Current, Format, Metadata, SecretRef, Secrets};
use latchkey_store::{AuditRepo, GroupRepo, NewTenant, TenantRepo};
use latchkey_tests::TestServer;
use reqwest::StatusCode;
use serde_json::Value;
use std::collections::BTreeMap;

/// The example of docs/tenants-as-code.md, applied as written.
const EXAMPLE: &str = include_str!("../../docs/examples/tenant.yaml");

/// A small file without secret references (the API resolves none).
const FILE: &str = "tenant: acme
groups:
  - name: staff
  - name: finance
    parent: staff
  - name: old-team
roles:
  - name: employee
    groups: [staff]
clients:
  - name: Batch
    grant_types: [client_credentials]
    scopes: [reports]
    require_pkce: false
";

/// Resolves `{env: NAME}` from a map, as the CLI does from its environment.
struct Env(BTreeMap<&'static str, String>);

impl Secrets for Env {
    fn resolve(&self, at: &str, r: &SecretRef) -> Result<String, ServiceError> {
        match r {
            SecretRef::Env(name) => self.0.get(name.as_str()).cloned(),
            SecretRef::File(_) => None,
        }
        .ok_or_else(|| ServiceError::TenantFile {
            at: at.into(),
            message: "unset".into(),
        })
    }
}

/// No fetched metadata (the file's connections, if any, are inline).
fn none(s: &TestServer) -> Metadata {
    Metadata::none(latchkey_core::Clock::now_millis(&*s.state.clock))
}

fn tenant(s: &TestServer, slug: &str) -> TenantId {
    let new = NewTenant {
        slug: slug.into(),
        display_name: None,
        policy: TenantPolicy::default(),
    };
    s.state.db.create_tenant("test", &new).unwrap().id
}

fn token(s: &TestServer, t: &TenantId, role: &str) -> String {
    latchkey_tests::admin::with_role(s, t, role)
}

/// `POST /admin/t/{slug}/apply{query}` with a YAML body.
async fn apply(s: &TestServer, slug: &str, query: &str, token: &str, body: &str) -> (StatusCode, Value) {
    send(
        s,
        &format!("/admin/t/{slug}/apply{query}"),
        token,
        "application/yaml",
        body,
    )
    .await
}

async fn send(
    s: &TestServer,
    path: &str,
    token: &str,
    content_type: &str,
    body: &str,
) -> (StatusCode, Value) {
    let res = TestServer::client()
        .post(s.url(path))
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let st = res.status();
    (st, res.json().await.unwrap_or(Value::Null))
}

async fn export(s: &TestServer, slug: &str, token: &str) -> (StatusCode, Value) {
    let res = TestServer::client()
        .get(s.url(&format!("/admin/t/{slug}/export")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let st = res.status();
    (st, res.json().await.unwrap_or(Value::Null))
}

/// A client-credentials token request: the status says whether the secret authenticated.
async fn cc_token(s: &TestServer, slug: &str, client_id: &str, secret: &str) -> StatusCode {
    TestServer::client()
        .post(s.url(&format!("/t/{slug}/token")))
        .basic_auth(client_id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .status()
}

/// The tenant's audit events with this action.
fn events(s: &TestServer, t: &TenantId, action: &str) -> Vec<latchkey_core::AuditEvent> {
    let all = s.state.db.audit_events(t, 0, 10_000).unwrap();
    all.into_iter().filter(|e| e.action == action).collect()
}

fn lines(v: &Value, key: &str) -> Vec<String> {
    v[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["line"].as_str().unwrap().to_owned())
        .collect()
}

/// The documented example, applied through the shared service with its `{env: …}` secrets:
/// exported, it applies to a second tenant that exports the same; planned again, nothing; and
/// the referenced secret authenticates its client at the token endpoint.
async fn the_example_file_round_trips_and_its_env_secret_authenticates(s: &TestServer) {
    let db = &s.state.db;
    let secrets = Env(BTreeMap::from([
        ("PORTAL_SECRET", "p".repeat(40)),
        ("EXPORT_SECRET", "e".repeat(40)),
    ]));
    let file = tenant_file::parse(EXAMPLE, Format::Yaml).unwrap();
    let plan = tenant_file::plan(&Current::empty(), &file, false, &secrets, &none(s)).unwrap();
    assert!(plan.creates_tenant());
    let applied = tenant_file::apply(db, None, "test", &plan, &latchkey_core::OsRng).unwrap();
    assert_eq!(applied.applied, plan.changes.len());
    assert_eq!(applied.secrets.len(), 0, "every secret came by reference");
    let acme = db.tenant_by_slug("acme").unwrap().unwrap();
    let again = tenant_file::plan(
        &Current::load(db, &acme).unwrap(),
        &file,
        false,
        &secrets,
        &none(s),
    )
    .unwrap();
    assert!(
        again.changes.is_empty(),
        "{:?}",
        again.lines().collect::<Vec<_>>()
    );
    // Round trip: the export, applied to a new tenant, exports as itself.
    let exported = tenant_file::export(&Current::load(db, &acme).unwrap()).unwrap();
    let text = tenant_file::render(&exported, Format::Yaml).unwrap();
    assert!(
        !text.contains("client_secret:") && !text.contains("webhook_secret"),
        "{text}"
    );
    let copy = tenant_file::parse(&text.replacen("tenant: acme", "tenant: copy", 1), Format::Yaml).unwrap();
    let plan = tenant_file::plan(&Current::empty(), &copy, false, &secrets, &none(s)).unwrap();
    tenant_file::apply(db, None, "test", &plan, &latchkey_core::OsRng).unwrap();
    let copied = db.tenant_by_slug("copy").unwrap().unwrap();
    let mut back = tenant_file::export(&Current::load(db, &copied).unwrap()).unwrap();
    back.tenant = "acme".into();
    assert_eq!(back, exported);
    // The file's claims, parents and assignments are what the tenant holds.
    let finance = db.group_by_name(&acme.id, "finance").unwrap().unwrap();
    assert_eq!(finance.path, "/staff/finance");
    let (roles, client_roles) = db.roles_of_group(&acme.id, &finance.id).unwrap();
    assert_eq!(roles, ["billing-admin"]);
    assert_eq!(client_roles[0].name, "reports:read");
    // The secret from the environment authenticates the machine client.
    let batch = &applied.created_clients["Nightly export"];
    assert_eq!(cc_token(s, "acme", batch, &"e".repeat(40)).await, StatusCode::OK);
    assert_eq!(
        cc_token(s, "acme", batch, &"x".repeat(40)).await,
        StatusCode::UNAUTHORIZED
    );
    // A changed secret plans one change, and then authenticates instead of the old one.
    let rotated = Env(BTreeMap::from([
        ("PORTAL_SECRET", "p".repeat(40)),
        ("EXPORT_SECRET", "f".repeat(40)),
    ]));
    let plan = tenant_file::plan(
        &Current::load(db, &acme).unwrap(),
        &file,
        false,
        &rotated,
        &none(s),
    )
    .unwrap();
    assert_eq!(
        plan.lines().collect::<Vec<_>>(),
        ["~ client Nightly export: client_secret (from env EXPORT_SECRET)"]
    );
    tenant_file::apply(db, None, "test", &plan, &latchkey_core::OsRng).unwrap();
    assert_eq!(cc_token(s, "acme", batch, &"f".repeat(40)).await, StatusCode::OK);
}

/// Over the API: the first apply creates and answers a new client's secret once; the second
/// plans nothing; the export, sent back, plans nothing either.
async fn applying_over_the_api_twice_changes_nothing_the_second_time(s: &TestServer) {
    let a = tenant(s, "acme");
    let admin = token(s, &a, "tenant-admin");
    let (st, first) = apply(s, "acme", "", &admin, FILE).await;
    assert_eq!(st, StatusCode::OK, "{first}");
    assert!(
        lines(&first, "changes").contains(&"+ group staff".to_owned()),
        "{first}"
    );
    assert_eq!(first["applied"], first["changes"].as_array().unwrap().len());
    let secret = first["secrets"][0]["client_secret"].as_str().unwrap();
    let batch = first["created_clients"]["Batch"].as_str().unwrap();
    assert_eq!(cc_token(s, "acme", batch, secret).await, StatusCode::OK);
    let (st, second) = apply(s, "acme", "", &admin, FILE).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(second["changes"], serde_json::json!([]), "{second}");
    assert_eq!(second["secrets"], serde_json::json!([]));
    let (st, exported) = export(s, "acme", &admin).await;
    assert_eq!(st, StatusCode::OK);
    assert!(exported.get("clients").is_some() && !exported.to_string().contains("secret_hash"));
    let path = "/admin/t/acme/apply?dry_run=true";
    let (st, plan) = send(s, path, &admin, "application/json", &exported.to_string()).await;
    assert_eq!(st, StatusCode::OK, "{plan}");
    assert_eq!(plan["changes"], serde_json::json!([]), "{plan}");
    // A role's description is declarative too.
    let described = FILE.replace(
        "  - name: employee\n",
        "  - name: employee\n    description: Everyone on staff\n",
    );
    let (st, plan) = apply(s, "acme", "", &admin, &described).await;
    assert_eq!(st, StatusCode::OK, "{plan}");
    assert_eq!(
        lines(&plan, "changes"),
        ["~ role employee: description null → \"Everyone on staff\""]
    );
    assert_eq!(
        apply(s, "acme", "", &admin, &described).await.1["changes"],
        serde_json::json!([])
    );
    // The secret survived every apply.
    assert_eq!(cc_token(s, "acme", batch, secret).await, StatusCode::OK);
}

/// A group left out of the file is kept (and the plan says so) until `prune=true`.
async fn a_removed_group_is_kept_without_prune_and_deleted_with_it(s: &TestServer) {
    let a = tenant(s, "acme");
    let admin = token(s, &a, "tenant-admin");
    assert_eq!(apply(s, "acme", "", &admin, FILE).await.0, StatusCode::OK);
    let without = FILE.replace("  - name: old-team\n", "");
    let (st, kept) = apply(s, "acme", "", &admin, &without).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(kept["changes"], serde_json::json!([]));
    assert_eq!(
        lines(&kept, "kept"),
        ["- group old-team (kept: not in file; use --prune)"]
    );
    assert!(s.state.db.group_by_name(&a, "old-team").unwrap().is_some());
    let (st, pruned) = apply(s, "acme", "?prune=true", &admin, &without).await;
    assert_eq!(st, StatusCode::OK, "{pruned}");
    assert_eq!(lines(&pruned, "changes"), ["- group old-team"]);
    assert!(s.state.db.group_by_name(&a, "old-team").unwrap().is_none());
    let events = events(s, &a, "group.delete");
    assert_eq!(events.len(), 1, "the deletion is audited by the store");
}

/// A secret in clear is refused naming where it is; a reference is refused over the API.
async fn secrets_in_clear_and_references_are_refused(s: &TestServer) {
    let a = tenant(s, "acme");
    let admin = token(s, &a, "tenant-admin");
    let clear = format!("{FILE}    client_secret: hunter2-but-much-longer-than-that\n");
    let (st, e) = apply(s, "acme", "?dry_run=true", &admin, &clear).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let detail = e["detail"].as_str().unwrap();
    assert!(
        detail.contains("clients[0].client_secret") && detail.contains("in clear"),
        "{detail}"
    );
    assert!(!detail.contains("hunter2"), "the secret is not echoed");
    let token_in_file = FILE.replace(
        "name: old-team",
        &format!("name: old-team\n    description: {admin}"),
    );
    let (st, e) = apply(s, "acme", "?dry_run=true", &admin, &token_in_file).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(
        e["detail"].as_str().unwrap().contains("groups[2].description"),
        "{e}"
    );
    let reference = format!("{FILE}    client_secret: {{env: HOME}}\n");
    let (st, e) = apply(s, "acme", "", &admin, &reference).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(
        e["detail"]
            .as_str()
            .unwrap()
            .contains("not resolved over the API"),
        "{e}"
    );
    assert!(
        s.state.db.list_groups(&a).unwrap().is_empty(),
        "nothing was applied"
    );
}

/// Malformed, oversized and unknown-field files, bad queries and media types get clear errors.
async fn bad_files_get_clear_errors(s: &TestServer) {
    let a = tenant(s, "acme");
    let admin = token(s, &a, "tenant-admin");
    let detail = |v: &Value| v["detail"].as_str().unwrap_or_default().to_owned();
    let (st, e) = apply(s, "acme", "", &admin, "tenant: [acme\n").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(detail(&e).contains("not a valid tenant file"), "{e}");
    let (st, e) = apply(
        s,
        "acme",
        "",
        &admin,
        "tenant: acme\ngroups:\n  - name: a\n    colour: red\n",
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(detail(&e).contains("colour"), "{e}");
    let (st, e) = apply(s, "acme", "", &admin, "tenant: beta\n").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(detail(&e).contains("\"beta\""), "{e}");
    let big = format!("tenant: acme\n# {}\n", "x".repeat(tenant_file::MAX_FILE_BYTES));
    assert_eq!(
        apply(s, "acme", "", &admin, &big).await.0,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    let (st, _) = send(s, "/admin/t/acme/apply", &admin, "text/plain", FILE).await;
    assert_eq!(st, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(
        apply(s, "acme", "?force=1", &admin, FILE).await.0,
        StatusCode::BAD_REQUEST
    );
    let (st, e) = send(
        s,
        "/admin/t/acme/apply",
        &admin,
        "application/json",
        "{\"tenant\": 1}",
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{e}");
    // A store refusal names the change it stopped at.
    let bad_uri = "tenant: acme\nclients:\n  - name: X\n    redirect_uris: ['http://evil.example/cb']\n";
    let (st, e) = apply(s, "acme", "", &admin, bad_uri).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{e}");
    assert!(detail(&e).contains("+ client X"), "{e}");
}

/// The risk webhook is the operator's: a file applied over the API may not move it (a tenant
/// admin would send the signed risk events elsewhere) or clear it, but may carry it unchanged.
async fn the_risk_webhook_is_not_moved_over_the_api(s: &TestServer) {
    let a = tenant(s, "acme");
    let admin = token(s, &a, "tenant-admin");
    let hook = "https://siem.acme.example/hooks/latchkey";
    let mut policy = TenantPolicy::default();
    policy.risk.webhook_url = Some(hook.into());
    let update = latchkey_store::TenantUpdate {
        display_name: None,
        policy: Some(policy),
    };
    s.state.db.update_tenant(&a, "test", &update).unwrap();
    let hook_now = || s.state.db.tenant(&a).unwrap().unwrap().policy.risk.webhook_url;
    for file in [
        "tenant: acme\npolicy:\n  risk:\n    webhook_url: http://169.254.169.254/latest\n",
        "tenant: acme\npolicy:\n  password: {min_length: 14}\n",
    ] {
        let (st, e) = apply(s, "acme", "", &admin, file).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{e}");
        assert!(
            e["detail"].as_str().unwrap().contains("policy.risk.webhook_url"),
            "{e}"
        );
        assert_eq!(hook_now().as_deref(), Some(hook));
    }
    let same =
        format!("tenant: acme\npolicy:\n  risk:\n    webhook_url: {hook}\n  password: {{min_length: 14}}\n");
    let (st, e) = apply(s, "acme", "", &admin, &same).await;
    assert_eq!(st, StatusCode::OK, "{e}");
    assert_eq!(hook_now().as_deref(), Some(hook));
    assert_eq!(
        s.state.db.tenant(&a).unwrap().unwrap().policy.password.min_length,
        14
    );
}

/// A dry run plans and changes nothing: the export is the same before and after.
async fn a_dry_run_changes_nothing(s: &TestServer) {
    let a = tenant(s, "acme");
    let admin = token(s, &a, "tenant-admin");
    let before = export(s, "acme", &admin).await.1;
    let (st, plan) = apply(s, "acme", "?dry_run=true", &admin, FILE).await;
    assert_eq!(st, StatusCode::OK);
    assert!(!plan["changes"].as_array().unwrap().is_empty());
    assert_eq!(plan["applied"], Value::Null);
    assert_eq!(export(s, "acme", &admin).await.1, before);
    let planned = events(s, &a, "tenant.plan");
    assert_eq!(planned.len(), 1, "the dry run is audited");
}

/// A read-only credential may export and plan but not apply (403, audited with the write
/// permission it lacks); tenant B's token opens nothing
/// of tenant A's, and a file naming A sent to B's path changes nothing in A.
async fn readers_and_other_tenants_are_refused(s: &TestServer) {
    let (a, b) = (tenant(s, "acme"), tenant(s, "beta"));
    let reader = token(s, &a, "read-only");
    let b_admin = token(s, &b, "tenant-admin");
    assert_eq!(
        apply(s, "acme", "?dry_run=true", &reader, FILE).await.0,
        StatusCode::OK
    );
    assert_eq!(export(s, "acme", &reader).await.0, StatusCode::OK);
    assert_eq!(apply(s, "acme", "", &reader, FILE).await.0, StatusCode::FORBIDDEN);
    let denied = events(s, &a, "admin.denied");
    assert_eq!(denied.len(), 1);
    assert!(
        denied[0].details["needed"].as_str().unwrap().ends_with(":write"),
        "{:?}",
        denied[0].details
    );
    // Every area's write but one: refused, naming the missing one, and nothing applied.
    let most = latchkey_tests::admin::credential(
        s,
        &a,
        &["read-only"],
        &[
            latchkey_core::Permission::PoliciesWrite,
            latchkey_core::Permission::AttributesWrite,
            latchkey_core::Permission::RolesWrite,
            latchkey_core::Permission::ClientsWrite,
        ],
        None,
    );
    let (st, body) = apply(s, "acme", "", &most, FILE).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{body}");
    let denied = events(s, &a, "admin.denied");
    assert_eq!(denied[1].details["needed"], "groups:write");
    // Without every area's read, not even a plan or an export.
    let partial = latchkey_tests::admin::token(s, &a, &[latchkey_core::Permission::PoliciesRead]);
    assert_eq!(
        apply(s, "acme", "?dry_run=true", &partial, FILE).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(export(s, "acme", &partial).await.0, StatusCode::FORBIDDEN);
    assert!(s.state.db.list_groups(&a).unwrap().is_empty());
    assert_eq!(
        apply(s, "acme", "", &b_admin, FILE).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(export(s, "acme", &b_admin).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        apply(s, "beta", "", &b_admin, FILE).await.0,
        StatusCode::BAD_REQUEST
    );
    assert!(s.state.db.list_groups(&a).unwrap().is_empty());
    assert!(s.state.db.list_groups(&b).unwrap().is_empty());
}

latchkey_tests::e2e!(
    the_example_file_round_trips_and_its_env_secret_authenticates,
    applying_over_the_api_twice_changes_nothing_the_second_time,
    a_removed_group_is_kept_without_prune_and_deleted_with_it,
    secrets_in_clear_and_references_are_refused,
    bad_files_get_clear_errors,
    a_dry_run_changes_nothing,
    readers_and_other_tenants_are_refused,
    the_risk_webhook_is_not_moved_over_the_api,
    saml_connections_apply_export_and_prune,
);

// The test IdP serves its metadata on loopback: the operator allows that address.
latchkey_tests::e2e_with!(
    loopback_allowed,
    &[("LATCHKEY_OUTBOUND_ALLOW_PRIVATE", "127.0.0.1")],
    saml_connections_over_the_api,
);

/// IdP metadata with a fresh signing certificate (as admin_api_ops.rs makes it).
fn idp_xml(s: &TestServer, entity_id: &str) -> String {
    let now = latchkey_core::Clock::now_millis(&*s.state.clock);
    let cert = latchkey_saml::generate_sp_key("Test IdP signing", now)
        .unwrap()
        .certificate;
    format!(
        r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{entity_id}">
  <md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.acme.test/sso"/>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>"#
    )
}

/// Serves `body` at every path of a loopback port; the count says how many requests came.
async fn serve(body: String) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/metadata", listener.local_addr().unwrap());
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf).await;
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/samlmetadata+xml\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(body.as_bytes()).await;
        }
    });
    (url, hits)
}

/// A tenant file with an inline connection (`corp`, whose maps name the file's role and group)
/// and, given a URL, one refreshed from it (`partner`).
fn saml_file(xml: &str, url: Option<&str>, corp_options: &str) -> String {
    let block = xml
        .lines()
        .map(|l| format!("      {l}"))
        .collect::<Vec<_>>()
        .join("\n");
    let partner = url
        .map(|u| format!("  - name: partner\n    metadata_url: {u}\n"))
        .unwrap_or_default();
    format!(
        "tenant: acme
groups:
  - name: staff
roles:
  - name: employee
saml_connections:
  - name: corp
    display_name: Corp SSO
    metadata_xml: |
{block}
    options: {corp_options}
{partner}"
    )
}

const CORP_OPTIONS: &str =
    "{domains: [acme.test], role_map: [[admins, employee]], group_map: [[eng, staff]], sign_requests: true}";

/// Plans `text` against acme (created by the file when missing), fetching what it needs.
async fn saml_plan(s: &TestServer, text: &str, prune: bool) -> Result<tenant_file::Plan, ServiceError> {
    let db = &s.state.db;
    let file = tenant_file::parse(text, Format::Yaml)?;
    let current = match db.tenant_by_slug("acme").unwrap() {
        Some(t) => Current::load(db, &t).unwrap(),
        None => Current::empty(),
    };
    let now = latchkey_core::Clock::now_millis(&*s.state.clock);
    // The operator's policy from the CLI: the test IdP is on loopback.
    let allow = latchkey_services::OutboundPolicy::allow_all();
    let metadata = Metadata::fetch(&allow, &current, &file, now).await?;
    tenant_file::plan(&current, &file, prune, &Env(BTreeMap::new()), &metadata)
}

fn saml_apply(s: &TestServer, plan: &tenant_file::Plan) {
    let keys = &*s.state.keys;
    tenant_file::apply(&s.state.db, Some(keys), "test", plan, &latchkey_core::OsRng).unwrap();
}

/// SAML connections from a file: made from inline metadata and from a loopback URL (fetched
/// once: an unchanged URL is not fetched again), applied twice with no change the second time,
/// exported without the SP key as a file that plans nothing; a changed option is an update, a
/// removed connection is kept without prune and deleted with it, and a map naming a missing role
/// is refused naming the field.
async fn saml_connections_apply_export_and_prune(s: &TestServer) {
    use latchkey_store::SamlRepo;
    let db = &s.state.db;
    let xml = idp_xml(s, "https://idp.acme.test/saml");
    let (url, hits) = serve(idp_xml(s, "https://partner.test/saml")).await;
    let text = saml_file(&xml, Some(&url), CORP_OPTIONS);
    let plan = saml_plan(s, &text, false).await.unwrap();
    let lines: Vec<&str> = plan.lines().collect();
    assert!(
        lines.contains(&"+ saml_connection corp (https://idp.acme.test/saml)"),
        "{lines:?}"
    );
    assert!(plan.areas().contains("saml"));
    saml_apply(s, &plan);
    let acme = db.tenant_by_slug("acme").unwrap().unwrap();
    let corp = db.saml_connection_by_name(&acme.id, "corp").unwrap().unwrap();
    assert_eq!(corp.display_name, "Corp SSO");
    assert_eq!(
        corp.options.role_map,
        [("admins".to_owned(), "employee".to_owned())]
    );
    assert!(corp.metadata_url.is_none() && corp.options.sign_requests);
    let partner = db.saml_connection_by_name(&acme.id, "partner").unwrap().unwrap();
    assert_eq!(partner.metadata_url.as_deref(), Some(url.as_str()));
    assert_eq!(partner.idp.entity_id, "https://partner.test/saml");
    assert!(partner.next_refresh_at.is_some());
    // Applying twice: nothing to do, and the unchanged URL is not fetched again.
    let again = saml_plan(s, &text, false).await.unwrap();
    assert!(
        again.changes.is_empty(),
        "{:?}",
        again.lines().collect::<Vec<_>>()
    );
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1);
    // The export: no SP key or certificate, the URL as the source of one, and it plans nothing.
    let exported = tenant_file::export(&Current::load(db, &acme).unwrap()).unwrap();
    let out = tenant_file::render(&exported, Format::Yaml).unwrap();
    assert!(!out.contains("sp_") && !out.contains("PRIVATE KEY"), "{out}");
    assert_eq!(
        exported.saml_connections[1].metadata_url.as_deref(),
        Some(url.as_str())
    );
    let back = saml_plan(s, &out, false).await.unwrap();
    assert!(back.changes.is_empty(), "{:?}", back.lines().collect::<Vec<_>>());
    // A changed option is one update.
    let changed = saml_file(&xml, Some(&url), &CORP_OPTIONS.replace('}', ", jit: false}"));
    let plan = saml_plan(s, &changed, false).await.unwrap();
    assert_eq!(
        plan.lines().collect::<Vec<_>>(),
        ["~ saml_connection corp: options (jit)"]
    );
    saml_apply(s, &plan);
    assert!(
        !db.saml_connection_by_name(&acme.id, "corp")
            .unwrap()
            .unwrap()
            .options
            .jit
    );
    left_out_and_refused(s, &acme, &xml, &url, &text).await;
}

/// The rest of [`saml_connections_apply_export_and_prune`]: a connection left out is kept, or
/// deleted with prune; a map naming a missing role, an unknown option and two metadata sources
/// are refused, naming where.
async fn left_out_and_refused(
    s: &TestServer,
    acme: &latchkey_core::Tenant,
    xml: &str,
    url: &str,
    text: &str,
) {
    use latchkey_store::SamlRepo;
    let db = &s.state.db;
    // Left out: kept, or deleted with prune.
    let without = saml_file(xml, None, &CORP_OPTIONS.replace('}', ", jit: false}"));
    let kept = saml_plan(s, &without, false).await.unwrap();
    assert!(kept.changes.is_empty());
    assert_eq!(
        kept.lines().collect::<Vec<_>>(),
        ["- saml_connection partner (kept: not in file; use --prune)"]
    );
    let pruned = saml_plan(s, &without, true).await.unwrap();
    assert_eq!(pruned.lines().collect::<Vec<_>>(), ["- saml_connection partner"]);
    saml_apply(s, &pruned);
    assert!(db.saml_connection_by_name(&acme.id, "partner").unwrap().is_none());
    // A map naming a role that neither the file nor the tenant has, and an unknown option.
    let missing = saml_file(xml, None, "{role_map: [[admins, nobody]]}");
    let e = saml_plan(s, &missing, false).await.unwrap_err().to_string();
    assert!(
        e.contains("saml_connections[0].options.role_map[0]") && e.contains("nobody"),
        "{e}"
    );
    let typo = saml_file(xml, None, "{jitt: true}");
    let e = saml_plan(s, &typo, false).await.unwrap_err().to_string();
    assert!(e.contains("saml_connections[0].options.jitt"), "{e}");
    let both = text.replace(
        "    display_name: Corp SSO\n",
        &format!("    metadata_url: {url}\n"),
    );
    let e = saml_plan(s, &both, false).await.unwrap_err().to_string();
    assert!(
        e.contains("saml_connections[0]") && e.contains("exactly one"),
        "{e}"
    );
}

/// Over the API: SAML connections apply with `saml:write` (without it, 403 naming it), twice
/// with no change the second time, and the export sent back plans nothing.
async fn saml_connections_over_the_api(s: &TestServer) {
    let a = tenant(s, "acme");
    let admin = token(s, &a, "tenant-admin");
    let text = saml_file(&idp_xml(s, "https://idp.acme.test/saml"), None, CORP_OPTIONS);
    let no_saml = latchkey_tests::admin::credential(
        s,
        &a,
        &["read-only"],
        &[
            latchkey_core::Permission::GroupsWrite,
            latchkey_core::Permission::RolesWrite,
        ],
        None,
    );
    let (st, body) = apply(s, "acme", "", &no_saml, &text).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(events(s, &a, "admin.denied")[0].details["needed"], "saml:write");
    // A reader's dry run does not make the server fetch a new URL.
    let (url, hits) = serve(idp_xml(s, "https://partner.test/saml")).await;
    let reader = token(s, &a, "read-only");
    let with_url = saml_file(
        &idp_xml(s, "https://idp.acme.test/saml"),
        Some(&url),
        CORP_OPTIONS,
    );
    let (st, body) = apply(s, "acme", "?dry_run=true", &reader, &with_url).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(events(s, &a, "admin.denied")[1].details["needed"], "saml:write");
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 0);
    let (st, first) = apply(s, "acme", "", &admin, &text).await;
    assert_eq!(st, StatusCode::OK, "{first}");
    assert!(
        lines(&first, "changes").contains(&"+ saml_connection corp (https://idp.acme.test/saml)".to_owned())
    );
    let (st, second) = apply(s, "acme", "", &admin, &text).await;
    assert_eq!(st, StatusCode::OK, "{second}");
    assert_eq!(second["changes"], serde_json::json!([]));
    let (st, exported) = export(s, "acme", &admin).await;
    assert_eq!(st, StatusCode::OK);
    assert!(exported["saml_connections"][0].get("sp_certificate").is_none());
    let (st, back) = send(
        s,
        "/admin/t/acme/apply",
        &admin,
        "application/json",
        &exported.to_string(),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{back}");
    assert_eq!(back["changes"], serde_json::json!([]), "{back}");
}
