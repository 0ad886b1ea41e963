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
        let email = latchkey_core::validate::email(&new.email).map_err(latchkey_store::StoreError::from)?;
        let token = latchkey_core::random_token(self.rng, 32);
        let mail = self.mail(&email, new.username.as_deref(), &token, new.expires_at)?;
        Ok(self
            .db
            .create_invitation(&self.tenant.id, self.actor, new, &token_hash(&token), &mail)?)
    }

    /// A new link for a pending or expired invitation: the old token stops working.
    pub fn resend(&self, id: &str, expires_at: UnixMillis) -> Result<Invitation, ServiceError> {
        let current = self
            .db
            .invitation(&self.tenant.id, id)?
            .ok_or(latchkey_store::StoreError::NotFound { what: "invitation" })?;
        let token = latchkey_core::random_token(self.rng, 32);
        let mail = self.mail(&current.email, Some(&current.username), &token, expires_at)?;
        Ok(self.db.resend_invitation(
            &self.tenant.id,
            self.actor,
            id,
            &token_hash(&token),
            expires_at,
            &mail,
        )?)
    }

    fn mail(
        &self,
        email: &str,
        username: Option<&str>,
        token: &str,
        expires_at: UnixMillis,
    ) -> Result<NewMail, ServiceError> {
        let name = &self.tenant.display_name;
        let link = format!("{}/invitation?token={token}", self.issuer);
        let hours = (expires_at - self.now).max(0) / 3_600_000;
        let until = if hours >= 48 {
            format!("{} days", hours / 24)
        } else {
            format!("{} hours", hours.max(1))
        };
        let body = format!(
            "You are invited to an account at {name} (username {}).\n\n\
             To set it up with a password or a passkey, open this link within {until}. It works \
             once:\n{link}\n\nIf you did not expect this, ignore this mail: no account is made \
             unless the link is used.\n",
            username.unwrap_or(email)
        );
        Ok(crate::mail::compose(
            self.keys,
            self.rng,
            Channel::Mail,
            &self.tenant.id,
            email,
            &format!("You are invited to {name}"),
            &body,
        )?)
    }
}
