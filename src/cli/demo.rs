//! `sophon demo`: the main job on an embedded default, with no setup: make a sample folder, back it
//! up into a new local repository, change it, back it up again, restore the latest snapshot, compare
//! every byte, and verify the repository by reading all of its data.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::Args;

use sophon::archive::{self, BackupOptions, Progress};
use sophon::backend::open_url;
use sophon::check::{self, CheckOptions};
use sophon::restore::{self, RestoreOptions};
use sophon::{InitOptions, Repository, Session};

use super::exit;
use super::output::{bytes, line};

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Work folder (default: a new folder under the system's temp folder). Must not exist yet.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Approximate size of the sample folder in MiB (with --folder).
    #[arg(long, default_value_t = 64)]
    pub size_mib: u64,
    /// Run the folder flow (back up, change, back up, restore, verify a sample folder) instead of the
    /// gateway flow.
    #[arg(long)]
    pub folder: bool,
}

/// Deterministic bytes: xorshift, so the sample is the same on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(n + 8);
        while v.len() < n {
            v.extend_from_slice(&self.next().to_le_bytes());
        }
        v.truncate(n);
        v
    }

    fn text(&mut self, n: usize) -> Vec<u8> {
        const WORDS: [&str; 16] = [
            "agent", "memory", "workflow", "token", "session", "the", "of", "and", "result", "tool", "plan", "step",
            "context", "backup", "restore", "note",
        ];
        let mut s = String::with_capacity(n + 16);
        while s.len() < n {
            s.push_str(WORDS[(self.next() % 16) as usize]);
            s.push(if self.next().is_multiple_of(12) { '\n' } else { ' ' });
        }
        s.truncate(n);
        s.into_bytes()
    }
}

fn write(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    std::fs::write(path, data).with_context(|| format!("writing {}", path.display()))
}

fn make_sample(root: &Path, size_mib: u64) -> anyhow::Result<()> {
    let mut rng = Rng(0x5eed_50f0);
    let budget = size_mib.max(4) * 1024 * 1024;
    let mut written = 0u64;
    let mut i = 0;
    while written < budget / 2 {
        let n = 1024 + (rng.next() % (48 * 1024)) as usize;
        let agent = i % 7;
        write(&root.join(format!("agents/agent-{agent}/memory/note-{i:04}.md")), &rng.text(n))?;
        written += n as u64;
        i += 1;
    }
    let big = (budget / 4) as usize;
    let blob = rng.bytes(big);
    write(&root.join("uploads/model.bin"), &blob)?;
    write(&root.join("uploads/copy-of-model.bin"), &blob)?;
    write(&root.join("logs/runtime.jsonl"), &rng.text((budget / 8) as usize))?;
    write(&root.join("empty.txt"), b"")?;
    std::os::unix::fs::symlink("uploads/model.bin", root.join("latest-model")).context("creating a symlink")?;
    Ok(())
}

fn compare(a: &Path, b: &Path) -> anyhow::Result<u64> {
    let mut files = 0;
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let (pa, pb) = (a.join(&rel), b.join(&rel));
        let ma = std::fs::symlink_metadata(&pa)?;
        let mb = std::fs::symlink_metadata(&pb).with_context(|| format!("{} missing after restore", pb.display()))?;
        if ma.file_type() != mb.file_type() {
            bail!("{}: type differs after restore", rel.display());
        }
        if ma.is_dir() {
            let mut names: Vec<_> =
                std::fs::read_dir(&pa)?.map(|e| e.map(|e| e.file_name())).collect::<Result<_, _>>()?;
            let nb = std::fs::read_dir(&pb)?.count();
            if names.len() != nb {
                bail!("{}: {} entries, {} after restore", rel.display(), names.len(), nb);
            }
            names.sort();
            stack.extend(names.into_iter().map(|n| rel.join(n)));
        } else if ma.is_symlink() {
            if std::fs::read_link(&pa)? != std::fs::read_link(&pb)? {
                bail!("{}: symlink target differs", rel.display());
            }
        } else {
            if std::fs::read(&pa)? != std::fs::read(&pb)? {
                bail!("{}: content differs after restore", rel.display());
            }
            if ma.modified()? != mb.modified()? {
                bail!("{}: mtime differs after restore", rel.display());
            }
            files += 1;
        }
    }
    Ok(files)
}

