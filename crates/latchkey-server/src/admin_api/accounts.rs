//! `/admin/t/{tenant}/users/{id}…`, a user's account: created, changed by a JSON
//! merge patch under `If-Match`; their password, email verification, second factors, effective
//! access and OAuth grants — what the CLI's `user …` and `role effective` do, through the same
//! checks (the tenant's password policy in `latchkey_mfa`, values and versions in the store).
//! Writes are audited by the store with the change; reads here.

use super::{
    Caller, audit, authenticate, body, etag_response, if_match, json_ok, merge_object, missing, not_found,
};
use crate::flow::users::hashing_error;
use crate::state::AppState;
use crate::web::blocking::Blocking;
use crate::web::errors::{AppError, Kind};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_core::{ClientId, EditableBy, Outcome, Tenant, UnixMillis, User, UserId};
use latchkey_mfa::PasswordError;
use latchkey_store::{
    AttributeRepo, EmailVerificationRepo, GroupRepo, MfaRepo, NewUser, OAuthRepo, StoreError, UserRepo,
    UserUpdate,
};
use serde_json::{Map, Value, json};

/// The caller and the user the path names, when they are in the caller's tenant.
async fn caller_and_user(
    req: &HttpRequest,
    state: &AppState,
    (slug, id): (&str, String),
) -> Result<(Caller, User), AppError> {
    let caller = authenticate(req, state, slug).await?;
    let (tid, uid) = (caller.tenant.id.clone(), UserId(id));
    let user = state
        .store(move |db| db.user(&tid, &uid))
        .await?
        .ok_or_else(|| not_found("user"))?;
    Ok((caller, user))
}

/// A refused password as a 422 problem naming every unmet rule; never the password.
fn password_refused(e: PasswordError) -> AppError {
    match e {
        PasswordError::Policy(v) => AppError::new(
            Kind::Unprocessable,
            format!("The password does not meet the tenant's policy: it needs {v}."),
        ),
        other => hashing_error(other),
    }
}

/// `password` checked against the tenant's policy for this user (as `latchkey user
/// set-password` checks it: length, classes, the common and breached list, the user's names)
/// and hashed on the password pool.
async fn checked_hash(
    state: &AppState,
    tenant: &Tenant,
    password: String,
    (username, email): (&str, Option<&str>),
) -> Result<String, AppError> {
    latchkey_mfa::check_user_password(&password, &tenant.policy.password, username, email)
        .map_err(password_refused)?;
    state.hasher.hash(password).await.map_err(hashing_error)
}

/// A verification link for the user's address and its sealed mail (the outbox sends it).
fn verification(
    state: &AppState,
    tenant: &Tenant,
    (username, email): (&str, &str),
) -> Result<latchkey_services::verification::Prepared, AppError> {
    Ok(latchkey_services::verification::prepare(
        &state.keys,
        &*state.rng,
        (&tenant.id, &tenant.display_name),
        &state.config.issuer(&tenant.slug),
        (username, email),
        &latchkey_services::verification::ENGLISH,
        state.clock.now_millis(),
    )?)
}

#[derive(serde::Deserialize, schemars::JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct NewUserBody {
    username: String,
    email: Option<String>,
    display_name: Option<String>,
    /// The first password; without one the user signs in another way (a reset link, SAML, a
    /// passkey) until one is set.
    password: Option<String>,
    /// Attribute values, checked against the tenant's schema.
    #[serde(default)]
    attributes: Map<String, Value>,
}

