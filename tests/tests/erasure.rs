//! Issue 25 item 2: erasure by crypto-shredding (docs/privacy.md#erasure), on both backends.
//!
//! A person's username, email, display name, attribute values, linked identities, TOTP seed and
//! risk history are sealed under a key of their own; erasing them deletes the key with their
//! rows. Checked here against the bytes the
//! database keeps (the SQLite file and its write-ahead log, or a `pg_dump`), the audit chain,
//! and a backup taken before the erasure and restored after it.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use latchkey_core::{AttributeDef, AttributeKind, EditableBy, SystemClock, TenantId, TenantPolicy, UserId};
use latchkey_keys::{KeyRing, PersonalVault};
use latchkey_services::{backup, privacy};
use latchkey_store::{
    AttributeRepo, AuditRepo, Db, LifecycleRepo, MfaRepo, NewTenant, NewUser, RiskRepo, Scope, StoreError,
    TenantRepo, UserQuery, UserRepo,
};
use latchkey_tests::TestDb;
use std::sync::Arc;

const ACTOR: &str = "cli:ops";
const NAME: &str = "zelda.quartzfeld";
const EMAIL: &str = "zelda.quartzfeld@example.org";
const DISPLAY: &str = "Zelda Quartzfeld";
const BADGE: &str = "EMP-99887766";
/// Her NameID at her company's SAML IdP.
const NAME_ID: &str = "zq-4417@corp-idp.example";
/// Her authenticator app's seed and her sign-in history (secrets, not names: checked by
/// whether they open, not by scanning).
const SEED: &[u8; 20] = b"zelda-totp-seed-2026";
const HISTORY: &[u8] = br#"{"sign_ins":[{"network":"198.51.100.0/24"}]}"#;

/// Everything that names Zelda.
const HERS: [&str; 5] = [NAME, EMAIL, DISPLAY, BADGE, NAME_ID];

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

fn none_of_hers_in(bytes: &[u8], place: &str) {
    for s in HERS {
        assert!(!contains(bytes, s), "{place} holds {s:?}");
    }
}

struct Tenant {
    id: TenantId,
    zelda: UserId,
    bob: UserId,
}

fn set_up(db: &Db, policy: TenantPolicy) -> Tenant {
    let id = db
        .create_tenant(
            ACTOR,
            &NewTenant {
                slug: "shred".into(),
                display_name: None,
                policy,
            },
        )
        .unwrap()
        .id;
    db.define_attribute(
        &id,
        ACTOR,
        &AttributeDef {
            tenant_id: id.clone(),
            name: "badge".into(),
            label: None,
            kind: AttributeKind::String,
            required: false,
            unique: true,
            editable_by: EditableBy::Admin,
            created_at: 0,
            updated_at: 0,
        },
    )
    .unwrap();
    let new = |username: &str, email: &str, display: &str| NewUser {
        username: username.into(),
        email: Some(email.into()),
        display_name: Some(display.into()),
        ..NewUser::default()
    };
    let zelda = db.create_user(&id, ACTOR, &new(NAME, EMAIL, DISPLAY)).unwrap().id;
    let bob = db
        .create_user(&id, ACTOR, &new("bob.keeper", "bob@example.org", "Bob Keeper"))
        .unwrap()
        .id;
    db.set_user_attributes(
        &id,
        ACTOR,
        &zelda,
        &[("badge".into(), Some(BADGE.into()))],
        EditableBy::Admin,
    )
    .unwrap();
    link_saml(db, &id, &zelda);
    Tenant { id, zelda, bob }
}

