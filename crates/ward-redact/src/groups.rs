//! Where a match's secret group lies, found with lazy DFAs instead of a backtracking engine.
//!
//! Once a regex has found a match, the regex crate resolves its capture groups with a bounded
//! backtracker over the match: for gitleaks' rules (long counted repetitions) that took more
//! time than finding the matches. Most of them are `A(G)B`: one group, at the top level of the
//! pattern. Then the group of a match `s..e` starts at a place `p` where `A` can match `s..p`
//! and `GB` can match `p..e`, and ends at a place `q` where `G` can match `p..q` and `B` can
//! match `q..e`. Every way through the pattern that matches `s..e` passes there, so when only
//! one such `p` (and `q`) exists it is the group's, whatever way a backtracker would take;
//! each set is read off a DFA that reports every place a match can end
//! ([`MatchKind::All`]). When several remain (the way taken decides between them), the
//! caller resolves the group with the regex as before.

use std::ops::Range;
use std::panic::{RefUnwindSafe, UnwindSafe};
use std::sync::Arc;

use regex_automata::hybrid::dfa::{Cache, DFA};
use regex_automata::nfa::thompson::{self, WhichCaptures};
use regex_automata::util::pool::Pool;
use regex_automata::{Anchored, Input, MatchKind};
use regex_syntax::hir::{Hir, HirKind};

/// At most this much memory per lazy DFA and thread: the pieces are small patterns.
const CACHE_CAPACITY: usize = 1 << 20;

type CachesFn = Box<dyn Fn() -> Caches + Send + Sync + UnwindSafe + RefUnwindSafe>;

/// Finds the one group of an `A(G)B` pattern in its matches.
pub(crate) struct GroupFinder {
    dfas: Arc<Dfas>,
    caches: Pool<Caches, CachesFn>,
}

impl std::fmt::Debug for GroupFinder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GroupFinder")
    }
}

struct Dfas {
    /// `A`, forward.
    before: DFA,
    /// `GB`, backward.
    group_and_after: DFA,
    /// `G`, forward.
    group: DFA,
    /// `B`, backward.
    after: DFA,
}

struct Caches {
    before: Cache,
    group_and_after: Cache,
    group: Cache,
    after: Cache,
    /// Places found, reused from match to match.
    places: Vec<usize>,
    fits: Vec<usize>,
}

impl GroupFinder {
    /// For a pattern (as parsed by [`crate::parse`]) made of pieces one of which is its only
    /// capture group; `None` for any other shape, or if a piece does not build as a DFA.
    pub(crate) fn new(hir: &Hir) -> Option<Self> {
        if hir.properties().explicit_captures_len() != 1 {
            return None;
        }
        let HirKind::Concat(parts) = hir.kind() else { return None };
        let at = parts.iter().position(|part| matches!(part.kind(), HirKind::Capture(_)))?;
        let HirKind::Capture(capture) = parts[at].kind() else { return None };
        let group = (*capture.sub).clone();
        let after = Hir::concat(parts[at + 1..].to_vec());
        let dfas = Dfas {
            before: dfa(&Hir::concat(parts[..at].to_vec()), false)?,
            group_and_after: dfa(&Hir::concat(vec![group.clone(), after.clone()]), true)?,
            group: dfa(&group, false)?,
            after: dfa(&after, true)?,
        };
        let dfas = Arc::new(dfas);
        let shared = Arc::clone(&dfas);
        let create: CachesFn = Box::new(move || Caches {
            before: shared.before.create_cache(),
            group_and_after: shared.group_and_after.create_cache(),
            group: shared.group.create_cache(),
            after: shared.after.create_cache(),
            places: Vec::new(),
            fits: Vec::new(),
        });
        Some(Self { dfas, caches: Pool::new(create) })
    }

