//! Approval workflows through the broker: stages, approving in return, holder limits,
//! extensions, break-glass reviews, automatic denial, on-call sources.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use ward_core::ReviewState;
use ward_service::ExtendInput;

use super::*;

on_both_backends!(
    stages_must_each_be_met,
    approving_in_return_is_refused_within_the_window,
    the_holder_limit_refuses_one_too_many,
    extensions_go_through_the_policy_and_move_expiry,
    break_glass_grants_at_once_and_is_reviewed,
    automatic_denial_wins_and_is_on_record,
    on_call_comes_from_the_lookup_and_fails_closed,
    a_broken_schedule_keeps_the_last_good_one,
    an_extension_respects_the_holder_limit,
);

fn refused<T: std::fmt::Debug>(result: Result<T, BrokerError>) -> LifecycleError {
    match result {
        Err(BrokerError::Lifecycle(e)) => e,
        other => panic!("expected a lifecycle refusal, got {other:?}"),
    }
}

fn ledger(seconds: u64) -> RequestInput {
    ask("logs:ledger", "read", seconds)
}

fn incident(input: RequestInput) -> RequestInput {
    RequestInput { ticket: Some("INC-5120".into()), ..input }
}

impl World {
    /// `who` asks for ledger reads; bob (payments lead) and sam (security) fill the two stages.
    async fn ledger_grant(&self, who: &str) -> Result<AccessRequest, BrokerError> {
        let request = self.broker.create_request(&self.who(who), ledger(3600)).await.unwrap();
        self.broker.approve(&self.who("bob"), request.id.as_str(), None).await.unwrap();
        self.broker.approve(&self.who("sam"), request.id.as_str(), None).await
    }
}

async fn stages_must_each_be_met(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let alice = w.who("alice");
    let explained = w.broker.explain(&alice, None, &ledger(3600)).await.unwrap();
    assert_eq!((explained.decision.as_str(), explained.approvals_required), ("pending", 2));
    let stages: Vec<(&str, &[String])> =
        explained.stages.iter().map(|s| (s.name.as_str(), s.approvers.as_slice())).collect();
    assert_eq!(stages[0], ("payments-leads", &["bob".to_owned(), "erin".to_owned()][..]));
    assert_eq!(stages[1], ("security", &["sam".to_owned()][..]));

    let request = w.broker.create_request(&alice, ledger(3600)).await.unwrap();
    let id = request.id.as_str();
    let one = w.broker.approve(&w.who("bob"), id, None).await.unwrap();
    assert_eq!(one.approvals[0].stages, ["payments-leads"]);
    // A second payments lead makes two approvals, but the security stage is still open.
    let two = w.broker.approve(&w.who("erin"), id, None).await.unwrap();
    assert_eq!(two.state, RequestState::Pending);
    assert_eq!(two.unmet_stages().len(), 1);
    assert_eq!(two.unmet_stages()[0].name, "security");
    assert!(matches!(w.broker.approve(&w.who("dave"), id, None).await, Err(BrokerError::NotFound(_))));
    let done = w.broker.approve(&w.who("sam"), id, None).await.unwrap();
    assert_eq!(done.state, RequestState::Approved);
    let approved =
        w.events().await.into_iter().rev().find(|e| e.event_type == EventType::ApprovalGranted).unwrap();
    assert_eq!(approved.details["stages"][0], "security");
}

async fn approving_in_return_is_refused_within_the_window(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    // bob approves sam's ledger request (and erin, a second lead, fills nothing new: sam's
    // request still needs security, which only sam could give — so bob's approval is enough
    // for what this test needs: bob approved one of sam's requests).
    let sams = w.broker.create_request(&w.who("sam"), ledger(3600)).await.unwrap();
    w.broker.approve(&w.who("bob"), sams.id.as_str(), None).await.unwrap();
    // Now bob asks, and sam would approve him in return.
    let bobs = w.broker.create_request(&w.who("bob"), ledger(3600)).await.unwrap();
    let error = refused(w.broker.approve(&w.who("sam"), bobs.id.as_str(), None).await);
    assert!(matches!(error, LifecycleError::Reciprocal { .. }), "{error}");
    assert!(error.to_string().contains("within the last 1h"), "{error}");
    let recorded = w.events().await.into_iter().last().unwrap();
    assert_eq!((recorded.event_type, recorded.actor.as_str()), (EventType::AccessDenied, "sam"));
    // An hour later, the approval stands on its own.
    w.clock.advance(SignedDuration::from_mins(61));
    let bobs = w.broker.create_request(&w.who("bob"), ledger(3600)).await.unwrap();
    w.broker.approve(&w.who("sam"), bobs.id.as_str(), None).await.unwrap();
}

