//! Brute-force defence on `RateCounter` (so it holds across nodes on Redis): per-account
//! exponential back-off after a few failures, a per-address cap on failures across accounts
//! (credential stuffing) and on attempts per minute. Locks last at most 15 minutes: a stranger
//! can slow an account down, never lock it for good (SECURITY-TESTS L8).

use latchkey_core::TenantId;
use latchkey_session::{Ephemeral, Result};
use std::time::Duration;

const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);
const MAX_LOCK: Duration = Duration::from_secs(15 * 60);
/// Failures per account before back-off starts.
const FREE_FAILURES: u64 = 5;
/// Failures per address, across accounts, before the address backs off.
const ADDRESS_FAILURES: u64 = 50;
/// Sign-in attempts per address per minute.
const ADDRESS_ATTEMPTS_PER_MINUTE: u64 = 30;

/// Whether an attempt may proceed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    Open,
    Wait(Duration),
}

/// Back-off after `failures`: 1 s once `free` failures are reached, doubling, at most 15 min.
pub fn backoff(failures: u64, free: u64) -> Option<Duration> {
    let over = failures.checked_sub(free)?;
    let secs = 1u64
        .checked_shl(u32::try_from(over).unwrap_or(u32::MAX))
        .unwrap_or(u64::MAX);
    Some(Duration::from_secs(secs).min(MAX_LOCK))
}

/// Counter keys never hold the raw username.
fn account_key(kind: &str, account: &str) -> String {
    format!(
        "{kind}:acct:{}",
        &latchkey_core::sha256_hex(account.trim().to_lowercase().as_bytes())[..32]
    )
}

pub struct Throttle<'a> {
    pub store: &'a dyn Ephemeral,
    pub tenant: &'a TenantId,
}

impl Throttle<'_> {
    /// Checks the locks and counts the attempt.
    pub async fn check(&self, account: &str, address: &str) -> Result<Gate> {
        for key in [account_key("lock", account), format!("lock:ip:{address}")] {
            if let Some(left) = self.store.window_left(self.tenant, &key).await? {
                return Ok(Gate::Wait(left.max(Duration::from_secs(1))));
            }
        }
        let attempts = self
            .store
            .hit(
                self.tenant,
                &format!("attempts:ip:{address}"),
                Duration::from_secs(60),
            )
            .await?;
        if attempts.count > ADDRESS_ATTEMPTS_PER_MINUTE {
            return Ok(Gate::Wait(attempts.reset_in.max(Duration::from_secs(1))));
        }
        Ok(Gate::Open)
    }

    /// Records a failure and starts the back-off it earns.
    pub async fn failed(&self, account: &str, address: &str) -> Result<()> {
        let n = self
            .store
            .hit(self.tenant, &account_key("fail", account), FAILURE_WINDOW)
            .await?
            .count;
        if let Some(lock) = backoff(n, FREE_FAILURES) {
            self.store
                .hit(self.tenant, &account_key("lock", account), lock)
                .await?;
        }
        let m = self
            .store
            .hit(self.tenant, &format!("fail:ip:{address}"), FAILURE_WINDOW)
            .await?
            .count;
        if let Some(lock) = backoff(m, ADDRESS_FAILURES) {
            self.store
                .hit(self.tenant, &format!("lock:ip:{address}"), lock)
                .await?;
        }
        Ok(())
    }

    /// Failures on the account in the current window (a risk signal).
    pub async fn failures(&self, account: &str) -> Result<u32> {
        let n = self
            .store
            .count(self.tenant, &account_key("fail", account))
            .await?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// A success clears the account's failures (not the address's).
    pub async fn succeeded(&self, account: &str) -> Result<()> {
        self.store.reset(self.tenant, &account_key("fail", account)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff(4, 4), Some(Duration::from_secs(1)));
        assert_eq!(backoff(3, 4), None);
        assert_eq!(backoff(5, 4), Some(Duration::from_secs(2)));
        assert_eq!(backoff(8, 4), Some(Duration::from_secs(16)));
        assert_eq!(backoff(20, 4), Some(MAX_LOCK));
        assert_eq!(backoff(u64::MAX, 4), Some(MAX_LOCK));
    }

    #[test]
    fn account_keys_hide_the_name_and_ignore_case() {
        let k = account_key("fail", "Alice@Example.com");
        assert!(!k.contains("alice"));
        assert_eq!(k, account_key("fail", " alice@example.com"));
    }
}
