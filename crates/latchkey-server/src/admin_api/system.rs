//! `/admin/system/…`: the installation's scope, opened by system credentials (`lks_` tokens,
//! made with `latchkey system-token create`) and never by a tenant's. Tenants are created,
//! listed, renamed and deleted here, and their data keys rotated; a new tenant can come with
//! its first admin credential, so automation onboards a tenant without shell access. Every
//! call is audited in the chain `system`; a tenant's own changes also go to its chain.

use super::{
    Caller, NoQuery, audit, authenticate, body, etag_response, if_match, json_ok, list_of, merge_object,
    query,
};
use crate::state::AppState;
use crate::web::blocking::{Blocking, blocking};
use crate::web::errors::{AppError, Kind};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_core::{
    BuiltinAdminRole, OsRng, Outcome, Permissions, Tenant, TenantId, TenantPolicy, UnixMillis, random_token,
    sha256_hex, validate,
};
use latchkey_services::residency::Side;
use latchkey_store::{
    AdminTokenRepo, CredentialKind, Db, NewAdminToken, NewTenant, TenantRepo, TenantUpdate,
};
use serde_json::json;

/// Values re-sealed per batch, and batches per call, of a data-key rotation: a call does at
/// most 10,000 and says whether the rotation is done (call again until it is).
const DEK_BATCH: usize = 100;
const DEK_BATCHES: usize = 100;
const MILLIS_PER_DAY: i64 = 86_400_000;

/// A tenant as the system scope shows it (its policy is read in its own scope). The routes
/// naming one tenant find it in whichever of the node's regions holds it, and audit in that
/// region's `system` chain; the list shows every region's.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub(super) struct TenantView {
    id: TenantId,
    slug: String,
    display_name: String,
    /// Its OIDC issuer, where portals discover it.
    issuer: String,
    /// The region whose database holds it (docs/residency.md).
    region: String,
    created_at: UnixMillis,
    updated_at: UnixMillis,
}

/// A new tenant, with its first admin credential when one was asked for.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub(super) struct CreatedTenant {
    #[serde(flatten)]
    tenant: TenantView,
    #[serde(skip_serializing_if = "Option::is_none")]
    admin_credential: Option<FirstToken>,
}

/// The first admin credential, with its `lka_` token (in this answer only).
#[derive(serde::Serialize, schemars::JsonSchema)]
pub(super) struct FirstToken {
    id: String,
    name: String,
    roles: Vec<String>,
    permissions: Permissions,
    expires_at: Option<UnixMillis>,
    token: String,
}

#[derive(serde::Serialize, schemars::JsonSchema)]
pub(super) struct TenantDeleted {
    /// Always `tenant`.
    deleted: &'static str,
    slug: String,
    id: TenantId,
}

/// A data-key rotation's progress: call again while `done` is false.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub(super) struct DekRotation {
    data_key: String,
    resealed: usize,
    done: bool,
}

fn view(state: &AppState, t: &Tenant) -> TenantView {
    TenantView {
        id: t.id.clone(),
        slug: t.slug.clone(),
        display_name: t.display_name.clone(),
        issuer: state.config.issuer(&t.slug),
        region: state.region.to_string(),
        created_at: t.created_at,
        updated_at: t.updated_at,
    }
}

fn no_tenant() -> AppError {
    AppError::not_found("No such tenant.").json()
}

/// The tenant a path names, as stored now.
async fn named(state: &AppState, slug: &str) -> Result<Tenant, AppError> {
    let slug = slug.to_owned();
    state
        .store(move |db| db.tenant_by_slug(&slug))
        .await?
        .ok_or_else(no_tenant)
}

/// `GET /admin/system/tenants`: every tenant by slug, paged.
pub(super) async fn list(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    // Every region's tenants, each with its region.
    let regions: Vec<AppState> = state.regions().cloned().collect();
    let fetch = move |_: &Db, _: &TenantId| {
        let mut all = Vec::new();
        for region in &regions {
            all.extend(region.db.list_tenants()?.iter().map(|t| view(region, t)));
        }
        Ok(all)
    };
    let key = |v: &TenantView| v.slug.clone();
    list_of((&req, "", &state), ("tenant.list", "tenants"), fetch, key).await
}

