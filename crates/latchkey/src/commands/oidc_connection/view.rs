//! How a connection is shown: the JSON shape (`--json`) and the aligned summary built from it,
//! so both always say the same thing. Never the sealed secret or key.

use crate::context::Context;
use crate::output::{print_json, rfc3339};
use latchkey_core::{Discovered, OidcConnection, Tenant, UpstreamAuth, UpstreamKind};
use serde_json::{Value, json};

/// The key ids of a JWK Set as fetched.
fn key_ids(jwks: &str) -> Vec<String> {
    serde_json::from_str::<Value>(jwks)
        .ok()
        .and_then(|set| set.get("keys").and_then(Value::as_array).cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|k| k.get("kid").and_then(Value::as_str).map(str::to_owned))
        .collect()
}

fn discovered_json(d: &Discovered) -> Value {
    json!({
        "issuer": d.issuer,
        "authorization_endpoint": d.authorization_endpoint,
        "token_endpoint": d.token_endpoint,
        "userinfo_endpoint": d.userinfo_endpoint,
        "jwks_uri": d.jwks_uri,
        "key_ids": key_ids(&d.jwks),
        "signing_algs": d.signing_algs,
        "iss_parameter": d.iss_parameter,
        "refreshed_at": rfc3339(d.refreshed_at),
    })
}

/// What `show` prints: the settings, what the upstream's administrator registers (the
/// redirect URI; for `private_key_jwt` the public key, also at the JWKS URL) and discovery.
pub fn connection_json(ctx: &Context<'_>, tenant: &Tenant, c: &OidcConnection) -> Value {
    let base = format!("{}/federation/{}", ctx.issuer(&tenant.slug), c.name);
    let private_key_jwt = c.client_auth == UpstreamAuth::PrivateKeyJwt;
    let oidc = c.kind == UpstreamKind::Oidc;
    json!({
        "id": c.id,
        "tenant": tenant.slug,
        "name": c.name,
        "display_name": c.display_name,
        "kind": c.kind,
        "issuer": c.issuer,
        "discovery_url": oidc.then(|| c.discovery_location()),
        "allowed_tenant_ids": c.allowed_tenant_ids,
        "client_id": c.client_id,
        "client_auth": c.client_auth,
        "scopes": c.scopes,
        "endpoints": c.endpoints(),
        "options": c.options,
        "redirect_uri": format!("{base}/callback"),
        "jwks_url": private_key_jwt.then(|| format!("{base}/jwks")),
        "public_jwk": c.public_jwk.as_deref().and_then(|j| serde_json::from_str::<Value>(j).ok()),
        "discovery": {
            "found": c.discovered.as_ref().map(discovered_json),
            "error": c.discovery_error,
            "next_refresh_at": c.next_refresh_at.map(rfc3339),
        },
        "created_at": rfc3339(c.created_at),
        "updated_at": rfc3339(c.updated_at),
    })
}

/// JSON with `--json`; otherwise a readable summary of `connection_json`'s value.
pub fn show(json: bool, connection: &Value) {
    if json {
        print_json(connection);
        return;
    }
    let mut lines = settings_lines(connection);
    lines.extend(option_lines(&connection["options"]));
    lines.extend(upstream_lines(connection));
    if let Some(changed) = connection.get("changed") {
        lines.push(("changed", text(changed)));
    }
    let width = lines.iter().map(|(key, _)| key.len()).max().unwrap_or(0);
    for (key, shown) in lines {
        println!("{key:width$}  {shown}");
    }
}

type Lines = Vec<(&'static str, String)>;

/// A string as itself, null as `-`, a list joined with `, ` (`-` when empty), anything else as
/// JSON.
fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        Value::Array(items) if items.is_empty() => "-".into(),
        Value::Array(items) => items.iter().map(text).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

fn settings_lines(c: &Value) -> Lines {
    let e = &c["endpoints"];
    vec![
        ("name", text(&c["name"])),
        ("display_name", text(&c["display_name"])),
        ("id", text(&c["id"])),
        ("kind", text(&c["kind"])),
        ("issuer", text(&c["issuer"])),
        ("discovery_url", text(&c["discovery_url"])),
        ("allowed_tenant_ids", text(&c["allowed_tenant_ids"])),
        ("client_id", text(&c["client_id"])),
        ("client_auth", text(&c["client_auth"])),
        ("scopes", text(&c["scopes"])),
        ("authorization_endpoint", text(&e["authorization_endpoint"])),
        ("token_endpoint", text(&e["token_endpoint"])),
        ("userinfo_endpoint", text(&e["userinfo_endpoint"])),
    ]
}

fn option_lines(o: &Value) -> Lines {
    let flag = |key: &str| {
        if o[key].as_bool().unwrap_or(false) {
            "on"
        } else {
            "off"
        }
        .to_owned()
    };
    let map = |key: &str| {
        text(&Value::Array(
            o[key]
                .as_array()
                .into_iter()
                .flatten()
                .map(|pair| Value::String(format!("{}={}", text(&pair[0]), text(&pair[1]))))
                .collect(),
        ))
    };
    let m = &o["mapping"];
    vec![
        ("domains", text(&o["domains"])),
        ("jit", flag("jit")),
        ("link_existing", flag("link_existing")),
        ("trust_email_verified", flag("trust_email_verified")),
        ("trust_upstream_mfa", flag("trust_upstream_mfa")),
        ("userinfo", flag("userinfo")),
        (
            "mapping",
            format!(
                "subject={} email={} name={} groups={}",
                text(&m["subject"]),
                text(&m["email"]),
                text(&m["name"]),
                text(&m["groups"])
            ),
        ),
        ("role_map", map("role_map")),
        ("group_map", map("group_map")),
        ("attribute_map", map("attribute_map")),
    ]
}

fn upstream_lines(c: &Value) -> Lines {
    let d = &c["discovery"];
    let found = &d["found"];
    let mut lines = vec![("redirect_uri", text(&c["redirect_uri"]))];
    if !c["jwks_url"].is_null() {
        lines.push(("jwks_url", text(&c["jwks_url"])));
        lines.push(("public_jwk", c["public_jwk"].to_string()));
    }
    if !found.is_null() {
        lines.extend([
            ("discovered_issuer", text(&found["issuer"])),
            ("discovered_jwks_uri", text(&found["jwks_uri"])),
            ("key_ids", text(&found["key_ids"])),
            ("refreshed_at", text(&found["refreshed_at"])),
        ]);
    }
    lines.push(("discovery_error", text(&d["error"])));
    lines.push(("next_refresh_at", text(&d["next_refresh_at"])));
    lines
}
