//! The OAuth state contract (grants, codes, tokens, consents): each scenario is written once
//! against `&dyn OAuthRepo` and run against SQLite, PostgreSQL and the in-memory store.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use latchkey_core::{
    AccessTokenFormat, AuthMethod, ClientId, ClientSettings, ClientType, GrantType, NewAuditEvent, TenantId,
    TenantPolicy, UserId,
};
use latchkey_store::{
    ClientRepo, Db, Grant, GrantsOf, NewClient, NewCode, NewTenant, NewToken, NewUser, OAuthRepo, Spend,
    TenantRepo, TokenKind, UserRepo,
};

/// A store under test; `Sync` so concurrent redemptions can share it.
type Repo<'a> = &'a (dyn OAuthRepo + Sync);

const ACTOR: &str = "test";
const FAR: i64 = i64::MAX / 2;

struct Fixture {
    t: TenantId,
    user: UserId,
    client: ClientId,
}

/// The rows the SQL backends' foreign keys need: a tenant, a user and a client.
fn sql_fixture(db: &Db) -> Fixture {
    let t = db
        .create_tenant(
            ACTOR,
            &NewTenant {
                slug: "acme".into(),
                display_name: None,
                policy: TenantPolicy::default(),
            },
        )
        .unwrap()
        .id;
    let user = db
        .create_user(
            &t,
            ACTOR,
            &NewUser {
                username: "alice".into(),
                ..NewUser::default()
            },
        )
        .unwrap()
        .id;
    let client = db
        .create_client(
            &t,
            ACTOR,
            &NewClient {
                name: "portal".into(),
                client_type: ClientType::Public,
                auth_method: AuthMethod::None,
                secret_hash: None,
                redirect_uris: vec!["https://app.example.com/cb".into()],
                post_logout_redirect_uris: vec![],
                grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
                scopes: vec!["openid".into(), "offline_access".into()],
                access_token_format: AccessTokenFormat::Opaque,
                require_pkce: true,
                introspect_others: false,
                first_party: false,
                jwks_uri: None,
                jwks: None,
                settings: ClientSettings::default(),
            },
        )
        .unwrap()
        .client_id;
    Fixture { t, user, client }
}

/// The in-memory store checks no foreign keys: made-up ids do.
fn memory_fixture() -> Fixture {
    Fixture {
        t: TenantId("10000000-0000-4000-8000-000000000001".into()),
        user: UserId("20000000-0000-4000-8000-000000000002".into()),
        client: ClientId("portal".into()),
    }
}

fn ev() -> NewAuditEvent {
    NewAuditEvent::success(ACTOR, "oauth.token", "client:x", serde_json::json!({}))
}

fn grant(f: &Fixture, id: &str, scope: &str, session: Option<&str>) -> Grant {
    Grant {
        id: id.into(),
        client_id: f.client.clone(),
        user_id: f.user.clone(),
        session_key: session.map(str::to_owned),
        scope: scope.into(),
        auth_time: 1,
        acr: None,
        amr: vec!["pwd".into()],
        created_at: 1,
        expires_at: FAR,
        revoked_at: None,
    }
}

fn code(hash: &str) -> NewCode {
    NewCode {
        code_hash: hash.into(),
        redirect_uri: "https://app.example.com/cb".into(),
        code_challenge: Some("c".repeat(43)),
        nonce: Some("n".into()),
        expires_at: FAR,
    }
}

fn token(f: &Fixture, handle: &str, kind: TokenKind, grant: &str) -> NewToken {
    NewToken {
        handle: handle.into(),
        kind,
        grant_id: Some(grant.into()),
        client_id: f.client.clone(),
        user_id: Some(f.user.clone()),
        scope: "openid offline_access".into(),
        audience: None,
        expires_at: FAR,
    }
}

fn issue(db: Repo<'_>, f: &Fixture, g: &str, code_hash: &str, session: Option<&str>, scope: &str) {
    db.create_code(&f.t, &grant(f, g, scope, session), &code(code_hash), ev())
        .unwrap();
    let c = db.code(&f.t, code_hash).unwrap().unwrap();
    let issued = [
        token(f, &format!("{g}-at"), TokenKind::Access, g),
        token(f, &format!("{g}-rt"), TokenKind::Refresh, g),
    ];
    assert_eq!(db.redeem_code(&f.t, &c, &issued, ev()).unwrap(), Spend::Spent);
}

fn live(db: Repo<'_>, f: &Fixture, handle: &str) -> bool {
    db.token(&f.t, handle).unwrap().unwrap().is_live(2)
}

