//! Notifications over real HTTP: each test starts its own receiver (a small axum server on a
//! free port) and ward's sinks deliver to it, on SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use hmac::{Hmac, Mac};
use jiff::{SignedDuration, Timestamp};
use serde_json::Value;
use sha2::Sha256;
use tokio::sync::watch;
use ward_core::audit::{AuditEvent, EventType};
use ward_core::{AccessRequest, Clock, Grant, ManualClock};
use ward_notify::sink::{Retry, SinkWorker, Step};
use ward_notify::{ActionError, SlackActions};
use ward_service::notify_settings::{
    Notice, NotifySink, Secret, SinkKind, SinkUrl, SlackSettings, webhook_secret,
};
use ward_service::{Broker, Caller, Config, RequestInput};
use ward_store::{EventFilter, Store};
use ward_store_sql::SqlStore;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const SLACK_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";

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
    webhooks_are_signed_and_sent_as_events_commit,
    a_failing_sink_is_retried_recorded_once_and_loses_nothing,
    slack_messages_mention_who_should_act,
    the_notice_before_expiry_follows_the_clock_once,
    slack_actions_decide_as_the_mapped_user_and_refusals_are_recorded,
);

struct World {
    broker: Arc<Broker>,
    clock: Arc<ManualClock>,
    store: Arc<dyn Store>,
}

impl World {
    async fn new(store: Arc<dyn Store>) -> Self {
        let clock = Arc::new(ManualClock::new(t0()));
        let broker = ward_service::broker_for(&config(), store.clone(), clock.clone()).await.unwrap();
        Self { broker, clock, store }
    }

    fn who(&self, name: &str) -> Caller {
        self.broker.caller(name).unwrap()
    }

    async fn request(&self, who: &str, reason: &str, seconds: u64) -> AccessRequest {
        let ask = RequestInput {
            resource: "logs:payments-api".into(),
            role: "read".into(),
            duration_seconds: seconds,
            reason: reason.into(),
            ticket: None,
            start_at: None,
            breakglass: false,
        };
        self.broker.create_request(&self.who(who), ask).await.unwrap()
    }

    /// alice asks for `seconds` of `read` on payments-api and bob approves.
    async fn granted(&self, seconds: u64) -> Grant {
        let request = self.request("alice", "INC-4312 checkout 500s", seconds).await;
        let approved = self.broker.approve(&self.who("bob"), request.id.as_str(), None).await.unwrap();
        self.store.grant(approved.grant_id.unwrap().as_str()).await.unwrap().unwrap()
    }

    async fn events(&self, event_type: EventType) -> Vec<AuditEvent> {
        let filter = EventFilter { event_type: Some(event_type), limit: 10_000, ..EventFilter::default() };
        self.store.events(&filter).await.unwrap()
    }

    async fn head(&self) -> i64 {
        self.store.head().await.unwrap().size as i64
    }

    fn worker(
        &self,
        sink: NotifySink,
        slack: Option<SlackSettings>,
        holder: &str,
        retry: Retry,
    ) -> SinkWorker {
        SinkWorker::new(self.broker.clone(), sink, slack, 300, holder, retry).unwrap()
    }

    /// Runs `worker` in the background until the returned sender says stop; waits until it has
    /// started (its cursors exist), so that what the test commits next is owed to it.
    async fn run(
        &self,
        worker: SinkWorker,
        name: &str,
    ) -> (watch::Sender<bool>, tokio::task::JoinHandle<()>) {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(ward_notify::sink::run(worker, self.broker.subscribe_appended(), stopped));
        let (store, started) = (self.store.clone(), format!("notify:{name}:expiring"));
        eventually_async("the sink to start", || {
            let (store, started) = (store.clone(), started.clone());
            async move { store.forward_cursor(&started).await.unwrap() != 0 }
        })
        .await;
        (stop, task)
    }
}

fn sink(name: &str, kind: SinkKind, url: &str, events: &[&str]) -> NotifySink {
    NotifySink {
        name: name.into(),
        kind,
        url: SinkUrl::new(url),
        notices: events.iter().map(|e| Notice::parse(e).unwrap()).collect::<BTreeSet<_>>(),
        min_severity: None,
    }
}

fn webhook() -> SinkKind {
    SinkKind::Webhook { secret: webhook_secret(SECRET).unwrap() }
}

