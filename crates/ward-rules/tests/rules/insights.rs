//! `ward insights`' fold: each insight on the events that show it, and on those just short of
//! it; edge cases (no grants, a grant never used, a single use, a grant still open, one from
//! before the period, late usage summaries); memory that does not grow with the period.

use jiff::Timestamp;
use ward_core::audit::payload::{self, Payload};
use ward_core::audit::{AuditEvent, NewEvent};
use ward_rules::Eligibility;
use ward_rules::insights::{IdleGrant, InsightFacts, Insights, MaxDuration, Report, RoleReport, Shares};

use crate::sim::{Sim, T0, Terms, at, mins};

const HOUR: i64 = 3600;
const DAY: i64 = 24 * HOUR;

fn fold(events: &[AuditEvent], facts: InsightFacts, since: i64, until: i64) -> Report {
    let mut insights = Insights::new(at(since), at(until), facts);
    for event in events {
        insights.observe(event);
    }
    insights.finish()
}

fn run(sim: &Sim, until: i64) -> Report {
    fold(&sim.events, InsightFacts::default(), 0, until)
}

fn role<'a>(report: &'a Report, resource: &str, role: &str) -> &'a RoleReport {
    report
        .roles
        .iter()
        .find(|r| r.resource == resource && r.role == role)
        .unwrap_or_else(|| panic!("no {resource} {role} in {report:#?}"))
}

fn payments(report: &Report) -> &RoleReport {
    role(report, "logs:payments-api", "read")
}

fn eligible(user: &str, resource: &str, role: &str) -> Eligibility {
    Eligibility { user: user.into(), resource: resource.into(), role: role.into() }
}

fn max(resource: &str, role: &str, seconds: u64) -> MaxDuration {
    MaxDuration { resource: resource.into(), role: role.into(), seconds }
}

// --- no activity ---------------------------------------------------------------------------

#[test]
fn a_period_without_events_reports_the_facts_and_nothing_measured() {
    let facts = InsightFacts {
        eligible: vec![
            eligible("bob", "logs:payments-api", "read"),
            eligible("alice", "logs:payments-api", "read"),
        ],
        max_durations: vec![max("logs:payments-api", "read", 4 * 3600)],
        ..InsightFacts::default()
    };
    let report = fold(&[], facts, 0, DAY);
    assert_eq!(report.events, 0);
    assert_eq!(report.since, at(0));
    assert_eq!(report.until, at(DAY));
    let read = payments(&report);
    assert_eq!((read.requests, read.grants, read.grants_measured, read.grants_never_used), (0, 0, 0, 0));
    assert_eq!(read.used_share, None);
    assert_eq!(read.never_asked, ["alice", "bob"], "sorted");
    assert_eq!(read.eligible, 2);
    assert_eq!(read.max_duration_seconds, Some(4 * 3600));
    assert!(!read.max_duration_unreached, "nobody asked: that is the never-asked insight, not this one");
    assert!(read.approvers.is_empty());
}

#[test]
fn requests_without_grants_measure_nothing() {
    let mut sim = Sim::new();
    let request = sim.ask(0, "alice", "logs:payments-api", "read", 1800);
    sim.deny(60, "bob", &request);
    let read = payments(&run(&sim, DAY)).clone();
    assert_eq!((read.requests, read.grants), (1, 0));
    assert_eq!((read.requested_seconds, read.used_seconds), (0, 0));
    assert_eq!(read.used_share, None);
}

// --- requested vs used ---------------------------------------------------------------------

#[test]
fn a_grant_never_used_is_counted_and_named() {
    let mut sim = Sim::new();
    let grant = sim.granted(0, "alice", 1800);
    sim.expire_on_time(&grant);
    let read = payments(&run(&sim, DAY)).clone();
    assert_eq!((read.grants, read.grants_never_used, read.grants_measured, read.grants_open), (1, 1, 0, 0));
    assert_eq!(read.never_used_examples, [grant]);
    assert_eq!(read.requested_seconds, 1800);
    assert_eq!(read.used_seconds, 0);
    assert_eq!(read.used_share, None, "a grant never used has no span to share");
    assert!(read.idle_grants.is_empty(), "never used is its own insight");
}

