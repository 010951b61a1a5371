//! A gateway restore's reading of a backup's parts: `restore::describe`, then a dry run of an
//! additive or a replace restore into a small demo home made once per process. The backup is the
//! input cut into files (`@@ PATH` on a line of its own starts each one), so the fuzzer mutates the
//! JSON parts (metadata, manifest, tables, JSON-lines, nested files) rather than an archive's
//! container. Nothing may panic; a dry run must leave the home's database as it was.
#![no_main]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sophon::gateway::demo::{self, DemoScale};
use sophon::gateway::restore::{self, BackupSource, Mode, RestoreOptions};

struct Files(BTreeMap<String, Vec<u8>>);

impl Files {
    /// `@@ PATH\n` starts a file; its bytes run to the newline before the next marker.
    fn parse(data: &[u8]) -> Files {
        let mut files = BTreeMap::new();
        let mut starts = Vec::new();
        for i in 0..data.len() {
            if data[i..].starts_with(b"@@ ") && (i == 0 || data[i - 1] == b'\n') {
                starts.push(i);
            }
        }
        for (k, &s) in starts.iter().enumerate() {
            let end = starts.get(k + 1).map_or(data.len(), |&n| n.saturating_sub(1));
            let body = &data[s + 3..end.max(s + 3)];
            let (name, rest) = match body.iter().position(|&b| b == b'\n') {
                Some(n) => (&body[..n], &body[n + 1..]),
                None => (body, &[][..]),
            };
            files.insert(String::from_utf8_lossy(name).into_owned(), rest.to_vec());
        }
        Files(files)
    }
}

impl BackupSource for Files {
    fn paths(&self) -> Vec<String> {
        self.0.keys().cloned().collect()
    }
    fn size(&self, path: &str) -> Option<u64> {
        self.0.get(path).map(|b| b.len() as u64)
    }
    fn read(&self, path: &str) -> sophon::Result<Option<Vec<u8>>> {
        Ok(self.0.get(path).cloned())
    }
    fn copy_into(&self, path: &str, out: &mut dyn Write) -> sophon::Result<u64> {
        let b = self.0.get(path).ok_or_else(|| sophon::Error::invalid(format!("{path}: not in the backup")))?;
        out.write_all(b).map_err(|e| sophon::Error::io(Path::new(path), e))?;
        Ok(b.len() as u64)
    }
    fn copy_to(&self, path: &str, dest: &Path) -> sophon::Result<()> {
        let b = self.0.get(path).ok_or_else(|| sophon::Error::invalid(format!("{path}: not in the backup")))?;
        std::fs::write(dest, b).map_err(|e| sophon::Error::io(dest, e))
    }
}

fn home() -> &'static (PathBuf, Vec<u8>) {
    static HOME: OnceLock<(PathBuf, Vec<u8>)> = OnceLock::new();
    HOME.get_or_init(|| {
        let home = std::env::temp_dir().join(format!("sophon-fuzz-home-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&home);
        demo::generate(&home, DemoScale::Small, 1).expect("demo home");
        let db = std::fs::read(home.join("gateway.db")).expect("demo database");
        (home, db)
    })
}

fuzz_target!(|data: &[u8]| {
    let (home, db) = home();
    let src = Files::parse(data);
    let _ = restore::describe(&src);
    let mode = if data.len() % 2 == 1 { Mode::Replace } else { Mode::Additive };
    let opts = RestoreOptions { mode, only: vec![], into_tenant: None, dry_run: true, passphrase: None };
    let _ = restore::restore(home, &src, &opts);
    assert!(std::fs::read(home.join("gateway.db")).expect("demo database") == *db, "a dry run changed the home");
});
