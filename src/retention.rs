//! Retention policies: which snapshots `forget` keeps. The rules are restic 0.14's, so operators
//! who know `restic forget` get no surprises, and tests compare our kept sets with restic's own
//! (tests/retention.rs over tests/data/retention/). Differences are documented in
//! format-spec/retention.md.
//!
//! Snapshots are walked newest first. Each `keep-*` count is a bucket that keeps the newest
//! snapshot of every period (hour, day, ISO week, month, year) until it has kept that many
//! periods; periods without a snapshot do not count. Periods are taken in the time zone offset each
//! snapshot recorded. `--keep-within` keeps everything newer than the newest snapshot minus the
//! duration (calendar arithmetic, normalised as Go's `AddDate` does); `--keep-tag` keeps snapshots
//! carrying every tag of any one list and is not counted.

use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, TimeZone, Timelike};

use crate::error::{Error, Result};

/// How many of each period to keep, plus the uncounted rules.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Policy {
    pub last: u32,
    pub hourly: u32,
    pub daily: u32,
    pub weekly: u32,
    pub monthly: u32,
    pub yearly: u32,
    pub within: Option<Within>,
    /// Keep snapshots that carry all the tags of any one list.
    pub tags: Vec<Vec<String>>,
}

impl Policy {
    /// The policy when none is configured: 7 daily, 4 weekly, 12 monthly (format-spec/gateway.md §4.1).
    pub fn product_default() -> Policy {
        Policy { daily: 7, weekly: 4, monthly: 12, ..Policy::default() }
    }

    pub fn is_empty(&self) -> bool {
        self.last == 0
            && self.hourly == 0
            && self.daily == 0
            && self.weekly == 0
            && self.monthly == 0
            && self.yearly == 0
            && self.within.is_none()
            && self.tags.is_empty()
    }

    /// The policy in `--keep-*` flag form, for messages and reports.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        for (name, n) in [
            ("last", self.last),
            ("hourly", self.hourly),
            ("daily", self.daily),
            ("weekly", self.weekly),
            ("monthly", self.monthly),
            ("yearly", self.yearly),
        ] {
            if n > 0 {
                parts.push(format!("keep {n} {name}"));
            }
        }
        if let Some(w) = &self.within {
            parts.push(format!("keep within {w}"));
        }
        for t in &self.tags {
            parts.push(format!("keep tag {}", t.join(",")));
        }
        if parts.is_empty() {
            "empty".into()
        } else {
            parts.join(", ")
        }
    }
}

/// A calendar duration as restic writes it: `1y2m3d4h` (years, months, days, hours).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Within {
    pub years: i32,
    pub months: i32,
    pub days: i32,
    pub hours: i32,
}

impl std::str::FromStr for Within {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = |why: &str| Error::invalid(format!("duration {s:?}: {why} (write it like 1y2m3d4h)"));
        let mut w = Within::default();
        let mut digits = String::new();
        let mut seen = String::new();
        for c in s.trim().chars() {
            if c.is_ascii_digit() {
                digits.push(c);
                continue;
            }
            let n: i32 = digits.parse().map_err(|_| bad("every unit needs a number before it"))?;
            digits.clear();
            if seen.contains(c) {
                return Err(bad(&format!("unit {c:?} given twice")));
            }
            seen.push(c);
            match c {
                'y' => w.years = n,
                'm' => w.months = n,
                'd' => w.days = n,
                'h' => w.hours = n,
                _ => return Err(bad(&format!("unknown unit {c:?}"))),
            }
        }
        if !digits.is_empty() {
            return Err(bad("a number without a unit"));
        }
        if seen.is_empty() {
            return Err(bad("empty"));
        }
        Ok(w)
    }
}

impl std::fmt::Display for Within {
    /// restic's spelling: zero parts left out; a duration of zero is `0h` (an empty string
    /// would not parse back: the fuzzer's `0m`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts = [(self.years, 'y'), (self.months, 'm'), (self.days, 'd'), (self.hours, 'h')];
        if parts.iter().all(|(n, _)| *n == 0) {
            return f.write_str("0h");
        }
        for (n, unit) in parts {
            if n != 0 {
                write!(f, "{n}{unit}")?;
            }
        }
        Ok(())
    }
}

impl serde::Serialize for Within {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// One snapshot as the policy sees it.
#[derive(Clone, Debug)]
pub struct Candidate<'a> {
    pub time: DateTime<FixedOffset>,
    pub tags: &'a [String],
}

/// Whether a snapshot stays, and every rule that kept it (restic's reason strings).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Decision {
    pub keep: bool,
    pub reasons: Vec<String>,
}

