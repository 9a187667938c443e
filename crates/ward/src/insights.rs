//! `ward insights`: the query it sends and the report as sections of tables (`-o json` prints
//! the API's JSON).

use jiff::Timestamp;
use ward_api::{InsightsView, RoleInsightView};
use ward_core::duration::{format_duration, parse_duration};
use ward_monitor::insights::MAX_PERIOD_SECONDS;

use crate::client::CliError;
use crate::output::table;

/// `--since DUR` as the API takes it (checked here, so that a bad flag is a usage error).
pub fn query(since: Option<&str>) -> Result<Vec<(&'static str, String)>, CliError> {
    let Some(text) = since else { return Ok(Vec::new()) };
    let seconds =
        parse_duration(text).map_err(|e| CliError::Usage(format!("--since takes a duration: {e}")))?;
    if seconds > MAX_PERIOD_SECONDS {
        return Err(CliError::Usage(format!(
            "--since {text} is too long: insights look back at most {}d",
            MAX_PERIOD_SECONDS / 86_400
        )));
    }
    Ok(vec![("since", format_duration(seconds))])
}

fn when(at: Timestamp) -> String {
    at.strftime("%Y-%m-%d %H:%M").to_string()
}

/// `0.417` as `41.7%`.
fn percent(share: Option<f64>) -> String {
    match share {
        Some(share) => {
            let text = format!("{:.1}", share * 100.0);
            format!("{}%", text.strip_suffix(".0").unwrap_or(&text))
        }
        None => "-".into(),
    }
}

fn span(seconds: Option<u64>) -> String {
    seconds.map_or_else(|| "-".into(), format_duration)
}

fn section(title: &str, rows: Vec<Vec<String>>, header: &[&str]) {
    say!();
    say!("{title}");
    if rows.is_empty() {
        say!("  none");
    } else {
        table(header, rows);
    }
}

fn names(role: &RoleInsightView) -> Vec<String> {
    vec![role.resource.clone(), role.role.clone()]
}

pub fn show(view: &InsightsView) {
    say!("Insights from {} to {} UTC ({} events)", when(view.since), when(view.until), view.events);

    let used = view
        .roles
        .iter()
        .filter(|r| r.grants > 0)
        .map(|r| {
            let mut row = names(r);
            row.extend([
                r.requests.to_string(),
                r.grants.to_string(),
                r.grants_measured.to_string(),
                percent(r.used_share_median),
                percent(r.used_share_p95),
                format_duration(r.requested_seconds),
                format_duration(r.used_seconds),
            ]);
            row
        })
        .collect();
    section(
        "Requested vs used time (share of each grant's window between its first and last use)",
        used,
        &["RESOURCE", "ROLE", "REQUESTS", "GRANTS", "MEASURED", "MEDIAN", "P95", "REQUESTED", "USED"],
    );

    let unused = view
        .roles
        .iter()
        .filter(|r| r.grants_never_used > 0)
        .map(|r| {
            let mut row = names(r);
            let ended = r.grants_measured + r.grants_never_used;
            row.extend([format!("{} of {ended}", r.grants_never_used), r.never_used_grants.join(", ")]);
            row
        })
        .collect();
    section("Grants never used", unused, &["RESOURCE", "ROLE", "NEVER USED", "GRANTS"]);

    let idle = view
        .roles
        .iter()
        .flat_map(|r| r.idle_grants.iter().map(move |g| (r, g)))
        .map(|(r, g)| {
            let mut row = names(r);
            row.extend([
                g.grant_id.clone(),
                g.holder.clone(),
                format_duration(g.window_seconds),
                format_duration(g.used_seconds),
            ]);
            row
        })
        .collect();
    section(
        "Grants used for under a quarter of their window (most left unused first)",
        idle,
        &["RESOURCE", "ROLE", "GRANT", "HOLDER", "WINDOW", "USED"],
    );

    let unasked = view
        .roles
        .iter()
        .filter(|r| !r.never_asked.is_empty())
        .map(|r| {
            let mut row = names(r);
            row.extend([format!("{} of {}", r.never_asked.len(), r.eligible), r.never_asked.join(", ")]);
            row
        })
        .collect();
    section("Eligible, never asked in the period", unasked, &["RESOURCE", "ROLE", "NEVER ASKED", "WHO"]);

    let fast = format!("WITHIN {}", format_duration(view.fast_approval_seconds));
    let mut approvals = Vec::new();
    for r in &view.roles {
        if r.automatic_approvals > 0 {
            let mut row = names(r);
            row.extend([
                "(policy)".into(),
                r.automatic_approvals.to_string(),
                "-".into(),
                "-".into(),
                "-".into(),
            ]);
            row.push("automatic already".into());
            approvals.push(row);
        }
        for a in &r.approvers {
            let mut row = names(r);
            row.extend([
                a.approver.clone(),
                a.approvals.to_string(),
                a.fast.to_string(),
                format_duration(a.median_seconds),
                format_duration(a.max_seconds),
                if a.pattern { "always fast: automate, or review".into() } else { String::new() },
            ]);
            approvals.push(row);
        }
    }
    section(
        &format!(
            "Approvals (a pattern: every one, at least 3, within {} of the request)",
            format_duration(view.fast_approval_seconds)
        ),
        approvals,
        &["RESOURCE", "ROLE", "APPROVER", "APPROVALS", &fast, "MEDIAN", "LONGEST", "PATTERN"],
    );

    let maxima = view
        .roles
        .iter()
        .filter(|r| r.max_duration_unreached)
        .map(|r| {
            let mut row = names(r);
            row.extend([
                span(r.max_duration_seconds),
                span(r.longest_requested_seconds),
                r.requests.to_string(),
            ]);
            row
        })
        .collect();
    section(
        "Maximum durations nobody comes near (no request for more than half of it)",
        maxima,
        &["RESOURCE", "ROLE", "MAXIMUM", "LONGEST ASKED", "REQUESTS"],
    );
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn shares_print_as_percentages() {
        assert_eq!(percent(Some(0.417)), "41.7%");
        assert_eq!(percent(Some(0.0)), "0%");
        assert_eq!(percent(Some(1.0)), "100%");
        assert_eq!(percent(None), "-");
    }

    #[test]
    fn since_is_a_duration_up_to_400_days() {
        assert_eq!(query(None).unwrap(), []);
        assert_eq!(query(Some("30d")).unwrap(), [("since", "720h".to_owned())]);
        assert_eq!(query(Some("400d")).unwrap(), [("since", "9600h".to_owned())]);
        for bad in ["401d", "soon", "0s", "2026-01-01T00:00:00Z"] {
            assert!(matches!(query(Some(bad)), Err(CliError::Usage(_))), "{bad}");
        }
    }
}
