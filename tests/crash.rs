//! Crash safety: SIGKILL backups at random moments; after each kill the repository verifies with
//! `--read-data`, every listed snapshot restores, and the next backup succeeds.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Instant;

use common::*;

const ROUNDS: usize = 20;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn sigkill_at_random_moments_never_damages_the_repository() {
    let t = tempfile::tempdir().unwrap();
    let (src, repo) = (t.path().join("src"), t.path().join("repo"));
    sample_tree(&src, 256, 7);
    let sophon = Sophon::new(t.path());
    sophon.init_small_packs(&repo);

    // How long one backup of a round's new data takes, to spread the kills over it.
    write(&src.join("round.bin"), &pseudo_random(6 << 20, 1000));
    let started = Instant::now();
    sophon.ok(&["backup", "create", "--repo", s(&repo), "--path", s(&src)]);
    let full = started.elapsed();

    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    eprintln!("crash test seed {seed}, one backup takes {full:?}");
    let delays = pseudo_random(ROUNDS * 8, seed);
    let mut killed_mid_way = 0;
    for round in 0..ROUNDS {
        write(&src.join("round.bin"), &pseudo_random(6 << 20, round as u64));
        let frac = u64::from_le_bytes(delays[round * 8..round * 8 + 8].try_into().unwrap()) % 1000;
        let delay = full.mul_f64(frac as f64 / 1000.0 * 1.2);
        let mut child = sophon
            .std_cmd()
            .args(["backup", "create", "--repo", s(&repo), "--path", s(&src), "--quiet"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let finished_first = child.try_wait().unwrap().is_some();
        let _ = child.kill();
        let _ = child.wait();
        if !finished_first {
            killed_mid_way += 1;
        }

        let v = sophon.run(&["backup", "verify", "--repo", s(&repo), "--read-data"]);
        assert_eq!(
            v.status.code(),
            Some(0),
            "round {round} (killed after {delay:?}): verify failed:\n{}{}",
            String::from_utf8_lossy(&v.stdout),
            String::from_utf8_lossy(&v.stderr)
        );
        let list: serde_json::Value =
            serde_json::from_str(&sophon.ok(&["backup", "list", "--repo", s(&repo), "--json"])).unwrap();
        for (i, snap) in list.as_array().unwrap().iter().enumerate() {
            let target = t.path().join(format!("restore-{round}-{i}"));
            sophon.ok(&[
                "backup",
                "restore",
                "--repo",
                s(&repo),
                "--snapshot",
                snap["id"].as_str().unwrap(),
                "--target",
                s(&target),
            ]);
            std::fs::remove_dir_all(&target).unwrap();
        }
        sophon.ok(&["backup", "create", "--repo", s(&repo), "--path", s(&src)]);
    }
    assert!(killed_mid_way >= ROUNDS / 2, "only {killed_mid_way} of {ROUNDS} kills landed during a backup");

    let out = t.path().join("final");
    sophon.ok(&["backup", "restore", "--repo", s(&repo), "--snapshot", "latest", "--target", s(&out)]);
    assert_same_tree(&src, &out.join("src"));
}
