//! Upstream OpenID Connect on both backends. Another tenant of the same server is the upstream
//! (a real, independent issuer with its own keys): a person signs in to tenant `acme` through
//! tenant `up`, becomes a JIT user with mapped groups, comes back to the same user, and after
//! `up` rotates its signing key Latchkey follows it without help. A forging provider in the test
//! kit then tries each forged ID token and response (wrong issuer, wrong audience, other key,
//! `none`, expired, replayed nonce, mix-up with another connection's issuer), and each is refused
//! with its reason and no session.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use latchkey_core::{
    AccessTokenFormat, ClientType, OidcConnection, Principal, UpstreamAuth, UpstreamKind, UpstreamOptions,
};
use latchkey_keys::Alg;
use latchkey_services::OutboundPolicy;
use latchkey_services::federation::{ConnectionSpec, connect};
use latchkey_store::{AttributeRepo, AuditFilter, AuditRepo, GroupRepo, TenantRepo, UpstreamRepo, UserRepo};
use latchkey_tests::TestServer;
use latchkey_tests::browser::{Browser, setup};
use latchkey_tests::forge::{CLIENT_ID, CLIENT_SECRET, Case, Forge};
use latchkey_tests::node_op::{self, NodeOp};
use latchkey_tests::oidc::{SECRET, authorize, register_with};
use reqwest::StatusCode;

const SLUG: &str = "acme";

fn tid(s: &TestServer, slug: &str) -> latchkey_core::Tenant {
    s.state.db.tenant_by_slug(slug).unwrap().unwrap()
}

fn spec(name: &str, issuer: &str, client_id: &str, secret: &str, options: UpstreamOptions) -> ConnectionSpec {
    ConnectionSpec {
        name: name.into(),
        display_name: Some(format!("{name} ID")),
        kind: UpstreamKind::Oidc,
        issuer: issuer.into(),
        discovery_url: None,
        allowed_tenant_ids: Vec::new(),
        client_id: client_id.into(),
        client_auth: UpstreamAuth::ClientSecretBasic,
        client_secret: Some(secret.into()),
        scopes: ["openid", "email", "profile", "groups"]
            .map(String::from)
            .to_vec(),
        endpoints: None,
        options,
    }
}

async fn add_connection(s: &TestServer, spec: ConnectionSpec) -> OidcConnection {
    let t = tid(s, SLUG);
    let now = latchkey_core::Clock::now_millis(&*s.state.clock);
    connect(
        &s.state.db,
        &s.state.keys,
        &OutboundPolicy::allow_all(),
        &t,
        "test",
        spec,
        now,
    )
    .await
    .unwrap()
}

/// Tenant `up` as the upstream: alice@up.test in group `staff`, and a confidential client whose
/// redirect URI is `acme`'s callback for connection `up`.
async fn upstream(s: &TestServer) -> OidcConnection {
    setup(s, SLUG).await;
    setup(s, "up").await;
    let up = tid(s, "up");
    let staff = s.state.db.create_group(&up.id, "test", "staff", None).unwrap();
    let alice = s.state.db.user_by_username(&up.id, "alice").unwrap().unwrap();
    s.state
        .db
        .add_member(&up.id, "test", &staff.id, &Principal::User(alice.id))
        .unwrap();
    let callback = format!("{}/federation/up/callback", s.issuer(SLUG));
    let client = register_with(
        s,
        "up",
        ClientType::Confidential,
        true,
        AccessTokenFormat::Jwt,
        |c| {
            c.redirect_uris = vec![callback];
            c.scopes.push("groups".into());
        },
    );
    let acme = tid(s, SLUG);
    s.state
        .db
        .create_group(&acme.id, "test", "employees", None)
        .unwrap();
    let mut options = UpstreamOptions {
        domains: vec!["up.test".into()],
        ..UpstreamOptions::default()
    };
    options.mapping.groups = Some("groups".into());
    options.group_map = vec![("staff".into(), "employees".into())];
    add_connection(
        s,
        spec("up", &s.issuer("up"), client.client_id.as_str(), SECRET, options),
    )
    .await
}

/// A portal of `acme`: the `openidconnect` crate's relying party, as a portal developer writes
/// it (discovery, code + PKCE, nonce).
struct Portal {
    client: openidconnect::core::CoreClient<
        openidconnect::EndpointSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointMaybeSet,
        openidconnect::EndpointMaybeSet,
    >,
    verifier: openidconnect::PkceCodeVerifier,
    nonce: openidconnect::Nonce,
}

