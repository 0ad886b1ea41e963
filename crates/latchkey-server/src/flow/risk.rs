//! Login risk in the sign-in path: gathers the signals `latchkey-risk` scores (the user's sealed
//! history, a long-lived device cookie, GeoIP, failures, credential-stuffing velocity, the
//! deny-list), records elevated decisions (audit, metrics, webhook) and, once a sign-in is
//! complete, remembers it. The person signing in only ever sees the decision.

use crate::state::AppState;
use crate::web::blocking::Blocking;
use crate::web::cookies::{cookie, host_cookie_name};
use crate::web::errors::AppError;
use actix_web::HttpRequest;
use actix_web::cookie::Cookie;
use latchkey_core::{NewAuditEvent, Outcome, Tenant, User, UserId};
use latchkey_risk::{Assessment, Attempt, Bands, Decision, History, Signals};
use latchkey_store::{Channel, RiskRepo};
use serde_json::json;
use std::net::IpAddr;
use std::time::Duration;

/// Distinct accounts tried from one network are counted over this window.
pub const STUFFING_WINDOW: Duration = Duration::from_secs(10 * 60);
/// Browsers cap cookie lifetimes at 400 days.
const DEVICE_COOKIE_SECS: i64 = 400 * 86_400;

fn device_cookie_name(state: &AppState, tenant: &Tenant) -> String {
    host_cookie_name(state, &format!("lk-device-{}", tenant.slug))
}

/// The stored form of a device cookie: a digest bound to the tenant.
fn device_digest(tenant: &Tenant, cookie: &str) -> String {
    latchkey_core::sha256_hex(format!("{}:{cookie}", tenant.id).as_bytes())
}

fn client_ip(req: &HttpRequest) -> IpAddr {
    crate::web::net::client_addr(req).unwrap_or(IpAddr::from([0, 0, 0, 0]))
}

/// This request as the history sees it.
fn attempt(state: &AppState, req: &HttpRequest, tenant: &Tenant) -> Attempt {
    let ip = client_ip(req);
    let (asn, location) = state.risk.locate(ip);
    Attempt {
        at: state.clock.now_millis(),
        device: req
            .cookie(&device_cookie_name(state, tenant))
            .map(|c| device_digest(tenant, c.value())),
        network: latchkey_risk::network_of(ip),
        asn,
        location,
    }
}

async fn load_history(state: &AppState, tenant: &Tenant, user: &UserId) -> Result<History, AppError> {
    let (tid, uid) = (tenant.id.clone(), user.clone());
    // An unreadable history (a key that does not open it) is a fresh start, not a locked-out
    // user; a store that is down is still an outage.
    let opened = state
        .store(move |db| match db.risk_history(&tid, &uid) {
            Err(latchkey_store::StoreError::Sealed(e)) => Ok(Err(e)),
            other => other.map(Ok),
        })
        .await?;
    let parsed = match opened {
        Ok(None) => return Ok(History::default()),
        Ok(Some(plain)) => serde_json::from_slice(&plain).map_err(|e| e.to_string()),
        Err(e) => Err(e),
    };
    match parsed {
        Ok(h) => Ok(h),
        Err(e) => {
            tracing::warn!(error = %e, "risk history unreadable; starting afresh");
            Ok(History::default())
        }
    }
}

/// Counts a failed attempt toward the distinct accounts that failed from its network (unknown
/// names and wrong passwords alike). Many users signing in successfully behind one office NAT
/// do not count; a list of stolen passwords tried against many accounts does.
pub(crate) async fn note_failure(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    account: &str,
) -> Result<(), AppError> {
    let network = latchkey_risk::network_of(client_ip(req));
    let digest = &latchkey_core::sha256_hex(account.trim().to_lowercase().as_bytes())[..32];
    let first = state
        .ephemeral
        .put_once(
            &tenant.id,
            &format!("risk-acct:{network}:{digest}"),
            b"1",
            STUFFING_WINDOW,
        )
        .await?;
    if first {
        state
            .ephemeral
            .hit(&tenant.id, &format!("risk-net:{network}"), STUFFING_WINDOW)
            .await?;
    }
    Ok(())
}

