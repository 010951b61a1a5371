//! The demo's people and knowledge: tenants and users, agents, workflows, skills and memory. Each
//! category (and tenant) draws from its own random stream; `activity.rs` has the rest.

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

pub(super) fn sentence_string(rng: &mut Rng) -> String {
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
    for (ti, (t, n)) in g.tenants.iter_mut().zip(counts).enumerate() {
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
            // The users the dashboard's sign-in is shown with: their roles are fixed (the random
            // draw above still happens, so every other user stays as it was).
            let drawn_admin = roles.contains(&"admin") || roles.contains(&"owner");
            let sign_in = super::DEMO_SIGN_INS.iter().find(|s| s.tenant_index == ti && s.user_index == k);
            let roles: Vec<&str> = sign_in.map_or(roles, |s| s.roles.to_vec());
            let admin = roles.contains(&"admin") || roles.contains(&"owner");
            let mut password_hash = if rng.chance(80) {
                format!("$argon2id$v=19$m=19456,t=2,p=1${}${}", rng.b64(16), rng.b64(32))
            } else {
                format!("$2b$12${}", rng.alnum(53))
            };
            if let Some(s) = sign_in {
                password_hash = demo_hash(s.password, ti, k);
            }
            let totp = if drawn_admin || rng.chance(50) { Some(rng.base32(32)) } else { None };
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
            if let Some(s) = sign_in {
                g.sign_ins.push(super::DemoSignIn {
                    email: user.email.clone(),
                    password: s.password.to_string(),
                    tenant: t.id.to_string(),
                    roles: s.roles.iter().map(|r| r.to_string()).collect(),
                });
            }
            t.users.push(user);
        }
    }
    Ok(())
}

/// A real argon2id PHC string (the demo's cheap parameters) of a demo password, under a fixed salt so
/// the demo stays deterministic.
fn demo_hash(password: &str, tenant: usize, user: u64) -> String {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let mut salt = *b"sophon-demo-salt";
    salt[14] = b'0' + (tenant % 10) as u8;
    salt[15] = b'0' + (user % 10) as u8;
    let salt = SaltString::encode_b64(&salt).expect("16 bytes is a valid salt");
    let params = argon2::Params::new(19_456, 2, 1, None).expect("valid argon2 parameters");
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2id hash")
        .to_string()
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
