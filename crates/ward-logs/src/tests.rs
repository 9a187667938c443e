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
    let summary = search(source, query, masking, &|| true, &mut |line| {
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

/// A FIFO put where a log was listed is refused at once, not waited on for a writer forever.
#[test]
fn a_fifo_in_place_of_a_log_is_refused_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("app.log");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let (sent, opened) = std::sync::mpsc::channel();
    std::thread::spawn(move || sent.send(open_file(&fifo).map(|_| ()).map_err(|e| e.kind())));
    let answer = opened.recv_timeout(std::time::Duration::from_secs(10)).expect("opening a FIFO blocked");
    assert_eq!(answer, Err(io::ErrorKind::InvalidInput));
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

/// Writes `name` in `dir` with `text` (gzipped for `.gz`), modified `age_hours` ago.
fn file(dir: &Path, name: &str, text: &str, age_hours: u64) {
    let path = dir.join(name);
    if name.ends_with(".gz") {
        let mut gz = flate2::write::GzEncoder::new(File::create(&path).unwrap(), flate2::Compression::fast());
        gz.write_all(text.as_bytes()).unwrap();
        gz.finish().unwrap();
    } else {
        write(&path, text);
    }
    let modified = std::time::SystemTime::now() - std::time::Duration::from_secs(age_hours * 3600);
    File::options().write(true).open(&path).unwrap().set_modified(modified).unwrap();
}

fn names(files: &[PathBuf]) -> Vec<String> {
    files.iter().map(|p| file_name(p)).collect()
}

/// Rotated files are older than their names say when they were copied, restored or checked
/// out: the order is the rotation's, not the modification times'.
#[test]
fn files_are_ordered_as_log_rotation_names_them() {
    let dir = tempfile::tempdir().unwrap();
    for (age, name) in ["x.log", "x.log.1", "x.log.2.gz", "x.log.10", "x.log-20261101"].iter().enumerate() {
        // The live file is the oldest by its modification time.
        file(dir.path(), name, "line\n", 10 - age as u64);
    }
    let source = Source::new(vec![dir.path().join("x.log*")]).unwrap();
    assert_eq!(names(&source.files()), ["x.log-20261101", "x.log.10", "x.log.2.gz", "x.log.1", "x.log"]);

    let dated = tempfile::tempdir().unwrap();
    for (age, name) in
        ["app.log", "app.log-20261120.gz", "app.log-20261121", "app.log-20261119"].iter().enumerate()
    {
        file(dated.path(), name, "line\n", age as u64);
    }
    let source = Source::new(vec![dated.path().join("app.log*")]).unwrap();
    assert_eq!(
        names(&source.files()),
        ["app.log-20261119", "app.log-20261120.gz", "app.log-20261121", "app.log"]
    );

    // Pushed logs: one file per day.
    let pushed = tempfile::tempdir().unwrap();
    for name in ["2026-11-21.jsonl", "2026-11-19.jsonl", "2026-11-20.jsonl"] {
        file(pushed.path(), name, "{}\n", 1);
    }
    let source = Source::new(vec![pushed.path().join("*.jsonl")]).unwrap();
    assert_eq!(names(&source.files()), ["2026-11-19.jsonl", "2026-11-20.jsonl", "2026-11-21.jsonl"]);
}

fn texts(lines: &[Line]) -> Vec<String> {
    lines.iter().map(|l| format!("{}: {}", l.source, l.text)).collect()
}

/// `x.log`, `x.log.1`, `x.log.2.gz` and a dated one, the rotated ones modified last.
fn rotated() -> (tempfile::TempDir, Source) {
    let dir = tempfile::tempdir().unwrap();
    file(dir.path(), "x.log", "new 1\nnew 2\nnew 3\nnew 4\nnew 5\n", 4);
    file(dir.path(), "x.log.1", "old 1\nold 2\nold 3\n", 3);
    file(dir.path(), "x.log.2.gz", "older 1\nolder 2\n", 2);
    file(dir.path(), "x.log-20261101", "oldest\n", 1);
    let source = Source::new(vec![dir.path().join("x.log*")]).unwrap();
    (dir, source)
}

#[test]
fn the_tail_is_the_newest_lines_of_the_newest_files() {
    let (_dir, source) = rotated();
    let tail = super::tail(&source, 3, &Masking::Raw).unwrap();
    assert_eq!(texts(&tail.lines), ["x.log: new 3", "x.log: new 4", "x.log: new 5"]);
    assert_eq!((tail.summary.files, tail.summary.lines, tail.summary.truncated), (1, 3, false));
    let tail = super::tail(&source, 7, &Masking::Raw).unwrap();
    assert_eq!(texts(&tail.lines)[..3], ["x.log.1: old 2", "x.log.1: old 3", "x.log: new 1"]);
    assert_eq!(tail.summary.files, 2);
    let tail = super::tail(&source, 100, &Masking::Raw).unwrap();
    assert_eq!(
        texts(&tail.lines)[..4],
        ["x.log-20261101: oldest", "x.log.2.gz: older 1", "x.log.2.gz: older 2", "x.log.1: old 1"]
    );
    assert_eq!((tail.summary.files, tail.summary.lines), (4, 11));
    // Redacted as a search would be.
    let rules = RuleSet::builtin().unwrap();
    let replace = Pseudonyms::new(&[3; 32]);
    write(&source.files()[3], "2026-11-21T10:00:00Z paid by jane@example.com\n");
    let tail = super::tail(&source, 1, &Masking::Redacted { rules: &rules, replace: &replace }).unwrap();
    assert!(tail.lines[0].text.starts_with("2026-11-21T10:00:00Z paid by <email:"), "{:?}", tail.lines);
    assert_eq!(tail.lines[0].time, Some(at("2026-11-21T10:00:00Z")));
    assert_eq!(tail.summary.redactions.get("email"), Some(&1));
}

/// A tail reads from the end of the newest file: what older files hold, or how much the newest
/// one holds, does not change its cost.
#[test]
fn a_tail_reads_only_the_end_of_the_newest_file() {
    let dir = tempfile::tempdir().unwrap();
    let line = "2026-11-21T10:00:00Z INFO a line of a busy log, nothing to see\n";
    file(dir.path(), "x.log", &line.repeat(200_000), 2);
    file(dir.path(), "x.log.1", &line.repeat(1_000), 1);
    // Not gzip at all: reading it would fail.
    std::fs::write(dir.path().join("x.log.2.gz"), b"not gzip").unwrap();
    let source = Source::new(vec![dir.path().join("x.log*")]).unwrap();
    let tail = super::tail(&source, 5, &Masking::Raw).unwrap();
    assert_eq!(tail.lines.len(), 5);
    assert_eq!(tail.summary.files, 1, "the older files were not read");
    let size = std::fs::metadata(dir.path().join("x.log")).unwrap().len();
    assert!(size > 12 << 20);
    // The last lines and the look-back for a key block's start.
    assert!(tail.summary.scanned <= (64 << 10) + (1 << 20), "{} of {size} bytes read", tail.summary.scanned);
}

#[test]
fn a_tail_never_starts_inside_a_private_key_block() {
    let dir = tempfile::tempdir().unwrap();
    let body: String = (0..40).map(|i| format!("MIIEowIBAAKCAQEA{i:02}base64base64base64\n")).collect();
    let key = format!("-----BEGIN RSA PRIVATE KEY-----\n{body}-----END RSA PRIVATE KEY-----\n");
    file(dir.path(), "x.log", &format!("a\n{key}b\nc\n"), 1);
    let source = Source::new(vec![dir.path().join("x.log")]).unwrap();
    let rules = RuleSet::builtin().unwrap();
    let replace = Pseudonyms::new(&[3; 32]);
    let redacted = Masking::Redacted { rules: &rules, replace: &replace };
    for want in [1, 2, 3, 4, 5, 30] {
        let lines = super::tail(&source, want, &redacted).unwrap().lines;
        let all = texts(&lines).join("\n");
        assert!(!all.contains("MIIE") && !all.contains("-----"), "tail {want}: {all}");
        assert_eq!(lines.len(), want.min(4), "tail {want}: {all}");
        if want >= 3 {
            assert!(lines[lines.len() - 3].text.starts_with("<private-key:"), "tail {want}: {all}");
        }
    }
    // Raw text: the tail starts after the block rather than inside it.
    for want in [2, 3, 10, 41] {
        let lines = super::tail(&source, want, &Masking::Raw).unwrap().lines;
        assert_eq!(texts(&lines), ["x.log: b", "x.log: c"], "tail {want}");
    }
    let lines = super::tail(&source, 44, &Masking::Raw).unwrap().lines;
    assert_eq!(lines[0].text, "-----BEGIN RSA PRIVATE KEY-----");

    // Rotated in the middle of a block: the newer file begins with its rest.
    let dir = tempfile::tempdir().unwrap();
    file(dir.path(), "y.log.1", &format!("z\n-----BEGIN PRIVATE KEY-----\n{}", &body[..200]), 2);
    file(dir.path(), "y.log", &format!("{}-----END PRIVATE KEY-----\nd\n", &body[200..]), 1);
    let source = Source::new(vec![dir.path().join("y.log*")]).unwrap();
    for masking in [&redacted, &Masking::Raw] {
        let lines = super::tail(&source, 100, masking).unwrap().lines;
        let all = texts(&lines).join("\n");
        assert!(!all.contains("MIIE"), "{all}");
        assert_eq!(texts(&lines).last().unwrap(), "y.log: d");
    }
}

/// The tail ends where following starts: a line being written, or a key block not ended yet,
/// comes whole through the follow, and nothing written after the tail is lost.
#[test]
fn no_line_is_lost_or_cut_between_the_tail_and_following() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.log");
    write(&path, "one\ntwo\nthr");
    let source = Source::new(vec![dir.path().join("x.log*")]).unwrap();
    let super::Tail { lines, mut follow, .. } = super::tail(&source, 10, &Masking::Raw).unwrap();
    assert_eq!(texts(&lines), ["x.log: one", "x.log: two"]);
    append(&path, "ee\nfour\n");
    assert_eq!(poll(&mut follow, 1 << 20), ["x.log: three", "x.log: four"]);

    append(&path, "a\n-----BEGIN PRIVATE KEY-----\nMIIE\n");
    let super::Tail { lines, mut follow, .. } = super::tail(&source, 2, &Masking::Raw).unwrap();
    assert_eq!(texts(&lines), ["x.log: four", "x.log: a"]);
    append(&path, "-----END PRIVATE KEY-----\nb\n");
    assert_eq!(
        poll(&mut follow, 1 << 20),
        ["x.log: -----BEGIN PRIVATE KEY-----", "x.log: MIIE", "x.log: -----END PRIVATE KEY-----", "x.log: b"]
    );
}

/// `keep_going` is asked as the search reads, not only when a line matches: a search for
/// something that is not there stops all the same, having read no more than the chunks in
/// flight (with eight threads, 17 batches of eight 64 KB chunks: under 9 MB).
#[test]
fn a_search_stops_when_told_even_when_nothing_matches() {
    let dir = tempfile::tempdir().unwrap();
    let line = "2026-11-21T10:00:00Z INFO nothing to see here\n";
    write(&dir.path().join("x.log"), &line.repeat(500_000));
    write(&dir.path().join("x.log.1"), &line.repeat(500_000));
    let source = Source::new(vec![dir.path().join("x.log*")]).unwrap();
    let query =
        Query { pattern: Some(regex::bytes::Regex::new("absent").unwrap()), limit: 10, ..Query::default() };
    let asked = std::cell::Cell::new(0);
    let keep_going = || {
        asked.set(asked.get() + 1);
        asked.get() <= 3
    };
    let summary = search(&source, &query, &Masking::Raw, &keep_going, &mut |_| true).unwrap();
    assert!(summary.stopped);
    assert_eq!(summary.lines, 0);
    let size = 2 * line.len() as u64 * 500_000;
    assert!(
        summary.scanned < 9 << 20 && summary.scanned < size / 4,
        "{} of {size} bytes read",
        summary.scanned
    );
    let whole = search(&source, &query, &Masking::Raw, &|| true, &mut |_| true).unwrap();
    assert_eq!((whole.stopped, whole.scanned), (false, size));
}

/// Following that starts while a private key block is being written begins at its BEGIN line,
/// so the block reaches redaction whole (from its middle, no rule could recognise its rest).
#[test]
fn following_from_inside_an_unfinished_key_block_hands_it_out_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.log");
    write(&path, "a\n-----BEGIN PRIVATE KEY-----\nMIIE\n");
    let mut follow = follow(dir.path(), "x.log*");
    append(&path, "c2VjcmV0\n-----END PRIVATE KEY-----\nb\n");
    assert_eq!(
        poll(&mut follow, 1 << 20),
        [
            "x.log: -----BEGIN PRIVATE KEY-----",
            "x.log: MIIE",
            "x.log: c2VjcmV0",
            "x.log: -----END PRIVATE KEY-----",
            "x.log: b"
        ]
    );
}

