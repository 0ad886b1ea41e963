//! The one place where errors become HTTP responses. Operators get details in the log; clients
//! get a status, a short safe message, and either JSON or a readable page. Protocol endpoints'
//! errors (RFC 6749 §5.2 JSON) are rendered here too (`Failure`, `oauth_json`).

use crate::web::pages::message_page;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use latchkey_oidc::{ErrorCode, OAuthError};
use latchkey_session::SessionError;
use latchkey_store::StoreError;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    BadRequest,
    /// Missing or invalid credentials (RFC 6750 §3: answered with `WWW-Authenticate`).
    Unauthorized,
    TooManyRequests,
    Forbidden,
    NotFound,
    Conflict,
    /// An `If-Match` that no longer matches (RFC 9110 §13.1.1).
    PreconditionFailed,
    /// Well-formed but not acceptable (an `Idempotency-Key` reused for another request).
    Unprocessable,
    PayloadTooLarge,
    UnsupportedMediaType,
    HeadersTooLarge,
    UriTooLong,
    Unavailable,
    Internal,
}

#[derive(Debug)]
pub struct AppError {
    pub kind: Kind,
    /// Safe to show to the client.
    pub message: String,
    pub json: bool,
    /// As an RFC 9457 problem document (`application/problem+json`; implies `json`).
    pub problem: bool,
    /// `Retry-After` in seconds for a 429 or 503, when the caller knows it (else 60 and 5).
    pub retry_after: Option<u64>,
}

impl AppError {
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            json: false,
            problem: false,
            retry_after: None,
        }
    }

    /// A 429 whose `Retry-After` is `secs` (at least 1).
    pub fn too_many(message: impl Into<String>, secs: u64) -> Self {
        Self {
            retry_after: Some(secs.max(1)),
            ..Self::new(Kind::TooManyRequests, message)
        }
    }

    /// Answer with `{"error": …, "error_description": …}` instead of a page.
    pub fn json(mut self) -> Self {
        self.json = true;
        self
    }

    /// Answer with an RFC 9457 problem document (the admin API): `type`, `title`, `status` and
    /// `detail`, plus `error` and `error_description` as extension members, so a caller that
    /// reads those keeps working.
    pub fn problem(mut self) -> Self {
        self.json = true;
        self.problem = true;
        self
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(Kind::NotFound, message)
    }

    pub fn unavailable(part: &str) -> Self {
        Self::new(
            Kind::Unavailable,
            format!("The {part} is temporarily unavailable. Please try again shortly."),
        )
    }

    /// Logs what went wrong for operators and returns a generic 500.
    pub fn internal(context: &str, detail: impl fmt::Display) -> Self {
        tracing::error!(context, error = %detail, "internal error");
        Self::new(Kind::Internal, "Something went wrong on our side.")
    }

    fn code(&self) -> &'static str {
        match self.kind {
            Kind::BadRequest => "invalid_request",
            Kind::Unauthorized => "invalid_token",
            Kind::TooManyRequests => "too_many_requests",
            Kind::Forbidden => "access_denied",
            Kind::NotFound => "not_found",
            Kind::Conflict => "conflict",
            Kind::PreconditionFailed => "precondition_failed",
            Kind::Unprocessable => "unprocessable_request",
            Kind::PayloadTooLarge => "request_too_large",
            Kind::UnsupportedMediaType => "unsupported_media_type",
            Kind::HeadersTooLarge => "headers_too_large",
            Kind::UriTooLong => "uri_too_long",
            Kind::Unavailable => "temporarily_unavailable",
            Kind::Internal => "server_error",
        }
    }

    fn title(&self) -> &'static str {
        match self.kind {
            Kind::BadRequest => "Bad request",
            Kind::Unauthorized => "Sign-in required",
            Kind::TooManyRequests => "Too many requests",
            Kind::Forbidden => "Not allowed",
            Kind::NotFound => "Not found",
            Kind::Conflict => "Conflict",
            Kind::PreconditionFailed => "Changed meanwhile",
            Kind::Unprocessable => "Request not processed",
            Kind::PayloadTooLarge => "Request too large",
            Kind::UnsupportedMediaType => "Unsupported content type",
            Kind::HeadersTooLarge => "Request headers too large",
            Kind::UriTooLong => "Address too long",
            Kind::Unavailable => "Temporarily unavailable",
            Kind::Internal => "Something went wrong",
        }
    }
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code(), self.message)
    }
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self.kind {
            Kind::BadRequest => StatusCode::BAD_REQUEST,
            Kind::Unauthorized => StatusCode::UNAUTHORIZED,
            Kind::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            Kind::Forbidden => StatusCode::FORBIDDEN,
            Kind::NotFound => StatusCode::NOT_FOUND,
            Kind::Conflict => StatusCode::CONFLICT,
            Kind::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            Kind::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
            Kind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Kind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Kind::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Kind::UriTooLong => StatusCode::URI_TOO_LONG,
            Kind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Kind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status_code());
        res.insert_header((header::CACHE_CONTROL, "no-store"));
        match self.kind {
            Kind::Unavailable => {
                // A down dependency is probed every 25-50 ms: a second is the shortest honest wait.
                res.insert_header((header::RETRY_AFTER, self.retry_after.unwrap_or(1)));
            }
            Kind::TooManyRequests => {
                res.insert_header((header::RETRY_AFTER, self.retry_after.unwrap_or(60)));
            }
            Kind::Unauthorized => {
                res.insert_header((
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"latchkey\", error=\"invalid_token\""),
                ));
            }
            _ => {}
        }
        if self.problem {
            let body = serde_json::json!({
                "type": format!("urn:latchkey:problem:{}", self.code()),
                "title": self.title(),
                "status": self.status_code().as_u16(),
                "detail": self.message,
                "error": self.code(),
                "error_description": self.message,
            });
            res.content_type("application/problem+json")
                .body(body.to_string())
        } else if self.json {
            res.json(serde_json::json!({"error": self.code(), "error_description": self.message}))
        } else {
            res.content_type("text/html; charset=utf-8")
                .body(message_page(self.title(), &self.message))
        }
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(detail) => {
                tracing::warn!(error = %detail, "database unavailable");
                AppError::unavailable("database")
            }
            // Logged once by the breaker when it opened, not once per refused request.
            StoreError::CircuitOpen => AppError::unavailable("database"),
            StoreError::Contention(detail) | StoreError::DeadlinePassed(detail) => {
                tracing::warn!(error = %detail, "database write not done");
                AppError::unavailable("database")
            }
            StoreError::NotFound { what } => AppError::not_found(format!("No such {what}.")),
            StoreError::Cycle(m) => AppError::new(Kind::Conflict, m),
            StoreError::Stale(m) => {
                tracing::info!(error = %m, "precondition failed");
                AppError::new(Kind::PreconditionFailed, m)
            }
            StoreError::Conflict(m) => {
                // Every 409 says why in the log (a race the code should absorb shows up here).
                tracing::warn!(error = %m, "conflict");
                AppError::new(Kind::Conflict, m)
            }
            StoreError::Invalid(v) => AppError::new(Kind::BadRequest, v.to_string()),
            StoreError::BadReference(m) => AppError::new(Kind::BadRequest, m),
            other => AppError::internal("store", other),
        }
    }
}

