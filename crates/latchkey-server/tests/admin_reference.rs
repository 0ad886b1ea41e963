//! The admin API's reference stays the route table's: `docs/admin-api.md` has a row for every
//! route with its permission and no row for a route that does not exist, and the OpenAPI
//! document lists exactly the routes the server registers.

use latchkey_server::{
    ADMIN_PREFIX, ADMIN_ROUTES, ADMIN_SYSTEM_PREFIX, ADMIN_SYSTEM_ROUTES, AdminRoute, admin_openapi,
};
use std::collections::BTreeSet;

/// Every route of both scopes with its full path.
fn all_routes() -> impl Iterator<Item = (String, &'static AdminRoute)> {
    let tenant = ADMIN_ROUTES
        .iter()
        .map(|r| (format!("{ADMIN_PREFIX}{}", r.path), r));
    let system = ADMIN_SYSTEM_ROUTES
        .iter()
        .map(|r| (format!("{ADMIN_SYSTEM_PREFIX}{}", r.path), r));
    tenant.chain(system)
}

fn expected_rows() -> BTreeSet<String> {
    all_routes()
        .map(|(path, r)| {
            let needs = latchkey_server::admin_openapi_needs(r).replace(" + ", "` + `");
            format!("| `{} {path}` | `{needs}` |", r.method)
        })
        .collect()
}

#[test]
fn the_reference_in_the_docs_lists_every_route_with_its_permission() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/admin-api.md"))
        .expect("docs/admin-api.md");
    let section = doc
        .split("\n## Route reference\n")
        .nth(1)
        .expect("docs/admin-api.md has a `## Route reference` section")
        .split("\n## ")
        .next()
        .unwrap_or_default();
    let documented: BTreeSet<String> = section
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| l.splitn(4, " | ").take(2).collect::<Vec<_>>().join(" | ") + " |")
        .collect();
    let expected = expected_rows();
    assert_eq!(
        documented,
        expected,
        "docs/admin-api.md's route reference differs from the route table; its rows should be:\n{}",
        expected.iter().cloned().collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn the_openapi_document_lists_exactly_the_routes() {
    let doc = admin_openapi("https://sso.example.com");
    assert_eq!(doc["openapi"], "3.1.0");
    let mut listed = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if method == "parameters" {
                continue;
            }
            listed.insert((
                method.to_ascii_uppercase(),
                path.clone(),
                op["x-permission"].as_str().unwrap().to_owned(),
            ));
        }
    }
    let routes: BTreeSet<_> = all_routes()
        .map(|(path, r)| (r.method.to_owned(), path, r.permission.to_string()))
        .collect();
    assert_eq!(listed, routes);
    let ids: BTreeSet<_> = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|i| {
            i.as_object()
                .unwrap()
                .values()
                .filter_map(|o| o.get("operationId").and_then(|v| v.as_str()).map(str::to_owned))
        })
        .collect();
    assert_eq!(ids.len(), all_routes().count(), "operation ids are unique");
}

/// Every `$ref` in `v`.
fn refs<'a>(v: &'a serde_json::Value, out: &mut Vec<&'a str>) {
    match v {
        serde_json::Value::Object(m) => {
            if let Some(r) = m.get("$ref").and_then(|r| r.as_str()) {
                out.push(r);
            }
            m.values().for_each(|x| refs(x, out));
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

#[test]
fn every_operation_has_real_schemas_and_every_reference_resolves() {
    let doc = admin_openapi("https://sso.example.com");
    let empty = serde_json::json!({});
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item
            .as_object()
            .unwrap()
            .iter()
            .filter(|(m, _)| *m != "parameters")
        {
            let at = format!("{method} {path}");
            let oks: Vec<_> = op["responses"]
                .as_object()
                .unwrap()
                .iter()
                .filter(|(code, _)| code.starts_with('2'))
                .collect();
            assert!(!oks.is_empty(), "{at}: no 2xx response");
            for (code, answer) in oks {
                let schema = &answer["content"]["application/json"]["schema"];
                assert!(
                    schema.is_object() && *schema != empty,
                    "{at} {code}: no response schema"
                );
            }
            if method == "patch" {
                assert!(
                    op.get("requestBody").is_some(),
                    "{at}: a PATCH without a request body"
                );
            }
            if let Some(body) = op.get("requestBody") {
                for (media, c) in body["content"].as_object().unwrap() {
                    assert!(
                        c["schema"].is_object() && c["schema"] != empty,
                        "{at} {media}: no request schema"
                    );
                }
            }
        }
    }
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(!all.is_empty());
    for r in all {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("{r}: not a component"));
        assert!(schemas.contains_key(name), "{r} does not resolve");
    }
}
