//! A grant's audit checkpoints (`ward_rules::checkpoints`): each verdict's pass, fail and
//! pending, on logs written the way ward writes them.

use std::collections::BTreeMap;

use ward_core::audit::payload::{AccessUsed, Verdict};
use ward_rules::checkpoints::{
    AuditFacts, Ending, GrantAudit, MAX_LISTED, MAX_SEQS, PolicyCheck, PolicyFacts, assess,
};

use super::*;

fn audit(sim: &Sim, grant: &str, facts: &AuditFacts, now: i64) -> GrantAudit {
    assess(grant, &sim.events, facts, at(now)).expect("the grant is in the log")
}

fn verdicts(audit: &GrantAudit) -> [Verdict; 3] {
    [audit.justified.verdict, audit.used_as_intended.verdict, audit.revoked_promptly.verdict]
}

fn says(reasons: &[String], text: &str) -> bool {
    reasons.iter().any(|reason| reason.contains(text))
}

/// The policies' answers for `request`: allowed as filed, and who may approve (with stages).
fn checked(request: &str, approvers: &[(&str, Option<&[&str]>)]) -> AuditFacts {
    let check = PolicyCheck {
        policy_hash: sim::POLICY.into(),
        allowed: Some(Ok(vec!["p".into()])),
        ticket_kinds: vec![],
        approvers: approvers
            .iter()
            .map(|(who, stages)| {
                ((*who).to_owned(), stages.map(|s| s.iter().map(|x| (*x).to_owned()).collect()))
            })
            .collect(),
        reviewers: BTreeMap::new(),
    };
    let mut facts = AuditFacts::default();
    facts.policies.insert(request.to_owned(), PolicyFacts::Checked(check));
    facts
}

const PASS: Verdict = Verdict::Pass;
const FAIL: Verdict = Verdict::Fail;
const PENDING: Verdict = Verdict::Pending;

#[test]
fn a_grant_asked_well_approved_used_and_expired_on_time_passes() {
    let mut sim = Sim::new();
    let grant = sim.granted(0, "alice", 1800);
    let request = sim.grant(&grant).request_id.to_string();
    sim.first_use(60, &grant);
    sim.search(120, &grant, 40);
    sim.summary(300, &grant, 130, 240, 7);
    sim.expire_on_time(&grant);
    let facts = checked(&request, &[("bob", Some(&[])), ("erin", Some(&[]))]);
    let audit = audit(&sim, &grant, &facts, 3600);
    assert_eq!(verdicts(&audit), [PASS, PASS, PASS], "{audit:#?}");
    assert!(says(&audit.justified.reasons, "1 of 1 required approvals, by bob"));
    assert!(says(&audit.justified.reasons, "reason \"INC-4312 checkout 500s\""));
    let created = sim.events.iter().find(|e| e.event_type == EventType::RequestCreated).unwrap().seq;
    let approved = sim.events.iter().find(|e| e.event_type == EventType::ApprovalGranted).unwrap().seq;
    assert!(audit.justified.seqs.contains(&created) && audit.justified.seqs.contains(&approved));
    assert_eq!((audit.reads.checks, audit.reads.searches, audit.reads.lines), (8, 1, 40));
    assert!(says(
        &audit.used_as_intended.reasons,
        "8 checks, 1 search; 40 lines (3.1 KiB) returned, 4 values redacted (email 4)"
    ));
    let end = audit.end.as_ref().unwrap();
    assert_eq!(
        (end.how, audit.revocation_lag_ms, audit.idle_ms),
        (Ending::Expired, Some(0), Some(1560 * 1000))
    );
    assert!(
        says(&audit.revoked_promptly.reasons, "held 26m after its last use"),
        "{:?}",
        audit.revoked_promptly
    );
    // Ended, unrecorded: the first revision is owed.
    let record = audit.to_record().unwrap();
    assert_eq!((record.revision, record.ended_by.as_deref()), (1, Some("expired")));
    assert!(record.reasons.iter().all(|r| r.starts_with("justified: ")
        || r.starts_with("used_as_intended: ")
        || r.starts_with("revoked_promptly: ")));
}

