//! The lifecycle through the broker, on SQLite and PostgreSQL, with a clock the tests move.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use jiff::{SignedDuration, Timestamp};
use ward_core::audit::{AuditEvent, EventType};
use ward_core::lifecycle::LifecycleError;
use ward_core::policy::Refusal;
use ward_core::{AccessRequest, Clock, Grant, GrantState, ManualClock, RequestState};
use ward_logs::push::{Encoding, Format};
use ward_service::broker::{GrantListing, RequestListing};
use ward_service::sensitive::SensitiveField;
use ward_service::{Broker, BrokerError, Caller, Config, ExtendInput, RequestInput};
use ward_store::{
    ApiToken, Change, CheckpointRecord, Due, EventFilter, GrantFilter, LogHead, RequestFilter, Store,
    StoreError, TokenFilter,
};
use ward_store_sql::SqlStore;

/// A batch of JSON lines, as sent.
const JSON_LINES: (Format, Encoding) = (Format::JsonLines, Encoding::Identity);

/// The quickstart world, with its data directory (and audit signing key) in a temporary folder.
/// The data directory (and so the keys) every broker of these tests shares, as replicas do.
fn data_dir() -> String {
    static DATA: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DATA.get_or_init(|| tempfile::tempdir().unwrap()).path().display().to_string()
}

fn config() -> Config {
    let data = data_dir();
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

struct World {
    broker: Arc<Broker>,
    clock: Arc<ManualClock>,
    store: Arc<dyn Store>,
}

impl World {
    async fn new(store: Arc<dyn Store>) -> Self {
        Self::with_clock(store, Arc::new(ManualClock::new(t0()))).await
    }

    async fn with_clock(store: Arc<dyn Store>, clock: Arc<ManualClock>) -> Self {
        let broker = ward_service::broker_for(&config(), store.clone(), clock.clone()).await.unwrap();
        Self { broker, clock, store }
    }

    fn who(&self, name: &str) -> Caller {
        self.broker.caller(name).unwrap()
    }

    async fn request(&self, who: &str, resource: &str, role: &str, seconds: u64) -> AccessRequest {
        self.broker.create_request(&self.who(who), ask(resource, role, seconds)).await.unwrap()
    }

    /// alice asks for 30m of `read` on payments-api and bob approves.
    async fn granted(&self) -> Grant {
        let request = self.request("alice", "logs:payments-api", "read", 1800).await;
        let approved =
            self.broker.approve(&self.who("bob"), request.id.as_str(), Some("ok".into())).await.unwrap();
        assert_eq!(approved.state, RequestState::Approved);
        self.store.grant(approved.grant_id.unwrap().as_str()).await.unwrap().unwrap()
    }

    async fn allowed(&self, who: &str) -> bool {
        self.broker.check(&self.who(who), who, "read", "logs:payments-api").await.unwrap().allowed
    }

    async fn events(&self) -> Vec<AuditEvent> {
        self.store.events(&EventFilter { limit: 10_000, ..Default::default() }).await.unwrap()
    }

    async fn types(&self) -> Vec<&'static str> {
        self.events().await.iter().map(|e| e.event_type.as_str()).collect()
    }
}

fn ask(resource: &str, role: &str, seconds: u64) -> RequestInput {
    RequestInput {
        resource: resource.into(),
        role: role.into(),
        duration_seconds: seconds,
        reason: "INC-4312 checkout 500s".into(),
        ticket: None,
        start_at: None,
        breakglass: false,
    }
}

/// Runs each test on both backends; after it, every event it wrote must read as its type.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite { $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { if let Some(s) = super::sqlite().await { super::$name(s.clone()).await; super::every_event_reads_as_its_type(&s).await } } )* }
        mod on_postgres { $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { if let Some(s) = super::postgres().await { super::$name(s.clone()).await; super::every_event_reads_as_its_type(&s).await } } )* }
    };
}

/// Every event in `store` reads as its type's payload, and that payload writes back exactly the
/// stored details: the types say all that ward records.
async fn every_event_reads_as_its_type(store: &Arc<dyn Store>) {
    let mut after = None;
    loop {
        let page =
            store.events(&EventFilter { after_seq: after, limit: 1000, ..Default::default() }).await.unwrap();
        let Some(last) = page.last() else { return };
        after = Some(last.seq);
        events_read_as_their_types(&page);
    }
}

fn events_read_as_their_types(events: &[AuditEvent]) {
    for event in events {
        let payload = ward_core::audit::Payload::parse(event.event_type, &event.details)
            .unwrap_or_else(|error| panic!("event {}: {error}: {}", event.seq, event.details));
        assert_eq!(
            payload.to_value(),
            event.details,
            "event {} ({}) written back",
            event.seq,
            event.event_type
        );
    }
}

on_both_backends!(
    access_is_exactly_the_window_and_expires_by_itself,
    an_unused_grant_ends_after_its_idle_timeout,
    approval_rules_and_refusals_are_enforced_and_recorded,
    release_and_revoke_end_access_at_once,
    unanswered_requests_lapse,
    refusals_are_summarised_and_pending_requests_capped,
    a_restart_catches_up_without_double_processing,
    scheduled_grants_open_at_their_start,
    repeated_checks_are_summarised_not_lost,
    concurrent_approvers_both_count,
    tokens_authenticate_until_they_expire,
    scoped_tokens_and_service_principals,
    tokens_are_recorded_listed_and_revoked_at_once,
    people_reload_with_the_policies,
    the_audit_trail_tells_the_whole_story,
    the_policy_set_in_force_is_on_record,
    checkpoints_sign_the_head_when_the_log_grew,
    proofs_verify_against_the_signed_head,
    explain_says_what_would_happen_and_files_nothing,
    policies_reload_and_a_set_that_does_not_load_changes_nothing,
    every_grant_names_the_policy_set_that_allowed_it,
    people_from_the_provider_reach_every_process_within_a_second,
);

#[path = "broker/gateway.rs"]
mod gateway;
#[path = "broker/workflows.rs"]
mod workflows;

#[path = "broker/rsyslog.rs"]
mod rsyslog;

#[path = "broker/replicas.rs"]
mod replicas;

/// Two ward processes on one store: what the identity provider's tokens said about someone on
/// one is in force on the other within `PEOPLE_STALENESS`, and recorded once.
async fn people_from_the_provider_reach_every_process_within_a_second(store: Arc<dyn Store>) {
    use ward_service::broker::{Claimed, PEOPLE_STALENESS};
    let a = World::new(store.clone()).await;
    let b = World::new(store.clone()).await;
    let claims = |groups: &[&str], at: Timestamp| Claimed {
        name: "pat".into(),
        subject: "00u1".into(),
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        at,
        issuer: "https://id.example.com".into(),
    };
    let leads = |w: &World| w.broker.policy().directory().is_member("pat", &["payments-leads".into()]);
    a.broker.observe_person(&claims(&["engineering", "payments-leads"], t0())).await.unwrap();
    let operator = Broker::local_operator("test");
    let (token, _) = a.broker.tokens().mint(&operator, "pat", 3600, None).await.unwrap();
    // b had never heard of pat: its first request reads the people again.
    let pat = b.broker.tokens().authenticate(&token).await.unwrap();
    assert_eq!(pat.name, "pat");
    assert!(leads(&b));

    // The provider takes pat out of payments-leads; a's next token from pat says so.
    a.broker.observe_person(&claims(&["engineering"], t0() + SignedDuration::from_secs(5))).await.unwrap();
    assert!(!leads(&a));
    b.broker.tokens().authenticate(&token).await.unwrap();
    assert!(leads(&b), "within the staleness bound b may not know yet");
    b.clock.advance(PEOPLE_STALENESS);
    b.broker.tokens().authenticate(&token).await.unwrap();
    assert!(!leads(&b), "past it, b knows");
    // b seeing the same claims again records nothing: a did.
    b.broker.observe_person(&claims(&["engineering"], t0() + SignedDuration::from_secs(5))).await.unwrap();
    let events = a.events().await;
    let recorded = |t: EventType| events.iter().filter(|e| e.event_type == t).count();
    assert_eq!(recorded(EventType::DirectoryUserCreated), 1);
    assert_eq!(recorded(EventType::DirectoryUserUpdated), 1);
}

async fn every_grant_names_the_policy_set_that_allowed_it(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let approved = w.granted().await;
    let on_call = RequestInput { ticket: Some("INC-9".into()), ..ask("logs:checkout-web", "read", 1800) };
    let automatic = w.broker.create_request(&w.who("dave"), on_call).await.unwrap();
    let hash = w.broker.policy().hash().to_owned();
    for grant_id in [approved.id.to_string(), automatic.grant_id.unwrap().to_string()] {
        let events = w.events().await;
        let created = events
            .iter()
            .find(|e| e.event_type == EventType::GrantActivated && e.grant_id.as_deref() == Some(&grant_id))
            .unwrap();
        assert_eq!(created.details["policy_hash"], hash.as_str(), "{grant_id}");
    }
}

async fn policies_reload_and_a_set_that_does_not_load_changes_nothing(store: Arc<dyn Store>) {
    let policies = tempfile::tempdir().unwrap();
    let quickstart =
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/quickstart/policies"));
    for entry in std::fs::read_dir(&quickstart).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, policies.path().join(path.file_name().unwrap())).unwrap();
    }
    let mut config = config();
    config.policy_paths = vec![policies.path().to_owned()];
    let clock = Arc::new(ManualClock::new(t0()));
    let broker = ward_service::broker_for(&config, store.clone(), clock.clone()).await.unwrap();
    let w = World { broker, clock, store };
    let alice = w.who("alice");
    let read = || ask("logs:payments-api", "read", 1800);

    let same = w.broker.reload_policies("admin").await.unwrap();
    assert!(!same.changed, "the files hold the set in force: nothing to do");
    assert!(w.events().await.is_empty());

    let freeze = "@id(\"freeze\") forbid (principal, action == Ward::Action::\"request\", resource);\n";
    std::fs::write(policies.path().join("freeze.cedar"), freeze).unwrap();
    let reload = w.broker.reload_policies("admin").await.unwrap();
    assert!(reload.changed && reload.policy_ids.contains(&"freeze".to_owned()), "{reload:?}");
    assert_eq!(
        w.broker.explain(&alice, None, &read()).await.unwrap().decision,
        "denied",
        "the new set decides"
    );
    let events = w.events().await;
    assert_eq!((events[0].event_type, events[0].actor.as_str()), (EventType::PolicyChanged, "admin"));
    assert_eq!(events[0].details["previous_hash"], reload.previous_hash.as_str());

    std::fs::write(policies.path().join("freeze.cedar"), "forbid (principal, action resource);\n").unwrap();
    let error = w.broker.reload_policies("admin").await.unwrap_err().to_string();
    assert!(
        error.contains("the previous ones stay in force") && error.contains("freeze.cedar:1:27:"),
        "{error}"
    );
    assert_eq!(w.broker.policy().hash(), reload.hash, "a set that does not load changes nothing");
    let events = w.events().await;
    assert_eq!(events.len(), 2);
    assert_eq!(
        (events[1].event_type, events[1].details["hash_in_force"].as_str()),
        (EventType::PolicyRejected, Some(reload.hash.as_str()))
    );
}

async fn explain_says_what_would_happen_and_files_nothing(store: Arc<dyn Store>) {
    let w = World::new(store.clone()).await;
    let alice = w.who("alice");
    let pending = w.broker.explain(&alice, None, &ask("logs:payments-api", "read", 1800)).await.unwrap();
    assert_eq!((pending.decision.as_str(), pending.approvals_required), ("pending", 1));
    assert_eq!(pending.policies, ["payments-api.read"]);
    assert_eq!(pending.approvers, ["bob", "erin"], "the payments leads, never the requester");
    assert!(pending.why.contains("needs 1 approval from: bob, erin"), "{}", pending.why);

    let unmasked =
        w.broker.explain(&alice, None, &ask("logs:payments-api", "read-unmasked", 1800)).await.unwrap();
    assert_eq!(unmasked.approvals_required, 2);
    let on_call = RequestInput { ticket: Some("INC-9".into()), ..ask("logs:checkout-web", "read", 1800) };
    let dave = w.broker.explain(&w.who("dave"), None, &on_call).await.unwrap();
    assert_eq!(dave.decision, "auto_approved");
    assert_eq!(dave.auto_approved_by, ["checkout-web.oncall-incident"]);

    let auditor = w.who("carol");
    let refused = w.broker.explain(&auditor, None, &ask("logs:payments-api", "read", 1800)).await.unwrap();
    assert_eq!(refused.decision, "denied");
    assert!(refused.why.contains("org.auditors-request-nothing"), "{}", refused.why);
    // Auditors may ask on someone's behalf; others may not.
    let for_bob =
        w.broker.explain(&auditor, Some("bob"), &ask("logs:payments-api", "read", 1800)).await.unwrap();
    assert_eq!(for_bob.approvers, ["erin"], "bob asking: erin is the only other lead");
    let error =
        w.broker.explain(&alice, Some("bob"), &ask("logs:payments-api", "read", 1800)).await.unwrap_err();
    assert!(matches!(error, BrokerError::Forbidden(_)), "{error}");

    assert!(w.store.requests(&Default::default()).await.unwrap().is_empty(), "nothing was filed");
    assert!(w.events().await.is_empty(), "nothing was recorded");
}

