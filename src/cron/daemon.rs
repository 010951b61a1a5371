//! When jobs are due, running them once (`cron run-due`) and the loop that keeps running them
//! (`cron daemon`), over a [`Clock`] that tests replace with a simulated one.
//!
//! Due: a job is due at the first occurrence of its schedule after its last run's start (or its
//! creation, if it never ran). However many occurrences passed since, one run catches up on all of
//! them (so a daemon that was down for three nights runs the job once when it starts); the run
//! stands for the latest of them ([`super::store::Claim::scheduled`]). A failed run counts as a run:
//! the job is tried again at its next occurrence, never in a tight loop.
//!
//! The daemon re-reads the jobs at least every [`DaemonOptions::rescan`] (so jobs added while it
//! runs are picked up), sleeps until the next due time, and runs each job on its own thread so a
//! long job delays no other, except that backup jobs of one repository run one after another (the
//! next starts when the previous ends): they would meet on the repository's prune lock. `run-due`
//! runs the due jobs one after another anyway. When asked to stop it kills the children of runs in
//! progress and records those runs as failed ("abandoned").

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde::Serialize;

use super::backup_job;
use super::run::{Outcome, Runner};
use super::store::{self, ts, ClaimOutcome, Claimant, Job};
use super::{CronError, CronResult};
use crate::gateway::open_home;

/// The source of time and of waiting.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
    /// Return at `until`, or earlier when `wake` is signalled (a run finished, stop requested).
    fn sleep_until(&self, until: DateTime<Utc>, wake: &Wake);
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep_until(&self, until: DateTime<Utc>, wake: &Wake) {
        let left = until - Utc::now();
        if let Ok(d) = left.to_std() {
            wake.wait_timeout(d);
        }
    }
}

/// A clock that stands still while runs are in flight and jumps to the wake-up time when none is:
/// a month of nights passes in the time the runs themselves take.
#[derive(Debug)]
pub struct SimulatedClock {
    now: Mutex<DateTime<Utc>>,
}

impl SimulatedClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        SimulatedClock { now: Mutex::new(start) }
    }
}

impl Clock for SimulatedClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn sleep_until(&self, until: DateTime<Utc>, wake: &Wake) {
        wake.wait_idle();
        if !wake.stopping() {
            let mut now = self.now.lock().unwrap_or_else(|p| p.into_inner());
            *now = (*now).max(until);
        }
    }
}

/// A clock fixed at one instant (`cron run-due --now`).
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub DateTime<Utc>);

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
    fn sleep_until(&self, _until: DateTime<Utc>, _wake: &Wake) {}
}

#[derive(Debug, Default)]
struct WakeState {
    in_flight: usize,
    signalled: bool,
}

/// What a sleeping daemon waits on: runs finishing, and the stop flag.
#[derive(Debug)]
pub struct Wake {
    state: Mutex<WakeState>,
    cv: Condvar,
    stop: Arc<AtomicBool>,
}