#[test]
fn justified_fails_on_a_weak_reason_a_refusing_policy_or_an_approver_who_may_not() {
    let mut sim = Sim::new();
    let (request, _) =
        sim.ask_for(0, "alice", "logs:payments-api", "read", 1800, "fix", None, None, Terms::Approvals(1));
    let grant = sim.approve(10, "bob", &request).unwrap();
    let eligible = checked(&request, &[("bob", Some(&[]))]);
    let weak = audit(&sim, &grant, &eligible, 20);
    assert_eq!(weak.justified.verdict, FAIL);
    assert!(says(&weak.justified.reasons, "says nothing specific"), "{:?}", weak.justified.reasons);
    // Still live: the rest waits.
    assert_eq!(verdicts(&weak)[1..], [PENDING, PENDING]);

    let mut sim = Sim::new();
    let grant = sim.granted(0, "alice", 1800);
    let request = sim.grant(&grant).request_id.to_string();
    let mut refusing = checked(&request, &[("bob", Some(&[]))]);
    if let Some(PolicyFacts::Checked(check)) = refusing.policies.get_mut(&request) {
        check.allowed = Some(Err("`read` on `logs:payments-api` needs a ticket matching incident".into()));
    }
    let refused = audit(&sim, &grant, &refusing, 20);
    assert_eq!(refused.justified.verdict, FAIL);
    assert!(says(
        &refused.justified.reasons,
        "as filed the policies and directory in force refuse it: `read` on `logs:payments-api` needs a ticket"
    ));

    let not_eligible = checked(&request, &[("bob", None)]);
    let by_whom = audit(&sim, &grant, &not_eligible, 20);
    assert_eq!(by_whom.justified.verdict, FAIL);
    assert!(says(&by_whom.justified.reasons, "bob approved it but may not approve it under the policies"));
    assert!(says(&by_whom.justified.reasons, "0 of 1 required approvals"));

    // Not asked of the policies: what the log recorded stands.
    let unknown = audit(&sim, &grant, &AuditFacts::default(), 20);
    assert_eq!(unknown.justified.verdict, PASS, "{:?}", unknown.justified);
}

#[test]
fn justified_counts_distinct_approvers_other_than_the_requester_and_every_stage() {
    let mut sim = Sim::new();
    let (request, _) = sim.ask_for(
        0,
        "alice",
        "logs:ledger",
        "read",
        1800,
        "reconcile the transfer batch",
        None,
        None,
        Terms::Approvals(2),
    );
    assert!(sim.approve(10, "bob", &request).is_none());
    let grant = sim.approve(20, "sam", &request).unwrap();
    // Two stages, as `@stages("leads, security")` would record them.
    let created = sim.events.iter_mut().find(|e| e.event_type == EventType::RequestCreated).unwrap();
    created.details["stages"] =
        serde_json::json!([{"name": "leads", "approvals": 1}, {"name": "security", "approvals": 1}]);
    let both = checked(&request, &[("bob", Some(&["leads"])), ("sam", Some(&["security"]))]);
    let met = audit(&sim, &grant, &both, 30);
    assert_eq!(met.justified.verdict, PASS, "{:?}", met.justified);
    assert!(says(&met.justified.reasons, "2 of 2 required approvals, by bob, sam"));
    assert!(says(&met.justified.reasons, "every stage met (leads, security)"));

    let leads_only = checked(&request, &[("bob", Some(&["leads"])), ("sam", Some(&["leads"]))]);
    let unmet = audit(&sim, &grant, &leads_only, 30);
    assert_eq!(unmet.justified.verdict, FAIL);
    assert!(
        says(&unmet.justified.reasons, "stage security lacks 1 approval"),
        "{:?}",
        unmet.justified.reasons
    );

    // A log that lacks sam's approval: one of two.
    let sams: i64 = sim
        .events
        .iter()
        .filter(|e| e.event_type == EventType::ApprovalGranted)
        .map(|e| e.seq)
        .max()
        .unwrap();
    let fewer: Vec<AuditEvent> = sim.events.iter().filter(|e| e.seq != sams).cloned().collect();
    let short = assess(&grant, &fewer, &AuditFacts::default(), at(30)).unwrap();
    assert_eq!(short.justified.verdict, FAIL);
    assert!(says(
        &short.justified.reasons,
        "1 of 2 required approvals by people who may approve it other than alice (bob)"
    ));

    // An approval by the requester (the lifecycle refuses it: one on record is an anomaly).
    let mut own = sim.events.clone();
    let mut forged = own.iter().find(|e| e.seq == sams).unwrap().clone();
    forged.actor = "alice".into();
    own.retain(|e| e.seq != sams);
    own.push(forged);
    let self_approved = assess(&grant, &own, &AuditFacts::default(), at(30)).unwrap();
    assert_eq!(self_approved.justified.verdict, FAIL);
    assert!(says(&self_approved.justified.reasons, "alice approved their own request"));
}

