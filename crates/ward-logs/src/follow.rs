//! Following a source's files as they grow, like `tail -F`.
//!
//! Each file is read through a handle opened once and known by its identity (device, inode),
//! not by its name, so that:
//! - a file rotated by renaming (`app.log` → `app.log.1`) is read to its end, and the new
//!   `app.log` from its start;
//! - a file that appears later (the next day's file of pushed logs) is read from its start;
//! - a file truncated in place (`copytruncate`) is read again from its start;
//! - a file no longer listed (renamed out of the pattern, compressed, deleted) is read to its
//!   end, then let go.
//!
//! Only complete lines are handed out; a private key block is held back until it ends (or
//! withheld whole when it grows too long: fail closed), file by file.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::PathBuf;

use ward_redact::stream::KeyGuard;

use crate::{Source, file_name, open_file};

/// The most files followed from the start (the newest); files that appear later are added.
const MAX_AT_START: usize = 8;
/// Lines kept before each poll's as redaction context: at least as many as a multi-line
/// rule's match reaches (gitleaks' generic rule: 9).
pub const CONTEXT_LINES: usize = 16;
/// The most bytes of context kept.
pub const CONTEXT_BYTES: usize = 64 << 10;

/// What was appended to one file since the last poll.
#[derive(Debug, PartialEq, Eq)]
pub struct Appended {
    /// The file's name (not its path).
    pub source: String,
    /// Complete lines, each ending in a newline, raw.
    pub lines: Vec<u8>,
    /// The file's last lines before `lines` (raw, handed out already: at most
    /// [`CONTEXT_LINES`] lines and [`CONTEXT_BYTES`]), to redact `lines` after, so that a match
    /// spanning lines (a key on one, its value on the next) is found across polls.
    pub context: Vec<u8>,
    /// A private key block too long to wait for was withheld after these lines.
    pub withheld: bool,
}

/// What one poll gives.
#[derive(Debug, Default)]
pub struct Polled {
    pub appended: Vec<Appended>,
    /// Files that could not be read, by name, and why: they are no longer followed.
    pub failed: Vec<(String, io::Error)>,
}

/// The files of a source being followed.
pub struct Follow {
    source: Source,
    files: Vec<Followed>,
    /// Every file identity met so far: a file is new only once.
    seen: HashSet<(u64, u64)>,
}

struct Followed {
    file: File,
    id: (u64, u64),
    name: String,
    offset: u64,
    /// The rest of an overlong line is being dropped, up to its newline.
    skipping_line: bool,
    guard: KeyGuard,
    listed: bool,
    /// The last lines handed out (see [`Appended::context`]).
    context: Vec<u8>,
}

impl Follow {
    /// Starts at the current end of the source's newest plain files.
    pub fn start(source: &Source) -> Self {
        Self::start_listed(source, &source.listing())
    }

    /// Starts at the end of the newest plain files of `listing` (newest first): after each
    /// one's last complete line (a line being written is read once it ends), or before a
    /// private key block that has not ended yet (it is handed out whole once it does).
    pub(crate) fn start_listed(source: &Source, listing: &[(PathBuf, std::fs::Metadata)]) -> Self {
        let mut follow = Self { source: source.clone(), files: Vec::new(), seen: HashSet::new() };
        let plain = Self::plain(listing);
        let newest = plain.len().saturating_sub(MAX_AT_START);
        for (index, (id, path)) in plain.into_iter().enumerate() {
            follow.seen.insert(id);
            if index >= newest
                && let Some(mut followed) = Followed::open(&path, id)
                && followed.start_at_end().is_ok()
            {
                follow.files.push(followed);
            }
        }
        follow
    }

    /// Where a file followed from the start (known by its identity) is followed from.
    pub(crate) fn end_of(&self, id: (u64, u64)) -> Option<(&File, u64)> {
        self.files.iter().find(|f| f.id == id && !f.skipping_line).map(|f| (&f.file, f.offset))
    }

    /// How many files are followed now.
    pub fn files(&self) -> usize {
        self.files.len()
    }

    /// The plain (not `.gz`) files the source lists now, oldest first, with their identities.
    fn list(&self) -> Vec<((u64, u64), PathBuf)> {
        Self::plain(&self.source.listing())
    }

    /// The plain files of `listing` (newest first), oldest first, with their identities.
    fn plain(listing: &[(PathBuf, std::fs::Metadata)]) -> Vec<((u64, u64), PathBuf)> {
        listing
            .iter()
            .rev()
            .filter(|(path, _)| path.extension().is_none_or(|e| e != "gz"))
            .map(|(path, meta)| ((meta.dev(), meta.ino()), path.clone()))
            .collect()
    }

