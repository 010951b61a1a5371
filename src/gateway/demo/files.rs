//! The demo's files: agents' Markdown and config, daily memory logs, and documents (streamed).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use rusqlite::{params, Transaction};
use serde_json::{json, Value};

use super::records::insert;
use super::rng::{date, ts, Rng, DAY, NOW};
use super::words::{paragraph, paragraph_string, sentence, CUSTOMERS, FIRST, TOPICS};
use super::{Agent, At, Gen};
use crate::gateway::GatewayResult;

/// The Markdown files of every agent, in the order they are written.
pub const AGENT_FILES: &[&str] = &["SOUL.md", "BOOT.md", "HEARTBEAT.md", "TOOLS.md", "AGENTS.md"];

fn section(rng: &mut Rng, out: &mut String, title: &str, paragraphs: u64) {
    out.push_str("## ");
    out.push_str(title);
    out.push_str("\n\n");
    for _ in 0..paragraphs {
        paragraph(rng, out);
        out.push_str("\n\n");
    }
}

fn bullets(rng: &mut Rng, out: &mut String, n: u64) {
    for _ in 0..n {
        out.push_str("- ");
        sentence(rng, out);
        out.push('\n');
    }
    out.push('\n');
}

pub(super) fn agent_files(
    g: &mut Gen,
    rng: &mut Rng,
    tenant: usize,
    agent: &Agent,
    tools: &[&str],
    config: &Value,
) -> GatewayResult<()> {
    let t = &g.tenants[tenant];
    let (tname, tid) = (t.name, t.id);
    let others: Vec<(String, String)> =
        t.agents.iter().map(|a| (a.name.clone(), a.role.clone())).filter(|(n, _)| *n != agent.name).collect();
    let dir = format!("agents/{}", agent.id);
    for file in AGENT_FILES {
        let mut s = String::new();
        match *file {
            "SOUL.md" => {
                s.push_str(&format!(
                    "# {}\n\nYou are {}, the {} agent of {tname}.\n\n",
                    agent.name, agent.name, agent.role
                ));
                let n = rng.range(1, 3);
                section(rng, &mut s, "Personality", n);
                section(rng, &mut s, "Values", 1);
                let n = rng.range(3, 6);
                bullets(rng, &mut s, n);
                section(rng, &mut s, "Boundaries", 1);
                let n = rng.range(2, 5);
                bullets(rng, &mut s, n);
            }
            "BOOT.md" => {
                s.push_str("# Boot sequence\n\n");
                for (i, step) in [
                    "Load the tenant's policies and the last 7 days of daily logs.",
                    "Read the open tasks assigned to you and the pending approvals you requested.",
                    "Check that every connection you rely on is authorised; report the ones that are not.",
                    "Post a short hello in the default channel if this is the first boot today.",
                ]
                .iter()
                .enumerate()
                {
                    s.push_str(&format!("{}. {step}\n", i + 1));
                }
                s.push('\n');
                let n = rng.range(1, 2);
                section(rng, &mut s, "Notes", n);
            }
            "HEARTBEAT.md" => {
                s.push_str("# Heartbeat\n\nEvery heartbeat, in order:\n\n");
                let n = rng.range(3, 7);
                bullets(rng, &mut s, n);
                s.push_str(&format!(
                    "Escalate to the on-call owner of {tid} when an item has waited more than 4 hours.\n"
                ));
            }
            "TOOLS.md" => {
                s.push_str("# Tools\n\n");
                for tool in tools {
                    s.push_str(&format!("## `{tool}`\n\n"));
                    paragraph(rng, &mut s);
                    s.push_str("\n\n");
                }
            }
            _ => {
                s.push_str("# Other agents\n\n");
                if others.is_empty() {
                    s.push_str("You are the only agent of this tenant.\n");
                }
                for (name, role) in &others {
                    s.push_str(&format!("- **{name}** ({role}): "));
                    sentence(rng, &mut s);
                    s.push('\n');
                }
            }
        }
        g.write_file(&format!("{dir}/{file}"), s.as_bytes())?;
    }
    let mut cfg = serde_json::to_string_pretty(config).unwrap_or_else(|_| config.to_string());
    cfg.push('\n');
    g.write_file(&format!("{dir}/config.json"), cfg.as_bytes())
}

