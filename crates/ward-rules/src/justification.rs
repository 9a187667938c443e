//! Whether a request's reason says why access is needed.

/// Words that say nothing about why: a reason made only of these (and of small words) is
/// generic, however long ("need access to debug the issue").
const GENERIC: &[&str] = &[
    "a",
    "access",
    "an",
    "and",
    "asap",
    "asdf",
    "check",
    "checking",
    "debug",
    "debugging",
    "fix",
    "fixing",
    "for",
    "help",
    "i",
    "in",
    "investigate",
    "investigating",
    "issue",
    "issues",
    "it",
    "just",
    "log",
    "logs",
    "look",
    "looking",
    "me",
    "my",
    "n",
    "na",
    "need",
    "needed",
    "needs",
    "none",
    "of",
    "on",
    "please",
    "pls",
    "problem",
    "quick",
    "read",
    "reading",
    "request",
    "some",
    "stuff",
    "support",
    "task",
    "tbd",
    "temp",
    "test",
    "testing",
    "tests",
    "the",
    "thing",
    "things",
    "tmp",
    "to",
    "todo",
    "urgent",
    "want",
    "work",
    "working",
    "x",
    "xx",
    "xxx",
];

/// Why a reason is weak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weakness {
    /// Shorter than the minimum, and no ticket to say more.
    Short { length: usize, min_length: usize },
    /// Only generic words ("debug", "need access", "fix").
    Generic,
}

impl Weakness {
    pub fn describe(self) -> String {
        match self {
            Self::Short { length, min_length } => {
                format!(
                    "the reason is {length} characters long (at least {min_length} expected) and names no ticket"
                )
            }
            Self::Generic => {
                "the reason says nothing specific (only words like \"debug\", \"access\", \"fix\")".into()
            }
        }
    }
}

/// Judges `reason`: weak when it is only generic words, or shorter than `min_length` characters
/// without a ticket (a ticket carries the justification; its reason may be short). A reason
/// recorded as an HMAC (`[audit] hmac_fields`) cannot be read: `None`.
pub fn weakness(reason: &str, ticket: bool, min_length: usize) -> Option<Weakness> {
    let reason = reason.trim();
    if reason.starts_with("hmac-sha256:") {
        return None;
    }
    let generic = reason
        .split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .all(|word| GENERIC.iter().any(|g| g.eq_ignore_ascii_case(word)));
    if generic {
        return Some(Weakness::Generic);
    }
    let length = reason.chars().count();
    (!ticket && length < min_length).then_some(Weakness::Short { length, min_length })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generic_or_short_reasons_are_weak() {
        assert_eq!(weakness("debug", true, 12), Some(Weakness::Generic));
        assert_eq!(weakness("Need access to debug the issue!", false, 12), Some(Weakness::Generic));
        assert_eq!(weakness("  ", false, 12), Some(Weakness::Generic), "nothing at all");
        assert_eq!(weakness("INC-42 5xx", false, 12), Some(Weakness::Short { length: 10, min_length: 12 }));
        assert_eq!(weakness("INC-42 5xx", true, 12), None, "a ticket says the rest");
        assert_eq!(weakness("INC-4312 checkout 500s", false, 12), None);
        assert_eq!(weakness("checkout 500s", false, 12), None, "13 characters, not all generic");
        assert_eq!(weakness(&format!("hmac-sha256:{}", "0".repeat(64)), false, 12), None);
    }
}
