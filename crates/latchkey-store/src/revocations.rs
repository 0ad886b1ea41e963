//! Which tenants' access tokens a piece of store work revoked (or deleted while live), once its
//! transaction committed: the server's token cache bumps those tenants' revocation epochs before
//! it answers (docs/performance.md#token-cache). The change feed carries the same fact to other
//! processes; this is what makes a revocation immediate on every node sharing the epochs.
//!
//! Noted on the thread doing the work (store work is synchronous and runs a transaction on one
//! thread): a transaction notes into `PENDING`; `Db::write` moves that to `COMMITTED` when it
//! commits and drops it when it rolls back.

use latchkey_core::TenantId;
use std::cell::RefCell;

thread_local! {
    static PENDING: RefCell<Vec<TenantId>> = const { RefCell::new(Vec::new()) };
    static COMMITTED: RefCell<Option<Vec<TenantId>>> = const { RefCell::new(None) };
}

/// Within a transaction: it revokes access tokens of `t`.
pub(crate) fn note(t: &TenantId) {
    PENDING.with(|p| {
        let mut p = p.borrow_mut();
        if !p.contains(t) {
            p.push(t.clone());
        }
    });
}

/// A transaction starts: nothing of an earlier, abandoned one counts.
pub(crate) fn begin() {
    PENDING.with(|p| p.borrow_mut().clear());
}

/// The transaction committed (`true`) or rolled back.
pub(crate) fn end(committed: bool) {
    let pending = PENDING.with(|p| std::mem::take(&mut *p.borrow_mut()));
    if committed {
        COMMITTED.with(|c| {
            if let Some(c) = c.borrow_mut().as_mut() {
                for t in pending {
                    if !c.contains(&t) {
                        c.push(t);
                    }
                }
            }
        });
    }
}

/// Runs `f` and returns, with its result, the tenants whose access tokens it revoked in
/// committed transactions.
pub fn collect<T>(f: impl FnOnce() -> T) -> (T, Vec<TenantId>) {
    struct Restore(Option<Vec<TenantId>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            COMMITTED.with(|c| *c.borrow_mut() = self.0.take());
        }
    }
    let outer = COMMITTED.with(|c| c.borrow_mut().replace(Vec::new()));
    let restore = Restore(outer);
    let value = f();
    let mine = COMMITTED.with(|c| c.borrow_mut().take()).unwrap_or_default();
    // An enclosing `collect` sees these too.
    let mut restore = restore;
    if let Some(outer) = restore.0.as_mut() {
        for t in &mine {
            if !outer.contains(t) {
                outer.push(t.clone());
            }
        }
    }
    (value, mine)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> TenantId {
        TenantId(s.into())
    }

    #[test]
    fn only_committed_revocations_are_collected() {
        let ((), got) = collect(|| {
            begin();
            note(&t("a"));
            end(false);
            begin();
            note(&t("b"));
            note(&t("b"));
            end(true);
        });
        assert_eq!(got, [t("b")]);
        let ((), none) = collect(|| {});
        assert!(none.is_empty(), "nothing carries over");
    }

    #[test]
    fn nothing_is_kept_outside_a_collect() {
        begin();
        note(&t("x"));
        end(true);
        let ((), got) = collect(|| {});
        assert!(got.is_empty());
    }

    #[test]
    fn an_enclosing_collect_sees_an_inner_ones_tenants() {
        let (inner, outer) = collect(|| {
            let ((), inner) = collect(|| {
                begin();
                note(&t("a"));
                end(true);
            });
            inner
        });
        assert_eq!(inner, [t("a")]);
        assert_eq!(outer, [t("a")]);
    }
}
