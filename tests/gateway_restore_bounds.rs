//! A gateway restore's reader bounds (issue 12, finding 4): documents are streamed and compared by
//! hash, so a restore's memory does not grow with a document (from a snapshot or a zip, a
//! highly compressible one included); every part the restore holds whole is refused past the cap
//! `format-spec/export.md` §5.1 states; a zip entry typed as a FIFO is refused; a document file no
//! row names is refused. Memory is measured as the child's peak RSS (`/usr/bin/time -v`).

mod common;

use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Output;

use common::gateway::*;
use common::*;

/// The bound a restore must stay under, whatever the size of a document.
const RSS_BOUND_KIB: u64 = 200 * 1024;
/// Bigger than the bound: holding it whole once breaks the bound.
const BIG_DOC: u64 = 300 * 1000 * 1000;
const BIG_ID: &str = "doc_0b16b16b16b16b16";

/// Run `sophon args` under `/usr/bin/time -v`: its output and its peak RSS in KiB.
fn measured(sophon: &Sophon, args: &[&str]) -> (Output, u64) {
    let mut c = std::process::Command::new("/usr/bin/time");
    c.arg("-v").arg(assert_cmd::cargo::cargo_bin("sophon")).args(args);
    c.env("SOPHON_BACKUP_PASSPHRASE", PASSPHRASE)
        .env("SOPHON_CACHE_DIR", &sophon.cache)
        .env("TZ", "UTC")
        .env_remove("SOPHON_REPOSITORY")
        .env_remove("SOPHON_NEW_PASSPHRASE");
    let out = c.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let rss = stderr
        .lines()
        .find_map(|l| l.trim().strip_prefix("Maximum resident set size (kbytes):"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak RSS from /usr/bin/time: {stderr}"));
    (out, rss)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn assert_ok(out: &Output, what: &str) {
    assert!(out.status.success(), "{what}\nstdout: {}\nstderr: {}", text(&out.stdout), text(&out.stderr));
}

/// A sparse file of `size` zero bytes, the last one `last`.
fn zeros(path: &Path, size: u64, last: u8) {
    let mut f = std::fs::File::create(path).unwrap();
    f.set_len(size).unwrap();
    f.seek(SeekFrom::Start(size - 1)).unwrap();
    f.write_all(&[last]).unwrap();
}

fn sha256_of_zeros(size: u64, last: u8) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let block = vec![0u8; 1 << 20];
    let mut left = size - 1;
    while left > 0 {
        let k = left.min(block.len() as u64) as usize;
        ctx.update(&block[..k]);
        left -= k as u64;
    }
    ctx.update(&[last]);
    hex::encode(ctx.finish())
}

/// A small demo gateway with one more document of `BIG_DOC` bytes (zeros: a deflate ratio near
/// the format's limit), a repository with its backup, and a zip export of that backup.
fn big_document_backup(t: &Path) -> (Sophon, PathBuf, PathBuf, PathBuf) {
    let (home, repo, zip) = (t.join("source"), t.join("repo"), t.join("big.zip"));
    let sophon = Sophon::new(t);
    sophon.ok(&["gateway", "init", "--home", s(&home), "--demo", "--scale", "small"]);
    let file = home.join(format!("documents/files/{BIG_ID}.bin"));
    zeros(&file, BIG_DOC, 0);
    let db = rusqlite::Connection::open(home.join("gateway.db")).unwrap();
    let tenant: String = db.query_row("SELECT id FROM tenants ORDER BY id LIMIT 1", [], |r| r.get(0)).unwrap();
    db.execute(
        "INSERT INTO documents (id, tenant_id, filename, ext, mime, size, sha256, extracted_text, created_at)
         VALUES (?1, ?2, 'big.bin', 'bin', 'application/octet-stream', ?3, ?4, '', '2026-01-01T00:00:00Z')",
        rusqlite::params![BIG_ID, tenant, BIG_DOC as i64, sha256_of_zeros(BIG_DOC, 0)],
    )
    .unwrap();
    drop(db);
    sophon.init(&repo);
    sophon.ok(&["backup", "create", "--home", s(&home), "--repo", s(&repo)]);
    sophon.ok(&["backup", "export", "latest", "--repo", s(&repo), "--out", s(&zip), "--format", "zip"]);
    (sophon, home, repo, zip)
}

/// A fresh home holding the big document with other bytes at the same size: the restore must
/// compare the two (the manifest's hash does not match the present file), and keep the present.
fn home_with_a_different_big_document(sophon: &Sophon, at: &Path) {
    sophon.ok(&["gateway", "init", "--home", s(at)]);
    zeros(&at.join(format!("documents/files/{BIG_ID}.bin")), BIG_DOC, 1);
}

#[test]
fn a_big_document_is_streamed_from_a_snapshot_and_from_a_zip_in_bounded_memory() {
    let t = tempfile::tempdir().unwrap();
    let (sophon, _source, repo, zip) = big_document_backup(t.path());
    // The entry is at the deflate ratio a zip bomb has (about 1,000): 8 MB of zip stand for it.
    let script = "import sys, zipfile; print(zipfile.ZipFile(sys.argv[1]).getinfo(sys.argv[2]).compress_size)";
    let entry = format!("backup/documents/files/{BIG_ID}.bin");
    let o = std::process::Command::new("python3").args(["-c", script, s(&zip), &entry]).output().unwrap();
    let packed: u64 = text(&o.stdout).trim().parse().unwrap_or_else(|_| panic!("python3: {}", text(&o.stderr)));
    assert!(BIG_DOC / packed > 500, "the document deflates {} times", BIG_DOC / packed);
    let quarantined = |home: &Path| -> u64 {
        let mut found = None;
        for f in files_below(&home.join("quarantine")) {
            if f.file_name().unwrap().to_string_lossy() == format!("{BIG_ID}.bin") {
                found = Some(std::fs::metadata(&f).unwrap().len());
            }
        }
        found.expect("the backup's document is in the quarantine")
    };
    let present_kept = |home: &Path| {
        let p = home.join(format!("documents/files/{BIG_ID}.bin"));
        assert_eq!(std::fs::metadata(&p).unwrap().len(), BIG_DOC);
        let mut f = std::fs::File::open(&p).unwrap();
        f.seek(SeekFrom::End(-1)).unwrap();
        let mut last = [0u8];
        std::io::Read::read_exact(&mut f, &mut last).unwrap();
        assert_eq!(last, [1], "the present document is kept");
    };

    let from_snapshot = t.path().join("from-snapshot");
    home_with_a_different_big_document(&sophon, &from_snapshot);
    let args = ["backup", "restore", "--repo", s(&repo), "--snapshot", "latest", "--home", s(&from_snapshot)];
    let (dry, dry_rss) = measured(&sophon, &[&args[..], &["--dry-run", "--json"]].concat());
    assert_ok(&dry, "dry run from the snapshot");
    let (out, rss) = measured(&sophon, &[&args[..], &["--json"]].concat());
    assert_ok(&out, "restore from the snapshot");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let docs = report["categories"].as_array().unwrap().iter().find(|c| c["category"] == "documents").unwrap();
    assert!(docs["quarantined"].as_u64().unwrap() >= 1, "{docs}");
    present_kept(&from_snapshot);
    assert_eq!(quarantined(&from_snapshot), BIG_DOC);

    let from_zip = t.path().join("from-zip");
    home_with_a_different_big_document(&sophon, &from_zip);
    let args = ["backup", "restore", "--in", s(&zip), "--home", s(&from_zip)];
    let (zdry, zdry_rss) = measured(&sophon, &[&args[..], &["--dry-run"]].concat());
    assert_ok(&zdry, "dry run from the zip");
    let (zout, zrss) = measured(&sophon, &args);
    assert_ok(&zout, "restore from the zip");
    present_kept(&from_zip);
    assert_eq!(quarantined(&from_zip), BIG_DOC);

    for (what, kib) in [("snapshot dry run", dry_rss), ("snapshot", rss), ("zip dry run", zdry_rss), ("zip", zrss)] {
        eprintln!("peak RSS, restore of a {BIG_DOC}-byte document from the {what}: {} MiB", kib / 1024);
        assert!(
            kib < RSS_BOUND_KIB,
            "restoring a {BIG_DOC}-byte document from the {what} peaked at {} MiB (bound: {} MiB)",
            kib / 1024,
            RSS_BOUND_KIB / 1024
        );
    }
}

/// Rewrites the zip at argv[1] into argv[2] as argv[3] says, then rewrites `manifest.json` and
/// `SHA256SUMS` to match, so that only the forged property is wrong.
const FORGE: &str = r#"
import sys, zipfile, hashlib, json
src, dst, mode = sys.argv[1], sys.argv[2], sys.argv[3]
zin = zipfile.ZipFile(src)
entries = []
for info in zin.infolist():
    entries.append([info, b"" if info.is_dir() else zin.read(info)])
def find(name):
    for e in entries:
        if e[0].filename == name:
            return e
    return None
def add(name, data):
    info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
    info.create_system = 3
    info.external_attr = 0o100644 << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    at = [i for i, e in enumerate(entries) if e[0].filename == "backup/metadata.json"][0]
    entries.insert(at, [info, data])
if mode == "fifo":
    doc = [e for e in entries if e[0].filename.startswith("backup/documents/files/") and not e[0].is_dir()][0]
    doc[0].external_attr = (0o010644 << 16)
    print(doc[0].filename)
elif mode == "orphan":
    add("backup/documents/files/doc_00000000000000ba.txt", b"no row names me\n")
elif mode.startswith("pad:"):
    # pad:PATH:SIZE, PATH ending with / for the first file below it: spaces before its last byte
    _, name, size = mode.split(":")
    e = [e for e in entries if e[0].filename.startswith("backup/" + name) and not e[0].is_dir()][0]
    body = e[1].rstrip()
    pad = int(size) - len(body)
    e[1] = body[:-1] + b" " * pad + body[-1:]
    e[0].compress_type = zipfile.ZIP_DEFLATED
    print(e[0].filename)
elif mode.startswith("padrow:"):
    # padrow:PATH:KEY:N: N spaces inside the first row of the array under KEY
    _, name, key, n = mode.split(":")
    e = find("backup/" + name)
    at = e[1].index(b"{", e[1].index(b'"%s"' % key.encode())) + 1
    e[1] = e[1][:at] + b" " * int(n) + e[1][at:]
    e[0].compress_type = zipfile.ZIP_DEFLATED
    print(e[0].filename)
else:
    raise SystemExit("unknown mode " + mode)
generated = ("backup/manifest.json", "backup/SHA256SUMS")
files = []
for info, data in entries:
    if info.is_dir() or info.filename in generated:
        continue
    files.append({"path": info.filename[len("backup/"):], "size": len(data), "sha256": hashlib.sha256(data).hexdigest()})
files.sort(key=lambda f: f["path"])
manifest = (json.dumps({"files": files}, indent=2, sort_keys=True) + "\n").encode()
sums = [(f["path"], f["sha256"]) for f in files] + [("manifest.json", hashlib.sha256(manifest).hexdigest())]
sums.sort()
find("backup/manifest.json")[1] = manifest
if find("backup/SHA256SUMS") is not None:
    find("backup/SHA256SUMS")[1] = "".join("%s  %s\n" % (h, p) for p, h in sums).encode()
with zipfile.ZipFile(dst, "w") as zout:
    for info, data in entries:
        zout.writestr(info, data)
"#;

fn forge(zip: &Path, out: &Path, mode: &str) -> String {
    let o = std::process::Command::new("python3").args(["-c", FORGE, s(zip), s(out), mode]).output().unwrap();
    assert!(o.status.success(), "python3: {}", text(&o.stderr));
    text(&o.stdout).trim().to_string()
}

/// A small demo gateway, its backup as a zip, and a fresh home to restore into.
fn small_export(t: &Path) -> (Sophon, PathBuf, PathBuf) {
    let (home, repo, zip) = (t.join("source"), t.join("repo"), t.join("small.zip"));
    let sophon = Sophon::new(t);
    sophon.ok(&["gateway", "init", "--home", s(&home), "--demo", "--scale", "small"]);
    sophon.init(&repo);
    sophon.ok(&["backup", "create", "--home", s(&home), "--repo", s(&repo), "--out", s(&zip), "--format", "zip"]);
    let fresh = t.join("fresh");
    sophon.ok(&["gateway", "init", "--home", s(&fresh)]);
    (sophon, zip, fresh)
}

/// The restore of `zip` into `home` fails, its dry run too, naming `what`, and changes no byte.
fn refused(sophon: &Sophon, zip: &Path, home: &Path, what: &[&str]) -> String {
    let before = hash_tree(home);
    let mut last = String::new();
    for extra in [&["--dry-run"][..], &[]] {
        let args = [&["backup", "restore", "--in", s(zip), "--home", s(home)][..], extra].concat();
        let out = sophon.run(&args);
        let err = text(&out.stderr);
        assert!(!out.status.success(), "{args:?} must be refused\nstdout: {}\nstderr: {err}", text(&out.stdout));
        for w in what {
            assert!(err.contains(w), "the error names {w:?}: {err}");
        }
        last = err;
    }
    assert_eq!(before, hash_tree(home), "a refused restore changes no byte of the home");
    last
}

#[test]
fn every_json_part_is_refused_past_its_stated_cap_naming_it() {
    let t = tempfile::tempdir().unwrap();
    let (sophon, zip, fresh) = small_export(t.path());
    let mib = 1u64 << 20;
    // The caps of format-spec/export.md §5.1. Each case was accepted, and read whole, before.
    let row = 16 * mib;
    let cases: Vec<(&str, String, u64)> = vec![
        // A row of a part read one row at a time (here 17 MiB of one user).
        ("users.zip", format!("padrow:users/users.json:users:{}", row + mib), row),
        // A workflow's file and a settings file, read whole.
        ("workflow.zip", format!("pad:workflows/:{}", 16 * mib + 1), 16 * mib),
        ("settings.zip", format!("pad:config/appsettings.backup.json:{}", 4 * mib + 1), 4 * mib),
        // metadata.json: 300 MB of it.
        ("metadata.zip", "pad:metadata.json:300000000".to_string(), 64 * mib),
    ];
    for (name, mode, cap) in cases {
        let bad = t.path().join(name);
        let part = forge(&zip, &bad, &mode);
        let part = part.trim_start_matches("backup/");
        let err = refused(&sophon, &bad, &fresh, &[part, &cap.to_string()]);
        assert!(err.contains("larger than") || err.contains("limit"), "{err}");
        std::fs::remove_file(&bad).unwrap();
    }
    // manifest.json (it had no cap), read whole by the archive's reader.
    let bad = t.path().join("manifest.zip");
    forge_big_manifest(&zip, &bad, 64 * mib + 1);
    refused(&sophon, &bad, &fresh, &["manifest.json", &(64 * mib).to_string()]);
}

/// A `manifest.json` padded past `size` bytes (its own checksum cannot be in itself, so only
/// `SHA256SUMS` is rewritten to match).
fn forge_big_manifest(zip: &Path, out: &Path, size: u64) {
    let script = r#"
import sys, zipfile, hashlib
src, dst, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
zin = zipfile.ZipFile(src)
entries = [[i, b"" if i.is_dir() else zin.read(i)] for i in zin.infolist()]
for e in entries:
    if e[0].filename == "backup/manifest.json":
        body = e[1].rstrip()
        e[1] = body[:-1] + b" " * (size - len(body)) + body[-1:]
        e[0].compress_type = zipfile.ZIP_DEFLATED
        sha = hashlib.sha256(e[1]).hexdigest()
for e in entries:
    if e[0].filename == "backup/SHA256SUMS":
        lines = [l for l in e[1].decode().splitlines() if not l.endswith("  manifest.json")]
        lines.append("%s  manifest.json" % sha)
        lines.sort(key=lambda l: l[66:])
        e[1] = ("\n".join(lines) + "\n").encode()
with zipfile.ZipFile(dst, "w") as zout:
    for info, data in entries:
        zout.writestr(info, data)
"#;
    let o =
        std::process::Command::new("python3").args(["-c", script, s(zip), s(out), &size.to_string()]).output().unwrap();
    assert!(o.status.success(), "python3: {}", text(&o.stderr));
}

#[test]
fn a_zip_entry_typed_as_a_fifo_is_refused_naming_it() {
    let t = tempfile::tempdir().unwrap();
    let (sophon, zip, fresh) = small_export(t.path());
    let bad = t.path().join("fifo.zip");
    let entry = forge(&zip, &bad, "fifo");
    assert!(entry.starts_with("backup/documents/files/"), "{entry}");
    refused(&sophon, &bad, &fresh, &[&entry, "not a regular file"]);
    let out = sophon.run(&["backup", "verify", "--in", s(&bad)]);
    assert!(!out.status.success(), "verify refuses it too");
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(said.contains(&entry), "{said}");
}

#[test]
fn a_document_file_no_row_names_is_refused_naming_it() {
    let t = tempfile::tempdir().unwrap();
    let (sophon, zip, fresh) = small_export(t.path());
    let bad = t.path().join("orphan.zip");
    forge(&zip, &bad, "orphan");
    // The forged archive is consistent: it verifies.
    sophon.ok(&["backup", "verify", "--in", s(&bad)]);
    let err = refused(&sophon, &bad, &fresh, &["documents/files/doc_00000000000000ba.txt", "no row"]);
    assert!(err.contains("--only"), "the error says how to restore the rest: {err}");
    assert!(!fresh.join("documents/files/doc_00000000000000ba.txt").exists());
    // Without the documents category the rest of the backup restores.
    sophon.ok(&["backup", "restore", "--in", s(&bad), "--home", s(&fresh), "--only", "users"]);
    assert!(!fresh.join("documents/files/doc_00000000000000ba.txt").exists());
}