fn slack_settings() -> SlackSettings {
    SlackSettings {
        signing_secret: Secret::new(SLACK_SECRET.as_bytes().to_vec()),
        users: [("U0BOB", "bob"), ("U0ERIN", "erin"), ("U0ALICE", "alice"), ("U0GONE", "mallory")]
            .into_iter()
            .map(|(id, user)| (id.to_owned(), user.to_owned()))
            .collect(),
    }
}

fn quick() -> Retry {
    Retry {
        attempt_timeout: Duration::from_millis(300),
        first_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(100),
        failed_after: 3,
    }
}

/// What the receiver answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Accept,
    Answer(u16),
    /// Never answers (the sender's timeout ends the attempt).
    Hang,
}

/// One request the receiver saw, with what it answered.
#[derive(Debug, Clone)]
struct Seen {
    headers: HeaderMap,
    body: Bytes,
    status: u16,
}

#[derive(Clone)]
struct Receiver {
    address: SocketAddr,
    mode: Arc<Mutex<Mode>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Receiver {
    /// Listens on `address` (a free port when none).
    async fn start(address: Option<SocketAddr>) -> (Self, tokio::task::JoinHandle<()>) {
        let listener =
            tokio::net::TcpListener::bind(address.unwrap_or(([127, 0, 0, 1], 0).into())).await.unwrap();
        let receiver = Self {
            address: listener.local_addr().unwrap(),
            mode: Arc::new(Mutex::new(Mode::Accept)),
            seen: Arc::new(Mutex::new(Vec::new())),
        };
        let task = receiver.serve(listener);
        (receiver, task)
    }

    /// Serves again on the same address, keeping what was seen (the receiver came back).
    async fn restart(&self) -> tokio::task::JoinHandle<()> {
        let listener = tokio::net::TcpListener::bind(self.address).await.unwrap();
        self.serve(listener)
    }

    fn serve(&self, listener: tokio::net::TcpListener) -> tokio::task::JoinHandle<()> {
        let app = axum::Router::new().fallback(receive).with_state(self.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() })
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.address)
    }

    fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// The bodies accepted, as JSON, keyed by `webhook-id` (a retry is the same message).
    fn accepted(&self) -> HashMap<String, Value> {
        self.seen()
            .into_iter()
            .filter(|s| s.status == 200)
            .map(|s| {
                let id =
                    s.headers.get("webhook-id").map_or(String::new(), |v| v.to_str().unwrap().to_owned());
                (id, serde_json::from_slice(&s.body).unwrap())
            })
            .collect()
    }
}

async fn receive(State(receiver): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let mode = *receiver.mode.lock().unwrap();
    let status = match mode {
        Mode::Accept => 200,
        Mode::Answer(status) => status,
        Mode::Hang => {
            receiver.seen.lock().unwrap().push(Seen { headers, body, status: 0 });
            tokio::time::sleep(Duration::from_secs(3600)).await;
            return StatusCode::OK;
        }
    };
    receiver.seen.lock().unwrap().push(Seen { headers, body, status });
    StatusCode::from_u16(status).unwrap()
}

/// The receiver's check of a delivery, written from the Standard Webhooks specification (not
/// through ward's signing code): HMAC-SHA256 with the secret's base64-decoded bytes over
/// `{webhook-id}.{webhook-timestamp}.{body}`, base64, after `v1,`.
fn signed_as_the_specification_says(seen: &Seen) -> bool {
    let header =
        |name: &str| seen.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let key = base64::engine::general_purpose::STANDARD.decode(SECRET.trim_start_matches("whsec_")).unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{}.{}.", header("webhook-id"), header("webhook-timestamp")).as_bytes());
    mac.update(&seen.body);
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    header("webhook-signature").split(' ').any(|s| s == format!("v1,{expected}"))
}

