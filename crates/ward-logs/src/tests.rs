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

#[test]
fn following_reads_only_complete_appended_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    write(&path, "one\n");
    let source = Source::new(vec![dir.path().join("*.log")]).unwrap();
    let start = follow_start(&source).unwrap();
    assert_eq!(start.offset, 4);
    let mut file = File::options().append(true).open(&path).unwrap();
    file.write_all(b"two\nthr").unwrap();
    let got = read_appended(&start, 1 << 20).unwrap();
    assert_eq!((got.bytes.as_slice(), got.position.offset), (&b"two\n"[..], 8));
    file.write_all(b"ee\n").unwrap();
    let got = read_appended(&got.position, 1 << 20).unwrap();
    assert_eq!((got.bytes.as_slice(), got.position.offset), (&b"three\n"[..], 14));
    // Rotated away and started afresh: read from the start.
    write(&path, "new\n");
    assert_eq!(read_appended(&got.position, 1 << 20).unwrap().bytes, b"new\n");
}

#[test]
fn an_endless_line_is_withheld_and_following_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    write(&path, "");
    let start = Position { path: path.clone(), offset: 0, skipping_line: false };
    write(&path, &format!("{}\nafter\n", "x".repeat(100)));
    let got = read_appended(&start, 16).unwrap();
    assert_eq!(got.bytes, b"[ward: a line longer than 16 bytes withheld]\n");
    let mut position = got.position;
    let mut out = Vec::new();
    for _ in 0..10 {
        let got = read_appended(&position, 16).unwrap();
        out.extend(got.bytes);
        position = got.position;
    }
    assert_eq!(out, b"after\n", "the rest of the long line is dropped, the next line comes");
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
