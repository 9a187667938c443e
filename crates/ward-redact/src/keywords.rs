//! Keywords for rules that name none, read from the regex itself: literals at least one of
//! which every match must contain (the literals matches start with, or failing that, literals a
//! required part of the pattern starts with).

use regex_syntax::hir::literal::{ExtractKind, Extractor};
use regex_syntax::hir::{Capture, Class, Hir, HirKind, Repetition};

/// The shortest literal worth prefiltering on; shorter ones occur everywhere.
const MIN_LEN: usize = 3;
/// More literals than this make the prefilter no cheaper than the regex.
const MAX_COUNT: usize = 64;

/// Lowercase literals one of which every match of `hir` contains, if there is a short list of
/// them, each at least three bytes; `None` when no such list can be read from the pattern.
pub(crate) fn required_literals(hir: &Hir) -> Option<Vec<Vec<u8>>> {
    // The keyword pass ignores ASCII case: `(?i)authorization` needs one keyword, not its 8,192
    // spellings (too many to list, so none at all).
    let hir = &fold_ascii_case(hir);
    let mut keywords = starts(hir).or_else(|| required(hir))?;
    keywords.sort();
    keywords.dedup();
    Some(keywords)
}

/// Lists of lowercase literals, each of which a match of `hir` holds one of: one list per part
/// of the pattern that has one (a pattern `user=… pass=…` needs a `user` and a `pass`). Empty
/// when no part has one.
pub(crate) fn required_each(hir: &Hir) -> Vec<Vec<Vec<u8>>> {
    let hir = fold_ascii_case(hir);
    let mut top = &hir;
    while let HirKind::Capture(capture) = top.kind() {
        top = &capture.sub;
    }
    let parts: Vec<Vec<Vec<u8>>> = match top.kind() {
        // A literal may be split over parts (`(?:pass|pwd)` is `p(?:ass|wd)`): each run of parts
        // that begins one gives the literals of the rest of the pattern from there.
        HirKind::Concat(parts) => {
            let mut lists = Vec::new();
            let mut in_run = false;
            for at in 0..parts.len() {
                let found = starts(&Hir::concat(parts[at..].to_vec()));
                if !in_run && let Some(found) = &found {
                    lists.push(found.clone());
                }
                in_run = found.is_some();
            }
            lists
        }
        _ => starts(top).or_else(|| required(top)).into_iter().collect(),
    };
    parts
        .into_iter()
        .map(|mut literals: Vec<Vec<u8>>| {
            literals.sort();
            literals.dedup();
            literals
        })
        .collect()
}

/// `hir` with each class of exactly one ASCII letter in both cases (`(?i)a` is `[Aa]`) made that
/// letter in lower case. Only for finding keywords, which are looked for ignoring ASCII case; a
/// class with more in it (`(?i)k` also holds the Kelvin sign) is left as it is, so that a keyword
/// is never missing a spelling a match can have.
fn fold_ascii_case(hir: &Hir) -> Hir {
    match hir.kind() {
        HirKind::Class(class) => {
            ascii_letter_pair(class).map_or_else(|| hir.clone(), |lower| Hir::literal([lower]))
        }
        HirKind::Capture(capture) => {
            Hir::capture(Capture { sub: Box::new(fold_ascii_case(&capture.sub)), ..capture.clone() })
        }
        HirKind::Repetition(repetition) => Hir::repetition(Repetition {
            sub: Box::new(fold_ascii_case(&repetition.sub)),
            ..repetition.clone()
        }),
        HirKind::Concat(parts) => Hir::concat(parts.iter().map(fold_ascii_case).collect()),
        HirKind::Alternation(branches) => Hir::alternation(branches.iter().map(fold_ascii_case).collect()),
        HirKind::Empty | HirKind::Literal(_) | HirKind::Look(_) => hir.clone(),
    }
}

/// The lower-case letter, when `class` holds exactly one ASCII letter in both its cases.
fn ascii_letter_pair(class: &Class) -> Option<u8> {
    let members: Vec<u32> = match class {
        Class::Unicode(class) => class
            .ranges()
            .iter()
            .flat_map(|r| (u32::from(r.start())..=u32::from(r.end())).take(3))
            .take(3)
            .collect(),
        Class::Bytes(class) => {
            class.ranges().iter().flat_map(|r| (r.start()..=r.end()).take(3)).take(3).map(u32::from).collect()
        }
    };
    let [upper, lower] = members[..] else { return None };
    let lower = u8::try_from(lower).ok().filter(u8::is_ascii_lowercase)?;
    (upper == u32::from(lower.to_ascii_uppercase())).then_some(lower)
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
        assert!(all_start_with(prefixes(r"(?i)xox[bp]-\d+"), &["xoxb-", "xoxp-"]));
        assert_eq!(prefixes(r"\d{16}"), None);
        assert_eq!(prefixes(r"[a-z]+@[a-z]+"), None, "no literal of three bytes is required");
    }

    fn all_start_with(keywords: Option<Vec<Vec<u8>>>, starts: &[&str]) -> bool {
        let keywords = keywords.unwrap_or_default();
        !keywords.is_empty()
            && keywords.iter().all(|k| starts.iter().any(|s| k.starts_with(s.as_bytes())))
            && starts.iter().all(|s| keywords.iter().any(|k| k.starts_with(s.as_bytes())))
    }

    #[test]
    fn a_case_insensitive_word_is_one_keyword() {
        assert!(all_start_with(prefixes(r"(?i)authorization:\s+basic"), &["authorization:"]));
        assert!(all_start_with(prefixes(r"(?x)(?m)(?i)^\s*(?:jwt:\s+secret:|jwtsecret:)"), &["jwt"]));
        // With Unicode, `(?i)k` may also be the Kelvin sign, which the keyword pass would not
        // find as `k`: both spellings are keywords.
        assert!(all_start_with(prefixes(r"(?i)key=\p{L}+"), &["key=", "\u{212a}ey="]));
    }

    #[test]
    fn each_required_part_gives_a_list() {
        let parts =
            super::required_each(&crate::parse(r"(?i)(?:user|login)=(\w+)\s+(?:pass|pwd)=(\w+)").unwrap());
        assert_eq!(parts.len(), 2, "{parts:?}");
        assert!(parts[0].iter().all(|k| k.starts_with(b"user") || k.starts_with(b"login")), "{parts:?}");
        assert!(parts[1].iter().all(|k| k.starts_with(b"pass") || k.starts_with(b"pwd")), "{parts:?}");
        assert!(super::required_each(&crate::parse(r"\w+").unwrap()).is_empty());
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
