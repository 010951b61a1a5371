//! A full disk, for real: each test mounts a small tmpfs (so it needs root, or `unshare -rm`) and
//! fills it. A backup into a repository there, a restore or an export onto it, and an index cache
//! on it each fail at once with one line saying the disk is full, leave nothing that looks complete
//! but is not, and (for the backup) give back the space they took, so the next backup succeeds once
//! the source fits, without anyone deleting files by hand.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{pseudo_random, write, Sophon};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A tmpfs mounted on `dir` for the life of the value, unmounted when dropped (a panic included).
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let euid = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
            .unwrap_or_default();
        assert_eq!(
            euid, "0",
            "tests/full_disk.rs mounts small tmpfs file systems and needs root: run it as root, or as \
             `unshare -rm cargo test --test full_disk`"
        );
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs", s(dir)]).output();
        let out = out.expect("running mount");
        assert!(
            out.status.success(),
            "mount -t tmpfs on {} failed (the test needs root or `unshare -rm`): {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs { dir: dir.to_path_buf() }
    }

    /// (used, available) bytes.
    fn usage(&self) -> (u64, u64) {
        let out = Command::new("stat").args(["-f", "-c", "%S %b %f %a", s(&self.dir)]).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let n: Vec<u64> = text.split_whitespace().map(|x| x.parse().unwrap()).collect();
        ((n[1] - n[2]) * n[0], n[3] * n[0])
    }

    /// Fill the file system until `leave` bytes are free.
    fn fill(&self, leave: u64) {
        let (_, avail) = self.usage();
        let n = avail.saturating_sub(leave);
        let filler = self.dir.join("filler");
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&filler).unwrap();
        use std::io::Write;
        let block = vec![0x5au8; 64 * 1024];
        let mut left = n;
        while left > 0 {
            let k = left.min(block.len() as u64) as usize;
            if f.write_all(&block[..k]).is_err() {
                break;
            }
            left -= k as u64;
        }
        let _ = f.sync_all();
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount").arg(&self.dir).status().map(|s| s.success()).unwrap_or(false);
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
    }
}

/// The lines a failed command wrote to standard error, which must be exactly one `error:` line
/// saying the disk is full, with no retry behind it.
fn one_line_no_space(what: &str, out: &std::process::Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    eprintln!("{what}: {stderr}");
    assert!(!out.status.success(), "{what} succeeded on a full disk\nstderr: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{what}: not one line:\n{stderr}");
    let line = lines[0].to_lowercase();
    assert!(line.starts_with("error: "), "{what}: {stderr}");
    assert!(line.contains("no space left on device"), "{what}: does not say the disk is full: {stderr}");
    for word in ["retry", "retried", "temporary", "transient"] {
        assert!(!line.contains(word), "{what}: says {word:?}: {stderr}");
    }
    assert!(stderr.len() < 600, "{what}: {} characters: {stderr}", stderr.len());
    lines[0].to_string()
}

/// Every file below `dir`, relative, skipping the given top-level names.
fn files(dir: &Path) -> Vec<PathBuf> {
    if !dir.exists() {
        return Vec::new();
    }
    common::files_below(dir).into_iter().map(|p| p.strip_prefix(dir).unwrap().to_path_buf()).collect()
}