impl Portal {
    /// Registers the portal and sends `b` to acme's authorization endpoint; returns the
    /// portal and the pending interaction of the sign-in page it lands on.
    async fn start(s: &TestServer, b: &mut Browser) -> (Self, String) {
        use openidconnect::core::{CoreAuthenticationFlow, CoreClient};
        use openidconnect::{
            ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, PkceCodeChallenge, RedirectUrl, Scope,
        };
        let registered =
            latchkey_tests::oidc::register(s, SLUG, ClientType::Confidential, true, AccessTokenFormat::Jwt);
        let meta = openidconnect::core::CoreProviderMetadata::discover_async(
            IssuerUrl::new(s.issuer(SLUG)).unwrap(),
            &latchkey_tests::oidc::rp_http,
        )
        .await
        .unwrap();
        let client = CoreClient::from_provider_metadata(
            meta,
            ClientId::new(registered.client_id.to_string()),
            Some(ClientSecret::new(SECRET.into())),
        )
        .set_redirect_uri(RedirectUrl::new(latchkey_tests::oidc::REDIRECT.into()).unwrap());
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, _, nonce) = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("email".into()))
            .set_pkce_challenge(challenge)
            .url();
        let (st, h, _) = b.get(s, &local(s, url.as_str())).await;
        assert!(st.is_redirection());
        let login = h["location"].to_str().unwrap().to_owned();
        let (_, _, page) = b.get(s, &login).await;
        let interaction = latchkey_tests::browser::hidden(&page, "interaction");
        (
            Portal {
                client,
                verifier,
                nonce,
            },
            interaction,
        )
    }

    /// From where the callback sent the browser (the authorization request's resume) to the
    /// portal's redirect URI; redeems the code and verifies the ID token as the portal does.
    async fn finish(
        self,
        s: &TestServer,
        b: &mut Browser,
        resume: &str,
    ) -> openidconnect::core::CoreIdTokenClaims {
        use openidconnect::{AuthorizationCode, TokenResponse as _};
        let back = authorize(s, b, resume, SLUG, true).await;
        assert!(back.starts_with(latchkey_tests::oidc::REDIRECT), "{back}");
        let code = latchkey_tests::oidc::query(&back)["code"].clone();
        let tokens = self
            .client
            .exchange_code(AuthorizationCode::new(code))
            .unwrap()
            .set_pkce_verifier(self.verifier)
            .request_async(&latchkey_tests::oidc::rp_http)
            .await
            .unwrap();
        tokens
            .id_token()
            .unwrap()
            .claims(&self.client.id_token_verifier(), &self.nonce)
            .unwrap()
            .clone()
    }
}

/// The path and query of a URL on the test server.
fn local(s: &TestServer, url: &str) -> String {
    url.strip_prefix(&s.base_url).unwrap_or(url).to_owned()
}

/// Starts a sign-in through connection `name` in `b`; returns the upstream URL it sends to.
async fn start(s: &TestServer, b: &mut Browser, name: &str) -> String {
    start_in(s, b, name, None).await
}

/// `start`, continuing a portal's pending `interaction`.
async fn start_in(s: &TestServer, b: &mut Browser, name: &str, interaction: Option<&str>) -> String {
    let query = interaction
        .map(|i| format!("?interaction={i}"))
        .unwrap_or_default();
    let (st, h, page) = b
        .get(s, &format!("/t/{SLUG}/federation/{name}/login{query}"))
        .await;
    assert_eq!(st, StatusCode::SEE_OTHER, "{page}");
    h["location"].to_str().unwrap().to_owned()
}

/// Signs alice in at `up` through the connection; returns the callback's answer.
async fn through_up(s: &TestServer, b: &mut Browser) -> (StatusCode, String) {
    through(s, b, "up").await
}

/// Signs alice in at `up` through connection `name`; returns the callback's answer.
async fn through(s: &TestServer, b: &mut Browser, name: &str) -> (StatusCode, String) {
    through_in(s, b, name, None).await
}

/// `through`, continuing a portal's pending `interaction`.
async fn through_in(
    s: &TestServer,
    b: &mut Browser,
    name: &str,
    interaction: Option<&str>,
) -> (StatusCode, String) {
    let to_up = start_in(s, b, name, interaction).await;
    assert!(
        to_up.starts_with(&format!("{}/authorize?", s.issuer("up"))),
        "{to_up}"
    );
    assert!(
        to_up.contains("code_challenge_method=S256") && to_up.contains("nonce="),
        "{to_up}"
    );
    let back = authorize(s, b, &local(s, &to_up), "up", true).await;
    assert!(
        back.contains(&format!("/t/acme/federation/{name}/callback?")),
        "{back}"
    );
    let (st, h, page) = b.get(s, &local(s, &back)).await;
    let location = h.get("location").map(|l| l.to_str().unwrap().to_owned());
    (st, location.unwrap_or(page))
}

