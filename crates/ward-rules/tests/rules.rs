//! Each rule fires on the condition it names and stays quiet just short of it; the engine gives
//! the same findings incrementally and over a period; its memory stays bounded.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "rules/checkpoints.rs"]
mod checkpoints;
#[path = "rules/insights.rs"]
mod insights;
#[path = "rules/replay.rs"]
mod replay;
#[path = "support/sim.rs"]
mod sim;

use jiff::tz::TimeZone;
use ward_core::audit::payload::{self, Payload};
use ward_core::audit::{AuditEvent, EventType, NewEvent};
use ward_core::calendar::BusinessHours;
use ward_rules::{ChainLink, Eligibility, Engine, Facts, Finding, RuleId, RulesConfig};

use sim::{Sim, Terms, at, mins};

const HOUR: i64 = 3600;
const DAY: i64 = 24 * HOUR;

fn config(text: &str) -> RulesConfig {
    RulesConfig::from_table(&text.parse().unwrap()).unwrap()
}

/// Observes every event, then advances to `until` (seconds after T0).
fn run_with(events: &[AuditEvent], config: RulesConfig, facts: Facts, until: i64) -> Vec<Finding> {
    let mut engine = Engine::new(config, facts);
    let mut found = Vec::new();
    for event in events {
        found.extend(engine.observe(event));
    }
    found.extend(engine.advance(at(until)));
    found
}

fn run(sim: &Sim, until: i64) -> Vec<Finding> {
    run_with(&sim.events, RulesConfig::default(), Facts::default(), until)
}

/// The findings of `rule`.
fn of(found: &[Finding], rule: RuleId) -> Vec<&Finding> {
    found.iter().filter(|f| f.rule == rule).collect()
}

/// The one finding of `rule` (there must be exactly one).
fn one(found: &[Finding], rule: RuleId) -> Finding {
    let of = of(found, rule);
    assert_eq!(of.len(), 1, "one {rule} finding expected: {found:#?}");
    of[0].clone()
}

fn none(found: &[Finding], rule: RuleId) {
    assert!(of(found, rule).is_empty(), "no {rule} finding expected: {found:#?}");
}

// --- self-approval -------------------------------------------------------------------------

#[test]
fn self_approval_fires_on_a_refused_attempt_to_approve_ones_own_request() {
    let mut sim = Sim::new();
    let request = sim.ask(0, "alice", "logs:payments-api", "read", 1800);
    let attempt = sim.refuse(10, "alice", "approve", Some("logs:payments-api"), Some(&request));
    let found = run(&sim, 60);
    let finding = one(&found, RuleId::SelfApproval);
    assert_eq!((finding.subject.as_deref(), &finding.seqs), (Some("alice"), &vec![attempt]));
    assert_eq!(finding.request_id.as_deref(), Some(request.as_str()));
}

#[test]
fn self_approval_stays_quiet_when_someone_else_is_refused() {
    let mut sim = Sim::new();
    let request = sim.ask(0, "alice", "logs:payments-api", "read", 1800);
    sim.refuse(10, "carol", "approve", Some("logs:payments-api"), Some(&request));
    sim.refuse(11, "alice", "revoke", Some("logs:payments-api"), None);
    sim.approve(20, "bob", &request);
    none(&run(&sim, 60), RuleId::SelfApproval);
}

#[test]
fn self_approval_fires_on_an_approval_by_the_requester_on_record() {
    let mut sim = Sim::new();
    let request = sim.ask(0, "alice", "logs:payments-api", "read", 1800);
    let vote = payload::ApproverVote {
        approvals: 1,
        approvals_required: 1,
        stages: Some(vec![]),
        stages_unmet: vec![],
    };
    let forged = NewEvent {
        subject: Some("alice".into()),
        resource: Some("logs:payments-api".into()),
        request_id: Some(request.clone()),
        ..NewEvent::new(
            sim.event_id(),
            at(5),
            "alice",
            Payload::ApprovalGranted(payload::ApprovalGranted::ByApprover(vote)),
        )
    };
    let seq = sim.raw(5, forged);
    assert_eq!(one(&run(&sim, 60), RuleId::SelfApproval).seqs, [seq]);
}

// --- grant-without-approval ----------------------------------------------------------------

