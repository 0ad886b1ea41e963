//! The key ring against real storage (SQLite and PostgreSQL): staged rotation with a controlled
//! clock, racing schedulers, envelope encryption bound to its location, master-key rotation, a
//! wrong master key, no private key bytes at rest, and JWKS over HTTP.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use latchkey_core::{FixedClock, KeyPolicy, TenantId, TenantPolicy};
use latchkey_keys::{Aad, Alg, KeyRing, KeyState, MasterKey, jwt::Expect};
use latchkey_store::{NewTenant, TenantRepo};
use latchkey_tests::{TestDb, TestServer, open_with_clock};
use serde_json::{Value, json};
use std::sync::Arc;

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;
const T0: i64 = 1_800_000_000_000;

struct Fixture {
    url: String,
    clock: Arc<FixedClock>,
    ring: KeyRing,
    master: MasterKey,
    tenant: TenantId,
}

fn fixture(db: &TestDb) -> Fixture {
    let clock = Arc::new(FixedClock::new(T0));
    let store = open_with_clock(&db.url, clock.clone());
    let tenant = store
        .create_tenant(
            "test",
            &NewTenant {
                slug: "acme".into(),
                display_name: None,
                policy: TenantPolicy::default(),
            },
        )
        .unwrap()
        .id;
    // The master key the test database's own handle seals personal data under.
    let master = latchkey_tests::master_of(&db.db);
    let ring = KeyRing::open(
        store,
        MasterKey::from_base64(&master.to_base64()).unwrap(),
        clock.clone(),
    )
    .unwrap();
    ring.ensure_tenant(&tenant, "test").unwrap();
    Fixture {
        url: db.url.clone(),
        clock,
        ring,
        master,
        tenant,
    }
}

