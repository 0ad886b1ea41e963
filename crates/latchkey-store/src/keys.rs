//! Storage for the key ring and envelope encryption. Values arrive sealed: this module never sees
//! a private key or a data key in the clear. Changes to a tenant's keys run under the tenant's
//! lock (its audit head row), so several nodes deciding the same rotation produce one result.

use crate::db::{Db, from_json, reserve};
use crate::schema::{
    audit_heads, data_keys, mail_outbox, master_key_checks, mfa_totp, oidc_connections, pairwise_salts,
    risk_history, saml_connections, signing_keys, tenants, user_keys,
};
use crate::{AnyConnection, Result, StoreError};
use diesel::prelude::*;
use latchkey_core::{NewAuditEvent, TenantId, UnixMillis};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSigningKey {
    pub tenant_id: TenantId,
    pub kid: String,
    pub alg: String,
    pub key_use: String,
    pub state: String,
    pub public_jwk: serde_json::Value,
    /// Sealed PKCS#8 (empty once the key is removed or revoked).
    pub private_key: String,
    pub created_at: UnixMillis,
    pub activated_at: Option<UnixMillis>,
    pub retired_at: Option<UnixMillis>,
    pub removed_at: Option<UnixMillis>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDataKey {
    pub tenant_id: TenantId,
    pub id: String,
    pub kek_id: String,
    pub wrapped: String,
    pub created_at: UnixMillis,
}

/// A sealed value and where it lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedValue {
    pub table: &'static str,
    pub column: &'static str,
    pub row: String,
    pub value: String,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = signing_keys)]
struct KeyRow {
    tenant_id: String,
    kid: String,
    alg: String,
    key_use: String,
    state: String,
    public_jwk: String,
    private_key: String,
    created_at: i64,
    activated_at: Option<i64>,
    retired_at: Option<i64>,
    removed_at: Option<i64>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = data_keys)]
struct DekRow {
    tenant_id: String,
    id: String,
    kek_id: String,
    wrapped: String,
    created_at: i64,
}

fn key_from(r: KeyRow) -> Result<StoredSigningKey> {
    Ok(StoredSigningKey {
        public_jwk: from_json("signing_keys.public_jwk", &r.public_jwk)?,
        tenant_id: TenantId(r.tenant_id),
        kid: r.kid,
        alg: r.alg,
        key_use: r.key_use,
        state: r.state,
        private_key: r.private_key,
        created_at: r.created_at,
        activated_at: r.activated_at,
        retired_at: r.retired_at,
        removed_at: r.removed_at,
    })
}

fn dek_from(r: DekRow) -> StoredDataKey {
    StoredDataKey {
        tenant_id: TenantId(r.tenant_id),
        id: r.id,
        kek_id: r.kek_id,
        wrapped: r.wrapped,
        created_at: r.created_at,
    }
}

fn load_keys(c: &mut AnyConnection, t: &TenantId) -> Result<Vec<StoredSigningKey>> {
    signing_keys::table
        .filter(signing_keys::tenant_id.eq(t.as_str()))
        .select(KeyRow::as_select())
        .order((signing_keys::created_at.asc(), signing_keys::kid.asc()))
        .load(c)?
        .into_iter()
        .map(key_from)
        .collect()
}

fn load_pairwise_salt(c: &mut AnyConnection, t: &TenantId) -> Result<Option<String>> {
    Ok(pairwise_salts::table
        .find(t.as_str())
        .select(pairwise_salts::salt_sealed)
        .first(c)
        .optional()?)
}

fn load_deks(c: &mut AnyConnection, t: Option<&TenantId>) -> Result<Vec<StoredDataKey>> {
    let mut q = data_keys::table
        .select(DekRow::as_select())
        .order((data_keys::tenant_id, data_keys::created_at))
        .into_boxed();
    if let Some(t) = t {
        q = q.filter(data_keys::tenant_id.eq(t.as_str()));
    }
    Ok(q.load(c)?.into_iter().map(dek_from).collect())
}