async fn signed_in(s: &TestServer, b: &mut Browser) -> bool {
    let (st, ..) = b.get(s, &format!("/t/{SLUG}/account")).await;
    st == StatusCode::OK
}

/// The `federation.callback` events of `acme`, oldest first.
fn callbacks(s: &TestServer) -> Vec<latchkey_core::AuditEvent> {
    let mut events = s
        .state
        .db
        .audit_search(
            &tid(s, SLUG).id,
            &AuditFilter {
                action: Some("federation.callback".into()),
                ..AuditFilter::default()
            },
            0,
            1000,
        )
        .unwrap();
    events.sort_by_key(|e| e.seq);
    events
}

async fn signs_in_through_another_tenant_and_follows_its_key_rotation(s: &TestServer) {
    let c = upstream(s).await;
    assert_eq!(
        c.discovered.as_ref().unwrap().issuer,
        s.issuer("up"),
        "discovered at the issuer"
    );
    // A portal of acme sends the person; they choose `up` and come back to the portal.
    let mut b = Browser::default();
    let (portal, interaction) = Portal::start(s, &mut b).await;
    let (st, to) = through_in(s, &mut b, "up", Some(&interaction)).await;
    assert_eq!(st, StatusCode::SEE_OTHER, "{to}");
    let claims = portal.finish(s, &mut b, &to).await;
    let amr: Vec<&str> = claims
        .auth_method_refs()
        .unwrap()
        .iter()
        .map(|m| m.as_str())
        .collect();
    assert_eq!(amr, ["ext"]);
    assert_eq!(claims.email().unwrap().as_str(), "alice@up.test");
    assert!(signed_in(s, &mut b).await, "a session at acme");

    // A JIT user keyed by (connection, sub), with the mapped group; the local alice is untouched.
    let acme = tid(s, SLUG);
    let up_alice = s
        .state
        .db
        .user_by_username(&tid(s, "up").id, "alice")
        .unwrap()
        .unwrap();
    let uid = s
        .state
        .db
        .oidc_identity(&acme.id, &c.id, up_alice.id.as_str())
        .unwrap()
        .expect("linked by the upstream's sub");
    let user = s.state.db.user(&acme.id, &uid).unwrap().unwrap();
    assert_eq!(
        claims.subject().as_str(),
        uid.as_str(),
        "the portal sees acme's user"
    );
    assert_eq!(user.email.as_deref(), Some("alice@up.test"));
    assert_eq!(user.username, "alice@up.test");
    let local = s.state.db.user_by_username(&acme.id, "alice").unwrap().unwrap();
    assert_ne!(local.id, uid, "never the local account with another address");
    let groups = s.state.db.direct_groups(&acme.id, &uid).unwrap();
    let employees = s.state.db.list_groups(&acme.id).unwrap();
    let employees = employees.iter().find(|g| g.name == "employees").unwrap();
    assert_eq!(
        groups,
        vec![employees.id.clone()],
        "staff upstream → employees here"
    );
    let ok = callbacks(s);
    assert_eq!(ok.len(), 1, "{ok:?}");
    assert_eq!(ok[0].details["account"], "created");

    follows_key_rotation_and_pins_its_subjects(s, &c).await;
}

/// After `up` rotates its signing key, the next sign-in works (acme re-reads the JWK Set by
/// itself) and finds the same user; the connection's issuer and discovery URL can't then move.
async fn follows_key_rotation_and_pins_its_subjects(s: &TestServer, c: &OidcConnection) {
    let acme = tid(s, SLUG);
    // `up` rotates: a new key signs its next ID token; acme re-reads the JWK Set by itself.
    let up = tid(s, "up");
    let kid = s.state.keys.rotate(&up.id, Alg::RS256, "test").unwrap();
    s.state.keys.activate(&up.id, &kid, "test").unwrap();
    let mut b2 = Browser::default();
    let (st, to) = through_up(s, &mut b2).await;
    assert_eq!(st, StatusCode::SEE_OTHER, "signed in after the rotation: {to}");
    let after = s.state.db.oidc_connection(&acme.id, &c.id).unwrap().unwrap();
    assert!(
        after.discovered.unwrap().jwks.contains(&kid),
        "the stored JWK Set now holds {kid}"
    );
    let events = callbacks(s);
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].details["account"], "linked", "the same user again");

    // acme's data key rotates (the old one is deleted): the sealed client secret is re-sealed
    // with the rest, so the code is still redeemed.
    s.state.keys.rotate_dek(&acme.id, "test", 100, None).unwrap();
    assert_eq!(
        s.state.db.data_keys(&acme.id).unwrap().len(),
        1,
        "the old data key is gone"
    );
    let (st, to) = through_up(s, &mut Browser::default()).await;
    assert_eq!(
        st,
        StatusCode::SEE_OTHER,
        "signed in after the data-key rotation: {to}"
    );
    assert_eq!(callbacks(s).len(), 3);

    // Its identities are `up`'s subjects: the issuer can't be moved under them.
    let mut moved = s.state.db.oidc_connection(&acme.id, &c.id).unwrap().unwrap();
    moved.issuer = "https://elsewhere.example".into();
    let refused = s.state.db.update_oidc_connection(&acme.id, "test", &moved, None);
    assert!(
        matches!(refused, Err(latchkey_store::StoreError::Invalid(ref e)) if e.field == "issuer"),
        "{refused:?}"
    );
    let mut rekeyed = s.state.db.oidc_connection(&acme.id, &c.id).unwrap().unwrap();
    rekeyed.discovery_url = Some("https://elsewhere.example/.well-known/openid-configuration".into());
    let refused = s
        .state
        .db
        .update_oidc_connection(&acme.id, "test", &rekeyed, None);
    assert!(
        matches!(refused, Err(latchkey_store::StoreError::Invalid(ref e)) if e.field == "discovery_url"),
        "{refused:?}"
    );
}

