//! `/admin/t/{tenant}/credentials`, `/admin-roles` and `/permissions`: who may call this API.
//! A credential is an `lka_` token or an OAuth client of the tenant; it holds admin roles and
//! single permissions and starts with none. Nobody grants what they don't hold themselves, so
//! `credentials:write` is not a way to more power (docs/admin-api.md#credentials).

use super::{
    Caller, audit, authenticate, body, deny, etag_response, if_match, json_ok, list_of, missing, not_found,
};
use crate::state::AppState;
use crate::web::blocking::Blocking;
use crate::web::errors::{AppError, Kind};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_core::{
    AdminToken, BuiltinAdminRole, ClientId, OsRng, Outcome, Permission, Permissions, TenantId, UnixMillis,
    UserId, random_token, sha256_hex,
};
use latchkey_store::{AdminTokenRepo, ClientRepo, CredentialKind, Db, Grants, NewAdminToken, UserRepo};
use serde_json::json;

const MILLIS_PER_DAY: i64 = 86_400_000;

/// The tenant's permissions and admin roles.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub(super) struct Known {
    permissions: Vec<Permission>,
    roles: Vec<RoleView>,
}

#[derive(serde::Serialize, schemars::JsonSchema)]
struct RoleView {
    name: String,
    builtin: bool,
    /// A custom role's.
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    permissions: Permissions,
}

/// `GET /admin/t/{tenant}/permissions`: every permission and admin role this tenant knows.
pub(super) async fn permissions(
    req: HttpRequest,
    slug: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    async {
        let caller = authenticate(&req, &state, &slug).await?;
        let tid = caller.tenant.id.clone();
        let custom = state.store(move |db| db.list_admin_roles(&tid)).await?;
        let builtin = BuiltinAdminRole::ALL
            .iter()
            .filter(|r| **r != BuiltinAdminRole::SystemAdmin)
            .map(|r| RoleView {
                name: r.as_str().to_owned(),
                builtin: true,
                description: None,
                permissions: r.permissions(),
            });
        let custom = custom.into_iter().map(|r| RoleView {
            name: r.name,
            builtin: false,
            description: Some(r.description),
            permissions: r.permissions,
        });
        let tenant: Vec<Permission> = Permission::ALL
            .iter()
            .copied()
            .filter(|p| !p.is_system())
            .collect();
        audit(
            &state,
            &caller,
            Outcome::Success,
            "admin.permissions.read",
            "permissions",
            json!({}),
        )
        .await?;
        Ok(json_ok(&Known {
            permissions: tenant,
            roles: builtin.chain(custom).collect(),
        }))
    }
    .await
    .map_err(AppError::problem)
}

/// What a credential looks like over the API (never its hash).
#[derive(serde::Serialize, schemars::JsonSchema)]
pub(super) struct Credential {
    id: String,
    name: String,
    /// `token` (an `lka_` token), `client` (an admin client's access tokens) or `user` (a
    /// user of the tenant, who opens the admin console with two factors).
    kind: &'static str,
    client_id: Option<ClientId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<UserId>,
    roles: Vec<String>,
    permissions: Permissions,
    created_at: UnixMillis,
    expires_at: Option<UnixMillis>,
    updated_at: UnixMillis,
}

/// A new credential, with an `lka_` token's secret in this answer only.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub(super) struct NewCredentialView {
    #[serde(flatten)]
    credential: Credential,
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<String>,
}

fn view(t: &AdminToken) -> Credential {
    Credential {
        id: t.id.clone(),
        name: t.name.clone(),
        kind: match (&t.client_id, &t.user_id) {
            (Some(_), _) => "client",
            (None, Some(_)) => "user",
            (None, None) => "token",
        },
        client_id: t.client_id.clone(),
        user_id: t.user_id.clone(),
        roles: t.roles.clone(),
        permissions: t.permissions,
        created_at: t.created_at,
        expires_at: t.expires_at,
        updated_at: t.updated_at,
    }
}

/// Refuses (403, audited) a grant of anything the caller does not hold itself.
async fn within_reach(
    req: &HttpRequest,
    state: &AppState,
    caller: &Caller,
    roles: Vec<String>,
    permissions: Permissions,
) -> Result<(), AppError> {
    let probe = AdminToken {
        roles,
        permissions,
        ..caller.token.clone()
    };
    let tid = caller.tenant.id.clone();
    let asked = state
        .store(move |db| db.effective_permissions(&tid, &probe))
        .await?;
    match asked.iter().find(|p| !caller.permissions.contains(*p)) {
        Some(p) => deny(req, state, caller, p).await,
        None => Ok(()),
    }
}

