//! One repository contract, run against SQLite and against PostgreSQL.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use latchkey_core::{
    AccessTokenFormat, AuthMethod, ClientId, ClientType, GrantType, RoleId, TenantId, TenantPolicy, UserId,
    UserStatus,
};
use latchkey_store::{
    AuditRepo, ClientRepo, Db, NewClient, NewTenant, NewUser, RoleRepo, StoreError, TenantRepo, TenantUpdate,
    UserRepo, UserUpdate,
};
use latchkey_tests::TestDb;

const ACTOR: &str = "test";

fn tenant(db: &Db, slug: &str) -> TenantId {
    db.create_tenant(
        ACTOR,
        &NewTenant {
            slug: slug.into(),
            display_name: None,
            policy: TenantPolicy::default(),
        },
    )
    .unwrap()
    .id
}

fn user(db: &Db, t: &TenantId, name: &str) -> UserId {
    db.create_user(
        t,
        ACTOR,
        &NewUser {
            username: name.into(),
            ..NewUser::default()
        },
    )
    .unwrap()
    .id
}

fn confidential(name: &str) -> NewClient {
    NewClient {
        name: name.into(),
        client_type: ClientType::Confidential,
        auth_method: AuthMethod::ClientSecretBasic,
        secret_hash: Some(latchkey_core::sha256_hex(b"s3cret")),
        redirect_uris: vec!["https://app.example.com/cb".into()],
        post_logout_redirect_uris: vec![],
        grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        scopes: vec!["openid".into()],
        access_token_format: AccessTokenFormat::Jwt,
        require_pkce: true,
        introspect_others: false,
        first_party: false,
        jwks_uri: None,
        jwks: None,
        settings: latchkey_core::ClientSettings::default(),
    }
}

fn head(db: &Db, t: &TenantId) -> i64 {
    db.audit_head(t).unwrap().map_or(0, |(seq, _)| seq)
}

fn tenants_are_created_listed_updated_and_unique(db: &Db) {
    let t = tenant(db, "acme");
    let got = db.tenant_by_slug("acme").unwrap().unwrap();
    assert_eq!(got.id, t);
    assert_eq!(got.display_name, "acme");
    let dup = db.create_tenant(
        ACTOR,
        &NewTenant {
            slug: "acme".into(),
            display_name: None,
            policy: TenantPolicy::default(),
        },
    );
    assert!(matches!(&dup, Err(StoreError::Conflict(m)) if m.contains("acme")));
    let mut policy = TenantPolicy::default();
    policy.password.min_length = 16;
    let updated = db
        .update_tenant(
            &t,
            ACTOR,
            &TenantUpdate {
                display_name: Some("Acme Corp".into()),
                policy: Some(policy),
            },
        )
        .unwrap();
    assert_eq!(updated.display_name, "Acme Corp");
    assert_eq!(db.tenant(&t).unwrap().unwrap().policy.password.min_length, 16);
    tenant(db, "beta");
    let slugs: Vec<String> = db.list_tenants().unwrap().into_iter().map(|t| t.slug).collect();
    assert_eq!(slugs, ["acme", "beta"]);
}

