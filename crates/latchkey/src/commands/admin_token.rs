//! `latchkey admin-token …` and `latchkey admin-role …`: who may call a tenant's admin API. A
//! credential starts with no permission; an `lka_` token is shown once (only its SHA-256 is
//! stored); a client credential accepts that client's OAuth access tokens for the admin API.

use crate::cli::{AdminGrants, AdminRoleCmd, AdminTokenCmd, GrantChange, SystemTokenCmd};
use crate::context::Context;
use crate::error::CliError;
use crate::output::{done, print_human, print_json, rfc3339};
use latchkey_core::{
    AdminRoleDef, AdminToken, BuiltinAdminRole, ClientId, OsRng, Permission, Permissions, random_token,
    sha256_hex,
};
use latchkey_services::clients::{admin_audience, admin_client_problem};
use latchkey_store::{AdminTokenRepo, ClientRepo, CredentialKind, Grants, NewAdminToken, SystemTokenRepo};
use serde_json::{Value, json};

const MILLIS_PER_DAY: i64 = 86_400_000;

pub fn run(ctx: &Context<'_>, cmd: AdminTokenCmd) -> Result<(), CliError> {
    match cmd {
        AdminTokenCmd::Create {
            tenant,
            name,
            grants,
            client,
            user,
            expires_in_days,
            out,
        } => create(
            ctx,
            tenant.slug(),
            (&name, &grants),
            (client, user),
            expires_in_days,
            out.json,
        ),
        AdminTokenCmd::List { tenant, out } => list(ctx, tenant.slug(), out.json),
        AdminTokenCmd::Update {
            tenant,
            id,
            change,
            out,
        } => {
            let tenant = ctx.tenant(tenant.slug())?;
            let change = changed(&change)?;
            let token = ctx
                .db
                .update_admin_token(&tenant.id, ctx.actor(), &id, None, &change)?;
            done(
                out.json,
                &token_json(&token),
                &format!("updated admin credential {id}"),
            );
            Ok(())
        }
        AdminTokenCmd::Revoke { tenant, id, out } => {
            let tenant = ctx.tenant(tenant.slug())?;
            ctx.db.revoke_admin_token(&tenant.id, ctx.actor(), &id)?;
            done(
                out.json,
                &json!({"revoked": "admin_token", "id": id}),
                &format!("revoked admin token {id}"),
            );
            Ok(())
        }
    }
}

/// `latchkey system-token …`: the installation's credentials (no tenant).
pub fn run_system(ctx: &Context<'_>, cmd: SystemTokenCmd) -> Result<(), CliError> {
    match cmd {
        SystemTokenCmd::Create {
            name,
            grants,
            operator,
            expires_in_days,
            out,
        } => {
            let (kind, secret) = if let Some(o) = operator {
                (operator_of(ctx, &o)?, None)
            } else {
                let secret = format!("lks_{}", random_token(&OsRng, 32));
                (
                    CredentialKind::TokenHash(sha256_hex(secret.as_bytes())),
                    Some(secret),
                )
            };
            let new = NewAdminToken {
                name,
                roles: nonempty(&grants.roles),
                permissions: permissions(&grants.permissions)?,
                kind,
                expires_at: expiry(ctx, expires_in_days),
            };
            let token = ctx.db.create_system_token(ctx.actor(), &new)?;
            show_created(
                &token,
                secret.as_deref(),
                out.json,
                "--role system-admin or --permission system:…",
            );
            Ok(())
        }
        SystemTokenCmd::List { out } => {
            print_tokens(&ctx.db.list_system_tokens()?, out.json);
            Ok(())
        }
        SystemTokenCmd::Update { id, change, out } => {
            let change = changed(&change)?;
            let token = ctx.db.update_system_token(ctx.actor(), &id, None, &change)?;
            done(
                out.json,
                &token_json(&token),
                &format!("updated system token {id}"),
            );
            Ok(())
        }
        SystemTokenCmd::Revoke { id, out } => {
            ctx.db.revoke_system_token(ctx.actor(), &id)?;
            done(
                out.json,
                &json!({"revoked": "system_token", "id": id}),
                &format!("revoked system token {id}"),
            );
            Ok(())
        }
    }
}

/// `TENANT/USER` as an operator's account.
fn operator_of(ctx: &Context<'_>, o: &str) -> Result<CredentialKind, CliError> {
    let (slug, user) = o
        .split_once('/')
        .ok_or_else(|| CliError::BadFlag("--operator: expected TENANT/USER".into()))?;
    let tenant = ctx.tenant(slug)?;
    let user = ctx.user(&tenant, user)?;
    Ok(CredentialKind::Operator(tenant.id, user.id))
}

