//! `ward report`: asks the server for the evidence pack of a period and writes it to `--out`
//! whole or not at all: the archive is downloaded and unpacked into a hidden directory beside
//! `--out`, checked against the server's verifier key like `ward report verify` would, and only
//! then renamed into place. `ward report verify DIR` checks a pack offline.

use std::fs::File;
use std::io::{BufWriter, Read, Seek};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::json;
use ward_api::{AuditKey, ReportBody};
use ward_report::check::{CheckError, Checked, check};
use ward_report::pack::{MANIFEST, SEAL, is_pack_path};

use crate::cli::ReportArgs;
use crate::client::{CliError, Client, typed};

/// The most one file of a pack may weigh when unpacked (a year of a large organisation's
/// events is a few GB).
const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024 * 1024;

pub async fn make(client: &Client, args: &ReportArgs, json: bool) -> Result<ExitCode, CliError> {
    let (Some(from), Some(to), Some(out)) = (&args.from, &args.to, &args.out) else {
        return Err(CliError::Usage("give --from, --to and --out (or `ward report verify DIR`)".into()));
    };
    let from = period_time("--from", from)?;
    let to = if to == "now" { None } else { Some(period_time("--to", to)?) };
    if out.exists() {
        return Err(CliError::Usage(format!(
            "--out {} exists already; give a directory that does not",
            out.display()
        )));
    }
    // Made before asking, so that a directory ward cannot write to fails at once.
    let partial = Partial::new(out)?;
    let key: AuditKey = typed(&client.get("/v1/audit/key", &[]).await?)?;
    let body = ReportBody { from, to, framework: Some(args.framework.clone()), seed: args.seed.clone() };
    let progress = crate::progress::spinner("making the report on the server");
    let archive_path = partial.path.join("pack.tar");
    let mut archive = BufWriter::new(File::create_new(&archive_path).map_err(|e| unwritable(out, &e))?);
    client
        .download("/v1/reports", &body, &mut archive, &mut |received| {
            progress.set_message(format!("downloading the report: {}", crate::progress::megabytes(received)));
        })
        .await?;
    progress.set_message("unpacking and checking");
    let mut archive = archive.into_inner().map_err(|e| unwritable(out, e.error()))?;
    archive.rewind().map_err(|e| unwritable(out, &e))?;
    let pack = partial.path.join("pack");
    unpack(archive, &pack)?;
    let checked = check(&pack, Some(&key.verifier_key)).map_err(|e| CliError::Usage(e.to_string()))?;
    progress.finish_and_clear();
    if !checked.is_valid() {
        return Err(CliError::Refused(format!(
            "the pack from the server does not verify, so it was not written: {}",
            checked.problems.join("; ")
        )));
    }
    std::fs::rename(&pack, out).map_err(|e| unwritable(out, &e))?;
    drop(partial);
    let report =
        std::fs::read(out.join(ward_report::layout::REPORT_JSON)).map_err(|e| unwritable(out, &e))?;
    let report: ward_report::model::Report = serde_json::from_slice(&report)
        .map_err(|e| CliError::Usage(format!("the pack's report.json: {e}")))?;
    if json {
        let summary = json!({
            "dir": out,
            "framework": args.framework,
            "from": report.cover.from,
            "to": report.cover.to,
            "events": checked.events,
            "requests": report.population.requests.len(),
            "grants": report.population.grants.len(),
            "sampled": report.sample.size,
            "seed": report.sample.seed,
            "files": checked.files,
            "key": checked.key,
        });
        crate::print_json(&summary)?;
    } else {
        say!(
            "wrote {}: {} requests, {} grants ({} sampled, seed {}), {} events from {} to {}",
            out.display(),
            report.population.requests.len(),
            report.population.grants.len(),
            report.sample.size,
            report.sample.seed,
            checked.events,
            report.cover.from,
            report.cover.to
        );
        say!("verified with the key {}; open {}/index.html", checked.key, out.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// A time as given (RFC 3339), or a duration ago on the second (`30d`: a period people read).
fn period_time(flag: &str, text: &str) -> Result<jiff::Timestamp, CliError> {
    let at = crate::parse_time(flag, text)?;
    if text.parse::<jiff::Timestamp>().is_ok() {
        return Ok(at);
    }
    jiff::Timestamp::from_second(at.as_second()).map_err(|e| CliError::Usage(format!("{flag}: {e}")))
}

/// `ward report verify DIR [--key KEY]`.
pub fn verify(dir: &Path, key: Option<&str>, json: bool) -> Result<ExitCode, CliError> {
    let progress = crate::progress::spinner("checking the pack");
    let checked = check(dir, key).map_err(|e| match e {
        CheckError::NotADirectory(_) | CheckError::Key(_) => CliError::Usage(e.to_string()),
    });
    progress.finish_and_clear();
    let checked = checked?;
    if json {
        crate::print_json(&serde_json::to_value(&checked).map_err(|e| CliError::Usage(e.to_string()))?)?;
    } else {
        print(dir, &checked);
    }
    Ok(if checked.is_valid() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn print(dir: &Path, checked: &Checked) {
    if checked.is_valid() {
        say!(
            "OK: {} is whole: {} files, {} events tied to the signed log, {} inclusion proofs, \
             eligibility worked out again from {} policy sets",
            dir.display(),
            checked.files,
            checked.events,
            checked.proofs,
            checked.policy_sets
        );
        say!("sealed by {}", checked.key);
        if checked.key_from_pack {
            say!("this is the key the pack names: compare it with `ward audit key`, or pass --key");
        }
    } else {
        for problem in &checked.problems {
            say!("INVALID: {problem}");
        }
        say!("FAILED: {} problems in {}", checked.problems.len(), dir.display());
    }
}

/// The hidden directory a pack is made in beside `--out`; removed unless renamed into place.
struct Partial {
    path: PathBuf,
}

impl Partial {
    fn new(out: &Path) -> Result<Self, CliError> {
        let name = out
            .file_name()
            .ok_or_else(|| CliError::Usage(format!("--out {} names no directory", out.display())))?;
        let parent = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let path = parent.join(format!(".{}.partial-{}", name.to_string_lossy(), std::process::id()));
        std::fs::create_dir(&path).map_err(|e| unwritable(out, &e))?;
        Ok(Self { path })
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

fn unwritable(out: &Path, error: &dyn std::fmt::Display) -> CliError {
    CliError::Usage(format!("cannot write the report to {}: {error}", out.display()))
}

/// Unpacks the server's archive into `into`: regular files and directories only, each at a
/// path a pack may hold, none twice.
fn unpack(archive: impl Read, into: &Path) -> Result<(), CliError> {
    let bad = |why: String| CliError::Refused(format!("the server's archive is not a pack: {why}"));
    std::fs::create_dir(into).map_err(|e| unwritable(into, &e))?;
    let mut archive = tar::Archive::new(archive);
    for entry in archive.entries().map_err(|e| bad(e.to_string()))? {
        let mut entry = entry.map_err(|e| bad(e.to_string()))?;
        let path = entry.path().map_err(|e| bad(e.to_string()))?.to_string_lossy().into_owned();
        let path = path.trim_start_matches("./").trim_end_matches('/').to_owned();
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            if !path.is_empty() && path != "." && !is_pack_path(&path) {
                return Err(bad(format!("a directory `{path}`")));
            }
            continue;
        }
        if !kind.is_file() {
            return Err(bad(format!("`{path}` is not a regular file")));
        }
        if !is_pack_path(&path) && path != MANIFEST && path != SEAL {
            return Err(bad(format!("a file at `{path}`")));
        }
        if entry.size() > MAX_FILE_BYTES {
            return Err(bad(format!("`{path}` is larger than any pack file")));
        }
        let target = into.join(&path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| unwritable(into, &e))?;
        }
        let mut file = File::create_new(&target).map_err(|e| bad(format!("`{path}`: {e}")))?;
        std::io::copy(&mut entry, &mut file).map_err(|e| unwritable(into, &e))?;
    }
    Ok(())
}
