//! Redaction: secrets and personal data in log text become typed pseudonyms before any byte
//! leaves ward.
//!
//! A [`RuleSet`] is compiled once from rules (ward's built-ins, the gitleaks rule set loaded as
//! data, a team's own). Redacting a chunk of lines:
//! 1. a keyword prefilter (one Aho-Corasick automaton over every rule's keywords) says which
//!    rules can match at all; rules without keywords always run;
//! 2. each candidate rule's regex runs over the chunk; a match is kept when its checks pass
//!    (Luhn for cards, mod-97 for IBANs, a minimum entropy, the rule's allowlists);
//! 3. overlapping matches merge, and each span is replaced by what a [`Replace`] says: a keyed
//!    pseudonym (`<email:7f3a9c0d12e4>`, the same for the same value under one key) or a fixed
//!    placeholder.
//!
//! Pure: no files, no clock. [`stream`] redacts a reader into a writer in bounded memory.

mod builtin;
mod checks;
mod crossing;
pub mod gitleaks;
mod groups;
mod interior;
mod keywords;
mod lead;
mod lines;
pub mod noseyparker;
mod pseudonym;
mod reach;
pub mod stream;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex::bytes::Regex;

use std::ops::{Range, RangeInclusive};

use groups::GroupFinder;
use lead::Lead;
use reach::Reach;

pub use builtin::builtin_rules;
pub use pseudonym::{Placeholder, Pseudonyms, Replace};

/// gitleaks' default rules (MIT; `rules/gitleaks/`).
pub const GITLEAKS_RULES: &str = include_str!("../rules/gitleaks/gitleaks.toml");
/// Nosey Parker's rules (Apache-2.0; `rules/noseyparker/`).
pub const NOSEYPARKER_RULES: &str = include_str!("../rules/noseyparker/rules.toml");

/// The longest regex ward compiles (bytes of its compiled program), so that a rule cannot make
/// the engine slow or large.
const REGEX_SIZE_LIMIT: usize = 4 << 20;
/// Up to this many rules, each scans the whole chunk and no keyword prefilter runs.
const SMALL_RULE_SET: usize = 16;
/// Past this many separate regions of a chunk, a rule scans the whole chunk instead.
const MAX_REGIONS: usize = 16;
/// The lazy DFA's cache per regex, above regex's 2 MB default so that secret rules with large
/// case-insensitive classes rebuild their states less often. It fills only as far as the text
/// needs, but it is the worst case per rule and thread: kept small enough that hundreds of
/// rules cannot add up to an outage.
const DFA_CACHE_LIMIT: usize = 4 << 20;

#[derive(Debug, thiserror::Error)]
pub enum RedactError {
    #[error("rule `{id}`: the regex does not compile: {message}")]
    Regex { id: String, message: String },
    #[error("rule `{id}`: {message}")]
    Rule { id: String, message: String },
    #[error("the rules do not load: {0}")]
    Load(String),
}

/// A check a match must pass besides its regex.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    None,
    /// Payment card numbers: the Luhn checksum.
    Luhn,
    /// IBANs: the ISO 13616 mod-97 checksum.
    Iban,
}

/// Where an allowlist regex looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllowTarget {
    /// The value that would be redacted.
    Secret,
    /// The whole match.
    Match,
    /// The line the match is on.
    Line,
}

/// Matches of a rule that are not secrets after all (gitleaks' allowlists).
#[derive(Debug, Clone)]
pub struct Allow {
    pub target: AllowTarget,
    pub regexes: Vec<Regex>,
    /// Words (any case): a secret containing one is allowed.
    pub stopwords: Option<AhoCorasick>,
    /// Allowed only when every criterion given is met (a regex matches *and* a stopword occurs),
    /// not any one of them.
    pub all: bool,
}