#[test]
fn an_automatic_approval_justifies_and_extensions_are_judged_too() {
    let mut sim = Sim::new();
    let (_, grant) = sim.ask_for(
        0,
        "dave",
        "logs:checkout-web",
        "read",
        1800,
        "checkout errors in the EU",
        Some("INC-7"),
        None,
        Terms::Automatic,
    );
    let grant = grant.unwrap();
    let auto = audit(&sim, &grant, &AuditFacts::default(), 10);
    assert_eq!(auto.justified.verdict, PASS, "{:?}", auto.justified);
    assert!(says(&auto.justified.reasons, "approved automatically by oncall"));
    assert!(says(&auto.justified.reasons, "ticket INC-7"));

    // An extension with a thin reason: the grant's justification fails on it.
    let mut sim = Sim::new();
    let grant = sim.granted(0, "alice", 1800);
    let extension = sim.raw_extension(600, &grant, "more", 1800);
    let extended = audit(&sim, &grant, &AuditFacts::default(), 700);
    assert_eq!(extended.justified.verdict, FAIL);
    assert!(says(&extended.justified.reasons, &format!("extension {extension}: the reason")));
    assert_eq!(extended.expires_at, at(3600), "the extension moved the expiry");
}

#[test]
fn a_breakglass_review_passes_in_time_waits_until_due_and_fails_late_or_missing() {
    let day = 86_400;
    let glass = |sim: &mut Sim| sim.breakglass(0, "dave", "logs:ledger", 900, day as u64);

    let mut sim = Sim::new();
    let grant = glass(&mut sim);
    sim.expire_on_time(&grant);
    let waiting = audit(&sim, &grant, &AuditFacts::default(), 1000);
    assert_eq!(verdicts(&waiting), [PENDING, PASS, PASS], "{:?}", waiting.justified);
    assert!(says(&waiting.justified.reasons, "break-glass: its review is due by"));
    // Not reviewed and past due, even before the scheduler says so.
    assert_eq!(audit(&sim, &grant, &AuditFacts::default(), day + 1).justified.verdict, FAIL);
    sim.overdue(day + 5, &grant);
    let overdue = audit(&sim, &grant, &AuditFacts::default(), day + 10);
    assert_eq!(overdue.justified.verdict, FAIL);
    assert!(says(&overdue.justified.reasons, "break-glass: not reviewed by its deadline"));
    sim.review(day + 100, "bob", &grant);
    let late = audit(&sim, &grant, &AuditFacts::default(), day + 200);
    assert_eq!(late.justified.verdict, FAIL);
    assert!(says(&late.justified.reasons, "reviewed by bob at"), "{:?}", late.justified.reasons);
    assert!(says(&late.justified.reasons, "after its deadline"));

    let mut sim = Sim::new();
    let grant = glass(&mut sim);
    sim.review(3600, "bob", &grant);
    sim.expire_on_time(&grant);
    let request = sim.grant(&grant).request_id.to_string();
    let reviewed = audit(&sim, &grant, &AuditFacts::default(), 4000);
    assert_eq!(reviewed.justified.verdict, PASS, "{:?}", reviewed.justified);
    assert!(says(&reviewed.justified.reasons, "within its deadline"));
    let mut facts = checked(&request, &[]);
    if let Some(PolicyFacts::Checked(check)) = facts.policies.get_mut(&request) {
        check.reviewers.insert("bob".into(), false);
    }
    let not_his = audit(&sim, &grant, &facts, 4000);
    assert_eq!(not_his.justified.verdict, FAIL);
    assert!(says(&not_his.justified.reasons, "reviewed by bob, who may not approve this access"));
}

