//! Durable appends to the audit log, side by side in one run (the machines are noisy: read the
//! ratios):
//! - one writer, one event per transaction, on SQLite (`synchronous = FULL`), next to the
//!   machine's raw `write` + `fdatasync` rate on the same disk;
//! - the same rows inserted without the chain (no hashing, no Merkle frontier, no head row),
//!   straight through sqlx: what chaining adds; and those rows with the Merkle subtrees ward
//!   keeps (`audit_nodes`, written with the event that completes them): what keeping them adds;
//! - 16 concurrent writers (group commit), on SQLite and on PostgreSQL, next to PostgreSQL's
//!   own 16-client single-row insert rate (`pgbench`) on a cluster with durable defaults; on
//!   PostgreSQL also spread over three replicas' stores, each with its own group commit, and
//!   48 writers over them next to `pgbench` with 48 clients;
//! - one writer on PostgreSQL, next to raw `fdatasync` and to `pgbench` with one client.
//!
//! cargo bench -p ward-store-sql --bench append [-- EVENTS_PER_FIGURE]
//! cargo bench -p ward-store-sql --bench append -- replicas [ROUNDS]   (the replicas' figure alone)
//! cargo bench -p ward-store-sql --bench append -- handover [ROUNDS]   (a shape ward does not
//!   have, measured next to it: replicas hand their groups to the one that holds the chain)
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "append/handover.rs"]
mod handover;

use std::io::Write;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use serde_json::json;
use sqlx::Connection;
use ward_core::audit::{AuditEvent, EventType, NewEvent};
use ward_store::{Change, Store};
use ward_store_sql::SqlStore;

/// The allocator the `ward` binary uses, so the figures are the product's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const WRITERS: u64 = 16;
/// Rounds the one-writer figures alternate in.
const ROUNDS: u64 = 8;

fn event(n: u64) -> NewEvent {
    NewEvent {
        id: format!("evt_{n:032}"),
        event_type: EventType::AccessUsed,
        occurred_at: Timestamp::from_second(1_800_000_000 + n as i64).unwrap(),
        actor: format!("user{}", n % 500),
        subject: Some(format!("user{}", n % 500)),
        resource: Some("logs:payments-api".into()),
        request_id: Some(format!("req_{n:032}")),
        grant_id: Some(format!("grt_{n:032}")),
        reason: Some("INC-4312 checkout 500s for EU customers".into()),
        details: json!({ "role": "read", "action": "search" }),
    }
}

fn per_second(count: u64, started: Instant) -> f64 {
    count as f64 / started.elapsed().as_secs_f64()
}

/// Time spent on `count` raw appends of 400 bytes, each made durable.
fn raw_fdatasync(raw: &mut std::fs::File, count: u64) -> Duration {
    let line = [b'x'; 400];
    let started = Instant::now();
    for _ in 0..count {
        raw.write_all(&line).unwrap();
        raw.sync_data().unwrap();
    }
    started.elapsed()
}

/// Time spent on events `from..from + count`, one commit each.
async fn one_writer(store: &SqlStore, from: u64, count: u64) -> Duration {
    let started = Instant::now();
    for n in from..from + count {
        store.commit(Change { events: vec![event(n)], ..Change::default() }, Timestamp::now()).await.unwrap();
    }
    started.elapsed()
}

