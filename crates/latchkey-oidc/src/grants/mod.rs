//! The token endpoint's grants (RFC 6749 §4.1.3, §4.4, §6), one file each, as plain functions
//! over narrow traits: a `GrantStore` (any `OAuthRepo` that can also look users up) and a
//! `Signer`, so the in-memory store drives them in tests as the database does in production.
//! They are synchronous; the server calls them off its async threads. Spending a code or a
//! refresh token and storing what it issued is one store call, so the two commit together.

pub mod authorization_code;
pub mod client_credentials;
mod issue;
pub mod refresh_token;

pub use issue::{Issued, Preview, TokenResponse, preview};

use crate::OAuthError;
use crate::claims::ClaimFacts;
use latchkey_core::{Client, Clock, NewAuditEvent, Rng, Tenant, TenantId, User, UserId, UserStatus};
use latchkey_keys::{Alg, KeyError, KeyRing, PairwiseSalt};
use latchkey_store::{AttributeRepo, Grant, GroupRepo, OAuthRepo, StoreError, UserRepo};
use serde_json::{Value, json};

/// Why a grant gave no tokens: refused by the protocol, or the store or key ring failed (the
/// server answers those 503 or 500, never as a protocol error).
#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    /// An RFC 6749 §5.2 error for the client.
    #[error(transparent)]
    OAuth(#[from] OAuthError),
    /// A spent code or refresh token came back (RFC 6749 §4.1.2, RFC 9700 §4.14.2); its grant
    /// is revoked now. The error is `invalid_grant`, told apart for metrics.
    #[error("replay: {0}")]
    Replay(OAuthError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("token signing: {0}")]
    Keys(#[from] KeyError),
}

/// Signs a token's claims as a compact JWS with the tenant's active key of `alg`, and holds
/// the tenant's pairwise salt (OIDC Core §8.1), the other secret a token is made with.
pub trait Signer {
    fn sign(&self, t: &TenantId, alg: Alg, typ: &str, claims: &Value) -> Result<String, KeyError>;
    fn pairwise_salt(&self, t: &TenantId) -> Result<PairwiseSalt, KeyError>;
}

impl Signer for KeyRing {
    fn sign(&self, t: &TenantId, alg: Alg, typ: &str, claims: &Value) -> Result<String, KeyError> {
        match KeyRing::sign(self, t, alg, typ, claims) {
            // A tenant made without keys (directly in the database) gets its first ones on first use.
            Err(KeyError::Refused(_)) => {
                self.ensure_tenant(t, "system")?;
                KeyRing::sign(self, t, alg, typ, claims)
            }
            other => other,
        }
    }

    fn pairwise_salt(&self, t: &TenantId) -> Result<PairwiseSalt, KeyError> {
        KeyRing::pairwise_salt(self, t)
    }
}

/// The user lookups the grants need: whether the grant's user may still sign in, and what
/// their tokens may say about them.
pub trait UserLookup {
    fn find_user(&self, t: &TenantId, id: &UserId) -> Result<Option<User>, StoreError>;
    /// The user's effective roles and groups and their attribute values.
    fn claim_facts(&self, t: &TenantId, id: &UserId) -> Result<ClaimFacts, StoreError>;
}

impl UserLookup for latchkey_store::Db {
    fn find_user(&self, t: &TenantId, id: &UserId) -> Result<Option<User>, StoreError> {
        UserRepo::user(self, t, id)
    }

    fn claim_facts(&self, t: &TenantId, id: &UserId) -> Result<ClaimFacts, StoreError> {
        Ok(ClaimFacts {
            access: GroupRepo::effective_access(self, t, id)?,
            attributes: AttributeRepo::user_attributes(self, t, id)?,
        })
    }
}

/// The user's facts when the client's claims for `scope` need them; no query otherwise.
pub(crate) fn facts_for(
    store: &dyn GrantStore,
    c: &Client,
    user: &UserId,
    scope: &str,
    t: &TenantId,
) -> Result<Option<ClaimFacts>, StoreError> {
    if crate::claims::needs_facts(&c.settings.claims, scope) {
        store.claim_facts(t, user).map(Some)
    } else {
        Ok(None)
    }
}

/// What the grants read and write: OAuth state plus the user lookup.
pub trait GrantStore: OAuthRepo + UserLookup {}

impl<T: OAuthRepo + UserLookup + ?Sized> GrantStore for T {}

/// The request's surroundings: the tenant and its issuer URL, the time and randomness.
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    pub tenant: &'a Tenant,
    /// `iss` of the tokens (the tenant's issuer URL).
    pub issuer: &'a str,
    pub clock: &'a dyn Clock,
    pub rng: &'a dyn Rng,
}

/// The audit event of a token request: the client acting on the grant's user.
pub(crate) fn event(c: &Client, action: &str, grant: &Grant) -> NewAuditEvent {
    NewAuditEvent::success(
        &format!("client:{}", c.client_id),
        action,
        format!("user:{}", grant.user_id),
        json!({"grant": grant.id, "scope": grant.scope}),
    )
}

/// The grant's user if they may still sign in; a disabled or deleted user's grants are dead.
pub(crate) fn active(user: Option<User>) -> Result<User, OAuthError> {
    match user {
        Some(u) if u.status == UserStatus::Active => Ok(u),
        _ => Err(OAuthError::invalid_grant("the user can no longer sign in")),
    }
}
