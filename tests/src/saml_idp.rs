//! The SAML test IdP (tests/saml/idp.py, pysaml2 + xmlsec1) as a child process on loopback.
//!
//! `SamlIdp::start()` spawns it with its own temporary directory (its keys, the attacker's and
//! a rollover certificate land there) and stdin held open: when the test process dies, stdin
//! reaches EOF and the IdP exits; `Drop` kills it. Its stderr goes to `idp.log` in that
//! directory (see `log()`). What a sign-in produces is set with `set_next` (see idp.py and the
//! attack corpus in tests/saml/corpus.py).

#![allow(clippy::unwrap_used, clippy::missing_panics_doc)] // test kit: a failed unwrap is a failed test

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

pub struct SamlIdp {
    pub base_url: String,
    pub metadata_url: String,
    pub entity_id: String,
    child: Child,
    tempdir: tempfile::TempDir,
    http: reqwest::Client,
}

impl SamlIdp {
    /// Starts the IdP (`python3`, or `$LATCHKEY_TEST_PYTHON`) and waits up to 30 s for its
    /// JSON line.
    pub fn start() -> SamlIdp {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let script = root.join("tests/saml/idp.py");
        let tempdir = tempfile::tempdir().expect("temporary directory");
        let log_path = tempdir.path().join("idp.log");
        let log = std::fs::File::create(&log_path).expect("idp log file");
        let python = std::env::var("LATCHKEY_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
        let mut child = Command::new(&python)
            .arg(&script)
            .arg("--dir")
            .arg(tempdir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {python} {}: {e}", script.display()));
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let read = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(read.map(|_| line));
        });
        let line = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(Ok(line)) if !line.trim().is_empty() => line,
            other => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the SAML test IdP did not start ({other:?}); is `pip install -r tests/saml/requirements.txt` \
                     done and xmlsec1 installed (scripts/install-deps.sh --test)? Its log:\n{}",
                    std::fs::read_to_string(&log_path).unwrap_or_default()
                );
            }
        };
        let v: Value = serde_json::from_str(line.trim()).expect("the IdP's JSON line");
        let field = |k: &str| {
            v[k].as_str()
                .unwrap_or_else(|| panic!("{k} in {line}"))
                .to_owned()
        };
        SamlIdp {
            base_url: field("base_url"),
            metadata_url: field("metadata_url"),
            entity_id: field("entity_id"),
            child,
            tempdir,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        }
    }

    /// The IdP's directory: idp.key/.crt, attacker.key/.crt, rollover.key/.crt, idp.log.
    pub fn dir(&self) -> &Path {
        self.tempdir.path()
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.tempdir.path().join(name)
    }

    /// The IdP's signing certificate (PEM).
    pub fn cert_pem(&self) -> String {
        std::fs::read_to_string(self.file("idp.crt")).unwrap()
    }

    /// What the IdP wrote on stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.file("idp.log")).unwrap_or_default()
    }

    /// Registers an SP (its metadata XML, as Latchkey serves it) with the IdP.
    pub async fn register_sp(&self, metadata_xml: &str) {
        let r = self
            .http
            .post(format!("{}/sp", self.base_url))
            .header("content-type", "application/samlmetadata+xml")
            .body(metadata_xml.to_owned())
            .send()
            .await
            .unwrap();
        self.expect_204(r, "POST /sp").await;
    }

    /// Sets what the next sign-ins produce (merged into the current settings), e.g.
    /// `json!({"case": "xsw3"})` or `json!({"name_id": "bob@corp.example", "sign": "assertion"})`.
    pub async fn set_next(&self, v: Value) {
        let r = self
            .http
            .post(format!("{}/next", self.base_url))
            .json(&v)
            .send()
            .await
            .unwrap();
        self.expect_204(r, "POST /next").await;
    }

    /// Back to the defaults (alice@corp.example, sign=both, no case, no encryption).
    pub async fn reset(&self) {
        let r = self
            .http
            .post(format!("{}/reset", self.base_url))
            .send()
            .await
            .unwrap();
        self.expect_204(r, "POST /reset").await;
    }

    /// The IdP metadata; `rollover` lists a second signing certificate as well.
    pub async fn metadata(&self, rollover: bool) -> String {
        let url = if rollover {
            format!("{}?rollover=1", self.metadata_url)
        } else {
            self.metadata_url.clone()
        };
        let r = self.http.get(url).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "GET /metadata");
        r.text().await.unwrap()
    }

    /// The URL of an IdP-initiated `LogoutRequest` to SP `sp` for the last session issued to it
    /// (`case`: unsigned, attacker, tampered, wrong_destination, no_session_index).
    pub async fn logout_url(&self, sp: &str, case: Option<&str>) -> String {
        let case = case.map(|c| format!("&case={c}")).unwrap_or_default();
        let url = format!("{}/idp-logout?sp={}{case}", self.base_url, crate::oidc::enc(sp));
        let r = self.http.get(url).send().await.unwrap();
        assert_eq!(
            r.status(),
            StatusCode::FOUND,
            "GET /idp-logout\nIdP log:\n{}",
            self.log()
        );
        r.headers()["location"].to_str().unwrap().to_owned()
    }

    /// Follows a redirect to the IdP's SingleLogoutService: its status and `Location`.
    pub async fn visit(&self, url: &str) -> (StatusCode, Option<String>) {
        let r = self.http.get(url).send().await.unwrap();
        let to = r
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_owned());
        (r.status(), to)
    }

    /// The logout messages the IdP received, oldest first.
    pub async fn logouts(&self) -> Vec<Value> {
        let r = self
            .http
            .get(format!("{}/logouts", self.base_url))
            .send()
            .await
            .unwrap();
        r.json().await.unwrap()
    }

    async fn expect_204(&self, r: reqwest::Response, what: &str) {
        let status = r.status();
        if status != StatusCode::NO_CONTENT {
            let body = r.text().await.unwrap_or_default();
            panic!("{what}: {status}: {body}\nIdP log:\n{}", self.log());
        }
    }
}

