//! Which passphrase is the repository's key and which one seals (format-spec/gateway.md §4.2).
//!
//! They are two secrets: the repository's key opens every snapshot, the seal protects one export
//! (`--encrypt`) and the 2FA secrets inside a gateway backup. An export's passphrase is handed to
//! whoever restores it, who must not get the keys to every snapshot with it. One passphrase still
//! serves both when it is the only one given, so repositories made with `SOPHON_BACKUP_PASSPHRASE`
//! keep opening.
//!
//! - The seal: `--passphrase-file`, else `SOPHON_BACKUP_PASSPHRASE`, else (for a gateway) the
//!   config's `Sophon:Backups:Default:PassphraseFile`. Never the repository's key.
//! - The repository's key: `--repo-passphrase-file`, else `SOPHON_REPOSITORY_PASSPHRASE` (each
//!   alone, no fallback: a key given for the repository is the one that must open it); else the
//!   candidates in order, the first that opens winning: the home's key file (the in-home default
//!   repository only), then the seal's sources.
//! - Creating the in-home default repository: the repository's key if given, else the key file if
//!   one is there, else a standing passphrase (`SOPHON_BACKUP_PASSPHRASE`, the config's
//!   `PassphraseFile`), else a new random key file. A `--passphrase-file` given to one command
//!   seals that command's work; it does not become the key of every later snapshot.
//!
//! The front end maps its flags and variables to [`Given`]; this module reads the files, so every
//! front end resolves alike.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use zeroize::Zeroizing;

use super::dump::Dump;
use super::settings::{Settings, SettingsError};
use super::Category;
use crate::repo::{InitOptions, Repository};

/// The key file of the in-home default repository, relative to the home. A secret of the home:
/// no backup ever reads `backups/` (gateway.md §4.2).
pub const KEY_FILE: &str = "backups/repository.key";

pub type KeyResult<T> = std::result::Result<T, KeyError>;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("reading passphrase file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("the passphrase of {0} is empty")]
    Empty(Source),

    #[error(
        "no passphrase for repository {repo}: pass --repo-passphrase-file FILE or set SOPHON_REPOSITORY_PASSPHRASE \
         (or --passphrase-file FILE / SOPHON_BACKUP_PASSPHRASE when one passphrase serves both)"
    )]
    NoRepositoryKey { repo: String },

    #[error(
        "no passphrase to seal with: pass --passphrase-file FILE or set SOPHON_BACKUP_PASSPHRASE \
         (or the config's Sophon:Backups:Default:PassphraseFile); the repository's key never seals"
    )]
    NoSeal,

    /// `untried`: what the repository's own error said of key files not tried (see `crate::Error`).
    #[error("wrong passphrase: repository {repo} does not open with {tried}{hint}{untried}")]
    WrongPassphrase { repo: String, tried: String, hint: &'static str, untried: String },

    #[error("creating the key file {path}: {source}")]
    KeyFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(transparent)]
    Settings(#[from] SettingsError),

    #[error(transparent)]
    Repo(#[from] crate::Error),
}

/// Where a passphrase came from; shown in messages and reports (never the passphrase itself).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// `--repo-passphrase-file FILE`.
    RepoFile(PathBuf),
    /// `SOPHON_REPOSITORY_PASSPHRASE`.
    RepoVariable,
    /// `--passphrase-file FILE` (or `SOPHON_BACKUP_PASSPHRASE_FILE`, which names the same flag's file).
    SealFile(PathBuf),
    /// `SOPHON_BACKUP_PASSPHRASE`.
    SealVariable,
    /// `Sophon:Backups:Default:PassphraseFile`.
    Config(PathBuf),
    /// The home's own key file, [`KEY_FILE`].
    KeyFile(PathBuf),
    /// Typed for one piece of work (the dashboard's form): it seals that work only, like
    /// `--passphrase-file`, and never becomes a repository's key.
    Typed,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::RepoFile(p) => write!(f, "--repo-passphrase-file {}", p.display()),
            Source::RepoVariable => f.write_str("SOPHON_REPOSITORY_PASSPHRASE"),
            Source::SealFile(p) => write!(f, "--passphrase-file {}", p.display()),
            Source::SealVariable => f.write_str("SOPHON_BACKUP_PASSPHRASE"),
            Source::Config(p) => write!(f, "the config's PassphraseFile {}", p.display()),
            Source::KeyFile(p) => write!(f, "the home's key file {}", p.display()),
            Source::Typed => f.write_str("the passphrase typed for this backup"),
        }
    }
}

impl Serialize for Source {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

/// A passphrase and where it came from.
#[derive(Clone)]
pub struct Passphrase {
    pub value: Zeroizing<Vec<u8>>,
    pub source: Source,
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Passphrase(from {})", self.source)
    }
}

