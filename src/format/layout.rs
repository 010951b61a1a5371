//! The layouts a backup's files can have, each versioned on its own: a gateway backup's (the
//! product page's structure, `format-spec/gateway.md` §9) and a folder backup's (each backed-up
//! root under its own name). An export records which one it carries, so a reader checks a folder
//! export against the folder layout's version, not the gateway's. Here, below every source and
//! operation, so that the export writer and reader need not import the gateway.

use std::fmt;
use std::str::FromStr;

/// The gateway layout's version, written as `layout_version` in a gateway backup's
/// `metadata.json` (and so in its exports).
pub const GATEWAY_LAYOUT_VERSION: u32 = 1;
/// The folder layout's version, written as `layout_version` in a folder export's `metadata.json`.
pub const FILES_LAYOUT_VERSION: u32 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    Gateway,
    Files,
}

impl Layout {
    /// The newest version of this layout this build reads and writes.
    pub fn version(self) -> u32 {
        match self {
            Layout::Gateway => GATEWAY_LAYOUT_VERSION,
            Layout::Files => FILES_LAYOUT_VERSION,
        }
    }

    /// The cap of this layout's `manifest.json` and `SHA256SUMS` (see [`bounds`]).
    pub fn manifest_cap(self) -> u64 {
        match self {
            Layout::Gateway => bounds::MANIFEST,
            Layout::Files => bounds::FILES_MANIFEST,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Layout::Gateway => "gateway",
            Layout::Files => "files",
        }
    }
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Layout {
    type Err = crate::Error;

    fn from_str(s: &str) -> crate::Result<Layout> {
        match s {
            "gateway" => Ok(Layout::Gateway),
            "files" => Ok(Layout::Files),
            other => Err(crate::Error::invalid(format!("unknown layout {other:?} (known: gateway, files)"))),
        }
    }
}

const MIB: u64 = 1 << 20;

/// Reader bounds of a gateway backup (`format-spec/export.md` §5.1): the most a reader takes of
/// each part, by its path below `backup/`. A part over its cap is refused, naming it and the cap.
/// Documents' raw files have no cap: they are streamed, never held. Parts of records are read one
/// row (or line) at a time, so their cap bounds the disk they are spooled to, and [`bounds::ROW`]
/// the memory one row takes; a part read whole has a cap that bounds memory itself.
pub mod bounds {
    use super::MIB;

    const GIB: u64 = 1024 * MIB;

    /// `metadata.json`, read whole (the export reader's limit too).
    pub const METADATA: u64 = crate::format::export_meta::MAX_METADATA_BYTES;
    /// `manifest.json` and `SHA256SUMS` of a gateway backup, read whole by `verify` (as a typed
    /// list), one entry at a time by a restore.
    pub const MANIFEST: u64 = 64 * MIB;
    /// `manifest.json` and `SHA256SUMS` of a folder export, which may list millions of files
    /// (about 150 bytes each).
    pub const FILES_MANIFEST: u64 = GIB;
    /// One row of a part of records, or one line of a JSON-lines part (a row with its nested
    /// history: a discussion with its messages, a task with its events).
    pub const ROW: u64 = 16 * MIB;
    /// `documents/index.json`, read one row at a time.
    pub const DOCUMENT_INDEX: u64 = 16 * GIB;
    /// `memory/entries.jsonl` and `audit/entries.jsonl`, read one line at a time.
    pub const JSON_LINES: u64 = 16 * GIB;
    /// A part of records read one row at a time (`users/users.json`, `agents/agents.json`,
    /// `cron/jobs.json`, `skills/installed.json`, `discussions/discussions.json`,
    /// `tasks/tasks.json`, and the one-table files).
    pub const RECORDS: u64 = 4 * GIB;
    /// `workflows/<id>.json`: one workflow with its versions, read whole.
    pub const WORKFLOW: u64 = 16 * MIB;
    /// One day of `memory/daily-logs/`, read one line at a time and rebuilt per tenant in memory.
    pub const DAILY_LOG: u64 = 64 * MIB;
    /// A settings file (`config/*.backup.json`, `mcp/*.json`), an agent's file
    /// (`agents/<id>/*`), `users/2fa-secrets.json.enc`, `license/license.key`: read whole.
    pub const SMALL_FILE: u64 = 4 * MIB;
}

/// The cap of the gateway backup part at `path` (below `backup/`); `u64::MAX` for a document's
/// raw file, which is streamed.
pub fn gateway_part_cap(path: &str) -> u64 {
    match path {
        "metadata.json" => bounds::METADATA,
        "manifest.json" | "SHA256SUMS" => bounds::MANIFEST,
        "documents/index.json" => bounds::DOCUMENT_INDEX,
        "memory/entries.jsonl" | "audit/entries.jsonl" => bounds::JSON_LINES,
        "users/2fa-secrets.json.enc" | "license/license.key" => bounds::SMALL_FILE,
        p if p.starts_with("documents/files/") => u64::MAX,
        p if p.starts_with("memory/daily-logs/") => bounds::DAILY_LOG,
        p if p.starts_with("workflows/") => bounds::WORKFLOW,
        p if p.starts_with("config/") || p.starts_with("mcp/") => bounds::SMALL_FILE,
        p if p.starts_with("agents/") && p != "agents/agents.json" => bounds::SMALL_FILE,
        _ => bounds::RECORDS,
    }
}
