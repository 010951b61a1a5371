//! The real `sophon` binary in temporary folders: round trips, incrementals, keys, exit codes.

mod common;

use common::*;
use std::path::Path;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn backup_list_restore_round_trip_keeps_files_modes_times_and_symlinks() {
    let t = tempfile::tempdir().unwrap();
    let (src, repo, out) = (t.path().join("src"), t.path().join("repo"), t.path().join("out"));
    sample_tree(&src, 16, 1);
    let sophon = Sophon::new(t.path());
    sophon.init(&repo);
    let snap = sophon.backup_json(&repo, &src);
    assert_eq!(snap["partial"], false);
    assert_eq!(snap["summary"]["files"], 7);

    let list: serde_json::Value =
        serde_json::from_str(&sophon.ok(&["backup", "list", "--repo", s(&repo), "--json"])).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["id"], snap["snapshot"]);

    sophon.ok(&["backup", "restore", "--repo", s(&repo), "--snapshot", "latest", "--target", s(&out)]);
    assert_same_tree(&src, &out.join("src"));

    // A unique prefix works as well as the full id.
    let id = snap["snapshot"].as_str().unwrap();
    let out2 = t.path().join("out2");
    sophon.ok(&["backup", "restore", "--repo", s(&repo), "--snapshot", &id[..10], "--target", s(&out2)]);
    assert_same_tree(&src, &out2.join("src"));
    let v = sophon.ok(&["backup", "verify", "--repo", s(&repo), "--read-data"]);
    assert!(v.contains("no damage found"), "{v}");
}

#[test]
fn second_backup_reuses_unchanged_files_and_stores_only_changes() {
    let t = tempfile::tempdir().unwrap();
    let (src, repo) = (t.path().join("src"), t.path().join("repo"));
    sample_tree(&src, 8192, 2);
    let sophon = Sophon::new(t.path());
    sophon.init(&repo);
    let first = sophon.backup_json(&repo, &src);
    let size_after_first = dir_size(&repo);

    let second = sophon.backup_json(&repo, &src);
    assert_eq!(second["parent"], first["snapshot"]);
    assert_eq!(second["summary"]["files_unmodified"], first["summary"]["files"]);
    assert_eq!(second["summary"]["bytes_added"], 0);
    // Reading everything again (no parent) still stores nothing new: dedup by content.
    let forced = sophon.ok(&["backup", "create", "--repo", s(&repo), "--path", s(&src), "--force", "--json"]);
    let forced: serde_json::Value = serde_json::from_str(&forced).unwrap();
    assert_eq!(forced["summary"]["files_new"], first["summary"]["files"]);
    assert_eq!(forced["summary"]["bytes_added"], 0);
    let growth = dir_size(&repo) - size_after_first;
    assert!(
        (growth as f64) < size_after_first as f64 * 0.001,
        "two more backups of the same folder grew the repository by {growth} of {size_after_first} bytes"
    );

    write(&src.join("logs/run.jsonl"), &text(64 * 1024, 99));
    let third = sophon.backup_json(&repo, &src);
    assert_eq!(third["summary"]["files_changed"], 1);
    // The new file plus the few small trees on its path.
    assert!(third["summary"]["bytes_added"].as_u64().unwrap() <= 80 * 1024);
}