impl From<latchkey_services::ServiceError> for AppError {
    fn from(e: latchkey_services::ServiceError) -> Self {
        use latchkey_services::ServiceError;
        match e {
            ServiceError::Store(e) => e.into(),
            ServiceError::Keys(e) => e.into(),
            e @ ServiceError::TenantFile { .. } => AppError::new(Kind::BadRequest, e.to_string()),
            ServiceError::Refused(why) => AppError::new(Kind::Unprocessable, why),
            // The change that failed and how far the apply got, with the failure's own status.
            ServiceError::Applying { line, done, source } => {
                let mut e = AppError::from(*source);
                if e.kind != Kind::Internal {
                    e.message = format!(
                        "{} (at `{line}`, after {done} changes; nothing after it was applied)",
                        e.message
                    );
                }
                e
            }
            other => AppError::internal("service", other),
        }
    }
}

impl From<SessionError> for AppError {
    fn from(e: SessionError) -> Self {
        match e {
            SessionError::Unavailable(detail) => {
                tracing::warn!(error = %detail, "session store unavailable");
                AppError::unavailable("session store")
            }
            SessionError::CircuitOpen => AppError::unavailable("session store"),
            other => AppError::internal("session store", other),
        }
    }
}

impl From<latchkey_keys::KeyError> for AppError {
    fn from(e: latchkey_keys::KeyError) -> Self {
        match e {
            latchkey_keys::KeyError::Store(s) => AppError::from(s),
            other => AppError::internal("keys", other),
        }
    }
}

/// An RFC 6749 §5.2 error body, never cached.
pub(crate) fn oauth_json(status: StatusCode, e: &OAuthError) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(serde_json::json!({"error": e.code.as_str(), "error_description": e.description}))
}

/// The status an error code gets at the token endpoint family (RFC 6749 §5.2).
pub(crate) fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::InvalidClient | ErrorCode::InvalidToken => StatusCode::UNAUTHORIZED,
        ErrorCode::InsufficientScope => StatusCode::FORBIDDEN,
        ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// An endpoint failure: a protocol error for the client, or an operational one.
pub(crate) enum Failure {
    OAuth(OAuthError),
    /// `invalid_client` for `client_secret_basic`: 401 with `WWW-Authenticate: Basic`.
    Basic(OAuthError),
    App(AppError),
}

impl From<OAuthError> for Failure {
    fn from(e: OAuthError) -> Self {
        Self::OAuth(e)
    }
}

impl From<AppError> for Failure {
    fn from(e: AppError) -> Self {
        Self::App(e)
    }
}

impl From<latchkey_session::SessionError> for Failure {
    fn from(e: latchkey_session::SessionError) -> Self {
        Self::App(e.into())
    }
}

impl Failure {
    pub(crate) fn respond(self) -> HttpResponse {
        match self {
            Self::OAuth(e) => oauth_json(status_of(e.code), &e),
            Self::Basic(e) => {
                let mut res = oauth_json(StatusCode::UNAUTHORIZED, &e);
                res.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    header::HeaderValue::from_static("Basic realm=\"latchkey\", charset=\"UTF-8\""),
                );
                res
            }
            Self::App(e) => actix_web::ResponseError::error_response(&e.json()),
        }
    }

    /// The metrics label of the outcome.
    pub(crate) fn label(&self) -> &'static str {
        match self {
            Self::OAuth(e) | Self::Basic(e) => e.code.as_str(),
            Self::App(e) if e.kind == Kind::Unavailable => "temporarily_unavailable",
            Self::App(_) => "server_error",
        }
    }
}
