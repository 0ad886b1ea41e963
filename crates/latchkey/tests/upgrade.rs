//! Rolling upgrade (issue 23 item 7): the previous release's binary (`PREVIOUS_LATCHKEY_BIN`,
//! built by `scripts/upgrade-test.sh` from the commit in `deploy/PREVIOUS_RELEASE`) and this
//! one against the same PostgreSQL database. The previous release sets up and serves; this
//! release migrates the database under it (expand: the old node goes on working); both serve
//! side by side, a refresh chain hopping between them; the old node stops cleanly and the new
//! one carries on.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use latchkey_tests::browser::PASSWORD;
use latchkey_tests::remote::{Portal, REGISTER_PORTAL, code_flow, introspect, redeem, serve, token};
use latchkey_tests::{Remote, free_port};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

struct Install {
    env: Vec<(String, String)>,
    dir: tempfile::TempDir,
    nodes: Vec<Child>,
}

impl Drop for Install {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            let _ = n.kill();
            let _ = n.wait();
        }
    }
}

impl Install {
    fn cli(&self, bin: &Path, args: &[&str], stdin: Option<&str>) -> String {
        let mut cmd = Command::new(bin);
        cmd.args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(self.dir.path());
        let out = latchkey_tests::run_with_stdin(cmd, stdin);
        assert!(out.status.success(), "{} {args:?}: {out:?}", bin.display());
        String::from_utf8(out.stdout).unwrap()
    }

    fn serve(&mut self, bin: &Path) -> Remote {
        let port = free_port();
        self.nodes.push(serve(bin, port, &self.env, self.dir.path()));
        Remote(format!("http://127.0.0.1:{port}"))
    }
}

async fn refreshed(node: &Remote, p: &Portal, rt: &str) -> String {
    let t = token(node, p, &[("grant_type", "refresh_token"), ("refresh_token", rt)])
        .await
        .unwrap_or_else(|e| panic!("refresh on {}: {e}", node.0));
    t["refresh_token"].as_str().unwrap().to_owned()
}

async fn signed_in(node: &Remote, p: &Portal) -> Value {
    let code = code_flow(node, p, "alice", "10.9.0.1").await.unwrap();
    redeem(node, p, &code).await.unwrap()
}

/// A fresh PostgreSQL database set up by the previous release: tenant acme, user alice, and
/// the portal client.
fn set_up(previous: &Path) -> Option<(Install, Portal)> {
    let (db_url, _, _) = latchkey_tests::create_pg_database()?;
    let master = latchkey_keys::MasterKey::generate().unwrap().to_base64();
    let install = Install {
        env: [
            ("LATCHKEY_DATABASE_URL", db_url.as_str()),
            ("LATCHKEY_SESSION_STORE", latchkey_tests::redis_url().as_str()),
            ("LATCHKEY_MASTER_KEY", master.as_str()),
            ("LATCHKEY_PUBLIC_URL", "http://localhost:9"),
            ("LATCHKEY_LOG", "warn"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect(),
        dir: tempfile::tempdir().unwrap(),
        nodes: Vec::new(),
    };

    // 1. The previous release sets the installation up (and, below, serves it).
    install.cli(previous, &["migrate"], None);
    install.cli(previous, &["tenant", "create", "acme"], None);
    install.cli(
        previous,
        &[
            "user",
            "create",
            "--tenant",
            "acme",
            "--username",
            "alice",
            "--password-stdin",
        ],
        Some(PASSWORD),
    );
    let portal = Portal::from_json(&install.cli(previous, REGISTER_PORTAL, None));
    Some((install, portal))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_previous_release_and_this_one_serve_one_database_side_by_side() {
    let Some(previous) = std::env::var_os("PREVIOUS_LATCHKEY_BIN").map(PathBuf::from) else {
        eprintln!("SKIPPED: PREVIOUS_LATCHKEY_BIN is not set (bash scripts/upgrade-test.sh sets it)");
        return;
    };
    let current = PathBuf::from(env!("CARGO_BIN_EXE_latchkey"));
    let Some((mut install, portal)) = set_up(&previous) else {
        return;
    };
    let old = install.serve(&previous);
    let rt = signed_in(&old, &portal).await["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();

    // 2. This release migrates the database while the old node serves (expand only).
    install.cli(&current, &["migrate"], None);
    let rt = refreshed(&old, &portal, &rt).await;
    signed_in(&old, &portal).await;

    // 3. Side by side: the chain hops between the versions, tokens of one are known to the other.
    let new = install.serve(&current);
    let rt = refreshed(&new, &portal, &rt).await;
    let rt = refreshed(&old, &portal, &rt).await;
    let from_new = signed_in(&new, &portal).await;
    let access = from_new["access_token"].as_str().unwrap();
    assert!(
        introspect(&old, &portal, access).await.unwrap(),
        "the old node knows the new node's token"
    );
    let from_old = signed_in(&old, &portal).await;
    let access = from_old["access_token"].as_str().unwrap();
    assert!(
        introspect(&new, &portal, access).await.unwrap(),
        "the new node knows the old node's token"
    );

    // 4. The old node stops cleanly; the new one carries on.
    let mut old_node = install.nodes.remove(0);
    let ok = Command::new("kill")
        .args(["-TERM", &old_node.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    assert!(
        old_node.wait().unwrap().success(),
        "the old node stops with exit 0"
    );
    refreshed(&new, &portal, &rt).await;
    let verified = install.cli(&current, &["audit", "verify", "--tenant", "acme"], None);
    assert!(verified.contains("is intact"), "{verified}");
}
