//! Reading a resource's debug logs, for the gateway.
//!
//! A [`Source`] is what the configuration says a resource's logs are: file patterns (globs;
//! plain or `.gz`, so rotated files are included). Nothing from a request ever becomes a path:
//! a request names a resource, and the resource's configured patterns say which files exist.
//! Symbolic links are not followed.
//!
//! [`search`] reads every file, oldest first, redacts each chunk of lines (unless the reader may
//! see raw text), and hands out the lines in the time range that match the pattern — matched
//! against the *redacted* text, so a pattern is never an oracle for a secret.

mod follow;
pub mod push;
mod time;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use ward_redact::stream::{self, Limits};
use ward_redact::{Replace, RuleSet};

pub use follow::{Appended, Follow, Polled};
pub use time::line_time;

/// The most lines one search returns.
pub const MAX_LIMIT: usize = 100_000;
/// The most bytes one search returns (it is truncated there, whatever its line limit).
pub const MAX_RESULT_BYTES: u64 = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("`{pattern}` is not a valid log source pattern: {message}")]
    Pattern { pattern: String, message: String },
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
}

/// A resource's log files, as configured.
#[derive(Debug, Clone, Default)]
pub struct Source {
    /// Absolute glob patterns.
    pub patterns: Vec<PathBuf>,
}

impl Source {
    /// Validates the patterns (as globs) without touching the file system.
    pub fn new(patterns: Vec<PathBuf>) -> Result<Self, LogError> {
        for pattern in &patterns {
            glob::Pattern::new(&pattern.to_string_lossy()).map_err(|e| LogError::Pattern {
                pattern: pattern.display().to_string(),
                message: e.to_string(),
            })?;
        }
        Ok(Self { patterns })
    }

    /// The regular files the patterns match now, oldest (by modification time) first; symbolic
    /// links and anything else are skipped.
    pub fn files(&self) -> Vec<PathBuf> {
        self.listing().into_iter().map(|(path, _)| path).collect()
    }

    /// [`Source::files`], each with the metadata it was listed by.
    fn listing(&self) -> Vec<(PathBuf, std::fs::Metadata)> {
        let mut files: Vec<(std::time::SystemTime, PathBuf, std::fs::Metadata)> = Vec::new();
        for pattern in &self.patterns {
            // Anything whose real path leaves the directory the pattern names before its first
            // wildcard (reached through a symbolic link to a directory) is skipped.
            let Some(base) = literal_base(pattern).and_then(|b| std::fs::canonicalize(b).ok()) else {
                continue;
            };
            let Ok(paths) = glob::glob(&pattern.to_string_lossy()) else { continue };
            for path in paths.flatten() {
                let Ok(meta) = std::fs::symlink_metadata(&path) else { continue };
                let inside = std::fs::canonicalize(&path).is_ok_and(|real| real.starts_with(&base));
                if meta.file_type().is_file() && inside && !files.iter().any(|(_, p, _)| p == &path) {
                    files.push((meta.modified().unwrap_or(std::time::UNIX_EPOCH), path, meta));
                }
            }
        }
        files.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        files.into_iter().map(|(_, path, meta)| (path, meta)).collect()
    }
}

/// What is asked of the logs.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// Matched against each line as the reader sees it (redacted, unless raw).
    pub pattern: Option<regex::bytes::Regex>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    pub limit: usize,
}

/// How lines leave ward.
pub enum Masking<'a> {
    /// Secrets and personal data replaced (the default).
    Redacted { rules: &'a RuleSet, replace: &'a dyn Replace },
    /// Raw text, for a `read-unmasked` grant.
    Raw,
}

/// One line handed out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The file's name (not its path).
    pub source: String,
    /// The line's own time, or the last one seen before it in the file.
    pub time: Option<Timestamp>,
    /// Without its newline; invalid UTF-8 replaced.
    pub text: String,
}

/// What a read returned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub files: usize,
    pub lines: u64,
    pub bytes: u64,
    /// Whether the limit stopped it.
    pub truncated: bool,
    /// Values redacted in the lines returned, per kind (`email`, `card`, …).
    pub redactions: BTreeMap<String, u64>,
}

