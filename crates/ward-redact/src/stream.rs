//! Redacting a stream in bounded memory: whole lines are gathered into chunks of about
//! [`Limits::chunk_bytes`] and redacted chunk by chunk, so a 10 GB file needs a few MB (the
//! chunks in flight between the reading thread and the redacting ones, [`BATCH`] at a time).
//!
//! Two things never leak at a boundary:
//! - a line longer than [`Limits::max_line_bytes`] is cut there, marked, and the rest of it is
//!   dropped (a value cut in two could not be recognised);
//! - a private key block is never split between chunks: the chunk grows until the block ends;
//!   a block that does not end within [`Limits::max_line_bytes`] is redacted whole to the end of
//!   the chunk, and its remaining lines are dropped up to its END line (fail closed).
//!
//! [`redact_gated`] redacts only what a gate asks for (a search's prefilter: chunks that cannot
//! hold a match are not worth redacting, and in the others only the lines that may match): a
//! chunk not wanted reaches the sink unredacted, in order, through [`Sink::skipped`], for
//! bookkeeping only; the lines wanted of a chunk are redacted alone where the rules allow
//! ([`RuleSet::redact_lines`], [`Sink::lines`]), else the whole chunk. The chunks are the same
//! either way, and the gate runs on the redacting threads.

use std::collections::BTreeMap;
use std::io::{self, BufRead, Write};
use std::ops::Range;
use std::sync::{LazyLock, Mutex, mpsc};

use crate::{Counts, Replace, RuleSet};

/// What is written in place of the dropped rest of an overlong line.
pub const CUT_MARK: &[u8] = b" [ward: line cut here, too long]";

const PRIVATE_KEY_RULE: &str = "private-key";

/// Lines wanted of a chunk are redacted alone while they are at most one part in this many of
/// it (by bytes); the whole chunk, past that.
const LINES_ALONE_SHARE: usize = 16;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub chunk_bytes: usize,
    pub max_line_bytes: usize,
    /// Threads redacting chunks side by side (the output keeps the input's order); 1: the
    /// caller's thread alone.
    pub threads: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { chunk_bytes: 64 * 1024, max_line_bytes: 1024 * 1024, threads: 1 }
    }
}

impl Limits {
    /// One thread per core, at most eight.
    pub fn parallel() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Self { threads: cores.min(8), ..Self::default() }
    }
}

/// Where [`redact_gated`] puts a stream's chunks, in the input's order.
pub trait Sink {
    /// Redacted text.
    fn redacted(&mut self, text: &[u8]) -> io::Result<()>;
    /// A chunk the gate held back, as read: never to be handed out, only looked at (for the
    /// time of its last line, say).
    fn skipped(&mut self, raw: &[u8]) -> io::Result<()>;
    /// The lines the gate wanted of a chunk, redacted alone: `raw` is the chunk as read (only
    /// to be looked at, as in [`Sink::skipped`]), `at` where each line is in it (without its
    /// newline), `redacted` those lines redacted, in order, each ending in a newline.
    fn lines(&mut self, raw: &[u8], at: &[Range<usize>], redacted: &[u8]) -> io::Result<()>;
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<T: Sink + ?Sized> Sink for &mut T {
    fn redacted(&mut self, text: &[u8]) -> io::Result<()> {
        (**self).redacted(text)
    }

    fn skipped(&mut self, raw: &[u8]) -> io::Result<()> {
        (**self).skipped(raw)
    }

    fn lines(&mut self, raw: &[u8], at: &[Range<usize>], redacted: &[u8]) -> io::Result<()> {
        (**self).lines(raw, at, redacted)
    }

    fn flush(&mut self) -> io::Result<()> {
        (**self).flush()
    }
}

/// A writer as a sink that redacts everything.
struct Writer<W>(W);

impl<W: Write> Sink for Writer<W> {
    fn redacted(&mut self, text: &[u8]) -> io::Result<()> {
        self.0.write_all(text)
    }

