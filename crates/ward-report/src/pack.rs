//! Writing a pack's files: each hashed as it is written, then `MANIFEST.sha256` (one line per
//! file, as `sha256sum` prints them, sorted by path) and its seal, `MANIFEST.sha256.sig`.
//!
//! Nothing is synced to disk: a pack is written where it is made into a temporary directory and
//! streamed out from there (the server), and where it is kept it is only renamed into place once
//! whole and checked (`ward report`); a pack cut short by a crash is caught by the check, and
//! made again. A sync per file cost more than the rest of a large report.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

pub const MANIFEST: &str = "MANIFEST.sha256";
pub const SEAL: &str = "MANIFEST.sha256.sig";

/// The files of a pack, as they are written into its directory.
#[derive(Debug)]
pub struct PackWriter {
    dir: PathBuf,
    files: Vec<(String, [u8; 32])>,
}

/// A file being written: hashed as it goes. Several may be open at once; each is listed once
/// finished ([`PackWriter::add`]).
pub struct PackFile {
    out: BufWriter<File>,
    hasher: Sha256,
    path: String,
}

/// A file written whole, with its hash.
#[derive(Debug)]
pub struct Finished {
    path: String,
    digest: [u8; 32],
}

impl PackWriter {
    /// Writes into `dir`, which must exist and be empty (the caller's fresh directory).
    pub fn new(dir: &Path) -> Self {
        Self { dir: dir.to_owned(), files: Vec::new() }
    }

    /// Starts the file `path` (relative, `/`-separated).
    pub fn file(&self, path: &str) -> io::Result<PackFile> {
        if !is_pack_path(path) || self.files.iter().any(|(known, _)| known == path) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("`{path}` is not a new pack path"),
            ));
        }
        let full = self.dir.join(path);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let out = BufWriter::new(File::create_new(&full)?);
        Ok(PackFile { out, hasher: Sha256::new(), path: path.to_owned() })
    }

    /// Lists a finished file in the manifest.
    pub fn add(&mut self, file: Finished) {
        self.files.push((file.path, file.digest));
    }

    /// Writes the whole file `path`.
    pub fn write(&mut self, path: &str, bytes: &[u8]) -> io::Result<()> {
        let mut file = self.file(path)?;
        file.write_all(bytes)?;
        let finished = file.finish()?;
        self.add(finished);
        Ok(())
    }

    /// Writes the manifest and its seal (`seal` signs the manifest's SHA-256); every file must
    /// be finished.
    pub fn finish<E>(
        mut self,
        seal: impl FnOnce(&[u8; 32]) -> Result<String, E>,
    ) -> Result<(), FinishError<E>> {
        self.files.sort();
        let manifest: String =
            self.files.iter().map(|(path, digest)| format!("{}  {path}\n", hex::encode(digest))).collect();
        let digest: [u8; 32] = Sha256::digest(manifest.as_bytes()).into();
        let note = seal(&digest).map_err(FinishError::Seal)?;
        for (name, text) in [(MANIFEST, manifest.as_str()), (SEAL, note.as_str())] {
            File::create_new(self.dir.join(name))?.write_all(text.as_bytes())?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FinishError<E> {
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error("the manifest could not be sealed")]
    Seal(E),
}

impl Write for PackFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.out.write(buf)?;
        self.hasher.update(&buf[..written]);
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

impl PackFile {
    /// Writes out what is buffered; its hash goes to the manifest through [`PackWriter::add`].
    pub fn finish(mut self) -> io::Result<Finished> {
        self.out.flush()?;
        Ok(Finished { path: self.path, digest: self.hasher.finalize().into() })
    }
}

/// A path a pack may hold: relative, `/`-separated names, none empty, `.` or `..`, and not the
/// manifest or its seal.
pub fn is_pack_path(path: &str) -> bool {
    !path.is_empty()
        && path.len() <= 255
        && path != MANIFEST
        && path != SEAL
        && !path.contains('\\')
        && path.split('/').all(|part| !part.is_empty() && part != "." && part != "..")
        && Path::new(path).components().all(|c| matches!(c, Component::Normal(_)))
        && path.chars().all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_relative_paths_are_pack_paths() {
        for good in ["report.json", "evidence/grants.csv", "integrity/proofs/12.json"] {
            assert!(is_pack_path(good), "{good}");
        }
        for bad in
            ["", "/etc/passwd", "../x", "a/../b", "a//b", "./a", MANIFEST, SEAL, "a\\b", "é.txt", "a b"]
        {
            assert!(!is_pack_path(bad), "{bad}");
        }
    }

    #[test]
    fn the_manifest_lists_every_file_sorted_with_its_hash() {
        let dir = tempfile::tempdir().unwrap();
        let mut pack = PackWriter::new(dir.path());
        pack.write("b.txt", b"bee\n").unwrap();
        let mut file = pack.file("a/c.txt").unwrap();
        file.write_all(b"see").unwrap();
        file.write_all(b"\n").unwrap();
        let finished = file.finish().unwrap();
        pack.add(finished);
        assert!(pack.write("b.txt", b"again").is_err(), "a path is written once");
        let mut sealed = None;
        pack.finish(|digest| {
            sealed = Some(*digest);
            Ok::<_, ()>("seal\n".into())
        })
        .unwrap();
        let manifest = std::fs::read_to_string(dir.path().join(MANIFEST)).unwrap();
        let line = |text: &[u8], path: &str| format!("{}  {path}\n", hex::encode(Sha256::digest(text)));
        assert_eq!(manifest, line(b"see\n", "a/c.txt") + &line(b"bee\n", "b.txt"));
        assert_eq!(sealed, Some(Sha256::digest(manifest.as_bytes()).into()));
        assert_eq!(std::fs::read_to_string(dir.path().join(SEAL)).unwrap(), "seal\n");
    }
}
