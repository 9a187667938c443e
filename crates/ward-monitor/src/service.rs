//! Findings as people see and move them, and `ward rules run`: a service of its own beside the
//! broker, committing through the broker's one commit path.

use std::sync::Arc;

use jiff::Timestamp;
use tokio::sync::Semaphore;
use ward_core::lifecycle::IdSource;
use ward_rules::{RuleId, RulesConfig, Severity};
use ward_service::broker::{Page, validate_text};
use ward_service::ids::RandomIds;
use ward_service::{Broker, BrokerError, Caller};
use ward_store::{Change, EventFilter, FindingFilter, FindingRecord, FindingState, StoreError};

use crate::ledger::{self, Sightings, Tally};
use crate::lifecycle::Step;
use crate::payload;
use crate::rules::{self, RulesFactory};

/// How often a move is tried again when the finding changed under it (seen again meanwhile).
const MAX_ATTEMPTS: usize = 5;
/// Events read per page by a run.
const RUN_PAGE: u32 = 5_000;
/// Keys planned and committed together by a run.
const RUN_CHUNK: usize = 200;

/// `GET /v1/findings`.
#[derive(Debug, Clone, Default)]
pub struct FindingListing {
    pub state: Option<FindingState>,
    pub rule: Option<RuleId>,
    /// At least this severity.
    pub min_severity: Option<Severity>,
    /// Seen (opened or seen again) at or after.
    pub since: Option<Timestamp>,
    /// Continue after this finding (a page's `next`).
    pub after: Option<String>,
    pub limit: u32,
}

/// What `rules run` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunReport {
    pub since: Timestamp,
    pub until: Timestamp,
    /// Events read in the period.
    pub events: u64,
    pub tally: Tally,
}

#[derive(Clone)]
pub struct Findings {
    broker: Arc<Broker>,
    rules: RulesFactory,
    /// One run at a time in this process: a run reads a whole period of the log.
    runs: Arc<Semaphore>,
}

impl Findings {
    /// Findings of the rules in force.
    pub fn new(broker: Arc<Broker>) -> Self {
        Self::with_rules(broker, rules::in_force())
    }

    /// Findings whose runs use the rules `rules` makes.
    pub fn with_rules(broker: Arc<Broker>, rules: RulesFactory) -> Self {
        Self { broker, rules, runs: Arc::new(Semaphore::new(1)) }
    }

    /// The rules in force.
    pub fn rules(&self) -> &RulesConfig {
        &self.broker.settings().rules
    }

    /// Auditors and admins see every finding; anyone else those about themselves.
    fn may_see(caller: &Caller, finding: &FindingRecord) -> bool {
        caller.sees_everything() || finding.subject.as_deref() == Some(caller.name.as_str())
    }