    /// The group of the match `whole` of the pattern in `text`, if only one place fits it.
    pub(crate) fn find(&self, text: &[u8], whole: Range<usize>) -> Option<Range<usize>> {
        let dfas = &self.dfas;
        let mut caches = self.caches.get();
        let Caches { before, group_and_after, group, after, places, fits } = &mut *caches;
        let (s, e) = (whole.start, whole.end);
        ends(&dfas.before, before, text, s..e, places)?;
        if places.len() > 1 {
            beginnings(&dfas.group_and_after, group_and_after, text, s..e, fits)?;
            places.retain(|p| fits.contains(p));
        }
        let [p] = places[..] else { return None };
        beginnings(&dfas.after, after, text, p..e, places)?;
        if places.len() > 1 {
            ends(&dfas.group, group, text, p..e, fits)?;
            places.retain(|q| fits.contains(q));
        }
        let [q] = places[..] else { return None };
        Some(p..q)
    }
}

/// A lazy DFA for `hir` that reports every place a match can end (forward) or begin
/// (`reverse`), searched anchored.
fn dfa(hir: &Hir, reverse: bool) -> Option<DFA> {
    let nfa = thompson::Compiler::new()
        .configure(thompson::Config::new().reverse(reverse).which_captures(WhichCaptures::None))
        .build_from_hir(hir)
        .ok()?;
    DFA::builder()
        .configure(DFA::config().match_kind(MatchKind::All).cache_capacity(CACHE_CAPACITY))
        .build_from_nfa(nfa)
        .ok()
}

/// Into `found`, every `p` in `span` such that `dfa` matches `text[span.start..p]` (with the
/// bytes around it as context). `None` if the DFA gives up.
fn ends(dfa: &DFA, cache: &mut Cache, text: &[u8], span: Range<usize>, found: &mut Vec<usize>) -> Option<()> {
    found.clear();
    let input = Input::new(text).span(span.clone()).anchored(Anchored::Yes);
    let mut state = dfa.start_state_forward(cache, &input).ok()?;
    for at in span.clone() {
        state = dfa.next_state(cache, state, text[at]).ok()?;
        // A DFA sees a match one byte after it ends (that byte may decide an assertion).
        if state.is_match() {
            found.push(at);
        } else if state.is_dead() {
            return Some(());
        } else if state.is_quit() {
            return None;
        }
    }
    state = match text.get(span.end) {
        Some(&next) => dfa.next_state(cache, state, next).ok()?,
        None => dfa.next_eoi_state(cache, state).ok()?,
    };
    if state.is_match() {
        found.push(span.end);
    }
    (!state.is_quit()).then_some(())
}

