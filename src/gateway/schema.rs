//! The schema of `gateway.db`, opening a gateway home and creating an empty one.
//!
//! Contract: [`open_home`] never creates anything; it upgrades a database of an older supported
//! version ([`MIN_SCHEMA_VERSION`]) in place, in one transaction, and refuses any other
//! `PRAGMA user_version`. [`create_home`] never writes into a folder that has anything in it.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::{GatewayError, GatewayResult, DB_FILE};

/// The version of the schema below, stored as `PRAGMA user_version`.
pub const SCHEMA_VERSION: u32 = 2;

/// The oldest schema version [`open_home`] upgrades (and a read-only open accepts as it is).
pub const MIN_SCHEMA_VERSION: u32 = 1;

/// The folders of a home, created by [`create_home`].
pub const HOME_DIRS: &[&str] = &["agents", "memory/daily-logs", "documents/files", "config"];

/// The whole schema, version 2. Every table but `tenants` has a `tenant_id`; times are RFC 3339 UTC
/// text (`2025-09-30T08:15:00Z`); JSON columns hold UTF-8 JSON text.
pub const SCHEMA_SQL: &str = r#"
CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    tier        TEXT NOT NULL CHECK (tier IN ('community', 'pro', 'enterprise')),
    created_at  TEXT NOT NULL
);

CREATE TABLE users (
    id             TEXT PRIMARY KEY,
    tenant_id      TEXT NOT NULL REFERENCES tenants(id),
    email          TEXT NOT NULL,
    display_name   TEXT NOT NULL,
    password_hash  TEXT NOT NULL,
    roles          TEXT NOT NULL CHECK (json_valid(roles)),
    totp_secret    TEXT,
    created_at     TEXT NOT NULL,
    UNIQUE (tenant_id, email)
);

CREATE TABLE agents (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants(id),
    name            TEXT NOT NULL,
    tool_allowlist  TEXT NOT NULL CHECK (json_valid(tool_allowlist)),
    config          TEXT NOT NULL CHECK (json_valid(config)),
    created_at      TEXT NOT NULL
);

CREATE TABLE workflows (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL REFERENCES tenants(id),
    name             TEXT NOT NULL,
    current_version  INTEGER NOT NULL,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);

CREATE TABLE workflow_versions (
    workflow_id  TEXT NOT NULL REFERENCES workflows(id),
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    version      INTEGER NOT NULL,
    definition   TEXT NOT NULL CHECK (json_valid(definition)),
    created_at   TEXT NOT NULL,
    created_by   TEXT NOT NULL,
    PRIMARY KEY (workflow_id, version)
);

CREATE TABLE memory_entries (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    agent_id    TEXT NOT NULL REFERENCES agents(id),
    kind        TEXT NOT NULL CHECK (kind IN ('fact', 'preference', 'episode', 'summary', 'reflection')),
    content     TEXT NOT NULL,
    created_at  TEXT NOT NULL
);

CREATE TABLE documents (
    seq             INTEGER PRIMARY KEY,
    id              TEXT NOT NULL UNIQUE,
    tenant_id       TEXT NOT NULL REFERENCES tenants(id),
    filename        TEXT NOT NULL,
    ext             TEXT NOT NULL,
    mime            TEXT NOT NULL,
    size            INTEGER NOT NULL,
    sha256          TEXT NOT NULL,
    extracted_text  TEXT NOT NULL,
    uploaded_by     TEXT,
    created_at      TEXT NOT NULL
);

CREATE VIRTUAL TABLE documents_fts USING fts5(
    extracted_text, content = 'documents', content_rowid = 'seq'
);
CREATE TRIGGER documents_fts_ai AFTER INSERT ON documents BEGIN
    INSERT INTO documents_fts (rowid, extracted_text) VALUES (new.seq, new.extracted_text);
END;
CREATE TRIGGER documents_fts_ad AFTER DELETE ON documents BEGIN
    INSERT INTO documents_fts (documents_fts, rowid, extracted_text) VALUES ('delete', old.seq, old.extracted_text);
