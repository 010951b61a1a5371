//! The redaction corpus (`tests/data/redaction/`): realistic config files, MCP and workflow
//! definitions, and free texts, with secrets and with look-alike non-secrets. Every secret listed in
//! `expect.json` must be gone after redaction, and no more than 2% of the non-secret settings may
//! be touched: every leaf of the JSON files that holds no secret, and every `keep` string of the
//! texts. Each file goes through the library call the backup uses for it.

use std::path::{Path, PathBuf};

use serde_json::Value;
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
    let expect: Value =
        serde_json::from_str(&std::fs::read_to_string(corpus().join("expect.json")).unwrap()).unwrap();
    let secrets: Vec<String> =
        expect["secrets"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect();
    let keep: Vec<String> = expect["keep"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect();
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
    assert!(secrets.len() >= 40 && settings >= 150, "the corpus is too small: {} secrets, {settings} settings", secrets.len());
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
