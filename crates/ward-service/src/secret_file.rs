//! Files that hold secrets (the server's TLS key, a syslog sink's client key, the metrics
//! token): read only if nobody but their owner can read them, as the audit signing key.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// The file's text; an error naming `what` when it cannot be read or others may read it.
pub fn read(path: &Path, what: &str) -> Result<String, String> {
    check(path, what)?;
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {what} {}: {e}", path.display()))
}

/// An error naming `what` when the file is missing or others may read it.
pub fn check(path: &Path, what: &str) -> Result<(), String> {
    let cannot = |e: std::io::Error| format!("cannot read {what} {}: {e}", path.display());
    let mode = std::fs::metadata(path).map_err(cannot)?.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(format!(
            "{what} {} can be read by others (mode {:o}); make it readable by its owner only (chmod 600)",
            path.display(),
            mode & 0o777
        ));
    }
    Ok(())
}
