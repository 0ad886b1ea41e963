//! The SAML bridge's HTTP side: SP metadata, the SP-initiated start (an AuthnRequest over
//! HTTP-Redirect, or HTTP-POST when that is all the IdP offers), and the assertion consumer
//! service. The protocol decisions are `latchkey-saml`'s; here live the outstanding requests and
//! the replay cache (take-once, in the session store), the correlation cookie, accounts (JIT,
//! links, roles), the session and the way back into the OIDC flow.
//!
//! The IdP posts the response cross-site, so the session cookie (SameSite=Lax) is not sent with
//! it. The browser is instead recognised by a short-lived correlation cookie made for this one
//! sign-in (`SameSite=None; Secure`), named after the opaque `RelayState` handle; the main
//! session cookie is never relaxed.
//!
//! A test sign-in ([`test`]) runs the same start and the same checks, and records what came
//! back instead of signing in.

mod slo;
mod test;

use crate::flow::complete::{Attempt, Completion, Method, complete};
use crate::flow::federated::{AccountError, Asserted, Source, account, sync};
use crate::flow::interaction;
use crate::flow::realm::RealmKind;
use crate::flow::saml_logout::sp_key;
use crate::flow::throttle::RefusalCap;
use crate::state::AppState;
use crate::web::blocking::{Blocking, blocking};
use crate::web::errors::AppError;
use crate::web::tenant::tenant;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_core::saml::BINDING_REDIRECT;
use latchkey_core::{NewAuditEvent, Outcome, SamlConnection, Tenant, UserStatus};
use latchkey_saml::{Assertion, SamlError};
use latchkey_store::SamlRepo;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::time::Duration;

/// How long a started sign-in may take at the IdP.
const PENDING_TTL: Duration = Duration::from_secs(15 * 60);
/// Clock difference tolerated between the IdP and us.
const SKEW_MS: i64 = 90_000;
pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/saml/{connection}/metadata", web::get().to(metadata))
        .route("/saml/{connection}/login", web::get().to(start))
        .route("/saml/{connection}/slo", web::get().to(slo::slo))
        .route("/saml/{connection}/test", web::post().to(test::start))
        .service(
            web::resource("/saml/{connection}/acs")
                .app_data(web::PayloadConfig::new(crate::web::limits::ACS_MAX_BODY))
                .route(web::post().to(acs)),
        );
}

/// This side's entity id (the SP metadata URL) and ACS URL for a connection.
pub fn sp_urls(state: &AppState, slug: &str, connection: &str) -> (String, String) {
    crate::web::urls::saml_sp(&state.config.issuer(slug), connection)
}

async fn connection(state: &AppState, tenant: &Tenant, name: &str) -> Result<SamlConnection, AppError> {
    let unknown = || AppError::not_found("There is no such sign-in connection here.");
    if latchkey_core::validate::slug(name).is_err() {
        return Err(unknown());
    }
    let (tid, n) = (tenant.id.clone(), name.to_owned());
    state
        .store(move |db| db.saml_connection_by_name(&tid, &n))
        .await?
        .ok_or_else(unknown)
}

/// The tenant and connection a `/t/{tenant}/saml/{connection}/…` path names (404 otherwise).
async fn named(
    state: &AppState,
    path: web::Path<(String, String)>,
) -> Result<(Tenant, SamlConnection), AppError> {
    let (slug, name) = path.into_inner();
    let t = tenant(state, &slug).await?;
    let c = connection(state, &t, &name).await?;
    Ok((t, c))
}

/// SAML Metadata §2.4.4: what the IdP's administrator imports.
async fn metadata(
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let (t, c) = named(&state, path).await?;
    let (entity_id, acs_url) = sp_urls(&state, &t.slug, &c.name);
    let slo_url = crate::web::urls::saml_slo(&state.config.issuer(&t.slug), &c.name);
    let xml = latchkey_saml::sp_metadata(&latchkey_saml::SpDescriptor {
        entity_id: &entity_id,
        acs_url: &acs_url,
        slo_url: &slo_url,
        certificate: &c.sp_certificate,
        sign_requests: signs_requests(&c),
        organization: &t.display_name,
        legacy_cbc: c.options.legacy_cbc,
    });
    Ok(HttpResponse::Ok()
        .content_type("application/samlmetadata+xml")
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .body(xml))
}

