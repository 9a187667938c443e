//! The checkpoint signing key at start-up: held to what the audit log records, and changed (when
//! the operator says so for this start) in steps a crash can stop anywhere without leaving the
//! log unverifiable.
//!
//! The order, and why: the log is the record of which key signs, so it names a new key before
//! that key signs anything or becomes the key file.
//! 1. A new key (when the old one is lost) is written to `<key file>.new`, durably.
//! 2. `audit.key_changed` (old key → new key) commits.
//! 3. The staged key becomes the key file (a link, never over an existing file, then a directory
//!    sync).
//! 4. A checkpoint signed by the new key commits: it covers the change, which makes it verifiable.
//!
//! A start that finds the work of a stopped one finishes it without being told again: a staged
//! key that the last recorded change names is installed (after 2), and a key file that the last
//! change names but no checkpoint covers yet gets its checkpoint (after 3). A staged key no change
//! names (stopped before 2) is discarded: nothing used it. A key file the log does not name is
//! refused unless the operator says `--new-signing-key`; the log never names a key that does not
//! exist somewhere, except one staged and then removed by hand, which a later change replaces.

use ed25519_dalek::VerifyingKey;
use ward_core::checkpoint;
use ward_store::CheckpointRecord;

use super::*;
use crate::StartError;
use crate::config::AuditSettings;
use crate::signing::{self, AuditSigner};

/// The durable steps of a key change, for tests that stop a start after one of them (a crash).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyChangeStep {
    /// The new key is at `<key file>.new`.
    Staged,
    /// `audit.key_changed` is committed.
    Recorded,
    /// The new key is the key file.
    Installed,
}

/// What the log says about the key that signs now.
enum OnRecord {
    /// No checkpoint and no key change: a new log.
    Nothing,
    /// The latest checkpoint; no key change after it.
    Checkpoint(CheckpointRecord),
    /// A key change no checkpoint covers yet: the verifier key it names.
    UnsignedChange { key: String, key_id: Option<String>, after: Option<CheckpointRecord> },
}

impl OnRecord {
    async fn read(store: &dyn Store) -> Result<Self, StoreError> {
        let latest = store.latest_checkpoint().await?;
        let after = latest.as_ref().map(|c| i64::try_from(c.size).unwrap_or(i64::MAX));
        let filter = EventFilter {
            event_type: Some(EventType::AuditKeyChanged),
            after_seq: after,
            limit: 1000,
            ..EventFilter::default()
        };
        let unsigned = store.events(&filter).await?;
        Ok(match (unsigned.last(), latest) {
            (Some(change), after) => {
                // A change whose details do not read names no key: the key in force is then
                // refused as not the one on record.
                let (key, key_id) = match Payload::parse(change.event_type, &change.details) {
                    Ok(Payload::AuditKeyChanged(change)) => (change.key, change.key_id),
                    _ => (String::new(), None),
                };
                Self::UnsignedChange { key, key_id, after }
            }
            (None, Some(latest)) => Self::Checkpoint(latest),
            (None, None) => Self::Nothing,
        })
    }

    /// Whether `key` is the key the log says signs now.
    fn names(&self, origin: &str, key: &VerifyingKey) -> bool {
        match self {
            Self::Nothing => true,
            Self::Checkpoint(latest) => checkpoint::verify(&latest.note, origin, key).is_ok(),
            Self::UnsignedChange { key: named, .. } => {
                checkpoint::parse_verifier_key(named).is_ok_and(|(_, named)| named == *key)
            }
        }
    }
}

/// What remains of a key change once the broker runs with the key [`plan`] chose.
pub(crate) struct Remaining(Next);

enum Next {
    Nothing,
    /// The log names the key, but no checkpoint covers the change yet.
    Sign,
    /// Record the change from the key on record to the signer's, then sign.
    Change {
        on_record: OnRecord,
        why: &'static str,
        staged: bool,
    },
}

/// Reads the key (creating it for a new log), holds it to the log, and says what remains.
/// `told`: the operator said `--new-signing-key` for this start.
pub(crate) async fn plan(
    audit: &AuditSettings,
    store: &dyn Store,
    told: bool,
) -> Result<(AuditSigner, Remaining), StartError> {
    let on_record = OnRecord::read(store).await?;
    let path = &audit.signing_key;
    settle_staged_key(audit, &on_record)?;
    if path.exists() {
        let signer = AuditSigner::load_or_create(&audit.origin, path, false)?;
        if on_record.names(&audit.origin, &signer.verifying_key()) {
            let next = match on_record {
                OnRecord::UnsignedChange { .. } => Next::Sign,
                _ => Next::Nothing,
            };
            if told && matches!(next, Next::Nothing) {
                tracing::warn!(
                    "--new-signing-key: the signing key is the one on record, so nothing was changed; \
                     the flag is for the one start that replaces a key, not for a service definition"
                );
            }
            return Ok((signer, Remaining(next)));
        }
        if !told {
            return Err(refusal_of_other_key(path, &on_record));
        }
        let next = Next::Change { on_record, why: "the signing key was replaced", staged: false };
        return Ok((signer, Remaining(next)));
    }
    if matches!(on_record, OnRecord::Nothing) {
        // A new log: ward's own key is made now; a configured one only when told.
        let signer = AuditSigner::load_or_create(&audit.origin, path, !audit.signing_key_configured || told)?;
        return Ok((signer, Remaining(Next::Nothing)));
    }
    if !told {
        return Err(StartError::KeyLost { path: path.clone(), record: describe(&on_record) });
    }
    let signer = signing::stage_new_key(&audit.origin, path)?;
    Ok((signer, Remaining(Next::Change { on_record, why: "the signing key was lost", staged: true })))
}

