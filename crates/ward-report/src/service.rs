//! `Reports`: writes a pack for a period, beside the broker (a service of its own; the broker
//! only seals the manifest). It reads the store twice: the period's events into the fold, then
//! the log from the start checkpoint to the end one into the appendix, verifying them as they
//! are written. The writing is blocking file work, so all of it runs on the blocking pool, with
//! the store's calls driven from there.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use tokio::runtime::Handle;
use tokio::sync::Semaphore;
use ward_api::InclusionProof;
use ward_core::audit::{AuditEvent, EventType};
use ward_core::checkpoint;
use ward_core::merkle::{self, Frontier, Hash};
use ward_core::policy::PolicyEngine;
use ward_core::verify::{Source, Verifier};
use ward_rules::RuleId;
use ward_service::export::ExportFormat;
use ward_service::{Broker, BrokerError, Caller, policy_history};
use ward_store::{CheckpointRecord, EventFilter};

use crate::fold::{Fold, Thresholds, monitoring};
use crate::model::{
    CheckpointRef, Cover, Eligibility, EligibilityRow, EligibleAt, Framework, Integrity, PolicyInForce,
    Report, Sample,
};
use crate::pack::{FinishError, PackWriter};
use crate::{FrontierFile, PolicyEvidence, controls, layout, oscal, render, sample};

/// The longest period a report covers (a year's audit, with room for a 15-month one).
pub const MAX_PERIOD_SECONDS: i64 = 460 * 86_400;
/// Events read per page.
const PAGE: u32 = 10_000;
/// Inclusion proofs whose nodes are read in one call.
const PROOFS_PER_READ: usize = 128;
/// The longest seed taken, in bytes.
const MAX_SEED_BYTES: usize = 64;

/// What a pack is asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportRequest {
    pub from: Timestamp,
    pub to: Timestamp,
    pub framework: Framework,
    /// Hex; a fresh random one when `None`.
    pub seed: Option<String>,
}

/// What was written, in short.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub events: u64,
    pub requests: u64,
    pub grants: u64,
    pub sampled: u64,
}

#[derive(Clone)]
pub struct Reports {
    broker: Arc<Broker>,
    running: Arc<Semaphore>,
}

impl Reports {
    pub fn new(broker: Arc<Broker>) -> Self {
        Self { broker, running: Arc::new(Semaphore::new(1)) }
    }

    /// The broker's clock: a period "up to now" ends here.
    pub fn now(&self) -> Timestamp {
        self.broker.now()
    }

    /// Checks `request` for `caller` before any work: auditors and admins, a period of at most
    /// [`MAX_PERIOD_SECONDS`] that ends by now, a seed of hex.
    pub fn validate(&self, caller: &Caller, request: &ReportRequest) -> Result<(), BrokerError> {
        if !caller.sees_everything() {
            return Err(BrokerError::Forbidden("only auditors and admins can make evidence reports".into()));
        }
        let now = self.broker.now();
        if request.from >= request.to {
            return Err(BrokerError::Unacceptable(format!(
                "the period must end after it starts; got from {} to {}",
                request.from, request.to
            )));
        }
        if request.to > now {
            return Err(BrokerError::Unacceptable(format!(
                "the period ends at {}, after now ({now}): a report covers what has happened",
                request.to
            )));
        }
        if request.to.duration_since(request.from) > SignedDuration::from_secs(MAX_PERIOD_SECONDS) {
            return Err(BrokerError::Unacceptable(format!(
                "a report covers at most {} days; make one per audit period",
                MAX_PERIOD_SECONDS / 86_400
            )));
        }
        if let Some(seed) = &request.seed {
            let valid = !seed.is_empty() && seed.len() <= MAX_SEED_BYTES * 2 && hex::decode(seed).is_ok();
            if !valid {
                return Err(BrokerError::Invalid(format!(
                    "the seed must be 1 to {MAX_SEED_BYTES} bytes of hex; got `{seed}`"
                )));
            }
        }
        Ok(())
    }

    /// Writes the pack for `request` into `dir`, which must exist and be empty. One report at a
    /// time per process.
    pub async fn write(
        &self,
        caller: &Caller,
        request: &ReportRequest,
        dir: &Path,
    ) -> Result<Written, BrokerError> {
        self.validate(caller, request)?;
        let permit = self.running.clone().try_acquire_owned().map_err(|_| BrokerError::Busy {
            message: "a report is being made already; try again shortly".into(),
            retry_after_seconds: 10,
        })?;
        let (broker, request, dir, by) =
            (self.broker.clone(), request.clone(), dir.to_owned(), caller.name.clone());
        let handle = Handle::current();
        // The slot goes with the work: a caller that goes away does not end the blocking work,
        // so it must not free the slot for another report while this one still runs.
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            Generation { broker: &broker, rt: &handle }.run(&request, &dir, &by)
        })
        .await
        .map_err(|e| BrokerError::Unavailable(format!("the report stopped: {e}")))?
    }
}

