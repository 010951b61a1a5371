//! Running a job's action as child processes, with its outcome summarised for `cron_runs.summary`.
//!
//! A backup job runs `SOPHON backup create --home HOME <args> --time <run start> --tag
//! cron:TENANT/NAME --json`, then, with retention, `SOPHON backup forget --home HOME [--repo …]
//! [--passphrase-file …] [--cache-dir …] --tag cron:TENANT/NAME --prune` (the repository arguments
//! are the job's own; the tag limits the retention to the job's own snapshots), and, when the job exports archives to a
//! fixed folder (`--dest FOLDER/NAME`), `SOPHON backup forget --home HOME --dest FOLDER
//! [--passphrase-file …] [--cache-dir …]`. A custom job runs `sh -c COMMAND` without the
//! scheduler's repository and passphrase variables; when the scheduler has `SOPHON_BACKUP_PASSPHRASE`,
//! the command gets `SOPHON_BACKUP_PASSPHRASE_FILE` instead, the path of a private file (0600, in a
//! 0700 folder, removed when the run ends) holding it, which a `sophon` child reads as its
//! `--passphrase-file`. Both get `SOPHON_HOME`, `SOPHON_CRON_JOB` and `SOPHON_CRON_TIME` (the
//! scheduled occurrence) in their environment.
//!
//! Before a run, a custom command's `{date}`/`{time}` are filled in ([`super::template`]) and a
//! backup job's arguments get the config's defaults ([`super::backup_job`]). A `sophon` step that
//! meets another process's repository lock is tried again for a while rather than failing.

use std::ffi::OsString;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::store::{ts, Action, Job};
use super::{backup_job, template};

/// How many trailing lines of a failed command's standard error go into the summary.
pub const SUMMARY_LINES: usize = 5;
/// Only the tail of a child's output is kept: a chatty command must not fill memory.
const KEEP_BYTES: usize = 16 * 1024;

/// How to run actions.
#[derive(Debug, Clone)]
pub struct Runner {
    /// The `sophon` binary (the CLI passes `std::env::current_exe()`).
    pub sophon: PathBuf,
    /// The gateway home the jobs belong to.
    pub home: PathBuf,
    /// Extra environment for every child.
    pub env: Vec<(OsString, OsString)>,
}

/// The end of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// `ok` or `failed`.
    pub status: &'static str,
    pub summary: String,
}

impl Outcome {
    fn ok(summary: String) -> Self {
        Outcome { status: "ok", summary }
    }
    fn failed(summary: String) -> Self {
        Outcome { status: "failed", summary }
    }
}

enum Exit {
    Done { status: ExitStatus, stdout: String, stderr: String },
    Abandoned,
}

impl Runner {
    /// Run `job`, started at `started`, for its occurrence `scheduled`. When `stop` becomes true
    /// the child is killed and the run fails as abandoned (backups are crash-safe: a killed one
    /// leaves at worst unreferenced packs that prune collects).
    pub fn run(&self, job: &Job, started: DateTime<Utc>, scheduled: DateTime<Utc>, stop: &AtomicBool) -> Outcome {
        let action = match job.action() {
            Ok(a) => a,
            Err(e) => return Outcome::failed(e.to_string()),
        };
        match action {
            // The config's defaults and the templates are applied at each run: a changed config
            // applies to the next run, and `{date}` is the run's own.
            Action::Backup { args, retention } => {
                match backup_job::run_args(&self.home, &args, retention, &self.env, started) {
                    Ok(args) => self.backup_in_turn(job, &args, retention, started, scheduled, stop),
                    Err(e) => Outcome::failed(e),
                }
            }
            Action::Custom { command } => {
                let mut c = Command::new("sh");
                c.arg("-c").arg(template::expand(&command, &started));
                match self.exec(c, job, scheduled, stop) {
                    Ok(Exit::Done { status, stdout, .. }) if status.success() => {
                        Outcome::ok(last_lines(&stdout, 1).unwrap_or_else(|| "exit status 0".into()))
                    }
                    Ok(Exit::Done { status, stderr, .. }) => Outcome::failed(failure("", status, &stderr)),
                    Ok(Exit::Abandoned) => Outcome::failed(ABANDONED.into()),
                    Err(e) => Outcome::failed(format!("cannot run sh: {e}")),
                }
            }
            Action::Gateway { kind } => {
                Outcome { status: "skipped", summary: format!("{kind} jobs are run by the gateway, not by sophon") }
            }
        }
    }

