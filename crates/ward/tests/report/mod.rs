//! `ward report` and `ward report verify` on the quickstart's played history: the numbers of
//! every section against the events themselves (read back with `ward audit export`), the pack
//! checked offline and any change to it caught, its OSCAL accepted by compliance-trestle and its
//! page rendered by Chromium, and bad input refused without a file written.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use jiff::Timestamp;
use serde_json::Value;

use super::{PlayedQuickstart, stderr};

fn json_of(out: &std::process::Output) -> Value {
    assert!(out.status.success(), "{}", stderr(out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn count(values: &Value) -> usize {
    values.as_object().map_or(0, |m| m.values().map(|v| v.as_u64().unwrap() as usize).sum())
}

#[test]
fn an_evidence_pack_of_the_played_history() {
    let quickstart = PlayedQuickstart::start();
    let carol = quickstart.token("carol");
    let out_dir = quickstart.dir.path().join("evidence");
    let out = out_dir.to_str().unwrap();
    let made = json_of(&quickstart.ward(
        &[
            "report",
            "--from",
            "40d",
            "--to",
            "now",
            "--framework",
            "iso27001",
            "--out",
            out,
            "--seed",
            "c0ffee",
            "-o",
            "json",
        ],
        Some(&carol),
    ));
    let report: Value = serde_json::from_slice(&std::fs::read(out_dir.join("report.json")).unwrap()).unwrap();
    let from: Timestamp = report["cover"]["from"].as_str().unwrap().parse().unwrap();
    let to: Timestamp = report["cover"]["to"].as_str().unwrap().parse().unwrap();
    assert_eq!(made["seed"], "c0ffee");

    // Every event, exported as the API gives them, and those of the period.
    let export = quickstart.ward(&["audit", "export", "--format", "jsonl"], Some(&carol));
    assert!(export.status.success(), "{}", stderr(&export));
    let events: Vec<Value> = export
        .stdout
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    let in_period: Vec<&Value> = events
        .iter()
        .filter(|e| {
            let at: Timestamp = e["occurred_at"].as_str().unwrap().parse().unwrap();
            from <= at && at < to
        })
        .collect();
    let of = |t: &str| in_period.iter().filter(|e| e["type"] == t).count();

    // 3. Population.
    let population = &report["population"];
    assert_eq!(population["requests"].as_array().unwrap().len(), of("request.created"));
    assert_eq!(count(&population["requests_by_state"]), of("request.created"));
    let grants: BTreeSet<&str> = in_period.iter().filter_map(|e| e["grant_id"].as_str()).collect();
    assert_eq!(population["grants"].as_array().unwrap().len(), grants.len());
    assert!(grants.len() > 20, "a month of history has grants: {}", grants.len());
    // 6. Revocation: each end, automatic or not; the late expiry the history plants.
    let revocation = &report["revocation"];
    assert_eq!(revocation["automatic"].as_u64().unwrap() as usize, of("grant.expired"));
    assert_eq!(revocation["manual"].as_u64().unwrap() as usize, of("grant.released") + of("grant.revoked"));
    let tolerance = revocation["tolerance_ms"].as_i64().unwrap();
    let late = in_period
        .iter()
        .filter(|e| e["type"] == "grant.expired" && e["details"]["lag_ms"].as_i64().unwrap() > tolerance)
        .count();
    assert_eq!(revocation["breaches"].as_u64().unwrap() as usize, late);
    assert!(late >= 1, "the history's late expiry");
    // 5. Exceptions: the break-glass grant, and refused self-approvals as the log has them.
    let rows = report["exceptions"]["rows"].as_array().unwrap();
    let kind = |k: &str| rows.iter().filter(|r| r["kind"] == k).count();
    assert_eq!(kind("breakglass"), of("breakglass.used"));
    assert!(kind("breakglass") >= 1);
    // A break-glass grant is one of its own kind, not a grant without approval.
    let breakglass: BTreeSet<&str> =
        rows.iter().filter(|r| r["kind"] == "breakglass").filter_map(|r| r["grant_id"].as_str()).collect();
    assert!(
        rows.iter()
            .filter(|r| r["kind"] == "without-approval")
            .all(|r| !breakglass.contains(r["grant_id"].as_str().unwrap_or(""))),
        "{rows:?}"
    );
    let self_approvals = in_period
        .iter()
        .filter(|e| {
            e["type"] == "access.denied"
                && matches!(e["details"]["action"].as_str(), Some("approve" | "deny"))
                && e["request_id"].is_string()
                && e["subject"] == e["actor"]
        })
        .count();
    assert_eq!(kind("self-approval-refused"), self_approvals);
    // 7. Use: every use counted, none outside a window.
    let uses: u64 = in_period
        .iter()
        .filter(|e| e["type"] == "access.used" && e["grant_id"].is_string())
        .map(|e| match (&e["details"]["summary"], e["details"]["action"].as_str()) {
            (Value::Bool(true), _) => e["details"]["count"].as_u64().unwrap(),
            (_, Some("logs.follow")) => 0,
            _ => 1,
        })
        .sum();
    let counted: u64 =
        report["usage"]["rows"].as_array().unwrap().iter().map(|u| u["uses"].as_u64().unwrap()).sum();
    assert_eq!(counted, uses);
    assert_eq!(report["usage"]["outside_window"].as_array().unwrap().len(), 0);
    // 9 and 10. Findings opened in the period; changes (the policies recorded in force).
    let opened = report["monitoring"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["opened_at"].is_string())
        .count();
    assert_eq!(opened, of("finding.opened"));
    let changes = [
        "policy.changed",
        "policy.rejected",
        "config.changed",
        "directory.reloaded",
        "token.created",
        "token.revoked",
        "audit.key_changed",
    ];
    assert_eq!(report["changes"].as_array().unwrap().len(), changes.iter().map(|t| of(t)).sum::<usize>());
    // 4. The sample, sized as the population asks, its events all of the period.
    let sample = &report["sample"];
    assert_eq!(sample["population"].as_u64().unwrap() as usize, grants.len());
    assert_eq!(sample["size"].as_u64().unwrap(), sample["grants"].as_array().unwrap().len() as u64);
    let seqs: BTreeSet<i64> = in_period.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    for sampled in sample["grants"].as_array().unwrap() {
        for seq in sampled["seqs"].as_array().unwrap() {
            assert!(seqs.contains(&seq.as_i64().unwrap()));
        }
    }
    // 2. ISO 27001's controls.
    let controls: Vec<&str> =
        report["controls"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(controls, ["A.5.15", "A.5.16", "A.5.18", "A.8.2", "A.8.15", "A.8.16", "A.8.17"]);

    // Offline, against the key from the server.
    let key =
        String::from_utf8(quickstart.ward(&["audit", "key"], Some(&carol)).stdout).unwrap().trim().to_owned();
    let verified = quickstart.ward(&["report", "verify", out, "--key", &key], None);
    assert!(verified.status.success(), "{}{}", String::from_utf8_lossy(&verified.stdout), stderr(&verified));
    assert!(String::from_utf8_lossy(&verified.stdout).starts_with("OK: "));
    // A changed copy fails, saying what changed.
    let copy = quickstart.dir.path().join("changed");
    super::copy_dir(&out_dir, &copy);
    let csv = copy.join("evidence/revocation.csv");
    std::fs::write(&csv, std::fs::read_to_string(&csv).unwrap().replace(",true\n", ",false\n")).unwrap();
    let refused =
        quickstart.ward(&["report", "verify", copy.to_str().unwrap(), "--key", &key, "-o", "json"], None);
    assert_eq!(refused.status.code(), Some(1));
    let checked: Value = serde_json::from_slice(&refused.stdout).unwrap();
    assert!(checked["problems"].to_string().contains("evidence/revocation.csv does not match"), "{checked}");

    trestle_accepts(&out_dir.join("oscal/assessment-results.json"));
    chromium_renders(&out_dir.join("index.html"));
}

#[test]
fn bad_input_is_refused_and_nothing_is_written() {
    let quickstart = PlayedQuickstart::start();
    let carol = quickstart.token("carol");
    let dir = quickstart.dir.path();
    let out = dir.join("pack");
    let out = out.to_str().unwrap();
    let run = |args: &[&str], token: Option<&str>| quickstart.ward(args, token);
    // From after to: the server says so (422), exit 1.
    let backwards = run(
        &["report", "--from", "2026-01-02T00:00:00Z", "--to", "2026-01-01T00:00:00Z", "--out", out],
        Some(&carol),
    );
    assert_eq!(backwards.status.code(), Some(1), "{}", stderr(&backwards));
    assert!(stderr(&backwards).contains("must end after it starts"), "{}", stderr(&backwards));
    // A period ending in the future.
    let future = run(&["report", "--from", "1d", "--to", "2999-01-01T00:00:00Z", "--out", out], Some(&carol));
    assert_eq!(future.status.code(), Some(1));
    assert!(stderr(&future).contains("after now"), "{}", stderr(&future));
    // Not an auditor.
    let alice = quickstart.token("alice");
    let forbidden = run(&["report", "--from", "1d", "--to", "now", "--out", out], Some(&alice));
    assert_eq!(forbidden.status.code(), Some(1));
    // An --out that exists, or cannot be written: exit 2 before the server is asked.
    std::fs::create_dir(dir.join("taken")).unwrap();
    let taken = run(
        &["report", "--from", "1d", "--to", "now", "--out", dir.join("taken").to_str().unwrap()],
        Some(&carol),
    );
    assert_eq!(taken.status.code(), Some(2));
    let unwritable =
        run(&["report", "--from", "1d", "--to", "now", "--out", "/proc/ward-report/pack"], Some(&carol));
    assert_eq!(unwritable.status.code(), Some(2), "{}", stderr(&unwritable));
    assert!(stderr(&unwritable).contains("cannot write the report"), "{}", stderr(&unwritable));
    // Nothing half-written anywhere.
    let left: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!left.iter().any(|name| name.contains("pack") || name.contains("partial")), "{left:?}");
    // verify: not a pack, and not a directory.
    let empty = dir.join("empty");
    std::fs::create_dir(&empty).unwrap();
    assert_eq!(run(&["report", "verify", empty.to_str().unwrap()], None).status.code(), Some(1));
    assert_eq!(
        run(&["report", "verify", dir.join("nowhere").to_str().unwrap()], None).status.code(),
        Some(2)
    );
}

/// compliance-trestle (PyPI) imports and validates the OSCAL assessment results, and refuses
/// them with a field OSCAL does not have (so this check can fail).
fn trestle_accepts(file: &Path) {
    let trestle = std::env::var("WARD_TRESTLE").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/trestle-venv/bin/trestle").to_owned()
    });
    if !Path::new(&trestle).exists() {
        assert!(std::env::var_os("CI").is_none(), "CI is set but compliance-trestle is not at {trestle}");
        eprintln!("note: compliance-trestle not installed ({trestle}); OSCAL validation skipped");
        return;
    }
    let workspace = tempfile::tempdir().unwrap();
    let trestle_in =
        |args: &[&str]| Command::new(&trestle).args(args).current_dir(workspace.path()).output().unwrap();
    let init = trestle_in(&["init"]);
    assert!(init.status.success(), "{}", stderr(&init));
    let imported = trestle_in(&["import", "-f", file.to_str().unwrap(), "-o", "ward"]);
    assert!(
        imported.status.success(),
        "trestle import: {}{}",
        String::from_utf8_lossy(&imported.stdout),
        stderr(&imported)
    );
    let validated = trestle_in(&["validate", "-a"]);
    assert!(
        validated.status.success(),
        "trestle validate: {}{}",
        String::from_utf8_lossy(&validated.stdout),
        stderr(&validated)
    );
    assert!(String::from_utf8_lossy(&validated.stdout).contains("VALID"));
    let mut bad: Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    bad["assessment-results"]["results"][0]["not-oscal"] = Value::Bool(true);
    let bad_file = workspace.path().join("bad.json");
    std::fs::write(&bad_file, serde_json::to_vec(&bad).unwrap()).unwrap();
    let refused = trestle_in(&["import", "-f", bad_file.to_str().unwrap(), "-o", "bad"]);
    assert!(!refused.status.success(), "trestle took a field OSCAL does not have");
}

/// Debian's Chromium, headless, renders the page: every section is in the DOM it built, and the
/// page asked for nothing outside itself (its policy allows nothing; a try would be logged).
fn chromium_renders(page: &Path) {
    let chromium = std::env::var("WARD_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !Path::new(&chromium).exists() {
        assert!(std::env::var_os("CI").is_none(), "CI is set but Chromium is not at {chromium}");
        eprintln!("note: Chromium not installed; the page's rendering is not checked");
        return;
    }
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(&chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
            &format!("--user-data-dir={}", profile.path().display()),
            "--dump-dom",
            &format!("file://{}", page.display()),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let dom = String::from_utf8_lossy(&out.stdout);
    for id in ward_report::render::SECTION_IDS {
        assert!(dom.contains(&format!("<section id=\"{id}\">")), "section {id} not rendered");
    }
    assert!(dom.contains("<svg"), "the charts");
    let log = stderr(&out);
    assert!(!log.contains("Content Security Policy") && !log.contains("Uncaught"), "{log}");
}
