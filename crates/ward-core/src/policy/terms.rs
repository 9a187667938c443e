//! What policies say in annotations: the terms a request permit sets, and the stage an approve
//! permit's approvers count for. Read once, when the policies load.

use cedar_policy::Policy;

use super::{DEFAULT_MAX_DURATION_SECONDS, MAX_APPROVALS, PolicyError, RequestAsk};
use crate::duration::parse_duration;
use crate::model::Stage;

/// The longest `@reason_min_length` accepted: a reason is a sentence, not an essay.
const MAX_REASON_MIN_CHARS: usize = 500;
/// The longest duration an annotation may give: a year and a day.
const MAX_ANNOTATION_SECONDS: u64 = 366 * 24 * 3600;
/// How long approvers have to review a break-glass grant when the policy does not say.
pub const DEFAULT_REVIEW_WITHIN_SECONDS: u64 = 24 * 3600;

/// Annotations a permit for `Ward::Action::"request"` reads.
const REQUEST_ANNOTATIONS: &[&str] = &[
    "approvals",
    "stages",
    "max_duration",
    "reason_min_length",
    "reason_refuses",
    "ticket",
    "pending_ttl",
    "max_holders",
    "no_reciprocal_within",
    "breakglass",
    "review_within",
    "max_unreviewed",
    "idle_timeout",
];
/// Annotations a permit for `Ward::Action::"approve"` reads.
const APPROVE_ANNOTATIONS: &[&str] = &["stage"];
/// Annotations any policy may carry.
const ANY_ANNOTATIONS: &[&str] = &["id"];
/// Annotations a team keeps for itself (`@x_owner("payments")`): ward never reads them.
pub const TEAM_ANNOTATION_PREFIX: &str = "x_";

/// Why an annotation on a policy would not do what it says, if it would not: a name ward does
/// not know (a misspelt `@aprovals` would leave the default of one approval in force) or one
/// that means nothing on this kind of policy.
pub(super) fn misplaced_annotation(
    name: &str,
    permits_request: bool,
    permits_approve: bool,
) -> Option<String> {
    if ANY_ANNOTATIONS.contains(&name) || name.starts_with(TEAM_ANNOTATION_PREFIX) {
        return None;
    }
    let for_request = REQUEST_ANNOTATIONS.contains(&name);
    let for_approve = APPROVE_ANNOTATIONS.contains(&name);
    if (for_request && permits_request) || (for_approve && permits_approve) {
        return None;
    }
    if for_request {
        return Some(format!(
            "@{name} applies only to permit policies for Ward::Action::\"request\"; here it would change nothing"
        ));
    }
    if for_approve {
        return Some(format!(
            "@{name} applies only to permit policies for Ward::Action::\"approve\"; here it would change nothing"
        ));
    }
    let known = ANY_ANNOTATIONS.iter().chain(REQUEST_ANNOTATIONS).chain(APPROVE_ANNOTATIONS);
    let closest = known
        .map(|known| (strsim::damerau_levenshtein(name, known), *known))
        .min()
        .filter(|(distance, known)| *distance <= 2.max(known.len() / 3))
        .map(|(_, known)| format!(" (did you mean @{known}?)"))
        .unwrap_or_default();
    Some(format!(
        "unknown annotation @{name}{closest}; ward refuses annotations it does not know, since a misspelt \
         one would silently leave a weaker default in force (a team's own annotations start with \
         `@{TEAM_ANNOTATION_PREFIX}`)"
    ))
}

/// Annotations a request permit can carry.
#[derive(Debug, Clone)]
pub(super) struct PermitTerms {
    /// `@approvals("N")`: distinct approvals in all.
    pub approvals: u32,
    /// `@stages("leads, security:2")`: stages that must each be met by their own approvers.
    pub stages: Vec<Stage>,
    pub max_duration_seconds: u64,
    /// `@reason_min_length("N")`: characters, after trimming.
    pub reason_min_chars: usize,
    /// `@reason_refuses("debug, test, n/a")`: reasons that say nothing, lowercase.
    pub refused_reasons: Vec<String>,
    /// `@ticket("KIND")`: a ticket matching the `[tickets]` pattern KIND is required.
    pub ticket_kind: Option<String>,
    /// `@pending_ttl("2h")`: how long a request may wait for its approvals before it lapses.
    pub pending_ttl_seconds: Option<u64>,
    /// `@max_holders("N")`: at most N people hold the role on the resource at once.
    pub max_holders: Option<u32>,
    /// `@no_reciprocal_within("1h")`: no approving for someone who approved for you lately.
    pub reciprocal_seconds: Option<u64>,
    /// `@breakglass("15m")`: a break-glass rule, granting at once for at most this long.
    pub breakglass_cap_seconds: Option<u64>,
    /// `@review_within("24h")`: the deadline for a break-glass grant's review.
    pub review_within_seconds: u64,
    /// `@max_unreviewed("N")`: how many of the requester's break-glass grants on the resource may
    /// still await review when they break the glass again (default 0: each one must be reviewed
    /// before the next).
    pub max_unreviewed: u32,
    /// `@idle_timeout("15m")`: the grant ends by itself once unused this long.
    pub idle_timeout_seconds: Option<u64>,
}

