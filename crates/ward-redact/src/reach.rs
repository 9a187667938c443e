//! How many lines a match of a pattern can cross, read from the pattern itself: it says which
//! lines a rule must look at around a line its keyword is on.
//!
//! gitleaks' and Nosey Parker's patterns are written for whole files, so most of them can match
//! a line break somewhere (`\s` between a key and its value), but only a few can match many (a
//! private key block). A rule whose matches cross at most `n` lines is scanned line by line
//! (fast) and, for the matches that do cross lines, once over the `n` lines either side of each
//! keyword; only rules whose matches may cross any number of them read on to the end of the chunk.
//!
//! Lines are counted without the blank ones (nothing but whitespace): a part of a pattern that
//! matches only whitespace (`\s*` between a key and its value) may run over any number of blank
//! lines, but from one line that is not blank only to the next one that is not. So such a part
//! counts as one line break however long it may be, and [`Lines`] steps over blank lines for
//! free.

use regex_syntax::hir::{Class, Hir, HirKind};

/// How far from the line its keyword is on a match of a rule can reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reach {
    /// The match lies within one line.
    Line,
    /// The match crosses at most this many breaks between lines that are not blank (blank lines
    /// between them do not count).
    Lines(usize),
    /// The match may cross any number of lines (a private key block).
    Unbounded,
}

impl Reach {
    /// How many lines that are not blank a match reaches, if that is bounded.
    pub(crate) fn bound(self) -> Option<usize> {
        match self {
            Self::Line => Some(0),
            Self::Lines(n) => Some(n),
            Self::Unbounded => None,
        }
    }

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

/// The most bytes a match of `hir` can hold that are ASCII and not whitespace (`None`: any
/// number): a match touching a line can cover whole lines around it only as long as they hold no
/// more of those (non-ASCII bytes are not counted in a line, since they may be whitespace).
pub(crate) fn max_solid(hir: Option<&Hir>) -> Option<usize> {
    most(hir?, &|hir| match hir.kind() {
        HirKind::Literal(literal) => Some(Some(literal.0.iter().filter(|&&b| is_solid(b)).count())),
        HirKind::Class(Class::Unicode(class)) => Some(Some(usize::from(class.ranges().iter().any(|r| {
            (u32::from(r.start())..=u32::from(r.end()).min(0x7f)).any(|c| u8::try_from(c).is_ok_and(is_solid))
        })))),
        HirKind::Class(Class::Bytes(class)) => {
            Some(Some(usize::from(class.ranges().iter().any(|r| (r.start()..=r.end()).any(is_solid)))))
        }
        _ => None,
    })
}

/// The most of something a match of `hir` can hold (`None`: any amount), from what `leaf` says
/// of literals and classes (and of anything else it answers for: `Some(answer)`); a repetition
/// multiplies, a sequence adds up, an alternation takes its largest branch.
fn most(hir: &Hir, leaf: &dyn Fn(&Hir) -> Option<Option<usize>>) -> Option<usize> {
    if let Some(answer) = leaf(hir) {
        return answer;
    }
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) | HirKind::Literal(_) | HirKind::Class(_) => Some(0),
        HirKind::Capture(capture) => most(&capture.sub, leaf),
        HirKind::Repetition(repetition) => match most(&repetition.sub, leaf)? {
            0 => Some(0),
            each => repetition.max.map(|max| each.saturating_mul(max as usize)),
        },
        HirKind::Concat(parts) => {
            parts.iter().try_fold(0usize, |sum, part| Some(sum.saturating_add(most(part, leaf)?)))
        }
        HirKind::Alternation(branches) => {
            branches.iter().try_fold(0usize, |largest, branch| Some(largest.max(most(branch, leaf)?)))
        }
    }
}

/// An ASCII byte that is not whitespace.
pub(crate) fn is_solid(b: u8) -> bool {
    b.is_ascii() && !is_blank_byte(b)
}