impl Allow {
    /// Whether this list allows `secret`, found as `whole` in `text`.
    fn allows(&self, secret: &[u8], whole: &Range<usize>, text: &[u8]) -> bool {
        let regex = || {
            let target = match self.target {
                AllowTarget::Secret => secret,
                AllowTarget::Match => &text[whole.clone()],
                AllowTarget::Line => line_around(text, whole.start, whole.end),
            };
            self.regexes.iter().any(|re| re.is_match(target))
        };
        let word = || self.stopwords.as_ref().map(|words| words.is_match(secret));
        if self.all {
            (self.regexes.is_empty() || regex()) && word().unwrap_or(true)
        } else {
            word().unwrap_or(false) || regex()
        }
    }

    /// One automaton over all the words, so a secret is checked in one pass however many there
    /// are (gitleaks' generic rule has over a thousand).
    pub fn stopwords(words: &[String]) -> Result<Option<AhoCorasick>, RedactError> {
        if words.is_empty() {
            return Ok(None);
        }
        AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            // Secrets are short: a prefilter costs more to start than it saves on them.
            .prefilter(false)
            .kind(Some(aho_corasick::AhoCorasickKind::DFA))
            .build(words)
            .map(Some)
            .map_err(|e| RedactError::Load(e.to_string()))
    }
}

/// One redaction rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Unique: `email`, `gitleaks.aws-access-token`, …
    pub id: String,
    /// The pseudonym's type: `<KIND:…>`.
    pub kind: String,
    /// Lowercase; the rule runs only where one occurs (none: always).
    pub keywords: Vec<String>,
    pub regex: Regex,
    /// The capture group holding the value to redact; `None`: the first group that matched, or
    /// the whole match.
    pub group: Option<usize>,
    pub check: Check,
    /// Minimum Shannon entropy (bits per byte) of the value.
    pub min_entropy: Option<f32>,
    pub allow: Vec<Allow>,
    /// A match may span lines (a PEM block); other rules match within one line.
    pub multiline: bool,
    /// Redact every capture group that matched (a user name and its password), not one.
    pub all_groups: bool,
}

impl Rule {
    /// A rule from a pattern, compiled with ward's size limit.
    pub fn new(id: &str, kind: &str, keywords: &[&str], pattern: &str) -> Result<Self, RedactError> {
        Ok(Self {
            id: id.to_owned(),
            kind: kind.to_owned(),
            keywords: keywords.iter().map(|k| k.to_lowercase()).collect(),
            regex: compile(id, pattern)?,
            group: None,
            check: Check::None,
            min_entropy: None,
            allow: Vec::new(),
            multiline: false,
            all_groups: false,
        })
    }

    /// Values matching `pattern` are not secrets.
    pub fn allowing(mut self, pattern: &str) -> Result<Self, RedactError> {
        let regex = compile(&self.id, pattern)?;
        self.allow.push(Allow {
            target: AllowTarget::Secret,
            regexes: vec![regex],
            stopwords: None,
            all: false,
        });
        Ok(self)
    }

    pub fn multiline(mut self) -> Self {
        self.multiline = true;
        self
    }

    pub fn group(mut self, group: usize) -> Self {
        self.group = Some(group);
        self
    }

    pub fn check(mut self, check: Check) -> Self {
        self.check = check;
        self
    }

    /// The spans to redact in a match, handed to `keep`: the secret group (or every group, or
    /// the whole match) that passes the rule's checks.
    fn secret_spans(
        &self,
        groups: &Groups<'_>,
        whole: Range<usize>,
        text: &[u8],
        mut keep: impl FnMut(usize, usize),
    ) {
        let mut check = |value: Range<usize>| {
            if !value.is_empty() && self.is_secret(&text[value.clone()], &whole, text) {
                keep(value.start, value.end);
            }
        };
        match self.group {
            Some(group) => groups.get(group).into_iter().for_each(check),
            None => {
                let mut groups = (1..groups.len()).filter_map(|i| groups.get(i)).filter(|g| !g.is_empty());
                match groups.next() {
                    None => check(whole.clone()),
                    Some(first) => {
                        check(first);
                        if self.all_groups {
                            groups.for_each(check);
                        }
                    }
                }
            }
        }
    }