#[test]
fn used_as_intended_waits_while_live_and_fails_on_a_use_outside_its_window() {
    let mut sim = Sim::new();
    let grant = sim.granted(0, "alice", 1800);
    sim.first_use(60, &grant);
    let live = audit(&sim, &grant, &AuditFacts::default(), 100);
    assert_eq!(live.used_as_intended.verdict, PENDING);
    assert!(says(&live.used_as_intended.reasons, "still live until"));

    // Released at 600; a summary written after it counts a check in the release's millisecond
    // (inside) ...
    sim.release(600, &grant);
    sim.summary(650, &grant, 70, 600, 3);
    let inside = audit(&sim, &grant, &AuditFacts::default(), 700);
    assert_eq!(inside.used_as_intended.verdict, PASS, "{:?}", inside.used_as_intended);
    assert_eq!(inside.end.as_ref().unwrap().how, Ending::Released);
    // ... and one a second later (outside).
    let late = sim.summary(660, &grant, 601, 601, 1);
    let outside = audit(&sim, &grant, &AuditFacts::default(), 700);
    assert_eq!(outside.used_as_intended.verdict, FAIL);
    assert!(outside.used_as_intended.seqs.contains(&late));
    assert!(
        says(&outside.used_as_intended.reasons, "after its release at"),
        "{:?}",
        outside.used_as_intended
    );
}

#[test]
fn used_as_intended_fails_on_another_resource_an_unmasked_read_or_a_use_before_its_start() {
    let mut sim = Sim::new();
    let grant = sim.granted(0, "alice", 1800);
    let search = |role: &str| {
        Payload::AccessUsed(AccessUsed::Search(payload::LogSearch {
            action: AccessUsed::SEARCH.into(),
            role: role.into(),
            pattern: None,
            since: None,
            until: None,
            lines: 3,
            bytes: 300,
            truncated: false,
            files: 1,
            redactions: Default::default(),
            timed_out: Some(false),
            scanned: Some(300),
        }))
    };
    let use_event = |sim: &mut Sim, resource: &str, payload| NewEvent {
        subject: Some("alice".into()),
        resource: Some(resource.into()),
        grant_id: Some(grant.clone()),
        ..NewEvent::new(sim.event_id(), at(100), "alice", payload)
    };
    let event = use_event(&mut sim, "logs:ledger", search("read"));
    let elsewhere = sim.raw(100, event);
    let event = use_event(&mut sim, "logs:payments-api", search("read-unmasked"));
    let raw = sim.raw(110, event);
    sim.expire_on_time(&grant);
    let audit = audit(&sim, &grant, &AuditFacts::default(), 4000);
    assert_eq!(audit.used_as_intended.verdict, FAIL);
    assert!(says(&audit.used_as_intended.reasons, "read logs:ledger through it"));
    assert!(says(&audit.used_as_intended.reasons, "an unmasked read (read-unmasked)"));
    assert!(audit.used_as_intended.seqs.contains(&elsewhere) && audit.used_as_intended.seqs.contains(&raw));
    assert_eq!(audit.reads.unmasked, 1);

    // A scheduled grant used before its window opened.
    let mut sim = Sim::new();
    let (request, _) = sim.ask_for(
        0,
        "alice",
        "logs:payments-api",
        "read",
        1800,
        "INC-4312 checkout 500s",
        None,
        Some(3600),
        Terms::Approvals(1),
    );
    let grant = sim.approve(10, "bob", &request).unwrap();
    sim.summary(200, &grant, 100, 100, 1);
    let early = super::checkpoints::audit(&sim, &grant, &AuditFacts::default(), 300);
    assert_eq!(early.used_as_intended.verdict, FAIL);
    assert!(says(&early.used_as_intended.reasons, "before its window opened"));
}

#[test]
fn many_uses_outside_the_window_are_counted_not_all_spelt_out() {
    let mut sim = Sim::new();
    let grant = sim.granted(0, "alice", 1800);
    sim.release(600, &grant);
    let late: Vec<i64> = (1..=400).map(|n| sim.summary(600 + n, &grant, 600 + n, 600 + n, 1)).collect();
    let audit = audit(&sim, &grant, &AuditFacts::default(), 5000);
    assert_eq!(audit.used_as_intended.verdict, FAIL);
    let outside: Vec<&String> =
        audit.used_as_intended.reasons.iter().filter(|r| r.starts_with("used at")).collect();
    assert_eq!(outside.len(), MAX_LISTED);
    assert!(says(&audit.used_as_intended.reasons, "… and 395 more: uses outside the window"));
    assert_eq!(audit.used_as_intended.seqs.len(), MAX_SEQS);
    assert_eq!(audit.used_as_intended.seqs[0], late[0], "the first of them kept");
}

