//! Printing: a short human form by default, JSON with `--json`.

use crate::cli::{AdminTokenCmd, AuditCmd, ClientCmd, Command, KeysCmd, SamlCmd, TenantCmd, UserCmd};
use latchkey_core::{Client, Tenant, User};
use serde_json::{Value, json};

pub fn wants_json(c: &Command) -> bool {
    match c {
        Command::Tenant(
            TenantCmd::Create { out, .. }
            | TenantCmd::List { out }
            | TenantCmd::Show { out, .. }
            | TenantCmd::Update { out, .. }
            | TenantCmd::Delete { out, .. },
        )
        | Command::Audit(AuditCmd::Verify { out, .. })
        | Command::Keys(
            KeysCmd::List { out, .. }
            | KeysCmd::Rotate { out, .. }
            | KeysCmd::Activate { out, .. }
            | KeysCmd::Retire { out, .. }
            | KeysCmd::Revoke { out, .. }
            | KeysCmd::RotateDek { out, .. }
            | KeysCmd::RotateMaster { out },
        )
        | Command::AdminToken(
            AdminTokenCmd::Create { out, .. }
            | AdminTokenCmd::List { out, .. }
            | AdminTokenCmd::Revoke { out, .. },
        ) => out.json,
        Command::Saml(c) => match c {
            SamlCmd::Add(a) => a.out.json,
            SamlCmd::Update(u) => u.out.json,
            SamlCmd::List { out, .. }
            | SamlCmd::Show { out, .. }
            | SamlCmd::Remove { out, .. }
            | SamlCmd::RefreshMetadata { out, .. } => out.json,
        },
        Command::Client(c) => match c {
            ClientCmd::Create(c) => c.out.json,
            ClientCmd::List { out, .. }
            | ClientCmd::Show { out, .. }
            | ClientCmd::Delete { out, .. }
            | ClientCmd::RotateSecret { out, .. } => out.json,
        },
        Command::User(u) => match u {
            UserCmd::Create { out, .. } | UserCmd::List { out, .. } => out.json,
            UserCmd::Show(r)
            | UserCmd::Disable(r)
            | UserCmd::Enable(r)
            | UserCmd::Delete(r)
            | UserCmd::SetPassword(r) => r.out.json,
            UserCmd::Mfa(crate::cli::MfaCmd::List(r) | crate::cli::MfaCmd::Reset(r)) => r.out.json,
        },
        _ => false,
    }
}

/// JSON with `--json`, aligned `key  value` lines otherwise.
pub fn emit(json: bool, v: &Value) {
    if json {
        print_json(v);
    } else {
        print_human(v);
    }
}

pub fn print_json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

pub fn tenant_json(t: &Tenant, issuer: &str) -> Value {
    json!({
        "id": t.id, "slug": t.slug, "display_name": t.display_name, "issuer": issuer,
        "policy": t.policy, "created_at": rfc3339(t.created_at), "updated_at": rfc3339(t.updated_at),
    })
}

pub fn user_json(u: &User) -> Value {
    json!({
        "id": u.id, "username": u.username, "email": u.email, "display_name": u.display_name,
        "status": u.status, "has_password": u.password_hash.is_some(),
        "password_changed_at": u.password_changed_at.map(rfc3339),
        "created_at": rfc3339(u.created_at), "updated_at": rfc3339(u.updated_at),
    })
}

pub fn client_json(c: &Client) -> Value {
    json!({
        "client_id": c.client_id, "name": c.name, "client_type": c.client_type,
        "token_endpoint_auth_method": c.auth_method, "redirect_uris": c.redirect_uris,
        "post_logout_redirect_uris": c.post_logout_redirect_uris, "grant_types": c.grant_types,
        "scopes": c.scopes, "access_token_format": c.access_token_format, "require_pkce": c.require_pkce,
        "introspect_others": c.introspect_others, "first_party": c.first_party,
        "jwks_uri": c.jwks_uri, "jwks": c.jwks,
        "created_at": rfc3339(c.created_at), "updated_at": rfc3339(c.updated_at),
    })
}

/// Prints an object as aligned `key: value` lines.
pub fn print_human(v: &Value) {
    if let Some(o) = v.as_object() {
        let width = o.keys().map(String::len).max().unwrap_or(0);
        for (k, val) in o {
            let shown = match val {
                Value::String(s) => s.clone(),
                Value::Null => "-".into(),
                Value::Array(a) => a
                    .iter()
                    .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_owned))
                    .collect::<Vec<_>>()
                    .join(", "),
                other => other.to_string(),
            };
            println!("{k:width$}  {shown}");
        }
    }
}

pub fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| ms.to_string())
}