/// `memory/daily-logs/<tenant-id>/YYYY-MM-DD.jsonl`: one line per event, oldest first, for the last
/// `log_days` days.
pub(super) fn daily_logs(g: &mut Gen) -> GatewayResult<()> {
    for ti in 0..g.tenants.len() {
        let t = g.tenants[ti].clone();
        let mut rng = g.rng(&format!("daily-logs/{}", t.id));
        for d in (1..=g.plan.log_days).rev() {
            let day = (NOW - d * DAY) / DAY * DAY;
            let mut events = Vec::new();
            for a in &t.agents {
                let session = rng.id("ses");
                for _ in 0..rng.range(g.plan.log_lines.0, g.plan.log_lines.1) {
                    let at = day + rng.range_i(6 * 3600, 22 * 3600);
                    let kind =
                        *rng.pick(&["message", "message", "tool_call", "tool_result", "memory_write", "heartbeat"]);
                    let mut line = json!({ "ts": ts(at), "agent_id": a.id, "session": session, "type": kind });
                    match kind {
                        "message" => {
                            let from_user = rng.chance(50);
                            line["role"] = json!(if from_user { "user" } else { "agent" });
                            if from_user {
                                line["user_id"] = json!(rng.pick(&t.users).id);
                            }
                            line["text"] = json!(paragraph_string(&mut rng));
                        }
                        "tool_call" | "tool_result" => {
                            line["tool"] = json!(*rng.pick(&["web.search", "docs.search", "crm.lookup", "sql.query"]));
                            line["text"] = json!(format!("{} {}", rng.pick(CUSTOMERS), rng.pick(TOPICS)));
                            line["ms"] = json!(rng.range(40, 9_000));
                        }
                        "memory_write" => line["text"] = json!(paragraph_string(&mut rng)),
                        _ => line["status"] = json!(*rng.pick(&["ok", "ok", "ok", "degraded"])),
                    }
                    events.push((at, line.to_string()));
                }
            }
            events.sort();
            let rel = format!("memory/daily-logs/{}/{}.jsonl", t.id, date(day));
            let mut data = String::with_capacity(events.iter().map(|e| e.1.len() + 1).sum());
            for (_, l) in &events {
                data.push_str(l);
                data.push('\n');
            }
            g.daily_log_lines += events.len() as u64;
            g.daily_log_files += 1;
            g.write_file(&rel, data.as_bytes())?;
        }
    }
    Ok(())
}

/// (ext, mime, weight)
const DOC_TYPES: &[(&str, &str, u64)] = &[
    ("pdf", "application/pdf", 30),
    ("md", "text/markdown", 20),
    ("txt", "text/plain", 15),
    ("docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", 20),
    ("csv", "text/csv", 15),
];

/// The most extracted text kept per document (the rest is in the raw file).
const EXTRACT_LIMIT: usize = 64 * 1024;

struct DocPlan {
    tenant: usize,
    id: String,
    filename: String,
    kind: usize,
    size: u64,
    content_seed: u64,
    uploaded_by: String,
    created_at: i64,
}

fn filename(rng: &mut Rng, ext: &str, n: usize) -> String {
    let customer = super::records::slug(rng.word(CUSTOMERS));
    let topic = super::records::slug(rng.word(TOPICS));
    let day = date(NOW - rng.range_i(0, 400) * DAY);
    match ext {
        "pdf" => format!(
            "{}-{customer}-{day}.pdf",
            rng.pick(&["contract", "invoice", "proposal", "board-deck", "audit-report"])
        ),
        "md" => format!("{topic}-{}.md", rng.pick(&["runbook", "faq", "playbook", "notes", "guide"])),
        "txt" => format!("meeting-notes-{day}-{n}.txt"),
        "docx" => {
            format!("{}-{customer}.docx", rng.pick(&["statement-of-work", "policy", "offer-letter", "nda", "memo"]))
        }
        _ => format!("{}-{day}.csv", rng.pick(&["customer-list", "pipeline-export", "expenses", "usage", "tickets"])),
    }
}

