//! Inclusion and consistency proofs on a large log (SQLite), side by side in one run, each
//! computing what the broker answers (the proof and the root(s) it is checked against):
//! - from every leaf: read the first `size` event hashes, build the proof and the roots over them
//!   (what `Broker::inclusion_proof` / `consistency_proof` did before the tree's nodes were kept);
//! - from the kept nodes: the O(log n) subtree hashes the proof and the roots need
//!   (`Store::tree_nodes`, as the broker does now).
//!
//! The two sides alternate proof by proof and must give the same hashes.
//!
//! cargo bench -p ward-store-sql --bench proofs [-- EVENTS]   (default 200,000; the log is
//! written under $TMPDIR)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use jiff::Timestamp;
use serde_json::json;
use ward_core::audit::{EventType, NewEvent};
use ward_core::merkle::{self, Hash, NodeId};
use ward_store::{Change, Store};
use ward_store_sql::SqlStore;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const PROOFS: u64 = 9;

fn event(n: u64) -> NewEvent {
    NewEvent {
        id: format!("evt_{n:032}"),
        event_type: EventType::AccessUsed,
        occurred_at: Timestamp::from_second(1_800_000_000 + n as i64).unwrap(),
        actor: format!("user{}", n % 500),
        subject: Some(format!("user{}", n % 500)),
        resource: Some("logs:payments-api".into()),
        request_id: None,
        grant_id: Some(format!("grt_{n:032}")),
        reason: Some("INC-4312 checkout 500s for EU customers".into()),
        details: json!({ "role": "read", "action": "search" }),
    }
}

async fn from_nodes(store: &SqlStore, plan: &[Vec<NodeId>]) -> Vec<Hash> {
    let ids: Vec<NodeId> = plan.iter().flatten().copied().collect();
    let mut hashes = store.tree_nodes(&ids).await.unwrap().into_iter();
    plan.iter().map(|part| merkle::fold(&hashes.by_ref().take(part.len()).collect::<Vec<_>>())).collect()
}

/// An inclusion proof and the root it leads to, as the broker builds them now.
async fn inclusion_from_nodes(store: &SqlStore, index: u64, size: u64) -> Vec<Hash> {
    let plan = merkle::inclusion_plan(index, size).unwrap();
    from_nodes(store, &[plan, vec![merkle::range_nodes(0, size)]].concat()).await
}

/// A consistency proof and the two roots it joins, as the broker builds them now.
async fn consistency_from_nodes(store: &SqlStore, size1: u64, size: u64) -> Vec<Hash> {
    let plan = merkle::consistency_plan(size1, size).unwrap();
    let roots = vec![merkle::range_nodes(0, size1), merkle::range_nodes(0, size)];
    from_nodes(store, &[plan, roots].concat()).await
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

#[tokio::main]
async fn main() {
    let events: u64 = std::env::args().filter_map(|a| a.parse().ok()).next().unwrap_or(200_000);
    let dir = tempfile::tempdir().unwrap();
    let store = SqlStore::open_sqlite(&dir.path().join("ward.db")).await.unwrap();
    let started = Instant::now();
    for first in (0..events).step_by(1000) {
        let change =
            Change { events: (first..(first + 1000).min(events)).map(event).collect(), ..Change::default() };
        store.commit(change, Timestamp::from_second(1_800_000_000).unwrap()).await.unwrap();
    }
    println!("log of {events} events written in {:.1?}", started.elapsed());
    let size = store.head().await.unwrap().size;

    let (mut leaves_inclusion, mut nodes_inclusion) = (Vec::new(), Vec::new());
    let (mut leaves_consistency, mut nodes_consistency) = (Vec::new(), Vec::new());
    for i in 0..PROOFS {
        let index = (size / PROOFS) * i + 7;
        let started = Instant::now();
        let leaves = ward_store::leaf_hashes(&store, size).await.unwrap();
        let mut old = merkle::inclusion_proof(&leaves, index as usize).unwrap();
        old.push(merkle::root(&leaves));
        leaves_inclusion.push(started.elapsed());
        let started = Instant::now();
        let new = inclusion_from_nodes(&store, index, size).await;
        nodes_inclusion.push(started.elapsed());
        assert_eq!(old, new);

        let size1 = index + 1;
        let started = Instant::now();
        let leaves = ward_store::leaf_hashes(&store, size).await.unwrap();
        let mut old = merkle::consistency_proof(&leaves, size1 as usize).unwrap();
        old.extend([merkle::root(&leaves[..size1 as usize]), merkle::root(&leaves)]);
        leaves_consistency.push(started.elapsed());
        let started = Instant::now();
        let new = consistency_from_nodes(&store, size1, size).await;
        nodes_consistency.push(started.elapsed());
        assert_eq!(old, new);
    }
    for (what, leaves, nodes) in [
        ("inclusion", leaves_inclusion, nodes_inclusion),
        ("consistency", leaves_consistency, nodes_consistency),
    ] {
        let (leaves, nodes) = (median(leaves), median(nodes));
        println!(
            "{what} proof, tree of {size}: from every leaf {leaves:.2?}, from kept nodes {nodes:.2?} ({:.0}x faster), median of {PROOFS}",
            leaves.as_secs_f64() / nodes.as_secs_f64()
        );
    }
    // Above, each proof from the nodes follows a read of the whole log, which leaves the
    // connection's page cache and the CPU's caches cold; here they follow one another.
    let (mut inclusion, mut consistency) = (Vec::new(), Vec::new());
    for i in 0..PROOFS {
        let index = (size / PROOFS) * i + 7;
        let started = Instant::now();
        inclusion_from_nodes(&store, index, size).await;
        inclusion.push(started.elapsed());
        let started = Instant::now();
        consistency_from_nodes(&store, index + 1, size).await;
        consistency.push(started.elapsed());
    }
    println!(
        "from kept nodes, one proof after another: inclusion {:.2?}, consistency {:.2?}, median of {PROOFS}",
        median(inclusion),
        median(consistency)
    );
    store.close().await;
}
