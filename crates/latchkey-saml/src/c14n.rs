//! Exclusive XML Canonicalization 1.0 without comments (W3C REC xml-exc-c14n-20020718), the
//! transform every SAML IdP signs with, over a subtree of a parsed document. Only what SAML
//! needs: an element's subtree, optionally minus one descendant (the enveloped signature), and
//! an `InclusiveNamespaces` prefix list.

use crate::xml::{element_prefix, qname_at};
use roxmltree::{Node, NodeId};

/// The canonical bytes of the subtree at `node`, leaving out the subtree `exclude`.
/// `inclusive` holds the PrefixList (`#default` for the default namespace).
pub fn canonicalize(src: &str, node: Node<'_, '_>, exclude: Option<NodeId>, inclusive: &[&str]) -> Vec<u8> {
    let mut out = String::with_capacity(node.range().len());
    element(src, node, exclude, inclusive, &[], &mut out);
    out.into_bytes()
}

/// An attribute as c14n sorts and renders it: (namespace uri, local name, qname, value).
type Attr<'a> = (&'a str, &'a str, &'a str, &'a str);

/// `rendered`: the namespace declarations in force in the output at this point, (prefix, uri),
/// "" for the default namespace.
fn element(
    src: &str,
    n: Node<'_, '_>,
    exclude: Option<NodeId>,
    inclusive: &[&str],
    rendered: &[(String, String)],
    out: &mut String,
) {
    let qname = qname_at(src, n.range().start);
    let (utilized, mut attrs) = utilized_prefixes(src, n, inclusive);
    let decls = namespace_decls(n, utilized, rendered);
    attrs.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    start_tag(qname, &decls, &attrs, out);

    let mut inner: Vec<(String, String)> = rendered.to_vec();
    inner.extend(decls);
    for c in n.children() {
        if Some(c.id()) == exclude {
            continue;
        }
        if c.is_element() {
            element(src, c, exclude, inclusive, &inner, out);
        } else if c.is_text() {
            escape_text(c.text().unwrap_or_default(), out);
        }
        // Comments are dropped (the without-comments variant); processing instructions were
        // refused when the document was parsed.
    }
    out.push_str("</");
    out.push_str(qname);
    out.push('>');
}

/// The prefixes visibly utilized at `n` (its own, those of its qualified attributes) plus the
/// inclusive ones, and its attributes in document order.
fn utilized_prefixes<'a>(
    src: &'a str,
    n: Node<'a, '_>,
    inclusive: &[&'a str],
) -> (Vec<&'a str>, Vec<Attr<'a>>) {
    let own_prefix = element_prefix(n, src).unwrap_or("");
    let mut utilized: Vec<&str> = vec![own_prefix];
    let mut attrs: Vec<Attr<'a>> = Vec::new();
    for a in n.attributes() {
        let aq = src.get(a.range_qname()).unwrap_or(a.name());
        let ns = a.namespace().unwrap_or("");
        if let Some((p, _)) = aq.split_once(':')
            && p != "xml"
            && !utilized.contains(&p)
        {
            utilized.push(p);
        }
        attrs.push((ns, a.name(), aq, a.value()));
    }
    for p in inclusive {
        let p = if *p == "#default" { "" } else { *p };
        if !utilized.contains(&p) {
            utilized.push(p);
        }
    }
    (utilized, attrs)
}

/// The namespace declarations `n` must render, sorted: each utilized prefix whose in-scope uri
/// differs from what the output already declares.
fn namespace_decls(
    n: Node<'_, '_>,
    utilized: Vec<&str>,
    rendered: &[(String, String)],
) -> Vec<(String, String)> {
    let mut decls: Vec<(String, String)> = Vec::new();
    for p in utilized {
        let uri = if p.is_empty() {
            n.lookup_namespace_uri(None).unwrap_or("")
        } else {
            match n.lookup_namespace_uri(Some(p)) {
                Some(u) => u,
                // An inclusive prefix not in scope here renders nothing.
                None => continue,
            }
        };
        let current = rendered
            .iter()
            .rev()
            .find(|(rp, _)| rp == p)
            .map(|(_, u)| u.as_str());
        let needed = if p.is_empty() && uri.is_empty() {
            // xmlns="" only undoes a default namespace the output declared above.
            current.is_some_and(|u| !u.is_empty())
        } else {
            current != Some(uri)
        };
        if needed {
            decls.push((p.to_owned(), uri.to_owned()));
        }
    }
    decls.sort();
    decls
}

