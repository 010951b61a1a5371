//! `sophon gateway …`: create a gateway data home (empty, or a realistic demo) and count what it holds.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::anyhow;
use clap::{Args, Subcommand, ValueEnum};

use sophon::gateway::{self, Category, Count, DemoScale, GatewayStats};

use super::exit;
use super::output::{bytes, json, line};

#[derive(Subcommand, Debug)]
pub enum GatewayCommand {
    /// Create a gateway home: empty (the schema and a default config), or with --demo a realistic
    /// demo gateway with several tenants, every category filled and secrets planted.
    Init(InitArgs),
    /// Count records and bytes per category and per tenant.
    Stats(StatsArgs),
    /// Finish a restore that was interrupted: roll a committed one forward, discard an uncommitted
    /// one. Restores and backups do this first by themselves.
    Recover(HomeArg),
}

/// The gateway's data home.
#[derive(Args, Debug, Clone)]
pub struct HomeArg {
    /// The gateway's data home (a folder).
    #[arg(long, env = "SOPHON_HOME", value_name = "DIR")]
    pub home: Option<PathBuf>,
}

impl HomeArg {
    pub fn get(&self) -> anyhow::Result<&PathBuf> {
        self.home.as_ref().ok_or_else(|| anyhow!("no gateway home given: pass --home DIR or set SOPHON_HOME"))
    }
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum ScaleArg {
    /// The product page's dry-run figures: 42 users, 5 agents, 12 workflows, 8,471 memory entries, 189 documents.
    Small,
    /// About ten times small.
    Medium,
    /// At least 2 GiB of documents.
    Large,
}

impl From<ScaleArg> for DemoScale {
    fn from(s: ScaleArg) -> Self {
        match s {
            ScaleArg::Small => DemoScale::Small,
            ScaleArg::Medium => DemoScale::Medium,
            ScaleArg::Large => DemoScale::Large,
        }
    }
}

#[derive(Args, Debug)]
pub struct InitArgs {
    #[command(flatten)]
    pub home: HomeArg,
    /// Fill the new home with a realistic demo gateway.
    #[arg(long)]
    pub demo: bool,
    /// Size of the demo gateway (default: small).
    #[arg(long, value_enum, requires = "demo")]
    pub scale: Option<ScaleArg>,
    /// Seed of the demo's content: the same seed always gives the same gateway (default: 1).
    #[arg(long, value_name = "N", requires = "demo")]
    pub seed: Option<u64>,
    /// Print a JSON summary.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct StatsArgs {
    #[command(flatten)]
    pub home: HomeArg,
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

pub fn run(cmd: GatewayCommand) -> anyhow::Result<u8> {
    match cmd {
        GatewayCommand::Init(a) => init(a),
        GatewayCommand::Stats(a) => stats(a),
        GatewayCommand::Recover(a) => {
            let home = a.get()?;
            sophon::gateway::restore::recover(home)?;
            super::output::line(format!("{}: no interrupted restore is pending", home.display()))?;
            Ok(super::exit::OK)
        }
    }
}

fn init(a: InitArgs) -> anyhow::Result<u8> {
    let home = a.home.get()?;
    let started = Instant::now();
    if !a.demo {
        let conn = gateway::create_home(home)?;
        let job = default_job(&conn, home)?;
        if a.json {
            json(&serde_json::json!({
                "home": home,
                "schema_version": gateway::SCHEMA_VERSION,
                "demo": null,
                "default_job": job,
            }))?;
        } else {
            line(format!("gateway home {} created (schema version {})", home.display(), gateway::SCHEMA_VERSION))?;
            line(format!("  scheduled job {}/{} ({}): backup with retention", job.tenant_id, job.name, job.schedule))?;
        }
        return Ok(exit::OK);
    }
    let scale: DemoScale = a.scale.unwrap_or(ScaleArg::Small).into();
    let seed = a.seed.unwrap_or(1);
    let existed = home.exists();
    let summary = match gateway::generate(home, scale, seed) {
        Ok(s) => s,
        Err(e) => {
            // Leave nothing half-made behind in a folder this command created.
            if !existed && !matches!(e, gateway::GatewayError::NotEmpty(_)) {
                let _ = std::fs::remove_dir_all(home);
            }
            return Err(e.into());
        }
    };
    // The demo plants the default job itself (with history); this only checks it is there.
    default_job(&gateway::open_home(home)?, home)?;
    let seconds = started.elapsed().as_secs_f64();
    if a.json {
        json(&serde_json::json!({
            "home": home,
            "schema_version": gateway::SCHEMA_VERSION,
            "demo": summary,
            "seconds": seconds,
        }))?;
    } else {
        let rows = |t: &str| thousands(summary.rows.get(t).copied().unwrap_or(0));
        line(format!("demo gateway ({scale}, seed {seed}) created in {} in {seconds:.1}s", home.display()))?;
        line(format!(
            "  {} tenants, {} users, {} agents, {} workflows ({} versions), {} memory entries, {} documents ({})",
            summary.tenants,
            rows("users"),
            rows("agents"),
            rows("workflows"),
            rows("workflow_versions"),
            rows("memory_entries"),
            thousands(summary.documents),
            bytes(summary.document_bytes)
        ))?;
        line(format!(
            "  {} cron runs, {} audit entries, {} daily-log lines in {} files; {} files, {} in all",
            rows("cron_runs"),
            rows("audit_log"),
            thousands(summary.daily_log_lines),
            thousands(summary.daily_log_files),
            thousands(summary.files),
            bytes(summary.file_bytes)
        ))?;
        line(format!("  see `sophon gateway stats --home {}`", home.display()))?;
        if !summary.sign_ins.is_empty() {
            line(format!("  demo users for `sophon serve --home {}` (demo passwords: change them):", home.display()))?;
            for u in &summary.sign_ins {
                line(format!(
                    "    {}  password {}  ({} of tenant {})",
                    u.email,
                    u.password,
                    u.roles.join("+"),
                    u.tenant
                ))?;
            }
        }
    }
    Ok(exit::OK)
}

/// The `nightly-backup` job every new home gets (format-spec/gateway.md §3.4), on the config's
/// `Sophon:Backups:Default:Schedule`.
fn default_job(conn: &rusqlite::Connection, home: &std::path::Path) -> anyhow::Result<sophon::cron::Job> {
    let schedule = sophon::cron::default_schedule(home)?;
    Ok(sophon::cron::store::ensure_default_job(conn, &schedule, chrono::Utc::now())?)
}

fn stats(a: StatsArgs) -> anyhow::Result<u8> {
    let home = a.home.get()?;
    let s = gateway::stats(home)?;
    if a.json {
        json(&s)?;
    } else {
        print_stats(&s)?;
    }
    Ok(exit::OK)
}

/// 8471 → "8,471".
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn print_stats(s: &GatewayStats) -> std::io::Result<()> {
    line(format!(
        "gateway home {} (schema version {}): {} tenant(s), database {}",
        s.home.display(),
        s.schema_version,
        s.tenants.len(),
        bytes(s.database_bytes)
    ))?;
    line("")?;
    line(format!("{:<12} {:>10} {:>10} {:>8} {:>12}", "category", "records", "rows", "files", "bytes"))?;
    let row = |name: &str, c: &Count| {
        format!(
            "{name:<12} {:>10} {:>10} {:>8} {:>12}",
            thousands(c.records),
            thousands(c.rows),
            thousands(c.files),
            bytes(c.bytes)
        )
    };
    for (cat, c) in &s.categories {
        line(row(cat.id(), c))?;
    }
    line(row("total", &s.total))?;
    if !s.unassigned.is_empty() {
        let ids: Vec<&str> = s.unassigned.keys().map(|c| c.id()).collect();
        line(format!("(includes data of unknown tenants, agents or documents in: {})", ids.join(", ")))?;
    }
    if s.tenants.is_empty() {
        line("")?;
        line("no tenants")?;
        return Ok(());
    }
    line("")?;
    line("records per tenant:")?;
    let width = s.tenants.iter().map(|t| t.id.len()).max().unwrap_or(0).max(9);
    let mut header = format!("{:<12}", "category");
    for t in &s.tenants {
        header.push_str(&format!(" {:>width$}", t.id));
    }
    line(header)?;
    for cat in Category::ALL.iter().filter(|c| !c.is_gateway_wide()) {
        let mut l = format!("{:<12}", cat.id());
        for t in &s.tenants {
            let n = t.categories.get(cat).map(|c| c.records).unwrap_or(0);
            l.push_str(&format!(" {:>width$}", thousands(n)));
        }
        line(l)?;
    }
    for (label, f) in [("records", total_records as fn(&Count) -> String), ("bytes", total_bytes)] {
        let mut l = format!("{label:<12}");
        for t in &s.tenants {
            l.push_str(&format!(" {:>width$}", f(&t.total)));
        }
        line(l)?;
    }
    line("")?;
    for t in &s.tenants {
        line(format!("{}: {} ({})", t.id, t.name, t.tier))?;
    }
    Ok(())
}

fn total_records(c: &Count) -> String {
    thousands(c.records)
}

fn total_bytes(c: &Count) -> String {
    bytes(c.bytes)
}
