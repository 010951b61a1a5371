//! The backup categories of a gateway (the product page's "What's in a backup"), which tables and
//! files hold each, and which fields are secrets.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One backup category. The order is the product page's and is the order of every listing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    Users,
    Agents,
    Workflows,
    Memory,
    Documents,
    Cron,
    Webhooks,
    Connections,
    Channels,
    Skills,
    Mcp,
    Nodes,
    /// The gateway's conversations (threads and their messages): what the product page calls chats.
    #[serde(alias = "chats")]
    Discussions,
    Insights,
    Tasks,
    Approvals,
    Audit,
    License,
    Config,
}

impl Category {
    pub const ALL: [Category; 19] = [
        Category::Users,
        Category::Agents,
        Category::Workflows,
        Category::Memory,
        Category::Documents,
        Category::Cron,
        Category::Webhooks,
        Category::Connections,
        Category::Channels,
        Category::Skills,
        Category::Mcp,
        Category::Nodes,
        Category::Discussions,
        Category::Insights,
        Category::Tasks,
        Category::Approvals,
        Category::Audit,
        Category::License,
        Category::Config,
    ];

    /// The category id used on the command line (`--categories`, `--only`) and in JSON.
    pub fn id(self) -> &'static str {
        match self {
            Category::Users => "users",
            Category::Agents => "agents",
            Category::Workflows => "workflows",
            Category::Memory => "memory",
            Category::Documents => "documents",
            Category::Cron => "cron",
            Category::Webhooks => "webhooks",
            Category::Connections => "connections",
            Category::Channels => "channels",
            Category::Skills => "skills",
            Category::Mcp => "mcp",
            Category::Nodes => "nodes",
            Category::Discussions => "discussions",
            Category::Insights => "insights",
            Category::Tasks => "tasks",
            Category::Approvals => "approvals",
            Category::Audit => "audit",
            Category::License => "license",
            Category::Config => "config",
        }
    }

    /// The tables of `gateway.db` that hold this category, the primary table first (its rows are
    /// the category's "records"; the others hold history or links). Empty for file-only categories.
    pub fn tables(self) -> &'static [&'static str] {
        match self {
            Category::Users => &["users"],
            Category::Agents => &["agents"],
            Category::Workflows => &["workflows", "workflow_versions"],
            Category::Memory => &["memory_entries"],
            Category::Documents => &["documents"],
            Category::Cron => &["cron_jobs", "cron_runs"],
            Category::Webhooks => &["webhooks"],
            Category::Connections => &["connections"],
            Category::Channels => &["channels"],
            Category::Skills => &["skills", "agent_skills"],
            Category::Mcp => &[],
            Category::Nodes => &["nodes"],
            Category::Discussions => &["discussions", "discussion_messages"],
            Category::Insights => &["insights"],
            Category::Tasks => &["tasks", "task_events"],
            Category::Approvals => &["approvals"],
            Category::Audit => &["audit_log"],
            Category::License => &[],
            Category::Config => &[],
        }
    }

    /// True for the categories that belong to the gateway as a whole rather than to one tenant
    /// (they are files: MCP config, license key, gateway config).
    pub fn is_gateway_wide(self) -> bool {
        matches!(self, Category::Mcp | Category::License | Category::Config)
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// Other names a category is known by on the command line: the product page's "chats" are the
/// gateway's conversations, kept in `discussions` and `discussion_messages`.
pub const ALIASES: &[(&str, Category)] = &[("chats", Category::Discussions)];

impl FromStr for Category {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let alias = ALIASES.iter().find(|(name, _)| *name == s).map(|(_, c)| *c);
        alias.or_else(|| Category::ALL.into_iter().find(|c| c.id() == s)).ok_or_else(|| {
            let ids: Vec<&str> = Category::ALL.iter().map(|c| c.id()).collect();
            format!("unknown category {s:?} (known: {}; chats is discussions)", ids.join(", "))
        })
    }
}

/// Where a secret lives: a column (optionally a JSON path inside it) or a file (optionally a JSON
/// path inside it). `*` in a JSON path matches every key or array element at that level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SecretField {
    pub category: Category,
    /// `table.column` or a path relative to the home (`<agent-id>` etc. stand for any name).
    pub location: &'static str,
    /// A JSON path inside the column or file (`$.a.*.b`), or "" for the whole value.
    pub json_path: &'static str,
    /// What the value looks like in a demo gateway.
    pub shape: &'static str,
}

