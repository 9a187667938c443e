//! `index.html`: the report for people, one self-contained page (inline CSS, SVG charts, no
//! script), printable to PDF from a browser. Rendered with askama (`templates/report.html`), which
//! escapes every value.

use askama::Template;

use crate::controls::section;
use crate::model::{EligibleAt, Report};

/// A bar of a chart, placed.
pub struct Bar {
    pub label: String,
    pub value: u64,
    pub x: u64,
    pub y: u64,
    pub width: u64,
    pub height: u64,
}

/// The page's sections, by their element ids, in order.
pub const SECTION_IDS: [&str; 11] = [
    "cover",
    "controls",
    "population",
    "sample",
    "exceptions",
    "revocation",
    "usage",
    "eligibility",
    "monitoring",
    "changes",
    "appendix",
];

const CHART_HEIGHT: u64 = 160;
const BAR_WIDTH: u64 = 84;
const GAP: u64 = 16;

/// Bars for `counts`, scaled to the largest.
fn bars(counts: &[(String, u64)]) -> Vec<Bar> {
    let most = counts.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
    counts
        .iter()
        .enumerate()
        .map(|(i, (label, value))| {
            let height = value * CHART_HEIGHT / most;
            Bar {
                label: label.clone(),
                value: *value,
                x: i as u64 * (BAR_WIDTH + GAP),
                y: CHART_HEIGHT - height + 20,
                width: BAR_WIDTH,
                height,
            }
        })
        .collect()
}

#[derive(Template)]
#[template(path = "report.html")]
struct Page<'r> {
    r: &'r Report,
    s: Sections,
    lag_bars: Vec<Bar>,
    grant_bars: Vec<Bar>,
    chart_width: u64,
    eligibility: Vec<super::EligibilityLine<'r>>,
    /// The period's two ends, named, for section 8.
    ends: [(&'static str, &'r EligibleAt); 2],
}

/// The sections' titles, as the control matrix cites them.
struct Sections {
    cover: &'static str,
    controls: &'static str,
    population: &'static str,
    sample: &'static str,
    exceptions: &'static str,
    revocation: &'static str,
    usage: &'static str,
    eligibility: &'static str,
    monitoring: &'static str,
    changes: &'static str,
    appendix: &'static str,
}

pub fn html(report: &Report) -> Result<String, askama::Error> {
    let grants: Vec<(String, u64)> =
        report.population.grants_by_state.iter().map(|(s, n)| (s.clone(), *n)).collect();
    let lag_bars = bars(&report.revocation.histogram);
    let grant_bars = bars(&grants);
    let chart_width = (lag_bars.len().max(grant_bars.len()) as u64) * (BAR_WIDTH + GAP);
    Page {
        r: report,
        s: Sections {
            cover: section::COVER,
            controls: section::CONTROLS,
            population: section::POPULATION,
            sample: section::SAMPLE,
            exceptions: section::EXCEPTIONS,
            revocation: section::REVOCATION,
            usage: section::USAGE,
            eligibility: section::ELIGIBILITY,
            monitoring: section::MONITORING,
            changes: section::CHANGES,
            appendix: section::APPENDIX,
        },
        lag_bars,
        grant_bars,
        chart_width,
        eligibility: super::eligibility_lines(report),
        ends: [("At the start", &report.eligibility.at_start), ("At the end", &report.eligibility.at_end)],
    }
    .render()
}