/// `GET /admin/t/{tenant}/credentials`: the tenant's admin credentials, oldest first, paged.
pub(super) async fn list_credentials(
    req: HttpRequest,
    slug: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let fetch = |db: &Db, t: &TenantId| Ok(db.list_admin_tokens(t)?.iter().map(view).collect());
    // Creation time (zero-padded, so text order is time order), then id: the store's order.
    let key = |v: &Credential| format!("{:020}{}", v.created_at, v.id);
    list_of(
        (&req, &slug, &state),
        ("admin_token.list", "credentials"),
        fetch,
        key,
    )
    .await
}

/// `GET /admin/t/{tenant}/credentials/{id}` with its `ETag`.
pub(super) async fn get_credential(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    async {
        let (slug, id) = path.into_inner();
        let caller = authenticate(&req, &state, &slug).await?;
        let (tid, key) = (caller.tenant.id.clone(), id.clone());
        let tok = state
            .store(move |db| db.admin_token(&tid, &key))
            .await?
            .ok_or_else(|| not_found("admin credential"))?;
        audit(
            &state,
            &caller,
            Outcome::Success,
            "admin_token.read",
            &format!("admin_token:{id}"),
            json!({}),
        )
        .await?;
        Ok(etag_response(&view(&tok), tok.updated_at))
    }
    .await
    .map_err(AppError::problem)
}

/// A new credential: a name, what it may do, and either nothing (an `lka_` token is made and
/// answered once), the `client_id` of a client whose admin-API access tokens it accepts, or the
/// `user_id` of a user who opens the admin console with it.
#[derive(serde::Deserialize, schemars::JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct NewCredential {
    name: String,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    permissions: Permissions,
    client_id: Option<String>,
    user_id: Option<String>,
    /// Days until it stops working: 90 by default, 0 for never.
    expires_in_days: Option<u32>,
}

/// A user of the tenant as a console credential: they must exist and be active.
async fn console_user(state: &AppState, caller: &Caller, uid: &str) -> Result<CredentialKind, AppError> {
    let (tid, id) = (caller.tenant.id.clone(), UserId(uid.to_owned()));
    let user = state
        .store(move |db| db.user(&tid, &id))
        .await?
        .ok_or_else(|| not_found("user"))?;
    if user.status != latchkey_core::UserStatus::Active {
        return Err(AppError::new(
            Kind::Unprocessable,
            "Only an active user can be a console admin.",
        ));
    }
    Ok(CredentialKind::User(user.id))
}

/// How the new credential proves itself: a client of the tenant ready to be an admin client,
/// or a fresh `lka_` token (answered once).
async fn kind_of(
    state: &AppState,
    caller: &Caller,
    client_id: Option<&str>,
) -> Result<(CredentialKind, Option<String>), AppError> {
    let Some(cid) = client_id else {
        let secret = format!("lka_{}", random_token(&OsRng, 32));
        return Ok((
            CredentialKind::TokenHash(sha256_hex(secret.as_bytes())),
            Some(secret),
        ));
    };
    let (tid, id) = (caller.tenant.id.clone(), ClientId(cid.to_owned()));
    let client = state
        .store(move |db| db.client(&tid, &id))
        .await?
        .ok_or_else(|| not_found("client"))?;
    let audience = super::audience(state, &caller.tenant);
    if let Some(why) = latchkey_services::clients::admin_client_problem(&client, &audience) {
        return Err(AppError::new(Kind::Unprocessable, why));
    }
    Ok((CredentialKind::Client(client.client_id), None))
}

