//! What the UI's live parts share: server-sent events (`text/event-stream`), each stream fed
//! by a task that stops when the browser goes away, when the session ends, or when there is
//! nothing left to say. htmx's SSE extension swaps each event's HTML into the element that
//! names it (`sse-swap`).
//!
//! A stream always answers 200: a refusal is said in its `end` event. An error status would
//! make the browser's `EventSource` try again and again, each try a refusal in the audit log.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use askama::Template;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use tokio::sync::mpsc;
use ward_session::{Session, Sessions};

/// How often a stream checks that its session is still good (signed out, expired, the
/// person gone): the longest a live part outlives its session.
pub const SESSION_RECHECK: Duration = Duration::from_secs(5);

/// The name of the event after which the page closes the stream (`sse-close="end"`).
pub const END: &str = "end";

/// Whether a stream was asked for by ward's own page. A browser says where a request comes
/// from (`Sec-Fetch-Site`); a top-level navigation from another site must not start a read
/// of logs in the signed-in person's name.
pub fn from_our_page(headers: &HeaderMap) -> bool {
    headers.get("sec-fetch-site").is_none_or(|site| site.as_bytes() == b"same-origin")
}

/// The most live streams one process serves at once, and one person opens (each polls the
/// store every few seconds; a followed tail is also bounded by `[gateway]`).
const MAX_STREAMS: usize = 512;
const MAX_STREAMS_PER_PERSON: usize = 16;

/// The live streams open in this process, per person.
#[derive(Default)]
pub struct Streams(Mutex<HashMap<String, usize>>);

/// A place among the open streams, given back when the stream ends.
pub struct Slot {
    streams: Arc<Streams>,
    person: String,
}

impl Streams {
    /// A place for one more stream of `person`'s, if the limits allow it.
    pub fn admit(self: &Arc<Self>, person: &str) -> Option<Slot> {
        let mut open = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let total: usize = open.values().sum();
        let theirs = open.entry(person.to_owned()).or_default();
        if total >= MAX_STREAMS || *theirs >= MAX_STREAMS_PER_PERSON {
            return None;
        }
        *theirs += 1;
        Some(Slot { streams: self.clone(), person: person.to_owned() })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.streams.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.person) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.person);
            }
        }
    }
}

/// Where a stream's task sends its events.
pub struct Outlet(mpsc::Sender<Event>);

impl Outlet {
    /// Sends one event whose data is `html`; false once the browser has gone.
    pub async fn send(&self, name: &str, html: &str) -> bool {
        self.0.send(Event::default().event(name).data(html)).await.is_ok()
    }

    /// Sends one event whose data is `text`, escaped as HTML.
    pub async fn say(&self, name: &str, text: &str) -> bool {
        self.send(name, &Text { text }.render().unwrap_or_default()).await
    }

    /// Resolves when the browser has gone.
    pub async fn closed(&self) {
        self.0.closed().await;
    }
}

#[derive(Template)]
#[template(source = "{{ text }}", ext = "html")]
struct Text<'a> {
    text: &'a str,
}

/// A `text/event-stream` answer fed by `feed`, run as its own task, when `person` may open one
/// more; else one that says so.
pub fn stream<F, Fut>(streams: &Arc<Streams>, person: &str, feed: F) -> Response
where
    F: FnOnce(Outlet) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(slot) = streams.admit(person) else {
        return refused("Too many live pages are open: close some, then reload this one.".into());
    };
    open(feed, Some(slot))
}

/// The answer, its feed running as a task that holds `slot` until it ends.
fn open<F, Fut>(feed: F, slot: Option<Slot>) -> Response
where
    F: FnOnce(Outlet) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (sender, receiver) = mpsc::channel(64);
    let feeding = feed(Outlet(sender));
    tokio::spawn(async move {
        let _slot = slot;
        feeding.await;
    });
    let events = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|event| (Ok::<_, Infallible>(event), receiver))
    });
    Sse::new(events).keep_alive(KeepAlive::default()).into_response()
}

/// A stream that says only why it will not run, then ends.
pub fn refused(why: String) -> Response {
    open(
        |outlet| async move {
            outlet.say(END, &why).await;
        },
        None,
    )
}

/// Whether `session` is still good now; what a stream checks every [`SESSION_RECHECK`].
pub async fn session_still_good(sessions: &Sessions, session: &Session) -> bool {
    sessions.recheck(session).await.is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn a_person_opens_a_bounded_number_of_streams_and_gets_them_back() {
        let streams = Arc::new(Streams::default());
        let alices: Vec<Slot> =
            (0..MAX_STREAMS_PER_PERSON).map(|_| streams.admit("alice").unwrap()).collect();
        assert!(streams.admit("alice").is_none(), "one too many");
        assert!(streams.admit("bob").is_some(), "others still may");
        drop(alices);
        assert!(streams.admit("alice").is_some(), "closed ones are given back");
        let everyone: Vec<Slot> =
            (0..MAX_STREAMS).filter_map(|n| streams.admit(&format!("user-{n}"))).collect();
        assert_eq!(everyone.len(), MAX_STREAMS);
        assert!(streams.admit("carol").is_none(), "the process's limit");
    }

    #[test]
    fn only_our_own_pages_start_a_stream() {
        let mut headers = HeaderMap::new();
        assert!(from_our_page(&headers), "an old browser that says nothing");
        headers.insert("sec-fetch-site", HeaderValue::from_static("same-origin"));
        assert!(from_our_page(&headers));
        for other in ["cross-site", "same-site", "none"] {
            headers.insert("sec-fetch-site", HeaderValue::from_static(other));
            assert!(!from_our_page(&headers), "{other}");
        }
    }
}
