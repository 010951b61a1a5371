//! What a backup job's run passes to `backup create`: its stored arguments, the config's defaults
//! for scheduled backups (`Sophon:Backups:Default:Destination`, `Format`, `Encrypt`) when the job
//! names no destination of its own, and the run-time templates; and which repository it writes,
//! so that the daemon runs the jobs of one repository one after another (format-spec/gateway.md §3.4).

use std::ffi::OsString;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Utc};

use super::run::flag_value;
use super::template;
use crate::gateway::settings::{ScheduledDestination, LOCAL_ARCHIVES};
use crate::gateway::Settings;

/// The variable that carries the backup passphrase to `sophon` children.
const PASSPHRASE_VARIABLE: &str = "SOPHON_BACKUP_PASSPHRASE";

/// The options that make a job's backup its own rather than the gateway's default one: a job
/// with any of them (or without retention) does not take the config's `Destination`.
const OWN_CHOICES: [&str; 4] = ["--dest", "--out", "--repo", "--categories"];

/// The arguments of `backup create` for a run of a job with `args`, started at `started`; `env` is
/// the runner's extra environment. The config's defaults apply to the gateway's default kind of
/// job (the `nightly-backup` of `gateway init` and the demo's per-tenant ones): with retention, and
/// none of [`OWN_CHOICES`]. `Err` is the run's failure summary (a config value sophon cannot
/// honour, or a seal without a passphrase): nothing has been backed up then.
pub fn run_args(
    home: &Path,
    args: &[String],
    retention: bool,
    env: &[(OsString, OsString)],
    started: DateTime<Utc>,
) -> Result<Vec<String>, String> {
    let mut all = args.to_vec();
    if retention && OWN_CHOICES.iter().all(|f| flag_value(args, f).is_none()) {
        all.extend(config_defaults(home, args, env)?);
    }
    Ok(expand_names(&all, &started))
}

/// The templates expanded in the file names of `--dest` and `--out` (after their last `/`), with
/// the run's start: `backup create` would expand them with the wall clock, which is not the run's
/// time under an injected clock. The folder part is left to `backup create`, as a `{…}` there
/// decides whether the job's archives are thinned (see [`super::run::archive_folder`]).
fn expand_names(args: &[String], at: &DateTime<Utc>) -> Vec<String> {
    let name_of = |v: &str| match v.rsplit_once('/') {
        Some((folder, name)) => format!("{folder}/{}", template::expand(name, at)),
        None => template::expand(v, at),
    };
    let mut out = Vec::with_capacity(args.len());
    let mut value_next = false;
    for a in args {
        if value_next {
            out.push(name_of(a));
            value_next = false;
            continue;
        }
        value_next = a == "--dest" || a == "--out";
        match a.split_once('=') {
            Some((flag @ ("--dest" | "--out"), v)) => out.push(format!("{flag}={}", name_of(v))),
            _ => out.push(a.clone()),
        }
    }
    out
}

/// The arguments that honour the config's `Destination`, `Format` and `Encrypt`: none for
/// `archive`, else `--dest FOLDER/<scope>/{date}-{time}.<format>` (scope: the job's `--tenant`, or
/// `all`), and `--encrypt` with a passphrase the child can use.
fn config_defaults(home: &Path, args: &[String], env: &[(OsString, OsString)]) -> Result<Vec<String>, String> {
    let settings = Settings::load(home).map_err(|e| e.to_string())?;
    let d = settings.scheduled_backups().map_err(|e| e.to_string())?;
    let folder = match &d.destination {
        ScheduledDestination::Archive => return Ok(Vec::new()),
        ScheduledDestination::Local => home.join(LOCAL_ARCHIVES).to_string_lossy().into_owned(),
        ScheduledDestination::Url(u) => u.clone(),
    };
    // One folder per scope: `forget --dest` thins a folder as one series, and a tenant's archives
    // must not be thinned with the whole gateway's.
    let scope = flag_value(args, "--tenant").unwrap_or("all");
    let mut out =
        vec!["--dest".to_string(), format!("{folder}/{scope}/{}-{}.{}", template::DATE, template::TIME, d.format)];
    if d.encrypt {
        out.push("--encrypt".into());
        let has_variable =
            env.iter().any(|(k, _)| k == PASSPHRASE_VARIABLE) || std::env::var_os(PASSPHRASE_VARIABLE).is_some();
        if flag_value(args, "--passphrase-file").is_none() && !has_variable {
            match settings.passphrase_file() {
                Some(f) => out.extend(["--passphrase-file".to_string(), f.to_string_lossy().into_owned()]),
                None => {
                    return Err(format!(
                        "Sophon:Backups:Default:Encrypt is true, but no backup passphrase is configured: set \
                         Sophon:Backups:Default:PassphraseFile, or {PASSPHRASE_VARIABLE} in the scheduler's \
                         environment (or set Encrypt to false); nothing was backed up"
                    ))
                }
            }
        }
    }
    Ok(out)
}

