//! Signed checkpoints of the audit log in the C2SP formats: a `tlog-checkpoint` body (origin,
//! tree size, root hash) inside a `signed-note` with Ed25519 signature lines.
//!
//! ```text
//! ward.example/audit          <- origin
//! 1234                        <- tree size
//! 8Vx9...base64 root...=      <- root hash
//!                             <- blank line
//! — ward.example/audit Az3...base64(key id ‖ signature)...
//! ```
//!
//! The key id is the first four bytes of `SHA-256(name ‖ "\n" ‖ 0x01 ‖ public key)`; a verifier
//! key is written `name+<key id hex>+<base64(0x01 ‖ public key)>`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::merkle::Hash;

/// Ed25519's algorithm byte in signed-note key ids and verifier keys.
const ED25519: u8 = 0x01;
const DASH: &str = "\u{2014} ";
/// Notes longer than this are refused unread: a checkpoint is a few hundred bytes.
pub const MAX_NOTE_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error("malformed checkpoint: {0}")]
    Malformed(String),
    #[error("no signature by the key `{0}`")]
    Unsigned(String),
    #[error("the signature by `{0}` does not verify: the checkpoint was altered or signed by another key")]
    BadSignature(String),
    #[error("malformed verifier key: {0}")]
    BadKey(String),
}

fn malformed(why: impl Into<String>) -> CheckpointError {
    CheckpointError::Malformed(why.into())
}

/// The signed statement "the log named `origin` had `size` events with Merkle root `root`".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
    /// Extension lines after the root, kept as they are.
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// The note body: each line ends with a newline.
    pub fn body(&self) -> String {
        let mut body = format!("{}\n{}\n{}\n", self.origin, self.size, STANDARD.encode(self.root));
        for line in &self.extensions {
            body.push_str(line);
            body.push('\n');
        }
        body
    }

    pub fn parse_body(body: &str) -> Result<Self, CheckpointError> {
        let text =
            body.strip_suffix('\n').ok_or_else(|| malformed("the body does not end with a newline"))?;
        let mut lines = text.split('\n');
        let origin = lines.next().filter(|o| !o.is_empty()).ok_or_else(|| malformed("no origin line"))?;
        let size_text = lines.next().ok_or_else(|| malformed("no tree size line"))?;
        let valid_size = !size_text.is_empty()
            && size_text.bytes().all(|b| b.is_ascii_digit())
            && (size_text == "0" || !size_text.starts_with('0'));
        let size = size_text
            .parse()
            .ok()
            .filter(|_| valid_size)
            .ok_or_else(|| malformed(format!("tree size `{size_text}` is not a decimal number")))?;
        let root_text = lines.next().ok_or_else(|| malformed("no root hash line"))?;
        let root: Hash = STANDARD
            .decode(root_text)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or_else(|| malformed("the root hash is not 32 bytes of base64"))?;
        let extensions: Vec<String> = lines.map(str::to_owned).collect();
        if extensions.iter().any(String::is_empty) {
            return Err(malformed("an empty extension line"));
        }
        Ok(Self { origin: origin.to_owned(), size, root, extensions })
    }
}

/// A key name as signed notes allow it: non-empty, no white space, no `+`.
fn check_name(name: &str) -> Result<(), CheckpointError> {
    if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c == '+') {
        return Err(CheckpointError::BadKey(format!("`{name}` is not a valid key name")));
    }
    Ok(())
}

fn key_id(name: &str, key: &VerifyingKey) -> [u8; 4] {
    let mut hasher = Sha256::new();
    hasher.update(name.as_bytes());
    hasher.update(b"\n");
    hasher.update([ED25519]);
    hasher.update(key.as_bytes());
    let digest = hasher.finalize();
    [digest[0], digest[1], digest[2], digest[3]]
}

/// Signs `checkpoint` as the note signer `name`.
pub fn sign(checkpoint: &Checkpoint, name: &str, key: &SigningKey) -> Result<String, CheckpointError> {
    sign_note(&checkpoint.body(), name, key)
}

