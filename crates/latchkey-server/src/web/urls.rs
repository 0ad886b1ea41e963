//! Every path of a tenant that the server links or redirects to, built in one place: when a
//! route moves, its links move with it. Absolute URLs (the issuer, SAML entity ids) come from
//! `Config::issuer`.

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};

/// `/t/{slug}/`: every path of the tenant starts so (and a `return_to` must).
pub(crate) fn tenant_root(slug: &str) -> String {
    format!("/t/{slug}/")
}

/// The account page, optionally with a query (`saved=1`, `return_to=…`).
pub(crate) fn account(slug: &str, query: Option<&str>) -> String {
    with_query(format!("/t/{slug}/account"), query)
}

/// The sign-in page, optionally with a query (`interaction=…`, `signed_out=1`).
pub(crate) fn login(slug: &str, query: Option<&str>) -> String {
    with_query(format!("/t/{slug}/login"), query)
}

/// Where a pending authorization request continues once the user is signed in.
pub(crate) fn authorize_resume(slug: &str, interaction: Option<&str>) -> String {
    let base = format!("/t/{slug}/authorize/resume");
    match interaction {
        Some(id) => format!("{base}?interaction={id}"),
        None => base,
    }
}

/// The second-factor step, continuing to `next` afterwards.
pub(crate) fn second_factor(slug: &str, next: &str) -> String {
    format!("/t/{slug}/login/second-factor?return_to={}", encode(next))
}

/// The authenticator-app enrolment, continuing to `next` afterwards.
pub(crate) fn authenticator(slug: &str, next: &str) -> String {
    format!("/t/{slug}/account/authenticator?return_to={}", encode(next))
}

/// The account page during a required password change, continuing to `next` afterwards.
pub(crate) fn change_password_then(slug: &str, next: &str) -> String {
    account(slug, Some(&format!("return_to={}", encode(next))))
}

/// "Verify your email to continue", continuing to `next` once verified.
pub(crate) fn email_unverified(slug: &str, next: &str) -> String {
    format!("/t/{slug}/email/unverified?return_to={}", encode(next))
}

/// The password-reset page (the token travels in a cookie, not the URL).
pub(crate) fn password_reset(slug: &str) -> String {
    format!("/t/{slug}/password/reset")
}

/// The SP-initiated SAML sign-in through `connection`.
/// This side's entity id (its SP metadata URL) and ACS URL for a SAML connection, below the
/// tenant's issuer.
pub(crate) fn saml_sp(issuer: &str, connection: &str) -> (String, String) {
    let base = format!("{issuer}/saml/{connection}");
    (format!("{base}/metadata"), format!("{base}/acs"))
}

/// This side's SingleLogoutService for a SAML connection (HTTP-Redirect).
pub(crate) fn saml_slo(issuer: &str, connection: &str) -> String {
    format!("{issuer}/saml/{connection}/slo")
}

pub(crate) fn saml_login(slug: &str, connection: &str, interaction: Option<&str>) -> String {
    with_interaction(format!("/t/{slug}/saml/{connection}/login"), interaction)
}

/// The sign-in through the upstream OpenID Connect connection `connection`.
pub(crate) fn federation_login(slug: &str, connection: &str, interaction: Option<&str>) -> String {
    with_interaction(format!("/t/{slug}/federation/{connection}/login"), interaction)
}

/// `base` continuing the pending authorization request `interaction`, if any.
fn with_interaction(base: String, interaction: Option<&str>) -> String {
    match interaction.filter(|i| !i.is_empty()) {
        Some(i) => format!("{base}?interaction={i}"),
        None => base,
    }
}

/// The redirect URI registered at the upstream for `connection`, below the tenant's issuer.
pub(crate) fn federation_callback(issuer: &str, connection: &str) -> String {
    format!("{issuer}/federation/{connection}/callback")
}

fn with_query(path: String, query: Option<&str>) -> String {
    match query {
        Some(q) => format!("{path}?{q}"),
        None => path,
    }
}

pub(crate) fn encode(path: &str) -> String {
    utf8_percent_encode(path, NON_ALPHANUMERIC).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuations_are_percent_encoded() {
        assert_eq!(
            second_factor("acme", "/t/acme/authorize/resume?interaction=a&b"),
            "/t/acme/login/second-factor?return_to=%2Ft%2Facme%2Fauthorize%2Fresume%3Finteraction%3Da%26b"
        );
        assert_eq!(account("acme", Some("saved=1")), "/t/acme/account?saved=1");
        assert_eq!(saml_login("acme", "corp", Some("")), "/t/acme/saml/corp/login");
        assert_eq!(
            authorize_resume("acme", Some("x")),
            "/t/acme/authorize/resume?interaction=x"
        );
    }
}
