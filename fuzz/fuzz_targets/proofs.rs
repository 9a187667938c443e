//! Proof verification takes proofs from outside (`ward audit prove --check`): arbitrary sizes,
//! indexes and hashes must be refused cleanly, never panic; and proofs ward generates for a tree
//! built from the input must verify.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ward_core::merkle;

fn number(bytes: &[u8]) -> u64 {
    let mut padded = [0u8; 8];
    let n = bytes.len().min(8);
    padded[..n].copy_from_slice(&bytes[..n]);
    u64::from_le_bytes(padded)
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 16 {
        return;
    }
    let (a, b, rest) = (number(&data[..8]), number(&data[8..16]), &data[16..]);
    let hashes: Vec<&[u8]> = rest.chunks(32).collect();
    let leaf = hashes.first().copied().unwrap_or_default();
    let root = hashes.last().copied().unwrap_or_default();
    let _ = merkle::verify_inclusion(a, b, leaf, &hashes, root);
    let _ = merkle::verify_consistency(a, b, leaf, root, &hashes);

    // A small tree from the input: its own proofs verify.
    let leaves: Vec<merkle::Hash> = rest.chunks(4).take(64).map(merkle::leaf_hash).collect();
    if leaves.is_empty() {
        return;
    }
    let size = leaves.len() as u64;
    let head = merkle::root(&leaves);
    let index = (a % size) as usize;
    let path = merkle::inclusion_proof(&leaves, index).expect("in range");
    assert_eq!(merkle::verify_inclusion(index as u64, size, &leaves[index], &path, &head), Ok(()));
    let first = 1 + (b % size) as usize;
    let proof = merkle::consistency_proof(&leaves, first).expect("in range");
    assert_eq!(merkle::verify_consistency(first as u64, size, &merkle::root(&leaves[..first]), &head, &proof), Ok(()));
});