    /// The rule's keywords, or if it names none, the literals every match of it holds, when its
    /// regex (`parsed`) has a short list of them (most vendor tokens do: `ghp_`, `xoxb-`, …).
    fn keywords_or_literals(&self, parsed: Option<&regex_syntax::hir::Hir>) -> Vec<Vec<u8>> {
        if self.keywords.is_empty() {
            parsed.and_then(keywords::required_literals).unwrap_or_default()
        } else {
            self.keywords.iter().map(|k| k.as_bytes().to_vec()).collect()
        }
    }

    fn is_secret(&self, bytes: &[u8], whole: &Range<usize>, text: &[u8]) -> bool {
        let passes = match self.check {
            Check::None => true,
            Check::Luhn => checks::luhn(bytes),
            Check::Iban => checks::iban(bytes),
        };
        if !passes || self.min_entropy.is_some_and(|min| checks::entropy(bytes) < min) {
            return false;
        }
        !self.allow.iter().any(|allow| allow.allows(bytes, whole, text))
    }
}

/// An automaton looking for `literals` (ASCII case ignored, overlapping: a full DFA, the fastest
/// at that), and for each of its patterns what the literal stands for; `None` for no literals.
pub(crate) fn keyword_automaton<T>(
    literals: impl IntoIterator<Item = (Vec<u8>, T)>,
) -> Result<(Option<AhoCorasick>, Vec<Vec<T>>), RedactError> {
    let mut patterns: Vec<Vec<u8>> = Vec::new();
    let mut meaning: Vec<Vec<T>> = Vec::new();
    for (literal, what) in literals {
        match patterns.iter().position(|p| *p == literal) {
            Some(at) => meaning[at].push(what),
            None => {
                patterns.push(literal);
                meaning.push(vec![what]);
            }
        }
    }
    if patterns.is_empty() {
        return Ok((None, meaning));
    }
    let automaton = AhoCorasickBuilder::new()
        .ascii_case_insensitive(true)
        .match_kind(MatchKind::Standard)
        .kind(Some(aho_corasick::AhoCorasickKind::DFA))
        .build(&patterns)
        .map_err(|e| RedactError::Load(e.to_string()))?;
    Ok((Some(automaton), meaning))
}

/// `f` of each item, in order, computed on every core (at most eight, as many as the process
/// may use): compiling hundreds of patterns is most of the time a rule set takes to start.
pub(crate) fn map_on_cores<T: Sync, U: Send>(items: &[T], f: impl Fn(&T) -> U + Sync) -> Vec<U> {
    /// Items handed to a thread at a time: patterns differ a lot in cost, so threads take small
    /// batches as they finish rather than one equal share each.
    const BATCH: usize = 8;
    let threads = stream::Limits::parallel().threads.min(items.len().div_ceil(BATCH));
    if threads <= 1 {
        return items.iter().map(f).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut done: Vec<(usize, Vec<U>)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let batch = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let start = batch * BATCH;
                        if start >= items.len() {
                            return done;
                        }
                        let chunk = &items[start..items.len().min(start + BATCH)];
                        done.push((batch, chunk.iter().map(&f).collect()));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|worker| worker.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
            .collect()
    });
    done.sort_unstable_by_key(|(batch, _)| *batch);
    done.into_iter().flat_map(|(_, results)| results).collect()
}

/// `pattern` as the regex engine reads it when [`compile`] builds it (bytes, Unicode only if
/// it must), for what ward reads from a pattern itself: keywords, reach, a lead.
pub(crate) fn parse(pattern: &str) -> Option<regex_syntax::hir::Hir> {
    let parse = |unicode: bool| {
        regex_syntax::ParserBuilder::new().unicode(unicode).utf8(false).build().parse(pattern).ok()
    };
    parse(false).or_else(|| parse(true))
}

pub(crate) fn compile(id: &str, pattern: &str) -> Result<Regex, RedactError> {
    let build = |unicode: bool| {
        regex::bytes::RegexBuilder::new(pattern)
            .unicode(unicode)
            .size_limit(REGEX_SIZE_LIMIT)
            .dfa_size_limit(DFA_CACHE_LIMIT)
            .build()
    };
    build(false)
        .or_else(|_| build(true))
        .map_err(|e| RedactError::Regex { id: id.to_owned(), message: e.to_string() })
}

