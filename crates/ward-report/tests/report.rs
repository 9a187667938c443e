//! Packs made through a real broker on SQLite and PostgreSQL, over a history played with a clock
//! the test moves: the numbers are checked against the events themselves, the pack verifies
//! offline, and any change to it is caught.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use ward_core::audit::{AuditEvent, EventType};
use ward_core::{Clock, ManualClock};
use ward_report::check::check;
use ward_report::model::{EligibilityRow, Framework, Report};
use ward_report::{ReportRequest, Reports, layout};
use ward_service::{Broker, BrokerError, Caller, Config, RequestInput};
use ward_store::{EventFilter, Store};
use ward_store_sql::SqlStore;

fn config() -> Config {
    static DATA: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    let data = DATA.get_or_init(|| tempfile::tempdir().unwrap()).path().display().to_string();
    let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/quickstart/ward.toml"));
    Config::load(&path, &|name| (name == "WARD_DATA_DIR").then(|| data.clone())).unwrap()
}

fn t0() -> Timestamp {
    Timestamp::from_millisecond(1_800_000_000_000).unwrap()
}

async fn sqlite() -> Option<Arc<dyn Store>> {
    let dir = tempfile::tempdir().unwrap().keep();
    Some(Arc::new(SqlStore::open_sqlite(&dir.join("ward.db")).await.unwrap()))
}

async fn postgres() -> Option<Arc<dyn Store>> {
    let cluster = ward_testkit::postgres()?;
    Some(Arc::new(SqlStore::connect(&cluster.fresh_database()).await.unwrap()))
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite { $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { if let Some(s) = super::sqlite().await { super::$name(s).await } } )* }
        mod on_postgres { $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { if let Some(s) = super::postgres().await { super::$name(s).await } } )* }
    };
}

on_both_backends!(
    a_pack_says_what_the_events_say_and_verifies_offline,
    any_change_to_a_pack_is_caught,
    a_quiet_period_is_a_small_valid_pack,
    eligibility_at_each_end_is_worked_out_from_the_policy_set_then_in_force,
    bad_periods_and_callers_are_refused_before_any_work,
);

struct World {
    broker: Arc<Broker>,
    clock: Arc<ManualClock>,
    store: Arc<dyn Store>,
}

impl World {
    async fn new(store: Arc<dyn Store>) -> Self {
        let clock = Arc::new(ManualClock::new(t0() - SignedDuration::from_mins(20)));
        let broker = ward_service::broker_for(&config(), store.clone(), clock.clone()).await.unwrap();
        // As `ward serve` does: the policy set in force goes on record first.
        broker.record_policies_in_force().await.unwrap();
        Self { broker, clock, store }
    }

    fn who(&self, name: &str) -> Caller {
        self.broker.caller(name).unwrap()
    }

    async fn ask(&self, who: &str, minutes: u64, reason: &str) -> String {
        let ask = RequestInput {
            resource: "logs:payments-api".into(),
            role: "read".into(),
            duration_seconds: minutes * 60,
            reason: reason.into(),
            ticket: None,
            start_at: None,
            breakglass: false,
        };
        self.broker.create_request(&self.who(who), ask).await.unwrap().id.to_string()
    }

    async fn approve(&self, approver: &str, request: &str) -> String {
        self.broker.approve(&self.who(approver), request, None).await.unwrap().grant_id.unwrap().0
    }

    async fn at(&self, at: Timestamp) {
        self.clock.set(at);
        self.broker.run_due(at).await.unwrap();
    }

