//! Test sign-ins (issue 22, SAML onboarding): the tenant's administrator runs the real flow
//! against the IdP in a new window and reads what came back in the console, without anyone
//! being signed in, provisioned, linked or given roles.
//!
//! The admin API makes a test (`flow::saml_test::create`): a record under a random public
//! handle (its `id`) and a separate one-time `start` token that only the creating console
//! holds. The console's window posts that token to `/t/{tenant}/saml/{connection}/test`
//! ([`start`]), which begins an ordinary SP-initiated sign-in whose pending record names the
//! test. The ACS recognises the test by that record (never by anything the IdP sends),
//! validates the response with the same code as a sign-in, and records the decoded assertion
//! ([`succeeded`]) or the refusal with its audit reason and a hint ([`refused`]) instead of
//! signing in.

use super::{
    Begin, Refusal, begin, email_of, idp_groups, mapped, mapped_groups, mapped_roles, named, sp_urls,
};
use crate::flow::saml_test::{
    AssertionSummary, AttributeValues, RefusalSummary, SigningCertificate, save_outcome, take_start,
};
use crate::state::AppState;
use crate::web::blocking::Blocking;
use crate::web::errors::AppError;
use crate::web::i18n::Strings;
use crate::web::respond::{html, logo, strings};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use latchkey_core::{NewAuditEvent, Outcome, SamlConnection, Tenant};
use latchkey_saml::Assertion;
use latchkey_store::SamlRepo;
use serde_json::json;

/// `POST /t/{tenant}/saml/{connection}/test` with the form field `start`: the console's window
/// begins the test's sign-in. The token is taken once; a cross-site post is refused.
pub(crate) async fn start(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let (t, c) = named(&state, path).await?;
    let s = strings(&req);
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let token = crate::web::form::parse_form(content_type, &body, 4096)
        .ok()
        .and_then(|f| f.get("start").map(str::to_owned))
        .filter(|v| v.len() == 43);
    let test = match token {
        Some(token) if crate::flow::csrf::same_origin(&state, &req) => {
            take_start(&state, &t, &c, &token).await?
        }
        _ => None,
    };
    let Some(test) = test else {
        return page(
            &state,
            &req,
            &t,
            StatusCode::BAD_REQUEST,
            s.saml_test_title,
            s.saml_test_invalid,
        );
    };
    let b = Begin {
        resume: None,
        force_authn: false,
        test: Some(test.id),
    };
    begin(&state, &req, &t, &c, b).await
}

/// The finished (or invalid) test's page, in the tenant's look.
#[derive(Template)]
#[template(path = "saml_test.html")]
struct TestPage<'a> {
    s: &'a Strings,
    slug: &'a str,
    tenant_name: &'a str,
    logo_url: Option<&'a str>,
    title: &'a str,
    message: String,
}

fn page(
    state: &AppState,
    req: &HttpRequest,
    t: &Tenant,
    status: StatusCode,
    title: &str,
    message: &str,
) -> Result<HttpResponse, AppError> {
    let p = TestPage {
        s: strings(req),
        slug: &t.slug,
        tenant_name: &t.display_name,
        logo_url: logo(t),
        title,
        message: message.to_owned(),
    };
    html(state, req, status, p.render())
}

fn finished_page(
    state: &AppState,
    req: &HttpRequest,
    t: &Tenant,
    c: &SamlConnection,
) -> Result<HttpResponse, AppError> {
    let s = strings(req);
    let message = s.saml_test_done.replace("{connection}", &c.display_name);
    page(state, req, t, StatusCode::OK, s.saml_test_title, &message)
}

/// Stores the outcome in the test's record (if it is still kept) and audits `saml.test`.
async fn finish(
    state: &AppState,
    t: &Tenant,
    c: &SamlConnection,
    id: &str,
    outcome: Result<AssertionSummary, RefusalSummary>,
) -> Result<(), AppError> {
    let result = if outcome.is_ok() {
        Outcome::Success
    } else {
        Outcome::Failure
    };
    let details = match &outcome {
        Ok(a) => json!({"connection": c.name, "test": id, "outcome": "succeeded", "name_id": a.name_id}),
        Err(r) => {
            json!({"connection": c.name, "test": id, "outcome": "refused", "reason": r.reason, "detail": r.detail})
        }
    };
    save_outcome(state, t, c, id, outcome).await?;
    crate::flow::audit::audit(
        state,
        t,
        NewAuditEvent {
            actor: format!("saml:{}", c.name),
            action: "saml.test".into(),
            target: format!("saml:{}", c.id),
            outcome: result,
            details,
        },
    )
    .await?;
    state.metrics.saml(
        "test",
        if result == Outcome::Success {
            "ok"
        } else {
            "refused"
        },
    );
    Ok(())
}

/// A test's response passed validation: its summary is recorded; nobody is signed in.
pub(super) async fn succeeded(
    state: &AppState,
    req: &HttpRequest,
    t: &Tenant,
    c: &SamlConnection,
    a: &Assertion,
    id: &str,
) -> Result<HttpResponse, AppError> {
    let (tid, cid, nid) = (t.id.clone(), c.id.clone(), a.name_id.clone());
    let linked = state.store(move |db| db.saml_identity(&tid, &cid, &nid)).await?;
    let summary = summarize(state, t, c, a, linked.map(|u| u.to_string()));
    finish(state, t, c, id, Ok(summary)).await?;
    finished_page(state, req, t, c)
}

