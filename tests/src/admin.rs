//! Admin-API credentials and calls for tests: a token with exactly the roles or permissions a
//! test names, and one call helper answering status and JSON.

use crate::TestServer;
use latchkey_core::{Permission, Permissions, TenantId, sha256_hex};
use latchkey_store::{AdminTokenRepo, CredentialKind, NewAdminToken, SystemTokenRepo};
use reqwest::StatusCode;
use serde_json::Value;

/// An `lka_` token of tenant `t` holding `roles` (built-in or custom names) and `permissions`.
pub fn credential(
    s: &TestServer,
    t: &TenantId,
    roles: &[&str],
    permissions: &[Permission],
    expires_at: Option<i64>,
) -> String {
    let token = format!("lka_{}", latchkey_core::random_token(&latchkey_core::OsRng, 32));
    let new = NewAdminToken {
        name: "ci".into(),
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        permissions: Permissions::of(permissions.iter().copied()),
        kind: CredentialKind::TokenHash(sha256_hex(token.as_bytes())),
        expires_at,
    };
    s.state
        .db
        .create_admin_token(t, "test", &new)
        .expect("admin credential");
    token
}

/// An `lks_` system token holding `roles` (`system-admin`) and `permissions` (`system:` ones).
pub fn system_token(s: &TestServer, roles: &[&str], permissions: &[Permission]) -> String {
    let token = format!("lks_{}", latchkey_core::random_token(&latchkey_core::OsRng, 32));
    let new = NewAdminToken {
        name: "ops".into(),
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        permissions: Permissions::of(permissions.iter().copied()),
        kind: CredentialKind::TokenHash(sha256_hex(token.as_bytes())),
        expires_at: None,
    };
    s.state
        .db
        .create_system_token("test", &new)
        .expect("system credential");
    token
}

/// A token with exactly `permissions`.
pub fn token(s: &TestServer, t: &TenantId, permissions: &[Permission]) -> String {
    credential(s, t, &[], permissions, None)
}

/// A token with the built-in role `role` (`tenant-admin`, `read-only`, …).
pub fn with_role(s: &TestServer, t: &TenantId, role: &str) -> String {
    credential(s, t, &[role], &[], None)
}

/// Any call with an optional JSON body: its status and JSON answer (`Null` when not JSON).
pub async fn call(
    s: &TestServer,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&str>,
) -> (StatusCode, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut r = TestServer::client()
        .request(method, s.url(path))
        .bearer_auth(token);
    if let Some(b) = body {
        r = r.header("content-type", "application/json").body(b.to_owned());
    }
    let res = r.send().await.expect("admin call");
    let st = res.status();
    (st, res.json().await.unwrap_or(Value::Null))
}
