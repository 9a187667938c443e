//! SCIM's Users over the broker, on SQLite and PostgreSQL: people pushed in, found by filter,
//! changed, and — the point of it — deactivated or deleted with their access ended at once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;

use jiff::Timestamp;
use serde_json::{Value, json};
use ward_core::audit::{AuditEvent, EventType};
use ward_core::{GrantState, ManualClock};
use ward_scim::group::GROUP_SCHEMA;
use ward_scim::patch::PATCH_SCHEMA;
use ward_scim::user::USER_SCHEMA;
use ward_scim::{Paging, Scim, ScimType};
use ward_service::{Broker, BrokerError, Caller, Config, RequestInput};
use ward_store::{EventFilter, Store};
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
    scim: Scim,
    store: Arc<dyn Store>,
    /// The identity provider's service principal, as its `scim` token authenticates it.
    provider: Caller,
}

impl World {
    async fn new(store: Arc<dyn Store>) -> Self {
        let clock = Arc::new(ManualClock::new(Timestamp::from_second(1_800_000_000).unwrap()));
        let broker = ward_service::broker_for(&config(), store.clone(), clock.clone()).await.unwrap();
        let operator = Broker::local_operator("test");
        let scopes = Some(ward_core::scope::Scopes::parse("scim").unwrap());
        let (token, _) = broker.tokens().mint(&operator, "service:entra", 3600, scopes).await.unwrap();
        let provider = broker.tokens().authenticate(&token).await.unwrap();
        Self { scim: Scim::new(broker.clone()), broker, clock, store, provider }
    }

    async fn create(&self, body: Value) -> Result<Value, ward_scim::ScimError> {
        self.scim.create_user(&self.provider, &body).await
    }

    async fn patch(&self, id: &str, operations: Value) -> Result<Value, ward_scim::ScimError> {
        let body = json!({"schemas": [PATCH_SCHEMA], "Operations": operations});
        self.scim.patch_user(&self.provider, id, &body).await
    }

    async fn events(&self, event_type: EventType) -> Vec<AuditEvent> {
        let filter = EventFilter { event_type: Some(event_type), limit: 1000, ..EventFilter::default() };
        self.store.events(&filter).await.unwrap()
    }

    /// alice asks for 30m of `read` on payments-api: the pending request.
    async fn alices_request(&self) -> ward_core::AccessRequest {
        let alice = self.broker.caller("alice").unwrap();
        let ask = RequestInput {
            resource: "logs:payments-api".into(),
            role: "read".into(),
            duration_seconds: 1800,
            reason: "INC-4312 checkout 500s".into(),
            ticket: None,
            start_at: None,
            breakglass: false,
        };
        self.broker.create_request(&alice, ask).await.unwrap()
    }

    /// alice's request, approved by bob: her live grant's id.
    async fn alices_grant(&self) -> String {
        let request = self.alices_request().await;
        let bob = self.broker.caller("bob").unwrap();
        let approved = self.broker.approve(&bob, request.id.as_str(), None).await.unwrap();
        approved.grant_id.unwrap().to_string()
    }
}

