//! The authorization endpoint, its resume point after sign-in, and the consent page.
//!
//! The checked request is kept server-side in a pending interaction (30 minutes, bound to the
//! browser); the browser only carries its opaque reference. A code is issued once: the
//! interaction is taken when the flow ends, so a resume URL can't be replayed.

use super::{acr_of, client, issuer, lifetimes, query_params};
use crate::flow::audit::audit;
use crate::flow::session::signed_in;
use crate::flow::{csrf, email, factor, interaction};
use crate::state::AppState;
use crate::web::blocking::Blocking;
use crate::web::errors::AppError;
use crate::web::i18n::{self, Strings};
use crate::web::pages::message_response;
use crate::web::respond::{html, logo, see_other, strings_with};
use crate::web::tenant::InTenant;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use latchkey_core::{Client, NewAuditEvent, Session, Tenant, User};
use latchkey_oidc::authorize::{
    AuthorizationRequest, AuthorizeError, Next, ResponseMode, SignedIn, Target, check_authorization_request,
    next_step, query_url, response_params,
};
use latchkey_oidc::{ErrorCode, OAuthError, scope};
use latchkey_session::SessionId;
use latchkey_store::{Grant, NewCode, OAuthRepo};
use serde::{Deserialize, Serialize};
use serde_json::json;

mod terms;
pub(super) use terms::{decide as terms_decide, page as terms_page};

/// What the pending interaction holds for this flow.
#[derive(Serialize, Deserialize)]
struct Pending {
    request: AuthorizationRequest,
    /// Milliseconds: a sign-in after this happened during the request.
    started_at: i64,
}