async fn the_holder_limit_refuses_one_too_many(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    // dave is on call for the ledger (oncall.toml): 30 minutes at once with an incident ticket.
    let daves = w.broker.create_request(&w.who("dave"), incident(ledger(1800))).await.unwrap();
    assert_eq!(daves.state, RequestState::Approved);
    assert_eq!(daves.on_call_schedules, ["ledger-primary"]);
    let alices = w.ledger_grant("alice").await.unwrap();
    // Two hold it; the policy allows two. erin's last approval is refused, and nothing changes.
    let error = refused(w.ledger_grant("erin").await);
    assert!(matches!(error, LifecycleError::TooManyHolders { max: 2, .. }), "{error}");
    let listing = RequestListing { mine: true, limit: 10, ..RequestListing::default() };
    let erins = w.broker.list_requests(&w.who("erin"), listing).await.unwrap().items;
    assert_eq!(erins[0].state, RequestState::Pending);
    // alice is done; now erin fits.
    w.broker.release(&w.who("alice"), alices.grant_id.unwrap().as_str()).await.unwrap();
    let approved = w.broker.approve(&w.who("sam"), erins[0].id.as_str(), None).await.unwrap();
    assert_eq!(approved.state, RequestState::Approved);
}

async fn extensions_go_through_the_policy_and_move_expiry(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let grant = w.granted().await;
    let more =
        || ExtendInput { duration_seconds: 900, reason: "INC-4312 not found yet".into(), ticket: None };
    // Only the holder asks.
    assert!(matches!(
        refused(w.broker.extend(&w.who("erin"), grant.id.as_str(), more()).await),
        LifecycleError::NotHolder { .. }
    ));
    let extension = w.broker.extend(&w.who("alice"), grant.id.as_str(), more()).await.unwrap();
    assert_eq!(extension.state, RequestState::Pending);
    assert_eq!(extension.extends_grant.as_ref(), Some(&grant.id));
    assert_eq!(extension.lapses_at, grant.expires_at, "it cannot outwait the grant");
    w.clock.advance(SignedDuration::from_mins(10));
    let approved = w.broker.approve(&w.who("bob"), extension.id.as_str(), None).await.unwrap();
    assert_eq!(approved.grant_id.as_ref(), Some(&grant.id));
    let extended = w.store.grant(grant.id.as_str()).await.unwrap().unwrap();
    assert_eq!(extended.expires_at, grant.expires_at + SignedDuration::from_mins(15));
    assert_eq!(extended.extensions.len(), 1);
    assert!(w.types().await.contains(&"grant.extended"));
    // Access runs on past the old end, and ends at the new one.
    w.clock.set(grant.expires_at + SignedDuration::from_mins(1));
    w.broker.run_due(w.clock.now()).await.unwrap();
    assert!(w.allowed("alice").await);
    w.clock.set(extended.expires_at);
    assert!(!w.allowed("alice").await, "the store's expiry decides, scheduler or not");
    assert_eq!(w.broker.run_due(w.clock.now()).await.unwrap().expired, 1);
    // An ended grant is not extended.
    assert!(matches!(
        refused(w.broker.extend(&w.who("alice"), grant.id.as_str(), more()).await),
        LifecycleError::GrantEnded { .. }
    ));
}

