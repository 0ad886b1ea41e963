//! The redirect URI: takes the pending request `state` names (once, from the browser that
//! started it), checks the response's `iss` (RFC 9207), redeems the code with the PKCE verifier
//! and the connection's client authentication, verifies the ID token (re-reading the JWK Set
//! once for a key it does not hold), reads the user endpoint when asked, and signs the person in
//! through the shared account rules and sign-in completion. Every refusal is audited
//! (`federation.callback`, with a reason) while the address is under its cap, and changes
//! nothing.

use super::{Pending, binding_cookie_name, named, pending_key, redirect_uri};
use crate::flow::complete::{Attempt, Completion, Method, complete};
use crate::flow::federated::{AccountError, Asserted, Source, account, sync};
use crate::flow::realm::RealmKind;
use crate::flow::throttle::RefusalCap;
use crate::state::AppState;
use crate::web::blocking::Blocking;
use crate::web::errors::AppError;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_core::{Discovered, NewAuditEvent, OidcConnection, Outcome, Tenant, UpstreamKind, UserStatus};
use latchkey_federation::{FederationError, Upstream};
use latchkey_services::ServiceError;
use latchkey_services::federation::{self as upstream, Opened};
use latchkey_store::{AttributeRepo, UpstreamRepo};
use serde_json::json;
use std::time::Duration;

/// Clock difference tolerated between the upstream and us.
const SKEW_MS: i64 = 60_000;
/// A JWK Set is re-read for an unknown key at most this often per connection.
const JWKS_REFETCH: Duration = Duration::from_secs(60);

/// Why a callback was refused.
#[derive(Debug)]
enum Refusal {
    /// The upstream's document, token or answer failed a check.
    Upstream(FederationError),
    /// The upstream answered with an error (`access_denied`, …).
    Denied(String),
    /// No pending request for this `state` from this browser (unknown, expired, used, forged).
    State,
    WrongConnection,
    /// The callback carried neither a code nor an error.
    BadResponse,
    /// Discovery has not succeeded yet.
    NotReady,
    /// The upstream could not be reached (what the tenant may read; the cause goes to the log).
    Unreachable(String),
    Account(AccountError),
    Disabled,
    Risk,
    /// `prompt=login` was sent and the upstream's `auth_time` is older than the request.
    StaleAuthn,
    Internal(AppError),
}

impl From<AppError> for Refusal {
    fn from(e: AppError) -> Self {
        Self::Internal(e)
    }
}

impl From<latchkey_session::SessionError> for Refusal {
    fn from(e: latchkey_session::SessionError) -> Self {
        Self::Internal(e.into())
    }
}

impl From<FederationError> for Refusal {
    fn from(e: FederationError) -> Self {
        Self::Upstream(e)
    }
}

impl From<ServiceError> for Refusal {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Federation(f) => Self::Upstream(f),
            ServiceError::Store(s) => Self::Internal(s.into()),
            other => {
                // The audit event is the tenant's to read: it says what the tenant could learn
                // from DNS, never what the network answered (the log has that).
                tracing::warn!(error = %other, "an upstream provider could not be reached");
                Self::Unreachable(
                    latchkey_services::outbound::tenant_view(&other)
                        .unwrap_or_else(|| "could not be reached".into()),
                )
            }
        }
    }
}

impl From<AccountError> for Refusal {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::Internal(e) => Self::Internal(e),
            other => Self::Account(other),
        }
    }
}

