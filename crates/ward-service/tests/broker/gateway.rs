//! The debug-log gateway through the broker: what a read puts on record, how long it may run,
//! how many run at once. The quickstart's log files are read (the backend does not matter: on
//! SQLite).

use std::collections::BTreeSet;

use ward_service::broker::{LogItem, LogQuery};

use super::*;

/// The `<email:…>` pseudonyms in `text`.
fn emails(text: &str) -> BTreeSet<String> {
    let pseudonym = regex::Regex::new(r"<email:[0-9a-f]+>").unwrap();
    pseudonym.find_iter(text).map(|m| m.as_str().to_owned()).collect()
}

/// Searching `a@x.com|b@y.com|…` and reading one's own `access.used` event must not map each
/// guessed value to the pseudonym it has in the lines: the pattern is recorded under a key of
/// the audit log's own, not the grant's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_pattern_on_record_links_no_value_to_its_pseudonym() {
    let w = World::new(sqlite().await.unwrap()).await;
    w.granted().await;
    let alice = w.who("alice");
    let guesses = "jane.doe@example.com|omar.haddad@example.org|nobody@example.net";
    let query = LogQuery { pattern: Some(guesses.into()), ..LogQuery::default() };
    w.broker.search_logs(&alice, "logs:payments-api", query).await.unwrap();
    let everything = w.broker.search_logs(&alice, "logs:payments-api", LogQuery::default()).await.unwrap();
    let text: Vec<&str> = everything.lines.iter().map(|l| l.text.as_str()).collect();
    let in_lines = emails(&text.join("\n"));
    assert!(in_lines.len() >= 2, "jane's and omar's: {in_lines:?}");

    let filter = EventFilter { event_type: Some(EventType::AccessUsed), limit: 100, ..Default::default() };
    let own = w.broker.events(&alice, filter).await.unwrap();
    let recorded = own.iter().find_map(|e| e.details["pattern"].as_str()).expect("the pattern is on record");
    let on_record = emails(recorded);
    assert_eq!(on_record.len(), 3, "every guessed value is redacted on record: {recorded}");
    assert!(on_record.is_disjoint(&in_lines), "{recorded} names pseudonyms of the lines: {in_lines:?}");
    assert!(!recorded.contains("jane.doe"), "{recorded}");
}

/// A clock that, once armed, moves on by `step` each time it is read: a search that looks at
/// it as it reads sees time pass.
struct Ticking {
    clock: ManualClock,
    step: std::sync::Mutex<Option<SignedDuration>>,
}

impl Ticking {
    fn new() -> Arc<Self> {
        Arc::new(Self { clock: ManualClock::new(t0()), step: std::sync::Mutex::new(None) })
    }

    fn arm(&self, step: SignedDuration) {
        *self.step.lock().unwrap() = Some(step);
    }
}

impl Clock for Ticking {
    fn now(&self) -> Timestamp {
        let now = self.clock.now();
        if let Some(step) = *self.step.lock().unwrap() {
            self.clock.advance(step);
        }
        now
    }
}

/// The quickstart, with `logs:payments-api`'s files in `dir` (`x.log*`), on SQLite.
async fn world_with_logs(
    dir: &std::path::Path,
    clock: Arc<dyn Clock>,
    tweak: impl FnOnce(&mut Config),
) -> (Arc<Broker>, Arc<dyn Store>) {
    let mut config = config_with_logs(dir);
    tweak(&mut config);
    let store = sqlite().await.unwrap();
    let broker = ward_service::broker_for(&config, store.clone(), clock).await.unwrap();
    (broker, store)
}

/// The quickstart, with `logs:payments-api`'s files in `dir` (`x.log*`).
fn config_with_logs(dir: &std::path::Path) -> Config {
    let mut config = config();
    let source = ward_logs::Source::new(vec![dir.join("x.log*")]).unwrap();
    config.logs.sources.insert("logs:payments-api".into(), source);
    config
}

/// alice's approved `read` grant on payments-api (30 minutes).
async fn grant_alice(broker: &Broker) {
    let request = broker
        .create_request(&broker.caller("alice").unwrap(), ask("logs:payments-api", "read", 1800))
        .await
        .unwrap();
    let approved = broker.approve(&broker.caller("bob").unwrap(), request.id.as_str(), None).await.unwrap();
    assert_eq!(approved.state, RequestState::Approved);
}

