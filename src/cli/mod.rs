//! The command line: clap definitions, passphrase and repository resolution, exit codes.

pub mod archive_in;
pub mod archive_retention;
pub mod backup_cmd;
pub mod cron_cmd;
pub mod demo;
pub mod edge;
pub mod export_cmd;
pub mod forget_cmd;
pub mod gateway_cmd;
pub mod output;
pub mod progress;
pub mod repo_cmd;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{anyhow, Context};
use clap::{Args, Parser, Subcommand};
use zeroize::Zeroizing;

use sophon::gateway::keys::{self, Given};
use sophon::gateway::Settings;
use sophon::repo::default_cache_dir;
use sophon::Repository;

/// Exit codes (documented in README.md and checked by tests/cli.rs).
pub mod exit {
    pub const OK: u8 = 0;
    pub const FAILURE: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const DAMAGE: u8 = 3;
    pub const PARTIAL: u8 = 4;
}

#[derive(Parser, Debug)]
#[command(
    name = "sophon",
    version,
    about = "Sophon Backup: encrypted, deduplicating backups",
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// On failure, also print what a storage service answered (request, status, headers, body).
    #[arg(long, short = 'v', global = true)]
    pub verbose: bool,
}

// Parsed once per process: the size of the biggest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create and manage repositories and their keys.
    #[command(subcommand)]
    Repo(repo_cmd::RepoCommand),
    /// Take, list, restore and verify backups.
    #[command(subcommand)]
    Backup(backup_cmd::BackupCommand),
    /// Run the main job on an embedded sample: back up, change, back up again, restore, verify.
    Demo(demo::DemoArgs),
    /// Create a gateway data home (empty, or a realistic demo) and count what it holds.
    #[command(subcommand)]
    Gateway(gateway_cmd::GatewayCommand),
    /// Scheduled jobs of a gateway home: nightly backups with retention, shell commands.
    #[command(subcommand)]
    Cron(cron_cmd::CronCommand),
    /// Serve the web dashboard of a gateway home (plain HTTP; put it behind your TLS proxy).
    Serve(ServeArgs),
}

/// `sophon serve`.
#[derive(Args, Debug)]
pub struct ServeArgs {
    #[command(flatten)]
    pub home: gateway_cmd::HomeArg,
    /// Address to listen on (port 0: any free port, printed at start).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// The largest archive the dashboard accepts for a restore (default 20G; K, M, G, T).
    #[arg(long, env = "SOPHON_MAX_UPLOAD", value_name = "SIZE")]
    pub max_upload: Option<sophon::units::Size>,
}

/// A mistake in how the command was called (not a failure of the work): exits with [`exit::USAGE`].
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Where the repository is and how to open it; shared by every command that uses one. The
/// repository's key and the seal are resolved by `sophon::gateway::keys`; this only maps the flags
/// and variables to it.
#[derive(Args, Debug, Clone)]
pub struct RepoArgs {
    /// Repository URL: a path, file://PATH, s3://BUCKET/PREFIX, azblob://CONTAINER/PREFIX,
    /// sftp://USER@HOST:PORT/PATH or memory://NAME (tests). Default for a gateway: its own, in the home.
    #[arg(long, env = "SOPHON_REPOSITORY", value_name = "URL")]
    pub repo: Option<String>,
    /// The repository's own key, from this file (first line). Otherwise SOPHON_REPOSITORY_PASSPHRASE;
    /// without either, the seal's passphrase is tried (and, for a gateway's in-home repository,
    /// the home's key file first).
    #[arg(long, value_name = "FILE")]
    pub repo_passphrase_file: Option<PathBuf>,
    /// The backup passphrase, from this file (first line): seals archives (--encrypt) and 2FA
    /// secrets. Otherwise SOPHON_BACKUP_PASSPHRASE, then the config's PassphraseFile.
    #[arg(long, env = "SOPHON_BACKUP_PASSPHRASE_FILE", value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
    /// The key file to try first: the start of its id (its name under keys/, as `repo key add` and
    /// `repo key list` show it). An open tries at most 20 key files; name yours when there are more.
    #[arg(long, env = "SOPHON_KEY_HINT", value_name = "ID")]
    pub key_hint: Option<String>,
    /// Folder for the local index cache (default: $SOPHON_CACHE_DIR, $XDG_CACHE_HOME/sophon or ~/.cache/sophon).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// The gateway whose repository this is, when it was found through its settings: its config's
    /// PassphraseFile and key file take part in resolving the passphrases.
    #[arg(skip)]
    pub settings: Option<Settings>,
}