/// Apply `policy` to one group of snapshots. The result is in the order of `items`. Snapshots with
/// the same time are taken in the order given (restic leaves that order to its listing; callers
/// sort ties by snapshot id so the outcome is reproducible).
pub fn apply(policy: &Policy, items: &[Candidate]) -> Vec<Decision> {
    let mut out = vec![Decision::default(); items.len()];
    if policy.is_empty() {
        for d in &mut out {
            d.keep = true;
            d.reasons.push("policy is empty".into());
        }
        return out;
    }
    let mut order: Vec<usize> = (0..items.len()).collect();
    // Newest first; a stable sort keeps the callers' order among equal times.
    order.sort_by(|&a, &b| items[b].time.cmp(&items[a].time));
    let Some(&newest) = order.first() else { return out };
    let within_since = policy.within.map(|w| subtract(items[newest].time, w));

    struct Bucket {
        left: u32,
        last: Option<i64>,
        period: fn(&DateTime<FixedOffset>, usize) -> i64,
        reason: &'static str,
    }
    let mut buckets = [
        Bucket { left: policy.last, last: None, period: |_, nr| nr as i64, reason: "last snapshot" },
        Bucket { left: policy.hourly, last: None, period: hour, reason: "hourly snapshot" },
        Bucket { left: policy.daily, last: None, period: day, reason: "daily snapshot" },
        Bucket { left: policy.weekly, last: None, period: week, reason: "weekly snapshot" },
        Bucket { left: policy.monthly, last: None, period: month, reason: "monthly snapshot" },
        Bucket { left: policy.yearly, last: None, period: |t, _| t.year() as i64, reason: "yearly snapshot" },
    ];

    for (nr, &i) in order.iter().enumerate() {
        let item = &items[i];
        let decision = &mut out[i];
        for list in &policy.tags {
            if list.iter().all(|t| item.tags.contains(t)) {
                decision.reasons.push(format!("has tags [{}]", list.join(", ")));
            }
        }
        if let (Some(since), Some(w)) = (within_since, policy.within) {
            if item.time > since {
                decision.reasons.push(format!("within {w}"));
            }
        }
        for b in buckets.iter_mut().filter(|b| b.left > 0) {
            let p = (b.period)(&item.time, nr);
            if b.last != Some(p) {
                b.last = Some(p);
                b.left -= 1;
                decision.reasons.push(b.reason.into());
            }
        }
        decision.keep = !decision.reasons.is_empty();
    }
    out
}

fn hour(t: &DateTime<FixedOffset>, _: usize) -> i64 {
    day(t, 0) * 100 + t.hour() as i64
}

fn day(t: &DateTime<FixedOffset>, _: usize) -> i64 {
    t.year() as i64 * 10_000 + t.month() as i64 * 100 + t.day() as i64
}

fn week(t: &DateTime<FixedOffset>, _: usize) -> i64 {
    let w = t.iso_week();
    w.year() as i64 * 100 + w.week() as i64
}

fn month(t: &DateTime<FixedOffset>, _: usize) -> i64 {
    t.year() as i64 * 100 + t.month() as i64
}

/// `t` minus a calendar duration, normalised like Go's `time.AddDate` (Mar 31 minus one month is
/// "Feb 31", which is Mar 3), then minus the hours as absolute time.
fn subtract(t: DateTime<FixedOffset>, w: Within) -> DateTime<FixedOffset> {
    let months = t.year() as i64 * 12 + t.month0() as i64 - (w.years as i64 * 12 + w.months as i64);
    let (year, month0) = (months.div_euclid(12), months.rem_euclid(12));
    let shifted = i32::try_from(year)
        .ok()
        .and_then(|y| NaiveDate::from_ymd_opt(y, month0 as u32 + 1, 1))
        .and_then(|first| first.checked_add_signed(Duration::days(t.day() as i64 - 1 - w.days as i64)))
        .and_then(|date| t.offset().from_local_datetime(&date.and_time(t.time())).single());
    match shifted {
        Some(s) => s - Duration::hours(w.hours as i64),
        // Out of chrono's range: nothing is older, so everything is within.
        None => DateTime::<FixedOffset>::MIN_UTC.fixed_offset(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(s).unwrap()
    }

    #[test]
    fn calendar_subtraction_normalises_like_go() {
        let w = |s: &str| s.parse::<Within>().unwrap();
        assert_eq!(subtract(at("2023-03-31T10:00:00Z"), w("1m")), at("2023-03-03T10:00:00Z"));
        assert_eq!(subtract(at("2024-02-29T00:00:00Z"), w("1y")), at("2023-03-01T00:00:00Z"));
        assert_eq!(subtract(at("2024-01-15T05:00:00Z"), w("1m14d6h")), at("2023-11-30T23:00:00Z"));
        assert_eq!(subtract(at("2024-01-01T00:00:00+02:00"), w("1d")), at("2023-12-31T00:00:00+02:00"));
    }

    #[test]
    fn durations_parse_and_print_as_restic_does() {
        assert_eq!("1y2m3d4h".parse::<Within>().unwrap(), Within { years: 1, months: 2, days: 3, hours: 4 });
        assert_eq!("10d12h".parse::<Within>().unwrap().to_string(), "10d12h");
        assert_eq!("0y5d".parse::<Within>().unwrap().to_string(), "5d");
        // A zero duration prints as something that parses back (found by fuzzing: `0m` printed as "").
        for zero in ["0m", "0h", "0y0d"] {
            let printed = zero.parse::<Within>().unwrap().to_string();
            assert_eq!(printed, "0h");
            assert_eq!(printed.parse::<Within>().unwrap(), Within::default());
        }
        for bad in ["", "5", "d", "3w", "1d2d", "-1d", "1.5d"] {
            assert!(bad.parse::<Within>().is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn only_periods_with_a_snapshot_count_and_the_newest_of_each_wins() {
        let times = ["2024-01-01T01:00:00Z", "2024-01-01T23:00:00Z", "2024-01-03T12:00:00Z", "2024-01-09T00:00:00Z"];
        let items: Vec<Candidate> = times.iter().map(|t| Candidate { time: at(t), tags: &[] }).collect();
        let p = Policy { daily: 3, ..Policy::default() };
        let kept: Vec<bool> = apply(&p, &items).iter().map(|d| d.keep).collect();
        assert_eq!(kept, [false, true, true, true]);
    }
}
