//! Exported archives: `ExportArchive::open_bytes` on hostile zip and tar.gz bytes, then `verify`
//! and reading every member. Nothing may panic, and a tar.gz's staging folder must be cleaned up.
//! Sealed inputs are left to the `seal` target (their key derivation would dominate).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sophon::export::reader::ExportArchive;
use sophon::export::seal;

fuzz_target!(|data: &[u8]| {
    if seal::is_sealed(data) {
        return;
    }
    let staging = std::env::temp_dir().join(format!("sophon-fuzz-staging-{}", std::process::id()));
    if let Ok(a) = ExportArchive::open_bytes(std::path::Path::new("fuzz"), data.to_vec(), None, &staging) {
        let _ = a.verify();
        let paths: Vec<String> = a.paths().map(str::to_string).collect();
        for p in paths {
            let _ = a.read(&p);
        }
    }
    if let Ok(mut rd) = std::fs::read_dir(&staging) {
        assert!(rd.next().is_none(), "a staging folder was left behind");
    }
});
