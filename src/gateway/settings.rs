//! The gateway's settings, typed and loaded once: `config/appsettings.json`, then the environment's
//! `config/appsettings.<Environment>.json` merged into it key by key (format-spec/gateway.md §4.1).
//! Every consumer (backup, restore, forget and prune, cron, the dashboard) reads [`Settings`], so
//! none can merge differently or skip a broken file: a file that is not valid JSON, or whose
//! `Sophon:Backups:Default` section has a value of the wrong type, is an error naming the file and
//! the line.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::retention::{Policy, Within};

mod jsonc;

pub use jsonc::merge;
use jsonc::{lookup, parse_stripped, strip_jsonc, without_position};

/// The folder of a home that holds the config files.
pub const CONFIG_DIR: &str = "config";
/// The base file; the environment's file overrides it.
pub const BASE_FILE: &str = "appsettings.json";
/// The environment when no variable names one (ASP.NET Core's default).
pub const DEFAULT_ENVIRONMENT: &str = "Production";
/// The variables that name the environment, the first set (non-empty) one winning, as in an
/// ASP.NET Core web host, where `ASPNETCORE_` overrides `DOTNET_`.
pub const ENVIRONMENT_VARIABLES: [&str; 2] = ["ASPNETCORE_ENVIRONMENT", "DOTNET_ENVIRONMENT"];
/// The section this project reads, as a key path.
pub const BACKUP_SECTION: [&str; 3] = ["Sophon", "Backups", "Default"];
/// Where a gateway backup goes when the config names no repository, relative to the home.
pub const DEFAULT_REPOSITORY: &str = "backups/repository";

pub type SettingsResult<T> = std::result::Result<T, SettingsError>;

/// A config file that cannot be used. Each variant names the file and, where JSON parsing found
/// the problem, its line and column, so the one line an operator sees says what to fix where.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("gateway config {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("gateway config {path}, line {line}, column {column}: not valid JSON: {message}")]
    Syntax { path: PathBuf, line: usize, column: usize, message: String },

    #[error("gateway config {path}, line {line}, column {column}: Sophon:Backups:Default: {message}")]
    BadValue { path: PathBuf, line: usize, column: usize, message: String },

    #[error("gateway config {path}: the top level must be a JSON object of sections")]
    NotAnObject { path: PathBuf },

    #[error("gateway config {path}: {key}: {message}")]
    Invalid { path: PathBuf, key: String, message: String },

    /// A value given to be written into the config (not read from a file) that the key does not take.
    #[error("{key}: {message}")]
    Value { key: String, message: String },

    #[error("gateway config {path}: writing: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("gateway config {path}: cannot set {key}: {message}")]
    Edit { path: PathBuf, key: String, message: String },
}

/// The gateway's settings: the merged JSON of the files that apply, and the typed sections this
/// project reads.
#[derive(Clone, Debug)]
pub struct Settings {
    home: PathBuf,
    environment: String,
    /// Each file that exists, in merge order, with its own parsed JSON (to say which file set a key).
    layers: Vec<(PathBuf, Value)>,
    merged: Value,
    backups: BackupSettings,
}

/// `Sophon:Backups:Default`. Every field is optional: an absent key takes the documented default
/// through the accessors of [`Settings`]. Unknown keys are ignored, as the gateway's own binder does.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BackupSettings {
    /// The repository of gateway backups: a URL, or a path (relative to the home).
    pub repository: Option<String>,
    /// Where scheduled backups go (see [`Settings::scheduled_backups`]).
    pub destination: Option<String>,
    /// The format of the archives scheduled backups export.
    pub format: Option<String>,
    /// Whether scheduled backups seal the archives they export.
    #[serde(default, deserialize_with = "flexible_bool")]
    pub encrypt: Option<bool>,
    /// Whether a backup carries `license.key` when `--include-license` is not given.
    #[serde(default, deserialize_with = "flexible_bool")]
    pub include_license: Option<bool>,
    /// The default job's five-field cron expression (checked by `cron`, which owns the syntax).
    pub schedule: Option<String>,
    /// The gateway's backup passphrase (first line of the file; a path relative to the home when
    /// not absolute): the seal of 2FA secrets and archives, and the repository's key when none
    /// of its own is given ([`crate::gateway::keys`]).
    pub passphrase_file: Option<PathBuf>,
    /// The retention policy of gateway backups.
    pub lifecycle: Option<Lifecycle>,
}

