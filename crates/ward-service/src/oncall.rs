//! Who is on call: from a schedule file the configuration points to, and/or an HTTP lookup.
//!
//! Policies see the result as `context.on_call` and `context.on_call_schedules`. A source that
//! cannot be read never makes anyone on call (fail closed: the request waits for a person); the
//! broker records the problem as `oncall.unavailable`. A schedule file that is there but stops
//! parsing keeps the last valid schedule in force (an edit in progress must not take everyone
//! off call); a schedule file that cannot be read at all makes nobody on call by it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;
use ward_core::directory::Directory;
use ward_core::duration::parse_duration;

/// The longest answer an on-call lookup may send.
const MAX_LOOKUP_BYTES: usize = 64 * 1024;
/// Schedules one answer may name.
const MAX_SCHEDULES: usize = 100;
pub const DEFAULT_LOOKUP_TIMEOUT_SECONDS: u64 = 2;

/// `[oncall]` in ward.toml.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OncallFile {
    /// A schedule file (TOML: `[[rotation]]` and `[[shift]]`), relative to ward.toml.
    pub schedule: Option<PathBuf>,
    /// `https://pager.example/oncall?user={user}` answering `{"schedules": ["name", …]}`.
    pub url: Option<String>,
    pub timeout: Option<String>,
}

#[derive(Debug, Clone)]
pub struct OncallSettings {
    pub schedule_path: Option<PathBuf>,
    /// Read and validated when the configuration loaded.
    pub schedule: Schedule,
    pub url: Option<String>,
    pub timeout: Duration,
}

/// Why a schedule file gave no schedule.
enum ScheduleError {
    /// It cannot be read (missing, unreadable): nobody is on call by it.
    Read(String),
    /// It is there but does not parse: the last valid one stays in force.
    Invalid(String),
}

impl ScheduleError {
    fn message(self) -> String {
        match self {
            Self::Read(message) | Self::Invalid(message) => message,
        }
    }
}

impl OncallSettings {
    /// Validates `[oncall]`; `base` is ward.toml's folder. The schedule file must parse now:
    /// ward does not start on a schedule it cannot read.
    pub fn load(file: OncallFile, base: &Path, directory: &Directory) -> Result<Self, String> {
        let schedule_path = file.schedule.map(|p| if p.is_absolute() { p } else { base.join(p) });
        let schedule = match &schedule_path {
            Some(path) => read_schedule(path, directory).map_err(ScheduleError::message)?,
            None => Schedule::default(),
        };
        if let Some(url) = &file.url {
            let parsed = reqwest::Url::parse(&url.replace("{user}", "user"))
                .map_err(|e| format!("oncall.url `{url}` is not a URL: {e}"))?;
            if !matches!(parsed.scheme(), "http" | "https") || !url.contains("{user}") {
                return Err(format!("oncall.url `{url}` must be an http(s) URL with a {{user}} placeholder"));
            }
        }
        let timeout_seconds = match &file.timeout {
            Some(text) => parse_duration(text).map_err(|e| format!("oncall.timeout: {e}"))?,
            None => DEFAULT_LOOKUP_TIMEOUT_SECONDS,
        };
        if timeout_seconds > 30 {
            return Err("oncall.timeout may be at most 30s: requests wait for the lookup".into());
        }
        Ok(Self { schedule_path, schedule, url: file.url, timeout: Duration::from_secs(timeout_seconds) })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScheduleFile {
    #[serde(default)]
    rotation: Vec<RotationFile>,
    #[serde(default)]
    shift: Vec<ShiftFile>,
}

/// Hands over from one user to the next every `every`, from `start` on.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RotationFile {
    schedule: String,
    start: String,
    every: String,
    users: Vec<String>,
}

/// One user on call for one schedule in a window; replaces the rotation while it lasts.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ShiftFile {
    schedule: String,
    user: String,
    from: String,
    until: String,
}

#[derive(Debug, Clone)]
struct Rotation {
    schedule: String,
    start: Timestamp,
    every_seconds: i64,
    users: Vec<String>,
}