    /// A history around the period `[t0, t0 + 2h)`: a grant from before it that expires in it,
    /// grants used, released and revoked in it, a refused self-approval, a weak reason denied,
    /// and activity after it.
    async fn play(&self) {
        let before = self.ask("alice", 30, "INC-4300 reading the refund errors").await;
        self.approve("bob", &before).await;
        self.broker.sign_checkpoint(true).await.unwrap();
        self.at(t0()).await;
        let first = self.ask("alice", 30, "INC-4312 checkout 500s since the deploy").await;
        let used = self.approve("bob", &first).await;
        self.broker.check(&self.who("alice"), "alice", "read", "logs:payments-api").await.unwrap();
        self.at(t0() + SignedDuration::from_mins(5)).await;
        let second = self.ask("alice", 60, "INC-4313 the ledger is out of step").await;
        let refused = self.broker.approve(&self.who("alice"), &second, None).await;
        assert!(matches!(refused, Err(BrokerError::Lifecycle(_) | BrokerError::Forbidden(_))), "{refused:?}");
        let revoked = self.approve("erin", &second).await;
        self.at(t0() + SignedDuration::from_mins(10)).await;
        self.broker.release(&self.who("alice"), &used).await.unwrap();
        self.at(t0() + SignedDuration::from_mins(15)).await;
        self.broker.revoke(&self.who("admin"), &revoked, "wrong ticket".into()).await.unwrap();
        let weak = self.ask("alice", 30, "debug").await;
        self.broker.deny(&self.who("bob"), &weak, "say why".into()).await.unwrap();
        self.at(t0() + SignedDuration::from_mins(150)).await;
        let after = self.ask("alice", 30, "INC-4400 after the period").await;
        self.approve("bob", &after).await;
        self.at(t0() + SignedDuration::from_mins(180)).await;
    }

    async fn events(&self) -> Vec<AuditEvent> {
        self.store.events(&EventFilter { limit: 100_000, ..Default::default() }).await.unwrap()
    }

    async fn pack(&self, from: Timestamp, to: Timestamp, seed: &str) -> (tempfile::TempDir, Report) {
        let dir = tempfile::tempdir().unwrap();
        let request = ReportRequest { from, to, framework: Framework::Soc2, seed: Some(seed.into()) };
        Reports::new(self.broker.clone()).write(&self.who("carol"), &request, dir.path()).await.unwrap();
        let report: Report =
            serde_json::from_slice(&std::fs::read(dir.path().join(layout::REPORT_JSON)).unwrap()).unwrap();
        (dir, report)
    }
}

fn period() -> (Timestamp, Timestamp) {
    (t0(), t0() + SignedDuration::from_hours(2))
}

