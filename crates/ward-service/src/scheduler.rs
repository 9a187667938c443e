//! Makes time pass: activates scheduled grants, expires grants, lapses requests, writes usage
//! summaries and signs audit checkpoints when the log has grown. Of several replicas, one
//! applies what comes due and writes the usage summaries of all, and one signs checkpoints,
//! each under a lease that another takes over when its holder goes. Every replica adds its
//! usage counts to the store every second.
//!
//! The store is the truth about what is due, so the scheduler keeps no state of its own: after
//! a restart its first pass processes everything that came due while ward was down (each event
//! says how late it was processed). Checks never wait for it: they compare `now` with the
//! grant's window themselves.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::watch;

use crate::broker::Broker;
use crate::consumer::{ConsumerLease, LEASE_FOR};

/// The longest the scheduler sleeps without looking at the store (it is woken earlier by every
/// change that may move the schedule): short enough that the leases it holds are renewed
/// before they lapse, so an idle holder does not hand them to another replica.
const MAX_SLEEP: Duration = Duration::from_secs(LEASE_FOR.as_secs() / 3);
/// How long it waits before retrying when the store fails.
const RETRY_AFTER: Duration = Duration::from_secs(1);
/// How often each process adds its usage counts to the store: what a crash can lose.
const STASH_USAGE_EVERY: Duration = Duration::from_secs(1);

/// Runs until `shutdown` turns true, then writes the pending usage summaries and returns.
pub async fn run(broker: Arc<Broker>, shutdown: watch::Receiver<bool>) {
    run_as(broker, shutdown, crate::consumer::this_process()).await;
}

/// [`run`], holding its leases as `holder` (several replicas in one process, in benchmarks).
pub async fn run_as(broker: Arc<Broker>, mut shutdown: watch::Receiver<bool>, holder: &str) {
    let summary_every = Duration::from_secs(broker.settings().usage_summary_seconds.max(1));
    let checkpoint_every = Duration::from_secs(broker.settings().checkpoint_interval_seconds.max(1));
    let mut last_summary = tokio::time::Instant::now();
    let mut last_checkpoint = tokio::time::Instant::now();
    let mut first_pass = true;
    let mut signer = ConsumerLease::new(CHECKPOINT_SIGNER, holder);
    let mut runner = ConsumerLease::new(DUE_RUNNER, holder);
    let stasher = tokio::spawn(stash_usage(broker.clone(), shutdown.clone()));
    loop {
        let now = broker.now();
        let sleep_for = if !runner.hold(&**broker.store(), now).await {
            // Another replica processes what comes due; this one takes over if it goes.
            TAKE_OVER_EVERY
        } else {
            match pass(&broker, now, first_pass).await {
                Ok(next) => {
                    first_pass = false;
                    next.map(|at| until(now, at)).unwrap_or(MAX_SLEEP).min(MAX_SLEEP)
                }
                Err(error) => {
                    tracing::error!(%error, "scheduler pass failed; retrying");
                    RETRY_AFTER
                }
            }
        };
        if last_summary.elapsed() >= summary_every {
            if runner.holding() {
                flush(&broker).await;
            } else {
                // This replica's counts are in the store, for the holder's summary.
                broker.start_usage_period();
            }
            last_summary = tokio::time::Instant::now();
        }
        if last_checkpoint.elapsed() >= checkpoint_every {
            checkpoint(&broker, &mut signer).await;
            last_checkpoint = tokio::time::Instant::now();
        } else if signer.holding() {
            // Kept between checkpoints, so that one replica goes on signing.
            signer.hold(&**broker.store(), now).await;
        }
        let to_summary = summary_every.saturating_sub(last_summary.elapsed());
        let to_checkpoint = checkpoint_every.saturating_sub(last_checkpoint.elapsed());
        tokio::select! {
            _ = tokio::time::sleep(sleep_for.min(to_summary).min(to_checkpoint)) => {}
            _ = broker.schedule_changed() => {}
            _ = shutdown.wait_for(|stop| *stop) => break,
        }
    }
    let _ = stasher.await;
    flush(&broker).await;
    // The last word before stopping: a checkpoint of everything, summaries included; then
    // another replica signs from now on.
    checkpoint(&broker, &mut signer).await;
    signer.give_up(&**broker.store()).await;
    runner.give_up(&**broker.store()).await;
}

/// The lease of the one process that applies what comes due (activations, expiries, lapses):
/// replicas racing for the same grants would each find most of them taken. Checks never wait
/// for it: they compare the time with each grant's window.
pub const DUE_RUNNER: &str = "scheduler";
/// How often a process that does not run what comes due asks whether it may.
const TAKE_OVER_EVERY: Duration = Duration::from_secs(5);

/// The lease of the one process that signs checkpoints.
pub const CHECKPOINT_SIGNER: &str = "audit-checkpoint-signer";

/// Signs a checkpoint when the log grew, if this process holds the signer's lease (taking it
/// when free): the checkpoint signed, if any.
pub async fn checkpoint(broker: &Broker, signer: &mut ConsumerLease) -> Option<ward_store::CheckpointRecord> {
    if !signer.hold(&**broker.store(), broker.now()).await {
        return None;
    }
    match broker.sign_checkpoint(false).await {
        Ok(Some(record)) => {
            tracing::debug!(size = record.size, "signed an audit checkpoint");
            Some(record)
        }
        Ok(None) => None,
        Err(error) => {
            tracing::error!(%error, "could not sign an audit checkpoint");
            None
        }
    }
}

async fn pass(broker: &Broker, now: Timestamp, first: bool) -> Result<Option<Timestamp>, crate::BrokerError> {
    let report = broker.run_due(now).await?;
    if report.activated + report.expired + report.lapsed > 0 {
        if first {
            tracing::info!(
                activated = report.activated,
                expired = report.expired,
                lapsed = report.lapsed,
                "caught up with what came due while ward was down"
            );
        } else {
            tracing::debug!(?report, "scheduler pass");
        }
    }
    broker.next_due_at().await
}

/// Adds this process's usage counts to the store every [`STASH_USAGE_EVERY`], until
/// `shutdown`.
async fn stash_usage(broker: Arc<Broker>, mut shutdown: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(STASH_USAGE_EVERY) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        if let Err(error) = broker.stash_usage().await {
            tracing::warn!(%error, "could not store usage counts; keeping them for the next attempt");
        }
    }
}

async fn flush(broker: &Broker) {
    if let Err(error) = broker.flush_usage().await {
        tracing::error!(%error, "could not write usage summaries; keeping them for the next attempt");
    }
}

fn until(now: Timestamp, at: Timestamp) -> Duration {
    let ms = at.as_millisecond().saturating_sub(now.as_millisecond());
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}