END;
CREATE TRIGGER documents_fts_au AFTER UPDATE ON documents BEGIN
    INSERT INTO documents_fts (documents_fts, rowid, extracted_text) VALUES ('delete', old.seq, old.extracted_text);
    INSERT INTO documents_fts (rowid, extracted_text) VALUES (new.seq, new.extracted_text);
END;

CREATE TABLE cron_jobs (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    name        TEXT NOT NULL,
    schedule    TEXT NOT NULL,
    action      TEXT NOT NULL CHECK (action IN ('agent', 'workflow', 'custom', 'backup')),
    command     TEXT NOT NULL,
    enabled     INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    created_at  TEXT NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE cron_runs (
    job_id       TEXT NOT NULL REFERENCES cron_jobs(id),
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    started_at   TEXT NOT NULL,
    finished_at  TEXT,
    status       TEXT NOT NULL CHECK (status IN ('ok', 'failed', 'timeout', 'skipped', 'running')),
    summary      TEXT NOT NULL,
    pid          INTEGER,
    host         TEXT,
    PRIMARY KEY (job_id, started_at)
);

CREATE TABLE webhooks (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants(id),
    url             TEXT NOT NULL,
    events          TEXT NOT NULL CHECK (json_valid(events)),
    signing_secret  TEXT NOT NULL,
    enabled         INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    created_at      TEXT NOT NULL
);

CREATE TABLE connections (
    id             TEXT PRIMARY KEY,
    tenant_id      TEXT NOT NULL REFERENCES tenants(id),
    provider       TEXT NOT NULL,
    account        TEXT NOT NULL,
    auth_token     TEXT,
    refresh_token  TEXT,
    scopes         TEXT NOT NULL,
    expires_at     TEXT,
    created_at     TEXT NOT NULL
);

CREATE TABLE channels (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    kind        TEXT NOT NULL CHECK (kind IN ('slack', 'telegram', 'discord', 'teams', 'email', 'web')),
    name        TEXT NOT NULL,
    config      TEXT NOT NULL CHECK (json_valid(config)),
    created_at  TEXT NOT NULL
);

CREATE TABLE skills (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    name          TEXT NOT NULL,
    version       TEXT NOT NULL,
    installed_at  TEXT NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE agent_skills (
    agent_id   TEXT NOT NULL REFERENCES agents(id),
    skill_id   TEXT NOT NULL REFERENCES skills(id),
    tenant_id  TEXT NOT NULL REFERENCES tenants(id),
    enabled    INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    PRIMARY KEY (agent_id, skill_id)
);

CREATE TABLE nodes (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants(id),
    name            TEXT NOT NULL,
    platform        TEXT NOT NULL,
    paired_at       TEXT NOT NULL,
    last_seen_at    TEXT,
    pairing_secret  TEXT NOT NULL
);

CREATE TABLE discussions (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    title       TEXT NOT NULL,
    agent_id    TEXT REFERENCES agents(id),
    started_by  TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('open', 'resolved', 'archived')),
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

CREATE TABLE discussion_messages (
    id             TEXT PRIMARY KEY,
    discussion_id  TEXT NOT NULL REFERENCES discussions(id),
    tenant_id      TEXT NOT NULL REFERENCES tenants(id),
    at             TEXT NOT NULL,
    author         TEXT NOT NULL,
    body           TEXT NOT NULL
);

CREATE TABLE insights (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    agent_id    TEXT REFERENCES agents(id),
    kind        TEXT NOT NULL CHECK (kind IN ('anomaly', 'trend', 'recommendation', 'summary')),
    title       TEXT NOT NULL,
    body        TEXT NOT NULL,
    score       INTEGER NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('new', 'acknowledged', 'dismissed')),
    created_at  TEXT NOT NULL
);

CREATE TABLE tasks (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    title        TEXT NOT NULL,
    description  TEXT NOT NULL,
    assignee     TEXT,
    status       TEXT NOT NULL CHECK (status IN ('todo', 'in_progress', 'blocked', 'done', 'cancelled')),
    priority     TEXT NOT NULL CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    due_at       TEXT,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);

CREATE TABLE task_events (
    id         TEXT PRIMARY KEY,
    task_id    TEXT NOT NULL REFERENCES tasks(id),
    tenant_id  TEXT NOT NULL REFERENCES tenants(id),
    at         TEXT NOT NULL,
    actor      TEXT NOT NULL,
    event      TEXT NOT NULL,
    detail     TEXT NOT NULL CHECK (json_valid(detail))
);

CREATE TABLE approvals (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    kind          TEXT NOT NULL,
    subject       TEXT NOT NULL,
    requested_by  TEXT NOT NULL,
    approver      TEXT,
    status        TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected', 'expired')),
    requested_at  TEXT NOT NULL,
    decided_at    TEXT,
    comment       TEXT
);

CREATE TABLE audit_log (
    id         TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL REFERENCES tenants(id),
    at         TEXT NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    target     TEXT NOT NULL,
    detail     TEXT NOT NULL CHECK (json_valid(detail))
);

CREATE INDEX users_tenant ON users (tenant_id);
CREATE INDEX agents_tenant ON agents (tenant_id);
CREATE INDEX workflows_tenant ON workflows (tenant_id);
CREATE INDEX memory_entries_tenant ON memory_entries (tenant_id, created_at);
CREATE INDEX memory_entries_agent ON memory_entries (agent_id);
CREATE INDEX documents_tenant ON documents (tenant_id);
CREATE INDEX cron_jobs_tenant ON cron_jobs (tenant_id);
CREATE INDEX cron_runs_tenant ON cron_runs (tenant_id, started_at);
CREATE INDEX webhooks_tenant ON webhooks (tenant_id);
CREATE INDEX connections_tenant ON connections (tenant_id);
CREATE INDEX channels_tenant ON channels (tenant_id);
CREATE INDEX agent_skills_skill ON agent_skills (skill_id);
CREATE INDEX nodes_tenant ON nodes (tenant_id);
CREATE INDEX discussions_tenant ON discussions (tenant_id);
CREATE INDEX discussion_messages_discussion ON discussion_messages (discussion_id, at);
CREATE INDEX insights_tenant ON insights (tenant_id);
CREATE INDEX tasks_tenant ON tasks (tenant_id);
CREATE INDEX task_events_task ON task_events (task_id, at);
CREATE INDEX approvals_tenant ON approvals (tenant_id);
CREATE INDEX audit_log_tenant_at ON audit_log (tenant_id, at);
"#;

/// Version 1 → 2: `cron_jobs.action` gains `backup`, `cron_runs.status` gains `running`, and
/// `cron_runs` gains `pid` and `host` (who claimed a run; NULL for older rows). SQLite cannot alter
/// a CHECK constraint, so both tables are rebuilt (SQLite's documented 12-step procedure: new
/// table, copy, drop, rename) with foreign-key enforcement off around the transaction. The new
/// tables are [`SCHEMA_SQL`]'s own (see [`schema_table`]), created as `cron_jobs_v2` and
/// `cron_runs_v2` before this runs.
const MIGRATE_1_TO_2: &str = r#"
INSERT INTO cron_jobs_v2 (id, tenant_id, name, schedule, action, command, enabled, created_at)
    SELECT id, tenant_id, name, schedule, action, command, enabled, created_at FROM cron_jobs ORDER BY rowid;
INSERT INTO cron_runs_v2 (job_id, tenant_id, started_at, finished_at, status, summary)
    SELECT job_id, tenant_id, started_at, finished_at, status, summary FROM cron_runs ORDER BY rowid;
DROP TABLE cron_runs;
DROP TABLE cron_jobs;
ALTER TABLE cron_jobs_v2 RENAME TO cron_jobs;
ALTER TABLE cron_runs_v2 RENAME TO cron_runs;
CREATE INDEX cron_jobs_tenant ON cron_jobs (tenant_id);
CREATE INDEX cron_runs_tenant ON cron_runs (tenant_id, started_at);
"#;

/// Every record table, parents before children (insert in this order, delete in reverse). The FTS
/// index `documents_fts` is not listed: it is derived from `documents` (see the spec).
pub const RECORD_TABLES: &[&str] = &[
    "tenants",
    "users",
    "agents",
    "workflows",
    "workflow_versions",
    "memory_entries",
    "documents",
    "cron_jobs",
    "cron_runs",
    "webhooks",
    "connections",
    "channels",
    "skills",
    "agent_skills",
    "nodes",
    "discussions",
    "discussion_messages",
    "insights",
    "tasks",
    "task_events",
    "approvals",
    "audit_log",
];

/// The default `config/appsettings.json` of a new, empty home.
pub const DEFAULT_APPSETTINGS: &str = r#"{
  "Logging": {
    "LogLevel": {
      "Default": "Information",
      "Microsoft.AspNetCore": "Warning"
    }
  },
  "AllowedHosts": "*",
  "ConnectionStrings": {
    "Gateway": "Data Source=gateway.db;Cache=Shared"
  },
  "Sophon": {
    "Gateway": {
      "PublicUrl": "http://localhost:8080",
      "TenantMode": "single"
    },
    "Backups": {
      "Default": {
        "Destination": "local",
        "Format": "zip",
        "Encrypt": false,
        "IncludeLicense": false,
        "Schedule": "0 3 * * *",
        "Lifecycle": {
          "KeepDaily": 7,
          "KeepWeekly": 4,
          "KeepMonthly": 12
        }
      }
    }
  }
}
"#;

