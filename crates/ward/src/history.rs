//! `ward quickstart --history 30d`: plays weeks of a payments team's activity through the same
//! broker, on a clock moved back in time, before the quickstart serves — so that the findings,
//! insights and audit checkpoints have something true to show at once.
//!
//! Nothing here writes to the store but the broker: every request, decision, use and expiry goes
//! through the same checks and commits the same events as in real use. Days follow a fixed
//! pattern (no randomness), with a few violations planted where the rules should see them: an
//! approver who rubber-stamps, a burst of refused checks, a break-glass grant nobody reviews, a
//! grant held for hours for a five-minute look, requests at night, a thin reason, and an expiry
//! recorded late while ward was down for an upgrade.

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp, ToSpan, Zoned, civil::Time, tz::TimeZone};
use ward_core::{Clock, ManualClock};
use ward_service::broker::LogQuery;
use ward_service::{Broker, BrokerError, Config, RequestInput};
use ward_store::{EventFilter, Store};

use crate::client::CliError;

/// What the played history left behind, for the banner.
pub struct Played {
    pub days: i64,
    pub events: u64,
}

/// Plays `days` days of activity ending a little before now into `store`, unless the store
/// already holds requests (a second start of the quickstart keeps what it has).
pub async fn play(config: &Config, store: Arc<dyn Store>, days: i64) -> Result<Option<Played>, CliError> {
    let error = |e: BrokerError| CliError::Usage(format!("the quickstart history could not be played: {e}"));
    let any_request = EventFilter {
        event_type: Some(ward_core::audit::EventType::RequestCreated),
        limit: 1,
        ..Default::default()
    };
    if !store.events(&any_request).await.map_err(|e| error(e.into()))?.is_empty() {
        return Ok(None);
    }
    let zone = TimeZone::get("Europe/Berlin").map_err(|e| CliError::Usage(e.to_string()))?;
    let today = Timestamp::now().to_zoned(zone.clone()).date();
    let first_day = today.checked_sub(days.days()).map_err(|e| CliError::Usage(e.to_string()))?;
    let start = first_day.to_zoned(zone.clone()).map_err(|e| CliError::Usage(e.to_string()))?;
    let clock = Arc::new(ManualClock::new(start.timestamp()));
    let broker = ward_service::broker_for(config, store.clone(), clock.clone())
        .await
        .map_err(|e| CliError::Usage(e.to_string()))?;
    broker.record_policies_in_force().await.map_err(|e| CliError::Usage(e.to_string()))?;
    let before = store.head().await.map_err(|e| error(e.into()))?.size;
    let mut player = Player { broker, clock, zone };
    for day in 0..days {
        let date = first_day.checked_add(day.days()).map_err(|e| CliError::Usage(e.to_string()))?;
        player.day(date, days - day).await.map_err(error)?;
    }
    // Whatever the last day left running ends on the history's clock, a while before now.
    player.at(Timestamp::now() - SignedDuration::from_mins(5)).await.map_err(error)?;
    let after = store.head().await.map_err(|e| error(e.into()))?.size;
    Ok(Some(Played { days, events: after.saturating_sub(before) }))
}

struct Player {
    broker: Arc<Broker>,
    clock: Arc<ManualClock>,
    zone: TimeZone,
}

/// A request's shape in the script.
struct Ask<'a> {
    who: &'a str,
    resource: &'a str,
    role: &'a str,
    minutes: u64,
    reason: &'a str,
    ticket: Option<String>,
    breakglass: bool,
}

impl Player {
    /// Moves the clock to `to` (never back) and lets the broker do what came due meanwhile, as
    /// the scheduler would: activations, expiries, lapses, overdue reviews, usage summaries.
    async fn at(&mut self, to: Timestamp) -> Result<(), BrokerError> {
        if to <= self.clock.now() {
            return Ok(());
        }
        // The checks counted so far are written now, as the server's summary interval (a
        // minute) would, not whenever the clock next stops (the next day, at times): a summary
        // a day late is past what the rules and insights still match to its grant.
        self.broker.flush_usage().await?;
        // Expiries and lapses happen at their own times, not all at `to`.
        while let Some(due) = self.broker.next_due_at().await?.filter(|due| *due <= to) {
            self.clock.set(due.max(self.clock.now()));
            self.broker.run_due(self.clock.now()).await?;
            if self.broker.next_due_at().await? == Some(due) {
                break;
            }
        }
        self.clock.set(to);
        self.broker.run_due(to).await?;
        self.broker.flush_usage().await?;
        Ok(())
    }

