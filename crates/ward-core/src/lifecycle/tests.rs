use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;

use super::*;
use crate::model::Stage;

fn t0() -> Timestamp {
    Timestamp::from_second(1_800_000_000).unwrap()
}

fn terms(approvals: u32, auto: bool) -> RequestTerms {
    RequestTerms {
        approvals_required: approvals,
        max_duration_seconds: 14400,
        policy_ids: vec!["p".into()],
        auto_approved_by: auto.then(|| vec!["auto".into()]),
        auto_denied_by: None,
        stages: Vec::new(),
        max_holders: None,
        reciprocal_seconds: None,
        review_within_seconds: None,
        max_unreviewed: 0,
        idle_timeout_seconds: None,
    }
}

/// An approver the policy lets decide, counting for `stages`.
fn eligible<'a>(name: &'a str, stages: &[&str]) -> Approver<'a> {
    Approver {
        name,
        stages: Some(stages.iter().map(|s| s.to_string()).collect()),
        last_approved_by_requester: None,
    }
}

fn ok(name: &str) -> Approver<'_> {
    eligible(name, &[])
}

fn ineligible(name: &str) -> Approver<'_> {
    Approver { name, stages: None, last_approved_by_requester: None }
}

fn no_context() -> GrantContext {
    GrantContext::default()
}

fn new_request() -> NewRequest {
    NewRequest {
        requester: "alice".into(),
        resource: "logs:payments-api".into(),
        role: "read".into(),
        duration_seconds: 1800,
        reason: "INC-1".into(),
        ..NewRequest::default()
    }
}

fn file_with(ids: &mut SequentialIds, terms: &RequestTerms, context: &GrantContext) -> Transition {
    let new = new_request();
    file_request(ids, new, terms, "hash", 86400, context, t0()).unwrap()
}

fn file(ids: &mut SequentialIds, approvals: u32, start_at: Option<Timestamp>) -> AccessRequest {
    let new = NewRequest {
        requester: "alice".into(),
        resource: "logs:payments-api".into(),
        role: "read".into(),
        duration_seconds: 1800,
        reason: "INC-1".into(),
        ticket: None,
        start_at,
        ..NewRequest::default()
    };
    file_request(ids, new, &terms(approvals, false), "hash", 86400, &no_context(), t0())
        .unwrap()
        .request
        .unwrap()
}

fn active_grant(ids: &mut SequentialIds) -> Grant {
    let request = file(ids, 1, None);
    approve(ids, request, &ok("bob"), None, &no_context(), t0()).unwrap().grant.unwrap()
}

fn types(events: &[NewEvent]) -> Vec<&'static str> {
    events.iter().map(|e| e.event_type.as_str()).collect()
}

#[test]
fn one_approval_activates_a_grant_for_the_requested_window() {
    let mut ids = SequentialIds::new("t");
    let request = file(&mut ids, 1, None);
    assert_eq!(request.state, RequestState::Pending);
    assert_eq!(request.lapses_at, t0() + SignedDuration::from_hours(24));

    let now = t0() + SignedDuration::from_secs(60);
    let done = approve(&mut ids, request, &ok("bob"), Some("ok".into()), &no_context(), now).unwrap();
    let (request, grant) = (done.request.unwrap(), done.grant.unwrap());
    assert_eq!(request.state, RequestState::Approved);
    assert_eq!(request.grant_id.as_ref(), Some(&grant.id));
    assert_eq!(grant.state, GrantState::Active);
    assert_eq!(grant.starts_at, now);
    assert_eq!(grant.expires_at, now + SignedDuration::from_mins(30));
    assert_eq!(types(&done.events), ["approval.granted", "grant.activated"]);
}

#[test]
fn self_approval_is_refused_even_when_policy_says_eligible() {
    let mut ids = SequentialIds::new("t");
    let request = file(&mut ids, 1, None);
    assert_eq!(
        approve(&mut ids, request, &ok("alice"), None, &no_context(), t0()),
        Err(LifecycleError::SelfDecision("alice".into()))
    );
}

#[test]
fn two_approvals_must_come_from_distinct_approvers() {
    let mut ids = SequentialIds::new("t");
    let request = file(&mut ids, 2, None);
    let first = approve(&mut ids, request, &ok("bob"), None, &no_context(), t0()).unwrap();
    let request = first.request.unwrap();
    assert_eq!(request.state, RequestState::Pending);
    assert!(first.grant.is_none());
    assert_eq!(
        approve(&mut ids, request.clone(), &ok("bob"), None, &no_context(), t0()),
        Err(LifecycleError::AlreadyApproved("bob".into()))
    );
    let second = approve(&mut ids, request, &ok("erin"), None, &no_context(), t0()).unwrap();
    assert_eq!(second.request.unwrap().state, RequestState::Approved);
    assert!(second.grant.is_some());
}

