//! The CLI contract from the README, run as an operator would: the real binary, SQLite and
//! PostgreSQL, human and `--json` output, validation errors with exit code 2, audit export/verify.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use latchkey_tests::TestDb;
use serde_json::Value;
use std::io::Write;
use std::process::{Command, Output, Stdio};

struct Cli {
    url: String,
    dir: tempfile::TempDir,
    /// More `LATCHKEY_*` settings for every command.
    settings: Vec<(&'static str, &'static str)>,
}

impl Cli {
    fn new(url: &str) -> Self {
        Cli {
            url: url.to_owned(),
            dir: tempfile::tempdir().unwrap(),
            settings: Vec::new(),
        }
    }

    fn with(mut self, name: &'static str, value: &'static str) -> Self {
        self.settings.push((name, value));
        self
    }

    fn cmd(&self, args: &[&str]) -> Command {
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
        c.envs(self.settings.iter().copied());
        c
    }

    fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let out = latchkey_tests::run_with_stdin(self.cmd(args), stdin);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
        out
    }

    /// Runs a command that must succeed and returns its stdout.
    fn ok(&self, args: &[&str]) -> String {
        self.ok_in(args, None)
    }

    fn ok_in(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.run(args, stdin);
        assert!(
            out.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&self.ok(args)).unwrap()
    }

    /// Runs a command that must fail with `code`; returns stderr.
    fn fails(&self, code: i32, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.run(args, stdin);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stderr).unwrap()
    }

    fn audit_actions(&self, tenant: &str) -> Vec<String> {
        self.ok(&["audit", "export", "--tenant", tenant, "--format", "jsonl"])
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["action"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    }
}

/// The whole contract in order on one database: each step builds on the tenant, clients and
/// users the earlier ones made, and the audit chain at the end holds all of them.
fn the_cli_contract(db: &TestDb) {
    let cli = Cli::new(&db.url);
    let tenant_id = tenants_are_created_listed_and_updated(&cli);
    let (conf_id, secret, public_id) = confidential_and_public_clients_are_created(&cli);
    service_and_private_key_jwt_clients_are_created(&cli);
    private_key_jwt_clients_need_public_keys_only(&cli);
    native_clients_are_created_and_bad_clients_refused(&cli);
    secrets_rotate_for_confidential_clients_only(&cli, &conf_id, &secret, &public_id);
    clients_update_by_flags_or_merge_patch(&cli, &conf_id);
    user_passwords_come_from_stdin_and_follow_the_policy(&cli);
    email_verification_follows_the_address(&cli);
    users_are_disabled_enabled_and_deleted(&cli);
    cli.ok(&["client", "delete", "--tenant", "acme", &public_id]);
    the_audit_chain_holds_every_change_and_finds_edits(db, &cli, &tenant_id, &secret);
}

fn tenants_are_created_listed_and_updated(cli: &Cli) -> String {
    // Tenants.
    let t = cli.json(&[
        "tenant",
        "create",
        "acme",
        "--display-name",
        "Acme Corp",
        "--json",
    ]);
    let tenant_id = t["id"].as_str().unwrap().to_owned();
    assert_eq!(t["slug"], "acme");
    assert_eq!(t["display_name"], "Acme Corp");
    assert_eq!(t["issuer"], "http://localhost:8080/t/acme");
    assert!(
        cli.fails(2, &["tenant", "create", "acme"], None)
            .contains("already exists")
    );
    for bad in ["A", "-acme", "acme_corp", "x", "tenant!"] {
        assert!(
            cli.fails(2, &["tenant", "create", "--", bad], None)
                .contains("slug"),
            "{bad}"
        );
    }
    let listed = cli.json(&["tenant", "list", "--json"]);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert!(cli.ok(&["tenant", "show", "acme"]).contains("Acme Corp"));
    let updated = cli.json(&[
        "tenant",
        "update",
        "acme",
        "--password-min-length",
        "14",
        "--password-require-digit",
        "true",
        "--json",
    ]);
    assert_eq!(updated["policy"]["password"]["min_length"], 14);
    assert!(
        cli.fails(
            2,
            &["tenant", "update", "acme", "--password-min-length", "4"],
            None
        )
        .contains("at least 8")
    );
    assert!(
        cli.fails(2, &["tenant", "show", "nope"], None)
            .contains("no tenant")
    );
    tenant_id
}