async fn a_pack_says_what_the_events_say_and_verifies_offline(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    w.play().await;
    let (from, to) = period();
    let (dir, report) = w.pack(from, to, "5eed").await;
    let events = w.events().await;
    let in_period: Vec<&AuditEvent> =
        events.iter().filter(|e| from <= e.occurred_at && e.occurred_at < to).collect();
    let of = |t: EventType| in_period.iter().filter(|e| e.event_type == t).count();

    // 3. Every request filed in the period, and every grant with an event in it.
    assert_eq!(report.population.requests.len(), of(EventType::RequestCreated));
    assert_eq!(report.population.requests.len(), 3);
    let states = &report.population.requests_by_state;
    assert_eq!((states.get("approved"), states.get("denied")), (Some(&2), Some(&1)), "{states:?}");
    let grant_ids: std::collections::BTreeSet<&str> =
        in_period.iter().filter_map(|e| e.grant_id.as_deref()).collect();
    assert_eq!(report.population.grants.len(), grant_ids.len());
    let grants = &report.population.grants_by_state;
    assert_eq!(
        (grants.get("released"), grants.get("revoked"), grants.get("expired")),
        (Some(&1), Some(&1), Some(&1)),
        "{grants:?}"
    );
    // The grant from before the period is there by its expiry, without a request row.
    let expired = report.population.grants.iter().find(|g| g.state == "expired").unwrap();
    assert!(report.population.requests.iter().all(|r| Some(&r.request_id) != expired.request_id.as_ref()));

    // 4. The sample: a population of three is tested whole, each grant with its events.
    assert_eq!((report.sample.population, report.sample.size, report.sample.seed.as_str()), (3, 3, "5eed"));
    for sampled in &report.sample.grants {
        let expected: Vec<i64> = in_period
            .iter()
            .filter(|e| {
                e.grant_id.as_ref() == Some(&sampled.grant.grant_id)
                    || (e.request_id.is_some() && e.request_id == sampled.grant.request_id)
            })
            .map(|e| e.seq)
            .collect();
        assert_eq!(sampled.seqs, expected, "{}", sampled.grant.grant_id);
    }
    let proofs = std::fs::read_to_string(dir.path().join(layout::PROOFS)).unwrap();
    let proven: Vec<i64> = proofs
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"].as_i64().unwrap())
        .collect();
    let mut sampled: Vec<i64> = report.sample.grants.iter().flat_map(|g| g.seqs.clone()).collect();
    sampled.sort_unstable();
    assert_eq!(proven, sampled, "one proof per event of the sample");

    // 5. The refused self-approval, the weak reason; everything approved by people.
    let kinds: Vec<&str> = report.exceptions.rows.iter().map(|e| e.kind.as_str()).collect();
    assert!(kinds.contains(&"self-approval-refused") && kinds.contains(&"weak-justification"), "{kinds:?}");
    assert_eq!(report.exceptions.approved_by_people, 2);
    assert_eq!(report.exceptions.approved_automatically, 0);

    // 6. Three ends: one automatic, on time; two on demand.
    assert_eq!(
        (report.revocation.automatic, report.revocation.manual, report.revocation.breaches),
        (1, 2, 0)
    );

    // 7. alice's check is the one use, inside its window.
    assert_eq!(report.usage.rows.iter().map(|u| u.uses).sum::<u64>(), 1);
    assert!(report.usage.outside_window.is_empty());

    // 1. Integrity: the appendix runs from the start checkpoint to the end one.
    let integrity = &report.integrity;
    let start = integrity.start.as_ref().expect("a checkpoint was signed before the period");
    assert!(start.size < in_period[0].seq as u64);
    assert!(integrity.end.size >= in_period.last().unwrap().seq as u64);
    assert_eq!(integrity.events, integrity.end.size - start.size);
    assert_eq!((integrity.events_verified, integrity.problems.len()), (integrity.events, 0));
    let appendix = std::fs::read_to_string(dir.path().join(layout::EVENTS)).unwrap();
    assert_eq!(appendix.lines().count() as u64, integrity.events);
    assert_eq!(
        std::fs::read_to_string(dir.path().join(layout::EVENTS_OCSF)).unwrap().lines().count() as u64,
        integrity.events
    );

    // 10. No configuration changed in the period; 2. the SOC 2 controls.
    assert!(report.changes.is_empty(), "{:?}", report.changes);
    assert_eq!(report.controls.len(), 5);

    // Offline: the seal, every file, the tree from one checkpoint to the other, the proofs.
    let key = w.broker.verifier_key();
    let checked = check(dir.path(), Some(&key)).unwrap();
    assert!(checked.is_valid(), "{:?}", checked.problems);
    assert_eq!(checked.events, integrity.events);
    assert_eq!(checked.proofs as usize, report.sample.grants.iter().map(|g| g.seqs.len()).sum::<usize>());
    // The same key written with its id's hex in capitals is the same key.
    let mut parts: Vec<String> = key.splitn(3, '+').map(str::to_owned).collect();
    parts[1] = parts[1].to_ascii_uppercase();
    assert!(check(dir.path(), Some(&parts.join("+"))).unwrap().is_valid());
    // Without a key, the pack's own is used (and said to be).
    let unkeyed = check(dir.path(), None).unwrap();
    assert!(unkeyed.is_valid() && unkeyed.key_from_pack);
    // Another key does not open the seal.
    let other = ward_core::checkpoint::verifier_key(
        w.broker.audit_origin(),
        &ed25519_dalek::SigningKey::from_bytes(&[9; 32]).verifying_key(),
    )
    .unwrap();
    assert!(!check(dir.path(), Some(&other)).unwrap().is_valid());

    // The page has every section; the same seed draws the same sample again.
    let html = std::fs::read_to_string(dir.path().join(layout::INDEX_HTML)).unwrap();
    for id in ward_report::render::SECTION_IDS {
        assert!(html.contains(&format!("<section id=\"{id}\">")), "{id}");
    }
    assert!(!html.contains("<script"));
    let (_, again) = w.pack(from, to, "5eed").await;
    let ids = |r: &Report| r.sample.grants.iter().map(|g| g.grant.grant_id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&again), ids(&report));
}

