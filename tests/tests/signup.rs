//! Self-service sign-up (issue 20, item 5): the policy modes, the enumeration-safe answer, the
//! refusals and the per-address limit, with mail over real SMTP; on SQLite + memory and
//! PostgreSQL + Redis.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use latchkey_core::{AccessTokenFormat, ClientType};
use latchkey_core::{IdpDescriptor, SamlOptions, SignupMode, SignupPolicy};
use latchkey_store::{AuditRepo, InvitationRepo, NewSamlConnection, SamlRepo, TenantRepo, UserRepo};
use latchkey_tests::browser::{Browser, hidden, setup};
use latchkey_tests::oidc::{REDIRECT, authorize, authorize_path, query, register, update_policy};
use latchkey_tests::{Backend, SmtpSink, TestServer};
use reqwest::StatusCode;

const PASSWORD: &str = "saffron-kettle-harbour-31";

fn policy(s: &TestServer, mode: SignupMode, domains: &[&str]) {
    update_policy(s, "acme", |p| {
        p.signup = SignupPolicy {
            mode,
            domains: domains.iter().map(|d| (*d).to_owned()).collect(),
        };
    });
}

fn users(s: &TestServer) -> Vec<String> {
    let t = s.state.db.tenant_by_slug("acme").unwrap().unwrap();
    s.state
        .db
        .list_users(&t.id)
        .unwrap()
        .into_iter()
        .map(|u| u.username)
        .collect()
}

fn audit(s: &TestServer) -> Vec<String> {
    let t = s.state.db.tenant_by_slug("acme").unwrap().unwrap();
    s.state
        .db
        .audit_events(&t.id, 0, 1000)
        .unwrap()
        .into_iter()
        .map(|e| format!("{}:{}", e.action, e.details["reason"].as_str().unwrap_or("")))
        .collect()
}

async fn sign_up(b: &mut Browser, s: &TestServer, email: &str, username: &str) -> (StatusCode, String) {
    let (st, _, page) = b.get(s, "/t/acme/signup").await;
    assert_eq!(st, StatusCode::OK, "{page}");
    let csrf = hidden(&page, "csrf");
    let (st, _, page) = b
        .post(
            s,
            "/t/acme/signup",
            &[
                ("csrf", &csrf),
                ("email", email),
                ("username", username),
                ("new_password", PASSWORD),
            ],
            &[],
        )
        .await;
    (st, page)
}

