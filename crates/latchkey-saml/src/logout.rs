//! Single Logout (SAML Core §3.7) over the HTTP-Redirect binding (Bindings §3.4): the
//! `LogoutRequest` Latchkey sends when a session that came from an IdP ends, the one an IdP
//! sends when its session ends, and the `LogoutResponse` to each. A received message must be
//! signed (the redirect binding's query signature, §3.4.4.1) by one of the connection's pinned
//! certificates; the signed octets are the query as sent, never re-encoded.

use crate::certs::{PublicKey, public_key};
use crate::dsig::{signature_method, verify_with_keys};
use crate::metadata::escape;
use crate::response::instant;
use crate::xml::{self, NS_ASSERTION, NS_PROTOCOL, is, only_child, text};
use crate::{Result, SamlError};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use latchkey_core::UnixMillis;
use std::io::Read;

pub const STATUS_SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
pub const STATUS_REQUESTER: &str = "urn:oasis:names:tc:SAML:2.0:status:Requester";
pub const STATUS_PARTIAL_LOGOUT: &str = "urn:oasis:names:tc:SAML:2.0:status:PartialLogout";

/// A logout message is small: a NameID and a few session indexes.
const LOGOUT: xml::Limits = xml::Limits {
    max_bytes: 32 * 1024,
    max_nodes: 500,
    max_depth: 16,
    max_attributes_per_element: 32,
    max_attributes: 512,
};
/// At most this many `SessionIndex` elements are read.
const MAX_SESSION_INDEXES: usize = 32;

/// Which parameter carries the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Param {
    SamlRequest,
    SamlResponse,
}

impl Param {
    pub fn name(self) -> &'static str {
        match self {
            Self::SamlRequest => "SAMLRequest",
            Self::SamlResponse => "SAMLResponse",
        }
    }
}

/// A `LogoutRequest` Latchkey sends (SP-initiated logout).
#[derive(Debug, Clone)]
pub struct LogoutRequest<'a> {
    /// Our request id (an `xs:ID`, as `request::request_id` makes).
    pub id: &'a str,
    /// Our SP entity id.
    pub issuer: &'a str,
    /// The IdP's SingleLogoutService location.
    pub destination: &'a str,
    pub now: UnixMillis,
    /// The NameID (and its Format) of the assertion the session came from.
    pub name_id: &'a str,
    pub name_id_format: Option<&'a str>,
    pub session_index: Option<&'a str>,
}

/// A `LogoutResponse` Latchkey sends to an IdP's `LogoutRequest`.
#[derive(Debug, Clone)]
pub struct LogoutResponse<'a> {
    pub id: &'a str,
    pub in_response_to: &'a str,
    pub issuer: &'a str,
    pub destination: &'a str,
    pub now: UnixMillis,
    /// A status code URI (`STATUS_SUCCESS`, …).
    pub status: &'a str,
}

fn rfc3339(ms: UnixMillis) -> Result<String> {
    time::OffsetDateTime::from_unix_timestamp(ms / 1000)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .ok_or_else(|| SamlError::Crypto("clock out of range".into()))
}

