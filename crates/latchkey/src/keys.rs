//! `latchkey keys …`: the signing key ring and the master key, as operators drive them.

use crate::CliError;
use crate::admin::{actor, find_tenant};
use crate::cli::KeysCmd;
use crate::output::{print_json, rfc3339};
use latchkey_core::{Clock, SystemClock};
use latchkey_keys::{KeyError, KeyRing, MasterKey, MasterKeySource, jwt};
use latchkey_server::Config;
use latchkey_store::Db;
use serde_json::json;
use std::sync::Arc;

impl From<KeyError> for CliError {
    fn from(e: KeyError) -> Self {
        match e {
            KeyError::Store(s) => CliError::from(s),
            KeyError::UnknownKey(_) | KeyError::Refused(_) => CliError::Input(e.to_string()),
            other => CliError::Runtime(other.to_string()),
        }
    }
}

/// Opens the key ring for the configured database and master key.
pub fn open_ring(config: &Config, db: &Db) -> Result<KeyRing, CliError> {
    latchkey_server::open_keys(config, db, Arc::new(SystemClock))
        .map_err(|e| CliError::Runtime(e.to_string()))
}

fn key_json(k: &latchkey_keys::RingKey) -> serde_json::Value {
    json!({
        "kid": k.kid, "alg": k.alg, "state": k.state, "created_at": rfc3339(k.created_at),
        "activated_at": k.activated_at.map(rfc3339), "retired_at": k.retired_at.map(rfc3339),
        "removed_at": k.removed_at.map(rfc3339),
    })
}

pub fn run(config: &Config, db: &Db, cmd: KeysCmd) -> Result<(), CliError> {
    if let KeysCmd::RotateMaster { out } = cmd {
        return rotate_master(config, db, out.json);
    }
    let ring = open_ring(config, db)?;
    let done = |json: bool, v: serde_json::Value, text: String| {
        if json {
            print_json(&v);
        } else {
            println!("{text}");
        }
    };
    match cmd {
        KeysCmd::List { t, out } => {
            let t = find_tenant(db, &t.tenant)?;
            let keys = ring.list(&t.id)?;
            if out.json {
                print_json(&keys.iter().map(key_json).collect());
            } else {
                for k in keys {
                    println!(
                        "{}\t{}\t{}\tcreated {}",
                        k.kid,
                        k.alg,
                        k.state.as_str(),
                        rfc3339(k.created_at)
                    );
                }
            }
        }
        KeysCmd::Rotate { t, alg, out } => {
            let t = find_tenant(db, &t.tenant)?;
            let kid = ring.rotate(&t.id, alg, &actor())?;
            done(
                out.json,
                json!({"kid": kid, "alg": alg, "state": "pending"}),
                format!("{kid}\t{alg}\tpending"),
            );
        }
        KeysCmd::Activate { t, kid, out } => {
            let t = find_tenant(db, &t.tenant)?;
            ring.activate(&t.id, &kid, &actor())?;
            done(
                out.json,
                json!({"kid": kid, "state": "active"}),
                format!("{kid} is active"),
            );
        }
        KeysCmd::Retire { t, kid, out } => {
            let t = find_tenant(db, &t.tenant)?;
            ring.retire(&t.id, &kid, &actor())?;
            done(
                out.json,
                json!({"kid": kid, "state": "retired"}),
                format!("{kid} is retired"),
            );
        }
        KeysCmd::Revoke { t, kid, out } => {
            let t = find_tenant(db, &t.tenant)?;
            let replacement = ring.revoke(&t.id, &kid, &actor())?;
            let text = match &replacement {
                Some(r) => format!("{kid} is revoked; {r} now signs in its place"),
                None => format!("{kid} is revoked"),
            };
            done(
                out.json,
                json!({"kid": kid, "state": "revoked", "replacement": replacement}),
                text,
            );
        }
        KeysCmd::RotateDek { t, out } => {
            let t = find_tenant(db, &t.tenant)?;
            let (dek, resealed) = ring.rotate_dek(&t.id, &actor(), 100, None)?;
            done(
                out.json,
                json!({"data_key": dek, "resealed": resealed}),
                format!("data key {dek} now seals everything; {resealed} values re-encrypted"),
            );
        }
        KeysCmd::TestToken { t, alg } => {
            let t = find_tenant(db, &t.tenant)?;
            let now = SystemClock.now_millis() / 1000;
            let issuer = config.issuer(&t.slug);
            let claims = json!({"iss": issuer, "aud": "latchkey-test-token", "sub": "latchkey-test-token",
                "iat": now, "nbf": now, "exp": now + 300});
            let token = ring.sign(&t.id, alg, "JWT", &claims)?;
            // Prove the round trip before handing it out.
            let expect = jwt::Expect {
                issuer: &issuer,
                audience: Some("latchkey-test-token"),
                typ: None,
                now,
                leeway_secs: 0,
            };
            ring.verify(&t.id, &token, &expect)?;
            println!("{token}");
        }
        KeysCmd::RotateMaster { .. } => unreachable!("handled above"),
    }
    Ok(())
}

