//! The audit checkpoints' consumer and `GrantAudits` through a real broker, on SQLite and
//! PostgreSQL, on a clock the tests move: verdicts recorded as `grant.audited` when a grant
//! ends, revised on late events, never twice, and asked for one grant by who may see it.

use ward_core::audit::payload::{self as details, AccessUsed, GrantAudited, Payload, Verdict};
use ward_monitor::checkpoints::CHECKPOINTS;
use ward_monitor::{AuditTally, CheckpointsConsumer, CheckpointsReader, GrantAudits, Reader};

use super::*;

on_both_backends!(
    a_grant_is_audited_when_it_ends_and_not_while_live,
    each_checkpoint_fails_on_what_it_checks,
    a_late_event_revises_the_record_once_even_across_a_restart,
    a_grants_audit_is_seen_by_its_holder_auditors_and_admins,
);

const PASS: Verdict = Verdict::Pass;
const FAIL: Verdict = Verdict::Fail;
const PENDING: Verdict = Verdict::Pending;

fn audited(recorded: u64, revised: u64, unchanged: u64) -> AuditTally {
    AuditTally { recorded, revised, unchanged }
}

impl World {
    fn checkpoints(&self, holder: &str) -> CheckpointsConsumer {
        CheckpointsConsumer::new(self.broker.clone(), holder)
    }

    /// `requester` asks for `minutes` of `read` on payments-api because `reason`; bob approves.
    async fn granted(&self, requester: &str, reason: &str, minutes: u64) -> String {
        let ask = RequestInput {
            resource: "logs:payments-api".into(),
            role: "read".into(),
            duration_seconds: minutes * 60,
            reason: reason.into(),
            ticket: None,
            start_at: None,
            breakglass: false,
        };
        let request = self.broker.create_request(&self.who(requester), ask).await.unwrap();
        let approved = self.broker.approve(&self.who("bob"), request.id.as_str(), None).await.unwrap();
        approved.grant_id.unwrap().0
    }

    async fn checks(&self, who: &str, times: usize) {
        for _ in 0..times {
            let outcome = self.broker.check(&self.who(who), who, "read", "logs:payments-api").await.unwrap();
            assert!(outcome.allowed);
        }
    }

    /// Every `grant.audited` of `grant`, oldest first.
    async fn audits(&self, grant: &str) -> Vec<(AuditEvent, GrantAudited)> {
        self.of_type(EventType::GrantAudited)
            .await
            .into_iter()
            .filter(|e| e.grant_id.as_deref() == Some(grant))
            .map(|e| match Payload::parse(e.event_type, &e.details).unwrap() {
                Payload::GrantAudited(audited) => (e, audited),
                other => panic!("{other:?}"),
            })
            .collect()
    }

    async fn step_until_caught_up(&self, consumer: &mut CheckpointsConsumer) -> AuditTally {
        let mut tally = AuditTally::default();
        loop {
            let step = consumer.step().await.unwrap();
            assert!(step.held);
            tally.recorded += step.tally.recorded;
            tally.revised += step.tally.revised;
            tally.unchanged += step.tally.unchanged;
            if step.read == 0 || self.store.consumer_cursor(CHECKPOINTS).await.unwrap() == self.head().await {
                return tally;
            }
        }
    }
}

fn verdicts(audited: &GrantAudited) -> [Verdict; 3] {
    [audited.justified, audited.used_as_intended, audited.revoked_promptly]
}

