//! `latchkey apply` and `latchkey export` as an operator runs them (the real binary, SQLite and
//! PostgreSQL): the documented example with secrets from the environment and a file, the plan
//! as a diff and as JSON, idempotence, `--prune`, `--create-tenant`, refusals with exit 2, and a
//! SAML connection made from a file.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use latchkey_tests::TestDb;
use serde_json::Value;
use std::process::{Command, Output};

const EXAMPLE: &str = include_str!("../../../docs/examples/tenant.yaml");

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
            .env("PORTAL_SECRET", "p".repeat(40))
            .env("EXPORT_SECRET", "e".repeat(40));
        for (k, _) in std::env::vars() {
            if k.starts_with("LATCHKEY_") && k != "LATCHKEY_DATABASE_URL" {
                c.env_remove(k);
            }
        }
        let out = c.output().unwrap();
        assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
        out
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
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

    fn write(&self, name: &str, text: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }
}

// One operator session in order: each step starts from what the one before left.
#[allow(clippy::too_many_lines)]
fn tenants_as_code_from_the_cli(db: &TestDb) {
    let cli = Cli {
        url: db.url.clone(),
        dir: tempfile::tempdir().unwrap(),
    };
    let file = cli.write("tenant.yaml", EXAMPLE);
    // A missing tenant is created only when asked.
    assert!(cli.fails(&["apply", "-f", &file]).contains("--create-tenant"));
    let plan = cli.ok(&["apply", "-f", &file, "--create-tenant", "--dry-run"]);
    assert!(plan.starts_with("+ tenant acme\n"), "{plan}");
    assert!(
        plan.contains("+ group finance\n") && plan.contains("dry run: nothing changed"),
        "{plan}"
    );
    assert!(
        cli.fails(&["apply", "-f", &file]).contains("no tenant"),
        "the dry run made nothing"
    );
    let applied = cli.ok(&["apply", "-f", &file, "--create-tenant"]);
    assert!(applied.contains("applied 16 changes"), "{applied}");
    assert!(
        !applied.contains("client_secret"),
        "every secret came by reference: {applied}"
    );
    assert_eq!(cli.ok(&["apply", "-f", &file]), "no changes\n");
    // The export applies as itself; JSON works too.
    let exported = cli.write("export.yaml", "");
    cli.ok(&["export", "--tenant", "acme", "-o", &exported]);
    assert_eq!(cli.ok(&["apply", "-f", &exported]), "no changes\n");
    let json = cli.ok(&["export", "--tenant", "acme", "--format", "json"]);
    let json_file = cli.write("export.json", &json);
    let v: Value = serde_json::from_str(&cli.ok(&["apply", "-f", &json_file, "--json"])).unwrap();
    assert_eq!(
        (v["changes"].clone(), v["applied"].clone()),
        (Value::Array(vec![]), 0.into())
    );
    assert!(!json.contains("\"client_secret\""));
    // A change and a removal: the plan as a diff, the removal kept without --prune.
    let changed = EXAMPLE
        .replace("  - name: contractors\n", "")
        .replace("min_length: 14", "min_length: 16")
        .replace(
            "https://dash.acme.example/callback",
            "https://dash.acme.example/cb",
        );
    let changed_text = changed;
    let changed = cli.write("changed.yaml", &changed_text);
    let v: Value = serde_json::from_str(&cli.ok(&["apply", "-f", &changed, "--dry-run", "--json"])).unwrap();
    let lines: Vec<&str> = v["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["line"].as_str().unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0], "~ tenant acme: policy (password)");
    assert!(
        lines[1].starts_with("~ client Dashboard: redirect_uris"),
        "{lines:?}"
    );
    assert_eq!(
        v["kept"][0]["line"],
        "- group contractors (kept: not in file; use --prune)"
    );
    let out = cli.ok(&["apply", "-f", &changed]);
    assert!(
        out.contains("(kept: not in file; use --prune)") && out.contains("applied 2 changes"),
        "{out}"
    );
    let out = cli.ok(&["apply", "-f", &changed, "--prune"]);
    assert_eq!(out, "- group contractors\napplied 1 changes\n");
    assert!(
        !cli.ok(&["group", "list", "--tenant", "acme"])
            .contains("contractors")
    );
    // A secret from a file next to the tenant file; a new client without one gets one, once.
    cli.write("batch.secret", &format!("{}\n", "b".repeat(40)));
    let with_file = format!(
        "{changed_text}  - name: Batch\n    grant_types: [client_credentials]\n    require_pkce: false\n    client_secret: {{file: batch.secret}}\n  - name: Other\n    grant_types: [client_credentials]\n    require_pkce: false\n"
    );
    let with_file = cli.write("with-file.yaml", &with_file);
    let out = cli.ok(&["apply", "-f", &with_file]);
    assert!(
        out.contains("+ client Batch") && out.contains("client Other: client_secret "),
        "{out}"
    );
    assert!(!out.contains("client Batch: client_secret"), "{out}");
    assert_eq!(cli.ok(&["apply", "-f", &with_file]), "no changes\n");
    // Refusals, exit 2: a secret in clear (named where), an unknown field, an unset variable.
    let clear = cli.write(
        "clear.yaml",
        "tenant: acme\nclients:\n  - name: P\n    client_secret: s3cr3t-s3cr3t-s3cr3t\n",
    );
    let e = cli.fails(&["apply", "-f", &clear]);
    assert!(
        e.contains("clients[0].client_secret") && !e.contains("s3cr3t"),
        "{e}"
    );
    let unknown = cli.write("unknown.yaml", "tenant: acme\nusers: []\n");
    assert!(cli.fails(&["apply", "-f", &unknown]).contains("users"));
    let unset = cli.write(
        "unset.yaml",
        "tenant: acme\nclients:\n  - name: P\n    client_secret: {env: LK_TEST_UNSET}\n",
    );
    assert!(
        cli.fails(&["apply", "-f", &unset])
            .contains("LK_TEST_UNSET is not set")
    );
    cli.write("short.secret", "short");
    let weak = cli.write(
        "weak.yaml",
        "tenant: acme\nclients:\n  - name: P\n    client_secret: {file: short.secret}\n",
    );
    assert!(cli.fails(&["apply", "-f", &weak]).contains("shorter than 32"));
    assert!(
        cli.fails(&["apply", "-f", "missing.yaml"])
            .contains("missing.yaml")
    );
}

#[test]
fn tenants_as_code_on_sqlite() {
    tenants_as_code_from_the_cli(&TestDb::sqlite());
}

#[test]
fn tenants_as_code_on_postgres() {
    let Some(db) = TestDb::postgres() else { return };
    tenants_as_code_from_the_cli(&db);
}

/// A tenant file with one SAML connection from inline metadata (a fresh certificate).
fn saml_file() -> String {
    let now = i64::try_from(std::time::SystemTime::UNIX_EPOCH.elapsed().unwrap().as_millis()).unwrap();
    let cert = latchkey_saml::generate_sp_key("Test IdP signing", now)
        .unwrap()
        .certificate;
    format!(
        r#"tenant: acme
roles:
  - name: employee
saml_connections:
  - name: corp
    metadata_xml: |
      <md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="https://idp.acme.test/saml">
        <md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
          <md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
          <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.acme.test/sso"/>
        </md:IDPSSODescriptor>
      </md:EntityDescriptor>
    options: {{domains: [acme.test], role_map: [[admins, employee]]}}
"#
    )
}

/// A SAML connection from the CLI: made with an SP key sealed by the CLI's key ring, applied
/// twice with no change, exported without the SP key, and the export applies as no change.
fn saml_connection_from_the_cli(db: &TestDb) {
    let cli = Cli {
        url: db.url.clone(),
        dir: tempfile::tempdir().unwrap(),
    };
    let file = cli.write("tenant.yaml", &saml_file());
    let out = cli.ok(&["apply", "-f", &file, "--create-tenant"]);
    assert!(
        out.contains("+ saml_connection corp (https://idp.acme.test/saml)\n"),
        "{out}"
    );
    assert!(cli.ok(&["apply", "-f", &file]).ends_with("no changes\n"));
    let exported = cli.ok(&["export", "--tenant", "acme"]);
    assert!(
        exported.contains("metadata_xml") && !exported.contains("sp_"),
        "{exported}"
    );
    let back = cli.write("export.yaml", &exported);
    let again = cli.ok(&["apply", "-f", &back]);
    assert!(again.ends_with("no changes\n"), "{again}");
}

#[test]
fn saml_connection_on_sqlite() {
    saml_connection_from_the_cli(&TestDb::sqlite());
}

#[test]
fn saml_connection_on_postgres() {
    let Some(db) = TestDb::postgres() else { return };
    saml_connection_from_the_cli(&db);
}

/// The system scope and the commands added for API parity, as an operator runs them: a tenant
/// with its first admin token, a refused first role leaving no tenant, system tokens, a user's
/// grants, one factor removed, a test token, the system audit chain verified.
fn system_scope_and_parity_commands(db: &TestDb) {
    let cli = Cli {
        url: db.url.clone(),
        dir: tempfile::tempdir().unwrap(),
    };
    cli.ok(&["migrate"]);
    let err = cli.fails(&[
        "tenant",
        "create",
        "beta",
        "--admin-token",
        "ci",
        "--admin-role",
        "system-admin",
    ]);
    assert!(err.contains("not a built-in tenant role"), "{err}");
    assert!(!cli.ok(&["tenant", "list"]).contains("beta"), "no tenant made");
    let made: Value =
        serde_json::from_str(&cli.ok(&["tenant", "create", "acme", "--admin-token", "ci", "--json"]))
            .unwrap();
    assert!(
        made["admin_credential"]["token"]
            .as_str()
            .unwrap()
            .starts_with("lka_"),
        "{made}"
    );
    assert_eq!(made["admin_credential"]["roles"][0], "tenant-admin");
    let sys: Value = serde_json::from_str(&cli.ok(&[
        "system-token",
        "create",
        "--name",
        "ops",
        "--role",
        "system-admin",
        "--json",
    ]))
    .unwrap();
    assert!(sys["token"].as_str().unwrap().starts_with("lks_"), "{sys}");
    let err = cli.fails(&[
        "system-token",
        "create",
        "--name",
        "x",
        "--permission",
        "users:read",
    ]);
    assert!(err.contains("tenant permission"), "{err}");
    assert!(cli.ok(&["system-token", "list"]).contains("ops"));
    cli.ok(&["user", "create", "--tenant", "acme", "--username", "alice"]);
    assert_eq!(
        cli.ok(&["user", "grants", "list", "--tenant", "acme", "alice", "--json"])
            .trim(),
        "[]"
    );
    let revoked: Value =
        serde_json::from_str(&cli.ok(&["user", "grants", "revoke", "--tenant", "acme", "alice", "--json"]))
            .unwrap();
    assert_eq!(revoked["grants_revoked"], 0);
    let err = cli.fails(&[
        "user",
        "mfa",
        "remove",
        "--tenant",
        "acme",
        "--username",
        "alice",
        "--factor",
        "totp",
    ]);
    assert!(err.contains("second factor"), "{err}");
    let jwt = cli.ok(&["keys", "test-token", "--tenant", "acme"]);
    assert_eq!(jwt.trim().split('.').count(), 3, "{jwt}");
    assert!(
        cli.ok(&["audit", "verify", "--tenant", "system"])
            .contains("intact")
    );
}

#[test]
fn system_scope_on_sqlite() {
    system_scope_and_parity_commands(&TestDb::sqlite());
}

#[test]
fn system_scope_on_postgres() {
    let Some(db) = TestDb::postgres() else { return };
    system_scope_and_parity_commands(&db);
}