/// `GET /admin/system/tenants/{tenant}` with its `ETag`.
pub(super) async fn get(
    req: HttpRequest,
    slug: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    async {
        let caller = authenticate(&req, &state, "").await?;
        let NoQuery {} = query(&req)?;
        let (state, t) = holder(&state, &slug).await?;
        let target = format!("tenant:{}", t.id);
        audit(
            &state,
            &caller,
            Outcome::Success,
            "tenant.read",
            &target,
            json!({}),
        )
        .await?;
        Ok(etag_response(&view(&state, &t), t.updated_at))
    }
    .await
    .map_err(AppError::problem)
}

/// The first admin credential of a new tenant: an `lka_` token with built-in roles and tenant
/// permissions (a new tenant has no custom roles yet).
#[derive(serde::Deserialize, schemars::JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct FirstCredential {
    name: String,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    permissions: Permissions,
    /// Days until it stops working: 90 by default, 0 for never.
    expires_in_days: Option<u32>,
}

/// A tenant to create: its slug (URL-safe, unique), its name, and optionally its first admin
/// credential.
#[derive(serde::Deserialize, schemars::JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct NewTenantBody {
    slug: String,
    display_name: Option<String>,
    admin_credential: Option<FirstCredential>,
    /// The region to pin it to (one this node serves); the node's home region by default.
    region: Option<String>,
}

/// Checked before anything is created, so a bad credential leaves no tenant behind.
fn check_first(c: &FirstCredential) -> Result<(), AppError> {
    let bad = |m: String| AppError::new(Kind::Unprocessable, m);
    validate::display_name("admin_credential.name", &c.name).map_err(|e| bad(e.to_string()))?;
    for r in &c.roles {
        BuiltinAdminRole::tenant_role(r).map_err(|e| bad(format!("admin_credential.roles: {e}")))?;
    }
    if let Some(p) = c.permissions.iter().find(|p| p.is_system()) {
        return Err(bad(format!(
            "admin_credential.permissions: {p} is a system permission"
        )));
    }
    Ok(())
}

/// `POST /admin/system/tenants` `{"slug", "display_name"?, "admin_credential"?}`: 201 with the
/// tenant (its signing keys made), and with `admin_credential` its first `lka_` token, in this
/// answer only. `Idempotency-Key` replays the first answer.
pub(super) async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    bytes: web::Bytes,
) -> Result<HttpResponse, AppError> {
    async {
        let caller = authenticate(&req, &state, "").await?;
        let NoQuery {} = query(&req)?;
        let new: NewTenantBody = body(&bytes, false)?;
        if let Some(c) = &new.admin_credential {
            check_first(c)?;
        }
        let home = state.get_ref();
        let state = match new.region.as_deref() {
            None => home,
            Some(name) => served(home, "region", name)?,
        };
        // Inside the idempotent part: a retry replays the first answer instead of a 409.
        let run = async {
            slug_is_free(home, &new.slug).await?;
            let actor = caller.actor();
            let spec = NewTenant {
                slug: new.slug.clone(),
                display_name: new.display_name.clone(),
                policy: TenantPolicy::default(),
            };
            let a = actor.clone();
            let t = state.store(move |db| db.create_tenant(&a, &spec)).await?;
            let (keys, tid, a) = (state.keys.clone(), t.id.clone(), actor.clone());
            blocking(move || keys.ensure_tenant(&tid, &a)).await?;
            let admin_credential = match &new.admin_credential {
                Some(c) => Some(first_credential(state, &caller, &t, c).await?),
                None => None,
            };
            let shown = serde_json::to_value(CreatedTenant {
                tenant: view(state, &t),
                admin_credential,
            })
            .map_err(|e| AppError::internal("tenant view", e))?;
            audit(
                state,
                &caller,
                Outcome::Success,
                "tenant.create",
                &format!("tenant:{}", t.id),
                json!({"slug": t.slug}),
            )
            .await?;
            Ok((StatusCode::CREATED, shown))
        };
        // The region's session store keeps the answer, sealed under the new tenant's data key,
        // which only that region's key ring has.
        super::idempotency::once(state, &caller, (&req, &bytes), run).await
    }
    .await
    .map_err(AppError::problem)
}