pub fn logout_request_xml(r: &LogoutRequest<'_>) -> Result<String> {
    let format = r
        .name_id_format
        .map(|f| format!(r#" Format="{}""#, escape(f)))
        .unwrap_or_default();
    let index = r
        .session_index
        .map(|i| format!("<samlp:SessionIndex>{}</samlp:SessionIndex>", escape(i)))
        .unwrap_or_default();
    Ok(format!(
        concat!(
            r#"<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion""#,
            r#" ID="{id}" Version="2.0" IssueInstant="{instant}" Destination="{dest}" NotOnOrAfter="{until}">"#,
            "<saml:Issuer>{issuer}</saml:Issuer>",
            "<saml:NameID{format}>{name_id}</saml:NameID>{index}",
            "</samlp:LogoutRequest>"
        ),
        id = escape(r.id),
        instant = rfc3339(r.now)?,
        until = rfc3339(r.now + 5 * 60_000)?,
        dest = escape(r.destination),
        issuer = escape(r.issuer),
        format = format,
        name_id = escape(r.name_id),
        index = index,
    ))
}

pub fn logout_response_xml(r: &LogoutResponse<'_>) -> Result<String> {
    Ok(format!(
        concat!(
            r#"<samlp:LogoutResponse xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion""#,
            r#" ID="{id}" Version="2.0" IssueInstant="{instant}" Destination="{dest}" InResponseTo="{irt}">"#,
            "<saml:Issuer>{issuer}</saml:Issuer>",
            r#"<samlp:Status><samlp:StatusCode Value="{status}"/></samlp:Status>"#,
            "</samlp:LogoutResponse>"
        ),
        id = escape(r.id),
        instant = rfc3339(r.now)?,
        dest = escape(r.destination),
        irt = escape(r.in_response_to),
        issuer = escape(r.issuer),
        status = escape(r.status),
    ))
}

/// The URL that carries `xml` to `destination` over the HTTP-Redirect binding, signed with
/// RSA-SHA256 by `signing_key` (PKCS#8) when given.
pub fn redirect(
    destination: &str,
    param: Param,
    xml: &str,
    relay_state: Option<&str>,
    signing_key: Option<&[u8]>,
) -> Result<String> {
    crate::request::redirect_query(destination, param.name(), xml, relay_state, signing_key)
}

/// A message received over the HTTP-Redirect binding, its signature verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub param: Param,
    pub xml: String,
    pub relay_state: Option<String>,
    /// The index of the certificate that verified it.
    pub signer: usize,
}

/// Reads a redirect-binding query (`raw_query`, as the browser sent it): exactly one
/// `SAMLRequest` or `SAMLResponse`, signed with `SigAlg`/`Signature` by one of `certificates`
/// (base64 DER). Unsigned messages are refused: anyone can make a browser visit a URL.
pub fn receive(raw_query: &str, certificates: &[String]) -> Result<Received> {
    if raw_query.len() > 64 * 1024 {
        return Err(SamlError::TooLarge(format!(
            "a query of {} bytes",
            raw_query.len()
        )));
    }
    let mut raw: Vec<(&str, &str)> = Vec::new();
    for part in raw_query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        if ["SAMLRequest", "SAMLResponse", "RelayState", "SigAlg", "Signature"].contains(&k) {
            if raw.iter().any(|(seen, _)| *seen == k) {
                return Err(SamlError::Malformed(format!("{k} appears twice")));
            }
            raw.push((k, v));
        }
    }
    let get = |k: &str| raw.iter().find(|(n, _)| *n == k).map(|(_, v)| *v);
    let (param, message) = match (get("SAMLRequest"), get("SAMLResponse")) {
        (Some(m), None) => (Param::SamlRequest, m),
        (None, Some(m)) => (Param::SamlResponse, m),
        _ => {
            return Err(SamlError::Malformed(
                "exactly one of SAMLRequest and SAMLResponse".into(),
            ));
        }
    };
    let (Some(sig_alg), Some(signature)) = (get("SigAlg"), get("Signature")) else {
        return Err(SamlError::Unsigned);
    };
    // Bindings §3.4.4.1: the octets signed are the parameters as they appear in the query.
    let mut octets = format!("{}={message}", param.name());
    if let Some(r) = get("RelayState") {
        octets.push_str("&RelayState=");
        octets.push_str(r);
    }
    octets.push_str("&SigAlg=");
    octets.push_str(sig_alg);
    let method = signature_method(&decode_component(sig_alg)?)?;
    let signature = STANDARD
        .decode(decode_component(signature)?.as_bytes())
        .map_err(|_| SamlError::Malformed("Signature is not base64".into()))?;
    let keys: Vec<PublicKey> = certificates.iter().filter_map(|c| public_key(c).ok()).collect();
    let signer = verify_with_keys(method, &keys, octets.as_bytes(), &signature)?;
    Ok(Received {
        param,
        xml: inflate(&decode_component(message)?)?,
        relay_state: get("RelayState").map(decode_component).transpose()?,
        signer,
    })
}

/// A query component, percent-decoded (`+` is a space, as form encoding has it).
fn decode_component(v: &str) -> Result<String> {
    let spaced = v.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .map(std::borrow::Cow::into_owned)
        .map_err(|_| SamlError::Malformed("a query parameter is not UTF-8".into()))
}