impl Drop for SamlIdp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The auto-submit form of a sign-in page: (action, [(name, value)] of its hidden inputs),
/// HTML-unescaped.
pub fn form_fields(html: &str) -> (String, Vec<(String, String)>) {
    let action = html
        .find("<form")
        .and_then(|i| tag_at(html, i))
        .and_then(|t| attr(t, "action"))
        .unwrap_or_default();
    let mut fields = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find("<input") {
        let Some(tag) = tag_at(rest, i) else { break };
        if let (Some(name), value) = (attr(tag, "name"), attr(tag, "value")) {
            fields.push((name, value.unwrap_or_default()));
        }
        rest = &rest[i + tag.len()..];
    }
    (action, fields)
}

/// The tag starting at `i` (up to and including `>`).
fn tag_at(s: &str, i: usize) -> Option<&str> {
    let end = s[i..].find('>')?;
    Some(&s[i..=i + end])
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let needle = format!(" {name}=\"");
    let start = tag.find(&needle)? + needle.len();
    let len = tag[start..].find('"')?;
    Some(unescape(&tag[start..start + len]))
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// What `latchkey saml add` stores: a connection of tenant `slug` trusting `idp`, with a fresh
/// SP key sealed under the tenant's data key.
pub fn create_connection(
    s: &crate::TestServer,
    slug: &str,
    name: &str,
    idp: latchkey_core::IdpDescriptor,
    options: latchkey_core::SamlOptions,
    metadata_url: Option<&str>,
) -> latchkey_core::SamlConnection {
    use latchkey_store::{SamlRepo, TenantRepo};
    let t = s.state.db.tenant_by_slug(slug).unwrap().unwrap();
    let now = latchkey_core::Clock::now_millis(&*s.state.clock);
    let key = latchkey_saml::generate_sp_key(&format!("{slug} {name}"), now).unwrap();
    let id = s.state.db.new_saml_connection_id();
    let sealed = s
        .state
        .keys
        .seal(
            &t.id,
            latchkey_services::saml::sp_key_aad(&t, &id),
            &key.pkcs8_der,
        )
        .unwrap();
    s.state
        .db
        .create_saml_connection(
            &t.id,
            "test",
            &latchkey_store::NewSamlConnection {
                id,
                name: name.into(),
                display_name: "Corp SSO".into(),
                idp,
                metadata_url: metadata_url.map(str::to_owned),
                options,
                sp_certificate: key.certificate,
                sp_key_sealed: sealed,
                next_refresh_at: None,
            },
        )
        .unwrap()
}

/// IdP metadata with one signing certificate valid now, as an IdP publishes it.
pub fn metadata_xml(s: &crate::TestServer, entity_id: &str) -> (String, String) {
    let now = latchkey_core::Clock::now_millis(&*s.state.clock);
    let cert = latchkey_saml::generate_sp_key("Test IdP signing", now)
        .unwrap()
        .certificate;
    let xml = format!(
        r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{entity_id}">
  <md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.acme.test/sso"/>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>"#
    );
    (xml, cert)
}

/// From a Latchkey path that starts a SAML sign-in to the IdP's auto-submit form: (the ACS
/// URL, the form fields). `case` asks the IdP for an attack variant.
pub async fn through_idp(
    s: &crate::TestServer,
    b: &mut crate::browser::Browser,
    start: &str,
    case: Option<&str>,
) -> (String, Vec<(String, String)>) {
    let (st, h, page) = b.get(s, start).await;
    assert_eq!(st, StatusCode::SEE_OTHER, "{start}: {page}");
    let mut to_idp = h.get("location").unwrap().to_str().unwrap().to_owned();
    assert!(to_idp.contains("SAMLRequest="), "{to_idp}");
    if let Some(case) = case {
        to_idp = format!("{to_idp}&case={case}");
    }
    idp_form(&to_idp).await
}

/// The IdP's answer at `url`: the auto-submit form's action and fields.
pub async fn idp_form(url: &str) -> (String, Vec<(String, String)>) {
    let res = crate::TestServer::client().get(url).send().await.unwrap();
    let status = res.status();
    let page = res.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "IdP: {page}");
    form_fields(&page)
}

