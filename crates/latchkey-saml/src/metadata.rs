//! IdP metadata in (SAML 2.0 Metadata §2.4.3) and SP metadata out (§2.4.4).

use crate::xenc::ContentCipher;
use crate::xml::{self, NS_DSIG, NS_METADATA, is};
use crate::{Result, SamlError, certs, dsig};
use latchkey_core::saml::{BINDING_POST, BINDING_REDIRECT};
use latchkey_core::{IdpDescriptor, UnixMillis};
use roxmltree::{Document, Node};
use std::fmt::Write as _;

const PROTOCOL_SAML2: &str = "urn:oasis:names:tc:SAML:2.0:protocol";

/// Reads an IdP's metadata: its entity id, where to send AuthnRequests (HTTP-Redirect
/// preferred, else HTTP-POST) and every signing certificate valid at `now` (several during a
/// rollover). Metadata without a usable signing certificate is refused: a connection must
/// never be left trusting nothing, or something unchecked.
pub fn parse_idp_metadata(text: &str, now: UnixMillis) -> Result<IdpDescriptor> {
    parse_idp_metadata_signed_by(text, now, None)
}

/// `parse_idp_metadata`, and when `signer` (a pinned metadata-signing certificate, base64 DER)
/// is given, the document must carry an enveloped signature by it (XMLDSig, the profile of
/// responses: one Reference to the ID of the signed element, exclusive c14n, SHA-256 or
/// stronger) on the root element or on the IdP's `EntityDescriptor`, so that it covers
/// everything read. The same parse serves c14n, the signature and reading.
pub fn parse_idp_metadata_signed_by(
    text: &str,
    now: UnixMillis,
    signer: Option<&str>,
) -> Result<IdpDescriptor> {
    let doc = xml::parse(text, xml::METADATA)?;
    let entity = idp_entity(doc.root_element())?;
    if let Some(signer) = signer {
        verify_metadata_signature(text, &doc, entity, signer).map_err(|e| match e {
            SamlError::MetadataSignature(_) => e,
            SamlError::BadSignature => SamlError::MetadataSignature(
                "it does not verify with the pinned metadata-signing certificate".into(),
            ),
            other => SamlError::MetadataSignature(other.to_string()),
        })?;
    }
    let entity_id = entity
        .attribute("entityID")
        .map(str::trim)
        .filter(|e| !e.is_empty() && e.len() <= 1024)
        .ok_or_else(|| SamlError::Metadata("entityID is missing".into()))?
        .to_owned();
    let idp = idp_descriptor(entity)
        .ok_or_else(|| SamlError::Metadata("no IDPSSODescriptor for SAML 2.0".into()))?;
    let (sso_binding, sso_url) = sso_service(idp)?;
    let certificates = signing_certificates(idp, now)?;
    let (logout_url, logout_response_url) = slo_service(idp)?;
    Ok(IdpDescriptor {
        entity_id,
        sso_url,
        sso_binding,
        certificates,
        wants_signed_requests: idp.attribute("WantAuthnRequestsSigned") == Some("true"),
        slo_url: logout_url,
        slo_response_url: logout_response_url,
    })
}

/// The IdP's HTTP-Redirect `SingleLogoutService`: `Location` and `ResponseLocation`. An IdP
/// without one takes no logout from Latchkey (sessions still end here).
fn slo_service(idp: Node<'_, '_>) -> Result<(Option<String>, Option<String>)> {
    let Some(s) = xml::children(idp, NS_METADATA, "SingleLogoutService")
        .find(|s| s.attribute("Binding") == Some(BINDING_REDIRECT))
    else {
        return Ok((None, None));
    };
    let location = s.attribute("Location").map(|l| l.trim().to_owned());
    let response = s.attribute("ResponseLocation").map(|l| l.trim().to_owned());
    for url in location.iter().chain(response.iter()) {
        check_endpoint("SingleLogoutService", url)?;
    }
    Ok((location, response))
}

/// The signature of the root (an `EntitiesDescriptor` aggregate or the `EntityDescriptor`), else
/// of the IdP entity, verified with the pinned `signer` only (`KeyInfo` is ignored). The entity
/// read must lie inside the signed element and outside every signature (an entity parked in a
/// signature's `KeyInfo` is not covered by its digest).
fn signature_of<'a, 'i>(n: Node<'a, 'i>) -> Result<Option<Node<'a, 'i>>> {
    xml::only_child(n, NS_DSIG, "Signature")
        .map_err(|_| SamlError::SignatureShape("two signatures on one element".into()))
}

