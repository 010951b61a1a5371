//! `sophon backup forget --dest URL`: retention for export archives at a destination, decided on
//! their metadata (read as `sophon::export::destination` describes).

use std::path::Path;

use sophon::export::destination::Place;
use sophon::export::retention::{self, ArchiveDecision, ArchiveInfo};
use sophon::retention::Policy;

use super::output::{bytes, json, line};
use super::RepoArgs;

/// What `forget --dest` takes from the command line (not `ForgetArgs`, so that this file and
/// `forget_cmd.rs` do not import each other).
pub struct ArchiveForget<'a> {
    pub repo: &'a RepoArgs,
    pub dry_run: bool,
    pub json: bool,
    pub quiet: bool,
}

pub fn forget_archives(a: &ArchiveForget, dest: &str, policy: &Policy, from: &str) -> anyhow::Result<u8> {
    let place = Place::open(dest)?;
    let passphrase = a.repo.passphrase().ok();
    let (listed, mut unreadable) =
        place.archives(dest, &a.repo.cache_dir(), passphrase.as_ref().map(|p| p.as_slice()))?;
    let mut infos = Vec::new();
    for l in listed {
        match ArchiveInfo::from_metadata(&l.name, l.size, &l.metadata) {
            Ok(i) => infos.push(i),
            Err(e) => unreadable.push(format!("{}: {e}", l.name)),
        }
    }

    let decisions = retention::plan(policy, &infos);
    let mut removed = Vec::new();
    if !a.dry_run {
        for d in decisions.iter().filter(|d| !d.keep) {
            place.remove(dest, &d.name)?;
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
        print_plan(dest, policy, from, &decisions, a.dry_run, a.quiet)?;
        for u in &unreadable {
            eprintln!("warning: left alone (its metadata cannot be read): {u}");
        }
        if !a.dry_run {
            let freed: u64 = decisions.iter().filter(|d| !d.keep).map(|d| d.size).sum();
            line(format!("removed {} archive(s) ({}) from {dest}", removed.len(), bytes(freed)))?;
        }
    }
    Ok(super::exit::OK)
}

fn print_plan(
    dest: &str,
    policy: &Policy,
    from: &str,
    decisions: &[ArchiveDecision],
    dry_run: bool,
    quiet: bool,
) -> std::io::Result<()> {
    line(format!("policy ({from}): {}", policy.describe()))?;
    let keep = decisions.iter().filter(|d| d.keep).count();
    line(format!("{dest}: keep {keep} archive(s), remove {}", decisions.len() - keep))?;
    if quiet {
        return Ok(());
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
        ))?;
    }
    Ok(())
}
