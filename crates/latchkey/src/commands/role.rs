//! `latchkey role …`: a tenant's roles, granted to users (e.g. by a SAML connection's role map).

use crate::cli::RoleCmd;
use crate::context::Context;
use crate::error::CliError;
use crate::output::{done, emit, print_json, rfc3339};
use latchkey_core::Role;
use latchkey_store::RoleRepo;
use serde_json::{Value, json};

pub fn run(ctx: &Context<'_>, cmd: RoleCmd) -> Result<(), CliError> {
    match cmd {
        RoleCmd::Create {
            tenant,
            name,
            description,
            out,
        } => {
            let tenant = ctx.tenant(tenant.slug())?;
            let role = ctx
                .db
                .create_role(&tenant.id, ctx.actor(), &name, description.as_deref())?;
            emit(out.json, &role_json(&role));
            Ok(())
        }
        RoleCmd::List { tenant, out } => list(ctx, tenant.slug(), out.json),
        RoleCmd::Remove { tenant, name, out } => remove(ctx, tenant.slug(), &name, out.json),
    }
}

fn role_json(role: &Role) -> Value {
    json!({
        "id": role.id.as_str(), "name": role.name, "description": role.description,
        "created_at": rfc3339(role.created_at),
    })
}

fn list(ctx: &Context<'_>, slug: &str, json: bool) -> Result<(), CliError> {
    let tenant = ctx.tenant(slug)?;
    let roles = ctx.db.list_roles(&tenant.id)?;
    if json {
        print_json(&roles.iter().map(role_json).collect());
    } else {
        for role in roles {
            println!("{}\t{}", role.name, role.description.unwrap_or_default());
        }
    }
    Ok(())
}

/// Deletes the role; users who had it lose it.
fn remove(ctx: &Context<'_>, slug: &str, name: &str, json: bool) -> Result<(), CliError> {
    let tenant = ctx.tenant(slug)?;
    let role = ctx
        .db
        .list_roles(&tenant.id)?
        .into_iter()
        .find(|role| role.name == name)
        .ok_or_else(|| CliError::NotInTenant {
            what: "role",
            name: name.to_owned(),
            tenant: tenant.slug.clone(),
        })?;
    ctx.db.delete_role(&tenant.id, ctx.actor(), &role.id)?;
    done(
        json,
        &json!({"deleted": "role", "name": role.name, "id": role.id.as_str()}),
        &format!("removed role {}", role.name),
    );
    Ok(())
}
