//! Accepting an invitation (docs/invitations.md). The mailed link's token moves into a cookie
//! and off the address bar, as a reset link's does; looking at the page spends nothing (mail
//! scanners and link previews follow links). The person sets a password under the tenant's
//! policy or registers a passkey; then one audited transaction spends the token, creates the
//! user in the invited groups, and the sign-in completes through `flow::complete`.
//!
//! The passkey ceremony runs before the account exists: the user id is chosen when it starts
//! and kept server-side with the ceremony state, under a key derived from the token, taken once
//! by the finish call (W1, W10).

use super::passkey::{AMR, audit_refusal, field, keep, refused, response_json, rp, take, trusted};
use super::{AppError, Strings, csrf, hashing_error, html, new_password_problem, see_other, strings};
use crate::flow::complete::{Attempt, Completion, Method, complete};
use crate::state::AppState;
use crate::web::blocking::Blocking;
use crate::web::errors::Kind;
use crate::web::form::FormParams;
use crate::web::i18n_lifecycle::{self, LifecycleStrings};
use crate::web::respond::json_redirect;
use crate::web::tenant::InTenant;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use latchkey_core::{MfaMethod, Tenant, User, UserId, UserStatus};
use latchkey_services::invite::{SELF_SIGNUP, token_hash};
use latchkey_store::{
    Acceptance, Invitation, InvitationRepo, InvitationStatus, NewPasskey, Refusal, StoreError,
};
use serde_json::{Value, json};

/// How long the token waits in its cookie for the form to be sent.
const COOKIE_SECS: i64 = 3600;

#[derive(Template)]
#[template(path = "invitation.html")]
struct InvitationPage<'a> {
    s: &'a Strings,
    l: &'a LifecycleStrings,
    slug: &'a str,
    tenant_name: &'a str,
    logo_url: Option<&'a str>,
    csrf: String,
    username: &'a str,
    intro: String,
    /// The invitation can be accepted (else only `error` or `notice` shows).
    valid: bool,
    passkey_allowed: bool,
    error: Option<String>,
    notice: Option<&'a str>,
}

fn cookie_name(state: &AppState, tenant: &Tenant) -> String {
    crate::web::cookies::host_cookie_name(state, &format!("lk-invite-{}", tenant.slug))
}

/// Holds the pending sign-in a passkey-first sign-up came from (its link carries it), so the
/// new account continues to the application in the browser that started there.
fn next_cookie_name(state: &AppState, tenant: &Tenant) -> String {
    crate::web::cookies::host_cookie_name(state, &format!("lk-invite-next-{}", tenant.slug))
}

/// The pending sign-in's reference this browser keeps for the invitation, if any.
fn pending_interaction(state: &AppState, req: &HttpRequest, tenant: &Tenant) -> Option<String> {
    let c = req.cookie(&next_cookie_name(state, tenant))?;
    Some(super::signup::interaction_of(Some(c.value())).to_owned()).filter(|i| !i.is_empty())
}

/// Lets the page's form lead on to the application of a pending sign-in (`form-action`).
async fn continuing(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    mut res: HttpResponse,
) -> Result<HttpResponse, AppError> {
    if let Some(id) = pending_interaction(state, req, tenant) {
        let to = format!("interaction={id}");
        crate::flow::interaction::allow_continuation(state, req, tenant, &mut res, &to).await?;
    }
    Ok(res)
}

/// What the invitation cookie this browser holds comes to.
enum Link {
    Live(String, Box<Invitation>),
    /// Refused, with the invitation's id when the token names one.
    Refused(Refusal, Option<String>),
}

async fn live(state: &AppState, req: &HttpRequest, tenant: &Tenant) -> Result<Link, AppError> {
    let Some(token) = req
        .cookie(&cookie_name(state, tenant))
        .map(|c| c.value().to_owned())
        .filter(|v| v.len() == 43)
    else {
        return Ok(Link::Refused(Refusal::Unknown, None));
    };
    let (tid, hash) = (tenant.id.clone(), token_hash(&token));
    let found = state.store(move |db| db.invitation_by_token(&tid, &hash)).await?;
    Ok(match found {
        None => Link::Refused(Refusal::Unknown, None),
        Some(i) => match i.status {
            InvitationStatus::Pending => Link::Live(token, Box::new(i)),
            InvitationStatus::Accepted => Link::Refused(Refusal::Spent, Some(i.id)),
            InvitationStatus::Expired => Link::Refused(Refusal::Expired, Some(i.id)),
            InvitationStatus::Revoked => Link::Refused(Refusal::Revoked, Some(i.id)),
        },
    })
}

