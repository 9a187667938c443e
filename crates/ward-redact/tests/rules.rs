//! ward's rule sets against rules and examples written by others: the gitleaks rule set loads,
//! and every Nosey Parker example comes out redacted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use serde::Deserialize;
use ward_redact::{Counts, Placeholder, RuleSet};

#[derive(Deserialize)]
struct NpFile {
    rules: Vec<NpRule>,
}

#[derive(Deserialize)]
struct NpRule {
    id: String,
    pattern: String,
    // Either may be present but empty (`negative_examples:`).
    #[serde(default)]
    examples: Option<Vec<String>>,
    #[serde(default)]
    negative_examples: Option<Vec<String>>,
}

fn shared() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/testdata"))
}

fn np_rules() -> Vec<NpRule> {
    let dir = shared().join("noseyparker-rules");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml"))
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            serde_saphyr::from_str::<NpFile>(&text).unwrap_or_else(|e| panic!("{}: {e}", f.display())).rules
        })
        .collect()
}

fn redact(rules: &RuleSet, text: &str) -> String {
    let mut out = Vec::new();
    rules.redact(text.as_bytes(), &Placeholder { fixed: None }, &mut out, &mut Counts::default());
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn the_vendored_gitleaks_rules_are_the_shared_ones_and_load() {
    let shared = std::fs::read_to_string(shared().join("gitleaks/gitleaks.toml")).unwrap();
    assert_eq!(shared, ward_redact::GITLEAKS_RULES, "rules/gitleaks/gitleaks.toml differs from shared/");
    let (rules, skipped) = RuleSet::standard().unwrap();
    let gitleaks = rules.rules().iter().filter(|r| r.id.starts_with("gitleaks.")).count();
    eprintln!("gitleaks: {gitleaks} rules loaded, {} left out: {skipped:?}", skipped.len());
    assert!(gitleaks >= 221, "only {gitleaks} gitleaks rules loaded; left out: {skipped:?}");
}

#[test]
fn every_nosey_parker_example_comes_out_redacted() {
    let (rules, _) = RuleSet::standard().unwrap();
    let np = np_rules();
    let (mut examples, mut missed) = (0, Vec::new());
    let (mut negatives, mut flagged) = (0, Vec::new());
    // `(?# … )` comments are Hyperscan syntax the regex crate does not read: drop them.
    let comment = regex::Regex::new(r"\(\?#[^)]*\)").unwrap();
    for rule in &np {
        let pattern = comment.replace_all(&rule.pattern, "");
        let own = regex::bytes::Regex::new(&pattern).unwrap_or_else(|e| panic!("{}: {e}", rule.id));
        for example in rule.examples.iter().flatten() {
            examples += 1;
            // Redacted means: every secret Nosey Parker's own pattern captures in the example
            // lies inside a span ward replaces.
            let replaced = rules.find(example.as_bytes());
            let covered =
                |start: usize, end: usize| replaced.iter().any(|f| f.start <= start && end <= f.end);
            let secrets: Vec<(usize, usize)> = own
                .captures_iter(example.as_bytes())
                .flat_map(|caps| {
                    let groups: Vec<_> =
                        (1..caps.len()).filter_map(|i| caps.get(i)).filter(|m| !m.is_empty()).collect();
                    if groups.is_empty() { caps.get(0).into_iter().collect() } else { groups }
                })
                .map(|m| (m.start(), m.end()))
                .collect();
            assert!(
                !secrets.is_empty(),
                "{}: its own pattern does not match its example {example:?}",
                rule.id
            );
            if let Some((start, end)) = secrets.iter().find(|(s, e)| !covered(*s, *e)) {
                missed.push(format!(
                    "{}: {:?} left in {:?}",
                    rule.id,
                    &example[*start..*end],
                    redact(&rules, example)
                ));
            }
        }
        for negative in rule.negative_examples.iter().flatten() {
            negatives += 1;
            let found = rules.find(negative.as_bytes());
            if !found.is_empty() {
                let by: Vec<&str> = found.iter().map(|f| rules.rules()[f.rule].id.as_str()).collect();
                flagged.push(format!("{} (changed by {}): {negative:?}", rule.id, by.join(", ")));
            }
        }
    }
    eprintln!(
        "Nosey Parker: {} rules, {examples} examples, {} missed; {negatives} negative examples, {} changed ({:.1}%)",
        np.len(),
        missed.len(),
        flagged.len(),
        100.0 * flagged.len() as f64 / negatives.max(1) as f64
    );
    for f in &flagged {
        eprintln!("  changed negative {f}");
    }
    assert!(missed.is_empty(), "{} examples not redacted:\n{}", missed.len(), missed.join("\n"));
}

/// A real-sized private key (an RSA-2048 PEM is about 27 lines) comes out whole, under the
/// standard rule set (keyword pass on) and streamed in small chunks.
#[test]
fn a_long_private_key_is_redacted_whole() {
    let (rules, _) = RuleSet::standard().unwrap();
    let body: String =
        (0..40).map(|i| format!("MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC{i:02}\n")).collect();
    let text =
        format!("before\n-----BEGIN RSA PRIVATE KEY-----\n{body}-----END RSA PRIVATE KEY-----\nafter\n");
    let whole = redact(&rules, &text);
    assert!(!whole.contains("MIIEvQ"), "{whole}");
    let mut streamed = Vec::new();
    let limits = ward_redact::stream::Limits { chunk_bytes: 100, ..Default::default() };
    ward_redact::stream::redact(&rules, &Placeholder { fixed: None }, text.as_bytes(), &mut streamed, limits)
        .unwrap();
    let streamed = String::from_utf8(streamed).unwrap();
    assert!(!streamed.contains("MIIEvQ"), "{streamed}");
    assert!(streamed.starts_with("before\n") && streamed.ends_with("after\n"), "{streamed}");
}
