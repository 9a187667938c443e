//! A large organisation's traffic for benchmarks (shared by `ward-monitor`'s `rules` bench and
//! `ward-report`'s `report` bench, which include this file): one cycle of a team's work (a
//! request, a lead's approval, the grant, its uses and usage summaries, a refused check, the
//! expiry) played through the broker on the quickstart world, then repeated with fresh ids,
//! people rotating through 2,000 engineers and 50 leads, a cycle starting every 10 s of business
//! hours (Mon–Fri from 09:30 Berlin).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;

use futures_util::StreamExt;
use jiff::{SignedDuration, Timestamp};
use serde_json::Value;
use ward_core::audit::{AuditEvent, EventType, NewEvent};
use ward_core::{Clock, ManualClock};
use ward_service::{Config, RequestInput};
use ward_store::{Change, EventFilter, Store};
use ward_store_sql::SqlStore;

/// A cycle starts every this many seconds ...
pub const CYCLE_SECONDS: i64 = 10;
/// ... this many times a working day (7 hours).
pub const CYCLES_PER_DAY: i64 = 7 * 3600 / CYCLE_SECONDS;

pub fn config(data: &std::path::Path) -> Config {
    let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/quickstart/ward.toml"));
    let data = data.display().to_string();
    Config::load(&path, &|name| (name == "WARD_DATA_DIR").then(|| data.clone())).unwrap()
}

/// Monday 2027-01-18, 09:30 in Berlin.
pub fn t0() -> Timestamp {
    "2027-01-18T08:30:00Z".parse().unwrap()
}

/// When cycle `k` starts, after `t0`: working days only.
pub fn start_of(k: i64) -> SignedDuration {
    let (day, slot) = (k / CYCLES_PER_DAY, k % CYCLES_PER_DAY);
    let calendar_days = day / 5 * 7 + day % 5;
    SignedDuration::from_hours(24 * calendar_days) + SignedDuration::from_secs(slot * CYCLE_SECONDS)
}

/// One cycle of real events, played through the broker, with `summaries` usage summaries of the
/// grant (each after more checks).
pub async fn template(summaries: usize) -> Vec<AuditEvent> {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqlStore::open_sqlite(&dir.path().join("ward.db")).await.unwrap());
    let clock = Arc::new(ManualClock::new(t0()));
    let broker = ward_service::broker_for(&config(dir.path()), store.clone(), clock.clone()).await.unwrap();
    let before = store.head().await.unwrap().size as i64;
    let (alice, bob, dave) =
        (broker.caller("alice").unwrap(), broker.caller("bob").unwrap(), broker.caller("dave").unwrap());
    let input = RequestInput {
        resource: "logs:payments-api".into(),
        role: "read".into(),
        duration_seconds: 600,
        reason: "INC-4312 failed card captures in the EU".into(),
        ticket: Some("INC-4312".into()),
        start_at: None,
        breakglass: false,
    };
    let request = broker.create_request(&alice, input).await.unwrap();
    clock.advance(SignedDuration::from_mins(3));
    broker.approve(&bob, request.id.as_str(), None).await.unwrap();
    let approved_at = clock.now();
    clock.advance(SignedDuration::from_mins(1));
    for _ in 0..3 {
        broker.check(&alice, "alice", "read", "logs:payments-api").await.unwrap();
        clock.advance(SignedDuration::from_secs(40));
    }
    broker.check(&dave, "dave", "read", "logs:payments-api").await.unwrap();
    broker.flush_usage().await.unwrap();
    for _ in 1..summaries {
        broker.check(&alice, "alice", "read", "logs:payments-api").await.unwrap();
        broker.check(&alice, "alice", "read", "logs:payments-api").await.unwrap();
        clock.advance(SignedDuration::from_secs(20));
        broker.flush_usage().await.unwrap();
    }
    // The scheduler ends the grant on time (late, it would be `revocation-overdue` every time).
    clock.advance((approved_at + SignedDuration::from_secs(601)).duration_since(clock.now()));
    broker.run_due(clock.now()).await.unwrap();
    let all = store
        .events(&EventFilter { after_seq: Some(before), limit: 1000, ..Default::default() })
        .await
        .unwrap();
    all.into_iter().filter(|e| e.event_type != EventType::AuditCheckpoint).collect()
}

/// Cycle `k` of the template: fresh ids, other people, times moved by `k` cycles.
pub fn cycle(template: &[AuditEvent], k: i64) -> Vec<NewEvent> {
    let shift = start_of(k);
    let people = [
        ("alice", format!("eng{}", k % 2000)),
        ("bob", format!("lead{}", k % 50)),
        ("dave", format!("eng{}", (k + 1000) % 2000)),
    ];
    let ids: Vec<String> =
        template.iter().flat_map(|e| [e.request_id.clone(), e.grant_id.clone()]).flatten().collect();
    let text = |s: &str| -> String {
        if let Some((_, to)) = people.iter().find(|(from, _)| *from == s) {
            return to.clone();
        }
        if ids.iter().any(|id| id == s) {
            return format!("{s}{k:x}");
        }
        match s.parse::<Timestamp>() {
            Ok(at) => (at + shift).to_string(),
            Err(_) => s.to_owned(),
        }
    };
    fn walk(value: &mut Value, text: &dyn Fn(&str) -> String) {
        match value {
            Value::String(s) => *s = text(s),
            Value::Array(items) => items.iter_mut().for_each(|v| walk(v, text)),
            Value::Object(map) => map.values_mut().for_each(|v| walk(v, text)),
            _ => {}
        }
    }
    template
        .iter()
        .map(|e| {
            let mut details = e.details.clone();
            walk(&mut details, &text);
            NewEvent {
                id: format!("{}{k:x}", e.id),
                event_type: e.event_type,
                occurred_at: e.occurred_at + shift,
                actor: text(&e.actor),
                subject: e.subject.as_deref().map(text),
                resource: e.resource.clone(),
                request_id: e.request_id.as_deref().map(text),
                grant_id: e.grant_id.as_deref().map(text),
                reason: e.reason.clone(),
                details,
            }
        })
        .collect()
}

/// Writes `events` events of cycles, committed as they would be: each 30 s of cycles in one
/// commit recorded at the time its last event occurred (a commit holding hours of events would
/// record every grant's end hours late: `revocation-overdue` every time). 64 commits are in
/// flight at once, so that the store's group commit shares the disk's syncs between them.
pub async fn load(store: &Arc<dyn Store>, template: &[AuditEvent], events: u64) -> u64 {
    const CYCLES_PER_COMMIT: i64 = 30 / CYCLE_SECONDS;
    let mut written = 0u64;
    let mut k = 0i64;
    let mut batches = Vec::new();
    while written < events {
        let mut batch = Vec::new();
        for _ in 0..CYCLES_PER_COMMIT {
            if written + batch.len() as u64 >= events {
                break;
            }
            batch.extend(cycle(template, k));
            k += 1;
        }
        written += batch.len() as u64;
        batches.push(batch);
    }
    // In order: `buffered` starts them in turn (a commit that came first with a later time would
    // move the rules' time past the grants of the ones behind it).
    futures_util::stream::iter(batches)
        .map(|batch| {
            let at = batch.iter().map(|e| e.occurred_at).max().unwrap();
            store.commit(Change { events: batch, ..Change::default() }, at)
        })
        .buffered(64)
        .for_each(|committed| {
            committed.unwrap();
            std::future::ready(())
        })
        .await;
    written
}