/// A grant for `request` that no decision produced.
fn forged_grant(sim: &mut Sim, t: i64, request: &str, grant: &str) -> i64 {
    let requester = sim.requester(request);
    let started = payload::GrantStarted {
        role: "read".into(),
        starts_at: at(t),
        expires_at: at(t + 1800),
        policy_hash: Some(sim::POLICY.into()),
        idle_timeout_seconds: None,
        due_at: None,
        processed_at: None,
        lag_ms: None,
    };
    let event = NewEvent {
        subject: Some(requester),
        resource: Some("logs:payments-api".into()),
        request_id: Some(request.into()),
        grant_id: Some(grant.into()),
        ..NewEvent::new(sim.event_id(), at(t), "bob", Payload::GrantActivated(started))
    };
    sim.raw(t, event)
}

#[test]
fn grant_without_approval_fires_when_approvals_fall_short() {
    let mut sim = Sim::new();
    let (request, _) = sim.ask_for(
        0,
        "alice",
        "logs:payments-api",
        "read-unmasked",
        1800,
        "INC-1 card data",
        None,
        None,
        Terms::Approvals(2),
    );
    let approval = sim.events.len() as i64 + 1;
    assert!(sim.approve(10, "bob", &request).is_none(), "one of two approvals");
    let grant = forged_grant(&mut sim, 20, &request, "grt_forged");
    let finding = one(&run(&sim, 60), RuleId::GrantWithoutApproval);
    assert_eq!(finding.seqs, [1, approval, grant]);
    assert!(finding.summary.contains("1 of 2 approvals"), "{}", finding.summary);
}

#[test]
fn grant_without_approval_stays_quiet_with_enough_approvals_automatic_or_breakglass() {
    let mut sim = Sim::new();
    let (request, _) = sim.ask_for(
        0,
        "alice",
        "logs:payments-api",
        "read-unmasked",
        1800,
        "INC-1 card data",
        None,
        None,
        Terms::Approvals(2),
    );
    sim.approve(10, "bob", &request);
    assert!(sim.approve(20, "erin", &request).is_some());
    sim.ask_for(
        30,
        "dave",
        "logs:checkout-web",
        "read",
        600,
        "INC-9 outage",
        Some("INC-9"),
        None,
        Terms::Automatic,
    );
    sim.breakglass(40, "dave", "logs:ledger", 900, 3600);
    none(&run(&sim, 60), RuleId::GrantWithoutApproval);
}

// --- stale-approval ------------------------------------------------------------------------

fn scheduled(sim: &mut Sim, start_in: i64) -> String {
    let (request, _) = sim.ask_for(
        0,
        "alice",
        "logs:payments-api",
        "read",
        1800,
        "INC-1 planned migration",
        None,
        Some(start_in),
        Terms::Approvals(1),
    );
    let grant = sim.approve(60, "bob", &request).unwrap();
    sim.activate(start_in, &grant);
    grant
}

#[test]
fn stale_approval_fires_when_a_grant_starts_long_after_its_approval() {
    let mut sim = Sim::new();
    let grant = scheduled(&mut sim, DAY + 61);
    let finding = one(&run(&sim, 2 * DAY), RuleId::StaleApproval);
    assert_eq!(finding.grant_id.as_deref(), Some(grant.as_str()));
    assert_eq!(finding.seqs.len(), 2, "the approval and the activation");
}

#[test]
fn stale_approval_stays_quiet_just_within_its_age() {
    let mut sim = Sim::new();
    scheduled(&mut sim, DAY + 60);
    none(&run(&sim, 2 * DAY), RuleId::StaleApproval);
}

// --- revocation-overdue --------------------------------------------------------------------

#[test]
fn revocation_overdue_fires_on_a_late_expiry_and_on_none_at_all() {
    let mut sim = Sim::new();
    let late = sim.granted(0, "alice", 1800);
    sim.expire(1800 + 61, &late);
    let found = run(&sim, 2 * HOUR);
    // Seen twice, one condition: at the deadline (nothing recorded yet), and in the late expiry.
    let seen = of(&found, RuleId::RevocationOverdue);
    assert_eq!(seen.len(), 2, "{seen:#?}");
    assert!(seen.iter().all(|f| f.key == format!("revocation-overdue/{late}")));
    assert_eq!(seen[1].seqs, [3, 4], "the grant and its late expiry");

    let mut sim = Sim::new();
    let never = sim.granted(0, "alice", 1800);
    let found = run(&sim, 1800 + 60);
    let finding = one(&found, RuleId::RevocationOverdue);
    assert_eq!(
        (finding.grant_id.as_deref(), finding.at),
        (Some(never.as_str()), at(1860)),
        "at the deadline"
    );
}

