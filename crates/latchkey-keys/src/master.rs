//! Where the master key comes from: `LATCHKEY_MASTER_KEY` (base64), or the standard output
//! of `LATCHKEY_MASTER_KEY_COMMAND` (a KMS or secret manager's client, run at start), else
//! `master.key` in the keys directory. The file is created (mode 0600) only when the caller says
//! nothing is encrypted yet; a file that others can read is refused.

use crate::{KeyError, MasterKey};
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub const MASTER_KEY_FILE: &str = "master.key";

/// How long a key command may take (a KMS round trip, a secret manager's login).
pub const KEY_COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// The most a key command may print: a base64 key is 44 bytes; this leaves room for a newline
/// and whitespace, not for a document.
const KEY_COMMAND_MAX_OUTPUT: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MasterKeySource {
    Environment,
    /// The standard output of this program (`LATCHKEY_MASTER_KEY_COMMAND`'s first word).
    Command(String),
    File(PathBuf),
    /// Generated now, because no data was encrypted yet.
    Generated(PathBuf),
}

/// What the configuration says about the master key.
#[derive(Debug, Clone, Copy)]
pub enum KeyInput<'a> {
    /// `LATCHKEY_MASTER_KEY`.
    Value(&'a str),
    /// `LATCHKEY_MASTER_KEY_COMMAND`, split into its program and arguments.
    Command(&'a [String]),
    /// Neither: the key file.
    Unset,
}

pub fn load_master_key(
    input: KeyInput<'_>,
    keys_dir: &Path,
    may_generate: bool,
) -> Result<(MasterKey, MasterKeySource), KeyError> {
    match input {
        KeyInput::Value(v) if !v.trim().is_empty() => {
            let key = MasterKey::from_base64(v)
                .map_err(|e| KeyError::MasterKey(format!("LATCHKEY_MASTER_KEY: {e}")))?;
            return Ok((key, MasterKeySource::Environment));
        }
        KeyInput::Command(argv) => {
            let program = argv.first().cloned().unwrap_or_default();
            let printed = run_key_command(argv, KEY_COMMAND_TIMEOUT)?;
            // The decoder's message could quote part of the output: it is left out.
            let key = MasterKey::from_base64(printed.trim()).map_err(|_| {
                KeyError::MasterKey(format!(
                    "LATCHKEY_MASTER_KEY_COMMAND ({program}) printed no master key: it must print 32 bytes in base64 and nothing else"
                ))
            })?;
            return Ok((key, MasterKeySource::Command(program)));
        }
        KeyInput::Value(_) | KeyInput::Unset => {}
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

/// Runs the key command without a shell (stdin closed, the environment inherited) and returns
/// what it printed. It must exit 0 within `timeout` and print at most 4 KiB; otherwise it is
/// killed and the error carries its exit status and the first line of its standard error,
/// never its standard output (which may hold the key).
pub fn run_key_command(argv: &[String], timeout: Duration) -> Result<String, KeyError> {
    let fail = |what: String| KeyError::MasterKey(format!("LATCHKEY_MASTER_KEY_COMMAND: {what}"));
    let (program, rest) = argv.split_first().ok_or_else(|| fail("empty".into()))?;
    let mut child = Command::new(program)
        .args(rest)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("cannot run {program}: {e}")))?;
    let capture = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(p) = pipe {
                let _ = p.take(KEY_COMMAND_MAX_OUTPUT as u64 + 1).read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = capture(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let err = capture(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(fail(format!(
                    "{program} did not finish within {} s",
                    timeout.as_secs_f32()
                )));
            }
            Err(e) => return Err(fail(format!("waiting for {program}: {e}"))),
        }
    };
    let (out, err) = (out.join().unwrap_or_default(), err.join().unwrap_or_default());
    // Checked first: past the limit the pipe is closed, so the command may also have failed.
    if out.len() > KEY_COMMAND_MAX_OUTPUT {
        return Err(fail(format!(
            "{program} printed more than {KEY_COMMAND_MAX_OUTPUT} bytes"
        )));
    }
    if !status.success() {
        let said = String::from_utf8_lossy(&err);
        let first = said
            .lines()
            .next()
            .unwrap_or("")
            .chars()
            .take(200)
            .collect::<String>();
        return Err(fail(format!("{program} failed ({status}): {first}")));
    }
    String::from_utf8(out).map_err(|_| fail(format!("{program} printed something that is not text")))
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
        let (k1, src) = load_master_key(KeyInput::Unset, dir.path(), true).unwrap();
        assert!(matches!(src, MasterKeySource::Generated(_)));
        let mode = std::fs::metadata(dir.path().join(MASTER_KEY_FILE))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        let (k2, src) = load_master_key(KeyInput::Unset, dir.path(), true).unwrap();
        assert_eq!(k1.id, k2.id);
        assert!(matches!(src, MasterKeySource::File(_)));
    }

    #[test]
    fn refuses_a_readable_file_a_missing_file_with_data_and_a_bad_env_value() {
        let dir = tempfile::tempdir().unwrap();
        assert!(
            load_master_key(KeyInput::Unset, dir.path(), false).is_err(),
            "never generate over encrypted data"
        );
        load_master_key(KeyInput::Unset, dir.path(), true).unwrap();
        let path = dir.path().join(MASTER_KEY_FILE);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = load_master_key(KeyInput::Unset, dir.path(), true)
            .unwrap_err()
            .to_string();
        assert!(err.contains("chmod 600"), "{err}");
        assert!(load_master_key(KeyInput::Value("not base64!"), dir.path(), true).is_err());
        let k = MasterKey::generate().unwrap();
        assert_eq!(
            load_master_key(KeyInput::Value(&k.to_base64()), dir.path(), false)
                .unwrap()
                .0
                .id,
            k.id
        );
    }

    fn argv(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| (*w).to_owned()).collect()
    }

    #[test]
    fn a_key_command_supplies_the_key_and_its_failures_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let k = MasterKey::generate().unwrap();
        let printed = format!("printf '%s\\n' {}", k.to_base64());
        let good = argv(&["sh", "-c", &printed]);
        let (got, src) = load_master_key(KeyInput::Command(&good), dir.path(), false).unwrap();
        assert_eq!((got.id, src), (k.id, MasterKeySource::Command("sh".into())));
        assert!(
            !dir.path().join(MASTER_KEY_FILE).exists(),
            "no key file is written"
        );

        let failing = argv(&[
            "sh",
            "-c",
            "echo s3cr3t-out; echo 'vault: permission denied' >&2; exit 3",
        ]);
        let err = load_master_key(KeyInput::Command(&failing), dir.path(), true)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("permission denied") && err.contains("exit status: 3"),
            "{err}"
        );
        assert!(
            !err.contains("s3cr3t-out"),
            "standard output is never shown: {err}"
        );

        let garbage = argv(&["echo", "not-a-key-but-secret"]);
        let err = load_master_key(KeyInput::Command(&garbage), dir.path(), true)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("printed no master key") && !err.contains("not-a-key"),
            "{err}"
        );

        let missing = argv(&["/nonexistent/kms-client"]);
        let err = load_master_key(KeyInput::Command(&missing), dir.path(), true)
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot run /nonexistent/kms-client"), "{err}");

        let flood = argv(&["sh", "-c", "head -c 100000 /dev/zero"]);
        let err = run_key_command(&flood, Duration::from_secs(5))
            .unwrap_err()
            .to_string();
        assert!(err.contains("more than 4096 bytes"), "{err}");
        assert!(run_key_command(&[], KEY_COMMAND_TIMEOUT).is_err());
    }

    #[test]
    fn a_hanging_key_command_is_killed_at_its_deadline() {
        let started = Instant::now();
        let err = run_key_command(&argv(&["sleep", "10"]), Duration::from_millis(300))
            .unwrap_err()
            .to_string();
        assert!(err.contains("did not finish within 0.3 s"), "{err}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "killed, not waited for"
        );
    }
}
