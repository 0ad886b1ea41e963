//! The console's only way to act: an admin API call made in-process, through the same route
//! table, permission check, handler and audit as a call over the network. The admin's
//! credential rides on the request as an extension, which nothing on the wire can set.

use super::super::ConsoleCredential;
use crate::state::AppState;
use crate::web::errors::{AppError, Kind};
use actix_web::HttpMessage as _;
use actix_web::dev::Service as _;
use actix_web::http::{Method, StatusCode, header};
use actix_web::{App, web};
use serde_json::Value;

/// An admin API answer: its status and JSON body (`Null` when it had none or another type),
/// with the raw bytes and their type for an export.
pub(crate) struct Answer {
    pub status: StatusCode,
    pub body: Value,
    pub raw: web::Bytes,
    pub content_type: Option<String>,
    /// The next page's cursor, from a list's `Link: <…>; rel="next"` (RFC 8288).
    pub next: Option<String>,
    /// The object's version (`ETag`), for a later change's `If-Match`.
    pub etag: Option<String>,
}

impl Answer {
    pub fn ok(&self) -> bool {
        self.status.is_success()
    }

    /// The problem's `detail` (RFC 9457) or the OAuth-style `error_description`, for a page.
    pub fn problem(&self) -> String {
        ["detail", "error_description", "title"]
            .iter()
            .find_map(|k| self.body.get(*k).and_then(Value::as_str))
            .map_or_else(|| self.status.to_string(), str::to_owned)
    }

    /// The body as `T`, or a 500 naming the route (our own API answered something else).
    pub fn parse<T: serde::de::DeserializeOwned>(self, what: &str) -> Result<T, AppError> {
        if !self.ok() {
            return Err(AppError::new(kind_of(self.status), self.problem()));
        }
        serde_json::from_value(self.body).map_err(|e| AppError::internal(what, e))
    }
}

fn kind_of(status: StatusCode) -> Kind {
    match status.as_u16() {
        400 => Kind::BadRequest,
        401 | 403 => Kind::Forbidden,
        404 => Kind::NotFound,
        409 => Kind::Conflict,
        412 => Kind::PreconditionFailed,
        413 => Kind::PayloadTooLarge,
        422 => Kind::Unprocessable,
        429 => Kind::TooManyRequests,
        503 => Kind::Unavailable,
        _ => Kind::Internal,
    }
}

/// One call: `method` on `path` (below `/admin/t/{tenant}`, query included), with a JSON body.
pub(crate) struct Call<'a> {
    pub method: Method,
    pub path: &'a str,
    pub body: Option<&'a Value>,
    pub if_match: Option<&'a str>,
}

/// Runs `call` as `who` on the admin API of `slug`, or on the system scope for `None`.
pub(crate) async fn call(
    state: &AppState,
    who: &ConsoleCredential,
    slug: Option<&str>,
    call: Call<'_>,
) -> Result<Answer, AppError> {
    let app = actix_web::test::init_service(
        App::new()
            .app_data(web::Data::new(state.clone()))
            .configure(crate::admin_api::configure),
    )
    .await;
    let uri = match slug {
        Some(slug) => format!("/admin/t/{}{}", super::seg(slug), call.path),
        None => format!("{}{}", crate::admin_api::SYSTEM_PREFIX, call.path),
    };
    let mut builder = actix_web::test::TestRequest::default()
        .method(call.method.clone())
        .uri(&uri);
    if let Some(b) = call.body {
        builder = builder
            .insert_header((header::CONTENT_TYPE, "application/json"))
            .set_payload(b.to_string());
    }
    if let Some(tag) = call.if_match {
        builder = builder.insert_header((header::IF_MATCH, tag.to_owned()));
    }
    let req = builder.to_request();
    req.extensions_mut().insert(who.clone());
    let res = app
        .call(req)
        .await
        .map_err(|e| AppError::internal("console call", e))?;
    let status = res.status();
    let content_type = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let next = res
        .headers()
        .get(header::LINK)
        .and_then(|v| v.to_str().ok())
        .and_then(next_cursor);
    let etag = res
        .headers()
        .get(header::ETAG)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = actix_web::body::to_bytes(res.into_body())
        .await
        .map_err(|e| AppError::internal("console call", e))?;
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
    };
    if status.is_server_error() {
        tracing::error!(%status, path = call.path, "console: the admin API failed");
    }
    Ok(Answer {
        status,
        body,
        raw: bytes,
        content_type,
        next,
        etag,
    })
}

/// The `cursor` of a `Link` header's `rel="next"` target.
fn next_cursor(link: &str) -> Option<String> {
    let target = link.split(',').find(|l| l.contains("rel=\"next\""))?;
    let query = target.split_once('?')?.1.split('>').next()?;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "cursor")
        .map(|(_, v)| v.into_owned())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_next_cursor_is_read_from_the_link_header() {
        let link = "</admin/t/acme/users?limit=100&cursor=WyJib2IiXQ&q=b>; rel=\"next\"";
        assert_eq!(super::next_cursor(link).as_deref(), Some("WyJib2IiXQ"));
        assert_eq!(super::next_cursor("</x?cursor=a>; rel=\"prev\""), None);
        assert_eq!(super::next_cursor("garbage"), None);
    }
}
