//! Keywords for rules that name none, read from the regex itself: literals at least one of
//! which every match must contain (the literals matches start with, or failing that, literals a
//! required part of the pattern starts with).

use regex_syntax::hir::literal::{ExtractKind, Extractor};
use regex_syntax::hir::{Hir, HirKind};

/// The shortest literal worth prefiltering on; shorter ones occur everywhere.
const MIN_LEN: usize = 3;
/// More literals than this make the prefilter no cheaper than the regex.
const MAX_COUNT: usize = 64;

/// Lowercase literals one of which every match of `hir` contains, if there is a short list of
/// them, each at least three bytes; `None` when no such list can be read from the pattern.
pub(crate) fn required_literals(hir: &Hir) -> Option<Vec<Vec<u8>>> {
    let mut keywords = starts(hir).or_else(|| required(hir))?;
    keywords.sort();
    keywords.dedup();
    Some(keywords)
}

/// The literals every match of `hir` starts with (finite, long enough, few enough).
fn starts(hir: &Hir) -> Option<Vec<Vec<u8>>> {
    let mut extractor = Extractor::new();
    extractor.kind(ExtractKind::Prefix);
    let seq = extractor.extract(hir);
    let literals = seq.literals()?;
    if literals.is_empty()
        || literals.len() > MAX_COUNT
        || literals.iter().any(|l| l.as_bytes().len() < MIN_LEN)
    {
        return None;
    }
    Some(literals.iter().map(|l| l.as_bytes().to_ascii_lowercase()).collect())
}

/// Literals one of which every match of `hir` contains: from a part of a sequence that every
/// match goes through, or from every branch of an alternation.
fn required(hir: &Hir) -> Option<Vec<Vec<u8>>> {
    match hir.kind() {
        HirKind::Capture(capture) => required(&capture.sub),
        HirKind::Repetition(repetition) if repetition.min >= 1 => {
            starts(&repetition.sub).or_else(|| required(&repetition.sub))
        }
        HirKind::Concat(parts) => parts
            .iter()
            .filter_map(|part| starts(part).or_else(|| required(part)))
            // The fewest, longest literals make the sharpest prefilter.
            .min_by_key(|literals| {
                (literals.len(), usize::MAX - literals.iter().map(Vec::len).min().unwrap_or(0))
            }),
        HirKind::Alternation(branches) => {
            let mut all = Vec::new();
            for branch in branches {
                all.extend(starts(branch).or_else(|| required(branch))?);
            }
            (all.len() <= MAX_COUNT).then_some(all)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    fn prefixes(pattern: &str) -> Option<Vec<Vec<u8>>> {
        super::required_literals(&crate::parse(pattern).expect("a pattern that parses"))
    }

    #[test]
    fn literal_starts_become_keywords_and_open_starts_do_not() {
        assert_eq!(prefixes(r"\b(ghp_[A-Za-z0-9]{36})\b"), Some(vec![b"ghp_".to_vec()]));
        assert_eq!(prefixes(r"(?i)xox[bp]-\d+"), Some(vec![b"xoxb-".to_vec(), b"xoxp-".to_vec()]));
        assert_eq!(prefixes(r"\d{16}"), None);
        assert_eq!(prefixes(r"[a-z]+@[a-z]+"), None, "no literal of three bytes is required");
    }

    #[test]
    fn required_inner_literals_become_keywords() {
        let slack = prefixes(r"(?:^|[^a-z])(xoxb-[0-9]+)").unwrap();
        assert!(!slack.is_empty() && slack.iter().all(|k| k.starts_with(b"xoxb-")), "{slack:?}");
        assert_eq!(prefixes(r"[a-z]+@example\.com"), Some(vec![b"@example.com".to_vec()]));
        let pairs = prefixes(r"[^a-z](?:key|token)=\w+").unwrap();
        assert_eq!(pairs, vec![b"key".to_vec(), b"token".to_vec()]);
        assert_eq!(prefixes(r"[^a-z](?:key|x)=\w+"), None, "one branch has no literal long enough");
    }
}
