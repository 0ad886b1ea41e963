//! The ACS's judgement of a `samlp:Response` (SAML Core §3.2.2 and §2, Profiles §4.1.4): every
//! check in SECURITY-TESTS S1–S7 except the replay cache, which the caller keeps with the
//! assertion id and lifetime this returns.
//!
//! The structure is fixed before any signature is looked at: exactly one assertion, a direct
//! child of the response; signatures only as direct children of the response or the assertion;
//! every `ID` unique. The values read afterwards come from that same assertion node, which a
//! verified signature covers (its own, or the response's), so no wrapping can slip another
//! element in (S2).

use crate::certs::{self, PublicKey};
use crate::xenc::ContentCipher;
use crate::xml::{self, NS_ASSERTION, NS_DSIG, NS_PROTOCOL, is, only_child};
use crate::{Result, SamlError, dsig, xenc};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use latchkey_core::{IdpDescriptor, UnixMillis};
use roxmltree::{Document, Node};
use std::fmt::Write;

const SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
const BEARER: &str = "urn:oasis:names:tc:SAML:2.0:cm:bearer";
const MAX_ATTRIBUTES: usize = 256;
const MAX_VALUE_CHARS: usize = 4096;
/// The longest an assertion may stay valid (what the caller's replay cache covers).
pub const MAX_LIFETIME_MS: i64 = 86_400_000;

/// What this response must match.
#[derive(Debug, Clone)]
pub struct Expected<'a> {
    pub idp: &'a IdpDescriptor,
    pub sp_entity_id: &'a str,
    pub acs_url: &'a str,
    /// The ID of the AuthnRequest this browser's sign-in started; `None` when the response
    /// arrived without one (IdP-initiated).
    pub in_response_to: Option<&'a str>,
    pub allow_unsolicited: bool,
    pub now: UnixMillis,
    pub skew_ms: i64,
    /// The connection's SP key (PKCS#8), for encrypted assertions.
    pub sp_key_pkcs8: Option<&'a [u8]>,
    /// The content-encryption algorithms the connection accepts (`ContentCipher::allowed`).
    pub content_ciphers: &'a [ContentCipher],
}

/// A verified assertion, reduced to what the bridge uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assertion {
    pub id: String,
    pub name_id: String,
    pub name_id_format: Option<String>,
    pub session_index: Option<String>,
    pub authn_context: Option<String>,
    pub authn_instant: Option<UnixMillis>,
    pub session_not_on_or_after: Option<UnixMillis>,
    /// Until when the assertion could be presented (for the replay cache).
    pub valid_until: UnixMillis,
    pub attributes: Vec<Attribute>,
    pub encrypted: bool,
    /// The assertion's `Issuer` (checked to be the IdP's entity id).
    pub issuer: String,
    pub issue_instant: Option<UnixMillis>,
    /// The response's `InResponseTo` (checked against the request's ID when there was one).
    pub in_response_to: Option<String>,
    /// Which signatures verified: the response's, the assertion's (at least one of them).
    pub response_signed: bool,
    pub assertion_signed: bool,
    /// The index in `Expected::idp.certificates` of the certificate whose key verified the
    /// assertion's signature (else the response's).
    pub signer: usize,
}

/// An `saml:Attribute` with its plain-text values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    pub name: String,
    pub friendly_name: Option<String>,
    pub values: Vec<String>,
}

impl Assertion {
    /// Whether the IdP says it did multi-factor authentication: its AuthnContextClassRef, or
    /// the methods attribute Entra ID and ADFS send.
    pub fn multi_factor(&self) -> bool {
        self.authn_context.as_deref().is_some_and(is_multi_factor)
            || self
                .values(AUTHN_METHODS_ATTRIBUTE)
                .iter()
                .any(|m| is_multi_factor(m))
    }

    /// The values of the attribute called `name`: every attribute with that Name (an IdP may
    /// split one over several elements), or, when none has it, with that FriendlyName.
    pub fn values(&self, name: &str) -> Vec<String> {
        let by_name: Vec<&Attribute> = self.attributes.iter().filter(|a| a.name == name).collect();
        let chosen = if by_name.is_empty() {
            self.attributes
                .iter()
                .filter(|a| a.friendly_name.as_deref() == Some(name))
                .collect()
        } else {
            by_name
        };
        chosen
            .into_iter()
            .flat_map(|a| a.values.iter().cloned())
            .collect()
    }
}