#[test]
fn decisions_on_a_decided_request_are_refused() {
    let mut ids = SequentialIds::new("t");
    let request = file(&mut ids, 1, None);
    let denied = deny(&mut ids, request, &ok("bob"), "no ticket".into(), t0()).unwrap().request.unwrap();
    assert_eq!(denied.state, RequestState::Denied);
    assert!(matches!(
        approve(&mut ids, denied.clone(), &ok("erin"), None, &no_context(), t0()),
        Err(LifecycleError::NotPending { state: RequestState::Denied, .. })
    ));
    assert!(matches!(cancel(&mut ids, denied, "alice", t0()), Err(LifecycleError::NotPending { .. })));
}

#[test]
fn ineligible_approver_and_empty_denial_comment_are_refused() {
    let mut ids = SequentialIds::new("t");
    let request = file(&mut ids, 1, None);
    assert!(matches!(
        approve(&mut ids, request.clone(), &ineligible("dave"), None, &no_context(), t0()),
        Err(LifecycleError::NotEligible { .. })
    ));
    assert_eq!(deny(&mut ids, request, &ok("bob"), " ".into(), t0()), Err(LifecycleError::CommentRequired));
}

#[test]
fn only_the_requester_cancels() {
    let mut ids = SequentialIds::new("t");
    let request = file(&mut ids, 1, None);
    assert!(matches!(
        cancel(&mut ids, request.clone(), "bob", t0()),
        Err(LifecycleError::NotRequester { .. })
    ));
    let cancelled = cancel(&mut ids, request, "alice", t0()).unwrap();
    assert_eq!(cancelled.request.unwrap().state, RequestState::Cancelled);
    assert_eq!(types(&cancelled.events), ["request.cancelled"]);
}

#[test]
fn lapse_is_recorded_at_the_lapse_time_with_its_lag() {
    let mut ids = SequentialIds::new("t");
    let request = file(&mut ids, 1, None);
    let late = request.lapses_at + SignedDuration::from_secs(5);
    let lapsed = lapse(&mut ids, request.clone(), late).unwrap();
    let event = &lapsed.events[0];
    assert_eq!(event.occurred_at, request.lapses_at);
    assert_eq!(event.details["lag_ms"], 5000);
    assert_eq!(lapsed.request.unwrap().state, RequestState::Lapsed);
}

#[test]
fn auto_approval_creates_the_grant_at_filing() {
    let mut ids = SequentialIds::new("t");
    let new = NewRequest {
        requester: "dave".into(),
        resource: "logs:checkout-web".into(),
        role: "read".into(),
        duration_seconds: 600,
        reason: "INC-9 outage".into(),
        ticket: Some("INC-9".into()),
        ..NewRequest::default()
    };
    let filed = file_request(&mut ids, new, &terms(1, true), "hash", 86400, &no_context(), t0()).unwrap();
    assert_eq!(types(&filed.events), ["request.created", "approval.granted", "grant.activated"]);
    assert_eq!(filed.events[1].actor, SYSTEM_ACTOR);
    assert_eq!(filed.request.unwrap().state, RequestState::Approved);
    assert_eq!(filed.grant.unwrap().state, GrantState::Active);
}

#[test]
fn a_start_time_schedules_the_grant_and_expiry_records_both_edges() {
    let mut ids = SequentialIds::new("t");
    let start = t0() + SignedDuration::from_hours(1);
    let request = file(&mut ids, 1, Some(start));
    let approved = approve(&mut ids, request, &ok("bob"), None, &no_context(), t0()).unwrap();
    let grant = approved.grant.unwrap();
    assert_eq!(grant.state, GrantState::Scheduled);
    assert_eq!(types(&approved.events), ["approval.granted", "grant.scheduled"]);
    assert!(!grant.is_usable_at(t0()));
    assert!(grant.is_usable_at(start));

    // The scheduler was down for the whole window.
    let much_later = grant.expires_at + SignedDuration::from_hours(3);
    let expired = expire(&mut ids, grant.clone(), much_later).unwrap();
    assert_eq!(types(&expired.events), ["grant.activated", "grant.expired"]);
    assert_eq!(expired.events[1].occurred_at, grant.expires_at);
    let grant = expired.grant.unwrap();
    assert_eq!(grant.ended_at, Some(grant.expires_at));
    assert_eq!(grant.state, GrantState::Expired);
}

#[test]
fn the_window_is_half_open_to_the_millisecond() {
    let mut ids = SequentialIds::new("t");
    let grant = active_grant(&mut ids);
    assert!(grant.is_usable_at(grant.expires_at - SignedDuration::from_millis(1)));
    assert!(!grant.is_usable_at(grant.expires_at));
}