async fn break_glass_grants_at_once_and_is_reviewed(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let glass = |input: RequestInput| RequestInput { breakglass: true, ..incident(input) };
    // Only whoever is on call breaks the glass, and only for the rule's 15 minutes.
    assert!(matches!(
        w.broker.create_request(&w.who("alice"), glass(ledger(900))).await,
        Err(BrokerError::Refused(Refusal::NotPermitted { breakglass: true, .. }))
    ));
    assert!(matches!(
        w.broker.create_request(&w.who("dave"), glass(ledger(3600))).await,
        Err(BrokerError::Refused(Refusal::TooLong { max_seconds: 900, .. }))
    ));
    let request = w.broker.create_request(&w.who("dave"), glass(ledger(900))).await.unwrap();
    assert_eq!((request.state, request.breakglass), (RequestState::Approved, true));
    let grant_id = request.grant_id.unwrap();
    let types = w.types().await;
    assert!(types.ends_with(&["request.created", "breakglass.used", "grant.activated"]), "{types:?}");
    assert!(w.broker.check(&w.who("dave"), "dave", "read", "logs:ledger").await.unwrap().allowed);
    // Breaking it again while the first awaits review is refused, and on record (in a new
    // summary period: the refusal for too long a duration is this period's first).
    w.broker.flush_usage().await.unwrap();
    w.clock.advance(SignedDuration::from_mins(20));
    let again = w.broker.create_request(&w.who("dave"), glass(ledger(900))).await;
    assert!(
        matches!(
            &again,
            Err(BrokerError::Lifecycle(LifecycleError::BreakglassUnreviewed { unreviewed: 1, .. }))
        ),
        "{again:?}"
    );
    let refusal = w.events().await.into_iter().last().unwrap();
    assert_eq!((refusal.event_type, refusal.actor.as_str()), (EventType::AccessDenied, "dave"));
    assert!(refusal.reason.unwrap().contains("await review"));
    w.clock.advance(SignedDuration::from_mins(-20));

    let unreviewed = |who: &'static str| {
        let w = &w;
        let listing = GrantListing { unreviewed: true, limit: 10, ..GrantListing::default() };
        async move { w.broker.list_grants(&w.who(who), listing).await.unwrap().items }
    };
    assert_eq!(unreviewed("bob").await.len(), 1, "approvers see what they must review");
    // A day later, nobody has reviewed it: the scheduler records it overdue, once.
    w.clock.advance(SignedDuration::from_hours(24));
    let report = w.broker.run_due(w.clock.now()).await.unwrap();
    assert_eq!((report.expired, report.reviews_overdue), (1, 1), "expired and overdue in one pass");
    assert_eq!(w.broker.run_due(w.clock.now()).await.unwrap().reviews_overdue, 0);
    let overdue = unreviewed("admin").await;
    assert_eq!(overdue[0].review.as_ref().unwrap().state, ReviewState::Overdue);
    // The holder does not review their own use; nor does someone who could not approve it.
    assert!(matches!(
        refused(w.broker.review(&w.who("dave"), grant_id.as_str(), "fine".into()).await),
        LifecycleError::SelfDecision(_)
    ));
    assert!(matches!(
        w.broker.review(&w.who("alice"), grant_id.as_str(), "fine".into()).await,
        Err(BrokerError::NotFound(_))
    ));
    let reviewed = w
        .broker
        .review(&w.who("sam"), grant_id.as_str(), "INC-5121: reads matched the outage".into())
        .await
        .unwrap();
    let review = reviewed.review.unwrap();
    assert_eq!((review.state, review.reviewed_by.as_deref()), (ReviewState::Done, Some("sam")));
    assert!(unreviewed("admin").await.is_empty());
    let last = w.events().await.into_iter().last().unwrap();
    assert_eq!(
        (last.event_type, last.details["late"].as_bool()),
        (EventType::BreakglassReviewed, Some(true))
    );
    // Reviewed: the glass can be broken again.
    let next = w.broker.create_request(&w.who("dave"), glass(ledger(900))).await.unwrap();
    assert_eq!(next.state, RequestState::Approved);
}

async fn automatic_denial_wins_and_is_on_record(store: Arc<dyn Store>) {
    // Saturday 02:00 in Berlin: outside business hours.
    let night = "2027-01-16T01:00:00Z".parse().unwrap();
    let w = World::with_clock(store, Arc::new(ManualClock::new(night))).await;
    let request = w.broker.create_request(&w.who("alice"), ledger(2 * 3600)).await.unwrap();
    assert_eq!(request.state, RequestState::Denied);
    assert!(!request.business_hours);
    assert_eq!(request.approvals[0].approver, ward_core::SYSTEM_ACTOR);
    let denied = w.events().await.into_iter().last().unwrap();
    assert_eq!(
        (denied.event_type, denied.details["policy_ids"][0].as_str()),
        (EventType::ApprovalDenied, Some("ledger.no-long-nights"))
    );
    // Even for whoever is on call: deny wins over automatic approval.
    let dave = w.broker.create_request(&w.who("dave"), incident(ledger(5400))).await.unwrap();
    assert_eq!(dave.state, RequestState::Denied);
    // A short read at night waits for people.
    let short = w.broker.create_request(&w.who("alice"), ledger(1800)).await.unwrap();
    assert_eq!(short.state, RequestState::Pending);
}

/// A one-route HTTP server: answers every request with `body` after `delay`.
async fn lookup_server(body: &'static str, delay: Duration) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else { return };
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                tokio::time::sleep(delay).await;
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}/oncall?user={{user}}")
}

async fn world_with_oncall(
    store: Arc<dyn Store>,
    url: Option<String>,
    schedule: Option<&std::path::Path>,
) -> World {
    let mut config = config();
    config.oncall.url = url;
    config.oncall.timeout = Duration::from_millis(300);
    if let Some(path) = schedule {
        config.oncall.schedule_path = Some(path.to_owned());
    }
    let clock = Arc::new(ManualClock::new(t0()));
    let broker = ward_service::broker_for(&config, store.clone(), clock.clone()).await.unwrap();
    World { broker, clock, store }
}

