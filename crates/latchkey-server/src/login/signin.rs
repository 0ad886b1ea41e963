//! The sign-in page and sign-out.

use super::throttle::{Gate, Throttle};
use super::{
    AppError, Strings, audit, client_ip, csrf, failure, find_user, interaction, presession_csrf_ok,
    redirect_signed_out, retry_after, safe_return_to, session, strings, strings_with, with_presession,
};
use crate::flow::complete::{Attempt, Completion, Method, complete};
use crate::state::AppState;
use crate::web::blocking::Blocking;
use crate::web::form::FormParams;
use crate::web::tenant::InTenant;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use interaction::Interaction;
use latchkey_core::{NewAuditEvent, Tenant, UserStatus};
use latchkey_mfa::PasswordError;
use serde_json::json;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    s: &'a Strings,
    slug: &'a str,
    tenant_name: &'a str,
    logo_url: Option<&'a str>,
    csrf: String,
    return_to: &'a str,
    interaction: &'a str,
    client_name: Option<&'a str>,
    username: &'a str,
    error: Option<String>,
    notice: Option<&'a str>,
    /// "Sign in with …" links: (href, connection display name).
    saml: Vec<(String, String)>,
}

/// What the sign-in form shows besides the tenant.
struct Form<'a> {
    return_to: &'a str,
    /// The pending interaction's reference and record, when another flow sent the user here.
    interaction: Option<(&'a str, &'a Interaction)>,
    username: &'a str,
    error: Option<String>,
    notice: Option<&'a str>,
}

async fn render(
    state: &AppState,
    req: &HttpRequest,
    t: &Tenant,
    status: StatusCode,
    f: Form<'_>,
) -> Result<HttpResponse, AppError> {
    let pending = f.interaction.map(|(_, i)| i);
    let connections = crate::flow::realm::connections(state, t).await?;
    let saml = connections
        .iter()
        .map(|c| {
            (
                crate::flow::realm::start_url(t, c, f.interaction.map(|(id, _)| id)),
                c.display_name.clone(),
            )
        })
        .collect();
    let mut res = with_presession(state, req, t, status, |csrf| {
        LoginPage {
            s: strings_with(req, pending.and_then(|i| i.ui_locales.as_deref())),
            slug: &t.slug,
            tenant_name: &t.display_name,
            logo_url: super::logo(t),
            csrf,
            return_to: f.return_to,
            interaction: f.interaction.map_or("", |(id, _)| id),
            client_name: pending.and_then(|i| i.client_name.as_deref()),
            username: f.username,
            error: f.error,
            notice: f.notice,
            saml,
        }
        .render()
    })?;
    if let Some(dest) = pending.and_then(|i| i.continues_to.as_deref()) {
        crate::web::observe::allow_form_action(&mut res, dest);
    }
    // Home-realm discovery answers the form with redirects on to the IdP (`form-action`
    // covers every hop).
    for c in connections.iter().filter(|c| !c.options.domains.is_empty()) {
        crate::web::observe::allow_form_action(&mut res, &c.idp.sso_url);
    }
    Ok(res)
}

/// The interaction a sign-in request names: `Ok(None)` without one, `Err(page)` when it names
/// one that is unknown, expired or another browser's.
async fn pending(
    state: &AppState,
    req: &HttpRequest,
    t: &Tenant,
    id: Option<&str>,
) -> Result<Result<Option<Interaction>, HttpResponse>, AppError> {
    let Some(id) = id.filter(|i| !i.is_empty()) else {
        return Ok(Ok(None));
    };
    let binding = interaction::binding(state, req, t, id);
    if let Some(i) = interaction::load(state, t, id, binding.as_deref()).await? {
        return Ok(Ok(Some(i)));
    }
    let form = Form {
        return_to: &safe_return_to(t, None),
        interaction: None,
        username: "",
        error: Some(strings(req).interaction_expired.into()),
        notice: None,
    };
    Ok(Err(render(state, req, t, StatusCode::BAD_REQUEST, form).await?))
}

