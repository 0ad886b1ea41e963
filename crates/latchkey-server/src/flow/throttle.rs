//! Brute-force defence on `RateCounter` (so it holds across nodes on Redis): per-account
//! exponential back-off after a few failures, and per-client back-off after many failures
//! across accounts (credential stuffing). Successes are never counted against a client, and a
//! tenant's allow-listed networks skip the per-client limit. Locks last at most 15 minutes: a
//! stranger can slow an account down, never lock it for good (SECURITY-TESTS L8).
//!
//! Every check is reserved before the slow verification: an atomic increment of the subject's
//! in-flight counter, released once the outcome is recorded. A check may start only while the
//! failures already counted plus the checks in flight stay within the free ones, or, past them,
//! when it is the only one in flight and no back-off is running; so parallel guesses cannot
//! outrun the count.

use crate::state::AppState;
use crate::web::errors::AppError;
use actix_web::HttpRequest;
use latchkey_core::{Tenant, TenantId};
use latchkey_session::{Ephemeral, Result};
use std::net::IpAddr;
use std::time::Duration;

const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);
const MAX_LOCK: Duration = Duration::from_secs(15 * 60);
/// How long an unreleased reservation (a crashed check) holds its place.
const IN_FLIGHT: Duration = Duration::from_secs(60);
/// How long an attempt may queue behind others in flight before it is told to wait.
const QUEUE_WAIT: Duration = Duration::from_secs(5);
const QUEUE_STEP: Duration = Duration::from_millis(25);

/// Why an attempt can't start now.
enum Blocked {
    /// A back-off runs: answer at once with what is left of it.
    Locked(Duration),
    /// More attempts are in flight than the free failures allow: queue briefly.
    Busy,
}

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
fn account_key(account: &str) -> String {
    format!(
        "acct:{}",
        &latchkey_core::sha256_hex(account.trim().to_lowercase().as_bytes())[..32]
    )
}

/// The client an address stands for (IPv6 by /64), `None` when the tenant allow-lists it.
fn client_key(tenant: &Tenant, address: &str) -> Option<String> {
    let Ok(ip) = address.parse::<IpAddr>() else {
        return Some(format!("ip:{address}"));
    };
    let allowed = tenant
        .policy
        .throttle
        .address_allow
        .iter()
        .filter_map(|net| net.parse::<ipnet::IpNet>().ok())
        .any(|net| net.contains(&ip.to_canonical()));
    (!allowed).then(|| format!("ip:{}", latchkey_risk::throttle_key(ip)))
}

/// The window of the cap on pending sign-ins per client (`pending_signins_per_address`).
pub const PENDING_WINDOW: Duration = Duration::from_secs(15 * 60);

/// Counts one more pending sign-in of `address` (state kept for someone not signed in yet: an
/// OIDC interaction, an outstanding SAML request). Past `cap` in the window, returns how long
/// until the client may start another. A tenant's allow-listed networks are not capped.
pub async fn pending_signin(
    store: &dyn Ephemeral,
    tenant: &Tenant,
    address: &str,
    cap: u64,
) -> Result<Option<Duration>> {
    let Some(client) = client_key(tenant, address) else {
        return Ok(None);
    };
    let hit = store
        .hit(&tenant.id, &format!("pending:{client}"), PENDING_WINDOW)
        .await?;
    if hit.count == cap + 1 {
        tracing::info!(tenant = %tenant.slug, cap, "pending sign-ins capped for a client address");
    }
    Ok((hit.count > cap).then(|| hit.reset_in.max(Duration::from_secs(1))))
}

