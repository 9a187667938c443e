//! Inclusion and consistency proofs over the audit log's Merkle tree.

use ward_api::{ConsistencyProof, InclusionProof};
use ward_core::merkle;

use super::*;

fn hexes(hashes: &[merkle::Hash]) -> Vec<String> {
    hashes.iter().map(hex::encode).collect()
}

impl Broker {
    /// Each hash a proof plan names, folded from the tree's kept nodes: O(log n) reads.
    async fn proof_hashes(&self, plan: &[Vec<merkle::NodeId>]) -> Result<Vec<merkle::Hash>, BrokerError> {
        let ids: Vec<merkle::NodeId> = plan.iter().flatten().copied().collect();
        let nodes = self.store.tree_nodes(&ids).await?;
        let mut nodes = nodes.into_iter();
        Ok(plan
            .iter()
            .map(|part| merkle::fold(&nodes.by_ref().take(part.len()).collect::<Vec<_>>()))
            .collect())
    }

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
        let index = u64::try_from(seq - 1).map_err(|_| BrokerError::Invalid("seq starts at 1".into()))?;
        let plan = merkle::inclusion_plan(index, size)
            .ok_or_else(|| BrokerError::Invalid(format!("seq {seq} is outside the tree")))?;
        let whole = merkle::range_nodes(0, size);
        let mut hashes = self.proof_hashes(&[plan, vec![whole]].concat()).await?;
        let root = hashes.pop().unwrap_or_else(merkle::empty_root);
        Ok(InclusionProof {
            seq,
            leaf_index: index,
            tree_size: size,
            leaf_hash: event.hash,
            root: hex::encode(root),
            proof: hexes(&hashes),
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
        let plan = merkle::consistency_plan(size1, size2)
            .ok_or_else(|| BrokerError::Invalid("no proof for these sizes".into()))?;
        let roots = vec![merkle::range_nodes(0, size1), merkle::range_nodes(0, size2)];
        let mut hashes = self.proof_hashes(&[plan, roots].concat()).await?;
        let root2 = hashes.pop().unwrap_or_else(merkle::empty_root);
        let root1 = hashes.pop().unwrap_or_else(merkle::empty_root);
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
            root1: hex::encode(root1),
            root2: hex::encode(root2),
            proof: hexes(&hashes),
            checkpoints,
        })
    }
}