/// One report being made, on a blocking thread.
struct Generation<'g> {
    broker: &'g Broker,
    rt: &'g Handle,
}

fn io_error(error: std::io::Error) -> BrokerError {
    BrokerError::Unavailable(format!("the report could not be written: {error}"))
}

impl Generation<'_> {
    fn run(&self, request: &ReportRequest, dir: &Path, by: &str) -> Result<Written, BrokerError> {
        let broker = self.broker;
        let settings = broker.settings();
        let policy = broker.policy();
        let generated_at = broker.now();
        let store = broker.store();
        // 1. Where the period lies in the log, and the checkpoints around it.
        let span = self.rt.block_on(store.event_span(request.from, request.to))?;
        let key = broker.verifier_key();
        let end = self.end_checkpoint(span.map(|(_, last)| last), &key)?;
        let start = match span {
            Some((first, _)) => self.checkpoint_before(u64::try_from(first - 1).unwrap_or(0))?,
            None => Some(end.clone()).filter(|c| c.size > 0),
        };
        let start_size = start.as_ref().map_or(0, |c| c.size);
        let frontier = self.frontier(start_size)?;
        let consistency = match &start {
            Some(start) => Some(self.rt.block_on(broker.consistency_proof(start.size, end.size))?),
            None => None,
        };
        let policy_at_start = self.policy_in_force(request.from, &end, None)?;
        let policy_at_end = self.policy_in_force(request.to, &end, policy_at_start.as_ref())?;
        // 2. One pass over the log from one checkpoint to the other: the appendix, each event
        // verified, and the period's events folded.
        let mut pack = PackWriter::new(dir);
        let mut fold = Fold::new(request.from, request.to, Thresholds::from_config(&settings.rules));
        let verified = self.appendix(&mut pack, &frontier, &end, &mut fold)?;
        let folded = fold.finish();
        // 3. The sample.
        let seed = seed_of(request)?;
        let sampled = sample::draw(&folded.population, &folded.seqs, &seed);
        // 4. The files.
        let wanted: BTreeSet<i64> = sampled.iter().flat_map(|s| s.seqs.iter().copied()).collect();
        let end_ref = self.reference(&end, &key)?;
        let integrity = Integrity {
            key: key.clone(),
            start: start.as_ref().map(|c| self.reference(c, &key)).transpose()?,
            end: end_ref,
            first_seq: i64::try_from(start_size).unwrap_or(i64::MAX) + 1,
            last_seq: i64::try_from(end.size).unwrap_or(i64::MAX),
            events: verified.events,
            events_verified: if verified.is_valid() { verified.events } else { 0 },
            problems: verified.problems.iter().map(ToString::to_string).collect(),
        };
        let changes_in_period = folded
            .changes
            .iter()
            .filter(|c| EventType::ALL.iter().any(|t| t.puts_policy_in_force() && c.event_type == t.as_str()))
            .count() as u64;
        let at_start = eligible_at(request.from, policy_at_start.as_ref(), layout::POLICY_AT_START);
        let at_end = eligible_at(request.to, policy_at_end.as_ref(), layout::POLICY_AT_END);
        let resources = match &policy_at_end {
            Some(found) => found.resources.clone(),
            None => policy.directory().resources().keys().cloned().collect(),
        };
        let report = Report {
            cover: Cover {
                framework: request.framework,
                organisation: broker.audit_origin().to_owned(),
                resources,
                from: request.from,
                to: request.to,
                generated_at,
                generated_by: by.to_owned(),
                ward_version: env!("CARGO_PKG_VERSION").to_owned(),
            },
            integrity,
            controls: controls::matrix(request.framework),
            sample: Sample {
                seed: hex::encode(&seed),
                method: sample::METHOD.to_owned(),
                confidence: sample::CONFIDENCE,
                tolerable_deviation_rate: sample::TOLERABLE_DEVIATION_RATE,
                population: folded.population.grants.len() as u64,
                size: sampled.len() as u64,
                grants: sampled,
            },
            population: folded.population,
            exceptions: folded.exceptions,
            revocation: folded.revocation,
            usage: folded.usage,
            eligibility: Eligibility::between(at_start, at_end, changes_in_period),
            monitoring: monitoring(folded.findings, rules_in_force(&settings.rules)),
            changes: folded.changes,
        };
        let proofs = self.inclusion_proofs(&wanted, &end)?;
        let integrity_files = IntegrityFiles {
            key: &key,
            start: start.as_ref(),
            end: &end,
            frontier: &frontier,
            consistency: consistency.as_ref(),
        };
        write_files(&mut pack, &report, &integrity_files, &proofs)?;
        for (found, path) in
            [(policy_at_start, layout::POLICY_AT_START), (policy_at_end, layout::POLICY_AT_END)]
        {
            if let Some(found) = found {
                pack.write(path, &json(&found.evidence)?).map_err(io_error)?;
            }
        }
        pack.finish(|digest| broker.seal_evidence(digest)).map_err(|e| match e {
            FinishError::Io(e) => io_error(e),
            FinishError::Seal(e) => e,
        })?;
        Ok(Written {
            events: report.integrity.events,
            requests: report.population.requests.len() as u64,
            grants: report.population.grants.len() as u64,
            sampled: report.sample.size,
        })
    }

    /// The first checkpoint covering event `last` (the log's latest when the period has no
    /// event), signed by the key in force; one is signed now when there is none.
    fn end_checkpoint(&self, last: Option<i64>, key: &str) -> Result<CheckpointRecord, BrokerError> {
        let store = self.broker.store();
        let found = match last {
            Some(last) => self
                .rt
                .block_on(store.checkpoints(Some(u64::try_from(last - 1).unwrap_or(0)), 1))?
                .into_iter()
                .next(),
            None => self.rt.block_on(store.latest_checkpoint())?,
        };
        if let Some(found) = found.filter(|c| signed_by(c, key)) {
            return Ok(found);
        }
        self.rt
            .block_on(self.broker.sign_checkpoint(true))?
            .ok_or_else(|| BrokerError::Unavailable("no checkpoint could be signed for the report".into()))
    }

    /// The last checkpoint of at most `size` events, if any (found in O(log n) reads: the
    /// store lists checkpoints from a size upwards).
    fn checkpoint_before(&self, size: u64) -> Result<Option<CheckpointRecord>, BrokerError> {
        let store = self.broker.store();
        let first_after =
            |after: u64| self.rt.block_on(store.checkpoints(Some(after), 1)).map(|c| c.into_iter().next());
        // The smallest `after` whose next checkpoint is past `size`: the one at `after` is it.
        let (mut low, mut high) = (0u64, size);
        if first_after(0)?.is_none_or(|c| c.size > size) {
            return Ok(None);
        }
        while low < high {
            let middle = low + (high - low) / 2;
            if first_after(middle)?.is_none_or(|c| c.size > size) {
                high = middle;
            } else {
                low = middle + 1;
            }
        }
        // `low` is the largest checkpoint size within `size`: the next one after `low - 1`.
        Ok(first_after(low.saturating_sub(1))?.filter(|c| c.size <= size))
    }

    /// The right edge of the tree of the first `size` events.
    fn frontier(&self, size: u64) -> Result<Frontier, BrokerError> {
        let ids = merkle::range_nodes(0, size);
        let nodes = self.rt.block_on(self.broker.store().tree_nodes(&ids))?;
        Frontier::from_parts(size, nodes)
            .ok_or_else(|| BrokerError::Unavailable("the tree's nodes do not fit together".into()))
    }

    /// The checkpoint as the pack names it, with the key that signed it.
    fn reference(&self, record: &CheckpointRecord, key: &str) -> Result<CheckpointRef, BrokerError> {
        let key = if signed_by(record, key) { key.to_owned() } else { self.key_of(record)? };
        Ok(CheckpointRef {
            key,
            size: record.size,
            root: record.root.clone(),
            signed_at: record.signed_at,
            note: record.note.clone(),
        })
    }

    /// The key an older checkpoint was signed with, as its `audit.checkpoint` event (the event
    /// right after the events it covers) records it.
    fn key_of(&self, record: &CheckpointRecord) -> Result<String, BrokerError> {
        let seq = i64::try_from(record.size).unwrap_or(i64::MAX);
        let filter = EventFilter { after_seq: Some(seq), limit: 1, ..EventFilter::default() };
        let event = self.rt.block_on(self.broker.store().events(&filter))?.into_iter().next();
        event
            .filter(|e| e.event_type == EventType::AuditCheckpoint)
            .and_then(|e| e.details.get("key").and_then(|k| k.as_str()).map(str::to_owned))
            .ok_or_else(|| {
                BrokerError::Unavailable(format!(
                    "the key that signed the checkpoint of size {} is not on record",
                    record.size
                ))
            })
    }

    /// Writes the appendix: the events after the tree `frontier` up to the end checkpoint, as
    /// JSON Lines and OCSF (encoded on a thread of its own), each verified on the way and handed
    /// to `fold`. The store is read a page ahead of the work.
    fn appendix(
        &self,
        pack: &mut PackWriter,
        frontier: &Frontier,
        end: &CheckpointRecord,
        fold: &mut Fold,
    ) -> Result<ward_core::verify::Report, BrokerError> {
        let end_root = merkle::hash_from_hex(&end.root)
            .ok_or_else(|| BrokerError::Unavailable("the end checkpoint's root is not a hash".into()))?;
        let mut verifier = Verifier::default();
        verifier.resume_after(frontier.clone());
        verifier.expect(Source::External, end.size, end_root);
        let mut events_file = pack.file(layout::EVENTS).map_err(io_error)?;
        let ocsf_file = pack.file(layout::EVENTS_OCSF).map_err(io_error)?;
        let through = i64::try_from(end.size).unwrap_or(i64::MAX);
        let first_after = i64::try_from(frontier.size()).unwrap_or(i64::MAX);
        let store = self.broker.store().clone();
        let mut pages = {
            let _runtime = self.rt.enter();
            ward_service::export::read_ahead(PAGE, move |after| {
                let store = store.clone();
                let after = after.unwrap_or(first_after);
                async move {
                    if after >= through {
                        return Ok(Vec::new());
                    }
                    let filter =
                        EventFilter { after_seq: Some(after), limit: PAGE, ..EventFilter::default() };
                    let mut page = store.events(&filter).await?;
                    page.retain(|e| e.seq <= through);
                    Ok::<_, ward_store::StoreError>(page)
                }
            })
        };
        let encoding_failed =
            |e: String| BrokerError::Unavailable(format!("an event could not be encoded: {e}"));
        std::thread::scope(|scope| {
            let (to_ocsf, ocsf_pages) = std::sync::mpsc::sync_channel::<Arc<Vec<AuditEvent>>>(2);
            let ocsf = scope.spawn(move || -> Result<crate::pack::Finished, BrokerError> {
                let (mut file, mut encoded) = (ocsf_file, Vec::new());
                for page in ocsf_pages {
                    encoded.clear();
                    ExportFormat::Ocsf.encode(&page, &mut encoded).map_err(encoding_failed)?;
                    file.write_all(&encoded).map_err(io_error)?;
                }
                file.finish().map_err(io_error)
            });
            let mut encoded = Vec::new();
            while let Some(page) = pages.blocking_recv() {
                let page = Arc::new(page?);
                // Gone only when the other thread failed: its error is the one to tell.
                if to_ocsf.send(page.clone()).is_err() {
                    break;
                }
                for event in page.iter() {
                    verifier.push(event);
                    fold.observe(event);
                }
                encoded.clear();
                ExportFormat::Jsonl.encode(&page, &mut encoded).map_err(encoding_failed)?;
                events_file.write_all(&encoded).map_err(io_error)?;
            }
            drop(to_ocsf);
            let ocsf =
                ocsf.join().map_err(|_| BrokerError::Unavailable("the OCSF encoding stopped".into()))??;
            pack.add(events_file.finish().map_err(io_error)?);
            pack.add(ocsf);
            Ok(verifier.finish())
        })
    }

    /// An inclusion proof of each event in `wanted` in the end checkpoint's tree (the event's
    /// hash, the leaf, read with the proof's nodes).
    fn inclusion_proofs(
        &self,
        wanted: &BTreeSet<i64>,
        end: &CheckpointRecord,
    ) -> Result<Vec<InclusionProof>, BrokerError> {
        let mut proofs = Vec::new();
        let seqs: Vec<i64> = wanted.iter().copied().collect();
        for batch in seqs.chunks(PROOFS_PER_READ) {
            let plans: Vec<(i64, u64, Vec<Vec<merkle::NodeId>>)> = batch
                .iter()
                .filter_map(|&seq| {
                    let index = u64::try_from(seq - 1).ok()?;
                    Some((seq, index, merkle::inclusion_plan(index, end.size)?))
                })
                .collect();
            let ids: Vec<merkle::NodeId> = plans
                .iter()
                .flat_map(|(_, index, plan)| {
                    std::iter::once(merkle::NodeId { level: 0, index: *index })
                        .chain(plan.iter().flatten().copied())
                })
                .collect();
            let nodes = self.rt.block_on(self.broker.store().tree_nodes(&ids))?;
            let mut nodes = nodes.into_iter();
            for (seq, index, plan) in plans {
                let leaf = nodes
                    .next()
                    .ok_or_else(|| BrokerError::Unavailable(format!("event {seq} has no leaf")))?;
                let proof: Vec<Hash> = plan
                    .iter()
                    .map(|part| merkle::fold(&nodes.by_ref().take(part.len()).collect::<Vec<_>>()))
                    .collect();
                proofs.push(InclusionProof {
                    seq,
                    leaf_index: index,
                    tree_size: end.size,
                    leaf_hash: hex::encode(leaf),
                    root: end.root.clone(),
                    proof: proof.iter().map(hex::encode).collect(),
                    checkpoint: end.note.clone(),
                });
            }
        }
        Ok(proofs)
    }

    /// The policy set the log records as in force at `at` (put in force by an event before
    /// it), with the evidence of it: its snapshot, that event and the event's inclusion proof
    /// in `end`'s tree. `None` when the log records none whole by then, or not within `end`.
    /// `known`, when it is the same set, is taken as it is.
    fn policy_in_force(
        &self,
        at: Timestamp,
        end: &CheckpointRecord,
        known: Option<&Found>,
    ) -> Result<Option<Found>, BrokerError> {
        let store = self.broker.store();
        let on_record = self.rt.block_on(policy_history::on_record(&**store, Some(at)))?;
        let Some((event, digest)) = on_record.snapshot else {
            return Ok(None);
        };
        if u64::try_from(event.seq).is_ok_and(|seq| seq > end.size) {
            return Ok(None);
        }
        if let Some(known) = known.filter(|known| known.evidence.event.seq == event.seq) {
            return Ok(Some(known.clone()));
        }
        let unusable = |e: &dyn std::fmt::Display| {
            BrokerError::Unavailable(format!("the policy set in force at {at} cannot be read: {e}"))
        };
        let (body, snapshot) = self
            .rt
            .block_on(policy_history::snapshot(&**store, &event, &digest))
            .map_err(|e| unusable(&e))?;
        let engine = snapshot.engine().map_err(|e| unusable(&e))?;
        let proof = self
            .inclusion_proofs(&BTreeSet::from([event.seq]), end)?
            .pop()
            .ok_or_else(|| unusable(&format!("event {} has no inclusion proof", event.seq)))?;
        Ok(Some(Found {
            evidence: PolicyEvidence { event, proof, snapshot: body },
            digest,
            policy_hash: engine.hash().to_owned(),
            resources: engine.directory().resources().keys().cloned().collect(),
            rows: eligibility_rows(&engine),
        }))
    }
}