/// Copies `from` into a fresh directory.
fn copy(from: &Path) -> tempfile::TempDir {
    let to = tempfile::tempdir().unwrap();
    let mut stack = vec![PathBuf::new()];
    while let Some(relative) = stack.pop() {
        for entry in std::fs::read_dir(from.join(&relative)).unwrap() {
            let entry = entry.unwrap();
            let path = relative.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                std::fs::create_dir_all(to.path().join(&path)).unwrap();
                stack.push(path);
            } else {
                std::fs::copy(entry.path(), to.path().join(&path)).unwrap();
            }
        }
    }
    to
}

async fn any_change_to_a_pack_is_caught(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    w.play().await;
    let (from, to) = period();
    let (dir, _) = w.pack(from, to, "ab").await;
    let key = w.broker.verifier_key();
    let problems = |dir: &Path| check(dir, Some(&key)).unwrap().problems;
    assert!(problems(dir.path()).is_empty());

    let edited = copy(dir.path());
    let csv = edited.path().join(layout::table("grants"));
    let text = std::fs::read_to_string(&csv).unwrap().replace("revoked", "expired");
    std::fs::write(&csv, text).unwrap();
    assert!(
        problems(edited.path()).iter().any(|p| p.contains("evidence/grants.csv does not match")),
        "{:?}",
        problems(edited.path())
    );

    let added = copy(dir.path());
    std::fs::write(added.path().join("evidence/extra.csv"), "a\n").unwrap();
    assert!(problems(added.path()).iter().any(|p| p.contains("evidence/extra.csv is not in the manifest")));

    let removed = copy(dir.path());
    std::fs::remove_file(removed.path().join(layout::INDEX_HTML)).unwrap();
    assert!(problems(removed.path()).iter().any(|p| p.contains("index.html is missing")));

    // A manifest rewritten to fit an edit no longer matches its seal.
    let resealed = copy(dir.path());
    let manifest = resealed.path().join("MANIFEST.sha256");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, text.lines().skip(1).map(|l| format!("{l}\n")).collect::<String>()).unwrap();
    assert!(problems(resealed.path()).iter().any(|p| p.contains("seals another manifest")));

    // An event of the appendix edited, with the manifest and its seal made again by someone
    // holding the key: the chain and the tree still catch it.
    let forged = copy(dir.path());
    let events = forged.path().join(layout::EVENTS);
    let text = std::fs::read_to_string(&events).unwrap().replacen("INC-4312", "INC-9999", 1);
    std::fs::write(&events, text).unwrap();
    reseal(forged.path(), &w.broker);
    let found = problems(forged.path());
    assert!(found.iter().any(|p| p.contains("hash mismatch")), "{found:?}");
}

/// Writes the manifest of `dir` again and seals it with the broker's key, as an operator holding
/// the key could: only the log's own hashes can then tell an edit.
fn reseal(dir: &Path, broker: &Broker) {
    use sha2::{Digest, Sha256};
    let manifest = std::fs::read_to_string(dir.join("MANIFEST.sha256")).unwrap();
    let rewritten: String = manifest
        .lines()
        .map(|line| {
            let (_, path) = line.split_once("  ").unwrap();
            format!("{}  {path}\n", hex::encode(Sha256::digest(std::fs::read(dir.join(path)).unwrap())))
        })
        .collect();
    std::fs::write(dir.join("MANIFEST.sha256"), &rewritten).unwrap();
    let seal = broker.seal_evidence(&Sha256::digest(rewritten.as_bytes()).into()).unwrap();
    std::fs::write(dir.join("MANIFEST.sha256.sig"), seal).unwrap();
}

