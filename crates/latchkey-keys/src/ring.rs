//! The key ring service: bootstrap, staged rotation, manual transitions, JWKS, signing and
//! verification with parsed keys cached per `kid`, and the scheduler's `tick`. State lives in the
//! store; every change runs under the tenant's key lock and is audited.

use crate::envelope::Aad;
use crate::jwt::{self, Expect};
use crate::{Alg, DataKey, KeyError, MasterKey, PairwiseSalt, SigningKey, VerifyingKey};
use latchkey_core::{Clock, KeyPolicy, NewAuditEvent, TenantId, UnixMillis};
use latchkey_store::{Db, KeyTx, StoredDataKey, StoredSigningKey};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Audience and subject of [`KeyRing::test_token`]'s token (no client has it), and its lifetime.
pub const TEST_TOKEN_AUDIENCE: &str = "latchkey-test-token";
const TEST_TOKEN_SECS: i64 = 300;

/// JWKS responses may be cached this long; pre-publication must be at least twice as long.
pub const JWKS_MAX_AGE_SECS: u64 = 3600;
/// How long a node trusts its cached ring before looking for transitions made by other nodes.
const CACHE_TTL_MS: i64 = 5_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    Pending,
    Active,
    Retired,
    Removed,
    Revoked,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Pending => "pending",
            KeyState::Active => "active",
            KeyState::Retired => "retired",
            KeyState::Removed => "removed",
            KeyState::Revoked => "revoked",
        }
    }

    fn parse(s: &str) -> Result<Self, KeyError> {
        Ok(match s {
            "pending" => KeyState::Pending,
            "active" => KeyState::Active,
            "retired" => KeyState::Retired,
            "removed" => KeyState::Removed,
            "revoked" => KeyState::Revoked,
            other => {
                return Err(KeyError::Crypto(format!(
                    "unknown key state {other:?} in the database"
                )));
            }
        })
    }

    /// Published in JWKS (so relying parties can verify what it signed, or will sign).
    pub fn published(self) -> bool {
        matches!(self, KeyState::Pending | KeyState::Active | KeyState::Retired)
    }
}

/// A key as operators see it.
#[derive(Debug, Clone, serde::Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RingKey {
    pub kid: String,
    pub alg: Alg,
    pub state: KeyState,
    pub created_at: UnixMillis,
    pub activated_at: Option<UnixMillis>,
    pub retired_at: Option<UnixMillis>,
    pub removed_at: Option<UnixMillis>,
    #[serde(skip)]
    pub public_jwk: Value,
}

impl RingKey {
    fn from_stored(k: &StoredSigningKey) -> Result<Self, KeyError> {
        Ok(RingKey {
            kid: k.kid.clone(),
            alg: k.alg.parse().map_err(KeyError::Crypto)?,
            state: KeyState::parse(&k.state)?,
            created_at: k.created_at,
            activated_at: k.activated_at,
            retired_at: k.retired_at,
            removed_at: k.removed_at,
            public_jwk: k.public_jwk.clone(),
        })
    }
}

/// What one scheduler pass changed.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct TickReport {
    pub created_active: Vec<String>,
    pub created_pending: Vec<String>,
    pub activated: Vec<String>,
    pub retired: Vec<String>,
    pub removed: Vec<String>,
}

impl TickReport {
    pub fn is_empty(&self) -> bool {
        self == &TickReport::default()
    }
}

/// One tenant's ring as cached by a node.
struct Loaded {
    at: UnixMillis,
    /// The newest active key per algorithm: what signs.
    active: HashMap<Alg, (String, Arc<SigningKey>)>,
    signers: HashMap<String, Arc<SigningKey>>,
    verifiers: HashMap<String, VerifyingKey>,
    jwks: Arc<Value>,
    /// `jwks` serialized once per load: the JWKS endpoint serves these bytes as they are.
    jwks_json: Arc<str>,
}

impl Loaded {
    /// The kid and key that sign with `alg` now.
    fn signer(&self, alg: Alg) -> Result<(&str, &SigningKey), KeyError> {
        self.active
            .get(&alg)
            .map(|(kid, key)| (kid.as_str(), &**key))
            .ok_or_else(|| KeyError::Refused(format!("no active {alg} key")))
    }
}

