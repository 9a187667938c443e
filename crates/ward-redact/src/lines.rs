//! Redacting a few lines of a chunk without the rest of it: a search needs only the lines its
//! pattern may match, and redacting whole chunks for them is most of what it costs.
//!
//! A rule is near when its matches reach few lines (at most [`NARROW`] that are not blank, see
//! [`crate::reach`]) or hold few bytes other than whitespace (at most [`NARROW_SOLID`]): it is run
//! around each line, over the lines a match of it touching the line can lie on, when one of its
//! keywords is on them (or it has none). Those lines end where a match cannot run through a line
//! whole ([`crate::interior`]): a `key =` … `"value"` match can run through a line holding `=`
//! alone, not through a log line, so most windows are a line or two.
//!
//! A rule that reaches farther is run once for the chunk, over exactly the regions whole-chunk
//! redaction gives it, and what it finds on each line is kept. A fast look for a few literals
//! first tells most chunks apart where no such rule can match (`FarGate`); else one pass of a
//! small automaton over the chunk finds its keywords, and whether each part of its pattern can
//! match at all (a chunk without `pass` cannot hold `user=… pass=…`). A line
//! is redacted alone only when every value found on it lies within it; a value that runs over a
//! line break sends the caller back to redacting the whole chunk.
//!
//! Whole-chunk redaction scans merged regions around every keyword of the chunk; a near rule's
//! window around a line starts elsewhere, so where its matches overlap across the window's
//! start, the two may choose different ones. Every rule still sees all the lines its matches can
//! reach; the tests compare both on realistic logs, and check over random ones that a line alone
//! never shows a byte its chunk's redaction hides (it may hide more, or name a value's kind
//! otherwise).

use std::ops::Range;

use aho_corasick::AhoCorasick;

use crate::crossing;
use crate::interior::{ByteSet, Interior};
use crate::reach;
use crate::{Counts, Finding, RedactError, Replace, Rule, RuleSet, Search, keywords, merge};

/// Rules whose matches reach at most this many lines that are not blank, or hold at most
/// [`NARROW_SOLID`] bytes that are not whitespace, are near: run around each line. The others,
/// once over the chunk.
const NARROW: usize = 12;
const NARROW_SOLID: usize = 2048;

/// A near rule whose matches can run through lines holding at most this many solid bytes is
/// tight: log lines hold more.
const TIGHT_SOLID: usize = 64;

/// Bytes of a chunk on each side of the lines wanted that are cut into lines for them (see
/// [`RuleSet::redact_lines`]): the windows around a log line are a few lines.
const AROUND_BYTES: usize = 4096;

/// A literal shorter than this says little about a chunk (it is in most): the gate does not
/// look for it.
const GATE_SHORTEST: usize = 4;
/// A part with more literals than this is looked for by what they all begin with.
const GATE_LIST: usize = 4;

/// What the line path knows of a rule set, built with it.
#[derive(Debug)]
pub(crate) struct LinePath {
    /// The literals the rules that reach far are looked for with, in one pass over the chunk:
    /// their keywords, and what each part of their pattern holds one of.
    wide_literals: Option<AhoCorasick>,
    /// For each of those literals, what finding it says.
    wide_roles: Vec<Vec<Role>>,
    /// For each rule, its parts' places among all parts (a chunk that lacks a part's literals
    /// cannot hold a match).
    wide_parts: Vec<Range<usize>>,
    /// Rules that reach far and have no keyword: they run over the whole chunk.
    wide_unkeyed: Vec<usize>,
    /// Whether a rule reaches far.
    wide: Vec<bool>,
    /// What a chunk must hold for a rule that reaches far to find anything in it.
    gate: FarGate,
    /// Whether a near rule's matches may run through a log line: they reach lines without a
    /// bound, or may run through long lines of letters or digits ([`crate::interior`]). Such
    /// rules' keywords are looked for apart from the others', over more lines.
    loose: Vec<bool>,
    /// What the windows of the other near rules that span lines all lie in: the lines each of
    /// these reaches (how far, through what), whichever is wider.
    tight: Vec<(usize, Interior)>,
    /// The loose rules' keywords, and which rules each wakes.
    loose_keywords: Option<AhoCorasick>,
    loose_woken_by: Vec<Vec<usize>>,
    /// The farthest a loose rule reaches in lines, of those not bounded by their solid bytes.
    loose_reach: usize,
    /// The most solid bytes a loose rule holds, of those bounded by them (on log lines, a
    /// tighter bound than their reach).
    loose_solid: usize,
}

