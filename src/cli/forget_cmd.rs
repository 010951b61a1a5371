//! `sophon backup forget` and `sophon backup prune`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;

use sophon::forget::{self, ForgetPlan, Selection};
use sophon::gateway::Settings;
use sophon::prune::{self, PlannedPack, PruneOptions, PrunePlan};
use sophon::retention::{Policy, Within};
use sophon::units::{Limit, Percent};
use sophon::{Repository, Session};

use super::output::{bytes, json, line};
use super::{RepoArgs, UsageError};

#[derive(Args, Debug, Default)]
pub struct PolicyArgs {
    /// Keep the N newest snapshots.
    #[arg(long, value_name = "N")]
    pub keep_last: Option<u32>,
    /// Keep the newest snapshot of each of the N newest hours that have one.
    #[arg(long, value_name = "N")]
    pub keep_hourly: Option<u32>,
    /// … of each of the N newest days that have one.
    #[arg(long, value_name = "N")]
    pub keep_daily: Option<u32>,
    /// … of each of the N newest ISO weeks that have one.
    #[arg(long, value_name = "N")]
    pub keep_weekly: Option<u32>,
    /// … of each of the N newest months that have one.
    #[arg(long, value_name = "N")]
    pub keep_monthly: Option<u32>,
    /// … of each of the N newest years that have one.
    #[arg(long, value_name = "N")]
    pub keep_yearly: Option<u32>,
    /// Keep every snapshot newer than the newest one minus this duration (e.g. 1y2m3d4h).
    #[arg(long, value_name = "DURATION")]
    pub keep_within: Option<String>,
    /// Keep snapshots that carry these tags (all of them: a,b); repeat for alternatives.
    #[arg(long = "keep-tag", value_name = "T[,T…]")]
    pub keep_tags: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ForgetArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    /// The gateway home whose config gives the default policy (Sophon:Backups:Default:Lifecycle)
    /// and, without --repo, the repository.
    #[arg(long, env = "SOPHON_HOME", value_name = "DIR")]
    pub home: Option<PathBuf>,
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// Look only at snapshots carrying these tags (all of them: a,b); repeat for alternatives. A
    /// scheduled job passes its own tag (cron:TENANT/NAME), so its retention never touches a
    /// snapshot taken by hand or by another job.
    #[arg(long = "tag", value_name = "T[,T…]", conflicts_with = "dest")]
    pub tags: Vec<String>,
    /// Apply the policy to the export archives at this destination (a folder or URL) instead of a
    /// repository's snapshots.
    #[arg(long, value_name = "URL", conflicts_with = "prune")]
    pub dest: Option<String>,
    /// Run prune afterwards.
    #[arg(long)]
    pub prune: bool,
    /// List what would be kept and removed, with the rule that keeps each; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub prune_opts: PruneFlags,
    #[arg(long)]
    pub json: bool,
    /// Print only the summary, not every snapshot.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Args, Debug, Default, Clone)]
pub struct PruneFlags {
    /// Unused space to tolerate after the prune, in percent of the repository (default 5): the most
    /// wasteful packs are repacked until the rest is under it.
    #[arg(long, value_name = "PERCENT")]
    pub max_unused: Option<Percent>,
    /// Repack at most this much per run (e.g. 500M, 2G; K, M, G, T are powers of 1024; default unlimited).
    #[arg(long, value_name = "SIZE")]
    pub max_repack: Option<Limit>,
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    /// The gateway home whose repository to prune (without --repo).
    #[arg(long, env = "SOPHON_HOME", value_name = "DIR")]
    pub home: Option<PathBuf>,
    #[command(flatten)]
    pub flags: PruneFlags,
    /// Show the plan and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[arg(long)]
    pub json: bool,
    /// No plan or progress, only errors.
    #[arg(long, short)]
    pub quiet: bool,
}

/// `a,b` lists, empty items dropped (the form of --keep-tag and --tag).
fn tag_lists(flags: &[String]) -> Vec<Vec<String>> {
    flags
        .iter()
        .map(|t| t.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect())
        .filter(|l: &Vec<String>| !l.is_empty())
        .collect()
}

impl PolicyArgs {
    fn given(&self) -> bool {
        self.keep_last.is_some()
            || self.keep_hourly.is_some()
            || self.keep_daily.is_some()
            || self.keep_weekly.is_some()
            || self.keep_monthly.is_some()
            || self.keep_yearly.is_some()
            || self.keep_within.is_some()
            || !self.keep_tags.is_empty()
    }

