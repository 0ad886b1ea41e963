//! `latchkey backup` and `latchkey restore` (docs/operations.md#backups).

use crate::cli::{BackupArgs, RestoreArgs};
use crate::context::Context;
use crate::error::CliError;
use latchkey_core::{OsRng, SystemClock};
use latchkey_server::Config;
use latchkey_services::backup;
use latchkey_store::{Db, PoolOptions, Scope};
use serde_json::json;
use std::io::{BufReader, Write};
use std::sync::Arc;

fn master(config: &Config) -> Result<latchkey_keys::MasterKey, CliError> {
    latchkey_keys::load_master_key(config.master_key_input(), &config.keys_dir, false)
        .map(|(key, _)| key)
        .map_err(CliError::KeyRing)
}

fn file_error(flag: &'static str, path: &std::path::Path) -> impl FnOnce(std::io::Error) -> CliError {
    let path = path.to_path_buf();
    move |source| CliError::File { flag, path, source }
}

pub fn run_backup(ctx: &Context<'_>, args: &BackupArgs) -> Result<(), CliError> {
    let master = master(ctx.config)?;
    let mut ids = Vec::new();
    for slug in &args.tenants {
        ids.push(ctx.tenant(slug)?.id);
    }
    let scope = if ids.is_empty() {
        Scope::All
    } else {
        Scope::Tenants(&ids)
    };
    let started = std::time::Instant::now();
    let mut out: Box<dyn Write> = if args.output.as_os_str() == "-" {
        Box::new(std::io::BufWriter::new(std::io::stdout().lock()))
    } else {
        use std::os::unix::fs::OpenOptionsExt as _;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&args.output)
            .map_err(file_error("--output", &args.output))?;
        Box::new(std::io::BufWriter::new(file))
    };
    let write = if args.vault {
        backup::write_vault
    } else {
        backup::write
    };
    let summary = write(
        &ctx.db,
        &master,
        scope,
        &args.tenants,
        ctx.now_millis(),
        &mut *out,
    )
    .map_err(CliError::Backup)?;
    drop(out);
    let seconds = started.elapsed().as_secs_f64();
    if args.output.as_os_str() == "-" {
        eprintln!(
            "backed up {} rows of {} tables in {seconds:.1} s",
            summary.rows,
            summary.tables.len()
        );
    } else if args.out {
        println!(
            "{}",
            json!({"rows": summary.rows, "tables": summary.tables, "chunks": summary.chunks, "seconds": seconds})
        );
    } else {
        println!(
            "backed up {} rows of {} tables to {} in {seconds:.1} s, encrypted under master key {}",
            summary.rows,
            summary.tables.len(),
            args.output.display(),
            master.id
        );
    }
    Ok(())
}

/// Restore opens the database itself: it must not be migrated past the backup's schema first.
pub fn run_restore(config: &Config, args: &RestoreArgs) -> Result<(), CliError> {
    let master = master(config)?;
    let (setting, url) =
        crate::context::region_url(config, args.region.as_deref().unwrap_or(&config.region))?;
    let db = Db::open(
        &url,
        &PoolOptions::for_url(&url),
        Arc::new(SystemClock),
        Arc::new(OsRng),
    )
    .map_err(|source| CliError::DatabaseOpen {
        setting,
        url: url.redacted(),
        source,
    })?;
    let mut input: Box<dyn std::io::BufRead> = if args.input.as_os_str() == "-" {
        Box::new(BufReader::new(std::io::stdin().lock()))
    } else {
        let file = std::fs::File::open(&args.input).map_err(file_error("--input", &args.input))?;
        Box::new(BufReader::new(file))
    };
    let started = std::time::Instant::now();
    let header = backup::read_header(&mut *input).map_err(CliError::Backup)?;
    // The vault is checked before anything is written: a wrong file must change nothing.
    let vault = match &args.vault {
        Some(path) => {
            let file = std::fs::File::open(path).map_err(file_error("--vault", path))?;
            let mut vault = BufReader::new(file);
            let header = backup::read_header(&mut vault).map_err(CliError::Backup)?;
            if !header.is_vault() {
                return Err(CliError::Backup(latchkey_services::ServiceError::Backup(
                    "--vault names a data backup, not a key vault".into(),
                )));
            }
            Some((header, vault))
        }
        None => None,
    };
    let summary = backup::restore(&db, &master, &header, &mut *input).map_err(CliError::Backup)?;
    let keys = match vault {
        Some((header, mut vault)) => {
            Some(backup::restore_vault(&db, &master, &header, &mut vault).map_err(CliError::Backup)?)
        }
        None => None,
    };
    match keys {
        Some((written, skipped)) => {
            eprintln!(
                "restored {written} users' keys from the vault ({skipped} of users not in the data skipped)"
            );
        }
        None => eprintln!("no --vault: the users' personal data stays sealed (docs/privacy.md#erasure)"),
    }
    let seconds = started.elapsed().as_secs_f64();
    if args.out {
        println!(
            "{}",
            json!({"rows": summary.rows, "tables": summary.tables, "schema": header.schema, "source": header.source, "seconds": seconds})
        );
    } else {
        println!(
            "restored {} rows of {} tables into {} in {seconds:.1} s (backup of {} taken {} from {}, schema {})",
            summary.rows,
            summary.tables.len(),
            url.redacted(),
            if header.tenants.is_empty() {
                "everything".to_owned()
            } else {
                header.tenants.join(", ")
            },
            time::OffsetDateTime::from_unix_timestamp(header.created_at / 1000)
                .map(|t| t.to_string())
                .unwrap_or_default(),
            header.source,
            header.schema,
        );
    }
    Ok(())
}
