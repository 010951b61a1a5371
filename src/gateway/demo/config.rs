//! The demo's gateway-wide files: `config/appsettings.json` and its overrides, the MCP config and
//! the license key. All of them hold secrets.

use serde_json::{json, Value};

use super::records::llm_key;
use super::rng::{ts, Rng, DAY, NOW};
use super::Gen;
use crate::gateway::{GatewayResult, LICENSE_FILE};

fn pretty(v: &Value) -> Vec<u8> {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string());
    s.push('\n');
    s.into_bytes()
}

fn appsettings(rng: &mut Rng, tenants: &[Value]) -> Value {
    json!({
        "Logging": { "LogLevel": { "Default": "Information", "Microsoft.AspNetCore": "Warning", "Sophon.Agents": "Debug" } },
        "AllowedHosts": "*",
        "ConnectionStrings": {
            "Gateway": "Data Source=gateway.db;Cache=Shared",
            "Analytics": format!("Host=db.internal;Port=5432;Database=sophon_analytics;Username=sophon_app;Password={};SSL Mode=Require", rng.alnum(20)),
            "Redis": format!("redis.internal:6379,password={},ssl=True,abortConnect=False", rng.alnum(24)),
        },
        "Sophon": {
            "Gateway": {
                "PublicUrl": "https://gateway.example.com",
                "TenantMode": "multi",
                "Tenants": tenants,
                "MaxUploadMb": 100,
            },
            "Llm": {
                "DefaultProvider": "OpenAI",
                "Providers": {
                    "OpenAI": { "ApiKey": llm_key(rng, "openai"), "Model": "gpt-4.1", "Organization": format!("org-{}", rng.alnum(24)) },
                    "Anthropic": { "ApiKey": llm_key(rng, "anthropic"), "Model": "claude-sonnet-4" },
                },
            },
            "Auth": {
                "Jwt": { "Issuer": "https://gateway.example.com", "Audience": "sophon", "SigningKey": rng.b64(64), "LifetimeMinutes": 60 },
                "Totp": { "Issuer": "Sophon", "Required": ["admin", "owner"] },
                "PasswordHashing": { "Algorithm": "argon2id", "MemoryKiB": 19456, "Iterations": 2 },
            },
            "Storage": {
                "Documents": { "Path": "documents/files", "ExtractText": true, "FtsTokenizer": "unicode61" },
                "S3": {
                    "Bucket": "sophon-backups",
                    "Region": "eu-west-1",
                    "AccessKeyId": format!("AKIA{}", rng.upper_alnum(16)),
                    "SecretAccessKey": rng.b64(30),
                },
            },
            "Smtp": {
                "Host": "smtp.sendgrid.net",
                "Port": 587,
                "Username": "apikey",
                "Password": format!("SG.{}.{}", rng.b64url(16), rng.b64url(32)),
                "From": "Sophon <no-reply@example.com>",
            },
            "Telemetry": {
                "SentryDsn": format!("https://{}@o{}.ingest.sentry.io/{}", rng.hex(32), rng.digits(6), rng.digits(7)),
                "SampleRate": 0.2,
            },
            "Audit": { "RetentionDays": 365, "Filterable": true },
            "Memory": { "DailyLogs": "memory/daily-logs", "RetentionDays": 365 },
            "Backups": {
                "Default": {
                    "Destination": "local",
                    "Format": "zip",
                    "Encrypt": true,
                    "IncludeLicense": false,
                    "Schedule": "0 3 * * *",
                    "Lifecycle": { "KeepDaily": 7, "KeepWeekly": 4, "KeepMonthly": 12 },
                },
            },
        },
    })
}

fn production(rng: &mut Rng) -> Value {
    json!({
        "Logging": { "LogLevel": { "Default": "Warning", "Sophon.Agents": "Information" } },
        "ConnectionStrings": {
            "Analytics": format!("Host=prod-db.internal;Port=5432;Database=sophon_analytics;Username=sophon_prod;Password={};SSL Mode=VerifyFull", rng.alnum(24)),
            "Redis": format!("prod-redis.internal:6380,password={},ssl=True", rng.alnum(32)),
        },
        "Kestrel": {
            "Endpoints": { "Https": { "Url": "https://0.0.0.0:8443" } },
            "Certificates": { "Default": { "Path": "/etc/sophon/tls/gateway.pfx", "Password": rng.alnum(20) } },
        },
        "Sophon": {
            "Gateway": { "PublicUrl": "https://sophon.example.com" },
            "Llm": { "Providers": { "OpenAI": { "ApiKey": llm_key(rng, "openai") } } },
            "Backups": { "Default": { "Lifecycle": { "KeepYearly": 7 } } },
        },
    })
}

