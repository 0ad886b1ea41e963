//! SP-initiated sign-in: an `AuthnRequest` (SAML Core §3.4.1) sent over the HTTP-Redirect
//! binding (Bindings §3.4: DEFLATE, base64, URL-encoded; optionally signed with RSA-SHA256 over
//! the query string, §3.4.4.1).

use crate::metadata::escape;
use crate::{Result, SamlError};
use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use latchkey_core::UnixMillis;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use std::io::Write;

const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";

/// RFC 3986 unreserved characters stay; everything else is encoded.
const QUERY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// What goes into one AuthnRequest.
#[derive(Debug, Clone)]
pub struct AuthnRequest<'a> {
    /// Our request id: 128 random bits, starting with a letter (an `xs:ID`).
    pub id: &'a str,
    pub sp_entity_id: &'a str,
    pub acs_url: &'a str,
    pub destination: &'a str,
    pub now: UnixMillis,
    /// `ForceAuthn` (the OIDC request said `prompt=login` or `max_age` ran out).
    pub force_authn: bool,
}

pub fn authn_request_xml(r: &AuthnRequest<'_>) -> Result<String> {
    let instant = time::OffsetDateTime::from_unix_timestamp(r.now / 1000)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .ok_or_else(|| SamlError::Crypto("clock out of range".into()))?;
    Ok(format!(
        concat!(
            r#"<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion""#,
            r#" ID="{id}" Version="2.0" IssueInstant="{instant}" Destination="{dest}""#,
            r#" AssertionConsumerServiceURL="{acs}" ProtocolBinding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"{force}>"#,
            "<saml:Issuer>{issuer}</saml:Issuer>",
            r#"<samlp:NameIDPolicy AllowCreate="true"/>"#,
            "</samlp:AuthnRequest>"
        ),
        id = escape(r.id),
        instant = instant,
        dest = escape(r.destination),
        acs = escape(r.acs_url),
        force = if r.force_authn {
            r#" ForceAuthn="true""#
        } else {
            ""
        },
        issuer = escape(r.sp_entity_id),
    ))
}

/// The URL that sends the browser to the IdP with `request` and `relay_state`; signed with
/// `signing_key` (the connection's PKCS#8 RSA key) when given.
pub fn redirect_url(
    request: &AuthnRequest<'_>,
    relay_state: &str,
    signing_key: Option<&[u8]>,
) -> Result<String> {
    let xml = authn_request_xml(request)?;
    redirect_query(
        request.destination,
        "SAMLRequest",
        &xml,
        Some(relay_state),
        signing_key,
    )
}

/// `destination` with `param` (`SAMLRequest` or `SAMLResponse`) carrying `xml` DEFLATEd and
/// base64-encoded, `RelayState`, and, with a key, `SigAlg` and `Signature` over those octets.
pub(crate) fn redirect_query(
    destination: &str,
    param: &str,
    xml: &str,
    relay_state: Option<&str>,
    signing_key: Option<&[u8]>,
) -> Result<String> {
    let mut deflater = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    deflater
        .write_all(xml.as_bytes())
        .map_err(|e| SamlError::Crypto(e.to_string()))?;
    let compressed = deflater.finish().map_err(|e| SamlError::Crypto(e.to_string()))?;
    let enc = |s: &str| utf8_percent_encode(s, QUERY).to_string();
    let mut query = format!("{param}={}", enc(&STANDARD.encode(compressed)));
    if let Some(r) = relay_state {
        query.push_str("&RelayState=");
        query.push_str(&enc(r));
    }
    if let Some(der) = signing_key {
        query.push_str("&SigAlg=");
        query.push_str(&enc(RSA_SHA256));
        let key = RsaKeyPair::from_pkcs8(der).map_err(|e| SamlError::Crypto(e.to_string()))?;
        let mut sig = vec![0u8; key.public_modulus_len()];
        key.sign(
            &RSA_PKCS1_SHA256,
            &aws_lc_rs::rand::SystemRandom::new(),
            query.as_bytes(),
            &mut sig,
        )
        .map_err(|e| SamlError::Crypto(e.to_string()))?;
        query.push_str("&Signature=");
        query.push_str(&enc(&STANDARD.encode(sig)));
    }
    let sep = if destination.contains('?') { '&' } else { '?' };
    Ok(format!("{destination}{sep}{query}"))
}

/// Our AuthnRequest ids: `_` and 32 hex digits of 128 random bits (an NCName, as `xs:ID` needs).
pub fn request_id(random: &[u8; 16]) -> String {
    format!("_{}", hex::encode(random))
}
