//! The order of a resource's files, newest first, as log rotation names them: `app.log` (the
//! live file), then `app.log.1`, `app.log.2.gz`, … (logrotate's numbers), and dated names
//! (`app.log-20261120`, `app.2026-11-20.log`, pushed logs' `2026-11-20.jsonl`) newest date first.
//!
//! Modification times are not the order: a copy, a checkout or an archive restore gives rotated
//! files the same time, or a newer one, than the live file.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::LazyLock;
use std::time::SystemTime;

use regex::Regex;

/// A date in a file name (`20261120`, `2026-11-20`, `2026_11_20`, with an hour or time after it),
/// set off from the rest of the name by a separator or the name's start.
static DATE: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"(?:^|[-_.])((?:19|20)[0-9]{2}[-_]?[01][0-9][-_]?[0-3][0-9](?:[-_T.]?[0-9]{2}(?:[-:]?[0-9]{2}){0,2})?)(?:[-_.]|$)").ok()
});

/// Where a file stands in its rotation.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Age {
    /// Not rotated: no number, no date.
    Live,
    /// `.1` is the newest rotated file.
    Numbered(u32),
    /// The date (digits only), newest first: ordered by its reverse.
    Dated(std::cmp::Reverse<String>),
}

/// A file's name without its rotation (its base: the files of one log share it), and its age.
fn rotation(name: &str) -> (String, Age) {
    let name = name.strip_suffix(".gz").unwrap_or(name);
    if let Some((base, number)) = name.rsplit_once('.')
        && !number.is_empty()
        && number.len() <= 4
        && number.bytes().all(|b| b.is_ascii_digit())
        && let Ok(number) = number.parse::<u32>()
    {
        return (base.to_owned(), Age::Numbered(number));
    }
    if let Some(found) = DATE.as_ref().and_then(|date| date.captures(name)).and_then(|c| c.get(1)) {
        let digits: String = found.as_str().chars().filter(char::is_ascii_digit).collect();
        // The date and one separator next to it go; the rest names the log.
        let (before, after) = (&name[..found.start()], &name[found.end()..]);
        let base = match before.strip_suffix(['-', '_', '.']) {
            Some(before) => format!("{before}{after}"),
            None => format!("{before}{}", after.strip_prefix(['-', '_', '.']).unwrap_or(after)),
        };
        return (base, Age::Dated(std::cmp::Reverse(digits)));
    }
    (name.to_owned(), Age::Live)
}

/// Sorts `files` (path, modification time, anything) newest first: each log's files by their
/// rotation; the logs of one resource side by side (all live files, then all first rotations,
/// …), the newest modification first among equals.
pub(crate) fn newest_first<T>(files: &mut Vec<(PathBuf, SystemTime, T)>) {
    // Each log, known by its directory and base name: its files, by age.
    let mut logs: HashMap<PathBuf, Vec<(Age, usize)>> = HashMap::new();
    for (index, (path, _, _)) in files.iter().enumerate() {
        let (base, age) = rotation(&path.file_name().unwrap_or_default().to_string_lossy());
        logs.entry(path.with_file_name(base)).or_default().push((age, index));
    }
    // A file's rank: its place among its own log's files, newest first.
    let mut ranks = vec![0; files.len()];
    for mut rotated in logs.into_values() {
        rotated.sort();
        for (rank, (_, index)) in rotated.into_iter().enumerate() {
            ranks[index] = rank;
        }
    }
    let mut keyed: Vec<(usize, (PathBuf, SystemTime, T))> = ranks.into_iter().zip(files.drain(..)).collect();
    keyed.sort_by(|(rank_a, a), (rank_b, b)| {
        rank_a.cmp(rank_b).then(b.1.cmp(&a.1)).then_with(|| b.0.cmp(&a.0))
    });
    files.extend(keyed.into_iter().map(|(_, file)| file));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_say_the_rotation() {
        let age = |name: &str| rotation(name);
        assert_eq!(age("app.log"), ("app.log".into(), Age::Live));
        assert_eq!(age("app.log.1"), ("app.log".into(), Age::Numbered(1)));
        assert_eq!(age("app.log.12.gz"), ("app.log".into(), Age::Numbered(12)));
        let dated = |d: &str| Age::Dated(std::cmp::Reverse(d.to_owned()));
        assert_eq!(age("app.log-20261120"), ("app.log".into(), dated("20261120")));
        assert_eq!(age("app.log-20261120.gz"), ("app.log".into(), dated("20261120")));
        assert_eq!(age("app.log-2026112013"), ("app.log".into(), dated("2026112013")));
        assert_eq!(age("app.2026-11-20.log"), ("app.log".into(), dated("20261120")));
        assert_eq!(age("app.log.2026-11-20"), ("app.log".into(), dated("20261120")));
        assert_eq!(age("2026-11-21.jsonl"), ("jsonl".into(), dated("20261121")));
        assert_eq!(age("build-12345.log"), ("build-12345.log".into(), Age::Live));
        assert!(dated("20261121") < dated("20261120"), "the newer date first");
    }
}
