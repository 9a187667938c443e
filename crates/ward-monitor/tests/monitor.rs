//! The rules' consumer and the findings service through a real broker, on SQLite and PostgreSQL,
//! with a clock the tests move (no sleeps, but for the test of several processes).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use ward_core::audit::{AuditEvent, EventType};
use ward_core::{Clock, ManualClock, RequestState};
use ward_monitor::rules::{Rules, RulesFactory};
use ward_monitor::{
    CONSUMER, FindingListing, Findings, LogTail, RulesConsumer, RulesTask, Step, Tailed, Tally,
};
use ward_rules::{Finding, RuleId, Severity};
use ward_service::{Broker, BrokerError, Caller, Config, RequestInput};
use ward_store::{EventFilter, FindingFilter, FindingRecord, FindingState, Store, StoreError};
use ward_store_sql::SqlStore;

mod interposed;
use interposed::Interposed;

/// The quickstart world, with its data directory (and audit signing key) in a temporary folder.
fn config() -> Config {
    static DATA: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    let data = DATA.get_or_init(|| tempfile::tempdir().unwrap()).path().display().to_string();
    let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/quickstart/ward.toml"));
    Config::load(&path, &|name| (name == "WARD_DATA_DIR").then(|| data.clone())).unwrap()
}

fn t0() -> Timestamp {
    Timestamp::from_millisecond(1_800_000_000_000).unwrap()
}

async fn sqlite() -> Option<Arc<dyn Store>> {
    let dir = tempfile::tempdir().unwrap().keep();
    Some(Arc::new(SqlStore::open_sqlite(&dir.join("ward.db")).await.unwrap()))
}

async fn postgres() -> Option<Arc<dyn Store>> {
    let cluster = ward_testkit::postgres()?;
    Some(Arc::new(SqlStore::connect(&cluster.fresh_database()).await.unwrap()))
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite { $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { if let Some(s) = super::sqlite().await { super::$name(s).await } } )* }
        mod on_postgres { $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { if let Some(s) = super::postgres().await { super::$name(s).await } } )* }
    };
}

// After the macro, which they use.
mod checkpoints;
mod insights;

on_both_backends!(
    a_rule_fires_through_the_consumer,
    findings_survive_a_restart_and_a_rerun,
    an_update_waits_for_the_next_batches_and_is_never_lost,
    a_lease_lost_before_the_commit_writes_nothing_and_the_next_holder_writes_once,
    a_failed_commit_is_recorded_once_afterwards,
    a_long_replay_keeps_the_lease,
    the_rules_in_force_fire_through_the_consumer,
    findings_are_seen_by_auditors_and_their_subject,
    findings_move_through_their_lifecycle_with_events,
    a_run_is_for_auditors_over_a_past_period,
    a_shared_tail_reads_each_event_once_and_gives_what_the_store_holds,
);

/// Rules to test the machinery with, standing in for ward's own: `rubber-stamp` once an approver
/// has approved two requests (one finding per approver, holding every approval seen: state kept
/// across events), and `revocation-overdue` for an active grant whose window closed more than a
/// minute before `now` without its end on record (time-driven).
#[derive(Default)]
struct Stand {
    approvals: HashMap<String, Vec<i64>>,
    /// Live grants: their end and the event that made them live.
    live: HashMap<String, (Timestamp, i64, String)>,
}

