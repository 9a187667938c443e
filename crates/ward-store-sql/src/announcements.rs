//! Commits announced by PostgreSQL: every transaction that appends events sends
//! `NOTIFY ward_log` (delivered at its commit), and this listener counts them for the processes'
//! followers of the log, which wake at once rather than at their next poll. A lost connection
//! is opened again, and counted as an announcement: what it missed, the follower reads.

use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::watch;

/// The channel commits are announced on.
pub const CHANNEL: &str = "ward_log";
/// How long to wait before listening again after the connection failed.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Counts the announcements into `counter` until the pool is closed.
pub async fn listen(pool: PgPool, counter: watch::Sender<u64>) {
    let announce = || counter.send_modify(|count| *count = count.wrapping_add(1));
    let mut failing = false;
    while !pool.is_closed() {
        let listening = async {
            let mut listener = PgListener::connect_with(&pool).await?;
            listener.listen(CHANNEL).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        let mut listener = match listening.await {
            Ok(listener) => listener,
            Err(error) => {
                if !failing {
                    tracing::warn!(%error, "cannot listen for commits; followers poll the log meanwhile");
                }
                failing = true;
                tokio::time::sleep(RETRY_AFTER).await;
                continue;
            }
        };
        failing = false;
        // Whatever was committed while nobody listened is the follower's to read.
        announce();
        // `recv` connects again by itself; an error is one it could not get past.
        while listener.recv().await.is_ok() {
            announce();
        }
    }
}