/// A SAML connection, and Zelda's NameID at it linked to her account.
fn link_saml(db: &Db, t: &TenantId, zelda: &UserId) {
    use latchkey_core::saml::{IdpDescriptor, SamlOptions};
    use latchkey_store::{NewSamlConnection, SamlRepo};
    let entity = "https://corp.idp.example";
    let new = NewSamlConnection {
        id: db.new_saml_connection_id(),
        name: "corp".into(),
        display_name: "Corp IdP".into(),
        idp: IdpDescriptor {
            entity_id: entity.into(),
            sso_url: format!("{entity}/sso"),
            sso_binding: latchkey_core::saml::BINDING_REDIRECT.into(),
            certificates: vec!["Q0VSVDE=".into()],
            wants_signed_requests: false,
            slo_url: None,
            slo_response_url: None,
        },
        metadata_url: None,
        options: SamlOptions::default(),
        sp_certificate: "U1BDRVJU".into(),
        sp_key_sealed: "SEALED-SP-KEY".into(),
        next_refresh_at: None,
    };
    let c = db.create_saml_connection(t, ACTOR, &new).unwrap();
    db.link_saml_identity(t, ACTOR, &c.id, NAME_ID, zelda).unwrap();
    // Found by the NameID (a blind index), shown opened, refused twice.
    assert_eq!(db.saml_identity(t, &c.id, NAME_ID).unwrap().as_ref(), Some(zelda));
    assert_eq!(
        db.saml_identities_of_user(t, zelda).unwrap(),
        vec![(c.id.clone(), NAME_ID.to_owned())]
    );
    assert!(matches!(
        db.link_saml_identity(t, ACTOR, &c.id, NAME_ID, zelda),
        Err(StoreError::Conflict(_))
    ));
    db.saml_login_seen(t, &c.id, NAME_ID).unwrap();
}

fn backups(db: &Db) -> (Vec<u8>, Vec<u8>) {
    let master = latchkey_tests::master_of(db);
    let (mut data, mut vault) = (Vec::new(), Vec::new());
    backup::write(db, &master, Scope::All, &[], 1, &mut data).unwrap();
    backup::write_vault(db, &master, Scope::All, &[], 1, &mut vault).unwrap();
    (data, vault)
}

/// A fresh database of the same kind with `data` and `vault` restored into it, opened with the
/// original master key.
fn restored(kind: &TestDb, master: latchkey_keys::MasterKey, data: &[u8], vault: &[u8]) -> (TestDb, Db) {
    let target = if kind.url.starts_with("sqlite") {
        TestDb::sqlite()
    } else {
        TestDb::postgres().unwrap()
    };
    let plain = latchkey_tests::open_with_clock(&target.url, Arc::new(SystemClock));
    let mut input = data;
    let header = backup::read_header(&mut input).unwrap();
    backup::restore(&plain, &master, &header, &mut input).unwrap();
    let mut input = vault;
    let header = backup::read_header(&mut input).unwrap();
    backup::restore_vault(&plain, &master, &header, &mut input).unwrap();
    let ring = KeyRing::open(plain.clone(), master, Arc::new(SystemClock)).unwrap();
    let db = plain.with_vault(Arc::new(PersonalVault::new(Arc::new(ring))));
    (target, db)
}

/// Lookups, uniqueness, search and the attribute filter work on the sealed rows.
fn lookups_work_on_sealed_rows(db: &Db, tn: &Tenant) {
    assert_eq!(db.user_by_username(&tn.id, NAME).unwrap().unwrap().id, tn.zelda);
    assert_eq!(db.user_by_email(&tn.id, EMAIL).unwrap().unwrap().id, tn.zelda);
    let again = db.create_user(
        &tn.id,
        ACTOR,
        &NewUser {
            username: NAME.into(),
            ..NewUser::default()
        },
    );
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    let page = db
        .users_page(
            &tn.id,
            &UserQuery {
                limit: 10,
                prefix: Some("zel".into()),
                ..UserQuery::default()
            },
        )
        .unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].display_name.as_deref(), Some(DISPLAY));
    let holders = db
        .users_page(
            &tn.id,
            &UserQuery {
                limit: 10,
                attribute: Some(("badge".into(), BADGE.into())),
                ..UserQuery::default()
            },
        )
        .unwrap();
    assert_eq!(holders.iter().map(|u| &u.id).collect::<Vec<_>>(), [&tn.zelda]);
    assert_eq!(db.user_attributes(&tn.id, &tn.zelda).unwrap()["badge"], BADGE);
}