/// A cheap look at a chunk before the pass for the rules that reach far: it needs only a few
/// short literals (one of the beginnings of each of a part's literals), so one fast pass tells
/// most chunks apart, those where no such rule can match.
#[derive(Debug)]
struct FarGate {
    /// The literals (`None`: no rule reaches far).
    literals: Option<EveryLiteral>,
    /// For each literal, the gate's parts it stands for.
    parts_of: Vec<Vec<usize>>,
    /// For each rule that reaches far, its parts among the gate's: all must be in the chunk.
    rules: Vec<Range<usize>>,
    /// A rule reaches far with nothing to look for (no keyword, no part): every chunk may hold
    /// its matches.
    open: bool,
}

impl FarGate {
    /// From each far rule's lists of literals, each of which a match holds one of.
    fn new(rules: Vec<Vec<Vec<Vec<u8>>>>) -> Result<Self, RedactError> {
        let (mut literals, mut parts_of): (Vec<Vec<u8>>, Vec<Vec<usize>>) = (Vec::new(), Vec::new());
        let (mut ranges, mut parts, mut open) = (Vec::new(), 0, false);
        for lists in rules {
            let usable: Vec<Vec<Vec<u8>>> = lists.into_iter().filter_map(gate_literals).collect();
            open |= usable.is_empty();
            ranges.push(parts..parts + usable.len());
            for list in usable {
                for literal in list {
                    let literal = literal.to_ascii_lowercase();
                    match literals.iter().position(|l| *l == literal) {
                        Some(at) => parts_of[at].push(parts),
                        None => {
                            literals.push(literal);
                            parts_of.push(vec![parts]);
                        }
                    }
                }
                parts += 1;
            }
        }
        let literals = if literals.is_empty() { None } else { Some(EveryLiteral::new(literals)?) };
        Ok(Self { literals, parts_of, rules: ranges, open })
    }

    /// Whether some rule that reaches far may match in `text`.
    fn may_match(&self, text: &[u8]) -> bool {
        let Some(literals) = &self.literals else { return self.open };
        if self.open {
            return true;
        }
        let mut seen = vec![false; self.rules.iter().map(|r| r.end).max().unwrap_or(0)];
        // Most literals are seen again and again (`user`, `bearer`): only a part seen for the
        // first time can complete a rule.
        let mut all_seen = |literal: usize| {
            let mut new = false;
            for &part in &self.parts_of[literal] {
                new |= !std::mem::replace(&mut seen[part], true);
            }
            new && self.rules.iter().any(|parts| seen[parts.clone()].iter().all(|&part| part))
        };
        LOWERCASE.with_borrow_mut(|lower| {
            lower.clear();
            lower.extend(text.iter().map(u8::to_ascii_lowercase));
            literals.any(lower, &mut all_seen)
        })
    }
}