/// The kind of a pseudonym token's inside (`email:7f3a9c0d12e4`), if it has that shape.
fn token_kind(token: &[u8]) -> Option<&[u8]> {
    let colon = token.iter().rposition(|&b| b == b':')?;
    let (kind, digest) = (&token[..colon], &token[colon + 1..]);
    (!kind.is_empty()
        && kind.iter().all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
        && digest.len() == 2 * pseudonym::PSEUDONYM_BYTES
        && digest.iter().all(u8::is_ascii_hexdigit))
    .then_some(kind)
}

/// Whether `start..end` lies inside a `<kind:7f3a9c0d12e4>`-shaped token, and its kind.
fn pseudonym_kind(text: &[u8], start: usize, end: usize) -> Option<&[u8]> {
    let from = start.saturating_sub(64);
    let open = from + memchr::memrchr(b'<', &text[from..start])?;
    let close = memchr::memchr(b'>', &text[end..text.len().min(end + 2 * pseudonym::PSEUDONYM_BYTES + 2)])?;
    token_kind(&text[open + 1..end + close])
}

/// Counts the pseudonyms (`<email:7f3a9c0d12e4>`) in `text`, per kind.
pub fn count_pseudonyms(text: &[u8], counts: &mut std::collections::BTreeMap<String, u64>) {
    let mut rest = text;
    while let Some(open) = rest.iter().position(|&b| b == b'<') {
        rest = &rest[open + 1..];
        let Some(close) = rest.iter().take(120).position(|&b| b == b'>') else { continue };
        if let Some(kind) = token_kind(&rest[..close]) {
            *counts.entry(String::from_utf8_lossy(kind).into_owned()).or_default() += 1;
            rest = &rest[close + 1..];
        }
    }
}

/// The line (without its newline) that holds `start..end`.
fn line_around(text: &[u8], start: usize, end: usize) -> &[u8] {
    &text[line_bounds(text, start, end)]
}

/// Where the lines (without the last newline) that `start..end` touches begin and end.
fn line_bounds(text: &[u8], start: usize, end: usize) -> Range<usize> {
    let from = memchr::memrchr(b'\n', &text[..start]).map_or(0, |i| i + 1);
    let to = memchr::memchr(b'\n', &text[end..]).map_or(text.len(), |i| end + i);
    from..to
}

/// How many values each rule redacted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    per_rule: Vec<u64>,
}

impl Counts {
    pub fn total(&self) -> u64 {
        self.per_rule.iter().sum()
    }

    fn add(&mut self, rule: usize) {
        if self.per_rule.len() <= rule {
            self.per_rule.resize(rule + 1, 0);
        }
        self.per_rule[rule] += 1;
    }

    pub fn merge(&mut self, other: &Counts) {
        for (rule, n) in other.per_rule.iter().enumerate() {
            if *n > 0 {
                if self.per_rule.len() <= rule {
                    self.per_rule.resize(rule + 1, 0);
                }
                self.per_rule[rule] += n;
            }
        }
    }
}

/// Rules compiled together, with the keyword prefilter in front of them.
#[derive(Debug)]
pub struct RuleSet {
    rules: Vec<Rule>,
    prefilter: Option<AhoCorasick>,
    /// For each prefilter pattern, the rules it wakes.
    woken_by: Vec<Vec<usize>>,
    /// Rules without keywords.
    always: Vec<usize>,
    /// For each rule, how its matches are searched for.
    searches: Vec<Search>,
    /// For redacting a few lines of a chunk alone.
    line_path: lines::LinePath,
}

/// How a rule's matches are searched for.
#[derive(Debug)]
pub(crate) struct Search {
    /// The rule's regex, or what is left of it once a lead is split off.
    regex: Regex,
    lead: Option<Lead>,
    /// How many lines from its keyword's a match can reach.
    reach: Reach,
    /// The most ASCII bytes that are not whitespace a match holds ([`reach::max_solid`]).
    solid: Option<usize>,
    /// What a match can hold on a line it runs through ([`interior`]); `None`: anything.
    interior: Option<interior::Interior>,
    /// Where a match can run over a line break ([`crossing`]); `None`: anywhere.
    crossings: Option<Vec<crossing::Crossing>>,
    /// Places the secret group of a match without the regex's capture engine, when the
    /// pattern has the shape for it: built for the rules that match something (most never do
    /// in a given log, and the start stays quick).
    groups: std::sync::OnceLock<Option<GroupFinder>>,
    /// The pattern searched, for `groups`, if its secret is one group.
    one_group: Option<regex_syntax::hir::Hir>,
}

