//! `GET /admin/openapi.json`: the admin API described as OpenAPI 3.1, made from the route table
//! ([`super::routes::ROUTES`]) so it lists exactly the routes the server answers, each with the
//! permission it needs (`x-permission`), the RFC 9457 problem document of its errors, and the
//! JSON Schemas (2020-12, OpenAPI 3.1's dialect) of its query, request and response, derived by
//! `schemars` from the types the handler reads and writes.

use super::json_ok;
use super::routes::{Body, PREFIX, ROUTES, Route, SYSTEM_PREFIX, SYSTEM_ROUTES};
use crate::state::AppState;
use actix_web::{HttpResponse, web};
use schemars::SchemaGenerator;
use schemars::generate::SchemaSettings;
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

/// The two generators: a type is read with its defaults and aliases (`Deserialize`) and written
/// without its skipped members (`Serialize`), so requests and responses get a schema each.
struct Generators {
    read: SchemaGenerator,
    write: SchemaGenerator,
}

impl Generators {
    fn new() -> Self {
        let settings = SchemaSettings::draft2020_12().with(|s| {
            s.definitions_path = "/components/schemas".into();
            s.meta_schema = None;
        });
        Generators {
            read: settings.clone().for_deserialize().into_generator(),
            write: settings.for_serialize().into_generator(),
        }
    }
}

/// The content of a body: its JSON schema, for YAML too (the same document in another syntax),
/// and other media types (CSV, JSON lines) as text.
fn content(body: &Body, json_media: &[&str], g: &mut SchemaGenerator) -> Value {
    let schema = (body.schema)(g).to_value();
    let mut content = Map::new();
    for m in json_media {
        content.insert((*m).into(), json!({"schema": schema}));
    }
    for m in body.also {
        let s = if m.ends_with("yaml") {
            schema.clone()
        } else {
            json!({"type": "string"})
        };
        content.insert((*m).into(), json!({"schema": s}));
    }
    Value::Object(content)
}

/// The query parameters: the members of the route's query type.
fn query_parameters(r: &Route, g: &mut SchemaGenerator) -> Vec<Value> {
    let Some(q) = r.query else { return Vec::new() };
    let q = q(g).to_value();
    let required = |k: &str| q["required"].as_array().is_some_and(|a| a.iter().any(|x| x == k));
    q["properties"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, schema)| {
            let schema = without_null(schema);
            let mut p = json!({"name": name, "in": "query", "required": required(name), "schema": schema});
            if let Some(d) = schema.get("description") {
                p["description"] = d.clone();
            }
            p
        })
        .collect()
}

/// A parameter's schema without the `null` of its `Option`: a query string has no null, only
/// a parameter left out.
fn without_null(schema: &Value) -> Value {
    if let Some(Value::Array(any)) = schema.get("anyOf")
        && let [one] = any
            .iter()
            .filter(|x| x["type"] != "null")
            .collect::<Vec<_>>()
            .as_slice()
    {
        return (*one).clone();
    }
    let mut out = schema.clone();
    if let Some(Value::Array(types)) = schema.get("type")
        && let [one] = types
            .iter()
            .filter(|t| *t != "null")
            .collect::<Vec<_>>()
            .as_slice()
    {
        out["type"] = (*one).clone();
    }
    out
}

