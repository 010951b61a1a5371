//! Writes `fuzz/seeds/gateway_restore/`: the parts of a real backup of a small demo gateway, in the
//! target's `@@ PATH` container. Documents (the real files under `documents/`) are left out to keep
//! the seeds small; the JSON parts, JSON-lines and nested files are kept whole. One seed per
//! category backup, one of the whole gateway, and one of a single tenant.
//!
//! ```text
//! cargo +nightly run --manifest-path fuzz/Cargo.toml --example gen_gateway_seeds
//! ```

use std::path::PathBuf;

use sophon::archive::{VirtualDir, VirtualEntry};
use sophon::gateway::category::Category;
use sophon::gateway::demo::{self, DemoScale};
use sophon::gateway::dump::{dump, DumpOptions};

/// The most of one part a seed keeps: bigger parts are left out (the restore reports them missing).
const PART_CAP: usize = 16 << 10;

fn walk(dir: &VirtualDir, prefix: &str, out: &mut Vec<u8>) {
    for (name, entry) in &dir.entries {
        let path = format!("{prefix}{}", String::from_utf8_lossy(name));
        let bytes = match entry {
            VirtualEntry::Dir(d) => {
                walk(d, &format!("{path}/"), out);
                continue;
            }
            VirtualEntry::Bytes { data, .. } => data.to_vec(),
            VirtualEntry::Spooled { path: p, .. } => std::fs::read(p).unwrap(),
            VirtualEntry::File(_) => continue,
        };
        if bytes.len() > PART_CAP {
            continue;
        }
        out.extend_from_slice(format!("@@ {path}\n").as_bytes());
        out.extend_from_slice(&bytes);
        out.push(b'\n');
    }
}

fn main() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("seeds/gateway_restore");
    std::fs::create_dir_all(&dir).unwrap();
    let home = std::env::temp_dir().join(format!("sophon-gen-gateway-seeds-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    demo::generate(&home, DemoScale::Small, 1).unwrap();
    let mut cases: Vec<(String, DumpOptions)> = vec![("all".into(), DumpOptions::default())];
    cases.push(("tenant-acme".into(), DumpOptions { tenant: Some("acme".into()), ..Default::default() }));
    for c in Category::ALL {
        cases.push((format!("only-{c}"), DumpOptions { categories: vec![c], ..Default::default() }));
    }
    for (name, opts) in cases {
        let d = dump(&home, &opts).unwrap();
        let mut out = Vec::new();
        walk(&d.root, "", &mut out);
        std::fs::write(dir.join(&name), &out).unwrap();
        println!("{name}: {} bytes", out.len());
    }
    std::fs::remove_dir_all(&home).unwrap();
}
