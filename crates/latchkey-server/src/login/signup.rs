//! Self-service sign-up (docs/sign-up.md), by the tenant's `signup` policy: `off` is the
//! tenant's plain 404, `invite-only` says an invitation is needed, `open` and
//! `open-for-domains` show the form.
//!
//! The answer to a valid form is always "check your mail", with the same work behind it
//! (the password policy checks and one argon2 hash): a new address gets an account whose email
//! is unverified and a verification link, both in one audited transaction; an address that
//! already has an account gets no second one, and its owner is mailed a notice instead. So the
//! page tells nobody whether an address is registered. Sign-ups are limited per client address
//! and per email domain (no CAPTCHA). An address in a domain a SAML connection claims is sent
//! to that sign-in; `open-for-domains` refuses other domains.

use super::{AppError, Strings, audit, failure, hashing_error, new_password_problem, presession_csrf_ok};
use crate::state::AppState;
use crate::web::blocking::Blocking;
use crate::web::form::FormParams;
use crate::web::i18n::{self, SignupStrings};
use crate::web::tenant::InTenant;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use latchkey_core::{MfaMethod, SignupMode, Tenant, User, UserId, UserStatus};
use latchkey_services::ServiceError;
use latchkey_services::invite::{Inviter, SELF_SIGNUP, Wording};
use latchkey_store::{
    EmailVerificationRepo, InvitationRepo, MailOutbox, NewInvitation, NewUser, StoreError, UserRepo,
};

/// How long a passkey-first sign-up link lives (as long as a verification link).
const PASSKEY_FIRST_SECS: i64 = 24 * 3600;

#[derive(Template)]
#[template(path = "signup.html")]
struct SignupPage<'a> {
    s: &'a Strings,
    u: &'a SignupStrings,
    slug: &'a str,
    tenant_name: &'a str,
    logo_url: Option<&'a str>,
    csrf: String,
    interaction: &'a str,
    invite_only: bool,
    /// Passkey-first sign-up is offered (the tenant allows passkeys).
    passkey_allowed: bool,
    email: &'a str,
    username: &'a str,
    sign_in: String,
    error: Option<String>,
    /// A SAML connection's sign-in for a claimed domain: (href, display name).
    company: Option<(String, String)>,
    notice: Option<String>,
}

/// What the page shows besides the tenant.
#[derive(Default)]
struct View<'a> {
    email: &'a str,
    username: &'a str,
    error: Option<String>,
    company: Option<(String, String)>,
    notice: Option<String>,
}