    fn caller(&self, name: &str) -> Result<ward_service::Caller, BrokerError> {
        self.broker
            .caller(name)
            .ok_or_else(|| BrokerError::Forbidden(format!("the quickstart has no user `{name}`")))
    }

    async fn ask(&mut self, ask: Ask<'_>) -> Result<ward_core::AccessRequest, BrokerError> {
        let input = RequestInput {
            resource: ask.resource.to_owned(),
            role: ask.role.to_owned(),
            duration_seconds: ask.minutes * 60,
            reason: ask.reason.to_owned(),
            ticket: ask.ticket,
            start_at: None,
            breakglass: ask.breakglass,
        };
        self.broker.create_request(&self.caller(ask.who)?, input).await
    }

    async fn approve(&mut self, who: &str, request: &str) -> Result<ward_core::AccessRequest, BrokerError> {
        self.broker.approve(&self.caller(who)?, request, None).await
    }

    /// A look at the logs through the grant: a check, and a search now and then.
    async fn read(&mut self, who: &str, resource: &str, search: Option<&str>) -> Result<(), BrokerError> {
        let caller = self.caller(who)?;
        self.broker.check(&caller, who, "read", resource).await?;
        if let Some(pattern) = search {
            let query =
                LogQuery { pattern: Some(pattern.to_owned()), limit: Some(50), ..LogQuery::default() };
            // A log source missing from a copied folder is no reason to stop the history.
            let _ = self.broker.search_logs(&caller, resource, query).await;
        }
        Ok(())
    }

    fn local(&self, date: jiff::civil::Date, hour: i8, minute: i8) -> Result<Zoned, BrokerError> {
        date.to_datetime(Time::constant(hour, minute, 0, 0))
            .to_zoned(self.zone.clone())
            .map_err(|e| BrokerError::Unacceptable(e.to_string()))
    }