#[test]
fn a_backup_into_a_full_repository_fails_in_one_line_and_gives_its_space_back() {
    let t = tempfile::tempdir().unwrap();
    let mnt = t.path().join("mnt");
    let fs = Tmpfs::mount(&mnt, "8m");
    let repo = mnt.join("repo");
    let sophon = Sophon::new(t.path());
    sophon.init_small_packs(&repo);
    let src = t.path().join("src");
    // Incompressible and larger than the whole file system.
    write(&src.join("big.bin"), &pseudo_random(14 << 20, 1));
    write(&src.join("small.txt"), b"hello\n");
    let (used_before, _) = fs.usage();

    let started = Instant::now();
    let out = sophon.run(&["backup", "create", "--repo", s(&repo), "--path", s(&src), "-q"]);
    let took = started.elapsed();
    let line = one_line_no_space("backup", &out);
    assert!(line.contains(s(&repo)), "the line names no object of the repository: {line}");
    assert!(took < Duration::from_secs(10), "a full disk took {took:?} to report");

    // Nothing half-written, nothing unindexed left: verify is clean and the temporary folder empty.
    assert_eq!(files(&repo.join(".tmp")), Vec::<PathBuf>::new(), "temporary files left in .tmp/");
    let verify = sophon.ok(&["backup", "verify", "--repo", s(&repo)]);
    assert!(!verify.to_lowercase().contains("not in any index"), "{verify}");
    let (used_after, _) = fs.usage();
    assert!(
        used_after <= used_before + 256 * 1024,
        "the failed backup kept {} bytes of the file system (before {used_before}, after {used_after})",
        used_after.saturating_sub(used_before)
    );
    assert_eq!(files(&repo.join("snapshots")), Vec::<PathBuf>::new());

    // The operator frees the source; the next backup succeeds, with no file deleted by hand.
    std::fs::remove_file(src.join("big.bin")).unwrap();
    write(&src.join("medium.bin"), &pseudo_random(2 << 20, 2));
    sophon.ok(&["backup", "create", "--repo", s(&repo), "--path", s(&src), "-q"]);
    let target = t.path().join("restored");
    sophon.ok(&["backup", "restore", "--repo", s(&repo), "--snapshot", "latest", "--target", s(&target), "-q"]);
    common::assert_same_tree(&src, &target.join("src"));
    sophon.ok(&["backup", "verify", "--repo", s(&repo), "--read-data"]);
}

#[test]
fn a_restore_onto_a_full_disk_names_the_file_and_leaves_no_incomplete_file() {
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("repo");
    let sophon = Sophon::new(t.path());
    sophon.init_small_packs(&repo);
    let src = t.path().join("src");
    write(&src.join("a-small.txt"), b"small\n");
    write(&src.join("big.bin"), &pseudo_random(12 << 20, 3));
    sophon.ok(&["backup", "create", "--repo", s(&repo), "--path", s(&src), "-q"]);

    let mnt = t.path().join("mnt");
    let _fs = Tmpfs::mount(&mnt, "8m");
    let target = mnt.join("out");
    let started = Instant::now();
    let out =
        sophon.run(&["backup", "restore", "--repo", s(&repo), "--snapshot", "latest", "--target", s(&target), "-q"]);
    let line = one_line_no_space("restore", &out);
    assert!(started.elapsed() < Duration::from_secs(20));
    // The file that did not fit is named by its own name, not only by a temporary one. Which one
    // that is depends on the order the two threads wrote in: once big.bin filled the disk, the
    // small file's page no longer fit either.
    let big = target.join("src/big.bin");
    let small = target.join("src/a-small.txt");
    assert!(
        [&big, &small].iter().any(|f| line.contains(&format!("{}: No space left on device", f.display()))),
        "{line}"
    );
    assert!(!line.contains(".partial"), "{line}");
    // Every file under its own name is complete; no temporary file is left.
    for rel in files(&target) {
        let name = rel.file_name().unwrap().to_string_lossy().into_owned();
        assert!(!name.contains(".partial"), "left {}", rel.display());
        let original = src.join(rel.strip_prefix("src").unwrap());
        assert!(std::fs::read(target.join(&rel)).unwrap() == std::fs::read(&original).unwrap(), "{}", rel.display());
    }
    assert!(!big.exists(), "big.bin is there although it did not fit");
}