async fn a_grant_is_audited_when_it_ends_and_not_while_live(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let mut consumer = w.checkpoints("process-1");
    let grant = w.granted("alice", "INC-4312 checkout 500s", 30).await;
    w.clock.advance(SignedDuration::from_mins(2));
    w.checks("alice", 1).await;
    // Live: nothing recorded; the service says where it stands.
    assert_eq!(w.step_until_caught_up(&mut consumer).await, AuditTally::default());
    assert!(w.audits(&grant).await.is_empty());
    let live = GrantAudits::new(w.broker.clone()).audit(&w.who("alice"), &grant).await.unwrap();
    let now = [
        live.audit.justified.verdict,
        live.audit.used_as_intended.verdict,
        live.audit.revoked_promptly.verdict,
    ];
    assert_eq!(now, [PASS, PENDING, PENDING]);
    assert!(live.audit.recorded.is_none());

    w.clock.advance(SignedDuration::from_mins(5));
    w.broker.release(&w.who("alice"), &grant).await.unwrap();
    let cursor_before = w.store.consumer_cursor(CHECKPOINTS).await.unwrap();
    assert_eq!(w.step_until_caught_up(&mut consumer).await, audited(1, 0, 0));
    assert!(w.store.consumer_cursor(CHECKPOINTS).await.unwrap() > cursor_before);
    let audits = w.audits(&grant).await;
    assert_eq!(audits.len(), 1);
    let (event, record) = &audits[0];
    assert_eq!(verdicts(record), [PASS, PASS, PASS], "{record:#?}");
    assert_eq!((event.actor.as_str(), event.subject.as_deref()), ("ward", Some("alice")));
    assert_eq!(event.resource.as_deref(), Some("logs:payments-api"));
    assert_eq!(
        (record.revision, record.ended_by.as_deref(), record.revocation_lag_ms),
        (1, Some("released"), Some(0))
    );
    assert_eq!(record.idle_ms, Some(5 * 60 * 1000), "held five minutes after its one use");
    let released = w.of_type(EventType::GrantReleased).await[0].seq;
    assert!(record.seqs.revoked_promptly.contains(&released));
    let used = w.of_type(EventType::AccessUsed).await[0].seq;
    assert!(record.seqs.used_as_intended.contains(&used));
    // Its details read as the core's type and write back as recorded.
    assert_eq!(Payload::GrantAudited(record.clone()).to_value(), event.details);
    // Read again, nothing more.
    assert_eq!(w.step_until_caught_up(&mut consumer).await, AuditTally::default());
    assert_eq!(w.audits(&grant).await.len(), 1);

    // The consumer's memory: the grants it knows are live, none once they ended.
    let reader = CheckpointsReader;
    let mut live = reader.fresh(&w.broker);
    let events: Vec<Tailed> = w
        .events()
        .await
        .into_iter()
        .map(|event| Tailed { event: Arc::new(event), committed_here: false })
        .collect();
    let started = events.iter().position(|e| e.event.event_type == EventType::GrantActivated).unwrap();
    reader.observe(&mut live, &events[..=started], w.clock.now());
    assert_eq!(live.len(), 1);
    assert_eq!(live.logs_held(), 2, "the grant's events and its request's");
    reader.observe(&mut live, &events[started + 1..], w.clock.now());
    assert!(live.is_empty(), "an ended grant is forgotten at once");
    // A grant whose end never came is forgotten a day after its expiry.
    reader.observe(&mut live, &events[..=started], w.clock.now());
    reader.observe(&mut live, &[], w.clock.now() + SignedDuration::from_hours(25));
    assert!(live.is_empty());
    assert_eq!(live.logs_held(), 0, "its events and its request's go with it");
}

async fn each_checkpoint_fails_on_what_it_checks(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let mut consumer = w.checkpoints("process-1");
    // A reason that says nothing.
    let thin = w.granted("alice", "fix", 30).await;
    // A use after the release, as a forged (or broken) summary would record it.
    let forged = w.granted("erin", "INC-4312 checkout 500s", 30).await;
    // An expiry the scheduler processed five minutes late.
    let late = w.granted("dave", "INC-4312 checkout 500s", 30).await;
    w.clock.advance(SignedDuration::from_mins(1));
    w.broker.release(&w.who("alice"), &thin).await.unwrap();
    let released = w.broker.release(&w.who("erin"), &forged).await.unwrap().ended_at.unwrap();
    let summary = details::UseSummary {
        summary: details::True,
        role: "read".into(),
        count: 1,
        first_at: released + SignedDuration::from_secs(5),
        last_at: released + SignedDuration::from_secs(5),
        written_at: released + SignedDuration::from_secs(10),
        via: None,
    };
    let event = ward_core::audit::NewEvent {
        subject: Some("erin".into()),
        resource: Some("logs:payments-api".into()),
        grant_id: Some(forged.clone()),
        ..ward_core::audit::NewEvent::new(
            "evt_forged".into(),
            released + SignedDuration::from_secs(5),
            "erin",
            Payload::AccessUsed(AccessUsed::Summary(summary)),
        )
    };
    w.broker.commit_change(ward_store::Change { events: vec![event], ..Default::default() }).await.unwrap();
    w.clock.advance(SignedDuration::from_mins(34));
    w.broker.run_due(w.clock.now()).await.unwrap();
    assert_eq!(w.step_until_caught_up(&mut consumer).await, audited(3, 0, 0));

    let (_, thin) = w.audits(&thin).await.remove(0);
    assert_eq!(verdicts(&thin), [FAIL, PASS, PASS]);
    assert!(
        thin.reasons.iter().any(|r| r.starts_with("justified: the reason says nothing specific")),
        "{:?}",
        thin.reasons
    );
    let (_, forged) = w.audits(&forged).await.remove(0);
    assert_eq!(verdicts(&forged), [PASS, FAIL, PASS]);
    assert!(
        forged
            .reasons
            .iter()
            .any(|r| r.starts_with("used_as_intended: used at") && r.contains("after its release"))
    );
    let (_, late) = w.audits(&late).await.remove(0);
    assert_eq!(verdicts(&late), [PASS, PASS, FAIL]);
    assert_eq!(late.revocation_lag_ms, Some(5 * 60 * 1000));
    assert!(
        late.reasons.iter().any(|r| r.contains("its end reached the log 5m later (tolerance 1m)")),
        "{:?}",
        late.reasons
    );
}

