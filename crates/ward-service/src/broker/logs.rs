//! The debug-log gateway: reading a resource's logs through an active grant, redacted unless
//! the grant is `read-unmasked` and raw text is asked for. Every read is an `access.used` event;
//! a read without a grant is refused and recorded.

use std::time::Duration;

use jiff::SignedDuration;

use crate::index::Slot;
use ward_logs::{Line, Masking, Query, Summary};

use super::*;

/// Lines a search returns when it names no limit.
pub const DEFAULT_LOG_LIMIT: usize = 1000;
/// How often a followed log is polled for new lines.
const FOLLOW_POLL: Duration = Duration::from_millis(500);
/// The most bytes one poll of a followed log reads.
const FOLLOW_READ_BYTES: usize = 4 << 20;
/// The longest search pattern accepted (compiled size, bytes): patterns are linear-time regexes.
const PATTERN_SIZE_LIMIT: usize = 1 << 20;

/// What a reader asks of a resource's logs.
#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    pub pattern: Option<String>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    pub limit: Option<usize>,
    /// Raw text: needs an active `read-unmasked` grant.
    pub unmasked: bool,
}

/// A search's answer.
#[derive(Debug, Clone)]
pub struct LogResult {
    pub grant_id: GrantId,
    pub lines: Vec<Line>,
    pub summary: Summary,
    /// The search deadline stopped it: `lines` are what it found until then.
    pub timed_out: bool,
}

/// One item of a tail.
#[derive(Debug, Clone)]
pub enum LogItem {
    Line(Line),
    /// After the last lines, before the followed ones.
    Summary {
        grant_id: GrantId,
        summary: Summary,
    },
    /// The stream ends, and why (expiry, release, revocation).
    End(String),
}

/// The grant a read goes through, and how its lines leave ward.
struct Reading {
    grant_id: GrantId,
    expires_at: Timestamp,
    /// The grant's slot, through which the read counts as a use (its idle timeout).
    slot: Slot,
    role: &'static str,
    /// The grant's resource and role: the resource read, or a debug-level resource whose
    /// output goes to it.
    granted: String,
    granted_role: String,
    source: ward_logs::Source,
    rules: Arc<ward_redact::RuleSet>,
    /// Under the grant's own key.
    pseudonyms: Arc<ward_redact::Pseudonyms>,
    /// Raw text (a `read-unmasked` grant, asked for).
    raw: bool,
}

impl Broker {
    pub fn set_gateway(&self, gateway: crate::gateway::Gateway) {
        let _ = self.gateway.set(gateway);
    }

    /// Checks the caller may read `resource`'s logs now, or records the refusal.
    async fn reading(
        &self,
        caller: &Caller,
        resource: &str,
        unmasked: bool,
        action: &str,
    ) -> Result<Reading, BrokerError> {
        let role = if unmasked { "read-unmasked" } else { "read" };
        self.ensure_fresh().await?;
        let policy = self.policy();
        let now = self.now();
        // A grant that raised the level of a service whose output goes here reads it (masked)
        // for its window, whether or not the holder may ask to read these logs themselves.
        let through_debug =
            if unmasked { None } else { self.debug_grant_reading(&caller.name, resource, now) };
        if through_debug.is_none() {
            policy.check_names(&caller.name, resource, role).map_err(BrokerError::Refused)?;
        }
        let Some((gateway, source)) = self.gateway.get().and_then(|g| g.source(resource).map(|s| (g, s)))
        else {
            return Err(BrokerError::NotFound(format!("`{resource}` has no log sources configured")));
        };
        let usable = match self.usable_slot(&caller.name, resource, role, now).await {
            Some(slot) => Some((slot, resource.to_owned(), role.to_owned())),
            None => through_debug,
        };
        let refusal = match usable {
            None => format!(
                "{} holds no active grant for `{role}` on `{resource}`; ask for one with `ward request {resource} --role {role} …`",
                caller.name
            ),
            Some((slot, granted, granted_role)) => {
                match policy.permits_access(&caller.name, &granted, &granted_role, true) {
                    // The grant's first use is on record, as for a check.
                    Ok(()) if !slot.used && !self.first_use(caller, &slot.id, now, "logs").await?.allowed => {
                        format!("grant {} is no longer active", slot.id)
                    }
                    Ok(()) => {
                        self.note_use(&slot, now).await;
                        return Ok(Reading {
                            pseudonyms: Arc::new(gateway.pseudonyms(&slot.id)),
                            grant_id: slot.id.clone(),
                            expires_at: slot.expires_at,
                            slot,
                            role,
                            granted,
                            granted_role,
                            source: source.clone(),
                            rules: gateway.rules().map_err(|e| {
                                BrokerError::Unavailable(format!(
                                    "the redaction rules do not load, so no log is read: {e}"
                                ))
                            })?,
                            raw: unmasked,
                        });
                    }
                    Err(by) => format!("forbidden by policy {}", by.join(", ")),
                }
            }
        };
        self.record_refusal(caller, action, Some(resource), None, &refusal).await;
        Err(BrokerError::Forbidden(refusal))
    }