fn signs_requests(connection: &SamlConnection) -> bool {
    connection.options.sign_requests || connection.idp.wants_signed_requests
}

/// A sign-in sent to the IdP and not answered yet, stored under the hash of its `RelayState`.
#[derive(Debug, Serialize, Deserialize)]
struct Pending {
    connection_id: String,
    /// Our AuthnRequest's ID, which the response's `InResponseTo` must name.
    request_id: String,
    /// Where to go once signed in (the OIDC flow's resume URL), chosen by the server.
    resume: Option<String>,
    /// SHA-256 of the correlation cookie's value.
    binding: String,
    /// ForceAuthn was sent: the IdP must have authenticated after `started_at`.
    force_authn: bool,
    /// The test sign-in (its id) this request runs: the response is recorded, nobody signed in.
    #[serde(default)]
    test: Option<String>,
    started_at: i64,
    expires_at: i64,
}

fn pending_key(relay: &str) -> String {
    format!("saml-request:{}", latchkey_core::sha256_hex(relay.as_bytes()))
}

fn correlation_cookie_name(state: &AppState, tenant: &Tenant, relay: &str) -> String {
    let short = relay.get(..12).unwrap_or(relay);
    crate::web::cookies::host_cookie_name(state, &format!("lk-saml-{}-{short}", tenant.slug))
}

/// The one cookie that must come back with the IdP's cross-site POST. On the http development
/// issuer browsers refuse `SameSite=None` without `Secure`, and the IdP is same-site there.
fn correlation_cookie(state: &AppState, name: String, value: String) -> Cookie<'static> {
    let secure = !state.config.insecure_public_url();
    let mut c = Cookie::build(name, value)
        .path("/")
        .http_only(true)
        .secure(secure)
        .same_site(if secure { SameSite::None } else { SameSite::Lax })
        .finish();
    c.set_max_age(actix_web::cookie::time::Duration::seconds(
        PENDING_TTL.as_secs() as i64
    ));
    c
}

/// SP-initiated sign-in (Profiles §4.1.3): stores the outstanding request and sends the browser
/// to the IdP.
async fn start(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let (t, c) = named(&state, path).await?;
    let onward = match interaction::onward(&state, &req, &t).await? {
        Ok(o) => o,
        Err(page) => return Ok(page),
    };
    // ForceAuthn follows the OIDC request: `prompt=login` or `max_age` asks for a fresh sign-in.
    let (resume, force_authn) = (onward.resume, onward.fresh);
    let b = Begin {
        resume,
        force_authn,
        test: None,
    };
    begin(&state, &req, &t, &c, b).await
}

/// What a sign-in carries besides its AuthnRequest: where to go once signed in, whether a fresh
/// authentication is asked for, and the test sign-in it runs instead.
struct Begin {
    resume: Option<String>,
    force_authn: bool,
    test: Option<String>,
}

