//! The audit checkpoints of grants (`ward_rules::checkpoints`, pure) as ward runs them: the
//! grants' events read from the store ([`grant_logs`], all those a batch touched at once), the
//! policies asked again about their requests ([`audit_facts`]), and the consumer `checkpoints`
//! ([`CheckpointsReader`]) that records the verdicts as `grant.audited` when a grant ends and
//! again, one revision more, whenever later events change them.
//!
//! The consumer keeps only the grants it knows are live (so that their uses cost it nothing),
//! with the events it saw of them and of the requests behind them; their end, or any event
//! about another grant, makes it assess that grant's events (held when it saw them all, else
//! read) and compare what they say now with the last `grant.audited` on record. The log is the
//! memory: after a restart nothing is replayed, nothing is recorded twice (the comparison reads
//! the last record), what began before is read, and a grant that ended is forgotten at once (a
//! late event about it is read fresh).

use std::borrow::Borrow;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use ward_core::SYSTEM_ACTOR;
use ward_core::audit::{AuditEvent, EventType, NewEvent, Payload};
use ward_core::lifecycle::IdSource;
use ward_core::policy::{RequestAsk, RequestVerdict};
use ward_rules::checkpoints::{AuditFacts, GrantAudit, PolicyCheck, PolicyFacts, assess};
use ward_service::Broker;
use ward_service::ids::RandomIds;
use ward_store::{EventFilter, Store, StoreError};

use crate::consumer::{Consumer, Planned, Reader};
use crate::tail::Tailed;

/// The consumer's name: its lease and its cursor.
pub const CHECKPOINTS: &str = "checkpoints";
/// Events read per page of a grant's log.
const PAGE: u32 = 1000;
/// The holder's refusals shown with a grant, at most.
const MAX_REFUSALS: u32 = 1000;
/// The events held for one grant or request, at most; beyond, its end is read from the store.
const MAX_HELD_PER_LOG: usize = 1000;
/// The requests held at most (those still pending, or behind live grants); beyond, all are
/// forgotten, and the ends of the grants behind them read from the store.
const MAX_HELD_REQUESTS: usize = 20_000;
/// How long past its expiry a grant the consumer knows as live is kept as such (one whose end
/// never comes: ward was down): touched again later, it is read fresh.
const LIVE_TAIL: SignedDuration = SignedDuration::from_hours(24);

/// Every event matching `filter` (paged).
async fn read_all(store: &dyn Store, mut filter: EventFilter) -> Result<Vec<AuditEvent>, StoreError> {
    let mut all = Vec::new();
    filter.limit = PAGE;
    loop {
        let page = store.events(&filter).await?;
        let full = page.len() == PAGE as usize;
        filter.after_seq = page.last().map(|e| e.seq).or(filter.after_seq);
        all.extend(page);
        if !full {
            return Ok(all);
        }
    }
}

/// What the checkpoints read of each of `grant_ids`, read together (two queries, however many
/// grants): the grant's own events and those of the requests behind it (the one it came from
/// and each extension), in log order. A grant the log does not name is left out.
pub async fn grant_logs(
    store: &dyn Store,
    grant_ids: &[String],
) -> Result<HashMap<String, Vec<AuditEvent>>, StoreError> {
    let own = EventFilter { grant_ids: Some(grant_ids.to_vec()), ..EventFilter::default() };
    let mut logs: HashMap<String, Vec<AuditEvent>> = HashMap::new();
    for event in read_all(store, own).await? {
        if let Some(grant) = event.grant_id.clone() {
            logs.entry(grant).or_default().push(event);
        }
    }
    // Each request behind a grant, and the grants it is behind (one, but for a grant's own
    // extension requests).
    let mut behind: HashMap<String, Vec<String>> = HashMap::new();
    for (grant, events) in &logs {
        for request in requests_behind(events.iter()) {
            behind.entry(request).or_default().push(grant.clone());
        }
    }
    if !behind.is_empty() {
        let theirs =
            EventFilter { request_ids: Some(behind.keys().cloned().collect()), ..EventFilter::default() };
        // A request's events about a grant are that grant's own, read above.
        for event in read_all(store, theirs).await?.into_iter().filter(|e| e.grant_id.is_none()) {
            let grants = event.request_id.as_ref().and_then(|request| behind.get(request));
            for grant in grants.into_iter().flatten() {
                logs.entry(grant.clone()).or_default().push(event.clone());
            }
        }
    }
    for events in logs.values_mut() {
        events.sort_by_key(|e| e.seq);
    }
    Ok(logs)
}

