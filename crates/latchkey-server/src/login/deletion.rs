//! Deleting one's own account from the account page (docs/sign-in.md#deleting-your-account).
//! The request is confirmed by re-authentication in the signed-in session: the current password
//! (throttled and audited like a password change), or for an account without one a passkey
//! assertion whose ceremony state is kept server-side and taken once. CSRF-protected like every
//! account form.
//!
//! With the tenant's `accounts.deletion_grace_days` at 0 the account is deleted at once; above
//! 0 it is closed (disabled, sessions void, OAuth grants revoked) and the retention pass deletes
//! it when due, unless an operator restores it first. Either way every session ends and the
//! user is mailed.

use super::account::{View, account_form, render};
use super::passkey::{
    audit_refusal, field, keep, passkeys_of, record_use, refused, response_json, rp, stored, take,
};
use super::throttle::{Gate, Throttle};
use super::{
    AppError, audit, client_ip, csrf, failure, hashing_error, redirect_signed_out, signed_in, strings,
};
use crate::state::AppState;
use crate::web::blocking::{Blocking, blocking};
use crate::web::errors::Kind;
use crate::web::i18n_lifecycle::{self, LifecycleStrings};
use crate::web::respond::json_redirect;
use crate::web::tenant::InTenant;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_core::{NewAuditEvent, Tenant, User};
use latchkey_store::{Channel, LifecycleRepo, UserRepo};
use serde_json::{Value, json};

/// The longest grace period a policy may ask for.
const MAX_GRACE_DAYS: u32 = 90;

/// POST `/t/{tenant}/account/delete`: confirmed by the current password.
pub(super) async fn with_password(
    req: HttpRequest,
    InTenant(t): InTenant,
    state: web::Data<AppState>,
    form: crate::web::form::FormParams,
) -> Result<HttpResponse, AppError> {
    let (t, id, user) = match account_form(&req, t, &state, &form).await? {
        Ok(found) => found,
        Err(to_login) => return Ok(to_login),
    };
    let s = strings(&req);
    let l = i18n_lifecycle::of(s);
    if user.password_hash.is_none() {
        let view = View::error(&id, &user, StatusCode::BAD_REQUEST, l.delete_passkey_intro.into());
        return render(&state, &req, &t, view).await;
    }
    let ip = client_ip(&req);
    let throttle = Throttle {
        store: &*state.ephemeral,
        tenant: &t,
    };
    let account = format!("id:{}", user.id);
    if let Gate::Wait(left) = throttle.check(&account, &ip).await? {
        let msg = s.throttled.replace("{secs}", &left.as_secs().max(1).to_string());
        let view = View::error(&id, &user, StatusCode::TOO_MANY_REQUESTS, msg);
        let res = render(&state, &req, &t, view).await?;
        return Ok(super::retry_after(res, left.as_secs()));
    }
    let presented = form.get("current_password").unwrap_or_default().to_owned();
    let verdict = state
        .hasher
        .verify(presented, user.password_hash.clone())
        .await
        .map_err(hashing_error)?;
    if !verdict.matches {
        throttle.failed(&account, &ip).await?;
        let who = format!("user:{}", user.id);
        let event = NewAuditEvent {
            actor: who.clone(),
            ..failure("user.delete", who, "wrong_password")
        };
        audit(&state, &t, event).await?;
        let view = View::error(
            &id,
            &user,
            StatusCode::BAD_REQUEST,
            l.delete_wrong_password.into(),
        );
        return render(&state, &req, &t, view).await;
    }
    throttle.release(&account, &ip).await?;
    let notice = delete_account(&state, l, &t, &user).await?;
    redirect_signed_out(&state, &t, notice)
}