#[test]
fn release_and_revoke_end_a_grant_once() {
    let mut ids = SequentialIds::new("t");
    let grant = active_grant(&mut ids);
    assert!(matches!(release(&mut ids, grant.clone(), "bob", t0()), Err(LifecycleError::NotHolder { .. })));
    let released = release(&mut ids, grant.clone(), "alice", t0()).unwrap().grant.unwrap();
    assert_eq!((released.state, released.ended_by.as_deref()), (GrantState::Released, Some("alice")));
    assert!(matches!(
        revoke(&mut ids, released, "admin", "x".into(), t0()),
        Err(LifecycleError::GrantEnded { state: GrantState::Released, .. })
    ));
    assert_eq!(
        revoke(&mut ids, grant.clone(), "admin", "".into(), t0()),
        Err(LifecycleError::ReasonRequired)
    );
    let revoked = revoke(&mut ids, grant, "admin", "left the team".into(), t0()).unwrap();
    assert_eq!(revoked.events[0].reason.as_deref(), Some("left the team"));
}

#[test]
fn a_grant_past_its_window_cannot_be_released_only_expired() {
    let mut ids = SequentialIds::new("t");
    let grant = active_grant(&mut ids);
    assert!(matches!(
        release(&mut ids, grant.clone(), "alice", grant.expires_at),
        Err(LifecycleError::GrantEnded { state: GrantState::Expired, .. })
    ));
}

#[test]
fn an_automatic_denial_wins_and_is_recorded_as_a_decision() {
    let mut ids = SequentialIds::new("t");
    let denying = RequestTerms { auto_denied_by: Some(vec!["night".into()]), ..terms(1, true) };
    let filed = file_with(&mut ids, &denying, &no_context());
    assert_eq!(types(&filed.events), ["request.created", "approval.denied"]);
    assert_eq!(filed.events[1].actor, SYSTEM_ACTOR);
    assert_eq!(filed.events[1].details["policy_ids"][0], "night");
    assert_eq!(filed.request.unwrap().state, RequestState::Denied);
    assert!(filed.grant.is_none());
}

#[test]
fn stages_must_each_be_met_by_their_own_approvers() {
    let mut ids = SequentialIds::new("t");
    let staged = RequestTerms {
        approvals_required: 2,
        stages: vec![
            Stage { name: "leads".into(), approvals: 1 },
            Stage { name: "security".into(), approvals: 1 },
        ],
        ..terms(2, false)
    };
    let request = file_with(&mut ids, &staged, &no_context()).request.unwrap();
    // Two leads are two approvals, but not the security stage.
    let step = approve(&mut ids, request, &eligible("bob", &["leads"]), None, &no_context(), t0()).unwrap();
    let step =
        approve(&mut ids, step.request.unwrap(), &eligible("erin", &["leads"]), None, &no_context(), t0())
            .unwrap();
    assert!(step.grant.is_none());
    let request = step.request.unwrap();
    assert_eq!(request.unmet_stages(), vec![Stage { name: "security".into(), approvals: 1 }]);
    // Someone eligible for both fills whichever stage is still open.
    let done =
        approve(&mut ids, request, &eligible("sam", &["leads", "security"]), None, &no_context(), t0())
            .unwrap();
    assert!(done.grant.is_some());
    assert!(done.request.unwrap().unmet_stages().is_empty());
}

#[test]
fn one_approver_never_fills_two_stages() {
    let mut ids = SequentialIds::new("t");
    let staged = RequestTerms {
        stages: vec![Stage { name: "a".into(), approvals: 1 }, Stage { name: "b".into(), approvals: 1 }],
        ..terms(1, false)
    };
    let request = file_with(&mut ids, &staged, &no_context()).request.unwrap();
    assert_eq!(request.approvals_required, 1, "terms carry the total; the stages still bind");
    let step = approve(&mut ids, request, &eligible("sam", &["a", "b"]), None, &no_context(), t0()).unwrap();
    assert!(step.grant.is_none());
    assert_eq!(step.request.unwrap().unmet_stages().len(), 1);
}

#[test]
fn approving_in_return_within_the_window_is_refused() {
    let mut ids = SequentialIds::new("t");
    let guarded = RequestTerms { reciprocal_seconds: Some(3600), ..terms(1, false) };
    let request = file_with(&mut ids, &guarded, &no_context()).request.unwrap();
    let recent =
        Approver { last_approved_by_requester: Some(t0() - SignedDuration::from_mins(59)), ..ok("bob") };
    assert!(matches!(
        approve(&mut ids, request.clone(), &recent, None, &no_context(), t0()),
        Err(LifecycleError::Reciprocal { .. })
    ));
    let long_ago =
        Approver { last_approved_by_requester: Some(t0() - SignedDuration::from_mins(61)), ..ok("bob") };
    assert!(approve(&mut ids, request, &long_ago, None, &no_context(), t0()).unwrap().grant.is_some());
}

