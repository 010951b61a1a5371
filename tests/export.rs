//! Exports: a gateway through a sealed zip, a tar.gz and an incremental chain into a fresh gateway;
//! sealed archives that are damaged, truncated or opened with the wrong passphrase are refused by
//! verify and by restore with nothing written to the home; unsafe archives are refused.

mod common;

use std::path::{Path, PathBuf};

use common::gateway::*;
use common::*;
use serde_json::Value;

/// Record counts per category, the license aside (an export leaves it out unless asked).
fn counts(sophon: &Sophon, home: &Path) -> std::collections::BTreeMap<String, (u64, u64)> {
    let mut c = record_counts(&stats(sophon, home));
    c.remove("license");
    c
}

fn demo(t: &Path) -> (Sophon, PathBuf) {
    let home = t.join("source");
    let sophon = Sophon::new(t);
    sophon.ok(&["gateway", "init", "--home", s(&home), "--demo", "--scale", "small"]);
    (sophon, home)
}

fn fresh(sophon: &Sophon, t: &Path, name: &str) -> PathBuf {
    let home = t.join(name);
    sophon.ok(&["gateway", "init", "--home", s(&home)]);
    home
}

/// Every record equal but for redacted fields.
fn assert_same_records(source: &Path, restored: &Path) {
    let (a, b) = (records(source), records(restored));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>(), "the same records");
    for (key, row) in &a {
        for (col, v) in row {
            let w = &b[key][col];
            assert!(
                v == w || w.contains(sophon::gateway::redact::REDACTED),
                "{key:?}.{col}: {v} became {w}, which is not a redaction"
            );
        }
    }
}