/// The repository a job writes: its `--repo`, else the home's configured one. `None` for jobs that
/// are not backups (what a shell command touches is not known).
pub fn repository_key(home: &Path, action: &super::Action) -> Option<String> {
    let super::Action::Backup { args, .. } = action else {
        return None;
    };
    Some(repository_of(home, args))
}

/// [`repository_key`] of a backup job's arguments.
pub fn repository_of(home: &Path, args: &[String]) -> String {
    if let Some(r) = flag_value(args, "--repo") {
        return r.to_string();
    }
    // A config that cannot be read fails the run itself; for ordering, it is the home's repository.
    Settings::load(home).map(|s| s.repository_url()).unwrap_or_else(|_| home.to_string_lossy().into_owned())
}

/// A backup job's turn at its repository, across processes (two schedulers of one home, a daemon
/// and `run-due`): an exclusive advisory lock on `HOME/backups/.cron-<hash of the repository>.lock`,
/// held for the whole run and released when dropped (or when the process ends, however it ends).
#[derive(Debug)]
pub struct Turn {
    _file: Option<std::fs::File>,
}

/// Where the turns of a home's jobs are taken.
pub const TURN_FOLDER: &str = "backups";

/// Wait for the turn of `repository` (polling `stop`); `None` when stopped first. Where the lock
/// file cannot be made or locked (a read-only folder, a file system without locks) the run goes
/// ahead without a turn: its steps still wait for repository locks.
pub fn wait_turn(home: &Path, repository: &str, stop: &AtomicBool) -> Option<Turn> {
    let dir = home.join(TURN_FOLDER);
    let hash = blake3::hash(repository.as_bytes());
    let path = dir.join(format!(".cron-{}.lock", &hash.to_hex()[..16]));
    let file = std::fs::create_dir_all(&dir)
        .and_then(|_| std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path));
    let Ok(file) = file else { return Some(Turn { _file: None }) };
    loop {
        match file.try_lock() {
            Ok(()) => return Some(Turn { _file: Some(file) }),
            Err(std::fs::TryLockError::WouldBlock) => {}
            Err(std::fs::TryLockError::Error(_)) => return Some(Turn { _file: None }),
        }
        if stop.load(Ordering::SeqCst) {
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn only_the_archive_names_get_the_run_time() {
        let at = chrono::Utc.with_ymd_and_hms(2030, 1, 2, 12, 0, 0).single().expect("time");
        let day = at.with_timezone(&chrono::Local).format("%Y-%m-%d").to_string();
        let args: Vec<String> =
            ["--dest", "/x/{date}/n-{date}.zip", "--out=/y/{date}.zip", "--tag", "{date}"].map(String::from).to_vec();
        let want = [
            "--dest".to_string(),
            format!("/x/{{date}}/n-{day}.zip"),
            format!("--out=/y/{day}.zip"),
            "--tag".into(),
            "{date}".into(),
        ];
        assert_eq!(expand_names(&args, &at), want);
    }
}
