//! Which region serves a request (`LATCHKEY_REGIONS`, docs/residency.md): a request under
//! `/t/{slug}` or `/admin/t/{slug}` gets, as its `web::Data<AppState>`, the state of the region
//! that holds the slug, so every handler and its `state.store(…)` reach that region's database,
//! key ring and session store without knowing regions exist. Other routes keep the home state.

use crate::state::AppState;
use crate::web::tenant;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::{Error, web};
use futures_util::future::{Either, LocalBoxFuture, Ready, ready};
use std::rc::Rc;

/// The middleware; it does nothing on a node with one region.
pub struct RegionRouting {
    home: AppState,
}

impl RegionRouting {
    pub fn new(home: AppState) -> Self {
        Self { home }
    }
}

impl<S, B> Transform<S, ServiceRequest> for RegionRouting
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Transform = RegionMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(RegionMiddleware {
            service: Rc::new(service),
            home: self.home.clone(),
        }))
    }
}

pub struct RegionMiddleware<S> {
    service: Rc<S>,
    home: AppState,
}

/// The tenant slug a path is for: `/t/{slug}…` or `/admin/t/{slug}…`.
fn slug_of(path: &str) -> Option<&str> {
    let rest = path
        .strip_prefix("/t/")
        .or_else(|| path.strip_prefix("/admin/t/"))?;
    rest.split('/').next().filter(|s| !s.is_empty())
}

/// Hands the request `region`'s state, unless that is the home one (already there).
///
/// `add_data_container` needs the request's only handle: this middleware is the innermost, so
/// it runs where the router's own scopes add theirs, under the same condition.
fn route_to(req: &mut ServiceRequest, home: &AppState, region: Option<AppState>) {
    if let Some(r) = region.filter(|r| r.region != home.region) {
        let mut data = actix_web::dev::Extensions::new();
        data.insert(web::Data::new(r));
        req.add_data_container(Rc::new(data));
    }
}

impl<S, B> Service<ServiceRequest> for RegionMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Future = Either<S::Future, LocalBoxFuture<'static, Result<ServiceResponse<B>, Error>>>;

    forward_ready!(service);

    fn call(&self, mut req: ServiceRequest) -> Self::Future {
        let slug = match slug_of(req.path()) {
            Some(slug) if !self.home.other_regions.is_empty() => slug.to_owned(),
            _ => return Either::Left(self.service.call(req)),
        };
        // The steady state: a cached tenant names its region with no I/O.
        if let Some(region) = tenant::cached_region(&self.home, &slug) {
            route_to(&mut req, &self.home, Some(region));
            return Either::Left(self.service.call(req));
        }
        let (service, home) = (Rc::clone(&self.service), self.home.clone());
        Either::Right(Box::pin(async move {
            let region = tenant::region_of(&home, &slug).await;
            route_to(&mut req, &home, region);
            service.call(req).await
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::slug_of;

    #[test]
    fn tenant_paths_name_their_slug_and_others_none() {
        assert_eq!(slug_of("/t/acme/authorize"), Some("acme"));
        assert_eq!(slug_of("/t/acme"), Some("acme"));
        assert_eq!(slug_of("/admin/t/acme/users"), Some("acme"));
        assert_eq!(slug_of("/admin/system/tenants"), None);
        assert_eq!(slug_of("/t/"), None);
        assert_eq!(slug_of("/healthz"), None);
    }
}
