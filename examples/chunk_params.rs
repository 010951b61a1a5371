//! Measure FastCDC parameter sets on a corpus and one "nightly" change of it.
//!
//! ```text
//! cargo run --release --example chunk_params -- BEFORE_DIR AFTER_DIR [--reps N]
//! cargo run --release --example chunk_params -- --insert-probe
//! ```
//!
//! Results and the choice they support: `format-spec/chunking.md`.
//!
//! For every candidate `ChunkerParams` (seed 0), single-threaded:
//! 1. untimed pass over BEFORE_DIR (warms the page cache): chunk every regular file (sorted walk,
//!    symlinks skipped), hash each chunk with BLAKE3, and collect the set of chunk ids → chunks,
//!    unique chunks, unique bytes, and what those would take in packs (each chunk compressed alone
//!    with zstd at the repository's default level 2, kept raw when that does not shrink it, plus the
//!    28-byte seal); also, over files of at least 16 MiB, the mean chunk size and
//!    Σ len² / Σ len (the expected size of the chunk a random byte lies in, i.e. what an isolated
//!    in-place edit rewrites);
//! 2. right after it, N timed passes (default 3) of the same chunk+hash loop over BEFORE_DIR (file
//!    opening and reading included, nothing else), then N passes of chunking alone → MiB/s of the
//!    median pass by wall clock, and by this thread's on-CPU time (`/proc/thread-self/schedstat`):
//!    when the two differ, another process took the CPU and the row's wall figure is not comparable;
//! 3. a pass over AFTER_DIR counting the chunks and bytes whose ids are not in BEFORE's set (each
//!    once), raw and as stored in packs, i.e. what a nightly incremental backup would have to store.
//!
//! The index estimate is unique chunks × `ENTRY_LEN` (46 bytes, the pack-header/index entry),
//! without SQLite's own per-row overhead. Chunk ids in a repository are keyed BLAKE3
//! (`MasterKeys::blob_id`); plain `blake3::hash` costs the same and dedups identically.
//!
//! `--insert-probe` instead measures resynchronisation after inserts on synthetic data: 512 MiB of
//! pseudo-random bytes, then a copy with 128 inserts of Δ random bytes at random offsets, for
//! Δ = 16 B … 512 KiB; it prints the new bytes per insert beyond Δ itself (about 1.2 GiB of memory).

use std::collections::HashSet;
use std::fs::File;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Instant;

use sophon::chunk::{Chunker, ChunkerParams};
use sophon::compress::{compress_bound, Compression, Compressor};
use sophon::crypto::SEAL_OVERHEAD;
use sophon::format::pack::ENTRY_LEN;

const KIB: u32 = 1024;
const MIB: u32 = 1024 * 1024;

type Id = [u8; 32];

fn candidates() -> Vec<ChunkerParams> {
    let p = |min: u32, avg: u32, max: u32, normalization: u8| ChunkerParams {
        min_size: min,
        avg_size: avg,
        max_size: max,
        normalization,
    };
    vec![
        p(64 * KIB, 256 * KIB, MIB, 1),
        p(128 * KIB, 512 * KIB, 2 * MIB, 1),
        p(256 * KIB, MIB, 4 * MIB, 1),
        p(512 * KIB, MIB, 4 * MIB, 1), // v1 default (ChunkerParams::DEFAULT)
        p(512 * KIB, 2 * MIB, 8 * MIB, 1),
        p(MIB, 4 * MIB, 16 * MIB, 1),
        p(256 * KIB, MIB, 4 * MIB, 2),
        p(512 * KIB, MIB, 4 * MIB, 2),
        p(512 * KIB, MIB, 4 * MIB, 3),
        // min = avg / 2 with normalization 2 at smaller averages
        p(128 * KIB, 256 * KIB, MIB, 2),
        p(256 * KIB, 512 * KIB, 2 * MIB, 2), // recommended in format-spec/chunking.md
    ]
}

