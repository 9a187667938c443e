//! Signing as the Standard Webhooks specification says: ward-core's, shared with the `http`
//! debug-level driver.

pub use ward_core::webhook::{ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign, verify};
