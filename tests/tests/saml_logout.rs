//! SAML Single Logout with the pysaml2 IdP (tests/saml/idp.py) on both backends: a logout at
//! Latchkey sends the browser to the IdP with a signed `LogoutRequest` for the session's NameID
//! and SessionIndex and comes back to the portal; an IdP-initiated `LogoutRequest` ends exactly
//! the session it names, tells the portals through back-channel logout and is answered with a
//! signed `LogoutResponse` that pysaml2 verifies; unsigned, forged, edited and misaddressed
//! requests are refused and end nothing.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use latchkey_core::{AccessTokenFormat, AuditEvent, ClientType, SamlOptions, SystemClock};
use latchkey_store::{AuditFilter, AuditRepo, TenantRepo};
use latchkey_tests::TestServer;
use latchkey_tests::browser::{Browser, setup};
use latchkey_tests::logout::Receiver;
use latchkey_tests::oidc::{POST_LOGOUT, code, enc, jwt_claims, redeem, register_with};
use latchkey_tests::saml_idp::{SamlIdp, connect, post_acs, through_idp};
use reqwest::StatusCode;
use std::sync::Arc;

const SLUG: &str = "acme";

fn options() -> SamlOptions {
    let mut o = SamlOptions {
        domains: vec!["corp.example".into()],
        ..SamlOptions::default()
    };
    o.mapping.email = Some("mail".into());
    o
}

/// Signs alice@corp.example in through the IdP in `b`.
async fn saml_sign_in(s: &TestServer, b: &mut Browser) {
    let (action, fields) = through_idp(s, b, &format!("/t/{SLUG}/saml/corp/login"), None).await;
    let (st, _, page) = post_acs(s, b, &action, &fields).await;
    assert_eq!(st, StatusCode::SEE_OTHER, "{page}");
    assert!(signed_in(s, b).await, "the SAML sign-in made a session");
}

async fn signed_in(s: &TestServer, b: &mut Browser) -> bool {
    let (st, ..) = b.get(s, &format!("/t/{SLUG}/account")).await;
    st == StatusCode::OK
}

fn slo_events(s: &TestServer) -> Vec<AuditEvent> {
    let t = s.state.db.tenant_by_slug(SLUG).unwrap().unwrap();
    s.state
        .db
        .audit_search(
            &t.id,
            &AuditFilter {
                action: Some("saml.slo".into()),
                ..AuditFilter::default()
            },
            0,
            1000,
        )
        .unwrap()
}

/// The path and query of a URL on the server.
fn local<'a>(s: &TestServer, url: &'a str) -> &'a str {
    url.strip_prefix(&s.base_url).unwrap_or(url)
}

async fn sp_initiated_logout_ends_the_idp_session_and_returns_to_the_portal(s: &TestServer) {
    setup(s, SLUG).await;
    let idp = SamlIdp::start();
    connect(s, &idp, (SLUG, "corp"), options(), None).await;
    let portal = register_with(
        s,
        SLUG,
        ClientType::Confidential,
        true,
        AccessTokenFormat::Jwt,
        |_| {},
    );
    let mut b = Browser::default();
    saml_sign_in(s, &mut b).await;
    // The portal gets tokens in the SAML session (no password: the session is there).
    let code = code(s, &mut b, &portal).await;
    let (st, tokens) = redeem(s, &portal, &code).await;
    assert_eq!(st, 200, "{tokens}");
    let hint = tokens["id_token"].as_str().unwrap();

    // RP-initiated logout: the session ends here, and the browser goes on to the IdP.
    let (st, h, _) = b
        .get(
            s,
            &format!(
                "/t/{SLUG}/end-session?id_token_hint={}&post_logout_redirect_uri={}&state=s1",
                enc(hint),
                enc(POST_LOGOUT)
            ),
        )
        .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let to_idp = h["location"].to_str().unwrap().to_owned();
    assert!(
        to_idp.starts_with(&format!("{}/slo/redirect?SAMLRequest=", idp.base_url)),
        "{to_idp}"
    );
    assert!(to_idp.contains("&Signature="), "signed: {to_idp}");
    assert!(
        !signed_in(s, &mut b).await,
        "the Latchkey session is over at once"
    );

    // pysaml2 parses the request and verifies its redirect signature with our SP certificate.
    let (st, back) = idp.visit(&to_idp).await;
    assert_eq!(st, StatusCode::FOUND, "{}", idp.log());
    let got = idp.logouts().await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["kind"], "request");
    assert_eq!(got[0]["name_id"], "alice@corp.example");
    assert_eq!(got[0]["session_index"].as_array().unwrap().len(), 1, "{got:?}");
    assert_eq!(
        got[0]["issued"], true,
        "the NameID and SessionIndex of a session the IdP issued"
    );
    let (sp_entity, _) = latchkey_server::sp_urls(&s.state, SLUG, "corp");
    assert_eq!(got[0]["sp"], sp_entity.as_str());

    // The IdP's signed LogoutResponse brings the browser back to the portal's post-logout URI.
    let back = back.unwrap();
    let (st, h, page) = b.get(s, local(s, &back)).await;
    assert_eq!(st, StatusCode::SEE_OTHER, "{page}");
    assert_eq!(h["location"], format!("{POST_LOGOUT}?state=s1").as_str());
    let events = slo_events(s);
    let last = events.last().unwrap();
    assert_eq!(last.details["initiated"], "sp");
    assert_eq!(
        last.details["status"],
        "urn:oasis:names:tc:SAML:2.0:status:Success"
    );
    // The same response again finishes nothing (the pending logout was taken).
    let (st, ..) = b.get(s, local(s, &back)).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
}