/// Where scheduled backups go: `Sophon:Backups:Default:Destination` (format-spec/gateway.md §4.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScheduledDestination {
    /// `archive` (and the default): the repository is the backups' archive storage, its
    /// `Lifecycle` their retention; nothing is exported.
    Archive,
    /// `local`: also an archive of `Format` in the home's `backups/archives/` folder.
    Local,
    /// A URL (`s3://`, `azblob://`, `sftp://`) or an absolute folder: also an archive of `Format` there.
    Url(String),
}

/// The defaults of scheduled backups, checked: `Destination`, `Format`, `Encrypt`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduledBackups {
    pub destination: ScheduledDestination,
    /// The exported archive's extension: `zip` or `tar.gz`.
    pub format: String,
    /// Seal exported archives with the backup passphrase.
    pub encrypt: bool,
}

/// The folder of a home where `Destination: local` puts archives.
pub const LOCAL_ARCHIVES: &str = "backups/archives";
/// The URL schemes `Destination` accepts.
pub const DESTINATION_SCHEMES: [&str; 3] = ["s3://", "azblob://", "sftp://"];
/// The archive formats `Format` accepts.
pub const ARCHIVE_FORMATS: [&str; 2] = ["zip", "tar.gz"];

/// `Sophon:Backups:Default:Lifecycle`: the `--keep-*` counts of format-spec/retention.md.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Lifecycle {
    #[serde(default, deserialize_with = "count")]
    pub keep_last: Option<u32>,
    #[serde(default, deserialize_with = "count")]
    pub keep_hourly: Option<u32>,
    #[serde(default, deserialize_with = "count")]
    pub keep_daily: Option<u32>,
    #[serde(default, deserialize_with = "count")]
    pub keep_weekly: Option<u32>,
    #[serde(default, deserialize_with = "count")]
    pub keep_monthly: Option<u32>,
    #[serde(default, deserialize_with = "count")]
    pub keep_yearly: Option<u32>,
    #[serde(default, deserialize_with = "within")]
    pub keep_within: Option<Within>,
}

/// The key path of the lifecycle.
pub const LIFECYCLE_KEY: [&str; 4] = ["Sophon", "Backups", "Default", "Lifecycle"];
/// The lifecycle's keys, as written in the config.
pub const LIFECYCLE_KEYS: [&str; 7] =
    ["KeepLast", "KeepHourly", "KeepDaily", "KeepWeekly", "KeepMonthly", "KeepYearly", "KeepWithin"];

impl Lifecycle {
    /// A lifecycle given as JSON to be written into the config (the dashboard's form): an object of
    /// [`LIFECYCLE_KEYS`] with the values the config accepts (counts as numbers or decimal text,
    /// `KeepWithin` a duration; `null` or an empty text is absent). An unknown key or a bad value is
    /// [`SettingsError::Value`] naming the key (`Sophon:Backups:Default:Lifecycle:KeepDaily`).
    pub fn from_json(v: &Value) -> SettingsResult<Lifecycle> {
        let key = |k: &str| {
            if k.is_empty() {
                LIFECYCLE_KEY.join(":")
            } else {
                format!("{}:{k}", LIFECYCLE_KEY.join(":"))
            }
        };
        let bad = |k: &str, message: String| SettingsError::Value { key: key(k), message };
        let Some(map) = v.as_object() else {
            return Err(bad("", format!("{v} is not an object of {}", LIFECYCLE_KEYS.join(", "))));
        };
        let mut l = Lifecycle::default();
        for (k, value) in map {
            let blank = value.is_null() || value.as_str().is_some_and(|t| t.trim().is_empty());
            if k == "KeepWithin" {
                l.keep_within = match value {
                    _ if blank => None,
                    Value::String(t) => Some(t.trim().parse::<Within>().map_err(|e| bad(k, e.to_string()))?),
                    other => return Err(bad(k, format!("{other} is not a duration (write it like 1y2m3d4h)"))),
                };
                continue;
            }
            let slot = match k.as_str() {
                "KeepLast" => &mut l.keep_last,
                "KeepHourly" => &mut l.keep_hourly,
                "KeepDaily" => &mut l.keep_daily,
                "KeepWeekly" => &mut l.keep_weekly,
                "KeepMonthly" => &mut l.keep_monthly,
                "KeepYearly" => &mut l.keep_yearly,
                _ => return Err(bad(k, format!("not a lifecycle key (known: {})", LIFECYCLE_KEYS.join(", ")))),
            };
            *slot = if blank { None } else { count_value(value).map_err(|m| bad(k, m))? };
        }
        Ok(l)
    }