/// base64, then raw DEFLATE, at most `LOGOUT.max_bytes` out (a deflate bomb stops there).
fn inflate(b64: &str) -> Result<String> {
    let clean: String = b64.chars().filter(|c| !c.is_whitespace()).collect();
    let compressed = STANDARD
        .decode(clean)
        .map_err(|_| SamlError::Malformed("the message is not base64".into()))?;
    let mut out = Vec::new();
    flate2::read::DeflateDecoder::new(compressed.as_slice())
        .take(LOGOUT.max_bytes as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|_| SamlError::Malformed("the message is not DEFLATE".into()))?;
    if out.len() > LOGOUT.max_bytes {
        return Err(SamlError::TooLarge(format!(
            "more than {} bytes inflated",
            LOGOUT.max_bytes
        )));
    }
    String::from_utf8(out).map_err(|_| SamlError::Malformed("the message is not UTF-8".into()))
}

/// What a received logout message must match.
#[derive(Debug, Clone, Copy)]
pub struct Expect<'a> {
    /// The IdP's entity id (the `Issuer`).
    pub idp_entity_id: &'a str,
    /// Our SingleLogoutService URL (the `Destination`).
    pub destination: &'a str,
    pub now: UnixMillis,
    /// Clock skew allowed on `IssueInstant` and `NotOnOrAfter`.
    pub skew_ms: i64,
}

/// An IdP's `LogoutRequest`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutRequestIn {
    pub id: String,
    pub name_id: String,
    pub name_id_format: Option<String>,
    /// The sessions to end; empty means every session of the NameID (Core §3.7.1).
    pub session_indexes: Vec<String>,
}

/// An IdP's answer to our `LogoutRequest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutResponseIn {
    pub in_response_to: String,
    /// The top-level status code.
    pub status: String,
}

impl LogoutResponseIn {
    pub fn success(&self) -> bool {
        self.status == STATUS_SUCCESS
    }
}

/// The common part: root element, version, `Destination`, `Issuer`, `IssueInstant`.
fn check_common<'a, 'i>(
    doc: &'a roxmltree::Document<'i>,
    name: &str,
    exp: &Expect<'_>,
) -> Result<roxmltree::Node<'a, 'i>> {
    let root = doc.root_element();
    if !is(root, NS_PROTOCOL, name) {
        return Err(SamlError::Structure(format!("not a samlp:{name}")));
    }
    if root.attribute("Version") != Some("2.0") {
        return Err(SamlError::Structure("Version is not 2.0".into()));
    }
    match root.attribute("Destination") {
        Some(d) if d == exp.destination => {}
        other => {
            return Err(SamlError::Destination(
                other.unwrap_or_default().chars().take(200).collect(),
            ));
        }
    }
    let issuer = only_child(root, NS_ASSERTION, "Issuer")?.ok_or_else(|| SamlError::Issuer(String::new()))?;
    let got = text(issuer)?;
    if got.trim() != exp.idp_entity_id {
        return Err(SamlError::Issuer(got.chars().take(200).collect()));
    }
    let issue_instant =
        instant(root, "IssueInstant")?.ok_or_else(|| SamlError::Malformed("no IssueInstant".into()))?;
    if issue_instant > exp.now + exp.skew_ms {
        return Err(SamlError::NotYetValid);
    }
    if issue_instant < exp.now - 10 * 60_000 - exp.skew_ms {
        return Err(SamlError::Expired);
    }
    if root.attribute("ID").is_none_or(str::is_empty) {
        return Err(SamlError::Malformed("no ID".into()));
    }
    Ok(root)
}

