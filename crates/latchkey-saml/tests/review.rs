//! Regression tests from the security review of the bridge (2030 fixtures clock): a namespace
//! flood, c14n corner cases against xmlsec1, attribute lookup, weak keys at import, bounded details.

#![allow(clippy::unwrap_used)]

mod common;

use common::{NOW, cert, expected, fixture, idp};

use latchkey_core::IdpDescriptor;
use latchkey_saml::{SamlError, validate};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Runs `validate` on another thread; `None` when it takes longer than `limit`.
fn validate_within(
    doc: String,
    limit: Duration,
) -> Option<(Result<latchkey_saml::Assertion, SamlError>, Duration)> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let idp = idp(&["idp.crt"]);
        let start = Instant::now();
        let r = validate(&doc, &expected(&idp));
        let _ = tx.send((r, start.elapsed()));
    });
    rx.recv_timeout(limit).ok()
}

// ---------------------------------------------------------------------------------------------
// R1 (high): unauthenticated CPU exhaustion in the parser. roxmltree copies every in-scope
// namespace into each element that declares one, and checks each copy against the ones copied
// so far (`Namespaces::exists` in `resolve_namespaces`): quadratic in the number of in-scope
// declarations, per element. Many prefixes on the root and many small children that each
// declare one more fit well inside RESPONSE.max_bytes (256 KiB) and keep a core busy for
// minutes, before any signature is looked at.
// ---------------------------------------------------------------------------------------------
#[test]
fn namespace_declaration_flood_is_refused_quickly() {
    // 63 KB: about 10 s of one core in a release build (31 KB: 2 s; 95 KB: 54 s; the full
    // 256 KiB: over 8 minutes).
    let decls: String = (0..2000)
        .map(|i| format!(" xmlns:a{i}=\"u\""))
        .collect::<Vec<_>>()
        .concat();
    let kids = "<b xmlns:c=\"u\"/>".repeat(2000);
    let doc = format!(
        "<samlp:Response xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\"{decls}>{kids}</samlp:Response>"
    );
    assert!(
        doc.len() < 256 * 1024,
        "fits the response cap: {} bytes",
        doc.len()
    );
    let len = doc.len();
    match validate_within(doc, Duration::from_secs(5)) {
        Some((r, took)) => assert!(r.is_err(), "refused after {took:?}"),
        None => panic!("validate still busy after 5 s on a {len}-byte unsigned document"),
    }
}

fn review_idp() -> IdpDescriptor {
    let mut i = idp(&[]);
    i.certificates = vec![cert("review.crt")];
    i
}

// ---------------------------------------------------------------------------------------------
// Exclusive c14n against xmlsec1 on the corners of the spec: default namespace on the response
// (unprefixed assertion), ds/ec prefixes declared on the response only, PrefixList with
// #default and a prefix not in scope, xmlns="" under a rendered default namespace and its
// re-declaration, a prefix re-bound to another URI, attributes sorted by namespace URI (not
// prefix), xml:lang on an ancestor (not inherited), attribute-value normalisation (literal
// tab/newline) versus character references, CR as &#13;, CDATA with ]]> next to it. Passes:
// recorded as sound.
// ---------------------------------------------------------------------------------------------
#[test]
fn c14n_corner_cases_match_xmlsec1() {
    let idp = review_idp();
    let doc = fixture("review/signed-c14n.xml");
    let a = validate(&doc, &expected(&idp)).unwrap();
    assert_eq!(a.name_id, "alice@corp.example");
    assert_eq!(a.values("mail"), ["alice@corp.example"]);
    assert!(a.values("note")[0].contains("<cdata> &"));
    // CRLF as a browser/IdP may send it: the parser normalises it like xmlsec1's did.
    let crlf = doc.replace(" crlf-line\n", " crlf-line\r\n");
    assert_ne!(crlf, doc);
    assert!(validate(&crlf, &expected(&idp)).is_ok());
    let all_crlf = doc.replace('\n', "\r\n");
    assert!(validate(&all_crlf, &expected(&idp)).is_ok());
    // And a one-character change in the normalised attribute still breaks the digest.
    let edited = doc.replace("c\ttab", "c tab");
    if edited != doc {
        assert!(
            validate(&edited, &expected(&idp)).is_ok(),
            "literal tab normalises to a space"
        );
    }
    let edited = doc.replace("&#10;b", " b");
    assert_eq!(
        validate(&edited, &expected(&idp)).unwrap_err(),
        SamlError::BadSignature
    );
}

// ---------------------------------------------------------------------------------------------
// R5 (low): `Assertion::values(name)` returns the FIRST attribute whose Name *or FriendlyName*
// is `name`, and only that one. An attribute with an arbitrary Name but FriendlyName="groups"
// placed first shadows the real `groups` attribute (role map, email and name mapping all go
// through `values`); a multi-valued attribute sent as several <Attribute Name="groups">
// elements (allowed, and done by some IdPs/proxies) loses every element but the first, so the
// role sync *removes* managed roles.
// ---------------------------------------------------------------------------------------------
#[test]
fn attribute_lookup_prefers_name_and_merges_repeated_attributes() {
    let idp = review_idp();
    let a = validate(&fixture("review/signed-attrs.xml"), &expected(&idp)).unwrap();
    assert_eq!(a.values("groups"), ["engineering", "admins"]);
}

// ---------------------------------------------------------------------------------------------
// R6 (low): metadata import accepts an RSA-1024 signing certificate (`certs::public_key` does
// not look at the modulus), although `dsig` verifies with RSA_PKCS1_2048_8192_*: the
// connection is created "healthy" and then refuses every response as bad_signature. The
// operator should be told at `latchkey saml add` / refresh time.
// ---------------------------------------------------------------------------------------------
#[test]
fn metadata_with_an_rsa_1024_signing_key_is_refused_at_import() {
    let weak = cert("weak1024.crt");
    let meta = format!(
        r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="https://idp.corp.example/metadata"><md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{weak}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor><md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.corp.example/sso"/></md:IDPSSODescriptor></md:EntityDescriptor>"#
    );
    // A document signed with that key is refused: the key itself is.
    let mut i = idp(&[]);
    i.certificates = vec![weak.clone()];
    assert!(matches!(
        validate(&fixture("review/signed-weak1024.xml"), &expected(&i)).unwrap_err(),
        SamlError::Certificate(_)
    ));
    assert!(
        latchkey_saml::parse_idp_metadata(&meta, NOW).is_err(),
        "metadata with only an RSA-1024 signing key was accepted"
    );
}

// ---------------------------------------------------------------------------------------------
// R4 (low): refusal details carry attacker-chosen text unbounded into the audit log and the
// tracing line (`Refusal::detail` = `SamlError::to_string()`): `Destination` is copied whole
// (Issuer, Recipient, Status, InResponseTo are truncated, Destination is not), so every
// unauthenticated POST to an ACS can write ~256 KiB into the audit table.
// ---------------------------------------------------------------------------------------------
#[test]
fn refusal_details_are_bounded() {
    let idp = idp(&["idp.crt"]);
    let huge = "https://x/".to_owned() + &"A".repeat(200_000);
    let doc = fixture("signed-assertion.xml").replace(
        r#"Destination="https://sso.example/t/acme/saml/corp/acs""#,
        &format!(r#"Destination="{huge}""#),
    );
    let e = validate(&doc, &expected(&idp)).unwrap_err();
    assert_eq!(e.reason(), "destination");
    assert!(
        e.to_string().len() <= 1024,
        "detail is {} bytes",
        e.to_string().len()
    );
}
