//! Browser sessions over the broker, on SQLite and PostgreSQL: begun, resumed by any process
//! sharing the store, refused once ended, expired or their person deactivated, each start and
//! end on record.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use ward_core::ManualClock;
use ward_core::audit::{AuditEvent, EventType};
use ward_service::broker::{DIRECTORY_SOURCE, PersonPush};
use ward_service::{Broker, Caller, Config};
use ward_session::{SessionError, Sessions, SignInSource};
use ward_store::{EventFilter, PersonRecord, Store};
use ward_store_sql::SqlStore;

fn config() -> Config {
    static DATA: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    let data = DATA.get_or_init(|| tempfile::tempdir().unwrap()).path().display().to_string();
    let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/quickstart/ward.toml"));
    Config::load(&path, &|name| (name == "WARD_DATA_DIR").then(|| data.clone())).unwrap()
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
    sessions: Sessions,
    store: Arc<dyn Store>,
}

const TTL: Duration = Duration::from_secs(8 * 3600);

impl World {
    async fn new(store: Arc<dyn Store>) -> Self {
        let clock = Arc::new(ManualClock::new(Timestamp::from_second(1_800_000_000).unwrap()));
        let broker = ward_service::broker_for(&config(), store.clone(), clock.clone()).await.unwrap();
        Self { sessions: Sessions::new(broker.clone(), TTL), broker, clock, store }
    }

    /// Another ward process on the same store.
    async fn another_process(&self) -> Self {
        let broker =
            ward_service::broker_for(&config(), self.store.clone(), self.clock.clone()).await.unwrap();
        Self {
            sessions: Sessions::new(broker.clone(), TTL),
            broker,
            clock: self.clock.clone(),
            store: self.store.clone(),
        }
    }

    fn caller(&self, name: &str) -> Caller {
        self.broker.caller(name).unwrap()
    }

    /// A ward token for `name` lasting `seconds` (narrowed to `scopes`): the token, and its id.
    async fn token(&self, name: &str, seconds: u64, scopes: Option<&str>) -> (String, String) {
        let scopes = scopes.map(|s| ward_core::scope::Scopes::parse(s).unwrap());
        let operator = Broker::local_operator("test");
        let (token, record) = self.broker.tokens().mint(&operator, name, seconds, scopes).await.unwrap();
        (token, record.id)
    }

    async fn events(&self, event_type: EventType) -> Vec<AuditEvent> {
        let filter = EventFilter { event_type: Some(event_type), limit: 1000, ..EventFilter::default() };
        self.store.events(&filter).await.unwrap()
    }
}

macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite { $( #[tokio::test] async fn $name() { if let Some(s) = super::sqlite().await { super::$name(s).await } } )* }
        mod on_postgres { $( #[tokio::test] async fn $name() { if let Some(s) = super::postgres().await { super::$name(s).await } } )* }
    };
}

on_both_stores!(
    a_token_sign_in_lasts_no_longer_than_its_token,
    a_session_is_resumed_until_its_person_signs_out,
    a_session_ends_at_its_expiry_whatever_else_happens,
    deactivating_a_person_ends_their_sessions_in_the_same_transaction,
    only_a_person_gets_a_session_and_only_a_real_secret_names_one,
);

async fn a_session_is_resumed_until_its_person_signs_out(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let alice = Caller { mfa: true, ..w.caller("alice") };
    let (secret, started) = w.sessions.start(&alice, SignInSource::Oidc).await.unwrap();
    assert!(started.record.id.starts_with("ses_"));
    assert_eq!(started.record.expires_at, w.broker.now() + SignedDuration::from_hours(8));
    assert_ne!(started.record.hash, secret.as_str(), "only the secret's hash is kept");

    // Any process sharing the store knows it, with the person as ward knows them now.
    let other = w.another_process().await;
    let resumed = other.sessions.resume(secret.as_str()).await.unwrap();
    assert_eq!((resumed.caller.name.as_str(), resumed.caller.mfa), ("alice", true));
    assert_eq!(resumed.record.id, started.record.id);

    // The CSRF token is the session's: the same each time, another session's is refused.
    assert_eq!(resumed.csrf_token(), started.csrf_token());
    assert!(resumed.admits_csrf(&started.csrf_token()));
    let (_, bobs) = w.sessions.start(&w.caller("bob"), SignInSource::Oidc).await.unwrap();
    assert!(!resumed.admits_csrf(&bobs.csrf_token()));
    assert!(!resumed.admits_csrf(""));
    assert!(!resumed.admits_csrf("not base64!"));

    w.sessions.sign_out(&resumed).await.unwrap();
    let refused = other.sessions.resume(secret.as_str()).await;
    assert!(matches!(refused, Err(SessionError::Ended(_))), "{refused:?}");
    // Signing out twice (two tabs) changes nothing more.
    w.sessions.sign_out(&resumed).await.unwrap();

    let started_events = w.events(EventType::SessionStarted).await;
    assert_eq!(started_events.len(), 2);
    assert_eq!(started_events[0].actor, "alice");
    assert_eq!(started_events[0].details["session_id"], started.record.id.as_str());
    assert_eq!(
        (&started_events[0].details["source"], &started_events[0].details["mfa"]),
        (&"oidc".into(), &true.into())
    );
    let ended = w.events(EventType::SessionEnded).await;
    assert_eq!(ended.len(), 1, "ended once");
    assert_eq!((ended[0].actor.as_str(), ended[0].subject.as_deref()), ("alice", Some("alice")));
    assert_eq!(ended[0].details["ended_because"], "signed-out");
    let text = format!("{:?}", w.events(EventType::SessionStarted).await);
    assert!(!text.contains(secret.as_str()), "the secret is never recorded");
}

async fn a_session_ends_at_its_expiry_whatever_else_happens(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let (secret, started) = w.sessions.start(&w.caller("alice"), SignInSource::Oidc).await.unwrap();
    w.clock.advance(SignedDuration::from_hours(8) - SignedDuration::from_millis(1));
    w.sessions.resume(secret.as_str()).await.unwrap();
    w.clock.advance(SignedDuration::from_millis(1));
    let refused = w.sessions.resume(secret.as_str()).await;
    assert!(
        matches!(refused, Err(SessionError::Expired(at)) if at == started.record.expires_at),
        "{refused:?}"
    );
}

async fn deactivating_a_person_ends_their_sessions_in_the_same_transaction(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let (first, _) = w.sessions.start(&w.caller("alice"), SignInSource::Oidc).await.unwrap();
    let (alices_token, _) = w.token("alice", 3600, None).await;
    let (second, _) = w.sessions.sign_in_with_token(&alices_token).await.unwrap();
    let (bobs, _) = w.sessions.start(&w.caller("bob"), SignInSource::Oidc).await.unwrap();
    let now = w.broker.now();
    let gone = PersonRecord {
        name: "alice".into(),
        source: DIRECTORY_SOURCE.into(),
        subject: Some("00u1".into()),
        display_name: None,
        groups: vec![],
        active: false,
        deleted_at: None,
        created_at: now,
        claims_at: now,
        updated_at: now,
        version: 1,
    };
    w.broker.push_person("service:entra", gone, PersonPush::Deactivated, "left".into()).await.unwrap();
    for secret in [&first, &second] {
        let refused = w.sessions.resume(secret.as_str()).await;
        assert!(matches!(refused, Err(SessionError::Ended(_))), "{refused:?}");
    }
    w.sessions.resume(bobs.as_str()).await.unwrap();
    let deactivated = w.events(EventType::DirectoryUserDeactivated).await;
    let ended = w.events(EventType::SessionEnded).await;
    assert_eq!(ended.len(), 2);
    for event in &ended {
        assert_eq!((event.actor.as_str(), event.subject.as_deref()), ("service:entra", Some("alice")));
        assert_eq!(event.details["ended_because"], "deactivated");
        assert!(event.seq > deactivated[0].seq, "the cause first");
        assert_eq!(event.recorded_at, deactivated[0].recorded_at, "in its transaction");
    }
}

async fn only_a_person_gets_a_session_and_only_a_real_secret_names_one(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let operator = Broker::local_operator("root");
    assert!(matches!(
        w.sessions.start(&operator, SignInSource::Token).await,
        Err(SessionError::NotAPerson(_))
    ));
    let service = Caller { person: false, service: true, ..w.caller("alice") };
    assert!(matches!(
        w.sessions.start(&service, SignInSource::Token).await,
        Err(SessionError::NotAPerson(_))
    ));
    let (shipper, _) = w.token("service:shipper", 600, Some("push")).await;
    let refused = w.sessions.sign_in_with_token(&shipper).await;
    assert!(matches!(refused, Err(SessionError::NotAPerson(_))), "{refused:?}");
    for bad in ["", "x", &"a".repeat(43), &"é".repeat(22), &"a".repeat(4096)] {
        let refused = w.sessions.resume(bad).await;
        assert!(matches!(refused, Err(SessionError::NotSignedIn)), "{bad}: {refused:?}");
    }
    assert!(w.events(EventType::SessionStarted).await.is_empty());
}

async fn a_token_sign_in_lasts_no_longer_than_its_token(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    // A token that ends before the session would: the session ends with it.
    let (short, short_id) = w.token("alice", 600, None).await;
    let (secret, session) = w.sessions.sign_in_with_token(&short).await.unwrap();
    assert_eq!(session.record.token_id.as_deref(), Some(short_id.as_str()));
    assert_eq!(session.record.expires_at, w.broker.now() + SignedDuration::from_mins(10));
    assert_eq!(session.record.source, "token");
    assert!(!session.caller.mfa, "a ward token says nothing about factors");

    // Revoking the token ends the session, in any process.
    let (long, long_id) = w.token("alice", 86_400, None).await;
    let (long_secret, long_session) = w.sessions.sign_in_with_token(&long).await.unwrap();
    assert_eq!(
        long_session.record.expires_at,
        w.broker.now() + SignedDuration::from_hours(8),
        "the session's own limit"
    );
    let operator = Broker::local_operator("test");
    w.broker.tokens().revoke(&operator, &long_id).await.unwrap();
    let other = w.another_process().await;
    let refused = other.sessions.resume(long_secret.as_str()).await;
    assert!(matches!(refused, Err(SessionError::TokenRevoked(_))), "{refused:?}");
    w.clock.advance(SignedDuration::from_mins(10));
    let expired = w.sessions.resume(secret.as_str()).await;
    assert!(matches!(expired, Err(SessionError::Expired(_))), "{expired:?}");

    // Not a ward token, an unknown or revoked one, or one narrowed to scopes: no session.
    let (narrow, _) = w.token("alice", 600, Some("read")).await;
    for bad in ["", "eyJhbGciOiJSUzI1NiJ9.e30.c2ln", &format!("ward_{}", "0".repeat(64)), &long, &narrow] {
        let refused = w.sessions.sign_in_with_token(bad).await;
        assert!(matches!(refused, Err(SessionError::SignIn(_))), "{bad}: {refused:?}");
    }
    assert_eq!(w.events(EventType::SessionStarted).await.len(), 2);
}
