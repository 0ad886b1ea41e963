//! One repository contract, run against SQLite and against PostgreSQL.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use latchkey_core::{
    AccessTokenFormat, AnyRole, AuthMethod, ClientId, ClientRoleId, ClientType, GrantType, GroupId,
    IdpDescriptor, Principal, RoleId, SamlConnection, SamlOptions, TenantId, TenantPolicy, UserId,
    UserStatus,
};
use latchkey_keys::{Aad, KeyRing, MasterKey};
use latchkey_store::{
    AuditRepo, ClientRepo, Db, GroupRepo, GroupUpdate, NewClient, NewSamlConnection, NewTenant, NewUser,
    RoleRepo, SamlConnectionUpdate, SamlRepo, StoreError, TenantRepo, TenantUpdate, UserRepo, UserUpdate,
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
                if_version: None,
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

/// Updates that break a registration rule, or name another tenant's client, change nothing.
fn client_updates_keep_the_rules(db: &Db, (t, other): (&TenantId, &TenantId), id: &latchkey_core::ClientId) {
    let redirect = |c: &latchkey_core::Client| {
        let mut n = c.clone();
        n.redirect_uris = vec!["https://x.example.com/cb".into()];
        Ok(n)
    };
    // Registration rules hold: no redirect URI for authorization_code; private_key_jwt needs keys.
    for bad in [
        Box::new(|c: &latchkey_core::Client| {
            let mut n = c.clone();
            n.redirect_uris.clear();
            Ok(n)
        }) as Box<dyn Fn(&latchkey_core::Client) -> Result<latchkey_core::Client, StoreError>>,
        Box::new(|c: &latchkey_core::Client| {
            let mut n = c.clone();
            n.auth_method = AuthMethod::PrivateKeyJwt;
            Ok(n)
        }),
    ] {
        assert!(matches!(
            db.update_client(t, ACTOR, id, None, &*bad),
            Err(StoreError::Invalid(_))
        ));
    }
    // Another tenant can't name it.
    assert!(matches!(
        db.update_client(other, ACTOR, id, None, &redirect),
        Err(StoreError::NotFound { .. })
    ));
}

fn clients_update_under_their_version_and_registration_rules(db: &Db) {
    let t = tenant(db, "acme");
    let other = tenant(db, "beta");
    let c = db.create_client(&t, ACTOR, &confidential("Portal")).unwrap();
    let redirect = |uri: &'static str| {
        move |c: &latchkey_core::Client| {
            let mut n = c.clone();
            n.redirect_uris = vec![uri.into()];
            n.name = "  Portal 2 ".into();
            n.client_id = latchkey_core::ClientId("forged".into());
            n.secret_hash = None;
            Ok(n)
        }
    };
    let v1 = c.updated_at;
    let got = db
        .update_client(
            &t,
            ACTOR,
            &c.client_id,
            Some(v1),
            &redirect("https://new.example.com/cb"),
        )
        .unwrap();
    assert_eq!(got.redirect_uris, ["https://new.example.com/cb"]);
    assert_eq!(got.name, "Portal 2", "trimmed");
    assert_eq!(got.client_id, c.client_id, "the id stays");
    assert_eq!(got.secret_hash, c.secret_hash, "the secret stays");
    assert!(got.updated_at > v1, "a new version");
    assert_eq!(db.client(&t, &c.client_id).unwrap().unwrap(), got);
    // The version read before that change is stale: nothing is written.
    let e = db
        .update_client(
            &t,
            ACTOR,
            &c.client_id,
            Some(v1),
            &redirect("https://lost.example.com/cb"),
        )
        .unwrap_err();
    assert!(matches!(e, StoreError::Stale(_)), "{e:?}");
    assert_eq!(db.client(&t, &c.client_id).unwrap().unwrap(), got);
    // The same change again changes nothing, not even the version.
    let same = db
        .update_client(
            &t,
            ACTOR,
            &c.client_id,
            None,
            &redirect("https://new.example.com/cb"),
        )
        .unwrap();
    assert_eq!(same.updated_at, got.updated_at);
    client_updates_keep_the_rules(db, (&t, &other), &c.client_id);
    let updates: Vec<serde_json::Value> = db
        .audit_events(&t, 0, 100)
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "client.update")
        .map(|e| e.details)
        .collect();
    assert_eq!(updates.len(), 2, "{updates:?}");
    assert_eq!(
        updates[0]["changed"]["redirect_uris"],
        serde_json::json!({"from": ["https://app.example.com/cb"], "to": ["https://new.example.com/cb"]})
    );
    assert_eq!(updates[1]["changed"], serde_json::json!({}));
}