impl Wake {
    pub fn new(stop: Arc<AtomicBool>) -> Self {
        Wake { state: Mutex::new(WakeState::default()), cv: Condvar::new(), stop }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, WakeState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    fn begin(&self) {
        self.lock().in_flight += 1;
    }

    fn end(&self) {
        let mut s = self.lock();
        s.in_flight -= 1;
        s.signalled = true;
        self.cv.notify_all();
    }

    /// Wake a sleeper (the stop flag was set).
    pub fn signal(&self) {
        self.lock().signalled = true;
        self.cv.notify_all();
    }

    /// Wait until no run is in flight (or stop is requested).
    pub fn wait_idle(&self) {
        let mut s = self.lock();
        while s.in_flight > 0 && !self.stopping() {
            // The stop flag is set from a signal handler, which cannot notify: poll it.
            s = self
                .cv
                .wait_timeout(s, std::time::Duration::from_millis(100))
                .map_or_else(|p| p.into_inner().0, |r| r.0);
        }
    }

    /// Wait up to `d`, returning early when signalled or stopping.
    pub fn wait_timeout(&self, d: std::time::Duration) {
        let end = std::time::Instant::now() + d;
        let mut s = self.lock();
        while !s.signalled && !self.stopping() {
            let now = std::time::Instant::now();
            if now >= end {
                break;
            }
            let step = (end - now).min(std::time::Duration::from_millis(250));
            s = self.cv.wait_timeout(s, step).map_or_else(|p| p.into_inner().0, |r| r.0);
        }
        s.signalled = false;
    }
}

/// What happened, one per line of `cron daemon` / `cron run-due` output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A run was claimed and started.
    Started,
    /// A run ended (`status` ok or failed).
    Finished,
    /// Due, but another run of the job is still in progress (in another process).
    Busy,
    /// The job cannot be run (a bad schedule or command); `summary` says why.
    Invalid,
    /// The database could not be read; the daemon tries again later.
    Error,
    /// Something odd that did not stop the job (a time in the future in its rows); `summary` says what.
    Warning,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    pub event: EventKind,
    pub job: String,
    pub tenant: String,
    /// When it happened (a run's start for `started`, its end for `finished`).
    pub at: DateTime<Utc>,
    /// The occurrence a run stands for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduled: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
}

impl Event {
    fn new(event: EventKind, job: &Job, at: DateTime<Utc>) -> Self {
        Event {
            event,
            job: job.name.clone(),
            tenant: job.tenant_id.clone(),
            at,
            scheduled: None,
            started_at: None,
            status: None,
            summary: None,
        }
    }

    /// One line for a terminal.
    pub fn line(&self) -> String {
        let job = format!("{}/{}", self.tenant, self.job);
        match self.event {
            EventKind::Started => {
                format!("{} start  {job} (scheduled {})", ts(self.at), self.scheduled.map(ts).unwrap_or_default())
            }
            EventKind::Finished => format!(
                "{} {:<6} {job}: {}",
                ts(self.at),
                self.status.as_deref().unwrap_or("?"),
                self.summary.as_deref().unwrap_or("").replace('\n', " | ")
            ),
            EventKind::Busy => format!("{} busy   {job}: {}", ts(self.at), self.summary.as_deref().unwrap_or("")),
            EventKind::Invalid => format!("{} invalid {job}: {}", ts(self.at), self.summary.as_deref().unwrap_or("")),
            EventKind::Error => format!("{} error  {}", ts(self.at), self.summary.as_deref().unwrap_or("")),
            EventKind::Warning => format!("{} warning {job}: {}", ts(self.at), self.summary.as_deref().unwrap_or("")),
        }
    }
}

/// Settings of [`run_due`] and [`Daemon`].
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    /// The daemon re-reads the jobs at least this often.
    pub rescan: Duration,
    /// A `running` claim from another host (or where liveness cannot be told) older than this is
    /// stale (format-spec/gateway.md §3.4).
    pub stale_after: Duration,
    /// Stop (after the runs in flight end) once the clock reaches this time; for tests and one-off
    /// catch-ups. `None`: run until stopped.
    pub until: Option<DateTime<Utc>>,
}

impl Default for DaemonOptions {
    fn default() -> Self {
        DaemonOptions { rescan: Duration::seconds(60), stale_after: Duration::hours(24), until: None }
    }
}

/// Counts of what [`run_due`] or a [`Daemon`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub ok: usize,
    pub failed: usize,
    pub busy: usize,
    pub invalid: usize,
}

