//! Single Logout at `GET /t/{tenant}/saml/{connection}/slo` (HTTP-Redirect binding). An IdP's
//! `LogoutRequest` ends the Latchkey sessions it names (NameID, and SessionIndex when given),
//! with their grants, so the portals are told through back-channel logout, and is answered
//! with a signed `LogoutResponse`. A `LogoutResponse` finishes a logout Latchkey began
//! (`flow::saml_logout`). Every message must be signed by one of the connection's pinned
//! certificates: a link anyone can send must not sign people out.

use super::{SKEW_MS, named, refusal_cap, throttled};
use crate::flow::audit::audit;
use crate::flow::frontchannel;
use crate::flow::grants::{Owned, revoke_grants};
use crate::flow::saml_logout::{self, sp_key};
use crate::state::AppState;
use crate::web::blocking::Blocking;
use crate::web::errors::AppError;
use crate::web::pages::message_response;
use crate::web::respond::see_other;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_core::{NewAuditEvent, Outcome, SamlConnection, Tenant};
use latchkey_saml::SamlError;
use latchkey_saml::logout::{
    Expect, LogoutRequestIn, LogoutResponse, Param, STATUS_SUCCESS, logout_response_xml,
    parse_logout_request, parse_logout_response, receive, redirect,
};
use latchkey_store::SamlRepo;
use serde_json::json;

const TITLE: &str = "Sign-out";

pub(super) async fn slo(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let (tenant, conn) = named(&state, path).await?;
    // An address past its refusals (ACS and SLO count together) waits before more signature
    // checks are spent on it.
    if let Some(res) = throttled(&state, &tenant, &refusal_cap(&req)).await? {
        return Ok(res);
    }
    let received = match receive(req.query_string(), &conn.idp.certificates) {
        Ok(r) => r,
        Err(e) => return refused(&state, &req, &tenant, &conn, &e).await,
    };
    let destination = crate::web::urls::saml_slo(&state.config.issuer(&tenant.slug), &conn.name);
    let exp = Expect {
        idp_entity_id: &conn.idp.entity_id,
        destination: &destination,
        now: state.clock.now_millis(),
        skew_ms: SKEW_MS,
    };
    match received.param {
        Param::SamlRequest => match parse_logout_request(&received.xml, &exp) {
            Ok(r) if !first_use(&state, &tenant, &conn, &r.id).await? => {
                refused(&state, &req, &tenant, &conn, &SamlError::Replayed).await
            }
            Ok(r) => {
                from_idp(
                    &state,
                    &req,
                    (&tenant, &conn),
                    &r,
                    received.relay_state.as_deref(),
                )
                .await
            }
            Err(e) => refused(&state, &req, &tenant, &conn, &e).await,
        },
        Param::SamlResponse => answered(&state, &req, (&tenant, &conn), &received, &exp).await,
    }
}

/// SP-initiated, finished: the IdP's `LogoutResponse` to the request `flow::saml_logout` sent
/// (its `RelayState` names the pending logout, taken once); the browser goes where the
/// logout was going.
async fn answered(
    state: &AppState,
    req: &HttpRequest,
    (tenant, conn): (&Tenant, &SamlConnection),
    received: &latchkey_saml::logout::Received,
    exp: &Expect<'_>,
) -> Result<HttpResponse, AppError> {
    let relay = received.relay_state.as_deref().unwrap_or_default();
    let pending = saml_logout::take(state, tenant, relay)
        .await?
        .filter(|p| p.connection == conn.name);
    let Some(pending) = pending else {
        let why = SamlError::InResponseTo("no logout of this connection is pending".into());
        return refused(state, req, tenant, conn, &why).await;
    };
    match parse_logout_response(&received.xml, exp, &pending.request_id) {
        Ok(r) => {
            let details = json!({"initiated": "sp", "status": r.status});
            event(state, tenant, conn, Outcome::Success, details).await?;
            state
                .metrics
                .saml("slo", if r.success() { "ok" } else { "partial" });
            Ok(match pending.then {
                Some(url) => see_other(&url),
                None => message_response(StatusCode::OK, TITLE, "You have been signed out."),
            })
        }
        Err(e) => refused(state, req, tenant, conn, &e).await,
    }
}

/// Each IdP `LogoutRequest` once: a request copied from a URL (history, a log, a `Referer`)
/// must not sign the person out again after they signed back in within the same IdP session.
/// Kept as long as the request is accepted (its `IssueInstant` is at most 10 minutes old).
async fn first_use(
    state: &AppState,
    tenant: &Tenant,
    conn: &SamlConnection,
    id: &str,
) -> Result<bool, AppError> {
    let key = format!(
        "saml-logout-request:{}:{}",
        conn.id,
        latchkey_core::sha256_hex(id.as_bytes())
    );
    let ttl = std::time::Duration::from_millis(u64::try_from(10 * 60_000 + 2 * SKEW_MS).unwrap_or(900_000));
    Ok(state.ephemeral.put_once(&tenant.id, &key, b"1", ttl).await?)
}