/// Plan every document of every tenant, then stream them to disk and insert their rows.
pub(super) fn documents(g: &mut Gen, tx: &Transaction) -> GatewayResult<()> {
    let counts = super::rng::split(g.plan.documents, &g.weights());
    let weights: Vec<u64> = DOC_TYPES.iter().map(|d| d.2).collect();
    let mut plans: Vec<DocPlan> = Vec::new();
    for (ti, n) in counts.into_iter().enumerate() {
        let t = &g.tenants[ti];
        let mut rng = Rng::new(g.seed, &format!("documents/{}", t.id));
        for k in 0..n as usize {
            let (kind, size, content_seed) = if !plans.is_empty() && rng.chance(4) {
                // The same file uploaded again (by another team or tenant): identical bytes.
                let p = &plans[rng.below(plans.len() as u64) as usize];
                (p.kind, p.size, p.content_seed)
            } else {
                (rng.weighted(&weights), rng.log_uniform(g.plan.doc_min, g.plan.doc_max), rng.next_u64())
            };
            plans.push(DocPlan {
                tenant: ti,
                id: rng.id("doc"),
                filename: filename(&mut rng, DOC_TYPES[kind].0, k),
                kind,
                size,
                content_seed,
                uploaded_by: rng.pick(&t.users).id.clone(),
                created_at: NOW - rng.range_i(DAY / 2, 365 * DAY),
            });
        }
    }
    let total: u64 = plans.iter().map(|p| p.size).sum();
    if total > 0 && total < g.plan.doc_total_min {
        let factor = g.plan.doc_total_min as f64 / total as f64;
        for p in &mut plans {
            p.size = (p.size as f64 * factor).ceil() as u64;
        }
    }
    let mut buf = vec![0u8; 256 * 1024];
    for p in &plans {
        let (ext, mime, _) = DOC_TYPES[p.kind];
        let rel = format!("documents/files/{}.{ext}", p.id);
        let path = g.home.join(&rel);
        let (sha256, extracted) = write_document(&path, ext, p.size, p.content_seed, &mut buf)?;
        insert(
            tx,
            &g.db,
            "INSERT INTO documents (id, tenant_id, filename, ext, mime, size, sha256, extracted_text, uploaded_by, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                p.id,
                g.tenants[p.tenant].id,
                p.filename,
                ext,
                mime,
                p.size as i64,
                sha256,
                extracted,
                p.uploaded_by,
                ts(p.created_at)
            ],
        )?;
        g.files += 1;
        g.file_bytes += p.size;
        g.documents += 1;
        g.document_bytes += p.size;
    }
    Ok(())
}

/// Counts and hashes what it writes.
struct Sink<'a> {
    out: BufWriter<File>,
    sha: ring::digest::Context,
    written: u64,
    path: &'a Path,
}

impl Sink<'_> {
    fn write(&mut self, data: &[u8]) -> GatewayResult<()> {
        self.sha.update(data);
        self.written += data.len() as u64;
        self.out.write_all(data).at(self.path)
    }
}