/// Every field of a gateway home that holds a secret, as listed in `format-spec/gateway.md`
/// ("Secrets"). Values elsewhere may still hold secret-shaped data (a token pasted into a cron
/// command, a password in an MCP server's arguments); those are found by scanning, not by this list.
pub const SECRET_FIELDS: &[SecretField] = &[
    SecretField {
        category: Category::Users,
        location: "users.password_hash",
        json_path: "",
        shape: "$argon2id$… / $2b$…",
    },
    SecretField { category: Category::Users, location: "users.totp_secret", json_path: "", shape: "base32 (2FA)" },
    SecretField {
        category: Category::Agents,
        location: "agents.config",
        json_path: "$.model.api_key",
        shape: "sk-proj-…, sk-ant-…",
    },
    SecretField {
        category: Category::Agents,
        location: "agents/<agent-id>/config.json",
        json_path: "$.model.api_key",
        shape: "sk-proj-…, sk-ant-…",
    },
    SecretField {
        category: Category::Webhooks, location: "webhooks.signing_secret", json_path: "", shape: "whsec_…"
    },
    SecretField {
        category: Category::Connections,
        location: "connections.auth_token",
        json_path: "",
        shape: "gho_…, ya29.…, xoxp-…, ntn_…, ATATT…",
    },
    SecretField {
        category: Category::Connections,
        location: "connections.refresh_token",
        json_path: "",
        shape: "ghr_…, 1//…, xoxe-…",
    },
    SecretField {
        category: Category::Channels,
        location: "channels.config",
        json_path: "$.bot_token",
        shape: "xoxb-…, <digits>:AA…, MT…",
    },
    SecretField {
        category: Category::Channels,
        location: "channels.config",
        json_path: "$.signing_secret",
        shape: "hex",
    },
    SecretField {
        category: Category::Channels,
        location: "channels.config",
        json_path: "$.app_password",
        shape: "random",
    },
    SecretField {
        category: Category::Channels,
        location: "channels.config",
        json_path: "$.smtp_password",
        shape: "random",
    },
    SecretField {
        category: Category::Mcp,
        location: "config/mcp.json",
        json_path: "$.mcpServers.*.env.*",
        shape: "ghp_…, xoxb-…, AKIA…",
    },
    SecretField {
        category: Category::Mcp,
        location: "config/mcp.json",
        json_path: "$.mcpServers.*.headers.Authorization",
        shape: "Bearer lin_api_…",
    },
    SecretField {
        category: Category::Mcp,
        location: "config/mcp-server.json",
        json_path: "$.auth.tokens.*.token",
        shape: "sk-sophon-…",
    },
    SecretField { category: Category::Nodes, location: "nodes.pairing_secret", json_path: "", shape: "snp_…" },
    SecretField {
        category: Category::License,
        location: "license.key",
        json_path: "",
        shape: "SPHN1.… (policy: --include-license)",
    },
    SecretField {
        category: Category::Config,
        location: "config/appsettings*.json",
        json_path: "$.ConnectionStrings.*",
        shape: "…Password=…",
    },
    SecretField {
        category: Category::Config,
        location: "config/appsettings*.json",
        json_path: "$.Sophon.Llm.Providers.*.ApiKey",
        shape: "sk-proj-…, sk-ant-…",
    },
    SecretField {
        category: Category::Config,
        location: "config/appsettings*.json",
        json_path: "$.Sophon.Auth.Jwt.SigningKey",
        shape: "base64",
    },
    SecretField {
        category: Category::Config,
        location: "config/appsettings*.json",
        json_path: "$.Sophon.Storage.S3.SecretAccessKey",
        shape: "40 chars (AccessKeyId AKIA… beside it)",
    },
    SecretField {
        category: Category::Config,
        location: "config/appsettings*.json",
        json_path: "$.Sophon.Smtp.Password",
        shape: "SG.…",
    },
    SecretField {
        category: Category::Config,
        location: "config/appsettings*.json",
        json_path: "$.Sophon.Telemetry.SentryDsn",
        shape: "https://<key>@…",
    },
    SecretField {
        category: Category::Config,
        location: "config/appsettings*.json",
        json_path: "$.Kestrel.Certificates.Default.Password",
        shape: "random",
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_serde_uses_them() {
        for c in Category::ALL {
            assert_eq!(c.id().parse::<Category>(), Ok(c));
            assert_eq!(serde_json::to_string(&c).ok(), Some(format!("\"{}\"", c.id())));
        }
        assert_eq!("chats".parse::<Category>(), Ok(Category::Discussions), "the product page's name");
        assert_eq!(serde_json::from_str::<Category>("\"chats\"").ok(), Some(Category::Discussions));
        assert!("chat".parse::<Category>().is_err());
        let mut sorted = Category::ALL;
        sorted.sort();
        assert_eq!(sorted, Category::ALL);
    }
}

/// A category kept in the backup as one JSON array of its table's rows.
#[derive(Clone, Copy, Debug)]
pub struct TableFile {
    pub category: Category,
    pub table: &'static str,
    /// Path inside the backup layout.
    pub file: &'static str,
}

/// Categories kept as one JSON array of parent rows, each holding its child rows (history) in `field`.
#[derive(Clone, Copy, Debug)]
pub struct NestedFile {
    pub category: Category,
    pub parent: &'static str,
    pub child: &'static str,
    /// The child's column naming its parent's `id` (left out of the nested rows).
    pub key: &'static str,
    /// The parent's field that holds the children.
    pub field: &'static str,
    pub file: &'static str,
}

/// The backup layout's one-table files; backup writes and restore reads exactly these.
pub const TABLE_FILES: &[TableFile] = &[
    TableFile { category: Category::Webhooks, table: "webhooks", file: "webhooks/webhooks.json" },
    TableFile { category: Category::Connections, table: "connections", file: "connections/connections.json" },
    TableFile { category: Category::Channels, table: "channels", file: "channels/channels.json" },
    TableFile { category: Category::Nodes, table: "nodes", file: "nodes/nodes.json" },
    TableFile { category: Category::Insights, table: "insights", file: "insights/insights.json" },
    TableFile { category: Category::Approvals, table: "approvals", file: "approvals/approvals.json" },
];

/// The backup layout's parent-with-history files; backup writes and restore reads exactly these.
pub const NESTED_FILES: &[NestedFile] = &[
    NestedFile {
        category: Category::Cron,
        parent: "cron_jobs",
        child: "cron_runs",
        key: "job_id",
        field: "runs",
        file: "cron/jobs.json",
    },
    NestedFile {
        category: Category::Discussions,
        parent: "discussions",
        child: "discussion_messages",
        key: "discussion_id",
        field: "messages",
        file: "discussions/discussions.json",
    },
    NestedFile {
        category: Category::Tasks,
        parent: "tasks",
        child: "task_events",
        key: "task_id",
        field: "events",
        file: "tasks/tasks.json",
    },
    NestedFile {
        category: Category::Skills,
        parent: "skills",
        child: "agent_skills",
        key: "skill_id",
        field: "agents",
        file: "skills/installed.json",
    },
];
