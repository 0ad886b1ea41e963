//! The caller's deadline for store work on this thread.
//!
//! A request that has waited past its deadline has usually been given up by its client; writing
//! its change anyway is how a refresh token got rotated for a client that never saw the answer
//! (its retry then looked like reuse). The server sets a deadline around each piece of store work;
//! waiting for a connection stops at it, and a transaction that reaches COMMIT after it is rolled
//! back instead. Work without a deadline (the CLI, background jobs) is not bounded here.

use std::cell::Cell;
use std::time::{Duration, Instant};

thread_local! {
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Runs `f` with `deadline` set for the store calls it makes on this thread.
pub fn within<T>(deadline: Instant, f: impl FnOnce() -> T) -> T {
    struct Restore(Option<Instant>);
    impl Drop for Restore {
        fn drop(&mut self) {
            DEADLINE.with(|d| d.set(self.0));
        }
    }
    let _restore = Restore(DEADLINE.with(|d| d.replace(Some(deadline))));
    f()
}

/// Time left before the deadline; `None` without one.
pub(crate) fn remaining() -> Option<Duration> {
    DEADLINE
        .with(Cell::get)
        .map(|d| d.saturating_duration_since(Instant::now()))
}

/// Whether a deadline is set and has passed.
pub(crate) fn passed() -> bool {
    DEADLINE.with(Cell::get).is_some_and(|d| Instant::now() >= d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_holds_only_inside_its_scope() {
        assert_eq!(remaining(), None);
        assert!(!passed());
        let past = Instant::now().checked_sub(Duration::from_millis(1)).unwrap();
        within(past, || {
            assert!(passed());
            assert_eq!(remaining(), Some(Duration::ZERO));
            within(Instant::now() + Duration::from_secs(60), || assert!(!passed()));
            assert!(passed(), "the outer deadline is back");
        });
        assert!(!passed());
    }
}
