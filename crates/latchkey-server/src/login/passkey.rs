//! Passkey ceremonies over JSON for `/assets/passkey.js`: registration from the account page,
//! passwordless sign-in, and the second factor after a password.
//!
//! Each ceremony's state is kept server-side for 5 minutes under a key derived from the
//! browser's session (or, before sign-in, its pre-session cookie) and taken once by the finish
//! call (SECURITY-TESTS W1, W10): a state can't be finished twice or from another browser.

use super::{AppError, audit, csrf, strings};
use crate::flow::complete::{Attempt, Completion, Method, complete};
use crate::flow::factor::{complete_json, has_factor};
use crate::state::AppState;
use crate::web::blocking::Blocking;
use crate::web::errors::Kind;
use crate::web::respond::json_redirect;
use crate::web::tenant::InTenant;
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_core::{FactorDue, MfaMethod, NewAuditEvent, Tenant, User};
use latchkey_mfa::passkey::{PasskeyError, RelyingParty, StoredPasskey};
use latchkey_mfa::recovery;
use latchkey_store::{MfaRepo, PasskeyRow, UserRepo};
use serde_json::{Value, json};
use std::time::Duration;

const CEREMONY_TTL: Duration = Duration::from_secs(5 * 60);
/// Methods a passkey with user verification proves (RFC 8176): a key, the user, and so MFA.
pub(super) const AMR: [&str; 3] = ["hwk", "user", "mfa"];

/// The relying party at the public URL (its host is the RP ID).
pub(super) fn rp(state: &AppState, tenant: &Tenant) -> Result<RelyingParty, AppError> {
    let origin =
        url::Url::parse(&state.config.public_url).map_err(|e| AppError::internal("public URL", e))?;
    let rp_id = state
        .config
        .webauthn_rp_id
        .clone()
        .or_else(|| origin.host_str().map(str::to_owned))
        .unwrap_or_default();
    RelyingParty::new(&rp_id, &origin, &tenant.display_name).map_err(|e| AppError::internal("passkeys", e))
}

/// The passkey models the tenant requires attestation from (none: attestation `none`).
pub(super) fn trusted(tenant: &Tenant) -> Vec<latchkey_mfa::passkey::TrustedModel> {
    tenant
        .policy
        .mfa
        .passkey_attestation
        .iter()
        .map(|m| latchkey_mfa::passkey::TrustedModel {
            aaguid: m.aaguid.clone(),
            ca_pem: m.ca_pem.clone(),
        })
        .collect()
}

pub(super) fn stored(rows: &[PasskeyRow]) -> Vec<StoredPasskey> {
    rows.iter()
        .map(|r| StoredPasskey {
            id: r.id.clone(),
            credential: r.credential.clone(),
        })
        .collect()
}

fn ceremony_key(kind: &str, binding: &str) -> String {
    format!(
        "webauthn:{kind}:{}",
        latchkey_core::sha256_hex(binding.as_bytes())
    )
}

pub(super) async fn keep(
    state: &AppState,
    tenant: &Tenant,
    kind: &str,
    binding: &str,
    value: &str,
) -> Result<(), AppError> {
    let key = ceremony_key(kind, binding);
    // A new ceremony replaces an unfinished one of the same browser.
    state.ephemeral.take(&tenant.id, &key).await?;
    state
        .ephemeral
        .put_once(&tenant.id, &key, value.as_bytes(), CEREMONY_TTL)
        .await?;
    Ok(())
}

pub(super) async fn take(
    state: &AppState,
    tenant: &Tenant,
    kind: &str,
    binding: &str,
) -> Result<Option<String>, AppError> {
    Ok(state
        .ephemeral
        .take(&tenant.id, &ceremony_key(kind, binding))
        .await?
        .and_then(|b| String::from_utf8(b).ok()))
}

pub(super) fn refused(message: &str) -> HttpResponse {
    HttpResponse::BadRequest().json(json!({"error": "passkey_refused", "message": message}))
}

pub(super) fn field<'a>(body: &'a Value, name: &str) -> &'a str {
    body.get(name).and_then(Value::as_str).unwrap_or_default()
}