#[test]
fn the_holder_limit_refuses_the_grant_not_the_approval_record() {
    let mut ids = SequentialIds::new("t");
    let limited = RequestTerms { max_holders: Some(2), ..terms(1, false) };
    let request = file_with(&mut ids, &limited, &no_context()).request.unwrap();
    let full = GrantContext { holders: 2, ..GrantContext::default() };
    assert!(matches!(
        approve(&mut ids, request.clone(), &ok("bob"), None, &full, t0()),
        Err(LifecycleError::TooManyHolders { max: 2, .. })
    ));
    let room = GrantContext { holders: 1, ..GrantContext::default() };
    assert!(approve(&mut ids, request, &ok("bob"), None, &room, t0()).unwrap().grant.is_some());
    // An automatic approval at the limit refuses the filing itself.
    let auto = RequestTerms { max_holders: Some(1), ..terms(1, true) };
    let new = NewRequest { requester: "dave".into(), duration_seconds: 60, ..NewRequest::default() };
    assert!(matches!(
        file_request(
            &mut ids,
            new,
            &auto,
            "h",
            60,
            &GrantContext { holders: 1, ..GrantContext::default() },
            t0()
        ),
        Err(LifecycleError::TooManyHolders { .. })
    ));
}

#[test]
fn an_approved_extension_moves_the_expiry_and_keeps_its_history() {
    let mut ids = SequentialIds::new("t");
    let grant = active_grant(&mut ids);
    let context = GrantContext { extends: Some(grant.clone()), ..GrantContext::default() };
    let filed = file_with(&mut ids, &terms(1, false), &context);
    let request = filed.request.unwrap();
    assert_eq!(request.extends_grant.as_ref(), Some(&grant.id));
    assert_eq!(request.lapses_at, grant.expires_at, "an extension cannot wait past the grant's end");
    let later = t0() + SignedDuration::from_mins(10);
    let done = approve(&mut ids, request, &ok("bob"), None, &context, later).unwrap();
    assert_eq!(types(&done.events), ["approval.granted", "grant.extended"]);
    let extended = done.grant.unwrap();
    assert_eq!(extended.id, grant.id);
    assert_eq!(extended.expires_at, grant.expires_at + SignedDuration::from_mins(30));
    assert_eq!(extended.extensions.len(), 1);
    assert_eq!(extended.extensions[0].previous_expires_at, grant.expires_at);
    assert_eq!(extended.version, grant.version + 1);
    // Someone else's grant, or one that has ended, cannot be extended.
    assert!(matches!(check_extendable(&grant, "bob", t0()), Err(LifecycleError::NotHolder { .. })));
    assert!(matches!(
        check_extendable(&grant, "alice", grant.expires_at),
        Err(LifecycleError::GrantEnded { .. })
    ));
}

#[test]
fn break_glass_waits_for_the_reviews_still_owed() {
    let mut ids = SequentialIds::new("t");
    let glass = RequestTerms { review_within_seconds: Some(3600), ..terms(1, false) };
    let owing = GrantContext { unreviewed_breakglass: 1, ..GrantContext::default() };
    let refused = file_request(&mut ids, new_request(), &glass, "h", 60, &owing, t0());
    assert!(
        matches!(refused, Err(LifecycleError::BreakglassUnreviewed { unreviewed: 1, .. })),
        "{refused:?}"
    );
    let tolerant = RequestTerms { max_unreviewed: 1, ..glass.clone() };
    assert!(file_request(&mut ids, new_request(), &tolerant, "h", 60, &owing, t0()).is_ok());
    let twice = GrantContext { unreviewed_breakglass: 2, ..GrantContext::default() };
    assert!(file_request(&mut ids, new_request(), &tolerant, "h", 60, &twice, t0()).is_err());
    // Only break-glass is held back: a plain request goes on as usual.
    assert!(file_request(&mut ids, new_request(), &terms(1, false), "h", 60, &twice, t0()).is_ok());
}