impl Refusal {
    fn reason(&self) -> &'static str {
        match self {
            Self::Upstream(e) => e.reason(),
            Self::Denied(_) => "denied",
            Self::State => "state",
            Self::WrongConnection => "wrong_connection",
            Self::BadResponse => "bad_response",
            Self::NotReady => "not_ready",
            Self::Unreachable(_) => "unreachable",
            Self::Account(AccountError::NoAccount) => "no_account",
            Self::Account(AccountError::EmailConflict) => "email_conflict",
            Self::Account(AccountError::ForeignDomain { .. }) => "foreign_domain",
            Self::Account(AccountError::Internal(_)) | Self::Internal(_) => "internal",
            Self::Disabled => "disabled",
            Self::Risk => "risk",
            Self::StaleAuthn => "stale_authn",
        }
    }

    /// For the audit log and the operator's log, bounded (the upstream's words are untrusted).
    fn detail(&self) -> String {
        let text = match self {
            Self::Upstream(e) => e.to_string(),
            Self::Denied(code) => format!("the provider answered {code:?}"),
            Self::Unreachable(why) => why.clone(),
            Self::Account(AccountError::ForeignDomain { domain, claimed_by }) => {
                format!("the email domain {domain:?} is claimed by connection {claimed_by:?}")
            }
            other => other.reason().replace('_', " "),
        };
        text.chars().take(300).collect()
    }

    /// What the person reads: never which check failed, except where they can act on it.
    fn page(&self, c: &OidcConnection) -> (StatusCode, String) {
        let name = &c.display_name;
        let generic = format!(
            "Signing in with {name} did not succeed. Go back to the application and try again; if it keeps failing, contact your administrator."
        );
        match self {
            Self::State => (
                StatusCode::FORBIDDEN,
                "This sign-in was started in another browser, was already used or has expired. Go back to the application and start again.".into(),
            ),
            Self::Denied(_) => (StatusCode::FORBIDDEN, format!("Signing in with {name} was cancelled or refused.")),
            Self::Account(AccountError::NoAccount) => (
                StatusCode::FORBIDDEN,
                format!("There is no account here for your {name} sign-in. Ask your administrator for access."),
            ),
            Self::Account(AccountError::EmailConflict) => (
                StatusCode::CONFLICT,
                format!("An account with your email address exists here already. Sign in as before, or ask your administrator to link it to {name}."),
            ),
            Self::Account(AccountError::ForeignDomain { domain, .. }) => (
                StatusCode::FORBIDDEN,
                format!("Your {name} sign-in gives an address at {domain}, and people of {domain} sign in another way here. Use your {domain} sign-in, or ask your administrator."),
            ),
            Self::NotReady | Self::Unreachable(_) => (
                StatusCode::BAD_GATEWAY,
                format!("{name} could not be reached. Try again in a moment."),
            ),
            Self::Disabled | Self::Risk => (StatusCode::FORBIDDEN, generic),
            _ => (StatusCode::BAD_REQUEST, generic),
        }
    }
}

/// The redirect URI's handler.
pub(super) async fn callback(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let (t, c) = named(&state, path).await?;
    let refusals = RefusalCap::of(&req, "federation");
    if let Some(res) = throttled(&state, &t, &refusals).await? {
        return Ok(res);
    }
    // Our `state` values are 43 base64url characters; anything else names no request.
    let state_param = crate::web::respond::query_param(&req, "state").filter(|s| {
        s.len() == 43
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    });
    let mut res = match consume(&state, &req, &t, &c, state_param.as_deref()).await {
        Ok(res) => res,
        Err(Refusal::Internal(e)) => return Err(e),
        Err(refusal) => refused(&state, &req, &t, &c, &refusals, &refusal).await?,
    };
    if let Some(s) = state_param {
        res.add_cookie(&crate::web::cookies::removal(
            &state,
            binding_cookie_name(&state, &t, &s),
        ))
        .map_err(|e| AppError::internal("cookie", e))?;
    }
    Ok(res)
}

