//! `sophon repo …`: create a repository, manage its keys, rebuild its index.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};

use sophon::backend::open_url;
use sophon::crypto::Argon2Params;
use sophon::{InitOptions, KeyId, Repository};

use super::output::{json, line};
use super::{exit, read_passphrase, RepoArgs};

#[derive(Subcommand, Debug)]
pub enum RepoCommand {
    /// Create a new repository.
    Init(InitArgs),
    /// Manage the keys (passphrases) that open the repository.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Rebuild the index segments from the pack headers.
    RepairIndex(PlainArgs),
}

#[derive(Args, Debug)]
pub struct PlainArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    /// Print a JSON summary.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct KdfArgs {
    /// Argon2id memory in KiB (default 65536 = 64 MiB; at most 1048576 = 1 GiB, and memory ×
    /// iterations at most 4 GiB, what a reader accepts).
    #[arg(long, default_value_t = Argon2Params::DEFAULT.memory_kib)]
    pub kdf_memory_kib: u32,
    /// Argon2id iterations (default 3; 1..=64).
    #[arg(long, default_value_t = Argon2Params::DEFAULT.iterations)]
    pub kdf_iterations: u32,
}

impl KdfArgs {
    fn params(&self) -> Argon2Params {
        Argon2Params { memory_kib: self.kdf_memory_kib, iterations: self.kdf_iterations, parallelism: 1 }
    }
}

#[derive(Args, Debug)]
pub struct InitArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    #[command(flatten)]
    pub kdf: KdfArgs,
    /// Default zstd level for backups (0 = no compression).
    #[arg(long, default_value_t = 2)]
    pub compression: i32,
    /// Target pack size in MiB (1..=128).
    #[arg(long, default_value_t = 16)]
    pub pack_size_mib: u32,
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum KeyCommand {
    /// Add a key under a new passphrase.
    Add(NewKeyArgs),
    /// List the keys.
    List(PlainArgs),
    /// Remove a key (not the one in use).
    Remove(RemoveKeyArgs),
    /// Replace the key in use with one under a new passphrase.
    Passwd(NewKeyArgs),
}

#[derive(Args, Debug)]
pub struct NewKeyArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    #[command(flatten)]
    pub kdf: KdfArgs,
    /// Read the new passphrase from this file. Otherwise SOPHON_NEW_PASSPHRASE.
    #[arg(long, value_name = "FILE")]
    pub new_passphrase_file: Option<PathBuf>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct RemoveKeyArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    /// The key's id (as `repo key list` shows it).
    pub id: String,
}

pub fn run(cmd: RepoCommand) -> anyhow::Result<u8> {
    match cmd {
        RepoCommand::Init(a) => init(a),
        RepoCommand::Key(k) => key(k),
        RepoCommand::RepairIndex(a) => {
            // It rewrites the whole index: nothing else may read or write one meanwhile.
            let session = sophon::Session::exclusive(a.repo.open()?, "repair-index")?;
            let mut problems = Vec::new();
            let out = session.repair_index(&mut |e| problems.push(e.to_string()))?;
            for p in &problems {
                eprintln!("warning: {p}");
            }
            if a.json {
                json(&out)?;
            } else {
                line(format!(
                    "index rebuilt from {} pack(s), {} blob(s); {} segment(s) written, {} replaced; {} unreadable pack(s)",
                    out.packs, out.blobs, out.segments_written, out.segments_removed, out.unreadable
                ))?;
            }
            Ok(exit::OK)
        }
    }
}

fn init(a: InitArgs) -> anyhow::Result<u8> {
    let url = a.repo.url()?;
    let pass = a.repo.repository_passphrase()?;
    let opts = InitOptions {
        compression: a.compression,
        pack_size: a.pack_size_mib.checked_mul(1024 * 1024).context("--pack-size-mib is too large")?,
        argon2: a.kdf.params(),
        ..InitOptions::default()
    };
    let backend = open_url(url, true)?;
    let repo = Repository::init(backend, &pass, &opts, Some(a.repo.cache_dir()))
        .with_context(|| format!("creating repository {url}"))?;
    if a.json {
        json(&serde_json::json!({ "repository": url, "id": repo.config().id, "key": repo.key_id() }))?;
    } else {
        line(format!("created repository {} at {url}", repo.config().id.short()))?;
    }
    Ok(exit::OK)
}

fn new_passphrase(a: &NewKeyArgs) -> anyhow::Result<zeroize::Zeroizing<Vec<u8>>> {
    read_passphrase(a.new_passphrase_file.as_deref(), "SOPHON_NEW_PASSPHRASE", "--new-passphrase-file")
}

fn key(cmd: KeyCommand) -> anyhow::Result<u8> {
    match cmd {
        KeyCommand::Add(a) => {
            let repo = a.repo.open()?;
            let id = repo.add_key(&new_passphrase(&a)?, a.kdf.params())?;
            if a.json {
                json(&serde_json::json!({ "added": id }))?;
            } else {
                line(format!("added key {id}"))?;
            }
        }
        KeyCommand::Passwd(a) => {
            let repo = a.repo.open()?;
            let mut repo = std::sync::Arc::try_unwrap(repo).map_err(|_| anyhow::anyhow!("repository is shared"))?;
            let old = repo.key_id();
            let id = repo.change_passphrase(&new_passphrase(&a)?, a.kdf.params())?;
            if a.json {
                json(&serde_json::json!({ "added": id, "removed": old }))?;
            } else {
                line(format!("passphrase changed: key {old} replaced by {id}"))?;
            }
        }
        KeyCommand::List(a) => {
            let repo = a.repo.open()?;
            let keys = repo.list_keys()?;
            if a.json {
                let v: Vec<_> = keys
                    .iter()
                    .map(|(id, k)| {
                        serde_json::json!({ "id": id, "current": *id == repo.key_id(), "created": k.created,
                            "hostname": k.hostname, "username": k.username, "kdf": k.kdf, "argon2": k.argon2 })
                    })
                    .collect();
                json(&v)?;
            } else {
                for (id, k) in keys {
                    let cur = if id == repo.key_id() { "*" } else { " " };
                    line(format!("{cur} {id}  {}  {}@{}", k.created, k.username, k.hostname))?;
                }
            }
        }
        KeyCommand::Remove(a) => {
            let repo = a.repo.open()?;
            let id: KeyId = a.id.parse().context("key id must be 64 hex digits")?;
            repo.remove_key(&id)?;
            line(format!("removed key {id}"))?;
        }
    }
    Ok(exit::OK)
}
