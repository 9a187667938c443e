use std::sync::LazyLock;

use proptest::prelude::*;

use super::Lines;
use crate::{Counts, Pseudonyms, RuleSet};

static STANDARD: LazyLock<RuleSet> = LazyLock::new(|| RuleSet::standard().unwrap().0);
static BUILTIN: LazyLock<RuleSet> = LazyLock::new(|| RuleSet::builtin().unwrap());
/// A rule whose matches run over any number of blank lines.
static SPACED: LazyLock<RuleSet> = LazyLock::new(|| {
    let rule =
        crate::Rule::new("spaced", "secret", &["key"], r"key\s*=\s*([a-z0-9]{16})").unwrap().multiline();
    RuleSet::new(vec![rule]).unwrap()
});

fn key() -> Pseudonyms {
    Pseudonyms::new(&[9; 32])
}

fn whole(rules: &RuleSet, chunk: &str) -> String {
    let mut out = Vec::new();
    rules.redact(chunk.as_bytes(), &key(), &mut out, &mut Counts::default());
    String::from_utf8(out).unwrap()
}

/// The lines numbered `wanted` redacted alone, or `None` if the chunk must be redacted whole.
fn alone(rules: &RuleSet, chunk: &str, wanted: &[usize]) -> Option<Vec<String>> {
    let mut ranges = Vec::new();
    let mut at = 0;
    for (number, line) in chunk.split_inclusive('\n').enumerate() {
        let text = line.strip_suffix('\n').unwrap_or(line);
        if wanted.contains(&number) {
            ranges.push(at..at + text.len());
        }
        at += line.len();
    }
    let mut out = Vec::new();
    let mut counts = Counts::default();
    if !rules.redact_lines(chunk.as_bytes(), &ranges, &key(), &mut out, &mut counts) {
        assert!(out.is_empty() && counts.total() == 0, "nothing written when it gives up");
        return None;
    }
    Some(String::from_utf8(out).unwrap().lines().map(str::to_owned).collect())
}

/// Asserts that the lines `wanted`, redacted alone, come out as in the whole chunk's redaction.
fn same_as_whole(rules: &RuleSet, chunk: &str, wanted: &[usize]) -> bool {
    let whole = whole(rules, chunk);
    let whole: Vec<&str> = whole.lines().collect();
    let Some(alone) = alone(rules, chunk, wanted) else { return false };
    assert_eq!(whole.len(), chunk.lines().count(), "no value ran over a line break: {chunk:?}");
    let expected: Vec<&str> = wanted.iter().map(|&n| whole[n]).collect();
    assert_eq!(alone, expected, "in {chunk:?}");
    true
}

#[test]
fn a_line_alone_is_redacted_as_in_its_chunk() {
    let chunk = "2026-11-21T10:00:01Z INFO user=jane.doe@example.com took=899ms\n\
                 2026-11-21T10:00:02Z INFO aws_key=AKIAIOSFODNN7EXAMPLE token=ghp_0123456789abcdefghijABCDEFGHIJ012345\n\
                 2026-11-21T10:00:03Z DEBUG db=postgres://app:s3cr3tpassw0rd@db1:5432/pay took=899ms\n";
    for rules in [&*STANDARD, &*BUILTIN] {
        assert!(same_as_whole(rules, chunk, &[0, 1, 2]));
        assert!(same_as_whole(rules, chunk, &[2]));
    }
}

#[test]
fn a_value_on_the_line_after_its_key_is_found_from_the_key() {
    // gitleaks' generic rule: the key on one line, its value (after blank lines) on a later one.
    let chunk = "start\napi_key =\n\n \"Zx81kQ0pLm3Nv7Rt\"\nend took=1ms\n";
    let whole = whole(&STANDARD, chunk);
    assert!(!whole.contains("Zx81kQ0pLm3Nv7Rt"), "{whole}");
    assert!(same_as_whole(&STANDARD, chunk, &[3]));
    assert!(same_as_whole(&STANDARD, chunk, &[3, 4]));
}

