//! `latchkey tenant …`: creating, changing and deleting tenants. Each change is one store call,
//! i.e. one transaction with its audit event, so a failed command leaves nothing half-written.

mod policy;

use crate::cli::{PolicyFlags, TenantCmd};
use crate::context::Context;
use crate::error::CliError;
use crate::output::{confirm, done, emit, print_json, tenant_json};
use crate::shared::webhook_secret_aad;
use latchkey_core::{OsRng, Tenant, TenantPolicy, random_token};
use latchkey_services::residency::Side;
use latchkey_store::{NewTenant, TenantRepo, TenantUpdate};
use serde_json::json;

pub fn run(ctx: &Context<'_>, cmd: TenantCmd) -> Result<(), CliError> {
    match cmd {
        TenantCmd::Create {
            slug,
            display_name,
            admin_token,
            admin_role,
            region: _,
            out,
        } => create(
            ctx,
            slug,
            display_name,
            admin_token.map(|n| (n, admin_role)),
            out.json,
        ),
        TenantCmd::Move { tenant, to, yes, out } => move_to(ctx, &tenant.tenant, &to, yes, out.json),
        TenantCmd::List { out } => list(ctx, out.json),
        TenantCmd::Show { slug, out } => {
            show(ctx, &ctx.tenant(&slug)?, out.json);
            Ok(())
        }
        TenantCmd::Update {
            slug,
            display_name,
            policy,
            out,
        } => update(ctx, &slug, display_name, &policy, out.json),
        TenantCmd::Delete { slug, out } => delete(ctx, &slug, out.json),
    }
}

fn show(ctx: &Context<'_>, tenant: &Tenant, json: bool) {
    emit(json, &tenant_json(tenant, &ctx.issuer(&tenant.slug)));
}

/// A new tenant with its signing keys, and with `first` (a name and roles) its first admin
/// credential.
fn create(
    ctx: &Context<'_>,
    slug: String,
    display_name: Option<String>,
    first: Option<(String, Vec<String>)>,
    json: bool,
) -> Result<(), CliError> {
    // Check the first credential's roles and open the key ring first: no tenant is created
    // when its keys or its credential could not be.
    for r in first.iter().flat_map(|(_, roles)| roles) {
        latchkey_core::BuiltinAdminRole::tenant_role(r)
            .map_err(|e| CliError::BadFlag(format!("--admin-role: {e}")))?;
    }
    // A slug names one tenant across every region (`main` opened the `--region` one).
    for region in ctx.region_names() {
        let db = if region == ctx.region {
            ctx.db.clone()
        } else {
            ctx.region_db(region)?
        };
        if db.tenant_by_slug(&slug)?.is_some() {
            return Err(CliError::BadFlag(format!(
                "tenant {slug:?} already exists (in region {region})"
            )));
        }
    }
    let ring = ctx.ring()?;
    let tenant = ctx.db.create_tenant(
        ctx.actor(),
        &NewTenant {
            slug,
            display_name,
            policy: TenantPolicy::default(),
        },
    )?;
    ring.ensure_tenant(&tenant.id, ctx.actor())?;
    let Some((name, mut roles)) = first else {
        show(ctx, &tenant, json);
        return Ok(());
    };
    if roles.is_empty() {
        roles.push(latchkey_core::BuiltinAdminRole::TenantAdmin.as_str().to_owned());
    }
    let credential = crate::commands::admin_token::first_token(ctx, &tenant.id, &name, &roles)?;
    if json {
        let mut value = tenant_json(&tenant, &ctx.issuer(&tenant.slug));
        value["admin_credential"] = credential;
        print_json(&value);
    } else {
        show(ctx, &tenant, false);
        println!(
            "admin token {} ({}; shown once): {}",
            credential["id"].as_str().unwrap_or_default(),
            roles.join(","),
            credential["token"].as_str().unwrap_or_default()
        );
    }
    Ok(())
}

