//! Login risk end to end on both backends, on a clock the test moves, with a GeoIP database the
//! test writes itself and a trusted proxy naming the client address: new device and network
//! step up (or deny a user with no second factor, looking exactly like a wrong password),
//! impossible travel, credential stuffing, the deny-list, the signed webhook with its retry,
//! retention with `audit verify` still green, and the admin audit search.

#![allow(clippy::unwrap_used, clippy::many_single_char_names)] // test code; s, t, x, v: server, tenant, context, value

use latchkey_core::{FixedClock, TenantPolicy};
use latchkey_store::{AuditRepo, MfaRepo, UserRepo};
use latchkey_tests::browser::{Browser, PASSWORD, hidden, setup};
use latchkey_tests::oidc::tenant;
use latchkey_tests::{TestDb, TestServer};
use reqwest::StatusCode;
use serde::Serialize;
use std::io::{Read, Write};
use std::path::PathBuf;

const START: i64 = 1_900_000_000_000;
const HOUR: i64 = 3_600_000;
const PARIS: &str = "198.51.100.7";
const PARIS_2: &str = "198.51.100.8";
const SYDNEY: &str = "203.0.113.9";
const DENIED: &str = "192.0.2.66";

struct Ctx<'a> {
    s: &'a TestServer,
    clock: &'a FixedClock,
    db: &'a TestDb,
}

#[derive(Serialize)]
struct Location {
    latitude: f64,
    longitude: f64,
}

#[derive(Serialize)]
struct GeoRecord {
    location: Location,
    autonomous_system_number: u32,
}

/// A city+ASN database in MaxMind format, written with mmdb-writer (read back by the server
/// through the maxminddb crate), and a deny-list; returns their paths.
fn geo_files(dir: &std::path::Path) -> (PathBuf, PathBuf) {
    let mut w = mmdb_writer::Writer::new("Latchkey-Test-City-ASN");
    let rec = |latitude, longitude, asn| GeoRecord {
        location: Location { latitude, longitude },
        autonomous_system_number: asn,
    };
    w.insert(
        "198.51.100.0/24".parse::<ipnet::IpNet>().unwrap(),
        &rec(48.8566, 2.3522, 64_500),
    )
    .unwrap();
    w.insert(
        "203.0.113.0/24".parse::<ipnet::IpNet>().unwrap(),
        &rec(-33.8688, 151.2093, 64_501),
    )
    .unwrap();
    w.insert(
        "192.0.2.0/24".parse::<ipnet::IpNet>().unwrap(),
        &rec(48.8566, 2.3522, 64_500),
    )
    .unwrap();
    let db = dir.join("geo.mmdb");
    std::fs::write(&db, w.to_bytes().unwrap()).unwrap();
    let deny = dir.join("deny.txt");
    std::fs::write(&deny, "# known bad\n192.0.2.0/24\n").unwrap();
    (db, deny)
}

/// A sign-in from `ip` (the trusted proxy's `X-Forwarded-For`); returns status, where it went,
/// and the page.
async fn sign_in_from(
    s: &TestServer,
    b: &mut Browser,
    ip: &str,
    user: &str,
    password: &str,
) -> (StatusCode, String, String) {
    let (_, _, page) = b.get(s, "/t/acme/login").await;
    let csrf = hidden(&page, "csrf");
    let (st, h, page) = b
        .post(
            s,
            "/t/acme/login",
            &[
                ("csrf", &csrf),
                ("username", user),
                ("password", password),
                ("return_to", ""),
            ],
            &[("x-forwarded-for", ip)],
        )
        .await;
    let location = h
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (st, location, page)
}

/// The page without what differs per request and per name typed.
fn strip(page: &str, names: &[&str]) -> String {
    let mut p = page.replace(&hidden(page, "csrf"), "");
    for n in names {
        p = p.replace(&format!("value=\"{n}\""), "");
    }
    p
}

fn risk_events(s: &TestServer) -> Vec<latchkey_core::AuditEvent> {
    let t = tenant(s, "acme");
    s.state
        .db
        .audit_events(&t.id, 0, 10_000)
        .unwrap()
        .into_iter()
        .filter(|e| e.action.starts_with("risk."))
        .collect()
}