#[test]
fn revocation_overdue_stays_quiet_within_the_tolerance() {
    let mut sim = Sim::new();
    let grant = sim.granted(0, "alice", 1800);
    sim.expire(1800 + 59, &grant);
    let released = sim.granted(100, "erin", 1800);
    sim.release(200, &released);
    none(&run(&sim, DAY), RuleId::RevocationOverdue);
    let mut sim = Sim::new();
    sim.granted(0, "alice", 1800);
    none(&run(&sim, 1800 + 59), RuleId::RevocationOverdue);
}

#[test]
fn revocation_overdue_fires_when_a_grants_effect_cannot_be_taken_back() {
    let mut sim = Sim::new();
    let grant = sim.granted(0, "alice", 1800);
    sim.release(600, &grant);
    let failed = |action: &str| {
        let payload = payload::ProvisionerFailed {
            driver: "postgres-role".into(),
            action: action.into(),
            error: "cannot reach the target: connection refused".into(),
            grant_ids: vec![grant.clone()],
        };
        NewEvent {
            resource: Some("logs:payments-api".into()),
            ..NewEvent::new("evt_failed".into(), at(601), "ward", Payload::ProvisionerFailed(payload))
        }
    };
    // A login not made at the start is no access left behind: quiet.
    sim.raw(601, failed("apply"));
    none(&run(&sim, 700), RuleId::RevocationOverdue);
    let seq = sim.raw(602, failed("remove"));
    let finding = one(&run(&sim, 700), RuleId::RevocationOverdue);
    assert_eq!(finding.key, format!("revocation-overdue/{grant}/postgres-role"));
    assert_eq!(
        (finding.subject.as_deref(), finding.grant_id.as_deref()),
        (Some("alice"), Some(grant.as_str()))
    );
    assert_eq!(finding.seqs.last(), Some(&seq));
    assert!(finding.summary.contains("connection refused"), "{}", finding.summary);
}

// --- drift ------------------------------------------------------------------------------

#[test]
fn drift_fires_on_a_level_changed_outside_ward() {
    let mut sim = Sim::new();
    let modified = payload::ExternallyModified {
        driver: "command".into(),
        setting: "/usr/local/bin/orders-loglevel".into(),
        expected: "info".into(),
        found: "trace".into(),
        reverted: false,
    };
    let event = NewEvent {
        resource: Some("debug:orders".into()),
        ..NewEvent::new("evt_drift".into(), at(60), "ward", Payload::GrantExternallyModified(modified))
    };
    let seq = sim.raw(60, event);
    let finding = one(&run(&sim, 120), RuleId::Drift);
    assert_eq!((finding.key.as_str(), finding.seqs.as_slice()), ("drift/debug:orders", &[seq][..]));
    assert!(finding.summary.contains("is trace, not info"), "{}", finding.summary);
    none(&run_with(&sim.events, config("[drift]\nenabled = false\n"), Facts::default(), 120), RuleId::Drift);
}

// --- use-outside-window --------------------------------------------------------------------

#[test]
fn use_outside_window_fires_on_a_use_after_release() {
    let mut sim = Sim::new();
    let grant = sim.granted(0, "alice", 1800);
    sim.first_use(10, &grant);
    sim.release(600, &grant);
    let late = sim.search(601, &grant, 10);
    let finding = one(&run(&sim, HOUR), RuleId::UseOutsideWindow);
    assert_eq!((finding.seqs.clone(), finding.subject.as_deref()), (vec![late], Some("alice")));
}

#[test]
fn use_outside_window_stays_quiet_for_uses_just_inside() {
    let mut sim = Sim::new();
    let grant = sim.granted(0, "alice", 1800);
    sim.first_use(0, &grant);
    sim.search(1799, &grant, 10);
    // A summary written after the end counts uses from inside the window.
    sim.summary(1850, &grant, 5, 1799, 40);
    sim.expire_on_time(&grant);
    none(&run(&sim, HOUR), RuleId::UseOutsideWindow);
}

#[test]
fn use_outside_window_stays_quiet_for_a_use_in_the_millisecond_of_a_release() {
    // Checked, then released at once: the summary flushed with the release says the last use
    // was at the release's own time.
    let mut sim = Sim::new();
    let grant = sim.granted(0, "alice", 1800);
    sim.first_use(10, &grant);
    sim.release(600, &grant);
    sim.summary(600, &grant, 300, 600, 2);
    none(&run(&sim, HOUR), RuleId::UseOutsideWindow);
}

// --- too-frequent ---------------------------------------------------------------------------