/// A transaction holding a tenant's key lock.
pub struct KeyTx<'a> {
    c: &'a mut AnyConnection,
    tenant: TenantId,
}

impl KeyTx<'_> {
    pub fn signing_keys(&mut self) -> Result<Vec<StoredSigningKey>> {
        load_keys(self.c, &self.tenant)
    }

    pub fn data_keys(&mut self) -> Result<Vec<StoredDataKey>> {
        load_deks(self.c, Some(&self.tenant))
    }

    /// Stores a data key, refused unless it is wrapped under the registered master key: a node
    /// that has not yet learnt of a master-key replacement must not add a key nobody can unwrap.
    pub fn insert_data_key(&mut self, k: &StoredDataKey) -> Result<()> {
        let registered: i64 = master_key_checks::table
            .filter(master_key_checks::kek_id.eq(&k.kek_id))
            .count()
            .get_result(self.c)?;
        if registered == 0 {
            return Err(StoreError::Conflict(format!(
                "master key {} was replaced; this node reloads the new one",
                k.kek_id
            )));
        }
        diesel::insert_into(data_keys::table)
            .values((
                data_keys::tenant_id.eq(self.tenant.as_str()),
                data_keys::id.eq(&k.id),
                data_keys::kek_id.eq(&k.kek_id),
                data_keys::wrapped.eq(&k.wrapped),
                data_keys::created_at.eq(k.created_at),
            ))
            .execute(self.c)?;
        Ok(())
    }

    /// The tenant's sealed pairwise-subject salt, if it has one yet.
    pub fn pairwise_salt(&mut self) -> Result<Option<String>> {
        load_pairwise_salt(self.c, &self.tenant)
    }

    /// Stores the tenant's pairwise-subject salt, sealed; made once, never replaced (the caller
    /// holds the key lock and found none).
    pub fn insert_pairwise_salt(&mut self, sealed: &str, at: UnixMillis) -> Result<()> {
        diesel::insert_into(pairwise_salts::table)
            .values((
                pairwise_salts::tenant_id.eq(self.tenant.as_str()),
                pairwise_salts::salt_sealed.eq(sealed),
                pairwise_salts::created_at.eq(at),
            ))
            .execute(self.c)?;
        Ok(())
    }

    pub fn insert_signing_key(&mut self, k: &StoredSigningKey) -> Result<()> {
        diesel::insert_into(signing_keys::table)
            .values((
                signing_keys::tenant_id.eq(self.tenant.as_str()),
                signing_keys::kid.eq(&k.kid),
                signing_keys::alg.eq(&k.alg),
                signing_keys::key_use.eq(&k.key_use),
                signing_keys::state.eq(&k.state),
                signing_keys::public_jwk.eq(k.public_jwk.to_string()),
                signing_keys::private_key.eq(&k.private_key),
                signing_keys::created_at.eq(k.created_at),
                signing_keys::activated_at.eq(k.activated_at),
                signing_keys::retired_at.eq(k.retired_at),
                signing_keys::removed_at.eq(k.removed_at),
            ))
            .execute(self.c)?;
        Ok(())
    }

    /// Up to `limit` sealed values of the tenant per column that are not sealed under data key
    /// `not_under`, each named by where it lives (the associated data it was sealed with).
    /// Rotating the data key re-seals all of them and then deletes the older keys, so a feature
    /// that seals a new column adds it here and in `reseal`.
    pub fn sealed_values(&mut self, not_under: &str, limit: usize) -> Result<Vec<SealedValue>> {
        let webhook = self.webhook_secret()?;
        let t = self.tenant.as_str();
        let current = format!("v1.{not_under}.");
        let other = format!("{current}%");
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut out = Vec::new();
        let mut add = |table, column, rows: Vec<(String, String)>| {
            out.extend(rows.into_iter().map(|(row, value)| SealedValue {
                table,
                column,
                row,
                value,
            }));
        };
        add(
            "signing_keys",
            "private_key",
            signing_keys::table
                .filter(signing_keys::tenant_id.eq(t))
                .filter(signing_keys::private_key.ne(""))
                .filter(signing_keys::private_key.not_like(&other))
                .select((signing_keys::kid, signing_keys::private_key))
                .limit(limit)
                .load(self.c)?,
        );
        let mail: Vec<(String, Option<String>)> = mail_outbox::table
            .filter(mail_outbox::tenant_id.eq(t))
            .filter(mail_outbox::body_sealed.not_like(&other))
            .select((mail_outbox::id, mail_outbox::body_sealed))
            .limit(limit)
            .load(self.c)?;
        add(
            "mail_outbox",
            "body_sealed",
            mail.into_iter().filter_map(|(row, v)| Some((row, v?))).collect(),
        );
        /// The tenant's values of `$table.$value` not under the current key, by `$key`.
        macro_rules! sealed_column {
            ($table:ident, $key:ident, $value:ident) => {
                add(
                    stringify!($table),
                    stringify!($value),
                    $table::table
                        .filter($table::tenant_id.eq(t))
                        // Only values under a data key: a TOTP seed or risk history under
                        // the person's own key (`pk.`) moves with that key.
                        .filter($table::$value.like("v1.%"))
                        .filter($table::$value.not_like(&other))
                        .select(($table::$key, $table::$value))
                        .limit(limit)
                        .load(self.c)?,
                )
            };
        }
        sealed_column!(mfa_totp, user_id, seed_sealed);
        sealed_column!(saml_connections, id, sp_key_sealed);
        sealed_column!(risk_history, user_id, history_sealed);
        sealed_column!(pairwise_salts, tenant_id, salt_sealed);
        // Each user's own key (crypto-shredding): what it seals needs no re-sealing.
        sealed_column!(user_keys, user_id, key_sealed);
        // An upstream connection's client secret or private_key_jwt key.
        add(
            "oidc_connections",
            "secret_sealed",
            oidc_connections::table
                .filter(oidc_connections::tenant_id.eq(t))
                .filter(oidc_connections::secret_sealed.ne(""))
                .filter(oidc_connections::secret_sealed.not_like(&other))
                .select((oidc_connections::id, oidc_connections::secret_sealed))
                .limit(limit)
                .load(self.c)?,
        );
        let webhook = webhook.filter(|(_, sealed)| !sealed.starts_with(&current));
        add(
            "tenants",
            "risk_webhook_secret",
            webhook
                .map(|(_, sealed)| (t.to_owned(), sealed))
                .into_iter()
                .collect(),
        );
        Ok(out)
    }

    /// The tenant's policy as stored and the risk webhook's sealed secret in it, if any. It
    /// lives inside the policy JSON (`risk.webhook_secret_sealed`), sealed as
    /// `tenants.risk_webhook_secret` of the tenant's row.
    fn webhook_secret(&mut self) -> Result<Option<(String, String)>> {
        let policy: String = tenants::table
            .find(self.tenant.as_str())
            .select(tenants::policy)
            .first(self.c)?;
        let parsed: serde_json::Value = from_json("tenants.policy", &policy)?;
        let sealed = parsed["risk"]["webhook_secret_sealed"]
            .as_str()
            .map(str::to_owned);
        Ok(sealed.map(|s| (policy, s)))
    }

    /// Replaces a sealed value if it is unchanged since it was read (one row, atomically); false
    /// otherwise.
    pub fn reseal(&mut self, v: &SealedValue, new: &str) -> Result<bool> {
        /// `UPDATE table SET value = new WHERE tenant = t AND key = row AND value = old`.
        macro_rules! swap {
            ($table:ident, $key:ident, $value:ident) => {
                diesel::update(
                    $table::table.filter(
                        $table::tenant_id
                            .eq(self.tenant.as_str())
                            .and($table::$key.eq(&v.row))
                            .and($table::$value.eq(&v.value)),
                    ),
                )
                .set($table::$value.eq(new))
                .execute(self.c)?
            };
        }
        let n = match (v.table, v.column) {
            ("signing_keys", "private_key") => swap!(signing_keys, kid, private_key),
            ("mail_outbox", "body_sealed") => swap!(mail_outbox, id, body_sealed),
            ("mfa_totp", "seed_sealed") => swap!(mfa_totp, user_id, seed_sealed),
            ("saml_connections", "sp_key_sealed") => swap!(saml_connections, id, sp_key_sealed),
            ("risk_history", "history_sealed") => swap!(risk_history, user_id, history_sealed),
            ("pairwise_salts", "salt_sealed") => swap!(pairwise_salts, tenant_id, salt_sealed),
            ("user_keys", "key_sealed") => swap!(user_keys, user_id, key_sealed),
            ("oidc_connections", "secret_sealed") => swap!(oidc_connections, id, secret_sealed),
            ("tenants", "risk_webhook_secret") => self.reseal_webhook_secret(&v.value, new)?,
            (table, column) => {
                return Err(StoreError::Database(format!("no sealed column {table}.{column}")));
            }
        };
        Ok(n == 1)
    }

    /// Swaps the webhook secret inside the policy JSON, if neither it nor the policy changed.
    fn reseal_webhook_secret(&mut self, old: &str, new: &str) -> Result<usize> {
        let Some((policy, sealed)) = self.webhook_secret()? else {
            return Ok(0);
        };
        if sealed != old {
            return Ok(0);
        }
        let mut parsed: serde_json::Value = from_json("tenants.policy", &policy)?;
        parsed["risk"]["webhook_secret_sealed"] = serde_json::Value::String(new.to_owned());
        Ok(diesel::update(
            tenants::table.filter(
                tenants::id
                    .eq(self.tenant.as_str())
                    .and(tenants::policy.eq(&policy)),
            ),
        )
        .set(tenants::policy.eq(parsed.to_string()))
        .execute(self.c)?)
    }

    pub fn delete_data_key(&mut self, id: &str) -> Result<()> {
        diesel::delete(
            data_keys::table.filter(
                data_keys::tenant_id
                    .eq(self.tenant.as_str())
                    .and(data_keys::id.eq(id)),
            ),
        )
        .execute(self.c)?;
        Ok(())
    }

    /// Moves a key to `to` if it is in one of `from`; stamps the transition time and wipes the
    /// sealed private key when the key leaves service for good. Returns whether it moved.
    pub fn set_state(&mut self, kid: &str, from: &[&str], to: &str, at: UnixMillis) -> Result<bool> {
        let target = signing_keys::table.filter(
            signing_keys::tenant_id
                .eq(self.tenant.as_str())
                .and(signing_keys::kid.eq(kid))
                .and(signing_keys::state.eq_any(from.to_vec())),
        );
        let n = match to {
            "active" => diesel::update(target)
                .set((
                    signing_keys::state.eq(to),
                    signing_keys::activated_at.eq(Some(at)),
                ))
                .execute(self.c)?,
            "retired" => diesel::update(target)
                .set((signing_keys::state.eq(to), signing_keys::retired_at.eq(Some(at))))
                .execute(self.c)?,
            "removed" | "revoked" => diesel::update(target)
                .set((
                    signing_keys::state.eq(to),
                    signing_keys::removed_at.eq(Some(at)),
                    signing_keys::private_key.eq(""),
                ))
                .execute(self.c)?,
            other => return Err(StoreError::Database(format!("unknown key state {other:?}"))),
        };
        Ok(n == 1)
    }
}