/// Posts the IdP's form to the ACS in `b`: (status, `Location`, page).
pub async fn post_acs(
    s: &crate::TestServer,
    b: &mut crate::browser::Browser,
    action: &str,
    fields: &[(String, String)],
) -> (StatusCode, String, String) {
    let path = action.strip_prefix(&s.base_url).unwrap_or(action);
    let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (st, h, page) = b.post(s, path, &pairs, &[]).await;
    let location = h
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (st, location, page)
}

/// What `latchkey saml add` does: the IdP's metadata parsed, an SP key made and sealed, the
/// connection stored; then the IdP is given our SP metadata, as its administrator imports it.
pub async fn connect(
    s: &crate::TestServer,
    idp: &SamlIdp,
    (slug, name): (&str, &str),
    options: latchkey_core::SamlOptions,
    metadata_url: Option<&str>,
) -> latchkey_core::SamlConnection {
    let now = latchkey_core::Clock::now_millis(&*s.state.clock);
    let descriptor = latchkey_saml::parse_idp_metadata(&idp.metadata(false).await, now).unwrap();
    let c = create_connection(s, slug, name, descriptor, options, metadata_url);
    let (st, _, sp_metadata) = crate::browser::Browser::default()
        .get(s, &format!("/t/{slug}/saml/{name}/metadata"))
        .await;
    assert_eq!(st, StatusCode::OK);
    idp.register_sp(&sp_metadata).await;
    c
}

#[cfg(test)]
mod tests {
    use super::{SamlIdp, form_fields};
    use reqwest::StatusCode;

    #[tokio::test]
    async fn starts_serves_metadata_and_answers_idp_initiated() {
        let idp = SamlIdp::start();
        let md = idp.metadata(false).await;
        assert!(
            md.contains(&idp.entity_id) && md.matches("use=\"signing\"").count() == 1,
            "{md}"
        );
        assert_eq!(idp.metadata(true).await.matches("use=\"signing\"").count(), 2);
        let pem = std::fs::read_to_string(idp.file("rollover.crt")).unwrap();
        let cert: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let sp = "http://localhost:9/t/x/saml/c/metadata";
        let acs = "http://localhost:9/t/x/saml/c/acs";
        idp.register_sp(&format!(
            r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{sp}"><md:SPSSODescriptor AuthnRequestsSigned="false" protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><md:KeyDescriptor><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor><md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="{acs}" index="0"/></md:SPSSODescriptor></md:EntityDescriptor>"#
        ))
        .await;
        idp.set_next(serde_json::json!({"case": "unsigned"})).await;
        let r = reqwest::get(format!("{}/idp-initiated?sp={sp}", idp.base_url))
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["x-saml-case"], "unsigned");
        let (action, fields) = form_fields(&r.text().await.unwrap());
        assert_eq!(action, acs);
        assert_eq!(fields.len(), 1, "no RelayState: {fields:?}");
        assert_eq!(fields[0].0, "SAMLResponse");
        idp.reset().await;
        let r = reqwest::get(format!("{}/idp-initiated?sp={sp}", idp.base_url))
            .await
            .unwrap();
        assert_eq!(r.headers()["x-saml-case"], "genuine");
    }

    #[test]
    fn parses_the_auto_submit_form() {
        let page = r#"<html><body><form method="post" action="http://h/acs?a=1&amp;b=2"><input type="hidden" name="SAMLResponse" value="PD94+/="><input type="hidden" name="RelayState" value="&quot;x&quot;&amp;&lt;y&gt;&#x27;"><button type="submit">Continue</button></form></body></html>"#;
        let (action, fields) = form_fields(page);
        assert_eq!(action, "http://h/acs?a=1&b=2");
        assert_eq!(
            fields,
            vec![
                ("SAMLResponse".to_owned(), "PD94+/=".to_owned()),
                ("RelayState".to_owned(), "\"x\"&<y>'".to_owned()),
            ]
        );
    }
}
