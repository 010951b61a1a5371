//! The demo's integrations (webhooks, connections, channels, nodes) and its activity history (cron
//! runs, discussions, insights, tasks, approvals, the audit log). Each category (and tenant) draws
//! from its own random stream, as in `records.rs`.

use rusqlite::{params, Transaction};
use serde_json::{json, Value};

use super::records::{insert, sentence_string, slug};
use super::rng::{split, ts, Rng, DAY, HOUR, MINUTE, NOW};
use super::words::{paragraph_string, CUSTOMERS, TOPICS};
use super::{Gen, Tenant, User};
use crate::gateway::GatewayResult;

struct CronTemplate {
    name: &'static str,
    schedule: &'static str,
    /// Hours between runs, the first run's hour of day, and whether only weekdays run.
    every_hours: i64,
    hour: i64,
    weekdays: bool,
    action: &'static str,
}

const CRON: &[CronTemplate] = &[
    CronTemplate {
        name: "agent-heartbeat",
        schedule: "0 * * * *",
        every_hours: 1,
        hour: 0,
        weekdays: false,
        action: "agent",
    },
    CronTemplate {
        name: "morning-briefing",
        schedule: "0 8 * * 1-5",
        every_hours: 24,
        hour: 8,
        weekdays: true,
        action: "agent",
    },
    CronTemplate {
        name: "kpi-digest",
        schedule: "0 9 * * 1",
        every_hours: 168,
        hour: 9,
        weekdays: false,
        action: "workflow",
    },
    CronTemplate {
        name: "crm-sync",
        schedule: "0 */6 * * *",
        every_hours: 6,
        hour: 0,
        weekdays: false,
        action: "custom",
    },
    // The gateway's own work (an agent compacts the memory), not a command sophon has.
    CronTemplate {
        name: "memory-compaction",
        schedule: "30 2 * * *",
        every_hours: 24,
        hour: 2,
        weekdays: false,
        action: "agent",
    },
    CronTemplate {
        name: "invoice-inbox",
        schedule: "15 7 * * *",
        every_hours: 24,
        hour: 7,
        weekdays: false,
        action: "workflow",
    },
    CronTemplate {
        name: "stale-task-reminder",
        schedule: "0 16 * * 5",
        every_hours: 168,
        hour: 16,
        weekdays: false,
        action: "agent",
    },
];

const CRON_FAILURES: &[&str] = &[
    "exit 1: s3: connection reset by peer",
    "exit 1: upstream returned 503 Service Unavailable",
    "exit 2: lock held by another process",
    "agent error: model rate limit exceeded (429)",
    "exit 1: certificate has expired",
];