#[test]
fn an_export_onto_a_full_disk_fails_in_one_line_and_leaves_no_archive() {
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("repo");
    let sophon = Sophon::new(t.path());
    sophon.init_small_packs(&repo);
    let src = t.path().join("src");
    write(&src.join("big.bin"), &pseudo_random(12 << 20, 4));
    sophon.ok(&["backup", "create", "--repo", s(&repo), "--path", s(&src), "-q"]);

    let mnt = t.path().join("mnt");
    let _fs = Tmpfs::mount(&mnt, "8m");
    // To a file.
    let zip = mnt.join("export.zip");
    let out = sophon.run(&["backup", "export", "latest", "--repo", s(&repo), "--out", s(&zip)]);
    let line = one_line_no_space("export --out", &out);
    assert!(line.contains(s(&zip)), "the line does not name the archive: {line}");
    assert_eq!(files(&mnt), Vec::<PathBuf>::new(), "an export that failed left files");

    // To a destination folder (the store writer).
    let dest = mnt.join("exports/export.tar.gz");
    let out = sophon.run(&["backup", "export", "latest", "--repo", s(&repo), "--dest", s(&dest)]);
    let line = one_line_no_space("export --dest", &out);
    assert!(line.contains("export.tar.gz"), "the line does not name the archive: {line}");
    assert_eq!(files(&mnt), Vec::<PathBuf>::new(), "an export that failed left files");
}

#[test]
fn an_index_cache_on_a_full_disk_fails_in_one_line_saying_what_to_do() {
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("repo");
    let mnt = t.path().join("mnt");
    let fs = Tmpfs::mount(&mnt, "1m");
    let sophon = Sophon { cache: mnt.join("cache") };
    sophon.init_small_packs(&repo);
    let src = t.path().join("src");
    write(&src.join("one.bin"), &pseudo_random(64 << 10, 5));
    sophon.ok(&["backup", "create", "--repo", s(&repo), "--path", s(&src), "-q"]);

    // Room to open the cache, not to add a segment's worth of entries to it.
    fs.fill(48 << 10);
    // Many small files: many index entries for the cache to add.
    for i in 0..2000 {
        write(&src.join(format!("many/{i}.bin")), &pseudo_random(2 << 10, 100 + i));
    }
    let out = sophon.run(&["backup", "create", "--repo", s(&repo), "--path", s(&src), "-q"]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    let line = lines[0];
    eprintln!("cache: {line}");
    assert!(line.contains(s(&mnt.join("cache"))), "the line does not name the cache: {line}");
    assert!(line.to_lowercase().contains("full"), "{line}");
    assert!(line.contains("SOPHON_CACHE_DIR"), "the line does not say what to do: {line}");

    // The repository is fine: with the cache somewhere else, verify is clean and a backup works.
    let elsewhere = Sophon::new(t.path());
    elsewhere.ok(&["backup", "verify", "--repo", s(&repo)]);
    elsewhere.ok(&["backup", "create", "--repo", s(&repo), "--path", s(&src), "-q"]);
}

#[test]
fn a_gateway_backup_whose_export_meets_a_full_disk_keeps_its_snapshot_and_leaves_no_archive() {
    let t = tempfile::tempdir().unwrap();
    let home = t.path().join("source");
    let sophon = Sophon::new(t.path());
    sophon.ok(&["gateway", "init", "--home", s(&home), "--demo", "--scale", "small"]);
    // The first backup creates the home's repository (and says so).
    sophon.ok(&["backup", "create", "--home", s(&home), "-q"]);
    let mnt = t.path().join("mnt");
    let fs = Tmpfs::mount(&mnt, "8m");
    fs.fill(32 << 10);
    let zip = mnt.join("gateway.zip");
    let out = sophon.run(&["backup", "create", "--home", s(&home), "--out", s(&zip), "--encrypt", "-q"]);
    let line = one_line_no_space("gateway backup --out", &out);
    assert!(line.starts_with(&format!("error: {}: ", zip.display())), "the line does not name the archive: {line}");
    assert!(line.contains("was kept"), "{line}");
    assert_eq!(files(&mnt), vec![PathBuf::from("filler")], "an export that failed left files");
}