fn erased_leaves_no_trace(t: &TestDb) {
    let db = &t.db;
    let tn = set_up(db, TenantPolicy::default());
    // Sealed at rest from the start: the database never held her name in plaintext.
    none_of_hers_in(&t.dump(), "the database before the erasure");
    lookups_work_on_sealed_rows(db, &tn);
    db.begin_totp(&tn.id, &tn.zelda, SEED).unwrap();
    db.save_risk_history(&tn.id, &tn.zelda, HISTORY).unwrap();
    let under_her_key = t.raw_sql(&format!(
        "UPDATE mfa_totp SET created_at = created_at WHERE user_id = '{}' AND seed_sealed LIKE 'pk.%'",
        tn.zelda
    )) + t.raw_sql(&format!(
        "UPDATE risk_history SET updated_at = updated_at WHERE user_id = '{}' AND history_sealed LIKE 'pk.%'",
        tn.zelda
    ));
    assert_eq!(under_her_key, 2, "seed and history sealed under her own key");
    let (data_before, vault_before) = backups(db);
    let tenant = db.tenant(&tn.id).unwrap().unwrap();
    let erasure = privacy::erase(db, &tenant, ACTOR, &tn.zelda, "GDPR Art. 17 request 4711", 2).unwrap();
    assert_eq!(erasure.status, "erased");
    assert_eq!(erasure.key_destroyed, Some(true));
    assert!(db.user(&tn.id, &tn.zelda).unwrap().is_none());
    assert!(db.user(&tn.id, &tn.bob).unwrap().is_some(), "others stay");

    // Nothing names her: not the files or the dump, not the audit chain, which still verifies.
    none_of_hers_in(&t.dump(), "the database after the erasure");
    let events = db.audit_events(&tn.id, 0, 1000).unwrap();
    none_of_hers_in(
        serde_json::to_string(&events).unwrap().as_bytes(),
        "the audit chain",
    );
    let erase = events.iter().find(|e| e.action == "user.erase").unwrap();
    assert_eq!(erase.details["reason"], "GDPR Art. 17 request 4711");
    assert!(erase.details["username"].as_str().unwrap().starts_with("ps:"));
    assert!(matches!(
        latchkey_audit::verify(db, &tn.id).unwrap(),
        latchkey_audit::Verdict::Intact { .. }
    ));

    // The backup from before, restored with the newest vault: her rows are there, but nothing
    // opens them (the store answers as if she were not there); Bob opens as before.
    let (_, vault_after) = backups(db);
    let master = latchkey_tests::master_of(db);
    let (copy, old) = restored(t, master, &data_before, &vault_after);
    let present = copy.raw_sql(&format!(
        "UPDATE users SET status = status WHERE id = '{}'",
        tn.zelda
    ));
    assert_eq!(present, 1, "the backup holds her row");
    assert!(
        old.user(&tn.id, &tn.zelda).unwrap().is_none(),
        "her row does not open"
    );
    assert!(old.user_by_username(&tn.id, NAME).unwrap().is_none());
    assert!(matches!(
        old.user_attributes(&tn.id, &tn.zelda),
        Err(StoreError::Sealed(_))
    ));
    let seed = old.totp(&tn.id, &tn.zelda);
    assert!(
        matches!(seed, Err(StoreError::Sealed(_))),
        "her TOTP seed: {seed:?}"
    );
    let history = old.risk_history(&tn.id, &tn.zelda);
    assert!(matches!(history, Err(StoreError::Sealed(_))), "her history");
    assert_eq!(old.user(&tn.id, &tn.bob).unwrap().unwrap().username, "bob.keeper");
    assert_eq!(
        old.list_users(&tn.id).unwrap().len(),
        1,
        "she is left out of lists"
    );
    none_of_hers_in(&copy.dump(), "the restored database");
    // What the vault is for: the vault from before the erasure would still open her, which
    // is why only the newest is kept.
    let master = latchkey_tests::master_of(db);
    let (_copy, stale) = restored(t, master, &data_before, &vault_before);
    assert_eq!(stale.user(&tn.id, &tn.zelda).unwrap().unwrap().username, NAME);
    assert_eq!(stale.totp(&tn.id, &tn.zelda).unwrap().unwrap().seed, SEED);
    assert_eq!(stale.risk_history(&tn.id, &tn.zelda).unwrap().unwrap(), HISTORY);
}