/// Deletes the account now, or closes it for the grace period; ends every session and mails
/// the user. Returns the sign-in page's notice.
async fn delete_account(
    state: &AppState,
    l: &'static LifecycleStrings,
    t: &Tenant,
    user: &User,
) -> Result<&'static str, AppError> {
    let grace = t.policy.accounts.deletion_grace_days.min(MAX_GRACE_DAYS);
    let (tid, uid, actor) = (t.id.clone(), user.id.clone(), format!("user:{}", user.id));
    let fill = |text: &str, date: &str| {
        text.replace("{user}", &user.username)
            .replace("{tenant}", &t.display_name)
            .replace("{date}", date)
    };
    let notice = if grace == 0 {
        state.store(move |db| db.delete_user(&tid, &actor, &uid)).await?;
        if let Some(email) = &user.email {
            let body = fill(l.mail_deleted_body, "");
            crate::flow::notify::queue(state, Channel::Mail, &t.id, email, l.mail_deleted_subject, body)
                .await?;
        }
        "deleted"
    } else {
        let due = state.clock.now_millis() + i64::from(grace) * 86_400_000;
        let body = fill(l.mail_deletion_body, &super::account::when(due));
        let (st, email, subject) = (state.clone(), user.email.clone(), l.mail_deletion_subject);
        blocking(move || -> Result<(), AppError> {
            let mail = email
                .map(|to| {
                    latchkey_services::mail::compose(
                        &st.keys,
                        &*st.rng,
                        Channel::Mail,
                        &tid,
                        &to,
                        subject,
                        &body,
                    )
                })
                .transpose()?;
            st.db.request_deletion(&tid, &actor, &uid, due, mail.as_ref())?;
            Ok(())
        })
        .await?;
        state.mail.wake();
        "deletion_scheduled"
    };
    let ended = state.ephemeral.delete_user_sessions(&t.id, &user.id).await?;
    tracing::info!(tenant = %t.slug, user = %user.id, grace_days = grace, sessions_ended = ended, "account deletion asked for by its user");
    Ok(notice)
}

type Signed = (latchkey_session::SessionId, latchkey_core::Session, User);

/// The signed-in session of a JSON call, after its CSRF check.
async fn json_session(
    state: &AppState,
    req: &HttpRequest,
    t: &Tenant,
    body: &Value,
) -> Result<Signed, AppError> {
    let Some(found) = signed_in(state, req, t).await? else {
        return Err(AppError::new(Kind::Unauthorized, "Sign in first.").json());
    };
    if !csrf::check(
        state,
        req,
        Some(found.0.cookie_value()),
        Some(field(body, "csrf")),
    ) {
        return Err(AppError::new(Kind::Forbidden, strings(req).form_expired).json());
    }
    Ok(found)
}

/// POST `/t/{tenant}/account/delete/passkey/options`: an assertion request for the user's own
/// passkeys.
pub(super) async fn passkey_options(
    req: HttpRequest,
    InTenant(t): InTenant,
    state: web::Data<AppState>,
    body: web::Json<Value>,
) -> Result<HttpResponse, AppError> {
    let (sid, _, user) = json_session(&state, &req, &t, &body).await?;
    let keys = passkeys_of(&state, &t, &user).await?;
    if keys.is_empty() {
        return Ok(refused("No passkey is registered."));
    }
    let (options, ceremony) = rp(&state, &t)?
        .start_authentication(&stored(&keys))
        .map_err(|e| AppError::internal("passkey check", e))?;
    keep(&state, &t, "delete", sid.cookie_value(), &ceremony).await?;
    Ok(HttpResponse::Ok().json(options))
}

/// POST `/t/{tenant}/account/delete/passkey`: the assertion; deletes the account when it holds.
pub(super) async fn passkey_finish(
    req: HttpRequest,
    InTenant(t): InTenant,
    state: web::Data<AppState>,
    body: web::Json<Value>,
) -> Result<HttpResponse, AppError> {
    let (sid, _, user) = json_session(&state, &req, &t, &body).await?;
    let Some(ceremony) = take(&state, &t, "delete", sid.cookie_value()).await? else {
        return Ok(refused("This passkey request has expired. Try again."));
    };
    let keys = passkeys_of(&state, &t, &user).await?;
    let verified =
        match rp(&state, &t)?.finish_authentication(&response_json(&body), &ceremony, &stored(&keys)) {
            Ok(v) => v,
            Err(e) => {
                audit_refusal(&state, &t, Some(&user), "user.delete", &e).await?;
                return Ok(refused("The passkey was not accepted."));
            }
        };
    record_use(&state, &t, &verified).await?;
    let l = i18n_lifecycle::of(strings(&req));
    let notice = delete_account(&state, l, &t, &user).await?;
    let done = redirect_signed_out(&state, &t, notice)?;
    let location = crate::web::urls::login(&t.slug, Some(&format!("{notice}=1")));
    json_redirect(&done, &json!({"redirect": location}))
}
