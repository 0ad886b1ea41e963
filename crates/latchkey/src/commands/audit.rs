//! `latchkey audit …`: checking, exporting and searching a tenant's hash-chained audit log, and
//! applying its retention. A deleted tenant's chain stays readable by the tenant's id.

use crate::cli::{AuditCmd, AuditFilterArgs, ExportFormat};
use crate::context::Context;
use crate::error::CliError;
use crate::output::{done, print_json, rfc3339};
use latchkey_audit::Verdict;
use latchkey_core::TenantId;
use latchkey_store::{AuditFilter, AuditRepo, TenantRepo};
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The chain to read: a tenant by slug, or, for a deleted tenant, by its id.
struct Chain {
    id: TenantId,
    name: String,
}

pub fn run(ctx: &Context<'_>, cmd: AuditCmd) -> Result<(), CliError> {
    match cmd {
        AuditCmd::Verify { tenant, out } => verify(ctx, tenant.slug(), out.json),
        AuditCmd::Export {
            tenant,
            format,
            filter,
        } => export(ctx, tenant.slug(), format, &filter),
        AuditCmd::Search {
            tenant,
            filter,
            limit,
            out,
        } => search(ctx, tenant.slug(), &filter, limit, out.json),
        AuditCmd::Retention { tenant, out } => retention(ctx, tenant.slug(), out.json),
    }
}

fn chain(ctx: &Context<'_>, value: &str) -> Result<Chain, CliError> {
    if let Some(tenant) = ctx.db.tenant_by_slug(value)? {
        return Ok(Chain {
            id: tenant.id,
            name: tenant.slug,
        });
    }
    let id = TenantId(value.to_owned());
    if ctx.db.tenant(&id)?.is_none() && ctx.db.audit_head(&id)?.is_some() {
        return Ok(Chain {
            id,
            name: format!("deleted tenant {value}"),
        });
    }
    Err(CliError::NoChain(value.to_owned()))
}

/// Walks the hash chain; a break is a runtime failure naming the first broken sequence number.
fn verify(ctx: &Context<'_>, value: &str, json: bool) -> Result<(), CliError> {
    let chain = chain(ctx, value)?;
    let verdict = latchkey_audit::verify(&ctx.db, &chain.id)?;
    let verdict_json = serde_json::to_value(&verdict).unwrap_or_default();
    match verdict {
        Verdict::Intact { events, head_hash } => {
            done(
                json,
                &verdict_json,
                &format!(
                    "audit chain of {} is intact: {events} events, head {head_hash}",
                    chain.name
                ),
            );
            Ok(())
        }
        Verdict::Broken { seq, reason } => {
            if json {
                print_json(&verdict_json);
            }
            Err(CliError::ChainBroken {
                chain: chain.name,
                seq,
                reason,
            })
        }
    }
}

/// Writes the chain (or the filtered part) to standard output; the export is audited.
fn export(
    ctx: &Context<'_>,
    value: &str,
    format: ExportFormat,
    filter: &AuditFilterArgs,
) -> Result<(), CliError> {
    let chain = chain(ctx, value)?;
    let filter = audit_filter(filter)?;
    let format = match format {
        ExportFormat::Jsonl => latchkey_audit::Format::Jsonl,
        ExportFormat::Csv => latchkey_audit::Format::Csv,
    };
    let stdout = std::io::stdout();
    let mut writer = std::io::BufWriter::new(stdout.lock());
    let exported = latchkey_audit::export(&ctx.db, &chain.id, &filter, format, &mut writer)?;
    ctx.audit_read(
        &chain.id,
        "audit.export",
        format!("tenant:{}", chain.id),
        json!({"events": exported}),
    )
}

/// Events matching the filters, oldest first; the read is audited.
fn search(
    ctx: &Context<'_>,
    value: &str,
    filter: &AuditFilterArgs,
    limit: u32,
    json: bool,
) -> Result<(), CliError> {
    let chain = chain(ctx, value)?;
    let filter = audit_filter(filter)?;
    let events = ctx
        .db
        .audit_search(&chain.id, &filter, 0, i64::from(limit.clamp(1, 10_000)))?;
    ctx.audit_read(
        &chain.id,
        "audit.read",
        format!("tenant:{}", chain.id),
        json!({"events": events.len()}),
    )?;
    if json {
        print_json(&events.iter().map(|event| json!(event)).collect());
    } else {
        for event in &events {
            println!(
                "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                event.seq,
                rfc3339(event.at),
                event.actor,
                event.action,
                event.target,
                event.outcome.as_str(),
                event.details
            );
        }
    }
    Ok(())
}

/// Applies the tenant's audit and risk-history retention now (the server does it daily).
fn retention(ctx: &Context<'_>, slug: &str, json: bool) -> Result<(), CliError> {
    let tenant = ctx.tenant(slug)?;
    let retained = latchkey_audit::apply_retention(&ctx.db, &tenant, ctx.now_millis())?;
    done(
        json,
        &serde_json::to_value(retained).unwrap_or_default(),
        &format!(
            "retention applied to {}: {} audit events and {} risk histories deleted",
            tenant.slug, retained.audit_events_deleted, retained.risk_histories_deleted
        ),
    );
    Ok(())
}

/// An instant given as RFC 3339 or a plain date (midnight UTC), as Unix milliseconds.
fn parse_instant(flag: &'static str, value: &str) -> Result<i64, CliError> {
    let instant = OffsetDateTime::parse(value, &Rfc3339)
        .or_else(|_| OffsetDateTime::parse(&format!("{value}T00:00:00Z"), &Rfc3339))
        .map_err(|_| CliError::BadInstant {
            flag,
            value: value.to_owned(),
        })?;
    Ok(i64::try_from(instant.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX))
}

fn audit_filter(args: &AuditFilterArgs) -> Result<AuditFilter, CliError> {
    Ok(AuditFilter {
        user: args.user.clone(),
        action: args.action.clone(),
        since: args
            .since
            .as_deref()
            .map(|value| parse_instant("--since", value))
            .transpose()?,
        until: args
            .until
            .as_deref()
            .map(|value| parse_instant("--until", value))
            .transpose()?,
        target: None,
    })
}
