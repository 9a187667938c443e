//! The key that signs audit checkpoints: Ed25519, kept as a hex seed in a file only its owner
//! can read. Created on first start unless a key file is configured.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ed25519_dalek::{SigningKey, VerifyingKey};
use ward_core::checkpoint::{self, Checkpoint, CheckpointError};

#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error("the key file {path} cannot be read: {message}")]
    Read { path: PathBuf, message: String },
    #[error("the key file {path} cannot be created: {message}")]
    Create { path: PathBuf, message: String },
    #[error("the key file {path} is readable by others (mode {mode:o}); run `chmod 600 {path}`")]
    Exposed { path: PathBuf, mode: u32 },
    #[error(transparent)]
    Note(#[from] CheckpointError),
}

/// Signs checkpoints as the note signer named by the log's origin.
pub struct AuditSigner {
    origin: String,
    key: SigningKey,
}

impl AuditSigner {
    pub fn from_seed(origin: &str, seed: [u8; 32]) -> Result<Self, SigningError> {
        let signer = Self { origin: origin.to_owned(), key: SigningKey::from_bytes(&seed) };
        // Validates the origin as a key name.
        checkpoint::verifier_key(&signer.origin, &signer.key.verifying_key())?;
        Ok(signer)
    }

    /// Loads the key at `path`; creates it (mode 0600) when it is missing and `create` is set.
    pub fn load_or_create(origin: &str, path: &Path, create: bool) -> Result<Self, SigningError> {
        Self::from_seed(origin, load_or_create_secret(path, create)?)
    }
    pub fn origin(&self) -> &str {
        &self.origin
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// `origin+keyid+key`, the form verifiers are configured with.
    pub fn verifier_key(&self) -> String {
        checkpoint::verifier_key(&self.origin, &self.key.verifying_key()).unwrap_or_default()
    }

    pub fn sign(&self, checkpoint: &Checkpoint) -> Result<String, SigningError> {
        Ok(checkpoint::sign(checkpoint, &self.origin, &self.key)?)
    }

    /// Seals an evidence pack whose manifest's SHA-256 is `digest` (`ward_core::seal`).
    pub fn seal(&self, digest: &[u8; 32]) -> Result<String, SigningError> {
        Ok(ward_core::seal::sign(digest, &self.origin, &self.key)?)
    }
}

/// Loads a 32-byte secret kept as hex in `path` (readable by its owner only); creates it when it
/// is missing and `create` is set.
pub fn load_or_create_secret(path: &Path, create: bool) -> Result<[u8; 32], SigningError> {
    if create && !path.exists() {
        create_key_file(path)?;
    }
    let read_error = |message: String| SigningError::Read { path: path.to_owned(), message };
    let mode = std::fs::metadata(path).map_err(|e| read_error(e.to_string()))?.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(SigningError::Exposed { path: path.to_owned(), mode: mode & 0o777 });
    }
    let text = std::fs::read_to_string(path).map_err(|e| read_error(e.to_string()))?;
    let seed: [u8; 32] = hex::decode(text.trim())
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| read_error("expected 64 hex digits (a 32-byte key)".into()))?;
    Ok(seed)
}

/// Writes a fresh seed to a private temporary file, then links it into place: the link is
/// atomic and never overwrites, so of several processes starting at once exactly one key wins and
/// nobody reads a half-written file.
fn create_key_file(path: &Path) -> Result<(), SigningError> {
    let error = |e: std::io::Error| SigningError::Create { path: path.to_owned(), message: e.to_string() };
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed)
        .map_err(|e| SigningError::Create { path: path.to_owned(), message: e.to_string() })?;
    let mut suffix = [0u8; 8];
    getrandom::fill(&mut suffix)
        .map_err(|e| SigningError::Create { path: path.to_owned(), message: e.to_string() })?;
    let temporary = path.with_extension(format!("tmp-{}", hex::encode(suffix)));
    let written = (|| {
        let mut file =
            std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&temporary)?;
        writeln!(file, "{}", hex::encode(seed))?;
        file.sync_all()
    })();
    let linked = written.and_then(|()| std::fs::hard_link(&temporary, path));
    let _ = std::fs::remove_file(&temporary);
    match linked {
        Ok(()) => {
            tracing::info!(path = %path.display(), "created a key file");
            Ok(())
        }
        // Another ward process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(error(e)),
    }
}

/// Where a new signing key waits, next to the key file, between its making and the record of the
/// change to it (see `broker/key_change.rs`).
pub fn staged_key_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(std::ffi::OsStr::to_os_string).unwrap_or_default();
    name.push(".new");
    path.with_file_name(name)
}

/// Makes a new signing key and keeps it, durably, at [`staged_key_path`]: written to a private
/// temporary file, synced, renamed into place, and the directory synced. Replaces a staged key
/// left there before (one never recorded).
pub fn stage_new_key(origin: &str, path: &Path) -> Result<AuditSigner, SigningError> {
    let staged = staged_key_path(path);
    let error = |e: std::io::Error| SigningError::Create { path: staged.clone(), message: e.to_string() };
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| error(std::io::Error::other(e.to_string())))?;
    let signer = AuditSigner::from_seed(origin, seed)?;
    let temporary = staged.with_extension("tmp");
    let _ = std::fs::remove_file(&temporary);
    let written = (|| {
        let mut file =
            std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&temporary)?;
        writeln!(file, "{}", hex::encode(seed))?;
        file.sync_all()?;
        std::fs::rename(&temporary, &staged)?;
        sync_parent(&staged)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written.map_err(error)?;
    Ok(signer)
}

/// Moves the staged key to `path`, which must not exist (a key file is never overwritten), and
/// syncs the directory: once this returns, the key survives a crash.
pub fn install_staged_key(path: &Path) -> Result<(), SigningError> {
    let error = |e: std::io::Error| SigningError::Create { path: path.to_owned(), message: e.to_string() };
    let staged = staged_key_path(path);
    std::fs::hard_link(&staged, path).map_err(error)?;
    std::fs::remove_file(&staged).map_err(error)?;
    sync_parent(path).map_err(error)
}

/// Makes a rename or link in `path`'s directory durable.
fn sync_parent(path: &Path) -> std::io::Result<()> {
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::File::open(parent)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_created_private_and_reloads_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit-signing.key");
        let first = AuditSigner::load_or_create("ward/audit", &path, true).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let again = AuditSigner::load_or_create("ward/audit", &path, true).unwrap();
        assert_eq!(first.verifying_key(), again.verifying_key());
        assert!(again.verifier_key().starts_with("ward/audit+"));

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let exposed = AuditSigner::load_or_create("ward/audit", &path, true).err().unwrap().to_string();
        assert!(exposed.contains("chmod 600"), "{exposed}");

        let missing = dir.path().join("configured.key");
        assert!(
            AuditSigner::load_or_create("ward/audit", &missing, false).is_err(),
            "a configured key is never invented"
        );
        assert!(AuditSigner::from_seed("has space", [1; 32]).is_err());
    }

    #[test]
    fn processes_starting_at_once_agree_on_one_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit-signing.key");
        let keys: Vec<VerifyingKey> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    scope.spawn(|| {
                        AuditSigner::load_or_create("ward/audit", &path, true).unwrap().verifying_key()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(keys.windows(2).all(|pair| pair[0] == pair[1]));
        let leftovers = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary files are left behind");
    }
}