/// A line being written when following starts is handed out whole once it ends, not cut.
#[test]
fn following_starts_after_the_last_complete_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.log");
    write(&path, "one\ntwo\nthr");
    let mut follow = follow(dir.path(), "x.log*");
    append(&path, "ee\nfour\n");
    assert_eq!(poll(&mut follow, 1 << 20), ["x.log: three", "x.log: four"]);
}

/// A compressed file is decompressed as a stream, and only the lines a tail may return are
/// held, bounded in bytes too: a file of long lines cannot make a tail hold it whole.
#[test]
fn a_compressed_file_is_tailed_holding_only_what_it_returns() {
    let dir = tempfile::tempdir().unwrap();
    let line = |i: usize| format!("2026-11-21T10:00:00Z line {i:06} {}\n", "x".repeat(1000));
    let text: String = (0..20_000).map(line).collect();
    file(dir.path(), "x.log.1.gz", &text, 1);
    let source = Source::new(vec![dir.path().join("x.log*")]).unwrap();
    let tail = super::tail(&source, 3, &Masking::Raw).unwrap();
    let numbers: Vec<&str> = tail.lines.iter().map(|l| &l.text[26..32]).collect();
    assert_eq!(numbers, ["019997", "019998", "019999"]);
    assert_eq!(tail.summary.scanned, text.len() as u64, "read through as a stream");

    // 5,000 lines asked, 64 KB may be held: the ring never holds more, and says it cut.
    let gz = flate2::read::MultiGzDecoder::new(File::open(dir.path().join("x.log.1.gz")).unwrap());
    let reading =
        super::tail::Reading { want: 5000, masking: &Masking::Raw, name: "x.log.1.gz", keep_going: &|| true };
    let last = super::tail::LastLines::bounded(5000, 64 << 10);
    let last = super::tail::redacted_lines(BufReader::new(gz), last, &reading, usize::MAX).unwrap().unwrap();
    assert!(last.peak_bytes <= 64 << 10, "held {} bytes", last.peak_bytes);
    assert!(last.is_cut());
    let held: Vec<&Line> = last.lines().collect();
    assert_eq!(held.len(), (64 << 10) / line(0).len());
    assert!(held.last().unwrap().text.contains("line 019999"));
}