    /// The lines appended since the last poll, file by file (a rotated file's last lines before
    /// its successor's first), at most `max` bytes from each file; a private key block is held
    /// back until it ends, or withheld once it passes `key_max` bytes. A file that cannot be
    /// read any more is let go (and named in [`Polled::failed`]).
    pub fn poll(&mut self, max: usize, key_max: usize) -> Polled {
        for followed in &mut self.files {
            followed.listed = false;
        }
        for (id, path) in self.list() {
            match self.files.iter_mut().find(|f| f.id == id) {
                Some(followed) => {
                    followed.listed = true;
                    followed.name = file_name(&path);
                }
                None if self.seen.insert(id) => {
                    if let Some(followed) = Followed::open(&path, id) {
                        self.files.push(followed);
                    }
                }
                None => {}
            }
        }
        let mut polled = Polled::default();
        self.files.retain_mut(|followed| match followed.read(max, key_max) {
            Ok(appended) => {
                let idle = appended.lines.is_empty() && !appended.withheld;
                if !idle {
                    polled.appended.push(appended);
                }
                followed.listed || !idle
            }
            Err(error) => {
                polled.failed.push((followed.name.clone(), error));
                false
            }
        });
        polled
    }
}

impl Followed {
    /// Opens `path`, if it is still the file `id` names (not swapped since it was listed).
    fn open(path: &std::path::Path, id: (u64, u64)) -> Option<Self> {
        let file = open_file(path).ok()?;
        let meta = file.metadata().ok()?;
        ((meta.dev(), meta.ino()) == id).then(|| Self {
            file,
            id,
            name: file_name(path),
            offset: 0,
            skipping_line: false,
            guard: KeyGuard::default(),
            listed: true,
            context: Vec::new(),
        })
    }

    /// Moves to the end of the last complete line, or to the start of a private key block that
    /// has not ended there. A last line longer than can be looked back over is skipped to its
    /// end.
    fn start_at_end(&mut self) -> io::Result<()> {
        let len = self.file.metadata()?.len();
        let from = len.saturating_sub(crate::tail::KEY_LOOKBACK);
        let mut last = vec![0; (len - from) as usize];
        self.file.read_exact_at(&mut last, from)?;
        self.offset = match memchr::memrchr(b'\n', &last) {
            Some(newline) => from + newline as u64 + 1,
            None if from == 0 => 0,
            None => {
                self.skipping_line = true;
                len
            }
        };
        let mut read = 0;
        if let Some(begin) = crate::tail::open_key_block_before(&self.file, self.offset, &mut read)? {
            self.offset = begin;
        }
        // The lines before the start (the tail's last ones) are the first poll's context.
        if self.offset >= from {
            self.context = last_lines(&last[..(self.offset - from) as usize]).to_vec();
        }
        Ok(())
    }

    fn read(&mut self, max: usize, key_max: usize) -> io::Result<Appended> {
        let len = self.file.metadata()?.len();
        if len < self.offset {
            // Truncated in place: what is there now is new.
            self.offset = 0;
            self.skipping_line = false;
        }
        self.file.seek(SeekFrom::Start(self.offset))?;
        let mut buf = Vec::new();
        (&mut self.file).take(max as u64).read_to_end(&mut buf)?;
        let read = buf.len();
        let mut start = 0;
        if self.skipping_line {
            match buf.iter().position(|&b| b == b'\n') {
                Some(newline) => {
                    start = newline + 1;
                    self.skipping_line = false;
                }
                None => {
                    self.offset += read as u64;
                    return Ok(self.appended(Vec::new(), false));
                }
            }
        }
        let rest = &buf[start..];
        let (complete, used) = match rest.iter().rposition(|&b| b == b'\n') {
            Some(last) => (&rest[..=last], start + last + 1),
            // A whole read without a newline: a line too long to hand out.
            None if read == max && !rest.is_empty() => {
                self.skipping_line = true;
                self.offset += read as u64;
                let marker = format!("[ward: a line longer than {max} bytes withheld]\n").into_bytes();
                self.context.clear();
                return Ok(self.appended(marker, false));
            }
            None => (&rest[..0], start),
        };
        let taken = self.guard.take(complete, key_max);
        // What the guard holds back (an unfinished key block) is read again next time.
        let held = complete.len() - taken.used;
        self.offset += (used - held) as u64;
        let appended = self.appended(taken.lines, taken.withheld);
        if taken.withheld {
            self.context.clear();
        } else if !appended.lines.is_empty() {
            let context = [&self.context[..], &appended.lines[..]].concat();
            self.context = last_lines(&context).to_vec();
        }
        Ok(appended)
    }

    fn appended(&self, lines: Vec<u8>, withheld: bool) -> Appended {
        Appended { source: self.name.clone(), lines, context: self.context.clone(), withheld }
    }
}

/// The last [`CONTEXT_LINES`] whole lines of `text` (whole lines, each ending in a newline),
/// within its last [`CONTEXT_BYTES`].
fn last_lines(text: &[u8]) -> &[u8] {
    let from = text.len().saturating_sub(CONTEXT_BYTES);
    let tail = &text[from..];
    // From a line's start: the first newline within the bytes kept, unless they begin one.
    let start = if from == 0 || text[from - 1] == b'\n' {
        0
    } else {
        memchr::memchr(b'\n', tail).map_or(tail.len(), |i| i + 1)
    };
    let tail = &tail[start..];
    let body = tail.strip_suffix(b"\n").unwrap_or(tail);
    match memchr::memrchr_iter(b'\n', body).nth(CONTEXT_LINES - 1) {
        Some(newline) => &tail[newline + 1..],
        None => tail,
    }
}
