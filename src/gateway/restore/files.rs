//! The files of a restore's plan: the documents and config beside the database and the per-tenant
//! daily logs, each compared with what the home holds (documents by the manifest's SHA-256 first).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use serde_json::Value;

use super::compare::same_but_redacted;
use super::parts::Spool;
use super::plan::{invalid, lines_of, rows_of, FileAction, FileData, FilePlan};
use super::{BackupSource, Mode, RestoreOptions};
use crate::gateway::category::Category;
use crate::gateway::layout::{self, DAILY_LOGS};
use crate::gateway::{GatewayError, GatewayResult};

fn read_present(path: &Path, backup_path: &str) -> GatewayResult<Option<Vec<u8>>> {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(GatewayError::io(path, e)),
        // A present file far larger than the backup's part can never equal it: not read.
        Ok(m) if m.len() > crate::format::layout::gateway_part_cap(backup_path) => return Ok(Some(Vec::new())),
        Ok(_) => {}
    }
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(GatewayError::io(path, e)),
    }
}

/// Content the restore made, kept in the plan: a small one in memory, a larger one in the spool, so
/// that the plan of a gateway with many files does not hold them all.
fn generated(spool: &Spool, rel: &str, data: Vec<u8>) -> GatewayResult<FileData> {
    if data.len() <= 4096 {
        return Ok(FileData::Bytes(data));
    }
    let file = spool.file(rel);
    std::fs::write(&file, &data).map_err(|e| GatewayError::io(&file, e))?;
    Ok(FileData::Spooled(file))
}

/// How many orphan documents an error names before it says "and N more".
const ORPHANS_NAMED: usize = 20;

/// The files beside the database and the per-tenant daily logs.
pub(super) fn plan_files(
    home: &Path,
    src: &dyn BackupSource,
    opts: &RestoreOptions,
    wants: &dyn Fn(Category) -> bool,
    named_documents: &HashSet<String>,
    spool: &Spool,
) -> GatewayResult<Vec<FilePlan>> {
    let additive = opts.mode == Mode::Additive;
    let decide = |same: bool, present: bool| match (same, present) {
        (true, _) => FileAction::Unchanged,
        (false, true) if additive => FileAction::Quarantine,
        _ => FileAction::Write,
    };
    // Documents are compared by the SHA-256 the manifest records, so planning reads a backup's
    // document only when the hashes differ (the manifest has the database's hash, which a file
    // changed behind the gateway's back no longer matches: the bytes decide).
    // Only the documents' entries are kept, read one at a time.
    let mut manifest: HashMap<String, String> = HashMap::new();
    if wants(Category::Documents) {
        rows_of(src, spool, "manifest.json", Some("files"), &mut |f| {
            if let (Some(p), Some(sha)) = (f["path"].as_str(), f["sha256"].as_str()) {
                if p.starts_with("documents/files/") {
                    manifest.insert(p.to_string(), sha.to_string());
                }
            }
            Ok(())
        })?;
    }
    let mut out = Vec::new();
    let mut orphans = Vec::new();
    for p in src.paths() {
        let Some((cat, rel)) = layout::home_path(&p) else { continue };
        if !wants(cat) {
            continue;
        }
        let size = src.size(&p).unwrap_or(0);
        let present_path = home.join(&rel);
        if cat == Category::Documents {
            if !named_documents.contains(&p) {
                orphans.push(p);
                continue;
            }
            // Streamed on both sides, never held whole: the present file is hashed in bounded
            // pieces and compared with the manifest's SHA-256, and when that differs (the
            // manifest has the database's hash, which a file changed behind the gateway's back no
            // longer matches) with the backup's bytes, hashed as they stream by.
            let present_len = std::fs::metadata(&present_path).ok().filter(|m| m.is_file()).map(|m| m.len());
            let same = match present_len {
                Some(n) if n == size => match super::parts::sha256_of_file(&present_path)? {
                    Some(have) if manifest.get(&p).is_some_and(|sha| *sha == have) => true,
                    Some(have) => super::parts::sha256_of_entry(src, &p)? == have,
                    None => false,
                },
                _ => false,
            };
            let action = decide(same, present_len.is_some());
            out.push(FilePlan { category: cat, home_path: rel, bytes: size, action, data: FileData::Backup(p) });
            continue;
        }
        let present = read_present(&present_path, &p)?;
        let Some(mut data) = super::parts::read_part(src, &p)? else { continue };
        // A settings file is the same when its values are: the home's file may be laid out by hand.
        let mut same_values = false;
        if super::config_merge::is_settings_file(cat, &rel) {
            if let Ok(mut v) = serde_json::from_slice::<Value>(&data) {
                let pv = present.as_ref().and_then(|p| serde_json::from_slice::<Value>(p).ok());
                super::config_merge::merge(&mut v, pv.as_ref());
                same_values = pv.as_ref() == Some(&v);
                data = serde_json::to_vec_pretty(&v).map_err(invalid)?;
                data.push(b'\n');
            }
        }
        let same = same_values
            || present.as_ref().is_some_and(|p| *p == data || (cat != Category::Config && same_but_redacted(&data, p)));
        let action = decide(same, present.is_some());
        let data = generated(spool, &rel, data)?;
        out.push(FilePlan { category: cat, home_path: rel, bytes: size, action, data });
    }
    if !orphans.is_empty() {
        let more = orphans.len().saturating_sub(ORPHANS_NAMED);
        let mut named = orphans.iter().take(ORPHANS_NAMED).cloned().collect::<Vec<_>>().join(", ");
        if more > 0 {
            named.push_str(&format!(" and {more} more"));
        }
        return Err(invalid(format!(
            "the backup holds {} document file(s) that no row of documents/index.json names: {named}; \
             a gateway backup never does (the file would be an orphan in the home), so the restore is refused \
             before anything is written. Restore the other categories with --only, leaving documents out",
            orphans.len()
        )));
    }
    // Daily logs: one backup file a day, split back per tenant.
    if wants(Category::Memory) {
        for p in src.paths().into_iter().filter(|p| p.starts_with(DAILY_LOGS)) {
            let day = p.trim_start_matches(DAILY_LOGS).to_string();
            let mut per_tenant: BTreeMap<String, Vec<u8>> = BTreeMap::new();
            lines_of(src, spool, &p, &mut |mut line| {
                let tenant = match &opts.into_tenant {
                    Some(t) => t.clone(),
                    None => line["tenant_id"].as_str().unwrap_or("default").to_string(),
                };
                if let Some(m) = line.as_object_mut() {
                    m.remove("tenant_id");
                }
                let out = per_tenant.entry(tenant).or_default();
                serde_json::to_writer(&mut *out, &line).map_err(invalid)?;
                out.push(b'\n');
                Ok(())
            })?;
            for (tenant, data) in per_tenant {
                let rel = layout::daily_log_home_path(&tenant, &day);
                let present = read_present(&home.join(&rel), &p)?;
                let action = decide(present.as_ref() == Some(&data), present.is_some());
                let bytes = data.len() as u64;
                let data = generated(spool, &rel, data)?;
                out.push(FilePlan { category: Category::Memory, home_path: rel, bytes, action, data });
            }
        }
    }
    Ok(out)
}