fn a_code_is_spent_once_and_a_replay_revokes_what_it_issued(db: Repo<'_>, f: &Fixture) {
    issue(db, f, "g1", "code1", None, "openid offline_access");
    let stored = db.code(&f.t, "code1").unwrap().unwrap();
    assert!(stored.used_at.is_some());
    assert_eq!(stored.nonce.as_deref(), Some("n"));
    assert!(live(db, f, "g1-at") && live(db, f, "g1-rt"));
    let again = db.redeem_code(&f.t, &stored, &[token(f, "x", TokenKind::Access, "g1")], ev());
    assert_eq!(
        again.unwrap(),
        Spend::Replayed {
            grant_id: "g1".into()
        }
    );
    assert!(!live(db, f, "g1-at") && !live(db, f, "g1-rt"));
    assert!(
        db.token(&f.t, "x").unwrap().is_none(),
        "the replay stored nothing"
    );
    // Other tenants see nothing.
    let other = TenantId("00000000-0000-4000-8000-000000000000".into());
    assert!(db.code(&other, "code1").unwrap().is_none());
    assert!(db.token(&other, "g1-at").unwrap().is_none());
}

fn concurrent_redemptions_give_exactly_one_success(db: Repo<'_>, f: &Fixture) {
    db.create_code(&f.t, &grant(f, "g1", "openid", None), &code("c"), ev())
        .unwrap();
    let c = db.code(&f.t, "c").unwrap().unwrap();
    let results: Vec<Spend> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..16)
            .map(|i| {
                let c = c.clone();
                s.spawn(move || {
                    db.redeem_code(
                        &f.t,
                        &c,
                        &[token(f, &format!("at{i}"), TokenKind::Access, "g1")],
                        ev(),
                    )
                    .unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(results.iter().filter(|r| **r == Spend::Spent).count(), 1);
}

fn refresh_rotation_detects_reuse_and_revokes_the_family(db: Repo<'_>, f: &Fixture) {
    issue(db, f, "g1", "c1", None, "openid offline_access");
    let next = [
        token(f, "rt2", TokenKind::Refresh, "g1"),
        token(f, "at2", TokenKind::Access, "g1"),
    ];
    assert_eq!(
        db.rotate_refresh(&f.t, ("g1-rt", "g1"), &next, ev(), 0).unwrap(),
        Spend::Spent
    );
    assert!(live(db, f, "rt2"));
    assert!(!live(db, f, "g1-rt"), "a rotated token is spent");
    let reuse = db
        .rotate_refresh(
            &f.t,
            ("g1-rt", "g1"),
            &[token(f, "rt3", TokenKind::Refresh, "g1")],
            ev(),
            0,
        )
        .unwrap();
    assert_eq!(
        reuse,
        Spend::Replayed {
            grant_id: "g1".into()
        }
    );
    assert!(
        !live(db, f, "rt2") && !live(db, f, "at2"),
        "the whole family is revoked"
    );
    assert!(db.token(&f.t, "rt3").unwrap().is_none());
}

/// Issue 19 item 1: the token rotated last, back within the grace window, is refused without
/// revoking anything; once its successor has been used, the same token is reuse again.
fn the_token_rotated_last_is_tolerated_within_the_grace_window(db: Repo<'_>, f: &Fixture) {
    const GRACE: i64 = 60_000;
    issue(db, f, "g1", "c1", None, "openid offline_access");
    let rt2 = [token(f, "rt2", TokenKind::Refresh, "g1")];
    assert_eq!(
        db.rotate_refresh(&f.t, ("g1-rt", "g1"), &rt2, ev(), GRACE)
            .unwrap(),
        Spend::Spent
    );
    let retry = [token(f, "rt2b", TokenKind::Refresh, "g1")];
    assert_eq!(
        db.rotate_refresh(&f.t, ("g1-rt", "g1"), &retry, ev(), GRACE)
            .unwrap(),
        Spend::Superseded {
            grant_id: "g1".into()
        }
    );
    assert!(live(db, f, "rt2"), "the successor lives on");
    assert!(
        db.token(&f.t, "rt2b").unwrap().is_none(),
        "nothing new was issued"
    );
    let rt3 = [token(f, "rt3", TokenKind::Refresh, "g1")];
    assert_eq!(
        db.rotate_refresh(&f.t, ("rt2", "g1"), &rt3, ev(), GRACE).unwrap(),
        Spend::Spent
    );
    assert_eq!(
        db.rotate_refresh(&f.t, ("g1-rt", "g1"), &[], ev(), GRACE)
            .unwrap(),
        Spend::Replayed {
            grant_id: "g1".into()
        },
        "two rotations back is reuse, grace or not"
    );
    assert!(!live(db, f, "rt3"), "and the family is revoked");
}

fn revocation_and_session_end_reach_the_right_grants(db: Repo<'_>, f: &Fixture) {
    issue(db, f, "online", "c1", Some("sess"), "openid");
    issue(db, f, "offline", "c2", Some("sess"), "openid offline_access");
    issue(db, f, "elsewhere", "c3", Some("other"), "openid");
    let n = db
        .revoke_grants(&f.t, GrantsOf::Session("sess"), "logout", ev())
        .unwrap();
    assert_eq!(n, 1);
    assert!(!live(db, f, "online-rt"));
    assert!(live(db, f, "offline-rt"), "offline access outlives the session");
    assert!(live(db, f, "elsewhere-rt"));
    // Revoking an access token leaves the grant; revoking a refresh token takes the grant.
    assert!(db.revoke_token(&f.t, "elsewhere-at", ev()).unwrap());
    assert!(live(db, f, "elsewhere-rt"));
    assert!(db.revoke_token(&f.t, "offline-rt", ev()).unwrap());
    assert!(!live(db, f, "offline-at"));
    assert!(!db.revoke_token(&f.t, "unknown", ev()).unwrap());
    assert_eq!(
        db.revoke_grants(&f.t, GrantsOf::User(&f.user), "disabled", ev())
            .unwrap(),
        1
    );
    assert!(!live(db, f, "elsewhere-rt"));
}

fn consents_widen_list_and_revoke_their_grants(db: Repo<'_>, f: &Fixture) {
    assert!(db.consent(&f.t, &f.user, &f.client).unwrap().is_none());
    db.save_consent(&f.t, &f.user, &f.client, "openid").unwrap();
    db.save_consent(&f.t, &f.user, &f.client, "openid offline_access")
        .unwrap();
    let c = db.consent(&f.t, &f.user, &f.client).unwrap().unwrap();
    assert_eq!(c.scope, "openid offline_access");
    assert_eq!(db.consents(&f.t, &f.user).unwrap().len(), 1);
    issue(db, f, "g1", "c1", None, "openid offline_access");
    assert!(db.revoke_consent(&f.t, &f.user, &f.client).unwrap());
    assert!(db.consent(&f.t, &f.user, &f.client).unwrap().is_none());
    assert!(
        !live(db, f, "g1-rt"),
        "withdrawing consent revokes its refresh tokens"
    );
}

/// Sixteen sign-ins of one user consenting at once (one per scope) all succeed, and the consent
/// ends up with every scope: a race the store absorbs, never a 409.
fn concurrent_consents_all_succeed_and_add_up(db: Repo<'_>, f: &Fixture) {
    let scopes: Vec<String> = (0..16).map(|i| format!("openid s{i}")).collect();
    std::thread::scope(|sc| {
        let runs: Vec<_> = scopes
            .iter()
            .map(|scope| sc.spawn(move || db.save_consent(&f.t, &f.user, &f.client, scope)))
            .collect();
        for r in runs {
            r.join().unwrap().unwrap();
        }
    });
    let c = db.consent(&f.t, &f.user, &f.client).unwrap().unwrap();
    for i in 0..16 {
        assert!(
            c.scope.split(' ').any(|s| s == format!("s{i}")),
            "s{i} in {}",
            c.scope
        );
    }
}

fn purge_removes_only_what_expired_over_a_day_ago(db: Repo<'_>, f: &Fixture) {
    let old = Grant {
        expires_at: 1,
        ..grant(f, "old", "openid", None)
    };
    let old_code = NewCode {
        expires_at: 1,
        ..code("old-code")
    };
    db.create_code(&f.t, &old, &old_code, ev()).unwrap();
    let c = db.code(&f.t, "old-code").unwrap().unwrap();
    let old_rt = NewToken {
        expires_at: 1,
        ..token(f, "old-rt", TokenKind::Refresh, "old")
    };
    assert_eq!(db.redeem_code(&f.t, &c, &[old_rt], ev()).unwrap(), Spend::Spent);
    issue(db, f, "new", "new-code", None, "openid");
    assert_eq!(
        db.purge_expired_oauth().unwrap(),
        3,
        "the code, its token and its grant"
    );
    assert!(db.code(&f.t, "old-code").unwrap().is_none());
    assert!(db.token(&f.t, "old-rt").unwrap().is_none());
    assert!(db.code(&f.t, "new-code").unwrap().is_some());
    assert!(live(db, f, "new-rt"));
}

macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $name() {
                let t = latchkey_tests::TestDb::sqlite();
                super::$name(&t.db, &super::sql_fixture(&t.db));
            } )*
        }
        mod postgres {
            $( #[test] fn $name() {
                let Some(t) = latchkey_tests::TestDb::postgres() else { return };
                super::$name(&t.db, &super::sql_fixture(&t.db));
            } )*
        }
        mod memory {
            $( #[test] fn $name() {
                let clock = std::sync::Arc::new(latchkey_core::SystemClock);
                let store = latchkey_oidc::memory::MemoryOAuth::new(clock);
                super::$name(&store, &super::memory_fixture());
            } )*
        }
    };
}

contract!(
    a_code_is_spent_once_and_a_replay_revokes_what_it_issued,
    concurrent_redemptions_give_exactly_one_success,
    refresh_rotation_detects_reuse_and_revokes_the_family,
    the_token_rotated_last_is_tolerated_within_the_grace_window,
    revocation_and_session_end_reach_the_right_grants,
    consents_widen_list_and_revoke_their_grants,
    concurrent_consents_all_succeed_and_add_up,
    purge_removes_only_what_expired_over_a_day_ago,
);
