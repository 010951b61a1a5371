//! A small deterministic generator (SplitMix64) and the demo's clock. Each part of a demo gateway
//! draws from its own stream, named by a label, so changing one category's generator leaves the
//! others' content unchanged.

use chrono::{DateTime, Utc};

/// The demo's "now": 2025-10-01T00:00:00Z. Fixed, so a seed always gives the same records.
pub const NOW: i64 = 1_759_276_800;
pub const MINUTE: i64 = 60;
pub const HOUR: i64 = 3_600;
pub const DAY: i64 = 86_400;

pub struct Rng(u64);

impl Rng {
    /// The stream `label` of demo seed `seed`.
    pub fn new(seed: u64, label: &str) -> Self {
        let mut h = blake3::Hasher::new();
        h.update(b"sophon demo gateway v1\0");
        h.update(&seed.to_le_bytes());
        h.update(label.as_bytes());
        let d = h.finalize();
        let mut b = [0u8; 8];
        b.copy_from_slice(&d.as_bytes()[..8]);
        Rng(u64::from_le_bytes(b))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (0 when n is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        lo + self.below(hi - lo + 1)
    }

    pub fn range_i(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        lo + self.below((hi - lo) as u64 + 1) as i64
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// One element of a non-empty constant list.
    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }

    /// One word of a non-empty constant list.
    pub fn word(&mut self, xs: &[&'static str]) -> &'static str {
        xs[self.below(xs.len() as u64) as usize]
    }

    /// An index drawn with the given weights.
    pub fn weighted(&mut self, weights: &[u64]) -> usize {
        let total: u64 = weights.iter().sum();
        let mut r = self.below(total);
        for (i, w) in weights.iter().enumerate() {
            if r < *w {
                return i;
            }
            r -= w;
        }
        0
    }

    /// Roughly log-uniform in `lo..=hi`: many small values, a few large ones.
    pub fn log_uniform(&mut self, lo: u64, hi: u64) -> u64 {
        let (l, h) = ((lo.max(1) as f64).ln(), (hi.max(lo).max(1) as f64).ln());
        let u = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        ((l + (h - l) * u).exp() as u64).clamp(lo, hi.max(lo))
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        let mut chunks = buf.chunks_exact_mut(8);
        for c in &mut chunks {
            c.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        let rest = chunks.into_remainder();
        let last = self.next_u64().to_le_bytes();
        let n = rest.len();
        rest.copy_from_slice(&last[..n]);
    }

    fn chars_from(&mut self, alphabet: &[u8], n: usize) -> String {
        (0..n).map(|_| char::from(*self.pick(alphabet))).collect()
    }

    pub fn hex(&mut self, n: usize) -> String {
        self.chars_from(b"0123456789abcdef", n)
    }

    pub fn alnum(&mut self, n: usize) -> String {
        self.chars_from(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", n)
    }

    pub fn upper_alnum(&mut self, n: usize) -> String {
        self.chars_from(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", n)
    }

    pub fn base32(&mut self, n: usize) -> String {
        self.chars_from(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", n)
    }

    pub fn digits(&mut self, n: usize) -> String {
        self.chars_from(b"0123456789", n)
    }

    /// `n` random bytes in standard base64 without padding.
    pub fn b64(&mut self, n: usize) -> String {
        use base64::Engine;
        let mut b = vec![0u8; n];
        self.fill(&mut b);
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(b)
    }

    /// `n` random bytes in URL-safe base64 without padding.
    pub fn b64url(&mut self, n: usize) -> String {
        use base64::Engine;
        let mut b = vec![0u8; n];
        self.fill(&mut b);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
    }

    /// An id: `prefix` + 16 hex digits.
    pub fn id(&mut self, prefix: &str) -> String {
        format!("{prefix}_{:016x}", self.next_u64())
    }

    /// A version 4 style UUID.
    pub fn uuid(&mut self) -> String {
        let h = self.hex(32);
        format!("{}-{}-4{}-a{}-{}", &h[..8], &h[8..12], &h[13..16], &h[17..20], &h[20..])
    }
}

/// RFC 3339 UTC with seconds: `2025-09-30T08:15:00Z`.
pub fn ts(secs: i64) -> String {
    DateTime::<Utc>::from_timestamp(secs, 0).map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string()).unwrap_or_default()
}

/// `YYYY-MM-DD` of a time.
pub fn date(secs: i64) -> String {
    DateTime::<Utc>::from_timestamp(secs, 0).map(|d| d.format("%Y-%m-%d").to_string()).unwrap_or_default()
}

/// Split `total` over `weights`: proportional (largest remainder), with at least one for each part
/// when `total` allows.
pub fn split(total: u64, weights: &[u64]) -> Vec<u64> {
    let n = weights.len() as u64;
    if n == 0 {
        return Vec::new();
    }
    let base = if total >= n { 1 } else { 0 };
    let rest = total - base * n;
    let wsum: u64 = weights.iter().sum::<u64>().max(1);
    let mut out: Vec<u64> = weights.iter().map(|w| base + rest * w / wsum).collect();
    let mut given: u64 = out.iter().sum();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse((rest * weights[i]) % wsum), i));
    let mut k = 0;
    while given < total {
        out[order[k % order.len()]] += 1;
        given += 1;
        k += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_is_exact_and_gives_everyone_one() {
        for total in [0u64, 2, 5, 42, 189, 8471, 84_710] {
            let s = split(total, &[10, 6, 4]);
            assert_eq!(s.iter().sum::<u64>(), total);
            if total >= 3 {
                assert!(s.iter().all(|&x| x >= 1), "{s:?}");
            }
        }
        assert_eq!(split(5, &[10, 6, 4]), vec![2, 2, 1]);
    }

    #[test]
    fn streams_are_deterministic_and_distinct() {
        assert_eq!(Rng::new(1, "a").next_u64(), Rng::new(1, "a").next_u64());
        assert_ne!(Rng::new(1, "a").next_u64(), Rng::new(1, "b").next_u64());
        assert_ne!(Rng::new(1, "a").next_u64(), Rng::new(2, "a").next_u64());
        assert_eq!(ts(NOW), "2025-10-01T00:00:00Z");
    }
}