/// Stores the outstanding request and sends the browser to the IdP with it.
async fn begin(
    state: &AppState,
    req: &HttpRequest,
    t: &Tenant,
    c: &SamlConnection,
    b: Begin,
) -> Result<HttpResponse, AppError> {
    let Begin {
        resume,
        force_authn,
        test,
    } = b;
    crate::flow::throttle::admit_pending(state, req, t).await?;
    let mut random = [0u8; 16];
    state.rng.fill(&mut random);
    let request_id = latchkey_saml::request_id(&random);
    let relay = latchkey_core::random_token(&*state.rng, 32);
    let correlation = latchkey_core::random_token(&*state.rng, 32);
    let pending = Pending {
        connection_id: c.id.clone(),
        request_id: request_id.clone(),
        resume,
        binding: latchkey_core::sha256_hex(correlation.as_bytes()),
        force_authn,
        test,
        started_at: state.clock.now_millis(),
        expires_at: state.clock.now_millis() + PENDING_TTL.as_millis() as i64,
    };
    let bytes = serde_json::to_vec(&pending).map_err(|e| AppError::internal("pending SAML request", e))?;
    state
        .ephemeral
        .put_once(&t.id, &pending_key(&relay), &bytes, PENDING_TTL)
        .await?;
    let (entity_id, acs_url) = sp_urls(state, &t.slug, &c.name);
    let request = latchkey_saml::AuthnRequest {
        id: &request_id,
        sp_entity_id: &entity_id,
        acs_url: &acs_url,
        destination: &c.idp.sso_url,
        now: state.clock.now_millis(),
        force_authn,
    };
    let cookie = correlation_cookie(state, correlation_cookie_name(state, t, &relay), correlation);
    let mut res = if c.idp.sso_binding == BINDING_REDIRECT {
        let key = if signs_requests(c) {
            Some(sp_key(state, t, c)?)
        } else {
            None
        };
        let url = latchkey_saml::redirect_url(&request, &relay, key.as_deref())
            .map_err(|e| AppError::internal("building an AuthnRequest", e))?;
        crate::web::respond::see_other(&url)
    } else {
        // HTTP-POST binding (Bindings §3.5): the request travels unsigned in a self-posting form.
        let xml = latchkey_saml::request::authn_request_xml(&request)
            .map_err(|e| AppError::internal("building an AuthnRequest", e))?;
        use base64::Engine as _;
        let encoded = base64::engine::general_purpose::STANDARD.encode(xml);
        crate::web::respond::form_post(
            &c.idp.sso_url,
            &[("SAMLRequest", encoded), ("RelayState", relay.clone())],
        )?
    };
    res.add_cookie(&cookie)
        .map_err(|e| AppError::internal("cookie", e))?;
    Ok(res)
}

/// Why an ACS call was refused, beyond what `latchkey-saml` judges.
#[derive(Debug)]
enum Refusal {
    Saml(SamlError),
    /// The form was not a SAML POST binding message.
    BadForm,
    /// The RelayState names a request another browser started.
    Correlation,
    /// The request was started for another connection.
    WrongConnection,
    NoAccount,
    EmailConflict,
    /// The asserted address is in a domain another connection of the tenant claims.
    ForeignDomain {
        domain: String,
        claimed_by: String,
    },
    Disabled,
    Risk,
    /// A fresh sign-in was asked for (ForceAuthn) and the IdP's AuthnInstant is older.
    StaleAuthn,
    /// Storage or the session store failed: answered as an error (503/500), not a refusal.
    Internal(AppError),
}

impl From<AppError> for Refusal {
    fn from(e: AppError) -> Self {
        Self::Internal(e)
    }
}

impl From<AccountError> for Refusal {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::NoAccount => Self::NoAccount,
            AccountError::EmailConflict => Self::EmailConflict,
            AccountError::ForeignDomain { domain, claimed_by } => Self::ForeignDomain { domain, claimed_by },
            AccountError::Internal(e) => Self::Internal(e),
        }
    }
}

impl From<latchkey_session::SessionError> for Refusal {
    fn from(e: latchkey_session::SessionError) -> Self {
        Self::Internal(e.into())
    }
}