    fn skipped(&mut self, _raw: &[u8]) -> io::Result<()> {
        Err(io::Error::other("nothing is skipped without a gate"))
    }

    fn lines(&mut self, _raw: &[u8], _at: &[Range<usize>], _redacted: &[u8]) -> io::Result<()> {
        Err(io::Error::other("no lines are picked without a gate"))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// What a gate wants of a chunk (whole lines).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wanted {
    /// Nothing: it reaches the sink as read ([`Sink::skipped`]).
    Nothing,
    /// These lines (where each is in the chunk, without its newline, in order).
    Lines(Vec<Range<usize>>),
    /// All of it.
    All,
}

/// What is redacted of each chunk.
pub type Gate<'g> = &'g (dyn Fn(&[u8]) -> Wanted + Sync);

/// Redacts every line of `input` into `output`.
pub fn redact<R: BufRead, W: Write>(
    rules: &RuleSet,
    replace: &dyn Replace,
    input: R,
    output: W,
    limits: Limits,
) -> io::Result<Counts> {
    redact_gated(rules, replace, input, Writer(output), limits, &|_| Wanted::All)
}

/// Redacts what `gate` wants of each chunk of `input` into `sink` (see the module's doc).
pub fn redact_gated<R: BufRead, S: Sink>(
    rules: &RuleSet,
    replace: &dyn Replace,
    input: R,
    output: S,
    limits: Limits,
    gate: Gate<'_>,
) -> io::Result<Counts> {
    if limits.threads <= 1 {
        let mut sink = Inline { rules, replace, spare: Vec::new(), output, counts: Counts::default(), gate };
        chunks(rules, replace, input, &mut sink, limits)?;
        sink.output.flush()?;
        return Ok(sink.counts);
    }
    let (jobs, queue) = mpsc::sync_channel::<Job>(limits.threads);
    let queue = Mutex::new(queue);
    let (done, results) = mpsc::channel();
    std::thread::scope(|scope| {
        for _ in 0..limits.threads {
            let (queue, done) = (&queue, done.clone());
            scope.spawn(move || {
                let next = || queue.lock().map_or(None, |queue| queue.recv().ok());
                while let Some(Job { seq, chunks }) = next() {
                    let (pieces, spare) =
                        chunks.into_iter().map(|(chunk, out)| work(rules, replace, gate, chunk, out)).unzip();
                    if done.send(Done { seq, pieces, spare }).is_err() {
                        break;
                    }
                }
            });
        }
        drop(done);
        let mut sink = Parallel {
            jobs: Some(jobs),
            results,
            in_flight_max: limits.threads * 2,
            batch: Vec::new(),
            sent: 0,
            written: 0,
            waiting: BTreeMap::new(),
            spare: Vec::new(),
            output,
            counts: Counts::default(),
        };
        let outcome = chunks(rules, replace, input, &mut sink, limits).and_then(|()| sink.finish());
        // The workers stop once the queue closes, also when the output failed midway.
        sink.jobs = None;
        outcome.map(|()| sink.counts)
    })
}

/// Where the chunks of a stream go: redacted and written, in order.
trait Chunks {
    /// Redacts and writes `chunk` (whole lines), leaving it empty to be filled again.
    fn redact(&mut self, chunk: &mut Vec<u8>) -> io::Result<()>;
    /// Writes text already redacted.
    fn write_redacted(&mut self, text: Vec<u8>, counts: Counts) -> io::Result<()>;
}

/// What `gate` wants of `chunk`, done: `out` is a buffer for its redaction. Returns the piece
/// for the sink and a buffer it no longer needs.
fn work(
    rules: &RuleSet,
    replace: &dyn Replace,
    gate: Gate<'_>,
    chunk: Vec<u8>,
    mut out: Vec<u8>,
) -> (Piece, Vec<u8>) {
    out.clear();
    let mut counts = Counts::default();
    match gate(&chunk) {
        Wanted::Nothing => return (Piece::Skipped(chunk), out),
        // Each line redacted alone costs a few of its neighbours' worth: past a share of the
        // chunk, redacting it whole is cheaper.
        Wanted::Lines(at)
            if at.iter().map(|line| line.len() + 1).sum::<usize>() * LINES_ALONE_SHARE <= chunk.len() =>
        {
            if rules.redact_lines(&chunk, &at, replace, &mut out, &mut counts) {
                return (Piece::Lines { raw: chunk, at, out, counts }, Vec::new());
            }
        }
        Wanted::Lines(_) | Wanted::All => {}
    }
    rules.redact(&chunk, replace, &mut out, &mut counts);
    (Piece::Redacted(out, counts), chunk)
}

/// Hands `piece` to `output`, adding up its counts into `total`; returns its buffers, to use again.
fn deliver<S: Sink>(output: &mut S, piece: Piece, total: &mut Counts) -> io::Result<[Vec<u8>; 2]> {
    match piece {
        Piece::Redacted(text, counts) => {
            total.merge(&counts);
            output.redacted(&text)?;
            Ok([text, Vec::new()])
        }
        Piece::Skipped(raw) => {
            output.skipped(&raw)?;
            Ok([raw, Vec::new()])
        }
        Piece::Lines { raw, at, out, counts } => {
            total.merge(&counts);
            output.lines(&raw, &at, &out)?;
            Ok([raw, out])
        }
    }
}

/// Redacts on the caller's thread.
struct Inline<'r, S> {
    rules: &'r RuleSet,
    replace: &'r dyn Replace,
    spare: Vec<Vec<u8>>,
    output: S,
    counts: Counts,
    gate: Gate<'r>,
}

impl<S: Sink> Chunks for Inline<'_, S> {
    fn redact(&mut self, chunk: &mut Vec<u8>) -> io::Result<()> {
        let out = self.spare.pop().unwrap_or_default();
        let (piece, spare) = work(self.rules, self.replace, self.gate, std::mem::take(chunk), out);
        let [first, second] = deliver(&mut self.output, piece, &mut self.counts)?;
        for mut buffer in [first, second, spare].into_iter().filter(|b| b.capacity() > 0) {
            buffer.clear();
            if chunk.capacity() == 0 {
                *chunk = buffer;
            } else {
                self.spare.push(buffer);
            }
        }
        Ok(())
    }