/// GET or POST `/t/{tenant}/authorize`.
pub(super) async fn authorize(
    req: HttpRequest,
    InTenant(tenant): InTenant,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, AppError> {
    let params = match super::request_params(&req, payload).await {
        Ok(p) => p,
        Err((status, e)) => return Ok(error_page(status, &e)),
    };
    let named = latchkey_oidc::authorize::client_id(&params)
        .unwrap_or_default()
        .to_owned();
    let c = client(&state, &tenant, &named).await?;
    let request = match check_authorization_request(&params, c.as_ref()) {
        Ok(r) => r,
        Err(AuthorizeError::Page(e)) => {
            state.metrics.oauth("authorize", "code", e.code.as_str());
            return Ok(error_page(StatusCode::BAD_REQUEST, &e));
        }
        Err(AuthorizeError::Redirect(e, target)) => {
            state.metrics.oauth("authorize", "code", e.code.as_str());
            return respond(&state, &tenant, &target, Err(&e));
        }
    };
    let Some(c) = c else {
        return Err(AppError::internal("authorize", "checked request without client"));
    };
    let pending = Pending {
        request,
        started_at: state.clock.now_millis(),
    };
    proceed(&state, &req, &tenant, &c, pending, None).await
}

/// GET `/t/{tenant}/authorize/resume?interaction=…`: back from the sign-in page.
pub(super) async fn resume(
    req: HttpRequest,
    InTenant(tenant): InTenant,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let id = query_params(&req)
        .ok()
        .and_then(|p| p.get("interaction").cloned())
        .unwrap_or_default();
    let Some((pending, c)) = load(&state, &req, &tenant, &id).await? else {
        return Ok(expired_page(&req));
    };
    proceed(&state, &req, &tenant, &c, pending, Some(&id)).await
}

/// The pending request `id` of this browser and its client, if both still exist.
async fn load(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    id: &str,
) -> Result<Option<(Pending, Client)>, AppError> {
    let binding = interaction::binding(state, req, tenant, id);
    let Some(i) = interaction::load(state, tenant, id, binding.as_deref()).await? else {
        return Ok(None);
    };
    let Ok(pending) = serde_json::from_value::<Pending>(i.request) else {
        return Ok(None);
    };
    let c = client(state, tenant, &pending.request.client_id).await?;
    Ok(c.map(|c| (pending, c)))
}

fn expired_page(req: &HttpRequest) -> HttpResponse {
    let s = strings_with(req, None);
    message_response(
        StatusCode::BAD_REQUEST,
        s.request_error_title,
        s.interaction_expired,
    )
}

/// The page for errors that may not go to the redirect URI (RFC 6749 §4.1.2.1).
fn error_page(status: StatusCode, e: &OAuthError) -> HttpResponse {
    let s = &i18n::EN;
    let text = format!(
        "{} ({}: {})",
        s.request_error_intro,
        e.code.as_str(),
        e.description
    );
    message_response(status, s.request_error_title, &text)
}

/// The signed-in user must prove more (`acr_values`): the session is marked as owing its
/// factor and the browser goes there, coming back to this request afterwards.
async fn step_up(
    state: &AppState,
    req: &HttpRequest,
    (t, c): (&Tenant, &Client),
    pending: &Pending,
    interaction_id: Option<&str>,
    (sid, mut session, user): (SessionId, Session, User),
) -> Result<HttpResponse, AppError> {
    let Some(due) = factor::due_for_step_up(state, t, &user, session.created_at).await? else {
        // Nothing stronger to offer this user: the request's acr_values are voluntary.
        if email::owes_verified_email(t, &user) {
            return hold_for_email(state, req, (t, c), pending, interaction_id).await;
        }
        if terms::owed(state, t, &user).await?.is_some() {
            return terms::hold(state, req, (t, c), pending, interaction_id).await;
        }
        if !take(state, req, t, interaction_id).await? {
            return Ok(expired_page(req));
        }
        return issue_code(state, t, c, &pending.request, &sid, &session).await;
    };
    let (id, cookie) = if let Some(id) = interaction_id {
        (id.to_owned(), None)
    } else {
        let started = begin(state, req, t, c, pending).await?;
        (started.id, Some(started.cookie))
    };
    session.factor_due = Some(due);
    crate::flow::session::save(state, t, &sid, &session).await?;
    let resume = crate::web::urls::authorize_resume(&t.slug, Some(&id));
    let mut res = see_other(&factor::page_for(t, due, &resume));
    if let Some(cookie) = cookie {
        res.add_cookie(&cookie)
            .map_err(|e| AppError::internal("cookie", e))?;
    }
    Ok(res)
}

/// The consent page, in the pending interaction (started here when there is none yet).
async fn ask_consent(
    state: &AppState,
    req: &HttpRequest,
    (t, c): (&Tenant, &Client),
    pending: &Pending,
    interaction_id: Option<&str>,
    (sid, user): (&SessionId, &User),
) -> Result<HttpResponse, AppError> {
    if let Some(id) = interaction_id {
        return consent_page(state, req, t, c, &pending.request, user, sid, id, None);
    }
    let started = begin(state, req, t, c, pending).await?;
    consent_page(
        state,
        req,
        t,
        c,
        &pending.request,
        user,
        sid,
        &started.id,
        Some(&started.cookie),
    )
}

/// The scope the user already allowed the client, if any.
async fn consented_scope(
    state: &AppState,
    tenant: &Tenant,
    client: &Client,
    user: &User,
) -> Result<Option<String>, AppError> {
    let (tid, uid, cid) = (tenant.id.clone(), user.id.clone(), client.client_id.clone());
    Ok(state
        .store(move |db| db.consent(&tid, &uid, &cid))
        .await?
        .map(|consent| consent.scope))
}

/// Takes the next step of a checked request: sign-in, consent, a code, or an error.
async fn proceed(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    client: &Client,
    pending: Pending,
    interaction_id: Option<&str>,
) -> Result<HttpResponse, AppError> {
    let signed = signed_in(state, req, tenant)
        .await?
        .filter(|(_, s, _)| !s.must_change_password);
    let now = state.clock.now_millis();
    let consented = match &signed {
        Some((_, _, user)) => consented_scope(state, tenant, client, user).await?,
        None => None,
    };
    // Phishing-resistant passkeys come with the passkey engine; until then a second factor is
    // the strongest step-up on offer, so a request for `phr` settles for it rather than loop.
    let acr_met = |amr: &[String]| {
        latchkey_mfa::acr::satisfies(amr, &pending.request.acr_values) || amr.iter().any(|m| m == "mfa")
    };
    let view = signed.as_ref().map(|(_, s, _)| SignedIn {
        auth_time: s.auth_time / 1000,
        during_request: s.auth_time >= pending.started_at,
        acr_met: acr_met(&s.amr),
    });
    let next = next_step(
        &pending.request,
        view,
        consented.as_deref(),
        client.first_party,
        now / 1000,
    );
    let user = signed.as_ref().map(|(_, _, u)| u);
    if let Some(held) = hold_if_owed(
        state,
        req,
        (tenant, client),
        &pending,
        interaction_id,
        (user, &next),
    )
    .await?
    {
        return Ok(held);
    }
    match next {
        Next::SignIn => to_sign_in(state, req, (tenant, client), &pending, interaction_id).await,
        Next::StepUp => {
            let Some(signed) = signed else {
                return Err(AppError::internal("authorize", "step-up without a session"));
            };
            step_up(state, req, (tenant, client), &pending, interaction_id, signed).await
        }
        Next::Consent => {
            let Some((sid, _, user)) = signed else {
                return Err(AppError::internal("authorize", "consent without a session"));
            };
            ask_consent(
                state,
                req,
                (tenant, client),
                &pending,
                interaction_id,
                (&sid, &user),
            )
            .await
        }
        Next::Issue => {
            if !take(state, req, tenant, interaction_id).await? {
                return Ok(expired_page(req));
            }
            let Some((sid, s, _)) = signed else {
                return Err(AppError::internal("authorize", "issue without a session"));
            };
            issue_code(state, tenant, client, &pending.request, &sid, &s).await
        }
        Next::Refuse(e) => {
            if !take(state, req, tenant, interaction_id).await? {
                return Ok(expired_page(req));
            }
            state.metrics.oauth("authorize", "code", e.code.as_str());
            respond(state, tenant, &pending.request.target, Err(&e))
        }
    }
}

/// The sign-in page, in the pending interaction (started here when there is none yet).
async fn to_sign_in(
    state: &AppState,
    req: &HttpRequest,
    (tenant, client): (&Tenant, &Client),
    pending: &Pending,
    interaction_id: Option<&str>,
) -> Result<HttpResponse, AppError> {
    if let Some(id) = interaction_id {
        return Ok(see_other(&crate::web::urls::login(
            &tenant.slug,
            Some(&format!("interaction={id}")),
        )));
    }
    let started = begin(state, req, tenant, client, pending).await?;
    let mut res = see_other(&started.login_url(tenant));
    res.add_cookie(&started.cookie)
        .map_err(|e| AppError::internal("cookie", e))?;
    Ok(res)
}

/// Like a factor still due, an address still to verify or terms still to accept hold the flow
/// before consent and before a code: the client gets nothing for this user until they are
/// settled. The page that settles them, when one is owed.
async fn hold_if_owed(
    state: &AppState,
    req: &HttpRequest,
    (t, c): (&Tenant, &Client),
    pending: &Pending,
    interaction_id: Option<&str>,
    (user, next): (Option<&User>, &Next),
) -> Result<Option<HttpResponse>, AppError> {
    let Some(user) = user.filter(|_| matches!(next, Next::Consent | Next::Issue)) else {
        return Ok(None);
    };
    if email::owes_verified_email(t, user) {
        return hold_for_email(state, req, (t, c), pending, interaction_id)
            .await
            .map(Some);
    }
    if terms::owed(state, t, user).await?.is_some() {
        return terms::hold(state, req, (t, c), pending, interaction_id)
            .await
            .map(Some);
    }
    Ok(None)
}

/// The signed-in user must verify their address first (tenant policy `email.require_verified`):
/// the browser goes to the page that says so, coming back to this request afterwards, where the
/// check runs again.
async fn hold_for_email(
    state: &AppState,
    req: &HttpRequest,
    (t, c): (&Tenant, &Client),
    pending: &Pending,
    interaction_id: Option<&str>,
) -> Result<HttpResponse, AppError> {
    let page = |id: &str| email::page_for(t, &crate::web::urls::authorize_resume(&t.slug, Some(id)));
    let why = "the user must verify their email address first";
    hold(state, req, (t, c), pending, interaction_id, (why, &page)).await
}

/// Sends the browser to a page the user must settle before the flow goes on (`page` makes its
/// URL from the pending interaction's id; the interaction is started here when there is none
/// yet). `prompt=none` can show no page: the client gets `interaction_required` saying `why`.
async fn hold(
    state: &AppState,
    req: &HttpRequest,
    (t, c): (&Tenant, &Client),
    pending: &Pending,
    interaction_id: Option<&str>,
    (why, page): (&str, &dyn Fn(&str) -> String),
) -> Result<HttpResponse, AppError> {
    if pending.request.prompt.none {
        if !take(state, req, t, interaction_id).await? {
            return Ok(expired_page(req));
        }
        state.metrics.oauth("authorize", "code", "interaction_required");
        let e = OAuthError::new(ErrorCode::InteractionRequired, why);
        return respond(state, t, &pending.request.target, Err(&e));
    }
    let (id, cookie) = if let Some(id) = interaction_id {
        (id.to_owned(), None)
    } else {
        let started = begin(state, req, t, c, pending).await?;
        (started.id, Some(started.cookie))
    };
    let mut res = see_other(&page(&id));
    if let Some(cookie) = cookie {
        res.add_cookie(&cookie)
            .map_err(|e| AppError::internal("cookie", e))?;
    }
    Ok(res)
}

/// Starts the pending interaction, within the client address's cap on pending sign-ins.
async fn begin(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    client: &Client,
    pending: &Pending,
) -> Result<interaction::Started, AppError> {
    crate::flow::throttle::admit_pending(state, req, tenant).await?;
    let new = interaction::NewInteraction {
        resume: crate::web::urls::authorize_resume(&tenant.slug, None),
        login_hint: pending.request.login_hint.clone(),
        ui_locales: pending.request.ui_locales.clone(),
        client_name: Some(client.name.clone()),
        continues_to: Some(pending.request.target.redirect_uri.clone()),
        fresh_login: pending.request.prompt.login || pending.request.max_age.is_some(),
        request: serde_json::to_value(pending).map_err(|e| AppError::internal("interaction", e))?,
    };
    Ok(interaction::begin(state, tenant, new).await?)
}

/// Ends the pending interaction for good; false when another request already ended it.
async fn take(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    id: Option<&str>,
) -> Result<bool, AppError> {
    let Some(id) = id else { return Ok(true) };
    let binding = interaction::binding(state, req, tenant, id);
    Ok(interaction::finish(state, tenant, id, binding.as_deref())
        .await?
        .is_some())
}

#[derive(Template)]
#[template(path = "consent.html")]
struct ConsentPage<'a> {
    s: &'a Strings,
    slug: &'a str,
    tenant_name: &'a str,
    logo_url: Option<&'a str>,
    intro: String,
    scopes: Vec<String>,
    username: &'a str,
    csrf: String,
    interaction: &'a str,
}

