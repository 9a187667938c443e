//! Follow a service's debug windows from ward.
//!
//! A Rust service that logs with [`tracing`] embeds this crate to let ward raise its log level
//! for approved, time-limited debug-level grants, and put it back when they end: the service's
//! filter is a [`tracing_subscriber::reload`] layer, and a task follows the service's
//! debug-level resource (`driver = "tracing"` in `ward.toml`) with a long poll of ward's
//! `GET /v1/debug-levels/{resource}`, authenticated as the service (a ward token of a member of
//! a `service_groups` group).
//!
//! Nothing outlives the grant: the service runs with its own default filter unless ward says a
//! window is open, goes back to it when the window ends (at the `until` ward gave, even when ward
//! cannot be reached then), and whenever ward cannot be reached or refuses.
//!
//! ```no_run
//! use tracing_subscriber::prelude::*;
//!
//! # async fn run() -> Result<(), ward_tracing::FollowError> {
//! // WARD_URL and WARD_TOKEN (or WARD_TOKEN_FILE) say where ward is and who the service is.
//! let follower = ward_tracing::Follower::from_env("debug:payments-worker", "info")?;
//! let (filter, following) = follower.layer();
//! tracing_subscriber::registry().with(filter).with(tracing_subscriber::fmt::layer()).init();
//! tokio::spawn(following.run());
//! # Ok(())
//! # }
//! ```

use std::time::Duration;

use jiff::Timestamp;
use serde::Deserialize;
use tracing::Subscriber;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::reload;

/// How long one ask waits at ward for a change.
const WAIT: Duration = Duration::from_secs(20);
/// The first wait before asking again after ward could not be reached, and the longest.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MOST_BACKOFF: Duration = Duration::from_secs(30);

/// Why a [`Follower`] could not be made.
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    #[error("{0} is not set: it says where ward is and who the service is")]
    Missing(&'static str),
    #[error("cannot read the token file {path}: {message}")]
    TokenFile { path: String, message: String },
    #[error("`{0}` is not an http:// or https:// URL of ward")]
    BadUrl(String),
    #[error("the filter `{filter}` does not parse: {message}")]
    BadFilter { filter: String, message: String },
    #[error("cannot make the HTTP client: {0}")]
    Client(String),
}

/// What ward says a service runs with now (`DebugWindowView` in ward's API).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Window {
    /// The filter directives to add to the default while a window is open; none: the default.
    pub level: Option<String>,
    /// When the open windows end (unless ward says otherwise before).
    pub until: Option<Timestamp>,
    /// Changes whenever the answer does.
    pub revision: String,
}

/// Follows one debug-level resource of ward's.
pub struct Follower {
    client: reqwest::Client,
    url: reqwest::Url,
    token: String,
    default: String,
}

impl std::fmt::Debug for Follower {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token.
        f.debug_struct("Follower").field("url", &self.url.as_str()).field("default", &self.default).finish()
    }
}

impl Follower {
    /// Follows `resource` at ward's `ward_url` with `token`; `default` is the filter the service
    /// runs with outside debug windows (`info`, `payments=info,tower=warn`).
    pub fn new(ward_url: &str, token: &str, resource: &str, default: &str) -> Result<Self, FollowError> {
        let mut url = reqwest::Url::parse(ward_url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| FollowError::BadUrl(ward_url.to_owned()))?;
        url.path_segments_mut()
            .map_err(|()| FollowError::BadUrl(ward_url.to_owned()))?
            .pop_if_empty()
            .extend(["v1", "debug-levels", resource]);
        filter(default, None)?;
        let client = reqwest::Client::builder()
            .timeout(WAIT + Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| FollowError::Client(e.to_string()))?;
        Ok(Self { client, url, token: token.trim().to_owned(), default: default.to_owned() })
    }

    /// As [`Follower::new`], with ward's URL from `WARD_URL` and the token from `WARD_TOKEN` or
    /// the file `WARD_TOKEN_FILE` names.
    pub fn from_env(resource: &str, default: &str) -> Result<Self, FollowError> {
        let url = std::env::var("WARD_URL").map_err(|_| FollowError::Missing("WARD_URL"))?;
        let token = match std::env::var("WARD_TOKEN") {
            Ok(token) => token,
            Err(_) => {
                let path = std::env::var("WARD_TOKEN_FILE")
                    .map_err(|_| FollowError::Missing("WARD_TOKEN or WARD_TOKEN_FILE"))?;
                std::fs::read_to_string(&path)
                    .map_err(|e| FollowError::TokenFile { path, message: e.to_string() })?
            }
        };
        Self::new(&url, &token, resource, default)
    }

    /// The filter layer to put under the service's other layers, and the task that keeps it
    /// following ward (run it on the service's runtime: `tokio::spawn(following.run())`).
    pub fn layer<S>(self) -> (reload::Layer<EnvFilter, S>, Following<S>)
    where
        S: Subscriber + 'static,
    {
        let start = EnvFilter::new(&self.default);
        let (layer, handle) = reload::Layer::new(start);
        (layer, Following { follower: self, handle, applied: None })
    }

