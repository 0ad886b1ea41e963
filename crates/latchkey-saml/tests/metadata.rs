//! IdP metadata in the shapes real IdPs publish (Entra ID/ADFS: signed, WS-Federation role
//! descriptors, several certificates and bindings; Okta/Google: one POST binding, no `use`), SP
//! metadata and AuthnRequests out.

#![allow(clippy::unwrap_used)]

mod common;

use common::{NOW, cert};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use latchkey_core::saml::{BINDING_POST, BINDING_REDIRECT};
use latchkey_saml::{
    AuthnRequest, SamlError, SpDescriptor, generate_sp_key, parse_idp_metadata, parse_idp_metadata_signed_by,
    redirect_url, sp_metadata,
};
use std::fmt::Write as _;
use std::io::Read;

fn entra_like() -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<EntityDescriptor ID="_e1" entityID="https://sts.windows.net/0000/" xmlns="urn:oasis:names:tc:SAML:2.0:metadata">
  <Signature xmlns="http://www.w3.org/2000/09/xmldsig#"><SignedInfo/><SignatureValue>AAAA</SignatureValue></Signature>
  <RoleDescriptor xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:fed="http://docs.oasis-open.org/wsfed/federation/200706" xsi:type="fed:SecurityTokenServiceType" protocolSupportEnumeration="http://docs.oasis-open.org/wsfed/federation/200706">
    <KeyDescriptor use="signing"><KeyInfo xmlns="http://www.w3.org/2000/09/xmldsig#"><X509Data><X509Certificate>{other}</X509Certificate></X509Data></KeyInfo></KeyDescriptor>
  </RoleDescriptor>
  <IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <KeyDescriptor use="signing"><KeyInfo xmlns="http://www.w3.org/2000/09/xmldsig#"><X509Data><X509Certificate>
{idp}
</X509Certificate></X509Data></KeyInfo></KeyDescriptor>
    <KeyDescriptor use="signing"><KeyInfo xmlns="http://www.w3.org/2000/09/xmldsig#"><X509Data><X509Certificate>{other}</X509Certificate></X509Data></KeyInfo></KeyDescriptor>
    <KeyDescriptor use="encryption"><KeyInfo xmlns="http://www.w3.org/2000/09/xmldsig#"><X509Data><X509Certificate>MIIBroken</X509Certificate></X509Data></KeyInfo></KeyDescriptor>
    <SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://login.microsoftonline.com/0000/saml2"/>
    <SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:SOAP" Location="https://login.microsoftonline.com/0000/soap"/>
    <SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://login.microsoftonline.com/0000/saml2/post"/>
    <SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://login.microsoftonline.com/0000/saml2"/>
  </IDPSSODescriptor>
</EntityDescriptor>"#,
        idp = cert("idp.crt"),
        other = cert("other.crt"),
    )
}

#[test]
fn entra_shaped_metadata_gives_redirect_binding_and_both_signing_certificates() {
    let m = parse_idp_metadata(&entra_like(), NOW).unwrap();
    assert_eq!(m.entity_id, "https://sts.windows.net/0000/");
    assert_eq!(m.sso_binding, BINDING_REDIRECT);
    assert_eq!(m.sso_url, "https://login.microsoftonline.com/0000/saml2");
    // Only the IDPSSODescriptor's signing keys, whitespace removed, the broken encryption key ignored.
    assert_eq!(m.certificates, vec![cert("idp.crt"), cert("other.crt")]);
    assert!(!m.wants_signed_requests);
}

#[test]
fn okta_shaped_metadata_with_one_post_binding_and_no_key_use() {
    let xml = format!(
        r#"<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata"><md:EntityDescriptor entityID="http://www.okta.com/exk1"><md:IDPSSODescriptor WantAuthnRequestsSigned="true" protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><md:KeyDescriptor><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>{}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor><md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://corp.okta.com/app/x/sso/saml"/></md:IDPSSODescriptor></md:EntityDescriptor></md:EntitiesDescriptor>"#,
        cert("idp.crt")
    );
    let m = parse_idp_metadata(&xml, NOW).unwrap();
    assert_eq!(m.entity_id, "http://www.okta.com/exk1");
    assert_eq!(m.sso_binding, BINDING_POST);
    assert_eq!(m.certificates.len(), 1);
    assert!(m.wants_signed_requests);
}