pub(super) fn cron(g: &mut Gen, tx: &Transaction) -> GatewayResult<()> {
    let db = g.db.clone();
    for (k, t) in g.tenants.iter().enumerate() {
        let mut rng = Rng::new(g.seed, &format!("cron/{}", t.id));
        let extra = rng.range(g.plan.cron_jobs.0, g.plan.cron_jobs.1).saturating_sub(1).min(CRON.len() as u64) as usize;
        let offset = rng.below(CRON.len() as u64) as usize;
        let backup = CronTemplate {
            name: "nightly-backup",
            schedule: "0 3 * * *",
            every_hours: 24,
            hour: 3,
            weekdays: false,
            action: "backup",
        };
        let mut jobs: Vec<&CronTemplate> = vec![&backup];
        jobs.extend((0..extra).map(|k| &CRON[(offset + k) % CRON.len()]));
        let mut backup_bytes = rng.range(2 << 30, 40 << 30);
        for job in jobs {
            let id = rng.id("cron");
            let command = match job.name {
                // `sophon cron`'s backup action: the arguments of `backup create` (format-spec/gateway.md
                // §3.4). The first tenant is the default one, whose job backs up the whole gateway.
                "nightly-backup" if k == 0 => "[]".to_string(),
                "nightly-backup" => json!(["--tenant", t.id]).to_string(),
                "crm-sync" => format!(
                    "curl -fsS -X POST -H 'Authorization: Bearer sk_live_{}' https://crm.{}/api/v1/sync",
                    rng.alnum(32),
                    t.domain
                ),
                "memory-compaction" => match t.agents.first() {
                    Some(a) => format!("agent:{} Compact the memory entries older than 90 days.", a.id),
                    None => "agent:none Compact the memory entries older than 90 days.".to_string(),
                },
                _ if job.action == "workflow" => match t.workflows.first() {
                    Some(_) => format!("workflow:{}", rng.pick(&t.workflows).0),
                    None => "workflow:none".to_string(),
                },
                _ => format!("agent:{} {}", rng.pick(&t.agents).id, sentence_string(&mut rng)),
            };
            // The CRM sync calls a server the demo does not have: kept (with its history and the
            // token in its command) but disabled, so the demo's enabled jobs all succeed when run.
            let enabled = job.name == "nightly-backup" || (rng.chance(90) && job.name != "crm-sync");
            let created = NOW - rng.range_i(40 * DAY, 300 * DAY);
            insert(
                tx,
                &db,
                "INSERT INTO cron_jobs VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![id, t.id, job.name, job.schedule, job.action, command, enabled, ts(created)],
            )?;
            let until = if enabled { NOW } else { NOW - rng.range_i(3 * DAY, 20 * DAY) };
            let start_day = (NOW - 28 * DAY) / DAY * DAY;
            let mut at = start_day + job.hour * HOUR;
            while at < until {
                let weekday = (at / DAY + 4) % 7; // 0 = Sunday
                if !(job.weekdays && (weekday == 0 || weekday == 6)) {
                    let started = at + rng.range_i(0, 20);
                    let (status, summary, took) = match rng.weighted(&[92, 5, 1, 2]) {
                        0 => {
                            let summary = if job.name == "nightly-backup" {
                                backup_bytes += rng.range(0, 300 << 20);
                                format!(
                                    "snapshot {} saved: {} files, {:.2} GiB processed, {:.1} MiB added",
                                    rng.hex(8),
                                    backup_bytes / 180_000,
                                    backup_bytes as f64 / (1u64 << 30) as f64,
                                    rng.range(20, 900) as f64 / 3.0
                                )
                            } else {
                                format!("ok: {} items processed", rng.range(0, 500))
                            };
                            ("ok", summary, rng.range_i(2, 15 * MINUTE))
                        }
                        1 => ("failed", rng.pick(CRON_FAILURES).to_string(), rng.range_i(1, 120)),
                        2 => ("timeout", "killed after 30m".to_string(), 30 * MINUTE),
                        _ => ("skipped", "previous run still active".to_string(), 0),
                    };
                    insert(
                        tx,
                        &db,
                        "INSERT INTO cron_runs (job_id, tenant_id, started_at, finished_at, status, summary) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                        params![id, t.id, ts(started), ts(started + took), status, summary],
                    )?;
                }
                at += job.every_hours * HOUR;
            }
        }
    }
    Ok(())
}

const WEBHOOK_EVENTS: &[&str] = &[
    "task.created",
    "task.completed",
    "approval.requested",
    "approval.decided",
    "workflow.completed",
    "workflow.failed",
    "document.uploaded",
    "agent.error",
];

pub(super) fn webhooks(g: &mut Gen, tx: &Transaction) -> GatewayResult<()> {
    let db = g.db.clone();
    for t in &g.tenants {
        let mut rng = Rng::new(g.seed, &format!("webhooks/{}", t.id));
        for _ in 0..rng.range(g.plan.webhooks.0, g.plan.webhooks.1) {
            let url = match rng.below(3) {
                0 => format!("https://hooks.{}/sophon/{}", t.domain, rng.hex(12)),
                1 => format!("https://api.{}.example/webhooks/sophon", slug(rng.word(CUSTOMERS))),
                _ => format!("https://hooks.zapier.com/hooks/catch/{}/{}/", rng.digits(8), rng.alnum(7).to_lowercase()),
            };
            let mut events: Vec<&str> = WEBHOOK_EVENTS.iter().copied().filter(|_| rng.chance(40)).collect();
            if events.is_empty() {
                events.push(WEBHOOK_EVENTS[0]);
            }
            let secret = format!("whsec_{}", rng.b64(24));
            let at = rng.range_i(t.created_at, NOW - DAY);
            insert(
                tx,
                &db,
                "INSERT INTO webhooks VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![rng.id("whk"), t.id, url, json!(events).to_string(), secret, rng.chance(90), ts(at)],
            )?;
        }
    }
    Ok(())
}