async fn a_quiet_period_is_a_small_valid_pack(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    w.play().await;
    let quiet = (t0() + SignedDuration::from_mins(60), t0() + SignedDuration::from_mins(90));
    let (dir, report) = w.pack(quiet.0, quiet.1, "01").await;
    assert!(report.population.requests.is_empty() && report.population.grants.is_empty());
    assert_eq!((report.sample.size, report.integrity.events), (0, 0));
    let checked = check(dir.path(), Some(&w.broker.verifier_key())).unwrap();
    assert!(checked.is_valid(), "{:?}", checked.problems);
}

async fn eligibility_at_each_end_is_worked_out_from_the_policy_set_then_in_force(store: Arc<dyn Store>) {
    let world = copy(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/quickstart")));
    let path = world.path().join("ward.toml");
    let data = config().data_dir.display().to_string();
    let config = Config::load(&path, &|name| (name == "WARD_DATA_DIR").then(|| data.clone())).unwrap();
    let clock = Arc::new(ManualClock::new(t0() - SignedDuration::from_mins(20)));
    let broker = ward_service::broker_for(&config, store.clone(), clock.clone()).await.unwrap();
    broker.record_policies_in_force().await.unwrap();
    let w = World { broker, clock, store };
    w.at(t0()).await;
    let asked = w.ask("alice", 30, "INC-4312 checkout 500s since the deploy").await;
    w.approve("bob", &asked).await;
    // In the period, frank joins the payments leads; a reload puts that in force.
    w.at(t0() + SignedDuration::from_mins(30)).await;
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "bob = { groups = [\"engineering\", \"payments-leads\"] }",
        "bob = { groups = [\"engineering\", \"payments-leads\"] }\nfrank = { groups = [\"engineering\", \"payments-leads\"] }",
    );
    std::fs::write(&path, text).unwrap();
    assert!(w.broker.reload_policies("admin").await.unwrap().changed);
    w.at(t0() + SignedDuration::from_mins(200)).await;

    let (from, to) = period();
    let (dir, report) = w.pack(from, to, "e1").await;
    let eligibility = &report.eligibility;
    let (start, end) =
        (eligibility.at_start.in_force.as_ref().unwrap(), eligibility.at_end.in_force.as_ref().unwrap());
    let events = w.events().await;
    let put_in_force =
        |t: EventType| events.iter().filter(|e| e.event_type == t).map(|e| e.seq).collect::<Vec<_>>();
    assert_eq!(put_in_force(EventType::PolicyChanged), [start.seq], "the set recorded at start");
    assert_eq!(put_in_force(EventType::DirectoryReloaded), [end.seq], "the reload in the period");
    assert_eq!(start.policy_hash, end.policy_hash, "people changed, not the policies");
    // What frank may ask for came with the reload, and is what alice (in the same groups) may.
    let of = |rows: &[EligibilityRow], user: &str| {
        rows.iter()
            .filter(|r| r.user == user)
            .map(|r| (r.resource.clone(), r.role.clone()))
            .collect::<Vec<_>>()
    };
    assert!(of(&eligibility.at_start.rows, "frank").is_empty());
    assert!(!of(&eligibility.at_end.rows, "frank").is_empty());
    assert_eq!(of(&eligibility.at_end.rows, "frank"), of(&eligibility.at_end.rows, "bob"));
    assert_eq!(of(&eligibility.gained, "frank"), of(&eligibility.at_end.rows, "frank"));
    assert!(eligibility.gained.iter().all(|r| r.user == "frank") && eligibility.lost.is_empty());
    let checked = check(dir.path(), Some(&w.broker.verifier_key())).unwrap();
    assert!(checked.is_valid(), "{:?}", checked.problems);
    assert_eq!(checked.policy_sets, 2);
    let csv = std::fs::read_to_string(dir.path().join(layout::table("eligibility"))).unwrap();
    assert!(csv.lines().any(|l| l.starts_with("frank,logs:payments-api,read,no,yes")), "{csv}");

    // Eligibility listed otherwise than the policies decide, sealed again by someone holding the
    // key: worked out again, it does not match.
    let forged = copy(dir.path());
    let mut edited = report.clone();
    edited.eligibility.at_end.rows.retain(|r| r.user != "frank");
    edited.eligibility.gained.clear();
    std::fs::write(forged.path().join(layout::REPORT_JSON), serde_json::to_vec_pretty(&edited).unwrap())
        .unwrap();
    reseal(forged.path(), &w.broker);
    let problems = check(forged.path(), Some(&w.broker.verifier_key())).unwrap().problems;
    assert!(
        problems
            .iter()
            .any(|p| p.contains("is not what the policies in eligibility/policy-at-end.json decide")),
        "{problems:?}"
    );
    // Or said to be the set from before the reload: the appendix shows the later one.
    let mut older = report.clone();
    older.eligibility.at_end = older.eligibility.at_start.clone();
    older.eligibility.at_end.at = to;
    older.eligibility.at_end.in_force.as_mut().unwrap().evidence = layout::POLICY_AT_END.into();
    older.eligibility.gained.clear();
    let stale = copy(dir.path());
    std::fs::copy(dir.path().join(layout::POLICY_AT_START), stale.path().join(layout::POLICY_AT_END))
        .unwrap();
    std::fs::write(stale.path().join(layout::REPORT_JSON), serde_json::to_vec_pretty(&older).unwrap())
        .unwrap();
    reseal(stale.path(), &w.broker);
    let problems = check(stale.path(), Some(&w.broker.verifier_key())).unwrap().problems;
    assert!(
        problems.iter().any(|p| p.contains(&format!("event {} put a later policy set in force", end.seq))),
        "{problems:?}"
    );

    // Before anything was on record, eligibility is said to be unknown, not made up.
    let (_, early) =
        w.pack(t0() - SignedDuration::from_hours(3), t0() - SignedDuration::from_hours(1), "e2").await;
    assert!(early.eligibility.at_start.in_force.is_none() && early.eligibility.at_end.in_force.is_none());
    assert!(early.eligibility.at_start.rows.is_empty() && early.eligibility.gained.is_empty());
}

