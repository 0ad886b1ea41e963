//! The retention policy on a clock the test moves (issue 25, item 4): inactive accounts are
//! warned, then disabled, then deleted, each at its boundary and not a day before; a sign-in
//! starts the count again; unused consents expire; spent invitations and delivered mail are
//! purged. Each step is audited. SQLite + memory and PostgreSQL + Redis.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use latchkey_core::{AccessTokenFormat, ClientType, FixedClock, TenantId, UserStatus};
use latchkey_services::retention::Applied;
use latchkey_store::{
    AuditRepo, Channel, InvitationRepo, MailOutbox, NewInvitation, NewMail, NewUser, OAuthRepo, TenantRepo,
    UserRepo,
};
use latchkey_tests::browser::{Browser, setup};
use latchkey_tests::oidc::{code, register, update_policy};
use latchkey_tests::{Backend, TestServer};
use std::sync::Arc;

const DAY: i64 = 86_400_000;
const T0: i64 = 1_900_000_000_000;

fn tenant(s: &TestServer) -> TenantId {
    s.state.db.tenant_by_slug("acme").unwrap().unwrap().id
}

fn status(s: &TestServer, name: &str) -> Option<UserStatus> {
    s.state
        .db
        .user_by_username(&tenant(s), name)
        .unwrap()
        .map(|u| u.status)
}

/// `action` events by target username, in order.
fn events(s: &TestServer, action: &str) -> Vec<String> {
    let t = tenant(s);
    let users: Vec<(String, String)> = ["alice", "bob", "carol"]
        .iter()
        .filter_map(|n| {
            s.state
                .db
                .user_by_username(&t, n)
                .unwrap()
                .map(|u| (format!("user:{}", u.id), (*n).to_owned()))
        })
        .collect();
    s.state
        .db
        .audit_events(&t, 0, 10_000)
        .unwrap()
        .into_iter()
        .filter(|e| e.action == action)
        .map(|e| {
            let known = users.iter().find(|(id, _)| *id == e.target);
            known.map_or(e.target.clone(), |(_, name)| name.clone())
        })
        .collect()
}

/// The retention policy applied on `day`: what it did.
fn pass(s: &TestServer, clock: &FixedClock, day: i64) -> Applied {
    clock.set(T0 + day * DAY);
    let t = s.state.db.tenant_by_slug("acme").unwrap().unwrap();
    let now = T0 + day * DAY;
    latchkey_services::retention::apply(&s.state.db, &s.state.keys, &*s.state.rng, &t, now).unwrap()
}

