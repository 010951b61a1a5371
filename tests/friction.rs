//! Issue 11, finding 16 (and 14): the small things a new user trips over: empty variables, errors
//! that repeat themselves, usage errors that exit 1, a progress display that says "of 0".

mod common;

use common::Sophon;

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn an_empty_sophon_home_reads_as_unset() {
    let t = tempfile::tempdir().unwrap();
    let sophon = Sophon::new(t.path());
    let out = sophon
        .cmd()
        .current_dir(t.path())
        .env("SOPHON_HOME", "")
        .args(["backup", "create", "--out", "a.zip"])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(!err.contains("a value is required"), "{err}");
    assert!(err.contains("nothing to back up") && err.contains("SOPHON_HOME"), "{err}");
    assert!(!t.path().join("a.zip").exists());
}

#[test]
fn a_missing_archive_is_named_once() {
    let t = tempfile::tempdir().unwrap();
    let sophon = Sophon::new(t.path());
    let out = sophon.cmd().current_dir(t.path()).args(["backup", "verify", "--in", "nope.zip"]).output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("nope.zip"), "{err}");
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
}

#[test]
fn refusing_a_replace_restore_without_a_terminal_is_a_usage_error() {
    let t = tempfile::tempdir().unwrap();
    let sophon = Sophon::new(t.path());
    let home = t.path().join("home");
    let h = home.to_str().unwrap();
    sophon.ok(&["gateway", "init", "--home", h]);
    sophon.ok(&["backup", "create", "--home", h, "--out", t.path().join("b.zip").to_str().unwrap()]);
    let out = sophon
        .std_cmd()
        .args(["backup", "restore", "--home", h, "--in", t.path().join("b.zip").to_str().unwrap(), "--mode", "replace"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--yes"), "{err}");
}

#[test]
fn help_speaks_of_the_gateway_and_names_every_repository_scheme() {
    let t = tempfile::tempdir().unwrap();
    let sophon = Sophon::new(t.path());
    let top = sophon.ok(&["backup", "--help"]);
    for line in top.lines().filter(|l| l.trim_start().starts_with("create") || l.trim_start().starts_with("restore")) {
        assert!(line.contains("gateway"), "{line}");
    }
    let create = sophon.ok(&["backup", "create", "--help"]);
    for scheme in ["file://", "s3://", "azblob://", "sftp://", "memory://"] {
        assert!(create.contains(scheme), "--repo help lacks {scheme}:\n{create}");
    }
}

/// Finding 14: a failed export after a backup says in one line what failed and what was kept, and
/// the command it names retries the export.
#[test]
fn a_failed_export_names_the_kept_snapshot_and_how_to_retry() {
    let t = tempfile::tempdir().unwrap();
    let sophon = Sophon::new(t.path());
    let home = t.path().join("home");
    let h = home.to_str().unwrap();
    sophon.ok(&["gateway", "init", "--home", h]);
    std::fs::write(t.path().join("blocker"), b"a file where a folder should be").unwrap();
    let dest = t.path().join("blocker/sub/x.zip");
    let out = sophon.run(&["backup", "create", "--home", h, "--dest", dest.to_str().unwrap()]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.starts_with("created repository")).collect();
    assert_eq!(lines.len(), 1, "one line: {err}");
    let retry = lines[0].split('`').nth(1).unwrap_or_else(|| panic!("no command to retry in: {err}"));
    assert!(retry.starts_with("sophon backup export "), "{retry}");
    let id = retry.split_whitespace().nth(3).unwrap();
    let listed = sophon.ok(&["backup", "list", "--repo", home.join("backups/repository").to_str().unwrap()]);
    assert!(listed.contains(id), "snapshot {id} is kept: {listed}");

    // The named command works once the destination does.
    let fixed = t.path().join("archives/x.zip");
    let args: Vec<String> = retry.split_whitespace().skip(1).map(String::from).collect();
    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    let at = args.iter().position(|a| *a == "--dest").unwrap();
    args[at + 1] = fixed.to_str().unwrap();
    std::fs::create_dir_all(fixed.parent().unwrap()).unwrap();
    sophon.ok(&args);
    assert!(fixed.exists());
}

/// Finding 14 against a real S3 server: the store's raw answer only with --verbose.
#[test]
fn a_store_refusal_is_one_line_and_its_raw_answer_is_behind_verbose() {
    if std::env::var_os("SOPHON_TEST_S3_ENDPOINT").is_none() {
        assert!(std::env::var_os("SOPHON_REQUIRE_SERVERS").is_none(), "SOPHON_TEST_S3_ENDPOINT is not set");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let sophon = Sophon::new(t.path());
    let home = t.path().join("home");
    let h = home.to_str().unwrap();
    sophon.ok(&["gateway", "init", "--home", h]);
    let args = ["backup", "create", "--home", h, "--dest", "s3://no-such-bucket-for-sophon/x.zip"];
    let err = stderr(&sophon.run(&args));
    assert!(err.contains("no-such-bucket-for-sophon") && err.contains("does not exist"), "{err}");
    assert!(!err.contains("x-amz") && !err.contains("Parts {"), "raw response without --verbose: {err}");
    assert!(err.contains("--verbose"), "{err}");
    let verbose = stderr(&sophon.run(&[&args[..], &["--verbose"]].concat()));
    assert!(verbose.contains("status: 404"), "{verbose}");
}

/// Finding 16 (part): "2FA secrets sealed" was printed for a backup that holds no users; the line
/// says what the backup holds.
#[test]
fn the_2fa_line_tells_the_truth_when_users_are_not_in_the_backup() {
    let t = tempfile::tempdir().unwrap();
    let sophon = Sophon::new(t.path());
    let home = t.path().join("home");
    let h = home.to_str().unwrap();
    sophon.ok(&["gateway", "init", "--home", h, "--demo", "--scale", "small"]);
    let pass = t.path().join("pass");
    std::fs::write(&pass, "a passphrase\n").unwrap();
    let p = pass.to_str().unwrap();
    let memory_only = sophon.ok(&["backup", "create", "--home", h, "--categories", "memory", "--passphrase-file", p]);
    assert!(memory_only.contains("2FA secrets: not in the backup"), "{memory_only}");
    assert!(!memory_only.contains("sealed"), "{memory_only}");
    let full = sophon.ok(&["backup", "create", "--home", h, "--passphrase-file", p]);
    assert!(full.contains("2FA secrets: sealed"), "{full}");
}

/// On a terminal, the progress display goes on through the export step after the backup, and
/// never shows a total of 0 (`script` gives the command a terminal).
#[test]
fn on_a_terminal_progress_is_shown_through_the_export_step() {
    if std::process::Command::new("script").arg("--version").output().is_err() {
        panic!("`script` (util-linux) is needed to give the command a terminal");
    }
    let t = tempfile::tempdir().unwrap();
    let sophon = Sophon::new(t.path());
    let home = t.path().join("home");
    let home_s = home.to_str().unwrap();
    sophon.ok(&["gateway", "init", "--home", home_s, "--demo", "--scale", "small"]);
    let exe = assert_cmd::cargo::cargo_bin("sophon");
    let archive = t.path().join("x.zip");
    let line = format!("{} backup create --home {home_s} --out {}", exe.display(), archive.display());
    let env = sophon.std_cmd();
    let out = std::process::Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .envs(env.get_envs().filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned()))))
        .output()
        .unwrap();
    let screen = String::from_utf8_lossy(&out.stdout).replace('\r', "\n");
    assert!(out.status.success(), "{screen}");
    assert!(archive.is_file());
    assert!(screen.contains("backup ["), "no backup progress drawn:\n{screen}");
    assert!(screen.contains("export ["), "no progress drawn during the export step:\n{screen}");
    assert!(!screen.contains("/0 B") && !screen.contains("/0 files"), "a total of 0 was shown:\n{screen}");
}