thread_local! {
    /// A chunk lowercased for [`FarGate::may_match`], its buffer kept for the next.
    static LOWERCASE: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Lowercase literals, each occurrence of each of them found in lowercase text. Not with an
/// automaton's overlapping search, which is many times slower than a leftmost one (it cannot use
/// the SIMD search in front): the longest literal at each place, then the literals it begins
/// with, are all that begin there.
#[derive(Debug)]
struct EveryLiteral {
    finder: LiteralFinder,
    /// For each literal, those it begins with (itself among them).
    beginnings: Vec<Vec<usize>>,
}

/// The SIMD search (Teddy) where the machine has it: left to choose, the automaton may look for
/// the literals' first bytes instead, and `-` or `p` are everywhere in a log.
#[derive(Debug)]
enum LiteralFinder {
    Packed(aho_corasick::packed::Searcher),
    Automaton(AhoCorasick),
}

impl EveryLiteral {
    fn new(literals: Vec<Vec<u8>>) -> Result<Self, RedactError> {
        let beginnings = literals
            .iter()
            .map(|literal| {
                (0..literals.len()).filter(|&other| literal.starts_with(&literals[other])).collect()
            })
            .collect();
        let packed = aho_corasick::packed::Config::new()
            .match_kind(aho_corasick::packed::MatchKind::LeftmostLongest)
            .builder()
            .extend(&literals)
            .build();
        let finder = match packed {
            Some(searcher) => LiteralFinder::Packed(searcher),
            None => LiteralFinder::Automaton(
                aho_corasick::AhoCorasickBuilder::new()
                    .match_kind(aho_corasick::MatchKind::LeftmostLongest)
                    .build(&literals)
                    .map_err(|e| RedactError::Load(e.to_string()))?,
            ),
        };
        Ok(Self { finder, beginnings })
    }

    /// Whether `found` says yes to one of the literals (by index) found in `text`; each is told
    /// once per place it is at, until then.
    fn any(&self, text: &[u8], found: &mut dyn FnMut(usize) -> bool) -> bool {
        let mut from = 0;
        let next = |from: usize| match &self.finder {
            LiteralFinder::Packed(searcher) => {
                searcher.find_in(text, aho_corasick::Span::from(from..text.len()))
            }
            LiteralFinder::Automaton(automaton) => {
                automaton.find(aho_corasick::Input::new(text).span(from..text.len()))
            }
        };
        while let Some(hit) = next(from) {
            if self.beginnings[hit.pattern().as_usize()].iter().any(|&literal| found(literal)) {
                return true;
            }
            from = hit.start() + 1;
        }
        false
    }
}

/// What the gate looks for in place of a part's `literals` (a text without it cannot hold any
/// of them): the literals themselves when few, else what they all begin with; `None` when that
/// is too short to be worth looking for.
fn gate_literals(literals: Vec<Vec<u8>>) -> Option<Vec<Vec<u8>>> {
    let shortened = if literals.len() <= GATE_LIST {
        literals
    } else {
        let first = literals.first()?;
        let common = literals.iter().fold(first.len(), |common, literal| {
            common.min(first.iter().zip(literal).take_while(|(a, b)| a.eq_ignore_ascii_case(b)).count())
        });
        vec![first[..common].to_vec()]
    };
    shortened.iter().all(|literal| literal.len() >= GATE_SHORTEST).then_some(shortened)
}

/// What a literal found over the chunk says.
#[derive(Debug, Clone, Copy)]
enum Role {
    /// A keyword of this rule is on the line.
    Wakes(usize),
    /// This part (of all rules' parts) is in the chunk.
    Part(usize),
}

impl LinePath {
    pub(crate) fn new(
        rules: &[Rule],
        searches: &[Search],
        parsed: &[Option<regex_syntax::hir::Hir>],
        prefiltered: bool,
    ) -> Result<Self, RedactError> {
        let reach_of = |search: &Search| search.reach.bound();
        let few_lines = |search: &Search| reach_of(search).is_some_and(|n| n <= NARROW);
        let few_bytes = |search: &Search| search.solid.is_some_and(|n| n <= NARROW_SOLID);
        let wide: Vec<bool> = searches.iter().map(|s| !few_lines(s) && !few_bytes(s)).collect();
        // Rules that run through few solid bytes of a line, and rules that run through no
        // letter or digit: all of either kind lie in the window of one made of them all.
        let few_solid = |interior: &Interior| interior.solid.is_some_and(|n| n <= TIGHT_SOLID);
        let no_text = |interior: &Interior| !interior.bytes.any(|b: u8| b.is_ascii_alphanumeric());
        let loose: Vec<bool> = searches
            .iter()
            .zip(&wide)
            .map(|(s, &wide)| {
                let tight = s.interior.as_ref().is_some_and(|i| few_solid(i) || no_text(i));
                !wide && reach_of(s) != Some(0) && (!few_lines(s) || !tight)
            })
            .collect();
        let spanning = |i: usize| !loose[i] && !wide[i] && reach_of(&searches[i]) != Some(0);
        let interiors =
            || (0..searches.len()).filter(|&i| spanning(i)).filter_map(|i| Some((i, searches[i].interior?)));
        let mut tight = Vec::new();
        let solid_few: Vec<(usize, Interior)> = interiors().filter(|(_, i)| few_solid(i)).collect();
        let textless: Vec<(usize, Interior)> = interiors().filter(|(_, i)| !few_solid(i)).collect();
        if !solid_few.is_empty() {
            let reach = solid_few.iter().filter_map(|&(i, _)| reach_of(&searches[i])).max().unwrap_or(0);
            let most = solid_few.iter().filter_map(|(_, i)| i.solid).max();
            tight.push((reach, Interior { bytes: ByteSet::all(), solid: most }));
        }
        if !textless.is_empty() {
            let reach = textless.iter().filter_map(|&(i, _)| reach_of(&searches[i])).max().unwrap_or(0);
            let bytes = textless.iter().map(|(_, i)| i.bytes).fold(ByteSet::default(), ByteSet::union);
            tight.push((reach, Interior { bytes, solid: None }));
        }
        let loosely = || searches.iter().zip(&loose).filter(|(_, loose)| **loose).map(|(s, _)| s);
        let loose_reach = loosely().filter(|s| !few_bytes(s)).filter_map(reach_of).max().unwrap_or(0);
        let loose_solid = loosely().filter(|s| few_bytes(s)).filter_map(|s| s.solid).max().unwrap_or(0);
        // The keywords of loose rules as the whole chunk looks for them (a small set looks for
        // none: it runs every rule).
        let loose_keywords =
            rules.iter().enumerate().filter(|&(index, _)| prefiltered && loose[index]).flat_map(
                |(index, rule)| {
                    rule.keywords_or_literals(parsed[index].as_ref())
                        .into_iter()
                        .map(move |keyword| (keyword, index))
                },
            );
        let (loose_keywords, loose_woken_by) = crate::keyword_automaton(loose_keywords)?;
        let mut keywords_of: Vec<(Vec<u8>, usize)> = Vec::new();
        let mut parts_of: Vec<(Vec<u8>, usize)> = Vec::new();
        let mut wide_parts = vec![0..0; rules.len()];
        let mut parts = 0;
        let mut wide_unkeyed = Vec::new();
        let mut gated = Vec::new();
        for (index, rule) in rules.iter().enumerate().filter(|(i, _)| wide[*i]) {
            // A small set runs every rule everywhere, its keywords unused: here only what the
            // regex requires may stand for them.
            let found = if prefiltered {
                rule.keywords_or_literals(parsed[index].as_ref())
            } else {
                parsed[index].as_ref().and_then(keywords::required_literals).unwrap_or_default()
            };
            if found.is_empty() {
                wide_unkeyed.push(index);
            }
            let each = parsed[index].as_ref().map(keywords::required_each).unwrap_or_default();
            // Its matches lie around its keywords, and hold one of each part's literals.
            gated.push(each.iter().cloned().chain((!found.is_empty()).then(|| found.clone())).collect());
            keywords_of.extend(found.into_iter().map(|keyword| (keyword, index)));
            wide_parts[index] = parts..parts + each.len();
            for literals in each {
                parts_of.extend(literals.into_iter().map(|literal| (literal, parts)));
                parts += 1;
            }
        }
        // The keywords exactly as whole-chunk redaction looks for them, so that the regions are
        // the same; and the parts' literals, in the same pass.
        let roles = keywords_of
            .into_iter()
            .map(|(keyword, rule)| (keyword, Role::Wakes(rule)))
            .chain(parts_of.into_iter().map(|(literal, part)| (literal, Role::Part(part))));
        let (wide_literals, wide_roles) = crate::keyword_automaton(roles)?;
        Ok(Self {
            wide_literals,
            wide_roles,
            wide_parts,
            wide_unkeyed,
            wide,
            gate: FarGate::new(gated)?,
            loose,
            tight,
            loose_keywords,
            loose_woken_by,
            loose_reach,
            loose_solid,
        })
    }
}

/// The lines of a chunk: where each begins and ends, which are blank.
pub(crate) struct Lines<'t> {
    text: &'t [u8],
    /// Where the text begins in the chunk it is part of.
    offset: usize,
    /// Whether the chunk goes on before the text's first line, and after its last, unseen: a
    /// window that reaches one of them might go on past it.
    cut: (bool, bool),
    newlines: Vec<usize>,
    /// Each line's ASCII bytes that are not whitespace, once counted.
    solid: Vec<std::cell::Cell<Option<u32>>>,
    /// The bytes each line holds, once looked at.
    bytes: Vec<std::cell::Cell<Option<ByteSet>>>,
}

