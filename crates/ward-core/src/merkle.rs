//! RFC 6962 / RFC 9162 Merkle tree arithmetic over the audit log's leaf hashes: tree heads,
//! inclusion and consistency proofs, and their verification.
//!
//! Leaves are hashed `SHA-256(0x00 ‖ data)` and inner nodes `SHA-256(0x01 ‖ left ‖ right)`, so a
//! leaf can never pass for a node. Proof *generation* here works over a slice of leaf hashes;
//! verification takes byte slices, because a proof handed in from outside may be malformed.

use sha2::{Digest, Sha256};

pub type Hash = [u8; 32];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("leaf index {index} is outside a tree of size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("tree size {size2} is smaller than {size1}: a log cannot shrink")]
    Shrunk { size1: u64, size2: u64 },
    #[error("consistency with an empty tree proves nothing")]
    EmptyTree,
    #[error("the proof has the wrong number of hashes ({0}) for these tree sizes")]
    WrongLength(usize),
    #[error("the proof does not lead to the expected root")]
    RootMismatch,
    #[error("{what} is {len} bytes long, not a 32-byte SHA-256 hash")]
    NotAHash { what: &'static str, len: usize },
}

/// A hash as ward writes it (64 lowercase hex digits) back to bytes.
pub fn hash_from_hex(text: &str) -> Option<Hash> {
    hex::decode(text).ok()?.try_into().ok()
}

/// `SHA-256(0x00 ‖ data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0u8]);
    hasher.update(data);
    hasher.finalize().into()
}

