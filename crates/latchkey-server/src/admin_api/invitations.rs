//! `/admin/t/{tenant}/invitations`: invite an email address into the tenant (the link goes by
//! mail only), list, revoke and re-send invitations. Writes need the admin role; every call is
//! audited (docs/admin-api.md, docs/invitations.md).

use super::{Caller, authenticate, body, json_ok, missing, not_found};
use crate::state::AppState;
use crate::web::blocking::Blocking;
use crate::web::errors::{AppError, Kind};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_services::ServiceError;
use latchkey_services::invite::{DEFAULT_TTL_SECS, Inviter, MAX_TTL_SECS};
use latchkey_store::{GroupRepo, Invitation, InvitationRepo, InvitationStatus, NewInvitation, StoreError};
use serde_json::{Value, json};

#[derive(serde::Deserialize, schemars::JsonSchema, Default)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "NewInvitation")]
pub(super) struct CreateBody {
    email: String,
    username: Option<String>,
    display_name: Option<String>,
    /// Group names.
    #[serde(default)]
    groups: Vec<String>,
    /// The link's lifetime (default 7 days).
    #[schemars(range(min = 60, max = MAX_TTL_SECS))]
    expires_in_secs: Option<u64>,
}

#[derive(serde::Deserialize, schemars::JsonSchema, Default)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "InvitationResend")]
pub(super) struct ResendBody {
    #[schemars(range(min = 60, max = MAX_TTL_SECS))]
    expires_in_secs: Option<u64>,
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct InvitationsQuery {
    #[schemars(range(min = 1, max = 1000))]
    limit: Option<i64>,
    cursor: Option<String>,
    #[schemars(with = "Option<InvitationStatus>")]
    status: Option<String>,
}

fn ttl_ms(secs: Option<u64>) -> Result<i64, AppError> {
    let secs = secs.unwrap_or(DEFAULT_TTL_SECS);
    if !(60..=MAX_TTL_SECS).contains(&secs) {
        return Err(AppError::new(
            Kind::BadRequest,
            format!("expires_in_secs must be 60 to {MAX_TTL_SECS}"),
        )
        .json());
    }
    Ok(i64::try_from(secs).unwrap_or(0) * 1000)
}

fn service_error(e: ServiceError) -> AppError {
    match e {
        ServiceError::Store(StoreError::NotFound { .. }) => not_found("invitation"),
        other => AppError::from(other).json(),
    }
}

fn view(i: &Invitation) -> serde_json::Value {
    json!(i)
}

/// Runs `f` with an inviter acting for the caller, on the blocking pool.
async fn inviting<T: Send + 'static>(
    state: &AppState,
    caller: &Caller,
    f: impl FnOnce(&Inviter<'_>) -> Result<T, ServiceError> + Send + 'static,
) -> Result<T, AppError> {
    let (st, tenant, actor) = (state.clone(), caller.tenant.clone(), caller.actor());
    let issuer = state.config.issuer(&caller.tenant.slug);
    let out = crate::web::blocking::blocking(move || -> Result<T, AppError> {
        let inviter = Inviter {
            db: &st.db,
            keys: &st.keys,
            rng: &*st.rng,
            issuer: &issuer,
            tenant: &tenant,
            actor: &actor,
            now: st.clock.now_millis(),
        };
        f(&inviter).map_err(service_error)
    })
    .await?;
    state.mail.wake();
    Ok(out)
}

/// `POST /admin/t/{tenant}/invitations`: 201 with the invitation; 409 when a user with the
/// email (or username) exists or an invitation for it is pending. With `Idempotency-Key`, a
/// retry gets the first answer and mails nothing again.
pub(super) async fn create(
    req: HttpRequest,
    slug: web::Path<String>,
    state: web::Data<AppState>,
    bytes: web::Bytes,
) -> Result<HttpResponse, AppError> {
    async {
        let caller = authenticate(&req, &state, &slug).await?;
        let run = invite(&state, &caller, &bytes);
        super::idempotency::once(&state, &caller, (&req, &bytes), run).await
    }
    .await
    .map_err(AppError::problem)
}

async fn invite(state: &AppState, caller: &Caller, bytes: &[u8]) -> Result<(StatusCode, Value), AppError> {
    let b: CreateBody = body(bytes, false)?;
    let expires_at = state.clock.now_millis() + ttl_ms(b.expires_in_secs)?;
    if b.groups.len() > 64 {
        return Err(AppError::new(Kind::BadRequest, "At most 64 groups.").json());
    }
    let (tid, names) = (caller.tenant.id.clone(), b.groups.clone());
    let groups = state
        .store(move |db| {
            names
                .iter()
                .map(|n| {
                    db.group_by_name(&tid, n)?
                        .map(|g| g.id)
                        .ok_or_else(|| StoreError::BadReference(format!("no group {n:?} in this tenant")))
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .map_err(AppError::problem)?;
    let new = NewInvitation {
        email: b.email,
        username: b.username,
        display_name: b.display_name,
        groups,
        expires_at,
    };
    let invitation = inviting(state, caller, move |i| i.create(&new)).await?;
    Ok((StatusCode::CREATED, view(&invitation)))
}

/// `GET /admin/t/{tenant}/invitations[?status=pending|accepted|expired|revoked]`.
pub(super) async fn list(
    req: HttpRequest,
    slug: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    async {
        let caller = authenticate(&req, &state, &slug).await?;
        let q: InvitationsQuery = super::query(&req)?;
        let status = q
            .status
            .as_deref()
            .map(str::parse::<InvitationStatus>)
            .transpose()
            .map_err(|e| AppError::new(Kind::BadRequest, e))?;
        let (limit, after) = super::paging(q.limit, q.cursor.as_deref())?;
        let bad = || AppError::new(Kind::BadRequest, "cursor is not one this API returned");
        let after = after
            .map(|k| {
                Ok::<_, AppError>((
                    k.first().and_then(Value::as_i64).ok_or_else(bad)?,
                    super::key_str(&k, 1)?,
                ))
            })
            .transpose()?;
        let tid = caller.tenant.id.clone();
        let found = state
            .store(move |db| db.invitations_page(&tid, status, after, limit))
            .await?;
        let details = json!({"invitations": found.len(), "status": q.status});
        let target = "invitations";
        super::audit(
            &state,
            &caller,
            latchkey_core::Outcome::Success,
            "invitation.list",
            target,
            details,
        )
        .await?;
        let views: Vec<Value> = found.iter().map(view).collect();
        let filters: Vec<(&str, String)> = q.status.into_iter().map(|s| ("status", s)).collect();
        let key = |v: &Value| json!([v["created_at"], v["id"]]);
        Ok(super::paged(&req, &views, limit, key, &filters))
    }
    .await
    .map_err(AppError::problem)
}

/// `POST /admin/t/{tenant}/invitations/{id}/revoke`: 409 when no longer pending.
pub(super) async fn revoke(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    async {
        let (slug, id) = path.into_inner();
        let caller = authenticate(&req, &state, &slug).await?;
        let (tid, actor) = (caller.tenant.id.clone(), caller.actor());
        let invitation = state
            .store(move |db| db.revoke_invitation(&tid, &actor, &id))
            .await
            .map_err(missing("invitation"))?;
        Ok(json_ok(&view(&invitation)))
    }
    .await
    .map_err(AppError::problem)
}

/// `POST /admin/t/{tenant}/invitations/{id}/resend`: a new link, the old one dead; optional
/// body `{"expires_in_secs": N}`.
pub(super) async fn resend(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
    bytes: web::Bytes,
) -> Result<HttpResponse, AppError> {
    async {
        let (slug, id) = path.into_inner();
        let caller = authenticate(&req, &state, &slug).await?;
        let b: ResendBody = body(&bytes, true)?;
        let expires_at = state.clock.now_millis() + ttl_ms(b.expires_in_secs)?;
        let invitation = inviting(&state, &caller, move |i| i.resend(&id, expires_at)).await?;
        Ok(json_ok(&view(&invitation)))
    }
    .await
    .map_err(AppError::problem)
}
