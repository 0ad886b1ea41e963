//! Sign-in completion: the one place every authentication method ends once the person proved who
//! they are (a password, a passkey, a federated assertion). It applies the risk decision by the
//! method's policy, decides whether a second factor is still owed, starts the session (a new id),
//! audits and remembers the device. The methods differ only in their `Method` and the extras they
//! hand over; what a denial looks like to the person stays each method's own.

use crate::flow::audit::audit;
use crate::flow::factor::{has_factor, require_if_due};
use crate::flow::risk::{self, Evaluation};
use crate::flow::session::{self, redirect_into_session};
use crate::state::AppState;
use crate::web::blocking::Blocking;
use crate::web::errors::AppError;
use crate::web::respond::{add_cookie, client_ip};
use actix_web::{HttpRequest, HttpResponse};
use latchkey_core::{NewAuditEvent, Tenant, User};
use latchkey_risk::Decision;
use latchkey_session::SessionId;
use serde_json::{Map, Value, json};

/// How the person authenticated, as far as the risk and second-factor policies care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    /// Something they know: a step-up means their second factor, and is refused when they have
    /// none to step up to.
    Password,
    /// A passkey with user verification is both factors: a step-up is already satisfied.
    Passkey,
    /// An external IdP (SAML). `mfa_done`: the connection trusts the IdP's MFA and it was done,
    /// so the tenant's second-factor policy is satisfied.
    Federated { mfa_done: bool },
}

impl Method {
    /// The per-method risk policy: what the sign-in does about the engine's `decision`. A
    /// step-up after one factor (a password, or an IdP that did no MFA we trust) means the
    /// user's second factor, and is refused when they have none to step up to; a passkey, or
    /// the IdP's trusted MFA, already proved two.
    pub(crate) fn apply(self, decision: Decision, has_factor: bool) -> Decision {
        match (self, decision) {
            (_, Decision::Deny) => Decision::Deny,
            (Self::Passkey | Self::Federated { mfa_done: true }, _) => Decision::Allow,
            (Self::Password | Self::Federated { mfa_done: false }, Decision::StepUp) if !has_factor => {
                Decision::Deny
            }
            (Self::Password | Self::Federated { mfa_done: false }, d) => d,
        }
    }

    /// Whether the tenant's second-factor policy still applies after this method.
    pub(crate) fn owes_factor_check(self) -> bool {
        match self {
            Self::Password => true,
            Self::Passkey => false,
            Self::Federated { mfa_done } => !mfa_done,
        }
    }
}

/// A proved identity, ready to become a session.
pub(crate) struct Attempt<'a> {
    pub user: &'a User,
    pub method: Method,
    /// RFC 8176 methods the proof carries (`pwd`, `hwk`, `ext`, …).
    pub amr: Vec<String>,
    /// Where the browser goes once signed in (a pending interaction or a page of this tenant).
    pub next: String,
    /// Recent failures of this account, for the risk score.
    pub recent_failures: u32,
    /// The tenant's password expiry has passed: the session must change it first.
    pub password_expired: bool,
    /// When the person authenticated, if earlier than now (an IdP's AuthnInstant).
    pub auth_time: Option<i64>,
    /// The latest the session may last (an IdP's SessionNotOnOrAfter).
    pub not_after: Option<i64>,
    /// Method-specific audit details, merged into the common ones.
    pub details: Map<String, Value>,
    /// Audit events the method writes with the same details before `login.success`:
    /// (actor, action, target).
    pub also_audit: Vec<(String, &'static str, String)>,
    /// The upstream sign-in, kept in the session for Single Logout.
    pub federated: Option<latchkey_core::FederatedSession>,
}

/// How a completed sign-in continues.
pub(crate) enum Completion {
    /// A new session: `response` redirects to `location` (the next page, or the second-factor
    /// page when one is owed) and carries the session cookie.
    Session {
        response: HttpResponse,
        location: String,
    },
    /// The risk engine refused it; nothing was started.
    Refused,
}

/// Scores the attempt, then `finish`es it.
pub(crate) async fn complete(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    attempt: Attempt<'_>,
) -> Result<Completion, AppError> {
    let accounts = risk::failed_accounts(state, req, tenant).await?;
    let evaluation = risk::evaluate(
        state,
        req,
        tenant,
        &attempt.user.id,
        attempt.recent_failures,
        accounts,
    )
    .await?;
    finish(state, req, tenant, attempt, evaluation).await
}