async fn proofs_verify_against_the_signed_head(store: Arc<dyn Store>) {
    let w = World::new(store.clone()).await;
    let carol = w.who("carol");
    assert!(
        matches!(w.broker.inclusion_proof(&carol, 1).await, Err(BrokerError::NotFound(_))),
        "no events yet"
    );
    w.granted().await;
    assert!(
        matches!(w.broker.inclusion_proof(&carol, 1).await, Err(BrokerError::Conflict(_))),
        "no checkpoint yet"
    );
    let checkpoint = w.broker.sign_checkpoint(false).await.unwrap().unwrap();
    let key = w.broker.verifying_key();
    for seq in 1..=checkpoint.size as i64 {
        let proof = w.broker.inclusion_proof(&carol, seq).await.unwrap();
        assert_eq!(proof.tree_size, checkpoint.size);
        assert_eq!(proof.root, checkpoint.root);
        let decode = |h: &str| hex::decode(h).unwrap();
        let path: Vec<Vec<u8>> = proof.proof.iter().map(|h| decode(h)).collect();
        ward_core::merkle::verify_inclusion(
            proof.leaf_index,
            proof.tree_size,
            &decode(&proof.leaf_hash),
            &path,
            &decode(&proof.root),
        )
        .unwrap();
        let signed = ward_core::checkpoint::verify(&proof.checkpoint, w.broker.audit_origin(), &key).unwrap();
        assert_eq!(hex::encode(signed.root), proof.root);
    }
    // Beyond the checkpoint (its own event), not yet provable; others' events are not shown.
    let after = checkpoint.size as i64 + 1;
    assert!(matches!(w.broker.inclusion_proof(&carol, after).await, Err(BrokerError::Conflict(_))));
    assert!(matches!(w.broker.inclusion_proof(&w.who("dave"), 1).await, Err(BrokerError::NotFound(_))));
    assert!(w.broker.inclusion_proof(&w.who("alice"), 1).await.is_ok(), "alice took part in event 1");

    let head = store.head().await.unwrap();
    let proof = w.broker.consistency_proof(2, head.size).await.unwrap();
    let decode = |h: &str| hex::decode(h).unwrap();
    let path: Vec<Vec<u8>> = proof.proof.iter().map(|h| decode(h)).collect();
    ward_core::merkle::verify_consistency(2, head.size, &decode(&proof.root1), &decode(&proof.root2), &path)
        .unwrap();
    assert_eq!(proof.root2, head.root);
    let to_checkpoint = w.broker.consistency_proof(1, checkpoint.size).await.unwrap();
    assert_eq!(to_checkpoint.checkpoints.len(), 1, "the signed head is included");
    assert_eq!(to_checkpoint.checkpoints[0], checkpoint.note);
    for (a, b) in [(0, 1), (3, 2), (1, head.size + 1)] {
        assert!(
            matches!(w.broker.consistency_proof(a, b).await, Err(BrokerError::Unacceptable(_))),
            "{a}..{b}"
        );
    }
}

async fn checkpoints_sign_the_head_when_the_log_grew(store: Arc<dyn Store>) {
    let w = World::new(store.clone()).await;
    assert_eq!(w.broker.sign_checkpoint(false).await.unwrap(), None, "nothing to sign in an empty log");
    w.granted().await;
    let head = store.head().await.unwrap();
    let first = w.broker.sign_checkpoint(false).await.unwrap().unwrap();
    assert_eq!((first.size, first.root.as_str()), (head.size, head.root.as_str()));
    let note = ward_core::checkpoint::verify(&first.note, w.broker.audit_origin(), &w.broker.verifying_key())
        .unwrap();
    assert_eq!(note.size, head.size);
    assert_eq!(hex::encode(note.root), head.root);
    let events = w.events().await;
    let recorded = events.last().unwrap();
    assert_eq!(recorded.event_type, EventType::AuditCheckpoint);
    assert_eq!(recorded.details["size"], head.size);
    assert_eq!(recorded.details["note"], first.note.as_str());

    // Only its own event since: nothing new to sign, unless asked.
    assert_eq!(w.broker.sign_checkpoint(false).await.unwrap(), None);
    let forced = w.broker.sign_checkpoint(true).await.unwrap().unwrap();
    assert_eq!(forced.size, head.size + 1);
    assert_eq!(w.broker.latest_checkpoint().await.unwrap(), Some(forced));
    assert!(w.broker.verifier_key().starts_with("ward.quickstart/audit+"));
}

#[tokio::test]
async fn checkpoints_are_copied_to_the_directory_sink() {
    let store = sqlite().await.unwrap();
    let sink = tempfile::tempdir().unwrap();
    let mut config = config();
    config.audit.checkpoint_dir = Some(sink.path().join("checkpoints"));
    let broker = ward_service::broker_for(&config, store, Arc::new(ManualClock::new(t0()))).await.unwrap();
    let alice = broker.caller("alice").unwrap();
    broker.create_request(&alice, ask("logs:payments-api", "read", 60)).await.unwrap();
    let record = broker.sign_checkpoint(false).await.unwrap().unwrap();
    let latest = std::fs::read_to_string(sink.path().join("checkpoints/latest.checkpoint")).unwrap();
    assert_eq!(latest, record.note);
    let numbered = sink.path().join(format!("checkpoints/{:020}.checkpoint", record.size));
    assert_eq!(std::fs::read_to_string(numbered).unwrap(), record.note);
}

/// Pushed logs past their resource's quota are refused whole and on record; expired days make
/// room again.
#[tokio::test]
async fn pushed_logs_stop_at_their_quota_until_old_days_expire() {
    let store = sqlite().await.unwrap();
    let pushed = tempfile::tempdir().unwrap();
    let mut config = config();
    config.logs.push_dir = pushed.path().to_owned();
    config.logs.push.get_mut("logs:checkout-web").unwrap().quota_bytes = 300;
    let clock = Arc::new(ManualClock::new(t0()));
    let broker = ward_service::broker_for(&config, store.clone(), clock.clone()).await.unwrap();
    let shipper = broker.caller("log-shipper").unwrap();
    let batch = "{\"msg\":\"checkout failed\"}\n".repeat(8).into_bytes();
    assert_eq!(batch.len(), 208);
    assert_eq!(broker.push_logs(&shipper, "logs:checkout-web", batch.clone(), JSON_LINES).await.unwrap(), 8);
    let held = || ward_logs::push::stored_bytes(pushed.path(), "logs:checkout-web").unwrap();
    assert_eq!(held(), 208);

    let full = broker.push_logs(&shipper, "logs:checkout-web", batch.clone(), JSON_LINES).await.unwrap_err();
    assert!(matches!(&full, BrokerError::Full(why) if why.contains("push_quota is 300")), "{full}");
    assert_eq!(held(), 208, "nothing of the refused batch was stored");
    let refusals = store
        .events(&EventFilter { event_type: Some(EventType::AccessDenied), limit: 10, ..Default::default() })
        .await
        .unwrap();
    assert_eq!(refusals.len(), 1);
    assert_eq!(refusals[0].details["action"], "logs.push");

    // Past the retention (7 days), the old day is removed before the quota is checked.
    clock.advance(SignedDuration::from_hours(8 * 24));
    assert_eq!(broker.push_logs(&shipper, "logs:checkout-web", batch, JSON_LINES).await.unwrap(), 8);
    assert_eq!(held(), 208);
}

async fn the_policy_set_in_force_is_on_record(store: Arc<dyn Store>) {
    let w = World::new(store.clone()).await;
    assert!(w.broker.record_policies_in_force().await.unwrap());
    assert!(!w.broker.record_policies_in_force().await.unwrap(), "unchanged: nothing new to record");
    let events = w.events().await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_type, EventType::PolicyChanged);
    assert_eq!(events[0].details["hash"], w.broker.policy().hash());
    assert!(events[0].details["policy_ids"].as_array().unwrap().iter().any(|id| id == "payments-api.read"));
    // Whole: the snapshot it names is kept, and decides as the set in force does.
    let digest = events[0].details["snapshot"].as_str().unwrap();
    let body = store.policy_snapshot(digest).await.unwrap().unwrap();
    let kept = ward_core::policy::PolicySnapshot::open(&body, digest).unwrap();
    assert_eq!(kept, w.broker.policy().snapshot());
    assert_eq!(kept.engine().unwrap().hash(), w.broker.policy().hash());

    // Restarted with the same policies over people edited meanwhile: who joined is recorded,
    // with the new snapshot.
    let mut edited = config();
    let mut users = edited.directory.users().clone();
    users.insert("frank".into(), ward_core::directory::UserEntry { groups: vec!["payments-leads".into()] });
    edited.directory = edited.directory.with_people(users, edited.directory.groups().clone()).unwrap();
    let restarted = ward_service::broker_for(&edited, store.clone(), w.clock.clone()).await.unwrap();
    assert!(restarted.record_policies_in_force().await.unwrap());
    let events = w.events().await;
    assert_eq!(events.len(), 2, "people changed, the policies did not: {events:?}");
    assert_eq!(events[1].event_type, EventType::DirectoryReloaded);
    assert_eq!(events[1].details["users_added"], serde_json::json!(["frank"]));
    let digest = events[1].details["snapshot"].as_str().unwrap();
    assert_eq!(digest, restarted.policy().snapshot().record().unwrap().digest);
    assert!(store.policy_snapshot(digest).await.unwrap().is_some());
    assert!(!restarted.record_policies_in_force().await.unwrap());

    // Restarted with other policies: recorded again, naming the previous set.
    let mut config = config();
    config.policy_paths.truncate(0);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("only.cedar");
    std::fs::write(&file, "@id(\"nobody\") forbid (principal, action, resource);").unwrap();
    config.policy_paths.push(file);
    let other = ward_service::broker_for(&config, store, w.clock.clone()).await.unwrap();
    assert!(other.record_policies_in_force().await.unwrap());
    let events = w.events().await;
    assert_eq!(events[2].details["previous_hash"], events[0].details["hash"]);
    assert_eq!(events[2].details["policy_ids"], serde_json::json!(["nobody"]));
}

async fn access_is_exactly_the_window_and_expires_by_itself(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    assert!(!w.allowed("alice").await, "no grant yet");
    let grant = w.granted().await;
    assert_eq!(grant.state, GrantState::Active);
    assert_eq!(grant.expires_at, grant.starts_at + SignedDuration::from_mins(30));
    let outcome = w.broker.check(&w.who("alice"), "alice", "read", "logs:payments-api").await.unwrap();
    assert!(outcome.allowed);
    assert_eq!(outcome.grant_id.as_ref(), Some(&grant.id));
    assert!(!w.allowed("erin").await, "a grant is the holder's only");

    // The scheduler has not run: the check alone denies at expires_at, to the millisecond.
    w.clock.set(grant.expires_at - SignedDuration::from_millis(1));
    assert!(w.allowed("alice").await);
    w.clock.set(grant.expires_at);
    let outcome = w.broker.check(&w.who("alice"), "alice", "read", "logs:payments-api").await.unwrap();
    assert!(!outcome.allowed);
    assert!(outcome.reason.contains("no active grant"), "{}", outcome.reason);

    let report = w.broker.run_due(w.clock.now()).await.unwrap();
    assert_eq!(report.expired, 1);
    let expired = w.store.grant(grant.id.as_str()).await.unwrap().unwrap();
    assert_eq!(expired.state, GrantState::Expired);
    assert_eq!(expired.ended_at, Some(grant.expires_at));
    let events = w.events().await;
    let expiry = events.iter().find(|e| e.event_type == EventType::GrantExpired).unwrap();
    assert_eq!(expiry.occurred_at, grant.expires_at);
    assert_eq!(expiry.actor, "ward");
}

async fn approval_rules_and_refusals_are_enforced_and_recorded(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let request = w.request("alice", "logs:payments-api", "read", 1800).await;
    let id = request.id.as_str();
    let refused = |r: Result<AccessRequest, BrokerError>| match r {
        Err(BrokerError::Lifecycle(e)) => e,
        other => panic!("expected a refusal, got {other:?}"),
    };
    assert!(matches!(
        refused(w.broker.approve(&w.who("alice"), id, None).await),
        LifecycleError::SelfDecision(_)
    ));
    // dave may not decide it, so he may not see it either: he learns nothing of it.
    let hidden = w.broker.approve(&w.who("dave"), id, None).await;
    assert!(matches!(hidden, Err(BrokerError::NotFound(_))), "{hidden:?}");
    assert!(matches!(
        refused(w.broker.approve(&w.who("admin"), id, None).await),
        LifecycleError::NotEligible { .. }
    ));
    assert!(matches!(refused(w.broker.cancel(&w.who("bob"), id).await), LifecycleError::NotRequester { .. }));

    // Admins may ask, but never decide their own request.
    let own = w.request("admin", "logs:checkout-web", "read", 600).await;
    assert!(matches!(
        refused(w.broker.approve(&w.who("admin"), own.id.as_str(), None).await),
        LifecycleError::SelfDecision(_)
    ));

    // Two distinct payments leads for unmasked reading.
    let unmasked = w.request("alice", "logs:payments-api", "read-unmasked", 1800).await;
    assert_eq!(unmasked.approvals_required, 2);
    let once = w.broker.approve(&w.who("bob"), unmasked.id.as_str(), None).await.unwrap();
    assert_eq!(once.state, RequestState::Pending);
    assert!(matches!(
        refused(w.broker.approve(&w.who("bob"), unmasked.id.as_str(), None).await),
        LifecycleError::AlreadyApproved(_)
    ));
    let twice = w.broker.approve(&w.who("erin"), unmasked.id.as_str(), None).await.unwrap();
    assert_eq!(twice.state, RequestState::Approved);

    // Policy refusals at filing.
    let carol = w.broker.create_request(&w.who("carol"), ask("logs:payments-api", "read", 60)).await;
    assert!(matches!(carol, Err(BrokerError::Refused(Refusal::NotPermitted { .. }))));
    let too_long =
        w.broker.create_request(&w.who("alice"), ask("logs:payments-api", "read-unmasked", 7200)).await;
    assert!(matches!(too_long, Err(BrokerError::Refused(Refusal::TooLong { max_seconds: 3600, .. }))));
    let mut empty = ask("logs:payments-api", "read", 60);
    empty.reason = " ".into();
    assert!(matches!(w.broker.create_request(&w.who("alice"), empty).await, Err(BrokerError::Invalid(_))));

    // A decision on a decided request.
    let denied = w.broker.deny(&w.who("bob"), id, "no ticket".into()).await.unwrap();
    assert_eq!(denied.state, RequestState::Denied);
    assert!(matches!(
        refused(w.broker.approve(&w.who("erin"), id, None).await),
        LifecycleError::NotPending { .. }
    ));

    // Every refusal is in the log, attributed: the first per caller, action and resource at
    // once, a repeat in the same period in the period's summary.
    w.broker.flush_usage().await.unwrap();
    let denials: Vec<AuditEvent> =
        w.events().await.into_iter().filter(|e| e.event_type == EventType::AccessDenied).collect();
    let actors: Vec<&str> = denials.iter().map(|e| e.actor.as_str()).collect();
    assert_eq!(actors, ["alice", "dave", "admin", "bob", "admin", "bob", "carol", "alice", "erin", "alice"]);
    assert!(
        denials
            .iter()
            .all(|e| e.reason.as_deref().is_some_and(|r| !r.is_empty()) || e.details["summary"] == true)
    );
    assert_eq!(denials[0].details["action"], "approve");
    let summary = denials.last().unwrap();
    assert_eq!(
        (summary.details["action"].as_str(), summary.details["count"].as_u64()),
        (Some("request"), Some(1))
    );
}

