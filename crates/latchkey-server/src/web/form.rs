//! Strict `application/x-www-form-urlencoded` bodies (RFC 6749 §3.1, §3.2): the right content
//! type, valid UTF-8 after percent-decoding, no parameter twice, a size limit. Protocol endpoints
//! take `FormParams` instead of a lenient serde form.

use crate::web::errors::{AppError, Kind};
use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use futures_util::future::LocalBoxFuture;
use percent_encoding::percent_decode;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    #[error("the body must be application/x-www-form-urlencoded")]
    WrongContentType,
    #[error("the body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the body is not valid UTF-8")]
    NotUtf8,
    #[error("parameter {0:?} appears more than once")]
    Duplicate(String),
}

/// Decoded parameters, each name once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FormParams(pub BTreeMap<String, String>);

impl FormParams {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

fn decode(part: &[u8]) -> Result<String, FormError> {
    let plus_as_space: Vec<u8> = part.iter().map(|b| if *b == b'+' { b' ' } else { *b }).collect();
    percent_decode(&plus_as_space)
        .decode_utf8()
        .map(std::borrow::Cow::into_owned)
        .map_err(|_| FormError::NotUtf8)
}

/// Parses a form body given its `Content-Type`.
pub fn parse_form(content_type: Option<&str>, body: &[u8], max: usize) -> Result<FormParams, FormError> {
    let ct = content_type.unwrap_or_default().to_ascii_lowercase();
    let mut parts = ct.split(';').map(str::trim);
    if parts.next() != Some("application/x-www-form-urlencoded") {
        return Err(FormError::WrongContentType);
    }
    for p in parts {
        if let Some(charset) = p.strip_prefix("charset=")
            && !matches!(charset.trim_matches('"'), "utf-8" | "utf8")
        {
            return Err(FormError::NotUtf8);
        }
    }
    if body.len() > max {
        return Err(FormError::TooLarge(max));
    }
    parse_pairs(body)
}

/// Parses a query string by the same rules (no content type, the URI limit applies).
pub fn parse_query(query: &str) -> Result<FormParams, FormError> {
    parse_pairs(query.as_bytes())
}

fn parse_pairs(body: &[u8]) -> Result<FormParams, FormError> {
    let mut out = BTreeMap::new();
    for pair in body.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
        let (name, value) = match pair.iter().position(|b| *b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &b""[..]),
        };
        let name = decode(name)?;
        if out.insert(name.clone(), decode(value)?).is_some() {
            return Err(FormError::Duplicate(name));
        }
    }
    Ok(FormParams(out))
}

impl From<FormError> for AppError {
    fn from(e: FormError) -> Self {
        let kind = match e {
            FormError::WrongContentType => Kind::UnsupportedMediaType,
            FormError::TooLarge(_) => Kind::PayloadTooLarge,
            FormError::NotUtf8 | FormError::Duplicate(_) => Kind::BadRequest,
        };
        AppError::new(kind, format!("{}.", capitalize(&e.to_string())))
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

impl FromRequest for FormParams {
    type Error = AppError;
    type Future = LocalBoxFuture<'static, Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let max = req
            .app_data::<web::Data<crate::AppState>>()
            .map_or(64 * 1024, |s| s.config.max_body_bytes);
        let ct = req
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            let bytes = body.await.map_err(|e| {
                if e.as_response_error().status_code() == actix_web::http::StatusCode::PAYLOAD_TOO_LARGE {
                    AppError::from(FormError::TooLarge(max))
                } else {
                    AppError::new(Kind::BadRequest, "The request body could not be read.")
                }
            })?;
            parse_form(ct.as_deref(), &bytes, max).map_err(AppError::from)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    const CT: Option<&str> = Some("application/x-www-form-urlencoded");

    #[test]
    fn decodes_plus_and_percent() {
        let f = parse_form(CT, b"a=hello+world&b=%C3%A9t%C3%A9&c", 1024).unwrap();
        assert_eq!(f.get("a"), Some("hello world"));
        assert_eq!(f.get("b"), Some("été"));
        assert_eq!(f.get("c"), Some(""));
    }

    #[test]
    fn duplicate_parameters_are_refused() {
        assert_eq!(
            parse_form(CT, b"a=1&a=2", 1024),
            Err(FormError::Duplicate("a".into()))
        );
    }

    #[test]
    fn invalid_utf8_is_refused_raw_or_percent_encoded() {
        assert_eq!(parse_form(CT, b"a=%FF%FE", 1024), Err(FormError::NotUtf8));
        assert_eq!(parse_form(CT, b"a=\xff", 1024), Err(FormError::NotUtf8));
        assert_eq!(
            parse_form(
                Some("application/x-www-form-urlencoded; charset=latin1"),
                b"a=1",
                1024
            ),
            Err(FormError::NotUtf8)
        );
    }

    #[test]
    fn wrong_content_type_and_size_are_refused() {
        assert_eq!(
            parse_form(Some("application/json"), b"{}", 1024),
            Err(FormError::WrongContentType)
        );
        assert_eq!(parse_form(None, b"a=1", 1024), Err(FormError::WrongContentType));
        assert_eq!(
            parse_form(CT, &[b'a'; 2000], 1024),
            Err(FormError::TooLarge(1024))
        );
        assert!(
            parse_form(
                Some("Application/X-WWW-Form-Urlencoded; charset=UTF-8"),
                b"a=1",
                1024
            )
            .is_ok()
        );
    }
}