#[test]
fn metadata_without_a_usable_signing_certificate_is_refused() {
    // Every certificate expired by 2040.
    let err = parse_idp_metadata(&entra_like(), 2_208_988_800_000).unwrap_err();
    assert!(
        matches!(err, SamlError::Metadata(ref m) if m.contains("not valid now")),
        "{err}"
    );
    let no_cert = entra_like().replace("use=\"signing\"", "use=\"encryption\"");
    assert!(matches!(
        parse_idp_metadata(&no_cert, NOW),
        Err(SamlError::Metadata(_))
    ));
    let artifact_only = entra_like()
        .replace(
            "bindings:HTTP-Redirect\" Location=\"https://login.microsoftonline.com/0000/saml2\"/>\n  </",
            "bindings:HTTP-Artifact\" Location=\"x\"/>\n  </",
        )
        .replace("bindings:HTTP-POST", "bindings:HTTP-Artifact");
    assert!(
        matches!(parse_idp_metadata(&artifact_only, NOW), Err(SamlError::Metadata(m)) if m.contains("SingleSignOnService"))
    );
    let http = entra_like().replace(
        "https://login.microsoftonline.com/0000/saml2\"",
        "http://idp.example/saml2\"",
    );
    assert!(parse_idp_metadata(&http, NOW).is_err());
    let doctype = format!("<!DOCTYPE x>{}", entra_like().split_once("?>").unwrap().1);
    assert_eq!(
        parse_idp_metadata(&doctype, NOW).unwrap_err(),
        SamlError::ForbiddenXml("DOCTYPE")
    );
}