async fn signs_in_with_private_key_jwt_and_reads_userinfo(s: &TestServer) {
    // Connection `up` claims up.test, so another connection may not bring alice@up.test in (S8):
    // this test's connection replaces it.
    let up = upstream(s).await;
    s.state
        .db
        .delete_oidc_connection(&tid(s, SLUG).id, "test", &up.id, None)
        .unwrap();
    // The connection's key is made with it; `up` registers its public half (the JWK Set acme
    // publishes; Latchkey takes a `jwks_uri` on https only, so here it is given inline).
    let jwks_uri = format!("{}/federation/upkey/jwks", s.issuer(SLUG));
    let callback = format!("{}/federation/upkey/callback", s.issuer(SLUG));
    let options = UpstreamOptions {
        userinfo: true,
        ..UpstreamOptions::default()
    };
    let mut keyed = spec("upkey", &s.issuer("up"), "pending", "", options);
    keyed.client_auth = UpstreamAuth::PrivateKeyJwt;
    keyed.client_secret = None;
    let mut c = add_connection(s, keyed).await;
    let published = reqwest::get(&jwks_uri)
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    let jwk: serde_json::Value = serde_json::from_str(c.public_jwk.as_deref().unwrap()).unwrap();
    assert_eq!(
        published["keys"][0], jwk,
        "the key made for the connection is published"
    );
    assert!(
        jwk.get("d").is_none() && jwk.get("p").is_none(),
        "public half only: {jwk}"
    );
    let client = register_with(
        s,
        "up",
        ClientType::Confidential,
        true,
        AccessTokenFormat::Jwt,
        |n| {
            n.redirect_uris = vec![callback];
            n.auth_method = latchkey_core::AuthMethod::PrivateKeyJwt;
            n.secret_hash = None;
            n.jwks = Some(published.clone());
        },
    );
    c.client_id = client.client_id.as_str().to_owned();
    let c = s
        .state
        .db
        .update_oidc_connection(&tid(s, SLUG).id, "test", &c, None)
        .unwrap();
    // A connection with a secret publishes no key.
    let (st, ..) = Browser::default()
        .get(s, &format!("/t/{SLUG}/federation/up/jwks"))
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    let mut b = Browser::default();
    let (st, to) = through(s, &mut b, "upkey").await;
    assert_eq!(st, StatusCode::SEE_OTHER, "{to}");
    assert!(signed_in(s, &mut b).await);
    let up_alice = s
        .state
        .db
        .user_by_username(&tid(s, "up").id, "alice")
        .unwrap()
        .unwrap();
    assert!(
        s.state
            .db
            .oidc_identity(&tid(s, SLUG).id, &c.id, up_alice.id.as_str())
            .unwrap()
            .is_some()
    );
}

/// The last `federation.callback` event's reason (`None` for a success).
fn last_reason(s: &TestServer) -> Option<String> {
    let events = callbacks(s);
    let last = events.last().unwrap();
    last.details["reason"].as_str().map(str::to_owned)
}