fn invalid_input_is_refused_and_writes_nothing(db: &Db) {
    let bad = db.create_tenant(
        ACTOR,
        &NewTenant {
            slug: "Not OK".into(),
            display_name: None,
            policy: TenantPolicy::default(),
        },
    );
    assert!(matches!(bad, Err(StoreError::Invalid(e)) if e.field == "slug"));
    assert!(db.list_tenants().unwrap().is_empty());
    let t = tenant(db, "acme");
    let before = head(db, &t);
    let bad = db.create_user(
        &t,
        ACTOR,
        &NewUser {
            username: "bad name".into(),
            ..NewUser::default()
        },
    );
    assert!(matches!(bad, Err(StoreError::Invalid(_))));
    let mut c = confidential("x");
    c.redirect_uris = vec!["https://app.example.com/cb#frag".into()];
    assert!(matches!(
        db.create_client(&t, ACTOR, &c),
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(
        head(db, &t),
        before,
        "a refused change must not reach the audit log"
    );
    assert!(db.list_users(&t).unwrap().is_empty());
}

fn usernames_and_emails_are_unique_per_tenant_ignoring_case(db: &Db) {
    let a = tenant(db, "acme");
    let b = tenant(db, "beta");
    let new = NewUser {
        username: "Alice".into(),
        email: Some("Alice@Example.com".into()),
        ..NewUser::default()
    };
    let alice = db.create_user(&a, ACTOR, &new).unwrap();
    assert_eq!(alice.username, "alice");
    assert_eq!(alice.email.as_deref(), Some("alice@example.com"));
    let before = head(db, &a);
    let dup = db.create_user(
        &a,
        ACTOR,
        &NewUser {
            username: "ALICE".into(),
            ..NewUser::default()
        },
    );
    assert!(
        matches!(&dup, Err(StoreError::Conflict(m)) if m.contains("username")),
        "{dup:?}"
    );
    let dup = db.create_user(
        &a,
        ACTOR,
        &NewUser {
            username: "alice2".into(),
            email: Some("alice@EXAMPLE.com".into()),
            ..NewUser::default()
        },
    );
    assert!(
        matches!(&dup, Err(StoreError::Conflict(m)) if m.contains("email")),
        "{dup:?}"
    );
    assert_eq!(head(db, &a), before, "failed creates leave no audit event");
    // The same name in another tenant is another person.
    db.create_user(&b, ACTOR, &new).unwrap();
    assert_eq!(db.user_by_username(&a, "ALICE").unwrap().unwrap().id, alice.id);
    assert_eq!(
        db.user_by_email(&a, "alice@example.COM").unwrap().unwrap().id,
        alice.id
    );
}

fn users_are_updated_disabled_and_deleted(db: &Db) {
    let t = tenant(db, "acme");
    let id = user(db, &t, "bob");
    let u = db
        .update_user(
            &t,
            ACTOR,
            &id,
            &UserUpdate {
                email: Some(Some("bob@example.com".into())),
                display_name: Some(Some("Bob".into())),
            },
        )
        .unwrap();
    assert_eq!(u.display_name.as_deref(), Some("Bob"));
    let u = db.set_user_status(&t, ACTOR, &id, UserStatus::Disabled).unwrap();
    assert_eq!(u.status, UserStatus::Disabled);
    let u = db
        .set_password_hash(&t, ACTOR, &id, "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA")
        .unwrap();
    assert!(u.password_changed_at.is_some());
    assert_eq!(
        db.user(&t, &id).unwrap().unwrap().password_hash.as_deref(),
        Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA")
    );
    db.delete_user(&t, ACTOR, &id).unwrap();
    assert!(db.user(&t, &id).unwrap().is_none());
    assert!(matches!(
        db.delete_user(&t, ACTOR, &id),
        Err(StoreError::NotFound { what: "user" })
    ));
}

fn clients_store_only_the_secret_hash_and_follow_registration_rules(db: &Db) {
    let t = tenant(db, "acme");
    let c = db.create_client(&t, ACTOR, &confidential("Portal")).unwrap();
    let got = db.client(&t, &c.client_id).unwrap().unwrap();
    assert_eq!(got, c);
    assert_eq!(
        got.secret_hash.as_deref(),
        Some(latchkey_core::sha256_hex(b"s3cret").as_str())
    );
    let rotated = db
        .set_client_secret_hash(&t, ACTOR, &c.client_id, &latchkey_core::sha256_hex(b"new"))
        .unwrap();
    assert_ne!(rotated.secret_hash, c.secret_hash);

    let mut public = confidential("SPA");
    public.client_type = ClientType::Public;
    assert!(
        matches!(db.create_client(&t, ACTOR, &public), Err(StoreError::Invalid(_))),
        "public client with a secret"
    );
    public.auth_method = AuthMethod::None;
    public.secret_hash = None;
    public.require_pkce = false;
    assert!(
        matches!(db.create_client(&t, ACTOR, &public), Err(StoreError::Invalid(e)) if e.field == "require_pkce")
    );
    public.require_pkce = true;
    public.jwks_uri = Some("https://spa.example.com/jwks.json".into());
    assert!(
        matches!(db.create_client(&t, ACTOR, &public), Err(StoreError::Invalid(e)) if e.field == "jwks"),
        "keys only for private_key_jwt"
    );
    public.jwks_uri = None;
    let p = db.create_client(&t, ACTOR, &public).unwrap();
    let mut signed = confidential("signed");
    signed.auth_method = AuthMethod::PrivateKeyJwt;
    signed.secret_hash = None;
    signed.jwks_uri = Some("https://rp.example.com/jwks.json".into());
    signed.jwks = Some(serde_json::json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "abc"}]}));
    assert!(
        matches!(db.create_client(&t, ACTOR, &signed), Err(StoreError::Invalid(_))),
        "not both key forms"
    );
    signed.jwks = None;
    let signed = db.create_client(&t, ACTOR, &signed).unwrap();
    assert_eq!(
        db.client(&t, &signed.client_id)
            .unwrap()
            .unwrap()
            .jwks_uri
            .as_deref(),
        Some("https://rp.example.com/jwks.json")
    );
    assert!(matches!(
        db.set_client_secret_hash(&t, ACTOR, &p.client_id, "x"),
        Err(StoreError::Invalid(_))
    ));
    let mut cc = confidential("svc");
    cc.grant_types = vec![GrantType::RefreshToken];
    assert!(matches!(
        db.create_client(&t, ACTOR, &cc),
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(db.list_clients(&t).unwrap().len(), 3);
    db.delete_client(&t, ACTOR, &c.client_id).unwrap();
    assert!(db.client(&t, &c.client_id).unwrap().is_none());
}

fn roles_are_assigned_within_a_tenant(db: &Db) {
    let t = tenant(db, "acme");
    let u = user(db, &t, "carol");
    let admin = db
        .create_role(&t, ACTOR, "admin", Some("Administrators"))
        .unwrap();
    let reader = db.create_role(&t, ACTOR, "billing:read", None).unwrap();
    assert!(matches!(
        db.create_role(&t, ACTOR, "admin", None),
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        db.create_role(&t, ACTOR, "two words", None),
        Err(StoreError::Invalid(_))
    ));
    db.assign_role(&t, ACTOR, &u, &admin.id).unwrap();
    db.assign_role(&t, ACTOR, &u, &reader.id).unwrap();
    assert!(matches!(
        db.assign_role(&t, ACTOR, &u, &admin.id),
        Err(StoreError::Conflict(_))
    ));
    let names: Vec<String> = db
        .roles_of_user(&t, &u)
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(names, ["admin", "billing:read"]);
    db.unassign_role(&t, ACTOR, &u, &admin.id).unwrap();
    assert_eq!(db.roles_of_user(&t, &u).unwrap().len(), 1);
    assert!(matches!(
        db.assign_role(&t, ACTOR, &u, &RoleId("nope".into())),
        Err(StoreError::BadReference(_))
    ));
    db.delete_role(&t, ACTOR, &reader.id).unwrap();
    assert!(db.roles_of_user(&t, &u).unwrap().is_empty());
}

fn rows_of_tenant_a_cannot_be_reached_through_tenant_b(db: &Db) {
    let a = tenant(db, "acme");
    let b = tenant(db, "beta");
    let alice = user(db, &a, "alice");
    let client = db.create_client(&a, ACTOR, &confidential("Portal")).unwrap();
    let role_b = db.create_role(&b, ACTOR, "admin", None).unwrap();
    let b_head = head(db, &b);

    assert!(db.user(&b, &alice).unwrap().is_none());
    assert!(db.user_by_username(&b, "alice").unwrap().is_none());
    assert!(db.list_users(&b).unwrap().is_empty());
    assert!(db.client(&b, &client.client_id).unwrap().is_none());
    assert!(db.list_clients(&b).unwrap().is_empty());
    assert!(matches!(
        db.set_user_status(&b, ACTOR, &alice, UserStatus::Disabled),
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        db.update_user(&b, ACTOR, &alice, &UserUpdate::default()),
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        db.set_password_hash(&b, ACTOR, &alice, "x"),
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        db.delete_user(&b, ACTOR, &alice),
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        db.set_client_secret_hash(&b, ACTOR, &client.client_id, "x"),
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        db.delete_client(&b, ACTOR, &client.client_id),
        Err(StoreError::NotFound { .. })
    ));
    // A reference from B's role to A's user is refused by the composite foreign key.
    assert!(matches!(
        db.assign_role(&b, ACTOR, &alice, &role_b.id),
        Err(StoreError::BadReference(_))
    ));
    // And from A's user to B's role, even when named through tenant A.
    assert!(matches!(
        db.assign_role(&a, ACTOR, &alice, &role_b.id),
        Err(StoreError::BadReference(_))
    ));

    assert_eq!(
        head(db, &b),
        b_head,
        "refused cross-tenant attempts change nothing"
    );
    assert_eq!(db.user(&a, &alice).unwrap().unwrap().status, UserStatus::Active);
    assert!(db.client(&a, &client.client_id).unwrap().is_some());
}

fn deleting_a_tenant_removes_its_rows_but_keeps_its_audit_chain(db: &Db) {
    let t = tenant(db, "gone");
    let u = user(db, &t, "dave");
    let c = db.create_client(&t, ACTOR, &confidential("Portal")).unwrap();
    db.delete_tenant(&t, ACTOR).unwrap();
    assert!(db.tenant_by_slug("gone").unwrap().is_none());
    assert!(db.user(&t, &u).unwrap().is_none());
    assert!(db.client(&t, &c.client_id).unwrap().is_none());
    let events = db.audit_events(&t, 0, 100).unwrap();
    assert_eq!(events.last().unwrap().action, "tenant.delete");
    assert!(matches!(
        latchkey_audit::verify(db, &t).unwrap(),
        latchkey_audit::Verdict::Intact { events: 4, .. }
    ));
    // The slug is free again, for a new tenant with a new chain.
    let again = tenant(db, "gone");
    assert_ne!(again, t);
    assert_eq!(head(db, &again), 1);
}

fn every_change_is_in_the_audit_chain_without_secrets(db: &Db) {
    let t = tenant(db, "acme");
    let u = db
        .create_user(
            &t,
            ACTOR,
            &NewUser {
                username: "erin".into(),
                password_hash: Some("$argon2id$SECRETHASH".into()),
                ..NewUser::default()
            },
        )
        .unwrap();
    db.set_user_status(&t, "cli:ops", &u.id, UserStatus::Disabled)
        .unwrap();
    let c = db.create_client(&t, ACTOR, &confidential("Portal")).unwrap();
    db.set_client_secret_hash(&t, ACTOR, &c.client_id, "NEWSECRETHASH")
        .unwrap();
    db.append_audit(
        &t,
        latchkey_core::NewAuditEvent {
            actor: "user:x".into(),
            action: "login.failure".into(),
            target: "user:x".into(),
            outcome: latchkey_core::Outcome::Failure,
            details: serde_json::json!({"reason": "bad password"}),
        },
    )
    .unwrap();
    let events = db.audit_events(&t, 0, 100).unwrap();
    let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "tenant.create",
            "user.create",
            "user.disable",
            "client.create",
            "client.rotate_secret",
            "login.failure"
        ]
    );
    assert_eq!(events[2].actor, "cli:ops");
    assert_eq!(events[2].details["before"]["status"], "active");
    assert_eq!(events[2].details["after"]["status"], "disabled");
    let all = serde_json::to_string(&events).unwrap();
    for secret in [
        "SECRETHASH",
        "NEWSECRETHASH",
        &latchkey_core::sha256_hex(b"s3cret"),
    ] {
        assert!(!all.contains(secret), "audit events leak {secret}");
    }
    assert!(
        events
            .windows(2)
            .all(|w| w[1].prev_hash == w[0].hash && w[1].seq == w[0].seq + 1)
    );
    assert!(matches!(
        latchkey_audit::verify(db, &t).unwrap(),
        latchkey_audit::Verdict::Intact { events: 6, .. }
    ));
}

