//! Verifying the audit log straight from a store, page by page.

use ed25519_dalek::VerifyingKey;
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

/// Reads every event in `seq` order and verifies hashes, chain, sequence, the Merkle head on
/// record, every stored checkpoint (signature and root) and the external checkpoint if given.
pub async fn verify_log(store: &dyn Store, options: &VerifyOptions<'_>) -> Result<Report, VerifyError> {
    let mut verifier = Verifier::default();
    verify_external(&mut verifier, options)?;
    let head = store.head().await?;
    let root = hash_from_hex(&head.root)
        .ok_or_else(|| StoreError::Corrupt("the recorded Merkle root is not a hash".into()))?;
    verifier.expect(Source::Head, head.size, root);

    let mut after_size = None;
    loop {
        let page = store.checkpoints(after_size, PAGE).await?;
        for stored in &page {
            expect_signed(&mut verifier, options, &stored.note, stored.size, &stored.root);
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
fn verify_external(verifier: &mut Verifier, options: &VerifyOptions<'_>) -> Result<(), VerifyError> {
    let Some(note) = options.external else { return Ok(()) };
    match checkpoint::verify(note, options.origin, options.key) {
        Ok(kept) => verifier.expect(Source::External, kept.size, kept.root),
        Err(CheckpointError::BadSignature(_)) => {
            let size = note
                .split_once("\n\n")
                .and_then(|(body, _)| checkpoint::Checkpoint::parse_body(&format!("{body}\n")).ok())
                .map_or(0, |c| c.size);
            verifier.report(Problem::Signature { size });
        }
        Err(other) => return Err(VerifyError::External(other)),
    }
    Ok(())
}

/// A checkpoint recorded with the log: its signature must verify and state `size` and `root`.
fn expect_signed(
    verifier: &mut Verifier,
    options: &VerifyOptions<'_>,
    note: &str,
    size: u64,
    root_hex: &str,
) {
    let signed = checkpoint::verify(note, options.origin, options.key);
    match (signed, hash_from_hex(root_hex)) {
        (Ok(signed), Some(root)) if signed.size == size && signed.root == root => {
            verifier.expect(Source::Checkpoint, size, root);
        }
        _ => verifier.report(Problem::Signature { size }),
    }
}

/// Verifies a JSON Lines export. `open` is called twice: once to find the checkpoints the export
/// records (`audit.checkpoint` events), once to verify the events against them.
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
    verify_external(&mut verifier, options)?;
    let mut first = None;
    for (_, event) in events(open().map_err(io)?) {
        let Some(event) = event.map_err(io)? else { continue };
        first.get_or_insert_with(|| (event.seq, event.prev_hash.clone()));
        if event.event_type == ward_core::audit::EventType::AuditCheckpoint {
            let details = &event.details;
            if let (Some(size), Some(root), Some(note)) =
                (details["size"].as_u64(), details["root"].as_str(), details["note"].as_str())
            {
                expect_signed(&mut verifier, options, note, size, root);
            }
        }
    }
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
