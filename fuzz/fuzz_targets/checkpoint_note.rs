//! The checkpoint and verifier-key parsers take text from outside (files auditors keep, the
//! `--checkpoint` and `--key` arguments): they must never panic, and what parses must round-trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ward_core::checkpoint::{self, Checkpoint};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let _ = checkpoint::verify(&text, "ward/audit", &key.verifying_key());
    let _ = checkpoint::parse_verifier_key(&text);
    if let Ok(parsed) = Checkpoint::parse_body(&text) {
        assert_eq!(Checkpoint::parse_body(&parsed.body()), Ok(parsed.clone()));
        let note = checkpoint::sign(&parsed, "ward/audit", &key).expect("a valid name signs");
        assert_eq!(checkpoint::verify(&note, "ward/audit", &key.verifying_key()), Ok(parsed));
    }
});