impl Search {
    /// `parsed`: the rule's pattern, if it parses.
    fn new(rule: &Rule, parsed: Option<&regex_syntax::hir::Hir>) -> Self {
        let reach = if rule.multiline { Reach::of(parsed) } else { Reach::Line };
        let split = parsed
            .and_then(Lead::split)
            .and_then(|(lead, rest)| Some((lead, compile(&rule.id, &rest.to_string()).ok()?, rest)));
        let (regex, lead, searched) = match split {
            Some((lead, regex, rest)) => (regex, Some(lead), Some(rest)),
            None => (rule.regex.clone(), None, parsed.cloned()),
        };
        let one_group = searched.filter(|_| matches!(rule.group, None | Some(1)) && !rule.all_groups);
        let solid = if rule.multiline { reach::max_solid(parsed) } else { Some(0) };
        let spans_lines = reach.bound() != Some(0);
        let interior = parsed.filter(|_| spans_lines).and_then(interior::interior);
        let crossings = parsed.filter(|_| spans_lines).and_then(crossing::crossings);
        Self { regex, lead, reach, solid, interior, crossings, groups: std::sync::OnceLock::new(), one_group }
    }

    fn groups(&self) -> Option<&GroupFinder> {
        self.groups.get_or_init(|| self.one_group.as_ref().and_then(GroupFinder::new)).as_ref()
    }
}

/// The capture groups of a match: from the regex, or its one group as the DFAs placed it.
enum Groups<'h> {
    Captured(regex::bytes::Captures<'h>),
    One(Range<usize>),
}

impl Groups<'_> {
    /// Where group `index` (from 1) matched, if it took part.
    fn get(&self, index: usize) -> Option<Range<usize>> {
        match self {
            Self::Captured(caps) => caps.get(index).map(|m| m.range()),
            Self::One(group) => (index == 1).then(|| group.clone()),
        }
    }

    /// The number of groups, the whole match's included.
    fn len(&self) -> usize {
        match self {
            Self::Captured(caps) => caps.len(),
            Self::One(_) => 2,
        }
    }
}

/// ward's built-in rules, the vendored gitleaks rule set (ids `gitleaks.*`) and Nosey Parker's
/// rules (ids `np.*`), with the rules ward cannot use left out and listed.
pub fn standard_rules() -> Result<gitleaks::Loaded, RedactError> {
    let gitleaks = gitleaks::load(GITLEAKS_RULES)?;
    let noseyparker = noseyparker::load(NOSEYPARKER_RULES)?;
    let mut rules = builtin_rules()?;
    rules.extend(gitleaks.rules);
    rules.extend(noseyparker.rules);
    let mut skipped = gitleaks.skipped;
    skipped.extend(noseyparker.skipped);
    Ok(gitleaks::Loaded { rules, skipped })
}

/// A match that will be replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finding {
    pub start: usize,
    pub end: usize,
    pub rule: usize,
}