async fn links_only_vouched_addresses_and_never_another_connections_account(s: &TestServer) {
    let c = upstream(s).await;
    let (acme, up) = (tid(s, SLUG), tid(s, "up"));
    let mut c2 = c.clone();
    c2.options.link_existing = true;
    c2.options.trust_email_verified = true;
    s.state
        .db
        .update_oidc_connection(&acme.id, "test", &c2, None)
        .unwrap();
    // A local account with the address alice has at `up`.
    let bob = s
        .state
        .db
        .create_user(
            &acme.id,
            "test",
            &latchkey_store::NewUser {
                username: "bob".into(),
                email: Some("alice@up.test".into()),
                ..latchkey_store::NewUser::default()
            },
        )
        .unwrap();
    // `up` has not verified alice's address: no link, no new account with it.
    let (st, page) = through_up(s, &mut Browser::default()).await;
    assert_eq!(st, StatusCode::CONFLICT, "{page}");
    assert_eq!(last_reason(s).as_deref(), Some("email_conflict"));
    // Verified upstream and trusted here: linked to bob.
    let alice = s.state.db.user_by_username(&up.id, "alice").unwrap().unwrap();
    latchkey_store::EmailVerificationRepo::set_email_verified(&s.state.db, &up.id, "test", &alice.id, true)
        .unwrap();
    // … and bob's own address is not proven: whoever signed up with it may not be him.
    let (st, page) = through_up(s, &mut Browser::default()).await;
    assert_eq!(st, StatusCode::CONFLICT, "{page}");
    assert_eq!(last_reason(s).as_deref(), Some("email_conflict"));
    latchkey_store::EmailVerificationRepo::set_email_verified(&s.state.db, &acme.id, "test", &bob.id, true)
        .unwrap();
    let mut b = Browser::default();
    let (st, to) = through_up(s, &mut b).await;
    assert_eq!(st, StatusCode::SEE_OTHER, "{to}");
    let linked = s
        .state
        .db
        .oidc_identity(&acme.id, &c.id, alice.id.as_str())
        .unwrap();
    assert_eq!(linked, Some(bob.id.clone()), "linked to the local account");
    assert_eq!(callbacks(s).last().unwrap().details["account"], "linked_now");

    never_takes_another_connections_account(s, &c, &c2.options).await;
}

/// An account another connection signs in to is never taken over, even in a trusted domain:
/// the forge makes mallory@forge.test, then `up`'s alice (verified there, now with that
/// address) comes through a connection trusted for forge.test and is refused.
async fn never_takes_another_connections_account(
    s: &TestServer,
    c: &OidcConnection,
    options: &UpstreamOptions,
) {
    let (acme, up) = (tid(s, SLUG), tid(s, "up"));
    let alice = s.state.db.user_by_username(&up.id, "alice").unwrap().unwrap();
    let forge = Forge::start(s.state.clock.clone()).await;
    let trusting = UpstreamOptions {
        trust_email_verified: true,
        ..UpstreamOptions::default()
    };
    add_connection(
        s,
        spec("forge", &forge.issuer, CLIENT_ID, CLIENT_SECRET, trusting),
    )
    .await;
    let (st, _) = via_forge(s, &forge, &mut Browser::default(), Case::Genuine).await;
    assert_eq!(st, StatusCode::SEE_OTHER, "mallory@forge.test made by the forge");
    s.state
        .db
        .update_user(
            &up.id,
            "test",
            &alice.id,
            &latchkey_store::UserUpdate {
                email: Some(Some("mallory@forge.test".into())),
                ..latchkey_store::UserUpdate::default()
            },
        )
        .unwrap();
    latchkey_store::EmailVerificationRepo::set_email_verified(&s.state.db, &up.id, "test", &alice.id, true)
        .unwrap();
    // A new identity at `up` (another user there) with that address.
    s.state
        .db
        .delete_oidc_connection(&acme.id, "test", &c.id, None)
        .unwrap();
    let c3 = add_connection(s, {
        let mut again = spec("up", &s.issuer("up"), &c.client_id, SECRET, options.clone());
        again.options.domains = vec!["forge.test".into()];
        again
    })
    .await;
    let (st, page) = through_up(s, &mut Browser::default()).await;
    assert_eq!(st, StatusCode::CONFLICT, "{page}");
    assert_eq!(last_reason(s).as_deref(), Some("email_conflict"));
    assert!(
        s.state
            .db
            .oidc_identity(&acme.id, &c3.id, alice.id.as_str())
            .unwrap()
            .is_none()
    );
}