async fn modes_off_and_invite_only(backend: Backend) {
    let Some((s, _db)) = TestServer::start(backend) else {
        return;
    };
    setup(&s, "acme").await;
    // Off (the default): the tenant's plain 404, for the page and the form alike.
    let mut b = Browser::default();
    let (st, _, page) = b.get(&s, "/t/acme/signup").await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (_, _, other) = b.get(&s, "/t/acme/no-such-page").await;
    assert_eq!(page, other, "indistinguishable from a page that does not exist");
    let (st, _, _) = b
        .post(&s, "/t/acme/signup", &[("email", "x@acme.test")], &[])
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (_, _, login) = b.get(&s, "/t/acme/login").await;
    assert!(!login.contains("/signup"), "no link while off");

    // Invite-only: the page says an invitation is needed; the form creates nothing.
    policy(&s, SignupMode::InviteOnly, &[]);
    let (st, _, page) = b.get(&s, "/t/acme/signup").await;
    assert_eq!(st, StatusCode::OK);
    assert!(page.contains("You need an invitation"), "{page}");
    assert!(!page.contains("new_password"));
    let (st, _, _) = b
        .post(
            &s,
            "/t/acme/signup",
            &[("email", "x@acme.test"), ("new_password", PASSWORD)],
            &[],
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert_eq!(users(&s), ["alice"]);
}

// One sign-up from the form to a verified account, then the same form for a taken address.
#[allow(clippy::too_many_lines)]
async fn open_signup_is_enumeration_safe(backend: Backend) {
    let sink = SmtpSink::start().await;
    let Some((s, _db)) = TestServer::start_on(backend, &[("LATCHKEY_SMTP_URL", &sink.url)]) else {
        return;
    };
    setup(&s, "acme").await;
    policy(&s, SignupMode::Open, &[]);
    let mut b = Browser::default();
    let (_, _, login) = b.get(&s, "/t/acme/login").await;
    assert!(
        login.contains("href=\"/t/acme/signup\""),
        "the sign-in page links it"
    );

    // A tampered or missing CSRF token creates nothing.
    for bad in ["forged", ""] {
        let (st, _, _) = b
            .post(
                &s,
                "/t/acme/signup",
                &[
                    ("csrf", bad),
                    ("email", "carol@acme.test"),
                    ("new_password", PASSWORD),
                ],
                &[],
            )
            .await;
        assert_eq!(st, StatusCode::FORBIDDEN);
    }
    assert_eq!(users(&s), ["alice"]);
    // The tenant's password policy applies.
    let (_, page) = {
        let (_, _, page) = b.get(&s, "/t/acme/signup").await;
        let csrf = hidden(&page, "csrf");
        let (st, _, page) = b
            .post(
                &s,
                "/t/acme/signup",
                &[
                    ("csrf", &csrf),
                    ("email", "carol@acme.test"),
                    ("new_password", "short"),
                ],
                &[],
            )
            .await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
        (st, page)
    };
    assert!(page.contains("at least 12 characters"), "{page}");

    // A new address: an active account with an unverified address, and a link.
    let (st, new_page) = sign_up(&mut b, &s, "Carol@acme.test", "").await;
    assert_eq!(st, StatusCode::OK, "{new_page}");
    assert!(new_page.contains("Check your mail"), "{new_page}");
    assert_eq!(users(&s), ["alice", "carol@acme.test"]);
    let t = s.state.db.tenant_by_slug("acme").unwrap().unwrap();
    let carol = s
        .state
        .db
        .user_by_email(&t.id, "carol@acme.test")
        .unwrap()
        .unwrap();
    assert!(!carol.email_verified);
    assert_eq!(carol.status, latchkey_core::UserStatus::Active);
    let mails = sink.wait_for(1, 10).await;
    assert_eq!(mails[0].rcpt_to, ["carol@acme.test"]);
    let link = mails[0].link().unwrap();
    assert!(link.contains("/t/acme/email/verify?token="), "{link}");

    // A taken address: the same answer, no second account, and the owner hears of it.
    let (st, taken_page) = sign_up(&mut b, &s, "alice@acme.test", "").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        taken_page.replace("alice@acme.test", "ADDRESS"),
        new_page.replace("carol@acme.test", "ADDRESS"),
        "the page does not tell whether the address is registered"
    );
    assert_eq!(users(&s), ["alice", "carol@acme.test"]);
    let mails = sink.wait_for(2, 10).await;
    let notice = &mails[1];
    assert_eq!(notice.rcpt_to, ["alice@acme.test"]);
    let text = notice.text();
    assert!(text.contains("tried to create an account"), "{text}");
    assert!(
        !text.contains("email/verify"),
        "the owner gets no verification link"
    );
    let actions = audit(&s);
    assert!(actions.contains(&"user.signup:".to_owned()), "{actions:?}");
    assert!(
        actions.contains(&"user.signup:email_taken".to_owned()),
        "{actions:?}"
    );
    assert!(actions.contains(&"user.email_verification_requested:".to_owned()));

    // The link verifies the address; the new account signs in with its password.
    let path = &link[s.base_url.len()..];
    let (_, _, page) = b.get(&s, path).await;
    let form = [("csrf", hidden(&page, "csrf")), ("token", hidden(&page, "token"))];
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (st, _, _) = b.post(&s, "/t/acme/email/verify", &pairs, &[]).await;
    assert_eq!(st, StatusCode::OK);
    assert!(
        s.state
            .db
            .user_by_email(&t.id, "carol@acme.test")
            .unwrap()
            .unwrap()
            .email_verified
    );
    let (st, _, _) = Browser::default()
        .sign_in(&s, "acme", "carol@acme.test", PASSWORD)
        .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    continues_to_the_application(&s, &sink).await;
}

