//! The admin console: `/t/{tenant}/admin/…`, server-rendered pages for the tenant's admins,
//! usable without JavaScript. An admin is a user of the tenant holding a console credential
//! (an `admin_tokens` row bound to them); they sign in on the tenant's own sign-in pages, and
//! the console always asks for a second factor, whatever the tenant's MFA policy. Every page
//! reads and every form acts through the admin API in-process ([`api`]), so a console admin
//! has exactly their credential's permissions and each action is audited like an API call.
//! Forms carry the session-bound CSRF token; pages get the strict default CSP.

pub(crate) mod api;
mod clients;
mod page;
mod policies;
mod saml;
mod system;
mod users;
mod views;

use super::ConsoleCredential;
use crate::flow::csrf;
use crate::flow::factor;
use crate::flow::session::{self, signed_in};
use crate::state::AppState;
use crate::web::blocking::Blocking;
use crate::web::errors::{AppError, Kind};
use crate::web::form::{FormParams, UploadForm};
use crate::web::respond::{see_other, strings};
use crate::web::tenant::InTenant;
use actix_web::http::Method;
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_core::{NewAuditEvent, Permission, Permissions, Tenant, User};
use latchkey_session::SessionId;
use latchkey_store::{AdminTokenRepo, SystemTokenRepo};
use serde_json::{Value, json};

pub(crate) use page::T;
pub use system::{ACTIONS as SYSTEM_ACTIONS, PAGES as SYSTEM_PAGES};
pub(crate) use views::css;

/// Every console page, by its path below `/t/{tenant}/admin/` (the tests walk them all).
pub const PAGES: &[&str] = &[
    "", "users", "groups", "clients", "saml", "policies", "keys", "audit", "risk",
];

/// Every console action (`POST /t/{tenant}/admin/do/{op}`); each checks the CSRF token first.
pub const ACTIONS: &[&str] = &[
    "user-create",
    "user-invite",
    "user-disable",
    "user-enable",
    "user-delete",
    "user-mfa-reset",
    "user-sessions-revoke",
    "user-grants-revoke",
    "user-attribute",
    "user-group",
    "user-role",
    "key-rotate",
    "key-activate",
    "key-revoke",
    "key-retire",
    "client-create",
    "client-update",
    "client-rotate-secret",
    "client-delete",
    "group-create",
    "group-member-remove",
    "group-delete",
    "role-create",
    "role-delete",
    "policy-section",
    "policy-patch",
    "saml-create",
    "saml-test",
    "saml-refresh",
    "domain-add",
    "domain-verify",
];

/// The actions whose forms are marked destructive ([`page::Form::danger`]): besides the
/// browser's `required` tick, the server refuses them without `confirm=yes`.
pub(crate) const DESTRUCTIVE: &[&str] = &[
    "user-disable",
    "user-delete",
    "user-mfa-reset",
    "user-sessions-revoke",
    "user-grants-revoke",
    "key-rotate",
    "key-activate",
    "key-revoke",
    "key-retire",
    "group-delete",
    "role-delete",
    "client-rotate-secret",
    "client-delete",
    "tenant-rotate-dek",
    "tenant-delete",
];

/// The console's routes, relative to the tenant scope `/t/{tenant}`.
pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin", web::get().to(to_home))
        .route("/admin/", web::get().to(views::home))
        .route("/admin/do/{op}", web::post().to(act));
    users::configure(cfg);
    views::configure(cfg);
    policies::configure(cfg);
    clients::configure(cfg);
    saml::configure(cfg);
    system::configure(cfg);
}

async fn to_home(InTenant(t): InTenant) -> HttpResponse {
    see_other(&home_url(&t.slug))
}

fn home_url(slug: &str) -> String {
    format!("/t/{slug}/admin/")
}

/// A signed-in console admin: who they are, what their credential may do, and their session
/// (which binds the forms' CSRF token).
pub(crate) struct Admin {
    pub tenant: Tenant,
    pub user: User,
    pub sid: SessionId,
    pub credential: ConsoleCredential,
    pub permissions: Permissions,
    pub t: T,
    /// The system console: calls go to the system scope.
    pub system: bool,
}