fn update_policy(s: &TestServer, f: impl FnOnce(&mut TenantPolicy)) {
    latchkey_tests::oidc::update_policy(s, "acme", f);
}

/// Gives alice a confirmed authenticator app.
fn enrol_totp(s: &TestServer) {
    let t = tenant(s, "acme");
    let alice = s.state.db.user_by_username(&t.id, "alice").unwrap().unwrap();
    s.state.db.begin_totp(&t.id, &alice.id, &[7u8; 20]).unwrap();
    s.state.db.confirm_totp(&t.id, &alice.id, &[]).unwrap();
}

async fn metric(s: &TestServer, decision: &str) -> u64 {
    let text = s.metrics().await;
    let needle = format!("latchkey_risk_decisions_total{{decision=\"{decision}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&needle))
        .map_or(0, |n| n.trim().parse().unwrap())
}

async fn a_new_device_and_network_steps_up_or_looks_like_a_wrong_password(x: &Ctx<'_>) {
    let s = x.s;
    setup(s, "acme").await;
    // Home: Paris, one browser. The first sign-in has no history to compare with.
    let mut home = Browser::default();
    let (st, to, _) = sign_in_from(s, &mut home, PARIS, "alice", PASSWORD).await;
    assert_eq!((st, to.as_str()), (StatusCode::SEE_OTHER, "/t/acme/account"));
    assert!(
        home.cookies.contains_key("lk-device-acme"),
        "a device cookie was given: {:?}",
        home.cookies.keys()
    );
    // Familiar: same browser, same network, an hour later.
    x.clock.advance_millis(HOUR);
    let (st, to, _) = sign_in_from(s, &mut home, PARIS_2, "alice", PASSWORD).await;
    assert_eq!((st, to.as_str()), (StatusCode::SEE_OTHER, "/t/acme/account"));
    assert!(risk_events(s).is_empty(), "nothing unusual so far");

    // A stranger with the right password, from another network, AS and browser (45 points),
    // a day later so travel is possible: stepped up, and alice has no second factor, so refused
    // exactly like a wrong password and like an unknown name.
    x.clock.advance_millis(24 * HOUR);
    let mut stranger = Browser::default();
    let (st, _, refused) = sign_in_from(s, &mut stranger, SYDNEY, "alice", PASSWORD).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st_wrong, _, wrong) =
        sign_in_from(s, &mut Browser::default(), SYDNEY, "alice", "not-the-password-1").await;
    let (st_unknown, _, unknown) = sign_in_from(s, &mut Browser::default(), SYDNEY, "nobody", PASSWORD).await;
    assert_eq!(
        (st_wrong, st_unknown),
        (StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED)
    );
    assert_eq!(strip(&refused, &["alice"]), strip(&wrong, &["alice"]));
    assert_eq!(strip(&refused, &["alice"]), strip(&unknown, &["nobody"]));
    assert!(
        !stranger.cookies.keys().any(|k| k.starts_with("lk-session")),
        "no session"
    );
    assert!(!stranger.cookies.contains_key("lk-device-acme"), "not remembered");
    let events = risk_events(s);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].action, "risk.deny");
    let reasons: Vec<&str> = events[0].details["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["signal"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["unknown_device", "unknown_network", "unknown_asn"]);
    assert_eq!(events[0].details["score"], 45);
    assert_eq!(metric(s, "deny").await, 1);

    // With an authenticator app, the same sign-in is asked for it instead.
    enrol_totp(s);
    let (st, to, _) = sign_in_from(s, &mut stranger, SYDNEY, "alice", PASSWORD).await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    assert!(to.starts_with("/t/acme/login/second-factor"), "{to}");
    assert_eq!(risk_events(s).last().unwrap().action, "risk.step_up");
    assert_eq!(metric(s, "step_up").await, 1);

    // Turned off for the tenant, nothing is scored.
    update_policy(s, |p| p.risk.enabled = false);
    let (st, _, _) = sign_in_from(s, &mut Browser::default(), SYDNEY, "alice", PASSWORD).await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    assert_eq!(risk_events(s).len(), 2);
}