/// Distinct accounts that failed from this request's network within the window.
pub(crate) async fn failed_accounts(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
) -> Result<u32, AppError> {
    let network = latchkey_risk::network_of(client_ip(req));
    let n = state
        .ephemeral
        .count(&tenant.id, &format!("risk-net:{network}"))
        .await?;
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

/// A scored attempt.
pub(crate) struct Evaluation {
    pub assessment: Assessment,
    pub decision: Decision,
    /// The user's history as loaded for scoring, for `remember` when the sign-in completes in
    /// this same request (`None` when risk is off).
    pub history: Option<History>,
}

/// Scores a sign-in of `user` whose first factor was right.
pub(crate) async fn evaluate(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    user: &UserId,
    recent_failures: u32,
    accounts_from_network: u32,
) -> Result<Evaluation, AppError> {
    let policy = &tenant.policy.risk;
    if !policy.enabled {
        return Ok(Evaluation {
            assessment: Assessment {
                score: 0,
                reasons: Vec::new(),
            },
            decision: Decision::Allow,
            history: None,
        });
    }
    let a = attempt(state, req, tenant);
    let history = load_history(state, tenant, user).await?;
    let signals = Signals {
        recent_failures,
        accounts_from_network,
        denylisted: state.risk.denylisted(client_ip(req)),
        ..history.signals(&a)
    };
    let assessment = latchkey_risk::assess(&signals, &state.risk.weights);
    let bands = Bands {
        step_up: policy.step_up,
        deny: policy.deny,
    };
    let decision = latchkey_risk::decide(assessment.score, &bands);
    Ok(Evaluation {
        assessment,
        decision,
        history: Some(history),
    })
}

/// Records an elevated decision: an audit event with the reasons (for operators only), the
/// metric, and the tenant's webhook. `applied` is what the sign-in did about it.
pub(crate) async fn alert(
    state: &AppState,
    req: &HttpRequest,
    t: &Tenant,
    user: &UserId,
    e: &Evaluation,
    applied: Decision,
) -> Result<(), AppError> {
    if applied == Decision::Allow {
        return Ok(());
    }
    let name = match applied {
        Decision::Deny => "deny",
        _ => "step_up",
    };
    state.metrics.risk(name);
    let ip = client_ip(req).to_string();
    let details = json!({
        "score": e.assessment.score,
        "reasons": e.assessment.reasons,
        "decision": name,
        "ip": ip,
    });
    let who = format!("user:{user}");
    let event = NewAuditEvent {
        actor: "system".into(),
        action: format!("risk.{name}"),
        target: who,
        outcome: if applied == Decision::Deny {
            Outcome::Denied
        } else {
            Outcome::Success
        },
        details,
    };
    crate::flow::audit::audit(state, t, event).await?;
    if let Some(url) = &t.policy.risk.webhook_url {
        let body = json!({
            "event": format!("risk.{name}"),
            "tenant": t.slug,
            "user_id": user,
            "at": state.clock.now_millis(),
            "score": e.assessment.score,
            "reasons": e.assessment.reasons,
            "ip": ip,
        })
        .to_string();
        crate::flow::notify::queue(state, Channel::Webhook, &t.id, url, &format!("risk.{name}"), body)
            .await?;
    }
    Ok(())
}

/// A completed sign-in (every factor done): adds it to the user's history, gives the browser a
/// device cookie if it has none, and mails the user about a new device when the tenant asks.
/// Returns the cookie to set. `known` is the history `evaluate` loaded in this request, if any.
pub(crate) async fn remember(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    user: &UserId,
    known: Option<History>,
) -> Result<Option<Cookie<'static>>, AppError> {
    if !tenant.policy.risk.enabled {
        return Ok(None);
    }
    let mut a = attempt(state, req, tenant);
    let mut new_cookie = None;
    if a.device.is_none() {
        let value = latchkey_core::random_token(&*state.rng, 32);
        a.device = Some(device_digest(tenant, &value));
        let mut c = cookie(state, device_cookie_name(state, tenant), value);
        c.set_max_age(actix_web::cookie::time::Duration::seconds(DEVICE_COOKIE_SECS));
        new_cookie = Some(c);
    }
    let mut history = match known {
        Some(h) => h,
        None => load_history(state, tenant, user).await?,
    };
    let new_device = history.sign_ins() > 0 && history.signals(&a).known_device == Some(false);
    history.record(&a);
    let plain = serde_json::to_vec(&history).map_err(|e| AppError::internal("risk history", e))?;
    let (tid, uid) = (tenant.id.clone(), user.clone());
    state
        .store(move |db| db.save_risk_history(&tid, &uid, &plain))
        .await?;
    if new_device && tenant.policy.risk.notify_new_device {
        notify_new_device(state, req, tenant, user).await?;
    }
    Ok(new_cookie)
}

async fn notify_new_device(
    state: &AppState,
    req: &HttpRequest,
    t: &Tenant,
    user: &UserId,
) -> Result<(), AppError> {
    let (tid, uid) = (t.id.clone(), user.clone());
    let Some(u): Option<User> = state
        .store(move |db| latchkey_store::UserRepo::user(db, &tid, &uid))
        .await?
    else {
        return Ok(());
    };
    let Some(to) = u.email else {
        return Ok(());
    };
    let when = time::OffsetDateTime::from_unix_timestamp(state.clock.now_millis() / 1000)
        .ok()
        .and_then(|d| d.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default();
    let body = format!(
        "Hello {name},\n\nYour {tenant} account was just signed in to from a device it had not seen before \
         ({when}, network {network}).\n\nIf this was you, there is nothing to do. If it was not, change your \
         password at {public}/t/{slug}/account and tell your administrator.\n",
        name = u.display_name.as_deref().unwrap_or(&u.username),
        tenant = t.display_name,
        network = latchkey_risk::network_of(client_ip(req)),
        public = state.config.public_url,
        slug = t.slug,
    );
    let subject = format!("New sign-in to your {} account", t.display_name);
    crate::flow::notify::queue(state, Channel::Mail, &t.id, &to, &subject, body).await
}