fn a_grace_period_closes_first_and_erases_when_due(t: &TestDb) {
    let db = &t.db;
    let mut policy = TenantPolicy::default();
    policy.accounts.erasure_grace_days = 7;
    let tn = set_up(db, policy);
    let tenant = db.tenant(&tn.id).unwrap().unwrap();
    let now = 1_000_000;
    // A reason is required, and names no one in a line of its own.
    for bad in ["", "  ", "two\nlines"] {
        let refused = privacy::erase(db, &tenant, ACTOR, &tn.zelda, bad, now);
        assert!(refused.is_err(), "{bad:?}");
    }
    let erasure = privacy::erase(db, &tenant, ACTOR, &tn.zelda, "ticket 12", now).unwrap();
    assert_eq!(erasure.status, "scheduled");
    let due = erasure.due_at.unwrap();
    assert_eq!(due, now + 7 * 86_400_000);
    let closed = db.user(&tn.id, &tn.zelda).unwrap().unwrap();
    assert_eq!(closed.status, latchkey_core::UserStatus::Disabled);
    // Not a millisecond early.
    assert!(db.purge_due_deletions(&tn.id, due - 1).unwrap().is_empty());
    assert_eq!(
        db.purge_due_deletions(&tn.id, due).unwrap(),
        vec![tn.zelda.clone()]
    );
    assert!(db.user(&tn.id, &tn.zelda).unwrap().is_none());
    let events = db.audit_events(&tn.id, 0, 1000).unwrap();
    let erased = events.iter().find(|e| e.action == "user.erase").unwrap();
    assert_eq!(erased.details["reason"], "ticket 12");
    assert_eq!(erased.actor, "system");
    none_of_hers_in(&t.dump(), "the database after the scheduled erasure");
}

fn a_scheduled_erasure_can_be_cancelled(t: &TestDb) {
    let db = &t.db;
    let mut policy = TenantPolicy::default();
    policy.accounts.erasure_grace_days = 3;
    let tn = set_up(db, policy);
    let tenant = db.tenant(&tn.id).unwrap().unwrap();
    privacy::erase(db, &tenant, ACTOR, &tn.zelda, "ticket 13", 5).unwrap();
    db.cancel_deletion(&tn.id, ACTOR, &tn.zelda).unwrap();
    assert!(db.purge_due_deletions(&tn.id, i64::MAX / 2).unwrap().is_empty());
    let back = db.user(&tn.id, &tn.zelda).unwrap().unwrap();
    assert_eq!(back.status, latchkey_core::UserStatus::Active);
    assert_eq!(back.email.as_deref(), Some(EMAIL));
}

