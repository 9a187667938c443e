//! Three `ward serve` processes on one PostgreSQL, as a deployment behind a load balancer runs
//! them, driven through the command line: asked on one, approved on another, checked on the
//! third; revoked on one and refused on another within the bound; one killed (`kill -9`) while
//! requests go on, and nothing acknowledged is lost (its counted checks included), every expiry
//! happens once, the chain verifies, and a new replica joins. PostgreSQL restarted under load: they fail closed while it
//! is away and recover without a restart of their own.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{Server, database_env};

/// The bound a check answers within, after a change committed on another replica.
const STALENESS: Duration = Duration::from_millis(100);
/// How often a replica adds its usage counts to the store.
const STASH_EVERY: Duration = Duration::from_secs(1);

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
    for _ in 0..5 {
        assert!(check(&c, &alice), "C counts repeated checks");
    }

    // Revoked on A: refused on B once the bound has passed.
    let (code, revoked) = a.json(&bob, &["revoke", &grant, "--reason", "over"]);
    assert_eq!((code, revoked["state"].as_str()), (0, Some("revoked")));
    std::thread::sleep(STALENESS);
    assert!(!check(&b, &alice), "B refuses what A revoked");

    // C dies (kill -9) while requests go on through A and B: everything acknowledged is there.
    // C has added its counts to the store by now (every second).
    std::thread::sleep(STASH_EVERY + Duration::from_millis(500));
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
    let mut d = replica(&a, &url);
    let id = ask(&d, &alice, "INC-99 one more look", "30m");
    assert_eq!(d.json(&bob, &["approve", &id]).0, 0);
    std::thread::sleep(STALENESS);
    assert!(check(&a, &alice) && check(&b, &alice) && check(&d, &alice));

    // The checks C counted survived it: D's last word (a summary of every replica's counts)
    // says them, well before the summary interval (a minute) has passed.
    assert_eq!(d.terminate(), Some(0));
    let (_, uses) = a.json(&carol, &["audit", "events", "--type", "access.used", "--grant", &grant]);
    let counted: u64 = uses
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["details"]["summary"] == true)
        .map(|e| e["details"]["count"].as_u64().unwrap())
        .sum();
    assert_eq!(counted, 5, "C's repeated checks are summarised: {uses}");
}

/// A replica whose data directory made it a redaction key of its own (none configured) would
/// give other pseudonyms for the same values: it is refused, naming the key, until told once
/// that its key replaces the recorded one, which the log then says.
#[test]
fn a_replica_with_a_redaction_key_of_its_own_is_refused_until_told() {
    let Some(cluster) = ward_testkit::postgres() else { return };
    let url = cluster.fresh_database();
    let a = Server::start(Some(url.clone()));
    let first_data = a.env.iter().find(|(k, _)| k == "WARD_DATA_DIR").map(|(_, v)| v.clone()).unwrap();
    let own = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(own.path().join("data")).unwrap();
    let signing = std::path::Path::new(&first_data).join("audit-signing.key");
    std::fs::copy(&signing, own.path().join("data/audit-signing.key")).unwrap();

    let mut refused = std::process::Command::new(super::WARD)
        .args(["serve", "--config"])
        .arg(&a.config)
        .env("WARD_DATABASE_URL", &url)
        .env("WARD_DATA_DIR", own.path().join("data"))
        .env("WARD_LISTEN", "127.0.0.1:0")
        .env("WARD_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while refused.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            refused.kill().unwrap();
            panic!("a replica with a redaction key of its own started");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = refused.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr.contains("redaction key") && stderr.contains("--new-redaction-key"), "{stderr}");

    let b = Server::start_with(own, super::database_env(Some(url)), &["--new-redaction-key"]);
    let carol = b.token("carol");
    let (_, changes) = a.json(&carol, &["audit", "events", "--type", "config.changed"]);
    let changes = changes.as_array().unwrap();
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0]["details"]["key"], "redaction");
}

/// PostgreSQL restarted (a fast shutdown, down for a while) as two replicas take requests:
/// while it is away they refuse rather than answer from what they knew; once it is back the
/// same processes answer again, nothing acknowledged is lost, and the chain verifies.
#[test]
fn a_postgres_restart_under_load_fails_closed_and_recovers() {
    let Some(cluster) = ward_testkit::postgres_of_its_own() else { return };
    let url = cluster.fresh_database();
    let a = Server::start(Some(url.clone()));
    let b = replica(&a, &url);
    let (alice, bob) = (a.token("alice"), a.token("bob"));
    let id = ask(&a, &alice, "INC-4312 checkout 500s", "30m");
    assert_eq!(b.json(&bob, &["approve", &id]).0, 0);
    std::thread::sleep(STALENESS);
    assert!(check(&a, &alice) && check(&b, &alice));

    // The load: asked and withdrawn on alternate replicas; what was acknowledged is noted.
    let stop = AtomicBool::new(false);
    let acknowledged = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        scope.spawn(|| {
            for n in 0.. {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let on = if n % 2 == 0 { &a } else { &b };
                let args =
                    ["request", "logs:payments-api", "--role", "read", "--for", "30m", "--reason", "load"];
                let (code, request) = on.json(&alice, &args);
                let Some(id) = request["id"].as_str().filter(|_| code == 0) else { continue };
                if on.json(&alice, &["cancel", id]).0 == 0 {
                    acknowledged.lock().unwrap().push(id.to_owned());
                }
            }
        });
        std::thread::sleep(Duration::from_secs(1));
        cluster.stop_for_restart();
        std::thread::sleep(STALENESS * 2);
        let args = ["check", "--principal", "alice", "--action", "read", "--resource", "logs:payments-api"];
        for on in [&a, &b] {
            let (code, away) = on.json(&alice, &args);
            assert_ne!(away["allowed"].as_bool(), Some(true), "no answer from what it knew before: {away}");
            assert_ne!(code, 0);
        }
        std::thread::sleep(Duration::from_secs(1));
        cluster.start_again();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !(check(&a, &alice) && check(&b, &alice)) {
            assert!(Instant::now() < deadline, "ward did not recover once the database came back");
            std::thread::sleep(Duration::from_millis(200));
        }
        // Load goes on through the recovered replicas before it stops.
        let recovered = acknowledged.lock().unwrap().len();
        while acknowledged.lock().unwrap().len() < recovered + 2 {
            assert!(Instant::now() < deadline, "requests did not go through again");
            std::thread::sleep(Duration::from_millis(100));
        }
        stop.store(true, Ordering::Relaxed);
    });
    let acknowledged = acknowledged.into_inner().unwrap();
    assert!(acknowledged.len() >= 3, "{acknowledged:?}");
    for id in &acknowledged {
        let (code, shown) = b.json(&alice, &["show", id]);
        assert_eq!((code, shown["state"].as_str()), (0, Some("cancelled")), "{shown}");
    }
    let verified = a.local(&["audit", "verify", "--format", "json"]);
    let report: Value = serde_json::from_slice(&verified.stdout).unwrap();
    assert_eq!(report["valid"], true, "{report}");
}