/// 410 for an invitation that existed and is over, 409 when the account exists, else 400.
fn refusal_page(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    why: Refusal,
) -> Result<HttpResponse, AppError> {
    let l = i18n_lifecycle::of(strings(req));
    let (status, message) = match why {
        Refusal::Unknown => (StatusCode::BAD_REQUEST, l.invite_unknown),
        Refusal::Spent => (StatusCode::GONE, l.invite_spent),
        Refusal::Expired => (StatusCode::GONE, l.invite_expired),
        Refusal::Revoked => (StatusCode::GONE, l.invite_revoked),
        Refusal::Taken => (StatusCode::CONFLICT, l.invite_taken),
    };
    render(state, req, tenant, status, None, Some(message.to_owned()), None)
}

fn render(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    status: StatusCode,
    live: Option<(&str, &Invitation)>,
    error: Option<String>,
    notice: Option<&str>,
) -> Result<HttpResponse, AppError> {
    let s = strings(req);
    let l = i18n_lifecycle::of(s);
    let username = live.map(|(_, i)| i.username.as_str()).unwrap_or_default();
    let page = InvitationPage {
        s,
        l,
        slug: &tenant.slug,
        tenant_name: &tenant.display_name,
        logo_url: super::logo(tenant),
        csrf: live.map(|(token, _)| csrf::token_for(token)).unwrap_or_default(),
        username,
        intro: live
            .map_or(l.invite_intro, |(_, i)| {
                if i.invited_by == SELF_SIGNUP {
                    l.signup_intro
                } else {
                    l.invite_intro
                }
            })
            .replace("{tenant}", &tenant.display_name)
            .replace("{user}", username),
        valid: live.is_some(),
        passkey_allowed: tenant.policy.allows(MfaMethod::Passkey),
        error,
        notice,
    };
    let mut res = html(state, req, status, page.render())?;
    if live.is_none() {
        res.add_cookie(&crate::web::cookies::removal(state, cookie_name(state, tenant)))
            .map_err(|e| AppError::internal("cookie", e))?;
    }
    Ok(res)
}

/// GET `/t/{tenant}/invitation`: `?token=` from the mail goes into a cookie and off the address
/// bar; without it, the form for the invitation in the cookie. Nothing is spent here.
pub(super) async fn page(
    req: HttpRequest,
    InTenant(tenant): InTenant,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    if let Some(token) = super::query_param(&req, "token").filter(|t| t.len() <= 64) {
        let mut res = see_other(&format!("/t/{}/invitation", tenant.slug));
        let mut c = crate::web::cookies::cookie(&state, cookie_name(&state, &tenant), token);
        c.set_max_age(actix_web::cookie::time::Duration::seconds(COOKIE_SECS));
        res.add_cookie(&c).map_err(|e| AppError::internal("cookie", e))?;
        let from = super::query_param(&req, "interaction");
        let next = match super::signup::interaction_of(from.as_deref()) {
            "" => crate::web::cookies::removal(&state, next_cookie_name(&state, &tenant)),
            id => {
                let mut n =
                    crate::web::cookies::cookie(&state, next_cookie_name(&state, &tenant), id.to_owned());
                n.set_max_age(actix_web::cookie::time::Duration::seconds(COOKIE_SECS));
                n
            }
        };
        res.add_cookie(&next)
            .map_err(|e| AppError::internal("cookie", e))?;
        return Ok(res);
    }
    match live(&state, &req, &tenant).await? {
        Link::Live(token, inv) => {
            let live = Some((token.as_str(), &*inv));
            let res = render(&state, &req, &tenant, StatusCode::OK, live, None, None)?;
            continuing(&state, &req, &tenant, res).await
        }
        Link::Refused(why, _) => refusal_page(&state, &req, &tenant, why),
    }
}

/// An attempt to accept a dead link is audited (looking at the page is not).
async fn audit_attempt(
    state: &AppState,
    tenant: &Tenant,
    why: Refusal,
    id: Option<&str>,
) -> Result<(), AppError> {
    let target = format!("invitation:{}", id.unwrap_or("unknown"));
    super::audit(
        state,
        tenant,
        super::failure("invitation.accept", target, why.as_str()),
    )
    .await
}

/// The account the invitation will become, for the password policy's identifier check.
fn future_user(tenant: &Tenant, inv: &Invitation, id: UserId) -> User {
    User {
        id,
        tenant_id: tenant.id.clone(),
        username: inv.username.clone(),
        email: Some(inv.email.clone()),
        email_verified: true,
        display_name: inv.display_name.clone(),
        status: UserStatus::Active,
        password_hash: None,
        password_changed_at: None,
        sessions_not_before: None,
        created_at: 0,
        updated_at: 0,
    }
}

