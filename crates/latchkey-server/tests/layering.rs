//! Architecture Invariant check: the server's modules import only downward, and the features
//! never import each other. Reads every source file under `src/` and fails on an import that
//! crosses or climbs the table in `LAYERS` (docs/architecture.md explains the layers).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Top-level modules by layer, highest first. A module may use modules of lower layers only;
/// modules sharing a layer (the features) may not use each other.
const LAYERS: &[&[&str]] = &[
    &["app"],
    &["jobs"],
    &["admin_api", "federation", "login", "oidc", "saml"],
    &["flow"],
    &["web"],
    &["state"],
    &["logging", "tls"],
    &["config"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

/// One import that breaks the rules: (file, importing module, imported module).
type Violation = (String, String, String);

/// The top-level modules a source text refers to through `crate::…` paths (including
/// `use crate::{a, b::c}` groups) and `super::…` chains that climb out of `module`.
fn referenced(text: &str, depth_below_top: usize) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or_default();
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let after = &rest[at + "crate::".len()..];
            if let Some(group) = after.strip_prefix('{') {
                let inner = group.split('}').next().unwrap_or_default();
                for part in inner.split(',') {
                    out.insert(first_ident(part.trim()));
                }
            } else {
                out.insert(first_ident(after));
            }
            rest = after;
        }
        // `super::super::x` from a file `depth_below_top` levels under its top module.
        let mut rest = code;
        while let Some(at) = rest.find("super::") {
            let mut after = &rest[at..];
            let mut climbs = 0;
            while let Some(next) = after.strip_prefix("super::") {
                climbs += 1;
                after = next;
            }
            if climbs > depth_below_top {
                out.insert(first_ident(after));
            }
            rest = after;
        }
    }
    out.retain(|m| !m.is_empty());
    out
}

fn first_ident(s: &str) -> String {
    s.chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

/// Checks one file of top-level module `module` (`depth`: directories below the module root).
fn check_file(file: &str, module: &str, depth: usize, text: &str, violations: &mut Vec<Violation>) {
    let Some(own) = layer_of(module) else {
        violations.push((file.into(), module.into(), "<not in LAYERS>".into()));
        return;
    };
    for target in referenced(text, depth) {
        if target == module || target == "self" {
            continue;
        }
        // Crate-root items (`crate::Config`, `crate::ServerError`) are the foundations' re-exports.
        let Some(theirs) = layer_of(&target) else {
            if target.chars().next().is_some_and(char::is_uppercase) {
                continue;
            }
            violations.push((file.into(), module.into(), target));
            continue;
        };
        if theirs <= own {
            violations.push((file.into(), module.into(), target));
        }
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src is readable") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to and how deep below that module's root it sits.
fn module_of(src: &Path, file: &Path) -> Option<(String, usize)> {
    let rel = file.strip_prefix(src).ok()?;
    let parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    match parts.as_slice() {
        [only] if only == "lib.rs" => None,
        [only] => Some((only.trim_end_matches(".rs").to_owned(), 0)),
        [dir, rest @ ..] => {
            let is_mod = rest.last().is_some_and(|f| f == "mod.rs");
            Some((dir.clone(), rest.len() - usize::from(is_mod)))
        }
        [] => None,
    }
}

#[test]
fn server_modules_import_only_downward() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut violations = Vec::new();
    for file in &files {
        let Some((module, depth)) = module_of(&src, file) else {
            continue;
        };
        let text = std::fs::read_to_string(file).expect("source is readable");
        let name = file.strip_prefix(&src).unwrap_or(file).display().to_string();
        check_file(&name, &module, depth, &text, &mut violations);
    }
    assert!(files.len() > 20, "read only {} files", files.len());
    assert!(
        violations.is_empty(),
        "imports against the layering (file, module, imports):\n{}",
        violations
            .iter()
            .map(|(f, m, t)| format!("  {f}: {m} -> {t}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn a_feature_importing_another_feature_is_refused() {
    let mut violations = Vec::new();
    check_file(
        "login/signin.rs",
        "login",
        1,
        "use crate::saml::start_url;\nuse crate::flow::session;",
        &mut violations,
    );
    assert_eq!(
        violations,
        vec![("login/signin.rs".into(), "login".into(), "saml".into())]
    );
}

#[test]
fn grouped_and_climbing_imports_are_seen() {
    let mut violations = Vec::new();
    check_file(
        "web/respond.rs",
        "web",
        1,
        "use crate::{state::AppState, flow::session};\nfn f() { super::super::oidc::x(); }",
        &mut violations,
    );
    let targets: Vec<&str> = violations.iter().map(|(_, _, t)| t.as_str()).collect();
    assert_eq!(targets, vec!["flow", "oidc"]);
}

#[test]
fn an_upward_import_from_the_bottom_is_refused() {
    let mut violations = Vec::new();
    check_file(
        "state.rs",
        "state",
        0,
        "use crate::web::errors::AppError;",
        &mut violations,
    );
    assert_eq!(violations.len(), 1);
}
