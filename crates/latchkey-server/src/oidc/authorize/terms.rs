//! The tenant's terms of service in the authorization flow (docs/privacy.md): like a verified
//! address, accepting the version in force is owed before consent and before a code. The page
//! shows the version and a link to its text; accepting records it (`terms.accept`, the ledger)
//! and continues the request, declining ends it with `access_denied`.

use super::{
    AppState, Client, InteractionForm, Pending, Tenant, User, expired_page, interaction_form, load, respond,
    take,
};
use crate::flow::audit::audit;
use crate::flow::csrf;
use crate::flow::session::signed_in;
use crate::web::blocking::Blocking;
use crate::web::errors::AppError;
use crate::web::i18n::Strings;
use crate::web::i18n_privacy::{self, PrivacyStrings};
use crate::web::respond::{html, logo, see_other, strings_with};
use crate::web::tenant::InTenant;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use latchkey_core::NewAuditEvent;
use latchkey_oidc::{ErrorCode, OAuthError};
use latchkey_store::TermsRepo;
use serde_json::json;

/// The version `user` must still accept before the flow goes on, if any.
pub(super) async fn owed(state: &AppState, tenant: &Tenant, user: &User) -> Result<Option<String>, AppError> {
    let Some(version) = tenant.policy.terms.version.clone() else {
        return Ok(None);
    };
    let (tid, uid) = (tenant.id.clone(), user.id.clone());
    let accepted = state.store(move |db| db.accepted_terms(&tid, &uid)).await?;
    Ok((accepted.map(|(v, _)| v).as_deref() != Some(version.as_str())).then_some(version))
}

/// Sends the browser to the terms page, coming back to this request afterwards.
pub(super) async fn hold(
    state: &AppState,
    req: &HttpRequest,
    (t, c): (&Tenant, &Client),
    pending: &Pending,
    interaction_id: Option<&str>,
) -> Result<HttpResponse, AppError> {
    let page = |id: &str| format!("/t/{}/authorize/terms?interaction={id}", t.slug);
    let why = "the user must accept the terms of service first";
    super::hold(state, req, (t, c), pending, interaction_id, (why, &page)).await
}

#[derive(Template)]
#[template(path = "terms.html")]
struct TermsPage<'a> {
    s: &'a Strings,
    p: &'a PrivacyStrings,
    slug: &'a str,
    tenant_name: &'a str,
    logo_url: Option<&'a str>,
    intro: String,
    changed: bool,
    url: &'a str,
    version: &'a str,
    csrf: String,
    interaction: &'a str,
}

/// GET `/t/{tenant}/authorize/terms?interaction=…`.
pub(in crate::oidc) async fn page(
    req: HttpRequest,
    InTenant(tenant): InTenant,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let id = super::query_params(&req)
        .ok()
        .and_then(|p| p.get("interaction").cloned())
        .unwrap_or_default();
    let (Some((sid, _, user)), Some((pending, c))) = (
        signed_in(&state, &req, &tenant).await?,
        load(&state, &req, &tenant, &id).await?,
    ) else {
        return Ok(expired_page(&req));
    };
    let Some(version) = owed(&state, &tenant, &user).await? else {
        // Accepted meanwhile (another tab), or the tenant dropped its terms: carry on.
        return Ok(see_other(&crate::web::urls::authorize_resume(
            &tenant.slug,
            Some(&id),
        )));
    };
    let (tid, uid) = (tenant.id.clone(), user.id.clone());
    let changed = state
        .store(move |db| db.accepted_terms(&tid, &uid))
        .await?
        .is_some();
    let s = strings_with(&req, pending.request.ui_locales.as_deref());
    let p = i18n_privacy::of(s);
    let page = TermsPage {
        s,
        p,
        slug: &tenant.slug,
        tenant_name: &tenant.display_name,
        logo_url: logo(&tenant),
        intro: p
            .terms_intro
            .replace("{tenant}", &tenant.display_name)
            .replace("{client}", &c.name),
        changed,
        url: tenant.policy.terms.url.as_deref().unwrap_or_default(),
        version: &version,
        csrf: csrf::token_for(sid.cookie_value()),
        interaction: &id,
    };
    let mut res = html(&state, &req, StatusCode::OK, page.render())?;
    crate::web::observe::allow_form_action(&mut res, &pending.request.target.redirect_uri);
    Ok(res)
}

/// POST `/t/{tenant}/authorize/terms`: accept (the version shown, if still in force) or decline.
pub(in crate::oidc) async fn decide(
    req: HttpRequest,
    InTenant(tenant): InTenant,
    state: web::Data<AppState>,
    form: crate::web::form::FormParams,
) -> Result<HttpResponse, AppError> {
    let Some(InteractionForm {
        id,
        signed: (_, _, user),
        pending,
        ..
    }) = interaction_form(&state, &req, &tenant, &form).await?
    else {
        return Ok(expired_page(&req));
    };
    let current = tenant.policy.terms.version.clone();
    if form.get("decision") != Some("accept") {
        if !take(&state, &req, &tenant, Some(&id)).await? {
            return Ok(expired_page(&req));
        }
        let who = format!("user:{}", user.id);
        let details = json!({"version": current, "client_id": pending.request.client_id});
        audit(
            &state,
            &tenant,
            NewAuditEvent::failure(&who, "terms.decline", who.clone(), details),
        )
        .await?;
        state.metrics.oauth("authorize", "code", "access_denied");
        let e = OAuthError::new(ErrorCode::AccessDenied, "the user declined the terms of service");
        return respond(&state, &tenant, &pending.request.target, Err(&e));
    }
    // Only the version the page showed, and only while it is in force: a change in between
    // shows the new text instead of recording an acceptance of what was not read.
    if let Some(version) = current.filter(|v| form.get("version") == Some(v.as_str())) {
        let (tid, uid) = (tenant.id.clone(), user.id.clone());
        state
            .store(move |db| db.accept_terms(&tid, &uid, &version))
            .await?;
    }
    Ok(see_other(&crate::web::urls::authorize_resume(
        &tenant.slug,
        Some(&id),
    )))
}
