//! Authorization data in tokens, as portals receive it: the `openidconnect` relying party reads
//! roles, client roles, groups and attributes from the ID token and userinfo; a resource server
//! verifies the JWT access token against the JWKS and reads the same claims; a client that asks
//! for only its own roles gets only those; a membership removed is gone at the next refresh;
//! introspection of an opaque token carries what a JWT would.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use base64::Engine as _;
use latchkey_core::claims::{ClaimMapper, RoleFilter};
use latchkey_core::{
    AccessTokenFormat, AnyRole, AttributeDef, AttributeKind, ClaimSource, ClaimsConfig, Client, ClientType,
    EditableBy, GroupId, Principal, TenantId, TokenTarget, UserId,
};
use latchkey_store::{AttributeRepo, ClientRepo, GroupRepo, RoleRepo, UserRepo};
use latchkey_tests::TestServer;
use latchkey_tests::browser::{Browser, setup};
use latchkey_tests::oidc::{
    REDIRECT, SECRET, authorize, jwt_claims, query, refresh, register_with, rp_http as http, tenant,
};
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreGenderClaim, CoreJsonWebKeySet,
    CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm,
};
use openidconnect::{
    AdditionalClaims, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IdToken, IssuerUrl, JsonWebKey,
    Nonce, OAuth2TokenResponse, PkceCodeChallenge, ProviderMetadataWithLogout, RedirectUrl, Scope,
    TokenResponse, UserInfoClaims,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The claims a portal reads, as its relying-party library hands them over.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Authz {
    #[serde(default)]
    roles: Option<Vec<String>>,
    #[serde(default)]
    groups: Option<Vec<String>>,
    #[serde(default)]
    org: Option<String>,
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    reports: Option<Vec<String>>,
    #[serde(default)]
    tier: Option<String>,
}
impl AdditionalClaims for Authz {}

type AuthzIdToken =
    IdToken<Authz, CoreGenderClaim, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm>;

const ACTOR: &str = "test";

/// The acme model of docs/authorization.md: `staff` holds `employee`; `finance`, inside
/// `staff`, holds the reporting client's `reports:read`; alice is in `finance`, holds `own`
/// herself and the billing client's `pay`; `org` and `region` attributes.
struct Model {
    t: TenantId,
    alice: UserId,
    finance: GroupId,
    reporting: Client,
}

fn model(s: &TestServer, format: AccessTokenFormat, claims: ClaimsConfig) -> Model {
    let db = &s.state.db;
    let t = tenant(s, "acme").id;
    let alice = db.user_by_username(&t, "alice").unwrap().unwrap().id;
    let scopes = |c: &mut latchkey_store::NewClient| {
        c.scopes = [
            "openid",
            "profile",
            "email",
            "offline_access",
            "roles",
            "groups",
            "reports",
        ]
        .map(String::from)
        .to_vec();
        c.settings.claims = claims.clone();
    };
    let reporting = register_with(s, "acme", ClientType::Confidential, true, format, scopes);
    let billing = register_with(s, "acme", ClientType::Confidential, true, format, |_| {});
    let staff = db.create_group(&t, ACTOR, "staff", None).unwrap().id;
    let finance = db.create_group(&t, ACTOR, "finance", None).unwrap().id;
    db.add_member(&t, ACTOR, &staff, &Principal::Group(finance.clone()))
        .unwrap();
    db.add_member(&t, ACTOR, &finance, &Principal::User(alice.clone()))
        .unwrap();
    let role = |name: &str| db.create_role(&t, ACTOR, name, None).unwrap().id;
    let (employee, own) = (role("employee"), role("own"));
    db.assign(&t, ACTOR, &Principal::Group(staff), &AnyRole::Tenant(employee))
        .unwrap();
    db.assign(&t, ACTOR, &Principal::User(alice.clone()), &AnyRole::Tenant(own))
        .unwrap();
    let read = db
        .create_client_role(&t, ACTOR, &reporting.client_id, "reports:read", None)
        .unwrap()
        .id;
    db.assign(
        &t,
        ACTOR,
        &Principal::Group(finance.clone()),
        &AnyRole::Client(read),
    )
    .unwrap();
    let pay = db
        .create_client_role(&t, ACTOR, &billing.client_id, "pay", None)
        .unwrap()
        .id;
    db.assign(&t, ACTOR, &Principal::User(alice.clone()), &AnyRole::Client(pay))
        .unwrap();
    for (name, editable_by) in [("org", EditableBy::Admin), ("region", EditableBy::User)] {
        let def = AttributeDef {
            tenant_id: t.clone(),
            name: name.into(),
            label: None,
            kind: AttributeKind::String,
            required: false,
            unique: false,
            editable_by,
            created_at: 0,
            updated_at: 0,
        };
        db.define_attribute(&t, ACTOR, &def).unwrap();
    }
    let values = [
        ("org".to_owned(), Some(json!("acme-emea"))),
        ("region".to_owned(), Some(json!("eu"))),
    ];
    db.set_user_attributes(&t, ACTOR, &alice, &values, EditableBy::Admin)
        .unwrap();
    Model {
        t,
        alice,
        finance,
        reporting,
    }
}

fn mapper(claim: &str, scope: Option<&str>, source: ClaimSource) -> ClaimMapper {
    ClaimMapper {
        claim: claim.into(),
        source,
        scope: scope.map(str::to_owned),
        tokens: TokenTarget::ALL.to_vec(),
    }
}

/// Mappers for `org`, `region`, a static `tier`, and `reports` (the reporting roles without
/// their prefix) under the custom scope `reports`.
fn portal_mappers() -> ClaimsConfig {
    ClaimsConfig {
        mappers: vec![
            mapper("org", None, ClaimSource::Attribute("org".into())),
            mapper("region", None, ClaimSource::Attribute("region".into())),
            mapper("tier", None, ClaimSource::Value(json!("gold"))),
            mapper(
                "reports",
                Some("reports"),
                ClaimSource::Roles(RoleFilter {
                    client: true,
                    prefix: Some("reports:".into()),
                    strip_prefix: true,
                    ..RoleFilter::default()
                }),
            ),
        ],
        ..ClaimsConfig::default()
    }
}

/// What a resource server does: fetch the JWKS, check the signature of the `at+jwt` with the
/// key its `kid` names, then read the claims.
async fn verified_access_token(s: &TestServer, jwt: &str) -> Value {
    let jwks: CoreJsonWebKeySet = TestServer::client()
        .get(format!("{}/jwks", s.issuer("acme")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (input, sig) = jwt.rsplit_once('.').unwrap();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header: Value =
        serde_json::from_slice(&b64.decode(input.split('.').next().unwrap()).unwrap()).unwrap();
    assert_eq!(header["typ"], "at+jwt");
    let key = jwks
        .keys()
        .iter()
        .find(|k| k.key_id().map(|id| id.as_str()) == header["kid"].as_str())
        .expect("the token's kid is published");
    key.verify_signature(
        &CoreJwsSigningAlgorithm::EcdsaP256Sha256,
        input.as_bytes(),
        &b64.decode(sig).unwrap(),
    )
    .expect("the access token's signature verifies");
    jwt_claims(jwt)
}

struct Signed {
    id_raw: String,
    id: Authz,
    info: Authz,
    access_token: String,
    refresh_token: String,
}

/// The relying party's flow for the reporting portal with `scopes`.
async fn sign_in(s: &TestServer, m: &Model, scopes: &[&str]) -> Signed {
    let meta = ProviderMetadataWithLogout::discover_async(IssuerUrl::new(s.issuer("acme")).unwrap(), &http)
        .await
        .unwrap();
    let advertised = meta.scopes_supported().unwrap();
    for builtin in ["roles", "groups"] {
        assert!(
            advertised.iter().any(|s| s.as_str() == builtin),
            "discovery lists {builtin}"
        );
    }
    let client = CoreClient::from_provider_metadata(
        meta,
        ClientId::new(m.reporting.client_id.to_string()),
        Some(ClientSecret::new(SECRET.into())),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut req = client.authorize_url(
        CoreAuthenticationFlow::AuthorizationCode,
        CsrfToken::new_random,
        Nonce::new_random,
    );
    for sc in scopes {
        req = req.add_scope(Scope::new((*sc).into()));
    }
    let (url, _, nonce) = req.set_pkce_challenge(challenge).url();
    let mut b = Browser::default();
    let path = url.as_str().strip_prefix(&s.base_url).unwrap();
    let back = authorize(s, &mut b, path, "acme", true).await;
    let tokens = client
        .exchange_code(AuthorizationCode::new(query(&back)["code"].clone()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .unwrap();
    let raw = tokens.id_token().unwrap().to_string();
    let typed: AuthzIdToken = raw.parse().unwrap();
    let id = typed
        .claims(&client.id_token_verifier(), &nonce)
        .unwrap()
        .additional_claims()
        .clone();
    let info: UserInfoClaims<Authz, CoreGenderClaim> = client
        .user_info(tokens.access_token().clone(), None)
        .unwrap()
        .request_async(&http)
        .await
        .unwrap();
    Signed {
        id_raw: raw,
        id,
        info: info.additional_claims().clone(),
        access_token: tokens.access_token().secret().clone(),
        refresh_token: tokens.refresh_token().unwrap().secret().clone(),
    }
}

#[allow(clippy::unnecessary_wraps)] // compared with the claims, which are optional
fn strings(v: &[&str]) -> Option<Vec<String>> {
    Some(v.iter().map(|s| (*s).to_owned()).collect())
}

async fn the_relying_party_reads_roles_groups_and_attributes(s: &TestServer) {
    setup(s, "acme").await;
    let m = model(s, AccessTokenFormat::Jwt, portal_mappers());
    let scopes = ["profile", "roles", "groups", "reports", "offline_access"];
    let got = sign_in(s, &m, &scopes).await;
    let roles = strings(&["employee", "own", "reports:read"]);
    for (place, c) in [("ID token", &got.id), ("userinfo", &got.info)] {
        assert_eq!(
            c.roles, roles,
            "{place}: tenant roles through two levels and this client's, not billing's"
        );
        assert_eq!(c.groups, strings(&["finance", "staff"]), "{place}");
        assert_eq!(c.org.as_deref(), Some("acme-emea"), "{place}");
        assert_eq!(c.region.as_deref(), Some("eu"), "{place}");
        assert_eq!(
            c.reports,
            strings(&["read"]),
            "{place}: the custom scope's mapper"
        );
        assert_eq!(c.tier.as_deref(), Some("gold"), "{place}");
    }
    let at = verified_access_token(s, &got.access_token).await;
    if std::env::var_os("LK_SHOW_TOKENS").is_some() {
        eprintln!("ACCESS {at:#}\nIDRAW {:#}", jwt_claims(&got.id_raw));
    }
    assert_eq!(at["roles"], json!(["employee", "own", "reports:read"]));
    assert_eq!(at["groups"], json!(["finance", "staff"]));
    assert_eq!(at["org"], "acme-emea", "a resource server filters rows by it");
    assert_eq!(at["sub"], m.alice.as_str());
    // Without the scopes, nothing beyond the unscoped mappers.
    let plain = sign_in(s, &m, &["profile"]).await;
    assert_eq!(
        (plain.id.roles, plain.id.groups, plain.id.reports),
        (None, None, None)
    );
    assert_eq!(plain.id.org.as_deref(), Some("acme-emea"));
}

async fn a_client_asking_only_for_its_own_roles_gets_only_those(s: &TestServer) {
    setup(s, "acme").await;
    let mut claims = ClaimsConfig::default();
    claims.roles.own_only = true;
    claims.groups.format = latchkey_core::claims::GroupsFormat::Paths;
    let m = model(s, AccessTokenFormat::Jwt, claims);
    let got = sign_in(s, &m, &["roles", "groups", "offline_access"]).await;
    assert_eq!(got.id.roles, strings(&["reports:read"]));
    assert_eq!(got.info.roles, strings(&["reports:read"]));
    assert_eq!(got.id.groups, strings(&["/staff", "/staff/finance"]));
    assert_eq!(got.id.org, None, "no mapper, no attribute");
    let at = verified_access_token(s, &got.access_token).await;
    assert_eq!(at["roles"], json!(["reports:read"]));
}

async fn removing_a_member_removes_its_roles_at_the_next_refresh(s: &TestServer) {
    setup(s, "acme").await;
    let m = model(s, AccessTokenFormat::Jwt, ClaimsConfig::default());
    let got = sign_in(s, &m, &["roles", "groups", "offline_access"]).await;
    assert_eq!(got.id.roles, strings(&["employee", "own", "reports:read"]));
    s.state
        .db
        .remove_member(&m.t, ACTOR, &m.finance, &Principal::User(m.alice.clone()))
        .unwrap();
    let (st, body) = refresh(s, &m.reporting, &got.refresh_token).await;
    assert_eq!(st, 200, "{body}");
    let id = jwt_claims(body["id_token"].as_str().unwrap());
    assert_eq!(id["roles"], json!(["own"]), "staff and finance roles are gone");
    assert_eq!(id["groups"], json!([]));
    let at = jwt_claims(body["access_token"].as_str().unwrap());
    assert_eq!(at["roles"], json!(["own"]));
}

async fn introspection_of_an_opaque_token_carries_the_claims(s: &TestServer) {
    setup(s, "acme").await;
    let m = model(s, AccessTokenFormat::Opaque, portal_mappers());
    let got = sign_in(s, &m, &["roles", "reports", "offline_access"]).await;
    assert_eq!(got.access_token.split('.').count(), 1, "opaque");
    let res = TestServer::client()
        .post(s.url("/t/acme/introspect"))
        .basic_auth(m.reporting.client_id.as_str(), Some(SECRET))
        .form(&[("token", got.access_token.as_str())])
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["active"], true);
    assert_eq!(body["roles"], json!(["employee", "own", "reports:read"]));
    assert_eq!(body["org"], "acme-emea");
    assert_eq!(body["reports"], json!(["read"]));
    assert!(body.get("groups").is_none(), "the groups scope was not asked for");
}

async fn client_credentials_get_static_claims_and_no_user_scopes(s: &TestServer) {
    setup(s, "acme").await;
    let m = model(s, AccessTokenFormat::Jwt, portal_mappers());
    let form = [("grant_type", "client_credentials"), ("scope", "reports")];
    let (st, body) = latchkey_tests::oidc::token(s, &m.reporting, &form).await;
    assert_eq!(st, 200, "{body}");
    let at = verified_access_token(s, body["access_token"].as_str().unwrap()).await;
    assert_eq!(at["tier"], "gold");
    assert!(at.get("org").is_none() && at.get("reports").is_none() && at.get("roles").is_none());
    let form = [("grant_type", "client_credentials"), ("scope", "roles")];
    let (st, body) = latchkey_tests::oidc::token(s, &m.reporting, &form).await;
    assert_eq!(
        (st.as_u16(), body["error"].as_str()),
        (400, Some("invalid_scope"))
    );
}

async fn a_mapper_cannot_overwrite_registered_claims(s: &TestServer) {
    setup(s, "acme").await;
    let m = model(s, AccessTokenFormat::Jwt, ClaimsConfig::default());
    for claim in ["sub", "email_verified", "roles", "iss", "acr"] {
        let bad = ClaimsConfig {
            mappers: vec![mapper(claim, None, ClaimSource::Value(json!("spoofed")))],
            ..ClaimsConfig::default()
        };
        let err = s
            .state
            .db
            .set_client_claims(&m.t, ACTOR, &m.reporting.client_id, &bad)
            .unwrap_err();
        assert!(err.to_string().contains("may not write"), "{claim}: {err}");
    }
    let stored = s.state.db.client(&m.t, &m.reporting.client_id).unwrap().unwrap();
    assert!(stored.settings.claims.mappers.is_empty(), "nothing was written");
}

/// Number and string-list attributes for the account-form test.
fn define(s: &TestServer, t: &TenantId, name: &str, kind: AttributeKind, required: bool) {
    let def = AttributeDef {
        tenant_id: t.clone(),
        name: name.into(),
        label: Some(format!("Your {name}")),
        kind,
        required,
        unique: false,
        editable_by: EditableBy::User,
        created_at: 0,
        updated_at: 0,
    };
    s.state.db.define_attribute(t, ACTOR, &def).unwrap();
}

// One browser session on the account form, step by step: each step's state feeds the next.
#[allow(clippy::too_many_lines)]
async fn the_account_form_edits_only_what_the_schema_lets_users_edit(s: &TestServer) {
    setup(s, "acme").await;
    let m = model(s, AccessTokenFormat::Jwt, ClaimsConfig::default());
    define(s, &m.t, "floor", AttributeKind::Number, false);
    define(s, &m.t, "languages", AttributeKind::StringList, true);
    let mut b = Browser::default();
    b.sign_in(s, "acme", "alice", latchkey_tests::browser::PASSWORD)
        .await;
    let (_, _, page) = b.get(s, "/t/acme/account").await;
    assert!(
        page.contains("<label for=\"attr_region\">region</label>"),
        "{page}"
    );
    assert!(
        page.contains("id=\"attr_org\" type=\"text\" value=\"acme-emea\" readonly"),
        "admin-only is shown read-only"
    );
    assert!(!page.contains("name=\"attr_org\""), "and never posted");
    let csrf = latchkey_tests::browser::hidden(&page, "csrf");
    let values = |s: &TestServer| s.state.db.user_attributes(&m.t, &m.alice).unwrap();
    let post = |fields: Vec<(&'static str, String)>| {
        let mut f: Vec<(&str, String)> = vec![("csrf", csrf.clone())];
        f.extend(fields);
        f
    };
    let send = async |b: &mut Browser, f: Vec<(&str, String)>| {
        let pairs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (st, _, page) = b.post(s, "/t/acme/account/attributes", &pairs, &[]).await;
        (st, page)
    };
    // A forged field for the admin-only `org`, beside a legitimate change: nothing is written.
    let before = values(s);
    let (st, page) = send(
        &mut b,
        post(vec![
            ("attr_region", "us".into()),
            ("attr_org", "evil".into()),
            ("attr_languages", "en".into()),
        ]),
    )
    .await;
    assert_eq!(st, 403, "{page}");
    assert!(page.contains("can only be changed by an administrator"), "{page}");
    assert_eq!(values(s), before, "nothing written");
    // Wrong type, and a required attribute left empty.
    let (st, page) = send(
        &mut b,
        post(vec![
            ("attr_floor", "third".into()),
            ("attr_languages", "en".into()),
        ]),
    )
    .await;
    assert_eq!(
        (st.as_u16(), page.contains("must be a number")),
        (422, true),
        "{page}"
    );
    let (st, page) = send(&mut b, post(vec![("attr_languages", " ".into())])).await;
    assert_eq!(
        (st.as_u16(), page.contains("a value is required")),
        (422, true),
        "{page}"
    );
    assert_eq!(values(s), before);
    // Without the CSRF token.
    let (st, _, _) = b
        .post(s, "/t/acme/account/attributes", &[("attr_region", "us")], &[])
        .await;
    assert_eq!(st, 403);
    assert_eq!(values(s), before);
    // A valid change is saved, typed, and audited by name only.
    let (st, _) = send(
        &mut b,
        post(vec![
            ("attr_region", "us".into()),
            ("attr_floor", "3".into()),
            ("attr_languages", "en, de".into()),
        ]),
    )
    .await;
    assert_eq!(st, 303);
    let after = values(s);
    assert_eq!(after["region"], "us");
    assert_eq!(after["floor"], json!(3));
    assert_eq!(after["languages"], json!(["en", "de"]));
    assert_eq!(after["org"], "acme-emea");
    let events = latchkey_store::AuditRepo::audit_events(&s.state.db, &m.t, 1, 1000).unwrap();
    let last = events
        .iter()
        .rev()
        .find(|e| e.action == "user.attributes_update")
        .unwrap();
    assert_eq!(last.actor, format!("user:{}", m.alice));
    assert!(
        !last.details.to_string().contains("\"us\""),
        "values stay out of the audit log"
    );
    // The next token carries the new value.
    let mut claims = ClaimsConfig::default();
    claims
        .mappers
        .push(mapper("region", None, ClaimSource::Attribute("region".into())));
    s.state
        .db
        .set_client_claims(&m.t, ACTOR, &m.reporting.client_id, &claims)
        .unwrap();
    let got = sign_in(s, &m, &["offline_access"]).await;
    assert_eq!(got.id.region.as_deref(), Some("us"));
}

latchkey_tests::e2e!(
    the_account_form_edits_only_what_the_schema_lets_users_edit,
    the_relying_party_reads_roles_groups_and_attributes,
    a_client_asking_only_for_its_own_roles_gets_only_those,
    removing_a_member_removes_its_roles_at_the_next_refresh,
    introspection_of_an_opaque_token_carries_the_claims,
    client_credentials_get_static_claims_and_no_user_scopes,
    a_mapper_cannot_overwrite_registered_claims,
);