/// Decodes the `SAMLResponse` form value (HTTP-POST binding, base64 of the XML).
pub fn decode_post(value: &str) -> Result<String> {
    let limit = xml::RESPONSE.max_bytes / 3 * 4 + 4096;
    if value.len() > limit {
        return Err(SamlError::TooLarge(format!("{} base64 characters", value.len())));
    }
    let clean: String = value.chars().filter(|c| !c.is_whitespace()).collect();
    let bytes = STANDARD
        .decode(clean)
        .map_err(|_| SamlError::Malformed("SAMLResponse is not base64".into()))?;
    String::from_utf8(bytes).map_err(|_| SamlError::Malformed("SAMLResponse is not UTF-8".into()))
}

/// Validates a decoded response against `exp`.
pub fn validate(text: &str, exp: &Expected<'_>) -> Result<Assertion> {
    let doc = xml::parse(text, xml::RESPONSE)?;
    let response = doc.root_element();
    check_envelope(&doc, response, exp)?;
    let keys = idp_keys(exp)?;
    let (plain, encrypted) = count_assertions(&doc)?;
    let response_signer = verify_response_signature(text, &doc, response, &keys)?;
    let mut assertion = match (plain, encrypted) {
        (1, 0) => {
            let assertion = only_child(response, NS_ASSERTION, "Assertion")?
                .ok_or_else(|| SamlError::Structure("the assertion is not a child of the response".into()))?;
            read_assertion(text, assertion, response_signer, &keys, exp, false)
        }
        (0, 1) => read_encrypted_assertion(response, response_signer, &keys, exp),
        _ => Err(SamlError::Structure("more than one assertion".into())),
    }?;
    assertion.in_response_to = response.attribute("InResponseTo").map(str::to_owned);
    Ok(assertion)
}

/// The response element itself: a SAML 2.0 `samlp:Response` with a success status, unique
/// `ID`s, and the destination, issuer and `InResponseTo` we expect.
fn check_envelope(doc: &Document<'_>, response: Node<'_, '_>, exp: &Expected<'_>) -> Result<()> {
    if !is(response, NS_PROTOCOL, "Response") {
        return Err(SamlError::Malformed("the root is not a samlp:Response".into()));
    }
    if response.attribute("Version") != Some("2.0") {
        return Err(SamlError::Malformed("Version is not 2.0".into()));
    }
    check_status(response)?;
    unique_ids(doc)?;
    if let Some(d) = response.attribute("Destination")
        && d != exp.acs_url
    {
        return Err(SamlError::Destination(d.chars().take(200).collect()));
    }
    if let Some(issuer) = only_child(response, NS_ASSERTION, "Issuer")? {
        check_issuer(issuer, exp)?;
    }
    check_in_response_to(response.attribute("InResponseTo"), exp)
}

/// The public keys of the IdP's signing certificates.
fn idp_keys(exp: &Expected<'_>) -> Result<Vec<PublicKey>> {
    exp.idp
        .certificates
        .iter()
        .map(|c| certs::public_key(c))
        .collect()
}

/// Exactly one assertion, plain or encrypted, directly under the response (S2). Returns how
/// many of each there are: `(1, 0)` or `(0, 1)`.
fn count_assertions(doc: &Document<'_>) -> Result<(usize, usize)> {
    let plain = count(doc, NS_ASSERTION, "Assertion");
    let encrypted = count(doc, NS_ASSERTION, "EncryptedAssertion");
    match plain + encrypted {
        0 => Err(SamlError::Structure("no assertion".into())),
        1 => Ok((plain, encrypted)),
        _ => Err(SamlError::Structure("more than one assertion".into())),
    }
}

/// Checks where signatures sit and verifies the response's own signature if it has one.
/// Returns the index of the key that verified it when the response is signed.
///
/// A signed response is checked before anything is decrypted (no decryption oracle for
/// unsigned ciphertexts).
fn verify_response_signature(
    text: &str,
    doc: &Document<'_>,
    response: Node<'_, '_>,
    keys: &[PublicKey],
) -> Result<Option<usize>> {
    let response_sig = signature_of(response)?;
    check_signature_places(doc, response)?;
    match response_sig {
        Some(sig) => dsig::verify_enveloped(text, response, sig, keys).map(Some),
        None => Ok(None),
    }
}