/// `POST …/users`: creates a user (`username`, `email`, `display_name`, an optional `password`
/// under the tenant's policy, `attributes`); an address gets its verification mail, as with
/// `latchkey user create`. 201 with the user; `Idempotency-Key` works.
pub(super) async fn create(
    req: HttpRequest,
    slug: web::Path<String>,
    state: web::Data<AppState>,
    bytes: web::Bytes,
) -> Result<HttpResponse, AppError> {
    async {
        let caller = authenticate(&req, &state, &slug).await?;
        let b: NewUserBody = body(&bytes, false)?;
        let run = async {
            let username = latchkey_core::validate::username(&b.username).map_err(StoreError::from)?;
            let email = b
                .email
                .as_deref()
                .map(latchkey_core::validate::email)
                .transpose()
                .map_err(StoreError::from)?;
            let password_hash = match b.password {
                Some(p) => {
                    Some(checked_hash(&state, &caller.tenant, p, (&username, email.as_deref())).await?)
                }
                None => None,
            };
            let changes: Vec<(String, Option<Value>)> =
                b.attributes.into_iter().map(|(k, v)| (k, Some(v))).collect();
            let new = NewUser {
                username: username.clone(),
                email: email.clone(),
                display_name: b.display_name,
                password_hash,
                email_verified: false,
            };
            let (st, t, actor) = (state.get_ref().clone(), caller.tenant.clone(), caller.actor());
            let user = state
                .store(move |db| -> Result<User, AppError> {
                    db.check_user_attributes(&t.id, &changes, EditableBy::Admin)?;
                    let link = email
                        .as_deref()
                        .map(|e| verification(&st, &t, (&username, e)))
                        .transpose()?;
                    let v = link
                        .as_ref()
                        .map(latchkey_services::verification::Prepared::verification);
                    // The user and the values commit together: a refused value leaves no user.
                    Ok(db.create_user_verifying(&t.id, &actor, "user.create", &new, v.as_ref(), &changes)?)
                })
                .await?;
            if user.email.is_some() {
                state.mail.wake();
            }
            Ok((StatusCode::CREATED, json!(user)))
        };
        super::idempotency::once(&state, &caller, (&req, &bytes), run).await
    }
    .await
    .map_err(AppError::problem)
}

/// What a merge patch of a user may change; `null` clears.
#[allow(clippy::option_option)] // absent, `null` or a value: a merge patch's three cases
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct UserPatch {
    #[serde(default, deserialize_with = "super::present")]
    email: Option<Option<String>>,
    #[serde(default, deserialize_with = "super::present")]
    display_name: Option<Option<String>>,
}

/// `PATCH …/users/{id}`: a merge patch of `email` and `display_name` (`null` clears), under
/// `If-Match` (412 when the user changed since). A new address is unverified and gets a
/// verification mail, as with `latchkey user update`. Answers the user and its new `ETag`.
pub(super) async fn update(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
    bytes: web::Bytes,
) -> Result<HttpResponse, AppError> {
    async {
        let (slug, id) = path.into_inner();
        let caller = authenticate(&req, &state, &slug).await?;
        let asked: UserPatch = merge_object(&req, &bytes)?;
        let change = UserUpdate {
            if_version: if_match(&req)?,
            email: asked.email,
            display_name: asked.display_name,
        };
        let (st, t, actor, uid) = (
            state.get_ref().clone(),
            caller.tenant.clone(),
            caller.actor(),
            UserId(id),
        );
        let (user, mailed) = state
            .store(move |db| -> Result<(User, bool), AppError> {
                let before = db
                    .user(&t.id, &uid)?
                    .ok_or(StoreError::NotFound { what: "user" })?;
                let after = db.update_user(&t.id, &actor, &uid, &change)?;
                let Some(email) = after.email.as_deref().filter(|_| after.email != before.email) else {
                    return Ok((after, false));
                };
                let p = verification(&st, &t, (&after.username, email))?;
                db.request_email_verification(&t.id, &actor, &after.id, &p.verification())?;
                let after = db
                    .user(&t.id, &uid)?
                    .ok_or(StoreError::NotFound { what: "user" })?;
                Ok((after, true))
            })
            .await
            .map_err(missing("user"))?;
        if mailed {
            state.mail.wake();
        }
        Ok(etag_response(&user, user.updated_at))
    }
    .await
    .map_err(AppError::problem)
}

#[derive(serde::Deserialize, schemars::JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct PasswordBody {
    password: String,
}

/// `POST …/users/{id}/password` `{"password"}`: sets the user's password under the tenant's
/// policy (422 naming the unmet rules), as `latchkey user set-password` does: the old one joins
/// the history and every OAuth grant of the user is revoked with its tokens. Answers the user;
/// the password is never echoed or logged.
pub(super) async fn set_password(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
    bytes: web::Bytes,
) -> Result<HttpResponse, AppError> {
    async {
        let (slug, id) = path.into_inner();
        let (caller, user) = caller_and_user(&req, &state, (&slug, id)).await?;
        let b: PasswordBody = body(&bytes, false)?;
        let hash = checked_hash(
            &state,
            &caller.tenant,
            b.password,
            (&user.username, user.email.as_deref()),
        )
        .await?;
        let (tid, actor) = (caller.tenant.id.clone(), caller.actor());
        let user = state
            .store(move |db| db.set_password_hash(&tid, &actor, &user.id, &hash))
            .await
            .map_err(missing("user"))?;
        Ok(etag_response(&user, user.updated_at))
    }
    .await
    .map_err(AppError::problem)
}

