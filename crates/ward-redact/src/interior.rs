//! The bytes a match can hold on a line it runs through, from the line break before that line
//! to the one after it.
//!
//! A match that reaches several lines touches a line either where it starts, where it ends, or
//! by running through it whole; and only a line made of these bytes can be run through. A log
//! line rarely is: `key =\n"…"` may run over a line holding `=` alone, never over
//! `2026-11-21T10:00:01Z INFO …`. So the lines a match touching a line can start on end at the
//! first line before it that holds another byte, and likewise after it ([`crate::lines`]).
//!
//! A line run through also holds at most so many bytes that are not whitespace
//! ([`crate::reach::is_solid`]): `Authorization\s*.{1,5}\s*Basic` can run through a line of five
//! bytes of any kind, not through a log line.
//!
//! Worked out on the pattern's Thompson NFA: the bytes on a transition that a path from the start
//! reaches after a line break and that leads to a match through another one with a byte after it
//! (a match that ends with a line break touches nothing of the line after it); and the longest
//! such path between two line breaks.

use regex_automata::nfa::thompson::{self, NFA, State, Transition};
use regex_automata::util::primitives::StateID;
use regex_syntax::hir::Hir;

/// What a line that a match runs through can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Interior {
    /// Its bytes.
    pub(crate) bytes: ByteSet,
    /// The most bytes that are not whitespace it holds (`None`: any number).
    pub(crate) solid: Option<usize>,
}

/// Counted up to this many solid bytes on a line run through; more count as any number.
const MOST_SOLID: usize = 256;

/// What can lie between two line breaks of one match of `hir` that goes on after the second;
/// `None` when that cannot be worked out (anything may, then).
pub(crate) fn interior(hir: &Hir) -> Option<Interior> {
    let config = NFA::config().which_captures(thompson::WhichCaptures::None);
    let nfa = thompson::Compiler::new().configure(config).build_from_hir(hir).ok()?;
    let count = nfa.states().len();
    let all_edges: Vec<Vec<(Option<Range>, StateID)>> = nfa.states().iter().map(edges_of).collect();
    let edges = |id: StateID| all_edges[id.as_usize()].iter().copied();

    // Forward: the states a path from the start reaches, without (0) and after (1) a line break.
    let mut after = vec![[false; 2]; count];
    let mut stack = vec![(nfa.start_anchored(), 0)];
    while let Some((id, broken)) = stack.pop() {
        if std::mem::replace(&mut after[id.as_usize()][broken], true) {
            continue;
        }
        for (range, next) in edges(id) {
            match range {
                None => stack.push((next, broken)),
                Some(range) => {
                    if range.other_than_newline() {
                        stack.push((next, broken));
                    }
                    if range.has_newline() {
                        stack.push((next, 1));
                    }
                }
            }
        }
    }

    // Backward: the states from which a match is reached at all (`ANY`), over at least one byte
    // (`SOME`), and over a line break with a byte after it (`ON`).
    const ANY: usize = 0;
    const SOME: usize = 1;
    const ON: usize = 2;
    let mut into: Vec<Vec<(Option<Range>, StateID)>> = vec![Vec::new(); count];
    for from in 0..count {
        let from = StateID::new(from).ok()?;
        for (range, next) in edges(from) {
            into[next.as_usize()].push((range, from));
        }
    }
    let mut before = vec![[false; 3]; count];
    let mut stack: Vec<(StateID, usize)> = (0..count)
        .filter(|&id| matches!(nfa.states()[id], State::Match { .. }))
        .filter_map(|id| Some((StateID::new(id).ok()?, ANY)))
        .collect();
    while let Some((id, reached)) = stack.pop() {
        if std::mem::replace(&mut before[id.as_usize()][reached], true) {
            continue;
        }
        for &(range, from) in &into[id.as_usize()] {
            match range {
                None => stack.push((from, reached)),
                Some(range) => {
                    stack.push((from, if reached == ON { ON } else { SOME }));
                    if reached != ANY && range.has_newline() {
                        stack.push((from, ON));
                    }
                }
            }
        }
    }

    let mut bytes = ByteSet::default();
    for (from, reached) in after.iter().enumerate() {
        let id = StateID::new(from).ok()?;
        for (range, next) in edges(id) {
            if let Some(range) = range
                && reached[1]
                && before[next.as_usize()][ON]
            {
                for byte in range.start..=range.end {
                    bytes.insert(byte);
                }
            }
        }
    }
    bytes.remove(b'\n');

    // The most solid bytes on a path between two line breaks, over the transitions above: from
    // the states a line break leads to, relaxed until nothing grows (or past `MOST_SOLID`).
    let inside = |id: StateID| after[id.as_usize()][1] && before[id.as_usize()][ON];
    let mut most: Vec<Option<usize>> = vec![None; count];
    let mut stack = Vec::new();
    for from in 0..count {
        for (range, next) in edges(StateID::new(from).ok()?) {
            if range.is_some_and(Range::has_newline) && inside(next) && most[next.as_usize()].is_none() {
                most[next.as_usize()] = Some(0);
                stack.push(next);
            }
        }
    }
    let mut unbounded = false;
    while let Some(id) = stack.pop() {
        let here = most[id.as_usize()].unwrap_or(0);
        for (range, next) in edges(id) {
            let step = match range {
                None => 0,
                Some(range) if range.other_than_newline() => usize::from(range.has_solid()),
                Some(_) => continue,
            };
            if !inside(next) || most[next.as_usize()].is_some_and(|there| there >= here + step) {
                continue;
            }
            if here + step > MOST_SOLID {
                unbounded = true;
                stack.clear();
                break;
            }
            most[next.as_usize()] = Some(here + step);
            stack.push(next);
        }
    }
    let solid = (!unbounded).then(|| most.iter().flatten().copied().max().unwrap_or(0));
    Some(Interior { bytes, solid })
}