#[test]
fn a_value_is_found_from_its_key_over_lines_it_can_run_through() {
    // A line holding only what the rule allows between key and value (`=`, a quote) is run
    // through; a log line is not, and a match cannot reach past it.
    let chunk =
        "2026-11-21T10:00:01Z INFO start\napi_key\n=\n\"Zx81kQ0pLm3Nv7Rt\"\n2026-11-21T10:00:02Z took=1ms\n";
    let whole = whole(&STANDARD, chunk);
    assert!(!whole.contains("Zx81kQ0pLm3Nv7Rt"), "{whole}");
    for line in 0..5 {
        assert!(same_as_whole(&STANDARD, chunk, &[line]), "line {line}");
    }
    let interrupted = "api_key\n2026-11-21T10:00:01Z INFO start\n= \"Zx81kQ0pLm3Nv7Rt\"\n";
    let whole = self::whole(&STANDARD, interrupted);
    assert!(same_as_whole(&STANDARD, interrupted, &[2]), "{whole}");
}

#[test]
fn a_line_inside_a_private_key_block_sends_the_chunk_back_whole() {
    let chunk =
        "a took=1ms\n-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----\nb\n";
    for rules in [&*STANDARD, &*BUILTIN] {
        assert_eq!(alone(rules, chunk, &[2]), None);
        assert_eq!(alone(rules, chunk, &[0, 2]), None);
        // The lines around the block are redacted alone.
        assert_eq!(alone(rules, chunk, &[0, 4]), Some(vec!["a took=1ms".to_owned(), "b".to_owned()]));
    }
}

#[test]
fn a_value_over_a_line_break_sends_it_back_whole() {
    // Nosey Parker's basic-auth rule allows `\s+` between `Basic` and the value.
    let chunk = "x\nAuthorization: Basic\n   QWxhZGRpbjpvcGVuIHNlc2FtZQ==\ny\n";
    let whole = whole(&STANDARD, chunk);
    assert!(!whole.contains("QWxhZGRpbjpvcGVuIHNlc2FtZQ"), "{whole}");
    if let Some(lines) = alone(&STANDARD, chunk, &[2]) {
        assert!(!lines[0].contains("QWxhZGRpbjpvcGVuIHNlc2FtZQ"), "{lines:?}");
    }
}