/// `POST …/users/{id}/verify-email`: the operator vouches for the user's address.
pub(super) async fn verify_email(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    async {
        let (slug, id) = path.into_inner();
        let caller = authenticate(&req, &state, &slug).await?;
        let (tid, uid, actor) = (caller.tenant.id.clone(), UserId(id), caller.actor());
        let user = state
            .store(move |db| db.set_email_verified(&tid, &actor, &uid, true))
            .await
            .map_err(missing("user"))?;
        Ok(etag_response(&user, user.updated_at))
    }
    .await
    .map_err(AppError::problem)
}

/// A user's second factors, without seeds or credentials.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub(super) struct Factors {
    user_id: UserId,
    /// The tenant's MFA mode in force.
    policy: latchkey_core::MfaMode,
    totp: Option<Totp>,
    passkeys: Vec<Passkey>,
    recovery_codes_left: usize,
}

#[derive(serde::Serialize, schemars::JsonSchema)]
#[allow(clippy::struct_field_names)]
struct Totp {
    created_at: UnixMillis,
    confirmed_at: Option<UnixMillis>,
    last_used_at: Option<UnixMillis>,
}

#[derive(serde::Serialize, schemars::JsonSchema)]
struct Passkey {
    id: String,
    name: String,
    created_at: UnixMillis,
    last_used_at: Option<UnixMillis>,
}

/// `GET …/users/{id}/mfa`: the user's second factors (authenticator app, passkeys) and the
/// recovery codes left, without seeds or credentials.
pub(super) async fn mfa_list(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    async {
        let (slug, id) = path.into_inner();
        let (caller, user) = caller_and_user(&req, &state, (&slug, id)).await?;
        let (tid, uid) = (caller.tenant.id.clone(), user.id.clone());
        let (totp, passkeys, left) = state
            .store(move |db| {
                Ok::<_, StoreError>((
                    db.totp(&tid, &uid)?,
                    db.passkeys(&tid, &uid)?,
                    db.recovery_codes_left(&tid, &uid)?,
                ))
            })
            .await?;
        let target = format!("user:{}", user.id);
        audit(&state, &caller, Outcome::Success, "mfa.read", &target, json!({})).await?;
        Ok(json_ok(&Factors {
            user_id: user.id,
            policy: caller.tenant.policy.mfa_mode(),
            totp: totp.map(|f| Totp {
                created_at: f.created_at,
                confirmed_at: f.confirmed_at,
                last_used_at: f.last_used_at,
            }),
            passkeys: passkeys
                .into_iter()
                .map(|k| Passkey {
                    id: k.id,
                    name: k.name,
                    created_at: k.created_at,
                    last_used_at: k.last_used_at,
                })
                .collect(),
            recovery_codes_left: left,
        }))
    }
    .await
    .map_err(AppError::problem)
}

#[derive(serde::Serialize, schemars::JsonSchema)]
pub(super) struct FactorsReset {
    user_id: UserId,
    /// How many factors and recovery codes went.
    removed: usize,
    sessions_ended: u64,
}

/// `DELETE …/users/{id}/mfa`: for a user who lost their device, as `latchkey user mfa reset`:
/// every factor and recovery code goes, their sessions end and their grants are revoked.
pub(super) async fn mfa_reset(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    async {
        let (slug, id) = path.into_inner();
        // The store's reset touches no row of an unknown user: look them up first (404).
        let (caller, user) = caller_and_user(&req, &state, (&slug, id)).await?;
        let (tid, uid, actor) = (caller.tenant.id.clone(), user.id, caller.actor());
        let who = uid.clone();
        let removed = state
            .store(move |db| db.reset_mfa(&tid, &actor, &who))
            .await
            .map_err(missing("user"))?;
        // The store voided the sessions; this clears them from the session store at once.
        let sessions = state
            .ephemeral
            .delete_user_sessions(&caller.tenant.id, &uid)
            .await?;
        Ok(json_ok(&FactorsReset {
            user_id: uid,
            removed,
            sessions_ended: sessions,
        }))
    }
    .await
    .map_err(AppError::problem)
}

#[derive(serde::Serialize, schemars::JsonSchema)]
pub(super) struct FactorRemoved {
    user_id: UserId,
    /// `totp` or the passkey's id.
    removed: String,
}