/// A staged key from a start that stopped: installed when the log names it (the change was
/// recorded), removed when no change names it and no key file holds it.
fn settle_staged_key(audit: &AuditSettings, on_record: &OnRecord) -> Result<(), StartError> {
    let (path, staged) = (&audit.signing_key, signing::staged_key_path(&audit.signing_key));
    if !staged.exists() {
        return Ok(());
    }
    let staged_key = AuditSigner::load_or_create(&audit.origin, &staged, false)?.verifying_key();
    let named =
        matches!(on_record, OnRecord::UnsignedChange { .. }) && on_record.names(&audit.origin, &staged_key);
    if path.exists() {
        let in_file = AuditSigner::load_or_create(&audit.origin, path, false)?.verifying_key();
        if in_file == staged_key {
            remove_staged(&staged);
        } else {
            tracing::warn!(staged = %staged.display(), "a staged signing key is left beside another key file; ward does not use it");
        }
    } else if named {
        tracing::warn!(path = %path.display(), "finishing a signing key change a stopped start recorded: installing its key");
        signing::install_staged_key(path)?;
    } else {
        tracing::warn!(staged = %staged.display(), "discarding a staged signing key no key change names (a start stopped before recording it)");
        remove_staged(&staged);
    }
    Ok(())
}

fn remove_staged(staged: &std::path::Path) {
    if let Err(error) = std::fs::remove_file(staged) {
        tracing::warn!(%error, staged = %staged.display(), "could not remove a staged signing key");
    }
}

fn describe(on_record: &OnRecord) -> String {
    match on_record {
        OnRecord::Nothing => "no checkpoint".into(),
        OnRecord::Checkpoint(latest) => format!(
            "checkpoints (the latest, of size {}, signed by key {})",
            latest.size,
            note_key_id(&latest.note).unwrap_or_default()
        ),
        OnRecord::UnsignedChange { key_id, .. } => format!(
            "a change to key {} that no checkpoint signs yet (a start stopped while changing keys)",
            key_id.as_deref().unwrap_or("?")
        ),
    }
}

fn refusal_of_other_key(path: &std::path::Path, on_record: &OnRecord) -> StartError {
    StartError::KeyChanged { path: path.to_owned(), record: describe(on_record) }
}

/// Does what the plan left, stopping after `stop_after` (tests: a crash there).
pub(crate) async fn finish(
    broker: &Broker,
    audit: &AuditSettings,
    remaining: Remaining,
    stop_after: Option<KeyChangeStep>,
) -> Result<(), StartError> {
    let stop = |step: KeyChangeStep| -> Result<(), StartError> {
        match stop_after {
            Some(at) if at == step => Err(StartError::Stopped(step)),
            _ => Ok(()),
        }
    };
    match remaining.0 {
        Next::Nothing => Ok(()),
        Next::Sign => {
            tracing::warn!(
                "finishing a signing key change a stopped start recorded: signing with the new key"
            );
            broker.sign_checkpoint(true).await?;
            Ok(())
        }
        Next::Change { on_record, why, staged } => {
            if staged {
                stop(KeyChangeStep::Staged)?;
            }
            record(broker, &on_record, why).await?;
            stop(KeyChangeStep::Recorded)?;
            if staged {
                signing::install_staged_key(&audit.signing_key)?;
                stop(KeyChangeStep::Installed)?;
            }
            broker.sign_checkpoint(true).await?;
            Ok(())
        }
    }
}

/// Commits `audit.key_changed` from the key on record to the broker's.
async fn record(broker: &Broker, on_record: &OnRecord, why: &str) -> Result<(), BrokerError> {
    let (previous_key, previous_key_id, previous_checkpoint) = match on_record {
        OnRecord::Nothing => (None, None, None),
        OnRecord::Checkpoint(latest) => {
            (checkpoint_key(broker, latest).await?, note_key_id(&latest.note), Some(latest))
        }
        OnRecord::UnsignedChange { key, key_id, after } => {
            (Some(key.clone()), key_id.clone(), after.as_ref())
        }
    };
    let key = broker.signer.verifier_key();
    let payload = Payload::AuditKeyChanged(payload::AuditKeyChanged {
        previous_key,
        previous_key_id: previous_key_id.clone(),
        previous_checkpoint_size: previous_checkpoint.map(|c| c.size),
        key_id: key.rsplit('+').nth(1).map(str::to_owned),
        key: key.clone(),
    });
    let event = NewEvent {
        reason: Some(why.to_owned()),
        ..NewEvent::new(RandomIds.event_id(), broker.now(), ward_core::SYSTEM_ACTOR, payload)
    };
    broker.commit(Change { events: vec![event], ..Change::default() }).await?;
    tracing::warn!(previous_key_id = ?previous_key_id, %key, "recorded audit.key_changed: checkpoints are signed by a new key from now on");
    Ok(())
}

/// The public key the checkpoint's own event recorded (appended right after it); `None` for
/// checkpoints from before keys were recorded.
async fn checkpoint_key(broker: &Broker, latest: &CheckpointRecord) -> Result<Option<String>, StoreError> {
    let after = i64::try_from(latest.size).unwrap_or(i64::MAX);
    let recorded = broker
        .store
        .events(&EventFilter { after_seq: Some(after), limit: 1, ..EventFilter::default() })
        .await?;
    Ok(recorded.iter().find_map(|e| match Payload::parse(e.event_type, &e.details) {
        Ok(Payload::AuditCheckpoint(checkpoint)) if checkpoint.note == latest.note => checkpoint.key,
        _ => None,
    }))
}