/// A set of bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ByteSet([u64; 4]);

impl ByteSet {
    /// The bytes `text` holds.
    pub(crate) fn of(text: &[u8]) -> Self {
        // Marked in a table first: setting bits one by one waits on each before.
        let mut seen = [false; 256];
        for &byte in text {
            seen[usize::from(byte)] = true;
        }
        let mut set = Self::default();
        for (byte, _) in seen.iter().enumerate().filter(|(_, seen)| **seen) {
            set.0[byte >> 6] |= 1 << (byte & 63);
        }
        set
    }

    pub(crate) fn all() -> Self {
        Self([u64::MAX; 4])
    }

    pub(crate) fn union(self, other: Self) -> Self {
        let mut union = self;
        for (mine, theirs) in union.0.iter_mut().zip(other.0) {
            *mine |= theirs;
        }
        union
    }

    /// Whether one of the bytes is such that `f` says yes.
    pub(crate) fn any(self, f: impl Fn(u8) -> bool) -> bool {
        (0..=255u8).any(|byte| self.0[usize::from(byte >> 6)] & (1 << (byte & 63)) != 0 && f(byte))
    }

    /// Whether every byte of `self` is in `other`.
    pub(crate) fn within(self, other: Self) -> bool {
        self.0.iter().zip(other.0).all(|(mine, theirs)| mine & !theirs == 0)
    }

    pub(crate) fn contains(self, byte: u8) -> bool {
        self.0[usize::from(byte >> 6)] & (1 << (byte & 63)) != 0
    }

    fn insert(&mut self, byte: u8) {
        self.0[usize::from(byte >> 6)] |= 1 << (byte & 63);
    }

    pub(crate) fn insert_range(&mut self, start: u8, end: u8) {
        for byte in start..=end {
            self.insert(byte);
        }
    }

    fn remove(&mut self, byte: u8) {
        self.0[usize::from(byte >> 6)] &= !(1 << (byte & 63));
    }
}

/// The bytes a transition reads.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Range {
    pub(crate) start: u8,
    pub(crate) end: u8,
}

