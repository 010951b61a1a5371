//! Temporary files for the big generated files of a generated source (a gateway's memory entries,
//! audit log, documents index): written once, read by the backup, removed when the backup is done,
//! so a large source does not sit in memory. Also the rule that clears what killed processes left
//! in a spool folder (used by the export reader's staging too).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// A folder of spooled files, removed with everything in it when dropped. Spools left by killed
/// processes (their pid no longer running on this host) are removed by the next one.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    files: usize,
}

impl Spool {
    /// A fresh spool under `root` (created if absent).
    pub fn create(root: &Path) -> Result<Spool> {
        std::fs::create_dir_all(root).map_err(|e| Error::io(root, e))?;
        remove_abandoned(root, "spool-");
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos());
        let dir = root.join(format!("spool-{}-{}", std::process::id(), nanos.unwrap_or(0)));
        std::fs::create_dir(&dir).map_err(|e| Error::io(&dir, e))?;
        Ok(Spool { dir, files: 0 })
    }

    /// A new file of the spool, hashed (SHA-256) and counted as it is written.
    pub fn file(&mut self) -> Result<SpoolFile> {
        self.files += 1;
        let path = self.dir.join(format!("{:06}", self.files));
        let f = File::options().write(true).create_new(true).open(&path).map_err(|e| Error::io(&path, e))?;
        Ok(SpoolFile {
            out: BufWriter::with_capacity(1 << 20, f),
            sha: ring::digest::Context::new(&ring::digest::SHA256),
            len: 0,
            path,
        })
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Remove the folders in `root` named `<prefix><pid>-…` whose process is gone (left by a killed
/// backup or restore). Only decidable where `/proc` lists processes.
pub fn remove_abandoned(root: &Path, prefix: &str) {
    let proc = Path::new("/proc");
    if !proc.join("self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(root) else { return };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix(prefix).and_then(|r| r.split('-').next()) else { continue };
        if pid.parse::<u32>().is_ok() && pid != std::process::id().to_string() && !proc.join(pid).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

pub struct SpoolFile {
    out: BufWriter<File>,
    sha: ring::digest::Context,
    len: u64,
    path: PathBuf,
}

impl Write for SpoolFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.out.write(buf)?;
        self.sha.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

impl SpoolFile {
    /// Flush and close: the file's path, size and SHA-256 (hex).
    pub fn finish(mut self) -> Result<(PathBuf, u64, String)> {
        self.out.flush().map_err(|e| Error::io(&self.path, e))?;
        let digest = hex::encode(self.sha.finish());
        Ok((self.path, self.len, digest))
    }
}