async fn release_and_revoke_end_access_at_once(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let grant = w.granted().await;
    assert!(w.allowed("alice").await);
    let refused = w.broker.release(&w.who("bob"), grant.id.as_str()).await;
    assert!(matches!(refused, Err(BrokerError::Lifecycle(LifecycleError::NotHolder { .. }))));
    let released = w.broker.release(&w.who("alice"), grant.id.as_str()).await.unwrap();
    assert_eq!(released.state, GrantState::Released);
    assert!(!w.allowed("alice").await, "released access ends at once");

    let second = w.granted().await;
    let unseen = w.broker.revoke(&w.who("dave"), second.id.as_str(), "why not".into()).await;
    assert!(matches!(unseen, Err(BrokerError::NotFound(_))), "dave may not even see it: {unseen:?}");
    let forbidden = w.broker.revoke(&w.who("alice"), second.id.as_str(), "why not".into()).await;
    assert!(matches!(forbidden, Err(BrokerError::Forbidden(_))), "the holder releases, not revokes");
    assert!(w.allowed("alice").await);
    // An approver for the resource may revoke; so may an admin; twice is harmless.
    let revoked = w.broker.revoke(&w.who("bob"), second.id.as_str(), "incident closed".into()).await.unwrap();
    assert_eq!((revoked.state, revoked.ended_by.as_deref()), (GrantState::Revoked, Some("bob")));
    assert!(!w.allowed("alice").await, "revoked access ends at once");
    let again = w.broker.revoke(&w.who("admin"), second.id.as_str(), "again".into()).await.unwrap();
    assert_eq!(again.ended_by.as_deref(), Some("bob"));
    // Revoked or not, a grant is no one else's business.
    let nosy = w.broker.revoke(&w.who("dave"), second.id.as_str(), "again".into()).await;
    assert!(matches!(nosy, Err(BrokerError::NotFound(_))), "{nosy:?}");
    let revocations = w.types().await.iter().filter(|t| **t == "grant.revoked").count();
    assert_eq!(revocations, 1);

    let third = w.granted().await;
    let by_admin = w.broker.revoke(&w.who("admin"), third.id.as_str(), "offboarding".into()).await.unwrap();
    assert_eq!(by_admin.state, GrantState::Revoked);
    // Ended grants cannot be released.
    let late = w.broker.release(&w.who("alice"), third.id.as_str()).await;
    assert!(matches!(late, Err(BrokerError::Lifecycle(LifecycleError::GrantEnded { .. }))));
}

async fn refusals_are_summarised_and_pending_requests_capped(store: Arc<dyn Store>) {
    let mut config = config();
    config.max_pending_requests = 3;
    let clock = Arc::new(ManualClock::new(t0()));
    let broker = ward_service::broker_for(&config, store.clone(), clock.clone()).await.unwrap();
    let w = World { broker, clock, store };
    let request = w.request("alice", "logs:payments-api", "read", 1800).await;
    let alice = w.who("alice");
    for _ in 0..30 {
        assert!(w.broker.approve(&alice, request.id.as_str(), None).await.is_err());
    }
    let denied = |events: Vec<AuditEvent>| -> Vec<AuditEvent> {
        events.into_iter().filter(|e| e.event_type == EventType::AccessDenied).collect()
    };
    assert_eq!(denied(w.events().await).len(), 1, "the first refusal at once, the rest counted");
    w.broker.flush_usage().await.unwrap();
    let refusals = denied(w.events().await);
    assert_eq!(refusals.len(), 2);
    assert_eq!(
        (refusals[1].details["summary"].as_bool(), refusals[1].details["count"].as_u64()),
        (Some(true), Some(29))
    );
    assert_eq!(refusals[1].details["action"], "approve");

    // Three pending at most: the fourth is refused, on record, until one is decided.
    w.request("alice", "logs:payments-api", "read", 1800).await;
    w.request("alice", "logs:checkout-web", "read", 1800).await;
    let fourth = w.broker.create_request(&alice, ask("logs:payments-api", "read", 600)).await;
    assert!(
        matches!(&fourth, Err(BrokerError::Conflict(why)) if why.contains("max_pending_requests")),
        "{fourth:?}"
    );
    let last = denied(w.events().await).pop().unwrap();
    assert_eq!((last.details["action"].as_str(), last.actor.as_str()), (Some("request"), "alice"));
    w.broker.cancel(&alice, request.id.as_str()).await.unwrap();
    w.broker.create_request(&alice, ask("logs:payments-api", "read", 600)).await.unwrap();
    // Others are not held back by alice's requests.
    w.request("dave", "logs:payments-api", "read", 600).await;
}

async fn unanswered_requests_lapse(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let request = w.request("alice", "logs:payments-api", "read", 1800).await;
    assert_eq!(request.lapses_at, t0() + SignedDuration::from_hours(24), "pending_ttl from ward.toml");
    w.clock.set(request.lapses_at - SignedDuration::from_millis(1));
    assert_eq!(w.broker.run_due(w.clock.now()).await.unwrap().lapsed, 0);
    w.clock.set(request.lapses_at + SignedDuration::from_secs(2));
    assert_eq!(w.broker.run_due(w.clock.now()).await.unwrap().lapsed, 1);
    let lapsed = w.store.request(request.id.as_str()).await.unwrap().unwrap();
    assert_eq!(lapsed.state, RequestState::Lapsed);
    let late = w.broker.approve(&w.who("bob"), request.id.as_str(), None).await;
    assert!(matches!(late, Err(BrokerError::Lifecycle(LifecycleError::NotPending { .. }))));
    let event = w.events().await.into_iter().find(|e| e.event_type == EventType::RequestLapsed).unwrap();
    assert_eq!(event.occurred_at, request.lapses_at);
    assert_eq!(event.details["lag_ms"], 2000);

    let checkout = w.request("alice", "logs:checkout-web", "read", 1800).await;
    assert_eq!(
        checkout.lapses_at,
        w.clock.now() + SignedDuration::from_hours(4),
        "its permit's @pending_ttl"
    );
}

async fn a_restart_catches_up_without_double_processing(store: Arc<dyn Store>) {
    let clock = Arc::new(ManualClock::new(t0()));
    let before = World::with_clock(store.clone(), clock.clone()).await;
    let grant = before.granted().await;
    drop(before);

    // ward was down for an hour; a new process starts on the same store.
    clock.advance(SignedDuration::from_hours(1));
    let after = World::with_clock(store, clock.clone()).await;
    assert!(!after.allowed("alice").await, "expired while down: denied before the scheduler runs");
    let first = after.broker.run_due(clock.now()).await.unwrap();
    assert_eq!(first.expired, 1);
    assert_eq!(after.broker.run_due(clock.now()).await.unwrap().expired, 0, "no double processing");
    let expiry: Vec<AuditEvent> =
        after.events().await.into_iter().filter(|e| e.event_type == EventType::GrantExpired).collect();
    assert_eq!(expiry.len(), 1);
    assert_eq!(expiry[0].occurred_at, grant.expires_at);
    assert_eq!(expiry[0].recorded_at, clock.now());
    assert_eq!(expiry[0].details["lag_ms"], 30 * 60 * 1000);
}

async fn scheduled_grants_open_at_their_start(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let start = t0() + SignedDuration::from_mins(10);
    let input = RequestInput { start_at: Some(start), ..ask("logs:payments-api", "read", 600) };
    let request = w.broker.create_request(&w.who("alice"), input).await.unwrap();
    let approved = w.broker.approve(&w.who("erin"), request.id.as_str(), None).await.unwrap();
    let grant = w.store.grant(approved.grant_id.unwrap().as_str()).await.unwrap().unwrap();
    assert_eq!(grant.state, GrantState::Scheduled);
    assert_eq!(w.broker.next_due_at().await.unwrap(), Some(start));
    assert!(!w.allowed("alice").await);
    w.clock.set(start);
    assert!(w.allowed("alice").await, "the window decides, even before the scheduler runs");
    assert_eq!(w.broker.run_due(start).await.unwrap().activated, 1);
    assert_eq!(w.store.grant(grant.id.as_str()).await.unwrap().unwrap().state, GrantState::Active);
    assert_eq!(w.broker.next_due_at().await.unwrap(), Some(start + SignedDuration::from_mins(10)));

    let past = RequestInput {
        start_at: Some(t0() - SignedDuration::from_hours(1)),
        ..ask("logs:payments-api", "read", 600)
    };
    assert!(matches!(
        w.broker.create_request(&w.who("alice"), past).await,
        Err(BrokerError::Unacceptable(_))
    ));
    let far = RequestInput {
        start_at: Some(t0() + SignedDuration::from_hours(24 * 31)),
        ..ask("logs:payments-api", "read", 600)
    };
    let refused = w.broker.create_request(&w.who("alice"), far).await.unwrap_err().to_string();
    assert!(refused.contains("more than 30d") || refused.contains("ahead"), "{refused}");
}

/// The quickstart world with a default idle timeout of ten minutes (`idle_timeout`).
fn config_with_idle_timeout() -> Config {
    let data = data_dir();
    let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/quickstart/ward.toml"));
    Config::load(&path, &|name| match name {
        "WARD_DATA_DIR" => Some(data.clone()),
        "WARD_IDLE_TIMEOUT" => Some("10m".into()),
        _ => None,
    })
    .unwrap()
}

async fn an_unused_grant_ends_after_its_idle_timeout(store: Arc<dyn Store>) {
    let clock = Arc::new(ManualClock::new(t0()));
    let broker =
        ward_service::broker_for(&config_with_idle_timeout(), store.clone(), clock.clone()).await.unwrap();
    let w = World { broker, clock, store };
    let minutes = |m: i64| t0() + SignedDuration::from_mins(m);

    // Never used: it ends ten minutes after its start, checks first, whatever the scheduler does.
    let unused = w.granted().await;
    assert_eq!((unused.idle_timeout_seconds, unused.idle_at()), (Some(600), Some(minutes(10))));
    w.clock.set(minutes(10));
    assert!(!w.allowed("alice").await, "unused for ten minutes");
    let report = w.broker.run_due(minutes(10)).await.unwrap();
    assert_eq!(report.expired, 1);
    let ended = w.store.grant(unused.id.as_str()).await.unwrap().unwrap();
    assert_eq!(
        (ended.state, ended.ended_at, ended.end_reason.as_deref()),
        (GrantState::Expired, Some(minutes(10)), Some("idle"))
    );
    let events = w.events().await;
    let expiry = events.iter().find(|e| e.event_type == EventType::GrantExpired).unwrap();
    assert_eq!(
        (expiry.reason.as_deref(), &expiry.details["idle_timeout_seconds"]),
        (Some("idle"), &600.into())
    );

    // Used: each use moves the deadline, the last one seen here before it is on record too.
    let used = w.granted().await;
    w.clock.set(minutes(12));
    let alice = w.who("alice");
    let check = || w.broker.check(&alice, "alice", "read", "logs:payments-api");
    let first = check().await.unwrap();
    assert!(first.allowed, "the first use, on record at once");
    assert_eq!(first.expires_at, Some(minutes(22)), "the answer holds until the idle deadline it moved");
    w.clock.set(minutes(16));
    let again = check().await.unwrap();
    assert!(again.allowed, "a repeated use, counted for the next summary");
    assert_eq!(again.expires_at, Some(minutes(26)));
    w.clock.set(minutes(23));
    // On record, the grant went idle at 22 minutes; seen here, a use at 16 holds it to 26.
    let stored = w.store.grant(used.id.as_str()).await.unwrap().unwrap();
    assert_eq!(stored.idle_at(), Some(minutes(22)));
    let shown = w.broker.get_grant(&w.who("alice"), used.id.as_str()).await.unwrap();
    assert_eq!((shown.last_used_at, shown.idle_at()), (Some(minutes(16)), Some(minutes(26))));
    let report = w.broker.run_due(minutes(23)).await.unwrap();
    assert_eq!(report.expired, 0, "a use the store had not heard of yet keeps it");
    let stored = w.store.grant(used.id.as_str()).await.unwrap().unwrap();
    assert_eq!(
        (stored.state, stored.last_used_at),
        (GrantState::Active, Some(minutes(16))),
        "and is written"
    );
    let summary = w.events().await.into_iter().rev().find(|e| e.details["summary"] == true).unwrap();
    assert_eq!(summary.details["last_at"], serde_json::json!(minutes(16)));
    assert_eq!(w.broker.next_due_at().await.unwrap(), Some(minutes(26)));

    w.clock.set(minutes(26));
    assert!(!w.allowed("alice").await);
    assert_eq!(w.broker.run_due(minutes(26)).await.unwrap().expired, 1);
    let ended = w.store.grant(used.id.as_str()).await.unwrap().unwrap();
    assert_eq!((ended.ended_at, ended.end_reason.as_deref()), (Some(minutes(26)), Some("idle")));
    let expiry =
        w.events().await.into_iter().rev().find(|e| e.event_type == EventType::GrantExpired).unwrap();
    assert_eq!(expiry.details["last_used_at"], serde_json::json!(minutes(16)));
    // Releasing it now says it has expired, not that it was released.
    assert!(matches!(
        w.broker.release(&w.who("alice"), used.id.as_str()).await,
        Err(BrokerError::Lifecycle(LifecycleError::GrantEnded { .. }))
    ));
}