    fn write_redacted(&mut self, text: Vec<u8>, counts: Counts) -> io::Result<()> {
        self.counts.merge(&counts);
        self.output.redacted(&text)
    }
}

/// Chunks for a worker, each with a buffer for what it becomes.
struct Job {
    seq: u64,
    chunks: Vec<(Vec<u8>, Vec<u8>)>,
}

/// The chunks of a job done, in order, with buffers to use again.
struct Done {
    seq: u64,
    pieces: Vec<Piece>,
    spare: Vec<Vec<u8>>,
}

/// A chunk ready to be handed to the sink in its turn.
enum Piece {
    Redacted(Vec<u8>, Counts),
    /// Held back by the gate, as read.
    Skipped(Vec<u8>),
    /// The lines the gate wanted, redacted alone (`out`), and the chunk as read.
    Lines {
        raw: Vec<u8>,
        at: Vec<Range<usize>>,
        out: Vec<u8>,
        counts: Counts,
    },
}

/// Hands chunks to worker threads, [`BATCH`] at a time, and writes what they return in the
/// input's order, with a bounded number of batches in flight (memory stays bounded however far
/// ahead the reading is). Buffers go round: allocating two per chunk costs more than it seems.
struct Parallel<S> {
    jobs: Option<mpsc::SyncSender<Job>>,
    results: mpsc::Receiver<Done>,
    in_flight_max: usize,
    /// Chunks not sent yet, with their buffers.
    batch: Vec<(Vec<u8>, Vec<u8>)>,
    sent: u64,
    written: u64,
    /// Batches that came back (or were held back) before one ahead of them.
    waiting: BTreeMap<u64, Vec<Piece>>,
    /// Buffers to use again.
    spare: Vec<Vec<u8>>,
    output: S,
    counts: Counts,
}