impl Default for PermitTerms {
    fn default() -> Self {
        Self {
            approvals: 1,
            stages: Vec::new(),
            max_duration_seconds: DEFAULT_MAX_DURATION_SECONDS,
            reason_min_chars: 0,
            refused_reasons: Vec::new(),
            ticket_kind: None,
            pending_ttl_seconds: None,
            max_holders: None,
            reciprocal_seconds: None,
            breakglass_cap_seconds: None,
            review_within_seconds: DEFAULT_REVIEW_WITHIN_SECONDS,
            max_unreviewed: 0,
            idle_timeout_seconds: None,
        }
    }
}

impl PermitTerms {
    /// Distinct approvals needed in all: at least one per stage slot.
    pub fn total_approvals(&self) -> u32 {
        self.approvals.max(self.stages.iter().map(|s| s.approvals).sum())
    }

    /// The longest access this permit grants: a break-glass cap replaces `@max_duration`.
    pub fn longest_seconds(&self) -> u64 {
        self.breakglass_cap_seconds.unwrap_or(self.max_duration_seconds)
    }
}

fn whole_number(text: &str, range: std::ops::RangeInclusive<u64>) -> Option<u64> {
    text.trim().parse::<u64>().ok().filter(|n| range.contains(n))
}

pub(super) fn read_terms(policy: &Policy) -> Result<PermitTerms, PolicyError> {
    let annotation_error =
        |message: String| PolicyError::Annotation { policy: policy.id().to_string(), message };
    let duration = |name: &str| {
        policy
            .annotation(name)
            .map(|text| match parse_duration(text) {
                Ok(seconds) if seconds <= MAX_ANNOTATION_SECONDS => Ok(seconds),
                Ok(_) => Err(annotation_error(format!("@{name}(\"{text}\") is longer than 366d"))),
                Err(e) => Err(annotation_error(format!("@{name}: {e}"))),
            })
            .transpose()
    };
    let defaults = PermitTerms::default();
    let approvals = match policy.annotation("approvals") {
        None => defaults.approvals,
        Some(text) if text.trim() == "0" => {
            return Err(annotation_error(
                "@approvals(\"0\") would let requests through unapproved; write an auto_approve policy \
                 for automatic approval instead"
                    .into(),
            ));
        }
        Some(text) => whole_number(text, 1..=u64::from(MAX_APPROVALS))
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| {
                annotation_error(format!(
                    "@approvals(\"{text}\") is not a whole number from 1 to {MAX_APPROVALS}"
                ))
            })?,
    };
    let stages = match policy.annotation("stages") {
        None => Vec::new(),
        Some(list) => parse_stages(list).map_err(annotation_error)?,
    };
    let reason_min_chars = match policy.annotation("reason_min_length") {
        None => 0,
        Some(text) => whole_number(text, 0..=MAX_REASON_MIN_CHARS as u64)
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| {
                annotation_error(format!(
                    "@reason_min_length(\"{text}\") is not a whole number from 0 to {MAX_REASON_MIN_CHARS}"
                ))
            })?,
    };
    let refused_reasons = policy
        .annotation("reason_refuses")
        .map(|list| {
            list.split(',').map(|p| p.trim().to_lowercase()).filter(|p| !p.is_empty()).collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let ticket_kind = match policy.annotation("ticket") {
        Some(kind) if kind.trim().is_empty() => {
            return Err(annotation_error("@ticket needs the name of a [tickets] pattern".into()));
        }
        kind => kind.map(|k| k.trim().to_owned()),
    };
    let max_holders = match policy.annotation("max_holders") {
        None => None,
        Some(text) => {
            Some(whole_number(text, 1..=1_000_000).and_then(|n| u32::try_from(n).ok()).ok_or_else(|| {
                annotation_error(format!("@max_holders(\"{text}\") is not a whole number of at least 1"))
            })?)
        }
    };
    let max_unreviewed = match policy.annotation("max_unreviewed") {
        None => defaults.max_unreviewed,
        Some(text) => whole_number(text, 0..=100).and_then(|n| u32::try_from(n).ok()).ok_or_else(|| {
            annotation_error(format!("@max_unreviewed(\"{text}\") is not a whole number from 0 to 100"))
        })?,
    };
    let terms = PermitTerms {
        approvals,
        stages,
        max_duration_seconds: duration("max_duration")?.unwrap_or(defaults.max_duration_seconds),
        reason_min_chars,
        refused_reasons,
        ticket_kind,
        pending_ttl_seconds: duration("pending_ttl")?,
        max_holders,
        reciprocal_seconds: duration("no_reciprocal_within")?,
        breakglass_cap_seconds: duration("breakglass")?,
        review_within_seconds: duration("review_within")?.unwrap_or(defaults.review_within_seconds),
        max_unreviewed,
        idle_timeout_seconds: duration("idle_timeout")?,
    };
    if terms.total_approvals() > MAX_APPROVALS {
        return Err(annotation_error(format!(
            "its stages need {} approvals in all, more than the maximum of {MAX_APPROVALS}",
            terms.total_approvals()
        )));
    }
    for name in ["review_within", "max_unreviewed"] {
        if terms.breakglass_cap_seconds.is_none() && policy.annotation(name).is_some() {
            return Err(annotation_error(format!("@{name} applies only to a @breakglass rule")));
        }
    }
    Ok(terms)
}

/// `leads, security:2` → stage `leads` (1 approval) and `security` (2).
fn parse_stages(list: &str) -> Result<Vec<Stage>, String> {
    let mut stages: Vec<Stage> = Vec::new();
    for item in list.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (name, count) = match item.split_once(':') {
            Some((name, count)) => (name.trim(), count.trim()),
            None => (item, "1"),
        };
        let approvals = whole_number(count, 1..=u64::from(MAX_APPROVALS))
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| {
                format!("@stages: `{item}` needs a whole number of approvals from 1 to {MAX_APPROVALS}")
            })?;
        if !is_stage_name(name) {
            return Err(format!("@stages: `{name}` is not a stage name (letters, digits, `-`, `_`)"));
        }
        if stages.iter().any(|s| s.name == name) {
            return Err(format!("@stages names `{name}` twice"));
        }
        stages.push(Stage { name: name.to_owned(), approvals });
    }
    if stages.is_empty() {
        return Err("@stages names no stage".into());
    }
    Ok(stages)
}