impl Rules for Stand {
    fn observe(&mut self, event: &AuditEvent) -> Vec<Finding> {
        match event.event_type {
            EventType::ApprovalGranted => {
                let seqs = self.approvals.entry(event.actor.clone()).or_default();
                seqs.push(event.seq);
                if seqs.len() < 2 {
                    return Vec::new();
                }
                vec![Finding {
                    rule: RuleId::RubberStamp,
                    severity: Severity::Medium,
                    key: format!("rubber-stamp:{}", event.actor),
                    subject: Some(event.actor.clone()),
                    resource: event.resource.clone(),
                    grant_id: None,
                    request_id: None,
                    seqs: seqs.clone(),
                    summary: format!("{} approved {} requests", event.actor, seqs.len()),
                    at: event.occurred_at,
                }]
            }
            EventType::GrantActivated => {
                let ends: Timestamp = event.details["expires_at"].as_str().unwrap().parse().unwrap();
                let grant = event.grant_id.clone().unwrap();
                self.live.insert(grant, (ends, event.seq, event.subject.clone().unwrap_or_default()));
                Vec::new()
            }
            EventType::GrantExpired | EventType::GrantReleased | EventType::GrantRevoked => {
                self.live.remove(event.grant_id.as_deref().unwrap_or_default());
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    fn advance(&mut self, now: Timestamp) -> Vec<Finding> {
        let mut overdue: Vec<Finding> = self
            .live
            .iter()
            .filter(|(_, (ends, _, _))| now > *ends + SignedDuration::from_mins(1))
            .map(|(grant, (_, seq, holder))| Finding {
                rule: RuleId::RevocationOverdue,
                severity: Severity::High,
                key: format!("revocation-overdue:{grant}"),
                subject: Some(holder.clone()),
                resource: Some("logs:payments-api".into()),
                grant_id: Some(grant.clone()),
                request_id: None,
                seqs: vec![*seq],
                summary: format!("grant {grant} is still live past its end"),
                at: now,
            })
            .collect();
        overdue.sort_by(|a, b| a.key.cmp(&b.key));
        overdue
    }
}

fn stand() -> RulesFactory {
    Arc::new(|_: &Broker| Box::new(Stand::default()) as Box<dyn Rules>)
}

struct World {
    broker: Arc<Broker>,
    clock: Arc<ManualClock>,
    store: Arc<dyn Store>,
}

impl World {
    async fn new(store: Arc<dyn Store>) -> Self {
        let clock = Arc::new(ManualClock::new(t0()));
        let broker = ward_service::broker_for(&config(), store.clone(), clock.clone()).await.unwrap();
        Self { broker, clock, store }
    }

    /// The same store served again, as after a restart of ward.
    async fn restarted(&self) -> Self {
        let broker =
            ward_service::broker_for(&config(), self.store.clone(), self.clock.clone()).await.unwrap();
        Self { broker, clock: self.clock.clone(), store: self.store.clone() }
    }

    fn who(&self, name: &str) -> Caller {
        self.broker.caller(name).unwrap()
    }

    fn consumer(&self, holder: &str) -> RulesConsumer {
        RulesConsumer::with_rules(self.broker.clone(), holder, stand())
    }

    fn findings(&self) -> Findings {
        Findings::with_rules(self.broker.clone(), stand())
    }

    /// `requester` asks for 30m of `read` on payments-api and `approver` approves.
    async fn approved(&self, requester: &str, approver: &str) -> String {
        let ask = RequestInput {
            resource: "logs:payments-api".into(),
            role: "read".into(),
            duration_seconds: 1800,
            reason: "INC-4312 checkout 500s".into(),
            ticket: None,
            start_at: None,
            breakglass: false,
        };
        let request = self.broker.create_request(&self.who(requester), ask).await.unwrap();
        let approved = self.broker.approve(&self.who(approver), request.id.as_str(), None).await.unwrap();
        assert_eq!(approved.state, RequestState::Approved);
        approved.grant_id.unwrap().0
    }

    async fn events(&self) -> Vec<AuditEvent> {
        self.store.events(&EventFilter { limit: 10_000, ..Default::default() }).await.unwrap()
    }

    async fn of_type(&self, event_type: EventType) -> Vec<AuditEvent> {
        self.events().await.into_iter().filter(|e| e.event_type == event_type).collect()
    }

    async fn all_findings(&self) -> Vec<FindingRecord> {
        self.store.findings(&FindingFilter { limit: 100, ..Default::default() }).await.unwrap()
    }

    async fn finding(&self, key: &str) -> FindingRecord {
        let found = self.store.latest_findings(&[key.to_owned()]).await.unwrap();
        found.into_iter().next().unwrap_or_else(|| panic!("no finding {key}"))
    }

    async fn head(&self) -> i64 {
        self.store.head().await.unwrap().size as i64
    }
}

fn tally(opened: u64, updated: u64, unchanged: u64) -> Tally {
    Tally { opened, updated, unchanged }
}

async fn a_rule_fires_through_the_consumer(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let mut consumer = w.consumer("process-1");
    let quiet = consumer.step().await.unwrap();
    assert!(quiet.held && quiet.read == 0 && quiet.tally == Tally::default());

    w.approved("alice", "bob").await;
    let first = consumer.step().await.unwrap();
    assert_eq!(first.tally, Tally::default(), "one approval is no pattern");
    w.approved("erin", "bob").await;
    let before = w.head().await;
    let second = consumer.step().await.unwrap();
    assert_eq!(second.tally, tally(1, 0, 0));
    // The cursor moved past what was read, in the commit that recorded the finding.
    assert_eq!(w.store.consumer_cursor(CONSUMER).await.unwrap(), before);
    let finding = w.finding("rubber-stamp:bob").await;
    let approvals: Vec<i64> = w.of_type(EventType::ApprovalGranted).await.iter().map(|e| e.seq).collect();
    assert_eq!(
        (finding.state, finding.seqs.clone(), finding.occurrences),
        (FindingState::Open, approvals, 1)
    );
    assert_eq!(finding.subject.as_deref(), Some("bob"));

    let opened = w.of_type(EventType::FindingOpened).await;
    assert_eq!(opened.len(), 1);
    let event = &opened[0];
    assert_eq!((event.actor.as_str(), event.subject.as_deref()), ("ward", Some("bob")));
    assert_eq!(
        event.details,
        serde_json::json!({
            "finding_id": finding.id, "rule": "rubber-stamp", "severity": "medium",
            "key": "rubber-stamp:bob", "summary": "bob approved 2 requests",
            "seqs": finding.seqs, "occurrences": 1,
        })
    );

    // Its own event read back makes no finding; the same condition again updates the open one,
    // once the log goes quiet (an update waits for the next batches, up to `DEFER`).
    assert_eq!(consumer.step().await.unwrap().tally, Tally::default());
    w.approved("dave", "bob").await;
    let cursor = w.store.consumer_cursor(CONSUMER).await.unwrap();
    let deferred = consumer.step().await.unwrap();
    assert!(deferred.deferred && deferred.read > 0 && deferred.tally == Tally::default(), "{deferred:?}");
    assert_eq!(w.store.consumer_cursor(CONSUMER).await.unwrap(), cursor, "nothing committed yet");
    let quiet = consumer.step().await.unwrap();
    assert_eq!((quiet.read, quiet.deferred, quiet.tally), (0, false, tally(0, 1, 0)));
    assert_eq!(w.store.consumer_cursor(CONSUMER).await.unwrap(), w.head().await - 1);
    let updated = w.finding("rubber-stamp:bob").await;
    assert_eq!((updated.id.as_str(), updated.occurrences, updated.seqs.len()), (finding.id.as_str(), 2, 3));
    let update = w.of_type(EventType::FindingUpdated).await;
    assert_eq!(update.len(), 1);
    assert_eq!(update[0].details["occurrences"], 2);

    // Time-driven: the grants' windows close with nobody expiring them (no scheduler here).
    w.clock.advance(SignedDuration::from_mins(30) + SignedDuration::from_secs(30));
    assert_eq!(consumer.step().await.unwrap().tally, Tally::default(), "within the minute's tolerance");
    w.clock.advance(SignedDuration::from_mins(1));
    assert_eq!(consumer.step().await.unwrap().tally, tally(3, 0, 0));
    // Asked again and again: nothing new, nothing written (the first step reads the findings'
    // events, and the three sightings of live findings wait).
    let written = w.head().await;
    assert!(consumer.step().await.unwrap().deferred);
    for _ in 0..3 {
        w.clock.advance(SignedDuration::from_secs(5));
        let step = consumer.step().await.unwrap();
        assert_eq!(step.tally, tally(0, 0, 3));
    }
    assert_eq!(w.head().await, written, "nothing appended");
    assert_eq!(w.all_findings().await.len(), 4);
}

async fn an_update_waits_for_the_next_batches_and_is_never_lost(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let mut consumer = w.consumer("process-1");
    w.approved("alice", "bob").await;
    w.approved("erin", "bob").await;
    assert_eq!(consumer.step().await.unwrap().tally, tally(1, 0, 0), "a new finding: at once");
    // bob's finding grows: that waits...
    w.approved("dave", "bob").await;
    assert!(consumer.step().await.unwrap().deferred);
    // ...until something someone waits for comes (erin's first finding): both are committed.
    w.approved("alice", "erin").await;
    assert!(consumer.step().await.unwrap().deferred, "erin's first approval is no pattern");
    w.approved("dave", "erin").await;
    let both = consumer.step().await.unwrap();
    assert_eq!((both.deferred, both.tally), (false, tally(1, 1, 0)));
    assert_eq!(w.finding("rubber-stamp:bob").await.seqs.len(), 3);

    // An update waits, and the process dies before committing it: the next one reads it again.
    w.approved("alice", "bob").await;
    assert!(consumer.step().await.unwrap().deferred);
    drop(consumer);
    let w = w.restarted().await;
    w.clock.advance(SignedDuration::from_secs(31));
    let mut next = w.consumer("process-2");
    assert_eq!(next.step().await.unwrap().tally, tally(0, 1, 0), "a fresh state knows no finding live");
    assert_eq!(w.finding("rubber-stamp:bob").await.seqs.len(), 4);

    // Held past the window, an update is committed with the next batch.
    let mut eager = next.deferring_up_to(std::time::Duration::ZERO);
    w.approved("erin", "bob").await;
    let step = eager.step().await.unwrap();
    assert_eq!((step.deferred, step.tally), (false, tally(0, 1, 0)));
    assert_eq!(w.of_type(EventType::FindingUpdated).await.len(), 3);
}

async fn findings_survive_a_restart_and_a_rerun(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let mut first = w.consumer("process-1");
    w.approved("alice", "bob").await;
    w.approved("erin", "bob").await;
    assert_eq!(first.step().await.unwrap().tally, tally(1, 0, 0));
    let finding = w.finding("rubber-stamp:bob").await;

    // ward stops (giving its lease up) and starts again on the same store.
    drop(first);
    let w = w.restarted().await;
    w.clock.advance(SignedDuration::from_secs(31));
    let mut second = w.consumer("process-2");
    let resumed = second.step().await.unwrap();
    assert!(resumed.held && resumed.replayed > 0, "{resumed:?}");
    assert_eq!(resumed.tally, Tally::default(), "what the replay saw was recorded already");
    assert_eq!(w.of_type(EventType::FindingOpened).await.len(), 1);
    // The replay rebuilt the rules' state: bob's next approval grows the same finding.
    w.approved("dave", "bob").await;
    assert_eq!(second.step().await.unwrap().tally, tally(0, 1, 0));
    let grown = w.finding("rubber-stamp:bob").await;
    assert_eq!((grown.id.as_str(), grown.seqs.len()), (finding.id.as_str(), 3));

    // Over the whole period, again and again: nothing opened twice, nothing written.
    let findings = w.findings();
    let carol = w.who("carol");
    let written = w.head().await;
    for _ in 0..2 {
        let run = findings.run(&carol, t0() - SignedDuration::from_hours(1), None).await.unwrap();
        assert_eq!(run.tally, tally(0, 0, 1));
        assert!(run.events > 0);
    }
    assert_eq!(w.head().await, written);
    assert_eq!(w.all_findings().await.len(), 1);
    // Resolved, then re-run: the condition holds no event newer than the resolved finding's.
    findings.take_step(&carol, &grown.id, Step::Resolve, "talked to bob").await.unwrap();
    let run = findings.run(&carol, t0() - SignedDuration::from_hours(1), None).await.unwrap();
    assert_eq!(run.tally, tally(0, 0, 1));
    // A run over a period before the consumer saw it opens what it finds.
    let period = w.findings();
    w.clock.advance(SignedDuration::from_hours(2));
    let run = period.run(&carol, t0() - SignedDuration::from_hours(1), None).await.unwrap();
    assert_eq!(run.tally, tally(3, 0, 1), "three grants overdue at `until`, seen by no consumer yet");
}

async fn a_lease_lost_before_the_commit_writes_nothing_and_the_next_holder_writes_once(
    store: Arc<dyn Store>,
) {
    let interposed = Interposed::over(store);
    let w = World::new(interposed.clone()).await;
    let mut first = w.consumer("process-1");
    first.step().await.unwrap();
    w.approved("alice", "bob").await;
    w.approved("erin", "bob").await;
    let cursor = w.store.consumer_cursor(CONSUMER).await.unwrap();
    // process-1 has read and seen the finding; before it commits, its lease lapses and
    // process-2 takes the consumer over.
    let (clock, store) = (w.clock.clone(), interposed.inner.clone());
    interposed.before_next_commit(Box::pin(async move {
        clock.advance(SignedDuration::from_secs(31));
        let lease = ward_store::Lease { consumer: CONSUMER.into(), holder: "process-2".into() };
        assert!(
            store.take_lease(&lease, clock.now(), clock.now() + SignedDuration::from_secs(30)).await.unwrap()
        );
        Ok(())
    }));
    let refused = first.step().await;
    assert!(matches!(refused, Err(StoreError::Conflict)), "{refused:?}");
    assert_eq!(w.store.consumer_cursor(CONSUMER).await.unwrap(), cursor, "the cursor stayed");
    assert!(w.all_findings().await.is_empty(), "the finding went with the cursor");
    assert!(w.of_type(EventType::FindingOpened).await.is_empty());

    let mut second = w.consumer("process-2");
    assert_eq!(second.step().await.unwrap().tally, tally(1, 0, 0));
    assert!(!first.step().await.unwrap().held, "process-1 has lost the consumer");
    assert_eq!(second.step().await.unwrap().tally, Tally::default());
    assert_eq!(w.all_findings().await.len(), 1);
    assert_eq!(w.of_type(EventType::FindingOpened).await.len(), 1);
}

async fn a_failed_commit_is_recorded_once_afterwards(store: Arc<dyn Store>) {
    let interposed = Interposed::over(store);
    let w = World::new(interposed.clone()).await;
    let mut consumer = w.consumer("process-1");
    w.approved("alice", "bob").await;
    w.approved("erin", "bob").await;
    // The disk refuses the commit (or ward dies in it): nothing of it is written.
    interposed
        .before_next_commit(Box::pin(async { Err(StoreError::Unavailable("the disk is full".into())) }));
    assert!(consumer.step().await.is_err());
    assert_eq!(w.store.consumer_cursor(CONSUMER).await.unwrap(), 0);
    assert!(w.all_findings().await.is_empty());
    // The next step starts over from the cursor: the finding is recorded, once.
    assert_eq!(consumer.step().await.unwrap().tally, tally(1, 0, 0));
    assert_eq!(consumer.step().await.unwrap().tally, Tally::default());
    assert_eq!(w.of_type(EventType::FindingOpened).await.len(), 1);
}

/// Findings on bob (an approver) and on alice (a holder): `rubber-stamp` and `revocation-overdue`.
async fn two_findings(w: &World) -> (FindingRecord, FindingRecord) {
    let mut consumer = w.consumer("process-1");
    w.approved("alice", "bob").await;
    w.approved("erin", "bob").await;
    w.clock.advance(SignedDuration::from_mins(32));
    consumer.step().await.unwrap();
    let stamp = w.finding("rubber-stamp:bob").await;
    let overdue = w
        .all_findings()
        .await
        .into_iter()
        .find(|f| f.rule == RuleId::RevocationOverdue && f.subject.as_deref() == Some("alice"))
        .unwrap();
    (stamp, overdue)
}

async fn findings_are_seen_by_auditors_and_their_subject(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let (stamp, overdue) = two_findings(&w).await;
    let findings = w.findings();
    let ids = |page: ward_service::broker::Page<FindingRecord>| {
        page.items.into_iter().map(|f| f.id).collect::<Vec<_>>()
    };
    let list = |who: &str, listing: FindingListing| {
        let (findings, caller) = (findings.clone(), w.who(who));
        async move { findings.list(&caller, FindingListing { limit: 50, ..listing }).await.unwrap() }
    };
    assert_eq!(ids(list("carol", FindingListing::default()).await).len(), 3, "auditors see all");
    assert_eq!(ids(list("admin", FindingListing::default()).await).len(), 3, "admins too");
    assert_eq!(ids(list("bob", FindingListing::default()).await), [stamp.id.as_str()], "bob: about bob");
    assert_eq!(ids(list("alice", FindingListing::default()).await), [overdue.id.as_str()]);
    assert!(ids(list("dave", FindingListing::default()).await).is_empty());
    // Filters and pages.
    let high = FindingListing { min_severity: Some(Severity::High), ..Default::default() };
    assert_eq!(ids(list("carol", high).await).len(), 2);
    let rule = FindingListing { rule: Some(RuleId::RubberStamp), ..Default::default() };
    assert_eq!(ids(list("carol", rule).await), [stamp.id.as_str()]);
    let first =
        findings.list(&w.who("carol"), FindingListing { limit: 2, ..Default::default() }).await.unwrap();
    assert_eq!(first.items.len(), 2);
    let next = first.next.clone().unwrap();
    let rest = list("carol", FindingListing { after: Some(next), ..Default::default() }).await;
    assert_eq!(rest.items.len(), 1);
    assert!(rest.next.is_none());
    let mut all: Vec<String> = first.items.iter().chain(&rest.items).map(|f| f.id.clone()).collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 3, "each once across the pages");
    let unknown = FindingListing { after: Some("fnd_nope".into()), ..Default::default() };
    assert!(matches!(findings.list(&w.who("carol"), unknown).await, Err(BrokerError::Unacceptable(_))));
    // One finding: the same rule as listings, and a hidden one is not found.
    assert_eq!(findings.get(&w.who("bob"), &stamp.id).await.unwrap().id, stamp.id);
    assert!(matches!(findings.get(&w.who("alice"), &stamp.id).await, Err(BrokerError::NotFound(_))));
    assert!(matches!(findings.get(&w.who("carol"), "fnd_nope").await, Err(BrokerError::NotFound(_))));
}

async fn findings_move_through_their_lifecycle_with_events(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let (stamp, overdue) = two_findings(&w).await;
    let findings = w.findings();
    let (carol, admin) = (w.who("carol"), w.who("admin"));

    // Not for the people a finding is about, nor for anyone but auditors and admins.
    let own = findings.take_step(&w.who("bob"), &stamp.id, Step::Dismiss, "fine").await;
    assert!(matches!(own, Err(BrokerError::Forbidden(_))), "{own:?}");
    let other = findings.take_step(&w.who("dave"), &stamp.id, Step::Acknowledge, "x").await;
    assert!(matches!(other, Err(BrokerError::NotFound(_))), "{other:?}");
    let blank = findings.take_step(&carol, &stamp.id, Step::Acknowledge, "  ").await;
    assert!(matches!(blank, Err(BrokerError::Invalid(_))), "{blank:?}");

    let acknowledged =
        findings.take_step(&carol, &stamp.id, Step::Acknowledge, "asking bob's lead").await.unwrap();
    assert_eq!(acknowledged.state, FindingState::Acknowledged);
    assert_eq!(
        (acknowledged.moved_by.as_deref(), acknowledged.comment.as_deref()),
        (Some("carol"), Some("asking bob's lead"))
    );
    assert_eq!(w.store.finding(&stamp.id).await.unwrap().unwrap(), acknowledged);
    let again = findings.take_step(&admin, &stamp.id, Step::Acknowledge, "me too").await;
    assert!(matches!(again, Err(BrokerError::Conflict(_))), "{again:?}");
    let resolved =
        findings.take_step(&admin, &stamp.id, Step::Resolve, "bob now reads what he approves").await.unwrap();
    assert_eq!(resolved.state, FindingState::Resolved);
    let closed = findings.take_step(&carol, &stamp.id, Step::Dismiss, "no").await;
    assert!(matches!(closed, Err(BrokerError::Conflict(_))), "{closed:?}");
    // Open straight to dismissed.
    let dismissed = findings
        .take_step(&carol, &overdue.id, Step::Dismiss, "the scheduler was down for upgrade")
        .await
        .unwrap();
    assert_eq!(dismissed.state, FindingState::Dismissed);

    let moves: Vec<AuditEvent> = w
        .events()
        .await
        .into_iter()
        .filter(|e| {
            matches!(
                e.event_type,
                EventType::FindingAcknowledged | EventType::FindingResolved | EventType::FindingDismissed
            )
        })
        .collect();
    let seen: Vec<(&str, &str, Option<&str>)> =
        moves.iter().map(|e| (e.event_type.as_str(), e.actor.as_str(), e.reason.as_deref())).collect();
    assert_eq!(
        seen,
        [
            ("finding.acknowledged", "carol", Some("asking bob's lead")),
            ("finding.resolved", "admin", Some("bob now reads what he approves")),
            ("finding.dismissed", "carol", Some("the scheduler was down for upgrade")),
        ]
    );
    assert_eq!(
        moves[1].details,
        serde_json::json!({
            "finding_id": stamp.id, "rule": "rubber-stamp", "severity": "medium",
            "from": "acknowledged", "to": "resolved",
        })
    );
    assert_eq!(moves[1].subject.as_deref(), Some("bob"));
    // Every finding event reads as the core's type for it, and writes back as recorded.
    for event in w.events().await.iter().filter(|e| e.event_type.as_str().starts_with("finding.")) {
        let payload = ward_core::audit::payload::Payload::parse(event.event_type, &event.details).unwrap();
        assert_eq!(payload.to_value(), event.details, "{}", event.event_type.as_str());
    }
    // A closed finding is closed: the same condition with new events opens a new one.
    let mut consumer = w.consumer("process-1");
    consumer.step().await.unwrap();
    w.approved("dave", "bob").await;
    assert_eq!(consumer.step().await.unwrap().tally.opened, 1);
    let reopened = w.finding("rubber-stamp:bob").await;
    assert_ne!(reopened.id, stamp.id);
    assert_eq!(reopened.state, FindingState::Open);
}

async fn a_run_is_for_auditors_over_a_past_period(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    w.approved("alice", "bob").await;
    w.approved("erin", "bob").await;
    let findings = w.findings();
    let since = t0() - SignedDuration::from_hours(1);
    let refused = findings.run(&w.who("alice"), since, None).await;
    assert!(matches!(refused, Err(BrokerError::Forbidden(_))), "{refused:?}");
    let future = findings.run(&w.who("carol"), since, Some(t0() + SignedDuration::from_hours(1))).await;
    assert!(matches!(future, Err(BrokerError::Unacceptable(_))), "{future:?}");
    let backwards = findings.run(&w.who("carol"), t0(), Some(since)).await;
    assert!(matches!(backwards, Err(BrokerError::Unacceptable(_))), "{backwards:?}");
    // A period that ends before the second approval sees no pattern.
    let approvals = w.of_type(EventType::ApprovalGranted).await;
    w.clock.advance(SignedDuration::from_secs(1));
    let early = findings.run(&w.who("admin"), since, Some(approvals[1].occurred_at)).await.unwrap();
    assert_eq!(early.tally, Tally::default());
    let whole = findings.run(&w.who("admin"), since, None).await.unwrap();
    assert_eq!((whole.tally, whole.until), (tally(1, 0, 0), w.clock.now()));
    let finding = w.finding("rubber-stamp:bob").await;
    assert_eq!(finding.first_seen_at, approvals[1].occurred_at, "seen when it happened");
    assert_eq!(w.of_type(EventType::FindingOpened).await[0].actor, "ward");
}

async fn eventually(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !done().await {
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Of several ward processes on one store, one runs the rules; when it stops (giving its lease
/// up), another takes over from the cursor, and nothing is recorded twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rules_run_in_one_process_of_several() {
    let store = sqlite().await.unwrap();
    let w = World::new(store.clone()).await;
    let other = w.restarted().await;
    let first = RulesTask::start(w.consumer("process-1"));
    let second = RulesTask::start(other.consumer("process-2"));
    w.approved("alice", "bob").await;
    w.approved("erin", "bob").await;
    eventually("the finding", async || w.all_findings().await.len() == 1).await;
    for _ in 0..3 {
        other.approved("dave", "erin").await;
    }
    eventually("erin's finding grown", async || {
        w.all_findings().await.len() == 2 && w.finding("rubber-stamp:erin").await.seqs.len() == 3
    })
    .await;
    eventually("the cursor at the head", async || {
        w.store.consumer_cursor(CONSUMER).await.unwrap() == w.head().await
    })
    .await;

    // Whichever runs them stops: the other goes on from the cursor.
    first.stop().await;
    w.approved("alice", "bob").await;
    eventually("bob's finding grown", async || w.finding("rubber-stamp:bob").await.seqs.len() == 3).await;
    second.stop().await;
    let opened = w.of_type(EventType::FindingOpened).await.len();
    let updated = w.of_type(EventType::FindingUpdated).await.len();
    assert_eq!(opened, 2, "each condition opened once");
    // bob's grew once; erin's once or not at all (her approvals may fall in one batch or two).
    assert!((1..=2).contains(&updated), "{updated}");
}

/// `n` events no rule reads (numbered from `from`), in one change.
fn filler(n: usize, from: usize) -> ward_store::Change {
    let events = (from..from + n)
        .map(|i| ward_core::audit::NewEvent {
            id: format!("evt_filler_{i}"),
            event_type: EventType::ConfigChanged,
            occurred_at: t0(),
            actor: "admin".into(),
            subject: None,
            resource: None,
            request_id: None,
            grant_id: None,
            reason: None,
            details: serde_json::json!({ "n": i }),
        })
        .collect();
    ward_store::Change { events, ..Default::default() }
}

/// A replay longer than the lease lasts renews it as it goes: lapsing, it would hand the rules
/// to another process (which would replay too) and its own commit would be refused.
async fn a_long_replay_keeps_the_lease(store: Arc<dyn Store>) {
    let interposed = Interposed::over(store);
    let w = World::new(interposed.clone()).await;
    // Enough of a log for the replay to read it in several pages.
    w.broker.commit_change(filler(2500, 0)).await.unwrap();
    let mut first = w.consumer("process-1");
    while first.step().await.unwrap().read > 0 {}
    assert_eq!(w.store.consumer_cursor(CONSUMER).await.unwrap(), w.head().await);
    // process-1 stops; bob approves twice; process-2 starts, each read taking 11 s.
    let lease = ward_store::Lease { consumer: CONSUMER.into(), holder: "process-1".into() };
    w.store.give_up_lease(&lease).await.unwrap();
    w.approved("alice", "bob").await;
    w.approved("erin", "bob").await;
    let clock = w.clock.clone();
    interposed.on_every_read(Arc::new(move || clock.advance(SignedDuration::from_secs(11))));
    let mut second = w.consumer("process-2");
    let step = second.step().await.unwrap();
    assert!(step.replayed >= 2500, "{step:?}");
    assert_eq!(step.tally, tally(1, 0, 0), "committed under a lease kept alive");
}

/// ward's own rules, end to end: a weak reason (`weak-justification`, from an event), a grant
/// nobody ended on time (`revocation-overdue`, time-driven at first, then grown by its late
/// `grant.expired`), recorded once through restarts and re-runs.
async fn the_rules_in_force_fire_through_the_consumer(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let mut consumer = RulesConsumer::new(w.broker.clone(), "process-1");
    consumer.step().await.unwrap();
    let ask = RequestInput {
        resource: "logs:payments-api".into(),
        role: "read".into(),
        duration_seconds: 1800,
        reason: "fix".into(),
        ticket: None,
        start_at: None,
        breakglass: false,
    };
    let request = w.broker.create_request(&w.who("alice"), ask).await.unwrap();
    let approved = w.broker.approve(&w.who("bob"), request.id.as_str(), None).await.unwrap();
    let grant = approved.grant_id.unwrap().0;
    assert!(consumer.step().await.unwrap().tally.opened >= 1);
    let weak = w.finding(&format!("weak-justification/{}", request.id.as_str())).await;
    assert_eq!((weak.rule, weak.subject.as_deref()), (RuleId::WeakJustification, Some("alice")));
    let created = w.of_type(EventType::RequestCreated).await[0].seq;
    assert_eq!(weak.seqs, [created]);

    // The window closes and nobody ends the grant (no scheduler here): overdue past the minute.
    w.clock.advance(SignedDuration::from_mins(30) + SignedDuration::from_secs(59));
    consumer.step().await.unwrap();
    let key = format!("revocation-overdue/{grant}");
    assert!(
        w.store.latest_findings(std::slice::from_ref(&key)).await.unwrap().is_empty(),
        "within tolerance"
    );
    w.clock.advance(SignedDuration::from_secs(2));
    assert_eq!(consumer.step().await.unwrap().tally.opened, 1);
    let overdue = w.finding(&key).await;
    assert_eq!(
        (overdue.rule, overdue.grant_id.as_deref()),
        (RuleId::RevocationOverdue, Some(grant.as_str()))
    );
    // The expiry, recorded late, is the same condition: the finding grows, none is opened.
    w.broker.run_due(w.clock.now()).await.unwrap();
    assert!(consumer.step().await.unwrap().deferred, "an update waits");
    let step = consumer.step().await.unwrap();
    assert_eq!((step.tally.opened, step.tally.updated), (0, 1), "{step:?}");
    let grown = w.finding(&key).await;
    let expired = w.of_type(EventType::GrantExpired).await[0].seq;
    assert_eq!((grown.id.as_str(), grown.occurrences), (overdue.id.as_str(), 2));
    assert!(grown.seqs.contains(&expired), "{:?}", grown.seqs);

    // A restart replays and records nothing again; neither does a run over the whole period.
    let recorded = w.all_findings().await;
    let w = w.restarted().await;
    w.clock.advance(SignedDuration::from_secs(31));
    let mut again = RulesConsumer::new(w.broker.clone(), "process-2");
    let resumed = again.step().await.unwrap();
    assert!(resumed.replayed > 0 && resumed.tally.opened + resumed.tally.updated == 0, "{resumed:?}");
    let run = Findings::new(w.broker.clone())
        .run(&w.who("carol"), t0() - SignedDuration::from_hours(1), None)
        .await
        .unwrap();
    assert_eq!((run.tally.opened, run.tally.updated), (0, 0), "{run:?}");
    assert_eq!(run.tally.unchanged as usize, recorded.len());
    assert_eq!(w.all_findings().await, recorded);
}

/// The events of a read through a tail.
fn plain(read: Vec<Tailed>) -> Vec<Arc<AuditEvent>> {
    read.into_iter().map(|e| e.event).collect()
}

/// What the consumers of one process read through their shared [`LogTail`]: exactly what the
/// store returns for the same ask, the events it holds read from the store once.
async fn a_shared_tail_reads_each_event_once_and_gives_what_the_store_holds(store: Arc<dyn Store>) {
    let interposed = Interposed::over(store.clone());
    let w = World::new(interposed.clone()).await;
    w.broker.commit_change(filler(2500, 0)).await.unwrap();
    let reads = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = reads.clone();
    interposed.on_every_read(Arc::new(move || {
        counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }));
    let reads = move || reads.load(std::sync::atomic::Ordering::SeqCst);
    let tail = LogTail::new(1500);
    let direct = |after: i64, limit: u32| {
        let store = store.clone();
        async move {
            let filter = EventFilter { after_seq: Some(after), limit, ..EventFilter::default() };
            store.events(&filter).await.unwrap().into_iter().map(Arc::new).collect::<Vec<_>>()
        }
    };
    let through_tail = |after: i64, limit: u32| tail.read_after(&*interposed, after, limit);

    // The first consumer reads; the second, a moment later, reads the same from the tail.
    let first = plain(through_tail(0, 1000).await.unwrap());
    assert_eq!(first, direct(0, 1000).await);
    assert_eq!(reads(), 1);
    assert_eq!(plain(through_tail(0, 1000).await.unwrap()), first);
    assert_eq!(reads(), 1, "the second consumer's batch came from the tail");
    // Half held, half read: one read, for what the tail did not hold.
    let straddling = plain(through_tail(500, 1000).await.unwrap());
    assert_eq!(straddling, direct(500, 1000).await);
    assert_eq!(reads(), 2);
    // New commits are read once, after what is held, with no gap.
    w.broker.commit_change(filler(10, 2500)).await.unwrap();
    let head = w.head().await;
    let to_head = plain(through_tail(1500, 5000).await.unwrap());
    assert_eq!(to_head, direct(1500, 5000).await);
    assert_eq!(to_head.last().unwrap().seq, head);
    assert_eq!(reads(), 3);
    // Short of the ask, what is held is completed from the store (here: nothing more came).
    assert_eq!(plain(through_tail(1500, 5000).await.unwrap()), to_head);
    assert_eq!(reads(), 4);
    // The tail keeps 1,500 events: a consumer far behind reads the store, and leaves the tail
    // to those that follow the log.
    assert_eq!(plain(through_tail(10, 20).await.unwrap()), direct(10, 20).await);
    assert_eq!(reads(), 5);
    assert_eq!(plain(through_tail(head - 100, 50).await.unwrap()), direct(head - 100, 50).await);
    assert_eq!(reads(), 5, "still held");
    // Caught up: nothing held past the cursor, the store says nothing more.
    assert!(plain(through_tail(head, 1000).await.unwrap()).is_empty());

    // Following the broker: what this process commits is held as the commit returned it.
    let following = LogTail::following(&w.broker, 1500);
    w.broker.commit_change(filler(20, 3000)).await.unwrap();
    let before = reads();
    let committed = following.read_after(&*interposed, head, 20).await.unwrap();
    assert_eq!(reads(), before, "what this process committed came from its commit");
    assert!(committed.iter().all(|e| e.committed_here));
    assert_eq!(plain(committed), direct(head, 20).await);
    // Another process's commit is a gap, read from the store, with what came after it.
    store.commit(filler(5, 4000), t0()).await.unwrap();
    w.broker.commit_change(filler(5, 5000)).await.unwrap();
    let past_the_gap = following.read_after(&*interposed, head + 20, 10).await.unwrap();
    let here: Vec<bool> = past_the_gap.iter().map(|e| e.committed_here).collect();
    assert_eq!(here, [false; 10], "past the gap, all read from the store");
    assert_eq!(plain(past_the_gap), direct(head + 20, 10).await);
    assert_eq!(reads(), before + 1);
}
