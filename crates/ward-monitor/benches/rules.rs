//! What the rules cost, side by side in one run (the machines are noisy: read the ratios):
//! - `ward rules run` over a log of N events against `ward audit export --format jsonl` of the
//!   same events (reading dominates; the rules must not): target ≤ 1.5×;
//! - 16 concurrent writers committing events, with and without the consumers that evaluate them
//!   incrementally (the rules and the grants' audits) in the same process: target < 5% fewer
//!   commits per second.
//!
//! The log is real ward traffic: one cycle of a team's work (a request, a lead's approval, the
//! grant, its first use and a usage summary, a refused check, the expiry) is played through the
//! broker on the quickstart world, then repeated with fresh ids, people rotating through 2,000
//! engineers and 50 leads, a cycle starting every 10 s of business hours (Mon–Fri from 09:30
//! Berlin): a large organisation's month, where findings are the exception. The 16 writers play
//! that organisation's cycles in turn (not 16 copies of the same people), on a clock that
//! follows the cycles, so that the rules' windows slide as they would.
//!
//! cargo bench -p ward-monitor --bench rules [-- EVENTS]
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use ward_core::audit::{AuditEvent, EventType, NewEvent, Payload};
use ward_core::{Clock, ManualClock};
use ward_monitor::{
    CHECKPOINTS, CONSUMER, CheckpointsConsumer, Consumer, ConsumerTask, Findings, LogTail, Reader,
    RulesConsumer, RulesTask,
};
use ward_service::Broker;
use ward_service::export::ExportFormat;
use ward_store::{Change, EventFilter, Store};
use ward_store_sql::SqlStore;

#[path = "shared/organisation.rs"]
mod organisation;
use organisation::{config, cycle, load, start_of, t0, template};

const WRITERS: usize = 16;
const ROUNDS: usize = 3;

async fn export(store: &Arc<dyn Store>, dir: &std::path::Path) -> Duration {
    let mut file = std::io::BufWriter::new(std::fs::File::create(dir.join("export.jsonl")).unwrap());
    let started = Instant::now();
    let reader = store.clone();
    let mut pages = ward_service::export::read_ahead(10_000, move |after_seq| {
        let store = reader.clone();
        async move { store.events(&EventFilter { after_seq, limit: 10_000, ..EventFilter::default() }).await }
    });
    while let Some(page) = pages.recv().await {
        let page = page.unwrap();
        let mut chunk = Vec::with_capacity(page.len() * 600);
        ExportFormat::Jsonl.encode(&page, &mut chunk).unwrap();
        file.write_all(&chunk).unwrap();
    }
    file.flush().unwrap();
    started.elapsed()
}

/// Reading the period's pages as a rules run does (`since`/`until`), without the rules.
async fn read_period(store: &Arc<dyn Store>, since: Timestamp, until: Timestamp) -> Duration {
    let started = Instant::now();
    let reader = store.clone();
    let mut pages = ward_service::export::read_ahead(5_000, move |after_seq| {
        let store = reader.clone();
        async move {
            let filter = EventFilter {
                since: Some(since),
                until: Some(until),
                after_seq,
                limit: 5_000,
                ..EventFilter::default()
            };
            store.events(&filter).await
        }
    });
    let mut read = 0;
    while let Some(page) = pages.recv().await {
        read += std::hint::black_box(page.unwrap()).len();
    }
    assert!(read > 0);
    started.elapsed()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The time of the 16 writers' world: the start of the latest cycle begun (never going back),
/// so that the rules' windows move with the cycles as they would at their pace.
#[derive(Debug)]
struct CycleClock(AtomicI64);

impl CycleClock {
    fn reach(&self, at: Timestamp) {
        self.0.fetch_max(at.as_millisecond(), Ordering::SeqCst);
    }
}

impl Clock for CycleClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_millisecond(self.0.load(Ordering::SeqCst)).unwrap()
    }
}

