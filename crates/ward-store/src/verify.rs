//! Verifying the audit log straight from a store, page by page.

use ed25519_dalek::VerifyingKey;
use ward_core::audit::{AuditEvent, EventType};
use ward_core::checkpoint::{self, CheckpointError};
use ward_core::merkle::{Hash, hash_from_hex};
use ward_core::verify::{Problem, Report, Source, Verifier};

use crate::{EventFilter, Store, StoreError};

/// Events (and checkpoints) read per query.
const PAGE: u32 = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the checkpoint to compare with is not a signed checkpoint: {0}")]
    External(CheckpointError),
}

/// Who signs the log's checkpoints, and optionally a checkpoint kept elsewhere to hold it to.
pub struct VerifyOptions<'a> {
    pub origin: &'a str,
    pub key: &'a VerifyingKey,
    /// A signed note kept outside the store (detects truncation and forks the store hides).
    pub external: Option<&'a str>,
}

/// Which key signs the checkpoints of which sizes, followed through the log's
/// `audit.key_changed` events. The key verifying (`--key` or the configured one) is the trust
/// anchor: the last change must name it, and each change names the key before it, so older
/// checkpoints are checked with the key that was in force when they were signed. A change is
/// itself in the chain, and the first checkpoint under the new key signs it.
struct Keys {
    origin: String,
    /// From which tree size on (a checkpoint of at least that size) a key signs; `None` when the
    /// log does not record the public key (it was lost before ward recorded keys).
    epochs: Vec<(u64, Option<VerifyingKey>)>,
    /// The `seq` of the last key change, and the largest checkpoint that verified.
    last_change: Option<i64>,
    largest_signed: u64,
}

impl Keys {
    fn follow(changes: &[AuditEvent], options: &VerifyOptions<'_>, verifier: &mut Verifier) -> Self {
        let parse = |value: &serde_json::Value| {
            value.as_str().and_then(|text| checkpoint::parse_verifier_key(text).ok()).map(|(_, key)| key)
        };
        let mut epochs = Vec::with_capacity(changes.len() + 1);
        for change in changes {
            let previous = parse(&change.details["previous_key"]);
            match epochs.last() {
                None => epochs.push((0, previous)),
                Some((_, before)) if *before != previous => {
                    verifier.report(Problem::KeyChange { seq: change.seq })
                }
                Some(_) => {}
            }
            epochs.push((u64::try_from(change.seq).unwrap_or(0), parse(&change.details["key"])));
        }
        match (epochs.last(), changes.last()) {
            (Some((_, last)), Some(change)) if *last != Some(*options.key) => {
                verifier.report(Problem::KeyChange { seq: change.seq });
            }
            (None, _) => epochs.push((0, Some(*options.key))),
            _ => {}
        }
        Self {
            origin: options.origin.to_owned(),
            epochs,
            last_change: changes.last().map(|c| c.seq),
            largest_signed: 0,
        }
    }

    fn key_for(&self, size: u64) -> Option<VerifyingKey> {
        self.epochs.iter().rev().find(|(from, _)| *from <= size).and_then(|(_, key)| *key)
    }

    /// Checks a signed note of `size` with the key in force then.
    fn verify(&mut self, note: &str, size: u64) -> Result<checkpoint::Checkpoint, CheckpointError> {
        let key = self.key_for(size).ok_or_else(|| {
            CheckpointError::BadSignature("the log records no public key for this checkpoint's signer".into())
        })?;
        let signed = checkpoint::verify(note, &self.origin, &key)?;
        self.largest_signed = self.largest_signed.max(signed.size);
        Ok(signed)
    }

    fn finish(&self, verifier: &mut Verifier) {
        if let Some(seq) = self.last_change
            && self.largest_signed < u64::try_from(seq).unwrap_or(u64::MAX)
        {
            verifier.report(Problem::KeyChangeUnsigned { seq });
        }
    }
}

/// The log's key changes, oldest first.
async fn key_changes(store: &dyn Store) -> Result<Vec<AuditEvent>, StoreError> {
    let mut changes = Vec::new();
    let mut after_seq = None;
    loop {
        let filter = EventFilter {
            event_type: Some(EventType::AuditKeyChanged),
            after_seq,
            limit: PAGE,
            ..EventFilter::default()
        };
        let page = store.events(&filter).await?;
        let full = page.len() == PAGE as usize;
        after_seq = page.last().map(|e| e.seq);
        changes.extend(page);
        if !full {
            return Ok(changes);
        }
    }
}

/// Reads every event in `seq` order and verifies hashes, chain, sequence, the Merkle head on
/// record, every stored checkpoint (signature and root) and the external checkpoint if given.
pub async fn verify_log(store: &dyn Store, options: &VerifyOptions<'_>) -> Result<Report, VerifyError> {
    let mut verifier = Verifier::default();
    let mut keys = Keys::follow(&key_changes(store).await?, options, &mut verifier);
    verify_external(&mut verifier, &mut keys, options)?;
    let head = store.head().await?;
    let root = hash_from_hex(&head.root)
        .ok_or_else(|| StoreError::Corrupt("the recorded Merkle root is not a hash".into()))?;
    verifier.expect(Source::Head, head.size, root);

    let mut after_size = None;
    loop {
        let page = store.checkpoints(after_size, PAGE).await?;
        for stored in &page {
            expect_signed(&mut verifier, &mut keys, &stored.note, stored.size, &stored.root);
        }
        match page.last() {
            Some(last) if page.len() == PAGE as usize => after_size = Some(last.size),
            _ => break,
        }
    }

    let mut after_seq = None;
    loop {
        let page = store.events(&EventFilter { after_seq, limit: PAGE, ..EventFilter::default() }).await?;
        for event in &page {
            verifier.push(event);
        }
        match page.last() {
            Some(last) if page.len() == PAGE as usize => after_seq = Some(last.seq),
            _ => break,
        }
    }
    keys.finish(&mut verifier);
    Ok(verifier.finish())
}