/// New master key: written beside the old one first, every data key re-wrapped in one
/// transaction, then the files swapped, keeping the old key as `master.key.replaced-<time>`.
fn rotate_master(config: &Config, db: &Db, json: bool) -> Result<(), CliError> {
    let env = config
        .master_key
        .as_ref()
        .map(latchkey_server::config::Secret::expose);
    let has_data = KeyRing::has_encrypted_data(db)?;
    let (old, source) = latchkey_keys::load_master_key(env, &config.keys_dir, !has_data)?;
    // Opening the ring proves the current key is the right one before anything changes.
    drop(KeyRing::open(
        db.clone(),
        MasterKey::from_base64(&old.to_base64())?,
        Arc::new(SystemClock),
    )?);
    let new = MasterKey::generate()?;
    let staged = config.keys_dir.join("master.key.new");
    if staged.exists() {
        return Err(CliError::Input(format!(
            "{} exists from an unfinished rotation; move it away first",
            staged.display()
        )));
    }
    latchkey_keys::write_key_file(&staged, &new)?;
    let rewrapped = match KeyRing::rotate_master(db, &old, &new, &actor()) {
        Ok(n) => n,
        Err(e) => {
            let _ = std::fs::remove_file(&staged);
            return Err(e.into());
        }
    };
    let stamp = rfc3339(SystemClock.now_millis()).replace([':', '.'], "");
    let (message, key_file, backup) = match source {
        MasterKeySource::File(path) | MasterKeySource::Generated(path) => {
            let backup = path.with_file_name(format!("master.key.replaced-{stamp}"));
            std::fs::rename(&path, &backup)
                .and_then(|()| std::fs::rename(&staged, &path))
                .map_err(|e| {
                    CliError::Runtime(format!(
                        "data re-wrapped, but swapping key files failed ({e}); the new key is {}",
                        staged.display()
                    ))
                })?;
            let message = format!(
                "master key {} replaced by {}; old key kept at {}; {rewrapped} data keys re-wrapped",
                old.id,
                new.id,
                backup.display()
            );
            (message, path, Some(backup))
        }
        MasterKeySource::Environment => {
            let message = format!(
                "master key {} replaced by {}; {rewrapped} data keys re-wrapped. The new key is in {}: put its content into LATCHKEY_MASTER_KEY for every node and restart (the old value no longer opens anything)",
                old.id,
                new.id,
                staged.display()
            );
            (message, staged, None)
        }
    };
    if json {
        print_json(&json!({
            "old_kek_id": old.id, "kek_id": new.id, "rewrapped_data_keys": rewrapped,
            "key_file": key_file, "replaced_key_file": backup,
        }));
    } else {
        println!("{message}");
    }
    Ok(())
}
