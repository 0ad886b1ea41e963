//! `latchkey keys …`: the signing key ring and the master key, as operators drive them.

use crate::cli::KeysCmd;
use crate::context::Context;
use crate::error::CliError;
use crate::output::{done, print_json, rfc3339};
use latchkey_keys::{Alg, KeyRing, MasterKey, MasterKeySource, RingKey};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;

pub fn run(ctx: &Context<'_>, cmd: KeysCmd) -> Result<(), CliError> {
    match cmd {
        KeysCmd::RotateMaster { out } => rotate_master(ctx, out.json),
        KeysCmd::List { tenant, out } => list(ctx, tenant.slug(), out.json),
        KeysCmd::Rotate { tenant, alg, out } => {
            let (ring, tenant) = (ctx.ring()?, ctx.tenant(tenant.slug())?);
            let kid = ring.rotate(&tenant.id, alg, ctx.actor())?;
            done(
                out.json,
                &json!({"kid": kid, "alg": alg, "state": "pending"}),
                &format!("{kid}\t{alg}\tpending"),
            );
            Ok(())
        }
        KeysCmd::Activate { tenant, kid, out } => {
            let (ring, tenant) = (ctx.ring()?, ctx.tenant(tenant.slug())?);
            ring.activate(&tenant.id, &kid, ctx.actor())?;
            done(
                out.json,
                &json!({"kid": kid, "state": "active"}),
                &format!("{kid} is active"),
            );
            Ok(())
        }
        KeysCmd::Retire { tenant, kid, out } => {
            let (ring, tenant) = (ctx.ring()?, ctx.tenant(tenant.slug())?);
            ring.retire(&tenant.id, &kid, ctx.actor())?;
            done(
                out.json,
                &json!({"kid": kid, "state": "retired"}),
                &format!("{kid} is retired"),
            );
            Ok(())
        }
        KeysCmd::Revoke { tenant, kid, out } => revoke(ctx, tenant.slug(), &kid, out.json),
        KeysCmd::RotateDek { tenant, out } => rotate_dek(ctx, tenant.slug(), out.json),
        KeysCmd::TestToken { tenant, alg } => test_token(ctx, tenant.slug(), alg),
    }
}

fn key_json(key: &RingKey) -> Value {
    json!({
        "kid": key.kid, "alg": key.alg, "state": key.state, "created_at": rfc3339(key.created_at),
        "activated_at": key.activated_at.map(rfc3339), "retired_at": key.retired_at.map(rfc3339),
        "removed_at": key.removed_at.map(rfc3339),
    })
}

fn list(ctx: &Context<'_>, slug: &str, json: bool) -> Result<(), CliError> {
    let (ring, tenant) = (ctx.ring()?, ctx.tenant(slug)?);
    let keys = ring.list(&tenant.id)?;
    if json {
        print_json(&keys.iter().map(key_json).collect());
    } else {
        for key in keys {
            println!(
                "{}\t{}\t{}\tcreated {}",
                key.kid,
                key.alg,
                key.state.as_str(),
                rfc3339(key.created_at)
            );
        }
    }
    Ok(())
}

/// Emergency removal from JWKS; the next key of the algorithm, if any, signs in its place.
fn revoke(ctx: &Context<'_>, slug: &str, kid: &str, json: bool) -> Result<(), CliError> {
    let (ring, tenant) = (ctx.ring()?, ctx.tenant(slug)?);
    let replacement = ring.revoke(&tenant.id, kid, ctx.actor())?;
    let text = match &replacement {
        Some(successor) => format!("{kid} is revoked; {successor} now signs in its place"),
        None => format!("{kid} is revoked"),
    };
    done(
        json,
        &json!({"kid": kid, "state": "revoked", "replacement": replacement}),
        &text,
    );
    Ok(())
}

/// A new data key for the tenant; values are re-encrypted in batches of 100 (resumable).
fn rotate_dek(ctx: &Context<'_>, slug: &str, json: bool) -> Result<(), CliError> {
    let (ring, tenant) = (ctx.ring()?, ctx.tenant(slug)?);
    let (dek, resealed) = ring.rotate_dek(&tenant.id, ctx.actor(), 100, None)?;
    done(
        json,
        &json!({"data_key": dek, "resealed": resealed}),
        &format!("data key {dek} now seals everything; {resealed} values re-encrypted"),
    );
    Ok(())
}