    /// Refuse a lifecycle that keeps nothing before it is saved: the config would then mean the
    /// product default ([`Policy::product_default`]), not what was asked.
    pub fn check_keeps_something(&self) -> SettingsResult<()> {
        if self.policy().is_empty() {
            return Err(SettingsError::Value {
                key: LIFECYCLE_KEY.join(":"),
                message: format!(
                    "keeps nothing: every count is 0, which the config reads as the product default ({}); give at \
                     least one count",
                    Policy::product_default().describe()
                ),
            });
        }
        Ok(())
    }

    /// The value of one of [`LIFECYCLE_KEYS`] as JSON (`null` when absent).
    pub fn value_of(&self, key: &str) -> Value {
        let n = |v: Option<u32>| v.map_or(Value::Null, Value::from);
        match key {
            "KeepLast" => n(self.keep_last),
            "KeepHourly" => n(self.keep_hourly),
            "KeepDaily" => n(self.keep_daily),
            "KeepWeekly" => n(self.keep_weekly),
            "KeepMonthly" => n(self.keep_monthly),
            "KeepYearly" => n(self.keep_yearly),
            "KeepWithin" => self.keep_within.map_or(Value::Null, |w| Value::from(w.to_string())),
            _ => Value::Null,
        }
    }

    /// The retention policy: absent counts are zero.
    pub fn policy(&self) -> Policy {
        Policy {
            last: self.keep_last.unwrap_or(0),
            hourly: self.keep_hourly.unwrap_or(0),
            daily: self.keep_daily.unwrap_or(0),
            weekly: self.keep_weekly.unwrap_or(0),
            monthly: self.keep_monthly.unwrap_or(0),
            yearly: self.keep_yearly.unwrap_or(0),
            within: self.keep_within,
            tags: Vec::new(),
        }
    }
}