#[test]
fn too_frequent_fires_on_the_fifth_request_in_a_day() {
    let mut sim = Sim::new();
    for i in 0..5 {
        sim.ask(i * 4 * HOUR, "alice", "logs:payments-api", "read", 600);
    }
    let finding = one(&run(&sim, DAY), RuleId::TooFrequent);
    assert_eq!(finding.seqs.len(), 5);
    assert_eq!(finding.key, "too-frequent/alice/logs:payments-api");
}

#[test]
fn too_frequent_stays_quiet_at_four_or_spread_over_more_than_the_window() {
    let mut sim = Sim::new();
    for i in 0..4 {
        sim.ask(i * HOUR, "alice", "logs:payments-api", "read", 600);
    }
    sim.ask(2 * HOUR, "alice", "logs:checkout-web", "read", 600);
    sim.ask(3 * HOUR, "erin", "logs:payments-api", "read", 600);
    none(&run(&sim, DAY), RuleId::TooFrequent);
    let mut sim = Sim::new();
    for i in 0..5 {
        sim.ask(i * 6 * HOUR, "alice", "logs:payments-api", "read", 600);
    }
    none(&run(&sim, 2 * DAY), RuleId::TooFrequent);
}

// --- excessive-duration --------------------------------------------------------------------

#[test]
fn excessive_duration_fires_on_a_grant_held_an_hour_past_its_last_use() {
    let mut sim = Sim::new();
    let grant = sim.granted(0, "alice", 8 * 3600);
    sim.first_use(60, &grant);
    let last = sim.search(300, &grant, 5);
    let finding = one(&run(&sim, 8 * HOUR), RuleId::ExcessiveDuration);
    assert_eq!((finding.at, finding.seqs.last()), (at(300 + HOUR), Some(&last)));
    // Never used: an hour after its start.
    let mut sim = Sim::new();
    sim.granted(0, "alice", 4 * 3600);
    assert_eq!(one(&run(&sim, 4 * HOUR), RuleId::ExcessiveDuration).at, at(HOUR));
}

#[test]
fn excessive_duration_stays_quiet_when_released_just_before() {
    let mut sim = Sim::new();
    let grant = sim.granted(0, "alice", 8 * 3600);
    sim.first_use(60, &grant);
    sim.search(300, &grant, 5);
    sim.release(300 + HOUR - 1, &grant);
    none(&run(&sim, 9 * HOUR), RuleId::ExcessiveDuration);
    // Used every 50 minutes until it expires: never idle an hour.
    let mut sim = Sim::new();
    let grant = sim.granted(0, "alice", 4 * 3600);
    for t in (0..4 * HOUR).step_by(50 * 60) {
        sim.search(t, &grant, 1);
    }
    sim.expire_on_time(&grant);
    none(&run(&sim, 5 * HOUR), RuleId::ExcessiveDuration);
}

// --- weak-justification --------------------------------------------------------------------

fn asked_because(reason: &str, ticket: Option<&str>) -> Vec<Finding> {
    let mut sim = Sim::new();
    sim.ask_for(0, "alice", "logs:payments-api", "read", 600, reason, ticket, None, Terms::Approvals(1));
    run(&sim, 60)
}

#[test]
fn weak_justification_fires_on_generic_or_short_reasons() {
    assert!(
        one(&asked_because("debug", Some("INC-1")), RuleId::WeakJustification).summary.contains("specific")
    );
    assert!(
        one(&asked_because("payments 5x", None), RuleId::WeakJustification).summary.contains("11 characters")
    );
}

#[test]
fn weak_justification_stays_quiet_at_the_minimum_length() {
    none(&asked_because("payments 5xx", None), RuleId::WeakJustification);
    none(&asked_because("INC-4", Some("INC-4")), RuleId::WeakJustification);
}

// --- unused-eligibility --------------------------------------------------------------------

fn eligible() -> Facts {
    let eligibility = |user: &str| Eligibility {
        user: user.into(),
        resource: "logs:payments-api".into(),
        role: "read".into(),
    };
    Facts { eligible: vec![eligibility("alice"), eligibility("erin")], ..Facts::default() }
}

#[test]
fn unused_eligibility_fires_for_who_never_asked_within_the_window() {
    let mut sim = Sim::new();
    sim.ask(0, "alice", "logs:payments-api", "read", 600);
    sim.ask(20 * DAY, "alice", "logs:payments-api", "read", 600);
    let found = run_with(&sim.events, RulesConfig::default(), eligible(), 30 * DAY);
    let finding = one(&found, RuleId::UnusedEligibility);
    assert_eq!((finding.subject.as_deref(), finding.at), (Some("erin"), at(30 * DAY)));
    assert!(finding.seqs.is_empty(), "erin has no events");
}

