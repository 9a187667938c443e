//! What runs beside the API in the process that serves: the scheduler, the follower of what
//! other processes commit, the consumers of the audit log (one forwarder per sink), and the
//! policy reload on SIGHUP. The serving process
//! (`ward serve`) starts and stops them around the HTTP server; the HTTP crate only serves.

use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::{Broker, consumer, forward, scheduler};

/// The running background tasks; [`Background::stop`] ends them.
pub struct Background {
    stop: watch::Sender<bool>,
    tasks: Vec<(&'static str, JoinHandle<()>)>,
    reloader: JoinHandle<()>,
}

impl Background {
    pub fn start(broker: &Arc<Broker>) -> Self {
        let (stop, stopped) = watch::channel(false);
        let mut tasks = vec![
            ("the scheduler", tokio::spawn(scheduler::run(broker.clone(), stopped.clone()))),
            ("the log follower", tokio::spawn(crate::broker::follow_log(broker.clone(), stopped.clone()))),
        ];
        for sink in &broker.settings().forward {
            let (store, clock, sink) = (broker.store().clone(), broker.clock(), sink.clone());
            let (appended, stopped) = (broker.subscribe_appended(), stopped.clone());
            let run = async move {
                forward::run(store, clock, sink, consumer::this_process(), appended, stopped).await;
            };
            tasks.push(("a forwarder", tokio::spawn(run)));
        }
        Self { stop, tasks, reloader: tokio::spawn(reload_on_sighup(broker.clone())) }
    }

    /// Tells every task to stop and waits for them: the scheduler writes what it still owes
    /// (usage summaries), each forwarder gives its lease up.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        self.reloader.abort();
        for (what, task) in self.tasks {
            if let Err(error) = task.await {
                tracing::error!(%error, "{what} stopped abnormally");
            }
        }
    }
}

/// Reloads the policies on every SIGHUP, as `ward policy reload` does.
async fn reload_on_sighup(broker: Arc<Broker>) {
    let mut hangups = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(hangups) => hangups,
        Err(error) => {
            tracing::error!(%error, "cannot listen for SIGHUP; policies reload only through the API");
            return;
        }
    };
    while hangups.recv().await.is_some() {
        match broker.reload_policies(ward_core::SYSTEM_ACTOR).await {
            Ok(reload) if reload.changed => {
                tracing::info!(hash = %reload.hash, "policies reloaded on SIGHUP")
            }
            Ok(_) => tracing::info!("SIGHUP: the policies are unchanged"),
            Err(error) => tracing::error!(%error, "SIGHUP: the policies were not reloaded"),
        }
    }
}
