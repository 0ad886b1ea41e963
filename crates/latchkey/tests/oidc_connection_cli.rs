//! `latchkey oidc-connection` as an operator runs it (the real binary, SQLite and PostgreSQL),
//! against a small OpenID provider on loopback: connecting with the secret from the environment
//! or a file (never an argument), what `show` prints for the upstream's administrator, refusals
//! with exit 2 that leave nothing, updates of only the flags given, a refresh under the
//! server's outbound guard that follows a key rotation and keeps the last good discovery when
//! the provider breaks, and removal; the secret is in no output.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use latchkey_tests::TestDb;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

const SECRET: &str = "upstream-client-secret-0123456789";

/// What the provider serves: the key id of its JWK Set, or a failure status for everything.
struct Served {
    kid: String,
    broken: Option<u16>,
}

/// An OpenID provider on loopback serving its discovery document (issuer `http://127.0.0.1:PORT`)
/// and JWK Set; returns its issuer and what it serves.
fn provider() -> (String, Arc<Mutex<Served>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let served = Arc::new(Mutex::new(Served {
        kid: "k1".into(),
        broken: None,
    }));
    let (me, state) = (issuer.clone(), served.clone());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request = String::new();
            let _ = reader.read_line(&mut request);
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let (status, body) = answer(&me, &request, &state.lock().unwrap());
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (issuer, served)
}