/// Into `found`, every `p` in `span` such that the reversed `dfa` matches `text[p..span.end]`.
fn beginnings(
    dfa: &DFA,
    cache: &mut Cache,
    text: &[u8],
    span: Range<usize>,
    found: &mut Vec<usize>,
) -> Option<()> {
    found.clear();
    let input = Input::new(text).span(span.clone()).anchored(Anchored::Yes);
    let mut state = dfa.start_state_reverse(cache, &input).ok()?;
    for at in span.clone().rev() {
        state = dfa.next_state(cache, state, text[at]).ok()?;
        if state.is_match() {
            found.push(at + 1);
        } else if state.is_dead() {
            return Some(());
        } else if state.is_quit() {
            return None;
        }
    }
    state = match span.start.checked_sub(1) {
        Some(before) => dfa.next_state(cache, state, text[before]).ok()?,
        None => dfa.next_eoi_state(cache, state).ok()?,
    };
    if state.is_match() {
        found.push(span.start);
    }
    (!state.is_quit()).then_some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn finder(pattern: &str) -> Option<GroupFinder> {
        GroupFinder::new(&crate::parse(pattern)?)
    }

    /// Wherever the finder answers, it answers what the regex's own capture engine does.
    fn agrees(pattern: &str, text: &[u8]) -> usize {
        let regex = crate::compile("test", pattern).expect("pattern");
        let finder = finder(pattern).expect("an A(G)B pattern");
        let mut answered = 0;
        for caps in regex.captures_iter(text) {
            let (whole, group) = (caps.get(0).expect("match"), caps.get(1).expect("group"));
            if let Some(found) = finder.find(text, whole.range()) {
                assert_eq!(found, group.range(), "{pattern} on {:?}", String::from_utf8_lossy(text));
                answered += 1;
            }
        }
        answered
    }

    const GENERIC: &str = r#"(?i)(?:access|auth|(?-i:[Aa]pi|API)|credential|creds|key|passw(?:or)?d|secret|token)(?:[ \t\w.-]{0,20})[\s'"]{0,3}(?:=|>|:{1,3}=|\|\||:|=>|\?=|,)[\x60'"\s=]{0,5}([\w.=-]{10,150}|[a-z0-9][a-z0-9+/]{11,}={0,3})(?:[\x60'"\s;]|\\[nr]|$)"#;
    const JWT: &str = r#"\b(ey[a-zA-Z0-9]{17,}\.ey[a-zA-Z0-9\/\\_-]{17,}\.(?:[a-zA-Z0-9\/\\_-]{10,}={0,2})?)(?:[\x60'"\s;]|\\[nr]|$)"#;

    #[test]
    fn the_group_of_typical_secrets_is_found_without_the_backtracker() {
        let text = b"payments-api request_id=abcdefgh12345678 token: 'q8Zk3xP0vL7mQ2'\n\
            auth = \"Zx81Lk0Qw7Er5Ty\" key==abc1234567890== api_key=Zx81Lk0Qw7Er5Ty\\n\
            jwt=eyJhbGciOiJIUzI1NiJ9a.eyJzdWIiOiIxMjM0NTY3ODkw.SflKxwRJSMeKKF2QT4fwpM\n";
        // Of the five, `key==abc…` alone is left to the regex: its group may start at either `=`.
        assert_eq!(agrees(GENERIC, text), 4);
        assert_eq!(agrees(JWT, text), 1);
    }

    #[test]
    fn patterns_of_another_shape_are_left_to_the_regex() {
        assert!(finder("no groups").is_none());
        assert!(finder("(a)(b)").is_none());
        assert!(finder("x(?:(a)|b)").is_none());
        assert!(finder("x(a)").is_some());
    }

    /// Every rule of ward's standard set that gets a finder, over text full of secrets written by
    /// others (Nosey Parker's rule files, examples and all).
    #[test]
    fn every_rule_places_its_groups_as_its_regex_does() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/testdata/noseyparker-rules");
        let mut text = Vec::new();
        for entry in std::fs::read_dir(dir).expect("shared test data") {
            text.extend(std::fs::read(entry.expect("entry").path()).expect("file"));
        }
        let (rules, _) = crate::RuleSet::standard().expect("rules");
        let (mut finders, mut matched, mut answered, mut matches) = (0, 0, 0, 0);
        for search in &rules.searches {
            let Some(finder) = search.groups() else { continue };
            finders += 1;
            matched += usize::from(search.regex.is_match(&text));
            for caps in search.regex.captures_iter(&text) {
                let (whole, group) = (caps.get(0).expect("match"), caps.get(1).map(|g| g.range()));
                matches += 1;
                if let Some(found) = finder.find(&text, whole.range()) {
                    assert_eq!(Some(found), group, "{} at {:?}", search.regex, whole.range());
                    answered += 1;
                }
            }
        }
        eprintln!("{finders} rules with a finder, {matched} matching: {answered} of {matches} groups placed");
        assert!(finders >= 150 && matched >= 40 && matches >= 400 && answered * 10 >= matches * 9);
    }

    proptest! {
        #[test]
        fn the_group_found_is_the_regex_engines(
            text in proptest::collection::vec(proptest::sample::select(
                b" \t\n=:'\"`;\\-_.,aeikpstnyAK0123456789".to_vec()), 0..200),
            pattern in proptest::sample::select(vec![
                GENERIC,
                JWT,
                r"\b(a+)a*",
                r"k(?:ey)?[ =:]*([a-z0-9=]{2,8})(?:\s|$)",
                r"(?:a|ab)(b*a?)b?",
                r"\b(?i:key)\s*[:=]\s*([\w=]+)\b",
            ]),
        ) {
            agrees(pattern, &text);
        }
    }
}
