//! Inclusion and consistency proofs over the audit log's Merkle tree.

use ward_api::{ConsistencyProof, InclusionProof};
use ward_core::merkle;

use super::*;

fn hexes(hashes: &[merkle::Hash]) -> Vec<String> {
    hashes.iter().map(hex::encode).collect()
}

impl Broker {
    /// Proves that event `seq` is in the tree the latest checkpoint signed. Callers see proofs of
    /// the events they may see.
    pub async fn inclusion_proof(&self, caller: &Caller, seq: i64) -> Result<InclusionProof, BrokerError> {
        let event = self
            .store
            .events(&EventFilter {
                after_seq: Some(seq.saturating_sub(1)),
                limit: 1,
                ..EventFilter::default()
            })
            .await?
            .into_iter()
            .find(|e| e.seq == seq)
            .ok_or_else(|| BrokerError::NotFound(format!("no event with seq {seq}")))?;
        let involved = event.actor == caller.name || event.subject.as_deref() == Some(caller.name.as_str());
        if !(caller.sees_everything() || involved) {
            return Err(BrokerError::NotFound(format!("no event with seq {seq}")));
        }
        let checkpoint = self.store.latest_checkpoint().await?.ok_or_else(|| {
            BrokerError::Conflict(
                "no checkpoint has been signed yet; sign one with `ward audit checkpoint --now`".into(),
            )
        })?;
        let size = checkpoint.size;
        if u64::try_from(seq).unwrap_or(u64::MAX) > size {
            return Err(BrokerError::Conflict(format!(
                "seq {seq} is after the latest checkpoint (size {size}); sign a new one with `ward audit checkpoint --now`"
            )));
        }
        let leaves = ward_store::leaf_hashes(&*self.store, size).await?;
        let index = usize::try_from(seq - 1).map_err(|_| BrokerError::Invalid("seq starts at 1".into()))?;
        let path = merkle::inclusion_proof(&leaves, index)
            .ok_or_else(|| BrokerError::Invalid(format!("seq {seq} is outside the tree")))?;
        Ok(InclusionProof {
            seq,
            leaf_index: index as u64,
            tree_size: size,
            leaf_hash: event.hash,
            root: hex::encode(merkle::root(&leaves)),
            proof: hexes(&path),
            checkpoint: checkpoint.note,
        })
    }

    /// Proves that the log of `size2` events extends the log of `size1` events.
    pub async fn consistency_proof(&self, size1: u64, size2: u64) -> Result<ConsistencyProof, BrokerError> {
        let head = self.store.head().await?;
        if size1 == 0 || size1 > size2 || size2 > head.size {
            return Err(BrokerError::Unacceptable(format!(
                "need 0 < from <= to <= {} (the log's size); got from {size1}, to {size2}",
                head.size
            )));
        }
        let leaves = ward_store::leaf_hashes(&*self.store, size2).await?;
        let (small, large) =
            (usize::try_from(size1).unwrap_or(usize::MAX), usize::try_from(size2).unwrap_or(usize::MAX));
        let path = merkle::consistency_proof(&leaves[..large], small)
            .ok_or_else(|| BrokerError::Invalid("no proof for these sizes".into()))?;
        let mut checkpoints = Vec::new();
        for size in [size1, size2] {
            let found = self.store.checkpoints(Some(size - 1), 1).await?;
            if let Some(record) = found.into_iter().find(|c| c.size == size) {
                checkpoints.push(record.note);
            }
        }
        Ok(ConsistencyProof {
            size1,
            size2,
            root1: hex::encode(merkle::root(&leaves[..small])),
            root2: hex::encode(merkle::root(&leaves[..large])),
            proof: hexes(&path),
            checkpoints,
        })
    }
}