pub fn run(a: DemoArgs) -> anyhow::Result<u8> {
    let dir = a.dir.clone().unwrap_or_else(|| std::env::temp_dir().join(format!("sophon-demo-{}", std::process::id())));
    if dir.exists() {
        bail!("{} already exists; give a new --dir", dir.display());
    }
    if !a.folder {
        return run_gateway(&dir);
    }
    let (sample, repo_dir, target) = (dir.join("sample"), dir.join("repository"), dir.join("restored"));
    line(format!("sophon demo in {}", dir.display()))?;
    make_sample(&sample, a.size_mib)?;

    let passphrase = b"sophon-demo-passphrase";
    let backend = open_url(&repo_dir.to_string_lossy(), true)?;
    let repo = Arc::new(Repository::init(backend, passphrase, &InitOptions::default(), Some(dir.join("cache")))?);
    line(format!("1. created an encrypted repository {} at {}", repo.config().id.short(), repo_dir.display()))?;
    // One session for the whole flow: the demo follows the same locking rule as every command.
    let session = Session::shared(Arc::clone(&repo), "demo")?;

    let opts = BackupOptions::new(vec![sample.clone()]);
    let first = archive::backup(&session, &opts, Arc::new(Progress::default()))?;
    let s = &first.snapshot.summary;
    line(format!(
        "2. full backup {}: {} files, {} read, {} stored after dedup and compression, {:.2}s",
        first.snapshot_id.short(),
        s.files,
        bytes(s.bytes),
        bytes(s.bytes_stored),
        first.seconds
    ))?;

    let mut rng = Rng(77);
    write(&sample.join("agents/agent-0/memory/new-note.md"), &rng.text(20_000))?;
    let log = sample.join("logs/runtime.jsonl");
    let mut data = std::fs::read(&log)?;
    data.extend_from_slice(&rng.text(100_000));
    write(&log, &data)?;
    let second = archive::backup(&session, &opts, Arc::new(Progress::default()))?;
    let s = &second.snapshot.summary;
    line(format!(
        "3. changed 2 files, incremental backup {}: {} unchanged files skipped, {} new data stored, {:.2}s",
        second.snapshot_id.short(),
        s.files_unmodified,
        bytes(s.bytes_stored),
        second.seconds
    ))?;

    let out = restore::restore(
        &session,
        &second.snapshot_id,
        &RestoreOptions { target: target.clone(), threads: 4 },
        Arc::new(Progress::default()),
    )?;
    let checked = compare(&sample, &target.join("sample"))?;
    line(format!(
        "4. restored {} files ({}) in {:.2}s; all {checked} files identical to the source, byte for byte",
        out.files,
        bytes(out.bytes),
        out.seconds
    ))?;

    let report = check::check(&session, &CheckOptions { read_data_percent: Some(100.0) }, &mut |_| {})?;
    line(format!(
        "5. verify --read-data: {} snapshots, {} packs, {} blobs read: {}",
        report.snapshots,
        report.packs,
        report.blobs_read,
        if report.is_clean() { "no damage" } else { "DAMAGE FOUND" }
    ))?;
    if !report.is_clean() {
        return Ok(exit::DAMAGE);
    }
    line(format!("done; remove {} when finished", dir.display()))?;
    Ok(exit::OK)
}