impl RuleSet {
    pub fn new(rules: Vec<Rule>) -> Result<Self, RedactError> {
        let mut seen = std::collections::HashSet::new();
        for rule in &rules {
            if !seen.insert(rule.id.as_str()) {
                return Err(RedactError::Rule {
                    id: rule.id.clone(),
                    message: "the id is used twice".into(),
                });
            }
        }
        let mut keywords: Vec<(Vec<u8>, usize)> = Vec::new();
        let mut always = Vec::new();
        // A few rules each run faster over the whole chunk, on their own regex's literal
        // prefilter, than behind a shared keyword pass; many rules need the keyword pass.
        let prefiltered = rules.len() > SMALL_RULE_SET;
        let parsed: Vec<Option<regex_syntax::hir::Hir>> = map_on_cores(&rules, |r| parse(r.regex.as_str()));
        for (index, rule) in rules.iter().enumerate() {
            let found =
                if prefiltered { rule.keywords_or_literals(parsed[index].as_ref()) } else { Vec::new() };
            if found.is_empty() {
                always.push(index);
            }
            keywords.extend(found.into_iter().map(|keyword| (keyword, index)));
        }
        // The keyword pass runs on every chunk, overlapping (a few hundred keywords make a small
        // DFA).
        let (prefilter, woken_by) = keyword_automaton(keywords)?;
        let pairs: Vec<(&Rule, Option<&regex_syntax::hir::Hir>)> =
            rules.iter().zip(parsed.iter().map(Option::as_ref)).collect();
        let searches = map_on_cores(&pairs, |(rule, hir)| Search::new(rule, *hir));
        let line_path = lines::LinePath::new(&rules, &searches, &parsed, prefiltered)?;
        Ok(Self { rules, prefilter, woken_by, always, searches, line_path })
    }

    /// ward's built-in rules.
    pub fn builtin() -> Result<Self, RedactError> {
        Self::new(builtin_rules()?)
    }

