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
    /// "Create an account", when the tenant's sign-up policy is not off.
    signup: Option<(String, &'static str)>,
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
    tenant: &Tenant,
    status: StatusCode,
    f: Form<'_>,
) -> Result<HttpResponse, AppError> {
    let pending = f.interaction.map(|(_, i)| i);
    let connections = crate::flow::realm::connections(state, tenant).await?;
    let saml = connections
        .iter()
        .map(|c| {
            (
                crate::flow::realm::start_url(tenant, c, f.interaction.map(|(id, _)| id)),
                c.display_name.clone(),
            )
        })
        .collect();
    let mut res = with_presession(state, req, tenant, status, |csrf| {
        LoginPage {
            s: strings_with(req, pending.and_then(|i| i.ui_locales.as_deref())),
            slug: &tenant.slug,
            tenant_name: &tenant.display_name,
            logo_url: super::logo(tenant),
            csrf,
            return_to: f.return_to,
            interaction: f.interaction.map_or("", |(id, _)| id),
            client_name: pending.and_then(|i| i.client_name.as_deref()),
            username: f.username,
            error: f.error,
            notice: f.notice,
            saml,
            signup: (tenant.policy.signup.mode != latchkey_core::SignupMode::Off).then(|| {
                let id = f.interaction.map(|(id, _)| format!("?interaction={id}"));
                (
                    format!("/t/{}/signup{}", tenant.slug, id.unwrap_or_default()),
                    crate::web::i18n::signup(strings(req)).link_from_login,
                )
            }),
        }
        .render()
    })?;
    if let Some(dest) = pending.and_then(|i| i.continues_to.as_deref()) {
        crate::web::observe::allow_form_action(&mut res, dest);
    }
    // Home-realm discovery answers the form with redirects on to the IdP (`form-action`
    // covers every hop).
    for onward in connections.iter().filter_map(|c| c.onward.as_deref()) {
        crate::web::observe::allow_form_action(&mut res, onward);
    }
    Ok(res)
}

/// The interaction a sign-in request names: `Ok(None)` without one, `Err(page)` when it names
/// one that is unknown, expired or another browser's.
async fn pending(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    id: Option<&str>,
) -> Result<Result<Option<Interaction>, HttpResponse>, AppError> {
    let Some(id) = id.filter(|i| !i.is_empty()) else {
        return Ok(Ok(None));
    };
    let binding = interaction::binding(state, req, tenant, id);
    if let Some(i) = interaction::load(state, tenant, id, binding.as_deref()).await? {
        return Ok(Ok(Some(i)));
    }
    let form = Form {
        return_to: &safe_return_to(tenant, None),
        interaction: None,
        username: "",
        error: Some(strings(req).interaction_expired.into()),
        notice: None,
    };
    Ok(Err(
        render(state, req, tenant, StatusCode::BAD_REQUEST, form).await?
    ))
}

pub(super) async fn login_page(
    req: HttpRequest,
    InTenant(tenant): InTenant,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let q = web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string()).ok();
    let param = |name: &str| q.as_ref().and_then(|q| q.get(name)).map(String::as_str);
    let id = param("interaction");
    let pending = match pending(&state, &req, &tenant, id).await? {
        Ok(p) => p,
        Err(page) => return Ok(page),
    };
    let s = strings(&req);
    let l = crate::web::i18n_lifecycle::of(s);
    let notice = if param("signed_out").is_some() {
        Some(s.signed_out)
    } else if param("deleted").is_some() {
        Some(l.account_deleted)
    } else if param("deletion_scheduled").is_some() {
        Some(l.deletion_scheduled)
    } else {
        param("reset").map(|_| s.reset_done)
    };
    let return_to = safe_return_to(&tenant, param("return_to"));
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
    render(&state, &req, &tenant, StatusCode::OK, form).await
}

