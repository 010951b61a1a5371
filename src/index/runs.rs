//! A rebuild's blob rows (or a verify's blob ids), sorted in bounded memory and handed back in
//! key order.
//!
//! Inserting a hundred million rows into a B-tree keyed by a random id touches a random page per
//! row: the cache of 10M blobs took 103 s to stage that way and the table came out a third empty.
//! Rows are instead collected in runs of [`RUN_ROWS`], each sorted and spilled to a scratch file
//! beside the cache, then merged, so the blob table is written in key order, page after page.
//! A rebuild small enough for one run never touches the file. Memory is one run's rows plus a
//! fixed read budget for the merge, whatever the number of blobs.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::id::BlobId;

/// Rows sorted in memory before a run is spilled (about 11 MiB of them).
pub(super) const RUN_ROWS: usize = 128 * 1024;

/// What the merge reads ahead, shared among the runs (each gets at least [`MIN_READ`]).
const MERGE_READ_BUDGET: usize = 2 * 1024 * 1024;
const MIN_READ: usize = 4096;

/// A fixed-size record the runs sort and spill.
pub(super) trait Record: Copy + Ord {
    const LEN: usize;
    fn encode_into(&self, out: &mut Vec<u8>);
    /// `b` is exactly [`LEN`](Self::LEN) bytes.
    fn decode(b: &[u8]) -> Self;
}

/// A blob id a verify looks up (see `SortedIds`).
impl Record for BlobId {
    const LEN: usize = 32;

    fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0);
    }

    fn decode(b: &[u8]) -> BlobId {
        let mut id = [0u8; 32];
        id.copy_from_slice(&b[..32]);
        BlobId(id)
    }
}

/// One blob row of a rebuild: where blob `id` is in `pack`, as segment number `segment` (the
/// rebuild's own numbering of the segments it staged) lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Row {
    pub id: [u8; 32],
    pub pack: [u8; 32],
    pub segment: u32,
    pub blob_type: u8,
    pub compression: u8,
    pub offset: u32,
    pub sealed_len: u32,
    pub raw_len: u32,
}

impl Record for Row {
    const LEN: usize = 32 + 32 + 4 + 1 + 1 + 4 + 4 + 4;

    fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.id);
        out.extend_from_slice(&self.pack);
        out.extend_from_slice(&self.segment.to_le_bytes());
        out.push(self.blob_type);
        out.push(self.compression);
        out.extend_from_slice(&self.offset.to_le_bytes());
        out.extend_from_slice(&self.sealed_len.to_le_bytes());
        out.extend_from_slice(&self.raw_len.to_le_bytes());
    }

    fn decode(b: &[u8]) -> Row {
        let u32_at = |at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        let mut id = [0u8; 32];
        id.copy_from_slice(&b[..32]);
        let mut pack = [0u8; 32];
        pack.copy_from_slice(&b[32..64]);
        Row {
            id,
            pack,
            segment: u32_at(64),
            blob_type: b[68],
            compression: b[69],
            offset: u32_at(70),
            sealed_len: u32_at(74),
            raw_len: u32_at(78),
        }
    }
}

/// Rows in sorted runs: spilled ones in a scratch file (or in memory for an in-memory cache), and
/// the run being filled.
pub(super) struct SortedRuns<T: Record> {
    filling: Vec<T>,
    run_rows: usize,
    spill: Spill,
    /// Byte ranges of the spilled runs.
    runs: Vec<(u64, u64)>,
    spilled: u64,
}

enum Spill {
    /// Not created until the first run is spilled; removed on drop.
    File {
        path: PathBuf,
        file: Option<File>,
    },
    Memory(Vec<u8>),
}

impl<T: Record> SortedRuns<T> {
    /// Runs of `run_rows` rows spilled to `path` (created when needed, removed when dropped), or
    /// kept in memory.
    pub fn with_run_rows(path: Option<PathBuf>, run_rows: usize) -> SortedRuns<T> {
        let spill = match path {
            Some(path) => Spill::File { path, file: None },
            None => Spill::Memory(Vec::new()),
        };
        SortedRuns { filling: Vec::new(), run_rows: run_rows.max(1), spill, runs: Vec::new(), spilled: 0 }
    }

