//! Alerts and notifications (issue 13): each `[[notify]]` sink is a consumer of the audit log
//! that delivers the events it lists — a webhook signed as the Standard Webhooks specification
//! says, or a Slack message — at least once, off the commit path, plus the time-driven notice
//! before a grant ends; and [`SlackActions`], the service behind
//! `POST /v1/integrations/slack/actions`, through which approvers decide from Slack.
//!
//! The serving process (`ward serve`) starts a [`Notifier`] beside ward-service's `Background`
//! and stops it after the server.

pub mod actions;
pub mod message;
pub mod sink;
pub mod slack;
pub mod webhook;

use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use ward_service::Broker;
use ward_service::notify_settings::NotifySettings;

pub use actions::{ActionError, ActionOutcome, SlackActions};
pub use sink::{Retry, SinkWorker, Step};

/// The running sinks; [`Notifier::stop`] ends them.
pub struct Notifier {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Notifier {
    /// Starts one task per sink, each delivering while this process (`holder`) holds the
    /// sink's lease. A sink configured for the first time starts at the log as it is now: call
    /// this before serving, so that nothing committed once ward serves is missed.
    pub async fn start(
        broker: &Arc<Broker>,
        settings: &NotifySettings,
        holder: &str,
        retry: Retry,
    ) -> Result<Self, String> {
        let (stop, stopped) = watch::channel(false);
        let mut workers = Vec::new();
        if !settings.sinks.is_empty() {
            let head = broker.store().head().await.map_err(|e| format!("notifications: {e}"))?;
            let head = i64::try_from(head.size).unwrap_or(i64::MAX);
            for sink in &settings.sinks {
                let worker = SinkWorker::new(
                    broker.clone(),
                    sink.clone(),
                    settings.slack.clone(),
                    settings.expiring_notice_seconds,
                    holder,
                    retry,
                )?;
                workers.push(worker.starting_after(head).linking_to(settings.web_url.clone()));
            }
        }
        let tasks = workers
            .into_iter()
            .map(|worker| tokio::spawn(sink::run(worker, broker.subscribe_appended(), stopped.clone())))
            .collect();
        Ok(Self { stop, tasks })
    }

    /// Tells every sink to stop and waits for them (each gives its lease up).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            if let Err(error) = task.await {
                tracing::error!(%error, "a notification sink stopped abnormally");
            }
        }
    }
}
