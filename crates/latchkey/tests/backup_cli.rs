//! `latchkey backup` and `restore` (issue 23 item 6), with the real binary: a SQLite
//! installation with a signed-in user and a live refresh chain is restored into PostgreSQL
//! and back into SQLite; after each restore the audit chain verifies, the user signs in, and
//! the refresh token still works. Tampered, truncated and foreign backups, a wrong master key
//! and a target that is not empty are refused, and leave the target as it was.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use latchkey_core::{AccessTokenFormat, ClientType};
use latchkey_keys::MasterKey;
use latchkey_tests::browser::{Browser, setup};
use latchkey_tests::oidc::{code, redeem, refresh, register};
use latchkey_tests::{TestDb, TestServer};
use std::path::Path;
use std::process::{Command, Output};

fn latchkey(url: &str, master: &str, args: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_latchkey"));
    for (k, _) in std::env::vars() {
        if k.starts_with("LATCHKEY_") {
            c.env_remove(k);
        }
    }
    let out = c
        .args(args)
        .current_dir(dir.path())
        .env("LATCHKEY_DATABASE_URL", url)
        .env("LATCHKEY_MASTER_KEY", master)
        .env("LATCHKEY_LOG", "error")
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("panicked"),
        "{args:?}: {out:?}"
    );
    out
}

