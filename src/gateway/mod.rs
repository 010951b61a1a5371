//! The Sophon gateway's data home: the folder a gateway keeps its records and files in, which a
//! gateway backup reads and a gateway restore writes. The layout is specified in
//! `format-spec/gateway.md`; this module owns it.
//!
//! - [`schema`]: the SQL schema of `gateway.db`, opening a home (refusing unknown schema versions) and
//!   creating an empty one.
//! - [`demo`]: a deterministic generator of realistic demo gateways (every category, several tenants,
//!   planted secrets) at three scales.
//! - [`stats`]: records and bytes per category and per tenant.
//! - [`settings`]: the typed config (`appsettings.json` merged with the environment's file).
//! - [`config_edit`]: writing one setting (the lifecycle) into a config file in place.
//! - [`keys`]: which passphrase is the repository's key and which one seals.
//!
//! Layer 4 (a source): it knows nothing of packs, backends or the repository.

pub mod backup;
pub mod category;
pub mod config_edit;
pub mod demo;
pub mod dump;
pub mod journal;
pub mod keys;
pub mod layout;
pub mod redact;
pub mod restore;
pub mod rowjson;
pub mod schema;
pub mod sealed;
pub mod settings;
pub mod spool;
pub mod stats;

use std::path::{Path, PathBuf};

pub use category::{Category, SecretField, SECRET_FIELDS};
pub use demo::{generate, DemoScale, DemoSummary};
pub use schema::{create_home, open_home, MIN_SCHEMA_VERSION, SCHEMA_VERSION};
pub use settings::{Settings, SettingsError};
pub use stats::{stats, Count, GatewayStats, TenantStats};

/// The database file inside a home.
pub const DB_FILE: &str = "gateway.db";
/// The license key file inside a home.
pub const LICENSE_FILE: &str = "license.key";

pub type GatewayResult<T> = std::result::Result<T, GatewayError>;

/// Everything that can go wrong with a gateway home. Each variant names the home or file, so the
/// message alone tells an operator what to fix. Converts into [`crate::Error`].
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("gateway home {0} does not exist (create one with `sophon gateway init --home {0}`)")]
    HomeNotFound(PathBuf),

    #[error("{0} is not a gateway home: it has no {DB_FILE}")]
    NotAHome(PathBuf),

    #[error("gateway home {0} is not empty: init needs an empty or absent folder")]
    NotEmpty(PathBuf),

    #[error(
        "gateway database {path}: schema version {found} is not supported (this build reads version {supported}); upgrade sophon"
    )]
    UnsupportedSchema { path: PathBuf, found: i64, supported: u32 },

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("gateway database {path}: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },

    #[error(transparent)]
    Settings(#[from] SettingsError),

    /// The database refused a record a restore (or its dry run, which rehearses it) inserts.
    #[error("{0}")]
    RestoreRefused(Box<RefusedRow>),

    #[error("{0}")]
    Invalid(String),

    /// Options that cannot go together for this input (the CLI reports it as a usage error).
    #[error("{0}")]
    Usage(String),

    /// A restore executed from a shown plan (`restore::restore_as_shown`) found the home changed
    /// since: what differs; nothing was written.
    #[error("the home changed since the restore was previewed ({0}); nothing was written: preview it again")]
    PlanChanged(String),
    /// The caller stopped the work (`archive::Progress::cancel`); becomes [`crate::Error::Cancelled`].
    #[error("cancelled: the work was stopped before it finished and what it had begun was removed")]
    Cancelled,
}

/// A record the database refused during a restore: which home, table and row, and why.
#[derive(Debug)]
pub struct RefusedRow {
    pub home: PathBuf,
    pub table: String,
    /// The row's primary-key values joined by `/`.
    pub row: String,
    pub dry_run: bool,
    pub error: rusqlite::Error,
}

impl std::fmt::Display for RefusedRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let would = if self.dry_run { "dry run: the restore would fail: " } else { "" };
        let RefusedRow { home, table, row, error, .. } = self;
        write!(f, "{would}restoring into {}: {table} row {row} was refused: {error}", home.display())
    }
}

impl GatewayError {
    pub(crate) fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        GatewayError::Io { path: path.as_ref().to_path_buf(), source }
    }

    pub(crate) fn sql(path: impl AsRef<Path>, source: rusqlite::Error) -> Self {
        GatewayError::Sqlite { path: path.as_ref().to_path_buf(), source }
    }
}

impl From<GatewayError> for crate::Error {
    fn from(e: GatewayError) -> Self {
        match e {
            GatewayError::Io { path, source } => crate::Error::Io { path, source },
            GatewayError::UnsupportedSchema { path, found, supported } => crate::Error::UnsupportedVersion {
                what: format!("gateway database {}", path.display()),
                found: u32::try_from(found).unwrap_or(u32::MAX),
                supported,
            },
            GatewayError::HomeNotFound(_) | GatewayError::NotAHome(_) => crate::Error::NotFound(e.to_string()),
            GatewayError::Cancelled => crate::Error::Cancelled,
            other => crate::Error::Invalid(other.to_string()),
        }
    }
}

/// The shared layers below the gateway (the spool, the virtual tree) report in the library's error;
/// inside the gateway an I/O error keeps its path.
impl From<crate::Error> for GatewayError {
    fn from(e: crate::Error) -> Self {
        match e {
            crate::Error::Io { path, source } => GatewayError::Io { path, source },
            crate::Error::Cancelled => GatewayError::Cancelled,
            other => GatewayError::Invalid(other.to_string()),
        }
    }
}
