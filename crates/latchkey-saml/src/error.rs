//! Why a SAML document was refused. Every variant has a stable `reason()` code for the audit log
//! and metrics; the person signing in only ever sees a generic page.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SamlError {
    /// Not base64, not UTF-8, not well-formed XML, or not the element expected.
    #[error("malformed SAML document: {0}")]
    Malformed(String),
    /// A DOCTYPE, DTD, entity declaration, XInclude or processing instruction (S6).
    #[error("forbidden XML construct: {0}")]
    ForbiddenXml(&'static str),
    #[error("document too large or too deep: {0}")]
    TooLarge(String),
    /// No signature covering the assertion.
    #[error("the assertion is not signed")]
    Unsigned,
    /// A signature whose shape is outside the profile: references, transforms, placement (S2).
    #[error("signature not acceptable: {0}")]
    SignatureShape(String),
    /// SHA-1 or an algorithm outside the allowlist (S6).
    #[error("algorithm not allowed: {0}")]
    WeakAlgorithm(String),
    /// The digest or signature value does not verify with any pinned certificate (S1).
    #[error("signature does not verify against the connection's certificates")]
    BadSignature,
    /// More than one assertion, an assertion in the wrong place, duplicate IDs (S2).
    #[error("document structure refused: {0}")]
    Structure(String),
    /// A comment inside the assertion (S3: it could cut an identity short).
    #[error("comment inside the assertion")]
    CommentInAssertion,
    #[error("issuer {0:?} is not the connection's IdP")]
    Issuer(String),
    #[error("destination {0:?} is not this ACS")]
    Destination(String),
    #[error("recipient {0:?} is not this ACS")]
    Recipient(String),
    #[error("audience restriction does not name this service provider")]
    Audience,
    #[error("not yet valid")]
    NotYetValid,
    #[error("expired")]
    Expired,
    /// InResponseTo does not match the outstanding request (S4).
    #[error("InResponseTo {0:?} does not match an outstanding request")]
    InResponseTo(String),
    /// A response nobody asked for, on a connection that does not allow IdP-initiated sign-in.
    #[error("unsolicited response")]
    Unsolicited,
    /// The assertion id was seen before (S5).
    #[error("assertion replayed")]
    Replayed,
    /// The IdP answered with a status other than Success (S7).
    #[error("IdP status {0}")]
    Status(String),
    /// The content-encryption algorithm is not on the connection's allow-list (AES-CBC on a
    /// connection not opted in to legacy CBC).
    #[error(
        "encrypted assertion: content algorithm {0} is not allowed for this connection (AES-GCM only unless legacy CBC is turned on)"
    )]
    CipherNotAllowed(String),
    /// Encrypted assertion that our key does not open, or an algorithm we refuse (S7).
    #[error("encrypted assertion: {0}")]
    Decryption(String),
    #[error("subject: {0}")]
    Subject(String),
    /// IdP metadata without what a connection needs.
    #[error("metadata: {0}")]
    Metadata(String),
    /// The metadata does not carry a valid signature by the connection's pinned
    /// metadata-signing certificate.
    #[error("metadata signature: {0}")]
    MetadataSignature(String),
    #[error("certificate: {0}")]
    Certificate(String),
    #[error("crypto: {0}")]
    Crypto(String),
}

impl SamlError {
    /// A short, stable code (audit `reason`, metric label).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "malformed",
            Self::ForbiddenXml(_) => "forbidden_xml",
            Self::TooLarge(_) => "too_large",
            Self::Unsigned => "unsigned",
            Self::SignatureShape(_) => "signature_shape",
            Self::WeakAlgorithm(_) => "weak_algorithm",
            Self::BadSignature => "bad_signature",
            Self::Structure(_) => "structure",
            Self::CommentInAssertion => "comment_in_assertion",
            Self::Issuer(_) => "issuer",
            Self::Destination(_) => "destination",
            Self::Recipient(_) => "recipient",
            Self::Audience => "audience",
            Self::NotYetValid => "not_yet_valid",
            Self::Expired => "expired",
            Self::InResponseTo(_) => "in_response_to",
            Self::Unsolicited => "unsolicited",
            Self::Replayed => "replayed",
            Self::Status(_) => "status",
            Self::CipherNotAllowed(_) => "cipher_not_allowed",
            Self::Decryption(_) => "decryption",
            Self::Subject(_) => "subject",
            Self::Metadata(_) => "metadata",
            Self::MetadataSignature(_) => "metadata_signature",
            Self::Certificate(_) => "certificate",
            Self::Crypto(_) => "crypto",
        }
    }
}

pub type Result<T, E = SamlError> = std::result::Result<T, E>;