async fn on_call_comes_from_the_lookup_and_fails_closed(store: Arc<dyn Store>) {
    // oncall.toml does not have erin on the ledger's primary rotation; the lookup says she is.
    let url = lookup_server(r#"{"schedules": ["ledger-primary"]}"#, Duration::ZERO).await;
    let w = world_with_oncall(store.clone(), Some(url), None).await;
    let erin = w.broker.create_request(&w.who("erin"), incident(ledger(1800))).await.unwrap();
    assert_eq!(erin.state, RequestState::Approved);
    assert_eq!(erin.on_call_schedules, ["ledger-primary"], "by the lookup (oncall.toml has bob this week)");

    // A lookup that does not answer in time: nobody is on call by it, the request waits, and
    // the failure is on record.
    let slow = lookup_server(r#"{"schedules": ["ledger-primary"]}"#, Duration::from_secs(5)).await;
    let w = world_with_oncall(store, Some(slow), None).await;
    let erin = w.broker.create_request(&w.who("erin"), incident(ledger(1800))).await.unwrap();
    assert_eq!(erin.state, RequestState::Pending);
    let problem =
        w.events().await.into_iter().find(|e| e.event_type == EventType::OncallUnavailable).unwrap();
    assert_eq!(problem.subject.as_deref(), Some("erin"));
    assert!(problem.reason.as_deref().unwrap().contains("did not answer within"), "{problem:?}");
    assert_eq!(problem.details["source"], "lookup");
}

async fn a_broken_schedule_keeps_the_last_good_one(store: Arc<dyn Store>) {
    let dir = tempfile::tempdir().unwrap();
    let schedule = dir.path().join("oncall.toml");
    let quickstart = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/quickstart/oncall.toml");
    std::fs::copy(quickstart, &schedule).unwrap();
    let w = world_with_oncall(store, None, Some(&schedule)).await;
    let dave = || incident(ledger(1800));
    assert_eq!(w.broker.create_request(&w.who("dave"), dave()).await.unwrap().state, RequestState::Approved);

    std::fs::write(&schedule, "[[rotation]]\nschedule = \"ledger-primary\"\nusers = [\"mallory\"]\n")
        .unwrap();
    let second = w.broker.create_request(&w.who("dave"), dave()).await.unwrap();
    assert_eq!(second.on_call_schedules, ["ledger-primary"], "the last good schedule stays in force");
    let third = w.broker.create_request(&w.who("dave"), dave()).await.unwrap();
    assert_eq!(third.state, RequestState::Approved);
    let problems: Vec<_> =
        w.events().await.into_iter().filter(|e| e.event_type == EventType::OncallUnavailable).collect();
    assert_eq!(problems.len(), 1, "reported once per change of the file");
    assert!(problems[0].reason.as_deref().unwrap().contains("oncall.toml"), "{:?}", problems[0]);
    assert_eq!(problems[0].details["source"], "schedule");

    // A schedule that cannot be read at all makes nobody on call by it.
    w.clock.advance(SignedDuration::from_mins(2));
    std::fs::remove_file(&schedule).unwrap();
    let fourth = w.broker.create_request(&w.who("dave"), dave()).await.unwrap();
    assert_eq!((fourth.state, fourth.on_call_schedules.len()), (RequestState::Pending, 0));
    let last = w.events().await.into_iter().rfind(|e| e.event_type == EventType::OncallUnavailable).unwrap();
    assert_eq!(last.details["fallback"], "nobody is on call by the schedule");
}

async fn an_extension_respects_the_holder_limit(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    // dave holds the ledger for 30m, alice for 1h, and erin from 45m on: two at any moment.
    let dave = w.broker.create_request(&w.who("dave"), incident(ledger(1800))).await.unwrap();
    w.ledger_grant("alice").await.unwrap();
    let later = RequestInput { start_at: Some(t0() + SignedDuration::from_mins(45)), ..ledger(3600) };
    let erin = w.broker.create_request(&w.who("erin"), later).await.unwrap();
    w.broker.approve(&w.who("bob"), erin.id.as_str(), None).await.unwrap();
    assert_eq!(
        w.broker.approve(&w.who("sam"), erin.id.as_str(), None).await.unwrap().state,
        RequestState::Approved
    );
    // dave's extension into [30m, 60m) would make three: refused, though his on-call rule would
    // approve it at once.
    let more = ExtendInput {
        duration_seconds: 1800,
        reason: "INC-5120 still digging".into(),
        ticket: Some("INC-5120".into()),
    };
    let error = refused(w.broker.extend(&w.who("dave"), dave.grant_id.unwrap().as_str(), more).await);
    assert!(matches!(error, LifecycleError::TooManyHolders { max: 2, .. }), "{error}");
}