#[test]
fn a_single_use_is_a_share_of_nothing() {
    let mut sim = Sim::new();
    let grant = sim.granted(0, "alice", 4 * 3600);
    sim.first_use(120, &grant);
    sim.search(120, &grant, 3);
    sim.expire_on_time(&grant);
    let read = payments(&run(&sim, DAY)).clone();
    assert_eq!((read.grants_measured, read.grants_never_used), (1, 0));
    assert_eq!(read.used_share, Some(Shares { median: 0.0, p95: 0.0 }));
    assert_eq!((read.requested_seconds, read.used_seconds), (4 * 3600, 0));
    assert_eq!(read.idle_grants.len(), 1);
    assert_eq!((read.idle_grants[0].window_seconds, read.idle_grants[0].used_seconds), (4 * 3600, 0));
}

#[test]
fn the_share_runs_from_the_first_use_to_the_last_summarised_one() {
    let mut sim = Sim::new();
    let grant = sim.granted(0, "alice", 3600);
    sim.first_use(mins(0, 3), &grant);
    // Later checks counted into a summary written a minute after the last.
    sim.summary(mins(0, 29), &grant, mins(0, 10), mins(0, 28), 4);
    sim.expire_on_time(&grant);
    let read = payments(&run(&sim, DAY)).clone();
    // 25 of 60 minutes: 41.67 %, counted as 41.7 %.
    assert_eq!(read.used_share, Some(Shares { median: 0.417, p95: 0.417 }));
    assert_eq!((read.requested_seconds, read.used_seconds), (3600, 25 * 60));
}

#[test]
fn grants_used_for_under_a_quarter_of_their_window_are_named_most_idle_first() {
    let mut sim = Sim::new();
    let mut grants = Vec::new();
    // Used for 0 of 4h, 14 of 60m, 15 of 60m (a quarter: not idle), 5 of 30m, 0 of 2h.
    for (i, (window, used)) in [(240, 0), (60, 14), (60, 15), (30, 5), (120, 0)].into_iter().enumerate() {
        let t = i as i64 * 5 * HOUR;
        let grant = sim.granted(t, if i == 0 { "alice" } else { "dave" }, window * 60);
        sim.first_use(t, &grant);
        sim.search(t + used * 60, &grant, 1);
        sim.expire_on_time(&grant);
        grants.push(grant);
    }
    let read = payments(&run(&sim, 2 * DAY)).clone();
    let idle = |i: usize, holder: &str, window: u64, used: u64| IdleGrant {
        grant_id: grants[i].clone(),
        holder: holder.into(),
        window_seconds: window * 60,
        used_seconds: used * 60,
    };
    // 240, 120 and 46 minutes unused; the 25-minute one falls off the end.
    assert_eq!(
        read.idle_grants,
        [idle(0, "alice", 240, 0), idle(4, "dave", 120, 0), idle(1, "dave", 60, 14)]
    );
}

#[test]
fn median_and_p95_are_nearest_rank_over_the_grants() {
    let mut sim = Sim::new();
    // Twenty one-hour grants used for 3, 6, …, 60 minutes: shares 5 %, 10 %, …, 100 %.
    for i in 1..=20 {
        let t = i * 2 * HOUR;
        let grant = sim.granted(t, "alice", 3600);
        sim.first_use(t, &grant);
        sim.search(t + i * 180, &grant, 1);
        sim.expire_on_time(&grant);
    }
    let read = payments(&run(&sim, 3 * DAY)).clone();
    assert_eq!(read.grants_measured, 20);
    // The 10th of 20 and the 19th of 20.
    assert_eq!(read.used_share, Some(Shares { median: 0.5, p95: 0.95 }));
    assert_eq!(read.requested_seconds, 20 * 3600);
    assert_eq!(read.used_seconds, (1..=20).map(|i| i as u64 * 180).sum::<u64>());
}

#[test]
fn a_released_grant_is_judged_against_the_window_it_asked_for() {
    let mut sim = Sim::new();
    let grant = sim.granted(0, "alice", 3600);
    sim.first_use(60, &grant);
    sim.search(360, &grant, 5);
    sim.release(400, &grant);
    let read = payments(&run(&sim, DAY)).clone();
    // 5 minutes of the hour asked for, released after 6m40s.
    assert_eq!(read.used_share, Some(Shares { median: 0.083, p95: 0.083 }));
    assert_eq!(read.requested_seconds, 3600);
}