/// Metadata has the ACS's shape at 1 MiB: an attribute flood on the entity, or thousands of
/// attributes across elements, is refused before parsing, in well under a second.
#[test]
fn metadata_attribute_floods_are_refused() {
    let started = std::time::Instant::now();
    let names = (0..90_000).fold(String::new(), |mut s, i| {
        let _ = write!(s, " a{i:x}=''");
        s
    });
    let flood = entra_like().replacen("<EntityDescriptor ", &format!("<EntityDescriptor{names} "), 1);
    assert!(flood.len() < 1024 * 1024);
    assert!(
        matches!(parse_idp_metadata(&flood, NOW), Err(SamlError::TooLarge(m)) if m.contains("one element"))
    );
    let spread = "<ContactPerson a='1' b='2' c='3' d='4'/>".repeat(5_000);
    let wide = entra_like().replacen("</EntityDescriptor>", &format!("{spread}</EntityDescriptor>"), 1);
    assert!(matches!(parse_idp_metadata(&wide, NOW), Err(SamlError::TooLarge(m)) if m.contains("16384")));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn sp_metadata_names_the_acs_and_our_certificate_and_parses_as_xml() {
    let key = generate_sp_key("acme corp SAML SP", NOW).unwrap();
    let xml = sp_metadata(&SpDescriptor {
        entity_id: "https://sso.example/t/acme/saml/corp/metadata",
        acs_url: "https://sso.example/t/acme/saml/corp/acs",
        slo_url: "https://sso.example/t/acme/saml/corp/slo",
        certificate: &key.certificate,
        sign_requests: true,
        organization: "Acme & Co",
        legacy_cbc: false,
    });
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let root = doc.root_element();
    assert_eq!(
        root.attribute("entityID"),
        Some("https://sso.example/t/acme/saml/corp/metadata")
    );
    let acs = doc
        .descendants()
        .find(|n| n.has_tag_name("AssertionConsumerService"))
        .unwrap();
    assert_eq!(
        acs.attribute("Location"),
        Some("https://sso.example/t/acme/saml/corp/acs")
    );
    assert_eq!(acs.attribute("Binding"), Some(BINDING_POST));
    let slo = doc
        .descendants()
        .find(|n| n.has_tag_name("SingleLogoutService"))
        .unwrap();
    assert_eq!(
        slo.attribute("Location"),
        Some("https://sso.example/t/acme/saml/corp/slo")
    );
    assert_eq!(slo.attribute("Binding"), Some(BINDING_REDIRECT));
    assert!(xml.contains(&key.certificate));
    assert!(xml.contains("AuthnRequestsSigned=\"true\""));
    // Only AES-GCM is offered for encrypted assertions unless the connection opted in to CBC.
    assert!(
        xml.contains("xmlenc11#aes256-gcm") && !xml.contains("-cbc"),
        "{xml}"
    );
    let info = latchkey_saml::certs::info(&key.certificate).unwrap();
    assert!(info.valid_at(NOW) && !info.valid_at(NOW + 11 * 365 * 86_400_000));
}

fn query_param(url: &str, name: &str) -> String {
    let q = url.split_once('?').unwrap().1;
    let raw = q
        .split('&')
        .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
        .unwrap();
    percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .unwrap()
        .into_owned()
}

#[test]
fn authn_request_goes_deflated_and_signed_over_the_query() {
    let key = generate_sp_key("sp", NOW).unwrap();
    let req = AuthnRequest {
        id: "_0123456789abcdef0123456789abcdef",
        sp_entity_id: "https://sso.example/t/acme/saml/corp/metadata",
        acs_url: "https://sso.example/t/acme/saml/corp/acs",
        destination: "https://idp.example/sso?tenant=1",
        now: NOW,
        force_authn: true,
    };
    let url = redirect_url(&req, "relay+/=", Some(&key.pkcs8_der)).unwrap();
    assert!(url.starts_with("https://idp.example/sso?tenant=1&SAMLRequest="));
    let deflated = STANDARD.decode(query_param(&url, "SAMLRequest")).unwrap();
    let mut xml = String::new();
    flate2::read::DeflateDecoder::new(&deflated[..])
        .read_to_string(&mut xml)
        .unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let root = doc.root_element();
    assert_eq!(root.attribute("ID"), Some(req.id));
    assert_eq!(root.attribute("AssertionConsumerServiceURL"), Some(req.acs_url));
    assert_eq!(root.attribute("ForceAuthn"), Some("true"));
    assert_eq!(query_param(&url, "RelayState"), "relay+/=");
    // Bindings §3.4.4.1: the signature covers SAMLRequest, RelayState and SigAlg as sent.
    let q = url.split_once('?').unwrap().1.split_once("tenant=1&").unwrap().1;
    let signed = q.split_once("&Signature=").unwrap().0;
    let sig = STANDARD.decode(query_param(&url, "Signature")).unwrap();
    let der = STANDARD.decode(&key.certificate).unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    let public = aws_lc_rs::signature::UnparsedPublicKey::new(
        &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
        cert.public_key().subject_public_key.data.to_vec(),
    );
    assert!(public.verify(signed.as_bytes(), &sig).is_ok());
    assert!(public.verify(format!("{signed}x").as_bytes(), &sig).is_err());
}

/// Metadata signed by xmlsec1 with a throwaway metadata-signing key
/// (`fixtures/make-metadata.sh`).
fn signed_metadata() -> String {
    common::fixture("signed-metadata.xml")
}

#[test]
fn metadata_signed_by_the_pinned_certificate_is_accepted() {
    let pinned = cert("metasigner.crt");
    let idp = parse_idp_metadata_signed_by(&signed_metadata(), NOW, Some(&pinned)).unwrap();
    assert_eq!(idp.entity_id, "https://idp.corp.example/metadata");
    assert_eq!(idp.certificates, [cert("idp.crt")]);
    // Without a pin the signature is not looked at.
    assert_eq!(parse_idp_metadata(&signed_metadata(), NOW).unwrap(), idp);
}

#[test]
fn unsigned_metadata_is_refused_when_a_signer_is_pinned() {
    let pinned = cert("metasigner.crt");
    let signed = signed_metadata();
    let start = signed.find("<ds:Signature").unwrap();
    let end = signed.find("</ds:Signature>").unwrap() + "</ds:Signature>".len();
    let unsigned = format!("{}{}", &signed[..start], &signed[end..]);
    assert!(parse_idp_metadata(&unsigned, NOW).is_ok());
    let err = parse_idp_metadata_signed_by(&unsigned, NOW, Some(&pinned)).unwrap_err();
    assert_eq!(
        err,
        SamlError::MetadataSignature("the metadata is not signed".into())
    );
    assert_eq!(err.reason(), "metadata_signature");
}

#[test]
fn metadata_signed_by_another_key_is_refused() {
    // idp.crt is a real certificate, but not the one that signed this metadata.
    let err = parse_idp_metadata_signed_by(&signed_metadata(), NOW, Some(&cert("idp.crt"))).unwrap_err();
    assert_eq!(
        err,
        SamlError::MetadataSignature(
            "it does not verify with the pinned metadata-signing certificate".into()
        )
    );
}

#[test]
fn edited_signed_metadata_is_refused() {
    let pinned = cert("metasigner.crt");
    // A swapped sign-on URL (an attacker's endpoint) breaks the digest.
    let edited = signed_metadata().replace("https://idp.corp.example/sso", "https://evil.example/sso");
    let err = parse_idp_metadata_signed_by(&edited, NOW, Some(&pinned)).unwrap_err();
    assert_eq!(err.reason(), "metadata_signature");
    // So does a signing certificate swapped for the attacker's.
    let swapped = signed_metadata().replace(&cert("idp.crt"), &cert("other.crt"));
    let err = parse_idp_metadata_signed_by(&swapped, NOW, Some(&pinned)).unwrap_err();
    assert_eq!(err.reason(), "metadata_signature");
    // A signature value that is not the signer's.
    let forged = signed_metadata().replacen("<ds:SignatureValue>", "<ds:SignatureValue>AAAA", 1);
    assert_eq!(
        parse_idp_metadata_signed_by(&forged, NOW, Some(&pinned))
            .unwrap_err()
            .reason(),
        "metadata_signature"
    );
}

#[test]
fn a_signed_entity_inside_an_unsigned_aggregate_is_accepted() {
    // Federation aggregates: the root is unsigned, the IdP's own entity carries the signature.
    let pinned = cert("metasigner.crt");
    let signed = signed_metadata();
    let body = signed
        .trim_start_matches(r#"<?xml version="1.0" encoding="UTF-8"?>"#)
        .trim();
    let wrapped = format!(
        r#"<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata">{body}</md:EntitiesDescriptor>"#
    );
    assert!(parse_idp_metadata_signed_by(&wrapped, NOW, Some(&pinned)).is_ok());
    let edited = wrapped.replace("https://idp.corp.example/sso", "https://evil.example/sso");
    assert!(parse_idp_metadata_signed_by(&edited, NOW, Some(&pinned)).is_err());
}