/// (provider, scopes)
const PROVIDERS: &[(&str, &str)] = &[
    ("github", "repo read:org workflow"),
    (
        "google",
        "https://www.googleapis.com/auth/calendar.readonly https://www.googleapis.com/auth/drive.readonly openid email",
    ),
    ("slack", "channels:read chat:write users:read"),
    ("microsoft", "offline_access Mail.Read Calendars.ReadWrite Files.Read.All"),
    ("notion", "read_content update_content"),
    ("atlassian", "read:jira-work write:jira-work offline_access"),
    ("salesforce", "api refresh_token"),
    ("hubspot", "crm.objects.contacts.read crm.objects.deals.read"),
];

fn tokens(rng: &mut Rng, provider: &str) -> (String, Option<String>) {
    match provider {
        "github" => (format!("gho_{}", rng.alnum(36)), Some(format!("ghr_{}", rng.alnum(76)))),
        "google" => (format!("ya29.a0{}", rng.b64url(120)), Some(format!("1//0{}", rng.b64url(72)))),
        "slack" => (
            format!("xoxp-{}-{}-{}-{}", rng.digits(12), rng.digits(12), rng.digits(13), rng.hex(32)),
            Some(format!("xoxe-1-{}", rng.alnum(120))),
        ),
        "microsoft" => (format!("EwB{}", rng.b64url(360)), Some(format!("M.C5_BAY.{}", rng.b64url(240)))),
        "notion" => (format!("ntn_{}{}", rng.digits(11), rng.alnum(35)), None),
        "atlassian" => (format!("ATATT3xFfGF0{}", rng.alnum(180)), Some(rng.b64url(96))),
        "salesforce" => {
            (format!("00D{}!{}", rng.upper_alnum(15), rng.b64url(72)), Some(format!("5Aep861{}", rng.alnum(80))))
        }
        _ => (format!("pat-eu1-{}", rng.uuid()), None),
    }
}

pub(super) fn connections(g: &mut Gen, tx: &Transaction) -> GatewayResult<()> {
    let db = g.db.clone();
    for t in &g.tenants {
        let mut rng = Rng::new(g.seed, &format!("connections/{}", t.id));
        let n = rng.range(g.plan.connections.0, g.plan.connections.1) as usize;
        let offset = rng.below(PROVIDERS.len() as u64) as usize;
        for k in 0..n {
            let (provider, scopes) = PROVIDERS[(offset + k) % PROVIDERS.len()];
            let u = rng.pick(&t.users).clone();
            let account = match provider {
                "github" => format!("{}-{}", t.id, u.name.split(' ').next().unwrap_or("bot").to_lowercase()),
                "slack" => format!("T0{}", rng.upper_alnum(9)),
                _ => u.email.clone(),
            };
            let (auth, refresh) = tokens(&mut rng, provider);
            let expires = if refresh.is_some() { Some(ts(NOW + rng.range_i(-3 * DAY, DAY))) } else { None };
            let at = rng.range_i(t.created_at, NOW - DAY);
            insert(
                tx,
                &db,
                "INSERT INTO connections VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![rng.id("con"), t.id, provider, account, auth, refresh, scopes, expires, ts(at)],
            )?;
        }
    }
    Ok(())
}