async fn access_used(store: &Arc<dyn Store>) -> Vec<AuditEvent> {
    let filter = EventFilter { event_type: Some(EventType::AccessUsed), limit: 100, ..Default::default() };
    let events = store.events(&filter).await.unwrap();
    events_read_as_their_types(&events);
    events
}

/// A search for what is not there stops at its deadline (20 s by default), as it reads. The
/// file is large enough that the 20 chunks read by then, with what the redaction threads have
/// read ahead (under 9 MB at eight threads, as many as a large machine has), stay under half.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_stops_at_its_deadline_even_when_nothing_matches() {
    let dir = tempfile::tempdir().unwrap();
    let line = "2026-11-21T10:00:00Z INFO payments-api nothing to see here\n";
    std::fs::write(dir.path().join("x.log"), line.repeat(500_000)).unwrap();
    let clock = Ticking::new();
    let (broker, store) = world_with_logs(dir.path(), clock.clone(), |_| {}).await;
    grant_alice(&broker).await;
    // Each look at the clock is a second later: 20 looks pass the deadline, and the grant has
    // 30 minutes.
    clock.arm(SignedDuration::from_secs(1));
    let query = LogQuery { pattern: Some("absent".into()), ..LogQuery::default() };
    let found =
        broker.search_logs(&broker.caller("alice").unwrap(), "logs:payments-api", query).await.unwrap();
    assert!(found.lines.is_empty());
    let read = access_used(&store).await;
    let search = read.iter().find(|e| e.details["action"] == "logs.search").unwrap();
    assert_eq!(search.details["timed_out"], true, "{}", search.details);
    let size = std::fs::metadata(dir.path().join("x.log")).unwrap().len();
    assert!(search.details["scanned"].as_u64().unwrap() < size / 2, "{}", search.details);
}

/// Past the grant's end a search stops and returns nothing, matching lines or not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_stops_at_its_grants_end_even_when_nothing_matches() {
    let dir = tempfile::tempdir().unwrap();
    let line = "2026-11-21T10:00:00Z INFO payments-api nothing to see here\n";
    std::fs::write(dir.path().join("x.log"), line.repeat(100_000)).unwrap();
    let clock = Ticking::new();
    let (broker, store) =
        world_with_logs(dir.path(), clock.clone(), |c| c.logs.limits.search_timeout_seconds = 24 * 3600)
            .await;
    grant_alice(&broker).await;
    clock.arm(SignedDuration::from_mins(1));
    let query = LogQuery { pattern: Some("absent".into()), ..LogQuery::default() };
    let refused =
        broker.search_logs(&broker.caller("alice").unwrap(), "logs:payments-api", query).await.unwrap_err();
    assert!(
        matches!(&refused, BrokerError::Forbidden(why) if why.contains("ended while the logs were read")),
        "{refused}"
    );
    assert!(access_used(&store).await.iter().all(|e| e.details["action"] != "logs.search"));
}

/// The quickstart's bug: `x.log.1` modified after `x.log` (copied, checked out) must not pass
/// for the newest file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tail_shows_the_newest_lines_of_the_live_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("x.log"), "2026-11-21T10:00:00Z new one\n2026-11-21T10:00:01Z new two\n")
        .unwrap();
    std::fs::write(
        dir.path().join("x.log.1"),
        "2026-11-20T10:00:00Z old one\n2026-11-20T10:00:01Z old two\n",
    )
    .unwrap();
    let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(dir.path().join("x.log"))
        .unwrap()
        .set_modified(hour_ago)
        .unwrap();
    let (broker, store) = world_with_logs(dir.path(), Arc::new(ManualClock::new(t0())), |_| {}).await;
    grant_alice(&broker).await;
    let mut tail = broker
        .tail_logs(&broker.caller("alice").unwrap(), "logs:payments-api", 2, false, false)
        .await
        .unwrap();
    let mut items = Vec::new();
    while let Some(item) = tail.recv().await {
        items.push(item);
    }
    let lines: Vec<String> = items
        .iter()
        .filter_map(|i| match i {
            ward_service::broker::LogItem::Line(l) => Some(format!("{}: {}", l.source, l.text)),
            _ => None,
        })
        .collect();
    assert_eq!(lines, ["x.log: 2026-11-21T10:00:00Z new one", "x.log: 2026-11-21T10:00:01Z new two"]);
    let read = access_used(&store).await;
    let tail = read.iter().find(|e| e.details["action"] == "logs.tail").unwrap();
    assert_eq!(
        (tail.details["lines"].as_u64(), tail.details["files"].as_u64()),
        (Some(2), Some(1)),
        "{}",
        tail.details
    );
}