/// Regular files under `root`, depth-first, entries sorted by name; symlinks and specials skipped.
fn walk(root: &Path) -> std::io::Result<Vec<PathBuf>> {
    fn rec(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
        let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<std::io::Result<_>>()?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let ft = e.file_type()?;
            if ft.is_dir() {
                rec(&e.path(), out)?;
            } else if ft.is_file() {
                out.push(e.path());
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    rec(root, &mut out)?;
    Ok(out)
}

/// Chunk every file, calling `sink(chunk)` per chunk; returns the bytes read.
fn chunk_files(chunker: &mut Chunker, files: &[PathBuf], mut sink: impl FnMut(&[u8])) -> anyhow::Result<u64> {
    let mut total = 0u64;
    for path in files {
        let mut f = File::open(path)?;
        chunker.reset();
        while let Some(chunk) = chunker.next_chunk(&mut f)? {
            total += chunk.len() as u64;
            sink(chunk);
        }
    }
    Ok(total)
}

fn id(chunk: &[u8]) -> Id {
    *blake3::hash(chunk).as_bytes()
}

/// Nanoseconds this thread has spent on a CPU (`/proc/thread-self/schedstat`, Linux), if known.
/// Wall time is the measure; on-CPU time shows how much of it other processes took.
fn thread_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat").ok()?.split_whitespace().next()?.parse().ok()
}

/// MiB/s of `reps` timed runs: wall-clock median, min and max, and the median over on-CPU time.
struct Speed {
    wall: [f64; 3],
    cpu: Option<f64>,
}

fn median_min_max(mut v: Vec<f64>) -> [f64; 3] {
    v.sort_by(f64::total_cmp);
    [v[v.len() / 2], v[0], v[v.len() - 1]]
}

/// Run `pass` (which returns the bytes it processed) `reps` times.
fn timed(reps: usize, mut pass: impl FnMut() -> anyhow::Result<u64>) -> anyhow::Result<Speed> {
    let (mut wall, mut cpu) = (Vec::with_capacity(reps), Vec::with_capacity(reps));
    for _ in 0..reps {
        let c0 = thread_cpu_ns();
        let t = Instant::now();
        let n = pass()?;
        wall.push(mib(n) / t.elapsed().as_secs_f64());
        if let (Some(c0), Some(c1)) = (c0, thread_cpu_ns()) {
            cpu.push(mib(n) / ((c1 - c0) as f64 * 1e-9));
        }
    }
    let cpu = (cpu.len() == reps).then(|| median_min_max(cpu)[0]);
    Ok(Speed { wall: median_min_max(wall), cpu })
}

struct Row {
    p: ChunkerParams,
    before_bytes: u64,
    after_bytes: u64,
    chunks: u64,
    unique_chunks: u64,
    unique_bytes: u64,
    /// What the unique chunks take in packs: zstd level `ZSTD_LEVEL` (or raw when that does not
    /// shrink them) plus `SEAL_OVERHEAD` each.
    unique_stored: u64,
    /// Chunks and bytes of BEFORE's files of at least `BIG` bytes (the same files for every set).
    big_chunks: u64,
    big_bytes: u64,
    /// Sum of squared chunk lengths in those files: Σ L² / Σ L is the mean size of the chunk that a
    /// byte picked at random lies in, i.e. what an isolated small edit rewrites.
    big_sq: f64,
    new_chunks: u64,
    new_bytes: u64,
    new_stored: u64,
    hash_speed: Speed,
    chunk_speed: Speed,
}

/// The repository's default zstd level (`InitOptions::default().compression`).
const ZSTD_LEVEL: i32 = 2;

/// Files this large hold many chunks under every candidate set: their mean chunk size is the
/// asymptotic one, not diluted by small single-chunk files.
const BIG: u64 = 16 * 1024 * 1024;

fn size(n: u32) -> String {
    if n >= MIB && n.is_multiple_of(MIB) {
        format!("{}M", n / MIB)
    } else {
        format!("{}K", n / KIB)
    }
}

fn mib(b: u64) -> f64 {
    b as f64 / f64::from(MIB)
}

fn name(p: &ChunkerParams) -> String {
    format!("{}/{}/{}", size(p.min_size), size(p.avg_size), size(p.max_size))
}

/// Synthetic check of boundary-shift resynchronisation: `PROBE_MIB` of pseudo-random bytes, then a copy
/// with `PROBE_EDITS` inserts of `delta` random bytes at random offsets; prints, per set and `delta`,
/// the new bytes per insert beyond the inserted bytes themselves (KiB).
const PROBE_MIB: usize = 512;
const PROBE_EDITS: usize = 128;
const PROBE_DELTAS: [usize; 5] = [16, 4 << 10, 32 << 10, 128 << 10, 512 << 10];

fn xorshift(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

fn chunk_ids(p: ChunkerParams, data: &[u8]) -> anyhow::Result<Vec<(Id, usize)>> {
    let mut off = 0;
    let mut out = Vec::new();
    for len in sophon::chunk::chunk_lengths(p, 0, data)? {
        out.push((id(&data[off..off + len]), len));
        off += len;
    }
    Ok(out)
}

fn insert_probe() -> anyhow::Result<()> {
    let mut s = 0x9E37_79B9_7F4A_7C15u64;
    let mut a = vec![0u8; PROBE_MIB << 20];
    for c in a.chunks_mut(8) {
        c.copy_from_slice(&xorshift(&mut s).to_le_bytes()[..c.len()]);
    }
    let sets = candidates();
    let base: Vec<HashSet<Id>> = sets
        .iter()
        .map(|&p| Ok(chunk_ids(p, &a)?.into_iter().map(|(i, _)| i).collect()))
        .collect::<anyhow::Result<_>>()?;
    let mut table = vec![Vec::new(); sets.len()];
    for delta in PROBE_DELTAS {
        let mut at: Vec<usize> = (0..PROBE_EDITS).map(|_| xorshift(&mut s) as usize % a.len()).collect();
        at.sort_unstable();
        let mut b = Vec::with_capacity(a.len() + PROBE_EDITS * delta);
        let mut last = 0;
        for &p in &at {
            b.extend_from_slice(&a[last..p]);
            b.extend((0..delta).map(|_| xorshift(&mut s) as u8));
            last = p;
        }
        b.extend_from_slice(&a[last..]);
        for (k, &p) in sets.iter().enumerate() {
            let mut fresh = HashSet::new();
            let new: usize = chunk_ids(p, &b)?
                .into_iter()
                .filter(|(i, _)| !base[k].contains(i) && fresh.insert(*i))
                .map(|(_, l)| l)
                .sum();
            table[k].push((new as f64 / PROBE_EDITS as f64 - delta as f64) / 1024.0);
        }
    }
    println!(
        "{PROBE_MIB} MiB pseudo-random data, {PROBE_EDITS} inserts of delta bytes at random offsets; \
         new KiB per insert beyond delta"
    );
    println!();
    let heads: Vec<String> = PROBE_DELTAS
        .iter()
        .map(|d| format!("delta {}", if *d < 1024 { format!("{d} B") } else { format!("{} KiB", d >> 10) }))
        .collect();
    println!("| min/avg/max | norm | {} |", heads.join(" | "));
    println!("|---|---:|{}", "---:|".repeat(PROBE_DELTAS.len()));
    for (p, row) in sets.iter().zip(&table) {
        let cells: Vec<String> = row.iter().map(|v| format!("{v:.0}")).collect();
        println!("| {} | {} | {} |", name(p), p.normalization, cells.join(" | "));
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--insert-probe") {
        return insert_probe();
    }
    let mut reps = 3usize;
    let mut dirs = Vec::new();
    let mut i = 0;
    while i < args.len() {
        if args[i] == "--reps" {
            reps = args.get(i + 1).ok_or_else(|| anyhow::anyhow!("--reps needs a value"))?.parse()?;
            i += 2;
        } else {
            dirs.push(PathBuf::from(&args[i]));
            i += 1;
        }
    }
    anyhow::ensure!(
        dirs.len() == 2 && reps >= 1,
        "usage: chunk_params BEFORE_DIR AFTER_DIR [--reps N] | chunk_params --insert-probe"
    );
    let before = walk(&dirs[0])?;
    let after = walk(&dirs[1])?;
    eprintln!(
        "BEFORE {}: {} files; AFTER {}: {} files; {reps} timed pass(es) per set and measure",
        dirs[0].display(),
        before.len(),
        dirs[1].display(),
        after.len()
    );

    let mut rows = Vec::new();
    for p in candidates() {
        let mut chunker = Chunker::new(p, 0)?;

        // 1. Untimed pass: warms the page cache and builds BEFORE's id set.
        let mut seen: HashSet<Id> = HashSet::new();
        let mut zstd = Compressor::new(ZSTD_LEVEL)?;
        let mut zbuf = Vec::new();
        let mut stored = |c: &[u8]| {
            zbuf.clear();
            zbuf.reserve(compress_bound(c.len())); // compress_into writes into spare capacity only
            let n = match zstd.compress_into(c, &mut zbuf) {
                Compression::Zstd => zbuf.len(),
                Compression::None => c.len(),
            };
            (n + SEAL_OVERHEAD) as u64
        };
        let mut unique_stored = 0u64;
        let (mut chunks, mut unique_bytes, mut before_bytes, mut big_chunks, mut big_bytes) = (0u64, 0, 0, 0, 0);
        let mut big_sq = 0f64;
        for file in &before {
            let (mut file_chunks, mut file_sq) = (0u64, 0f64);
            let n = chunk_files(&mut chunker, std::slice::from_ref(file), |c| {
                file_chunks += 1;
                file_sq += (c.len() as f64).powi(2);
                if seen.insert(id(c)) {
                    unique_bytes += c.len() as u64;
                    unique_stored += stored(c);
                }
            })?;
            chunks += file_chunks;
            before_bytes += n;
            if n >= BIG {
                big_chunks += file_chunks;
                big_bytes += n;
                big_sq += file_sq;
            }
        }

        // 2. Timed: the chunk+hash loop (reading included) right after the warm pass, then chunking
        //    alone to show what the cut-point search itself costs.
        let hash_speed = timed(reps, || {
            let mut acc = 0u8;
            let n = chunk_files(&mut chunker, &before, |c| acc ^= id(c)[0])?;
            black_box(acc);
            Ok(n)
        })?;
        let chunk_speed = timed(reps, || {
            let mut acc = 0usize;
            let n = chunk_files(&mut chunker, &before, |c| acc ^= c.len())?;
            black_box(acc);
            Ok(n)
        })?;

        // 3. AFTER: chunks and bytes not already in BEFORE (each new chunk counted once).
        let mut fresh: HashSet<Id> = HashSet::new();
        let (mut new_bytes, mut new_stored) = (0u64, 0u64);
        let after_bytes = chunk_files(&mut chunker, &after, |c| {
            let i = id(c);
            if !seen.contains(&i) && fresh.insert(i) {
                new_bytes += c.len() as u64;
                new_stored += stored(c);
            }
        })?;

        let row = Row {
            p,
            before_bytes,
            after_bytes,
            chunks,
            unique_chunks: seen.len() as u64,
            unique_bytes,
            unique_stored,
            big_chunks,
            big_bytes,
            big_sq,
            new_chunks: fresh.len() as u64,
            new_bytes,
            new_stored,
            hash_speed,
            chunk_speed,
        };
        eprintln!(
            "  {} n{}: {} chunks, {:.0} MiB/s chunk+hash, {:.0} MiB/s chunk only, {:.2} MiB new",
            name(&p),
            p.normalization,
            row.chunks,
            row.hash_speed.wall[0],
            row.chunk_speed.wall[0],
            mib(row.new_bytes)
        );
        rows.push(row);
    }

    let first = &rows[0];
    println!(
        "BEFORE: {} files, {} bytes ({:.1} MiB), {:.1} MiB in files >= {} MiB; AFTER: {} files, {} bytes ({:.1} MiB)",
        before.len(),
        first.before_bytes,
        mib(first.before_bytes),
        mib(first.big_bytes),
        BIG >> 20,
        after.len(),
        first.after_bytes,
        mib(first.after_bytes)
    );
    println!(
        "speeds: BEFORE, single thread, page cache warm, wall-clock median of {reps} (min-max), \
         (on-CPU) = median over this thread's on-CPU time; big-file mean = mean chunk size \
         in files >= {} MiB, edit = sum(len^2)/sum(len) there (expected size of the chunk a random byte lies in); \
         stored = zstd -{ZSTD_LEVEL} per chunk (raw if not smaller) + {SEAL_OVERHEAD} B seal; \
         index = unique chunks x {ENTRY_LEN} B",
        BIG >> 20
    );
    println!();
    println!(
        "| min/avg/max | norm | chunks | unique chunks | unique MiB | stored MiB | big-file mean KiB \
         | edit KiB | new chunks | new MiB | new stored MiB | chunk+hash MiB/s | (on-CPU) | chunk-only MiB/s | (on-CPU) | index KiB |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        let wall = |s: &Speed| format!("{:.0} ({:.0}-{:.0})", s.wall[0], s.wall[1], s.wall[2]);
        let cpu = |s: &Speed| s.cpu.map_or("-".to_string(), |c| format!("{c:.0}"));
        println!(
            "| {} | {} | {} | {} | {:.1} | {:.1} | {:.0} | {:.0} | {} | {:.2} | {:.2} | {} | {} | {} | {} | {:.1} |",
            name(&r.p),
            r.p.normalization,
            r.chunks,
            r.unique_chunks,
            mib(r.unique_bytes),
            mib(r.unique_stored),
            r.big_bytes as f64 / r.big_chunks.max(1) as f64 / 1024.0,
            r.big_sq / r.big_bytes.max(1) as f64 / 1024.0,
            r.new_chunks,
            mib(r.new_bytes),
            mib(r.new_stored),
            wall(&r.hash_speed),
            cpu(&r.hash_speed),
            wall(&r.chunk_speed),
            cpu(&r.chunk_speed),
            (r.unique_chunks * ENTRY_LEN as u64) as f64 / 1024.0,
        );
    }
    Ok(())
}