async fn repeated_checks_are_summarised_not_lost(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let grant = w.granted().await;
    for _ in 0..3 {
        assert!(w.allowed("alice").await);
    }
    for _ in 0..4 {
        assert!(!w.allowed("erin").await);
    }
    let uses = |events: &[AuditEvent], t: EventType| {
        events.iter().filter(|e| e.event_type == t).cloned().collect::<Vec<_>>()
    };
    let events = w.events().await;
    let used = uses(&events, EventType::AccessUsed);
    assert_eq!(used.len(), 1, "only the first use is an event at once");
    assert_eq!(used[0].grant_id.as_deref(), Some(grant.id.as_str()));
    assert_eq!(used[0].details["first_use"], true);
    assert_eq!(uses(&events, EventType::AccessDenied).len(), 1, "only the first refusal is an event at once");
    assert_eq!(w.store.grant(grant.id.as_str()).await.unwrap().unwrap().first_used_at, Some(t0()));

    assert_eq!(w.broker.flush_usage().await.unwrap(), 2);
    let events = w.events().await;
    let summaries: Vec<AuditEvent> = events.into_iter().filter(|e| e.details["summary"] == true).collect();
    let count = |t: EventType| summaries.iter().find(|e| e.event_type == t).unwrap().details["count"].clone();
    assert_eq!(count(EventType::AccessUsed), 2);
    assert_eq!(count(EventType::AccessDenied), 3);
    assert_eq!(w.broker.flush_usage().await.unwrap(), 0, "nothing counted twice");
}

async fn concurrent_approvers_both_count(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let request = w.request("alice", "logs:payments-api", "read-unmasked", 600).await;
    let (bob, erin) = (w.who("bob"), w.who("erin"));
    let (a, b) = tokio::join!(
        w.broker.approve(&bob, request.id.as_str(), None),
        w.broker.approve(&erin, request.id.as_str(), None)
    );
    a.unwrap();
    b.unwrap();
    let done = w.store.request(request.id.as_str()).await.unwrap().unwrap();
    assert_eq!(done.state, RequestState::Approved);
    assert_eq!(done.approvals.len(), 2);
    assert_eq!(w.store.grants(&GrantFilter::default()).await.unwrap().len(), 1);
}

async fn tokens_authenticate_until_they_expire(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let operator = Broker::local_operator("root");
    let (token, record) = w.broker.tokens().mint(&operator, "bob", 3600, None).await.unwrap();
    assert!(token.starts_with("ward_") && record.id.starts_with("tok_"));
    assert_ne!(record.hash, token, "only the hash is kept");
    assert_eq!(w.broker.tokens().authenticate(&token).await.unwrap().name, "bob");
    assert!(w.broker.tokens().authenticate("ward_nope").await.is_err());
    let unknown = w.broker.tokens().mint(&operator, "mallory", 60, None).await;
    assert!(matches!(unknown, Err(BrokerError::NotFound(_))));
    let admin = w.broker.caller("admin").unwrap();
    assert!(admin.admin && !admin.auditor);
    assert!(w.broker.caller("carol").unwrap().auditor);
    w.clock.advance(SignedDuration::from_hours(1));
    let expired = w.broker.tokens().authenticate(&token).await.unwrap_err().to_string();
    assert!(expired.contains("expired"), "{expired}");
}

/// A token carries its scopes from minting to every authentication, and into `token.created`;
/// a service principal is a service and nothing else, and must be given its scopes.
async fn scoped_tokens_and_service_principals(store: Arc<dyn Store>) {
    use ward_core::scope::{Scopes, TokenScope};
    let w = World::new(store).await;
    let operator = Broker::local_operator("root");
    let tokens = w.broker.tokens();
    let scopes = |text: &str| Some(Scopes::parse(text).unwrap());

    let (bobs, _) = tokens.mint(&operator, "bob", 3600, scopes("read")).await.unwrap();
    let bob = tokens.authenticate(&bobs).await.unwrap();
    assert!(bob.person && bob.scopes.covers(TokenScope::Read) && !bob.scopes.covers(TokenScope::Admin));
    let (plain, _) = tokens.mint(&operator, "alice", 3600, None).await.unwrap();
    assert_eq!(tokens.authenticate(&plain).await.unwrap().scopes, Scopes::all(), "a user's default");

    let (shippers, record) =
        tokens.mint(&operator, "service:log-shipper", 3600, scopes("push,check")).await.unwrap();
    let shipper = tokens.authenticate(&shippers).await.unwrap();
    assert_eq!(shipper.name, "service:log-shipper");
    assert!(shipper.service && !shipper.person && !shipper.admin && !shipper.auditor);
    assert_eq!(shipper.scopes.names(), ["check", "push"]);
    let roles = ward_service::roles::roles_of(&shipper, &w.broker.policy());
    assert_eq!(roles, [ward_service::roles::WardRole::Service], "no requester, no approver");
    let created = w.events().await.into_iter().find(|e| e.details["token_id"] == record.id.as_str()).unwrap();
    assert_eq!(created.subject.as_deref(), Some("service:log-shipper"));
    assert_eq!(created.details["scopes"], serde_json::json!(["check", "push"]));

    for (principal, given, why) in [
        ("service:log-shipper", None, "needs its scopes"),
        ("service:Log Shipper", scopes("push"), "lowercase letters"),
        ("service:", scopes("push"), "lowercase letters"),
    ] {
        let refused = tokens.mint(&operator, principal, 3600, given).await.unwrap_err().to_string();
        assert!(refused.contains(why), "{principal}: {refused}");
    }
    // A person's roles: bob approves on the quickstart's resources; carol audits.
    let roles = |name: &str| ward_service::roles::roles_of(&w.who(name), &w.broker.policy());
    use ward_service::roles::WardRole::{Approver, Auditor, Requester};
    assert_eq!(roles("bob"), [Requester, Approver]);
    assert!(roles("carol").contains(&Auditor) && !roles("carol").contains(&Approver), "{:?}", roles("carol"));
}

async fn tokens_are_recorded_listed_and_revoked_at_once(store: Arc<dyn Store>) {
    let w = World::new(store.clone()).await;
    // `ward admin token …` runs in another process: a broker of its own on the same store.
    let local = ward_service::broker_for(&config(), store, w.clock.clone()).await.unwrap();
    let operator = Broker::local_operator("root");
    let (bobs, bob_record) = local.tokens().mint(&operator, "bob", 3600, None).await.unwrap();
    let (alices, _) = local.tokens().mint(&operator, "alice", 3600, None).await.unwrap();
    let created = w.events().await;
    assert_eq!(
        (created[0].event_type, created[0].actor.as_str(), created[0].subject.as_deref()),
        (EventType::TokenCreated, "local:root", Some("bob"))
    );
    assert_eq!(created[0].details["token_id"], bob_record.id.as_str());
    assert!(!created[0].details.to_string().contains(&bobs), "never the secret");

    // The server has both cached when the revocation happens elsewhere.
    let bob = w.broker.tokens().authenticate(&bobs).await.unwrap();
    w.broker.tokens().authenticate(&bobs).await.unwrap();
    w.broker.tokens().authenticate(&alices).await.unwrap();
    let revoked = local.tokens().revoke(&operator, &bob_record.id).await.unwrap();
    assert_eq!(revoked.revoked_by.as_deref(), Some("local:root"));
    let refused = w.broker.tokens().authenticate(&bobs).await.unwrap_err();
    assert!(
        matches!(&refused, BrokerError::Unauthenticated(why) if why.contains("revoked")),
        "refused on the next request: {refused}"
    );
    w.broker.tokens().authenticate(&alices).await.unwrap();
    let again = local.tokens().revoke(&operator, &bob_record.id).await.unwrap();
    assert_eq!(again.revoked_at, revoked.revoked_at, "revoking twice changes nothing");
    let types = w.types().await;
    assert_eq!(types.iter().filter(|t| **t == "token.revoked").count(), 1);

    // Users see and revoke only their own; admins anyone's.
    let alice = w.who("alice");
    let mine = w.broker.tokens().list(&alice, None).await.unwrap();
    assert_eq!(mine.iter().map(|t| t.principal.as_str()).collect::<Vec<_>>(), ["alice"]);
    assert!(matches!(w.broker.tokens().list(&alice, Some("bob")).await, Err(BrokerError::Forbidden(_))));
    assert_eq!(w.broker.tokens().list(&w.who("admin"), None).await.unwrap().len(), 2);
    let alice_id = mine[0].id.clone();
    let not_hers = w.broker.tokens().revoke(&bob, &alice_id).await;
    assert!(matches!(not_hers, Err(BrokerError::NotFound(_))), "{not_hers:?}");
    w.broker.tokens().authenticate(&alices).await.unwrap();
    let own = w.broker.tokens().revoke(&alice, &alice_id).await.unwrap();
    assert!(own.revoked_at.is_some());
    assert!(w.broker.tokens().authenticate(&alices).await.is_err());
    let last = w.events().await.pop().unwrap();
    assert_eq!((last.event_type, last.actor.as_str()), (EventType::TokenRevoked, "alice"));
}

async fn people_reload_with_the_policies(store: Arc<dyn Store>) {
    let world = tempfile::tempdir().unwrap();
    let quickstart = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/quickstart"));
    copy_dir(&quickstart, world.path());
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().display().to_string();
    let path = world.path().join("ward.toml");
    let config = Config::load(&path, &|name| (name == "WARD_DATA_DIR").then(|| data_dir.clone())).unwrap();
    let clock = Arc::new(ManualClock::new(t0()));
    let broker = ward_service::broker_for(&config, store.clone(), clock.clone()).await.unwrap();
    let w = World { broker, clock, store };
    let first = w.request("alice", "logs:payments-api", "read", 1800).await;
    let second = w.request("alice", "logs:payments-api", "read", 1800).await;
    w.broker.approve(&w.who("bob"), first.id.as_str(), None).await.unwrap();

    // bob leaves the payments leads; frank joins ward.
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text.replace(
        "bob = { groups = [\"engineering\", \"payments-leads\"] }",
        "bob = { groups = [\"engineering\"] }\nfrank = { groups = [\"engineering\"] }",
    );
    std::fs::write(&path, text).unwrap();
    let bob = w.who("bob");
    let reload = w.broker.reload_policies("admin").await.unwrap();
    assert!(reload.changed && reload.hash == reload.previous_hash, "the same policies over other people");
    assert_eq!(reload.directory.users_added, ["frank"]);
    assert_eq!(reload.directory.groups["payments-leads"].removed, ["bob"]);
    let refused = w.broker.approve(&w.who("bob"), second.id.as_str(), None).await;
    assert!(refused.is_err(), "no longer an approver, at once: {refused:?}");
    assert!(w.broker.caller("frank").is_some());
    let reloaded =
        w.events().await.into_iter().find(|e| e.event_type == EventType::DirectoryReloaded).unwrap();
    assert_eq!(reloaded.actor, "admin");
    assert_eq!(reloaded.details["groups"]["payments-leads"]["removed"][0], "bob");
    assert_eq!(reloaded.details["users_added"][0], "frank");
    // A caller resolved before the reload keeps no stale rights either.
    let stale = w.broker.approve(&bob, second.id.as_str(), None).await;
    assert!(stale.is_err(), "{stale:?}");

    // A file whose people do not load changes nothing.
    std::fs::write(&path, "[users]\nward = {}\n").unwrap();
    let error = w.broker.reload_policies("admin").await.unwrap_err().to_string();
    assert!(error.contains("reserved"), "{error}");
    assert!(w.broker.caller("frank").is_some());
}