    pub async fn list(
        &self,
        caller: &Caller,
        listing: FindingListing,
    ) -> Result<Page<FindingRecord>, BrokerError> {
        let after = match &listing.after {
            Some(id) => {
                let cursor =
                    self.broker.store().finding(id).await?.filter(|f| Self::may_see(caller, f)).ok_or_else(
                        || BrokerError::Unacceptable(format!("no finding `{id}` to list after")),
                    )?;
                Some((cursor.first_seen_at, cursor.id))
            }
            None => None,
        };
        let limit = listing.limit.max(1);
        let filter = FindingFilter {
            state: listing.state,
            rule: listing.rule,
            min_severity: listing.min_severity,
            subject: (!caller.sees_everything()).then(|| caller.name.clone()),
            since: listing.since,
            after,
            // One more than the page shows whether more follow.
            limit: limit.saturating_add(1),
        };
        let mut items = self.broker.store().findings(&filter).await?;
        let next = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|f| f.id.clone())
        } else {
            None
        };
        Ok(Page { items, next })
    }

    /// The finding `id`, if the caller may see it (else: not found, as if it did not exist).
    pub async fn get(&self, caller: &Caller, id: &str) -> Result<FindingRecord, BrokerError> {
        self.broker
            .store()
            .finding(id)
            .await?
            .filter(|f| Self::may_see(caller, f))
            .ok_or_else(|| BrokerError::NotFound(format!("no finding `{id}`")))
    }

    /// Moves a finding on (acknowledge, resolve, dismiss) with the caller's comment; the move
    /// and its event commit together. Admins and auditors, and never on a finding about
    /// themselves: whoever a finding is about does not close it.
    pub async fn take_step(
        &self,
        caller: &Caller,
        id: &str,
        step: Step,
        comment: &str,
    ) -> Result<FindingRecord, BrokerError> {
        for _ in 0..MAX_ATTEMPTS {
            let finding = self.get(caller, id).await?;
            if !caller.sees_everything() {
                return Err(BrokerError::Forbidden(format!(
                    "only auditors and admins can {} a finding",
                    step.verb()
                )));
            }
            if finding.subject.as_deref() == Some(caller.name.as_str()) {
                return Err(BrokerError::Forbidden(format!(
                    "finding `{id}` is about you: someone else must {} it",
                    step.verb()
                )));
            }
            validate_text("the comment", comment, true)?;
            if !step.allowed_from(finding.state) {
                return Err(BrokerError::Conflict(format!(
                    "finding `{id}` is {}: only {} findings can be {}",
                    finding.state.as_str(),
                    if step == Step::Acknowledge { "open" } else { "open or acknowledged" },
                    step.target().as_str()
                )));
            }
            let now = self.broker.now();
            let from = finding.state;
            let moved = FindingRecord {
                state: step.target(),
                moved_by: Some(caller.name.clone()),
                comment: Some(comment.to_owned()),
                updated_at: now,
                version: finding.version + 1,
                ..finding
            };
            let event =
                payload::moved_event(RandomIds.event_id(), &moved, from, step, &caller.name, comment, now);
            let change = Change { findings: vec![moved.clone()], events: vec![event], ..Change::default() };
            match self.broker.commit_change(change).await {
                Ok(_) => return Ok(moved),
                // Seen again (or moved) meanwhile: decide again on what it is now.
                Err(StoreError::Conflict) => continue,
                Err(error) => return Err(error.into()),
            }
        }
        Err(BrokerError::Conflict(format!("finding `{id}` keeps changing; try again")))
    }

    /// Runs the rules over the events that occurred in `[since, until)` (until: now) with a fresh
    /// engine, asks the time-driven ones at `until`, and records what they saw as the consumer
    /// would: a finding already recorded is not opened again. Admins and auditors.
    pub async fn run(
        &self,
        caller: &Caller,
        since: Timestamp,
        until: Option<Timestamp>,
    ) -> Result<RunReport, BrokerError> {
        if !caller.sees_everything() {
            return Err(BrokerError::Forbidden("only auditors and admins can run the rules".into()));
        }
        let now = self.broker.now();
        let until = until.unwrap_or(now);
        if until > now {
            // The time-driven rules would judge a future that has not happened.
            return Err(BrokerError::Unacceptable(format!("until {until} is in the future")));
        }
        if since >= until {
            return Err(BrokerError::Unacceptable(format!("since {since} is not before until {until}")));
        }
        let permit = self.runs.clone().try_acquire_owned().map_err(|_| BrokerError::Busy {
            message: "a rules run is already going on; try again when it is done".into(),
            retry_after_seconds: 5,
        })?;
        // To completion, whether or not the caller waits for it.
        let this = self.clone();
        tokio::spawn(async move {
            let _permit = permit;
            this.run_period(since, until).await
        })
        .await
        .map_err(|error| BrokerError::Unavailable(format!("the run did not finish: {error}")))?
    }

    async fn run_period(&self, since: Timestamp, until: Timestamp) -> Result<RunReport, BrokerError> {
        let mut engine = (self.rules)(&self.broker);
        let mut sightings = Sightings::default();
        let mut events = 0u64;
        // Read ahead, as an export does: the next page is read while the rules take this one.
        let store = self.broker.store().clone();
        let mut pages = ward_service::export::read_ahead(RUN_PAGE, move |after_seq| {
            let store = store.clone();
            async move {
                let filter = EventFilter {
                    since: Some(since),
                    until: Some(until),
                    after_seq,
                    limit: RUN_PAGE,
                    ..EventFilter::default()
                };
                store.events(&filter).await
            }
        });
        while let Some(page) = pages.recv().await {
            let page = page?;
            for event in &page {
                sightings.extend(engine.observe(event));
            }
            events += page.len() as u64;
        }
        sightings.extend(engine.advance(until));
        let mut tally = Tally::default();
        let all = sightings.into_vec();
        for chunk in all.chunks(RUN_CHUNK) {
            tally += self.record(chunk).await?;
        }
        Ok(RunReport { since, until, events, tally })
    }

    /// Plans and commits sightings, again from fresh reads when someone (the consumer) wrote
    /// one of their findings meanwhile.
    async fn record(&self, sightings: &[ledger::Sighting]) -> Result<Tally, BrokerError> {
        let keys: Vec<String> = sightings.iter().map(|s| s.finding.key.clone()).collect();
        for _ in 0..MAX_ATTEMPTS {
            let latest = self.broker.store().latest_findings(&keys).await?;
            let plan = ledger::plan(&latest, sightings.to_vec(), self.broker.now());
            if plan.findings.is_empty() {
                return Ok(plan.tally);
            }
            let change = Change { findings: plan.findings, events: plan.events, ..Change::default() };
            match self.broker.commit_change(change).await {
                Ok(_) => return Ok(plan.tally),
                Err(StoreError::Conflict) => continue,
                Err(error) => return Err(error.into()),
            }
        }
        Err(BrokerError::Conflict("findings kept changing during the run; run it again".into()))
    }
}