fn confidential_and_public_clients_are_created(cli: &Cli) -> (String, String, String) {
    // Clients.
    let conf = cli.json(&[
        "client",
        "create",
        "--tenant",
        "acme",
        "--name",
        "Portal",
        "--redirect-uri",
        "https://portal.acme.test/cb",
        "--post-logout-redirect-uri",
        "https://portal.acme.test/",
        "--json",
    ]);
    let conf_keys: Vec<&String> = conf.as_object().unwrap().keys().collect();
    assert_eq!(conf_keys, ["client_id", "client_secret"]);
    let conf_id = conf["client_id"].as_str().unwrap().to_owned();
    let secret = conf["client_secret"].as_str().unwrap().to_owned();
    assert!(secret.len() >= 43);
    let shown = cli.json(&["client", "show", "--tenant", "acme", &conf_id, "--json"]);
    assert_eq!(shown["token_endpoint_auth_method"], "client_secret_basic");
    assert_eq!(
        shown["grant_types"],
        serde_json::json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(shown["require_pkce"], true);
    assert!(
        !shown.to_string().contains(&secret),
        "the secret is shown once only"
    );

    let public = cli.json(&[
        "client",
        "create",
        "--tenant",
        "acme",
        "--name",
        "SPA",
        "--public",
        "--redirect-uri",
        "http://127.0.0.1:3000/cb",
        "--json",
    ]);
    assert_eq!(public["client_secret"], Value::Null);
    let public_id = public["client_id"].as_str().unwrap().to_owned();
    let shown = cli.json(&["client", "show", "--tenant", "acme", &public_id, "--json"]);
    assert_eq!(shown["token_endpoint_auth_method"], "none");
    assert_eq!(shown["client_type"], "public");
    (conf_id, secret, public_id)
}

fn service_and_private_key_jwt_clients_are_created(cli: &Cli) {
    let svc = cli.json(&[
        "client",
        "create",
        "--tenant",
        "acme",
        "--name",
        "Batch",
        "--grant",
        "client_credentials",
        "--scope",
        "api:read",
        "--introspect-others",
        "--resource",
        "https://reports.acme.test/",
        "--resource",
        "https://ledger.acme.test/v1",
        "--json",
    ]);
    assert!(svc["client_secret"].is_string());
    service_clients_list_the_resources_they_may_ask_for(cli, svc["client_id"].as_str().unwrap());
    let jwks_path = cli.dir.path().join("jwks.json");
    std::fs::write(&jwks_path, r#"{"keys":[{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#).unwrap();
    let pkjwt = cli.json(&[
        "client",
        "create",
        "--tenant",
        "acme",
        "--name",
        "Signed",
        "--redirect-uri",
        "https://signed.acme.test/cb",
        "--auth-method",
        "private_key_jwt",
        "--jwks-file",
        jwks_path.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(
        pkjwt["client_secret"],
        Value::Null,
        "private_key_jwt clients get no secret"
    );
    let shown = cli.json(&[
        "client",
        "show",
        "--tenant",
        "acme",
        pkjwt["client_id"].as_str().unwrap(),
        "--json",
    ]);
    assert_eq!(shown["token_endpoint_auth_method"], "private_key_jwt");
    assert_eq!(shown["jwks"]["keys"][0]["crv"], "P-256");
}

/// RFC 8707 resource indicators: listed at creation, shown, and checked.
fn service_clients_list_the_resources_they_may_ask_for(cli: &Cli, svc_id: &str) {
    let shown = cli.json(&["client", "show", "--tenant", "acme", svc_id, "--json"]);
    assert_eq!(
        shown["resources"],
        serde_json::json!(["https://reports.acme.test/", "https://ledger.acme.test/v1"])
    );
    let svc_with = |resources: &[&'static str]| {
        let mut args = vec![
            "client",
            "create",
            "--tenant",
            "acme",
            "--name",
            "Bad",
            "--grant",
            "client_credentials",
        ];
        for r in resources {
            args.extend(["--resource", r]);
        }
        args
    };
    for (resources, says) in [
        (&["https://reports.acme.test/#x"][..], "RFC 8707"),
        (&["/relative"][..], "RFC 8707"),
        (
            &["https://reports.acme.test/", "https://reports.acme.test/"][..],
            "twice",
        ),
    ] {
        let err = cli.fails(2, &svc_with(resources), None);
        assert!(
            err.contains("resource") && err.contains(says),
            "{resources:?}: {err}"
        );
    }
    let err = cli.fails(
        2,
        &[
            "client",
            "create",
            "--tenant",
            "acme",
            "--name",
            "Bad",
            "--redirect-uri",
            "https://portal.acme.test/cb",
            "--resource",
            "https://reports.acme.test/",
        ],
        None,
    );
    assert!(err.contains("client_credentials"), "{err}");
}

fn private_key_jwt_clients_need_public_keys_only(cli: &Cli) {
    let jwks_path = cli.dir.path().join("jwks.json");
    let err = cli.fails(
        2,
        &[
            "client",
            "create",
            "--tenant",
            "acme",
            "--name",
            "NoKeys",
            "--redirect-uri",
            "https://x.acme.test/cb",
            "--auth-method",
            "private_key_jwt",
        ],
        None,
    );
    assert!(err.contains("jwks"), "{err}");
    std::fs::write(
        &jwks_path,
        r#"{"keys":[{"kty":"EC","crv":"P-256","x":"a","y":"b","d":"private!"}]}"#,
    )
    .unwrap();
    let err = cli.fails(
        2,
        &[
            "client",
            "create",
            "--tenant",
            "acme",
            "--name",
            "Leaky",
            "--redirect-uri",
            "https://x.acme.test/cb",
            "--auth-method",
            "private_key_jwt",
            "--jwks-file",
            jwks_path.to_str().unwrap(),
        ],
        None,
    );
    assert!(err.contains("private member"), "{err}");
}

fn native_clients_are_created_and_bad_clients_refused(cli: &Cli) {
    let native = cli.json(&[
        "client",
        "create",
        "--tenant",
        "acme",
        "--name",
        "Mobile",
        "--public",
        "--redirect-uri",
        "com.acme.app:/oauth2redirect",
        "--json",
    ]);
    assert!(native["client_id"].is_string());

    for bad_uri in [
        "http://portal.acme.test/cb",
        "https://portal.acme.test/cb#x",
        "javascript:alert(1)",
        "/relative",
        "https://user@portal.acme.test/cb",
        "https://*.acme.test/cb",
    ] {
        let err = cli.fails(
            2,
            &[
                "client",
                "create",
                "--tenant",
                "acme",
                "--name",
                "Bad",
                "--redirect-uri",
                bad_uri,
            ],
            None,
        );
        assert!(err.contains("redirect_uri"), "{bad_uri}: {err}");
    }
    cli.fails(
        2,
        &[
            "client", "create", "--tenant", "acme", "--name", "Bad", "--grant", "implicit",
        ],
        None,
    );
    cli.fails(
        2,
        &[
            "client",
            "create",
            "--tenant",
            "acme",
            "--name",
            "Bad",
            "--public",
            "--grant",
            "client_credentials",
        ],
        None,
    );
    cli.fails(
        2,
        &["client", "create", "--tenant", "acme", "--name", "NoRedirect"],
        None,
    );
}

fn secrets_rotate_for_confidential_clients_only(cli: &Cli, conf_id: &str, secret: &str, public_id: &str) {
    let rotated = cli.json(&["client", "rotate-secret", "--tenant", "acme", conf_id, "--json"]);
    assert_eq!(rotated["client_id"], conf_id);
    assert_ne!(rotated["client_secret"], secret);
    assert_eq!(rotated["previous_secret_expires_at"], Value::Null);
    // With an overlap the old secret's end is shown (and the client shows it, never its hash).
    let overlapped = cli.json(&[
        "client",
        "rotate-secret",
        "--tenant",
        "acme",
        conf_id,
        "--overlap",
        "2h",
        "--json",
    ]);
    let until = overlapped["previous_secret_expires_at"]
        .as_str()
        .unwrap()
        .to_owned();
    let shown = cli.json(&["client", "show", "--tenant", "acme", conf_id, "--json"]);
    assert!(shown.to_string().contains("previous_secret"), "{shown}");
    assert!(!shown.to_string().contains("hash"), "{shown}");
    assert!(until.ends_with('Z'), "{until}");
    for bad in ["31d", "0m", "2w", "soon"] {
        let err = cli.fails(
            2,
            &[
                "client",
                "rotate-secret",
                "--tenant",
                "acme",
                conf_id,
                "--overlap",
                bad,
            ],
            None,
        );
        assert!(err.contains("--overlap"), "{bad}: {err}");
    }
    assert!(
        cli.fails(
            2,
            &["client", "rotate-secret", "--tenant", "acme", public_id],
            None
        )
        .contains("secret")
    );
    assert_eq!(
        cli.json(&["client", "list", "--tenant", "acme", "--json"])
            .as_array()
            .unwrap()
            .len(),
        5
    );
}

fn clients_update_by_flags_or_merge_patch(cli: &Cli, id: &str) {
    let before = cli.json(&["client", "show", "--tenant", "acme", id, "--json"]);
    let after = cli.json(&[
        "client",
        "update",
        "--tenant",
        "acme",
        id,
        "--redirect-uri",
        "https://new.acme.test/cb",
        "--redirect-uri",
        "https://other.acme.test/cb",
        "--first-party",
        "true",
        "--access-token-ttl",
        "120",
        "--json",
    ]);
    assert_eq!(
        after["redirect_uris"],
        serde_json::json!(["https://new.acme.test/cb", "https://other.acme.test/cb"])
    );
    assert_eq!(after["first_party"], true);
    assert_eq!(after["name"], before["name"], "what no flag names stays");
    // A merge patch on standard input, as the admin API's PATCH takes it.
    let patched: Value = serde_json::from_str(&cli.ok_in(
        &[
            "client", "update", "--tenant", "acme", id, "--patch", "-", "--json",
        ],
        Some(r#"{"name": "Renamed", "post_logout_redirect_uris": ["https://new.acme.test/bye"]}"#),
    ))
    .unwrap();
    assert_eq!(patched["name"], "Renamed");
    assert_eq!(patched["redirect_uris"], after["redirect_uris"]);
    // Refused with nothing written: broken rules, unknown members, a stale version, no change.
    let err = cli.fails(
        2,
        &[
            "client",
            "update",
            "--tenant",
            "acme",
            id,
            "--access-token-ttl",
            "1",
        ],
        None,
    );
    assert!(err.contains("lifetime"), "{err}");
    let err = cli.fails(
        2,
        &["client", "update", "--tenant", "acme", id, "--patch", "-"],
        Some(r#"{"secret_hash": "x"}"#),
    );
    assert!(err.contains("unknown field"), "{err}");
    let err = cli.fails(
        1,
        &[
            "client",
            "update",
            "--tenant",
            "acme",
            id,
            "--name",
            "Late",
            "--if-version",
            "1",
        ],
        None,
    );
    assert!(err.contains("changed since"), "{err}");
    cli.fails(2, &["client", "update", "--tenant", "acme", id], None);
    let now = cli.json(&["client", "show", "--tenant", "acme", id, "--json"]);
    assert_eq!(now["name"], "Renamed");
}

fn user_passwords_come_from_stdin_and_follow_the_policy(cli: &Cli) {
    // Users: passwords only on stdin, checked against the tenant's policy.
    let u = serde_json::from_str::<Value>(&cli.ok_in(
        &[
            "user",
            "create",
            "--tenant",
            "acme",
            "--username",
            "Alice",
            "--email",
            "alice@acme.test",
            "--password-stdin",
            "--json",
        ],
        Some("Correct-horse-battery-9\n"),
    ))
    .unwrap();
    assert_eq!(u["username"], "alice");
    assert_eq!(u["has_password"], true);
    assert_eq!(u["email_verified"], false, "created with a link to verify");
    let out = cli.run(
        &[
            "user",
            "create",
            "--tenant",
            "acme",
            "--username",
            "bob",
            "--password",
            "x",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2), "no password flag on the command line");
    let err = cli.fails(
        2,
        &[
            "user",
            "create",
            "--tenant",
            "acme",
            "--username",
            "bob",
            "--password-stdin",
        ],
        Some("short1\n"),
    );
    assert!(err.contains("at least 14 characters"), "{err}");
    let err = cli.fails(
        2,
        &[
            "user",
            "create",
            "--tenant",
            "acme",
            "--username",
            "bob",
            "--password-stdin",
        ],
        Some("no-digits-in-here-at-all\n"),
    );
    assert!(err.contains("a digit"), "{err}");
}

/// An operator vouches with `verify-email`; a new address from `user update` is unverified.
fn email_verification_follows_the_address(cli: &Cli) {
    let v = cli.json(&["user", "verify-email", "--tenant", "acme", "alice", "--json"]);
    assert_eq!(v["email_verified"], true);
    let v = cli.json(&[
        "user",
        "update",
        "--tenant",
        "acme",
        "alice",
        "--email",
        "alice@acme.test",
        "--json",
    ]);
    assert_eq!(v["email_verified"], true, "the same address stays verified");
    let v = cli.json(&[
        "user",
        "update",
        "--tenant",
        "acme",
        "alice",
        "--email",
        "Alice.New@acme.test",
        "--json",
    ]);
    assert_eq!(v["email"], "alice.new@acme.test");
    assert_eq!(v["email_verified"], false, "a new address is not verified");
}

fn users_are_disabled_enabled_and_deleted(cli: &Cli) {
    assert!(
        cli.fails(
            2,
            &["user", "create", "--tenant", "acme", "--username", "ALICE"],
            None
        )
        .contains("already exists")
    );
    assert!(
        cli.fails(
            2,
            &["user", "create", "--tenant", "acme", "--username", "a b"],
            None
        )
        .contains("username")
    );
    cli.ok(&[
        "user",
        "create",
        "--tenant",
        "acme",
        "--username",
        "bob",
        "--display-name",
        "Bob",
    ]);
    assert_eq!(
        cli.json(&["user", "disable", "--tenant", "acme", "alice", "--json"])["status"],
        "disabled"
    );
    assert_eq!(
        cli.json(&["user", "enable", "--tenant", "acme", "alice", "--json"])["status"],
        "active"
    );
    let changed =
        cli.json(&["user", "show", "--tenant", "acme", "alice", "--json"])["password_changed_at"].clone();
    std::thread::sleep(std::time::Duration::from_millis(5));
    let after = serde_json::from_str::<Value>(&cli.ok_in(
        &["user", "set-password", "--tenant", "acme", "alice", "--json"],
        Some("Another-long-passphrase-7\n"),
    ))
    .unwrap();
    assert_ne!(after["password_changed_at"], changed);
    assert_eq!(
        cli.json(&["user", "list", "--tenant", "acme", "--json"])
            .as_array()
            .unwrap()
            .len(),
        2
    );
    cli.ok(&["user", "delete", "--tenant", "acme", "bob"]);
    assert!(
        cli.fails(2, &["user", "show", "--tenant", "acme", "bob"], None)
            .contains("no user")
    );
}

fn the_audit_chain_holds_every_change_and_finds_edits(db: &TestDb, cli: &Cli, tenant_id: &str, secret: &str) {
    // Every change above is in the audit log, in order, and the chain verifies; the reads of
    // personal data (user show/list) are there too.
    let all = cli.audit_actions("acme");
    for read in ["user.read", "user.list"] {
        assert!(all.contains(&read.to_owned()), "{read} missing from {all:?}");
    }
    let actions: Vec<String> = all
        .into_iter()
        .filter(|a| !matches!(a.rsplit('.').next(), Some("read" | "list" | "export")))
        .collect();
    for expected in [
        "tenant.create",
        "keys.bootstrap",
        "tenant.update",
        "client.create",
        "client.rotate_secret",
        "user.create",
        "user.email_verification_requested",
        "user.email_verified",
        "user.disable",
        "user.enable",
        "user.set_password",
        "user.delete",
        "client.delete",
    ] {
        assert!(
            actions.contains(&expected.to_owned()),
            "{expected} missing from {actions:?}"
        );
    }
    assert_eq!(
        actions.len(),
        // tenant, keys, update, 5 clients, 2 rotations, the index key (first user), 2 users, a
        // verification link, verify-email, two updates and one link, disable, enable,
        // password, deletions, and two client updates
        1 + 1 + 1 + 5 + 2 + 1 + 2 + 1 + 1 + 2 + 1 + 1 + 1 + 1 + 1 + 1 + 2,
        "{actions:?}"
    );
    let export = cli.ok(&["audit", "export", "--tenant", "acme", "--format", "jsonl"]);
    assert!(
        !export.contains(secret) && !export.contains("argon2") && !export.contains("Correct-horse"),
        "secrets leaked into the audit log"
    );
    assert!(
        cli.ok(&["audit", "verify", "--tenant", "acme"])
            .contains("intact")
    );
    // Exports are audited too: this one's event lands after its own output.
    let total = cli.audit_actions("acme").len();
    let v = cli.json(&["audit", "verify", "--tenant", "acme", "--json"]);
    assert_eq!(v["status"], "intact");
    assert_eq!(v["events"], total + 1);

    // An edit made directly in the database is found and named.
    db.raw_sql("UPDATE audit_events SET details = '{\"username\":\"mallory\"}' WHERE seq = 6");
    let err = cli.fails(1, &["audit", "verify", "--tenant", "acme"], None);
    assert!(err.contains("broken at sequence number 6"), "{err}");

    // Deleting the tenant removes it and keeps nothing half-done.
    cli.ok(&["tenant", "delete", "acme"]);
    assert!(
        cli.json(&["tenant", "list", "--json"])
            .as_array()
            .unwrap()
            .is_empty()
    );
    // Its chain stays readable by tenant id, ending with the deletion (and still showing the edit).
    let exported = cli.ok(&["audit", "export", "--tenant", tenant_id, "--format", "jsonl"]);
    assert_eq!(exported.lines().count(), total + 2);
    assert!(exported.lines().last().unwrap().contains("tenant.delete"));
    assert!(
        cli.fails(1, &["audit", "verify", "--tenant", tenant_id], None)
            .contains("broken at sequence number 6")
    );
}

#[test]
fn cli_contract_on_sqlite() {
    the_cli_contract(&TestDb::sqlite());
}

#[test]
fn cli_contract_on_postgres() {
    let Some(db) = TestDb::postgres() else { return };
    the_cli_contract(&db);
}

/// Attributes and a client's claim configuration, as an operator sets them up for a portal
/// that filters rows by `org` (docs/authorization.md). One operator session, step by step.
#[allow(clippy::too_many_lines)]
fn attributes_and_claims(db: &TestDb) {
    let cli = Cli::new(&db.url);
    cli.ok(&["tenant", "create", "acme"]);
    cli.ok(&["user", "create", "--tenant", "acme", "--username", "carol"]);
    let def = cli.json(&[
        "attribute",
        "define",
        "--tenant",
        "acme",
        "org",
        "--type",
        "string",
        "--required",
        "true",
        "--editable-by",
        "admin",
        "--json",
    ]);
    assert_eq!(
        (def["type"].as_str(), def["required"].as_bool()),
        (Some("string"), Some(true))
    );
    cli.ok(&[
        "attribute",
        "define",
        "--tenant",
        "acme",
        "floor",
        "--type",
        "number",
        "--editable-by",
        "user",
    ]);
    let err = cli.fails(
        2,
        &[
            "attribute",
            "define",
            "--tenant",
            "acme",
            "email",
            "--type",
            "string",
        ],
        None,
    );
    assert!(err.contains("standard claim"), "{err}");
    let v = cli.json(&[
        "attribute",
        "set",
        "--tenant",
        "acme",
        "carol",
        "org=acme-emea",
        "floor=3",
        "--json",
    ]);
    assert_eq!(
        v["attributes"],
        serde_json::json!({"org": "acme-emea", "floor": 3})
    );
    let err = cli.fails(
        2,
        &["attribute", "set", "--tenant", "acme", "carol", "floor=high"],
        None,
    );
    assert!(err.contains("floor: must be a number"), "{err}");
    let err = cli.fails(
        2,
        &["attribute", "unset", "--tenant", "acme", "carol", "org"],
        None,
    );
    assert!(err.contains("required"), "{err}");
    let listed = cli.json(&["attribute", "list", "--tenant", "acme", "--json"]);
    assert_eq!(listed.as_array().unwrap().len(), 2);

    let client = cli.json(&[
        "client",
        "create",
        "--tenant",
        "acme",
        "--name",
        "Reports",
        "--redirect-uri",
        "https://reports.example/cb",
        "--json",
    ]);
    let id = client["client_id"].as_str().unwrap();
    let shown = cli.json(&["client", "show", "--tenant", "acme", id, "--json"]);
    let scopes = shown["scopes"].as_array().unwrap();
    assert!(
        scopes.contains(&"roles".into()) && scopes.contains(&"groups".into()),
        "{scopes:?}"
    );
    let defaults = cli.json(&["client", "claims", "--tenant", "acme", id, "--json"]);
    assert_eq!(defaults["roles"]["format"], "flat");
    let config = r#"{"roles": {"own_only": true}, "mappers": [{"claim": "org", "source": {"attribute": "org"}, "tokens": ["access_token"]}]}"#;
    let set = serde_json::from_str::<Value>(&cli.ok_in(
        &["client", "claims", "--tenant", "acme", id, "--set", "-", "--json"],
        Some(config),
    ))
    .unwrap();
    assert_eq!(set["roles"]["own_only"], true);
    assert_eq!(set["mappers"][0]["claim"], "org");
    let bad = r#"{"mappers": [{"claim": "sub", "source": {"value": "admin"}}]}"#;
    let err = cli.fails(
        2,
        &["client", "claims", "--tenant", "acme", id, "--set", "-"],
        Some(bad),
    );
    assert!(err.contains("may not write"), "{err}");
    let typo = r#"{"mapers": []}"#;
    let err = cli.fails(
        2,
        &["client", "claims", "--tenant", "acme", id, "--set", "-"],
        Some(typo),
    );
    assert!(err.contains("unknown field"), "{err}");
    let reset = cli.json(&["client", "claims", "--tenant", "acme", id, "--reset", "--json"]);
    assert_eq!(reset["roles"]["own_only"], false);
    let actions = cli.audit_actions("acme");
    for a in [
        "attribute.define",
        "user.attributes_update",
        "client.update_claims",
    ] {
        assert!(actions.iter().any(|x| x == a), "{a} in {actions:?}");
    }
}

#[test]
fn attributes_and_claims_on_sqlite() {
    attributes_and_claims(&TestDb::sqlite());
}

#[test]
fn attributes_and_claims_on_postgres() {
    let Some(db) = TestDb::postgres() else { return };
    attributes_and_claims(&db);
}

/// Serves `body` to every request on a loopback port, from a thread of its own; its URL.
fn serve_once_per_request(body: &'static str) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/sector.json", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = std::io::Read::read(&mut stream, &mut buf);
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(body.as_bytes());
        }
    });
    url
}

/// `--subject-type`, `--sector-identifier-uri` (fetched from wherever the operator says) and
/// `--allowed-claims` on `client create` and `client update` (docs/oidc.md).
#[test]
fn pairwise_subjects_and_the_claim_allow_list_from_the_cli() {
    let db = TestDb::sqlite();
    let cli = Cli::new(&db.url);
    cli.ok(&["tenant", "create", "acme"]);
    let two_hosts = [
        "client",
        "create",
        "--tenant",
        "acme",
        "--name",
        "Partner",
        "--redirect-uri",
        "https://a.partner.test/cb",
        "--redirect-uri",
        "https://b.partner.test/cb",
        "--subject-type",
        "pairwise",
        "--json",
    ];
    let err = cli.fails(2, &two_hosts, None);
    assert!(err.contains("several hosts"), "{err}");
    let made = cli.json(&[
        "client",
        "create",
        "--tenant",
        "acme",
        "--name",
        "Partner",
        "--redirect-uri",
        "https://a.partner.test/cb",
        "--subject-type",
        "pairwise",
        "--allowed-claims",
        "email, email_verified",
        "--json",
    ]);
    let id = made["client_id"].as_str().unwrap();
    let shown = cli.json(&["client", "show", "--tenant", "acme", id, "--json"]);
    assert_eq!(shown["subject_type"], "pairwise");
    assert_eq!(
        shown["allowed_claims"],
        serde_json::json!(["email", "email_verified"])
    );
    sector_documents_and_allow_lists_change(&cli, id);
}

/// A second host needs a sector document listing both redirect URIs; an empty
/// `--allowed-claims` removes the cap; bad values exit 2.
fn sector_documents_and_allow_lists_change(cli: &Cli, id: &str) {
    let short = serve_once_per_request(r#"["https://a.partner.test/cb"]"#);
    let full = serve_once_per_request(r#"["https://a.partner.test/cb", "https://b.partner.test/cb"]"#);
    let update = |uri: &str| {
        vec![
            "client".to_owned(),
            "update".into(),
            "--tenant".into(),
            "acme".into(),
            id.into(),
            "--redirect-uri".into(),
            "https://a.partner.test/cb".into(),
            "--redirect-uri".into(),
            "https://b.partner.test/cb".into(),
            "--sector-identifier-uri".into(),
            uri.into(),
            "--json".into(),
        ]
    };
    let args = update(&short);
    let err = cli.fails(2, &args.iter().map(String::as_str).collect::<Vec<_>>(), None);
    assert!(
        err.contains("does not list the redirect URI https://b.partner.test/cb"),
        "{err}"
    );
    let args = update(&full);
    let after = cli.json(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(after["sector_identifier_uri"], full.as_str());
    // An empty value removes the cap; a protocol claim can't be listed.
    let after = cli.json(&[
        "client",
        "update",
        "--tenant",
        "acme",
        id,
        "--allowed-claims",
        "",
        "--json",
    ]);
    assert_eq!(after["allowed_claims"], Value::Null, "{after}");
    let err = cli.fails(
        2,
        &[
            "client",
            "update",
            "--tenant",
            "acme",
            id,
            "--allowed-claims",
            "sub",
        ],
        None,
    );
    assert!(err.contains("protocol claim"), "{err}");
    let err = cli.fails(
        2,
        &[
            "client",
            "update",
            "--tenant",
            "acme",
            id,
            "--subject-type",
            "secret",
        ],
        None,
    );
    assert!(err.contains("pairwise"), "{err}");
}

#[test]
fn mfa_policy_and_reset_from_the_cli() {
    let db = TestDb::sqlite();
    let cli = Cli::new(&db.url);
    cli.ok(&["tenant", "create", "acme"]);
    let t = cli.json(&[
        "tenant",
        "update",
        "acme",
        "--mfa",
        "required",
        "--mfa-methods",
        "totp",
        "--json",
    ]);
    assert_eq!(t["policy"]["mfa"]["mode"], "required");
    assert_eq!(t["policy"]["mfa"]["methods"], serde_json::json!(["totp"]));
    assert!(
        cli.fails(2, &["tenant", "update", "acme", "--mfa", "sometimes"], None)
            .contains("sometimes")
    );
    cli.ok_in(
        &[
            "user",
            "create",
            "--tenant",
            "acme",
            "--username",
            "alice",
            "--password-stdin",
        ],
        Some("tulip-gravel-orbit-42\n"),
    );
    let listed = cli.json(&[
        "user",
        "mfa",
        "list",
        "--tenant",
        "acme",
        "--username",
        "alice",
        "--json",
    ]);
    assert_eq!(listed["policy"], "required");
    assert!(listed["totp"].is_null());
    assert_eq!(listed["recovery_codes_left"], 0);
    let reset = cli.json(&[
        "user",
        "mfa",
        "reset",
        "--tenant",
        "acme",
        "--username",
        "alice",
        "--json",
    ]);
    assert_eq!(reset["sessions"], "ended");
    assert!(
        cli.fails(
            2,
            &["user", "mfa", "reset", "--tenant", "acme", "--username", "nobody"],
            None
        )
        .contains("nobody")
    );
    let exported = cli.ok(&["audit", "export", "--tenant", "acme", "--format", "jsonl"]);
    assert!(exported.contains("\"mfa.reset\""), "the reset is audited");
}

#[test]
fn risk_policy_webhook_and_audit_search_from_the_cli() {
    let db = TestDb::sqlite();
    let cli = Cli::new(&db.url);
    cli.ok(&["tenant", "create", "acme"]);
    let t = cli.json(&[
        "tenant",
        "update",
        "acme",
        "--risk-stepup",
        "30",
        "--risk-deny",
        "70",
        "--risk-notify-new-device",
        "on",
        "--audit-retention-days",
        "90",
        "--json",
    ]);
    assert_eq!(t["policy"]["risk"]["step_up"], 30);
    assert_eq!(t["policy"]["risk"]["deny"], 70);
    assert_eq!(t["policy"]["risk"]["notify_new_device"], true);
    assert_eq!(t["policy"]["retention"]["audit_days"], 90);
    for (args, needle) in [
        (&["--risk-stepup", "90"][..], "risk bands"),
        (&["--risk-deny", "101"][..], "risk bands"),
        (&["--audit-retention-days", "7"][..], "at least 30"),
        (&["--risk", "maybe"][..], "on or off"),
        (&["--risk-webhook", "http://siem.example.com/hook"][..], "https"),
        (&["--risk-webhook", "javascript:alert(1)"][..], "https"),
    ] {
        let mut full = vec!["tenant", "update", "acme"];
        full.extend_from_slice(args);
        let err = cli.fails(2, &full, None);
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    // The webhook secret is shown once and stored sealed.
    let t = cli.json(&[
        "tenant",
        "update",
        "acme",
        "--risk-webhook",
        "https://siem.example.com/hooks/latchkey",
        "--json",
    ]);
    let secret = t["risk_webhook_secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_") && secret.len() > 40, "{secret}");
    let shown = cli.ok(&["tenant", "show", "acme", "--json"]);
    assert!(!shown.contains(&secret), "never shown again");
    assert!(
        !String::from_utf8_lossy(&db.dump()).contains(&secret[6..]),
        "stored sealed"
    );
    let t = cli.json(&["tenant", "update", "acme", "--risk-webhook", "", "--json"]);
    assert!(t["policy"]["risk"]["webhook_url"].is_null());
    audit_search_export_and_retention(&cli);
}

fn audit_search_export_and_retention(cli: &Cli) {
    // Search and export.
    let found = cli.json(&[
        "audit", "search", "--tenant", "acme", "--action", "tenant.*", "--json",
    ]);
    let actions: Vec<&str> = found
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["tenant.create", "tenant.update", "tenant.update", "tenant.update"]
    );
    let none = cli.json(&[
        "audit",
        "search",
        "--tenant",
        "acme",
        "--since",
        "2999-01-01",
        "--json",
    ]);
    assert_eq!(none, serde_json::json!([]));
    assert!(
        cli.fails(
            2,
            &["audit", "search", "--tenant", "acme", "--since", "last week"],
            None
        )
        .contains("RFC 3339")
    );
    let csv = cli.ok(&[
        "audit",
        "export",
        "--tenant",
        "acme",
        "--format",
        "csv",
        "--action",
        "tenant.update",
    ]);
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("tenant_id,seq,at,actor,action,target,outcome,details,prev_hash,hash")
    );
    assert_eq!(lines.count(), 3, "{csv}");
    let searched = cli.ok(&["audit", "export", "--tenant", "acme", "--format", "jsonl"]);
    assert!(searched.contains("\"audit.read\""), "searching is audited");
    // Retention now: nothing is a year old yet; the chain stays intact.
    let r = cli.json(&["audit", "retention", "--tenant", "acme", "--json"]);
    assert_eq!(r["audit_events_deleted"], 0);
    assert!(
        cli.ok(&["audit", "verify", "--tenant", "acme"])
            .contains("intact")
    );
}

#[test]
fn bad_configuration_is_named_with_exit_code_2() {
    let db = TestDb::sqlite();
    let cli = Cli::new(&db.url);
    for (var, value) in [
        ("LATCHKEY_LISTN", "127.0.0.1:1"),
        ("LATCHKEY_LISTEN", "nonsense"),
        ("LATCHKEY_PUBLIC_URL", "http://sso.example.com"),
        ("LATCHKEY_SESSION_STORE", "memcached://x"),
        ("LATCHKEY_LOG_FORMAT", "xml"),
    ] {
        let out = cli.cmd(&["tenant", "list"]).env(var, value).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{var}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(var), "{var}: {err}");
        assert!(!err.contains("panicked"));
    }
    std::fs::write(cli.dir.path().join("latchkey.toml"), "listen = 5\n").unwrap();
    let out = cli.cmd(&["tenant", "list"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("config file"));
    let out = cli
        .cmd(&["--config", "/nonexistent/latchkey.toml", "tenant", "list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));
}

/// The master key from a command (a secret manager's client): with the key file moved out of the
/// keys directory, `cat` of it opens the ring; a failing command, or one printing another key,
/// ends with exit code 1 and says why without printing the output; with both sources set, 2.
#[test]
fn the_master_key_comes_from_a_command() {
    let db = TestDb::sqlite();
    let cli = Cli::new(&db.url);
    cli.ok(&["tenant", "create", "acme"]);
    let keys = cli.dir.path().join("keys");
    let vault = cli.dir.path().join("vault.key");
    std::fs::rename(keys.join("master.key"), &vault).unwrap();
    let out = cli.run(&["tenant", "create", "beta"], None);
    assert_eq!(out.status.code(), Some(1), "no key file and no command: refused");
    let command = format!("cat '{}'", vault.display());
    let out = cli
        .cmd(&["tenant", "create", "beta"])
        .env("LATCHKEY_MASTER_KEY_COMMAND", &command)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        !keys.join("master.key").exists(),
        "a command's key is never written to disk"
    );
    let secret = std::fs::read_to_string(&vault).unwrap();
    for (command, why) in [
        ("sh -c 'echo denied >&2; exit 7'".to_owned(), "exit status: 7"),
        (
            "sh -c 'head -c 32 /dev/urandom | base64'".to_owned(),
            "encrypted under",
        ),
        ("/nonexistent/kms".to_owned(), "cannot run"),
    ] {
        let out = cli
            .cmd(&["tenant", "create", "gamma"])
            .env("LATCHKEY_MASTER_KEY_COMMAND", &command)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{command}: {err}");
        assert!(err.contains(why), "{command}: {err}");
        assert!(!err.contains(secret.trim()), "{command}: the key in {err}");
    }
    let out = cli
        .cmd(&["tenant", "list"])
        .env("LATCHKEY_MASTER_KEY_COMMAND", &command)
        .env("LATCHKEY_MASTER_KEY", secret.trim())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not both"));
}

#[test]
fn unreachable_database_fails_with_a_clear_message() {
    let cli = Cli::new("postgres://root@127.0.0.1:1/latchkey");
    let err = cli.fails(1, &["tenant", "list"], None);
    assert!(
        err.contains("LATCHKEY_DATABASE_URL") && err.contains("127.0.0.1:1"),
        "{err}"
    );
    let cli = Cli::new("mysql://nope");
    assert!(
        cli.fails(2, &["tenant", "list"], None)
            .contains("LATCHKEY_DATABASE_URL")
    );
}

#[test]
fn json_errors_are_json() {
    let db = TestDb::sqlite();
    let cli = Cli::new(&db.url);
    let err = cli.fails(2, &["tenant", "create", "Bad Slug", "--json"], None);
    // Logs (JSON too) may precede it on stderr; the error is the last line.
    let v: Value = serde_json::from_str(err.trim().lines().last().unwrap()).unwrap();
    assert!(v["error"].as_str().unwrap().contains("slug"));
}

#[test]
#[allow(clippy::too_many_lines)] // one credential's story: created, given, checked, revoked
fn admin_tokens_are_shown_once_listed_and_revoked() {
    let db = TestDb::sqlite();
    let cli = Cli::new(&db.url);
    cli.ok(&["tenant", "create", "acme"]);
    let created = cli.json(&[
        "admin-token",
        "create",
        "--tenant",
        "acme",
        "--name",
        "ci",
        "--role",
        "tenant-admin",
        "--json",
    ]);
    let token = created["token"].as_str().unwrap();
    assert!(token.starts_with("lka_") && token.len() == 47, "{token}");
    assert_eq!(created["roles"], serde_json::json!(["tenant-admin"]));
    assert!(created["expires_at"].is_string(), "tokens expire by default");
    let listed = cli.json(&["admin-token", "list", "--tenant", "acme", "--json"]);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert!(!listed.to_string().contains(token), "the token is shown once");
    let never = cli.json(&[
        "admin-token",
        "create",
        "--tenant",
        "acme",
        "--name",
        "ro",
        "--expires-in-days",
        "0",
        "--json",
    ]);
    // Least privilege: a new credential may do nothing until given roles or permissions.
    assert_eq!(never["roles"], serde_json::json!([]));
    assert_eq!(never["permissions"], serde_json::json!([]));
    assert_eq!(never["expires_at"], Value::Null);
    let id = never["id"].as_str().unwrap();
    let given = cli.json(&[
        "admin-token",
        "update",
        "--tenant",
        "acme",
        id,
        "--permission",
        "users:read,audit:read",
        "--json",
    ]);
    assert_eq!(
        given["permissions"],
        serde_json::json!(["users:read", "audit:read"])
    );
    assert!(
        cli.fails(
            2,
            &[
                "admin-token",
                "update",
                "--tenant",
                "acme",
                id,
                "--permission",
                "users:everything"
            ],
            None
        )
        .contains("users:everything")
    );
    assert!(
        cli.fails(
            2,
            &[
                "admin-token",
                "update",
                "--tenant",
                "acme",
                id,
                "--role",
                "no-such-role"
            ],
            None
        )
        .contains("no-such-role")
    );
    // A tenant's credential never holds a system permission.
    assert!(
        cli.fails(
            2,
            &[
                "admin-token",
                "update",
                "--tenant",
                "acme",
                id,
                "--permission",
                "system:tenants:write"
            ],
            None
        )
        .contains("system permission")
    );
    cli.ok(&[
        "admin-role",
        "create",
        "--tenant",
        "acme",
        "helpdesk",
        "--permission",
        "users:read,users:disable",
    ]);
    let held = cli.json(&[
        "admin-token",
        "update",
        "--tenant",
        "acme",
        id,
        "--role",
        "helpdesk",
        "--json",
    ]);
    assert_eq!(held["roles"], serde_json::json!(["helpdesk"]));
    assert!(
        cli.fails(2, &["admin-role", "remove", "--tenant", "acme", "helpdesk"], None)
            .contains("held by 1")
    );
    cli.ok(&[
        "admin-token",
        "revoke",
        "--tenant",
        "acme",
        created["id"].as_str().unwrap(),
    ]);
    assert!(
        cli.fails(
            2,
            &[
                "admin-token",
                "revoke",
                "--tenant",
                "acme",
                created["id"].as_str().unwrap()
            ],
            None
        )
        .contains("not found")
    );
    assert_eq!(
        cli.json(&["admin-token", "list", "--tenant", "acme", "--json"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let actions = cli.audit_actions("acme");
    assert_eq!(
        actions,
        [
            "tenant.create",
            "keys.bootstrap",
            "admin_token.create",
            "admin_token.create",
            "admin_token.update",
            "admin_role.create",
            "admin_token.update",
            "admin_token.revoke"
        ]
    );
    assert!(
        !cli.ok(&["audit", "export", "--tenant", "acme", "--format", "jsonl"])
            .contains(token)
    );
}

/// `latchkey serve` as a process: JSON access logs carry the request id and never the query
/// string or credentials, and SIGTERM / SIGINT stop it cleanly (exit 0).
/// `latchkey serve` started as a process with `env`, once `/readyz` answers 200: the child, its
/// base URL and a runtime to talk to it.
fn serve_ready(cli: &Cli, env: &[(&str, &str)]) -> (std::process::Child, String, tokio::runtime::Runtime) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = cli
        .cmd(&["serve"])
        .env("LATCHKEY_LISTEN", format!("127.0.0.1:{port}"))
        .env("LATCHKEY_PUBLIC_URL", format!("http://localhost:{port}"))
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    rt.block_on(async {
        let c = reqwest::Client::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while c
            .get(format!("{base}/readyz"))
            .send()
            .await
            .map(|r| r.status())
            .ok()
            != Some(reqwest::StatusCode::OK)
        {
            assert!(std::time::Instant::now() < deadline, "serve did not become ready");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    });
    (child, base, rt)
}

fn signal(child: &std::process::Child, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn serve_and_stop(signal_name: &str) -> (i32, String, String) {
    let db = TestDb::sqlite();
    let cli = Cli::new(&db.url);
    cli.ok(&["tenant", "create", "acme"]);
    let (child, base, rt) = serve_ready(&cli, &[]);
    rt.block_on(async {
        let c = reqwest::Client::new();
        let res = c
            .get(format!("{base}/t/acme/callback?code=SUPERSECRETCODE&state=xyz"))
            .header("x-request-id", "trace-abc-123")
            .bearer_auth("SUPERSECRETTOKEN")
            .header("cookie", "session=SUPERSECRETCOOKIE")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404);
    });
    signal(&child, signal_name);
    let out = child.wait_with_output().unwrap();
    let master_key = std::fs::read_to_string(cli.dir.path().join("keys").join("master.key")).unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        master_key.trim().to_owned(),
    )
}

#[test]
fn serve_logs_without_secrets_and_stops_cleanly_on_sigterm() {
    let (code, logs, master_key) = serve_and_stop("-TERM");
    assert_eq!(code, 0, "{logs}");
    let access: Vec<Value> = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["target"] == "latchkey::access")
        .collect();
    let line = access
        .iter()
        .find(|v| v["fields"]["path"] == "/t/acme/callback")
        .expect("access log line");
    assert_eq!(line["span"]["request_id"], "trace-abc-123");
    assert_eq!(line["fields"]["status"], 404);
    for secret in [
        "SUPERSECRETCODE",
        "SUPERSECRETTOKEN",
        "SUPERSECRETCOOKIE",
        "state=xyz",
    ] {
        assert!(!logs.contains(secret), "logs contain {secret}");
    }
    for key_material in ["PRIVATE KEY", "\"d\":", master_key.as_str()] {
        assert!(!logs.contains(key_material), "logs contain key material");
    }
    assert!(logs.contains("SIGTERM"), "{logs}");
    assert!(logs.contains("latchkey stopped"), "{logs}");
}

#[test]
fn serve_stops_cleanly_on_sigint() {
    let (code, logs, _) = serve_and_stop("-INT");
    assert_eq!(code, 0, "{logs}");
    assert!(
        logs.contains("SIGINT") && logs.contains("latchkey stopped"),
        "{logs}"
    );
}

/// Issue 23: with a drain delay, SIGTERM first takes the node out of the load balancer (readiness
/// fails, answers close their connections) while it still serves, then stops cleanly.
#[test]
fn serve_drains_before_it_stops_on_sigterm() {
    let db = TestDb::sqlite();
    let cli = Cli::new(&db.url);
    let (child, base, rt) = serve_ready(&cli, &[("LATCHKEY_DRAIN_DELAY_SECS", "5")]);
    let healthcheck = || {
        cli.cmd(&["healthcheck"])
            .env("LATCHKEY_LISTEN", base.trim_start_matches("http://"))
            .output()
            .unwrap()
    };
    let ready = healthcheck();
    assert_eq!(ready.status.code(), Some(0), "{ready:?}");
    assert_eq!(String::from_utf8_lossy(&ready.stdout).trim(), "ready");
    let sent = std::time::Instant::now();
    signal(&child, "-TERM");
    rt.block_on(async {
        let c = reqwest::Client::new();
        // Draining starts at once; poll briefly for the signal to be handled.
        let mut ready = c.get(format!("{base}/readyz")).send().await.unwrap();
        while ready.status() == 200 && sent.elapsed() < std::time::Duration::from_millis(1500) {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            ready = c.get(format!("{base}/readyz")).send().await.unwrap();
        }
        assert_eq!(ready.status(), 503);
        let body: Value = ready.json().await.unwrap();
        assert_eq!(body["status"], "draining");
        let served = c.get(format!("{base}/healthz")).send().await.unwrap();
        assert_eq!(served.status(), 200, "still serving while draining");
        assert_eq!(served.headers()["connection"], "close");
        let draining = healthcheck();
        assert_eq!(draining.status.code(), Some(1), "{draining:?}");
        assert!(
            String::from_utf8_lossy(&draining.stderr).contains("503"),
            "{draining:?}"
        );
        assert!(
            sent.elapsed() < std::time::Duration::from_secs(5),
            "within the delay"
        );
        // After the delay the listener closes.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while c.get(format!("{base}/healthz")).send().await.is_ok() {
            assert!(std::time::Instant::now() < deadline, "the listener never closed");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    });
    let closed = sent.elapsed();
    assert!(
        closed >= std::time::Duration::from_secs(5),
        "not before the delay: {closed:?}"
    );
    let out = child.wait_with_output().unwrap();
    let logs = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{logs}");
    assert!(
        logs.contains("draining") && logs.contains("latchkey stopped"),
        "{logs}"
    );
}

// --- SAML connections -------------------------------------------------------------------------

const T0_MS: i64 = 1_700_000_000_000;
const YEAR_MS: i64 = 365 * 24 * 3_600_000;

fn now_ms() -> i64 {
    i64::try_from(std::time::SystemTime::UNIX_EPOCH.elapsed().unwrap().as_millis()).unwrap()
}

/// A self-signed certificate (base64 DER) valid from `from` for ten years.
fn cert(cn: &str, from: i64) -> String {
    latchkey_saml::generate_sp_key(cn, from).unwrap().certificate
}

/// IdP metadata with these signing certificates and SingleSignOnService bindings.
fn idp_metadata(entity: &str, certs: &[&str], bindings: &[&str]) -> String {
    let mut keys = String::new();
    for c in certs {
        keys.push_str(r#"<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>"#);
        keys.push_str(c);
        keys.push_str("</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>");
    }
    let mut services = String::new();
    for b in bindings {
        services.push_str(
            &[
                r#"<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:"#,
                b,
                r#"" Location=""#,
                entity,
                "/sso/",
                b,
                r#""/>"#,
            ]
            .concat(),
        );
    }
    format!(
        r#"<?xml version="1.0"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{entity}">
  <md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol" WantAuthnRequestsSigned="true">
    {keys}
    {services}
  </md:IDPSSODescriptor>
</md:EntityDescriptor>"#
    )
}

impl Cli {
    fn write(&self, name: &str, text: &str) -> String {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    }
}

fn sealed_sp_key(db: &TestDb, tenant: &str, name: &str) -> String {
    use latchkey_store::{SamlRepo, TenantRepo};
    let t = db.db.tenant_by_slug(tenant).unwrap().unwrap();
    db.db
        .saml_connection_by_name(&t.id, name)
        .unwrap()
        .unwrap()
        .sp_key_sealed
}

/// Roles, two connections, their updates and removal, in order on one database.
fn saml_connections_from_the_cli(db: &TestDb) {
    let cli = Cli::new(&db.url);
    cli.ok(&["tenant", "create", "acme"]);
    roles_come_from_the_role_command(db, &cli);
    let (old, new) = (cert("Okta 2025", now_ms() - YEAR_MS), cert("Okta 2026", now_ms()));
    let (added, sealed) = a_connection_is_added_from_a_metadata_file(db, &cli, &old, &new);
    the_summary_names_what_the_idp_administrator_needs(&cli);
    let entra = cli.write(
        "entra.xml",
        &idp_metadata("https://login.entra.example", &[&new], &["HTTP-POST"]),
    );
    conflicting_connections_are_refused(&cli, &entra);
    unknown_tenants_and_connections_are_refused(&cli, &entra);
    let second = a_second_connection_is_added(&cli, &entra);
    options_change_and_only_the_flags_given(&cli);
    group_maps_name_existing_groups(&cli);
    new_metadata_replaces_the_old_and_keeps_the_sp_key(db, &cli, &new, &sealed);
    no_output_carries_the_sealed_key(db, &cli, &added, &second, &sealed);
    removals_and_changes_are_audited(&cli);
}

fn roles_come_from_the_role_command(db: &TestDb, cli: &Cli) {
    use latchkey_store::{RoleRepo, TenantRepo};
    let tid = db.db.tenant_by_slug("acme").unwrap().unwrap().id;
    // Roles the role map names come from `latchkey role`.
    let made = cli.json(&[
        "role",
        "create",
        "--tenant",
        "acme",
        "admin",
        "--description",
        "Full access",
        "--json",
    ]);
    assert_eq!(made["name"], "admin");
    cli.ok(&["role", "create", "--tenant", "acme", "scratch"]);
    let listed = cli.json(&["role", "list", "--tenant", "acme", "--json"]);
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2);
    assert!(names.contains(&"admin") && names.contains(&"scratch"));
    cli.ok(&["role", "remove", "--tenant", "acme", "scratch"]);
    assert_eq!(db.db.list_roles(&tid).unwrap().len(), 1);
    cli.fails(2, &["role", "remove", "--tenant", "acme", "scratch"], None);
}

fn a_connection_is_added_from_a_metadata_file(
    db: &TestDb,
    cli: &Cli,
    old: &str,
    new: &str,
) -> (Value, String) {
    let okta = cli.write(
        "okta.xml",
        &idp_metadata(
            "https://corp.okta.example",
            &[old, new],
            &["HTTP-POST", "HTTP-Redirect"],
        ),
    );
    let added = cli.json(&[
        "saml",
        "add",
        "--tenant",
        "acme",
        "--name",
        "okta",
        "--metadata-file",
        &okta,
        "--display-name",
        "Corp Okta",
        "--domains",
        "Corp.Example,eu.corp.example",
        "--map",
        "email=mail",
        "--map",
        "groups=memberOf",
        "--role-map",
        "Admins=admin",
        "--link-existing",
        "on",
        "--json",
    ]);
    assert_eq!(added["name"], "okta");
    assert_eq!(added["display_name"], "Corp Okta");
    assert_eq!(added["idp"]["entity_id"], "https://corp.okta.example");
    assert_eq!(
        added["idp"]["sso_url"], "https://corp.okta.example/sso/HTTP-Redirect",
        "HTTP-Redirect is preferred"
    );
    let certs = added["idp"]["certificates"].as_array().unwrap();
    assert_eq!(certs.len(), 2, "both certificates of a rollover are trusted");
    assert!(certs[0]["subject"].as_str().unwrap().contains("Okta 2025"));
    assert_eq!(certs[0]["sha256"].as_str().unwrap().len(), 95);
    assert_eq!(
        added["options"]["domains"],
        serde_json::json!(["corp.example", "eu.corp.example"])
    );
    assert_eq!(added["options"]["mapping"]["email"], "mail");
    assert_eq!(
        added["options"]["role_map"],
        serde_json::json!([["Admins", "admin"]])
    );
    assert_eq!(added["options"]["link_existing"], true);
    assert_eq!(added["options"]["jit"], true);
    assert_eq!(
        added["options"]["sign_requests"], true,
        "the IdP asks for signed requests"
    );
    assert_eq!(added["metadata"]["source"], "file");
    assert!(added["metadata"]["next_refresh_at"].is_null());
    assert_eq!(
        added["sp"]["entity_id"],
        "http://localhost:8080/t/acme/saml/okta/metadata"
    );
    assert_eq!(
        added["sp"]["acs_url"],
        "http://localhost:8080/t/acme/saml/okta/acs"
    );
    assert_eq!(added["sp"]["certificate_sha256"].as_str().unwrap().len(), 95);
    let sealed = sealed_sp_key(db, "acme", "okta");
    assert!(sealed.len() > 100, "the SP key is stored sealed");
    (added, sealed)
}

fn the_summary_names_what_the_idp_administrator_needs(cli: &Cli) {
    // Human output names what an IdP administrator needs.
    let shown = cli.ok(&["saml", "show", "--tenant", "acme", "okta"]);
    for want in [
        "https://corp.okta.example/sso/HTTP-Redirect",
        "/t/acme/saml/okta/acs",
        "/t/acme/saml/okta/metadata",
        "Okta 2026",
        "corp.example, eu.corp.example",
        "Admins=admin",
        "from a file",
    ] {
        assert!(shown.contains(want), "{want} in {shown}");
    }
    let listed = cli.json(&["saml", "list", "--tenant", "acme", "--json"]);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert!(
        cli.ok(&["saml", "list", "--tenant", "acme"])
            .starts_with("okta\tCorp Okta")
    );
}

fn conflicting_connections_are_refused(cli: &Cli, entra: &str) {
    // Refused: a duplicate name, a domain claimed twice, an unknown role, unknown names.
    assert!(
        cli.fails(
            2,
            &[
                "saml",
                "add",
                "--tenant",
                "acme",
                "--name",
                "okta",
                "--metadata-file",
                entra
            ],
            None
        )
        .contains("already exists")
    );
    let claimed = cli.fails(
        2,
        &[
            "saml",
            "add",
            "--tenant",
            "acme",
            "--name",
            "entra",
            "--metadata-file",
            entra,
            "--domains",
            "eu.corp.example",
        ],
        None,
    );
    assert!(
        claimed.contains("eu.corp.example") && claimed.contains("okta"),
        "{claimed}"
    );
    let role = cli.fails(
        2,
        &[
            "saml",
            "add",
            "--tenant",
            "acme",
            "--name",
            "entra",
            "--metadata-file",
            entra,
            "--role-map",
            "Staff=superuser",
        ],
        None,
    );
    assert!(role.contains("superuser"), "{role}");
}

fn unknown_tenants_and_connections_are_refused(cli: &Cli, entra: &str) {
    assert!(
        cli.fails(
            2,
            &[
                "saml",
                "add",
                "--tenant",
                "nope",
                "--name",
                "x",
                "--metadata-file",
                entra
            ],
            None
        )
        .contains("nope")
    );
    assert!(
        cli.fails(2, &["saml", "show", "--tenant", "acme", "ghost"], None)
            .contains("ghost")
    );
    assert!(
        cli.fails(2, &["saml", "remove", "--tenant", "acme", "ghost"], None)
            .contains("ghost")
    );
    assert_eq!(
        cli.json(&["saml", "list", "--tenant", "acme", "--json"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

fn a_second_connection_is_added(cli: &Cli, entra: &str) -> Value {
    // A second connection, then updates.
    let e = cli.json(&[
        "saml",
        "add",
        "--tenant",
        "acme",
        "--name",
        "entra",
        "--metadata-file",
        entra,
        "--allow-idp-initiated",
        "--jit",
        "off",
        "--json",
    ]);
    assert_eq!(
        e["idp"]["sso_binding"],
        "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
    );
    assert_eq!(e["options"]["allow_idp_initiated"], true);
    assert_eq!(e["options"]["jit"], false);
    e
}

fn options_change_and_only_the_flags_given(cli: &Cli) {
    assert!(
        cli.fails(
            2,
            &[
                "saml",
                "update",
                "--tenant",
                "acme",
                "entra",
                "--domains",
                "corp.example"
            ],
            None
        )
        .contains("corp.example")
    );
    let u = cli.json(&[
        "saml",
        "update",
        "--tenant",
        "acme",
        "okta",
        "--domains",
        "",
        "--trust-idp-mfa",
        "on",
        "--map",
        "email=",
        "--role-map",
        "Ops=admin",
        "--role-map",
        "Admins=admin",
        "--display-name",
        "Okta",
        "--json",
    ]);
    assert_eq!(u["options"]["domains"], serde_json::json!([]));
    assert_eq!(u["options"]["trust_idp_mfa"], true);
    assert!(u["options"]["mapping"]["email"].is_null());
    assert_eq!(
        u["options"]["mapping"]["groups"], "memberOf",
        "unnamed fields stay"
    );
    assert_eq!(
        u["options"]["role_map"],
        serde_json::json!([["Ops", "admin"], ["Admins", "admin"]]),
        "--role-map replaces the map"
    );
    assert_eq!(u["display_name"], "Okta");
    let u = cli.json(&[
        "saml",
        "update",
        "--tenant",
        "acme",
        "okta",
        "--no-role-map",
        "--json",
    ]);
    assert_eq!(u["options"]["role_map"], serde_json::json!([]));
}

/// `--group-map` names groups of the tenant; `--no-group-map` clears it.
fn group_maps_name_existing_groups(cli: &Cli) {
    cli.ok(&["group", "create", "--tenant", "acme", "ops-team"]);
    let u = cli.json(&[
        "saml",
        "update",
        "--tenant",
        "acme",
        "okta",
        "--group-map",
        "Ops=ops-team",
        "--json",
    ]);
    assert_eq!(
        u["options"]["group_map"],
        serde_json::json!([["Ops", "ops-team"]])
    );
    let err = cli.fails(
        2,
        &[
            "saml",
            "update",
            "--tenant",
            "acme",
            "okta",
            "--group-map",
            "Ops=nope",
        ],
        None,
    );
    assert!(err.contains("no group \"nope\""), "{err}");
    let u = cli.json(&[
        "saml",
        "update",
        "--tenant",
        "acme",
        "okta",
        "--no-group-map",
        "--json",
    ]);
    assert!(u["options"].get("group_map").is_none());
}

fn new_metadata_replaces_the_old_and_keeps_the_sp_key(db: &TestDb, cli: &Cli, new: &str, sealed: &str) {
    // New metadata replaces the old (one certificate left after the rollover).
    let rolled = cli.write(
        "okta2.xml",
        &idp_metadata("https://corp.okta.example", &[new], &["HTTP-Redirect"]),
    );
    let u = cli.json(&[
        "saml",
        "update",
        "--tenant",
        "acme",
        "okta",
        "--metadata-file",
        &rolled,
        "--json",
    ]);
    assert_eq!(u["idp"]["certificates"].as_array().unwrap().len(), 1);
    assert!(
        cli.fails(
            2,
            &[
                "saml",
                "update",
                "--tenant",
                "acme",
                "okta",
                "--role-map",
                "X=nobody"
            ],
            None
        )
        .contains("nobody")
    );
    assert!(
        cli.fails(2, &["saml", "refresh-metadata", "--tenant", "acme", "okta"], None)
            .contains("file")
    );
    assert_eq!(
        sealed_sp_key(db, "acme", "okta"),
        sealed,
        "updates keep the SP key"
    );
}

fn no_output_carries_the_sealed_key(db: &TestDb, cli: &Cli, added: &Value, e: &Value, sealed: &str) {
    // No output ever carries the sealed key.
    for args in [
        &["saml", "show", "--tenant", "acme", "okta", "--json"][..],
        &["saml", "list", "--tenant", "acme", "--json"],
        &["saml", "show", "--tenant", "acme", "okta"],
        &["audit", "export", "--tenant", "acme", "--format", "jsonl"],
    ] {
        let out = cli.ok(args);
        assert!(!out.contains(sealed), "{args:?} prints the sealed SP key");
        assert!(
            !out.contains("sp_key_sealed") && !out.contains("PRIVATE KEY"),
            "{args:?}"
        );
    }
    for name in ["okta", "entra"] {
        let s = sealed_sp_key(db, "acme", name);
        assert!(!added.to_string().contains(&s) && !e.to_string().contains(&s));
    }
}

fn removals_and_changes_are_audited(cli: &Cli) {
    let removed = cli.json(&["saml", "remove", "--tenant", "acme", "entra", "--json"]);
    assert_eq!(removed["deleted"], "saml_connection");
    assert_eq!(
        cli.json(&["saml", "list", "--tenant", "acme", "--json"])
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let found = cli.json(&[
        "audit", "search", "--tenant", "acme", "--action", "saml.*", "--json",
    ]);
    let actions: Vec<&str> = found
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "saml.connection.create",
            "saml.connection.create",
            "saml.connection.update",
            "saml.connection.update",
            "saml.connection.update",
            "saml.connection.update",
            "saml.connection.update",
            "saml.connection.delete"
        ]
    );
    assert!(found[0]["actor"].as_str().unwrap().starts_with("cli:"));
    assert!(
        cli.ok(&["audit", "verify", "--tenant", "acme"])
            .contains("intact")
    );
}

#[test]
fn saml_connections_from_the_cli_on_sqlite() {
    saml_connections_from_the_cli(&TestDb::sqlite());
}

#[test]
fn saml_connections_from_the_cli_on_postgres() {
    let Some(db) = TestDb::postgres() else { return };
    saml_connections_from_the_cli(&db);
}

#[test]
fn saml_metadata_that_is_refused_exits_2_naming_the_problem() {
    let db = TestDb::sqlite();
    let cli = Cli::new(&db.url);
    cli.ok(&["tenant", "create", "acme"]);
    let good = cert("IdP", now_ms());
    let expired = cert("Old IdP", T0_MS - 11 * YEAR_MS);
    for (file, xml, why) in [
        (
            "nocert.xml",
            idp_metadata("https://idp.example", &[], &["HTTP-Redirect"]),
            "no signing certificate",
        ),
        (
            "expired.xml",
            idp_metadata("https://idp.example", &[&expired], &["HTTP-Redirect"]),
            "not valid now",
        ),
        (
            "artifact.xml",
            idp_metadata("https://idp.example", &[&good], &["HTTP-Artifact"]),
            "SingleSignOnService",
        ),
        ("garbage.xml", "<not-metadata/>".to_owned(), "EntityDescriptor"),
        (
            "doctype.xml",
            format!(
                "<!DOCTYPE x [<!ENTITY e \"x\">]>{}",
                idp_metadata("https://idp.example", &[&good], &["HTTP-Redirect"])
                    .replace("<?xml version=\"1.0\"?>", "")
            ),
            "forbidden",
        ),
    ] {
        let path = cli.write(file, &xml);
        let err = cli.fails(
            2,
            &[
                "saml",
                "add",
                "--tenant",
                "acme",
                "--name",
                "idp",
                "--metadata-file",
                &path,
            ],
            None,
        );
        assert!(err.contains(why), "{file}: {err}");
    }
    missing_files_and_plain_http_urls_are_refused_leaving_nothing(&cli);
}

fn missing_files_and_plain_http_urls_are_refused_leaving_nothing(cli: &Cli) {
    assert!(
        cli.fails(
            2,
            &[
                "saml",
                "add",
                "--tenant",
                "acme",
                "--name",
                "idp",
                "--metadata-file",
                "/no/such/file"
            ],
            None
        )
        .contains("/no/such/file")
    );
    assert!(
        cli.fails(
            2,
            &[
                "saml",
                "add",
                "--tenant",
                "acme",
                "--name",
                "idp",
                "--metadata-url",
                "http://idp.example/metadata"
            ],
            None
        )
        .contains("https")
    );
    let json_err = cli.fails(
        2,
        &[
            "saml",
            "add",
            "--tenant",
            "acme",
            "--name",
            "idp",
            "--metadata-file",
            "/no/such/file",
            "--json",
        ],
        None,
    );
    assert!(serde_json::from_str::<Value>(json_err.trim()).unwrap()["error"].is_string());
    assert_eq!(
        cli.json(&["saml", "list", "--tenant", "acme", "--json"]),
        serde_json::json!([])
    );
    let found = cli.json(&[
        "audit", "search", "--tenant", "acme", "--action", "saml.*", "--json",
    ]);
    assert_eq!(found, serde_json::json!([]), "refused adds leave nothing");
}

/// A loopback HTTP server answering every request with the current (status, body).
fn metadata_server() -> (String, std::sync::Arc<std::sync::Mutex<(u16, String)>>) {
    use std::io::{BufRead, BufReader};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/metadata", listener.local_addr().unwrap());
    let reply = std::sync::Arc::new(std::sync::Mutex::new((200, String::new())));
    let r = reply.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let (status, body) = r.lock().unwrap().clone();
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Type: application/samlmetadata+xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (url, reply)
}

#[test]
fn saml_metadata_from_a_url_is_refreshed_and_failures_keep_the_last_good() {
    let db = TestDb::sqlite();
    // The stored URL is refreshed under the server's outbound guard: loopback is allowed here.
    let cli = Cli::new(&db.url).with("LATCHKEY_OUTBOUND_ALLOW_PRIVATE", "127.0.0.1");
    cli.ok(&["tenant", "create", "acme"]);
    let (url, reply) = metadata_server();
    let (a, b) = (cert("A", now_ms()), cert("B", now_ms()));
    *reply.lock().unwrap() = (
        200,
        idp_metadata("https://idp.example", &[&a], &["HTTP-Redirect"]),
    );
    let added = cli.json(&[
        "saml",
        "add",
        "--tenant",
        "acme",
        "--name",
        "idp",
        "--metadata-url",
        &url,
        "--json",
    ]);
    assert_eq!(added["metadata"]["source"], "url");
    assert_eq!(added["metadata"]["url"], url.as_str());
    assert!(added["metadata"]["refreshed_at"].is_string());
    assert!(
        added["metadata"]["next_refresh_at"].is_string(),
        "refreshed in an hour"
    );

    // The IdP rolls its key over.
    *reply.lock().unwrap() = (
        200,
        idp_metadata("https://idp.example", &[&a, &b], &["HTTP-Redirect"]),
    );
    let r = cli.json(&["saml", "refresh-metadata", "--tenant", "acme", "idp", "--json"]);
    assert_eq!(r["changed"], true);
    assert_eq!(r["idp"]["certificates"].as_array().unwrap().len(), 2);

    // The IdP breaks: exit 1, the reason recorded, the last good metadata kept.
    *reply.lock().unwrap() = (500, "oops".into());
    let err = cli.fails(1, &["saml", "refresh-metadata", "--tenant", "acme", "idp"], None);
    assert!(err.contains("500"), "{err}");
    *reply.lock().unwrap() = (200, idp_metadata("https://idp.example", &[], &["HTTP-Redirect"]));
    let err = cli.fails(1, &["saml", "refresh-metadata", "--tenant", "acme", "idp"], None);
    assert!(err.contains("no signing certificate"), "{err}");
    let shown = cli.json(&["saml", "show", "--tenant", "acme", "idp", "--json"]);
    assert_eq!(shown["idp"]["certificates"].as_array().unwrap().len(), 2);
    assert!(
        shown["metadata"]["error"]
            .as_str()
            .unwrap()
            .contains("no signing certificate"),
        "{shown}"
    );
    assert!(
        cli.ok(&["saml", "show", "--tenant", "acme", "idp"])
            .contains("no signing certificate")
    );
    // Without the setting the stored loopback URL is refused before anything is fetched,
    // while a URL the operator types (`saml add`, above) may be anywhere.
    let refused = cli
        .cmd(&["saml", "refresh-metadata", "--tenant", "acme", "idp"])
        .env_remove("LATCHKEY_OUTBOUND_ALLOW_PRIVATE")
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("loopback") && err.contains("outbound_allow_private"),
        "{err}"
    );
    switching_to_a_file_stops_the_refreshes(&cli, &b);
}

fn switching_to_a_file_stops_the_refreshes(cli: &Cli, b: &str) {
    // Switching to a file stops the refreshes.
    let file = cli.write(
        "m.xml",
        &idp_metadata("https://idp.example", &[b], &["HTTP-Redirect"]),
    );
    let u = cli.json(&[
        "saml",
        "update",
        "--tenant",
        "acme",
        "idp",
        "--metadata-file",
        &file,
        "--json",
    ]);
    assert_eq!(u["metadata"]["source"], "file");
    assert!(u["metadata"]["next_refresh_at"].is_null());
    assert!(u["metadata"]["error"].is_null(), "new metadata clears the error");

    let found = cli.json(&[
        "audit",
        "search",
        "--tenant",
        "acme",
        "--action",
        "saml.metadata.*",
        "--json",
    ]);
    let outcomes: Vec<&str> = found
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["outcome"].as_str().unwrap())
        .collect();
    // The last failure is the refresh the outbound guard refused.
    assert_eq!(outcomes, ["success", "failure", "failure", "failure"]);
}

/// A command line as one string (no argument in these has a space).
fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

/// Groups, nesting, tenant and client roles assigned to users and groups, and a user's
/// effective access, in order on one database; every change is audited.
fn groups_and_roles_from_the_cli(db: &TestDb) {
    let cli = Cli::new(&db.url);
    cli.ok(&words("tenant create acme"));
    cli.ok(&words("user create --tenant acme --username carol"));
    groups_nest_from_the_cli(&cli);
    let client_id = roles_are_assigned_to_groups_from_the_cli(&cli);
    group_refusals_exit_2_and_change_nothing(&cli, &client_id);
    memberships_and_groups_are_removed_from_the_cli(&cli, &client_id);
}

fn groups_nest_from_the_cli(cli: &Cli) {
    for group in ["staff", "finance", "payroll"] {
        cli.ok(&["group", "create", "--tenant", "acme", group]);
    }
    let made = cli.json(&words(
        "group create --tenant acme auditors --description Read-only --json",
    ));
    assert_eq!(made["path"], "/auditors");
    assert_eq!(made["description"], "Read-only");
    cli.ok(&words("group add-member --tenant acme staff --group finance"));
    let added = cli.json(&words(
        "group add-member --tenant acme finance --group payroll --json",
    ));
    assert_eq!(added["added"]["kind"], "group");
    cli.ok(&words("group add-member --tenant acme payroll --user carol"));
    let listed = cli.json(&words("group list --tenant acme --json"));
    let paths: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        ["/auditors", "/staff", "/staff/finance", "/staff/finance/payroll"]
    );
    assert!(
        cli.ok(&words("group list --tenant acme"))
            .contains("/staff/finance/payroll")
    );
}

/// Returns the client id of the client whose role is assigned.
fn roles_are_assigned_to_groups_from_the_cli(cli: &Cli) -> String {
    cli.ok(&words("role create --tenant acme employee"));
    let client = cli.json(&words(
        "client create --tenant acme --name Reporting --redirect-uri https://reports.acme.test/cb --json",
    ));
    let id = client["client_id"].as_str().unwrap().to_owned();
    let made = cli.json(&words(&format!(
        "role create --tenant acme reports:read --client {id} --json"
    )));
    assert_eq!(made["client_id"], id.as_str());
    let of_client = cli.json(&words(&format!("role list --tenant acme --client {id} --json")));
    assert_eq!(of_client.as_array().unwrap().len(), 1);
    let of_tenant = cli.json(&words("role list --tenant acme --json"));
    assert_eq!(
        of_tenant.as_array().unwrap().len(),
        1,
        "client roles are not tenant roles"
    );
    cli.ok(&words("role assign --tenant acme employee --group staff"));
    cli.ok(&words(&format!(
        "role assign --tenant acme reports:read --client {id} --group finance"
    )));

    let access = cli.json(&words("role effective --tenant acme carol --json"));
    assert_eq!(access["roles"], serde_json::json!(["employee"]));
    assert_eq!(access["client_roles"][&id], serde_json::json!(["reports:read"]));
    let groups: Vec<&str> = access["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["path"].as_str().unwrap())
        .collect();
    assert_eq!(groups, ["/staff", "/staff/finance", "/staff/finance/payroll"]);

    let shown = cli.json(&words("group show --tenant acme finance --json"));
    assert_eq!(shown["path"], "/staff/finance");
    assert_eq!(shown["groups"], serde_json::json!(["/staff/finance/payroll"]));
    assert_eq!(shown["client_roles"][0]["name"], "reports:read");
    id
}

fn group_refusals_exit_2_and_change_nothing(cli: &Cli, client_id: &str) {
    // Exporting the chain is itself audited (`audit.export`): count the other events.
    let changes = || {
        cli.audit_actions("acme")
            .into_iter()
            .filter(|a| !a.starts_with("audit."))
            .count()
    };
    let before = changes();
    let refused = |line: &str| cli.fails(2, &words(line), None);
    let cycle = refused("group add-member --tenant acme payroll --group staff --json");
    let error: Value = serde_json::from_str(&cycle).unwrap();
    assert!(error["error"].as_str().unwrap().contains("cycle"), "{cycle}");
    assert!(refused("group add-member --tenant acme staff --group staff").contains("itself"));
    assert!(
        refused("group add-member --tenant acme auditors --group payroll")
            .contains("already in another group")
    );
    assert!(refused("group create --tenant acme staff").contains("already exists"));
    assert!(refused("group create --tenant acme a/b").contains("'/'"));
    assert!(refused("group add-member --tenant acme staff --user nobody").contains("nobody"));
    // Exactly one of --user and --group.
    refused("group add-member --tenant acme staff");
    refused("role assign --tenant acme employee --user carol --group staff");
    // A client role is found only under its client.
    assert!(refused("role assign --tenant acme reports:read --user carol").contains("reports:read"));
    let dup = refused(&format!(
        "role create --tenant acme reports:read --client {client_id}"
    ));
    assert!(dup.contains("already has a role"), "{dup}");
    refused("role create --tenant acme read --client no-such-client");
    refused("role assign --tenant acme employee --group staff");
    refused("role unassign --tenant acme employee --user carol");
    assert_eq!(changes(), before, "a refusal wrote an audit event");
}

fn memberships_and_groups_are_removed_from_the_cli(cli: &Cli, client_id: &str) {
    // Taking finance out of staff ends the inherited tenant role at once.
    cli.ok(&words("group remove-member --tenant acme staff --group finance"));
    let access = cli.json(&words("role effective --tenant acme carol --json"));
    assert_eq!(access["roles"], serde_json::json!([]));
    cli.ok(&words(&format!(
        "role unassign --tenant acme reports:read --client {client_id} --group finance"
    )));
    let renamed = cli.json(&words("group update --tenant acme finance --name money --json"));
    assert_eq!(renamed["path"], "/money");
    cli.ok(&words("group remove-member --tenant acme payroll --user carol"));
    cli.ok(&words("group remove --tenant acme money"));
    assert_eq!(
        cli.json(&words("group show --tenant acme payroll --json"))["path"],
        "/payroll"
    );
    let actions = cli.audit_actions("acme");
    for action in [
        "group.create",
        "group.add_member",
        "group.remove_member",
        "group.update",
        "group.delete",
        "client_role.create",
        "role.assign",
        "role.unassign",
        "user.read_access",
    ] {
        assert!(
            actions.iter().any(|a| a == action),
            "{action} is not audited: {actions:?}"
        );
    }
    cli.ok(&words("audit verify --tenant acme"));
}

#[test]
fn groups_and_roles_from_the_cli_on_sqlite() {
    groups_and_roles_from_the_cli(&TestDb::sqlite());
}

#[test]
fn groups_and_roles_from_the_cli_on_postgres() {
    let Some(db) = TestDb::postgres() else { return };
    groups_and_roles_from_the_cli(&db);
}