/// `POST /admin/t/{tenant}/credentials`: 201 with the credential (and an `lka_` token's secret,
/// in this answer only). `Idempotency-Key` replays the first answer.
pub(super) async fn create_credential(
    req: HttpRequest,
    slug: web::Path<String>,
    state: web::Data<AppState>,
    bytes: web::Bytes,
) -> Result<HttpResponse, AppError> {
    async {
        let caller = authenticate(&req, &state, &slug).await?;
        let new: NewCredential = body(&bytes, false)?;
        within_reach(&req, &state, &caller, new.roles.clone(), new.permissions).await?;
        let run = async {
            let now = state.clock.now_millis();
            let days = new.expires_in_days.unwrap_or(90);
            let expires_at = (days > 0).then(|| now + i64::from(days) * MILLIS_PER_DAY);
            let (kind, secret) = match (new.client_id.as_deref(), new.user_id.as_deref()) {
                (Some(_), Some(_)) => {
                    return Err(AppError::new(
                        Kind::BadRequest,
                        "A credential is a client or a user, not both.",
                    ));
                }
                (None, Some(uid)) => (console_user(&state, &caller, uid).await?, None),
                (client, None) => kind_of(&state, &caller, client).await?,
            };
            let spec = NewAdminToken {
                name: new.name.clone(),
                roles: new.roles.clone(),
                permissions: new.permissions,
                kind,
                expires_at,
            };
            let (tid, actor) = (caller.tenant.id.clone(), caller.actor());
            let tok = state
                .store(move |db| db.create_admin_token(&tid, &actor, &spec))
                .await?;
            let shown = NewCredentialView {
                credential: view(&tok),
                token: secret,
            };
            let shown = serde_json::to_value(shown).map_err(|e| AppError::internal("admin credential", e))?;
            Ok((StatusCode::CREATED, shown))
        };
        super::idempotency::once(&state, &caller, (&req, &bytes), run).await
    }
    .await
    .map_err(AppError::problem)
}

/// What a merge patch of a credential may change; `null` removes every role or permission.
#[allow(clippy::option_option)] // absent, `null` or a value: a merge patch's three cases
#[derive(serde::Deserialize, schemars::JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct CredentialPatch {
    #[serde(default, deserialize_with = "super::present")]
    roles: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "super::present")]
    permissions: Option<Option<Permissions>>,
}

/// What a merge patch of an admin role may change; `null` empties a member.
#[allow(clippy::option_option)] // absent, `null` or a value: a merge patch's three cases
#[derive(serde::Deserialize, schemars::JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct AdminRolePatch {
    #[serde(default, deserialize_with = "super::present")]
    description: Option<Option<String>>,
    #[serde(default, deserialize_with = "super::present")]
    permissions: Option<Option<Permissions>>,
}

/// `PATCH /admin/t/{tenant}/credentials/{id}`: a merge patch of `roles` and `permissions`,
/// under `If-Match`; a grant beyond the caller's own is refused.
pub(super) async fn update_credential(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
    bytes: web::Bytes,
) -> Result<HttpResponse, AppError> {
    async {
        let (slug, id) = path.into_inner();
        let caller = authenticate(&req, &state, &slug).await?;
        let version = if_match(&req)?;
        let (tid, key) = (caller.tenant.id.clone(), id.clone());
        let tok = state
            .store(move |db| db.admin_token(&tid, &key))
            .await?
            .ok_or_else(|| not_found("admin credential"))?;
        let asked: CredentialPatch = super::merge_object(&req, &bytes)?;
        let grants = Grants {
            roles: Some(asked.roles.map_or(tok.roles, Option::unwrap_or_default)),
            permissions: Some(
                asked
                    .permissions
                    .map_or(tok.permissions, Option::unwrap_or_default),
            ),
            description: None,
        };
        within_reach(
            &req,
            &state,
            &caller,
            grants.roles.clone().unwrap_or_default(),
            grants.permissions.unwrap_or_default(),
        )
        .await?;
        let (tid, actor) = (caller.tenant.id.clone(), caller.actor());
        let tok = state
            .store(move |db| db.update_admin_token(&tid, &actor, &id, version, &grants))
            .await
            .map_err(missing("admin credential"))?;
        Ok(etag_response(&view(&tok), tok.updated_at))
    }
    .await
    .map_err(AppError::problem)
}

#[derive(serde::Serialize, schemars::JsonSchema)]
pub(super) struct Revoked {
    revoked: &'static str,
    id: String,
}

/// `DELETE /admin/t/{tenant}/credentials/{id}`: the credential stops working at once.
pub(super) async fn revoke_credential(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    async {
        let (slug, id) = path.into_inner();
        let caller = authenticate(&req, &state, &slug).await?;
        let (tid, actor, key) = (caller.tenant.id.clone(), caller.actor(), id.clone());
        state
            .store(move |db| db.revoke_admin_token(&tid, &actor, &key))
            .await
            .map_err(missing("admin credential"))?;
        Ok(json_ok(&Revoked {
            revoked: "admin_credential",
            id,
        }))
    }
    .await
    .map_err(AppError::problem)
}

