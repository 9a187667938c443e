//! The `ward` binary as users and the acceptance checks drive it: `ward serve` on a copy of the
//! quickstart, the client commands with `-o json`, the contract's exit codes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const WARD: &str = env!("CARGO_BIN_EXE_ward");

#[path = "cli/replicas.rs"]
mod replicas;
mod report;

struct Server {
    child: Child,
    url: String,
    config: PathBuf,
    env: Vec<(String, String)>,
    _dir: tempfile::TempDir,
}

/// The environment that points ward at a PostgreSQL database, if one is given.
fn database_env(database_url: Option<String>) -> Vec<(String, String)> {
    database_url.map(|url| ("WARD_DATABASE_URL".to_owned(), url)).into_iter().collect()
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            if entry.file_name() != "data" {
                copy_dir(&entry.path(), &target);
            }
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

impl Server {
    fn start(database_url: Option<String>) -> Self {
        Self::start_in(tempfile::tempdir().unwrap(), database_env(database_url))
    }

    /// Stops with SIGTERM, as a service manager would, and returns the exit code.
    fn terminate(&mut self) -> Option<i32> {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        self.child.wait().unwrap().code()
    }

    /// `ward logs tail RESOURCE --lines N --follow` as `token`'s holder, given time to start
    /// following.
    fn follow(&self, token: &str, resource: &str, lines: usize) -> Child {
        let follower = Command::new(WARD)
            .args(["logs", "tail", resource, "--lines", &lines.to_string(), "--follow"])
            .env("WARD_URL", &self.url)
            .env("WARD_TOKEN", token)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(700));
        follower
    }

    /// The same world and data directory, served again.
    fn restart(mut self) -> Self {
        assert_eq!(self.terminate(), Some(0), "ward exits cleanly on SIGTERM");
        let dir = tempfile::TempDir::new().unwrap();
        let old = std::mem::replace(&mut self._dir, dir);
        let database_url = self.env.iter().find(|(k, _)| k == "WARD_DATABASE_URL").map(|(_, v)| v.clone());
        Self::start_in(old, database_env(database_url))
    }

    /// Serves a copy of the quickstart kept in `dir`, with `extra` settings from the environment.
    fn start_in(dir: tempfile::TempDir, extra: Vec<(String, String)>) -> Self {
        Self::start_with(dir, extra, &[])
    }

    /// [`Self::start_in`], with `flags` after `ward serve --config FILE`.
    fn start_with(dir: tempfile::TempDir, extra: Vec<(String, String)>, flags: &[&str]) -> Self {
        let world = dir.path().join("quickstart");
        if !world.exists() {
            copy_dir(
                &PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/quickstart")),
                &world,
            );
        }
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut env = vec![
            ("WARD_LISTEN".to_owned(), format!("127.0.0.1:{port}")),
            ("WARD_DATA_DIR".to_owned(), dir.path().join("data").display().to_string()),
        ];
        env.extend(extra);
        let config = world.join("ward.toml");
        let child = Command::new(WARD)
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .args(flags)
            .envs(env.iter().cloned())
            .env("WARD_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let server = Self { child, url: format!("http://127.0.0.1:{port}"), config, env, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "ward serve did not start");
            std::thread::sleep(Duration::from_millis(2));
        }
        server
    }

    fn token(&self, user: &str) -> String {
        let out = Command::new(WARD)
            .args(["admin", "token", "create", user, "--config"])
            .arg(&self.config)
            .envs(self.env.iter().cloned())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        assert!(token.starts_with("ward_") && !token.contains('\n'), "only the token is printed");
        token
    }

    /// A local command (reads the configuration and the store directly).
    fn local(&self, args: &[&str]) -> Output {
        Command::new(WARD)
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .envs(self.env.iter().cloned())
            .output()
            .unwrap()
    }

    fn ward(&self, token: &str, args: &[&str]) -> Output {
        Command::new(WARD).args(args).env("WARD_URL", &self.url).env("WARD_TOKEN", token).output().unwrap()
    }

    /// Runs a command with `-o json`; returns exit code and parsed JSON (Null when none).
    fn json(&self, token: &str, args: &[&str]) -> (i32, Value) {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        let out = self.ward(token, &all);
        let value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        (out.status.code().unwrap(), value)
    }
}

