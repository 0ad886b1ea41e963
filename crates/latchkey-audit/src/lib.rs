//! The tamper-evident audit log: walking a tenant's hash chain to prove it intact, and exporting
//! it as JSON lines. Appending happens inside the store's write transactions.

use latchkey_core::{AuditEvent, GENESIS_HASH, TenantId};
use latchkey_store::{AuditRepo, StoreError};
use serde::Serialize;
use std::io::Write;

const PAGE: i64 = 1000;

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("writing the export failed: {0}")]
    Io(#[from] std::io::Error),
}

/// The outcome of walking a chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Verdict {
    Intact {
        events: u64,
        head_hash: String,
    },
    /// The first sequence number at which the chain stops being provably unaltered.
    Broken {
        seq: i64,
        reason: String,
    },
}

/// Walks the tenant's chain from the first event: sequence numbers must be 1, 2, 3…, each row's
/// `prev_hash` must be the previous row's hash, each hash must match the row's content, and the
/// last row must be the recorded head (so removing the newest rows is noticed too).
pub fn verify(store: &dyn AuditRepo, t: &TenantId) -> Result<Verdict, AuditError> {
    let mut expected_seq = 1;
    let mut prev = GENESIS_HASH.to_owned();
    loop {
        let page = store.audit_events(t, expected_seq - 1, PAGE)?;
        for e in &page {
            if let Some(reason) = check_link(e, expected_seq, &prev) {
                return Ok(Verdict::Broken {
                    seq: expected_seq,
                    reason,
                });
            }
            prev.clone_from(&e.hash);
            expected_seq += 1;
        }
        if page.len() < PAGE as usize {
            break;
        }
    }
    let last = expected_seq - 1;
    match store.audit_head(t)? {
        Some((seq, hash)) if seq == last && hash == prev => Ok(Verdict::Intact {
            events: u64::try_from(last).unwrap_or(0),
            head_hash: prev,
        }),
        Some((seq, _)) if seq > last => Ok(Verdict::Broken {
            seq: last + 1,
            reason: format!("events {} to {seq} are missing", last + 1),
        }),
        Some(_) => Ok(Verdict::Broken {
            seq: last,
            reason: "the chain head does not match the last event".into(),
        }),
        None if last == 0 => Ok(Verdict::Intact {
            events: 0,
            head_hash: prev,
        }),
        None => Ok(Verdict::Broken {
            seq: 1,
            reason: "the chain head is missing".into(),
        }),
    }
}

fn check_link(e: &AuditEvent, expected_seq: i64, prev: &str) -> Option<String> {
    if e.seq != expected_seq {
        return Some(format!(
            "expected event {expected_seq}, found {} (events removed or reordered)",
            e.seq
        ));
    }
    if e.prev_hash != prev {
        return Some("prev_hash does not match the previous event's hash".into());
    }
    if e.compute_hash() != e.hash {
        return Some("the event's content does not match its hash (edited)".into());
    }
    None
}

/// Writes every event of the tenant as one JSON object per line, oldest first; returns the count.
pub fn export_jsonl(store: &dyn AuditRepo, t: &TenantId, out: &mut dyn Write) -> Result<u64, AuditError> {
    let mut after = 0;
    let mut n = 0;
    loop {
        let page = store.audit_events(t, after, PAGE)?;
        for e in &page {
            serde_json::to_writer(&mut *out, e).map_err(std::io::Error::from)?;
            out.write_all(b"\n")?;
            after = e.seq;
            n += 1;
        }
        if page.len() < PAGE as usize {
            break;
        }
    }
    out.flush()?;
    Ok(n)
}
