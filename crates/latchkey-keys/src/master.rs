//! Where the master key comes from: `LATCHKEY_MASTER_KEY` (base64), else `master.key` in the keys
//! directory. The file is created (mode 0600) only when the caller says nothing is encrypted yet;
//! a file that others can read is refused.

use crate::{KeyError, MasterKey};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

pub const MASTER_KEY_FILE: &str = "master.key";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MasterKeySource {
    Environment,
    File(PathBuf),
    /// Generated now, because no data was encrypted yet.
    Generated(PathBuf),
}

pub fn load_master_key(
    env_value: Option<&str>,
    keys_dir: &Path,
    may_generate: bool,
) -> Result<(MasterKey, MasterKeySource), KeyError> {
    if let Some(v) = env_value.filter(|v| !v.trim().is_empty()) {
        let key = MasterKey::from_base64(v)
            .map_err(|e| KeyError::MasterKey(format!("LATCHKEY_MASTER_KEY: {e}")))?;
        return Ok((key, MasterKeySource::Environment));
    }
    let path = keys_dir.join(MASTER_KEY_FILE);
    match std::fs::metadata(&path) {
        Ok(meta) => {
            if meta.permissions().mode() & 0o077 != 0 {
                return Err(KeyError::MasterKey(format!(
                    "{} is readable by group or others (mode {:o}); run: chmod 600 {}",
                    path.display(),
                    meta.permissions().mode() & 0o777,
                    path.display()
                )));
            }
            let text = std::fs::read_to_string(&path)
                .map_err(|e| KeyError::MasterKey(format!("cannot read {}: {e}", path.display())))?;
            let key = MasterKey::from_base64(&text)
                .map_err(|e| KeyError::MasterKey(format!("{}: {e}", path.display())))?;
            Ok((key, MasterKeySource::File(path)))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if !may_generate {
                return Err(KeyError::MasterKey(format!(
                    "no LATCHKEY_MASTER_KEY and no {}, but encrypted data exists: restore the master key",
                    path.display()
                )));
            }
            let key = MasterKey::generate()?;
            write_key_file(&path, &key)?;
            Ok((key, MasterKeySource::Generated(path)))
        }
        Err(e) => Err(KeyError::MasterKey(format!(
            "cannot read {}: {e}",
            path.display()
        ))),
    }
}

/// Writes a key file with mode 0600, never replacing an existing file.
pub fn write_key_file(path: &Path, key: &MasterKey) -> Result<(), KeyError> {
    let fail = |e: std::io::Error| KeyError::MasterKey(format!("cannot write {}: {e}", path.display()));
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
        std::fs::create_dir_all(dir).map_err(fail)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(fail)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(fail)?;
    writeln!(f, "{}", key.to_base64()).map_err(fail)?;
    f.sync_all().map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_once_with_mode_0600_then_reads_it_back() {
        let dir = tempfile::tempdir().unwrap();
        let (k1, src) = load_master_key(None, dir.path(), true).unwrap();
        assert!(matches!(src, MasterKeySource::Generated(_)));
        let mode = std::fs::metadata(dir.path().join(MASTER_KEY_FILE))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        let (k2, src) = load_master_key(None, dir.path(), true).unwrap();
        assert_eq!(k1.id, k2.id);
        assert!(matches!(src, MasterKeySource::File(_)));
    }

    #[test]
    fn refuses_a_readable_file_a_missing_file_with_data_and_a_bad_env_value() {
        let dir = tempfile::tempdir().unwrap();
        assert!(
            load_master_key(None, dir.path(), false).is_err(),
            "never generate over encrypted data"
        );
        load_master_key(None, dir.path(), true).unwrap();
        let path = dir.path().join(MASTER_KEY_FILE);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = load_master_key(None, dir.path(), true).unwrap_err().to_string();
        assert!(err.contains("chmod 600"), "{err}");
        assert!(load_master_key(Some("not base64!"), dir.path(), true).is_err());
        let k = MasterKey::generate().unwrap();
        assert_eq!(
            load_master_key(Some(&k.to_base64()), dir.path(), false)
                .unwrap()
                .0
                .id,
            k.id
        );
    }
}
