use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;

use super::*;

fn t0() -> Timestamp {
    Timestamp::from_second(1_800_000_000).unwrap()
}

fn terms(approvals: u32, auto: bool) -> RequestTerms {
    RequestTerms {
        approvals_required: approvals,
        max_duration_seconds: 14400,
        policy_ids: vec!["p".into()],
        auto_approved_by: auto.then(|| vec!["auto".into()]),
    }
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
    };
    file_request(ids, new, &terms(approvals, false), "hash", 86400, t0()).request.unwrap()
}

fn active_grant(ids: &mut SequentialIds) -> Grant {
    let request = file(ids, 1, None);
    approve(ids, request, "bob", true, None, t0()).unwrap().grant.unwrap()
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
    let done = approve(&mut ids, request, "bob", true, Some("ok".into()), now).unwrap();
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
        approve(&mut ids, request, "alice", true, None, t0()),
        Err(LifecycleError::SelfDecision("alice".into()))
    );
}

#[test]
fn two_approvals_must_come_from_distinct_approvers() {
    let mut ids = SequentialIds::new("t");
    let request = file(&mut ids, 2, None);
    let first = approve(&mut ids, request, "bob", true, None, t0()).unwrap();
    let request = first.request.unwrap();
    assert_eq!(request.state, RequestState::Pending);
    assert!(first.grant.is_none());
    assert_eq!(
        approve(&mut ids, request.clone(), "bob", true, None, t0()),
        Err(LifecycleError::AlreadyApproved("bob".into()))
    );
    let second = approve(&mut ids, request, "erin", true, None, t0()).unwrap();
    assert_eq!(second.request.unwrap().state, RequestState::Approved);
    assert!(second.grant.is_some());
}

#[test]
fn decisions_on_a_decided_request_are_refused() {
    let mut ids = SequentialIds::new("t");
    let request = file(&mut ids, 1, None);
    let denied = deny(&mut ids, request, "bob", true, "no ticket".into(), t0()).unwrap().request.unwrap();
    assert_eq!(denied.state, RequestState::Denied);
    assert!(matches!(
        approve(&mut ids, denied.clone(), "erin", true, None, t0()),
        Err(LifecycleError::NotPending { state: RequestState::Denied, .. })
    ));
    assert!(matches!(cancel(&mut ids, denied, "alice", t0()), Err(LifecycleError::NotPending { .. })));
}

#[test]
fn ineligible_approver_and_empty_denial_comment_are_refused() {
    let mut ids = SequentialIds::new("t");
    let request = file(&mut ids, 1, None);
    assert!(matches!(
        approve(&mut ids, request.clone(), "dave", false, None, t0()),
        Err(LifecycleError::NotEligible { .. })
    ));
    assert_eq!(deny(&mut ids, request, "bob", true, " ".into(), t0()), Err(LifecycleError::CommentRequired));
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
        start_at: None,
    };
    let filed = file_request(&mut ids, new, &terms(1, true), "hash", 86400, t0());
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
    let approved = approve(&mut ids, request, "bob", true, None, t0()).unwrap();
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
            match approve(&mut ids, request.clone(), who, true, None, t0()) {
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
}