/// Text for a text document: Markdown, plain text or CSV, generated piece by piece.
fn text_piece(rng: &mut Rng, ext: &str, out: &mut String, first: bool) {
    match ext {
        "md" => {
            if first {
                out.push_str("# ");
                sentence(rng, out);
                out.push_str("\n\n");
            }
            out.push_str("## ");
            out.push_str(rng.word(TOPICS));
            out.push_str("\n\n");
            paragraph(rng, out);
            out.push_str("\n\n");
            for _ in 0..rng.range(0, 4) {
                out.push_str("- ");
                sentence(rng, out);
                out.push('\n');
            }
            out.push('\n');
        }
        "csv" => {
            if first {
                out.push_str("id,date,customer,region,topic,amount_eur,status,owner\n");
            }
            for _ in 0..32 {
                out.push_str(&format!(
                    "{},{},{},{},{},{}.{:02},{},{}\n",
                    rng.range(100_000, 999_999),
                    date(NOW - rng.range_i(0, 700) * DAY),
                    rng.pick(CUSTOMERS),
                    rng.pick(&["EMEA", "NA", "APAC", "LATAM"]),
                    rng.pick(TOPICS),
                    rng.range(10, 250_000),
                    rng.range(0, 99),
                    rng.pick(&["open", "won", "lost", "paid", "overdue"]),
                    rng.pick(FIRST)
                ));
            }
        }
        _ => {
            paragraph(rng, out);
            out.push_str("\n\n");
        }
    }
}

/// Write one document of exactly `size` bytes, streaming; returns its SHA-256 (hex) and extracted text.
fn write_document(path: &Path, ext: &str, size: u64, seed: u64, buf: &mut [u8]) -> GatewayResult<(String, String)> {
    let file = File::create(path).at(path)?;
    let mut sink = Sink {
        out: BufWriter::with_capacity(256 * 1024, file),
        sha: ring::digest::Context::new(&ring::digest::SHA256),
        written: 0,
        path,
    };
    let mut rng = Rng::new(seed, ext);
    let extracted = match ext {
        "pdf" | "docx" => {
            let (head, tail): (Vec<u8>, Vec<u8>) = if ext == "pdf" {
                let mut h = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n".to_vec();
                h.extend_from_slice(
                    format!(
                        "1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n\
                         2 0 obj\n<< /Type /Pages /Kids [3 0 R] /Count 1 >>\nendobj\n\
                         4 0 obj\n<< /Length {size} /Filter /FlateDecode >>\nstream\n"
                    )
                    .as_bytes(),
                );
                (h, b"\nendstream\nendobj\ntrailer\n<< /Root 1 0 R >>\nstartxref\n0\n%%EOF\n".to_vec())
            } else {
                let mut h = b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00".to_vec();
                h.extend_from_slice(&[0u8; 16]);
                h.extend_from_slice(b"[Content_Types].xml");
                (h, b"PK\x05\x06\x00\x00\x00\x00\x0b\x00\x0b\x00\xc5\x02\x00\x00\x00\x00\x00\x00".to_vec())
            };
            let body = size.saturating_sub((head.len() + tail.len()) as u64);
            let head_len = (head.len() as u64).min(size) as usize;
            sink.write(&head[..head_len])?;
            let mut left = body;
            while left > 0 {
                let n = left.min(buf.len() as u64) as usize;
                rng.fill(&mut buf[..n]);
                sink.write(&buf[..n])?;
                left -= n as u64;
            }
            let tail_len = size.saturating_sub(sink.written).min(tail.len() as u64) as usize;
            sink.write(&tail[..tail_len])?;
            let mut text = String::new();
            for _ in 0..rng.range(1, 12) {
                paragraph(&mut rng, &mut text);
                text.push_str("\n\n");
            }
            text
        }
        _ => {
            let mut extracted = String::new();
            let mut piece = String::with_capacity(64 * 1024);
            let mut first = true;
            while sink.written < size {
                piece.clear();
                while piece.len() < 16 * 1024 {
                    text_piece(&mut rng, ext, &mut piece, first);
                    first = false;
                }
                let n = (size - sink.written).min(piece.len() as u64) as usize;
                // Generated text is ASCII, so any byte offset is a character boundary.
                let part = piece.get(..n).unwrap_or(&piece);
                if extracted.len() < EXTRACT_LIMIT {
                    let room = EXTRACT_LIMIT - extracted.len();
                    extracted.push_str(part.get(..room.min(part.len())).unwrap_or(""));
                }
                sink.write(part.as_bytes())?;
            }
            extracted
        }
    };
    sink.out.flush().at(path)?;
    let digest = sink.sha.finish();
    Ok((hex::encode(digest.as_ref()), extracted))
}