/// Open an existing gateway home's database for reading and writing, with foreign keys enforced.
/// Refuses a missing home, a folder without `gateway.db`, and any schema version outside
/// [`MIN_SCHEMA_VERSION`]..=[`SCHEMA_VERSION`] (typed: [`GatewayError::UnsupportedSchema`]); upgrades
/// an older supported version in place (format-spec/gateway.md §3.3). Never creates anything.
pub fn open_home(home: &Path) -> GatewayResult<Connection> {
    match std::fs::metadata(home) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(GatewayError::NotAHome(home.to_path_buf())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(GatewayError::HomeNotFound(home.to_path_buf()))
        }
        Err(e) => return Err(GatewayError::io(home, e)),
    }
    let db = home.join(DB_FILE);
    if !db.is_file() {
        return Err(GatewayError::NotAHome(home.to_path_buf()));
    }
    let conn = Connection::open_with_flags(&db, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(|e| GatewayError::sql(&db, e))?;
    conn.busy_timeout(Duration::from_secs(30)).map_err(|e| GatewayError::sql(&db, e))?;
    let found: i64 =
        conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(|e| GatewayError::sql(&db, e))?;
    if found != i64::from(SCHEMA_VERSION) {
        if found < i64::from(MIN_SCHEMA_VERSION) || found > i64::from(SCHEMA_VERSION) {
            return Err(GatewayError::UnsupportedSchema { path: db, found, supported: SCHEMA_VERSION });
        }
        migrate(&conn, &db)?;
    }
    conn.pragma_update(None, "foreign_keys", true).map_err(|e| GatewayError::sql(&db, e))?;
    Ok(conn)
}