    /// [`standard_rules`] compiled together.
    pub fn standard() -> Result<(Self, Vec<(String, String)>), RedactError> {
        let standard = standard_rules()?;
        Ok((Self::new(standard.rules)?, standard.skipped))
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The rules that run on every chunk: no keyword (named or derived) wakes them.
    pub fn unprefiltered(&self) -> Vec<&str> {
        self.always.iter().map(|&i| self.rules[i].id.as_str()).collect()
    }

    /// Whether `start..end` lies inside a pseudonym this rule set writes (`<email:7f3a9c0d12e4>`, a
    /// kind of one of its rules): what was redacted once is never redacted again. Only ward's
    /// own kinds count, so that a log cannot shield a secret by dressing it up as one.
    fn inside_own_pseudonym(&self, text: &[u8], start: usize, end: usize) -> bool {
        pseudonym_kind(text, start, end)
            .is_some_and(|kind| self.rules.iter().any(|r| r.kind.as_bytes() == kind))
    }

    /// `(rule id, count)` for every rule that redacted something.
    pub fn summary(&self, counts: &Counts) -> Vec<(String, u64)> {
        counts
            .per_rule
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .filter_map(|(i, n)| self.rules.get(i).map(|r| (r.id.clone(), *n)))
            .collect()
    }

    /// What each rule must scan: rules without keywords the whole text, the others only the
    /// lines where one of their keywords occurs and the lines a match can reach from there. A
    /// keyword somewhere in a 64 KB chunk says little; on a line it says a lot.
    fn regions(&self, text: &[u8]) -> Vec<(usize, Vec<(usize, usize)>)> {
        let mut regions: Vec<(usize, Vec<(usize, usize)>)> =
            self.always.iter().map(|&rule| (rule, vec![(0, text.len())])).collect();
        let Some(prefilter) = &self.prefilter else { return regions };
        let lines = lines::Lines::new(text);
        let mut hits: Vec<(usize, usize)> = Vec::new();
        // The last line each rule was woken on: a keyword found again on it adds nothing.
        let mut woken_on = vec![usize::MAX; self.rules.len()];
        // Keywords come roughly in the order of the text: the line is found by stepping from the
        // last one's.
        let mut line = 0;
        let (newlines, last_line) = (lines.newlines(), lines.last());
        for found in prefilter.find_overlapping_iter(text) {
            while line > 0 && newlines[line - 1] >= found.start() {
                line -= 1;
            }
            while line < last_line && newlines[line] < found.start() {
                line += 1;
            }
            for &rule in &self.woken_by[found.pattern().as_usize()] {
                if woken_on[rule] != line {
                    woken_on[rule] = line;
                    hits.push((rule, line));
                }
            }
        }
        hits.sort_unstable();
        hits.dedup();
        for group in hits.chunk_by(|a, b| a.0 == b.0) {
            let rule = group[0].0;
            let woken: Vec<usize> = group.iter().map(|&(_, line)| line).collect();
            regions.push((rule, self.rule_regions(rule, &woken, &lines)));
        }
        regions.sort_by_key(|(rule, _)| *rule);
        regions
    }

    /// The byte ranges a rule woken by keywords on the lines `woken` (in order) scans: the lines
    /// a match can reach from each, adjacent ones joined.
    fn rule_regions(&self, rule: usize, woken: &[usize], lines: &lines::Lines<'_>) -> Vec<(usize, usize)> {
        let mut ranges: Vec<(usize, usize)> = Vec::new();
        for &line in woken {
            let (first, last) = match self.searches[rule].reach.bound() {
                Some(n) => lines.around(line, n),
                // A match that may hold any number of line breaks starts at most a little before
                // its keyword and may run on to the end of the chunk (a private key block is
                // dozens of lines; the stream never splits one between chunks).
                None => (line.saturating_sub(2), lines.last()),
            };
            match ranges.last_mut() {
                // Adjacent or overlapping lines scan as one region.
                Some(range) if range.1 + 1 >= first => range.1 = range.1.max(last),
                _ => ranges.push((first, last)),
            }
        }
        // Many small regions cost more in calls than one pass over the chunk.
        if ranges.len() > MAX_REGIONS {
            vec![(0, lines.text().len())]
        } else {
            ranges.into_iter().map(|(first, last)| (lines.start(first), lines.end(last))).collect()
        }
    }

    /// The spans to replace in `text` (whole lines), sorted, overlaps merged. A match spans
    /// lines only if its rule says so; one that would otherwise is looked for line by line.
    pub fn find(&self, text: &[u8]) -> Vec<Finding> {
        let mut found = Vec::new();
        for (rule, regions) in self.regions(text) {
            for (from, to) in regions {
                self.find_in_region(rule, text, from..to, &mut found);
            }
        }
        merge(found)
    }

    /// The values `rule` finds in `text[region]` (whole lines).
    fn find_in_region(&self, rule: usize, text: &[u8], region: Range<usize>, found: &mut Vec<Finding>) {
        self.find_touching(rule, text, region.clone(), region.start..=region.end, found);
    }

    /// The values `rule` finds in `text[region]` (whole lines) from its matches that touch
    /// `touching` (in `text`, ends included): the others are only stepped over, not taken apart
    /// into their groups, and the search stops past it.
    fn find_touching(
        &self,
        rule: usize,
        text: &[u8],
        region: Range<usize>,
        touching: RangeInclusive<usize>,
        found: &mut Vec<Finding>,
    ) {
        let from = region.start;
        let wanted = touching.start().saturating_sub(from)..=touching.end().saturating_sub(from);
        let region = &text[region];
        for (groups, whole) in self.matches(rule, region, wanted) {
            if !self.rules[rule].multiline && region[whole.clone()].contains(&b'\n') {
                self.find_in_lines(rule, text, from + whole.start, from + whole.end, found);
            } else {
                self.keep(rule, &groups, whole, region, from, found);
            }
        }
    }

    /// Each match of `rule` in `haystack` that touches `wanted` (ends included), with the span
    /// of the whole match (which starts before what the regex searched for when a lead was split
    /// off it).
    fn matches<'h>(
        &'h self,
        rule: usize,
        haystack: &'h [u8],
        wanted: RangeInclusive<usize>,
    ) -> Box<dyn Iterator<Item = (Groups<'h>, Range<usize>)> + 'h> {
        let search = &self.searches[rule];
        let mut floor = 0;
        let mut whole = move |found: &regex::bytes::Match<'_>| {
            let start =
                search.lead.as_ref().map_or(found.start(), |lead| lead.start(haystack, found.start(), floor));
            floor = found.end();
            start..found.end()
        };
        let (first, last) = wanted.into_inner();
        // Each match starts where the one before ended, or after.
        let not_past = move |whole: &Range<usize>| whole.start <= last;
        let touching = move |whole: &Range<usize>| whole.end >= first;
        match search.groups() {
            // The regex's capture engine only where the DFAs cannot tell (the same match, found
            // again from its start), and only for the matches wanted.
            Some(finder) => Box::new(
                search
                    .regex
                    .find_iter(haystack)
                    .map(move |found| {
                        let whole = whole(&found);
                        (found, whole)
                    })
                    .take_while(move |(_, whole)| not_past(whole))
                    .filter(move |(_, whole)| touching(whole))
                    .filter_map(move |(found, whole)| {
                        let groups = match finder.find(haystack, found.range()) {
                            Some(group) => Groups::One(group),
                            None => Groups::Captured(search.regex.captures_at(haystack, found.start())?),
                        };
                        Some((groups, whole))
                    }),
            ),
            None => Box::new(
                search
                    .regex
                    .captures_iter(haystack)
                    .filter_map(move |caps| {
                        let whole = whole(&caps.get(0)?);
                        Some((caps, whole))
                    })
                    .take_while(move |(_, whole)| not_past(whole))
                    .filter(move |(_, whole)| touching(whole))
                    .map(|(caps, whole)| (Groups::Captured(caps), whole)),
            ),
        }
    }