/// Someone who came from an application signs up, confirms, signs in and is back in the flow.
async fn continues_to_the_application(s: &TestServer, sink: &SmtpSink) {
    let c = register(s, "acme", ClientType::Confidential, true, AccessTokenFormat::Jwt);
    let mut app = Browser::default();
    let (_, h, _) = app.get(s, &authorize_path(&c, &[])).await;
    let login = h["location"].to_str().unwrap().to_owned();
    let id = login.split("interaction=").nth(1).unwrap().to_owned();
    let (_, _, page) = app.get(s, &login).await;
    let signup = format!("/t/acme/signup?interaction={id}");
    assert!(
        page.contains(&signup),
        "the sign-in page keeps the interaction: {page}"
    );
    let (_, _, page) = app.get(s, &signup).await;
    let form = [
        ("csrf", hidden(&page, "csrf")),
        ("interaction", hidden(&page, "interaction")),
        ("email", "dan@acme.test".to_owned()),
        ("new_password", PASSWORD.to_owned()),
    ];
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (st, _, page) = app.post(s, "/t/acme/signup", &pairs, &[]).await;
    assert_eq!(st, StatusCode::OK);
    assert!(
        page.contains(&format!("/t/acme/login?interaction={id}")),
        "{page}"
    );
    let mails = sink.wait_for(3, 10).await;
    let link = mails[2].link().unwrap();
    let (_, _, page) = app.get(s, &link[s.base_url.len()..]).await;
    let form = [("csrf", hidden(&page, "csrf")), ("token", hidden(&page, "token"))];
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (st, _, _) = app.post(s, "/t/acme/email/verify", &pairs, &[]).await;
    assert_eq!(st, StatusCode::OK);
    let (_, _, page) = app.get(s, &login).await;
    let form = [
        ("csrf", hidden(&page, "csrf")),
        ("interaction", id.clone()),
        ("username", "dan@acme.test".to_owned()),
        ("password", PASSWORD.to_owned()),
        ("return_to", String::new()),
    ];
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (st, h, _) = app.post(s, "/t/acme/login", &pairs, &[]).await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let resume = h["location"].to_str().unwrap().to_owned();
    let back = authorize(s, &mut app, &resume, "acme", true).await;
    assert!(back.starts_with(REDIRECT), "{back}");
    assert!(query(&back).contains_key("code"));
}

async fn refusals_and_limits(backend: Backend) {
    let Some((s, _db)) = TestServer::start(backend) else {
        return;
    };
    setup(&s, "acme").await;
    let t = s.state.db.tenant_by_slug("acme").unwrap().unwrap();
    let conn = NewSamlConnection {
        id: s.state.db.new_saml_connection_id(),
        name: "corp".into(),
        display_name: "Corp IdP".into(),
        idp: IdpDescriptor {
            entity_id: "https://corp.idp.example".into(),
            sso_url: "https://corp.idp.example/sso".into(),
            sso_binding: latchkey_core::saml::BINDING_REDIRECT.into(),
            certificates: vec!["Q0VSVDE=".into()],
            wants_signed_requests: false,
            slo_url: None,
            slo_response_url: None,
        },
        metadata_url: None,
        options: SamlOptions {
            domains: vec!["corp.example".into()],
            ..SamlOptions::default()
        },
        sp_certificate: "U1BDRVJU".into(),
        sp_key_sealed: "SEALED-SP-KEY".into(),
        next_refresh_at: None,
    };
    s.state.db.create_saml_connection(&t.id, "test", &conn).unwrap();
    policy(&s, SignupMode::OpenForDomains, &["acme.test", "corp.example"]);
    let mut b = Browser::default();
    // A domain a SAML connection claims goes to that sign-in.
    let (st, page) = sign_up(&mut b, &s, "dave@corp.example", "").await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("managed by your organisation"), "{page}");
    assert!(page.contains("/t/acme/saml/corp/login"), "{page}");
    // open-for-domains refuses other domains.
    let (st, page) = sign_up(&mut b, &s, "eve@elsewhere.test", "").await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("can&#39;t be created here"), "{page}");
    assert_eq!(users(&s), ["alice"]);

    // Per client address: past the limit, 429 with Retry-After and nothing created.
    let mut last = (StatusCode::OK, None);
    for i in 0..11 {
        let (_, _, page) = b.get(&s, "/t/acme/signup").await;
        let csrf = hidden(&page, "csrf");
        let email = format!("bad{i}");
        let (st, h, _) = b
            .post(
                &s,
                "/t/acme/signup",
                &[("csrf", &csrf), ("email", &email), ("new_password", PASSWORD)],
                &[],
            )
            .await;
        last = (st, h.get("retry-after").cloned());
    }
    // Invalid addresses are refused before the counter: these were not counted.
    assert_eq!(last.0, StatusCode::UNPROCESSABLE_ENTITY);
    for i in 0..9 {
        sign_up(&mut b, &s, &format!("eve{i}@elsewhere.test"), "").await;
    }
    let (st, page) = sign_up(&mut b, &s, "frank@acme.test", "").await;
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS, "{page}");
    let (_, _, form) = b.get(&s, "/t/acme/signup").await;
    let csrf = hidden(&form, "csrf");
    let (st, h, _) = b
        .post(
            &s,
            "/t/acme/signup",
            &[
                ("csrf", &csrf),
                ("email", "gina@acme.test"),
                ("new_password", PASSWORD),
            ],
            &[],
        )
        .await;
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS);
    assert!(h.get("retry-after").is_some());
    assert_eq!(users(&s), ["alice"]);
}

