//! Three `ward serve` processes on one PostgreSQL, as a deployment behind a load balancer runs
//! them, driven through the command line: asked on one, approved on another, checked on the
//! third; revoked on one and refused on another within the bound; one killed (`kill -9`) while
//! requests go on, and nothing acknowledged is lost, every expiry happens once, the chain
//! verifies, and a new replica joins.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::{Server, database_env};

/// The bound a check answers within, after a change committed on another replica.
const STALENESS: Duration = Duration::from_millis(100);

/// A replica of `first`'s deployment: the same world, store and keys (the first one's data
/// directory holds them).
fn replica(first: &Server, database_url: &str) -> Server {
    let data = first.env.iter().find(|(k, _)| k == "WARD_DATA_DIR").map(|(_, v)| v.clone()).unwrap();
    let mut env = database_env(Some(database_url.to_owned()));
    env.push(("WARD_DATA_DIR".to_owned(), data));
    Server::start_in(tempfile::tempdir().unwrap(), env)
}

fn check(on: &Server, token: &str) -> bool {
    let args = ["check", "--principal", "alice", "--action", "read", "--resource", "logs:payments-api"];
    on.json(token, &args).1["allowed"].as_bool().unwrap_or(false)
}

fn ask(on: &Server, alice: &str, reason: &str, duration: &str) -> String {
    let args = ["request", "logs:payments-api", "--role", "read", "--for", duration, "--reason", reason];
    let (code, request) = on.json(alice, &args);
    assert_eq!(code, 0, "{request}");
    request["id"].as_str().unwrap().to_owned()
}

#[test]
fn three_replicas_on_one_postgres_act_as_one_ward() {
    let Some(cluster) = ward_testkit::postgres() else { return };
    let url = cluster.fresh_database();
    let a = Server::start(Some(url.clone()));
    let (b, mut c) = (replica(&a, &url), replica(&a, &url));
    let (alice, bob, carol) = (a.token("alice"), a.token("bob"), a.token("carol"));

    // Asked on A, approved on B, checked on C.
    let id = ask(&a, &alice, "INC-4312 checkout 500s", "30m");
    let (code, approved) = b.json(&bob, &["approve", &id]);
    assert_eq!(code, 0, "{approved}");
    let grant = approved["grant_id"].as_str().unwrap().to_owned();
    std::thread::sleep(STALENESS);
    assert!(check(&c, &alice), "C allows what B granted");

    // Revoked on A: refused on B once the bound has passed.
    let (code, revoked) = a.json(&bob, &["revoke", &grant, "--reason", "over"]);
    assert_eq!((code, revoked["state"].as_str()), (0, Some("revoked")));
    std::thread::sleep(STALENESS);
    assert!(!check(&b, &alice), "B refuses what A revoked");

    // C dies (kill -9) while requests go on through A and B: everything acknowledged is there.
    let mut acknowledged = Vec::new();
    for round in 0..12 {
        if round == 4 {
            c.child.kill().unwrap();
            c.child.wait().unwrap();
        }
        let on = if round % 2 == 0 { &a } else { &b };
        let id = ask(on, &alice, &format!("INC-{round} short look"), "2s");
        let (code, approved) = a.json(&bob, &["approve", &id]);
        assert_eq!(code, 0, "{approved}");
        acknowledged.push(approved["grant_id"].as_str().unwrap().to_owned());
    }
    for grant in &acknowledged {
        let (code, shown) = b.json(&alice, &["show", grant]);
        assert_eq!(code, 0, "an acknowledged grant is there: {shown}");
    }

    // Every short grant expires, once, with two schedulers (and a dead one) sharing the work.
    let deadline = Instant::now() + Duration::from_secs(30);
    let expired = loop {
        let (_, events) = a.json(&carol, &["audit", "events", "--type", "grant.expired", "--limit", "1000"]);
        let events = events.as_array().cloned().unwrap_or_default();
        if events.len() >= acknowledged.len() {
            break events;
        }
        assert!(
            Instant::now() < deadline,
            "not every grant expired: {} of {}",
            events.len(),
            acknowledged.len()
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    let mut grants: Vec<&str> = expired.iter().filter_map(|e| e["grant_id"].as_str()).collect();
    grants.sort_unstable();
    let before = grants.len();
    grants.dedup();
    assert_eq!(before, grants.len(), "no grant expired twice");
    for grant in &acknowledged {
        assert!(grants.contains(&grant.as_str()), "{grant} expired");
    }

    // One chain, appended by all: it verifies.
    let verified = a.local(&["audit", "verify", "--format", "json"]);
    let report: Value = serde_json::from_slice(&verified.stdout).unwrap();
    assert_eq!(report["valid"], true, "{report}");

    // A new replica joins and answers at once.
    let d = replica(&a, &url);
    let id = ask(&d, &alice, "INC-99 one more look", "30m");
    assert_eq!(d.json(&bob, &["approve", &id]).0, 0);
    std::thread::sleep(STALENESS);
    assert!(check(&a, &alice) && check(&b, &alice) && check(&d, &alice));

    // The database goes away (every connection cut, new ones refused): checks fail closed; it
    // comes back: the same processes answer again, without a restart.
    let database = url.rsplit('/').next().unwrap().to_owned();
    let psql = |sql: &str| {
        let out = std::process::Command::new(cluster.bin().join("psql"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &cluster.port().to_string(),
                "-U",
                "ward",
                "-d",
                "postgres",
                "-c",
                sql,
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    psql(&format!("ALTER DATABASE {database} ALLOW_CONNECTIONS false"));
    psql(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}' AND pid <> pg_backend_pid()"
    ));
    std::thread::sleep(STALENESS * 2);
    let args = ["check", "--principal", "alice", "--action", "read", "--resource", "logs:payments-api"];
    let (code, away) = a.json(&alice, &args);
    assert_ne!(away["allowed"].as_bool(), Some(true), "no answer from what A knew before: {away}");
    assert_ne!(code, 0);
    psql(&format!("ALTER DATABASE {database} ALLOW_CONNECTIONS true"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !(check(&a, &alice) && check(&b, &alice)) {
        assert!(Instant::now() < deadline, "ward did not recover once the database came back");
        std::thread::sleep(Duration::from_millis(200));
    }
}
