//! The backup file: one line of JSON saying what it is (format version, schema version,
//! source, scope, the wrapped file key), then sealed chunks, one per line. The rows are JSON
//! lines (`[table, row]`) in reference order, cut into chunks of about 1 MiB and sealed with a
//! fresh AES-256-GCM key wrapped under the master key; each chunk's associated data binds the
//! header's digest and the chunk's position, and the last chunk is marked, so a changed
//! header, reordered or dropped chunks, or a truncated file are refused. Restoring needs the
//! master key anyway: the data keys inside the backup are wrapped under it.

use crate::ServiceError;
use latchkey_keys::{Aad, DataKey, MasterKey};
use latchkey_store::{Db, Part, Row, Scope, StoreError};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, Write};

pub const FORMAT: &str = "latchkey-backup";
pub const VERSION: u32 = 1;
/// Plaintext bytes per chunk.
const CHUNK: usize = 1 << 20;
/// A sealed chunk line is at most this long (base64 of a chunk, a row that alone exceeds the
/// chunk size, and the envelope): a larger line is not read into memory.
const MAX_LINE: usize = 64 << 20;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Header {
    pub format: String,
    pub version: u32,
    /// Unix milliseconds.
    pub created_at: i64,
    /// `sqlite` or `postgres`.
    pub source: String,
    /// The newest migration of the database it was taken from.
    pub schema: String,
    /// Empty for the whole installation, else the tenants' slugs.
    pub tenants: Vec<String>,
    /// The master key the file key is wrapped under.
    pub kek_id: String,
    pub key_id: String,
    pub wrapped_key: String,
    /// `vault` for a key vault (the users' keys alone, `latchkey backup --vault`); absent for
    /// data, which holds no user's key (docs/privacy.md#erasure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part: Option<String>,
}

impl Header {
    /// Whether this is a key vault rather than data.
    pub fn is_vault(&self) -> bool {
        self.part.as_deref() == Some("vault")
    }
}

impl Header {
    fn digest(&self) -> Result<String, ServiceError> {
        let json = serde_json::to_vec(self).map_err(|e| ServiceError::Backup(e.to_string()))?;
        Ok(latchkey_core::sha256_hex(&json))
    }
}

/// What a backup or a restore moved.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Summary {
    pub tables: Vec<(String, usize)>,
    pub rows: usize,
    pub chunks: usize,
}

fn aad<'a>(digest: &'a str, position: &'a str) -> Aad<'a> {
    Aad {
        tenant: "backup",
        table: digest,
        column: "chunk",
        row: position,
    }
}

fn store(e: impl std::fmt::Display) -> StoreError {
    StoreError::Database(e.to_string())
}

/// Writes a backup of `scope` (`slugs` names its tenants) to `out`: every table but the users'
/// keys, so a user erased later can't be opened from it (see `write_vault`).
pub fn write(
    db: &Db,
    master: &MasterKey,
    scope: Scope<'_>,
    slugs: &[String],
    now: i64,
    out: &mut dyn Write,
) -> Result<Summary, ServiceError> {
    write_part(db, master, (scope, Part::Data), slugs, now, out)
}

/// Writes the key vault of `scope`: each user's key (wrapped under the tenant's data key, so
/// it opens only with the master key too). Keep only the newest vault: a vault written before
/// an erasure still holds the erased user's key.
pub fn write_vault(
    db: &Db,
    master: &MasterKey,
    scope: Scope<'_>,
    slugs: &[String],
    now: i64,
    out: &mut dyn Write,
) -> Result<Summary, ServiceError> {
    write_part(db, master, (scope, Part::Vault), slugs, now, out)
}