fn a_rotated_secret_overlaps_until_its_end(db: &Db) {
    let t = tenant(db, "acme");
    let c = db.create_client(&t, ACTOR, &confidential("Portal")).unwrap();
    db.set_client_secret_hash(&t, ACTOR, &c.client_id, &latchkey_core::sha256_hex(b"new"), None)
        .unwrap();
    // With an overlap the replaced secret is kept until then, hashed; the next rotation
    // without one ends it.
    let until = latchkey_core::Clock::now_millis(&latchkey_core::SystemClock) + 3_600_000;
    let overlapped = db
        .set_client_secret_hash(
            &t,
            ACTOR,
            &c.client_id,
            &latchkey_core::sha256_hex(b"newer"),
            Some(until),
        )
        .unwrap();
    let kept = db.client(&t, &c.client_id).unwrap().unwrap();
    assert_eq!(kept, overlapped);
    let previous = kept.previous_secret.clone().unwrap();
    assert_eq!(previous.hash, latchkey_core::sha256_hex(b"new"));
    assert_eq!(previous.expires_at, until);
    let live: Vec<&str> = kept.secret_hashes(until - 1).collect();
    assert_eq!(live.len(), 2);
    assert_eq!(kept.secret_hashes(until).count(), 1, "over at its end");
    assert!(
        !serde_json::to_string(&kept).unwrap().contains(&previous.hash),
        "the old hash is never shown"
    );
    for bad in [until - 7_200_000, until + 31 * 86_400_000] {
        assert!(matches!(
            db.set_client_secret_hash(&t, ACTOR, &c.client_id, "x", Some(bad)),
            Err(StoreError::Invalid(_))
        ));
    }
    let ended = db
        .set_client_secret_hash(
            &t,
            ACTOR,
            &c.client_id,
            &latchkey_core::sha256_hex(b"newest"),
            None,
        )
        .unwrap();
    assert_eq!(ended.previous_secret, None);
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
        .set_client_secret_hash(&t, ACTOR, &c.client_id, &latchkey_core::sha256_hex(b"new"), None)
        .unwrap();
    assert_ne!(rotated.secret_hash, c.secret_hash);
    assert_eq!(
        rotated.previous_secret, None,
        "no overlap asked: the old secret is gone"
    );

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
        db.set_client_secret_hash(&t, ACTOR, &p.client_id, "x", None),
        Err(StoreError::Invalid(_))
    ));
    let mut cc = confidential("svc");
    cc.grant_types = vec![GrantType::RefreshToken];
    assert!(matches!(
        db.create_client(&t, ACTOR, &cc),
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(db.list_clients(&t).unwrap().len(), 3);
    db.delete_client(&t, ACTOR, &c.client_id, None).unwrap();
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
    // A description changes in place (tenants as code); another tenant's role is not found.
    let role = AnyRole::Tenant(admin.id.clone());
    db.describe_role(&t, ACTOR, &role, Some("Admins")).unwrap();
    let described = db.list_roles(&t).unwrap();
    assert_eq!(described[0].description.as_deref(), Some("Admins"));
    let other = tenant(db, "other");
    assert!(matches!(
        db.describe_role(&other, ACTOR, &role, None),
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(
        db.list_roles(&t).unwrap()[0].description.as_deref(),
        Some("Admins")
    );
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
        db.set_client_secret_hash(&b, ACTOR, &client.client_id, "x", None),
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        db.delete_client(&b, ACTOR, &client.client_id, None),
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
    db.delete_tenant(&t, ACTOR, None).unwrap();
    assert!(db.tenant_by_slug("gone").unwrap().is_none());
    assert!(db.user(&t, &u).unwrap().is_none());
    assert!(db.client(&t, &c.client_id).unwrap().is_none());
    let events = db.audit_events(&t, 0, 100).unwrap();
    assert_eq!(events.last().unwrap().action, "tenant.delete");
    assert!(matches!(
        latchkey_audit::verify(db, &t).unwrap(),
        latchkey_audit::Verdict::Intact { events: 5, .. }
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
    db.set_client_secret_hash(&t, ACTOR, &c.client_id, "NEWSECRETHASH", None)
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
            "keys.pairwise_salt",
            "user.create",
            "user.disable",
            "client.create",
            "client.rotate_secret",
            "login.failure"
        ]
    );
    assert_eq!(events[3].actor, "cli:ops");
    assert_eq!(events[3].details["before"]["status"], "active");
    assert_eq!(events[3].details["after"]["status"], "disabled");
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
        latchkey_audit::Verdict::Intact { events: 7, .. }
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
    // tenant.create, keys.pairwise_salt (the first sealed user's index key), 40 × user.create
    assert_eq!(head(db, &t), 42);
    assert!(matches!(
        latchkey_audit::verify(db, &t).unwrap(),
        latchkey_audit::Verdict::Intact { events: 42, .. }
    ));
}

/// Issue 19 item 2: concurrent first sign-ins of one user each save its (new) risk history; an
/// update-then-insert raced into a unique violation, answered 409. Every save now succeeds and
/// one history remains.
fn concurrent_first_risk_history_saves_all_succeed(db: &Db) {
    use latchkey_store::RiskRepo;
    let t = tenant(db, "rush");
    for round in 0..10 {
        let u = user(db, &t, &format!("rush{round}"));
        let start = std::sync::Barrier::new(16);
        let failures = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|s| {
            for i in 0..16 {
                let (db, t, u, start, failures) = (db.clone(), t.clone(), u.clone(), &start, &failures);
                s.spawn(move || {
                    start.wait();
                    if db
                        .save_risk_history(&t, &u, format!("history-{i}").as_bytes())
                        .is_err()
                    {
                        failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                });
            }
        });
        assert_eq!(failures.into_inner(), 0, "round {round}");
        let kept = String::from_utf8(db.risk_history(&t, &u).unwrap().unwrap()).unwrap();
        assert!(kept.starts_with("history-"), "{kept}");
    }
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

// --- SAML connections -------------------------------------------------------------------------

fn idp(entity: &str, certs: &[&str]) -> IdpDescriptor {
    IdpDescriptor {
        entity_id: entity.into(),
        sso_url: format!("{entity}/sso"),
        sso_binding: latchkey_core::saml::BINDING_REDIRECT.into(),
        certificates: certs.iter().map(|c| (*c).to_owned()).collect(),
        wants_signed_requests: false,
        slo_url: None,
        slo_response_url: None,
    }
}

fn new_saml(db: &Db, name: &str, domains: &[&str]) -> NewSamlConnection {
    NewSamlConnection {
        id: db.new_saml_connection_id(),
        name: name.into(),
        display_name: format!("{name} IdP"),
        idp: idp(&format!("https://{name}.idp.example"), &["Q0VSVDE="]),
        metadata_url: None,
        options: SamlOptions {
            domains: domains.iter().map(|d| (*d).to_owned()).collect(),
            ..SamlOptions::default()
        },
        sp_certificate: "U1BDRVJU".into(),
        sp_key_sealed: "SEALED-SP-KEY".into(),
        next_refresh_at: None,
    }
}

fn saml(db: &Db, t: &TenantId, name: &str, domains: &[&str]) -> SamlConnection {
    db.create_saml_connection(t, ACTOR, &new_saml(db, name, domains))
        .unwrap()
}

fn events_named(db: &Db, t: &TenantId, action: &str) -> Vec<latchkey_core::AuditEvent> {
    db.audit_events(t, 0, 1000)
        .unwrap()
        .into_iter()
        .filter(|e| e.action == action)
        .collect()
}

fn saml_connections_are_created_listed_and_found_by_name_and_domain(db: &Db) {
    let t = tenant(db, "acme");
    let new = new_saml(db, "okta", &["Corp.Example", "corp.example", "eu.corp.example"]);
    let created = db.create_saml_connection(&t, ACTOR, &new).unwrap();
    assert_eq!(created.id, new.id, "the id the caller sealed with is the row's");
    assert_eq!(
        created.options.domains,
        ["corp.example", "eu.corp.example"],
        "domains are lowercased and deduplicated"
    );
    assert_eq!(created.sp_key_sealed, "SEALED-SP-KEY");
    let got = db.saml_connection(&t, &created.id).unwrap().unwrap();
    assert_eq!(got, created);
    assert_eq!(db.saml_connection_by_name(&t, "okta").unwrap().unwrap(), created);
    assert!(db.saml_connection_by_name(&t, "entra").unwrap().is_none());
    saml(db, &t, "entra", &["other.example"]);
    let names: Vec<String> = db
        .list_saml_connections(&t)
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["entra", "okta"]);
    assert_eq!(
        db.saml_connection_for_domain(&t, "EU.Corp.Example")
            .unwrap()
            .unwrap()
            .id,
        created.id
    );
    assert!(db.saml_connection_for_domain(&t, "example").unwrap().is_none());
    let e = events_named(db, &t, "saml.connection.create");
    assert_eq!(e.len(), 2);
    assert_eq!(e[0].target, format!("saml:{}", created.id));
    assert_eq!(e[0].details["certificates"], 1);
    assert_eq!(e[0].details["idp_entity_id"], "https://okta.idp.example");
    let all = serde_json::to_string(&db.audit_events(&t, 0, 100).unwrap()).unwrap();
    assert!(!all.contains("SEALED-SP-KEY"), "the sealed key is not audited");
    for bad in ["not a slug", "x"] {
        let mut n = new_saml(db, bad, &[]);
        n.name = bad.into();
        assert!(matches!(
            db.create_saml_connection(&t, ACTOR, &n),
            Err(StoreError::Invalid(e)) if e.field == "name"
        ));
    }
    for bad in [
        "localhost",
        "-a.example",
        "a..example",
        "a b.example",
        "*.example",
    ] {
        assert!(
            matches!(
                db.create_saml_connection(&t, ACTOR, &new_saml(db, "bad", &[bad])),
                Err(StoreError::Invalid(e)) if e.field == "domains"
            ),
            "{bad}"
        );
    }
    let mut no_cert = new_saml(db, "nocert", &[]);
    no_cert.idp.certificates.clear();
    assert!(matches!(
        db.create_saml_connection(&t, ACTOR, &no_cert),
        Err(StoreError::Invalid(_))
    ));
}

fn saml_names_and_domains_are_unique_per_tenant(db: &Db) {
    let a = tenant(db, "acme");
    let b = tenant(db, "beta");
    saml(db, &a, "okta", &["corp.example"]);
    let before = head(db, &a);
    let dup = db.create_saml_connection(&a, ACTOR, &new_saml(db, "okta", &[]));
    assert!(
        matches!(&dup, Err(StoreError::Conflict(m)) if m.contains("okta")),
        "{dup:?}"
    );
    let claimed =
        db.create_saml_connection(&a, ACTOR, &new_saml(db, "entra", &["x.example", "CORP.example"]));
    assert!(
        matches!(&claimed, Err(StoreError::Conflict(m)) if m.contains("corp.example") && m.contains("okta")),
        "{claimed:?}"
    );
    assert_eq!(head(db, &a), before, "refused creates leave no audit event");
    assert_eq!(db.list_saml_connections(&a).unwrap().len(), 1);
    // Claiming through an update is refused too.
    let entra = saml(db, &a, "entra", &["x.example"]);
    let mut o = entra.options.clone();
    o.domains.push("corp.example".into());
    let up = db.update_saml_connection(
        &a,
        ACTOR,
        &entra.id,
        &SamlConnectionUpdate {
            options: Some(o),
            ..SamlConnectionUpdate::default()
        },
    );
    assert!(matches!(up, Err(StoreError::Conflict(_))), "{up:?}");
    // Another tenant has its own names and domains.
    saml(db, &b, "okta", &["corp.example"]);
}

fn saml_connections_are_updated_with_audited_changes(db: &Db) {
    let t = tenant(db, "acme");
    let s = saml(db, &t, "okta", &["corp.example"]);
    let mut o = s.options.clone();
    o.domains = vec!["New.Example".into()];
    o.jit = false;
    o.role_map = vec![("admins".into(), "admin".into())];
    let after = db
        .update_saml_connection(
            &t,
            "cli:ops",
            &s.id,
            &SamlConnectionUpdate {
                display_name: Some("Okta SSO".into()),
                idp: Some(idp("https://new.idp.example", &["QQ==", "Qg=="])),
                metadata_url: Some(Some("https://new.idp.example/metadata".into())),
                options: Some(o),
                next_refresh_at: Some(Some(42)),
            },
        )
        .unwrap();
    assert_eq!(after.display_name, "Okta SSO");
    assert_eq!(after.options.domains, ["new.example"]);
    assert_eq!(after.idp.certificates.len(), 2);
    assert_eq!(after.next_refresh_at, Some(42));
    assert!(
        after.metadata_refreshed_at.is_some(),
        "new metadata from a URL counts as fetched"
    );
    assert_eq!(db.saml_connection(&t, &s.id).unwrap().unwrap(), after);
    let to_file = db
        .update_saml_connection(
            &t,
            ACTOR,
            &s.id,
            &SamlConnectionUpdate {
                metadata_url: Some(None),
                ..SamlConnectionUpdate::default()
            },
        )
        .unwrap();
    assert_eq!(
        to_file.next_refresh_at, None,
        "metadata from a file is not refreshed"
    );
    assert!(
        db.saml_connection_for_domain(&t, "corp.example")
            .unwrap()
            .is_none()
    );
    assert_eq!(
        db.saml_connection_for_domain(&t, "new.example")
            .unwrap()
            .unwrap()
            .id,
        s.id
    );
    let e = events_named(db, &t, "saml.connection.update");
    assert_eq!(e.len(), 2);
    assert_eq!(e[0].actor, "cli:ops");
    let ch = &e[0].details["changes"];
    assert_eq!(ch["idp_entity_id"]["before"], "https://okta.idp.example");
    assert_eq!(ch["idp_entity_id"]["after"], "https://new.idp.example");
    assert_eq!(ch["certificates"]["before"], 1);
    assert_eq!(ch["certificates"]["after"], 2);
    assert_eq!(ch["options"]["after"]["jit"], false);
    assert!(ch.get("name").is_none(), "unchanged fields are not listed");
    // Unknown ids are NotFound.
    assert!(matches!(
        db.update_saml_connection(&t, ACTOR, "nope", &SamlConnectionUpdate::default()),
        Err(StoreError::NotFound { .. })
    ));
}

fn saml_metadata_refresh_success_and_failure_are_audited(db: &Db) {
    let t = tenant(db, "acme");
    let mut n = new_saml(db, "okta", &[]);
    n.metadata_url = Some("https://okta.idp.example/metadata".into());
    n.next_refresh_at = Some(0);
    let s = db.create_saml_connection(&t, ACTOR, &n).unwrap();
    db.saml_metadata_failed(&t, &s.id, "connection refused", 5_000)
        .unwrap();
    let failed = db.saml_connection(&t, &s.id).unwrap().unwrap();
    assert_eq!(failed.metadata_error.as_deref(), Some("connection refused"));
    assert_eq!(failed.idp, s.idp, "the last good metadata stays");
    assert_eq!(failed.next_refresh_at, Some(5_000));
    let rolled = idp("https://okta.idp.example", &["Q0VSVDE=", "Q0VSVDI="]);
    let ok = db
        .saml_metadata_refreshed(&t, &s.id, &rolled, 9_000, None)
        .unwrap();
    assert_eq!(ok.idp, rolled);
    assert_eq!(ok.metadata_error, None);
    assert!(ok.metadata_refreshed_at.is_some());
    assert_eq!(ok.next_refresh_at, Some(9_000));
    db.saml_metadata_refreshed(&t, &s.id, &rolled, 10_000, None)
        .unwrap();
    let e = events_named(db, &t, "saml.metadata.refresh");
    assert_eq!(e.len(), 3);
    assert_eq!(e[0].outcome, latchkey_core::Outcome::Failure);
    assert_eq!(e[0].details["error"], "connection refused");
    assert_eq!(e[1].outcome, latchkey_core::Outcome::Success);
    assert_eq!(e[1].details["changed"], true);
    assert_eq!(e[1].details["certificates"], 2);
    assert_eq!(e[2].details["changed"], false);
    assert!(matches!(
        db.saml_metadata_failed(&t, "nope", "x", 0),
        Err(StoreError::NotFound { .. })
    ));
}

fn saml_refreshes_are_claimed_once(db: &Db) {
    let a = tenant(db, "acme");
    let b = tenant(db, "beta");
    let mut due = Vec::new();
    for (t, name, next) in [
        (&a, "due", Some(100)),
        (&b, "due", Some(50)),
        (&a, "later", Some(10_000)),
    ] {
        let mut n = new_saml(db, name, &[]);
        n.metadata_url = Some("https://idp.example/metadata".into());
        n.next_refresh_at = next;
        let s = db.create_saml_connection(t, ACTOR, &n).unwrap();
        if next < Some(1_000) {
            due.push((t.clone(), s.id));
        }
    }
    // From a file: never refreshed, even with a time set.
    let mut file = new_saml(db, "file", &[]);
    file.next_refresh_at = Some(0);
    db.create_saml_connection(&a, ACTOR, &file).unwrap();
    let before = head(db, &a);
    let mut first = db.claim_saml_refreshes(1_000, 60_000, 10).unwrap();
    first.sort();
    due.sort();
    assert_eq!(first, due);
    assert!(db.claim_saml_refreshes(1_000, 60_000, 10).unwrap().is_empty());
    assert_eq!(head(db, &a), before, "claims are not audited");
    assert_eq!(
        db.saml_connection(&a, &due.iter().find(|d| d.0 == a).unwrap().1)
            .unwrap()
            .unwrap()
            .next_refresh_at,
        Some(61_000),
        "the claim leases the connection"
    );
    // After the lease, it is due again; the limit holds.
    assert_eq!(db.claim_saml_refreshes(61_000, 60_000, 1).unwrap().len(), 1);
    // Racing claimers never both get one.
    let got: usize = std::thread::scope(|s| {
        let hs: Vec<_> = (0..4)
            .map(|_| s.spawn(|| db.claim_saml_refreshes(200_000, 60_000, 10).unwrap().len()))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(got, 3);
}

fn deleting_a_saml_connection_removes_its_identities(db: &Db) {
    let t = tenant(db, "acme");
    let s = saml(db, &t, "okta", &[]);
    let other = saml(db, &t, "entra", &[]);
    let u = user(db, &t, "alice");
    db.link_saml_identity(&t, ACTOR, &s.id, "alice@corp.example", &u)
        .unwrap();
    db.link_saml_identity(&t, ACTOR, &other.id, "00u1", &u).unwrap();
    assert_eq!(
        db.saml_identity(&t, &s.id, "alice@corp.example").unwrap(),
        Some(u.clone())
    );
    let dup = db.link_saml_identity(&t, ACTOR, &s.id, "alice@corp.example", &u);
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
    assert!(matches!(
        db.link_saml_identity(&t, ACTOR, &s.id, "ghost", &UserId("nobody".into())),
        Err(StoreError::NotFound { .. })
    ));
    db.saml_login_seen(&t, &s.id, "alice@corp.example").unwrap();
    assert_eq!(events_named(db, &t, "saml.identity.link").len(), 2);
    db.delete_saml_connection(&t, "cli:ops", &s.id, None).unwrap();
    assert!(db.saml_connection(&t, &s.id).unwrap().is_none());
    assert!(
        db.saml_identity(&t, &s.id, "alice@corp.example")
            .unwrap()
            .is_none()
    );
    assert_eq!(
        db.saml_identities_of_user(&t, &u).unwrap(),
        [(other.id.clone(), "00u1".to_owned())]
    );
    assert!(db.user(&t, &u).unwrap().is_some(), "the user stays");
    let e = events_named(db, &t, "saml.connection.delete");
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].details["name"], "okta");
    assert!(matches!(
        db.delete_saml_connection(&t, ACTOR, &s.id, None),
        Err(StoreError::NotFound { .. })
    ));
    // Deleting the user removes its links.
    db.delete_user(&t, ACTOR, &u).unwrap();
    assert!(db.saml_identity(&t, &other.id, "00u1").unwrap().is_none());
}

/// Connection health reads: the last sign-in through one connection (not another's, not
/// another tenant's), and audit events by exact target.
fn saml_last_login_and_audit_target_are_per_connection(db: &Db) {
    let t = tenant(db, "acme");
    let other_tenant = tenant(db, "globex");
    let s = saml(db, &t, "okta", &[]);
    let other = saml(db, &t, "entra", &[]);
    let u = user(db, &t, "alice");
    assert_eq!(db.saml_last_login(&t, &s.id).unwrap(), None);
    db.link_saml_identity(&t, ACTOR, &s.id, "alice@corp.example", &u)
        .unwrap();
    assert_eq!(db.saml_last_login(&t, &s.id).unwrap(), None, "linked, never seen");
    db.saml_login_seen(&t, &s.id, "alice@corp.example").unwrap();
    let seen = db.saml_last_login(&t, &s.id).unwrap();
    assert!(seen.is_some());
    assert_eq!(db.saml_last_login(&t, &other.id).unwrap(), None);
    assert_eq!(db.saml_last_login(&other_tenant, &s.id).unwrap(), None);
    for target in [&s.id, &other.id] {
        db.append_audit(
            &t,
            latchkey_core::NewAuditEvent::success(
                "saml:x",
                "saml.acs",
                format!("saml:{target}"),
                serde_json::json!({}),
            ),
        )
        .unwrap();
    }
    let filter = latchkey_store::AuditFilter {
        action: Some("saml.acs".into()),
        target: Some(format!("saml:{}", s.id)),
        ..latchkey_store::AuditFilter::default()
    };
    let found = db.audit_search(&t, &filter, 0, 100).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].target, format!("saml:{}", s.id));
    assert!(
        db.audit_search(&other_tenant, &filter, 0, 100)
            .unwrap()
            .is_empty()
    );
}

/// Domain claims: one per tenant and domain, verified by one tenant at most, failures
/// recorded without unverifying, every change audited, another tenant's claim out of reach.
fn domain_claims_are_verified_by_one_tenant_only(db: &Db) {
    use latchkey_store::{DomainMethod, DomainRepo};
    let (a, b) = (tenant(db, "acme"), tenant(db, "globex"));
    let made = db
        .add_domain(&a, ACTOR, "corp.example", DomainMethod::Dns, "tok-a")
        .unwrap();
    assert_eq!(
        (made.method, made.token.as_str(), made.verified_at),
        (DomainMethod::Dns, "tok-a", None)
    );
    assert!(matches!(
        db.add_domain(&a, ACTOR, "corp.example", DomainMethod::Http, "x"),
        Err(StoreError::Conflict(_))
    ));
    db.add_domain(&b, ACTOR, "corp.example", DomainMethod::Http, "tok-b")
        .unwrap();
    let failed = db
        .record_domain_check(&a, ACTOR, "corp.example", Err("no_record: none".into()))
        .unwrap();
    assert_eq!(
        (failed.verified_at, failed.last_error.as_deref()),
        (None, Some("no_record: none"))
    );
    let ok = db.record_domain_check(&a, ACTOR, "corp.example", Ok(())).unwrap();
    assert!(ok.verified_at.is_some() && ok.last_error.is_none());
    let again = db
        .record_domain_check(&a, ACTOR, "corp.example", Err("wrong_value: x".into()))
        .unwrap();
    assert_eq!(
        again.verified_at, ok.verified_at,
        "a verified claim stays verified"
    );
    assert!(matches!(
        db.record_domain_check(&b, ACTOR, "corp.example", Ok(())),
        Err(StoreError::Conflict(_))
    ));
    assert!(
        db.tenant_domain(&b, "corp.example")
            .unwrap()
            .unwrap()
            .verified_at
            .is_none()
    );
    assert!(matches!(
        db.record_domain_check(&b, ACTOR, "other.example", Ok(())),
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(db.list_domains(&a).unwrap().len(), 1);
    assert_eq!(events_named(db, &a, "domain.verify").len(), 3);
    assert_eq!(events_named(db, &a, "domain.add").len(), 1);
    // Once acme withdraws, globex may verify.
    db.remove_domain(&a, ACTOR, "corp.example").unwrap();
    assert!(matches!(
        db.remove_domain(&a, ACTOR, "corp.example"),
        Err(StoreError::NotFound { .. })
    ));
    assert!(
        db.record_domain_check(&b, ACTOR, "corp.example", Ok(()))
            .unwrap()
            .verified_at
            .is_some()
    );
    assert!(db.tenant_domain(&a, "corp.example").unwrap().is_none());
}

fn provisioning_a_saml_user_creates_user_and_link_atomically(db: &Db) {
    let t = tenant(db, "acme");
    let s = saml(db, &t, "okta", &[]);
    let new = NewUser {
        username: "Carol@Corp.Example".into(),
        email: Some("carol@corp.example".into()),
        ..NewUser::default()
    };
    let u = db.provision_saml_user(&t, &s.id, "00uCAROL", &new).unwrap();
    assert_eq!(u.username, "carol@corp.example");
    assert_eq!(
        db.saml_identity(&t, &s.id, "00uCAROL").unwrap(),
        Some(u.id.clone())
    );
    let events = events_named(db, &t, "user.create");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].details["source"], "saml");
    assert_eq!(events[0].details["connection"], s.id.as_str());
    assert_eq!(events[0].target, format!("user:{}", u.id));
    // A taken username: no user, no link, no event.
    let before = head(db, &t);
    let clash = db.provision_saml_user(
        &t,
        &s.id,
        "00uOTHER",
        &NewUser {
            username: "CAROL@corp.example".into(),
            ..NewUser::default()
        },
    );
    assert!(
        matches!(&clash, Err(StoreError::Conflict(m)) if m.contains("username")),
        "{clash:?}"
    );
    assert!(db.saml_identity(&t, &s.id, "00uOTHER").unwrap().is_none());
    // A NameID linked already: the new user is rolled back with it.
    let again = db.provision_saml_user(
        &t,
        &s.id,
        "00uCAROL",
        &NewUser {
            username: "carol2".into(),
            ..NewUser::default()
        },
    );
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    assert!(db.user_by_username(&t, "carol2").unwrap().is_none());
    assert!(matches!(
        db.provision_saml_user(
            &t,
            "no-such-connection",
            "x",
            &NewUser {
                username: "dave".into(),
                ..NewUser::default()
            }
        ),
        Err(StoreError::NotFound { .. })
    ));
    assert!(db.user_by_username(&t, "dave").unwrap().is_none());
    assert_eq!(head(db, &t), before);
    assert_eq!(db.list_users(&t).unwrap().len(), 1);
}

fn saml_rows_of_tenant_a_cannot_be_reached_through_tenant_b(db: &Db) {
    let a = tenant(db, "acme");
    let b = tenant(db, "beta");
    let s = saml(db, &a, "okta", &["corp.example"]);
    let u = user(db, &a, "alice");
    db.link_saml_identity(&a, ACTOR, &s.id, "alice", &u).unwrap();
    assert!(db.saml_connection(&b, &s.id).unwrap().is_none());
    assert!(db.saml_connection_by_name(&b, "okta").unwrap().is_none());
    assert!(db.list_saml_connections(&b).unwrap().is_empty());
    assert!(
        db.saml_connection_for_domain(&b, "corp.example")
            .unwrap()
            .is_none()
    );
    assert!(matches!(
        db.update_saml_connection(
            &b,
            ACTOR,
            &s.id,
            &SamlConnectionUpdate {
                display_name: Some("hijacked".into()),
                ..SamlConnectionUpdate::default()
            }
        ),
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        db.saml_metadata_refreshed(&b, &s.id, &idp("https://evil.example", &["RQ=="]), 0, None),
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        db.delete_saml_connection(&b, ACTOR, &s.id, None),
        Err(StoreError::NotFound { .. })
    ));
    assert!(db.saml_identity(&b, &s.id, "alice").unwrap().is_none());
    assert!(db.saml_identities_of_user(&b, &u).unwrap().is_empty());
    // B's user can't be linked through A's connection, nor provisioned into it.
    let bu = user(db, &b, "mallory");
    assert!(db.link_saml_identity(&b, ACTOR, &s.id, "m", &bu).is_err());
    assert!(db.link_saml_identity(&a, ACTOR, &s.id, "m", &bu).is_err());
    assert!(
        db.provision_saml_user(
            &b,
            &s.id,
            "m",
            &NewUser {
                username: "m".into(),
                ..NewUser::default()
            }
        )
        .is_err()
    );
    assert_eq!(db.saml_connection(&a, &s.id).unwrap().unwrap(), s);
    assert_eq!(db.saml_identity(&a, &s.id, "alice").unwrap(), Some(u));
}

fn sp_aad<'a>(t: &'a TenantId, id: &'a str) -> Aad<'a> {
    Aad {
        tenant: t.as_str(),
        table: "saml_connections",
        column: "sp_key_sealed",
        row: id,
    }
}

fn data_key_rotation_reseals_saml_sp_keys(db: &Db) {
    let t = tenant(db, "acme");
    let ring = KeyRing::open(
        db.clone(),
        MasterKey::generate().unwrap(),
        std::sync::Arc::new(latchkey_core::SystemClock),
    )
    .unwrap();
    ring.ensure_tenant(&t, ACTOR).unwrap();
    let mut n = new_saml(db, "okta", &[]);
    let id = n.id.clone();
    n.sp_key_sealed = ring.seal(&t, sp_aad(&t, &id), b"PKCS8-DER").unwrap();
    db.create_saml_connection(&t, ACTOR, &n).unwrap();
    let old_dek = db.data_keys(&t).unwrap()[0].id.clone();
    assert!(n.sp_key_sealed.contains(&old_dek));
    let (new_dek, moved) = ring.rotate_dek(&t, ACTOR, 100, None).unwrap();
    assert!(moved >= 1, "{moved}");
    let stored = db.saml_connection(&t, &id).unwrap().unwrap().sp_key_sealed;
    assert!(
        stored.contains(&new_dek) && !stored.contains(&old_dek),
        "{stored}"
    );
    assert_eq!(db.data_keys(&t).unwrap().len(), 1, "the old data key is gone");
    ring.invalidate(&t);
    assert_eq!(
        ring.open_sealed(&t, sp_aad(&t, &id), &stored).unwrap(),
        b"PKCS8-DER"
    );
    assert!(
        ring.open_sealed(&t, sp_aad(&t, "another-row"), &stored).is_err(),
        "bound to its row"
    );
}

/// Issue 19 item 1: work that reaches COMMIT after its caller's deadline is rolled back, so a
/// change is never written for a client that has already been told it failed.
fn a_write_past_its_deadline_is_rolled_back(db: &Db) {
    {
        let past = std::time::Instant::now();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let late = latchkey_store::deadline::within(past, || {
            db.create_tenant(
                "test",
                &NewTenant {
                    slug: "late".into(),
                    display_name: None,
                    policy: TenantPolicy::default(),
                },
            )
        });
        assert!(matches!(late, Err(StoreError::DeadlinePassed(_))), "{late:?}");
        assert!(
            db.tenant_by_slug("late").unwrap().is_none(),
            "nothing was written"
        );
        let soon = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let made = latchkey_store::deadline::within(soon, || {
            db.create_tenant(
                "test",
                &NewTenant {
                    slug: "in-time".into(),
                    display_name: None,
                    policy: TenantPolicy::default(),
                },
            )
        });
        assert!(made.is_ok(), "{made:?}");
    }
}

// --- groups, client roles and effective access ---------------------------------------------------

fn group(db: &Db, t: &TenantId, name: &str) -> GroupId {
    db.create_group(t, ACTOR, name, None).unwrap().id
}

fn nest(db: &Db, t: &TenantId, parent: &GroupId, child: &GroupId) -> latchkey_store::Result<()> {
    db.add_member(t, ACTOR, parent, &Principal::Group(child.clone()))
}

fn paths(db: &Db, t: &TenantId, u: &UserId) -> Vec<String> {
    db.effective_access(t, u)
        .unwrap()
        .groups
        .into_iter()
        .map(|g| g.path)
        .collect()
}

fn group_names_are_unique_per_tenant_and_validated(db: &Db) {
    let a = tenant(db, "acme");
    let b = tenant(db, "beta");
    group(db, &a, "staff");
    group(db, &b, "staff");
    let dup = db.create_group(&a, ACTOR, "staff", None);
    assert!(
        matches!(&dup, Err(StoreError::Conflict(m)) if m.contains("\"staff\"")),
        "{dup:?}"
    );
    assert!(matches!(
        db.create_group(&a, ACTOR, "staff/finance", None),
        Err(StoreError::Invalid(_))
    ));
    let other = group(db, &a, "other");
    assert!(matches!(
        db.update_group(
            &a,
            ACTOR,
            &other,
            &GroupUpdate {
                name: Some("staff".into()),
                description: None,
                if_version: None,
            }
        ),
        Err(StoreError::Conflict(_))
    ));
    let renamed = db
        .update_group(
            &a,
            ACTOR,
            &other,
            &GroupUpdate {
                name: Some("finance".into()),
                description: Some(Some("Money people".into())),
                if_version: None,
            },
        )
        .unwrap();
    assert_eq!(
        (renamed.name.as_str(), renamed.path.as_str()),
        ("finance", "/finance")
    );
    assert_eq!(renamed.description.as_deref(), Some("Money people"));
    let names: Vec<String> = db.list_groups(&a).unwrap().into_iter().map(|g| g.name).collect();
    assert_eq!(names, ["finance", "staff"]);
}

fn nested_groups_have_paths_and_pass_membership_up(db: &Db) {
    let t = tenant(db, "acme");
    let (staff, finance, payroll) = (
        group(db, &t, "staff"),
        group(db, &t, "finance"),
        group(db, &t, "payroll"),
    );
    nest(db, &t, &staff, &finance).unwrap();
    nest(db, &t, &finance, &payroll).unwrap();
    let u = user(db, &t, "carol");
    db.add_member(&t, ACTOR, &payroll, &Principal::User(u.clone()))
        .unwrap();
    assert_eq!(
        paths(db, &t, &u),
        ["/staff", "/staff/finance", "/staff/finance/payroll"]
    );
    let shown = db.group_by_name(&t, "payroll").unwrap().unwrap();
    assert_eq!(shown.path, "/staff/finance/payroll");
    assert_eq!(shown.parent_id.as_ref(), Some(&finance));
    let members = db.group_members(&t, &finance).unwrap();
    assert!(members.users.is_empty());
    assert_eq!(members.groups.len(), 1);
    assert_eq!(members.groups[0].path, "/staff/finance/payroll");
    let listed: Vec<String> = db.list_groups(&t).unwrap().into_iter().map(|g| g.path).collect();
    assert_eq!(listed, ["/staff", "/staff/finance", "/staff/finance/payroll"]);
    // A group is in one group at most, so its path is one path.
    let other = group(db, &t, "other");
    assert!(matches!(
        nest(db, &t, &other, &payroll),
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        db.add_member(&t, ACTOR, &payroll, &Principal::User(u.clone())),
        Err(StoreError::Conflict(_))
    ));
}

fn group_cycles_are_refused(db: &Db) {
    let t = tenant(db, "acme");
    let (a, b, c) = (group(db, &t, "a"), group(db, &t, "b"), group(db, &t, "c"));
    let before = head(db, &t);
    let itself = nest(db, &t, &a, &a);
    assert!(
        matches!(&itself, Err(StoreError::Cycle(msg)) if msg.contains("itself")),
        "{itself:?}"
    );
    nest(db, &t, &a, &b).unwrap();
    let back = nest(db, &t, &b, &a);
    assert!(
        matches!(&back, Err(StoreError::Cycle(msg)) if msg.contains("cycle")),
        "{back:?}"
    );
    nest(db, &t, &b, &c).unwrap();
    assert!(matches!(nest(db, &t, &c, &a), Err(StoreError::Cycle(_))));
    // Two nestings were written; the refusals wrote nothing, not even an audit event.
    assert_eq!(head(db, &t), before + 2);
    let listed: Vec<String> = db.list_groups(&t).unwrap().into_iter().map(|g| g.path).collect();
    assert_eq!(listed, ["/a", "/a/b", "/a/b/c"]);
}

fn crossing_nestings_at_once_leave_no_cycle(db: &Db) {
    for round in 0..4 {
        let t = tenant(db, &format!("race{round}"));
        let (a, b) = (group(db, &t, "a"), group(db, &t, "b"));
        let results: Vec<_> = std::thread::scope(|s| {
            let one = s.spawn(|| nest(db, &t, &a, &b));
            let two = s.spawn(|| nest(db, &t, &b, &a));
            vec![one.join().unwrap(), two.join().unwrap()]
        });
        let ok = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(ok, 1, "exactly one nesting wins: {results:?}");
        assert!(
            results.iter().any(|r| matches!(r, Err(StoreError::Cycle(_)))),
            "{results:?}"
        );
    }
}

fn effective_roles_come_through_two_levels_of_groups(db: &Db) {
    let t = tenant(db, "acme");
    let u = user(db, &t, "carol");
    let (staff, finance) = (group(db, &t, "staff"), group(db, &t, "finance"));
    nest(db, &t, &staff, &finance).unwrap();
    db.add_member(&t, ACTOR, &finance, &Principal::User(u.clone()))
        .unwrap();
    let employee = db.create_role(&t, ACTOR, "employee", None).unwrap();
    let billing = db.create_role(&t, ACTOR, "billing:read", None).unwrap();
    let own = db.create_role(&t, ACTOR, "own", None).unwrap();
    let unused = db.create_role(&t, ACTOR, "unused", None).unwrap();
    db.assign(
        &t,
        ACTOR,
        &Principal::Group(staff.clone()),
        &AnyRole::Tenant(employee.id.clone()),
    )
    .unwrap();
    db.assign(
        &t,
        ACTOR,
        &Principal::Group(finance.clone()),
        &AnyRole::Tenant(billing.id.clone()),
    )
    .unwrap();
    db.assign(
        &t,
        ACTOR,
        &Principal::User(u.clone()),
        &AnyRole::Tenant(own.id.clone()),
    )
    .unwrap();
    // The same role twice (own and through a group) is listed once.
    db.assign(
        &t,
        ACTOR,
        &Principal::Group(staff.clone()),
        &AnyRole::Tenant(own.id.clone()),
    )
    .unwrap();
    assert!(matches!(
        db.assign(
            &t,
            ACTOR,
            &Principal::Group(staff.clone()),
            &AnyRole::Tenant(own.id.clone())
        ),
        Err(StoreError::Conflict(_))
    ));
    let got = db.effective_access(&t, &u).unwrap();
    assert_eq!(got.roles, ["billing:read", "employee", "own"]);
    assert!(!got.roles.contains(&unused.name));
    // Someone in no group has only their own roles; a stranger has none.
    let dave = user(db, &t, "dave");
    assert!(db.effective_access(&t, &dave).unwrap().roles.is_empty());
    let (names, _) = db.roles_of_group(&t, &staff).unwrap();
    assert_eq!(names, ["employee", "own"]);
}

fn client_roles_are_kept_per_client(db: &Db) {
    let t = tenant(db, "acme");
    let reporting = db
        .create_client(&t, ACTOR, &confidential("Reporting"))
        .unwrap()
        .client_id;
    let billing = db
        .create_client(&t, ACTOR, &confidential("Billing"))
        .unwrap()
        .client_id;
    let r_read = db
        .create_client_role(&t, ACTOR, &reporting, "read", None)
        .unwrap();
    let b_read = db.create_client_role(&t, ACTOR, &billing, "read", None).unwrap();
    let b_admin = db.create_client_role(&t, ACTOR, &billing, "admin", None).unwrap();
    assert!(matches!(
        db.create_client_role(&t, ACTOR, &reporting, "read", None),
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        db.create_client_role(&t, ACTOR, &ClientId("nope".into()), "read", None),
        Err(StoreError::BadReference(_))
    ));
    assert!(matches!(
        db.create_client_role(&t, ACTOR, &reporting, "two words", None),
        Err(StoreError::Invalid(_))
    ));
    let u = user(db, &t, "carol");
    let g = group(db, &t, "auditors");
    db.add_member(&t, ACTOR, &g, &Principal::User(u.clone())).unwrap();
    db.assign(
        &t,
        ACTOR,
        &Principal::User(u.clone()),
        &AnyRole::Client(r_read.id.clone()),
    )
    .unwrap();
    db.assign(
        &t,
        ACTOR,
        &Principal::Group(g.clone()),
        &AnyRole::Client(b_admin.id.clone()),
    )
    .unwrap();
    let got = db.effective_access(&t, &u).unwrap();
    assert!(got.roles.is_empty(), "client roles are not tenant roles: {got:?}");
    assert_eq!(got.client_roles.len(), 2);
    assert_eq!(got.client_roles[&reporting], ["read"]);
    assert_eq!(
        got.client_roles[&billing],
        ["admin"],
        "billing's read was not given"
    );
    let listed: Vec<String> = db
        .list_client_roles(&t, &billing)
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(listed, ["admin", "read"]);
    // Deleting the client deletes its roles and their assignments.
    db.delete_client(&t, ACTOR, &billing, None).unwrap();
    assert!(
        !db.effective_access(&t, &u)
            .unwrap()
            .client_roles
            .contains_key(&billing)
    );
    assert!(matches!(
        db.delete_client_role(&t, ACTOR, &b_read.id),
        Err(StoreError::NotFound { .. })
    ));
}

fn removing_a_member_removes_the_roles_it_gave(db: &Db) {
    let t = tenant(db, "acme");
    let u = user(db, &t, "carol");
    let (staff, finance) = (group(db, &t, "staff"), group(db, &t, "finance"));
    nest(db, &t, &staff, &finance).unwrap();
    db.add_member(&t, ACTOR, &finance, &Principal::User(u.clone()))
        .unwrap();
    let employee = db.create_role(&t, ACTOR, "employee", None).unwrap();
    db.assign(
        &t,
        ACTOR,
        &Principal::Group(staff.clone()),
        &AnyRole::Tenant(employee.id.clone()),
    )
    .unwrap();
    assert_eq!(db.effective_access(&t, &u).unwrap().roles, ["employee"]);
    // Taking finance out of staff ends the inherited role; finance membership stays.
    db.remove_member(&t, ACTOR, &staff, &Principal::Group(finance.clone()))
        .unwrap();
    let got = db.effective_access(&t, &u).unwrap();
    assert!(got.roles.is_empty(), "{got:?}");
    assert_eq!(paths(db, &t, &u), ["/finance"]);
    nest(db, &t, &staff, &finance).unwrap();
    db.remove_member(&t, ACTOR, &finance, &Principal::User(u.clone()))
        .unwrap();
    assert_eq!(
        db.effective_access(&t, &u).unwrap(),
        latchkey_core::EffectiveAccess::default()
    );
    assert!(matches!(
        db.remove_member(&t, ACTOR, &finance, &Principal::User(u.clone())),
        Err(StoreError::NotFound { .. })
    ));
    db.unassign(
        &t,
        ACTOR,
        &Principal::Group(staff.clone()),
        &AnyRole::Tenant(employee.id.clone()),
    )
    .unwrap();
    assert!(matches!(
        db.unassign(&t, ACTOR, &Principal::Group(staff), &AnyRole::Tenant(employee.id)),
        Err(StoreError::NotFound { .. })
    ));
}

fn deleting_a_group_removes_its_memberships_and_roles(db: &Db) {
    let t = tenant(db, "acme");
    let u = user(db, &t, "carol");
    let (staff, finance) = (group(db, &t, "staff"), group(db, &t, "finance"));
    nest(db, &t, &staff, &finance).unwrap();
    db.add_member(&t, ACTOR, &finance, &Principal::User(u.clone()))
        .unwrap();
    db.add_member(&t, ACTOR, &staff, &Principal::User(u.clone()))
        .unwrap();
    let employee = db.create_role(&t, ACTOR, "employee", None).unwrap();
    db.assign(
        &t,
        ACTOR,
        &Principal::Group(staff.clone()),
        &AnyRole::Tenant(employee.id.clone()),
    )
    .unwrap();
    db.delete_group(&t, ACTOR, &staff).unwrap();
    let got = db.effective_access(&t, &u).unwrap();
    assert!(got.roles.is_empty(), "{got:?}");
    // finance, which was inside staff, is now a top-level group.
    assert_eq!(paths(db, &t, &u), ["/finance"]);
    assert_eq!(db.group_by_name(&t, "finance").unwrap().unwrap().parent_id, None);
    assert!(matches!(
        db.delete_group(&t, ACTOR, &staff),
        Err(StoreError::NotFound { .. })
    ));
    // Deleting a user removes their memberships.
    db.delete_user(&t, ACTOR, &u).unwrap();
    assert!(db.group_members(&t, &finance).unwrap().users.is_empty());
}

fn groups_and_roles_of_another_tenant_cannot_be_used(db: &Db) {
    let a = tenant(db, "acme");
    let b = tenant(db, "beta");
    let alice = user(db, &a, "alice");
    let ga = group(db, &a, "staff");
    let gb = group(db, &b, "staff");
    let role_b = db.create_role(&b, ACTOR, "admin", None).unwrap();
    assert!(matches!(
        db.add_member(&b, ACTOR, &gb, &Principal::User(alice.clone())),
        Err(StoreError::BadReference(_))
    ));
    assert!(matches!(nest(db, &b, &gb, &ga), Err(StoreError::BadReference(_))));
    assert!(matches!(nest(db, &a, &gb, &ga), Err(StoreError::NotFound { .. })));
    assert!(matches!(
        db.assign(
            &a,
            ACTOR,
            &Principal::Group(ga.clone()),
            &AnyRole::Tenant(role_b.id.clone())
        ),
        Err(StoreError::BadReference(_))
    ));
    assert!(matches!(
        db.assign(
            &a,
            ACTOR,
            &Principal::User(alice.clone()),
            &AnyRole::Client(ClientRoleId("x".into()))
        ),
        Err(StoreError::BadReference(_))
    ));
    assert!(db.group_by_name(&b, "staff").unwrap().unwrap().id == gb);
}

fn group_changes_are_audited(db: &Db) {
    let t = tenant(db, "acme");
    let u = user(db, &t, "carol");
    let g = group(db, &t, "staff");
    let client = db
        .create_client(&t, ACTOR, &confidential("Reporting"))
        .unwrap()
        .client_id;
    let cr = db
        .create_client_role(&t, ACTOR, &client, "reports:read", None)
        .unwrap();
    db.add_member(&t, ACTOR, &g, &Principal::User(u.clone())).unwrap();
    db.assign(
        &t,
        ACTOR,
        &Principal::Group(g.clone()),
        &AnyRole::Client(cr.id.clone()),
    )
    .unwrap();
    db.remove_member(&t, ACTOR, &g, &Principal::User(u.clone()))
        .unwrap();
    db.delete_group(&t, ACTOR, &g).unwrap();
    let events = db.audit_events(&t, 5, 100).unwrap();
    let actions: Vec<(&str, &str)> = events
        .iter()
        .map(|e| (e.action.as_str(), e.target.as_str()))
        .collect();
    let (gt, ut) = (format!("group:{g}"), format!("user:{u}"));
    assert_eq!(
        actions[0],
        ("client_role.create", format!("client_role:{}", cr.id).as_str())
    );
    assert_eq!(actions[1], ("group.add_member", gt.as_str()));
    assert_eq!(actions[2], ("role.assign", gt.as_str()));
    assert_eq!(actions[3], ("group.remove_member", gt.as_str()));
    assert_eq!(actions[4], ("group.delete", gt.as_str()));
    assert_eq!(events[1].details["member"], ut.as_str());
    assert_eq!(events[2].details["client_role_id"], cr.id.as_str());
    assert!(matches!(
        latchkey_audit::verify(db, &t).unwrap(),
        latchkey_audit::Verdict::Intact { .. }
    ));
}

fn mail_to(id: &str, to: &str) -> latchkey_store::NewMail {
    latchkey_store::NewMail {
        channel: latchkey_store::Channel::Mail,
        id: id.into(),
        recipient: to.into(),
        subject: "verify".into(),
        body_sealed: "sealed".into(),
    }
}

/// Verification links: spent once, only while live, only for the address they went to; a
/// change of address clears the flag; every step audited.
// One user's links from request to spend, in order: split, the order would hide.
#[allow(clippy::too_many_lines)]
fn email_verification_links_are_single_use_and_bound_to_the_address(db: &Db) {
    use latchkey_store::{EmailVerificationRepo, NewVerification};
    let t = tenant(db, "acme");
    let far = i64::MAX / 2;
    let new = NewUser {
        username: "alice".into(),
        email: Some("Alice@Acme.test".into()),
        ..NewUser::default()
    };
    let m1 = mail_to("m1", "alice@acme.test");
    let v1 = NewVerification {
        token_hash: "h1",
        expires_at: far,
        mail: &m1,
    };
    let alice = db
        .create_user_verifying(&t, ACTOR, "user.signup", &new, Some(&v1), &[])
        .unwrap();
    assert!(!alice.email_verified);
    let live = db.email_verification(&t, "h1").unwrap().unwrap();
    assert_eq!((&live.user.id, live.still_current), (&alice.id, true));
    // A mail to another address than the user's is refused, and writes nothing.
    let wrong = mail_to("m2", "mallory@evil.test");
    let v = NewVerification {
        token_hash: "h2",
        expires_at: far,
        mail: &wrong,
    };
    assert!(matches!(
        db.request_email_verification(&t, ACTOR, &alice.id, &v),
        Err(StoreError::Invalid(_))
    ));
    assert!(db.email_verification(&t, "h2").unwrap().is_none());
    // Expired: not live, not spendable.
    let m3 = mail_to("m3", "alice@acme.test");
    let v = NewVerification {
        token_hash: "h3",
        expires_at: 1,
        mail: &m3,
    };
    db.request_email_verification(&t, ACTOR, &alice.id, &v).unwrap();
    assert!(db.email_verification(&t, "h3").unwrap().is_none());
    assert!(matches!(
        db.complete_email_verification(&t, "h3"),
        Err(StoreError::NotFound { .. })
    ));
    // Another tenant can't spend it.
    let other = tenant(db, "other");
    assert!(matches!(
        db.complete_email_verification(&other, "h1"),
        Err(StoreError::NotFound { .. })
    ));
    // Spent once.
    assert!(db.complete_email_verification(&t, "h1").unwrap().email_verified);
    assert!(matches!(
        db.complete_email_verification(&t, "h1"),
        Err(StoreError::NotFound { .. })
    ));
    // A change of address clears the flag; a link for the old address verifies nothing.
    let m4 = mail_to("m4", "alice@acme.test");
    let v = NewVerification {
        token_hash: "h4",
        expires_at: far,
        mail: &m4,
    };
    db.request_email_verification(&t, ACTOR, &alice.id, &v).unwrap();
    assert!(db.email_verification(&t, "h4").unwrap().unwrap().still_current);
    let change = UserUpdate {
        email: Some(Some("alice.new@acme.test".into())),
        display_name: None,
        if_version: None,
    };
    assert!(
        !db.update_user(&t, ACTOR, &alice.id, &change)
            .unwrap()
            .email_verified
    );
    assert!(!db.email_verification(&t, "h4").unwrap().unwrap().still_current);
    assert!(matches!(
        db.complete_email_verification(&t, "h4"),
        Err(StoreError::Conflict(_))
    ));
    assert!(!db.user(&t, &alice.id).unwrap().unwrap().email_verified);
    // The operator's word.
    assert!(
        db.set_email_verified(&t, ACTOR, &alice.id, true)
            .unwrap()
            .email_verified
    );
    let nobody = user(db, &t, "bob");
    assert!(matches!(
        db.set_email_verified(&t, ACTOR, &nobody, true),
        Err(StoreError::Invalid(_))
    ));
    for action in [
        "user.signup",
        "user.email_verification_requested",
        "user.email_verified",
    ] {
        assert!(!events_named(db, &t, action).is_empty(), "{action}");
    }
}

/// An administrator's MFA reset of a user the tenant doesn't have is `NotFound` and writes
/// nothing, not even an audit event claiming success.
fn resetting_mfa_of_an_unknown_user_is_not_found_and_not_audited(db: &Db) {
    use latchkey_store::MfaRepo;
    let t = tenant(db, "acme");
    let other = tenant(db, "beta");
    let bob = user(db, &other, "bob");
    let before = head(db, &t);
    for who in [UserId("no-such-user".into()), bob] {
        let e = db.reset_mfa(&t, ACTOR, &who).unwrap_err();
        assert!(matches!(e, StoreError::NotFound { .. }), "{e}");
    }
    assert_eq!(head(db, &t), before, "nothing audited");
    assert!(events_named(db, &t, "mfa.reset").is_empty());
    let alice = user(db, &t, "alice");
    assert_eq!(db.reset_mfa(&t, ACTOR, &alice).unwrap(), 0);
    assert_eq!(events_named(db, &t, "mfa.reset").len(), 1);
}

/// `If-Match` on a client or SAML connection delete is checked by the delete statement itself:
/// a version that is not the stored one is `Stale` and the row stays.
fn deletes_under_a_stale_version_delete_nothing(db: &Db) {
    let t = tenant(db, "acme");
    let c = db.create_client(&t, ACTOR, &confidential("portal")).unwrap();
    let e = db
        .delete_client(&t, ACTOR, &c.client_id, Some(c.updated_at - 1))
        .unwrap_err();
    assert!(matches!(e, StoreError::Stale(_)), "{e}");
    assert!(db.client(&t, &c.client_id).unwrap().is_some());
    assert!(events_named(db, &t, "client.delete").is_empty());
    db.delete_client(&t, ACTOR, &c.client_id, Some(c.updated_at))
        .unwrap();
    assert!(db.client(&t, &c.client_id).unwrap().is_none());
    let gone = db.delete_client(&t, ACTOR, &c.client_id, Some(c.updated_at));
    assert!(matches!(gone, Err(StoreError::NotFound { .. })), "{gone:?}");
    // The same for a SAML connection, which the metadata refresh changes in the background.
    let s = saml(db, &t, "corp", &["corp.example"]);
    let e = db
        .delete_saml_connection(&t, ACTOR, &s.id, Some(s.updated_at - 1))
        .unwrap_err();
    assert!(matches!(e, StoreError::Stale(_)), "{e}");
    assert!(db.saml_connection(&t, &s.id).unwrap().is_some());
    db.delete_saml_connection(&t, ACTOR, &s.id, Some(s.updated_at))
        .unwrap();
    assert!(db.saml_connection(&t, &s.id).unwrap().is_none());
}

/// Issue 23: the change feed names every tenant, client and key change in the changing
/// transaction; a refused change leaves no row, and users (not cached) write none.
fn the_change_feed_names_what_other_nodes_must_forget(db: &Db) {
    use latchkey_store::Changed;
    let start = db.latest_change().unwrap();
    let t = tenant(db, "feed");
    let c = db.create_client(&t, ACTOR, &confidential("portal")).unwrap();
    // The tenant's first user makes its data key (a key change); later users write none.
    user(db, &t, "first");
    let after_create = db.latest_change().unwrap();
    user(db, &t, "alice");
    assert_eq!(
        db.latest_change().unwrap(),
        after_create,
        "a user is not cached: no row"
    );
    db.update_client(&t, ACTOR, &c.client_id, None, &|c| {
        let mut c = c.clone();
        c.redirect_uris = vec!["https://app.example.com/new".into()];
        Ok(c)
    })
    .unwrap();
    let refused = db.update_client(&t, ACTOR, &c.client_id, None, &|c| {
        let mut c = c.clone();
        c.redirect_uris = vec!["http://evil.example.com/cb".into()];
        Ok(c)
    });
    assert!(refused.is_err(), "plain http is refused");
    let keys = KeyRing::open(
        db.clone(),
        latchkey_tests::master_of(db),
        std::sync::Arc::new(latchkey_core::SystemClock),
    )
    .unwrap();
    keys.ensure_tenant(&t, ACTOR).unwrap();
    let feed = db.changes_after(start).unwrap();
    let of = |kind: Changed| feed.iter().filter(|c| c.kind == kind).collect::<Vec<_>>();
    assert!(
        of(Changed::Tenant)
            .iter()
            .any(|c| c.tenant_id == t.as_str() && c.subject == "feed"),
        "{feed:?}"
    );
    let clients = of(Changed::Client);
    assert_eq!(
        clients.len(),
        2,
        "the create and the one update that held: {feed:?}"
    );
    assert!(
        clients
            .iter()
            .all(|x| x.subject == c.client_id.0 && x.tenant_id == t.as_str())
    );
    assert!(
        of(Changed::Keys).len() >= 3,
        "a data key and two signing keys: {feed:?}"
    );
    assert!(
        !of(Changed::Master).is_empty(),
        "the first master key check: {feed:?}"
    );
    assert!(feed.windows(2).all(|w| w[0].id < w[1].id), "oldest first");
    let last = feed.last().unwrap().id;
    assert!(db.changes_after(last).unwrap().is_empty());
    assert_eq!(db.latest_change().unwrap(), last);
    // Pruning by the database's clock: nothing is an hour old yet, everything is older than
    // a minute from now.
    let now = latchkey_core::Clock::now_millis(&latchkey_core::SystemClock);
    assert_eq!(db.prune_changes(now - 3_600_000).unwrap(), 0);
    assert!(db.prune_changes(now + 60_000).unwrap() >= feed.len());
    assert!(db.changes_after(start).unwrap().is_empty());
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
    the_change_feed_names_what_other_nodes_must_forget,
    a_write_past_its_deadline_is_rolled_back,
    concurrent_first_risk_history_saves_all_succeed,
    tenants_are_created_listed_updated_and_unique,
    invalid_input_is_refused_and_writes_nothing,
    usernames_and_emails_are_unique_per_tenant_ignoring_case,
    users_are_updated_disabled_and_deleted,
    clients_store_only_the_secret_hash_and_follow_registration_rules,
    a_rotated_secret_overlaps_until_its_end,
    clients_update_under_their_version_and_registration_rules,
    roles_are_assigned_within_a_tenant,
    rows_of_tenant_a_cannot_be_reached_through_tenant_b,
    deleting_a_tenant_removes_its_rows_but_keeps_its_audit_chain,
    every_change_is_in_the_audit_chain_without_secrets,
    concurrent_writers_keep_one_gapless_chain,
    client_ids_are_unguessable,
    saml_connections_are_created_listed_and_found_by_name_and_domain,
    saml_names_and_domains_are_unique_per_tenant,
    saml_connections_are_updated_with_audited_changes,
    saml_metadata_refresh_success_and_failure_are_audited,
    saml_refreshes_are_claimed_once,
    deleting_a_saml_connection_removes_its_identities,
    saml_last_login_and_audit_target_are_per_connection,
    domain_claims_are_verified_by_one_tenant_only,
    provisioning_a_saml_user_creates_user_and_link_atomically,
    saml_rows_of_tenant_a_cannot_be_reached_through_tenant_b,
    data_key_rotation_reseals_saml_sp_keys,
    group_names_are_unique_per_tenant_and_validated,
    nested_groups_have_paths_and_pass_membership_up,
    group_cycles_are_refused,
    crossing_nestings_at_once_leave_no_cycle,
    effective_roles_come_through_two_levels_of_groups,
    client_roles_are_kept_per_client,
    removing_a_member_removes_the_roles_it_gave,
    deleting_a_group_removes_its_memberships_and_roles,
    groups_and_roles_of_another_tenant_cannot_be_used,
    group_changes_are_audited,
    email_verification_links_are_single_use_and_bound_to_the_address,
    resetting_mfa_of_an_unknown_user_is_not_found_and_not_audited,
    deletes_under_a_stale_version_delete_nothing,
);

// --- tampering: the attacker has write access to the database --------------------------------

fn tampered(t: &TestDb, statements: &[&str]) -> latchkey_audit::Verdict {
    let tid = tenant(&t.db, "acme");
    for n in 0..4 {
        user(&t.db, &tid, &format!("user{n}"));
    }
    assert!(matches!(
        latchkey_audit::verify(&t.db, &tid).unwrap(),
        latchkey_audit::Verdict::Intact { events: 6, .. }
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
        probe_every: std::time::Duration::from_millis(50),
        wait_slice: std::time::Duration::from_millis(25),
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

/// Issue 19 item 1: once the database is found down, callers are answered at once instead of
/// each waiting for the pool; the first call after it answers again succeeds.
#[test]
fn a_down_database_is_answered_at_once_and_found_back_within_a_probe() {
    use std::time::{Duration, Instant};
    let Some(db) = TestDb::postgres() else { return };
    let proxy = latchkey_tests::Proxy::start("127.0.0.1:5432".parse().unwrap());
    let url = latchkey_store::DatabaseUrl::parse(&db.url.replace("127.0.0.1:5432", &proxy.addr.to_string()))
        .unwrap();
    let store = Db::open(
        &url,
        &latchkey_store::PoolOptions::for_url(&url),
        std::sync::Arc::new(latchkey_core::SystemClock),
        std::sync::Arc::new(latchkey_core::OsRng),
    )
    .unwrap();
    assert!(store.tenant_by_slug("acme").is_ok());
    proxy.cut();
    // The pooled connection is found broken, a new one is refused, and the breaker opens; no
    // call meanwhile waits out the pool's 5 s timeout.
    let first = Instant::now();
    while !store.breaker().open {
        let t = Instant::now();
        assert!(store.tenant_by_slug("acme").is_err() || first.elapsed() < Duration::from_millis(100));
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "no call hangs: {:?}",
            t.elapsed()
        );
        assert!(first.elapsed() < Duration::from_secs(5), "the outage is noticed");
    }
    for _ in 0..100 {
        let t = Instant::now();
        let e = store.tenant_by_slug("acme").unwrap_err();
        assert!(
            matches!(e, StoreError::CircuitOpen | StoreError::Unavailable(_)),
            "{e}"
        );
        assert!(
            t.elapsed() < Duration::from_millis(100),
            "answered at once: {:?}",
            t.elapsed()
        );
    }
    proxy.restore();
    let back = Instant::now();
    while store.tenant_by_slug("acme").is_err() {
        assert!(back.elapsed() < Duration::from_secs(2), "found back");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        back.elapsed() < Duration::from_millis(200),
        "within a probe or two: {:?}",
        back.elapsed()
    );
    assert!(!store.breaker().open);
    assert_eq!(store.breaker().trips, 1);
}

/// Issue 19 item 10: nodes starting at once against a fresh PostgreSQL database migrate it
/// under an advisory lock: every one starts, and the migrations are applied exactly once.
#[test]
fn nodes_migrating_at_once_take_turns() {
    let Some((url, admin_url, name)) = latchkey_tests::create_pg_database() else {
        return;
    };
    let parsed = latchkey_store::DatabaseUrl::parse(&url).unwrap();
    let applied: Vec<usize> = std::thread::scope(|s| {
        let nodes: Vec<_> = (0..6)
            .map(|_| {
                let parsed = parsed.clone();
                s.spawn(move || {
                    let db = Db::open(
                        &parsed,
                        &latchkey_store::PoolOptions::for_url(&parsed),
                        std::sync::Arc::new(latchkey_core::SystemClock),
                        std::sync::Arc::new(latchkey_core::OsRng),
                    )
                    .unwrap();
                    db.migrate().map(|names| names.len())
                })
            })
            .collect();
        nodes.into_iter().map(|n| n.join().unwrap().unwrap()).collect()
    });
    let total: usize = applied.iter().sum();
    assert!(
        total > 0 && applied.iter().filter(|n| **n > 0).count() == 1,
        "{applied:?}"
    );
    let mut admin = <diesel::PgConnection as diesel::Connection>::establish(&admin_url).unwrap();
    let _ = diesel::RunQueryDsl::execute(
        diesel::sql_query(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")),
        &mut admin,
    );
}