#[test]
fn unused_eligibility_stays_quiet_until_the_window_is_over() {
    let mut sim = Sim::new();
    sim.ask(0, "alice", "logs:payments-api", "read", 600);
    let found = run_with(&sim.events, RulesConfig::default(), eligible(), 30 * DAY - 1);
    none(&found, RuleId::UnusedEligibility);
}

// --- drift ----------------------------------------------------------------------------------

#[test]
fn drift_fires_on_a_request_under_another_policy_set_and_on_a_rejected_reload() {
    let mut sim = Sim::new();
    let changed = sim.policy_changed(0, "policy-hash-2");
    sim.policy_hash = "policy-hash-1".into(); // a second process still runs the old set
    sim.ask(10, "alice", "logs:payments-api", "read", 600);
    let found = run(&sim, 60);
    let finding = one(&found, RuleId::Drift);
    assert_eq!(finding.seqs, [changed, changed + 1]);

    let mut sim = Sim::new();
    let rejected = payload::PolicyRejected { error: "x.cedar:1:1".into(), hash_in_force: "h".into() };
    let event = NewEvent::new(sim.event_id(), at(0), "admin", Payload::PolicyRejected(rejected));
    let seq = sim.raw(0, event);
    assert_eq!(one(&run(&sim, 60), RuleId::Drift).seqs, [seq]);
}

#[test]
fn drift_stays_quiet_while_requests_follow_the_set_on_record() {
    let mut sim = Sim::new();
    sim.policy_changed(0, "policy-hash-2");
    sim.ask(10, "alice", "logs:payments-api", "read", 600);
    none(&run(&sim, 60), RuleId::Drift);
    // Known from before the period.
    let facts = Facts { policy_hash: Some(sim::POLICY.into()), ..Facts::default() };
    let mut sim = Sim::new();
    sim.ask(10, "alice", "logs:payments-api", "read", 600);
    none(&run_with(&sim.events, RulesConfig::default(), facts.clone(), 60), RuleId::Drift);
    let facts = Facts { policy_hash: Some("policy-hash-0".into()), ..facts };
    one(&run_with(&sim.events, RulesConfig::default(), facts, 60), RuleId::Drift);
}

// --- too-many-holders ------------------------------------------------------------------------

#[test]
fn too_many_holders_fires_at_five_live_grants() {
    let mut sim = Sim::new();
    for (i, who) in ["alice", "erin", "dave", "frank", "gus"].into_iter().enumerate() {
        sim.granted(i as i64 * 60, who, 3600);
    }
    let finding = one(&run(&sim, 600), RuleId::TooManyHolders);
    assert_eq!(finding.seqs.len(), 5);
    assert!(finding.summary.contains("alice, dave, erin, frank, gus"), "{}", finding.summary);
}

#[test]
fn too_many_holders_names_a_few_of_many_and_lists_the_latest_grants() {
    let mut sim = Sim::new();
    for i in 0..300 {
        sim.granted(i, &format!("engineer-{i:03}"), 3600);
    }
    let found = run(&sim, 600);
    let last = of(&found, RuleId::TooManyHolders).pop().unwrap().clone();
    assert_eq!(last.seqs.len(), Finding::MAX_SEQS);
    assert!(
        last.summary.ends_with(
            "(engineer-000, engineer-001, engineer-002, engineer-003, engineer-004, \
         engineer-005, engineer-006, engineer-007, engineer-008, engineer-009 and 290 more)"
        ),
        "{}",
        last.summary
    );
}

#[test]
fn too_many_holders_stays_quiet_at_four_at_once() {
    let mut sim = Sim::new();
    let first = sim.granted(0, "alice", 3600);
    for (i, who) in ["erin", "dave", "frank"].into_iter().enumerate() {
        sim.granted(60 + i as i64 * 60, who, 3600);
    }
    sim.release(300, &first);
    sim.granted(400, "gus", 3600);
    none(&run(&sim, 600), RuleId::TooManyHolders);
}

// --- off-hours ------------------------------------------------------------------------------

fn office() -> Facts {
    let hours = BusinessHours::new(TimeZone::UTC, "mon-fri", "09:00-18:00").unwrap();
    Facts { business_hours: Some(hours), ..Facts::default() }
}