#[test]
fn break_glass_grants_at_once_and_owes_a_review() {
    let mut ids = SequentialIds::new("t");
    let glass = RequestTerms { review_within_seconds: Some(3600), ..terms(1, false) };
    let filed = file_with(&mut ids, &glass, &no_context());
    assert_eq!(types(&filed.events), ["request.created", "breakglass.used", "grant.activated"]);
    assert_eq!(filed.events[1].actor, "alice");
    assert!(filed.events[1].details["policy_hash"].is_string());
    let grant = filed.grant.unwrap();
    let owed = grant.review.clone().unwrap();
    assert_eq!((owed.state, owed.due_at), (ReviewState::Pending, t0() + SignedDuration::from_hours(1)));
    assert!(filed.request.unwrap().breakglass);

    // The holder cannot review their own use; an ineligible user cannot either.
    assert!(matches!(
        review(&mut ids, grant.clone(), "alice", true, "fine".into(), t0()),
        Err(LifecycleError::SelfDecision(_))
    ));
    assert!(matches!(
        review(&mut ids, grant.clone(), "dave", false, "fine".into(), t0()),
        Err(LifecycleError::NotEligible { .. })
    ));
    // Past the deadline: recorded overdue at the deadline, and still reviewable (late).
    let late = owed.due_at + SignedDuration::from_secs(5);
    let overdue = review_overdue(&mut ids, grant, late).unwrap();
    assert_eq!(overdue.events[0].occurred_at, owed.due_at);
    let grant = overdue.grant.unwrap();
    assert_eq!(grant.review.as_ref().unwrap().state, ReviewState::Overdue);
    let reviewed = review(&mut ids, grant, "bob", true, "INC-1 checked".into(), late).unwrap();
    assert_eq!(reviewed.events[0].details["late"], true);
    let grant = reviewed.grant.unwrap();
    assert_eq!(grant.review.as_ref().unwrap().state, ReviewState::Done);
    assert!(matches!(
        review(&mut ids, grant, "erin", true, "again".into(), late),
        Err(LifecycleError::AlreadyReviewed { .. })
    ));
}

proptest! {
    /// Whatever order approvers (the requester among them, some repeating) try in, a request is
    /// approved exactly when the required number of distinct non-requester approvals is reached.
    #[test]
    fn approval_needs_distinct_approvers_other_than_the_requester(
        required in 1u32..4,
        attempts in proptest::collection::vec(0usize..5, 0..12),
    ) {
        let people = ["alice", "bob", "erin", "dave", "frank"];
        let mut ids = SequentialIds::new("t");
        let mut request = file(&mut ids, required, None);
        let mut distinct = std::collections::BTreeSet::new();
        for who in attempts.into_iter().map(|i| people[i]) {
            match approve(&mut ids, request.clone(), &ok(who), None, &no_context(), t0()) {
                Ok(step) => {
                    prop_assert_ne!(who, "alice");
                    prop_assert!(distinct.insert(who), "{} counted twice", who);
                    request = step.request.unwrap();
                    prop_assert_eq!(step.grant.is_some(), distinct.len() == required as usize);
                }
                Err(_) => {
                    prop_assert!(who == "alice" || distinct.contains(who) || request.state != RequestState::Pending);
                }
            }
            prop_assert!(request.approvers().all(|a| a != "alice"));
        }
        prop_assert_eq!(request.state == RequestState::Approved, distinct.len() >= required as usize);
    }

    /// Whatever stages a request needs and whoever approves in whatever order, the grant comes
    /// exactly when the approvers so far can fill every stage slot, each approver one slot of a
    /// stage they are eligible for (checked against a brute-force search).
    #[test]
    fn stages_are_met_exactly_when_an_assignment_exists(
        needs in proptest::collection::vec(1u32..3, 1..3),
        approvers in proptest::collection::vec(proptest::collection::vec(any::<bool>(), 2), 1..6),
    ) {
        let names = ["a", "b"];
        let stages: Vec<Stage> = needs.iter().enumerate().map(|(i, &n)| Stage { name: names[i].into(), approvals: n }).collect();
        let total: u32 = needs.iter().sum();
        let staged = RequestTerms { approvals_required: total, stages: stages.clone(), ..terms(total, false) };
        let mut ids = SequentialIds::new("s");
        let mut request = file_with(&mut ids, &staged, &no_context()).request.unwrap();
        let people = ["p0", "p1", "p2", "p3", "p4", "p5"];
        let mut so_far: Vec<Vec<&str>> = Vec::new();
        for (i, flags) in approvers.iter().enumerate() {
            let their: Vec<&str> = names.iter().zip(flags).filter(|(_, e)| **e).map(|(n, _)| *n).collect();
            let step = approve(&mut ids, request.clone(), &eligible(people[i], &their), None, &no_context(), t0());
            let Ok(step) = step else {
                prop_assert!(request.state != RequestState::Pending);
                break;
            };
            so_far.push(their);
            let slots: Vec<&str> = stages.iter().flat_map(|s| std::iter::repeat_n(s.name.as_str(), s.approvals as usize)).collect();
            prop_assert_eq!(step.grant.is_some(), fillable(&slots, &so_far, &mut vec![false; so_far.len()]));
            request = step.request.unwrap();
        }
    }
}

/// Brute force: can each slot get a distinct unused approver eligible for its stage?
fn fillable(slots: &[&str], approvers: &[Vec<&str>], used: &mut Vec<bool>) -> bool {
    let Some((first, rest)) = slots.split_first() else { return true };
    for i in 0..approvers.len() {
        if !used[i] && approvers[i].contains(first) {
            used[i] = true;
            let ok = fillable(rest, approvers, used);
            used[i] = false;
            if ok {
                return true;
            }
        }
    }
    false
}

