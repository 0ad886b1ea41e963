//! End to end over HTTP: health, readiness (including outages), metrics, security headers,
//! tenant routing, discovery, request limits. Runs on SQLite + memory and PostgreSQL + Redis.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use latchkey_core::TenantPolicy;
use latchkey_store::{NewTenant, TenantRepo};
use latchkey_tests::{Proxy, TestDb, TestServer};
use reqwest::StatusCode;
use std::time::Duration;

fn make_tenant(s: &TestServer, slug: &str) {
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
        .unwrap();
}

fn assert_security_headers(res: &reqwest::Response) {
    let h = res.headers();
    let url = res.url().clone();
    assert_eq!(h["x-content-type-options"], "nosniff", "{url}");
    assert_eq!(h["x-frame-options"], "DENY", "{url}");
    assert_eq!(h["referrer-policy"], "no-referrer", "{url}");
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{url}: {csp}");
    assert!(!csp.contains("unsafe-inline"), "{url}: {csp}");
    assert!(csp.contains("script-src 'self'"), "{url}: {csp}");
    assert!(h.get("x-request-id").is_some(), "{url}");
    assert!(
        h.get("strict-transport-security").is_none(),
        "no HSTS over plain http: {url}"
    );
}

async fn health_readiness_and_metrics_answer(s: &TestServer) {
    let c = TestServer::client();
    let res = c.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<serde_json::Value>().await.unwrap()["status"], "ok");
    let res = c.get(s.url("/readyz")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["checks"]["database"], "ok");
    assert_eq!(body["checks"]["session_store"], "ok");
    let res = c.get(s.url("/metrics")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = res.text().await.unwrap();
    assert!(text.contains("# TYPE latchkey_http_requests_total counter"));
    assert!(
        text.contains(r#"latchkey_http_requests_total{route="/healthz",method="GET",status="200"} 1"#),
        "{text}"
    );
    assert!(text.contains("latchkey_http_request_duration_seconds_bucket{route=\"/readyz\",le=\"+Inf\"} 1"));
    assert!(text.contains("latchkey_db_pool_max_connections"));
    assert!(text.contains("latchkey_build_info{version=\""));
}

async fn every_response_carries_the_security_headers(s: &TestServer) {
    make_tenant(s, "acme");
    let c = TestServer::client();
    for path in [
        "/",
        "/healthz",
        "/readyz",
        "/metrics",
        "/assets/latchkey.css",
        "/t/acme/.well-known/openid-configuration",
        "/t/unknown/.well-known/openid-configuration",
        "/t/acme/nothing-here",
        "/no/such/path",
    ] {
        let res = c.get(s.url(path)).send().await.unwrap();
        assert_security_headers(&res);
    }
    let res = c
        .post(s.url("/healthz"))
        .body(vec![b'x'; 200_000])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_security_headers(&res);
}

async fn discovery_names_the_exact_issuer(s: &TestServer) {
    make_tenant(s, "acme");
    make_tenant(s, "beta");
    let c = TestServer::client();
    for slug in ["acme", "beta"] {
        let res = c
            .get(s.url(&format!("/t/{slug}/.well-known/openid-configuration")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let doc: serde_json::Value = res.json().await.unwrap();
        assert_eq!(doc["issuer"], s.issuer(slug));
    }
}

async fn unknown_tenant_is_a_404_page_or_json(s: &TestServer) {
    make_tenant(s, "acme");
    let c = TestServer::client();
    let res = c
        .get(s.url("/t/nobody/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"], "not_found");
    let res = c
        .get(s.url("/t/nobody/login"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = res.text().await.unwrap();
    assert!(page.contains("no tenant called"), "{page}");
    // Hostile slugs are just unknown tenants: escaped on the page, never a 500.
    for slug in [
        "%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        "..%2F..%2Fetc",
        "A",
        "acme%00",
        "%FF%FE",
    ] {
        let res = c
            .get(s.url(&format!("/t/{slug}/.well-known/openid-configuration")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{slug}");
        assert!(
            res.json::<serde_json::Value>().await.unwrap()["error"] == "not_found",
            "{slug}"
        );
        let res = c
            .get(s.url(&format!("/t/{slug}/login")))
            .header("accept", "text/html")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{slug}");
        assert!(!res.text().await.unwrap().contains("<script>"), "{slug}");
    }
}

async fn oversized_requests_get_clear_4xx(s: &TestServer) {
    let c = TestServer::client();
    let res = c
        .post(s.url("/t/acme/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(vec![b'a'; 70 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(res.text().await.unwrap().contains("larger than 65536 bytes"));

    let res = c
        .get(s.url("/healthz"))
        .header("x-filler", "v".repeat(9 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("Request headers exceed the limit")
    );

    let mut req = c.get(s.url("/healthz"));
    for i in 0..70 {
        req = req.header(format!("x-h{i}"), "1");
    }
    assert_eq!(
        req.send().await.unwrap().status(),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    );

    let res = c
        .get(s.url(&format!("/t/acme/{}", "a".repeat(9000))))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::URI_TOO_LONG);
}

async fn request_ids_are_echoed_when_sane_and_replaced_otherwise(s: &TestServer) {
    let c = TestServer::client();
    let res = c
        .get(s.url("/healthz"))
        .header("x-request-id", "trace-42.a_b")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "trace-42.a_b");
    let res = c
        .get(s.url("/healthz"))
        .header("x-request-id", "bad id with spaces")
        .send()
        .await
        .unwrap();
    let id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_ne!(id, "bad id with spaces");
    assert_eq!(id.len(), 16);
}

async fn metrics_are_refused_to_remote_clients_without_the_token(s: &TestServer) {
    // The test client is on loopback; a trusted proxy would forward a remote address.
    let c = TestServer::client();
    let res = c
        .get(s.url("/metrics"))
        .header("x-forwarded-for", "203.0.113.9")
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "X-Forwarded-For from an untrusted peer is ignored"
    );
}

latchkey_tests::e2e!(
    health_readiness_and_metrics_answer,
    every_response_carries_the_security_headers,
    discovery_names_the_exact_issuer,
    unknown_tenant_is_a_404_page_or_json,
    oversized_requests_get_clear_4xx,
    request_ids_are_echoed_when_sane_and_replaced_otherwise,
    metrics_are_refused_to_remote_clients_without_the_token,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_need_the_token_behind_a_trusted_proxy() {
    let db = TestDb::sqlite();
    let token = "a-long-metrics-token-1234";
    let s = TestServer::start_with(&[
        ("LATCHKEY_DATABASE_URL", &db.url),
        ("LATCHKEY_TRUSTED_PROXIES", "127.0.0.0/8"),
        ("LATCHKEY_METRICS_TOKEN", token),
    ])
    .unwrap();
    let c = TestServer::client();
    let remote = || c.get(s.url("/metrics")).header("x-forwarded-for", "203.0.113.9");
    assert_eq!(remote().send().await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(
        remote()
            .bearer_auth("wrong-token-wrong-token")
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        remote().bearer_auth(token).send().await.unwrap().status(),
        StatusCode::OK
    );
    // A trusted proxy saying the client used https turns HSTS on.
    let res = c
        .get(s.url("/healthz"))
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.headers()["strict-transport-security"],
        "max-age=63072000; includeSubDomains"
    );
}

/// Polls `/readyz` until it answers `want` (or gives up after `within`); returns the last body.
async fn ready_becomes(s: &TestServer, want: StatusCode, within: Duration) -> serde_json::Value {
    let c = TestServer::client();
    let deadline = std::time::Instant::now() + within;
    loop {
        let res = c.get(s.url("/readyz")).send().await.unwrap();
        let status = res.status();
        let retry_after = res.headers().get("retry-after").cloned();
        let body: serde_json::Value = res.json().await.unwrap();
        if status == want {
            if want == StatusCode::SERVICE_UNAVAILABLE {
                assert_eq!(retry_after.unwrap(), "1");
            }
            return body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "readyz stayed {status}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_reports_a_postgres_outage_and_recovers_without_restart() {
    let Some(db) = TestDb::postgres() else { return };
    let proxy = Proxy::start("127.0.0.1:5432".parse().unwrap());
    let via_proxy = db.url.replace("127.0.0.1:5432", &proxy.addr.to_string());
    assert_ne!(via_proxy, db.url);
    let s = TestServer::start_with(&[("LATCHKEY_DATABASE_URL", &via_proxy)]).unwrap();
    make_tenant(&s, "acme");
    ready_becomes(&s, StatusCode::OK, Duration::from_secs(5)).await;

    proxy.cut();
    let mut body = ready_becomes(&s, StatusCode::SERVICE_UNAVAILABLE, Duration::from_secs(10)).await;
    // The first check may only find its pooled connection broken; the next connect is refused
    // and opens the breaker: down and known to be down, requests are answered at once.
    for _ in 0..20 {
        if body["checks"]["database"] == "circuit_open" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        body = ready_becomes(&s, StatusCode::SERVICE_UNAVAILABLE, Duration::from_secs(1)).await;
    }
    assert_eq!(body["checks"]["database"], "circuit_open");
    assert_eq!(body["checks"]["session_store"], "ok");
    assert!(
        s.metrics()
            .await
            .contains("latchkey_dependency_up{dependency=\"database\"} 0")
    );
    // Requests that need the database get 503 with Retry-After, never a 500.
    let res = TestServer::client()
        .get(s.url("/t/acme/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(res.headers()["retry-after"], "1");
    assert_eq!(
        TestServer::client()
            .get(s.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );

    proxy.restore();
    ready_becomes(&s, StatusCode::OK, Duration::from_secs(15)).await;
    let res = TestServer::client()
        .get(s.url("/t/acme/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_reports_a_redis_outage_and_recovers_without_restart() {
    if latchkey_tests::redis_store().await.is_none() {
        return;
    }
    let target: std::net::SocketAddr = latchkey_tests::redis_url()
        .trim_start_matches("redis://")
        .parse()
        .unwrap();
    let proxy = Proxy::start(target);
    let db = TestDb::sqlite();
    let redis_via_proxy = format!("redis://{}", proxy.addr);
    let s = TestServer::start_with(&[
        ("LATCHKEY_DATABASE_URL", &db.url),
        ("LATCHKEY_SESSION_STORE", &redis_via_proxy),
    ])
    .unwrap();
    ready_becomes(&s, StatusCode::OK, Duration::from_secs(5)).await;
    proxy.cut();
    let mut body = ready_becomes(&s, StatusCode::SERVICE_UNAVAILABLE, Duration::from_secs(10)).await;
    for _ in 0..20 {
        if body["checks"]["session_store"] == "circuit_open" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        body = ready_becomes(&s, StatusCode::SERVICE_UNAVAILABLE, Duration::from_secs(1)).await;
    }
    assert_eq!(body["checks"]["session_store"], "circuit_open");
    assert_eq!(body["checks"]["database"], "ok");
    assert!(
        s.metrics()
            .await
            .contains("latchkey_dependency_up{dependency=\"session_store\"} 0")
    );
    proxy.restore();
    ready_becomes(&s, StatusCode::OK, Duration::from_secs(15)).await;
    let metrics = s.metrics().await;
    assert!(metrics.contains("latchkey_dependency_up{dependency=\"session_store\"} 1"));
    assert!(metrics.contains("latchkey_dependency_outages_total{dependency=\"session_store\"} 1"));
}

#[test]
fn startup_with_an_unreachable_dependency_fails_with_a_named_setting() {
    let err = TestServer::start_with(&[("LATCHKEY_DATABASE_URL", "postgres://root@127.0.0.1:1/latchkey")])
        .err()
        .unwrap();
    assert!(err.contains("LATCHKEY_DATABASE_URL"), "{err}");
    let db = TestDb::sqlite();
    let err = TestServer::start_with(&[
        ("LATCHKEY_DATABASE_URL", &db.url),
        ("LATCHKEY_SESSION_STORE", "redis://127.0.0.1:1"),
    ])
    .err()
    .unwrap();
    assert!(err.contains("LATCHKEY_SESSION_STORE"), "{err}");
}
