//! The demo's database records, category by category. Each category (and tenant) draws from its
//! own random stream.

use std::collections::HashSet;
use std::path::Path;

use rusqlite::{params, Params, Transaction};
use serde_json::{json, Value};

use super::rng::{split, ts, Rng, DAY, HOUR, MINUTE, NOW};
use super::words::{self, paragraph_string, person, sentence, CUSTOMERS, TOPICS};
use super::{Agent, At, Gen, Tenant, User};
use crate::gateway::GatewayResult;

pub(super) fn insert(tx: &Transaction, db: &Path, sql: &str, p: impl Params) -> GatewayResult<()> {
    tx.prepare_cached(sql).at(db)?.execute(p).at(db)?;
    Ok(())
}

pub(super) fn slug(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
}

fn sentence_string(rng: &mut Rng) -> String {
    let mut s = String::new();
    sentence(rng, &mut s);
    s
}

/// An API key of one of the common LLM providers.
pub(super) fn llm_key(rng: &mut Rng, provider: &str) -> Option<String> {
    match provider {
        "openai" => Some(format!("sk-proj-{}T3BlbkFJ{}", rng.alnum(40), rng.alnum(40))),
        "anthropic" => Some(format!("sk-ant-api03-{}-{}AA", rng.b64url(64), rng.alnum(6))),
        "azure-openai" => Some(rng.hex(32)),
        _ => None,
    }
}

pub(super) fn tenants_and_users(g: &mut Gen, tx: &Transaction) -> GatewayResult<()> {
    let db = g.db.clone();
    for &(id, name, tier, weight) in &words::TENANTS[..g.plan.tenants.min(words::TENANTS.len())] {
        let mut rng = g.rng(&format!("tenant/{id}"));
        let created_at = NOW - rng.range_i(400 * DAY, 900 * DAY);
        insert(tx, &db, "INSERT INTO tenants VALUES (?1, ?2, ?3, ?4)", params![id, name, tier, ts(created_at)])?;
        g.tenants.push(Tenant {
            id,
            name,
            tier,
            weight,
            domain: format!("{id}.example.com"),
            created_at,
            users: Vec::new(),
            agents: Vec::new(),
            workflows: Vec::new(),
        });
    }
    let counts = split(g.plan.users, &g.weights());
    for (t, n) in g.tenants.iter_mut().zip(counts) {
        let mut rng = Rng::new(g.seed, &format!("users/{}", t.id));
        let mut emails = HashSet::new();
        for k in 0..n {
            let (first, last) = person(&mut rng);
            let mut email = format!("{}.{}@{}", first.to_lowercase(), last.to_lowercase(), t.domain);
            let mut i = 2;
            while !emails.insert(email.clone()) {
                email = format!("{}.{}{i}@{}", first.to_lowercase(), last.to_lowercase(), t.domain);
                i += 1;
            }
            let roles: Vec<&str> = if k == 0 {
                vec!["owner", "admin"]
            } else {
                match rng.weighted(&[10, 10, 65, 15]) {
                    0 => vec!["admin"],
                    1 => vec!["member", "approver"],
                    2 => vec!["member"],
                    _ => vec!["viewer"],
                }
            };
            let admin = roles.contains(&"admin") || roles.contains(&"owner");
            let password_hash = if rng.chance(80) {
                format!("$argon2id$v=19$m=19456,t=2,p=1${}${}", rng.b64(16), rng.b64(32))
            } else {
                format!("$2b$12${}", rng.alnum(53))
            };
            let totp = if admin || rng.chance(50) { Some(rng.base32(32)) } else { None };
            let created = rng.range_i(t.created_at, NOW - DAY);
            let user = User { id: rng.id("usr"), email, name: format!("{first} {last}"), admin };
            insert(
                tx,
                &db,
                "INSERT INTO users VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    user.id,
                    t.id,
                    user.email,
                    user.name,
                    password_hash,
                    json!(roles).to_string(),
                    totp,
                    ts(created)
                ],
            )?;
            t.users.push(user);
        }
    }
    Ok(())
}