/// A test's response was refused: the reason (as a sign-in's audit event gives it) and a
/// hint are recorded. The refusal counts against the address like any other.
pub(super) async fn refused(
    state: &AppState,
    req: &HttpRequest,
    t: &Tenant,
    c: &SamlConnection,
    (id, refusals): (&str, &crate::flow::throttle::RefusalCap),
    refusal: &Refusal,
) -> Result<HttpResponse, AppError> {
    refusals.count(state, t).await?;
    let summary = RefusalSummary {
        reason: refusal.reason().to_owned(),
        detail: refusal.detail(),
        hint: hint(state, t, c, refusal.reason()),
    };
    finish(state, t, c, id, Err(summary)).await?;
    finished_page(state, req, t, c)
}

fn summarize(
    state: &AppState,
    t: &Tenant,
    c: &SamlConnection,
    a: &Assertion,
    linked_user: Option<String>,
) -> AssertionSummary {
    let now = state.clock.now_millis();
    let (entity_id, _) = sp_urls(state, &t.slug, &c.name);
    let groups = idp_groups(c, a);
    #[allow(clippy::cast_precision_loss)] // milliseconds of clock difference
    let time_skew_seconds = a.issue_instant.map(|i| (now - i) as f64 / 1000.0);
    AssertionSummary {
        issuer: a.issuer.clone(),
        name_id: a.name_id.clone(),
        name_id_format: a.name_id_format.clone(),
        session_index: a.session_index.clone(),
        authn_context: a.authn_context.clone(),
        authn_instant: a.authn_instant,
        issue_instant: a.issue_instant,
        time_skew_seconds,
        audience: entity_id,
        in_response_to: a.in_response_to.clone(),
        response_signed: a.response_signed,
        assertion_signed: a.assertion_signed,
        encrypted: a.encrypted,
        signing_certificate: c
            .idp
            .certificates
            .get(a.signer)
            .and_then(|der| latchkey_saml::certs::info(der).ok())
            .map(|i| SigningCertificate {
                subject: i.subject,
                sha256: i.sha256,
                not_after: i.not_after,
            }),
        attributes: a
            .attributes
            .iter()
            .map(|x| AttributeValues {
                name: x.name.clone(),
                friendly_name: x.friendly_name.clone(),
                values: x.values.clone(),
            })
            .collect(),
        roles: mapped_roles(c, &groups),
        mapped_groups: mapped_groups(c, &groups),
        groups,
        email: email_of(a, c),
        display_name: mapped(a, c.options.mapping.name.as_deref()),
        multi_factor: a.multi_factor(),
        linked_user,
    }
}

/// What to change at the IdP for a refusal `reason` (the audit event's code).
pub(crate) fn hint(state: &AppState, t: &Tenant, c: &SamlConnection, reason: &str) -> String {
    let (entity_id, acs_url) = sp_urls(state, &t.slug, &c.name);
    match reason {
        "audience" => format!(
            "Set the Entity ID (Identifier, Audience URI) of the application at the IdP to {entity_id}."
        ),
        "destination" | "recipient" | "bad_form" => format!(
            "Set the Reply URL (Assertion Consumer Service URL) at the IdP to {acs_url}, with the HTTP-POST binding."
        ),
        "unsigned" => "Have the IdP sign the assertion or the response (or both) with the signing certificate in its metadata.".into(),
        "bad_signature" | "certificate" => "The signature does not verify with the certificates of this connection's metadata: refresh the metadata (or upload the IdP's current metadata) after the IdP changed its signing certificate.".into(),
        "signature_shape" | "weak_algorithm" => "Sign with RSA-SHA256 (or stronger) and SHA-256 digests, exclusive canonicalization, one enveloped signature; SHA-1 is refused.".into(),
        "issuer" => format!(
            "The response's Issuer must be the IdP entity id in this connection's metadata ({}): re-import the IdP's metadata if it changed.",
            c.idp.entity_id
        ),
        "expired" | "not_yet_valid" => "Check the IdP server's clock (it must be within 90 seconds of the correct time) and that its assertions are valid for at least a few minutes.".into(),
        "in_response_to" | "unsolicited" => "The response does not answer this test's request: have the IdP answer the AuthnRequest it received (SP-initiated sign-in) with its ID in InResponseTo.".into(),
        "status" => "The IdP refused the sign-in itself (see the detail): check that the test user is assigned to the application at the IdP.".into(),
        "cipher_not_allowed" => "Encrypt assertions with AES-GCM (aes256-gcm or aes128-gcm); CBC is accepted only with the connection's legacy_cbc option.".into(),
        "decryption" => format!(
            "Encrypt assertions with the certificate in this connection's SP metadata ({entity_id}), or turn assertion encryption off."
        ),
        "subject" => format!(
            "Send a NameID in the Subject with a bearer SubjectConfirmation whose Recipient is {acs_url}."
        ),
        "replayed" => "Each assertion is accepted once: start a new test.".into(),
        "wrong_connection" => "The response came back to another connection's Reply URL: check the Reply URL at the IdP.".into(),
        _ => "The IdP sent a response Latchkey cannot accept (see the detail): send one SAML 2.0 Response with one signed assertion over the HTTP-POST binding.".into(),
    }
}