/// Chunks handed to a worker at a time: one at a time, handing them over costs about as much as
/// a search that skips them (two thread wake-ups per 64 KB).
const BATCH: usize = 8;

impl<S: Sink> Parallel<S> {
    /// Writes what has come back in order; waits for results while more than `in_flight`
    /// batches are out.
    fn drain(&mut self, in_flight: usize) -> io::Result<()> {
        loop {
            while let Some(pieces) = self.waiting.remove(&self.written) {
                self.written += 1;
                for piece in pieces {
                    let buffers = deliver(&mut self.output, piece, &mut self.counts)?;
                    self.spare.extend(buffers.into_iter().filter(|b| b.capacity() > 0));
                }
            }
            if self.sent - self.written <= in_flight as u64 {
                return Ok(());
            }
            let done = self.results.recv().map_err(|_| io::Error::other("a redaction thread stopped"))?;
            self.came_back(done);
        }
    }

    fn came_back(&mut self, Done { seq, pieces, spare }: Done) {
        self.waiting.insert(seq, pieces);
        self.spare.extend(spare.into_iter().filter(|b| b.capacity() > 0));
    }

    fn buffer(&mut self) -> Vec<u8> {
        self.spare.pop().map_or_else(Vec::new, |mut buffer| {
            buffer.clear();
            buffer
        })
    }

    /// Hands the chunks gathered so far to a worker.
    fn send(&mut self) -> io::Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        self.drain(self.in_flight_max)?;
        let job = Job { seq: self.sent, chunks: std::mem::take(&mut self.batch) };
        let jobs = self.jobs.as_ref().ok_or_else(|| io::Error::other("the redaction threads stopped"))?;
        jobs.send(job).map_err(|_| io::Error::other("the redaction threads stopped"))?;
        self.sent += 1;
        while let Ok(done) = self.results.try_recv() {
            self.came_back(done);
        }
        self.drain(self.in_flight_max)
    }

    fn finish(&mut self) -> io::Result<()> {
        self.send()?;
        self.drain(0)?;
        self.output.flush()
    }
}

impl<S: Sink> Chunks for Parallel<S> {
    fn redact(&mut self, chunk: &mut Vec<u8>) -> io::Result<()> {
        let fresh = self.buffer();
        let out = self.buffer();
        self.batch.push((std::mem::replace(chunk, fresh), out));
        if self.batch.len() < BATCH {
            return Ok(());
        }
        self.send()
    }

    fn write_redacted(&mut self, text: Vec<u8>, counts: Counts) -> io::Result<()> {
        // After the chunks before it.
        self.send()?;
        self.waiting.insert(self.sent, vec![Piece::Redacted(text, counts)]);
        self.sent += 1;
        self.drain(self.in_flight_max)
    }
}