/// The agent's configuration, as stored in `agents.config` and `agents/<id>/config.json`.
/// With `own_key` the agent brings its own LLM API key (a secret); otherwise it refers to the vault.
pub(super) fn agent_config(rng: &mut Rng, tenant: &Tenant, role: &str, own_key: bool) -> Value {
    let &(provider, model) = if own_key { rng.pick(&words::MODELS[..4]) } else { rng.pick(words::MODELS) };
    let mut model_cfg = json!({
        "provider": provider,
        "name": model,
        "temperature": *rng.pick(&[0.0, 0.2, 0.3, 0.5, 0.7]),
        "max_tokens": *rng.pick(&[2048, 4096, 8192]),
    });
    if own_key {
        if let Some(key) = llm_key(rng, provider) {
            model_cfg["api_key"] = json!(key);
        }
    } else if provider != "ollama" {
        model_cfg["api_key_ref"] = json!(format!("secret://{}/llm/{provider}", tenant.id));
    }
    json!({
        "role": role,
        "model": model_cfg,
        "heartbeat": { "enabled": rng.chance(80), "interval_minutes": *rng.pick(&[15, 30, 60]) },
        "memory": { "daily_log": true, "retention_days": *rng.pick(&[90, 180, 365]), "auto_summarize": rng.chance(60) },
        "approval_required_for": ["email.send", "shell.exec", "crm.update"],
        "max_steps": rng.range(8, 40),
        "language": *rng.pick(&["en", "en", "en", "de", "fr", "es"]),
    })
}

pub(super) fn agents(g: &mut Gen, tx: &Transaction) -> GatewayResult<()> {
    let db = g.db.clone();
    let counts = split(g.plan.agents, &g.weights());
    for (ti, &n) in counts.iter().enumerate() {
        let mut rng = g.rng(&format!("agents/{}", g.tenants[ti].id));
        let offset = rng.below(words::AGENTS.len() as u64) as usize;
        let mut made = Vec::new();
        for k in 0..n as usize {
            let (base, role) = words::AGENTS[(offset + k) % words::AGENTS.len()];
            let round = k / words::AGENTS.len();
            let name = if round == 0 { base.to_string() } else { format!("{base} {}", round + 1) };
            let id = rng.id("agt");
            let mut tools: Vec<&str> = Vec::new();
            for _ in 0..rng.range(4, 9) {
                let t = *rng.pick(words::TOOLS);
                if !tools.contains(&t) {
                    tools.push(t);
                }
            }
            tools.sort_unstable();
            // Each tenant's first agent, and about half the others, bring their own key.
            let own_key = k == 0 || rng.chance(50);
            let config = agent_config(&mut rng, &g.tenants[ti], role, own_key);
            let created = rng.range_i(g.tenants[ti].created_at, NOW - 30 * DAY);
            insert(
                tx,
                &db,
                "INSERT INTO agents VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![id, g.tenants[ti].id, name, json!(tools).to_string(), config.to_string(), ts(created)],
            )?;
            g.tenants[ti].agents.push(Agent { id, name, role: role.to_string() });
            made.push((tools, config));
        }
        // Files last: AGENTS.md lists the tenant's other agents.
        for (k, (tools, config)) in made.into_iter().enumerate() {
            let agent = g.tenants[ti].agents[k].clone();
            super::files::agent_files(g, &mut rng, ti, &agent, &tools, &config)?;
        }
    }
    Ok(())
}

fn workflow_step(rng: &mut Rng, t: &Tenant, n: usize) -> Value {
    let id = format!("s{n}");
    match rng.weighted(&[35, 20, 15, 15, 15]) {
        0 => {
            let a = rng.pick(&t.agents);
            json!({ "id": id, "type": "agent", "agent_id": a.id,
                "prompt": format!("As the {} agent, {}", a.role, sentence_string(rng).to_lowercase()) })
        }
        1 => {
            let c = slug(rng.word(CUSTOMERS));
            json!({ "id": id, "type": "http", "method": *rng.pick(&["GET", "POST"]),
                "url": format!("https://api.{c}.example/v2/{}", rng.pick(&["orders", "tickets", "invoices", "contacts"])),
                "headers": { "Authorization": "Bearer {{secrets.CRM_TOKEN}}", "Accept": "application/json" },
                "timeout_seconds": rng.range(10, 120) })
        }
        2 => json!({ "id": id, "type": "condition",
            "if": format!("{{{{s{}.output.score}}}} > {}", n.saturating_sub(1).max(1), rng.range(50, 90)),
            "then": format!("s{}", n + 1), "else": "end" }),
        3 => json!({ "id": id, "type": "approval", "approvers": ["role:approver"], "timeout_hours": rng.range(4, 72) }),
        _ => json!({ "id": id, "type": "notify", "channel": *rng.pick(&["slack", "email", "teams"]),
            "target": *rng.pick(&["#ops", "#finance", "#support", "leadership@", "#sales"]),
            "template": sentence_string(rng) }),
    }
}