/// The most breaks between lines that are not blank a match of `hir` can cross; `None`: any
/// number. A part that matches only whitespace counts once, however many it may hold.
fn max_line_breaks(hir: &Hir) -> Option<usize> {
    most(hir, &|hir| {
        if whitespace_only(hir) {
            Some(Some(usize::from(line_breaks(hir) != Some(0))))
        } else {
            line_break_leaf(hir)
        }
    })
}

/// The most line breaks a match of `hir` can hold; `None`: any number.
fn line_breaks(hir: &Hir) -> Option<usize> {
    most(hir, &line_break_leaf)
}

fn line_break_leaf(hir: &Hir) -> Option<Option<usize>> {
    match hir.kind() {
        HirKind::Literal(literal) => Some(Some(literal.0.iter().filter(|&&b| b == b'\n').count())),
        HirKind::Class(class) => Some(Some(usize::from(matches_line_break(class)))),
        _ => None,
    }
}

/// Whether every character a match of `hir` can hold is whitespace: such a run, across line
/// breaks, covers only blank lines between the two it starts and ends on.
fn whitespace_only(hir: &Hir) -> bool {
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => true,
        HirKind::Literal(literal) => literal.0.iter().all(|&b| is_blank_byte(b)),
        HirKind::Class(Class::Unicode(class)) => {
            class.ranges().iter().all(|r| (r.start()..=r.end()).all(char::is_whitespace))
        }
        HirKind::Class(Class::Bytes(class)) => {
            class.ranges().iter().all(|r| (r.start()..=r.end()).all(is_blank_byte))
        }
        HirKind::Capture(capture) => whitespace_only(&capture.sub),
        HirKind::Repetition(repetition) => whitespace_only(&repetition.sub),
        HirKind::Concat(parts) | HirKind::Alternation(parts) => parts.iter().all(whitespace_only),
    }
}

/// The bytes `regex`'s ASCII `\s` matches, and the line break.
fn is_blank_byte(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\x0B' | b'\x0C' | b'\r')
}

/// Whether a line holds nothing but whitespace (as `\s` reads it: any that a whitespace-only
/// part of a pattern can run over).
pub(crate) fn is_blank(line: &[u8]) -> bool {
    match line.iter().position(|&b| !is_blank_byte(b)) {
        None => true,
        Some(at) if line[at].is_ascii() => false,
        // Unicode whitespace (a no-break space, say), or not whitespace at all.
        Some(at) => line[at..]
            .utf8_chunks()
            .all(|chunk| chunk.invalid().is_empty() && chunk.valid().chars().all(char::is_whitespace)),
    }
}

/// The first line a match reaching `n` lines that are not blank back from `line` can touch: `n`
/// of them, and the blank lines before the last (`blank` says which lines are).
pub(crate) fn back(line: usize, n: usize, blank: &dyn Fn(usize) -> bool) -> usize {
    let mut first = line;
    let mut counted = 0;
    while counted < n && first > 0 {
        first -= 1;
        counted += usize::from(!blank(first));
    }
    while n > 0 && first > 0 && blank(first - 1) {
        first -= 1;
    }
    first
}