impl Range {
    pub(crate) fn has_newline(self) -> bool {
        self.start <= b'\n' && b'\n' <= self.end
    }

    fn other_than_newline(self) -> bool {
        self.start != b'\n' || self.end != b'\n'
    }

    fn has_solid(self) -> bool {
        (self.start..=self.end).any(crate::reach::is_solid)
    }
}

/// A state's transitions: on a range of bytes, or on none (`None`: an assertion, a choice, a
/// group's bounds are passed through; an assertion taken as always true only adds paths).
pub(crate) fn edges_of(state: &State) -> Vec<(Option<Range>, StateID)> {
    let on = |trans: &Transition| (Some(Range { start: trans.start, end: trans.end }), trans.next);
    match state {
        State::ByteRange { trans } => vec![on(trans)],
        State::Sparse(sparse) => sparse.transitions.iter().map(on).collect(),
        State::Dense(dense) => (0..=255u8)
            .zip(dense.transitions.iter())
            .filter(|(_, next)| **next != StateID::ZERO)
            .map(|(byte, &next)| (Some(Range { start: byte, end: byte }), next))
            .collect(),
        State::Look { next, .. } | State::Capture { next, .. } => vec![(None, *next)],
        State::Union { alternates } => alternates.iter().map(|&next| (None, next)).collect(),
        State::BinaryUnion { alt1, alt2 } => vec![(None, *alt1), (None, *alt2)],
        State::Fail | State::Match { .. } => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    fn parsed(pattern: &str) -> regex_syntax::hir::Hir {
        regex_syntax::ParserBuilder::new().utf8(false).build().parse(pattern).unwrap()
    }

    fn interior(pattern: &str) -> Option<String> {
        let bytes = super::interior(&parsed(pattern))?.bytes;
        Some((0..=255u8).filter(|&b| bytes.contains(b)).map(char::from).collect())
    }

    fn most_solid(pattern: &str) -> Option<usize> {
        super::interior(&parsed(pattern)).unwrap().solid
    }

    #[test]
    fn a_line_run_through_holds_few_solid_bytes_where_the_pattern_says_so() {
        // `xxxxx Basic` between a break after `Authorization` and one before the value.
        assert_eq!(most_solid(r"Authorization\s*.{1,5}\s*Basic\s+[a-z]+"), Some(10));
        assert_eq!(most_solid(r"key[ \n]*=[ \n]*[a-z]+"), Some(1));
        assert_eq!(most_solid(r"key\s*=\s*[a-z]+"), Some(1));
        // Any number of lines of any length.
        assert_eq!(most_solid(r"(?s)BEGIN.*END"), None);
        assert_eq!(most_solid(r"BEGIN[A-Za-z\n]+END"), None);
        // No line is run through.
        assert_eq!(most_solid(r"key=\s?[a-z]+"), Some(0));
    }

    #[test]
    fn only_what_lies_between_two_line_breaks_counts() {
        // `=` may stand alone on a line between `key` and its value; letters only where a match
        // starts or ends.
        assert_eq!(interior(r"key[ \n]*=[ \n]*[a-z]+").unwrap(), " =");
        assert_eq!(interior(r"key\s?=\s?[a-z]+").unwrap(), "=");
        // A value on a line of its own, the match ending with the line's break: it runs through
        // no line.
        assert_eq!(interior(r"key\s?=\s?[a-z]+\n").unwrap(), "=");
        assert_eq!(interior(r"key=\s?[a-z]+\n").unwrap(), "");
        // One line break at most: nothing lies between two.
        assert_eq!(interior(r"key\s?=[a-z]+").unwrap(), "");
        assert_eq!(interior(r"[a-z]+").unwrap(), "");
        // A block: anything in its body.
        let block = interior(r"-----BEGIN[A-Z ]*-----\n[A-Za-z0-9+/=\n]+-----END").unwrap();
        assert!(block.contains('Q') && block.contains('=') && !block.contains('-'), "{block}");
    }
}