#[test]
fn unreadable_file_is_reported_and_snapshot_is_partial() {
    use std::os::unix::fs::PermissionsExt;
    let t = tempfile::tempdir().unwrap();
    std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let (src, repo) = (t.path().join("src"), t.path().join("repo"));
    write(&src.join("ok.txt"), b"fine");
    let secret = src.join("locked.txt");
    write(&secret, b"cannot read me");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o000)).unwrap();
    let sophon = Sophon::new(t.path());
    sophon.init(&repo);
    for p in [&src, &repo, &t.path().to_path_buf()] {
        std::process::Command::new("chmod").args(["-R", "a+rwX"]).arg(p).status().unwrap();
    }
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o000)).unwrap();
    // Root reads anything, so drop to an unprivileged user when the tests run as root.
    let mut cmd = if is_root() {
        let mut c = std::process::Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"]).arg(assert_cmd::cargo::cargo_bin("sophon"));
        c
    } else {
        std::process::Command::new(assert_cmd::cargo::cargo_bin("sophon"))
    };
    let out = cmd
        .args(["backup", "create", "--repo", s(&repo), "--path", s(&src), "--json"])
        .env("SOPHON_BACKUP_PASSPHRASE", PASSPHRASE)
        .env("SOPHON_CACHE_DIR", t.path().join("cache-nobody"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "stderr: {stderr}");
    assert!(stderr.contains("locked.txt"), "the unreadable file is named: {stderr}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["partial"], true);
    assert!(v["errors"][0]["path"].as_str().unwrap().ends_with("locked.txt"));
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| s.lines().any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0")))
        .unwrap_or(false)
}

#[test]
fn exit_codes_and_clear_errors() {
    let t = tempfile::tempdir().unwrap();
    let (src, repo) = (t.path().join("src"), t.path().join("repo"));
    write(&src.join("f"), b"x");
    let sophon = Sophon::new(t.path());

    // Usage errors exit 2.
    let out = sophon.run(&["backup", "create", "--repo", s(&repo)]);
    assert_eq!(out.status.code(), Some(2));
    let out = sophon.run(&["backup", "frobnicate"]);
    assert_eq!(out.status.code(), Some(2));

    // No repository yet: exit 1, and the message says what to do.
    let out = sophon.run(&["backup", "list", "--repo", s(&repo)]);
    assert_eq!(out.status.code(), Some(1));
    let out = sophon.run(&["backup", "list", "--repo", s(&src)]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("repo init"));

    sophon.init(&repo);
    // init twice refuses.
    let out = sophon.run(&["repo", "init", "--repo", s(&repo)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));

    // A wrong passphrase is a clear error.
    let out = sophon
        .cmd()
        .args(["backup", "list", "--repo", s(&repo)])
        .env("SOPHON_BACKUP_PASSPHRASE", "nope")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("wrong passphrase"));

    // No passphrase at all.
    let out = sophon
        .cmd()
        .args(["backup", "list", "--repo", s(&repo)])
        .env_remove("SOPHON_BACKUP_PASSPHRASE")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--passphrase-file"));

    // A missing source path names it.
    let out = sophon.run(&["backup", "create", "--repo", s(&repo), "--path", "/definitely/not/here"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/definitely/not/here"));

    // Restore refuses a non-empty target and an unknown snapshot.
    sophon.backup_json(&repo, &src);
    let out = sophon.run(&["backup", "restore", "--repo", s(&repo), "--snapshot", "latest", "--target", s(&src)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not empty"));
    let out = sophon.run(&[
        "backup",
        "restore",
        "--repo",
        s(&repo),
        "--snapshot",
        "abcdef12",
        "--target",
        s(&t.path().join("x")),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not found"));

    // --passphrase-file takes the first line.
    let pf = t.path().join("pass");
    std::fs::write(&pf, format!("{PASSPHRASE}\n")).unwrap();
    let out = sophon
        .cmd()
        .args(["backup", "list", "--repo", s(&repo), "--passphrase-file", s(&pf)])
        .env_remove("SOPHON_BACKUP_PASSPHRASE")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));

    // verify of a clean repository exits 0.
    sophon.ok(&["backup", "verify", "--repo", s(&repo), "--read-data=50"]);
}

#[test]
fn keys_add_list_passwd_remove_and_default_kdf_parameters() {
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("repo");
    let sophon = Sophon::new(t.path());
    // Default Argon2id parameters: 64 MiB, t=3.
    sophon.ok(&["repo", "init", "--repo", s(&repo)]);
    let keys: serde_json::Value =
        serde_json::from_str(&sophon.ok(&["repo", "key", "list", "--repo", s(&repo), "--json"])).unwrap();
    assert_eq!(keys[0]["argon2"]["memory_kib"], 65536);
    assert_eq!(keys[0]["argon2"]["iterations"], 3);
    let first = keys[0]["id"].as_str().unwrap().to_string();

    let add = sophon
        .cmd()
        .args(["repo", "key", "add", "--repo", s(&repo), "--kdf-memory-kib", "1024", "--kdf-iterations", "1", "--json"])
        .env("SOPHON_NEW_PASSPHRASE", "second passphrase")
        .output()
        .unwrap();
    assert!(add.status.success());
    let added: serde_json::Value = serde_json::from_slice(&add.stdout).unwrap();
    let second = added["added"].as_str().unwrap().to_string();

    // Both passphrases open the repository.
    let with =
        |pass: &str, args: &[&str]| sophon.cmd().args(args).env("SOPHON_BACKUP_PASSPHRASE", pass).output().unwrap();
    assert!(with("second passphrase", &["backup", "list", "--repo", s(&repo)]).status.success());
    let keys: serde_json::Value =
        serde_json::from_str(&sophon.ok(&["repo", "key", "list", "--repo", s(&repo), "--json"])).unwrap();
    assert_eq!(keys.as_array().unwrap().len(), 2);

    // The key in use cannot be removed; another can.
    let out = sophon.run(&["repo", "key", "remove", "--repo", s(&repo), &first]);
    assert_eq!(out.status.code(), Some(1));
    let out = with("second passphrase", &["repo", "key", "remove", "--repo", s(&repo), &first]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(with(PASSPHRASE, &["backup", "list", "--repo", s(&repo)]).status.code(), Some(1));

    // passwd replaces the key in use.
    let out = sophon
        .cmd()
        .args(["repo", "key", "passwd", "--repo", s(&repo), "--kdf-memory-kib", "1024", "--kdf-iterations", "1"])
        .env("SOPHON_BACKUP_PASSPHRASE", "second passphrase")
        .env("SOPHON_NEW_PASSPHRASE", "third passphrase")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!with("second passphrase", &["backup", "list", "--repo", s(&repo)]).status.success());
    assert!(with("third passphrase", &["backup", "list", "--repo", s(&repo)]).status.success());
    let keys: serde_json::Value = serde_json::from_str(&String::from_utf8_lossy(
        &with("third passphrase", &["repo", "key", "list", "--repo", s(&repo), "--json"]).stdout,
    ))
    .unwrap();
    assert_eq!(keys.as_array().unwrap().len(), 1);
    assert_ne!(keys[0]["id"].as_str().unwrap(), second);
}

#[test]
fn deleting_the_cache_or_the_index_loses_nothing() {
    let t = tempfile::tempdir().unwrap();
    let (src, repo) = (t.path().join("src"), t.path().join("repo"));
    sample_tree(&src, 8, 3);
    let sophon = Sophon::new(t.path());
    sophon.init(&repo);
    sophon.backup_json(&repo, &src);

    // The cache is rebuilt from the index segments.
    std::fs::remove_dir_all(&sophon.cache).unwrap();
    let out = t.path().join("out1");
    sophon.ok(&["backup", "restore", "--repo", s(&repo), "--snapshot", "latest", "--target", s(&out)]);
    assert_same_tree(&src, &out.join("src"));

    // The index segments are rebuilt from the pack headers.
    std::fs::remove_dir_all(repo.join("index")).unwrap();
    std::fs::remove_dir_all(&sophon.cache).unwrap();
    let msg = sophon.ok(&["repo", "repair-index", "--repo", s(&repo)]);
    assert!(msg.contains("index rebuilt"), "{msg}");
    let out = t.path().join("out2");
    sophon.ok(&["backup", "restore", "--repo", s(&repo), "--snapshot", "latest", "--target", s(&out)]);
    assert_same_tree(&src, &out.join("src"));
    sophon.ok(&["backup", "verify", "--repo", s(&repo), "--read-data"]);

    // repair-index on a healthy repository supersedes the old segments; a fresh cache agrees.
    sophon.ok(&["repo", "repair-index", "--repo", s(&repo)]);
    std::fs::remove_dir_all(&sophon.cache).unwrap();
    sophon.ok(&["backup", "verify", "--repo", s(&repo), "--read-data"]);
}

#[test]
fn several_paths_and_tags() {
    let t = tempfile::tempdir().unwrap();
    let (a, b, repo, out) =
        (t.path().join("alpha"), t.path().join("beta"), t.path().join("repo"), t.path().join("out"));
    write(&a.join("1.txt"), b"one");
    write(&b.join("2.txt"), b"two");
    let sophon = Sophon::new(t.path());
    sophon.init(&repo);
    sophon.ok(&[
        "backup",
        "create",
        "--repo",
        s(&repo),
        "--path",
        s(&a),
        "--path",
        s(&b),
        "--tag",
        "nightly",
        "--tag",
        "x",
    ]);
    let list: serde_json::Value =
        serde_json::from_str(&sophon.ok(&["backup", "list", "--repo", s(&repo), "--json"])).unwrap();
    assert_eq!(list[0]["tags"], serde_json::json!(["nightly", "x"]));
    assert_eq!(list[0]["paths"].as_array().unwrap().len(), 2);
    sophon.ok(&["backup", "restore", "--repo", s(&repo), "--snapshot", "latest", "--target", s(&out)]);
    assert_eq!(std::fs::read(out.join("alpha/1.txt")).unwrap(), b"one");
    assert_eq!(std::fs::read(out.join("beta/2.txt")).unwrap(), b"two");

    // Two paths with the same last name would collide in the snapshot: refused.
    let c = t.path().join("other/alpha");
    write(&c.join("3.txt"), b"three");
    let out = sophon.run(&["backup", "create", "--repo", s(&repo), "--path", s(&a), "--path", s(&c)]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn demo_runs_the_main_job() {
    let t = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = assert_cmd::Command::cargo_bin("sophon").unwrap().args(args).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        stdout
    };
    // The gateway flow (the default): backup, change, incremental, dry run, restore into a fresh gateway.
    let out = run(&["demo", "--dir", t.path().join("gateway").to_str().unwrap()]);
    assert!(out.contains("unchanged documents reused"), "{out}");
    assert!(out.contains("nothing written"), "{out}");
    assert!(out.contains("every category's record count matches the source;"), "{out}");
    assert!(out.contains("no damage"), "{out}");
    assert!(out.contains("sealed zip export") && out.ends_with("flow)\n") && !out.contains("DAMAGE"), "{out}");
    // The folder flow.
    let out = run(&["demo", "--folder", "--dir", t.path().join("folder").to_str().unwrap(), "--size-mib", "4"]);
    assert!(out.contains("identical to the source"), "{out}");
    assert!(out.contains("no damage"), "{out}");
}

#[test]
fn a_foreign_key_file_does_not_lock_out_the_repository() {
    // Regression: a key of another repository under the same passphrase (as an interrupted `init`
    // leaves behind) made `open` fail instead of trying the next key. Keys are tried in name order,
    // so make sure the foreign key sorts first.
    let t = tempfile::tempdir().unwrap();
    let sophon = Sophon::new(t.path());
    let key_name = |repo: &Path| {
        std::fs::read_dir(repo.join("keys")).unwrap().next().unwrap().unwrap().file_name().into_string().unwrap()
    };
    let (one, two) = (t.path().join("one"), t.path().join("two"));
    sophon.init(&one);
    sophon.init(&two);
    // The repository whose key sorts last receives the other's key, which is then tried first.
    let (victim, foreign) = if key_name(&one) < key_name(&two) { (two, one) } else { (one, two) };
    let name = key_name(&foreign);
    std::fs::copy(foreign.join("keys").join(&name), victim.join("keys").join(&name)).unwrap();
    sophon.ok(&["backup", "list", "--repo", s(&victim)]);
}

#[test]
fn a_closed_pipe_ends_forget_quietly_and_releases_its_lock() {
    use std::io::BufRead;
    let t = tempfile::tempdir().unwrap();
    let (src, repo) = (t.path().join("src"), t.path().join("repo"));
    write(&src.join("f.txt"), b"x");
    let sophon = Sophon::new(t.path());
    sophon.init(&repo);
    // Well over a pipe's buffer (64 KiB) of plan lines, so the writes after `head` left fail.
    let tag = "t".repeat(8000);
    for day in 1..=20 {
        let time = format!("2026-06-{day:02}T03:00:00Z");
        sophon.ok(&["backup", "create", "--repo", s(&repo), "--path", s(&src), "--time", &time, "--tag", &tag, "-q"]);
    }
    let mut child = sophon
        .std_cmd()
        .args(["backup", "forget", "--repo", s(&repo), "--dry-run", "--keep-last", "1"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    assert!(first.starts_with("policy"), "{first}");
    // The reader is dropped here: the rest of the plan goes to a closed pipe, as with `| head -1`.
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stderr.is_empty(), "a closed pipe is not an error: {}", String::from_utf8_lossy(&out.stderr));
    let locks: Vec<_> = std::fs::read_dir(repo.join("locks")).unwrap().collect();
    assert!(locks.is_empty(), "the forget's lock was released on the way out: {locks:?}");
    assert_eq!(sophon.ok(&["backup", "list", "--repo", s(&repo), "--json"]).matches("\"id\"").count(), 20);
}

#[test]
fn an_archive_name_without_a_known_extension_is_refused_before_the_backup() {
    let t = tempfile::tempdir().unwrap();
    let (src, repo) = (t.path().join("src"), t.path().join("repo"));
    sample_tree(&src, 8, 3);
    let sophon = Sophon::new(t.path());
    sophon.init(&repo);
    let tar = t.path().join("backup.tar");
    let snapshots = || -> usize {
        let list = sophon.ok(&["backup", "list", "--repo", s(&repo), "--json"]);
        serde_json::from_str::<serde_json::Value>(&list).unwrap().as_array().unwrap().len()
    };
    let refused = |args: &[&str]| {
        let out = sophon.run(args);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(2), "sophon {args:?}: {err}");
        for ext in [".zip", ".tar.gz", ".tgz", "--format"] {
            assert!(err.contains(ext), "sophon {args:?}: {ext} not named in {err}");
        }
    };

    // `backup create` refuses before it backs anything up: no snapshot, no file, no partial file.
    refused(&["backup", "create", "--path", s(&src), "--repo", s(&repo), "--out", s(&tar)]);
    assert_eq!(snapshots(), 0);
    assert!(!files_below(t.path()).iter().any(|p| p.to_string_lossy().contains("backup.tar")));
    let dest = t.path().join("store");
    refused(&["backup", "create", "--path", s(&src), "--repo", s(&repo), "--dest", &format!("{}/x.tar", s(&dest))]);
    assert_eq!(snapshots(), 0);
    assert!(!dest.exists());
    // A time that is not RFC 3339 is a usage error too, found before the backup.
    sophon.expect(2, &["backup", "create", "--path", s(&src), "--repo", s(&repo), "--time", "yesterday"]);
    assert_eq!(snapshots(), 0);

    // With --format the name is the caller's choice, and the archive is what --format says.
    sophon.ok(&["backup", "create", "--path", s(&src), "--repo", s(&repo), "--out", s(&tar), "--format", "zip"]);
    assert_eq!(snapshots(), 1);
    assert_eq!(&std::fs::read(&tar).unwrap()[..4], b"PK\x03\x04");
    let tgz_named_tar = t.path().join("other.tar");
    sophon.ok(&["backup", "export", "latest", "--repo", s(&repo), "--out", s(&tgz_named_tar), "--format", "tgz"]);
    assert_eq!(&std::fs::read(&tgz_named_tar).unwrap()[..2], b"\x1f\x8b");

    // `backup export` follows the same rule; known extensions pick their format in any case.
    refused(&["backup", "export", "latest", "--repo", s(&repo), "--out", s(&t.path().join("b.gz"))]);
    let upper = t.path().join("B.TGZ");
    sophon.ok(&["backup", "export", "latest", "--repo", s(&repo), "--out", s(&upper)]);
    assert_eq!(&std::fs::read(&upper).unwrap()[..2], b"\x1f\x8b");
    // Standard output has no name: a zip, as before.
    let out = sophon.cmd().args(["backup", "export", "latest", "--repo", s(&repo), "--out", "-"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(&out.stdout[..4], b"PK\x03\x04");
    // An unknown --format or --kdf value is a usage error too.
    sophon.expect(2, &["backup", "export", "latest", "--repo", s(&repo), "--out", "-", "--format", "tar"]);
    let kdf = ["backup", "export", "latest", "--repo", s(&repo), "--out", "-", "--encrypt", "--kdf", "scrypt"];
    sophon.expect(2, &kdf);
}

#[test]
fn read_data_takes_a_share_above_zero() {
    let t = tempfile::tempdir().unwrap();
    let (src, repo) = (t.path().join("src"), t.path().join("repo"));
    sample_tree(&src, 8, 4);
    let sophon = Sophon::new(t.path());
    sophon.init(&repo);
    sophon.backup_json(&repo, &src);
    for ok in ["--read-data=10%", "--read-data=12.5", "--read-data=100"] {
        let out = sophon.ok(&["backup", "verify", "--repo", s(&repo), ok]);
        assert!(out.contains("no damage found") && out.contains("; read "), "{ok}: {out}");
    }
    for bad in ["--read-data=0", "--read-data=101", "--read-data=ten", "--read-data=-5"] {
        let out = sophon.run(&["backup", "verify", "--repo", s(&repo), bad]);
        assert_eq!(out.status.code(), Some(2), "{bad}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

#[test]
fn a_scheduled_backup_with_an_unknown_archive_extension_is_refused_when_added() {
    let t = tempfile::tempdir().unwrap();
    let home = t.path().join("home");
    let sophon = Sophon::new(t.path());
    sophon.ok(&["gateway", "init", "--home", s(&home)]);
    let tar = t.path().join("nightly.tar");
    let add = |name: &str, more: &[&str]| {
        let base = ["cron", "add", "--home", s(&home), "--name", name, "--schedule", "0 3 * * *", "--action", "backup"];
        sophon.cmd().args(base).args(["--out", s(&tar)]).args(more).output().unwrap()
    };
    let refused = add("tar", &[]);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{err}");
    assert!(err.contains(".zip") && err.contains(".tar.gz") && err.contains(".tgz"), "{err}");
    // With --format the same name is accepted and stored with the format.
    let added = add("tar", &["--format", "tgz", "--json"]);
    assert_eq!(added.status.code(), Some(0), "{}", String::from_utf8_lossy(&added.stderr));
    let job: serde_json::Value = serde_json::from_slice(&added.stdout).unwrap();
    let args: Vec<String> = serde_json::from_value(job["backup_args"].clone()).unwrap();
    assert!(args.windows(2).any(|w| w == ["--format", "tar.gz"]), "{args:?}");
    // An unknown --now is a usage error.
    sophon.expect(2, &["cron", "run-due", "--home", s(&home), "--now", "tomorrow"]);
}