impl RepoArgs {
    pub fn url(&self) -> anyhow::Result<&str> {
        self.repo.as_deref().ok_or_else(|| anyhow!("no repository given: pass --repo URL or set SOPHON_REPOSITORY"))
    }

    /// The flags and variables given, for `sophon::gateway::keys`.
    pub fn given(&self) -> Given {
        Given {
            repo_file: self.repo_passphrase_file.clone(),
            repo_variable: env_bytes("SOPHON_REPOSITORY_PASSPHRASE"),
            seal_file: self.passphrase_file.clone(),
            seal_variable: env_bytes("SOPHON_BACKUP_PASSPHRASE"),
            key_hint: self.key_hint.clone(),
        }
    }

    /// The seal: --passphrase-file, SOPHON_BACKUP_PASSPHRASE, the config's PassphraseFile (never the
    /// repository's own key).
    pub fn passphrase(&self) -> anyhow::Result<Zeroizing<Vec<u8>>> {
        Ok(self.given().require_seal(self.settings.as_ref())?.value)
    }

    /// The seal if one is set up, with where it came from.
    pub fn seal(&self) -> anyhow::Result<Option<keys::Passphrase>> {
        Ok(self.given().seal(self.settings.as_ref())?)
    }

    /// The key a new repository is made under: its own if given, else the seal's.
    pub fn repository_passphrase(&self) -> anyhow::Result<Zeroizing<Vec<u8>>> {
        let url = self.url()?;
        let first = self.given().repository_candidates(self.settings.as_ref(), url)?.into_iter().next();
        Ok(first.ok_or_else(|| keys::KeyError::NoRepositoryKey { repo: url.to_string() })?.value)
    }

    pub fn cache_dir(&self) -> PathBuf {
        self.cache_dir.clone().unwrap_or_else(default_cache_dir)
    }

    /// These arguments for the repository of a gateway home found through its settings.
    pub fn with_home(&self, settings: &Settings) -> RepoArgs {
        let mut a = self.clone();
        a.repo = Some(settings.repository_url());
        a.settings = Some(settings.clone());
        a
    }

    pub fn open(&self) -> anyhow::Result<Arc<Repository>> {
        let url = self.url()?;
        let (repo, _) = keys::open_repository(url, &self.given(), self.settings.as_ref(), Some(self.cache_dir()))
            .with_context(|| format!("opening repository {url}"))?;
        Ok(Arc::new(repo))
    }
}

fn env_bytes(name: &str) -> Option<Zeroizing<Vec<u8>>> {
    use std::os::unix::ffi::OsStringExt;
    std::env::var_os(name).map(|v| Zeroizing::new(v.into_vec()))
}

/// A passphrase from a file (its first line) or an environment variable; never from the command line,
/// where other users could read it.
pub fn read_passphrase(file: Option<&std::path::Path>, env: &str, flag: &str) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let raw = if let Some(f) = file {
        Zeroizing::new(std::fs::read(f).with_context(|| format!("reading passphrase file {}", f.display()))?)
    } else if let Some(v) = env_bytes(env) {
        v
    } else {
        return Err(anyhow!("no passphrase: pass {flag} FILE or set {env}"));
    };
    let line = keys::first_line(&raw);
    if line.is_empty() {
        return Err(anyhow!("the passphrase is empty"));
    }
    Ok(Zeroizing::new(line.to_vec()))
}

pub fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Repo(c) => repo_cmd::run(c),
        Command::Backup(c) => backup_cmd::run(c),
        Command::Demo(a) => demo::run(a),
        Command::Gateway(c) => gateway_cmd::run(c),
        Command::Cron(c) => cron_cmd::run(c),
        Command::Serve(a) => crate::web::serve(
            a.home.get()?.clone(),
            &a.listen,
            a.max_upload.map_or(crate::web::DEFAULT_MAX_UPLOAD, |s| s.bytes()),
        ),
    }
}