pub struct KeyRing {
    db: Db,
    /// Replaced in place when another node or the CLI replaces the master key.
    master: std::sync::RwLock<Arc<MasterKey>>,
    clock: Arc<dyn Clock>,
    cache: Mutex<HashMap<TenantId, Arc<Loaded>>>,
    /// Pairwise salts opened so far: a salt never changes, so it is kept for good.
    salts: Mutex<HashMap<TenantId, PairwiseSalt>>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("master", &self.master().id)
            .finish_non_exhaustive()
    }
}

/// The key named `kid` among `keys`.
fn find<'a>(keys: &'a [RingKey], kid: &str) -> Result<&'a RingKey, KeyError> {
    keys.iter()
        .find(|k| k.kid == kid)
        .ok_or_else(|| KeyError::UnknownKey(kid.into()))
}

fn private_aad<'a>(t: &'a TenantId, kid: &'a str) -> Aad<'a> {
    Aad {
        tenant: t.as_str(),
        table: "signing_keys",
        column: "private_key",
        row: kid,
    }
}

/// Where a tenant's pairwise salt is sealed: its row of `pairwise_salts`.
fn pairwise_aad(t: &TenantId) -> Aad<'_> {
    Aad {
        tenant: t.as_str(),
        table: "pairwise_salts",
        column: "salt_sealed",
        row: t.as_str(),
    }
}

fn event(actor: &str, action: &str, t: &TenantId, details: Value) -> NewAuditEvent {
    NewAuditEvent::success(actor, action, format!("tenant:{t}"), details)
}

impl KeyRing {
    /// Opens the ring with `master`, refusing a master key that is not the one the stored data
    /// was encrypted under. On a database with nothing encrypted yet, registers this key.
    pub fn open(db: Db, master: MasterKey, clock: Arc<dyn Clock>) -> Result<Self, KeyError> {
        let checks = db.master_key_checks()?;
        if checks.is_empty() {
            db.init_master_key_check(&master.id, &master.check_value()?)?;
        } else if !checks
            .iter()
            .any(|(id, check)| *id == master.id && master.matches_check(check))
        {
            let expected: Vec<&str> = checks.iter().map(|(id, _)| id.as_str()).collect();
            return Err(KeyError::MasterKey(format!(
                "this is master key {}, but the data is encrypted under {}; start with the right LATCHKEY_MASTER_KEY or key file",
                master.id,
                expected.join(", ")
            )));
        }
        Ok(Self {
            db,
            master: std::sync::RwLock::new(Arc::new(master)),
            clock,
            cache: Mutex::default(),
            salts: Mutex::default(),
        })
    }

    /// Whether anything is encrypted yet (if so, a missing master key must never be replaced).
    pub fn has_encrypted_data(db: &Db) -> Result<bool, KeyError> {
        Ok(!db.master_key_checks()?.is_empty())
    }

    pub fn master_key_id(&self) -> String {
        self.master().id.clone()
    }