/// Admits one more pending sign-in from this request's client, or refuses it with a 429 page
/// and `Retry-After`. Every flow calls it before storing state for a browser that is not
/// signed in, so one address can't fill the session store (issue 19).
pub(crate) async fn admit_pending(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
) -> Result<(), AppError> {
    let address = crate::web::respond::client_ip(req);
    let cap = state.config.pending_signins_per_address;
    match pending_signin(&*state.ephemeral, tenant, &address, cap).await? {
        None => Ok(()),
        Some(wait) => {
            let minutes = wait.as_secs().div_ceil(60);
            Err(AppError::too_many(
                format!(
                    "Too many sign-ins were started from your network. Please wait {minutes} minute{} and try again.",
                    if minutes == 1 { "" } else { "s" }
                ),
                wait.as_secs(),
            ))
        }
    }
}

/// Sign-ups one client (an IPv4 address or IPv6 /64; allow-listed networks are not counted)
/// may start per `SIGNUP_WINDOW`, and sign-ups per email domain (docs/sign-up.md).
pub const SIGNUPS_PER_CLIENT: u64 = 10;
pub const SIGNUPS_PER_DOMAIN: u64 = 50;
pub const SIGNUP_WINDOW: Duration = Duration::from_secs(3600);

/// Counts one sign-up attempt of `address` for an address in `domain`; past either limit,
/// returns how long until another is admitted. CAPTCHA-free: a flood from one network or
/// aimed at one domain slows down, others are untouched.
pub async fn signup_attempt(
    store: &dyn Ephemeral,
    tenant: &Tenant,
    address: &str,
    domain: &str,
) -> Result<Option<Duration>> {
    let mut wait = None;
    if let Some(client) = client_key(tenant, address) {
        let hit = store
            .hit(&tenant.id, &format!("signup:{client}"), SIGNUP_WINDOW)
            .await?;
        if hit.count > SIGNUPS_PER_CLIENT {
            wait = Some(hit.reset_in);
        }
    }
    let domain_key = format!(
        "signup:domain:{}",
        &latchkey_core::sha256_hex(domain.to_lowercase().as_bytes())[..32]
    );
    let hit = store.hit(&tenant.id, &domain_key, SIGNUP_WINDOW).await?;
    if hit.count > SIGNUPS_PER_DOMAIN {
        wait = Some(wait.map_or(hit.reset_in, |w: Duration| w.max(hit.reset_in)));
    }
    Ok(wait.map(|w| w.max(Duration::from_secs(1))))
}

/// A failure budget with reservations, for limits without back-off (second-factor codes, admin
/// tokens): at most `allowed` failures under `key` per `window` are ever checked, parallel
/// checks included.
pub struct Budget<'a> {
    pub store: &'a dyn Ephemeral,
    pub tenant: &'a TenantId,
    pub key: String,
    pub allowed: u64,
    pub window: Duration,
}

impl Budget<'_> {
    /// Reserves a check; false (and nothing held) when the budget is spent.
    pub async fn reserve(&self) -> Result<bool> {
        let busy = format!("busy:{}", self.key);
        let in_flight = self.store.hit(self.tenant, &busy, IN_FLIGHT).await?.count;
        let failures = self
            .store
            .count(self.tenant, &format!("fail:{}", self.key))
            .await?;
        if failures + in_flight > self.allowed {
            self.store.release(self.tenant, &busy).await?;
            return Ok(false);
        }
        Ok(true)
    }

    /// Counts a failed check, then releases its reservation.
    pub async fn failed(&self) -> Result<()> {
        let fail = format!("fail:{}", self.key);
        self.store.hit(self.tenant, &fail, self.window).await?;
        self.release().await
    }

    /// Releases a reservation whose check did not fail.
    pub async fn release(&self) -> Result<()> {
        self.store
            .release(self.tenant, &format!("busy:{}", self.key))
            .await
    }
}

pub struct Throttle<'a> {
    pub store: &'a dyn Ephemeral,
    pub tenant: &'a Tenant,
}