/// Signs a note `body` (lines each ending with a newline, none of them empty) as the signer
/// `name`. What the body says is the caller's: each kind of note ward signs starts differently
/// (a checkpoint's second line is its size, a number), so one is never taken for another.
pub fn sign_note(body: &str, name: &str, key: &SigningKey) -> Result<String, CheckpointError> {
    check_name(name)?;
    check_body(body)?;
    let signature = key.sign(body.as_bytes());
    let mut blob = key_id(name, &key.verifying_key()).to_vec();
    blob.extend_from_slice(&signature.to_bytes());
    Ok(format!("{body}\n{DASH}{name} {}\n", STANDARD.encode(blob)))
}

fn check_body(body: &str) -> Result<(), CheckpointError> {
    let text = body.strip_suffix('\n').ok_or_else(|| malformed("the body does not end with a newline"))?;
    if text.split('\n').any(str::is_empty) {
        return Err(malformed("an empty line in the body"));
    }
    Ok(())
}

/// The verifier key string `name+<key id hex>+<base64(0x01 ‖ public key)>`.
pub fn verifier_key(name: &str, key: &VerifyingKey) -> Result<String, CheckpointError> {
    check_name(name)?;
    let mut encoded = vec![ED25519];
    encoded.extend_from_slice(key.as_bytes());
    Ok(format!("{name}+{}+{}", hex::encode(key_id(name, key)), STANDARD.encode(encoded)))
}

/// Parses a verifier key string, checking that its key id matches its name and key.
pub fn parse_verifier_key(text: &str) -> Result<(String, VerifyingKey), CheckpointError> {
    let bad = |why: &str| CheckpointError::BadKey(why.to_owned());
    let mut parts = text.trim().splitn(3, '+');
    let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad("expected name+keyid+key"));
    };
    check_name(name)?;
    let bytes = STANDARD.decode(key).map_err(|_| bad("the key is not base64"))?;
    let Some((&ED25519, public)) = bytes.split_first() else {
        return Err(bad("not an Ed25519 key"));
    };
    let public: [u8; 32] = public.try_into().map_err(|_| bad("an Ed25519 key is 32 bytes"))?;
    let key = VerifyingKey::from_bytes(&public).map_err(|_| bad("not a valid Ed25519 public key"))?;
    if hex::encode(key_id(name, &key)) != id.to_ascii_lowercase() {
        return Err(bad("the key id does not match the name and key"));
    }
    Ok((name.to_owned(), key))
}

/// Verifies `note` against the signer `name` and returns its checkpoint. Signature lines by
/// other keys are allowed (others may cosign) and ignored.
pub fn verify(note: &str, name: &str, key: &VerifyingKey) -> Result<Checkpoint, CheckpointError> {
    Checkpoint::parse_body(open_note(note, name, key)?)
}