/// Spends the token and creates the user; `Err` is the refusal to show.
async fn accept(
    state: &AppState,
    tenant: &Tenant,
    token: &str,
    how: Acceptance,
) -> Result<Result<User, Refusal>, AppError> {
    let (tid, hash) = (tenant.id.clone(), token_hash(token));
    state
        .store(move |db| match db.accept_invitation(&tid, &hash, &how) {
            Ok(r) => Ok(r.map(|(_, user)| user)),
            // A user with the email or username (or this passkey) appeared meanwhile.
            Err(StoreError::Conflict(_)) => Ok(Err(Refusal::Taken)),
            Err(e) => Err(e),
        })
        .await
}

/// How the account came to be, for the sign-in's audit event.
fn via(inv: &Invitation) -> &'static str {
    if inv.invited_by == SELF_SIGNUP {
        "signup"
    } else {
        "invitation"
    }
}

/// Signs the new user in (or, when the risk engine refuses, asks them to sign in).
async fn sign_in(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    (user, via): (&User, &str),
    method: Method,
    amr: Vec<String>,
) -> Result<Result<(HttpResponse, String), HttpResponse>, AppError> {
    let mut details = serde_json::Map::new();
    details.insert("via".into(), json!(via));
    // Back to the application this browser came from, else to the account page.
    let mut next = crate::web::urls::account(&tenant.slug, None);
    if let Some(id) = pending_interaction(state, req, tenant) {
        let binding = crate::flow::interaction::binding(state, req, tenant, &id);
        if let Some(i) = crate::flow::interaction::load(state, tenant, &id, binding.as_deref()).await? {
            next = i.resume_url(&id);
        }
    }
    let attempt = Attempt {
        user,
        method,
        amr,
        next,
        recent_failures: 0,
        password_expired: false,
        auth_time: None,
        not_after: None,
        details,
        also_audit: Vec::new(),
        federated: None,
    };
    match complete(state, req, tenant, attempt).await? {
        Completion::Session {
            mut response,
            location,
        } => {
            for name in [cookie_name(state, tenant), next_cookie_name(state, tenant)] {
                response
                    .add_cookie(&crate::web::cookies::removal(state, name))
                    .map_err(|e| AppError::internal("cookie", e))?;
            }
            Ok(Ok((response, location)))
        }
        Completion::Refused => {
            let l = i18n_lifecycle::of(strings(req));
            Ok(Err(render(
                state,
                req,
                tenant,
                StatusCode::OK,
                None,
                None,
                Some(l.invite_done),
            )?))
        }
    }
}

/// POST `/t/{tenant}/invitation`: accepts with a password.
pub(super) async fn submit(
    req: HttpRequest,
    InTenant(t): InTenant,
    state: web::Data<AppState>,
    form: FormParams,
) -> Result<HttpResponse, AppError> {
    let s = strings(&req);
    let (token, inv) = match live(&state, &req, &t).await? {
        Link::Live(token, inv) => (token, inv),
        Link::Refused(why, id) => {
            audit_attempt(&state, &t, why, id.as_deref()).await?;
            return refusal_page(&state, &req, &t, why);
        }
    };
    // The form's token is bound to the invitation's own.
    if !csrf::check(&state, &req, Some(&token), form.get("csrf")) {
        let error = Some(s.form_expired.to_owned());
        let live = Some((token.as_str(), &*inv));
        let res = render(&state, &req, &t, StatusCode::FORBIDDEN, live, error, None)?;
        return continuing(&state, &req, &t, res).await;
    }
    let id = UserId(latchkey_core::random_uuid(&*state.rng));
    let new = form.get("new_password").unwrap_or_default().to_owned();
    let future = future_user(&t, &inv, id.clone());
    if let Some(problem) = new_password_problem(&state, s, &t, &future, &new).await? {
        let live = Some((token.as_str(), &*inv));
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        let res = render(&state, &req, &t, status, live, Some(problem), None)?;
        return continuing(&state, &req, &t, res).await;
    }
    let hash = state.hasher.hash(new).await.map_err(hashing_error)?;
    let how = Acceptance {
        user_id: id,
        password_hash: Some(hash),
        passkey: None,
    };
    let user = match accept(&state, &t, &token, how).await? {
        Ok(user) => user,
        Err(why) => return refusal_page(&state, &req, &t, why),
    };
    Ok(
        match sign_in(
            &state,
            &req,
            &t,
            (&user, via(&inv)),
            Method::Password,
            vec!["pwd".into()],
        )
        .await?
        {
            Ok((response, _)) => response,
            Err(page) => page,
        },
    )
}