impl<'t> Lines<'t> {
    pub(crate) fn new(text: &'t [u8]) -> Self {
        Self::part(text, 0, (false, false))
    }

    /// The lines of `text`, a part of a chunk from `offset` on, which goes on before it and after
    /// it as `cut` says.
    fn part(text: &'t [u8], offset: usize, cut: (bool, bool)) -> Self {
        let newlines: Vec<usize> = memchr::memchr_iter(b'\n', text).collect();
        let solid = vec![std::cell::Cell::new(None); newlines.len() + 1];
        let bytes = vec![std::cell::Cell::new(None); newlines.len() + 1];
        Self { text, offset, cut, newlines, solid, bytes }
    }

    /// Whether lines `first..=last` reach a side where the text goes on unseen.
    fn at_edge(&self, (first, last): (usize, usize)) -> bool {
        (first == 0 && self.cut.0) || (last == self.last() && self.cut.1)
    }

    pub(crate) fn text(&self) -> &'t [u8] {
        self.text
    }

    pub(crate) fn newlines(&self) -> &[usize] {
        &self.newlines
    }

    /// The number of the last line.
    pub(crate) fn last(&self) -> usize {
        self.newlines.len()
    }

    /// The line `at` (a byte offset) is on.
    fn of(&self, at: usize) -> usize {
        self.newlines.partition_point(|&newline| newline < at)
    }

    pub(crate) fn start(&self, line: usize) -> usize {
        if line == 0 { 0 } else { self.newlines[line - 1] + 1 }
    }

    /// Where the line ends, before its newline.
    pub(crate) fn end(&self, line: usize) -> usize {
        self.newlines.get(line).copied().unwrap_or(self.text.len())
    }

    /// The bytes `line` holds that are ASCII and not whitespace.
    fn solid(&self, line: usize) -> usize {
        let counted = self.solid[line].get().unwrap_or_else(|| {
            let n =
                self.text[self.start(line)..self.end(line)].iter().filter(|&&b| reach::is_solid(b)).count();
            let n = u32::try_from(n).unwrap_or(u32::MAX);
            self.solid[line].set(Some(n));
            n
        });
        counted as usize
    }

    /// Whether a match can run through `line` whole, holding only what `interior` allows.
    fn through(&self, line: usize, interior: &Interior) -> bool {
        interior.solid.is_none_or(|most| self.solid(line) <= most) && self.bytes(line).within(interior.bytes)
    }

    /// The bytes `line` holds.
    fn bytes(&self, line: usize) -> ByteSet {
        self.bytes[line].get().unwrap_or_else(|| {
            let bytes = ByteSet::of(&self.text[self.start(line)..self.end(line)]);
            self.bytes[line].set(Some(bytes));
            bytes
        })
    }

    fn blank(&self, line: usize) -> bool {
        reach::is_blank(&self.text[self.start(line)..self.end(line)])
    }

    /// The lines a match holding at most `solid` bytes that are ASCII and not whitespace can
    /// touch from `line`: it covers whole the lines between its first and its last.
    fn around_solid(&self, line: usize, solid: usize) -> (usize, usize) {
        let count = |l: usize| self.solid(l);
        let (mut first, mut covered) = (line, 0);
        while first > 0 && covered <= solid {
            first -= 1;
            covered += count(first);
        }
        let (mut last, mut covered) = (line, 0);
        while last < self.last() && covered <= solid {
            last += 1;
            covered += count(last);
        }
        (first, last)
    }

    /// The lines a match of a rule can touch from `line`: within its reach in lines that are
    /// not blank, through lines made only of the bytes it can run through ([`crate::interior`]),
    /// and within what its solid bytes can cover; on a side where no match can run over the
    /// line's break ([`crate::crossing`]), the line itself.
    fn window(&self, line: usize, search: &Search) -> (usize, usize) {
        let span = self.span(line, search.reach.bound(), search.solid, search.interior.as_ref());
        match &search.crossings {
            Some(places) => self.cut(
                line,
                span,
                &|before, after| crossing::can_cross(places, before, after),
                &|before, after| crossing::can_leave(places, before, after),
            ),
            None => span,
        }
    }

    /// `(first, last)` around `line`, cut back to the line on a side where no match can run over
    /// its break: `into` says whether a match can hold the bytes on both sides of a break (the
    /// last of a line, the first of the next), `leave` whether one holding the byte before it
    /// can go on past it (a window that ends with a line does not hold its break).
    fn cut(
        &self,
        line: usize,
        (first, last): (usize, usize),
        into: &dyn Fn(u8, u8) -> bool,
        leave: &dyn Fn(u8, u8) -> bool,
    ) -> (usize, usize) {
        let across = |above: usize, crosses: &dyn Fn(u8, u8) -> bool| {
            let (before, after) =
                (self.start(above)..self.end(above), self.start(above + 1)..self.end(above + 1));
            match (self.text[before].last(), self.text[after].first()) {
                (Some(&before), Some(&after)) => crosses(before, after),
                // A blank line's break follows another: left as it is.
                _ => true,
            }
        };
        let first = if first < line && !across(line - 1, into) { line } else { first };
        let last = if last > line && !across(line, leave) { line } else { last };
        (first, last)
    }

    /// The lines a match can touch from `line` that reaches `reach` lines that are not blank
    /// (`None`: any number), holds `solid` bytes that are not whitespace at most, and runs
    /// through lines holding only what `interior` allows (`None`: anything).
    fn span(
        &self,
        line: usize,
        reach: Option<usize>,
        solid: Option<usize>,
        interior: Option<&Interior>,
    ) -> (usize, usize) {
        let reach = reach.unwrap_or(usize::MAX);
        if reach == 0 {
            return (line, line);
        }
        // The lines its solid bytes can cover, first: often fewer than its reach.
        let (top, bottom) = solid.map_or((0, self.last()), |solid| self.around_solid(line, solid));
        let through = |l: usize| interior.is_none_or(|interior| self.through(l, interior));
        let blank = |l: usize| self.blank(l);
        let (mut first, mut last) = (line, line);
        let mut counted = 0;
        // A match touching `line` starts above `first` only if it runs through it.
        while first > top && (first == line || through(first)) {
            if !blank(first - 1) {
                if counted == reach {
                    break;
                }
                counted += 1;
            }
            first -= 1;
        }
        counted = 0;
        while last < bottom && (last == line || through(last)) {
            if !blank(last + 1) {
                if counted == reach {
                    break;
                }
                counted += 1;
            }
            last += 1;
        }
        (first, last)
    }

    /// The lines a match reaching `n` lines that are not blank can touch from `line`.
    pub(crate) fn around(&self, line: usize, n: usize) -> (usize, usize) {
        let blank = |l: usize| self.blank(l);
        (reach::back(line, n, &blank), reach::forward(line, n, self.last(), &blank))
    }
}