#[test]
fn off_hours_fires_on_a_request_or_a_use_outside_business_hours() {
    // T0 is a Monday, midnight UTC.
    let mut sim = Sim::new();
    sim.ask(22 * HOUR, "alice", "logs:payments-api", "read", 600);
    let found = run_with(&sim.events, RulesConfig::default(), office(), DAY);
    assert_eq!(one(&found, RuleId::OffHours).seqs, [1]);

    let mut sim = Sim::new();
    let request = sim.ask(17 * HOUR, "alice", "logs:payments-api", "read", 4 * 3600);
    let grant = sim.approve(17 * HOUR, "bob", &request).unwrap();
    let use_ = sim.search(18 * HOUR, &grant, 3);
    let found = run_with(&sim.events, RulesConfig::default(), office(), DAY);
    assert_eq!(one(&found, RuleId::OffHours).seqs, [use_]);
}

#[test]
fn off_hours_stays_quiet_within_business_hours_and_without_hours() {
    let mut sim = Sim::new();
    let request = sim.ask(9 * HOUR, "alice", "logs:payments-api", "read", 9 * 3600);
    let grant = sim.approve(9 * HOUR, "bob", &request).unwrap();
    sim.first_use(18 * HOUR - 1, &grant);
    let found = run_with(&sim.events, RulesConfig::default(), office(), DAY);
    none(&found, RuleId::OffHours);
    let mut sim = Sim::new();
    sim.ask(22 * HOUR, "alice", "logs:payments-api", "read", 600);
    none(&run(&sim, DAY), RuleId::OffHours);
}

// --- rubber-stamp ---------------------------------------------------------------------------

#[test]
fn rubber_stamp_fires_on_five_approvals_within_seconds() {
    let mut sim = Sim::new();
    for i in 0..5 {
        let request = sim.ask(i * DAY, "alice", "logs:payments-api", "read", 600);
        sim.approve(i * DAY + 30, "bob", &request);
    }
    let finding = one(&run(&sim, 6 * DAY), RuleId::RubberStamp);
    assert_eq!(finding.subject.as_deref(), Some("bob"));
    assert_eq!(finding.seqs.len(), 6, "five approvals and the request of the last");
}

#[test]
fn rubber_stamp_stays_quiet_at_four_or_when_one_took_longer() {
    let mut sim = Sim::new();
    for i in 0..5 {
        let request = sim.ask(i * DAY, "alice", "logs:payments-api", "read", 600);
        sim.approve(i * DAY + if i == 2 { 31 } else { 30 }, "bob", &request);
    }
    none(&run(&sim, 6 * DAY), RuleId::RubberStamp);
    // Spread over more than a week.
    let mut sim = Sim::new();
    for i in 0..5 {
        let request = sim.ask(i * 2 * DAY, "alice", "logs:payments-api", "read", 600);
        sim.approve(i * 2 * DAY + 5, "bob", &request);
    }
    none(&run(&sim, 10 * DAY), RuleId::RubberStamp);
}

// --- breakglass-used ------------------------------------------------------------------------

#[test]
fn breakglass_used_fires_on_every_break_glass_grant() {
    let mut sim = Sim::new();
    let grant = sim.breakglass(0, "dave", "logs:ledger", 900, DAY as u64);
    let finding = one(&run(&sim, 60), RuleId::BreakglassUsed);
    assert_eq!(
        (finding.grant_id.as_deref(), finding.subject.as_deref()),
        (Some(grant.as_str()), Some("dave"))
    );
}

#[test]
fn breakglass_used_stays_quiet_for_ordinary_grants() {
    let mut sim = Sim::new();
    sim.granted(0, "dave", 900);
    sim.ask_for(
        10,
        "dave",
        "logs:checkout-web",
        "read",
        600,
        "INC-9 outage",
        Some("INC-9"),
        None,
        Terms::Automatic,
    );
    none(&run(&sim, 60), RuleId::BreakglassUsed);
}

// --- integrity-failure ----------------------------------------------------------------------

fn quiet_log() -> Vec<AuditEvent> {
    let mut sim = Sim::new();
    let grant = sim.granted(0, "alice", 1800);
    sim.first_use(10, &grant);
    sim.release(100, &grant);
    sim.events
}

#[test]
fn integrity_failure_fires_on_an_edit_a_gap_and_a_broken_link() {
    let mut edited = quiet_log();
    edited[2].details["role"] = "read-unmasked".into();
    let finding =
        one(&run_with(&edited, RulesConfig::default(), Facts::default(), 60), RuleId::IntegrityFailure);
    assert_eq!(finding.seqs, [2, 3]);
    assert!(finding.summary.contains("does not hash"), "{}", finding.summary);

    let mut gap = quiet_log();
    gap.remove(1);
    let found = run_with(&gap, RulesConfig::default(), Facts::default(), 60);
    let finding = one(&found, RuleId::IntegrityFailure);
    assert!(
        finding.summary.contains("gap") && finding.summary.contains("does not link"),
        "{}",
        finding.summary
    );

    let log = quiet_log();
    let wrong = Facts { previous: Some(ChainLink { seq: 1, hash: "00".repeat(32) }), ..Facts::default() };
    let found = run_with(&log[1..], RulesConfig::default(), wrong, 60);
    one(&found, RuleId::IntegrityFailure);
}

