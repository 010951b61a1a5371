//! A deterministic generator of realistic demo gateways.
//!
//! [`generate`] creates a home with [`create_home`](super::create_home) and fills every category for
//! several tenants: users with password hashes and 2FA secrets, agents with their files, workflows
//! with version histories, memory entries and ~30 days of daily logs, documents (raw files streamed
//! to disk, extracted text, the FTS index), cron jobs with weeks of runs, webhooks, connections,
//! channels, skills, MCP config, node pairings, discussions, insights, tasks, approvals, an audit log,
//! a license key and the gateway config with overrides. Secrets are planted wherever a category holds
//! one (see [`SECRET_FIELDS`](super::SECRET_FIELDS)), with recognisable prefixes.
//!
//! Contract: the same scale and seed give the same records and the same file contents on every
//! machine (the clock is fixed at [`rng::NOW`]); a different seed gives different content with the
//! same counts. `small` has exactly the product page's dry-run counts (42 users, 5 agents,
//! 12 workflows, 8,471 memory entries, 189 documents); `large` holds at least 2 GiB of documents.
//! Document bytes are streamed, never held in memory.

mod activity;
mod config;
mod files;
mod records;
pub(crate) mod rng;
mod words;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use rusqlite::Connection;
use serde::Serialize;

use super::{create_home, GatewayError, GatewayResult, DB_FILE};

/// How big a demo gateway is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DemoScale {
    /// The product page's dry-run figures; ~20 MiB of documents. Seconds to generate.
    Small,
    /// Roughly ten times `Small`.
    Medium,
    /// At least 2 GiB of documents and half a million memory entries. About a minute.
    Large,
}

impl DemoScale {
    pub fn id(self) -> &'static str {
        match self {
            DemoScale::Small => "small",
            DemoScale::Medium => "medium",
            DemoScale::Large => "large",
        }
    }
}

impl fmt::Display for DemoScale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

impl FromStr for DemoScale {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "small" => Ok(DemoScale::Small),
            "medium" => Ok(DemoScale::Medium),
            "large" => Ok(DemoScale::Large),
            _ => Err(format!("unknown demo scale {s:?} (known: small, medium, large)")),
        }
    }
}

/// What a scale means in numbers. Totals are over all tenants.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    pub tenants: usize,
    pub users: u64,
    pub agents: u64,
    pub workflows: u64,
    pub memory: u64,
    pub documents: u64,
    pub doc_min: u64,
    pub doc_max: u64,
    /// Sizes are scaled up until the documents hold at least this many bytes.
    pub doc_total_min: u64,
    pub audit: u64,
    pub discussions: u64,
    pub insights: u64,
    pub tasks: u64,
    pub approvals: u64,
    pub log_days: i64,
    /// Daily-log lines per agent per day.
    pub log_lines: (u64, u64),
    /// Per tenant (lo, hi).
    pub webhooks: (u64, u64),
    pub connections: (u64, u64),
    pub channels: (u64, u64),
    pub skills: (u64, u64),
    pub nodes: (u64, u64),
    pub cron_jobs: (u64, u64),
}

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;

impl Plan {
    pub fn for_scale(scale: DemoScale) -> Plan {
        match scale {
            DemoScale::Small => Plan {
                tenants: 3,
                users: 42,
                agents: 5,
                workflows: 12,
                memory: 8_471,
                documents: 189,
                doc_min: 4 * KIB,
                doc_max: 200 * KIB,
                doc_total_min: 0,
                audit: 3_200,
                discussions: 36,
                insights: 45,
                tasks: 72,
                approvals: 30,
                log_days: 30,
                log_lines: (8, 24),
                webhooks: (1, 3),
                connections: (3, 5),
                channels: (2, 3),
                skills: (4, 7),
                nodes: (1, 3),
                cron_jobs: (3, 5),
            },
            DemoScale::Medium => Plan {
                tenants: 6,
                users: 420,
                agents: 50,
                workflows: 120,
                memory: 84_710,
                documents: 1_890,
                doc_min: 4 * KIB,
                doc_max: 200 * KIB,
                doc_total_min: 0,
                audit: 32_000,
                discussions: 360,
                insights: 450,
                tasks: 720,
                approvals: 300,
                log_days: 30,
                log_lines: (6, 18),
                webhooks: (2, 6),
                connections: (4, 8),
                channels: (2, 5),
                skills: (6, 12),
                nodes: (2, 8),
                cron_jobs: (4, 7),
            },
            DemoScale::Large => Plan {
                tenants: 10,
                users: 2_100,
                agents: 250,
                workflows: 600,
                memory: 423_550,
                documents: 3_000,
                doc_min: 16 * KIB,
                doc_max: 4 * MIB,
                doc_total_min: 2 * GIB + 128 * MIB,
                audit: 160_000,
                discussions: 1_800,
                insights: 2_250,
                tasks: 3_600,
                approvals: 1_500,
                log_days: 30,
                log_lines: (4, 12),
                webhooks: (3, 10),
                connections: (5, 8),
                channels: (3, 6),
                skills: (8, 14),
                nodes: (4, 16),
                cron_jobs: (5, 8),
            },
        }
    }
}