impl RuleSet {
    /// Redacts the lines `lines` of `chunk` (whole lines), each given as its bytes without the
    /// newline, in order, into `out`, each followed by a newline; or says `false` when they
    /// cannot be redacted apart from the rest of the chunk (see [`crate::lines`]), and the caller
    /// redacts it whole ([`RuleSet::redact`]). Nothing is written or counted then.
    pub fn redact_lines(
        &self,
        chunk: &[u8],
        lines: &[Range<usize>],
        replace: &dyn Replace,
        out: &mut Vec<u8>,
        counts: &mut Counts,
    ) -> bool {
        let (Some(first), Some(last)) = (lines.first(), lines.last()) else { return true };
        // Where no rule that reaches far can match, the windows around the lines wanted are a
        // few lines: only some bytes around them are cut into lines, and the whole chunk only
        // when a window reaches their edge.
        let far = self.line_path.gate.may_match(chunk);
        if !far {
            let start = first.start.saturating_sub(AROUND_BYTES);
            let start = memchr::memrchr(b'\n', &chunk[..start]).map_or(0, |at| at + 1);
            let end = chunk.len().min(last.end + AROUND_BYTES);
            // Up to the end of a line; the chunk's last newline too (its empty last line follows).
            let end = memchr::memchr(b'\n', &chunk[end..]).map_or(chunk.len(), |at| end + at);
            let end = if end + 1 == chunk.len() { chunk.len() } else { end };
            if (start, end) != (0, chunk.len()) {
                let index = Lines::part(&chunk[start..end], start, (start > 0, end < chunk.len()));
                if let Some(done) = self.redact_lines_in(&index, lines, &[], replace, out, counts) {
                    return done;
                }
            }
        }
        let index = Lines::new(chunk);
        let wide_found = if far { self.find_far(&index) } else { Vec::new() };
        self.redact_lines_in(&index, lines, &wide_found, replace, out, counts).unwrap_or(false)
    }

