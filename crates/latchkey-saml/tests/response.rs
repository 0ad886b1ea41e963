//! Response validation against documents signed by xmlsec1 (another implementation of
//! exclusive c14n and XMLDSig; `tests/fixtures/make.sh` regenerates them), and the attacks that
//! need no IdP: each is tried and refused with its reason. The full corpus, signed by pysaml2,
//! runs end to end in the workspace's `tests/tests/saml.rs`.

#![allow(clippy::unwrap_used)]

mod common;

use common::{expected, fixture, idp};

use latchkey_saml::{Expected, SamlError, validate};

fn refused(doc: &str, exp: &Expected<'_>) -> SamlError {
    validate(doc, exp).unwrap_err()
}

#[test]
fn assertion_signed_by_the_pinned_key_is_accepted_with_its_values() {
    let idp = idp(&["idp.crt"]);
    let a = validate(&fixture("signed-assertion.xml"), &expected(&idp)).unwrap();
    assert_eq!(a.id, "_assert1");
    assert_eq!(a.name_id, "alice@corp.example");
    assert_eq!(a.values("mail"), ["alice@corp.example"]);
    assert_eq!(a.values("groups"), ["engineering", "admins & friends"]);
    assert_eq!(
        a.authn_context.as_deref(),
        Some("urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport")
    );
    assert_eq!(a.session_index.as_deref(), Some("_sess1"));
    assert_eq!(a.valid_until, 1_893_456_300_000);
    assert!(!a.encrypted);
}

#[test]
fn response_signed_over_an_unsigned_assertion_is_accepted() {
    let idp = idp(&["idp.crt"]);
    let a = validate(&fixture("signed-response.xml"), &expected(&idp)).unwrap();
    assert_eq!(a.name_id, "alice@corp.example");
}

#[test]
fn any_pinned_certificate_verifies_during_a_rollover() {
    let idp = idp(&["other.crt", "idp.crt"]);
    assert!(validate(&fixture("signed-assertion.xml"), &expected(&idp)).is_ok());
}

#[test]
fn a_signature_by_another_key_is_refused_whatever_key_info_says() {
    let idp = idp(&["idp.crt"]);
    // signed-by-other carries the attacker's certificate in KeyInfo (S1).
    assert_eq!(
        refused(&fixture("signed-by-other.xml"), &expected(&idp)),
        SamlError::BadSignature
    );
    let pinned_other = self::idp(&["other.crt"]);
    assert_eq!(
        refused(&fixture("signed-assertion.xml"), &expected(&pinned_other)),
        SamlError::BadSignature
    );
}

#[test]
fn sha1_signatures_are_refused() {
    let idp = idp(&["idp.crt"]);
    assert!(matches!(
        refused(&fixture("signed-sha1.xml"), &expected(&idp)),
        SamlError::WeakAlgorithm(_)
    ));
}

#[test]
fn an_edited_value_breaks_the_digest() {
    let idp = idp(&["idp.crt"]);
    let doc = fixture("signed-assertion.xml").replace(
        ">alice@corp.example</saml:NameID>",
        ">admin@corp.example</saml:NameID>",
    );
    assert_eq!(refused(&doc, &expected(&idp)), SamlError::BadSignature);
    let doc = fixture("signed-assertion.xml").replace(">engineering<", ">administrators<");
    assert_eq!(refused(&doc, &expected(&idp)), SamlError::BadSignature);
}

#[test]
fn unsigned_assertions_are_refused() {
    let idp = idp(&["idp.crt"]);
    let doc = fixture("signed-assertion.xml");
    let start = doc.find("<ds:Signature").unwrap();
    let end = doc.find("</ds:Signature>").unwrap() + "</ds:Signature>".len();
    let unsigned = format!("{}{}", &doc[..start], &doc[end..]);
    assert_eq!(refused(&unsigned, &expected(&idp)), SamlError::Unsigned);
}

#[test]
fn a_comment_in_the_name_id_is_refused_not_truncated() {
    let idp = idp(&["idp.crt"]);
    let doc = fixture("signed-assertion.xml").replace(
        "alice@corp.example</saml:NameID>",
        "alice@corp<!---->.example</saml:NameID>",
    );
    assert_eq!(refused(&doc, &expected(&idp)), SamlError::CommentInAssertion);
}

#[test]
fn a_second_assertion_anywhere_is_refused() {
    let idp = idp(&["idp.crt"]);
    let doc = fixture("signed-assertion.xml");
    let start = doc.find("<saml:Assertion").unwrap();
    let end = doc.find("</saml:Assertion>").unwrap() + "</saml:Assertion>".len();
    let evil = doc[start..end]
        .replace("ID=\"_assert1\"", "ID=\"_evil\"")
        .replace(
            ">alice@corp.example</saml:NameID>",
            ">admin@corp.example</saml:NameID>",
        );
    // XSW3: the evil assertion before the signed one.
    let xsw3 = format!("{}{evil}{}", &doc[..start], &doc[start..]);
    assert!(matches!(refused(&xsw3, &expected(&idp)), SamlError::Structure(_)));
    // XSW7: the signed one parked in Extensions, the evil one in its place.
    let xsw7 = format!(
        "{}<samlp:Extensions>{}</samlp:Extensions>{evil}{}",
        &doc[..start],
        &doc[start..end],
        &doc[end..]
    );
    assert!(matches!(refused(&xsw7, &expected(&idp)), SamlError::Structure(_)));
    // The same ID twice: a reference could mean either.
    let dup = format!(
        "{}{}{}",
        &doc[..start],
        evil.replace("_evil", "_assert1"),
        &doc[start..]
    );
    assert!(matches!(refused(&dup, &expected(&idp)), SamlError::Structure(_)));
}

