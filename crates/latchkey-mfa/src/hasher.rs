//! The password hashing service: argon2id off the async threads, at most `max_concurrent`
//! hashes at once (each takes 19 MiB), a bounded queue beyond that (a caller that gave up
//! while queued costs no hash), the same work for unknown users (a dummy hash, so timing does
//! not tell), and re-hash detection when parameters change.
//!
//! Hashes run on `max_concurrent` threads of their own rather than tokio's blocking pool: each
//! thread keeps one 19 MiB working memory while it has work, so a fixed set of threads bounds
//! the memory to `max_concurrent` blocks, where a pool that grows under load (tokio's goes to
//! 512 threads) kept hundreds of MiB after a burst of sign-ins.

use crate::password::{
    HashMemory, HashParams, PasswordError, hash_password, hash_password_with, verify_password_with,
};
use argon2::password_hash::PasswordHash;
use latchkey_core::Rng;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use tokio::sync::oneshot;

type Job = Box<dyn FnOnce(&mut HashMemory) + Send>;

/// A hashing thread drops its working memory after this long without a job.
const IDLE_RELEASE: std::time::Duration = std::time::Duration::from_secs(60);

/// The hashing threads: each keeps one argon2 working memory while it has jobs, and they take
/// jobs until the hasher (the sender) is dropped.
fn start_threads(n: usize) -> Result<mpsc::Sender<Job>, PasswordError> {
    let (tx, rx) = mpsc::channel::<Job>();
    let rx = Arc::new(Mutex::new(rx));
    for i in 0..n {
        let rx = Arc::clone(&rx);
        std::thread::Builder::new()
            .name(format!("latchkey-argon2-{i}"))
            .spawn(move || {
                let mut memory = HashMemory::default();
                loop {
                    let job = rx
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .recv_timeout(IDLE_RELEASE);
                    match job {
                        // A panicking job loses its answer (the caller sees an error), not the thread.
                        Ok(job) => drop(std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            job(&mut memory);
                        }))),
                        Err(mpsc::RecvTimeoutError::Timeout) => memory = HashMemory::default(),
                        Err(mpsc::RecvTimeoutError::Disconnected) => return,
                    }
                }
            })
            .map_err(|e| PasswordError::Hash(format!("starting a hashing thread: {e}")))?;
    }
    Ok(tx)
}

/// The result of checking a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verification {
    pub matches: bool,
    /// The stored hash uses other parameters than the current ones: store a fresh hash.
    pub needs_rehash: bool,
}

pub struct PasswordHasher {
    params: HashParams,
    /// Running plus waiting callers allowed at once.
    capacity: usize,
    inside: AtomicUsize,
    dummy: String,
    dummy_runs: AtomicU64,
    rng: Arc<dyn Rng>,
    jobs: mpsc::Sender<Job>,
}

impl PasswordHasher {
    /// `max_concurrent` hashes run at once (use the number of cores); up to `max_waiting` more
    /// wait their turn, and beyond that callers get `Busy` at once (never unbounded memory).
    pub fn new(
        params: HashParams,
        max_concurrent: usize,
        max_waiting: usize,
        rng: Arc<dyn Rng>,
    ) -> Result<Self, PasswordError> {
        let dummy = hash_password("latchkey dummy password for unknown users", params, &*rng)?;
        let jobs = start_threads(max_concurrent.max(1))?;
        Ok(Self {
            jobs,
            params,
            capacity: max_concurrent.max(1) + max_waiting,
            inside: AtomicUsize::new(0),
            dummy,
            dummy_runs: AtomicU64::new(0),
            rng,
        })
    }

    pub fn params(&self) -> HashParams {
        self.params
    }

    /// How many times the dummy hash stood in for an unknown user (for tests and metrics).
    pub fn dummy_runs(&self) -> u64 {
        self.dummy_runs.load(Ordering::Relaxed)
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut HashMemory) -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        // Counted from here until the work ends, also when the caller gives up while waiting.
        struct Inside<'a>(&'a AtomicUsize);
        impl Drop for Inside<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        let _inside = Inside(&self.inside);
        if self.inside.fetch_add(1, Ordering::SeqCst) >= self.capacity {
            return Err(PasswordError::Busy);
        }
        // Queued straight to the hashing threads: a thread that finishes takes the next job at
        // once. (A semaphore granted the turn before, so each hash waited for an async task to
        // wake and queue it, and the cores sat idle in between.) The threads bound how many
        // run at once; `capacity` bounds the queue.
        let (done, result) = oneshot::channel();
        let job: Job = Box::new(move |memory| {
            if !done.is_closed() {
                let _ = done.send(work(memory));
            }
        });
        self.jobs
            .send(job)
            .map_err(|_| PasswordError::Hash("the hashing threads are gone".into()))?;
        result
            .await
            .map_err(|_| PasswordError::Hash("a hashing job ended without an answer".into()))
    }

    pub async fn hash(&self, password: String) -> Result<String, PasswordError> {
        let (params, rng) = (self.params, Arc::clone(&self.rng));
        self.run(move |m| hash_password_with(&password, params, &*rng, m))
            .await?
    }

    /// Checks `password` against `stored`; with no stored hash (unknown user, no password set)
    /// the dummy hash is checked instead, so the answer takes as long either way.
    pub async fn verify(
        &self,
        password: String,
        stored: Option<String>,
    ) -> Result<Verification, PasswordError> {
        let known = stored.is_some();
        if !known {
            self.dummy_runs.fetch_add(1, Ordering::Relaxed);
        }
        let phc = stored.unwrap_or_else(|| self.dummy.clone());
        let params = self.params;
        let (ok, stale) = self
            .run(move |m| {
                (
                    verify_password_with(&password, &phc, m),
                    !uses_params(&phc, params),
                )
            })
            .await?;
        Ok(Verification {
            matches: known && ok,
            needs_rehash: known && ok && stale,
        })
    }
}

