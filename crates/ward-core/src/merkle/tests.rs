use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use proptest::prelude::*;
use serde_json::Value;

use super::*;

/// The test vectors others wrote (transparency-dev/merkle), shipped beside the repository.
fn vectors_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/testdata/merkle"))
}

fn json_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            json_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "json") {
            found.push(path);
        }
    }
}

fn bytes(value: &Value) -> Vec<u8> {
    value.as_str().map(|s| STANDARD.decode(s).unwrap()).unwrap_or_default()
}

fn proof(value: &Value) -> Vec<Vec<u8>> {
    value.as_array().map(|a| a.iter().map(bytes).collect()).unwrap_or_default()
}

fn load(kind: &str) -> Vec<(PathBuf, Value)> {
    let mut files = Vec::new();
    json_files(&vectors_dir().join(kind), &mut files);
    files.sort();
    files
        .into_iter()
        .map(|f| (f.clone(), serde_json::from_slice(&std::fs::read(&f).unwrap()).unwrap()))
        .collect()
}

#[test]
fn every_inclusion_vector() {
    let vectors = load("inclusion");
    assert!(vectors.len() > 80, "only {} inclusion vectors found", vectors.len());
    for (file, v) in vectors {
        let result = verify_inclusion(
            v["leafIdx"].as_u64().unwrap(),
            v["treeSize"].as_u64().unwrap(),
            &bytes(&v["leafHash"]),
            &proof(&v["proof"]),
            &bytes(&v["root"]),
        );
        assert_eq!(result.is_err(), v["wantErr"].as_bool().unwrap(), "{}: {result:?}", file.display());
    }
}

#[test]
fn every_consistency_vector() {
    let vectors = load("consistency");
    assert!(vectors.len() > 80, "only {} consistency vectors found", vectors.len());
    for (file, v) in vectors {
        let result = verify_consistency(
            v["size1"].as_u64().unwrap(),
            v["size2"].as_u64().unwrap(),
            &bytes(&v["root1"]),
            &bytes(&v["root2"]),
            &proof(&v["proof"]),
        );
        assert_eq!(result.is_err(), v["wantErr"].as_bool().unwrap(), "{}: {result:?}", file.display());
    }
}

/// The eight-leaf reference tree of RFC 6962's test suite, which the vectors are built on.
fn reference_leaves() -> Vec<Hash> {
    let data: [&[u8]; 8] = [
        b"",
        b"\x00",
        b"\x10",
        b"\x20\x21",
        b"\x30\x31",
        b"\x40\x41\x42\x43",
        b"\x50\x51\x52\x53\x54\x55\x56\x57",
        b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
    ];
    data.iter().map(|d| leaf_hash(d)).collect()
}

