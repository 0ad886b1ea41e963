//! Domain verification (issue 22, SAML onboarding) end to end on both backends: a tenant claims
//! a domain and proves it by a DNS TXT record (a small UDP DNS responder written here, named by
//! `LATCHKEY_DNS_RESOLVER`) or an HTTP file (a small HTTP server on loopback, reached through
//! `LATCHKEY_DOMAIN_CHECK_HTTP_ADDR` and the outbound guard). Wrong or missing values fail with
//! their reason; a domain verified by one tenant can't be verified by another; the HTTP check to
//! a private address is refused without `LATCHKEY_OUTBOUND_ALLOW_PRIVATE`.

#![allow(clippy::unwrap_used, clippy::too_many_lines, clippy::many_single_char_names)] // test code; s, c, v, g, h: server and answers

use latchkey_core::Permission;
use latchkey_store::TenantRepo;
use latchkey_tests::admin::{call, token};
use latchkey_tests::browser::setup;
use latchkey_tests::{Backend, TestServer};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::sync::{Arc, Mutex};

/// TXT values by (lowercase) name.
type Records = Arc<Mutex<HashMap<String, String>>>;

/// A DNS server on loopback answering TXT queries from `records` (NXDOMAIN otherwise).
fn dns_responder() -> (String, Records) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap().to_string();
    let records: Records = Arc::default();
    let r = records.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        while let Ok((n, from)) = socket.recv_from(&mut buf) {
            if let Some(answer) = answer(&buf[..n], &r.lock().unwrap()) {
                let _ = socket.send_to(&answer, from);
            }
        }
    });
    (addr, records)
}

/// The response to one query (RFC 1035 §4.1): the question echoed, one TXT answer if known.
fn answer(q: &[u8], records: &HashMap<String, String>) -> Option<Vec<u8>> {
    let mut i = 12;
    let mut labels = Vec::new();
    while *q.get(i)? != 0 {
        let len = usize::from(q[i]);
        labels.push(String::from_utf8_lossy(q.get(i + 1..i + 1 + len)?).to_lowercase());
        i += 1 + len;
    }
    let question_end = i + 5;
    let name = labels.join(".");
    let qtype = u16::from_be_bytes([q[i + 1], q[i + 2]]);
    let found = records.get(&name).filter(|_| qtype == 16);
    let mut out = Vec::new();
    out.extend_from_slice(&q[..2]);
    out.extend_from_slice(if found.is_some() {
        &[0x81, 0x80]
    } else {
        &[0x81, 0x83]
    });
    out.extend_from_slice(&[0, 1, 0, u8::from(found.is_some()), 0, 0, 0, 0]);
    out.extend_from_slice(&q[12..question_end]);
    if let Some(text) = found {
        let bytes = text.as_bytes();
        out.extend_from_slice(&[0xC0, 0x0C, 0, 16, 0, 1, 0, 0, 0, 0]);
        out.extend_from_slice(&u16::try_from(bytes.len() + 1).unwrap().to_be_bytes());
        out.push(u8::try_from(bytes.len()).unwrap());
        out.extend_from_slice(bytes);
    }
    Some(out)
}

/// What the HTTP server answers: status and body.
type Page = Arc<Mutex<(u16, String)>>;

/// A minimal HTTP/1.1 server on loopback answering every request with `page`.
fn http_server() -> (String, Page) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let page: Page = Arc::new(Mutex::new((404, String::new())));
    let p = page.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let (status, body) = p.lock().unwrap().clone();
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (addr, page)
}

async fn post(s: &TestServer, slug: &str, path: &str, tok: &str, body: Option<Value>) -> (StatusCode, Value) {
    let b = body.map(|b| b.to_string());
    call(s, "POST", &format!("/admin/t/{slug}{path}"), tok, b.as_deref()).await
}

fn admin(s: &TestServer, slug: &str) -> String {
    let t = s.state.db.tenant_by_slug(slug).unwrap().unwrap();
    token(s, &t.id, &[Permission::SamlRead, Permission::SamlWrite])
}