    pub fn push(&mut self, row: T) -> Result<()> {
        if self.filling.len() >= self.run_rows {
            self.spill_run()?;
        }
        self.filling.push(row);
        Ok(())
    }

    /// Drop every row (a rebuild that starts its staging again).
    pub fn clear(&mut self) -> Result<()> {
        self.filling.clear();
        self.runs.clear();
        self.spilled = 0;
        match &mut self.spill {
            Spill::File { path, file } => {
                if let Some(f) = file.as_mut() {
                    f.set_len(0).map_err(|e| Error::io(path.as_path(), e))?;
                }
            }
            Spill::Memory(bytes) => *bytes = Vec::new(),
        }
        Ok(())
    }

    fn spill_run(&mut self) -> Result<()> {
        if self.filling.is_empty() {
            return Ok(());
        }
        self.filling.sort_unstable();
        let mut bytes = Vec::with_capacity(self.filling.len() * T::LEN);
        for row in &self.filling {
            row.encode_into(&mut bytes);
        }
        self.filling.clear();
        match &mut self.spill {
            Spill::File { path, file } => {
                if file.is_none() {
                    let f = std::fs::OpenOptions::new()
                        .read(true)
                        .write(true)
                        .create(true)
                        .truncate(true)
                        .open(&*path)
                        .map_err(|e| Error::io(path.as_path(), e))?;
                    *file = Some(f);
                }
                let f = file.as_mut().ok_or_else(|| Error::invalid("a scratch file of sorted runs is not open"))?;
                f.seek(SeekFrom::Start(self.spilled)).map_err(|e| Error::io(path.as_path(), e))?;
                f.write_all(&bytes).map_err(|e| Error::io(path.as_path(), e))?;
            }
            Spill::Memory(all) => all.extend_from_slice(&bytes),
        }
        let start = self.spilled;
        self.spilled += bytes.len() as u64;
        self.runs.push((start, self.spilled));
        Ok(())
    }

    /// Every row pushed since the last [`clear`](Self::clear), in order (equal rows as often as
    /// they were pushed).
    pub fn merge(&mut self, f: &mut dyn FnMut(&T) -> Result<()>) -> Result<()> {
        if self.runs.is_empty() {
            self.filling.sort_unstable();
            for row in &self.filling {
                f(row)?;
            }
            return Ok(());
        }
        self.spill_run()?;
        // The run being filled is not needed while merging: its 11 MiB go back before the merge
        // and the inserts it feeds take theirs.
        self.filling = Vec::new();
        let read = (MERGE_READ_BUDGET / self.runs.len()).max(MIN_READ) / T::LEN * T::LEN;
        let mut readers: Vec<RunReader> =
            self.runs.iter().map(|&(start, end)| RunReader { next: start, end, buf: Vec::new(), at: 0 }).collect();
        let mut heap = BinaryHeap::with_capacity(readers.len());
        for (i, r) in readers.iter_mut().enumerate() {
            if let Some(row) = r.next_row(&mut self.spill, read)? {
                heap.push(Reverse((row, i)));
            }
        }
        while let Some(Reverse((row, i))) = heap.pop() {
            f(&row)?;
            if let Some(next) = readers[i].next_row(&mut self.spill, read)? {
                heap.push(Reverse((next, i)));
            }
        }
        Ok(())
    }
}

