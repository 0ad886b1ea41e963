//! Printing: a short human form by default, JSON with `--json`.

use crate::cli::{
    AdminRoleCmd, AdminTokenCmd, AttributeCmd, AuditCmd, ClientCmd, Command, DomainCmd, GrantsCmd, GroupCmd,
    InviteCmd, KeysCmd, MfaCmd, OidcConnectionCmd, RoleCmd, SamlCmd, TenantCmd, UserCmd,
};
use latchkey_core::{Client, Tenant, User};
use serde_json::{Value, json};

/// Whether a failure is printed as `{"error": …}`. `role create|list|remove` and `audit
/// search`/`retention` print failures as text even with `--json`; that is the contract as it
/// stands.
#[allow(clippy::too_many_lines)] // one arm per command that takes --json
pub fn wants_json(command: &Command) -> bool {
    match command {
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
            | AdminTokenCmd::Update { out, .. }
            | AdminTokenCmd::Revoke { out, .. },
        )
        | Command::AdminRole(
            AdminRoleCmd::Permissions { out }
            | AdminRoleCmd::Create { out, .. }
            | AdminRoleCmd::List { out, .. }
            | AdminRoleCmd::Update { out, .. }
            | AdminRoleCmd::Remove { out, .. },
        )
        | Command::Attribute(
            AttributeCmd::Define { out, .. }
            | AttributeCmd::Update { out, .. }
            | AttributeCmd::List { out, .. }
            | AttributeCmd::Remove { out, .. }
            | AttributeCmd::Show { out, .. }
            | AttributeCmd::Set { out, .. }
            | AttributeCmd::Unset { out, .. },
        )
        | Command::Domain(
            DomainCmd::Add { out, .. }
            | DomainCmd::List { out, .. }
            | DomainCmd::Verify { out, .. }
            | DomainCmd::Remove { out, .. },
        ) => out.json,
        Command::Group(group) => match group {
            GroupCmd::Create { out, .. }
            | GroupCmd::List { out, .. }
            | GroupCmd::Show { out, .. }
            | GroupCmd::Update { out, .. }
            | GroupCmd::Remove { out, .. } => out.json,
            GroupCmd::AddMember(m) | GroupCmd::RemoveMember(m) => m.out.json,
        },
        Command::Role(RoleCmd::Assign(a) | RoleCmd::Unassign(a)) => a.out.json,
        Command::Role(RoleCmd::Effective(user)) => user.out.json,
        Command::Saml(saml) => match saml {
            SamlCmd::Add(add) => add.out.json,
            SamlCmd::Update(update) => update.out.json,
            SamlCmd::List { out, .. }
            | SamlCmd::Show { out, .. }
            | SamlCmd::Remove { out, .. }
            | SamlCmd::RefreshMetadata { out, .. }
            | SamlCmd::Health { out, .. } => out.json,
        },
        Command::OidcConnection(oidc) => match oidc {
            OidcConnectionCmd::Add(add) => add.out.json,
            OidcConnectionCmd::Update(update) => update.out.json,
            OidcConnectionCmd::List { out, .. }
            | OidcConnectionCmd::Show { out, .. }
            | OidcConnectionCmd::Remove { out, .. }
            | OidcConnectionCmd::Refresh { out, .. } => out.json,
        },
        Command::Client(client) => match client {
            ClientCmd::Create(create) => create.out.json,
            ClientCmd::Update(update) => update.out.json,
            ClientCmd::List { out, .. }
            | ClientCmd::Show { out, .. }
            | ClientCmd::Delete { out, .. }
            | ClientCmd::RotateSecret { out, .. }
            | ClientCmd::Claims { out, .. } => out.json,
            // Always JSON.
            ClientCmd::Preview { .. } => true,
        },

        Command::User(user) => match user {
            UserCmd::Create { out, .. } | UserCmd::List { out, .. } | UserCmd::Seal { out, .. } => out.json,
            UserCmd::Show(user)
            | UserCmd::Disable(user)
            | UserCmd::Enable(user)
            | UserCmd::Delete(user)
            | UserCmd::Restore(user)
            | UserCmd::SetPassword(user)
            | UserCmd::VerifyEmail(user)
            | UserCmd::Update { user, .. }
            | UserCmd::Erase { user, .. }
            | UserCmd::Grants(GrantsCmd::List(user) | GrantsCmd::Revoke { user, .. }) => user.out.json,
            UserCmd::Mfa(MfaCmd::List(user) | MfaCmd::Reset(user) | MfaCmd::Remove { user, .. }) => {
                user.out.json
            }
            // Always JSON.
            UserCmd::Export { .. } => true,
        },
        Command::Apply(apply) => apply.out.json,
        // The report is JSON; so are its errors.
        Command::Incident(_) => true,
        Command::Invite(invite) => match invite {
            InviteCmd::Create { out, .. } | InviteCmd::List { out, .. } => out.json,
            InviteCmd::Revoke(r) | InviteCmd::Resend { invitation: r, .. } => r.out.json,
        },
        _ => false,
    }
}

