//! Guarded XML parsing: one parser (roxmltree) for everything, so the element a signature covers
//! is the very element the bridge reads (no parser differential). DOCTYPE, DTDs and entities
//! are refused before parsing, XInclude and processing instructions after; size, node count
//! and depth are capped (S6).

use crate::{Result, SamlError};
use roxmltree::{Document, Node, ParsingOptions};

pub const NS_PROTOCOL: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
pub const NS_ASSERTION: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
pub const NS_METADATA: &str = "urn:oasis:names:tc:SAML:2.0:metadata";
pub const NS_DSIG: &str = "http://www.w3.org/2000/09/xmldsig#";
pub const NS_XENC: &str = "http://www.w3.org/2001/04/xmlenc#";
const NS_XINCLUDE: &str = "http://www.w3.org/2001/XInclude";

/// Caps for one document.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_bytes: usize,
    pub max_nodes: u32,
    pub max_depth: usize,
    /// Attributes on one element, namespace declarations included (counted before parsing).
    pub max_attributes_per_element: usize,
    /// Attributes in the whole document, namespace declarations included.
    pub max_attributes: usize,
}

/// A SAML response: Entra ID answers with a few hundred groups stay well below this. The
/// busiest real element (a `Response` or an `AttributeValue` re-declaring `xs`/`xsi` with an
/// `xsi:type`) has under 10 attributes; 4,096 in all is some 1,300 Okta-style group values,
/// beyond Entra's 150-group and Google's 75-group limits.
pub const RESPONSE: Limits = Limits {
    max_bytes: 256 * 1024,
    max_nodes: 20_000,
    max_depth: 32,
    max_attributes_per_element: 64,
    max_attributes: 4_096,
};

/// IdP metadata of one entity (several certificates, bindings and contacts). Entra ID's and
/// ADFS's federation metadata (WS-Federation role descriptors, some 30 claim types each) have
/// a few hundred attributes.
pub const METADATA: Limits = Limits {
    max_bytes: 1024 * 1024,
    max_nodes: 100_000,
    max_depth: 32,
    max_attributes_per_element: 64,
    max_attributes: 16_384,
};

/// Parses `text` under `limits`, after `screen`.
pub fn parse(text: &str, limits: Limits) -> Result<Document<'_>> {
    screen(text, limits)?;
    let options = ParsingOptions {
        allow_dtd: false,
        nodes_limit: limits.max_nodes,
        ..ParsingOptions::default()
    };
    let doc = Document::parse_with_options(text, options).map_err(|e| match e {
        roxmltree::Error::DtdDetected => SamlError::ForbiddenXml("DOCTYPE"),
        roxmltree::Error::NodesLimitReached => SamlError::TooLarge("too many nodes".into()),
        other => SamlError::Malformed(other.to_string()),
    })?;
    check_tree(doc.root(), limits.max_depth)?;
    Ok(doc)
}

/// What is refused before the parser runs, in one linear pass over the text: the size, a
/// DOCTYPE or entity, and the attribute and namespace counts whose cost grows with their
/// square inside the parser. Cheap enough to run on the raw POST before anything else.
pub fn screen(text: &str, limits: Limits) -> Result<()> {
    if text.len() > limits.max_bytes {
        return Err(SamlError::TooLarge(format!(
            "{} bytes, at most {}",
            text.len(),
            limits.max_bytes
        )));
    }
    // Refused before the parser sees them: no DTD means no entity expansion (billion laughs)
    // and no external entities (XXE).
    if text.contains("<!DOCTYPE") || text.contains("<!ENTITY") {
        return Err(SamlError::ForbiddenXml("DOCTYPE"));
    }
    check_tags(text, limits)
}

/// Namespace declarations in scope at any element. roxmltree copies the inherited
/// declarations into every element that declares one and compares them pairwise, so a
/// document with many declarations on an ancestor and many declaring descendants costs
/// minutes of CPU before any signature is looked at. Real IdPs stay far below this (Okta and
/// ADFS re-declare `xs`/`xsi` on each value: two more on a leaf).
const MAX_NAMESPACES_IN_SCOPE: usize = 64;

/// What a start tag holds, as far as the caps go.
struct StartTag {
    /// Bytes up to its closing `>` (exclusive).
    len: usize,
    namespaces: usize,
    attributes: usize,
    self_closing: bool,
}

