//! The outermost middleware: request id, client address, request-size limits, security headers,
//! metrics and the access log. The access log records the path without its query string, so
//! codes, tokens and secrets that travel in queries or bodies never reach a log.

use crate::state::AppState;
use crate::web::errors::{AppError, Kind};
use crate::web::net::{ClientInfo, resolve};
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::{Error, HttpMessage, ResponseError};
use futures_util::future::{LocalBoxFuture, Ready, ready};
use std::rc::Rc;
use std::time::Instant;
use tracing::Instrument;

const MAX_URI_BYTES: usize = 8 * 1024;
const MAX_HEADER_COUNT: usize = 64;
const MAX_HEADER_BYTES: usize = 16 * 1024;
const MAX_HEADER_VALUE_BYTES: usize = 8 * 1024;

/// Every page forbids framing, inline script and inline style.
pub(crate) const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; \
     font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The origin a URL's form submissions and redirects go to, as a CSP source (`scheme:` for a
/// custom-scheme URL, which has no host).
pub(crate) fn csp_origin(url: &str) -> Option<String> {
    let u = url::Url::parse(url).ok()?;
    Some(match u.origin() {
        url::Origin::Tuple(..) => u.origin().ascii_serialization(),
        url::Origin::Opaque(_) => format!("{}:", u.scheme()),
    })
}

/// The response's CSP so far (the default until a handler set one).
fn csp_of(res: &actix_web::HttpResponse) -> String {
    res.headers()
        .get(header::CONTENT_SECURITY_POLICY)
        .and_then(|v| v.to_str().ok())
        .unwrap_or(CSP)
        .to_owned()
}

/// Lets a page's forms lead to `url`'s origin besides our own. A form whose answer redirects
/// to a client (sign-in, consent, logout confirmation during a flow) needs it: browsers check
/// `form-action` on every redirect of a form submission.
pub(crate) fn allow_form_action(res: &mut actix_web::HttpResponse, url: &str) {
    let Some(origin) = csp_origin(url) else { return };
    // Additive: a page may lead to several origins (a client and the tenant's SAML IdPs).
    let current = csp_of(res);
    if current.contains(&format!(" {origin};")) || current.contains(&format!(" {origin} ")) {
        return;
    }
    let csp = current.replacen("form-action 'self'", &format!("form-action 'self' {origin}"), 1);
    if let Ok(v) = HeaderValue::from_str(&csp) {
        res.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
    }
}

/// Lets a page load `urls` in iframes (Front-Channel Logout): `frame-src` names their origins
/// and nothing else.
pub(crate) fn allow_frames(res: &mut actix_web::HttpResponse, urls: &[String]) {
    let mut origins: Vec<String> = urls.iter().filter_map(|u| csp_origin(u)).collect();
    origins.sort_unstable();
    origins.dedup();
    if origins.is_empty() {
        return;
    }
    let csp = format!("{}; frame-src {}", csp_of(res), origins.join(" "));
    if let Ok(v) = HeaderValue::from_str(&csp) {
        res.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
    }
}

/// The request id as seen in logs and the `X-Request-Id` response header.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

pub(crate) struct Observe {
    state: AppState,
}

impl Observe {
    pub(crate) fn new(state: AppState) -> Self {
        Self { state }
    }
}

impl<S, B> Transform<S, ServiceRequest> for Observe
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<BoxBody>;
    type Error = Error;
    type Transform = ObserveMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(ObserveMiddleware {
            service: Rc::new(service),
            state: self.state.clone(),
        }))
    }
}

pub(crate) struct ObserveMiddleware<S> {
    service: Rc<S>,
    state: AppState,
}

/// An incoming id is kept if it is short and plain, so ids can be followed across services.
fn sane_request_id(v: &str) -> bool {
    (1..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b))
}