/// Checks an IdP's `LogoutRequest` (Core §3.7.1): addressed to us, from the IdP, current.
pub fn parse_logout_request(text_xml: &str, exp: &Expect<'_>) -> Result<LogoutRequestIn> {
    let doc = xml::parse(text_xml, LOGOUT)?;
    let root = check_common(&doc, "LogoutRequest", exp)?;
    if instant(root, "NotOnOrAfter")?.is_some_and(|t| exp.now >= t + exp.skew_ms) {
        return Err(SamlError::Expired);
    }
    let name_id = only_child(root, NS_ASSERTION, "NameID")?
        .ok_or_else(|| SamlError::Structure("no NameID (an EncryptedID is not supported)".into()))?;
    let value = text(name_id)?.trim().to_owned();
    if value.is_empty() {
        return Err(SamlError::Structure("an empty NameID".into()));
    }
    let mut session_indexes = Vec::new();
    for i in xml::children(root, NS_PROTOCOL, "SessionIndex") {
        if session_indexes.len() == MAX_SESSION_INDEXES {
            return Err(SamlError::TooLarge("too many SessionIndex elements".into()));
        }
        session_indexes.push(text(i)?.trim().to_owned());
    }
    Ok(LogoutRequestIn {
        id: root.attribute("ID").unwrap_or_default().to_owned(),
        name_id: value,
        name_id_format: name_id.attribute("Format").map(str::to_owned),
        session_indexes,
    })
}

