//! RP-initiated logout (`end_session_endpoint`). A request with a valid `id_token_hint` for the
//! signed-in user ends the session at once; any other request is confirmed by the user first,
//! so a link can't sign people out. Grants made in the session end with it (unless offline).

use super::{client, issuer};
use crate::flow::audit::audit;
use crate::flow::csrf;
use crate::flow::frontchannel;
use crate::flow::grants::{Owned, revoke_grants};
use crate::flow::session::{self, signed_in};
use crate::state::AppState;
use crate::web::errors::AppError;
use crate::web::i18n::Strings;
use crate::web::pages::message_response as page;
use crate::web::respond::{html, logo, see_other, strings_with};
use crate::web::tenant::InTenant;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use latchkey_core::{Client, NewAuditEvent, Tenant, UserId};
use latchkey_keys::jwt::Expect;
use latchkey_oidc::logout::{LogoutRequest, after_logout_url, check_logout_request, client_id};
use serde_json::{Value, json};

#[derive(Template)]
#[template(path = "logout.html")]
struct ConfirmPage<'a> {
    s: &'a Strings,
    slug: &'a str,
    tenant_name: &'a str,
    logo_url: Option<&'a str>,
    question: String,
    csrf: String,
    carry: Vec<(&'static str, String)>,
}

/// An `id_token_hint` of this tenant: signature and issuer checked, expiry tolerated
/// (RP-Initiated Logout §2: the hint may well have expired).
fn verify_hint(state: &AppState, tenant: &Tenant, token: &str) -> Option<Value> {
    let iss = issuer(state, tenant);
    let expect = Expect {
        issuer: &iss,
        audience: None,
        typ: Some("JWT"),
        now: state.clock.now_millis() / 1000,
        leeway_secs: 400 * 86_400,
    };
    state.keys.verify(&tenant.id, token, &expect).ok()
}

/// Whether the request's valid `id_token_hint` names `user` as the hint's client `c` knows
/// them (OIDC Core §8: their id, or its pairwise value for a pairwise client).
async fn hint_names(
    state: &AppState,
    tenant: &Tenant,
    lr: &LogoutRequest,
    c: Option<&Client>,
    user: &UserId,
) -> Result<bool, AppError> {
    let Some(sub) = lr.hint_sub.as_deref() else {
        return Ok(false);
    };
    Ok(match c {
        Some(c) => crate::flow::subject::subject(state, tenant, c, user).await? == sub,
        None => sub == user.as_str(),
    })
}

/// GET or POST `/t/{tenant}/end-session`.
pub(super) async fn end_session(
    req: HttpRequest,
    InTenant(tenant): InTenant,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, AppError> {
    let s = strings_with(&req, None);
    let posted = req.method() == actix_web::http::Method::POST;
    let p = match super::request_params(&req, payload).await {
        Ok(p) => p,
        Err((status, e)) => return Ok(page(status, s.request_error_title, &e.description)),
    };
    let hint = p
        .get("id_token_hint")
        .and_then(|h| verify_hint(&state, &tenant, h));
    let named = client_id(&p, hint.as_ref()).unwrap_or_default().to_owned();
    let c = client(&state, &tenant, &named).await?;
    let lr = match check_logout_request(&p, hint.as_ref(), c.as_ref()) {
        Ok(r) => r,
        Err(e) => {
            let text = format!("{} ({})", s.request_error_intro, e.description);
            return Ok(page(StatusCode::BAD_REQUEST, s.request_error_title, &text));
        }
    };
    let s = strings_with(&req, lr.ui_locales.as_deref());
    let current = signed_in(&state, &req, &tenant).await?;
    let mut frames = Vec::new();
    let mut saml_slo = None;
    if let Some((sid, session_data, user)) = &current {
        let trusted = hint_names(&state, &tenant, &lr, c.as_ref(), &user.id).await?;
        let confirmed = posted
            && p.get("confirm").map(String::as_str) == Some("yes")
            && csrf::check(
                &state,
                &req,
                Some(sid.cookie_value()),
                p.get("csrf").map(String::as_str),
            );
        if !trusted && !confirmed {
            return confirm_page(&state, &req, &tenant, s, sid, &lr);
        }
        let key = sid.storage_key();
        frames = frontchannel::urls(&state, &tenant, &session_data.user_id, &key).await?;
        state.ephemeral.delete_session(&tenant.id, sid).await?;
        revoke_grants(&state, &tenant, Owned::Session(key), "logout").await?;
        let who = format!("user:{}", session_data.user_id);
        audit(
            &state,
            &tenant,
            NewAuditEvent::success(
                &who,
                "logout",
                who.clone(),
                json!({"via": "end_session", "client": lr.client_id}),
            ),
        )
        .await?;
        state.metrics.oauth("logout", "end_session", "ok");
        // The session came from a SAML IdP: the browser ends the IdP's session too, then
        // comes back to where the logout was going.
        saml_slo =
            crate::flow::saml_logout::begin(&state, &tenant, session_data, after_logout_url(&lr)).await?;
    }
    let next = saml_slo.or_else(|| after_logout_url(&lr));
    let mut res = if frames.is_empty() {
        match next {
            Some(url) => see_other(&url),
            None => page(StatusCode::OK, s.logout_title, s.signed_out),
        }
    } else {
        frontchannel::page(&state, &req, &tenant, s, &frames, next)?
    };
    res.add_cookie(&crate::web::cookies::removal(
        &state,
        session::cookie_name(&state, &tenant),
    ))
    .map_err(|e| AppError::internal("cookie", e))?;
    Ok(res)
}

/// Asks the signed-in person whether to sign out (OIDC RP-Initiated Logout §3: without a hint
/// naming them, a logout request is only a request), carrying the request's parameters.
fn confirm_page(
    state: &AppState,
    req: &HttpRequest,
    t: &Tenant,
    strings: &'static Strings,
    sid: &latchkey_session::SessionId,
    lr: &LogoutRequest,
) -> Result<HttpResponse, AppError> {
    let mut carry = Vec::new();
    for (name, value) in [
        ("client_id", lr.client_id.clone()),
        ("post_logout_redirect_uri", lr.post_logout_redirect_uri.clone()),
        ("state", lr.state.clone()),
        ("ui_locales", lr.ui_locales.clone()),
    ] {
        if let Some(v) = value {
            carry.push((name, v));
        }
    }
    let confirm = ConfirmPage {
        s: strings,
        slug: &t.slug,
        tenant_name: &t.display_name,
        logo_url: logo(t),
        question: strings.logout_confirm.replace("{tenant}", &t.display_name),
        csrf: csrf::token_for(sid.cookie_value()),
        carry,
    };
    let mut res = html(state, req, StatusCode::OK, confirm.render())?;
    if let Some(dest) = &lr.post_logout_redirect_uri {
        crate::web::observe::allow_form_action(&mut res, dest);
    }
    Ok(res)
}