/// An event of ward's own consumers about `grant` (a level raised, a login removed, …).
fn effect(sim: &mut Sim, t: i64, grant: &str, payload: Payload) -> i64 {
    let event = NewEvent {
        resource: Some("logs:payments-api".into()),
        grant_id: Some(grant.to_owned()),
        ..NewEvent::new(format!("evt_effect_{t}"), at(t), "ward", payload)
    };
    sim.raw(t, event)
}

#[test]
fn revoked_promptly_includes_what_the_grant_was_given_elsewhere() {
    let login = |t| payload::ProvisionerApplied {
        driver: "postgres-role".into(),
        account: "ward_alice_1".into(),
        member_of: "orders_readonly".into(),
        valid_until: at(t),
    };
    let removed = |lag| payload::ProvisionerRemoved {
        driver: "postgres-role".into(),
        account: "ward_alice_1".into(),
        sessions_ended: 1,
        revocation_lag_ms: Some(lag),
    };
    let mut sim = Sim::new();
    let grant = sim.granted(0, "alice", 1800);
    let given = effect(&mut sim, 1, &grant, Payload::ProvisionerApplied(login(1800)));
    sim.release(600, &grant);
    // Ended, the login not removed yet: pending within the tolerance, failed past it.
    let owed = audit(&sim, &grant, &AuditFacts::default(), 630);
    assert_eq!(owed.revoked_promptly.verdict, PENDING, "{:?}", owed.revoked_promptly);
    assert!(says(&owed.revoked_promptly.reasons, "its database login is being taken back"));
    assert_eq!(audit(&sim, &grant, &AuditFacts::default(), 700).revoked_promptly.verdict, FAIL);
    let failed = payload::ProvisionerFailed {
        driver: "postgres-role".into(),
        action: "remove".into(),
        error: "cannot reach the target: connection refused".into(),
        grant_ids: vec![grant.clone()],
    };
    effect(&mut sim, 601, &grant, Payload::ProvisionerFailed(failed));
    let stuck = audit(&sim, &grant, &AuditFacts::default(), 630);
    assert_eq!(stuck.revoked_promptly.verdict, FAIL);
    assert!(says(&stuck.revoked_promptly.reasons, "could not be taken back (cannot reach the target"));
    let undone = effect(&mut sim, 640, &grant, Payload::ProvisionerRemoved(removed(40_000)));
    let done = audit(&sim, &grant, &AuditFacts::default(), 700);
    assert_eq!((done.revoked_promptly.verdict, done.effect_lag_ms), (PASS, Some(40_000)));
    assert!(says(&done.revoked_promptly.reasons, "its database login was taken back 40s after its end"));
    assert!(done.revoked_promptly.seqs.contains(&given) && done.revoked_promptly.seqs.contains(&undone));

    // Taken back late: failed, with the lag.
    let mut sim = Sim::new();
    let grant = sim.granted(0, "alice", 1800);
    effect(&mut sim, 1, &grant, Payload::ProvisionerApplied(login(1800)));
    sim.expire_on_time(&grant);
    effect(&mut sim, 1800 + 90, &grant, Payload::ProvisionerRemoved(removed(90_000)));
    let late = audit(&sim, &grant, &AuditFacts::default(), 4000);
    assert_eq!(late.revoked_promptly.verdict, FAIL);
    assert!(says(&late.revoked_promptly.reasons, "taken back 1m30s after its end (tolerance 1m)"));
}