fn write_part(
    db: &Db,
    master: &MasterKey,
    (scope, part): (Scope<'_>, Part),
    slugs: &[String],
    now: i64,
    out: &mut dyn Write,
) -> Result<Summary, ServiceError> {
    let key = DataKey::generate()?;
    let header = Header {
        format: FORMAT.into(),
        version: VERSION,
        created_at: now,
        source: match db.url() {
            latchkey_store::DatabaseUrl::Sqlite(_) => "sqlite".into(),
            latchkey_store::DatabaseUrl::Postgres(_) => "postgres".into(),
        },
        schema: db
            .schema_version()?
            .ok_or_else(|| ServiceError::Backup("the database has no schema yet".into()))?,
        tenants: slugs.to_vec(),
        kek_id: master.id.clone(),
        key_id: key.id.clone(),
        wrapped_key: master.wrap(&key, "backup")?,
        part: (part == Part::Vault).then(|| "vault".to_owned()),
    };
    let digest = header.digest()?;
    serde_json::to_writer(&mut *out, &header).map_err(|e| ServiceError::Backup(e.to_string()))?;
    out.write_all(b"\n").map_err(store)?;
    let state = std::cell::RefCell::new(Sink {
        out,
        key: &key,
        digest: &digest,
        buf: Vec::with_capacity(CHUNK + 4096),
        summary: Summary::default(),
    });
    db.dump_part(
        scope,
        part,
        &mut |t| {
            state.borrow_mut().summary.tables.push((t.name.clone(), 0));
            Ok(())
        },
        &mut |t, row| {
            let mut s = state.borrow_mut();
            serde_json::to_writer(&mut s.buf, &(t.name.as_str(), &row)).map_err(store)?;
            s.buf.push(b'\n');
            s.summary.rows += 1;
            if let Some((_, n)) = s.summary.tables.last_mut() {
                *n += 1;
            }
            if s.buf.len() >= CHUNK {
                s.seal(false)?;
            }
            Ok(())
        },
    )?;
    let mut s = state.into_inner();
    s.seal(true)?;
    s.out.flush().map_err(store)?;
    Ok(s.summary)
}

/// Where `write` puts chunks: the rows not sealed yet, and what was written.
struct Sink<'a> {
    out: &'a mut dyn Write,
    key: &'a DataKey,
    digest: &'a str,
    buf: Vec<u8>,
    summary: Summary,
}

impl Sink<'_> {
    fn seal(&mut self, last: bool) -> Result<(), StoreError> {
        let position = format!("{}{}", self.summary.chunks, if last { ":end" } else { "" });
        let sealed = self
            .key
            .seal(aad(self.digest, &position), &self.buf)
            .map_err(store)?;
        self.out.write_all(sealed.as_bytes()).map_err(store)?;
        self.out.write_all(b"\n").map_err(store)?;
        self.summary.chunks += 1;
        self.buf.clear();
        Ok(())
    }
}

/// Reads the header line of a backup, refusing what is not one this version reads.
pub fn read_header(input: &mut dyn BufRead) -> Result<Header, ServiceError> {
    let line = read_line(input)?.ok_or_else(|| ServiceError::Backup("the file is empty".into()))?;
    let header: Header = serde_json::from_str(&line)
        .map_err(|e| ServiceError::Backup(format!("not a Latchkey backup (header: {e})")))?;
    if header.format != FORMAT {
        return Err(ServiceError::Backup(format!(
            "not a Latchkey backup (format {:?})",
            header.format
        )));
    }
    if header.version != VERSION {
        return Err(ServiceError::Backup(format!(
            "backup format version {} is not {VERSION}, the one this Latchkey reads",
            header.version
        )));
    }
    Ok(header)
}

fn read_line(input: &mut dyn BufRead) -> Result<Option<String>, ServiceError> {
    let mut line = Vec::new();
    let n = std::io::Read::take(&mut *input, MAX_LINE as u64 + 1)
        .read_until(b'\n', &mut line)
        .map_err(|e| ServiceError::Backup(format!("reading the backup: {e}")))?;
    if n == 0 {
        return Ok(None);
    }
    if line.len() > MAX_LINE {
        return Err(ServiceError::Backup("a line of the backup is too long".into()));
    }
    if line.last() == Some(&b'\n') {
        line.pop();
    }
    String::from_utf8(line)
        .map(Some)
        .map_err(|_| ServiceError::Backup("the backup is not text".into()))
}

/// The rows of a backup, decrypted chunk by chunk as they are asked for.
struct Rows<'a> {
    input: &'a mut dyn BufRead,
    key: DataKey,
    digest: String,
    chunk: usize,
    pending: std::vec::IntoIter<(String, Row)>,
    ended: bool,
}