async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn eventually_async<F: Future<Output = bool>>(what: &str, mut done: impl FnMut() -> F) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn webhooks_are_signed_and_sent_as_events_commit(store: Arc<dyn Store>) {
    let w = World::new(store.clone()).await;
    let (receiver, _server) = Receiver::start(None).await;
    let events = ["request.created", "approval.granted"];
    let worker = w.worker(sink("hook", webhook(), &receiver.url(), &events), None, "process-1", quick());
    let worker = worker.linking_to(Some("https://ward.example.com".into()));
    let before = w.head().await;
    let (stop, task) = w.run(worker, "hook").await;

    let grant = w.granted(1800).await;
    eventually("both deliveries", || receiver.accepted().len() == 2).await;
    let created = &w.events(EventType::RequestCreated).await[0];
    let approved = &w.events(EventType::ApprovalGranted).await[0];
    let accepted = receiver.accepted();
    for seen in receiver.seen() {
        assert!(signed_as_the_specification_says(&seen), "{:?}", seen.headers);
        assert_eq!(seen.headers["webhook-timestamp"], w.clock.now().as_second().to_string().as_str());
        assert_eq!(seen.headers["content-type"], "application/json");
    }

    // The body: the type, when, and the event as the API shows it; a new request also says who
    // may approve it and what the dry run says.
    let body = &accepted[&created.id];
    assert_eq!(body["type"], "request.created");
    assert_eq!(body["timestamp"], created.occurred_at.to_string());
    let event = without(&without(&body["data"], "approval"), "link");
    assert_eq!(serde_json::from_value::<AuditEvent>(event).unwrap(), *created);
    let link = format!("https://ward.example.com/ui/requests/{}", grant.request_id.as_str());
    assert_eq!(body["data"]["link"], link.as_str(), "a message about a request links its page");
    let approval = &body["data"]["approval"];
    assert_eq!(approval["approvers"], serde_json::json!(["bob", "erin"]));
    assert_eq!(approval["decision"], "pending");
    assert!(approval["why"].as_str().unwrap().contains("needs 1 approval"), "{approval}");
    let body = &accepted[&approved.id];
    assert_eq!(body["data"]["request_id"], grant.request_id.as_str());
    assert!(body["data"].get("approval").is_none());

    // The cursor follows the log past events the sink is not told of (grant.activated, …), and
    // started at the head: what was written before the sink existed is not owed to it.
    let head = w.head().await;
    let store2 = store.clone();
    eventually_async("the cursor at the head", || {
        let store = store2.clone();
        async move { store.forward_cursor("notify:hook").await.unwrap() == head }
    })
    .await;
    assert!(receiver.seen().iter().all(|s| {
        let body: Value = serde_json::from_slice(&s.body).unwrap();
        body["data"]["seq"].as_i64().unwrap() > before
    }));
    stop.send(true).unwrap();
    task.await.unwrap();
}

fn without(value: &Value, key: &str) -> Value {
    let mut value = value.clone();
    value.as_object_mut().unwrap().remove(key);
    value
}

