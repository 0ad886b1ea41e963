//! `latchkey domain …`: domains a tenant claims and proves it controls (a DNS TXT record or an
//! HTTP file), as `…/admin/t/{tenant}/domains` does. `verify` checks with the configured DNS
//! resolver (`dns_resolver`) and, for HTTP, through the outbound guard under
//! `outbound_allow_private` (the domain is the tenant's choice).

use crate::cli::DomainCmd;
use crate::commands::saml::block_on;
use crate::context::Context;
use crate::error::CliError;
use crate::output::{done, print_json};
use latchkey_services::domains;
use latchkey_store::{DomainMethod, DomainRepo, TenantDomain};
use serde_json::{Value, json};

pub fn run(ctx: &Context<'_>, cmd: DomainCmd) -> Result<(), CliError> {
    match cmd {
        DomainCmd::Add {
            tenant,
            domain,
            method,
            out,
        } => {
            let t = ctx.tenant(tenant.slug())?;
            let domain = domains::normalize(&domain).map_err(CliError::BadFlag)?;
            let method = if method == "http" {
                DomainMethod::Http
            } else {
                DomainMethod::Dns
            };
            let token = latchkey_core::random_token(&latchkey_core::OsRng, 24);
            let made = ctx.db.add_domain(&t.id, ctx.actor(), &domain, method, &token)?;
            let text = match method {
                DomainMethod::Dns => format!(
                    "Publish the TXT record {} with the value {}",
                    domains::dns_name(&made.domain),
                    domains::dns_value(&made.token)
                ),
                DomainMethod::Http => format!(
                    "Serve {} with the body {}",
                    domains::http_url(&made.domain),
                    made.token
                ),
            };
            done(out.json, &challenge(&made), &text);
            Ok(())
        }
        DomainCmd::List { tenant, out } => {
            let t = ctx.tenant(tenant.slug())?;
            let all = ctx.db.list_domains(&t.id)?;
            if out.json {
                print_json(&Value::Array(all.iter().map(challenge).collect()));
            } else {
                for d in all {
                    let state = d.verified_at.map_or("unverified", |_| "verified");
                    println!("{}\t{}\t{state}", d.domain, d.method.as_str());
                }
            }
            Ok(())
        }
        DomainCmd::Verify { tenant, domain, out } => verify(ctx, tenant.slug(), &domain, out.json),
        DomainCmd::Remove { tenant, domain, out } => {
            let t = ctx.tenant(tenant.slug())?;
            let domain = domains::normalize(&domain).map_err(CliError::BadFlag)?;
            ctx.db.remove_domain(&t.id, ctx.actor(), &domain)?;
            done(
                out.json,
                &json!({"deleted": "domain", "domain": domain}),
                &format!("Removed {domain}"),
            );
            Ok(())
        }
    }
}

fn challenge(d: &TenantDomain) -> Value {
    let mut v = serde_json::to_value(d).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.insert("dns_name".into(), json!(domains::dns_name(&d.domain)));
        o.insert("dns_value".into(), json!(domains::dns_value(&d.token)));
        o.insert("http_url".into(), json!(domains::http_url(&d.domain)));
        o.insert("http_body".into(), json!(d.token));
    }
    v
}

/// Checks the challenge now and records the outcome; exit 1 when it is not proven.
fn verify(ctx: &Context<'_>, slug: &str, domain: &str, json: bool) -> Result<(), CliError> {
    let t = ctx.tenant(slug)?;
    let domain = domains::normalize(domain).map_err(CliError::BadFlag)?;
    let claim = ctx
        .db
        .tenant_domain(&t.id, &domain)?
        .ok_or_else(|| CliError::NotInTenant {
            what: "domain",
            name: domain.clone(),
            tenant: t.slug.clone(),
        })?;
    let config = ctx.config;
    let checked = block_on(async {
        match claim.method {
            DomainMethod::Dns => domains::check_dns(config.dns_resolver, &claim.domain, &claim.token).await,
            DomainMethod::Http => {
                let policy = &config.outbound_allow_private;
                domains::check_http(policy, config.domain_check_http_addr, &claim.domain, &claim.token).await
            }
        }
    })?;
    let outcome = checked.as_ref().map_err(domains::CheckFailure::message).copied();
    let after = ctx
        .db
        .record_domain_check(&t.id, ctx.actor(), &domain, outcome.clone())?;
    let mut v = challenge(&after);
    v["verified"] = json!(outcome.is_ok());
    match outcome {
        Ok(()) => {
            done(json, &v, &format!("{domain} is verified"));
            Ok(())
        }
        Err(reason) => {
            if json {
                v["reason"] = json!(checked.err().map(|f| f.code()));
                print_json(&v);
            }
            Err(CliError::DomainUnverified { domain, reason })
        }
    }
}