/// In debug builds (the tests): the logs held in memory are what the store holds up to `to`.
async fn check_held_logs(
    store: &dyn Store,
    held: &HashMap<String, Vec<Arc<AuditEvent>>>,
    to: i64,
) -> Result<(), StoreError> {
    let grants: Vec<String> = held.keys().cloned().collect();
    if grants.is_empty() {
        return Ok(());
    }
    let mut stored = grant_logs(store, &grants).await?;
    for (grant, events) in held {
        let mut read = stored.remove(grant).unwrap_or_default();
        read.retain(|e| e.seq <= to);
        let events: Vec<&AuditEvent> = events.iter().map(|e| &**e).collect();
        let read: Vec<&AuditEvent> = read.iter().collect();
        debug_assert_eq!(events, read, "the consumer's memory of grant {grant} differs from the store");
    }
    Ok(())
}

/// What the checkpoints read of grant `grant_id` ([`grant_logs`]) and, `with_refusals`, the
/// holder's refused attempts on its resource from its creation to its end. Empty for a grant
/// the log does not name.
pub async fn grant_log(
    store: &dyn Store,
    grant_id: &str,
    with_refusals: bool,
) -> Result<Vec<AuditEvent>, StoreError> {
    let mut events = grant_logs(store, &[grant_id.to_owned()]).await?.remove(grant_id).unwrap_or_default();
    let Some(first) = events.first().cloned() else { return Ok(events) };
    if with_refusals && let (Some(holder), Some(resource)) = (&first.subject, &first.resource) {
        let ended = events
            .iter()
            .filter(|e| {
                matches!(
                    e.event_type,
                    EventType::GrantReleased | EventType::GrantRevoked | EventType::GrantExpired
                )
            })
            .map(|e| e.occurred_at)
            .min();
        let filter = EventFilter {
            subject: Some(holder.clone()),
            resource: Some(resource.clone()),
            event_type: Some(EventType::AccessDenied),
            since: Some(first.occurred_at),
            until: ended.map(|end| end + SignedDuration::from_millis(1)),
            limit: MAX_REFUSALS,
            ..EventFilter::default()
        };
        events.extend(store.events(&filter).await?);
        events.sort_by_key(|e| e.seq);
        events.dedup_by_key(|e| e.seq);
    }
    Ok(events)
}

