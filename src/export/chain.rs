//! Incremental chains: a full export and the incrementals after it, each naming the export it
//! follows. Given the newest, the others are found beside it; restoring applies them in order
//! (files added or replaced, deletions removed) as one source.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::reader::ExportArchive;
use super::seal;
use crate::error::{Error, Result};
use crate::format::export_meta::{ExportMetadata, MAX_METADATA_BYTES};
use crate::source::BackupSource;

/// Whether a file or object name is an export archive's (by extension; hidden names, such as
/// partial uploads, are not).
pub fn is_archive_name(name: &str) -> bool {
    !name.starts_with('.') && super::Format::from_archive_name(name).is_some()
}

/// Archive files in `dir` (by extension), sorted by name.
pub fn archives_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut out: Vec<PathBuf> = rd
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().is_some_and(|n| is_archive_name(&n.to_string_lossy())) && p.is_file())
        .collect();
    out.sort();
    out
}

/// An archive's `metadata.json` without unpacking it: a zip's from its central directory, a
/// tar.gz's by streaming through it (nothing written).
pub fn peek_metadata(path: &Path, passphrase: Option<&[u8]>) -> Result<ExportMetadata> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut head = [0u8; 8];
    let n = f.read(&mut head).map_err(|e| Error::io(path, e))?;
    let sealed = seal::is_sealed(&head[..n]);
    let is_zip = if sealed {
        let pass = passphrase
            .ok_or_else(|| Error::invalid(format!("{} is sealed: a passphrase is needed", path.display())))?;
        let mut sf = seal::SealedFile::open(std::fs::File::open(path).map_err(|e| Error::io(path, e))?, pass)?;
        let mut h = [0u8; 2];
        sf.read_exact(&mut h).map_err(|e| Error::io(path, e))?;
        &h == b"PK"
    } else {
        head.starts_with(b"PK")
    };
    if is_zip {
        // Opening a zip reads only its central directory and the two small files.
        let scratch = std::env::temp_dir();
        return Ok(ExportArchive::open(path, passphrase, &scratch)?.metadata.clone());
    }
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let plain: Box<dyn Read> = match (sealed, passphrase) {
        (true, Some(p)) => Box::new(seal::SealReader::new(std::io::BufReader::new(file), p)?),
        _ => Box::new(std::io::BufReader::new(file)),
    };
    let mut tar = tar::Archive::new(flate2::read::MultiGzDecoder::new(plain));
    let entries = tar.entries().map_err(|e| Error::malformed(path.display().to_string(), e.to_string()))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| Error::malformed(path.display().to_string(), e.to_string()))?;
        let name = entry.path().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
        if name == format!("{}/metadata.json", super::ROOT) {
            let mut bytes = Vec::new();
            // One byte past the limit is enough to refuse it.
            (&mut entry)
                .take(MAX_METADATA_BYTES + 1)
                .read_to_end(&mut bytes)
                .map_err(|e| Error::malformed(path.display().to_string(), e.to_string()))?;
            return ExportMetadata::parse(&bytes, &format!("{}: metadata.json", path.display()));
        }
    }
    Err(Error::malformed(path.display().to_string(), "no backup/metadata.json: not a Sophon export"))
}

/// Whether the file at `path` starts as a sealed archive does (unreadable: not sealed).
fn is_sealed_file(path: &Path) -> bool {
    let mut head = [0u8; 8];
    let n = std::fs::File::open(path).and_then(|mut f| f.read(&mut head)).unwrap_or(0);
    seal::is_sealed(&head[..n])
}

/// Whether `e`, met opening an archive, is about the archive (damage, a wrong passphrase, a refused
/// entry, an unsupported version, a missing link of its chain) rather than a failure to run:
/// `verify --in` reports it as a finding, and a restore refuses the archive.
pub fn is_archive_fault(e: &Error) -> bool {
    e.is_damage()
        || matches!(
            e,
            Error::UnsafePath(_)
                | Error::UnsupportedVersion { .. }
                | Error::WrongPassphrase { .. }
                | Error::NotFound(_)
        )
}

/// Why an archive given to a gateway restore is refused before a byte of it reaches the home.
#[derive(Debug)]
pub enum Refusal {
    /// It cannot be opened as an export: not an archive, truncated, a wrong or missing passphrase,
    /// an unsafe entry, an unsupported version, a broken chain ([`is_archive_fault`]).
    Unreadable(Error),
    /// It opens, but a check against its manifest, `SHA256SUMS` or seal failed: one finding each.
    Damaged(Vec<String>),
    /// An export of a folder backup, not of a gateway: it unpacks with unzip or tar.
    FolderExport,
}

/// Open the archive (or incremental chain) ending in `newest` for a gateway restore and check it
/// from end to end first, as `restore --in` does: every archive against its manifest and its sums,
/// every segment of a sealed one, and its layout (a gateway's). `Ok(Err(_))`: refused;
/// `Err(_)`: the check could not run (staging folder, I/O).
pub fn open_for_restore(
    newest: &Path,
    passphrase: Option<&[u8]>,
    staging: &Path,
) -> Result<std::result::Result<Chain, Refusal>> {
    let (chain, findings) = match Chain::open_checked(newest, passphrase, staging) {
        Ok(x) => x,
        Err(e) if is_archive_fault(&e) => return Ok(Err(Refusal::Unreadable(e))),
        Err(e) => return Err(e),
    };
    if !findings.is_empty() {
        return Ok(Err(Refusal::Damaged(findings)));
    }
    if chain.archives.last().is_some_and(|x| x.metadata.layout() == crate::format::layout::Layout::Files) {
        return Ok(Err(Refusal::FolderExport));
    }
    Ok(Ok(chain))
}