/// The grants an update names: those given, or cleared when asked.
fn changed(change: &GrantChange) -> Result<Grants, CliError> {
    let grants = &change.grants;
    Ok(Grants {
        roles: (change.clear_roles || !grants.roles.is_empty()).then(|| nonempty(&grants.roles)),
        permissions: (change.clear_permissions || !grants.permissions.is_empty())
            .then(|| permissions(&grants.permissions))
            .transpose()?,
        description: None,
    })
}

/// `days` from now; 0 means never.
fn expiry(ctx: &Context<'_>, days: u32) -> Option<i64> {
    (days > 0).then(|| ctx.now_millis() + i64::from(days) * MILLIS_PER_DAY)
}

/// `--role ''` means none.
fn nonempty(v: &[String]) -> Vec<String> {
    v.iter().filter(|s| !s.trim().is_empty()).cloned().collect()
}

fn permissions(words: &[String]) -> Result<Permissions, CliError> {
    Permissions::from_words(&words.join(" ")).map_err(|e| CliError::BadFlag(format!("--permission: {e}")))
}

fn token_json(token: &AdminToken) -> Value {
    json!({
        "id": token.id, "name": token.name, "kind": kind(token),
        "client_id": token.client_id, "user_id": token.user_id, "roles": token.roles, "permissions": token.permissions,
        "created_at": rfc3339(token.created_at), "expires_at": token.expires_at.map(rfc3339),
    })
}

fn kind(token: &AdminToken) -> &'static str {
    match (&token.client_id, &token.user_id) {
        (Some(_), _) => "client",
        (None, Some(_)) => "user",
        (None, None) => "token",
    }
}

/// A client ready to be an admin client, or a fresh `lka_` token (printed once).
fn kind_of(
    ctx: &Context<'_>,
    tenant: &latchkey_core::TenantId,
    slug: &str,
    client: Option<String>,
) -> Result<(CredentialKind, Option<String>), CliError> {
    let Some(cid) = client else {
        let secret = format!("lka_{}", random_token(&OsRng, 32));
        return Ok((
            CredentialKind::TokenHash(sha256_hex(secret.as_bytes())),
            Some(secret),
        ));
    };
    let c = ctx
        .db
        .client(tenant, &ClientId(cid.clone()))?
        .ok_or_else(|| CliError::NotInTenant {
            what: "client",
            name: cid,
            tenant: slug.to_owned(),
        })?;
    if let Some(why) = admin_client_problem(&c, &admin_audience(&ctx.config.public_url, slug)) {
        return Err(CliError::BadFlag(format!("--client: {why}")));
    }
    Ok((CredentialKind::Client(c.client_id), None))
}

/// `expires_in_days` 0 means the credential never expires.
fn create(
    ctx: &Context<'_>,
    slug: &str,
    (name, grants): (&str, &AdminGrants),
    (client, user): (Option<String>, Option<String>),
    expires_in_days: u32,
    json: bool,
) -> Result<(), CliError> {
    let tenant = ctx.tenant(slug)?;
    let (kind, secret) = match user {
        Some(u) => (CredentialKind::User(ctx.user(&tenant, &u)?.id), None),
        None => kind_of(ctx, &tenant.id, slug, client)?,
    };
    let new = NewAdminToken {
        name: name.to_owned(),
        roles: nonempty(&grants.roles),
        permissions: permissions(&grants.permissions)?,
        kind,
        expires_at: expiry(ctx, expires_in_days),
    };
    let token = ctx.db.create_admin_token(&tenant.id, ctx.actor(), &new)?;
    show_created(&token, secret.as_deref(), json, "--role or --permission");
    Ok(())
}

/// A new credential, with its secret (printed this once) if it has one.
fn show_created(token: &AdminToken, secret: Option<&str>, json: bool, grant_hint: &str) {
    let mut shown = token_json(token);
    if let Some(s) = secret {
        shown["token"] = json!(s);
    }
    if json {
        print_json(&shown);
    } else {
        print_human(&shown);
        if secret.is_some() {
            println!("(the token is shown once: only its hash is stored)");
        }
        if token.roles.is_empty() && token.permissions.is_empty() {
            println!("(it may do nothing yet: give it {grant_hint} with `update`)");
        }
    }
}