    /// `principal`'s usable grant on a debug-level resource whose output goes to the `logs`
    /// resource `logs`: the grant, its resource and its role.
    fn debug_grant_reading(
        &self,
        principal: &str,
        logs: &str,
        now: Timestamp,
    ) -> Option<(Slot, String, String)> {
        let policy = self.policy();
        let directory = policy.directory();
        self.settings().debug_logs.iter().filter(|(_, to)| to.as_str() == logs).find_map(|(debug, _)| {
            directory.resource(debug)?.roles.iter().find_map(|role| {
                let slot = self.index.usable(principal, debug, role, now)?;
                Some((slot, debug.clone(), role.clone()))
            })
        })
    }

    fn compile_query(&self, query: &LogQuery) -> Result<Query, BrokerError> {
        let limit = query.limit.unwrap_or(DEFAULT_LOG_LIMIT);
        if !(1..=ward_logs::MAX_LIMIT).contains(&limit) {
            return Err(BrokerError::Invalid(format!(
                "the limit must be from 1 to {}",
                ward_logs::MAX_LIMIT
            )));
        }
        if let (Some(since), Some(until)) = (query.since, query.until)
            && since >= until
        {
            return Err(BrokerError::Unacceptable(format!("--since {since} is not before --until {until}")));
        }
        let pattern = match &query.pattern {
            None => None,
            Some(text) => {
                validate_text("the pattern", text, true)?;
                Some(regex::bytes::RegexBuilder::new(text).size_limit(PATTERN_SIZE_LIMIT).build().map_err(
                    |e| BrokerError::Unacceptable(format!("the pattern is not a valid regex: {e}")),
                )?)
            }
        };
        Ok(Query { pattern, since: query.since, until: query.until, limit })
    }