fn ok(url: &str, master: &str, args: &[&str]) -> String {
    let out = latchkey(url, master, args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn refused(url: &str, master: &str, args: &[&str], why: &str) {
    let out = latchkey(url, master, args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(stderr.contains(why), "{args:?}: {stderr}");
}

/// The installation after a restore: the chain verifies, alice signs in, `rt` refreshes.
async fn works(url: &str, master: &str, client: &latchkey_core::Client, rt: &str) -> String {
    let verified = ok(url, master, &["audit", "verify", "--tenant", "acme"]);
    assert!(verified.contains("is intact"), "{verified}");
    let s =
        TestServer::start_with(&[("LATCHKEY_DATABASE_URL", url), ("LATCHKEY_MASTER_KEY", master)]).unwrap();
    let (st, _, _) = Browser::default()
        .sign_in(&s, "acme", "alice", latchkey_tests::browser::PASSWORD)
        .await;
    assert_eq!(st, 303, "alice signs in");
    let (st, tokens) = refresh(&s, client, rt).await;
    assert_eq!(st, 200, "the refresh token works: {tokens}");
    tokens["refresh_token"].as_str().unwrap().to_owned()
}

fn tenants(url: &str, master: &str) -> String {
    ok(url, master, &["tenant", "list"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_backup_restores_into_postgres_and_back() {
    let Some(pg) = TestDb::postgres() else {
        return;
    };
    let master = MasterKey::generate().unwrap().to_base64();
    let src = TestDb::sqlite();
    let s = TestServer::start_with(&[
        ("LATCHKEY_DATABASE_URL", src.url.as_str()),
        ("LATCHKEY_MASTER_KEY", master.as_str()),
    ])
    .unwrap();
    setup(&s, "acme").await;
    let client = register(&s, "acme", ClientType::Confidential, true, AccessTokenFormat::Jwt);
    let mut b = Browser::default();
    let (st, tokens) = redeem(&s, &client, &code(&s, &mut b, &client).await).await;
    assert_eq!(st, 200);
    let rt = tokens["refresh_token"].as_str().unwrap().to_owned();
    drop(s);

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sqlite.backup");
    let f = file.to_str().unwrap();
    let said = ok(&src.url, &master, &["backup", "-o", f]);
    assert!(said.contains("backed up"), "{said}");
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&file).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    let text = std::fs::read_to_string(&file).unwrap();
    for secret in ["alice@acme.test", "acme Corp", "portal"] {
        assert!(!text.contains(secret), "the backup shows {secret:?} in clear");
    }
    refused(&src.url, &master, &["backup", "-o", f], "--output");
    let vault = dir.path().join("sqlite.vault");
    let v = vault.to_str().unwrap();
    ok(&src.url, &master, &["backup", "--vault", "-o", v]);
    // The data holds no user's key, the vault nothing but: each refuses the other's place.
    refused(&pg.url, &master, &["restore", "-i", v], "key vault");
    refused(
        &pg.url,
        &master,
        &["restore", "-i", f, "--vault", f],
        "not a key vault",
    );
    // Without the vault the personal data stays sealed: alice is not there to find.
    let bare = TestDb::sqlite();
    let out = latchkey(&bare.url, &master, &["restore", "-i", f]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("stays sealed"),
        "{out:?}"
    );
    refused(
        &bare.url,
        &master,
        &["user", "show", "--tenant", "acme", "alice"],
        "alice",
    );

    // SQLite → PostgreSQL (whose migrations already ran: its seeds are replaced).
    let restored = ok(&pg.url, &master, &["restore", "-i", f, "--vault", v, "--json"]);
    let summary: serde_json::Value = serde_json::from_str(&restored).unwrap();
    assert_eq!(summary["source"], "sqlite");
    assert!(summary["rows"].as_u64().unwrap() > 20, "{summary}");
    let rt = works(&pg.url, &master, &client, &rt).await;

    // PostgreSQL → a new SQLite file.
    let back = dir.path().join("pg.backup");
    ok(&pg.url, &master, &["backup", "-o", back.to_str().unwrap()]);
    let back_vault = dir.path().join("pg.vault");
    ok(
        &pg.url,
        &master,
        &["backup", "--vault", "-o", back_vault.to_str().unwrap()],
    );
    let lite = format!("sqlite://{}", dir.path().join("restored.db").display());
    ok(
        &lite,
        &master,
        &[
            "restore",
            "-i",
            back.to_str().unwrap(),
            "--vault",
            back_vault.to_str().unwrap(),
        ],
    );
    works(&lite, &master, &client, &rt).await;
}

fn tampered(from: &Path, to: &Path, f: impl FnOnce(&mut Vec<String>)) {
    let mut lines: Vec<String> = std::fs::read_to_string(from)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    f(&mut lines);
    std::fs::write(to, lines.join("\n") + "\n").unwrap();
}

#[test]
fn bad_backups_and_wrong_targets_are_refused_and_change_nothing() {
    let master = MasterKey::generate().unwrap().to_base64();
    let src = TestDb::sqlite();
    ok(&src.url, &master, &["tenant", "create", "acme"]);
    ok(&src.url, &master, &["tenant", "create", "other"]);
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good");
    ok(
        &src.url,
        &master,
        &["backup", "--tenant", "acme", "-o", good.to_str().unwrap()],
    );
    let target = TestDb::sqlite();
    let bad = dir.path().join("bad");
    let b = bad.to_str().unwrap();

    let other = MasterKey::generate().unwrap().to_base64();
    refused(
        &target.url,
        &other,
        &["restore", "-i", good.to_str().unwrap()],
        "encrypted under master key",
    );
    tampered(&good, &bad, |l| {
        let last = l.last_mut().unwrap();
        let flipped = if last.ends_with('A') { 'B' } else { 'A' };
        last.pop();
        last.push(flipped);
    });
    refused(&target.url, &master, &["restore", "-i", b], "does not open");
    tampered(&good, &bad, |l| {
        l.pop();
    });
    refused(&target.url, &master, &["restore", "-i", b], "truncated");
    tampered(&good, &bad, |l| {
        l[0] = l[0].replace("\"tenants\":[\"acme\"]", "\"tenants\":[\"other\"]");
    });
    refused(&target.url, &master, &["restore", "-i", b], "does not open");
    tampered(&good, &bad, |l| l[0] = "{\"format\":\"zip\"}".into());
    refused(
        &target.url,
        &master,
        &["restore", "-i", b],
        "not a Latchkey backup",
    );
    assert!(
        !tenants(&target.url, &master).contains("acme"),
        "nothing was restored"
    );
    // A target that holds tenants is refused.
    refused(
        &src.url,
        &master,
        &["restore", "-i", good.to_str().unwrap()],
        "restore into an empty database",
    );

    // The good backup holds acme only, and restores.
    ok(&target.url, &master, &["restore", "-i", good.to_str().unwrap()]);
    let listed = tenants(&target.url, &master);
    assert!(listed.contains("acme") && !listed.contains("other"), "{listed}");
    let verified = ok(&target.url, &master, &["audit", "verify", "--tenant", "acme"]);
    assert!(verified.contains("is intact"), "{verified}");
}