    /// One day of the team's life; `days_left` counts down to today (1 = yesterday).
    async fn day(&mut self, date: jiff::civil::Date, days_left: i64) -> Result<(), BrokerError> {
        let n = date.day() as i64;
        let weekday = date.weekday().to_monday_zero_offset() < 5;
        let ticket = |k: i64| Some(format!("INC-{}", 4000 + n * 7 + k));
        let t = |p: &Self, h: i8, m: i8| p.local(date, h, m).map(|z| z.timestamp());

        if weekday {
            // Morning: alice looks into payments with a lead's approval.
            self.at(t(self, 9, 20 + (n % 7) as i8)?).await?;
            let reason = "failed card captures after the processor timeout change";
            let ask = Ask {
                who: "alice",
                resource: "logs:payments-api",
                role: "read",
                minutes: 60,
                reason,
                ticket: ticket(1),
                breakglass: false,
            };
            let request = self.ask(ask).await?;
            // The rubber-stamping approver: in the last week bob approves within seconds.
            let (approver, wait) = if days_left <= 7 {
                ("bob", SignedDuration::from_secs(4))
            } else {
                ("erin", SignedDuration::from_mins(6 + n % 20))
            };
            self.at(self.clock.now() + wait).await?;
            let approved = self.approve(approver, request.id.as_str()).await?;
            self.at(self.clock.now() + SignedDuration::from_mins(3)).await?;
            self.read("alice", "logs:payments-api", Some("capture")).await?;
            self.at(self.clock.now() + SignedDuration::from_mins(25)).await?;
            self.read("alice", "logs:payments-api", None).await?;
            if n % 3 == 0
                && let Some(grant) = &approved.grant_id
            {
                self.broker.release(&self.caller("alice")?, grant.as_str()).await?;
            }

            // Afternoon: erin needs the ledger (two stages: a payments lead and security).
            if n % 4 == 1 {
                self.at(t(self, 14, 5)?).await?;
                let reason = "reconcile yesterday's transfer batch totals";
                let ask = Ask {
                    who: "erin",
                    resource: "logs:ledger",
                    role: "read",
                    minutes: 45,
                    reason,
                    ticket: ticket(2),
                    breakglass: false,
                };
                let request = self.ask(ask).await?;
                self.at(self.clock.now() + SignedDuration::from_mins(12)).await?;
                self.approve("bob", request.id.as_str()).await?;
                self.at(self.clock.now() + SignedDuration::from_mins(20)).await?;
                self.approve("sam", request.id.as_str()).await?;
                self.at(self.clock.now() + SignedDuration::from_mins(2)).await?;
                self.read("erin", "logs:ledger", Some("batch")).await?;
            }
        }

        // On call: dave gets checkout-web at once for an incident, any day.
        if n % 2 == 0 {
            self.at(t(self, 16, 40)?).await?;
            let reason = "checkout errors spiking in the EU region";
            let ask = Ask {
                who: "dave",
                resource: "logs:checkout-web",
                role: "read",
                minutes: 30,
                reason,
                ticket: ticket(3),
                breakglass: false,
            };
            self.ask(ask).await?;
            self.at(self.clock.now() + SignedDuration::from_mins(1)).await?;
            self.read("dave", "logs:checkout-web", Some("error")).await?;
        }

        match days_left {
            // A grant held for hours for a five-minute look.
            9 => {
                self.at(t(self, 10, 30)?).await?;
                let reason = "check one customer's refund trail";
                let ask = Ask {
                    who: "alice",
                    resource: "logs:payments-api",
                    role: "read",
                    minutes: 240,
                    reason,
                    ticket: ticket(4),
                    breakglass: false,
                };
                let request = self.ask(ask).await?;
                self.at(self.clock.now() + SignedDuration::from_mins(9)).await?;
                self.approve("erin", request.id.as_str()).await?;
                self.at(self.clock.now() + SignedDuration::from_mins(2)).await?;
                self.read("alice", "logs:payments-api", Some("refund")).await?;
            }
            // Break glass at night, reviewed the next morning.
            12 => {
                self.at(t(self, 2, 10)?).await?;
                let reason = "ledger writes failing, payouts stuck";
                let ask = Ask {
                    who: "dave",
                    resource: "logs:ledger",
                    role: "read",
                    minutes: 15,
                    reason,
                    ticket: ticket(5),
                    breakglass: true,
                };
                self.ask(ask).await?;
                self.at(self.clock.now() + SignedDuration::from_mins(2)).await?;
                self.read("dave", "logs:ledger", Some("payout")).await?;
                self.at(t(self, 9, 5)?).await?;
                let grant = self.last_grant("dave", "logs:ledger").await?;
                self.broker
                    .review(&self.caller("bob")?, &grant, "seen in the incident channel, fine".into())
                    .await?;
            }
            // Break glass nobody reviews: overdue a day later.
            5 => {
                self.at(t(self, 23, 40)?).await?;
                let reason = "ledger replication lag alarms";
                let ask = Ask {
                    who: "dave",
                    resource: "logs:ledger",
                    role: "read",
                    minutes: 15,
                    reason,
                    ticket: ticket(6),
                    breakglass: true,
                };
                self.ask(ask).await?;
                self.at(self.clock.now() + SignedDuration::from_mins(1)).await?;
                self.read("dave", "logs:ledger", None).await?;
            }
            // ward is down for an upgrade while a grant expires: its end is recorded a quarter
            // of an hour late, when ward is back.
            6 => {
                self.at(t(self, 11, 0)?).await?;
                let reason = "settlement file rejected by the acquirer";
                let ask = Ask {
                    who: "alice",
                    resource: "logs:payments-api",
                    role: "read",
                    minutes: 30,
                    reason,
                    ticket: ticket(7),
                    breakglass: false,
                };
                let request = self.ask(ask).await?;
                self.at(self.clock.now() + SignedDuration::from_mins(5)).await?;
                self.approve("erin", request.id.as_str()).await?;
                self.at(self.clock.now() + SignedDuration::from_mins(2)).await?;
                self.read("alice", "logs:payments-api", Some("settlement")).await?;
                self.at(self.clock.now() + SignedDuration::from_mins(10)).await?;
                // Down for 35 minutes: nothing is processed meanwhile.
                let back = self.clock.now() + SignedDuration::from_mins(35);
                self.clock.set(back);
                self.broker.run_due(back).await?;
            }
            // A burst of refused checks: dave tries payments logs without a grant.
            3 => {
                self.at(t(self, 11, 0)?).await?;
                let dave = self.caller("dave")?;
                for _ in 0..14 {
                    self.broker.check(&dave, "dave", "read", "logs:payments-api").await?;
                    self.at(self.clock.now() + SignedDuration::from_secs(70)).await?;
                }
            }
            // A thin reason, late in the evening.
            2 => {
                self.at(t(self, 21, 15)?).await?;
                let ask = Ask {
                    who: "alice",
                    resource: "logs:checkout-web",
                    role: "read",
                    minutes: 20,
                    reason: "look",
                    ticket: None,
                    breakglass: false,
                };
                let request = self.ask(ask).await?;
                self.at(self.clock.now() + SignedDuration::from_mins(7)).await?;
                self.approve("dave", request.id.as_str()).await?;
            }
            _ => {}
        }
        Ok(())
    }