impl Throttle<'_> {
    /// The counted subjects of an attempt with the failures each gets free.
    fn subjects(&self, account: &str, address: &str) -> Vec<(String, u64)> {
        let limits = &self.tenant.policy.throttle;
        let mut subjects = vec![(account_key(account), u64::from(limits.account_free_failures))];
        if let Some(client) = client_key(self.tenant, address) {
            subjects.push((client, u64::from(limits.address_free_failures)));
        }
        subjects
    }

    /// Checks the locks and reserves the attempt; an open gate must be followed by `failed`,
    /// `succeeded` or `release`.
    pub async fn check(&self, account: &str, address: &str) -> Result<Gate> {
        // Attempts beyond the free failures queue behind those in flight for a moment: a burst
        // of correct sign-ins of one account (tabs, a reconnecting app) goes through one after
        // another, while a burst of guesses meets the lock its first failures set.
        let queued_until = std::time::Instant::now() + QUEUE_WAIT;
        loop {
            match self.reserve(account, address).await? {
                None => return Ok(Gate::Open),
                Some(Blocked::Locked(left)) => return Ok(Gate::Wait(left)),
                Some(Blocked::Busy) if std::time::Instant::now() >= queued_until => {
                    return Ok(Gate::Wait(Duration::from_secs(1)));
                }
                Some(Blocked::Busy) => tokio::time::sleep(QUEUE_STEP).await,
            }
        }
    }

    /// Reserves the attempt on every subject, or releases what it took and says why not.
    async fn reserve(&self, account: &str, address: &str) -> Result<Option<Blocked>> {
        let subjects = self.subjects(account, address);
        for (i, (key, free)) in subjects.iter().enumerate() {
            let in_flight = self
                .store
                .hit(&self.tenant.id, &format!("busy:{key}"), IN_FLIGHT)
                .await?
                .count;
            if let Some(blocked) = self.wait(key, *free, in_flight).await? {
                for (key, _) in &subjects[..=i] {
                    self.store
                        .release(&self.tenant.id, &format!("busy:{key}"))
                        .await?;
                }
                return Ok(Some(blocked));
            }
        }
        Ok(None)
    }

    /// Why a reserved attempt on `key` must wait, if it must. The lock is read after the
    /// reservation, so an attempt reserved after another's failure sees the lock it set.
    async fn wait(&self, key: &str, free: u64, in_flight: u64) -> Result<Option<Blocked>> {
        let tenant = &self.tenant.id;
        if let Some(left) = self.store.window_left(tenant, &format!("lock:{key}")).await? {
            return Ok(Some(Blocked::Locked(left.max(Duration::from_secs(1)))));
        }
        let failures = self.store.count(tenant, &format!("fail:{key}")).await?;
        Ok((failures + in_flight > free && in_flight > 1).then_some(Blocked::Busy))
    }

    /// Records a failure, starts the back-off it earns, then releases the reservation.
    pub async fn failed(&self, account: &str, address: &str) -> Result<()> {
        let tenant = &self.tenant.id;
        for (key, free) in self.subjects(account, address) {
            let n = self
                .store
                .hit(tenant, &format!("fail:{key}"), FAILURE_WINDOW)
                .await?
                .count;
            if let Some(lock) = backoff(n, free) {
                self.store.hit(tenant, &format!("lock:{key}"), lock).await?;
            }
        }
        self.release(account, address).await
    }

    /// Releases the reservation of an attempt that neither failed nor succeeded.
    pub async fn release(&self, account: &str, address: &str) -> Result<()> {
        for (key, _) in self.subjects(account, address) {
            self.store
                .release(&self.tenant.id, &format!("busy:{key}"))
                .await?;
        }
        Ok(())
    }

    /// Failures on the account in the current window (a risk signal).
    pub async fn failures(&self, account: &str) -> Result<u32> {
        let key = format!("fail:{}", account_key(account));
        let n = self.store.count(&self.tenant.id, &key).await?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// A success clears the account's failures (not the client's) and releases the attempt.
    pub async fn succeeded(&self, account: &str, address: &str) -> Result<()> {
        let key = format!("fail:{}", account_key(account));
        self.store.reset(&self.tenant.id, &key).await?;
        self.release(account, address).await
    }
}