/// The start tag: namespace declarations first, then the attributes, both already sorted.
fn start_tag(qname: &str, decls: &[(String, String)], attrs: &[Attr<'_>], out: &mut String) {
    out.push('<');
    out.push_str(qname);
    for (p, uri) in decls {
        if p.is_empty() {
            out.push_str(" xmlns=\"");
        } else {
            out.push_str(" xmlns:");
            out.push_str(p);
            out.push_str("=\"");
        }
        escape_attr(uri, out);
        out.push('"');
    }
    for (_, _, aq, value) in attrs {
        out.push(' ');
        out.push_str(aq);
        out.push_str("=\"");
        escape_attr(value, out);
        out.push('"');
    }
    out.push('>');
}

fn escape_text(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#xD;"),
            c => out.push(c),
        }
    }
}

fn escape_attr(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '"' => out.push_str("&quot;"),
            '\t' => out.push_str("&#x9;"),
            '\n' => out.push_str("&#xA;"),
            '\r' => out.push_str("&#xD;"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::{RESPONSE, parse};

    fn c14n(src: &str, inclusive: &[&str]) -> String {
        let doc = parse(src, RESPONSE).unwrap();
        String::from_utf8(canonicalize(src, doc.root_element(), None, inclusive)).unwrap()
    }

    fn c14n_child(src: &str) -> String {
        let doc = parse(src, RESPONSE).unwrap();
        let child = doc.root_element().first_element_child().unwrap();
        String::from_utf8(canonicalize(src, child, None, &[])).unwrap()
    }

    #[test]
    fn only_visibly_utilized_namespaces_are_rendered_where_first_used() {
        // The exc-c14n specification's own example (§2.2): the unused `b` declaration goes.
        let src = r#"<n0:local xmlns:n0="foo:bar" xmlns:n3="ftp://example.org"><n1:elem2 xmlns:n1="http://example.net" xml:lang="en"><n3:stuff xmlns:n3="ftp://example.org"/></n1:elem2></n0:local>"#;
        assert_eq!(
            c14n_child(src),
            r#"<n1:elem2 xmlns:n1="http://example.net" xml:lang="en"><n3:stuff xmlns:n3="ftp://example.org"></n3:stuff></n1:elem2>"#
        );
    }

    #[test]
    fn attributes_sort_by_namespace_then_name_and_values_are_escaped() {
        let src = "<e xmlns:b=\"urn:b\" xmlns:a=\"urn:a\" z=\"1\" b:y=\"2\" a:x=\"3\" q=\"&lt;&amp;&quot;&#9;&#10;\">t&gt;&amp;<![CDATA[<c>]]></e>";
        assert_eq!(
            c14n(src, &[]),
            "<e xmlns:a=\"urn:a\" xmlns:b=\"urn:b\" q=\"&lt;&amp;&quot;&#x9;&#xA;\" z=\"1\" a:x=\"3\" b:y=\"2\">t&gt;&amp;&lt;c&gt;</e>"
        );
    }

    #[test]
    fn comments_are_dropped_and_empty_elements_expand() {
        assert_eq!(c14n("<a><!-- x --><b/>x<!---->y</a>", &[]), "<a><b></b>xy</a>");
    }

    #[test]
    fn default_namespace_is_declared_once_and_undone_only_when_rendered() {
        let src = r#"<a xmlns="urn:d"><b><c xmlns=""/></b></a>"#;
        assert_eq!(c14n(src, &[]), r#"<a xmlns="urn:d"><b><c xmlns=""></c></b></a>"#);
        // A subtree whose default namespace comes from an ancestor declares it itself.
        let src = r#"<r xmlns="urn:d"><s><t/></s></r>"#;
        assert_eq!(c14n_child(src), r#"<s xmlns="urn:d"><t></t></s>"#);
    }

    #[test]
    fn inclusive_prefixes_are_rendered_when_in_scope() {
        let src = r#"<r xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:x="urn:x"><x:v>1</x:v></r>"#;
        assert_eq!(c14n_child(src), r#"<x:v xmlns:x="urn:x">1</x:v>"#);
        let doc = parse(src, RESPONSE).unwrap();
        let child = doc.root_element().first_element_child().unwrap();
        assert_eq!(
            String::from_utf8(canonicalize(src, child, None, &["xs"])).unwrap(),
            r#"<x:v xmlns:x="urn:x" xmlns:xs="http://www.w3.org/2001/XMLSchema">1</x:v>"#
        );
    }

    #[test]
    fn excluded_subtree_is_left_out() {
        let src = r#"<a ID="1"><s:Signature xmlns:s="urn:s"><s:v/></s:Signature><b/></a>"#;
        let doc = parse(src, RESPONSE).unwrap();
        let root = doc.root_element();
        let sig = root.first_element_child().unwrap();
        assert_eq!(
            String::from_utf8(canonicalize(src, root, Some(sig.id()), &[])).unwrap(),
            r#"<a ID="1"><b></b></a>"#
        );
    }
}