/// Followed tails are limited per user (and in all): past the limit 429 with a time to retry,
/// and the slot comes back when a follow ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followed_tails_are_limited_per_user() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("x.log"), "2026-11-21T10:00:00Z one\n").unwrap();
    let (broker, _) = world_with_logs(dir.path(), Arc::new(ManualClock::new(t0())), |c| {
        c.logs.limits.max_follows_per_user = 1
    })
    .await;
    grant_alice(&broker).await;
    let alice = broker.caller("alice").unwrap();
    let first = broker.tail_logs(&alice, "logs:payments-api", 1, true, false).await.unwrap();
    let busy = broker.tail_logs(&alice, "logs:payments-api", 1, true, false).await.unwrap_err();
    assert!(
        matches!(&busy, BrokerError::Busy { retry_after_seconds: 30, message } if message.contains("followed tails")),
        "{busy}"
    );
    // A tail that is not followed is counted apart.
    assert!(broker.tail_logs(&alice, "logs:payments-api", 1, false, false).await.is_ok());
    drop(first);
    let again = async {
        loop {
            match broker.tail_logs(&alice, "logs:payments-api", 1, true, false).await {
                Ok(receiver) => return receiver,
                Err(BrokerError::Busy { .. }) => {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await
                }
                Err(other) => panic!("{other}"),
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), again).await.expect("the slot came back");
}

/// A followed tail reads and redacts off the async runtime: while it works through megabytes
/// of new lines, `check` (here on a runtime of one thread) still answers at once.
#[tokio::test]
async fn a_followed_tail_does_not_stall_the_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.log");
    std::fs::write(&path, "2026-11-21T10:00:00Z start\n").unwrap();
    let (broker, _) = world_with_logs(dir.path(), Arc::new(ManualClock::new(t0())), |_| {}).await;
    grant_alice(&broker).await;
    let alice = broker.caller("alice").unwrap();
    let mut tail = broker.tail_logs(&alice, "logs:payments-api", 1, true, false).await.unwrap();
    let reader = tokio::spawn(async move { while tail.recv().await.is_some() {} });
    assert!(broker.check(&alice, "alice", "read", "logs:payments-api").await.unwrap().allowed);
    // A megabyte of secrets at once: one poll reads and redacts it all (seconds, unoptimised).
    let line = "2026-11-21T10:00:01Z ERROR checkout for jane.doe@example.com card=4111 1111 1111 1111 token=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJlc2lnbmF0dXJl password=hunter2\n";
    std::io::Write::write_all(
        &mut std::fs::OpenOptions::new().append(true).open(&path).unwrap(),
        line.repeat((1 << 20) / line.len()).as_bytes(),
    )
    .unwrap();
    // A stalled runtime shows as a round (a check, then a short sleep) that takes long.
    let mut slowest = std::time::Duration::ZERO;
    let watching = std::time::Instant::now();
    while watching.elapsed() < std::time::Duration::from_secs(4) {
        let round = std::time::Instant::now();
        assert!(broker.check(&alice, "alice", "read", "logs:payments-api").await.unwrap().allowed);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        slowest = slowest.max(round.elapsed());
    }
    assert!(slowest < std::time::Duration::from_millis(750), "a round of check took {slowest:?}");
    reader.abort();
}