impl Db {
    pub fn master_key_checks(&self) -> Result<Vec<(String, String)>> {
        let mut conn = self.conn()?;
        Ok(master_key_checks::table
            .select((master_key_checks::kek_id, master_key_checks::check_value))
            .load(&mut *conn)?)
    }

    /// Records the master key's check value on first start; refuses if one already exists.
    pub fn init_master_key_check(&self, kek_id: &str, check: &str) -> Result<()> {
        self.write(|c| {
            let existing: i64 = master_key_checks::table.count().get_result(c)?;
            if existing > 0 {
                return Err(StoreError::Conflict("a master key is already registered".into()));
            }
            diesel::insert_into(master_key_checks::table)
                .values((
                    master_key_checks::kek_id.eq(kek_id),
                    master_key_checks::check_value.eq(check),
                    master_key_checks::created_at.eq(self.now()),
                ))
                .execute(c)?;
            Ok(())
        })
    }

    pub fn signing_keys(&self, t: &TenantId) -> Result<Vec<StoredSigningKey>> {
        let mut conn = self.conn()?;
        load_keys(&mut conn, t)
    }

    /// The tenant's sealed pairwise-subject salt, if it has one yet.
    pub fn pairwise_salt(&self, t: &TenantId) -> Result<Option<String>> {
        let mut conn = self.conn()?;
        load_pairwise_salt(&mut conn, t)
    }