impl<T: Record> Drop for SortedRuns<T> {
    fn drop(&mut self) {
        if let Spill::File { path, file: Some(_) } = &self.spill {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Where the merge is in one run: the rows read ahead and the next byte to read.
struct RunReader {
    next: u64,
    end: u64,
    buf: Vec<u8>,
    at: usize,
}

impl RunReader {
    fn next_row<T: Record>(&mut self, spill: &mut Spill, read: usize) -> Result<Option<T>> {
        if self.at == self.buf.len() {
            let want = (self.end - self.next).min(read as u64) as usize;
            if want == 0 {
                return Ok(None);
            }
            self.buf.resize(want, 0);
            self.at = 0;
            match spill {
                Spill::File { path, file } => {
                    let f = file.as_mut().ok_or_else(|| Error::invalid("a scratch file of sorted runs is not open"))?;
                    read_at(f, path, self.next, &mut self.buf)?;
                }
                Spill::Memory(all) => {
                    let start = self.next as usize;
                    self.buf.copy_from_slice(&all[start..start + want]);
                }
            }
            self.next += want as u64;
        }
        let bytes = self
            .buf
            .get(self.at..self.at + T::LEN)
            .ok_or_else(|| Error::invalid("a scratch run ends inside a record"))?;
        self.at += T::LEN;
        Ok(Some(T::decode(bytes)))
    }
}

fn read_at(f: &mut File, path: &Path, at: u64, buf: &mut [u8]) -> Result<()> {
    f.seek(SeekFrom::Start(at)).map_err(|e| Error::io(path, e))?;
    f.read_exact(buf).map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn row(seed: u64, segment: u32) -> Row {
        let h = blake3::hash(&seed.to_le_bytes());
        let mut pack = [0u8; 32];
        pack[0] = (seed % 7) as u8;
        Row {
            id: *h.as_bytes(),
            pack,
            segment,
            blob_type: (seed % 2) as u8,
            compression: 1,
            offset: seed as u32,
            sealed_len: seed.wrapping_mul(3) as u32,
            raw_len: u32::MAX - seed as u32,
        }
    }

    fn merged<T: Record>(runs: &mut SortedRuns<T>) -> Vec<T> {
        let mut out = Vec::new();
        runs.merge(&mut |r| {
            out.push(*r);
            Ok(())
        })
        .unwrap();
        out
    }

    #[test]
    fn rows_spilled_to_a_file_come_back_sorted_and_the_file_goes_with_the_runs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache.rows");
        let mut runs = SortedRuns::with_run_rows(Some(path.clone()), 100);
        let mut want: Vec<Row> = (0..1_050u64).map(|i| row(i % 1_000, (i / 1_000) as u32)).collect();
        for r in &want {
            runs.push(*r).unwrap();
        }
        assert!(path.exists(), "eleven runs of 100 rows were spilled");
        want.sort();
        assert_eq!(merged(&mut runs), want);
        runs.clear().unwrap();
        runs.push(row(5, 0)).unwrap();
        assert_eq!(merged(&mut runs), vec![row(5, 0)], "a cleared run set holds only what came after");
        drop(runs);
        assert!(!path.exists(), "the scratch file is removed with the runs");
    }

    #[test]
    fn a_rebuild_of_one_run_never_creates_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache.rows");
        let mut runs = SortedRuns::with_run_rows(Some(path.clone()), 100);
        for i in (0..100u64).rev() {
            runs.push(row(i, 0)).unwrap();
        }
        let out = merged(&mut runs);
        assert!(out.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(out.len(), 100);
        assert!(!path.exists());
    }

    proptest! {
        #[test]
        fn any_rows_in_any_run_size_merge_to_their_sorted_order(
            seeds in proptest::collection::vec((0u64..50, 0u32..3), 0..300),
            run_rows in 1usize..40,
        ) {
            let mut runs = SortedRuns::with_run_rows(None, run_rows);
            let mut want: Vec<Row> = seeds.iter().map(|&(s, seg)| row(s, seg)).collect();
            for r in &want {
                runs.push(*r).unwrap();
            }
            want.sort();
            prop_assert_eq!(merged(&mut runs), want);
        }

        #[test]
        fn a_row_encodes_and_decodes_to_itself(seed in any::<u64>(), segment in any::<u32>()) {
            let r = row(seed, segment);
            let mut bytes = Vec::new();
            r.encode_into(&mut bytes);
            prop_assert_eq!(bytes.len(), Row::LEN);
            prop_assert_eq!(Row::decode(&bytes), r);
        }
    }
}
