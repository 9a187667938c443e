//! Where a match can run over a line break: the bytes that can stand just before the break in a
//! match, and just after it, for each place in the pattern a break can be read.
//!
//! A rule whose matches may span lines is run around a wanted line over the lines before and
//! after it ([`crate::lines`]). Most such rules allow a break only at a few places (`key\s*=`
//! between the key and `=`), with only some bytes on either side: a match touching a log line
//! `… took=899ms` cannot come over from the line before it when that line ends with `s` and this
//! one begins with `2` and no place in the pattern reads `s`, a break and `2` in a row. Then the
//! rule's window around the line is the line alone on that side.
//!
//! Worked out on the pattern's Thompson NFA, like [`crate::interior`]: for each transition that
//! reads `\n` between a state reached from the start and one from which a match is reached, the
//! bytes read on the transitions into the first (through empty ones), and out of the second. A
//! match that may begin with the break may have anything before it; one that may end with the
//! break goes on past the line before it, unless it may as well end there at the end of the text
//! (`$`): a window that ends with a line does not hold its break.

use regex_automata::nfa::thompson::{self, NFA, State};
use regex_automata::util::look::Look;
use regex_automata::util::primitives::StateID;
use regex_syntax::hir::Hir;

use crate::interior::{ByteSet, edges_of};

/// More places a break can be read than this are taken together, as one.
const MOST_PLACES: usize = 32;

/// One place a match can read a line break.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Crossing {
    /// What can stand just before the break in the match (anything, where the match may begin
    /// with the break).
    before: ByteSet,
    /// What can stand just after it in the match.
    after: ByteSet,
    /// Whether the match may end with the break, though not just before it at the end of the
    /// text: then a window that ends with the line before the break (it does not hold the
    /// break) would not find it.
    ends: bool,
}

/// The places a match of `hir` can read a line break; `None` when that cannot be worked out
/// (a match may then run over any break).
pub(crate) fn crossings(hir: &Hir) -> Option<Vec<Crossing>> {
    let config = NFA::config().which_captures(thompson::WhichCaptures::None);
    let nfa = thompson::Compiler::new().configure(config).build_from_hir(hir).ok()?;
    let count = nfa.states().len();
    let edges: Vec<_> = nfa.states().iter().map(edges_of).collect();
    let id = |index: usize| StateID::new(index).ok();

    // The states a path from the start reaches, and those from which a match is reached.
    let mut from_start = vec![false; count];
    let mut stack = vec![nfa.start_anchored()];
    while let Some(state) = stack.pop() {
        if !std::mem::replace(&mut from_start[state.as_usize()], true) {
            stack.extend(edges[state.as_usize()].iter().map(|&(_, next)| next));
        }
    }
    let mut into: Vec<Vec<(bool, StateID)>> = vec![Vec::new(); count];
    for (from, out) in edges.iter().enumerate() {
        for &(range, next) in out {
            into[next.as_usize()].push((range.is_none(), id(from)?));
        }
    }
    let mut to_match = vec![false; count];
    let mut stack: Vec<StateID> = (0..count)
        .filter(|&state| matches!(nfa.states()[state], State::Match { .. }))
        .filter_map(id)
        .collect();
    while let Some(state) = stack.pop() {
        if !std::mem::replace(&mut to_match[state.as_usize()], true) {
            stack.extend(into[state.as_usize()].iter().map(|&(_, from)| from));
        }
    }

    let mut places = Vec::new();
    for (from, out) in edges.iter().enumerate() {
        for &(range, next) in out {
            if !range.is_some_and(|r| r.has_newline()) || !from_start[from] || !to_match[next.as_usize()] {
                continue;
            }
            // Before: the bytes read into `from`, over empty transitions back from it (the
            // states those reach are where a match stands before the break).
            let mut before = ByteSet::default();
            let mut standing = Vec::new();
            let mut seen = vec![false; count];
            let mut stack = vec![id(from)?];
            while let Some(state) = stack.pop() {
                if std::mem::replace(&mut seen[state.as_usize()], true) {
                    continue;
                }
                standing.push(state);
                if state == nfa.start_anchored() {
                    before = ByteSet::all();
                }
                for &(empty, previous) in &into[state.as_usize()] {
                    if empty {
                        stack.push(previous);
                    } else if from_start[previous.as_usize()] {
                        for (range, to) in &edges[previous.as_usize()] {
                            if *to == state
                                && let Some(range) = range
                            {
                                before.insert_range(range.start, range.end);
                            }
                        }
                    }
                }
            }
            // After: the bytes read out of `next`, over empty transitions on from it; and
            // whether the match may end with the break, unless it may also end before it at the
            // end of the text (`value(?:\s|$)` ends there with `$` in a window that ends with
            // the line, as it ends with the break in the chunk).
            let mut after = ByteSet::default();
            let mut ends_after = false;
            let mut seen = vec![false; count];
            let mut stack = vec![next];
            while let Some(state) = stack.pop() {
                if std::mem::replace(&mut seen[state.as_usize()], true) {
                    continue;
                }
                ends_after |= matches!(nfa.states()[state.as_usize()], State::Match { .. });
                for &(range, to) in &edges[state.as_usize()] {
                    match range {
                        None => stack.push(to),
                        Some(range) if to_match[to.as_usize()] => after.insert_range(range.start, range.end),
                        Some(_) => {}
                    }
                }
            }
            let ends = ends_after && !standing.iter().any(|&state| ends_at_end_of_text(&nfa, state));
            let place = Crossing { before, after, ends };
            if !places.contains(&place) {
                places.push(place);
            }
        }
    }
    if places.len() > MOST_PLACES {
        let none = Crossing { before: ByteSet::default(), after: ByteSet::default(), ends: false };
        let all = places.iter().fold(none, |all, p| Crossing {
            before: all.before.union(p.before),
            after: all.after.union(p.after),
            ends: all.ends || p.ends,
        });
        places = vec![all];
    }
    Some(places)
}

