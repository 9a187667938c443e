//! `/readyz` answers anyone, without a token, so it must not let anyone make ward work (or write
//! to its database) as fast as they can send requests. The answer is this process's last check,
//! kept for [`FRESH_FOR`]; callers that arrive while a check runs wait for that one check
//! rather than start their own. The store decides how to check (a read when its own commits
//! just showed it writable, otherwise a committed probe write).

use std::future::Future;
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use tokio::sync::Mutex;
use ward_core::Clock;
use ward_store::StoreError;

/// How long an answer stands. One second keeps an orchestrator's probes (every few seconds)
/// current while it bounds the store's work for readiness to one check a second per process,
/// however many requests arrive.
pub const FRESH_FOR: SignedDuration = SignedDuration::from_secs(1);

/// This process's readiness (per process on purpose: several processes sharing one database
/// are each ready or not on their own).
pub struct Readiness {
    clock: Arc<dyn Clock>,
    last: Mutex<Option<Checked>>,
}

struct Checked {
    at: Timestamp,
    /// Why the store was not ready, if it was not.
    outcome: Result<(), String>,
}

impl Readiness {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self { clock, last: Mutex::new(None) }
    }

    /// The last answer while it is fresh, else the answer of `check`, run once for everyone
    /// waiting. `Err` says why the store is not ready.
    pub async fn answer<F>(&self, check: impl FnOnce() -> F) -> Result<(), String>
    where
        F: Future<Output = Result<(), StoreError>>,
    {
        // Held across the check: concurrent callers queue here and find the fresh answer.
        let mut last = self.last.lock().await;
        let now = self.clock.now();
        if let Some(checked) = last.as_ref()
            // A clock set back makes the answer stale, never fresh for longer.
            && checked.at <= now
            && now.duration_since(checked.at) < FRESH_FOR
        {
            return checked.outcome.clone();
        }
        let outcome = check().await.map_err(|error| error.to_string());
        *last = Some(Checked { at: self.clock.now(), outcome: outcome.clone() });
        outcome
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use ward_core::ManualClock;

    use super::*;

    struct Probe {
        checks: AtomicUsize,
        broken: AtomicBool,
    }

    impl Probe {
        async fn check(&self) -> Result<(), StoreError> {
            self.checks.fetch_add(1, Ordering::SeqCst);
            // Long enough for every concurrent caller to queue behind this check.
            tokio::task::yield_now().await;
            if self.broken.load(Ordering::SeqCst) {
                Err(StoreError::Unavailable("the disk is full".into()))
            } else {
                Ok(())
            }
        }
    }

    #[tokio::test]
    async fn one_check_per_interval_for_everyone_and_failures_show_within_it() {
        let clock = Arc::new(ManualClock::new(Timestamp::from_second(1_800_000_000).unwrap()));
        let readiness = Arc::new(Readiness::new(clock.clone()));
        let probe = Arc::new(Probe { checks: AtomicUsize::new(0), broken: AtomicBool::new(false) });
        let ask = || {
            let (readiness, probe) = (readiness.clone(), probe.clone());
            async move { readiness.answer(|| probe.check()).await }
        };

        let concurrent: Vec<_> = (0..50).map(|_| tokio::spawn(ask())).collect();
        for answer in concurrent {
            assert_eq!(answer.await.unwrap(), Ok(()));
        }
        for _ in 0..50 {
            assert_eq!(ask().await, Ok(()));
        }
        assert_eq!(probe.checks.load(Ordering::SeqCst), 1, "one check for 100 callers");

        probe.broken.store(true, Ordering::SeqCst);
        clock.advance(SignedDuration::from_millis(999));
        assert_eq!(ask().await, Ok(()), "the answer stands for its interval");
        clock.advance(SignedDuration::from_millis(1));
        let not_ready = ask().await.expect_err("the store broke");
        assert!(not_ready.contains("the disk is full"), "{not_ready}");
        assert_eq!(ask().await.unwrap_err(), not_ready, "a failure stands for its interval too");
        assert_eq!(probe.checks.load(Ordering::SeqCst), 2);

        probe.broken.store(false, Ordering::SeqCst);
        clock.advance(FRESH_FOR);
        assert_eq!(ask().await, Ok(()), "ready again once the store recovers");
        clock.set(Timestamp::from_second(1_700_000_000).unwrap());
        assert_eq!(ask().await, Ok(()));
        assert_eq!(probe.checks.load(Ordering::SeqCst), 4, "a clock set back checks afresh");
    }
}