async fn a_late_event_revises_the_record_once_even_across_a_restart(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let mut consumer = w.checkpoints("process-1");
    let grant = w.granted("alice", "INC-4312 checkout 500s", 30).await;
    w.checks("alice", 1).await;
    w.clock.advance(SignedDuration::from_mins(3));
    w.checks("alice", 2).await;
    w.clock.advance(SignedDuration::from_mins(1));
    w.broker.release(&w.who("alice"), &grant).await.unwrap();
    assert_eq!(w.step_until_caught_up(&mut consumer).await, audited(1, 0, 0));
    let first = w.audits(&grant).await[0].1.clone();
    assert_eq!(first.idle_ms, Some(4 * 60 * 1000), "the counted checks are not on record yet");

    // ward stops: the usage summary of the checks counted before the release is written as it
    // stops, after the release; then it starts again.
    drop(consumer);
    w.clock.advance(SignedDuration::from_secs(31));
    assert_eq!(w.broker.flush_usage().await.unwrap(), 1);
    let w = w.restarted().await;
    let mut consumer = w.checkpoints("process-2");
    assert_eq!(w.step_until_caught_up(&mut consumer).await, audited(0, 1, 0));
    let audits = w.audits(&grant).await;
    assert_eq!(audits.len(), 2);
    let second = &audits[1].1;
    assert_eq!((second.revision, second.idle_ms), (2, Some(60 * 1000)), "{second:#?}");
    assert_eq!(verdicts(second), [PASS, PASS, PASS]);

    // Another restart, and a read of everything again: nothing is recorded twice.
    drop(consumer);
    let w = w.restarted().await;
    w.clock.advance(SignedDuration::from_secs(31));
    w.store
        .give_up_lease(&ward_store::Lease { consumer: CHECKPOINTS.into(), holder: "process-2".into() })
        .await
        .unwrap();
    let mut consumer = w.checkpoints("process-3");
    let written = w.head().await;
    assert_eq!(w.step_until_caught_up(&mut consumer).await, AuditTally::default());
    assert_eq!(w.head().await, written);
    // What ward's own consumers write about it (a finding) is not read as activity of the grant.
    let finding = details::FindingRecorded {
        finding_id: "fnd_1".into(),
        rule: "excessive-duration".into(),
        severity: "low".into(),
        key: format!("excessive-duration/{grant}"),
        summary: "held".into(),
        seqs: vec![1],
        occurrences: 1,
    };
    let event = ward_core::audit::NewEvent {
        subject: Some("alice".into()),
        grant_id: Some(grant.clone()),
        ..ward_core::audit::NewEvent::new(
            "evt_finding".into(),
            w.clock.now(),
            "ward",
            Payload::FindingOpened(finding),
        )
    };
    w.broker.commit_change(ward_store::Change { events: vec![event], ..Default::default() }).await.unwrap();
    assert_eq!(w.step_until_caught_up(&mut consumer).await, AuditTally::default(), "not read again");
    let report = GrantAudits::new(w.broker.clone()).audit(&w.who("carol"), &grant).await.unwrap();
    let recorded = report.audit.recorded.as_ref().unwrap();
    assert_eq!((recorded.audited.revision, report.audit.is_recorded()), (2, true));
}

async fn a_grants_audit_is_seen_by_its_holder_auditors_and_admins(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let grant = w.granted("alice", "INC-4312 checkout 500s", 30).await;
    let audits = GrantAudits::new(w.broker.clone());
    for who in ["alice", "carol", "admin"] {
        let report = audits.audit(&w.who(who), &grant).await.unwrap();
        assert_eq!((report.grant.id.as_str(), report.audit.principal.as_str()), (grant.as_str(), "alice"));
    }
    for who in ["bob", "dave"] {
        let hidden = audits.audit(&w.who(who), &grant).await;
        assert!(matches!(hidden, Err(BrokerError::NotFound(_))), "{who}: {hidden:?}");
    }
    let unknown = audits.audit(&w.who("carol"), "grt_nope").await;
    assert!(matches!(unknown, Err(BrokerError::NotFound(_))), "{unknown:?}");
}
