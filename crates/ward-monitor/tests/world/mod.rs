//! A ward.toml's world on a store and a controllable clock, as the tests of the consumers that
//! act on other systems (debug levels, logins) drive it: grants asked and approved through the
//! broker, a restart, the events of a type.

use std::path::Path;
use std::sync::Arc;

use jiff::Timestamp;
use ward_core::ManualClock;
use ward_core::audit::{AuditEvent, EventType};
use ward_service::{Broker, Caller, Config, RequestInput};
use ward_store::{EventFilter, Store};

pub fn t0() -> Timestamp {
    "2027-01-18T10:00:00Z".parse().unwrap()
}

pub struct World {
    pub config: Config,
    pub store: Arc<dyn Store>,
    pub clock: Arc<ManualClock>,
    pub broker: Arc<Broker>,
}

impl World {
    pub async fn new(path: &Path, store: Arc<dyn Store>) -> Self {
        let config = Config::load(path, &|_| None).unwrap();
        let clock = Arc::new(ManualClock::new(t0()));
        let broker = ward_service::broker_for(&config, store.clone(), clock.clone()).await.unwrap();
        Self { config, store, clock, broker }
    }

    /// The same store and clock under a new broker: ward started again.
    pub async fn restarted(&self) -> Self {
        let broker =
            ward_service::broker_for(&self.config, self.store.clone(), self.clock.clone()).await.unwrap();
        Self { config: self.config.clone(), store: self.store.clone(), clock: self.clock.clone(), broker }
    }

    pub fn who(&self, name: &str) -> Caller {
        self.broker.caller(name).unwrap()
    }

    /// `requester` holds `role` on `resource` for `minutes`, approved by `approver`: the
    /// grant's id.
    pub async fn granted(
        &self,
        resource: &str,
        role: &str,
        requester: &str,
        approver: &str,
        minutes: u64,
    ) -> String {
        let ask = RequestInput {
            resource: resource.into(),
            role: role.into(),
            duration_seconds: minutes * 60,
            reason: "INC-4312 orders stuck in pending".into(),
            ticket: None,
            start_at: None,
            breakglass: false,
        };
        let request = self.broker.create_request(&self.who(requester), ask).await.unwrap();
        let approved = self.broker.approve(&self.who(approver), request.id.as_str(), None).await.unwrap();
        approved.grant_id.unwrap().0
    }

    pub async fn events(&self, event_type: EventType) -> Vec<AuditEvent> {
        let filter = EventFilter { event_type: Some(event_type), limit: 1000, ..EventFilter::default() };
        self.store.events(&filter).await.unwrap()
    }
}