#[allow(clippy::too_many_lines)] // one timeline, day by day
async fn each_retention_job_runs_at_its_boundary(backend: Backend) {
    let clock = Arc::new(FixedClock::new(T0));
    let Some((s, _db)) = TestServer::start_on_clocked(backend, &[], clock.clone()) else {
        return;
    };
    setup(&s, "acme").await;
    let t = tenant(&s);
    update_policy(&s, "acme", |p| {
        p.retention.inactive_notify_days = Some(30);
        p.retention.inactive_disable_days = Some(60);
        p.retention.inactive_delete_days = Some(90);
        p.retention.consent_days = Some(10);
        p.retention.invitation_days = 5;
        p.retention.outbox_days = 3;
    });
    for (name, email) in [("bob", Some("bob@acme.test")), ("carol", None)] {
        let new = NewUser {
            username: name.into(),
            email: email.map(str::to_owned),
            ..NewUser::default()
        };
        s.state.db.create_user(&t, "test", &new).unwrap();
    }
    // alice signs in on day 0 and consents (offline_access asks even a first-party client).
    let c = register(&s, "acme", ClientType::Confidential, true, AccessTokenFormat::Jwt);
    code(&s, &mut Browser::default(), &c).await;
    assert!(
        s.state
            .db
            .consent(&t, &alice_id(&s), &c.client_id)
            .unwrap()
            .is_some()
    );
    // An invitation that expires on day 7, and a message delivered on day 0.
    let mail = |id: &str| NewMail {
        channel: Channel::Mail,
        id: id.into(),
        recipient: "x@acme.test".into(),
        subject: "s".into(),
        body_sealed: "sealed".into(),
    };
    let invite = NewInvitation {
        email: "dora@acme.test".into(),
        username: None,
        display_name: None,
        groups: Vec::new(),
        expires_at: T0 + 7 * DAY,
    };
    s.state
        .db
        .create_invitation(&t, "test", &invite, "hash-1", &mail("m-invite"))
        .unwrap();
    s.state.db.queue_mail(&t, &mail("m-0")).unwrap();
    s.state.db.mail_sent("m-0").unwrap();

    // Day 3: nothing is due yet.
    pass(&s, &clock, 2);
    assert!(events(&s, "user.inactivity_notice").is_empty());
    assert!(events(&s, "consent.expire").is_empty());
    // Day 4: the delivered message is past its 3 days; the invitation (day 7 + 5) is not.
    let done = pass(&s, &clock, 4);
    assert_eq!((done.messages_purged, done.invitations_purged), (1, 0));
    assert_eq!(s.state.db.list_invitations(&t, None).unwrap().len(), 1);
    // Day 11: the consent given on day 0 has lasted its 10 days.
    pass(&s, &clock, 9);
    assert!(events(&s, "consent.expire").is_empty(), "not a day early");
    pass(&s, &clock, 11);
    assert_eq!(events(&s, "consent.expire"), ["alice"]);
    assert!(
        s.state
            .db
            .consent(&t, &alice_id(&s), &c.client_id)
            .unwrap()
            .is_none()
    );
    // Day 13: the invitation expired on day 7 is past its 5 days.
    assert_eq!(pass(&s, &clock, 13).invitations_purged, 1);
    assert!(s.state.db.list_invitations(&t, None).unwrap().is_empty());

    // Day 29: no one is warned yet; day 31: everyone with an address is, once.
    pass(&s, &clock, 29);
    assert!(events(&s, "user.inactivity_notice").is_empty());
    assert_eq!(pass(&s, &clock, 31).inactive_notified, 2);
    assert_eq!(pass(&s, &clock, 32).inactive_notified, 0, "once");
    let mut warned = events(&s, "user.inactivity_notice");
    warned.sort();
    assert_eq!(warned, ["alice", "bob"], "carol has no address");

    // alice signs in on day 40: her count starts again.
    clock.set(T0 + 40 * DAY);
    code(&s, &mut Browser::default(), &c).await;
    // Day 59: nobody is disabled; day 61: bob and carol are, alice (21 days) is not.
    pass(&s, &clock, 59);
    assert!(events(&s, "user.disable").is_empty());
    pass(&s, &clock, 61);
    let mut disabled = events(&s, "user.disable");
    disabled.sort();
    assert_eq!(disabled, ["bob", "carol"]);
    assert_eq!(status(&s, "bob"), Some(UserStatus::Disabled));
    assert_eq!(status(&s, "alice"), Some(UserStatus::Active));
    // Day 71: alice, 31 days after her last sign-in, is warned a second time.
    pass(&s, &clock, 71);
    assert_eq!(
        events(&s, "user.inactivity_notice").last().map(String::as_str),
        Some("alice")
    );
    assert_eq!(events(&s, "user.inactivity_notice").len(), 3);
    // Day 89: nobody is deleted; day 91 (the scheduler's pass): bob and carol are, with the
    // reason; alice (51 days) stays.
    pass(&s, &clock, 89);
    assert!(status(&s, "bob").is_some());
    clock.set(T0 + 91 * DAY);
    latchkey_server::retention_pass(&s.state);
    assert_eq!((status(&s, "bob"), status(&s, "carol")), (None, None));
    assert_eq!(status(&s, "alice"), Some(UserStatus::Active));
    let deleted: Vec<_> = s
        .state
        .db
        .audit_events(&t, 0, 10_000)
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "user.delete")
        .map(|e| (e.actor, e.details["reason"].clone()))
        .collect();
    assert_eq!(deleted.len(), 2);
    assert!(
        deleted.iter().all(|(a, r)| a == "system" && r == "inactive"),
        "{deleted:?}"
    );
}

fn alice_id(s: &TestServer) -> latchkey_core::UserId {
    s.state
        .db
        .user_by_username(&tenant(s), "alice")
        .unwrap()
        .unwrap()
        .id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_retention_job_runs_at_its_boundary_sqlite_memory() {
    each_retention_job_runs_at_its_boundary(Backend::SqliteMemory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_retention_job_runs_at_its_boundary_postgres_redis() {
    each_retention_job_runs_at_its_boundary(Backend::PostgresRedis).await;
}
