//! The tamper-evident audit log: walking a tenant's hash chain to prove it intact, and exporting
//! it as JSON lines. Appending happens inside the store's write transactions.

use latchkey_core::Tenant;
use latchkey_core::{AuditEvent, GENESIS_HASH, TenantId};
use latchkey_store::{AuditFilter, AuditRepo, RiskRepo, StoreError};
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

/// Walks the tenant's chain from its anchor (the genesis, or the last event retention deleted):
/// sequence numbers must follow on from it, each row's `prev_hash` must be the previous row's
/// hash, each hash must match the row's content, and the last row must be the recorded head (so
/// removing the newest rows is noticed too).
pub fn verify(store: &dyn AuditRepo, t: &TenantId) -> Result<Verdict, AuditError> {
    let anchor = store.audit_anchor(t)?;
    let mut expected_seq = anchor.seq + 1;
    let mut prev = anchor.hash;
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
            events: u64::try_from(last - anchor.seq).unwrap_or(0),
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
        None if last == 0 && prev == GENESIS_HASH => Ok(Verdict::Intact {
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

/// How `export` writes events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON object per line, every field (the hashes too, so a copy can be verified).
    Jsonl,
    /// RFC 4180 CSV with a header row; `details` as JSON in one column.
    Csv,
}

const CSV_HEADER: &str = "tenant_id,seq,at,actor,action,target,outcome,details,prev_hash,hash";

/// A CSV field: quoted when it holds a comma, quote or line break; a leading `=`, `+`, `-` or
/// `@` is prefixed with `'` so a spreadsheet does not run it as a formula (OWASP CSV injection).
fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

fn write_event(out: &mut dyn Write, e: &AuditEvent, format: Format) -> std::io::Result<()> {
    match format {
        Format::Jsonl => serde_json::to_writer(&mut *out, e).map_err(std::io::Error::from)?,
        Format::Csv => {
            let fields = [
                e.tenant_id.as_str(),
                &e.seq.to_string(),
                &e.at.to_string(),
                &e.actor,
                &e.action,
                &e.target,
                e.outcome.as_str(),
                &e.details.to_string(),
                &e.prev_hash,
                &e.hash,
            ];
            let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
            out.write_all(line.join(",").as_bytes())?;
        }
    }
    out.write_all(b"\n")
}

/// The CSV header row; JSON lines have none.
fn write_header(out: &mut dyn Write, format: Format) -> std::io::Result<()> {
    if format == Format::Csv {
        out.write_all(CSV_HEADER.as_bytes())?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// Writes `events` in `format` (with the CSV header).
pub fn write_events(out: &mut dyn Write, events: &[AuditEvent], format: Format) -> std::io::Result<()> {
    write_header(out, format)?;
    for e in events {
        write_event(out, e, format)?;
    }
    Ok(())
}

/// Writes the tenant's events that match `filter`, oldest first; returns the count.
pub fn export(
    store: &dyn AuditRepo,
    t: &TenantId,
    filter: &AuditFilter,
    format: Format,
    out: &mut dyn Write,
) -> Result<u64, AuditError> {
    write_header(out, format)?;
    let mut after = 0;
    let mut n = 0;
    loop {
        let page = store.audit_search(t, filter, after, PAGE)?;
        for e in &page {
            write_event(out, e, format)?;
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

/// Writes every event of the tenant as JSON lines; returns the count.
pub fn export_jsonl(store: &dyn AuditRepo, t: &TenantId, out: &mut dyn Write) -> Result<u64, AuditError> {
    export(store, t, &AuditFilter::default(), Format::Jsonl, out)
}

/// What a retention pass deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Retained {
    pub audit_events_deleted: u64,
    pub risk_histories_deleted: u64,
}

const DAY_MS: i64 = 86_400_000;

/// Applies the tenant's retention at `now` (Unix ms): audit events older than `audit_days`
/// go as one segment from the start of the chain (the anchor keeps `verify` working, and the
/// deletion is itself an audit event), and risk histories unused for `risk_history_days`.
pub fn apply_retention<S: AuditRepo + RiskRepo>(
    store: &S,
    t: &Tenant,
    now: i64,
) -> Result<Retained, AuditError> {
    let r = &t.policy.retention;
    let audit_cutoff = now - i64::from(r.audit_days.max(1)) * DAY_MS;
    let risk_cutoff = now - i64::from(r.risk_history_days.max(1)) * DAY_MS;
    Ok(Retained {
        audit_events_deleted: store.prune_audit(&t.id, audit_cutoff)?,
        risk_histories_deleted: store.prune_risk_history(&t.id, risk_cutoff)?,
    })
}

#[cfg(test)]
mod tests {
    use super::csv_field;

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        assert_eq!(csv_field("login.success"), "login.success");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=HYPERLINK(1)"), "'=HYPERLINK(1)");
        assert_eq!(csv_field("-1,2"), "\"'-1,2\"");
    }
}