/// The part of a file this project reads, parsed from the file's text so a wrong type is reported
/// with its line (the merged value no longer knows where a key came from). Parsed for its errors only.
#[derive(Deserialize)]
#[allow(dead_code)]
struct FileView {
    #[serde(rename = "Sophon", default)]
    sophon: Option<SophonView>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct SophonView {
    #[serde(rename = "Backups", default)]
    backups: Option<BackupsView>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct BackupsView {
    #[serde(rename = "Default", default)]
    default: Option<BackupSettings>,
}

impl Settings {
    /// The settings of `home` for the environment the process runs in ([`environment`]).
    pub fn load(home: &Path) -> SettingsResult<Settings> {
        Settings::load_for(home, &environment())
    }

    /// The settings of `home` for `environment`: the base file, then `appsettings.<environment>.json`.
    /// A missing file contributes nothing; a home without config has every default.
    pub fn load_for(home: &Path, environment: &str) -> SettingsResult<Settings> {
        let dir = home.join(CONFIG_DIR);
        let mut layers = Vec::new();
        let mut merged = Value::Object(serde_json::Map::new());
        for name in [BASE_FILE.to_string(), format!("appsettings.{environment}.json")] {
            let path = dir.join(name);
            let text = match std::fs::read_to_string(&path) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(source) => return Err(SettingsError::Read { path, source }),
            };
            let value = parse_config(&path, &text)?;
            merge(&mut merged, value.clone());
            layers.push((path, value));
        }
        let backups = match lookup(&merged, &BACKUP_SECTION) {
            None | Some(Value::Null) => BackupSettings::default(),
            Some(v) => BackupSettings::deserialize(v).map_err(|e| SettingsError::Invalid {
                // Unreachable while every file passed its own check; name the last file anyway.
                path: layers.last().map(|(p, _)| p.clone()).unwrap_or_else(|| dir.join(BASE_FILE)),
                key: BACKUP_SECTION.join(":"),
                message: e.to_string(),
            })?,
        };
        Ok(Settings { home: home.to_path_buf(), environment: environment.to_string(), layers, merged, backups })
    }

    pub fn home(&self) -> &Path {
        &self.home
    }

    /// The environment whose override file was merged (whether or not it exists).
    pub fn environment(&self) -> &str {
        &self.environment
    }

    /// The files that were read, in merge order.
    pub fn files(&self) -> impl Iterator<Item = &Path> {
        self.layers.iter().map(|(p, _)| p.as_path())
    }

    /// The merged JSON of every file, for sections without a typed view.
    pub fn raw(&self) -> &Value {
        &self.merged
    }

    /// A merged value by key path (`["Sophon", "Backups", "Default", "Schedule"]`).
    pub fn get(&self, path: &[&str]) -> Option<&Value> {
        lookup(&self.merged, path)
    }

    /// The file that gave a key its merged value: the last one that sets it.
    pub fn source_of(&self, path: &[&str]) -> Option<&Path> {
        self.layers.iter().rev().find(|(_, v)| lookup(v, path).is_some()).map(|(p, _)| p.as_path())
    }

    /// `Sophon:Backups:Default`.
    pub fn backups(&self) -> &BackupSettings {
        &self.backups
    }

    /// The repository of gateway backups: the configured `Repository` (a path relative to the home
    /// when not absolute and not a URL), else `HOME/backups/repository`.
    pub fn repository_url(&self) -> String {
        match self.backups.repository.as_deref().map(str::trim) {
            Some(u) if u.contains("://") => u.to_string(),
            Some(p) if !p.is_empty() => self.home.join(p).to_string_lossy().into_owned(),
            _ => self.default_repository().to_string_lossy().into_owned(),
        }
    }

    /// Whether [`Settings::repository_url`] is the home's own repository, which a first backup creates.
    pub fn is_default_repository(&self) -> bool {
        self.backups.repository.as_deref().is_none_or(|r| r.trim().is_empty())
    }

    fn default_repository(&self) -> PathBuf {
        self.home.join(DEFAULT_REPOSITORY)
    }

    /// The configured retention policy, if `Lifecycle` keeps anything.
    pub fn lifecycle(&self) -> Option<Policy> {
        self.backups.lifecycle.as_ref().map(Lifecycle::policy).filter(|p| !p.is_empty())
    }

    /// The policy `backup forget` applies without `--keep-*` flags: the configured `Lifecycle` when it
    /// keeps anything (`true`), else the product default (`false`).
    pub fn retention_policy(&self) -> (Policy, bool) {
        match self.lifecycle() {
            Some(p) => (p, true),
            None => (Policy::product_default(), false),
        }
    }

    /// The file that gave each lifecycle key its merged value (keys no file sets are left out).
    pub fn lifecycle_sources(&self) -> Vec<(&'static str, &Path)> {
        LIFECYCLE_KEYS
            .iter()
            .filter_map(|k| {
                let path: Vec<&str> = LIFECYCLE_KEY.iter().copied().chain([*k]).collect();
                self.source_of(&path).map(|p| (*k, p))
            })
            .collect()
    }

    /// The file a new lifecycle is written to ([`crate::gateway::config_edit::save_lifecycle`]): the
    /// last file that sets `Lifecycle` (the environment's file when it does, since it overrides the
    /// base file), else the base file.
    pub fn lifecycle_file(&self) -> PathBuf {
        self.source_of(&LIFECYCLE_KEY)
            .map(Path::to_path_buf)
            .unwrap_or_else(|| self.home.join(CONFIG_DIR).join(BASE_FILE))
    }

    /// The JSON each file read holds, in merge order.
    pub(crate) fn layers(&self) -> &[(PathBuf, Value)] {
        &self.layers
    }

    /// The configured `PassphraseFile`, relative to the home when not absolute; `None` when unset or empty.
    pub fn passphrase_file(&self) -> Option<PathBuf> {
        let p = self.backups.passphrase_file.as_deref().filter(|p| !p.as_os_str().is_empty())?;
        Some(if p.is_absolute() { p.to_path_buf() } else { self.home.join(p) })
    }

    /// Whether a backup carries the license key by default.
    pub fn include_license(&self) -> bool {
        self.backups.include_license.unwrap_or(false)
    }

    /// `Destination`, `Format` and `Encrypt` for scheduled backups, checked: a value sophon cannot
    /// honour is an error naming the key and the file that set it, never silently ignored.
    pub fn scheduled_backups(&self) -> SettingsResult<ScheduledBackups> {
        let invalid = |name: &str, message: String| {
            let key: Vec<&str> = BACKUP_SECTION.iter().copied().chain([name]).collect();
            SettingsError::Invalid {
                path: self
                    .source_of(&key)
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| self.home.join(CONFIG_DIR).join(BASE_FILE)),
                key: key.join(":"),
                message,
            }
        };
        let destination = match self.backups.destination.as_deref().map(str::trim) {
            None | Some("") => ScheduledDestination::Archive,
            Some(d) if d.eq_ignore_ascii_case("archive") => ScheduledDestination::Archive,
            Some(d) if d.eq_ignore_ascii_case("local") => ScheduledDestination::Local,
            Some(d) if DESTINATION_SCHEMES.iter().any(|s| d.starts_with(s)) || Path::new(d).is_absolute() => {
                ScheduledDestination::Url(d.trim_end_matches('/').to_string())
            }
            Some(d) => {
                return Err(invalid(
                    "Destination",
                    format!(
                        "{d:?} is not a destination sophon can use: write \"archive\" (the repository only), \
                         \"local\" (also an archive in {LOCAL_ARCHIVES}/), an {} URL, or an absolute folder",
                        DESTINATION_SCHEMES.join(", ")
                    ),
                ))
            }
        };
        let format = match self.backups.format.as_deref().map(str::trim) {
            None | Some("") => ARCHIVE_FORMATS[0].to_string(),
            Some(f) => match ARCHIVE_FORMATS.iter().find(|k| k.eq_ignore_ascii_case(f)) {
                Some(k) => k.to_string(),
                None => {
                    return Err(invalid(
                        "Format",
                        format!("{f:?} is not an archive format: write one of {}", ARCHIVE_FORMATS.join(", ")),
                    ))
                }
            },
        };
        Ok(ScheduledBackups { destination, format, encrypt: self.backups.encrypt.unwrap_or(false) })
    }

