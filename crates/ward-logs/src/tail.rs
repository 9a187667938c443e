//! The newest lines of a source: read from the end of its newest files, so that a tail costs
//! what it returns, not what the resource holds. Older files are read only while the newer ones
//! lack lines (a compressed one whole: it cannot be read from its end).
//!
//! A tail hands out complete lines up to where its [`Follow`] starts, so that following loses
//! no line and repeats none. Its first line is never inside a private key block: the lines read
//! begin at the block's BEGIN line (so that the block is redacted whole), and lines that follow
//! a block's BEGIN line the tail cannot see are dropped up to its END line.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Cursor};
use std::os::unix::fs::{FileExt, MetadataExt};

use ward_redact::stream::{self, Limits};

use crate::{
    Counted, Follow, Line, LineSink, LogError, MAX_RESULT_BYTES, Masking, Query, Source, Summary, file_name,
    open,
};

/// What a tail returns.
pub struct Tail {
    /// Oldest first.
    pub lines: Vec<Line>,
    pub summary: Summary,
    /// Following the source from where the lines end.
    pub follow: Follow,
}

/// Lines read before the first one handed out, so that a match spanning lines (some rules'
/// reach a few) begins inside what is redacted.
const CONTEXT_LINES: usize = 16;
/// How far back a private key block's BEGIN line is looked for: as far as a block may grow
/// before a stream withholds it whole.
pub(crate) const KEY_LOOKBACK: u64 = 1 << 20;
/// The most bytes read back from one file's end for its lines.
const MAX_TAIL_BYTES: u64 = MAX_RESULT_BYTES;
/// The first read back from a file's end; each next one doubles.
const FIRST_READ: u64 = 64 << 10;

/// The newest `want` lines of `source`, as `masking` lets them out, and a [`Follow`] that
/// starts where they end.
pub fn tail(source: &Source, want: usize, masking: &Masking<'_>) -> Result<Tail, LogError> {
    tail_until(source, want, masking, &|| true)
}

/// [`tail`], asking `keep_going` before each file, each read back and each chunk of lines
/// redacted (64 KB): once it says no, the tail ends with the newest files read whole so far,
/// and [`Summary::stopped`] (a file it stopped inside gives no line: they would not be the
/// newest).
pub fn tail_until(
    source: &Source,
    want: usize,
    masking: &Masking<'_>,
    keep_going: &dyn Fn() -> bool,
) -> Result<Tail, LogError> {
    let listing = source.listing();
    let follow = Follow::start_listed(source, &listing);
    let mut summary = Summary::default();
    // Each file's lines, newest file first.
    let mut read: Vec<Vec<Line>> = Vec::new();
    let mut have = 0;
    for (path, meta) in &listing {
        if have >= want || summary.truncated {
            break;
        }
        if !keep_going() {
            summary.stopped = true;
            break;
        }
        let name = file_name(path);
        let reading = Reading { want: want - have, masking, name: &name, keep_going };
        let read_file = match follow.end_of((meta.dev(), meta.ino())) {
            Some((file, end)) => plain(file, end, &reading, &mut summary),
            None if path.extension().is_some_and(|e| e == "gz") => whole(path, &reading, &mut summary),
            None => crate::open_file(path).and_then(|file| {
                let end = file.metadata()?.len();
                plain(&file, end, &reading, &mut summary)
            }),
        };
        let lines = match read_file {
            Ok(Some(lines)) => lines,
            Ok(None) => {
                summary.stopped = true;
                break;
            }
            // Rotated away since the listing: its lines are in the next file.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(source) => return Err(LogError::Read { path: name.into(), source }),
        };
        summary.files += 1;
        have += lines.len();
        read.push(lines);
    }
    let mut lines: Vec<Line> = read.into_iter().rev().flatten().collect();
    let mut bytes: u64 = lines.iter().map(|l| l.text.len() as u64 + 1).sum();
    let mut drop = lines.len().saturating_sub(want);
    while bytes > MAX_RESULT_BYTES && drop < lines.len() {
        bytes -= lines[drop].text.len() as u64 + 1;
        drop += 1;
        summary.truncated = true;
    }
    lines.drain(..drop);
    summary.lines = lines.len() as u64;
    summary.bytes = bytes;
    if matches!(masking, Masking::Redacted { .. }) {
        for line in &lines {
            ward_redact::count_pseudonyms(line.text.as_bytes(), &mut summary.redactions);
        }
    }
    Ok(Tail { lines, summary, follow })
}

/// What one file's read is for.
pub(crate) struct Reading<'a> {
    /// Lines.
    pub(crate) want: usize,
    pub(crate) masking: &'a Masking<'a>,
    /// The file's name.
    pub(crate) name: &'a str,
    pub(crate) keep_going: &'a dyn Fn() -> bool,
}

