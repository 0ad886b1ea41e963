//! Why an upstream exchange was refused: one variant per check, each with a stable reason for
//! audit events and metrics. Messages quote upstream data only bounded.

/// An upstream document, token or response Latchkey does not accept.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FederationError {
    #[error("discovery: {0}")]
    Discovery(String),
    #[error("the discovery document names issuer {found:?}, not {expected:?}")]
    IssuerMismatch { expected: String, found: String },
    #[error("JWK Set: {0}")]
    Jwks(String),
    #[error("ID token: {0}")]
    Malformed(String),
    /// The token names a key the JWK Set does not hold: refetch the set once, then refuse.
    #[error("the ID token is signed with a key the upstream's JWK Set does not hold")]
    UnknownKey,
    #[error("ID token signature: {0}")]
    Signature(String),
    #[error("ID token issuer: {0}")]
    Issuer(String),
    #[error("ID token audience: {0}")]
    Audience(String),
    #[error("ID token time: {0}")]
    Expired(String),
    #[error("ID token nonce: {0}")]
    Nonce(String),
    #[error("Entra tenant {0:?} is not one this connection accepts")]
    TenantNotAllowed(String),
    #[error("the authorization response's iss {0:?} is not this connection's issuer")]
    IssParameter(String),
    #[error("the user endpoint's sub differs from the ID token's")]
    SubjectMismatch,
    #[error("no subject: {0}")]
    NoSubject(String),
    #[error("token response: {0}")]
    TokenResponse(String),
    #[error("client assertion: {0}")]
    Assertion(String),
}

impl FederationError {
    /// A stable, short reason for audit details and metric labels.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Discovery(_) => "discovery",
            Self::IssuerMismatch { .. } => "issuer_mismatch",
            Self::Jwks(_) => "jwks",
            Self::Malformed(_) => "malformed",
            Self::UnknownKey => "unknown_key",
            Self::Signature(_) => "bad_signature",
            Self::Issuer(_) => "wrong_issuer",
            Self::Audience(_) => "wrong_audience",
            Self::Expired(_) => "expired",
            Self::Nonce(_) => "nonce",
            Self::TenantNotAllowed(_) => "tenant_not_allowed",
            Self::IssParameter(_) => "iss_parameter",
            Self::SubjectMismatch => "subject_mismatch",
            Self::NoSubject(_) => "no_subject",
            Self::TokenResponse(_) => "token_response",
            Self::Assertion(_) => "assertion",
        }
    }
}
