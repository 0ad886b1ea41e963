//! A circuit breaker per dependency (the database, the session store).
//!
//! Once a dependency has failed in a way that means "it is down" (a refused connection, a dropped
//! socket), callers that need it are answered at once instead of each waiting out its own
//! timeout; one caller per probe interval is let through to find out whether it is back, and the
//! first success closes the breaker. A request therefore never hangs on a dependency that is
//! known to be down, and recovery is seen within one probe interval of the dependency answering.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What a caller may do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// The breaker is closed: go ahead.
    Closed,
    /// The breaker is open and this caller is the probe: try, then report `success`/`failure`.
    Probe,
    /// The breaker is open: answer "unavailable" without trying.
    Refused,
}

/// A breaker's state for readiness and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerState {
    pub open: bool,
    /// How often it opened since the process started.
    pub trips: u64,
}

#[derive(Debug)]
pub struct Breaker {
    name: &'static str,
    probe_every: Duration,
    base: Instant,
    open: AtomicBool,
    /// Microseconds after `base` at which the next probe may start.
    next_probe: AtomicU64,
    trips: AtomicU64,
}

impl Breaker {
    /// `probe_every` bounds how long recovery goes unseen under load (and how often a down
    /// dependency is tried).
    pub fn new(name: &'static str, probe_every: Duration) -> Self {
        Self {
            name,
            probe_every,
            base: Instant::now(),
            open: AtomicBool::new(false),
            next_probe: AtomicU64::new(0),
            trips: AtomicU64::new(0),
        }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    pub fn admit(&self) -> Admit {
        self.admit_at(Instant::now())
    }

    /// `admit` at a given instant (tests move time instead of sleeping).
    pub fn admit_at(&self, now: Instant) -> Admit {
        if !self.open.load(Ordering::Acquire) {
            return Admit::Closed;
        }
        let at = self.micros(now);
        let due = self.next_probe.load(Ordering::Acquire);
        if at < due {
            return Admit::Refused;
        }
        // One caller wins the slot; the slot moves on so a probe that hangs does not let every
        // later caller through.
        match self.next_probe.compare_exchange(
            due,
            at + self.interval_micros(),
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => Admit::Probe,
            Err(_) => Admit::Refused,
        }
    }

    /// The dependency answered: close the breaker. True when this closed it (the caller logs
    /// the recovery once).
    pub fn success(&self) -> bool {
        self.open.swap(false, Ordering::AcqRel)
    }

    /// The dependency is down: open the breaker (the next probe one interval from now). True
    /// when this opened it (the caller logs the outage once).
    pub fn failure(&self) -> bool {
        self.failure_at(Instant::now())
    }

    pub fn failure_at(&self, now: Instant) -> bool {
        self.next_probe
            .store(self.micros(now) + self.interval_micros(), Ordering::Release);
        let opened = !self.open.swap(true, Ordering::AcqRel);
        if opened {
            self.trips.fetch_add(1, Ordering::Relaxed);
        }
        opened
    }

    pub fn state(&self) -> BreakerState {
        BreakerState {
            open: self.open.load(Ordering::Acquire),
            trips: self.trips.load(Ordering::Relaxed),
        }
    }

    /// Seconds a refused caller should wait (`Retry-After`): at least one.
    pub fn retry_after_secs(&self) -> u64 {
        self.probe_every.as_secs().max(1)
    }

    fn micros(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.base).as_micros()).unwrap_or(u64::MAX)
    }

    fn interval_micros(&self) -> u64 {
        u64::try_from(self.probe_every.as_micros()).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVERY: Duration = Duration::from_millis(50);

    #[test]
    fn a_closed_breaker_admits_everyone() {
        let b = Breaker::new("db", EVERY);
        assert_eq!(b.admit(), Admit::Closed);
        assert_eq!(
            b.state(),
            BreakerState {
                open: false,
                trips: 0
            }
        );
    }

    #[test]
    fn an_open_breaker_refuses_all_but_one_probe_per_interval() {
        let b = Breaker::new("db", EVERY);
        let t0 = Instant::now();
        assert!(b.failure_at(t0), "the first failure opens it");
        assert_eq!(b.admit_at(t0), Admit::Refused);
        assert_eq!(b.admit_at(t0 + EVERY / 2), Admit::Refused);
        let later = t0 + EVERY;
        assert_eq!(b.admit_at(later), Admit::Probe);
        assert_eq!(b.admit_at(later), Admit::Refused, "one probe per interval");
        assert_eq!(
            b.admit_at(later + EVERY),
            Admit::Probe,
            "a hung probe does not block the next"
        );
        assert_eq!(b.state(), BreakerState { open: true, trips: 1 });
    }

    #[test]
    fn a_failed_probe_keeps_it_open_and_a_success_closes_it() {
        let b = Breaker::new("db", EVERY);
        let t0 = Instant::now();
        b.failure_at(t0);
        assert_eq!(b.admit_at(t0 + EVERY), Admit::Probe);
        assert!(!b.failure_at(t0 + EVERY), "already open");
        assert_eq!(b.admit_at(t0 + EVERY + EVERY / 2), Admit::Refused);
        assert_eq!(b.state().trips, 1, "still the same outage");
        assert_eq!(b.admit_at(t0 + EVERY * 2), Admit::Probe);
        assert!(b.success());
        assert!(!b.success(), "already closed");
        assert_eq!(b.admit_at(t0 + EVERY * 2), Admit::Closed);
        assert!(b.failure_at(t0 + EVERY * 3));
        assert_eq!(b.state(), BreakerState { open: true, trips: 2 });
    }

    #[test]
    fn retry_after_is_at_least_a_second() {
        assert_eq!(Breaker::new("db", EVERY).retry_after_secs(), 1);
        assert_eq!(Breaker::new("db", Duration::from_secs(3)).retry_after_secs(), 3);
    }
}