/// A demo user whose password is known: (tenant index, user index in that tenant) and the roles it
/// is given. The first tenant is the home's default tenant (`cron::store::default_tenant` picks it).
pub(crate) struct DemoUser {
    pub tenant_index: usize,
    pub user_index: u64,
    pub roles: &'static [&'static str],
    pub password: &'static str,
}

/// The demo's three users with known passwords, for signing in to the dashboard: the default
/// tenant's owner, a viewer of the default tenant, and an admin of the second tenant.
pub(crate) const DEMO_SIGN_INS: &[DemoUser] = &[
    DemoUser { tenant_index: 0, user_index: 0, roles: &["owner", "admin"], password: "demo-owner-pass" },
    DemoUser { tenant_index: 0, user_index: 1, roles: &["viewer"], password: "demo-viewer-pass" },
    DemoUser { tenant_index: 1, user_index: 1, roles: &["admin"], password: "demo-admin-pass" },
];

/// A demo user one can sign in as (its password is printed by `gateway init --demo`).
#[derive(Clone, Debug, Serialize)]
pub struct DemoSignIn {
    pub email: String,
    pub password: String,
    pub tenant: String,
    pub roles: Vec<String>,
}

/// What [`generate`] made.
#[derive(Clone, Debug, Serialize)]
pub struct DemoSummary {
    pub home: PathBuf,
    pub scale: DemoScale,
    pub seed: u64,
    pub tenants: u64,
    /// Rows per table of `gateway.db`.
    pub rows: BTreeMap<String, u64>,
    /// Files written outside `gateway.db` and their bytes.
    pub files: u64,
    pub file_bytes: u64,
    pub documents: u64,
    pub document_bytes: u64,
    pub daily_log_files: u64,
    pub daily_log_lines: u64,
    /// Users with known passwords (see [`DEMO_SIGN_INS`]).
    pub sign_ins: Vec<DemoSignIn>,
}

/// A user of a tenant, as later generators need it.
#[derive(Clone, Debug)]
pub(crate) struct User {
    pub id: String,
    pub email: String,
    pub name: String,
    pub admin: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct Agent {
    pub id: String,
    pub name: String,
    pub role: String,
}

/// A tenant and what later generators refer to.
#[derive(Clone, Debug)]
pub(crate) struct Tenant {
    pub id: &'static str,
    pub name: &'static str,
    pub tier: &'static str,
    pub weight: u64,
    pub domain: String,
    pub created_at: i64,
    pub users: Vec<User>,
    pub agents: Vec<Agent>,
    pub workflows: Vec<(String, String)>,
}

/// The generator's state: where it writes and what it has written.
pub(crate) struct Gen<'a> {
    pub home: &'a Path,
    pub db: PathBuf,
    pub seed: u64,
    pub plan: Plan,
    pub tenants: Vec<Tenant>,
    pub files: u64,
    pub file_bytes: u64,
    pub documents: u64,
    pub document_bytes: u64,
    pub daily_log_files: u64,
    pub daily_log_lines: u64,
    pub sign_ins: Vec<DemoSignIn>,
}