/// Reads the start tag at the beginning of `rest` (which starts with `<`), skipping quoted
/// values. Every attribute has one `=` outside quotes; `xmlns` and `xmlns:p` are declarations.
fn start_tag(rest: &str) -> StartTag {
    let tag = rest.as_bytes();
    let (mut j, mut quote) = (1, None);
    let (mut namespaces, mut attributes) = (0, 0);
    while j < tag.len() {
        let b = tag[j];
        match quote {
            Some(q) if b == q => quote = None,
            None if b == b'"' || b == b'\'' => quote = Some(b),
            None if b == b'>' => break,
            None if b == b'=' => attributes += 1,
            None if b.is_ascii_whitespace() && rest[j + 1..].starts_with("xmlns") => {
                let after = rest[j + 6..].trim_start();
                if after.starts_with('=') || rest[j + 6..].starts_with(':') {
                    namespaces += 1;
                }
            }
            // Inside a quoted value, or any other byte of the tag.
            _ => {}
        }
        j += 1;
    }
    StartTag {
        len: j,
        namespaces,
        attributes,
        self_closing: j > 0 && tag.get(j - 1) == Some(&b'/'),
    }
}

/// A linear pass over the raw text (outside quoted values, comments and CDATA) counting
/// attributes per element and in all, and `xmlns` declarations per open element; refuses a
/// document over `limits` or with more than `MAX_NAMESPACES_IN_SCOPE` declarations in scope.
/// roxmltree checks each attribute against the element's earlier ones, so 37,000 attributes on
/// one element cost seconds.
fn check_tags(text: &str, limits: Limits) -> Result<()> {
    let bytes = text.as_bytes();
    let mut open: Vec<usize> = Vec::new();
    let (mut in_scope, mut attributes) = (0usize, 0usize);
    let mut i = 0;
    while let Some(off) = bytes[i..].iter().position(|b| *b == b'<') {
        i += off;
        let rest = &text[i..];
        let skip_to = |end: &str, extra: usize| rest.find(end).map_or(rest.len(), |e| e + extra);
        if rest.starts_with("<!--") {
            i += skip_to("-->", 3);
            continue;
        }
        if rest.starts_with("<![CDATA[") {
            i += skip_to("]]>", 3);
            continue;
        }
        if rest.starts_with("<?") || rest.starts_with("<!") {
            i += skip_to(">", 1);
            continue;
        }
        if rest.starts_with("</") {
            in_scope -= open.pop().unwrap_or(0);
            i += skip_to(">", 1);
            continue;
        }
        let tag = start_tag(rest);
        if tag.attributes > limits.max_attributes_per_element {
            return Err(SamlError::TooLarge(format!(
                "more than {} attributes on one element",
                limits.max_attributes_per_element
            )));
        }
        attributes += tag.attributes;
        if attributes > limits.max_attributes {
            return Err(SamlError::TooLarge(format!(
                "more than {} attributes",
                limits.max_attributes
            )));
        }
        if in_scope + tag.namespaces > MAX_NAMESPACES_IN_SCOPE {
            return Err(SamlError::TooLarge(format!(
                "more than {MAX_NAMESPACES_IN_SCOPE} namespace declarations in scope"
            )));
        }
        if !tag.self_closing {
            open.push(tag.namespaces);
            in_scope += tag.namespaces;
        }
        i += tag.len.max(1);
    }
    Ok(())
}

/// Depth, XInclude and processing instructions, without recursion.
fn check_tree(root: Node<'_, '_>, max_depth: usize) -> Result<()> {
    let mut stack = vec![(root, 0usize)];
    while let Some((n, depth)) = stack.pop() {
        if depth > max_depth {
            return Err(SamlError::TooLarge(format!("nested deeper than {max_depth}")));
        }
        if n.is_pi() {
            return Err(SamlError::ForbiddenXml("processing instruction"));
        }
        if n.is_element() && n.tag_name().namespace() == Some(NS_XINCLUDE) {
            return Err(SamlError::ForbiddenXml("XInclude"));
        }
        stack.extend(n.children().map(|c| (c, depth + 1)));
    }
    Ok(())
}

/// Whether `n` is the element `{ns}name`.
pub fn is(n: Node<'_, '_>, ns: &str, name: &str) -> bool {
    n.is_element() && n.tag_name().name() == name && n.tag_name().namespace() == Some(ns)
}