/// `ward serve` on `config`, expected to refuse to start (exit 2, said on stderr).
fn serve_refused(config: &Path, data: &Path) -> Output {
    let out = Command::new(WARD)
        .args(["serve", "--config"])
        .arg(config)
        .env("WARD_DATA_DIR", data)
        .env("WARD_LISTEN", "127.0.0.1:0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    out
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn walkthrough(server: &Server) {
    let (alice, bob, admin, carol) =
        (server.token("alice"), server.token("bob"), server.token("admin"), server.token("carol"));
    // A dry run says what would happen and files nothing.
    let ask = ["request", "logs:payments-api", "--role", "read", "--for", "30m", "--reason", "INC-4312"];
    let (code, explained) = server.json(&alice, &[&ask[..], &["--dry-run"]].concat());
    assert_eq!(code, 0);
    assert_eq!(
        (explained["decision"].as_str(), explained["approvers"][0].as_str()),
        (Some("pending"), Some("bob"))
    );
    let (code, explained) = server.json(&carol, &[&ask[..], &["--dry-run"]].concat());
    assert_eq!((code, explained["decision"].as_str()), (1, Some("denied")));
    let (_, none) = server.json(&alice, &["requests", "--mine"]);
    assert_eq!(none, serde_json::json!([]), "a dry run files nothing");
    let (code, request) = server.json(
        &alice,
        &[
            "request",
            "logs:payments-api",
            "--role",
            "read",
            "--for",
            "30m",
            "--reason",
            "INC-4312 checkout 500s",
        ],
    );
    assert_eq!(code, 0);
    assert_eq!(request["state"], "pending");
    let id = request["id"].as_str().unwrap().to_owned();

    let (_, pending) = server.json(&bob, &["requests", "--state", "pending"]);
    assert_eq!(pending[0]["id"], id.as_str());

    let own = server.ward(&alice, &["approve", &id, "--comment", "ok"]);
    assert_eq!(own.status.code(), Some(1));
    assert!(stderr(&own).contains("own request"), "{}", stderr(&own));
    let not_lead = server.ward(&admin, &["approve", &id]);
    assert_eq!(not_lead.status.code(), Some(1));

    let (code, approved) = server.json(&bob, &["approve", &id, "--comment", "ok"]);
    assert_eq!(code, 0);
    let grant_id = approved["grant_id"].as_str().unwrap().to_owned();
    let (_, grant) = server.json(&alice, &["show", &grant_id]);
    assert_eq!(grant["state"], "active");

    let check = ["check", "--principal", "alice", "--action", "read", "--resource", "logs:payments-api"];
    let (code, allowed) = server.json(&alice, &check);
    assert_eq!((code, allowed["allowed"].as_bool()), (0, Some(true)));
    assert_eq!(allowed["grant_id"], grant_id.as_str());

    let (code, revoked) = server.json(&admin, &["revoke", &grant_id, "--reason", "incident closed"]);
    assert_eq!((code, revoked["state"].as_str()), (0, Some("revoked")));
    let (code, denied) = server.json(&alice, &check);
    assert_eq!((code, denied["allowed"].as_bool()), (1, Some(false)));
    assert!(denied["reason"].as_str().unwrap().contains("no active grant"));

    // Friendly errors and exit codes.
    let unknown =
        server.ward(&alice, &["request", "logs:nope", "--role", "read", "--for", "30m", "--reason", "x"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        stderr(&unknown).contains("logs:checkout-web, logs:ledger, logs:payments-api"),
        "{}",
        stderr(&unknown)
    );
    let too_long = server.ward(
        &alice,
        &["request", "logs:payments-api", "--role", "read-unmasked", "--for", "2h", "--reason", "x"],
    );
    assert_eq!(too_long.status.code(), Some(1));
    assert!(stderr(&too_long).contains("maximum of 1h"), "{}", stderr(&too_long));
    let usage = server
        .ward(&alice, &["request", "logs:payments-api", "--role", "read", "--for", "soon", "--reason", "x"]);
    assert_eq!(usage.status.code(), Some(2));
    let no_token = server.ward("", &["requests"]);
    assert_eq!(no_token.status.code(), Some(2));
    assert!(stderr(&no_token).contains("WARD_TOKEN"), "{}", stderr(&no_token));

    // A short grant ends by itself: the scheduler expires it without anyone acting.
    let (_, short) = server.json(
        &alice,
        &["request", "logs:payments-api", "--role", "read", "--for", "1s", "--reason", "quick look"],
    );
    let (_, approved) = server.json(&bob, &["approve", short["id"].as_str().unwrap()]);
    let short_grant = approved["grant_id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (_, grant) = server.json(&alice, &["show", &short_grant]);
        if grant["state"] == "expired" {
            break;
        }
        assert!(Instant::now() < deadline, "the grant did not expire by itself: {grant}");
        std::thread::sleep(Duration::from_millis(200));
    }

    // Auto-approval for on-call with an incident ticket.
    let dave = server.token("dave");
    let (_, auto) = server.json(
        &dave,
        &[
            "request",
            "logs:checkout-web",
            "--role",
            "read",
            "--for",
            "10m",
            "--reason",
            "INC-7 outage",
            "--ticket",
            "INC-7",
        ],
    );
    assert_eq!(auto["state"], "approved");

    let (code, events) = server.json(&carol, &["audit", "events"]);
    assert_eq!(code, 0);
    let types: Vec<&str> = events.as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    for expected in [
        "request.created",
        "approval.granted",
        "grant.activated",
        "access.used",
        "grant.revoked",
        "grant.expired",
        "access.denied",
    ] {
        assert!(types.contains(&expected), "no {expected} in {types:?}");
    }
    let (_, revocations) = server.json(&carol, &["audit", "events", "--type", "grant.revoked"]);
    assert_eq!(revocations[0]["actor"], "admin");
    assert_eq!(revocations[0]["reason"], "incident closed");

    // The log verifies offline, straight from the store, while the server runs.
    let out = server.local(&["audit", "verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("valid: ")
            && text.contains("every hash, the chain, the tree head and")
            && text.contains("checkpoint"),
        "{text}"
    );
    let out = server.local(&["audit", "verify", "--format", "json"]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["valid"], true);
    assert_eq!(report["events"], report["size"]);
    assert!(report["size"].as_u64().unwrap() >= events.as_array().unwrap().len() as u64);
    assert_eq!(report["root"].as_str().unwrap().len(), 64);

    // An auditor signs a checkpoint and keeps it elsewhere; the log verifies against it.
    let signed = server.ward(&carol, &["audit", "checkpoint", "--now"]);
    assert_eq!(signed.status.code(), Some(0), "{}", stderr(&signed));
    let note = String::from_utf8(signed.stdout).unwrap();
    assert!(note.starts_with("ward.quickstart/audit\n"), "{note}");
    let kept = server._dir.path().join("kept.checkpoint");
    std::fs::write(&kept, &note).unwrap();
    let latest = server.ward(&alice, &["audit", "checkpoint"]);
    assert_eq!(String::from_utf8(latest.stdout).unwrap(), note, "anyone can read the latest");
    let out = server.local(&["audit", "verify", "--checkpoint", kept.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    let key = String::from_utf8(server.ward(&carol, &["audit", "key"]).stdout).unwrap();
    assert!(key.starts_with("ward.quickstart/audit+"), "{key}");
    let out = server.local(&["audit", "verify", "--key", key.trim(), "--checkpoint", kept.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    // Proofs, saved and checked offline with nothing but the file and the key.
    let proof = server.ward(&carol, &["audit", "prove", "--seq", "1"]);
    assert_eq!(proof.status.code(), Some(0), "{}", stderr(&proof));
    let saved = server._dir.path().join("proof.json");
    std::fs::write(&saved, &proof.stdout).unwrap();
    let check = Command::new(WARD)
        .args(["audit", "prove", "--check", saved.to_str().unwrap(), "--key", key.trim()])
        .output()
        .unwrap();
    assert_eq!(check.status.code(), Some(0), "{}", String::from_utf8_lossy(&check.stdout));
    assert!(String::from_utf8_lossy(&check.stdout).starts_with("valid: seq=1 is in the tree"));
    let mut forged: Value = serde_json::from_slice(&proof.stdout).unwrap();
    forged["leaf_hash"] = Value::String("00".repeat(32));
    std::fs::write(&saved, forged.to_string()).unwrap();
    let check =
        Command::new(WARD).args(["audit", "prove", "--check", saved.to_str().unwrap()]).output().unwrap();
    assert_eq!(check.status.code(), Some(1), "a forged proof fails");
    let consistency = server.ward(&carol, &["audit", "prove", "--from", "2", "--to", "5"]);
    std::fs::write(&saved, &consistency.stdout).unwrap();
    let check =
        Command::new(WARD).args(["audit", "prove", "--check", saved.to_str().unwrap()]).output().unwrap();
    assert_eq!(check.status.code(), Some(0), "{}", String::from_utf8_lossy(&check.stdout));
    // Without a checkpoint the roots are only the file's word: never passed off as authenticated.
    let mut unsigned: Value = serde_json::from_slice(&consistency.stdout).unwrap();
    unsigned["checkpoints"] = Value::Array(Vec::new());
    std::fs::write(&saved, unsigned.to_string()).unwrap();
    let check = Command::new(WARD)
        .args(["audit", "prove", "--check", saved.to_str().unwrap(), "--key", key.trim()])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&check.stdout);
    assert!(said.contains("NOT AUTHENTICATED: no checkpoint in the proof signs either tree"), "{said}");
    let out = server.local(&["audit", "verify", "--format", "json", "--checkpoint", kept.to_str().unwrap()]);
    assert_eq!(serde_json::from_slice::<Value>(&out.stdout).unwrap()["authenticated"], true);

    // Exports: JSON Lines verify offline with the key alone; edits show; CSV has every event.
    let export = server.ward(&carol, &["audit", "export", "--format", "jsonl"]);
    assert_eq!(export.status.code(), Some(0), "{}", stderr(&export));
    let lines = String::from_utf8(export.stdout).unwrap();
    let exported = server._dir.path().join("export.jsonl");
    std::fs::write(&exported, &lines).unwrap();
    let verify_file = |path: &std::path::Path| {
        Command::new(WARD)
            .args(["audit", "verify", "--key", key.trim(), "--file", path.to_str().unwrap()])
            .output()
            .unwrap()
    };
    let out = verify_file(&exported);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    let mut edited: Vec<String> = lines.lines().map(str::to_owned).collect();
    edited[2] = edited[2].replacen("\"actor\":\"", "\"actor\":\"x", 1);
    std::fs::write(&exported, edited.join("\n")).unwrap();
    let out = verify_file(&exported);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("seq=3 INVALID: hash mismatch"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let csv = server.ward(&carol, &["audit", "export", "--format", "csv"]);
    let csv = String::from_utf8(csv.stdout).unwrap();
    assert!(csv.starts_with("seq,id,type,occurred_at"));
    // Every event exported before, in order (events recorded since may follow).
    let csv_seqs: Vec<&str> = csv.lines().skip(1).map(|row| row.split(',').next().unwrap()).collect();
    let json_seqs: Vec<String> =
        lines.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()["seq"].to_string()).collect();
    assert!(csv_seqs.len() >= json_seqs.len() && csv_seqs[..json_seqs.len()] == json_seqs[..], "{csv}");
    let middle: Value = serde_json::from_str(lines.lines().nth(lines.lines().count() / 2).unwrap()).unwrap();
    let since = middle["occurred_at"].as_str().unwrap();
    let recent = server.ward(&carol, &["audit", "export", "--format", "jsonl", "--since", since]);
    let first: Value =
        serde_json::from_str(String::from_utf8_lossy(&recent.stdout).lines().next().unwrap()).unwrap();
    assert!(first["seq"].as_i64().unwrap() > 1, "a partial export");
    std::fs::write(&exported, &recent.stdout).unwrap();
    let out = verify_file(&exported);
    assert_eq!(
        out.status.code(),
        Some(0),
        "a partial export's chain verifies: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    // ... but it says how many checkpoints it compared (none: no tree without the first events),
    // and a kept checkpoint it cannot be held to is never passed silently.
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("verify") && text.contains(" 0 checkpoints verify"), "{text}");
    assert!(text.contains("NOT AUTHENTICATED: no signed checkpoint was compared"), "{text}");
    assert!(!text.contains("the tree head"), "{text}");
    let out = Command::new(WARD)
        .args(["audit", "verify", "--key", key.trim(), "--file", exported.to_str().unwrap()])
        .args(["--checkpoint", kept.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("NOT CHECKED"), "{text}");
    let ocsf = server.ward(&carol, &["audit", "export", "--format", "ocsf"]);
    let ocsf_file = server._dir.path().join("export.ocsf.jsonl");
    std::fs::write(&ocsf_file, &ocsf.stdout).unwrap();
    assert!(String::from_utf8_lossy(&ocsf.stdout).lines().count() >= lines.lines().count());
    validate_ocsf(&ocsf_file);
    assert_eq!(server.ward(&alice, &["audit", "export", "--format", "jsonl"]).status.code(), Some(1));

    let forbidden = server.ward(&alice, &["audit", "checkpoint", "--now"]);
    assert_eq!(forbidden.status.code(), Some(1));
    let usage = server.local(&["audit", "verify", "--checkpoint", "/nonexistent"]);
    assert_eq!(usage.status.code(), Some(2));
}

#[test]
fn walkthrough_on_sqlite() {
    walkthrough(&Server::start(None));
}

#[test]
fn walkthrough_on_postgres() {
    if let Some(cluster) = ward_testkit::postgres() {
        walkthrough(&Server::start(Some(cluster.fresh_database())));
    }
}

#[test]
fn unreachable_server_and_bad_config_exit_2() {
    let out = Command::new(WARD)
        .args(["requests"])
        .env("WARD_URL", "http://127.0.0.1:1")
        .env("WARD_TOKEN", "ward_x")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("cannot reach ward"), "{}", stderr(&out));
    let out = Command::new(WARD).args(["serve", "--config", "/nonexistent/ward.toml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("/nonexistent/ward.toml"), "{}", stderr(&out));
    let out = Command::new(WARD)
        .args(["admin", "token", "create", "mallory", "--config"])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/quickstart/ward.toml"))
        .env("WARD_DATA_DIR", tempfile::tempdir().unwrap().path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("configured users: admin, alice, bob, carol, dave, erin"),
        "{}",
        stderr(&out)
    );
}

/// A `[rules.ID]` setting ward cannot read stops the start, naming the key (exit 2): a typo must
/// not switch a rule off in silence.
#[test]
fn a_bad_rule_setting_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let world = dir.path().join("quickstart");
    copy_dir(&PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/quickstart")), &world);
    let config = world.join("ward.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("\n[rules.too-frequent]\ncount = 0\n");
    std::fs::write(&config, text).unwrap();
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let out = Command::new(WARD)
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .env("WARD_LISTEN", format!("127.0.0.1:{port}"))
        .env("WARD_DATA_DIR", dir.path().join("data"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("`rules.too-frequent.count`"), "{}", stderr(&out));
}

/// Writes findings into the served store as the rules' consumer would (the rules themselves are
/// `ward-rules`' to test): one about bob (medium), one about alice (high).
fn seed_findings(server: &Server) -> (String, String) {
    let url = match server.env.iter().find(|(k, _)| k == "WARD_DATABASE_URL") {
        Some((_, url)) => url.clone(),
        None => {
            let data = &server.env.iter().find(|(k, _)| k == "WARD_DATA_DIR").unwrap().1;
            format!("sqlite://{data}/ward.db?mode=rwc")
        }
    };
    let at = jiff::Timestamp::now();
    let finding = |id: &str, subject: &str, rule: ward_rules::RuleId, severity: ward_rules::Severity| {
        ward_store::FindingRecord {
            id: id.into(),
            rule,
            severity,
            key: format!("{rule}:{subject}"),
            state: ward_store::FindingState::Open,
            subject: Some(subject.into()),
            resource: Some("logs:payments-api".into()),
            grant_id: None,
            request_id: None,
            seqs: vec![1, 2],
            summary: format!("{subject}: {rule}"),
            occurrences: 1,
            first_seen_at: at,
            last_seen_at: at,
            updated_at: at,
            moved_by: None,
            comment: None,
            version: 1,
        }
    };
    let records = vec![
        finding("fnd_bob", "bob", ward_rules::RuleId::RubberStamp, ward_rules::Severity::Medium),
        finding("fnd_alice", "alice", ward_rules::RuleId::RevocationOverdue, ward_rules::Severity::High),
    ];
    let events =
        records.iter().map(|f| ward_monitor::payload::seen_event(format!("evt_{}", f.id), f, at)).collect();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        use ward_store::Store;
        let store = ward_store_sql::SqlStore::connect(&url).await.unwrap();
        store
            .commit(ward_store::Change { findings: records, events, ..Default::default() }, at)
            .await
            .unwrap();
        store.close().await;
    });
    ("fnd_bob".into(), "fnd_alice".into())
}

fn findings_from_the_cli(server: &Server) {
    let (carol, admin, alice, bob) =
        (server.token("carol"), server.token("admin"), server.token("alice"), server.token("bob"));
    let (about_bob, about_alice) = seed_findings(server);
    let ids = |value: &Value| -> Vec<String> {
        value.as_array().unwrap().iter().map(|f| f["id"].as_str().unwrap().to_owned()).collect()
    };

    let table = server.ward(&carol, &["findings"]);
    assert!(table.status.success(), "{}", stderr(&table));
    let table = String::from_utf8(table.stdout).unwrap();
    assert!(table.starts_with("ID") && table.contains("SEVERITY"), "{table}");
    assert!(table.contains(&about_bob) && table.contains("rubber-stamp"), "{table}");
    let (code, all) = server.json(&carol, &["findings"]);
    assert_eq!((code, ids(&all).len()), (0, 2));
    assert_eq!(ids(&server.json(&bob, &["findings"]).1), [about_bob.as_str()], "about themselves");
    assert_eq!(ids(&server.json(&admin, &["findings", "--severity", "high"]).1), [about_alice.as_str()]);
    assert_eq!(
        ids(&server.json(&admin, &["findings", "--rule", "rubber-stamp", "--since", "1h"]).1).len(),
        1
    );
    let (_, paged) = server.json(&admin, &["findings", "--limit", "1"]);
    assert_eq!(ids(&paged).len(), 1);
    let more = server.ward(&admin, &["findings", "--limit", "1"]);
    assert!(stderr(&more).contains("more follow: run the same command with --after"), "{}", stderr(&more));
    assert_eq!(server.ward(&admin, &["findings", "--state", "closed"]).status.code(), Some(2));
    let unknown = server.ward(&admin, &["findings", "--rule", "nope"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(stderr(&unknown).contains("unknown rule `nope`"), "{}", stderr(&unknown));

    let shown = server.ward(&bob, &["finding", "show", &about_bob]);
    assert!(shown.status.success(), "{}", stderr(&shown));
    assert!(String::from_utf8_lossy(&shown.stdout).contains("bob: rubber-stamp"));
    let hidden = server.ward(&alice, &["finding", "show", &about_bob]);
    assert_eq!(hidden.status.code(), Some(1));
    assert!(stderr(&hidden).contains("no finding"), "{}", stderr(&hidden));

    let own = server.ward(&bob, &["finding", "dismiss", &about_bob, "--comment", "fine"]);
    assert_eq!(own.status.code(), Some(1), "nobody closes a finding about themselves");
    assert_eq!(server.ward(&carol, &["finding", "ack", &about_bob]).status.code(), Some(2), "--comment");
    let (code, acked) = server.json(&carol, &["finding", "ack", &about_bob, "--comment", "asking his lead"]);
    assert_eq!((code, acked["state"].as_str()), (0, Some("acknowledged")));
    let again = server.ward(&admin, &["finding", "acknowledge", &about_bob, "--comment", "me too"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(stderr(&again).contains("is acknowledged"), "{}", stderr(&again));
    let (code, resolved) = server.json(&admin, &["finding", "resolve", &about_bob, "--comment", "talked"]);
    assert_eq!((code, resolved["state"].as_str()), (0, Some("resolved")));
    let (code, dismissed) =
        server.json(&carol, &["finding", "dismiss", &about_alice, "--comment", "upgrade"]);
    assert_eq!((code, dismissed["state"].as_str()), (0, Some("dismissed")));
    let (_, moves) = server.json(&carol, &["audit", "events", "--type", "finding.acknowledged"]);
    assert_eq!(
        (moves[0]["actor"].as_str(), moves[0]["reason"].as_str()),
        (Some("carol"), Some("asking his lead"))
    );

    let rules = server.ward(&alice, &["rules"]);
    assert!(rules.status.success(), "{}", stderr(&rules));
    let rules = String::from_utf8(rules.stdout).unwrap();
    assert!(rules.contains("too-frequent") && rules.contains("count = 5, window = 24h"), "{rules}");
    let (code, listed) = server.json(&alice, &["rules"]);
    assert_eq!((code, listed.as_array().unwrap().len()), (0, 17));

    let run = server.ward(&carol, &["rules", "run", "--since", "1h"]);
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(
        String::from_utf8_lossy(&run.stdout).contains("findings opened"),
        "{}",
        String::from_utf8_lossy(&run.stdout)
    );
    let until = jiff::Timestamp::now().to_string();
    let (code, report) = server.json(&admin, &["rules", "run", "--since", "1h", "--until", &until]);
    assert_eq!(code, 0);
    assert!(report["events"].as_u64().unwrap() > 0, "{report}");
    assert_eq!(server.ward(&alice, &["rules", "run", "--since", "1h"]).status.code(), Some(1));
    assert_eq!(server.ward(&carol, &["rules", "run", "--since", "soon"]).status.code(), Some(2));
    assert_eq!(server.ward(&carol, &["rules", "run"]).status.code(), Some(2), "--since is required");
}

#[test]
fn findings_from_the_cli_on_sqlite() {
    findings_from_the_cli(&Server::start(None));
}

#[test]
fn findings_from_the_cli_on_postgres() {
    if let Some(cluster) = ward_testkit::postgres() {
        findings_from_the_cli(&Server::start(Some(cluster.fresh_database())));
    }
}

/// `ward audit grant`: the grant's three checkpoints as `ward serve`'s consumer records them
/// when it ends; a table for people, the API's JSON with `-o json`, exit 1 when one failed.
fn audit_grant_from_the_cli(server: &Server) {
    let (alice, bob, carol) = (server.token("alice"), server.token("bob"), server.token("carol"));
    let grant = |reason: &str| {
        let ask = ["request", "logs:payments-api", "--role", "read", "--for", "30m", "--reason", reason];
        let (code, request) = server.json(&alice, &ask);
        assert_eq!(code, 0, "{request}");
        let (code, approved) = server.json(&bob, &["approve", request["id"].as_str().unwrap()]);
        assert_eq!(code, 0, "{approved}");
        approved["grant_id"].as_str().unwrap().to_owned()
    };
    let good = grant("INC-4312 checkout 500s");
    let check = ["check", "--principal", "alice", "--action", "read", "--resource", "logs:payments-api"];
    assert!(server.ward(&alice, &check).status.success());
    let (code, live) = server.json(&alice, &["audit", "grant", &good]);
    assert_eq!((code, live["used_as_intended"]["verdict"].as_str()), (0, Some("pending")), "{live}");
    assert!(server.ward(&alice, &["release", &good]).status.success());
    let thin = grant("fix");
    assert!(server.ward(&alice, &["release", &thin]).status.success());

    // The consumer records both as they end.
    let deadline = Instant::now() + Duration::from_secs(30);
    let recorded = |id: &str| server.json(&carol, &["audit", "grant", id]).1["recorded"]["revision"] == 1;
    while !(recorded(&good) && recorded(&thin)) {
        assert!(Instant::now() < deadline, "the checkpoints were not recorded");
        std::thread::sleep(Duration::from_millis(100));
    }
    let shown = server.ward(&alice, &["audit", "grant", &good]);
    assert!(shown.status.success(), "{}", stderr(&shown));
    let text = String::from_utf8(shown.stdout).unwrap();
    for expected in [
        "alice held read on logs:payments-api",
        "ended       released by alice",
        "recorded    revision 1",
        "justified          PASS",
        "used_as_intended   PASS",
        "revoked_promptly   PASS",
        "    1 of 1 required approvals, by bob",
    ] {
        assert!(text.contains(expected), "`{expected}` in:\n{text}");
    }
    let (code, failed) = server.json(&carol, &["audit", "grant", &thin]);
    assert_eq!((code, failed["justified"]["verdict"].as_str()), (1, Some("fail")), "{failed}");
    let (_, events) = server.json(&carol, &["audit", "events", "--type", "grant.audited"]);
    assert_eq!(events.as_array().unwrap().len(), 2, "{events}");

    let hidden = server.ward(&bob, &["audit", "grant", &good]);
    assert_eq!(hidden.status.code(), Some(1));
    assert!(stderr(&hidden).contains("no grant"), "{}", stderr(&hidden));
    assert_eq!(server.ward(&carol, &["audit", "grant"]).status.code(), Some(2), "the grant is required");
}

#[test]
fn audit_grant_from_the_cli_on_sqlite() {
    audit_grant_from_the_cli(&Server::start(None));
}

#[test]
fn audit_grant_from_the_cli_on_postgres() {
    if let Some(cluster) = ward_testkit::postgres() {
        audit_grant_from_the_cli(&Server::start(Some(cluster.fresh_database())));
    }
}

/// `ward policy check` compiles the configured policies as the server would, and points at the
/// line and column of what is wrong.
#[test]
fn policy_check_says_where_a_policy_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/quickstart")), dir.path());
    let config = dir.path().join("ward.toml");
    let check = |json: bool| {
        let mut command = Command::new(WARD);
        command.args(["policy", "check", "--config"]).arg(&config);
        if json {
            command.args(["-o", "json"]);
        }
        command.output().unwrap()
    };
    let out = check(true);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["valid"], true);
    assert!(report["policies"].as_array().unwrap().len() > 3, "{report}");

    let team = dir.path().join("policies/team.cedar");
    let broken = "// the team's own rule\n@id(\"team\")\npermit (principal, action == Ward::Action::\"request\", resource)\n  when { context.tiket == \"INC-1\" };\n";
    std::fs::write(&team, broken).unwrap();
    let out = check(false);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("team.cedar:4:10: for policy `team`, attribute `tiket`"),
        "{}",
        stderr(&out)
    );
    let report: Value = serde_json::from_slice(&check(true).stdout).unwrap();
    assert_eq!(report["valid"], false);
    assert!(report["errors"][0].as_str().unwrap().starts_with("team.cedar:4:10: "), "{report}");

    std::fs::write(&team, "permit (principal, action resource);\n").unwrap();
    let out = check(false);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("team.cedar:1:27: unexpected token `resource`"), "{}", stderr(&out));

    let out =
        Command::new(WARD).args(["policy", "check", "--config", "/nonexistent/ward.toml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// `ward policy test` decides a team's cases as the server would: the quickstart's own case file
/// passes, a wrong expectation fails with the reason, and a malformed file is a usage error.
#[test]
fn policy_test_runs_a_case_file() {
    let quickstart = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/quickstart");
    let run = |file: &Path| {
        Command::new(WARD)
            .args(["policy", "test"])
            .arg(file)
            .args(["--config", &format!("{quickstart}/ward.toml"), "-o", "json"])
            .output()
            .unwrap()
    };
    let out = run(&Path::new(quickstart).join("policy-tests.toml"));
    assert_eq!(out.status.code(), Some(0), "{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["failed"], 0);
    assert!(report["passed"].as_u64().unwrap() >= 12, "{report}");

    let dir = tempfile::tempdir().unwrap();
    let wrong = dir.path().join("wrong.toml");
    std::fs::write(
        &wrong,
        "[[case]]\nname = \"alice approves herself\"\naction = \"approve\"\nprincipal = \"alice\"\n\
         requester = \"alice\"\nresource = \"logs:payments-api\"\nrole = \"read\"\nexpect = \"allow\"\n",
    )
    .unwrap();
    let out = run(&wrong);
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["cases"][0]["got"], "deny");
    assert_eq!(report["cases"][0]["detail"], "nobody decides their own request");

    std::fs::write(&wrong, "[[case]]\nname = \"typo\"\nactoin = \"request\"\n").unwrap();
    let out = run(&wrong);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("line 3"), "{}", stderr(&out));
}

/// `ward policy reload` and SIGHUP swap the running server's policies; a set that does not load
/// changes nothing; both are on record.
#[test]
fn policies_reload_on_request_and_on_sighup() {
    let server = Server::start(None);
    let (admin, alice) = (server.token("admin"), server.token("alice"));
    let policies = server.config.parent().unwrap().join("policies");
    let ask =
        ["request", "logs:payments-api", "--role", "read", "--for", "30m", "--reason", "INC-1", "--dry-run"];

    std::fs::write(policies.join("freeze.cedar"), "@id(\"freeze\") forbid (principal, action, resource);\n")
        .unwrap();
    let (code, reload) = server.json(&admin, &["policy", "reload"]);
    assert_eq!((code, &reload["changed"]), (0, &Value::Bool(true)), "{reload}");
    assert_eq!(server.json(&alice, &ask).1["decision"], "denied", "the frozen set decides");
    let not_admin = server.ward(&alice, &["policy", "reload"]);
    assert_eq!(not_admin.status.code(), Some(1));

    std::fs::write(policies.join("freeze.cedar"), "forbid (principal, action resource);\n").unwrap();
    let broken = server.ward(&admin, &["policy", "reload"]);
    assert_eq!(broken.status.code(), Some(1));
    assert!(stderr(&broken).contains("freeze.cedar:1:27"), "{}", stderr(&broken));
    assert_eq!(server.json(&alice, &ask).1["decision"], "denied", "the previous set stays in force");

    std::fs::remove_file(policies.join("freeze.cedar")).unwrap();
    let pid = server.child.id().to_string();
    assert!(Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.json(&alice, &ask).1["decision"] != "pending" {
        assert!(Instant::now() < deadline, "SIGHUP did not reload the policies");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (_, changed) = server.json(&admin, &["audit", "events", "--type", "policy.changed"]);
    let actors: Vec<&str> =
        changed.as_array().unwrap().iter().map(|e| e["actor"].as_str().unwrap()).collect();
    assert_eq!(actors, ["ward", "admin", "ward"], "at start, by admin, on SIGHUP");
    let (_, rejected) = server.json(&admin, &["audit", "events", "--type", "policy.rejected"]);
    assert_eq!(rejected.as_array().unwrap().len(), 1);
}

/// `ward admin token list` and `revoke` are local, like `create`; a running server refuses a
/// revoked token on its very next request.
#[test]
fn tokens_are_listed_and_revoked_at_once() {
    let server = Server::start(None);
    let (alice, admin) = (server.token("alice"), server.token("admin"));
    assert_eq!(server.json(&alice, &["whoami"]).0, 0, "the server knows (and caches) the token");

    let listed = server.local(&["admin", "token", "list", "--user", "alice", "-o", "json"]);
    assert!(listed.status.success(), "{}", stderr(&listed));
    let tokens: Value = serde_json::from_slice(&listed.stdout).unwrap();
    let mine = tokens.as_array().unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!((mine[0]["user"].as_str(), mine[0]["state"].as_str()), (Some("alice"), Some("active")));
    assert!(!String::from_utf8_lossy(&listed.stdout).contains(&alice), "never the secret");
    let id = mine[0]["id"].as_str().unwrap().to_owned();

    let revoked = server.local(&["admin", "token", "revoke", &id]);
    assert!(revoked.status.success(), "{}", stderr(&revoked));
    let refused = server.ward(&alice, &["whoami"]);
    assert_eq!(refused.status.code(), Some(2), "refused at once (401): {}", stderr(&refused));
    assert!(stderr(&refused).contains("revoked"), "{}", stderr(&refused));
    assert_eq!(server.json(&admin, &["whoami"]).0, 0, "other tokens still work");
    let unknown = server.local(&["admin", "token", "revoke", "tok_nope"]);
    assert_eq!(unknown.status.code(), Some(1), "{}", stderr(&unknown));

    let (_, events) = server.json(&admin, &["audit", "events", "--subject", "alice"]);
    let types: Vec<&str> = events.as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert!(types.contains(&"token.created") && types.contains(&"token.revoked"), "{types:?}");
    let (_, all) = server.json(&admin, &["audit", "events", "--type", "token.revoked"]);
    assert!(all[0]["actor"].as_str().unwrap().starts_with("local:"), "{all}");
}

/// `--scope` narrows a token to what it is for; `service:NAME` mints one for a program, which is
/// a service and nothing else. What a token may not do is refused with what it would need.
#[test]
fn scoped_tokens_and_service_principals_from_the_cli() {
    let server = Server::start(None);
    let create = |args: &[&str]| {
        let mut all = vec!["admin", "token", "create"];
        all.extend(args);
        server.local(&all)
    };
    let minted = create(&["service:log-shipper", "--scope", "push,check"]);
    assert!(minted.status.success(), "{}", stderr(&minted));
    let shipper = String::from_utf8(minted.stdout).unwrap().trim().to_owned();
    let (code, me) = server.json(&shipper, &["whoami"]);
    assert_eq!(code, 0, "{me}");
    assert_eq!(
        (me["name"].as_str(), &me["roles"], &me["scopes"]),
        (Some("service:log-shipper"), &json!(["service"]), &json!(["check", "push"]))
    );
    let refused = server.ward(&shipper, &["requests"]);
    assert_ne!(refused.status.code(), Some(0));
    assert!(stderr(&refused).contains("needs `read`"), "{}", stderr(&refused));

    let reader = create(&["alice", "--scope", "read"]);
    let reader = String::from_utf8(reader.stdout).unwrap().trim().to_owned();
    assert_eq!(server.json(&reader, &["requests"]).0, 0, "reading is what it is for");
    let asked = server.ward(
        &reader,
        &["request", "logs:checkout-web", "--role", "read", "--for", "30m", "--reason", "INC-1 debugging"],
    );
    assert_ne!(asked.status.code(), Some(0));
    assert!(stderr(&asked).contains("needs `admin`"), "{}", stderr(&asked));

    for (args, says) in [
        (&["service:log-shipper"][..], "needs its scopes"),
        (&["alice", "--scope", "write"][..], "unknown scope `write`"),
        (&["service:Log Shipper", "--scope", "push"][..], "lowercase letters"),
    ] {
        let out = create(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
    }
    let listed = server.local(&["admin", "token", "list", "--user", "service:log-shipper", "-o", "json"]);
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed[0]["scopes"], json!(["check", "push"]));
}

/// `ward quickstart` outside a checkout writes the demo world out of the binary and serves it,
/// and every command it prints works as printed, from the directory it was started in.
#[test]
fn quickstart_serves_the_demo_world_from_anywhere() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = Command::new(WARD)
        .arg("quickstart")
        .current_dir(dir.path())
        .env("WARD_LISTEN", format!("127.0.0.1:{port}"))
        .env("WARD_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut banner = Vec::new();
    for line in std::io::BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        let done = line.starts_with("Stop with Ctrl-C");
        banner.push(line);
        if done {
            break;
        }
    }
    assert!(dir.path().join("ward-quickstart/ward.toml").is_file());
    assert!(dir.path().join("ward-quickstart/data/ward.db").is_file());
    let banner = banner.join("\n");
    assert!(banner.contains(&format!("http://127.0.0.1:{port}")), "{banner}");
    // The indented lines after "In another terminal", run as a user would paste them.
    let (_, commands) = banner.split_once("In another terminal").unwrap();
    let script: Vec<&str> = commands.lines().filter_map(|l| l.strip_prefix("  ")).collect();
    assert!(script.iter().any(|l| l.contains("admin token create alice")), "{banner}");
    let mut shell = Command::new("sh");
    shell.arg("-ec").arg(script.join("\n")).current_dir(dir.path());
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("WARD_")) {
        shell.env_remove(name);
    }
    let out = shell.output().unwrap();
    assert!(out.status.success(), "{}\n{}", script.join("\n"), stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("state     pending"), "{stdout}");
    child.kill().unwrap();
    child.wait().unwrap();
}

/// `ward quickstart --history 30d` in a fresh directory, served on a free port once its history
/// is played; and how to run the CLI against it (`ward(args, token)`).
struct PlayedQuickstart {
    child: Child,
    port: u16,
    config: PathBuf,
    dir: tempfile::TempDir,
}

impl PlayedQuickstart {
    fn start() -> Self {
        use std::io::BufRead;
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut child = Command::new(WARD)
            .args(["quickstart", "--history", "30d"])
            .current_dir(dir.path())
            .env("WARD_LISTEN", format!("127.0.0.1:{port}"))
            .env("WARD_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        for line in std::io::BufReader::new(child.stdout.take().unwrap()).lines() {
            if line.unwrap().starts_with("Stop with Ctrl-C") {
                break;
            }
        }
        let config = dir.path().join("ward-quickstart/ward.toml");
        Self { child, port, config, dir }
    }

    fn ward(&self, args: &[&str], token: Option<&str>) -> Output {
        let mut command = Command::new(WARD);
        command
            .args(args)
            .env("WARD_CONFIG", &self.config)
            .env("WARD_URL", format!("http://127.0.0.1:{}", self.port));
        if let Some(token) = token {
            command.env("WARD_TOKEN", token);
        }
        command.output().unwrap()
    }

    fn token(&self, user: &str) -> String {
        let out = self.ward(&["admin", "token", "create", user], None);
        assert!(out.status.success(), "{}", stderr(&out));
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }
}

impl Drop for PlayedQuickstart {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `ward quickstart --history 30d` plays a month through the broker before serving: the audit has
/// something true to show at once (the planted violations, found by the rules as ward serves).
#[test]
fn quickstart_history_gives_the_audit_something_to_show() {
    let quickstart = PlayedQuickstart::start();
    let ward = |args: &[&str], token: Option<&str>| quickstart.ward(args, token);
    let carol = quickstart.token("carol");
    let planted = [
        "rubber-stamp",
        "denial-burst",
        "review-overdue",
        "breakglass-used",
        "excessive-duration",
        "weak-justification",
        "revocation-overdue",
    ];
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let out = ward(&["findings", "-o", "json"], Some(&carol));
        assert!(out.status.success(), "{}", stderr(&out));
        let findings: Value = serde_json::from_slice(&out.stdout).unwrap();
        let rules: Vec<&str> =
            findings.as_array().unwrap().iter().filter_map(|f| f["rule"].as_str()).collect();
        if planted.iter().all(|rule| rules.contains(rule)) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the planted violations were not all found: {rules:?}");
        std::thread::sleep(Duration::from_millis(500));
    }
    // The grants' audit checkpoints, recorded as ward serves: most pass, the planted ones fail.
    loop {
        let args = ["audit", "events", "--type", "grant.audited", "--limit", "1000", "-o", "json"];
        let out = ward(&args, Some(&carol));
        assert!(out.status.success(), "{}", stderr(&out));
        let audits: Value = serde_json::from_slice(&out.stdout).unwrap();
        let verdicts: Vec<[&str; 3]> = audits
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let d = &e["details"];
                [&d["justified"], &d["used_as_intended"], &d["revoked_promptly"]].map(|v| v.as_str().unwrap())
            })
            .collect();
        let passed = verdicts.iter().filter(|v| **v == ["pass", "pass", "pass"]).count();
        let unjustified = verdicts.iter().filter(|v| v[0] == "fail").count();
        let late = verdicts.iter().filter(|v| v[2] == "fail").count();
        if passed > verdicts.len() / 2 && unjustified >= 2 && late >= 1 {
            let grant = audits[0]["grant_id"].as_str().unwrap();
            let shown = ward(&["audit", "grant", grant], Some(&carol));
            assert!(
                String::from_utf8_lossy(&shown.stdout).contains("recorded    revision "),
                "{}",
                stderr(&shown)
            );
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the audits: {verdicts:?}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// `--config` is taken before the command as well as after it, and refused where no
/// configuration is read.
#[test]
fn config_is_taken_before_or_after_the_command() {
    let server = Server::start(None);
    let config = server.config.display().to_string();
    for args in [
        vec!["--config", &config, "admin", "token", "create", "alice"],
        vec!["admin", "token", "create", "alice", "--config", &config],
    ] {
        let out = Command::new(WARD).args(&args).envs(server.env.iter().cloned()).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        assert!(String::from_utf8_lossy(&out.stdout).starts_with("ward_"));
    }
    let policy = Command::new(WARD).args(["--config", &config, "policy", "check"]).output().unwrap();
    assert!(policy.status.success(), "{}", stderr(&policy));
    let twice = Command::new(WARD)
        .args(["--config", &config, "admin", "token", "create", "alice", "--config", "/elsewhere/ward.toml"])
        .output()
        .unwrap();
    assert_eq!(twice.status.code(), Some(2), "{}", stderr(&twice));
    assert!(stderr(&twice).contains("given twice"), "{}", stderr(&twice));
    let client = Command::new(WARD).args(["--config", &config, "requests"]).output().unwrap();
    assert_eq!(client.status.code(), Some(2), "{}", stderr(&client));
    assert!(stderr(&client).contains("local commands"), "{}", stderr(&client));
}

/// Listings say on stderr when more follow and how to go on (`--after`); `-o json` still prints
/// the API's array alone on stdout.
#[test]
fn listings_page_on_with_after() {
    let server = Server::start(None);
    let (bob, admin) = (server.token("bob"), server.token("admin"));
    for _ in 0..3 {
        let out = server
            .ward(&bob, &["request", "logs:payments-api", "--role", "read", "--for", "1h", "--reason", "r"]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let first = server.ward(&admin, &["requests", "--limit", "2"]);
    assert!(first.status.success(), "{}", stderr(&first));
    let hint = stderr(&first);
    let after = hint
        .trim()
        .strip_prefix("more follow: run the same command with --after ")
        .unwrap_or_else(|| panic!("{hint}"));
    assert!(after.starts_with("req_"), "{hint}");
    let (code, json) = server.json(&admin, &["requests", "--limit", "2"]);
    assert_eq!((code, json.as_array().unwrap().len()), (0, 2));
    assert_eq!(json[1]["id"], after);
    let (code, rest) = server.json(&admin, &["requests", "--limit", "2", "--after", after]);
    assert_eq!((code, rest.as_array().unwrap().len()), (0, 1));
    let last = server.ward(&admin, &["requests", "--limit", "2", "--after", after]);
    assert!(stderr(&last).is_empty(), "no more: {}", stderr(&last));
}

/// `[server] tls_cert`/`tls_key` (here by environment) make ward serve HTTPS; the CLI talks to it
/// trusting a private CA given with --ca-file or WARD_CA_FILE, and says what to do without one.
#[test]
fn https_with_a_private_ca() {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let mut ca_params = CertificateParams::new(Vec::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let cert =
        CertificateParams::new(vec!["localhost".to_owned()]).unwrap().signed_by(&key, &issuer).unwrap();
    let path = |name: &str| dir.path().join(name);
    std::fs::write(path("ca.pem"), ca.pem()).unwrap();
    std::fs::write(path("cert.pem"), cert.pem()).unwrap();
    std::fs::write(path("key.pem"), key.serialize_pem()).unwrap();
    std::fs::set_permissions(path("key.pem"), std::fs::Permissions::from_mode(0o600)).unwrap();

    let (ca_file, tls) = (
        path("ca.pem").display().to_string(),
        [
            ("WARD_TLS_CERT".to_owned(), path("cert.pem").display().to_string()),
            ("WARD_TLS_KEY".to_owned(), path("key.pem").display().to_string()),
        ],
    );
    let server = Server::start_in(dir, tls.into());
    let url = server.url.replace("http://127.0.0.1", "https://localhost");
    let token = server.token("alice");
    let ward = |args: &[&str]| {
        Command::new(WARD)
            .args(args)
            .env("WARD_URL", &url)
            .env("WARD_TOKEN", &token)
            .env_remove("WARD_CA_FILE")
            .output()
            .unwrap()
    };
    let me = ward(&["--ca-file", &ca_file, "whoami", "-o", "json"]);
    assert!(me.status.success(), "{}", stderr(&me));
    assert_eq!(serde_json::from_slice::<Value>(&me.stdout).unwrap()["name"], "alice");
    let by_env = Command::new(WARD)
        .args(["whoami"])
        .env("WARD_URL", &url)
        .env("WARD_TOKEN", &token)
        .env("WARD_CA_FILE", &ca_file)
        .output()
        .unwrap();
    assert!(by_env.status.success(), "{}", stderr(&by_env));
    let unknown_ca = ward(&["whoami"]);
    assert_eq!(unknown_ca.status.code(), Some(2));
    assert!(stderr(&unknown_ca).contains("--ca-file"), "{}", stderr(&unknown_ca));
    let not_pem = ward(&["--ca-file", &server.config.display().to_string(), "whoami"]);
    assert_eq!(not_pem.status.code(), Some(2), "{}", stderr(&not_pem));
}

/// Alice's grant on `logs:checkout-web`, approved by Bob, then checked `times` times (the first
/// a first use, the rest counted): its id.
fn checked_times(server: &Server, times: usize) -> String {
    let (alice, bob) = (server.token("alice"), server.token("bob"));
    let (_, request) = server
        .json(&alice, &["request", "logs:checkout-web", "--role", "read", "--for", "1h", "--reason", "r"]);
    let (_, approved) = server.json(&bob, &["approve", request["id"].as_str().unwrap()]);
    let check = ["check", "--principal", "alice", "--action", "read", "--resource", "logs:checkout-web"];
    for _ in 0..times {
        assert_eq!(server.json(&alice, &check).0, 0);
    }
    approved["grant_id"].as_str().unwrap().to_owned()
}

/// A service manager's SIGTERM that comes as soon as the port is open stops ward cleanly (exit
/// 0), as one that comes later does: the handlers are there before the port opens.
#[test]
fn sigterm_as_soon_as_the_port_opens_stops_ward_cleanly() {
    for _ in 0..3 {
        let mut server = Server::start(None);
        assert_eq!(server.terminate(), Some(0), "ward exits cleanly on an early SIGTERM");
    }
}

/// SIGTERM lets in-flight work finish and writes the tallied checks before exiting: nothing is
/// lost across a restart.
#[test]
fn graceful_shutdown_keeps_the_usage_tally() {
    let server = Server::start(None);
    let grant = checked_times(&server, 3);
    let server = server.restart();
    let carol = server.token("carol");
    let (_, uses) = server.json(&carol, &["audit", "events", "--type", "access.used", "--grant", &grant]);
    let uses = uses.as_array().unwrap();
    assert_eq!(uses.len(), 2, "the first use, then a summary: {uses:?}");
    assert_eq!(uses[0]["details"]["first_use"], true);
    assert_eq!(uses[1]["details"]["summary"], true);
    assert_eq!(uses[1]["details"]["count"], 2);
    // The grant survived the restart: the index was rebuilt from the store.
    let check = ["check", "--principal", "alice", "--action", "read", "--resource", "logs:checkout-web"];
    assert_eq!(server.json(&server.token("alice"), &check).0, 0);
}

/// `kill -9` loses at most the last second of counted checks: each second they are added to
/// the store, and the next summary (here, the restarted server's last word) says them.
#[test]
fn a_killed_ward_keeps_the_checks_it_counted_a_second_before() {
    let mut server = Server::start(None);
    let grant = checked_times(&server, 4);
    std::thread::sleep(Duration::from_millis(1500));
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let database_url = server.env.iter().find(|(k, _)| k == "WARD_DATABASE_URL").map(|(_, v)| v.clone());
    let dir = std::mem::replace(&mut server._dir, tempfile::TempDir::new().unwrap());
    let server = Server::start_in(dir, database_env(database_url)).restart();
    let carol = server.token("carol");
    let (_, uses) = server.json(&carol, &["audit", "events", "--type", "access.used", "--grant", &grant]);
    let uses = uses.as_array().unwrap();
    assert_eq!(uses.len(), 2, "the first use, then a summary: {uses:?}");
    assert_eq!(uses[1]["details"]["summary"], true);
    assert_eq!(uses[1]["details"]["count"], 3);
}

/// A followed tail does not hold a stopping server until its grant ends: it ends at once,
/// saying why, and what it sent is on record.
#[test]
fn a_followed_tail_ends_when_ward_stops() {
    let server = Server::start(None);
    let (alice, bob) = (server.token("alice"), server.token("bob"));
    let (_, request) = server
        .json(&alice, &["request", "logs:payments-api", "--role", "read", "--for", "1h", "--reason", "r"]);
    let (_, approved) = server.json(&bob, &["approve", request["id"].as_str().unwrap()]);
    let grant = approved["grant_id"].as_str().unwrap().to_owned();
    let follower = server.follow(&alice, "logs:payments-api", 2);
    let server = server.restart();
    let out = follower.wait_with_output().unwrap();
    assert_eq!(String::from_utf8(out.stdout.clone()).unwrap().lines().count(), 2);
    assert!(stderr(&out).contains("the stream ended: ward is shutting down"), "{}", stderr(&out));
    let carol = server.token("carol");
    let (_, reads) = server.json(&carol, &["audit", "events", "--type", "access.used", "--grant", &grant]);
    let follow = reads.as_array().unwrap().iter().find(|e| e["details"]["action"] == "logs.follow");
    assert_eq!(
        follow.map(|f| f["details"]["ended"].clone()),
        Some(Value::from("ward is shutting down")),
        "{reads}"
    );
}

/// `--wait` blocks until the request is decided, and exits 0 only if it was approved.
#[test]
fn request_wait_returns_the_decision() {
    let server = Server::start(None);
    let (alice, bob) = (server.token("alice"), server.token("bob"));
    let waiting = Command::new(WARD)
        .args([
            "request",
            "logs:payments-api",
            "--role",
            "read",
            "--for",
            "5m",
            "--reason",
            "r",
            "--wait",
            "-o",
            "json",
        ])
        .env("WARD_URL", &server.url)
        .env("WARD_TOKEN", &alice)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let id = loop {
        let (_, pending) = server.json(&bob, &["requests", "--state", "pending"]);
        if let Some(id) = pending[0]["id"].as_str() {
            break id.to_owned();
        }
        assert!(Instant::now() < deadline, "the request never appeared");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(server.json(&bob, &["approve", &id]).0, 0);
    let out = waiting.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let decided: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(decided["state"], "approved");

    let (_, second) = server
        .json(&alice, &["request", "logs:payments-api", "--role", "read", "--for", "5m", "--reason", "r"]);
    let denier = server.json(&bob, &["deny", second["id"].as_str().unwrap(), "--comment", "no ticket"]);
    assert_eq!(denier.0, 0);
    let denied = server.ward(&alice, &["show", second["id"].as_str().unwrap(), "-o", "json"]);
    assert_eq!(serde_json::from_slice::<Value>(&denied.stdout).unwrap()["state"], "denied");
}

/// With `WARD_IDLE_TIMEOUT`, a grant nobody uses ends by itself, well before its window does:
/// `ward grants` says when, a check after it is refused, and the expiry is on record as idle.
#[test]
fn an_unused_grant_ends_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(dir, vec![("WARD_IDLE_TIMEOUT".into(), "5s".into())]);
    let (alice, bob) = (server.token("alice"), server.token("bob"));
    let (_, asked) = server
        .json(&alice, &["request", "logs:payments-api", "--role", "read", "--for", "1h", "--reason", "r"]);
    let (_, approved) = server.json(&bob, &["approve", asked["id"].as_str().unwrap()]);
    let grant = approved["grant_id"].as_str().unwrap().to_owned();
    let (_, shown) = server.json(&alice, &["grants", "--mine"]);
    assert_eq!(shown[0]["idle_timeout_seconds"], 5);
    assert!(shown[0]["idle_at"].as_str().unwrap() < shown[0]["expires_at"].as_str().unwrap());
    let table = String::from_utf8(server.ward(&alice, &["grants", "--mine"]).stdout).unwrap();
    assert!(table.contains("unless used"), "{table}");
    let check = ["check", "--principal", "alice", "--action", "read", "--resource", "logs:payments-api"];
    for _ in 0..3 {
        assert_eq!(server.json(&alice, &check).0, 0, "used every second: kept");
        std::thread::sleep(Duration::from_secs(1));
    }
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(server.json(&alice, &check).0, 1, "unused for five seconds: refused");
    let deadline = Instant::now() + Duration::from_secs(10);
    let ended = loop {
        let (_, grants) = server.json(&alice, &["grants", "--mine"]);
        assert_eq!(grants[0]["id"], grant.as_str());
        if grants[0]["state"] == "expired" {
            break grants[0].clone();
        }
        assert!(Instant::now() < deadline, "never ended: {grants}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(ended["end_reason"], "idle");
    let (_, expiries) = server.json(&alice, &["audit", "events", "--type", "grant.expired"]);
    assert_eq!(
        (&expiries[0]["reason"], &expiries[0]["details"]["idle_timeout_seconds"]),
        (&json!("idle"), &json!(5))
    );
}

/// The debug-log gateway from the command line: only through an active grant, redacted, with
/// every read on record; a followed tail ends when the grant does.
#[test]
fn logs_are_read_through_a_grant_and_come_out_redacted() {
    let server = Server::start(None);
    let (alice, bob, carol) = (server.token("alice"), server.token("bob"), server.token("carol"));
    let search = ["logs", "search", "logs:payments-api"];
    let refused = server.ward(&alice, &search);
    assert_eq!(refused.status.code(), Some(1));
    assert!(stderr(&refused).contains("holds no active grant for `read`"), "{}", stderr(&refused));

    let ask = ["request", "logs:payments-api", "--role", "read", "--for", "10m", "--reason", "INC-4312 500s"];
    let (_, request) = server.json(&alice, &ask);
    let (_, approved) = server.json(&bob, &["approve", request["id"].as_str().unwrap()]);
    let grant_id = approved["grant_id"].as_str().unwrap().to_owned();

    let out = server.ward(&alice, &search);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    assert_eq!(text.lines().count(), 13, "{text}");
    for secret in [
        "jane.doe@example.com",
        "4111 1111 1111 1111",
        "sk_live_",
        "AKIAIOSFODNN7EXAMPLE",
        "Wint3r-Is-C0ming",
        "hunter2-prod",
        "ghp_",
    ] {
        assert!(!text.contains(secret), "{secret} leaked:\n{text}");
    }
    assert!(text.contains("customer=<email:"), "{text}");
    let (_, grant) = server.json(&alice, &["show", &grant_id]);
    assert!(grant["first_used_at"].is_string(), "a log read is the grant's first use: {grant}");
    assert!(
        stderr(&out).contains("13 lines from 2 files;") && stderr(&out).contains("values redacted"),
        "{}",
        stderr(&out)
    );

    // The pattern sees what the reader sees: the redacted text.
    let oracle = server.ward(&alice, &["logs", "search", "logs:payments-api", "jane\\.doe"]);
    assert_eq!(String::from_utf8(oracle.stdout).unwrap(), "");
    let (code, items) = {
        let out = server.ward(&alice, &["logs", "search", "logs:payments-api", "checkout 500", "-o", "json"]);
        let items: Vec<Value> = out
            .stdout
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        (out.status.code(), items)
    };
    assert_eq!(code, Some(0));
    assert_eq!(items.len(), 3, "two lines and the summary: {items:?}");
    assert_eq!(items[2]["summary"]["grant_id"], grant_id.as_str());
    assert!(items[2]["summary"]["redactions"]["email"].as_u64().unwrap() >= 2);
    let bad = server.ward(&alice, &["logs", "search", "logs:payments-api", "(unclosed"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(stderr(&bad).contains("not a valid regex"), "{}", stderr(&bad));
    let unmasked = server.ward(&alice, &["logs", "search", "logs:payments-api", "--unmasked"]);
    assert!(stderr(&unmasked).contains("no active grant for `read-unmasked`"), "{}", stderr(&unmasked));

    // `logs tail` shows the newest lines: the live file's, even when the rotated one was
    // modified later (copied, checked out).
    let logs = server.config.parent().unwrap().join("logs/payments-api");
    let hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(logs.join("payments-api.log"))
        .unwrap()
        .set_modified(hour_ago)
        .unwrap();
    let tail = server.ward(&alice, &["logs", "tail", "logs:payments-api", "--lines", "5"]);
    assert_eq!(tail.status.code(), Some(0), "{}", stderr(&tail));
    let text = String::from_utf8(tail.stdout.clone()).unwrap();
    let live = std::fs::read_to_string(logs.join("payments-api.log")).unwrap();
    let newest: Vec<&str> = live.lines().rev().take(5).map(|l| &l[..24]).collect();
    let shown: Vec<&str> = text.lines().rev().map(|l| &l[..24]).collect();
    assert_eq!(shown, newest, "{text}");
    assert!(stderr(&tail).contains("5 lines from 1 file;"), "{}", stderr(&tail));

    // Every read is on record, with what it returned.
    let (_, reads) = server.json(&carol, &["audit", "events", "--type", "access.used", "--grant", &grant_id]);
    let searches: Vec<&Value> =
        reads.as_array().unwrap().iter().filter(|e| e["details"]["action"] == "logs.search").collect();
    assert_eq!(searches.len(), 3, "{reads}");
    assert_eq!(searches[0]["details"]["lines"], 13);
    let (_, refusals) =
        server.json(&carol, &["audit", "events", "--type", "access.denied", "--actor", "alice"]);
    assert!(
        refusals.as_array().unwrap().iter().any(|e| e["details"]["action"] == "logs.search"),
        "{refusals}"
    );

    // A followed tail ends, with the reason, when the holder releases the grant.
    let follower = server.follow(&alice, "logs:payments-api", 1);
    assert_eq!(server.json(&alice, &["release", &grant_id]).0, 0);
    let out = follower.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(String::from_utf8(out.stdout.clone()).unwrap().lines().count(), 1);
    let (_, reads) = server.json(&carol, &["audit", "events", "--type", "access.used", "--grant", &grant_id]);
    let tail = reads
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["details"]["action"] == "logs.tail" && e["details"]["follow"] == true)
        .unwrap();
    assert_eq!(tail["details"]["redactions"]["email"], 1, "{tail}");
    let follow = reads.as_array().unwrap().iter().find(|e| e["details"]["action"] == "logs.follow").unwrap();
    assert!(follow["details"]["ended"].as_str().unwrap().contains("released or revoked"), "{follow}");
    assert!(
        stderr(&out).contains("the stream ended: grant") && stderr(&out).contains("released or revoked"),
        "{}",
        stderr(&out)
    );
}

/// Extensions and break-glass from the command line: `ward extend`, `ward request --breakglass`,
/// `ward grants --unreviewed`, `ward review`.
#[test]
fn extend_and_break_glass_from_the_command_line() {
    let server = Server::start(None);
    let (alice, bob, dave, sam) =
        (server.token("alice"), server.token("bob"), server.token("dave"), server.token("sam"));
    let ask = ["request", "logs:payments-api", "--role", "read", "--for", "10m", "--reason", "INC-1 500s"];
    let (_, request) = server.json(&alice, &ask);
    let (_, approved) = server.json(&bob, &["approve", request["id"].as_str().unwrap()]);
    let grant_id = approved["grant_id"].as_str().unwrap().to_owned();
    let extend = ["extend", &grant_id, "--for", "15m", "--reason", "INC-1 still digging"];
    let (code, extension) = server.json(&alice, &extend);
    assert_eq!((code, extension["state"].as_str()), (0, Some("pending")), "{extension}");
    assert_eq!(extension["extends_grant"], grant_id.as_str());
    let not_mine = server.ward(&bob, &extend);
    assert_eq!(not_mine.status.code(), Some(1));
    assert!(stderr(&not_mine).contains("who holds grant"), "{}", stderr(&not_mine));
    server.json(&bob, &["approve", extension["id"].as_str().unwrap()]);
    let (_, grant) = server.json(&alice, &["show", &grant_id]);
    assert_eq!(grant["extensions"].as_array().unwrap().len(), 1, "{grant}");
    assert_eq!(grant["extensions"][0]["added_seconds"], 900);
    let shown = server.ward(&alice, &["show", &grant_id]);
    assert!(String::from_utf8_lossy(&shown.stdout).contains("extended  +15m"));

    let glass = [
        "request",
        "logs:ledger",
        "--role",
        "read",
        "--for",
        "15m",
        "--reason",
        "ledger down",
        "--ticket",
        "INC-2",
        "--breakglass",
    ];
    let refused = server.ward(&alice, &glass);
    assert_eq!(refused.status.code(), Some(1));
    assert!(stderr(&refused).contains("no break-glass policy allows alice"), "{}", stderr(&refused));
    let (code, broken) = server.json(&dave, &glass);
    assert_eq!(
        (code, broken["state"].as_str(), broken["breakglass"].as_bool()),
        (0, Some("approved"), Some(true))
    );
    let glass_grant = broken["grant_id"].as_str().unwrap().to_owned();
    let (_, unreviewed) = server.json(&bob, &["grants", "--unreviewed"]);
    assert_eq!(unreviewed[0]["id"], glass_grant.as_str());
    assert_eq!(unreviewed[0]["review"]["state"], "pending");
    let own = server.ward(&dave, &["review", &glass_grant, "--comment", "fine"]);
    assert_eq!(own.status.code(), Some(1));
    let (code, reviewed) = server.json(&sam, &["review", &glass_grant, "--comment", "INC-2: reads matched"]);
    assert_eq!((code, reviewed["review"]["state"].as_str()), (0, Some("done")), "{reviewed}");
    let (_, none) = server.json(&bob, &["grants", "--unreviewed"]);
    assert_eq!(none, serde_json::json!([]));

    // A reader that goes away (`ward grants | head -1`) ends ward quietly.
    let mut child = Command::new(WARD)
        .args(["grants", "-o", "json"])
        .env("WARD_URL", &server.url)
        .env("WARD_TOKEN", &bob)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
}

/// A service ships its logs with the OpenTelemetry Python SDK's own OTLP/HTTP exporter, with
/// its defaults (protobuf) and gzipped; a holder reads them, redacted. Skipped when the SDK is
/// not installed, unless CI is set.
#[test]
fn the_opentelemetry_sdk_ships_logs_to_ward() {
    let server = Server::start(None);
    let shipper = server.token("log-shipper");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/otel_send_logs.py");
    let endpoint = format!("{}/v1/logs/logs:checkout-web/otlp", server.url);
    for compression in ["none", "gzip"] {
        let message = format!("otel checkout failed for jane.doe@example.com ({compression})");
        let out =
            match Command::new("python3").args([script, &endpoint, &shipper, compression, &message]).output()
            {
                Ok(out) => out,
                Err(error) if std::env::var_os("CI").is_none() => {
                    eprintln!("note: python3 not available ({error}); the OpenTelemetry SDK test is skipped");
                    return;
                }
                Err(error) => panic!("CI is set but python3 is missing: {error}"),
            };
        if out.status.code() == Some(3) && std::env::var_os("CI").is_none() {
            eprintln!("note: {} skipped", String::from_utf8_lossy(&out.stdout));
            return;
        }
        assert_eq!(out.status.code(), Some(0), "the exporter failed:\n{}", stderr(&out));
    }
    // dave, on call with an incident ticket, is let in at once and reads both, redacted.
    let dave = server.token("dave");
    let ask = ["request", "logs:checkout-web", "--role", "read", "--for", "10m", "--reason", "pager"];
    let (code, asked) = server.json(&dave, &[&ask[..], &["--ticket", "INC-7"]].concat());
    assert_eq!((code, asked["state"].as_str()), (0, Some("approved")), "{asked}");
    let out = server.ward(&dave, &["logs", "search", "logs:checkout-web", "otel checkout failed"]);
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    assert_eq!(text.lines().count(), 2, "{text}{}", stderr(&out));
    assert!(text.contains("(none)") && text.contains("(gzip)") && !text.contains("jane.doe@"), "{text}");
    assert!(text.contains("\"severity\":\"ERROR\"") && text.contains("checkout-web"), "{text}");
}

/// Runs the OCSF 1.8.0 schema validation (Python: ocsf-json-schema + jsonschema, which we did not
/// write). Skipped when they are not installed, unless CI is set.
fn validate_ocsf(file: &std::path::Path) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/ocsf_validate.py");
    let out = match Command::new("python3").arg(script).arg(file).output() {
        Ok(out) => out,
        Err(error) if std::env::var_os("CI").is_none() => {
            eprintln!("note: python3 not available ({error}); OCSF schema validation skipped");
            return;
        }
        Err(error) => panic!("CI is set but python3 is missing: {error}"),
    };
    let report = String::from_utf8_lossy(&out.stdout);
    if out.status.code() == Some(3) && std::env::var_os("CI").is_none() {
        eprintln!("note: {report} OCSF schema validation skipped");
        return;
    }
    assert_eq!(
        out.status.code(),
        Some(0),
        "OCSF validation failed:\n{report}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(report.contains(" 0 problems"), "{report}");
}

/// A minimal HTTP receiver on a free port: answers every POST 200 and keeps each request's
/// headers (lowercased names) and body.
type Received = std::sync::Arc<std::sync::Mutex<Vec<(Vec<(String, String)>, Vec<u8>)>>>;

fn http_receiver() -> (String, Received) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let got: Received = Default::default();
    let kept = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let kept = kept.clone();
            std::thread::spawn(move || {
                let mut writer = stream.try_clone().unwrap();
                let mut reader = BufReader::new(stream);
                loop {
                    let mut headers = Vec::new();
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    loop {
                        line.clear();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let Some((name, value)) = line.trim_end().split_once(':') else { break };
                        headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
                    }
                    let length = headers
                        .iter()
                        .find(|(name, _)| name == "content-length")
                        .map_or(0, |(_, v)| v.parse().unwrap());
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).unwrap();
                    kept.lock().unwrap().push((headers, body));
                    writer.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").unwrap();
                }
            });
        }
    });
    (url, got)
}

/// `ward serve` delivers the `[[notify]]` sinks it is configured with (signed webhooks here), and
/// refuses to start with a sink whose secret others may read, naming the setting (exit 2).
#[test]
fn ward_serve_notifies_its_sinks_and_refuses_a_bad_one() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let world = dir.path().join("quickstart");
    copy_dir(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/quickstart")), &world);
    let (url, got) = http_receiver();
    let secret = world.join("hook.secret");
    std::fs::write(&secret, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
    let config = world.join("ward.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "\n[[notify]]\nname = \"siem\"\nkind = \"webhook\"\nurl = \"{url}\"\nsecret_file = \"hook.secret\"\n\
         events = [\"request.created\"]\n"
    ));
    std::fs::write(&config, text).unwrap();
    let out = serve_refused(&config, &dir.path().join("data"));
    assert!(
        stderr(&out).contains("notify.\"siem\".secret_file") && stderr(&out).contains("chmod 600"),
        "{}",
        stderr(&out)
    );

    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let server = Server::start_in(dir, Vec::new());
    let alice = server.token("alice");
    let (code, request) = server.json(
        &alice,
        &[
            "request",
            "logs:payments-api",
            "--role",
            "read",
            "--for",
            "30m",
            "--reason",
            "INC-4312 checkout 500s",
        ],
    );
    assert_eq!(code, 0, "{request}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while got.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "no webhook arrived");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (headers, body) = got.lock().unwrap()[0].clone();
    let header = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    assert!(header("webhook-signature").is_some_and(|s| s.starts_with("v1,")), "{headers:?}");
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["type"], "request.created");
    assert_eq!(body["data"]["request_id"], request["id"]);
    assert_eq!(header("webhook-id").as_deref(), body["data"]["id"].as_str());
}

/// `ward insights`: sections of tables for people, the API's JSON with `-o json`; auditors and
/// admins only (exit 1 otherwise), a bad `--since` a usage error (exit 2).
fn insights_from_the_cli(server: &Server) {
    let (alice, bob, carol) = (server.token("alice"), server.token("bob"), server.token("carol"));
    let ask = [
        "request",
        "logs:payments-api",
        "--role",
        "read",
        "--for",
        "30m",
        "--reason",
        "INC-4312 checkout 500s",
    ];
    let (code, request) = server.json(&alice, &ask);
    assert_eq!(code, 0, "{request}");
    let approved = server.ward(&bob, &["approve", request["id"].as_str().unwrap()]);
    assert!(approved.status.success(), "{}", stderr(&approved));
    let check = ["check", "--principal", "alice", "--action", "read", "--resource", "logs:payments-api"];
    assert!(server.ward(&alice, &check).status.success());

    let table = server.ward(&carol, &["insights"]);
    assert!(table.status.success(), "{}", stderr(&table));
    let table = String::from_utf8(table.stdout).unwrap();
    for section in [
        "Insights from",
        "Requested vs used time",
        "Grants never used",
        "Eligible, never asked",
        "Approvals (a pattern",
        "Maximum durations nobody comes near",
    ] {
        assert!(table.contains(section), "{section}: {table}");
    }
    assert!(table.contains("logs:payments-api") && table.contains("bob"), "{table}");

    let (code, report) = server.json(&carol, &["insights", "--since", "7d"]);
    assert_eq!(code, 0, "{report}");
    let since: jiff::Timestamp = report["since"].as_str().unwrap().parse().unwrap();
    let until: jiff::Timestamp = report["until"].as_str().unwrap().parse().unwrap();
    assert_eq!(until.as_second() - since.as_second(), 7 * 86_400);
    let read = report["roles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["resource"] == "logs:payments-api" && r["role"] == "read")
        .unwrap()
        .clone();
    assert_eq!((read["grants"].as_u64(), read["grants_open"].as_u64()), (Some(1), Some(1)));

    let refused = server.ward(&alice, &["insights"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(stderr(&refused).contains("auditor or admin role"), "{}", stderr(&refused));
    for bad in ["soon", "401d", "2026-01-01T00:00:00Z"] {
        let out = server.ward(&carol, &["insights", "--since", bad]);
        assert_eq!(out.status.code(), Some(2), "{bad}: {}", stderr(&out));
        assert!(stderr(&out).contains("--since"), "{}", stderr(&out));
    }
}

#[test]
fn insights_from_the_cli_on_sqlite() {
    insights_from_the_cli(&Server::start(None));
}

#[test]
fn insights_from_the_cli_on_postgres() {
    if let Some(cluster) = ward_testkit::postgres() {
        insights_from_the_cli(&Server::start(Some(cluster.fresh_database())));
    }
}

/// A debug-level resource through `ward serve`: a grant raises the service's level (here a
/// program that keeps it in a file), its release puts back the level before, both on record; a
/// wrong level stops the start, named.
#[test]
fn a_debug_level_grant_raises_the_level_and_its_end_puts_it_back() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let world = dir.path().join("quickstart");
    copy_dir(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/quickstart")), &world);
    let program = world.join("orders-loglevel");
    std::fs::write(
        &program,
        "#!/bin/sh\nstate=\"$(dirname \"$0\")/orders.level\"\ncase \"$1\" in\n  get) cat \"$state\" 2>/dev/null || echo info ;;\n  set) printf '%s\\n' \"$2\" > \"$state\" ;;\n  *) exit 64 ;;\nesac\n",
    )
    .unwrap();
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(
        world.join("policies/orders-debug.cedar"),
        "@id(\"orders.debug\")\n@approvals(\"1\")\n@max_duration(\"2h\")\npermit (principal in Ward::Group::\"engineering\", \
         action == Ward::Action::\"request\", resource == Ward::Resource::\"debug:orders\") when { context.role == \"debug\" };\n\
         @id(\"orders.debug-approvers\")\npermit (principal in Ward::Group::\"payments-leads\", action == Ward::Action::\"approve\", \
         resource == Ward::Resource::\"debug:orders\");\n",
    )
    .unwrap();
    let config = world.join("ward.toml");
    let base = std::fs::read_to_string(&config).unwrap();
    let resource = |level: &str| {
        format!(
            "{base}\n[resources.\"debug:orders\"]\nkind = \"debug-level\"\nroles = [\"debug\"]\ndriver = \"command\"\n\
             command = [\"{}\"]\nlevel = \"{level}\"\nlogs = \"logs:payments-api\"\n",
            program.display()
        )
    };
    std::fs::write(&config, resource("debug; rm -rf /")).unwrap();
    let out = serve_refused(&config, &dir.path().join("data"));
    assert!(stderr(&out).contains("resources.\"debug:orders\".level"), "{}", stderr(&out));

    std::fs::write(&config, resource("debug")).unwrap();
    let level = || std::fs::read_to_string(world.join("orders.level")).unwrap_or_default().trim().to_owned();
    let wait_for = |wanted: &str| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while level() != wanted {
            assert!(Instant::now() < deadline, "the level stayed {:?}, not {wanted}", level());
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let server = Server::start_in(dir, Vec::new());
    let (alice, bob, carol) = (server.token("alice"), server.token("bob"), server.token("carol"));
    let ask =
        ["request", "debug:orders", "--role", "debug", "--for", "30m", "--reason", "INC-4312 orders stuck"];
    let (code, request) = server.json(&alice, &ask);
    assert_eq!(code, 0, "{request}");
    let (code, approved) = server.json(&bob, &["approve", request["id"].as_str().unwrap()]);
    assert_eq!(code, 0, "{approved}");
    let grant_id = approved["grant_id"].as_str().unwrap().to_owned();
    wait_for("debug");
    // The service's output goes to logs:payments-api: the debug grant reads it, masked, for its
    // window (alice holds no grant on those logs themselves).
    let read = server.ward(&alice, &["logs", "search", "logs:payments-api", "--limit", "5", "-o", "json"]);
    assert!(read.status.success(), "{}", stderr(&read));
    let summary: Value =
        serde_json::from_slice(read.stdout.split(|&b| b == b'\n').rfind(|l| !l.is_empty()).unwrap()).unwrap();
    assert_eq!(summary["summary"]["grant_id"], grant_id.as_str());
    let unmasked = server.ward(&alice, &["logs", "search", "logs:payments-api", "--unmasked"]);
    assert_eq!(unmasked.status.code(), Some(1), "a debug grant never reads unmasked");
    assert!(server.ward(&alice, &["release", &grant_id]).status.success());
    wait_for("info");
    let after = server.ward(&alice, &["logs", "search", "logs:payments-api"]);
    assert_eq!(after.status.code(), Some(1), "not after the window: {}", stderr(&after));
    let (code, raised) = server.json(&carol, &["audit", "events", "--type", "debug_level.raised"]);
    assert_eq!(code, 0);
    let raised = &raised.as_array().unwrap()[0];
    assert_eq!(raised["resource"], "debug:orders");
    assert_eq!(
        (raised["details"]["before"].as_str(), raised["details"]["after"].as_str()),
        (Some("info"), Some("debug"))
    );
    let (_, restored) = server.json(&carol, &["audit", "events", "--type", "debug_level.restored"]);
    let restored = &restored.as_array().unwrap()[0];
    assert_eq!(restored["details"]["grant_ids"], serde_json::json!([grant_id]));
    assert_eq!(restored["details"]["after"], "info");
}

/// A postgres-role resource through `ward serve`: the holder gets the temporary login's
/// credentials once, `psql` signs in with them during the window, and the grant's end cuts the
/// open session and the login, all on record.
#[test]
fn a_postgres_role_grant_gives_psql_a_login_for_the_window_only() {
    let Some(cluster) = ward_testkit::postgres_with_passwords() else { return };
    let url = cluster.fresh_database();
    let admin = std::process::Command::new(cluster.bin().join("psql"))
        .args([&url, "-v", "ON_ERROR_STOP=1", "-c"])
        .arg("CREATE ROLE orders_readonly NOLOGIN; CREATE TABLE orders (id int); INSERT INTO orders VALUES (42); GRANT SELECT ON orders TO orders_readonly")
        .output()
        .unwrap();
    assert!(admin.status.success(), "{}", stderr(&admin));
    let dir = tempfile::tempdir().unwrap();
    let world = dir.path().join("quickstart");
    copy_dir(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/quickstart")), &world);
    std::fs::create_dir_all(world.join("secrets")).unwrap();
    std::fs::write(world.join("secrets/orders-db.url"), &url).unwrap();
    std::fs::write(
        world.join("policies/orders-db.cedar"),
        "@id(\"orders.db\")\n@approvals(\"1\")\n@max_duration(\"2h\")\npermit (principal in Ward::Group::\"engineering\", \
         action == Ward::Action::\"request\", resource == Ward::Resource::\"db:orders\") when { context.role == \"read\" };\n\
         @id(\"orders.db-approvers\")\npermit (principal in Ward::Group::\"payments-leads\", action == Ward::Action::\"approve\", \
         resource == Ward::Resource::\"db:orders\");\n",
    )
    .unwrap();
    let config = world.join("ward.toml");
    let base = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        format!(
            "{base}\n[resources.\"db:orders\"]\nkind = \"postgres-role\"\nroles = [\"read\"]\n\
             url_file = \"secrets/orders-db.url\"\nmember_of = \"orders_readonly\"\n"
        ),
    )
    .unwrap();
    let server = Server::start_in(dir, Vec::new());
    let (alice, bob, carol) = (server.token("alice"), server.token("bob"), server.token("carol"));
    let ask = ["request", "db:orders", "--role", "read", "--for", "30m", "--reason", "INC-4312 orders stuck"];
    let (code, request) = server.json(&alice, &ask);
    assert_eq!(code, 0, "{request}");
    let (code, approved) = server.json(&bob, &["approve", request["id"].as_str().unwrap()]);
    assert_eq!(code, 0, "{approved}");
    let grant_id = approved["grant_id"].as_str().unwrap().to_owned();

    let (code, login) = server.json(&alice, &["credentials", &grant_id]);
    assert_eq!(code, 0, "{login}");
    for key in ["username", "password", "host", "port", "dbname", "expires_at"] {
        assert!(!login[key].is_null(), "{key}: {login}");
    }
    let again = server.ward(&alice, &["credentials", &grant_id]);
    assert_eq!(again.status.code(), Some(1));
    assert!(stderr(&again).contains("shown once already"), "{}", stderr(&again));
    let psql = |sql: &str| {
        let mut command = std::process::Command::new(cluster.bin().join("psql"));
        command
            .args(["-h", login["host"].as_str().unwrap(), "-p", &login["port"].to_string()])
            .args(["-U", login["username"].as_str().unwrap(), "-d", login["dbname"].as_str().unwrap()])
            .args(["-w", "-At", "-c", sql])
            .env("PGPASSWORD", login["password"].as_str().unwrap());
        command
    };
    let read = psql("SELECT id FROM orders").output().unwrap();
    assert!(read.status.success(), "{}", stderr(&read));
    assert_eq!(String::from_utf8_lossy(&read.stdout).trim(), "42");
    let mut open = psql("SELECT pg_sleep(60)").stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(500));

    assert!(server.ward(&alice, &["release", &grant_id]).status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let cut = loop {
        if let Some(status) = open.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the open session outlived the grant");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!cut.success());
    let after = psql("SELECT id FROM orders").output().unwrap();
    assert!(!after.status.success(), "psql signed in after the grant's end");

    // Recorded once the server confirmed the login is gone, a moment after the session's end.
    let removed = loop {
        let (_, removed) = server.json(&carol, &["audit", "events", "--type", "provisioner.removed"]);
        if let Some(removed) = removed.as_array().unwrap().first() {
            break removed.clone();
        }
        assert!(Instant::now() < deadline, "no provisioner.removed");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        (removed["grant_id"].as_str(), removed["details"]["sessions_ended"].as_u64()),
        (Some(grant_id.as_str()), Some(1))
    );
    let (_, issued) = server.json(&carol, &["audit", "events", "--type", "credentials.issued"]);
    assert_eq!(issued.as_array().unwrap().len(), 1);
    // The grant's audit counts the login's removal in `revoked_promptly`, with its lag.
    let (_, audit) = server.json(&carol, &["audit", "grant", &grant_id]);
    assert!(audit["effect_lag_ms"].as_i64().is_some(), "{audit}");
    assert_eq!(audit["revoked_promptly"]["verdict"], "pass", "{audit}");
    let reasons = audit["revoked_promptly"]["reasons"].to_string();
    assert!(reasons.contains("its database login was taken back"), "{reasons}");
    assert!(!issued.to_string().contains(login["password"].as_str().unwrap()));
}

/// `ward login` as a person would run it, with `session` as the session file; stderr piped (it
/// shows the code or the URL to open).
fn login(server: &Server, session: &Path, flow: &str) -> Child {
    Command::new(WARD)
        .args(["login", "--flow", flow, "-o", "json"])
        .env("WARD_URL", &server.url)
        .env("WARD_SESSION", session)
        .env_remove("WARD_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The first line of `child`'s stderr that starts with `prefix` (without it), and the line
/// after it.
fn stderr_lines(child: &mut Child, prefix: &str) -> (String, String) {
    use std::io::BufRead;
    let stderr = child.stderr.as_mut().unwrap();
    let mut lines = std::io::BufReader::new(stderr).lines();
    let mut next = || lines.next().expect("stderr ended first").unwrap();
    loop {
        if let Some(rest) = next().strip_prefix(prefix) {
            return (rest.trim().to_owned(), next());
        }
    }
}

/// A command with the kept session (no token).
fn with_session(server: &Server, session: &Path, args: &[&str]) -> (i32, Value, String) {
    let out = Command::new(WARD)
        .args(args)
        .args(["-o", "json"])
        .env("WARD_URL", &server.url)
        .env("WARD_SESSION", session)
        .env_remove("WARD_TOKEN")
        .output()
        .unwrap();
    let value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code().unwrap(), value, stderr(&out))
}

#[tokio::test(flavor = "multi_thread")]
async fn login_through_the_identity_provider_and_out_again() {
    use std::os::unix::fs::PermissionsExt;
    let Some(provider) = ward_testkit::oidc_provider() else { return };
    let dir = tempfile::tempdir().unwrap();
    let world = dir.path().join("quickstart");
    copy_dir(&PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/quickstart")), &world);
    let oidc = format!(
        "\n[identity.oidc]\nissuer = \"{}\"\naudience = \"ward\"\nclient_id = \"{}\"\n\
         username_claim = \"preferred_username\"\n",
        provider.issuer(),
        provider.client_id()
    );
    let mut toml = std::fs::read_to_string(world.join("ward.toml")).unwrap();
    toml.push_str(&oidc);
    std::fs::write(world.join("ward.toml"), toml).unwrap();
    let server = Server::start_in(dir, Vec::new());
    let home = tempfile::tempdir().unwrap();
    let session = home.path().join("ward/session.json");

    // The device flow: the code is shown, confirmed in the provider's (test) browser.
    provider.set_ttl(30).await;
    let mut signing_in = login(&server, &session, "auto");
    let (_, confirm) = stderr_lines(&mut signing_in, "To sign in, open");
    let code = confirm.strip_prefix("and confirm the code: ").unwrap();
    provider.confirm_device_code(code, "alice").await;
    let out = signing_in.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let me: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((&me["name"], &me["via"]), (&json!("alice"), &json!("oidc")), "{me}");
    let mode = std::fs::metadata(&session).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the session is its owner's alone");

    // Later commands use it; with 30 s left (under a minute), each renews it first.
    let kept: Value = serde_json::from_str(&std::fs::read_to_string(&session).unwrap()).unwrap();
    let (code, me, err) = with_session(&server, &session, &["whoami"]);
    assert_eq!((code, &me["name"]), (0, &json!("alice")), "{err}");
    let renewed: Value = serde_json::from_str(&std::fs::read_to_string(&session).unwrap()).unwrap();
    assert_ne!(renewed["access_token"], kept["access_token"], "renewed with the refresh token");
    let (code, requested, err) = with_session(
        &server,
        &session,
        &[
            "request",
            "logs:payments-api",
            "--role",
            "read",
            "--for",
            "30m",
            "--reason",
            "INC-9 card declines",
        ],
    );
    assert_eq!(code, 0, "{err} {requested}");

    // The session is for that server only: another URL never gets the token.
    let elsewhere = Command::new(WARD)
        .args(["whoami"])
        .env("WARD_URL", "http://127.0.0.1:9")
        .env("WARD_SESSION", &session)
        .env_remove("WARD_TOKEN")
        .output()
        .unwrap();
    assert!(stderr(&elsewhere).contains("no token: sign in with `ward login`"), "{}", stderr(&elsewhere));

    // The browser flow, back to a loopback listener (bob, this time).
    let mut signing_in = login(&server, &session, "browser");
    let (_, url) = stderr_lines(&mut signing_in, "To sign in, open this in a browser");
    let redirect = provider.authorize(&url, "bob").await;
    assert!(redirect.contains("code="), "{redirect}");
    let page = reqwest::get(&redirect).await.unwrap().text().await.unwrap();
    assert_eq!(page, "Signed in to ward. You can close this window.");
    let out = signing_in.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let (_, me, _) = with_session(&server, &session, &["whoami"]);
    assert_eq!(me["name"], "bob");

    let (code, out, _) = with_session(&server, &session, &["logout"]);
    assert_eq!((code, &out["signed_out"]), (0, &json!(true)));
    assert!(!session.exists());
    let (code, _, err) = with_session(&server, &session, &["whoami"]);
    assert_eq!(code, 2);
    assert!(err.contains("ward login"), "{err}");
}