/// What the checkpoints need beyond `events`: the thresholds in force (`[rules.…]`), and the
/// policies' answers about each request among them, asked again as it was filed when the
/// policy set that allowed it is still in force.
pub fn audit_facts(broker: &Broker, events: &[impl Borrow<AuditEvent>]) -> AuditFacts {
    let mut facts = AuditFacts::from_config(&broker.settings().rules);
    let policy = broker.policy();
    for event in events.iter().map(Borrow::borrow).filter(|e| e.event_type == EventType::RequestCreated) {
        let Some(request_id) = event.request_id.clone() else { continue };
        let Ok(Payload::RequestCreated(created)) = Payload::parse(event.event_type, &event.details) else {
            continue;
        };
        if created.policy_hash != policy.hash() {
            let why = format!(
                "the policy set that allowed it ({}) is no longer in force ({})",
                short(&created.policy_hash),
                short(policy.hash())
            );
            facts.policies.insert(request_id, PolicyFacts::Unavailable(why));
            continue;
        }
        let requester = event.subject.as_deref().unwrap_or(&event.actor);
        let reason = event.reason.as_deref().unwrap_or_default();
        let ask = RequestAsk {
            requester,
            resource: event.resource.as_deref().unwrap_or_default(),
            role: &created.role,
            duration_seconds: created.duration_seconds,
            reason,
            ticket: created.ticket.as_deref(),
            on_call_schedules: &created.on_call_schedules,
            business_hours: created.business_hours,
            extension: created.extends_grant.is_some(),
            breakglass: created.breakglass,
        };
        let hmac = is_hmac(reason) || created.ticket.as_deref().is_some_and(is_hmac);
        let allowed = (!hmac).then(|| match policy.decide_request(&ask) {
            RequestVerdict::Allowed(terms) => Ok(terms.policy_ids),
            RequestVerdict::Refused(refusal) => Err(refusal.to_string()),
        });
        let mut check = PolicyCheck {
            policy_hash: policy.hash().to_owned(),
            allowed,
            ticket_kinds: if hmac { Vec::new() } else { policy.ticket_kinds(created.ticket.as_deref()) },
            ..PolicyCheck::default()
        };
        for decided in events
            .iter()
            .map(Borrow::borrow)
            .filter(|e: &&AuditEvent| e.request_id.as_deref() == Some(request_id.as_str()))
        {
            let who = decided.actor.as_str();
            match decided.event_type {
                EventType::ApprovalGranted if who != SYSTEM_ACTOR => {
                    check.approvers.insert(who.to_owned(), policy.approval_stages(who, &ask));
                }
                EventType::BreakglassReviewed => {
                    let admin = broker.caller(who).is_some_and(|caller| caller.admin);
                    check.reviewers.insert(who.to_owned(), admin || policy.may_decide(who, &ask));
                }
                _ => {}
            }
        }
        facts.policies.insert(request_id, PolicyFacts::Checked(check));
    }
    facts
}

fn is_hmac(text: &str) -> bool {
    text.trim_start().starts_with("hmac-sha256:")
}

fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

/// Reads grant `grant_id`'s events and assesses them at `now`. `None`: the log does not start
/// the grant.
pub async fn assess_grant(
    broker: &Broker,
    grant_id: &str,
    with_refusals: bool,
    now: Timestamp,
) -> Result<Option<GrantAudit>, StoreError> {
    let events = grant_log(&**broker.store(), grant_id, with_refusals).await?;
    let facts = audit_facts(broker, &events);
    Ok(assess(grant_id, &events, &facts, now))
}

/// The event that records `audit`'s verdicts as `details`.
pub fn audited_event(
    audit: &GrantAudit,
    details: ward_core::audit::payload::GrantAudited,
    at: Timestamp,
) -> NewEvent {
    NewEvent {
        subject: Some(audit.principal.clone()),
        resource: Some(audit.resource.clone()),
        request_id: audit.request_id.clone(),
        grant_id: Some(audit.grant_id.clone()),
        ..NewEvent::new(RandomIds.event_id(), at, SYSTEM_ACTOR, Payload::GrantAudited(details))
    }
}

/// What a batch of the checkpoints' consumer came to.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct AuditTally {
    /// Grants that ended, their verdicts recorded for the first time.
    pub recorded: u64,
    /// Grants whose verdicts later events changed: recorded again, one revision more.
    pub revised: u64,
    /// Grants read again whose record still says what their events say.
    pub unchanged: u64,
}

/// The grants the consumer knows are live: their expiry (Unix milliseconds); and the events it
/// holds of them and of the requests behind them.
#[derive(Debug, Default)]
pub struct LiveGrants {
    grants: HashMap<String, i64>,
    held: HeldLogs,
}

/// The events the consumer saw of the grants it follows and of the requests behind them, so
/// that a grant's end is assessed from them instead of reading them again. A log is `None` when
/// the consumer did not see all of it (it started after the request was filed, or the log grew
/// past [`MAX_HELD_PER_LOG`]): that grant's end is read from the store.
#[derive(Debug, Default)]
struct HeldLogs {
    /// Each grant's own events, from its first.
    grants: HashMap<String, Option<Vec<Arc<AuditEvent>>>>,
    /// Each request's events about no grant, from its `request.created`.
    requests: HashMap<String, Option<Vec<Arc<AuditEvent>>>>,
}

