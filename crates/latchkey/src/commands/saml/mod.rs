//! `latchkey saml …`: a tenant's SAML connections as operators drive them. A connection is
//! stored with its IdP's metadata and a fresh SP key sealed under the tenant's data key
//! (row = connection id).

mod metadata;
mod options;
mod view;

use crate::cli::{SamlAdd, SamlCmd, SamlUpdate};
use crate::context::Context;
use crate::error::CliError;
use crate::output::{done, print_json};
use crate::shared::{METADATA_REFRESH_MS, refresh_connection};
use latchkey_core::{SamlConnection, SamlOptions, Tenant};
use latchkey_services::ServiceError;
use latchkey_store::{SamlConnectionUpdate, SamlRepo};
pub(crate) use metadata::block_on;
use serde_json::json;
use view::{connection_json, show};

pub fn run(ctx: &Context<'_>, cmd: SamlCmd) -> Result<(), CliError> {
    let now = ctx.now_millis();
    match cmd {
        SamlCmd::Add(spec) => add(ctx, &spec, now),
        SamlCmd::List { tenant, out } => list(ctx, tenant.slug(), out.json),
        SamlCmd::Show { tenant, name, out } => {
            let tenant = ctx.tenant(tenant.slug())?;
            let connection = find(ctx, &tenant, &name)?;
            show(out.json, &connection_json(ctx, &tenant, &connection));
            Ok(())
        }
        SamlCmd::Update(change) => update(ctx, &change, now),
        SamlCmd::Remove { tenant, name, out } => remove(ctx, tenant.slug(), &name, out.json),
        SamlCmd::RefreshMetadata { tenant, name, out } => {
            refresh_metadata(ctx, tenant.slug(), &name, now, out.json)
        }
        SamlCmd::Health { tenant, name, out } => health(ctx, tenant.slug(), &name, now, out.json),
    }
}

/// Prints the connection's health (`latchkey_services::saml_health`); text flags what needs
/// attention.
fn health(ctx: &Context<'_>, slug: &str, name: &str, now: i64, json: bool) -> Result<(), CliError> {
    let tenant = ctx.tenant(slug)?;
    let connection = find(ctx, &tenant, name)?;
    let h = latchkey_services::saml_health::connection_health(&ctx.db, &tenant.id, &connection, now)?;
    if json {
        print_json(&serde_json::to_value(&h).unwrap_or_default());
        return Ok(());
    }
    let m = &h.metadata;
    println!(
        "metadata\t{}\t{}{}",
        m.outcome,
        m.url.as_deref().unwrap_or("(inline)"),
        m.error.as_deref().map(|e| format!("\t{e}")).unwrap_or_default()
    );
    for c in &h.certificates {
        let flag = if c.expired {
            "EXPIRED"
        } else if c.warning {
            "WARNING"
        } else {
            "ok"
        };
        println!(
            "certificate\t{flag}\t{} days left\t{}",
            c.days_left.map_or_else(|| "?".into(), |d| d.to_string()),
            c.subject.as_deref().or(c.error.as_deref()).unwrap_or_default()
        );
    }
    println!("refused (7 days)\t{}", h.failures.total);
    for (reason, n) in &h.failures.by_reason {
        println!("  {reason}\t{n}");
    }
    println!(
        "last sign-in\t{}",
        h.last_sign_in_at
            .map_or_else(|| "never".into(), |t| t.to_string())
    );
    Ok(())
}

fn find(ctx: &Context<'_>, tenant: &Tenant, name: &str) -> Result<SamlConnection, CliError> {
    ctx.db
        .saml_connection_by_name(&tenant.id, name)?
        .ok_or_else(|| CliError::NotInTenant {
            what: "SAML connection",
            name: name.to_owned(),
            tenant: tenant.slug.clone(),
        })
}

fn list(ctx: &Context<'_>, slug: &str, json: bool) -> Result<(), CliError> {
    let tenant = ctx.tenant(slug)?;
    let connections = ctx.db.list_saml_connections(&tenant.id)?;
    if json {
        print_json(
            &connections
                .iter()
                .map(|connection| connection_json(ctx, &tenant, connection))
                .collect(),
        );
    } else {
        for connection in connections {
            println!(
                "{}\t{}\t{}\t{}",
                connection.name,
                connection.display_name,
                connection.idp.entity_id,
                connection.options.domains.join(",")
            );
        }
    }
    Ok(())
}