#[test]
fn an_extension_is_part_of_the_window() {
    let mut sim = Sim::new();
    let grant = sim.granted(0, "alice", 1800);
    sim.first_use(0, &grant);
    let g = sim.grant(&grant).clone();
    let extended = payload::GrantExtended {
        role: g.role.clone(),
        starts_at: g.starts_at,
        expires_at: at(3600),
        extension_request_id: "req_ext".into(),
        added_seconds: 1800,
        previous_expires_at: g.expires_at,
    };
    let event = NewEvent {
        subject: Some("alice".into()),
        resource: Some(g.resource.clone()),
        grant_id: Some(grant.clone()),
        ..NewEvent::new(sim.event_id(), at(1700), "bob", Payload::GrantExtended(extended))
    };
    sim.raw(1700, event);
    sim.search(2700, &grant, 1);
    let read = payments(&run(&sim, DAY)).clone();
    assert_eq!(read.requested_seconds, 3600);
    assert_eq!(read.used_share, Some(Shares { median: 0.75, p95: 0.75 }));
}

#[test]
fn a_grant_still_open_at_the_end_is_not_judged() {
    let mut sim = Sim::new();
    let grant = sim.granted(0, "alice", 4 * 3600);
    sim.first_use(60, &grant);
    let report = run(&sim, HOUR);
    let read = payments(&report);
    assert_eq!((read.grants, read.grants_open, read.grants_measured, read.grants_never_used), (1, 1, 0, 0));
    assert_eq!(read.used_share, None);
    assert_eq!(read.requested_seconds, 0);
}

#[test]
fn a_grant_from_before_the_period_is_not_followed() {
    let mut sim = Sim::new();
    let grant = sim.granted(0, "alice", 3600);
    sim.first_use(600, &grant);
    sim.expire_on_time(&grant);
    // The period starts after the grant was created: its uses and end are seen, it is not.
    let in_period: Vec<AuditEvent> =
        sim.events.iter().filter(|e| e.occurred_at >= at(300)).cloned().collect();
    let report = fold(&in_period, InsightFacts::default(), 300, DAY);
    assert!(report.roles.is_empty(), "{report:#?}");
    assert_eq!(report.events, in_period.len() as u64);
}

#[test]
fn late_usage_summaries_count_within_the_allowance_and_not_after() {
    let mut sim = Sim::new();
    let grant = sim.granted(0, "alice", 1800);
    sim.first_use(0, &grant);
    sim.expire_on_time(&grant);
    // A summary of checks before the end, written two minutes after it.
    sim.summary(1920, &grant, 600, 900, 2);
    let read = payments(&run(&sim, DAY)).clone();
    assert_eq!(read.used_share, Some(Shares { median: 0.5, p95: 0.5 }));

    // With an allowance of a minute, the grant was folded before the summary came.
    let facts = InsightFacts { late_events_seconds: 60, ..InsightFacts::default() };
    let report = fold(&sim.events, facts, 0, DAY);
    assert_eq!(payments(&report).used_share, Some(Shares { median: 0.0, p95: 0.0 }));
}

// --- eligibility ---------------------------------------------------------------------------

#[test]
fn eligible_people_who_never_asked_are_named_per_resource_and_role() {
    let mut sim = Sim::new();
    let grant = sim.granted(0, "alice", 1800);
    sim.expire_on_time(&grant);
    sim.ask(100, "erin", "logs:ledger", "read", 900);
    let facts = InsightFacts {
        eligible: vec![
            eligible("alice", "logs:payments-api", "read"),
            eligible("dave", "logs:payments-api", "read"),
            eligible("erin", "logs:payments-api", "read"),
            eligible("alice", "logs:payments-api", "read-unmasked"),
            eligible("erin", "logs:ledger", "read"),
        ],
        ..InsightFacts::default()
    };
    let report = fold(&sim.events, facts, 0, DAY);
    // erin asked for the ledger, not for payments; alice for read, not read-unmasked.
    assert_eq!(payments(&report).never_asked, ["dave", "erin"]);
    assert_eq!(payments(&report).eligible, 3);
    assert_eq!(role(&report, "logs:payments-api", "read-unmasked").never_asked, ["alice"]);
    assert!(role(&report, "logs:ledger", "read").never_asked.is_empty());
}

#[test]
fn a_request_by_someone_not_eligible_names_nobody() {
    let mut sim = Sim::new();
    sim.ask(0, "mallory", "logs:payments-api", "read", 600);
    let facts = InsightFacts {
        eligible: vec![eligible("alice", "logs:payments-api", "read")],
        ..InsightFacts::default()
    };
    let report = fold(&sim.events, facts, 0, DAY);
    assert_eq!(payments(&report).never_asked, ["alice"]);
    assert_eq!(payments(&report).requests, 1);
}