fn channel_config(rng: &mut Rng, t: &Tenant, kind: &str) -> Value {
    match kind {
        "slack" => json!({
            "team_id": format!("T0{}", rng.upper_alnum(9)),
            "app_id": format!("A0{}", rng.upper_alnum(9)),
            "bot_token": format!("xoxb-{}-{}-{}", rng.digits(12), rng.digits(13), rng.alnum(24)),
            "signing_secret": rng.hex(32),
            "default_channel": *rng.pick(&["#ops", "#general", "#support", "#ai-agents"]),
        }),
        "telegram" => json!({
            "bot_token": format!("{}:AA{}", rng.digits(10), rng.alnum(33)),
            "chat_id": format!("-100{}", rng.digits(10)),
            "parse_mode": "MarkdownV2",
        }),
        "discord" => json!({
            "application_id": rng.digits(18),
            "bot_token": format!("MT{}.{}.{}", rng.b64url(22), rng.b64url(5), rng.b64url(27)),
            "guild_id": rng.digits(18),
        }),
        "teams" => json!({
            "app_id": rng.uuid(),
            "tenant_id": rng.uuid(),
            "app_password": format!("{}8Q~{}", rng.alnum(3), rng.alnum(34)),
        }),
        "email" => json!({
            "smtp_host": format!("smtp.{}", t.domain),
            "smtp_port": 587,
            "smtp_user": format!("agents@{}", t.domain),
            "smtp_password": rng.alnum(24),
            "from": format!("Sophon <agents@{}>", t.domain),
        }),
        _ => json!({
            "allowed_origins": [format!("https://{}", t.domain), format!("https://app.{}", t.domain)],
            "widget_theme": *rng.pick(&["light", "dark"]),
        }),
    }
}

pub(super) fn channels(g: &mut Gen, tx: &Transaction) -> GatewayResult<()> {
    let db = g.db.clone();
    const KINDS: &[&str] = &["telegram", "discord", "teams", "email", "web"];
    for t in &g.tenants {
        let mut rng = Rng::new(g.seed, &format!("channels/{}", t.id));
        let n = rng.range(g.plan.channels.0, g.plan.channels.1) as usize;
        let offset = rng.below(KINDS.len() as u64) as usize;
        let kinds = std::iter::once("slack").chain((0..n.saturating_sub(1)).map(|k| KINDS[(offset + k) % KINDS.len()]));
        for (k, kind) in kinds.enumerate() {
            let name = if k < KINDS.len() + 1 { format!("{kind}-main") } else { format!("{kind}-{k}") };
            let config = channel_config(&mut rng, t, kind);
            let at = rng.range_i(t.created_at, NOW - DAY);
            insert(
                tx,
                &db,
                "INSERT INTO channels VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![rng.id("chn"), t.id, kind, name, config.to_string(), ts(at)],
            )?;
        }
    }
    Ok(())
}

pub(super) fn nodes(g: &mut Gen, tx: &Transaction) -> GatewayResult<()> {
    let db = g.db.clone();
    for t in &g.tenants {
        let mut rng = Rng::new(g.seed, &format!("nodes/{}", t.id));
        for k in 0..rng.range(g.plan.nodes.0, g.plan.nodes.1) {
            let first = rng.pick(&t.users).name.split(' ').next().unwrap_or("ops").to_lowercase();
            let (name, platform) = match rng.below(4) {
                0 => (format!("build-mac-mini-{k}"), "macos"),
                1 => (format!("{first}-laptop"), *rng.pick(&["macos", "windows", "linux"])),
                2 => (format!("lab-pi-{k}"), "linux"),
                _ => (format!("edge-gateway-{k}"), "linux"),
            };
            let paired = rng.range_i(t.created_at, NOW - 2 * DAY);
            let seen = if rng.chance(85) { Some(ts(NOW - rng.range_i(MINUTE, 5 * DAY))) } else { None };
            insert(
                tx,
                &db,
                "INSERT INTO nodes VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![rng.id("node"), t.id, name, platform, ts(paired), seen, format!("snp_{}", rng.alnum(40))],
            )?;
        }
    }
    Ok(())
}

fn agent_or_user(rng: &mut Rng, t: &Tenant) -> String {
    if rng.chance(40) {
        format!("agent:{}", rng.pick(&t.agents).id)
    } else {
        rng.pick(&t.users).email.clone()
    }
}