/// The invitation token of a JSON call, checked live and against the call's CSRF token.
async fn json_token(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    body: &Value,
) -> Result<Result<(String, Box<Invitation>), HttpResponse>, AppError> {
    if !tenant.policy.allows(MfaMethod::Passkey) {
        return Err(AppError::new(Kind::Forbidden, "Passkeys are not enabled here.").json());
    }
    let (token, inv) = match live(state, req, tenant).await? {
        Link::Live(token, inv) => (token, inv),
        Link::Refused(why, id) => {
            audit_attempt(state, tenant, why, id.as_deref()).await?;
            let l = i18n_lifecycle::of(strings(req));
            let message = match why {
                Refusal::Spent => l.invite_spent,
                Refusal::Expired => l.invite_expired,
                Refusal::Revoked => l.invite_revoked,
                Refusal::Taken => l.invite_taken,
                Refusal::Unknown => l.invite_unknown,
            };
            return Ok(Err(refused(message)));
        }
    };
    if !csrf::check(state, req, Some(&token), Some(field(body, "csrf"))) {
        return Err(AppError::new(Kind::Forbidden, strings(req).form_expired).json());
    }
    Ok(Ok((token, inv)))
}

/// POST `/t/{tenant}/invitation/passkey/options`: starts a registration for the account to be.
pub(super) async fn passkey_options(
    req: HttpRequest,
    InTenant(tenant): InTenant,
    state: web::Data<AppState>,
    body: web::Json<Value>,
) -> Result<HttpResponse, AppError> {
    let (token, inv) = match json_token(&state, &req, &tenant, &body).await? {
        Ok(found) => found,
        Err(refusal) => return Ok(refusal),
    };
    let id = latchkey_core::random_uuid(&*state.rng);
    let display = inv.display_name.clone().unwrap_or_else(|| inv.username.clone());
    let (options, ceremony) = rp(&state, &tenant)?
        .start_registration(&id, &inv.username, &display, &[], &trusted(&tenant))
        .map_err(|e| AppError::internal("passkey registration", e))?;
    let kept = json!({"user": id, "ceremony": ceremony}).to_string();
    keep(&state, &tenant, "invite", &token, &kept).await?;
    Ok(HttpResponse::Ok().json(options))
}

/// POST `/t/{tenant}/invitation/passkey`: the authenticator's answer; accepts and signs in.
pub(super) async fn passkey_finish(
    req: HttpRequest,
    InTenant(tenant): InTenant,
    state: web::Data<AppState>,
    body: web::Json<Value>,
) -> Result<HttpResponse, AppError> {
    let (token, inv) = match json_token(&state, &req, &tenant, &body).await? {
        Ok(found) => found,
        Err(refusal) => return Ok(refusal),
    };
    let kept = take(&state, &tenant, "invite", &token)
        .await?
        .and_then(|k| serde_json::from_str::<Value>(&k).ok());
    let Some((id, ceremony)) = kept.as_ref().and_then(|k| {
        Some((
            k.get("user")?.as_str()?.to_owned(),
            k.get("ceremony")?.as_str()?.to_owned(),
        ))
    }) else {
        return Ok(refused("This passkey request has expired. Try again."));
    };
    let key = match rp(&state, &tenant)?.finish_registration(&response_json(&body), &ceremony) {
        Ok(k) => k,
        Err(e) => {
            let future = future_user(&tenant, &inv, UserId(id));
            audit_refusal(&state, &tenant, Some(&future), "invitation.passkey", &e).await?;
            return Ok(refused("The passkey was not accepted."));
        }
    };
    let how = Acceptance {
        user_id: UserId(id),
        password_hash: None,
        passkey: Some(NewPasskey {
            id: key.id,
            name: "Passkey".into(),
            credential: key.credential,
        }),
    };
    let user = match accept(&state, &tenant, &token, how).await? {
        Ok(user) => user,
        Err(why) => {
            let l = i18n_lifecycle::of(strings(&req));
            let message = if why == Refusal::Taken {
                l.invite_taken
            } else {
                l.invite_spent
            };
            return Ok(refused(message));
        }
    };
    let amr = AMR.iter().map(|m| (*m).to_owned()).collect();
    match sign_in(&state, &req, &tenant, (&user, via(&inv)), Method::Passkey, amr).await? {
        Ok((response, location)) => json_redirect(&response, &json!({"redirect": location})),
        Err(_) => Ok(HttpResponse::Ok().json(json!({
            "redirect": crate::web::urls::login(&tenant.slug, None)
        }))),
    }
}