pub(super) async fn login_submit(
    req: HttpRequest,
    InTenant(tenant): InTenant,
    state: web::Data<AppState>,
    form: FormParams,
) -> Result<HttpResponse, AppError> {
    let id = form.get("interaction");
    let pending = match pending(&state, &req, &tenant, id).await? {
        Ok(p) => p,
        Err(page) => return Ok(page),
    };
    let return_to = safe_return_to(&tenant, form.get("return_to"));
    let username = form.get("username").unwrap_or_default().trim();
    let password = form.get("password").unwrap_or_default();
    let page = Submitted {
        state: &state,
        req: &req,
        tenant: &tenant,
        strings: strings_with(&req, pending.as_ref().and_then(|i| i.ui_locales.as_deref())),
        return_to: &return_to,
        interaction: id.zip(pending.as_ref()),
        username,
    };
    if !presession_csrf_ok(&state, &req, &tenant, form.get("csrf")) {
        return page
            .again(StatusCode::FORBIDDEN, page.strings.form_expired.into())
            .await;
    }
    // Home-realm discovery: an address in a domain a SAML connection claims signs in there,
    // unless it names a local account with a password and one was typed (break-glass admins).
    if username.contains('@')
        && let Some(connection) = crate::flow::realm::for_email(&state, &tenant, username).await?
    {
        let local = find_user(&state, &tenant, username).await?;
        if password.is_empty() || local.as_ref().is_none_or(|u| u.password_hash.is_none()) {
            return Ok(super::see_other(&crate::flow::realm::start_url(
                &tenant,
                &connection,
                id,
            )));
        }
    }
    let checked = match page.check_password(password).await? {
        Ok(checked) => checked,
        Err(answer) => return Ok(answer),
    };
    // Where to go: back to the flow that sent the user here, else the requested page.
    let next = match (id, &pending) {
        (Some(id), Some(i)) => i.resume_url(id),
        _ => return_to.clone(),
    };
    page.complete(checked, next, password).await
}

/// One submission of the sign-in form, and how to answer it with the form again.
struct Submitted<'a> {
    state: &'a AppState,
    req: &'a HttpRequest,
    tenant: &'a Tenant,
    strings: &'static Strings,
    return_to: &'a str,
    interaction: Option<(&'a str, &'a Interaction)>,
    username: &'a str,
}

/// A right password of an active user, and what the throttle knows of the account.
struct Checked {
    user: latchkey_core::User,
    /// The throttle's key for the account (`id:…`).
    account: String,
    recent_failures: u32,
    needs_rehash: bool,
}

impl Submitted<'_> {
    /// The form again with `error`.
    async fn again(&self, status: StatusCode, error: String) -> Result<HttpResponse, AppError> {
        let form = Form {
            return_to: self.return_to,
            interaction: self.interaction,
            username: self.username,
            error: Some(error),
            notice: None,
        };
        render(self.state, self.req, self.tenant, status, form).await
    }

    fn throttle(&self) -> Throttle<'_> {
        Throttle {
            store: &*self.state.ephemeral,
            tenant: self.tenant,
        }
    }

    /// Throttles (reserving the attempt), then verifies the password. An unknown user still
    /// costs a full hash, so time does not tell (L7); every refusal looks the same to the person.
    async fn check_password(&self, password: &str) -> Result<Result<Checked, HttpResponse>, AppError> {
        let (state, tenant) = (self.state, self.tenant);
        let user = find_user(state, tenant, self.username).await?;
        // Throttled per account (whichever name was typed) or, for unknown names, per name typed.
        let account = user
            .as_ref()
            .map_or_else(|| self.username.to_lowercase(), |u| format!("id:{}", u.id));
        let target = user
            .as_ref()
            .map_or_else(|| "user:unknown".to_owned(), |u| format!("user:{}", u.id));
        if let Gate::Wait(left) = self.throttle().check(&account, &client_ip(self.req)).await? {
            audit(state, tenant, failure("login.throttled", target, "throttled")).await?;
            let secs = left.as_secs().max(1);
            let message = self.strings.throttled.replace("{secs}", &secs.to_string());
            let res = self.again(StatusCode::TOO_MANY_REQUESTS, message).await?;
            return Ok(Err(retry_after(res, secs)));
        }
        let recent_failures = self.throttle().failures(&account).await?;
        let stored = user.as_ref().and_then(|u| u.password_hash.clone());
        let verified = state.hasher.verify(password.to_owned(), stored).await;
        if verified.is_err() {
            self.throttle().release(&account, &client_ip(self.req)).await?;
        }
        let verdict = match verified {
            Ok(v) => v,
            Err(PasswordError::Busy) => {
                let res = self
                    .again(StatusCode::SERVICE_UNAVAILABLE, self.strings.busy.into())
                    .await?;
                return Ok(Err(retry_after(res, 2)));
            }
            Err(e) => return Err(AppError::internal("password hashing", e)),
        };
        match user {
            Some(user) if verdict.matches && user.status == UserStatus::Active => Ok(Ok(Checked {
                user,
                account,
                recent_failures,
                needs_rehash: verdict.needs_rehash,
            })),
            found => {
                let reason = match found {
                    None => "unknown_user",
                    Some(_) if !verdict.matches => "bad_password",
                    Some(_) => "disabled",
                };
                Ok(Err(self.refuse(&account, target, reason).await?))
            }
        }
    }

    /// Hands the checked user to the sign-in completion; a risk refusal is answered like a
    /// wrong password (the person never learns which signal fired).
    async fn complete(
        &self,
        checked: Checked,
        next: String,
        password: &str,
    ) -> Result<HttpResponse, AppError> {
        let (state, tenant, user) = (self.state, self.tenant, &checked.user);
        let attempt = Attempt {
            user,
            method: Method::Password,
            amr: vec!["pwd".into()],
            next,
            recent_failures: checked.recent_failures,
            password_expired: latchkey_mfa::password_expired(
                &tenant.policy.password,
                user.password_changed_at,
                state.clock.now_millis(),
            ),
            auth_time: None,
            not_after: None,
            details: serde_json::Map::new(),
            also_audit: Vec::new(),
            federated: None,
        };
        let Completion::Session { response, .. } = complete(state, self.req, tenant, attempt).await? else {
            return self
                .refuse(&checked.account, format!("user:{}", user.id), "risk")
                .await;
        };
        self.throttle()
            .succeeded(&checked.account, &client_ip(self.req))
            .await?;
        if checked.needs_rehash
            && let Ok(hash) = state.hasher.hash(password.to_owned()).await
        {
            let (tid, uid) = (tenant.id.clone(), user.id.clone());
            state
                .store(move |db| latchkey_store::UserRepo::rehash_password(db, &tid, &uid, &hash))
                .await?;
        }
        Ok(response)
    }

    /// A refused sign-in, whatever the reason: counted against the account and the address,
    /// audited with the reason (for operators only), and answered with the same page.
    async fn refuse(&self, account: &str, target: String, reason: &str) -> Result<HttpResponse, AppError> {
        let (state, tenant) = (self.state, self.tenant);
        self.throttle().failed(account, &client_ip(self.req)).await?;
        crate::flow::risk::note_failure(state, self.req, tenant, account).await?;
        audit(state, tenant, failure("login.failure", target, reason)).await?;
        self.again(StatusCode::UNAUTHORIZED, self.strings.bad_credentials.into())
            .await
    }
}

