//! Helpers for ward's tests and benchmarks.
//!
//! [`browser()`] runs Debian's chromedriver and Chromium for the web UI's tests, skipped
//! without them unless `CI` is set.
//!
//! [`oidc_provider()`] runs a real OpenID provider (panva's `oidc-provider`) for the identity
//! tests, skipped without Node.js unless `CI` is set.
//!
//! [`postgres()`] starts one private PostgreSQL cluster per test process from the system's
//! binaries (`initdb`, `postgres`), on a free loopback port, and hands out fresh databases.
//! A watchdog shell stops the cluster and deletes its files when the test process exits.
//! Without PostgreSQL binaries the tests that need it are skipped, unless `CI` is set: then
//! a missing PostgreSQL is a failure.
#![allow(clippy::expect_used, clippy::unwrap_used)] // test support: failing loudly is the point

mod browser;
mod oidc;
pub use browser::{CHROMIUM, TestBrowser, browser};
pub use oidc::{TestProvider, claims_of, oidc_provider, oidc_provider_on};

use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub struct TempPostgres {
    bin: PathBuf,
    /// The cluster's directory: its data, socket, log and the watchdog's marks.
    dir: PathBuf,
    port: u16,
    run_as_postgres: bool,
    /// The superuser's password, when connections over TCP must give one.
    password: Option<&'static str>,
}

/// The superuser's password in [`postgres_with_passwords`]' cluster.
const SUPERUSER_PASSWORD: &str = "ward-test-superuser";

static CLUSTER: OnceLock<Option<TempPostgres>> = OnceLock::new();
static NEXT_DB: AtomicU32 = AtomicU32::new(0);

/// The process-wide throwaway cluster, or `None` (with a note on stderr) when PostgreSQL is not
/// installed and `CI` is not set.
pub fn postgres() -> Option<&'static TempPostgres> {
    CLUSTER
        .get_or_init(|| match find_bin() {
            Some(bin) => Some(TempPostgres::start(bin, FAST_AND_LOOSE, None)),
            None if std::env::var_os("CI").is_some() => {
                panic!("CI is set but no PostgreSQL binaries (initdb) were found; install postgresql")
            }
            None => {
                eprintln!("note: PostgreSQL binaries not found; skipping PostgreSQL tests");
                None
            }
        })
        .as_ref()
}

/// Tests need no durability: a crash loses the throwaway cluster anyway.
const FAST_AND_LOOSE: &str = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off";

/// A cluster of its own with PostgreSQL's durable defaults (fsync, synchronous_commit and
/// full_page_writes on), for benchmarks that compare commit rates; `None` without PostgreSQL.
/// It stops when the process ends.
pub fn durable_postgres() -> Option<TempPostgres> {
    find_bin().map(|bin| TempPostgres::start(bin, "", None))
}

/// A cluster of its own, as fast and loose as [`postgres()`]'s, for a test that stops or restarts
/// it ([`TempPostgres::restart`]) without disturbing the others. `None` without PostgreSQL (a
/// failure with `CI` set).
pub fn postgres_of_its_own() -> Option<TempPostgres> {
    match find_bin() {
        Some(bin) => Some(TempPostgres::start(bin, FAST_AND_LOOSE, None)),
        None if std::env::var_os("CI").is_some() => {
            panic!("CI is set but no PostgreSQL binaries (initdb) were found; install postgresql")
        }
        None => None,
    }
}

/// A cluster of its own where connections over TCP sign in with a password (SCRAM-SHA-256), as
/// a real server's do: for tests of credentials ward hands out. Its URLs carry the superuser's
/// password. `None` without PostgreSQL (a failure with `CI` set, as [`postgres()`]).
pub fn postgres_with_passwords() -> Option<TempPostgres> {
    match find_bin() {
        Some(bin) => Some(TempPostgres::start(bin, FAST_AND_LOOSE, Some(SUPERUSER_PASSWORD))),
        None if std::env::var_os("CI").is_some() => {
            panic!("CI is set but no PostgreSQL binaries (initdb) were found; install postgresql")
        }
        None => None,
    }
}

fn find_bin() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("WARD_PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| entry.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    versions.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    versions.pop()
}