    fn backup(
        &self,
        job: &Job,
        args: &[String],
        retention: bool,
        started: DateTime<Utc>,
        scheduled: DateTime<Utc>,
        stop: &AtomicBool,
    ) -> Outcome {
        let mut c = Command::new(&self.sophon);
        // The snapshot's time is when it was taken: a run catching up on a missed night at 09:00
        // must not pass off 09:00 data as 03:00's. The occurrence goes into the summary instead.
        // The job's tag marks its snapshots, so its retention below touches those and no others.
        let tag = crate::forget::job_tag(&job.tenant_id, &job.name);
        c.args(["backup", "create", "--home"]).arg(&self.home).args(args).args(["--time", &ts(started)]);
        c.args(["--tag", &tag]);
        if !args.iter().any(|a| a == "--json") {
            c.arg("--json");
        }
        let created = match self.exec_waiting_for_locks(c, job, scheduled, stop) {
            Ok(Exit::Done { status, stdout, .. }) if status.success() => {
                format!("{} (scheduled for {})", snapshot_summary(&stdout), ts(scheduled))
            }
            Ok(Exit::Done { status, stderr, .. }) => {
                return Outcome::failed(failure("backup create: ", status, &stderr))
            }
            Ok(Exit::Abandoned) => return Outcome::failed(ABANDONED.into()),
            Err(e) => return Outcome::failed(format!("cannot run {}: {e}", self.sophon.display())),
        };
        if !retention {
            return Outcome::ok(created);
        }
        let mut c = Command::new(&self.sophon);
        c.args(["backup", "forget", "--home"])
            .arg(&self.home)
            .args(repo_args(args))
            .args(["--tag", &tag])
            .arg("--prune");
        let mut out = match self.exec_waiting_for_locks(c, job, scheduled, stop) {
            Ok(Exit::Done { status, stdout, .. }) if status.success() => {
                let kept = last_lines(&stdout, 1).unwrap_or_else(|| "done".into());
                Outcome::ok(format!("{created}; retention: {kept}"))
            }
            Ok(Exit::Done { status, stderr, .. }) => {
                Outcome::failed(format!("{created}; {}", failure("backup forget: ", status, &stderr)))
            }
            Ok(Exit::Abandoned) => return Outcome::failed(format!("{created}; {ABANDONED}")),
            Err(e) => Outcome::failed(format!("{created}; cannot run {}: {e}", self.sophon.display())),
        };
        // The exported archives pile up as well: the same lifecycle applies to them.
        match archive_folder(args) {
            None => {}
            Some(Err(dest)) => {
                out.summary.push_str(&format!("; archives: not thinned ({dest}: the folder part has a {{…}} template)"))
            }
            Some(Ok(folder)) => {
                let mut c = Command::new(&self.sophon);
                c.args(["backup", "forget", "--home"]).arg(&self.home).args(["--dest", &folder]);
                c.args(picked(args, &["--passphrase-file", "--cache-dir"]));
                let (status, note) = match self.exec(c, job, scheduled, stop) {
                    Ok(Exit::Done { status, stdout, .. }) if status.success() => {
                        ("ok", format!("archives: {}", last_lines(&stdout, 1).unwrap_or_else(|| "done".into())))
                    }
                    Ok(Exit::Done { status, stderr, .. }) => {
                        ("failed", failure("backup forget --dest: ", status, &stderr))
                    }
                    Ok(Exit::Abandoned) => ("failed", ABANDONED.to_string()),
                    Err(e) => ("failed", format!("cannot run {}: {e}", self.sophon.display())),
                };
                if status == "failed" {
                    out.status = "failed";
                }
                out.summary.push_str(&format!("; {note}"));
            }
        }
        out
    }

