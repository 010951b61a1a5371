//! Exports open in the tools people will use on them: `unzip -t`, Python's `zipfile` (testzip and
//! a byte comparison of every member), `bsdtar -tf`, `7z t` and GNU `tar -tzf`; also past zip's
//! classic limits (more than 65,535 entries; over 4 GiB with SOPHON_SLOW_TESTS=1, which
//! `scripts/test` sets). And archives that are unsafe are refused with nothing written.
//! `scripts/test` installs the tools; these tests fail, not skip, when one is missing.

mod common;

use std::path::Path;
use std::process::Command;

use common::gateway::*;
use common::*;

fn tool(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd} is needed by this test (scripts/test installs it): {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Python's zipfile: testzip, then every member byte for byte against the folder it came from.
fn python_compare(zip: &Path, prefix: &str, source: &Path) -> usize {
    let script = r#"
import sys, zipfile, os
z = zipfile.ZipFile(sys.argv[1])
bad = z.testzip()
assert bad is None, "testzip: " + str(bad)
prefix, src = sys.argv[2], sys.argv[3]
n = 0
for info in z.infolist():
    if info.is_dir() or not info.filename.startswith(prefix):
        continue
    path = os.path.join(src, info.filename[len(prefix):])
    if (info.external_attr >> 16) & 0o170000 == 0o120000:
        assert z.read(info) == os.fsencode(os.readlink(path)), "symlink target: " + info.filename
        n += 1
        continue
    with z.open(info) as a, open(path, "rb") as b:
        while True:
            x, y = a.read(1 << 20), b.read(1 << 20)
            assert x == y, "differs: " + info.filename
            if not x:
                break
    n += 1
print(n)
"#;
    tool("python3", &["-c", script, s(zip), prefix, s(source)]).trim().parse().unwrap()
}

fn backup_and_export(sophon: &Sophon, t: &Path, source: &Path, out: &Path) {
    let repo = t.join("repo");
    if !repo.exists() {
        sophon.init(&repo);
    }
    sophon.ok(&["backup", "create", "--repo", s(&repo), "--path", s(source), "-q"]);
    sophon.ok(&["backup", "export", "latest", "--repo", s(&repo), "--out", s(out)]);
}

#[test]
fn zip_and_tar_gz_exports_open_in_real_tools() {
    let t = tempfile::tempdir().unwrap();
    let sophon = Sophon::new(t.path());
    let source = t.path().join("data");
    sample_tree(&source, 6 * 1024, 11);
    // Incompressible, compressible, empty, a long name, and a file of several chunks.
    write(&source.join("noise.bin"), &pseudo_random(3 << 20, 5));
    write(&source.join("text.txt"), &text(3 << 20, 6));
    write(&source.join("empty"), b"");
    let long = format!("{}/{}.txt", "d".repeat(120), "n".repeat(150));
    write(&source.join(&long), b"a path longer than ustar's 100 bytes");
    let files = files_below(&source).len();

    let zip = t.path().join("out.zip");
    backup_and_export(&sophon, t.path(), &source, &zip);
    tool("unzip", &["-tq", s(&zip)]);
    assert_eq!(python_compare(&zip, "backup/data/", &source), files);
    tool("7z", &["t", s(&zip)]);
    let listed = tool("bsdtar", &["-tf", s(&zip)]);
    assert!(listed.contains("backup/manifest.json"));

    let tgz = t.path().join("out.tar.gz");
    sophon.ok(&["backup", "export", "latest", "--repo", s(&t.path().join("repo")), "--out", s(&tgz)]);
    let listed = tool("tar", &["-tzf", s(&tgz)]);
    assert!(listed.contains(&format!("backup/data/{long}")), "PAX long names survive GNU tar");
    tool("bsdtar", &["-tf", s(&tgz)]);
    tool("7z", &["t", s(&tgz)]);
    let unpacked = t.path().join("unpacked");
    std::fs::create_dir(&unpacked).unwrap();
    tool("tar", &["-xzf", s(&tgz), "-C", s(&unpacked)]);
    // Content and names; tar keeps whole-second times, so those are not compared here.
    let rel = |root: &Path| -> Vec<(String, String)> {
        hash_tree(root).into_iter().map(|(p, h)| (p[root.display().to_string().len()..].to_string(), h)).collect()
    };
    assert_eq!(rel(&source), rel(&unpacked.join("backup/data")));
    // The manifest checks out with sha256sum.
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(unpacked.join("backup/manifest.json")).unwrap()).unwrap();
    let mut sums = String::new();
    for f in manifest["files"].as_array().unwrap() {
        sums.push_str(&format!("{}  {}\n", f["sha256"].as_str().unwrap(), f["path"].as_str().unwrap()));
    }
    std::fs::write(unpacked.join("SHA256SUMS"), sums).unwrap();
    let out = Command::new("sha256sum")
        .args(["-c", "--quiet", "../SHA256SUMS"])
        .current_dir(unpacked.join("backup"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn a_zip_with_more_than_65535_entries_uses_zip64_and_opens_everywhere() {
    let t = tempfile::tempdir().unwrap();
    let sophon = Sophon::new(t.path());
    let source = t.path().join("many");
    for i in 0..66_000u32 {
        let dir = source.join(format!("{:03}", i / 1000));
        if i % 1000 == 0 {
            std::fs::create_dir_all(&dir).unwrap();
        }
        std::fs::write(dir.join(format!("{i}")), i.to_string()).unwrap();
    }
    let zip = t.path().join("many.zip");
    backup_and_export(&sophon, t.path(), &source, &zip);
    tool("unzip", &["-tq", s(&zip)]);
    tool("7z", &["t", s(&zip)]);
    assert_eq!(python_compare(&zip, "backup/many/", &source), 66_000);
    let listed = tool("bsdtar", &["-tf", s(&zip)]);
    assert!(listed.lines().count() > 66_000);
}

#[test]
fn a_zip_over_4_gib_opens_everywhere() {
    if std::env::var_os("SOPHON_SLOW_TESTS").is_none() {
        eprintln!("skipped: set SOPHON_SLOW_TESTS=1 (scripts/test does) to write and check a 4 GiB zip");
        return;
    }
    let t = scratch_for(5 << 30);
    let sophon = Sophon::new(t.path());
    let source = t.path().join("big");
    std::fs::create_dir(&source).unwrap();
    // Just over 4 GiB of incompressible bytes (stored in the zip) that deduplicate to one MiB in the
    // repository. The source file is deleted once backed up, so the disk never holds it and the zip
    // at the same time (CI machines have little room), and members are compared with the pattern.
    const BLOCKS: usize = 4112;
    let block = pseudo_random(1 << 20, 9);
    {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(std::fs::File::create(source.join("huge.bin")).unwrap());
        for _ in 0..BLOCKS {
            f.write_all(&block).unwrap();
        }
        f.into_inner().unwrap().sync_all().unwrap();
    }
    let small = b"after the big one: its offset is past 4 GiB";
    write(&source.join("small.txt"), small);
    let repo = t.path().join("repo");
    sophon.init(&repo);
    sophon.ok(&["backup", "create", "--repo", s(&repo), "--path", s(&source), "-q"]);
    std::fs::remove_dir_all(&source).unwrap();
    let zip = t.path().join("big.zip");
    sophon.ok(&["backup", "export", "latest", "--repo", s(&repo), "--out", s(&zip)]);
    assert!(std::fs::metadata(&zip).unwrap().len() > 4 << 30);
    tool("unzip", &["-tq", s(&zip)]);
    tool("7z", &["t", s(&zip)]);
    let block_file = t.path().join("block");
    write(&block_file, &block);
    let script = r#"
import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
assert z.testzip() is None
block = open(sys.argv[2], "rb").read()
with z.open("backup/big/huge.bin") as f:
    n = 0
    while True:
        x = f.read(len(block))
        if not x:
            break
        assert x == block, "huge.bin differs in block %d" % n
        n += 1
assert n == int(sys.argv[3]), n
assert z.getinfo("backup/big/huge.bin").file_size > 4 << 30
assert z.read("backup/big/small.txt") == sys.argv[4].encode()
print("ok")
"#;
    let small = std::str::from_utf8(small).unwrap();
    let blocks = BLOCKS.to_string();
    assert_eq!(tool("python3", &["-c", script, s(&zip), s(&block_file), &blocks, small]).trim(), "ok");
    tool("bsdtar", &["-tf", s(&zip)]);
}

/// A scratch folder with `bytes` free: RAM-backed /dev/shm when it and the memory have the room,
/// because CI's disk is small and shared (a 4 GiB zip there once failed the whole run), else the
/// temporary folder.
fn scratch_for(bytes: u64) -> tempfile::TempDir {
    const PREFIX: &str = "sophon-big-scratch-";
    let shm = Path::new("/dev/shm");
    // What a killed run left there would hold its RAM until the next boot.
    for e in std::fs::read_dir(shm).into_iter().flatten().flatten() {
        if e.file_name().to_string_lossy().starts_with(PREFIX) {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
    // tmpfs's free space is its size limit, not free memory: the other tests need room too.
    let ram_ok = mem_available().is_some_and(|free| free > bytes + (4 << 30));
    if ram_ok && free_bytes(shm).is_some_and(|free| free > bytes + (1 << 30)) {
        return tempfile::Builder::new().prefix(PREFIX).tempdir_in(shm).unwrap();
    }
    let t = tempfile::tempdir().unwrap();
    let free = free_bytes(t.path()).unwrap_or(u64::MAX);
    assert!(free > bytes, "this test needs {bytes} bytes free in {} (or /dev/shm); {free} are", t.path().display());
    t
}

fn mem_available() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn free_bytes(dir: &Path) -> Option<u64> {
    let out = Command::new("df").args(["-Pk"]).arg(dir).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let kib: u64 = text.lines().nth(1)?.split_whitespace().nth(3)?.parse().ok()?;
    Some(kib * 1024)
}

/// Build a zip with Python from (name, content) pairs; content `ZEROS` stands for 8 MiB of zeros.
fn crafted_zip(path: &Path, members: &[(&str, &[u8])]) {
    let mut script = String::from("import zipfile, sys\nz = zipfile.ZipFile(sys.argv[1], 'w', zipfile.ZIP_DEFLATED)\n");
    for (name, data) in members {
        let expr = if *data == ZEROS {
            "b'\\0' * (8 << 20)".to_string()
        } else {
            format!("bytes.fromhex({:?})", hex::encode(data))
        };
        script.push_str(&format!("z.writestr({name:?}, {expr})\n"));
    }
    script.push_str("z.close()\n");
    let out = Command::new("python3").args(["-c", &script, s(path)]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

const ZEROS: &[u8] = b"<8 MiB of zeros>";

fn good_metadata(version: u32) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "layout_version": 1, "sophon_version": "0.1.0",
        "export": { "format_version": version, "id": "exp_0000000000000000" }
    }))
    .unwrap()
}

#[test]
fn unsafe_or_unknown_archives_are_refused_with_nothing_written() {
    let t = tempfile::tempdir().unwrap();
    let sophon = Sophon::new(t.path());
    let home = t.path().join("home");
    sophon.ok(&["gateway", "init", "--home", s(&home)]);
    let manifest = br#"{"files": []}"#;
    let meta = good_metadata(1);
    type Case<'a> = (&'a str, Vec<(&'a str, Vec<u8>)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            "escape",
            vec![
                ("backup/metadata.json", meta.clone()),
                ("backup/manifest.json", manifest.to_vec()),
                ("backup/../../evil", b"x".to_vec()),
            ],
            "escape",
        ),
        (
            "absolute",
            vec![
                ("backup/metadata.json", meta.clone()),
                ("backup/manifest.json", manifest.to_vec()),
                ("/etc/evil", b"x".to_vec()),
            ],
            "outside backup/",
        ),
        (
            "duplicate",
            vec![
                ("backup/metadata.json", meta.clone()),
                ("backup/manifest.json", manifest.to_vec()),
                ("backup/users/users.json", b"{}".to_vec()),
                ("backup/users/users.json", b"{}".to_vec()),
            ],
            "twice",
        ),
        ("layout", vec![("metadata.json", meta.clone()), ("x/manifest.json", manifest.to_vec())], "outside backup/"),
        (
            "newer",
            vec![("backup/metadata.json", good_metadata(99)), ("backup/manifest.json", manifest.to_vec())],
            "upgrade sophon",
        ),
        ("not-sophon", vec![("backup/readme.txt", b"hello".to_vec())], "not a Sophon export"),
    ];
    let before = hash_tree(&home);
    for (name, members, expect) in cases {
        let path = t.path().join(format!("{name}.zip"));
        let refs: Vec<(&str, &[u8])> = members.iter().map(|(n, d)| (*n, d.as_slice())).collect();
        crafted_zip(&path, &refs);
        let r = sophon.run(&["backup", "restore", "--in", s(&path), "--home", s(&home), "--mode", "replace", "--yes"]);
        assert_ne!(r.status.code(), Some(0), "{name} must be refused");
        let err = String::from_utf8_lossy(&r.stderr);
        assert!(err.contains(expect), "{name}: expected {expect:?} in: {err}");
        assert_eq!(before, hash_tree(&home), "{name}: nothing written");
        let v = sophon.run(&["backup", "verify", "--in", s(&path)]);
        assert_eq!(v.status.code(), Some(3), "verify of {name}: {}", String::from_utf8_lossy(&v.stdout));
    }

    // A bomb: the central directory claims a small size for a member that inflates far beyond it.
    let bomb = t.path().join("bomb.zip");
    crafted_zip(
        &bomb,
        &[("backup/metadata.json", &meta), ("backup/manifest.json", manifest), ("backup/users/users.json", ZEROS)],
    );
    let mut b = std::fs::read(&bomb).unwrap();
    // Patch the uncompressed size of users.json (local header and central directory) to 1000.
    let name = b"backup/users/users.json";
    let mut i = 0;
    while let Some(pos) = b[i..].windows(name.len()).position(|w| w == name) {
        let at = i + pos;
        let (sig_local, sig_central) = (&b[at - 30..at - 26], &b[at - 46..at - 42]);
        if sig_local == b"PK\x03\x04" {
            b[at - 8..at - 4].copy_from_slice(&1000u32.to_le_bytes());
        } else if sig_central == b"PK\x01\x02" {
            b[at - 22..at - 18].copy_from_slice(&1000u32.to_le_bytes());
        }
        i = at + 1;
    }
    std::fs::write(&bomb, &b).unwrap();
    let r = sophon.run(&["backup", "restore", "--in", s(&bomb), "--home", s(&home), "--mode", "replace", "--yes"]);
    assert_ne!(r.status.code(), Some(0), "a bomb is refused");
    assert_eq!(before, hash_tree(&home));
    let v = sophon.run(&["backup", "verify", "--in", s(&bomb)]);
    assert_eq!(v.status.code(), Some(3), "{}", String::from_utf8_lossy(&v.stdout));
}

/// Issue 11, finding 15: the archive carries `backup/SHA256SUMS`, which GNU `sha256sum -c` checks
/// in `backup/` after `unzip` (every file, the manifest included); one altered file makes it fail.
/// `backup verify --in` reads it too: a SHA256SUMS that disagrees is damage.
#[test]
fn sha256sum_checks_an_unzipped_export_with_its_sha256sums() {
    let t = tempfile::tempdir().unwrap();
    let sophon = Sophon::new(t.path());
    let home = t.path().join("home");
    sophon.ok(&["gateway", "init", "--home", s(&home)]);
    sophon.init(&home.join("backups/repository"));
    // Used: a job added, then a first backup before the exported one.
    sophon.ok(&["backup", "create", "--home", s(&home), "--quiet"]);
    sophon.ok(&[
        "cron",
        "add",
        "--home",
        s(&home),
        "--name",
        "vacuum",
        "--schedule",
        "15 5 1 * *",
        "--action",
        "custom",
        "--command",
        "true",
    ]);
    let zip = t.path().join("backup.zip");
    sophon.ok(&["backup", "create", "--home", s(&home), "--out", s(&zip), "--quiet"]);

    let unpacked = t.path().join("unpacked");
    tool("unzip", &["-q", s(&zip), "-d", s(&unpacked)]);
    let dir = unpacked.join("backup");
    let sums = std::fs::read_to_string(dir.join("SHA256SUMS")).unwrap();
    let listed: Vec<&str> = sums.lines().map(|l| l.split_once("  ").unwrap().1).collect();
    assert!(listed.contains(&"manifest.json") && listed.contains(&"metadata.json"), "{sums}");
    assert!(listed.contains(&"cron/jobs.json"), "{sums}");
    assert!(!listed.contains(&"SHA256SUMS"), "{sums}");
    let files = files_below(&dir).len();
    assert_eq!(listed.len(), files - 1, "every file but SHA256SUMS itself");
    let check = || Command::new("sha256sum").args(["-c", "--quiet", "SHA256SUMS"]).current_dir(&dir).output().unwrap();
    let ok = check();
    assert!(ok.status.success(), "{}{}", String::from_utf8_lossy(&ok.stdout), String::from_utf8_lossy(&ok.stderr));
    assert!(sophon.ok(&["backup", "verify", "--in", s(&zip)]).contains("no damage found"));

    let mut jobs = std::fs::read(dir.join("cron/jobs.json")).unwrap();
    jobs.push(b'\n');
    std::fs::write(dir.join("cron/jobs.json"), jobs).unwrap();
    let bad = check();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stdout).contains("cron/jobs.json: FAILED"), "{bad:?}");

    // A SHA256SUMS that disagrees with the manifest is found by verify.
    let tampered = t.path().join("tampered.zip");
    let script = r#"
import sys, zipfile
src, dst = zipfile.ZipFile(sys.argv[1]), zipfile.ZipFile(sys.argv[2], "w", zipfile.ZIP_DEFLATED)
for info in src.infolist():
    data = src.read(info)
    if info.filename == "backup/SHA256SUMS":
        lines = data.decode().splitlines(True)
        lines[0] = ("0" if lines[0][0] != "0" else "1") + lines[0][1:]
        data = "".join(lines).encode()
    dst.writestr(info, data)
dst.close()
"#;
    tool("python3", &["-c", script, s(&zip), s(&tampered)]);
    let out = sophon.run(&["backup", "verify", "--in", s(&tampered)]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("SHA256SUMS says SHA-256"), "{text}");
}
