//! The `command` driver: a program of the operator's, run without a shell. `PROGRAM ARGS… get`
//! prints the level in force on its standard output; `PROGRAM ARGS… set LEVEL` puts a level in
//! force and exits 0 once it is. Anything else (another exit status, no output, a program that
//! does not end within the call timeout) is a failure, retried.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use async_trait::async_trait;
use tokio::io::AsyncReadExt;
use tokio::process::Command;

use crate::driver::{DriverError, LevelDriver, within};

/// What ward reads of a program's output, at most.
const MAX_OUTPUT: u64 = 4096;

pub struct CommandLevel {
    program: PathBuf,
    args: Vec<String>,
}

impl CommandLevel {
    pub fn new(program: PathBuf, args: Vec<String>) -> Self {
        Self { program, args }
    }

    async fn run(&self, extra: &[&str]) -> Result<String, DriverError> {
        run(&self.program, &self.args, extra).await
    }
}

/// Runs `program` with `args` then `extra`, without a shell: its standard output (at most
/// [`MAX_OUTPUT`] bytes) if it exits 0.
pub(crate) async fn run(program: &Path, args: &[String], extra: &[&str]) -> Result<String, DriverError> {
    let (out, _) = run_with(program, args, extra, MAX_OUTPUT).await?;
    Ok(out)
}

/// [`run`] for a program whose whole output ward reads, up to `most` bytes: one that prints
/// more fails, rather than have what it said cut short and read as something else.
pub(crate) async fn run_reading(
    program: &Path,
    args: &[String],
    extra: &[&str],
    most: u64,
) -> Result<String, DriverError> {
    match run_with(program, args, extra, most).await? {
        (out, false) => Ok(out),
        (_, true) => {
            Err(DriverError::Refused(format!("{} printed more than {most} bytes", program.display())))
        }
    }
}

/// The program's standard output, up to `most` bytes, and whether it printed more.
async fn run_with(
    program: &Path,
    args: &[String],
    extra: &[&str],
    most: u64,
) -> Result<(String, bool), DriverError> {
    let mut child = Command::new(program)
        .args(args)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| DriverError::Unreachable(format!("cannot run {}: {e}", program.display())))?;
    // Both read at once: a program that fills one pipe while ward waits on the other would
    // hang until the timeout.
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    let (out, err) = tokio::join!(read_some(stdout, most + 1), read_some(stderr, MAX_OUTPUT));
    let (out, err) = (out?, err?);
    let status = child.wait().await.map_err(|e| DriverError::Refused(e.to_string()))?;
    let more = out.len() as u64 > most;
    if !status.success() {
        let said = String::from_utf8_lossy(&err).trim().to_owned();
        return Err(DriverError::Refused(format!("{} {}: {said}", program.display(), status)));
    }
    let out = &out[..out.len().min(usize::try_from(most).unwrap_or(usize::MAX))];
    Ok((String::from_utf8_lossy(out).trim().to_owned(), more))
}

/// Up to `most` bytes of a pipe.
async fn read_some(pipe: Option<impl AsyncReadExt + Unpin>, most: u64) -> Result<Vec<u8>, DriverError> {
    let mut bytes = Vec::new();
    if let Some(pipe) = pipe {
        pipe.take(most).read_to_end(&mut bytes).await.map_err(|e| DriverError::Refused(e.to_string()))?;
    }
    Ok(bytes)
}

#[async_trait]
impl LevelDriver for CommandLevel {
    async fn current(&self) -> Result<String, DriverError> {
        let level = within(self.run(&["get"])).await?;
        if level.is_empty() || level.contains(char::is_whitespace) {
            return Err(DriverError::Refused(format!(
                "`{} get` printed no single level",
                self.program.display()
            )));
        }
        Ok(level)
    }

    async fn set(&self, level: &str) -> Result<(), DriverError> {
        within(self.run(&["set", level])).await.map(|_| ())
    }
}
