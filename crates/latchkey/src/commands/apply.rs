//! `latchkey apply` and `latchkey export`: tenants as code (docs/tenants-as-code.md). The
//! comparing and applying is `latchkey_services::tenant_file`'s, shared with the admin API;
//! here the file is read, the secrets it references are resolved, from the environment or
//! from files next to it, and IdP metadata URLs are fetched.

use crate::cli::{ApplyArgs, ExportArgs};
use crate::context::Context;
use crate::error::CliError;
use crate::output::print_json;
use crate::provision::{SecretSource, read_secret};
use latchkey_core::OsRng;
use latchkey_services::ServiceError;
use latchkey_services::tenant_file::{
    self, Applied, Current, Format, MAX_FILE_BYTES, Metadata, Plan, SecretRef, Secrets,
};
use latchkey_store::TenantRepo;
use serde_json::json;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Resolves `{env: NAME}` from this process's environment and `{file: PATH}` relative to the
/// tenant file's directory.
struct Local {
    dir: PathBuf,
}

impl Secrets for Local {
    fn resolve(&self, at: &str, reference: &SecretRef) -> Result<String, ServiceError> {
        let refuse = |message: String| ServiceError::TenantFile {
            at: at.to_owned(),
            message,
        };
        match reference {
            SecretRef::Env(name) => read_secret(&SecretSource::Env(name)),
            SecretRef::File(path) => read_secret(&SecretSource::File(&self.dir.join(path))),
        }
        .map_err(refuse)
    }
}

/// The file's text (at most `MAX_FILE_BYTES`, more is refused by the parser), its format (JSON
/// for `.json`, else YAML) and the directory its references are relative to.
fn read(path: &Path) -> Result<(String, Format, PathBuf), CliError> {
    let limit = u64::try_from(MAX_FILE_BYTES).unwrap_or(u64::MAX) + 1;
    let mut text = String::new();
    let io = |source| CliError::File {
        flag: "--file",
        path: path.to_owned(),
        source,
    };
    if path == Path::new("-") {
        std::io::stdin()
            .take(limit)
            .read_to_string(&mut text)
            .map_err(io)?;
        return Ok((text, Format::Yaml, PathBuf::from(".")));
    }
    std::fs::File::open(path)
        .and_then(|f| f.take(limit).read_to_string(&mut text))
        .map_err(io)?;
    let json = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json"));
    let dir = path
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    Ok((text, if json { Format::Json } else { Format::Yaml }, dir))
}

pub fn apply(ctx: &Context<'_>, args: &ApplyArgs) -> Result<(), CliError> {
    let (text, format, dir) = read(&args.file)?;
    let file = tenant_file::parse(&text, format).map_err(CliError::TenantFile)?;
    let current = match ctx.db.tenant_by_slug(&file.tenant)? {
        Some(t) => Current::load(&ctx.db, &t)?,
        None if args.create_tenant => Current::empty(),
        None => {
            return Err(CliError::BadFlag(format!(
                "no tenant {:?}; pass --create-tenant to create it from the file",
                file.tenant
            )));
        }
    };
    // Metadata from a URL is fetched on a runtime of the command's own, as `saml add` does, and
    // from wherever the operator's file says (the operator is trusted, as with `saml add`).
    let allow = latchkey_services::OutboundPolicy::allow_all();
    let metadata = super::saml::block_on(Metadata::fetch(&allow, &current, &file, ctx.now_millis()))?
        .map_err(CliError::TenantFile)?;
    let plan = tenant_file::plan(&current, &file, args.prune, &Local { dir }, &metadata)
        .map_err(CliError::TenantFile)?;
    if args.dry_run {
        show(&plan, None, args.out.json);
        return Ok(());
    }
    let ring = if plan.needs_keys() {
        Some(ctx.ring()?)
    } else {
        None
    };
    let applied = tenant_file::apply(&ctx.db, ring.as_ref(), ctx.actor(), &plan, &OsRng)
        .map_err(CliError::TenantFile)?;
    show(&plan, Some(&applied), args.out.json);
    Ok(())
}

/// The plan as a diff, then what was done (and any new secret, shown this once).
fn show(plan: &Plan, applied: Option<&Applied>, json: bool) {
    if json {
        print_json(&json!({
            "tenant": plan.tenant, "dry_run": applied.is_none(), "prune": plan.prune,
            "changes": plan.changes, "kept": plan.kept,
            "applied": applied.map(|a| a.applied),
            "created_clients": applied.map(|a| &a.created_clients),
            "secrets": applied.map(|a| &a.secrets),
        }));
        return;
    }
    for line in plan.lines() {
        println!("{line}");
    }
    let n = plan.changes.len();
    match applied {
        _ if n == 0 => println!("no changes"),
        None => println!("{n} changes planned (dry run: nothing changed)"),
        Some(a) => {
            println!("applied {} changes", a.applied);
            for (name, id) in &a.created_clients {
                println!("client {name}: client_id {id}");
            }
            for s in &a.secrets {
                println!(
                    "client {}: client_secret {} (shown once: only its hash is stored)",
                    s.client, s.client_secret
                );
            }
        }
    }
}

pub fn export(ctx: &Context<'_>, args: &ExportArgs) -> Result<(), CliError> {
    let tenant = ctx.tenant(args.tenant.slug())?;
    let current = Current::load(&ctx.db, &tenant)?;
    let file = tenant_file::export(&current).map_err(CliError::TenantFile)?;
    let format = if args.format == "json" {
        Format::Json
    } else {
        Format::Yaml
    };
    let text = tenant_file::render(&file, format).map_err(CliError::TenantFile)?;
    ctx.audit_read(
        &tenant.id,
        "tenant.export",
        format!("tenant:{}", tenant.id),
        json!({"format": args.format}),
    )?;
    match &args.output {
        Some(path) => std::fs::write(path, text).map_err(|source| CliError::File {
            flag: "--output",
            path: path.clone(),
            source,
        })?,
        None => print!("{text}"),
    }
    Ok(())
}