fn concurrent_writers_keep_one_gapless_chain(db: &Db) {
    let t = tenant(db, "busy");
    std::thread::scope(|s| {
        for i in 0..8 {
            let (db, t) = (db.clone(), t.clone());
            s.spawn(move || {
                for j in 0..5 {
                    db.create_user(
                        &t,
                        ACTOR,
                        &NewUser {
                            username: format!("u{i}-{j}"),
                            ..NewUser::default()
                        },
                    )
                    .unwrap();
                }
            });
        }
    });
    assert_eq!(db.list_users(&t).unwrap().len(), 40);
    assert_eq!(head(db, &t), 41);
    assert!(matches!(
        latchkey_audit::verify(db, &t).unwrap(),
        latchkey_audit::Verdict::Intact { events: 41, .. }
    ));
}

fn client_ids_are_unguessable(db: &Db) {
    let t = tenant(db, "acme");
    let a = db.create_client(&t, ACTOR, &confidential("a")).unwrap().client_id;
    let b = db.create_client(&t, ACTOR, &confidential("b")).unwrap().client_id;
    assert_ne!(a, b);
    assert_eq!(a.as_str().len(), 36);
    assert!(
        db.client(&t, &ClientId("00000000-0000-4000-8000-000000000000".into()))
            .unwrap()
            .is_none()
    );
}

macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $name() { let t = latchkey_tests::TestDb::sqlite(); super::$name(&t.db); } )*
        }
        mod postgres {
            $( #[test] fn $name() { let Some(t) = latchkey_tests::TestDb::postgres() else { return }; super::$name(&t.db); } )*
        }
    };
}

contract!(
    tenants_are_created_listed_updated_and_unique,
    invalid_input_is_refused_and_writes_nothing,
    usernames_and_emails_are_unique_per_tenant_ignoring_case,
    users_are_updated_disabled_and_deleted,
    clients_store_only_the_secret_hash_and_follow_registration_rules,
    roles_are_assigned_within_a_tenant,
    rows_of_tenant_a_cannot_be_reached_through_tenant_b,
    deleting_a_tenant_removes_its_rows_but_keeps_its_audit_chain,
    every_change_is_in_the_audit_chain_without_secrets,
    concurrent_writers_keep_one_gapless_chain,
    client_ids_are_unguessable,
);

// --- tampering: the attacker has write access to the database --------------------------------

fn tampered(t: &TestDb, statements: &[&str]) -> latchkey_audit::Verdict {
    let tid = tenant(&t.db, "acme");
    for n in 0..4 {
        user(&t.db, &tid, &format!("user{n}"));
    }
    assert!(matches!(
        latchkey_audit::verify(&t.db, &tid).unwrap(),
        latchkey_audit::Verdict::Intact { events: 5, .. }
    ));
    for sql in statements {
        assert!(
            t.raw_sql(sql) > 0,
            "the tampering statement changed nothing: {sql}"
        );
    }
    latchkey_audit::verify(&t.db, &tid).unwrap()
}