async fn users_can_be_told_about_a_new_device(x: &Ctx<'_>) {
    let s = x.s;
    setup(s, "acme").await;
    update_policy(s, |p| p.risk.notify_new_device = true);
    // Queued mail, delivered or not (a development issuer writes it to the log at once); the
    // no-op update counts the matching rows.
    let new_device_mail = || {
        x.db.raw_sql(
            "UPDATE mail_outbox SET attempts = attempts WHERE channel = 'mail' \
             AND recipient = 'alice@acme.test' AND subject = 'New sign-in to your acme Corp account'",
        )
    };
    let mut home = Browser::default();
    assert_eq!(
        sign_in_from(s, &mut home, PARIS, "alice", PASSWORD).await.0,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        sign_in_from(s, &mut home, PARIS, "alice", PASSWORD).await.0,
        StatusCode::SEE_OTHER
    );
    assert_eq!(new_device_mail(), 0, "the first device and a known one: no mail");
    // A second browser at home (20 points: allowed) is a new device: alice hears of it.
    assert_eq!(
        sign_in_from(s, &mut Browser::default(), PARIS_2, "alice", PASSWORD)
            .await
            .0,
        StatusCode::SEE_OTHER
    );
    assert_eq!(new_device_mail(), 1);
}

async fn impossible_travel_and_the_deny_list_are_refused(x: &Ctx<'_>) {
    let s = x.s;
    setup(s, "acme").await;
    let mut b = Browser::default();
    assert_eq!(
        sign_in_from(s, &mut b, PARIS, "alice", PASSWORD).await.0,
        StatusCode::SEE_OTHER
    );
    // Same browser, Sydney one hour later: 17,000 km/h.
    x.clock.advance_millis(HOUR);
    let (st, _, _) = sign_in_from(s, &mut b, SYDNEY, "alice", PASSWORD).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let e = risk_events(s).pop().unwrap();
    assert!(
        e.details["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["signal"] == "impossible_travel"),
        "{e:?}"
    );
    assert!(
        !e.details["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["signal"] == "unknown_device")
    );
    // The deny-list refuses even a familiar browser, and an unknown name gets the same page.
    let (st, _, denied) = sign_in_from(s, &mut b, DENIED, "alice", PASSWORD).await;
    let (_, _, unknown) = sign_in_from(s, &mut Browser::default(), DENIED, "nobody", PASSWORD).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert_eq!(strip(&denied, &["alice"]), strip(&unknown, &["nobody"]));
    let e = risk_events(s).pop().unwrap();
    assert_eq!(
        (e.action.as_str(), e.details["score"].as_u64()),
        ("risk.deny", Some(100))
    );
    // Back home a day later: fine.
    x.clock.advance_millis(24 * HOUR);
    assert_eq!(
        sign_in_from(s, &mut b, PARIS, "alice", PASSWORD).await.0,
        StatusCode::SEE_OTHER
    );
}

async fn credential_stuffing_from_one_network_is_refused(x: &Ctx<'_>) {
    let s = x.s;
    setup(s, "acme").await;
    for i in 0..6 {
        let name = format!("victim{i}");
        assert_eq!(
            sign_in_from(s, &mut Browser::default(), SYDNEY, &name, "Password1!")
                .await
                .0,
            StatusCode::UNAUTHORIZED
        );
    }
    // The seventh account from the network, right password, first sign-in ever: refused.
    let (st, _, _) = sign_in_from(s, &mut Browser::default(), SYDNEY, "alice", PASSWORD).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let e = risk_events(s).pop().unwrap();
    assert!(
        e.details["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["signal"] == "credential_stuffing"),
        "{e:?}"
    );
    // From another network at the same moment: fine.
    assert_eq!(
        sign_in_from(s, &mut Browser::default(), PARIS, "alice", PASSWORD)
            .await
            .0,
        StatusCode::SEE_OTHER
    );
}

/// On the in-process store the window follows the test's clock (Redis keeps its own time; the
/// session contract suite checks windows there).
async fn the_stuffing_window_closes(x: &Ctx<'_>) {
    if !x.db.url.starts_with("sqlite") {
        return;
    }
    let s = x.s;
    setup(s, "acme").await;
    for i in 0..6 {
        sign_in_from(
            s,
            &mut Browser::default(),
            SYDNEY,
            &format!("victim{i}"),
            "Password1!",
        )
        .await;
    }
    x.clock
        .advance_millis(i64::try_from(latchkey_server::STUFFING_WINDOW.as_millis()).unwrap() + 1000);
    assert_eq!(
        sign_in_from(s, &mut Browser::default(), SYDNEY, "alice", PASSWORD)
            .await
            .0,
        StatusCode::SEE_OTHER
    );
    assert!(risk_events(s).is_empty());
}

/// A one-request-at-a-time HTTP receiver: answers `status` and hands over what it received.
fn receiver(listener: std::net::TcpListener, status: u16) -> std::thread::JoinHandle<(String, String)> {
    std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        conn.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = conn.read(&mut chunk).unwrap();
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf).to_string();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap())
                    })
                    .unwrap_or(0);
                if body.len() >= len || n == 0 {
                    write!(
                        conn,
                        "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    )
                    .unwrap();
                    return (head.to_owned(), body.to_owned());
                }
            }
        }
    })
}