/// A 50 MB line without a newline: the tail answers at once with the line cut at the stream's
/// limit and marked, as a search cuts it; one longer than a tail reads back is withheld.
#[test]
fn a_tail_of_a_huge_line_is_cut_and_marked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.log");
    write(&path, &"a".repeat(50 << 20));
    let source = Source::new(vec![dir.path().join("x.log*")]).unwrap();
    let started = std::time::Instant::now();
    let tail = super::tail(&source, 5, &Masking::Raw).unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "{:?}", started.elapsed());
    assert_eq!(tail.lines.len(), 1);
    let text = &tail.lines[0].text;
    assert!(text.len() <= (1 << 20) + 64, "{} bytes", text.len());
    assert!(
        text.ends_with(std::str::from_utf8(ward_redact::stream::CUT_MARK).unwrap()),
        "{}",
        &text[text.len() - 40..]
    );

    // Past what a tail reads back (64 MB), its start is out of reach: withheld, said so.
    std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(&b"a".repeat(20 << 20)).unwrap();
    let tail = super::tail(&source, 5, &Masking::Raw).unwrap();
    assert_eq!(texts(&tail.lines), ["x.log: [ward: a line longer than 67108864 bytes withheld]"]);
    assert!(tail.summary.truncated);
}

/// A tail asks `keep_going` as it reads: once it says no, the work stops there (a file it
/// stopped in gives no line) and the summary says so.
#[test]
fn a_tail_stops_when_told_to() {
    let dir = tempfile::tempdir().unwrap();
    let text: String = (0..200_000).map(|i| format!("2026-11-21T10:00:00Z line {i}\n")).collect();
    file(dir.path(), "x.log.1.gz", &text, 1);
    file(dir.path(), "x.log", "newest\n", 0);
    let source = Source::new(vec![dir.path().join("x.log*")]).unwrap();
    let asked = std::cell::Cell::new(0);
    let keep_going = || {
        asked.set(asked.get() + 1);
        asked.get() <= 3
    };
    let tail = super::tail_until(&source, 100, &Masking::Raw, &keep_going).unwrap();
    assert!(tail.summary.stopped);
    assert_eq!(texts(&tail.lines), ["x.log: newest"], "only the newest file, read whole");
    assert!(tail.summary.scanned < text.len() as u64 / 4, "{} of {}", tail.summary.scanned, text.len());
    assert!(asked.get() <= 5, "asked {} times after saying no", asked.get());
}