impl Admin {
    pub fn may(&self, p: Permission) -> bool {
        self.permissions.contains(p)
    }

    /// The CSRF token every form of this admin carries.
    pub fn csrf(&self) -> String {
        csrf::token_for(self.sid.cookie_value())
    }

    /// An admin API call as this admin; `path` is below `/admin/t/{tenant}`.
    pub async fn api(
        &self,
        state: &AppState,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<api::Answer, AppError> {
        self.api_if(state, (method, path), body, None).await
    }

    /// [`api`](Self::api) that changes the object only if it is still at version `if_match`
    /// (the `ETag` the page was built from): a concurrent edit answers 412, not a lost write.
    pub async fn api_if(
        &self,
        state: &AppState,
        (method, path): (Method, &str),
        body: Option<&Value>,
        if_match: Option<&str>,
    ) -> Result<api::Answer, AppError> {
        api::call(
            state,
            &self.credential,
            (!self.system).then_some(self.tenant.slug.as_str()),
            api::Call {
                method,
                path,
                body,
                if_match,
            },
        )
        .await
    }

    /// A read that must succeed, as `T`.
    pub async fn get<R: serde::de::DeserializeOwned>(
        &self,
        state: &AppState,
        path: &str,
    ) -> Result<R, AppError> {
        self.api(state, Method::GET, path, None).await?.parse(path)
    }
}

/// Who may open the console: the signed-in user with a console credential, after a second
/// factor in this session. Anyone else is sent to sign in, to their second factor, or shown
/// why not (a refusal is audited).
pub(crate) async fn admin(
    state: &AppState,
    req: &HttpRequest,
    tenant: Tenant,
) -> Result<Result<Admin, HttpResponse>, AppError> {
    gate(state, req, tenant, false).await
}

/// [`admin`] for the system console: the signed-in user must be an operator (a system
/// credential bound to their account in this tenant).
pub(crate) async fn operator(
    state: &AppState,
    req: &HttpRequest,
    tenant: Tenant,
) -> Result<Result<Admin, HttpResponse>, AppError> {
    gate(state, req, tenant, true).await
}

async fn gate(
    state: &AppState,
    req: &HttpRequest,
    tenant: Tenant,
    system: bool,
) -> Result<Result<Admin, HttpResponse>, AppError> {
    let t = T::of(strings(req).lang);
    let here = here(req, &tenant);
    let Some((sid, s, user)) = signed_in(state, req, &tenant).await? else {
        return Ok(Err(see_other(&crate::web::urls::login(
            &tenant.slug,
            Some(&format!("return_to={}", seg(&here))),
        ))));
    };
    let Some((token, permissions)) = credential_of(state, &tenant, &user, system).await? else {
        refuse(
            state,
            &tenant,
            &user,
            if system { "not_an_operator" } else { "not_an_admin" },
        )
        .await?;
        return Err(AppError::new(
            Kind::Forbidden,
            if system {
                t.tr(
                    "Your account is not an operator of this installation.",
                    "Ihr Konto ist kein Betreiber dieser Installation.",
                )
            } else {
                t.tr(
                    "Your account is not an administrator of this tenant.",
                    "Ihr Konto ist kein Administrator dieses Mandanten.",
                )
            },
        ));
    };
    if !s.amr.iter().any(|m| m == "mfa") {
        return second_factor(state, &tenant, (sid, s, &user), &here, &t)
            .await
            .map(Err);
    }
    let credential = ConsoleCredential {
        principal: format!("console:{}:user:{}", token.id, user.id),
        token,
    };
    Ok(Ok(Admin {
        tenant,
        user,
        sid,
        credential,
        permissions,
        t,
        system,
    }))
}

/// The user's live console credential (a tenant's, or for the system console a system one)
/// and what it may do.
async fn credential_of(
    state: &AppState,
    tenant: &Tenant,
    user: &User,
    system: bool,
) -> Result<Option<(latchkey_core::AdminToken, Permissions)>, AppError> {
    let (tid, uid) = (tenant.id.clone(), user.id.clone());
    let now = state.clock.now_millis();
    let found = state
        .store(move |db| {
            let token = if system {
                db.system_token_by_user(&tid, &uid)?
            } else {
                db.admin_token_by_user(&tid, &uid)?
            };
            let Some(token) = token.filter(|tok| !tok.is_expired(now)) else {
                return Ok::<_, latchkey_store::StoreError>(None);
            };
            let permissions = if system {
                latchkey_store::system_permissions(&token)
            } else {
                db.effective_permissions(&tid, &token)?
            };
            Ok(Some((token, permissions)))
        })
        .await?;
    Ok(found)
}

/// Sends an admin who signed in with one factor to their second; one who has none to set one
/// up first (a factor added in this session would not count: whoever holds only the password
/// must not reach the console by adding a factor of their own).
async fn second_factor(
    state: &AppState,
    tenant: &Tenant,
    (sid, mut s, user): (SessionId, latchkey_core::Session, &User),
    here: &str,
    t: &T,
) -> Result<HttpResponse, AppError> {
    if let Some(due) = factor::due_for_step_up(state, tenant, user, s.created_at).await? {
        s.factor_due = Some(due);
        session::save(state, tenant, &sid, &s).await?;
        return Ok(see_other(&factor::page_for(tenant, due, here)));
    }
    refuse(state, tenant, user, "second_factor_missing").await?;
    Err(AppError::new(
        Kind::Forbidden,
        t.tr(
            "The admin console needs a second factor. Add a passkey or an authenticator app on your account page, then sign out and sign in again with it.",
            "Die Verwaltung verlangt einen zweiten Faktor. Richten Sie auf Ihrer Kontoseite einen Passkey oder eine Authenticator-App ein, melden Sie sich ab und mit dem Faktor wieder an.",
        ),
    ))
}

async fn refuse(state: &AppState, tenant: &Tenant, user: &User, reason: &str) -> Result<(), AppError> {
    let who = format!("user:{}", user.id);
    let event = NewAuditEvent {
        actor: who.clone(),
        action: "console.denied".to_owned(),
        target: who,
        outcome: latchkey_core::Outcome::Denied,
        details: json!({"reason": reason}),
    };
    crate::flow::audit::audit(state, tenant, event).await
}

/// This request's path and query, to come back to after signing in.
fn here(req: &HttpRequest, tenant: &Tenant) -> String {
    let path = req.uri().path_and_query().map_or("", |p| p.as_str());
    crate::web::respond::checked_return_to(tenant, Some(path)).unwrap_or_else(|| home_url(&tenant.slug))
}

/// A console page's admin, or the response that stands instead of the page.
macro_rules! admin_or_return {
    ($state:expr, $req:expr, $tenant:expr) => {
        match $crate::admin_api::console::admin($state, $req, $tenant).await? {
            Ok(a) => a,
            Err(res) => return Ok(res),
        }
    };
}
pub(crate) use admin_or_return;

/// A console form post of action `op`: the admin, after the CSRF token and origin checks and,
/// for a destructive action, its confirmation.
async fn posted(
    state: &AppState,
    req: &HttpRequest,
    (tenant, op): (Tenant, &str),
    form: &FormParams,
    system: bool,
) -> Result<Result<Admin, HttpResponse>, AppError> {
    let Some((sid, _, _)) = signed_in(state, req, &tenant).await? else {
        return Ok(Err(see_other(&crate::web::urls::login(&tenant.slug, None))));
    };
    if !csrf::check(state, req, Some(sid.cookie_value()), form.get("csrf")) {
        return Err(AppError::new(Kind::Forbidden, strings(req).form_expired));
    }
    if DESTRUCTIVE.contains(&op) && form.get("confirm") != Some("yes") {
        let t = T::of(strings(req).lang);
        return Err(AppError::new(
            Kind::BadRequest,
            t.tr(
                "This action changes things that can't be undone: tick its confirmation first.",
                "Diese Aktion lässt sich nicht rückgängig machen: bestätigen Sie sie zuerst.",
            ),
        ));
    }
    gate(state, req, tenant, system).await
}

/// `POST /t/{tenant}/admin/do/{op}`: one console action (see [`users::action`] and
/// [`views::action`]), then back to the page it came from with a notice, or the page's error.
/// The form may be `multipart/form-data` (the SAML guide's metadata upload).
async fn act(
    req: HttpRequest,
    InTenant(tenant): InTenant,
    op: web::Path<(String, String)>,
    state: web::Data<AppState>,
    UploadForm(form): UploadForm,
) -> Result<HttpResponse, AppError> {
    let op = op.into_inner().1;
    let a = match posted(&state, &req, (tenant, &op), &form, false).await? {
        Ok(a) => a,
        Err(res) => return Ok(res),
    };
    let outcome = if let Some(done) = users::action(&state, &a, &op, &form).await? {
        done
    } else if let Some(done) = saml::action(&state, &a, &op, &form).await? {
        done
    } else if let Some(done) = clients::action(&state, &a, &op, &form).await? {
        done
    } else if let Some(done) = policies::action(&state, &a, &op, &form).await? {
        done
    } else {
        views::action(&state, &a, &op, &form).await?
    };
    if let Done::Show(title, blocks) = outcome {
        return page::render(&state, &req, &a, title, &blocks);
    }
    Ok(finish(&a, &form, outcome, &home_url(&a.tenant.slug)))
}

/// Where an action sends the browser: back to its page (a console path below `home`) with a
/// notice or the API's reason, or to the page it names.
fn finish(a: &Admin, form: &FormParams, outcome: Done, home: &str) -> HttpResponse {
    let back = form
        .get("back")
        .and_then(|b| crate::web::respond::checked_return_to(&a.tenant, Some(b)))
        .filter(|b| b.starts_with(home))
        .unwrap_or_else(|| home.to_owned());
    match outcome {
        Done::Back(notice) => see_other(&with_param(&back, "notice", &notice)),
        Done::To(path, notice) => see_other(&with_param(&path, "notice", &notice)),
        Done::Failed(error) => see_other(&with_param(&back, "error", &error)),
        Done::Show((_, title), _) => see_other(&with_param(&back, "notice", title)),
    }
}

fn with_param(path: &str, name: &str, value: &str) -> String {
    let sep = if path.contains('?') { '&' } else { '?' };
    let value: String = value.chars().take(300).collect();
    format!("{path}{sep}{name}={}", seg(&value))
}

/// What a console action ended in.
pub(crate) enum Done {
    /// Back to the page with this notice.
    Back(String),
    /// To another console page with this notice.
    To(String, String),
    /// Back to the page with the API's reason it refused.
    Failed(String),
    /// A page of its own, in section `.0.0` titled `.0.1` (a test sign-in's start).
    Show((&'static str, &'static str), Vec<page::Block>),
}

impl Done {
    /// The answer of an API call: the notice when it worked, else the API's own reason.
    pub fn of(answer: &api::Answer, notice: String) -> Done {
        if answer.ok() {
            Done::Back(notice)
        } else {
            Done::Failed(answer.problem())
        }
    }
}

/// A path segment or query value, percent-encoded except for RFC 3986's unreserved characters.
pub(crate) fn seg(s: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(s, SET).to_string()
}

/// Refuses a section the admin's credential may not read (the API would refuse each read too;
/// this answers before any, with the permission named).
pub(super) fn need(a: &Admin, p: Permission) -> Result<(), AppError> {
    if a.may(p) {
        return Ok(());
    }
    Err(AppError::new(
        Kind::Forbidden,
        format!(
            "{} {p}.",
            a.t.tr(
                "This page needs the permission",
                "Diese Seite braucht die Berechtigung"
            )
        ),
    ))
}

/// An action name no page offers.
pub(crate) fn unknown_action() -> AppError {
    AppError::new(Kind::NotFound, "No such console action.")
}
