//! One sink's delivery: a consumer of the audit log (lease `notify:<sink>` in the store, its
//! cursor the last `seq` it has handled), woken by commits. Each event the sink is told of is
//! delivered at least once, in order of `seq`, a few at a time; the cursor moves only past
//! events that are delivered (or not for this sink), so a sink that is down, slow or refusing
//! loses nothing and a restart resumes where delivery stopped. The notice before a grant ends is
//! time-driven: a second cursor (`notify:<sink>:expiring`) holds the time up to which notices
//! are given, moved the same way.
//!
//! A delivery that fails is retried with exponential backoff and jitter (capped), each attempt
//! with its own timeout; after `failed_after` attempts in a row it is recorded once as
//! `notification.failed` (not at every retry: a dead sink cannot flood the log) and retried
//! until it goes through. Nothing of this runs on the commit path.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;
use jiff::{SignedDuration, Timestamp};
use tokio::sync::watch;
use ward_core::audit::NewEvent;
use ward_core::audit::payload::{NotificationFailed, Payload};
use ward_core::lifecycle::IdSource;
use ward_service::Broker;
use ward_service::consumer::ConsumerLease;
use ward_service::ids::RandomIds;
use ward_service::notify_settings::{Notice, NotifySink, SinkKind, SlackSettings};
use ward_store::{EventFilter, Store, StoreError};

use crate::message::{Composer, Outgoing};
use crate::webhook;

/// Events read per step.
const BATCH: u32 = 256;
/// Notices before expiry given per step.
const NOTICES_BATCH: u32 = 1000;
/// How often an idle sink looks for work without being woken, and renews its lease.
const IDLE_POLL: Duration = Duration::from_secs(5);
/// How much of a receiver's answer is read (so the connection can be used again); the rest is
/// not waited for.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// How deliveries are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// One attempt's limit, connecting included.
    pub attempt_timeout: Duration,
    /// The wait after the first failure; it doubles with each further one ...
    pub first_backoff: Duration,
    /// ... up to this.
    pub max_backoff: Duration,
    /// After this many failed attempts in a row, the failure is recorded (once per streak).
    pub failed_after: u32,
}

impl Default for Retry {
    fn default() -> Self {
        Self {
            attempt_timeout: Duration::from_secs(10),
            first_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(60),
            failed_after: 5,
        }
    }
}

impl Retry {
    /// The wait before attempt `failures + 1`: exponential, capped, and between half and all of
    /// it at random, so that sinks failing together do not retry in step.
    fn backoff(&self, failures: u32) -> Duration {
        let doubled = self.first_backoff.saturating_mul(1 << failures.saturating_sub(1).min(20));
        let wait = doubled.min(self.max_backoff);
        let mut random = [0u8; 4];
        let fraction = match getrandom::fill(&mut random) {
            Ok(()) => f64::from(u32::from_le_bytes(random)) / f64::from(u32::MAX),
            Err(_) => 1.0,
        };
        wait / 2 + wait.mul_f64(fraction / 2.0)
    }
}

/// What one step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Another process holds the sink's lease.
    NotHolder,
    /// Delivered what was owed; more may be waiting.
    Progressed,
    /// Nothing is owed; the next notice before expiry falls due at this time, if any.
    Idle { next_notice_at: Option<Timestamp> },
    /// A delivery (or the store) failed; try again after this.
    Failed { retry_in: Duration },
}

/// A delivery that did not go through.
#[derive(Debug, Clone)]
struct Failure {
    /// The message's id.
    id: String,
    /// The event it is for (none for a notice before expiry).
    seq: Option<i64>,
    error: String,
    status: Option<u16>,
    /// What the receiver asked for (`Retry-After` on 429 and 503).
    retry_after: Option<Duration>,
}

enum StepError {
    Store(String),
    Sink(Failure),
}

impl From<StoreError> for StepError {
    fn from(error: StoreError) -> Self {
        Self::Store(error.to_string())
    }
}