#[allow(clippy::too_many_arguments)]
fn consent_page(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    c: &Client,
    r: &AuthorizationRequest,
    user: &User,
    sid: &SessionId,
    interaction_id: &str,
    cookie: Option<&actix_web::cookie::Cookie<'static>>,
) -> Result<HttpResponse, AppError> {
    let s = strings_with(req, r.ui_locales.as_deref());
    let page = ConsentPage {
        s,
        slug: &tenant.slug,
        tenant_name: &tenant.display_name,
        logo_url: logo(tenant),
        intro: s.consent_intro.replace("{client}", &c.name),
        scopes: r.scope.iter().map(|sc| i18n::describe(s, sc)).collect(),
        username: user.display_name.as_deref().unwrap_or(&user.username),
        csrf: csrf::token_for(sid.cookie_value()),
        interaction: interaction_id,
    };
    let mut res = html(state, req, StatusCode::OK, page.render())?;
    crate::web::observe::allow_form_action(&mut res, &r.target.redirect_uri);
    if let Some(c) = cookie {
        res.add_cookie(c).map_err(|e| AppError::internal("cookie", e))?;
    }
    Ok(res)
}

/// A form answered inside a pending interaction (consent, terms): its id, the signed-in session
/// and the request with its client.
struct InteractionForm {
    id: String,
    signed: (SessionId, Session, User),
    pending: Pending,
    client: Client,
}

