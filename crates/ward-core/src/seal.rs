//! The seal of an evidence pack (`ward report`): the SHA-256 of its manifest, in a signed note
//! by the audit log's checkpoint key, so that whoever holds that key's verifier string can tell
//! offline that the pack is the one ward wrote.
//!
//! ```text
//! ward evidence pack          <- what the note is (a checkpoint's second line is a number,
//! ward.example/audit          <- so neither is ever taken for the other)
//! MANIFEST.sha256 9f86d0…     <- the manifest's SHA-256, hex
//!
//! — ward.example/audit Az3…
//! ```

use ed25519_dalek::{SigningKey, VerifyingKey};

use crate::checkpoint::{self, CheckpointError};

const FIRST_LINE: &str = "ward evidence pack";
const DIGEST_LABEL: &str = "MANIFEST.sha256 ";

/// Seals a manifest whose SHA-256 is `digest`, as the signer `name` (the log's origin).
pub fn sign(digest: &[u8; 32], name: &str, key: &SigningKey) -> Result<String, CheckpointError> {
    checkpoint::sign_note(
        &format!("{FIRST_LINE}\n{name}\n{DIGEST_LABEL}{}\n", hex::encode(digest)),
        name,
        key,
    )
}

/// The manifest digest `note` seals, if `name`'s key signed it.
pub fn open(note: &str, name: &str, key: &VerifyingKey) -> Result<[u8; 32], CheckpointError> {
    let body = checkpoint::open_note(note, name, key)?;
    let malformed = |why: &str| CheckpointError::Malformed(format!("not an evidence pack's seal: {why}"));
    let mut lines = body.lines();
    if lines.next() != Some(FIRST_LINE) {
        return Err(malformed("it does not begin `ward evidence pack`"));
    }
    if lines.next() != Some(name) {
        return Err(malformed("it names another log"));
    }
    let digest = lines
        .next()
        .and_then(|line| line.strip_prefix(DIGEST_LABEL))
        .and_then(|text| hex::decode(text).ok())
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
        .ok_or_else(|| malformed("no manifest digest"))?;
    if lines.next().is_some() {
        return Err(malformed("lines after the digest"));
    }
    Ok(digest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::Checkpoint;

    #[test]
    fn a_seal_opens_with_its_key_only_and_is_never_a_checkpoint() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let note = sign(&[1; 32], "ward.test/audit", &key).unwrap();
        assert_eq!(open(&note, "ward.test/audit", &key.verifying_key()).unwrap(), [1; 32]);
        let other = SigningKey::from_bytes(&[8; 32]).verifying_key();
        assert!(open(&note, "ward.test/audit", &other).is_err());
        assert!(checkpoint::verify(&note, "ward.test/audit", &key.verifying_key()).is_err());
        let edited = note.replace(&hex::encode([1; 32]), &hex::encode([2; 32]));
        assert!(matches!(
            open(&edited, "ward.test/audit", &key.verifying_key()),
            Err(CheckpointError::BadSignature(_))
        ));
        // A checkpoint signed by the same key is no seal.
        let checkpoint =
            Checkpoint { origin: "ward.test/audit".into(), size: 3, root: [0; 32], extensions: vec![] };
        let signed = checkpoint::sign(&checkpoint, "ward.test/audit", &key).unwrap();
        assert!(open(&signed, "ward.test/audit", &key.verifying_key()).is_err());
    }
}
