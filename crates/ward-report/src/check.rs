//! `ward report verify DIR`: checks a pack offline, trusting nothing in it but what the key
//! signed.
//!
//! 1. The seal: `MANIFEST.sha256.sig` signs the manifest's SHA-256 with the verifier key given
//!    (or, without one, the key the pack names: then the pack is only shown to be whole, and the
//!    key must be compared with `ward audit key` from elsewhere).
//! 2. The files: each listed one is there with its hash; nothing else is (no file added, no
//!    symbolic link).
//! 3. The log: both checkpoints verify under their keys (the end one under the pack's key); the
//!    consistency proof ties them; the tree before the period (`frontier-start.json`) folds into
//!    the start checkpoint's root, and with the appendix's events, each hashing to its `hash` and
//!    chained to the one before, into the end checkpoint's root.
//! 4. The sample: each sampled event's inclusion proof leads from the event's hash in the
//!    appendix to the end checkpoint's root.
//! 5. Eligibility: each policy set in force at an end of the period is the snapshot its event
//!    names, that event is in the end checkpoint's tree, and the eligibility listed is what the
//!    snapshot's policies decide, and no later event of the appendix put another set in force
//!    before that end. (The appendix starts at the start checkpoint: that no set came into force
//!    between the start one's event and that checkpoint is for the log to show.)

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use ward_api::{ConsistencyProof, InclusionProof};
use ward_core::audit::AuditEvent;
use ward_core::checkpoint::{self, Checkpoint};
use ward_core::merkle::{self, Frontier, Hash};
use ward_core::verify::{Source, Verifier};

use crate::model::{CheckpointRef, Report};

mod eligibility;
use crate::pack::{MANIFEST, SEAL, is_pack_path};
use crate::{FrontierFile, layout};

/// The most a manifest, a seal or `report.json` may weigh: a pack's index files are small, and
/// a check must not be made to read without bound.
const MAX_INDEX_BYTES: u64 = 256 * 1024 * 1024;
const MAX_SMALL_BYTES: u64 = 16 * 1024 * 1024;
/// The longest event line read from the appendix.
const MAX_EVENT_LINE: usize = 4 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("{0} is not a directory")]
    NotADirectory(PathBuf),
    #[error("the verifier key is not valid: {0}")]
    Key(String),
}

/// What the check found.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Checked {
    /// Files whose hash matched the manifest.
    pub files: u64,
    /// Events of the appendix that verified.
    pub events: u64,
    /// Inclusion proofs that verified.
    pub proofs: u64,
    /// Policy sets (at the period's start and end) whose eligibility was worked out again.
    pub policy_sets: u64,
    /// The verifier key the seal was checked with.
    pub key: String,
    /// Whether that key came from the pack itself (no key was given).
    pub key_from_pack: bool,
    /// Everything wrong, one sentence each (none: the pack is as ward wrote it).
    pub problems: Vec<String>,
}

