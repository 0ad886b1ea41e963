//! Crypto-shredding (docs/privacy.md#erasure): a user's personal data (username, email, display
//! name, attribute values) is sealed under a key of the user's own, and the columns that
//! lookups and uniqueness need hold keyed hashes (blind indexes) instead. Erasing the user
//! deletes the key with the user's rows; a copy of the rows anywhere else (a backup, a
//! replica, a disk image) then no longer opens.
//!
//! The cryptography lives in `latchkey-keys` (which depends on this crate): the store sees it
//! through [`Vault`], installed on the `Db` with [`Db::with_vault`](crate::Db::with_vault) once
//! the key ring is open. A `Db` without one reads rows written before sealing existed and
//! refuses to write personal data.

use crate::{Result, StoreError};
use latchkey_core::{TenantId, UserId};
use std::sync::Arc;

/// What a blind index or a sealed value in a column starts with (a username can't contain `:`).
pub const BLIND_PREFIX: &str = "bi:";

/// The key ring's side of crypto-shredding.
pub trait Vault: Send + Sync + 'static {
    /// Tenant `t`'s keys for personal data. Called before the store takes a connection (it may
    /// use the database itself), so a pool is never waited on while holding one of its own.
    fn tenant(&self, t: &TenantId) -> Result<Arc<dyn TenantVault>>;
}

/// One tenant's personal-data keys.
pub trait TenantVault: Send + Sync {
    /// A keyed hash of `value` (prefixed [`BLIND_PREFIX`]): equal values give equal indexes
    /// within a tenant, and nothing else can be learned without the tenant's keys. `purpose`
    /// keeps the indexes of different columns apart.
    fn blind(&self, purpose: &str, value: &str) -> String;
    /// A fresh key for `user` and its wrapped form for `user_keys.key_sealed`.
    fn new_user_key(&self, user: &UserId) -> Result<(Arc<dyn UserKey>, String)>;
    /// Unwraps `user`'s key; `Sealed` when it does not open.
    fn user_key(&self, user: &UserId, wrapped: &str) -> Result<Arc<dyn UserKey>>;
    /// Seals a secret of a user without a key of their own (a row from before per-person
    /// keys) under the tenant's data key, bound to `at` (table, column, row), as before.
    /// Called without a connection held: it may make the tenant's first data key.
    fn seal_tenant(&self, at: (&str, &str, &str), plaintext: &[u8]) -> Result<String>;
    /// Opens a value `seal_tenant` (or, before it, the server) sealed.
    fn open_tenant(&self, at: (&str, &str, &str), sealed: &str) -> Result<Vec<u8>>;
}

/// One user's key.
pub trait UserKey: Send + Sync {
    /// Seals `plaintext` bound to the user and to `column` (`table.column`).
    fn seal(&self, column: &str, plaintext: &[u8]) -> Result<String>;
    fn open(&self, column: &str, sealed: &str) -> Result<Vec<u8>>;
    /// A stable pseudonym of `value` for audit details: equal while the key lives, and tied to
    /// nobody once it is erased (the audit chain is never rewritten).
    fn pseudonym(&self, what: &str, value: &str) -> String;
}

/// What a secret column (a TOTP seed, a risk history) holds when sealed under the person's own
/// key. Older values there are sealed under the tenant's data key (`v1.…`) and keep opening;
/// `latchkey user seal` moves them under the person's key.
pub const PERSONAL_SEAL: &str = "pk.";

/// A column holding a user's secret, sealed with the user id as its row.
#[derive(Clone, Copy)]
pub(crate) struct SecretColumn {
    pub table: &'static str,
    pub column: &'static str,
}

pub(crate) const TOTP_SEED: SecretColumn = SecretColumn {
    table: "mfa_totp",
    column: "seed_sealed",
};
pub(crate) const RISK_HISTORY: SecretColumn = SecretColumn {
    table: "risk_history",
    column: "history_sealed",
};

impl SecretColumn {
    fn name(self) -> String {
        format!("{}.{}", self.table, self.column)
    }

    /// Seals `plain` for `user`'s row: under their own key, or (a user from before per-person
    /// keys) under the tenant's data key as such rows always were.
    pub fn seal(
        self,
        vault: &Personal,
        key: Option<&dyn UserKey>,
        user: &UserId,
        plain: &[u8],
    ) -> Result<String> {
        match key {
            Some(k) => Ok(format!("{PERSONAL_SEAL}{}", k.seal(&self.name(), plain)?)),
            None => vault
                .required()?
                .seal_tenant((self.table, self.column, user.as_str()), plain),
        }
    }

    /// Opens what [`Self::seal`] stored, or an older value under the tenant's data key.
    pub fn open(
        self,
        vault: &Personal,
        key: Option<&dyn UserKey>,
        user: &UserId,
        stored: &str,
    ) -> Result<Vec<u8>> {
        match stored.strip_prefix(PERSONAL_SEAL) {
            Some(sealed) => key
                .ok_or_else(|| StoreError::Sealed(format!("{}: the user's key is gone", self.name())))?
                .open(&self.name(), sealed),
            None => vault
                .required()?
                .open_tenant((self.table, self.column, user.as_str()), stored),
        }
    }
}

/// A tenant's vault as a store method holds it: `None` on a `Db` without one.
#[derive(Clone)]
pub(crate) struct Personal(pub Option<Arc<dyn TenantVault>>);

impl Personal {
    /// The vault, or why personal data can't be written.
    pub fn required(&self) -> Result<&Arc<dyn TenantVault>> {
        self.0.as_ref().ok_or_else(|| {
            StoreError::Sealed(
                "personal data is sealed under the key ring, which this process has not opened".into(),
            )
        })
    }

    /// The blind index of `value`, or `value` itself without a vault (reads of older rows).
    pub fn index(&self, purpose: &str, value: &str) -> Option<String> {
        self.0.as_ref().map(|v| v.blind(purpose, value))
    }

    /// Opens the key of a row read with its `user_keys.key_sealed` (`None`: a row written
    /// before sealing, or one whose key is gone).
    pub fn key_of(&self, user: &UserId, wrapped: Option<&str>) -> Result<Option<Arc<dyn UserKey>>> {
        match wrapped {
            Some(w) => self.required()?.user_key(user, w).map(Some),
            None => Ok(None),
        }
    }
}

/// Opens `sealed` under `key` as UTF-8 JSON.
pub(crate) fn open_json<T: serde::de::DeserializeOwned>(
    key: &dyn UserKey,
    column: &str,
    sealed: &str,
) -> Result<T> {
    let raw = key.open(column, sealed)?;
    serde_json::from_slice(&raw).map_err(|e| StoreError::corrupt(format!("{column}: {e}")))
}

/// Seals `value` under `key` as JSON.
pub(crate) fn seal_json<T: serde::Serialize>(key: &dyn UserKey, column: &str, value: &T) -> Result<String> {
    let raw = serde_json::to_vec(value).map_err(|e| StoreError::corrupt(format!("{column}: {e}")))?;
    key.seal(column, &raw)
}
