//! The audit chain's row and hash. Each row's hash covers the previous row's hash and the row's
//! canonical JSON, so an edit, a deletion or a reordering breaks every later link.

use crate::{TenantId, UnixMillis};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The `prev_hash` of a chain's first row.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    Failure,
    Denied,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Denied => "denied",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "success" => Some(Outcome::Success),
            "failure" => Some(Outcome::Failure),
            "denied" => Some(Outcome::Denied),
            _ => None,
        }
    }
}

/// What a caller records; the store adds sequence, time and hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAuditEvent {
    /// Who acted: `cli`, `system`, `user:<id>`, `client:<id>`, `admin:<id>`.
    pub actor: String,
    /// Dotted verb: `tenant.create`, `user.update`, `client.rotate_secret`, `login.failure`.
    pub action: String,
    /// What was acted on: `user:<id>`, `client:<client_id>`, `tenant:<id>`.
    pub target: String,
    pub outcome: Outcome,
    /// Context without secrets: before/after values of changed fields and the like.
    pub details: serde_json::Value,
}

impl NewAuditEvent {
    pub fn success(actor: &str, action: &str, target: impl Into<String>, details: serde_json::Value) -> Self {
        Self {
            actor: actor.to_owned(),
            action: action.to_owned(),
            target: target.into(),
            outcome: Outcome::Success,
            details,
        }
    }

    pub fn failure(actor: &str, action: &str, target: impl Into<String>, details: serde_json::Value) -> Self {
        Self {
            outcome: Outcome::Failure,
            ..Self::success(actor, action, target, details)
        }
    }
}

/// One row of a tenant's chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AuditEvent {
    pub tenant_id: TenantId,
    pub seq: i64,
    pub at: UnixMillis,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub outcome: Outcome,
    pub details: serde_json::Value,
    pub prev_hash: String,
    pub hash: String,
}

impl AuditEvent {
    /// SHA-256 over the previous hash and the canonical row (fixed field order; `details` with
    /// sorted keys, which is how `serde_json::Value` serializes objects).
    pub fn compute_hash(&self) -> String {
        #[derive(Serialize)]
        struct Canonical<'a> {
            tenant_id: &'a str,
            seq: i64,
            at: i64,
            actor: &'a str,
            action: &'a str,
            target: &'a str,
            outcome: &'a str,
            details: &'a serde_json::Value,
        }
        let canonical = Canonical {
            tenant_id: self.tenant_id.as_str(),
            seq: self.seq,
            at: self.at,
            actor: &self.actor,
            action: &self.action,
            target: &self.target,
            outcome: self.outcome.as_str(),
            details: &self.details,
        };
        // Serializing plain strings, integers and a Value can't fail.
        let json = serde_json::to_vec(&canonical).unwrap_or_default();
        let mut h = Sha256::new();
        h.update(self.prev_hash.as_bytes());
        h.update(b"\n");
        h.update(&json);
        hex::encode(h.finalize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> AuditEvent {
        let mut e = AuditEvent {
            tenant_id: "t1".into(),
            seq: 1,
            at: 1_700_000_000_000,
            actor: "cli".into(),
            action: "user.create".into(),
            target: "user:u1".into(),
            outcome: Outcome::Success,
            details: serde_json::json!({"username": "alice", "b": 1, "a": 2}),
            prev_hash: GENESIS_HASH.into(),
            hash: String::new(),
        };
        e.hash = e.compute_hash();
        e
    }

    #[test]
    fn hash_changes_with_every_field() {
        let base = event();
        let mut changed = base.clone();
        changed.details = serde_json::json!({"username": "mallory", "b": 1, "a": 2});
        assert_ne!(changed.compute_hash(), base.hash);
        let mut changed = base.clone();
        changed.prev_hash = "1".repeat(64);
        assert_ne!(changed.compute_hash(), base.hash);
        let mut changed = base.clone();
        changed.seq = 2;
        assert_ne!(changed.compute_hash(), base.hash);
        assert_eq!(base.compute_hash(), base.hash);
    }

    #[test]
    fn key_order_in_details_does_not_matter() {
        let mut e = event();
        e.details = serde_json::from_str(r#"{"a":2,"username":"alice","b":1}"#).unwrap();
        assert_eq!(e.compute_hash(), event().hash);
    }
}