/// `GET /admin/t/{tenant}/admin-roles`: the tenant's custom admin roles by name, paged.
pub(super) async fn list_roles(
    req: HttpRequest,
    slug: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let fetch = |db: &Db, t: &TenantId| db.list_admin_roles(t);
    list_of(
        (&req, &slug, &state),
        ("admin_role.list", "admin_roles"),
        fetch,
        |r| r.name.clone(),
    )
    .await
}

/// `GET /admin/t/{tenant}/admin-roles/{name}` with its `ETag`.
pub(super) async fn get_role(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    async {
        let (slug, name) = path.into_inner();
        let caller = authenticate(&req, &state, &slug).await?;
        let (tid, key) = (caller.tenant.id.clone(), name.clone());
        let role = state
            .store(move |db| db.admin_role(&tid, &key))
            .await?
            .ok_or_else(|| not_found("admin role"))?;
        audit(
            &state,
            &caller,
            Outcome::Success,
            "admin_role.read",
            &format!("admin_role:{name}"),
            json!({}),
        )
        .await?;
        Ok(etag_response(&role, role.updated_at))
    }
    .await
    .map_err(AppError::problem)
}

#[derive(serde::Deserialize, schemars::JsonSchema, Default)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "NewAdminRole")]
pub(super) struct NewRole {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    permissions: Permissions,
}

/// `POST /admin/t/{tenant}/admin-roles`: 201 with the role; only permissions the caller holds.
pub(super) async fn create_role(
    req: HttpRequest,
    slug: web::Path<String>,
    state: web::Data<AppState>,
    bytes: web::Bytes,
) -> Result<HttpResponse, AppError> {
    async {
        let caller = authenticate(&req, &state, &slug).await?;
        let new: NewRole = body(&bytes, false)?;
        within_reach(&req, &state, &caller, Vec::new(), new.permissions).await?;
        let run = async {
            let (tid, actor) = (caller.tenant.id.clone(), caller.actor());
            let role = state
                .store(move |db| {
                    db.create_admin_role(&tid, &actor, &new.name, &new.description, new.permissions)
                })
                .await?;
            let v = serde_json::to_value(&role).map_err(|e| AppError::internal("admin role", e))?;
            Ok((StatusCode::CREATED, v))
        };
        super::idempotency::once(&state, &caller, (&req, &bytes), run).await
    }
    .await
    .map_err(AppError::problem)
}

/// `PATCH /admin/t/{tenant}/admin-roles/{name}`: a merge patch of `description` and
/// `permissions`, under `If-Match`; its holders change with it.
pub(super) async fn update_role(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
    bytes: web::Bytes,
) -> Result<HttpResponse, AppError> {
    async {
        let (slug, name) = path.into_inner();
        let caller = authenticate(&req, &state, &slug).await?;
        let version = if_match(&req)?;
        let (tid, key) = (caller.tenant.id.clone(), name.clone());
        let role = state
            .store(move |db| db.admin_role(&tid, &key))
            .await?
            .ok_or_else(|| not_found("admin role"))?;
        let asked: AdminRolePatch = super::merge_object(&req, &bytes)?;
        let grants = Grants {
            roles: None,
            permissions: Some(
                asked
                    .permissions
                    .map_or(role.permissions, Option::unwrap_or_default),
            ),
            description: Some(
                asked
                    .description
                    .map_or(role.description, Option::unwrap_or_default),
            ),
        };
        within_reach(
            &req,
            &state,
            &caller,
            Vec::new(),
            grants.permissions.unwrap_or_default(),
        )
        .await?;
        let (tid, actor) = (caller.tenant.id.clone(), caller.actor());
        let role = state
            .store(move |db| db.update_admin_role(&tid, &actor, &name, version, &grants))
            .await
            .map_err(missing("admin role"))?;
        Ok(etag_response(&role, role.updated_at))
    }
    .await
    .map_err(AppError::problem)
}

#[derive(serde::Serialize, schemars::JsonSchema)]
pub(super) struct AdminRoleDeleted {
    deleted: &'static str,
    name: String,
}

/// `DELETE /admin/t/{tenant}/admin-roles/{name}`: 409 while a credential holds it.
pub(super) async fn delete_role(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    async {
        let (slug, name) = path.into_inner();
        let caller = authenticate(&req, &state, &slug).await?;
        let (tid, actor, key) = (caller.tenant.id.clone(), caller.actor(), name.clone());
        state
            .store(move |db| db.delete_admin_role(&tid, &actor, &key))
            .await
            .map_err(missing("admin role"))?;
        Ok(json_ok(&AdminRoleDeleted {
            deleted: "admin_role",
            name,
        }))
    }
    .await
    .map_err(AppError::problem)
}