pub(super) fn response_json(body: &Value) -> String {
    body.get("response").map(Value::to_string).unwrap_or_default()
}

pub(super) async fn passkeys_of(
    state: &AppState,
    tenant: &Tenant,
    user: &User,
) -> Result<Vec<PasskeyRow>, AppError> {
    let (tid, uid) = (tenant.id.clone(), user.id.clone());
    state.store(move |db| db.passkeys(&tid, &uid)).await
}

/// A failed assertion or registration is audited; a counter going backwards is flagged (W4).
pub(super) async fn audit_refusal(
    state: &AppState,
    tenant: &Tenant,
    user: Option<&User>,
    what: &str,
    e: &PasskeyError,
) -> Result<(), AppError> {
    let target = user.map_or_else(|| "user:unknown".to_owned(), |u| format!("user:{}", u.id));
    let reason = match e {
        PasskeyError::CounterRegression => "counter_regression",
        PasskeyError::Malformed(_) => "malformed",
        _ => "refused",
    };
    audit(
        state,
        tenant,
        NewAuditEvent::failure(
            &target,
            what,
            target.clone(),
            json!({"reason": reason, "detail": e.to_string()}),
        ),
    )
    .await
}

/// Which sessions a ceremony serves.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Registering: signed in, or owing an enrolment; passkeys allowed.
    Register,
    /// The second factor after a password.
    Verify,
}

/// The session, with its user, that may run a ceremony of the `wanted` stage, after the CSRF
/// check.
async fn ceremony_session(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    body: &Value,
    wanted: Stage,
) -> Result<CeremonySession, AppError> {
    let found = match wanted {
        Stage::Register => super::factor::enrolling(state, req, tenant).await?,
        Stage::Verify => crate::flow::factor::any_session(state, req, tenant)
            .await?
            .filter(|(_, s, _)| s.factor_due == Some(FactorDue::Verify)),
    };
    let Some((sid, session, user)) = found else {
        return Err(AppError::new(Kind::Unauthorized, "Sign in first.").json());
    };
    if !csrf::check(state, req, Some(sid.cookie_value()), Some(field(body, "csrf"))) {
        return Err(AppError::new(Kind::Forbidden, strings(req).form_expired).json());
    }
    if wanted == Stage::Register && !tenant.policy.allows(MfaMethod::Passkey) {
        return Err(AppError::new(Kind::Forbidden, "Passkeys are not enabled here.").json());
    }
    Ok((sid, session, user))
}

type CeremonySession = (latchkey_session::SessionId, latchkey_core::Session, User);

/// The session finishing a ceremony of `wanted` and the ceremony's state, taken once; an
/// expired (or already finished) ceremony is answered with a refusal.
async fn finishing(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    body: &Value,
    wanted: Stage,
) -> Result<Result<(CeremonySession, String), HttpResponse>, AppError> {
    let found = ceremony_session(state, req, tenant, body, wanted).await?;
    let kind = match wanted {
        Stage::Register => "register",
        Stage::Verify => "factor",
    };
    match take(state, tenant, kind, found.0.cookie_value()).await? {
        Some(ceremony) => Ok(Ok((found, ceremony))),
        None => Ok(Err(refused("This passkey request has expired. Try again."))),
    }
}

// --- registration (account page) ------------------------------------------------------------

/// POST `/t/{tenant}/account/passkeys/options`.
pub(super) async fn register_options(
    req: HttpRequest,
    InTenant(tenant): InTenant,
    state: web::Data<AppState>,
    body: web::Json<Value>,
) -> Result<HttpResponse, AppError> {
    let (sid, _, user) = ceremony_session(&state, &req, &tenant, &body, Stage::Register).await?;
    let existing = passkeys_of(&state, &tenant, &user).await?;
    let display = user.display_name.clone().unwrap_or_else(|| user.username.clone());
    let (options, ceremony) = rp(&state, &tenant)?
        .start_registration(
            user.id.as_str(),
            &user.username,
            &display,
            &stored(&existing),
            &trusted(&tenant),
        )
        .map_err(|e| AppError::internal("passkey registration", e))?;
    keep(&state, &tenant, "register", sid.cookie_value(), &ceremony).await?;
    Ok(HttpResponse::Ok().json(options))
}

