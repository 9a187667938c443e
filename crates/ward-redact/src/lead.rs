//! A lazy run of one class at the start of a pattern, searched for by looking back instead.
//!
//! Most of gitleaks' rules start with `[\w.-]{0,50}?` in front of their keywords: it widens the
//! match to the name a key is assigned to, for allowlists that look at the whole match. Searched
//! for as written, it makes a regex engine run up to 51 overlapping attempts through every word
//! of a log, and its lazy DFA builds states without end; that one prefix was most of the time
//! gitleaks' rule set took. The rest of the pattern is searched for alone, and the start of
//! each match is found by stepping back over the class.
//!
//! This gives exactly the original matches: with a lazy prefix the leftmost match ends its
//! prefix at the leftmost place the rest matches (the start a place allows, the furthest of
//! `max` bytes back, the start of the run of the class and the end of the previous match, only
//! grows with the place), and from there both match the same way.

use regex_syntax::hir::{Class, Hir, HirKind};

/// The prefix taken off a pattern.
#[derive(Debug, Clone)]
pub(crate) struct Lead {
    /// The bytes the prefix repeats.
    class: [bool; 256],
    /// At most this many of them.
    max: usize,
}

impl Lead {
    /// Takes a leading `C{0,n}?` (a class of bytes, lazy, from nothing) off a pattern (`hir`,
    /// parsed by [`crate::parse`]); the rest of it, if it cannot match the empty text.
    pub(crate) fn split(hir: &Hir) -> Option<(Lead, Hir)> {
        let HirKind::Concat(parts) = hir.kind() else { return None };
        let (first, rest) = parts.split_first()?;
        let HirKind::Repetition(repetition) = first.kind() else { return None };
        if repetition.min != 0 || repetition.greedy {
            return None;
        }
        let max = usize::try_from(repetition.max?).ok()?;
        let HirKind::Class(Class::Bytes(bytes)) = repetition.sub.kind() else { return None };
        let rest = Hir::concat(rest.to_vec());
        if rest.properties().minimum_len().is_none_or(|len| len == 0) {
            return None;
        }
        let mut class = [false; 256];
        for range in bytes.ranges() {
            for b in range.start()..=range.end() {
                class[usize::from(b)] = true;
            }
        }
        Some((Lead { class, max }, rest))
    }

    /// Where a match whose rest starts at `at` starts: up to `max` bytes of the class back,
    /// never before `floor` (the end of the previous match, or the start of the text).
    pub(crate) fn start(&self, text: &[u8], at: usize, floor: usize) -> usize {
        let limit = at.saturating_sub(self.max).max(floor);
        let mut start = at;
        while start > limit && self.class[usize::from(text[start - 1])] {
            start -= 1;
        }
        start
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(pattern: &str) -> Option<(Lead, String)> {
        Lead::split(&crate::parse(pattern)?).map(|(lead, rest)| (lead, rest.to_string()))
    }

    /// A match's start and end, and its first group's.
    type Found = (usize, usize, Option<(usize, usize)>);

    fn matches_both_ways(pattern: &str, text: &str) {
        let whole = crate::compile("whole", pattern).expect("pattern");
        let (lead, rest) = split(pattern).expect("a lead to split off");
        let rest = crate::compile("rest", &rest).expect("rest");
        let mut floor = 0;
        let split: Vec<Found> = rest
            .captures_iter(text.as_bytes())
            .map(|caps| {
                let m = caps.get(0).expect("match");
                let start = lead.start(text.as_bytes(), m.start(), floor);
                floor = m.end();
                (start, m.end(), caps.get(1).map(|g| (g.start(), g.end())))
            })
            .collect();
        let original: Vec<Found> = whole
            .captures_iter(text.as_bytes())
            .map(|caps| {
                let m = caps.get(0).expect("match");
                (m.start(), m.end(), caps.get(1).map(|g| (g.start(), g.end())))
            })
            .collect();
        assert_eq!(split, original, "{pattern} on {text:?}");
    }

    #[test]
    fn only_a_lazy_class_run_from_nothing_is_split_off() {
        assert!(split(r"[\w.-]{0,50}?(?:key|token)=(\w+)").is_some());
        assert!(split(r"[\w.-]{0,50}(?:key|token)=(\w+)").is_none(), "greedy");
        assert!(split(r"[\w.-]{1,50}?key").is_none(), "from one");
        assert!(split(r"[\w.-]*?key").is_none(), "unbounded");
        assert!(split(r"key=\w+").is_none(), "no prefix");
        assert!(split(r"\w{0,5}?x?").is_none(), "the rest can match nothing");
    }

    #[test]
    fn the_split_pattern_finds_the_original_matches() {
        let pattern = r"(?i)[\w.-]{0,10}?(?:key|token)(?:[ \t\w.-]{0,5})[:=]\s?(\w{4,})";
        for text in [
            "api_key=abcdef",
            "x my.service-key: abcd and token=efgh",
            "a_very_long_prefix_name_key=abcdef",
            "key=abcd key=efgh",
            "tokentoken=abcd",
            "keykeykey = zzzz",
            "no match here",
            "prefix-key=ab key=abcdef",
        ] {
            matches_both_ways(pattern, text);
        }
    }

    #[test]
    fn gitleaks_rules_find_the_same_matches_split() {
        let corpus = [
            "my_app.api_key = 'Zx8kQ2mN4pL7rT1vW3yB'",
            "2026-11-21 INFO payments-api request_id=k3j4h5g6f7d8s9a0 token=eyJhbGciOiJIUzI1NiJ9",
            "export ADAFRUIT_KEY=abcdefghijklmnopqrstuvwxyz012345 and some.other_secret: \"a1B2c3D4e5F6g7H8\"",
            "client-credentials-token := 'q8Zk3xP0vL7mN2bV5cX1'; auth=Bearer zzzzzzzzzzzzzzzzzzzz",
            "very_very_very_long_prefix_before_the_word_token_here_and_more_access_key=Q1w2E3r4T5y6U7i8",
        ]
        .join("\n");
        let rules = crate::gitleaks::load(crate::GITLEAKS_RULES).expect("gitleaks rules").rules;
        let with_lead = rules.iter().filter(|r| split(r.regex.as_str()).is_some()).count();
        assert!(with_lead >= 100, "a hundred of gitleaks' rules start with a lead ({with_lead})");
        for rule in rules.iter().filter(|r| split(r.regex.as_str()).is_some()) {
            matches_both_ways(rule.regex.as_str(), &corpus);
        }
    }

    proptest::proptest! {
        #[test]
        fn the_split_pattern_agrees_on_any_text(text in "[a-z_ =.:\\-]{0,40}") {
            matches_both_ways(r"[a-z_.-]{0,6}?(?:ke|to)[a-z]{0,2}[=:]\s?([a-z]{2,})", &text);
        }
    }
}