/// Claim and run one job if it is due; `None` when it was not due (or `stop` is set).
#[allow(clippy::too_many_arguments)]
fn run_one<Tz: TimeZone>(
    home: &std::path::Path,
    runner: &Runner,
    tz: &Tz,
    clock: &dyn Clock,
    opts: &DaemonOptions,
    stop: &AtomicBool,
    job: &Job,
    on_event: &(dyn Fn(&Event) + Sync),
) -> CronResult<Option<Outcome>> {
    // A stop requested while this worker was being started must not begin a run it would abandon.
    if stop.load(Ordering::SeqCst) {
        return Ok(None);
    }
    let conn = open_home(home)?;
    let me = Claimant::this_process();
    let claim = match store::claim(&conn, job, tz, clock.now(), &me, opts.stale_after)? {
        ClaimOutcome::Claimed(c) => c,
        ClaimOutcome::NotDue { .. } => return Ok(None),
        ClaimOutcome::Busy(r) => {
            let mut e = Event::new(EventKind::Busy, job, clock.now());
            e.started_at = Some(r.started_at);
            e.summary = Some(format!(
                "the run started at {} (pid {} on {}) is still in progress",
                ts(r.started_at),
                r.pid.map_or("?".into(), |p| p.to_string()),
                r.host.as_deref().map_or("?", |h| store::split_host(h).0)
            ));
            on_event(&e);
            return Ok(Some(Outcome { status: "busy", summary: String::new() }));
        }
    };
    // The database is not held open across the run: a backup reads it meanwhile.
    drop(conn);
    run_claimed(home, runner, clock, stop, job, &claim, "", on_event).map(Some)
}

/// Run a claimed run of `job` and record its end; `note` is appended to the recorded summary.
#[allow(clippy::too_many_arguments)]
fn run_claimed(
    home: &std::path::Path,
    runner: &Runner,
    clock: &dyn Clock,
    stop: &AtomicBool,
    job: &Job,
    claim: &store::Claim,
    note: &str,
    on_event: &(dyn Fn(&Event) + Sync),
) -> CronResult<Outcome> {
    let mut e = Event::new(EventKind::Started, job, claim.started_at);
    e.scheduled = Some(claim.scheduled);
    on_event(&e);
    let mut outcome = runner.run(job, claim.started_at, claim.scheduled, stop);
    outcome.summary.push_str(note);
    let finished = clock.now().max(claim.started_at);
    let recorded = open_home(home).map_err(CronError::from).and_then(|conn| {
        let ours = store::finish(&conn, claim, outcome.status, &outcome.summary, finished)?;
        Ok(if ours { None } else { Some(store::runs(&conn, &job.id)?) })
    });
    let lost = match recorded {
        Ok(lost) => lost,
        Err(e) => {
            // Not recorded: the row stays `running` with our pid, which this process now treats as
            // dead (released), so the next claim closes it as abandoned.
            store::release(claim);
            return Err(e);
        }
    };
    if let Some(rows) = lost {
        // The claim was taken over (closed as stale) or the job removed while the run went on: the
        // database's word stands, and the run does not count as ok.
        let row = rows.iter().find(|r| r.started_at == claim.started_at);
        let said = row.map_or("the job or its run was removed".to_string(), |r| {
            format!("the database has it as {}: {}", r.status, r.summary)
        });
        outcome = Outcome {
            status: "failed",
            summary: format!("{} ({}), but its claim was lost: {said}", outcome.status, outcome.summary),
        };
    }
    let mut e = Event::new(EventKind::Finished, job, finished);
    e.scheduled = Some(claim.scheduled);
    e.started_at = Some(claim.started_at);
    e.status = Some(outcome.status.to_string());
    e.summary = Some(outcome.summary.clone());
    on_event(&e);
    Ok(outcome)
}

/// What [`run_now`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunNow {
    /// The run took place and was recorded.
    Ran(Outcome),
    /// Another run of the job is in progress (this one did not start).
    Busy(store::Run),
}