fn verify_metadata_signature(
    text: &str,
    doc: &Document<'_>,
    entity: Node<'_, '_>,
    pinned: &str,
) -> Result<()> {
    let key = certs::public_key(pinned)?;
    crate::response::unique_ids(doc)?;
    if entity.ancestors().skip(1).any(|a| is(a, NS_DSIG, "Signature")) {
        return Err(SamlError::SignatureShape(
            "the IdP entity sits inside a signature".into(),
        ));
    }
    let root = doc.root_element();
    let (signed, signature) = match signature_of(root)? {
        Some(s) => (root, s),
        None => match signature_of(entity)? {
            Some(s) => (entity, s),
            None => return Err(SamlError::MetadataSignature("the metadata is not signed".into())),
        },
    };
    dsig::verify_enveloped(text, signed, signature, &[key]).map(drop)
}

/// The one IdP `EntityDescriptor`: the root itself, or the only IdP entity of an
/// `EntitiesDescriptor`.
fn idp_entity<'a, 'i>(root: Node<'a, 'i>) -> Result<Node<'a, 'i>> {
    if is(root, NS_METADATA, "EntityDescriptor") {
        return Ok(root);
    }
    if !is(root, NS_METADATA, "EntitiesDescriptor") {
        return Err(SamlError::Metadata(
            "the root is not an md:EntityDescriptor".into(),
        ));
    }
    let idps: Vec<Node<'_, '_>> = root
        .descendants()
        .filter(|n| is(*n, NS_METADATA, "EntityDescriptor") && idp_descriptor(*n).is_some())
        .collect();
    match idps.as_slice() {
        [one] => Ok(*one),
        [] => Err(SamlError::Metadata(
            "no IdP entity in the EntitiesDescriptor".into(),
        )),
        _ => Err(SamlError::Metadata(
            "several IdP entities: use the metadata of one entity".into(),
        )),
    }
}

/// The binding and URL to send AuthnRequests to: HTTP-Redirect preferred, else HTTP-POST.
fn sso_service(idp: Node<'_, '_>) -> Result<(String, String)> {
    let services: Vec<(String, String)> = xml::children(idp, NS_METADATA, "SingleSignOnService")
        .filter_map(|s| {
            Some((
                s.attribute("Binding")?.to_owned(),
                s.attribute("Location")?.trim().to_owned(),
            ))
        })
        .collect();
    let (sso_binding, sso_url) = [BINDING_REDIRECT, BINDING_POST]
        .iter()
        .find_map(|want| services.iter().find(|(b, _)| b == want).cloned())
        .ok_or_else(|| {
            SamlError::Metadata("no SingleSignOnService with the HTTP-Redirect or HTTP-POST binding".into())
        })?;
    check_endpoint("SingleSignOnService", &sso_url)?;
    Ok((sso_binding, sso_url))
}

/// Every distinct signing certificate (base64 DER) valid at `now`; an error naming what was
/// refused when none is.
fn signing_certificates(idp: Node<'_, '_>, now: UnixMillis) -> Result<Vec<String>> {
    let mut certificates = Vec::new();
    let mut refused = Vec::new();
    for kd in xml::children(idp, NS_METADATA, "KeyDescriptor") {
        if kd.attribute("use").is_some_and(|u| u != "signing") {
            continue;
        }
        for c in kd.descendants().filter(|n| is(*n, NS_DSIG, "X509Certificate")) {
            let b64: String = xml::text(c)?.chars().filter(|c| !c.is_whitespace()).collect();
            match certs::info(&b64).and_then(|i| certs::public_key(&b64).map(|_| i)) {
                Ok(i) if i.valid_at(now) => {
                    if !certificates.contains(&b64) {
                        certificates.push(b64);
                    }
                }
                Ok(i) => refused.push(format!("{} is not valid now", i.subject)),
                Err(e) => refused.push(e.to_string()),
            }
        }
    }
    if certificates.is_empty() {
        let why = if refused.is_empty() {
            "no signing certificate".to_owned()
        } else {
            format!("no usable signing certificate ({})", refused.join("; "))
        };
        return Err(SamlError::Metadata(why));
    }
    Ok(certificates)
}

fn idp_descriptor<'a, 'i>(entity: Node<'a, 'i>) -> Option<Node<'a, 'i>> {
    xml::children(entity, NS_METADATA, "IDPSSODescriptor").find(|d| {
        d.attribute("protocolSupportEnumeration")
            .is_some_and(|p| p.split_whitespace().any(|x| x == PROTOCOL_SAML2))
    })
}

/// The IdP's endpoint: https, or http on a loopback address (development and tests).
fn check_endpoint(service: &str, u: &str) -> Result<()> {
    let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"]
        .iter()
        .any(|p| u.strip_prefix(p).is_some_and(|r| r.starts_with([':', '/'])));
    if (u.starts_with("https://") || loopback) && u.len() <= 2000 && !u.chars().any(char::is_whitespace) {
        Ok(())
    } else {
        Err(SamlError::Metadata(format!(
            "{service} {u:?} is not an https URL"
        )))
    }
}