pub(super) async fn logout(
    req: HttpRequest,
    InTenant(tenant): InTenant,
    state: web::Data<AppState>,
    form: FormParams,
) -> Result<HttpResponse, AppError> {
    let current = session::current(&state, &req, &tenant).await?;
    let binding = current.as_ref().map(|(id, _)| id.cookie_value().to_owned());
    if !csrf::check(&state, &req, binding.as_deref(), form.get("csrf")) {
        return Err(AppError::new(
            crate::web::errors::Kind::Forbidden,
            strings(&req).form_expired,
        ));
    }
    if let Some((id, s)) = current {
        let frames = crate::flow::frontchannel::urls(&state, &tenant, &s.user_id, &id.storage_key()).await?;
        state.ephemeral.delete_session(&tenant.id, &id).await?;
        crate::flow::grants::revoke_grants(
            &state,
            &tenant,
            crate::flow::grants::Owned::Session(id.storage_key()),
            "logout",
        )
        .await?;
        let who = format!("user:{}", s.user_id);
        audit(
            &state,
            &tenant,
            NewAuditEvent::success(&who, "logout", who.clone(), json!({})),
        )
        .await?;
        // A session from a SAML IdP: end the IdP's session too, then back to the sign-in page;
        // the portals' front-channel pages load first.
        let back = crate::web::urls::login(&tenant.slug, Some("signed_out=1"));
        let idp = crate::flow::saml_logout::begin(&state, &tenant, &s, Some(back.clone())).await?;
        let mut res = match (idp, frames.is_empty()) {
            (None, true) => return redirect_signed_out(&state, &tenant, "signed_out"),
            (Some(url), true) => crate::web::respond::see_other(&url),
            (next, false) => {
                let words = strings(&req);
                crate::flow::frontchannel::page(
                    &state,
                    &req,
                    &tenant,
                    words,
                    &frames,
                    Some(next.unwrap_or(back)),
                )?
            }
        };
        res.add_cookie(&crate::web::cookies::removal(
            &state,
            crate::flow::session::cookie_name(&state, &tenant),
        ))
        .map_err(|e| AppError::internal("cookie", e))?;
        return Ok(res);
    }
    redirect_signed_out(&state, &tenant, "signed_out")
}