/// Run `job` once now, whether or not it is due (a run asked for by hand: the dashboard's "run
/// now"): claimed with [`store::claim_now`], so it never overlaps another run of the job, run as a
/// scheduled run is (a backup waits for its repository's turn; `stop` abandons it), and recorded
/// in `cron_runs` with `note` (who asked) appended to its summary. The job's next occurrence is then
/// the first after this run.
#[allow(clippy::too_many_arguments)]
pub fn run_now(
    home: &std::path::Path,
    runner: &Runner,
    clock: &dyn Clock,
    opts: &DaemonOptions,
    stop: &AtomicBool,
    job: &Job,
    note: &str,
    on_event: &(dyn Fn(&Event) + Sync),
) -> CronResult<RunNow> {
    let conn = open_home(home)?;
    let me = Claimant::this_process();
    let claim = match store::claim_now(&conn, job, clock.now(), &me, opts.stale_after, &format!("running ({note})"))? {
        ClaimOutcome::Claimed(c) => c,
        ClaimOutcome::Busy(r) => return Ok(RunNow::Busy(r)),
        ClaimOutcome::NotDue { .. } => {
            return Err(CronError::BadJob { name: job.name.clone(), reason: "the run could not be claimed".into() })
        }
    };
    drop(conn);
    let suffix = if note.is_empty() { String::new() } else { format!(" ({note})") };
    run_claimed(home, runner, clock, stop, job, &claim, &suffix, on_event).map(RunNow::Ran)
}

/// Warnings about the job's times (see [`store::settle_future`]) as events.
fn future_warnings(conn: &rusqlite::Connection, job: &Job, now: DateTime<Utc>) -> CronResult<Vec<Event>> {
    Ok(store::settle_future(conn, job, now)?
        .into_iter()
        .map(|w| {
            let mut e = Event::new(EventKind::Warning, job, now);
            e.summary = Some(w);
            e
        })
        .collect())
}

fn invalid_event(job: &Job, at: DateTime<Utc>, why: String) -> Event {
    let mut e = Event::new(EventKind::Invalid, job, at);
    e.summary = Some(why);
    e
}

fn count(t: &mut Tally, o: &Outcome) {
    match o.status {
        "ok" => t.ok += 1,
        "busy" => t.busy += 1,
        "skipped" => {}
        _ => t.failed += 1,
    }
}

/// Run every job due at `clock.now()` once, one after another, then return.
pub fn run_due<Tz: TimeZone>(
    home: &std::path::Path,
    runner: &Runner,
    tz: &Tz,
    clock: &dyn Clock,
    opts: &DaemonOptions,
    stop: &AtomicBool,
    on_event: &(dyn Fn(&Event) + Sync),
) -> CronResult<Tally> {
    let jobs = store::list_jobs(&open_home(home)?)?;
    let mut tally = Tally::default();
    for job in jobs.iter().filter(|j| j.runs_here()) {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        if let Err(e) = job.schedule().and_then(|_| job.action()) {
            tally.invalid += 1;
            on_event(&invalid_event(job, clock.now(), e.to_string()));
            continue;
        }
        for w in future_warnings(&open_home(home)?, job, clock.now())? {
            on_event(&w);
        }
        if let Some(o) = run_one(home, runner, tz, clock, opts, stop, job, on_event)? {
            count(&mut tally, &o);
        }
    }
    Ok(tally)
}

/// The scheduler loop of one gateway home.
pub struct Daemon<'a, Tz: TimeZone> {
    pub home: PathBuf,
    pub runner: Runner,
    pub tz: Tz,
    pub clock: &'a dyn Clock,
    pub opts: DaemonOptions,
    /// Set to stop; the daemon notices within a fraction of a second.
    pub stop: Arc<AtomicBool>,
}