pub(super) fn discussions(g: &mut Gen, tx: &Transaction) -> GatewayResult<()> {
    let db = g.db.clone();
    let counts = split(g.plan.discussions, &g.weights());
    for (t, n) in g.tenants.iter().zip(counts) {
        let mut rng = Rng::new(g.seed, &format!("discussions/{}", t.id));
        for _ in 0..n {
            let topic = *rng.pick(TOPICS);
            let customer = *rng.pick(CUSTOMERS);
            let title = match rng.below(4) {
                0 => format!("{topic} issue for {customer}"),
                1 => format!("Q{} planning: {topic}", rng.range(1, 4)),
                2 => format!("Postmortem: {topic} outage"),
                _ => format!("How should agents handle {topic}?"),
            };
            let id = rng.id("dsc");
            let agent = if rng.chance(80) { Some(rng.pick(&t.agents).id.clone()) } else { None };
            let starter = rng.pick(&t.users).email.clone();
            let created = NOW - rng.range_i(DAY, 180 * DAY);
            let mut at = created;
            let mut messages = Vec::new();
            for _ in 0..rng.range(3, 14) {
                at += rng.range_i(MINUTE, 2 * DAY);
                let author = agent_or_user(&mut rng, t);
                messages.push((rng.id("msg"), ts(at.min(NOW)), author, paragraph_string(&mut rng)));
            }
            let status = ["open", "resolved", "archived"][rng.weighted(&[30, 55, 15])];
            insert(
                tx,
                &db,
                "INSERT INTO discussions VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![id, t.id, title, agent, starter, status, ts(created), ts(at.min(NOW))],
            )?;
            for (mid, mat, author, body) in messages {
                insert(
                    tx,
                    &db,
                    "INSERT INTO discussion_messages VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![mid, id, t.id, mat, author, body],
                )?;
            }
        }
    }
    Ok(())
}

pub(super) fn insights(g: &mut Gen, tx: &Transaction) -> GatewayResult<()> {
    let db = g.db.clone();
    let counts = split(g.plan.insights, &g.weights());
    for (t, n) in g.tenants.iter().zip(counts) {
        let mut rng = Rng::new(g.seed, &format!("insights/{}", t.id));
        for _ in 0..n {
            let kind = *rng.pick(&["anomaly", "trend", "recommendation", "summary"]);
            let topic = *rng.pick(TOPICS);
            let title = match kind {
                "anomaly" => format!("Unusual spike in {topic} tickets ({}% above baseline)", rng.range(20, 300)),
                "trend" => {
                    format!("{topic} mentions {} {}% month over month", rng.pick(&["up", "down"]), rng.range(5, 80))
                }
                "recommendation" => format!("Add a workflow step for {topic} triage"),
                _ => format!("Weekly digest: {topic}"),
            };
            let agent = if rng.chance(90) { Some(rng.pick(&t.agents).id.clone()) } else { None };
            let status = ["new", "acknowledged", "dismissed"][rng.weighted(&[35, 45, 20])];
            let at = NOW - rng.range_i(HOUR, 120 * DAY);
            insert(
                tx,
                &db,
                "INSERT INTO insights VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    rng.id("ins"),
                    t.id,
                    agent,
                    kind,
                    title,
                    paragraph_string(&mut rng),
                    rng.range(0, 100) as i64,
                    status,
                    ts(at)
                ],
            )?;
        }
    }
    Ok(())
}