/// A log of many chunks: secrets, continuation lines without a time, a private key block.
fn busy_log(lines: usize) -> String {
    let mut log = String::new();
    for i in 0..lines {
        let (minute, second) = (i / 60 % 60, i % 60);
        match i % 1499 {
            13 => log.push_str("  continuation took=899ms without a time\n"),
            41 | 800 => log.push_str(&format!(
                "2026-11-21T10:{minute:02}:{second:02}Z ERROR declined user=jane{i}@example.com took=899ms \
                 card=4111 1111 1111 1111 token=Bearer abcdefgh{i:08}\n"
            )),
            // A key on one line, its value on the next (gitleaks' generic rule, in `standard`).
            977 => log.push_str(&format!(
                "2026-11-21T10:{minute:02}:{second:02}Z DEBUG config api_key =\n   \"Zx81kQ0pLm3Nv{i:05}\" took=899ms\n"
            )),
            555 if i % 2 == 0 => log.push_str(
                "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAtook=899ms\n-----END RSA PRIVATE KEY-----\n",
            ),
            _ => log.push_str(&format!(
                "2026-11-21T10:{minute:02}:{second:02}Z INFO GET /orders/{i} took={}ms user=u{i}@example.com\n",
                1000 + i % 1000
            )),
        }
    }
    log
}