fn answer(issuer: &str, request: &str, served: &Served) -> (u16, String) {
    if let Some(status) = served.broken {
        return (status, "{}".into());
    }
    let path = request.split_whitespace().nth(1).unwrap_or_default();
    match path {
        "/.well-known/openid-configuration" => (
            200,
            json!({
                "issuer": issuer,
                "authorization_endpoint": format!("{issuer}/authorize"),
                "token_endpoint": format!("{issuer}/token"),
                "userinfo_endpoint": format!("{issuer}/userinfo"),
                "jwks_uri": format!("{issuer}/jwks"),
                "id_token_signing_alg_values_supported": ["RS256"],
            })
            .to_string(),
        ),
        // RFC 7517 A.1's RSA public key.
        "/jwks" => (
            200,
            json!({"keys": [{
                "kty": "RSA", "alg": "RS256", "use": "sig", "kid": served.kid, "e": "AQAB",
                "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            }]})
            .to_string(),
        ),
        _ => (404, "{}".into()),
    }
}

struct Cli {
    url: String,
    dir: tempfile::TempDir,
}

impl Cli {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_latchkey"));
        c.args(args)
            .current_dir(self.dir.path())
            .env("LATCHKEY_DATABASE_URL", &self.url)
            .env("UPSTREAM_SECRET", SECRET);
        for (k, _) in std::env::vars() {
            if k.starts_with("LATCHKEY_") && k != "LATCHKEY_DATABASE_URL" {
                c.env_remove(k);
            }
        }
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        let out = self.cmd(args).output().unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(
            !stdout.contains(SECRET) && !stderr.contains(SECRET),
            "{args:?} printed the secret"
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

    fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&self.ok(args)).unwrap()
    }

    /// Runs a command that must fail with `code`; returns stderr.
    fn fails(&self, code: i32, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(code),
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

    fn names(&self) -> Vec<String> {
        self.json(&["oidc-connection", "list", "--tenant", "acme", "--json"])
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_owned())
            .collect()
    }
}

fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

/// The whole session in order on one database.
fn oidc_connections_from_the_cli(db: &TestDb) {
    let cli = Cli {
        url: db.url.clone(),
        dir: tempfile::tempdir().unwrap(),
    };
    cli.ok(&["tenant", "create", "acme"]);
    cli.ok(&["role", "create", "--tenant", "acme", "admin"]);
    cli.ok(&["group", "create", "--tenant", "acme", "staff"]);
    let (issuer, served) = provider();
    a_connection_is_discovered_and_shown(db, &cli, &issuer);
    refusals_exit_2_and_leave_nothing(&cli, &issuer);
    private_key_jwt_and_oauth2_connections_are_added(&cli, &issuer);
    updates_change_only_the_flags_given(db, &cli);
    refresh_follows_the_provider_under_the_guard(&cli, &served);
    let removed = cli.json(&["oidc-connection", "remove", "--tenant", "acme", "okta", "--json"]);
    assert_eq!(removed["deleted"], "oidc_connection");
    assert_eq!(cli.names(), ["github", "signed"]);
    let audited = cli.json(&[
        "audit",
        "search",
        "--tenant",
        "acme",
        "--action",
        "oidc.connection.*",
        "--json",
    ]);
    let actions: Vec<&str> = audited
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "oidc.connection.create",
            "oidc.connection.create",
            "oidc.connection.create",
            "oidc.connection.update",
            "oidc.connection.update",
            "oidc.connection.delete"
        ]
    );
}

fn a_connection_is_discovered_and_shown(db: &TestDb, cli: &Cli, issuer: &str) {
    use latchkey_store::{TenantRepo, UpstreamRepo};
    let added = cli.json(&words(&format!(
        "oidc-connection add --tenant acme --name okta --issuer {issuer} --client-id portal \
         --client-secret-env UPSTREAM_SECRET --domain acme.example --role-map Admins=admin \
         --group-map eng=staff --map-groups groups --json"
    )));
    assert_eq!(added["kind"], "oidc");
    assert_eq!(added["display_name"], "okta");
    assert_eq!(added["scopes"], json!(["openid", "email", "profile"]));
    assert_eq!(
        added["redirect_uri"],
        "http://localhost:8080/t/acme/federation/okta/callback"
    );
    assert!(added["jwks_url"].is_null() && added["public_jwk"].is_null());
    let found = &added["discovery"]["found"];
    assert_eq!(found["issuer"], issuer);
    assert_eq!(found["key_ids"], json!(["k1"]));
    assert_eq!(found["token_endpoint"], format!("{issuer}/token"));
    assert!(added["discovery"]["next_refresh_at"].is_string());
    assert_eq!(added["options"]["role_map"], json!([["Admins", "admin"]]));
    let t = db.db.tenant_by_slug("acme").unwrap().unwrap();
    let stored = db.db.oidc_connection_by_name(&t.id, "okta").unwrap().unwrap();
    assert!(!stored.secret_sealed.is_empty() && !stored.secret_sealed.contains(SECRET));

    let shown = cli.ok(&["oidc-connection", "show", "--tenant", "acme", "okta"]);
    for expected in [
        "http://localhost:8080/t/acme/federation/okta/callback",
        "k1",
        "acme.example",
        "Admins=admin",
        "eng=staff",
    ] {
        assert!(shown.contains(expected), "{expected}: {shown}");
    }
    let listed = cli.ok(&["oidc-connection", "list", "--tenant", "acme"]);
    assert!(listed.starts_with("okta\tokta\toidc\t"), "{listed}");
}

fn refusals_exit_2_and_leave_nothing(cli: &Cli, issuer: &str) {
    let add = |extra: &str| {
        format!("oidc-connection add --tenant acme --name other --issuer {issuer} --client-id c {extra}")
    };
    for (extra, says) in [
        ("", "--client-secret-file"),
        ("--client-secret-env NOT_SET_ANYWHERE", "NOT_SET_ANYWHERE"),
        ("--client-secret-file /no/such/file", "/no/such/file"),
        (
            "--client-secret-env UPSTREAM_SECRET --role-map x=no-such-role",
            "no-such-role",
        ),
        (
            "--client-secret-env UPSTREAM_SECRET --role-map nonsense",
            "--role-map",
        ),
        (
            "--client-secret-env UPSTREAM_SECRET --domain acme.example",
            "acme.example",
        ),
        ("--client-secret-env UPSTREAM_SECRET --scope email", "openid"),
        (
            "--client-secret-env UPSTREAM_SECRET --token-endpoint https://x.example/t",
            "--kind oauth2",
        ),
        (
            "--client-auth private_key_jwt --client-secret-env UPSTREAM_SECRET",
            "no client secret",
        ),
        (
            "--client-secret-env UPSTREAM_SECRET --client-secret x",
            "--client-secret",
        ),
    ] {
        let err = cli.fails(2, &words(&add(extra)));
        assert!(err.contains(says), "{extra}: {err}");
    }
    // A discovery document naming another issuer is refused with the reason.
    let err = cli.fails(
        2,
        &words(&format!(
            "oidc-connection add --tenant acme --name other --issuer https://login.example.test \
             --discovery-url {issuer}/.well-known/openid-configuration --client-id c \
             --client-secret-env UPSTREAM_SECRET"
        )),
    );
    assert!(err.contains("names issuer") && err.contains(issuer), "{err}");
    // Nobody answers: a runtime failure.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    cli.fails(
        1,
        &words(&format!(
            "oidc-connection add --tenant acme --name other --issuer http://127.0.0.1:{closed} \
             --client-id c --client-secret-env UPSTREAM_SECRET"
        )),
    );
    assert_eq!(cli.names(), ["okta"]);
}