/// What SP metadata says about this side of a connection.
#[derive(Debug, Clone)]
pub struct SpDescriptor<'a> {
    /// The metadata URL, which is also the SP entity id.
    pub entity_id: &'a str,
    pub acs_url: &'a str,
    /// base64 DER of the connection's SP certificate.
    pub certificate: &'a str,
    pub sign_requests: bool,
    /// Where the IdP sends `LogoutRequest`s and `LogoutResponse`s (HTTP-Redirect).
    pub slo_url: &'a str,
    pub organization: &'a str,
    /// The connection accepts AES-CBC encrypted assertions (legacy; advertised only then).
    pub legacy_cbc: bool,
}

/// SP metadata for the IdP's administrator (or the IdP's metadata import).
pub fn sp_metadata(sp: &SpDescriptor<'_>) -> String {
    let e = escape;
    // The content algorithms the connection accepts (strongest first), then key transport.
    let mut encryption_methods = String::new();
    for c in [
        ContentCipher::Aes256Gcm,
        ContentCipher::Aes128Gcm,
        ContentCipher::Aes256Cbc,
        ContentCipher::Aes128Cbc,
    ] {
        if ContentCipher::allowed(sp.legacy_cbc).contains(&c) {
            let _ = write!(
                encryption_methods,
                r#"<md:EncryptionMethod Algorithm="{}"/>"#,
                c.uri()
            );
        }
    }
    encryption_methods
        .push_str(r#"<md:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p"/>"#);
    let key = |usage: &str| {
        format!(
            r#"<md:KeyDescriptor use="{usage}"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{}</ds:X509Certificate></ds:X509Data></ds:KeyInfo>{}</md:KeyDescriptor>"#,
            sp.certificate,
            if usage == "encryption" {
                encryption_methods.as_str()
            } else {
                ""
            }
        )
    };
    format!(
        concat!(
            r#"<?xml version="1.0" encoding="UTF-8"?>"#,
            r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{entity}">"#,
            r#"<md:SPSSODescriptor AuthnRequestsSigned="{signed}" WantAssertionsSigned="true" protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">"#,
            "{signing}{encryption}",
            r#"<md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="{slo}"/>"#,
            "<md:NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:persistent</md:NameIDFormat>",
            "<md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress</md:NameIDFormat>",
            "<md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified</md:NameIDFormat>",
            r#"<md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="{acs}" index="0" isDefault="true"/>"#,
            "</md:SPSSODescriptor>",
            r#"<md:Organization><md:OrganizationName xml:lang="en">{org}</md:OrganizationName><md:OrganizationDisplayName xml:lang="en">{org}</md:OrganizationDisplayName><md:OrganizationURL xml:lang="en">{entity}</md:OrganizationURL></md:Organization>"#,
            "</md:EntityDescriptor>"
        ),
        entity = e(sp.entity_id),
        signed = sp.sign_requests,
        signing = key("signing"),
        encryption = key("encryption"),
        acs = e(sp.acs_url),
        slo = e(sp.slo_url),
        org = e(sp.organization),
    )
}

/// A minimal IdP metadata document that [`parse_idp_metadata`] reads back as `idp` (while its
/// certificates are valid): for writing a connection whose original document is not kept (the
/// store keeps only what was read from it), as in a tenant file's export.
pub fn idp_metadata(idp: &IdpDescriptor) -> String {
    let mut keys = String::new();
    for c in &idp.certificates {
        let _ = write!(
            keys,
            r#"<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"#,
            escape(c)
        );
    }
    format!(
        concat!(
            r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{entity}">"#,
            r#"<md:IDPSSODescriptor WantAuthnRequestsSigned="{signed}" protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">"#,
            "{keys}",
            "{slo}",
            r#"<md:SingleSignOnService Binding="{binding}" Location="{sso}"/>"#,
            "</md:IDPSSODescriptor>",
            "</md:EntityDescriptor>"
        ),
        entity = escape(&idp.entity_id),
        signed = idp.wants_signed_requests,
        keys = keys,
        binding = escape(&idp.sso_binding),
        sso = escape(&idp.sso_url),
        slo = idp.slo_url.as_ref().map_or_else(String::new, |l| {
            let response = idp
                .slo_response_url
                .as_ref()
                .map(|r| format!(r#" ResponseLocation="{}""#, escape(r)))
                .unwrap_or_default();
            format!(
                r#"<md:SingleLogoutService Binding="{BINDING_REDIRECT}" Location="{}"{response}/>"#,
                escape(l)
            )
        }),
    )
}

/// Escapes text for an XML attribute or element.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}