/// Cuts `input` into chunks of whole lines for `sink`, keeping private key blocks whole.
fn chunks<R: BufRead>(
    rules: &RuleSet,
    replace: &dyn Replace,
    mut input: R,
    sink: &mut dyn Chunks,
    limits: Limits,
) -> io::Result<()> {
    let key_rule = rules.rules().iter().position(|r| r.id == PRIVATE_KEY_RULE);
    let mut chunk = Vec::with_capacity(limits.chunk_bytes * 2);
    let mut skipping_key = false;
    // Where an unfinished key block begins in `chunk`, once known: looked for once, not again
    // for every line it grows by (that would be quadratic in the block's length).
    let mut open_at: Option<usize> = None;
    loop {
        let start = chunk.len();
        // Most lines are short and no key block is open: many at a time, to where the chunk is
        // full.
        let many = !skipping_key
            && open_at.is_none()
            && take_lines(&mut input, &mut chunk, limits.chunk_bytes, limits.max_line_bytes)?;
        if !many {
            let Some(cut) = read_line(&mut input, &mut chunk, limits.max_line_bytes)? else { break };
            if skipping_key {
                // The rest of a key block already replaced: drop lines up to its END line.
                let line = chunk.split_off(start);
                skipping_key = !closes_key_block(&line);
                continue;
            }
            if cut {
                let newline = chunk.last() == Some(&b'\n');
                if newline {
                    chunk.pop();
                }
                chunk.extend_from_slice(CUT_MARK);
                chunk.push(b'\n');
            }
            if open_at.is_some() {
                let line = &chunk[start..];
                if closes_key_block(line) {
                    open_at = None;
                } else {
                    // Still open: only the growth matters.
                    if let Some(begin) = open_at
                        && chunk.len() - begin > limits.max_line_bytes
                    {
                        fail_closed(rules, replace, key_rule.unwrap_or_default(), begin, &mut chunk, sink)?;
                        skipping_key = true;
                        open_at = None;
                    }
                    continue;
                }
            }
        }
        if chunk.len() < limits.chunk_bytes {
            continue;
        }
        match key_rule.and_then(|_| open_key_block(&chunk)) {
            None => sink.redact(&mut chunk)?,
            Some(begin) if chunk.len() - begin > limits.max_line_bytes => {
                fail_closed(rules, replace, key_rule.unwrap_or_default(), begin, &mut chunk, sink)?;
                skipping_key = true;
            }
            Some(begin) => open_at = Some(begin),
        }
    }
    match key_rule.and_then(|rule| open_key_block(&chunk).map(|begin| (rule, begin))) {
        Some((rule, begin)) => fail_closed(rules, replace, rule, begin, &mut chunk, sink),
        None if chunk.is_empty() => Ok(()),
        None => sink.redact(&mut chunk),
    }
}

/// Redacts the chunk up to an unterminated key block, and the block to the chunk's end as one
/// value.
fn fail_closed(
    rules: &RuleSet,
    replace: &dyn Replace,
    rule: usize,
    begin: usize,
    chunk: &mut Vec<u8>,
    sink: &mut dyn Chunks,
) -> io::Result<()> {
    let block = chunk.split_off(begin);
    sink.redact(chunk)?;
    let mut out = Vec::new();
    let kind = rules.rules().get(rule).map_or("private-key", |r| r.kind.as_str());
    replace.replace(kind, &block, &mut out);
    out.push(b'\n');
    let mut counts = Counts::default();
    counts.add(rule);
    sink.write_redacted(out, counts)
}

/// Whether `line` ends a private key block.
fn closes_key_block(line: &[u8]) -> bool {
    contains(line, b"-----END") && contains(line, b"PRIVATE KEY")
}

/// Holds back an unfinished private key block until it ends, so a block is never handed out in
/// parts; one that grows past `max` bytes is replaced whole, and its remaining lines dropped up
/// to its END line (fail closed).
#[derive(Debug, Default)]
pub struct KeyGuard {
    skipping: bool,
}

/// What [`KeyGuard::take`] lets out of a poll.
pub struct Taken {
    /// Lines that may be redacted and handed out now.
    pub lines: Vec<u8>,
    /// How many bytes of the poll that accounts for (the rest is read again next time).
    pub used: usize,
    /// A key block too long to wait for was withheld here: write one pseudonym for it.
    pub withheld: bool,
}

impl KeyGuard {
    pub fn take(&mut self, appended: &[u8], max: usize) -> Taken {
        let mut start = 0;
        if self.skipping {
            // Drop lines up to and including the block's END line.
            for line in appended.split_inclusive(|&b| b == b'\n') {
                start += line.len();
                if closes_key_block(line) {
                    self.skipping = false;
                    break;
                }
            }
            if self.skipping {
                return Taken { lines: Vec::new(), used: appended.len(), withheld: false };
            }
        }
        let rest = &appended[start..];
        match open_key_block(rest) {
            None => Taken { lines: rest.to_vec(), used: appended.len(), withheld: false },
            Some(begin) if rest.len() - begin <= max => {
                Taken { lines: rest[..begin].to_vec(), used: start + begin, withheld: false }
            }
            Some(begin) => {
                self.skipping = true;
                Taken { lines: rest[..begin].to_vec(), used: appended.len(), withheld: true }
            }
        }
    }
}

