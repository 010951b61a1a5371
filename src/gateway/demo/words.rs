//! Vocabulary for the demo gateway: names, titles, and business-like prose.

use super::rng::Rng;

/// (id, name, tier, weight): the demo's tenants, in the order they are created.
pub const TENANTS: &[(&str, &str, &str, u64)] = &[
    ("acme", "Acme Corp", "enterprise", 10),
    ("globex", "Globex Corporation", "pro", 6),
    ("initech", "Initech", "community", 4),
    ("umbrella", "Umbrella Health", "enterprise", 8),
    ("hooli", "Hooli", "pro", 5),
    ("stark", "Stark Industries", "enterprise", 7),
    ("wonka", "Wonka Foods", "pro", 5),
    ("tyrell", "Tyrell Systems", "community", 3),
    ("soylent", "Soylent Labs", "pro", 4),
    ("vandelay", "Vandelay Imports", "community", 3),
];

pub const FIRST: &[&str] = &[
    "Alice", "Bob", "Carmen", "Dmitri", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Keiko", "Liam", "Maya",
    "Nikolai", "Olivia", "Pedro", "Quinn", "Rosa", "Samir", "Tara", "Ugo", "Vera", "Wei", "Ximena", "Yusuf", "Zoe",
    "Amara", "Bruno", "Chloe", "Diego", "Esther", "Felix", "Greta", "Hamza", "Ida", "Jamal", "Kofi", "Lena", "Marek",
    "Nadia", "Oskar", "Priya", "Rafael", "Sofia", "Tomas", "Una", "Viktor", "Wanda",
];

pub const LAST: &[&str] = &[
    "Anderson",
    "Becker",
    "Castillo",
    "Dubois",
    "Eriksen",
    "Fischer",
    "Garcia",
    "Haddad",
    "Ivanova",
    "Jensen",
    "Kowalski",
    "Larsen",
    "Moreau",
    "Nakamura",
    "Okafor",
    "Petrov",
    "Quiroga",
    "Rossi",
    "Schmidt",
    "Tanaka",
    "Ueda",
    "Varga",
    "Weber",
    "Xu",
    "Yilmaz",
    "Zimmermann",
    "Almeida",
    "Brennan",
    "Chen",
    "Dvorak",
    "Esposito",
    "Fontaine",
    "Gupta",
    "Horvath",
    "Iqbal",
    "Jovanovic",
    "Kim",
    "Lindqvist",
    "Mensah",
    "Novak",
];

/// (name, role) of agents.
pub const AGENTS: &[(&str, &str)] = &[
    ("Atlas", "operations"),
    ("Scout", "research"),
    ("Ledger", "finance"),
    ("Herald", "communications"),
    ("Sentinel", "security"),
    ("Concierge", "customer support"),
    ("Quill", "documentation"),
    ("Compass", "sales"),
    ("Beacon", "incident response"),
    ("Mentor", "onboarding"),
    ("Archivist", "knowledge management"),
    ("Forge", "engineering"),
];

pub const TOOLS: &[&str] = &[
    "web.search",
    "web.fetch",
    "docs.read",
    "docs.search",
    "memory.read",
    "memory.write",
    "calendar.read",
    "calendar.write",
    "email.send",
    "slack.post",
    "github.issues",
    "github.pulls",
    "jira.search",
    "jira.create",
    "sql.query",
    "crm.lookup",
    "crm.update",
    "files.read",
    "files.write",
    "shell.exec",
    "tasks.create",
    "approvals.request",
    "workflows.run",
    "http.request",
];

/// (provider, model); the first four take `sk-…` API keys.
pub const MODELS: &[(&str, &str)] = &[
    ("openai", "gpt-4.1"),
    ("openai", "gpt-4.1-mini"),
    ("anthropic", "claude-sonnet-4"),
    ("anthropic", "claude-3-5-haiku"),
    ("azure-openai", "gpt-4o"),
    ("ollama", "llama3.1:70b"),
];