/// The last `want` lines of `file` before `end`; `None`: `keep_going` stopped the read.
fn plain(
    file: &File,
    end: u64,
    reading: &Reading<'_>,
    summary: &mut Summary,
) -> io::Result<Option<Vec<Line>>> {
    let want = reading.want;
    let mut back =
        Backwards { file, end, start: end, bytes: Vec::new(), read: 0, keep_going: reading.keep_going };
    let mut span = want + CONTEXT_LINES;
    let lines = loop {
        let Some((start, cut)) = back.last_lines(span)? else {
            summary.scanned += back.read;
            return Ok(None);
        };
        // A start inside a key block moves back to the block's BEGIN line.
        let start = match open_key_block_before(file, start, &mut back.read)? {
            Some(begin) => begin.min(start),
            None => start,
        };
        let Some(region) = back.from(start)? else {
            summary.scanned += back.read;
            return Ok(None);
        };
        let size = region.len();
        let Some(last) = redacted_lines(Cursor::new(region), LastLines::new(want), reading, size)? else {
            summary.scanned += back.read;
            return Ok(None);
        };
        summary.truncated |= last.cut;
        let lines: Vec<Line> = last.lines.into();
        // Fewer lines than asked: a key block became one line; read further back.
        if lines.len() >= want || start == 0 || cut {
            summary.truncated |= cut && lines.len() < want;
            if cut && lines.is_empty() {
                // One line longer than a tail reads back: its start (where a cut line would
                // begin) is out of reach, so it is withheld, as a follow withholds one.
                let text = format!("[ward: a line longer than {MAX_TAIL_BYTES} bytes withheld]");
                break vec![Line { source: reading.name.to_owned(), time: None, text }];
            }
            break lines;
        }
        span *= 2;
    };
    summary.scanned += back.read;
    Ok(Some(without_stray_key_end(lines)))
}

/// The last `want` lines of a compressed file: decompressed as a stream (it cannot be read
/// from its end), holding only the lines the tail may return ([`LastLines`]).
fn whole(
    path: &std::path::Path,
    reading: &Reading<'_>,
    summary: &mut Summary,
) -> io::Result<Option<Vec<Line>>> {
    let (reader, scanned) = Counted::new(open(path)?);
    let last = redacted_lines(reader, LastLines::new(reading.want), reading, usize::MAX);
    summary.scanned += scanned.get();
    let Some(last) = last? else { return Ok(None) };
    summary.truncated |= last.cut;
    Ok(Some(without_stray_key_end(last.lines.into())))
}

/// The last lines of a read, bounded in number and in bytes ([`MAX_RESULT_BYTES`], what a tail
/// returns at most): however long the file read through, only these are held.
pub(crate) struct LastLines {
    lines: VecDeque<Line>,
    bytes: usize,
    max_lines: usize,
    max_bytes: usize,
    /// The most bytes held at once.
    pub(crate) peak_bytes: usize,
    /// Lines were let go for the bytes bound, not the number.
    cut: bool,
}

impl LastLines {
    fn new(max_lines: usize) -> Self {
        Self::bounded(max_lines, MAX_RESULT_BYTES as usize)
    }

    pub(crate) fn bounded(max_lines: usize, max_bytes: usize) -> Self {
        let lines = VecDeque::with_capacity(max_lines.min(4096));
        Self { lines, bytes: 0, max_lines, max_bytes, peak_bytes: 0, cut: false }
    }

    fn push(&mut self, line: Line) {
        self.bytes += line.text.len() + 1;
        self.lines.push_back(line);
        if self.lines.len() > self.max_lines {
            self.pop();
        }
        while self.bytes > self.max_bytes && self.pop() {
            self.cut = true;
        }
        self.peak_bytes = self.peak_bytes.max(self.bytes);
    }

    fn pop(&mut self) -> bool {
        let Some(line) = self.lines.pop_front() else { return false };
        self.bytes -= line.text.len() + 1;
        true
    }

    #[cfg(test)]
    pub(crate) fn lines(&self) -> impl Iterator<Item = &Line> {
        self.lines.iter()
    }

    #[cfg(test)]
    pub(crate) fn is_cut(&self) -> bool {
        self.cut
    }
}

/// The last lines of `input` as the reading's masking lets them out, kept in `last`; `None`:
/// `keep_going` stopped it. Lines longer than the stream's limit are cut there and marked
/// ([`stream::CUT_MARK`]), as a search cuts them.
pub(crate) fn redacted_lines(
    input: impl io::BufRead,
    mut last: LastLines,
    reading: &Reading<'_>,
    size: usize,
) -> io::Result<Option<LastLines>> {
    let (rules, replace) = reading.masking.redaction().map_err(io::Error::other)?;
    let query = Query { limit: usize::MAX, ..Query::default() };
    let mut scratch = Summary::default();
    let mut keep = |line: Line| {
        last.push(line);
        true
    };
    let mut sink = LineSink::new(
        reading.name.to_owned(),
        &query,
        &mut scratch,
        reading.keep_going,
        &mut keep,
        reading.masking,
    );
    // Threads pay off only on a long read.
    let limits = if size > 1 << 20 { Limits::parallel() } else { Limits::default() };
    let redacted = stream::redact(rules, replace, input, &mut sink, limits);
    sink.finish(redacted, 0).map_err(|e| match e {
        LogError::Read { source, .. } => source,
        other => io::Error::other(other.to_string()),
    })?;
    Ok((!scratch.stopped).then_some(last))
}