    fn exec(&self, mut c: Command, job: &Job, scheduled: DateTime<Utc>, stop: &AtomicBool) -> std::io::Result<Exit> {
        c.env("SOPHON_HOME", &self.home)
            .env("SOPHON_CRON_JOB", &job.name)
            .env("SOPHON_CRON_TIME", ts(scheduled))
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // Held until the run ends, when the file is removed.
        let custom = c.get_program() != self.sophon.as_os_str();
        let passphrase_file = if custom { self.custom_passphrase_file()? } else { None };
        if custom {
            // Secrets stay out of reach of whatever the command runs (and of its logs): the backup
            // passphrase only as a file path, so `sophon backup create --encrypt` still finds it.
            // Removed last, after `self.env`.
            for secret in SCRUBBED_FOR_CUSTOM {
                c.env_remove(secret);
            }
            if let Some(f) = &passphrase_file {
                c.env(PASSPHRASE_FILE_VARIABLE, f.path());
            }
        }
        // Its own process group, so that stopping a run reaches the command's children too (a
        // `sh -c` job's `sleep` would otherwise outlive it and hold its output pipes open).
        std::os::unix::process::CommandExt::process_group(&mut c, 0);
        let mut child = c.spawn()?;
        let out = child.stdout.take().map(tail_reader);
        let err = child.stderr.take().map(tail_reader);
        let status = wait(&mut child, stop)?;
        // A process the command left in the background (`daemon &`) inherits its pipes and can hold
        // them open for ever: give the output a bounded time to end, then keep what came.
        let deadline = Instant::now() + DRAIN_AFTER_EXIT;
        let collect = |t: Option<Tail>| t.map(|t| t.collect(deadline)).unwrap_or_default();
        let (stdout, stderr) = (collect(out), collect(err));
        Ok(match status {
            Some(status) => Exit::Done { status, stdout, stderr },
            None => Exit::Abandoned,
        })
    }
}

impl Runner {
    /// [`Runner::backup`] once no other backup job of its repository runs, in this process or
    /// another ([`backup_job::wait_turn`]): their `forget --prune` steps would fail on each other.
    fn backup_in_turn(
        &self,
        job: &Job,
        args: &[String],
        retention: bool,
        started: DateTime<Utc>,
        scheduled: DateTime<Utc>,
        stop: &AtomicBool,
    ) -> Outcome {
        let repository = backup_job::repository_of(&self.home, args);
        let Some(turn) = backup_job::wait_turn(&self.home, &repository, stop) else {
            return Outcome::failed(ABANDONED.into());
        };
        let out = self.backup(job, args, retention, started, scheduled, stop);
        drop(turn);
        out
    }