    pub fn data_keys(&self, t: &TenantId) -> Result<Vec<StoredDataKey>> {
        let mut conn = self.conn()?;
        load_deks(&mut conn, Some(t))
    }

    pub fn all_data_keys(&self) -> Result<Vec<StoredDataKey>> {
        let mut conn = self.conn()?;
        load_deks(&mut conn, None)
    }

    /// Runs `f` holding the tenant's key lock; writes the audit event it returns, if any, in the
    /// same transaction. The lock is a no-op update of the tenant's audit head: PostgreSQL's row
    /// lock (or SQLite's write lock) makes concurrent schedulers take turns.
    pub fn with_key_lock<T>(
        &self,
        t: &TenantId,
        f: impl FnOnce(&mut KeyTx<'_>) -> Result<(T, Option<NewAuditEvent>)>,
    ) -> Result<T> {
        self.write_once(|c| {
            let locked = diesel::update(audit_heads::table.find(t.as_str()))
                .set(audit_heads::seq.eq(audit_heads::seq))
                .execute(c)?;
            if locked == 0 {
                return Err(StoreError::NotFound { what: "tenant" });
            }
            let (value, event) = {
                let mut tx = KeyTx {
                    c: &mut *c,
                    tenant: t.clone(),
                };
                f(&mut tx)?
            };
            if let Some(event) = event {
                let link = reserve(c, t)?;
                self.record(c, t, link, event)?;
            }
            Ok(value)
        })
    }

    /// Replaces the master key in one transaction: every data key re-wrapped, the check value
    /// swapped, and an audit event in the chain of every tenant that has keys.
    pub fn rotate_master_key(
        &self,
        actor: &str,
        new_kek_id: &str,
        new_check: &str,
        rewrapped: &[StoredDataKey],
    ) -> Result<()> {
        self.write(|c| {
            for k in rewrapped {
                let n = diesel::update(
                    data_keys::table.filter(
                        data_keys::tenant_id
                            .eq(k.tenant_id.as_str())
                            .and(data_keys::id.eq(&k.id)),
                    ),
                )
                .set((data_keys::wrapped.eq(&k.wrapped), data_keys::kek_id.eq(&k.kek_id)))
                .execute(c)?;
                if n != 1 {
                    return Err(StoreError::Conflict(format!(
                        "data key {} changed during rotation",
                        k.id
                    )));
                }
            }
            let remaining: i64 = data_keys::table
                .filter(data_keys::kek_id.ne(new_kek_id))
                .count()
                .get_result(c)?;
            if remaining > 0 {
                return Err(StoreError::Conflict(
                    "data keys were added during rotation; run it again".into(),
                ));
            }
            diesel::delete(master_key_checks::table).execute(c)?;
            diesel::insert_into(master_key_checks::table)
                .values((
                    master_key_checks::kek_id.eq(new_kek_id),
                    master_key_checks::check_value.eq(new_check),
                    master_key_checks::created_at.eq(self.now()),
                ))
                .execute(c)?;
            let mut tenants: Vec<TenantId> = rewrapped.iter().map(|k| k.tenant_id.clone()).collect();
            tenants.dedup();
            for t in tenants {
                let link = reserve(c, &t)?;
                let event = NewAuditEvent::success(
                    actor,
                    "keys.rotate_master",
                    format!("tenant:{t}"),
                    serde_json::json!({"kek_id": new_kek_id}),
                );
                self.record(c, &t, link, event)?;
            }
            Ok(())
        })
    }
}