async fn forged_tokens_are_refused_with_no_session(s: &TestServer) {
    let up = upstream(s).await;
    let forge = Forge::start(s.state.clock.clone()).await;
    add_connection(
        s,
        spec(
            "forge",
            &forge.issuer,
            CLIENT_ID,
            CLIENT_SECRET,
            UpstreamOptions::default(),
        ),
    )
    .await;
    // The honest case first: the forge is a working provider.
    let mut b = Browser::default();
    let (st, _) = via_forge(s, &forge, &mut b, Case::Genuine).await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    assert!(signed_in(s, &mut b).await);
    let up_issuer = up.discovered.unwrap().issuer;
    let cases = [
        (Case::Issuer("https://evil.example".into()), "wrong_issuer"),
        (Case::Issuer(up_issuer.clone()), "wrong_issuer"),
        (Case::WrongAudience, "wrong_audience"),
        (Case::OtherKey, "unknown_key"),
        (Case::OtherKeySameKid, "bad_signature"),
        (Case::AlgNone, "bad_signature"),
        (Case::Expired, "expired"),
        (Case::ReplayedNonce, "nonce"),
        (Case::ResponseIssuer(up_issuer), "iss_parameter"),
        (Case::NoResponseIssuer, "iss_parameter"),
    ];
    for (case, reason) in cases {
        let before = callbacks(s).len();
        let mut b = Browser::default();
        let (st, page) = via_forge(s, &forge, &mut b, case.clone()).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{case:?}: {page}");
        assert!(!signed_in(s, &mut b).await, "{case:?} made no session");
        let events = callbacks(s);
        assert_eq!(events.len(), before + 1, "{case:?}");
        let last = events.last().unwrap();
        assert_eq!(last.outcome, latchkey_core::Outcome::Failure, "{case:?}");
        assert_eq!(last.details["reason"], reason, "{case:?}: {:?}", last.details);
    }
    assert_eq!(
        forge.tokens_issued(),
        1 + 8,
        "a response naming another issuer, or none, is refused before its code is redeemed"
    );
    assert_eq!(
        forge.bad_verifiers(),
        0,
        "every code was redeemed with its PKCE verifier"
    );
    // A callback replayed (same state) finds nothing to take.
    forge.set_case(Case::Genuine);
    let mut b = Browser::default();
    let to = start(s, &mut b, "forge").await;
    let back = forge_redirect(&to).await;
    let (st, ..) = b.get(s, &local(s, &back)).await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let (st, _, page) = b.get(s, &local(s, &back)).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{page}");
    // … and in another browser (no binding cookie) a fresh one is refused too.
    let mut b1 = Browser::default();
    let to = start(s, &mut b1, "forge").await;
    let back = forge_redirect(&to).await;
    let (st, ..) = Browser::default().get(s, &local(s, &back)).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
}

async fn signs_in_through_node_oidc_provider(s: &TestServer) {
    setup(s, SLUG).await;
    let callback = format!("{}/federation/node/callback", s.issuer(SLUG));
    let Some(op) = NodeOp::start(&callback).await else {
        return;
    };
    // node-oidc-provider keeps scope claims out of ID tokens that come with an access token:
    // the address is in UserInfo.
    let options = UpstreamOptions {
        domains: vec!["node.test".into()],
        trust_email_verified: true,
        userinfo: true,
        ..UpstreamOptions::default()
    };
    let mut spec = spec(
        "node",
        &op.issuer,
        node_op::CLIENT_ID,
        node_op::CLIENT_SECRET,
        options,
    );
    spec.scopes = ["openid", "email", "profile"].map(String::from).to_vec();
    let c = add_connection(s, spec).await;
    let found = c.discovered.as_ref().unwrap();
    assert!(found.iss_parameter, "node-oidc-provider announces RFC 9207");
    assert!(
        found.signing_algs.contains(&"ES256".to_owned()),
        "{:?}",
        found.signing_algs
    );

    // A portal sends the person here; home-realm discovery sends them on to the provider.
    let mut b = Browser::default();
    let (portal, interaction) = Portal::start(s, &mut b).await;
    let csrf = b.form_token(s, SLUG).await;
    let form = [
        ("csrf", csrf.as_str()),
        ("interaction", interaction.as_str()),
        ("username", node_op::EMAIL),
        ("password", ""),
        ("return_to", ""),
    ];
    let (st, h, _) = b.post(s, &format!("/t/{SLUG}/login"), &form, &[]).await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let start = h["location"].to_str().unwrap().to_owned();
    assert_eq!(
        start,
        format!("/t/{SLUG}/federation/node/login?interaction={interaction}")
    );
    let (_, h, _) = b.get(s, &start).await;
    let next = h["location"].to_str().unwrap().to_owned();
    let next = at_node(&op, &mut b, next, &callback).await;
    assert!(next.starts_with(&callback) && next.contains("iss="), "{next}");
    let (st, h, page) = b.get(s, &local(s, &next)).await;
    assert_eq!(st, StatusCode::SEE_OTHER, "{page}");
    let claims = portal.finish(s, &mut b, h["location"].to_str().unwrap()).await;
    assert_eq!(claims.email().unwrap().as_str(), node_op::EMAIL);
    let amr: Vec<&str> = claims
        .auth_method_refs()
        .unwrap()
        .iter()
        .map(|m| m.as_str())
        .collect();
    assert_eq!(amr, ["ext"], "an upstream sign-in, its MFA not trusted");
    let acme = tid(s, SLUG);
    let uid = s
        .state
        .db
        .oidc_identity(&acme.id, &c.id, &format!("user-{}", node_op::USERNAME))
        .unwrap()
        .expect("keyed by node's sub");
    let user = s.state.db.user(&acme.id, &uid).unwrap().unwrap();
    assert_eq!(
        claims.subject().as_str(),
        user.id.as_str(),
        "the portal sees acme's user"
    );
    assert_eq!(user.email.as_deref(), Some(node_op::EMAIL));
    assert!(
        user.email_verified,
        "the provider verified it and the connection trusts that"
    );
}

