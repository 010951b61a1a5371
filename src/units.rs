//! Option values that are more than a number: percentages, byte sizes, and limits that may be
//! lifted. Parsed here, once, so the command line, cron jobs and the dashboard accept the same
//! spellings and give the same error for the same mistake.
//!
//! Sizes are powers of 1024 (`K`, `M`, `G`, `T`, optionally spelled `KiB`…`TiB`), as `--help` and
//! `format-spec/prune.md` document; `KB`, `MB`… are refused rather than guessed at, because half
//! the tools that print them mean powers of 1000.

use std::fmt;
use std::str::FromStr;

/// Why a value could not be read; the message names the value and shows a valid spelling.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("{0:?} is not a percentage: give a number such as 5 or 10%")]
    NotAPercent(String),
    #[error("{0:?}: a percentage must be between 0 and 100")]
    PercentOutOfRange(String),
    #[error("{0:?} is not a size: give one such as 500M or 2G (K, M, G, T: powers of 1024)")]
    NotASize(String),
    #[error("{0:?}: the size does not fit in 64 bits")]
    SizeTooLarge(String),
}

/// A byte count as people read it: `512 B`, `1.50 KiB`, `17.02 MiB` (powers of 1024, two decimals),
/// as every report of the CLI and the dashboard prints sizes.
pub fn human_bytes(n: u64) -> String {
    const NAMES: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < NAMES.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.2} {}", NAMES[u])
    }
}

/// A count with thousands separators: `12,345`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A share of something, 0 to 100 inclusive (`5`, `12.5`, `10%`).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Percent(f64);

impl Percent {
    pub const HUNDRED: Percent = Percent(100.0);

    /// `None` outside 0..=100 (NaN included).
    pub fn new(value: f64) -> Option<Percent> {
        (0.0..=100.0).contains(&value).then_some(Percent(value))
    }

    pub fn get(self) -> f64 {
        self.0
    }

    pub fn is_zero(self) -> bool {
        self.0 == 0.0
    }
}

impl FromStr for Percent {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let number = t.strip_suffix('%').unwrap_or(t).trim_end();
        // `f64::from_str` also takes "inf" and "NaN"; only plain decimals are percentages.
        if number.is_empty() || !number.chars().all(|c| c.is_ascii_digit() || c == '.') {
            return Err(ParseError::NotAPercent(s.to_string()));
        }
        let value: f64 = number.parse().map_err(|_| ParseError::NotAPercent(s.to_string()))?;
        Percent::new(value).ok_or_else(|| ParseError::PercentOutOfRange(s.to_string()))
    }
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", self.0)
    }
}

/// A number of bytes (`4096`, `500M`, `2 GiB`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Size(pub u64);

/// Suffixes, largest first (Display picks the largest that divides exactly).
const UNITS: [(&str, u32); 4] = [("T", 40), ("G", 30), ("M", 20), ("K", 10)];

impl Size {
    pub fn bytes(self) -> u64 {
        self.0
    }
}

impl FromStr for Size {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ParseError::NotASize(s.to_string());
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (digits, unit) = t.split_at(split);
        if digits.is_empty() {
            return Err(bad());
        }
        let shift = match unit.trim_start().to_ascii_uppercase().as_str() {
            "" | "B" => 0,
            u => {
                let letter = u.strip_suffix("IB").unwrap_or(u);
                UNITS.iter().find(|(name, _)| *name == letter).map(|&(_, shift)| shift).ok_or_else(bad)?
            }
        };
        let n: u64 = digits.parse().map_err(|_| ParseError::SizeTooLarge(s.to_string()))?;
        n.checked_mul(1u64 << shift).map(Size).ok_or_else(|| ParseError::SizeTooLarge(s.to_string()))
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = UNITS.iter().find(|&&(_, shift)| self.0 != 0 && self.0.trailing_zeros() >= shift);
        match unit {
            Some(&(name, shift)) => write!(f, "{}{name}", self.0 >> shift),
            None => write!(f, "{}", self.0),
        }
    }
}

/// A ceiling that can be lifted: a size, or `unlimited` (the default of `--max-repack`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Unlimited,
    At(Size),
}

impl Limit {
    /// The ceiling in bytes; `None` when there is none.
    pub fn bytes(self) -> Option<u64> {
        match self {
            Limit::Unlimited => None,
            Limit::At(s) => Some(s.bytes()),
        }
    }
}