#[derive(Debug, Clone)]
struct Shift {
    schedule: String,
    user: String,
    from: Timestamp,
    until: Timestamp,
}

/// A parsed on-call schedule file.
#[derive(Debug, Clone, Default)]
pub struct Schedule {
    rotations: Vec<Rotation>,
    shifts: Vec<Shift>,
}

fn read_schedule(path: &Path, directory: &Directory) -> Result<Schedule, ScheduleError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ScheduleError::Read(format!("cannot read {}: {e}", path.display())))?;
    Schedule::parse(&text, directory).map_err(|e| ScheduleError::Invalid(format!("{}: {e}", path.display())))
}

fn is_schedule_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl Schedule {
    /// Parses a schedule file, checking every user against the directory.
    pub fn parse(text: &str, directory: &Directory) -> Result<Self, String> {
        let file: ScheduleFile = toml::from_str(text).map_err(|e| e.to_string().trim_end().to_owned())?;
        let user = |what: &str, name: &str| {
            if directory.user(name).is_some() {
                Ok(name.to_owned())
            } else {
                Err(format!("{what} names `{name}`, who is not a configured user"))
            }
        };
        let schedule = |what: &str, name: &str| {
            if is_schedule_name(name) {
                Ok(name.to_owned())
            } else {
                Err(format!("{what}: `{name}` is not a schedule name (letters, digits, `-`, `_`, `.`)"))
            }
        };
        let time = |what: &str, text: &str| {
            text.parse::<Timestamp>()
                .map_err(|_| format!("{what}: `{text}` is not an RFC 3339 time with an offset"))
        };
        let mut rotations = Vec::new();
        for (i, r) in file.rotation.into_iter().enumerate() {
            let what = format!("rotation {} ({})", i + 1, r.schedule);
            let every = parse_duration(&r.every).map_err(|e| format!("{what}: every: {e}"))?;
            if every < 60 {
                return Err(format!("{what}: every must be at least 1m"));
            }
            if r.users.is_empty() {
                return Err(format!("{what}: users is empty"));
            }
            rotations.push(Rotation {
                schedule: schedule(&what, &r.schedule)?,
                start: time(&what, &r.start)?,
                every_seconds: i64::try_from(every).map_err(|_| format!("{what}: every is too long"))?,
                users: r.users.iter().map(|u| user(&what, u)).collect::<Result<_, _>>()?,
            });
        }
        let mut shifts = Vec::new();
        for (i, s) in file.shift.into_iter().enumerate() {
            let what = format!("shift {} ({})", i + 1, s.schedule);
            let (from, until) = (time(&what, &s.from)?, time(&what, &s.until)?);
            if until <= from {
                return Err(format!("{what}: until must be after from"));
            }
            shifts.push(Shift {
                schedule: schedule(&what, &s.schedule)?,
                user: user(&what, &s.user)?,
                from,
                until,
            });
        }
        Ok(Self { rotations, shifts })
    }

    /// The schedules `user` is on call for at `at`. A shift replaces its schedule's rotation
    /// while it lasts.
    pub fn on_call(&self, user: &str, at: Timestamp) -> BTreeSet<String> {
        let shifted: BTreeSet<&str> = self
            .shifts
            .iter()
            .filter(|s| s.from <= at && at < s.until)
            .map(|s| s.schedule.as_str())
            .collect();
        let by_shift = self
            .shifts
            .iter()
            .filter(|s| s.user == user && s.from <= at && at < s.until)
            .map(|s| &s.schedule);
        let by_rotation =
            self.rotations.iter().filter(|r| !shifted.contains(r.schedule.as_str())).filter(|r| {
                let elapsed = at.duration_since(r.start);
                if elapsed < SignedDuration::ZERO {
                    return false;
                }
                let turn = elapsed.as_secs() / r.every_seconds;
                let len = i64::try_from(r.users.len()).unwrap_or(i64::MAX);
                usize::try_from(turn % len).ok().and_then(|i| r.users.get(i)).is_some_and(|u| u == user)
            });
        by_shift.chain(by_rotation.map(|r| &r.schedule)).cloned().collect()
    }
}