/// Passkey-first sign-up: no account until the mailed link is used; the answer is the same for a
/// taken address; the link's page sets the account up (here with a password, as a person
/// without a passkey-capable device would; the passkey ceremony is the Chromium test's) and the
/// browser continues to the application it came from, with a verified address.
#[allow(clippy::too_many_lines)]
async fn passkey_first_signup(backend: Backend) {
    let sink = SmtpSink::start().await;
    let Some((s, _db)) = TestServer::start_on(backend, &[("LATCHKEY_SMTP_URL", &sink.url)]) else {
        return;
    };
    setup(&s, "acme").await;
    policy(&s, SignupMode::Open, &[]);
    let t = s.state.db.tenant_by_slug("acme").unwrap().unwrap();
    let c = register(&s, "acme", ClientType::Confidential, true, AccessTokenFormat::Jwt);
    let mut app = Browser::default();
    let (_, h, _) = app.get(&s, &authorize_path(&c, &[])).await;
    let login = h["location"].to_str().unwrap().to_owned();
    let id = login.split("interaction=").nth(1).unwrap().to_owned();
    let (_, _, page) = app.get(&s, &format!("/t/acme/signup?interaction={id}")).await;
    assert!(page.contains("name=\"method\" value=\"passkey\""), "{page}");
    let submit = |email: &'static str, username: &'static str, page: &str| {
        vec![
            ("csrf", hidden(page, "csrf")),
            ("interaction", hidden(page, "interaction")),
            ("email", email.to_owned()),
            ("username", username.to_owned()),
            ("method", "passkey".to_owned()),
        ]
    };
    let form = submit("Pat@acme.test", "", &page);
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (st, _, new_page) = app.post(&s, "/t/acme/signup", &pairs, &[]).await;
    assert_eq!(st, StatusCode::OK, "{new_page}");
    assert!(new_page.contains("create your passkey"), "{new_page}");
    assert_eq!(users(&s), ["alice"], "no account before the link is used");
    let mails = sink.wait_for(1, 10).await;
    assert_eq!(mails[0].rcpt_to, ["pat@acme.test"]);
    let link = mails[0].link().unwrap();
    assert!(link.contains("/t/acme/invitation?token="), "{link}");
    assert!(link.ends_with(&format!("&interaction={id}")), "{link}");
    let pending = s.state.db.list_invitations(&t.id, None).unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].invited_by, "signup");
    assert_eq!(pending[0].email, "pat@acme.test");

    // A taken address: the same page, no invitation, the owner hears of it.
    let (_, _, page) = app.get(&s, &format!("/t/acme/signup?interaction={id}")).await;
    let form = submit("alice@acme.test", "", &page);
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (st, _, taken_page) = app.post(&s, "/t/acme/signup", &pairs, &[]).await;
    assert_eq!(st, StatusCode::OK);
    let strip = |p: &str, e: &str| p.replace(e, "ADDRESS").replace(&id, "ID");
    assert_eq!(
        strip(&taken_page, "alice@acme.test"),
        strip(&new_page, "pat@acme.test"),
        "the page does not tell whether the address is registered"
    );
    let mails = sink.wait_for(2, 10).await;
    assert_eq!(mails[1].rcpt_to, ["alice@acme.test"]);
    assert!(mails[1].text().contains("tried to create an account"));
    assert_eq!(s.state.db.list_invitations(&t.id, None).unwrap().len(), 1);
    // A typed username that is taken is said so (as with a password).
    let (_, _, page) = app.get(&s, &format!("/t/acme/signup?interaction={id}")).await;
    let form = submit("quinn@acme.test", "alice", &page);
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (st, _, _) = app.post(&s, "/t/acme/signup", &pairs, &[]).await;
    assert_eq!(st, StatusCode::CONFLICT);

    // Signing up again re-sends: a new link, and the first one stops working.
    let (_, _, page) = app.get(&s, &format!("/t/acme/signup?interaction={id}")).await;
    let form = submit("pat@acme.test", "", &page);
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (st, _, _) = app.post(&s, "/t/acme/signup", &pairs, &[]).await;
    assert_eq!(st, StatusCode::OK);
    let mails = sink.wait_for(3, 10).await;
    let second = mails[2].link().unwrap();
    assert_ne!(second, link);
    let (st, page) = open_link(&mut Browser::default(), &s, &link).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(page.contains("not valid"), "the first link is dead: {page}");

    // The link's page: the address is confirmed by following it; a password finishes here.
    let (st, page) = open_link(&mut app, &s, &second).await;
    assert_eq!(st, StatusCode::OK, "{page}");
    assert!(page.contains("your address is confirmed"), "{page}");
    let form = [
        ("csrf", hidden(&page, "csrf")),
        ("new_password", PASSWORD.to_owned()),
    ];
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (st, h, _) = app.post(&s, "/t/acme/invitation", &pairs, &[]).await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let resume = h["location"].to_str().unwrap().to_owned();
    assert!(
        resume.contains(&format!("interaction={id}")),
        "back to the flow: {resume}"
    );
    let back = authorize(&s, &mut app, &resume, "acme", true).await;
    assert!(back.starts_with(REDIRECT), "{back}");
    assert!(query(&back).contains_key("code"));
    let pat = s.state.db.user_by_email(&t.id, "pat@acme.test").unwrap().unwrap();
    assert!(pat.email_verified, "the link proved the address");
    assert_eq!(pat.username, "pat@acme.test");
    let actions = audit(&s);
    assert!(actions.contains(&"invitation.create:".to_owned()), "{actions:?}");
    assert!(actions.contains(&"invitation.accept:".to_owned()), "{actions:?}");
    // Spent: the link refuses a second use.
    let (st, _) = open_link(&mut Browser::default(), &s, &second).await;
    assert_eq!(st, StatusCode::GONE);
}