/// Reads `source` for `query`, handing each line out to `emit` (which returns false to stop).
pub fn search(
    source: &Source,
    query: &Query,
    masking: &Masking<'_>,
    emit: &mut dyn FnMut(Line) -> bool,
) -> Result<Summary, LogError> {
    let files = source.files();
    let mut summary = Summary { files: files.len(), ..Summary::default() };
    let raw = RuleSet::new(Vec::new())
        .map_err(|e| LogError::Read { path: PathBuf::new(), source: io::Error::other(e) })?;
    let placeholder = ward_redact::Placeholder { fixed: None };
    let (rules, replace): (&RuleSet, &dyn Replace) = match masking {
        Masking::Redacted { rules, replace } => (rules, *replace),
        Masking::Raw => (&raw, &placeholder),
    };
    for path in &files {
        let name = file_name(path);
        let reader = match open(path) {
            Ok(reader) => reader,
            // Rotated away since the listing: its lines are in the next file.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(source) => return Err(LogError::Read { path: PathBuf::from(&name), source }),
        };
        let mut sink = LineSink {
            name: name.clone(),
            query,
            summary: &mut summary,
            emit,
            partial: Vec::new(),
            last_time: None,
            stop: false,
            count_redactions: matches!(masking, Masking::Redacted { .. }),
        };
        match stream::redact(rules, replace, reader, &mut sink, Limits::parallel()) {
            Ok(_) => sink.finish(),
            // The sink stops the stream with an error of its own once it has enough.
            Err(_) if sink.stop => {}
            // Only the file's name: its path is the operator's business.
            Err(source) => return Err(LogError::Read { path: PathBuf::from(&name), source }),
        }
        if sink.stop {
            break;
        }
    }
    Ok(summary)
}

/// A file's name (not its path: where the logs lie is the operator's business).
fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// The directory a glob pattern names before its first wildcard.
fn literal_base(pattern: &Path) -> Option<PathBuf> {
    let mut base = PathBuf::new();
    for part in pattern.components() {
        if part.as_os_str().to_string_lossy().contains(['*', '?', '[']) {
            return Some(base);
        }
        base.push(part);
    }
    base.parent().map(Path::to_path_buf)
}

/// Opens a file without following a symbolic link (one swapped in after the listing).
fn open_file(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    File::options().read(true).custom_flags(libc::O_NOFOLLOW).open(path)
}

/// Opens a log file, decompressing `.gz` ones (several members, as `gzip` appends them).
fn open(path: &Path) -> io::Result<Box<dyn BufRead>> {
    let file = open_file(path)?;
    if path.extension().is_some_and(|e| e == "gz") {
        Ok(Box::new(BufReader::with_capacity(1 << 16, flate2::read::MultiGzDecoder::new(file))))
    } else {
        Ok(Box::new(BufReader::with_capacity(1 << 16, file)))
    }
}

/// Takes redacted text, splits it into lines and hands out those the query wants.
struct LineSink<'a, 'e> {
    name: String,
    query: &'a Query,
    summary: &'a mut Summary,
    emit: &'e mut dyn FnMut(Line) -> bool,
    partial: Vec<u8>,
    last_time: Option<Timestamp>,
    stop: bool,
    /// Count pseudonyms (redacted text only: raw text holds none of ward's).
    count_redactions: bool,
}

impl LineSink<'_, '_> {
    fn line(&mut self, line: &[u8]) -> bool {
        let time = line_time(line).or(self.last_time);
        self.last_time = time;
        let in_range = match time {
            Some(t) => self.query.since.is_none_or(|s| t >= s) && self.query.until.is_none_or(|u| t < u),
            // A line no time can be given to is in range only when none is asked for.
            None => self.query.since.is_none() && self.query.until.is_none(),
        };
        if !in_range || self.query.pattern.as_ref().is_some_and(|p| !p.is_match(line)) {
            return true;
        }
        if self.summary.lines as usize >= self.query.limit || self.summary.bytes >= MAX_RESULT_BYTES {
            self.summary.truncated = true;
            return false;
        }
        if self.count_redactions {
            ward_redact::count_pseudonyms(line, &mut self.summary.redactions);
        }
        self.summary.lines += 1;
        self.summary.bytes += line.len() as u64 + 1;
        (self.emit)(Line {
            source: self.name.clone(),
            time,
            text: String::from_utf8_lossy(line).into_owned(),
        })
    }

    fn finish(&mut self) {
        if !self.partial.is_empty() && !self.stop {
            let line = std::mem::take(&mut self.partial);
            self.stop = !self.line(&line);
        }
    }
}

impl Write for LineSink<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut rest = buf;
        while let Some(end) = memchr::memchr(b'\n', rest) {
            let keep_going = if self.partial.is_empty() {
                self.line(&rest[..end])
            } else {
                self.partial.extend_from_slice(&rest[..end]);
                let line = std::mem::take(&mut self.partial);
                self.line(&line)
            };
            rest = &rest[end + 1..];
            if !keep_going {
                self.stop = true;
                return Err(io::Error::other("enough lines"));
            }
        }
        self.partial.extend_from_slice(rest);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests;