    /// [`Runner::exec`] of a `sophon` command that takes a repository lock: while it fails because
    /// another process holds a conflicting lock (another job's prune, a manual prune), it is run
    /// again every [`LOCK_RETRY_EVERY`], for up to [`LOCK_WAIT`]. Jobs of one home must not fail
    /// because of each other; a lock still held after that long is reported as the failure.
    fn exec_waiting_for_locks(
        &self,
        c: Command,
        job: &Job,
        scheduled: DateTime<Utc>,
        stop: &AtomicBool,
    ) -> std::io::Result<Exit> {
        let begun = Instant::now();
        loop {
            let exit = self.exec(copy_command(&c), job, scheduled, stop)?;
            let Exit::Done { status, stdout, stderr } = exit else { return Ok(exit) };
            if status.success() || !stderr.contains(LOCKED) {
                return Ok(Exit::Done { status, stdout, stderr });
            }
            let waited = begun.elapsed();
            if waited >= LOCK_WAIT {
                let stderr = format!("{stderr}\ngave up after waiting {} s for the lock", waited.as_secs());
                return Ok(Exit::Done { status, stdout, stderr });
            }
            let until = Instant::now() + LOCK_RETRY_EVERY;
            while Instant::now() < until {
                if stop.load(Ordering::SeqCst) {
                    return Ok(Exit::Abandoned);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// The value of `name` in a child's environment: `self.env`'s last setting, else the process's.
    fn child_env(&self, name: &str) -> Option<OsString> {
        match self.env.iter().rev().find(|(k, _)| k == name) {
            Some((_, v)) => Some(v.clone()),
            None => std::env::var_os(name),
        }
    }

    /// The scheduler's `SOPHON_BACKUP_PASSPHRASE` in a private file for a custom command; `None`
    /// when there is none, or when a passphrase file is named already (that path passes through).
    fn custom_passphrase_file(&self) -> std::io::Result<Option<PrivateFile>> {
        if self.child_env(PASSPHRASE_FILE_VARIABLE).is_some_and(|v| !v.is_empty()) {
            return Ok(None);
        }
        match self.child_env("SOPHON_BACKUP_PASSPHRASE").filter(|v| !v.is_empty()) {
            Some(v) => PrivateFile::write(std::os::unix::ffi::OsStrExt::as_bytes(v.as_os_str())).map(Some),
            None => Ok(None),
        }
    }
}

/// What `sophon` prints when a repository lock stands in its way (`Error::Locked`).
const LOCKED: &str = " is locked: ";
/// How long a job waits for another process's repository lock.
pub const LOCK_WAIT: Duration = Duration::from_secs(15 * 60);
/// How often it tries again meanwhile.
const LOCK_RETRY_EVERY: Duration = Duration::from_secs(2);

/// A new command with the program, arguments, environment and folder of `c` (a `Command` runs once).
fn copy_command(c: &Command) -> Command {
    let mut n = Command::new(c.get_program());
    n.args(c.get_args());
    for (k, v) in c.get_envs() {
        match v {
            Some(v) => n.env(k, v),
            None => n.env_remove(k),
        };
    }
    if let Some(d) = c.get_current_dir() {
        n.current_dir(d);
    }
    n
}

/// The variable that names a passphrase file for `--passphrase-file`.
const PASSPHRASE_FILE_VARIABLE: &str = "SOPHON_BACKUP_PASSPHRASE_FILE";

/// A secret in a file only its owner can read, in a folder of its own; both removed on drop.
struct PrivateFile {
    dir: PathBuf,
}

impl PrivateFile {
    fn write(secret: &[u8]) -> std::io::Result<PrivateFile> {
        use std::io::Write;
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        let tag: [u8; 8] = crate::crypto::random_array().map_err(std::io::Error::other)?;
        let dir = std::env::temp_dir().join(format!("sophon-cron-{}-{}", std::process::id(), hex::encode(tag)));
        std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
        let file = PrivateFile { dir };
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(file.path())?;
        f.write_all(secret)?;
        f.write_all(b"\n")?;
        Ok(file)
    }

    fn path(&self) -> PathBuf {
        self.dir.join("passphrase")
    }
}

impl Drop for PrivateFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const ABANDONED: &str = "abandoned: the scheduler was stopped while the run was in progress";

/// Variables removed from a custom job's environment: the scheduler's own secrets and repository.
const SCRUBBED_FOR_CUSTOM: [&str; 4] =
    ["SOPHON_BACKUP_PASSPHRASE", "SOPHON_NEW_PASSPHRASE", "SOPHON_REPOSITORY_PASSPHRASE", "SOPHON_REPOSITORY"];

/// How long a command's output may stay open after it exited (held by a process it left behind).
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(5);

/// Wait for the child, polling `stop`; `None` when it was killed because of `stop`.
fn wait(child: &mut Child, stop: &AtomicBool) -> std::io::Result<Option<ExitStatus>> {
    loop {
        if let Some(s) = child.try_wait()? {
            return Ok(Some(s));
        }
        if stop.load(Ordering::SeqCst) {
            // SIGTERM to the group first, so a backup can end cleanly; SIGKILL after a grace period.
            if signal_group(child.id(), "-TERM") {
                let grace = Instant::now() + STOP_GRACE;
                while child.try_wait()?.is_none() && Instant::now() < grace {
                    std::thread::sleep(Duration::from_millis(50));
                }
                signal_group(child.id(), "-KILL");
            }
            // Without kill(1) (or after it), at least the command itself.
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// How long a stopped run's processes get between SIGTERM and SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Signal a process group through kill(1). `libc::kill` would need `unsafe`, which the crate
/// forbids, and no safe wrapper (`nix`, `rustix`) is a dependency. Without a working kill(1) only
/// the group's leader can be stopped ([`wait`] falls back to `Child::kill`); returns whether the
/// group was signalled.
fn signal_group(pgid: u32, signal: &str) -> bool {
    Command::new("kill")
        .args([signal, "--", &format!("-{pgid}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The tail of a pipe, read to its end on a thread (so a full pipe never blocks the child).
struct Tail {
    kept: Arc<Mutex<Vec<u8>>>,
    done: mpsc::Receiver<()>,
}

impl Tail {
    /// What was read, once the pipe ended or at `deadline`, whichever comes first. The reading
    /// thread is left behind in the second case; it ends when the last writer closes the pipe.
    fn collect(self, deadline: Instant) -> String {
        let _ = self.done.recv_timeout(deadline.saturating_duration_since(Instant::now()));
        let kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        String::from_utf8_lossy(&kept).into_owned()
    }
}

fn tail_reader<R: Read + Send + 'static>(mut r: R) -> Tail {
    let kept = Arc::new(Mutex::new(Vec::new()));
    let (tx, done) = mpsc::channel();
    let shared = kept.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = r.read(&mut buf) {
            if n == 0 {
                break;
            }
            let mut kept = shared.lock().unwrap_or_else(|p| p.into_inner());
            kept.extend_from_slice(&buf[..n]);
            if kept.len() > 2 * KEEP_BYTES {
                let cut = kept.len() - KEEP_BYTES;
                kept.drain(..cut);
            }
        }
        let _ = tx.send(());
    });
    Tail { kept, done }
}

fn last_lines(text: &str, n: usize) -> Option<String> {
    let lines: Vec<&str> = text.lines().map(str::trim_end).filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return None;
    }
    Some(lines[lines.len().saturating_sub(n)..].join("\n"))
}

fn failure(what: &str, status: ExitStatus, stderr: &str) -> String {
    let code = match status.code() {
        Some(c) => format!("exit status {c}"),
        None => "killed by a signal".to_string(),
    };
    match last_lines(stderr, SUMMARY_LINES) {
        Some(tail) => format!("{what}{code}: {tail}"),
        None => format!("{what}{code}"),
    }
}

/// "snapshot 1a2b3c4d saved" from `backup create --json`, else its last line.
fn snapshot_summary(stdout: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(stdout) {
        Ok(v) => match v["snapshot"].as_str() {
            Some(id) => format!("snapshot {} saved", &id[..id.len().min(8)]),
            None => "backup done".to_string(),
        },
        Err(_) => last_lines(stdout, 1).unwrap_or_else(|| "backup done".into()),
    }
}

/// The repository arguments among a backup job's arguments, for `backup forget`.
pub fn repo_args(args: &[String]) -> Vec<String> {
    picked(args, &["--repo", "--passphrase-file", "--cache-dir"])
}

/// The options `flags` (each with its value) among `args`.
fn picked(args: &[String], flags: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if flags.contains(&a.as_str()) {
            out.push(a.clone());
            if let Some(v) = args.get(i + 1) {
                out.push(v.clone());
            }
            i += 2;
            continue;
        }
        if flags.iter().any(|f| a.starts_with(&format!("{f}="))) {
            out.push(a.clone());
        }
        i += 1;
    }
    out
}

/// The value of `flag` among `args` (`--flag VALUE` or `--flag=VALUE`; the last one wins).
pub(super) fn flag_value<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    let mut found = None;
    let mut i = 0;
    while i < args.len() {
        if args[i] == flag {
            found = args.get(i + 1).map(String::as_str);
            i += 2;
            continue;
        }
        if let Some(v) = args[i].strip_prefix(flag).and_then(|r| r.strip_prefix('=')) {
            found = Some(v);
        }
        i += 1;
    }
    found
}

/// The folder (or store URL) a backup job's `--dest` archives go to: everything before the last
/// `/`, as `backup create` splits it. `None` without `--dest`; `Err(dest)` when that part has a
/// `{…}` template, whose archives are spread over folders no single `forget --dest` sees.
pub fn archive_folder(args: &[String]) -> Option<Result<String, String>> {
    let dest = flag_value(args, "--dest")?;
    let (folder, _) = dest.rsplit_once('/')?;
    if folder.is_empty() || folder.ends_with(':') || folder.ends_with("//") {
        return None;
    }
    if folder.contains('{') {
        return Some(Err(dest.to_string()));
    }
    Some(Ok(folder.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn archive_folder_is_the_dest_up_to_its_last_slash() {
        assert_eq!(archive_folder(&strings(&["--dest", "s3://b/x/{date}.zip"])), Some(Ok("s3://b/x".into())));
        assert_eq!(archive_folder(&strings(&["--dest=/srv/out/n-{snapshot}.zip"])), Some(Ok("/srv/out".into())));
        assert_eq!(
            archive_folder(&strings(&["--dest", "/srv/{tenant}/a.zip"])),
            Some(Err("/srv/{tenant}/a.zip".into()))
        );
        assert_eq!(archive_folder(&strings(&["--out", "/srv/a.zip"])), None);
    }

    #[test]
    fn repo_args_are_picked_out() {
        let a: Vec<String> =
            ["--dest", "s3://b/{date}.zip", "--repo", "/r", "--encrypt", "--passphrase-file=/p", "--tag", "n"]
                .iter()
                .map(|s| s.to_string())
                .collect();
        assert_eq!(repo_args(&a), vec!["--repo", "/r", "--passphrase-file=/p"]);
    }

    #[test]
    fn failure_keeps_the_last_lines_of_stderr() {
        use std::os::unix::process::ExitStatusExt;
        let s = failure("", ExitStatus::from_raw(3 << 8), "a\nb\n\nc\nd\ne\nf\n");
        assert_eq!(s, "exit status 3: b\nc\nd\ne\nf");
    }
}