/// Events `from..from + count` from `writers` writers spread over `stores` (one per replica,
/// each with its own connections and group commit), one event a commit.
async fn concurrent_writers(stores: &[Arc<SqlStore>], writers: u64, from: u64, count: u64) -> f64 {
    let started = Instant::now();
    let writers: Vec<_> = (0..writers)
        .map(|w| {
            let store = stores[w as usize % stores.len()].clone();
            tokio::spawn(async move {
                for n in (from + w..from + count).step_by(writers as usize) {
                    let change = Change { events: vec![event(n)], ..Change::default() };
                    store.commit(change, Timestamp::now()).await.unwrap();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    per_second(count, started)
}

/// The same rows, one per transaction, with no chain: constant hashes, no head row. With
/// `kept_nodes`, each transaction also writes the subtrees of 16+ leaves its event completes,
/// in one statement, as ward's writer does.
async fn unchained(conn: &mut sqlx::SqliteConnection, from: u64, count: u64, kept_nodes: bool) -> Duration {
    let started = Instant::now();
    for n in from..from + count {
        let e = event(n);
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.unwrap();
        sqlx::query(
            "INSERT INTO audit_events (seq, id, type, occurred_at, recorded_at, actor, subject, resource, \
             request_id, grant_id, reason, details, prev_hash, hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(n as i64 + 1)
        .bind(e.id)
        .bind(e.event_type.as_str())
        .bind(e.occurred_at.as_millisecond())
        .bind(Timestamp::now().as_millisecond())
        .bind(e.actor)
        .bind(e.subject)
        .bind(e.resource)
        .bind(e.request_id)
        .bind(e.grant_id)
        .bind(e.reason)
        .bind(e.details.to_string())
        .bind(ward_core::audit::GENESIS_HASH)
        .bind(ward_core::audit::GENESIS_HASH)
        .execute(&mut *tx)
        .await
        .unwrap();
        let size = n + 1;
        let completed: Vec<u32> = (4..64).take_while(|level| size % (1 << level) == 0).collect();
        if kept_nodes && !completed.is_empty() {
            let rows = vec!["(?, ?, ?)"; completed.len()].join(", ");
            let mut insert = sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO audit_nodes (level, idx, hash) VALUES {rows} ON CONFLICT (level, idx) DO NOTHING"
            )));
            for level in completed {
                insert = insert
                    .bind(i64::from(level))
                    .bind((size >> level) as i64 - 1)
                    .bind(ward_core::audit::GENESIS_HASH);
            }
            insert.execute(&mut *tx).await.unwrap();
        }
        tx.commit().await.unwrap();
    }
    started.elapsed()
}

/// CPU time of chaining and Merkle bookkeeping for `count` events: each event's canonical bytes
/// hashed over its predecessor, the frontier advanced (the subtrees to keep collected), and the
/// head's frontier text written.
fn chaining_cpu(count: u64) -> Duration {
    let mut frontier = ward_core::merkle::Frontier::default();
    let mut prev_hash = ward_core::audit::GENESIS_HASH.to_owned();
    let started = Instant::now();
    for n in 0..count {
        let chained = AuditEvent::chain(event(n), n as i64 + 1, Timestamp::now(), prev_hash);
        let mut kept = Vec::new();
        frontier.push_with(ward_core::merkle::hash_from_hex(&chained.hash).unwrap(), |node, hash| {
            if node.level >= 4 {
                kept.push((node, *hash));
            }
        });
        std::hint::black_box(kept);
        let head_text = serde_json::to_string(&frontier.nodes().iter().map(hex::encode).collect::<Vec<_>>());
        std::hint::black_box(head_text.unwrap());
        prev_hash = chained.hash;
    }
    started.elapsed()
}

/// PostgreSQL's own rate: `pgbench` with `clients`, one single-row INSERT per transaction.
fn pgbench(cluster: &ward_testkit::TempPostgres, url: &str, clients: u32, seconds: u32) -> f64 {
    let database = url.rsplit('/').next().unwrap();
    let port = cluster.port().to_string();
    let connection = ["-h", "127.0.0.1", "-p", &port, "-U", "ward"];
    let created = Command::new(cluster.bin().join("psql"))
        .args(connection)
        .args(["-d", database])
        .args(["-q", "-c", "CREATE TABLE pgbench_audit (id BIGSERIAL PRIMARY KEY, event TEXT NOT NULL)"])
        .status()
        .unwrap();
    assert!(created.success());
    // A row as wide as an audit event in JSON.
    let event = serde_json::to_string(&AuditEvent::chain(
        event(0),
        1,
        Timestamp::now(),
        ward_core::audit::GENESIS_HASH.into(),
    ))
    .unwrap();
    let script = std::env::temp_dir().join(format!("ward-pgbench-{}.sql", std::process::id()));
    std::fs::write(&script, format!("INSERT INTO pgbench_audit (event) VALUES ('{event}');\n")).unwrap();
    // The database is pgbench's last argument: its `-d` is `--debug`, which prints every
    // statement it sends and slows it down.
    let output = Command::new(cluster.bin().join("pgbench"))
        .args(connection)
        .args(["-n", "-c", &clients.to_string(), "-j", "2", "-T", &seconds.to_string(), "-f"])
        .arg(&script)
        .arg(database)
        .output()
        .unwrap();
    std::fs::remove_file(&script).ok();
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "pgbench failed: {report}{}", String::from_utf8_lossy(&output.stderr));
    report
        .lines()
        .find_map(|l| l.strip_prefix("tps = ")?.split_whitespace().next()?.parse().ok())
        .expect("pgbench printed its tps")
}

/// Three replicas' stores on one database, each with its own connections and writer.
async fn three_replicas(url: &str) -> Vec<Arc<SqlStore>> {
    let mut replicas = Vec::new();
    for _ in 0..3 {
        replicas.push(Arc::new(SqlStore::connect(url).await.unwrap()));
    }
    replicas
}

/// The replicas' figure alone, in `rounds` alternating with `pgbench`: 16 writers spread over
/// three stores on a fresh database each round, then `pgbench` with 16 clients on another. The
/// ratio of the medians is steadier than one run's ratio on a noisy machine.
async fn replicas_only(rounds: usize) {
    const EVENTS: u64 = 60_000;
    let cluster = ward_testkit::durable_postgres().expect("PostgreSQL is installed");
    let (mut ward, mut pgbench_rates) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        let replicas = three_replicas(&cluster.fresh_database()).await;
        let rate = concurrent_writers(&replicas, WRITERS, 0, EVENTS).await;
        for replica in &replicas {
            replica.close().await;
        }
        let peer = pgbench(&cluster, &cluster.fresh_database(), 16, 5);
        println!(
            "round {round}: 16 writers over 3 replicas {rate:.0} events/s; pgbench, 16 clients: {peer:.0}/s; ratio {:.2}",
            rate / peer
        );
        ward.push(rate);
        pgbench_rates.push(peer);
    }
    let (ward, peer) = (median(&mut ward), median(&mut pgbench_rates));
    println!("medians: {ward:.0} events/s against pgbench {peer:.0}/s; ratio {:.2}", ward / peer);
}

/// 16 writers spread over three replicas that hand their events to the first, which holds the
/// chain: its writers commit on its store, the others' through a [`handover::Forwarder`] each.
async fn handed_over(url: &str, count: u64) -> f64 {
    let holder = Arc::new(SqlStore::connect(url).await.unwrap());
    let (endpoint, server) = handover::serve(holder.clone()).await;
    let forwarders =
        Arc::new([handover::Forwarder::start(endpoint.clone()), handover::Forwarder::start(endpoint)]);
    let started = Instant::now();
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (holder, forwarders) = (holder.clone(), forwarders.clone());
            tokio::spawn(async move {
                for n in (w..count).step_by(WRITERS as usize) {
                    match w % 3 {
                        0 => {
                            let change = Change { events: vec![event(n)], ..Change::default() };
                            holder.commit(change, Timestamp::now()).await.unwrap();
                        }
                        replica => {
                            forwarders[replica as usize - 1].append(event(n)).await;
                        }
                    }
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    let rate = per_second(count, started);
    server.abort();
    holder.close().await;
    rate
}

/// Rounds of four figures on fresh databases: 16 writers over three replicas as ward appends,
/// the same with the groups handed over to one replica, 16 writers on one process (what handing
/// over could reach at most), and `pgbench` with 16 clients.
async fn handover_against_replicas(rounds: usize) {
    const EVENTS: u64 = 60_000;
    let cluster = ward_testkit::durable_postgres().expect("PostgreSQL is installed");
    let (mut direct, mut handed, mut alone, mut peers) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 1..=rounds {
        let replicas = three_replicas(&cluster.fresh_database()).await;
        let rate = concurrent_writers(&replicas, WRITERS, 0, EVENTS).await;
        for replica in &replicas {
            replica.close().await;
        }
        let over = handed_over(&cluster.fresh_database(), EVENTS).await;
        let one = Arc::new(SqlStore::connect(&cluster.fresh_database()).await.unwrap());
        let one_rate = concurrent_writers(std::slice::from_ref(&one), WRITERS, 0, EVENTS).await;
        one.close().await;
        let peer = pgbench(&cluster, &cluster.fresh_database(), 16, 5);
        println!(
            "round {round}: 16 writers over 3 replicas {rate:.0} events/s ({:.2}); handed over to one {over:.0}/s ({:.2}); one process {one_rate:.0}/s ({:.2}); pgbench, 16 clients: {peer:.0}/s",
            rate / peer,
            over / peer,
            one_rate / peer
        );
        direct.push(rate);
        handed.push(over);
        alone.push(one_rate);
        peers.push(peer);
    }
    let peer = median(&mut peers);
    let ratio = |values: &mut Vec<f64>| {
        let rate = median(values);
        format!("{rate:.0} events/s, ratio {:.2}", rate / peer)
    };
    println!(
        "medians: over 3 replicas {}; handed over {}; one process {}; pgbench {peer:.0}/s",
        ratio(&mut direct),
        ratio(&mut handed),
        ratio(&mut alone)
    );
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let first = args.next();
    let rounds = |argument: Option<String>| argument.and_then(|a| a.parse().ok()).unwrap_or(5);
    match first.as_deref() {
        Some("replicas") => return replicas_only(rounds(args.next())).await,
        Some("handover") => return handover_against_replicas(rounds(args.next())).await,
        _ => {}
    }
    let count: u64 = first.and_then(|a| a.parse().ok()).unwrap_or(4_000);
    let dir = tempfile::tempdir_in(std::env::current_dir().unwrap()).unwrap();

    // The one-writer figures in alternating rounds, so a disk that speeds up or slows down in
    // the meantime (shared machines do) weighs on all of them alike.
    let mut raw_log = std::fs::File::create(dir.path().join("raw.log")).unwrap();
    let store = SqlStore::open_sqlite(&dir.path().join("ward.db")).await.unwrap();
    let connect = |path: std::path::PathBuf| async move {
        SqlStore::open_sqlite(&path).await.unwrap().close().await;
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&path)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
            .synchronous(sqlx::sqlite::SqliteSynchronous::Full);
        sqlx::SqliteConnection::connect_with(&options).await.unwrap()
    };
    let mut plain = connect(dir.path().join("plain.db")).await;
    let mut plain_nodes = connect(dir.path().join("plain-nodes.db")).await;
    let (mut raw_time, mut ward_time) = (Duration::ZERO, Duration::ZERO);
    let (mut plain_time, mut nodes_time) = (Duration::ZERO, Duration::ZERO);
    let round = (count / ROUNDS).max(1);
    for r in 0..ROUNDS {
        raw_time += raw_fdatasync(&mut raw_log, round);
        ward_time += one_writer(&store, r * round, round).await;
        // Which of the two goes first alternates, so neither always follows ward's own round.
        if r % 2 == 0 {
            plain_time += unchained(&mut plain, r * round, round, false).await;
            nodes_time += unchained(&mut plain_nodes, r * round, round, true).await;
        } else {
            nodes_time += unchained(&mut plain_nodes, r * round, round, true).await;
            plain_time += unchained(&mut plain, r * round, round, false).await;
        }
    }
    let rate = |time: Duration| (round * ROUNDS) as f64 / time.as_secs_f64();
    let (raw, single, plain, nodes) = (rate(raw_time), rate(ward_time), rate(plain_time), rate(nodes_time));
    println!(
        "SQLite, 1 writer: {single:.0} events/s; raw write+fdatasync: {raw:.0}/s; ratio {:.2}",
        single / raw
    );
    println!(
        "SQLite, 1 writer, same rows unchained, straight through sqlx: {plain:.0} events/s; ward's commit path takes {:.0}% longer",
        (plain / single - 1.0) * 100.0
    );
    println!(
        "the same with the Merkle subtrees ward keeps: {nodes:.0} events/s; keeping them takes {:.1}% longer",
        (plain / nodes - 1.0) * 100.0
    );
    let cpu = chaining_cpu(count).as_secs_f64() / count as f64;
    println!(
        "chaining and Merkle bookkeeping, CPU alone: {:.1} µs per event, {:.1}% of a one-writer append",
        cpu * 1e6,
        cpu * single * 100.0
    );

    let store = Arc::new(store);
    let grouped = concurrent_writers(std::slice::from_ref(&store), WRITERS, count, count * 4).await;
    println!("SQLite, {WRITERS} writers (group commit): {grouped:.0} events/s");

    let Some(cluster) = ward_testkit::durable_postgres() else {
        println!("PostgreSQL not installed: no PostgreSQL figures");
        return;
    };
    let pg = Arc::new(SqlStore::connect(&cluster.fresh_database()).await.unwrap());
    let (mut raw_time, mut pg_time) = (Duration::ZERO, Duration::ZERO);
    for r in 0..ROUNDS {
        raw_time += raw_fdatasync(&mut raw_log, round);
        pg_time += one_writer(&pg, r * round, round).await;
    }
    let (raw, pg_single) = (rate(raw_time), rate(pg_time));
    let pg_grouped = concurrent_writers(std::slice::from_ref(&pg), WRITERS, count, count * 4).await;
    // Three replicas' stores on one database: 16 writers spread over them.
    let replicas = three_replicas(&cluster.fresh_database()).await;
    let pg_replicas = concurrent_writers(&replicas, WRITERS, 0, count * 4).await;
    // As many writers on each replica as there were in all: a turn at the head packs more.
    let pg_replicas_busy = concurrent_writers(&replicas, 3 * WRITERS, count * 4, count * 4).await;
    let seconds = 10;
    let pgbench_rate = pgbench(&cluster, &cluster.fresh_database(), 16, seconds);
    let pgbench_single = pgbench(&cluster, &cluster.fresh_database(), 1, seconds);
    let pgbench_busy = pgbench(&cluster, &cluster.fresh_database(), 3 * WRITERS as u32, seconds);
    println!(
        "PostgreSQL, 1 writer: {pg_single:.0} events/s; raw write+fdatasync: {raw:.0}/s; ratio {:.2}",
        pg_single / raw
    );
    println!(
        "PostgreSQL, {WRITERS} writers (group commit): {pg_grouped:.0} events/s; pgbench, 16 clients, single-row INSERT: {pgbench_rate:.0}/s; ratio {:.2}",
        pg_grouped / pgbench_rate
    );
    println!(
        "pgbench, 1 client, single-row INSERT: {pgbench_single:.0}/s; {:.2}x raw write+fdatasync; ward on PostgreSQL, 1 writer: {:.2}x pgbench",
        pgbench_single / raw,
        pg_single / pgbench_single
    );
    println!(
        "PostgreSQL, {WRITERS} writers spread over 3 replicas' stores: {pg_replicas:.0} events/s; ratio to pgbench 16 clients {:.2}",
        pg_replicas / pgbench_rate
    );
    println!(
        "PostgreSQL, {} writers spread over 3 replicas' stores: {pg_replicas_busy:.0} events/s; pgbench, {} clients: {pgbench_busy:.0}/s; ratio {:.2}",
        3 * WRITERS,
        3 * WRITERS,
        pg_replicas_busy / pgbench_busy
    );
    println!("SQLite, {WRITERS} writers against pgbench: ratio {:.2}", grouped / pgbench_rate);
}
