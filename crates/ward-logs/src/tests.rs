use std::io::Write as _;

use ward_redact::{Pseudonyms, RuleSet};

use super::*;

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

const LOG: &str = "\
2026-11-21T10:00:00Z INFO charge ok user=jane@example.com card=4111 1111 1111 1111
2026-11-21T10:05:00Z WARN retry user=jane@example.com
  continuation without a time
2026-11-21T10:10:00Z ERROR declined user=bob@example.com token=Bearer abcdefgh12345678
";

fn run(source: &Source, query: &Query, masking: &Masking<'_>) -> (Vec<Line>, Summary) {
    let mut lines = Vec::new();
    let summary = search(source, query, masking, &mut |line| {
        lines.push(line);
        true
    })
    .unwrap();
    (lines, summary)
}

#[test]
fn lines_come_out_redacted_in_range_and_matched_on_the_redacted_text() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("app.log"), LOG);
    let source = Source::new(vec![dir.path().join("*.log")]).unwrap();
    let rules = RuleSet::builtin().unwrap();
    let replace = Pseudonyms::new(&[3; 32]);
    let masked = Masking::Redacted { rules: &rules, replace: &replace };
    let everything = Query { limit: 100, ..Query::default() };
    let (lines, summary) = run(&source, &everything, &masked);
    assert_eq!(lines.len(), 4);
    assert!(!lines.iter().any(|l| l.text.contains("jane@") || l.text.contains("4111")), "{lines:?}");
    assert_eq!(summary.redactions.get("email"), Some(&3));
    assert_eq!(summary.redactions.get("card"), Some(&1));
    // One customer, one pseudonym: lines 1 and 2 share it.
    let pseudonym = |l: &Line| l.text.split("user=").nth(1).unwrap().split(' ').next().unwrap().to_owned();
    assert_eq!(pseudonym(&lines[0]), pseudonym(&lines[1]));
    // The continuation line takes the time of the line before it.
    assert_eq!(lines[2].time, Some(at("2026-11-21T10:05:00Z")));

    let ranged = Query {
        since: Some(at("2026-11-21T10:05:00Z")),
        until: Some(at("2026-11-21T10:10:00Z")),
        ..everything.clone()
    };
    let (lines, _) = run(&source, &ranged, &masked);
    assert_eq!(lines.len(), 2, "{lines:?}");

    // A pattern is matched against what the reader sees: never the raw secret.
    let oracle =
        Query { pattern: Some(regex::bytes::Regex::new("jane@example").unwrap()), ..everything.clone() };
    assert!(run(&source, &oracle, &masked).0.is_empty());
    assert_eq!(run(&source, &oracle, &Masking::Raw).0.len(), 2);
    let by_kind = Query { pattern: Some(regex::bytes::Regex::new("<email:").unwrap()), ..everything.clone() };
    assert_eq!(run(&source, &by_kind, &masked).0.len(), 3);
}

#[test]
fn rotated_and_gzipped_files_are_read_oldest_first_and_the_limit_stops() {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("app.log.1.gz");
    let mut gz = flate2::write::GzEncoder::new(File::create(&old).unwrap(), flate2::Compression::fast());
    gz.write_all(b"2026-11-21T09:00:00Z old line one\n2026-11-21T09:01:00Z old line two\n").unwrap();
    gz.finish().unwrap();
    let past = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    File::options().write(true).open(&old).unwrap().set_modified(past).unwrap();
    write(&dir.path().join("app.log"), "2026-11-21T10:00:00Z new line\n");
    let source = Source::new(vec![dir.path().join("app.log*")]).unwrap();
    let (lines, summary) = run(&source, &Query { limit: 100, ..Query::default() }, &Masking::Raw);
    let texts: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(
        texts,
        [
            "2026-11-21T09:00:00Z old line one",
            "2026-11-21T09:01:00Z old line two",
            "2026-11-21T10:00:00Z new line"
        ]
    );
    assert_eq!((summary.files, summary.lines, summary.truncated), (2, 3, false));
    let (lines, summary) = run(&source, &Query { limit: 2, ..Query::default() }, &Masking::Raw);
    assert_eq!((lines.len(), summary.truncated), (2, true));
}

#[test]
fn symbolic_links_are_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("elsewhere.txt");
    write(&secret, "2026-11-21T10:00:00Z not a log of this resource\n");
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    std::os::unix::fs::symlink(&secret, logs.join("app.log")).unwrap();
    let source = Source::new(vec![logs.join("*.log")]).unwrap();
    assert!(source.files().is_empty());
}