/// Takes the pending request, gets and checks the person upstream, and signs them in; `Err`
/// says why not, having changed nothing.
async fn consume(
    state: &AppState,
    req: &HttpRequest,
    t: &Tenant,
    c: &OidcConnection,
    state_param: Option<&str>,
) -> Result<HttpResponse, Refusal> {
    let pending = take_pending(state, req, t, state_param.ok_or(Refusal::State)?).await?;
    if pending.connection_id != c.id {
        return Err(Refusal::WrongConnection);
    }
    if let Some(error) = crate::web::respond::query_param(req, "error") {
        return Err(Refusal::Denied(
            error.chars().filter(char::is_ascii_graphic).take(64).collect(),
        ));
    }
    let code = crate::web::respond::query_param(req, "code")
        .filter(|code| !code.is_empty() && code.len() <= 4096)
        .ok_or(Refusal::BadResponse)?;
    let iss = crate::web::respond::query_param(req, "iss");
    let person = person(state, t, c, &pending, &code, iss.as_deref()).await?;
    // A fresh sign-in was asked for: the provider must say when the person authenticated, and
    // it must be since the request (an OAuth 2.0 provider can say neither).
    if pending.fresh
        && person
            .auth_time
            .is_none_or(|at| at < pending.started_at - SKEW_MS)
    {
        return Err(Refusal::StaleAuthn);
    }
    sign_in(state, req, t, c, &person, pending.resume).await
}

/// The pending request `state_param` names, taken for good, if this browser started it.
async fn take_pending(
    state: &AppState,
    req: &HttpRequest,
    t: &Tenant,
    state_param: &str,
) -> Result<Pending, Refusal> {
    let key = pending_key(state_param);
    let Some(bytes) = state.ephemeral.peek(&t.id, &key).await? else {
        return Err(Refusal::State);
    };
    let pending: Pending = serde_json::from_slice(&bytes).map_err(|_| Refusal::State)?;
    let presented = req
        .cookie(&binding_cookie_name(state, t, state_param))
        .map(|c| latchkey_core::sha256_hex(c.value().as_bytes()))
        .unwrap_or_default();
    if !bool::from(subtle::ConstantTimeEq::ct_eq(
        presented.as_bytes(),
        pending.binding.as_bytes(),
    )) {
        return Err(Refusal::State);
    }
    match state.ephemeral.take(&t.id, &key).await? {
        Some(_) if state.clock.now_millis() < pending.expires_at => Ok(pending),
        // Taken by a concurrent request, or expired.
        _ => Err(Refusal::State),
    }
}

/// Redeems the code and reads who signed in: the verified ID token (OIDC) and the user
/// endpoint (OAuth 2.0, or when the connection asks for it).
async fn person(
    state: &AppState,
    t: &Tenant,
    c: &OidcConnection,
    pending: &Pending,
    code: &str,
    iss: Option<&str>,
) -> Result<Upstream, Refusal> {
    let endpoints = c.endpoints().ok_or(Refusal::NotReady)?;
    if c.kind == UpstreamKind::Oidc {
        let d = c.discovered.as_ref().ok_or(Refusal::NotReady)?;
        latchkey_federation::check_response_issuer(c, d, iss)?;
    }
    let opened = upstream::open_credential(&state.keys, t, c)
        .map_err(|e| AppError::internal("opening a connection's credential", e))?;
    let credential = match &opened {
        Opened::Secret(s) => latchkey_federation::Credential::Secret(s),
        Opened::Key(k) => latchkey_federation::Credential::Key(k),
    };
    let redirect = redirect_uri(state, t, c);
    let params = latchkey_federation::AuthParams {
        redirect_uri: &redirect,
        nonce: &pending.nonce,
        code_verifier: &pending.verifier,
        ..latchkey_federation::AuthParams::default()
    };
    let jti = latchkey_core::random_token(&*state.rng, 24);
    let now = state.clock.now_millis();
    let request = latchkey_federation::token_request(
        c,
        &endpoints.token_endpoint,
        code,
        &params,
        &credential,
        &jti,
        now / 1000,
    )?;
    let policy = &state.config.outbound_allow_private;
    let tokens = upstream::exchange(policy, &endpoints.token_endpoint, &request).await?;
    let claims = match c.kind {
        UpstreamKind::Oidc => {
            let raw = tokens
                .id_token
                .as_deref()
                .ok_or_else(|| FederationError::Malformed("the token response has no id_token".into()))?;
            Some(verified(state, t, c, raw, &pending.nonce).await?)
        }
        UpstreamKind::Oauth2 => None,
    };
    let info = if c.kind == UpstreamKind::Oauth2 || c.options.userinfo {
        Some(upstream::userinfo(policy, &endpoints.userinfo_endpoint, &tokens.access_token).await?)
    } else {
        None
    };
    Ok(latchkey_federation::identity(c, claims.as_ref(), info.as_ref())?)
}