// One delivery over a moving clock (down, back-off, up): the timing only reads whole.
#[allow(clippy::too_many_lines)]
async fn the_webhook_is_signed_and_retried_after_the_receiver_was_down(x: &Ctx<'_>) {
    let s = x.s;
    setup(s, "acme").await;
    // A port nobody listens on yet.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let secret = "whsec_test-secret-for-the-receiver";
    let t = tenant(s, "acme");
    let sealed = s
        .state
        .keys
        .seal(
            &t.id,
            latchkey_services::webhook::secret_aad(&t.id),
            secret.as_bytes(),
        )
        .unwrap();
    update_policy(s, |p| {
        p.risk.webhook_url = Some(format!("http://127.0.0.1:{port}/hooks/latchkey"));
        p.risk.webhook_secret_sealed = Some(sealed);
    });
    assert_eq!(
        sign_in_from(s, &mut Browser::default(), DENIED, "alice", PASSWORD)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    // The receiver is down: the first attempt (woken at once, or this pass) fails and waits for
    // its back-off. The server's own outbox task may hold the lease, so wait until the failure is
    // recorded before the receiver comes up (otherwise that attempt could reach it).
    assert_eq!(latchkey_server::deliver_due(&s.state).await.unwrap(), 0);
    assert_eq!(
        x.db.first_failures_recorded("webhook").await,
        1,
        "the first attempt failed and was recorded"
    );
    let queued =
        latchkey_store::MailOutbox::due_mail(&s.state.db, &[latchkey_store::Channel::Webhook], 10).unwrap();
    assert!(queued.is_empty(), "not due again before the back-off: {queued:?}");
    // Up again, 31 s later: delivered, signed. (The server's own outbox task may be the one that
    // delivers it: it is woken when the call is queued.)
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let got = receiver(listener, 200);
    let mut delivered_at = None;
    for _ in 0..5 {
        x.clock.advance_millis(31_000);
        latchkey_server::deliver_due(&s.state).await.unwrap();
        // Give the receiver (or the server's own task) time before the clock moves again.
        for _ in 0..20 {
            if got.is_finished() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        if got.is_finished() {
            delivered_at = Some(latchkey_core::Clock::now_millis(x.clock));
            break;
        }
    }
    assert!(delivered_at.is_some(), "delivered after the receiver came back");
    let (head, body) = got.join().unwrap();
    assert!(head.starts_with("POST /hooks/latchkey "), "{head}");
    let header = |name: &str| {
        head.lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
            })
            .unwrap_or_default()
    };
    assert_eq!(header("x-latchkey-event"), "risk.deny");
    let sig = header("x-latchkey-signature");
    let ts: i64 = sig
        .strip_prefix("t=")
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(ts, delivered_at.unwrap() / 1000);
    assert_eq!(
        sig,
        latchkey_services::webhook::signature(secret.as_bytes(), ts, &body)
    );
    assert_ne!(
        sig,
        latchkey_services::webhook::signature(b"another secret", ts, &body)
    );
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (v["event"].as_str(), v["score"].as_u64()),
        (Some("risk.deny"), Some(100))
    );
    assert!(v["reasons"][0]["signal"] == "denylisted", "{v}");
    // Delivered once: nothing left.
    x.clock.advance_millis(3_600_000);
    assert_eq!(latchkey_server::deliver_due(&s.state).await.unwrap(), 0);
}

