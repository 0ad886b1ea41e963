//! Responses every feature builds: pages that are never cached (remembering a chosen language),
//! redirects, self-posting forms, cookies on a response, `Retry-After`.

use crate::state::AppState;
use crate::web::cookies;
use crate::web::errors::AppError;
use crate::web::i18n::{self, Strings};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use latchkey_core::Tenant;

pub(crate) const LOCALE_COOKIE: &str = "lk-locale";

pub(crate) fn query_param(req: &HttpRequest, name: &str) -> Option<String> {
    web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
        .ok()
        .and_then(|q| q.get(name).cloned())
}

/// The reader's strings: `ui_locales` of the request (or of the pending interaction, `hint`),
/// else the language chosen earlier (a cookie), else `Accept-Language`.
pub(crate) fn strings_with(req: &HttpRequest, hint: Option<&str>) -> &'static Strings {
    let chosen = query_param(req, "ui_locales")
        .or_else(|| hint.map(str::to_owned))
        .or_else(|| req.cookie(LOCALE_COOKIE).map(|c| c.value().to_owned()));
    let accept = req
        .headers()
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    i18n::pick(chosen.as_deref(), accept)
}

pub(crate) fn strings(req: &HttpRequest) -> &'static Strings {
    strings_with(req, None)
}

/// An HTML page that is never cached. A language picked by `ui_locales` is remembered in a
/// cookie, so the forms that follow (POSTs without the parameter) keep it.
pub(crate) fn html(
    state: &AppState,
    req: &HttpRequest,
    status: StatusCode,
    body: Result<String, askama::Error>,
) -> Result<HttpResponse, AppError> {
    let body = body.map_err(|e| AppError::internal("template", e))?;
    let mut res = HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body);
    if let Some(lang) = query_param(req, "ui_locales").and_then(|l| i18n::supported(&l)) {
        let mut c = cookies::cookie(state, LOCALE_COOKIE.into(), lang.lang.into());
        c.set_max_age(actix_web::cookie::time::Duration::days(365));
        res.add_cookie(&c).map_err(|e| AppError::internal("cookie", e))?;
    }
    Ok(res)
}

pub(crate) fn logo(tenant: &Tenant) -> Option<&str> {
    tenant
        .policy
        .branding
        .logo_url
        .as_deref()
        .filter(|u| u.starts_with("https://"))
}

pub(crate) fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location.to_owned()))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

/// A 200 JSON answer for `/assets/passkey.js` (which navigates to its `redirect` itself) that
/// carries the cookies the equivalent 303 `from` sets.
pub(crate) fn json_redirect(from: &HttpResponse, body: &serde_json::Value) -> Result<HttpResponse, AppError> {
    let mut out = HttpResponse::Ok().json(body);
    for c in from.cookies() {
        out.add_cookie(&c.into_owned())
            .map_err(|e| AppError::internal("cookie", e))?;
    }
    Ok(out)
}

/// Sets `cookie` on `res` when there is one.
pub(crate) fn add_cookie(
    res: &mut HttpResponse,
    cookie: Option<actix_web::cookie::Cookie<'static>>,
) -> Result<(), AppError> {
    match cookie {
        Some(c) => res.add_cookie(&c).map_err(|e| AppError::internal("cookie", e)),
        None => Ok(()),
    }
}

/// Adds `Retry-After` to a throttled answer.
pub(crate) fn retry_after(mut res: HttpResponse, secs: u64) -> HttpResponse {
    res.headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from(secs.max(1)));
    res
}

pub(crate) fn client_ip(req: &HttpRequest) -> String {
    crate::web::net::client_addr(req).map_or_else(|| "unknown".into(), |a| a.to_string())
}

pub(crate) fn wants_json(req: &HttpRequest) -> bool {
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    accept.contains("application/json") && !accept.contains("text/html")
}

#[derive(Template)]
#[template(path = "form_post.html")]
struct FormPost<'a> {
    action: &'a str,
    fields: Vec<(&'a str, String)>,
}

/// OAuth 2.0 Form Post Response Mode: a page that posts the response to the client. Its CSP
/// allows posting to the client's origin only.
pub(crate) fn form_post(action: &str, params: &[(&'static str, String)]) -> Result<HttpResponse, AppError> {
    let page = FormPost {
        action,
        fields: params.to_vec(),
    };
    let body = page.render().map_err(|e| AppError::internal("template", e))?;
    let dest = crate::web::observe::csp_origin(action).unwrap_or_else(|| "'none'".to_owned());
    let csp = format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; form-action {dest}; frame-ancestors 'none'; base-uri 'none'"
    );
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::CONTENT_SECURITY_POLICY, csp))
        .body(body))
}

/// Only a path inside this tenant may be a destination (no open redirect, O15).
pub(crate) fn safe_return_to(tenant: &Tenant, value: Option<&str>) -> String {
    checked_return_to(tenant, value).unwrap_or_else(|| crate::web::urls::account(&tenant.slug, None))
}

pub(crate) fn checked_return_to(tenant: &Tenant, value: Option<&str>) -> Option<String> {
    let prefix = crate::web::urls::tenant_root(&tenant.slug);
    value
        .filter(|v| {
            v.starts_with(&prefix)
                && !v.contains("//")
                && !v.contains('\\')
                && !v.contains("/../")
                && !v.chars().any(char::is_control)
                && v.len() < 1024
        })
        .map(str::to_owned)
}
