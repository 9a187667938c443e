//! The behaviour every [`Store`] must show, run by each backend's tests through
//! [`conformance_tests!`](crate::conformance_tests) on a fresh, empty store per test.
#![allow(clippy::unwrap_used, clippy::expect_used)] // assertions are the point here

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use ward_core::audit::{EventType, GENESIS_HASH, NewEvent};
use ward_core::lifecycle::{self, Approver, GrantContext, NewRequest, SequentialIds, Transition};
use ward_core::policy::RequestTerms;
use ward_core::{AccessRequest, Grant, GrantState, RequestState};

use crate::{
    ApiToken, Change, CursorMove, DebugLevelHolder, DebugLevelRecord, DebugLevelWrite, DirectoryGroup,
    EventFilter, FindingFilter, FindingRecord, FindingState, GrantFilter, GrantUse, GroupWrite,
    KeyFingerprint, Lease, LoginRecord, LoginWrite, PersonRecord, RequestFilter, SessionWrite, Store,
    StoreError, TallyKind, TallyTaken, TokenFilter, TokenWrite, UsageTally, Visibility, WebSession,
};
use ward_rules::{RuleId, Severity};

/// Generates one `#[tokio::test]` per conformance check, each on a store from `$make` (an async
/// function returning `Option<Arc<dyn Store>>`; `None` skips).
#[macro_export]
macro_rules! conformance_tests {
    ($make:path) => {
        $crate::conformance_tests!(@each $make;
            commit_writes_records_and_chains_events,
            stale_versions_conflict_and_write_nothing,
            a_failing_change_leaves_no_trace,
            due_work_and_next_due_time,
            idle_grants_fall_due_and_uses_only_move_forward,
            grants_are_found_by_expiry,
            listings_filter_and_order,
            listings_page_by_cursor_and_narrow_by_visibility,
            event_filters,
            tokens_are_kept_by_hash,
            sessions_are_kept_by_hash_and_end_once,
            requests_are_read_by_id_in_one_go,
            concurrent_appends_form_one_chain,
            concurrent_decisions_on_one_record_let_one_win,
            ready_when_writable,
            the_head_is_the_merkle_root_of_the_log,
            the_trees_nodes_give_the_proofs_of_its_leaves,
            an_event_span_is_the_first_and_last_seq_of_a_period,
            checkpoints_sign_exactly_the_head,
            debug_levels_keep_the_level_to_put_back,
            credentials_of_a_login_are_issued_once,
            policy_snapshots_are_kept_by_digest_with_their_event,
            people_are_written_once_per_version,
            directory_groups_are_written_once_per_version,
            sub_millisecond_times_still_verify,
            events_of_any_text_are_stored_as_hashed,
            forward_cursors_are_kept_per_sink,
            a_consumer_has_one_holder_at_a_time,
            workflow_terms_round_trip,
            the_holder_limit_holds_inside_the_commit,
            counts_are_limited_inside_the_commit,
            extensions_move_expiry,
            many_grants_change_in_one_commit_or_none_do,
            usage_tallies_add_up_per_writer_and_are_taken_once,
            a_shared_key_fingerprint_is_recorded_once_and_replaced_only_as_named,
            breakglass_reviews_fall_due_and_filter,
            findings_are_kept_and_listed,
            one_live_finding_per_key,
            a_cursor_moves_with_its_effects_or_not_at_all,
            a_stale_lease_moves_no_cursor,
        );
    };
    (@each $make:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                if let Some(store) = $make().await {
                    $crate::conformance::$name(store).await;
                }
            }
        )*
    };
}

fn t0() -> Timestamp {
    Timestamp::from_millisecond(1_800_000_000_123).unwrap()
}

fn terms(approvals: u32) -> RequestTerms {
    RequestTerms {
        approvals_required: approvals,
        max_duration_seconds: 14400,
        policy_ids: vec!["payments-api.read".into()],
        auto_approved_by: None,
        auto_denied_by: None,
        stages: Vec::new(),
        max_holders: None,
        reciprocal_seconds: None,
        review_within_seconds: None,
        max_unreviewed: 0,
        idle_timeout_seconds: None,
    }
}

fn approve_as(ids: &mut SequentialIds, request: AccessRequest, who: &str, at: Timestamp) -> Transition {
    approve_with(ids, request, who, &GrantContext::default(), at).unwrap()
}

fn approve_with(
    ids: &mut SequentialIds,
    request: AccessRequest,
    who: &str,
    context: &GrantContext,
    at: Timestamp,
) -> Result<Transition, lifecycle::LifecycleError> {
    let approver = Approver { name: who, stages: Some(Vec::new()), last_approved_by_requester: None };
    lifecycle::approve(ids, request, &approver, None, context, at)
}

fn filed(ids: &mut SequentialIds, requester: &str, at: Timestamp, start_at: Option<Timestamp>) -> Transition {
    let new = NewRequest {
        requester: requester.into(),
        resource: "logs:payments-api".into(),
        role: "read".into(),
        duration_seconds: 1800,
        reason: "INC-4312 checkout 500s".into(),
        ticket: Some("INC-4312".into()),
        start_at,
        on_call_schedules: vec!["payments-primary".into()],
        business_hours: true,
    };
    lifecycle::file_request(ids, new, &terms(1), "policyhash", 3600, &GrantContext::default(), at).unwrap()
}

fn change(transitions: impl IntoIterator<Item = Transition>) -> Change {
    let mut change = Change::default();
    for t in transitions {
        change.absorb(t);
    }
    change
}

/// Files a request and approves it: returns the approved request and its active grant.
async fn granted(
    store: &dyn Store,
    ids: &mut SequentialIds,
    requester: &str,
    at: Timestamp,
) -> (AccessRequest, Grant) {
    let request = filed(ids, requester, at, None);
    store.commit(change([request.clone()]), at).await.unwrap();
    let approved = approve_as(ids, request.request.unwrap(), "bob", at);
    store.commit(change([approved.clone()]), at).await.unwrap();
    (approved.request.unwrap(), approved.grant.unwrap())
}

async fn all_events(store: &dyn Store) -> Vec<ward_core::audit::AuditEvent> {
    store.events(&EventFilter { limit: 100_000, ..Default::default() }).await.unwrap()
}

fn assert_one_chain(events: &[ward_core::audit::AuditEvent]) {
    let mut prev = GENESIS_HASH.to_owned();
    for (i, event) in events.iter().enumerate() {
        assert_eq!(event.seq, i as i64 + 1, "seq has a gap or a duplicate");
        assert_eq!(event.prev_hash, prev, "chain broken at seq {}", event.seq);
        assert_eq!(event.compute_hash(), event.hash, "hash of seq {} does not verify", event.seq);
        prev = event.hash.clone();
    }
}

pub async fn commit_writes_records_and_chains_events(store: Arc<dyn Store>) {
    let mut ids = SequentialIds::new("a");
    let (request, grant) = granted(&*store, &mut ids, "alice", t0()).await;
    assert_eq!(store.request(request.id.as_str()).await.unwrap(), Some(request.clone()));
    assert_eq!(store.grant(grant.id.as_str()).await.unwrap(), Some(grant.clone()));
    assert_eq!(store.request("req_missing").await.unwrap(), None);

    let events = all_events(&*store).await;
    let types: Vec<_> = events.iter().map(|e| e.event_type).collect();
    assert_eq!(types, [EventType::RequestCreated, EventType::ApprovalGranted, EventType::GrantActivated]);
    assert_one_chain(&events);
    let created = &events[0];
    assert_eq!(created.actor, "alice");
    assert_eq!(created.resource.as_deref(), Some("logs:payments-api"));
    assert_eq!(created.request_id.as_deref(), Some(request.id.as_str()));
    assert_eq!(created.reason.as_deref(), Some("INC-4312 checkout 500s"));
    assert_eq!(created.details["duration_seconds"], 1800);
    assert_eq!(created.occurred_at, t0());
    assert_eq!(created.recorded_at, t0());
}

pub async fn stale_versions_conflict_and_write_nothing(store: Arc<dyn Store>) {
    let mut ids = SequentialIds::new("b");
    let first = filed(&mut ids, "alice", t0(), None);
    store.commit(change([first.clone()]), t0()).await.unwrap();
    // The same insert again: the id exists.
    assert!(matches!(store.commit(change([first.clone()]), t0()).await, Err(StoreError::Conflict)));

    let pending = first.request.unwrap();
    let approved = approve_as(&mut ids, pending.clone(), "bob", t0());
    let cancelled = lifecycle::cancel(&mut ids, pending.clone(), "alice", t0()).unwrap();
    store.commit(change([approved]), t0()).await.unwrap();
    let before = all_events(&*store).await.len();
    // Cancelling from the stale read must not overwrite the approval.
    assert!(matches!(store.commit(change([cancelled]), t0()).await, Err(StoreError::Conflict)));
    assert_eq!(store.request(pending.id.as_str()).await.unwrap().unwrap().state, RequestState::Approved);
    assert_eq!(all_events(&*store).await.len(), before, "a refused change appended events");
}

pub async fn a_failing_change_leaves_no_trace(store: Arc<dyn Store>) {
    let mut ids = SequentialIds::new("c");
    let existing = filed(&mut ids, "alice", t0(), None);
    store.commit(change([existing.clone()]), t0()).await.unwrap();
    // A new request plus a conflicting duplicate in one change: neither lands.
    let fresh = filed(&mut ids, "erin", t0(), None);
    let fresh_id = fresh.request.as_ref().unwrap().id.clone();
    assert!(store.commit(change([fresh, existing]), t0()).await.is_err());
    assert_eq!(store.request(fresh_id.as_str()).await.unwrap(), None);
    let events = all_events(&*store).await;
    assert_eq!(events.len(), 1);
    assert_one_chain(&events);
}

pub async fn due_work_and_next_due_time(store: Arc<dyn Store>) {
    let mut ids = SequentialIds::new("d");
    assert_eq!(store.next_due_at().await.unwrap(), None);
    let (_, active) = granted(&*store, &mut ids, "alice", t0()).await;
    // A scheduled grant starting in 10 minutes.
    let start = t0() + SignedDuration::from_mins(10);
    let scheduled_request = filed(&mut ids, "erin", t0(), Some(start));
    store.commit(change([scheduled_request.clone()]), t0()).await.unwrap();
    let approved = approve_as(&mut ids, scheduled_request.request.unwrap(), "bob", t0());
    let scheduled = approved.grant.clone().unwrap();
    store.commit(change([approved]), t0()).await.unwrap();
    // A pending request that lapses after an hour.
    let pending = filed(&mut ids, "dave", t0(), None).request.unwrap();
    store
        .commit(change([Transition { request: Some(pending.clone()), ..Default::default() }]), t0())
        .await
        .unwrap();

    assert_eq!(scheduled.state, GrantState::Scheduled);
    assert_eq!(store.next_due_at().await.unwrap(), Some(start));
    assert!(store.due(t0(), 100).await.unwrap().is_empty());

    let at_start = store.due(start, 100).await.unwrap();
    assert_eq!(at_start.activate.iter().map(|g| &g.id).collect::<Vec<_>>(), [&scheduled.id]);
    assert!(at_start.expire.is_empty() && at_start.lapse.is_empty());

    let at_expiry = store.due(active.expires_at, 100).await.unwrap();
    assert_eq!(at_expiry.expire.iter().map(|g| &g.id).collect::<Vec<_>>(), [&active.id]);
    let at_lapse = store.due(pending.lapses_at, 100).await.unwrap();
    assert_eq!(at_lapse.lapse.iter().map(|r| &r.id).collect::<Vec<_>>(), [&pending.id]);
    assert_eq!(store.due(pending.lapses_at, 1).await.unwrap().expire.len(), 1, "limit applies");

    // Once expired, a grant is no longer due.
    let expired = lifecycle::expire(&mut ids, active.clone(), active.expires_at).unwrap();
    store.commit(change([expired]), active.expires_at).await.unwrap();
    assert!(store.due(active.expires_at, 100).await.unwrap().expire.is_empty());
    assert_eq!(store.grant(active.id.as_str()).await.unwrap().unwrap().state, GrantState::Expired);
}

