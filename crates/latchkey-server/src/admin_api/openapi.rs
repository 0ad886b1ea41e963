//! `GET /admin/openapi.json`: the admin API described as OpenAPI 3.1, made from the route table
//! ([`super::routes::ROUTES`]) so it lists exactly the routes the server answers, each with the
//! permission it needs (`x-permission`) and the RFC 9457 problem document of its errors.

use super::json_ok;
use super::routes::{PREFIX, ROUTES, Route, SYSTEM_PREFIX, SYSTEM_ROUTES};
use crate::state::AppState;
use actix_web::{HttpResponse, web};
use serde_json::{Map, Value, json};

/// The errors every route may answer, as problem documents.
const ERRORS: &[(&str, &str)] = &[
    ("400", "The request is malformed: a bad query, body or cursor."),
    ("401", "No valid admin credential of this tenant."),
    ("403", "The credential lacks the permission in `x-permission`."),
    ("404", "No such object in this tenant (or no such tenant)."),
    ("409", "The change conflicts with the current state."),
    ("412", "`If-Match` names a version that is no longer current."),
    ("413", "The request body is too large."),
    ("415", "The body is not of a media type this route takes."),
    ("422", "The request is well-formed but breaks a rule."),
    ("429", "Too many failed authentications from this address."),
    ("503", "A dependency is unavailable; retry later."),
];

fn parameters(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| {
            json!({"name": name, "in": "path", "required": true,
                   "schema": {"type": "string", "minLength": 1, "maxLength": 200}})
        })
        .collect()
}

/// `getUsersParam`-style ids; the system scope's start `getSystem…` (it has an `/audit` too).
fn operation_id(r: &Route, scheme: &str) -> String {
    let mut id = r.method.to_ascii_lowercase();
    if scheme == "system" {
        id.push_str("System");
    }
    for seg in r.path.split('/').filter(|s| !s.is_empty()) {
        let word = seg.trim_matches(|c| c == '{' || c == '}');
        let mut chars = word.chars().filter(char::is_ascii_alphanumeric);
        if let Some(first) = chars.next() {
            id.push(first.to_ascii_uppercase());
            id.extend(chars);
        }
        if seg.starts_with('{') {
            id.push_str("Param");
        }
    }
    id
}

/// The permissions a route needs, as the docs write them.
pub fn needs(r: &Route) -> String {
    std::iter::once(r.permission)
        .chain(r.also.iter().copied())
        .map(latchkey_core::Permission::as_str)
        .collect::<Vec<_>>()
        .join(" + ")
}

fn operation(r: &Route, scheme: &str) -> Value {
    let mut responses = Map::new();
    // A POST answers 201 when it made something (an Idempotency-Key replay answers the same).
    let oks: &[&str] = if r.method == "POST" {
        &["200", "201"]
    } else {
        &["200"]
    };
    for ok in oks {
        responses.insert(
            (*ok).into(),
            json!({"description": "Success.", "content": {"application/json": {"schema": {}}}}),
        );
    }
    for (code, why) in ERRORS {
        responses.insert(
            (*code).into(),
            json!({"description": why, "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}),
        );
    }
    let mut op = json!({
        "operationId": operation_id(r, scheme),
        "summary": format!("{} {} (needs {})", r.method, r.path, needs(r)),
        "x-permission": r.permission,
        "x-permissions-also": r.also,
        "tags": [r.path.trim_start_matches('/').split('/').next().unwrap_or_default()],
        "security": [{scheme: []}],
        "responses": responses,
    });
    let media = match r.method {
        "PATCH" => Some("application/merge-patch+json"),
        "POST" | "PUT" => Some("application/json"),
        _ => None,
    };
    if let Some(m) = media {
        let mut content = json!({m: {"schema": {}}});
        if r.path == "/apply" {
            content["application/yaml"] = json!({"schema": {"type": "string"}});
        }
        op["requestBody"] = json!({"required": false, "content": content});
    }
    if r.method == "POST" && !r.path.contains('{') {
        op["parameters"] = json!([{"name": "Idempotency-Key", "in": "header", "required": false,
                                   "schema": {"type": "string", "minLength": 1, "maxLength": 200}}]);
    }
    if r.method == "PATCH" {
        op["parameters"] = json!([{"name": "If-Match", "in": "header", "required": false,
                                   "schema": {"type": "string"}}]);
    }
    op
}

/// The OpenAPI 3.1 document of the admin API.
pub fn document(server: &str) -> Value {
    let mut paths = Map::new();
    let scopes = [
        (PREFIX, ROUTES, "bearer"),
        (SYSTEM_PREFIX, SYSTEM_ROUTES, "system"),
    ];
    for (prefix, routes, scheme) in scopes {
        for r in routes {
            let key = format!("{prefix}{}", r.path);
            let item = paths
                .entry(key.clone())
                .or_insert_with(|| json!({"parameters": parameters(&key)}));
            item[r.method.to_ascii_lowercase()] = operation(r, scheme);
        }
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Latchkey admin API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Manage a tenant (`/admin/t/{tenant}`: users, groups, roles, clients, \
                            credentials, audit) and the installation (`/admin/system`: tenants, data keys, \
                            the system audit chain). See docs/admin-api.md.",
        },
        "servers": [{"url": server}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                "description": "An `lka_` admin token, or an OAuth access token of an admin client for the audience {public_url}/admin/t/{tenant}."},
                "system": {"type": "http", "scheme": "bearer",
                "description": "An `lks_` system token (`latchkey system-token create`)."}},
            "schemas": {"Problem": {
                "type": "object",
                "description": "RFC 9457 problem details (with the OAuth-style `error` too).",
                "required": ["type", "title", "status"],
                "properties": {
                    "type": {"type": "string"}, "title": {"type": "string"},
                    "status": {"type": "integer"}, "detail": {"type": "string"},
                    "error": {"type": "string"}, "error_description": {"type": "string"},
                },
            }},
        },
    })
}

/// `GET /admin/openapi.json` (public: it describes routes, not data).
pub(crate) async fn serve(state: web::Data<AppState>) -> HttpResponse {
    json_ok(&document(&state.config.public_url))
}