/// Verifies `note` against the signer `name` and returns its body (with its last newline).
/// Signature lines by other keys are allowed (others may cosign) and ignored.
pub fn open_note<'n>(note: &'n str, name: &str, key: &VerifyingKey) -> Result<&'n str, CheckpointError> {
    if note.len() > MAX_NOTE_BYTES {
        return Err(malformed(format!("longer than {MAX_NOTE_BYTES} bytes")));
    }
    let split =
        note.find("\n\n").ok_or_else(|| malformed("no blank line between the body and the signatures"))?;
    let (body, signatures) = (&note[..split + 1], &note[split + 2..]);
    check_body(body)?;
    let signatures =
        signatures.strip_suffix('\n').ok_or_else(|| malformed("the signatures do not end with a newline"))?;
    let want_id = key_id(name, key);
    let mut found = false;
    for line in signatures.split('\n') {
        let rest = line
            .strip_prefix(DASH)
            .ok_or_else(|| malformed("a signature line does not start with an em dash"))?;
        let (signer, blob) =
            rest.split_once(' ').ok_or_else(|| malformed("a signature line has no signature"))?;
        let blob = STANDARD.decode(blob).map_err(|_| malformed("a signature is not base64"))?;
        if blob.len() < 4 {
            return Err(malformed("a signature is shorter than its key id"));
        }
        if signer != name || blob[..4] != want_id {
            continue;
        }
        found = true;
        let signature: [u8; 64] =
            blob[4..].try_into().map_err(|_| CheckpointError::BadSignature(name.to_owned()))?;
        key.verify_strict(body.as_bytes(), &Signature::from_bytes(&signature))
            .map_err(|_| CheckpointError::BadSignature(name.to_owned()))?;
    }
    if !found {
        return Err(CheckpointError::Unsigned(name.to_owned()));
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::merkle::leaf_hash;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn checkpoint() -> Checkpoint {
        Checkpoint {
            origin: "ward.example/audit".into(),
            size: 1234,
            root: leaf_hash(b"x"),
            extensions: vec![],
        }
    }

    #[test]
    fn signed_checkpoints_verify_and_round_trip() {
        let note = sign(&checkpoint(), "ward.example/audit", &key(7)).unwrap();
        let lines: Vec<&str> = note.lines().collect();
        assert_eq!(&lines[..2], ["ward.example/audit", "1234"]);
        assert_eq!(lines[3], "");
        assert!(lines[4].starts_with("\u{2014} ward.example/audit "));
        assert_eq!(verify(&note, "ward.example/audit", &key(7).verifying_key()), Ok(checkpoint()));

        let verifier = verifier_key("ward.example/audit", &key(7).verifying_key()).unwrap();
        let (name, parsed) = parse_verifier_key(&verifier).unwrap();
        assert_eq!(name, "ward.example/audit");
        assert_eq!(parsed, key(7).verifying_key());
    }

    #[test]
    fn tampering_and_wrong_keys_are_caught() {
        let note = sign(&checkpoint(), "ward", &key(7)).unwrap();
        let altered = note.replacen("1234", "1233", 1);
        assert_eq!(
            verify(&altered, "ward", &key(7).verifying_key()),
            Err(CheckpointError::BadSignature("ward".into()))
        );
        // Another key under the same name: its key id differs, so no signature is found.
        assert_eq!(
            verify(&note, "ward", &key(8).verifying_key()),
            Err(CheckpointError::Unsigned("ward".into()))
        );
        assert_eq!(
            verify(&note, "other", &key(7).verifying_key()),
            Err(CheckpointError::Unsigned("other".into()))
        );
        // A cosignature by someone else is ignored, not an error.
        let witness = sign(&checkpoint(), "witness", &key(9)).unwrap();
        let cosigned = format!("{note}{}", witness.rsplit_once("\n\n").unwrap().1);
        assert_eq!(verify(&cosigned, "ward", &key(7).verifying_key()), Ok(checkpoint()));
        assert_eq!(verify(&cosigned, "witness", &key(9).verifying_key()), Ok(checkpoint()));
    }

    #[test]
    fn malformed_notes_and_keys_are_refused() {
        let good = sign(&checkpoint(), "ward", &key(7)).unwrap();
        let verifying = key(7).verifying_key();
        for bad in [
            "",
            "ward\n1234\n",
            &good.replacen("\n\n", "\n", 1),
            &good.replacen("1234", "01234", 1),
            &good.replacen("1234", "-5", 1),
            &good.replacen("\u{2014}", "-", 1),
            good.trim_end(),
        ] {
            assert!(verify(bad, "ward", &verifying).is_err(), "accepted: {bad:?}");
        }
        assert!(parse_verifier_key("ward+00000000+AQ==").is_err());
        let verifier = verifier_key("ward", &verifying).unwrap();
        assert!(parse_verifier_key(&verifier.replacen("ward", "draw", 1)).is_err(), "id must match the name");
        assert!(sign(&checkpoint(), "has space", &key(7)).is_err());
    }

    proptest! {
        /// The parsers never panic, whatever they are given.
        #[test]
        fn parsers_survive_any_input(text in "\\PC{0,300}", name in "[a-z+ ]{0,12}") {
            let _ = verify(&text, "ward", &key(7).verifying_key());
            let _ = Checkpoint::parse_body(&text);
            let _ = parse_verifier_key(&text);
            let _ = parse_verifier_key(&format!("{name}+{text}"));
        }

        #[test]
        fn bodies_round_trip(origin in "[a-z./]{1,30}", size in any::<u64>(), seed in any::<u8>(), ext in proptest::collection::vec("[a-z ]{1,10}", 0..3)) {
            let checkpoint = Checkpoint { origin, size, root: leaf_hash(&[seed]), extensions: ext };
            prop_assert_eq!(Checkpoint::parse_body(&checkpoint.body()), Ok(checkpoint.clone()));
            let note = sign(&checkpoint, "ward", &key(seed)).unwrap();
            prop_assert_eq!(verify(&note, "ward", &key(seed).verifying_key()), Ok(checkpoint));
        }
    }
}