    /// [`RuleSet::redact_lines`] over `index` (some of the chunk's lines, or all), with what the
    /// rules that reach far found (`wide_found`); `None`, writing nothing, when a window reaches
    /// the edge of the lines `index` holds.
    fn redact_lines_in(
        &self,
        index: &Lines<'_>,
        lines: &[Range<usize>],
        wide_found: &[Finding],
        replace: &dyn Replace,
        out: &mut Vec<u8>,
        counts: &mut Counts,
    ) -> Option<bool> {
        let text = index.text();
        let (written, counted) = (out.len(), counts.clone());
        let mut found = Vec::new();
        for range in lines {
            found.clear();
            let line = index.of(range.start - index.offset);
            let (start, end) = (index.start(line), index.end(line));
            if !self.find_near(index, line, &mut found) {
                out.truncate(written);
                *counts = counted;
                return None;
            }
            found.extend(wide_found.iter().filter(|f| f.start <= end && f.end > start));
            // In the rules' order, as the whole chunk has them: of two values with the same
            // span, the first rule's kind names it.
            found.sort_by_key(|f| f.rule);
            // A value on this line and the next would join them in the whole chunk's output.
            if found.iter().any(|f| f.start < start || f.end > end) {
                out.truncate(written);
                *counts = counted;
                return Some(false);
            }
            let mut at = start;
            for finding in merge(std::mem::take(&mut found)) {
                out.extend_from_slice(&text[at..finding.start]);
                replace.replace(&self.rules[finding.rule].kind, &text[finding.start..finding.end], out);
                counts.add(finding.rule);
                at = finding.end;
            }
            out.extend_from_slice(&text[at..end]);
            out.push(b'\n');
        }
        Some(true)
    }

