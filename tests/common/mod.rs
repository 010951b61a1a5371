//! Helpers shared by the integration tests: deterministic sample trees, running the real binary,
//! comparing folders.
#![allow(dead_code)]

pub mod gateway;
pub mod web;

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;

pub const PASSPHRASE: &str = "integration-test-passphrase";

/// A reader that hands out data in irregular short reads, as pipes and network files do.
pub struct Jittery<'a> {
    pub data: &'a [u8],
    pub sizes: Vec<usize>,
    pub i: usize,
}

impl std::io::Read for Jittery<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let want = self.sizes[self.i % self.sizes.len()].max(1);
        self.i += 1;
        let n = want.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// Deterministic pseudo-random bytes (xorshift64).
pub fn pseudo_random(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(n);
    out
}

/// Compressible text.
pub fn text(n: usize, seed: u64) -> Vec<u8> {
    let words = ["agent ", "memory ", "tool ", "result ", "the ", "of ", "plan\n", "token "];
    let r = pseudo_random(n, seed);
    let mut out = Vec::with_capacity(n + 8);
    for b in r {
        out.extend_from_slice(words[(b % 8) as usize].as_bytes());
        if out.len() >= n {
            break;
        }
    }
    out.truncate(n);
    out
}

pub fn write(path: &Path, data: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, data).unwrap();
}

/// A folder with the kinds of entries a backup must keep: nested folders, empty files and folders,
/// symlinks, odd modes, compressible and random data, duplicates.
pub fn sample_tree(root: &Path, scale_kib: usize, seed: u64) {
    use std::os::unix::fs::PermissionsExt;
    write(&root.join("a/notes.txt"), &text(scale_kib * 64, seed));
    write(&root.join("a/b/c/deep.bin"), &pseudo_random(scale_kib * 256, seed + 1));
    write(&root.join("a/b/copy.bin"), &pseudo_random(scale_kib * 256, seed + 1));
    write(&root.join("empty"), b"");
    std::fs::create_dir_all(root.join("empty-dir")).unwrap();
    write(&root.join("logs/run.jsonl"), &text(scale_kib * 512, seed + 2));
    std::os::unix::fs::symlink("a/notes.txt", root.join("link-to-notes")).unwrap();
    std::os::unix::fs::symlink("/nonexistent/target", root.join("dangling")).unwrap();
    let ro = root.join("read-only.txt");
    write(&ro, format!("read only {seed}\n").as_bytes());
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o444)).unwrap();
    let exe = root.join("script.sh");
    write(&exe, format!("#!/bin/sh\necho {seed}\n").as_bytes());
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o750)).unwrap();
    let t = filetime::FileTime::from_unix_time(1_600_000_000, 123_456_789);
    filetime::set_file_times(root.join("a/notes.txt"), t, t).unwrap();
}

/// Compare two folders: names, kinds, contents, modes, mtimes (files and symlinks) and link targets.
pub fn assert_same_tree(a: &Path, b: &Path) {
    use std::os::unix::fs::MetadataExt;
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let (pa, pb) = (a.join(&rel), b.join(&rel));
        let ma = std::fs::symlink_metadata(&pa).unwrap();
        let mb = std::fs::symlink_metadata(&pb).unwrap_or_else(|e| panic!("{} missing: {e}", pb.display()));
        assert_eq!(ma.file_type(), mb.file_type(), "{}: type", rel.display());
        if ma.is_symlink() {
            assert_eq!(std::fs::read_link(&pa).unwrap(), std::fs::read_link(&pb).unwrap(), "{}", rel.display());
            assert_eq!(ma.mtime(), mb.mtime(), "{}: symlink mtime", rel.display());
            continue;
        }
        assert_eq!(ma.mode() & 0o7777, mb.mode() & 0o7777, "{}: mode", rel.display());
        assert_eq!((ma.mtime(), ma.mtime_nsec()), (mb.mtime(), mb.mtime_nsec()), "{}: mtime", rel.display());
        if ma.is_dir() {
            let mut na: Vec<_> = std::fs::read_dir(&pa).unwrap().map(|e| e.unwrap().file_name()).collect();
            let mut nb: Vec<_> = std::fs::read_dir(&pb).unwrap().map(|e| e.unwrap().file_name()).collect();
            na.sort();
            nb.sort();
            assert_eq!(na, nb, "{}: entries", rel.display());
            stack.extend(na.into_iter().map(|n| rel.join(n)));
        } else {
            assert!(std::fs::read(&pa).unwrap() == std::fs::read(&pb).unwrap(), "{}: content differs", rel.display());
        }
    }
}