/// Refused responses at a sign-in endpoint that reads attacker documents (the SAML ACS and SLO,
/// the upstream OpenID Connect callback), counted per client address (IPv6: its /64) and tenant
/// in one-minute windows against `saml_acs_refusals_per_minute`: past it the endpoint answers
/// 429 before any parsing, and refusals stop being audited, so a flood can't grow the log.
pub(crate) struct RefusalCap {
    key: String,
}

/// The window refusals are counted in.
pub(crate) const REFUSAL_WINDOW: Duration = Duration::from_secs(60);

impl RefusalCap {
    /// The counter of `endpoint`'s refusals (`saml`, `federation`) from the request's address.
    pub(crate) fn of(req: &HttpRequest, endpoint: &str) -> Self {
        let who =
            crate::web::net::client_addr(req).map_or_else(|| "unknown".into(), crate::web::net::rate_key);
        Self {
            key: format!("{endpoint}-refusals:{who}"),
        }
    }

    /// A 429 with `Retry-After` once the address has had its refusals for the window.
    pub(crate) async fn throttled(
        &self,
        state: &AppState,
        tenant: &Tenant,
    ) -> std::result::Result<Option<actix_web::HttpResponse>, AppError> {
        if state.ephemeral.count(&tenant.id, &self.key).await? < state.config.saml_acs_refusals_per_minute {
            return Ok(None);
        }
        let left = state
            .ephemeral
            .window_left(&tenant.id, &self.key)
            .await?
            .unwrap_or(REFUSAL_WINDOW);
        let res = crate::web::pages::message_response(
            actix_web::http::StatusCode::TOO_MANY_REQUESTS,
            "Sign-in failed",
            "Too many sign-ins from your network did not succeed. Wait a minute, then go back to the application and try again.",
        );
        Ok(Some(crate::web::respond::retry_after(res, left.as_secs())))
    }

    /// Counts one refusal; `true` while the address is under its cap (audit and log it).
    pub(crate) async fn count(
        &self,
        state: &AppState,
        tenant: &Tenant,
    ) -> std::result::Result<bool, AppError> {
        let hit = state.ephemeral.hit(&tenant.id, &self.key, REFUSAL_WINDOW).await?;
        Ok(hit.count <= state.config.saml_acs_refusals_per_minute)
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

    #[tokio::test]
    async fn signups_are_limited_per_client_and_per_domain() {
        let store =
            latchkey_session::MemoryStore::new(std::sync::Arc::new(latchkey_core::FixedClock::new(0)));
        let tenant = latchkey_core::Tenant {
            id: "t".into(),
            slug: "acme".into(),
            display_name: "Acme".into(),
            policy: latchkey_core::TenantPolicy::default(),
            created_at: 0,
            updated_at: 0,
        };
        for i in 0..SIGNUPS_PER_CLIENT {
            let domain = format!("d{i}.test");
            assert!(
                signup_attempt(&store, &tenant, "192.0.2.1", &domain)
                    .await
                    .unwrap()
                    .is_none()
            );
        }
        let wait = signup_attempt(&store, &tenant, "192.0.2.1", "x.test")
            .await
            .unwrap();
        assert!(wait.is_some_and(|w| w >= Duration::from_secs(1)));
        // Another client is not held back.
        assert!(
            signup_attempt(&store, &tenant, "192.0.2.2", "x.test")
                .await
                .unwrap()
                .is_none()
        );
        for i in 0..SIGNUPS_PER_DOMAIN {
            let address = format!("2001:db8:{i:x}::1");
            let _ = signup_attempt(&store, &tenant, &address, "flood.test")
                .await
                .unwrap();
        }
        let wait = signup_attempt(&store, &tenant, "2001:db8:ffff::1", "flood.test")
            .await
            .unwrap();
        assert!(wait.is_some(), "the domain's limit holds across clients");
    }

    #[test]
    fn account_keys_hide_the_name_and_ignore_case() {
        let k = account_key("Alice@Example.com");
        assert!(!k.contains("alice"));
        assert_eq!(k, account_key(" alice@example.com"));
    }
}