/// With `hmac_fields = ["reason", "ticket"]`, no text a person wrote, nor a refusal quoting it,
/// reaches the log in the clear: every event type ward writes is produced with marked text in
/// every input it takes, and no marker is found in any event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_fields_are_hmacs_in_every_event_type() {
    let world = tempfile::tempdir().unwrap();
    let quickstart = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/quickstart"));
    copy_dir(&quickstart, world.path());
    // Refusals that quote a reason and a ticket: a service asks for checkout logs under this permit.
    let quoting = "@id(\"ticketed\") @ticket(\"incident\") @reason_refuses(\"secret-r11\")\n\
        permit (principal in Ward::Group::\"services\", action == Ward::Action::\"request\", \
        resource == Ward::Resource::\"logs:checkout-web\") when { context.role == \"read\" };\n";
    std::fs::write(world.path().join("policies/quoting.cedar"), quoting).unwrap();
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().display().to_string();
    let path = world.path().join("ward.toml");
    let mut config =
        Config::load(&path, &|name| (name == "WARD_DATA_DIR").then(|| data_dir.clone())).unwrap();
    config.audit.hmac_fields = vec![SensitiveField::Reason, SensitiveField::Ticket];
    let clock = Arc::new(ManualClock::new(t0()));
    let store = sqlite().await.unwrap();
    let broker = ward_service::broker_for(&config, store.clone(), clock.clone()).await.unwrap();
    let w = World { broker, clock, store };
    w.broker.record_policies_in_force().await.unwrap();
    let b = &w.broker;
    let (alice, bob, erin, admin) = (w.who("alice"), w.who("bob"), w.who("erin"), w.who("admin"));
    let asked = |reason: &str, ticket: &str| RequestInput {
        reason: reason.into(),
        ticket: Some(ticket.into()),
        ..ask("logs:payments-api", "read", 1800)
    };

    let first = b.create_request(&alice, asked("SECRET-R1 checkout", "SECRET-T1")).await.unwrap();
    let first = b.approve(&bob, first.id.as_str(), Some("SECRET-C1".into())).await.unwrap();
    let grant = first.grant_id.unwrap();
    assert!(w.allowed("alice").await);
    let more =
        ExtendInput { duration_seconds: 600, reason: "SECRET-R2".into(), ticket: Some("SECRET-T2".into()) };
    let extension = b.extend(&alice, grant.as_str(), more).await.unwrap();
    b.approve(&bob, extension.id.as_str(), Some("SECRET-C2".into())).await.unwrap();
    b.revoke(&admin, grant.as_str(), "SECRET-R3".into()).await.unwrap();
    let later = RequestInput {
        start_at: Some(t0() + SignedDuration::from_hours(1)),
        ..asked("SECRET-R4", "SECRET-T4")
    };
    let scheduled = b.create_request(&alice, later).await.unwrap();
    b.approve(&erin, scheduled.id.as_str(), Some("SECRET-C4".into())).await.unwrap();
    let released = b.create_request(&alice, asked("SECRET-R5", "SECRET-T5")).await.unwrap();
    let released = b.approve(&erin, released.id.as_str(), Some("SECRET-C5".into())).await.unwrap();
    b.release(&alice, released.grant_id.unwrap().as_str()).await.unwrap();
    let denied = b.create_request(&alice, asked("SECRET-R6", "SECRET-T6")).await.unwrap();
    b.deny(&erin, denied.id.as_str(), "SECRET-C6".into()).await.unwrap();
    let cancelled = b.create_request(&alice, asked("SECRET-R7", "SECRET-T7")).await.unwrap();
    b.cancel(&alice, cancelled.id.as_str()).await.unwrap();
    b.create_request(&alice, asked("SECRET-R8", "SECRET-T8")).await.unwrap();
    let glass = RequestInput {
        breakglass: true,
        reason: "SECRET-R9".into(),
        ticket: Some("INC-90817".into()),
        ..ask("logs:ledger", "read", 900)
    };
    let glass = b.create_request(&w.who("dave"), glass).await.unwrap();
    let checkout = |reason: &str, ticket: &str| RequestInput {
        reason: reason.into(),
        ticket: Some(ticket.into()),
        ..ask("logs:checkout-web", "read", 600)
    };
    let service = w.who("log-shipper");
    let quoted = b.create_request(&service, checkout("SECRET-R11", "INC-1")).await.unwrap_err();
    assert!(quoted.to_string().contains("SECRET-R11"), "the caller is told: {quoted}");
    let quoted = b.create_request(&service, checkout("ticket please", "SECRET-T10")).await.unwrap_err();
    assert!(quoted.to_string().contains("SECRET-T10"), "the caller is told: {quoted}");

    w.clock.advance(SignedDuration::from_hours(25));
    b.run_due(w.clock.now()).await.unwrap();
    b.review(&w.who("sam"), glass.grant_id.unwrap().as_str(), "SECRET-C9".into()).await.unwrap();
    b.sign_checkpoint(true).await.unwrap();
    let operator = Broker::local_operator("root");
    let (_, token) = b.tokens().mint(&operator, "alice", 60, None).await.unwrap();
    b.tokens().revoke(&operator, &token.id).await.unwrap();
    let text = std::fs::read_to_string(&path).unwrap().replace("[users]\n", "[users]\nfrank = {}\n");
    std::fs::write(&path, text).unwrap();
    b.reload_policies("admin").await.unwrap();
    std::fs::write(world.path().join("policies/broken.cedar"), "permit (").unwrap();
    assert!(b.reload_policies("admin").await.is_err());
    std::fs::remove_file(world.path().join("oncall.toml")).unwrap();
    let _ = b.create_request(&w.who("dave"), ask("logs:ledger", "read", 900)).await;

    let events = w.events().await;
    let written: std::collections::BTreeSet<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    // Not in this walk: `config.changed` (ward does not write it yet), `audit.key_changed`
    // (written only at a start with a new signing key; it carries no text a person wrote) and
    // what the audit log's consumers write (findings, grant audits, failed notifications, debug
    // levels raised and put back), nor what only an identity provider's tokens bring (people from
    // its claims: tests/identity.rs in ward-server) or a directory's SCIM pushes (ward-scim's
    // tests), or browser sessions (ward-session's tests); they carry no text a person wrote.
    let never_written = [
        EventType::SessionStarted,
        EventType::SessionEnded,
        EventType::DirectoryUserCreated,
        EventType::DirectoryUserUpdated,
        EventType::DirectoryUserDeactivated,
        EventType::DirectoryUserDeleted,
        EventType::DirectoryGroupCreated,
        EventType::DirectoryGroupUpdated,
        EventType::DirectoryGroupDeleted,
        EventType::ConfigChanged,
        EventType::AuditKeyChanged,
        EventType::FindingOpened,
        EventType::FindingUpdated,
        EventType::FindingAcknowledged,
        EventType::FindingResolved,
        EventType::FindingDismissed,
        EventType::GrantAudited,
        EventType::NotificationFailed,
        EventType::DebugLevelRaised,
        EventType::DebugLevelRestored,
        EventType::ProvisionerFailed,
        EventType::ProvisionerApplied,
        EventType::ProvisionerRemoved,
        EventType::CredentialsIssued,
        EventType::GrantExternallyModified,
    ];
    for event_type in EventType::ALL.into_iter().filter(|t| !never_written.contains(t)) {
        assert!(written.contains(event_type.as_str()), "the walk does not produce {event_type}");
    }
    for event in &events {
        let text = serde_json::to_string(event).unwrap();
        for marker in ["SECRET-", "secret-r11", "INC-90817"] {
            assert!(!text.contains(marker), "{} carries `{marker}` in the clear: {text}", event.event_type);
        }
    }
    events_read_as_their_types(&events);
    // The walk's details, as they have always been recorded.
    let expected = [
        r#"policy.changed {"hash":"<sha256>","policy_ids":["checkout-web.approvers","checkout-web.oncall-incident","checkout-web.read","ledger.breakglass","ledger.leads","ledger.no-long-nights","ledger.oncall","ledger.read","ledger.security","org.auditors-request-nothing","payments-api.approvers","payments-api.read","payments-api.read-unmasked","payments-debug.approvers","payments-debug.raise","payments-worker-debug.approvers","payments-worker-debug.raise","ticketed"],"previous_hash":null,"snapshot":"<sha256>"}"#,
        r#"request.created {"approvals_required":1,"breakglass":false,"business_hours":true,"duration_seconds":1800,"extends_grant":null,"on_call_schedules":[],"policy_hash":"<sha256>","policy_ids":["payments-api.read"],"role":"read","stages":[],"start_at":null,"ticket":"hmac-sha256:<varies>"}"#,
        r#"approval.granted {"approvals":1,"approvals_required":1,"stages":[],"stages_unmet":[]}"#,
        r#"grant.activated {"expires_at":"2027-01-15T08:30:00Z","policy_hash":"<sha256>","role":"read","starts_at":"2027-01-15T08:00:00Z"}"#,
        r#"access.used {"first_use":true,"role":"read","via":"check"}"#,
        r#"request.created {"approvals_required":1,"breakglass":false,"business_hours":true,"duration_seconds":600,"extends_grant":"grt_<varies>","on_call_schedules":[],"policy_hash":"<sha256>","policy_ids":["payments-api.read"],"role":"read","stages":[],"start_at":null,"ticket":"hmac-sha256:<varies>"}"#,
        r#"approval.granted {"approvals":1,"approvals_required":1,"stages":[],"stages_unmet":[]}"#,
        r#"grant.extended {"added_seconds":600,"expires_at":"2027-01-15T08:40:00Z","extension_request_id":"req_<varies>","previous_expires_at":"2027-01-15T08:30:00Z","role":"read","starts_at":"2027-01-15T08:00:00Z"}"#,
        r#"grant.revoked {"expires_at":"2027-01-15T08:40:00Z","role":"read","starts_at":"2027-01-15T08:00:00Z"}"#,
        r#"request.created {"approvals_required":1,"breakglass":false,"business_hours":true,"duration_seconds":1800,"extends_grant":null,"on_call_schedules":[],"policy_hash":"<sha256>","policy_ids":["payments-api.read"],"role":"read","stages":[],"start_at":"2027-01-15T09:00:00Z","ticket":"hmac-sha256:<varies>"}"#,
        r#"approval.granted {"approvals":1,"approvals_required":1,"stages":[],"stages_unmet":[]}"#,
        r#"grant.scheduled {"expires_at":"2027-01-15T09:30:00Z","policy_hash":"<sha256>","role":"read","starts_at":"2027-01-15T09:00:00Z"}"#,
        r#"request.created {"approvals_required":1,"breakglass":false,"business_hours":true,"duration_seconds":1800,"extends_grant":null,"on_call_schedules":[],"policy_hash":"<sha256>","policy_ids":["payments-api.read"],"role":"read","stages":[],"start_at":null,"ticket":"hmac-sha256:<varies>"}"#,
        r#"approval.granted {"approvals":1,"approvals_required":1,"stages":[],"stages_unmet":[]}"#,
        r#"grant.activated {"expires_at":"2027-01-15T08:30:00Z","policy_hash":"<sha256>","role":"read","starts_at":"2027-01-15T08:00:00Z"}"#,
        r#"grant.released {"expires_at":"2027-01-15T08:30:00Z","role":"read","starts_at":"2027-01-15T08:00:00Z"}"#,
        r#"request.created {"approvals_required":1,"breakglass":false,"business_hours":true,"duration_seconds":1800,"extends_grant":null,"on_call_schedules":[],"policy_hash":"<sha256>","policy_ids":["payments-api.read"],"role":"read","stages":[],"start_at":null,"ticket":"hmac-sha256:<varies>"}"#,
        r#"approval.denied {}"#,
        r#"request.created {"approvals_required":1,"breakglass":false,"business_hours":true,"duration_seconds":1800,"extends_grant":null,"on_call_schedules":[],"policy_hash":"<sha256>","policy_ids":["payments-api.read"],"role":"read","stages":[],"start_at":null,"ticket":"hmac-sha256:<varies>"}"#,
        r#"request.cancelled {}"#,
        r#"request.created {"approvals_required":1,"breakglass":false,"business_hours":true,"duration_seconds":1800,"extends_grant":null,"on_call_schedules":[],"policy_hash":"<sha256>","policy_ids":["payments-api.read"],"role":"read","stages":[],"start_at":null,"ticket":"hmac-sha256:<varies>"}"#,
        r#"request.created {"approvals_required":0,"breakglass":true,"business_hours":true,"duration_seconds":900,"extends_grant":null,"on_call_schedules":["ledger-primary"],"policy_hash":"<sha256>","policy_ids":["ledger.breakglass"],"role":"read","stages":[],"start_at":null,"ticket":"hmac-sha256:<varies>"}"#,
        r#"breakglass.used {"expires_at":"2027-01-15T08:15:00Z","policy_hash":"<sha256>","policy_ids":["ledger.breakglass"],"review_due_at":"2027-01-16T08:00:00Z","role":"read","starts_at":"2027-01-15T08:00:00Z"}"#,
        r#"grant.activated {"expires_at":"2027-01-15T08:15:00Z","policy_hash":"<sha256>","role":"read","starts_at":"2027-01-15T08:00:00Z"}"#,
        r#"access.denied {"action":"request","reason":"hmac-sha256:<varies>","ticket":"hmac-sha256:<varies>"}"#,
        r#"grant.expired {"due_at":"2027-01-15T08:15:00Z","expires_at":"2027-01-15T08:15:00Z","lag_ms":89100000,"processed_at":"2027-01-16T09:00:00Z","role":"read","starts_at":"2027-01-15T08:00:00Z"}"#,
        r#"breakglass.overdue {"due_at":"2027-01-16T08:00:00Z","expires_at":"2027-01-15T08:15:00Z","lag_ms":3600000,"processed_at":"2027-01-16T09:00:00Z","role":"read","starts_at":"2027-01-15T08:00:00Z"}"#,
        r#"grant.activated {"due_at":"2027-01-15T09:00:00Z","expires_at":"2027-01-15T09:30:00Z","lag_ms":86400000,"processed_at":"2027-01-16T09:00:00Z","role":"read","starts_at":"2027-01-15T09:00:00Z"}"#,
        r#"grant.expired {"due_at":"2027-01-15T09:30:00Z","expires_at":"2027-01-15T09:30:00Z","lag_ms":84600000,"processed_at":"2027-01-16T09:00:00Z","role":"read","starts_at":"2027-01-15T09:00:00Z"}"#,
        r#"request.lapsed {"due_at":"2027-01-16T08:00:00Z","lag_ms":3600000,"processed_at":"2027-01-16T09:00:00Z"}"#,
        r#"breakglass.reviewed {"expires_at":"2027-01-15T08:15:00Z","late":true,"review_due_at":"2027-01-16T08:00:00Z","role":"read","starts_at":"2027-01-15T08:00:00Z"}"#,
        r#"audit.checkpoint {"key":"<varies>","note":"<varies>","origin":"ward.quickstart/audit","root":"<varies>","size":31}"#,
        r#"token.created {"expires_at":"2027-01-16T09:01:00Z","scopes":["admin"],"token_id":"<varies>"}"#,
        r#"token.revoked {"expires_at":"2027-01-16T09:01:00Z","token_id":"<varies>"}"#,
        r#"directory.reloaded {"groups":{},"snapshot":"<sha256>","users_added":["frank"],"users_removed":[]}"#,
        r#"policy.rejected {"error":"the policies in <tmp>/ward.toml do not load: the policies do not parse:\nbroken.cedar:1:9: unexpected end of input","hash_in_force":"<sha256>"}"#,
        r#"oncall.unavailable {"fallback":"nobody is on call by the schedule","source":"schedule"}"#,
        r#"request.created {"approvals_required":2,"breakglass":false,"business_hours":false,"duration_seconds":900,"extends_grant":null,"on_call_schedules":[],"policy_hash":"<sha256>","policy_ids":["ledger.read"],"role":"read","stages":[{"approvals":1,"name":"payments-leads"},{"approvals":1,"name":"security"}],"start_at":null,"ticket":null}"#,
    ];
    assert_eq!(recorded_details(&events), expected);
}