    /// What the rules that reach far find in the whole chunk: each over the regions
    /// [`RuleSet::find`] gives it.
    fn find_far(&self, index: &Lines<'_>) -> Vec<Finding> {
        let path = &self.line_path;
        let mut hits: Vec<(usize, usize)> = Vec::new();
        let mut seen = vec![false; path.wide_parts.iter().map(|r| r.end).max().unwrap_or(0)];
        if let Some(literals) = &path.wide_literals {
            for found in literals.find_overlapping_iter(index.text()) {
                for role in &path.wide_roles[found.pattern().as_usize()] {
                    match *role {
                        Role::Wakes(rule) => hits.push((rule, index.of(found.start()))),
                        Role::Part(part) => seen[part] = true,
                    }
                }
            }
        }
        hits.sort_unstable();
        hits.dedup();
        let mut found = Vec::new();
        let whole = 0..index.text().len();
        let possible = |rule: usize| seen[path.wide_parts[rule].clone()].iter().all(|&part| part);
        for group in hits.chunk_by(|a, b| a.0 == b.0) {
            let rule = group[0].0;
            if !possible(rule) {
                continue;
            }
            // A small set runs such a rule over the whole chunk; a large one around its keywords.
            let regions = if self.always.contains(&rule) {
                vec![(whole.start, whole.end)]
            } else {
                let woken: Vec<usize> = group.iter().map(|&(_, line)| line).collect();
                self.rule_regions(rule, &woken, index)
            };
            for (from, to) in regions {
                self.find_in_region(rule, index.text(), from..to, &mut found);
            }
        }
        for &rule in path.wide_unkeyed.iter().filter(|&&rule| possible(rule)) {
            self.find_in_region(rule, index.text(), whole.clone(), &mut found);
        }
        found
    }

