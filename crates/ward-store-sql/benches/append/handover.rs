//! Appends handed over to the replica that holds the chain: a shape ward does not have, built
//! here only to measure it before deciding to build it. Replicas that do not hold the chain
//! gather their callers' events as a writer does and send each group over HTTP to the holder,
//! whose own group commit then packs every replica's callers into its turns.
//!
//! What it leaves out: authenticating the replicas, the records a change writes besides its
//! events, and what happens when the holder is gone. Each would add to a hop's cost, not take
//! from it.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use jiff::Timestamp;
use tokio::sync::{mpsc, oneshot};
use ward_core::audit::NewEvent;
use ward_store::{Change, Store};
use ward_store_sql::SqlStore;

/// Events a group sends at most, as the store's writer packs at most 64 changes.
const MAX_GROUP: usize = 64;

/// Serves `POST /append` on a free loopback port for `holder`: its URL, and the server's task
/// to abort when done.
pub async fn serve(holder: Arc<SqlStore>) -> (String, tokio::task::JoinHandle<()>) {
    let app = Router::new().route("/append", post(append)).with_state(holder);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{address}/append"), server)
}

/// Commits each event of a group as a change of its own, all at once, so that they join the
/// holder's group commit as its own callers' do; answers with their `seq`s.
async fn append(State(holder): State<Arc<SqlStore>>, Json(events): Json<Vec<NewEvent>>) -> Json<Vec<i64>> {
    let commits: Vec<_> = events
        .into_iter()
        .map(|event| {
            let holder = holder.clone();
            tokio::spawn(async move {
                let change = Change { events: vec![event], ..Change::default() };
                holder.commit(change, Timestamp::now()).await.unwrap()[0].seq
            })
        })
        .collect();
    let mut seqs = Vec::with_capacity(commits.len());
    for commit in commits {
        seqs.push(commit.await.unwrap());
    }
    Json(seqs)
}

/// A replica's side: one group in flight at a time, as its writer would have.
pub struct Forwarder {
    queue: mpsc::Sender<(NewEvent, oneshot::Sender<i64>)>,
}

impl Forwarder {
    pub fn start(url: String) -> Self {
        let (queue, mut waiting) = mpsc::channel::<(NewEvent, oneshot::Sender<i64>)>(1024);
        let http = reqwest::Client::new();
        tokio::spawn(async move {
            let mut group = Vec::with_capacity(MAX_GROUP);
            while waiting.recv_many(&mut group, MAX_GROUP).await > 0 {
                // As the store's writer does: callers just answered may be about to send again.
                tokio::task::yield_now().await;
                while group.len() < MAX_GROUP
                    && let Ok(next) = waiting.try_recv()
                {
                    group.push(next);
                }
                let (events, replies): (Vec<_>, Vec<_>) = group.drain(..).unzip();
                let response = http.post(&url).json(&events).send().await.unwrap();
                let seqs: Vec<i64> = response.error_for_status().unwrap().json().await.unwrap();
                for (reply, seq) in replies.into_iter().zip(seqs) {
                    let _ = reply.send(seq);
                }
            }
        });
        Self { queue }
    }

    /// Appends `event` through the holder; its `seq` once it is durable there.
    pub async fn append(&self, event: NewEvent) -> i64 {
        let (reply, answer) = oneshot::channel();
        self.queue.send((event, reply)).await.unwrap();
        answer.await.unwrap()
    }
}