    /// Asks ward once: what to run with now, waiting up to `wait` for a change from `seen`.
    pub async fn ask(&self, seen: Option<&str>, wait: Duration) -> Result<Window, reqwest::Error> {
        let mut url = self.url.clone();
        url.query_pairs_mut().append_pair("wait", &wait.as_secs().to_string());
        if let Some(seen) = seen {
            url.query_pairs_mut().append_pair("seen", seen);
        }
        self.client.get(url).bearer_auth(&self.token).send().await?.error_for_status()?.json().await
    }
}

/// The filter for `window` directives on top of `default`.
fn filter(default: &str, window: Option<&str>) -> Result<EnvFilter, FollowError> {
    let text = match window {
        Some(window) => format!("{default},{window}"),
        None => default.to_owned(),
    };
    EnvFilter::builder()
        .parse(&text)
        .map_err(|e| FollowError::BadFilter { filter: text.clone(), message: e.to_string() })
}

/// The task that keeps a service's filter following its debug windows.
pub struct Following<S> {
    follower: Follower,
    handle: reload::Handle<EnvFilter, S>,
    /// The window's directives in force (none: the default).
    applied: Option<String>,
}

impl<S> Following<S>
where
    S: Subscriber + 'static,
{
    /// Follows ward until the service stops.
    pub async fn run(mut self) {
        let mut seen: Option<String> = None;
        let mut until: Option<Timestamp> = None;
        let mut backoff = FIRST_BACKOFF;
        loop {
            let asked = self.follower.ask(seen.as_deref(), WAIT);
            let answer = tokio::select! {
                answer = asked => answer,
                // The window ends while ward is asked: back to the default at once.
                () = sleep_until(until) => {
                    self.apply(None);
                    until = None;
                    continue;
                }
            };
            match answer {
                Ok(window) => {
                    backoff = FIRST_BACKOFF;
                    until = window.until.filter(|_| window.level.is_some());
                    let open = window.level.filter(|_| until.is_some_and(|u| u > Timestamp::now()));
                    self.apply(open);
                    seen = Some(window.revision);
                }
                Err(error) => {
                    // ward cannot be reached or refuses: no window is open as far as we know.
                    tracing::warn!(target: "ward_tracing", %error, "cannot follow the debug window from ward; using the default filter");
                    self.apply(None);
                    (seen, until) = (None, None);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MOST_BACKOFF);
                }
            }
        }
    }

    /// Puts the default filter, or the default with a window's directives, in force.
    fn apply(&mut self, window: Option<String>) {
        if window == self.applied {
            return;
        }
        let filter = match filter(&self.follower.default, window.as_deref()) {
            Ok(filter) => filter,
            Err(error) => {
                tracing::warn!(target: "ward_tracing", %error, "ward sent a filter that does not parse; using the default");
                match filter(&self.follower.default, None) {
                    Ok(default) => default,
                    Err(_) => return,
                }
            }
        };
        if let Err(error) = self.handle.reload(filter) {
            tracing::warn!(target: "ward_tracing", %error, "cannot change the filter");
            return;
        }
        match &window {
            Some(level) => tracing::info!(target: "ward_tracing", level, "debug window open: filter raised"),
            None => tracing::info!(target: "ward_tracing", "no debug window open: default filter"),
        }
        self.applied = window;
    }
}

/// Resolves at `until` (never when none).
async fn sleep_until(until: Option<Timestamp>) {
    match until {
        Some(until) => {
            let left = until.as_millisecond().saturating_sub(Timestamp::now().as_millisecond());
            tokio::time::sleep(Duration::from_millis(u64::try_from(left).unwrap_or(0))).await;
        }
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_adds_its_directives_to_the_default() {
        use tracing::Level;
        use tracing_subscriber::layer::SubscriberExt;

        let raised = filter("info", Some("debug")).unwrap();
        assert_eq!(raised.max_level_hint(), Some(Level::DEBUG.into()));
        let scoped = filter("info", Some("payments=trace")).unwrap();
        assert_eq!(scoped.max_level_hint(), Some(Level::TRACE.into()));
        assert_eq!(filter("info", None).unwrap().max_level_hint(), Some(Level::INFO.into()));
        assert!(matches!(filter("info", Some("=bad=")), Err(FollowError::BadFilter { .. })));
        let _ = tracing_subscriber::registry().with(raised);
    }

    #[test]
    fn bad_urls_and_filters_are_refused_and_the_token_never_shown() {
        assert!(matches!(Follower::new("ftp://ward", "t", "debug:x", "info"), Err(FollowError::BadUrl(_))));
        assert!(matches!(Follower::new("ward:8470", "t", "debug:x", "info"), Err(FollowError::BadUrl(_))));
        assert!(matches!(
            Follower::new("http://ward", "t", "debug:x", "info,=bad="),
            Err(FollowError::BadFilter { .. })
        ));
        let follower =
            Follower::new("http://ward:8470/", "ward_secret", "debug:payments-worker", "info").unwrap();
        assert_eq!(follower.url.as_str(), "http://ward:8470/v1/debug-levels/debug:payments-worker");
        assert!(!format!("{follower:?}").contains("ward_secret"));
    }
}