fn operation(r: &Route, g: &mut Generators, scheme: &str) -> Value {
    let mut parameters = query_parameters(r, &mut g.read);
    let mut responses = Map::new();
    // A POST answers 201 when it made something (an Idempotency-Key replay answers the same).
    let oks: &[&str] = if r.method == "POST" {
        &["200", "201"]
    } else {
        &["200"]
    };
    let paged = parameters.iter().any(|p| p["name"] == "cursor");
    for ok in oks {
        let mut answer = json!({"description": "Success."});
        if let Some(body) = &r.response {
            answer["content"] = content(body, &["application/json"], &mut g.write);
        }
        if paged {
            answer["headers"] = json!({"Link": {"description": "RFC 8288 `rel=\"next\"`: the next page, on a full page.",
                                                "schema": {"type": "string"}}});
        }
        responses.insert((*ok).into(), answer);
    }
    for (code, why) in ERRORS {
        responses.insert(
            (*code).into(),
            json!({"description": why, "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}),
        );
    }
    if r.method == "POST" && !r.path.contains('{') {
        parameters.push(json!({"name": "Idempotency-Key", "in": "header", "required": false,
                               "description": "A create retried with the same key answers its first answer and creates nothing; other POSTs ignore it.",
                               "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"}}));
    }
    if r.method == "PATCH" {
        // An `ETag` of ours, or `*`; anything else matches no version (412).
        parameters.push(json!({"name": "If-Match", "in": "header", "required": false,
                               "schema": {"type": "string", "pattern": "^(\\*|\"[0-9]+\")$"}}));
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
    if !parameters.is_empty() {
        op["parameters"] = Value::Array(parameters);
    }
    if let Some(body) = &r.request {
        let media: &[&str] = if r.method == "PATCH" {
            &["application/merge-patch+json", "application/json"]
        } else {
            &["application/json"]
        };
        op["requestBody"] = json!({"required": body.required, "content": content(body, media, &mut g.read)});
    }
    op
}

/// Replaces every `$ref` to a renamed schema.
fn rename_refs(v: &mut Value, renamed: &Map<String, Value>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get_mut("$ref")
                && let Some(Value::String(to)) = r
                    .strip_prefix("#/components/schemas/")
                    .and_then(|n| renamed.get(n))
            {
                *r = format!("#/components/schemas/{to}");
            }
            m.values_mut().for_each(|x| rename_refs(x, renamed));
        }
        Value::Array(a) => a.iter_mut().for_each(|x| rename_refs(x, renamed)),
        _ => {}
    }
}

/// The schemas of both generators in one `components.schemas`. A type whose request schema
/// differs from its response schema (defaults, skipped members) has the request one as
/// `{Name}Input`; the references in requests (bodies, parameters) follow.
fn components(g: Generators, paths: &mut Map<String, Value>) -> Map<String, Value> {
    let (mut read, mut write) = (g.read, g.write);
    let mut schemas = write.take_definitions(true);
    let mut read = read.take_definitions(true);
    // Renamed too: a request schema that refers to a renamed one.
    let mut renamed = Map::new();
    loop {
        let differ = |(name, schema): &(&String, &Value)| {
            let mut mine = (*schema).clone();
            rename_refs(&mut mine, &renamed);
            !renamed.contains_key(*name) && schemas.get(*name).is_some_and(|s| *s != mine)
        };
        let more: Vec<String> = read.iter().filter(differ).map(|(n, _)| n.clone()).collect();
        if more.is_empty() {
            break;
        }
        for name in more {
            renamed.insert(name.clone(), Value::String(format!("{name}Input")));
        }
    }
    for item in paths.values_mut().filter_map(Value::as_object_mut) {
        for op in item.values_mut() {
            for part in ["parameters", "requestBody"] {
                if let Some(x) = op.get_mut(part) {
                    rename_refs(x, &renamed);
                }
            }
        }
    }
    for (name, mut schema) in std::mem::take(&mut read) {
        rename_refs(&mut schema, &renamed);
        // Not renamed: the same as the response schema of that name, if there is one.
        let name = renamed
            .get(&name)
            .and_then(Value::as_str)
            .map_or(name, str::to_owned);
        schemas.entry(name).or_insert(schema);
    }
    schemas.insert(
        "Problem".into(),
        json!({
            "type": "object",
            "description": "RFC 9457 problem details (with the OAuth-style `error` too).",
            "required": ["type", "title", "status"],
            "properties": {
                "type": {"type": "string"}, "title": {"type": "string"},
                "status": {"type": "integer"}, "detail": {"type": "string"},
                "error": {"type": "string"}, "error_description": {"type": "string"},
            },
        }),
    );
    schemas
}

/// The OpenAPI 3.1 document of the admin API.
pub fn document(server: &str) -> Value {
    let mut g = Generators::new();
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
            item[r.method.to_ascii_lowercase()] = operation(r, &mut g, scheme);
        }
    }
    let schemas = components(g, &mut paths);
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
            "schemas": schemas,
        },
    })
}

/// `GET /admin/openapi.json` (public: it describes routes, not data).
pub(crate) async fn serve(state: web::Data<AppState>) -> HttpResponse {
    json_ok(&document(&state.config.public_url))
}
