//! Redacting a stream in bounded memory: whole lines are gathered into chunks of about
//! [`Limits::chunk_bytes`] and redacted chunk by chunk, so a 10 GB file needs a few hundred KB.
//!
//! Two things never leak at a boundary:
//! - a line longer than [`Limits::max_line_bytes`] is cut there, marked, and the rest of it is
//!   dropped (a value cut in two could not be recognised);
//! - a private key block is never split between chunks: the chunk grows until the block ends;
//!   a block that does not end within [`Limits::max_line_bytes`] is redacted whole to the end of
//!   the chunk, and its remaining lines are dropped up to its END line (fail closed).

use std::io::{self, BufRead, Write};

use crate::{Counts, Replace, RuleSet};

/// What is written in place of the dropped rest of an overlong line.
pub const CUT_MARK: &[u8] = b" [ward: line cut here, too long]";

const PRIVATE_KEY_RULE: &str = "private-key";

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub chunk_bytes: usize,
    pub max_line_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { chunk_bytes: 64 * 1024, max_line_bytes: 1024 * 1024 }
    }
}

/// Redacts every line of `input` into `output`.
pub fn redact<R: BufRead, W: Write>(
    rules: &RuleSet,
    replace: &dyn Replace,
    mut input: R,
    mut output: W,
    limits: Limits,
) -> io::Result<Counts> {
    let key_rule = rules.rules().iter().position(|r| r.id == PRIVATE_KEY_RULE);
    let mut counts = Counts::default();
    let mut chunk = Vec::with_capacity(limits.chunk_bytes * 2);
    let mut out = Vec::with_capacity(limits.chunk_bytes * 2);
    let mut skipping_key = false;
    // Where an unfinished key block begins in `chunk`, once known: looked for once, not again
    // for every line it grows by (that would be quadratic in the block's length).
    let mut open_at: Option<usize> = None;
    loop {
        let start = chunk.len();
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
                    let rule = key_rule.unwrap_or_default();
                    fail_closed(rules, replace, rule, begin, &mut chunk, &mut out, &mut output, &mut counts)?;
                    skipping_key = true;
                    open_at = None;
                }
                continue;
            }
        }
        if chunk.len() < limits.chunk_bytes {
            continue;
        }
        match key_rule.and_then(|_| open_key_block(&chunk)) {
            None => flush(rules, replace, &mut chunk, &mut out, &mut output, &mut counts)?,
            Some(begin) if chunk.len() - begin > limits.max_line_bytes => {
                let rule = key_rule.unwrap_or_default();
                fail_closed(rules, replace, rule, begin, &mut chunk, &mut out, &mut output, &mut counts)?;
                skipping_key = true;
            }
            Some(begin) => open_at = Some(begin),
        }
    }
    match key_rule.and_then(|rule| open_key_block(&chunk).map(|begin| (rule, begin))) {
        Some((rule, begin)) => {
            fail_closed(rules, replace, rule, begin, &mut chunk, &mut out, &mut output, &mut counts)?
        }
        None => flush(rules, replace, &mut chunk, &mut out, &mut output, &mut counts)?,
    }
    output.flush()?;
    Ok(counts)
}

fn flush<W: Write>(
    rules: &RuleSet,
    replace: &dyn Replace,
    chunk: &mut Vec<u8>,
    out: &mut Vec<u8>,
    output: &mut W,
    counts: &mut Counts,
) -> io::Result<()> {
    out.clear();
    rules.redact(chunk, replace, out, counts);
    chunk.clear();
    output.write_all(out)
}

/// Redacts the chunk up to an unterminated key block, and the block to the chunk's end as one
/// value.
#[allow(clippy::too_many_arguments)]
fn fail_closed<W: Write>(
    rules: &RuleSet,
    replace: &dyn Replace,
    rule: usize,
    begin: usize,
    chunk: &mut Vec<u8>,
    out: &mut Vec<u8>,
    output: &mut W,
    counts: &mut Counts,
) -> io::Result<()> {
    let block = chunk.split_off(begin);
    flush(rules, replace, chunk, out, output, counts)?;
    out.clear();
    let kind = rules.rules().get(rule).map_or("private-key", |r| r.kind.as_str());
    replace.replace(kind, &block, out);
    out.push(b'\n');
    counts.add(rule);
    output.write_all(out)
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
    let begin = rfind(chunk, b"-----BEGIN")?;
    let header_end = chunk[begin..].iter().position(|&b| b == b'\n').map_or(chunk.len(), |i| begin + i);
    let private = contains(&chunk[begin..header_end], b"PRIVATE KEY");
    (private && !contains(&chunk[begin..], b"-----END")).then_some(begin)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn rfind(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).rposition(|w| w == needle)
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
        let (line_part, done) = match available.iter().position(|&b| b == b'\n') {
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