/// Verifies the ID token; a key the stored JWK Set lacks makes it read the set again (at most
/// once a minute per connection, so forged `kid`s can't make it fetch on every request), keep
/// it, and verify once more.
async fn verified(
    state: &AppState,
    t: &Tenant,
    c: &OidcConnection,
    raw: &str,
    nonce: &str,
) -> Result<serde_json::Map<String, serde_json::Value>, Refusal> {
    let d = c.discovered.as_ref().ok_or(Refusal::NotReady)?;
    let check = |d: &Discovered| {
        latchkey_federation::verify_id_token(
            c,
            d,
            raw,
            latchkey_federation::Verification {
                nonce,
                now_ms: state.clock.now_millis(),
                skew_ms: SKEW_MS,
            },
        )
    };
    match check(d) {
        Err(FederationError::UnknownKey) => {}
        other => return Ok(other?),
    }
    let gate = format!("oidc-jwks:{}", c.id);
    if !state.ephemeral.put_once(&t.id, &gate, b"1", JWKS_REFETCH).await? {
        return Err(FederationError::UnknownKey.into());
    }
    let now = state.clock.now_millis();
    let fresh = upstream::refetch_jwks(&state.config.outbound_allow_private, d, now).await?;
    state.metrics.federation("jwks", "refetched");
    let (tid, cid, keep, next) = (
        t.id.clone(),
        c.id.clone(),
        fresh.clone(),
        c.next_refresh_at.unwrap_or(now + upstream::DISCOVERY_REFRESH_MS),
    );
    state
        .store(move |db| db.oidc_discovered(&tid, &cid, Ok(&keep), next))
        .await?;
    Ok(check(&fresh)?)
}

/// The connection as the shared account rules see it: linking also needs the provider to have
/// verified the address, and the operator to trust that.
fn source(c: &OidcConnection) -> Source<'_> {
    Source {
        kind: RealmKind::Oidc,
        id: &c.id,
        name: &c.name,
        domains: &c.options.domains,
        jit: c.options.jit,
        link_existing: c.options.link_existing,
        link_needs_vouch: true,
        role_map: &c.options.role_map,
        group_map: &c.options.group_map,
    }
}

async fn sign_in(
    state: &AppState,
    req: &HttpRequest,
    t: &Tenant,
    c: &OidcConnection,
    person: &Upstream,
    resume: Option<String>,
) -> Result<HttpResponse, Refusal> {
    let src = source(c);
    let asserted = Asserted {
        subject: person.subject.clone(),
        email: person.email.clone(),
        email_vouched: c.options.trust_email_verified && person.email_verified,
        name: person.name.clone(),
        groups: person.groups.clone(),
    };
    let (user, how) = account(state, t, &src, &asserted).await?;
    if how == "created" {
        state.metrics.federation("jit", "created");
    }
    if user.status != UserStatus::Active {
        return Err(Refusal::Disabled);
    }
    sync(state, t, &src, &user, &asserted).await?;
    mapped_attributes(state, t, c, &user, person).await?;
    let mfa = c.options.trust_upstream_mfa && person.multi_factor();
    let mut amr = vec!["ext".to_owned()];
    if mfa {
        amr.push("mfa".to_owned());
    }
    let throttle = crate::flow::throttle::Throttle {
        store: &*state.ephemeral,
        tenant: t,
    };
    let recent_failures = throttle.failures(&format!("id:{}", user.id)).await?;
    let now = state.clock.now_millis();
    let details = json!({
        "connection": c.name,
        "account": how,
        "upstream_amr": person.amr,
        "upstream_mfa": mfa,
    });
    let attempt = Attempt {
        user: &user,
        method: Method::Federated { mfa_done: mfa },
        amr,
        next: resume.unwrap_or_else(|| crate::web::urls::account(&t.slug, None)),
        recent_failures,
        password_expired: false,
        auth_time: Some(person.auth_time.map_or(now, |at| at.min(now))),
        not_after: None,
        details: details.as_object().cloned().unwrap_or_default(),
        also_audit: vec![(src.actor(), "federation.callback", format!("oidc:{}", c.id))],
        federated: None,
    };
    match complete(state, req, t, attempt).await? {
        Completion::Session { response, .. } => {
            state.metrics.federation("callback", "ok");
            Ok(response)
        }
        Completion::Refused => Err(Refusal::Risk),
    }
}