fn list(ctx: &Context<'_>, slug: &str, json: bool) -> Result<(), CliError> {
    let tenant = ctx.tenant(slug)?;
    print_tokens(&ctx.db.list_admin_tokens(&tenant.id)?, json);
    Ok(())
}

fn print_tokens(tokens: &[AdminToken], json: bool) {
    if json {
        print_json(&tokens.iter().map(token_json).collect());
    } else {
        for token in tokens {
            let grants: Vec<String> = token
                .roles
                .iter()
                .cloned()
                .chain(token.permissions.iter().map(|p| p.as_str().to_owned()))
                .collect();
            println!(
                "{}\t{}\t{}\t{}",
                token.id,
                if grants.is_empty() {
                    "-".into()
                } else {
                    grants.join(",")
                },
                token.name,
                token.expires_at.map_or_else(|| "never".into(), rfc3339)
            );
        }
    }
}

/// A new tenant's first credential (`tenant create --admin-token`): an `lka_` token with
/// `roles`, as JSON with its secret (shown once).
pub fn first_token(
    ctx: &Context<'_>,
    tenant: &latchkey_core::TenantId,
    name: &str,
    roles: &[String],
) -> Result<Value, CliError> {
    let secret = format!("lka_{}", random_token(&OsRng, 32));
    let new = NewAdminToken {
        name: name.to_owned(),
        roles: nonempty(roles),
        permissions: Permissions::NONE,
        kind: CredentialKind::TokenHash(sha256_hex(secret.as_bytes())),
        expires_at: expiry(ctx, 90),
    };
    let token = ctx.db.create_admin_token(tenant, ctx.actor(), &new)?;
    let mut shown = token_json(&token);
    shown["token"] = json!(secret);
    Ok(shown)
}

fn role_json(r: &AdminRoleDef) -> Value {
    json!({"name": r.name, "description": r.description, "permissions": r.permissions,
           "created_at": rfc3339(r.created_at), "updated_at": rfc3339(r.updated_at)})
}

pub fn run_roles(ctx: &Context<'_>, cmd: AdminRoleCmd) -> Result<(), CliError> {
    match cmd {
        AdminRoleCmd::Permissions { out } => {
            let roles: Vec<Value> = BuiltinAdminRole::ALL
                .iter()
                .map(|r| json!({"name": r, "permissions": r.permissions()}))
                .collect();
            let all: Vec<&str> = Permission::ALL.iter().map(|p| p.as_str()).collect();
            if out.json {
                print_json(&json!({"permissions": all, "roles": roles}));
            } else {
                println!("{}", all.join("\n"));
                for r in BuiltinAdminRole::ALL {
                    println!("role {r}: {}", r.permissions().to_words());
                }
            }
        }
        AdminRoleCmd::Create {
            tenant,
            name,
            description,
            permissions: p,
            out,
        } => {
            let tenant = ctx.tenant(tenant.slug())?;
            let role =
                ctx.db
                    .create_admin_role(&tenant.id, ctx.actor(), &name, &description, permissions(&p)?)?;
            done(out.json, &role_json(&role), &format!("created admin role {name}"));
        }
        AdminRoleCmd::List { tenant, out } => {
            let tenant = ctx.tenant(tenant.slug())?;
            let roles = ctx.db.list_admin_roles(&tenant.id)?;
            if out.json {
                print_json(&roles.iter().map(role_json).collect());
            } else {
                for r in roles {
                    println!("{}\t{}\t{}", r.name, r.permissions.to_words(), r.description);
                }
            }
        }
        AdminRoleCmd::Update {
            tenant,
            name,
            description,
            permissions: p,
            out,
        } => {
            let tenant = ctx.tenant(tenant.slug())?;
            let change = Grants {
                roles: None,
                permissions: p.as_deref().map(permissions).transpose()?,
                description,
            };
            let role = ctx
                .db
                .update_admin_role(&tenant.id, ctx.actor(), &name, None, &change)?;
            done(out.json, &role_json(&role), &format!("updated admin role {name}"));
        }
        AdminRoleCmd::Remove { tenant, name, out } => {
            let tenant = ctx.tenant(tenant.slug())?;
            ctx.db.delete_admin_role(&tenant.id, ctx.actor(), &name)?;
            done(
                out.json,
                &json!({"deleted": "admin_role", "name": name}),
                &format!("removed admin role {name}"),
            );
        }
    }
    Ok(())
}