impl<Tz: TimeZone + Sync> Daemon<'_, Tz> {
    /// Run until stopped (or `opts.until`), reporting every run through `on_event`.
    pub fn run(&self, on_event: &(dyn Fn(&Event) + Sync)) -> CronResult<Tally> {
        let wake = Wake::new(self.stop.clone());
        let in_flight: Mutex<HashSet<String>> = Mutex::new(HashSet::new());
        // The repositories that backup runs in flight write: a second job of the same repository
        // waits for the first (their `forget --prune` steps would otherwise meet on its prune lock).
        let repos_in_flight: Mutex<HashSet<String>> = Mutex::new(HashSet::new());
        // Jobs found busy (claimed by another process) wait for the next rescan, not the next wake-up.
        let backoff: Mutex<std::collections::HashMap<String, DateTime<Utc>>> = Mutex::default();
        let tally = Mutex::new(Tally::default());
        let mut warned: HashSet<(String, String)> = HashSet::new();
        std::thread::scope(|scope| -> CronResult<()> {
            loop {
                if self.stop.load(Ordering::SeqCst) {
                    break;
                }
                let now = self.clock.now();
                if self.opts.until.is_some_and(|u| now >= u) {
                    wake.wait_idle();
                    break;
                }
                let mut next_wake = now + self.opts.rescan;
                let mut deferred = false;
                match self.scan(now) {
                    Ok((jobs, warnings)) => {
                        for w in warnings {
                            let key = (w.job.clone(), w.summary.clone().unwrap_or_default());
                            if warned.insert(key) {
                                on_event(&w);
                            }
                        }
                        for (job, due) in jobs {
                            match due {
                                Err(why) => {
                                    if warned.insert((job.id.clone(), job.schedule.clone())) {
                                        on_event(&invalid_event(&job, now, why));
                                        tally.lock().unwrap_or_else(|p| p.into_inner()).invalid += 1;
                                    }
                                }
                                Ok(Some(d)) if d > now => next_wake = next_wake.min(d),
                                Ok(None) => {}
                                Ok(Some(_)) => {
                                    let retry = backoff.lock().unwrap_or_else(|p| p.into_inner()).get(&job.id).copied();
                                    if let Some(r) = retry.filter(|r| *r > now) {
                                        next_wake = next_wake.min(r);
                                        continue;
                                    }
                                    let mut running = in_flight.lock().unwrap_or_else(|p| p.into_inner());
                                    if running.contains(&job.id) {
                                        continue;
                                    }
                                    let repo =
                                        job.action().ok().and_then(|a| backup_job::repository_key(&self.home, &a));
                                    if let Some(r) = &repo {
                                        // Taken when the run in flight ends: its end wakes this loop.
                                        if !repos_in_flight.lock().unwrap_or_else(|p| p.into_inner()).insert(r.clone())
                                        {
                                            deferred = true;
                                            continue;
                                        }
                                    }
                                    running.insert(job.id.clone());
                                    drop(running);
                                    wake.begin();
                                    let (wake, in_flight, tally, backoff) = (&wake, &in_flight, &tally, &backoff);
                                    let repos_in_flight = &repos_in_flight;
                                    scope.spawn(move || {
                                        let r = run_one(
                                            &self.home,
                                            &self.runner,
                                            &self.tz,
                                            self.clock,
                                            &self.opts,
                                            &self.stop,
                                            &job,
                                            on_event,
                                        );
                                        // A job found busy, or whose run could not even be
                                        // claimed or recorded (a read-only database), waits for
                                        // the next rescan: retried at every wake-up it would spin.
                                        let back_off = || {
                                            let retry = self.clock.now() + self.opts.rescan;
                                            backoff
                                                .lock()
                                                .unwrap_or_else(|p| p.into_inner())
                                                .insert(job.id.clone(), retry);
                                        };
                                        match r {
                                            Ok(Some(o)) => {
                                                if o.status == "busy" {
                                                    back_off();
                                                }
                                                count(&mut tally.lock().unwrap_or_else(|p| p.into_inner()), &o)
                                            }
                                            Ok(None) => {}
                                            Err(e) => {
                                                back_off();
                                                let mut ev = Event::new(EventKind::Error, &job, self.clock.now());
                                                ev.summary = Some(format!("{}: {e}", job.name));
                                                on_event(&ev);
                                            }
                                        }
                                        if let Some(r) = &repo {
                                            repos_in_flight.lock().unwrap_or_else(|p| p.into_inner()).remove(r);
                                        }
                                        in_flight.lock().unwrap_or_else(|p| p.into_inner()).remove(&job.id);
                                        wake.end();
                                    });
                                }
                            }
                        }
                    }
                    Err(e) => {
                        on_event(&Event {
                            event: EventKind::Error,
                            job: String::new(),
                            tenant: String::new(),
                            at: now,
                            scheduled: None,
                            started_at: None,
                            status: None,
                            summary: Some(e.to_string()),
                        });
                    }
                }
                if let Some(u) = self.opts.until {
                    next_wake = next_wake.min(u);
                }
                if deferred {
                    // A due job waits for the run of its repository: look again when a run ends,
                    // at the same time (a simulated clock must not jump past the job's turn).
                    wake.wait_timeout((next_wake - now).to_std().unwrap_or_default());
                } else {
                    self.clock.sleep_until(next_wake, &wake);
                }
            }
            Ok(())
        })?;
        Ok(tally.into_inner().unwrap_or_else(|p| p.into_inner()))
    }

    /// Every job this scheduler runs, with when it is next due (or why it cannot run), and
    /// warnings about times in the future (a `created_at` in the future is settled here: see
    /// [`store::settle_future`]).
    #[allow(clippy::type_complexity)]
    fn scan(&self, now: DateTime<Utc>) -> CronResult<(Vec<(Job, Result<Option<DateTime<Utc>>, String>)>, Vec<Event>)> {
        let conn = open_home(&self.home)?;
        let mut out = Vec::new();
        let mut warnings = Vec::new();
        for mut job in store::list_jobs(&conn)?.into_iter().filter(|j| j.runs_here()) {
            let due = match job.schedule().and_then(|s| job.action().map(|_| s)) {
                Err(e) => Err(e.to_string()),
                Ok(s) => {
                    warnings.extend(future_warnings(&conn, &job, now)?);
                    job.created_at = job.created_at.min(now);
                    let last = store::last_start(&conn, &job.id, now)?.counted;
                    Ok(store::next_due(&job, &s, last, now, &self.tz))
                }
            };
            out.push((job, due));
        }
        Ok((out, warnings))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cron::store::{Action, NewJob};
    use crate::gateway::create_home;

    #[test]
    fn a_run_whose_claim_was_taken_over_is_not_reported_ok() {
        let dir = tempfile::tempdir().expect("tempdir");
        let home = dir.path().join("home");
        let conn = create_home(&home).expect("home");
        let created = DateTime::parse_from_rfc3339("2030-01-01T00:00:00Z").expect("time").with_timezone(&Utc);
        store::ensure_default_job(&conn, "0 3 * * *", created).expect("default job");
        let new = NewJob {
            tenant_id: "default".into(),
            name: "slow".into(),
            schedule: "0 3 * * *".into(),
            action: Action::Custom { command: "sleep 1; echo done".into() },
            enabled: true,
        };
        let job = store::add_job(&conn, &new, created).expect("add");
        let runner = Runner { sophon: "sophon".into(), home: home.clone(), env: Vec::new() };
        let clock = FixedClock(created + Duration::hours(3));
        let stop = AtomicBool::new(false);
        let events = Mutex::new(Vec::new());
        let on_event = |e: &Event| events.lock().expect("events").push(e.clone());
        let outcome = std::thread::scope(|s| {
            let worker =
                s.spawn(|| run_one(&home, &runner, &Utc, &clock, &DaemonOptions::default(), &stop, &job, &on_event));
            // While it runs, another scheduler closes the claim (as it would a stale one).
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while store::runs(&conn, &job.id).expect("runs").is_empty() {
                assert!(std::time::Instant::now() < deadline, "never claimed");
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            conn.execute("UPDATE cron_runs SET status = 'failed', summary = 'abandoned: taken over'", [])
                .expect("update");
            worker.join().expect("join")
        });
        let outcome = outcome.expect("run").expect("due");
        assert_eq!(outcome.status, "failed", "{outcome:?}");
        assert!(outcome.summary.contains("claim was lost") && outcome.summary.contains("taken over"), "{outcome:?}");
        let events = events.into_inner().expect("events");
        let finished = events.iter().find(|e| e.event == EventKind::Finished).expect("finished");
        assert_eq!(finished.status.as_deref(), Some("failed"));
        let r = store::runs(&conn, &job.id).expect("runs");
        assert_eq!((r[0].status.as_str(), r[0].summary.as_str()), ("failed", "abandoned: taken over"));
    }
}