pub(super) fn workflows(g: &mut Gen, tx: &Transaction) -> GatewayResult<()> {
    let db = g.db.clone();
    let counts = split(g.plan.workflows, &g.weights());
    for (ti, &n) in counts.iter().enumerate() {
        let mut rng = g.rng(&format!("workflows/{}", g.tenants[ti].id));
        let t = g.tenants[ti].clone();
        let offset = rng.below(words::WORKFLOWS.len() as u64) as usize;
        for k in 0..n as usize {
            let base = words::WORKFLOWS[(offset + k) % words::WORKFLOWS.len()];
            let round = k / words::WORKFLOWS.len();
            let name = if round == 0 { base.to_string() } else { format!("{base} ({})", round + 1) };
            let id = rng.id("wf");
            let versions = rng.range(2, 8);
            let created = rng.range_i(t.created_at.max(NOW - 400 * DAY), NOW - 60 * DAY);
            let trigger = match rng.below(3) {
                0 => json!({ "type": "cron", "schedule": *rng.pick(&["0 9 * * 1", "0 7 * * *", "30 17 * * 5"]) }),
                1 => json!({ "type": "webhook",
                    "event": *rng.pick(&["invoice.received", "ticket.created", "lead.created", "deal.closed"]) }),
                _ => json!({ "type": "manual" }),
            };
            let steps: Vec<Value> = (1..=rng.range(2, 5) as usize).map(|n| workflow_step(&mut rng, &t, n)).collect();
            let mut def = json!({
                "name": name,
                "description": sentence_string(&mut rng),
                "trigger": trigger,
                "steps": steps,
                "timeout_minutes": rng.range(5, 60),
                "retries": rng.range(0, 3),
            });
            let mut at = created;
            let mut history = Vec::new();
            for v in 1..=versions {
                if v > 1 {
                    mutate_workflow(&mut rng, &t, &mut def);
                    let step = (NOW - at) / (versions as i64 - v as i64 + 2);
                    at = (at + rng.range_i(HOUR, step.max(HOUR))).min(NOW);
                }
                def["version"] = json!(v);
                let author = rng.pick(&t.users).email.clone();
                history.push((v as i64, def.to_string(), ts(at), author));
            }
            // Now and then the current version is a rollback to the one before the latest.
            let current = if rng.chance(20) { versions - 1 } else { versions };
            insert(
                tx,
                &db,
                "INSERT INTO workflows VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![id, t.id, name, current as i64, ts(created), ts(at)],
            )?;
            for (v, definition, at, author) in history {
                insert(
                    tx,
                    &db,
                    "INSERT INTO workflow_versions VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![id, t.id, v, definition, at, author],
                )?;
            }
            g.tenants[ti].workflows.push((id, name));
        }
    }
    Ok(())
}

fn mutate_workflow(rng: &mut Rng, t: &Tenant, def: &mut Value) {
    let Some(steps) = def.get_mut("steps").and_then(Value::as_array_mut) else { return };
    match rng.below(4) {
        0 => {
            let n = steps.len() + 1;
            steps.push(workflow_step(rng, t, n));
        }
        1 if steps.len() > 2 => {
            steps.pop();
        }
        2 => {
            let i = rng.below(steps.len() as u64) as usize;
            if let Some(step) = steps.get_mut(i) {
                if step.get("prompt").is_some() {
                    step["prompt"] = json!(sentence_string(rng));
                } else {
                    step["note"] = json!(sentence_string(rng));
                }
            }
        }
        _ => {
            def["timeout_minutes"] = json!(rng.range(5, 90));
            def["retries"] = json!(rng.range(0, 5));
        }
    }
}

