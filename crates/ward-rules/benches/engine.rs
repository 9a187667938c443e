//! The rules over a synthetic log of realistic activity (requests, approvals, grants used by
//! checks, searches and summaries, expiries and releases, refusals, break-glass with reviews),
//! next to encoding the same events as JSON Lines (what `ward audit export --format jsonl`
//! does to each event after reading it): the fold must cost less than a fraction of that.
//!
//! cargo bench -p ward-rules --bench engine
//! WARD_RULES_BENCH_EVENTS=1000000 cargo bench -p ward-rules --bench engine
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/support/sim.rs"]
mod sim;

use std::hint::black_box;
use std::io::Write;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use jiff::tz::TimeZone;
use ward_core::audit::AuditEvent;
use ward_core::calendar::BusinessHours;
use ward_rules::{Eligibility, Engine, Facts, RulesConfig};

use sim::{Sim, at};

/// About `events` events of a busy ward: a grant every 30 s, each used and ended.
fn log(events: usize) -> Vec<AuditEvent> {
    let mut sim = Sim::new();
    let people = ["alice", "erin", "dave", "frank", "gus", "hana", "ivan", "judy"];
    let mut i = 0i64;
    while sim.events.len() < events {
        let t = i * 30;
        let who = people[(i % 8) as usize];
        let grant = sim.granted(t, who, 1800);
        sim.first_use(t + 2, &grant);
        for k in 0..3 {
            sim.search(t + 10 + k * 60, &grant, 25);
        }
        sim.summary(t + 240, &grant, t + 3, t + 200, 12);
        if i % 3 == 0 {
            sim.release(t + 600, &grant);
        } else {
            sim.expire(t + 1800 + (i % 5), &grant);
        }
        if i % 2 == 0 {
            sim.refused_check(t + 5, "mallory", "logs:payments-api");
        }
        if i % 200 == 0 {
            let glass = sim.breakglass(t + 7, "dave", "logs:ledger", 900, 3600);
            sim.review(t + 900, "bob", &glass);
        }
        i += 1;
    }
    sim.events
}

fn facts() -> Facts {
    let eligible = ["alice", "erin", "carol"].map(|user| Eligibility {
        user: user.into(),
        resource: "logs:payments-api".into(),
        role: "read".into(),
    });
    Facts {
        eligible: eligible.into(),
        business_hours: Some(BusinessHours::new(TimeZone::UTC, "mon-fri", "09:00-18:00").unwrap()),
        ..Facts::default()
    }
}

/// The rules over `events`: read from the store (each hashed again), or as the rules' consumer
/// folds this process's own commits (`committed_here`).
fn fold(events: &[AuditEvent], committed_here: bool) -> usize {
    let mut engine = Engine::new(RulesConfig::default(), facts());
    let mut found = 0;
    for event in events {
        let findings =
            if committed_here { engine.observe_committed_here(event) } else { engine.observe(event) };
        found += findings.len();
    }
    found + engine.advance(at(i64::from(u32::MAX))).len()
}

fn encode(events: &[AuditEvent]) -> usize {
    let mut out = Vec::with_capacity(1 << 20);
    let mut bytes = 0;
    for event in events {
        serde_json::to_writer(&mut out, event).unwrap();
        out.write_all(b"\n").unwrap();
        if out.len() > 1 << 20 {
            bytes += out.len();
            out.clear();
        }
    }
    bytes + out.len()
}

fn bench(c: &mut Criterion) {
    let size = std::env::var("WARD_RULES_BENCH_EVENTS").ok().and_then(|n| n.parse().ok()).unwrap_or(200_000);
    let events = log(size);
    let mut group = c.benchmark_group(format!("rules over {} events", events.len()));
    group.sample_size(10);
    group.throughput(Throughput::Elements(events.len() as u64));
    group.bench_function("engine (observe every event, then advance)", |b| {
        b.iter(|| black_box(fold(&events, false)))
    });
    group.bench_function("engine, events committed here (as the consumer folds its process's)", |b| {
        b.iter(|| black_box(fold(&events, true)))
    });
    group.bench_function("encode as JSON Lines (export's per-event work)", |b| {
        b.iter(|| black_box(encode(&events)))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