    /// The values the rules that reach few lines find touching `line` (its newline included),
    /// each over the lines its matches can reach from it.
    fn find_near(&self, index: &Lines<'_>, line: usize, found: &mut Vec<Finding>) -> bool {
        let path = &self.line_path;
        let text = index.text();
        // Set when a window reaches the edge of what `index` holds: it might go on past it.
        let edge = std::cell::Cell::new(false);
        let window = |rule: usize| {
            let window = index.window(line, &self.searches[rule]);
            edge.set(edge.get() || index.at_edge(window));
            window
        };
        // The rules to run, each with its window: a few of the many (small lists, not one entry
        // per rule: a line costs too little for that).
        let mut woken: Vec<(usize, (usize, usize))> =
            self.always.iter().filter(|&&rule| !path.wide[rule]).map(|&rule| (rule, window(rule))).collect();
        // The windows of rules whose keyword was outside them.
        let mut not_woken: Vec<(usize, (usize, usize))> = Vec::new();
        // Wakes the rules (loose or not) a keyword on `hit_line` wakes, if that is in their window.
        let mut wake = |hit_line: usize, rules: &[usize], loose: bool| {
            for &rule in rules {
                if path.wide[rule] || path.loose[rule] != loose || woken.iter().any(|&(r, _)| r == rule) {
                    continue;
                }
                let (first, last) = match not_woken.iter().find(|&&(r, _)| r == rule) {
                    Some(&(_, known)) => known,
                    None => window(rule),
                };
                if (first..=last).contains(&hit_line) {
                    woken.push((rule, (first, last)));
                } else if !not_woken.iter().any(|&(r, _)| r == rule) {
                    not_woken.push((rule, (first, last)));
                }
            }
        };
        if let Some(prefilter) = &self.prefilter {
            // Every window of a rule that is not loose lies in this one.
            let (first, last) = path.tight.iter().fold((line, line), |(first, last), (reach, interior)| {
                let (top, bottom) = index.span(line, Some(*reach), None, Some(interior));
                (first.min(top), last.max(bottom))
            });
            if index.at_edge((first, last)) {
                return false;
            }
            let from = index.start(first);
            for hit in prefilter.find_overlapping_iter(&text[from..index.end(last)]) {
                wake(index.of(from + hit.start()), &self.woken_by[hit.pattern().as_usize()], false);
            }
        }
        if let Some(keywords) = &path.loose_keywords {
            // And every loose rule's in one of these.
            let (by_lines, by_bytes) =
                (index.around(line, path.loose_reach), index.around_solid(line, path.loose_solid));
            let (first, last) = (by_lines.0.min(by_bytes.0), by_lines.1.max(by_bytes.1));
            if index.at_edge((first, last)) {
                return false;
            }
            let from = index.start(first);
            for hit in keywords.find_overlapping_iter(&text[from..index.end(last)]) {
                wake(index.of(from + hit.start()), &path.loose_woken_by[hit.pattern().as_usize()], true);
            }
        }
        if edge.get() {
            return false;
        }
        let (line_start, line_end) = (index.start(line), index.end(line));
        let mut each = Vec::new();
        for (rule, (first, last)) in woken {
            each.clear();
            let region = index.start(first)..index.end(last);
            self.find_touching(rule, text, region, line_start..=line_end, &mut each);
            found.extend(each.iter().filter(|f| f.start <= line_end && f.end > line_start));
        }
        true
    }
}

#[cfg(test)]
mod tests;