fn private_key_jwt_and_oauth2_connections_are_added(cli: &Cli, issuer: &str) {
    let signed = cli.json(&words(&format!(
        "oidc-connection add --tenant acme --name signed --issuer {issuer} --client-id c \
         --client-auth client_secret_post --client-secret-env UPSTREAM_SECRET --scope openid --json"
    )));
    assert_eq!(signed["client_auth"], "client_secret_post");
    assert_eq!(signed["scopes"], json!(["openid"]));
    let secret_file = cli.write("github.secret", &format!("{SECRET}\n"));
    let github = cli.json(&[
        "oidc-connection",
        "add",
        "--tenant",
        "acme",
        "--name",
        "github",
        "--display-name",
        "GitHub",
        "--kind",
        "oauth2",
        "--issuer",
        "https://github.com",
        "--client-id",
        "Iv1.example",
        "--client-secret-file",
        &secret_file,
        "--authorization-endpoint",
        "https://github.com/login/oauth/authorize",
        "--token-endpoint",
        "https://github.com/login/oauth/access_token",
        "--userinfo-endpoint",
        "https://api.github.com/user",
        "--map-subject",
        "id",
        "--scope",
        "read:user",
        "--json",
    ]);
    assert_eq!(github["options"]["mapping"]["subject"], "id");
    assert_eq!(github["scopes"], json!(["read:user"]));
    assert!(github["discovery"]["found"].is_null() && github["discovery_url"].is_null());
    assert_eq!(
        github["endpoints"]["userinfo_endpoint"],
        "https://api.github.com/user"
    );
    let err = cli.fails(2, &["oidc-connection", "refresh", "--tenant", "acme", "github"]);
    assert!(err.contains("nothing to discover"), "{err}");
    // Moving a connection to private_key_jwt makes a key; its public half is shown.
    let keyed = cli.json(&words(
        "oidc-connection update --tenant acme signed --client-auth private_key_jwt --json",
    ));
    assert_eq!(keyed["public_jwk"]["kty"], "RSA");
    assert!(keyed["public_jwk"].get("d").is_none());
    assert_eq!(
        keyed["jwks_url"],
        "http://localhost:8080/t/acme/federation/signed/jwks"
    );
    let shown = cli.ok(&["oidc-connection", "show", "--tenant", "acme", "signed"]);
    assert!(
        shown.contains("/federation/signed/jwks") && shown.contains("\"kty\":\"RSA\""),
        "{shown}"
    );
}

fn updates_change_only_the_flags_given(db: &TestDb, cli: &Cli) {
    use latchkey_store::{TenantRepo, UpstreamRepo};
    let t = db.db.tenant_by_slug("acme").unwrap().unwrap();
    let before = db.db.oidc_connection_by_name(&t.id, "okta").unwrap().unwrap();
    let secret_file = cli.write("new.secret", "a-new-upstream-secret\r\n");
    let after = cli.json(&[
        "oidc-connection",
        "update",
        "--tenant",
        "acme",
        "okta",
        "--display-name",
        "Acme Okta",
        "--no-jit",
        "--link-existing",
        "--client-secret-file",
        &secret_file,
        "--json",
    ]);
    assert_eq!(after["display_name"], "Acme Okta");
    let o = &after["options"];
    assert_eq!((&o["jit"], &o["link_existing"]), (&json!(false), &json!(true)));
    assert_eq!(o["domains"], json!(["acme.example"]), "what was not given stays");
    assert_eq!(o["group_map"], json!([["eng", "staff"]]));
    assert_eq!(o["mapping"]["groups"], "groups");
    let stored = db.db.oidc_connection_by_name(&t.id, "okta").unwrap().unwrap();
    assert_ne!(
        stored.secret_sealed, before.secret_sealed,
        "the secret was replaced"
    );
    assert_eq!(stored.discovered, before.discovered, "no new discovery");
    let err = cli.fails(
        2,
        &words("oidc-connection update --tenant acme okta --group-map eng=ghosts"),
    );
    assert!(err.contains("ghosts"), "{err}");
    let err = cli.fails(2, &words("oidc-connection show --tenant acme ghost"));
    assert!(err.contains("no OpenID Connect connection \"ghost\""), "{err}");
}

fn refresh_follows_the_provider_under_the_guard(cli: &Cli, served: &Mutex<Served>) {
    let refresh = ["oidc-connection", "refresh", "--tenant", "acme", "okta", "--json"];
    // The stored URL is fetched under the server's outbound guard: loopback is refused...
    let err = cli.fails(1, &refresh);
    assert!(err.contains("loopback"), "{err}");
    // ...unless the operator allows it.
    let allowed = |args: &[&str]| {
        cli.cmd(args)
            .env("LATCHKEY_OUTBOUND_ALLOW_PRIVATE", "127.0.0.1")
            .output()
            .unwrap()
    };
    served.lock().unwrap().kid = "k2".into();
    let out = allowed(&refresh);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["changed"], true);
    assert_eq!(r["discovery"]["found"]["key_ids"], json!(["k2"]));
    assert!(r["discovery"]["error"].is_null());
    // The provider breaks: exit 1, the error recorded, the last good discovery kept.
    served.lock().unwrap().broken = Some(500);
    let out = allowed(&refresh);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("500"));
    let shown = cli.json(&["oidc-connection", "show", "--tenant", "acme", "okta", "--json"]);
    assert_eq!(shown["discovery"]["found"]["key_ids"], json!(["k2"]));
    assert_eq!(shown["discovery"]["error"], "the URL could not be fetched");
    served.lock().unwrap().broken = None;
}

#[test]
fn oidc_connections_from_the_cli_on_sqlite() {
    oidc_connections_from_the_cli(&TestDb::sqlite());
}

#[test]
fn oidc_connections_from_the_cli_on_postgres() {
    let Some(db) = TestDb::postgres() else { return };
    oidc_connections_from_the_cli(&db);
}