/// 16 writers committing `per_writer` one-event changes each through the broker: one
/// organisation's cycles from `first` on, in turn (writer `w` plays cycles `first + w`,
/// `first + 16 + w`, …; people rotate over the cycles). Returns commits per second and the
/// cycle after the last one played.
async fn commits(
    broker: &Arc<Broker>,
    clock: &Arc<CycleClock>,
    template: &[AuditEvent],
    first: i64,
    per_writer: usize,
) -> (f64, i64) {
    let per_cycle = template.len();
    let cycles = per_writer.div_ceil(per_cycle) as i64;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..WRITERS as i64 {
        let (broker, clock) = (broker.clone(), clock.clone());
        let mine: Vec<(i64, Vec<NewEvent>)> = (0..cycles)
            .map(|k| first + k * WRITERS as i64 + w)
            .map(|index| (index, cycle(template, index)))
            .collect();
        tasks.push(tokio::spawn(async move {
            let mut left = per_writer;
            for (index, events) in mine {
                clock.reach(t0() + start_of(index));
                for event in events.into_iter().take(left) {
                    // Through the broker, as ward's own commits go: it wakes the consumers.
                    broker.commit_change(Change { events: vec![event], ..Change::default() }).await.unwrap();
                    left -= 1;
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let rate = (WRITERS * per_writer) as f64 / started.elapsed().as_secs_f64();
    (rate, first + cycles * WRITERS as i64)
}

#[tokio::main]
async fn main() {
    let events: u64 = std::env::args().filter_map(|a| a.parse().ok()).next().unwrap_or(1_000_000);
    let template = template(1).await;
    println!(
        "one cycle: {} events ({})",
        template.len(),
        template.iter().map(|e| e.event_type.as_str()).collect::<Vec<_>>().join(", ")
    );

    // --- rules run vs export --------------------------------------------------------------------
    let dir = tempfile::tempdir_in(std::env::current_dir().unwrap()).unwrap();
    let store: Arc<dyn Store> = Arc::new(SqlStore::open_sqlite(&dir.path().join("ward.db")).await.unwrap());
    let started = Instant::now();
    let written = load(&store, &template, events).await;
    println!("loaded {written} events in {:.1} s", started.elapsed().as_secs_f64());
    let end = t0() + start_of(written as i64 / template.len() as i64) + SignedDuration::from_hours(1);
    let clock = Arc::new(ManualClock::new(end));
    let broker = ward_service::broker_for(&config(dir.path()), store.clone(), clock.clone()).await.unwrap();
    let findings = Findings::new(broker.clone());
    let carol = broker.caller("carol").unwrap();
    let (mut exports, mut runs, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let exported = export(&store, dir.path()).await.as_secs_f64();
        let read = read_period(&store, t0() - SignedDuration::from_hours(1), end).await.as_secs_f64();
        println!("round {round}: reading the period's pages alone {read:.2} s");
        let started = Instant::now();
        let report = findings.run(&carol, t0() - SignedDuration::from_hours(1), Some(end)).await.unwrap();
        let ran = started.elapsed().as_secs_f64();
        println!(
            "round {round}: export {exported:.2} s ({:.0} events/s), rules run {ran:.2} s ({:.0} events/s, {} events, {:?}), ratio {:.2}",
            written as f64 / exported,
            report.events as f64 / ran,
            report.events,
            report.tally,
            ran / exported
        );
        if round == 0 {
            let opened = EventFilter {
                event_type: Some(EventType::FindingOpened),
                limit: 10_000,
                ..EventFilter::default()
            };
            let mut by_rule = std::collections::BTreeMap::<String, usize>::new();
            for event in store.events(&opened).await.unwrap() {
                *by_rule.entry(event.details["rule"].as_str().unwrap_or("?").to_owned()).or_default() += 1;
            }
            println!("  findings by rule (first 10,000): {by_rule:?}");
        }
        exports.push(exported);
        runs.push(ran);
        ratios.push(ran / exported);
    }
    println!(
        "rules run over {written} events: median {:.2} s vs export {:.2} s: ratio {:.2} (target <= 1.5)",
        median(runs),
        median(exports),
        median(ratios)
    );
    drop(findings);
    drop(broker);

    // --- 16 writers with and without the consumer ----------------------------------------------
    let dir = tempfile::tempdir_in(std::env::current_dir().unwrap()).unwrap();
    let store: Arc<dyn Store> = Arc::new(SqlStore::open_sqlite(&dir.path().join("ward.db")).await.unwrap());
    let clock = Arc::new(CycleClock(AtomicI64::new(t0().as_millisecond())));
    let broker = ward_service::broker_for(&config(dir.path()), store.clone(), clock.clone()).await.unwrap();
    // Whole cycles (7 events): a cycle cut short would leave a grant that never ends.
    let per_writer = 1001;
    // Rounds of the three settings in turn, each cycle in another order (none, rules, both;
    // rules, both, none; both, none, rules; …): the store grows every round and the machine's
    // load drifts, so each setting gets the same mean position, and the figure is the median of
    // many short rounds, not the mean of two.
    const SETTINGS: [&str; 3] =
        ["no consumer", "the rules' consumer", "the rules' and the audits' consumers"];
    let cycles: usize = std::env::var("WARD_BENCH_CYCLES").ok().and_then(|c| c.parse().ok()).unwrap_or(7);
    let mut rates: [Vec<f64>; 3] = Default::default();
    let mut cpu_per_commit: [Vec<f64>; 3] = Default::default();
    // A warm-up round first, not counted.
    let (_, mut next) = commits(&broker, &clock, &template, 0, 252).await;
    // To profile one setting: `WARD_BENCH_ONLY=0|1|2` skips the others' rounds.
    let only: Option<usize> = std::env::var("WARD_BENCH_ONLY").ok().and_then(|s| s.parse().ok());
    for round in 0..3 * cycles {
        let setting = (round + round / 3) % 3;
        if only.is_some_and(|only| only != setting) {
            continue;
        }
        // As `ward serve` runs them: reading the log's end through one tail. Only when a consumer
        // runs: a tail following the broker makes every commit share its events.
        let tail =
            (setting >= 1).then(|| Arc::new(LogTail::following(&broker, ward_monitor::consumer::TAIL)));
        let rules = tail
            .clone()
            .map(|tail| RulesTask::start(RulesConsumer::new(broker.clone(), "bench").sharing(tail)));
        let audits = tail
            .filter(|_| setting == 2)
            .map(|tail| ConsumerTask::start(CheckpointsConsumer::new(broker.clone(), "bench").sharing(tail)));
        // What the consumers missed while stopped, and the rules' replay of their reach (on every
        // start), are done before the clock starts: the figure is following the writers, not
        // catching up. A marker committed now is read once both are done.
        let details = serde_json::json!({ "bench_round": round }).as_object().unwrap().clone();
        let marker = NewEvent::new(
            format!("evt_marker_{round}"),
            clock.now(),
            "admin",
            Payload::ConfigChanged(details),
        );
        let head =
            broker.commit_change(Change { events: vec![marker], ..Change::default() }).await.unwrap()[0].seq;
        for (running, name) in [(rules.is_some(), CONSUMER), (audits.is_some(), CHECKPOINTS)] {
            while running && store.consumer_cursor(name).await.unwrap() < head {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        let cpu_before = cpu_seconds();
        let rate;
        (rate, next) = commits(&broker, &clock, &template, next, per_writer).await;
        let cpu = (cpu_seconds() - cpu_before) / (WRITERS * per_writer) as f64 * 1e6;
        if let Some(task) = rules {
            task.stop().await;
        }
        if let Some(task) = audits {
            task.stop().await;
        }
        println!(
            "round {round}: 16 writers with {}: {rate:.0} commits/s, {cpu:.0} µs of CPU per commit",
            SETTINGS[setting]
        );
        rates[setting].push(rate);
        cpu_per_commit[setting].push(cpu);
    }
    if only.is_none() {
        let [none, rules, both] = rates.map(median);
        println!(
            "16 writers, medians of {cycles} rounds each: {none:.0} commits/s with no consumer; \
         {rules:.0} with the rules ({:+.1}%), {both:.0} with the rules and the audits ({:+.1}%) \
         (target > -5%)",
            (rules / none - 1.0) * 100.0,
            (both / none - 1.0) * 100.0
        );
        let [none, rules, both] = cpu_per_commit.map(median);
        println!(
            "CPU per commit (the process's, user and system), medians: {none:.0} µs with no consumer; \
             {rules:.0} µs with the rules; {both:.0} µs with the rules and the audits"
        );
    }

    // --- each consumer's CPU per event, following the writers ----------------------------------
    // The rates above move by ±20% from round to round with the machine's load; CPU time moves
    // far less. Each repetition commits 1,008 one-event changes (16 writers × 63: fewer commits
    // than the broker keeps for a tail, so the tails hold them all) with no consumer running,
    // then lets each consumer read them as `ward serve`'s do, through a tail that followed those
    // commits: the CPU of the commits per commit, then each consumer's per event it read.
    let mut rules = RulesConsumer::new(broker.clone(), "bench")
        .sharing(Arc::new(LogTail::following(&broker, ward_monitor::consumer::TAIL)));
    let mut audits = CheckpointsConsumer::new(broker.clone(), "bench")
        .sharing(Arc::new(LogTail::following(&broker, ward_monitor::consumer::TAIL)));
    catch_up(&mut rules).await;
    catch_up(&mut audits).await;
    let (mut writers, mut by_rules, mut by_audits) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..3 * cycles {
        let started = cpu_nanos();
        (_, next) = commits(&broker, &clock, &template, next, 63).await;
        let committed = cpu_nanos();
        let read = catch_up(&mut rules).await;
        let ruled = cpu_nanos();
        by_rules.push((ruled - committed) as f64 / read as f64 / 1e3);
        let read = catch_up(&mut audits).await;
        by_audits.push((cpu_nanos() - ruled) as f64 / read as f64 / 1e3);
        writers.push((committed - started) as f64 / (WRITERS * 63) as f64 / 1e3);
    }
    let (writers, by_rules, by_audits) = (median(writers), median(by_rules), median(by_audits));
    println!(
        "CPU, medians of {} repetitions: {writers:.1} µs per commit of the writers; the rules' consumer \
         {by_rules:.1} µs per event ({:.1}% of a commit), the audits' {by_audits:.1} µs ({:.1}%)",
        3 * cycles,
        by_rules / writers * 100.0,
        by_audits / writers * 100.0
    );
}

/// Steps `consumer` until it has read all there is; the events it read.
async fn catch_up<R: Reader>(consumer: &mut Consumer<R>) -> usize {
    let mut read = 0;
    loop {
        match consumer.step().await.unwrap().read {
            0 => return read,
            more => read += more,
        }
    }
}

/// The CPU time this process's threads have used so far, in nanoseconds (from each thread's
/// `schedstat`: finer than `/proc/self/stat`'s hundredths of a second).
fn cpu_nanos() -> u64 {
    let mut total = 0;
    for task in std::fs::read_dir("/proc/self/task").unwrap() {
        // A thread may end between the listing and the read.
        if let Ok(stat) = std::fs::read_to_string(task.unwrap().path().join("schedstat")) {
            total += stat.split_whitespace().next().unwrap().parse::<u64>().unwrap();
        }
    }
    total
}

/// The CPU time this process has used so far (user and system), from `/proc/self/stat`.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // The fields after the command's closing parenthesis: utime and stime are the 12th and 13th.
    let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    // Linux reports them in USER_HZ, 100 a second on every architecture it runs on.
    ticks / 100.0
}