impl FromStr for Limit {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim().eq_ignore_ascii_case("unlimited") {
            return Ok(Limit::Unlimited);
        }
        s.parse().map(Limit::At)
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Limit::Unlimited => f.write_str("unlimited"),
            Limit::At(s) => s.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn percentages_with_or_without_the_sign() {
        assert_eq!("5".parse::<Percent>().map(Percent::get), Ok(5.0));
        assert_eq!("10%".parse::<Percent>().map(Percent::get), Ok(10.0));
        assert_eq!(" 12.5 % ".parse::<Percent>().map(Percent::get), Ok(12.5));
        assert_eq!("0".parse::<Percent>().map(Percent::is_zero), Ok(true));
        assert_eq!("100".parse::<Percent>(), Ok(Percent::HUNDRED));
    }

    #[test]
    fn percentages_refused() {
        assert_eq!("120".parse::<Percent>(), Err(ParseError::PercentOutOfRange("120".into())));
        assert_eq!("100.01%".parse::<Percent>(), Err(ParseError::PercentOutOfRange("100.01%".into())));
        for bad in ["", "%", "-1", "five", "NaN", "inf", "1e2", "5%%", "1.2.3"] {
            assert!(matches!(bad.parse::<Percent>(), Err(ParseError::NotAPercent(_))), "{bad:?} was accepted");
        }
        // The message names the value and shows what to write instead.
        let msg = "abc".parse::<Percent>().unwrap_err().to_string();
        assert!(msg.contains("\"abc\"") && msg.contains("10%"), "{msg}");
    }

    #[test]
    fn sizes_in_powers_of_1024() {
        let size = |s: &str| s.parse::<Size>().map(Size::bytes);
        assert_eq!(size("4096"), Ok(4096));
        assert_eq!(size("12B"), Ok(12));
        assert_eq!(size("500M"), Ok(500 << 20));
        assert_eq!(size("500m"), Ok(500 << 20));
        assert_eq!(size("2G"), Ok(2 << 30));
        assert_eq!(size("3 GiB"), Ok(3 << 30));
        assert_eq!(size(" 1T "), Ok(1 << 40));
        assert_eq!(size("7kib"), Ok(7 << 10));
    }

    #[test]
    fn sizes_refused() {
        for bad in ["", "M", "12Q", "5 MB", "1.5G", "-1", "10 M B", "G2"] {
            assert_eq!(bad.parse::<Size>(), Err(ParseError::NotASize(bad.into())), "{bad:?}");
        }
        assert_eq!("16777216T".parse::<Size>(), Err(ParseError::SizeTooLarge("16777216T".into())));
        assert_eq!(
            "99999999999999999999".parse::<Size>(),
            Err(ParseError::SizeTooLarge("99999999999999999999".into()))
        );
    }

    #[test]
    fn sizes_shown_in_the_largest_exact_unit() {
        assert_eq!(Size(0).to_string(), "0");
        assert_eq!(Size(1000).to_string(), "1000");
        // 1.5 KiB is not a whole number of KiB.
        assert_eq!(Size(1536).to_string(), "1536");
        assert_eq!(Size(3 << 10).to_string(), "3K");
        assert_eq!(Size(2 << 30).to_string(), "2G");
        assert_eq!(Size(1536 << 20).to_string(), "1536M");
    }

    #[test]
    fn limits() {
        assert_eq!("unlimited".parse::<Limit>(), Ok(Limit::Unlimited));
        assert_eq!("Unlimited".parse::<Limit>().map(Limit::bytes), Ok(None));
        assert_eq!("2G".parse::<Limit>().map(Limit::bytes), Ok(Some(2 << 30)));
        assert_eq!("lots".parse::<Limit>(), Err(ParseError::NotASize("lots".into())));
    }

    proptest! {
        #[test]
        fn size_round_trips(n in any::<u64>(), shift in prop::sample::select(vec![0u32, 10, 20, 30, 40])) {
            let size = Size(n.checked_shl(shift).filter(|v| v >> shift == n).unwrap_or(n));
            prop_assert_eq!(size.to_string().parse::<Size>(), Ok(size));
        }

        #[test]
        fn limit_round_trips(n in proptest::option::of(any::<u64>())) {
            let limit = n.map_or(Limit::Unlimited, |b| Limit::At(Size(b)));
            prop_assert_eq!(limit.to_string().parse::<Limit>(), Ok(limit));
        }

        #[test]
        fn percent_round_trips(v in 0.0f64..=100.0) {
            let p = Percent::new(v).ok_or_else(|| TestCaseError::fail("in range"))?;
            prop_assert_eq!(p.to_string().parse::<Percent>(), Ok(p));
        }
    }
}
