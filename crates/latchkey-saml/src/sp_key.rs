//! The service provider's own key pair per connection: RSA-2048 with a self-signed
//! certificate. It signs AuthnRequests and is the only key encrypted assertions open with.

use crate::{Result, SamlError};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use latchkey_core::UnixMillis;

/// A fresh SP key: the PKCS#8 private key (to be sealed by the caller) and its certificate.
pub struct SpKey {
    pub pkcs8_der: Vec<u8>,
    /// base64 DER, as SAML metadata carries it.
    pub certificate: String,
}

impl std::fmt::Debug for SpKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpKey")
            .field("certificate", &self.certificate)
            .finish_non_exhaustive()
    }
}

/// Self-signed for ten years from `now` (IdPs pin SP certificates; they don't chain them).
pub fn generate_sp_key(common_name: &str, now: UnixMillis) -> Result<SpKey> {
    let crypto = |e: rcgen::Error| SamlError::Crypto(e.to_string());
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).map_err(crypto)?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(crypto)?;
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        common_name.chars().take(64).collect::<String>(),
    );
    let start = time::OffsetDateTime::from_unix_timestamp(now / 1000)
        .map_err(|e| SamlError::Crypto(e.to_string()))?;
    params.not_before = start - time::Duration::minutes(5);
    params.not_after = start + time::Duration::days(3650);
    let cert = params.self_signed(&key).map_err(crypto)?;
    Ok(SpKey {
        pkcs8_der: key.serialize_der(),
        certificate: STANDARD.encode(cert.der()),
    })
}