    /// A search pattern as the audit log records it: redacted (raw reads too: someone may have
    /// typed a secret into it), with pseudonyms under the audit log's own key, so that its
    /// author cannot match them with those of the lines.
    fn pattern_on_record(&self, reading: &Reading, pattern: &str) -> String {
        let Some(gateway) = self.gateway.get() else { return String::new() };
        let mut out = Vec::new();
        reading.rules.redact(pattern.as_bytes(), gateway.on_record(), &mut out, &mut Default::default());
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Records a read as `access.used`; without the record there is no read (503).
    async fn record_read(
        &self,
        caller: &Caller,
        resource: &str,
        reading: &Reading,
        read: AccessUsed,
    ) -> Result<(), BrokerError> {
        let event = NewEvent {
            subject: Some(caller.name.clone()),
            resource: Some(resource.to_owned()),
            grant_id: Some(reading.grant_id.to_string()),
            ..NewEvent::new(RandomIds.event_id(), self.now(), &caller.name, Payload::AccessUsed(read))
        };
        self.commit(Change { events: vec![event], ..Change::default() }).await?;
        Ok(())
    }

    /// The gateway's limit on reads running at once: a slot for this read, or 429.
    fn read_slot(
        &self,
        caller: &Caller,
        follow: bool,
    ) -> Result<Option<crate::read_limits::Slot>, BrokerError> {
        let Some(gateway) = self.gateway.get() else { return Ok(None) };
        let slot =
            if follow { gateway.limits().follow(&caller.name) } else { gateway.limits().read(&caller.name) };
        slot.map(Some).map_err(|busy| {
            metrics::counter!("ward_log_reads_refused_total", "reason" => "busy").increment(1);
            BrokerError::from(busy)
        })
    }

    fn push_slot(&self, caller: &Caller) -> Result<Option<crate::read_limits::Slot>, BrokerError> {
        let Some(gateway) = self.gateway.get() else { return Ok(None) };
        gateway.limits().push(&caller.name).map(Some).map_err(|busy| {
            metrics::counter!("ward_log_pushes_refused_total", "reason" => "busy").increment(1);
            BrokerError::from(busy)
        })
    }

    /// Searches a resource's logs through the caller's active grant. Stops at the grant's
    /// expiry (a grant that ends while the search runs returns nothing) and at the search
    /// deadline (what was found so far is returned, marked), matching lines or not; stops too
    /// when the caller goes away.
    pub async fn search_logs(
        &self,
        caller: &Caller,
        resource: &str,
        query: LogQuery,
    ) -> Result<LogResult, BrokerError> {
        let _slot = self.read_slot(caller, false)?;
        let reading = self.reading(caller, resource, query.unmasked, "logs.search").await?;
        let compiled = match self.compile_query(&query) {
            Ok(compiled) => compiled,
            Err(error) => {
                // Not the error's text: it quotes the pattern, which may hold what it looks for.
                let why = "the search was not valid (a pattern, time range or limit)";
                self.record_refusal(caller, "logs.search", Some(resource), None, why).await;
                return Err(error);
            }
        };
        let (source, limit) = (reading.source.clone(), self.read_limit(&reading));
        let (rules, pseudonyms, raw) = (reading.rules.clone(), reading.pseudonyms.clone(), reading.raw);
        // Dropped with this future (the caller went away, the request timed out): the search
        // stops rather than run on for no one.
        let abandoned = Abandoned::default();
        let gone = abandoned.flag();
        let searched = tokio::task::spawn_blocking(move || {
            let mut lines = Vec::new();
            let masking = if raw {
                Masking::Raw
            } else {
                Masking::Redacted { rules: &rules, replace: pseudonyms.as_ref() }
            };
            let stop = std::cell::Cell::new(None);
            let keep_going = || limit.keep_going(&gone, &stop);
            let summary = ward_logs::search(&source, &compiled, &masking, &keep_going, &mut |line| {
                lines.push(line);
                true
            });
            summary.map(|s| (lines, s, stop.get()))
        })
        .await
        .map_err(|e| BrokerError::Unavailable(format!("the log search failed: {e}")))?;
        drop(abandoned);
        let (lines, summary, stop) = searched.map_err(|e| BrokerError::Unavailable(e.to_string()))?;
        if stop == Some(Stop::GrantEnded) || !self.still_reading(&caller.name, &reading) {
            let why = format!("grant {} ended while the logs were read", reading.grant_id);
            self.record_refusal(caller, "logs.search", Some(resource), None, &why).await;
            return Err(BrokerError::Forbidden(why));
        }
        let timed_out = stop == Some(Stop::Deadline);
        let search = payload::LogSearch {
            action: AccessUsed::SEARCH.into(),
            role: reading.role.to_owned(),
            pattern: query.pattern.as_deref().map(|p| self.pattern_on_record(&reading, p)),
            since: query.since,
            until: query.until,
            lines: summary.lines,
            bytes: summary.bytes,
            truncated: summary.truncated,
            timed_out: Some(timed_out),
            files: summary.files as u64,
            scanned: Some(summary.scanned),
            redactions: summary.redactions.clone(),
        };
        self.record_read(caller, resource, &reading, AccessUsed::Search(search)).await?;
        metrics::counter!("ward_log_reads_total", "action" => "search").increment(1);
        Ok(LogResult { grant_id: reading.grant_id, lines, summary, timed_out })
    }

    /// The last `lines` lines of a resource's logs (read from the end of its newest files), a
    /// summary, and, with `follow`, every line written after them until the grant ends
    /// (expiry, release, revocation: the last item says which).
    pub async fn tail_logs(
        self: &Arc<Self>,
        caller: &Caller,
        resource: &str,
        lines: usize,
        follow: bool,
        unmasked: bool,
    ) -> Result<tokio::sync::mpsc::Receiver<LogItem>, BrokerError> {
        if !(1..=ward_logs::MAX_LIMIT).contains(&lines) {
            return Err(BrokerError::Invalid(format!("--lines must be from 1 to {}", ward_logs::MAX_LIMIT)));
        }
        let slot = self.read_slot(caller, follow)?;
        let reading = self.reading(caller, resource, unmasked, "logs.tail").await?;
        // As a search: the tail stops at the grant's end, at the search deadline (a large
        // compressed file is read whole) and when the caller goes away.
        let abandoned = Abandoned::default();
        let tailed = tokio::task::spawn_blocking({
            let (rules, pseudonyms, raw) = (reading.rules.clone(), reading.pseudonyms.clone(), reading.raw);
            let (source, limit, gone) = (reading.source.clone(), self.read_limit(&reading), abandoned.flag());
            move || {
                let masking = if raw {
                    Masking::Raw
                } else {
                    Masking::Redacted { rules: &rules, replace: pseudonyms.as_ref() }
                };
                let stop = std::cell::Cell::new(None);
                let keep_going = || limit.keep_going(&gone, &stop);
                ward_logs::tail_until(&source, lines, &masking, &keep_going).map(|tail| (tail, stop.get()))
            }
        })
        .await
        .map_err(|e| BrokerError::Unavailable(format!("reading the logs failed: {e}")))?
        .map_err(|e| BrokerError::Unavailable(e.to_string()))?;
        drop(abandoned);
        let (ward_logs::Tail { lines, summary, follow: start }, stop) = tailed;
        if stop == Some(Stop::GrantEnded) || !self.still_reading(&caller.name, &reading) {
            let why = format!("grant {} ended while the logs were read", reading.grant_id);
            self.record_refusal(caller, "logs.tail", Some(resource), None, &why).await;
            return Err(BrokerError::Forbidden(why));
        }
        let tail = payload::LogTail {
            action: AccessUsed::TAIL.into(),
            role: reading.role.to_owned(),
            follow,
            lines: summary.lines,
            bytes: summary.bytes,
            truncated: Some(summary.truncated),
            timed_out: Some(stop == Some(Stop::Deadline)),
            files: Some(summary.files as u64),
            scanned: Some(summary.scanned),
            redactions: Some(summary.redactions.clone()),
        };
        self.record_read(caller, resource, &reading, AccessUsed::Tail(tail)).await?;
        metrics::counter!("ward_log_reads_total", "action" => "tail").increment(1);
        // A tail that is not followed has done its reading.
        let slot = if follow { slot } else { None };

        let (sender, receiver) = tokio::sync::mpsc::channel(256);
        let broker = self.clone();
        let caller = caller.clone();
        let resource = resource.to_owned();
        tokio::spawn(async move {
            let _slot = slot;
            let summary = LogItem::Summary { grant_id: reading.grant_id.clone(), summary };
            for item in lines.into_iter().map(LogItem::Line).chain(std::iter::once(summary)) {
                if sender.send(item).await.is_err() {
                    return;
                }
            }
            if follow {
                broker.follow(&caller, &resource, &reading, start, &sender).await;
            }
        });
        Ok(receiver)
    }

    /// Whether `reading`'s own grant still gives access now.
    fn still_reading(&self, principal: &str, reading: &Reading) -> bool {
        self.reading_ended(principal, reading).is_none()
    }

    /// Why `reading`'s grant no longer gives access, if it does not.
    fn reading_ended(&self, principal: &str, reading: &Reading) -> Option<String> {
        let now = self.now();
        if now >= reading.expires_at {
            return Some(format!("grant {} expired at {}", reading.grant_id, reading.expires_at));
        }
        let live = self
            .index
            .usable(principal, &reading.granted, &reading.granted_role, now)
            .is_some_and(|s| s.id == reading.grant_id);
        (!live).then(|| format!("grant {} ended (released or revoked)", reading.grant_id))
    }

    /// Why the caller may no longer read through `reading`, if they may not: everything the
    /// read was first allowed on, checked again, since a followed tail outlives its request.
    /// The grant (expiry, release, revocation), the user (still in the directory), the policy
    /// in force (a forbid loaded since), and the API token the request came with (revoked or
    /// expired since; a token that cannot be checked ends the read: fail closed). All but the
    /// token are in memory; the token costs one read of the store's token epoch, shared by the
    /// reads that wait on it, and of the token itself only when the epoch moved.
    async fn access_ended(&self, caller: &Caller, reading: &Reading) -> Option<String> {
        // Fail closed: a store that cannot say what other processes did ends the read.
        if let Err(error) = self.ensure_fresh().await {
            return Some(error.to_string());
        }
        if let Some(ended) = self.reading_ended(&caller.name, reading) {
            return Some(ended);
        }
        let policy = self.policy();
        let (granted, role) = (&reading.granted, &reading.granted_role);
        if let Err(refusal) = policy.check_names(&caller.name, granted, role) {
            return Some(format!("no longer allowed: {refusal}"));
        }
        if let Err(by) = policy.permits_access(&caller.name, granted, role, true) {
            return Some(format!("forbidden by policy {}", by.join(", ")));
        }
        let token = caller.token.as_ref()?;
        match self.tokens().still_valid(token, &caller.name).await {
            Ok(()) => None,
            Err(BrokerError::Unauthenticated(why)) => Some(why),
            Err(error) => Some(format!("the token {} could not be checked: {error}", token.id)),
        }
    }

    /// Sends the lines appended to the resource's files (a file rotated away read to its end,
    /// a new one from its start) until the access ends (see [`Self::access_ended`]) or the
    /// reader goes; records what was sent and why it ended either way. Files are read and
    /// redacted off the async runtime; each poll's lines go out only after a check that began
    /// after they were read.
    async fn follow(
        &self,
        caller: &Caller,
        resource: &str,
        reading: &Reading,
        follow: ward_logs::Follow,
        sender: &tokio::sync::mpsc::Sender<LogItem>,
    ) {
        let mut follow = Some(follow);
        let mut counts = ward_redact::Counts::default();
        let (mut sent_lines, mut sent_bytes) = (0u64, 0u64);
        let mut stopping = self.stopping.subscribe();
        let end = 'following: loop {
            if *stopping.borrow_and_update() {
                break "ward is shutting down".to_owned();
            }
            let Some(mut following) = follow.take() else { break "reading the logs failed".to_owned() };
            let (rules, pseudonyms, raw) = (reading.rules.clone(), reading.pseudonyms.clone(), reading.raw);
            let polled = tokio::task::spawn_blocking(move || {
                let polled = following.poll(FOLLOW_READ_BYTES, stream_key_limit());
                let redacted = redact_appended(polled, &rules, pseudonyms.as_ref(), raw);
                (following, redacted)
            })
            .await;
            let Ok((following, polled)) = polled else {
                tracing::error!(resource, "reading a followed log failed");
                break "reading the logs failed".to_owned();
            };
            follow = Some(following);
            counts.merge(&polled.counts);
            for (file, error) in &polled.failed {
                tracing::warn!(%error, resource, file, "cannot read a followed log; no longer following it");
            }
            if let Some(ended) = self.access_ended(caller, reading).await {
                break ended;
            }
            // Following is using the grant, new lines or not.
            self.note_use(&reading.slot, self.now()).await;
            for line in polled.lines {
                let bytes = line.text.len() as u64 + 1;
                // Nothing goes out after the grant's end, however slow the reader; a reader that
                // does not keep up is checked against the grant again, and loses no line.
                let permit = loop {
                    if let Some(ended) = self.reading_ended(&caller.name, reading) {
                        break 'following ended;
                    }
                    match tokio::time::timeout(FOLLOW_POLL * 4, sender.reserve()).await {
                        Ok(Ok(permit)) => break permit,
                        Ok(Err(_)) => break 'following "the reader went away".to_owned(),
                        // A slow reader: everything is checked again before it gets more.
                        Err(_) => {
                            if let Some(ended) = self.access_ended(caller, reading).await {
                                break 'following ended;
                            }
                        }
                    }
                };
                permit.send(LogItem::Line(line));
                sent_lines += 1;
                sent_bytes += bytes;
            }
            tokio::select! {
                () = tokio::time::sleep(FOLLOW_POLL) => {}
                () = sender.closed() => break "the reader went away".to_owned(),
                _ = stopping.changed() => {}
            }
        };
        let follow = payload::LogFollow {
            action: AccessUsed::FOLLOW.into(),
            lines: sent_lines,
            bytes: sent_bytes,
            ended: end.clone(),
            redactions: Some(reading.rules.summary(&counts)),
        };
        if let Err(error) = self.record_read(caller, resource, reading, AccessUsed::Follow(follow)).await {
            tracing::error!(%error, "could not record the end of a followed log");
        }
        let _ = sender.send(LogItem::End(end)).await;
    }

