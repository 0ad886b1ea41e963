//! The key ring's side of crypto-shredding (`latchkey_store::Vault`, docs/privacy.md#erasure).
//!
//! - A user's key is 256 random bits, wrapped under the tenant's data key (so data-key and
//!   master-key rotations re-wrap it like any sealed value) and stored in `user_keys`.
//! - Personal data is sealed under it with AES-256-GCM, bound to the tenant, the user and the
//!   column.
//! - Blind indexes are HMAC-SHA256 under a key derived from the tenant's pairwise salt: a
//!   secret that never changes (a data-key rotation must not move every index), made once per
//!   tenant and stored sealed.
//! - Audit pseudonyms are HMAC-SHA256 under the user's own key: once it is erased, a pseudonym
//!   in the audit chain can't be tied to anyone, even by someone holding every other key.

use crate::envelope::{Aad, DataKey, SecretKey};
use crate::{KeyError, KeyRing, b64};
use latchkey_core::{TenantId, UserId};
use latchkey_store::{StoreError, TenantVault, UserKey, Vault};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// Bytes of HMAC kept in a blind index or a pseudonym (base64url: 32 characters).
const TAG_BYTES: usize = 24;

fn store_error(e: KeyError) -> StoreError {
    match e {
        KeyError::Store(e) => e,
        other => StoreError::Sealed(other.to_string()),
    }
}

fn hmac(key: &[u8], parts: &[&str]) -> String {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key);
    let mut ctx = aws_lc_rs::hmac::Context::with_key(&key);
    for part in parts {
        // Length-prefixed, so no two different part lists give the same input.
        ctx.update(&(part.len() as u64).to_be_bytes());
        ctx.update(part.as_bytes());
    }
    b64(&ctx.sign().as_ref()[..TAG_BYTES])
}

/// The vault over a key ring; one per process, cached per tenant.
pub struct PersonalVault {
    ring: Arc<KeyRing>,
    tenants: Mutex<HashMap<TenantId, Arc<TenantKeys>>>,
}

impl PersonalVault {
    pub fn new(ring: Arc<KeyRing>) -> Self {
        Self {
            ring,
            tenants: Mutex::default(),
        }
    }
}

impl Vault for PersonalVault {
    /// Reads only: a tenant without a pairwise salt yet (so without a sealed user) gets keys
    /// whose index is made by the first `new_user_key`, and is looked up again next time.
    fn tenant(&self, t: &TenantId) -> Result<Arc<dyn TenantVault>, StoreError> {
        if let Some(k) = self.tenants.lock().unwrap_or_else(PoisonError::into_inner).get(t)
            && k.index.get().is_some()
        {
            return Ok(Arc::clone(k) as Arc<dyn TenantVault>);
        }
        let index = std::sync::OnceLock::new();
        if let Some(salt) = self.ring.stored_pairwise_salt(t).map_err(store_error)? {
            let _ = index.set(index_key(&salt));
        }
        // The data keys now, before the caller takes a connection: unwrapping a user's key
        // inside a store transaction must not wait for a second connection of the pool (16
        // sign-ins at once on a cold node exhausted it). A key made later (a rotation) is
        // fetched when first met.
        let deks = self
            .ring
            .data_keys_of(t)
            .map_err(store_error)?
            .into_iter()
            .map(|k| (k.id.clone(), Arc::new(k)))
            .collect();
        let keys = Arc::new(TenantKeys {
            ring: Arc::clone(&self.ring),
            tenant: t.clone(),
            index,
            deks: Mutex::new(deks),
        });
        self.tenants
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(t.clone(), Arc::clone(&keys));
        Ok(keys)
    }
}

fn index_key(salt: &crate::PairwiseSalt) -> [u8; 32] {
    salt.hmac_sha256(b"latchkey/blind-index/v1")
}

/// One tenant's index key and the data keys that opened its users' keys so far.
struct TenantKeys {
    ring: Arc<KeyRing>,
    tenant: TenantId,
    /// Unset while the tenant has no pairwise salt: then no row holds an index to match.
    index: std::sync::OnceLock<[u8; 32]>,
    deks: Mutex<HashMap<String, Arc<DataKey>>>,
}

fn key_aad<'a>(t: &'a TenantId, user: &'a UserId) -> Aad<'a> {
    Aad {
        tenant: t.as_str(),
        table: "user_keys",
        column: "key_sealed",
        row: user.as_str(),
    }
}

impl TenantKeys {
    /// The data key `id`: cached, else unwrapped from the store (a rotation made it elsewhere).
    fn dek(&self, id: &str) -> Result<Arc<DataKey>, StoreError> {
        if let Some(k) = self.deks.lock().unwrap_or_else(PoisonError::into_inner).get(id) {
            return Ok(Arc::clone(k));
        }
        let dek = Arc::new(self.ring.data_key_by_id(&self.tenant, id).map_err(store_error)?);
        self.deks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id.to_owned(), Arc::clone(&dek));
        Ok(dek)
    }
}