    /// The default job's schedule as written, unchecked.
    pub fn schedule(&self) -> Option<&str> {
        self.backups.schedule.as_deref()
    }
}

/// The environment named by [`ENVIRONMENT_VARIABLES`], else [`DEFAULT_ENVIRONMENT`].
pub fn environment() -> String {
    ENVIRONMENT_VARIABLES
        .iter()
        .filter_map(|k| std::env::var(k).ok())
        .map(|v| v.trim().to_string())
        .find(|v| !v.is_empty())
        .unwrap_or_else(|| DEFAULT_ENVIRONMENT.to_string())
}

/// Parse one config file as the gateway does: JSON with `//` and `/* */` comments and trailing
/// commas allowed, and a leading byte order mark ignored. The top level must be an object, and the
/// section this project reads must have the types it expects.
pub fn parse_config(path: &Path, text: &str) -> SettingsResult<Value> {
    let text = strip_jsonc(text.strip_prefix('\u{feff}').unwrap_or(text));
    let value = parse_stripped(path, &text)?;
    if !value.is_object() {
        return Err(SettingsError::NotAnObject { path: path.to_path_buf() });
    }
    serde_json::from_str::<FileView>(&text).map_err(|e| SettingsError::BadValue {
        path: path.to_path_buf(),
        line: e.line(),
        column: e.column(),
        message: without_position(&e),
    })?;
    Ok(value)
}

/// Any JSON file of the gateway's config folder, with the syntax [`parse_config`] accepts but no
/// check of its contents: for a backup, which must parse a file to redact it.
pub fn parse_json(path: &Path, text: &str) -> SettingsResult<Value> {
    parse_stripped(path, &strip_jsonc(text.strip_prefix('\u{feff}').unwrap_or(text)))
}

/// A count: a whole number, or its decimal text (the gateway's binder reads both).
fn count<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    use serde::de::Error;
    match Option::<Value>::deserialize(d)? {
        None => Ok(None),
        Some(v) => count_value(&v).map_err(D::Error::custom),
    }
}

