//! A console admin for tests: a tenant user with a confirmed authenticator app of a known
//! seed and a console credential, signed in through the sign-in pages with both factors.

#![allow(clippy::unwrap_used, clippy::missing_panics_doc)] // test kit: a failed unwrap is a failed test

use crate::TestServer;
use crate::browser::{Browser, PASSWORD, hidden};
use latchkey_core::{TenantId, User};
use latchkey_mfa::totp;
use latchkey_store::{AdminTokenRepo, CredentialKind, MfaRepo, NewAdminToken};
use reqwest::StatusCode;

/// The authenticator app's seed of every [`with_totp`] user.
pub const SEED: [u8; 20] = *b"console-test-seed-20";

fn tid(s: &TestServer, slug: &str) -> TenantId {
    crate::oidc::tenant(s, slug).id
}

/// Gives `u` a confirmed authenticator app with [`SEED`].
pub fn with_totp(s: &TestServer, slug: &str, u: &User) {
    let t = tid(s, slug);
    s.state.db.begin_totp(&t, &u.id, &SEED).unwrap();
    s.state.db.confirm_totp(&t, &u.id, &[]).unwrap();
}

/// Makes `u` a console admin with `roles`.
pub fn console_admin(s: &TestServer, slug: &str, u: &User, roles: &[&str]) {
    let new = NewAdminToken {
        name: format!("console {}", u.username),
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        permissions: latchkey_core::Permissions::NONE,
        kind: CredentialKind::User(u.id.clone()),
        expires_at: None,
    };
    s.state
        .db
        .create_admin_token(&tid(s, slug), "test", &new)
        .unwrap();
}

pub fn location(h: &reqwest::header::HeaderMap) -> String {
    h.get("location")
        .map(|l| l.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// Signs `name` in with the password on the way to `path`, as a browser sent there by the
/// console does; returns the status and location of that answer and its page.
pub async fn password_then(
    s: &TestServer,
    b: &mut Browser,
    slug: &str,
    name: &str,
    path: &str,
) -> (StatusCode, String, String) {
    let (st, h, _) = b.get(s, path).await;
    assert_eq!(st, 303);
    let login = location(&h);
    assert!(
        login.starts_with(&format!("/t/{slug}/login?return_to=")),
        "{login}"
    );
    let csrf = b.form_token(s, slug).await;
    let form = [
        ("csrf", csrf.as_str()),
        ("username", name),
        ("password", PASSWORD),
        ("return_to", path),
    ];
    let (st, h, page) = b.post(s, &format!("/t/{slug}/login"), &form, &[]).await;
    assert_eq!(st, 303, "{page}");
    let next = location(&h);
    if next.contains("second-factor") {
        return (st, next, page);
    }
    let (st, h, page) = b.get(s, &next).await;
    (st, location(&h), page)
}

/// The second-factor page at `at`, answered with the current code of [`SEED`].
pub async fn totp_at(s: &TestServer, b: &mut Browser, slug: &str, at: &str) -> String {
    let (st, _, page) = b.get(s, at).await;
    assert_eq!(st, 200, "{page}");
    let now = u64::try_from(latchkey_core::Clock::now_millis(&*s.state.clock) / 1000).unwrap();
    let code = totp::code_at(&SEED, now, 6);
    let (st, h, body) = b
        .post(
            s,
            &format!("/t/{slug}/login/second-factor"),
            &[
                ("csrf", &hidden(&page, "csrf")),
                ("return_to", &hidden(&page, "return_to")),
                ("code", &code),
            ],
            &[],
        )
        .await;
    assert_eq!(st, 303, "{body}");
    location(&h)
}

/// A console session of `name` (who has [`SEED`]) in tenant `slug`.
pub async fn signed_in_admin(s: &TestServer, slug: &str, name: &str) -> Browser {
    let mut b = Browser::default();
    let home = format!("/t/{slug}/admin/users");
    let (st, at, _) = password_then(s, &mut b, slug, name, &home).await;
    assert_eq!(st, 303);
    assert!(at.starts_with(&format!("/t/{slug}/login/second-factor")), "{at}");
    let back = totp_at(s, &mut b, slug, &at).await;
    assert_eq!(back, home);
    b
}