/// `lines` from after a private key block's END line, when one comes before any BEGIN line: the
/// lines before it are the rest of a block whose start the reader cannot see (a raw read cut
/// into one, a file rotated in the middle of one).
fn without_stray_key_end(mut lines: Vec<Line>) -> Vec<Line> {
    let first =
        lines.iter().enumerate().find_map(|(i, l)| key_marker(l.text.as_bytes()).map(|opens| (i, opens)));
    if let Some((end, false)) = first {
        lines.drain(..=end);
    }
    lines
}

/// Whether `line` opens a private key block (`Some(true)`) or closes one (`Some(false)`); a
/// line that does both holds a whole block.
fn key_marker(line: &[u8]) -> Option<bool> {
    let has = |needle: &[u8]| memchr::memmem::find(line, needle).is_some();
    if stream::open_key_block(line).is_some() {
        Some(true)
    } else if has(b"-----END") && has(b"PRIVATE KEY") && !has(b"-----BEGIN") {
        Some(false)
    } else {
        None
    }
}

/// Where the private key block that `pos` lies inside begins (the start of its BEGIN line),
/// looking back [`KEY_LOOKBACK`] bytes: the last BEGIN line before `pos` with no END after it.
pub(crate) fn open_key_block_before(file: &File, pos: u64, read: &mut u64) -> io::Result<Option<u64>> {
    let from = pos.saturating_sub(KEY_LOOKBACK);
    let mut before = vec![0; (pos - from) as usize];
    file.read_exact_at(&mut before, from)?;
    *read += before.len() as u64;
    if memchr::memmem::find(&before, b"PRIVATE KEY").is_none() {
        return Ok(None);
    }
    Ok(stream::open_key_block(&before).map(|begin| {
        // From the start of the BEGIN line.
        let line = memchr::memrchr(b'\n', &before[..begin]).map_or(0, |newline| newline + 1);
        from + line as u64
    }))
}

/// A file read back from `end`, in reads that double.
struct Backwards<'f> {
    file: &'f File,
    end: u64,
    /// Where `bytes` begins in the file.
    start: u64,
    bytes: Vec<u8>,
    read: u64,
    /// Asked before each read back.
    keep_going: &'f dyn Fn() -> bool,
}

impl Backwards<'_> {
    /// Where the last `n` lines before `end` begin, reading back as far as they need (at most
    /// [`MAX_TAIL_BYTES`]: then from the first whole line within them, and `true`); `None`:
    /// `keep_going` stopped it.
    fn last_lines(&mut self, n: usize) -> io::Result<Option<(u64, bool)>> {
        loop {
            let body = self.bytes.strip_suffix(b"\n").unwrap_or(&self.bytes);
            if let Some(newline) = memchr::memrchr_iter(b'\n', body).nth(n - 1) {
                return Ok(Some((self.start + newline as u64 + 1, false)));
            }
            if self.start == 0 {
                return Ok(Some((0, false)));
            }
            if self.end - self.start >= MAX_TAIL_BYTES {
                let first =
                    memchr::memchr(b'\n', &self.bytes).map_or(self.end, |i| self.start + i as u64 + 1);
                return Ok(Some((first, true)));
            }
            if !(self.keep_going)() {
                return Ok(None);
            }
            self.extend()?;
        }
    }

    /// Reads further back: as much again as is held (at least [`FIRST_READ`]).
    fn extend(&mut self) -> io::Result<()> {
        let more = (self.end - self.start).max(FIRST_READ).min(self.start);
        let from = self.start - more;
        let mut bytes = vec![0; more as usize];
        self.file.read_exact_at(&mut bytes, from)?;
        bytes.extend_from_slice(&self.bytes);
        self.bytes = bytes;
        self.start = from;
        self.read += more;
        Ok(())
    }

    /// The bytes from `pos` to the end, reading back to `pos` if need be; `None`: `keep_going`
    /// stopped it.
    fn from(&mut self, pos: u64) -> io::Result<Option<&[u8]>> {
        while self.start > pos {
            if !(self.keep_going)() {
                return Ok(None);
            }
            self.extend()?;
        }
        Ok(Some(&self.bytes[(pos - self.start) as usize..]))
    }
}
