//! What the rest of ward records about browser sessions (the `ward-session` crate keeps them):
//! the event of one starting or ending, so that a session ended by a directory push reads like
//! one ended by its person.

use jiff::Timestamp;
use ward_core::audit::NewEvent;
use ward_core::audit::payload::{Payload, SessionRecorded};
use ward_core::lifecycle::IdSource;
use ward_store::WebSession;

use crate::ids::RandomIds;

/// Why a session ended, as `session.ended` says.
pub const ENDED_SIGNED_OUT: &str = "signed-out";
pub const ENDED_DEACTIVATED: &str = "deactivated";

/// `session.started` (`ended_because` none) or `session.ended`, by `actor`, about the session's
/// person.
pub fn session_event(
    actor: &str,
    session: &WebSession,
    ended_because: Option<&str>,
    now: Timestamp,
) -> NewEvent {
    let recorded = SessionRecorded {
        session_id: session.id.clone(),
        source: session.source.clone(),
        mfa: session.mfa,
        expires_at: session.expires_at,
        ended_because: ended_because.map(str::to_owned),
    };
    let payload = match ended_because {
        None => Payload::SessionStarted(recorded),
        Some(_) => Payload::SessionEnded(recorded),
    };
    NewEvent {
        subject: Some(session.principal.clone()),
        ..NewEvent::new(RandomIds.event_id(), now, actor, payload)
    }
}