/// Decrypts the response's one `EncryptedAssertion` with the SP key, holds the plaintext to
/// the same structure rules as the response, and reads the assertion inside.
fn read_encrypted_assertion(
    response: Node<'_, '_>,
    response_signer: Option<usize>,
    keys: &[PublicKey],
    exp: &Expected<'_>,
) -> Result<Assertion> {
    let ea = only_child(response, NS_ASSERTION, "EncryptedAssertion")?.ok_or_else(|| {
        SamlError::Structure("the encrypted assertion is not a child of the response".into())
    })?;
    let key = exp
        .sp_key_pkcs8
        .ok_or_else(|| SamlError::Decryption("no SP key for encrypted assertions".into()))?;
    let inner = xenc::decrypt_assertion(ea, key, exp.content_ciphers)?;
    let decrypted_xml = wrap_in_scope(ea, &inner);
    // One answer for whatever the plaintext is, so nothing about it leaks before its
    // signature is checked (the response may be unsigned).
    let inner_doc = xml::parse(&decrypted_xml, xml::RESPONSE)
        .map_err(|_| SamlError::Decryption("the decrypted content is not an acceptable assertion".into()))?;
    unique_ids(&inner_doc)?;
    let wrapper = inner_doc.root_element();
    let elements: Vec<Node<'_, '_>> = wrapper.children().filter(Node::is_element).collect();
    let [assertion] = elements.as_slice() else {
        return Err(SamlError::Structure(
            "the encrypted data is not one assertion".into(),
        ));
    };
    if !is(*assertion, NS_ASSERTION, "Assertion") || count(&inner_doc, NS_ASSERTION, "Assertion") != 1 {
        return Err(SamlError::Structure(
            "the encrypted data is not one assertion".into(),
        ));
    }
    check_signature_places(&inner_doc, wrapper)?;
    if wrapper
        .children()
        .any(|c| c.is_text() && !c.text().unwrap_or_default().trim().is_empty())
    {
        return Err(SamlError::Structure("text beside the encrypted assertion".into()));
    }
    read_assertion(&decrypted_xml, *assertion, response_signer, keys, exp, true)
}

/// The decrypted assertion inside an element declaring the namespaces in scope at the
/// `EncryptedAssertion` (the IdP may rely on the response's prefixes).
fn wrap_in_scope(ea: Node<'_, '_>, inner: &str) -> String {
    let inner = inner.trim_start();
    let inner = if inner.starts_with("<?xml") {
        inner.split_once("?>").map_or(inner, |(_, rest)| rest)
    } else {
        inner
    };
    let mut decls = String::new();
    for ns in ea.namespaces() {
        if ns.name() == Some("xml") {
            continue;
        }
        let uri = crate::metadata::escape(ns.uri());
        match ns.name() {
            Some(p) => {
                let _ = write!(decls, " xmlns:{p}=\"{uri}\"");
            }
            None => {
                let _ = write!(decls, " xmlns=\"{uri}\"");
            }
        }
    }
    format!("<lk-decrypted{decls}>{inner}</lk-decrypted>")
}

fn count(doc: &Document<'_>, ns: &str, name: &str) -> usize {
    doc.descendants().filter(|n| is(*n, ns, name)).count()
}

/// The `ds:Signature` child of `n`, at most one.
fn signature_of<'a, 'i>(n: Node<'a, 'i>) -> Result<Option<Node<'a, 'i>>> {
    only_child(n, NS_DSIG, "Signature")
        .map_err(|_| SamlError::SignatureShape("two signatures on one element".into()))
}

/// Signatures may sit only on the response and on the assertion (XSW5–XSW8 park copies
/// elsewhere).
fn check_signature_places(doc: &Document<'_>, top: Node<'_, '_>) -> Result<()> {
    for sig in doc.descendants().filter(|n| is(*n, NS_DSIG, "Signature")) {
        let parent = sig.parent_element();
        let allowed = parent.is_some_and(|p| {
            p == top && is(p, NS_PROTOCOL, "Response")
                || is(p, NS_ASSERTION, "Assertion") && p.parent_element() == Some(top)
        });
        if !allowed {
            return Err(SamlError::SignatureShape(
                "a signature in an unexpected place".into(),
            ));
        }
    }
    Ok(())
}