    fn master(&self) -> Arc<MasterKey> {
        self.master
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Takes `new` as the master key if the stored data is now encrypted under it (another node
    /// or the CLI replaced the key) and forgets every cached ring. `Ok(false)`: it already was.
    pub fn reload_master(&self, new: MasterKey) -> Result<bool, KeyError> {
        if new.id == self.master().id {
            return Ok(false);
        }
        let checks = self.db.master_key_checks()?;
        if !checks
            .iter()
            .any(|(id, check)| *id == new.id && new.matches_check(check))
        {
            return Err(KeyError::MasterKey(format!(
                "the configured master key is {}, but the data is encrypted under {}",
                new.id,
                checks
                    .iter()
                    .map(|(id, _)| id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        *self
            .master
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(new);
        self.invalidate_all();
        Ok(true)
    }

    fn now(&self) -> UnixMillis {
        self.clock.now_millis()
    }

    /// The tenant's current data key, creating one on first use (inside the key lock).
    fn data_key(&self, tx: &mut KeyTx<'_>, t: &TenantId) -> Result<DataKey, KeyError> {
        if let Some(k) = tx.data_keys()?.last() {
            return self.master().unwrap_key(&k.wrapped, t.as_str(), &k.id);
        }
        let dek = DataKey::generate()?;
        let wrapped = self.master().wrap(&dek, t.as_str())?;
        tx.insert_data_key(&StoredDataKey {
            tenant_id: t.clone(),
            id: dek.id.clone(),
            kek_id: self.master().id.clone(),
            wrapped,
            created_at: self.now(),
        })?;
        Ok(dek)
    }

    /// Generates a key, seals its private half and stores it in `state`.
    fn create(
        &self,
        tx: &mut KeyTx<'_>,
        t: &TenantId,
        alg: Alg,
        state: KeyState,
    ) -> Result<String, KeyError> {
        let dek = self.data_key(tx, t)?;
        let (key, pkcs8) = SigningKey::generate(alg)?;
        let kid = key.kid();
        let now = self.now();
        tx.insert_signing_key(&StoredSigningKey {
            tenant_id: t.clone(),
            kid: kid.clone(),
            alg: alg.as_str().into(),
            key_use: "sig".into(),
            state: state.as_str().into(),
            public_jwk: key.public_jwk(),
            private_key: dek.seal(private_aad(t, &kid), &pkcs8)?,
            created_at: now,
            activated_at: (state == KeyState::Active).then_some(now),
            retired_at: None,
            removed_at: None,
        })?;
        Ok(kid)
    }

    fn ring_keys(tx: &mut KeyTx<'_>) -> Result<Vec<RingKey>, KeyError> {
        tx.signing_keys()?.iter().map(RingKey::from_stored).collect()
    }

    /// Runs a change under the tenant's key lock and forgets the cached ring afterwards.
    fn change<T>(
        &self,
        t: &TenantId,
        f: impl FnOnce(&mut KeyTx<'_>) -> Result<(T, Option<NewAuditEvent>), KeyError>,
    ) -> Result<T, KeyError> {
        let mut failure = None;
        let result = self.db.with_key_lock(t, |tx| match f(tx) {
            Ok(v) => Ok(v),
            Err(KeyError::Store(e)) => Err(e),
            Err(other) => {
                failure = Some(other);
                Err(latchkey_store::StoreError::Database(
                    "key operation failed".into(),
                ))
            }
        });
        self.invalidate(t);
        match (result, failure) {
            (Ok(v), _) => Ok(v),
            (Err(_), Some(e)) => Err(e),
            (Err(e), None) => Err(KeyError::Store(e)),
        }
    }

    /// A new tenant starts with one active ES256 and one active RS256 key (idempotent).
    pub fn ensure_tenant(&self, t: &TenantId, actor: &str) -> Result<Vec<String>, KeyError> {
        self.change(t, |tx| {
            let keys = Self::ring_keys(tx)?;
            let mut created = Vec::new();
            for alg in [Alg::ES256, Alg::RS256] {
                if !keys.iter().any(|k| k.alg == alg && k.state == KeyState::Active) {
                    created.push(self.create(tx, t, alg, KeyState::Active)?);
                }
            }
            let ev =
                (!created.is_empty()).then(|| event(actor, "keys.bootstrap", t, json!({"kids": created})));
            Ok((created, ev))
        })
    }

    /// Creates a pending key: published at once, signing only once activated.
    pub fn rotate(&self, t: &TenantId, alg: Alg, actor: &str) -> Result<String, KeyError> {
        self.change(t, |tx| {
            let kid = self.create(tx, t, alg, KeyState::Pending)?;
            let ev = event(actor, "keys.rotate", t, json!({"kid": kid, "alg": alg}));
            Ok((kid, Some(ev)))
        })
    }

    /// Makes a pending key active now; the algorithm's previous active key retires.
    pub fn activate(&self, t: &TenantId, kid: &str, actor: &str) -> Result<(), KeyError> {
        self.change(t, |tx| {
            let keys = Self::ring_keys(tx)?;
            let key = find(&keys, kid)?;
            if key.state != KeyState::Pending {
                return Err(KeyError::Refused(format!(
                    "key {kid} is {}, only a pending key can be activated",
                    key.state.as_str()
                )));
            }
            let now = self.now();
            let retired = Self::promote(tx, &keys, key, now)?;
            let ev = event(actor, "keys.activate", t, json!({"kid": kid, "retired": retired}));
            Ok(((), Some(ev)))
        })
    }

    /// Activates `key` and retires the other active keys of its algorithm; returns their kids.
    fn promote(
        tx: &mut KeyTx<'_>,
        keys: &[RingKey],
        key: &RingKey,
        now: UnixMillis,
    ) -> Result<Vec<String>, KeyError> {
        let mut retired = Vec::new();
        for old in keys
            .iter()
            .filter(|k| k.alg == key.alg && k.state == KeyState::Active)
        {
            if tx.set_state(&old.kid, &["active"], "retired", now)? {
                retired.push(old.kid.clone());
            }
        }
        if !tx.set_state(&key.kid, &["pending"], "active", now)? {
            return Err(KeyError::Refused(format!("key {} changed meanwhile", key.kid)));
        }
        Ok(retired)
    }

    /// Stops a key from signing; it stays published so what it signed still verifies.
    pub fn retire(&self, t: &TenantId, kid: &str, actor: &str) -> Result<(), KeyError> {
        self.change(t, |tx| {
            let keys = Self::ring_keys(tx)?;
            let key = find(&keys, kid)?;
            let others_active = keys
                .iter()
                .any(|k| k.alg == key.alg && k.state == KeyState::Active && k.kid != kid);
            match key.state {
                KeyState::Active if !others_active => {
                    return Err(KeyError::Refused(format!(
                        "{kid} is the only active {} key; rotate and activate a new one first",
                        key.alg
                    )));
                }
                KeyState::Active | KeyState::Pending => {}
                other => {
                    return Err(KeyError::Refused(format!(
                        "key {kid} is already {}",
                        other.as_str()
                    )));
                }
            }
            tx.set_state(kid, &["active", "pending"], "retired", self.now())?;
            Ok(((), Some(event(actor, "keys.retire", t, json!({"kid": kid})))))
        })
    }

    /// Emergency: the key leaves JWKS at once and what it signed stops verifying. If it was the
    /// algorithm's only active key, a replacement is activated immediately.
    pub fn revoke(&self, t: &TenantId, kid: &str, actor: &str) -> Result<Option<String>, KeyError> {
        self.change(t, |tx| {
            let keys = Self::ring_keys(tx)?;
            let key = find(&keys, kid)?;
            if !key.state.published() {
                return Err(KeyError::Refused(format!(
                    "key {kid} is already {}",
                    key.state.as_str()
                )));
            }
            tx.set_state(kid, &["pending", "active", "retired"], "revoked", self.now())?;
            let still_active = keys
                .iter()
                .any(|k| k.alg == key.alg && k.state == KeyState::Active && k.kid != kid);
            // Prefer a successor relying parties have already fetched; create one only if none.
            let pending = keys
                .iter()
                .filter(|k| k.alg == key.alg && k.state == KeyState::Pending)
                .min_by_key(|k| k.created_at);
            let replacement = match (key.state == KeyState::Active && !still_active, pending) {
                (false, _) => None,
                (true, Some(p)) => {
                    tx.set_state(&p.kid, &["pending"], "active", self.now())?;
                    Some(p.kid.clone())
                }
                (true, None) => Some(self.create(tx, t, key.alg, KeyState::Active)?),
            };
            let ev = event(
                actor,
                "keys.revoke",
                t,
                json!({"kid": kid, "replacement": replacement}),
            );
            Ok((replacement, Some(ev)))
        })
    }

    /// The scheduler's step for one tenant: bootstrap missing keys, pre-publish a successor when
    /// rotation is near, activate it once published long enough, remove retired keys whose tokens
    /// have all expired. Idempotent, and safe when several nodes run it at once.
    pub fn tick(&self, t: &TenantId, policy: &KeyPolicy, actor: &str) -> Result<TickReport, KeyError> {
        let hour = 3_600_000_i64;
        let rotation = i64::from(policy.rotation_days) * 24 * hour;
        let prepublish = (i64::from(policy.prepublish_hours) * hour).max(2 * JWKS_MAX_AGE_SECS as i64 * 1000);
        let retire_after =
            i64::from(policy.max_token_lifetime_secs) * 1000 + i64::from(policy.retire_margin_hours) * hour;
        self.change(t, |tx| {
            let now = self.now();
            let mut report = TickReport::default();
            let keys = Self::ring_keys(tx)?;
            let mut algs: Vec<Alg> = vec![Alg::ES256, Alg::RS256];
            algs.extend(keys.iter().filter(|k| k.state == KeyState::Active).map(|k| k.alg));
            algs.sort();
            algs.dedup();
            for alg in algs {
                let active = keys
                    .iter()
                    .filter(|k| k.alg == alg && k.state == KeyState::Active)
                    .max_by_key(|k| k.activated_at);
                let pending = keys
                    .iter()
                    .filter(|k| k.alg == alg && k.state == KeyState::Pending)
                    .min_by_key(|k| k.created_at);
                match (active, pending) {
                    (None, None) => report
                        .created_active
                        .push(self.create(tx, t, alg, KeyState::Active)?),
                    (_, Some(p)) if now >= p.created_at + prepublish => {
                        report.retired.extend(Self::promote(tx, &keys, p, now)?);
                        report.activated.push(p.kid.clone());
                    }
                    (Some(a), None)
                        if now >= a.activated_at.unwrap_or(a.created_at) + rotation - prepublish =>
                    {
                        report
                            .created_pending
                            .push(self.create(tx, t, alg, KeyState::Pending)?);
                    }
                    _ => {}
                }
            }
            for k in keys.iter().filter(|k| k.state == KeyState::Retired) {
                if now >= k.retired_at.unwrap_or(k.created_at) + retire_after
                    && tx.set_state(&k.kid, &["retired"], "removed", now)?
                {
                    report.removed.push(k.kid.clone());
                }
            }
            let ev = (!report.is_empty()).then(|| event(actor, "keys.scheduled", t, json!(report)));
            Ok((report, ev))
        })
    }

    /// Every key of the tenant, newest last, as stored now.
    pub fn list(&self, t: &TenantId) -> Result<Vec<RingKey>, KeyError> {
        self.db
            .signing_keys(t)?
            .iter()
            .map(RingKey::from_stored)
            .collect()
    }

    pub fn invalidate(&self, t: &TenantId) {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(t);
    }

    /// Forgets every tenant's cached ring.
    pub fn invalidate_all(&self) {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }

    /// The tenant's ring from the cache, reloaded when older than a few seconds (so transitions
    /// made by other nodes arrive quickly); keys already parsed are reused, never parsed again.
    fn loaded(&self, t: &TenantId) -> Result<Arc<Loaded>, KeyError> {
        if let Some(l) = self.fresh(t) {
            return Ok(l);
        }
        let now = self.now();
        // Stale or missing: the stale ring's parsed keys are reused below.
        let previous = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(t)
            .cloned();
        let stored = self.db.signing_keys(t)?;
        let mut deks: HashMap<String, DataKey> = HashMap::new();
        let mut keys = Vec::new();
        let mut signers = HashMap::new();
        let mut verifiers = HashMap::new();
        let mut published = Vec::new();
        for s in &stored {
            let k = RingKey::from_stored(s)?;
            if k.state == KeyState::Active {
                let reused = previous.as_ref().and_then(|p| p.signers.get(&k.kid).cloned());
                let signer = match reused {
                    Some(s) => s,
                    None => Arc::new(self.open_private(t, s, &mut deks)?),
                };
                signers.insert(k.kid.clone(), signer);
            }
            if matches!(k.state, KeyState::Active | KeyState::Retired) {
                verifiers.insert(k.kid.clone(), VerifyingKey::from_jwk(k.alg, &k.public_jwk)?);
            }
            if k.state.published() {
                let mut jwk = k.public_jwk.clone();
                jwk["kid"] = json!(k.kid);
                jwk["alg"] = json!(k.alg.as_str());
                jwk["use"] = json!("sig");
                published.push(jwk);
            }
            keys.push(k);
        }
        let mut active: HashMap<Alg, (String, Arc<SigningKey>, Option<UnixMillis>)> = HashMap::new();
        for k in keys.iter().filter(|k| k.state == KeyState::Active) {
            let newer = active.get(&k.alg).is_none_or(|(_, _, at)| k.activated_at > *at);
            if newer {
                active.insert(
                    k.alg,
                    (k.kid.clone(), Arc::clone(&signers[&k.kid]), k.activated_at),
                );
            }
        }
        let active = active
            .into_iter()
            .map(|(alg, (kid, key, _))| (alg, (kid, key)))
            .collect();
        let loaded = Arc::new(Loaded {
            at: now,
            active,
            signers,
            verifiers,
            jwks_json: Arc::from(json!({"keys": &published}).to_string()),
            jwks: Arc::new(json!({"keys": published})),
        });
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(t.clone(), Arc::clone(&loaded));
        Ok(loaded)
    }

    fn open_private(
        &self,
        t: &TenantId,
        s: &StoredSigningKey,
        deks: &mut HashMap<String, DataKey>,
    ) -> Result<SigningKey, KeyError> {
        let dek_id = crate::envelope::parse(&s.private_key)?.key_id;
        if !deks.contains_key(&dek_id) {
            let stored = self.db.data_keys(t)?;
            let wrapped = stored
                .iter()
                .find(|d| d.id == dek_id)
                .ok_or_else(|| KeyError::Sealed(format!("data key {dek_id} is missing")))?;
            deks.insert(
                dek_id.clone(),
                self.master().unwrap_key(&wrapped.wrapped, t.as_str(), &dek_id)?,
            );
        }
        let pkcs8 = deks[&dek_id].open(private_aad(t, &s.kid), &s.private_key)?;
        SigningKey::from_pkcs8(s.alg.parse().map_err(KeyError::Crypto)?, &pkcs8)
    }

    /// The public JWK Set (pending, active and retired keys).
    pub fn jwks(&self, t: &TenantId) -> Result<Arc<Value>, KeyError> {
        Ok(Arc::clone(&self.loaded(t)?.jwks))
    }

    /// The JWK Set as JSON text (loading the ring from the store when needed).
    pub fn jwks_json(&self, t: &TenantId) -> Result<Arc<str>, KeyError> {
        Ok(Arc::clone(&self.loaded(t)?.jwks_json))
    }

    /// Whether the ring of tenant `t` is cached and fresh, so that `sign`, `verify` and the JWK
    /// Set need no store access now: a caller on an async thread can then skip the hop to the
    /// blocking pool (the hop costs more than an ES256 signature).
    pub fn is_cached(&self, t: &TenantId) -> bool {
        self.fresh(t).is_some()
    }

    fn fresh(&self, t: &TenantId) -> Option<Arc<Loaded>> {
        let now = self.now();
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(t)
            .filter(|l| now - l.at < CACHE_TTL_MS)
            .cloned()
    }

    /// Signs `claims` with the newest active key of `alg`; returns the compact JWS.
    pub fn sign(&self, t: &TenantId, alg: Alg, typ: &str, claims: &Value) -> Result<String, KeyError> {
        let l = self.loaded(t)?;
        let (kid, key) = l.signer(alg)?;
        jwt::encode(key, kid, typ, claims)
    }

    /// Verifies a token signed by one of the tenant's active or retired keys.
    pub fn verify(&self, t: &TenantId, token: &str, expect: &Expect<'_>) -> Result<Value, KeyError> {
        let l = self.loaded(t)?;
        jwt::decode(token, |kid| l.verifiers.get(kid).cloned(), expect)
    }

    /// A five-minute token for nobody (audience and subject [`TEST_TOKEN_AUDIENCE`]) signed by
    /// the active key of `alg` and verified before it is returned: shows which kid signs now
    /// and that the published keys verify it (`keys test-token`, `POST …/keys/test-token`).
    /// Answers the token and the kid that signed it.
    pub fn test_token(&self, t: &TenantId, issuer: &str, alg: Alg) -> Result<(String, String), KeyError> {
        let now = self.clock.now_millis() / 1000;
        let claims = json!({"iss": issuer, "aud": TEST_TOKEN_AUDIENCE, "sub": TEST_TOKEN_AUDIENCE,
            "iat": now, "nbf": now, "exp": now + TEST_TOKEN_SECS});
        let l = self.loaded(t)?;
        let (kid, key) = l.signer(alg)?;
        let token = jwt::encode(key, kid, "JWT", &claims)?;
        let expect = Expect {
            issuer,
            audience: Some(TEST_TOKEN_AUDIENCE),
            typ: None,
            now,
            leeway_secs: 0,
        };
        self.verify(t, &token, &expect)?;
        Ok((token, kid.to_owned()))
    }

    /// The tenant's pairwise-subject salt, made, sealed and stored on first use (under the key
    /// lock, so nodes asking at once agree on one). See [`PairwiseSalt`].
    pub fn pairwise_salt(&self, t: &TenantId) -> Result<PairwiseSalt, KeyError> {
        if let Some(s) = self.cached_pairwise_salt(t) {
            return Ok(s);
        }
        let sealed = match self.db.pairwise_salt(t)? {
            Some(sealed) => sealed,
            None => self.change(t, |tx| {
                if let Some(sealed) = tx.pairwise_salt()? {
                    return Ok((sealed, None));
                }
                let dek = self.data_key(tx, t)?;
                let sealed = dek.seal(pairwise_aad(t), PairwiseSalt::generate()?.as_bytes())?;
                tx.insert_pairwise_salt(&sealed, self.now())?;
                let ev = event("system", "keys.pairwise_salt", t, json!({}));
                Ok((sealed, Some(ev)))
            })?,
        };
        let salt = PairwiseSalt::from_opened(&self.open_sealed(t, pairwise_aad(t), &sealed)?)?;
        self.salts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(t.clone(), salt.clone());
        Ok(salt)
    }

    /// The tenant's pairwise salt if this node has opened it already: no store access, so a
    /// caller on an async thread can skip the blocking pool.
    pub fn cached_pairwise_salt(&self, t: &TenantId) -> Option<PairwiseSalt> {
        self.salts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(t)
            .cloned()
    }

    /// Seals a value of tenant `t` under its data key (for TOTP seeds, SAML keys, personal data).
    pub fn seal(&self, t: &TenantId, aad: Aad<'_>, plaintext: &[u8]) -> Result<String, KeyError> {
        let dek = self.change(t, |tx| Ok((self.data_key(tx, t)?, None)))?;
        dek.seal(aad, plaintext)
    }

    /// Tenant `t`'s pairwise salt if it has one; never makes one (a read must not write).
    pub(crate) fn stored_pairwise_salt(&self, t: &TenantId) -> Result<Option<PairwiseSalt>, KeyError> {
        if let Some(s) = self.cached_pairwise_salt(t) {
            return Ok(Some(s));
        }
        match self.db.pairwise_salt(t)? {
            Some(sealed) => Ok(Some(PairwiseSalt::from_opened(&self.open_sealed(
                t,
                pairwise_aad(t),
                &sealed,
            )?)?)),
            None => Ok(None),
        }
    }

    /// Seals under the tenant's newest data key without the key lock when it has one (no
    /// write, and the signing-key cache stays warm); else as `seal`, which makes one.
    pub(crate) fn seal_current(
        &self,
        t: &TenantId,
        aad: Aad<'_>,
        plaintext: &[u8],
    ) -> Result<String, KeyError> {
        match self.db.data_keys(t)?.last() {
            Some(k) => self
                .master()
                .unwrap_key(&k.wrapped, t.as_str(), &k.id)?
                .seal(aad, plaintext),
            None => self.seal(t, aad, plaintext),
        }
    }

    /// Every data key of tenant `t`, unwrapped (at most two: during a rotation).
    pub(crate) fn data_keys_of(&self, t: &TenantId) -> Result<Vec<DataKey>, KeyError> {
        self.db
            .data_keys(t)?
            .iter()
            .map(|k| self.master().unwrap_key(&k.wrapped, t.as_str(), &k.id))
            .collect()
    }

    /// Tenant `t`'s data key `id`, unwrapped from the store.
    pub(crate) fn data_key_by_id(&self, t: &TenantId, id: &str) -> Result<DataKey, KeyError> {
        let stored = self.db.data_keys(t)?;
        let wrapped = stored
            .iter()
            .find(|d| d.id == id)
            .ok_or_else(|| KeyError::Sealed(format!("data key {id} is missing")))?;
        self.master().unwrap_key(&wrapped.wrapped, t.as_str(), id)
    }

    pub fn open_sealed(&self, t: &TenantId, aad: Aad<'_>, sealed: &str) -> Result<Vec<u8>, KeyError> {
        let dek_id = crate::envelope::parse(sealed)?.key_id;
        let stored = self.db.data_keys(t)?;
        let wrapped = stored
            .iter()
            .find(|d| d.id == dek_id)
            .ok_or_else(|| KeyError::Sealed(format!("data key {dek_id} is missing")))?;
        self.master()
            .unwrap_key(&wrapped.wrapped, t.as_str(), &dek_id)?
            .open(aad, sealed)
    }

    /// Starts (or resumes) replacing the tenant's data key. It re-seals every value the store
    /// lists in `KeyTx::sealed_values` (signing keys' private halves, queued mail bodies, TOTP
    /// seeds, SAML SP keys, risk histories, the risk webhook's secret, the pairwise salt); a
    /// feature that seals a column of its own adds it there, because the old data key is deleted
    /// once this pass finds nothing left under it.
    ///
    /// How it works: a new key seals from now on, and values
    /// sealed under older keys are re-sealed `batch` at a time, each batch in its own transaction,
    /// so an interrupted run continues where it stopped; both keys open values until the last
    /// batch, after which the old keys are deleted. Returns the new key's id and how many values
    /// were re-sealed by this call.
    pub fn rotate_dek(
        &self,
        t: &TenantId,
        actor: &str,
        batch: usize,
        max_batches: Option<usize>,
    ) -> Result<(String, usize), KeyError> {
        let current = self.start_dek_rotation(t, actor)?;
        let batch = batch.max(1);
        let mut resealed = 0;
        let mut batches = 0;
        loop {
            if max_batches.is_some_and(|m| batches >= m) {
                return Ok((current, resealed));
            }
            let (moved, done) = self.change(t, |tx| self.reseal_batch(tx, t, actor, batch))?;
            resealed += moved;
            batches += 1;
            if done {
                return Ok((current, resealed));
            }
        }
    }

    /// The id of the data key a rotation moves values to. A rotation is unfinished while more
    /// than one data key exists (then this resumes it); otherwise a new key is created.
    fn start_dek_rotation(&self, t: &TenantId, actor: &str) -> Result<String, KeyError> {
        self.change(t, |tx| {
            let deks = tx.data_keys()?;
            if deks.len() > 1 {
                return Ok((deks.last().map(|d| d.id.clone()).unwrap_or_default(), None));
            }
            let dek = DataKey::generate()?;
            let wrapped = self.master().wrap(&dek, t.as_str())?;
            // Strictly newer than the current key, so "newest" is never ambiguous.
            let after = deks.last().map_or(i64::MIN, |d| d.created_at + 1);
            tx.insert_data_key(&StoredDataKey {
                tenant_id: t.clone(),
                id: dek.id.clone(),
                kek_id: self.master().id.clone(),
                wrapped,
                created_at: self.now().max(after),
            })?;
            Ok((
                dek.id.clone(),
                Some(event(
                    actor,
                    "keys.rotate_dek.start",
                    t,
                    json!({"data_key": dek.id}),
                )),
            ))
        })
    }

    /// One batch of a rotation, inside `tx`: re-seals up to `batch` values still under an older
    /// data key, or, when none is left, deletes the older keys. Returns how many values moved
    /// and whether the rotation is done.
    fn reseal_batch(
        &self,
        tx: &mut KeyTx<'_>,
        t: &TenantId,
        actor: &str,
        batch: usize,
    ) -> Result<((usize, bool), Option<NewAuditEvent>), KeyError> {
        let deks = tx.data_keys()?;
        let newest = deks
            .last()
            .ok_or_else(|| KeyError::Sealed("no data key".into()))?;
        let new = self
            .master()
            .unwrap_key(&newest.wrapped, t.as_str(), &newest.id)?;
        let left = tx.sealed_values(&newest.id, batch)?;
        if !left.is_empty() {
            // A value changed by someone else since it was read was sealed anew under the newest
            // key: not counted, and not listed by the next batch.
            let mut moved = 0;
            for v in left.iter().take(batch) {
                let old_id = crate::envelope::parse(&v.value)?.key_id;
                let old = deks
                    .iter()
                    .find(|d| d.id == old_id)
                    .ok_or_else(|| KeyError::Sealed(format!("data key {old_id} is missing")))?;
                let old = self.master().unwrap_key(&old.wrapped, t.as_str(), &old.id)?;
                let aad = Aad {
                    tenant: t.as_str(),
                    table: v.table,
                    column: v.column,
                    row: &v.row,
                };
                let resealed = new.seal(aad, &old.open(aad, &v.value)?)?;
                if tx.reseal(v, &resealed)? {
                    moved += 1;
                }
            }
            return Ok(((moved, false), None));
        }
        // Nothing left under older keys: retire them.
        let old: Vec<String> = deks
            .iter()
            .filter(|d| d.id != newest.id)
            .map(|d| d.id.clone())
            .collect();
        for id in &old {
            tx.delete_data_key(id)?;
        }
        let ev = (!old.is_empty()).then(|| {
            event(
                actor,
                "keys.rotate_dek.done",
                t,
                json!({"data_key": newest.id, "deleted": old}),
            )
        });
        Ok(((0, true), ev))
    }

    /// Re-wraps every data key under `new` in one transaction. The caller keeps the old key file.
    pub fn rotate_master(db: &Db, old: &MasterKey, new: &MasterKey, actor: &str) -> Result<usize, KeyError> {
        let mut rewrapped = Vec::new();
        for d in db.all_data_keys()? {
            let dek = old.unwrap_key(&d.wrapped, d.tenant_id.as_str(), &d.id)?;
            rewrapped.push(StoredDataKey {
                wrapped: new.wrap(&dek, d.tenant_id.as_str())?,
                kek_id: new.id.clone(),
                ..d
            });
        }
        db.rotate_master_key(actor, &new.id, &new.check_value()?, &rewrapped)?;
        Ok(rewrapped.len())
    }
}