    /// Stores a batch of logs pushed for `resource` (services and admins): JSON lines, or an
    /// OTLP logs request in JSON or protobuf, as sent or gzipped. The batch is checked whole
    /// first: a bad line refuses all of it.
    /// Returns the lines stored.
    pub async fn push_logs(
        &self,
        caller: &Caller,
        resource: &str,
        body: Vec<u8>,
        (format, encoding): (ward_logs::push::Format, ward_logs::push::Encoding),
    ) -> Result<usize, BrokerError> {
        if !(caller.service || caller.admin) {
            let why = format!("{} may not push logs: only services and admins can", caller.name);
            self.record_refusal(caller, "logs.push", Some(resource), None, &why).await;
            return Err(BrokerError::Forbidden(why));
        }
        let Some((dir, push)) = self.gateway.get().and_then(|g| g.push_target(resource)) else {
            return Err(BrokerError::NotFound(format!(
                "`{resource}` does not take pushed logs (set `push = true` on it)"
            )));
        };
        if !caller.admin && push.from.as_ref().is_some_and(|from| !from.contains(&caller.name)) {
            let why =
                format!("{} may not push logs to {resource}: its `push_from` does not name it", caller.name);
            self.record_refusal(caller, "logs.push", Some(resource), None, &why).await;
            return Err(BrokerError::Forbidden(why));
        }
        let (keep_days, quota) = (push.retention_days, push.quota_bytes);
        let (dir, resource_name, now) = (dir.to_owned(), resource.to_owned(), self.now());
        // Held until the batch is stored or refused: conversions at once are bounded, and with
        // them the memory they take.
        let _slot = self.push_slot(caller)?;
        // Converting and storing read and write megabytes: off the async runtime. Expired days
        // go first, so that they make room. Two pushes side by side may both pass the quota
        // check: it is exceeded by at most the batches in flight.
        let stored = tokio::task::spawn_blocking(move || {
            let lines = encoding
                .decode(body, ward_logs::push::MAX_BATCH_BYTES)
                .and_then(|body| format.lines(&body, ward_logs::push::Bounds::default()));
            let lines = match lines {
                Ok(lines) => lines,
                Err(refused) => return Ok(Pushed::Refused(refused)),
            };
            if let Err(error) = ward_logs::push::expire(&dir, &resource_name, keep_days, now) {
                tracing::warn!(%error, resource = resource_name, "cannot remove expired pushed logs");
            }
            let held = ward_logs::push::stored_bytes(&dir, &resource_name)?;
            if held.saturating_add(lines.len() as u64) > quota {
                return Ok(Pushed::Full(held));
            }
            ward_logs::push::append(&dir, &resource_name, &lines, now)?;
            Ok::<_, std::io::Error>(Pushed::Stored(lines.iter().filter(|&&b| b == b'\n').count()))
        })
        .await
        .map_err(|e| BrokerError::Unavailable(e.to_string()))?
        .map_err(|e| BrokerError::Unavailable(format!("cannot store the pushed logs: {e}")))?;
        let count = match stored {
            Pushed::Stored(count) => count,
            Pushed::Refused(refused) if refused.is_too_large() => {
                let why = format!("nothing was stored: {refused}");
                self.record_refusal(caller, "logs.push", Some(resource), None, &why).await;
                metrics::counter!("ward_log_pushes_refused_total", "reason" => "too_large").increment(1);
                return Err(BrokerError::TooLarge(why));
            }
            Pushed::Refused(refused) => return Err(BrokerError::Invalid(refused.to_string())),
            Pushed::Full(held) => {
                let why = format!(
                    "{resource} keeps {held} bytes of pushed logs and its push_quota is {quota}: nothing was \
                     stored; pushes are taken again as old days expire (retention {keep_days}d)"
                );
                self.record_refusal(caller, "logs.push", Some(resource), None, &why).await;
                metrics::counter!("ward_log_pushes_refused_total", "reason" => "quota").increment(1);
                return Err(BrokerError::Full(why));
            }
        };
        metrics::counter!("ward_log_lines_pushed_total").increment(count as u64);
        Ok(count)
    }
}