/// IdP-initiated: ends the sessions the request names (Core §3.7.3.2) and answers Success.
async fn from_idp(
    state: &AppState,
    req: &HttpRequest,
    (t, c): (&Tenant, &SamlConnection),
    r: &LogoutRequestIn,
    relay: Option<&str>,
) -> Result<HttpResponse, AppError> {
    let (tid, cid, nid) = (t.id.clone(), c.id.clone(), r.name_id.clone());
    let user = state.store(move |db| db.saml_identity(&tid, &cid, &nid)).await?;
    let (mut ended, mut frames) = (0, Vec::new());
    if let Some(uid) = user {
        for (key, s) in state.ephemeral.list_user_sessions(&t.id, &uid).await? {
            let named = s.federated.as_ref().is_some_and(|f| {
                f.connection_id == c.id
                    && f.name_id == r.name_id
                    && (r.session_indexes.is_empty()
                        || f.session_index
                            .as_ref()
                            .is_some_and(|i| r.session_indexes.contains(i)))
            });
            if !named {
                continue;
            }
            // Read before the grants are revoked: the clients that got tokens in it.
            let mut these = frontchannel::urls(state, t, &uid, &key).await?;
            if state.ephemeral.delete_session_by_key(&t.id, &key).await? {
                revoke_grants(state, t, Owned::Session(key), "saml_logout").await?;
                frames.append(&mut these);
                ended += 1;
            }
        }
    }
    let details =
        json!({"initiated": "idp", "sessions_ended": ended, "session_indexes": r.session_indexes.len()});
    event(state, t, c, Outcome::Success, details).await?;
    state.metrics.saml("slo", "ended");
    let answer = match c.idp.slo_response_url.as_ref().or(c.idp.slo_url.as_ref()) {
        Some(destination) => Some(answer_url(state, (t, c), r, destination, relay)?),
        None => None,
    };
    // The browser is here (HTTP-Redirect): the portals' front-channel pages load first.
    if !frames.is_empty() {
        let words = crate::web::respond::strings_with(req, None);
        return frontchannel::page(state, req, t, words, &frames, answer);
    }
    Ok(match answer {
        Some(url) => see_other(&url),
        None => message_response(StatusCode::OK, TITLE, "You have been signed out."),
    })
}

/// The signed `LogoutResponse` (Success) to the IdP's request, as a redirect URL.
fn answer_url(
    state: &AppState,
    (t, c): (&Tenant, &SamlConnection),
    r: &LogoutRequestIn,
    destination: &str,
    relay: Option<&str>,
) -> Result<String, AppError> {
    let mut random = [0u8; 16];
    state.rng.fill(&mut random);
    let id = latchkey_saml::request_id(&random);
    let (issuer, _) = crate::web::urls::saml_sp(&state.config.issuer(&t.slug), &c.name);
    let xml = logout_response_xml(&LogoutResponse {
        id: &id,
        in_response_to: &r.id,
        issuer: &issuer,
        destination,
        now: state.clock.now_millis(),
        status: STATUS_SUCCESS,
    })
    .map_err(|e| AppError::internal("a SAML LogoutResponse", e))?;
    let key = sp_key(state, t, c)?;
    redirect(destination, Param::SamlResponse, &xml, relay, Some(&key))
        .map_err(|e| AppError::internal("signing a SAML LogoutResponse", e))
}

async fn event(
    state: &AppState,
    t: &Tenant,
    c: &SamlConnection,
    outcome: Outcome,
    mut details: serde_json::Value,
) -> Result<(), AppError> {
    if let Some(o) = details.as_object_mut() {
        o.insert("connection".into(), json!(c.name));
    }
    audit(
        state,
        t,
        NewAuditEvent {
            actor: format!("saml:{}", c.name),
            action: "saml.slo".into(),
            target: format!("saml:{}", c.id),
            outcome,
            details,
        },
    )
    .await
}

/// A logout message that is unsigned, forged, stale or not ours: nothing ends. Audited while
/// the address is under the ACS's refusal cap, so a flood can't grow the audit log.
async fn refused(
    state: &AppState,
    req: &HttpRequest,
    t: &Tenant,
    c: &SamlConnection,
    e: &SamlError,
) -> Result<HttpResponse, AppError> {
    state.metrics.saml("slo", e.reason());
    if refusal_cap(req).count(state, t).await? {
        let ip = crate::web::respond::client_ip(req);
        event(
            state,
            t,
            c,
            Outcome::Failure,
            json!({"reason": e.reason(), "detail": e.to_string(), "ip": ip}),
        )
        .await?;
        tracing::info!(tenant = %t.slug, connection = %c.name, reason = e.reason(), detail = %e, "SAML logout message refused");
    }
    Ok(message_response(
        StatusCode::BAD_REQUEST,
        TITLE,
        "This sign-out request could not be accepted. Nothing was changed.",
    ))
}