/// Every region's tenants (each region's database is opened): with regions configured, each
/// row also says its region.
fn list(ctx: &Context<'_>, json: bool) -> Result<(), CliError> {
    let regional = ctx.region_names().len() > 1;
    let mut rows = Vec::new();
    for region in ctx.region_names() {
        let db = if region == ctx.region {
            ctx.db.clone()
        } else {
            ctx.region_db(region)?
        };
        rows.extend(db.list_tenants()?.into_iter().map(|t| (region, t)));
    }
    if json {
        print_json(
            &rows
                .iter()
                .map(|(region, tenant)| {
                    let mut value = tenant_json(tenant, &ctx.issuer(&tenant.slug));
                    value["region"] = json!(region);
                    value
                })
                .collect(),
        );
    } else {
        for (region, tenant) in rows {
            let shown = if regional {
                format!("\t{region}")
            } else {
                String::new()
            };
            println!(
                "{}\t{}\t{}{shown}",
                tenant.slug,
                tenant.display_name,
                ctx.issuer(&tenant.slug)
            );
        }
    }
    Ok(())
}

fn update(
    ctx: &Context<'_>,
    slug: &str,
    display_name: Option<String>,
    flags: &PolicyFlags,
    json: bool,
) -> Result<(), CliError> {
    let tenant = ctx.tenant(slug)?;
    let mut new_policy = policy::apply(tenant.policy.clone(), flags)?;
    let webhook_secret = match flags.risk_webhook.as_deref() {
        None => None,
        Some("") => {
            new_policy.risk.webhook_url = None;
            new_policy.risk.webhook_secret_sealed = None;
            None
        }
        Some(url) => Some(set_risk_webhook(ctx, &tenant, &mut new_policy, url)?),
    };
    let change = TenantUpdate {
        display_name,
        policy: Some(new_policy),
    };
    let updated = ctx.db.update_tenant(&tenant.id, ctx.actor(), &change)?;
    match webhook_secret {
        Some(secret) if json => {
            let mut value = tenant_json(&updated, &ctx.issuer(&updated.slug));
            value["risk_webhook_secret"] = json!(secret);
            print_json(&value);
        }
        Some(secret) => {
            show(ctx, &updated, false);
            println!("risk webhook secret (shown once; signs X-Latchkey-Signature): {secret}");
        }
        None => show(ctx, &updated, json),
    }
    Ok(())
}

/// Points risk webhooks at `url` with a new HMAC secret, sealed under the tenant's data key;
/// returns the secret to show once.
fn set_risk_webhook(
    ctx: &Context<'_>,
    tenant: &Tenant,
    policy: &mut TenantPolicy,
    url: &str,
) -> Result<String, CliError> {
    // https, or http on loopback; no fragments, user info or wildcards.
    if !url.starts_with("http") {
        return Err(CliError::BadFlag(format!("--risk-webhook {url:?}: use https")));
    }
    latchkey_core::validate::redirect_uri("--risk-webhook", url)?;
    let ring = ctx.ring()?;
    let secret = format!("whsec_{}", random_token(&OsRng, 32));
    policy.risk.webhook_secret_sealed =
        Some(ring.seal(&tenant.id, webhook_secret_aad(&tenant.id), secret.as_bytes())?);
    policy.risk.webhook_url = Some(url.to_owned());
    Ok(secret)
}

/// `tenant move --tenant T --to R`: `main` opened the region holding T.
fn move_to(ctx: &Context<'_>, slug: &str, to: &str, yes: bool, json: bool) -> Result<(), CliError> {
    let tenant = ctx.tenant(slug)?;
    let target = ctx.region_db(to)?;
    confirm(
        yes,
        &format!(
            "Move tenant {slug} from region {} to region {to}: its rows are copied there and deleted here, its users' sessions end",
            ctx.region
        ),
        slug,
    )?;
    let report = latchkey_services::residency::move_tenant(
        &tenant,
        &Side {
            region: &ctx.region,
            db: &ctx.db,
        },
        &Side {
            region: to,
            db: &target,
        },
        ctx.actor(),
    )
    .map_err(CliError::Backup)?;
    let rows: usize = report.rows.values().sum();
    done(
        json,
        &json!(report),
        &format!(
            "moved tenant {slug} from region {} to region {to}: {rows} rows in {} tables",
            report.from,
            report.rows.len()
        ),
    );
    Ok(())
}

fn delete(ctx: &Context<'_>, slug: &str, json: bool) -> Result<(), CliError> {
    let tenant = ctx.tenant(slug)?;
    ctx.db.delete_tenant(&tenant.id, ctx.actor(), None)?;
    done(
        json,
        &json!({"deleted": "tenant", "slug": slug, "id": tenant.id}),
        &format!(
            "deleted tenant {slug} (id {}; its audit chain stays readable by that id)",
            tenant.id
        ),
    );
    Ok(())
}