#[test]
fn generated_proofs_match_the_vectors() {
    let leaves = reference_leaves();
    assert_eq!(
        hex::encode(root(&leaves)),
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
    );
    assert_eq!(hex::encode(empty_root()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    let mut compared = 0;
    for (file, v) in load("inclusion") {
        let (index, size) =
            (v["leafIdx"].as_u64().unwrap() as usize, v["treeSize"].as_u64().unwrap() as usize);
        let on_reference_tree = index < leaves.len() && bytes(&v["leafHash"]) == leaves[index];
        if v["wantErr"] == false && size <= leaves.len() && index < size && on_reference_tree {
            let generated: Vec<Vec<u8>> =
                inclusion_proof(&leaves[..size], index).unwrap().iter().map(|h| h.to_vec()).collect();
            assert_eq!(generated, proof(&v["proof"]), "{}", file.display());
            assert_eq!(root(&leaves[..size]).to_vec(), bytes(&v["root"]), "{}", file.display());
            compared += 1;
        }
    }
    for (file, v) in load("consistency") {
        let (size1, size2) = (v["size1"].as_u64().unwrap() as usize, v["size2"].as_u64().unwrap() as usize);
        let on_reference_tree = size2 <= leaves.len() && bytes(&v["root2"]) == root(&leaves[..size2]);
        if v["wantErr"] == false && size1 > 0 && size1 < size2 && on_reference_tree {
            let generated: Vec<Vec<u8>> =
                consistency_proof(&leaves[..size2], size1).unwrap().iter().map(|h| h.to_vec()).collect();
            assert_eq!(generated, proof(&v["proof"]), "{}", file.display());
            compared += 1;
        }
    }
    assert!(compared >= 8, "only {compared} happy-path vectors compared");
}

#[test]
fn out_of_range_requests_have_no_proof() {
    let leaves = reference_leaves();
    assert_eq!(inclusion_proof(&leaves, 8), None);
    assert_eq!(consistency_proof(&leaves, 0), None);
    assert_eq!(consistency_proof(&leaves, 9), None);
    assert_eq!(consistency_proof(&leaves, 8), Some(vec![]));
}

fn leaves(n: usize) -> Vec<Hash> {
    (0..n).map(|i| leaf_hash(&(i as u64).to_be_bytes())).collect()
}

#[test]
fn the_frontier_of_the_reference_tree_has_its_root() {
    let mut frontier = Frontier::default();
    assert_eq!(frontier.root(), empty_root());
    for leaf in reference_leaves() {
        frontier.push(leaf);
    }
    assert_eq!(frontier.root(), root(&reference_leaves()));
    assert_eq!(frontier.nodes().len(), 1, "8 leaves: one perfect subtree");
    assert_eq!(Frontier::from_parts(8, frontier.nodes().to_vec()), Some(frontier.clone()));
    assert_eq!(Frontier::from_parts(7, frontier.nodes().to_vec()), None);
}

proptest! {
    // Each case builds whole trees; 48 cases keep the suite quick and still cover odd shapes.
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn the_frontier_root_is_the_tree_root(n in 0usize..300) {
        let leaves = leaves(n);
        let mut frontier = Frontier::default();
        for (i, leaf) in leaves.iter().enumerate() {
            prop_assert_eq!(frontier.root(), root(&leaves[..i]));
            frontier.push(*leaf);
        }
        prop_assert_eq!(frontier.root(), root(&leaves));
        prop_assert_eq!(frontier.size(), n as u64);
    }

    #[test]
    fn every_leaf_is_provably_included(n in 1usize..130, pick in any::<prop::sample::Index>(), flip in any::<prop::sample::Index>()) {
        let leaves = leaves(n);
        let index = pick.index(n);
        let head = root(&leaves);
        let path = inclusion_proof(&leaves, index).unwrap();
        prop_assert_eq!(verify_inclusion(index as u64, n as u64, &leaves[index], &path, &head), Ok(()));
        // Any change to the proof, the leaf or the position is caught.
        if !path.is_empty() {
            let mut tampered = path.clone();
            let at = flip.index(tampered.len());
            tampered[at][0] ^= 1;
            prop_assert!(verify_inclusion(index as u64, n as u64, &leaves[index], &tampered, &head).is_err());
        }
        let other = leaf_hash(b"not in the log");
        prop_assert!(verify_inclusion(index as u64, n as u64, &other, &path, &head).is_err());
        if n > 1 {
            let moved = (index + 1) % n;
            prop_assert!(verify_inclusion(moved as u64, n as u64, &leaves[index], &path, &head).is_err());
        }
    }

    #[test]
    fn every_prefix_is_provably_consistent(n in 2usize..130, pick in any::<prop::sample::Index>()) {
        let leaves = leaves(n);
        let size1 = 1 + pick.index(n - 1);
        let (root1, root2) = (root(&leaves[..size1]), root(&leaves));
        let path = consistency_proof(&leaves, size1).unwrap();
        prop_assert_eq!(verify_consistency(size1 as u64, n as u64, &root1, &root2, &path), Ok(()));
        // A rewritten history (one leaf of the prefix changed) is not consistent.
        let mut forked = leaves.clone();
        forked[size1 - 1] = leaf_hash(b"rewritten");
        prop_assert!(verify_consistency(size1 as u64, n as u64, &root(&forked[..size1]), &root2, &path).is_err());
        prop_assert!(verify_consistency(size1 as u64, n as u64, &root1, &root(&forked), &path).is_err());
    }
}

/// Every hash of the tree over `leaves`, by node: what a store keeps.
fn all_nodes(leaves: &[Hash]) -> std::collections::HashMap<NodeId, Hash> {
    let mut nodes = std::collections::HashMap::new();
    let mut frontier = Frontier::default();
    for (index, leaf) in leaves.iter().enumerate() {
        nodes.insert(NodeId { level: 0, index: index as u64 }, *leaf);
        frontier.push_with(*leaf, |id, hash| {
            nodes.insert(id, *hash);
        });
    }
    nodes
}

fn from_plan(plan: &[Vec<NodeId>], nodes: &std::collections::HashMap<NodeId, Hash>) -> Vec<Hash> {
    plan.iter().map(|ids| fold(&ids.iter().map(|id| nodes[id]).collect::<Vec<_>>())).collect()
}

#[test]
fn proofs_from_kept_nodes_equal_proofs_from_leaves() {
    let leaves: Vec<Hash> = (0..70u32).map(|i| leaf_hash(&i.to_be_bytes())).collect();
    let nodes = all_nodes(&leaves);
    for id in nodes.keys() {
        let range = id.leaves();
        let covered = &leaves[range.start as usize..range.end as usize];
        assert_eq!(nodes[id], root(covered), "{id:?} is the root of its leaves");
    }
    for size in 1..=leaves.len() {
        let tree = &leaves[..size];
        let whole = range_nodes(0, size as u64);
        assert_eq!(whole.len(), size.count_ones() as usize);
        assert_eq!(from_plan(&[whole], &nodes), [root(tree)]);
        for index in 0..size {
            let plan = inclusion_plan(index as u64, size as u64).unwrap();
            assert!(plan.iter().map(Vec::len).sum::<usize>() <= 2 * (usize::BITS as usize));
            assert_eq!(from_plan(&plan, &nodes), inclusion_proof(tree, index).unwrap(), "{index} in {size}");
        }
        for size1 in 1..=size {
            let plan = consistency_plan(size1 as u64, size as u64).unwrap();
            assert_eq!(
                from_plan(&plan, &nodes),
                consistency_proof(tree, size1).unwrap(),
                "{size1} to {size}"
            );
        }
    }
    assert!(inclusion_plan(5, 5).is_none());
    assert!(consistency_plan(0, 5).is_none() && consistency_plan(6, 5).is_none());
}

#[test]
fn a_proof_on_a_large_tree_needs_few_nodes() {
    let size = 1 << 40;
    let plan = inclusion_plan(size / 3, size + 12345).unwrap();
    assert!(plan.iter().map(Vec::len).sum::<usize>() <= 64, "{plan:?}");
    let plan = consistency_plan(size / 7, size + 12345).unwrap();
    assert!(plan.iter().map(Vec::len).sum::<usize>() <= 128, "{plan:?}");
}
