//! Back-Channel and Front-Channel Logout toward portals (docs/logout.md): every way a session
//! ends tells the clients that got tokens in it, through a receiver that validates logout
//! tokens as relying-party libraries do; a receiver that is down gets its token once it is
//! back; the logout page frames each client's front-channel page under a CSP that allows
//! those origins only.

#![allow(clippy::unwrap_used, clippy::many_single_char_names)] // test code; x, s, r, a, t: context, server, receiver, portal, tenant

use latchkey_core::{AccessTokenFormat, Client, ClientType, FixedClock};
use latchkey_store::ClientRepo as _;
use latchkey_tests::browser::{Browser, hidden, setup};
use latchkey_tests::logout::Receiver;
use latchkey_tests::oidc::{POST_LOGOUT, code, enc, jwt_claims, redeem, register_with, tenant};
use latchkey_tests::{TestDb, TestServer};
use serde_json::Value;
use std::sync::Arc;

const START: i64 = 1_800_000_000_000;

struct Ctx<'a> {
    s: &'a TestServer,
    clock: &'a Arc<FixedClock>,
    db: &'a TestDb,
}

impl Ctx<'_> {
    async fn receiver(&self) -> Receiver {
        Receiver::start(&self.s.issuer("acme"), self.clock.clone()).await
    }

    /// Runs the outbox once, as the server's own task would when woken.
    async fn deliver(&self) {
        latchkey_server::deliver_due(&self.s.state).await.unwrap();
    }
}

/// `scheme://host[:port]` of a URL.
fn origin(url: &str) -> String {
    url::Url::parse(url).unwrap().origin().ascii_serialization()
}

/// A portal that listens for logout tokens at `r` (with `sid` required) and, if `front`,
/// registered a front-channel page.
fn portal(s: &TestServer, kind: ClientType, r: Option<&Receiver>, front: Option<&str>) -> Client {
    let c = register_with(s, "acme", kind, true, AccessTokenFormat::Jwt, |n| {
        n.settings.backchannel_logout_uri = r.map(Receiver::uri);
        n.settings.backchannel_logout_session_required = r.is_some();
        n.settings.frontchannel_logout_uri = front.map(str::to_owned);
        n.settings.frontchannel_logout_session_required = front.is_some();
        // Front-Channel Logout §2: the page is on the origin of a redirect URI.
        n.redirect_uris.extend(front.map(|f| format!("{}/cb", origin(f))));
    });
    if let Some(r) = r {
        r.expect_audience(c.client_id.as_str());
    }
    c
}

/// Signs alice in with `b` (if not yet) and redeems a code for `c`: the ID token's claims and
/// the ID token.
async fn tokens_for(s: &TestServer, b: &mut Browser, c: &Client) -> (Value, String) {
    let code = code(s, b, c).await;
    let (st, body) = redeem(s, c, &code).await;
    assert_eq!(st, 200, "{body}");
    let id_token = body["id_token"].as_str().unwrap().to_owned();
    (jwt_claims(&id_token), id_token)
}

/// RP-initiated logout with a trusted hint: the answer.
async fn end_session(
    s: &TestServer,
    b: &mut Browser,
    hint: &str,
    extra: &str,
) -> (u16, reqwest::header::HeaderMap, String) {
    let (st, h, page) = b
        .get(
            s,
            &format!("/t/acme/end-session?id_token_hint={}{extra}", enc(hint)),
        )
        .await;
    (st.as_u16(), h, page)
}

/// The tokens for one session: exactly the clients that got tokens in it, each once, with the
/// session's `sid` and the user as `sub`.
fn assert_told(got: &[Value], sid: &Value, sub: &Value, clients: &[&Client]) {
    let mut auds: Vec<&str> = got
        .iter()
        .filter(|c| c["sid"] == *sid)
        .map(|c| c["aud"].as_str().unwrap())
        .collect();
    auds.sort_unstable();
    let mut want: Vec<&str> = clients.iter().map(|c| c.client_id.as_str()).collect();
    want.sort_unstable();
    assert_eq!(auds, want, "{got:?}");
    assert!(got.iter().all(|c| c["sub"] == *sub), "{got:?}");
}