#[test]
fn a_gateway_goes_through_a_sealed_zip_and_a_tar_gz_into_a_fresh_gateway() {
    let t = tempfile::tempdir().unwrap();
    let (sophon, source) = demo(t.path());
    let zip = t.path().join("out/migrate.zip");
    let out = sophon.ok(&["backup", "create", "--home", s(&source), "--out", s(&zip), "--encrypt", "--json"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["export"]["sealed"], true);
    assert_eq!(v["export"]["format"], "zip");
    assert!(zip.exists());
    let leftovers: Vec<_> = std::fs::read_dir(zip.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers.len(), 1, "no partial file left beside the archive: {leftovers:?}");

    let target = fresh(&sophon, t.path(), "fresh-zip");
    sophon.ok(&["backup", "restore", "--in", s(&zip), "--home", s(&target), "--mode", "replace", "--yes"]);
    assert_eq!(counts(&sophon, &source), counts(&sophon, &target));
    assert_same_records(&source, &target);

    // The same archive through a pipe: `verify --in -` reads standard input.
    let piped = sophon.cmd().args(["backup", "verify", "--in", "-"]).pipe_stdin(&zip).unwrap().output().unwrap();
    assert_eq!(piped.status.code(), Some(0), "{}", String::from_utf8_lossy(&piped.stderr));
    assert!(String::from_utf8_lossy(&piped.stdout).contains("no damage found"));

    // tar.gz, rendered from the repository's latest snapshot with `backup export`.
    let tgz = t.path().join("out2/export.tar.gz");
    let repo = source.join("backups/repository");
    sophon.ok(&["backup", "export", "latest", "--repo", s(&repo), "--out", s(&tgz)]);
    let target = fresh(&sophon, t.path(), "fresh-tgz");
    sophon.ok(&["backup", "restore", "--in", s(&tgz), "--home", s(&target), "--mode", "replace", "--yes"]);
    assert_eq!(counts(&sophon, &source), counts(&sophon, &target));
    assert_same_records(&source, &target);
}

#[test]
fn a_chain_of_one_full_and_three_incrementals_restores_the_final_state() {
    let t = tempfile::tempdir().unwrap();
    let (sophon, source) = demo(t.path());
    let dir = t.path().join("exports");
    let export = |name: &str, incremental: bool| -> Value {
        let path = dir.join(name);
        let mut args = vec!["backup", "create", "--home", s(&source), "--out", s(&path), "--json", "--encrypt"];
        if incremental {
            args.extend_from_slice(&["--incremental", "--since-last"]);
        }
        serde_json::from_str(&sophon.ok(&args)).unwrap()
    };
    let full = export("0-full.zip", false);
    let db = || rusqlite::Connection::open(source.join("gateway.db")).unwrap();
    let mut ids = vec![full["export"]["export_id"].as_str().unwrap().to_string()];
    let changes = [
        "INSERT INTO memory_entries (id, tenant_id, agent_id, kind, content, created_at)
           SELECT 'inc1-' || id, tenant_id, agent_id, 'fact', 'learned later', created_at FROM memory_entries LIMIT 40;",
        "UPDATE workflows SET name = name || ' v2' WHERE id IN (SELECT id FROM workflows LIMIT 2);",
        "DELETE FROM memory_entries WHERE id LIKE 'inc1-%' AND rowid % 2 = 0;",
    ];
    for (i, sql) in changes.iter().enumerate() {
        db().execute_batch(sql).unwrap();
        if i == 1 {
            // A document goes: its file leaves the home and the archive lists it as deleted.
            let (id, ext): (String, String) = db()
                .query_row("SELECT id, ext FROM documents ORDER BY id LIMIT 1", [], |r| Ok((r.get(0)?, r.get(1)?)))
                .unwrap();
            db().execute("DELETE FROM documents WHERE id = ?1", [&id]).unwrap();
            std::fs::remove_file(source.join("documents/files").join(format!("{id}.{ext}"))).unwrap();
        }
        let v = export(&format!("{}-incr.zip", i + 1), true);
        assert_eq!(
            v["export"]["follows"].as_str().unwrap(),
            ids.last().unwrap().as_str(),
            "each follows the one before"
        );
        assert!(
            v["export"]["files"].as_u64().unwrap() < full["export"]["files"].as_u64().unwrap() / 2,
            "an incremental holds only what changed: {}",
            v["export"]
        );
        ids.push(v["export"]["export_id"].as_str().unwrap().to_string());
    }
    let newest = dir.join("3-incr.zip");
    // Writing an incremental over the export it would follow, or over an older link, is refused
    // (names given here relative to the working folder).
    for link in ["3-incr.zip", "1-incr.zip"] {
        let r = sophon
            .cmd()
            .current_dir(&dir)
            .args(["backup", "create", "--home", s(&source), "--out", link, "--encrypt", "--incremental"])
            .arg("--since-last")
            .output()
            .unwrap();
        assert_ne!(r.status.code(), Some(0));
        assert!(String::from_utf8_lossy(&r.stderr).contains("never replaces an archive"), "{r:?}");
    }
    let out = sophon.ok(&["backup", "verify", "--in", s(&newest)]);
    assert!(out.contains("4 archive(s)"), "{out}");

    let target = fresh(&sophon, t.path(), "fresh");
    sophon.ok(&["backup", "restore", "--in", s(&newest), "--home", s(&target), "--mode", "replace", "--yes"]);
    assert_eq!(counts(&sophon, &source), counts(&sophon, &target));
    assert_same_records(&source, &target);

    // A missing link is refused, named, and nothing is written.
    std::fs::rename(dir.join("1-incr.zip"), t.path().join("elsewhere.zip")).unwrap();
    let other = fresh(&sophon, t.path(), "other");
    let before = hash_tree(&other);
    let r = sophon.run(&["backup", "restore", "--in", s(&newest), "--home", s(&other), "--mode", "replace", "--yes"]);
    assert_ne!(r.status.code(), Some(0));
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains(&ids[1]), "the missing export is named: {err}");
    assert_eq!(before, hash_tree(&other));
}

/// The segment size of the sealed envelope (format-spec/export-seal.md) and its tag.
const SEGMENT: usize = 64 * 1024;
const TAG: usize = 16;

