//! Differential test of exclusive c14n: every XML document of the fuzz corpora
//! (`fuzz/corpus/saml_*`), the signed fixtures and the corner cases below is canonicalized by
//! Latchkey and by libxml2 (through lxml, the Python binding `scripts/install-deps.sh --test`
//! installs; libxml2's c14n is the one xmlsec1 signs and verifies with), and the bytes must be
//! equal. Documents both refuse are skipped; documents only Latchkey's guarded parse refuses
//! (DOCTYPE, processing instructions, caps) are counted, not compared.
//!
//! `#default` in a PrefixList is left out here: lxml drops a prefix its document never uses
//! before it calls libxml2, so it can't be asked. `review.rs` covers it with a document xmlsec1
//! signed with `PrefixList="xs #default notinscope"`.

#![allow(clippy::unwrap_used)]

use latchkey_saml::fuzzing::canonicalize_document;
use latchkey_saml::xml::RESPONSE;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Reads `[[document, [prefix, …]], …]` as JSON on stdin; writes, for each, the base64 of its
/// exclusive c14n (without comments) or null when libxml2 refuses the document.
const LXML: &str = r#"
import base64, json, sys
from lxml import etree
parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
out = []
for doc, prefixes in json.load(sys.stdin):
    try:
        root = etree.fromstring(doc.encode("utf-8"), parser)
        c = etree.tostring(root, method="c14n", exclusive=True, with_comments=False,
                           inclusive_ns_prefixes=prefixes or None)
        out.append(base64.b64encode(c).decode())
    except Exception:
        out.append(None)
json.dump(out, sys.stdout)
"#;

/// The corners of the spec that SAML signatures meet (see also `review.rs`).
const CORNERS: &[(&str, &[&str])] = &[
    (r#"<a xmlns="urn:d"><b><c xmlns=""/></b></a>"#, &[]),
    (r#"<a xmlns="urn:d"><b xmlns=""><c xmlns="urn:d"/></b></a>"#, &[]),
    (
        r#"<p:a xmlns:p="urn:p" xmlns:q="urn:q"><q:b/><p:c xmlns:p="urn:other"/></p:a>"#,
        &[],
    ),
    (
        r#"<r xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:x="urn:x"><x:v>1</x:v></r>"#,
        &["xs"],
    ),
    (r#"<r xmlns="urn:d" xmlns:x="urn:x"><x:v/></r>"#, &["x"]),
    (r#"<r xmlns:x="urn:x"><v/></r>"#, &["x", "nope"]),
    (
        "<e xmlns:b=\"urn:b\" xmlns:a=\"urn:a\" z=\"1\" b:y=\"2\" a:x=\"3\" q=\"&lt;&amp;&quot;&#9;&#10;\">t&gt;&amp;<![CDATA[<c>]]]]></e>",
        &[],
    ),
    (
        "<e a=\"x\ty\nz\r\n\" b=\"&#13;&#x9;\">line\r\nnext\rlast&#13;</e>",
        &[],
    ),
    ("<a><!-- x --><b/>x<!---->y</a>", &[]),
    (
        r#"<a xml:lang="en" xml:space="preserve"><b xml:lang="de"/></a>"#,
        &[],
    ),
    (r#"<a xmlns:z="urn:a" xmlns:a="urn:z" a:k="1" z:k="2"/>"#, &[]),
    ("<a>\u{e9}\u{1F600}&#x10FFFF;&gt;]]&gt;</a>", &[]),
    (
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- before -->\n<a>t</a>\n<!-- after -->\n",
        &[],
    ),
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn corpus() -> Vec<(String, String)> {
    let mut docs = Vec::new();
    let dirs = [
        "fuzz/corpus/saml_c14n",
        "fuzz/corpus/saml_response",
        "fuzz/corpus/saml_metadata",
    ]
    .map(|d| repo().join(d))
    .into_iter()
    .chain([
        repo().join("crates/latchkey-saml/tests/fixtures"),
        repo().join("crates/latchkey-saml/tests/fixtures/review"),
    ]);
    for dir in dirs {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        for f in files {
            let Ok(text) = std::fs::read_to_string(&f) else {
                continue; // not UTF-8: neither side is asked
            };
            if text.trim_start().starts_with('<') {
                docs.push((f.display().to_string(), text));
            }
        }
    }
    assert!(
        docs.len() >= 10,
        "the corpus is missing: {} documents",
        docs.len()
    );
    docs
}

fn lxml(cases: &[(String, Vec<String>)]) -> Option<Vec<Option<Vec<u8>>>> {
    let mut child = Command::new("python3")
        .args(["-c", LXML])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .ok()?;
    let input = serde_json::to_vec(cases).unwrap();
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let out = child.wait_with_output().unwrap();
    if !out.status.success() {
        return None;
    }
    let list: Vec<Option<String>> = serde_json::from_slice(&out.stdout).unwrap();
    use base64::Engine as _;
    let engine = base64::engine::general_purpose::STANDARD;
    Some(
        list.into_iter()
            .map(|b| b.map(|b| engine.decode(b).unwrap()))
            .collect(),
    )
}

#[test]
fn exclusive_c14n_matches_libxml2_on_the_corpus_and_corner_cases() {
    let mut named: Vec<(String, String, Vec<String>)> = corpus()
        .into_iter()
        .flat_map(|(name, doc)| {
            [
                (name.clone(), doc.clone(), vec![]),
                (format!("{name} [xs saml]"), doc, vec!["xs".into(), "saml".into()]),
            ]
        })
        .collect();
    for (i, (doc, prefixes)) in CORNERS.iter().enumerate() {
        let prefixes = prefixes.iter().map(|p| (*p).to_owned()).collect();
        named.push((format!("corner {i}"), (*doc).to_owned(), prefixes));
    }
    let cases: Vec<(String, Vec<String>)> = named.iter().map(|(_, d, p)| (d.clone(), p.clone())).collect();
    let Some(theirs) = lxml(&cases) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "python3 with lxml is needed (bash scripts/install-deps.sh --test)"
        );
        eprintln!("skipped: python3 with lxml is not installed");
        return;
    };
    let (mut compared, mut guarded, mut both_refuse) = (0, 0, 0);
    let mut differences = Vec::new();
    for ((name, doc, prefixes), theirs) in named.iter().zip(theirs) {
        let prefixes: Vec<&str> = prefixes.iter().map(String::as_str).collect();
        match (canonicalize_document(doc, RESPONSE, &prefixes), theirs) {
            (Ok(ours), Some(theirs)) => {
                compared += 1;
                if ours != theirs {
                    differences.push(format!(
                        "{name}:\n  latchkey: {}\n  libxml2:  {}",
                        String::from_utf8_lossy(&ours),
                        String::from_utf8_lossy(&theirs)
                    ));
                }
            }
            (Err(_), Some(_)) => guarded += 1,
            (Err(_), None) => both_refuse += 1,
            (Ok(_), None) => differences.push(format!("{name}: libxml2 refuses what Latchkey canonicalizes")),
        }
    }
    eprintln!(
        "{compared} compared, {guarded} refused by the guarded parse only, {both_refuse} refused by both"
    );
    assert!(compared >= 20, "too few documents compared: {compared}");
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}
