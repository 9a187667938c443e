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
mod prefilter;
pub mod push;
mod rotation;
mod tail;
mod time;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use jiff::Timestamp;
use ward_redact::stream::{self, Limits};
use ward_redact::{Replace, RuleSet};

use crate::prefilter::Prefilter;

pub use follow::{Appended, Follow, Polled};
pub use tail::{Tail, tail, tail_until};
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

    /// The regular files the patterns match now, oldest first as log rotation names them
    /// (`app.log.2.gz`, `app.log.1`, `app.log`; see `rotation.rs`); symbolic links and anything
    /// else are skipped.
    pub fn files(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = self.listing().into_iter().map(|(path, _)| path).collect();
        files.reverse();
        files
    }

    /// The files, newest first, each with the metadata it was listed by.
    fn listing(&self) -> Vec<(PathBuf, std::fs::Metadata)> {
        let mut files: Vec<(PathBuf, std::time::SystemTime, std::fs::Metadata)> = Vec::new();
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
                if meta.file_type().is_file() && inside && !files.iter().any(|(p, _, _)| p == &path) {
                    files.push((path, meta.modified().unwrap_or(std::time::UNIX_EPOCH), meta));
                }
            }
        }
        rotation::newest_first(&mut files);
        files.into_iter().map(|(path, _, meta)| (path, meta)).collect()
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
    /// Whether the limit (lines, or bytes) cut the answer short.
    pub truncated: bool,
    /// Whether the caller's `keep_going` stopped it before its end (a deadline, a grant's end).
    pub stopped: bool,
    /// Bytes of log text read from the files (after decompression), lines handed out or not.
    pub scanned: u64,
    /// Values redacted in the lines returned, per kind (`email`, `card`, …).
    pub redactions: BTreeMap<String, u64>,
}

/// Reads `source` for `query`, oldest file first, handing each line out to `emit` (which
/// returns false to stop). `keep_going` is asked before each file and each chunk of lines
/// (64 KB), matching or not: once it says no, the search ends there ([`Summary::stopped`]).
pub fn search(
    source: &Source,
    query: &Query,
    masking: &Masking<'_>,
    keep_going: &dyn Fn() -> bool,
    emit: &mut dyn FnMut(Line) -> bool,
) -> Result<Summary, LogError> {
    search_chunks(source, query, masking, keep_going, emit, true)
}

/// [`search`], redacting every chunk unless `prefiltered` (the tests compare both).
fn search_chunks(
    source: &Source,
    query: &Query,
    masking: &Masking<'_>,
    keep_going: &dyn Fn() -> bool,
    emit: &mut dyn FnMut(Line) -> bool,
    prefiltered: bool,
) -> Result<Summary, LogError> {
    let files = source.files();
    let mut summary = Summary { files: files.len(), ..Summary::default() };
    let (rules, replace) = masking.redaction()?;
    // Chunks that cannot hold a match are not redacted (see `prefilter`).
    let prefilter = query.pattern.as_ref().filter(|_| prefiltered).and_then(|pattern| {
        let kinds: Vec<&str> = rules.rules().iter().map(|r| r.kind.as_str()).collect();
        let kinds = matches!(masking, Masking::Redacted { .. }).then_some(kinds.as_slice());
        Prefilter::new(pattern.as_str(), kinds)
    });
    for path in &files {
        if !keep_going() {
            summary.stopped = true;
            break;
        }
        let name = file_name(path);
        let reader = match open(path) {
            Ok(reader) => reader,
            // Rotated away since the listing: its lines are in the next file.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(source) => return Err(LogError::Read { path: PathBuf::from(&name), source }),
        };
        let (reader, scanned) = Counted::new(reader);
        let mut sink = LineSink::new(name, query, &mut summary, keep_going, emit, masking);
        let read = match &prefilter {
            Some(prefilter) => {
                let gate = |chunk: &[u8]| match prefilter.lines(chunk) {
                    lines if lines.is_empty() => stream::Wanted::Nothing,
                    lines => stream::Wanted::Lines(lines),
                };
                stream::redact_gated(rules, replace, reader, &mut sink, Limits::parallel(), &gate)
            }
            None => stream::redact(rules, replace, reader, &mut sink, Limits::parallel()),
        };
        if sink.finish(read, scanned.get())? {
            break;
        }
    }
    Ok(summary)
}

impl Masking<'_> {
    /// The rules and replacement lines go through (none, for raw text).
    fn redaction(&self) -> Result<(&RuleSet, &dyn Replace), LogError> {
        static NO_RULES: LazyLock<Result<RuleSet, String>> =
            LazyLock::new(|| RuleSet::new(Vec::new()).map_err(|e| e.to_string()));
        static UNUSED: ward_redact::Placeholder = ward_redact::Placeholder { fixed: None };
        match self {
            Masking::Redacted { rules, replace } => Ok((rules, *replace)),
            Masking::Raw => match NO_RULES.as_ref() {
                Ok(none) => Ok((none, &UNUSED)),
                Err(e) => Err(LogError::Read { path: PathBuf::new(), source: io::Error::other(e.clone()) }),
            },
        }
    }
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