pub(super) fn tasks(g: &mut Gen, tx: &Transaction) -> GatewayResult<()> {
    let db = g.db.clone();
    let counts = split(g.plan.tasks, &g.weights());
    for (t, n) in g.tenants.iter().zip(counts) {
        let mut rng = Rng::new(g.seed, &format!("tasks/{}", t.id));
        for _ in 0..n {
            let id = rng.id("tsk");
            let title = format!(
                "{} {} about {}",
                rng.pick(&["Follow up with", "Prepare a summary for", "Review the contract of", "Call"]),
                rng.pick(CUSTOMERS),
                rng.pick(TOPICS)
            );
            let creator = agent_or_user(&mut rng, t);
            let assignee = if rng.chance(85) { Some(agent_or_user(&mut rng, t)) } else { None };
            let status = ["todo", "in_progress", "blocked", "done", "cancelled"][rng.weighted(&[20, 20, 5, 50, 5])];
            let priority = ["low", "normal", "high", "urgent"][rng.weighted(&[20, 55, 20, 5])];
            let created = NOW - rng.range_i(HOUR, 150 * DAY);
            let due = if rng.chance(60) { Some(ts(created + rng.range_i(DAY, 30 * DAY))) } else { None };
            let mut at = created;
            let mut events = vec![("created", creator.clone(), json!({ "title": title }))];
            if let Some(a) = &assignee {
                events.push(("assigned", creator.clone(), json!({ "assignee": a })));
            }
            if status != "todo" {
                events.push(("status_changed", creator.clone(), json!({ "from": "todo", "to": "in_progress" })));
            }
            if rng.chance(40) {
                events.push(("commented", agent_or_user(&mut rng, t), json!({ "text": sentence_string(&mut rng) })));
            }
            if status != "todo" && status != "in_progress" {
                let by = assignee.clone().unwrap_or_else(|| creator.clone());
                events.push(("status_changed", by, json!({ "from": "in_progress", "to": status })));
            }
            let mut rows = Vec::new();
            for (event, actor, detail) in events {
                at += rng.range_i(MINUTE, 3 * DAY);
                rows.push((rng.id("tev"), ts(at.min(NOW)), actor, event, detail.to_string()));
            }
            insert(
                tx,
                &db,
                "INSERT INTO tasks VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    id,
                    t.id,
                    title,
                    paragraph_string(&mut rng),
                    assignee,
                    status,
                    priority,
                    due,
                    ts(created),
                    ts(at.min(NOW))
                ],
            )?;
            for (eid, eat, actor, event, detail) in rows {
                insert(
                    tx,
                    &db,
                    "INSERT INTO task_events VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![eid, id, t.id, eat, actor, event, detail],
                )?;
            }
        }
    }
    Ok(())
}

pub(super) fn approvals(g: &mut Gen, tx: &Transaction) -> GatewayResult<()> {
    let db = g.db.clone();
    let counts = split(g.plan.approvals, &g.weights());
    for (t, n) in g.tenants.iter().zip(counts) {
        let mut rng = Rng::new(g.seed, &format!("approvals/{}", t.id));
        let approvers: Vec<&User> = t.users.iter().filter(|u| u.admin).collect();
        for _ in 0..n {
            let kind = *rng.pick(&["workflow.publish", "payment", "access.grant", "data.export", "agent.tool_use"]);
            let subject = match kind {
                "workflow.publish" => match t.workflows.first() {
                    Some(_) => format!("Publish workflow '{}' v{}", rng.pick(&t.workflows).1, rng.range(2, 9)),
                    None => "Publish a workflow".to_string(),
                },
                "payment" => format!(
                    "Pay invoice INV-2025-{:04} to {} (EUR {}.{:02})",
                    rng.range(1, 9999),
                    rng.pick(CUSTOMERS),
                    rng.range(100, 90_000),
                    rng.range(0, 99)
                ),
                "access.grant" => format!("Grant the admin role to {}", rng.pick(&t.users).email),
                "data.export" => format!("Export the contact list of {}", rng.pick(CUSTOMERS)),
                _ => format!("Let {} use shell.exec", rng.pick(&t.agents).name),
            };
            let requested_by = agent_or_user(&mut rng, t);
            let status = ["pending", "approved", "rejected", "expired"][rng.weighted(&[15, 65, 15, 5])];
            let requested = NOW - rng.range_i(HOUR, 120 * DAY);
            let (approver, decided, comment) = match status {
                "pending" | "expired" => (None, None, None),
                _ => {
                    let who = approvers.first().map(|_| rng.pick(&approvers).email.clone());
                    let comment = if rng.chance(50) { Some(sentence_string(&mut rng)) } else { None };
                    (who, Some(ts((requested + rng.range_i(MINUTE, 2 * DAY)).min(NOW))), comment)
                }
            };
            insert(
                tx,
                &db,
                "INSERT INTO approvals VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    rng.id("apr"),
                    t.id,
                    kind,
                    subject,
                    requested_by,
                    approver,
                    status,
                    ts(requested),
                    decided,
                    comment
                ],
            )?;
        }
    }
    Ok(())
}

const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/126.0 Safari/537.36",
    "sophon-cli/0.1.0",
    "SophonNode/2.3 (linux; arm64)",
];