async fn bad_periods_and_callers_are_refused_before_any_work(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    w.play().await;
    let reports = Reports::new(w.broker.clone());
    let dir = tempfile::tempdir().unwrap();
    let now = w.clock.now();
    let ask = |from: Timestamp, to: Timestamp, seed: Option<&str>| ReportRequest {
        from,
        to,
        framework: Framework::Iso27001,
        seed: seed.map(str::to_owned),
    };
    let refused = |result: Result<ward_report::Written, BrokerError>| match result {
        Err(
            BrokerError::Unacceptable(message)
            | BrokerError::Invalid(message)
            | BrokerError::Forbidden(message),
        ) => message,
        other => panic!("{other:?}"),
    };
    let carol = w.who("carol");
    let backwards = refused(
        reports.write(&carol, &ask(now, now - SignedDuration::from_hours(1), None), dir.path()).await,
    );
    assert!(backwards.contains("must end after it starts"), "{backwards}");
    let future = refused(
        reports
            .write(
                &carol,
                &ask(now - SignedDuration::from_hours(1), now + SignedDuration::from_hours(1), None),
                dir.path(),
            )
            .await,
    );
    assert!(future.contains("after now"), "{future}");
    let long = refused(
        reports.write(&carol, &ask(now - SignedDuration::from_hours(24 * 500), now, None), dir.path()).await,
    );
    assert!(long.contains("at most"), "{long}");
    let seed = refused(
        reports
            .write(&carol, &ask(now - SignedDuration::from_hours(1), now, Some("not hex")), dir.path())
            .await,
    );
    assert!(seed.contains("seed"), "{seed}");
    let alice = refused(
        reports
            .write(&w.who("alice"), &ask(now - SignedDuration::from_hours(1), now, None), dir.path())
            .await,
    );
    assert!(alice.contains("auditors and admins"), "{alice}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "nothing written");
}