/// What the front end was given: files by path, variables by value.
#[derive(Clone, Default)]
pub struct Given {
    pub repo_file: Option<PathBuf>,
    pub repo_variable: Option<Zeroizing<Vec<u8>>>,
    pub seal_file: Option<PathBuf>,
    pub seal_variable: Option<Zeroizing<Vec<u8>>>,
    /// `--key-hint` / `SOPHON_KEY_HINT`: the key file to try first (the start of its id).
    pub key_hint: Option<String>,
}

impl fmt::Debug for Given {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Given")
            .field("repo_file", &self.repo_file)
            .field("repo_variable", &self.repo_variable.is_some())
            .field("seal_file", &self.seal_file)
            .field("seal_variable", &self.seal_variable.is_some())
            .field("key_hint", &self.key_hint)
            .finish()
    }
}

/// The first line of `raw` (a trailing CR dropped): a passphrase file may end with a newline.
pub fn first_line(raw: &[u8]) -> &[u8] {
    let end = raw.iter().position(|&b| b == b'\n').unwrap_or(raw.len());
    let line = &raw[..end];
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn from_bytes(raw: &[u8], source: Source) -> KeyResult<Passphrase> {
    let line = first_line(raw);
    if line.is_empty() {
        return Err(KeyError::Empty(source));
    }
    Ok(Passphrase { value: Zeroizing::new(line.to_vec()), source })
}

/// The passphrase in a file's first line.
pub fn read_file(path: &Path, source: Source) -> KeyResult<Passphrase> {
    let raw = Zeroizing::new(std::fs::read(path).map_err(|e| KeyError::Read { path: path.to_path_buf(), source: e })?);
    from_bytes(&raw, source)
}

/// The key file of the in-home default repository of `settings`' home.
pub fn key_file(settings: &Settings) -> PathBuf {
    settings.home().join(KEY_FILE)
}

/// Whether `url` is the in-home default repository of `settings`, the only one a key file opens.
fn is_home_default(settings: &Settings, url: &str) -> bool {
    settings.is_default_repository() && settings.repository_url() == url
}

impl Given {
    /// The repository's own key, when one was given for it.
    fn repository_key(&self) -> KeyResult<Option<Passphrase>> {
        if let Some(f) = &self.repo_file {
            return read_file(f, Source::RepoFile(f.clone())).map(Some);
        }
        match &self.repo_variable {
            Some(v) => from_bytes(v, Source::RepoVariable).map(Some),
            None => Ok(None),
        }
    }

    /// The seal: `--passphrase-file`, `SOPHON_BACKUP_PASSPHRASE`, the config's `PassphraseFile`.
    pub fn seal(&self, settings: Option<&Settings>) -> KeyResult<Option<Passphrase>> {
        Ok(self.seal_sources(settings)?.into_iter().next())
    }

    /// [`Given::seal`], required.
    pub fn require_seal(&self, settings: Option<&Settings>) -> KeyResult<Passphrase> {
        self.seal(settings)?.ok_or(KeyError::NoSeal)
    }

    /// Every seal source given, in order. Each is read only when it is given, so a broken config
    /// file does not stand in the way of a flag that was given.
    fn seal_sources(&self, settings: Option<&Settings>) -> KeyResult<Vec<Passphrase>> {
        let mut out = Vec::new();
        if let Some(f) = &self.seal_file {
            out.push(read_file(f, Source::SealFile(f.clone()))?);
        }
        if let Some(v) = &self.seal_variable {
            out.push(from_bytes(v, Source::SealVariable)?);
        }
        if let Some(f) = settings.and_then(Settings::passphrase_file) {
            out.push(read_file(&f, Source::Config(f.clone()))?);
        }
        Ok(out)
    }

    /// The passphrases to try on repository `url`, in order (see the module's documentation).
    pub fn repository_candidates(&self, settings: Option<&Settings>, url: &str) -> KeyResult<Vec<Passphrase>> {
        if let Some(p) = self.repository_key()? {
            return Ok(vec![p]);
        }
        let mut out = Vec::new();
        if let Some(s) = settings.filter(|s| is_home_default(s, url)) {
            let f = key_file(s);
            if f.exists() {
                out.push(read_file(&f, Source::KeyFile(f.clone()))?);
            }
        }
        for p in self.seal_sources(settings)? {
            // The same passphrase twice would only cost a second key derivation.
            if !out.iter().any(|q: &Passphrase| q.value == p.value) {
                out.push(p);
            }
        }
        Ok(out)
    }
}

/// The seal of a gateway backup and of the archive written with it: a passphrase typed for this
/// backup (the dashboard's form) if any, else the seal `given` and the settings name. With
/// `encrypt` (an archive to seal) a missing seal is [`KeyError::NoSeal`], found before the backup
/// is taken so that a refused archive leaves no snapshot behind. The seal also seals the dump's
/// 2FA secrets; without one they are left out.
pub fn backup_seal(
    given: &Given,
    settings: Option<&Settings>,
    typed: Option<Zeroizing<Vec<u8>>>,
    encrypt: bool,
) -> KeyResult<Option<Passphrase>> {
    let seal = match typed {
        Some(value) => Some(from_bytes(&value, Source::Typed)?),
        None => given.seal(settings)?,
    };
    if encrypt && seal.is_none() {
        return Err(KeyError::NoSeal);
    }
    Ok(seal)
}

/// Open repository `url` with the first candidate of [`Given::repository_candidates`] that opens it.
pub fn open_repository(
    url: &str,
    given: &Given,
    settings: Option<&Settings>,
    cache_dir: Option<PathBuf>,
) -> KeyResult<(Repository, Source)> {
    let backend = crate::backend::open_url(url, false)?;
    let candidates = given.repository_candidates(settings, url)?;
    if candidates.is_empty() {
        return Err(KeyError::NoRepositoryKey { repo: url.to_string() });
    }
    let opts = crate::repo::OpenOptions { key_hint: given.key_hint.clone() };
    try_candidates(&backend, url, candidates, cache_dir, &opts)
}

fn try_candidates(
    backend: &Arc<dyn crate::backend::Backend>,
    url: &str,
    candidates: Vec<Passphrase>,
    cache_dir: Option<PathBuf>,
    opts: &crate::repo::OpenOptions,
) -> KeyResult<(Repository, Source)> {
    let explicit = matches!(candidates.first().map(|c| &c.source), Some(Source::RepoFile(_) | Source::RepoVariable));
    let mut tried = Vec::new();
    let mut untried = String::new();
    for c in candidates {
        match Repository::open_with(Arc::clone(backend), &c.value, cache_dir.clone(), opts) {
            Ok(repo) => return Ok((repo, c.source)),
            Err(crate::Error::WrongPassphrase { not_tried, unmatched_hint, .. }) => {
                tried.push(c.source.to_string());
                untried = crate::error::untried_note(not_tried, unmatched_hint.as_deref());
            }
            Err(e) => return Err(e.into()),
        }
    }
    let hint = if explicit {
        ""
    } else {
        "; give the repository's own key with --repo-passphrase-file FILE or SOPHON_REPOSITORY_PASSPHRASE \
         (--passphrase-file and SOPHON_BACKUP_PASSPHRASE stay the seal)"
    };
    Err(KeyError::WrongPassphrase { repo: url.to_string(), tried: tried.join(" nor with "), hint, untried })
}

/// The repository of a gateway backup, opened (and, the in-home default one, created on first use).
#[derive(Debug)]
pub struct HomeRepository {
    pub repo: Repository,
    pub url: String,
    /// Where the key that opened (or created) it came from.
    pub key: Source,
    /// It was created by this call.
    pub created: bool,
}

/// Open the repository of `settings`' home; the in-home default one is created when absent, under
/// the key the module's documentation names (a new random key file when no passphrase is set up).
pub fn open_home_repository(
    settings: &Settings,
    given: &Given,
    cache_dir: Option<PathBuf>,
    init: &InitOptions,
) -> KeyResult<HomeRepository> {
    let url = settings.repository_url();
    let default_local = settings.is_default_repository() && !Path::new(&url).join("config").exists();
    if !default_local {
        let (repo, key) = open_repository(&url, given, Some(settings), cache_dir)?;
        return Ok(HomeRepository { repo, url, key, created: false });
    }
    let key = creation_key(settings, given)?;
    let backend = crate::backend::open_url(&url, true)?;
    let repo = Repository::init(backend, &key.value, init, cache_dir)?;
    Ok(HomeRepository { repo, url, key: key.source, created: true })
}

/// The key a new in-home repository is made under.
fn creation_key(settings: &Settings, given: &Given) -> KeyResult<Passphrase> {
    if let Some(p) = given.repository_key()? {
        return Ok(p);
    }
    let file = key_file(settings);
    if file.exists() {
        // Left by a first run that stopped between the key file and the repository.
        return read_file(&file, Source::KeyFile(file.clone()));
    }
    let standing = given.seal_sources(Some(settings))?.into_iter().find(|p| !matches!(p.source, Source::SealFile(_)));
    if let Some(p) = standing {
        return Ok(p);
    }
    write_key_file(&file)
}

/// A new random key (64 hex digits) in `path`, readable by its owner only, made before the
/// repository so that a repository never exists without its key.
fn write_key_file(path: &Path) -> KeyResult<Passphrase> {
    use std::os::unix::fs::OpenOptionsExt;
    let err = |source| KeyError::KeyFile { path: path.to_path_buf(), source };
    let random: [u8; 32] = crate::crypto::random_array()?;
    let text = Zeroizing::new(format!("{}\n", hex::encode(random)));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(err)?;
    f.write_all(text.as_bytes()).and_then(|()| f.sync_all()).map_err(err)?;
    from_bytes(text.as_bytes(), Source::KeyFile(path.to_path_buf()))
}

/// What protects a gateway backup, for the report (gateway.md §4.2).
#[derive(Debug, Clone, Serialize)]
pub struct Protection {
    /// Where the seal came from; `None`: no passphrase is set up for sealing.
    pub passphrase: Option<Source>,
    /// Secret values replaced by the redaction marker, and the categories that held them.
    pub redacted: usize,
    pub redacted_in: Vec<String>,
    /// `sealed`, `left out` (no passphrase), `none enrolled` or `not in the backup`.
    pub two_factor: &'static str,
    pub users_to_reenrol: usize,
    /// Whether the archive written with the backup is sealed; `None` without an archive.
    pub archive_encrypted: Option<bool>,
}

impl Protection {
    pub fn of(dump: &Dump, seal: Option<&Passphrase>, archive_encrypted: Option<bool>) -> Protection {
        let mut redacted_in: Vec<String> = dump
            .redacted
            .iter()
            .filter_map(|r| r.split(['/', '#']).next())
            .map(|c| c.trim_end_matches(".json").to_string())
            .collect();
        redacted_in.sort();
        redacted_in.dedup();
        let two_factor = if !dump.categories.contains(&Category::Users) {
            "not in the backup"
        } else if !dump.reenrol.is_empty() {
            "left out"
        } else if seal.is_some() {
            "sealed"
        } else {
            "none enrolled"
        };
        Protection {
            passphrase: seal.map(|p| p.source.clone()),
            redacted: dump.redacted.len(),
            redacted_in,
            two_factor,
            users_to_reenrol: dump.reenrol.len(),
            archive_encrypted,
        }
    }

    /// One or two lines for an operator who set up no passphrase; `None` when there is nothing to say.
    pub fn notice(&self) -> Option<String> {
        if self.passphrase.is_some() {
            return None;
        }
        let archive = match self.archive_encrypted {
            Some(false) => "the archive is not encrypted; ",
            _ => "",
        };
        let two_factor = if self.two_factor == "left out" {
            format!(
                "; the 2FA secrets of {} user(s) were left out (they need a passphrase to be sealed)",
                self.users_to_reenrol
            )
        } else {
            String::new()
        };
        Some(format!(
            "note: no backup passphrase is set up: {archive}{} secret value(s) redacted (in {}){two_factor}.\n\
             note: to seal 2FA secrets and archives, pass --passphrase-file FILE, set SOPHON_BACKUP_PASSPHRASE \
             or the config's Sophon:Backups:Default:PassphraseFile.",
            self.redacted,
            if self.redacted_in.is_empty() { "nothing".to_string() } else { self.redacted_in.join(", ") },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_line_drops_the_newline_and_a_carriage_return() {
        assert_eq!(first_line(b"abc\r\nrest"), b"abc");
        assert_eq!(first_line(b"abc"), b"abc");
        assert_eq!(first_line(b"\n"), b"");
    }

    #[test]
    fn the_repository_key_alone_is_tried_when_given_and_never_seals() {
        let given = Given {
            repo_variable: Some(Zeroizing::new(b"repo-key".to_vec())),
            seal_variable: Some(Zeroizing::new(b"seal".to_vec())),
            ..Given::default()
        };
        let c = given.repository_candidates(None, "/r").unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].source, Source::RepoVariable);
        assert_eq!(given.seal(None).unwrap().unwrap().value.as_slice(), b"seal");
        let only_repo = Given { repo_variable: Some(Zeroizing::new(b"k".to_vec())), ..Given::default() };
        assert!(matches!(only_repo.require_seal(None), Err(KeyError::NoSeal)));
    }

    #[test]
    fn seal_sources_are_candidates_in_order_without_duplicates() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("p");
        std::fs::write(&f, "same\n").unwrap();
        let given = Given {
            seal_file: Some(f.clone()),
            seal_variable: Some(Zeroizing::new(b"same".to_vec())),
            ..Given::default()
        };
        let c = given.repository_candidates(None, "/r").unwrap();
        assert_eq!(c.iter().map(|p| p.source.clone()).collect::<Vec<_>>(), vec![Source::SealFile(f)]);
    }
}