/// The form's session, CSRF-checked against it (403 otherwise), and its pending interaction;
/// `None` when the session or the interaction is gone (the expired page).
async fn interaction_form(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    form: &crate::web::form::FormParams,
) -> Result<Option<InteractionForm>, AppError> {
    let id = form.get("interaction").unwrap_or_default().to_owned();
    let Some(signed) = signed_in(state, req, tenant).await? else {
        return Ok(None);
    };
    if !csrf::check(state, req, Some(signed.0.cookie_value()), form.get("csrf")) {
        return Err(AppError::new(
            crate::web::errors::Kind::Forbidden,
            strings_with(req, None).form_expired,
        ));
    }
    Ok(load(state, req, tenant, &id)
        .await?
        .map(|(pending, client)| InteractionForm {
            id,
            signed,
            pending,
            client,
        }))
}

/// POST `/t/{tenant}/authorize/consent`: Allow or Deny.
pub(super) async fn consent(
    req: HttpRequest,
    InTenant(tenant): InTenant,
    state: web::Data<AppState>,
    form: crate::web::form::FormParams,
) -> Result<HttpResponse, AppError> {
    let Some(InteractionForm {
        id,
        signed: (sid, s, user),
        pending,
        client: c,
    }) = interaction_form(&state, &req, &tenant, &form).await?
    else {
        return Ok(expired_page(&req));
    };
    // Allowing still needs the verified address; denying never does.
    if form.get("decision") == Some("allow") && email::owes_verified_email(&tenant, &user) {
        return hold_for_email(&state, &req, (&tenant, &c), &pending, Some(&id)).await;
    }
    if form.get("decision") == Some("allow") && terms::owed(&state, &tenant, &user).await?.is_some() {
        return terms::hold(&state, &req, (&tenant, &c), &pending, Some(&id)).await;
    }
    if !take(&state, &req, &tenant, Some(&id)).await? {
        return Ok(expired_page(&req));
    }
    let r = &pending.request;
    if form.get("decision") != Some("allow") {
        let who = format!("user:{}", user.id);
        audit(
            &state,
            &tenant,
            NewAuditEvent::failure(
                &who,
                "consent.deny",
                format!("client:{}", c.client_id),
                json!({"scope": scope::join(&r.scope)}),
            ),
        )
        .await?;
        state.metrics.oauth("consent", "code", "access_denied");
        let e = OAuthError::new(ErrorCode::AccessDenied, "the user denied the request");
        return respond(&state, &tenant, &r.target, Err(&e));
    }
    let (tid, uid, cid, granted) = (
        tenant.id.clone(),
        user.id.clone(),
        c.client_id.clone(),
        scope::join(&r.scope),
    );
    state
        .store(move |db| db.save_consent(&tid, &uid, &cid, &granted))
        .await?;
    state.metrics.oauth("consent", "code", "ok");
    issue_code(&state, &tenant, &c, r, &sid, &s).await
}