fn broken_at(v: &latchkey_audit::Verdict) -> i64 {
    match v {
        latchkey_audit::Verdict::Broken { seq, .. } => *seq,
        latchkey_audit::Verdict::Intact { .. } => panic!("tampering went unnoticed"),
    }
}

fn verify_names_an_edited_row(t: &TestDb) {
    let v = tampered(
        t,
        &["UPDATE audit_events SET actor = 'someone-else' WHERE seq = 3"],
    );
    assert_eq!(broken_at(&v), 3);
}

fn verify_names_a_removed_row(t: &TestDb) {
    let v = tampered(t, &["DELETE FROM audit_events WHERE seq = 2"]);
    assert_eq!(broken_at(&v), 2);
}

fn verify_notices_removed_newest_rows(t: &TestDb) {
    let v = tampered(t, &["DELETE FROM audit_events WHERE seq >= 4"]);
    assert_eq!(broken_at(&v), 4);
}

fn verify_notices_reordered_rows(t: &TestDb) {
    let v = tampered(
        t,
        &[
            "UPDATE audit_events SET seq = -2 WHERE seq = 2",
            "UPDATE audit_events SET seq = 2 WHERE seq = 3",
            "UPDATE audit_events SET seq = 3 WHERE seq = -2",
        ],
    );
    assert_eq!(broken_at(&v), 2);
}

fn verify_notices_a_rehashed_edit(t: &TestDb) {
    // Recomputing the edited row's own hash is not enough: the next row still links to the old one.
    let tid = tenant(&t.db, "acme");
    user(&t.db, &tid, "a");
    user(&t.db, &tid, "b");
    let mut e = t.db.audit_events(&tid, 1, 1).unwrap().remove(0);
    e.details = serde_json::json!({"forged": true});
    let forged = e.compute_hash();
    t.raw_sql(&format!(
        "UPDATE audit_events SET details = '{{\"forged\":true}}', hash = '{forged}' WHERE seq = 2"
    ));
    assert_eq!(broken_at(&latchkey_audit::verify(&t.db, &tid).unwrap()), 3);
}

macro_rules! tamper {
    ($($name:ident),* $(,)?) => {
        mod tamper_sqlite {
            $( #[test] fn $name() { super::$name(&latchkey_tests::TestDb::sqlite()); } )*
        }
        mod tamper_postgres {
            $( #[test] fn $name() { let Some(t) = latchkey_tests::TestDb::postgres() else { return }; super::$name(&t); } )*
        }
    };
}

tamper!(
    verify_names_an_edited_row,
    verify_names_a_removed_row,
    verify_notices_removed_newest_rows,
    verify_notices_reordered_rows,
    verify_notices_a_rehashed_edit,
);

#[test]
fn unreachable_postgres_is_a_clear_unavailable_error() {
    let url = latchkey_store::DatabaseUrl::parse("postgres://root@127.0.0.1:1/none").unwrap();
    let opts = latchkey_store::PoolOptions {
        max_size: 1,
        connection_timeout: std::time::Duration::from_millis(500),
    };
    let err = Db::open(
        &url,
        &opts,
        std::sync::Arc::new(latchkey_core::SystemClock),
        std::sync::Arc::new(latchkey_core::OsRng),
    )
    .unwrap_err();
    assert!(
        matches!(err, StoreError::Unavailable(ref m) if m.contains("127.0.0.1:1")),
        "{err}"
    );
}
