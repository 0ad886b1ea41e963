//! Native HTTPS: rustls serves TLS 1.3 and 1.2 only, and HSTS is sent over HTTPS.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use latchkey_tests::{TestDb, TestServer};
use std::process::Command;

/// A throwaway self-signed certificate for `localhost`, made with the openssl CLI.
fn self_signed(dir: &std::path::Path) -> (String, String) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "1",
        ])
        .args([
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    (cert.display().to_string(), key.display().to_string())
}

/// Latchkey on HTTPS (a throwaway certificate, a fresh SQLite database) with `extra` settings;
/// returns the server, its database and its port.
fn tls_server(extra: &[(&str, &str)]) -> (TestServer, TestDb, u16) {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(dir.path());
    let db = TestDb::sqlite();
    let mut settings = vec![
        ("LATCHKEY_DATABASE_URL", db.url.as_str()),
        ("LATCHKEY_TLS_CERT", cert.as_str()),
        ("LATCHKEY_TLS_KEY", key.as_str()),
    ];
    settings.extend_from_slice(extra);
    let s = TestServer::start_with(&settings).unwrap();
    let port: u16 = s.base_url.rsplit(':').next().unwrap().parse().unwrap();
    (s, db, port)
}

/// Tries a handshake with exactly one protocol version; returns whether it succeeded.
fn handshake(port: u16, version_flag: &str) -> bool {
    let out = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-servername",
            "localhost",
            version_flag,
        ])
        // Let the client offer old versions, so a refusal comes from the server.
        .args(["-cipher", "DEFAULT@SECLEVEL=0"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    out.status.success() && text.contains("Cipher is") && !text.contains("Cipher is (NONE)")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_serves_tls_12_and_13_only_with_hsts() {
    let (_server, _db, port) = tls_server(&[]);
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let res = client
        .get(format!("https://localhost:{port}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["strict-transport-security"],
        "max-age=63072000; includeSubDomains"
    );

    let port_copy = port;
    let (v13, v12, v11, v10) = tokio::task::spawn_blocking(move || {
        (
            handshake(port_copy, "-tls1_3"),
            handshake(port_copy, "-tls1_2"),
            handshake(port_copy, "-tls1_1"),
            handshake(port_copy, "-tls1"),
        )
    })
    .await
    .unwrap();
    assert!(v13, "TLS 1.3 must work");
    assert!(v12, "TLS 1.2 must work");
    assert!(!v11, "TLS 1.1 must be refused");
    assert!(!v10, "TLS 1.0 must be refused");
    // Plain HTTP on the TLS port gets nothing useful.
    let plain = reqwest::get(format!("http://127.0.0.1:{port}/healthz")).await;
    assert!(plain.is_err() || plain.unwrap().status() != 200);
}

#[test]
fn a_bad_certificate_is_a_clear_startup_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem").display().to_string();
    let db = TestDb::sqlite();
    let err = TestServer::start_with(&[
        ("LATCHKEY_DATABASE_URL", &db.url),
        ("LATCHKEY_TLS_CERT", &missing),
        ("LATCHKEY_TLS_KEY", &missing),
    ])
    .err()
    .unwrap();
    assert!(err.contains("LATCHKEY_TLS_CERT"), "{err}");
    let (cert, _) = self_signed(dir.path());
    let db = TestDb::sqlite();
    let err = TestServer::start_with(&[
        ("LATCHKEY_DATABASE_URL", &db.url),
        ("LATCHKEY_TLS_CERT", &cert),
        ("LATCHKEY_TLS_KEY", &cert),
    ])
    .err()
    .unwrap();
    assert!(err.contains("LATCHKEY_TLS_KEY"), "{err}");
}

/// On an https issuer the SAML correlation cookie is the one cookie that must survive the IdP's
/// cross-site POST: `__Host-`, Secure, HttpOnly, `SameSite=None`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saml_correlation_cookie_is_samesite_none_and_secure_on_https() {
    let (s, _db, port) = tls_server(&[("LATCHKEY_PUBLIC_URL", "https://sso.example.test")]);
    latchkey_tests::browser::setup(&s, "acme").await;
    let now = latchkey_core::Clock::now_millis(&*s.state.clock);
    let idp_cert = latchkey_saml::generate_sp_key("idp", now).unwrap().certificate;
    latchkey_tests::saml_idp::create_connection(
        &s,
        "acme",
        "corp",
        latchkey_core::IdpDescriptor {
            entity_id: "https://idp.example.test/metadata".into(),
            sso_url: "https://idp.example.test/sso".into(),
            sso_binding: latchkey_core::saml::BINDING_REDIRECT.into(),
            certificates: vec![idp_cert],
            wants_signed_requests: false,
            slo_url: None,
            slo_response_url: None,
        },
        latchkey_core::SamlOptions::default(),
        None,
    );
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = client
        .get(format!("https://localhost:{port}/t/acme/saml/corp/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert!(
        res.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("https://idp.example.test/sso?SAMLRequest=")
    );
    let cookie = res.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.starts_with("__Host-lk-saml-acme-"), "{cookie}");
    for attr in ["HttpOnly", "SameSite=None", "Secure", "Path=/"] {
        assert!(cookie.contains(attr), "{attr} missing: {cookie}");
    }
    assert!(!cookie.contains("Domain="), "{cookie}");
}
