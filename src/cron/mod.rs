//! The scheduler of a gateway home: jobs and their run history in `gateway.db` (`cron_jobs`,
//! `cron_runs`), five-field cron expressions, running a job's action, and the daemon loop.
//! `format-spec/gateway.md` §3.4 specifies the jobs' actions and how runs are claimed.
//!
//! - [`expr`]: parsing expressions and finding the next occurrence in a time zone.
//! - [`store`]: jobs and runs in the database; claiming a run so that two never overlap.
//! - [`edit`]: replacing a job under its name, or changing its fields, with its history kept.
//! - [`run`]: executing an action (a backup through the `sophon` binary, or a shell command).
//! - [`daemon`]: when jobs are due, and the loop that runs them, over an injectable [`daemon::Clock`].
//!
//! Layer 4 (an operation): it uses the gateway home and runs the `sophon` binary as a child
//! process, so a backup run is exactly what `sophon backup create` does from a shell.

pub mod backup_job;
pub mod daemon;
pub mod edit;
pub mod expr;
pub mod run;
pub mod store;
pub mod template;

use std::path::PathBuf;

pub use daemon::{
    run_due, run_now, Clock, Daemon, DaemonOptions, Event, EventKind, FixedClock, RunNow, SimulatedClock, SystemClock,
    Tally,
};
pub use expr::{ExprError, Schedule};
pub use run::{Outcome, Runner};
pub use store::{Action, Job, JobStatus, NewJob, Run};

use crate::gateway::{GatewayError, Settings, SettingsError};

/// The name of the job `sophon gateway init` creates.
pub const DEFAULT_JOB: &str = "nightly-backup";
/// Its schedule when the config has no `Sophon:Backups:Default:Schedule`.
pub const DEFAULT_SCHEDULE: &str = "0 3 * * *";
/// The tenant `sophon gateway init` creates in an empty home, so that its job has an owner.
pub const DEFAULT_TENANT: &str = "default";

/// The schedule of the default job: the home's `Sophon:Backups:Default:Schedule` (the merged
/// settings, [`Settings`]), else [`DEFAULT_SCHEDULE`]. A config that cannot be read, or a schedule
/// that is not a valid expression, is an error naming the file: the job must not silently run at
/// another time than the one configured.
pub fn default_schedule(home: &std::path::Path) -> CronResult<String> {
    let settings = Settings::load(home).map_err(GatewayError::from)?;
    let Some(s) = settings.schedule().map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(DEFAULT_SCHEDULE.to_string());
    };
    const KEY: [&str; 4] = ["Sophon", "Backups", "Default", "Schedule"];
    match Schedule::parse(s) {
        Ok(_) => Ok(s.to_string()),
        Err(e) => Err(GatewayError::from(SettingsError::Invalid {
            path: settings.source_of(&KEY).map(|p| p.to_path_buf()).unwrap_or_else(|| home.to_path_buf()),
            key: KEY.join(":"),
            message: e.to_string(),
        })
        .into()),
    }
}

pub type CronResult<T> = std::result::Result<T, CronError>;

/// Everything that can go wrong with jobs. Each variant names the job, tenant or expression.
#[derive(Debug, thiserror::Error)]
pub enum CronError {
    #[error(transparent)]
    Expr(#[from] ExprError),

    #[error(transparent)]
    Gateway(#[from] GatewayError),

    #[error("tenant {0:?} does not exist in this gateway")]
    UnknownTenant(String),

    #[error("the gateway has no tenant: create one, or pass --tenant")]
    NoTenant,

    #[error(
        "tenant {tenant:?} already has a job named {name:?}: add --replace to replace it (its run history \
         is kept), or change its schedule or command with `sophon cron edit --name {name} …`"
    )]
    Duplicate { tenant: String, name: String },

    #[error("tenant {tenant:?} has no job named {name:?}")]
    NotFound { tenant: String, name: String },

    #[error("job {name:?} of tenant {tenant:?} is running ({claim}); try again when it has finished")]
    Running { tenant: String, name: String, claim: String },

    #[error("job {name:?}: {reason}")]
    BadJob { name: String, reason: String },

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl CronError {
    /// Whether the error is a mistake in what was asked (an expression, a name, a tenant), as
    /// opposed to a failure of the work.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            CronError::Expr(_)
                | CronError::UnknownTenant(_)
                | CronError::NoTenant
                | CronError::Duplicate { .. }
                | CronError::NotFound { .. }
                | CronError::BadJob { .. }
        )
    }
}

impl From<CronError> for crate::Error {
    fn from(e: CronError) -> Self {
        match e {
            CronError::Gateway(g) => g.into(),
            CronError::Io { path, source } => crate::Error::Io { path, source },
            CronError::NotFound { .. } => crate::Error::NotFound(e.to_string()),
            other => crate::Error::Invalid(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn home_with(base: &str, production: Option<&str>) -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("config")).unwrap();
        std::fs::write(t.path().join("config/appsettings.json"), base).unwrap();
        if let Some(p) = production {
            std::fs::write(t.path().join("config/appsettings.Production.json"), p).unwrap();
        }
        t
    }

    #[test]
    fn the_default_schedule_is_the_merged_setting_and_a_bad_one_names_its_file() {
        let base = r#"{ "Sophon": { "Backups": { "Default": { "Schedule": "0 3 * * *", "IncludeLicense": true } } } }"#;
        let t = home_with(base, None);
        assert_eq!(default_schedule(t.path()).unwrap(), "0 3 * * *");
        // The override replaces the schedule only; an absent setting is the default.
        let t = home_with(base, Some(r#"{ "Sophon": { "Backups": { "Default": { "Schedule": "30 1 * * *" } } } }"#));
        assert_eq!(default_schedule(t.path()).unwrap(), "30 1 * * *");
        let t = home_with("{}", None);
        assert_eq!(default_schedule(t.path()).unwrap(), DEFAULT_SCHEDULE);

        let t = home_with(base, Some(r#"{ "Sophon": { "Backups": { "Default": { "Schedule": "0 25 * * *" } } } }"#));
        let e = default_schedule(t.path()).unwrap_err().to_string();
        assert!(e.contains("appsettings.Production.json: Sophon:Backups:Default:Schedule:"), "{e}");
        assert!(e.contains("hour"), "{e}");
    }
}