/// Lines of log text with secrets of many kinds, some split over lines and blank lines.
fn log_lines() -> impl Strategy<Value = Vec<String>> {
    let pieces = prop::sample::select(vec![
        "user=jane.doe@example.com",
        "card 4111 1111 1111 1111",
        "call +49 30 1234567",
        "Authorization: Bearer abcdef0123456789xyz",
        "authorization=\"Bearer Zk3mQ9xL2pV7nR4tY8wB1cD6fG0hJ5sA\"",
        "token=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_X",
        "postgres://app:s3cr3t@db:5432/x",
        "password=hunter22",
        "api_key =",
        "  \"Q1w2E3r4T5y6U7i8\"",
        "aws_key=AKIAIOSFODNN7EXAMPLE",
        "ghp_0123456789abcdefghijABCDEFGHIJ012345",
        "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
        "secret:",
        "ip 10.0.0.1",
        "GET /api/v1/orders 200 took=899ms",
        "request_id=qhfwcepyyngfb51y method=POST",
        // Values that rules reaching far or through lines find: keys, a `curl` continued over
        // lines, a user and a password apart, a Kubernetes secret, an ODBC string.
        "-----BEGIN RSA PRIVATE KEY-----",
        "MIIEpAIBAAKCAQEA75w1kMnvzx2VtJcY8hD4QfRrA3uTqLsWgXhJkNmBvCxZ",
        "-----END RSA PRIVATE KEY-----",
        "curl -u admin:hunter22 https://api.example.com/v1",
        "curl -X POST https://api.example.com \\",
        "  -H \"Authorization: Basic YWxhZGRpbjpvcGVuc2VzYW1l\"",
        "user: admin",
        "pass: hunter22",
        "kind: Secret",
        "data:",
        "  password: aHVudGVyMjJodW50ZXIyMg==",
        "Uid=bob;",
        "Password=hunter22;",
        "client_secret",
        "\"abcdefghijklmnopqrstuvwx\"",
        "",
        "   ",
    ]);
    prop::collection::vec(prop::collection::vec((pieces, "[ ,;=:\"]{0,2}"), 1..4), 1..12).prop_map(|lines| {
        lines
            .into_iter()
            .map(|parts| parts.into_iter().map(|(p, sep)| format!("{p}{sep}")).collect())
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Any lines of a chunk, redacted alone, hide everything the whole chunk's redaction hides
    /// on them, or the chunk is sent back to be redacted whole. (Where two matches of a rule
    /// overlap across a window's start, a line alone may hide more, or name a value's kind
    /// otherwise: the module says why.)
    #[test]
    fn lines_alone_hide_what_the_whole_chunk_hides(lines in log_lines(), pick in prop::collection::vec(any::<bool>(), 12)) {
        let chunk: String = lines.iter().map(|l| format!("{l}\n")).collect();
        let wanted: Vec<usize> = (0..lines.len()).filter(|&n| pick[n]).collect();
        for rules in [&*STANDARD, &*BUILTIN] {
            let whole_text = whole(rules, &chunk);
            let whole_lines: Vec<&str> = whole_text.lines().collect();
            if whole_lines.len() == lines.len() {
                let Some(alone_lines) = alone(rules, &chunk, &wanted) else { continue };
                for (got, &n) in alone_lines.iter().zip(&wanted) {
                    let (hidden, hidden_alone) = (replaced(&lines[n], whole_lines[n]), replaced(&lines[n], got));
                    let shown = (0..hidden.len()).any(|at| hidden[at] && !hidden_alone[at]);
                    prop_assert!(!shown, "line {}: whole {:?}, alone {:?}, in {:?}", n, whole_lines[n], got, chunk);
                }
            } else {
                // A value ran over a line break in the whole chunk: a line it touches is never
                // redacted alone.
                let starts: Vec<usize> = std::iter::once(0)
                    .chain(chunk.match_indices('\n').map(|(i, _)| i + 1))
                    .collect();
                let line_of = |at: usize| starts.partition_point(|&s| s <= at) - 1;
                let crossed: Vec<usize> = rules
                    .find(chunk.as_bytes())
                    .iter()
                    .filter(|f| chunk[f.start..f.end].contains('\n'))
                    .flat_map(|f| line_of(f.start)..=line_of(f.end - 1))
                    .collect();
                if wanted.iter().any(|n| crossed.contains(n)) {
                    prop_assert!(alone(rules, &chunk, &wanted).is_none(), "{:?}", chunk);
                }
            }
        }
    }
}

/// Which bytes of `raw` its redaction `redacted` replaced: the text between the pseudonyms is
/// `raw`'s, in order.
fn replaced(raw: &str, redacted: &str) -> Vec<bool> {
    static PSEUDONYM: LazyLock<regex::Regex> =
        LazyLock::new(|| regex::Regex::new(r"<[a-z0-9.-]+:[0-9a-f]{12}>").unwrap());
    let mut pattern = String::from("^");
    let mut at = 0;
    for found in PSEUDONYM.find_iter(redacted) {
        pattern.push_str(&regex::escape(&redacted[at..found.start()]));
        pattern.push_str("(.+?)");
        at = found.end();
    }
    pattern.push_str(&regex::escape(&redacted[at..]));
    pattern.push('$');
    let spans = regex::Regex::new(&pattern)
        .unwrap()
        .captures(raw)
        .unwrap_or_else(|| panic!("{raw:?} → {redacted:?}"));
    let mut replaced = vec![false; raw.len()];
    for span in spans.iter().skip(1).flatten() {
        replaced[span.range()].fill(true);
    }
    replaced
}

#[test]
fn a_keyword_that_begins_a_longer_one_still_wakes_its_rule() {
    use crate::Rule;
    // Both reach any number of lines, so their keywords are looked for over the whole chunk,
    // where both begin at one place.
    let short =
        Rule::new("short", "short", &["user"], r"user[\s\S]*?(zz\d{6})").unwrap().multiline().group(1);
    let long =
        Rule::new("long", "long", &["username"], r"username[\s\S]*?(yy\d{6})").unwrap().multiline().group(1);
    let rules = RuleSet::new(vec![short, long]).unwrap();
    let chunk = "a\nusername=1 zz123456 yy654321 took=1ms\nb\n";
    let whole = whole(&rules, chunk);
    assert!(!whole.contains("123456") && !whole.contains("654321"), "{whole}");
    assert!(same_as_whole(&rules, chunk, &[1]));
}

#[test]
fn every_literal_at_one_place_is_found() {
    let literals = vec![b"-----".to_vec(), b"-----begin".to_vec(), b"begin".to_vec()];
    let with_simd = super::EveryLiteral::new(literals.clone()).unwrap();
    // As on a machine without it.
    let automaton = aho_corasick::AhoCorasickBuilder::new()
        .match_kind(aho_corasick::MatchKind::LeftmostLongest)
        .build(&literals)
        .unwrap();
    let without = super::EveryLiteral {
        finder: super::LiteralFinder::Automaton(automaton),
        beginnings: with_simd.beginnings.clone(),
    };
    for literals in [with_simd, without] {
        let mut found = Vec::new();
        let none = literals.any(b"x-----begin y -----", &mut |literal| {
            found.push(literal);
            false
        });
        found.sort_unstable();
        assert!(!none);
        assert_eq!(found, [0, 0, 1, 2]);
    }
}

#[test]
fn the_far_gate_lets_through_only_chunks_holding_each_part_of_a_far_rule() {
    let gate = &STANDARD.line_path.gate;
    let user_and_pass = "user = \"bob\"\n# the service's login\npassword = \"hunter2!x\"\n";
    assert!(gate.may_match(user_and_pass.as_bytes()));
    // Case is ignored, as the rules' keywords are.
    assert!(gate.may_match(user_and_pass.to_uppercase().as_bytes()));
    assert!(gate.may_match(b"a\n-----BEGIN RSA PRIVATE KEY-----\nMIIE\n"));
    // A user without a password, a bearer token without a URL: no rule that reaches far can match.
    let chunk = "INFO user=jane.doe@example.com took=899ms\nINFO authorization=\"Bearer abc\"\n";
    assert!(!gate.may_match(chunk.as_bytes()));
    let found = alone(&STANDARD, chunk, &[0]).unwrap();
    assert_eq!(found[0], whole(&STANDARD, chunk).lines().next().unwrap());
}

/// Where a rule's matches overlap across a window's start, a line alone may be redacted otherwise
/// than in the whole chunk, never showing more: here the whole chunk's `generic-api-key` match
/// runs from `api_key =` to `client_secret=`, and the token after it is a `github-token`; alone,
/// the window starts at `client_secret=`, whose match takes the token (and its `=`) as its value.
#[test]
fn a_line_alone_hides_at_least_what_its_chunk_hides_where_matches_overlap() {
    let lines = [
        "user=jane.doe@example.com",
        "api_key =",
        "client_secret=",
        "ghp_0123456789abcdefghijABCDEFGHIJ012345=",
    ];
    let chunk: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let whole = whole(&STANDARD, &chunk);
    let in_chunk = whole.lines().nth(3).unwrap();
    let alone = alone(&STANDARD, &chunk, &[3]).unwrap();
    assert!(in_chunk.starts_with("<github-token:") && in_chunk.ends_with(">="), "{in_chunk}");
    assert!(alone[0].starts_with("<generic-api-key:") && alone[0].ends_with('>'), "{alone:?}");
    assert!(replaced(lines[3], &alone[0]).iter().all(|&hidden| hidden));
}

#[test]
fn a_rule_that_spans_lines_runs_over_the_line_alone_where_no_match_can_cross_its_breaks() {
    let rules = &*STANDARD;
    let generic = rules.rules().iter().position(|r| r.id == "gitleaks.generic-api-key").unwrap();
    let search = &rules.searches[generic];
    let window = |chunk: &str, line: usize| super::Lines::new(chunk.as_bytes()).window(line, search);
    // Log lines: a match cannot come over from `…ms` to `2026-…`, nor go on past `ms`.
    let log = "2026-11-21T10:00:01Z INFO took=1ms\n2026-11-21T10:00:02Z INFO api_key=Zx81kQ0pLm3Nv7Rt took=2ms\n\
               2026-11-21T10:00:03Z INFO took=3ms\n";
    assert_eq!(window(log, 1), (1, 1));
    // A key at a line's end, its value on the next: both sides stay.
    let split = "x api_key =\n  \"Zx81kQ0pLm3Nv7Rt\"\ny took=1ms\n";
    assert_eq!(window(split, 1).0, 0);
    assert!(same_as_whole(rules, split, &[1]));
}

/// Long chunks of log lines, with lines of a few bytes and blank ones among them (windows run
/// far over those).
fn long_chunk() -> impl Strategy<Value = String> {
    // Log lines most often; now and then a run of blank lines longer than the bytes cut into
    // lines around a line wanted.
    let lines = [0, 0, 0, 1, 1, 2, 3, 3, 4, 5, 6, 7, 8, 9, 9, 10, 11, 12, 12];
    prop::collection::vec(prop::sample::select(lines.to_vec()), 1..200).prop_map(|picks| {
        picks
            .iter()
            .map(|&p| {
                if p == 12 { "\n".repeat(super::AROUND_BYTES + 100) } else { format!("{}\n", LONG_LINES[p]) }
            })
            .collect()
    })
}

const LONG_LINES: [&str; 12] = [
    "2026-11-21T10:00:01Z INFO payments-api request_id=qhfwcepyyngfb51y method=POST took=899ms",
    "2026-11-21T10:00:02Z WARN user=jane.doe@example.com password=hunter22 took=12ms",
    "2026-11-21T10:00:03Z DEBUG db=postgres://app:s3cr3tpassw0rd@db1:5432/pay took=899ms",
    "api_key =",
    "=",
    "  \"Q1w2E3r4T5y6U7i8\"",
    "Authorization: Basic",
    "   QWxhZGRpbjpvcGVuIHNlc2FtZQ==",
    "curl -X POST https://api.example.com \\",
    "zx81kq0plm3nv7rt",
    "",
    "   ",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Lines of a long chunk, redacted from the lines around them only (when no rule that
    /// reaches far can match), come out exactly as from all the chunk's lines.
    #[test]
    fn lines_redacted_from_the_lines_around_them_come_out_as_from_the_whole_chunk(
        chunk in long_chunk(),
        picks in prop::collection::vec(any::<prop::sample::Index>(), 1..4),
    ) {
        let text = chunk.as_bytes();
        let full = Lines::new(text);
        let mut wanted: Vec<usize> = picks.iter().map(|pick| pick.index(full.last())).collect();
        wanted.sort_unstable();
        wanted.dedup();
        let ranges: Vec<std::ops::Range<usize>> = wanted.iter().map(|&l| full.start(l)..full.end(l)).collect();
        for rules in [&*STANDARD, &*BUILTIN, &*SPACED] {
            let (mut around, mut counted) = (Vec::new(), Counts::default());
            let alone = rules.redact_lines(text, &ranges, &key(), &mut around, &mut counted);
            let far = if rules.line_path.gate.may_match(text) { rules.find_far(&full) } else { Vec::new() };
            let (mut whole, mut counted_whole) = (Vec::new(), Counts::default());
            let from_whole = rules.redact_lines_in(&full, &ranges, &far, &key(), &mut whole, &mut counted_whole);
            prop_assert_eq!(Some(alone), from_whole);
            prop_assert_eq!(String::from_utf8_lossy(&around), String::from_utf8_lossy(&whole));
            prop_assert_eq!(counted.total(), counted_whole.total());
        }
    }
}

#[test]
fn a_key_further_back_than_the_lines_cut_around_its_value_is_found() {
    // The value's window runs up over the blank lines to its key, past the bytes cut into lines
    // around it: then the whole chunk is.
    let rules = &*SPACED;
    let chunk = format!("key =\n{}  zx81kq0plm3nv7rt\n2026-11-21T10:00:02Z took=1ms\n", "\n".repeat(6000));
    let whole = whole(rules, &chunk);
    assert!(!whole.contains("zx81kq0plm3nv7rt"), "{whole}");
    assert!(same_as_whole(rules, &chunk, &[6001]));
}