/// Every `ID` appears once, so a reference can only mean one element (S2).
pub(crate) fn unique_ids(doc: &Document<'_>) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    for n in doc.descendants().filter(Node::is_element) {
        for a in n.attributes().filter(|a| matches!(a.name(), "ID" | "Id" | "id")) {
            if !seen.insert(a.value()) {
                return Err(SamlError::Structure(format!("ID {:?} appears twice", a.value())));
            }
        }
    }
    Ok(())
}

fn check_status(response: Node<'_, '_>) -> Result<()> {
    let status = only_child(response, NS_PROTOCOL, "Status")?
        .ok_or_else(|| SamlError::Malformed("Status is missing".into()))?;
    let code = only_child(status, NS_PROTOCOL, "StatusCode")?
        .ok_or_else(|| SamlError::Malformed("StatusCode is missing".into()))?;
    let value = code.attribute("Value").unwrap_or_default();
    if value == SUCCESS {
        return Ok(());
    }
    let nested = only_child(code, NS_PROTOCOL, "StatusCode")?
        .and_then(|n| n.attribute("Value"))
        .map(|v| format!(" / {v}"))
        .unwrap_or_default();
    Err(SamlError::Status(
        format!("{value}{nested}").chars().take(300).collect(),
    ))
}

fn check_issuer(issuer: Node<'_, '_>, exp: &Expected<'_>) -> Result<()> {
    let got = xml::text(issuer)?;
    if got != exp.idp.entity_id {
        return Err(SamlError::Issuer(got.chars().take(200).collect()));
    }
    Ok(())
}

/// S4: a response to our request names it; without a request, only a connection that allows
/// IdP-initiated sign-in takes a response that names none.
fn check_in_response_to(got: Option<&str>, exp: &Expected<'_>) -> Result<()> {
    match (exp.in_response_to, got) {
        (Some(want), Some(got)) if want == got => Ok(()),
        (None, None) if exp.allow_unsolicited => Ok(()),
        (None, None) => Err(SamlError::Unsolicited),
        (_, got) => Err(SamlError::InResponseTo(
            got.unwrap_or_default().chars().take(100).collect(),
        )),
    }
}

pub(crate) fn instant(n: Node<'_, '_>, attr: &str) -> Result<Option<UnixMillis>> {
    n.attribute(attr)
        .map(|v| {
            time::OffsetDateTime::parse(v.trim(), &time::format_description::well_known::Rfc3339)
                .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
                .map_err(|_| SamlError::Malformed(format!("{attr} {v:?} is not a UTC dateTime")))
        })
        .transpose()
}

fn read_assertion(
    src: &str,
    assertion: Node<'_, '_>,
    response_signer: Option<usize>,
    keys: &[PublicKey],
    exp: &Expected<'_>,
    encrypted: bool,
) -> Result<Assertion> {
    let assertion_signer = check_assertion_signature(src, assertion, response_signer.is_some(), keys)?;
    if assertion.attribute("Version") != Some("2.0") {
        return Err(SamlError::Malformed("assertion Version is not 2.0".into()));
    }
    let id = assertion
        .attribute("ID")
        .filter(|i| !i.is_empty())
        .ok_or_else(|| SamlError::Malformed("the assertion has no ID".into()))?;
    let issuer = only_child(assertion, NS_ASSERTION, "Issuer")?
        .ok_or_else(|| SamlError::Malformed("the assertion has no Issuer".into()))?;
    check_issuer(issuer, exp)?;
    let issue_instant = instant(assertion, "IssueInstant")?;
    if issue_instant.is_some_and(|t| t > exp.now + exp.skew_ms) {
        return Err(SamlError::NotYetValid);
    }
    let not_after = check_conditions(assertion, exp)?;
    let subject = read_subject(assertion, exp)?;

    let authn = xml::children(assertion, NS_ASSERTION, "AuthnStatement")
        .next()
        .ok_or_else(|| SamlError::Malformed("AuthnStatement is missing".into()))?;
    let session_not_on_or_after = instant(authn, "SessionNotOnOrAfter")?;
    if session_not_on_or_after.is_some_and(|t| t <= exp.now) {
        return Err(SamlError::Expired);
    }
    let authn_context = authn_context_class(authn)?;

    let valid_until = not_after.map_or(subject.confirmed_until, |n| n.min(subject.confirmed_until));
    // The replay cache keeps ids a day; an assertion must not outlive that.
    if valid_until > exp.now + MAX_LIFETIME_MS {
        return Err(SamlError::Malformed(
            "the assertion is valid for more than a day".into(),
        ));
    }
    Ok(Assertion {
        id: id.to_owned(),
        name_id: subject.name_id,
        name_id_format: subject.name_id_format,
        session_index: authn.attribute("SessionIndex").map(str::to_owned),
        authn_context,
        authn_instant: instant(authn, "AuthnInstant")?,
        session_not_on_or_after,
        valid_until,
        attributes: attributes(assertion)?,
        encrypted,
        issuer: exp.idp.entity_id.clone(),
        issue_instant,
        in_response_to: None,
        response_signed: response_signer.is_some(),
        assertion_signed: assertion_signer.is_some(),
        // One of the two verified (`check_assertion_signature` refuses an unsigned pair).
        signer: assertion_signer.or(response_signer).unwrap_or_default(),
    })
}