/// The attributes the connection maps from claims, written when they differ from the user's.
/// A value the schema refuses (wrong type, taken unique value) is left out and logged: the
/// sign-in goes on with the attribute as it was.
async fn mapped_attributes(
    state: &AppState,
    t: &Tenant,
    c: &OidcConnection,
    user: &latchkey_core::User,
    person: &Upstream,
) -> Result<(), AppError> {
    if person.attributes.is_empty() {
        return Ok(());
    }
    let (tid, uid, actor, wanted) = (
        t.id.clone(),
        user.id.clone(),
        format!("oidc:{}", c.name),
        person.attributes.clone(),
    );
    let refused = state
        .store(move |db| {
            let have = db.user_attributes(&tid, &uid)?;
            let mut refused = Vec::new();
            for (name, value) in wanted.into_iter().filter(|(n, v)| have.get(n) != Some(v)) {
                let change = [(name.clone(), Some(value))];
                match db.set_user_attributes(&tid, &actor, &uid, &change, latchkey_core::EditableBy::Admin) {
                    Ok(_) => {}
                    Err(latchkey_store::StoreError::Invalid(e)) => refused.push((name, e.message)),
                    Err(latchkey_store::StoreError::Conflict(m)) => refused.push((name, m)),
                    Err(e) => return Err(e),
                }
            }
            Ok::<_, latchkey_store::StoreError>(refused)
        })
        .await?;
    for (attribute, why) in refused {
        tracing::warn!(tenant = %t.slug, connection = %c.name, %attribute, %why, "an upstream claim did not fit its attribute; left as it was");
    }
    Ok(())
}

/// A 429 once the address has had its refusals for the window (the SAML ACS's cap,
/// `saml_acs_refusals_per_minute`, counted apart), counted in the metrics.
async fn throttled(state: &AppState, t: &Tenant, cap: &RefusalCap) -> Result<Option<HttpResponse>, AppError> {
    let res = cap.throttled(state, t).await?;
    if res.is_some() {
        state.metrics.federation("callback", "throttled");
    }
    Ok(res)
}

/// Counts a refusal against the address and answers it; the `federation.callback` failure
/// event and the log line are written only while the address is under its cap.
async fn refused(
    state: &AppState,
    req: &HttpRequest,
    t: &Tenant,
    c: &OidcConnection,
    cap: &RefusalCap,
    refusal: &Refusal,
) -> Result<HttpResponse, AppError> {
    state.metrics.federation("callback", refusal.reason());
    if cap.count(state, t).await? {
        crate::flow::audit::audit(
            state,
            t,
            NewAuditEvent {
                actor: format!("oidc:{}", c.name),
                action: "federation.callback".into(),
                target: format!("oidc:{}", c.id),
                outcome: Outcome::Failure,
                details: json!({"connection": c.name, "reason": refusal.reason(), "detail": refusal.detail(), "ip": crate::web::respond::client_ip(req)}),
            },
        )
        .await?;
        tracing::info!(tenant = %t.slug, connection = %c.name, reason = refusal.reason(), detail = %refusal.detail(), "upstream sign-in refused");
    }
    let (status, message) = refusal.page(c);
    Ok(crate::web::pages::message_response(
        status,
        "Sign-in failed",
        &message,
    ))
}
