//! The keys every replica must share besides the signing key: the redaction key (the
//! pseudonyms the log gateway gives) and the audit HMAC key (`[audit] hmac_fields`). A replica
//! with a key of its own would give other pseudonyms and other HMACs for the same values, and
//! nothing would say so. So the store keeps each key's fingerprint: the first start records it;
//! a start with another key is refused, unless told for that start (`ward serve
//! --new-redaction-key`, `--new-hmac-key`) that its key replaces the recorded one. The
//! replacement is `config.changed`, in the transaction that replaces the fingerprint.

use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use ward_core::audit::{NewEvent, Payload};
use ward_store::{Change, KeyFingerprint, Store, StoreError};

use ward_core::lifecycle::IdSource as _;

use crate::StartError;
use crate::broker::Broker;
use crate::ids::RandomIds;

/// How often a start reads the recorded fingerprint again after another start raced it.
const ATTEMPTS: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SharedKey {
    /// `[redaction] key`: pseudonyms in the logs the gateway serves.
    Redaction,
    /// `[audit] hmac_key`: the HMACs of `[audit] hmac_fields` in events.
    AuditHmac,
}

impl SharedKey {
    /// The name its fingerprint is kept under, and that `config.changed` gives.
    pub fn name(self) -> &'static str {
        match self {
            Self::Redaction => "redaction",
            Self::AuditHmac => "audit-hmac",
        }
    }

    /// The `ward serve` flag that makes this start's key the recorded one.
    pub fn flag(self) -> &'static str {
        match self {
            Self::Redaction => "--new-redaction-key",
            Self::AuditHmac => "--new-hmac-key",
        }
    }
}

/// Says which key it is without revealing it: HMAC-SHA256 under the key of a text naming its
/// use (no value ward ever hashes under it), the first 16 bytes in hex.
pub fn fingerprint(which: SharedKey, key: &[u8; 32]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else { return String::new() };
    mac.update(b"ward shared key fingerprint: ");
    mac.update(which.name().as_bytes());
    hex::encode(&mac.finalize().into_bytes()[..16])
}

/// A start's key as checked against the store, before anything is written with it.
pub struct Checked {
    which: SharedKey,
    path: PathBuf,
    fingerprint: String,
    /// What the store had, when it had another and this start replaces it.
    replaces: Option<String>,
    /// Whether the store had this very key.
    recorded: bool,
}

/// Checks this start's `key` (read from `path`) against the one recorded for the store, before
/// anything is written with it: the same, none yet, or another that `replace` says this one
/// replaces. Another key is refused.
pub async fn check(
    store: &dyn Store,
    which: SharedKey,
    key: &[u8; 32],
    path: &Path,
    replace: bool,
) -> Result<Checked, StartError> {
    let fingerprint = fingerprint(which, key);
    let recorded = store.key_fingerprint(which.name()).await?;
    let checked = |replaces, recorded| Checked {
        which,
        path: path.to_owned(),
        fingerprint: fingerprint.clone(),
        replaces,
        recorded,
    };
    match recorded {
        Some(recorded) if recorded == fingerprint => Ok(checked(None, true)),
        None => Ok(checked(None, false)),
        Some(recorded) if replace => Ok(checked(Some(recorded), false)),
        Some(recorded) => Err(differs(&checked(None, false), recorded)),
    }
}

/// Records a checked key for the store: a first start's (no event: nothing changed), or a
/// replacement, with `config.changed`. A start that another raced reads the store again.
pub async fn record(broker: &Broker, mut checked: Checked) -> Result<(), StartError> {
    for _ in 0..ATTEMPTS {
        if checked.recorded {
            return Ok(());
        }
        let mut change = Change {
            key_fingerprints: vec![KeyFingerprint {
                name: checked.which.name().to_owned(),
                fingerprint: checked.fingerprint.clone(),
                previous: checked.replaces.clone(),
                at: broker.now(),
            }],
            ..Change::default()
        };
        if let Some(previous) = &checked.replaces {
            let mut details = serde_json::Map::new();
            details.insert("key".into(), checked.which.name().into());
            details.insert("fingerprint".into(), checked.fingerprint.as_str().into());
            details.insert("previous_fingerprint".into(), previous.as_str().into());
            let changed = Payload::ConfigChanged(details);
            change.events.push(NewEvent::new(
                RandomIds.event_id(),
                broker.now(),
                ward_core::SYSTEM_ACTOR,
                changed,
            ));
        }
        match broker.commit_change(change).await {
            Ok(_) => return Ok(()),
            Err(StoreError::Conflict) => {
                let recorded = broker.store().key_fingerprint(checked.which.name()).await?;
                match recorded {
                    Some(recorded) if recorded == checked.fingerprint => checked.recorded = true,
                    // A replacement raced by another: it replaces what is there now.
                    Some(recorded) if checked.replaces.is_some() => checked.replaces = Some(recorded),
                    Some(recorded) => return Err(differs(&checked, recorded)),
                    None => checked.replaces = None,
                }
            }
            Err(error) => return Err(error.into()),
        }
    }
    Err(StoreError::Conflict.into())
}

fn differs(checked: &Checked, recorded: String) -> StartError {
    StartError::SharedKeyDiffers {
        key: checked.which.name(),
        path: checked.path.clone(),
        recorded,
        fingerprint: checked.fingerprint.clone(),
        flag: checked.which.flag(),
    }
}
