//! Readable tables for people; `-o json` prints the API's JSON unchanged.

use jiff::Timestamp;
use std::io::Write;
use ward_api::{
    CheckResult, CredentialsView, EventView, FindingView, GrantView, RequestView, RuleView, TokenView,
};
use ward_core::duration::format_duration;

/// Prints rows as left-aligned columns under a header.
pub fn table(header: &[&str], rows: Vec<Vec<String>>) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> =
            cells.iter().enumerate().map(|(i, c)| format!("{c:<w$}", w = widths[i])).collect();
        say!("{}", padded.join("  ").trim_end());
    };
    line(header.iter().map(|h| h.to_string()).collect());
    for row in rows {
        line(row);
    }
}

fn when(at: Timestamp) -> String {
    at.strftime("%Y-%m-%d %H:%M:%S").to_string()
}

/// "in 29m", "3m ago".
pub fn relative(at: Timestamp, now: Timestamp) -> String {
    let seconds = at.as_second() - now.as_second();
    let span = format_duration(seconds.unsigned_abs());
    if seconds >= 0 { format!("in {span}") } else { format!("{span} ago") }
}

fn or_dash(value: Option<&str>) -> String {
    value.unwrap_or("-").to_owned()
}

pub fn requests(list: &[RequestView]) {
    let rows = list
        .iter()
        .map(|r| {
            let approvals = r.approvals.iter().filter(|a| a.decision == "approve").count();
            vec![
                r.id.clone(),
                r.state.clone(),
                r.requester.clone(),
                r.resource.clone(),
                r.role.clone(),
                format_duration(r.duration_seconds),
                format!("{approvals}/{}", r.approvals_required),
                when(r.created_at),
                r.reason.clone(),
            ]
        })
        .collect();
    table(
        &["ID", "STATE", "REQUESTER", "RESOURCE", "ROLE", "FOR", "APPROVALS", "CREATED (UTC)", "REASON"],
        rows,
    );
}

pub fn request(r: &RequestView) {
    say!("request   {}", r.id);
    say!("state     {}", r.state);
    say!("requester {}", r.requester);
    say!("resource  {} (role {})", r.resource, r.role);
    say!("for       {}", format_duration(r.duration_seconds));
    say!("reason    {}", r.reason);
    say!("ticket    {}", or_dash(r.ticket.as_deref()));
    if let Some(start) = r.start_at {
        say!("starts    {}", start);
    }
    say!("created   {}", r.created_at);
    if let Some(grant) = &r.extends_grant {
        say!("extends   {grant}");
    }
    if r.breakglass {
        say!("break-glass: granted at once; an approver must review it");
    }
    let approved = r.approvals.iter().filter(|a| a.decision == "approve").count();
    if !r.breakglass {
        say!("approvals {approved} of {} needed", r.approvals_required);
    }
    for stage in &r.stages {
        let missing = r.stages_unmet.iter().find(|s| s.name == stage.name).map_or(0, |s| s.approvals);
        say!("  stage   {}: {} of {} met", stage.name, stage.approvals - missing, stage.approvals);
    }
    for a in &r.approvals {
        say!(
            "          {} {} at {}{}{}",
            a.approver,
            a.decision,
            a.at,
            if a.stages.is_empty() { String::new() } else { format!(" (stage {})", a.stages.join(", ")) },
            a.comment.as_ref().map(|c| format!(": {c}")).unwrap_or_default()
        );
    }
    match (&r.grant_id, r.state.as_str()) {
        (Some(grant), _) => say!("grant     {grant}"),
        (None, "pending") => say!("lapses    {}", r.lapses_at),
        _ => {}
    }
}

pub fn grants(list: &[GrantView], now: Timestamp) {
    let rows = list
        .iter()
        .map(|g| {
            let mut ends = match (g.ended_at, g.idle_at) {
                (Some(ended), _) if g.end_reason.as_deref() == Some("idle") => {
                    format!("ended idle {}", relative(ended, now))
                }
                (Some(ended), _) => format!("ended {}", relative(ended, now)),
                (None, Some(idle)) if idle < g.expires_at => {
                    format!("idle {} unless used", relative(idle, now))
                }
                (None, _) => format!("expires {}", relative(g.expires_at, now)),
            };
            if let Some(review) = &g.review {
                ends.push_str(&format!("; break-glass review {}", review.state));
            }
            if let Some(effect) =
                g.effect.as_deref().filter(|e| matches!(*e, "pending" | "failing" | "removing"))
            {
                ends.push_str(&format!("; access {effect}"));
            }
            vec![
                g.id.clone(),
                g.state.clone(),
                g.principal.clone(),
                g.resource.clone(),
                g.role.clone(),
                when(g.starts_at),
                when(g.expires_at),
                ends,
            ]
        })
        .collect();
    table(&["ID", "STATE", "PRINCIPAL", "RESOURCE", "ROLE", "STARTS (UTC)", "EXPIRES (UTC)", ""], rows);
}