/// `rusqlite` and `io` results with the path of what failed.
pub(crate) trait At<T> {
    fn at(self, path: &Path) -> GatewayResult<T>;
}

impl<T> At<T> for rusqlite::Result<T> {
    fn at(self, path: &Path) -> GatewayResult<T> {
        self.map_err(|e| GatewayError::sql(path, e))
    }
}

impl<T> At<T> for std::io::Result<T> {
    fn at(self, path: &Path) -> GatewayResult<T> {
        self.map_err(|e| GatewayError::io(path, e))
    }
}

impl Gen<'_> {
    pub fn rng(&self, label: &str) -> rng::Rng {
        rng::Rng::new(self.seed, label)
    }

    pub fn weights(&self) -> Vec<u64> {
        self.tenants.iter().map(|t| t.weight).collect()
    }

    /// Write a whole small file below the home, counting it.
    pub fn write_file(&mut self, rel: &str, data: &[u8]) -> GatewayResult<()> {
        let path = self.home.join(rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).at(dir)?;
        }
        std::fs::write(&path, data).at(&path)?;
        self.files += 1;
        self.file_bytes += data.len() as u64;
        Ok(())
    }
}

/// Create a demo gateway of the given scale in `home` (absent or empty), deterministically from
/// `seed`.
pub fn generate(home: &Path, scale: DemoScale, seed: u64) -> GatewayResult<DemoSummary> {
    let mut conn = create_home(home)?;
    let db = home.join(DB_FILE);
    // The database is new and would be deleted on failure: no need to wait for the disk per commit.
    conn.pragma_update(None, "synchronous", "OFF").at(&db)?;
    conn.pragma_update(None, "cache_size", -65_536).at(&db)?;
    let mut g = Gen {
        home,
        db: db.clone(),
        seed,
        plan: Plan::for_scale(scale),
        tenants: Vec::new(),
        files: 0,
        file_bytes: 0,
        documents: 0,
        document_bytes: 0,
        daily_log_files: 0,
        daily_log_lines: 0,
        sign_ins: Vec::new(),
    };

    let tx = conn.transaction().at(&db)?;
    records::tenants_and_users(&mut g, &tx)?;
    records::agents(&mut g, &tx)?;
    records::workflows(&mut g, &tx)?;
    records::skills(&mut g, &tx)?;
    tx.commit().at(&db)?;

    let tx = conn.transaction().at(&db)?;
    records::memory(&mut g, &tx)?;
    files::daily_logs(&mut g)?;
    tx.commit().at(&db)?;

    let tx = conn.transaction().at(&db)?;
    files::documents(&mut g, &tx)?;
    tx.commit().at(&db)?;

    let tx = conn.transaction().at(&db)?;
    activity::cron(&mut g, &tx)?;
    activity::webhooks(&mut g, &tx)?;
    activity::connections(&mut g, &tx)?;
    activity::channels(&mut g, &tx)?;
    activity::nodes(&mut g, &tx)?;
    activity::discussions(&mut g, &tx)?;
    activity::insights(&mut g, &tx)?;
    activity::tasks(&mut g, &tx)?;
    activity::approvals(&mut g, &tx)?;
    activity::audit(&mut g, &tx)?;
    tx.commit().at(&db)?;

    config::write_all(&mut g)?;

    conn.execute_batch("PRAGMA optimize; PRAGMA wal_checkpoint(TRUNCATE);").at(&db)?;
    let rows = count_rows(&conn, &db)?;
    drop(conn);
    Ok(DemoSummary {
        home: home.to_path_buf(),
        scale,
        seed,
        tenants: g.tenants.len() as u64,
        rows,
        files: g.files,
        file_bytes: g.file_bytes,
        documents: g.documents,
        document_bytes: g.document_bytes,
        daily_log_files: g.daily_log_files,
        daily_log_lines: g.daily_log_lines,
        sign_ins: g.sign_ins,
    })
}

fn count_rows(conn: &Connection, db: &Path) -> GatewayResult<BTreeMap<String, u64>> {
    let mut rows = BTreeMap::new();
    for table in super::schema::RECORD_TABLES {
        let n: i64 = conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0)).at(db)?;
        rows.insert((*table).to_string(), n as u64);
    }
    Ok(rows)
}