// --- approval patterns ---------------------------------------------------------------------

/// `approver` approves a request of alice's `wait` seconds after its filing at `t`.
fn approved_after(sim: &mut Sim, t: i64, approver: &str, wait: i64) -> String {
    let request = sim.ask(t, "alice", "logs:payments-api", "read", 1800);
    let grant = sim.approve(t + wait, approver, &request).unwrap();
    sim.expire_on_time(&grant);
    grant
}

#[test]
fn an_approver_who_always_approves_within_seconds_is_a_pattern() {
    let mut sim = Sim::new();
    for (i, wait) in [4, 2, 9, 4].into_iter().enumerate() {
        approved_after(&mut sim, i as i64 * HOUR, "bob", wait);
    }
    for (i, wait) in [600, 1500, 20].into_iter().enumerate() {
        approved_after(&mut sim, DAY + i as i64 * HOUR, "erin", wait);
    }
    let report = run(&sim, 3 * DAY);
    assert_eq!(report.fast_approval_seconds, 30);
    let approvers = &payments(&report).approvers;
    let bob = approvers.iter().find(|a| a.approver == "bob").unwrap();
    assert_eq!(
        (bob.approvals, bob.fast, bob.median_seconds, bob.max_seconds, bob.pattern),
        (4, 4, 4, 9, true)
    );
    let erin = approvers.iter().find(|a| a.approver == "erin").unwrap();
    assert_eq!((erin.approvals, erin.fast, erin.median_seconds, erin.max_seconds), (3, 1, 600, 1500));
    assert!(!erin.pattern, "one fast approval of three is no pattern");
}

#[test]
fn fewer_fast_approvals_than_the_minimum_or_one_slow_one_is_no_pattern() {
    let mut sim = Sim::new();
    approved_after(&mut sim, 0, "bob", 3);
    approved_after(&mut sim, HOUR, "bob", 5);
    let report = run(&sim, DAY);
    let bob = &payments(&report).approvers[0];
    assert_eq!((bob.approvals, bob.fast, bob.pattern), (2, 2, false));

    // Three, one of them a second past the threshold.
    approved_after(&mut sim, 2 * HOUR, "bob", 31);
    let bob = payments(&run(&sim, DAY)).approvers[0].clone();
    assert_eq!((bob.approvals, bob.fast, bob.max_seconds, bob.pattern), (3, 2, 31, false));

    // The threshold is the caller's (ward passes `[rules.rubber-stamp] within`).
    let facts = InsightFacts { fast_approval_seconds: 31, ..InsightFacts::default() };
    let report = fold(&sim.events, facts, 0, DAY);
    assert!(payments(&report).approvers[0].pattern);
    assert_eq!(report.fast_approval_seconds, 31);
}

#[test]
fn automatic_approvals_are_counted_apart_and_approvals_of_older_requests_not_timed() {
    let mut sim = Sim::new();
    for i in 0..3 {
        let (_, grant) = sim.ask_for(
            i * HOUR,
            "dave",
            "logs:payments-api",
            "read",
            600,
            "INC-1 pager",
            Some("INC-1"),
            None,
            Terms::Automatic,
        );
        sim.expire_on_time(&grant.unwrap());
    }
    // Filed before the period, approved in it.
    let old = sim.ask(4 * HOUR, "alice", "logs:payments-api", "read", 600);
    sim.approve(5 * HOUR, "bob", &old);
    let in_period: Vec<AuditEvent> = sim
        .events
        .iter()
        .filter(|e| e.occurred_at < at(4 * HOUR) || e.occurred_at >= at(5 * HOUR))
        .cloned()
        .collect();
    let report = fold(&in_period, InsightFacts::default(), 0, DAY);
    let read = payments(&report);
    assert_eq!(read.automatic_approvals, 3);
    assert!(read.approvers.is_empty(), "{:?}", read.approvers);
}