fn user(name: &str, extra: Value) -> Value {
    let mut body = json!({"schemas": [USER_SCHEMA], "userName": name});
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    body
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite { $( #[tokio::test] async fn $name() { if let Some(s) = super::sqlite().await { super::$name(s).await } } )* }
        mod on_postgres { $( #[tokio::test] async fn $name() { if let Some(s) = super::postgres().await { super::$name(s).await } } )* }
    };
}

on_both_backends!(
    people_are_pushed_found_and_changed,
    deactivating_someone_ends_their_access_at_once,
    a_deleted_user_is_gone_and_can_come_back,
    groups_decide_who_approves,
    a_deactivation_reaches_every_process,
);

async fn people_are_pushed_found_and_changed(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let created =
        w.create(user("pat@example.com", json!({"externalId": "00u1", "displayName": "Pat"}))).await.unwrap();
    assert_eq!((created["id"].as_str(), created["active"].as_bool()), (Some("pat@example.com"), Some(true)));
    let recorded = w.events(EventType::DirectoryUserCreated).await;
    assert_eq!(recorded.len(), 1);
    assert_eq!(
        (recorded[0].actor.as_str(), recorded[0].details["source"].as_str()),
        ("service:entra", Some("scim"))
    );
    assert!(w.broker.caller("pat@example.com").is_some(), "known to ward from now on");

    // Found before being created again, as identity providers do; userName ignores case.
    let found = w.scim.list_users(Some(r#"userName eq "PAT@example.com""#), Paging::default()).await.unwrap();
    assert_eq!(
        (found["totalResults"].as_u64(), found["Resources"][0]["externalId"].as_str()),
        (Some(1), Some("00u1"))
    );
    let none = w.scim.list_users(Some(r#"externalId eq "00u2""#), Paging::default()).await.unwrap();
    assert_eq!(none["totalResults"], 0);
    let taken = w.create(user("Pat@Example.com", json!({}))).await.unwrap_err();
    assert_eq!((taken.status, taken.scim_type), (409, Some(ScimType::Uniqueness)));
    for (name, why) in
        [("", "cannot be a ward user name"), ("local:root", "reserved"), ("service:x", "reserved")]
    {
        let refused = w.create(user(name, json!({}))).await.unwrap_err();
        assert_eq!(refused.scim_type, Some(ScimType::InvalidValue));
        assert!(refused.detail.contains(why), "{name}: {}", refused.detail);
    }
    let bad_filter = w.scim.list_users(Some(r#"title eq "x""#), Paging::default()).await.unwrap_err();
    assert_eq!(bad_filter.scim_type, Some(ScimType::InvalidFilter));

    let patched = w
        .patch("pat@example.com", json!([{"op": "replace", "path": "displayName", "value": "Pat Doe"}]))
        .await;
    assert_eq!(patched.unwrap()["displayName"], "Pat Doe");
    let renamed = w
        .scim
        .replace_user(&w.provider, "pat@example.com", &user("pat.doe@example.com", json!({})))
        .await
        .unwrap_err();
    assert_eq!(renamed.scim_type, Some(ScimType::Mutability));
    let respelled = user("Pat@Example.com", json!({"displayName": "Pat Doe"}));
    let respelled = w.scim.replace_user(&w.provider, "pat@example.com", &respelled).await.unwrap();
    assert_eq!(respelled["userName"], "pat@example.com", "another spelling is no rename");
    let unchanged = w.events(EventType::DirectoryUserUpdated).await.len();
    w.patch("pat@example.com", json!([{"op": "replace", "path": "name.givenName", "value": "P"}]))
        .await
        .unwrap();
    assert_eq!(w.events(EventType::DirectoryUserUpdated).await.len(), unchanged, "nothing kept changed");
    let missing = w.scim.get_user("nobody").await.unwrap_err();
    assert_eq!(missing.status, 404);

    // Pages: startIndex from 1, count bounded.
    w.create(user("quinn@example.com", json!({}))).await.unwrap();
    let page = w.scim.list_users(None, Paging { start_index: Some(2), count: Some(1) }).await.unwrap();
    assert_eq!((page["totalResults"].as_u64(), page["itemsPerPage"].as_u64()), (Some(2), Some(1)));
    assert_eq!(page["Resources"][0]["userName"], "quinn@example.com");
}

async fn deactivating_someone_ends_their_access_at_once(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    // alice is in ward.toml; the directory takes her over.
    w.create(user("alice", json!({"externalId": "00u-alice"}))).await.unwrap();
    let grant = w.alices_grant().await;
    let operator = Broker::local_operator("test");
    let (token, _) = w.broker.tokens().mint(&operator, "alice", 3600, None).await.unwrap();
    let alice = w.broker.tokens().authenticate(&token).await.unwrap();
    assert!(w.broker.check(&alice, "alice", "read", "logs:payments-api").await.unwrap().allowed);

    // As Microsoft Entra ID sends it.
    let user =
        w.patch("alice", json!([{"op": "Replace", "path": "active", "value": "False"}])).await.unwrap();
    assert_eq!(user["active"], false);

    let stored = w.store.grant(&grant).await.unwrap().unwrap();
    assert_eq!(stored.state, GrantState::Revoked, "revoked in the same transaction");
    let deactivated = w.events(EventType::DirectoryUserDeactivated).await;
    assert_eq!(deactivated.len(), 1);
    assert_eq!(deactivated[0].actor, "service:entra");
    assert_eq!(deactivated[0].details["revoked_grants"], json!([grant.clone()]));
    let revoked = w.events(EventType::GrantRevoked).await;
    assert_eq!((revoked.len(), revoked[0].actor.as_str()), (1, "service:entra"));
    assert!(revoked[0].seq > deactivated[0].seq, "the cause first");
    assert_eq!(w.events(EventType::TokenRevoked).await.len(), 1, "her ward token ends with her");

    let refused = w.broker.tokens().authenticate(&token).await.unwrap_err();
    assert!(matches!(refused, BrokerError::Unauthenticated(_)), "{refused}");
    assert!(refused.to_string().contains("revoked"), "{refused}");
    assert!(w.broker.caller("alice").is_none(), "gone from the directory, ward.toml or not");
    let admin = w.broker.caller("admin").unwrap();
    assert!(!w.broker.check(&admin, "alice", "read", "logs:payments-api").await.unwrap().allowed);

    // Deactivating again changes nothing and records nothing.
    w.patch("alice", json!([{"op": "replace", "value": {"active": false}}])).await.unwrap();
    assert_eq!(w.events(EventType::DirectoryUserDeactivated).await.len(), 1);
    // Brought back: known again, but her old token stays revoked.
    let back = w.scim.replace_user(&w.provider, "alice", &user_named("alice")).await.unwrap();
    assert_eq!(back["active"], true);
    assert!(w.broker.caller("alice").is_some());
    assert!(w.broker.tokens().authenticate(&token).await.is_err());
}

fn user_named(name: &str) -> Value {
    user(name, json!({}))
}

async fn a_deleted_user_is_gone_and_can_come_back(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    w.create(user("alice", json!({}))).await.unwrap();
    let grant = w.alices_grant().await;
    w.scim.delete_user(&w.provider, "alice").await.unwrap();
    assert_eq!(w.store.grant(&grant).await.unwrap().unwrap().state, GrantState::Revoked);
    assert_eq!(w.scim.get_user("alice").await.unwrap_err().status, 404);
    assert_eq!(w.scim.delete_user(&w.provider, "alice").await.unwrap_err().status, 404);
    let listed = w.scim.list_users(None, Paging::default()).await.unwrap();
    assert_eq!(listed["totalResults"], 0);
    assert_eq!(w.events(EventType::DirectoryUserDeleted).await.len(), 1);
    assert!(w.broker.caller("alice").is_none());

    let again = w.create(user("alice", json!({}))).await.unwrap();
    assert_eq!(again["active"], true);
    assert!(w.broker.caller("alice").is_some());
    assert_eq!(w.events(EventType::DirectoryUserCreated).await.len(), 2);
}

fn patch_body(operations: Value) -> Value {
    json!({"schemas": [PATCH_SCHEMA], "Operations": operations})
}

/// A group pushed with its members is a ward group: who is in it decides what policies let
/// them do, and taking someone out (or the group away) takes that away at once.
async fn groups_decide_who_approves(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    for name in ["pat", "quinn"] {
        w.create(user(name, json!({}))).await.unwrap();
    }
    let pat = || w.broker.caller("pat").unwrap();
    let bob = w.broker.caller("bob").unwrap();
    // payments-leads approve on payments-api (the quickstart's policies); pat is not one yet.
    let request = w.alices_request().await;
    assert!(w.broker.approve(&pat(), request.id.as_str(), None).await.is_err());

    let body = json!({"schemas": [GROUP_SCHEMA], "displayName": "payments-leads", "externalId": "okta-g1",
        "members": [{"value": "pat"}]});
    let group = w.scim.create_group(&w.provider, &body).await.unwrap();
    let id = group["id"].as_str().unwrap().to_owned();
    assert_eq!(group["members"][0]["value"], "pat");
    let created = w.events(EventType::DirectoryGroupCreated).await;
    assert_eq!((created.len(), created[0].actor.as_str()), (1, "service:entra"));
    assert_eq!(created[0].details["members_added"], json!(["pat"]));
    assert!(w.broker.policy().directory().is_member("pat", &["payments-leads".into()]));
    let again = w.scim.create_group(&w.provider, &body).await.unwrap_err();
    assert_eq!((again.status, again.scim_type), (409, Some(ScimType::Uniqueness)));
    let stranger = json!({"schemas": [GROUP_SCHEMA], "displayName": "x", "members": [{"value": "nobody"}]});
    assert_eq!(
        w.scim.create_group(&w.provider, &stranger).await.unwrap_err().scim_type,
        Some(ScimType::InvalidValue)
    );
    let spaced = json!({"schemas": [GROUP_SCHEMA], "displayName": "Payments Leads"});
    assert!(w.scim.create_group(&w.provider, &spaced).await.unwrap_err().detail.contains("group_map"));

    // Found by name, members left out when asked.
    let found = w
        .scim
        .list_groups(Some(r#"displayName eq "PAYMENTS-leads""#), Paging::default(), false)
        .await
        .unwrap();
    assert_eq!((found["totalResults"].as_u64(), found["Resources"][0].get("members")), (Some(1), None));

    // quinn joins (Okta's form), pat leaves (Entra's form): in force at once.
    let add = patch_body(json!([{"op": "add", "path": "members", "value": [{"value": "quinn"}]}]));
    w.scim.patch_group(&w.provider, &id, &add).await.unwrap();
    let remove = patch_body(json!([{"op": "Remove", "path": "members", "value": [{"value": "pat"}]}]));
    let after = w.scim.patch_group(&w.provider, &id, &remove).await.unwrap();
    assert_eq!(
        after["members"],
        json!([{"value": "quinn", "display": "quinn", "$ref": "/scim/v2/Users/quinn", "type": "User"}])
    );
    assert!(!w.broker.policy().directory().is_member("pat", &["payments-leads".into()]));
    assert!(
        w.broker.approve(&pat(), request.id.as_str(), None).await.is_err(),
        "out of the group: no approving"
    );
    let updated = w.events(EventType::DirectoryGroupUpdated).await;
    assert_eq!(updated.len(), 2);
    assert_eq!(updated[1].details["members_removed"], json!(["pat"]));
    // The same patch again changes nothing and records nothing.
    w.scim.patch_group(&w.provider, &id, &remove).await.unwrap();
    assert_eq!(w.events(EventType::DirectoryGroupUpdated).await.len(), 2);

    // Renamed at the provider: the members move with it.
    let renamed = patch_body(json!([{"op": "replace", "path": "displayName", "value": "leads"}]));
    w.scim.patch_group(&w.provider, &id, &renamed).await.unwrap();
    let directory = w.broker.policy().directory().clone();
    assert!(
        directory.is_member("quinn", &["leads".into()])
            && !directory.is_member("quinn", &["payments-leads".into()])
    );
    assert_eq!(
        w.events(EventType::DirectoryGroupUpdated).await[2].details["previous_name"],
        "payments-leads"
    );

    w.scim.delete_group(&w.provider, &id).await.unwrap();
    assert!(!w.broker.policy().directory().is_member("quinn", &["leads".into()]));
    assert_eq!(w.scim.get_group(&id, true).await.unwrap_err().status, 404);
    assert_eq!(w.events(EventType::DirectoryGroupDeleted).await.len(), 1);
    // ward.toml's own payments-leads are untouched throughout.
    assert!(w.broker.policy().directory().is_member("bob", &["payments-leads".into()]));
    assert!(w.broker.approve(&bob, request.id.as_str(), None).await.is_ok());
}

/// Another ward process on the same store refuses the deactivated person's token on its very
/// next request, and within `PEOPLE_STALENESS` knows them no more: its checks deny them even
/// before it hears of the revocation.
async fn a_deactivation_reaches_every_process(store: Arc<dyn Store>) {
    let w = World::new(store.clone()).await;
    w.create(user("alice", json!({}))).await.unwrap();
    w.alices_grant().await;
    // Started after the grant: what another process learns of grants made elsewhere is issue 18's.
    let other = ward_service::broker_for(&config(), store, w.clock.clone()).await.unwrap();
    let operator = Broker::local_operator("test");
    let (alices, _) = other.tokens().mint(&operator, "alice", 3600, None).await.unwrap();
    let (admins, _) = other.tokens().mint(&operator, "admin", 3600, None).await.unwrap();
    let alice = other.tokens().authenticate(&alices).await.unwrap();
    assert!(other.check(&alice, "alice", "read", "logs:payments-api").await.unwrap().allowed);

    w.patch("alice", json!([{"op": "replace", "path": "active", "value": false}])).await.unwrap();
    let refused = other.tokens().authenticate(&alices).await.unwrap_err();
    assert!(matches!(refused, BrokerError::Unauthenticated(_)), "at once: {refused}");
    w.clock.advance(ward_service::broker::PEOPLE_STALENESS + jiff::SignedDuration::from_millis(1));
    let admin = other.tokens().authenticate(&admins).await.unwrap();
    assert!(other.caller("alice").is_none(), "the other process caught up");
    assert!(!other.check(&admin, "alice", "read", "logs:payments-api").await.unwrap().allowed);
}
