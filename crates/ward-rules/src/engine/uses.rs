//! Rules on uses of grants: `use-outside-window`, `off-hours` (of uses), and the last use that
//! `excessive-duration` counts from.

use ward_core::audit::AuditEvent;
use ward_core::audit::payload::AccessUsed;

use super::*;

/// When a use happened, as far as its event says: a first use and a log read at the event's
/// time; a summary's uses between its first and last; the end of a followed tail says when it
/// ended, not when its lines were read (each was sent while the grant allowed it), so it is no
/// use of its own.
pub(crate) fn use_times(event: &AuditEvent, used: &AccessUsed) -> [Option<i64>; 2] {
    match used {
        AccessUsed::FirstUse(_) | AccessUsed::Search(_) | AccessUsed::Tail(_) => {
            [Some(event.occurred_at.as_millisecond()), None]
        }
        AccessUsed::Summary(summary) => {
            [Some(summary.first_at.as_millisecond()), Some(summary.last_at.as_millisecond())]
        }
        AccessUsed::Follow(_) => [None, None],
    }
}

impl Engine {
    pub(super) fn access_used(&mut self, event: &AuditEvent, used: &AccessUsed, out: &mut Vec<Finding>) {
        let Some(grant_id) = event.grant_id.as_deref() else { return };
        let times = use_times(event, used);
        let Some(track) = self.grants.get_mut(grant_id) else { return };
        let mut outside = Vec::new();
        for at in times.into_iter().flatten() {
            if track.last_use.is_none_or(|(last, _)| at >= last) {
                track.last_use = Some((at, event.seq));
            }
            if !track.allows_use_at(at) {
                outside.push(at);
            }
        }
        let off_hours = !track.breakglass && self.on(RuleId::OffHours);
        self.arm_idle(grant_id);
        let off = if off_hours { times.into_iter().flatten().find(|&at| self.off_hours(at)) } else { None };
        if outside.is_empty() && off.is_none() {
            // Most uses: nothing to say, nothing copied.
            return;
        }
        let Some(track) = self.grants.get(grant_id) else { return };
        let (principal, resource, role) =
            (track.principal.clone(), track.resource.clone(), track.role.clone());
        let (request_id, starts_at, end) = (track.request_id.clone(), track.starts_at, track.end());

        if let Some(&at) = outside.first() {
            let found = Found {
                rule: RuleId::UseOutsideWindow,
                key: format!("use-outside-window/{grant_id}"),
                subject: Some(principal.clone()),
                resource: Some(resource.clone()),
                grant_id: Some(grant_id.to_owned()),
                request_id: request_id.clone(),
                seqs: vec![event.seq],
                summary: format!(
                    "{principal} used grant {grant_id} ({role} on {resource}) at {}, outside its window {} – {}",
                    when(at),
                    when(starts_at),
                    when(end)
                ),
                at,
            };
            self.emit(found, out);
        }

        if let Some(at) = off {
            let about = request_id.as_deref().unwrap_or(grant_id);
            let found = Found {
                rule: RuleId::OffHours,
                key: format!("off-hours/{about}"),
                subject: Some(principal.clone()),
                resource: Some(resource.clone()),
                grant_id: Some(grant_id.to_owned()),
                request_id,
                seqs: vec![event.seq],
                summary: format!(
                    "{principal} used {role} on {resource} outside business hours, at {}",
                    when(at)
                ),
                at,
            };
            self.emit(found, out);
        }
    }
}
