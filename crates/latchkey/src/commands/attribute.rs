//! `latchkey attribute …`: a tenant's user-attribute schema and users' values
//! (docs/authorization.md). Values are typed by the schema and checked by the store.

use crate::cli::{AttributeCmd, AttributeRules};
use crate::context::Context;
use crate::error::CliError;
use crate::output::{done, emit, print_json, rfc3339};
use latchkey_core::{AttributeDef, AttributeKind, EditableBy, Tenant, User};
use latchkey_store::{AttributeRepo, AttributeUpdate, AttributeValues};
use serde_json::{Value, json};

pub fn run(ctx: &Context<'_>, cmd: AttributeCmd) -> Result<(), CliError> {
    match cmd {
        AttributeCmd::Define {
            tenant,
            name,
            kind,
            rules,
            out,
        } => define(ctx, tenant.slug(), &name, kind, &rules, out.json),
        AttributeCmd::Update {
            tenant,
            name,
            rules,
            no_label,
            out,
        } => {
            let tenant = ctx.tenant(tenant.slug())?;
            let update = AttributeUpdate {
                label: if no_label {
                    Some(None)
                } else {
                    rules.label.map(Some)
                },
                required: rules.required,
                unique: rules.unique,
                editable_by: rules.editable_by,
                if_version: None,
            };
            let def = ctx.db.update_attribute(&tenant.id, ctx.actor(), &name, &update)?;
            emit(out.json, &def_json(&def));
            Ok(())
        }
        AttributeCmd::List { tenant, out } => list(ctx, tenant.slug(), out.json),
        AttributeCmd::Remove { tenant, name, out } => {
            let tenant = ctx.tenant(tenant.slug())?;
            ctx.db.remove_attribute(&tenant.id, ctx.actor(), &name, None)?;
            done(
                out.json,
                &json!({"deleted": "attribute", "name": name}),
                &format!("removed attribute {name} and every value of it"),
            );
            Ok(())
        }
        AttributeCmd::Show { tenant, user, out } => {
            let tenant = ctx.tenant(tenant.slug())?;
            let user = ctx.user(&tenant, &user)?;
            let values = ctx.db.user_attributes(&tenant.id, &user.id)?;
            emit(out.json, &values_json(&user, &values));
            Ok(())
        }
        AttributeCmd::Set {
            tenant,
            user,
            values,
            out,
        } => set_values(ctx, tenant.slug(), &user, out.json, |tenant| {
            parse_values(ctx, tenant, &values)
        }),
        AttributeCmd::Unset {
            tenant,
            user,
            names,
            out,
        } => set_values(ctx, tenant.slug(), &user, out.json, |_| {
            Ok(names.iter().map(|n| (n.clone(), None)).collect())
        }),
    }
}

fn list(ctx: &Context<'_>, slug: &str, json: bool) -> Result<(), CliError> {
    let tenant = ctx.tenant(slug)?;
    let defs = ctx.db.attribute_defs(&tenant.id)?;
    if json {
        print_json(&defs.iter().map(def_json).collect());
    } else {
        for d in defs {
            println!(
                "{}\t{}\t{}{}editable by {}",
                d.name,
                d.kind,
                if d.required { "required, " } else { "" },
                if d.unique { "unique, " } else { "" },
                d.editable_by
            );
        }
    }
    Ok(())
}

/// Applies `changes` (read against the tenant) to the user's values as an administrator.
fn set_values(
    ctx: &Context<'_>,
    slug: &str,
    user: &str,
    json: bool,
    changes: impl FnOnce(&Tenant) -> Result<Vec<(String, Option<Value>)>, CliError>,
) -> Result<(), CliError> {
    let tenant = ctx.tenant(slug)?;
    let user = ctx.user(&tenant, user)?;
    let changes = changes(&tenant)?;
    let values =
        ctx.db
            .set_user_attributes(&tenant.id, ctx.actor(), &user.id, &changes, EditableBy::Admin)?;
    emit(json, &values_json(&user, &values));
    Ok(())
}

fn define(
    ctx: &Context<'_>,
    slug: &str,
    name: &str,
    kind: AttributeKind,
    rules: &AttributeRules,
    json: bool,
) -> Result<(), CliError> {
    let tenant = ctx.tenant(slug)?;
    let def = AttributeDef {
        tenant_id: tenant.id.clone(),
        name: name.to_owned(),
        label: rules.label.clone(),
        kind,
        required: rules.required.unwrap_or(false),
        unique: rules.unique.unwrap_or(false),
        editable_by: rules.editable_by.unwrap_or(EditableBy::Admin),
        created_at: 0,
        updated_at: 0,
    };
    let def = ctx.db.define_attribute(&tenant.id, ctx.actor(), &def)?;
    emit(json, &def_json(&def));
    Ok(())
}

/// `NAME=VALUE` arguments, typed by the tenant's schema (an empty value clears).
fn parse_values(
    ctx: &Context<'_>,
    tenant: &Tenant,
    args: &[String],
) -> Result<Vec<(String, Option<Value>)>, CliError> {
    let schema = ctx.db.attribute_defs(&tenant.id)?;
    args.iter()
        .map(|a| {
            let (name, text) = a
                .split_once('=')
                .ok_or_else(|| CliError::BadFlag(format!("{a:?}: expected NAME=VALUE")))?;
            let def = schema
                .iter()
                .find(|d| d.name == name)
                .ok_or_else(|| CliError::NotInTenant {
                    what: "attribute",
                    name: name.to_owned(),
                    tenant: tenant.slug.clone(),
                })?;
            let value = def
                .parse_text(text)
                .map_err(|e| CliError::BadFlag(e.to_string()))?;
            Ok((name.to_owned(), value))
        })
        .collect()
}

fn def_json(d: &AttributeDef) -> Value {
    json!({
        "name": d.name, "label": d.label, "type": d.kind, "required": d.required,
        "unique": d.unique, "editable_by": d.editable_by, "created_at": rfc3339(d.created_at),
    })
}

fn values_json(user: &User, values: &AttributeValues) -> Value {
    json!({"user_id": user.id, "username": user.username, "attributes": values})
}
