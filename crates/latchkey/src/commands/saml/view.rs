//! How a SAML connection is shown: the JSON shape (`--json`) and the aligned summary built from
//! it, so both always say the same thing.

use crate::context::Context;
use crate::output::{print_json, rfc3339};
use latchkey_core::{SamlConnection, Tenant};
use serde_json::{Value, json};

/// A stored certificate as the operator sees it (or why it can't be read).
fn cert_json(der_base64: &str, now: i64) -> Value {
    match latchkey_saml::certs::info(der_base64) {
        Ok(info) => json!({
            "subject": info.subject, "sha256": info.sha256,
            "not_before": rfc3339(info.not_before), "not_after": rfc3339(info.not_after),
            "valid_now": info.valid_at(now),
        }),
        Err(e) => json!({"error": e.to_string()}),
    }
}

/// What `show` prints. The SP entity id is its metadata URL.
pub fn connection_json(ctx: &Context<'_>, tenant: &Tenant, connection: &SamlConnection) -> Value {
    let now = ctx.now_millis();
    let base = format!("{}/saml/{}", ctx.issuer(&tenant.slug), connection.name);
    let sp_cert = cert_json(&connection.sp_certificate, now);
    let idp = &connection.idp;
    json!({
        "id": connection.id,
        "tenant": tenant.slug,
        "name": connection.name,
        "display_name": connection.display_name,
        "idp": {
            "entity_id": idp.entity_id,
            "sso_url": idp.sso_url,
            "sso_binding": idp.sso_binding,
            "wants_signed_requests": idp.wants_signed_requests,
            "certificates": idp.certificates.iter().map(|cert| cert_json(cert, now)).collect::<Vec<_>>(),
        },
        "options": connection.options,
        "metadata": {
            "source": if connection.metadata_url.is_some() { "url" } else { "file" },
            "url": connection.metadata_url,
            "refreshed_at": connection.metadata_refreshed_at.map(rfc3339),
            "error": connection.metadata_error,
            "next_refresh_at": connection.next_refresh_at.map(rfc3339),
        },
        "sp": {
            "entity_id": format!("{base}/metadata"),
            "metadata_url": format!("{base}/metadata"),
            "acs_url": format!("{base}/acs"),
            "certificate_sha256": sp_cert["sha256"],
            "certificate_not_after": sp_cert["not_after"],
        },
        "created_at": rfc3339(connection.created_at),
        "updated_at": rfc3339(connection.updated_at),
    })
}

/// JSON with `--json`; otherwise a readable summary of `connection_json`'s value.
pub fn show(json: bool, connection: &Value) {
    if json {
        print_json(connection);
        return;
    }
    let mut lines = idp_lines(connection);
    lines.extend(option_lines(&connection["options"]));
    lines.extend(metadata_and_sp_lines(connection));
    if let Some(changed) = connection.get("changed") {
        lines.push(("changed", text(changed)));
    }
    let width = lines.iter().map(|(key, _)| key.len()).max().unwrap_or(0);
    for (key, shown) in lines {
        println!("{key:width$}  {shown}");
    }
}

type Lines = Vec<(&'static str, String)>;

/// A string as itself, anything else as JSON.
fn text(value: &Value) -> String {
    value.as_str().map_or_else(|| value.to_string(), str::to_owned)
}

/// The value, or `default` when it is null.
fn or_default(value: &Value, default: &str) -> String {
    if value.is_null() {
        default.to_owned()
    } else {
        text(value)
    }
}

fn idp_lines(connection: &Value) -> Lines {
    let idp = &connection["idp"];
    let mut lines = vec![
        ("name", text(&connection["name"])),
        ("display_name", text(&connection["display_name"])),
        ("id", text(&connection["id"])),
        ("idp_entity_id", text(&idp["entity_id"])),
        (
            "idp_sso",
            format!("{} ({})", text(&idp["sso_url"]), text(&idp["sso_binding"])),
        ),
    ];
    for cert in idp["certificates"].as_array().into_iter().flatten() {
        lines.push((
            "idp_certificate",
            match cert.get("error") {
                Some(e) => text(e),
                None => format!(
                    "{}  sha256 {}  valid {} .. {}",
                    text(&cert["subject"]),
                    text(&cert["sha256"]),
                    text(&cert["not_before"]),
                    text(&cert["not_after"])
                ),
            },
        ));
    }
    lines
}

fn option_lines(options: &Value) -> Lines {
    let flag = |key: &str| {
        if options[key].as_bool().unwrap_or(false) {
            "on"
        } else {
            "off"
        }
        .to_owned()
    };
    let dash_if_empty = |joined: String| if joined.is_empty() { "-".into() } else { joined };
    let domains = options["domains"]
        .as_array()
        .map(|domains| domains.iter().map(text).collect::<Vec<_>>().join(", "))
        .unwrap_or_default();
    let role_map = options["role_map"]
        .as_array()
        .map(|pairs| {
            pairs
                .iter()
                .map(|pair| format!("{}={}", text(&pair[0]), text(&pair[1])))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    let mapping = &options["mapping"];
    vec![
        ("domains", dash_if_empty(domains)),
        ("allow_idp_initiated", flag("allow_idp_initiated")),
        ("jit", flag("jit")),
        ("link_existing", flag("link_existing")),
        ("email_verified", flag("email_verified")),
        ("trust_idp_mfa", flag("trust_idp_mfa")),
        ("sign_requests", flag("sign_requests")),
        (
            "mapping",
            format!(
                "email={} name={} groups={}",
                or_default(&mapping["email"], "(NameID)"),
                or_default(&mapping["name"], "-"),
                or_default(&mapping["groups"], "-")
            ),
        ),
        ("role_map", dash_if_empty(role_map)),
    ]
}

fn metadata_and_sp_lines(connection: &Value) -> Lines {
    let metadata = &connection["metadata"];
    let sp = &connection["sp"];
    vec![
        (
            "metadata",
            match metadata["url"].as_str() {
                Some(url) => format!("from {url}"),
                None => "from a file (not refreshed)".into(),
            },
        ),
        (
            "metadata_refreshed_at",
            or_default(&metadata["refreshed_at"], "-"),
        ),
        ("metadata_error", or_default(&metadata["error"], "-")),
        ("next_refresh_at", or_default(&metadata["next_refresh_at"], "-")),
        ("sp_entity_id", text(&sp["entity_id"])),
        ("sp_metadata_url", text(&sp["metadata_url"])),
        ("sp_acs_url", text(&sp["acs_url"])),
        ("sp_certificate_sha256", text(&sp["certificate_sha256"])),
    ]
}
