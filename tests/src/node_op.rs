//! node-oidc-provider (the benchmark's peer, `bench/peer/server.mjs`) as an upstream provider
//! for the federation suite: one confidential web client (code + PKCE, ES256 ID tokens, RFC 9207
//! `iss`) whose redirect URI the test chooses, and one user. Killed when dropped.

#![allow(clippy::unwrap_used, clippy::missing_panics_doc)] // test kit: a failed unwrap is a failed test

use crate::Site;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const CLIENT_ID: &str = "latchkey-federation";
pub const CLIENT_SECRET: &str = "node-web-secret-0123456789abcdef";
pub const USERNAME: &str = "nora";
pub const PASSWORD: &str = "lantern-quarry-57";
pub const EMAIL: &str = "nora@node.test";

pub struct NodeOp {
    pub issuer: String,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for NodeOp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Site for NodeOp {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }
}

fn peer_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../bench/peer")
}

impl NodeOp {
    /// Starts the provider with its web client redirecting to `redirect_uri`; `None` when its
    /// packages are not installed (`npm ci` in bench/peer; `scripts/test.sh` does it), which CI
    /// treats as a failure.
    pub async fn start(redirect_uri: &str) -> Option<Self> {
        let dir = peer_dir();
        if !dir.join("node_modules/oidc-provider").exists() {
            assert!(
                std::env::var_os("CI").is_none(),
                "bench/peer has no node_modules in CI"
            );
            eprintln!("SKIPPED: node-oidc-provider is not installed (cd bench/peer && npm ci)");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let tmp = tempfile::tempdir().unwrap();
        let config = tmp.path().join("peer.json");
        let unused = serde_json::json!({"id": "unused-cc", "secret": "unused-secret-0123456789"});
        std::fs::write(
            &config,
            serde_json::json!({
                "clients": {
                    "jwt": unused, "opaque": {"id": "unused-opaque", "secret": "unused-secret-0123456789"},
                    "web": {"id": CLIENT_ID, "secret": CLIENT_SECRET, "redirect_uri": redirect_uri},
                },
                "user": {"username": USERNAME, "password": PASSWORD, "email": EMAIL},
            })
            .to_string(),
        )
        .unwrap();
        let child = Command::new("node")
            .arg(dir.join("server.mjs"))
            .env("NODE_ENV", "production")
            .env("PEER_PORT", port.to_string())
            .env("PEER_CONFIG", &config)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let op = NodeOp {
            issuer: format!("http://127.0.0.1:{port}"),
            child,
            _dir: tmp,
        };
        for _ in 0..200 {
            if let Ok(r) = crate::TestServer::client().get(op.url("/healthz")).send().await
                && r.status().is_success()
            {
                return Some(op);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("node-oidc-provider did not start on {}", op.issuer);
    }
}
