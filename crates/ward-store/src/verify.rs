//! Verifying the audit log straight from a store, page by page.

use ward_core::verify::{RecordedHead, Report, Verifier};

use crate::{EventFilter, Store, StoreError};

/// Events read per query.
const PAGE: u32 = 10_000;

/// Reads every event in `seq` order and verifies hashes, chain, sequence and the Merkle head
/// against the head on record.
pub async fn verify_log(store: &dyn Store) -> Result<Report, StoreError> {
    let head = store.head().await?;
    let root = hex::decode(&head.root)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| StoreError::Corrupt("the recorded Merkle root is not a hash".into()))?;
    let recorded = RecordedHead { size: head.size, root };
    let mut verifier = Verifier::default();
    let mut after_seq = None;
    loop {
        let page = store.events(&EventFilter { after_seq, limit: PAGE, ..EventFilter::default() }).await?;
        let Some(last) = page.last() else { break };
        after_seq = Some(last.seq);
        for event in &page {
            verifier.push(event);
        }
        if page.len() < PAGE as usize {
            break;
        }
    }
    Ok(verifier.finish(Some(&recorded)))
}
