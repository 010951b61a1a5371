//! The redaction corpus (`tests/data/redaction/`): realistic config files, MCP and workflow
//! definitions, and free texts, with secrets and with look-alike non-secrets. Every secret listed in
//! `expect.json` must be gone after redaction, and no more than 2% of the non-secret settings may
//! be touched: every leaf of the JSON files that holds no secret, and every `keep` string of the
//! texts. Each file goes through the library call the backup uses for it.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use sophon::gateway::redact::{redact_file_text, redact_json, redact_mcp_config};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/redaction")
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            files(&p, out);
        } else if p.file_name().is_some_and(|n| n != "expect.json") {
            out.push(p);
        }
    }
}

/// Every scalar of `v` by JSON pointer.
fn leaves(v: &Value, pointer: String, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Object(m) => m.iter().for_each(|(k, c)| leaves(c, format!("{pointer}/{k}"), out)),
        Value::Array(a) => a.iter().enumerate().for_each(|(i, c)| leaves(c, format!("{pointer}/{i}"), out)),
        _ => out.push((pointer, v.clone())),
    }
}

fn lookup<'a>(v: &'a Value, pointer: &str) -> Option<&'a Value> {
    v.pointer(pointer)
}

#[test]
fn the_corpus_loses_every_secret_and_keeps_the_rest() {
    let expect: Value = serde_json::from_str(&std::fs::read_to_string(corpus().join("expect.json")).unwrap()).unwrap();
    let secrets: Vec<String> =
        expect["secrets"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect();
    let keep: Vec<String> =
        expect["keep"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect();
    let mut paths = Vec::new();
    files(&corpus(), &mut paths);
    let (mut outputs, mut settings, mut touched) = (String::new(), 0usize, Vec::new());
    for p in &paths {
        let name = p.strip_prefix(corpus()).unwrap().display().to_string();
        let text = std::fs::read_to_string(p).unwrap();
        // (before, after) documents of the file: JSON whole, JSON Lines line by line.
        let mut docs: Vec<(Value, Value)> = Vec::new();
        if name.ends_with(".json") {
            let before: Value = serde_json::from_str(&text).unwrap();
            let mut after = before.clone();
            if name.contains("mcp") {
                redact_mcp_config(&mut after, &name, &mut Vec::new());
            } else {
                redact_json(&mut after, &name, &mut Vec::new());
            }
            docs.push((before, after));
        } else if name.ends_with(".jsonl") {
            for line in text.lines() {
                let before: Value = serde_json::from_str(line).unwrap();
                let mut after = before.clone();
                redact_json(&mut after, &name, &mut Vec::new());
                docs.push((before, after));
            }
        } else {
            outputs.push_str(&redact_file_text(&text).map(|(t, _)| t).unwrap_or(text));
            outputs.push('\n');
        }
        for (before, after) in docs {
            let mut all = Vec::new();
            leaves(&before, String::new(), &mut all);
            for (pointer, v) in all {
                let shown = v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string());
                if secrets.iter().any(|s| shown.contains(s.as_str())) {
                    continue;
                }
                settings += 1;
                if lookup(&after, &pointer) != Some(&v) {
                    touched.push(format!("{name}#{pointer}: {shown}"));
                }
            }
            outputs.push_str(&serde_json::to_string(&after).unwrap());
            outputs.push('\n');
        }
    }
    let missed: Vec<&String> = secrets.iter().filter(|s| outputs.contains(s.as_str())).collect();
    for k in &keep {
        settings += 1;
        if !outputs.contains(k.as_str()) {
            touched.push(format!("text: {k}"));
        }
    }
    let rate = touched.len() as f64 * 100.0 / settings as f64;
    println!("redaction corpus: {} files, {} secrets, {} missed", paths.len(), secrets.len(), missed.len());
    println!("redaction corpus: {} of {} non-secret settings redacted ({rate:.2}%)", touched.len(), settings);
    for t in &touched {
        println!("  redacted though not secret: {t}");
    }
    assert!(
        secrets.len() >= 40 && settings >= 150,
        "the corpus is too small: {} secrets, {settings} settings",
        secrets.len()
    );
    assert!(missed.is_empty(), "secrets missed: {missed:?}");
    assert!(rate <= 2.0, "{rate:.2}% of non-secret settings redacted: {touched:#?}");
    // The items issue 11 names, one by one.
    for (file, pointer) in [
        ("config/appsettings.json", "/Sophon/Auth/Jwt/Issuer"),
        ("config/appsettings.json", "/Sophon/Auth/Jwt/LifetimeMinutes"),
        ("config/appsettings.json", "/Sophon/Auth/PasswordHashing/Iterations"),
        ("config/appsettings.json", "/Sophon/Storage/Documents/FtsTokenizer"),
        ("config/mcp.json", "/mcpServers/aws-docs/env/AWS_REGION"),
        ("config/mcp.json", "/mcpServers/slack/env/SLACK_TEAM_ID"),
        ("config/mcp-server.json", "/auth/tokens/0/name"),
        ("config/mcp-server.json", "/auth/tokens/0/scopes/0"),
        ("config/mcp-server.json", "/auth/tokens/0/tenant"),
    ] {
        assert!(!touched.iter().any(|t| t.starts_with(&format!("{file}#{pointer}:"))), "{file}#{pointer} was redacted");
    }
}

mod common;

use common::gateway::s;
use common::*;

fn edit_json(path: &Path, f: impl FnOnce(&mut Value)) {
    let mut v: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(path, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
}

#[test]
fn a_used_gateway_exports_no_planted_secret_and_a_replace_restore_keeps_live_settings() {
    let t = tempfile::tempdir().unwrap();
    let sophon = Sophon::new(t.path());
    let (home, dst) = (t.path().join("home"), t.path().join("dst"));
    sophon.ok(&["gateway", "init", "--home", s(&home), "--demo", "--scale", "small"]);
    let sentry = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";
    let (mcp_token, pem_line, slack) = (
        "PlantedMcpToken9a8b7c6d5e4f",
        "MIIEpAIBAAKCAQEAplantedPEMbodyLine0123456789abcdefABCDEFplanted",
        "xoxb-111122223333-4444555566667-PlantedSlackBotToken0",
    );
    let (xauth, curl_pass, log_key) = ("PlantedXAuthValue77aa", "PlantedCurlPass31", "PlantedLogApiKey5150");
    edit_json(&home.join("config/appsettings.json"), |v| {
        v["Sophon"]["Telemetry"]["SentryDsn"] = json!(format!("https://{sentry}@o679256.ingest.sentry.io/4504"));
        v["Sophon"]["Slack"] = json!({ "BotToken": slack, "TeamId": "T0PLANTED1" });
        v["Sophon"]["Hooks"] = json!({ "Ping": format!("curl -u admin:{curl_pass} https://x.example/ping"),
                                       "Headers": format!("X-Auth: {xauth}") });
    });
    edit_json(&home.join("config/mcp.json"), |v| {
        v["mcpServers"]["notion"] = json!({ "command": "npx", "args": ["-y", "notion-mcp", "--token", mcp_token] });
    });
    let agent_dir = std::fs::read_dir(home.join("agents")).unwrap().next().unwrap().unwrap().path();
    let pem = format!(
        "Deploy key:\n-----BEGIN RSA PRIVATE KEY-----\n{pem_line}\n-----END RSA PRIVATE KEY-----\nKeep it safe.\n"
    );
    std::fs::write(agent_dir.join("AGENTS.md"), pem).unwrap();
    let logs = home.join("memory/daily-logs");
    let tenant_dir = std::fs::read_dir(&logs).unwrap().next().unwrap().unwrap().path();
    let log_line =
        json!({ "level": "error", "message": format!("sync failed: GET /api?api_key={log_key} returned 401") });
    std::fs::write(tenant_dir.join("2026-11-02.jsonl"), format!("{log_line}\n")).unwrap();

    let zip = t.path().join("x.zip");
    sophon.ok(&["backup", "create", "--home", s(&home), "--out", s(&zip)]);
    let mut archive = zip::ZipArchive::new(std::fs::File::open(&zip).unwrap()).unwrap();
    let mut all = String::new();
    for i in 0..archive.len() {
        let mut f = archive.by_index(i).unwrap();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut f, &mut data).unwrap();
        all.push_str(&String::from_utf8_lossy(&data));
    }
    for secret in [sentry, mcp_token, pem_line, slack, xauth, curl_pass, log_key] {
        assert!(!all.contains(secret), "{secret} is in the archive");
    }
    for kept in
        ["sync failed: GET /api?api_key=", "returned 401", "Keep it safe.", "o679256.ingest.sentry.io", "T0PLANTED1"]
    {
        assert!(all.contains(kept), "{kept} was redacted");
    }

    // A destination with live secrets of its own and no LifetimeMinutes.
    sophon.ok(&["gateway", "init", "--home", s(&dst), "--demo", "--scale", "small"]);
    let cfg = dst.join("config/appsettings.json");
    let mut live_key = String::new();
    edit_json(&cfg, |v| {
        v["Sophon"]["Auth"]["Jwt"]["SigningKey"] = json!("live-signing-key-of-the-destination");
        live_key = v["Sophon"]["Llm"]["Providers"]["OpenAI"]["ApiKey"].as_str().unwrap().to_string();
        v["Sophon"]["Auth"]["Jwt"].as_object_mut().unwrap().remove("LifetimeMinutes");
    });
    let out = sophon.ok(&[
        "backup",
        "restore",
        "--in",
        s(&zip),
        "--home",
        s(&dst),
        "--mode",
        "replace",
        "--yes",
        "--only",
        "config",
    ]);
    let text = std::fs::read_to_string(&cfg).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    assert!(!text.contains(sophon::gateway::redact::REDACTED), "a marker was written into the config: {text}");
    assert_eq!(v["Sophon"]["Auth"]["Jwt"]["LifetimeMinutes"], 60, "a number stays a number");
    assert_eq!(v["Sophon"]["Auth"]["Jwt"]["SigningKey"], "live-signing-key-of-the-destination");
    assert_eq!(v["Sophon"]["Llm"]["Providers"]["OpenAI"]["ApiKey"], json!(live_key));
    assert!(v["Sophon"]["Slack"].get("BotToken").is_none(), "no live value: left out");
    assert!(out.contains("config/appsettings.json#/Sophon/Slack/BotToken (left out: enter it again)"), "{out}");
    assert!(out.contains("config/appsettings.json#/Sophon/Auth/Jwt/SigningKey (live value kept)"), "{out}");
}
