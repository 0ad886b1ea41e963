//! The tenant a request is for, from the `{tenant}` path segment: an extractor, so handlers
//! start from the tenant instead of looking it up.

use crate::state::AppState;
use crate::web::blocking::Blocking;
use crate::web::errors::AppError;
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::{Either, LocalBoxFuture, Ready, ready};
use latchkey_core::Tenant;
use latchkey_store::TenantRepo;
use std::ops::Deref;

/// The request's tenant; an unknown one is a 404 page.
pub(crate) struct InTenant(pub Tenant);

/// The request's tenant for a protocol endpoint; an unknown one is a 404 JSON error.
pub(crate) struct InTenantJson(pub Tenant);

impl Deref for InTenant {
    type Target = Tenant;
    fn deref(&self) -> &Tenant {
        &self.0
    }
}

impl Deref for InTenantJson {
    type Target = Tenant;
    fn deref(&self) -> &Tenant {
        &self.0
    }
}

type Extracted<T> = Either<Ready<Result<T, AppError>>, LocalBoxFuture<'static, Result<T, AppError>>>;

/// The cached tenant at once, else a lookup on the blocking pool; `json` picks the error form.
fn extract<T: 'static>(req: &HttpRequest, wrap: fn(Tenant) -> T, json: bool) -> Extracted<T> {
    let form = move |e: AppError| if json { e.json() } else { e };
    let slug = req.match_info().get("tenant").unwrap_or_default().to_owned();
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Either::Left(ready(Err(form(AppError::internal(
            "tenant",
            "no application state",
        )))));
    };
    if let Some(t) = cached(&state, &slug) {
        return Either::Left(ready(Ok(wrap(t))));
    }
    Either::Right(Box::pin(async move {
        load(&state, &slug).await.map(wrap).map_err(form)
    }))
}

impl FromRequest for InTenant {
    type Error = AppError;
    type Future = Extracted<Self>;
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        extract(req, InTenant, false)
    }
}

impl FromRequest for InTenantJson {
    type Error = AppError;
    type Future = Extracted<Self>;
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        extract(req, InTenantJson, true)
    }
}

fn cached(state: &AppState, slug: &str) -> Option<Tenant> {
    state.tenants.get(&slug.to_owned(), state.db.tenant_generation())
}

/// Looks a tenant up by its slug; an unknown or malformed slug is a 404.
pub(crate) async fn tenant(state: &AppState, slug: &str) -> Result<Tenant, AppError> {
    match cached(state, slug) {
        Some(t) => Ok(t),
        None => load(state, slug).await,
    }
}

/// Reads a tenant the cache does not hold and caches it.
async fn load(state: &AppState, slug: &str) -> Result<Tenant, AppError> {
    let unknown = || AppError::not_found(format!("There is no tenant called {slug:?} here."));
    if latchkey_core::validate::slug(slug).is_err() {
        return Err(unknown());
    }
    let generation = state.db.tenant_generation();
    let wanted = slug.to_owned();
    let t = state
        .store(move |db| db.tenant_by_slug(&wanted))
        .await?
        .ok_or_else(unknown)?;
    state.tenants.put(slug.to_owned(), t.clone(), generation);
    Ok(t)
}

/// The region whose cache holds tenant `slug`, without I/O.
pub(crate) fn cached_region(home: &AppState, slug: &str) -> Option<AppState> {
    home.regions().find(|r| cached(r, slug).is_some()).cloned()
}

/// The region that holds tenant `slug`: a cached tenant's, else the first region whose
/// database has it (each region is asked in turn, the home one first). When none has it but a
/// region could not answer, that region (its extractor then answers 503, not 404); `None`
/// when no region has it.
pub(crate) async fn region_of(home: &AppState, slug: &str) -> Option<AppState> {
    if let Some(r) = cached_region(home, slug) {
        return Some(r);
    }
    if latchkey_core::validate::slug(slug).is_err() {
        return None;
    }
    let mut failed = None;
    for r in home.regions() {
        match load(r, slug).await {
            Ok(_) => return Some(r.clone()),
            Err(e) if e.kind == crate::web::errors::Kind::NotFound => {}
            Err(e) => {
                tracing::warn!(region = %r.region, error = %e.message, "region could not be asked for a tenant");
                failed.get_or_insert_with(|| r.clone());
            }
        }
    }
    failed
}