/// The quickstart copied into a folder of its own, so that its people and policies can be
/// changed and reloaded, with `logs:payments-api`'s live file `x.log` in it.
async fn reloadable_world_with_logs() -> (tempfile::TempDir, Arc<Broker>, Arc<dyn Store>) {
    let world = tempfile::tempdir().unwrap();
    let quickstart = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/quickstart"));
    copy_dir(&quickstart, world.path());
    std::fs::create_dir_all(world.path().join("data")).unwrap();
    let data_dir = world.path().join("data").display().to_string();
    let path = world.path().join("ward.toml");
    let mut config =
        Config::load(&path, &|name| (name == "WARD_DATA_DIR").then(|| data_dir.clone())).unwrap();
    std::fs::write(world.path().join("x.log"), "2026-11-21T10:00:00Z before\n").unwrap();
    let source = ward_logs::Source::new(vec![world.path().join("x.log*")]).unwrap();
    config.logs.sources.insert("logs:payments-api".into(), source);
    let store = sqlite().await.unwrap();
    let broker =
        ward_service::broker_for(&config, store.clone(), Arc::new(ManualClock::new(t0()))).await.unwrap();
    grant_alice(&broker).await;
    (world, broker, store)
}

fn append(path: &std::path::Path, text: &str) {
    std::io::Write::write_all(
        &mut std::fs::OpenOptions::new().append(true).open(path).unwrap(),
        text.as_bytes(),
    )
    .unwrap();
}

/// The next item of a followed tail (at most 10 s away).
async fn next_item(tail: &mut tokio::sync::mpsc::Receiver<LogItem>) -> Option<LogItem> {
    tokio::time::timeout(std::time::Duration::from_secs(10), tail.recv()).await.expect("an item within 10 s")
}

/// Follows `logs:payments-api` as `caller` and waits until a line written now comes through:
/// the follow is running.
async fn following(
    broker: &Arc<Broker>,
    caller: &Caller,
    log: &std::path::Path,
) -> tokio::sync::mpsc::Receiver<LogItem> {
    let mut tail = broker.tail_logs(caller, "logs:payments-api", 1, true, false).await.unwrap();
    append(log, "2026-11-21T10:00:01Z live\n");
    loop {
        match next_item(&mut tail).await {
            Some(LogItem::Line(line)) if line.text.ends_with("live") => return tail,
            Some(LogItem::End(why)) => panic!("ended at once: {why}"),
            Some(_) => {}
            None => panic!("closed at once"),
        }
    }
}

/// Waits for a followed tail to end; returns the lines that came before the end, and why it ended.
async fn end_of(tail: &mut tokio::sync::mpsc::Receiver<LogItem>) -> (Vec<String>, String) {
    let mut lines = Vec::new();
    loop {
        match next_item(tail).await {
            Some(LogItem::Line(line)) => lines.push(line.text),
            Some(LogItem::End(why)) => return (lines, why),
            Some(LogItem::Summary { .. }) => {}
            None => panic!("closed without an end"),
        }
    }
}

/// The `ended` of the `logs.follow` event.
async fn follow_ended(store: &Arc<dyn Store>) -> String {
    let read = access_used(store).await;
    let follow = read.iter().find(|e| e.details["action"] == "logs.follow").expect("the follow is on record");
    follow.details["ended"].as_str().unwrap().to_owned()
}

/// A followed tail ends when the API token it was opened with is revoked: the next line
/// written is not sent, and the end is on record with its reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_followed_tail_ends_when_its_token_is_revoked() {
    let (world, broker, store) = reloadable_world_with_logs().await;
    let operator = Broker::local_operator("test");
    let (token, record) = broker.tokens().mint(&operator, "alice", 3600, None).await.unwrap();
    let alice = broker.tokens().authenticate(&token).await.unwrap();
    let log = world.path().join("x.log");
    let mut tail = following(&broker, &alice, &log).await;
    broker.tokens().revoke(&operator, &record.id).await.unwrap();
    append(&log, "2026-11-21T10:00:02Z written after the revocation\n");
    let (lines, why) = end_of(&mut tail).await;
    assert!(lines.is_empty(), "{lines:?}");
    assert!(why.contains(&record.id) && why.contains("revoked"), "{why}");
    assert_eq!(follow_ended(&store).await, why);
}