// The ways a session ends, one after the other against the same receiver: each step reads
// only with the steps before it.
#[allow(clippy::too_many_lines)]
async fn every_way_a_session_ends_tells_the_clients_that_got_tokens_in_it(x: &Ctx<'_>) {
    let s = x.s;
    setup(s, "acme").await;
    let r = x.receiver().await;
    let a = portal(s, ClientType::Confidential, Some(&r), None);
    let b_client = portal(s, ClientType::Public, Some(&r), None);
    let silent = portal(s, ClientType::Public, None, None);

    // Session 1 gets tokens for all three; session 2 for `a` only.
    let mut one = Browser::default();
    let (id1, hint1) = tokens_for(s, &mut one, &a).await;
    tokens_for(s, &mut one, &b_client).await;
    tokens_for(s, &mut one, &silent).await;
    let mut two = Browser::default();
    let (id2, _) = tokens_for(s, &mut two, &a).await;
    assert_ne!(id1["sid"], id2["sid"], "each session has its own sid");
    let sub = id1["sub"].clone();

    // 1. RP-initiated logout of session 1: a and b are told, with session 1's sid; not the
    // client without a URI, and nothing about session 2.
    let (st, ..) = end_session(s, &mut one, &hint1, "").await;
    assert_eq!(st, 200);
    x.deliver().await;
    let got = r.wait_for(2).await;
    assert_eq!(got.len(), 2, "{:?}", r.outcomes());
    assert_told(&got, &id1["sid"], &sub, &[&a, &b_client]);
    assert!(r.refused().is_empty(), "{:?}", r.refused());

    // The receiver is honest: the same token again is a replay, refused.
    let first = r.tokens()[0].clone();
    assert_eq!(r.post(&first).await, 400);
    assert!(r.refused()[0].contains("used before"), "{:?}", r.refused());
    // A logout token is not an ID token: as an id_token_hint it is refused.
    let mut other = Browser::default();
    let (st, _, page) = end_session(s, &mut other, &first, "").await;
    assert_eq!(st, 400, "{page}");

    // 2. An administrator ends session 2 through the admin API.
    let t = tenant(s, "acme");
    let admin = latchkey_tests::admin::with_role(s, &t.id, "tenant-admin");
    let uid = sub.as_str().unwrap();
    let (st, list) = latchkey_tests::admin::call(
        s,
        "GET",
        &format!("/admin/t/acme/users/{uid}/sessions"),
        &admin,
        None,
    )
    .await;
    assert_eq!(st, 200, "{list}");
    let key = list[0]["id"].as_str().unwrap().to_owned();
    let (st, body) = latchkey_tests::admin::call(
        s,
        "DELETE",
        &format!("/admin/t/acme/users/{uid}/sessions/{key}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(st, 200, "{body}");
    x.deliver().await;
    let got = r.wait_for(3).await;
    assert_eq!(got.len(), 3, "{:?}", r.outcomes());
    assert_told(&got[2..], &id2["sid"], &sub, &[&a]);

    // 3. "Sign out everywhere" on the account page.
    let mut three = Browser::default();
    let (id3, _) = tokens_for(s, &mut three, &b_client).await;
    let (_, _, page) = three.get(s, "/t/acme/account").await;
    let csrf = hidden(&page, "csrf");
    let (st, h, _) = three
        .post(
            s,
            "/t/acme/account/sessions/revoke-all",
            &[("csrf", csrf.as_str())],
            &[],
        )
        .await;
    assert!(st.is_redirection());
    assert!(h["location"].to_str().unwrap().contains("signed_out"), "{h:?}");
    x.deliver().await;
    let got = r.wait_for(4).await;
    assert_eq!(got.len(), 4, "{:?}", r.outcomes());
    assert_told(&got[3..], &id3["sid"], &sub, &[&b_client]);

    // 4. An administrator disables the user (and enables them again).
    let mut four = Browser::default();
    let (id4, _) = tokens_for(s, &mut four, &b_client).await;
    // The user row's `updated_at` moves at least a millisecond past the last change;
    // with this fixed clock, time moves too.
    x.clock.advance_millis(1_000);
    let (st, body) = latchkey_tests::admin::call(
        s,
        "POST",
        &format!("/admin/t/acme/users/{uid}/disable"),
        &admin,
        None,
    )
    .await;
    assert_eq!(st, 200, "{body}");
    x.deliver().await;
    let got = r.wait_for(5).await;
    assert_told(&got[4..], &id4["sid"], &sub, &[&b_client]);
    let (st, body) = latchkey_tests::admin::call(
        s,
        "POST",
        &format!("/admin/t/acme/users/{uid}/enable"),
        &admin,
        None,
    )
    .await;
    assert_eq!(st, 200, "{body}");

    // 5. An administrator sets a new password: every grant of the user ends.
    let mut five = Browser::default();
    let (id5, _) = tokens_for(s, &mut five, &a).await;
    let (st, body) = latchkey_tests::admin::call(
        s,
        "POST",
        &format!("/admin/t/acme/users/{uid}/password"),
        &admin,
        Some(r#"{"password":"a brand new passphrase 4 the portal"}"#),
    )
    .await;
    assert_eq!(st, 200, "{body}");
    x.deliver().await;
    let got = r.wait_for(6).await;
    assert_eq!(got.len(), 6, "one token per session and client, no more: {got:?}");
    assert_told(&got[5..], &id5["sid"], &sub, &[&a]);
    // Six valid tokens, one replay refused (step 1), nothing else.
    assert_eq!(r.refused().len(), 1, "{:?}", r.refused());
}

async fn a_logout_token_waits_for_a_receiver_that_is_down(x: &Ctx<'_>) {
    let s = x.s;
    setup(s, "acme").await;
    let r = x.receiver().await;
    let port = r.port;
    let a = portal(s, ClientType::Confidential, Some(&r), None);
    let mut one = Browser::default();
    let (id, hint) = tokens_for(s, &mut one, &a).await;
    r.stop();
    let (st, ..) = end_session(s, &mut one, &hint, "").await;
    assert_eq!(st, 200);
    x.deliver().await;
    // The attempt failed and waits for its back-off (the server's own task may have made it).
    assert_eq!(
        x.db.first_failures_recorded("backchannel_logout").await,
        1,
        "the failed attempt is recorded"
    );
    // Back 31 s later: the token arrives, made then (a fresh iat), with the same jti as the
    // attempt that failed would have had.
    let back = Receiver::start_on(port, &s.issuer("acme"), x.clock.clone()).await;
    back.expect_audience(a.client_id.as_str());
    x.clock.advance_millis(31_000);
    x.deliver().await;
    let got = back.wait_for(1).await;
    assert_eq!(got.len(), 1, "{:?}", back.outcomes());
    assert_eq!(got[0]["sid"], id["sid"]);
    assert_eq!(got[0]["iat"].as_i64().unwrap(), (START + 31_000) / 1000);
    // Delivered once: nothing is due any more.
    x.clock.advance_millis(3_600_000);
    x.deliver().await;
    assert_eq!(back.outcomes().len(), 1);
}

// Each way a browser signs out, one after the other: the registrations are shared.
#[allow(clippy::too_many_lines)]
async fn the_logout_page_frames_each_clients_front_channel_page(x: &Ctx<'_>) {
    let s = x.s;
    setup(s, "acme").await;
    let front = portal(
        s,
        ClientType::Confidential,
        None,
        Some("https://portal.example/fc?x=1"),
    );
    // Registered for front-channel logout, but no tokens in this session: not framed.
    let elsewhere = register_with(s, "acme", ClientType::Public, true, AccessTokenFormat::Jwt, |n| {
        n.settings.frontchannel_logout_uri = Some("https://other.example/fc".into());
        n.redirect_uris.push("https://other.example/cb".into());
    });
    // A page on an origin none of the client's redirect URIs has is refused: a client can't
    // have the logout page frame someone else's site.
    let mut foreign = latchkey_tests::oidc::new_client(ClientType::Public);
    foreign.settings.frontchannel_logout_uri = Some("https://victim.example/".into());
    let refused = s.state.db.create_client(&tenant(s, "acme").id, "test", &foreign);
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.to_string().contains("frontchannel_logout_uri")),
        "{refused:?}"
    );
    let mut one = Browser::default();
    let (id, hint) = tokens_for(s, &mut one, &front).await;
    let mut two = Browser::default();
    tokens_for(s, &mut two, &elsewhere).await;
    let extra = format!("&post_logout_redirect_uri={}&state=s1", enc(POST_LOGOUT));
    let (st, h, page) = end_session(s, &mut one, &hint, &extra).await;
    assert_eq!(st, 200, "{page}");
    let want = format!(
        "https://portal.example/fc?x=1&#38;iss={}&#38;sid={}",
        enc(&s.issuer("acme")),
        id["sid"].as_str().unwrap()
    );
    assert!(page.contains(&format!("src=\"{want}\"")), "{page}");
    assert!(!page.contains("other.example"), "{page}");
    assert!(
        page.contains(&format!("href=\"{POST_LOGOUT}?state=s1\"")),
        "{page}"
    );
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.ends_with("; frame-src https://portal.example"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    // The session is over.
    let (st, h, _) = one.get(s, "/t/acme/account").await;
    assert_eq!(st, 303, "signed out");
    assert!(h["location"].to_str().unwrap().contains("/login"), "{h:?}");
    // Session two framed only the client it got tokens for.
    let (_, hint2) = tokens_for(s, &mut two, &elsewhere).await;
    let (st, h, page) = end_session(s, &mut two, &hint2, "").await;
    assert_eq!(st, 200, "{page}");
    assert!(
        page.contains("src=\"https://other.example/fc\""),
        "no iss and sid unless asked: {page}"
    );
    assert!(!page.contains("portal.example"), "{page}");
    assert!(
        h["content-security-policy"]
            .to_str()
            .unwrap()
            .ends_with("; frame-src https://other.example")
    );
    // The account page's "Sign out" frames them too, then goes on to the sign-in page.
    let mut four = Browser::default();
    tokens_for(s, &mut four, &front).await;
    let (_, _, account) = four.get(s, "/t/acme/account").await;
    let csrf = hidden(&account, "csrf");
    let (st, h, page) = four
        .post(s, "/t/acme/logout", &[("csrf", csrf.as_str())], &[])
        .await;
    assert_eq!(st, 200, "{page}");
    assert!(
        page.contains("src=\"https://portal.example/fc?x=1&#38;iss="),
        "{page}"
    );
    assert!(page.contains("href=\"/t/acme/login?signed_out=1\""), "{page}");
    assert!(
        h["content-security-policy"]
            .to_str()
            .unwrap()
            .ends_with("; frame-src https://portal.example")
    );
    let (st, ..) = four.get(s, "/t/acme/account").await;
    assert_eq!(st, 303, "signed out");
    // Without front-channel clients, logout redirects at once and frames nothing.
    let plain = portal(s, ClientType::Public, None, None);
    let mut three = Browser::default();
    let (_, hint3) = tokens_for(s, &mut three, &plain).await;
    let (st, h, _) = end_session(
        s,
        &mut three,
        &hint3,
        &format!("&post_logout_redirect_uri={}", enc(POST_LOGOUT)),
    )
    .await;
    assert_eq!(st, 303);
    assert!(
        !h["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-src")
    );
}

macro_rules! clocked {
    ($($name:ident),* $(,)?) => {
        mod sqlite_memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let clock = std::sync::Arc::new(latchkey_core::FixedClock::new(super::START));
                    let (s, db) = latchkey_tests::TestServer::start_on_clocked(latchkey_tests::Backend::SqliteMemory, super::SETTINGS, clock.clone()).expect("server starts");
                    super::$name(&super::Ctx { s: &s, clock: &clock, db: &db }).await;
                }
            )*
        }
        mod postgres_redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let clock = std::sync::Arc::new(latchkey_core::FixedClock::new(super::START));
                    let Some((s, db)) = latchkey_tests::TestServer::start_on_clocked(latchkey_tests::Backend::PostgresRedis, super::SETTINGS, clock.clone()) else { return };
                    super::$name(&super::Ctx { s: &s, clock: &clock, db: &db }).await;
                }
            )*
        }
    };
}

/// The receivers listen on loopback; the outbox runs when woken or driven by the test.
const SETTINGS: &[(&str, &str)] = &[
    ("LATCHKEY_OUTBOUND_ALLOW_PRIVATE", "127.0.0.1"),
    ("LATCHKEY_MAIL_POLL_SECS", "3600"),
];

clocked!(
    every_way_a_session_ends_tells_the_clients_that_got_tokens_in_it,
    a_logout_token_waits_for_a_receiver_that_is_down,
    the_logout_page_frames_each_clients_front_channel_page,
);