async fn retention_keeps_the_chain_verifiable_and_edits_are_detected(x: &Ctx<'_>) {
    let s = x.s;
    setup(s, "acme").await;
    let t = tenant(s, "acme");
    for _ in 0..3 {
        sign_in_from(s, &mut Browser::default(), PARIS, "alice", "wrong-password-1").await;
    }
    let old = s.state.db.audit_head(&t.id).unwrap().unwrap().0;
    // 400 days later: more activity, then retention (365 days by default).
    x.clock.advance_millis(400 * 24 * HOUR);
    assert_eq!(
        sign_in_from(s, &mut Browser::default(), PARIS, "alice", PASSWORD)
            .await
            .0,
        StatusCode::SEE_OTHER
    );
    let before = latchkey_audit::verify(&s.state.db, &t.id).unwrap();
    assert!(
        matches!(before, latchkey_audit::Verdict::Intact { .. }),
        "{before:?}"
    );
    let deleted = latchkey_server::retention_pass(&s.state);
    assert_eq!(
        deleted,
        u64::try_from(old).unwrap(),
        "every event older than a year"
    );
    let anchor = s.state.db.audit_anchor(&t.id).unwrap();
    assert_eq!(anchor.seq, old);
    let after = latchkey_audit::verify(&s.state.db, &t.id).unwrap();
    let latchkey_audit::Verdict::Intact { events, .. } = after else {
        panic!("{after:?}")
    };
    let events_left = s.state.db.audit_events(&t.id, 0, 10_000).unwrap();
    assert_eq!(u64::try_from(events_left.len()).unwrap(), events);
    let last = events_left.last().unwrap();
    assert_eq!(last.action, "audit.retention", "the deletion is itself audited");
    assert_eq!(last.details["deleted"], old);
    // The risk history of a user unseen for longer than its retention goes too.
    let alice = s.state.db.user_by_username(&t.id, "alice").unwrap().unwrap();
    assert!(
        latchkey_store::RiskRepo::risk_history(&s.state.db, &t.id, &alice.id)
            .unwrap()
            .is_some()
    );
    x.clock.advance_millis(366 * 24 * HOUR);
    latchkey_server::retention_pass(&s.state);
    assert!(
        latchkey_store::RiskRepo::risk_history(&s.state.db, &t.id, &alice.id)
            .unwrap()
            .is_none()
    );
    assert!(matches!(
        latchkey_audit::verify(&s.state.db, &t.id).unwrap(),
        latchkey_audit::Verdict::Intact { .. }
    ));
    // An edited row is caught; so is moving the anchor past deleted rows without the chain.
    let edit_seq = s.state.db.audit_events(&t.id, 0, 1).unwrap()[0].seq + 1;
    x.db.raw_sql(&format!(
        "UPDATE audit_events SET details = '{{\"reason\":\"nothing happened\"}}' WHERE seq = {edit_seq}"
    ));
    let broken = latchkey_audit::verify(&s.state.db, &t.id).unwrap();
    assert!(
        matches!(broken, latchkey_audit::Verdict::Broken { seq, .. } if seq == edit_seq),
        "{broken:?}"
    );
}