fn is_stage_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The stage an approve permit's approvers count for (`@stage("security")`), if any.
pub(super) fn approver_stage(policy: &Policy) -> Result<Option<String>, PolicyError> {
    match policy.annotation("stage").map(str::trim) {
        None => Ok(None),
        Some(name) if is_stage_name(name) => Ok(Some(name.to_owned())),
        Some(name) => Err(PolicyError::Annotation {
            policy: policy.id().to_string(),
            message: format!("@stage(\"{name}\") is not a stage name (letters, digits, `-`, `_`)"),
        }),
    }
}

/// Why `ask` does not meet `terms`' requirements, or `None` if it does.
pub(super) fn unmet(terms: &PermitTerms, ask: &RequestAsk<'_>, ticket_kinds: &[String]) -> Option<String> {
    let target = format!("`{}` on `{}`", ask.role, ask.resource);
    let reason = ask.reason.trim();
    let length = reason.chars().count();
    if length < terms.reason_min_chars {
        return Some(format!(
            "a request for {target} needs a reason of at least {} characters (this one has {length}): say what \
             is broken and why you need the access",
            terms.reason_min_chars
        ));
    }
    let plain = reason.trim_end_matches(['.', '!']).to_lowercase();
    if terms.refused_reasons.contains(&plain) {
        return Some(format!(
            "`{reason}` is not a reason for {target}: say what is broken and why you need the access"
        ));
    }
    match (&terms.ticket_kind, ask.ticket) {
        (Some(kind), None) => {
            Some(format!("a request for {target} needs a ticket of kind `{kind}` (--ticket)"))
        }
        (Some(kind), Some(ticket)) if !ticket_kinds.contains(kind) => {
            Some(format!("`{ticket}` is not a ticket of kind `{kind}`, which a request for {target} needs"))
        }
        _ => None,
    }
}