    /// The policy from the flags; without any, the gateway's Lifecycle, else the product's default
    /// (7 daily, 4 weekly, 12 monthly).
    pub fn resolve(&self, home: Option<&Path>) -> anyhow::Result<(Policy, String)> {
        if self.given() {
            let within = match &self.keep_within {
                Some(w) => Some(w.parse::<Within>().map_err(|e| UsageError(format!("--keep-within: {e}")))?),
                None => None,
            };
            let policy = Policy {
                last: self.keep_last.unwrap_or(0),
                hourly: self.keep_hourly.unwrap_or(0),
                daily: self.keep_daily.unwrap_or(0),
                weekly: self.keep_weekly.unwrap_or(0),
                monthly: self.keep_monthly.unwrap_or(0),
                yearly: self.keep_yearly.unwrap_or(0),
                within,
                tags: tag_lists(&self.keep_tags),
            };
            if policy.is_empty() {
                return Err(UsageError("every --keep-* given is zero: that would remove every snapshot".into()).into());
            }
            return Ok((policy, "the command line".into()));
        }
        if let Some(home) = home {
            if let Some(policy) = Settings::load(home)?.lifecycle() {
                return Ok((policy, format!("{}'s Sophon:Backups:Default:Lifecycle", home.display())));
            }
        }
        Ok((Policy::product_default(), "the default lifecycle".into()))
    }
}

impl PruneFlags {
    pub fn options(&self) -> anyhow::Result<PruneOptions> {
        let mut o = PruneOptions::default();
        if let Some(p) = self.max_unused {
            o.max_unused_percent = p.get();
        }
        if let Some(limit) = self.max_repack {
            o.max_repack_bytes = limit.bytes();
        }
        Ok(o)
    }
}

/// The repository: --repo, else the gateway's (config's Repository, else `<home>/backups/repository`).
fn open_repo(args: &RepoArgs, home: Option<&Path>) -> anyhow::Result<Arc<Repository>> {
    if args.repo.is_some() {
        return args.open();
    }
    let Some(home) = home else { return args.open() };
    args.with_home(&Settings::load(home)?).open()
}

pub fn forget(a: ForgetArgs) -> anyhow::Result<u8> {
    let (policy, from) = a.policy.resolve(a.home.as_deref())?;
    if let Some(dest) = &a.dest {
        let args =
            super::archive_retention::ArchiveForget { repo: &a.repo, dry_run: a.dry_run, json: a.json, quiet: a.quiet };
        return super::archive_retention::forget_archives(&args, dest, &policy, &from);
    }
    let repo = open_repo(&a.repo, a.home.as_deref())?;
    let session = Session::shared(Arc::clone(&repo), "forget")?;
    let selection = Selection { tags: tag_lists(&a.tags) };
    let plan = forget::plan(&session, &policy, &selection)?;
    if !a.json {
        print_forget_plan(&plan, &from, a.dry_run, a.quiet)?;
    }
    let mut removed = 0;
    if !a.dry_run {
        removed = forget::execute(&session, &plan, &mut |_| {})?;
    }
    // The prune after it must not wait for this process's own shared lock.
    drop(session);
    let (pruned, prune_error) = if a.prune && !a.dry_run {
        let opts = a.prune_opts.options()?;
        match run_prune(&repo, &opts, false, a.json, a.quiet) {
            Ok(v) => (Some(v), None),
            // The snapshots are gone either way: say so before the prune's error.
            Err(e) => (None, Some(e)),
        }
    } else {
        (None, None)
    };
    if a.json {
        json(&serde_json::json!({
            "policy": plan.policy,
            "policy_from": from,
            "selection": plan.selection,
            "dry_run": a.dry_run,
            "groups": plan.groups,
            "kept": plan.kept(),
            "removed": if a.dry_run { plan.to_remove().count() } else { removed },
            "unreadable": plan.unreadable,
            "prune": pruned,
            "prune_error": prune_error.as_ref().map(|e| format!("{e:#}")),
        }))?;
    } else if !a.dry_run {
        line(format!("removed {removed} snapshot(s), kept {}", plan.kept()))?;
    }
    match prune_error {
        Some(e) => Err(e.context("the snapshots were forgotten, but the prune after it failed")),
        None => Ok(super::exit::OK),
    }
}

fn print_forget_plan(plan: &ForgetPlan, from: &str, dry_run: bool, quiet: bool) -> std::io::Result<()> {
    line(format!("policy ({from}): {}", plan.policy.describe()))?;
    if !plan.selection.tags.is_empty() {
        let lists: Vec<String> = plan.selection.tags.iter().map(|l| l.join(",")).collect();
        line(format!("only snapshots tagged {}", lists.join(" or ")))?;
    }
    for g in &plan.groups {
        let keep = g.snapshots.iter().filter(|s| s.keep).count();
        line(format!("group {}: keep {keep}, remove {}", g.key.describe(), g.snapshots.len() - keep))?;
        if quiet {
            continue;
        }
        for s in g.snapshots.iter().rev() {
            let verdict = if s.keep {
                "keep  "
            } else if dry_run {
                "would remove"
            } else {
                "remove"
            };
            let tags = if s.tags.is_empty() { String::new() } else { format!(" [{}]", s.tags.join(",")) };
            line(format!("  {verdict} {} {}{tags}  {}", s.id.short(), s.time, s.reasons.join(", ")))?;
        }
    }
    for u in &plan.unreadable {
        eprintln!("warning: left alone: {u}");
    }
    Ok(())
}

pub fn prune_cmd(a: PruneArgs) -> anyhow::Result<u8> {
    let repo = open_repo(&a.repo, a.home.as_deref())?;
    let opts = a.flags.options()?;
    let out = run_prune(&repo, &opts, a.dry_run, a.json, a.quiet)?;
    if a.json {
        json(&out)?;
    }
    Ok(super::exit::OK)
}

/// A prune's plan and, unless it was a dry run, its outcome: what `--json` prints. The plan's
/// lists of packs stay in the index cache (at 100M blobs a plan may repack 390,000 packs) and are
/// read out only for `--json`.
#[derive(serde::Serialize)]
struct PruneReport {
    plan: PlanReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    outcome: Option<prune::PruneOutcome>,
    dry_run: bool,
}

#[derive(serde::Serialize)]
struct PlanReport {
    #[serde(flatten)]
    plan: PrunePlan,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    lists: Option<PlanLists>,
}

#[derive(serde::Serialize)]
struct PlanLists {
    delete: Vec<PlannedPack>,
    repack: Vec<PlannedPack>,
    unindexed: Vec<PlannedPack>,
    unrecorded: Vec<PlannedPack>,
}

/// Plan, show, and (unless a dry run) execute a prune; `json`: the report lists every pack.
fn run_prune(
    repo: &Arc<Repository>,
    opts: &PruneOptions,
    dry_run: bool,
    json: bool,
    quiet: bool,
) -> anyhow::Result<PruneReport> {
    let quiet = quiet || json;
    let session = Session::prune(Arc::clone(repo))?;
    let mut progress = |s: &str| {
        if !quiet {
            eprintln!("prune: {s}");
        }
    };
    let plan = prune::plan(&session, opts, &mut progress)?;
    if !quiet {
        print_prune_plan(&plan)?;
    }
    let lists = if json {
        let list = |l| prune::packs(&session, &plan, l);
        Some(PlanLists {
            delete: list(&plan.delete)?,
            repack: list(&plan.repack)?,
            unindexed: list(&plan.unindexed)?,
            unrecorded: list(&plan.unrecorded)?,
        })
    } else {
        None
    };
    if dry_run {
        return Ok(PruneReport { plan: PlanReport { plan, lists }, outcome: None, dry_run: true });
    }
    let outcome = prune::execute(&session, &plan, &mut progress)?;
    if !quiet {
        line(format!(
            "prune: wrote {} pack(s) ({}), deleted {} pack(s) ({})",
            outcome.packs_written,
            bytes(outcome.bytes_written),
            outcome.packs_deleted,
            bytes(outcome.bytes_deleted)
        ))?;
        if outcome.packs_deferred > 0 {
            line(format!(
                "prune: {} pack(s) ({}) are out of the index and will be deleted by the next prune, once the \
                 clients that were running have finished",
                outcome.packs_deferred,
                bytes(outcome.bytes_deferred)
            ))?;
        }
    }
    Ok(PruneReport { plan: PlanReport { plan, lists }, outcome: Some(outcome), dry_run: false })
}

fn print_prune_plan(p: &PrunePlan) -> std::io::Result<()> {
    let sum = |v: &[prune::PlannedPack]| v.iter().map(|x| x.size).sum::<u64>();
    line(format!("prune plan: {} snapshot(s); {} pack(s), {}", p.snapshots, p.packs, bytes(p.bytes)))?;
    line(format!("  delete   {:>6} unused pack(s)        {}", p.delete.len(), bytes(p.delete.bytes)))?;
    line(format!(
        "  repack   {:>6} pack(s)               {} (copying {} still used)",
        p.repack.len(),
        bytes(p.bytes_to_repack),
        bytes(p.bytes_repacked)
    ))?;
    if !p.unindexed.is_empty() {
        line(format!("  delete   {:>6} unindexed pack(s)     {}", p.unindexed.len(), bytes(p.unindexed.bytes)))?;
    }
    if !p.unrecorded.is_empty() {
        let n = p.unrecorded.len();
        line(format!("  delete   {n:>6} condemned pack(s) no prune record names (an interrupted prune's)"))?;
    }
    if !p.resurrect.is_empty() {
        line(format!("  index    {:>6} pack(s) a snapshot uses again", p.resurrect.len()))?;
    }
    if !p.vanished.is_empty() {
        line(format!("  unindex  {:>6} pack(s) already gone", p.vanished.len()))?;
    }
    for (id, packs) in &p.ripe {
        line(format!(
            "  finish   earlier prune {}: delete {} pack(s), {}",
            id.short(),
            packs.len(),
            bytes(sum(packs))
        ))?;
    }
    if !p.waiting.is_empty() {
        line(format!("  wait     {} earlier prune(s) still wait for clients that were running", p.waiting.len()))?;
    }
    if p.consolidate_index {
        line(format!("  index    {:>6} segment(s) rewritten as few (nothing else changes)", p.index_segments))?;
    }
    line(format!("  keep     {:>6} pack(s)               {}", p.keep_packs, bytes(p.keep_bytes)))?;
    line(format!(
        "  to free  {}",
        bytes(p.bytes_to_delete + p.bytes_to_repack - p.bytes_repacked.min(p.bytes_to_repack))
    ))?;
    Ok(())
}
