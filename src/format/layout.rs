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
