//! `sophon backup forget --dest URL`: retention for export archives at a destination. Each
//! archive's metadata is read (a remote one is downloaded once; what it said is remembered in the
//! cache by name and size, so a nightly run only downloads the new ones).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;

use sophon::export::chain::{archives_in, peek_metadata};
use sophon::export::retention::{self, ArchiveDecision, ArchiveInfo};
use sophon::retention::Policy;

use super::forget_cmd::ForgetArgs;
use super::output::{bytes, json, line};

fn is_archive(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    !n.starts_with('.') && (n.ends_with(".zip") || n.ends_with(".tar.gz") || n.ends_with(".tgz"))
}

/// Where the destination's archives are: a local folder, or a store.
enum Place {
    Folder(PathBuf),
    Store(std::sync::Arc<dyn sophon::backend::Backend>),
}

pub fn forget_archives(a: &ForgetArgs, dest: &str, policy: &Policy, from: &str) -> anyhow::Result<u8> {
    let local = !dest.contains("://") || dest.starts_with("file://");
    let place = if local {
        let dir = PathBuf::from(dest.strip_prefix("file://").unwrap_or(dest));
        if !dir.is_dir() {
            anyhow::bail!("--dest {dest}: no such folder");
        }
        Place::Folder(dir)
    } else {
        Place::Store(sophon::backend::open_url(dest, false)?)
    };
    let passphrase = a.repo.passphrase().ok();
    let pass = passphrase.as_ref().map(|p| p.as_slice());
    let mut infos = Vec::new();
    let mut unreadable = Vec::new();
    match &place {
        Place::Folder(dir) => {
            for p in archives_in(dir) {
                let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                let size = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
                match peek_metadata(&p, pass).and_then(|m| ArchiveInfo::from_metadata(&name, size, &m)) {
                    Ok(i) => infos.push(i),
                    Err(e) => unreadable.push(format!("{name}: {e}")),
                }
            }
        }
        Place::Store(store) => {
            let cache_file = a
                .repo
                .cache_dir()
                .join("archive-metadata")
                .join(format!("{}.json", &hex::encode(blake3::hash(dest.as_bytes()).as_bytes())[..24]));
            let mut known: BTreeMap<String, ArchiveInfo> =
                std::fs::read(&cache_file).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
            let mut listed = Vec::new();
            store.list("", &mut |o| {
                if is_archive(&o.name) && !o.name.contains('/') {
                    listed.push((o.name, o.size));
                }
                Ok(())
            })?;
            let spool = a.repo.cache_dir().join("spool");
            std::fs::create_dir_all(&spool).with_context(|| format!("creating {}", spool.display()))?;
            let mut fresh = BTreeMap::new();
            for (name, size) in listed {
                if let Some(i) = known.remove(&name).filter(|i| i.size == size) {
                    fresh.insert(name, i);
                    continue;
                }
                let local = spool.join(format!("retention-{}-{name}", std::process::id()));
                let read = super::archive_in::download(store.as_ref(), &name, &local)
                    .and_then(|()| Ok(peek_metadata(&local, pass)?))
                    .and_then(|m| Ok(ArchiveInfo::from_metadata(&name, size, &m)?));
                let _ = std::fs::remove_file(&local);
                match read {
                    Ok(i) => {
                        fresh.insert(name, i);
                    }
                    Err(e) => unreadable.push(format!("{name}: {e}")),
                }
            }
            if let Some(dir) = cache_file.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            let _ = std::fs::write(&cache_file, serde_json::to_vec(&fresh)?);
            infos.extend(fresh.into_values());
        }
    }

    let decisions = retention::plan(policy, &infos);
    let mut removed = Vec::new();
    if !a.dry_run {
        for d in decisions.iter().filter(|d| !d.keep) {
            match &place {
                Place::Folder(dir) => {
                    let p = dir.join(&d.name);
                    std::fs::remove_file(&p).with_context(|| format!("removing {}", p.display()))?
                }
                Place::Store(store) => store.delete(&d.name).with_context(|| format!("removing {dest}/{}", d.name))?,
            }
            removed.push(d.name.clone());
        }
    }
    if a.json {
        json(&serde_json::json!({
            "destination": dest,
            "policy": policy,
            "policy_from": from,
            "dry_run": a.dry_run,
            "archives": decisions,
            "kept": decisions.iter().filter(|d| d.keep).count(),
            "removed": if a.dry_run { decisions.iter().filter(|d| !d.keep).count() } else { removed.len() },
            "unreadable": unreadable,
        }))?;
    } else {
        print_plan(dest, policy, from, &decisions, a.dry_run, a.quiet);
        for u in &unreadable {
            eprintln!("warning: left alone (its metadata cannot be read): {u}");
        }
        if !a.dry_run {
            let freed: u64 = decisions.iter().filter(|d| !d.keep).map(|d| d.size).sum();
            line(format!("removed {} archive(s) ({}) from {dest}", removed.len(), bytes(freed)));
        }
    }
    Ok(super::exit::OK)
}

fn print_plan(dest: &str, policy: &Policy, from: &str, decisions: &[ArchiveDecision], dry_run: bool, quiet: bool) {
    line(format!("policy ({from}): {}", policy.describe()));
    let keep = decisions.iter().filter(|d| d.keep).count();
    line(format!("{dest}: keep {keep} archive(s), remove {}", decisions.len() - keep));
    if quiet {
        return;
    }
    for d in decisions {
        let verdict = if d.keep {
            "keep  "
        } else if dry_run {
            "would remove"
        } else {
            "remove"
        };
        line(format!(
            "  {verdict} {} {} ({})  {}",
            d.name,
            d.time,
            Path::new(&d.scope).display(),
            d.reasons.join(", ")
        ));
    }
}