/// `CREATE TABLE table (…);` as [`SCHEMA_SQL`] has it, under the name `as_name`: a migration then
/// builds exactly the table a new home gets. (Empty if the schema lacks the table, which the
/// migration's next statement reports as a missing table; a unit test rules it out.)
fn schema_table(table: &str, as_name: &str) -> String {
    let head = format!("CREATE TABLE {table} (");
    let Some(start) = SCHEMA_SQL.find(&head) else { return String::new() };
    let Some(len) = SCHEMA_SQL[start..].find("\n);") else { return String::new() };
    SCHEMA_SQL[start..start + len + 3].replacen(&head, &format!("CREATE TABLE {as_name} ("), 1)
}

/// Upgrade an older database to [`SCHEMA_VERSION`] in one `BEGIN IMMEDIATE` transaction, so that a
/// crash leaves it at the old version, and two processes opening it at once upgrade it once (the
/// second finds the new version after taking the write lock). Rows are kept as they are.
fn migrate(conn: &Connection, db: &Path) -> GatewayResult<()> {
    let s = |e| GatewayError::sql(db, e);
    // The pragma is a no-op inside a transaction: turn enforcement off first (a fresh connection
    // has it off already; this states the precondition the table rebuild needs).
    conn.pragma_update(None, "foreign_keys", false).map_err(s)?;
    conn.execute_batch("BEGIN IMMEDIATE").map_err(s)?;
    let result = (|| -> rusqlite::Result<()> {
        let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if found == 1 {
            for table in ["cron_jobs", "cron_runs"] {
                conn.execute_batch(&schema_table(table, &format!("{table}_v2")))?;
            }
            conn.execute_batch(MIGRATE_1_TO_2)?;
        }
        if found < i64::from(SCHEMA_VERSION) {
            // The rebuild must not have broken a reference (it copies rows, so it cannot, unless
            // the old database already held dangling ones: those are kept, as before).
            conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        }
        Ok(())
    })();
    match result {
        Ok(()) => conn.execute_batch("COMMIT").map_err(s),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(s(e))
        }
    }
}