/// The last line (at most `last`) a match reaching `n` lines that are not blank on from `line`
/// can touch.
pub(crate) fn forward(line: usize, n: usize, last: usize, blank: &dyn Fn(usize) -> bool) -> usize {
    let mut end = line;
    let mut counted = 0;
    while counted < n && end < last {
        end += 1;
        counted += usize::from(!blank(end));
    }
    while n > 0 && end < last && blank(end + 1) {
        end += 1;
    }
    end
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
        assert_eq!(reach(r"key[\s:]?=[\s:]{0,3}\w+"), Reach::Lines(4));
        assert_eq!(reach("a\nb"), Reach::Lines(1));
        assert_eq!(reach(r"x(?:[\s,]|\n,\n)y"), Reach::Lines(2), "the widest branch counts");
        assert_eq!(reach(r"(?:a\s){3}"), Reach::Lines(3));
    }

    #[test]
    fn a_run_of_whitespace_crosses_one_line_that_is_not_blank() {
        assert_eq!(reach(r"key\s*=\s*\w+"), Reach::Lines(2));
        assert_eq!(reach(r"key\s?=\s{0,3}\w+"), Reach::Lines(2));
        assert_eq!(reach(r"x(?:\s|\n\n)+y"), Reach::Lines(1));
        assert_eq!(reach(r"(?-u:\s)+"), Reach::Lines(1));
        assert_eq!(reach(r"(?:a\s*)+"), Reach::Unbounded, "the run repeats with text between");
    }

    #[test]
    fn solid_bytes_are_counted_apart_from_whitespace() {
        let solid = |pattern: &str| super::max_solid(crate::parse(pattern).as_ref());
        assert_eq!(solid(r"key\s*=\s*(\w{8,32})"), Some(36));
        assert_eq!(solid(r"[^\t ;]{3,100}"), Some(100), "a class holding a line break still counts");
        assert_eq!(solid(r"a\s+b"), Some(2));
        assert_eq!(solid(r"(?s)BEGIN.*END"), None);
        assert_eq!(solid(r"(?:\#[^\n]*\n)*x"), None);
    }

    #[test]
    fn blank_lines_are_stepped_over_for_free() {
        // Lines 0..=9; 2, 3 and 7 are blank.
        let blank = |line: usize| [2, 3, 7].contains(&line);
        assert_eq!(super::back(5, 0, &blank), 5);
        assert_eq!(super::back(5, 1, &blank), 2, "4, and the blank lines before it");
        assert_eq!(super::back(5, 2, &blank), 1, "4, then 3 and 2 are blank, then 1");
        assert_eq!(super::back(4, 1, &blank), 1);
        assert_eq!(super::back(5, 9, &blank), 0);
        assert_eq!(super::forward(5, 1, 9, &blank), 7);
        assert_eq!(super::forward(5, 2, 9, &blank), 8);
        assert_eq!(super::forward(6, 1, 9, &blank), 8, "7 is blank");
        assert_eq!(super::forward(8, 3, 9, &blank), 9);
    }

    #[test]
    fn blank_lines_hold_nothing_but_whitespace() {
        assert!(super::is_blank(b""));
        assert!(super::is_blank(b" \t\r"));
        assert!(super::is_blank("\u{a0} \u{3000}".as_bytes()), "Unicode whitespace, as `\\s` reads it");
        assert!(!super::is_blank(b"  x"));
        assert!(!super::is_blank(" \u{e9}".as_bytes()));
        assert!(!super::is_blank(b" \xff "), "an invalid byte is not whitespace");
    }

    #[test]
    fn unbounded_line_breaks_reach_on() {
        assert_eq!(reach(r"-----BEGIN[\s\S]*?-----END"), Reach::Unbounded);
        assert_eq!(reach(r"(?s)a.+b"), Reach::Unbounded);
        assert_eq!(reach(r"(unclosed"), Reach::Unbounded, "unreadable: read more, not less");
    }

    #[test]
    fn gitleaks_generic_rule_reaches_a_few_lines() {
        let generic = r#"(?i)[\w.-]{0,50}?(?:access|auth|(?-i:[Aa]pi|API)|credential|creds|key|passw(?:or)?d|secret|token)(?:[ \t\w.-]{0,20})[\s'"]{0,3}(?:=|>|:{1,3}=|\|\||:|=>|\?=|,)[\x60'"\s=]{0,5}([\w.=-]{10,150}|[a-z0-9][a-z0-9+/]{11,}={0,3})(?:[\x60'"\s;]|\\[nr]|$)"#;
        assert_eq!(reach(generic), Reach::Lines(9));
    }
}
