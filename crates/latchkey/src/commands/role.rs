//! `latchkey role …`: a tenant's roles and client roles (roles one client defines), assigned to
//! users and groups, and a user's effective roles through their groups.

use crate::cli::{RoleAssignment, RoleCmd, UserRef};
use crate::context::Context;
use crate::error::CliError;
use crate::output::{done, emit, print_json, rfc3339};
use latchkey_core::{AnyRole, ClientId, ClientRole, Principal, Role, Tenant};
use latchkey_store::{GroupRepo, RoleRepo};
use serde_json::{Value, json};

pub fn run(ctx: &Context<'_>, cmd: RoleCmd) -> Result<(), CliError> {
    match cmd {
        RoleCmd::Create {
            tenant,
            name,
            description,
            client,
            out,
        } => {
            let tenant = ctx.tenant(tenant.slug())?;
            let value = match client {
                Some(client) => client_role_json(&ctx.db.create_client_role(
                    &tenant.id,
                    ctx.actor(),
                    &ClientId(client),
                    &name,
                    description.as_deref(),
                )?),
                None => {
                    role_json(
                        &ctx.db
                            .create_role(&tenant.id, ctx.actor(), &name, description.as_deref())?,
                    )
                }
            };
            emit(out.json, &value);
            Ok(())
        }
        RoleCmd::List { tenant, client, out } => list(ctx, tenant.slug(), client, out.json),
        RoleCmd::Remove {
            tenant,
            name,
            client,
            out,
        } => remove(ctx, tenant.slug(), &name, client, out.json),
        RoleCmd::Assign(a) => assignment(ctx, &a, true),
        RoleCmd::Unassign(a) => assignment(ctx, &a, false),
        RoleCmd::Effective(user) => effective(ctx, &user),
    }
}

fn role_json(role: &Role) -> Value {
    json!({
        "id": role.id.as_str(), "name": role.name, "description": role.description,
        "created_at": rfc3339(role.created_at),
    })
}

fn client_role_json(role: &ClientRole) -> Value {
    json!({
        "id": role.id.as_str(), "client_id": role.client_id.as_str(), "name": role.name,
        "description": role.description, "created_at": rfc3339(role.created_at),
    })
}

fn list(ctx: &Context<'_>, slug: &str, client: Option<String>, json: bool) -> Result<(), CliError> {
    let tenant = ctx.tenant(slug)?;
    let (values, lines): (Vec<Value>, Vec<String>) = match client {
        Some(client) => ctx
            .db
            .list_client_roles(&tenant.id, &ClientId(client))?
            .iter()
            .map(|r| (client_role_json(r), line(&r.name, r.description.as_deref())))
            .unzip(),
        None => ctx
            .db
            .list_roles(&tenant.id)?
            .iter()
            .map(|r| (role_json(r), line(&r.name, r.description.as_deref())))
            .unzip(),
    };
    if json {
        print_json(&Value::Array(values));
    } else {
        for l in lines {
            println!("{l}");
        }
    }
    Ok(())
}

fn line(name: &str, description: Option<&str>) -> String {
    format!("{name}\t{}", description.unwrap_or_default())
}

/// A tenant role, or with a client id that client's role, by name.
fn find(ctx: &Context<'_>, tenant: &Tenant, name: &str, client: Option<&str>) -> Result<AnyRole, CliError> {
    let found = match client {
        Some(client) => ctx
            .db
            .list_client_roles(&tenant.id, &ClientId(client.to_owned()))?
            .into_iter()
            .find(|r| r.name == name)
            .map(|r| AnyRole::Client(r.id)),
        None => ctx
            .db
            .list_roles(&tenant.id)?
            .into_iter()
            .find(|r| r.name == name)
            .map(|r| AnyRole::Tenant(r.id)),
    };
    found.ok_or_else(|| CliError::NotInTenant {
        what: if client.is_some() { "client role" } else { "role" },
        name: client.map_or_else(|| name.to_owned(), |c| format!("{name} (client {c})")),
        tenant: tenant.slug.clone(),
    })
}

/// Deletes the role; users and groups that had it lose it.
fn remove(
    ctx: &Context<'_>,
    slug: &str,
    name: &str,
    client: Option<String>,
    json: bool,
) -> Result<(), CliError> {
    let tenant = ctx.tenant(slug)?;
    let (kind, id) = match find(ctx, &tenant, name, client.as_deref())? {
        AnyRole::Tenant(id) => {
            ctx.db.delete_role(&tenant.id, ctx.actor(), &id)?;
            ("role", id.0)
        }
        AnyRole::Client(id) => {
            ctx.db.delete_client_role(&tenant.id, ctx.actor(), &id)?;
            ("client role", id.0)
        }
    };
    done(
        json,
        &json!({"deleted": kind, "name": name, "id": id, "client_id": client}),
        &format!("removed {kind} {name}"),
    );
    Ok(())
}

fn assignment(ctx: &Context<'_>, a: &RoleAssignment, assign: bool) -> Result<(), CliError> {
    let tenant = ctx.tenant(a.tenant.slug())?;
    let role = find(ctx, &tenant, &a.name, a.client.as_deref())?;
    let to = ctx.principal(&tenant, a.to.user.as_deref(), a.to.group.as_deref())?;
    if assign {
        ctx.db.assign(&tenant.id, ctx.actor(), &to, &role)?;
    } else {
        ctx.db.unassign(&tenant.id, ctx.actor(), &to, &role)?;
    }
    let (kind, id) = match &to {
        Principal::User(id) => ("user", id.as_str()),
        Principal::Group(id) => ("group", id.as_str()),
    };
    let who = a.to.user.as_deref().or(a.to.group.as_deref()).unwrap_or_default();
    let verb = if assign { "assigned" } else { "unassigned" };
    done(
        a.out.json,
        &json!({verb: {"role": a.name, "client_id": a.client}, kind: {"id": id, "name": who}}),
        &format!(
            "{verb} {} {} {kind} {who}",
            a.name,
            if assign { "to" } else { "from" }
        ),
    );
    Ok(())
}

/// What the user holds through every group: read by an operator, so audited as a read.
fn effective(ctx: &Context<'_>, reference: &UserRef) -> Result<(), CliError> {
    let tenant = ctx.tenant(reference.tenant.slug())?;
    let user = ctx.user(&tenant, &reference.user)?;
    let access = ctx.db.effective_access(&tenant.id, &user.id)?;
    ctx.audit_read(
        &tenant.id,
        "user.read_access",
        format!("user:{}", user.id),
        json!({}),
    )?;
    if reference.out.json {
        print_json(
            &json!({"user_id": user.id.as_str(), "username": user.username, "roles": access.roles,
            "client_roles": access.client_roles, "groups": access.groups}),
        );
    } else {
        for role in &access.roles {
            println!("role\t{role}");
        }
        for (client, roles) in &access.client_roles {
            for role in roles {
                println!("client role\t{client}\t{role}");
            }
        }
        for group in &access.groups {
            println!("group\t{}", group.path);
        }
    }
    Ok(())
}