/// Where the last private key block that has not ended yet begins, if any.
pub fn open_key_block(chunk: &[u8]) -> Option<usize> {
    // Forward: looking backwards is several times slower, and most chunks hold no block.
    static BEGIN: LazyLock<memchr::memmem::Finder<'static>> = LazyLock::new(|| {
        memchr::memmem::FinderBuilder::new().build_forward_with_ranker(DashesAreRare, b"-----BEGIN")
    });
    let begin = BEGIN.find_iter(chunk).last()?;
    let header_end = chunk[begin..].iter().position(|&b| b == b'\n').map_or(chunk.len(), |i| begin + i);
    let private = contains(&chunk[begin..header_end], b"PRIVATE KEY");
    (private && !contains(&chunk[begin..], b"-----END")).then_some(begin)
}

/// Tells the search for `-----BEGIN` to look for two dashes in a row first: log lines are full
/// of capital letters (ids, tokens) and single dashes (dates), and seldom hold `--`. By default
/// it would look for two of the capitals, and check thousands of places per chunk.
struct DashesAreRare;

impl memchr::arch::all::packedpair::HeuristicFrequencyRank for DashesAreRare {
    fn rank(&self, byte: u8) -> u8 {
        if byte == b'-' { 0 } else { 255 }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(haystack, needle).is_some()
}

/// Appends the whole lines `input` holds in its buffer to `buf`, up to the one that brings it
/// to `fill` bytes or more; says `false` when it takes none, a line is longer than `max` bytes
/// (with its newline), or none ends in the buffer (then [`read_line`] takes one line).
fn take_lines<R: BufRead>(input: &mut R, buf: &mut Vec<u8>, fill: usize, max: usize) -> io::Result<bool> {
    let available = match input.fill_buf() {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(false),
        Err(e) => return Err(e),
    };
    // The line that holds the chunk's byte `fill - 1` ends it.
    let room = fill.saturating_sub(buf.len()).max(1);
    let end = match available.get(room - 1..).and_then(|rest| memchr::memchr(b'\n', rest)) {
        Some(at) => room + at,
        None => match memchr::memrchr(b'\n', available) {
            Some(at) => at + 1,
            None => return Ok(false),
        },
    };
    let taken = &available[..end];
    if taken.len() > max {
        let mut line_start = 0;
        for newline in memchr::memchr_iter(b'\n', taken) {
            if newline + 1 - line_start > max {
                return Ok(false);
            }
            line_start = newline + 1;
        }
    }
    buf.extend_from_slice(taken);
    input.consume(end);
    Ok(true)
}

/// Appends one line (with its newline, if any) to `buf`, at most `max` bytes of it; the rest of
/// a longer line is read and dropped. `None` at the end of the input; else whether it was cut.
fn read_line<R: BufRead>(input: &mut R, buf: &mut Vec<u8>, max: usize) -> io::Result<Option<bool>> {
    let mut taken = 0;
    let mut cut = false;
    let mut any = false;
    loop {
        let available = match input.fill_buf() {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok(any.then_some(cut));
        }
        any = true;
        let (line_part, done) = match memchr::memchr(b'\n', available) {
            Some(i) => (&available[..=i], true),
            None => (available, false),
        };
        let room = max.saturating_sub(taken);
        if line_part.len() <= room {
            buf.extend_from_slice(line_part);
            taken += line_part.len();
        } else {
            buf.extend_from_slice(&line_part[..room]);
            taken = max;
            cut = true;
            if done {
                buf.push(b'\n');
            }
        }
        let consumed = line_part.len();
        input.consume(consumed);
        if done {
            return Ok(Some(cut));
        }
    }
}