/// Observes `events` as this process's commits returned them.
fn run_committed_here(events: &[AuditEvent]) -> Vec<Finding> {
    let mut engine = Engine::new(RulesConfig::default(), Facts::default());
    events.iter().flat_map(|event| engine.observe_committed_here(event)).collect()
}

#[test]
fn integrity_failure_does_not_hash_again_what_a_commit_here_hashed_but_follows_its_links() {
    // An event that does not hash to its hash cannot come from a commit of this process (the
    // commit hashed those very fields): only one read from the store is hashed again.
    let mut edited = quiet_log();
    edited[2].details["role"] = "read-unmasked".into();
    none(&run_committed_here(&edited), RuleId::IntegrityFailure);
    one(&run_with(&edited, RulesConfig::default(), Facts::default(), 60), RuleId::IntegrityFailure);
    // The links are still followed.
    let mut gap = quiet_log();
    gap.remove(1);
    let finding = one(&run_committed_here(&gap), RuleId::IntegrityFailure);
    assert!(finding.summary.contains("gap"), "{}", finding.summary);
}

#[test]
fn integrity_failure_stays_quiet_on_an_intact_log_and_a_period_of_it() {
    let log = quiet_log();
    none(&run_with(&log, RulesConfig::default(), Facts::default(), 60), RuleId::IntegrityFailure);
    let previous =
        Facts { previous: Some(ChainLink { seq: 1, hash: log[0].hash.clone() }), ..Facts::default() };
    none(&run_with(&log[1..], RulesConfig::default(), previous, 60), RuleId::IntegrityFailure);
}

// --- review-overdue -------------------------------------------------------------------------

#[test]
fn review_overdue_fires_at_the_deadline_and_on_the_schedulers_event() {
    let mut sim = Sim::new();
    let grant = sim.breakglass(0, "dave", "logs:ledger", 900, 3600);
    let found = run(&sim, 3600);
    let finding = one(&found, RuleId::ReviewOverdue);
    assert_eq!((finding.grant_id.as_deref(), finding.at), (Some(grant.as_str()), at(3600)));
    let overdue = sim.events.len() as i64 + 1;
    sim.overdue(3605, &grant);
    let found = run(&sim, 3700);
    assert_eq!(of(&found, RuleId::ReviewOverdue).last().unwrap().seqs.last(), Some(&overdue));
}

#[test]
fn review_overdue_stays_quiet_when_reviewed_just_in_time() {
    let mut sim = Sim::new();
    let grant = sim.breakglass(0, "dave", "logs:ledger", 900, 3600);
    sim.review(3599, "bob", &grant);
    none(&run(&sim, 2 * DAY), RuleId::ReviewOverdue);
}

// --- denial-burst ---------------------------------------------------------------------------

#[test]
fn denial_burst_fires_at_ten_refusals_in_an_hour_summaries_counting_theirs() {
    let mut sim = Sim::new();
    let first = sim.refused_check(0, "mallory", "logs:payments-api");
    let summary = sim.denial_summary(60, "mallory", 9);
    let finding = one(&run(&sim, HOUR), RuleId::DenialBurst);
    assert_eq!((finding.seqs.clone(), finding.subject.as_deref()), (vec![first, summary], Some("mallory")));
}

#[test]
fn denial_burst_stays_quiet_at_nine_or_spread_over_more_than_the_hour() {
    let mut sim = Sim::new();
    sim.refused_check(0, "mallory", "logs:payments-api");
    sim.denial_summary(60, "mallory", 8);
    sim.denial_summary(120, "alice", 5);
    none(&run(&sim, HOUR), RuleId::DenialBurst);
    let mut sim = Sim::new();
    sim.denial_summary(60, "mallory", 5);
    sim.denial_summary(60 + HOUR, "mallory", 5);
    none(&run(&sim, 2 * HOUR), RuleId::DenialBurst);
}

