//! `latchkey group …`: a tenant's groups, their members (users and groups) and paths.

use crate::cli::{GroupCmd, GroupMember};
use crate::context::Context;
use crate::error::CliError;
use crate::output::{done, emit, print_json, rfc3339};
use latchkey_core::{Group, Principal};
use latchkey_store::{GroupRepo, GroupUpdate};
use serde_json::{Value, json};

pub fn run(ctx: &Context<'_>, cmd: GroupCmd) -> Result<(), CliError> {
    match cmd {
        GroupCmd::Create {
            tenant,
            name,
            description,
            out,
        } => {
            let tenant = ctx.tenant(tenant.slug())?;
            let group = ctx
                .db
                .create_group(&tenant.id, ctx.actor(), &name, description.as_deref())?;
            emit(out.json, &group_json(&group));
            Ok(())
        }
        GroupCmd::List { tenant, out } => {
            let tenant = ctx.tenant(tenant.slug())?;
            let groups = ctx.db.list_groups(&tenant.id)?;
            if out.json {
                print_json(&groups.iter().map(group_json).collect());
            } else {
                for group in groups {
                    println!("{}\t{}", group.path, group.description.unwrap_or_default());
                }
            }
            Ok(())
        }
        GroupCmd::Show { tenant, name, out } => show(ctx, tenant.slug(), &name, out.json),
        GroupCmd::Update {
            tenant,
            name,
            new_name,
            description,
            no_description,
            out,
        } => {
            let tenant = ctx.tenant(tenant.slug())?;
            let group = ctx.group(&tenant, &name)?;
            let update = GroupUpdate {
                name: new_name,
                description: if no_description {
                    Some(None)
                } else {
                    description.map(Some)
                },
                if_version: None,
            };
            let group = ctx.db.update_group(&tenant.id, ctx.actor(), &group.id, &update)?;
            emit(out.json, &group_json(&group));
            Ok(())
        }
        GroupCmd::Remove { tenant, name, out } => {
            let tenant = ctx.tenant(tenant.slug())?;
            let group = ctx.group(&tenant, &name)?;
            ctx.db.delete_group(&tenant.id, ctx.actor(), &group.id)?;
            done(
                out.json,
                &json!({"deleted": "group", "name": group.name, "id": group.id.as_str()}),
                &format!("removed group {}", group.path),
            );
            Ok(())
        }
        GroupCmd::AddMember(m) => membership(ctx, &m, true),
        GroupCmd::RemoveMember(m) => membership(ctx, &m, false),
    }
}

fn group_json(group: &Group) -> Value {
    json!({
        "id": group.id.as_str(), "name": group.name, "path": group.path,
        "description": group.description,
        "parent_id": group.parent_id.as_ref().map(latchkey_core::GroupId::as_str),
        "created_at": rfc3339(group.created_at),
    })
}

fn show(ctx: &Context<'_>, slug: &str, name: &str, json: bool) -> Result<(), CliError> {
    let tenant = ctx.tenant(slug)?;
    let group = ctx.group(&tenant, name)?;
    let members = ctx.db.group_members(&tenant.id, &group.id)?;
    let (roles, client_roles) = ctx.db.roles_of_group(&tenant.id, &group.id)?;
    let mut value = group_json(&group);
    value["users"] = members
        .users
        .iter()
        .map(|(id, username)| json!({"id": id.as_str(), "username": username}))
        .collect();
    value["groups"] = members.groups.iter().map(|g| json!(g.path)).collect();
    value["roles"] = json!(roles);
    value["client_roles"] = client_roles
        .iter()
        .map(|r| json!({"client_id": r.client_id.as_str(), "name": r.name}))
        .collect();
    if json {
        print_json(&value);
    } else {
        println!("path\t{}", group.path);
        println!("description\t{}", group.description.unwrap_or_default());
        for (_, username) in &members.users {
            println!("user\t{username}");
        }
        for g in &members.groups {
            println!("group\t{}", g.path);
        }
        for role in &roles {
            println!("role\t{role}");
        }
        for role in &client_roles {
            println!("client role\t{}\t{}", role.client_id, role.name);
        }
    }
    Ok(())
}

fn membership(ctx: &Context<'_>, m: &GroupMember, add: bool) -> Result<(), CliError> {
    let tenant = ctx.tenant(m.tenant.slug())?;
    let group = ctx.group(&tenant, &m.name)?;
    let member = ctx.principal(&tenant, m.member.user.as_deref(), m.member.group.as_deref())?;
    if add {
        ctx.db.add_member(&tenant.id, ctx.actor(), &group.id, &member)?;
    } else {
        ctx.db
            .remove_member(&tenant.id, ctx.actor(), &group.id, &member)?;
    }
    let (kind, id) = match &member {
        Principal::User(id) => ("user", id.as_str()),
        Principal::Group(id) => ("group", id.as_str()),
    };
    let name = m
        .member
        .user
        .as_deref()
        .or(m.member.group.as_deref())
        .unwrap_or_default();
    let verb = if add { "added" } else { "removed" };
    done(
        m.out.json,
        &json!({verb: {"kind": kind, "id": id, "name": name}, "group": group.name, "path": group.path}),
        &format!(
            "{verb} {kind} {name} {} group {}",
            if add { "to" } else { "from" },
            group.path
        ),
    );
    Ok(())
}