/// The leaf hashes (event hashes) of the first `size` events.
pub async fn leaf_hashes(store: &dyn Store, size: u64) -> Result<Vec<Hash>, StoreError> {
    leaf_range(store, 0, size).await
}

/// The leaf hashes of leaves `start..end` (events `start + 1 ..= end`).
pub async fn leaf_range<S: Store + ?Sized>(store: &S, start: u64, end: u64) -> Result<Vec<Hash>, StoreError> {
    let size = end.saturating_sub(start);
    let mut leaves = Vec::with_capacity(usize::try_from(size).unwrap_or(0).min(PAGE as usize));
    let mut after_seq = Some(i64::try_from(start).map_err(|e| StoreError::Corrupt(e.to_string()))?);
    while (leaves.len() as u64) < size {
        let limit = u32::try_from(size - leaves.len() as u64).unwrap_or(PAGE).min(PAGE);
        let page = store.events(&EventFilter { after_seq, limit, ..EventFilter::default() }).await?;
        let Some(last) = page.last() else { break };
        after_seq = Some(last.seq);
        for event in &page {
            leaves.push(
                hash_from_hex(&event.hash)
                    .ok_or_else(|| StoreError::Corrupt(format!("seq {} has no valid hash", event.seq)))?,
            );
        }
    }
    if (leaves.len() as u64) < size {
        return Err(StoreError::Corrupt(format!(
            "the log has no events {}..={end}",
            start + leaves.len() as u64 + 1
        )));
    }
    Ok(leaves)
}

/// Holds the log to a checkpoint kept elsewhere, if one was given.
fn verify_external(
    verifier: &mut Verifier,
    keys: &mut Keys,
    options: &VerifyOptions<'_>,
) -> Result<(), VerifyError> {
    let Some(note) = options.external else { return Ok(()) };
    // Checked with the key in force at its size, which the note states before it is verified.
    let size = note
        .split_once("\n\n")
        .and_then(|(body, _)| checkpoint::Checkpoint::parse_body(&format!("{body}\n")).ok())
        .map_or(0, |c| c.size);
    match keys.verify(note, size) {
        Ok(kept) => verifier.expect(Source::External, kept.size, kept.root),
        Err(CheckpointError::BadSignature(_)) => verifier.report(Problem::Signature { size }),
        Err(other) => return Err(VerifyError::External(other)),
    }
    Ok(())
}

/// A checkpoint recorded with the log: its signature must verify and state `size` and `root`.
fn expect_signed(verifier: &mut Verifier, keys: &mut Keys, note: &str, size: u64, root_hex: &str) {
    let signed = keys.verify(note, size);
    match (signed, hash_from_hex(root_hex)) {
        (Ok(signed), Some(root)) if signed.size == size && signed.root == root => {
            verifier.expect(Source::Checkpoint, size, root);
        }
        _ => verifier.report(Problem::Signature { size }),
    }
}

/// Verifies a JSON Lines export. `open` is called three times: to find the key changes, the
/// checkpoints the export records (`audit.checkpoint` events), then to verify the events.
pub fn verify_export<R: std::io::BufRead>(
    open: impl Fn() -> std::io::Result<R>,
    options: &VerifyOptions<'_>,
) -> Result<Report, VerifyError> {
    let io = |e: std::io::Error| VerifyError::Store(StoreError::Unavailable(e.to_string()));
    let events = |reader: R| {
        reader.lines().enumerate().filter(|(_, line)| !matches!(line, Ok(l) if l.trim().is_empty())).map(
            |(n, line)| {
                (n as u64 + 1, line.map(|l| serde_json::from_str::<ward_core::audit::AuditEvent>(&l).ok()))
            },
        )
    };
    let mut verifier = Verifier::default();
    // First the key changes, so that each checkpoint is checked with the key of its time.
    let mut changes = Vec::new();
    for (_, event) in events(open().map_err(io)?) {
        if let Some(event) = event.map_err(io)?
            && event.event_type == EventType::AuditKeyChanged
        {
            changes.push(event);
        }
    }
    let mut keys = Keys::follow(&changes, options, &mut verifier);
    verify_external(&mut verifier, &mut keys, options)?;
    let mut first = None;
    for (_, event) in events(open().map_err(io)?) {
        let Some(event) = event.map_err(io)? else { continue };
        first.get_or_insert_with(|| (event.seq, event.prev_hash.clone()));
        if event.event_type == EventType::AuditCheckpoint {
            let details = &event.details;
            if let (Some(size), Some(root), Some(note)) =
                (details["size"].as_u64(), details["root"].as_str(), details["note"].as_str())
            {
                expect_signed(&mut verifier, &mut keys, note, size, root);
            }
        }
    }
    keys.finish(&mut verifier);
    if let Some((seq, prev_hash)) = first.filter(|(seq, _)| *seq > 1) {
        verifier.resume_at(seq, &prev_hash);
    }
    for (line, event) in events(open().map_err(io)?) {
        match event.map_err(io)? {
            Some(event) => verifier.push(&event),
            None => verifier.report(Problem::Unreadable { line }),
        }
    }
    Ok(verifier.finish())
}