/// The gateway flow: the main job of Sophon Backup on a demo gateway.
fn run_gateway(dir: &Path) -> anyhow::Result<u8> {
    use sophon::gateway::dump::DumpOptions;
    use sophon::gateway::restore::{restore as gateway_restore, Mode, RestoreOptions as GatewayRestore};
    use sophon::gateway::{generate, stats, DemoScale};

    let (home, fresh, repo_dir) = (dir.join("gateway"), dir.join("fresh-gateway"), dir.join("repository"));
    let passphrase = zeroize::Zeroizing::new(b"sophon-demo-passphrase".to_vec());
    line(format!("sophon demo in {}", dir.display()))?;
    let summary = generate(&home, DemoScale::Small, 1)?;
    let before = stats(&home)?;
    line(format!(
        "1. demo gateway: {} tenants, {} records, {} documents",
        summary.tenants,
        before.categories.values().map(|c| c.records).sum::<u64>(),
        before.categories.get(&sophon::gateway::Category::Documents).map(|c| c.records).unwrap_or(0)
    ))?;

    let backend = open_url(&repo_dir.to_string_lossy(), true)?;
    let repo = Arc::new(Repository::init(backend, &passphrase, &InitOptions::default(), Some(dir.join("cache")))?);
    let session = Session::shared(repo, "demo")?;
    let dump_opts = DumpOptions { passphrase: Some(passphrase.clone()), ..Default::default() };
    let opts = BackupOptions::new(vec![]);
    let (first, d) =
        sophon::gateway::backup::backup(&session, &home, &dump_opts, &opts, Arc::new(Progress::default()))?;
    let s = &first.snapshot.summary;
    line(format!(
        "2. full backup {}: {} files, {} read, {} stored; {} secrets redacted, 2FA sealed; {:.2}s",
        first.snapshot_id.short(),
        s.files,
        bytes(s.bytes),
        bytes(s.bytes_stored),
        d.redacted.len(),
        first.seconds
    ))?;

    let db = rusqlite::Connection::open(home.join(sophon::gateway::DB_FILE))?;
    db.execute_batch(
        "INSERT INTO memory_entries (id, tenant_id, agent_id, kind, content, created_at)
           SELECT 'demo-new-' || id, tenant_id, agent_id, 'fact', 'learned after the full backup', created_at
           FROM memory_entries LIMIT 25;
         UPDATE workflows SET name = name || ' (v2)' WHERE id IN (SELECT id FROM workflows LIMIT 1);",
    )?;
    drop(db);
    let (second, _) =
        sophon::gateway::backup::backup(&session, &home, &dump_opts, &opts, Arc::new(Progress::default()))?;
    let s = &second.snapshot.summary;
    line(format!(
        "3. 25 memory entries added, a workflow renamed; incremental backup {}: {} unchanged documents reused, {} new data stored, {:.2}s",
        second.snapshot_id.short(),
        s.files_unmodified,
        bytes(s.bytes_stored),
        second.seconds
    ))?;

    sophon::gateway::create_home(&fresh)?;
    let files = sophon::restore::SnapshotFiles::open(&session, &second.snapshot_id)?;
    let mut ropts = GatewayRestore {
        mode: Mode::Replace,
        only: vec![],
        into_tenant: None,
        dry_run: true,
        passphrase: Some(passphrase.clone()),
    };
    let plan = gateway_restore(&fresh, &files, &ropts)?;
    line(format!(
        "4. dry run into a fresh gateway: would restore {} records and {} files ({}); nothing written",
        plan.categories.iter().map(|c| c.records).sum::<u64>(),
        plan.categories.iter().map(|c| c.files).sum::<u64>(),
        bytes(plan.total_bytes)
    ))?;
    ropts.dry_run = false;
    let done = gateway_restore(&fresh, &files, &ropts)?;
    let after = stats(&fresh)?;
    let same = before.categories.iter().all(|(cat, c)| {
        let n = after.categories.get(cat).map(|c| c.records).unwrap_or(0);
        let expected = if *cat == sophon::gateway::Category::Memory { c.records + 25 } else { c.records };
        *cat == sophon::gateway::Category::License || n == expected
    });
    line(format!(
        "5. restored into {}: every category's record count matches the source{}; to re-configure: {} connections, {} nodes, {} webhooks, {} channels",
        fresh.display(),
        if same { "" } else { " (MISMATCH)" },
        done.connections_to_reauthenticate.len(),
        done.nodes_to_repair.len(),
        done.webhooks_with_redacted_secrets.len(),
        done.channels_with_redacted_secrets.len()
    ))?;

    let report = check::check(&session, &CheckOptions { read_data_percent: Some(100.0) }, &mut |_| {})?;
    line(format!(
        "6. verify --read-data: {} snapshots, {} packs, {} blobs read: {}",
        report.snapshots,
        report.packs,
        report.blobs_read,
        if report.is_clean() { "no damage" } else { "DAMAGE FOUND" }
    ))?;
    // The portable form: a sealed zip of the latest snapshot, checked like `backup verify --in`.
    let zip = dir.join("export.zip");
    let mut xopts = sophon::export::ExportOptions::new(sophon::export::Format::Zip);
    xopts.seal = Some((passphrase.clone(), sophon::export::seal::Kdf::default_argon2id()));
    let mut f = std::io::BufWriter::new(std::fs::File::create(&zip)?);
    let x = sophon::export::export_snapshot(&session, &second.snapshot_id, &mut f, &xopts)?;
    std::io::Write::flush(&mut f)?;
    drop(f);
    let opened = sophon::export::reader::ExportArchive::open(&zip, Some(&passphrase), &dir.join("staging"))?;
    let findings = opened.verify()?;
    line(format!(
        "7. sealed zip export {}: {} files, {} ({:.1}% of the content); verify: {}",
        zip.display(),
        x.files,
        bytes(x.bytes_out),
        100.0 * x.bytes_out as f64 / x.bytes_in.max(1) as f64,
        if findings.is_empty() { "no damage" } else { "DAMAGE FOUND" }
    ))?;
    if !report.is_clean() || !same || !findings.is_empty() {
        return Ok(exit::DAMAGE);
    }
    line(format!("done; remove {} when finished (sophon demo --folder runs the folder flow)", dir.display()))?;
    Ok(exit::OK)
}
