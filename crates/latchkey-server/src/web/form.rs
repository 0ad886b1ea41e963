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
    #[error("the multipart body is malformed: {0}")]
    Multipart(&'static str),
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
            FormError::NotUtf8 | FormError::Duplicate(_) | FormError::Multipart(_) => Kind::BadRequest,
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

/// The configured body limit (`LATCHKEY_MAX_BODY_BYTES`).
fn max_body(req: &HttpRequest) -> usize {
    req.app_data::<web::Data<crate::AppState>>()
        .map_or(64 * 1024, |s| s.config.max_body_bytes)
}

fn content_type(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

impl FromRequest for FormParams {
    type Error = AppError;
    type Future = LocalBoxFuture<'static, Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let (max, ct) = (max_body(req), content_type(req));
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

/// The most parts a multipart form may have (a console form has a dozen fields).
const MAX_PARTS: usize = 64;

/// Parses a `multipart/form-data` body (RFC 7578) whose `Content-Type` is `content_type`: each
/// part a named field, a file's content taken as its text (UTF-8), each name once.
pub fn parse_multipart(content_type: &str, body: &[u8], max: usize) -> Result<FormParams, FormError> {
    let boundary = content_type
        .split(';')
        .skip(1)
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, _)| k.eq_ignore_ascii_case("boundary"))
        .map(|(_, v)| v.trim_matches('"'))
        .filter(|b| (1..=70).contains(&b.len()))
        .ok_or(FormError::Multipart("no boundary"))?;
    if body.len() > max {
        return Err(FormError::TooLarge(max));
    }
    let delimiter = format!("--{boundary}");
    let mut rest = body
        .strip_prefix(delimiter.as_bytes())
        .ok_or(FormError::Multipart("does not start with the boundary"))?;
    let delimiter = format!("\r\n--{boundary}");
    let mut out = BTreeMap::new();
    loop {
        if rest.starts_with(b"--") {
            return Ok(FormParams(out));
        }
        rest = rest
            .strip_prefix(b"\r\n")
            .ok_or(FormError::Multipart("no line break after a boundary"))?;
        if out.len() == MAX_PARTS {
            return Err(FormError::Multipart("too many parts"));
        }
        let end = find(rest, delimiter.as_bytes()).ok_or(FormError::Multipart("a part is not terminated"))?;
        let (name, value) = part(&rest[..end])?;
        if out.insert(name.clone(), value).is_some() {
            return Err(FormError::Duplicate(name));
        }
        rest = &rest[end + delimiter.len()..];
    }
}

/// One part: its headers (the field's name from `Content-Disposition`), a blank line, its value.
fn part(raw: &[u8]) -> Result<(String, String), FormError> {
    let split = find(raw, b"\r\n\r\n").ok_or(FormError::Multipart("a part has no header end"))?;
    let headers = std::str::from_utf8(&raw[..split]).map_err(|_| FormError::NotUtf8)?;
    let disposition = headers
        .split("\r\n")
        .filter_map(|h| h.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-disposition"))
        .map(|(_, v)| v.trim())
        .ok_or(FormError::Multipart("a part has no Content-Disposition"))?;
    let mut params = disposition.split(';').map(str::trim);
    if !params.next().is_some_and(|d| d.eq_ignore_ascii_case("form-data")) {
        return Err(FormError::Multipart("a part is not form-data"));
    }
    let name = params
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| k.eq_ignore_ascii_case("name"))
        .map(|(_, v)| v.trim_matches('"').to_owned())
        .filter(|n| !n.is_empty())
        .ok_or(FormError::Multipart("a part has no name"))?;
    let value = String::from_utf8(raw[split + 4..].to_vec()).map_err(|_| FormError::NotUtf8)?;
    Ok((name, value))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A form that may carry a file (the console's metadata upload): urlencoded like
/// [`FormParams`], or `multipart/form-data`; the body limit is the route's
/// ([`crate::web::limits::body_limit`]).
pub struct UploadForm(pub FormParams);

impl FromRequest for UploadForm {
    type Error = AppError;
    type Future = LocalBoxFuture<'static, Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let max = crate::web::limits::body_limit(req.path(), max_body(req));
        let ct = content_type(req).unwrap_or_default();
        let mut payload = payload.take();
        Box::pin(async move {
            use futures_util::StreamExt as _;
            let mut bytes = web::BytesMut::new();
            while let Some(chunk) = payload.next().await {
                let chunk = chunk
                    .map_err(|_| AppError::new(Kind::BadRequest, "The request body could not be read."))?;
                if bytes.len() + chunk.len() > max {
                    return Err(FormError::TooLarge(max).into());
                }
                bytes.extend_from_slice(&chunk);
            }
            let multipart = ct
                .split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("multipart/form-data"));
            let form = if multipart {
                parse_multipart(&ct, &bytes, max)
            } else {
                parse_form(Some(&ct), &bytes, max)
            };
            form.map(UploadForm).map_err(AppError::from)
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

    const MP: &str = "multipart/form-data; boundary=XyZ";

    fn mp(parts: &[(&str, &str)]) -> Vec<u8> {
        use std::fmt::Write as _;
        let mut b = String::new();
        for (head, value) in parts {
            let _ = write!(b, "--XyZ\r\n{head}\r\n\r\n{value}\r\n");
        }
        b.push_str("--XyZ--\r\n");
        b.into_bytes()
    }

    #[test]
    fn multipart_fields_and_files_become_params() {
        let body = mp(&[
            ("Content-Disposition: form-data; name=\"csrf\"", "tok"),
            (
                "Content-Disposition: form-data; name=\"metadata_file\"; filename=\"idp.xml\"\r\nContent-Type: text/xml",
                "<md:EntityDescriptor/>\r\nsecond line",
            ),
            ("Content-Disposition: form-data; name=\"empty\"", ""),
        ]);
        let f = parse_multipart(MP, &body, 4096).unwrap();
        assert_eq!(f.get("csrf"), Some("tok"));
        assert_eq!(
            f.get("metadata_file"),
            Some("<md:EntityDescriptor/>\r\nsecond line")
        );
        assert_eq!(f.get("empty"), Some(""));
        assert_eq!(f.0.len(), 3);
    }

    #[test]
    fn malformed_multipart_is_refused_with_its_reason() {
        let ok = mp(&[("Content-Disposition: form-data; name=\"a\"", "1")]);
        assert!(matches!(
            parse_multipart("multipart/form-data", &ok, 4096),
            Err(FormError::Multipart("no boundary"))
        ));
        assert!(matches!(
            parse_multipart(MP, &ok, 10),
            Err(FormError::TooLarge(10))
        ));
        let twice = mp(&[
            ("Content-Disposition: form-data; name=\"a\"", "1"),
            ("Content-Disposition: form-data; name=\"a\"", "2"),
        ]);
        assert_eq!(
            parse_multipart(MP, &twice, 4096),
            Err(FormError::Duplicate("a".into()))
        );
        let unterminated = b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nvalue";
        assert!(matches!(
            parse_multipart(MP, unterminated, 4096),
            Err(FormError::Multipart(_))
        ));
        let nameless = mp(&[("Content-Disposition: form-data", "1")]);
        assert!(matches!(
            parse_multipart(MP, &nameless, 4096),
            Err(FormError::Multipart("a part has no name"))
        ));
        let attachment = mp(&[("Content-Disposition: attachment; name=\"a\"", "1")]);
        assert!(matches!(
            parse_multipart(MP, &attachment, 4096),
            Err(FormError::Multipart(_))
        ));
        let mut binary = b"--XyZ\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\n".to_vec();
        binary.extend_from_slice(&[0xff, 0xfe, b'\r', b'\n']);
        binary.extend_from_slice(b"--XyZ--");
        assert_eq!(parse_multipart(MP, &binary, 4096), Err(FormError::NotUtf8));
        let many: Vec<(String, &str)> = (0..=MAX_PARTS)
            .map(|i| (format!("Content-Disposition: form-data; name=\"p{i}\""), "v"))
            .collect();
        let many: Vec<(&str, &str)> = many.iter().map(|(h, v)| (h.as_str(), *v)).collect();
        assert_eq!(
            parse_multipart(MP, &mp(&many), 1 << 20),
            Err(FormError::Multipart("too many parts"))
        );
        assert!(matches!(
            parse_multipart(MP, b"garbage", 4096),
            Err(FormError::Multipart(_))
        ));
    }
}