/// Each event's `details` as canonical JSON (`type {…}`), with what differs from run to run
/// (random ids, keys, signatures, HMACs under a fresh key, temporary folders) and the hashes
/// of policy sets replaced by a marker: the recorded
/// form, compared against a golden copy so that a change to it is seen.
fn recorded_details(events: &[AuditEvent]) -> Vec<String> {
    fn steady(value: &mut serde_json::Value) {
        const VARYING: [&str; 7] =
            ["token_id", "root", "note", "key", "previous_key", "previous_key_id", "key_id"];
        match value {
            serde_json::Value::Object(map) => {
                for (key, item) in map.iter_mut() {
                    if VARYING.contains(&key.as_str()) && item.is_string() {
                        *item = "<varies>".into();
                    } else {
                        steady(item);
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(steady),
            serde_json::Value::String(text) => {
                let ids = regex::Regex::new(r"\b(req|grt|tok|evt)_[0-9a-f]{32}\b").unwrap();
                let macs = regex::Regex::new(r"hmac-sha256:[0-9a-f]{64}").unwrap();
                let hashes = regex::Regex::new(r"\b[0-9a-f]{64}\b").unwrap();
                let temporary = regex::Regex::new(r"/tmp/\.tmp[A-Za-z0-9]+").unwrap();
                let steady = ids.replace_all(text, "${1}_<varies>");
                let steady = macs.replace_all(&steady, "hmac-sha256:<varies>");
                let steady = hashes.replace_all(&steady, "<sha256>");
                *text = temporary.replace_all(&steady, "<tmp>").into_owned();
            }
            _ => {}
        }
    }
    events
        .iter()
        .map(|event| {
            let mut details = event.details.clone();
            steady(&mut details);
            format!("{} {}", event.event_type, ward_core::audit::canonical_json(&details))
        })
        .collect()
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            if entry.file_name() != "data" {
                std::fs::create_dir_all(&target).unwrap();
                copy_dir(&entry.path(), &target);
            }
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

async fn the_audit_trail_tells_the_whole_story(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let grant = w.granted().await;
    assert!(w.allowed("alice").await);
    w.broker.release(&w.who("alice"), grant.id.as_str()).await.unwrap();
    assert_eq!(
        w.types().await,
        ["request.created", "approval.granted", "grant.activated", "access.used", "grant.released"]
    );
    // Visibility: alice sees her own story, carol (auditor) everything, dave nothing of it.
    let mine =
        w.broker.events(&w.who("alice"), EventFilter { limit: 100, ..Default::default() }).await.unwrap();
    assert_eq!(mine.len(), 5);
    let dave =
        w.broker.events(&w.who("dave"), EventFilter { limit: 100, ..Default::default() }).await.unwrap();
    assert!(dave.is_empty());
    let carol =
        w.broker.events(&w.who("carol"), EventFilter { limit: 100, ..Default::default() }).await.unwrap();
    assert_eq!(carol.len(), 5);
    let listing = RequestListing { limit: 100, ..RequestListing::default() };
    let dave_requests = w.broker.list_requests(&w.who("dave"), listing.clone()).await.unwrap().items;
    assert!(dave_requests.is_empty(), "dave can neither approve nor owns it");
    let bob_requests = w.broker.list_requests(&w.who("bob"), listing).await.unwrap().items;
    assert_eq!(bob_requests.len(), 1, "bob may decide it, so he sees it");
    assert!(matches!(
        w.broker.get_grant(&w.who("dave"), grant.id.as_str()).await,
        Err(BrokerError::NotFound(_))
    ));
}

/// A store that can be made to fail, to prove ward fails closed, or to hold commits back.
struct Failing {
    inner: Arc<dyn Store>,
    broken: AtomicBool,
    /// Commits that carry a checkpoint fail (as a crash before signing would stop them).
    refuse_checkpoints: AtomicBool,
    /// Commits wait while a test holds this for writing.
    held: Arc<tokio::sync::RwLock<()>>,
    /// Notified when a commit reaches the store while commits are held.
    entered: tokio::sync::Notify,
    /// Requests read one by one, and in batches.
    single_reads: std::sync::atomic::AtomicUsize,
    batch_reads: std::sync::atomic::AtomicUsize,
}

impl Failing {
    async fn over_sqlite() -> Arc<Self> {
        Arc::new(Self {
            inner: sqlite().await.unwrap(),
            broken: AtomicBool::new(false),
            refuse_checkpoints: AtomicBool::new(false),
            held: Default::default(),
            entered: Default::default(),
            single_reads: Default::default(),
            batch_reads: Default::default(),
        })
    }

    fn check(&self) -> Result<(), StoreError> {
        if self.broken.load(Ordering::SeqCst) {
            Err(StoreError::Unavailable("disk full".into()))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl Store for Failing {
    async fn commit(&self, change: Change, at: Timestamp) -> Result<Vec<AuditEvent>, StoreError> {
        if self.held.try_read().is_err() {
            self.entered.notify_one();
        }
        self.check()?;
        if change.checkpoint.is_some() && self.refuse_checkpoints.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("disk full".into()));
        }
        // Like the SQL store's writer task, the commit goes on whether or not its caller waits.
        let (held, inner) = (self.held.clone(), self.inner.clone());
        tokio::spawn(async move {
            let _held = held.read().await;
            inner.commit(change, at).await
        })
        .await
        .unwrap()
    }
    async fn request(&self, id: &str) -> Result<Option<AccessRequest>, StoreError> {
        self.single_reads.fetch_add(1, Ordering::SeqCst);
        self.inner.request(id).await
    }
    async fn requests_by_id(&self, ids: &[String]) -> Result<Vec<AccessRequest>, StoreError> {
        self.batch_reads.fetch_add(1, Ordering::SeqCst);
        self.inner.requests_by_id(ids).await
    }
    async fn requests(&self, f: &RequestFilter) -> Result<Vec<AccessRequest>, StoreError> {
        self.inner.requests(f).await
    }
    async fn grant(&self, id: &str) -> Result<Option<Grant>, StoreError> {
        self.inner.grant(id).await
    }
    async fn grants(&self, f: &GrantFilter) -> Result<Vec<Grant>, StoreError> {
        self.inner.grants(f).await
    }
    async fn live_holders(
        &self,
        resource: &str,
        role: &str,
        other_than: &str,
        starts_at: Timestamp,
        expires_at: Timestamp,
    ) -> Result<u32, StoreError> {
        self.inner.live_holders(resource, role, other_than, starts_at, expires_at).await
    }
    async fn due(&self, now: Timestamp, limit: u32) -> Result<Due, StoreError> {
        self.inner.due(now, limit).await
    }
    async fn next_due_at(&self) -> Result<Option<Timestamp>, StoreError> {
        self.inner.next_due_at().await
    }
    async fn event_span(&self, since: Timestamp, until: Timestamp) -> Result<Option<(i64, i64)>, StoreError> {
        self.inner.event_span(since, until).await
    }
    async fn events(&self, f: &EventFilter) -> Result<Vec<AuditEvent>, StoreError> {
        self.inner.events(f).await
    }
    async fn head(&self) -> Result<LogHead, StoreError> {
        self.inner.head().await
    }
    async fn checkpoints(&self, after: Option<u64>, limit: u32) -> Result<Vec<CheckpointRecord>, StoreError> {
        self.inner.checkpoints(after, limit).await
    }
    async fn latest_checkpoint(&self) -> Result<Option<CheckpointRecord>, StoreError> {
        self.inner.latest_checkpoint().await
    }
    async fn forward_cursor(&self, sink: &str) -> Result<i64, StoreError> {
        self.inner.forward_cursor(sink).await
    }
    async fn set_forward_cursor(
        &self,
        sink: &str,
        seq: i64,
        lease: &ward_store::Lease,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        self.inner.set_forward_cursor(sink, seq, lease, at).await
    }
    async fn consumer_cursor(&self, consumer: &str) -> Result<i64, StoreError> {
        self.inner.consumer_cursor(consumer).await
    }
    async fn finding(&self, id: &str) -> Result<Option<ward_store::FindingRecord>, StoreError> {
        self.inner.finding(id).await
    }
    async fn findings(
        &self,
        f: &ward_store::FindingFilter,
    ) -> Result<Vec<ward_store::FindingRecord>, StoreError> {
        self.inner.findings(f).await
    }
    async fn debug_levels(&self) -> Result<Vec<ward_store::DebugLevelRecord>, StoreError> {
        self.inner.debug_levels().await
    }

    async fn policy_snapshot(&self, digest: &str) -> Result<Option<String>, StoreError> {
        self.inner.policy_snapshot(digest).await
    }
    async fn logins(&self) -> Result<Vec<ward_store::LoginRecord>, StoreError> {
        self.inner.logins().await
    }
    async fn people(&self) -> Result<Vec<ward_store::PersonRecord>, StoreError> {
        self.inner.people().await
    }
    async fn people_epoch(&self) -> Result<i64, StoreError> {
        self.inner.people_epoch().await
    }
    async fn directory_groups(&self) -> Result<Vec<ward_store::DirectoryGroup>, StoreError> {
        self.inner.directory_groups().await
    }
    async fn login(&self, grant_id: &str) -> Result<Option<ward_store::LoginRecord>, StoreError> {
        self.inner.login(grant_id).await
    }
    async fn latest_findings(&self, keys: &[String]) -> Result<Vec<ward_store::FindingRecord>, StoreError> {
        self.inner.latest_findings(keys).await
    }
    async fn take_lease(
        &self,
        lease: &ward_store::Lease,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool, StoreError> {
        self.inner.take_lease(lease, now, until).await
    }
    async fn give_up_lease(&self, lease: &ward_store::Lease) -> Result<(), StoreError> {
        self.inner.give_up_lease(lease).await
    }
    async fn token(&self, hash: &str) -> Result<Option<ApiToken>, StoreError> {
        self.inner.token(hash).await
    }
    async fn token_by_id(&self, id: &str) -> Result<Option<ApiToken>, StoreError> {
        self.inner.token_by_id(id).await
    }
    async fn tokens(&self, f: &TokenFilter) -> Result<Vec<ApiToken>, StoreError> {
        self.inner.tokens(f).await
    }
    async fn touch_token(&self, hash: &str, at: Timestamp) -> Result<(), StoreError> {
        self.inner.touch_token(hash, at).await
    }
    async fn token_epoch(&self) -> Result<i64, StoreError> {
        self.inner.token_epoch().await
    }
    async fn settle(&self) -> Result<(), StoreError> {
        self.inner.settle().await
    }
    async fn key_fingerprint(&self, name: &str) -> Result<Option<String>, StoreError> {
        self.inner.key_fingerprint(name).await
    }
    async fn usage_tallies(&self, limit: u32) -> Result<Vec<ward_store::StoredTally>, StoreError> {
        self.inner.usage_tallies(limit).await
    }
    async fn session(&self, hash: &str) -> Result<Option<ward_store::WebSession>, StoreError> {
        self.inner.session(hash).await
    }
    async fn open_sessions(
        &self,
        principal: &str,
        limit: u32,
    ) -> Result<Vec<ward_store::WebSession>, StoreError> {
        self.inner.open_sessions(principal, limit).await
    }
    async fn ready(&self) -> Result<(), StoreError> {
        self.check()?;
        self.inner.ready().await
    }
}

#[tokio::test]
async fn no_audit_no_access() {
    let failing = Failing::over_sqlite().await;
    let w = World::new(failing.clone()).await;
    let grant = w.granted().await;
    let revoke_me = w.granted().await;
    failing.broken.store(true, Ordering::SeqCst);

    assert!(failing.ready().await.is_err());
    // The first use cannot be recorded: not allowed, but an error the caller sees.
    let check = w.broker.check(&w.who("alice"), "alice", "read", "logs:payments-api").await;
    assert!(matches!(check, Err(BrokerError::Unavailable(_))), "{check:?}");
    let filed = w.broker.create_request(&w.who("alice"), ask("logs:payments-api", "read", 60)).await;
    assert!(matches!(filed, Err(BrokerError::Unavailable(_))));
    assert_eq!(w.store.requests(&RequestFilter::default()).await.unwrap().len(), 2, "nothing half-written");
    // A revocation that cannot be recorded has not happened in the store; the index stays right.
    assert!(w.broker.revoke(&w.who("admin"), revoke_me.id.as_str(), "x".into()).await.is_err());
    assert_eq!(w.store.grant(revoke_me.id.as_str()).await.unwrap().unwrap().state, GrantState::Active);

    failing.broken.store(false, Ordering::SeqCst);
    assert!(w.allowed("alice").await);
    let revoked = w.broker.revoke(&w.who("admin"), grant.id.as_str(), "x".into()).await.unwrap();
    assert_eq!(revoked.state, GrantState::Revoked);
}

/// An approval whose caller goes away while it commits (a client that disconnects, a request
/// that times out) still puts the grant it committed into the check index.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_caller_leaves_no_committed_grant_out_of_the_index() {
    let failing = Failing::over_sqlite().await;
    let w = World::new(failing.clone()).await;
    let request = w.request("alice", "logs:payments-api", "read", 1800).await;
    let bob = w.who("bob");
    let held = failing.held.write().await;
    let approve = w.broker.approve(&bob, request.id.as_str(), None);
    tokio::select! {
        _ = approve => panic!("the commit was held back"),
        () = failing.entered.notified() => {}
    }
    // The approval's future is gone; its commit goes on.
    drop(held);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while w.broker.indexed_grants() == 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let stored = w.store.requests(&RequestFilter::default()).await.unwrap();
    assert_eq!(stored[0].state, RequestState::Approved, "the approval committed");
    assert!(w.allowed("alice").await, "the committed grant is in the check index");
}

/// Operations on a grant or request one may not see tell nothing about it: 404 as for an id that
/// does not exist, and nothing of it in one's own events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_one_may_not_see_one_learns_nothing_of() {
    let w = World::new(sqlite().await.unwrap()).await;
    let grant = w.granted().await;
    let pending = w.request("alice", "logs:payments-api", "read", 600).await;
    let dave = w.who("dave");
    let more = || ExtendInput { duration_seconds: 60, reason: "more".into(), ticket: None };
    for id in [grant.id.as_str(), "grt_missing"] {
        let answers = [
            w.broker.revoke(&dave, id, "why not".into()).await.err(),
            w.broker.release(&dave, id).await.err(),
            w.broker.review(&dave, id, "fine".into()).await.err(),
            w.broker.extend(&dave, id, more()).await.err(),
        ];
        for answer in answers {
            assert!(
                matches!(&answer, Some(BrokerError::NotFound(why)) if why == &format!("no grant `{id}`")),
                "{answer:?}"
            );
        }
    }
    for id in [pending.id.as_str(), "req_missing"] {
        let answers = [
            w.broker.approve(&dave, id, None).await.err(),
            w.broker.deny(&dave, id, "no".into()).await.err(),
            w.broker.cancel(&dave, id).await.err(),
        ];
        for answer in answers {
            assert!(
                matches!(&answer, Some(BrokerError::NotFound(why)) if why == &format!("no request `{id}`")),
                "{answer:?}"
            );
        }
    }
    w.broker.flush_usage().await.unwrap();
    let seen = w.broker.events(&dave, EventFilter { limit: 1000, ..Default::default() }).await.unwrap();
    assert!(!seen.is_empty(), "the attempts are on record");
    let text = serde_json::to_string(&seen).unwrap();
    // The ids dave typed are his own; what they name is not.
    for secret in ["alice", "logs:payments-api", "read", grant.request_id.as_str()] {
        assert!(!text.contains(secret), "dave's events mention `{secret}`: {text}");
    }
}

/// An approver's listing of others' grants reads their requests in one query per batch, not one
/// per grant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_grants_reads_their_requests_at_once() {
    let failing = Failing::over_sqlite().await;
    let w = World::new(failing.clone()).await;
    for _ in 0..12 {
        w.granted().await;
        let last = w.store.grants(&GrantFilter { limit: 1, ..GrantFilter::default() }).await.unwrap();
        w.broker.release(&w.who("alice"), last[0].id.as_str()).await.unwrap();
    }
    let (single, batch) =
        (failing.single_reads.load(Ordering::SeqCst), failing.batch_reads.load(Ordering::SeqCst));
    let page = w
        .broker
        .list_grants(&w.who("bob"), GrantListing { limit: 50, ..GrantListing::default() })
        .await
        .unwrap();
    assert_eq!(page.items.len(), 12, "bob approves payments reads: he sees them all");
    assert_eq!(failing.single_reads.load(Ordering::SeqCst), single, "no request read one by one");
    assert_eq!(failing.batch_reads.load(Ordering::SeqCst), batch + 1, "one read for the batch");
    let none = w
        .broker
        .list_grants(&w.who("dave"), GrantListing { limit: 50, ..GrantListing::default() })
        .await
        .unwrap();
    assert!(none.items.is_empty(), "dave may approve none of them");
}

/// A syslog receiver: parses octet-counted frames into messages until aborted.
async fn syslog_receiver(listener: tokio::net::TcpListener, got: Arc<std::sync::Mutex<Vec<String>>>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { return };
        tokio::spawn(read_frames(stream, got.clone()));
    }
}

/// The same over TLS (RFC 5425), with `acceptor`'s certificate (and client verification).
async fn tls_syslog_receiver(
    listener: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    got: Arc<std::sync::Mutex<Vec<String>>>,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { return };
        let (acceptor, got) = (acceptor.clone(), got.clone());
        tokio::spawn(async move {
            if let Ok(stream) = acceptor.accept(stream).await {
                read_frames(stream, got).await;
            }
        });
    }
}

async fn read_frames(mut stream: impl tokio::io::AsyncRead + Unpin, got: Arc<std::sync::Mutex<Vec<String>>>) {
    use tokio::io::AsyncReadExt;
    {
        {
            let mut buffer = Vec::new();
            let mut chunk = [0u8; 8192];
            while let Ok(n) = stream.read(&mut chunk).await {
                if n == 0 {
                    return;
                }
                buffer.extend_from_slice(&chunk[..n]);
                // Take every complete `LENGTH SP MESSAGE` frame.
                while let Some(space) = buffer.iter().position(|b| *b == b' ') {
                    let length: usize = std::str::from_utf8(&buffer[..space]).unwrap().parse().unwrap();
                    if buffer.len() < space + 1 + length {
                        break;
                    }
                    let message = String::from_utf8(buffer[space + 1..space + 1 + length].to_vec()).unwrap();
                    got.lock().unwrap().push(message);
                    buffer.drain(..space + 1 + length);
                }
            }
        }
    }
}

/// Runs a forwarder for `sink` on the world's store; send `true` to stop it.
fn spawn_forwarder(
    w: &World,
    sink: ward_service::forward::SinkConfig,
) -> (tokio::sync::watch::Sender<bool>, tokio::task::JoinHandle<()>) {
    spawn_forwarder_as(w, sink, "this-process")
}

/// [`spawn_forwarder`] as the process `holder` (several processes share one store).
fn spawn_forwarder_as(
    w: &World,
    sink: ward_service::forward::SinkConfig,
    holder: &'static str,
) -> (tokio::sync::watch::Sender<bool>, tokio::task::JoinHandle<()>) {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let (store, clock, appended) = (w.store.clone(), w.clock.clone(), w.broker.subscribe_appended());
    let run = async move { ward_service::forward::run(store, clock, sink, holder, appended, stopped).await };
    (stop, tokio::spawn(run))
}

/// The cursor moves once a batch is sent, just after the receiver has it: wait for it.
async fn cursor_reaches(store: &dyn Store, sink: &str, total: i64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while store.forward_cursor(sink).await.unwrap() != total {
        assert!(std::time::Instant::now() < deadline, "the cursor of {sink} did not reach {total}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

fn seqs(messages: &[String]) -> Vec<i64> {
    messages
        .iter()
        .map(|m| {
            let start = m.find("sequenceId=\"").unwrap() + 12;
            m[start..start + m[start..].find('"').unwrap()].parse().unwrap()
        })
        .collect()
}

async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_to_syslog_survives_an_outage_without_losing_events() {
    let store = sqlite().await.unwrap();
    let w = World::new(store.clone()).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let got = Arc::new(std::sync::Mutex::new(Vec::new()));
    let receiver = tokio::spawn(syslog_receiver(listener, got.clone()));
    let sink = ward_service::forward::SinkConfig::Syslog {
        name: "siem".into(),
        address: address.to_string(),
        tls: false,
        ca_file: None,
        client_cert: None,
        client_key: None,
    };
    let (stop, forwarder) = spawn_forwarder(&w, sink);

    w.granted().await;
    let written = w.events().await.len() as i64;
    eventually("the first events", || got.lock().unwrap().len() as i64 == written).await;
    assert_eq!(seqs(&got.lock().unwrap()), (1..=written).collect::<Vec<_>>());
    assert!(got.lock().unwrap()[0].starts_with("<110>1 "), "facility 13, informational");

    // The receiver goes away; events keep being written; it comes back on the same port.
    receiver.abort();
    let _ = receiver.await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    for _ in 0..3 {
        w.granted().await;
    }
    let total = w.events().await.len() as i64;
    let listener = tokio::net::TcpListener::bind(address).await.unwrap();
    let receiver = tokio::spawn(syslog_receiver(listener, got.clone()));
    eventually("the catch-up", || seqs(&got.lock().unwrap()).contains(&total)).await;
    let mut delivered = seqs(&got.lock().unwrap());
    delivered.sort_unstable();
    delivered.dedup();
    assert_eq!(delivered, (1..=total).collect::<Vec<_>>(), "nothing lost (at-least-once)");
    cursor_reaches(&*store, "siem", total).await;
    stop.send(true).unwrap();
    forwarder.await.unwrap();
    receiver.abort();
}

/// Two ward processes on one store forward a sink once between them: one holds the sink's
/// lease, and the other takes over when it stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_is_forwarded_by_one_process_of_several() {
    let store = sqlite().await.unwrap();
    let w = World::new(store.clone()).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let got = Arc::new(std::sync::Mutex::new(Vec::new()));
    let receiver = tokio::spawn(syslog_receiver(listener, got.clone()));
    let sink = ward_service::forward::SinkConfig::Syslog {
        name: "siem".into(),
        address,
        tls: false,
        ca_file: None,
        client_cert: None,
        client_key: None,
    };
    let (stop_first, first) = spawn_forwarder_as(&w, sink.clone(), "process-1");
    w.granted().await;
    let written = w.events().await.len() as i64;
    eventually("the first events", || got.lock().unwrap().len() as i64 == written).await;
    let (stop_second, second) = spawn_forwarder_as(&w, sink, "process-2");
    for _ in 0..3 {
        w.granted().await;
    }
    let total = w.events().await.len() as i64;
    cursor_reaches(&*store, "siem", total).await;
    assert_eq!(seqs(&got.lock().unwrap()), (1..=total).collect::<Vec<_>>(), "each event once");

    // The first stops (and gives its lease up): the second goes on from the cursor.
    stop_first.send(true).unwrap();
    first.await.unwrap();
    w.granted().await;
    let total = w.events().await.len() as i64;
    cursor_reaches(&*store, "siem", total).await;
    assert_eq!(seqs(&got.lock().unwrap()), (1..=total).collect::<Vec<_>>(), "each event once");
    stop_second.send(true).unwrap();
    second.await.unwrap();
    receiver.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_over_http_retries_until_accepted() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let store = sqlite().await.unwrap();
    let w = World::new(store.clone()).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/ingest", listener.local_addr().unwrap());
    let received = Arc::new(std::sync::Mutex::new(Vec::<i64>::new()));
    let attempts = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let (received_in, attempts_in) = (received.clone(), attempts.clone());
    // Refuses the first two batches with 503, then accepts.
    let server = tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else { return };
            let mut request = Vec::new();
            let mut chunk = [0u8; 65536];
            let body = loop {
                let n = stream.read(&mut chunk).await.unwrap();
                request.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&request).to_string();
                if let Some(end) = text.find("\r\n\r\n") {
                    let length: usize = text
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length: ")
                                .map(|v| v.trim().parse().unwrap())
                        })
                        .unwrap_or(0);
                    if request.len() >= end + 4 + length {
                        break request[end + 4..end + 4 + length].to_vec();
                    }
                }
                if n == 0 {
                    break Vec::new();
                }
            };
            let attempt = attempts_in.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let status = if attempt < 2 { "503 Service Unavailable" } else { "200 OK" };
            if attempt >= 2 {
                let events: Vec<serde_json::Value> = serde_json::from_slice(&body).unwrap();
                received_in.lock().unwrap().extend(events.iter().map(|e| e["seq"].as_i64().unwrap()));
            }
            let reply = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            stream.write_all(reply.as_bytes()).await.unwrap();
        }
    });
    let sink = ward_service::forward::SinkConfig::Http { name: "hook".into(), url };
    let (stop, forwarder) = spawn_forwarder(&w, sink);
    w.granted().await;
    let total = w.events().await.len() as i64;
    eventually("delivery after the refusals", || received.lock().unwrap().last() == Some(&total)).await;
    assert_eq!(*received.lock().unwrap(), (1..=total).collect::<Vec<_>>());
    assert!(attempts.load(std::sync::atomic::Ordering::SeqCst) >= 3);
    cursor_reaches(&*store, "hook", total).await;
    stop.send(true).unwrap();
    forwarder.await.unwrap();
    server.abort();
}