pub fn tokens(list: &[TokenView]) {
    let rows = list
        .iter()
        .map(|t| {
            vec![
                t.id.clone(),
                t.user.clone(),
                t.state.clone(),
                when(t.created_at),
                when(t.expires_at),
                t.last_used_at.map(when).unwrap_or_else(|| "never".into()),
                t.scopes.join(","),
            ]
        })
        .collect();
    table(&["ID", "USER", "STATE", "CREATED (UTC)", "EXPIRES (UTC)", "LAST USED (UTC)", "SCOPES"], rows);
}

pub fn grant(g: &GrantView, now: Timestamp) {
    say!("grant     {}", g.id);
    say!("state     {}", g.state);
    say!("principal {}", g.principal);
    say!("resource  {} (role {})", g.resource, g.role);
    say!("request   {}", g.request_id);
    say!("starts    {}", g.starts_at);
    say!("expires   {} ({})", g.expires_at, relative(g.expires_at, now));
    if let Some(effect) = &g.effect {
        say!("access    {effect} (made and taken away by ward in the system the resource names)");
    }
    if let Some(timeout) = g.idle_timeout_seconds {
        let last = g.last_used_at.map_or_else(|| "never used".to_owned(), |at| format!("last used {at}"));
        match g.idle_at {
            Some(idle) => say!(
                "idle      after {} unused; {last}; ends {idle} ({}) unless used",
                format_duration(timeout),
                relative(idle, now)
            ),
            None => say!("idle      after {} unused; {last}", format_duration(timeout)),
        }
    }
    if let Some(ended) = g.ended_at {
        say!(
            "ended     {} by {}{}",
            ended,
            or_dash(g.ended_by.as_deref()),
            g.end_reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default()
        );
    }
    for e in &g.extensions {
        say!(
            "extended  +{} at {} (request {}): {} -> {}",
            format_duration(e.added_seconds),
            e.at,
            e.request_id,
            e.previous_expires_at,
            e.expires_at
        );
    }
    if let Some(review) = &g.review {
        match (&review.reviewed_by, review.reviewed_at) {
            (Some(by), Some(at)) => say!(
                "review    done by {by} at {at}{}",
                review.comment.as_ref().map(|c| format!(": {c}")).unwrap_or_default()
            ),
            _ => say!("review    {} (due {}, {})", review.state, review.due_at, relative(review.due_at, now)),
        }
    }
}

pub fn credentials(c: &CredentialsView) {
    println!("username  {}", c.username);
    println!("password  {}", c.password);
    println!("host      {}", c.host);
    println!("port      {}", c.port);
    println!("dbname    {}", c.dbname);
    println!("expires   {}", c.expires_at);
    println!("shown once: ward keeps no copy of the password; the login is removed when the grant ends");
}

pub fn check(c: &CheckResult, now: Timestamp) {
    match (c.allowed, c.expires_at) {
        (true, Some(expires)) => {
            say!("allowed: {} until {expires} ({})", c.reason, relative(expires, now))
        }
        (true, None) => say!("allowed: {}", c.reason),
        (false, _) => say!("not allowed: {}", c.reason),
    }
}

pub fn events(list: &[EventView]) {
    let rows = list
        .iter()
        .map(|e| {
            vec![
                e.seq.to_string(),
                when(e.occurred_at),
                e.event_type.clone(),
                e.actor.clone(),
                or_dash(e.subject.as_deref()),
                or_dash(e.resource.as_deref()),
                or_dash(e.grant_id.as_deref().or(e.request_id.as_deref())),
                or_dash(e.reason.as_deref()),
            ]
        })
        .collect();
    table(
        &["SEQ", "OCCURRED (UTC)", "TYPE", "ACTOR", "SUBJECT", "RESOURCE", "REQUEST/GRANT", "REASON"],
        rows,
    );
}

/// Prints a log stream (JSON lines of `LogItemView`) as it arrives: each line's text (or, with
/// `-o json`, the JSON line itself) on stdout; the summary or why a tail ended on stderr.
pub struct LogPrinter {
    json: bool,
    partial: Vec<u8>,
    /// The lines of a frame go out together, flushed at its end (a followed tail's lines still
    /// show as they come): a write per line costs more than the search that found them.
    out: std::io::BufWriter<std::io::Stdout>,
}