/// POST `/t/{tenant}/account/passkeys`: the authenticator's answer; the first factor of a user
/// also brings the recovery codes, shown once.
pub(super) async fn register_finish(
    req: HttpRequest,
    InTenant(tenant): InTenant,
    state: web::Data<AppState>,
    body: web::Json<Value>,
) -> Result<HttpResponse, AppError> {
    let ((sid, session_now, user), ceremony) =
        match finishing(&state, &req, &tenant, &body, Stage::Register).await? {
            Ok(found) => found,
            Err(expired) => return Ok(expired),
        };
    let key = match rp(&state, &tenant)?.finish_registration(&response_json(&body), &ceremony) {
        Ok(k) => k,
        Err(e) => {
            audit_refusal(&state, &tenant, Some(&user), "mfa.passkey.register", &e).await?;
            return Ok(refused("The passkey was not accepted."));
        }
    };
    let first = !has_factor(&state, &tenant, &user.id).await?;
    let name = field(&body, "name").trim();
    let name = if name.is_empty() {
        "Passkey".to_owned()
    } else {
        name.chars().take(64).collect()
    };
    let (tid, uid) = (tenant.id.clone(), user.id.clone());
    let (id, credential) = (key.id.clone(), key.credential.clone());
    match state
        .store(move |db| db.add_passkey(&tid, &uid, &id, &name, &credential))
        .await
    {
        Ok(()) => {}
        Err(e) if e.kind == Kind::Conflict => return Ok(refused("This passkey is registered already.")),
        Err(e) => return Err(e.json()),
    }
    let next = super::checked_return_to(&tenant, Some(field(&body, "return_to")))
        .unwrap_or_else(|| crate::web::urls::account(&tenant.slug, None));
    let mut out = json!({"redirect": next});
    if first {
        let codes = recovery::generate(&*state.rng);
        let hashes: Vec<String> = codes.iter().map(|c| recovery::hash(c)).collect();
        let (tid, uid) = (tenant.id.clone(), user.id.clone());
        state
            .store(move |db| db.replace_recovery_codes(&tid, &uid, &hashes))
            .await?;
        out["recovery_codes"] = json!(codes);
    }
    // Enrolling during sign-in also finishes the sign-in with the new factor.
    if session_now.factor_due == Some(FactorDue::Enrol) {
        let (done, _) =
            crate::flow::factor::complete(&state, &req, &tenant, (&sid, &session_now), &AMR, &next).await?;
        return json_redirect(&done, &out);
    }
    Ok(HttpResponse::Ok().json(out))
}

// --- passwordless sign-in -----------------------------------------------------------------

fn presession_binding(state: &AppState, req: &HttpRequest, tenant: &Tenant) -> Option<String> {
    req.cookie(&csrf::presession_cookie_name(state, tenant))
        .map(|c| c.value().to_owned())
}

/// POST `/t/{tenant}/login/passkey/options`.
pub(super) async fn signin_options(
    req: HttpRequest,
    InTenant(tenant): InTenant,
    state: web::Data<AppState>,
    body: web::Json<Value>,
) -> Result<HttpResponse, AppError> {
    let binding = presession_binding(&state, &req, &tenant);
    if !csrf::check(&state, &req, binding.as_deref(), Some(field(&body, "csrf"))) {
        return Err(AppError::new(Kind::Forbidden, strings(&req).form_expired).json());
    }
    let binding = binding.unwrap_or_default();
    let (options, ceremony) = rp(&state, &tenant)?
        .start_discoverable()
        .map_err(|e| AppError::internal("passkey sign-in", e))?;
    keep(&state, &tenant, "signin", &binding, &ceremony).await?;
    Ok(HttpResponse::Ok().json(options))
}

