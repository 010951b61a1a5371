//! Running a job's action as child processes, with its outcome summarised for `cron_runs.summary`.
//!
//! A backup job runs `SOPHON backup create --home HOME <args> --time <scheduled> --json`, then, with
//! retention, `SOPHON backup forget --home HOME [--repo …] [--passphrase-file …] [--cache-dir …]
//! --prune` (the repository arguments are the job's own). A custom job runs `sh -c COMMAND`. Both
//! get `SOPHON_HOME`, `SOPHON_CRON_JOB` and `SOPHON_CRON_TIME` in their environment.

use std::ffi::OsString;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::store::{ts, Action, Job};

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
    /// Run `job` for its occurrence `scheduled`. When `stop` becomes true the child is killed and
    /// the run fails as abandoned (backups are crash-safe: a killed one leaves at worst unreferenced
    /// packs that prune collects).
    pub fn run(&self, job: &Job, scheduled: DateTime<Utc>, stop: &AtomicBool) -> Outcome {
        let action = match job.action() {
            Ok(a) => a,
            Err(e) => return Outcome::failed(e.to_string()),
        };
        match action {
            Action::Backup { args, retention } => self.backup(job, &args, retention, scheduled, stop),
            Action::Custom { command } => {
                let mut c = Command::new("sh");
                c.arg("-c").arg(&command);
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
        scheduled: DateTime<Utc>,
        stop: &AtomicBool,
    ) -> Outcome {
        let mut c = Command::new(&self.sophon);
        c.args(["backup", "create", "--home"]).arg(&self.home).args(args).args(["--time", &ts(scheduled)]);
        if !args.iter().any(|a| a == "--json") {
            c.arg("--json");
        }
        let created = match self.exec(c, job, scheduled, stop) {
            Ok(Exit::Done { status, stdout, .. }) if status.success() => snapshot_summary(&stdout),
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
        c.args(["backup", "forget", "--home"]).arg(&self.home).args(repo_args(args)).arg("--prune");
        match self.exec(c, job, scheduled, stop) {
            Ok(Exit::Done { status, stdout, .. }) if status.success() => {
                let kept = last_lines(&stdout, 1).unwrap_or_else(|| "done".into());
                Outcome::ok(format!("{created}; retention: {kept}"))
            }
            Ok(Exit::Done { status, stderr, .. }) => {
                Outcome::failed(format!("{created}; {}", failure("backup forget: ", status, &stderr)))
            }
            Ok(Exit::Abandoned) => Outcome::failed(format!("{created}; {ABANDONED}")),
            Err(e) => Outcome::failed(format!("{created}; cannot run {}: {e}", self.sophon.display())),
        }
    }

    fn exec(&self, mut c: Command, job: &Job, scheduled: DateTime<Utc>, stop: &AtomicBool) -> std::io::Result<Exit> {
        c.env("SOPHON_HOME", &self.home)
            .env("SOPHON_CRON_JOB", &job.name)
            .env("SOPHON_CRON_TIME", ts(scheduled))
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // Its own process group, so that stopping a run reaches the command's children too (a
        // `sh -c` job's `sleep` would otherwise outlive it and hold its output pipes open).
        std::os::unix::process::CommandExt::process_group(&mut c, 0);
        let mut child = c.spawn()?;
        let out = child.stdout.take().map(tail_reader);
        let err = child.stderr.take().map(tail_reader);
        let status = wait(&mut child, stop)?;
        let collect = |h: Option<std::thread::JoinHandle<String>>| h.and_then(|h| h.join().ok()).unwrap_or_default();
        let (stdout, stderr) = (collect(out), collect(err));
        Ok(match status {
            Some(status) => Exit::Done { status, stdout, stderr },
            None => Exit::Abandoned,
        })
    }
}

const ABANDONED: &str = "abandoned: the scheduler was stopped while the run was in progress";

/// Wait for the child, polling `stop`; `None` when it was killed because of `stop`.
fn wait(child: &mut Child, stop: &AtomicBool) -> std::io::Result<Option<ExitStatus>> {
    loop {
        if let Some(s) = child.try_wait()? {
            return Ok(Some(s));
        }
        if stop.load(Ordering::SeqCst) {
            // SIGTERM to the group first, so a backup can end cleanly; SIGKILL after a grace period.
            signal_group(child.id(), "-TERM");
            let grace = std::time::Instant::now() + STOP_GRACE;
            while child.try_wait()?.is_none() && std::time::Instant::now() < grace {
                std::thread::sleep(Duration::from_millis(50));
            }
            signal_group(child.id(), "-KILL");
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// How long a stopped run's processes get between SIGTERM and SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Signal a process group through kill(1): the library forbids `unsafe`, which libc::kill needs.
fn signal_group(pgid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args([signal, "--", &format!("-{pgid}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Read a pipe to its end on a thread (so a full pipe never blocks the child), keeping the tail.
fn tail_reader<R: Read + Send + 'static>(mut r: R) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut kept: Vec<u8> = Vec::new();
        let mut buf = [0u8; 8192];
        while let Ok(n) = r.read(&mut buf) {
            if n == 0 {
                break;
            }
            kept.extend_from_slice(&buf[..n]);
            if kept.len() > 2 * KEEP_BYTES {
                kept.drain(..kept.len() - KEEP_BYTES);
            }
        }
        String::from_utf8_lossy(&kept).into_owned()
    })
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
    const WITH_VALUE: [&str; 3] = ["--repo", "--passphrase-file", "--cache-dir"];
    let mut out = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if WITH_VALUE.contains(&a.as_str()) {
            out.push(a.clone());
            if let Some(v) = args.get(i + 1) {
                out.push(v.clone());
            }
            i += 2;
            continue;
        }
        if WITH_VALUE.iter().any(|f| a.starts_with(&format!("{f}="))) {
            out.push(a.clone());
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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