impl HeldLogs {
    /// Keeps `event` in its grant's or request's log. `follows`: whether the event starts or
    /// concerns a grant the consumer follows (its own records only join a log it holds).
    fn keep(&mut self, event: &Arc<AuditEvent>, follows: bool) {
        let push = |log: &mut Option<Vec<Arc<AuditEvent>>>| {
            if let Some(events) = log {
                events.push(event.clone());
                if events.len() > MAX_HELD_PER_LOG {
                    *log = None;
                }
            }
        };
        match (&event.grant_id, &event.request_id) {
            (Some(grant), _) => match self.grants.get_mut(grant) {
                Some(log) => push(log),
                None if follows => {
                    self.grants.insert(grant.clone(), Some(vec![event.clone()]));
                }
                None => {}
            },
            (None, Some(request)) if event.event_type == EventType::RequestCreated => {
                self.hold_request(request, Some(vec![event.clone()]));
            }
            (None, Some(request)) => match self.requests.get_mut(request) {
                Some(log) => push(log),
                // Filed before the consumer started: not all seen.
                None => self.hold_request(request, None),
            },
            (None, None) => {}
        }
        if matches!(
            event.event_type,
            EventType::ApprovalDenied | EventType::RequestCancelled | EventType::RequestLapsed
        ) && event.grant_id.is_none()
            && let Some(request) = &event.request_id
        {
            // Closed with no grant: no grant's end will ask for it.
            self.requests.remove(request);
        }
    }

    fn hold_request(&mut self, request: &str, log: Option<Vec<Arc<AuditEvent>>>) {
        if self.requests.len() >= MAX_HELD_REQUESTS {
            self.requests.clear();
        }
        self.requests.insert(request.to_owned(), log);
    }

    /// Grant `grant_id`'s log as [`grant_logs`] reads it (up to the last event seen), when all
    /// of it was seen.
    fn log(&self, grant_id: &str) -> Option<Vec<Arc<AuditEvent>>> {
        let own = self.grants.get(grant_id)?.as_ref()?;
        let requests = requests_behind(own.iter().map(|e| &**e));
        if requests.is_empty() {
            return None;
        }
        let mut events = own.clone();
        for request in &requests {
            events.extend(self.requests.get(request)?.as_ref()?.iter().cloned());
        }
        events.sort_by_key(|e| e.seq);
        Some(events)
    }

    /// Forgets grant `grant_id` and the requests its events name.
    fn forget_all_of(&mut self, grant_id: &str) {
        let requests = match self.grants.get(grant_id) {
            Some(Some(own)) => requests_behind(own.iter().map(|e| &**e)),
            _ => BTreeSet::new(),
        };
        self.forget(grant_id, &requests);
    }

    /// Forgets grant `grant_id` and `requests`, the requests behind it.
    fn forget(&mut self, grant_id: &str, requests: &BTreeSet<String>) {
        self.grants.remove(grant_id);
        for request in requests {
            self.requests.remove(request);
        }
    }
}

/// The requests behind a grant, from its own events: the one it came from and each extension.
fn requests_behind<'a>(events: impl Iterator<Item = &'a AuditEvent> + Clone) -> BTreeSet<String> {
    let extensions = events
        .clone()
        .filter(|e| e.event_type == EventType::GrantExtended)
        .filter_map(|e| e.details.get("extension_request_id")?.as_str().map(str::to_owned));
    events.filter_map(|e| e.request_id.clone()).chain(extensions).collect()
}

impl LiveGrants {
    /// How many grants it holds (for the tests of boundedness).
    pub fn len(&self) -> usize {
        self.grants.len()
    }

    pub fn is_empty(&self) -> bool {
        self.grants.is_empty()
    }

    /// How many grants' and requests' logs it holds (for the tests of boundedness).
    pub fn logs_held(&self) -> usize {
        self.held.grants.len() + self.held.requests.len()
    }
}

/// What a batch showed the consumer: the grants to read again, and the time of its last event.
#[derive(Debug, Default)]
pub struct Touched {
    grants: BTreeSet<String>,
    at: Option<Timestamp>,
}

/// The audit checkpoints as a consumer reads them.
#[derive(Debug, Default, Clone, Copy)]
pub struct CheckpointsReader;

/// The checkpoints' consumer.
pub type CheckpointsConsumer = Consumer<CheckpointsReader>;