/// A slug names one tenant across every region this node serves: a 409 when any has it.
async fn slug_is_free(home: &AppState, slug: &str) -> Result<(), AppError> {
    for region in home.regions() {
        let wanted = slug.to_owned();
        if region
            .store(move |db| db.tenant_by_slug(&wanted))
            .await?
            .is_some()
        {
            return Err(AppError::new(
                Kind::Conflict,
                format!("tenant {slug:?} already exists (in region {})", region.region),
            ));
        }
    }
    Ok(())
}

async fn first_credential(
    state: &AppState,
    caller: &Caller,
    t: &Tenant,
    c: &FirstCredential,
) -> Result<FirstToken, AppError> {
    let secret = format!("lka_{}", random_token(&OsRng, 32));
    let days = c.expires_in_days.unwrap_or(90);
    let now = state.clock.now_millis();
    let spec = NewAdminToken {
        name: c.name.clone(),
        roles: c.roles.clone(),
        permissions: c.permissions,
        kind: CredentialKind::TokenHash(sha256_hex(secret.as_bytes())),
        expires_at: (days > 0).then(|| now + i64::from(days) * MILLIS_PER_DAY),
    };
    let (tid, actor) = (t.id.clone(), caller.actor());
    let tok = state
        .store(move |db| db.create_admin_token(&tid, &actor, &spec))
        .await?;
    Ok(FirstToken {
        id: tok.id,
        name: tok.name,
        roles: tok.roles,
        permissions: tok.permissions,
        expires_at: tok.expires_at,
        token: secret,
    })
}

/// What a system-scope merge patch may change: the name.
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct TenantPatch {
    display_name: Option<String>,
}

/// `PATCH /admin/system/tenants/{tenant}`: a merge patch of `display_name` under `If-Match`.
/// (The tenant's policy is changed in its own scope: `PATCH /admin/t/{tenant}/policies`.)
pub(super) async fn update(
    req: HttpRequest,
    slug: web::Path<String>,
    state: web::Data<AppState>,
    bytes: web::Bytes,
) -> Result<HttpResponse, AppError> {
    async {
        let caller = authenticate(&req, &state, "").await?;
        let NoQuery {} = query(&req)?;
        let patch: TenantPatch = merge_object(&req, &bytes)?;
        let asked = if_match(&req)?;
        let (state, before) = holder(&state, &slug).await?;
        let version = asked.unwrap_or(before.updated_at);
        let (tid, actor) = (before.id.clone(), caller.actor());
        let change = TenantUpdate {
            display_name: patch.display_name,
            policy: None,
        };
        let after = state
            .store(move |db| db.update_tenant_if(&tid, &actor, &change, Some(version)))
            .await?;
        Ok(etag_response(&view(&state, &after), after.updated_at))
    }
    .await
    .map_err(AppError::problem)
}

/// `DELETE /admin/system/tenants/{tenant}`: the tenant with its users, clients and keys; its
/// audit chain stays readable by id. With `If-Match`, 412 when it changed since.
pub(super) async fn delete(
    req: HttpRequest,
    slug: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    async {
        let caller = authenticate(&req, &state, "").await?;
        let NoQuery {} = query(&req)?;
        let asked = if_match(&req)?;
        let (state, t) = holder(&state, &slug).await?;
        let (tid, actor) = (t.id.clone(), caller.actor());
        state
            .store(move |db| db.delete_tenant(&tid, &actor, asked))
            .await?;
        let target = format!("tenant:{}", t.id);
        audit(
            &state,
            &caller,
            Outcome::Success,
            "tenant.delete",
            &target,
            json!({"slug": t.slug}),
        )
        .await?;
        Ok(json_ok(&TenantDeleted {
            deleted: "tenant",
            slug: t.slug,
            id: t.id,
        }))
    }
    .await
    .map_err(AppError::problem)
}