/// A loopback port free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl TempPostgres {
    fn start(bin: PathBuf, settings: &str, password: Option<&'static str>) -> Self {
        // initdb refuses to run as root; run the cluster as the `postgres` user then.
        let run_as_postgres = std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false);
        let dir = std::env::temp_dir().join(format!("ward-pg-{}-{}", std::process::id(), free_port()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        if run_as_postgres {
            run(Command::new("chown").arg("postgres:").arg(&dir), "chown");
        }
        let data = dir.join("data");
        let mut initdb = command(run_as_postgres, &bin.join("initdb"));
        initdb.args(["-U", "ward", "-E", "UTF8", "--no-sync", "-D"]).arg(&data);
        match password {
            None => {
                initdb.args(["-A", "trust"]);
            }
            Some(password) => {
                let file = dir.join("superuser.pw");
                std::fs::write(&file, password).unwrap();
                if run_as_postgres {
                    run(Command::new("chown").arg("postgres:").arg(&file), "chown");
                }
                initdb.args(["--auth-local=trust", "--auth-host=scram-sha-256"]).arg("--pwfile").arg(&file);
            }
        }
        run(&mut initdb, "initdb");

        let port = free_port();
        // The watchdog: start postgres, poll for the test process, stop and clean up after it.
        // Stopped while `restarting` is there (see `restart`), it says so (`down`) and starts
        // postgres again once that mark is gone.
        let script = r#"
            while :; do
                "$1/postgres" -D "$2/data" -p "$3" -k "$2" -c listen_addresses=127.0.0.1 \
                    $5 -c max_connections=200 >>"$2/log" 2>&1 &
                pg=$!
                while [ -d "/proc/$4" ] && kill -0 "$pg" 2>/dev/null; do sleep 0.2; done
                kill -INT "$pg" 2>/dev/null; wait "$pg"
                [ -e "$2/restarting" ] && [ -d "/proc/$4" ] || break
                touch "$2/down"
                while [ -e "$2/restarting" ] && [ -d "/proc/$4" ]; do sleep 0.1; done
                rm -f "$2/down"
            done
            rm -rf "$2"
        "#;
        let mut watchdog = command(run_as_postgres, Path::new("sh"));
        watchdog
            .arg("-c")
            .arg(script)
            .arg("ward-pg-watchdog")
            .arg(&bin)
            .arg(&dir)
            .arg(port.to_string())
            .arg(std::process::id().to_string())
            .arg(settings)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // Never waited for: the watchdog outlives the test process by design.
        #[allow(clippy::zombie_processes)]
        watchdog.spawn().expect("start the PostgreSQL watchdog");

        let cluster = Self { bin, dir, port, run_as_postgres, password };
        cluster.wait_until_ready();
        cluster
    }

    /// Whether the server accepts connections.
    fn ready(&self) -> bool {
        Command::new(self.bin.join("pg_isready"))
            .args(["-q", "-h", "127.0.0.1", "-p", &self.port.to_string()])
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }

    fn wait_until_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.ready() {
            assert!(Instant::now() < deadline, "PostgreSQL did not start; see {}/log", self.dir.display());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server (a fast shutdown: open connections are cut, open transactions rolled
    /// back) and returns once it is down; [`TempPostgres::start_again`] starts it on the same
    /// port and data. Only for a cluster of a test's own ([`postgres_of_its_own`]): the others
    /// are shared.
    pub fn stop_for_restart(&self) {
        self.stop_with("-INT");
    }

    /// As [`TempPostgres::stop_for_restart`], but an immediate shutdown, as a crash: the
    /// server's processes quit at once, and what the WAL buffers held and no commit had
    /// flushed is lost (it is replayed from the WAL on disk at the next start). Meaningful on a
    /// cluster with durable settings ([`durable_postgres`]).
    pub fn crash_for_restart(&self) {
        self.stop_with("-QUIT");
    }

    fn stop_with(&self, signal: &str) {
        std::fs::write(self.dir.join("restarting"), "").unwrap();
        let pid = std::fs::read_to_string(self.dir.join("data/postmaster.pid")).unwrap();
        let pid = pid.lines().next().unwrap().trim().to_owned();
        run(Command::new("kill").args([signal, &pid]), "kill postgres");
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.dir.join("down").exists() {
            assert!(Instant::now() < deadline, "PostgreSQL did not stop; see {}/log", self.dir.display());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the server [`TempPostgres::stop_for_restart`] stopped; returns once it accepts
    /// connections.
    pub fn start_again(&self) {
        std::fs::remove_file(self.dir.join("restarting")).unwrap();
        self.wait_until_ready();
    }

    /// The directory of the PostgreSQL binaries (`pgbench` and friends).
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Creates a fresh, empty database and returns its URL.
    pub fn fresh_database(&self) -> String {
        let name = format!("ward_test_{}", NEXT_DB.fetch_add(1, Ordering::Relaxed));
        let mut createdb = command(self.run_as_postgres, &self.bin.join("createdb"));
        createdb.args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "ward", &name]);
        if let Some(password) = self.password {
            createdb.env("PGPASSWORD", password);
        }
        run(&mut createdb, "createdb");
        match self.password {
            Some(password) => format!("postgres://ward:{password}@127.0.0.1:{}/{name}", self.port),
            None => format!("postgres://ward@127.0.0.1:{}/{name}", self.port),
        }
    }
}

fn command(as_postgres: bool, program: &Path) -> Command {
    if as_postgres {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn run(command: &mut Command, what: &str) {
    let output = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