/// A policy set in force at one of the period's ends, found in the log.
#[derive(Clone)]
struct Found {
    evidence: PolicyEvidence,
    digest: String,
    policy_hash: String,
    resources: Vec<String>,
    rows: Vec<EligibilityRow>,
}

/// Who may ask for what under `engine` (as `ward report verify` works it out again).
pub fn eligibility_rows(engine: &PolicyEngine) -> Vec<EligibilityRow> {
    ward_monitor::rules::eligibility(engine)
        .into_iter()
        .map(|e| EligibilityRow { user: e.user, resource: e.resource, role: e.role })
        .collect()
}

fn eligible_at(at: Timestamp, found: Option<&Found>, evidence: &str) -> EligibleAt {
    EligibleAt {
        at,
        in_force: found.map(|found| PolicyInForce {
            seq: found.evidence.event.seq,
            since: found.evidence.event.occurred_at,
            policy_hash: found.policy_hash.clone(),
            snapshot: found.digest.clone(),
            evidence: evidence.to_owned(),
        }),
        rows: found.map(|found| found.rows.clone()).unwrap_or_default(),
    }
}

/// The files of `integrity/` besides the proofs.
struct IntegrityFiles<'a> {
    key: &'a str,
    start: Option<&'a CheckpointRecord>,
    end: &'a CheckpointRecord,
    frontier: &'a Frontier,
    consistency: Option<&'a ward_api::ConsistencyProof>,
}