/// A chain opened for restoring: the archives, full first, and which one holds each file.
pub struct Chain {
    pub archives: Vec<ExportArchive>,
    files: BTreeMap<String, usize>,
}

impl Chain {
    /// Open `newest` and, if it is an incremental, the exports it follows from the same folder.
    pub fn open(newest: &Path, passphrase: Option<&[u8]>, staging: &Path) -> Result<Chain> {
        let meta = peek_metadata(newest, passphrase)?;
        let mut order = vec![newest.to_path_buf()];
        if let Some(mut follows) = meta.follows().map(str::to_string) {
            let dir = newest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
            let mut by_id: BTreeMap<String, (PathBuf, ExportMetadata)> = BTreeMap::new();
            let mut unreadable = Vec::new();
            // Sealed archives that no passphrase was given for: the link may be one of them.
            let mut sealed = Vec::new();
            for p in archives_in(dir) {
                if p == newest {
                    continue;
                }
                match peek_metadata(&p, passphrase) {
                    Ok(m) => {
                        if let Some(id) = m.export_id() {
                            by_id.insert(id.to_string(), (p, m));
                        }
                    }
                    Err(_) if passphrase.is_none() && is_sealed_file(&p) => sealed.push(p.display().to_string()),
                    Err(e) => unreadable.push(format!("{} ({e})", p.display())),
                }
            }
            loop {
                let Some((p, m)) = by_id.remove(&follows) else {
                    if !sealed.is_empty() {
                        return Err(Error::invalid(format!(
                            "incremental chain of {}: passphrase needed: export {follows} may be in sealed {}; \
                             give the passphrase (--passphrase-file or SOPHON_BACKUP_PASSPHRASE)",
                            newest.display(),
                            sealed.join(", ")
                        )));
                    }
                    let also = if unreadable.is_empty() {
                        String::new()
                    } else {
                        format!("; unreadable there: {}", unreadable.join(", "))
                    };
                    return Err(Error::NotFound(format!(
                        "incremental chain of {} is broken: export {follows}, which {} follows, is not in {}{also}",
                        newest.display(),
                        order.last().map(|p| p.display().to_string()).unwrap_or_default(),
                        dir.display()
                    )));
                };
                order.push(p);
                match m.follows() {
                    Some(f) => follows = f.to_string(),
                    None => break,
                }
            }
        }
        order.reverse();
        let mut archives = Vec::with_capacity(order.len());
        for p in &order {
            archives.push(ExportArchive::open(p, passphrase, staging)?);
        }
        let mut files = BTreeMap::new();
        for (i, a) in archives.iter().enumerate() {
            if let Some(inc) = &a.export_info().incremental {
                for d in &inc.deleted {
                    files.remove(d);
                }
            }
            for p in a.paths() {
                files.insert(p.to_string(), i);
            }
        }
        Ok(Chain { archives, files })
    }

    /// [`Self::open`], then check every archive of the chain against its manifest and, for a
    /// sealed one, every segment: the chain and its findings, one per problem.
    pub fn open_checked(newest: &Path, passphrase: Option<&[u8]>, staging: &Path) -> Result<(Chain, Vec<String>)> {
        let chain = Chain::open(newest, passphrase, staging)?;
        let mut findings = Vec::new();
        for a in chain.archives.iter().filter(|a| a.sealed) {
            let f = std::fs::File::open(&a.path).map_err(|e| Error::io(&a.path, e))?;
            if let Err(e) = seal::verify_all(std::io::BufReader::new(f), passphrase.unwrap_or_default()) {
                findings.push(format!("{}: {e}", a.path.display()));
            }
        }
        findings.extend(chain.verify()?);
        Ok((chain, findings))
    }

    /// Every archive's findings, each prefixed with its file.
    pub fn verify(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for a in &self.archives {
            for f in a.verify()? {
                out.push(format!("{}: {f}", a.path.display()));
            }
        }
        Ok(out)
    }

    fn holder(&self, path: &str) -> Option<&ExportArchive> {
        self.files.get(path).map(|&i| &self.archives[i])
    }
}

impl BackupSource for Chain {
    fn paths(&self) -> Vec<String> {
        self.files.keys().cloned().collect()
    }
    fn size(&self, path: &str) -> Option<u64> {
        self.holder(path).and_then(|a| a.size(path))
    }
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>> {
        match self.holder(path) {
            Some(a) => a.read(path),
            None => Ok(None),
        }
    }
    fn copy_into(&self, path: &str, out: &mut dyn std::io::Write) -> Result<u64> {
        let a = self.holder(path).ok_or_else(|| Error::NotFound(format!("{path} is not in the archives")))?;
        a.copy(path, out)
    }
    fn copy_to(&self, path: &str, dest: &Path) -> Result<()> {
        let a = self.holder(path).ok_or_else(|| Error::NotFound(format!("{path} is not in the archives")))?;
        BackupSource::copy_to(a, path, dest)
    }
}