async fn entra_multi_tenant_accepts_only_the_allowed_directories(s: &TestServer) {
    setup(s, SLUG).await;
    let forge = Forge::start(s.state.clock.clone()).await;
    let (template, discovery) = forge.entra();
    // `via_forge` signs in through the connection named `forge`.
    let mut entra = spec(
        "forge",
        &template,
        CLIENT_ID,
        CLIENT_SECRET,
        UpstreamOptions::default(),
    );
    entra.discovery_url = Some(discovery);
    entra.allowed_tenant_ids = vec!["1111-aaaa".into()];
    let c = add_connection(s, entra).await;
    assert_eq!(c.discovered.as_ref().unwrap().issuer, template);
    forge.set_entra_tenant("1111-aaaa");
    let mut b = Browser::default();
    let (st, page) = via_forge(s, &forge, &mut b, Case::Genuine).await;
    assert_eq!(st, StatusCode::SEE_OTHER, "{page}");
    let acme = tid(s, SLUG);
    assert!(
        s.state
            .db
            .oidc_identity(&acme.id, &c.id, "1111-aaaa:mallory-1")
            .unwrap()
            .is_some(),
        "keyed by directory and sub"
    );
    // Another directory's token, though genuinely signed by the same Entra keys.
    forge.set_entra_tenant("2222-bbbb");
    let (st, page) = via_forge(s, &forge, &mut Browser::default(), Case::Genuine).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{page}");
    assert_eq!(
        last_reason(s).as_deref(),
        Some("iss_parameter"),
        "the response's iss names a directory not allowed: refused before its code is redeemed"
    );
}

async fn a_fresh_sign_in_needs_the_providers_auth_time(s: &TestServer) {
    setup(s, SLUG).await;
    let forge = Forge::start(s.state.clock.clone()).await;
    add_connection(
        s,
        spec(
            "forge",
            &forge.issuer,
            CLIENT_ID,
            CLIENT_SECRET,
            UpstreamOptions::default(),
        ),
    )
    .await;
    let portal =
        latchkey_tests::oidc::register(s, SLUG, ClientType::Confidential, true, AccessTokenFormat::Jwt);
    // The portal asks for a fresh sign-in; the sign-in page carries its interaction.
    let mut b = Browser::default();
    let path = latchkey_tests::oidc::authorize_path(&portal, &[("prompt", "login")]);
    let (st, h, _) = b.get(s, &path).await;
    assert!(st.is_redirection());
    let login = h["location"].to_str().unwrap().to_owned();
    let (_, _, page) = b.get(s, &login).await;
    let interaction = latchkey_tests::browser::hidden(&page, "interaction");
    let (st, h, _) = b
        .get(
            s,
            &format!("/t/{SLUG}/federation/forge/login?interaction={interaction}"),
        )
        .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let to = h["location"].to_str().unwrap().to_owned();
    assert!(to.contains("prompt=login") && to.contains("max_age=0"), "{to}");
    // The forge's ID token has no `auth_time`: nothing says the person signed in just now.
    forge.set_case(Case::Genuine);
    let back = forge_redirect(&to).await;
    let (st, _, page) = b.get(s, &local(s, &back)).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{page}");
    assert_eq!(last_reason(s).as_deref(), Some("stale_authn"));
    assert!(!signed_in(s, &mut b).await);
}

/// Declares attribute `name` in `acme`, editable by admins.
fn define(s: &TestServer, name: &str, kind: latchkey_core::AttributeKind) {
    let acme = tid(s, SLUG);
    let def = latchkey_core::AttributeDef {
        tenant_id: acme.id.clone(),
        name: name.into(),
        label: None,
        kind,
        required: false,
        unique: false,
        editable_by: latchkey_core::EditableBy::Admin,
        created_at: 0,
        updated_at: 0,
    };
    s.state.db.define_attribute(&acme.id, "test", &def).unwrap();
}

