//! The backup layout of `format-spec/gateway.md` §9, as both sides read it: the dump writes it, the
//! restore reads it back. What the two must agree on lives here once (the layout version, which
//! columns hold JSON, the order tables are written in, where a backup file goes in a home), so that
//! neither side has to import the other.

use super::category::Category;
use super::LICENSE_FILE;

/// The layout version written into `metadata.json` (defined with the other layouts in
/// [`crate::format::layout`], which export readers check without knowing the gateway).
pub const LAYOUT_VERSION: u32 = crate::source::GATEWAY_LAYOUT_VERSION;

/// Columns whose text is JSON and is emitted as JSON, not as a string.
pub const JSON_COLUMNS: &[&str] = &["roles", "tool_allowlist", "config", "definition", "events", "detail"];

/// Tables in insertion order (parents first); deletion runs in reverse.
pub const TABLE_ORDER: &[(&str, Category)] = &[
    ("users", Category::Users),
    ("agents", Category::Agents),
    ("workflows", Category::Workflows),
    ("workflow_versions", Category::Workflows),
    ("memory_entries", Category::Memory),
    ("documents", Category::Documents),
    ("cron_jobs", Category::Cron),
    ("cron_runs", Category::Cron),
    ("webhooks", Category::Webhooks),
    ("connections", Category::Connections),
    ("channels", Category::Channels),
    ("skills", Category::Skills),
    ("agent_skills", Category::Skills),
    ("nodes", Category::Nodes),
    ("discussions", Category::Discussions),
    ("discussion_messages", Category::Discussions),
    ("insights", Category::Insights),
    ("tasks", Category::Tasks),
    ("task_events", Category::Tasks),
    ("approvals", Category::Approvals),
    ("audit_log", Category::Audit),
];

/// The folder of the per-day memory logs in a backup: one file a day, every tenant's lines in it.
pub const DAILY_LOGS: &str = "memory/daily-logs/";

pub fn is_json_column(column: &str) -> bool {
    JSON_COLUMNS.contains(&column)
}

/// Where a file beside the database goes in a home, and its category: `None` for the files that
/// hold records (restored through the database) and for the daily logs (split per tenant, see
/// [`daily_log_home_path`]).
pub fn home_path(backup_path: &str) -> Option<(Category, String)> {
    if let Some(rest) = backup_path.strip_prefix("agents/").filter(|r| r.contains('/')) {
        Some((Category::Agents, format!("agents/{rest}")))
    } else if backup_path.starts_with("documents/files/") {
        Some((Category::Documents, backup_path.to_string()))
    } else if let Some(name) = backup_path.strip_prefix("mcp/") {
        Some((Category::Mcp, format!("config/{name}")))
    } else if let Some(name) = backup_path.strip_prefix("config/").and_then(|n| n.strip_suffix(".backup.json")) {
        Some((Category::Config, format!("config/{name}.json")))
    } else if backup_path == "license/license.key" {
        Some((Category::License, LICENSE_FILE.to_string()))
    } else {
        None
    }
}

/// Where a document's raw file is, in a backup and in a home: `documents/files/<id>.<ext>`.
pub fn document_path(id: &str, ext: &str) -> String {
    format!("documents/files/{id}.{ext}")
}

/// A tenant's log of one day in a home (`day` is the backup file's name).
pub fn daily_log_home_path(tenant: &str, day: &str) -> String {
    format!("memory/daily-logs/{tenant}/{day}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backup_files_map_to_their_place_in_the_home() {
        assert_eq!(home_path("agents/a1/SOUL.md"), Some((Category::Agents, "agents/a1/SOUL.md".into())));
        assert_eq!(home_path("agents/agents.json"), None, "agent rows are records, not a file");
        assert_eq!(home_path("mcp/mcp.json"), Some((Category::Mcp, "config/mcp.json".into())));
        assert_eq!(
            home_path("config/appsettings.Production.backup.json"),
            Some((Category::Config, "config/appsettings.Production.json".into()))
        );
        assert_eq!(home_path("license/license.key"), Some((Category::License, LICENSE_FILE.into())));
        assert_eq!(home_path("memory/daily-logs/2026-01-01.jsonl"), None);
        assert_eq!(home_path("users/users.json"), None);
    }

    #[test]
    fn every_table_is_in_the_order_once() {
        let mut names: Vec<&str> = TABLE_ORDER.iter().map(|t| t.0).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), TABLE_ORDER.len());
    }
}
