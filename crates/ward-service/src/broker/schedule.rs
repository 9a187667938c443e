//! What the scheduler drives: activations, expiries, lapses, overdue break-glass reviews.

use super::*;

/// How many times a batch is read again after losing a race before it goes one by one.
const MAX_BATCH_RACES: u32 = 3;

impl Broker {
    /// Processes everything due at `now`: activations, expiries, lapses, overdue reviews.
    pub async fn run_due(&self, now: Timestamp) -> Result<DueReport, BrokerError> {
        let mut report = DueReport::default();
        let mut races = 0;
        loop {
            let due = self.store.due(now, DUE_BATCH).await?;
            if due.is_empty() {
                return Ok(report);
            }
            let full = [due.activate.len(), due.expire.len(), due.lapse.len(), due.review_overdue.len()]
                .into_iter()
                .any(|n| n as u32 >= DUE_BATCH);
            let mut transitions = Vec::new();
            for grant in due.activate {
                transitions.extend(lifecycle::activate(&mut RandomIds, grant, now).ok());
            }
            // An idle deadline the store passed may have moved with uses seen here and not
            // written yet: those grants wait for the summary that writes them, made at once.
            let mut used_since = false;
            for mut grant in due.expire {
                self.with_uses_seen_here(&mut grant);
                if now < grant.ends_at() {
                    used_since = true;
                    continue;
                }
                transitions.extend(lifecycle::expire(&mut RandomIds, grant, now).ok());
            }
            if used_since {
                self.flush_usage().await?;
            }
            for request in due.lapse {
                transitions.extend(lifecycle::lapse(&mut RandomIds, request, now).ok());
            }
            for grant in due.review_overdue {
                // A grant can expire and fall overdue in one pass: both moves go in one transition,
                // the second applied to the grant as the first leaves it.
                let earlier =
                    transitions.iter_mut().find(|t| t.grant.as_ref().is_some_and(|g| g.id == grant.id));
                match earlier {
                    Some(earlier) => {
                        let Some(current) = earlier.grant.clone() else { continue };
                        let version = current.version;
                        if let Ok(overdue) = lifecycle::review_overdue(&mut RandomIds, current, now) {
                            // One stored change: one version step.
                            earlier.grant = overdue.grant.map(|g| Grant { version, ..g });
                            earlier.events.extend(overdue.events);
                        }
                    }
                    None => transitions.extend(lifecycle::review_overdue(&mut RandomIds, grant, now).ok()),
                }
            }
            let before = report;
            let mut batch = Change::default();
            for t in &transitions {
                batch.absorb(t.clone());
            }
            match self.commit(batch).await {
                Ok(_) => {
                    for t in &transitions {
                        self.account(&mut report, t);
                    }
                }
                // Something in the batch changed meanwhile (a release racing an expiry, another
                // replica expiring the same batch): read what is due now, and try again; after
                // a few lost races, one by one.
                Err(StoreError::Conflict) if races < MAX_BATCH_RACES => {
                    races += 1;
                    continue;
                }
                Err(StoreError::Conflict) => {
                    for t in transitions {
                        let mut single = Change::default();
                        single.absorb(t.clone());
                        match self.commit(single).await {
                            Ok(_) => self.account(&mut report, &t),
                            Err(StoreError::Conflict) => {}
                            Err(error) => return Err(error.into()),
                        }
                    }
                }
                Err(error) => return Err(error.into()),
            }
            if report == before || !full {
                return Ok(report);
            }
        }
    }

    fn account(&self, report: &mut DueReport, transition: &Transition) {
        let is = |event_type| transition.events.iter().any(|e| e.event_type == event_type);
        if is(EventType::BreakglassOverdue) {
            report.reviews_overdue += 1;
            metrics::counter!("ward_breakglass_reviews_overdue_total").increment(1);
        }
        // A transition that only records an overdue review leaves the grant's access as it was.
        let access_moved = is(EventType::GrantActivated) || is(EventType::GrantExpired);
        if let Some(grant) = transition.grant.as_ref().filter(|_| access_moved) {
            match grant.state {
                GrantState::Active => {
                    report.activated += 1;
                    self.index.insert(grant);
                }
                _ => {
                    report.expired += 1;
                    self.index.remove(grant, self.now());
                    metrics::counter!("ward_grants_expired_total").increment(1);
                }
            }
        }
        if transition.request.as_ref().is_some_and(|r| r.state == RequestState::Lapsed) {
            report.lapsed += 1;
        }
    }

    pub async fn next_due_at(&self) -> Result<Option<Timestamp>, BrokerError> {
        Ok(self.store.next_due_at().await?)
    }

    /// Resolves when something was committed that may change the schedule.
    pub async fn schedule_changed(&self) {
        self.wake.notified().await;
    }
}