impl Refusal {
    fn reason(&self) -> &'static str {
        match self {
            Self::Saml(e) => e.reason(),
            Self::BadForm => "bad_form",
            Self::Correlation => "correlation",
            Self::WrongConnection => "wrong_connection",
            Self::NoAccount => "no_account",
            Self::EmailConflict => "email_conflict",
            Self::ForeignDomain { .. } => "foreign_domain",
            Self::Disabled => "disabled",
            Self::Risk => "risk",
            Self::StaleAuthn => "stale_authn",
            Self::Internal(_) => "internal",
        }
    }

    /// For the audit log and the operator's log, bounded (the document is the attacker's).
    fn detail(&self) -> String {
        match self {
            Self::Saml(e) => e.to_string().chars().take(300).collect(),
            Self::ForeignDomain { domain, claimed_by } => {
                format!("the email domain {domain:?} is claimed by connection {claimed_by:?}")
                    .chars()
                    .take(300)
                    .collect()
            }
            other => other.reason().replace('_', " "),
        }
    }

    /// What the person reads: never which check failed, except where they can act on it.
    fn page(&self, connection: &SamlConnection) -> (StatusCode, String) {
        let generic = format!(
            "Signing in with {} did not succeed. Go back to the application and try again; if it keeps failing, contact your administrator.",
            connection.display_name
        );
        match self {
            Self::NoAccount => (
                StatusCode::FORBIDDEN,
                format!("There is no account here for your {} sign-in. Ask your administrator for access.", connection.display_name),
            ),
            Self::EmailConflict => (
                StatusCode::CONFLICT,
                "An account with your email address exists here already. Ask your administrator to link it to your company sign-in.".into(),
            ),
            Self::ForeignDomain { domain, .. } => (
                StatusCode::FORBIDDEN,
                format!(
                    "Your {} sign-in gives an address at {domain}, and people of {domain} sign in another way here. Use your {domain} sign-in, or ask your administrator.",
                    connection.display_name
                ),
            ),
            Self::Correlation => (
                StatusCode::FORBIDDEN,
                "This sign-in was started in another browser or has expired. Go back to the application and start again.".into(),
            ),
            Self::Saml(SamlError::Status(_)) => (StatusCode::UNAUTHORIZED, generic),
            Self::Saml(SamlError::TooLarge(_)) => (StatusCode::PAYLOAD_TOO_LARGE, generic),
            Self::Disabled | Self::Risk => (StatusCode::FORBIDDEN, generic),
            _ => (StatusCode::BAD_REQUEST, generic),
        }
    }
}

/// The assertion consumer service (Profiles §4.1.4, HTTP-POST binding). The body is read,
/// decoded, screened and validated on the blocking pool: a hostile document never holds an
/// async worker. An address past its cap of refusals gets a 429 before any of that.
async fn acs(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let (t, c) = named(&state, path).await?;
    let refusals = refusal_cap(&req);
    if let Some(res) = throttled(&state, &t, &refusals).await? {
        return Ok(res);
    }
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let posted = parse(&state, move || read_post(content_type.as_deref(), &body)).await?;
    let relay = posted.relay;
    let mut test = None;
    let consumed = consume(
        &state,
        &req,
        (&t, &c),
        posted.response,
        relay.as_deref(),
        &mut test,
    )
    .await;
    let mut res = match consumed {
        Ok(res) => res,
        Err(Refusal::Internal(e)) => return Err(e),
        Err(refusal) => match test.as_deref() {
            Some(id) => test::refused(&state, &req, &t, &c, (id, &refusals), &refusal).await?,
            None => refused(&state, &req, &t, &c, &refusals, &refusal).await?,
        },
    };
    if let Some(relay) = relay {
        res.add_cookie(&crate::web::cookies::removal(
            &state,
            correlation_cookie_name(&state, &t, &relay),
        ))
        .map_err(|e| AppError::internal("cookie", e))?;
    }
    Ok(res)
}

/// What an ACS POST carried: its `RelayState` when it has the shape of ours, and the decoded
/// `SAMLResponse` screened against the parser's caps (`None`: not a SAML POST binding form).
struct Posted {
    relay: Option<String>,
    response: Option<Result<String, SamlError>>,
}