#[test]
fn a_finding_lists_the_latest_events_of_a_long_window_and_counts_them_all() {
    let mut sim = Sim::new();
    let refused: Vec<i64> = (0..300).map(|i| sim.refused_check(i, "mallory", "logs:payments-api")).collect();
    let found = run(&sim, HOUR);
    let last = of(&found, RuleId::DenialBurst).pop().unwrap().clone();
    assert_eq!(last.seqs, refused[300 - Finding::MAX_SEQS..], "the latest, ascending");
    assert!(last.summary.starts_with("300 refused attempts"), "{}", last.summary);
}

// --- the consumers' own events --------------------------------------------------------------

#[test]
fn findings_and_audits_on_record_are_no_activity_but_still_links() {
    let mut sim = Sim::new();
    let request = sim.ask(0, "alice", "logs:payments-api", "read", 600);
    let recorded = payload::FindingRecorded {
        finding_id: "fnd_1".into(),
        rule: "self-approval".into(),
        severity: "high".into(),
        key: "k".into(),
        summary: "debug".into(),
        seqs: vec![1],
        occurrences: 1,
    };
    let event = NewEvent {
        subject: Some("alice".into()),
        request_id: Some(request),
        reason: Some("x".into()),
        ..NewEvent::new(sim.event_id(), at(5), "ward", Payload::FindingOpened(recorded))
    };
    sim.raw(5, event);
    let found = run(&sim, 60);
    assert!(found.is_empty(), "{found:#?}");
    let mut edited = sim.events.clone();
    edited[1].details["summary"] = "edited".into();
    one(&run_with(&edited, RulesConfig::default(), Facts::default(), 60), RuleId::IntegrityFailure);
}

#[test]
fn a_switched_off_rule_finds_nothing_and_severities_come_from_the_configuration() {
    let mut sim = Sim::new();
    sim.breakglass(0, "dave", "logs:ledger", 900, 3600);
    let off = config("[breakglass-used]\nenabled = false\n[review-overdue]\nseverity = \"critical\"\n");
    let found = run_with(&sim.events, off, Facts::default(), 2 * HOUR);
    none(&found, RuleId::BreakglassUsed);
    assert_eq!(one(&found, RuleId::ReviewOverdue).severity, ward_rules::Severity::Critical);
}

#[test]
fn the_kinds_of_events_the_rules_read_are_the_ones_ward_writes() {
    // Every type the simulation writes is one the engine parses: a failed parse would silence
    // the rules on it.
    let mut sim = Sim::new();
    let grant = sim.granted(0, "alice", 1800);
    sim.first_use(1, &grant);
    sim.summary(100, &grant, 2, 90, 3);
    for event in &sim.events {
        assert!(Payload::parse(event.event_type, &event.details).is_ok(), "{}", event.event_type);
    }
    assert!(sim.events.iter().any(|e| e.event_type == EventType::AccessUsed));
    let _ = mins(0, 1);
}

/// A month of steady activity: what the engine holds stays what a day or so of it needs
/// (windows, grants within their late-event tail), not what the month had.
#[test]
fn memory_stays_bounded_as_time_passes() {
    let mut sim = Sim::new();
    let people = ["alice", "erin", "dave", "frank", "gus", "hana"];
    for i in 0..(30 * 24 * 6) {
        let t = i * 600;
        let who = people[(i % 6) as usize];
        let grant = sim.granted(t, who, 1800);
        sim.first_use(t + 5, &grant);
        sim.search(t + 60, &grant, 10);
        sim.summary(t + 120, &grant, t + 6, t + 100, 3);
        if i % 3 == 0 {
            sim.release(t + 300, &grant);
        } else {
            sim.expire_on_time(&grant);
        }
        sim.refused_check(t + 7, "mallory", "logs:payments-api");
        if i % 50 == 0 {
            let glass = sim.breakglass(t + 8, "dave", "logs:ledger", 900, 3600);
            sim.review(t + 400, "bob", &glass);
        }
    }
    let mut engine = Engine::new(RulesConfig::default(), Facts::default());
    let mut held_by_day = Vec::new();
    let mut day = 0;
    for event in &sim.events {
        engine.observe(event);
        let today = (event.recorded_at.as_second() - sim::T0) / DAY;
        if today > day {
            held_by_day.push(engine.held());
            day = today;
        }
    }
    let (first_week, last_week) =
        (held_by_day[3..7].iter().max().unwrap(), held_by_day[25..].iter().max().unwrap());
    assert!(*last_week <= first_week + first_week / 10, "grows with the log: {held_by_day:?}");
    assert!(*last_week < 1500, "about a day of grants and an hour of refusals: {held_by_day:?}");
}
