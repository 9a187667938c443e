//! What a redacted value becomes.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The bytes of the HMAC a pseudonym shows (hex: twice as many digits).
pub(crate) const PSEUDONYM_BYTES: usize = 6;

/// Writes the replacement for a value of type `kind`. Shared by the threads redacting one stream.
pub trait Replace: Sync {
    fn replace(&self, kind: &str, value: &[u8], out: &mut Vec<u8>);
}

/// `<kind:7f3a9c0d12e4>`: the first 48 bits of HMAC-SHA256(key, kind ‖ 0 ‖ value). The same
/// value gives the same pseudonym under one key (one grant), so an engineer can follow one
/// customer through the logs; under another key it is unlinkable. 48 bits, so that two values
/// of one grant share a pseudonym only past some ten million values (24 bits collide past a
/// few thousand, and a collision would merge two customers).
pub struct Pseudonyms {
    mac: Hmac<Sha256>,
}

/// HMAC-SHA256 keyed with `key`. HMAC pads a key shorter than its block with zeros: the same
/// key, as a full block, so this cannot fail.
fn keyed(key: &[u8; 32]) -> Hmac<Sha256> {
    let mut block = hmac::digest::Key::<Hmac<Sha256>>::default();
    block[..key.len()].copy_from_slice(key);
    <Hmac<Sha256> as hmac::digest::KeyInit>::new(&block)
}

impl Pseudonyms {
    pub fn new(key: &[u8; 32]) -> Self {
        Self { mac: keyed(key) }
    }

    /// Pseudonyms under a key of their own for `scope` (a grant): HMAC(key, scope). Stable
    /// within one scope, unlinkable across scopes.
    pub fn scoped(key: &[u8; 32], scope: &[u8]) -> Self {
        let mut mac = keyed(key);
        mac.update(scope);
        let mut scoped = [0u8; 32];
        scoped.copy_from_slice(&mac.finalize().into_bytes());
        Self::new(&scoped)
    }
}

impl Replace for Pseudonyms {
    fn replace(&self, kind: &str, value: &[u8], out: &mut Vec<u8>) {
        let mut mac = self.mac.clone();
        mac.update(kind.as_bytes());
        mac.update(&[0]);
        mac.update(value);
        let digest = mac.finalize().into_bytes();
        out.push(b'<');
        out.extend_from_slice(kind.as_bytes());
        out.push(b':');
        out.extend_from_slice(hex::encode(&digest[..PSEUDONYM_BYTES]).as_bytes());
        out.push(b'>');
    }
}

/// A fixed text per kind (`<email>`), or one text for all: for comparisons with tools that
/// replace with a constant.
pub struct Placeholder {
    pub fixed: Option<Vec<u8>>,
}

impl Replace for Placeholder {
    fn replace(&self, kind: &str, _value: &[u8], out: &mut Vec<u8>) {
        match &self.fixed {
            Some(fixed) => out.extend_from_slice(fixed),
            None => {
                out.push(b'<');
                out.extend_from_slice(kind.as_bytes());
                out.push(b'>');
            }
        }
    }
}