/// Whether a PHC string is argon2id with exactly these parameters.
fn uses_params(phc: &str, p: HashParams) -> bool {
    let Ok(h) = PasswordHash::new(phc) else {
        return false;
    };
    let get = |k: &str| h.params.get_decimal(k);
    h.algorithm.as_str() == "argon2id"
        && get("m") == Some(p.memory_kib)
        && get("t") == Some(p.iterations)
        && get("p") == Some(p.parallelism)
}

#[cfg(test)]
mod tests {
    use super::*;
    use latchkey_core::OsRng;

    const FAST: HashParams = HashParams {
        memory_kib: 1024,
        iterations: 1,
        parallelism: 1,
    };

    fn hasher(params: HashParams) -> PasswordHasher {
        PasswordHasher::new(params, 2, 8, Arc::new(OsRng)).unwrap()
    }

    #[tokio::test]
    async fn verifies_and_flags_old_parameters_for_rehash() {
        let h = hasher(FAST);
        let stored = h.hash("tulip-gravel-orbit".into()).await.unwrap();
        let v = h
            .verify("tulip-gravel-orbit".into(), Some(stored.clone()))
            .await
            .unwrap();
        assert_eq!(
            v,
            Verification {
                matches: true,
                needs_rehash: false
            }
        );
        let wrong = h
            .verify("tulip-gravel-orbiT".into(), Some(stored.clone()))
            .await
            .unwrap();
        assert!(!wrong.matches && !wrong.needs_rehash);
        let stronger = hasher(HashParams {
            memory_kib: 2048,
            ..FAST
        });
        let v = stronger
            .verify("tulip-gravel-orbit".into(), Some(stored))
            .await
            .unwrap();
        assert_eq!(
            v,
            Verification {
                matches: true,
                needs_rehash: true
            }
        );
    }

    #[tokio::test]
    async fn unknown_users_cost_a_hash_and_never_match() {
        let h = hasher(FAST);
        assert_eq!(h.dummy_runs(), 0);
        let v = h
            .verify("latchkey dummy password for unknown users".into(), None)
            .await
            .unwrap();
        assert!(
            !v.matches,
            "even the dummy's own password does not sign anyone in"
        );
        assert_eq!(h.dummy_runs(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_caller_that_gave_up_while_queued_costs_no_work() {
        let h = Arc::new(PasswordHasher::new(FAST, 1, 8, Arc::new(OsRng)).unwrap());
        let (release, gate) = mpsc::channel::<()>();
        let blocker = {
            let h = Arc::clone(&h);
            // Holds the only hashing thread until released.
            tokio::spawn(async move { h.run(move |_| gate.recv().unwrap()).await })
        };
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let ran = Arc::new(AtomicUsize::new(0));
        let r = Arc::clone(&ran);
        let abandoned = tokio::time::timeout(
            std::time::Duration::from_millis(50),
            h.run(move |_| r.fetch_add(1, Ordering::SeqCst)),
        )
        .await;
        assert!(
            abandoned.is_err(),
            "the job was still queued when its caller left"
        );
        release.send(()).unwrap();
        blocker.await.unwrap().unwrap();
        let r = Arc::clone(&ran);
        // Queued after the abandoned job, so it runs only once that one was taken off the queue.
        h.run(move |_| r.fetch_add(10, Ordering::SeqCst)).await.unwrap();
        assert_eq!(ran.load(Ordering::SeqCst), 10, "the abandoned job did not run");
        assert_eq!(h.inside.load(Ordering::SeqCst), 0, "every caller was counted out");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_flood_beyond_the_queue_is_refused_not_buffered() {
        let h = Arc::new(
            PasswordHasher::new(
                HashParams {
                    memory_kib: 8192,
                    iterations: 3,
                    parallelism: 1,
                },
                1,
                2,
                Arc::new(OsRng),
            )
            .unwrap(),
        );
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let h = Arc::clone(&h);
                tokio::spawn(async move { h.hash("tulip-gravel-orbit".into()).await })
            })
            .collect();
        let mut busy = 0;
        let mut done = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(_) => done += 1,
                Err(PasswordError::Busy) => busy += 1,
                Err(e) => panic!("{e}"),
            }
        }
        assert!(busy > 0, "some callers are turned away");
        assert!(done >= 1 && done <= 20 - busy);
    }
}