/// A tail followed through one ward process ends when another process sharing the store
/// revokes its grant: once the follower's bound has passed, nothing written goes out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_followed_tail_ends_when_another_process_revokes_its_grant() {
    let world = tempfile::tempdir().unwrap();
    std::fs::write(world.path().join("x.log"), "2026-11-21T10:00:00Z before\n").unwrap();
    let clock = Arc::new(ManualClock::new(t0()));
    let (a, store) = world_with_logs(world.path(), clock.clone(), |_| {}).await;
    let b = ward_service::broker_for(&config_with_logs(world.path()), store.clone(), clock).await.unwrap();
    grant_alice(&a).await;
    tokio::time::sleep(ward_service::broker::STALENESS).await;
    let log = world.path().join("x.log");
    let mut tail = following(&b, &b.caller("alice").unwrap(), &log).await;

    let grant = store.grants(&GrantFilter::default()).await.unwrap().remove(0);
    a.revoke(&a.caller("bob").unwrap(), grant.id.as_str(), "INC-4312 is over".into()).await.unwrap();
    tokio::time::sleep(ward_service::broker::STALENESS).await;
    append(&log, "2026-11-21T10:00:02Z written after the revocation\n");
    let (lines, why) = end_of(&mut tail).await;
    assert!(lines.is_empty(), "{lines:?}");
    assert!(why.contains(grant.id.as_str()) && why.contains("revoked"), "{why}");
}

/// A followed tail ends when its token expires (the store's `expires_at`, on ward's clock).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_followed_tail_ends_when_its_token_expires() {
    let world = tempfile::tempdir().unwrap();
    std::fs::write(world.path().join("x.log"), "2026-11-21T10:00:00Z before\n").unwrap();
    let clock = Arc::new(ManualClock::new(t0()));
    let (broker, _) = world_with_logs(world.path(), clock.clone(), |_| {}).await;
    grant_alice(&broker).await;
    // The token lives 10 minutes, the grant 30.
    let (token, _) = broker.tokens().mint(&Broker::local_operator("test"), "alice", 600, None).await.unwrap();
    let alice = broker.tokens().authenticate(&token).await.unwrap();
    let log = world.path().join("x.log");
    let mut tail = following(&broker, &alice, &log).await;
    clock.advance(SignedDuration::from_mins(11));
    let (_, why) = end_of(&mut tail).await;
    assert!(why.contains("expired"), "{why}");
}

/// A followed tail ends when its user leaves the directory (people reloaded).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_followed_tail_ends_when_its_user_is_removed() {
    let (world, broker, store) = reloadable_world_with_logs().await;
    let log = world.path().join("x.log");
    let mut tail = following(&broker, &broker.caller("alice").unwrap(), &log).await;
    let path = world.path().join("ward.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let without = text.lines().filter(|l| !l.starts_with("alice = ")).collect::<Vec<_>>().join("\n");
    assert_ne!(text.lines().count(), without.lines().count(), "alice is in the quickstart");
    std::fs::write(&path, without).unwrap();
    let reload = broker.reload_policies("admin").await.unwrap();
    assert_eq!(reload.directory.users_removed, ["alice"], "{reload:?}");
    append(&log, "2026-11-21T10:00:02Z written after alice left\n");
    let (lines, why) = end_of(&mut tail).await;
    assert!(lines.is_empty(), "{lines:?}");
    assert!(why.contains("alice"), "{why}");
    assert_eq!(follow_ended(&store).await, why);
}

/// A followed tail ends when a forbid policy loaded since stops its reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_followed_tail_ends_when_a_new_policy_forbids_it() {
    let (world, broker, store) = reloadable_world_with_logs().await;
    let log = world.path().join("x.log");
    let mut tail = following(&broker, &broker.caller("alice").unwrap(), &log).await;
    let forbid = "@id(\"payments-logs-frozen\")\nforbid (principal, action == Ward::Action::\"access\", resource == Ward::Resource::\"logs:payments-api\");\n";
    std::fs::write(world.path().join("policies/frozen.cedar"), forbid).unwrap();
    assert!(broker.reload_policies("admin").await.unwrap().changed);
    append(&log, "2026-11-21T10:00:02Z written after the forbid\n");
    let (lines, why) = end_of(&mut tail).await;
    assert!(lines.is_empty(), "{lines:?}");
    assert!(why.contains("payments-logs-frozen"), "{why}");
    assert_eq!(follow_ended(&store).await, why);
}