pub(super) async fn login_page(
    req: HttpRequest,
    InTenant(t): InTenant,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let q = web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string()).ok();
    let param = |name: &str| q.as_ref().and_then(|q| q.get(name)).map(String::as_str);
    let id = param("interaction");
    let pending = match pending(&state, &req, &t, id).await? {
        Ok(p) => p,
        Err(page) => return Ok(page),
    };
    let s = strings(&req);
    let notice = if param("signed_out").is_some() {
        Some(s.signed_out)
    } else {
        param("reset").map(|_| s.reset_done)
    };
    let return_to = safe_return_to(&t, param("return_to"));
    let form = Form {
        return_to: &return_to,
        interaction: id.zip(pending.as_ref()),
        username: pending
            .as_ref()
            .and_then(|i| i.login_hint.as_deref())
            .unwrap_or_default(),
        error: None,
        notice,
    };
    render(&state, &req, &t, StatusCode::OK, form).await
}

pub(super) async fn login_submit(
    req: HttpRequest,
    InTenant(t): InTenant,
    state: web::Data<AppState>,
    form: FormParams,
) -> Result<HttpResponse, AppError> {
    let id = form.get("interaction");
    let pending = match pending(&state, &req, &t, id).await? {
        Ok(p) => p,
        Err(page) => return Ok(page),
    };
    let s = strings_with(&req, pending.as_ref().and_then(|i| i.ui_locales.as_deref()));
    let username = form.get("username").unwrap_or_default().trim();
    let password = form.get("password").unwrap_or_default();
    let return_to = safe_return_to(&t, form.get("return_to"));
    let again = |error: String| Form {
        return_to: &return_to,
        interaction: id.zip(pending.as_ref()),
        username,
        error: Some(error),
        notice: None,
    };

    if !presession_csrf_ok(&state, &req, &t, form.get("csrf")) {
        return render(
            &state,
            &req,
            &t,
            StatusCode::FORBIDDEN,
            again(s.form_expired.into()),
        )
        .await;
    }
    // Home-realm discovery: an address in a domain a SAML connection claims signs in there,
    // unless it names a local account with a password and one was typed (break-glass admins).
    if username.contains('@')
        && let Some(c) = crate::flow::realm::for_email(&state, &t, username).await?
    {
        let local = find_user(&state, &t, username).await?;
        if password.is_empty() || local.as_ref().is_none_or(|u| u.password_hash.is_none()) {
            return Ok(super::see_other(&crate::flow::realm::start_url(&t, &c, id)));
        }
    }
    // An unknown user still costs a full hash (below), so time does not tell (L7).
    let user = find_user(&state, &t, username).await?;
    // Throttled per account (whichever name was typed) or, for unknown names, per name typed.
    let account = user
        .as_ref()
        .map_or_else(|| username.to_lowercase(), |u| format!("id:{}", u.id));
    let target = user
        .as_ref()
        .map_or_else(|| "user:unknown".to_owned(), |u| format!("user:{}", u.id));
    let ip = client_ip(&req);
    let throttle = Throttle {
        store: &*state.ephemeral,
        tenant: &t.id,
    };
    if let Gate::Wait(left) = throttle.check(&account, &ip).await? {
        audit(&state, &t, failure("login.throttled", target, "throttled")).await?;
        let secs = left.as_secs().max(1);
        let msg = s.throttled.replace("{secs}", &secs.to_string());
        let res = render(&state, &req, &t, StatusCode::TOO_MANY_REQUESTS, again(msg)).await?;
        return Ok(retry_after(res, secs));
    }

    let recent_failures = throttle.failures(&account).await?;
    let stored = user.as_ref().and_then(|u| u.password_hash.clone());
    let verdict = match state.hasher.verify(password.to_owned(), stored).await {
        Ok(v) => v,
        Err(PasswordError::Busy) => {
            let res = render(
                &state,
                &req,
                &t,
                StatusCode::SERVICE_UNAVAILABLE,
                again(s.busy.into()),
            )
            .await?;
            return Ok(retry_after(res, 2));
        }
        Err(e) => return Err(AppError::internal("password hashing", e)),
    };
    let user = match user {
        Some(u) if verdict.matches && u.status == UserStatus::Active => u,
        found => {
            let reason = match found {
                None => "unknown_user",
                Some(_) if !verdict.matches => "bad_password",
                Some(_) => "disabled",
            };
            count_failure(&state, &req, &t, (&throttle, &account, &ip), target, reason).await?;
            return render(
                &state,
                &req,
                &t,
                StatusCode::UNAUTHORIZED,
                again(s.bad_credentials.into()),
            )
            .await;
        }
    };
    // Where to go: back to the flow that sent the user here, else the requested page.
    let next = match (id, &pending) {
        (Some(id), Some(i)) => i.resume_url(id),
        _ => return_to.clone(),
    };
    let attempt = Attempt {
        user: &user,
        method: Method::Password,
        amr: vec!["pwd".into()],
        next,
        recent_failures,
        password_expired: latchkey_mfa::password_expired(
            &t.policy.password,
            user.password_changed_at,
            state.clock.now_millis(),
        ),
        auth_time: None,
        not_after: None,
        details: serde_json::Map::new(),
        also_audit: Vec::new(),
    };
    // Risk: a deny, or a step-up for a user with no second factor to step up to, is refused
    // like a wrong password (the person never learns which signal fired).
    let Completion::Session { response, .. } = complete(&state, &req, &t, attempt).await? else {
        count_failure(&state, &req, &t, (&throttle, &account, &ip), target, "risk").await?;
        return render(
            &state,
            &req,
            &t,
            StatusCode::UNAUTHORIZED,
            again(s.bad_credentials.into()),
        )
        .await;
    };
    throttle.succeeded(&account).await?;
    if verdict.needs_rehash
        && let Ok(hash) = state.hasher.hash(password.to_owned()).await
    {
        let (tid, uid) = (t.id.clone(), user.id.clone());
        state
            .store(move |db| latchkey_store::UserRepo::rehash_password(db, &tid, &uid, &hash))
            .await?;
    }
    Ok(response)
}