/// `DELETE …/users/{id}/mfa/{factor}`: removes one second factor: `totp` (the authenticator
/// app) or a passkey by its id (as `GET …/mfa` lists it); 404 when the user has no such factor.
/// Sessions stay, as when the user removes a factor themselves; `DELETE …/mfa` ends them.
pub(super) async fn mfa_remove(
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    async {
        let (slug, id, factor) = path.into_inner();
        let (caller, user) = caller_and_user(&req, &state, (&slug, id)).await?;
        let (tid, uid, actor, f) = (
            caller.tenant.id.clone(),
            user.id.clone(),
            caller.actor(),
            factor.clone(),
        );
        let removed = state
            .store(move |db| {
                if f == "totp" {
                    db.remove_totp(&tid, &actor, &uid)
                } else {
                    db.remove_passkey(&tid, &actor, &uid, &f)
                }
            })
            .await?;
        if !removed {
            return Err(not_found("factor"));
        }
        Ok(json_ok(&FactorRemoved {
            user_id: user.id,
            removed: factor,
        }))
    }
    .await
    .map_err(AppError::problem)
}

/// What a user holds, through every group.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub(super) struct UserAccess {
    user_id: UserId,
    username: String,
    #[serde(flatten)]
    access: latchkey_core::EffectiveAccess,
}

/// `GET …/users/{id}/roles`: what the user holds through every group, as `latchkey role
/// effective` prints it: tenant roles, client roles by `client_id`, and groups.
pub(super) async fn roles(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    async {
        let (slug, id) = path.into_inner();
        let (caller, user) = caller_and_user(&req, &state, (&slug, id)).await?;
        let (tid, uid) = (caller.tenant.id.clone(), user.id.clone());
        let access = state.store(move |db| db.effective_access(&tid, &uid)).await?;
        let target = format!("user:{}", user.id);
        audit(
            &state,
            &caller,
            Outcome::Success,
            "user.read_access",
            &target,
            json!({}),
        )
        .await?;
        Ok(json_ok(&UserAccess {
            user_id: user.id,
            username: user.username,
            access,
        }))
    }
    .await
    .map_err(AppError::problem)
}

/// `GET …/users/{id}/export`: everything held about the user (docs/privacy.md), the document
/// the user downloads from their account page; audited as `user.export`.
pub(super) async fn export(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    async {
        let (slug, id) = path.into_inner();
        let (caller, user) = caller_and_user(&req, &state, (&slug, id)).await?;
        let document = crate::flow::privacy::export(&state, &caller.tenant, &user, &caller.actor()).await?;
        Ok(json_ok(&document))
    }
    .await
    .map_err(AppError::problem)
}

/// `GET …/users/{id}/grants`: per client, what the user consented to and their live grants
/// (each a refresh-token family), by `client_id`.
pub(super) async fn grants(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    async {
        let (slug, id) = path.into_inner();
        let (caller, user) = caller_and_user(&req, &state, (&slug, id)).await?;
        let (tid, uid) = (caller.tenant.id.clone(), user.id.clone());
        let (clients, grants) = state
            .store(move |db| latchkey_services::grants::by_client(db, &tid, &uid))
            .await?;
        let target = format!("user:{}", user.id);
        let details = json!({"clients": clients.len(), "grants": grants});
        audit(&state, &caller, Outcome::Success, "grant.list", &target, details).await?;
        Ok(json_ok(&clients))
    }
    .await
    .map_err(AppError::problem)
}

#[derive(serde::Serialize, schemars::JsonSchema)]
pub(super) struct Revocation {
    user_id: UserId,
    /// The one client, or `null` for all.
    client_id: Option<ClientId>,
    consents_withdrawn: usize,
    grants_revoked: usize,
}

/// `DELETE …/users/{id}/grants[/{client_id}]`: withdraws the user's consents and revokes their
/// grants with every token, offline ones too, for one client or all; the next refresh fails.
/// Sessions stay (end them with `…/sessions`).
pub(super) async fn revoke_grants(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    async {
        let (slug, id) = path.into_inner();
        let client = req.match_info().get("client").map(|c| ClientId(c.to_owned()));
        let (caller, user) = caller_and_user(&req, &state, (&slug, id)).await?;
        let (tid, actor, uid, cl) = (
            caller.tenant.id.clone(),
            caller.actor(),
            user.id.clone(),
            client.clone(),
        );
        let (consents, grants) = state
            .store(move |db| db.revoke_user_grants(&tid, &actor, &uid, cl.as_ref()))
            .await?;
        if grants > 0 {
            state.metrics.oauth("revoke", "grant", "admin_revoked");
        }
        Ok(json_ok(&Revocation {
            user_id: user.id,
            client_id: client,
            consents_withdrawn: consents,
            grants_revoked: grants,
        }))
    }
    .await
    .map_err(AppError::problem)
}