    /// Records the values a match of `rule` in `region` (at `offset` in the chunk) redacts.
    fn keep(
        &self,
        rule: usize,
        groups: &Groups<'_>,
        whole: Range<usize>,
        region: &[u8],
        offset: usize,
        found: &mut Vec<Finding>,
    ) {
        self.rules[rule].secret_spans(groups, whole, region, |start, end| {
            if !self.inside_own_pseudonym(region, start, end) {
                found.push(Finding { start: offset + start, end: offset + end, rule });
            }
        });
    }

    /// Runs one rule on each line that `start..end` touches.
    fn find_in_lines(&self, rule: usize, text: &[u8], start: usize, end: usize, found: &mut Vec<Finding>) {
        let lines = line_bounds(text, start, end);
        let mut offset = lines.start;
        for line in text[lines].split(|&b| b == b'\n') {
            for (groups, whole) in self.matches(rule, line, 0..=line.len()) {
                self.keep(rule, &groups, whole, line, offset, found);
            }
            offset += line.len() + 1;
        }
    }

    /// Redacts `text` (whole lines) into `out`, counting per rule.
    pub fn redact(&self, text: &[u8], replace: &dyn Replace, out: &mut Vec<u8>, counts: &mut Counts) {
        let mut at = 0;
        for finding in self.find(text) {
            out.extend_from_slice(&text[at..finding.start]);
            let rule = &self.rules[finding.rule];
            replace.replace(&rule.kind, &text[finding.start..finding.end], out);
            counts.add(finding.rule);
            at = finding.end;
        }
        out.extend_from_slice(&text[at..]);
    }

    /// Redacts `text[from..]` (whole lines) into `out`, with `text[..from]` as context: lines
    /// before them, already handed out. A match that begins in the context and reaches past
    /// `from` (a rule whose matches span lines: a key on one line, its value on the next) is
    /// replaced from `from` on, by the pseudonym of its whole value; matches within the context
    /// alone were handed out already and are left out.
    pub fn redact_after(
        &self,
        text: &[u8],
        from: usize,
        replace: &dyn Replace,
        out: &mut Vec<u8>,
        counts: &mut Counts,
    ) {
        let mut at = from;
        for finding in self.find(text).into_iter().filter(|f| f.end > from) {
            out.extend_from_slice(&text[at..finding.start.max(from)]);
            let rule = &self.rules[finding.rule];
            replace.replace(&rule.kind, &text[finding.start..finding.end], out);
            counts.add(finding.rule);
            at = finding.end;
        }
        out.extend_from_slice(&text[at.max(from)..]);
    }
}

/// Sorts findings and merges overlapping ones into the earliest (then longest) one's rule.
fn merge(mut found: Vec<Finding>) -> Vec<Finding> {
    found.sort_by(|a, b| a.start.cmp(&b.start).then(b.end.cmp(&a.end)));
    let mut merged: Vec<Finding> = Vec::with_capacity(found.len());
    for f in found {
        match merged.last_mut() {
            Some(last) if f.start < last.end => last.end = last.end.max(f.end),
            _ => merged.push(f),
        }
    }
    merged
}

#[cfg(test)]
mod tests;