/// Every transition's `details`, as canonical JSON: the recorded form that logs already hold
/// and that their hashes cover. Typed payloads must produce exactly these bytes.
#[test]
fn every_transition_records_the_details_it_always_has() {
    let mut ids = SequentialIds::new("g");
    let mut recorded: Vec<String> = Vec::new();
    let mut record = |events: &[NewEvent]| {
        for event in events {
            recorded.push(format!("{} {}", event.event_type, crate::audit::canonical_json(&event.details)));
        }
    };
    let later = |secs: i64| t0() + SignedDuration::from_secs(secs);

    // A staged request with a ticket, approved by one approver of each stage.
    let staged = RequestTerms {
        stages: vec![Stage { name: "lead".into(), approvals: 1 }, Stage { name: "sec".into(), approvals: 1 }],
        approvals_required: 2,
        ..terms(2, false)
    };
    let new = NewRequest {
        ticket: Some("INC-7".into()),
        on_call_schedules: vec!["primary".into()],
        business_hours: true,
        ..new_request()
    };
    let filed = file_request(&mut ids, new, &staged, "h1", 86400, &no_context(), t0()).unwrap();
    record(&filed.events);
    let first =
        approve(&mut ids, filed.request.unwrap(), &eligible("bob", &["lead"]), None, &no_context(), later(5))
            .unwrap();
    record(&first.events);
    let second = approve(
        &mut ids,
        first.request.unwrap(),
        &eligible("erin", &["sec"]),
        Some("ok".into()),
        &no_context(),
        later(9),
    )
    .unwrap()
    .with_policy_hash("h1");
    record(&second.events);
    let grant = second.grant.unwrap();
    record(&release(&mut ids, grant.clone(), "alice", later(60)).unwrap().events);
    record(&revoke(&mut ids, grant.clone(), "admin", "left".into(), later(61)).unwrap().events);

    // Scheduled, opened late, expired late; and one whose whole window passed unprocessed.
    let new = NewRequest { start_at: Some(later(3600)), ..new_request() };
    let filed = file_request(&mut ids, new, &terms(1, false), "h2", 86400, &no_context(), t0()).unwrap();
    record(&filed.events);
    let request = filed.request.unwrap();
    let scheduled =
        approve(&mut ids, request, &ok("bob"), None, &no_context(), t0()).unwrap().with_policy_hash("h2");
    record(&scheduled.events);
    let grant = scheduled.grant.unwrap();
    let opened = activate(&mut ids, grant.clone(), later(3602)).unwrap();
    record(&opened.events);
    record(
        &expire(&mut ids, opened.grant.unwrap(), later(5400) + SignedDuration::from_millis(250))
            .unwrap()
            .events,
    );
    record(&expire(&mut ids, grant, later(9000)).unwrap().events);

    // Automatic approval and denial, a denial by an approver, a cancellation, a lapse.
    record(&file_with(&mut ids, &terms(1, true), &no_context()).events);
    let denying = RequestTerms { auto_denied_by: Some(vec!["night".into()]), ..terms(1, true) };
    record(&file_with(&mut ids, &denying, &no_context()).events);
    let request = file(&mut ids, 1, None);
    record(&deny(&mut ids, request, &ok("bob"), "no".into(), later(1)).unwrap().events);
    let request = file(&mut ids, 1, None);
    record(&cancel(&mut ids, request, "alice", later(1)).unwrap().events);
    let request = file(&mut ids, 1, None);
    record(&lapse(&mut ids, request, later(86400 + 7)).unwrap().events);

    // An extension.
    let grant = active_grant(&mut ids);
    let context = GrantContext { extends: Some(grant.clone()), ..GrantContext::default() };
    let filed = file_with(&mut ids, &terms(1, false), &context);
    record(&filed.events);
    record(
        &approve(&mut ids, filed.request.unwrap(), &ok("bob"), None, &context, later(600)).unwrap().events,
    );

    // Break-glass: used, overdue, reviewed late; and reviewed in time.
    let glass = RequestTerms { review_within_seconds: Some(3600), ..terms(1, false) };
    let filed = file_with(&mut ids, &glass, &no_context());
    record(&filed.events);
    let grant = filed.grant.unwrap();
    let overdue = review_overdue(&mut ids, grant.clone(), later(3605)).unwrap();
    record(&overdue.events);
    record(
        &review(&mut ids, overdue.grant.unwrap(), "bob", true, "fine".into(), later(3700)).unwrap().events,
    );
    record(&review(&mut ids, grant, "bob", true, "fine".into(), later(100)).unwrap().events);

    let request = file(&mut ids, 1, None);
    record(&[refusal_event(&mut ids, "bob", "approve", Some("logs:x"), Some(&request.id), "why", t0())]);
    record(&[refusal_event(&mut ids, "bob", "request", None, None, "why", t0())]);

    let expected = [
        r#"request.created {"approvals_required":2,"breakglass":false,"business_hours":true,"duration_seconds":1800,"extends_grant":null,"on_call_schedules":["primary"],"policy_hash":"h1","policy_ids":["p"],"role":"read","stages":[{"approvals":1,"name":"lead"},{"approvals":1,"name":"sec"}],"start_at":null,"ticket":"INC-7"}"#,
        r#"approval.granted {"approvals":1,"approvals_required":2,"stages":["lead"],"stages_unmet":[{"approvals":1,"name":"sec"}]}"#,
        r#"approval.granted {"approvals":2,"approvals_required":2,"stages":["sec"],"stages_unmet":[]}"#,
        r#"grant.activated {"expires_at":"2027-01-15T08:30:09Z","policy_hash":"h1","role":"read","starts_at":"2027-01-15T08:00:09Z"}"#,
        r#"grant.released {"expires_at":"2027-01-15T08:30:09Z","role":"read","starts_at":"2027-01-15T08:00:09Z"}"#,
        r#"grant.revoked {"expires_at":"2027-01-15T08:30:09Z","role":"read","starts_at":"2027-01-15T08:00:09Z"}"#,
        r#"request.created {"approvals_required":1,"breakglass":false,"business_hours":false,"duration_seconds":1800,"extends_grant":null,"on_call_schedules":[],"policy_hash":"h2","policy_ids":["p"],"role":"read","stages":[],"start_at":"2027-01-15T09:00:00Z","ticket":null}"#,
        r#"approval.granted {"approvals":1,"approvals_required":1,"stages":[],"stages_unmet":[]}"#,
        r#"grant.scheduled {"expires_at":"2027-01-15T09:30:00Z","policy_hash":"h2","role":"read","starts_at":"2027-01-15T09:00:00Z"}"#,
        r#"grant.activated {"due_at":"2027-01-15T09:00:00Z","expires_at":"2027-01-15T09:30:00Z","lag_ms":2000,"processed_at":"2027-01-15T09:00:02Z","role":"read","starts_at":"2027-01-15T09:00:00Z"}"#,
        r#"grant.expired {"due_at":"2027-01-15T09:30:00Z","expires_at":"2027-01-15T09:30:00Z","lag_ms":250,"processed_at":"2027-01-15T09:30:00.25Z","role":"read","starts_at":"2027-01-15T09:00:00Z"}"#,
        r#"grant.activated {"due_at":"2027-01-15T09:00:00Z","expires_at":"2027-01-15T09:30:00Z","lag_ms":5400000,"processed_at":"2027-01-15T10:30:00Z","role":"read","starts_at":"2027-01-15T09:00:00Z"}"#,
        r#"grant.expired {"due_at":"2027-01-15T09:30:00Z","expires_at":"2027-01-15T09:30:00Z","lag_ms":3600000,"processed_at":"2027-01-15T10:30:00Z","role":"read","starts_at":"2027-01-15T09:00:00Z"}"#,
        r#"request.created {"approvals_required":1,"breakglass":false,"business_hours":false,"duration_seconds":1800,"extends_grant":null,"on_call_schedules":[],"policy_hash":"hash","policy_ids":["p"],"role":"read","stages":[],"start_at":null,"ticket":null}"#,
        r#"approval.granted {"automatic":true,"policy_ids":["auto"]}"#,
        r#"grant.activated {"expires_at":"2027-01-15T08:30:00Z","policy_hash":"hash","role":"read","starts_at":"2027-01-15T08:00:00Z"}"#,
        r#"request.created {"approvals_required":1,"breakglass":false,"business_hours":false,"duration_seconds":1800,"extends_grant":null,"on_call_schedules":[],"policy_hash":"hash","policy_ids":["p"],"role":"read","stages":[],"start_at":null,"ticket":null}"#,
        r#"approval.denied {"automatic":true,"policy_ids":["night"]}"#,
        r#"approval.denied {}"#,
        r#"request.cancelled {}"#,
        r#"request.lapsed {"due_at":"2027-01-16T08:00:00Z","lag_ms":7000,"processed_at":"2027-01-16T08:00:07Z"}"#,
        r#"request.created {"approvals_required":1,"breakglass":false,"business_hours":false,"duration_seconds":1800,"extends_grant":"grt_g_38","on_call_schedules":[],"policy_hash":"hash","policy_ids":["p"],"role":"read","stages":[],"start_at":null,"ticket":null}"#,
        r#"approval.granted {"approvals":1,"approvals_required":1,"stages":[],"stages_unmet":[]}"#,
        r#"grant.extended {"added_seconds":1800,"expires_at":"2027-01-15T09:00:00Z","extension_request_id":"req_g_40","previous_expires_at":"2027-01-15T08:30:00Z","role":"read","starts_at":"2027-01-15T08:00:00Z"}"#,
        r#"request.created {"approvals_required":1,"breakglass":true,"business_hours":false,"duration_seconds":1800,"extends_grant":null,"on_call_schedules":[],"policy_hash":"hash","policy_ids":["p"],"role":"read","stages":[],"start_at":null,"ticket":null}"#,
        r#"breakglass.used {"expires_at":"2027-01-15T08:30:00Z","policy_hash":"hash","policy_ids":["p"],"review_due_at":"2027-01-15T09:00:00Z","role":"read","starts_at":"2027-01-15T08:00:00Z"}"#,
        r#"grant.activated {"expires_at":"2027-01-15T08:30:00Z","policy_hash":"hash","role":"read","starts_at":"2027-01-15T08:00:00Z"}"#,
        r#"breakglass.overdue {"due_at":"2027-01-15T09:00:00Z","expires_at":"2027-01-15T08:30:00Z","lag_ms":5000,"processed_at":"2027-01-15T09:00:05Z","role":"read","starts_at":"2027-01-15T08:00:00Z"}"#,
        r#"breakglass.reviewed {"expires_at":"2027-01-15T08:30:00Z","late":true,"review_due_at":"2027-01-15T09:00:00Z","role":"read","starts_at":"2027-01-15T08:00:00Z"}"#,
        r#"breakglass.reviewed {"expires_at":"2027-01-15T08:30:00Z","late":false,"review_due_at":"2027-01-15T09:00:00Z","role":"read","starts_at":"2027-01-15T08:00:00Z"}"#,
        r#"access.denied {"action":"approve"}"#,
        r#"access.denied {"action":"request"}"#,
    ];
    assert_eq!(recorded, expected);
}

