use proptest::prelude::*;

use super::*;

fn builtin() -> RuleSet {
    RuleSet::builtin().unwrap()
}

fn redact_with(rules: &RuleSet, text: &str) -> String {
    let mut out = Vec::new();
    rules.redact(text.as_bytes(), &Placeholder { fixed: None }, &mut out, &mut Counts::default());
    String::from_utf8(out).unwrap()
}

/// For each built-in rule: texts in which it must redact exactly `value`, and texts it must leave
/// alone.
/// `(rule, [(text, redacted)], [text left alone])`.
type Cases = (&'static str, &'static [(&'static str, &'static str)], &'static [&'static str]);

const CORPUS: &[Cases] = &[
    (
        "email",
        &[
            ("user jane.doe+shop@example.co.uk logged in", "user <email> logged in"),
            ("to=<ops@pay.example.com>", "to=<<email>>"),
        ],
        &["no at-sign here", "user@localhost", "@mention in chat", "a @ b.com"],
    ),
    (
        "card",
        &[
            ("card=4111 1111 1111 1111 ok", "card=<card> ok"),
            ("pan 5500-0000-0000-0004", "pan <card>"),
            ("amex 378282246310005.", "amex <card>."),
        ],
        &["card=4111 1111 1111 1112", "order 1234567890123", "ts=1700000000000"],
    ),
    (
        "iban",
        &[
            ("iban DE89 3704 0044 0532 0130 00 paid", "iban <iban> paid"),
            ("GB82WEST12345698765432", "<iban>"),
        ],
        &["DE89 3704 0044 0532 0130 01", "ABCD 1234"],
    ),
    (
        "phone",
        &[
            ("call +49 30 1234567 now", "call <phone> now"),
            ("tel (415) 555-0100", "tel <phone>"),
            ("+1-415-555-0100", "<phone>"),
        ],
        &["version 1.2.3", "took 1234 ms", "+ 1"],
    ),
    (
        "jwt",
        &[(
            "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U x",
            "token <jwt> x",
        )],
        &["eyJ alone", "eyJabc.def"],
    ),
    (
        "bearer",
        &[
            ("Authorization: Bearer abcdef0123456789xyz", "Authorization: Bearer <credential>"),
            ("auth=Basic dXNlcjpwYXNzd29yZA==", "auth=Basic <credential>"),
        ],
        &["bearer of bad news", "basic auth disabled"],
    ),
    (
        "private-key",
        &[(
            "key -----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\nabc\n-----END RSA PRIVATE KEY----- done",
            "key <private-key> done",
        )],
        &["-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----", "private key rotation scheduled"],
    ),
    (
        "url-password",
        &[(
            "db=postgres://app:s3cr3t-Pw@db.internal:5432/pay",
            "db=postgres://app:<password>@db.internal:5432/pay",
        )],
        &["https://example.com/path@v2", "see https://user@example.com"],
    ),
    (
        "secret-pair",
        &[
            ("password=hunter22 user=x", "password=<secret> user=x"),
            ("api_key: k-12345", "api_key: <secret>"),
            // Prefixed and camelCase keys.
            ("db_password=hunter22", "db_password=<secret>"),
            ("X-Api-Key: k-12345", "X-Api-Key: <secret>"),
            // An escaped quote after the value stays whole: the text is still JSON.
            (r#"{"msg":"login password=hunter2\" ok"}"#, r#"{"msg":"login password=<secret>\" ok"}"#),
        ],
        &[
            "password reset requested",
            "token expired",
            "secret=<secret:0123456789ab>",
            "password=$DB_PASSWORD",
            "pwd=*****",
            "token: null",
            r#"{"password": "hunter2"}"#,
        ],
    ),
    (
        "secret-pair-quoted",
        &[
            (r#"{"client_secret":"abc123xyz"}"#, r#"{"client_secret":"<secret>"}"#),
            // JSON, and JSON inside a JSON string (a message that quotes a body).
            (r#"{"password": "hunter2"}"#, r#"{"password": "<secret>"}"#),
            (r#"{"msg":"login password=\"hunter2\" ok"}"#, r#"{"msg":"login password=\"<secret>\" ok"}"#),
            (r#"{"msg":"{\"password\": \"hunter2\"}"}"#, r#"{"msg":"{\"password\": \"<secret>\"}"}"#),
            (r#"{"msg":"{\"password\":\"hunter2\"}"}"#, r#"{"msg":"{\"password\":\"<secret>\"}"}"#),
            // A quoted value is redacted to its closing quote, spaces and commas included.
            (r#"{"password": "correct horse, battery"}"#, r#"{"password": "<secret>"}"#),
            (r#"{"password": "a\"b c"}"#, r#"{"password": "<secret>"}"#),
            ("password = 'two words'", "password = '<secret>'"),
            // Prefixed and camelCase keys.
            (r#"{"db_password": "hunter2"}"#, r#"{"db_password": "<secret>"}"#),
            (
                r#"{"newPassword":"hunter2","accessToken":"abc.def"}"#,
                r#"{"newPassword":"<secret>","accessToken":"<secret>"}"#,
            ),
        ],
        &[
            "password reset requested",
            r#"{"password": ""}"#,
            r#"{"password": "<secret:0123456789ab>"}"#,
            r#"{"password": null}"#,
            r#"{"password": "$DB_PASSWORD"}"#,
            "password=hunter22",
        ],
    ),
    (
        "aws-access-key",
        &[("key AKIAIOSFODNN7EXAMPLE used", "key <aws-key> used")],
        &["AKIA too short", "AKIAIOSFODNN7EXAMPLEXYZ"],
    ),
    (
        "aws-secret-key",
        &[
            (
                "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                "aws_secret_access_key = <aws-secret>",
            ),
            (
                r#"{"msg":"{\"aws_secret_access_key\":\"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\"}"}"#,
                r#"{"msg":"{\"aws_secret_access_key\":\"<aws-secret>\"}"}"#,
            ),
        ],
        &["aws region eu-west-1"],
    ),
    ("gcp-api-key", &[("k=AIzaSyA1234567890abcdefghijklmnopqrstuv", "k=<gcp-key>")], &["AIza short"]),
    (
        "github-token",
        &[("ghp_0123456789abcdefghijABCDEFGHIJ012345 leaked", "<github-token> leaked")],
        &["ghp_short"],
    ),
    ("slack-token", &[("xoxb-1234567890-abcdefghij", "<slack-token>")], &["xoxo hugs"]),
    ("stripe-key", &[("sk_live_4eC39HqLyjWDarjtT1zdp7dc", "<stripe-key>")], &["sk_live_short"]),
    (
        "ipv4",
        &[("from 10.1.2.3:443", "from <ipv4>:443"), ("ip=192.168.0.255", "ip=<ipv4>")],
        &["256.1.1.1", "1.2.3", "10.0.0.256"],
    ),
];

#[test]
fn work_spread_over_the_cores_comes_back_in_order() {
    let items: Vec<usize> = (0..1001).collect();
    assert_eq!(crate::map_on_cores(&items, |i| i * 3), items.iter().map(|i| i * 3).collect::<Vec<_>>());
    assert!(crate::map_on_cores(&[] as &[usize], |i| *i).is_empty());
}

#[test]
fn every_builtin_rule_has_a_corpus_and_passes_it() {
    let rules = builtin();
    for rule in rules.rules() {
        assert!(CORPUS.iter().any(|(id, _, _)| *id == rule.id), "no corpus for `{}`", rule.id);
    }
    for (id, positives, negatives) in CORPUS {
        let only = RuleSet::new(rules.rules().iter().filter(|r| r.id == *id).cloned().collect()).unwrap();
        for (text, expected) in *positives {
            assert_eq!(redact_with(&only, text), *expected, "rule `{id}` on {text:?}");
        }
        for text in *negatives {
            assert_eq!(redact_with(&only, text), *text, "rule `{id}` must leave {text:?} alone");
        }
    }
}

#[test]
fn pseudonyms_are_stable_under_one_key_and_differ_under_another() {
    let rules = builtin();
    let text = b"jane@example.com paid, then jane@example.com refunded, bob@example.com watched\n";
    let run = |key: [u8; 32]| {
        let mut out = Vec::new();
        let mut counts = Counts::default();
        rules.redact(text, &Pseudonyms::new(&key), &mut out, &mut counts);
        (String::from_utf8(out).unwrap(), counts)
    };
    let (a, counts) = run([1; 32]);
    let words: Vec<&str> = a.split_whitespace().collect();
    assert!(words[0].starts_with("<email:") && words[0].len() == "<email:0123456789ab>".len(), "{a}");
    assert_eq!(words[0], words[3], "one customer keeps one pseudonym");
    assert_ne!(words[0], words[5]);
    assert_eq!(rules.summary(&counts), [("email".to_owned(), 3)]);
    let (b, _) = run([2; 32]);
    assert_ne!(a, b, "unlinkable under another grant's key");
}

/// 48 bits: within one grant, tens of thousands of customers keep tens of thousands of
/// pseudonyms (24 bits collide past a few thousand).
#[test]
fn pseudonyms_do_not_collide_within_one_key_on_a_large_log() {
    let pseudonyms = Pseudonyms::new(&[5; 32]);
    let mut seen = std::collections::HashSet::new();
    for i in 0..20_000 {
        let mut out = Vec::new();
        pseudonyms.replace("email", format!("customer{i}@example.com").as_bytes(), &mut out);
        assert!(seen.insert(out), "customer{i} shares a pseudonym with another customer");
    }
}

#[test]
fn overlapping_matches_merge_and_nothing_is_left_half_redacted() {
    let rules = builtin();
    let text =
        "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_X";
    let out = redact_with(&rules, text);
    assert_eq!(out.matches('<').count(), 1, "{out}");
    assert!(!out.contains("eyJ"));
}

#[test]
fn a_secret_dressed_up_as_a_pseudonym_is_still_redacted() {
    // Only ward's own kinds are left alone; `token` is not one of them.
    let rules = builtin();
    let out = redact_with(&rules, "seen <token:0123456789ab> and <email:0123456789ab>");
    assert_eq!(out, "seen <token:<secret>> and <email:0123456789ab>", "`token` is no kind of ward's");
    let shielded = redact_with(&rules, "key <ghp_0123456789abcdefghijABCDEFGHIJ012345:abcdef>");
    assert!(!shielded.contains("ghp_0123"), "{shielded}");
}

#[test]
fn a_match_never_spans_lines_unless_the_rule_says_so() {
    let rules = builtin();
    // `secret-pair` allows spaces before the value, and a newline must not count as one.
    let out = redact_with(&rules, "password=\nhunter22\npassword=hunter22\n");
    assert_eq!(out, "password=\nhunter22\npassword=<secret>\n");
}

/// Lines built of realistic log text with secrets of every built-in kind spliced in.
fn log_line() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "user=jane.doe@example.com",
        "card 4111 1111 1111 1111",
        "iban DE89 3704 0044 0532 0130 00",
        "call +49 30 1234567",
        "Authorization: Bearer abcdef0123456789xyz",
        "token=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_X",
        "postgres://app:s3cr3t@db:5432/x",
        "password=hunter22",
        "AKIAIOSFODNN7EXAMPLE",
        "ip 10.0.0.1",
        "GET /api/v1/orders 200",
        "took 12ms",
        "<email:0123456789ab>",
        "level=debug",
        "ghp_0123456789abcdefghijABCDEFGHIJ012345",
    ]);
    prop::collection::vec((pieces, "[ ,;=:\"'()\\[\\]]{1,2}"), 1..8)
        .prop_map(|parts| parts.into_iter().map(|(p, sep)| format!("{p}{sep}")).collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Redacting twice changes nothing, and no rule matches anything left in the output.
    #[test]
    fn redaction_is_idempotent_and_leaves_no_match(lines in prop::collection::vec(log_line(), 1..6)) {
        let rules = builtin();
        let text = lines.join("\n");
        let mut once = Vec::new();
        rules.redact(text.as_bytes(), &Pseudonyms::new(&[7; 32]), &mut once, &mut Counts::default());
        let mut twice = Vec::new();
        rules.redact(&once, &Pseudonyms::new(&[7; 32]), &mut twice, &mut Counts::default());
        prop_assert_eq!(&once, &twice);
        prop_assert!(rules.find(&once).is_empty(), "left: {:?}", String::from_utf8_lossy(&once));
    }

    /// Arbitrary bytes never panic, and the output is the input outside the replaced spans.
    #[test]
    fn arbitrary_bytes_are_handled(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let rules = builtin();
        let mut out = Vec::new();
        rules.redact(&bytes, &Placeholder { fixed: Some(b"#".to_vec()) }, &mut out, &mut Counts::default());
        let findings = rules.find(&bytes);
        let removed: usize = findings.iter().map(|f| f.end - f.start).sum();
        prop_assert_eq!(out.len(), bytes.len() - removed + findings.len());
    }
}

mod streaming {
    use super::*;
    use crate::stream::{self, CUT_MARK, Limits};

    /// Redacts on the caller's thread and on three side by side: the same output either way.
    fn run(input: &[u8], limits: Limits) -> (Vec<u8>, Counts) {
        let rules = builtin();
        let redact = |threads: usize| {
            let mut out = Vec::new();
            let limits = Limits { threads, ..limits };
            let counts =
                stream::redact(&rules, &Placeholder { fixed: None }, input, &mut out, limits).unwrap();
            (out, counts)
        };
        let inline = redact(1);
        let parallel = redact(3);
        assert_eq!(String::from_utf8_lossy(&parallel.0), String::from_utf8_lossy(&inline.0));
        assert_eq!(parallel.1, inline.1);
        inline
    }

    /// What a gated stream handed its sink: redacted text, and the chunks held back, in order;
    /// lines redacted alone as (redacted, false) after their chunk as (raw, false).
    #[derive(Default)]
    struct Gated {
        pieces: Vec<(bool, Vec<u8>)>,
        alone: Vec<Vec<u8>>,
    }

    impl stream::Sink for Gated {
        fn redacted(&mut self, text: &[u8]) -> std::io::Result<()> {
            self.pieces.push((true, text.to_vec()));
            Ok(())
        }

        fn skipped(&mut self, raw: &[u8]) -> std::io::Result<()> {
            self.pieces.push((false, raw.to_vec()));
            Ok(())
        }

        fn lines(
            &mut self,
            raw: &[u8],
            at: &[std::ops::Range<usize>],
            redacted: &[u8],
        ) -> std::io::Result<()> {
            assert_eq!(redacted.iter().filter(|&&b| b == b'\n').count(), at.len());
            self.pieces.push((false, raw.to_vec()));
            self.alone.extend(redacted.split_inclusive(|&b| b == b'\n').map(<[u8]>::to_vec));
            Ok(())
        }
    }

    /// The chunks a gate lets through are redacted exactly as without one; the others reach
    /// the sink as read, in their place, on one thread or several.
    #[test]
    fn a_gate_skips_chunks_and_keeps_their_order() {
        let rules = builtin();
        let mut input = Vec::new();
        for i in 0..4000 {
            input.extend_from_slice(
                format!("line {i} user=jane{i}@example.com{}\n", if i % 900 == 7 { " hit" } else { "" })
                    .as_bytes(),
            );
        }
        let limits = Limits { chunk_bytes: 4096, ..Limits::default() };
        let mut all = Vec::new();
        stream::redact(&rules, &Placeholder { fixed: None }, &input[..], &mut all, limits).unwrap();
        for threads in [1, 3] {
            let mut sink = Gated::default();
            let gate = |chunk: &[u8]| {
                if chunk.windows(4).any(|w| w == b" hit") {
                    stream::Wanted::All
                } else {
                    stream::Wanted::Nothing
                }
            };
            let limits = Limits { threads, ..limits };
            stream::redact_gated(&rules, &Placeholder { fixed: None }, &input[..], &mut sink, limits, &gate)
                .unwrap();
            let skipped = sink.pieces.iter().filter(|(redacted, _)| !redacted).count();
            assert!(skipped > 20 && skipped < sink.pieces.len(), "{skipped} of {}", sink.pieces.len());
            // Skipped chunks are the input as read, redacted ones as `redact` gives them: in
            // order, redacting the skipped ones gives exactly the ungated output.
            let mut again = Vec::new();
            for (redacted, text) in &sink.pieces {
                if *redacted {
                    again.extend_from_slice(text);
                } else {
                    assert!(text.windows(4).all(|w| w != b" hit"));
                    let mut out = Vec::new();
                    rules.redact(text, &Placeholder { fixed: None }, &mut out, &mut Counts::default());
                    again.extend_from_slice(&out);
                }
            }
            assert_eq!(String::from_utf8_lossy(&again), String::from_utf8_lossy(&all), "{threads} threads");
        }
    }

    /// The lines a gate wants of a chunk are redacted alone, as in the whole stream's output;
    /// the other chunks are held back, on one thread or several.
    #[test]
    fn a_gate_wanting_lines_gets_them_redacted_alone() {
        let rules = builtin();
        let mut input = Vec::new();
        for i in 0..4000 {
            let hit = if i % 300 == 7 { " hit" } else { "" };
            input.extend_from_slice(format!("line {i} user=jane{i}@example.com{hit}\n").as_bytes());
        }
        let limits = Limits { chunk_bytes: 4096, ..Limits::default() };
        let mut all = Vec::new();
        stream::redact(&rules, &Placeholder { fixed: None }, &input[..], &mut all, limits).unwrap();
        let expected: Vec<&[u8]> =
            all.split_inclusive(|&b| b == b'\n').filter(|l| l.windows(4).any(|w| w == b" hit")).collect();
        let gate = |chunk: &[u8]| {
            let mut at = Vec::new();
            let mut start = 0;
            for line in chunk.split_inclusive(|&b| b == b'\n') {
                if line.windows(4).any(|w| w == b" hit") {
                    at.push(start..start + line.len() - 1);
                }
                start += line.len();
            }
            if at.is_empty() { stream::Wanted::Nothing } else { stream::Wanted::Lines(at) }
        };
        for threads in [1, 3] {
            let mut sink = Gated::default();
            let limits = Limits { threads, ..limits };
            let counts = stream::redact_gated(
                &rules,
                &Placeholder { fixed: None },
                &input[..],
                &mut sink,
                limits,
                &gate,
            )
            .unwrap();
            assert!(sink.pieces.iter().all(|(redacted, _)| !redacted), "no chunk redacted whole");
            let raw: Vec<u8> = sink.pieces.iter().flat_map(|(_, raw)| raw.clone()).collect();
            assert_eq!(raw, input, "every chunk reaches the sink as read, in order");
            assert_eq!(sink.alone, expected, "{threads} threads");
            assert_eq!(counts.total(), expected.len() as u64);
        }
    }

    /// Takes `room` bytes, then fails.
    struct Full {
        room: usize,
    }

    impl std::io::Write for Full {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.room == 0 {
                return Err(std::io::Error::other("full"));
            }
            let n = buf.len().min(self.room);
            self.room -= n;
            Ok(n)
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn an_output_that_fails_midway_stops_the_stream_on_any_number_of_threads() {
        let text = "jane@example.com said hello\n".repeat(10_000);
        for threads in [1, 2, 4] {
            let limits = Limits { chunk_bytes: 256, threads, ..Limits::default() };
            let result = stream::redact(
                &builtin(),
                &Placeholder { fixed: None },
                text.as_bytes(),
                Full { room: 5000 },
                limits,
            );
            assert!(result.is_err(), "threads {threads}");
        }
    }

    #[test]
    fn the_stream_matches_the_whole_text_whatever_the_chunk_size() {
        let text: String =
            (0..500).map(|i| format!("{i} user{i}@example.com card 4111 1111 1111 1111\n")).collect();
        let whole = redact_with(&builtin(), &text);
        for chunk_bytes in [1, 7, 100, 4096, 1 << 20] {
            let (out, counts) =
                run(text.as_bytes(), Limits { chunk_bytes, max_line_bytes: 1 << 20, ..Limits::default() });
            assert_eq!(String::from_utf8(out).unwrap(), whole, "chunk {chunk_bytes}");
            assert_eq!(counts.total(), 1000);
        }
    }

    /// The chunks a stream is cut into, read through a buffer of `capacity` bytes.
    fn chunks_read_through(text: &[u8], capacity: usize, limits: Limits) -> Vec<Vec<u8>> {
        let seen = std::sync::Mutex::new(Vec::new());
        let gate = |chunk: &[u8]| {
            seen.lock().unwrap().push(chunk.to_vec());
            stream::Wanted::Nothing
        };
        let reader = std::io::BufReader::with_capacity(capacity, text);
        let replace = Placeholder { fixed: None };
        stream::redact_gated(&builtin(), &replace, reader, Gated::default(), limits, &gate).unwrap();
        seen.into_inner().unwrap()
    }

    #[test]
    fn chunks_end_at_the_same_lines_however_the_input_is_buffered() {
        // Lines of every length around the chunk's and the limit's, some cut, a key block.
        let mut text = Vec::new();
        for i in 0..400usize {
            text.extend(std::iter::repeat_n(b'a' + (i % 26) as u8, (i * 37) % 260));
            text.push(b'\n');
            if i == 200 {
                text.extend_from_slice(b"-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n");
            }
        }
        text.extend_from_slice(b"no newline at the end");
        for (chunk_bytes, max_line_bytes) in [(1000, 200), (64, 1 << 20), (4096, 100)] {
            let limits = Limits { chunk_bytes, max_line_bytes, threads: 1 };
            let line_by_line = chunks_read_through(&text, 1, limits);
            for capacity in [7, 300, 1 << 16] {
                assert_eq!(
                    chunks_read_through(&text, capacity, limits),
                    line_by_line,
                    "{limits:?} {capacity}"
                );
            }
            assert!(line_by_line.len() > 3);
        }
    }

    #[test]
    fn a_key_block_of_many_short_lines_is_withheld_in_one_pass() {
        // 60,000 lines of an unterminated block: looked for once, not once per line.
        let text = format!("before\n-----BEGIN PRIVATE KEY-----\n{}", "QUJDREVG\n".repeat(60_000));
        let (out, _) = run(
            text.as_bytes(),
            Limits { chunk_bytes: 4096, max_line_bytes: 64 * 1024, ..Limits::default() },
        );
        assert_eq!(String::from_utf8(out).unwrap(), "before\n<private-key>\n");
    }

    #[test]
    fn a_key_block_is_held_back_until_it_ends_or_withheld_whole() {
        let mut guard = stream::KeyGuard::default();
        let poll = b"a\n-----BEGIN PRIVATE KEY-----\nMIIE\n";
        let taken = guard.take(poll, 1 << 20);
        assert_eq!((taken.lines.as_slice(), taken.used, taken.withheld), (&b"a\n"[..], 2, false));
        // Too long to wait for: withheld whole, and its lines dropped up to END.
        let mut guard = stream::KeyGuard::default();
        let taken = guard.take(poll, 8);
        assert_eq!((taken.lines.as_slice(), taken.used, taken.withheld), (&b"a\n"[..], poll.len(), true));
        let taken = guard.take(b"QUJD\n-----END PRIVATE KEY-----\nb\n", 8);
        assert_eq!(taken.lines, b"b\n");
    }

    #[test]
    fn an_overlong_line_is_cut_and_marked() {
        let mut text = vec![b'a'; 100];
        text.extend_from_slice(b" jane@example.com\nnext jane@example.com\n");
        let (out, _) = run(&text, Limits { chunk_bytes: 16, max_line_bytes: 50, ..Limits::default() });
        let mut expected = vec![b'a'; 50];
        expected.extend_from_slice(CUT_MARK);
        expected.extend_from_slice(b"\nnext <email>\n");
        assert_eq!(String::from_utf8(out).unwrap(), String::from_utf8(expected).unwrap());
    }

    #[test]
    fn a_key_block_is_never_split_and_an_endless_one_fails_closed() {
        let block = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----\n";
        let text = format!("before\n{block}after\n");
        let (out, _) =
            run(text.as_bytes(), Limits { chunk_bytes: 8, max_line_bytes: 1 << 20, ..Limits::default() });
        assert_eq!(String::from_utf8(out).unwrap(), "before\n<private-key>\nafter\n");
        // A block that never ends within the limit: everything from BEGIN on is withheld.
        let endless =
            format!("before\n-----BEGIN PRIVATE KEY-----\n{}", "QUJDREVGR0hJSktMTU5PUA==\n".repeat(40));
        let (out, counts) =
            run(endless.as_bytes(), Limits { chunk_bytes: 8, max_line_bytes: 200, ..Limits::default() });
        let out = String::from_utf8(out).unwrap();
        assert!(out.starts_with("before\n<private-key>\n"), "{out}");
        assert!(!out.contains("QUJD"), "{out}");
        assert!(counts.total() >= 1);
    }
}

/// With the lines before as context, a value whose key is on a line handed out already is
/// still found; nothing of the context is written again.
#[test]
fn redacting_after_context_finds_matches_that_begin_in_it() {
    let (rules, _) = RuleSet::standard().unwrap();
    let replace = crate::Pseudonyms::new(&[1; 32]);
    let context = b"2026-11-21T10:00:02Z config dump: client_secret =\n";
    let text = [&context[..], b"  'Zq8vN3rT5wY7uI9oP1aS2dF4gH6jK8lX'\nlast jane@example.com\n"].concat();
    let (mut alone, mut after) = (Vec::new(), Vec::new());
    rules.redact(&text[context.len()..], &replace, &mut alone, &mut Default::default());
    assert!(
        String::from_utf8_lossy(&alone).contains("Zq8vN3rT5wY7uI9oP1aS2dF4gH6jK8lX"),
        "the line alone is not enough"
    );
    let mut counts = Default::default();
    rules.redact_after(&text, context.len(), &replace, &mut after, &mut counts);
    let after = String::from_utf8(after).unwrap();
    assert!(after.starts_with("  '<") && !after.contains("Zq8vN3") && !after.contains("jane@"), "{after}");
    assert!(!after.contains("config dump"), "{after}");
    assert_eq!(counts.total(), 2);
}

/// A set large enough for the keyword pass: `rules` and fillers that never match.
fn keyworded(rules: Vec<Rule>) -> RuleSet {
    let fillers = (0..SMALL_RULE_SET)
        .map(|i| Rule::new(&format!("filler.{i}"), "x", &["zzzq"], "zzzq\\d{40}").unwrap());
    RuleSet::new(rules.into_iter().chain(fillers).collect()).unwrap()
}

#[test]
fn a_case_insensitive_rule_without_keywords_is_woken_by_its_word_in_any_case() {
    let rule = Rule::new("basic", "basic-auth", &[], r"(?i)authorization:\s+basic\s+([a-z0-9+/=]{8,})")
        .unwrap()
        .group(1);
    let rules = keyworded(vec![rule]);
    assert!(rules.unprefiltered().is_empty(), "{:?}", rules.unprefiltered());
    for line in [
        "Authorization: Basic QWxhZGRpbjpvcGVu",
        "AUTHORIZATION: BASIC QWxhZGRpbjpvcGVu",
        "authorization:\tbasic QWxhZGRpbjpvcGVu",
    ] {
        assert!(redact_with(&rules, line).ends_with("<basic-auth>"), "{line}");
    }
    let standard = RuleSet::standard().unwrap().0;
    let always = standard.unprefiltered();
    assert!(!always.contains(&"np.http.1") && !always.contains(&"np.jwt.2"), "{always:?}");
}

#[test]
fn a_value_after_blank_lines_is_found_from_its_keyword() {
    let rule =
        Rule::new("pair", "secret", &["apikey"], r"apikey\s*=\s*(\w{8,})").unwrap().multiline().group(1);
    let rules = keyworded(vec![rule]);
    let text = "a\napikey =\n\n  \n\t\n   s3cr3tvalue\nb\n";
    assert_eq!(redact_with(&rules, text), "a\napikey =\n\n  \n\t\n   <secret>\nb\n");
}