/// Writes every file of the pack but the appendix (written as it was read) and the manifest.
fn write_files(
    pack: &mut PackWriter,
    report: &Report,
    files: &IntegrityFiles<'_>,
    proofs: &[InclusionProof],
) -> Result<(), BrokerError> {
    let write = |pack: &mut PackWriter, path: &str, bytes: &[u8]| pack.write(path, bytes).map_err(io_error);
    write(pack, layout::KEY, format!("{}\n", files.key).as_bytes())?;
    write(pack, layout::CHECKPOINT_END, files.end.note.as_bytes())?;
    if let Some(start) = files.start {
        write(pack, layout::CHECKPOINT_START, start.note.as_bytes())?;
    }
    let frontier_file = FrontierFile {
        size: files.frontier.size(),
        nodes: files.frontier.nodes().iter().map(hex::encode).collect(),
    };
    write(pack, layout::FRONTIER, &json(&frontier_file)?)?;
    if let Some(consistency) = files.consistency {
        write(pack, layout::CONSISTENCY, &json(consistency)?)?;
    }
    let mut lines = Vec::new();
    for proof in proofs {
        serde_json::to_writer(&mut lines, proof)
            .map_err(|e| BrokerError::Unavailable(format!("could not encode a proof: {e}")))?;
        lines.push(b'\n');
    }
    write(pack, layout::PROOFS, &lines)?;
    write(pack, layout::VERIFY, transcript(report).as_bytes())?;
    for (name, csv) in render::tables(report)
        .map_err(|e| BrokerError::Unavailable(format!("a table could not be written: {e}")))?
    {
        write(pack, &layout::table(name), &csv)?;
    }
    let html = render::html(report)
        .map_err(|e| BrokerError::Unavailable(format!("the page could not be rendered: {e}")))?;
    write(pack, layout::INDEX_HTML, html.as_bytes())?;
    write(pack, layout::OSCAL, &json(&oscal::assessment_results(report))?)?;
    write(pack, layout::REPORT_JSON, &json(report)?)?;
    Ok(())
}