/// A source that could not answer, and what was decided instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OncallProblem {
    /// `schedule` or `lookup`.
    pub source: &'static str,
    pub error: String,
    pub fallback: &'static str,
}

/// The answer to "which schedules is this user on call for?".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OncallAnswer {
    pub schedules: Vec<String>,
    /// Problems to record (each once).
    pub problems: Vec<OncallProblem>,
}

struct Loaded {
    schedule: Schedule,
    /// The file's modification time and length when it was last read, valid or not.
    seen: Option<(SystemTime, u64)>,
}

/// The on-call sources, as the broker asks them.
pub struct Oncall {
    settings: OncallSettings,
    directory: Directory,
    loaded: Mutex<Loaded>,
    http: reqwest::Client,
}

impl Oncall {
    /// Fails only when no HTTP client can be built (a broken TLS setup): ward then does not
    /// start, rather than look up without a timeout.
    pub fn new(settings: OncallSettings, directory: Directory) -> Result<Self, String> {
        let seen = settings.schedule_path.as_deref().and_then(file_stamp);
        let loaded = Mutex::new(Loaded { schedule: settings.schedule.clone(), seen });
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cannot set up the on-call lookup's HTTP client: {e}"))?;
        Ok(Self { settings, directory, loaded, http })
    }

    pub fn is_configured(&self) -> bool {
        self.settings.schedule_path.is_some() || self.settings.url.is_some()
    }

    /// The schedules `user` is on call for at `now`, from every configured source.
    pub async fn lookup(&self, user: &str, now: Timestamp) -> OncallAnswer {
        let mut answer = OncallAnswer::default();
        let mut schedules = BTreeSet::new();
        if self.settings.schedule_path.is_some() {
            let (on_call, problem) = self.on_schedule(user, now);
            schedules.extend(on_call);
            answer.problems.extend(problem);
        }
        if let Some(url) = &self.settings.url {
            match self.ask(url, user).await {
                Ok(names) => schedules.extend(names),
                Err(error) => answer.problems.push(OncallProblem {
                    source: "lookup",
                    error,
                    fallback: "not on call by the lookup (the request waits for approvers)",
                }),
            }
        }
        answer.schedules = schedules.into_iter().collect();
        answer
    }

    /// The schedules `user` is on at `now` by the schedule in force: the file is re-read when
    /// it changed; a file that no longer parses leaves the previous schedule in force and is
    /// reported once per change.
    fn on_schedule(&self, user: &str, now: Timestamp) -> (BTreeSet<String>, Option<OncallProblem>) {
        let Ok(mut loaded) = self.loaded.lock() else {
            return (BTreeSet::new(), None);
        };
        let Some(path) = &self.settings.schedule_path else {
            return (loaded.schedule.on_call(user, now), None);
        };
        let stamp = file_stamp(path);
        if stamp.is_some() && stamp == loaded.seen {
            return (loaded.schedule.on_call(user, now), None);
        }
        loaded.seen = stamp;
        match read_schedule(path, &self.directory) {
            Ok(schedule) => {
                loaded.schedule = schedule;
                (loaded.schedule.on_call(user, now), None)
            }
            Err(ScheduleError::Invalid(error)) => {
                let problem = OncallProblem {
                    source: "schedule",
                    error,
                    fallback: "the last valid schedule stays in force",
                };
                (loaded.schedule.on_call(user, now), Some(problem))
            }
            // Read again at the next lookup (it has no stamp to remember).
            Err(ScheduleError::Read(error)) => {
                let problem = OncallProblem {
                    source: "schedule",
                    error,
                    fallback: "nobody is on call by the schedule",
                };
                (BTreeSet::new(), Some(problem))
            }
        }
    }