/// Failed attempts in a row at one message.
struct Streak {
    id: String,
    attempts: u32,
    recorded: bool,
}

/// Delivers to one sink, step by step: [`run`] drives it; tests call [`SinkWorker::step`].
pub struct SinkWorker {
    broker: Arc<Broker>,
    sink: NotifySink,
    slack: Option<SlackSettings>,
    notice_seconds: u64,
    lease: ConsumerLease,
    http: reqwest::Client,
    retry: Retry,
    /// Whether the cursors are known to exist (set on the sink's first start).
    started: bool,
    /// Where a new sink starts: the log's size when this process started serving (when none,
    /// at its first step).
    start_from: Option<i64>,
    /// Where browsers reach ward: messages about a request link to its page there.
    web_url: Option<String>,
    /// Messages delivered beyond the first one that failed: not sent again while this process
    /// retries (after a restart they may be: delivery is at least once).
    events_ahead: HashSet<String>,
    notices_ahead: HashSet<String>,
    streak: Option<Streak>,
    store_failures: u32,
    /// When the next notice before expiry falls due, as the last pass found (`Some(None)`: none
    /// is coming). A pass runs again when that time comes or when events arrive (a new or
    /// extended grant), and after a failed one.
    next_notice_at: Option<Option<Timestamp>>,
}

