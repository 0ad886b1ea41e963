//! X.509 certificates as SAML carries them (base64 DER): what the operator sees of them, and
//! the public key a signature is checked with. Trust is pinning, not path validation: a
//! connection trusts exactly the certificates its metadata listed.

use crate::{Result, SamlError};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use latchkey_core::UnixMillis;
use serde::Serialize;
use x509_parser::prelude::{FromDer, X509Certificate};

/// A certificate's identity and lifetime.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertInfo {
    pub subject: String,
    pub issuer: String,
    /// SHA-256 of the DER, hex with colons (what IdP consoles show as the thumbprint).
    pub sha256: String,
    pub not_before: UnixMillis,
    pub not_after: UnixMillis,
}

impl CertInfo {
    pub fn valid_at(&self, now: UnixMillis) -> bool {
        self.not_before <= now && now < self.not_after
    }
}

/// The key a pinned certificate carries.
#[derive(Debug, Clone)]
pub(crate) enum PublicKey {
    /// PKCS#1 RSAPublicKey DER.
    Rsa(Vec<u8>),
    /// An uncompressed P-256 point.
    EcP256(Vec<u8>),
}

/// Base64 DER (whitespace, as in metadata, allowed).
pub fn decode(b64: &str) -> Result<Vec<u8>> {
    let clean: String = b64.chars().filter(|c| !c.is_whitespace()).collect();
    STANDARD
        .decode(clean)
        .map_err(|e| SamlError::Certificate(format!("not base64: {e}")))
}

fn parsed(der: &[u8]) -> Result<X509Certificate<'_>> {
    let (rest, cert) =
        X509Certificate::from_der(der).map_err(|e| SamlError::Certificate(format!("not X.509: {e}")))?;
    if !rest.is_empty() {
        return Err(SamlError::Certificate(
            "trailing bytes after the certificate".into(),
        ));
    }
    Ok(cert)
}

pub fn info(b64: &str) -> Result<CertInfo> {
    let der = decode(b64)?;
    let cert = parsed(&der)?;
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &der);
    let sha256 = digest
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":");
    let validity = cert.validity();
    Ok(CertInfo {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        sha256,
        not_before: validity.not_before.timestamp() * 1000,
        not_after: validity.not_after.timestamp() * 1000,
    })
}

/// A certificate pinned to verify signatures (a metadata signer): readable, with a key of the
/// kinds and sizes responses are verified with.
pub fn check_signing_certificate(b64: &str) -> Result<CertInfo> {
    public_key(b64)?;
    info(b64)
}

const OID_RSA: &str = "1.2.840.113549.1.1.1";
const OID_EC: &str = "1.2.840.10045.2.1";
const OID_P256: &str = "1.2.840.10045.3.1.7";

pub(crate) fn public_key(b64: &str) -> Result<PublicKey> {
    let der = decode(b64)?;
    let cert = parsed(&der)?;
    let spki = cert.public_key();
    let key = spki.subject_public_key.data.to_vec();
    match spki.algorithm.algorithm.to_id_string().as_str() {
        OID_RSA => {
            // Verification needs 2048 bits or more: refuse weaker keys at import, not later.
            let bits = match spki.parsed() {
                Ok(x509_parser::public_key::PublicKey::RSA(rsa)) => rsa.key_size(),
                _ => 0,
            };
            if bits < 2048 {
                return Err(SamlError::Certificate(format!(
                    "an RSA key of {bits} bits (at least 2048)"
                )));
            }
            Ok(PublicKey::Rsa(key))
        }
        OID_EC => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string());
            if curve.as_deref() == Some(OID_P256) {
                Ok(PublicKey::EcP256(key))
            } else {
                Err(SamlError::Certificate("only the P-256 curve is supported".into()))
            }
        }
        other => Err(SamlError::Certificate(format!(
            "unsupported key algorithm {other}"
        ))),
    }
}
