//! The account lifecycle from the CLI, run as an operator would (the real binary, SQLite and
//! PostgreSQL): `invite …` (create with groups, refusals with exit code 2, list by status,
//! re-send, revoke, `--json`), the deletion grace period in the tenant policy, `user restore`
//! and `user delete`, and every change in the audit chain.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use latchkey_tests::TestDb;
use serde_json::Value;
use std::process::{Command, Output};

struct Cli {
    url: String,
    dir: tempfile::TempDir,
}

impl Cli {
    fn run(&self, args: &[&str]) -> Output {
        let mut c = Command::new(env!("CARGO_BIN_EXE_latchkey"));
        c.args(args)
            .current_dir(self.dir.path())
            .env("LATCHKEY_DATABASE_URL", &self.url)
            .env("LATCHKEY_LOG_FORMAT", "json");
        for (k, _) in std::env::vars() {
            if k.starts_with("LATCHKEY_") && k != "LATCHKEY_DATABASE_URL" && k != "LATCHKEY_LOG_FORMAT" {
                c.env_remove(k);
            }
        }
        let out = c.output().unwrap();
        assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
        out
    }

    fn json(&self, args: &[&str]) -> Value {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stderr).unwrap()
    }
}

// One invitation's life from the operator's side, in order: splitting it would hide the order.
#[allow(clippy::too_many_lines)]
fn invitations_from_the_cli(db: &TestDb) {
    let cli = Cli {
        url: db.url.clone(),
        dir: tempfile::tempdir().unwrap(),
    };
    cli.json(&["tenant", "create", "acme", "--json"]);
    cli.json(&[
        "user",
        "create",
        "--tenant",
        "acme",
        "--username",
        "alice",
        "--email",
        "alice@acme.test",
        "--json",
    ]);
    cli.json(&["group", "create", "--tenant", "acme", "staff", "--json"]);

    let inv = cli.json(&[
        "invite",
        "create",
        "--tenant",
        "acme",
        "Dora@Acme.test",
        "--group",
        "staff",
        "--username",
        "dora",
        "--expires-in",
        "2d",
        "--json",
    ]);
    assert_eq!(inv["email"], "dora@acme.test");
    assert_eq!(inv["username"], "dora");
    assert_eq!(inv["status"], "pending");
    assert_eq!(inv["groups"].as_array().unwrap().len(), 1);
    let id = inv["id"].as_str().unwrap().to_owned();

    // Refusals are the operator's to fix: exit code 2 with the reason.
    assert!(
        cli.fails(&["invite", "create", "--tenant", "acme", "alice@acme.test"])
            .contains("exists")
    );
    assert!(
        cli.fails(&["invite", "create", "--tenant", "acme", "dora@acme.test"])
            .contains("pending")
    );
    assert!(
        cli.fails(&[
            "invite",
            "create",
            "--tenant",
            "acme",
            "x@acme.test",
            "--group",
            "nope"
        ])
        .contains("nope")
    );
    assert!(
        cli.fails(&[
            "invite",
            "create",
            "--tenant",
            "acme",
            "x@acme.test",
            "--expires-in",
            "91d"
        ])
        .contains("--expires-in")
    );
    assert!(
        cli.fails(&["invite", "create", "--tenant", "acme", "not-an-address"])
            .contains("email")
    );
    assert!(
        cli.fails(&["invite", "revoke", "--tenant", "acme", "nope"])
            .contains("not found")
    );

    let pending = cli.json(&[
        "invite", "list", "--tenant", "acme", "--status", "pending", "--json",
    ]);
    assert_eq!(pending.as_array().unwrap().len(), 1);
    let resent = cli.json(&[
        "invite",
        "resend",
        "--tenant",
        "acme",
        &id,
        "--expires-in",
        "1d",
        "--json",
    ]);
    assert_eq!(resent["status"], "pending");
    assert_ne!(resent["expires_at"], inv["expires_at"]);
    let revoked = cli.json(&["invite", "revoke", "--tenant", "acme", &id, "--json"]);
    assert_eq!(revoked["status"], "revoked");
    assert!(
        cli.fails(&["invite", "resend", "--tenant", "acme", &id])
            .contains("revoked")
    );
    let listed = cli.json(&[
        "invite", "list", "--tenant", "acme", "--status", "revoked", "--json",
    ]);
    assert_eq!(listed[0]["id"], id.as_str());
    assert!(
        cli.json(&[
            "invite", "list", "--tenant", "acme", "--status", "pending", "--json"
        ])
        .as_array()
        .unwrap()
        .is_empty()
    );

    let out = cli.run(&["audit", "export", "--tenant", "acme", "--format", "jsonl"]);
    let actions: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["action"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    for a in [
        "invitation.create",
        "invitation.resend",
        "invitation.revoke",
        "invitation.list",
    ] {
        assert!(actions.iter().any(|x| x == a), "{a} in {actions:?}");
    }
    // The two mails wait in the outbox for a server to send them.
    assert_eq!(
        db.raw_sql("UPDATE mail_outbox SET attempts = attempts WHERE recipient = 'dora@acme.test'"),
        2
    );
}

fn deletion_from_the_cli(db: &TestDb) {
    let cli = Cli {
        url: db.url.clone(),
        dir: tempfile::tempdir().unwrap(),
    };
    cli.json(&["tenant", "create", "acme", "--json"]);
    for name in ["alice", "bob"] {
        cli.json(&["user", "create", "--tenant", "acme", "--username", name, "--json"]);
    }
    assert!(
        cli.fails(&["tenant", "update", "acme", "--deletion-grace-days", "91"])
            .contains("0 to 90")
    );
    let tenant = cli.json(&[
        "tenant",
        "update",
        "acme",
        "--deletion-grace-days",
        "14",
        "--json",
    ]);
    assert_eq!(tenant["policy"]["accounts"]["deletion_grace_days"], 14);
    assert!(
        cli.fails(&["user", "restore", "--tenant", "acme", "alice"])
            .contains("no deletion")
    );

    // alice asked for deletion (the account page does this; here the row says so).
    let alice = cli.json(&["user", "show", "--tenant", "acme", "alice", "--json"])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    db.raw_sql(&format!(
        "UPDATE users SET status = 'disabled', deletion_due_at = 4102444800000 WHERE id = '{alice}'"
    ));
    let shown = cli.json(&["user", "show", "--tenant", "acme", "alice", "--json"]);
    assert_eq!(shown["deletion_due_at"], "2100-01-01T00:00:00Z");
    let restored = cli.json(&["user", "restore", "--tenant", "acme", "alice", "--json"]);
    assert_eq!(restored["status"], "active");
    assert!(
        cli.json(&["user", "show", "--tenant", "acme", "alice", "--json"])
            .get("deletion_due_at")
            .is_none()
    );
    // An operator's `enable` restores too.
    db.raw_sql(&format!(
        "UPDATE users SET status = 'disabled', deletion_due_at = 4102444800000 WHERE id = '{alice}'"
    ));
    cli.json(&["user", "enable", "--tenant", "acme", "alice", "--json"]);
    assert!(
        cli.json(&["user", "show", "--tenant", "acme", "alice", "--json"])
            .get("deletion_due_at")
            .is_none()
    );

    let deleted = cli.json(&["user", "delete", "--tenant", "acme", "bob", "--json"]);
    assert_eq!(deleted["deleted"], "user");
    assert!(
        cli.fails(&["user", "show", "--tenant", "acme", "bob"])
            .contains("bob")
    );
    let out = cli.run(&["audit", "export", "--tenant", "acme", "--format", "jsonl"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("\"user.deletion_cancelled\""));
    assert!(text.contains("\"user.delete\""));
    erasure_from_the_cli(&cli);
}

/// `user erase`: confirmation, a reason, at once or after the tenant's grace period.
fn erasure_from_the_cli(cli: &Cli) {
    cli.json(&[
        "user",
        "create",
        "--tenant",
        "acme",
        "--username",
        "zed",
        "--email",
        "zed@acme.test",
        "--json",
    ]);
    // Standard input is no terminal here: without --yes nothing happens.
    let refused = cli.fails(&["user", "erase", "--tenant", "acme", "zed", "--reason", "ticket 1"]);
    assert!(refused.contains("--yes"), "{refused}");
    assert_eq!(
        cli.json(&["user", "show", "--tenant", "acme", "zed", "--json"])["username"],
        "zed"
    );
    let blank = cli.fails(&[
        "user", "erase", "--tenant", "acme", "zed", "--reason", " ", "--yes",
    ]);
    assert!(blank.contains("reason"), "{blank}");
    // With a grace period the account closes first.
    cli.json(&["tenant", "update", "acme", "--erasure-grace-days", "7", "--json"]);
    let later = cli.json(&[
        "user", "erase", "--tenant", "acme", "zed", "--reason", "ticket 1", "--yes", "--json",
    ]);
    assert_eq!(later["status"], "scheduled", "{later}");
    assert!(later["due_at"].as_i64().is_some(), "{later}");
    assert_eq!(
        cli.json(&["user", "show", "--tenant", "acme", "zed", "--json"])["status"],
        "disabled"
    );
    cli.json(&["user", "restore", "--tenant", "acme", "zed", "--json"]);
    cli.json(&["tenant", "update", "acme", "--erasure-grace-days", "0", "--json"]);
    let now = cli.json(&[
        "user", "erase", "--tenant", "acme", "zed", "--reason", "ticket 2", "--yes", "--json",
    ]);
    assert_eq!(now["status"], "erased", "{now}");
    assert_eq!(now["key_destroyed"], true, "{now}");
    assert!(
        cli.fails(&["user", "show", "--tenant", "acme", "zed"])
            .contains("zed")
    );
    let out = cli.run(&["audit", "export", "--tenant", "acme", "--format", "jsonl"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("\"user.erase\"") && text.contains("ticket 2"));
    assert!(!text.contains("zed@acme.test"), "the audit log names nobody");
}

#[test]
fn invitations_from_the_cli_on_sqlite() {
    invitations_from_the_cli(&TestDb::sqlite());
}

#[test]
fn deletion_from_the_cli_on_sqlite() {
    deletion_from_the_cli(&TestDb::sqlite());
}

#[test]
fn deletion_from_the_cli_on_postgres() {
    if let Some(db) = TestDb::postgres() {
        deletion_from_the_cli(&db);
    }
}

#[test]
fn invitations_from_the_cli_on_postgres() {
    if let Some(db) = TestDb::postgres() {
        invitations_from_the_cli(&db);
    }
}