async fn a_failing_sink_is_retried_recorded_once_and_loses_nothing(store: Arc<dyn Store>) {
    let w = World::new(store.clone()).await;
    let (receiver, server) = Receiver::start(None).await;
    let events = ["request.created", "approval.granted", "grant.released"];
    // Attempts that hang end after 2 s: longer than the commits below may take.
    let retry = Retry { attempt_timeout: Duration::from_secs(2), ..quick() };
    let worker = w.worker(sink("hook", webhook(), &receiver.url(), &events), None, "process-1", retry);
    let (stop, task) = w.run(worker, "hook").await;
    let owed_since = w.head().await;

    // 500, then 410 Gone: retried, and recorded once for the streak however often it is tried.
    receiver.set(Mode::Answer(500));
    w.request("alice", "INC-1", 1800).await;
    eventually("the retries", || receiver.seen().len() >= 5).await;
    receiver.set(Mode::Answer(410));
    let seen = receiver.seen().len();
    eventually("more retries", || receiver.seen().len() >= seen + 5).await;
    let failed = w.events(EventType::NotificationFailed).await;
    assert_eq!(failed.len(), 1, "one record per failing streak, not per retry: {failed:?}");
    let first = w.events(EventType::RequestCreated).await.remove(0);
    let ward_core::audit::payload::Payload::NotificationFailed(details) =
        ward_core::audit::payload::Payload::parse(EventType::NotificationFailed, &failed[0].details).unwrap()
    else {
        panic!("not a notification.failed: {failed:?}")
    };
    assert_eq!(details.sink, "hook");
    assert_eq!(details.event_seq, Some(first.seq));
    assert_eq!(details.message_id, first.id, "the message's id is its event's");
    assert_eq!(details.attempts, 3);
    assert_eq!(details.status, Some(500));
    assert!(details.error.contains("500"), "{details:?}");
    assert!(!details.error.contains("/hook"), "no URL in the record");
    assert_eq!(
        store.forward_cursor("notify:hook").await.unwrap(),
        owed_since,
        "not past the undelivered one"
    );

    // A receiver that does not answer: each attempt times out; commits do not wait for it.
    receiver.set(Mode::Hang);
    let started = Instant::now();
    for _ in 0..5 {
        let request = w.request("erin", "INC-2", 1800).await;
        w.broker.approve(&w.who("bob"), request.id.as_str(), None).await.unwrap();
    }
    let committing = started.elapsed();
    assert!(committing < retry.attempt_timeout, "commits waited for the sink: {committing:?}");
    eventually("timed-out attempts", || receiver.seen().iter().filter(|s| s.status == 0).count() >= 2).await;

    // A restart in the outage, then the receiver goes away altogether.
    stop.send(true).unwrap();
    task.await.unwrap();
    server.abort();
    let _ = server.await;
    let worker = w.worker(sink("hook", webhook(), &receiver.url(), &events), None, "process-2", retry);
    let (stop, task) = w.run(worker, "hook").await;
    let grant = w.granted(1800).await;
    w.broker.release(&w.who("alice"), grant.id.as_str()).await.unwrap();
    // Waited for, not slept on: on a busy machine three attempts may take longer than any sleep.
    eventually_async("the second streak on record", || async {
        w.events(EventType::NotificationFailed).await.len() == 2
    })
    .await;
    assert_eq!(store.forward_cursor("notify:hook").await.unwrap(), owed_since, "still owed");

    // It comes back: everything owed arrives, each event at least once, and the cursor catches up.
    receiver.set(Mode::Accept);
    let _server = receiver.restart().await;
    let owed: Vec<AuditEvent> = w
        .store
        .events(&EventFilter { after_seq: Some(owed_since), limit: 1000, ..EventFilter::default() })
        .await
        .unwrap()
        .into_iter()
        .filter(|e| events.contains(&e.event_type.as_str()))
        .collect();
    assert!(owed.len() >= 13, "{} owed", owed.len());
    eventually("the catch-up", || owed.iter().all(|e| receiver.accepted().contains_key(&e.id))).await;
    let head = w.head().await;
    let store2 = store.clone();
    eventually_async("the cursor at the head", || {
        let store = store2.clone();
        async move { store.forward_cursor("notify:hook").await.unwrap() == head }
    })
    .await;
    assert!(receiver.seen().iter().all(signed_as_the_specification_says));
    assert_eq!(
        w.events(EventType::NotificationFailed).await.len(),
        2,
        "the second streak (after the restart)"
    );
    stop.send(true).unwrap();
    task.await.unwrap();
}

