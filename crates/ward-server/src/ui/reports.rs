//! `/ui/reports`: an evidence pack (SOC 2 or ISO 27001) for a period, made and downloaded from
//! the browser as `ward report` makes it (auditors and admins): the same tar archive as
//! `POST /v1/reports`, which an auditor verifies offline.

use std::sync::Arc;

use askama::Template;
use axum::Extension;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use jiff::Timestamp;
use jiff::civil::Date;
use serde::Deserialize;
use ward_report::model::Framework;
use ward_report::{ReportRequest, Reports};

use super::{PostedForm, SignedIn, Ui, genuine, message, problem_page, render};

#[derive(Template)]
#[template(path = "ui/reports.html")]
struct Page {
    frameworks: Vec<&'static str>,
    /// The form's defaults: the last 90 days.
    from: String,
    to: String,
    csrf: String,
    everything: bool,
}

/// `GET /ui/reports`: the form.
pub async fn form(Extension(reports): Extension<Reports>, SignedIn(session): SignedIn) -> Response {
    let today = reports.now().to_zoned(jiff::tz::TimeZone::UTC).date();
    let from = today.checked_sub(jiff::Span::new().days(90)).unwrap_or(today);
    let page = Page {
        frameworks: Framework::ALL.iter().map(|f| f.as_str()).collect(),
        from: from.to_string(),
        to: today.to_string(),
        csrf: session.csrf_token(),
        everything: session.caller.sees_everything(),
    };
    render(StatusCode::OK, &page)
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub struct ReportForm {
    csrf: String,
    from: String,
    to: String,
    framework: String,
}

posted_with_csrf!(ReportForm);

/// The period the form names: from the start of `from` (UTC) to the end of `to`, or now if
/// that is sooner.
fn period(form: &ReportForm, now: Timestamp) -> Result<(Timestamp, Timestamp), String> {
    let day = |text: &str, field: &str| {
        text.trim().parse::<Date>().map_err(|_| format!("{field}: a date such as 2026-12-01"))
    };
    let midnight = |date: Date| date.to_zoned(jiff::tz::TimeZone::UTC).map(|z| z.timestamp());
    let from = midnight(day(&form.from, "from")?).map_err(|e| format!("from: {e}"))?;
    let after_to = day(&form.to, "to")?.tomorrow().and_then(midnight).map_err(|e| format!("to: {e}"))?;
    Ok((from, after_to.min(now)))
}

/// `POST /ui/reports`: the pack, as a download.
pub async fn make(
    Extension(reports): Extension<Reports>,
    Extension(ui): Extension<Arc<Ui>>,
    SignedIn(session): SignedIn,
    headers: HeaderMap,
    form: PostedForm<ReportForm>,
) -> Response {
    let back = Some(("/ui/reports", "Back to the form"));
    let form = match genuine(&ui, &session, &headers, form, "made", back) {
        Ok(form) => form,
        Err(refusal) => return *refusal,
    };
    let Some(framework) = Framework::parse(&form.framework) else {
        return message(
            StatusCode::UNPROCESSABLE_ENTITY,
            "No report was made",
            "Choose SOC 2 or ISO 27001.",
            back,
        );
    };
    let (from, to) = match period(&form, reports.now()) {
        Ok(period) => period,
        Err(why) => return message(StatusCode::UNPROCESSABLE_ENTITY, "No report was made", &why, back),
    };
    let request = ReportRequest { from, to, framework, seed: None };
    crate::reports::pack(&reports, &session.caller, request).await.unwrap_or_else(problem_page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_period_runs_from_the_first_days_start_to_the_last_days_end_or_now() {
        let form = |from: &str, to: &str| ReportForm {
            csrf: String::new(),
            from: from.into(),
            to: to.into(),
            framework: String::new(),
        };
        let now: Timestamp = "2026-12-05T10:00:00Z".parse().unwrap();
        let (from, to) = period(&form("2026-11-01", "2026-11-30"), now).unwrap();
        assert_eq!(
            (from.to_string(), to.to_string()),
            ("2026-11-01T00:00:00Z".into(), "2026-12-01T00:00:00Z".into())
        );
        assert_eq!(period(&form("2026-11-01", "2026-12-05"), now).unwrap().1, now);
        assert!(period(&form("yesterday", "2026-12-05"), now).unwrap_err().starts_with("from:"));
    }
}