/// [`count`] of a JSON value; the message says why it is not one.
fn count_value(v: &Value) -> Result<Option<u32>, String> {
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => match n.as_u64().and_then(|n| u32::try_from(n).ok()) {
            Some(n) => Ok(Some(n)),
            None => Err(format!("{n} is not a count (a whole number from 0 to {})", u32::MAX)),
        },
        Value::String(s) => s
            .trim()
            .parse::<u32>()
            .map(Some)
            .map_err(|_| format!("{s:?} is not a count (a whole number from 0 to {})", u32::MAX)),
        other => Err(format!("{other} is not a count (a whole number)")),
    }
}

/// A boolean: `true`/`false`, or that text in any case (the gateway's binder reads both).
fn flexible_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    use serde::de::Error;
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(b)),
        Some(Value::String(s)) if s.trim().eq_ignore_ascii_case("true") => Ok(Some(true)),
        Some(Value::String(s)) if s.trim().eq_ignore_ascii_case("false") => Ok(Some(false)),
        Some(other) => Err(D::Error::custom(format!("{other} is not true or false"))),
    }
}

/// `KeepWithin`: a restic duration such as `1y2m3d4h`.
fn within<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Within>, D::Error> {
    use serde::de::Error;
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(s) => s.parse::<Within>().map(Some).map_err(|e| D::Error::custom(format!("KeepWithin: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn home_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join(CONFIG_DIR)).unwrap();
        for (name, text) in files {
            std::fs::write(t.path().join(CONFIG_DIR).join(name), text).unwrap();
        }
        t
    }

    const BASE: &str = r#"{ "Logging": { "LogLevel": { "Default": "Information" } },
      "Sophon": { "Backups": { "Default": { "IncludeLicense": false, "Schedule": "0 3 * * *",
        "Lifecycle": { "KeepDaily": 7, "KeepWeekly": 4, "KeepMonthly": 12 } } } } }"#;

    #[test]
    fn scheduled_backup_defaults_are_checked_naming_the_key_and_file() {
        let with = |d: &str| {
            let over = format!(r#"{{ "Sophon": {{ "Backups": {{ "Default": {d} }} }} }}"#);
            let t = home_with(&[(BASE_FILE, BASE), ("appsettings.Production.json", &over)]);
            let r = Settings::load_for(t.path(), "Production").unwrap().scheduled_backups();
            r.map_err(|e| e.to_string())
        };
        let ok = |d, f: &str, e| ScheduledBackups { destination: d, format: f.to_string(), encrypt: e };
        assert_eq!(with("{}"), Ok(ok(ScheduledDestination::Archive, "zip", false)));
        assert_eq!(
            with(r#"{ "Destination": "Local", "Format": "TAR.GZ", "Encrypt": "true" }"#),
            Ok(ok(ScheduledDestination::Local, "tar.gz", true))
        );
        assert_eq!(
            with(r#"{ "Destination": "s3://b/nightly/" }"#),
            Ok(ok(ScheduledDestination::Url("s3://b/nightly".into()), "zip", false))
        );
        let e = with(r#"{ "Destination": "dropbox" }"#).unwrap_err();
        assert!(e.contains("appsettings.Production.json: Sophon:Backups:Default:Destination: \"dropbox\""), "{e}");
        let e = with(r#"{ "Format": "7z" }"#).unwrap_err();
        assert!(e.contains("Sophon:Backups:Default:Format: \"7z\""), "{e}");
    }

    #[test]
    fn an_override_of_one_lifecycle_key_keeps_the_others() {
        let t = home_with(&[
            (BASE_FILE, BASE),
            (
                "appsettings.Production.json",
                r#"{ "Sophon": { "Backups": { "Default": { "Lifecycle": { "KeepYearly": 7 } } } } }"#,
            ),
        ]);
        let s = Settings::load_for(t.path(), "Production").unwrap();
        let p = s.lifecycle().unwrap();
        assert_eq!((p.daily, p.weekly, p.monthly, p.yearly, p.last), (7, 4, 12, 7, 0));
        assert_eq!(s.schedule(), Some("0 3 * * *"));
        assert_eq!(s.raw()["Logging"]["LogLevel"]["Default"], "Information");
        assert_eq!(
            s.source_of(&["Sophon", "Backups", "Default", "Lifecycle", "KeepYearly"]).unwrap().file_name().unwrap(),
            "appsettings.Production.json"
        );
        assert_eq!(s.source_of(&["Sophon", "Backups", "Default", "Schedule"]).unwrap().file_name().unwrap(), BASE_FILE);
        // Another environment does not see Production's file.
        let dev = Settings::load_for(t.path(), "Development").unwrap();
        assert_eq!(dev.lifecycle().unwrap().yearly, 0);
        assert_eq!(dev.files().count(), 1);
    }

    #[test]
    fn a_malformed_file_names_itself_and_the_line() {
        let t = home_with(&[
            (BASE_FILE, BASE),
            ("appsettings.Production.json", "{\n  \"Sophon\": {\n    \"Backups\": }\n}\n"),
        ]);
        let e = Settings::load_for(t.path(), "Production").unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, SettingsError::Syntax { line: 3, .. }), "{msg}");
        assert!(msg.contains("appsettings.Production.json, line 3,"), "{msg}");
        assert!(!msg.contains(" at line "), "the position is said once: {msg}");

        let t = home_with(&[(BASE_FILE, "[1, 2]")]);
        assert!(matches!(Settings::load_for(t.path(), "Production"), Err(SettingsError::NotAnObject { .. })));
    }

    #[test]
    fn a_wrong_type_in_the_backup_section_names_the_file_and_the_line() {
        let over = "{ \"Sophon\": { \"Backups\": { \"Default\": {\n  \"Lifecycle\": { \"KeepDaily\": -1 } } } } }";
        let t = home_with(&[(BASE_FILE, BASE), ("appsettings.Staging.json", over)]);
        let e = Settings::load_for(t.path(), "Staging").unwrap_err();
        assert!(matches!(e, SettingsError::BadValue { line: 2, .. }), "{e}");
        assert!(e.to_string().contains("appsettings.Staging.json"), "{e}");

        let t = home_with(&[(
            BASE_FILE,
            r#"{ "Sophon": { "Backups": { "Default": { "Lifecycle": { "KeepWithin": "3x" } } } } }"#,
        )]);
        let e = Settings::load_for(t.path(), "Production").unwrap_err();
        assert!(e.to_string().contains("KeepWithin"), "{e}");

        // Sections sophon does not read may hold anything.
        let t = home_with(&[(
            BASE_FILE,
            r#"{ "Kestrel": 5, "Sophon": { "Other": [1], "Backups": { "Default": { "Unknown": {} } } } }"#,
        )]);
        assert_eq!(Settings::load_for(t.path(), "Production").unwrap().backups(), &BackupSettings::default());
    }

    #[test]
    fn comments_trailing_commas_and_text_values_are_read_as_the_gateway_reads_them() {
        let text = "\u{feff}{\n  // the nightly policy\n  \"Sophon\": { \"Backups\": { \"Default\": {\n    /* a \"quoted\" // comment */ \"IncludeLicense\": \"True\",\n    \"Repository\": \"http://x/a,b//c\\\"/*\",\n    \"Lifecycle\": { \"KeepLast\": \"3\", \"KeepWithin\": \"1y\", },\n  } } },\n}\n";
        let t = home_with(&[(BASE_FILE, text)]);
        let s = Settings::load_for(t.path(), "Production").unwrap();
        assert!(s.include_license());
        assert_eq!(s.repository_url(), "http://x/a,b//c\"/*");
        let p = s.lifecycle().unwrap();
        assert_eq!(p.last, 3);
        assert_eq!(p.within.map(|w| w.years), Some(1));
    }

    #[test]
    fn the_repository_is_the_configured_one_else_the_homes() {
        let t = home_with(&[]);
        let s = Settings::load_for(t.path(), "Production").unwrap();
        assert!(s.is_default_repository());
        assert_eq!(s.repository_url(), t.path().join("backups/repository").to_string_lossy());
        assert!(s.lifecycle().is_none());
        assert!(!s.include_license());

        let t =
            home_with(&[(BASE_FILE, r#"{ "Sophon": { "Backups": { "Default": { "Repository": "/srv/repo" } } } }"#)]);
        let s = Settings::load_for(t.path(), "Production").unwrap();
        assert!(!s.is_default_repository());
        assert_eq!(s.repository_url(), "/srv/repo");

        let t = home_with(&[(
            BASE_FILE,
            r#"{ "Sophon": { "Backups": { "Default": { "Repository": "../elsewhere" } } } }"#,
        )]);
        let s = Settings::load_for(t.path(), "Production").unwrap();
        assert_eq!(s.repository_url(), t.path().join("../elsewhere").to_string_lossy());
    }
}
