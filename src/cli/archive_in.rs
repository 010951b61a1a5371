//! Archives given with `--in`: verify, restore (an incremental chain as a whole). Fetching and
//! checking are the library's (`sophon::export::input`, `Chain::open_checked`); this file maps the
//! flags and reports.

use std::path::{Path, PathBuf};

use sophon::export::chain::{Chain, Refusal};
use sophon::export::input::{self, Fetched};

use super::output::{json, line};
use super::{exit, RepoArgs};

/// The passphrase if one was given (a plain archive needs none).
fn optional_passphrase(args: &RepoArgs) -> Option<zeroize::Zeroizing<Vec<u8>>> {
    args.passphrase().ok()
}

fn staging(args: &RepoArgs) -> PathBuf {
    args.cache_dir().join("spool")
}

/// A local file for `input`: itself, or for a URL (`s3://…/name.zip`) or standard input (`-`) a
/// copy fetched into the cache's spool (a URL's with its chain).
fn local_input(input: &Path, args: &RepoArgs) -> anyhow::Result<(PathBuf, Option<Fetched>)> {
    let text = input.to_string_lossy().into_owned();
    let pass = optional_passphrase(args);
    let pass = pass.as_ref().map(|p| p.as_slice());
    if text == "-" {
        let fetched = input::fetch_stream(&mut std::io::stdin().lock(), "standard input", &staging(args), pass)?;
        return Ok((fetched.archive.clone(), Some(fetched)));
    }
    if !text.contains("://") || text.starts_with("file://") {
        return Ok((PathBuf::from(text.strip_prefix("file://").unwrap_or(&text)), None));
    }
    let fetched = input::fetch_url(&text, &staging(args), pass)?;
    Ok((fetched.archive.clone(), Some(fetched)))
}

/// Open the chain ending in `input` and check every archive of it: the findings, one per line.
fn open_and_check(input: &Path, args: &RepoArgs) -> anyhow::Result<(Chain, Vec<String>)> {
    let pass = optional_passphrase(args);
    Ok(Chain::open_checked(input, pass.as_ref().map(|p| p.as_slice()), &staging(args))?)
}

/// `backup verify --in INPUT` (`as_json`: `--json`).
pub fn verify_in(given: &Path, repo: &RepoArgs, as_json: bool) -> anyhow::Result<u8> {
    let (input, _downloaded) = local_input(given, repo)?;
    let (chain, findings) = match open_and_check(&input, repo) {
        Ok(x) => x,
        // An archive that cannot even be opened (wrong passphrase, truncated, not an export) is a finding.
        Err(e) if is_damage(&e) => {
            if as_json {
                json(&serde_json::json!({ "archive": input, "clean": false, "findings": [e.to_string()] }))?;
            } else {
                line(format!("damaged: {e}"))?;
                line("DAMAGE FOUND")?;
            }
            return Ok(exit::DAMAGE);
        }
        Err(e) => return Err(e),
    };
    let newest = chain.archives.last();
    if as_json {
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
            line(format!("damaged: {f}"))?;
        }
        let version = newest.and_then(|x| x.metadata.sophon_version.as_deref()).unwrap_or("?");
        line(format!(
            "{}: {} archive(s), {} file(s) checked against their manifests; made by sophon {version}{}",
            if findings.is_empty() { "no damage found" } else { "DAMAGE FOUND" },
            chain.archives.len(),
            chain.archives.iter().map(|x| x.manifest.len()).sum::<usize>(),
            if chain.archives.iter().any(|x| x.sealed) { "; sealed, passphrase correct" } else { "" }
        ))?;
    }
    Ok(if findings.is_empty() { exit::OK } else { exit::DAMAGE })
}

/// Damage, a wrong passphrase, a refused entry or an unsupported version: what verify reports as
/// findings rather than as a failure to run.
fn is_damage(e: &anyhow::Error) -> bool {
    e.downcast_ref::<sophon::Error>().is_some_and(sophon::export::chain::is_archive_fault)
}

/// A chain ready to restore into a home: opened and checked, its downloads held until dropped.
pub struct RestoreInput {
    pub chain: Chain,
    _fetched: Option<Fetched>,
}

/// The archive (or chain) `given` to `restore --in`, checked from end to end before a byte reaches
/// `home` (`sophon::export::chain::open_for_restore`): `Err(exit code)` when it is refused
/// (reported here).
pub fn open_for_restore(given: &Path, repo: &RepoArgs, home: &Path) -> anyhow::Result<Result<RestoreInput, u8>> {
    let (input, fetched) = local_input(given, repo)?;
    let pass = optional_passphrase(repo);
    match sophon::export::chain::open_for_restore(&input, pass.as_ref().map(|p| p.as_slice()), &staging(repo))? {
        Ok(chain) => Ok(Ok(RestoreInput { chain, _fetched: fetched })),
        Err(Refusal::Unreadable(e)) => {
            eprintln!("error: {:#}", anyhow::Error::from(e));
            eprintln!("restore refused: nothing was written to {}", home.display());
            Ok(Err(exit::DAMAGE))
        }
        Err(Refusal::Damaged(findings)) => {
            for f in &findings {
                eprintln!("damaged: {f}");
            }
            eprintln!("restore refused: {} is damaged; nothing was written to {}", input.display(), home.display());
            Ok(Err(exit::DAMAGE))
        }
        Err(Refusal::FolderExport) => anyhow::bail!(
            "{} is an export of a folder backup, not of a gateway: unpack it with unzip or tar",
            input.display()
        ),
    }
}