/// Whether a match can end at `state` where the text ends: over empty transitions, and the
/// assertions true there whatever came before (`$`, `\z`).
fn ends_at_end_of_text(nfa: &NFA, state: StateID) -> bool {
    let mut seen = vec![false; nfa.states().len()];
    let mut stack = vec![state];
    while let Some(state) = stack.pop() {
        if std::mem::replace(&mut seen[state.as_usize()], true) {
            continue;
        }
        match &nfa.states()[state.as_usize()] {
            State::Match { .. } => return true,
            State::Look { look: Look::End | Look::EndLF | Look::EndCRLF, next } => stack.push(*next),
            State::Capture { next, .. } => stack.push(*next),
            State::Union { alternates } => stack.extend(alternates.iter().copied()),
            State::BinaryUnion { alt1, alt2 } => stack.extend([*alt1, *alt2]),
            _ => {}
        }
    }
    false
}

/// Whether a match with these places can run over a break between `before` (the last byte of
/// a line) and `after` (the first of the next) into the next line: a match holding bytes of
/// both.
pub(crate) fn can_cross(places: &[Crossing], before: u8, after: u8) -> bool {
    places.iter().any(|place| place.before.contains(before) && place.after.contains(after))
}

/// Whether a match holding the last byte of a line, `before`, can go on past the line: over the
/// break into the next (beginning with `after`), or ending with the break.
pub(crate) fn can_leave(places: &[Crossing], before: u8, after: u8) -> bool {
    places.iter().any(|place| place.before.contains(before) && (place.ends || place.after.contains(after)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn places(pattern: &str) -> Vec<Crossing> {
        let hir = regex_syntax::ParserBuilder::new().utf8(false).build().parse(pattern).unwrap();
        crossings(&hir).unwrap()
    }

    #[test]
    fn a_break_is_crossed_only_between_the_bytes_the_pattern_puts_around_it() {
        let key = places(r"key\s*=\s*[a-z]+");
        // `key` then a break then `=`; `=` then a break then the value; breaks in a row.
        assert!(can_cross(&key, b'y', b'='));
        assert!(can_cross(&key, b'=', b'v'));
        assert!(can_cross(&key, b'y', b' '));
        assert!(can_cross(&key, b'\n', b'\n'));
        // A log line ending in `ms`, the next beginning with a date.
        assert!(!can_cross(&key, b's', b'2'));
        assert!(!can_cross(&key, b'y', b'v'));
        assert!(!can_leave(&key, b's', b'2'));
        // No break at all.
        assert!(places(r"key=[a-z]+").is_empty());
    }

    #[test]
    fn a_match_that_may_begin_or_end_with_a_break_has_anything_on_that_side() {
        let begins = places(r"\s+secret=[a-z]+");
        assert!(can_cross(&begins, b'x', b's'));
        assert!(!can_cross(&begins, b'x', b'q'));
        // Ending with the break: it leaves the line whatever comes next, though it holds nothing
        // of the next line.
        let ends = places(r"secret=[a-z]+\n");
        assert!(can_leave(&ends, b'z', b'2'));
        assert!(!can_cross(&ends, b'z', b'2'));
        assert!(!can_leave(&ends, b'=', b'2'));
        // Unless it may end at the end of the text as well: a window ending with the line finds
        // the same value.
        let or_end = places(r"secret=([a-z]+)(?:\s|$)");
        assert!(!can_leave(&or_end, b'z', b'2'));
    }
}