#[test]
fn a_two_person_request_times_each_approver() {
    let mut sim = Sim::new();
    let (request, _) = sim.ask_for(
        0,
        "alice",
        "logs:payments-api",
        "read-unmasked",
        1800,
        "INC-1 card captures fail",
        None,
        None,
        Terms::Approvals(2),
    );
    assert!(sim.approve(10, "bob", &request).is_none());
    let grant = sim.approve(900, "erin", &request).unwrap();
    sim.expire_on_time(&grant);
    let report = run(&sim, DAY);
    let approvers = &role(&report, "logs:payments-api", "read-unmasked").approvers;
    let waits: Vec<(&str, u64)> = approvers.iter().map(|a| (a.approver.as_str(), a.median_seconds)).collect();
    assert_eq!(waits, [("bob", 10), ("erin", 900)]);
}

// --- maximum durations ---------------------------------------------------------------------

#[test]
fn a_maximum_nobody_comes_near_is_one_whose_longest_request_is_at_most_half_of_it() {
    let facts = || InsightFacts {
        max_durations: vec![max("logs:payments-api", "read", 2 * 3600)],
        ..InsightFacts::default()
    };
    let mut sim = Sim::new();
    sim.ask(0, "alice", "logs:payments-api", "read", 1800);
    sim.ask(10, "dave", "logs:payments-api", "read", 3600);
    let read = payments(&fold(&sim.events, facts(), 0, DAY)).clone();
    assert_eq!((read.longest_requested_seconds, read.max_duration_seconds), (Some(3600), Some(7200)));
    assert!(read.max_duration_unreached, "half of it exactly");

    sim.ask(20, "erin", "logs:payments-api", "read", 3601);
    let read = payments(&fold(&sim.events, facts(), 0, DAY)).clone();
    assert_eq!(read.longest_requested_seconds, Some(3601));
    assert!(!read.max_duration_unreached);

    // Without a known maximum nothing is judged.
    let read = payments(&run(&sim, DAY)).clone();
    assert_eq!(read.max_duration_seconds, None);
    assert!(!read.max_duration_unreached);
}

#[test]
fn the_largest_of_several_maxima_is_the_one_compared() {
    let facts = InsightFacts {
        max_durations: vec![
            max("logs:payments-api", "read", 3600),
            max("logs:payments-api", "read", 4 * 3600),
        ],
        ..InsightFacts::default()
    };
    let mut sim = Sim::new();
    sim.ask(0, "alice", "logs:payments-api", "read", 3600);
    let read = payments(&fold(&sim.events, facts, 0, DAY)).clone();
    assert_eq!(read.max_duration_seconds, Some(4 * 3600));
    assert!(read.max_duration_unreached);
}

// --- memory --------------------------------------------------------------------------------

/// Two months of steady activity: what the fold holds stays what a day of grants needs.
#[test]
fn memory_stays_bounded_as_the_period_grows() {
    let mut sim = Sim::new();
    let people = ["alice", "erin", "dave", "frank", "gus", "hana"];
    for i in 0..(60 * 24 * 2) {
        let t = i * 1800;
        let who = people[(i % 6) as usize];
        let grant = sim.granted(t, who, 1800);
        if i % 4 != 0 {
            sim.first_use(t + 5, &grant);
            sim.summary(t + 120, &grant, t + 6, t + 100, 3);
        }
        if i % 3 == 0 {
            sim.release(t + 300, &grant);
        } else {
            sim.expire_on_time(&grant);
        }
        // Requests denied a little later.
        if i % 10 == 0 {
            let request = sim.ask(t + 7, "gus", "logs:ledger", "read", 600);
            sim.deny(t + 900, "bob", &request);
        }
    }
    let until = 60 * DAY + HOUR;
    let mut insights = Insights::new(at(0), at(until), InsightFacts::default());
    let mut held_by_day = Vec::new();
    let mut day = 0;
    for event in &sim.events {
        insights.observe(event);
        let today = (event.recorded_at.as_second() - T0) / DAY;
        if today > day {
            held_by_day.push(insights.held());
            day = today;
        }
    }
    let (first_days, last_days) =
        (held_by_day[2..5].iter().max().unwrap(), held_by_day[50..].iter().max().unwrap());
    // A day of grants (kept for late summaries, with their fold entries), whatever the period.
    assert!(*last_days <= first_days + first_days / 10, "grows with the log: {held_by_day:?}");
    assert!(*last_days < 4 * 48 + 10, "about a day of grants: {held_by_day:?}");
    let report = insights.finish();
    let read = payments(&report);
    assert_eq!(read.grants, 60 * 24 * 2);
    assert_eq!(read.grants_measured + read.grants_never_used, read.grants);
    assert_eq!(read.grants_never_used, 60 * 24 * 2 / 4);
    let _: Timestamp = report.until;
}