/// The element children of `n` named `{ns}name`.
pub fn children<'a, 'i>(n: Node<'a, 'i>, ns: &'a str, name: &'a str) -> impl Iterator<Item = Node<'a, 'i>> {
    n.children().filter(move |c| is(*c, ns, name))
}

/// The only child `{ns}name` of `n`: `None` when absent, an error when repeated.
pub fn only_child<'a, 'i>(n: Node<'a, 'i>, ns: &'a str, name: &'a str) -> Result<Option<Node<'a, 'i>>> {
    let mut it = children(n, ns, name);
    let first = it.next();
    if it.next().is_some() {
        return Err(SamlError::Structure(format!(
            "more than one {name} in {}",
            n.tag_name().name()
        )));
    }
    Ok(first)
}

/// The element's whole text: every text node below it joined, so a comment or CDATA split
/// can't cut the value short (S3). Element children are refused: values are plain text.
pub fn text(n: Node<'_, '_>) -> Result<String> {
    let mut out = String::new();
    for d in n.descendants().skip(1) {
        if d.is_element() {
            return Err(SamlError::Structure(format!(
                "{} holds an element, text was expected",
                n.tag_name().name()
            )));
        }
        if d.is_text() {
            out.push_str(d.text().unwrap_or_default());
        }
    }
    Ok(out.trim().to_owned())
}

/// The qualified name (with its prefix, as written) of the element or attribute starting at
/// `start` in the source text.
pub(crate) fn qname_at(src: &str, start: usize) -> &str {
    let rest = src.get(start..).unwrap_or_default();
    let rest = rest.strip_prefix('<').unwrap_or(rest);
    let end = rest
        .find(|c: char| c.is_whitespace() || c == '/' || c == '>' || c == '=')
        .unwrap_or(rest.len());
    &rest[..end]
}