/// A tail of a large compressed file (read whole: it cannot be read from its end) stops at the
/// search deadline, as a search does, and says so on record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tail_stops_at_the_search_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let line = "2026-11-21T10:00:00Z INFO payments-api nothing to see here\n";
    let text = line.repeat(200_000);
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(dir.path().join("x.log.1.gz")).unwrap(),
        flate2::Compression::fast(),
    );
    std::io::Write::write_all(&mut gz, text.as_bytes()).unwrap();
    gz.finish().unwrap();
    std::fs::write(dir.path().join("x.log"), "2026-11-21T10:00:01Z newest\n").unwrap();
    let clock = Ticking::new();
    let (broker, store) = world_with_logs(dir.path(), clock.clone(), |_| {}).await;
    grant_alice(&broker).await;
    // Each look at the clock is a second later: 20 looks pass the deadline.
    clock.arm(SignedDuration::from_secs(1));
    let mut tail = broker
        .tail_logs(&broker.caller("alice").unwrap(), "logs:payments-api", 1000, false, false)
        .await
        .unwrap();
    let mut lines = Vec::new();
    while let Some(item) = tail.recv().await {
        match item {
            LogItem::Line(line) => lines.push(line.text),
            LogItem::Summary { summary, .. } => assert!(summary.stopped),
            LogItem::End(why) => panic!("{why}"),
        }
    }
    assert_eq!(lines, ["2026-11-21T10:00:01Z newest"], "the newest file, read whole by then");
    let read = access_used(&store).await;
    let tailed = read.iter().find(|e| e.details["action"] == "logs.tail").unwrap();
    assert_eq!(tailed.details["timed_out"], true, "{}", tailed.details);
    assert!(tailed.details["scanned"].as_u64().unwrap() < text.len() as u64 / 2, "{}", tailed.details);
}

/// A private key block written in two halves, each read by a different poll of a followed
/// tail, is redacted whole: no line of its body is ever sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_block_split_across_polls_of_a_follow_is_redacted_whole() {
    let (world, broker, _) = reloadable_world_with_logs().await;
    let log = world.path().join("x.log");
    let mut tail = following(&broker, &broker.caller("alice").unwrap(), &log).await;
    let body = [
        "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7",
        "Vt7pbc2Tq1XkM3H1yZ9fQw2y8sV0aL4kzR7uT6oNqPbW3eEfHj",
    ];
    append(&log, &format!("2026-11-21T10:00:02Z loaded key\n-----BEGIN PRIVATE KEY-----\n{}\n", body[0]));
    // Past a poll (every 500 ms) before the block ends.
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    append(&log, &format!("{}\n-----END PRIVATE KEY-----\n2026-11-21T10:00:03Z after the key\n", body[1]));
    let mut sent = Vec::new();
    while !sent.iter().any(|l: &String| l.contains("after the key")) {
        match next_item(&mut tail).await {
            Some(LogItem::Line(line)) => sent.push(line.text),
            other => panic!("{other:?}"),
        }
    }
    let text = sent.join("\n");
    assert!(!text.contains(body[0]) && !text.contains(body[1]), "{text}");
    assert!(text.contains("<private-key:"), "{text}");
}

/// A value whose key ends one poll's lines and whose value begins the next's (a rule that
/// reaches across lines, gitleaks' generic one) is still redacted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_split_across_polls_of_a_follow_is_redacted() {
    let (world, broker, _) = reloadable_world_with_logs().await;
    let log = world.path().join("x.log");
    let mut tail = following(&broker, &broker.caller("alice").unwrap(), &log).await;
    let whole = "2026-11-21T10:00:02Z config dump: client_secret =\n  'Zq8vN3rT5wY7uI9oP1aS2dF4gH6jK8lX'\n2026-11-21T10:00:03Z done\n";
    let (first, second) = whole.split_at(whole.find("  '").unwrap());
    append(&log, first);
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    append(&log, second);
    let mut sent = Vec::new();
    while !sent.iter().any(|l: &String| l.contains("done")) {
        match next_item(&mut tail).await {
            Some(LogItem::Line(line)) => sent.push(line.text),
            other => panic!("{other:?}"),
        }
    }
    let text = sent.join("\n");
    assert!(!text.contains("Zq8vN3rT5wY7uI9oP1aS2dF4gH6jK8lX"), "{text}");
}