/// Opens a regular file without following a symbolic link, and without blocking on anything
/// else (a FIFO or a device swapped in after the listing would hang the reader): `O_NONBLOCK`
/// changes nothing for a regular file, and what was opened is checked to be one.
fn open_file(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = File::options().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(path)?;
    if !file.metadata()?.file_type().is_file() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"));
    }
    Ok(file)
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

/// A reader that counts what is read through it, for [`Summary::scanned`].
struct Counted<R> {
    inner: R,
    read: std::rc::Rc<std::cell::Cell<u64>>,
}

impl<R> Counted<R> {
    /// The reader, and the count it keeps.
    fn new(inner: R) -> (Self, std::rc::Rc<std::cell::Cell<u64>>) {
        let read = std::rc::Rc::default();
        (Self { inner, read: std::rc::Rc::clone(&read) }, read)
    }
}

impl<R: io::Read> io::Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.set(self.read.get() + n as u64);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Counted<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amount: usize) {
        self.read.set(self.read.get() + amount as u64);
        self.inner.consume(amount);
    }
}

/// Takes redacted text, splits it into lines and hands out those the query wants.
struct LineSink<'a, 'e> {
    name: String,
    query: &'a Query,
    summary: &'a mut Summary,
    keep_going: &'e dyn Fn() -> bool,
    emit: &'e mut dyn FnMut(Line) -> bool,
    partial: Vec<u8>,
    last_time: Option<Timestamp>,
    stop: bool,
    /// Count pseudonyms (redacted text only: raw text holds none of ward's).
    count_redactions: bool,
}

impl<'a, 'e> LineSink<'a, 'e> {
    fn new(
        name: String,
        query: &'a Query,
        summary: &'a mut Summary,
        keep_going: &'e dyn Fn() -> bool,
        emit: &'e mut dyn FnMut(Line) -> bool,
        masking: &Masking<'_>,
    ) -> Self {
        Self {
            name,
            query,
            summary,
            keep_going,
            emit,
            partial: Vec::new(),
            last_time: None,
            stop: false,
            count_redactions: matches!(masking, Masking::Redacted { .. }),
        }
    }

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

    /// Ends a file read through the sink: hands out a last line without a newline, adds up
    /// what was read, and says whether the search stops here.
    fn finish<R>(mut self, read: io::Result<R>, scanned: u64) -> Result<bool, LogError> {
        self.summary.scanned += scanned;
        match read {
            Ok(_) => {
                if !self.partial.is_empty() && !self.stop {
                    let line = std::mem::take(&mut self.partial);
                    self.stop = !self.line(&line);
                }
            }
            // The sink stops the stream with an error of its own once it has enough.
            Err(_) if self.stop => {}
            // Only the file's name: its path is the operator's business.
            Err(source) => return Err(LogError::Read { path: PathBuf::from(&self.name), source }),
        }
        Ok(self.stop)
    }
}

impl LineSink<'_, '_> {
    /// Asked before each chunk, redacted or skipped: a no stops the search there.
    fn check_keep_going(&mut self) -> io::Result<()> {
        if (self.keep_going)() {
            return Ok(());
        }
        self.summary.stopped = true;
        self.stop = true;
        Err(io::Error::other("stopped"))
    }

    /// Keeps the time of the last line of `raw` (whole lines, as read) that has one.
    fn times_from(&mut self, raw: &[u8]) {
        let mut rest = raw.strip_suffix(b"\n").unwrap_or(raw);
        while !rest.is_empty() {
            let start = memchr::memrchr(b'\n', rest).map_or(0, |i| i + 1);
            if let Some(time) = line_time(&rest[start..]) {
                self.last_time = Some(time);
                return;
            }
            if start == 0 {
                return;
            }
            rest = &rest[..start - 1];
        }
    }
}

impl stream::Sink for LineSink<'_, '_> {
    fn redacted(&mut self, text: &[u8]) -> io::Result<()> {
        self.write_all(text)
    }

    /// A chunk that holds no match: only the time of its last line that has one is kept, for
    /// the lines after it that have none.
    fn skipped(&mut self, raw: &[u8]) -> io::Result<()> {
        self.check_keep_going()?;
        self.times_from(raw);
        Ok(())
    }

    /// The lines of a chunk that may match, redacted alone: each takes its time from the lines
    /// before it as if the whole chunk had been read.
    fn lines(&mut self, raw: &[u8], at: &[std::ops::Range<usize>], redacted: &[u8]) -> io::Result<()> {
        self.check_keep_going()?;
        let mut from = 0;
        for (range, line) in at.iter().zip(redacted.split(|&b| b == b'\n')) {
            self.times_from(&raw[from..range.start]);
            if !self.line(line) {
                self.stop = true;
                return Err(io::Error::other("enough lines"));
            }
            from = (range.end + 1).min(raw.len());
        }
        self.times_from(&raw[from..]);
        Ok(())
    }
}

impl Write for LineSink<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.check_keep_going()?;
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