/// Follows a mailed invitation link as a browser does: the token moves into a cookie, then
/// the page.
async fn open_link(b: &mut Browser, s: &TestServer, link: &str) -> (StatusCode, String) {
    let (st, h, _) = b.get(s, &link[s.base_url.len()..]).await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let to = h["location"].to_str().unwrap().to_owned();
    let (st, _, page) = b.get(s, &to).await;
    (st, page)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passkey_first_signup_sqlite_memory() {
    passkey_first_signup(Backend::SqliteMemory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passkey_first_signup_postgres_redis() {
    passkey_first_signup(Backend::PostgresRedis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signup_modes_off_and_invite_only_sqlite_memory() {
    modes_off_and_invite_only(Backend::SqliteMemory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signup_modes_off_and_invite_only_postgres_redis() {
    modes_off_and_invite_only(Backend::PostgresRedis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_signup_is_enumeration_safe_sqlite_memory() {
    open_signup_is_enumeration_safe(Backend::SqliteMemory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_signup_is_enumeration_safe_postgres_redis() {
    open_signup_is_enumeration_safe(Backend::PostgresRedis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signup_refusals_and_limits_sqlite_memory() {
    refusals_and_limits(Backend::SqliteMemory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signup_refusals_and_limits_postgres_redis() {
    refusals_and_limits(Backend::PostgresRedis).await;
}
