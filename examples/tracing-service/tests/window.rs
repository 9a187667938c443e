//! payments-worker against a real ward (its HTTP API, store and debug-levels consumer, in this
//! process): its debug lines appear while a grant's window is open, stop when the grant is
//! released, and stop too when ward cannot be reached.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::AsyncBufReadExt;
use ward_core::SystemClock;
use ward_core::audit::EventType;
use ward_monitor::{ConsumerTask, DebugLevelsConsumer};
use ward_service::{Broker, Caller, Config, RequestInput};
use ward_store::{EventFilter, Store};
use ward_store_sql::SqlStore;

const WORKER: &str = env!("CARGO_BIN_EXE_payments-worker");
const RESOURCE: &str = "debug:payments-worker";
const DEBUG_LINE: &str = "batch detail";
const DEFAULT_APPLIED: &str = "no debug window open";

const POLICY: &str = r#"
@id("worker.debug") @max_duration("1h")
permit (principal in Ward::Group::"engineering", action == Ward::Action::"request", resource == Ward::Resource::"debug:payments-worker")
when { context.role == "debug" };

@id("worker.approvers")
permit (principal in Ward::Group::"engineering", action == Ward::Action::"approve", resource == Ward::Resource::"debug:payments-worker");
"#;

fn world(dir: &Path) -> Config {
    std::fs::create_dir_all(dir.join("policies")).unwrap();
    std::fs::write(dir.join("policies/worker.cedar"), POLICY).unwrap();
    let toml = r#"
data_dir = "data"
policies = ["policies"]

[authorization]
admin_groups = ["admins"]
service_groups = ["services"]

[users]
alice = { groups = ["engineering"] }
bob = { groups = ["engineering"] }
payments-worker = { groups = ["services"] }
log-shipper = { groups = ["services"] }

[resources."debug:payments-worker"]
kind = "debug-level"
roles = ["debug"]
driver = "tracing"
level = "debug"
follow_from = ["payments-worker"]
"#;
    std::fs::write(dir.join("ward.toml"), toml).unwrap();
    Config::load(&dir.join("ward.toml"), &|_| None).unwrap()
}

/// The worker's output, line by line, as it comes.
#[derive(Clone, Default)]
struct Output(Arc<Mutex<Vec<String>>>);

impl Output {
    fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    /// Waits until a line after the first `after` contains `text`: its index.
    async fn wait_for(&self, after: usize, text: &str) -> usize {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(found) = self.lines().iter().skip(after).position(|l| l.contains(text)) {
                return after + found;
            }
            assert!(Instant::now() < deadline, "no `{text}` after line {after}: {:#?}", self.lines());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Lines from `from` on that contain `text`.
    fn count_from(&self, from: usize, text: &str) -> usize {
        self.lines().iter().skip(from).filter(|l| l.contains(text)).count()
    }
}

async fn granted(broker: &Broker, who: &Caller, approver: &Caller) -> String {
    let ask = RequestInput {
        resource: RESOURCE.into(),
        role: "debug".into(),
        duration_seconds: 600,
        reason: "INC-7 batches stuck".into(),
        ticket: None,
        start_at: None,
        breakglass: false,
    };
    let request = broker.create_request(who, ask).await.unwrap();
    let approved = broker.approve(approver, request.id.as_str(), None).await.unwrap();
    approved.grant_id.unwrap().0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_lines_appear_for_the_window_only() {
    let dir = tempfile::tempdir().unwrap();
    let config = world(dir.path());
    let store: Arc<dyn Store> = Arc::new(SqlStore::open_sqlite(&dir.path().join("ward.db")).await.unwrap());
    let broker = ward_service::broker_for(&config, store.clone(), Arc::new(SystemClock)).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(ward_server::serve(
        listener,
        broker.clone(),
        ward_server::HttpSettings::default(),
        async move {
            let _ = stopped.await;
        },
    ));
    let levels = ConsumerTask::start(DebugLevelsConsumer::new(broker.clone(), "test-process"));
    let operator = Broker::local_operator("test");
    let (token, _) = broker.tokens().mint(&operator, "payments-worker", 3600, None).await.unwrap();
    let (alice, bob) = (broker.caller("alice").unwrap(), broker.caller("bob").unwrap());

    // Another service may not follow this one's level.
    let (other, _) = broker.tokens().mint(&operator, "log-shipper", 3600, None).await.unwrap();
    let refused = ward_tracing::Follower::new(&url, &other, RESOURCE, "info").unwrap();
    assert!(refused.ask(None, Duration::ZERO).await.unwrap_err().status().is_some_and(|s| s.as_u16() == 403));

    let mut worker = tokio::process::Command::new(WORKER)
        .env("WARD_URL", &url)
        .env("WARD_TOKEN", &token)
        .env("RUST_LOG", "trace") // the worker's filter is its own and ward's, not this
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let output = Output::default();
    let mut stdout = tokio::io::BufReader::new(worker.stdout.take().unwrap()).lines();
    let sink = output.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = stdout.next_line().await {
            sink.0.lock().unwrap().push(line);
        }
    });

    // No window: info lines only.
    let settled = output.wait_for(0, "settled a batch").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(output.count_from(0, DEBUG_LINE), 0, "{:#?}", output.lines());
    assert!(output.count_from(settled, "settled a batch") >= 3);

    // A grant opens the window: the debug lines follow, once the raise is on record.
    let grant = granted(&broker, &alice, &bob).await;
    let first_debug = output.wait_for(0, DEBUG_LINE).await;
    let events = store.events(&EventFilter { limit: 1000, ..EventFilter::default() }).await.unwrap();
    let raised = events.iter().find(|e| e.event_type == EventType::DebugLevelRaised).unwrap();
    assert_eq!(
        (raised.details["before"].as_str(), raised.details["after"].as_str()),
        (Some("default"), Some("debug"))
    );
    assert_eq!(raised.details["grant_ids"][0].as_str(), Some(grant.as_str()));
    assert!(output.lines()[first_debug].contains("transfers=3"), "{}", output.lines()[first_debug]);

    // Released: back to the default, and no debug line after it.
    broker.release(&alice, &grant).await.unwrap();
    let restored = output.wait_for(first_debug, DEFAULT_APPLIED).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(output.count_from(restored, DEBUG_LINE), 0, "{:#?}", &output.lines()[restored..]);
    assert!(output.count_from(restored, "settled a batch") >= 3, "the service goes on");
    let events = store.events(&EventFilter { limit: 1000, ..EventFilter::default() }).await.unwrap();
    assert!(events.iter().any(|e| e.event_type == EventType::DebugLevelRestored));

    // A window open when ward goes away ends then: the service cannot hear it is still open.
    let again = granted(&broker, &alice, &bob).await;
    let raised_again = output.wait_for(restored, DEBUG_LINE).await;
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    let fallen_back = output.wait_for(raised_again, DEFAULT_APPLIED).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(output.count_from(fallen_back, DEBUG_LINE), 0, "{:#?}", &output.lines()[fallen_back..]);
    assert!(output.lines().iter().any(|l| l.contains("cannot follow the debug window from ward")));
    broker.release(&alice, &again).await.unwrap();
    levels.stop().await;
    worker.kill().await.unwrap();
}