/// Create an empty gateway home: the folders, `gateway.db` (WAL mode, the schema, `user_version` =
/// [`SCHEMA_VERSION`]) and a default `config/appsettings.json`. `home` must be absent or an empty
/// folder. Returns the open database.
pub fn create_home(home: &Path) -> GatewayResult<Connection> {
    match std::fs::read_dir(home) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(GatewayError::NotEmpty(home.to_path_buf()));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => {
            return Err(GatewayError::NotEmpty(home.to_path_buf()))
        }
        Err(e) => return Err(GatewayError::io(home, e)),
    }
    for dir in HOME_DIRS {
        let p = home.join(dir);
        std::fs::create_dir_all(&p).map_err(|e| GatewayError::io(&p, e))?;
    }
    let settings = home.join("config/appsettings.json");
    std::fs::write(&settings, DEFAULT_APPSETTINGS).map_err(|e| GatewayError::io(&settings, e))?;

    let db = home.join(DB_FILE);
    let conn = Connection::open(&db).map_err(|e| GatewayError::sql(&db, e))?;
    let s = |e| GatewayError::sql(&db, e);
    conn.busy_timeout(Duration::from_secs(30)).map_err(s)?;
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0)).map_err(s)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(GatewayError::Invalid(format!(
            "gateway database {}: cannot use WAL mode (got {mode})",
            db.display()
        )));
    }
    conn.pragma_update(None, "foreign_keys", true).map_err(s)?;
    let tx = conn.unchecked_transaction().map_err(s)?;
    tx.execute_batch(SCHEMA_SQL).map_err(s)?;
    tx.pragma_update(None, "user_version", SCHEMA_VERSION).map_err(s)?;
    tx.commit().map_err(s)?;
    Ok(conn)
}

#[cfg(test)]
mod tests {

    #[test]
    fn the_migration_builds_the_schemas_own_cron_tables() {
        let jobs = schema_table("cron_jobs", "cron_jobs_v2");
        assert!(jobs.starts_with("CREATE TABLE cron_jobs_v2 (") && jobs.ends_with("\n);"), "{jobs}");
        assert!(jobs.contains("'backup'") && jobs.contains("UNIQUE (tenant_id, name)"), "{jobs}");
        let runs = schema_table("cron_runs", "cron_runs_v2");
        assert!(runs.starts_with("CREATE TABLE cron_runs_v2 (") && runs.contains("host") && runs.ends_with("\n);"));
        assert_eq!(schema_table("no_such_table", "x"), "");
    }
    use super::*;

    #[test]
    fn create_then_open_and_refuse_other_versions() {
        let t = tempfile::tempdir().expect("tempdir");
        let home = t.path().join("home");
        drop(create_home(&home).expect("create"));
        let conn = open_home(&home).expect("open");
        let tables: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'documents_fts%'",
                [],
                |r| r.get(0),
            )
            .expect("count");
        assert_eq!(tables as usize, RECORD_TABLES.len());
        conn.pragma_update(None, "user_version", 99).expect("set version");
        drop(conn);
        match open_home(&home) {
            Err(GatewayError::UnsupportedSchema { found: 99, supported: 2, .. }) => {}
            other => panic!("expected UnsupportedSchema, got {other:?}"),
        }
        assert!(matches!(create_home(&home), Err(GatewayError::NotEmpty(_))));
        assert!(matches!(open_home(&t.path().join("absent")), Err(GatewayError::HomeNotFound(_))));
        assert!(matches!(open_home(t.path()), Err(GatewayError::NotAHome(_))));
    }
}
