//! A search's prefilter: the chunks of a log worth redacting.
//!
//! A search matches its pattern against each line *as redacted*, so that a pattern can never
//! test for a secret. Redacting is what a search costs; most chunks (64 KB of whole lines) of a
//! log hold no line a selective pattern matches. Every match of the pattern begins with one of a
//! few literals (read from the pattern with `regex-syntax`'s extractor); when each of them is
//! sure to stand in a line's raw text wherever it stands in the line's redacted text, a chunk
//! whose raw text holds none of them cannot hold a match, and is not redacted at all. The
//! chunks redacted are the same as without the prefilter, so what the search returns is too.
//!
//! Why a literal can be sure: redacted text is the raw text with values replaced by pseudonyms,
//! `<KIND:HEX>`. A literal with neither `<` nor `>` cannot reach into or across a pseudonym, so
//! it stands either in raw text between pseudonyms (then in the raw line too) or inside one
//! pseudonym's `KIND:HEX`. A literal that could stand inside one (`email`, `il:3f`, `0a1b`) is
//! not sure, and neither is one with `<` or `>` (`<email:`, which finds the redacted lines):
//! then every chunk is redacted, as before.

use std::ops::Range;

use aho_corasick::{AhoCorasick, Input};
use regex_syntax::hir::literal::{ExtractKind, Extractor};

/// The most literals a prefilter looks for: more say little (a class of many characters).
const MAX_LITERALS: usize = 64;

/// Looks for the literals every match of a pattern begins with.
#[derive(Debug, Clone)]
pub struct Prefilter {
    literals: AhoCorasick,
}

impl Prefilter {
    /// For `pattern` matched against text redacted with pseudonyms of `kinds` (none: raw text):
    /// a prefilter, when the pattern's literals make one that can never skip a match.
    pub fn new(pattern: &str, kinds: Option<&[&str]>) -> Option<Self> {
        // As `regex::bytes` parses it: any byte, not only UTF-8, may be matched.
        let hir = regex_syntax::ParserBuilder::new().utf8(false).build().parse(pattern).ok()?;
        let mut extractor = Extractor::new();
        extractor.kind(ExtractKind::Prefix);
        // As extracted where few enough (the longer the literals, the fewer chunks hold them);
        // else shortened to fewer (a case-insensitive word has many spellings).
        let mut seq = extractor.extract(&hir);
        if seq.len().is_none_or(|n| n > MAX_LITERALS) {
            seq.optimize_for_prefix_by_preference();
        }
        let literals: Vec<&[u8]> = seq.literals()?.iter().map(|l| l.as_bytes()).collect();
        if literals.is_empty() || literals.len() > MAX_LITERALS || literals.iter().any(|l| l.is_empty()) {
            return None;
        }
        if let Some(kinds) = kinds
            && literals.iter().any(|l| !sure_in_raw_text(l, kinds))
        {
            return None;
        }
        AhoCorasick::new(literals).ok().map(|literals| Self { literals })
    }

    /// The lines of `chunk` (whole lines) that may match once redacted: where each is, without
    /// its newline, in order.
    pub fn lines(&self, chunk: &[u8]) -> Vec<Range<usize>> {
        let mut lines = Vec::new();
        let mut from = 0;
        while let Some(found) = self.literals.find(Input::new(chunk).span(from..chunk.len())) {
            let start = memchr::memrchr(b'\n', &chunk[..found.start()]).map_or(0, |i| i + 1);
            let end =
                memchr::memchr(b'\n', &chunk[found.start()..]).map_or(chunk.len(), |i| found.start() + i);
            lines.push(start..end);
            // The next line, if any.
            from = (end + 1).min(chunk.len());
            if end == chunk.len() {
                break;
            }
        }
        lines
    }
}

/// Whether `literal`, found in redacted text, is sure to be in the raw text too: it cannot reach
/// into a pseudonym (no `<`, no `>`) nor stand inside one's `KIND:HEX`.
fn sure_in_raw_text(literal: &[u8], kinds: &[&str]) -> bool {
    if literal.contains(&b'<') || literal.contains(&b'>') {
        return false;
    }
    let hex = |bytes: &[u8]| bytes.iter().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b));
    if hex(literal) {
        return false;
    }
    // Inside `KIND:HEX`, starting at each place of `KIND:`.
    !kinds.iter().any(|kind| {
        let head = [kind.as_bytes(), b":"].concat();
        (0..head.len()).any(|start| {
            let rest = &head[start..];
            if literal.len() <= rest.len() {
                rest.starts_with(literal)
            } else {
                literal.starts_with(rest) && hex(&literal[rest.len()..])
            }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KINDS: &[&str] = &["email", "aws-access-key", "card"];

    fn literals_sure(pattern: &str) -> bool {
        Prefilter::new(pattern, Some(KINDS)).is_some()
    }

    #[test]
    fn only_literals_that_cannot_stand_in_a_pseudonym_make_a_prefilter() {
        assert!(literals_sure("took=899ms"));
        assert!(literals_sure("took=(899|900)ms"));
        assert!(literals_sure("(?i)timeout after"));
        assert!(literals_sure("status=5\\d\\d"));
        // Could stand in `<email:…>`, `<card:…>` or a pseudonym's hex.
        assert!(!literals_sure("email"));
        assert!(!literals_sure("ail:3f"));
        assert!(!literals_sure("rd:"));
        assert!(!literals_sure("0a1b2c"));
        assert!(!literals_sure("<email:"));
        assert!(!literals_sure("key>"));
        // Nothing every match begins with.
        assert!(!literals_sure(".*"));
        assert!(!literals_sure("\\d+ms"));
        assert!(!literals_sure("a|"));
        // Raw text: any literal will do.
        assert!(Prefilter::new("email", None).is_some());
    }

    #[test]
    fn the_lines_holding_a_literal_are_found_once_each() {
        let prefilter = Prefilter::new("took=(899|900)ms", Some(KINDS)).unwrap();
        let chunk = b"a took=900ms took=899ms\nb\nc took=899ms\ntook=900ms";
        let lines: Vec<&[u8]> = prefilter.lines(chunk).into_iter().map(|r| &chunk[r]).collect();
        assert_eq!(lines, [&b"a took=900ms took=899ms"[..], b"c took=899ms", b"took=900ms"]);
        assert!(prefilter.lines(b"nothing\nhere\n").is_empty());
        assert_eq!(prefilter.lines(b"took=899ms\n"), vec![std::ops::Range { start: 0, end: 10 }]);
    }

    #[test]
    fn a_chunk_without_the_literals_cannot_match() {
        let prefilter = Prefilter::new("took=(899|900)ms", Some(KINDS)).unwrap();
        assert!(!prefilter.lines(b"a\nGET /x took=900ms\n").is_empty());
        assert!(prefilter.lines(b"a\nGET /x took=901ms\n").is_empty());
        let insensitive = Prefilter::new("(?i)Timeout", Some(KINDS)).unwrap();
        assert!(!insensitive.lines(b"read TIMEOUT\n").is_empty());
    }
}