pub async fn idle_grants_fall_due_and_uses_only_move_forward(store: Arc<dyn Store>) {
    let mut ids = SequentialIds::new("i");
    let new = NewRequest {
        requester: "alice".into(),
        resource: "logs:payments-api".into(),
        role: "read".into(),
        duration_seconds: 3600,
        reason: "INC-4312 checkout 500s".into(),
        ..NewRequest::default()
    };
    let idle_terms = RequestTerms { idle_timeout_seconds: Some(600), ..terms(1) };
    let filed =
        lifecycle::file_request(&mut ids, new, &idle_terms, "h", 3600, &GrantContext::default(), t0())
            .unwrap();
    store.commit(change([filed.clone()]), t0()).await.unwrap();
    let request = store.request(filed.request.unwrap().id.as_str()).await.unwrap().unwrap();
    assert_eq!(request.idle_timeout_seconds, Some(600), "the request keeps its idle timeout");
    let approved = approve_as(&mut ids, request, "bob", t0());
    let grant = approved.grant.clone().unwrap();
    store.commit(change([approved]), t0()).await.unwrap();
    let ten = t0() + SignedDuration::from_mins(10);
    let stored = store.grant(grant.id.as_str()).await.unwrap().unwrap();
    assert_eq!(
        (stored.idle_timeout_seconds, stored.last_used_at, stored.idle_at()),
        (Some(600), None, Some(ten))
    );
    assert_eq!(store.next_due_at().await.unwrap(), Some(ten), "the idle deadline comes before the expiry");
    assert!(store.due(ten - SignedDuration::from_millis(1), 10).await.unwrap().expire.is_empty());

    // A use four minutes in moves the deadline; an older one reported later does not move it back.
    let used =
        |minutes| GrantUse { grant_id: grant.id.clone(), at: t0() + SignedDuration::from_mins(minutes) };
    store.commit(Change { grant_uses: vec![used(4)], ..Change::default() }, ten).await.unwrap();
    store.commit(Change { grant_uses: vec![used(2)], ..Change::default() }, ten).await.unwrap();
    let fourteen = t0() + SignedDuration::from_mins(14);
    assert_eq!(store.next_due_at().await.unwrap(), Some(fourteen));
    assert!(store.due(ten, 10).await.unwrap().expire.is_empty());
    // A copy of the grant read before the use (an extension, say) does not undo it either.
    let mut extended = grant.clone();
    extended.expires_at += SignedDuration::from_mins(30);
    extended.version += 1;
    store.commit(Change { grants: vec![extended], ..Change::default() }, ten).await.unwrap();
    let stored = store.grant(grant.id.as_str()).await.unwrap().unwrap();
    assert_eq!(stored.last_used_at, Some(t0() + SignedDuration::from_mins(4)));
    assert_eq!(stored.idle_at(), Some(fourteen));

    let due = store.due(fourteen, 10).await.unwrap();
    assert_eq!(due.expire.iter().map(|g| &g.id).collect::<Vec<_>>(), [&grant.id]);
    let expired = lifecycle::expire(&mut ids, due.expire[0].clone(), fourteen).unwrap();
    store.commit(change([expired]), fourteen).await.unwrap();
    let ended = store.grant(grant.id.as_str()).await.unwrap().unwrap();
    assert_eq!(
        (ended.state, ended.ended_at, ended.end_reason.as_deref()),
        (GrantState::Expired, Some(fourteen), Some(lifecycle::IDLE_REASON))
    );
    assert!(store.due(fourteen, 10).await.unwrap().expire.is_empty());
    assert_eq!(store.next_due_at().await.unwrap(), None);
}

pub async fn grants_are_found_by_expiry(store: Arc<dyn Store>) {
    let mut ids = SequentialIds::new("x");
    let (_, first) = granted(&*store, &mut ids, "alice", t0()).await;
    let later = t0() + SignedDuration::from_mins(1);
    let (_, second) = granted(&*store, &mut ids, "erin", later).await;
    let (_, ended) = granted(&*store, &mut ids, "dave", t0()).await;
    let released = lifecycle::release(&mut ids, ended, "dave", t0()).unwrap();
    store.commit(change([released]), t0()).await.unwrap();
    let names = |grants: Vec<Grant>| grants.into_iter().map(|g| g.principal).collect::<Vec<_>>();

    let all = store.grants_expiring(t0(), second.expires_at, 10).await.unwrap();
    assert_eq!(names(all), ["alice", "erin"], "live ones only, soonest first");
    let after_first = store.grants_expiring(first.expires_at, second.expires_at, 10).await.unwrap();
    assert_eq!(names(after_first), ["erin"], "the lower bound is exclusive");
    let until_first = store.grants_expiring(t0(), first.expires_at, 10).await.unwrap();
    assert_eq!(names(until_first), ["alice"], "the upper bound is inclusive");
    assert_eq!(names(store.grants_expiring(t0(), second.expires_at, 1).await.unwrap()), ["alice"]);
}

