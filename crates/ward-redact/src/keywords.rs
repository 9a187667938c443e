//! Keywords for rules that name none: the literals every match must start with, read from the
//! regex itself.

use regex_syntax::hir::literal::{ExtractKind, Extractor};

/// The shortest literal worth prefiltering on; shorter ones occur everywhere.
const MIN_LEN: usize = 3;
/// More literals than this make the prefilter no cheaper than the regex.
const MAX_COUNT: usize = 64;

/// The lowercase literals every match of `pattern` starts with, if there is a short list of
/// them, each at least three bytes; `None` when any match could start otherwise.
pub(crate) fn prefixes(pattern: &str) -> Option<Vec<Vec<u8>>> {
    let hir = regex_syntax::ParserBuilder::new().unicode(false).utf8(false).build().parse(pattern).ok()?;
    let mut extractor = Extractor::new();
    extractor.kind(ExtractKind::Prefix);
    let seq = extractor.extract(&hir);
    let literals = seq.literals()?;
    if literals.is_empty()
        || literals.len() > MAX_COUNT
        || literals.iter().any(|l| l.as_bytes().len() < MIN_LEN)
    {
        return None;
    }
    let mut keywords: Vec<Vec<u8>> = literals.iter().map(|l| l.as_bytes().to_ascii_lowercase()).collect();
    keywords.sort();
    keywords.dedup();
    Some(keywords)
}

#[cfg(test)]
mod tests {
    use super::prefixes;

    #[test]
    fn literal_starts_become_keywords_and_open_starts_do_not() {
        assert_eq!(prefixes(r"\b(ghp_[A-Za-z0-9]{36})\b"), Some(vec![b"ghp_".to_vec()]));
        assert_eq!(prefixes(r"(?i)xox[bp]-\d+"), Some(vec![b"xoxb-".to_vec(), b"xoxp-".to_vec()]));
        assert_eq!(prefixes(r"[a-z]+@example\.com"), None, "a match may start with any letter");
        assert_eq!(prefixes(r"\d{16}"), None);
    }
}