#[test]
fn times_are_read_from_text_and_json_lines() {
    assert_eq!(line_time(b"2026-11-21T10:00:00.5+01:00 x"), Some(at("2026-11-21T09:00:00.5Z")));
    assert_eq!(line_time(b"[2026-11-21 10:00:00,250] x"), Some(at("2026-11-21T10:00:00.25Z")));
    assert_eq!(
        line_time(br#"{"level":"info","ts":"2026-11-21T10:00:00Z","msg":"x"}"#),
        Some(at("2026-11-21T10:00:00Z"))
    );
    assert_eq!(line_time(b"no time here"), None);
    assert_eq!(line_time(b"2026-13-45T99:00:00Z bad"), None);
}

/// Each poll's lines, as `file: text` strings.
fn poll(follow: &mut Follow, max: usize) -> Vec<String> {
    let polled = follow.poll(max, 1 << 20);
    assert!(polled.failed.is_empty(), "{:?}", polled.failed);
    polled
        .appended
        .iter()
        .flat_map(|a| {
            String::from_utf8_lossy(&a.lines)
                .lines()
                .map(|l| format!("{}: {l}", a.source))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Following the files `pattern` matches in `dir`.
fn follow(dir: &Path, pattern: &str) -> Follow {
    Follow::start(&Source::new(vec![dir.join(pattern)]).unwrap())
}

fn append(path: &Path, text: &str) {
    File::options().append(true).create(true).open(path).unwrap().write_all(text.as_bytes()).unwrap();
}

#[test]
fn following_reads_only_complete_appended_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    write(&path, "one\n");
    let mut follow = follow(dir.path(), "*.log");
    assert!(poll(&mut follow, 1 << 20).is_empty(), "what was there at the start is not followed");
    append(&path, "two\nthr");
    assert_eq!(poll(&mut follow, 1 << 20), ["app.log: two"]);
    append(&path, "ee\n");
    assert_eq!(poll(&mut follow, 1 << 20), ["app.log: three"]);
}

#[test]
fn a_file_rotated_by_renaming_is_read_to_its_end_then_its_successor_from_its_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    write(&path, "old\n");
    let mut follow = follow(dir.path(), "app.log*");
    append(&path, "before rotation\n");
    std::fs::rename(&path, dir.path().join("app.log.1")).unwrap();
    // The writer has not reopened yet: its last lines go to the renamed file.
    append(&dir.path().join("app.log.1"), "after rename\n");
    append(&path, "new file\n");
    assert_eq!(
        poll(&mut follow, 1 << 20),
        ["app.log.1: before rotation", "app.log.1: after rename", "app.log: new file"]
    );
    append(&path, "more\n");
    assert_eq!(poll(&mut follow, 1 << 20), ["app.log: more"]);
}

#[test]
fn a_file_renamed_out_of_the_pattern_or_deleted_is_drained_then_let_go() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    write(&path, "");
    let mut follow = follow(dir.path(), "*.log");
    append(&path, "last words\n");
    std::fs::rename(&path, dir.path().join("app.old")).unwrap();
    assert_eq!(poll(&mut follow, 1 << 20), ["app.log: last words"]);
    assert!(poll(&mut follow, 1 << 20).is_empty());
    assert_eq!(follow.files(), 0, "nothing more came: let go");
}

#[test]
fn a_new_file_is_read_from_its_start_and_a_truncated_one_again() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("2026-11-20.jsonl"), "{\"msg\":\"yesterday\"}\n");
    let mut follow = follow(dir.path(), "*.jsonl");
    // Past midnight, pushed lines go to the next day's file.
    append(&dir.path().join("2026-11-21.jsonl"), "{\"msg\":\"today\"}\n");
    assert_eq!(poll(&mut follow, 1 << 20), [r#"2026-11-21.jsonl: {"msg":"today"}"#]);
    // Truncated in place (copytruncate) and written again.
    write(&dir.path().join("2026-11-21.jsonl"), "{\"x\":1}\n");
    assert_eq!(poll(&mut follow, 1 << 20), [r#"2026-11-21.jsonl: {"x":1}"#]);
}

#[test]
fn a_key_block_is_handed_out_whole_across_polls() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    write(&path, "");
    let mut follow = follow(dir.path(), "*.log");
    append(&path, "a\n-----BEGIN PRIVATE KEY-----\nMIIE\n");
    assert_eq!(poll(&mut follow, 1 << 20), ["app.log: a"]);
    append(&path, "-----END PRIVATE KEY-----\nb\n");
    assert_eq!(
        poll(&mut follow, 1 << 20),
        [
            "app.log: -----BEGIN PRIVATE KEY-----",
            "app.log: MIIE",
            "app.log: -----END PRIVATE KEY-----",
            "app.log: b"
        ]
    );
}

#[test]
fn an_endless_line_is_withheld_and_following_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    write(&path, "");
    let mut follow = follow(dir.path(), "*.log");
    append(&path, &format!("{}\nafter\n", "x".repeat(100)));
    assert_eq!(poll(&mut follow, 16), ["app.log: [ward: a line longer than 16 bytes withheld]"]);
    let mut out = Vec::new();
    for _ in 0..10 {
        out.extend(poll(&mut follow, 16));
    }
    assert_eq!(out, ["app.log: after"], "the rest of the long line is dropped, the next line comes");
}

#[test]
fn a_symlinked_directory_is_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("secrets");
    std::fs::create_dir(&secrets).unwrap();
    write(&secrets.join("key.log"), "2026-11-21T10:00:00Z not a log\n");
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    std::os::unix::fs::symlink(&secrets, logs.join("linked")).unwrap();
    write(&logs.join("app.log"), "2026-11-21T10:00:00Z a log\n");
    let source = Source::new(vec![logs.join("*").join("*.log"), logs.join("*.log")]).unwrap();
    assert_eq!(source.files(), vec![logs.join("app.log")]);
}

#[test]
fn a_bad_pattern_is_refused_when_configured() {
    assert!(Source::new(vec![PathBuf::from("/var/log/[")]).is_err());
}