impl Checked {
    pub fn is_valid(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks the pack in `dir`, with the verifier key `key` (`origin+keyid+key`) when given.
pub fn check(dir: &Path, key: Option<&str>) -> Result<Checked, CheckError> {
    if !dir.is_dir() {
        return Err(CheckError::NotADirectory(dir.to_owned()));
    }
    let mut checked = Checked::default();
    let given = key
        .map(|k| checkpoint::parse_verifier_key(k).map_err(|e| CheckError::Key(e.to_string())))
        .transpose()?;
    let manifest = match read_bounded(&dir.join(MANIFEST), MAX_INDEX_BYTES) {
        Ok(bytes) => bytes,
        Err(e) => {
            checked.problems.push(format!("{MANIFEST} cannot be read: {e}"));
            return Ok(checked);
        }
    };
    let listed = match parse_manifest(&manifest) {
        Ok(listed) => listed,
        Err(problem) => {
            checked.problems.push(problem);
            return Ok(checked);
        }
    };
    // 1. The seal, with the key given or the one the pack names.
    let key_text = match &given {
        Some(_) => key.map(str::trim).unwrap_or_default().to_owned(),
        None => {
            checked.key_from_pack = true;
            match read_text(dir, layout::KEY) {
                Ok(text) => text.trim().to_owned(),
                Err(problem) => {
                    checked.problems.push(problem);
                    return Ok(checked);
                }
            }
        }
    };
    let (name, verifying) = match given {
        Some(parsed) => parsed,
        None => match checkpoint::parse_verifier_key(&key_text) {
            Ok(parsed) => parsed,
            Err(e) => {
                checked.problems.push(format!("{} does not hold a verifier key: {e}", layout::KEY));
                return Ok(checked);
            }
        },
    };
    checked.key = key_text.clone();
    match read_text(dir, SEAL) {
        Ok(note) => match ward_core::seal::open(&note, &name, &verifying) {
            Ok(digest) if digest == <[u8; 32]>::from(Sha256::digest(&manifest)) => {}
            Ok(_) => checked.problems.push(format!("{SEAL} seals another manifest: {MANIFEST} was changed")),
            Err(e) => checked.problems.push(format!("{SEAL} does not verify with the key {key_text}: {e}")),
        },
        Err(problem) => checked.problems.push(problem),
    }
    // 2. The files.
    check_files(dir, &listed, &mut checked);
    if !checked.problems.is_empty() {
        // Nothing below can be trusted to say more.
        return Ok(checked);
    }
    // 3 and 4. The log and the sample, as the report states them.
    if let Err(problem) = check_log(dir, &key_text, &mut checked) {
        checked.problems.push(problem);
    }
    Ok(checked)
}

/// The manifest's lines: `<64 hex>  <path>`, paths unique and plain.
fn parse_manifest(bytes: &[u8]) -> Result<BTreeMap<String, Hash>, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| format!("{MANIFEST} is not UTF-8"))?;
    let mut listed = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let bad = || format!("{MANIFEST} line {} is not `<sha256>  <path>`", n + 1);
        let (digest, path) = line.split_once("  ").ok_or_else(bad)?;
        let digest = merkle::hash_from_hex(digest).ok_or_else(bad)?;
        if !is_pack_path(path) {
            return Err(format!("{MANIFEST} line {} names `{path}`, which no pack may hold", n + 1));
        }
        if listed.insert(path.to_owned(), digest).is_some() {
            return Err(format!("{MANIFEST} lists {path} twice"));
        }
    }
    Ok(listed)
}

/// Each listed file is there with its hash, and no other file is.
fn check_files(dir: &Path, listed: &BTreeMap<String, Hash>, checked: &mut Checked) {
    let mut found = BTreeSet::new();
    let mut stack = vec![(dir.to_owned(), String::new())];
    while let Some((at, prefix)) = stack.pop() {
        let entries = match std::fs::read_dir(&at) {
            Ok(entries) => entries,
            Err(e) => {
                checked.problems.push(format!("{} cannot be read: {e}", at.display()));
                continue;
            }
        };
        for entry in entries {
            let Ok(entry) = entry else { continue };
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
            match entry.file_type() {
                Ok(kind) if kind.is_dir() => stack.push((entry.path(), path)),
                Ok(kind) if kind.is_file() => {
                    found.insert(path);
                }
                _ => checked
                    .problems
                    .push(format!("{path} is not a regular file (a link?); a pack holds none")),
            }
        }
    }
    for path in &found {
        if path != MANIFEST && path != SEAL && !listed.contains_key(path) {
            checked.problems.push(format!("{path} is not in the manifest: it was added"));
        }
    }
    for (path, digest) in listed {
        if !found.contains(path) {
            checked.problems.push(format!("{path} is missing: it was removed"));
            continue;
        }
        match hash_file(&dir.join(path)) {
            Ok(actual) if actual == *digest => checked.files += 1,
            Ok(_) => checked
                .problems
                .push(format!("{path} does not match its hash in the manifest: it was changed")),
            Err(e) => checked.problems.push(format!("{path} cannot be read: {e}")),
        }
    }
}