impl LogPrinter {
    pub fn new(json: bool) -> Self {
        Self {
            json,
            partial: Vec::new(),
            out: std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout()),
        }
    }

    fn item(&mut self, raw: &[u8]) -> std::io::Result<()> {
        let Ok(item) = serde_json::from_slice::<ward_api::LogItemView>(raw) else {
            eprintln!("ward: a line of the answer is not a log item");
            return Ok(());
        };
        if self.json {
            self.out.write_all(raw)?;
            self.out.write_all(b"\n")?;
        }
        match item {
            ward_api::LogItemView::Line(line) if !self.json => {
                self.out.write_all(line.line.as_bytes())?;
                self.out.write_all(b"\n")?;
            }
            ward_api::LogItemView::Line(_) => {}
            ward_api::LogItemView::Summary(summary) => {
                // After the lines, which go to another stream.
                self.out.flush()?;
                let redacted: u64 = summary.redactions.values().sum();
                let kinds: Vec<String> = summary.redactions.iter().map(|(k, n)| format!("{k} {n}")).collect();
                eprintln!(
                    "{} line{}{} from {} file{}; {redacted} value{} redacted{}",
                    summary.lines,
                    if summary.lines == 1 { "" } else { "s" },
                    if summary.timed_out {
                        " (the search stopped at its deadline: narrow it with --since, --until or a pattern)"
                    } else if summary.truncated {
                        " (the limit cut it short)"
                    } else {
                        ""
                    },
                    summary.files,
                    if summary.files == 1 { "" } else { "s" },
                    if redacted == 1 { "" } else { "s" },
                    if kinds.is_empty() { String::new() } else { format!(" ({})", kinds.join(", ")) },
                );
            }
            ward_api::LogItemView::End { reason } => {
                self.out.flush()?;
                eprintln!("ward: the stream ended: {reason}");
            }
        }
        Ok(())
    }

    /// Prints the whole lines of `pending`, keeping the rest for the next frame.
    fn items(&mut self, pending: &mut Vec<u8>) -> std::io::Result<()> {
        let mut start = 0;
        while let Some(end) = pending[start..].iter().position(|&b| b == b'\n') {
            self.item(&pending[start..start + end])?;
            start += end + 1;
        }
        pending.drain(..start);
        self.out.flush()
    }
}

impl Write for LogPrinter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut pending = std::mem::take(&mut self.partial);
        pending.extend_from_slice(buf);
        let printed = self.items(&mut pending);
        self.partial = pending;
        match printed {
            // As `say!`: a reader gone (`| head`) is not an error.
            Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
            Err(error) => Err(error),
            Ok(()) => Ok(buf.len()),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub fn findings(list: &[FindingView]) {
    let rows = list
        .iter()
        .map(|f| {
            vec![
                f.id.clone(),
                f.state.clone(),
                f.severity.clone(),
                f.rule.clone(),
                or_dash(f.subject.as_deref()),
                when(f.last_seen_at),
                f.summary.clone(),
            ]
        })
        .collect();
    table(&["ID", "STATE", "SEVERITY", "RULE", "SUBJECT", "LAST SEEN (UTC)", "SUMMARY"], rows);
}

pub fn finding(f: &FindingView) {
    say!("finding     {}", f.id);
    say!("rule        {} ({})", f.rule, f.severity);
    say!("state       {}", f.state);
    say!("summary     {}", f.summary);
    say!("subject     {}", or_dash(f.subject.as_deref()));
    say!("resource    {}", or_dash(f.resource.as_deref()));
    if let Some(grant) = &f.grant_id {
        say!("grant       {grant}");
    }
    if let Some(request) = &f.request_id {
        say!("request     {request}");
    }
    say!("seen        {} times, first {}, last {}", f.occurrences, f.first_seen_at, f.last_seen_at);
    let seqs: Vec<String> = f.seqs.iter().map(i64::to_string).collect();
    say!("events      {} (prove one with `ward audit prove --seq N`)", seqs.join(", "));
    if let Some(by) = &f.moved_by {
        say!("{:<11} by {by} at {}: {}", f.state, f.updated_at, or_dash(f.comment.as_deref()));
    }
}

pub fn rules(list: &[RuleView]) {
    let rows = list
        .iter()
        .map(|r| {
            let thresholds: Vec<String> = r
                .thresholds
                .iter()
                .map(|t| match t.kind.as_str() {
                    "duration" => format!("{} = {}", t.name, format_duration(t.value.unsigned_abs())),
                    _ => format!("{} = {}", t.name, t.value),
                })
                .collect();
            vec![
                r.id.clone(),
                if r.enabled { "on" } else { "off" }.to_owned(),
                r.severity.clone(),
                thresholds.join(", "),
            ]
        })
        .collect();
    table(&["RULE", "ENABLED", "SEVERITY", "THRESHOLDS"], rows);
}