/// Checks an IdP's `LogoutResponse` (Core §3.7.2) to our request `request_id`.
pub fn parse_logout_response(text_xml: &str, exp: &Expect<'_>, request_id: &str) -> Result<LogoutResponseIn> {
    let doc = xml::parse(text_xml, LOGOUT)?;
    let root = check_common(&doc, "LogoutResponse", exp)?;
    let irt = root.attribute("InResponseTo").unwrap_or_default();
    if irt != request_id {
        return Err(SamlError::InResponseTo(irt.chars().take(100).collect()));
    }
    let status = only_child(root, NS_PROTOCOL, "Status")?
        .and_then(|s| only_child(s, NS_PROTOCOL, "StatusCode").ok().flatten())
        .and_then(|c| c.attribute("Value"))
        .ok_or_else(|| SamlError::Structure("no StatusCode".into()))?;
    Ok(LogoutResponseIn {
        in_response_to: irt.to_owned(),
        status: status.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sp_key::generate_sp_key;

    const NOW: UnixMillis = 1_800_000_000_000;
    const IDP: &str = "https://idp.example/metadata";
    const SLO: &str = "https://sso.example/t/acme/saml/corp/slo";

    fn exp() -> Expect<'static> {
        Expect {
            idp_entity_id: IDP,
            destination: SLO,
            now: NOW,
            skew_ms: 60_000,
        }
    }

    /// An IdP's LogoutRequest for `name_id`, signed with a fresh key: (query, certificate).
    fn idp_request(name_id: &str, index: Option<&str>) -> (String, String, Vec<u8>) {
        let key = generate_sp_key("idp", NOW).unwrap();
        let xml = logout_request_xml(&LogoutRequest {
            id: "_idp1",
            issuer: IDP,
            destination: SLO,
            now: NOW,
            name_id,
            name_id_format: Some("urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"),
            session_index: index,
        })
        .unwrap();
        let url = redirect(SLO, Param::SamlRequest, &xml, Some("rs 1"), Some(&key.pkcs8_der)).unwrap();
        let query = url.split_once('?').unwrap().1.to_owned();
        (query, key.certificate.clone(), key.pkcs8_der.clone())
    }

    #[test]
    fn a_signed_logout_request_round_trips() {
        let (query, cert, _) = idp_request("alice@corp.example", Some("s-1"));
        let got = receive(&query, &[cert]).unwrap();
        assert_eq!(got.param, Param::SamlRequest);
        assert_eq!(got.relay_state.as_deref(), Some("rs 1"));
        let req = parse_logout_request(&got.xml, &exp()).unwrap();
        assert_eq!(req.name_id, "alice@corp.example");
        assert_eq!(req.session_indexes, vec!["s-1".to_owned()]);
        assert_eq!(req.id, "_idp1");
    }

    #[test]
    fn unsigned_forged_and_edited_requests_are_refused() {
        let (query, cert, _) = idp_request("alice@corp.example", None);
        let unsigned: String = query.split("&SigAlg=").next().unwrap().to_owned();
        assert!(matches!(
            receive(&unsigned, std::slice::from_ref(&cert)),
            Err(SamlError::Unsigned)
        ));
        // Signed by someone else's key.
        let (forged, _, _) = idp_request("alice@corp.example", None);
        assert!(matches!(
            receive(&forged, std::slice::from_ref(&cert)),
            Err(SamlError::BadSignature)
        ));
        // The signed query with another RelayState.
        let edited = query.replace("RelayState=rs%201", "RelayState=rs%202");
        assert_ne!(edited, query);
        assert!(matches!(
            receive(&edited, std::slice::from_ref(&cert)),
            Err(SamlError::BadSignature)
        ));
        // A second SAMLRequest smuggled in.
        let twice = format!("{query}&SAMLRequest=AAAA");
        assert!(matches!(receive(&twice, &[cert]), Err(SamlError::Malformed(_))));
    }

    #[test]
    fn odd_queries_are_refused_before_any_xml_is_read() {
        let (query, cert, _) = idp_request("alice@corp.example", None);
        let certs = std::slice::from_ref(&cert);
        for (what, q) in [
            ("a second SigAlg", format!("{query}&SigAlg=x")),
            ("a second RelayState", format!("{query}&RelayState=x")),
            ("both messages", format!("{query}&SAMLResponse=AAAA")),
            ("no message", "RelayState=x&SigAlg=x&Signature=x".to_owned()),
        ] {
            assert!(
                matches!(receive(&q, certs), Err(SamlError::Malformed(_))),
                "{what}"
            );
        }
        // RSA-SHA1 is refused whatever the signature says.
        let sha1 = query.replace("xmldsig-more%23rsa-sha256", "xmldsig%23rsa-sha1");
        assert_ne!(sha1, query);
        assert!(matches!(receive(&sha1, certs), Err(SamlError::WeakAlgorithm(_))));
        // The order of the parameters in the query does not matter; their octets do.
        let mut parts: Vec<&str> = query.split('&').collect();
        parts.reverse();
        assert!(receive(&parts.join("&"), certs).is_ok());
    }

    #[test]
    fn requests_for_someone_else_or_out_of_time_are_refused() {
        let xml = |issuer: &str, dest: &str, now: UnixMillis| {
            logout_request_xml(&LogoutRequest {
                id: "_r",
                issuer,
                destination: dest,
                now,
                name_id: "alice",
                name_id_format: None,
                session_index: None,
            })
            .unwrap()
        };
        assert!(parse_logout_request(&xml(IDP, SLO, NOW), &exp()).is_ok());
        assert!(matches!(
            parse_logout_request(&xml("https://evil/", SLO, NOW), &exp()),
            Err(SamlError::Issuer(_))
        ));
        assert!(matches!(
            parse_logout_request(
                &xml(IDP, "https://sso.example/t/other/saml/corp/slo", NOW),
                &exp()
            ),
            Err(SamlError::Destination(_))
        ));
        assert!(matches!(
            parse_logout_request(&xml(IDP, SLO, NOW - 30 * 60_000), &exp()),
            Err(SamlError::Expired)
        ));
        assert!(matches!(
            parse_logout_request(&xml(IDP, SLO, NOW + 5 * 60_000), &exp()),
            Err(SamlError::NotYetValid)
        ));
    }

    #[test]
    fn a_logout_response_must_answer_our_request() {
        let xml = logout_response_xml(&LogoutResponse {
            id: "_resp",
            in_response_to: "_ours",
            issuer: IDP,
            destination: SLO,
            now: NOW,
            status: STATUS_SUCCESS,
        })
        .unwrap();
        let ok = parse_logout_response(&xml, &exp(), "_ours").unwrap();
        assert!(ok.success());
        assert!(matches!(
            parse_logout_response(&xml, &exp(), "_another"),
            Err(SamlError::InResponseTo(_))
        ));
    }

    #[test]
    fn a_deflate_bomb_stops_at_the_limit() {
        use std::io::Write;
        let mut d = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        d.write_all(&vec![b' '; 4 * 1024 * 1024]).unwrap();
        let b64 = STANDARD.encode(d.finish().unwrap());
        assert!(matches!(inflate(&b64), Err(SamlError::TooLarge(_))));
    }
}