fn users_from_before_sealing_are_sealed_by_the_upgrade_step(t: &TestDb) {
    let db = &t.db;
    let tn = set_up(db, TenantPolicy::default());
    // A user as the previous release wrote it: plaintext columns, no key.
    let inserted = t.raw_sql(&format!(
        "INSERT INTO users (id, tenant_id, username, email, display_name, status, created_at, updated_at, email_verified) \
         VALUES ('olga-1', '{}', 'olga.legacy', 'olga@legacy.example', 'Olga Legacy', 'active', 1, 1, FALSE)",
        tn.id
    ));
    assert_eq!(inserted, 1);
    let corp = latchkey_store::SamlRepo::saml_connection_by_name(db, &tn.id, "corp")
        .unwrap()
        .unwrap()
        .id;
    let linked = t.raw_sql(&format!(
        "INSERT INTO saml_identities (tenant_id, connection_id, name_id, user_id, created_at) \
         VALUES ('{}', '{corp}', 'olga-nameid@legacy.example', 'olga-1', 1)",
        tn.id
    ));
    assert_eq!(linked, 1);
    // Her TOTP seed as the previous release sealed it: under the tenant's data key.
    let ring = KeyRing::open(db.clone(), latchkey_tests::master_of(db), Arc::new(SystemClock)).unwrap();
    let aad = latchkey_keys::Aad {
        tenant: tn.id.as_str(),
        table: "mfa_totp",
        column: "seed_sealed",
        row: "olga-1",
    };
    let legacy_seed = ring.seal(&tn.id, aad, SEED).unwrap();
    let enrolled = t.raw_sql(&format!(
        "INSERT INTO mfa_totp (tenant_id, user_id, seed_sealed, created_at) VALUES ('{}', 'olga-1', '{legacy_seed}', 1)",
        tn.id
    ));
    assert_eq!(enrolled, 1);
    let olga_id = UserId("olga-1".into());
    assert_eq!(
        db.totp(&tn.id, &olga_id).unwrap().unwrap().seed,
        SEED,
        "an older seed opens"
    );
    let olga = db.user_by_username(&tn.id, "olga.legacy").unwrap().unwrap();
    assert_eq!(olga.email.as_deref(), Some("olga@legacy.example"));
    assert!(
        contains(&t.dump(), "olga@legacy.example"),
        "the old row is plaintext"
    );
    assert_eq!(db.seal_plain_users(&tn.id, 100).unwrap(), 1);
    assert_eq!(db.seal_plain_users(&tn.id, 100).unwrap(), 0, "once");
    let moved = t.raw_sql(
        "UPDATE mfa_totp SET created_at = created_at WHERE user_id = 'olga-1' AND seed_sealed LIKE 'pk.%'",
    );
    assert_eq!(moved, 1, "her seed is now under her own key");
    assert_eq!(db.totp(&tn.id, &olga_id).unwrap().unwrap().seed, SEED);
    let sealed = db.user_by_username(&tn.id, "olga.legacy").unwrap().unwrap();
    assert_eq!(sealed.display_name.as_deref(), Some("Olga Legacy"));
    assert_eq!(
        db.user_by_email(&tn.id, "olga@legacy.example")
            .unwrap()
            .unwrap()
            .id,
        olga.id
    );
    assert_eq!(
        latchkey_store::SamlRepo::saml_identity(db, &tn.id, &corp, "olga-nameid@legacy.example")
            .unwrap()
            .map(|u| u.0),
        Some("olga-1".to_owned())
    );
    let dump = t.dump();
    for s in [
        "olga.legacy",
        "olga@legacy.example",
        "Olga Legacy",
        "olga-nameid@legacy.example",
    ] {
        assert!(!contains(&dump, s), "{s:?} is still in plaintext");
    }
    let tenant = db.tenant(&tn.id).unwrap().unwrap();
    let erased = privacy::erase(db, &tenant, ACTOR, &olga.id, "ticket 14", 3).unwrap();
    assert_eq!(erased.key_destroyed, Some(true));
}

macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $name() { super::$name(&latchkey_tests::TestDb::sqlite()); } )*
        }
        mod postgres {
            $( #[test] fn $name() { if let Some(t) = latchkey_tests::TestDb::postgres() { super::$name(&t); } } )*
        }
    };
}

on_both!(
    erased_leaves_no_trace,
    a_grace_period_closes_first_and_erases_when_due,
    a_scheduled_erasure_can_be_cancelled,
    users_from_before_sealing_are_sealed_by_the_upgrade_step,
);
