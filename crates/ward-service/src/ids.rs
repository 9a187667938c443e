//! Identifiers: UUIDv7 (time-ordered, random), with a prefix that says what they name.

use ward_core::lifecycle::IdSource;
use ward_core::{GrantId, RequestId};

#[derive(Debug, Default, Clone, Copy)]
pub struct RandomIds;

fn fresh(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

impl IdSource for RandomIds {
    fn request_id(&mut self) -> RequestId {
        RequestId(fresh("req"))
    }

    fn grant_id(&mut self) -> GrantId {
        GrantId(fresh("grt"))
    }

    fn event_id(&mut self) -> String {
        fresh("evt")
    }
}