/// The seed asked for, or 16 random bytes.
fn seed_of(request: &ReportRequest) -> Result<Vec<u8>, BrokerError> {
    match &request.seed {
        Some(seed) => hex::decode(seed).map_err(|_| BrokerError::Invalid("the seed is not hex".into())),
        None => {
            let mut seed = vec![0; 16];
            getrandom::fill(&mut seed)
                .map_err(|e| BrokerError::Unavailable(format!("no randomness for the seed: {e}")))?;
            Ok(seed)
        }
    }
}

/// The rules switched on, with their severities, by id.
fn rules_in_force(rules: &ward_rules::RulesConfig) -> Vec<(String, String)> {
    let mut on: Vec<(String, String)> = RuleId::ALL
        .iter()
        .filter(|rule| rules.settings(**rule).enabled)
        .map(|rule| (rule.as_str().to_owned(), rules.settings(*rule).severity.as_str().to_owned()))
        .collect();
    on.sort();
    on
}

fn signed_by(record: &CheckpointRecord, key: &str) -> bool {
    checkpoint::parse_verifier_key(key)
        .is_ok_and(|(name, key)| checkpoint::verify(&record.note, &name, &key).is_ok())
}

fn json<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, BrokerError> {
    let mut bytes = serde_json::to_vec_pretty(value)
        .map_err(|e| BrokerError::Unavailable(format!("could not encode JSON: {e}")))?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// `integrity/verify.txt`: what verifying the appendix found, as `ward audit verify` says it.
fn transcript(report: &Report) -> String {
    let integrity = &report.integrity;
    let mut text = format!(
        "verified events seq {} to {} of the log {}\nagainst the end checkpoint (size {}, root {})\n",
        integrity.first_seq,
        integrity.last_seq,
        report.cover.organisation,
        integrity.end.size,
        integrity.end.root
    );
    match &integrity.start {
        Some(start) => text.push_str(&format!(
            "from the tree of the start checkpoint (size {}, root {})\n",
            start.size, start.root
        )),
        None => text.push_str("from the log's first event\n"),
    }
    if integrity.problems.is_empty() {
        text.push_str(&format!("OK: {} of {} events verify\n", integrity.events_verified, integrity.events));
    } else {
        for problem in &integrity.problems {
            text.push_str(problem);
            text.push('\n');
        }
        text.push_str(&format!("FAILED: {} problems\n", integrity.problems.len()));
    }
    text
}