/// No comments inside the assertion (they can split a text node the signature covers), and a
/// valid signature on it unless the whole response was signed. Returns the index of the key
/// that verified the assertion's own signature, when it has one.
fn check_assertion_signature(
    src: &str,
    assertion: Node<'_, '_>,
    response_signed: bool,
    keys: &[PublicKey],
) -> Result<Option<usize>> {
    if assertion.descendants().any(|n| n.is_comment()) {
        return Err(SamlError::CommentInAssertion);
    }
    match signature_of(assertion)? {
        Some(sig) => dsig::verify_enveloped(src, assertion, sig, keys).map(Some),
        None if response_signed => Ok(None),
        None => Err(SamlError::Unsigned),
    }
}

/// The assertion's `Conditions`: its validity window and an audience restriction naming us in
/// every `AudienceRestriction`. Returns `NotOnOrAfter`.
fn check_conditions(assertion: Node<'_, '_>, exp: &Expected<'_>) -> Result<Option<UnixMillis>> {
    let conditions = only_child(assertion, NS_ASSERTION, "Conditions")?
        .ok_or_else(|| SamlError::Malformed("Conditions are missing".into()))?;
    let not_after = check_window(conditions, exp)?;
    let restrictions: Vec<Node<'_, '_>> =
        xml::children(conditions, NS_ASSERTION, "AudienceRestriction").collect();
    if restrictions.is_empty() {
        return Err(SamlError::Audience);
    }
    for r in restrictions {
        let mut ours = false;
        for a in xml::children(r, NS_ASSERTION, "Audience") {
            ours |= xml::text(a)? == exp.sp_entity_id;
        }
        if !ours {
            return Err(SamlError::Audience);
        }
    }
    Ok(not_after)
}

/// What the assertion's `Subject` gives the bridge.
struct Subject {
    name_id: String,
    name_id_format: Option<String>,
    /// The end of the bearer confirmation's lifetime.
    confirmed_until: UnixMillis,
}

/// The `Subject`: a bearer confirmation for us (Profiles §4.1.4.3) and a plain, sane `NameID`.
fn read_subject(assertion: Node<'_, '_>, exp: &Expected<'_>) -> Result<Subject> {
    let subject = only_child(assertion, NS_ASSERTION, "Subject")?
        .ok_or_else(|| SamlError::Subject("Subject is missing".into()))?;
    let confirmed_until = check_confirmation(subject, exp)?;
    if xml::children(subject, NS_ASSERTION, "EncryptedID")
        .next()
        .is_some()
    {
        return Err(SamlError::Subject("encrypted NameIDs are not supported".into()));
    }
    let name_id = only_child(subject, NS_ASSERTION, "NameID")?
        .ok_or_else(|| SamlError::Subject("NameID is missing".into()))?;
    let value = xml::text(name_id)?;
    if value.is_empty() || value.chars().count() > 512 || value.chars().any(char::is_control) {
        return Err(SamlError::Subject(
            "NameID is empty, too long or has control characters".into(),
        ));
    }
    Ok(Subject {
        name_id: value,
        name_id_format: name_id.attribute("Format").map(str::to_owned),
        confirmed_until,
    })
}

/// The `AuthnContextClassRef` of the authentication statement, if it names one.
fn authn_context_class(authn: Node<'_, '_>) -> Result<Option<String>> {
    match xml::children(authn, NS_ASSERTION, "AuthnContext")
        .next()
        .and_then(|c| xml::children(c, NS_ASSERTION, "AuthnContextClassRef").next())
    {
        Some(r) => Ok(Some(xml::text(r)?)),
        None => Ok(None),
    }
}