#[test]
fn revoked_promptly_measures_the_lag_against_the_tolerance() {
    let mut sim = Sim::new();
    let grant = sim.granted(0, "alice", 1800);
    // Live and not yet due: pending; its expiry plus the minute passed unrecorded: failed.
    assert_eq!(audit(&sim, &grant, &AuditFacts::default(), 1800 + 60).revoked_promptly.verdict, PENDING);
    let overdue = audit(&sim, &grant, &AuditFacts::default(), 1800 + 61);
    assert_eq!(overdue.revoked_promptly.verdict, FAIL);
    assert!(says(
        &overdue.revoked_promptly.reasons,
        "its end is still not recorded 1m1s later (tolerance 1m)"
    ));
    // Expired five minutes late.
    sim.expire(1800 + 300, &grant);
    let late = audit(&sim, &grant, &AuditFacts::default(), 4000);
    assert_eq!(late.revoked_promptly.verdict, FAIL);
    assert_eq!(late.revocation_lag_ms, Some(300_000));
    assert!(says(&late.revoked_promptly.reasons, "its end reached the log 5m later (tolerance 1m)"));
    assert!(says(&late.revoked_promptly.reasons, "never used in the 30m it was held"));
    // The tolerance is `[rules.revocation-overdue] tolerance`.
    let lenient = AuditFacts::from_config(&config("[revocation-overdue]\ntolerance = \"10m\"\n"));
    assert_eq!(audit(&sim, &grant, &lenient, 4000).revoked_promptly.verdict, PASS);

    // Revoked: at once.
    let mut sim = Sim::new();
    let grant = sim.granted(0, "alice", 4 * 3600);
    sim.first_use(300, &grant);
    sim.revoke(3 * 3600, &grant);
    let revoked = audit(&sim, &grant, &AuditFacts::default(), 4 * 3600);
    assert_eq!(revoked.revoked_promptly.verdict, PASS);
    assert!(says(&revoked.revoked_promptly.reasons, "revoked by admin at"));
    assert_eq!(revoked.idle_ms, Some((3 * 3600 - 300) * 1000));
    assert!(says(&revoked.revoked_promptly.reasons, "held 2h55m after its last use"));
    assert!(says(&revoked.revoked_promptly.reasons, "(longer than 1h: excessive-duration)"));
}

#[test]
fn the_holders_refusals_in_the_window_are_shown() {
    let mut sim = Sim::new();
    let grant = sim.granted(0, "alice", 1800);
    let before = sim.refused_check(-10, "alice", "logs:payments-api");
    let inside = sim.refused_check(100, "alice", "logs:payments-api");
    sim.refused_check(110, "dave", "logs:payments-api");
    sim.refused_check(120, "alice", "logs:ledger");
    sim.release(600, &grant);
    let audit = audit(&sim, &grant, &AuditFacts::default(), 700);
    assert_eq!(audit.refused, [inside]);
    assert!(!audit.refused.contains(&before));
    assert_eq!(verdicts(&audit), [PASS, PASS, PASS], "refusals are not judged");
}

#[test]
fn a_recorded_audit_is_revised_only_when_later_events_change_it() {
    let mut sim = Sim::new();
    let grant = sim.granted(0, "alice", 1800);
    sim.first_use(60, &grant);
    assert!(audit(&sim, &grant, &AuditFacts::default(), 100).to_record().is_none(), "live: not yet");
    sim.release(600, &grant);
    let first = audit(&sim, &grant, &AuditFacts::default(), 601).to_record().unwrap();
    assert_eq!(first.revision, 1);
    // Recorded, as the checkpoints' consumer records it.
    let record = |sim: &mut Sim, t: i64, details: ward_core::audit::payload::GrantAudited| {
        let event = NewEvent {
            subject: Some("alice".into()),
            resource: Some("logs:payments-api".into()),
            grant_id: Some(grant.clone()),
            ..NewEvent::new(sim.event_id(), at(t), "ward", Payload::GrantAudited(details))
        };
        sim.raw(t, event)
    };
    let seq = record(&mut sim, 602, first);
    let again = audit(&sim, &grant, &AuditFacts::default(), 700);
    assert!(again.is_recorded() && again.to_record().is_none());
    assert_eq!(again.recorded.as_ref().map(|r| (r.seq, r.audited.revision)), Some((seq, 1)));
    // A usage summary flushed after the release moves the last use: revision 2.
    sim.summary(650, &grant, 70, 590, 4);
    let second = audit(&sim, &grant, &AuditFacts::default(), 700).to_record().unwrap();
    assert_eq!((second.revision, second.idle_ms), (2, Some(10_000)));
    record(&mut sim, 660, second);
    assert!(audit(&sim, &grant, &AuditFacts::default(), 9999).to_record().is_none());
}

#[test]
fn a_grant_the_log_does_not_start_is_not_assessed() {
    let mut sim = Sim::new();
    let grant = sim.granted(0, "alice", 1800);
    assert!(assess("grt_unknown", &sim.events, &AuditFacts::default(), at(10)).is_none());
    let without_start: Vec<AuditEvent> =
        sim.events.iter().filter(|e| e.event_type != EventType::GrantActivated).cloned().collect();
    assert!(assess(&grant, &without_start, &AuditFacts::default(), at(10)).is_none());
}