/// What a search, a tail and a followed tail put on record, as it has always been recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_are_recorded_as_they_always_were() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("x.log");
    std::fs::write(&log, "2026-11-21T10:00:00Z paid by jane.doe@example.com\n2026-11-21T10:00:01Z done\n")
        .unwrap();
    let (broker, store) = world_with_logs(dir.path(), Arc::new(ManualClock::new(t0())), |_| {}).await;
    grant_alice(&broker).await;
    let alice = broker.caller("alice").unwrap();
    let query = LogQuery {
        pattern: Some("paid".into()),
        since: Some("2026-11-21T09:00:00Z".parse().unwrap()),
        ..LogQuery::default()
    };
    broker.search_logs(&alice, "logs:payments-api", query).await.unwrap();
    broker.search_logs(&alice, "logs:payments-api", LogQuery::default()).await.unwrap();
    let mut tail = broker.tail_logs(&alice, "logs:payments-api", 5, false, false).await.unwrap();
    while tail.recv().await.is_some() {}
    // Checks and refusals: the first of each at once, the rest in the period's summaries.
    let erin = broker.caller("erin").unwrap();
    for _ in 0..2 {
        assert!(broker.check(&alice, "alice", "read", "logs:payments-api").await.unwrap().allowed);
        assert!(!broker.check(&erin, "erin", "read", "logs:payments-api").await.unwrap().allowed);
        broker.record_unauthenticated("no token", "/v1/requests").await;
    }
    broker.flush_usage().await.unwrap();
    let mut tail = broker.tail_logs(&alice, "logs:payments-api", 1, true, false).await.unwrap();
    append(&log, "2026-11-21T10:00:02Z live jane.doe@example.com\n");
    loop {
        match next_item(&mut tail).await {
            Some(LogItem::Line(line)) if line.text.contains("live") => break,
            Some(LogItem::End(why)) => panic!("ended at once: {why}"),
            Some(_) => {}
            None => panic!("closed at once"),
        }
    }
    let grant = store.grants(&GrantFilter::default()).await.unwrap().remove(0);
    broker.release(&alice, grant.id.as_str()).await.unwrap();
    end_of(&mut tail).await;
    let events = store.events(&EventFilter { limit: 100, ..Default::default() }).await.unwrap();
    let reads: Vec<AuditEvent> = events
        .into_iter()
        .filter(|e| matches!(e.event_type, EventType::AccessUsed | EventType::AccessDenied))
        .collect();
    every_event_reads_as_its_type(&store).await;
    // Summaries are written in no particular order.
    let mut recorded = recorded_details(&reads);
    recorded.sort();
    let expected = [
        r#"access.denied {"action":"authenticate","count":1,"first_at":"2027-01-15T08:00:00Z","last_at":"2027-01-15T08:00:00Z","summary":true,"written_at":"2027-01-15T08:00:00Z"}"#,
        r#"access.denied {"action":"authenticate","path":"/v1/requests"}"#,
        r#"access.denied {"action":"read","check":true}"#,
        r#"access.denied {"action":"read","count":1,"first_at":"2027-01-15T08:00:00Z","last_at":"2027-01-15T08:00:00Z","summary":true,"written_at":"2027-01-15T08:00:00Z"}"#,
        r#"access.used {"action":"logs.follow","bytes":47,"ended":"grant grt_<varies> ended (released or revoked)","lines":1,"redactions":[["email",1]]}"#,
        r#"access.used {"action":"logs.search","bytes":50,"files":1,"lines":1,"pattern":"paid","redactions":{"email":1},"role":"read","scanned":76,"since":"2026-11-21T09:00:00Z","timed_out":false,"truncated":false,"until":null}"#,
        r#"access.used {"action":"logs.search","bytes":76,"files":1,"lines":2,"pattern":null,"redactions":{"email":1},"role":"read","scanned":76,"since":null,"timed_out":false,"truncated":false,"until":null}"#,
        r#"access.used {"action":"logs.tail","bytes":26,"files":1,"follow":true,"lines":1,"redactions":{},"role":"read","scanned":76,"timed_out":false,"truncated":false}"#,
        r#"access.used {"action":"logs.tail","bytes":76,"files":1,"follow":false,"lines":2,"redactions":{"email":1},"role":"read","scanned":76,"timed_out":false,"truncated":false}"#,
        r#"access.used {"count":2,"first_at":"2027-01-15T08:00:00Z","last_at":"2027-01-15T08:00:00Z","role":"read","summary":true,"written_at":"2027-01-15T08:00:00Z"}"#,
        r#"access.used {"first_use":true,"role":"read","via":"logs"}"#,
    ];
    assert_eq!(recorded, expected);
}