/// `POST /admin/system/tenants/{tenant}/rotate-dek`: a new data key for the tenant, and up to
/// 10,000 of its sealed values moved under it. `done` is false while values remain under the
/// old key (both keys open values meanwhile): call again, it resumes.
pub(super) async fn rotate_dek(
    req: HttpRequest,
    slug: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    async {
        let caller = authenticate(&req, &state, "").await?;
        let NoQuery {} = query(&req)?;
        let (state, t) = holder(&state, &slug).await?;
        let (keys, tid, actor) = (state.keys.clone(), t.id.clone(), caller.actor());
        let (dek, resealed) =
            blocking(move || keys.rotate_dek(&tid, &actor, DEK_BATCH, Some(DEK_BATCHES))).await?;
        let done = resealed < DEK_BATCH * DEK_BATCHES;
        let target = format!("tenant:{}", t.id);
        let details = json!({"data_key": dek, "resealed": resealed, "done": done});
        audit(
            &state,
            &caller,
            Outcome::Success,
            "keys.rotate_dek",
            &target,
            details,
        )
        .await?;
        Ok(json_ok(&DekRotation {
            data_key: dek,
            resealed,
            done,
        }))
    }
    .await
    .map_err(AppError::problem)
}

/// Where to move a tenant: a region this node serves.
#[derive(serde::Deserialize, schemars::JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct MoveBody {
    to: String,
}

/// `POST /admin/system/tenants/{tenant}/move` `{"to"}`: the tenant's rows copied into region
/// `to`'s database, counted per table, a `tenant.move` event appended to its chain there, and
/// then deleted from its old region (docs/residency.md). Its users' sessions end.
pub(super) async fn move_tenant(
    req: HttpRequest,
    slug: web::Path<String>,
    state: web::Data<AppState>,
    bytes: web::Bytes,
) -> Result<HttpResponse, AppError> {
    async {
        let caller = authenticate(&req, &state, "").await?;
        let NoQuery {} = query(&req)?;
        let wanted: MoveBody = body(&bytes, false)?;
        let home = state.get_ref();
        let to = served(home, "to", &wanted.to)?.clone();
        let (from, tenant) = holder(home, &slug).await?;
        let (actor, moving) = (caller.actor(), tenant.clone());
        let (source, target) = (from.clone(), to.clone());
        let report = blocking(move || {
            latchkey_services::residency::move_tenant(
                &moving,
                &Side {
                    region: &source.region,
                    db: &source.db,
                },
                &Side {
                    region: &target.region,
                    db: &target.db,
                },
                &actor,
            )
        })
        .await?;
        audit(
            &to,
            &caller,
            Outcome::Success,
            "tenant.move",
            &format!("tenant:{}", tenant.id),
            json!({"from": report.from, "to": report.to, "rows": report.rows}),
        )
        .await?;
        Ok(json_ok(&report))
    }
    .await
    .map_err(AppError::problem)
}

/// Region `name`'s state; a 422 naming `field` when this node serves no such region.
fn served<'a>(home: &'a AppState, field: &str, name: &str) -> Result<&'a AppState, AppError> {
    home.region_named(name).ok_or_else(|| {
        AppError::new(
            Kind::Unprocessable,
            format!("{field}: this node serves no region called {name:?}"),
        )
    })
}

/// The region holding tenant `slug` (each of the node's regions asked, the home one first)
/// and the tenant, as stored now. A region that could not answer makes a missing tenant its
/// error (a 503, not a 404).
async fn holder(home: &AppState, slug: &str) -> Result<(AppState, Tenant), AppError> {
    let mut failed = None;
    for region in home.regions() {
        match named(region, slug).await {
            Ok(t) => return Ok((region.clone(), t)),
            Err(e) if e.kind == Kind::NotFound => {}
            Err(e) => {
                failed.get_or_insert(e);
            }
        }
    }
    Err(failed.unwrap_or_else(no_tenant))
}