async fn signs_in_through_an_oauth2_provider(s: &TestServer) {
    setup(s, SLUG).await;
    let forge = Forge::start(s.state.clock.clone()).await;
    let acme = tid(s, SLUG);
    define(s, "github_login", latchkey_core::AttributeKind::String);
    define(s, "github_handle", latchkey_core::AttributeKind::Number);
    let mut options = UpstreamOptions::default();
    options.mapping.subject = "id".into();
    // `login` fits its string attribute; a string in a number attribute is left out.
    options.attribute_map = vec![
        ("login".into(), "github_login".into()),
        ("login".into(), "github_handle".into()),
    ];
    let i = &forge.issuer;
    let mut github = spec("octo", i, CLIENT_ID, CLIENT_SECRET, options);
    github.kind = UpstreamKind::Oauth2;
    github.client_auth = UpstreamAuth::ClientSecretPost;
    github.scopes = vec!["read:user".into()];
    github.endpoints = Some(latchkey_core::UpstreamEndpoints {
        authorization_endpoint: format!("{i}/authorize"),
        token_endpoint: format!("{i}/token"),
        userinfo_endpoint: format!("{i}/user"),
    });
    let c = add_connection(s, github).await;
    assert!(c.discovered.is_none(), "nothing to discover");
    // The sign-in page offers it.
    let (_, _, page) = Browser::default().get(s, &format!("/t/{SLUG}/login")).await;
    assert!(page.contains("/t/acme/federation/octo/login"), "{page}");
    let mut b = Browser::default();
    let to = start(s, &mut b, "octo").await;
    assert!(!to.contains("nonce="), "no OIDC parameters: {to}");
    let back = forge_redirect(&to).await;
    let (st, _, page) = b.get(s, &local(s, &back)).await;
    assert_eq!(st, StatusCode::SEE_OTHER, "{page}");
    let uid = s
        .state
        .db
        .oidc_identity(&acme.id, &c.id, "4242")
        .unwrap()
        .expect("keyed by id");
    let user = s.state.db.user(&acme.id, &uid).unwrap().unwrap();
    assert_eq!(user.display_name.as_deref(), Some("Octo Cat"));
    assert!(!user.email_verified, "the user endpoint vouches for nothing");
    let attributes = s.state.db.user_attributes(&acme.id, &uid).unwrap();
    assert_eq!(attributes.get("github_login"), Some(&serde_json::json!("octo")));
    assert_eq!(attributes.get("github_handle"), None, "{attributes:?}");
}

/// At the provider: its interaction page, its form, then back to us; returns the callback URL.
async fn at_node(op: &NodeOp, b: &mut Browser, mut next: String, callback: &str) -> String {
    for _ in 0..8 {
        if next.starts_with(callback) {
            break;
        }
        let (st, h, page) = b.get(op, &local_to(&op.issuer, &next)).await;
        if st.is_redirection() {
            next = h["location"].to_str().unwrap().to_owned();
            continue;
        }
        assert_eq!(st, StatusCode::OK, "{page}");
        let action = page
            .split("action=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_owned();
        let csrf = latchkey_tests::browser::hidden(&page, "csrf");
        let (st, h, page) = b
            .post(
                op,
                &action,
                &[
                    ("csrf", &csrf),
                    ("username", node_op::USERNAME),
                    ("password", node_op::PASSWORD),
                ],
                &[],
            )
            .await;
        assert!(st.is_redirection(), "{page}");
        h["location"].to_str().unwrap().clone_into(&mut next);
    }
    next
}

/// `url` as a path on `base` (absolute URLs of the provider, or its relative redirects).
fn local_to(base: &str, url: &str) -> String {
    url.strip_prefix(base).unwrap_or(url).to_owned()
}

/// Follows the forge's authorization endpoint (it answers at once) and returns the callback URL.
async fn forge_redirect(to: &str) -> String {
    let res = TestServer::client().get(to).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FOUND);
    res.headers()["location"].to_str().unwrap().to_owned()
}

async fn via_forge(s: &TestServer, forge: &Forge, b: &mut Browser, case: Case) -> (StatusCode, String) {
    forge.set_case(case);
    let to = start(s, b, "forge").await;
    assert!(to.starts_with(&forge.issuer), "{to}");
    let back = forge_redirect(&to).await;
    let (st, h, page) = b.get(s, &local(s, &back)).await;
    let location = h.get("location").map(|l| l.to_str().unwrap().to_owned());
    (st, location.unwrap_or(page))
}

latchkey_tests::e2e_with!(
    federation,
    &[("LATCHKEY_OUTBOUND_ALLOW_PRIVATE", "127.0.0.1")],
    signs_in_through_another_tenant_and_follows_its_key_rotation,
    forged_tokens_are_refused_with_no_session,
    signs_in_through_node_oidc_provider,
    signs_in_with_private_key_jwt_and_reads_userinfo,
    signs_in_through_an_oauth2_provider,
    entra_multi_tenant_accepts_only_the_allowed_directories,
    a_fresh_sign_in_needs_the_providers_auth_time,
    links_only_vouched_addresses_and_never_another_connections_account,
);
