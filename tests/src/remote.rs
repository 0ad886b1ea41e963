//! A relying party driving a Latchkey reached at a URL (a process, or a load balancer in front
//! of several): the code flow as a browser walks it (sign-in form, consent), and the token and
//! introspection calls of a confidential client registered by the CLI.

#![allow(clippy::unwrap_used, clippy::missing_panics_doc, clippy::missing_errors_doc)] // test kit

use crate::browser::{Browser, PASSWORD, hidden};
use crate::{Remote, Site, TestServer};

use serde_json::Value;

pub const REDIRECT: &str = "http://127.0.0.1:8000/cb";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

/// A confidential client of tenant `acme` (`client_secret_basic`).
pub struct Portal {
    pub id: String,
    pub secret: String,
}

/// The `latchkey` arguments that register the portal (first party, code + refresh, allowed to
/// introspect others' tokens); their `--json` answer is read by [`Portal::from_json`].
pub const REGISTER_PORTAL: &[&str] = &[
    "client",
    "create",
    "--tenant",
    "acme",
    "--name",
    "portal",
    "--first-party",
    "--redirect-uri",
    REDIRECT,
    "--grant",
    "authorization_code",
    "--grant",
    "refresh_token",
    "--scope",
    "openid",
    "--scope",
    "offline_access",
    "--introspect-others",
    "--json",
];

impl Portal {
    pub fn from_json(answer: &str) -> Portal {
        let created: Value = serde_json::from_str(answer).unwrap();
        Portal {
            id: created["client_id"].as_str().unwrap().to_owned(),
            secret: created["client_secret"].as_str().unwrap().to_owned(),
        }
    }
}

/// `bin serve` with `env`, in `dir`, listening on `port`; returns once the port accepts.
pub fn serve(
    bin: &std::path::Path,
    port: u16,
    env: &[(String, String)],
    dir: &std::path::Path,
) -> std::process::Child {
    let child = std::process::Command::new(bin)
        .arg("serve")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("LATCHKEY_LISTEN", format!("127.0.0.1:{port}"))
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        crate::wait_for_port(port, std::time::Duration::from_secs(30)),
        "{} serve did not listen on {port}",
        bin.display()
    );
    child
}

pub fn authorize_path(p: &Portal, redirect: &str) -> String {
    let challenge = latchkey_oidc::pkce::s256(VERIFIER);
    format!(
        "/t/acme/authorize?client_id={}&redirect_uri={}&response_type=code&scope=openid%20offline_access&state=st&nonce=n1&code_challenge={challenge}&code_challenge_method=S256",
        p.id,
        crate::oidc::enc(redirect)
    )
}

/// The path and query of a redirect's location (the public URL names the proxy's host).
fn path_of(location: &str) -> String {
    match url::Url::parse(location) {
        Ok(u) => format!(
            "{}{}",
            u.path(),
            u.query().map(|q| format!("?{q}")).unwrap_or_default()
        ),
        Err(_) => location.to_owned(),
    }
}

/// A browser of the load: its cookies, its client address (through the proxy), and requests
/// that follow the flow's redirects.
struct Visitor<'a> {
    site: &'a Remote,
    b: Browser,
    ip: &'a str,
    client: reqwest::Client,
}

/// Where a step of the flow leads: another page, or the client's redirect URI.
enum Step {
    Page(reqwest::StatusCode, String),
    Next(String),
    Code(String),
}

impl Visitor<'_> {
    async fn send(&mut self, req: reqwest::RequestBuilder) -> Result<Step, String> {
        let res = req
            .header("cookie", self.b.header())
            .header("x-forwarded-for", self.ip)
            .send()
            .await
            .map_err(|e| format!("{e:?}"))?;
        self.b.absorb(res.headers());
        if res.status().is_redirection() {
            let loc = res.headers()["location"].to_str().unwrap().to_owned();
            if loc.starts_with(REDIRECT) {
                let code = crate::oidc::query(&loc).get("code").cloned();
                return code.map(Step::Code).ok_or(loc);
            }
            return Ok(Step::Next(path_of(&loc)));
        }
        let status = res.status();
        Ok(Step::Page(
            status,
            res.text().await.map_err(|e| format!("{e:?}"))?,
        ))
    }

    async fn post(&mut self, path: &str, form: &[(&str, String)]) -> Result<Step, String> {
        let req = self.client.post(self.site.url(path)).form(form);
        self.send(req).await
    }
}

/// Signs `user` in through `site` and returns the authorization code, or what went wrong.
pub async fn code_flow(site: &Remote, p: &Portal, user: &str, ip: &str) -> Result<String, String> {
    let mut v = Visitor {
        site,
        b: Browser::default(),
        ip,
        client: TestServer::client(),
    };
    let mut step = Step::Next(authorize_path(p, REDIRECT));
    for _ in 0..8 {
        step = match step {
            Step::Code(code) => return Ok(code),
            Step::Next(path) => {
                let req = v.client.get(site.url(&path));
                v.send(req).await?
            }
            // offline_access is consented to even by a first-party client's users (OIDC Core 11).
            Step::Page(status, page) if status == 200 && page.contains("authorize/consent") => {
                let form = [
                    ("csrf", hidden(&page, "csrf")),
                    ("interaction", hidden(&page, "interaction")),
                    ("decision", "allow".to_owned()),
                ];
                v.post("/t/acme/authorize/consent", &form).await?
            }
            Step::Page(status, page) if status == 200 && page.contains("name=\"password\"") => {
                let form = [
                    ("csrf", hidden(&page, "csrf")),
                    ("interaction", hidden(&page, "interaction")),
                    ("username", user.to_owned()),
                    ("password", PASSWORD.to_owned()),
                    ("return_to", String::new()),
                ];
                v.post("/t/acme/login", &form).await?
            }
            Step::Page(status, page) => {
                let title = page
                    .split("<title>")
                    .nth(1)
                    .and_then(|t| t.split("</title>").next());
                return Err(format!("{status}: {}", title.unwrap_or_default()));
            }
        };
    }
    Err("too many redirects".into())
}

pub async fn token(site: &Remote, p: &Portal, form: &[(&str, &str)]) -> Result<Value, String> {
    let res = TestServer::client()
        .post(site.url("/t/acme/token"))
        .basic_auth(&p.id, Some(&p.secret))
        .form(form)
        .send()
        .await
        .map_err(|e| format!("{e:?}"))?;
    let status = res.status();
    let body: Value = res.json().await.map_err(|e| format!("{e:?}"))?;
    if status == 200 {
        Ok(body)
    } else {
        Err(format!("{status}: {body}"))
    }
}

pub async fn redeem(site: &Remote, p: &Portal, code: &str) -> Result<Value, String> {
    token(
        site,
        p,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    )
    .await
}

pub async fn introspect(site: &Remote, p: &Portal, t: &str) -> Result<bool, String> {
    let res = TestServer::client()
        .post(site.url("/t/acme/introspect"))
        .basic_auth(&p.id, Some(&p.secret))
        .form(&[("token", t)])
        .send()
        .await
        .map_err(|e| format!("{e:?}"))?;
    if res.status() != 200 {
        return Err(format!("introspection answered {}", res.status()));
    }
    let body: Value = res.json().await.map_err(|e| format!("{e:?}"))?;
    Ok(body["active"] == true)
}
