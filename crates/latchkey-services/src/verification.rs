//! Email verification links, shared by the server (account page, sign-up) and the CLI (`user
//! create`, `user update`): a 256-bit token, stored as its SHA-256 with the address, valid for
//! 24 hours, carried by a mail queued in the transaction that stores it (docs/sign-up.md).

use latchkey_core::{Rng, TenantId};
use latchkey_keys::KeyRing;
use latchkey_store::{Channel, NewMail, NewVerification};

/// How long a verification link works.
pub const TTL_MS: i64 = 24 * 3600 * 1000;

/// The stored form of a token (domain-separated from reset tokens).
pub fn token_hash(token: &str) -> String {
    latchkey_core::sha256_hex(format!("latchkey-email-verify-v1:{token}").as_bytes())
}

/// The link a mail carries: `{issuer}/email/verify?token=…`.
pub fn link(issuer: &str, token: &str) -> String {
    format!("{issuer}/email/verify?token={token}")
}

/// The wording of a verification mail (`{user}`, `{tenant}`, `{link}` are filled in).
pub struct Wording<'a> {
    pub subject: &'a str,
    pub body: &'a str,
}

/// The English wording, for the CLI (the server's pages choose the reader's language).
pub const ENGLISH: Wording<'static> = Wording {
    subject: "Confirm your email address for {tenant}",
    body: "Please confirm that {email} is the address of {user} at {tenant}.\n\nOpen this link within 24 hours and press the button on the page. It works once:\n{link}\n\nIf you did not expect this, ignore this mail.\n",
};

/// A fresh link for the user's current address: the token (for the link) and the sealed mail.
pub struct Prepared {
    pub token_hash: String,
    pub expires_at: i64,
    pub mail: NewMail,
}

impl Prepared {
    pub fn verification(&self) -> NewVerification<'_> {
        NewVerification {
            token_hash: &self.token_hash,
            expires_at: self.expires_at,
            mail: &self.mail,
        }
    }
}

/// Makes a token and seals the mail that carries it to `email` (the user's normalized address;
/// the store refuses a mail to any other). `tenant_name` and `username` are shown in the mail.
///
/// # Errors
/// When the tenant's data key can't seal the body.
pub fn prepare(
    keys: &KeyRing,
    rng: &dyn Rng,
    (tenant, tenant_name): (&TenantId, &str),
    issuer: &str,
    (username, email): (&str, &str),
    wording: &Wording<'_>,
    now: i64,
) -> Result<Prepared, latchkey_keys::KeyError> {
    let token = latchkey_core::random_token(rng, 32);
    let fill = |s: &str| {
        s.replace("{tenant}", tenant_name)
            .replace("{user}", username)
            .replace("{email}", email)
            .replace("{link}", &link(issuer, &token))
    };
    let mail = crate::mail::compose(
        keys,
        rng,
        Channel::Mail,
        tenant,
        email,
        &fill(wording.subject),
        &fill(wording.body),
    )?;
    Ok(Prepared {
        token_hash: token_hash(&token),
        expires_at: now + TTL_MS,
        mail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_hashes_are_domain_separated_and_stable() {
        assert_eq!(token_hash("abc"), token_hash("abc"));
        assert_ne!(token_hash("abc"), latchkey_core::sha256_hex(b"abc"));
        assert_ne!(
            token_hash("abc"),
            latchkey_core::sha256_hex(b"latchkey-reset-v1:abc")
        );
    }

    #[test]
    fn the_link_carries_the_token_under_the_issuer() {
        assert_eq!(
            link("https://id.example/t/acme", "tok"),
            "https://id.example/t/acme/email/verify?token=tok"
        );
    }
}