pub async fn listings_filter_and_order(store: Arc<dyn Store>) {
    let mut ids = SequentialIds::new("e");
    let (_, alice_grant) = granted(&*store, &mut ids, "alice", t0()).await;
    let later = t0() + SignedDuration::from_secs(1);
    let pending = filed(&mut ids, "erin", later, None);
    store.commit(change([pending]), later).await.unwrap();

    let all = store.requests(&RequestFilter::default()).await.unwrap();
    assert_eq!(
        all.iter().map(|r| r.requester.as_str()).collect::<Vec<_>>(),
        ["erin", "alice"],
        "newest first"
    );
    let pending_only = store
        .requests(&RequestFilter { state: Some(RequestState::Pending), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(pending_only.len(), 1);
    let alices = store
        .requests(&RequestFilter { requester: Some("alice".into()), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(alices.len(), 1);
    assert_eq!(store.requests(&RequestFilter { limit: 1, ..Default::default() }).await.unwrap().len(), 1);

    let active =
        store.grants(&GrantFilter { states: vec![GrantState::Active], ..Default::default() }).await.unwrap();
    assert_eq!(active, vec![alice_grant.clone()]);
    let none =
        store.grants(&GrantFilter { principal: Some("erin".into()), ..Default::default() }).await.unwrap();
    assert!(none.is_empty());
    let expired = store
        .grants(&GrantFilter { states: vec![GrantState::Expired, GrantState::Revoked], ..Default::default() })
        .await
        .unwrap();
    assert!(expired.is_empty());
}

/// Listings narrow to what a user may see in the query, and page by a cursor (the last row's
/// time and id), so that every row comes exactly once, in order, rows with the same time included.
pub async fn listings_page_by_cursor_and_narrow_by_visibility(store: Arc<dyn Store>) {
    let mut ids = SequentialIds::new("p");
    let mut requests = Vec::new();
    for (i, (requester, resource)) in [
        ("alice", "logs:payments-api"),
        ("dave", "logs:ledger"),
        ("erin", "logs:checkout-web"),
        ("alice", "logs:ledger"),
        ("dave", "logs:payments-api"),
        ("sam", "logs:ledger"),
        ("erin", "logs:ledger"),
    ]
    .into_iter()
    .enumerate()
    {
        // Pairs share a creation time: the id breaks the tie.
        let at = t0() + SignedDuration::from_secs(i as i64 / 2);
        let mut filing = filed(&mut ids, requester, at, None);
        if let Some(request) = filing.request.as_mut() {
            request.resource = resource.to_owned();
        }
        store.commit(change([filing.clone()]), at).await.unwrap();
        requests.push(filing.request.unwrap());
    }
    let newest_first = |mut list: Vec<AccessRequest>| {
        list.sort_by(|a, b| (b.created_at, &b.id.0).cmp(&(a.created_at, &a.id.0)));
        list.into_iter().map(|r| r.id.0).collect::<Vec<_>>()
    };

    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .requests(&RequestFilter { after: after.clone(), limit: 2, ..Default::default() })
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        after = Some((last.created_at, last.id.0.clone()));
        paged.extend(page.into_iter().map(|r| r.id.0));
    }
    assert_eq!(paged, newest_first(requests.clone()), "each request once, newest first");

    // dave sees his own, and those on the resources he might approve.
    let visible = Visibility { user: "dave".into(), resources: vec!["logs:checkout-web".into()] };
    let filter = RequestFilter { visible_to: Some(visible.clone()), ..Default::default() };
    let expected: Vec<AccessRequest> = requests
        .iter()
        .filter(|r| r.requester == "dave" || r.resource == "logs:checkout-web")
        .cloned()
        .collect();
    assert_eq!(
        store.requests(&filter).await.unwrap().into_iter().map(|r| r.id.0).collect::<Vec<_>>(),
        newest_first(expected)
    );
    // However many resources someone might decide (more than either backend binds parameters).
    let mut many: Vec<String> = (0..70_000).map(|i| format!("logs:service-{i}")).collect();
    many.push("logs:checkout-web".into());
    let wide = RequestFilter {
        visible_to: Some(Visibility { user: "dave".into(), resources: many }),
        ..Default::default()
    };
    assert_eq!(store.requests(&wide).await.unwrap(), store.requests(&filter).await.unwrap());
    let only_own = RequestFilter {
        visible_to: Some(Visibility { user: "sam".into(), resources: vec![] }),
        ..Default::default()
    };
    assert_eq!(store.requests(&only_own).await.unwrap().len(), 1);

    // Grants likewise, by holder and start.
    let mut grants = Vec::new();
    for (i, request) in requests.iter().enumerate() {
        let at = t0() + SignedDuration::from_secs(10 + i as i64 / 2);
        let approved = approve_as(&mut ids, request.clone(), "bob", at);
        store.commit(change([approved.clone()]), at).await.unwrap();
        grants.push(approved.grant.unwrap());
    }
    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .grants(&GrantFilter { after: after.clone(), limit: 3, ..Default::default() })
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        after = Some((last.starts_at, last.id.0.clone()));
        paged.extend(page.into_iter().map(|g| g.id.0));
    }
    grants.sort_by(|a, b| (b.starts_at, &b.id.0).cmp(&(a.starts_at, &a.id.0)));
    assert_eq!(paged, grants.iter().map(|g| g.id.0.clone()).collect::<Vec<_>>());
    let visible = GrantFilter { visible_to: Some(visible), ..Default::default() };
    let seen = store.grants(&visible).await.unwrap();
    assert!(seen.iter().all(|g| g.principal == "dave" || g.resource == "logs:checkout-web"));
    assert_eq!(seen.len(), 3);
}

pub async fn event_filters(store: Arc<dyn Store>) {
    let mut ids = SequentialIds::new("f");
    let (request, grant) = granted(&*store, &mut ids, "alice", t0()).await;
    let later = t0() + SignedDuration::from_mins(5);
    let revoked = lifecycle::revoke(&mut ids, grant.clone(), "admin", "done".into(), later).unwrap();
    store.commit(change([revoked]), later).await.unwrap();
    let mut refused = Change::default();
    refused.events.push(NewEvent {
        resource: Some("logs:checkout-web".into()),
        ..lifecycle::refusal_event(&mut ids, "carol", "request", None, None, "forbidden", later)
    });
    store.commit(refused, later).await.unwrap();

    let query = |f: EventFilter| {
        let store = store.clone();
        async move { store.events(&EventFilter { limit: 100, ..f }).await.unwrap() }
    };
    assert_eq!(query(EventFilter { actor: Some("bob".into()), ..Default::default() }).await.len(), 2);
    assert_eq!(query(EventFilter { actor: Some("alice".into()), ..Default::default() }).await.len(), 1);
    // alice is the subject of the approval, the activation and the revocation too.
    assert_eq!(query(EventFilter { involving: Some("alice".into()), ..Default::default() }).await.len(), 4);
    assert_eq!(query(EventFilter { subject: Some("alice".into()), ..Default::default() }).await.len(), 4);
    let by_type =
        query(EventFilter { event_type: Some(EventType::GrantRevoked), ..Default::default() }).await;
    assert_eq!(by_type.len(), 1);
    assert_eq!(by_type[0].reason.as_deref(), Some("done"));
    assert_eq!(
        query(EventFilter { resource: Some("logs:checkout-web".into()), ..Default::default() }).await.len(),
        1
    );
    assert_eq!(
        query(EventFilter { request_id: Some(request.id.0.clone()), ..Default::default() }).await.len(),
        4
    );
    assert_eq!(
        query(EventFilter { grant_id: Some(grant.id.0.clone()), ..Default::default() }).await.len(),
        2
    );
    let (second_request, second_grant) = granted(&*store, &mut ids, "dave", later).await;
    let grants = |ids: &[&str]| EventFilter {
        grant_ids: Some(ids.iter().map(|id| (*id).to_owned()).collect()),
        ..Default::default()
    };
    assert_eq!(query(grants(&[&grant.id.0, &second_grant.id.0, "grt_none"])).await.len(), 3);
    assert_eq!(query(grants(&[&second_grant.id.0])).await.len(), 1);
    // An empty list matches nothing (not everything).
    assert_eq!(query(grants(&[])).await.len(), 0);
    let requests = EventFilter {
        request_ids: Some(vec![request.id.0.clone(), second_request.id.0.clone()]),
        event_type: Some(EventType::ApprovalGranted),
        ..Default::default()
    };
    assert_eq!(query(requests).await.len(), 2);
    let as_listed = query(EventFilter { request_ids: Some(vec![]), ..Default::default() }).await;
    assert!(as_listed.is_empty());
    assert_eq!(query(EventFilter { since: Some(later), ..Default::default() }).await.len(), 5);
    assert_eq!(query(EventFilter { until: Some(later), ..Default::default() }).await.len(), 3);
    let page =
        store.events(&EventFilter { after_seq: Some(2), limit: 2, ..Default::default() }).await.unwrap();
    assert_eq!(page.iter().map(|e| e.seq).collect::<Vec<_>>(), [3, 4]);
    assert_eq!(store.events(&EventFilter { limit: 2, ..Default::default() }).await.unwrap().len(), 2);
}

pub async fn tokens_are_kept_by_hash(store: Arc<dyn Store>) {
    let mut ids = SequentialIds::new("tok");
    let token = |id: &str, hash: &str, principal: &str, minutes: i64| ApiToken {
        id: id.into(),
        hash: hash.repeat(32),
        principal: principal.into(),
        created_at: t0() + SignedDuration::from_mins(minutes),
        expires_at: t0() + SignedDuration::from_hours(12),
        revoked_at: None,
        revoked_by: None,
        last_used_at: None,
        scopes: ward_core::scope::Scopes::all(),
    };
    let mut recorded = |write: TokenWrite| Change {
        tokens: vec![write],
        events: vec![lifecycle::refusal_event(&mut ids, "admin", "token", None, None, "recorded", t0())],
        ..Change::default()
    };
    let alice = token("tok_a", "ab", "alice", 0);
    let bob = ApiToken {
        scopes: ward_core::scope::Scopes::parse("push check").unwrap(),
        ..token("tok_b", "cd", "service:shipper", 1)
    };
    store.commit(recorded(TokenWrite::Create(alice.clone())), t0()).await.unwrap();
    store.commit(recorded(TokenWrite::Create(bob.clone())), t0()).await.unwrap();
    assert_eq!(store.token(&alice.hash).await.unwrap(), Some(alice.clone()));
    assert_eq!(store.token_by_id("tok_b").await.unwrap(), Some(bob.clone()), "scopes kept");
    assert_eq!(store.token(&"ef".repeat(32)).await.unwrap(), None);
    let again = store.commit(recorded(TokenWrite::Create(alice.clone())), t0()).await;
    assert!(matches!(again, Err(StoreError::Conflict)), "a token hash is unique: {again:?}");
    assert_eq!(store.head().await.unwrap().size, 2, "a refused token write records nothing");

    let all = store.tokens(&TokenFilter::default()).await.unwrap();
    assert_eq!(all.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(), ["tok_b", "tok_a"], "newest first");
    let mine = store.tokens(&TokenFilter { principal: Some("alice".into()), limit: 10 }).await.unwrap();
    assert_eq!(mine, std::slice::from_ref(&alice));

    let used = t0() + SignedDuration::from_mins(3);
    store.touch_token(&alice.hash, used).await.unwrap();
    store.touch_token(&alice.hash, t0()).await.unwrap();
    assert_eq!(store.token(&alice.hash).await.unwrap().unwrap().last_used_at, Some(used), "never moves back");

    let epoch = store.token_epoch().await.unwrap();
    let revoke = || TokenWrite::Revoke { id: "tok_a".into(), at: used, by: "admin".into() };
    store.commit(recorded(revoke()), used).await.unwrap();
    let revoked = store.token(&alice.hash).await.unwrap().unwrap();
    assert_eq!((revoked.revoked_at, revoked.revoked_by.as_deref()), (Some(used), Some("admin")));
    assert!(store.token_epoch().await.unwrap() > epoch, "a revocation moves the epoch");
    let twice = store.commit(recorded(revoke()), used).await;
    assert!(matches!(twice, Err(StoreError::Conflict)), "revoked once: {twice:?}");
    let unknown = TokenWrite::Revoke { id: "tok_x".into(), at: used, by: "admin".into() };
    assert!(matches!(store.commit(recorded(unknown), used).await, Err(StoreError::Conflict)));
    assert_eq!(store.head().await.unwrap().size, 3);
}

pub async fn sessions_are_kept_by_hash_and_end_once(store: Arc<dyn Store>) {
    let mut ids = SequentialIds::new("ses");
    let session = |id: &str, hash: &str, principal: &str, minutes: i64| WebSession {
        id: id.into(),
        hash: hash.repeat(32),
        principal: principal.into(),
        source: "oidc".into(),
        mfa: principal == "alice",
        created_at: t0() + SignedDuration::from_mins(minutes),
        expires_at: t0() + SignedDuration::from_hours(8),
        ended_at: None,
        ended_by: None,
        token_id: (principal == "bob").then(|| "tok_b".into()),
    };
    let mut recorded = |write: SessionWrite| Change {
        sessions: vec![write],
        events: vec![lifecycle::refusal_event(&mut ids, "alice", "session", None, None, "recorded", t0())],
        ..Change::default()
    };
    let first = session("ses_a", "ab", "alice", 0);
    let second = session("ses_b", "cd", "alice", 1);
    let bobs = session("ses_c", "ef", "bob", 2);
    for s in [&first, &second, &bobs] {
        store.commit(recorded(SessionWrite::Start(s.clone())), t0()).await.unwrap();
    }
    assert_eq!(store.session(&first.hash).await.unwrap(), Some(first.clone()));
    assert_eq!(store.session(&bobs.hash).await.unwrap(), Some(bobs.clone()), "its token kept");
    assert_eq!(store.session(&"01".repeat(32)).await.unwrap(), None);
    let again = store.commit(recorded(SessionWrite::Start(session("ses_d", "ab", "bob", 3))), t0()).await;
    assert!(matches!(again, Err(StoreError::Conflict)), "a session's hash is unique: {again:?}");
    let open = store.open_sessions("alice", 10).await.unwrap();
    assert_eq!(open.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), ["ses_b", "ses_a"], "newest first");
    assert_eq!(store.open_sessions("alice", 1).await.unwrap().len(), 1);

    let at = t0() + SignedDuration::from_mins(5);
    let end = || SessionWrite::End { id: "ses_a".into(), at, by: "alice".into() };
    store.commit(recorded(end()), at).await.unwrap();
    let ended = store.session(&first.hash).await.unwrap().unwrap();
    assert_eq!((ended.ended_at, ended.ended_by.as_deref()), (Some(at), Some("alice")));
    assert_eq!(store.open_sessions("alice", 10).await.unwrap(), [second]);
    let twice = store.commit(recorded(end()), at).await;
    assert!(matches!(twice, Err(StoreError::Conflict)), "ended once: {twice:?}");
    let unknown = SessionWrite::End { id: "ses_x".into(), at, by: "alice".into() };
    assert!(matches!(store.commit(recorded(unknown), at).await, Err(StoreError::Conflict)));
    assert_eq!(store.head().await.unwrap().size, 4, "a refused session write records nothing");
}

pub async fn requests_are_read_by_id_in_one_go(store: Arc<dyn Store>) {
    let mut ids = SequentialIds::new("rid");
    let (first, _) = granted(&*store, &mut ids, "alice", t0()).await;
    let (second, _) = granted(&*store, &mut ids, "carol", t0()).await;
    let wanted = vec![second.id.to_string(), "req_missing".to_owned(), first.id.to_string()];
    let mut found = store.requests_by_id(&wanted).await.unwrap();
    found.sort_by(|a, b| a.requester.cmp(&b.requester));
    assert_eq!(found.iter().map(|r| r.requester.as_str()).collect::<Vec<_>>(), ["alice", "carol"]);
    assert_eq!(found[0], store.request(first.id.as_str()).await.unwrap().unwrap());
    assert!(store.requests_by_id(&[]).await.unwrap().is_empty());
    let many: Vec<String> = (0..1200).map(|n| format!("req_{n}")).chain([first.id.to_string()]).collect();
    assert_eq!(store.requests_by_id(&many).await.unwrap().len(), 1, "past one statement's worth of ids");
}

pub async fn concurrent_appends_form_one_chain(store: Arc<dyn Store>) {
    let writers = 8;
    let per_writer = 10;
    let mut tasks = Vec::new();
    for w in 0..writers {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut ids = SequentialIds::new(["g0", "g1", "g2", "g3", "g4", "g5", "g6", "g7"][w]);
            for _ in 0..per_writer {
                let request = filed(&mut ids, "alice", t0(), None);
                store.commit(change([request]), t0()).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let events = all_events(&*store).await;
    assert_eq!(events.len(), writers * per_writer);
    assert_one_chain(&events);
}

pub async fn concurrent_decisions_on_one_record_let_one_win(store: Arc<dyn Store>) {
    let mut ids = SequentialIds::new("h");
    let request = filed(&mut ids, "alice", t0(), None);
    store.commit(change([request.clone()]), t0()).await.unwrap();
    let pending = request.request.unwrap();
    let mut tasks = Vec::new();
    // Bystanders committing at the same moment (so possibly in the same group commit) must
    // not share the losers' fate.
    let mut bystanders = Vec::new();
    for requester in ["carol", "heidi", "ivan", "judy"] {
        let store = store.clone();
        let filing = filed(&mut SequentialIds::new(requester), requester, t0(), None);
        bystanders.push(tokio::spawn(async move { store.commit(change([filing]), t0()).await }));
    }
    for approver in ["bob", "erin", "dave", "frank"] {
        let store = store.clone();
        let mut ids = SequentialIds::new(approver);
        let approved = approve_as(&mut ids, pending.clone(), approver, t0());
        tasks.push(tokio::spawn(async move { store.commit(change([approved]), t0()).await }));
    }
    for bystander in bystanders {
        bystander.await.unwrap().unwrap();
    }
    let mut wins = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => wins += 1,
            Err(StoreError::Conflict) => {}
            Err(other) => panic!("unexpected error: {other}"),
        }
    }
    assert_eq!(wins, 1, "exactly one concurrent decision may land");
    let grants = store.grants(&GrantFilter::default()).await.unwrap();
    assert_eq!(grants.len(), 1, "one approval, one grant");
    assert_one_chain(&all_events(&*store).await);
}

pub async fn ready_when_writable(store: Arc<dyn Store>) {
    store.ready().await.unwrap();
    // Probing readiness leaves no trace in the log.
    assert!(all_events(&*store).await.is_empty());
}

pub async fn the_head_is_the_merkle_root_of_the_log(store: Arc<dyn Store>) {
    let empty = store.head().await.unwrap();
    assert_eq!((empty.size, empty.root.as_str()), (0, hex::encode(ward_core::merkle::empty_root()).as_str()));
    let mut ids = SequentialIds::new("m");
    for i in 0..7 {
        // Changes of different sizes, so the frontier is carried across commits.
        let changes: Vec<Transition> = (0..=i % 3).map(|_| filed(&mut ids, "alice", t0(), None)).collect();
        store.commit(change(changes), t0()).await.unwrap();
        let events = all_events(&*store).await;
        let leaves: Vec<ward_core::merkle::Hash> =
            events.iter().map(|e| hex::decode(&e.hash).unwrap().try_into().unwrap()).collect();
        let head = store.head().await.unwrap();
        assert_eq!(head.size, events.len() as u64);
        assert_eq!(head.root, hex::encode(ward_core::merkle::root(&leaves)));
        assert_eq!(head.last_hash, events.last().unwrap().hash);
    }
}

/// Proofs built from the nodes the store keeps (`tree_nodes`) are the proofs RFC 6962 builds
/// from all the leaves, for every leaf and every pair of sizes, across commits of every size.
pub async fn the_trees_nodes_give_the_proofs_of_its_leaves(store: Arc<dyn Store>) {
    use ward_core::merkle::{self, Hash, NodeId};
    let mut ids = SequentialIds::new("n");
    let mut batch = 1;
    while store.head().await.unwrap().size < 140 {
        // Commits of 1, 2, 4 ... 32 events, then again: nodes completed inside one commit and
        // across commits.
        let changes: Vec<Transition> = (0..batch).map(|_| filed(&mut ids, "alice", t0(), None)).collect();
        store.commit(change(changes), t0()).await.unwrap();
        batch = if batch == 32 { 1 } else { batch * 2 };
    }
    let leaves: Vec<Hash> =
        all_events(&*store).await.iter().map(|e| hex::decode(&e.hash).unwrap().try_into().unwrap()).collect();
    let folded = |store: Arc<dyn Store>, plan: Vec<Vec<NodeId>>| async move {
        let ids: Vec<NodeId> = plan.iter().flatten().copied().collect();
        let mut hashes = store.tree_nodes(&ids).await.unwrap().into_iter();
        plan.iter()
            .map(|part| merkle::fold(&hashes.by_ref().take(part.len()).collect::<Vec<_>>()))
            .collect::<Vec<_>>()
    };
    for size in [1usize, 15, 16, 17, 31, 32, 33, 64, 100, 127, 128, leaves.len()] {
        let tree = &leaves[..size];
        let root = folded(store.clone(), vec![merkle::range_nodes(0, size as u64)]).await;
        assert_eq!(root, [merkle::root(tree)], "root of {size}");
        for index in 0..size {
            let plan = merkle::inclusion_plan(index as u64, size as u64).unwrap();
            let proof = folded(store.clone(), plan).await;
            assert_eq!(proof, merkle::inclusion_proof(tree, index).unwrap(), "{index} in {size}");
        }
        for size1 in 1..=size {
            let plan = merkle::consistency_plan(size1 as u64, size as u64).unwrap();
            let proof = folded(store.clone(), plan).await;
            assert_eq!(proof, merkle::consistency_proof(tree, size1).unwrap(), "{size1} to {size}");
        }
    }
    // Many proofs' nodes in one call (an evidence pack's sample): thousands of nodes, answered in
    // their order however the store splits the asking.
    let plans: Vec<Vec<NodeId>> =
        (0..leaves.len() as u64).cycle().take(2_000).map(|i| merkle::range_nodes(0, i + 1)).collect();
    let roots = folded(store.clone(), plans).await;
    for (i, root) in roots.iter().enumerate() {
        assert_eq!(*root, merkle::root(&leaves[..i % leaves.len() + 1]), "root {i}");
    }
}

/// `event_span`: by when events occurred, not by when they were recorded.
pub async fn an_event_span_is_the_first_and_last_seq_of_a_period(store: Arc<dyn Store>) {
    let mut ids = SequentialIds::new("s");
    let at = |minutes: i64| t0() + SignedDuration::from_mins(minutes);
    assert_eq!(store.event_span(at(0), at(100)).await.unwrap(), None);
    // Recorded in this order, occurred at minutes 10, 20, 5 (a late record), 30.
    for minutes in [10, 20, 5, 30] {
        store.commit(change([filed(&mut ids, "alice", at(minutes), None)]), at(40)).await.unwrap();
    }
    let events = all_events(&*store).await;
    let seq_at = |minutes: i64| events.iter().find(|e| e.occurred_at == at(minutes)).unwrap().seq;
    let store = &store;
    let span = |from: i64, to: i64| async move { store.event_span(at(from), at(to)).await.unwrap() };
    assert_eq!(span(0, 100).await, Some((seq_at(10), seq_at(30))));
    assert_eq!(span(0, 15).await, Some((seq_at(10), seq_at(5))), "the late record is last");
    assert_eq!(span(10, 20).await, Some((seq_at(10), seq_at(10))), "from included, to not");
    assert_eq!(span(31, 100).await, None);
}

pub async fn checkpoints_sign_exactly_the_head(store: Arc<dyn Store>) {
    let mut ids = SequentialIds::new("k");
    assert_eq!(store.latest_checkpoint().await.unwrap(), None);
    store.commit(change([filed(&mut ids, "alice", t0(), None)]), t0()).await.unwrap();
    let head = store.head().await.unwrap();
    let record = |size: u64, root: &str| crate::CheckpointRecord {
        size,
        root: root.to_owned(),
        note: format!("note for {size}\n"),
        signed_at: t0(),
    };
    let with_event = |checkpoint: crate::CheckpointRecord| {
        let mut change = Change::default();
        let mut ids = SequentialIds::new(&format!("e{}", checkpoint.size));
        change.events.push(lifecycle::refusal_event(&mut ids, "ward", "checkpoint", None, None, "x", t0()));
        change.checkpoint = Some(checkpoint);
        change
    };
    // A checkpoint of a stale or wrong head is refused, and nothing of its change is written.
    let wrong_root = "00".repeat(32);
    assert!(matches!(
        store.commit(with_event(record(head.size, &wrong_root)), t0()).await,
        Err(StoreError::Conflict)
    ));
    assert!(matches!(
        store.commit(with_event(record(head.size - 1, &head.root)), t0()).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(store.head().await.unwrap(), head);
    assert_eq!(store.latest_checkpoint().await.unwrap(), None);

    store.commit(with_event(record(head.size, &head.root)), t0()).await.unwrap();
    assert_eq!(store.latest_checkpoint().await.unwrap(), Some(record(head.size, &head.root)));
    assert_eq!(store.head().await.unwrap().size, head.size + 1, "the checkpoint's own event follows it");

    store.commit(change([filed(&mut ids, "alice", t0(), None)]), t0()).await.unwrap();
    let later = store.head().await.unwrap();
    store.commit(with_event(record(later.size, &later.root)), t0()).await.unwrap();
    let all = store.checkpoints(None, 10).await.unwrap();
    assert_eq!(all.iter().map(|c| c.size).collect::<Vec<_>>(), [head.size, later.size]);
    assert_eq!(store.checkpoints(Some(head.size), 10).await.unwrap().len(), 1);
    assert_eq!(store.latest_checkpoint().await.unwrap().map(|c| c.size), Some(later.size));
}

pub async fn sub_millisecond_times_still_verify(store: Arc<dyn Store>) {
    let precise = Timestamp::from_nanosecond(1_800_000_000_123_456_789).unwrap();
    let mut ids = SequentialIds::new("ns");
    let mut event = lifecycle::refusal_event(&mut ids, "alice", "request", None, None, "why", precise);
    event.occurred_at = precise;
    let appended = store.commit(Change { events: vec![event], ..Change::default() }, precise).await.unwrap();
    let stored = all_events(&*store).await;
    assert_eq!(stored, appended, "what was hashed is what was stored");
    assert_eq!(stored[0].compute_hash(), stored[0].hash);
    assert_eq!(stored[0].recorded_at, Timestamp::from_millisecond(1_800_000_000_123).unwrap());
}

/// Text that JSON escapes (quotes, backslashes, control characters), SQL's quotes and dollar
/// quotes, non-ASCII and characters outside the basic plane: stored as it was hashed, whichever
/// side (ward or the database) does the hashing.
pub async fn events_of_any_text_are_stored_as_hashed(store: Arc<dyn Store>) {
    let odd = [
        "it's \"quoted\" \\ back\\slashed",
        "$$ $ward$ '; --",
        "tab\tnew\nline\u{1}\u{1f}\u{7f}",
        "é 中文 😀 \u{2028}",
    ];
    let mut ids = SequentialIds::new("odd");
    let events: Vec<NewEvent> = odd
        .iter()
        .map(|text| {
            let mut event = lifecycle::refusal_event(&mut ids, text, "request", None, None, text, t0());
            event.subject = Some((*text).to_owned());
            event.details =
                serde_json::json!({"text": text, *text: [text, 1.5, -2, null, {"b": true, "a": text}]});
            event
        })
        .collect();
    let appended = store.commit(Change { events, ..Change::default() }, t0()).await.unwrap();
    let stored = all_events(&*store).await;
    assert_eq!(stored, appended, "what was hashed is what was stored");
    for (before, event) in std::iter::once(None).chain(stored.iter().map(Some)).zip(&stored) {
        assert_eq!(event.compute_hash(), event.hash);
        assert_eq!(before.map_or(GENESIS_HASH, |before| before.hash.as_str()), event.prev_hash);
    }
}

pub async fn forward_cursors_are_kept_per_sink(store: Arc<dyn Store>) {
    let lease = |consumer: &str, holder: &str| Lease { consumer: consumer.into(), holder: holder.into() };
    let (siem, webhook) = (lease("forward:siem", "p1"), lease("forward:webhook", "p1"));
    let later = t0() + SignedDuration::from_secs(30);
    assert!(store.take_lease(&siem, t0(), later).await.unwrap());
    assert!(store.take_lease(&webhook, t0(), later).await.unwrap());
    assert_eq!(store.forward_cursor("siem").await.unwrap(), 0);
    store.set_forward_cursor("siem", 41, &siem, t0()).await.unwrap();
    store.set_forward_cursor("siem", 42, &siem, t0()).await.unwrap();
    store.set_forward_cursor("webhook", 7, &webhook, t0()).await.unwrap();
    assert_eq!(store.forward_cursor("siem").await.unwrap(), 42);
    assert_eq!(store.forward_cursor("webhook").await.unwrap(), 7);
    // A sink is the consumer its lease names.
    assert_eq!(store.consumer_cursor("forward:siem").await.unwrap(), 42);
}

pub async fn a_consumer_has_one_holder_at_a_time(store: Arc<dyn Store>) {
    let (mine, theirs) = (
        Lease { consumer: "forward:siem".into(), holder: "p1".into() },
        Lease { consumer: "forward:siem".into(), holder: "p2".into() },
    );
    let secs = |n: i64| t0() + SignedDuration::from_secs(n);
    assert!(store.take_lease(&mine, t0(), secs(30)).await.unwrap());
    assert!(!store.take_lease(&theirs, secs(1), secs(31)).await.unwrap(), "held and live");
    assert!(store.take_lease(&mine, secs(10), secs(40)).await.unwrap(), "renewed by its holder");
    // Only the holder moves the cursor, and only while the lease is live.
    assert!(matches!(
        store.set_forward_cursor("siem", 5, &theirs, secs(11)).await,
        Err(StoreError::Conflict)
    ));
    store.set_forward_cursor("siem", 5, &mine, secs(11)).await.unwrap();
    assert!(matches!(store.set_forward_cursor("siem", 6, &mine, secs(40)).await, Err(StoreError::Conflict)));
    // An expired lease is taken over; the old holder has lost it.
    assert!(store.take_lease(&theirs, secs(40), secs(70)).await.unwrap());
    assert!(matches!(store.set_forward_cursor("siem", 6, &mine, secs(41)).await, Err(StoreError::Conflict)));
    store.set_forward_cursor("siem", 6, &theirs, secs(41)).await.unwrap();
    assert_eq!(store.forward_cursor("siem").await.unwrap(), 6);
    // Given up at a clean shutdown: free at once for the next process.
    store.give_up_lease(&mine).await.unwrap();
    assert!(!store.take_lease(&mine, secs(42), secs(72)).await.unwrap(), "not mine to give up");
    store.give_up_lease(&theirs).await.unwrap();
    assert!(store.take_lease(&mine, secs(42), secs(72)).await.unwrap());
}

pub async fn workflow_terms_round_trip(store: Arc<dyn Store>) {
    let mut ids = SequentialIds::new("w");
    let staged = RequestTerms {
        approvals_required: 2,
        stages: vec![
            ward_core::Stage { name: "leads".into(), approvals: 1 },
            ward_core::Stage { name: "security".into(), approvals: 1 },
        ],
        max_holders: Some(3),
        reciprocal_seconds: Some(3600),
        ..terms(2)
    };
    let new = NewRequest {
        requester: "alice".into(),
        resource: "logs:payments-api".into(),
        role: "read".into(),
        duration_seconds: 600,
        reason: "INC-1 staged".into(),
        on_call_schedules: vec!["primary".into()],
        business_hours: true,
        ..NewRequest::default()
    };
    let filed =
        lifecycle::file_request(&mut ids, new, &staged, "h", 3600, &GrantContext::default(), t0()).unwrap();
    store.commit(change([filed.clone()]), t0()).await.unwrap();
    let request = filed.request.unwrap();
    assert_eq!(store.request(request.id.as_str()).await.unwrap().as_ref(), Some(&request));
    // An approval remembers the stages its approver counted for.
    let approver =
        Approver { name: "sam", stages: Some(vec!["security".into()]), last_approved_by_requester: None };
    let approved =
        lifecycle::approve(&mut ids, request, &approver, None, &GrantContext::default(), t0()).unwrap();
    store.commit(change([approved.clone()]), t0()).await.unwrap();
    let stored = store.request(approved.request.as_ref().unwrap().id.as_str()).await.unwrap().unwrap();
    assert_eq!(stored.approvals[0].stages, vec!["security".to_owned()]);
    assert_eq!(stored.unmet_stages().len(), 1);
}

pub async fn the_holder_limit_holds_inside_the_commit(store: Arc<dyn Store>) {
    let mut ids = SequentialIds::new("h");
    let limited = RequestTerms { max_holders: Some(1), ..terms(1) };
    let file = |ids: &mut SequentialIds, who: &str| {
        let new = NewRequest {
            requester: who.into(),
            resource: "logs:payments-api".into(),
            role: "read".into(),
            duration_seconds: 600,
            reason: "INC-2".into(),
            ..NewRequest::default()
        };
        lifecycle::file_request(ids, new, &limited, "h", 3600, &GrantContext::default(), t0()).unwrap()
    };
    let first = file(&mut ids, "alice");
    let second = file(&mut ids, "erin");
    store.commit(change([first.clone(), second.clone()]), t0()).await.unwrap();
    // Both approvals are decided from the same (empty) count, as two racing approvers would.
    let empty = GrantContext::default();
    let alice = approve_with(&mut ids, first.request.unwrap(), "bob", &empty, t0()).unwrap();
    let erin = approve_with(&mut ids, second.request.unwrap(), "bob", &empty, t0()).unwrap();
    store.commit(change([alice.clone()]), t0()).await.unwrap();
    let before = all_events(&*store).await.len();
    assert!(matches!(store.commit(change([erin.clone()]), t0()).await, Err(StoreError::Conflict)));
    assert_eq!(all_events(&*store).await.len(), before, "the refused grant left events");
    assert_eq!(store.grant(erin.grant.as_ref().unwrap().id.as_str()).await.unwrap(), None);

    let window = (t0(), t0() + SignedDuration::from_mins(10));
    let count = |who: &'static str| {
        let store = store.clone();
        async move { store.live_holders("logs:payments-api", "read", who, window.0, window.1).await.unwrap() }
    };
    assert_eq!(count("erin").await, 1);
    assert_eq!(count("alice").await, 0, "the holder does not count against themself");
    // A window that ends before the grant starts does not overlap.
    let before_it = store
        .live_holders("logs:payments-api", "read", "erin", t0() - SignedDuration::from_hours(2), t0())
        .await
        .unwrap();
    assert_eq!(before_it, 0);
    // An extension decided from a stale count is refused by the commit too: erin, holding a
    // short grant of her own (made when there was room), cannot extend into alice's window.
    let grant = alice.grant.unwrap();
    store
        .commit(change([lifecycle::release(&mut ids, grant.clone(), "alice", t0()).unwrap()]), t0())
        .await
        .unwrap();
    assert_eq!(count("erin").await, 0);
    let erins = file(&mut ids, "erin");
    store.commit(change([erins.clone()]), t0()).await.unwrap();
    let erins = approve_with(&mut ids, erins.request.unwrap(), "bob", &empty, t0()).unwrap();
    store.commit(change([erins.clone()]), t0()).await.unwrap();
    let alices = file(&mut ids, "alice");
    store.commit(change([alices.clone()]), t0()).await.unwrap();
    let later = t0() + SignedDuration::from_mins(10);
    let alices = approve_with(&mut ids, alices.request.unwrap(), "bob", &empty, later).unwrap();
    // alice's grant starts when erin's ends: no overlap, both fit.
    store.commit(change([alices]), later).await.unwrap();
    let erin_grant = erins.grant.unwrap();
    let stale = GrantContext { extends: Some(erin_grant.clone()), ..GrantContext::default() };
    let new = NewRequest {
        requester: "erin".into(),
        resource: erin_grant.resource.clone(),
        role: erin_grant.role.clone(),
        duration_seconds: 600,
        reason: "INC-2 more".into(),
        ..NewRequest::default()
    };
    let extension = lifecycle::file_request(&mut ids, new, &limited, "h", 3600, &stale, t0()).unwrap();
    store.commit(change([extension.clone()]), t0()).await.unwrap();
    let extended = approve_with(&mut ids, extension.request.unwrap(), "bob", &stale, t0()).unwrap();
    assert!(matches!(store.commit(change([extended]), t0()).await, Err(StoreError::Conflict)));
    assert_eq!(store.grant(erin_grant.id.as_str()).await.unwrap().unwrap().expires_at, erin_grant.expires_at);
}

/// An expiry batch changes many grants in one commit (the backends write them many to a
/// statement): one of them changed meanwhile refuses the whole commit, and a grant changed
/// twice in one change ends as the second change leaves it.
pub async fn many_grants_change_in_one_commit_or_none_do(store: Arc<dyn Store>) {
    let mut ids = SequentialIds::new("m");
    let mut grants = Vec::new();
    for n in 0..70 {
        grants.push(granted(&*store, &mut ids, &format!("user{n}"), t0()).await.1);
    }
    let later = t0() + SignedDuration::from_mins(31);
    let revoked = lifecycle::revoke(&mut ids, grants[66].clone(), "bob", "done".into(), t0()).unwrap();
    store.commit(change([revoked]), t0()).await.unwrap();
    let before = all_events(&*store).await.len();
    let stale = grants.iter().map(|g| lifecycle::expire(&mut ids, g.clone(), later).unwrap());
    assert!(matches!(store.commit(change(stale), later).await, Err(StoreError::Conflict)));
    for grant in [&grants[0], &grants[65], &grants[69]] {
        assert_eq!(store.grant(grant.id.as_str()).await.unwrap().unwrap().state, GrantState::Active);
    }
    assert_eq!(all_events(&*store).await.len(), before, "a refused batch appended events");

    let mut current = Vec::new();
    for grant in grants.iter().filter(|g| g.id != grants[66].id) {
        current.push(store.grant(grant.id.as_str()).await.unwrap().unwrap());
    }
    let expired = current.iter().map(|g| lifecycle::expire(&mut ids, g.clone(), later).unwrap());
    store.commit(change(expired), later).await.unwrap();
    for grant in &current {
        let stored = store.grant(grant.id.as_str()).await.unwrap().unwrap();
        assert_eq!((stored.state, stored.version), (GrantState::Expired, grant.version + 1));
    }

    let (_, twice) = granted(&*store, &mut ids, "erin", t0()).await;
    let first = lifecycle::revoke(&mut ids, twice, "bob", "first".into(), t0()).unwrap();
    let mut second = first.grant.clone().unwrap();
    second.version += 1;
    second.end_reason = Some("second".into());
    let both = Change { grants: vec![first.grant.clone().unwrap(), second.clone()], ..Change::default() };
    store.commit(both, t0()).await.unwrap();
    let stored = store.grant(second.id.as_str()).await.unwrap().unwrap();
    assert_eq!((stored.version, stored.end_reason.as_deref()), (second.version, Some("second")));
}

fn tally(
    writer: &str,
    kind: TallyKind,
    key: &str,
    count: u64,
    first: i64,
    last: i64,
    caller: &str,
) -> UsageTally {
    let at = |ms: i64| t0() + SignedDuration::from_millis(ms);
    let (grant_id, principal) = match kind {
        TallyKind::Denied => (String::new(), key.to_owned()),
        _ => (key.to_owned(), String::new()),
    };
    UsageTally {
        writer: writer.into(),
        kind,
        grant_id,
        principal,
        action: "read".into(),
        resource: "logs:payments".into(),
        count,
        first_at: at(first),
        last_at: at(last),
        last_caller: caller.into(),
    }
}

pub async fn usage_tallies_add_up_per_writer_and_are_taken_once(store: Arc<dyn Store>) {
    let add = |tallies: Vec<UsageTally>| Change { usage_tallies: tallies, ..Change::default() };
    let used = |writer: &str, count, first, last, caller: &str| {
        tally(writer, TallyKind::Used, "grt_1", count, first, last, caller)
    };
    store.commit(add(vec![used("a", 3, 100, 200, "alice")]), t0()).await.unwrap();
    // An older span adds its count, widens the first use, and keeps the later caller.
    store.commit(add(vec![used("a", 2, 50, 150, "svc")]), t0()).await.unwrap();
    store.commit(add(vec![used("b", 1, 300, 300, "bob")]), t0()).await.unwrap();
    // More rows than one statement takes, in one change.
    let many: Vec<UsageTally> =
        (0..70).map(|n| tally("a", TallyKind::Denied, &format!("user{n}"), n + 1, 0, 10, "x")).collect();
    store.commit(add(many), t0()).await.unwrap();

    let stored = store.usage_tallies(1000).await.unwrap();
    assert_eq!(stored.len(), 72);
    assert_eq!(store.usage_tallies(5).await.unwrap().len(), 5, "the limit holds");
    let of =
        |writer: &str| stored.iter().find(|s| s.tally.writer == writer && s.tally.kind == TallyKind::Used);
    let a = of("a").unwrap();
    assert_eq!(a.tally, used("a", 5, 50, 200, "alice"));
    assert_eq!(a.revision, 2);
    assert_eq!(of("b").unwrap().tally, used("b", 1, 300, 300, "bob"));
    let denied: u64 =
        stored.iter().filter(|s| s.tally.kind == TallyKind::Denied).map(|s| s.tally.count).sum();
    assert_eq!(denied, (1..=70).sum::<u64>());

    // A summary that read `a` before more was added to it takes nothing at all.
    store.commit(add(vec![used("a", 1, 250, 250, "carol")]), t0()).await.unwrap();
    let stale: Vec<TallyTaken> =
        stored.iter().map(|s| TallyTaken { id: s.id, revision: s.revision }).collect();
    let mut ids = SequentialIds::new("u");
    let mut take = |taken: Vec<TallyTaken>| Change {
        tallies_taken: taken,
        events: vec![lifecycle::refusal_event(&mut ids, "ward", "summary", None, None, "stands in", t0())],
        ..Change::default()
    };
    let before = all_events(&*store).await.len();
    assert!(matches!(store.commit(take(stale), t0()).await, Err(StoreError::Conflict)));
    assert_eq!(store.usage_tallies(1000).await.unwrap().len(), 72, "a refused take deleted tallies");
    assert_eq!(all_events(&*store).await.len(), before, "a refused take appended its summary");

    let fresh = store.usage_tallies(1000).await.unwrap();
    assert_eq!(fresh.iter().find(|s| s.id == a.id).unwrap().tally, used("a", 6, 50, 250, "carol"));
    let taken: Vec<TallyTaken> =
        fresh.iter().map(|s| TallyTaken { id: s.id, revision: s.revision }).collect();
    store.commit(take(taken.clone()), t0()).await.unwrap();
    assert!(store.usage_tallies(1000).await.unwrap().is_empty());
    assert_eq!(all_events(&*store).await.len(), before + 1);
    // Taken once: a second summary of the same rows is refused.
    assert!(matches!(store.commit(take(taken), t0()).await, Err(StoreError::Conflict)));

    // A writer's key counted again after a summary is a new row, at revision 1.
    store.commit(add(vec![used("a", 1, 400, 400, "alice")]), t0()).await.unwrap();
    let again = store.usage_tallies(10).await.unwrap();
    assert_eq!((again.len(), again[0].revision), (1, 1));
    assert!(again[0].id > a.id, "a row id came back: {} after {}", again[0].id, a.id);
}

pub async fn a_shared_key_fingerprint_is_recorded_once_and_replaced_only_as_named(store: Arc<dyn Store>) {
    let key = |fingerprint: &str, previous: Option<&str>| Change {
        key_fingerprints: vec![KeyFingerprint {
            name: "redaction".into(),
            fingerprint: fingerprint.into(),
            previous: previous.map(str::to_owned),
            at: t0(),
        }],
        ..Change::default()
    };
    assert_eq!(store.key_fingerprint("redaction").await.unwrap(), None);
    store.commit(key("aa", None), t0()).await.unwrap();
    // Two first starts race: the second is refused, and the first's stays.
    assert!(matches!(store.commit(key("bb", None), t0()).await, Err(StoreError::Conflict)));
    assert_eq!(store.key_fingerprint("redaction").await.unwrap().as_deref(), Some("aa"));
    // A replacement must name the one it replaces.
    assert!(matches!(store.commit(key("bb", Some("cc")), t0()).await, Err(StoreError::Conflict)));
    store.commit(key("bb", Some("aa")), t0()).await.unwrap();
    assert_eq!(store.key_fingerprint("redaction").await.unwrap().as_deref(), Some("bb"));
    assert_eq!(store.key_fingerprint("audit-hmac").await.unwrap(), None, "each key on its own");
}

pub async fn extensions_move_expiry(store: Arc<dyn Store>) {
    let mut ids = SequentialIds::new("x");
    let (_, grant) = granted(&*store, &mut ids, "alice", t0()).await;
    let context = GrantContext { extends: Some(grant.clone()), ..GrantContext::default() };
    let new = NewRequest {
        requester: "alice".into(),
        resource: grant.resource.clone(),
        role: grant.role.clone(),
        duration_seconds: 900,
        reason: "INC-4312 not done yet".into(),
        ..NewRequest::default()
    };
    let filed = lifecycle::file_request(&mut ids, new, &terms(1), "h", 3600, &context, t0()).unwrap();
    store.commit(change([filed.clone()]), t0()).await.unwrap();
    let extended = approve_with(&mut ids, filed.request.unwrap(), "bob", &context, t0()).unwrap();
    store.commit(change([extended.clone()]), t0()).await.unwrap();
    let stored = store.grant(grant.id.as_str()).await.unwrap().unwrap();
    assert_eq!(Some(&stored), extended.grant.as_ref());
    assert_eq!(stored.expires_at, grant.expires_at + SignedDuration::from_mins(15));
    assert_eq!(stored.extensions.len(), 1);
    // Expiry follows the new end, not the old one.
    let due = store.due(grant.expires_at, 100).await.unwrap();
    assert!(due.expire.is_empty());
    assert_eq!(store.due(stored.expires_at, 100).await.unwrap().expire.len(), 1);
}

/// dave breaks the glass on payments-api at `t0`: a 10-minute grant, to be reviewed within an hour.
fn broke_glass(ids: &mut SequentialIds) -> Transition {
    let glass = RequestTerms { review_within_seconds: Some(3600), ..terms(1) };
    let new = NewRequest {
        requester: "dave".into(),
        resource: "logs:payments-api".into(),
        role: "read".into(),
        duration_seconds: 600,
        reason: "INC-9 payments down".into(),
        ..NewRequest::default()
    };
    lifecycle::file_request(ids, new, &glass, "h", 3600, &GrantContext::default(), t0()).unwrap()
}

pub async fn breakglass_reviews_fall_due_and_filter(store: Arc<dyn Store>) {
    let mut ids = SequentialIds::new("g");
    let filed = broke_glass(&mut ids);
    store.commit(change([filed.clone()]), t0()).await.unwrap();
    let grant = filed.grant.unwrap();
    let due_at = grant.review.as_ref().unwrap().due_at;
    assert_eq!(store.grant(grant.id.as_str()).await.unwrap().as_ref(), Some(&grant));
    // The grant's own expiry (10 minutes) comes before the review deadline (an hour).
    assert_eq!(store.next_due_at().await.unwrap(), Some(grant.expires_at));
    assert!(store.due(due_at - SignedDuration::from_millis(1), 100).await.unwrap().review_overdue.is_empty());
    let due = store.due(due_at, 100).await.unwrap();
    assert_eq!(due.review_overdue, vec![grant.clone()]);

    let unreviewed = GrantFilter {
        review_states: vec![ward_core::ReviewState::Pending, ward_core::ReviewState::Overdue],
        ..Default::default()
    };
    assert_eq!(store.grants(&unreviewed).await.unwrap().len(), 1);
    let overdue = lifecycle::review_overdue(&mut ids, grant, due_at).unwrap();
    store.commit(change([overdue.clone()]), due_at).await.unwrap();
    assert!(store.due(due_at, 100).await.unwrap().review_overdue.is_empty(), "recorded once");
    let reviewed =
        lifecycle::review(&mut ids, overdue.grant.unwrap(), "bob", true, "checked INC-9".into(), due_at)
            .unwrap();
    store.commit(change([reviewed]), due_at).await.unwrap();
    assert!(store.grants(&unreviewed).await.unwrap().is_empty());
    let done = GrantFilter { review_states: vec![ward_core::ReviewState::Done], ..Default::default() };
    assert_eq!(store.grants(&done).await.unwrap().len(), 1);
}

pub async fn counts_are_limited_inside_the_commit(store: Arc<dyn Store>) {
    let mut ids = SequentialIds::new("c");
    // Two requests decided from the same count (none pending), as two racing filings would be.
    let pending = |transition: &Transition, max: u32| {
        let request = transition.request.as_ref().unwrap();
        crate::CountLimit::PendingRequests {
            request: request.id.clone(),
            requester: request.requester.clone(),
            max,
        }
    };
    let first = filed(&mut ids, "alice", t0(), None);
    let second = filed(&mut ids, "alice", t0(), None);
    let within = Change { count_limits: vec![pending(&first, 1)], ..change([first.clone()]) };
    store.commit(within, t0()).await.unwrap();
    let before = all_events(&*store).await.len();
    let past = Change { count_limits: vec![pending(&second, 1)], ..change([second.clone()]) };
    assert!(matches!(store.commit(past, t0()).await, Err(StoreError::Conflict)));
    assert_eq!(all_events(&*store).await.len(), before, "the refused request left events");
    assert_eq!(store.request(second.request.as_ref().unwrap().id.as_str()).await.unwrap(), None);
    let room = Change { count_limits: vec![pending(&second, 2)], ..change([second.clone()]) };
    store.commit(room, t0()).await.unwrap();

    // Break-glass: no second one while the first awaits review (max 0), one more with max 1.
    let unreviewed = |transition: &Transition, max: u32| {
        let grant = transition.grant.as_ref().unwrap();
        crate::CountLimit::UnreviewedBreakglass {
            grant: grant.id.clone(),
            principal: grant.principal.clone(),
            resource: grant.resource.clone(),
            max,
        }
    };
    let once = broke_glass(&mut ids);
    store
        .commit(Change { count_limits: vec![unreviewed(&once, 0)], ..change([once.clone()]) }, t0())
        .await
        .unwrap();
    let again = broke_glass(&mut ids);
    let refused = Change { count_limits: vec![unreviewed(&again, 0)], ..change([again.clone()]) };
    assert!(matches!(store.commit(refused, t0()).await, Err(StoreError::Conflict)));
    assert_eq!(store.grant(again.grant.as_ref().unwrap().id.as_str()).await.unwrap(), None);
    let allowed = Change { count_limits: vec![unreviewed(&again, 1)], ..change([again.clone()]) };
    store.commit(allowed, t0()).await.unwrap();
}

fn finding(id: &str, key: &str, rule: RuleId, severity: Severity, at: Timestamp) -> FindingRecord {
    FindingRecord {
        id: id.into(),
        rule,
        severity,
        key: key.into(),
        state: FindingState::Open,
        subject: Some("alice".into()),
        resource: Some("logs:payments-api".into()),
        grant_id: Some("grt_1".into()),
        request_id: Some("req_1".into()),
        seqs: vec![1, 2],
        summary: "alice approved her own request".into(),
        occurrences: 1,
        first_seen_at: at,
        last_seen_at: at,
        updated_at: at,
        moved_by: None,
        comment: None,
        version: 1,
    }
}

fn finding_event(id: &str, at: Timestamp) -> ward_core::audit::NewEvent {
    NewEvent {
        id: id.into(),
        event_type: EventType::FindingOpened,
        occurred_at: at,
        actor: "ward".into(),
        subject: Some("alice".into()),
        resource: None,
        request_id: None,
        grant_id: None,
        reason: None,
        details: serde_json::json!({}),
    }
}

fn opened(finding: FindingRecord, event: &str) -> Change {
    let at = finding.first_seen_at;
    Change { findings: vec![finding], events: vec![finding_event(event, at)], ..Change::default() }
}

pub async fn findings_are_kept_and_listed(store: Arc<dyn Store>) {
    let secs = |n: i64| t0() + SignedDuration::from_secs(n);
    let mut bob = finding("fnd_b", "rubber-stamp:bob", RuleId::RubberStamp, Severity::Medium, secs(2));
    bob.subject = Some("bob".into());
    let records = [
        finding("fnd_a", "self-approval:alice:req_1", RuleId::SelfApproval, Severity::High, secs(1)),
        bob,
        finding("fnd_c", "off-hours:alice:grt_2", RuleId::OffHours, Severity::Low, secs(3)),
    ];
    for (n, record) in records.iter().enumerate() {
        store.commit(opened(record.clone(), &format!("evt_f{n}")), record.first_seen_at).await.unwrap();
    }
    assert_eq!(store.finding("fnd_a").await.unwrap().as_ref(), Some(&records[0]));
    assert_eq!(store.finding("fnd_missing").await.unwrap(), None);
    let ids = |found: Vec<FindingRecord>| found.into_iter().map(|f| f.id).collect::<Vec<_>>();
    let list = |filter: FindingFilter| {
        let store = store.clone();
        async move { ids(store.findings(&FindingFilter { limit: 100, ..filter }).await.unwrap()) }
    };
    assert_eq!(list(FindingFilter::default()).await, ["fnd_c", "fnd_b", "fnd_a"], "newest first");
    assert_eq!(
        list(FindingFilter { rule: Some(RuleId::RubberStamp), ..Default::default() }).await,
        ["fnd_b"]
    );
    assert_eq!(
        list(FindingFilter { min_severity: Some(Severity::Medium), ..Default::default() }).await,
        ["fnd_b", "fnd_a"],
        "medium and above"
    );
    assert_eq!(
        list(FindingFilter { subject: Some("alice".into()), ..Default::default() }).await,
        ["fnd_c", "fnd_a"]
    );
    assert_eq!(list(FindingFilter { since: Some(secs(2)), ..Default::default() }).await, ["fnd_c", "fnd_b"]);
    assert_eq!(
        list(FindingFilter { after: Some((secs(2), "fnd_b".into())), ..Default::default() }).await,
        ["fnd_a"],
        "paged after a row"
    );
    let first = store.findings(&FindingFilter { limit: 1, ..Default::default() }).await.unwrap();
    assert_eq!(ids(first), ["fnd_c"]);

    // A move: the next version replaces the stored one; a stale version is refused.
    let mut acknowledged = records[0].clone();
    acknowledged.state = FindingState::Acknowledged;
    acknowledged.moved_by = Some("carol".into());
    acknowledged.comment = Some("looking into it".into());
    acknowledged.updated_at = secs(10);
    acknowledged.version = 2;
    store.commit(opened(acknowledged.clone(), "evt_ack"), secs(10)).await.unwrap();
    assert_eq!(store.finding("fnd_a").await.unwrap(), Some(acknowledged.clone()));
    let before = all_events(&*store).await.len();
    assert!(matches!(
        store.commit(opened(acknowledged, "evt_ack2"), secs(11)).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(all_events(&*store).await.len(), before, "a refused move appended its event");
    assert_eq!(
        list(FindingFilter { state: Some(FindingState::Acknowledged), ..Default::default() }).await,
        ["fnd_a"]
    );
}

pub async fn one_live_finding_per_key(store: Arc<dyn Store>) {
    let secs = |n: i64| t0() + SignedDuration::from_secs(n);
    let key = "too-frequent:alice:logs:payments-api";
    let first = finding("fnd_1", key, RuleId::TooFrequent, Severity::Medium, secs(1));
    store.commit(opened(first.clone(), "evt_1"), secs(1)).await.unwrap();
    // A second live finding for the same key is refused whole, its event included.
    let second = finding("fnd_2", key, RuleId::TooFrequent, Severity::Medium, secs(2));
    assert!(matches!(
        store.commit(opened(second.clone(), "evt_2"), secs(2)).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(store.finding("fnd_2").await.unwrap(), None);
    assert_eq!(all_events(&*store).await.len(), 1);
    // Acknowledged is still live.
    let acknowledged = FindingRecord { state: FindingState::Acknowledged, version: 2, ..first.clone() };
    store.commit(opened(acknowledged.clone(), "evt_3"), secs(3)).await.unwrap();
    assert!(matches!(
        store.commit(opened(second.clone(), "evt_4"), secs(4)).await,
        Err(StoreError::Conflict)
    ));
    // Once resolved, the condition seen again is a new finding.
    let resolved = FindingRecord { state: FindingState::Resolved, version: 3, ..acknowledged };
    store.commit(opened(resolved.clone(), "evt_5"), secs(5)).await.unwrap();
    let third = finding("fnd_3", key, RuleId::TooFrequent, Severity::Medium, secs(6));
    store.commit(opened(third.clone(), "evt_6"), secs(6)).await.unwrap();
    // The latest finding of each key, closed or not; keys without one are left out.
    let other = finding("fnd_9", "off-hours:bob:grt_9", RuleId::OffHours, Severity::Low, secs(7));
    store.commit(opened(other.clone(), "evt_7"), secs(7)).await.unwrap();
    let mut latest =
        store.latest_findings(&[key.into(), "off-hours:bob:grt_9".into(), "nothing".into()]).await.unwrap();
    latest.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(latest, [third, other]);
    assert_eq!(store.finding("fnd_1").await.unwrap(), Some(resolved));
}

fn cursor_change(lease: &Lease, from: i64, to: i64, finding_id: &str, event: &str) -> Change {
    let key = format!("self-approval:alice:{finding_id}");
    let record = finding(finding_id, &key, RuleId::SelfApproval, Severity::High, t0());
    Change { cursor: Some(CursorMove { lease: lease.clone(), from, to }), ..opened(record, event) }
}

pub async fn a_cursor_moves_with_its_effects_or_not_at_all(store: Arc<dyn Store>) {
    let secs = |n: i64| t0() + SignedDuration::from_secs(n);
    let lease = Lease { consumer: "rules".into(), holder: "p1".into() };
    assert!(store.take_lease(&lease, t0(), secs(30)).await.unwrap());
    let mut ids = SequentialIds::new("cur");
    granted(&*store, &mut ids, "alice", t0()).await;
    assert_eq!(store.consumer_cursor("rules").await.unwrap(), 0);

    store.commit(cursor_change(&lease, 0, 3, "fnd_1", "evt_c1"), secs(1)).await.unwrap();
    assert_eq!(store.consumer_cursor("rules").await.unwrap(), 3);
    assert!(store.finding("fnd_1").await.unwrap().is_some());
    let written = all_events(&*store).await.len();

    // From a cursor that has moved since (another batch, another holder): nothing lands.
    let stale = cursor_change(&lease, 0, 4, "fnd_2", "evt_c2");
    assert!(matches!(store.commit(stale, secs(2)).await, Err(StoreError::Conflict)));
    // Past the log's end, or backwards: refused too.
    let past_end = cursor_change(&lease, 3, 99, "fnd_3", "evt_c3");
    assert!(matches!(store.commit(past_end, secs(2)).await, Err(StoreError::Conflict)));
    let backwards = cursor_change(&lease, 3, 2, "fnd_4", "evt_c4");
    assert!(matches!(store.commit(backwards, secs(2)).await, Err(StoreError::Conflict)));
    // Effects that cannot be written keep the cursor where it was: a second live finding for
    // the same key as fnd_1, with a good cursor move.
    let duplicate = Change {
        cursor: Some(CursorMove { lease: lease.clone(), from: 3, to: 4 }),
        ..opened(
            finding("fnd_5", "self-approval:alice:fnd_1", RuleId::SelfApproval, Severity::High, t0()),
            "evt_c5",
        )
    };
    assert!(matches!(store.commit(duplicate, secs(2)).await, Err(StoreError::Conflict)));
    assert_eq!(store.consumer_cursor("rules").await.unwrap(), 3);
    for id in ["fnd_2", "fnd_3", "fnd_4", "fnd_5"] {
        assert_eq!(store.finding(id).await.unwrap(), None, "{id} was written");
    }
    assert_eq!(all_events(&*store).await.len(), written, "a refused change appended events");

    // Staying put (effects of time passing, no new events) still needs the live lease.
    store.commit(cursor_change(&lease, 3, 3, "fnd_6", "evt_c6"), secs(3)).await.unwrap();
    store.commit(cursor_change(&lease, 3, 5, "fnd_7", "evt_c7"), secs(4)).await.unwrap();
    assert_eq!(store.consumer_cursor("rules").await.unwrap(), 5);
    // Each consumer has its own cursor.
    assert_eq!(store.consumer_cursor("notify").await.unwrap(), 0);
}

pub async fn a_stale_lease_moves_no_cursor(store: Arc<dyn Store>) {
    let secs = |n: i64| t0() + SignedDuration::from_secs(n);
    let (mine, theirs) = (
        Lease { consumer: "rules".into(), holder: "p1".into() },
        Lease { consumer: "rules".into(), holder: "p2".into() },
    );
    let mut ids = SequentialIds::new("lease");
    granted(&*store, &mut ids, "alice", t0()).await;
    // No lease at all.
    assert!(matches!(
        store.commit(cursor_change(&mine, 0, 1, "fnd_1", "evt_l1"), secs(1)).await,
        Err(StoreError::Conflict)
    ));
    assert!(store.take_lease(&mine, t0(), secs(30)).await.unwrap());
    // Someone else's live lease.
    assert!(matches!(
        store.commit(cursor_change(&theirs, 0, 1, "fnd_2", "evt_l2"), secs(1)).await,
        Err(StoreError::Conflict)
    ));
    // My lease, expired by the time the change commits (its `recorded_at`).
    assert!(matches!(
        store.commit(cursor_change(&mine, 0, 1, "fnd_3", "evt_l3"), secs(30)).await,
        Err(StoreError::Conflict)
    ));
    // Taken over: the old holder is refused, the new one moves on.
    assert!(store.take_lease(&theirs, secs(31), secs(61)).await.unwrap());
    assert!(matches!(
        store.commit(cursor_change(&mine, 0, 1, "fnd_4", "evt_l4"), secs(32)).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(store.consumer_cursor("rules").await.unwrap(), 0);
    assert_eq!(all_events(&*store).await.len(), 3, "only the grant's events");
    store.commit(cursor_change(&theirs, 0, 3, "fnd_5", "evt_l5"), secs(32)).await.unwrap();
    assert_eq!(store.consumer_cursor("rules").await.unwrap(), 3);
    assert!(store.finding("fnd_5").await.unwrap().is_some());
}

pub async fn debug_levels_keep_the_level_to_put_back(store: Arc<dyn Store>) {
    let at = t0();
    assert!(store.debug_levels().await.unwrap().is_empty());
    let original = |level: &str| Change {
        debug_levels: vec![DebugLevelWrite::Original {
            resource: "debug:orders-db".into(),
            level: level.into(),
            at,
        }],
        ..Change::default()
    };
    // Recorded before the raise; a second raise (retried, or by another process) keeps it.
    store.commit(original("warning"), at).await.unwrap();
    store.commit(original("debug1"), at).await.unwrap();
    let record = &store.debug_levels().await.unwrap()[0];
    assert_eq!(
        (record.original.as_deref(), record.raised, record.holders.len()),
        (Some("warning"), false, 0)
    );

    let raised = DebugLevelRecord {
        resource: "debug:orders-db".into(),
        holders: vec![DebugLevelHolder { grant_id: "grt_1".into(), expires_at: 1_800_000_000_000 }],
        original: Some("warning".into()),
        raised: true,
        ended_at: None,
        failing_since: Some(1_799_999_999_000),
        baseline: None,
        drifted: None,
        updated_at: at,
    };
    let put = |record: &DebugLevelRecord| Change {
        debug_levels: vec![DebugLevelWrite::Put(record.clone())],
        ..Change::default()
    };
    store.commit(put(&raised), at).await.unwrap();
    assert_eq!(store.debug_levels().await.unwrap(), std::slice::from_ref(&raised));
    // Put back: the original is cleared, and the next raise records the level then in force.
    let restored = DebugLevelRecord {
        holders: vec![],
        original: None,
        raised: false,
        failing_since: None,
        baseline: Some("warning".into()),
        drifted: Some("debug1".into()),
        ..raised
    };
    store.commit(put(&restored), at).await.unwrap();
    assert_eq!(store.debug_levels().await.unwrap(), [restored]);
    store.commit(original("info"), at).await.unwrap();
    assert_eq!(store.debug_levels().await.unwrap()[0].original.as_deref(), Some("info"));
}

pub async fn policy_snapshots_are_kept_by_digest_with_their_event(store: Arc<dyn Store>) {
    use ward_core::policy::SnapshotRecord;
    let at = t0();
    let first = SnapshotRecord { digest: "aa".repeat(32), body: r#"{"one":1}"#.into() };
    let with_event = |event: &str, snapshot: &SnapshotRecord| Change {
        events: vec![finding_event(event, at)],
        policy_snapshots: vec![snapshot.clone()],
        ..Change::default()
    };
    assert_eq!(store.policy_snapshot(&first.digest).await.unwrap(), None);
    store.commit(with_event("evt_s1", &first), at).await.unwrap();
    assert_eq!(store.policy_snapshot(&first.digest).await.unwrap().as_deref(), Some(r#"{"one":1}"#));
    // Put in force again later (a reload back to it): kept once, the change still lands.
    store.commit(with_event("evt_s2", &first), at).await.unwrap();
    assert_eq!(all_events(&*store).await.len(), 2);
    // A change that fails keeps no snapshot either.
    let second = SnapshotRecord { digest: "bb".repeat(32), body: r#"{"two":2}"#.into() };
    assert!(store.commit(with_event("evt_s1", &second), at).await.is_err());
    assert_eq!(store.policy_snapshot(&second.digest).await.unwrap(), None);
}

pub async fn people_are_written_once_per_version(store: Arc<dyn Store>) {
    let at = t0();
    let pat = PersonRecord {
        name: "pat".into(),
        source: "oidc".into(),
        subject: Some("00u1".into()),
        display_name: None,
        groups: vec!["engineering".into(), "payments-leads".into()],
        active: true,
        deleted_at: None,
        created_at: at,
        claims_at: at,
        updated_at: at,
        version: 1,
    };
    let write = |event: &str, person: &PersonRecord| Change {
        events: vec![finding_event(event, at)],
        people: vec![person.clone()],
        ..Change::default()
    };
    let epoch = store.people_epoch().await.unwrap();
    assert!(store.people().await.unwrap().is_empty());
    store.commit(write("evt_p1", &pat), at).await.unwrap();
    assert_eq!(store.people().await.unwrap(), std::slice::from_ref(&pat));
    assert!(store.people_epoch().await.unwrap() > epoch);
    // Two processes saw the same new person: the second finds the name taken.
    assert!(matches!(store.commit(write("evt_p2", &pat), at).await, Err(StoreError::Conflict)));
    let update = PersonRecord { groups: vec!["engineering".into()], version: 2, ..pat.clone() };
    store.commit(write("evt_p3", &update), at).await.unwrap();
    // ... and likewise for a change: only one moves version 1 on.
    let stale = PersonRecord { groups: vec![], version: 2, ..pat.clone() };
    assert!(matches!(store.commit(write("evt_p4", &stale), at).await, Err(StoreError::Conflict)));
    assert_eq!(store.people().await.unwrap(), std::slice::from_ref(&update));
    assert_eq!(all_events(&*store).await.len(), 2, "a refused write records nothing");
    // A directory deletes them: kept, with what the directory called them and when.
    let later = at + SignedDuration::from_mins(5);
    let deleted = PersonRecord {
        source: "scim".into(),
        display_name: Some("Pat Doe".into()),
        active: false,
        deleted_at: Some(later),
        updated_at: later,
        version: 3,
        ..update
    };
    store.commit(write("evt_p5", &deleted), later).await.unwrap();
    assert_eq!(store.people().await.unwrap(), [deleted]);
}

pub async fn directory_groups_are_written_once_per_version(store: Arc<dyn Store>) {
    let at = t0();
    let leads = DirectoryGroup {
        id: "grp_1".into(),
        name: "payments-leads".into(),
        external_id: Some("okta-1".into()),
        created_at: at,
        updated_at: at,
        version: 1,
    };
    let write = |event: &str, write: GroupWrite| Change {
        events: vec![finding_event(event, at)],
        directory_groups: vec![write],
        ..Change::default()
    };
    let epoch = store.people_epoch().await.unwrap();
    store.commit(write("evt_g1", GroupWrite::Put(leads.clone())), at).await.unwrap();
    assert_eq!(store.directory_groups().await.unwrap(), std::slice::from_ref(&leads));
    assert!(store.people_epoch().await.unwrap() > epoch, "every process reloads");
    let same_name = DirectoryGroup { id: "grp_2".into(), ..leads.clone() };
    let taken = store.commit(write("evt_g2", GroupWrite::Put(same_name)), at).await;
    assert!(matches!(taken, Err(StoreError::Conflict)), "a name stands for one group: {taken:?}");
    let renamed = DirectoryGroup { name: "leads".into(), version: 2, ..leads.clone() };
    store.commit(write("evt_g3", GroupWrite::Put(renamed.clone())), at).await.unwrap();
    let stale =
        store.commit(write("evt_g4", GroupWrite::Put(DirectoryGroup { version: 2, ..leads })), at).await;
    assert!(matches!(stale, Err(StoreError::Conflict)));
    let old = store.commit(write("evt_g5", GroupWrite::Delete { id: "grp_1".into(), version: 1 }), at).await;
    assert!(matches!(old, Err(StoreError::Conflict)), "a deletion names the version it deletes");
    store.commit(write("evt_g6", GroupWrite::Delete { id: "grp_1".into(), version: 2 }), at).await.unwrap();
    assert!(store.directory_groups().await.unwrap().is_empty());
    assert_eq!(all_events(&*store).await.len(), 3, "a refused write records nothing");
}

pub async fn credentials_of_a_login_are_issued_once(store: Arc<dyn Store>) {
    let at = t0();
    let owed = LoginRecord {
        grant_id: "grt_1".into(),
        resource: "db:orders".into(),
        role: "read".into(),
        account: "ward_alice_1".into(),
        expires_at: 1_800_000_000_000,
        updated_at: at,
        ..LoginRecord::default()
    };
    let write = |write: LoginWrite| Change { logins: vec![write], ..Change::default() };
    let issue = || write(LoginWrite::IssueCredentials { grant_id: "grt_1".into(), at });
    store.commit(write(LoginWrite::Put(owed.clone())), at).await.unwrap();
    assert_eq!(store.logins().await.unwrap(), std::slice::from_ref(&owed));
    // Not made in the target yet: nothing to show.
    assert!(matches!(store.commit(issue(), at).await, Err(StoreError::Conflict)));

    let applied = LoginRecord { applied_until: Some(owed.expires_at), ..owed.clone() };
    store.commit(write(LoginWrite::Put(applied.clone())), at).await.unwrap();
    store.commit(issue(), at).await.unwrap();
    assert!(matches!(store.commit(issue(), at).await, Err(StoreError::Conflict)), "shown once");
    let issued = store.login("grt_1").await.unwrap().unwrap();
    assert_eq!(issued.credentials_issued_at, Some(at.as_millisecond()));
    // The provisioner's writes leave the issue as it is.
    let failing = LoginRecord { failing_since: Some(1), ..applied.clone() };
    store.commit(write(LoginWrite::Put(failing)), at).await.unwrap();
    assert_eq!(store.login("grt_1").await.unwrap().unwrap().credentials_issued_at, Some(at.as_millisecond()));
    // Withdrawn (the target refused them): asked for again.
    store.commit(write(LoginWrite::WithdrawCredentials { grant_id: "grt_1".into() }), at).await.unwrap();
    store.commit(issue(), at).await.unwrap();

    // Ended: no credentials any more; removed: forgotten.
    store.commit(write(LoginWrite::WithdrawCredentials { grant_id: "grt_1".into() }), at).await.unwrap();
    let ended = LoginRecord { ended_at: Some(1_700_000_000_000), ..applied };
    store.commit(write(LoginWrite::Put(ended)), at).await.unwrap();
    assert!(!store.login("grt_1").await.unwrap().unwrap().is_usable());
    assert!(matches!(store.commit(issue(), at).await, Err(StoreError::Conflict)));
    store.commit(write(LoginWrite::Remove { grant_id: "grt_1".into() }), at).await.unwrap();
    assert_eq!(store.login("grt_1").await.unwrap(), None);
    assert!(store.logins().await.unwrap().is_empty());
}