pub(super) fn skills(g: &mut Gen, tx: &Transaction) -> GatewayResult<()> {
    let db = g.db.clone();
    for t in &g.tenants {
        let mut rng = Rng::new(g.seed, &format!("skills/{}", t.id));
        let n = rng.range(g.plan.skills.0, g.plan.skills.1).min(words::SKILLS.len() as u64) as usize;
        let offset = rng.below(words::SKILLS.len() as u64) as usize;
        let mut ids = Vec::new();
        for k in 0..n {
            let name = words::SKILLS[(offset + k) % words::SKILLS.len()];
            let id = rng.id("skl");
            let version = format!("{}.{}.{}", rng.range(0, 3), rng.range(0, 12), rng.range(0, 20));
            let at = rng.range_i(t.created_at, NOW - DAY);
            insert(
                tx,
                &db,
                "INSERT INTO skills VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id, t.id, name, version, ts(at)],
            )?;
            ids.push(id);
        }
        for a in &t.agents {
            for s in &ids {
                if rng.chance(65) {
                    insert(
                        tx,
                        &db,
                        "INSERT INTO agent_skills VALUES (?1, ?2, ?3, ?4)",
                        params![a.id, s, t.id, rng.chance(85)],
                    )?;
                }
            }
        }
    }
    Ok(())
}

fn memory_content(rng: &mut Rng, t: &Tenant, kind: &str) -> String {
    let customer = *rng.pick(CUSTOMERS);
    let topic = *rng.pick(TOPICS);
    let day = super::rng::date(NOW - rng.range_i(0, 200) * DAY);
    match kind {
        "fact" => match rng.below(3) {
            0 => format!(
                "{customer} is on the {} plan with {} seats; renewal is due on {day}.",
                rng.pick(&["Starter", "Team", "Business", "Enterprise"]),
                rng.range(5, 900)
            ),
            1 => {
                let u = rng.pick(&t.users);
                format!("{customer}'s primary contact for {topic} is {} ({}).", u.name, u.email)
            }
            _ => format!("The {topic} runbook lives in docs/{}.md and was last reviewed on {day}.", slug(topic)),
        },
        "preference" => {
            let u = rng.pick(&t.users);
            match rng.below(2) {
                0 => format!(
                    "{} prefers {} updates {}.",
                    u.name,
                    rng.pick(&["short bullet-point", "detailed", "table-based", "one-line"]),
                    rng.pick(&["every Monday morning", "at the end of each day", "only when something changes"])
                ),
                _ => format!("{} asked not to be paged about {topic} outside business hours.", u.name),
            }
        }
        "episode" => format!(
            "Handled ticket #{} from {customer} about {topic}. {}",
            rng.range(10_000, 99_999),
            sentence_string(rng)
        ),
        "summary" => format!(
            "Week {} summary: {} conversations, {} escalations, top topic {topic}. {}",
            rng.range(1, 52),
            rng.range(20, 400),
            rng.range(0, 12),
            paragraph_string(rng)
        ),
        _ => format!(
            "Next time {topic} comes up for {customer}, check the account history before escalating; it saved {} minutes today.",
            rng.range(5, 90)
        ),
    }
}

pub(super) fn memory(g: &mut Gen, tx: &Transaction) -> GatewayResult<()> {
    let db = g.db.clone();
    let counts = split(g.plan.memory, &g.weights());
    for (t, n) in g.tenants.iter().zip(counts) {
        let mut rng = Rng::new(g.seed, &format!("memory/{}", t.id));
        let weights: Vec<u64> = t.agents.iter().map(|_| rng.range(1, 5)).collect();
        for (a, m) in t.agents.iter().zip(split(n, &weights)) {
            for _ in 0..m {
                let kind =
                    ["fact", "preference", "episode", "summary", "reflection"][rng.weighted(&[30, 15, 35, 10, 10])];
                let content = memory_content(&mut rng, t, kind);
                // Half of the entries are from the last 60 days, the rest from the year before.
                let at = if rng.chance(50) {
                    NOW - rng.range_i(MINUTE, 60 * DAY)
                } else {
                    NOW - rng.range_i(60 * DAY, 365 * DAY)
                };
                insert(
                    tx,
                    &db,
                    "INSERT INTO memory_entries VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![rng.id("mem"), t.id, a.id, kind, content, ts(at)],
                )?;
            }
        }
    }
    Ok(())
}

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
    CronTemplate {
        name: "memory-compaction",
        schedule: "30 2 * * *",
        every_hours: 24,
        hour: 2,
        weekdays: false,
        action: "custom",
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
                "memory-compaction" => format!("sophon memory compact --tenant {} --older-than 90d", t.id),
                _ if job.action == "workflow" => match t.workflows.first() {
                    Some(_) => format!("workflow:{}", rng.pick(&t.workflows).0),
                    None => "workflow:none".to_string(),
                },
                _ => format!("agent:{} {}", rng.pick(&t.agents).id, sentence_string(&mut rng)),
            };
            let enabled = job.name == "nightly-backup" || rng.chance(90);
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
