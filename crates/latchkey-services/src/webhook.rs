//! Signed webhook calls: the tenant's sealed HMAC key and the signature header receivers check.

use crate::ServiceError;
use latchkey_core::TenantId;
use latchkey_keys::{Aad, KeyRing};
use latchkey_store::{Db, TenantRepo};

/// The webhook's HMAC key as stored in the tenant's policy.
pub fn secret_aad(t: &TenantId) -> Aad<'_> {
    Aad {
        tenant: t.as_str(),
        table: "tenants",
        column: "risk_webhook_secret",
        row: t.as_str(),
    }
}

/// The tenant's webhook key, unsealed.
pub fn secret(db: &Db, keys: &KeyRing, t: &TenantId) -> Result<Vec<u8>, ServiceError> {
    let tenant = db.tenant(t)?.ok_or(ServiceError::TenantGone)?;
    let sealed = tenant
        .policy
        .risk
        .webhook_secret_sealed
        .ok_or(ServiceError::NoWebhookSecret)?;
    Ok(keys.open_sealed(t, secret_aad(t), &sealed)?)
}

/// `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`: the receiver recomputes it with the
/// shared secret and refuses stale timestamps (replays).
pub fn signature(secret: &[u8], timestamp: i64, body: &str) -> String {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
    let tag = aws_lc_rs::hmac::sign(&key, format!("{timestamp}.{body}").as_bytes());
    format!("t={timestamp},v1={}", hex::encode(tag.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_signatures_cover_time_and_body() {
        let s = signature(b"k", 1_700_000_000, "{}");
        assert!(s.starts_with("t=1700000000,v1="));
        assert_ne!(s, signature(b"k", 1_700_000_001, "{}"));
        assert_ne!(s, signature(b"k", 1_700_000_000, "{ }"));
        assert_ne!(s, signature(b"other", 1_700_000_000, "{}"));
        // RFC 4231 test case 2 (key "Jefe").
        let tag = aws_lc_rs::hmac::sign(
            &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, b"Jefe"),
            b"what do ya want for nothing?",
        );
        assert_eq!(
            hex::encode(tag.as_ref()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
