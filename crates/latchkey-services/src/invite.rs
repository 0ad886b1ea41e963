//! Invitations as the CLI and the admin API make them: a fresh 256-bit token, its mail sealed
//! for the outbox, and the store's audited transaction that keeps both (docs/invitations.md).
//! The token goes only into the mail; the store keeps its SHA-256.

use crate::ServiceError;
use latchkey_core::{Rng, Tenant, UnixMillis};
use latchkey_keys::KeyRing;
use latchkey_store::{Channel, Db, Invitation, InvitationRepo, NewInvitation, NewMail};

/// How long an invitation lives unless the operator says otherwise.
pub const DEFAULT_TTL_SECS: u64 = 7 * 86_400;
/// The longest an operator may ask for.
pub const MAX_TTL_SECS: u64 = 90 * 86_400;

/// What the store keeps of a token (domain-separated from other tokens' hashes).
pub fn token_hash(token: &str) -> String {
    latchkey_core::sha256_hex(format!("latchkey-invite-v1:{token}").as_bytes())
}

/// `invited_by` of a pending sign-up: passkey-first sign-up (docs/sign-up.md) is held as an
/// invitation the person sends themselves, so the account only exists once its address is
/// proven and a passkey or password set.
pub const SELF_SIGNUP: &str = "signup";

/// A mail's words: `{tenant}`, `{user}`, `{link}` and `{until}` are filled in.
pub struct Wording<'a> {
    pub subject: &'a str,
    pub body: &'a str,
}

/// An administrator's invitation (English: the operator's CLI and API have no language).
pub const INVITATION: Wording<'static> = Wording {
    subject: "You are invited to {tenant}",
    body: "You are invited to an account at {tenant} (username {user}).\n\n\
           To set it up with a password or a passkey, open this link within {until}. It works \
           once:\n{link}\n\nIf you did not expect this, ignore this mail: no account is made \
           unless the link is used.\n",
};

/// What one invitation call needs besides the store.
pub struct Inviter<'a> {
    pub db: &'a Db,
    pub keys: &'a KeyRing,
    pub rng: &'a dyn Rng,
    /// The tenant's issuer URL (`{public_url}/t/{slug}`): the link's base.
    pub issuer: &'a str,
    pub tenant: &'a Tenant,
    /// Who acts, as the audit log names them.
    pub actor: &'a str,
    /// The caller's clock reading, for the mail's "expires in".
    pub now: UnixMillis,
}

impl Inviter<'_> {
    /// Stores a new invitation and queues its mail, in one audited transaction.
    pub fn create(&self, new: &NewInvitation) -> Result<Invitation, ServiceError> {
        self.create_worded(new, &INVITATION, "")
    }

    /// [`Self::create`] with other words, and `link_tail` (`&name=value`, URL-safe) appended to
    /// the link.
    pub fn create_worded(
        &self,
        new: &NewInvitation,
        words: &Wording<'_>,
        link_tail: &str,
    ) -> Result<Invitation, ServiceError> {
        let email = latchkey_core::validate::email(&new.email).map_err(latchkey_store::StoreError::from)?;
        let token = latchkey_core::random_token(self.rng, 32);
        let user = new.username.as_deref().unwrap_or(&email);
        let mail = self.mail(
            words,
            (&email, user),
            &format!("{token}{link_tail}"),
            new.expires_at,
        )?;
        Ok(self
            .db
            .create_invitation(&self.tenant.id, self.actor, new, &token_hash(&token), &mail)?)
    }

    /// A new link for a pending or expired invitation: the old token stops working.
    pub fn resend(&self, id: &str, expires_at: UnixMillis) -> Result<Invitation, ServiceError> {
        self.resend_worded(id, expires_at, &INVITATION, "")
    }

    /// [`Self::resend`] with other words and link tail (see [`Self::create_worded`]).
    pub fn resend_worded(
        &self,
        id: &str,
        expires_at: UnixMillis,
        words: &Wording<'_>,
        link_tail: &str,
    ) -> Result<Invitation, ServiceError> {
        let current = self
            .db
            .invitation(&self.tenant.id, id)?
            .ok_or(latchkey_store::StoreError::NotFound { what: "invitation" })?;
        let token = latchkey_core::random_token(self.rng, 32);
        let to = (current.email.as_str(), current.username.as_str());
        let mail = self.mail(words, to, &format!("{token}{link_tail}"), expires_at)?;
        Ok(self.db.resend_invitation(
            &self.tenant.id,
            self.actor,
            id,
            &token_hash(&token),
            expires_at,
            &mail,
        )?)
    }

    /// The mail to `to` (address, username) carrying `link_token` (the token and any tail).
    fn mail(
        &self,
        words: &Wording<'_>,
        (email, user): (&str, &str),
        link_token: &str,
        expires_at: UnixMillis,
    ) -> Result<NewMail, ServiceError> {
        let link = format!("{}/invitation?token={link_token}", self.issuer);
        let hours = (expires_at - self.now).max(0) / 3_600_000;
        let until = if hours >= 48 {
            format!("{} days", hours / 24)
        } else {
            format!("{} hours", hours.max(1))
        };
        let fill = |t: &str| {
            t.replace("{tenant}", &self.tenant.display_name)
                .replace("{user}", user)
                .replace("{until}", &until)
                .replace("{link}", &link)
        };
        Ok(crate::mail::compose(
            self.keys,
            self.rng,
            Channel::Mail,
            &self.tenant.id,
            email,
            &fill(words.subject),
            &fill(words.body),
        )?)
    }
}