fn development() -> Value {
    json!({
        "Logging": { "LogLevel": { "Default": "Debug" } },
        "ConnectionStrings": { "Analytics": "Host=localhost;Port=5432;Database=sophon_dev;Username=dev;Password=dev" },
        "Sophon": { "Gateway": { "PublicUrl": "http://localhost:8080" }, "Telemetry": { "SentryDsn": "" } },
    })
}

fn mcp(rng: &mut Rng) -> Value {
    json!({
        "mcpServers": {
            "github": {
                "command": "npx",
                "args": ["-y", "@modelcontextprotocol/server-github"],
                "env": { "GITHUB_PERSONAL_ACCESS_TOKEN": format!("ghp_{}", rng.alnum(36)) },
            },
            "slack": {
                "command": "npx",
                "args": ["-y", "@modelcontextprotocol/server-slack"],
                "env": {
                    "SLACK_BOT_TOKEN": format!("xoxb-{}-{}-{}", rng.digits(12), rng.digits(13), rng.alnum(24)),
                    "SLACK_TEAM_ID": format!("T0{}", rng.upper_alnum(9)),
                },
            },
            "postgres": {
                "command": "npx",
                "args": ["-y", "@modelcontextprotocol/server-postgres",
                    format!("postgresql://readonly:{}@db.internal:5432/analytics", rng.alnum(18))],
            },
            "aws-docs": {
                "command": "uvx",
                "args": ["awslabs.aws-documentation-mcp-server@latest"],
                "env": {
                    "AWS_ACCESS_KEY_ID": format!("AKIA{}", rng.upper_alnum(16)),
                    "AWS_SECRET_ACCESS_KEY": rng.b64(30),
                    "AWS_REGION": "eu-west-1",
                },
            },
            "linear": {
                "type": "http",
                "url": "https://mcp.linear.app/mcp",
                "headers": { "Authorization": format!("Bearer lin_api_{}", rng.alnum(40)) },
            },
            "filesystem": {
                "command": "npx",
                "args": ["-y", "@modelcontextprotocol/server-filesystem", "/srv/sophon/shared"],
            },
        },
    })
}

fn mcp_server(rng: &mut Rng, tenants: &[&str]) -> Value {
    let tokens: Vec<Value> = tenants
        .iter()
        .flat_map(|t| ["claude-desktop", "cursor"].map(|client| (t.to_string(), client)))
        .map(|(t, client)| {
            json!({
                "name": format!("{t}-{client}"),
                "tenant": t,
                "token": format!("sk-sophon-{}", rng.alnum(40)),
                "scopes": ["agents:invoke", "documents:search", "memory:read"],
                "created_at": ts(NOW - rng.range_i(DAY, 200 * DAY)),
            })
        })
        .collect();
    json!({
        "enabled": true,
        "listen": "0.0.0.0:8765",
        "path": "/mcp",
        "auth": { "type": "bearer", "tokens": tokens },
        "expose": {
            "tools": ["agents.invoke", "documents.search", "memory.search", "tasks.create"],
            "resources": ["documents", "memory"],
        },
        "rate_limit": { "requests_per_minute": 120 },
    })
}

fn license(rng: &mut Rng, g: &Gen) -> String {
    use base64::Engine;
    let owner = g.tenants.first().map(|t| t.name).unwrap_or("Sophon Demo");
    let payload = json!({
        "licensee": owner,
        "tier": "enterprise",
        "seats": g.plan.users.div_ceil(50) * 50,
        "tenants": g.tenants.len(),
        "features": ["compliance", "incremental-backups", "archive-storage", "sso"],
        "issued": ts(NOW - 200 * DAY),
        "expires": ts(NOW + 165 * DAY),
        "serial": rng.upper_alnum(12),
    });
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!("SPHN1.{}.{}\n", b64.encode(payload.to_string()), rng.b64url(64))
}

pub(super) fn write_all(g: &mut Gen) -> GatewayResult<()> {
    let mut rng = g.rng("config");
    let tenants: Vec<&str> = g.tenants.iter().map(|t| t.id).collect();
    let tenant_settings: Vec<Value> =
        g.tenants.iter().map(|t| json!({ "Id": t.id, "Tier": t.tier, "Domain": t.domain })).collect();
    let files = [
        ("config/appsettings.json", pretty(&appsettings(&mut rng, &tenant_settings))),
        ("config/appsettings.Production.json", pretty(&production(&mut rng))),
        ("config/appsettings.Development.json", pretty(&development())),
        ("config/mcp.json", pretty(&mcp(&mut rng))),
        ("config/mcp-server.json", pretty(&mcp_server(&mut rng, &tenants))),
    ];
    let license = license(&mut rng, g);
    for (rel, data) in files {
        g.write_file(rel, &data)?;
    }
    g.write_file(LICENSE_FILE, license.as_bytes())
}
