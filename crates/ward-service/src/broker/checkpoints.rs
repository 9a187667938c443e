//! Signed checkpoints: the log's size and Merkle root, signed, stored with an `audit.checkpoint`
//! event in the same transaction, and copied to the sinks outside the store.

use std::path::Path;

use ward_core::checkpoint::Checkpoint;
use ward_store::CheckpointRecord;

use super::*;

impl Broker {
    /// The verifier key (`origin+keyid+key`) checkpoints are signed with.
    pub fn verifier_key(&self) -> String {
        self.signer.verifier_key()
    }

    pub fn audit_origin(&self) -> &str {
        self.signer.origin()
    }

    pub fn verifying_key(&self) -> ed25519_dalek::VerifyingKey {
        self.signer.verifying_key()
    }

    /// Signs the current head. Without `force`, only when the log grew by more than the last
    /// checkpoint's own event; with it, always. (A checkpoint signs the log before its own
    /// `audit.checkpoint` event, so a checkpoint never covers itself.)
    pub async fn sign_checkpoint(&self, force: bool) -> Result<Option<CheckpointRecord>, BrokerError> {
        for _ in 0..MAX_ATTEMPTS {
            let head = self.store.head().await?;
            let latest = self.store.latest_checkpoint().await?;
            match &latest {
                Some(latest) if !force && head.size <= latest.size + 1 => return Ok(None),
                None if !force && head.size == 0 => return Ok(None),
                _ => {}
            }
            let root = ward_core::merkle::hash_from_hex(&head.root)
                .ok_or_else(|| BrokerError::Unavailable("the recorded Merkle root is not a hash".into()))?;
            let checkpoint = Checkpoint {
                origin: self.signer.origin().to_owned(),
                size: head.size,
                root,
                extensions: vec![],
            };
            let note = self.signer.sign(&checkpoint).map_err(|e| BrokerError::Unavailable(e.to_string()))?;
            let now = self.now();
            let record = CheckpointRecord {
                size: head.size,
                root: head.root.clone(),
                note: note.clone(),
                signed_at: now,
            };
            // The public key too: if the key is ever lost, verification can still check this
            // checkpoint with the key recorded here (see `audit.key_changed`).
            let payload = Payload::AuditCheckpoint(payload::AuditCheckpoint {
                origin: self.signer.origin().to_owned(),
                size: head.size,
                root: head.root.clone(),
                note: note.clone(),
                key: Some(self.signer.verifier_key()),
            });
            let event = NewEvent::new(RandomIds.event_id(), now, ward_core::SYSTEM_ACTOR, payload);
            let change =
                Change { events: vec![event], checkpoint: Some(record.clone()), ..Change::default() };
            match self.commit(change).await {
                Ok(_) => {
                    metrics::counter!("ward_audit_checkpoints_total").increment(1);
                    if let Some(dir) = &self.settings.checkpoint_dir {
                        write_to_directory(dir, &record).await;
                    }
                    return Ok(Some(record));
                }
                Err(StoreError::Conflict) => continue,
                Err(error) => return Err(error.into()),
            }
        }
        Err(BrokerError::Conflict("the log kept growing while signing; try again".into()))
    }

    /// Seals an evidence pack this process wrote: its manifest's SHA-256, signed with the
    /// checkpoint key (`ward_core::seal`; never a checkpoint, whatever the digest).
    pub fn seal_evidence(&self, manifest_digest: &[u8; 32]) -> Result<String, BrokerError> {
        self.signer.seal(manifest_digest).map_err(|e| BrokerError::Unavailable(e.to_string()))
    }

    pub async fn latest_checkpoint(&self) -> Result<Option<CheckpointRecord>, BrokerError> {
        Ok(self.store.latest_checkpoint().await?)
    }
}

/// Writes `<size>.checkpoint` and `latest.checkpoint` into `dir`, each through a temporary file
/// and a rename, so a reader never sees half a note. A sink that fails is logged and counted;
/// the checkpoint is already stored.
async fn write_to_directory(dir: &Path, record: &CheckpointRecord) {
    let write = async {
        tokio::fs::create_dir_all(dir).await?;
        for name in [format!("{:020}.checkpoint", record.size), "latest.checkpoint".to_owned()] {
            let temporary = dir.join(format!(".{name}.tmp"));
            tokio::fs::write(&temporary, &record.note).await?;
            tokio::fs::rename(&temporary, dir.join(&name)).await?;
        }
        Ok::<(), std::io::Error>(())
    };
    if let Err(error) = write.await {
        metrics::counter!("ward_audit_checkpoint_sink_failures_total", "sink" => "directory").increment(1);
        tracing::error!(%error, dir = %dir.display(), "could not write the checkpoint to its directory sink");
    }
}

/// The key id (hex) of a signed note's signature line: the fingerprint of the key that signed it.
pub fn note_key_id(note: &str) -> Option<String> {
    use base64::Engine;
    let line = note.lines().rev().find(|l| l.starts_with("\u{2014} "))?;
    let signature = base64::engine::general_purpose::STANDARD.decode(line.rsplit(' ').next()?).ok()?;
    signature.get(..4).map(hex::encode)
}
