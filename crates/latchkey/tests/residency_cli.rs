//! Residency from the operator's side (docs/residency.md), with the real binary on two
//! PostgreSQL databases standing for regions A (home) and B: `tenant create --region`, a slug
//! refused when another region has it, tenant commands finding the tenant's region, backups of
//! one region, and `tenant move`: nothing without confirmation; with `--yes` the rows move, the
//! chain verifies with the `tenant.move` event, and the old region keeps none of them.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use latchkey_keys::MasterKey;
use latchkey_store::TenantRepo;
use latchkey_tests::TestDb;
use std::process::{Command, Output, Stdio};

struct Regions<'a> {
    a: &'a TestDb,
    b: &'a TestDb,
    master: String,
}

impl Regions<'_> {
    fn run(&self, args: &[&str]) -> Output {
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
            .env("LATCHKEY_DATABASE_URL", &self.a.url)
            .env("LATCHKEY_REGION", "a")
            .env("LATCHKEY_REGIONS", format!("b={}", self.b.url))
            .env("LATCHKEY_MASTER_KEY", &self.master)
            .env("LATCHKEY_LOG", "error")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            !String::from_utf8_lossy(&out.stderr).contains("panicked"),
            "{args:?}: {out:?}"
        );
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

    fn refused(&self, args: &[&str], why: &str) {
        let out = self.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(why), "{args:?}: {stderr}");
    }
}

#[test]
fn a_tenant_lives_in_its_region_and_moves_only_when_confirmed() {
    let (Some(a), Some(b)) = (TestDb::postgres(), TestDb::postgres()) else {
        return;
    };
    let r = Regions {
        a: &a,
        b: &b,
        master: MasterKey::generate().unwrap().to_base64(),
    };
    r.ok(&["tenant", "create", "acme", "--region", "b"]);
    assert!(a.db.tenant_by_slug("acme").unwrap().is_none());
    let t = b.db.tenant_by_slug("acme").unwrap().unwrap();
    r.refused(&["tenant", "create", "acme"], "already exists (in region b)");
    r.refused(
        &["tenant", "create", "acme", "--region", "b"],
        "already exists (in region b)",
    );
    r.refused(
        &["tenant", "create", "other", "--region", "mars"],
        "no region \"mars\"",
    );

    let listed = r.ok(&["tenant", "list"]);
    assert!(
        listed.contains("acme") && listed.trim_end().ends_with("\tb"),
        "{listed}"
    );

    // Tenant commands find the region by themselves.
    r.ok(&["user", "create", "--tenant", "acme", "--username", "alice"]);
    assert!(r.ok(&["user", "list", "--tenant", "acme"]).contains("alice"));
    assert!(
        r.ok(&["audit", "verify", "--tenant", "acme"])
            .contains("is intact")
    );

    // A backup covers one region: its summary counts that region's rows only.
    let dir = tempfile::tempdir().unwrap();
    let rows_of = |args: &[&str], table: &str| -> u64 {
        let summary: serde_json::Value = serde_json::from_str(&r.ok(args)).unwrap();
        summary["tables"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t[0] == table)
            .map_or(0, |t| t[1].as_u64().unwrap())
    };
    let (in_a, in_b) = (dir.path().join("a.lkb"), dir.path().join("b.lkb"));
    let a_args = ["backup", "-o", in_a.to_str().unwrap(), "--json"];
    let b_args = ["backup", "--region", "b", "-o", in_b.to_str().unwrap(), "--json"];
    assert_eq!(
        rows_of(&a_args, "users"),
        0,
        "region A's backup holds acme's user"
    );
    assert_eq!(
        rows_of(&b_args, "users"),
        1,
        "region B's backup lacks acme's user"
    );

    // Without --yes (and no terminal to ask on) nothing moves.
    r.refused(&["tenant", "move", "--tenant", "acme", "--to", "a"], "add --yes");
    assert!(a.db.tenant_by_slug("acme").unwrap().is_none());
    assert!(!b.db.tenant_rows(&t.id).unwrap().is_empty());
    r.refused(
        &["tenant", "move", "--tenant", "acme", "--to", "b", "--yes"],
        "already in region b",
    );

    let moved = r.ok(&[
        "tenant", "move", "--tenant", "acme", "--to", "a", "--yes", "--json",
    ]);
    let report: serde_json::Value = serde_json::from_str(&moved).unwrap();
    assert_eq!(report["from"], "b");
    assert_eq!(report["to"], "a");
    assert_eq!(report["rows"]["users"], 1);
    assert!(
        b.db.tenant_rows(&t.id).unwrap().is_empty(),
        "region B kept rows of acme"
    );
    assert_eq!(a.db.tenant_by_slug("acme").unwrap().unwrap().id, t.id);
    let verified = r.ok(&["audit", "verify", "--tenant", "acme"]);
    assert!(verified.contains("is intact"), "{verified}");
    let events = r.ok(&["audit", "export", "--tenant", "acme", "--format", "jsonl"]);
    let last = events.lines().last().unwrap();
    assert!(last.contains("tenant.move"), "{last}");
    assert!(r.ok(&["user", "list", "--tenant", "acme"]).contains("alice"));
}