/// POST `/t/{tenant}/login/passkey`: signs in the user the passkey names (no password).
pub(super) async fn signin_finish(
    req: HttpRequest,
    InTenant(t): InTenant,
    state: web::Data<AppState>,
    body: web::Json<Value>,
) -> Result<HttpResponse, AppError> {
    let binding = presession_binding(&state, &req, &t);
    if !csrf::check(&state, &req, binding.as_deref(), Some(field(&body, "csrf"))) {
        return Err(AppError::new(Kind::Forbidden, strings(&req).form_expired).json());
    }
    let Some(ceremony) = take(&state, &t, "signin", &binding.unwrap_or_default()).await? else {
        return Ok(refused("This passkey request has expired. Try again."));
    };
    let rp = rp(&state, &t)?;
    let response = response_json(&body);
    let Ok((handle, cred_id)) = rp.identify(&response) else {
        return Ok(refused("The passkey was not accepted."));
    };
    // W6: only this tenant's credentials exist here; the handle must be its owner.
    let (tid, id) = (t.id.clone(), cred_id.clone());
    let row = state.store(move |db| db.passkey(&tid, &id)).await?;
    let Some(row) = row.filter(|r| r.user_id == handle) else {
        return Ok(refused("The passkey was not accepted."));
    };
    let (tid, uid) = (t.id.clone(), latchkey_core::UserId(row.user_id.clone()));
    let Some(user) = state
        .store(move |db| db.user(&tid, &uid))
        .await?
        .filter(|u| u.status == latchkey_core::UserStatus::Active)
    else {
        return Ok(refused("The passkey was not accepted."));
    };
    let verified = match rp.finish_discoverable(&response, &ceremony, &stored(std::slice::from_ref(&row))[0])
    {
        Ok(v) => v,
        Err(e) => {
            audit_refusal(&state, &t, Some(&user), "login.passkey", &e).await?;
            return Ok(refused("The passkey was not accepted."));
        }
    };
    record_use(&state, &t, &verified).await?;
    // A passkey is both factors, so a step-up is satisfied; a deny still refuses.
    let mut details = serde_json::Map::new();
    details.insert("passkey".into(), json!(&verified.id[..16.min(verified.id.len())]));
    let attempt = Attempt {
        user: &user,
        method: Method::Passkey,
        amr: AMR.iter().map(|m| (*m).to_owned()).collect(),
        next: next_after_signin(&state, &req, &t, &body).await?,
        recent_failures: 0,
        password_expired: false,
        auth_time: None,
        not_after: None,
        details,
        also_audit: Vec::new(),
        federated: None,
    };
    match complete(&state, &req, &t, attempt).await? {
        Completion::Session {
            response, location, ..
        } => json_redirect(&response, &json!({"redirect": location})),
        Completion::Refused => Ok(refused("The passkey was not accepted.")),
    }
}

/// Where a passwordless sign-in continues: the pending interaction, else `return_to`.
async fn next_after_signin(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    body: &Value,
) -> Result<String, AppError> {
    let id = field(body, "interaction");
    if !id.is_empty() {
        let binding = super::interaction::binding(state, req, tenant, id);
        if let Some(i) = super::interaction::load(state, tenant, id, binding.as_deref()).await? {
            return Ok(i.resume_url(id));
        }
    }
    Ok(super::safe_return_to(
        tenant,
        Some(field(body, "return_to")).filter(|r| !r.is_empty()),
    ))
}

pub(super) async fn record_use(
    state: &AppState,
    tenant: &Tenant,
    v: &latchkey_mfa::passkey::Verified,
) -> Result<(), AppError> {
    let (tid, id, cred) = (tenant.id.clone(), v.id.clone(), v.updated.clone());
    state
        .store(move |db| db.passkey_used(&tid, &id, cred.as_deref()))
        .await?;
    Ok(())
}

// --- second factor ----------------------------------------------------------------------