#[test]
fn times_are_enforced_with_the_skew() {
    let idp = idp(&["idp.crt"]);
    let doc = fixture("signed-assertion.xml");
    let mut exp = expected(&idp);
    exp.now = 1_893_456_300_000 + 60_000; // NotOnOrAfter + skew
    assert_eq!(refused(&doc, &exp), SamlError::Expired);
    exp.now = 1_893_456_300_000 + 59_000;
    assert!(validate(&doc, &exp).is_ok());
    exp.now = 1_893_455_940_000 - 61_000; // NotBefore - skew - 1 s
    assert_eq!(refused(&doc, &exp), SamlError::NotYetValid);
}

#[test]
fn destination_audience_and_request_must_be_ours() {
    let idp = idp(&["idp.crt"]);
    let doc = fixture("signed-assertion.xml");
    let mut exp = expected(&idp);
    exp.acs_url = "https://sso.example/t/other/saml/corp/acs";
    assert!(matches!(refused(&doc, &exp), SamlError::Destination(_)));
    let mut exp = expected(&idp);
    exp.sp_entity_id = "https://sso.example/t/other/saml/corp/metadata";
    assert_eq!(refused(&doc, &exp), SamlError::Audience);
    let mut exp = expected(&idp);
    exp.in_response_to = Some("_another");
    assert!(matches!(refused(&doc, &exp), SamlError::InResponseTo(_)));
    // A response naming a request, where none is outstanding, is not "unsolicited".
    let mut exp = expected(&idp);
    exp.in_response_to = None;
    exp.allow_unsolicited = true;
    assert!(matches!(refused(&doc, &exp), SamlError::InResponseTo(_)));
    let mut other = idp.clone();
    other.entity_id = "https://evil.example/metadata".into();
    assert!(matches!(refused(&doc, &expected(&other)), SamlError::Issuer(_)));
}

#[test]
fn parser_attacks_are_refused_before_parsing() {
    let idp = idp(&["idp.crt"]);
    let doc = fixture("signed-assertion.xml");
    let xxe = doc.replacen(
        "<samlp:Response",
        "<!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><samlp:Response",
        1,
    );
    assert_eq!(refused(&xxe, &expected(&idp)), SamlError::ForbiddenXml("DOCTYPE"));
    let big = doc.replace("engineering", &"e".repeat(300_000));
    assert!(matches!(refused(&big, &expected(&idp)), SamlError::TooLarge(_)));
}

/// The layers behind "exactly one assertion": each wrapping trick that keeps a single
/// assertion still meets a check of its own (S2).
#[test]
fn signature_shapes_outside_the_profile_are_refused() {
    let idp = idp(&["idp.crt"]);
    let doc = fixture("signed-assertion.xml");
    let shape = |d: &str| matches!(refused(d, &expected(&idp)), SamlError::SignatureShape(_));
    // The assertion's signature names another element (the response).
    assert!(shape(&doc.replace("URI=\"#_assert1\"", "URI=\"#_resp1\"")));
    // A ds:Object, where XSW8 hides the original.
    assert!(shape(
        &doc.replace("</ds:KeyInfo>", "</ds:KeyInfo><ds:Object><x/></ds:Object>")
    ));
    // Two references, and a transform outside the profile.
    let reference = &doc
        [doc.find("<ds:Reference").unwrap()..doc.find("</ds:Reference>").unwrap() + "</ds:Reference>".len()];
    assert!(shape(&doc.replacen(
        reference,
        &format!("{reference}{reference}"),
        1
    )));
    assert!(shape(&doc.replace(
        "<ds:Transform Algorithm=\"http://www.w3.org/2000/09/xmldsig#enveloped-signature\"/>",
        "<ds:Transform Algorithm=\"http://www.w3.org/TR/1999/REC-xpath-19991116\"/>"
    )));
    // The signature moved out of the assertion (into Extensions): unexpected place.
    let start = doc.find("<ds:Signature").unwrap();
    let end = doc.find("</ds:Signature>").unwrap() + "</ds:Signature>".len();
    let moved = format!("{}{}", &doc[..start], &doc[end..]).replacen(
        "<samlp:Status>",
        &format!(
            "<samlp:Extensions>{}</samlp:Extensions><samlp:Status>",
            &doc[start..end]
        ),
        1,
    );
    assert!(shape(&moved));
}

#[test]
fn a_signed_response_covers_the_assertion_inside_it() {
    let idp = idp(&["idp.crt"]);
    let doc = fixture("signed-response.xml").replace(
        ">alice@corp.example</saml:NameID>",
        ">admin@corp.example</saml:NameID>",
    );
    assert_eq!(refused(&doc, &expected(&idp)), SamlError::BadSignature);
}
