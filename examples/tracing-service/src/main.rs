//! payments-worker: a stand-in for a Rust service whose log level ward raises for approved,
//! time-limited debug windows. It settles a batch every 200 ms, saying so at `info`, with the
//! batch's details at `debug`; outside a window only the `info` lines are written.
//!
//! `WARD_URL` and `WARD_TOKEN` (a token of the service's own ward user) say where ward is;
//! `WARD_RESOURCE` names its debug-level resource (default `debug:payments-worker`).

use std::process::ExitCode;
use std::time::Duration;

use tracing_subscriber::prelude::*;

#[tokio::main]
async fn main() -> ExitCode {
    let resource = std::env::var("WARD_RESOURCE").unwrap_or_else(|_| "debug:payments-worker".to_owned());
    let follower = match ward_tracing::Follower::from_env(&resource, "info") {
        Ok(follower) => follower,
        Err(error) => {
            eprintln!("payments-worker: {error}");
            return ExitCode::from(2);
        }
    };
    let (filter, following) = follower.layer();
    tracing_subscriber::registry()
        .with(filter)
        .with(tracing_subscriber::fmt::layer().with_ansi(false))
        .init();
    tokio::spawn(following.run());
    let mut batch = 0u64;
    loop {
        batch += 1;
        tracing::info!(batch, "settled a batch");
        tracing::debug!(batch, transfers = 3, "batch detail: ledger entries written");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