/// What became of a pushed batch.
enum Pushed {
    /// Stored: this many lines.
    Stored(usize),
    /// Not a valid batch, or one past the conversion's bounds.
    Refused(ward_logs::push::PushError),
    /// Past the resource's quota, which holds this many bytes.
    Full(u64),
}

/// Why a search stopped before its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    GrantEnded,
    Deadline,
    Abandoned,
}

/// Where a search or a tail stops: the grant's end and the search deadline, on ward's clock.
struct ReadLimit {
    clock: Arc<dyn Clock>,
    expires_at: Timestamp,
    deadline: Timestamp,
}

impl ReadLimit {
    /// Whether the read goes on; notes in `stop` why not.
    fn keep_going(&self, gone: &std::sync::atomic::AtomicBool, stop: &std::cell::Cell<Option<Stop>>) -> bool {
        let now = self.clock.now();
        // Nothing outlives the window: a long read stops at the grant's end.
        let why = if now >= self.expires_at {
            Some(Stop::GrantEnded)
        } else if now >= self.deadline {
            Some(Stop::Deadline)
        } else if gone.load(std::sync::atomic::Ordering::Relaxed) {
            Some(Stop::Abandoned)
        } else {
            None
        };
        stop.set(why);
        why.is_none()
    }
}

impl Broker {
    /// Where a read through `reading` starting now stops.
    fn read_limit(&self, reading: &Reading) -> ReadLimit {
        let timeout = self.gateway.get().map_or(Duration::ZERO, crate::gateway::Gateway::search_timeout);
        let deadline = self.now() + SignedDuration::try_from(timeout).unwrap_or(SignedDuration::ZERO);
        ReadLimit { clock: self.clock.clone(), expires_at: reading.expires_at, deadline }
    }
}