/// Every file (not folder) below `dir`.
pub fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        for e in std::fs::read_dir(&p).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out
}

/// The size in bytes of everything below `dir`.
pub fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        for e in std::fs::read_dir(&p).unwrap() {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            if m.is_dir() {
                stack.push(e.path());
            } else {
                total += m.len();
            }
        }
    }
    total
}

/// Run the real `sophon` binary with a test passphrase and a private cache folder.
pub struct Sophon {
    pub cache: PathBuf,
}

impl Sophon {
    pub fn new(work: &Path) -> Self {
        Sophon { cache: work.join("cache") }
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::cargo_bin("sophon").unwrap();
        c.env("SOPHON_BACKUP_PASSPHRASE", PASSPHRASE)
            .env("SOPHON_CACHE_DIR", &self.cache)
            // Times in output and schedules (the server's zone) must not depend on the machine's.
            .env("TZ", "UTC")
            .env_remove("SOPHON_REPOSITORY")
            .env_remove("SOPHON_NEW_PASSPHRASE");
        c
    }

    /// The same as [`Sophon::cmd`] as a plain `std::process::Command`, for spawning and killing.
    pub fn std_cmd(&self) -> std::process::Command {
        let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("sophon"));
        c.env("SOPHON_BACKUP_PASSPHRASE", PASSPHRASE)
            .env("SOPHON_CACHE_DIR", &self.cache)
            // Times in output and schedules (the server's zone) must not depend on the machine's.
            .env("TZ", "UTC")
            .env_remove("SOPHON_REPOSITORY")
            .env_remove("SOPHON_NEW_PASSPHRASE");
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    /// Run and require exit code `code`; returns stdout.
    pub fn expect(&self, code: i32, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "sophon {args:?}\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn ok(&self, args: &[&str]) -> String {
        self.expect(0, args)
    }

    /// `repo init` with cheap Argon2 parameters (the defaults are tested separately).
    pub fn init(&self, repo: &Path) {
        self.init_url(repo.to_str().unwrap());
    }

    /// [`Sophon::init`] with 1 MiB packs, so a small test repository still has many packs.
    pub fn init_small_packs(&self, repo: &Path) {
        self.ok(&[
            "repo",
            "init",
            "--repo",
            repo.to_str().unwrap(),
            "--kdf-memory-kib",
            "1024",
            "--kdf-iterations",
            "1",
            "--pack-size-mib",
            "1",
        ]);
    }

    /// [`Sophon::init`] for any repository URL.
    pub fn init_url(&self, url: &str) {
        self.ok(&["repo", "init", "--repo", url, "--kdf-memory-kib", "1024", "--kdf-iterations", "1"]);
    }

    pub fn backup_json(&self, repo: &Path, path: &Path) -> serde_json::Value {
        let out = self.ok(&[
            "backup",
            "create",
            "--repo",
            repo.to_str().unwrap(),
            "--path",
            path.to_str().unwrap(),
            "--json",
        ]);
        serde_json::from_str(&out).unwrap()
    }
}

/// Damage a stored object in place: one bit of its middle byte, same size.
pub fn flip_middle_byte(file: &Path) {
    let mut b = std::fs::read(file).unwrap();
    let i = b.len() / 2;
    b[i] ^= 0x20;
    std::fs::write(file, b).unwrap();
}