async fn the_risk_history_is_sealed_at_rest(x: &Ctx<'_>) {
    let s = x.s;
    setup(s, "acme").await;
    assert_eq!(
        sign_in_from(s, &mut Browser::default(), PARIS, "alice", PASSWORD)
            .await
            .0,
        StatusCode::SEE_OTHER
    );
    let t = tenant(s, "acme");
    let alice = s.state.db.user_by_username(&t.id, "alice").unwrap().unwrap();
    let opened = latchkey_store::RiskRepo::risk_history(&s.state.db, &t.id, &alice.id)
        .unwrap()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&opened).contains("198.51.100"),
        "the store opens what it sealed"
    );
    let dump = String::from_utf8_lossy(&x.db.dump()).to_string();
    assert!(!dump.contains("198.51.100.0/24"), "nor anywhere in the database");
    // Sealed to its person: alice's sealed history copied to another user's row does not open.
    let bob = s
        .state
        .db
        .create_user(
            &t.id,
            "test",
            &latchkey_store::NewUser {
                username: "bob".into(),
                ..latchkey_store::NewUser::default()
            },
        )
        .unwrap();
    let copied = x.db.raw_sql(&format!(
        "INSERT INTO risk_history (tenant_id, user_id, history_sealed, updated_at) \
         SELECT tenant_id, '{}', history_sealed, updated_at FROM risk_history WHERE user_id = '{}'",
        bob.id, alice.id
    ));
    assert_eq!(copied, 1);
    let moved = latchkey_store::RiskRepo::risk_history(&s.state.db, &t.id, &bob.id);
    assert!(
        matches!(moved, Err(latchkey_store::StoreError::Sealed(_))),
        "a history moved to another user does not open: {moved:?}"
    );
}

async fn admins_search_and_export_the_audit_log(x: &Ctx<'_>) {
    let s = x.s;
    setup(s, "acme").await;
    sign_in_from(s, &mut Browser::default(), PARIS, "alice", "wrong-password-1").await;
    sign_in_from(s, &mut Browser::default(), PARIS, "alice", PASSWORD).await;
    let t = tenant(s, "acme");
    let token = latchkey_tests::admin::with_role(s, &t.id, "auditor");
    let token = token.as_str();
    let c = TestServer::client();
    let get = |q: &str| {
        c.get(s.url(&format!("/admin/t/acme/audit{q}")))
            .bearer_auth(token)
            .send()
    };
    let res = get("?action=login.*").await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let v: serde_json::Value = res.json().await.unwrap();
    let actions: Vec<&str> = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["login.failure", "login.success"]);
    let res = get("?action=login.success&format=csv").await.unwrap();
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = res.text().await.unwrap();
    assert!(csv.starts_with("tenant_id,seq,at,actor,action"), "{csv}");
    assert_eq!(csv.lines().count(), 2, "{csv}");
    // Paging.
    let v: serde_json::Value = get("?limit=1").await.unwrap().json().await.unwrap();
    let next = v["next_after"].as_i64().unwrap();
    let v2: serde_json::Value = get(&format!("?limit=1&after={next}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v2["events"][0]["seq"].as_i64().unwrap(), next + 1);
    // Bad input is a clear error; no token, no audit.
    assert_eq!(
        get("?format=xml").await.unwrap().status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        get("?since=yesterday").await.unwrap().status(),
        StatusCode::BAD_REQUEST
    );
    let anon = c.get(s.url("/admin/t/acme/audit")).send().await.unwrap();
    assert_eq!(anon.status(), StatusCode::UNAUTHORIZED);
    // Reading the audit log is itself audited.
    let reads = s
        .state
        .db
        .audit_events(&t.id, 0, 10_000)
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "audit.read")
        .count();
    assert!(reads >= 4, "{reads}");
}

/// Issue 19 item 2: sixteen sign-ins of one account at once (two tabs, a reconnecting app, a
/// shared account) all succeed, and every session they started is valid. The first sign-ins
/// each saved the user's new risk history: an update-then-insert raced into a unique violation
/// and answered 409.
async fn sixteen_sign_ins_of_one_user_at_once_all_succeed(x: &Ctx<'_>) {
    let s = x.s;
    setup(s, "acme").await;
    let runs: Vec<_> = (0..16)
        .map(|_| async {
            let mut b = Browser::default();
            let (st, to, page) = sign_in_from(s, &mut b, PARIS, "alice", PASSWORD).await;
            (st, to, page, b)
        })
        .collect();
    let done = futures_util::future::join_all(runs).await;
    for (st, to, page, mut b) in done {
        assert_eq!(st, StatusCode::SEE_OTHER, "{page}");
        assert_eq!(to, "/t/acme/account");
        let (st, _, _) = b.get(s, "/t/acme/account").await;
        assert_eq!(st, StatusCode::OK, "the session works");
    }
    let t = tenant(s, "acme");
    let alice = s.state.db.user_by_username(&t.id, "alice").unwrap().unwrap();
    assert!(
        latchkey_store::RiskRepo::risk_history(&s.state.db, &t.id, &alice.id)
            .unwrap()
            .is_some()
    );
}