fn check_log(dir: &Path, pack_key: &str, checked: &mut Checked) -> Result<(), String> {
    let report: Report = serde_json::from_slice(
        &read_bounded(&dir.join(layout::REPORT_JSON), MAX_INDEX_BYTES)
            .map_err(|e| format!("{} cannot be read: {e}", layout::REPORT_JSON))?,
    )
    .map_err(|e| format!("{} does not read as a report: {e}", layout::REPORT_JSON))?;
    let integrity = &report.integrity;
    // The same key, however its text is written (a key id's hex in either case).
    let same_key = |a: &str, b: &str| {
        matches!((checkpoint::parse_verifier_key(a), checkpoint::parse_verifier_key(b)),
            (Ok((name_a, key_a)), Ok((name_b, key_b))) if name_a == name_b && key_a == key_b)
    };
    if !same_key(&integrity.end.key, pack_key) {
        return Err("the end checkpoint names another key than the pack's".into());
    }
    let end = verify_checkpoint(&integrity.end, "end")?;
    if read_text(dir, layout::CHECKPOINT_END)? != integrity.end.note {
        return Err(format!("{} is not the end checkpoint the report names", layout::CHECKPOINT_END));
    }
    // The tree before the period, and the start checkpoint that signed it.
    let frontier: FrontierFile = serde_json::from_str(&read_text(dir, layout::FRONTIER)?)
        .map_err(|e| format!("{} does not read: {e}", layout::FRONTIER))?;
    let nodes: Option<Vec<Hash>> = frontier.nodes.iter().map(|n| merkle::hash_from_hex(n)).collect();
    let start_tree = nodes
        .and_then(|nodes| Frontier::from_parts(frontier.size, nodes))
        .ok_or_else(|| format!("{} is not the right edge of a tree", layout::FRONTIER))?;
    match &integrity.start {
        Some(start_ref) => {
            let start = verify_checkpoint(start_ref, "start")?;
            if read_text(dir, layout::CHECKPOINT_START)? != start_ref.note {
                return Err(format!(
                    "{} is not the start checkpoint the report names",
                    layout::CHECKPOINT_START
                ));
            }
            if start_tree.size() != start.size || start_tree.root() != start.root {
                return Err("the tree before the period is not the one the start checkpoint signed".into());
            }
            let proof: ConsistencyProof = serde_json::from_str(&read_text(dir, layout::CONSISTENCY)?)
                .map_err(|e| format!("{} does not read: {e}", layout::CONSISTENCY))?;
            let hashes: Option<Vec<Hash>> = proof.proof.iter().map(|h| merkle::hash_from_hex(h)).collect();
            let hashes =
                hashes.ok_or_else(|| format!("{} holds a hash that is not one", layout::CONSISTENCY))?;
            if (proof.size1, proof.size2) != (start.size, end.size) {
                return Err(format!("{} is not between the two checkpoints", layout::CONSISTENCY));
            }
            merkle::verify_consistency(start.size, end.size, &start.root, &end.root, &hashes)
                .map_err(|e| format!("the end checkpoint does not extend the start one: {e}"))?;
        }
        None if start_tree.size() == 0 => {}
        None => return Err("the tree before the period has no checkpoint that signed it".into()),
    }
    // The appendix's events, from the tree before the period to the end checkpoint.
    let wanted: BTreeSet<i64> = report.sample.grants.iter().flat_map(|g| g.seqs.iter().copied()).collect();
    let mut hashes: BTreeMap<i64, String> = BTreeMap::new();
    // Where the appendix puts a policy set in force: (seq, occurred at).
    let mut policy_sets = Vec::new();
    let mut verifier = Verifier::default();
    verifier.resume_after(start_tree);
    verifier.expect(Source::External, end.size, end.root);
    let file = File::open(dir.join(layout::EVENTS))
        .map_err(|e| format!("{} cannot be read: {e}", layout::EVENTS))?;
    let mut lines = BufReader::new(file);
    let mut line = Vec::new();
    let mut n = 0u64;
    loop {
        line.clear();
        let read = (&mut lines)
            .take(MAX_EVENT_LINE as u64 + 1)
            .read_until(b'\n', &mut line)
            .map_err(|e| format!("{} cannot be read: {e}", layout::EVENTS))?;
        if read == 0 {
            break;
        }
        n += 1;
        if line.len() > MAX_EVENT_LINE {
            return Err(format!("{} line {n} is longer than any event", layout::EVENTS));
        }
        let event: AuditEvent = serde_json::from_slice(&line)
            .map_err(|e| format!("{} line {n} is not an audit event: {e}", layout::EVENTS))?;
        if wanted.contains(&event.seq) {
            hashes.insert(event.seq, event.hash.clone());
        }
        if eligibility::named_snapshot(&event).is_some() {
            policy_sets.push((event.seq, event.occurred_at));
        }
        verifier.push(&event);
    }
    let verified = verifier.finish();
    if !verified.is_valid() {
        let problems: Vec<String> = verified.problems.iter().map(ToString::to_string).collect();
        return Err(format!("the appendix's events do not verify: {}", problems.join("; ")));
    }
    if verified.size != end.size || verified.events != integrity.events {
        return Err(format!(
            "the appendix holds {} events up to {}, the report says {} up to {}",
            verified.events, verified.size, integrity.events, end.size
        ));
    }
    checked.events = verified.events;
    // The sample's proofs: one per event of the sample, each from the event's hash in the
    // appendix to the end checkpoint's root.
    let path = layout::PROOFS;
    let mut proven = BTreeSet::new();
    let file = File::open(dir.join(path)).map_err(|e| format!("{path} cannot be read: {e}"))?;
    let mut lines = BufReader::new(file);
    let mut n = 0u64;
    loop {
        line.clear();
        let read = (&mut lines)
            .take(MAX_EVENT_LINE as u64 + 1)
            .read_until(b'\n', &mut line)
            .map_err(|e| format!("{path} cannot be read: {e}"))?;
        if read == 0 {
            break;
        }
        n += 1;
        let proof: InclusionProof = serde_json::from_slice(&line)
            .map_err(|e| format!("{path} line {n} is not an inclusion proof: {e}"))?;
        let seq = proof.seq;
        let leaf_hash = hashes
            .get(&seq)
            .ok_or_else(|| format!("{path} line {n} proves event {seq}, which is not in the sample"))?;
        verify_inclusion_proof(&proof, seq, leaf_hash, &end).map_err(|e| format!("{path} line {n}: {e}"))?;
        if !proven.insert(seq) {
            return Err(format!("{path} line {n} proves event {seq} a second time"));
        }
        checked.proofs += 1;
    }
    if let Some(missing) = wanted.difference(&proven).next() {
        return Err(format!("{path} has no proof of event {missing} of the sample"));
    }
    // 5. Eligibility, worked out again from the policy sets in force.
    checked.policy_sets = eligibility::check(dir, &report, &end, &policy_sets)?;
    Ok(())
}