fn check_limits(req: &ServiceRequest, max_body: usize) -> Option<AppError> {
    if req.uri().to_string().len() > MAX_URI_BYTES {
        return Some(AppError::new(
            Kind::UriTooLong,
            format!("The address is longer than {MAX_URI_BYTES} bytes."),
        ));
    }
    let headers = req.headers();
    let total: usize = headers.iter().map(|(k, v)| k.as_str().len() + v.len()).sum();
    if headers.len() > MAX_HEADER_COUNT
        || total > MAX_HEADER_BYTES
        || headers.iter().any(|(_, v)| v.len() > MAX_HEADER_VALUE_BYTES)
    {
        return Some(AppError::new(
            Kind::HeadersTooLarge,
            format!(
                "Request headers exceed the limit ({MAX_HEADER_COUNT} headers, {MAX_HEADER_BYTES} bytes in all)."
            ),
        ));
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max_body as u64) {
        return Some(AppError::new(
            Kind::PayloadTooLarge,
            format!("The request body is larger than {max_body} bytes."),
        ));
    }
    None
}

fn set_default(h: &mut HeaderMap, name: HeaderName, value: &'static str) {
    if !h.contains_key(&name) {
        h.insert(name, HeaderValue::from_static(value));
    }
}

fn security_headers(h: &mut HeaderMap, https: bool) {
    set_default(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set_default(h, header::CONTENT_SECURITY_POLICY, CSP);
    set_default(h, header::X_FRAME_OPTIONS, "DENY");
    set_default(h, header::REFERRER_POLICY, "no-referrer");
    set_default(
        h,
        HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    if https {
        set_default(
            h,
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=63072000; includeSubDomains",
        );
    }
}

impl<S, B> Service<ServiceRequest> for ObserveMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<BoxBody>;
    type Error = Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let started = Instant::now();
        let state = self.state.clone();
        let request_id = req
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .filter(|v| sane_request_id(v))
            .map_or_else(|| latchkey_core::random_token(&*state.rng, 12), str::to_owned);
        let forwarded_for: Vec<&str> = req
            .headers()
            .get_all("x-forwarded-for")
            .filter_map(|v| v.to_str().ok())
            .collect();
        let client = resolve(
            req.peer_addr().map(|a| a.ip()),
            &forwarded_for,
            req.headers()
                .get("x-forwarded-proto")
                .and_then(|v| v.to_str().ok()),
            state.config.tls.is_some(),
            &state.config.trusted_proxies,
        );
        req.extensions_mut().insert(client);
        req.extensions_mut().insert(RequestId(request_id.clone()));
        let early = check_limits(
            &req,
            crate::web::limits::body_limit(req.path(), state.config.max_body_bytes),
        );
        let span = tracing::info_span!("request", request_id = %request_id);
        let service = Rc::clone(&self.service);

        Box::pin(
            async move {
                let method = req.method().clone();
                let path = req.path().to_owned();
                // Handler errors arrive here already rendered (actix turns them into responses);
                // an `Err` at this level comes from actix itself and passes through unchanged.
                let mut res: ServiceResponse<BoxBody> = match early {
                    Some(err) => req.into_response(err.error_response()),
                    None => service.call(req).await?.map_into_boxed_body(),
                };
                let ClientInfo { ip, https } = client;
                if state.draining() {
                    // Keep-alive connections end with this answer, so the load balancer sends
                    // the next request to another node before this one stops listening.
                    res.response_mut()
                        .head_mut()
                        .set_connection_type(actix_web::http::ConnectionType::Close);
                }
                let headers = res.headers_mut();
                security_headers(headers, https);
                if let Ok(v) = HeaderValue::from_str(&request_id) {
                    headers.insert(HeaderName::from_static("x-request-id"), v);
                }
                let status = res.status().as_u16();
                let route = res
                    .request()
                    .match_pattern()
                    .unwrap_or_else(|| "(unmatched)".into());
                let elapsed = started.elapsed();
                state
                    .metrics
                    .observe(&route, method.as_str(), status, elapsed.as_secs_f64());
                tracing::info!(
                    target: "latchkey::access",
                    method = %method,
                    path = %path,
                    route = %route,
                    status,
                    duration_ms = elapsed.as_secs_f64() * 1000.0,
                    client_ip = %state.config.log_ip.show(ip),
                    https,
                    "request"
                );
                Ok(res)
            }
            .instrument(span),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_short_and_plain() {
        assert!(sane_request_id("abc-123_DEF.4:5"));
        assert!(!sane_request_id(""));
        assert!(!sane_request_id("a b"));
        assert!(!sane_request_id("x\r\nSet-Cookie: a=b"));
        assert!(!sane_request_id(&"a".repeat(129)));
    }
}