async fn slack_messages_mention_who_should_act(store: Arc<dyn Store>) {
    let w = World::new(store.clone()).await;
    let (receiver, _server) = Receiver::start(None).await;
    let events = ["request.created", "approval.denied", "grant.revoked"];
    let slack = sink("chat", SinkKind::Slack, &receiver.url(), &events);
    let worker = w.worker(slack, Some(slack_settings()), "process-1", quick());
    let worker = worker.linking_to(Some("https://ward.example.com".into()));
    let (stop, task) = w.run(worker, "chat").await;

    let request = w.request("alice", "INC-9 <!channel> look & see", 1800).await;
    eventually("the request's message", || receiver.seen().len() == 1).await;
    let message: Value = serde_json::from_slice(&receiver.seen()[0].body).unwrap();
    let text = message.to_string();
    assert!(
        message["text"].as_str().unwrap().contains("<@U0ALICE> (alice) asks for read on logs:payments-api")
    );
    assert!(text.contains("<@U0BOB> (bob), <@U0ERIN> (erin)"), "approvers are mentioned: {text}");
    assert!(text.contains("&lt;!channel&gt; look &amp; see"), "a reason cannot ping the channel: {text}");
    assert!(!text.contains("<!channel>"));
    assert!(text.contains("dry run: allowed by"), "{text}");
    let link = format!("<https://ward.example.com/ui/requests/{}|Open the request in ward>", request.id);
    assert!(text.contains(&link), "the message links the request's page: {text}");
    let buttons = message["blocks"].as_array().unwrap().iter().find(|b| b["type"] == "actions").unwrap();
    let values: Vec<(&str, &str)> = buttons["elements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (b["action_id"].as_str().unwrap(), b["value"].as_str().unwrap()))
        .collect();
    assert_eq!(values, [("ward_approve", request.id.as_str()), ("ward_deny", request.id.as_str())]);

    // The requester hears of the decision; the holder of the end of their access.
    w.broker.deny(&w.who("erin"), request.id.as_str(), "not <b>now</b>".into()).await.unwrap();
    eventually("the decision's message", || receiver.seen().len() == 2).await;
    let denied: Value = serde_json::from_slice(&receiver.seen()[1].body).unwrap();
    let text = denied["blocks"][0]["text"]["text"].as_str().unwrap();
    assert!(text.starts_with("<@U0ERIN> (erin) denied <@U0ALICE> (alice)'s request"), "{text}");
    assert!(text.contains(">not &lt;b&gt;now&lt;/b&gt;"), "{text}");
    // While the sink is stopped, a request is filed, approved and the grant revoked: when the
    // sink resumes, the request's message says it is decided, without buttons.
    stop.send(true).unwrap();
    task.await.unwrap();
    let grant = w.granted(1800).await;
    w.broker.revoke(&w.who("admin"), grant.id.as_str(), "done".into()).await.unwrap();
    let worker = w.worker(
        sink("chat", SinkKind::Slack, &receiver.url(), &events),
        Some(slack_settings()),
        "process-2",
        quick(),
    );
    let (stop, task) = w.run(worker, "chat").await;
    eventually("the end's message", || receiver.seen().len() == 4).await;
    let ended: Value = serde_json::from_slice(&receiver.seen()[3].body).unwrap();
    let text = ended["text"].as_str().unwrap();
    assert!(
        text.contains("<@U0ALICE> (alice)'s read access to logs:payments-api was revoked by admin"),
        "{text}"
    );
    // A request already decided when the message goes out has no buttons.
    let second: Value = serde_json::from_slice(&receiver.seen()[2].body).unwrap();
    assert!(second["blocks"].as_array().unwrap().iter().all(|b| b["type"] != "actions"), "{second}");
    assert!(second.to_string().contains("Already approved"), "{second}");
    stop.send(true).unwrap();
    task.await.unwrap();
}

/// The notice before expiry is driven by the clock (a `ManualClock` here, no sleeps): given once
/// per expiry, by the lease holder only, also across a restart.
async fn the_notice_before_expiry_follows_the_clock_once(store: Arc<dyn Store>) {
    let w = World::new(store.clone()).await;
    let (receiver, _server) = Receiver::start(None).await;
    let hook = || sink("hook", webhook(), &receiver.url(), &["grant.expiring"]);
    let mut first = w.worker(hook(), None, "process-1", quick());
    let mut other = w.worker(hook(), None, "process-2", quick());
    assert_eq!(first.step().await, Step::Idle { next_notice_at: None });
    assert_eq!(other.step().await, Step::NotHolder, "one process holds the sink");

    let grant = w.granted(1800).await;
    let short = w.granted(240).await;
    let notice_at = grant.expires_at - SignedDuration::from_mins(5);
    assert_eq!(first.step().await, Step::Progressed, "past the events it is not told of");
    assert_eq!(first.step().await, Step::Idle { next_notice_at: Some(notice_at) });
    assert!(receiver.seen().is_empty());
    w.clock.set(notice_at - SignedDuration::from_secs(1));
    assert!(matches!(first.step().await, Step::Idle { .. }));
    assert!(receiver.seen().is_empty(), "not before its time");

    w.clock.set(notice_at);
    assert_eq!(first.step().await, Step::Progressed);
    assert_eq!(receiver.seen().len(), 1);
    let seen = &receiver.seen()[0];
    assert!(signed_as_the_specification_says(seen));
    let body: Value = serde_json::from_slice(&seen.body).unwrap();
    assert_eq!(body["type"], "grant.expiring");
    assert_eq!(body["data"]["grant_id"], grant.id.as_str());
    assert_eq!(body["data"]["principal"], "alice");
    assert_eq!(body["data"]["notice_seconds"], 300);
    assert_eq!(
        seen.headers["webhook-id"],
        format!("{}.expiring.{}", grant.id, grant.expires_at.as_millisecond())
    );
    assert_eq!(first.step().await, Step::Idle { next_notice_at: None });
    assert_eq!(receiver.seen().len(), 1, "once");

    // Another process takes over (the first gave its lease up): it gives nothing twice.
    first.give_up().await;
    w.clock.advance(SignedDuration::from_secs(30));
    assert_eq!(other.step().await, Step::Idle { next_notice_at: None });
    assert_eq!(receiver.seen().len(), 1, "not again after the handover");

    // A notice that fell due while nobody ran is given on the next start, if the grant is live.
    let later = w.granted(1800).await;
    let later_notice = later.expires_at - SignedDuration::from_mins(5);
    assert_eq!(other.step().await, Step::Progressed);
    assert_eq!(other.step().await, Step::Idle { next_notice_at: Some(later_notice) });
    other.give_up().await;
    w.clock.set(later_notice + SignedDuration::from_mins(2));
    let mut restarted = w.worker(hook(), None, "process-3", quick());
    assert_eq!(restarted.step().await, Step::Progressed);
    let ids: Vec<String> =
        receiver.seen().iter().map(|s| s.headers["webhook-id"].to_str().unwrap().to_owned()).collect();
    assert_eq!(ids.len(), 2);
    assert!(ids[1].starts_with(later.id.as_str()));
    assert!(
        !ids.iter().any(|id| id.starts_with(short.id.as_str())),
        "a 4-minute grant gets no 5-minute notice"
    );

    // A receiver that fails: the notice is owed until it goes through.
    let extended_to = later.expires_at + SignedDuration::from_mins(30);
    let extension = w
        .broker
        .extend(
            &w.who("alice"),
            later.id.as_str(),
            ward_service::ExtendInput {
                duration_seconds: 1800,
                reason: "INC-4312 more".into(),
                ticket: None,
            },
        )
        .await
        .unwrap();
    w.broker.approve(&w.who("bob"), extension.id.as_str(), None).await.unwrap();
    assert_eq!(w.store.grant(later.id.as_str()).await.unwrap().unwrap().expires_at, extended_to);
    receiver.set(Mode::Answer(503));
    w.clock.set(extended_to - SignedDuration::from_mins(5));
    assert!(matches!(restarted.step().await, Step::Failed { .. }));
    receiver.set(Mode::Accept);
    assert_eq!(restarted.step().await, Step::Progressed, "the extended grant is told again, once");
    let accepted = receiver.accepted();
    assert!(accepted.contains_key(&format!("{}.expiring.{}", later.id, extended_to.as_millisecond())));
    assert_eq!(restarted.step().await, Step::Idle { next_notice_at: None });
}

/// A Slack click, signed as Slack signs.
fn click(slack_user: &str, action: &str, request_id: &str, response_url: &str) -> Vec<u8> {
    let payload = serde_json::json!({
        "type": "block_actions",
        "user": { "id": slack_user, "username": "someone" },
        "team": { "id": "T0" },
        "actions": [{ "type": "button", "action_id": action, "value": request_id, "block_id": "ward_decision" }],
        "response_url": response_url,
    });
    form(&payload.to_string())
}

fn form(payload: &str) -> Vec<u8> {
    let mut body = String::from("payload=");
    body.extend(payload.bytes().map(|b| match b {
        b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
        _ => format!("%{b:02X}"),
    }));
    body.into_bytes()
}

fn slack_signature(timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SLACK_SECRET.as_bytes()).unwrap();
    mac.update(format!("v0:{timestamp}:").as_bytes());
    mac.update(body);
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

async fn slack_actions_decide_as_the_mapped_user_and_refusals_are_recorded(store: Arc<dyn Store>) {
    let w = World::new(store.clone()).await;
    let (slack, _server) = Receiver::start(None).await;
    let prefix = format!("http://{}/", slack.address);
    let actions =
        SlackActions::new(w.broker.clone(), slack_settings()).unwrap().with_response_prefix(&prefix);
    let response_url = format!("{prefix}actions/T0/1/x");
    let now = || w.clock.now().as_second();
    let send = |body: Vec<u8>, at: i64| {
        let signature = slack_signature(at, &body);
        let actions = &actions;
        async move { actions.handle(Some(&at.to_string()), Some(&signature), &body).await }
    };
    let refusals = || async {
        w.events(EventType::AccessDenied)
            .await
            .into_iter()
            .map(|e| (e.actor, e.reason.unwrap_or_default()))
            .collect::<Vec<_>>()
    };

    // bob approves alice's request from Slack: as bob, through the broker, on record.
    let request = w.request("alice", "INC-7", 1800).await;
    let outcome =
        send(click("U0BOB", "ward_approve", request.id.as_str(), &response_url), now()).await.unwrap();
    assert_eq!((outcome.user.as_str(), outcome.decision), ("bob", "approve"));
    assert_eq!(outcome.request.state, ward_core::RequestState::Approved);
    let approved = &w.events(EventType::ApprovalGranted).await[0];
    assert_eq!((approved.actor.as_str(), approved.reason.as_deref()), ("bob", Some("approved in Slack")));
    eventually("the answer in Slack", || slack.seen().len() == 1).await;
    let answer: Value = serde_json::from_slice(&slack.seen()[0].body).unwrap();
    assert_eq!(answer["response_type"], "ephemeral");
    assert!(answer["text"].as_str().unwrap().contains("now approved"), "{answer}");

    // A bad signature, an old timestamp: refused before anything is read, and recorded.
    let second = w.request("alice", "INC-8", 1800).await;
    let body = click("U0BOB", "ward_approve", second.id.as_str(), &response_url);
    let forged =
        actions.handle(Some(&now().to_string()), Some(&format!("v0={}", "0".repeat(64))), &body).await;
    assert!(
        matches!(forged, Err(ActionError::Unauthenticated(ref why)) if why.contains("bad signature")),
        "{forged:?}"
    );
    let old = send(body.clone(), now() - 301).await;
    assert!(matches!(old, Err(ActionError::Unauthenticated(ref why)) if why.contains("window")), "{old:?}");
    assert_eq!(
        w.store.request(second.id.as_str()).await.unwrap().unwrap().state,
        ward_core::RequestState::Pending
    );
    let recorded = refusals().await;
    assert!(
        recorded.contains(&("anonymous".into(), "a Slack action with a bad signature".into())),
        "{recorded:?}"
    );

    // An unknown Slack user, and a mapped one no longer in the directory: refused, answered.
    let unknown = send(click("U0NOBODY", "ward_approve", second.id.as_str(), &response_url), now()).await;
    assert!(matches!(unknown, Err(ActionError::UnknownUser(_))), "{unknown:?}");
    let gone = send(click("U0GONE", "ward_approve", second.id.as_str(), &response_url), now()).await;
    assert!(matches!(gone, Err(ActionError::UnknownUser(_))), "{gone:?}");
    eventually("the answers", || slack.seen().len() == 3).await;
    assert!(String::from_utf8_lossy(&slack.seen()[1].body).contains("not mapped to a ward user"));

    // Self-approval: refused by the broker like any, recorded as alice's refused approval.
    let own = send(click("U0ALICE", "ward_approve", second.id.as_str(), &response_url), now()).await;
    assert!(matches!(own, Err(ActionError::Refused(_))), "{own:?}");
    let recorded = refusals().await;
    assert!(recorded.iter().any(|(actor, why)| actor == "alice" && why.contains("own")), "{recorded:?}");
    eventually("the refusal's answer", || slack.seen().len() == 4).await;
    assert!(String::from_utf8_lossy(&slack.seen()[3].body).contains("ward refused to approve"));

    // erin denies it; a second click finds it decided.
    let denied = send(click("U0ERIN", "ward_deny", second.id.as_str(), &response_url), now()).await.unwrap();
    assert_eq!(denied.request.state, ward_core::RequestState::Denied);
    let again = send(click("U0BOB", "ward_approve", second.id.as_str(), &response_url), now()).await;
    assert!(matches!(again, Err(ActionError::Refused(_))), "{again:?}");

    // A response_url that is not Slack's is never posted to.
    eventually("the decisions' answers", || slack.seen().len() == 6).await;
    let strict = SlackActions::new(w.broker.clone(), slack_settings()).unwrap();
    let third = w.request("alice", "INC-9", 1800).await;
    let body = click("U0BOB", "ward_deny", third.id.as_str(), &response_url);
    strict.handle(Some(&now().to_string()), Some(&slack_signature(now(), &body)), &body).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(slack.seen().len(), 6, "not answered at a URL that is not Slack's");

    // A flood of forged calls is counted, not written one event each.
    let before = w.events(EventType::AccessDenied).await.len();
    for _ in 0..200 {
        let _ = actions.handle(Some(&now().to_string()), Some("v0=00"), &body).await;
    }
    assert!(w.events(EventType::AccessDenied).await.len() <= before + 1);
    w.broker.flush_usage().await.unwrap();
    let summaries = w.events(EventType::AccessDenied).await;
    let summary = summaries.last().unwrap();
    assert!(summary.details["count"].as_u64().unwrap() >= 200, "{summary:?}");
}
