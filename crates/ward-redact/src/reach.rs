//! How many line breaks a match of a pattern can hold, read from the pattern itself: it says
//! which lines a rule must look at around a line its keyword is on.
//!
//! gitleaks' and Nosey Parker's patterns are written for whole files, so most of them can match
//! a line break somewhere (`\s` between a key and its value), but only a few can match many (a
//! private key block). A rule whose matches hold at most `n` line breaks is scanned line by line
//! (fast) and, for the matches that do cross lines, once over the `n` lines either side of each
//! keyword; only rules whose matches may hold any number of them read on to the end of the chunk.

use regex_syntax::hir::{Class, Hir, HirKind};

/// How far from the line its keyword is on a match of a rule can reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reach {
    /// The match lies within one line.
    Line,
    /// The match holds at most this many line breaks.
    Lines(usize),
    /// The match may hold any number of line breaks (a private key block).
    Unbounded,
}

impl Reach {
    /// The reach of a pattern's matches (`hir`, parsed by [`crate::parse`]). A pattern that does
    /// not parse reaches without bound: the rule then reads more, never less.
    pub(crate) fn of(hir: Option<&Hir>) -> Self {
        match hir.map(max_line_breaks) {
            Some(Some(0)) => Self::Line,
            Some(Some(n)) => Self::Lines(n),
            _ => Self::Unbounded,
        }
    }
}

/// The most line breaks a match of `hir` can hold; `None`: any number.
fn max_line_breaks(hir: &Hir) -> Option<usize> {
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => Some(0),
        HirKind::Literal(literal) => Some(literal.0.iter().filter(|&&b| b == b'\n').count()),
        HirKind::Class(class) => Some(usize::from(matches_line_break(class))),
        HirKind::Capture(capture) => max_line_breaks(&capture.sub),
        HirKind::Repetition(repetition) => match max_line_breaks(&repetition.sub)? {
            0 => Some(0),
            each => repetition.max.map(|max| each.saturating_mul(max as usize)),
        },
        HirKind::Concat(parts) => {
            parts.iter().try_fold(0usize, |sum, part| Some(sum.saturating_add(max_line_breaks(part)?)))
        }
        HirKind::Alternation(branches) => {
            branches.iter().try_fold(0usize, |most, branch| Some(most.max(max_line_breaks(branch)?)))
        }
    }
}

fn matches_line_break(class: &Class) -> bool {
    match class {
        Class::Unicode(class) => class.ranges().iter().any(|r| r.start() <= '\n' && '\n' <= r.end()),
        Class::Bytes(class) => class.ranges().iter().any(|r| r.start() <= b'\n' && b'\n' <= r.end()),
    }
}

#[cfg(test)]
mod tests {
    use super::Reach;

    fn reach(pattern: &str) -> Reach {
        Reach::of(crate::parse(pattern).as_ref())
    }

    #[test]
    fn a_pattern_that_cannot_match_a_line_break_stays_on_its_line() {
        assert_eq!(reach(r"AKIA[A-Z2-7]{16}"), Reach::Line);
        assert_eq!(reach(r"[^@\s]+@[a-z.]+"), Reach::Line);
        assert_eq!(reach(r"(?i)token[ \t]*=[ \t]*\w{10,}"), Reach::Line);
        assert_eq!(reach(r"a.*b"), Reach::Line, "`.` stops at a line break");
    }

    #[test]
    fn bounded_line_breaks_are_counted() {
        assert_eq!(reach(r"key\s?=\s{0,3}\w+"), Reach::Lines(4));
        assert_eq!(reach("a\nb"), Reach::Lines(1));
        assert_eq!(reach(r"x(?:\s|\n\n)y"), Reach::Lines(2), "the widest branch counts");
        assert_eq!(reach(r"(?:a\s){3}"), Reach::Lines(3));
    }

    #[test]
    fn unbounded_line_breaks_reach_on() {
        assert_eq!(reach(r"-----BEGIN[\s\S]*?-----END"), Reach::Unbounded);
        assert_eq!(reach(r"(?s)a.+b"), Reach::Unbounded);
        assert_eq!(reach(r"key\s*=\s*\w+"), Reach::Unbounded);
        assert_eq!(reach(r"(unclosed"), Reach::Unbounded, "unreadable: read more, not less");
    }

    #[test]
    fn gitleaks_generic_rule_reaches_a_few_lines() {
        let generic = r#"(?i)[\w.-]{0,50}?(?:access|auth|(?-i:[Aa]pi|API)|credential|creds|key|passw(?:or)?d|secret|token)(?:[ \t\w.-]{0,20})[\s'"]{0,3}(?:=|>|:{1,3}=|\|\||:|=>|\?=|,)[\x60'"\s=]{0,5}([\w.=-]{10,150}|[a-z0-9][a-z0-9+/]{11,}={0,3})(?:[\x60'"\s;]|\\[nr]|$)"#;
        assert_eq!(reach(generic), Reach::Lines(9));
    }
}