async fn domains_are_verified_by_dns_and_http(backend: Backend) {
    let (dns, records) = dns_responder();
    let (web, page) = http_server();
    let settings = [
        ("LATCHKEY_DNS_RESOLVER", dns.as_str()),
        ("LATCHKEY_DOMAIN_CHECK_HTTP_ADDR", web.as_str()),
        ("LATCHKEY_OUTBOUND_ALLOW_PRIVATE", "127.0.0.1"),
    ];
    let Some((s, _db)) = TestServer::start_on(backend, &settings) else {
        return;
    };
    setup(&s, "acme").await;
    setup(&s, "globex").await;
    let (acme, globex) = (admin(&s, "acme"), admin(&s, "globex"));

    // DNS: the challenge, then no record, a wrong value, the right one.
    let (st, c) = post(
        &s,
        "acme",
        "/domains",
        &acme,
        Some(json!({"domain": "Corp.Example.", "method": "dns"})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{c}");
    assert_eq!(c["domain"], "corp.example");
    assert_eq!(c["dns_name"], "_latchkey-challenge.corp.example");
    let challenge = c["token"].as_str().unwrap().to_owned();
    assert_eq!(c["dns_value"], format!("latchkey-verification={challenge}"));
    assert_eq!(
        c["http_url"],
        "https://corp.example/.well-known/latchkey-verification.txt"
    );
    assert_eq!(c["http_body"], challenge.as_str());
    assert!(c["verified_at"].is_null());
    let verify = "/domains/corp.example/verify";
    let (st, v) = post(&s, "acme", verify, &acme, None).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["verified"], false);
    assert_eq!(v["reason"], "no_record", "{v}");
    let name = "_latchkey-challenge.corp.example".to_owned();
    records
        .lock()
        .unwrap()
        .insert(name.clone(), "latchkey-verification=wrong".into());
    let (_, v) = post(&s, "acme", verify, &acme, None).await;
    assert_eq!(v["reason"], "wrong_value", "{v}");
    assert!(v["last_error"].as_str().unwrap().starts_with("wrong_value"));
    records
        .lock()
        .unwrap()
        .insert(name.clone(), format!("latchkey-verification={challenge}"));
    let (st, v) = post(&s, "acme", verify, &acme, None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["verified"], true, "{v}");
    assert!(v["verified_at"].as_i64().is_some());

    // Another tenant may claim it, but can't verify it, even with its own record published.
    let (st, g) = post(
        &s,
        "globex",
        "/domains",
        &globex,
        Some(json!({"domain": "corp.example", "method": "dns"})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{g}");
    let theirs = g["token"].as_str().unwrap().to_owned();
    records
        .lock()
        .unwrap()
        .insert(name, format!("latchkey-verification={theirs}"));
    let (st, v) = post(&s, "globex", verify, &globex, None).await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    assert!(v["detail"].as_str().unwrap().contains("another tenant"), "{v}");
    // A tenant claims a domain once.
    let (st, _) = post(
        &s,
        "acme",
        "/domains",
        &acme,
        Some(json!({"domain": "corp.example", "method": "http"})),
    )
    .await;
    assert_eq!(st, StatusCode::CONFLICT);

    // HTTP: a status, a wrong body, the token.
    let (st, h) = post(
        &s,
        "acme",
        "/domains",
        &acme,
        Some(json!({"domain": "web.example", "method": "http"})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{h}");
    let web_token = h["token"].as_str().unwrap().to_owned();
    let verify_web = "/domains/web.example/verify";
    let (_, v) = post(&s, "acme", verify_web, &acme, None).await;
    assert_eq!(v["reason"], "http_status", "{v}");
    assert!(v["detail"].as_str().unwrap().contains("404"), "{v}");
    *page.lock().unwrap() = (200, "not the token".into());
    let (_, v) = post(&s, "acme", verify_web, &acme, None).await;
    assert_eq!(v["reason"], "wrong_value", "{v}");
    *page.lock().unwrap() = (200, format!("{web_token}\n"));
    let (_, v) = post(&s, "acme", verify_web, &acme, None).await;
    assert_eq!(v["verified"], true, "{v}");

    let (st, list) = call(&s, "GET", "/admin/t/acme/domains", &acme, None).await;
    assert_eq!(st, StatusCode::OK);
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["domain"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["corp.example", "web.example"]);

    // Bad input is 4xx; another tenant's claim is not found here; removal works once.
    for bad in [
        json!({"domain": "not a domain", "method": "dns"}),
        json!({"domain": "a.example", "method": "ftp"}),
        json!({"domain": "127.0.0.1", "method": "dns"}),
    ] {
        let (st, _) = post(&s, "acme", "/domains", &acme, Some(bad.clone())).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{bad}");
    }
    let (st, _) = post(&s, "globex", verify_web, &globex, None).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _) = call(&s, "DELETE", "/admin/t/acme/domains/web.example", &acme, None).await;
    assert_eq!(st, StatusCode::OK);
    let (st, _) = call(&s, "DELETE", "/admin/t/acme/domains/web.example", &acme, None).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let reader = {
        let t = s.state.db.tenant_by_slug("acme").unwrap().unwrap();
        token(&s, &t.id, &[Permission::SamlRead])
    };
    let (st, _) = post(&s, "acme", verify, &reader, None).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
}

/// Without the operator's allowance the HTTP check never connects to a loopback address.
async fn the_http_check_to_a_private_address_is_refused(backend: Backend) {
    let (web, page) = http_server();
    let settings = [("LATCHKEY_DOMAIN_CHECK_HTTP_ADDR", web.as_str())];
    let Some((s, _db)) = TestServer::start_on(backend, &settings) else {
        return;
    };
    setup(&s, "acme").await;
    let acme = admin(&s, "acme");
    let (st, h) = post(
        &s,
        "acme",
        "/domains",
        &acme,
        Some(json!({"domain": "web.example", "method": "http"})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{h}");
    *page.lock().unwrap() = (200, h["token"].as_str().unwrap().to_owned());
    let (st, v) = post(&s, "acme", "/domains/web.example/verify", &acme, None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["verified"], false);
    assert_eq!(v["reason"], "address_refused", "{v}");
    assert!(v["detail"].as_str().unwrap().contains("loopback"), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_memory_domains_are_verified_by_dns_and_http() {
    domains_are_verified_by_dns_and_http(Backend::SqliteMemory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_redis_domains_are_verified_by_dns_and_http() {
    domains_are_verified_by_dns_and_http(Backend::PostgresRedis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_memory_the_http_check_to_a_private_address_is_refused() {
    the_http_check_to_a_private_address_is_refused(Backend::SqliteMemory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_redis_the_http_check_to_a_private_address_is_refused() {
    the_http_check_to_a_private_address_is_refused(Backend::PostgresRedis).await;
}