pub const WORKFLOWS: &[&str] = &[
    "Invoice triage",
    "Weekly KPI digest",
    "New customer onboarding",
    "Support ticket escalation",
    "Contract renewal reminder",
    "Incident postmortem draft",
    "Lead qualification",
    "Expense report review",
    "Release notes compiler",
    "Vendor security questionnaire",
    "Churn risk alert",
    "Daily standup summary",
    "Access request review",
    "Knowledge base refresh",
    "Quarterly board pack",
    "Candidate screening",
];

pub const SKILLS: &[&str] = &[
    "web-search",
    "pdf-extract",
    "calendar",
    "jira",
    "github",
    "sql-query",
    "summarize",
    "translate",
    "crm-sync",
    "invoice-parser",
    "meeting-notes",
    "sentiment",
    "ocr",
    "charting",
];

pub const CUSTOMERS: &[&str] = &[
    "Northwind",
    "Contoso",
    "Fabrikam",
    "Tailspin",
    "Wide World Importers",
    "Litware",
    "Proseware",
    "Adventure Works",
    "Blue Yonder",
    "Coho Winery",
    "Alpine Ski House",
    "Margie's Travel",
    "Lucerne Publishing",
    "Woodgrove Bank",
    "Trey Research",
    "Graphic Design Institute",
];

pub const TOPICS: &[&str] = &[
    "billing",
    "SSO setup",
    "API rate limits",
    "data export",
    "onboarding",
    "webhook retries",
    "mobile app",
    "invoice errors",
    "permissions",
    "latency",
    "integrations",
    "pricing",
    "renewal",
    "security review",
    "GDPR",
];

pub const WORDS: &[&str] = &[
    "the",
    "agent",
    "customer",
    "report",
    "quarter",
    "revenue",
    "pipeline",
    "review",
    "team",
    "process",
    "policy",
    "update",
    "project",
    "risk",
    "forecast",
    "budget",
    "contract",
    "invoice",
    "support",
    "release",
    "deadline",
    "meeting",
    "summary",
    "action",
    "owner",
    "status",
    "priority",
    "workflow",
    "approval",
    "vendor",
    "security",
    "compliance",
    "metric",
    "growth",
    "target",
    "account",
    "region",
    "channel",
    "feedback",
    "roadmap",
    "incident",
    "and",
    "of",
    "to",
    "for",
    "with",
    "on",
    "by",
    "from",
    "is",
    "was",
    "will",
    "should",
    "needs",
    "after",
    "before",
    "within",
    "across",
    "all",
    "each",
    "new",
    "open",
    "closed",
    "pending",
    "weekly",
    "monthly",
    "critical",
    "minor",
    "we",
    "our",
    "their",
    "this",
    "that",
    "a",
    "an",
    "in",
    "at",
    "as",
];

/// A sentence of 6–18 words, capitalised, ending in a full stop.
pub fn sentence(rng: &mut Rng, out: &mut String) {
    let n = rng.range(6, 18);
    for i in 0..n {
        let w = *rng.pick(WORDS);
        if i == 0 {
            let mut c = w.chars();
            if let Some(f) = c.next() {
                out.extend(f.to_uppercase());
                out.push_str(c.as_str());
            }
        } else {
            out.push(' ');
            out.push_str(w);
        }
    }
    out.push('.');
}

/// A paragraph of 2–7 sentences.
pub fn paragraph(rng: &mut Rng, out: &mut String) {
    let n = rng.range(2, 7);
    for i in 0..n {
        if i > 0 {
            out.push(' ');
        }
        sentence(rng, out);
    }
}

pub fn paragraph_string(rng: &mut Rng) -> String {
    let mut s = String::new();
    paragraph(rng, &mut s);
    s
}

pub fn person(rng: &mut Rng) -> (String, String) {
    (rng.pick(FIRST).to_string(), rng.pick(LAST).to_string())
}