/// Raised when dropped: a search running off the runtime sees that no one awaits it any more.
#[derive(Default)]
struct Abandoned(Arc<std::sync::atomic::AtomicBool>);

impl Abandoned {
    fn flag(&self) -> Arc<std::sync::atomic::AtomicBool> {
        self.0.clone()
    }
}

impl Drop for Abandoned {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// One poll of a followed log, redacted.
struct PolledLines {
    lines: Vec<Line>,
    counts: ward_redact::Counts,
    failed: Vec<(String, std::io::Error)>,
}

/// The lines of a poll as the reader may see them.
fn redact_appended(
    polled: ward_logs::Polled,
    rules: &ward_redact::RuleSet,
    pseudonyms: &ward_redact::Pseudonyms,
    raw: bool,
) -> PolledLines {
    let mut counts = ward_redact::Counts::default();
    let mut lines = Vec::new();
    for appended in polled.appended {
        let mut out = if raw {
            appended.lines
        } else {
            // After the file's lines handed out before: a match may begin in them.
            let mut out = Vec::with_capacity(appended.lines.len());
            let text = [&appended.context[..], &appended.lines[..]].concat();
            rules.redact_after(&text, appended.context.len(), pseudonyms, &mut out, &mut counts);
            out
        };
        if appended.withheld {
            ward_redact::Replace::replace(pseudonyms, "private-key", b"withheld", &mut out);
            out.push(b'\n');
        }
        for text in out.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            lines.push(Line {
                source: appended.source.clone(),
                time: ward_logs::line_time(text),
                text: String::from_utf8_lossy(text).into_owned(),
            });
        }
    }
    PolledLines { lines, counts, failed: polled.failed }
}

/// How big an unfinished private key block may grow before it is withheld whole.
fn stream_key_limit() -> usize {
    ward_redact::stream::Limits::default().max_line_bytes
}