#[test]
fn an_unused_grant_ends_at_its_idle_deadline_with_the_reason_idle() {
    let mut ids = SequentialIds::new("t");
    let idle = RequestTerms { idle_timeout_seconds: Some(600), ..terms(1, false) };
    let request = file_with(&mut ids, &idle, &no_context()).request.unwrap();
    assert_eq!(request.idle_timeout_seconds, Some(600));
    let mut grant = approve(&mut ids, request, &ok("bob"), None, &no_context(), t0()).unwrap().grant.unwrap();
    assert_eq!(grant.idle_timeout_seconds, Some(600));
    let ten_minutes = t0() + SignedDuration::from_mins(10);
    assert_eq!((grant.idle_at(), grant.ends_at()), (Some(ten_minutes), ten_minutes));
    assert!(grant.is_usable_at(ten_minutes - SignedDuration::from_millis(1)));
    assert!(
        !grant.is_usable_at(ten_minutes),
        "unused for ten minutes: no access, whatever the scheduler does"
    );

    // A use moves the deadline; one before the start counts from the start.
    grant.last_used_at = Some(t0() + SignedDuration::from_mins(4));
    let fourteen_minutes = t0() + SignedDuration::from_mins(14);
    assert_eq!(grant.ends_at(), fourteen_minutes);
    assert!(grant.is_usable_at(ten_minutes));
    assert!(matches!(
        release(&mut ids, grant.clone(), "alice", fourteen_minutes),
        Err(LifecycleError::GrantEnded { state: GrantState::Expired, .. })
    ));
    assert!(matches!(
        check_extendable(&grant, "alice", fourteen_minutes),
        Err(LifecycleError::GrantEnded { state: GrantState::Expired, .. })
    ));

    let late = fourteen_minutes + SignedDuration::from_secs(2);
    let expired = expire(&mut ids, grant.clone(), late).unwrap();
    let ended = expired.grant.unwrap();
    assert_eq!(
        (ended.state, ended.ended_at, ended.end_reason.as_deref()),
        (GrantState::Expired, Some(fourteen_minutes), Some(IDLE_REASON))
    );
    let event = &expired.events[0];
    assert_eq!((event.event_type.as_str(), event.reason.as_deref()), ("grant.expired", Some("idle")));
    assert_eq!(event.occurred_at, fourteen_minutes);
    assert_eq!(event.details["idle_timeout_seconds"], 600);
    assert_eq!(event.details["last_used_at"], serde_json::json!(t0() + SignedDuration::from_mins(4)));
    assert_eq!(event.details["lag_ms"], 2000);

    // A timeout longer than what is left of the window changes nothing: the window ends it.
    grant.last_used_at = Some(grant.expires_at - SignedDuration::from_mins(1));
    let expired = expire(&mut ids, grant.clone(), grant.expires_at).unwrap();
    assert_eq!(expired.grant.unwrap().end_reason, None);
    assert_eq!(expired.events[0].reason, None);
    assert!(expired.events[0].details.get("idle_timeout_seconds").is_none());
}