/// Checks that `proof` is the inclusion proof of event `seq`, whose hash is `leaf_hash` (hex),
/// in the tree the end checkpoint `end` signed.
fn verify_inclusion_proof(
    proof: &InclusionProof,
    seq: i64,
    leaf_hash: &str,
    end: &Checkpoint,
) -> Result<(), String> {
    let leaf = merkle::hash_from_hex(leaf_hash).ok_or("the event's hash is not one")?;
    let steps: Option<Vec<Hash>> = proof.proof.iter().map(|h| merkle::hash_from_hex(h)).collect();
    let steps = steps.ok_or("the proof holds a hash that is not one")?;
    let index = u64::try_from(seq - 1).map_err(|_| format!("event {seq} has no place in the log"))?;
    if proof.seq != seq
        || proof.leaf_index != index
        || proof.tree_size != end.size
        || proof.leaf_hash != leaf_hash
    {
        return Err(format!("it is not the proof of event {seq} in the end checkpoint's tree"));
    }
    merkle::verify_inclusion(index, end.size, &leaf, &steps, &end.root)
        .map_err(|e| format!("it does not prove event {seq}: {e}"))
}

fn verify_checkpoint(reference: &CheckpointRef, which: &str) -> Result<Checkpoint, String> {
    let (name, key) = checkpoint::parse_verifier_key(&reference.key)
        .map_err(|e| format!("the {which} checkpoint's key is not a verifier key: {e}"))?;
    let checkpoint = checkpoint::verify(&reference.note, &name, &key)
        .map_err(|e| format!("the {which} checkpoint does not verify: {e}"))?;
    if checkpoint.size != reference.size || hex::encode(checkpoint.root) != reference.root {
        return Err(format!("the {which} checkpoint does not say what the report says it does"));
    }
    Ok(checkpoint)
}

fn read_bounded(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    File::open(path)?.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(io::Error::other(format!("longer than {max} bytes")));
    }
    Ok(bytes)
}

fn read_text(dir: &Path, path: &str) -> Result<String, String> {
    let bytes =
        read_bounded(&dir.join(path), MAX_SMALL_BYTES).map_err(|e| format!("{path} cannot be read: {e}"))?;
    String::from_utf8(bytes).map_err(|_| format!("{path} is not UTF-8"))
}

fn hash_file(path: &Path) -> io::Result<Hash> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    io::copy(&mut file, &mut hasher)?;
    Ok(hasher.finalize().into())
}