impl Consumer<CheckpointsReader> {
    /// The checkpoints' consumer, as this process (`holder`) runs it.
    pub fn new(broker: Arc<Broker>, holder: &str) -> Self {
        Self::with_reader(broker, holder, CheckpointsReader)
    }
}

/// The expiry an event that starts or extends a grant gives it.
fn expiry(event: &AuditEvent) -> Option<i64> {
    let expires_at = match Payload::parse(event.event_type, &event.details).ok()? {
        Payload::GrantScheduled(started) | Payload::GrantActivated(started) => started.expires_at,
        Payload::BreakglassUsed(used) => used.expires_at,
        Payload::GrantExtended(extended) => extended.expires_at,
        _ => return None,
    };
    Some(expires_at.as_millisecond())
}

impl Reader for CheckpointsReader {
    type State = LiveGrants;
    type Seen = Touched;
    type Tally = AuditTally;

    fn name(&self) -> &'static str {
        CHECKPOINTS
    }

    fn fresh(&self, _broker: &Broker) -> LiveGrants {
        LiveGrants::default()
    }

    fn reach_seconds(&self, _broker: &Broker) -> Option<i64> {
        None
    }

    fn replay(&self, _state: &mut LiveGrants, _event: &AuditEvent) {}

    fn observe(&self, state: &mut LiveGrants, events: &[Tailed], now: Timestamp) -> Touched {
        use EventType as T;
        let mut touched = Touched { grants: BTreeSet::new(), at: events.last().map(|e| e.event.recorded_at) };
        for Tailed { event, .. } in events {
            // What ward's own consumers write about grants is no activity of theirs.
            let consumers_own = event.event_type.is_consumers_own();
            state.held.keep(event, !consumers_own);
            let Some(grant) = event.grant_id.as_deref() else { continue };
            match event.event_type {
                // What was given elsewhere being taken back (or not) revises the grant's audit.
                T::DebugLevelRestored | T::ProvisionerRemoved | T::ProvisionerFailed
                    if !state.grants.contains_key(grant) =>
                {
                    touched.grants.insert(grant.to_owned());
                }
                _ if consumers_own => {}
                T::GrantScheduled | T::GrantActivated | T::BreakglassUsed | T::GrantExtended
                    if state.grants.contains_key(grant) || event.event_type != T::GrantExtended =>
                {
                    match expiry(event) {
                        Some(expires_at) => {
                            state.grants.insert(grant.to_owned(), expires_at);
                        }
                        None => {
                            touched.grants.insert(grant.to_owned());
                        }
                    }
                }
                T::GrantReleased | T::GrantRevoked | T::GrantExpired => {
                    state.grants.remove(grant);
                    touched.grants.insert(grant.to_owned());
                }
                _ if state.grants.contains_key(grant) => {}
                _ => {
                    touched.grants.insert(grant.to_owned());
                }
            }
        }
        let forget = now.as_millisecond().saturating_sub(LIVE_TAIL.as_millis() as i64);
        let held = &mut state.held;
        state.grants.retain(|grant, expires_at| {
            let keep = *expires_at > forget;
            if !keep {
                held.forget_all_of(grant);
            }
            keep
        });
        touched
    }

    fn is_empty(&self, seen: &Touched) -> bool {
        seen.grants.is_empty()
    }

    fn merge(&self, seen: &mut Touched, later: Touched) {
        seen.grants.extend(later.grants);
        seen.at = seen.at.max(later.at);
    }

    async fn plan(
        &self,
        broker: &Broker,
        state: &mut LiveGrants,
        seen: &Touched,
        to: i64,
    ) -> Result<Planned<AuditTally>, StoreError> {
        let mut planned = Planned::<AuditTally>::default();
        // As of the batch's last event: what the record says follows from the log alone.
        let at = seen.at.unwrap_or_else(|| broker.now());
        // The logs the consumer saw whole, from memory; the others read (all in two queries).
        let mut logs = HashMap::new();
        let mut unseen = Vec::new();
        for grant in &seen.grants {
            match state.held.log(grant) {
                Some(events) => {
                    logs.insert(grant.clone(), events);
                }
                None => unseen.push(grant.clone()),
            }
        }
        if cfg!(debug_assertions) {
            check_held_logs(&**broker.store(), &logs, to).await?;
        }
        if !unseen.is_empty() {
            let read = grant_logs(&**broker.store(), &unseen).await?;
            logs.extend(
                read.into_iter().map(|(grant, events)| (grant, events.into_iter().map(Arc::new).collect())),
            );
        }
        for grant in &seen.grants {
            let Some(events) = logs.remove(grant) else {
                state.held.forget(grant, &BTreeSet::new());
                continue;
            };
            let Some(audit) = assess(grant, &events, &audit_facts(broker, &events), at) else {
                state.held.forget(grant, &BTreeSet::new());
                continue;
            };
            if audit.end.is_none() {
                state.grants.insert(grant.clone(), audit.expires_at.as_millisecond());
                continue;
            }
            state.held.forget(grant, &requests_behind(events.iter().map(|e| &**e)));
            match audit.to_record() {
                None => planned.tally.unchanged += 1,
                Some(details) => {
                    if details.revision == 1 {
                        planned.tally.recorded += 1;
                    } else {
                        planned.tally.revised += 1;
                    }
                    planned.change.events.push(audited_event(&audit, details, broker.now()));
                }
            }
        }
        Ok(planned)
    }

    fn report(&self, tally: &AuditTally) {
        if tally.recorded + tally.revised > 0 {
            tracing::info!(recorded = tally.recorded, revised = tally.revised, "grants audited");
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use ward_core::audit::{GENESIS_HASH, NewEvent};

    use super::*;

    fn event(seq: i64, event_type: EventType, request: &str, grant: Option<&str>) -> Arc<AuditEvent> {
        let new = NewEvent {
            id: format!("evt_{seq}"),
            event_type,
            occurred_at: Timestamp::UNIX_EPOCH,
            actor: "alice".into(),
            subject: None,
            resource: None,
            request_id: Some(request.into()),
            grant_id: grant.map(str::to_owned),
            reason: None,
            details: json!({}),
        };
        Arc::new(AuditEvent::chain(new, seq, Timestamp::UNIX_EPOCH, GENESIS_HASH.into()))
    }

    #[test]
    fn held_logs_stay_bounded_and_say_when_they_are_not_whole() {
        let mut held = HeldLogs::default();
        // A request filed before the consumer started is not whole, nor its grant's log.
        held.keep(&event(1, EventType::ApprovalGranted, "req_old", None), true);
        held.keep(&event(2, EventType::GrantActivated, "req_old", Some("grt_old")), true);
        assert_eq!(held.log("grt_old"), None);
        // One seen from its filing is, until it grows past the limit.
        held.keep(&event(3, EventType::RequestCreated, "req_1", None), true);
        held.keep(&event(4, EventType::GrantActivated, "req_1", Some("grt_1")), true);
        let log = held.log("grt_1").unwrap();
        assert_eq!(log.iter().map(|e| e.seq).collect::<Vec<_>>(), [3, 4]);
        for seq in 5..5 + MAX_HELD_PER_LOG as i64 {
            held.keep(&event(seq, EventType::AccessUsed, "req_1", Some("grt_1")), true);
        }
        assert_eq!(held.log("grt_1"), None, "past the limit, read from the store");
        // The consumer's own records join only a log held.
        held.keep(&event(9000, EventType::GrantAudited, "req_x", Some("grt_x")), false);
        assert!(!held.grants.contains_key("grt_x"));
        // A request closed with no grant is forgotten; so are requests past the limit.
        held.keep(&event(9001, EventType::RequestCreated, "req_denied", None), true);
        held.keep(&event(9002, EventType::ApprovalDenied, "req_denied", None), true);
        assert!(!held.requests.contains_key("req_denied"));
        for n in 0..MAX_HELD_REQUESTS as i64 + 10 {
            held.keep(&event(10_000 + n, EventType::RequestCreated, &format!("req_{n}"), None), true);
        }
        assert!(held.requests.len() <= MAX_HELD_REQUESTS);
        held.forget_all_of("grt_1");
        assert!(!held.grants.contains_key("grt_1"));
    }
}