/// Applies a scored attempt: the method's risk policy, the second factor, the session, the audit
/// and the device. Split from `complete` so the decisions can be tested with a given score.
pub(crate) async fn finish(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    mut attempt: Attempt<'_>,
    evaluation: Evaluation,
) -> Result<Completion, AppError> {
    let user = attempt.user;
    let with_factor = match evaluation.decision {
        Decision::StepUp => has_factor(state, tenant, &user.id).await?,
        _ => false,
    };
    let applied = attempt.method.apply(evaluation.decision, with_factor);
    risk::alert(state, req, tenant, &user.id, &evaluation, applied).await?;
    if applied == Decision::Deny {
        return Ok(Completion::Refused);
    }
    let previous = req
        .cookie(&session::cookie_name(state, tenant))
        .map(|c| SessionId::from_cookie(c.value()));
    let (id, mut started) = session::start(
        state,
        req,
        tenant,
        &user.id,
        attempt.amr.clone(),
        previous.as_ref(),
    )
    .await?;
    let mut changed = adjust_times(&mut started, attempt.auth_time, attempt.not_after);
    if let Some(f) = attempt.federated.take() {
        started.federated = Some(f);
        changed = true;
    }
    let mut next = std::mem::take(&mut attempt.next);
    if attempt.password_expired {
        // The way back to `next` leads through the password change.
        started.must_change_password = true;
        changed = true;
        next = crate::web::urls::change_password_then(&tenant.slug, &next);
    }
    // Owing a factor saves the session with the mark (and the changes above).
    let factor_page = if attempt.method.owes_factor_check() {
        require_if_due(state, tenant, user, &id, &mut started, &next).await?
    } else {
        None
    };
    if changed && factor_page.is_none() {
        session::save(state, tenant, &id, &started).await?;
    }
    audit_success(
        state,
        req,
        tenant,
        &attempt,
        &started,
        (evaluation.assessment.score, applied),
    )
    .await?;
    let location = factor_page.unwrap_or(next);
    let mut response = redirect_into_session(state, tenant, &location, &id)?;
    if started.factor_due.is_none() {
        // Signed in: this is now a known device, network and place for the user.
        let device = risk::remember(state, req, tenant, &user.id, evaluation.history).await?;
        add_cookie(&mut response, device)?;
    }
    Ok(Completion::Session { response, location })
}

/// Moves `auth_time` back to when the person authenticated and the absolute deadline forward to
/// the IdP's limit; true when something changed.
fn adjust_times(
    session: &mut latchkey_core::Session,
    auth_time: Option<i64>,
    not_after: Option<i64>,
) -> bool {
    let mut changed = false;
    if let Some(at) = auth_time.filter(|at| *at < session.auth_time) {
        session.auth_time = at;
        changed = true;
    }
    if let Some(until) = not_after.filter(|u| *u < session.absolute_deadline) {
        session.absolute_deadline = until;
        session.idle_deadline = session.idle_deadline.min(until);
        changed = true;
    }
    changed
}

async fn audit_success(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    attempt: &Attempt<'_>,
    started: &latchkey_core::Session,
    (score, decision): (u8, Decision),
) -> Result<(), AppError> {
    // What the person's own activity list shows of this sign-in (privacy::activity): the
    // browser, the place and the decision, besides the address.
    let place = crate::web::net::client_addr(req).and_then(|ip| state.risk.place(ip));
    let mut details = json!({
        "amr": attempt.amr,
        "ip": client_ip(req),
        "user_agent": started.user_agent,
        "place": place,
        "second_factor_due": started.factor_due,
        "risk_score": score,
        "risk_decision": decision,
    });
    if let Some(map) = details.as_object_mut() {
        map.extend(attempt.details.clone());
    }
    for (actor, action, target) in &attempt.also_audit {
        audit(
            state,
            tenant,
            NewAuditEvent::success(actor, action, target.clone(), details.clone()),
        )
        .await?;
    }
    let who = format!("user:{}", attempt.user.id);
    audit(
        state,
        tenant,
        NewAuditEvent::success(&who, "login.success", who.clone(), details),
    )
    .await?;
    // When the person last signed in, for the retention policy's inactive accounts.
    let (tid, uid, now) = (
        tenant.id.clone(),
        attempt.user.id.clone(),
        state.clock.now_millis(),
    );
    state
        .store(move |db| latchkey_store::RetentionRepo::record_sign_in(db, &tid, &uid, now))
        .await
}

#[cfg(test)]
mod tests;