/// Signs a five-minute token with the active key and verifies it before printing it.
fn test_token(ctx: &Context<'_>, slug: &str, alg: Alg) -> Result<(), CliError> {
    let (ring, tenant) = (ctx.ring()?, ctx.tenant(slug)?);
    println!(
        "{}",
        ring.test_token(&tenant.id, &ctx.issuer(&tenant.slug), alg)?.0
    );
    Ok(())
}

/// New master key: written beside the old one first, every data key re-wrapped in one
/// transaction, then the files swapped, keeping the old key as `master.key.replaced-<time>`.
fn rotate_master(ctx: &Context<'_>, json: bool) -> Result<(), CliError> {
    let config = ctx.config;
    let has_data = KeyRing::has_encrypted_data(&ctx.db)?;
    let (old, source) =
        latchkey_keys::load_master_key(config.master_key_input(), &config.keys_dir, !has_data)?;
    // Opening the ring proves the current key is the right one before anything changes.
    drop(KeyRing::open(
        ctx.db.clone(),
        MasterKey::from_base64(&old.to_base64())?,
        Arc::new(latchkey_core::SystemClock),
    )?);
    let new = MasterKey::generate()?;
    let staged = config.keys_dir.join("master.key.new");
    if staged.exists() {
        return Err(CliError::StagedKeyExists(staged));
    }
    latchkey_keys::write_key_file(&staged, &new)?;
    let rewrapped = match KeyRing::rotate_master(&ctx.db, &old, &new, ctx.actor()) {
        Ok(count) => count,
        Err(e) => {
            let _ = std::fs::remove_file(&staged);
            return Err(e.into());
        }
    };
    let swapped = swap_key_files(ctx, source, staged)?;
    let message = match &swapped.replaced {
        Some(backup) => format!(
            "master key {} replaced by {}; old key kept at {}; {rewrapped} data keys re-wrapped",
            old.id,
            new.id,
            backup.display()
        ),
        None => format!(
            "master key {} replaced by {}; {rewrapped} data keys re-wrapped. The new key is in {}: put its content into LATCHKEY_MASTER_KEY (or the secret LATCHKEY_MASTER_KEY_COMMAND reads) for every node and restart them (nodes reading a key file or a command take the new key by themselves; the old value no longer opens anything)",
            old.id,
            new.id,
            swapped.key_file.display()
        ),
    };
    done(
        json,
        &json!({
            "old_kek_id": old.id, "kek_id": new.id, "rewrapped_data_keys": rewrapped,
            "key_file": swapped.key_file, "replaced_key_file": swapped.replaced,
        }),
        &message,
    );
    Ok(())
}

/// Where the new master key ended up, and where the replaced one was kept (file keys only).
struct Swapped {
    key_file: PathBuf,
    replaced: Option<PathBuf>,
}

/// Puts the staged key in the old one's place when the key came from a file; a key from the
/// environment or a key command stays staged for the operator to deploy.
fn swap_key_files(ctx: &Context<'_>, source: MasterKeySource, staged: PathBuf) -> Result<Swapped, CliError> {
    match source {
        MasterKeySource::File(path) | MasterKeySource::Generated(path) => {
            let stamp = rfc3339(ctx.now_millis()).replace([':', '.'], "");
            let backup = path.with_file_name(format!("master.key.replaced-{stamp}"));
            std::fs::rename(&path, &backup)
                .and_then(|()| std::fs::rename(&staged, &path))
                .map_err(|source| CliError::KeySwap {
                    staged: staged.clone(),
                    source,
                })?;
            Ok(Swapped {
                key_file: path,
                replaced: Some(backup),
            })
        }
        MasterKeySource::Environment | MasterKeySource::Command(_) => Ok(Swapped {
            key_file: staged,
            replaced: None,
        }),
    }
}