/// The account page's "Sign out" of a SAML session goes to the IdP as well, then back to the
/// sign-in page.
async fn the_account_pages_sign_out_ends_the_idp_session_too(s: &TestServer) {
    setup(s, SLUG).await;
    let idp = SamlIdp::start();
    connect(s, &idp, (SLUG, "corp"), options(), None).await;
    let mut b2 = Browser::default();
    saml_sign_in(s, &mut b2).await;
    let (_, _, page) = b2.get(s, &format!("/t/{SLUG}/account")).await;
    let csrf = latchkey_tests::browser::hidden(&page, "csrf");
    let (st, h, _) = b2
        .post(s, &format!("/t/{SLUG}/logout"), &[("csrf", csrf.as_str())], &[])
        .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let to_idp = h["location"].to_str().unwrap().to_owned();
    assert!(
        to_idp.starts_with(&format!("{}/slo/redirect?", idp.base_url)),
        "{to_idp}"
    );
    let (_, back) = idp.visit(&to_idp).await;
    let (st, h, _) = b2.get(s, local(s, &back.unwrap())).await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    assert!(
        h["location"].to_str().unwrap().contains("/login?signed_out=1"),
        "{h:?}"
    );
    assert!(!signed_in(s, &mut b2).await);
    let got = idp.logouts().await;
    assert_eq!(
        (got[0]["kind"].as_str(), got[0]["issued"].as_bool()),
        (Some("request"), Some(true))
    );
}

async fn idp_initiated_logout_ends_the_named_session_and_tells_the_portals(s: &TestServer) {
    setup(s, SLUG).await;
    let idp = SamlIdp::start();
    connect(s, &idp, (SLUG, "corp"), options(), None).await;
    let r = Receiver::start(&s.issuer(SLUG), Arc::new(SystemClock)).await;
    let portal = register_with(
        s,
        SLUG,
        ClientType::Confidential,
        true,
        AccessTokenFormat::Jwt,
        |n| {
            n.settings.backchannel_logout_uri = Some(r.uri());
        },
    );
    r.expect_audience(portal.client_id.as_str());
    let (sp, _) = latchkey_server::sp_urls(&s.state, SLUG, "corp");
    // Two SAML sessions of alice; the IdP logs out the second (its last).
    let mut other = Browser::default();
    saml_sign_in(s, &mut other).await;
    let mut b = Browser::default();
    saml_sign_in(s, &mut b).await;
    let code = code(s, &mut b, &portal).await;
    let (_, tokens) = redeem(s, &portal, &code).await;
    let sid = jwt_claims(tokens["id_token"].as_str().unwrap())["sid"].clone();

    // Refused, each with its reason, and nothing ends.
    for (case, reason) in [
        ("unsigned", "unsigned"),
        ("attacker", "bad_signature"),
        ("tampered", "bad_signature"),
        ("wrong_destination", "destination"),
    ] {
        let url = idp.logout_url(&sp, Some(case)).await;
        let (st, _, page) = b.get(s, local(s, &url)).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{case}: {page}");
        let last = slo_events(s).pop().unwrap();
        assert_eq!(last.outcome, latchkey_core::Outcome::Failure, "{case}");
        assert_eq!(last.details["reason"], reason, "{case}: {:?}", last.details);
        assert!(signed_in(s, &mut b).await, "{case}: still signed in");
    }
    assert!(r.accepted().is_empty());

    // The genuine request, sent by the IdP through any browser (here another one).
    let url = idp.logout_url(&sp, None).await;
    let (st, h, page) = Browser::default().get(s, local(s, &url)).await;
    assert_eq!(st, StatusCode::SEE_OTHER, "{page}");
    let to_idp = h["location"].to_str().unwrap().to_owned();
    assert!(
        to_idp.starts_with(&format!("{}/slo/redirect?SAMLResponse=", idp.base_url)),
        "{to_idp}"
    );
    assert!(to_idp.contains("RelayState=idp-relay"), "{to_idp}");
    let (st, _) = idp.visit(&to_idp).await;
    assert_eq!(
        st,
        StatusCode::OK,
        "pysaml2 verified our LogoutResponse: {}",
        idp.log()
    );
    let got = idp.logouts().await;
    assert_eq!(got.last().unwrap()["kind"], "response");
    assert_eq!(
        got.last().unwrap()["status"],
        "urn:oasis:names:tc:SAML:2.0:status:Success"
    );

    assert!(!signed_in(s, &mut b).await, "the named session ended");
    assert!(
        signed_in(s, &mut other).await,
        "the other session (another SessionIndex) did not"
    );
    let last = slo_events(s).pop().unwrap();
    assert_eq!(last.details["initiated"], "idp");
    assert_eq!(last.details["sessions_ended"], 1);
    // The portal that got tokens in it is told, with that session's sid.
    latchkey_server::deliver_due(&s.state).await.unwrap();
    let told = r.wait_for(1).await;
    assert_eq!(told.len(), 1, "{:?}", r.outcomes());
    assert_eq!(told[0]["sid"], sid);
    // The same request again (copied from a URL) is a replay: refused, and the session made
    // since lives on.
    saml_sign_in(s, &mut b).await;
    let (st, ..) = Browser::default().get(s, local(s, &url)).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(slo_events(s).pop().unwrap().details["reason"], "replayed");
    assert!(signed_in(s, &mut b).await);
}

/// The receivers listen on loopback.
const SETTINGS: &[(&str, &str)] = &[("LATCHKEY_OUTBOUND_ALLOW_PRIVATE", "127.0.0.1")];

latchkey_tests::e2e_with!(
    slo,
    crate::SETTINGS,
    sp_initiated_logout_ends_the_idp_session_and_returns_to_the_portal,
    the_account_pages_sign_out_ends_the_idp_session_too,
    idp_initiated_logout_ends_the_named_session_and_tells_the_portals,
);
