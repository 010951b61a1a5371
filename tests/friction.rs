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