/// Stores a grant and its code, and sends the code to the client.
async fn issue_code(
    state: &AppState,
    tenant: &Tenant,
    c: &Client,
    r: &AuthorizationRequest,
    sid: &SessionId,
    session: &Session,
) -> Result<HttpResponse, AppError> {
    let now = state.clock.now_millis();
    let life = lifetimes(tenant, c);
    let code = latchkey_core::random_token(&*state.rng, 32);
    let acr = session.acr.clone().or_else(|| acr_of(&session.amr));
    let grant = Grant {
        id: latchkey_core::random_uuid(&*state.rng),
        client_id: c.client_id.clone(),
        user_id: session.user_id.clone(),
        session_key: Some(sid.storage_key()),
        scope: scope::join(&r.scope),
        auth_time: session.auth_time,
        acr,
        amr: session.amr.clone(),
        created_at: now,
        expires_at: now + life.refresh_absolute_secs * 1000,
        revoked_at: None,
    };
    let new_code = NewCode {
        code_hash: latchkey_core::sha256_hex(code.as_bytes()),
        redirect_uri: r.target.redirect_uri.clone(),
        code_challenge: r.code_challenge.clone(),
        nonce: r.nonce.clone(),
        expires_at: now + life.code_secs * 1000,
    };
    let event = NewAuditEvent::success(
        &format!("user:{}", session.user_id),
        "oauth.authorize",
        format!("client:{}", c.client_id),
        json!({"grant": grant.id, "scope": grant.scope}),
    );
    let tid = tenant.id.clone();
    state
        .store(move |db| db.create_code(&tid, &grant, &new_code, event))
        .await?;
    state.metrics.oauth("authorize", "code", "ok");
    respond(state, tenant, &r.target, Ok(&code))
}

/// The authorization response (RFC 6749 §4.1.2, RFC 9207 `iss`), by query or form post.
pub(super) fn respond(
    state: &AppState,
    tenant: &Tenant,
    target: &Target,
    result: Result<&str, &OAuthError>,
) -> Result<HttpResponse, AppError> {
    let params = response_params(&issuer(state, tenant), target, result);
    match target.response_mode {
        ResponseMode::Query => Ok(HttpResponse::SeeOther()
            .insert_header((header::LOCATION, query_url(&target.redirect_uri, &params)))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .finish()),
        ResponseMode::FormPost => crate::web::respond::form_post(&target.redirect_uri, &params),
    }
}