/// POST `/t/{tenant}/login/second-factor/passkey/options`.
pub(super) async fn factor_options(
    req: HttpRequest,
    InTenant(tenant): InTenant,
    state: web::Data<AppState>,
    body: web::Json<Value>,
) -> Result<HttpResponse, AppError> {
    let (sid, _, user) = ceremony_session(&state, &req, &tenant, &body, Stage::Verify).await?;
    let keys = passkeys_of(&state, &tenant, &user).await?;
    if keys.is_empty() {
        return Ok(refused("No passkey is registered."));
    }
    let (options, ceremony) = rp(&state, &tenant)?
        .start_authentication(&stored(&keys))
        .map_err(|e| AppError::internal("passkey check", e))?;
    keep(&state, &tenant, "factor", sid.cookie_value(), &ceremony).await?;
    Ok(HttpResponse::Ok().json(options))
}

/// POST `/t/{tenant}/login/second-factor/passkey`.
pub(super) async fn factor_finish(
    req: HttpRequest,
    InTenant(tenant): InTenant,
    state: web::Data<AppState>,
    body: web::Json<Value>,
) -> Result<HttpResponse, AppError> {
    let ((sid, s, user), ceremony) = match finishing(&state, &req, &tenant, &body, Stage::Verify).await? {
        Ok(found) => found,
        Err(expired) => return Ok(expired),
    };
    let keys = passkeys_of(&state, &tenant, &user).await?;
    let verified =
        match rp(&state, &tenant)?.finish_authentication(&response_json(&body), &ceremony, &stored(&keys)) {
            Ok(v) => v,
            Err(e) => {
                audit_refusal(&state, &tenant, Some(&user), "login.second_factor", &e).await?;
                return Ok(refused("The passkey was not accepted."));
            }
        };
    record_use(&state, &tenant, &verified).await?;
    let next = super::checked_return_to(&tenant, Some(field(&body, "return_to")))
        .unwrap_or_else(|| crate::web::urls::account(&tenant.slug, None));
    complete_json(&state, &req, &tenant, (&sid, &s), &AMR, &next).await
}

// --- managing passkeys ------------------------------------------------------------------

/// POST `/t/{tenant}/account/passkeys/rename` (form).
pub(super) async fn rename(
    req: HttpRequest,
    InTenant(tenant): InTenant,
    state: web::Data<AppState>,
    form: crate::web::form::FormParams,
) -> Result<HttpResponse, AppError> {
    let (tenant, _, user) = match super::account::account_form(&req, tenant, &state, &form).await? {
        Ok(found) => found,
        Err(to_login) => return Ok(to_login),
    };
    let name: String = form
        .get("name")
        .unwrap_or_default()
        .trim()
        .chars()
        .take(64)
        .collect();
    if !name.is_empty() {
        let (tid, uid, id) = (
            tenant.id.clone(),
            user.id.clone(),
            form.get("id").unwrap_or_default().to_owned(),
        );
        state
            .store(move |db| db.rename_passkey(&tid, &uid, &id, &name))
            .await?;
    }
    Ok(super::see_other(&crate::web::urls::account(&tenant.slug, None)))
}

/// POST `/t/{tenant}/account/passkeys/remove` (form). The last factor stays while the
/// tenant requires MFA (W7).
pub(super) async fn remove(
    req: HttpRequest,
    InTenant(tenant): InTenant,
    state: web::Data<AppState>,
    form: crate::web::form::FormParams,
) -> Result<HttpResponse, AppError> {
    let (tenant, _, user) = match super::account::account_form(&req, tenant, &state, &form).await? {
        Ok(found) => found,
        Err(to_login) => return Ok(to_login),
    };
    if crate::flow::factor::is_last_factor(&state, &tenant, &user).await? {
        return Ok(super::see_other(&crate::web::urls::account(
            &tenant.slug,
            Some("mfa=required"),
        )));
    }
    let (tid, uid, id) = (
        tenant.id.clone(),
        user.id.clone(),
        form.get("id").unwrap_or_default().to_owned(),
    );
    let actor = format!("user:{uid}");
    state
        .store(move |db| db.remove_passkey(&tid, &actor, &uid, &id))
        .await?;
    Ok(super::see_other(&crate::web::urls::account(&tenant.slug, None)))
}