    async fn ask(&self, url: &str, user: &str) -> Result<Vec<String>, String> {
        #[derive(Deserialize)]
        struct Answer {
            schedules: Vec<String>,
        }
        let encoded: String = form_urlencoded::byte_serialize(user.as_bytes()).collect();
        let target = url.replace("{user}", &encoded);
        let mut response =
            self.http.get(&target).send().await.map_err(|e| describe(e, self.settings.timeout))?;
        if !response.status().is_success() {
            return Err(format!("the on-call lookup answered {}", response.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| describe(e, self.settings.timeout))? {
            if body.len() + chunk.len() > MAX_LOOKUP_BYTES {
                return Err(format!("the on-call lookup's answer is larger than {MAX_LOOKUP_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        let answer: Answer = serde_json::from_slice(&body)
            .map_err(|e| format!("the on-call lookup's answer is not {{\"schedules\": [...]}}: {e}"))?;
        if answer.schedules.len() > MAX_SCHEDULES || !answer.schedules.iter().all(|s| is_schedule_name(s)) {
            return Err("the on-call lookup named too many schedules or one that is not a name".into());
        }
        Ok(answer.schedules)
    }
}

fn describe(error: reqwest::Error, timeout: Duration) -> String {
    if error.is_timeout() {
        format!("the on-call lookup did not answer within {}s", timeout.as_secs())
    } else {
        // Without the URL: it may carry a key in its query.
        format!("the on-call lookup failed: {}", error.without_url())
    }
}

fn file_stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use ward_core::directory::UserEntry;

    use super::*;

    fn directory() -> Directory {
        let users = ["dave", "erin", "bob"]
            .into_iter()
            .map(|u| (u.to_owned(), UserEntry { groups: vec![] }))
            .collect::<BTreeMap<_, _>>();
        Directory::new(users, BTreeMap::new(), BTreeMap::new()).unwrap()
    }

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    const SCHEDULE: &str = r#"
        [[rotation]]
        schedule = "primary"
        start = "2026-11-02T09:00:00+01:00"
        every = "7d"
        users = ["dave", "erin"]

        [[shift]]
        schedule = "primary"
        user = "bob"
        from = "2026-11-20T12:00:00Z"
        until = "2026-11-20T14:00:00Z"
    "#;

    #[test]
    fn rotations_hand_over_and_shifts_replace_them() {
        let schedule = Schedule::parse(SCHEDULE, &directory()).unwrap();
        let on = |user, when| schedule.on_call(user, at(when)).into_iter().collect::<Vec<_>>();
        assert_eq!(on("dave", "2026-11-02T08:00:00Z"), ["primary"], "the first week is dave's");
        assert!(on("dave", "2026-11-02T07:59:59Z").is_empty(), "before the rotation starts");
        assert_eq!(on("erin", "2026-11-09T08:00:00Z"), ["primary"], "the second week is erin's");
        assert!(on("dave", "2026-11-09T08:00:00Z").is_empty());
        assert_eq!(on("dave", "2026-11-16T08:00:00Z"), ["primary"], "and round again");
        // The override shift: bob replaces dave for two hours.
        assert_eq!(on("bob", "2026-11-20T13:00:00Z"), ["primary"]);
        assert!(on("dave", "2026-11-20T13:00:00Z").is_empty());
        assert_eq!(on("dave", "2026-11-20T14:00:00Z"), ["primary"]);
    }

    #[test]
    fn malformed_schedules_say_what_is_wrong() {
        let dir = directory();
        let error = |text: &str| Schedule::parse(text, &dir).unwrap_err();
        assert!(error("[[rotation]]\nschedule = 1").contains("schedule"));
        let unknown = SCHEDULE.replace("\"erin\"]", "\"mallory\"]");
        assert!(error(&unknown).contains("mallory"), "{}", error(&unknown));
        let backwards = SCHEDULE.replace("14:00:00Z", "11:00:00Z");
        assert!(error(&backwards).contains("until must be after from"));
        let no_offset = SCHEDULE.replace("09:00:00+01:00", "09:00:00");
        assert!(error(&no_offset).contains("RFC 3339"));
        assert!(error("[[rotation]]\nschedule = \"a\"\nstart = \"2026-11-02T09:00:00Z\"\nevery = \"5s\"\nusers = [\"dave\"]").contains("at least 1m"));
        assert!(error("bogus = 1").contains("bogus"));
    }
}
