//! Archives given with `--in`: verify, restore (an incremental chain as a whole), and finding the
//! export that an incremental one follows.

use std::path::{Path, PathBuf};

use anyhow::Context;

use sophon::export::chain::{is_archive_name, peek_metadata, Chain};
use sophon::export::{seal, Previous};
use sophon::{Repository, SnapshotId};

use super::backup_cmd::{restore_home, restore_into_gateway, RestoreArgs, VerifyArgs};
use super::destination::{Listed, Place};
use super::output::{json, line};
use super::{exit, RepoArgs};

/// The passphrase if one was given (a plain archive needs none).
fn optional_passphrase(args: &RepoArgs) -> Option<zeroize::Zeroizing<Vec<u8>>> {
    args.passphrase().ok()
}

fn staging(args: &RepoArgs) -> PathBuf {
    args.cache_dir().join("spool")
}

/// Archives downloaded for `--in URL`, removed when dropped.
struct Downloaded(PathBuf);

impl Drop for Downloaded {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const DOWNLOAD_PART: u64 = 8 << 20;

/// A fresh folder in the cache's spool for archives read from a URL or standard input.
fn download_dir(args: &RepoArgs) -> anyhow::Result<(PathBuf, Downloaded)> {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let dir = staging(args).join(format!("download-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok((dir.clone(), Downloaded(dir)))
}

/// Copy `name` of `store` to `to`, a range at a time (never a whole archive in memory).
pub(super) fn download(store: &dyn sophon::backend::Backend, name: &str, to: &Path) -> anyhow::Result<()> {
    use std::io::Write;
    let size = store.stat(name)?.ok_or_else(|| anyhow::anyhow!("{}/{name}: no such object", store.location()))?;
    let mut f =
        std::io::BufWriter::new(std::fs::File::create(to).with_context(|| format!("creating {}", to.display()))?);
    let mut at = 0;
    while at < size {
        let n = DOWNLOAD_PART.min(size - at);
        f.write_all(&store.read_range(name, at, n)?).with_context(|| format!("writing {}", to.display()))?;
        at += n;
    }
    f.flush()?;
    Ok(())
}

/// A local file for `input`: itself, or for a URL (`s3://…/name.zip`) a download into the cache's
/// spool, with the other archives of its folder when it is an incremental (its chain).
fn local_input(input: &Path, args: &RepoArgs) -> anyhow::Result<(PathBuf, Option<Downloaded>)> {
    let text = input.to_string_lossy().into_owned();
    if text == "-" {
        // Standard input has no index and no neighbours: it is spooled, and must be a whole archive.
        let (dir, guard) = download_dir(args)?;
        let local = dir.join("stdin-archive");
        let mut f = std::fs::File::create(&local).with_context(|| format!("creating {}", local.display()))?;
        std::io::copy(&mut std::io::stdin().lock(), &mut f).context("reading the archive from standard input")?;
        let pass = optional_passphrase(args);
        let meta = peek_metadata(&local, pass.as_ref().map(|p| p.as_slice()))?;
        if meta.follows().is_some() {
            anyhow::bail!(
                "an incremental archive on standard input cannot bring the exports it follows: give its file or URL"
            );
        }
        return Ok((local, Some(guard)));
    }
    let remote = text.contains("://") && !text.starts_with("file://");
    if !remote {
        return Ok((PathBuf::from(text.strip_prefix("file://").unwrap_or(&text)), None));
    }
    let (store_url, name) = text
        .rsplit_once('/')
        .filter(|(_, n)| !n.is_empty())
        .ok_or_else(|| anyhow::anyhow!("--in {text}: no archive name"))?;
    let store = sophon::backend::open_url(store_url, false)?;
    let (dir, guard) = download_dir(args)?;
    let local = dir.join(name);
    download(&*store, name, &local)?;
    let pass = optional_passphrase(args);
    let meta = peek_metadata(&local, pass.as_ref().map(|p| p.as_slice()))?;
    if meta.follows().is_some() {
        let mut names = Vec::new();
        store.list("", &mut |o| {
            if !o.name.contains('/') && o.name != name && is_archive_name(&o.name) {
                names.push(o.name);
            }
            Ok(())
        })?;
        for n in names {
            download(&*store, &n, &dir.join(&n))?;
        }
    }
    Ok((local, Some(guard)))
}

/// Open the chain ending in `input` and check every archive of it (for a sealed one, every
/// segment): the findings, one per line.
fn open_and_check(input: &Path, args: &RepoArgs) -> anyhow::Result<(Chain, Vec<String>)> {
    let pass = optional_passphrase(args);
    let chain = Chain::open(input, pass.as_ref().map(|p| p.as_slice()), &staging(args))?;
    let mut findings = Vec::new();
    for a in &chain.archives {
        if a.sealed {
            let f = std::fs::File::open(&a.path).with_context(|| format!("opening {}", a.path.display()))?;
            if let Err(e) =
                seal::verify_all(std::io::BufReader::new(f), pass.as_ref().map(|p| p.as_slice()).unwrap_or_default())
            {
                findings.push(format!("{}: {e}", a.path.display()));
            }
        }
    }
    findings.extend(chain.verify()?);
    Ok((chain, findings))
}

pub fn verify_in(a: VerifyArgs) -> anyhow::Result<u8> {
    let given = a.input.clone().unwrap_or_default();
    let (input, _downloaded) = local_input(&given, &a.repo)?;
    let (chain, findings) = match open_and_check(&input, &a.repo) {
        Ok(x) => x,
        // An archive that cannot even be opened (wrong passphrase, truncated, not an export) is a finding.
        Err(e) if is_damage(&e) => {
            if a.json {
                json(&serde_json::json!({ "archive": input, "clean": false, "findings": [e.to_string()] }))?;
            } else {
                line(format!("damaged: {e}"));
                line("DAMAGE FOUND");
            }
            return Ok(exit::DAMAGE);
        }
        Err(e) => return Err(e),
    };
    let newest = chain.archives.last();
    if a.json {
        json(&serde_json::json!({
            "archive": input,
            "clean": findings.is_empty(),
            "findings": findings,
            "archives": chain.archives.iter().map(|x| serde_json::json!({
                "path": x.path, "export": x.export_id(), "format": x.format.name(), "sealed": x.sealed,
                "files": x.manifest.len(),
            })).collect::<Vec<_>>(),
        }))?;
    } else {
        for f in &findings {
            line(format!("damaged: {f}"));
        }
        let version = newest.and_then(|x| x.metadata.sophon_version.as_deref()).unwrap_or("?");
        line(format!(
            "{}: {} archive(s), {} file(s) checked against their manifests; made by sophon {version}{}",
            if findings.is_empty() { "no damage found" } else { "DAMAGE FOUND" },
            chain.archives.len(),
            chain.archives.iter().map(|x| x.manifest.len()).sum::<usize>(),
            if chain.archives.iter().any(|x| x.sealed) { "; sealed, passphrase correct" } else { "" }
        ));
    }
    Ok(if findings.is_empty() { exit::OK } else { exit::DAMAGE })
}

/// Damage, a wrong passphrase, a refused entry or an unsupported version: what verify reports as
/// findings rather than as a failure to run.
fn is_damage(e: &anyhow::Error) -> bool {
    e.downcast_ref::<sophon::Error>().is_some_and(|e| {
        e.is_damage()
            || matches!(
                e,
                sophon::Error::UnsafePath(_)
                    | sophon::Error::UnsupportedVersion { .. }
                    | sophon::Error::WrongPassphrase { .. }
                    | sophon::Error::NotFound(_)
            )
    })
}

pub fn restore_in(a: RestoreArgs) -> anyhow::Result<u8> {
    let home = restore_home(&a)?;
    let given = a.input.clone().unwrap_or_default();
    let (input, _downloaded) = local_input(&given, &a.repo)?;
    // Everything is checked before a byte reaches the home.
    let (chain, findings) = match open_and_check(&input, &a.repo) {
        Ok(x) => x,
        Err(e) if is_damage(&e) => {
            eprintln!("error: {e:#}");
            eprintln!("restore refused: nothing was written to {}", home.display());
            return Ok(exit::DAMAGE);
        }
        Err(e) => return Err(e),
    };
    if !findings.is_empty() {
        for f in &findings {
            eprintln!("damaged: {f}");
        }
        eprintln!("restore refused: {} is damaged; nothing was written to {}", input.display(), home.display());
        return Ok(exit::DAMAGE);
    }
    if chain.archives.last().is_some_and(|x| x.metadata.layout() == sophon::format::layout::Layout::Files) {
        anyhow::bail!(
            "{} is an export of a folder backup, not of a gateway: unpack it with unzip or tar",
            input.display()
        );
    }
    restore_into_gateway(&a, &home, &chain, optional_passphrase(&a.repo))
}

/// The export an incremental one written to `out` follows: the newest of the same scope beside it.
pub fn previous_export(repo: &Repository, id: &SnapshotId, out: &Path, args: &RepoArgs) -> anyhow::Result<Previous> {
    if out.as_os_str() == "-" {
        return Err(super::UsageError(
            "--incremental needs --out FILE: the earlier exports are looked for beside it".into(),
        )
        .into());
    }
    if out.exists() {
        anyhow::bail!("{}: {NEVER_REPLACES}", out.display());
    }
    let dir = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let place = Place::Folder(dir.to_path_buf());
    previous_at(repo, id, &place, &dir.display().to_string(), args)
}

/// Why an incremental export is not written over an existing archive: chains follow export ids,
/// so replacing any link, the one followed or an older one, breaks every chain through it.
pub const NEVER_REPLACES: &str =
    "already exists, and an incremental export never replaces an archive (it may be a link of \
     the chain, such as the export it would follow); give each incremental its own name";

/// The newest export of snapshot `id`'s scope at `place` (`where_` names it).
pub fn previous_at(
    repo: &Repository,
    id: &SnapshotId,
    place: &Place,
    where_: &str,
    args: &RepoArgs,
) -> anyhow::Result<Previous> {
    let scope = repo.load_snapshot(id)?.paths.join(" ");
    let pass = optional_passphrase(args);
    // Archives whose metadata cannot be read (another passphrase, damage) cannot be followed.
    let (listed, _unreadable) = place.archives(where_, args, pass.as_ref().map(|p| p.as_slice()))?;
    let mut best: Option<(String, Listed)> = None;
    for l in listed {
        let e = &l.metadata.export;
        if e.scope.as_deref() != Some(scope.as_str()) {
            continue;
        }
        let created = e.created.clone().unwrap_or_default();
        let seq = e.incremental.as_ref().map_or(0, |i| i.sequence);
        let key = format!("{created}#{seq:020}");
        if best.as_ref().is_none_or(|(k, _)| key > *k) {
            best = Some((key, l));
        }
    }
    let Some((_, l)) = best else {
        anyhow::bail!("no earlier export of {scope} in {where_}: make a full export first (without --incremental)");
    };
    let e = &l.metadata.export;
    let export_id = e.id.clone().unwrap_or_default();
    let snapshot: SnapshotId = e
        .snapshot
        .as_deref()
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("export {export_id}: its metadata names no snapshot"))?;
    Ok(Previous {
        base_id: e.incremental.as_ref().map_or_else(|| export_id.clone(), |i| i.base.clone()),
        sequence: e.incremental.as_ref().map_or(0, |i| i.sequence),
        export_id,
        snapshot,
    })
}