fn kids_in_jwks(f: &Fixture) -> Vec<String> {
    f.ring.jwks(&f.tenant).unwrap()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

fn token(f: &Fixture, alg: Alg) -> String {
    let now = f.clock.now() / 1000;
    let claims = json!({"iss": "https://sso.test/t/acme", "sub": "u", "iat": now, "exp": now + 3600});
    f.ring.sign(&f.tenant, alg, "at+jwt", &claims).unwrap()
}

fn kid_of(token: &str) -> String {
    let header = token.split('.').next().unwrap();
    let raw = base64_url(header);
    serde_json::from_slice::<Value>(&raw).unwrap()["kid"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn base64_url(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .unwrap()
}

fn verifies(f: &Fixture, token: &str) -> bool {
    let expect = Expect {
        issuer: "https://sso.test/t/acme",
        audience: None,
        typ: Some("at+jwt"),
        now: f.clock.now() / 1000,
        leeway_secs: 0,
    };
    f.ring.verify(&f.tenant, token, &expect).is_ok()
}

trait Now {
    fn now(&self) -> i64;
}
impl Now for FixedClock {
    fn now(&self) -> i64 {
        latchkey_core::Clock::now_millis(self)
    }
}

fn staged_rotation_publishes_before_signing_and_retires_after_tokens_expire(db: &TestDb) {
    let f = fixture(db);
    let policy = KeyPolicy::default();
    let keys = f.ring.list(&f.tenant).unwrap();
    assert_eq!(
        keys.iter().filter(|k| k.state == KeyState::Active).count(),
        2,
        "a new tenant has ES256 and RS256"
    );
    let first = token(&f, Alg::ES256);
    let old_kid = kid_of(&first);
    assert!(
        f.ring.tick(&f.tenant, &policy, "test").unwrap().is_empty(),
        "nothing to do on day 0"
    );

    // Two days before the rotation date a successor is published, but does not sign.
    f.clock.set(T0 + 88 * DAY);
    let report = f.ring.tick(&f.tenant, &policy, "test").unwrap();
    assert_eq!(report.created_pending.len(), 2, "{report:?}");
    let pending_es = f
        .ring
        .list(&f.tenant)
        .unwrap()
        .into_iter()
        .find(|k| k.state == KeyState::Pending && k.alg == Alg::ES256)
        .unwrap();
    assert!(
        kids_in_jwks(&f).contains(&pending_es.kid),
        "published before it signs"
    );
    assert_eq!(
        kid_of(&token(&f, Alg::ES256)),
        old_kid,
        "still signed by the old key"
    );
    assert!(
        f.ring.tick(&f.tenant, &policy, "test").unwrap().is_empty(),
        "idempotent"
    );

    // After the pre-publication period the successor signs; the old key stays published.
    f.clock.set(T0 + 90 * DAY);
    let report = f.ring.tick(&f.tenant, &policy, "test").unwrap();
    assert!(report.activated.contains(&pending_es.kid), "{report:?}");
    assert!(report.retired.contains(&old_kid));
    let newer = token(&f, Alg::ES256);
    assert_eq!(kid_of(&newer), pending_es.kid);
    assert!(kids_in_jwks(&f).contains(&old_kid), "retired keys stay in JWKS");
    // A token the old key signed before the rotation still verifies (checked within its lifetime).
    f.clock.set(T0 + 10_000);
    assert!(
        verifies(&f, &first),
        "a token signed before the rotation still verifies"
    );

    // The retired key leaves only after the longest token lifetime plus the margin.
    f.clock
        .set(T0 + 90 * DAY + i64::from(policy.max_token_lifetime_secs) * 1000 + 23 * HOUR);
    assert!(
        f.ring
            .tick(&f.tenant, &policy, "test")
            .unwrap()
            .removed
            .is_empty()
    );
    assert!(kids_in_jwks(&f).contains(&old_kid));
    f.clock
        .set(T0 + 90 * DAY + i64::from(policy.max_token_lifetime_secs) * 1000 + 24 * HOUR);
    let report = f.ring.tick(&f.tenant, &policy, "test").unwrap();
    assert!(report.removed.contains(&old_kid), "{report:?}");
    assert!(!kids_in_jwks(&f).contains(&old_kid));
    let states: Vec<(String, KeyState)> = f
        .ring
        .list(&f.tenant)
        .unwrap()
        .into_iter()
        .map(|k| (k.kid, k.state))
        .collect();
    assert!(states.contains(&(old_kid, KeyState::Removed)));
}

fn manual_rotation_and_emergency_revocation(db: &TestDb) {
    let f = fixture(db);
    let before = token(&f, Alg::ES256);
    let old = kid_of(&before);
    let new = f.ring.rotate(&f.tenant, Alg::ES256, "test").unwrap();
    assert!(kids_in_jwks(&f).contains(&new));
    assert_eq!(kid_of(&token(&f, Alg::ES256)), old, "pending keys never sign");
    assert!(
        f.ring.retire(&f.tenant, &old, "test").is_err(),
        "the only active key can't be retired"
    );
    f.ring.activate(&f.tenant, &new, "test").unwrap();
    assert!(
        f.ring.activate(&f.tenant, &new, "test").is_err(),
        "already active"
    );
    let after = token(&f, Alg::ES256);
    assert_eq!(kid_of(&after), new);
    assert!(verifies(&f, &before) && verifies(&f, &after));
    // Revoking the signing key: gone from JWKS at once, its tokens fail, a replacement signs.
    let replacement = f
        .ring
        .revoke(&f.tenant, &new, "test")
        .unwrap()
        .expect("a replacement");
    assert!(!kids_in_jwks(&f).contains(&new));
    assert!(!verifies(&f, &after), "tokens of a revoked key stop verifying");
    assert_eq!(kid_of(&token(&f, Alg::ES256)), replacement);
    assert!(f.ring.revoke(&f.tenant, &new, "test").is_err());
    assert!(f.ring.activate(&f.tenant, "no-such-kid", "test").is_err());
    // EdDSA joins on request.
    let ed = f.ring.rotate(&f.tenant, Alg::EdDSA, "test").unwrap();
    f.ring.activate(&f.tenant, &ed, "test").unwrap();
    let t = token(&f, Alg::EdDSA);
    assert!(verifies(&f, &t));
    // Every change is audited.
    let actions: Vec<String> = latchkey_store::AuditRepo::audit_events(&f.ring_db(), &f.tenant, 0, 100)
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    for a in ["keys.bootstrap", "keys.rotate", "keys.activate", "keys.revoke"] {
        assert!(actions.contains(&a.to_owned()), "{a} in {actions:?}");
    }
}

impl Fixture {
    fn ring_db(&self) -> latchkey_store::Db {
        open_with_clock(&self.url, self.clock.clone())
    }
}

fn sealed_values_open_only_where_they_were_sealed(db: &TestDb) {
    let f = fixture(db);
    let at = Aad {
        tenant: f.tenant.as_str(),
        table: "users",
        column: "totp_seed",
        row: "user-1",
    };
    let sealed = f.ring.seal(&f.tenant, at, b"JBSWY3DPEHPK3PXP").unwrap();
    assert_eq!(
        f.ring.open_sealed(&f.tenant, at, &sealed).unwrap(),
        b"JBSWY3DPEHPK3PXP"
    );
    sealed_value_opens_nowhere_else(&f, at, &sealed);
    master_key_rotation_keeps_sealed_values_open(&f, at, &sealed);
}

/// Another row, column, table or tenant, or a flipped bit: nothing opens. Leaves a second
/// tenant (with its own data key) behind.
fn sealed_value_opens_nowhere_else(f: &Fixture, at: Aad<'_>, sealed: &str) {
    assert!(
        f.ring
            .open_sealed(&f.tenant, Aad { row: "user-2", ..at }, sealed)
            .is_err(),
        "other row"
    );
    assert!(
        f.ring
            .open_sealed(
                &f.tenant,
                Aad {
                    column: "email",
                    ..at
                },
                sealed
            )
            .is_err(),
        "other column"
    );
    assert!(
        f.ring
            .open_sealed(
                &f.tenant,
                Aad {
                    table: "clients",
                    ..at
                },
                sealed
            )
            .is_err(),
        "other table"
    );
    let other = f
        .ring_db()
        .create_tenant(
            "test",
            &NewTenant {
                slug: "beta".into(),
                display_name: None,
                policy: TenantPolicy::default(),
            },
        )
        .unwrap()
        .id;
    f.ring.ensure_tenant(&other, "test").unwrap();
    assert!(
        f.ring
            .open_sealed(
                &other,
                Aad {
                    tenant: other.as_str(),
                    ..at
                },
                sealed
            )
            .is_err(),
        "other tenant"
    );
    let mut flipped = sealed.as_bytes().to_vec();
    let last = flipped.len() - 2;
    flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
    assert!(
        f.ring
            .open_sealed(&f.tenant, at, std::str::from_utf8(&flipped).unwrap())
            .is_err(),
        "a flipped bit"
    );
}

/// Master-key rotation: everything opens under the new key, nothing under the old.
fn master_key_rotation_keeps_sealed_values_open(f: &Fixture, at: Aad<'_>, sealed: &str) {
    let new = MasterKey::generate().unwrap();
    let store = f.ring_db();
    let n = KeyRing::rotate_master(&store, &f.master, &new, "test").unwrap();
    assert_eq!(n, 2, "one data key per tenant re-wrapped");
    let reopened = KeyRing::open(
        store.clone(),
        MasterKey::from_base64(&new.to_base64()).unwrap(),
        f.clock.clone(),
    )
    .unwrap();
    assert_eq!(
        reopened.open_sealed(&f.tenant, at, sealed).unwrap(),
        b"JBSWY3DPEHPK3PXP"
    );
    let t = reopened
        .sign(&f.tenant, Alg::RS256, "JWT", &json!({"iss": "x", "exp": 1}))
        .unwrap();
    assert_eq!(
        t.split('.').count(),
        3,
        "private keys still open after the master key changed"
    );
    let err = KeyRing::open(
        store,
        MasterKey::from_base64(&f.master.to_base64()).unwrap(),
        f.clock.clone(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("master key"), "{err}");
}

fn data_key_rotation_resumes_after_an_interruption(db: &TestDb) {
    let f = fixture(db);
    f.ring.rotate(&f.tenant, Alg::EdDSA, "test").unwrap();
    let store = f.ring_db();
    let old_dek = store.data_keys(&f.tenant).unwrap()[0].id.clone();
    // One batch of one value, then "crash".
    let (new_dek, moved) = f.ring.rotate_dek(&f.tenant, "test", 1, Some(1)).unwrap();
    assert_eq!(moved, 1);
    assert_ne!(new_dek, old_dek);
    assert_eq!(
        store.data_keys(&f.tenant).unwrap().len(),
        2,
        "both data keys live while unfinished"
    );
    let under: Vec<String> = store
        .signing_keys(&f.tenant)
        .unwrap()
        .iter()
        .map(|k| k.private_key.split('.').nth(1).unwrap().to_owned())
        .collect();
    assert!(under.contains(&old_dek) && under.contains(&new_dek), "{under:?}");
    f.ring.invalidate(&f.tenant);
    assert!(verifies(&f, &token(&f, Alg::RS256)), "signing works mid-rotation");
    let at = Aad {
        tenant: f.tenant.as_str(),
        table: "users",
        column: "totp_seed",
        row: "u1",
    };
    assert!(
        f.ring.seal(&f.tenant, at, b"x").unwrap().contains(&new_dek),
        "new values use the new key"
    );
    // Resume: the same call finishes the job and drops the old key.
    let (resumed, moved) = f.ring.rotate_dek(&f.tenant, "test", 1, None).unwrap();
    assert_eq!(resumed, new_dek);
    assert_eq!(moved, 2);
    let deks = store.data_keys(&f.tenant).unwrap();
    assert_eq!(deks.len(), 1);
    assert_eq!(deks[0].id, new_dek);
    assert!(
        store
            .signing_keys(&f.tenant)
            .unwrap()
            .iter()
            .all(|k| k.private_key.contains(&new_dek))
    );
    f.ring.invalidate(&f.tenant);
    for alg in [Alg::ES256, Alg::RS256] {
        assert!(verifies(&f, &token(&f, alg)), "{alg}");
    }
}

/// Risk histories are sealed under their person's key, which a data-key rotation re-wraps; one
/// from before per-person keys, and the risk webhook's secret, are under the data key itself:
/// the rotation re-seals them before it deletes the old key, so none silently resets or fails.
/// Alice, Bob and Carol with a risk history each, saved through the handle that seals personal
/// data (the ring's own has no vault).
fn three_histories(db: &TestDb, f: &Fixture) -> Vec<(latchkey_core::UserId, String)> {
    use latchkey_store::{NewUser, RiskRepo, UserRepo};
    ["alice", "bob", "carol"]
        .into_iter()
        .map(|name| {
            let new = NewUser {
                username: name.into(),
                ..NewUser::default()
            };
            let user = db.db.create_user(&f.tenant, "test", &new).unwrap().id;
            let plain = format!("{{\"seen\":\"{name}\"}}");
            db.db
                .save_risk_history(&f.tenant, &user, plain.as_bytes())
                .unwrap();
            (user, plain)
        })
        .collect()
}

fn data_key_rotation_reseals_risk_histories_and_the_webhook_secret(db: &TestDb) {
    use latchkey_store::{RiskRepo, TenantUpdate};
    let f = fixture(db);
    let store = f.ring_db();
    let old_dek = store.data_keys(&f.tenant).unwrap()[0].id.clone();
    let histories = three_histories(db, &f);
    // Carol's history from before per-person keys: under the data key, as the server sealed it.
    let (carol, carol_plain) = &histories[2];
    let at = Aad {
        tenant: f.tenant.as_str(),
        table: "risk_history",
        column: "history_sealed",
        row: carol.as_str(),
    };
    let sealed = f.ring.seal(&f.tenant, at, carol_plain.as_bytes()).unwrap();
    let set = format!("UPDATE risk_history SET history_sealed = '{sealed}' WHERE user_id = '{carol}'");
    assert_eq!(db.raw_sql(&set), 1);
    assert_eq!(
        db.db.risk_history(&f.tenant, carol).unwrap().unwrap(),
        carol_plain.as_bytes(),
        "an older history still opens"
    );
    let count = |like: &str| {
        db.raw_sql(&format!(
            "UPDATE risk_history SET updated_at = updated_at WHERE history_sealed LIKE '{like}'"
        ))
    };
    assert_eq!(count("pk.%"), 2, "alice's and bob's under their own keys");
    let mut policy = store.tenant(&f.tenant).unwrap().unwrap().policy;
    policy.risk.webhook_url = Some("https://hooks.acme.test/risk".into());
    policy.risk.webhook_secret_sealed = Some(
        f.ring
            .seal(
                &f.tenant,
                latchkey_services::webhook::secret_aad(&f.tenant),
                b"whsec_1",
            )
            .unwrap(),
    );
    let update = TenantUpdate {
        policy: Some(policy),
        ..TenantUpdate::default()
    };
    store.update_tenant(&f.tenant, "test", &update).unwrap();

    // Two values per batch; the rotation finishes and deletes the old key.
    let (new_dek, _) = f.ring.rotate_dek(&f.tenant, "test", 2, None).unwrap();
    let deks = store.data_keys(&f.tenant).unwrap();
    assert_eq!(deks.iter().map(|d| &d.id).collect::<Vec<_>>(), [&new_dek]);
    assert_ne!(new_dek, old_dek);
    for (user, plain) in &histories {
        assert_eq!(
            db.db.risk_history(&f.tenant, user).unwrap().unwrap(),
            plain.as_bytes(),
            "{user}'s history opens after the rotation"
        );
    }
    assert_eq!(
        count(&format!("v1.{new_dek}.%")),
        1,
        "carol's re-sealed under the new key"
    );
    assert_eq!(
        count("pk.%"),
        2,
        "the others untouched: their keys were re-wrapped"
    );
    assert_eq!(
        latchkey_services::webhook::secret(&store, &f.ring, &f.tenant).unwrap(),
        b"whsec_1"
    );
    let policy = store.tenant(&f.tenant).unwrap().unwrap().policy;
    assert_eq!(
        policy.risk.webhook_url.as_deref(),
        Some("https://hooks.acme.test/risk"),
        "the rest of the policy is kept"
    );
}

fn no_private_key_bytes_at_rest(db: &TestDb) {
    let f = fixture(db);
    let ed = f.ring.rotate(&f.tenant, Alg::EdDSA, "test").unwrap();
    let store = f.ring_db();
    let deks = store.data_keys(&f.tenant).unwrap();
    let dek = f
        .master
        .unwrap_key(&deks[0].wrapped, f.tenant.as_str(), &deks[0].id)
        .unwrap();
    let dump = db.dump();
    let mut checked = 0;
    for k in store.signing_keys(&f.tenant).unwrap() {
        let aad = Aad {
            tenant: f.tenant.as_str(),
            table: "signing_keys",
            column: "private_key",
            row: &k.kid,
        };
        let pkcs8 = dek.open(aad, &k.private_key).unwrap();
        for window in pkcs8.windows(16).step_by(8) {
            assert!(
                !dump.windows(16).any(|w| w == window),
                "private key bytes of {} found at rest",
                k.kid
            );
        }
        checked += 1;
    }
    assert_eq!(checked, 3);
    let text = String::from_utf8_lossy(&dump);
    assert!(!text.contains("PRIVATE KEY"));
    assert!(!text.contains("\"d\":"), "no private JWK member at rest");
    assert!(
        !text.contains(&f.master.to_base64()),
        "the master key is not in the database"
    );
    let _ = ed;
}

fn racing_schedulers_make_one_successor(db: &TestDb) {
    let f = fixture(db);
    let clock = Arc::new(FixedClock::new(T0 + 88 * DAY));
    let rings: Vec<KeyRing> = (0..4)
        .map(|_| {
            let store = open_with_clock(&db.url, clock.clone());
            KeyRing::open(
                store,
                MasterKey::from_base64(&f.master.to_base64()).unwrap(),
                clock.clone(),
            )
            .unwrap()
        })
        .collect();
    let policy = KeyPolicy::default();
    std::thread::scope(|s| {
        for ring in &rings {
            s.spawn(|| {
                for _ in 0..3 {
                    ring.tick(&f.tenant, &policy, "node").unwrap();
                }
            });
        }
    });
    let keys = f.ring.list(&f.tenant).unwrap();
    for alg in [Alg::ES256, Alg::RS256] {
        let pending = keys
            .iter()
            .filter(|k| k.alg == alg && k.state == KeyState::Pending)
            .count();
        assert_eq!(pending, 1, "{alg}: exactly one successor");
    }
}

/// A pairwise `sub` must never change (OIDC Core §8.1): the tenant's salt is made once, under
/// the key lock, and a data-key rotation (which deletes the old data key) and a master-key
/// rotation re-seal it without changing it. Each check opens a fresh ring, so nothing comes
/// from a node's cache.
fn the_pairwise_salt_is_made_once_and_outlives_key_rotations(db: &TestDb) {
    let f = fixture(db);
    let salt = f.ring.pairwise_salt(&f.tenant).unwrap();
    let store = f.ring_db();
    let sealed = store.pairwise_salt(&f.tenant).unwrap().unwrap();
    assert!(sealed.starts_with("v1."), "stored sealed, never in the clear");
    let fresh = |master: &MasterKey| {
        KeyRing::open(
            f.ring_db(),
            MasterKey::from_base64(&master.to_base64()).unwrap(),
            f.clock.clone(),
        )
        .unwrap()
    };
    assert_eq!(
        fresh(&f.master).pairwise_salt(&f.tenant).unwrap(),
        salt,
        "made once"
    );
    let old_dek = store.data_keys(&f.tenant).unwrap()[0].id.clone();
    f.ring.rotate_dek(&f.tenant, "test", 10, None).unwrap();
    assert!(
        store
            .data_keys(&f.tenant)
            .unwrap()
            .iter()
            .all(|d| d.id != old_dek)
    );
    let resealed = store.pairwise_salt(&f.tenant).unwrap().unwrap();
    assert!(!resealed.contains(&old_dek), "re-sealed under the new data key");
    assert_eq!(fresh(&f.master).pairwise_salt(&f.tenant).unwrap(), salt);
    let new = MasterKey::generate().unwrap();
    KeyRing::rotate_master(&store, &f.master, &new, "test").unwrap();
    assert_eq!(fresh(&new).pairwise_salt(&f.tenant).unwrap(), salt);
    let other = store
        .create_tenant(
            "test",
            &NewTenant {
                slug: "other".into(),
                display_name: None,
                policy: TenantPolicy::default(),
            },
        )
        .unwrap()
        .id;
    assert_ne!(
        fresh(&new).pairwise_salt(&other).unwrap(),
        salt,
        "a salt per tenant"
    );
}

macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $name() { super::$name(&latchkey_tests::TestDb::sqlite()); } )*
        }
        mod postgres {
            $( #[test] fn $name() { let Some(db) = latchkey_tests::TestDb::postgres() else { return }; super::$name(&db); } )*
        }
    };
}

on_both!(
    staged_rotation_publishes_before_signing_and_retires_after_tokens_expire,
    manual_rotation_and_emergency_revocation,
    sealed_values_open_only_where_they_were_sealed,
    no_private_key_bytes_at_rest,
    data_key_rotation_resumes_after_an_interruption,
    data_key_rotation_reseals_risk_histories_and_the_webhook_secret,
    racing_schedulers_make_one_successor,
    the_pairwise_salt_is_made_once_and_outlives_key_rotations,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwks_over_http_and_a_wrong_master_key_refuses_to_start() {
    let db = TestDb::sqlite();
    let master = MasterKey::generate().unwrap().to_base64();
    let settings = [
        ("LATCHKEY_DATABASE_URL", db.url.as_str()),
        ("LATCHKEY_MASTER_KEY", master.as_str()),
    ];
    let s = TestServer::start_with(&settings).unwrap();
    let t = s
        .state
        .db
        .create_tenant(
            "test",
            &NewTenant {
                slug: "acme".into(),
                display_name: None,
                policy: TenantPolicy::default(),
            },
        )
        .unwrap();
    s.state.keys.ensure_tenant(&t.id, "test").unwrap();
    let c = TestServer::client();
    let doc: Value = c
        .get(s.url("/t/acme/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["jwks_uri"], format!("{}/jwks", s.issuer("acme")));
    let res = c.get(doc["jwks_uri"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(res.headers()["cache-control"], "public, max-age=3600");
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/jwk-set+json")
    );
    let jwks: Value = res.json().await.unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    for k in keys {
        for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
            assert!(k.get(private).is_none(), "JWKS leaks {private}");
        }
        assert_eq!(k["use"], "sig");
        assert_eq!(k["kid"], latchkey_keys::thumbprint(k));
    }
    let pending = s.state.keys.rotate(&t.id, Alg::ES256, "test").unwrap();
    let jwks: Value = c
        .get(s.url("/t/acme/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(jwks.to_string().contains(&pending));
    assert_eq!(c.get(s.url("/t/nobody/jwks")).send().await.unwrap().status(), 404);
    drop(s);

    // A restart with the same key works; with another key, Latchkey refuses to start.
    let again = TestServer::start_with(&settings).unwrap();
    drop(again);
    let wrong = MasterKey::generate().unwrap().to_base64();
    let err = TestServer::start_with(&[
        ("LATCHKEY_DATABASE_URL", db.url.as_str()),
        ("LATCHKEY_MASTER_KEY", wrong.as_str()),
    ])
    .err()
    .unwrap();
    assert!(err.contains("master key"), "{err}");
}