/// A search is the same with its prefilter as without, pattern after pattern: the chunks it
/// skips hold no line it would have returned.
#[test]
fn the_prefilter_changes_nothing_a_search_returns() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("app.log"), &busy_log(12_000));
    let source = Source::new(vec![dir.path().join("*.log")]).unwrap();
    let builtin = RuleSet::builtin().unwrap();
    let standard = RuleSet::standard().unwrap().0;
    let replace = Pseudonyms::new(&[3; 32]);
    let masked = Masking::Redacted { rules: &builtin, replace: &replace };
    let standard = Masking::Redacted { rules: &standard, replace: &replace };
    let both = |query: &Query, masking: &Masking<'_>| {
        let mut runs = [true, false].map(|prefiltered| {
            let mut lines = Vec::new();
            let summary = search_chunks(
                &source,
                query,
                masking,
                &|| true,
                &mut |line| {
                    lines.push(line);
                    true
                },
                prefiltered,
            )
            .unwrap();
            (lines, summary)
        });
        let unfiltered = std::mem::take(&mut runs[1]);
        (std::mem::take(&mut runs[0]), unfiltered)
    };
    for pattern in [
        "took=899ms",
        "took=8\\d\\dms",
        "(?i)DECLINED",
        "jane",
        "example\\.com",
        "<email:",
        "ERROR|WARN",
        "abcdefgh",
        "4111",
        "PRIVATE KEY",
        "MIIE",
        "^  continuation",
        "orders/11999 ",
    ] {
        for (since, until) in
            [(None, None), (Some(at("2026-11-21T10:20:00Z")), Some(at("2026-11-21T10:40:00Z")))]
        {
            let query = Query {
                pattern: Some(regex::bytes::Regex::new(pattern).unwrap()),
                since,
                until,
                limit: 100_000,
            };
            for masking in [&masked, &standard, &Masking::Raw] {
                let (with, without) = both(&query, masking);
                assert_eq!(with.0, without.0, "{pattern} {since:?}");
                assert_eq!(with.1, without.1, "{pattern} {since:?}");
            }
        }
    }
    // The selective pattern finds its lines, none of them with a secret left.
    let query = Query {
        pattern: Some(regex::bytes::Regex::new("took=899ms").unwrap()),
        limit: 100_000,
        ..Query::default()
    };
    for masking in [&masked, &standard] {
        let (lines, _) = both(&query, masking).0;
        assert!(lines.len() > 20, "{}", lines.len());
        assert!(
            !lines
                .iter()
                .any(|l| l.text.contains("jane") || l.text.contains("4111") || l.text.contains("MIIE"))
        );
    }
    let (lines, _) = both(&query, &standard).0;
    assert!(
        lines.iter().any(|l| l.text.contains("took=899ms") && l.text.contains("<generic")),
        "the value after its key"
    );
    assert!(!lines.iter().any(|l| l.text.contains("Zx81kQ0pLm3Nv")));
}
