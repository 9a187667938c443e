//! Redacts standard input to standard output with ward's engine, as the gateway does; for
//! benchmarks (`bench/redact.py`) and for trying rules out.
//!
//! `redact [--rules builtin|standard|gitleaks|FILE] [--fixed TEXT] [--threads N] < in > out`
//! - `builtin`: ward's built-in rules; `standard`: with gitleaks' and Nosey Parker's; `gitleaks`:
//!   gitleaks' rules alone; `FILE`: one
//!   regex per line, each redacting its whole match (the same file `rg -f` and `sed` can use);
//! - `--fixed TEXT`: replace every value with TEXT (default: keyed pseudonyms `<kind:…>`);
//! - `--threads N`: redact chunks on N threads side by side (default 1).
//!
//! Prints the counts per rule and the throughput on standard error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufReader, BufWriter, Write};
use std::time::Instant;

use ward_redact::stream::{self, Limits};
use ward_redact::{Placeholder, Pseudonyms, Replace, Rule, RuleSet};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).cloned();
    let rules = match value("--rules").as_deref().unwrap_or("builtin") {
        "builtin" => RuleSet::builtin().unwrap(),
        "standard" => RuleSet::standard().unwrap().0,
        "gitleaks" => {
            RuleSet::new(ward_redact::gitleaks::load(ward_redact::GITLEAKS_RULES).unwrap().rules).unwrap()
        }
        path => {
            let text = std::fs::read_to_string(path).unwrap();
            let rules = text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .enumerate()
                .map(|(i, pattern)| {
                    Rule::new(&format!("rule{}", i + 1), "redacted", &[], pattern).unwrap().group(0)
                })
                .collect();
            RuleSet::new(rules).unwrap()
        }
    };
    let replace: Box<dyn Replace> = match value("--fixed") {
        Some(text) => Box::new(Placeholder { fixed: Some(text.into_bytes()) }),
        None => Box::new(Pseudonyms::new(&[42; 32])),
    };
    let started = Instant::now();
    let input = BufReader::with_capacity(1 << 16, std::io::stdin().lock());
    let mut output = BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let threads = value("--threads").map_or(1, |n| n.parse().expect("--threads takes a number"));
    let limits = Limits { threads, ..Limits::default() };
    let counts = stream::redact(&rules, replace.as_ref(), input, &mut output, limits).unwrap();
    output.flush().unwrap();
    let seconds = started.elapsed().as_secs_f64();
    eprintln!("{} values redacted in {seconds:.3}s", counts.total());
    for (rule, n) in rules.summary(&counts) {
        eprintln!("  {rule}: {n}");
    }
}