#[tokio::test]
async fn sensitive_fields_are_recorded_as_hmacs() {
    let store = sqlite().await.unwrap();
    let mut config = config();
    config.audit.hmac_fields = vec![
        ward_service::sensitive::SensitiveField::Reason,
        ward_service::sensitive::SensitiveField::Ticket,
    ];
    let broker =
        ward_service::broker_for(&config, store.clone(), Arc::new(ManualClock::new(t0()))).await.unwrap();
    let alice = broker.caller("alice").unwrap();
    let input = RequestInput {
        reason: "customer jane@example.com cannot pay".into(),
        ticket: Some("INC-42".into()),
        ..ask("logs:payments-api", "read", 60)
    };
    let request = broker.create_request(&alice, input.clone()).await.unwrap();
    let again = broker.create_request(&alice, input).await.unwrap();
    let events = store.events(&EventFilter { limit: 100, ..Default::default() }).await.unwrap();
    let created: Vec<&AuditEvent> =
        events.iter().filter(|e| e.event_type == EventType::RequestCreated).collect();
    let reason = created[0].reason.as_deref().unwrap();
    assert!(reason.starts_with("hmac-sha256:") && !reason.contains("jane"), "{reason}");
    assert!(created[0].details["ticket"].as_str().unwrap().starts_with("hmac-sha256:"));
    assert_eq!(created[0].reason, created[1].reason, "equal values stay comparable");
    // The log still verifies, and the request keeps the text for its approvers.
    assert!(events.iter().all(|e| e.compute_hash() == e.hash));
    assert_eq!(store.request(request.id.as_str()).await.unwrap().unwrap().ticket.as_deref(), Some("INC-42"));
    assert_ne!(request.id, again.id);
}