/// The prefix an element was written with (`None` for the default namespace).
pub(crate) fn element_prefix<'i>(n: Node<'_, 'i>, src: &'i str) -> Option<&'i str> {
    qname_at(src, n.range().start).split_once(':').map(|(p, _)| p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt::Write as _;

    #[test]
    fn doctype_entities_and_xinclude_are_refused() {
        let bomb = r#"<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;">]><r>&b;</r>"#;
        assert_eq!(
            parse(bomb, RESPONSE).unwrap_err(),
            SamlError::ForbiddenXml("DOCTYPE")
        );
        let xxe = r#"<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>"#;
        assert_eq!(
            parse(xxe, RESPONSE).unwrap_err(),
            SamlError::ForbiddenXml("DOCTYPE")
        );
        let xi =
            r#"<r xmlns:xi="http://www.w3.org/2001/XInclude"><xi:include href="file:///etc/passwd"/></r>"#;
        assert_eq!(
            parse(xi, RESPONSE).unwrap_err(),
            SamlError::ForbiddenXml("XInclude")
        );
        let pi = "<r><?evil x?></r>";
        assert_eq!(
            parse(pi, RESPONSE).unwrap_err(),
            SamlError::ForbiddenXml("processing instruction")
        );
    }

    #[test]
    fn size_and_depth_are_capped() {
        let deep = format!("{}{}", "<a>".repeat(40), "</a>".repeat(40));
        assert!(matches!(parse(&deep, RESPONSE), Err(SamlError::TooLarge(_))));
        let ok = format!("{}{}", "<a>".repeat(20), "</a>".repeat(20));
        assert!(parse(&ok, RESPONSE).is_ok());
        let big = format!("<a>{}</a>", "x".repeat(RESPONSE.max_bytes));
        assert!(matches!(parse(&big, RESPONSE), Err(SamlError::TooLarge(_))));
    }

    #[test]
    fn namespace_floods_are_refused_before_parsing() {
        let decls: String = (0..70)
            .map(|i| format!(" xmlns:a{i}=\"u\""))
            .collect::<Vec<_>>()
            .concat();
        let flood = format!("<r{decls}><b xmlns:c=\"u\"/></r>");
        assert!(matches!(parse(&flood, RESPONSE), Err(SamlError::TooLarge(_))));
        // Declarations on siblings don't add up; quoted text and comments don't count.
        let leaves = format!(
            "<r xmlns:x=\"u\">{}<c a=\" xmlns:q='v'\"/><!-- xmlns:z=\"w\" --></r>",
            "<v xmlns:xs=\"a\" xmlns:xsi=\"b\">1</v>".repeat(300)
        );
        assert!(parse(&leaves, RESPONSE).is_ok());
        let nested = format!("{}{}", "<e xmlns:n=\"u\">".repeat(30), "</e>".repeat(30));
        assert!(parse(&nested, RESPONSE).is_ok());
    }

    /// ~37,000 distinct attributes on one element, then a tag the parser would call malformed:
    /// a `TooLarge` answer shows the screen refused it before roxmltree ran.
    #[test]
    fn attribute_floods_are_refused_before_parsing() {
        const A: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
        let names = (0..37_000).map(|i| {
            let n = [
                b' ',
                A[i % 52],
                A[i / 52 % 52],
                A[i / 2704 % 52],
                b'=',
                b'"',
                b'"',
            ];
            String::from_utf8_lossy(&n).into_owned()
        });
        let flood = format!("<r{}><unclosed", names.collect::<String>());
        assert!(flood.len() < RESPONSE.max_bytes);
        let err = parse(&flood, RESPONSE).unwrap_err();
        assert!(
            matches!(&err, SamlError::TooLarge(m) if m.contains("attributes on one element")),
            "{err}"
        );
        // Just under the per-element cap is fine; many such elements hit the total cap.
        let wide = |n: usize| {
            (0..n).fold(String::new(), |mut s, i| {
                let _ = write!(s, " a{i}='v'");
                s
            })
        };
        assert!(parse(&format!("<r{}/>", wide(64)), RESPONSE).is_ok());
        assert!(matches!(
            parse(&format!("<r{}/>", wide(65)), RESPONSE),
            Err(SamlError::TooLarge(_))
        ));
        let many = format!("<r>{}<unclosed", format!("<e{}/>", wide(60)).repeat(70));
        let err = parse(&many, RESPONSE).unwrap_err();
        assert!(
            matches!(&err, SamlError::TooLarge(m) if m.contains("more than 4096 attributes")),
            "{err}"
        );
        // `=` inside quoted values, comments and CDATA is not an attribute.
        let quoted = format!(
            "<r a='{}'><!--{}--><![CDATA[{}]]></r>",
            "=".repeat(500),
            " b=''".repeat(100),
            "=".repeat(500)
        );
        assert!(parse(&quoted, RESPONSE).is_ok());
    }

    /// Okta and ADFS re-declare `xs` and `xsi` and set `xsi:type` on every value: 1,000 group
    /// values (far past Entra's 150 and Google's 75) still pass.
    #[test]
    fn many_typed_attribute_values_pass() {
        let value = r#"<saml2:AttributeValue xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="xs:string">Latchkey-Group</saml2:AttributeValue>"#;
        let doc = format!(
            r#"<saml2p:Response xmlns:saml2p="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml2="urn:oasis:names:tc:SAML:2.0:assertion" Destination="https://sso.example/acs" ID="id1" InResponseTo="_r" IssueInstant="2030-01-01T00:00:00Z" Version="2.0"><saml2:Assertion ID="id2" IssueInstant="2030-01-01T00:00:00Z" Version="2.0"><saml2:AttributeStatement><saml2:Attribute Name="groups" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:unspecified">{}</saml2:Attribute></saml2:AttributeStatement></saml2:Assertion></saml2p:Response>"#,
            value.repeat(1_000)
        );
        assert!(doc.len() < RESPONSE.max_bytes);
        assert!(parse(&doc, RESPONSE).is_ok());
    }

    #[test]
    fn text_joins_around_comments_and_refuses_elements() {
        let doc = parse("<n>admin@corp.example<!---->.evil.test</n>", RESPONSE).unwrap();
        assert_eq!(text(doc.root_element()).unwrap(), "admin@corp.example.evil.test");
        let doc = parse("<n>a<b/>c</n>", RESPONSE).unwrap();
        assert!(text(doc.root_element()).is_err());
    }

    #[test]
    fn prefixes_are_read_as_written() {
        let src = r#"<p:a xmlns:p="urn:x" xmlns:q="urn:x"><q:b/><c xmlns="urn:y"/></p:a>"#;
        let doc = parse(src, RESPONSE).unwrap();
        let root = doc.root_element();
        assert_eq!(element_prefix(root, src), Some("p"));
        let kids: Vec<_> = root.children().filter(Node::is_element).collect();
        assert_eq!(element_prefix(kids[0], src), Some("q"));
        assert_eq!(element_prefix(kids[1], src), None);
    }
}
