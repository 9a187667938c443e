//! Redaction on arbitrary bytes: never panics, and what comes out is redacted for good —
//! redacting it again changes nothing, and no rule finds anything left in it.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use ward_redact::stream::{self, Limits};
use ward_redact::{Counts, Pseudonyms, RuleSet};

static RULES: LazyLock<RuleSet> = LazyLock::new(|| RuleSet::builtin().expect("the built-in rules compile"));

fuzz_target!(|data: &[u8]| {
    let rules = &*RULES;
    let key = Pseudonyms::new(&[9; 32]);
    let mut once = Vec::new();
    rules.redact(data, &key, &mut once, &mut Counts::default());
    let mut twice = Vec::new();
    rules.redact(&once, &key, &mut twice, &mut Counts::default());
    assert_eq!(once, twice, "redacting twice changed the output");
    assert!(rules.find(&once).is_empty(), "a rule still matches the output");
    // The stream, in tiny chunks and with a short line limit, must not panic either.
    let mut streamed = Vec::new();
    let limits = Limits { chunk_bytes: 7, max_line_bytes: 64 };
    stream::redact(rules, &key, data, &mut streamed, limits).expect("writing to memory does not fail");
});