/// Reads the form and decodes and screens the response: linear work over up to 1 MiB, for the
/// blocking pool.
fn read_post(content_type: Option<&str>, body: &[u8]) -> Posted {
    let form = crate::web::form::parse_form(content_type, body, crate::web::limits::ACS_MAX_BODY).ok();
    let relay = form
        .as_ref()
        .and_then(|f| f.get("RelayState"))
        .filter(|r| {
            r.len() == 43
                && r.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map(str::to_owned);
    let response = form.as_ref().and_then(|f| f.get("SAMLResponse")).map(|raw| {
        let text = latchkey_saml::decode_post(raw)?;
        latchkey_saml::xml::screen(&text, latchkey_saml::xml::RESPONSE)?;
        Ok(text)
    });
    Posted { relay, response }
}

/// The ACS's refusal cap (shared with the SLO endpoint).
fn refusal_cap(req: &HttpRequest) -> RefusalCap {
    RefusalCap::of(req, "saml")
}

/// A 429 once the address has had its refusals for the window, counted in the metrics.
async fn throttled(
    state: &AppState,
    tenant: &Tenant,
    cap: &RefusalCap,
) -> Result<Option<HttpResponse>, AppError> {
    let res = cap.throttled(state, tenant).await?;
    if res.is_some() {
        state.metrics.saml("acs", "throttled");
    }
    Ok(res)
}

/// Counts a refusal against the address and answers it; the `saml.acs` failure event and the
/// log line are written only while the address is under its cap, so a flood can't grow the
/// audit log without bound.
async fn refused(
    state: &AppState,
    req: &HttpRequest,
    t: &Tenant,
    c: &SamlConnection,
    key: &RefusalCap,
    refusal: &Refusal,
) -> Result<HttpResponse, AppError> {
    state.metrics.saml("acs", refusal.reason());
    if key.count(state, t).await? {
        crate::flow::audit::audit(
            state,
            t,
            NewAuditEvent {
                actor: format!("saml:{}", c.name),
                action: "saml.acs".into(),
                target: format!("saml:{}", c.id),
                outcome: Outcome::Failure,
                details: json!({"connection": c.name, "reason": refusal.reason(), "detail": refusal.detail(), "ip": crate::web::respond::client_ip(req)}),
            },
        )
        .await?;
        tracing::info!(tenant = %t.slug, connection = %c.name, reason = refusal.reason(), detail = %refusal.detail(), "SAML response refused");
    }
    let (status, message) = refusal.page(c);
    Ok(crate::web::pages::message_response(
        status,
        "Sign-in failed",
        &message,
    ))
}

/// Takes the outstanding request (when the response answers one), validates the response and
/// signs the person in; `Err` says why not, having changed nothing. When the request was a
/// test sign-in, `test_id` is set to its id as soon as that is known, and a valid response is
/// recorded for it instead of signing in.
async fn consume(
    state: &AppState,
    req: &HttpRequest,
    (tenant, connection): (&Tenant, &SamlConnection),
    response: Option<Result<String, SamlError>>,
    relay: Option<&str>,
    test_id: &mut Option<String>,
) -> Result<HttpResponse, Refusal> {
    let text = match response {
        Some(Ok(text)) => text,
        unreadable => {
            // A test learns why; its request stays outstanding, as a sign-in's does.
            if let Some(relay) = relay {
                *test_id = peek_pending(state, req, tenant, relay)
                    .await?
                    .and_then(|p| p.test);
            }
            return Err(match unreadable {
                Some(Err(e)) => Refusal::Saml(e),
                _ => Refusal::BadForm,
            });
        }
    };
    let pending = match relay {
        Some(relay) => take_pending(state, req, tenant, relay).await?,
        None => None,
    };
    test_id.clone_from(&pending.as_ref().and_then(|p| p.test.clone()));
    if pending.as_ref().is_some_and(|p| p.connection_id != connection.id) {
        return Err(Refusal::WrongConnection);
    }
    let sp_key = if text.contains("EncryptedAssertion") {
        Some(sp_key(state, tenant, connection)?)
    } else {
        None
    };
    let now = state.clock.now_millis();
    let in_response_to = pending.as_ref().map(|p| p.request_id.clone());
    let assertion = validate(state, tenant, connection, text, in_response_to, sp_key, now).await?;
    // S5: each assertion once, for as long as it could be presented.
    let ttl = Duration::from_millis(
        u64::try_from(assertion.valid_until - now + SKEW_MS)
            .unwrap_or(1)
            .clamp(1, 86_400_000),
    );
    let replay_key = format!(
        "saml-assertion:{}:{}",
        connection.id,
        latchkey_core::sha256_hex(assertion.id.as_bytes())
    );
    if !state
        .ephemeral
        .put_once(&tenant.id, &replay_key, b"1", ttl)
        .await?
    {
        return Err(Refusal::Saml(SamlError::Replayed));
    }
    if let Some(p) = pending.as_ref().filter(|p| p.force_authn)
        && assertion
            .authn_instant
            .is_none_or(|at| at < p.started_at - SKEW_MS)
    {
        return Err(Refusal::StaleAuthn);
    }
    if let Some(id) = test_id.as_deref() {
        return Ok(test::succeeded(state, req, tenant, connection, &assertion, id).await?);
    }
    let forced_since = pending.as_ref().filter(|p| p.force_authn).map(|p| p.started_at);
    sign_in(
        state,
        req,
        tenant,
        connection,
        &assertion,
        pending.and_then(|p| p.resume),
        forced_since,
    )
    .await
}

/// `latchkey_saml::validate` on the blocking pool: parsing, canonicalization, signatures and
/// decryption are CPU work on attacker-sized input.
#[allow(clippy::too_many_arguments)] // the handles, the document and what the request expects
async fn validate(
    state: &AppState,
    tenant: &Tenant,
    connection: &SamlConnection,
    text: String,
    in_response_to: Option<String>,
    sp_key: Option<Vec<u8>>,
    now: i64,
) -> Result<Assertion, Refusal> {
    let (entity_id, acs_url) = sp_urls(state, &tenant.slug, &connection.name);
    let idp = connection.idp.clone();
    let allow_unsolicited = connection.options.allow_idp_initiated;
    let content_ciphers = latchkey_saml::ContentCipher::allowed(connection.options.legacy_cbc);
    let checked = parse(state, move || {
        let expected = latchkey_saml::Expected {
            idp: &idp,
            sp_entity_id: &entity_id,
            acs_url: &acs_url,
            in_response_to: in_response_to.as_deref(),
            allow_unsolicited,
            now,
            skew_ms: SKEW_MS,
            sp_key_pkcs8: sp_key.as_deref(),
            content_ciphers,
        };
        latchkey_saml::validate(&text, &expected)
    })
    .await?;
    checked.map_err(Refusal::Saml)
}

/// CPU work on an unauthenticated document, on the blocking pool under one of the SAML parse
/// permits (`AppState::saml_parsers`).
async fn parse<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, AppError> {
    let _permit = state
        .saml_parsers
        .acquire()
        .await
        .map_err(|e| AppError::internal("saml parse permits", e))?;
    blocking(move || Ok::<_, AppError>(f())).await
}

/// The outstanding request `relay` names, taken for good, if this browser started it.
async fn take_pending(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    relay: &str,
) -> Result<Option<Pending>, Refusal> {
    let Some(pending) = peek_pending(state, req, tenant, relay).await? else {
        return Ok(None);
    };
    match state.ephemeral.take(&tenant.id, &pending_key(relay)).await? {
        Some(_) if state.clock.now_millis() < pending.expires_at => Ok(Some(pending)),
        // Taken by a concurrent request, or expired.
        _ => Err(Refusal::Correlation),
    }
}

/// The outstanding request `relay` names, left in place, if this browser started it.
async fn peek_pending(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    relay: &str,
) -> Result<Option<Pending>, Refusal> {
    let key = pending_key(relay);
    let Some(bytes) = state.ephemeral.peek(&tenant.id, &key).await? else {
        // Unknown or expired: the response is judged as unsolicited.
        return Ok(None);
    };
    let pending: Pending = serde_json::from_slice(&bytes).map_err(|_| Refusal::Correlation)?;
    let presented = req
        .cookie(&correlation_cookie_name(state, tenant, relay))
        .map(|c| latchkey_core::sha256_hex(c.value().as_bytes()))
        .unwrap_or_default();
    if !bool::from(subtle::ConstantTimeEq::ct_eq(
        presented.as_bytes(),
        pending.binding.as_bytes(),
    )) {
        return Err(Refusal::Correlation);
    }
    Ok(Some(pending))
}

/// The mapped attribute's first value.
fn mapped(a: &Assertion, attr: Option<&str>) -> Option<String> {
    attr.and_then(|n| a.values(n).into_iter().next())
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

fn email_of(a: &Assertion, connection: &SamlConnection) -> Option<String> {
    mapped(a, connection.options.mapping.email.as_deref())
        .or_else(|| {
            let is_email_format = a
                .name_id_format
                .as_deref()
                .is_some_and(|f| f.ends_with(":emailAddress"));
            (connection.options.mapping.email.is_none() && is_email_format).then(|| a.name_id.clone())
        })
        .and_then(|e| latchkey_core::validate::email(&e).ok())
}

/// The IdP groups the assertion names, from the attribute the connection maps to groups.
fn idp_groups(connection: &SamlConnection, a: &Assertion) -> Vec<String> {
    connection
        .options
        .mapping
        .groups
        .as_deref()
        .map(|g| a.values(g))
        .unwrap_or_default()
}

/// The tenant roles the connection's role map grants for the IdP `groups`.
fn mapped_roles(connection: &SamlConnection, groups: &[String]) -> Vec<String> {
    crate::flow::federated::mapped(&connection.options.role_map, groups)
}

/// The tenant groups the connection's group map puts members of the IdP `groups` in.
fn mapped_groups(connection: &SamlConnection, groups: &[String]) -> Vec<String> {
    crate::flow::federated::mapped(&connection.options.group_map, groups)
}

/// The connection as the shared account rules see it.
fn source(c: &SamlConnection) -> Source<'_> {
    Source {
        kind: RealmKind::Saml,
        id: &c.id,
        name: &c.name,
        domains: &c.options.domains,
        jit: c.options.jit,
        link_existing: c.options.link_existing,
        link_needs_vouch: false,
        role_map: &c.options.role_map,
        group_map: &c.options.group_map,
    }
}

/// What the assertion says about the person, read through the connection's mapping.
fn asserted(c: &SamlConnection, a: &Assertion) -> Asserted {
    Asserted {
        subject: a.name_id.clone(),
        email: email_of(a, c),
        email_vouched: c.options.email_verified,
        name: mapped(a, c.options.mapping.name.as_deref()),
        groups: idp_groups(c, a),
    }
}

async fn sign_in(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    c: &SamlConnection,
    a: &Assertion,
    resume: Option<String>,
    forced_since: Option<i64>,
) -> Result<HttpResponse, Refusal> {
    let (src, person) = (source(c), asserted(c, a));
    let (user, how) = account(state, tenant, &src, &person).await?;
    if how == "created" {
        state.metrics.saml("jit", "created");
    }
    if user.status != UserStatus::Active {
        return Err(Refusal::Disabled);
    }
    sync(state, tenant, &src, &user, &person).await?;

    // The IdP authenticated the person; the risk engine may still refuse (like a passkey).
    let idp_mfa = c.options.trust_idp_mfa && a.multi_factor();
    let mut amr = vec!["ext".to_owned()];
    if idp_mfa {
        amr.push("mfa".to_owned());
    }
    // The account's recent failed sign-ins (a password tried elsewhere) count in the score.
    let throttle = crate::flow::throttle::Throttle {
        store: &*state.ephemeral,
        tenant,
    };
    let recent_failures = throttle.failures(&format!("id:{}", user.id)).await?;
    // OIDC `auth_time` is when the person authenticated at the IdP; a forced sign-in was checked
    // fresh (within the skew) and counts from when it was asked. The IdP's session may end
    // sooner than ours would.
    let now = state.clock.now_millis();
    let auth_time = a.authn_instant.map_or(now, |at| at.min(now));
    let auth_time = forced_since.map_or(auth_time, |since| auth_time.max(since).min(now));
    let details = json!({
        "connection": c.name,
        "account": how,
        "authn_context": a.authn_context,
        "idp_mfa": idp_mfa,
        "encrypted": a.encrypted,
    });
    let attempt = Attempt {
        user: &user,
        method: Method::Federated { mfa_done: idp_mfa },
        amr,
        next: resume.unwrap_or_else(|| crate::web::urls::account(&tenant.slug, None)),
        recent_failures,
        password_expired: false,
        auth_time: Some(auth_time),
        not_after: a.session_not_on_or_after,
        details: details.as_object().cloned().unwrap_or_default(),
        also_audit: vec![(format!("saml:{}", c.name), "saml.acs", format!("saml:{}", c.id))],
        federated: Some(latchkey_core::FederatedSession {
            connection_id: c.id.clone(),
            connection: c.name.clone(),
            name_id: a.name_id.clone(),
            name_id_format: a.name_id_format.clone(),
            session_index: a.session_index.clone(),
        }),
    };
    match complete(state, req, tenant, attempt).await? {
        Completion::Session { response, .. } => {
            state.metrics.saml("acs", "ok");
            Ok(response)
        }
        Completion::Refused => Err(Refusal::Risk),
    }
}