impl TenantVault for TenantKeys {
    fn blind(&self, purpose: &str, value: &str) -> String {
        match self.index.get() {
            Some(index) => format!(
                "{}{}",
                latchkey_store::BLIND_PREFIX,
                hmac(index, &[purpose, value])
            ),
            // No sealed row exists to match; this matches no row either.
            None => latchkey_store::BLIND_PREFIX.to_owned(),
        }
    }

    fn new_user_key(&self, user: &UserId) -> Result<(Arc<dyn UserKey>, String), StoreError> {
        if self.index.get().is_none() {
            let salt = self.ring.pairwise_salt(&self.tenant).map_err(store_error)?;
            let _ = self.index.set(index_key(&salt));
        }
        let key = SecretKey::generate().map_err(store_error)?;
        // Sealed under the tenant's newest data key, made if the tenant has none yet.
        let wrapped = self
            .ring
            .seal_current(&self.tenant, key_aad(&self.tenant, user), key.bytes())
            .map_err(store_error)?;
        Ok((self.person(user, key), wrapped))
    }

    fn user_key(&self, user: &UserId, wrapped: &str) -> Result<Arc<dyn UserKey>, StoreError> {
        let dek_id = crate::envelope::parse(wrapped).map_err(store_error)?.key_id;
        let raw = self
            .dek(&dek_id)?
            .open(key_aad(&self.tenant, user), wrapped)
            .map_err(store_error)?;
        let bytes: [u8; 32] = raw
            .try_into()
            .map_err(|_| StoreError::Sealed(format!("user {user}'s key is not 32 bytes")))?;
        Ok(self.person(user, SecretKey::from_bytes(bytes)))
    }

    fn seal_tenant(
        &self,
        (table, column, row): (&str, &str, &str),
        plaintext: &[u8],
    ) -> Result<String, StoreError> {
        let aad = Aad {
            tenant: self.tenant.as_str(),
            table,
            column,
            row,
        };
        self.ring.seal(&self.tenant, aad, plaintext).map_err(store_error)
    }

    fn open_tenant(
        &self,
        (table, column, row): (&str, &str, &str),
        sealed: &str,
    ) -> Result<Vec<u8>, StoreError> {
        let aad = Aad {
            tenant: self.tenant.as_str(),
            table,
            column,
            row,
        };
        let dek_id = crate::envelope::parse(sealed).map_err(store_error)?.key_id;
        self.dek(&dek_id)?.open(aad, sealed).map_err(store_error)
    }
}

impl TenantKeys {
    fn person(&self, user: &UserId, key: SecretKey) -> Arc<dyn UserKey> {
        Arc::new(PersonKey {
            tenant: self.tenant.clone(),
            user: user.clone(),
            key,
        })
    }
}

/// One user's key.
struct PersonKey {
    tenant: TenantId,
    user: UserId,
    key: SecretKey,
}

impl PersonKey {
    fn aad<'a>(&'a self, column: &'a str) -> Aad<'a> {
        Aad {
            tenant: self.tenant.as_str(),
            table: "personal",
            column,
            row: self.user.as_str(),
        }
    }
}

impl UserKey for PersonKey {
    fn seal(&self, column: &str, plaintext: &[u8]) -> Result<String, StoreError> {
        self.key.seal(self.aad(column), plaintext).map_err(store_error)
    }

    fn open(&self, column: &str, sealed: &str) -> Result<Vec<u8>, StoreError> {
        self.key.open(self.aad(column), sealed).map_err(store_error)
    }

    fn pseudonym(&self, what: &str, value: &str) -> String {
        format!("ps:{}", hmac(self.key.bytes(), &["pseudonym", what, value]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> PersonKey {
        PersonKey {
            tenant: TenantId("t1".into()),
            user: UserId("u1".into()),
            key: SecretKey::from_bytes([byte; 32]),
        }
    }

    #[test]
    fn a_value_opens_only_under_its_user_and_column() {
        let k = key(7);
        let sealed = k.seal("users.profile", b"zelda").unwrap();
        assert_eq!(k.open("users.profile", &sealed).unwrap(), b"zelda");
        assert!(k.open("users.email", &sealed).is_err(), "another column");
        let other_user = PersonKey {
            user: UserId("u2".into()),
            ..key(7)
        };
        assert!(other_user.open("users.profile", &sealed).is_err(), "another user");
        assert!(key(8).open("users.profile", &sealed).is_err(), "another key");
    }

    #[test]
    fn pseudonyms_are_stable_per_key_and_differ_across_keys_and_uses() {
        let (a, b) = (key(1), key(2));
        assert_eq!(a.pseudonym("username", "zelda"), a.pseudonym("username", "zelda"));
        assert_ne!(a.pseudonym("username", "zelda"), b.pseudonym("username", "zelda"));
        assert_ne!(a.pseudonym("username", "zelda"), a.pseudonym("email", "zelda"));
        assert!(!a.pseudonym("username", "zelda").contains("zelda"));
    }

    #[test]
    fn hmac_inputs_are_length_prefixed() {
        assert_ne!(hmac(&[0; 32], &["ab", "c"]), hmac(&[0; 32], &["a", "bc"]));
    }
}