pub(super) fn audit(g: &mut Gen, tx: &Transaction) -> GatewayResult<()> {
    let db = g.db.clone();
    const ACTIONS: &[(&str, u64)] = &[
        ("user.login", 30),
        ("user.login_failed", 4),
        ("memory.write", 15),
        ("document.upload", 6),
        ("workflow.run", 10),
        ("workflow.publish", 2),
        ("agent.update", 2),
        ("cron.run", 10),
        ("webhook.delivery", 8),
        ("approval.decide", 2),
        ("connection.refresh", 4),
        ("settings.update", 1),
        ("backup.create", 1),
        ("user.2fa_enroll", 1),
        ("channel.message", 4),
    ];
    let weights: Vec<u64> = ACTIONS.iter().map(|a| a.1).collect();
    let counts = split(g.plan.audit, &g.weights());
    for (t, n) in g.tenants.iter().zip(counts) {
        let mut rng = Rng::new(g.seed, &format!("audit/{}", t.id));
        for _ in 0..n {
            let action = ACTIONS[rng.weighted(&weights)].0;
            let user = rng.pick(&t.users);
            let agent = rng.pick(&t.agents);
            let ip = if rng.chance(60) {
                format!("10.{}.{}.{}", rng.range(0, 255), rng.range(0, 255), rng.range(1, 254))
            } else {
                format!("{}.{}.{}.{}", rng.range(20, 220), rng.range(0, 255), rng.range(0, 255), rng.range(1, 254))
            };
            let (actor, target, detail) = match action {
                "user.login" | "user.login_failed" | "user.2fa_enroll" => (
                    user.email.clone(),
                    format!("user:{}", user.id),
                    json!({ "ip": ip, "user_agent": *rng.pick(USER_AGENTS), "mfa": rng.chance(70) }),
                ),
                "memory.write" => (
                    format!("agent:{}", agent.id),
                    format!("memory:mem_{:016x}", rng.next_u64()),
                    json!({ "kind": *rng.pick(&["fact", "episode", "summary"]) }),
                ),
                "document.upload" => (
                    user.email.clone(),
                    format!("document:doc_{:016x}", rng.next_u64()),
                    json!({ "ip": ip, "bytes": rng.log_uniform(4096, 200 << 10) }),
                ),
                "workflow.run" | "workflow.publish" => {
                    let wf = match t.workflows.first() {
                        Some(_) => rng.pick(&t.workflows).0.clone(),
                        None => "wf_none".to_string(),
                    };
                    (
                        agent_or_user(&mut rng, t),
                        format!("workflow:{wf}"),
                        json!({ "result": *rng.pick(&["ok", "ok", "ok", "failed"]) }),
                    )
                }
                "cron.run" => ("system".to_string(), format!("cron:{}", rng.hex(8)), json!({ "status": "ok" })),
                "webhook.delivery" => (
                    "system".to_string(),
                    format!("webhook:whk_{:016x}", rng.next_u64()),
                    json!({ "status_code": *rng.pick(&[200, 200, 200, 204, 500, 502]), "attempt": rng.range(1, 3) }),
                ),
                "connection.refresh" => (
                    "system".to_string(),
                    format!("connection:con_{:016x}", rng.next_u64()),
                    json!({ "provider": rng.pick(PROVIDERS).0, "ok": rng.chance(95) }),
                ),
                "channel.message" => (
                    format!("agent:{}", agent.id),
                    format!("channel:{}", rng.pick(&["slack", "telegram", "teams", "email"])),
                    json!({ "chars": rng.range(20, 4000) }),
                ),
                _ => (
                    user.email.clone(),
                    format!("tenant:{}", t.id),
                    json!({ "ip": ip, "section": *rng.pick(&["backups", "sso", "billing", "agents"]) }),
                ),
            };
            let at = NOW - rng.range_i(0, 90 * DAY);
            insert(
                tx,
                &db,
                "INSERT INTO audit_log VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![rng.id("aud"), t.id, ts(at), actor, action, target, detail.to_string()],
            )?;
        }
    }
    Ok(())
}