/// A lost signing key is never replaced silently: ward refuses to start until told to make a new
/// one, then records `audit.key_changed` naming both keys and signs at once with the new key;
/// verification follows the change (old checkpoints with the old key, new ones with the new).
#[tokio::test]
async fn a_lost_signing_key_is_replaced_only_when_told_and_on_record() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().display().to_string();
    let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/quickstart/ward.toml"));
    let mut config = Config::load(&path, &|name| (name == "WARD_DATA_DIR").then(|| dir.clone())).unwrap();
    let store = sqlite().await.unwrap();
    let clock = Arc::new(ManualClock::new(t0()));
    let broker = ward_service::broker_for(&config, store.clone(), clock.clone()).await.unwrap();
    broker.sign_checkpoint(true).await.unwrap();
    broker.sign_checkpoint(true).await.unwrap();
    let old_key = broker.verifier_key();
    drop(broker);

    std::fs::remove_file(&config.audit.signing_key).unwrap();
    let refused =
        ward_service::broker_for(&config, store.clone(), clock.clone()).await.err().unwrap().to_string();
    assert!(refused.contains("--new-signing-key") && refused.contains("missing"), "{refused}");
    assert!(!config.audit.signing_key.exists(), "no key is made without being told");

    config.audit.new_signing_key = true;
    let broker = ward_service::broker_for(&config, store.clone(), clock.clone()).await.unwrap();
    let new_key = broker.verifier_key();
    assert_ne!(new_key, old_key);
    let changes = store
        .events(&EventFilter {
            event_type: Some(EventType::AuditKeyChanged),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(changes.len(), 1);
    let details = &changes[0].details;
    assert_eq!(
        (details["previous_key"].as_str(), details["key"].as_str()),
        (Some(old_key.as_str()), Some(new_key.as_str()))
    );
    assert_eq!(details["previous_key_id"].as_str(), old_key.split('+').nth(1));
    let expected = [
        r#"audit.key_changed {"key":"<varies>","key_id":"<varies>","previous_checkpoint_size":1,"previous_key":"<varies>","previous_key_id":"<varies>"}"#,
    ];
    assert_eq!(recorded_details(&changes), expected);
    let latest = store.latest_checkpoint().await.unwrap().unwrap();
    assert!(latest.size >= u64::try_from(changes[0].seq).unwrap(), "the new key signs the change at once");

    let (origin, key) = ward_core::checkpoint::parse_verifier_key(&new_key).unwrap();
    let options = ward_store::VerifyOptions { origin: &origin, key: &key, external: None };
    let report = ward_store::verify_log(&*store, &options).await.unwrap();
    assert!(report.is_valid(), "{:?}", report.problems);
    assert_eq!(report.checkpoints_compared, 3, "both old checkpoints, with the old key, and the new one");
    // The old key is not the one in force: a log that claims it still is was tampered with.
    let (_, old) = ward_core::checkpoint::parse_verifier_key(&old_key).unwrap();
    let options = ward_store::VerifyOptions { origin: &origin, key: &old, external: None };
    let report = ward_store::verify_log(&*store, &options).await.unwrap();
    assert!(report.problems.iter().any(|p| p.to_string().contains("key change")), "{:?}", report.problems);
    drop(broker);

    // Told once is enough: the next start finds the new key signed the latest checkpoint.
    config.audit.new_signing_key = false;
    ward_service::broker_for(&config, store.clone(), clock.clone()).await.unwrap();
    // Another key in the file is refused like a missing one.
    std::fs::remove_file(&config.audit.signing_key).unwrap();
    ward_service::signing::AuditSigner::load_or_create(
        "ward.quickstart/audit",
        &config.audit.signing_key,
        true,
    )
    .unwrap();
    let refused =
        ward_service::broker_for(&config, store.clone(), clock.clone()).await.err().unwrap().to_string();
    assert!(refused.contains("did not sign"), "{refused}");
}

/// The quickstart configuration with its data in `data`.
fn quickstart_in(data: &tempfile::TempDir) -> Config {
    let dir = data.path().display().to_string();
    let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/quickstart/ward.toml"));
    Config::load(&path, &|name| (name == "WARD_DATA_DIR").then(|| dir.clone())).unwrap()
}

/// Verifies the whole log with the key in the key file, as `ward audit verify` does.
async fn verify_with_the_key_file(config: &Config, store: &dyn Store) -> ward_core::verify::Report {
    let signer = ward_service::signing::AuditSigner::load_or_create(
        &config.audit.origin,
        &config.audit.signing_key,
        false,
    )
    .unwrap();
    let key = signer.verifying_key();
    let options = ward_store::VerifyOptions { origin: &config.audit.origin, key: &key, external: None };
    ward_store::verify_log(store, &options).await.unwrap()
}

async fn key_changes(store: &dyn Store) -> Vec<AuditEvent> {
    let filter =
        EventFilter { event_type: Some(EventType::AuditKeyChanged), limit: 10, ..Default::default() };
    store.events(&filter).await.unwrap()
}

/// A key change cut off after `audit.key_changed` committed and before the new key signed a
/// checkpoint (the disk refused it, or the process died) is finished by the next start, once:
/// the operator running the same command again does not record a second change that would make
/// the log unverifiable for good.
#[tokio::test]
async fn a_key_change_cut_off_before_its_checkpoint_is_finished_by_the_next_start() {
    let data = tempfile::tempdir().unwrap();
    let mut config = quickstart_in(&data);
    let failing = Failing::over_sqlite().await;
    let store: Arc<dyn Store> = failing.clone();
    let clock = Arc::new(ManualClock::new(t0()));
    let broker = ward_service::broker_for(&config, store.clone(), clock.clone()).await.unwrap();
    broker.sign_checkpoint(true).await.unwrap();
    drop(broker);
    std::fs::remove_file(&config.audit.signing_key).unwrap();

    config.audit.new_signing_key = true;
    failing.refuse_checkpoints.store(true, Ordering::SeqCst);
    assert!(ward_service::broker_for(&config, store.clone(), clock.clone()).await.is_err());
    failing.refuse_checkpoints.store(false, Ordering::SeqCst);
    assert_eq!(key_changes(&*store).await.len(), 1, "the change was recorded before the cut");

    // The same command again; and then a start without it.
    let broker = ward_service::broker_for(&config, store.clone(), clock.clone()).await.unwrap();
    assert_eq!(key_changes(&*store).await.len(), 1, "finished, not recorded twice");
    let report = verify_with_the_key_file(&config, &*store).await;
    assert!(report.is_valid(), "{:?}", report.problems);
    drop(broker);
    config.audit.new_signing_key = false;
    ward_service::broker_for(&config, store.clone(), clock.clone()).await.unwrap();
}

/// A start replacing a lost key can stop after any of its steps, as a crash would stop it; the
/// next start, not told again, finishes what the log recorded, and the log verifies with the key
/// file. Stopped before the change was recorded, the staged key is discarded (nothing names it)
/// and a lost key needs telling again.
#[tokio::test]
async fn a_key_change_stopped_at_any_step_leaves_a_log_that_verifies_after_the_next_start() {
    use ward_service::{KeyChangeStep, StartError};
    for step in [KeyChangeStep::Staged, KeyChangeStep::Recorded, KeyChangeStep::Installed] {
        let data = tempfile::tempdir().unwrap();
        let mut config = quickstart_in(&data);
        let store = sqlite().await.unwrap();
        let clock = Arc::new(ManualClock::new(t0()));
        let broker = ward_service::broker_for(&config, store.clone(), clock.clone()).await.unwrap();
        broker.sign_checkpoint(true).await.unwrap();
        let old_key = broker.verifier_key();
        drop(broker);
        std::fs::remove_file(&config.audit.signing_key).unwrap();
        let staged = ward_service::signing::staged_key_path(&config.audit.signing_key);

        config.audit.new_signing_key = true;
        let stopped = ward_service::broker_stopping_at(&config, store.clone(), clock.clone(), step).await;
        assert!(matches!(stopped, Err(StartError::Stopped(at)) if at == step), "{step:?}");
        config.audit.new_signing_key = false;
        let restarted = ward_service::broker_for(&config, store.clone(), clock.clone()).await;
        let broker = if step == KeyChangeStep::Staged {
            let refused = restarted.err().unwrap().to_string();
            assert!(refused.contains("missing") && refused.contains("--new-signing-key"), "{refused}");
            assert!(!staged.exists(), "a staged key no change names is discarded");
            assert!(key_changes(&*store).await.is_empty());
            config.audit.new_signing_key = true;
            ward_service::broker_for(&config, store.clone(), clock.clone()).await.unwrap()
        } else {
            restarted.unwrap_or_else(|e| panic!("{step:?}: {e}"))
        };
        assert!(!staged.exists() && config.audit.signing_key.exists(), "{step:?}");
        let changes = key_changes(&*store).await;
        assert_eq!(changes.len(), 1, "{step:?}");
        assert_eq!(changes[0].details["previous_key"].as_str(), Some(old_key.as_str()));
        assert_eq!(changes[0].details["key"].as_str(), Some(broker.verifier_key().as_str()));
        let report = verify_with_the_key_file(&config, &*store).await;
        assert!(report.is_valid(), "{step:?}: {:?}", report.problems);
        assert!(report.checkpoints_compared >= 2, "{step:?}: the old key's and the new key's");
    }
}

/// A test CA and a certificate it signed for `name`, as PEM (certificate, key).
/// A key file as ward wants it: readable by its owner only.
fn private(path: std::path::PathBuf) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

fn issued(ca: &rcgen::Issuer<'_, rcgen::KeyPair>, name: &str) -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let certificate =
        rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap().signed_by(&key, ca).unwrap();
    (certificate.pem(), key.serialize_pem())
}

fn test_ca() -> (rcgen::Issuer<'static, rcgen::KeyPair>, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let pem = params.self_signed(&key).unwrap().pem();
    (rcgen::Issuer::new(params, key), pem)
}

/// RFC 5425: the sink checks the receiver's certificate against `ca_file`, presents its client
/// certificate, and the messages carry the host name and only registered structured data. A
/// receiver the CA did not certify gets nothing, and the cursor does not move.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_to_syslog_over_tls() {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let store = sqlite().await.unwrap();
    let w = World::new(store.clone()).await;
    let files = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = files.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let (ca, ca_pem) = test_ca();
    let (server_cert, server_key) = issued(&ca, "localhost");
    let (client_cert, client_key) = issued(&ca, "ward");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap()).unwrap();
    let clients =
        rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .unwrap();
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(clients)
        .with_single_cert(
            vec![CertificateDer::from_pem_slice(server_cert.as_bytes()).unwrap()],
            PrivateKeyDer::from_pem_slice(server_key.as_bytes()).unwrap(),
        )
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let got = Arc::new(std::sync::Mutex::new(Vec::new()));
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
    let receiver = tokio::spawn(tls_syslog_receiver(listener, acceptor, got.clone()));

    let sink = |name: &str, ca_file: std::path::PathBuf| ward_service::forward::SinkConfig::Syslog {
        name: name.into(),
        address: format!("localhost:{port}"),
        tls: true,
        ca_file: Some(ca_file),
        client_cert: Some(write("client.pem", &client_cert)),
        client_key: Some(private(write("client.key", &client_key))),
    };
    let (stop, forwarder) = spawn_forwarder(&w, sink("siem", write("ca.pem", &ca_pem)));
    let (_, other_ca_pem) = test_ca();
    let (stop_other, other) =
        spawn_forwarder(&w, sink("impostor-check", write("other-ca.pem", &other_ca_pem)));

    w.granted().await;
    let written = w.events().await.len() as i64;
    eventually("the events over TLS", || got.lock().unwrap().len() as i64 == written).await;
    let messages = got.lock().unwrap().clone();
    assert_eq!(seqs(&messages), (1..=written).collect::<Vec<_>>());
    let hostname = ward_service::forward::hostname();
    assert_ne!(hostname, "-");
    for message in &messages {
        let fields: Vec<&str> = message.splitn(7, ' ').collect();
        assert_eq!(fields[2], hostname, "HOSTNAME is the machine's name: {message}");
        assert!(fields[6].starts_with("[meta sequenceId=\""), "only registered SD-IDs: {message}");
        assert!(!message.contains('@'), "no made-up enterprise number: {message}");
    }
    cursor_reaches(&*store, "siem", written).await;
    // The sink that does not trust the receiver's CA delivered nothing and says so by its cursor.
    assert_eq!(store.forward_cursor("impostor-check").await.unwrap(), 0);
    assert_eq!(got.lock().unwrap().len() as i64, written);
    for (stop, task) in [(stop, forwarder), (stop_other, other)] {
        stop.send(true).unwrap();
        task.await.unwrap();
    }
    receiver.abort();
}