#[test]
fn damaged_sealed_archives_are_refused_by_verify_and_restore_with_nothing_written() {
    let t = tempfile::tempdir().unwrap();
    let (sophon, source) = demo(t.path());
    let good = t.path().join("good.zip");
    sophon.ok(&["backup", "create", "--home", s(&source), "--out", s(&good), "--encrypt"]);
    assert!(sophon.expect(0, &["backup", "verify", "--in", s(&good)]).contains("no damage found"));
    let bytes = std::fs::read(&good).unwrap();
    let header = sophon::export::seal::HEADER_LEN;
    let body = bytes.len() - header;
    assert!(body > 4 * (SEGMENT + TAG), "several segments: {body} bytes");

    let mut cases: Vec<(String, Vec<u8>)> = Vec::new();
    for at in [0, 9, header - 1, header + 10, header + SEGMENT + TAG + 5, bytes.len() / 2, bytes.len() - 1] {
        let mut b = bytes.clone();
        b[at] ^= 0x40;
        cases.push((format!("flipped byte {at}"), b));
    }
    cases.push(("truncated at a segment boundary".into(), bytes[..header + 2 * (SEGMENT + TAG)].to_vec()));
    cases.push(("truncated mid-segment".into(), bytes[..bytes.len() - 100].to_vec()));
    let mut dropped = bytes[..header + SEGMENT + TAG].to_vec();
    dropped.extend_from_slice(&bytes[header + 2 * (SEGMENT + TAG)..]);
    cases.push(("a dropped segment".into(), dropped));
    let mut swapped = bytes[..header].to_vec();
    swapped.extend_from_slice(&bytes[header + SEGMENT + TAG..header + 2 * (SEGMENT + TAG)]);
    swapped.extend_from_slice(&bytes[header..header + SEGMENT + TAG]);
    swapped.extend_from_slice(&bytes[header + 2 * (SEGMENT + TAG)..]);
    cases.push(("two segments swapped".into(), swapped));

    let home = fresh(&sophon, t.path(), "home");
    let before = hash_tree(&home);
    for (i, (what, data)) in cases.iter().enumerate() {
        let path = t.path().join(format!("bad-{i}.zip"));
        std::fs::write(&path, data).unwrap();
        let v = sophon.run(&["backup", "verify", "--in", s(&path)]);
        assert_eq!(v.status.code(), Some(3), "verify of {what}: {}", String::from_utf8_lossy(&v.stdout));
        let r = sophon.run(&["backup", "restore", "--in", s(&path), "--home", s(&home), "--mode", "replace", "--yes"]);
        assert_ne!(r.status.code(), Some(0), "restore of {what}");
        assert_eq!(before, hash_tree(&home), "restore of {what} wrote nothing");
    }
    // The wrong passphrase.
    let wrong = sophon
        .cmd()
        .env("SOPHON_BACKUP_PASSPHRASE", "not-it")
        .args(["backup", "verify", "--in", s(&good)])
        .output()
        .unwrap();
    assert_eq!(wrong.status.code(), Some(3));
    assert!(
        String::from_utf8_lossy(&wrong.stdout).contains("wrong passphrase"),
        "{}",
        String::from_utf8_lossy(&wrong.stdout)
    );
    let r = sophon
        .cmd()
        .env("SOPHON_BACKUP_PASSPHRASE", "not-it")
        .args(["backup", "restore", "--in", s(&good), "--home", s(&home), "--mode", "replace", "--yes"])
        .output()
        .unwrap();
    assert_ne!(r.status.code(), Some(0));
    assert_eq!(before, hash_tree(&home));
}

#[test]
fn a_plain_archive_with_a_changed_file_fails_verify_naming_it() {
    let t = tempfile::tempdir().unwrap();
    let (sophon, source) = demo(t.path());
    let tgz = t.path().join("plain.tar.gz");
    sophon.ok(&["backup", "create", "--home", s(&source), "--out", s(&tgz)]);
    // Repack with one member changed and one unlisted member added, with Python's tarfile.
    let bad = t.path().join("bad.tar.gz");
    let script = format!(
        r#"
import tarfile, io
src = tarfile.open({src:?}, "r:gz")
dst = tarfile.open({dst:?}, "w:gz")
for m in src.getmembers():
    data = src.extractfile(m).read() if m.isfile() else None
    if m.name == "backup/users/users.json":
        data = data.replace(b"acme", b"acmf", 1)
    if data is not None:
        m.size = len(data)
        dst.addfile(m, io.BytesIO(data))
    else:
        dst.addfile(m)
extra = tarfile.TarInfo("backup/users/extra.json"); extra.size = 2
dst.addfile(extra, io.BytesIO(b"{{}}"))
dst.close()
"#,
        src = s(&tgz),
        dst = s(&bad)
    );
    let ok = std::process::Command::new("python3").args(["-c", &script]).status().unwrap();
    assert!(ok.success());
    let out = sophon.expect(3, &["backup", "verify", "--in", s(&bad)]);
    assert!(out.contains("checksum: users/users.json"), "{out}");
    assert!(out.contains("unlisted: users/extra.json"), "{out}");
}