/// The interaction a form or link carries, if it looks like a reference (else empty).
pub(super) fn interaction_of(value: Option<&str>) -> &str {
    value
        .filter(|i| {
            i.len() == 43
                && i.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .unwrap_or_default()
}

fn render(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    (status, interaction): (StatusCode, &str),
    v: View<'_>,
) -> Result<HttpResponse, AppError> {
    let s = super::strings(req);
    let sign_in = crate::web::urls::login(
        &tenant.slug,
        (!interaction.is_empty())
            .then(|| format!("interaction={interaction}"))
            .as_deref(),
    );
    crate::flow::csrf::with_presession(state, req, tenant, status, |csrf| {
        SignupPage {
            s,
            u: i18n::signup(s),
            slug: &tenant.slug,
            tenant_name: &tenant.display_name,
            logo_url: super::logo(tenant),
            csrf,
            interaction,
            invite_only: tenant.policy.signup.mode == SignupMode::InviteOnly,
            passkey_allowed: tenant.policy.allows(MfaMethod::Passkey),
            email: v.email,
            username: v.username,
            sign_in,
            error: v.error,
            company: v.company,
            notice: v.notice,
        }
        .render()
    })
}

/// `off` answers as if the page did not exist (the tenant's normal 404).
fn check_enabled(tenant: &Tenant) -> Result<(), AppError> {
    if tenant.policy.signup.mode == SignupMode::Off {
        return Err(AppError::not_found("There is nothing at this address."));
    }
    Ok(())
}

pub(super) async fn signup_page(
    req: HttpRequest,
    InTenant(tenant): InTenant,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    check_enabled(&tenant)?;
    let interaction = super::query_param(&req, "interaction");
    let interaction = interaction_of(interaction.as_deref());
    render(
        &state,
        &req,
        &tenant,
        (StatusCode::OK, interaction),
        View::default(),
    )
}

/// Why an address can't sign up here, with the page's answer; `None` when it may.
async fn refusal(
    state: &AppState,
    u: &SignupStrings,
    tenant: &Tenant,
    email: &str,
    interaction: &str,
) -> Result<Option<View<'static>>, AppError> {
    if let Some(c) = crate::flow::realm::for_email(state, tenant, email).await? {
        let href = crate::flow::realm::start_url(tenant, &c, Some(interaction));
        return Ok(Some(View {
            error: Some(u.managed_domain.into()),
            company: Some((href, c.display_name)),
            ..View::default()
        }));
    }
    if !tenant.policy.signup.admits(email) {
        return Ok(Some(View {
            error: Some(u.domain_refused.into()),
            ..View::default()
        }));
    }
    Ok(None)
}

/// POST `/signup`. Long because the steps are one sequence whose order is the defence
/// (CSRF, limits, refusals, the same work for both answers); split, the order would hide.
#[allow(clippy::too_many_lines)]
pub(super) async fn signup_submit(
    req: HttpRequest,
    InTenant(tenant): InTenant,
    state: web::Data<AppState>,
    form: FormParams,
) -> Result<HttpResponse, AppError> {
    check_enabled(&tenant)?;
    let s = super::strings(&req);
    let u = i18n::signup(s);
    let interaction = interaction_of(form.get("interaction"));
    let raw_email = form.get("email").unwrap_or_default().trim();
    let raw_username = form.get("username").unwrap_or_default().trim();
    let view = |error: String| View {
        email: raw_email,
        username: raw_username,
        error: Some(error),
        ..View::default()
    };
    let page = |status, v| render(&state, &req, &tenant, (status, interaction), v);
    if tenant.policy.signup.mode == SignupMode::InviteOnly {
        return page(StatusCode::FORBIDDEN, View::default());
    }
    if !presession_csrf_ok(&state, &req, &tenant, form.get("csrf")) {
        return page(StatusCode::FORBIDDEN, view(s.form_expired.into()));
    }
    let Ok(email) = latchkey_core::validate::email(raw_email) else {
        return page(StatusCode::UNPROCESSABLE_ENTITY, view(u.bad_email.into()));
    };
    let domain = email.rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
    let ip = super::client_ip(&req);
    if let Some(wait) = crate::flow::throttle::signup_attempt(&*state.ephemeral, &tenant, &ip, domain).await?
    {
        let secs = wait.as_secs().max(1);
        let res = page(
            StatusCode::TOO_MANY_REQUESTS,
            view(s.throttled.replace("{secs}", &secs.to_string())),
        )?;
        return Ok(super::retry_after(res, secs));
    }
    if let Some(refused) = refusal(&state, u, &tenant, &email, interaction).await? {
        let v = View {
            email: raw_email,
            username: raw_username,
            ..refused
        };
        return page(StatusCode::UNPROCESSABLE_ENTITY, v);
    }
    let username = if raw_username.is_empty() {
        email.clone()
    } else {
        match latchkey_core::validate::username(raw_username) {
            Ok(n) => n,
            Err(e) => return page(StatusCode::UNPROCESSABLE_ENTITY, view(e.message)),
        }
    };
    if form.get("method") == Some("passkey") && tenant.policy.allows(MfaMethod::Passkey) {
        let who = (email.as_str(), username.as_str(), !raw_username.is_empty());
        if passkey_first(&state, s, &tenant, who, interaction).await? == Created::UsernameTaken {
            return page(StatusCode::CONFLICT, view(u.username_taken.into()));
        }
        let sent = View {
            notice: Some(u.sent_passkey.replace("{email}", &email)),
            ..View::default()
        };
        return page(StatusCode::OK, sent);
    }
    // The password is checked as a new user's would be (policy, breached and guessable lists,
    // no username or address in it) whether or not the address is taken.
    let candidate = User {
        id: UserId(latchkey_core::random_uuid(&*state.rng)),
        tenant_id: tenant.id.clone(),
        username: username.clone(),
        email: Some(email.clone()),
        email_verified: false,
        display_name: None,
        status: UserStatus::Active,
        password_hash: None,
        password_changed_at: None,
        sessions_not_before: None,
        created_at: 0,
        updated_at: 0,
    };
    let password = form.get("new_password").unwrap_or_default().to_owned();
    if let Some(problem) = new_password_problem(&state, s, &tenant, &candidate, &password).await? {
        return page(StatusCode::UNPROCESSABLE_ENTITY, view(problem));
    }
    let (tid, e2, n2) = (tenant.id.clone(), email.clone(), username.clone());
    let (by_email, by_name) = state
        .store(move |db| Ok::<_, StoreError>((db.user_by_email(&tid, &e2)?, db.user_by_username(&tid, &n2)?)))
        .await?;
    // Same work for both answers: one argon2 hash.
    let hash = state.hasher.hash(password).await.map_err(hashing_error)?;
    match (by_email, by_name) {
        (Some(owner), _) => notify_owner(&state, s, &tenant, &owner).await?,
        (None, Some(_)) if !raw_username.is_empty() => {
            return page(StatusCode::CONFLICT, view(u.username_taken.into()));
        }
        (None, _) => {
            let new = NewUser {
                username,
                email: Some(email.clone()),
                display_name: None,
                password_hash: Some(hash),
                email_verified: false,
            };
            match create(&state, s, &tenant, new).await? {
                Created::Yes | Created::EmailTaken => {}
                Created::UsernameTaken => {
                    return page(StatusCode::CONFLICT, view(u.username_taken.into()));
                }
            }
        }
    }
    let sent = View {
        notice: Some(u.sent.replace("{email}", &email)),
        ..View::default()
    };
    page(StatusCode::OK, sent)
}

#[derive(PartialEq, Eq)]
enum Created {
    Yes,
    /// Lost a race to another sign-up of the same address: answered the same.
    EmailTaken,
    UsernameTaken,
}

/// The account and its verification link and mail, one audited transaction (`user.signup`,
/// `user.email_verification_requested`).
async fn create(state: &AppState, s: &Strings, tenant: &Tenant, new: NewUser) -> Result<Created, AppError> {
    let wording = i18n::email(s);
    let (st, tenant_now) = (state.clone(), tenant.clone());
    let outcome = state
        .store(move |db| -> Result<Result<User, StoreError>, AppError> {
            let email = new.email.clone().unwrap_or_default();
            let link = super::verify::prepare(&st, wording, &tenant_now, (&new.username, &email))?;
            match db.create_user_verifying(
                &tenant_now.id,
                "anonymous",
                "user.signup",
                &new,
                Some(&link.verification()),
                &[],
            ) {
                Ok(u) => Ok(Ok(u)),
                Err(err @ StoreError::Conflict(_)) => Ok(Err(err)),
                Err(err) => Err(err.into()),
            }
        })
        .await?;
    match outcome {
        Ok(user) => {
            tracing::info!(tenant = %tenant.slug, user = %user.id, "signed up");
            state.mail.wake();
            Ok(Created::Yes)
        }
        Err(StoreError::Conflict(m)) if m.contains("email") => Ok(Created::EmailTaken),
        Err(_) => Ok(Created::UsernameTaken),
    }
}

/// Passkey-first sign-up: no account yet, only a pending sign-up held as an invitation
/// (`invited_by` [`SELF_SIGNUP`]) whose mailed link lets the person create a passkey (or a
/// password); the account exists, verified, once that is done. `who` is (address, username,
/// username typed). The answer is the same whether or not the address has an account: a taken
/// one gets the owner notice; an address with a pending sign-up gets a fresh link (the old one
/// stops working); one with an administrator's pending invitation gets nothing new, so nobody
/// can invalidate someone else's invitation.
async fn passkey_first(
    state: &AppState,
    s: &Strings,
    tenant: &Tenant,
    (email, username, typed): (&str, &str, bool),
    interaction: &str,
) -> Result<Created, AppError> {
    let (tid, e2, n2) = (tenant.id.clone(), email.to_owned(), username.to_owned());
    let (by_email, by_name, pending) = state
        .store(move |db| {
            let pending = db.pending_invitation(&tid, &e2)?;
            Ok::<_, StoreError>((
                db.user_by_email(&tid, &e2)?,
                db.user_by_username(&tid, &n2)?,
                pending,
            ))
        })
        .await?;
    if let Some(owner) = by_email {
        notify_owner(state, s, tenant, &owner).await?;
        return Ok(Created::EmailTaken);
    }
    if by_name.is_some() && typed {
        return Ok(Created::UsernameTaken);
    }
    let u = i18n::signup(s);
    let words = Wording {
        subject: u.mail_passkey_subject,
        body: u.mail_passkey_body,
    };
    let tail = if interaction.is_empty() {
        String::new()
    } else {
        format!("&interaction={interaction}")
    };
    let now = state.clock.now_millis();
    let expires_at = now + PASSKEY_FIRST_SECS * 1000;
    let issuer = state.config.issuer(&tenant.slug);
    let (st, t) = (state.clone(), tenant.clone());
    let new = NewInvitation {
        email: email.to_owned(),
        username: typed.then(|| username.to_owned()),
        display_name: None,
        groups: Vec::new(),
        expires_at,
    };
    let outcome = state
        .store(move |db| -> Result<Result<(), StoreError>, AppError> {
            let inviter = Inviter {
                db,
                keys: &st.keys,
                rng: &*st.rng,
                issuer: &issuer,
                tenant: &t,
                actor: SELF_SIGNUP,
                now,
            };
            let done = match pending {
                Some(p) if p.invited_by == SELF_SIGNUP => {
                    inviter.resend_worded(&p.id, expires_at, &words, &tail)
                }
                Some(_) => return Ok(Ok(())),
                None => inviter.create_worded(&new, &words, &tail),
            };
            match done {
                Ok(_) => Ok(Ok(())),
                Err(ServiceError::Store(c @ StoreError::Conflict(_))) => Ok(Err(c)),
                Err(e) => Err(e.into()),
            }
        })
        .await?;
    match outcome {
        Ok(()) => {
            state.mail.wake();
            Ok(Created::Yes)
        }
        // Lost a race to another sign-up or an account of the same name: answered the same,
        // except for a typed username.
        Err(StoreError::Conflict(m)) if typed && m.contains("username") => Ok(Created::UsernameTaken),
        Err(_) => Ok(Created::EmailTaken),
    }
}

/// "Someone tried to sign up with your address": the owner hears of it, the page says nothing.
async fn notify_owner(state: &AppState, s: &Strings, tenant: &Tenant, owner: &User) -> Result<(), AppError> {
    let u = i18n::signup(s);
    let issuer = state.config.issuer(&tenant.slug);
    let email = owner.email.clone().unwrap_or_default();
    let fill = |t: &str| {
        t.replace("{tenant}", &tenant.display_name)
            .replace("{email}", &email)
            .replace("{user}", &owner.username)
            .replace("{link}", &format!("{issuer}/login"))
            .replace("{reset}", &format!("{issuer}/password/forgot"))
    };
    let (subject, body) = (fill(u.mail_taken_subject), fill(u.mail_taken_body));
    let (st, tid, to) = (state.clone(), tenant.id.clone(), email.clone());
    state
        .store(move |db| -> Result<(), AppError> {
            let mail = latchkey_services::mail::compose(
                &st.keys,
                &*st.rng,
                latchkey_store::Channel::Mail,
                &tid,
                &to,
                &subject,
                &body,
            )?;
            Ok(db.queue_mail(&tid, &mail)?)
        })
        .await?;
    state.mail.wake();
    audit(
        state,
        tenant,
        failure("user.signup", format!("user:{}", owner.id), "email_taken"),
    )
    .await
}