/// Connects an IdP; prints what the IdP's administrator needs (SP entity id, metadata and ACS
/// URLs).
fn add(ctx: &Context<'_>, spec: &SamlAdd, now: i64) -> Result<(), CliError> {
    let tenant = ctx.tenant(spec.tenant.slug())?;
    let mut options = options::apply(ctx, &tenant, SamlOptions::default(), &spec.opts)?;
    let (idp, metadata_url) = metadata::load(
        spec.metadata_file.as_deref(),
        spec.metadata_url.as_deref(),
        now,
        options.metadata_signer.as_deref(),
    )?
    .ok_or_else(|| CliError::BadFlag("give --metadata-file or --metadata-url".into()))?;
    if spec.opts.sign_requests.is_none() {
        options.sign_requests = idp.wants_signed_requests;
    }
    let ring = ctx.ring()?;
    let connection = latchkey_services::saml::connect(
        &ctx.db,
        &ring,
        &tenant,
        ctx.actor(),
        latchkey_services::saml::ConnectionSpec {
            name: spec.name.clone(),
            display_name: spec.display_name.clone(),
            idp,
            metadata_url,
            options,
        },
        now,
    )
    .map_err(|e| match e {
        ServiceError::Store(e) => CliError::Store(e),
        ServiceError::Keys(e) => CliError::Keys(e),
        ServiceError::SpKey(e) => CliError::SpKey(e),
        other => CliError::MetadataFetch(other),
    })?;
    show(spec.out.json, &connection_json(ctx, &tenant, &connection));
    Ok(())
}

/// Changes options, or replaces the metadata (which also decides whether it is refreshed).
fn update(ctx: &Context<'_>, spec: &SamlUpdate, now: i64) -> Result<(), CliError> {
    let tenant = ctx.tenant(spec.tenant.slug())?;
    let connection = find(ctx, &tenant, &spec.name)?;
    let mut change = SamlConnectionUpdate {
        display_name: spec.display_name.clone(),
        ..SamlConnectionUpdate::default()
    };
    let mut options = options::apply(ctx, &tenant, connection.options.clone(), &spec.opts)?;
    if spec.no_role_map {
        options.role_map.clear();
    }
    if spec.no_group_map {
        options.group_map.clear();
    }
    if spec.no_metadata_signing_cert {
        options.metadata_signer = None;
    }
    if let Some((idp, url)) = metadata::load(
        spec.metadata_file.as_deref(),
        spec.metadata_url.as_deref(),
        now,
        options.metadata_signer.as_deref(),
    )? {
        change.next_refresh_at = Some(url.as_ref().map(|_| now + METADATA_REFRESH_MS));
        change.metadata_url = Some(url);
        change.idp = Some(idp);
    }
    if options != connection.options {
        change.options = Some(options);
    }
    let after = ctx
        .db
        .update_saml_connection(&tenant.id, ctx.actor(), &connection.id, &change)?;
    show(spec.out.json, &connection_json(ctx, &tenant, &after));
    Ok(())
}

/// Removes the connection and the links of its users' identities (the users stay).
fn remove(ctx: &Context<'_>, slug: &str, name: &str, json: bool) -> Result<(), CliError> {
    let tenant = ctx.tenant(slug)?;
    let connection = find(ctx, &tenant, name)?;
    ctx.db
        .delete_saml_connection(&tenant.id, ctx.actor(), &connection.id, None)?;
    done(
        json,
        &json!({"deleted": "saml_connection", "name": connection.name, "id": connection.id}),
        &format!(
            "removed SAML connection {} (id {})",
            connection.name, connection.id
        ),
    );
    Ok(())
}

/// Fetches the metadata now, under the configured outbound guard as the server's hourly
/// refresh (the stored URL may be a tenant admin's choice). On failure the server keeps the
/// last good metadata and records the error, and the command exits 1.
fn refresh_metadata(ctx: &Context<'_>, slug: &str, name: &str, now: i64, json: bool) -> Result<(), CliError> {
    let tenant = ctx.tenant(slug)?;
    let connection = find(ctx, &tenant, name)?;
    if connection.metadata_url.is_none() {
        return Err(CliError::NotRefreshable(name.to_owned()));
    }
    let key_ring = std::sync::Arc::new(ctx.ring()?);
    let rng: std::sync::Arc<dyn latchkey_core::Rng> = std::sync::Arc::new(latchkey_core::OsRng);
    let outbound = &ctx.config.outbound_allow_private;
    match metadata::block_on(refresh_connection(
        &ctx.db,
        key_ring,
        rng,
        outbound,
        &connection,
        now,
    ))? {
        Ok(after) => {
            let mut shown = connection_json(ctx, &tenant, &after);
            shown["changed"] = json!(connection.idp != after.idp);
            show(json, &shown);
            Ok(())
        }
        Err(reason) => Err(CliError::RefreshFailed {
            name: name.to_owned(),
            reason,
        }),
    }
}