/// A refused sign-in, whatever the reason: counted against the account and the address, and
/// audited with the reason (for operators only; the person sees the same page).
async fn count_failure(
    state: &AppState,
    req: &HttpRequest,
    t: &Tenant,
    (throttle, account, ip): (&Throttle<'_>, &str, &str),
    target: String,
    reason: &str,
) -> Result<(), AppError> {
    throttle.failed(account, ip).await?;
    crate::flow::risk::note_failure(state, req, t, account).await?;
    audit(state, t, failure("login.failure", target, reason)).await
}

pub(super) async fn logout(
    req: HttpRequest,
    InTenant(t): InTenant,
    state: web::Data<AppState>,
    form: FormParams,
) -> Result<HttpResponse, AppError> {
    let current = session::current(&state, &req, &t).await?;
    let binding = current.as_ref().map(|(id, _)| id.cookie_value().to_owned());
    if !csrf::check(&state, &req, binding.as_deref(), form.get("csrf")) {
        return Err(AppError::new(
            crate::web::errors::Kind::Forbidden,
            strings(&req).form_expired,
        ));
    }
    if let Some((id, s)) = current {
        state.ephemeral.delete_session(&t.id, &id).await?;
        crate::flow::grants::revoke_grants(
            &state,
            &t,
            crate::flow::grants::Owned::Session(id.storage_key()),
            "logout",
        )
        .await?;
        let who = format!("user:{}", s.user_id);
        audit(
            &state,
            &t,
            NewAuditEvent::success(&who, "logout", who.clone(), json!({})),
        )
        .await?;
    }
    redirect_signed_out(&state, &t, "signed_out")
}
