//! The completion's decisions per method (allow, step-up, deny, factor due), on a real state:
//! SQLite in a temporary directory, the in-process session store and a fixed clock. The risk
//! score is given, so each decision is reached on purpose.

use super::*;
use crate::Config;
use latchkey_core::{FactorDue, FixedClock, MfaMode, Session, TenantPolicy};
use latchkey_risk::Assessment;
use latchkey_store::{AuditRepo, MfaRepo, NewTenant, NewUser, TenantRepo, UserRepo};
use std::sync::Arc;

const NOW: i64 = 1_900_000_000_000;
const NEXT: &str = "/t/acme/authorize/resume?interaction=abc";

struct Fixture {
    state: AppState,
    tenant: Tenant,
    user: User,
    /// Audit events written while setting up (tenant, user, factor).
    setup_events: usize,
    _dir: tempfile::TempDir,
}

async fn fixture(mfa: MfaMode, with_factor: bool) -> Fixture {
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = format!("sqlite://{}", dir.path().join("lk.db").display());
    let master = latchkey_keys::MasterKey::generate()
        .expect("master key")
        .to_base64();
    let env: Vec<(String, String)> = [
        ("LATCHKEY_DATABASE_URL", url.as_str()),
        ("LATCHKEY_SESSION_STORE", "memory"),
        ("LATCHKEY_MASTER_KEY", master.as_str()),
        ("LATCHKEY_PUBLIC_URL", "http://localhost:8080"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    let config = Config::from_sources(None, &env, false).expect("config");
    let state = AppState::open_with_clock(config, Arc::new(FixedClock::new(NOW)))
        .await
        .expect("state opens");
    let mut policy = TenantPolicy::default();
    policy.mfa.mode = mfa;
    policy.risk.enabled = true;
    let tenant = state
        .db
        .create_tenant(
            "test",
            &NewTenant {
                slug: "acme".into(),
                display_name: None,
                policy,
            },
        )
        .expect("tenant");
    let user = state
        .db
        .create_user(
            &tenant.id,
            "test",
            &NewUser {
                username: "alice".into(),
                ..NewUser::default()
            },
        )
        .expect("user");
    if with_factor {
        state
            .db
            .begin_totp(&tenant.id, &user.id, b"twenty-byte-seed-abc")
            .expect("totp");
        state
            .db
            .confirm_totp(&tenant.id, &user.id, &[])
            .expect("confirmed");
    }
    let setup_events = state
        .db
        .audit_events(&tenant.id, 0, 1000)
        .expect("audit log")
        .len();
    Fixture {
        state,
        tenant,
        user,
        setup_events,
        _dir: dir,
    }
}

fn scored(decision: Decision) -> Evaluation {
    Evaluation {
        assessment: Assessment {
            score: match decision {
                Decision::Allow => 5,
                Decision::StepUp => 55,
                Decision::Deny => 95,
            },
            reasons: Vec::new(),
        },
        decision,
        history: None,
    }
}

fn attempt(user: &User, method: Method) -> Attempt<'_> {
    let amr = match method {
        Method::Password => vec!["pwd".to_owned()],
        Method::Passkey => vec!["hwk".to_owned(), "user".to_owned(), "mfa".to_owned()],
        Method::Federated { .. } => vec!["ext".to_owned()],
    };
    Attempt {
        user,
        method,
        amr,
        next: NEXT.to_owned(),
        recent_failures: 0,
        password_expired: false,
        auth_time: None,
        not_after: None,
        details: Map::new(),
        also_audit: Vec::new(),
        federated: None,
    }
}

/// What a completion left behind: where it sent the browser, the stored session, whether the
/// device was remembered.
struct Seen {
    location: String,
    session: Session,
    remembered: bool,
}

async fn run(f: &Fixture, attempt: Attempt<'_>, decision: Decision) -> Option<Seen> {
    let req = actix_web::test::TestRequest::default().to_http_request();
    let done = finish(&f.state, &req, &f.tenant, attempt, scored(decision))
        .await
        .expect("completion runs");
    let Completion::Session { response, location } = done else {
        return None;
    };
    let cookie_name = session::cookie_name(&f.state, &f.tenant);
    let sid = response
        .cookies()
        .find(|c| c.name() == cookie_name)
        .map(|c| SessionId::from_cookie(c.value()))
        .expect("the response sets the session cookie");
    let stored = f
        .state
        .ephemeral
        .get_session(&f.tenant.id, &sid)
        .await
        .expect("session store answers")
        .expect("the session is stored");
    let remembered = response.cookies().any(|c| c.name().starts_with("lk-device-"));
    assert_eq!(
        response
            .headers()
            .get(actix_web::http::header::LOCATION)
            .map(|v| v.to_str().unwrap_or_default()),
        Some(location.as_str())
    );
    Some(Seen {
        location,
        session: stored,
        remembered,
    })
}

fn actions(f: &Fixture) -> Vec<String> {
    f.state
        .db
        .audit_events(&f.tenant.id, 0, 1000)
        .expect("audit log")
        .into_iter()
        .skip(f.setup_events)
        .map(|e| e.action)
        .collect()
}

async fn sessions_of(f: &Fixture) -> usize {
    f.state
        .ephemeral
        .list_user_sessions(&f.tenant.id, &f.user.id)
        .await
        .expect("sessions")
        .len()
}

// --- the per-method policy table -------------------------------------------------------------

#[test]
fn the_risk_policy_per_method() {
    use Decision::{Allow, Deny, StepUp};
    let federated = Method::Federated { mfa_done: false };
    for (method, decision, has_factor, applied) in [
        (Method::Password, Allow, false, Allow),
        (Method::Password, StepUp, true, StepUp),
        (Method::Password, StepUp, false, Deny),
        (Method::Password, Deny, true, Deny),
        (Method::Passkey, StepUp, false, Allow),
        (Method::Passkey, Deny, true, Deny),
        (federated, StepUp, false, Deny),
        (federated, StepUp, true, StepUp),
        (federated, Deny, false, Deny),
        (Method::Federated { mfa_done: true }, StepUp, false, Allow),
        (Method::Federated { mfa_done: true }, Deny, true, Deny),
    ] {
        assert_eq!(
            method.apply(decision, has_factor),
            applied,
            "{method:?} {decision:?} {has_factor}"
        );
    }
    assert!(Method::Password.owes_factor_check());
    assert!(!Method::Passkey.owes_factor_check());
    assert!(federated.owes_factor_check());
    assert!(!Method::Federated { mfa_done: true }.owes_factor_check());
}

// --- password ---------------------------------------------------------------------------------

#[actix_web::test]
async fn password_allowed_starts_a_full_session_and_remembers_the_device() {
    let f = fixture(MfaMode::Optional, false).await;
    let seen = run(&f, attempt(&f.user, Method::Password), Decision::Allow)
        .await
        .expect("signed in");
    assert_eq!(seen.location, NEXT);
    assert_eq!(seen.session.factor_due, None);
    assert_eq!(seen.session.amr, vec!["pwd".to_owned()]);
    assert_eq!(seen.session.auth_time, NOW);
    assert!(seen.remembered, "a completed sign-in remembers the device");
    assert_eq!(actions(&f), vec!["login.success".to_owned()]);
}

#[actix_web::test]
async fn password_step_up_with_a_factor_owes_its_verification() {
    let f = fixture(MfaMode::Optional, true).await;
    let seen = run(&f, attempt(&f.user, Method::Password), Decision::StepUp)
        .await
        .expect("half signed in");
    assert!(
        seen.location
            .starts_with("/t/acme/login/second-factor?return_to="),
        "{}",
        seen.location
    );
    assert_eq!(seen.session.factor_due, Some(FactorDue::Verify));
    assert!(!seen.remembered, "not remembered before the factor is done");
    assert!(actions(&f).contains(&"risk.step_up".to_owned()));
}

#[actix_web::test]
async fn password_step_up_without_a_factor_is_refused() {
    let f = fixture(MfaMode::Optional, false).await;
    assert!(
        run(&f, attempt(&f.user, Method::Password), Decision::StepUp)
            .await
            .is_none()
    );
    assert_eq!(sessions_of(&f).await, 0, "no session was started");
    assert_eq!(actions(&f), vec!["risk.deny".to_owned()]);
}

#[actix_web::test]
async fn password_denied_is_refused() {
    let f = fixture(MfaMode::Optional, true).await;
    assert!(
        run(&f, attempt(&f.user, Method::Password), Decision::Deny)
            .await
            .is_none()
    );
    assert_eq!(sessions_of(&f).await, 0);
    assert!(!actions(&f).contains(&"login.success".to_owned()));
}

#[actix_web::test]
async fn password_under_a_required_policy_owes_an_enrolment() {
    let f = fixture(MfaMode::Required, false).await;
    let seen = run(&f, attempt(&f.user, Method::Password), Decision::Allow)
        .await
        .expect("half signed in");
    assert!(
        seen.location
            .starts_with("/t/acme/account/authenticator?return_to="),
        "{}",
        seen.location
    );
    assert_eq!(seen.session.factor_due, Some(FactorDue::Enrol));
    assert!(!seen.remembered);
}

#[actix_web::test]
async fn an_expired_password_leads_through_the_change_first() {
    let f = fixture(MfaMode::Optional, false).await;
    let mut expired = attempt(&f.user, Method::Password);
    expired.password_expired = true;
    let seen = run(&f, expired, Decision::Allow).await.expect("signed in");
    assert!(
        seen.location
            .starts_with("/t/acme/account?return_to=%2Ft%2Facme%2Fauthorize"),
        "{}",
        seen.location
    );
    assert!(seen.session.must_change_password);
}

// --- passkey ----------------------------------------------------------------------------------

#[actix_web::test]
async fn passkey_satisfies_a_step_up_and_the_mfa_policy() {
    let f = fixture(MfaMode::Required, false).await;
    let seen = run(&f, attempt(&f.user, Method::Passkey), Decision::StepUp)
        .await
        .expect("signed in");
    assert_eq!(seen.location, NEXT);
    assert_eq!(seen.session.factor_due, None);
    assert!(seen.session.amr.contains(&"mfa".to_owned()));
    assert!(seen.remembered);
}

#[actix_web::test]
async fn passkey_denied_is_refused() {
    let f = fixture(MfaMode::Optional, false).await;
    assert!(
        run(&f, attempt(&f.user, Method::Passkey), Decision::Deny)
            .await
            .is_none()
    );
    assert_eq!(sessions_of(&f).await, 0);
}

#[actix_web::test]
async fn passkey_allowed_with_a_factor_owes_nothing_more() {
    let f = fixture(MfaMode::Optional, true).await;
    let seen = run(&f, attempt(&f.user, Method::Passkey), Decision::Allow)
        .await
        .expect("signed in");
    assert_eq!(seen.session.factor_due, None);
}

// --- federated (SAML) -------------------------------------------------------------------------

#[actix_web::test]
async fn federated_without_the_idps_mfa_owes_the_tenants_factor() {
    let f = fixture(MfaMode::Required, false).await;
    let seen = run(
        &f,
        attempt(&f.user, Method::Federated { mfa_done: false }),
        Decision::Allow,
    )
    .await
    .expect("half signed in");
    assert_eq!(seen.session.factor_due, Some(FactorDue::Enrol));
}

#[actix_web::test]
async fn federated_with_the_idps_mfa_owes_no_factor() {
    let f = fixture(MfaMode::Required, true).await;
    let seen = run(
        &f,
        attempt(&f.user, Method::Federated { mfa_done: true }),
        Decision::StepUp,
    )
    .await
    .expect("signed in");
    assert_eq!(seen.location, NEXT);
    assert_eq!(seen.session.factor_due, None);
}

/// Issue 19 item 8: a risk step-up after an IdP that did no (trusted) MFA is the user's second
/// factor, as after a password; it was mapped to allow.
#[actix_web::test]
async fn federated_step_up_without_the_idps_mfa_owes_the_users_factor() {
    let f = fixture(MfaMode::Optional, true).await;
    let seen = run(
        &f,
        attempt(&f.user, Method::Federated { mfa_done: false }),
        Decision::StepUp,
    )
    .await
    .expect("half signed in");
    assert_eq!(seen.session.factor_due, Some(FactorDue::Verify));
    assert!(!seen.remembered);
}

#[actix_web::test]
async fn federated_step_up_without_any_factor_is_refused() {
    let f = fixture(MfaMode::Optional, false).await;
    let refused = run(
        &f,
        attempt(&f.user, Method::Federated { mfa_done: false }),
        Decision::StepUp,
    )
    .await;
    assert!(refused.is_none());
    assert_eq!(sessions_of(&f).await, 0);
    assert!(actions(&f).contains(&"risk.deny".to_owned()));
}

#[actix_web::test]
async fn federated_denied_is_refused() {
    let f = fixture(MfaMode::Optional, false).await;
    let refused = run(
        &f,
        attempt(&f.user, Method::Federated { mfa_done: true }),
        Decision::Deny,
    )
    .await;
    assert!(refused.is_none());
    assert_eq!(sessions_of(&f).await, 0);
}

#[actix_web::test]
async fn federated_times_bound_the_session_and_the_protocol_event_is_audited() {
    let f = fixture(MfaMode::Optional, false).await;
    let mut federated = attempt(&f.user, Method::Federated { mfa_done: false });
    federated.auth_time = Some(NOW - 30_000);
    federated.not_after = Some(NOW + 600_000);
    federated
        .also_audit
        .push(("saml:corp".to_owned(), "saml.acs", "saml:c1".to_owned()));
    let seen = run(&f, federated, Decision::Allow).await.expect("signed in");
    assert_eq!(seen.session.auth_time, NOW - 30_000);
    assert_eq!(seen.session.absolute_deadline, NOW + 600_000);
    assert!(seen.session.idle_deadline <= NOW + 600_000);
    assert_eq!(
        actions(&f),
        vec!["saml.acs".to_owned(), "login.success".to_owned()]
    );
}
