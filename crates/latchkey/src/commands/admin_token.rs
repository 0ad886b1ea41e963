//! `latchkey admin-token …`: bearer tokens for a tenant's admin API. A token is shown once;
//! only its SHA-256 is stored.

use crate::cli::{AdminTokenCmd, RoleArg};
use crate::context::Context;
use crate::error::CliError;
use crate::output::{done, print_human, print_json, rfc3339};
use latchkey_core::{AdminRole, AdminToken, OsRng, random_token, sha256_hex};
use latchkey_store::AdminTokenRepo;
use serde_json::{Value, json};

const MILLIS_PER_DAY: i64 = 86_400_000;

pub fn run(ctx: &Context<'_>, cmd: AdminTokenCmd) -> Result<(), CliError> {
    match cmd {
        AdminTokenCmd::Create {
            tenant,
            name,
            role,
            expires_in_days,
            out,
        } => create(ctx, tenant.slug(), &name, role, expires_in_days, out.json),
        AdminTokenCmd::List { tenant, out } => list(ctx, tenant.slug(), out.json),
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

fn token_json(token: &AdminToken) -> Value {
    json!({
        "id": token.id, "name": token.name, "role": token.role,
        "created_at": rfc3339(token.created_at), "expires_at": token.expires_at.map(rfc3339),
    })
}

/// `expires_in_days` 0 means the token never expires.
fn create(
    ctx: &Context<'_>,
    slug: &str,
    name: &str,
    role: RoleArg,
    expires_in_days: u32,
    json: bool,
) -> Result<(), CliError> {
    let tenant = ctx.tenant(slug)?;
    let role = match role {
        RoleArg::Reader => AdminRole::Reader,
        RoleArg::Admin => AdminRole::Admin,
    };
    let secret = format!("lka_{}", random_token(&OsRng, 32));
    let expires_at =
        (expires_in_days > 0).then(|| ctx.now_millis() + i64::from(expires_in_days) * MILLIS_PER_DAY);
    let token = ctx.db.create_admin_token(
        &tenant.id,
        ctx.actor(),
        name,
        role,
        &sha256_hex(secret.as_bytes()),
        expires_at,
    )?;
    let mut shown = token_json(&token);
    shown["token"] = json!(secret);
    if json {
        print_json(&shown);
    } else {
        print_human(&shown);
        println!("(the token is shown once: only its hash is stored)");
    }
    Ok(())
}

fn list(ctx: &Context<'_>, slug: &str, json: bool) -> Result<(), CliError> {
    let tenant = ctx.tenant(slug)?;
    let tokens = ctx.db.list_admin_tokens(&tenant.id)?;
    if json {
        print_json(&tokens.iter().map(token_json).collect());
    } else {
        for token in tokens {
            println!(
                "{}\t{}\t{}\t{}",
                token.id,
                token.role,
                token.name,
                token.expires_at.map_or_else(|| "never".into(), rfc3339)
            );
        }
    }
    Ok(())
}