/// JSON with `--json`, aligned `key  value` lines otherwise.
pub fn emit(json: bool, value: &Value) {
    if json {
        print_json(value);
    } else {
        print_human(value);
    }
}

/// JSON with `--json`, one line of text otherwise: what a command that changed something says.
pub fn done(json: bool, value: &Value, text: &str) {
    if json {
        print_json(value);
    } else {
        println!("{text}");
    }
}

pub fn print_json(value: &Value) {
    println!("{}", serde_json::to_string_pretty(value).unwrap_or_default());
}

pub fn tenant_json(tenant: &Tenant, issuer: &str) -> Value {
    json!({
        "id": tenant.id, "slug": tenant.slug, "display_name": tenant.display_name, "issuer": issuer,
        "policy": tenant.policy, "created_at": rfc3339(tenant.created_at),
        "updated_at": rfc3339(tenant.updated_at),
    })
}

pub fn user_json(user: &User) -> Value {
    json!({
        "id": user.id, "username": user.username, "email": user.email,
        "email_verified": user.email_verified, "display_name": user.display_name, "status": user.status,
        "has_password": user.password_hash.is_some(),
        "password_changed_at": user.password_changed_at.map(rfc3339),
        "created_at": rfc3339(user.created_at), "updated_at": rfc3339(user.updated_at),
    })
}

pub fn client_json(client: &Client) -> Value {
    json!({
        "client_id": client.client_id, "name": client.name, "client_type": client.client_type,
        "token_endpoint_auth_method": client.auth_method, "redirect_uris": client.redirect_uris,
        "post_logout_redirect_uris": client.post_logout_redirect_uris,
        "grant_types": client.grant_types, "scopes": client.scopes,
        "access_token_format": client.access_token_format, "require_pkce": client.require_pkce,
        "introspect_others": client.introspect_others, "first_party": client.first_party,
        "jwks_uri": client.jwks_uri, "jwks": client.jwks, "resources": client.settings.resources,
        "backchannel_logout_uri": client.settings.backchannel_logout_uri,
        "backchannel_logout_session_required": client.settings.backchannel_logout_session_required,
        "frontchannel_logout_uri": client.settings.frontchannel_logout_uri,
        "frontchannel_logout_session_required": client.settings.frontchannel_logout_session_required,
        "subject_type": client.settings.subject_type,
        "sector_identifier_uri": client.settings.sector_identifier_uri,
        "allowed_claims": client.settings.allowed_claims,
        "previous_secret_expires_at": client.previous_secret.as_ref().map(|p| rfc3339(p.expires_at)),
        "created_at": rfc3339(client.created_at), "updated_at": rfc3339(client.updated_at),
    })
}

/// Prints an object as aligned `key  value` lines.
pub fn print_human(value: &Value) {
    if let Some(object) = value.as_object() {
        let width = object.keys().map(String::len).max().unwrap_or(0);
        for (key, field) in object {
            let shown = match field {
                Value::String(text) => text.clone(),
                Value::Null => "-".into(),
                Value::Array(items) => items
                    .iter()
                    .map(|item| item.as_str().map_or_else(|| item.to_string(), str::to_owned))
                    .collect::<Vec<_>>()
                    .join(", "),
                other => other.to_string(),
            };
            println!("{key:width$}  {shown}");
        }
    }
}

/// Unix milliseconds as RFC 3339 (the number itself if out of range).
pub fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|instant| {
            instant
                .format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| ms.to_string())
}

/// Asks the operator to type `expected` before a destructive command goes on; `--yes` skips
/// the question. Without a terminal to ask on, `--yes` is required.
pub fn confirm(yes: bool, what: &str, expected: &str) -> Result<(), crate::error::CliError> {
    use std::io::{BufRead, IsTerminal, Write};
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(crate::error::CliError::BadFlag(format!(
            "{what}: standard input is not a terminal to confirm on; add --yes"
        )));
    }
    eprint!("{what}. Type {expected:?} to go on: ");
    std::io::stderr().flush().ok();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(crate::error::CliError::Stdin)?;
    if line.trim() == expected {
        Ok(())
    } else {
        Err(crate::error::CliError::BadFlag(format!(
            "{what}: not confirmed; nothing was done"
        )))
    }
}