impl Rows<'_> {
    fn next(&mut self) -> Result<Option<(String, Row)>, ServiceError> {
        loop {
            if let Some(row) = self.pending.next() {
                return Ok(Some(row));
            }
            if self.ended {
                return match read_line(self.input)? {
                    None => Ok(None),
                    Some(_) => Err(ServiceError::Backup("data after the last chunk".into())),
                };
            }
            let line = read_line(self.input)?
                .ok_or_else(|| ServiceError::Backup("the backup is truncated (no last chunk)".into()))?;
            let (plain, last) = [false, true]
                .into_iter()
                .find_map(|last| {
                    let position = format!("{}{}", self.chunk, if last { ":end" } else { "" });
                    self.key
                        .open(aad(&self.digest, &position), &line)
                        .ok()
                        .map(|p| (p, last))
                })
                .ok_or_else(|| {
                    ServiceError::Backup(format!(
                        "chunk {} does not open: the file was changed, reordered or is from another backup",
                        self.chunk + 1
                    ))
                })?;
            self.chunk += 1;
            self.ended = last;
            let mut rows = Vec::new();
            for l in plain.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                let (table, row): (String, Row) = serde_json::from_slice(l).map_err(|e| {
                    ServiceError::Backup(format!("chunk {}: unreadable row: {e}", self.chunk))
                })?;
                rows.push((table, row));
            }
            self.pending = rows.into_iter();
        }
    }
}

/// The rows after `header`, decrypted as they are read.
fn open_rows<'a>(
    master: &MasterKey,
    header: &Header,
    input: &'a mut dyn BufRead,
) -> Result<Rows<'a>, ServiceError> {
    if header.kek_id != master.id {
        return Err(ServiceError::Backup(format!(
            "the backup is encrypted under master key {}, this is {}: restore with the master key the data was under",
            header.kek_id, master.id
        )));
    }
    Ok(Rows {
        input,
        key: master.unwrap_key(&header.wrapped_key, "backup", &header.key_id)?,
        digest: header.digest()?,
        chunk: 0,
        pending: Vec::new().into_iter(),
        ended: false,
    })
}

/// Restores a key vault (its header read from `input`) into a database just restored from
/// data: the keys of users the data holds; a user erased since the vault was written has no
/// key in a newer vault, and stays unopenable. Returns (keys written, keys skipped).
pub fn restore_vault(
    db: &Db,
    master: &MasterKey,
    header: &Header,
    input: &mut dyn BufRead,
) -> Result<(usize, usize), ServiceError> {
    if !header.is_vault() {
        return Err(ServiceError::Backup(
            "--vault names a data backup, not a key vault".into(),
        ));
    }
    let mut rows = open_rows(master, header, input)?;
    let mut failure = None;
    let done = db.restore_vault(&mut || match rows.next() {
        Ok(r) => Ok(r),
        Err(e) => {
            let message = e.to_string();
            failure = Some(e);
            Err(StoreError::Database(message))
        }
    });
    match (done, failure) {
        (Ok(n), _) => Ok(n),
        (Err(_), Some(e)) => Err(e),
        (Err(e), None) => Err(e.into()),
    }
}

/// Restores the backup whose header was read from `input` into `db`, a database without
/// tenants: migrates it to the backup's schema, writes every row in one transaction, then
/// applies the migrations that came after.
pub fn restore(
    db: &Db,
    master: &MasterKey,
    header: &Header,
    input: &mut dyn BufRead,
) -> Result<Summary, ServiceError> {
    if header.is_vault() {
        return Err(ServiceError::Backup(
            "this is a key vault, not data: restore the data, with --vault naming this file".into(),
        ));
    }
    let mut rows = open_rows(master, header, input)?;
    db.migrate_to(&header.schema)?;
    let mut failure = None;
    let written = db.restore(header.tenants.is_empty(), &mut || match rows.next() {
        Ok(r) => Ok(r),
        Err(e) => {
            let message = e.to_string();
            failure = Some(e);
            Err(StoreError::Database(message))
        }
    });
    let tables = match (written, failure) {
        (Ok(t), _) => t,
        (Err(_), Some(e)) => return Err(e),
        (Err(e), None) => return Err(e.into()),
    };
    db.migrate()?;
    Ok(Summary {
        rows: tables.iter().map(|(_, n)| n).sum(),
        tables,
        chunks: rows.chunk,
    })
}