/// `NotBefore`/`NotOnOrAfter` of the conditions, with the allowed skew.
fn check_window(n: Node<'_, '_>, exp: &Expected<'_>) -> Result<Option<UnixMillis>> {
    if instant(n, "NotBefore")?.is_some_and(|t| exp.now + exp.skew_ms < t) {
        return Err(SamlError::NotYetValid);
    }
    let not_after = instant(n, "NotOnOrAfter")?;
    if not_after.is_some_and(|t| exp.now - exp.skew_ms >= t) {
        return Err(SamlError::Expired);
    }
    Ok(not_after)
}

/// Profiles §4.1.4.3: a bearer confirmation whose data names our ACS, our request, and a
/// lifetime that has not ended. Returns that lifetime.
fn check_confirmation(subject: Node<'_, '_>, exp: &Expected<'_>) -> Result<UnixMillis> {
    let mut first_error = None;
    for c in xml::children(subject, NS_ASSERTION, "SubjectConfirmation") {
        if c.attribute("Method") != Some(BEARER) {
            continue;
        }
        let outcome = (|| {
            let data = only_child(c, NS_ASSERTION, "SubjectConfirmationData")?
                .ok_or_else(|| SamlError::Subject("SubjectConfirmationData is missing".into()))?;
            let recipient = data.attribute("Recipient").unwrap_or_default();
            if recipient != exp.acs_url {
                return Err(SamlError::Recipient(recipient.chars().take(200).collect()));
            }
            check_in_response_to(data.attribute("InResponseTo"), exp)?;
            if instant(data, "NotBefore")?.is_some_and(|t| exp.now + exp.skew_ms < t) {
                return Err(SamlError::NotYetValid);
            }
            let until = instant(data, "NotOnOrAfter")?
                .ok_or_else(|| SamlError::Subject("the bearer confirmation has no NotOnOrAfter".into()))?;
            if exp.now - exp.skew_ms >= until {
                return Err(SamlError::Expired);
            }
            Ok(until)
        })();
        match outcome {
            Ok(until) => return Ok(until),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.unwrap_or_else(|| SamlError::Subject("no bearer SubjectConfirmation".into())))
}

fn attributes(assertion: Node<'_, '_>) -> Result<Vec<Attribute>> {
    let mut out = Vec::new();
    for statement in xml::children(assertion, NS_ASSERTION, "AttributeStatement") {
        for a in xml::children(statement, NS_ASSERTION, "Attribute") {
            let Some(name) = a.attribute("Name") else { continue };
            if out.len() >= MAX_ATTRIBUTES {
                return Err(SamlError::TooLarge("too many attributes".into()));
            }
            // Structured values (a NameID inside an AttributeValue) are not mapped.
            let values = xml::children(a, NS_ASSERTION, "AttributeValue")
                .filter_map(|v| xml::text(v).ok())
                .filter(|v| v.chars().count() <= MAX_VALUE_CHARS)
                .collect();
            out.push(Attribute {
                name: name.to_owned(),
                friendly_name: a.attribute("FriendlyName").map(str::to_owned),
                values,
            });
        }
    }
    Ok(out)
}

/// Authentication context classes that mean more than one factor: SAML Authentication Context
/// §3.4 classes that need a token or a certificate, REFEDS MFA, and what Entra ID and ADFS send
/// after MFA.
pub fn is_multi_factor(context: &str) -> bool {
    const MFA: [&str; 8] = [
        "https://refeds.org/profile/mfa",
        "http://schemas.microsoft.com/claims/multipleauthn",
        "urn:oasis:names:tc:SAML:2.0:ac:classes:MobileTwoFactorContract",
        "urn:oasis:names:tc:SAML:2.0:ac:classes:MobileTwoFactorUnregistered",
        "urn:oasis:names:tc:SAML:2.0:ac:classes:TimeSyncToken",
        "urn:oasis:names:tc:SAML:2.0:ac:classes:Smartcard",
        "urn:oasis:names:tc:SAML:2.0:ac:classes:SmartcardPKI",
        "urn:oasis:names:tc:SAML:2.0:ac:classes:X509",
    ];
    MFA.contains(&context)
}

/// Where Entra ID and ADFS list the methods used (their class ref often stays `Password`).
const AUTHN_METHODS_ATTRIBUTE: &str = "http://schemas.microsoft.com/claims/authnmethodsreferences";
