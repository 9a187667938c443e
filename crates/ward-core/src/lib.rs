//! ward's pure core.
//!
//! Everything here is deterministic: no I/O, no clocks read behind the caller's back, no
//! randomness. Time comes in as a [`jiff::Timestamp`] (from a [`clock::Clock`] the caller owns),
//! identifiers come in already generated. That keeps the state machine, the policy decisions and
//! the audit hashing testable in isolation and identical on every store backend.

pub mod audit;
pub mod calendar;
pub mod checkpoint;
pub mod clock;
pub mod directory;
pub mod duration;
pub mod lifecycle;
pub mod merkle;
pub mod model;
pub mod policy;
pub mod scope;
pub mod seal;
pub mod verify;
pub mod webhook;

pub use clock::{Clock, ManualClock, SystemClock};
pub use model::*;