/// `SHA-256(0x01 ‖ left ‖ right)`.
pub fn node_hash(left: &[u8], right: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([1u8]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// The root of an empty tree: `SHA-256("")`.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The largest power of two strictly smaller than `n` (`n >= 2`).
fn split(n: usize) -> usize {
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// The Merkle tree hash (RFC 6962 §2.1) of leaves given by their leaf hashes.
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split(n);
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// The right edge of a growing tree: the roots of its perfect subtrees, largest first (one per
/// set bit of the size). Appending a leaf and computing the root are O(log n), so the log's head
/// can be kept current as events are appended, without rereading the leaves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    nodes: Vec<Hash>,
}

impl Frontier {
    /// Rebuilds a frontier from its stored parts; `None` if they do not fit together.
    pub fn from_parts(size: u64, nodes: Vec<Hash>) -> Option<Self> {
        (size.count_ones() as usize == nodes.len()).then_some(Self { size, nodes })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn nodes(&self) -> &[Hash] {
        &self.nodes
    }

    pub fn push(&mut self, leaf: Hash) {
        self.push_with(leaf, |_, _| {});
    }

    /// Pushes `leaf` and hands `completed` each subtree (level 1 and up) it completes, lowest
    /// first: the nodes a store keeps so that proofs need not reread the leaves.
    pub fn push_with(&mut self, leaf: Hash, mut completed: impl FnMut(NodeId, &Hash)) {
        let mut hash = leaf;
        let mut size = self.size;
        let mut level = 0;
        while size & 1 == 1 {
            // The lowest subtree has as many leaves as the new one: merge them.
            let left = self.nodes.pop().unwrap_or(hash);
            hash = node_hash(&left, &hash);
            size >>= 1;
            level += 1;
            completed(NodeId { level, index: ((self.size + 1) >> level) - 1 }, &hash);
        }
        self.nodes.push(hash);
        self.size += 1;
    }

    /// The Merkle tree hash of all leaves pushed so far.
    pub fn root(&self) -> Hash {
        let mut nodes = self.nodes.iter().rev();
        let Some(&last) = nodes.next() else { return empty_root() };
        nodes.fold(last, |right, left| node_hash(left, &right))
    }
}

/// A complete subtree of the log's tree: leaves `index * 2^level .. (index + 1) * 2^level`
/// (level 0 is a leaf).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    pub level: u32,
    pub index: u64,
}

impl NodeId {
    /// The leaves it covers, `start..end`.
    pub fn leaves(self) -> std::ops::Range<u64> {
        (self.index << self.level)..((self.index + 1) << self.level)
    }
}

/// The complete subtrees, largest (leftmost) first, whose hashes [`fold`] into the tree hash of
/// leaves `start..end`, for the ranges RFC 6962's proofs use (`start` a multiple of the power
/// of two at or above `end - start`, or any range whose pieces align the same way).
pub fn range_nodes(start: u64, end: u64) -> Vec<NodeId> {
    let mut nodes = Vec::new();
    let mut at = start;
    while at < end {
        // The largest subtree that starts at `at` and fits before `end`.
        let fits = u64::BITS - 1 - (end - at).leading_zeros();
        let aligned = if at == 0 { fits } else { at.trailing_zeros().min(fits) };
        nodes.push(NodeId { level: aligned, index: at >> aligned });
        at += 1 << aligned;
    }
    nodes
}

/// The tree hash of consecutive complete subtrees, largest first (as [`range_nodes`] lists them).
pub fn fold(hashes: &[Hash]) -> Hash {
    let mut nodes = hashes.iter().rev();
    let Some(&last) = nodes.next() else { return empty_root() };
    nodes.fold(last, |right, left| node_hash(left, &right))
}

/// What the inclusion proof of leaf `index` in a tree of `size` leaves is made of: for each of
/// its hashes, in order, the complete subtrees that fold into it (O(log n) in all). `None` if
/// `index` is out of range.
pub fn inclusion_plan(index: u64, size: u64) -> Option<Vec<Vec<NodeId>>> {
    if index >= size {
        return None;
    }
    let mut ranges = Vec::new();
    path_ranges(index, 0, size, &mut ranges);
    Some(ranges.into_iter().map(|(start, end)| range_nodes(start, end)).collect())
}

fn path_ranges(m: u64, start: u64, end: u64, out: &mut Vec<(u64, u64)>) {
    let n = end - start;
    if n <= 1 {
        return;
    }
    let k = 1 << (u64::BITS - 1 - (n - 1).leading_zeros());
    if m < k {
        path_ranges(m, start, start + k, out);
        out.push((start + k, end));
    } else {
        path_ranges(m - k, start + k, end, out);
        out.push((start, start + k));
    }
}

/// What the consistency proof between trees of `size1` and `size2` leaves is made of, like
/// [`inclusion_plan`]. `None` unless `0 < size1 <= size2`.
pub fn consistency_plan(size1: u64, size2: u64) -> Option<Vec<Vec<NodeId>>> {
    if size1 == 0 || size1 > size2 {
        return None;
    }
    let mut ranges = Vec::new();
    subproof_ranges(size1, 0, size2, true, &mut ranges);
    Some(ranges.into_iter().map(|(start, end)| range_nodes(start, end)).collect())
}

fn subproof_ranges(m: u64, start: u64, end: u64, complete: bool, out: &mut Vec<(u64, u64)>) {
    let n = end - start;
    if m == n {
        if !complete {
            out.push((start, end));
        }
        return;
    }
    let k = 1 << (u64::BITS - 1 - (n - 1).leading_zeros());
    if m <= k {
        subproof_ranges(m, start, start + k, complete, out);
        out.push((start + k, end));
    } else {
        subproof_ranges(m - k, start + k, end, false, out);
        out.push((start, start + k));
    }
}

/// The audit path for leaf `index` (RFC 6962 §2.1.1), or `None` if `index` is out of range.
pub fn inclusion_proof(leaves: &[Hash], index: usize) -> Option<Vec<Hash>> {
    if index >= leaves.len() {
        return None;
    }
    let mut proof = Vec::new();
    path(index, leaves, &mut proof);
    Some(proof)
}

fn path(m: usize, leaves: &[Hash], proof: &mut Vec<Hash>) {
    let n = leaves.len();
    if n <= 1 {
        return;
    }
    let k = split(n);
    if m < k {
        path(m, &leaves[..k], proof);
        proof.push(root(&leaves[k..]));
    } else {
        path(m - k, &leaves[k..], proof);
        proof.push(root(&leaves[..k]));
    }
}

/// The consistency proof between the first `size1` leaves and all of them (RFC 6962 §2.1.2),
/// or `None` unless `0 < size1 <= leaves.len()`.
pub fn consistency_proof(leaves: &[Hash], size1: usize) -> Option<Vec<Hash>> {
    if size1 == 0 || size1 > leaves.len() {
        return None;
    }
    let mut proof = Vec::new();
    subproof(size1, leaves, true, &mut proof);
    Some(proof)
}

fn subproof(m: usize, leaves: &[Hash], complete: bool, proof: &mut Vec<Hash>) {
    let n = leaves.len();
    if m == n {
        if !complete {
            proof.push(root(leaves));
        }
        return;
    }
    let k = split(n);
    if m <= k {
        subproof(m, &leaves[..k], complete, proof);
        proof.push(root(&leaves[k..]));
    } else {
        subproof(m - k, &leaves[k..], false, proof);
        proof.push(root(&leaves[..k]));
    }
}

/// Verifies that `leaf` is at `index` in the tree of `size` leaves with `root` (RFC 9162
/// §2.1.3.2).
pub fn verify_inclusion<P: AsRef<[u8]>>(
    index: u64,
    size: u64,
    leaf: &[u8],
    proof: &[P],
    root: &[u8],
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    for (what, value) in [("the leaf hash", leaf), ("the root", root)] {
        if value.len() != 32 {
            return Err(ProofError::NotAHash { what, len: value.len() });
        }
    }
    if let Some(bad) = proof.iter().find(|p| p.as_ref().len() != 32) {
        return Err(ProofError::NotAHash { what: "a proof hash", len: bad.as_ref().len() });
    }
    let (mut fnode, mut snode) = (index, size - 1);
    let mut hash: Vec<u8> = leaf.to_vec();
    for sibling in proof {
        if snode == 0 {
            return Err(ProofError::WrongLength(proof.len()));
        }
        if fnode & 1 == 1 || fnode == snode {
            hash = node_hash(sibling.as_ref(), &hash).to_vec();
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            hash = node_hash(&hash, sibling.as_ref()).to_vec();
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(ProofError::WrongLength(proof.len()));
    }
    if hash != root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// Verifies that the tree of `size2` leaves with `root2` extends the tree of `size1` leaves with
/// `root1` (RFC 9162 §2.1.4.2).
pub fn verify_consistency<P: AsRef<[u8]>>(
    size1: u64,
    size2: u64,
    root1: &[u8],
    root2: &[u8],
    proof: &[P],
) -> Result<(), ProofError> {
    if size2 < size1 {
        return Err(ProofError::Shrunk { size1, size2 });
    }
    if size1 == 0 {
        return Err(ProofError::EmptyTree);
    }
    if size1 == size2 {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength(proof.len()));
        }
        return if root1 == root2 { Ok(()) } else { Err(ProofError::RootMismatch) };
    }
    if proof.is_empty() {
        return Err(ProofError::WrongLength(proof.len()));
    }
    if let Some(bad) = proof.iter().find(|p| p.as_ref().len() != 32) {
        return Err(ProofError::NotAHash { what: "a proof hash", len: bad.as_ref().len() });
    }
    // When size1 is a power of two, its root is the first node of the path; the proof omits it.
    let mut path: Vec<&[u8]> = Vec::with_capacity(proof.len() + 1);
    if size1.is_power_of_two() {
        path.push(root1);
    }
    path.extend(proof.iter().map(AsRef::as_ref));

    let (mut fnode, mut snode) = (size1 - 1, size2 - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let mut first = path[0].to_vec();
    let mut second = path[0].to_vec();
    for node in &path[1..] {
        if snode == 0 {
            return Err(ProofError::WrongLength(proof.len()));
        }
        if fnode & 1 == 1 || fnode == snode {
            first = node_hash(node, &first).to_vec();
            second = node_hash(node, &second).to_vec();
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            second = node_hash(&second, node).to_vec();
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(ProofError::WrongLength(proof.len()));
    }
    if first != root1 || second != root2 {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