    /// The newest grant `who` holds or held on `resource`.
    async fn last_grant(&self, who: &str, resource: &str) -> Result<String, BrokerError> {
        let filter = EventFilter {
            event_type: Some(ward_core::audit::EventType::BreakglassUsed),
            resource: Some(resource.to_owned()),
            limit: 1000,
            ..Default::default()
        };
        let events = self.broker.store().events(&filter).await.map_err(BrokerError::from)?;
        events
            .iter()
            .rev()
            .find(|e| e.subject.as_deref() == Some(who))
            .and_then(|e| e.grant_id.clone())
            .ok_or_else(|| BrokerError::NotFound(format!("no break-glass grant of {who} on {resource}")))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use ward_core::audit::EventType;
    use ward_core::audit::payload::{GrantAudited, Payload, Verdict};

    use super::*;

    /// Two weeks of history hold every planted violation; the audit checkpoints recorded over
    /// them pass for most grants and fail where something was planted.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_history_leaves_audits_that_pass_and_fail() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().display().to_string();
        let path = std::path::PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/quickstart/ward.toml"
        ));
        let config = Config::load(&path, &|name| (name == "WARD_DATA_DIR").then(|| data.clone())).unwrap();
        let store: Arc<dyn Store> =
            Arc::new(ward_store_sql::SqlStore::open_sqlite(&dir.path().join("ward.db")).await.unwrap());
        let played = play(&config, store.clone(), 14).await.unwrap().unwrap();
        assert!(played.events > 100);

        let broker =
            ward_service::broker_for(&config, store.clone(), Arc::new(ward_core::SystemClock)).await.unwrap();
        let mut consumer = ward_monitor::CheckpointsConsumer::new(broker, "test");
        while consumer.step().await.unwrap().read > 0 {}
        let filter =
            EventFilter { event_type: Some(EventType::GrantAudited), limit: 1000, ..Default::default() };
        let audits: Vec<GrantAudited> = store
            .events(&filter)
            .await
            .unwrap()
            .into_iter()
            .map(|e| match Payload::parse(e.event_type, &e.details).unwrap() {
                Payload::GrantAudited(audited) => audited,
                other => panic!("{other:?}"),
            })
            .collect();
        let count = |f: &dyn Fn(&GrantAudited) -> bool| audits.iter().filter(|a| f(a)).count();
        let all_pass = count(&|a| {
            [a.justified, a.used_as_intended, a.revoked_promptly]
                == [Verdict::Pass, Verdict::Pass, Verdict::Pass]
        });
        assert!(all_pass > audits.len() / 2, "{all_pass} of {}", audits.len());
        let has = |text: &str| audits.iter().any(|a| a.reasons.iter().any(|r| r.contains(text)));
        // The thin reason and the break-glass nobody reviewed.
        assert_eq!(count(&|a| a.justified == Verdict::Fail), 2);
        assert!(has("justified: the reason says nothing specific"));
        assert!(has("justified: break-glass: not reviewed by its deadline"));
        assert!(has("justified: break-glass: reviewed by bob"));
        // The expiry recorded while ward was down.
        assert!(count(&|a| a.revoked_promptly == Verdict::Fail) >= 1);
        assert!(has("but its end reached the log 17m later"));
        // The grant held for hours for a few minutes' look.
        assert!(has("(longer than 1h: excessive-duration)"));
    }
}