impl SinkWorker {
    pub fn new(
        broker: Arc<Broker>,
        sink: NotifySink,
        slack: Option<SlackSettings>,
        notice_seconds: u64,
        holder: &str,
        retry: Retry,
    ) -> Result<Self, String> {
        // No redirects: a signed notification goes where it was configured to go, nowhere else.
        let http = reqwest::Client::builder()
            .timeout(retry.attempt_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("ward/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("sink `{}`: cannot set up HTTP: {e}", sink.name))?;
        let lease = ConsumerLease::new(&sink.consumer(), holder);
        Ok(Self {
            broker,
            sink,
            slack,
            notice_seconds,
            lease,
            http,
            retry,
            started: false,
            start_from: None,
            web_url: None,
            events_ahead: HashSet::new(),
            notices_ahead: HashSet::new(),
            streak: None,
            store_failures: 0,
            next_notice_at: None,
        })
    }

    /// A new sink starts after event `seq` (the log's size when the serving process started,
    /// so that nothing committed once it serves is missed).
    pub fn starting_after(mut self, seq: i64) -> Self {
        self.start_from = Some(seq);
        self
    }

    /// Messages about a request link to its page under `web_url` (`[server] public_url`).
    pub fn linking_to(mut self, web_url: Option<String>) -> Self {
        self.web_url = web_url;
        self
    }

    fn expiring_cursor(&self) -> String {
        format!("{}:expiring", self.sink.consumer())
    }

    fn notice(&self) -> SignedDuration {
        SignedDuration::from_secs(self.notice_seconds.cast_signed())
    }

    /// Delivers what is owed now, if this process holds the sink's lease.
    pub async fn step(&mut self) -> Step {
        let store = self.broker.store().clone();
        let now = self.broker.now();
        if !self.lease.hold(&*store, now).await {
            return Step::NotHolder;
        }
        match self.deliver(&*store).await {
            Ok(step) => {
                self.streak = None;
                self.store_failures = 0;
                step
            }
            Err(StepError::Store(error)) => {
                self.store_failures += 1;
                let retry_in = self.retry.backoff(self.store_failures);
                tracing::warn!(sink = %self.sink.name, %error, ?retry_in, "notifications wait for the store");
                Step::Failed { retry_in }
            }
            Err(StepError::Sink(failure)) => self.failed(failure).await,
        }
    }

    async fn deliver(&mut self, store: &dyn Store) -> Result<Step, StepError> {
        if !self.started {
            self.start(store).await?;
            self.started = true;
        }
        let events = self.deliver_events(store).await?;
        let mut notices = false;
        if self.sink.wants(Notice::GrantExpiring) {
            let now = self.broker.now();
            let due = match self.next_notice_at {
                None => true,
                Some(next) => events || next.is_some_and(|at| now >= at),
            };
            if due {
                self.next_notice_at = None;
                let (sent, next) = self.deliver_notices(store).await?;
                (notices, self.next_notice_at) = (sent, Some(next));
            }
        }
        let next_notice_at = self.next_notice_at.flatten();
        Ok(if events || notices { Step::Progressed } else { Step::Idle { next_notice_at } })
    }

    /// A new sink starts at the log's head and the present: it owes nothing from before it
    /// existed (a new Slack channel is not sent a year of requests). The expiring cursor, never 0
    /// once set, says the sink has started; it is written last, so a crash in between starts
    /// again rather than sending the whole history.
    async fn start(&self, store: &dyn Store) -> Result<(), StepError> {
        if store.forward_cursor(&self.expiring_cursor()).await? != 0 {
            return Ok(());
        }
        let now = self.broker.now();
        let head = match self.start_from {
            Some(seq) => seq,
            None => i64::try_from(store.head().await?.size).unwrap_or(i64::MAX),
        };
        store.set_forward_cursor(&self.sink.consumer(), head, self.lease.lease(), now).await?;
        store
            .set_forward_cursor(&self.expiring_cursor(), now.as_millisecond(), self.lease.lease(), now)
            .await?;
        tracing::info!(sink = %self.sink.name, from_seq = head + 1, "a new notification sink starts");
        Ok(())
    }

    fn composer(&self) -> Composer<'_> {
        Composer {
            broker: &self.broker,
            sink: &self.sink,
            slack: self.slack.as_ref(),
            notice_seconds: self.notice_seconds,
            web_url: self.web_url.as_deref(),
        }
    }

    /// Delivers the sink's events after its cursor (one batch); whether any were handled.
    async fn deliver_events(&mut self, store: &dyn Store) -> Result<bool, StepError> {
        let consumer = self.sink.consumer();
        let cursor = store.forward_cursor(&consumer).await?;
        self.lease.report_lag(self.broker.store(), cursor).await;
        let filter = EventFilter { after_seq: Some(cursor), limit: BATCH, ..EventFilter::default() };
        let events = store.events(&filter).await?;
        if events.is_empty() {
            return Ok(false);
        }
        let composer = self.composer();
        let mut items = Vec::with_capacity(events.len());
        for event in &events {
            let message = composer.event(event).await?;
            items.push((event.seq, message.filter(|m| !self.events_ahead.contains(&m.id))));
        }
        let to_send: Vec<&Outgoing> = items.iter().filter_map(|(_, m)| m.as_ref()).collect();
        let results = self.send_all(&to_send).await;
        let mut results = results.into_iter();
        let (mut done_through, mut failure) = (cursor, None);
        for (seq, message) in &items {
            let delivered = match message {
                None => true,
                Some(message) => match results.next() {
                    Some(Ok(())) => {
                        if failure.is_some() {
                            self.events_ahead.insert(message.id.clone());
                        }
                        true
                    }
                    Some(Err(mut error)) => {
                        error.seq = Some(*seq);
                        failure.get_or_insert(error);
                        false
                    }
                    None => false,
                },
            };
            if delivered && failure.is_none() {
                done_through = *seq;
            }
        }
        if done_through > cursor {
            // Refused when the lease lapsed and another process took the sink over: it goes on
            // from the cursor it finds.
            store.set_forward_cursor(&consumer, done_through, self.lease.lease(), self.broker.now()).await?;
        }
        match failure {
            Some(failure) => Err(StepError::Sink(failure)),
            None => {
                self.events_ahead.clear();
                Ok(true)
            }
        }
    }

    /// Gives the notices before expiry that fell due since the expiring cursor; whether any
    /// were sent, and when the next one falls due.
    async fn deliver_notices(&mut self, store: &dyn Store) -> Result<(bool, Option<Timestamp>), StepError> {
        let key = self.expiring_cursor();
        let notice = self.notice();
        let now = self.broker.now();
        let given_until = Timestamp::from_millisecond(store.forward_cursor(&key).await?)
            .map_err(|e| StepError::Store(format!("the expiring cursor: {e}")))?;
        let mut sent = false;
        if given_until < now {
            let grants = store.grants_expiring(given_until + notice, now + notice, NOTICES_BATCH).await?;
            // A grant already past its end hears that it ended instead; one whose whole window is
            // shorter than the notice was asked for less than that.
            let owed: Vec<Outgoing> = grants
                .iter()
                .filter(|g| g.expires_at > now && g.expires_at.duration_since(g.starts_at) > notice)
                .map(|g| self.composer().expiring(g))
                .filter(|m| !self.notices_ahead.contains(&m.id))
                .collect();
            let results = self.send_all(&owed.iter().collect::<Vec<_>>()).await;
            let mut failure = None;
            for (message, result) in owed.iter().zip(results) {
                match result {
                    Ok(()) => {
                        self.notices_ahead.insert(message.id.clone());
                    }
                    Err(error) => {
                        failure.get_or_insert(error);
                    }
                }
            }
            if let Some(failure) = failure {
                return Err(StepError::Sink(failure));
            }
            // A full batch: the rest is given from its last grant's notice time on.
            let moved_to = match grants.last() {
                Some(last) if grants.len() == NOTICES_BATCH as usize => last.expires_at - notice,
                _ => now,
            };
            store.set_forward_cursor(&key, moved_to.as_millisecond(), self.lease.lease(), now).await?;
            self.notices_ahead.clear();
            sent = !owed.is_empty();
        }
        let next = store.grants_expiring(now + notice, Timestamp::MAX, 1).await?;
        Ok((sent, next.first().map(|g| g.expires_at - notice)))
    }

    /// Sends `messages` a few at a time (one at a time to Slack, whose channel reads in order);
    /// the results in the same order.
    async fn send_all(&self, messages: &[&Outgoing]) -> Vec<Result<(), Failure>> {
        let at_once = match self.sink.kind {
            SinkKind::Webhook { .. } => 8,
            SinkKind::Slack => 1,
        };
        let mut results = Vec::with_capacity(messages.len());
        let mut in_flight = FuturesOrdered::new();
        for message in messages {
            if in_flight.len() >= at_once
                && let Some(result) = in_flight.next().await
            {
                results.push(result);
            }
            in_flight.push_back(self.send(message));
        }
        while let Some(result) = in_flight.next().await {
            results.push(result);
        }
        results
    }

    /// One attempt at one message.
    async fn send(&self, message: &Outgoing) -> Result<(), Failure> {
        let failure = |error: String, status: Option<u16>, retry_after: Option<Duration>| Failure {
            id: message.id.clone(),
            seq: None,
            error,
            status,
            retry_after,
        };
        let mut request = self
            .http
            .post(self.sink.url.as_str())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(message.body.clone());
        if let SinkKind::Webhook { secret } = &self.sink.kind {
            // Each attempt is signed afresh (a new timestamp), with the same id.
            let timestamp = self.broker.now().as_second();
            request = request
                .header(webhook::ID_HEADER, &message.id)
                .header(webhook::TIMESTAMP_HEADER, timestamp)
                .header(
                    webhook::SIGNATURE_HEADER,
                    webhook::sign(secret.bytes(), &message.id, timestamp, &message.body),
                );
        }
        let mut response = match request.send().await {
            Ok(response) => response,
            Err(error) => return Err(failure(self.describe(&error), None, None)),
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let mut read = 0;
        while let Ok(Some(chunk)) = response.chunk().await {
            read += chunk.len();
            if read > MAX_ANSWER_BYTES {
                break;
            }
        }
        if status.is_success() {
            metrics::counter!("ward_notifications_delivered_total", "sink" => self.sink.name.clone())
                .increment(1);
            Ok(())
        } else {
            Err(failure(
                format!("{} answered {status}", self.sink.url.shown()),
                Some(status.as_u16()),
                retry_after,
            ))
        }
    }

    /// What went wrong, without the URL (a Slack webhook's URL is a credential).
    fn describe(&self, error: &reqwest::Error) -> String {
        let to = self.sink.url.shown();
        if error.is_timeout() {
            return format!("{to} did not answer within {:?}", self.retry.attempt_timeout);
        }
        let mut text = if error.is_connect() {
            format!("cannot connect to {to}")
        } else {
            format!("sending to {to} failed")
        };
        let mut source = std::error::Error::source(error);
        while let Some(cause) = source {
            text.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        text
    }

    async fn failed(&mut self, failure: Failure) -> Step {
        metrics::counter!("ward_notification_failures_total", "sink" => self.sink.name.clone()).increment(1);
        let mut streak = match self.streak.take() {
            Some(streak) if streak.id == failure.id => streak,
            _ => Streak { id: failure.id.clone(), attempts: 0, recorded: false },
        };
        streak.attempts += 1;
        if streak.attempts >= self.retry.failed_after && !streak.recorded {
            streak.recorded = self.record(&failure, streak.attempts).await;
        }
        let retry_in = failure
            .retry_after
            .map(|asked| asked.min(self.retry.max_backoff))
            .unwrap_or_else(|| self.retry.backoff(streak.attempts));
        tracing::warn!(
            sink = %self.sink.name, message = %failure.id, attempts = streak.attempts, error = %failure.error,
            ?retry_in, "a notification was not delivered; it is retried"
        );
        self.streak = Some(streak);
        Step::Failed { retry_in }
    }

    /// Records the failing streak as `notification.failed`; whether it is on record.
    async fn record(&self, failure: &Failure, attempts: u32) -> bool {
        let payload = Payload::NotificationFailed(NotificationFailed {
            sink: self.sink.name.clone(),
            event_seq: failure.seq,
            message_id: failure.id.clone(),
            attempts,
            error: failure.error.clone(),
            status: failure.status,
        });
        let event = NewEvent {
            reason: Some(failure.error.clone()),
            ..NewEvent::new(RandomIds.event_id(), self.broker.now(), ward_core::SYSTEM_ACTOR, payload)
        };
        match self.broker.record(vec![event]).await {
            Ok(_) => true,
            Err(error) => {
                tracing::error!(sink = %self.sink.name, %error, "cannot record that notifications fail");
                false
            }
        }
    }

    /// Gives the lease up (a clean shutdown), so that another process takes the sink over at once.
    pub async fn give_up(&mut self) {
        self.lease.give_up(&**self.broker.store()).await;
    }
}

/// Runs `worker` until `shutdown` turns true: after each step it waits for new events
/// (`appended`), the next notice's time, a retry's backoff, or a few seconds.
pub async fn run(
    mut worker: SinkWorker,
    mut appended: watch::Receiver<i64>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        if *shutdown.borrow() {
            break;
        }
        let step = worker.step().await;
        let wait = match step {
            Step::Progressed => continue,
            Step::NotHolder => IDLE_POLL,
            Step::Failed { retry_in } => retry_in,
            Step::Idle { next_notice_at } => next_notice_at
                .and_then(|at| Duration::try_from(at.duration_since(worker.broker.now())).ok())
                .map_or(IDLE_POLL, |until| until.min(IDLE_POLL)),
        };
        let idle = matches!(step, Step::Idle { .. });
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            Ok(()) = appended.changed(), if idle => {}
            _ = shutdown.changed() => {}
        }
    }
    worker.give_up().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_cap_with_jitter() {
        let retry = Retry {
            first_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            ..Retry::default()
        };
        for (failures, full) in [(1, 100), (2, 200), (3, 400), (4, 800), (5, 1000), (40, 1000)] {
            let wait = retry.backoff(failures);
            let full = Duration::from_millis(full);
            assert!(
                wait >= full / 2 && wait <= full,
                "{failures} failures: {wait:?} not in [{:?}, {full:?}]",
                full / 2
            );
        }
    }
}