macro_rules! clocked {
    ($($name:ident),* $(,)?) => {
        mod sqlite_memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let dir = tempfile::tempdir().unwrap();
                    let (geo, deny) = super::geo_files(dir.path());
                    let clock = std::sync::Arc::new(latchkey_core::FixedClock::new(super::START));
                    let settings = [
                        ("LATCHKEY_TRUSTED_PROXIES", "127.0.0.1/32"),
                        ("LATCHKEY_GEOIP_DB", geo.to_str().unwrap()),
                        ("LATCHKEY_RISK_DENYLIST", deny.to_str().unwrap()),
                        // The outbox runs when woken; the test drives retries itself.
                        ("LATCHKEY_MAIL_POLL_SECS", "3600"),
                        // The webhook receiver listens on loopback.
                        ("LATCHKEY_OUTBOUND_ALLOW_PRIVATE", "127.0.0.1"),
                    ];
                    let (s, db) = latchkey_tests::TestServer::start_on_clocked(latchkey_tests::Backend::SqliteMemory, &settings, clock.clone()).expect("server starts");
                    super::$name(&super::Ctx { s: &s, clock: &clock, db: &db }).await;
                }
            )*
        }
        mod postgres_redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let dir = tempfile::tempdir().unwrap();
                    let (geo, deny) = super::geo_files(dir.path());
                    let clock = std::sync::Arc::new(latchkey_core::FixedClock::new(super::START));
                    let settings = [
                        ("LATCHKEY_TRUSTED_PROXIES", "127.0.0.1/32"),
                        ("LATCHKEY_GEOIP_DB", geo.to_str().unwrap()),
                        ("LATCHKEY_RISK_DENYLIST", deny.to_str().unwrap()),
                        // The outbox runs when woken; the test drives retries itself.
                        ("LATCHKEY_MAIL_POLL_SECS", "3600"),
                        // The webhook receiver listens on loopback.
                        ("LATCHKEY_OUTBOUND_ALLOW_PRIVATE", "127.0.0.1"),
                    ];
                    let Some((s, db)) = latchkey_tests::TestServer::start_on_clocked(latchkey_tests::Backend::PostgresRedis, &settings, clock.clone()) else { return };
                    super::$name(&super::Ctx { s: &s, clock: &clock, db: &db }).await;
                }
            )*
        }
    };
}

clocked!(
    a_new_device_and_network_steps_up_or_looks_like_a_wrong_password,
    impossible_travel_and_the_deny_list_are_refused,
    users_can_be_told_about_a_new_device,
    credential_stuffing_from_one_network_is_refused,
    the_stuffing_window_closes,
    the_webhook_is_signed_and_retried_after_the_receiver_was_down,
    retention_keeps_the_chain_verifiable_and_edits_are_detected,
    the_risk_history_is_sealed_at_rest,
    sixteen_sign_ins_of_one_user_at_once_all_succeed,
    admins_search_and_export_the_audit_log,
);

#[test]
fn a_broken_geoip_database_or_deny_list_stops_start_up_with_its_setting_named() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.mmdb");
    std::fs::write(&junk, b"not a maxmind database").unwrap();
    let db = TestDb::sqlite();
    let err = TestServer::start_with(&[
        ("LATCHKEY_DATABASE_URL", db.url.as_str()),
        ("LATCHKEY_GEOIP_DB", junk.to_str().unwrap()),
    ])
    .err()
    .unwrap();
    assert!(err.contains("LATCHKEY_GEOIP_DB"), "{err}");
    let deny = dir.path().join("deny.txt");
    std::fs::write(&deny, "10.0.0.0/8\n10.0.0.0/33\n").unwrap();
    let err = TestServer::start_with(&[
        ("LATCHKEY_DATABASE_URL", db.url.as_str()),
        ("LATCHKEY_RISK_DENYLIST", deny.to_str().unwrap()),
    ])
    .err()
    .unwrap();
    assert!(
        err.contains("LATCHKEY_RISK_DENYLIST") && err.contains("line 2"),
        "{err}"
    );
}
