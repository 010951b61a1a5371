//! Five-field cron expressions (`minute hour day-of-month month day-of-week`) with Vixie cron's
//! semantics, and the next occurrence after an instant in a given time zone.
//!
//! Syntax per field: `*`, a number, a name (`JAN`–`DEC`, `SUN`–`SAT`, any case), a range `a-b`,
//! a step `*/n`, `a-b/n` or `a/n` (from `a` to the field's maximum), and comma-separated lists of
//! these. Day-of-week 0 and 7 are both Sunday. The macros `@yearly` (`@annually`), `@monthly`,
//! `@weekly`, `@daily` (`@midnight`) and `@hourly` stand for their usual expressions.
//!
//! Day matching follows Vixie cron (`(DOM_STAR || DOW_STAR) ? dom && dow : dom || dow`): when
//! neither day-of-month nor day-of-week starts with `*`, a day matches if EITHER matches
//! (`0 0 1 * MON` is "the 1st and every Monday"); when either starts with `*` a day must match BOTH
//! (`*` matches every day, so `0 0 13 * *` is just the 13th, but `0 3 */2 * 1-5` is the odd-numbered
//! weekdays, not every weekday and every odd day).
//!
//! Time zones ([`Schedule::next_after`] works in the zone of the instant it is given):
//! - a wall-clock time skipped by a DST gap (02:30 on a spring-forward night) fires once, at the
//!   first instant after the gap (03:00 new time); several skipped times collapse into that one run;
//! - a wall-clock time repeated by a DST overlap (01:30 on a fall-back night) fires once, at its
//!   first instance; the repeated hour does not fire again, even for `*/15 * * * *`.

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Timelike};

/// An expression that cannot be parsed: names the expression, the field and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExprError {
    #[error("cron expression {expr:?}: expected 5 fields (minute hour day-of-month month day-of-week), found {found}")]
    FieldCount { expr: String, found: usize },

    #[error("cron expression {expr:?}: {field} field {value:?}: {reason}")]
    Field { expr: String, field: &'static str, value: String, reason: String },

    #[error("cron expression {expr:?}: unknown macro (known: @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly)")]
    UnknownMacro { expr: String },

    #[error("cron expression {expr:?} never matches: no month has the days it names")]
    Never { expr: String },
}

struct FieldSpec {
    name: &'static str,
    min: u32,
    max: u32,
    /// Names of `min`, `min + 1`, …
    names: &'static [&'static str],
}

const MINUTE: FieldSpec = FieldSpec { name: "minute", min: 0, max: 59, names: &[] };
const HOUR: FieldSpec = FieldSpec { name: "hour", min: 0, max: 23, names: &[] };
const DOM: FieldSpec = FieldSpec { name: "day-of-month", min: 1, max: 31, names: &[] };
const MONTH: FieldSpec = FieldSpec {
    name: "month",
    min: 1,
    max: 12,
    names: &["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"],
};
// 7 is accepted as Sunday and folded onto 0 after parsing.
const DOW: FieldSpec =
    FieldSpec { name: "day-of-week", min: 0, max: 7, names: &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"] };

/// A parsed expression: one bit per allowed value of each field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    text: String,
    minutes: u64,
    hours: u32,
    doms: u32,
    months: u16,
    dows: u8,
    dom_star: bool,
    dow_star: bool,
}

impl std::str::FromStr for Schedule {
    type Err = ExprError;
    fn from_str(s: &str) -> Result<Self, ExprError> {
        Schedule::parse(s)
    }
}

impl std::fmt::Display for Schedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// How far ahead an occurrence is looked for.
const SEARCH_YEARS: i64 = 41;

impl Schedule {
    /// Parse an expression (surrounding and repeated whitespace is ignored).
    pub fn parse(expr: &str) -> Result<Schedule, ExprError> {
        let text = expr.split_whitespace().collect::<Vec<_>>().join(" ");
        let expanded = if text.starts_with('@') {
            match text.to_ascii_lowercase().as_str() {
                "@yearly" | "@annually" => "0 0 1 1 *",
                "@monthly" => "0 0 1 * *",
                "@weekly" => "0 0 * * 0",
                "@daily" | "@midnight" => "0 0 * * *",
                "@hourly" => "0 * * * *",
                _ => return Err(ExprError::UnknownMacro { expr: expr.to_string() }),
            }
            .to_string()
        } else {
            text.clone()
        };
        let fields: Vec<&str> = expanded.split(' ').filter(|f| !f.is_empty()).collect();
        if fields.len() != 5 {
            return Err(ExprError::FieldCount { expr: expr.to_string(), found: fields.len() });
        }
        let field = |i: usize, spec: &FieldSpec| {
            parse_field(fields[i], spec).map_err(|reason| ExprError::Field {
                expr: expr.to_string(),
                field: spec.name,
                value: fields[i].to_string(),
                reason,
            })
        };
        let minutes = field(0, &MINUTE)?;
        let hours = field(1, &HOUR)? as u32;
        let doms = field(2, &DOM)? as u32;
        let months = field(3, &MONTH)? as u16;
        let dow_bits = field(4, &DOW)?;
        let dows = ((dow_bits | (dow_bits >> 7)) & 0x7f) as u8;
        let s = Schedule {
            text,
            minutes,
            hours,
            doms,
            months,
            dows,
            dom_star: fields[2].starts_with('*'),
            dow_star: fields[4].starts_with('*'),
        };
        // With day-of-week unrestricted only day-of-month picks days: `30 2` would search forever.
        if s.dow_star && !s.has_possible_day() {
            return Err(ExprError::Never { expr: expr.to_string() });
        }
        Ok(s)
    }

    /// The expression as written (whitespace normalised).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    fn has_possible_day(&self) -> bool {
        const LONGEST: [u32; 12] = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
        (1..=12u32)
            .any(|m| self.months & (1 << m) != 0 && (1..=LONGEST[m as usize - 1]).any(|d| self.doms & (1 << d) != 0))
    }

    /// Whether the day matches (month, and day-of-month / day-of-week with Vixie's rule).
    pub fn matches_date(&self, d: NaiveDate) -> bool {
        if self.months & (1 << d.month()) == 0 {
            return false;
        }
        let dom = self.doms & (1 << d.day()) != 0;
        let dow = self.dows & (1 << d.weekday().num_days_from_sunday()) != 0;
        // Vixie cron's `(DOM_STAR || DOW_STAR) ? dom && dow : dom || dow`: a field starting with `*`
        // (`*/2` too) still restricts the other one's days, it does not stand aside.
        if self.dom_star || self.dow_star {
            dom && dow
        } else {
            dom || dow
        }
    }

    /// Whether a wall-clock minute matches (seconds are ignored).
    pub fn matches(&self, t: NaiveDateTime) -> bool {
        self.matches_date(t.date()) && self.hours & (1 << t.hour()) != 0 && self.minutes & (1 << t.minute()) != 0
    }

    /// The first occurrence strictly after `after`, in `after`'s time zone (DST rules in the module
    /// doc). `None` only when no matching day exists in the next 41 years, which [`Schedule::parse`]
    /// already rules out for every expression but impossible month/day combinations.
    pub fn next_after<Tz: TimeZone>(&self, after: &DateTime<Tz>) -> Option<DateTime<Tz>> {
        let tz = after.timezone();
        let local = after.naive_local();
        let start = local.with_second(0)?.with_nanosecond(0)? + Duration::minutes(1);
        let mut date = start.date();
        // A date on a given weekday (a step day field ANDed with a weekday, as Vixie does) recurs
        // within 28 years, 29 February on a given weekday within 40 across a skipped leap year.
        for _ in 0..(SEARCH_YEARS * 366) {
            if self.matches_date(date) {
                let first = date == start.date();
                for h in (0..24u32).filter(|h| self.hours & (1 << h) != 0) {
                    if first && h < start.hour() {
                        continue;
                    }
                    for m in (0..60u32).filter(|m| self.minutes & (1 << m) != 0) {
                        if first && h == start.hour() && m < start.minute() {
                            continue;
                        }
                        let naive = date.and_hms_opt(h, m, 0)?;
                        let instant = match tz.from_local_datetime(&naive) {
                            LocalResult::Single(t) => Some(t),
                            // Not `.0`: chrono's `Local` (TZ rules) gives the later instance first.
                            LocalResult::Ambiguous(a, b) => Some(if a <= b { a } else { b }),
                            LocalResult::None => after_gap(&tz, naive),
                        };
                        if let Some(t) = instant.filter(|t| t > after) {
                            return Some(t);
                        }
                    }
                }
            }
            date = date.succ_opt()?;
        }
        None
    }

    /// The first `n` occurrences strictly after `after`, ascending (fewer when the expression stops
    /// matching within the search horizon of [`Schedule::next_after`]).
    pub fn next_n<Tz: TimeZone>(&self, after: &DateTime<Tz>, n: usize) -> Vec<DateTime<Tz>> {
        let mut out: Vec<DateTime<Tz>> = Vec::with_capacity(n);
        let mut at = after.clone();
        while out.len() < n {
            let Some(next) = self.next_after(&at) else { break };
            at = next.clone();
            out.push(next);
        }
        out
    }

    /// The last occurrence in `(since, until]`, if any: the occurrence a run that catches up at
    /// `until` stands for.
    pub fn latest_in<Tz: TimeZone>(&self, since: &DateTime<Tz>, until: &DateTime<Tz>) -> Option<DateTime<Tz>> {
        // Search back in widening windows so that a frequent schedule after a long outage does not
        // step through every missed occurrence.
        for days in [1, 32, 367, SEARCH_YEARS * 366] {
            let from = until.clone() - Duration::days(days);
            let mut at = if from > *since { from } else { since.clone() };
            let mut last = None;
            while let Some(next) = self.next_after(&at).filter(|n| n <= until) {
                at = next.clone();
                last = Some(next);
            }
            if last.is_some() || at == *since {
                return last;
            }
        }
        None
    }
}

/// The first instant after a DST gap that swallowed `naive`.
fn after_gap<Tz: TimeZone>(tz: &Tz, naive: NaiveDateTime) -> Option<DateTime<Tz>> {
    (1..=24 * 60).find_map(|k| match tz.from_local_datetime(&(naive + Duration::minutes(k))) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => Some(t),
        LocalResult::None => None,
    })
}

/// One field as a bit set of its allowed values (bit `v` for value `v`).
fn parse_field(text: &str, spec: &FieldSpec) -> Result<u64, String> {
    let mut bits = 0u64;
    for item in text.split(',') {
        if item.is_empty() {
            return Err("empty list item".into());
        }
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => {
                let step: u32 = s.parse().map_err(|_| format!("step {s:?} is not a number"))?;
                if step == 0 {
                    return Err("step must be at least 1".into());
                }
                (r, Some(step))
            }
            None => (item, None),
        };
        let (lo, hi) = if range == "*" {
            (spec.min, spec.max)
        } else if let Some((a, b)) = range.split_once('-') {
            let (a, b) = (value(a, spec)?, value(b, spec)?);
            if a > b {
                return Err(format!("range {range} goes backwards"));
            }
            (a, b)
        } else {
            let a = value(range, spec)?;
            (a, if step.is_some() { spec.max } else { a })
        };
        let mut v = lo;
        while v <= hi {
            bits |= 1 << v;
            v += step.unwrap_or(1);
        }
    }
    Ok(bits)
}

fn value(text: &str, spec: &FieldSpec) -> Result<u32, String> {
    if let Some(i) = spec.names.iter().position(|n| n.eq_ignore_ascii_case(text)) {
        return Ok(spec.min + i as u32);
    }
    let v: u32 = text.parse().map_err(|_| {
        if spec.names.is_empty() {
            format!("{text:?} is not a number")
        } else {
            format!("{text:?} is not a number or a name ({}…)", spec.names[..3].join(", "))
        }
    })?;
    if v < spec.min || v > spec.max {
        return Err(format!("{v} is out of range {}-{}", spec.min, spec.max));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use proptest::prelude::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).expect("time").with_timezone(&Utc)
    }

    #[test]
    fn the_next_n_occurrences_ascend_from_the_first() {
        let s = Schedule::parse("0 3 * * 1-5").expect("parse");
        let got = s.next_n(&utc("2025-10-03T12:00:00Z"), 5);
        let want = [
            "2025-10-06T03:00:00Z",
            "2025-10-07T03:00:00Z",
            "2025-10-08T03:00:00Z",
            "2025-10-09T03:00:00Z",
            "2025-10-10T03:00:00Z",
        ];
        assert_eq!(got, want.map(utc).to_vec());
        assert!(s.next_n(&utc("2025-10-03T12:00:00Z"), 0).is_empty());
    }

    #[test]
    fn table() {
        let cases = [
            ("0 3 * * *", "2025-01-01T03:00:00Z", "2025-01-02T03:00:00Z"),
            ("0 3 * * *", "2025-01-01T02:59:59Z", "2025-01-01T03:00:00Z"),
            ("*/15 * * * *", "2025-01-01T00:14:00Z", "2025-01-01T00:15:00Z"),
            ("5,10-12 * * * *", "2025-01-01T00:10:30Z", "2025-01-01T00:11:00Z"),
            ("0 0 1 * MON", "2025-09-02T00:00:00Z", "2025-09-08T00:00:00Z"), // Monday before the 1st
            ("0 0 1 * MON", "2025-09-29T00:00:00Z", "2025-10-01T00:00:00Z"), // the 1st before Monday
            ("0 0 */2 * MON", "2025-09-02T00:00:00Z", "2025-09-15T00:00:00Z"), // */2 AND Monday: odd Mondays
            ("0 3 */2 * 1-5", "2025-09-05T03:00:00Z", "2025-09-09T03:00:00Z"), // odd weekdays: Fri 5 → Tue 9
            ("0 0 1 * */2", "2025-09-02T00:00:00Z", "2025-11-01T00:00:00Z"), // the 1st on Sun/Tue/Thu/Sat
            ("0 0 29 2 *", "2025-03-01T00:00:00Z", "2028-02-29T00:00:00Z"),
            ("30 17 * * 5", "2025-10-01T00:00:00Z", "2025-10-03T17:30:00Z"),
            ("0 9 * JAN-MAR/2 sun", "2025-02-01T00:00:00Z", "2025-03-02T09:00:00Z"),
            ("0 0 * * 7", "2025-10-01T00:00:00Z", "2025-10-05T00:00:00Z"),
            ("@weekly", "2025-10-01T00:00:00Z", "2025-10-05T00:00:00Z"),
            ("59 23 31 12 *", "2025-01-01T00:00:00Z", "2025-12-31T23:59:00Z"),
        ];
        for (expr, after, want) in cases {
            let s = Schedule::parse(expr).expect(expr);
            assert_eq!(s.next_after(&utc(after)), Some(utc(want)), "{expr} after {after}");
        }
    }

    #[test]
    fn errors_name_the_field() {
        let bad = [
            ("0 3 * *", "expected 5 fields"),
            ("60 3 * * *", "minute field \"60\": 60 is out of range 0-59"),
            ("0 24 * * *", "hour field"),
            ("0 0 0 * *", "day-of-month field \"0\""),
            ("0 0 * 13 *", "month field"),
            ("0 0 * * 8", "day-of-week field"),
            ("0 0 * * FUN", "day-of-week field \"FUN\""),
            ("*/0 * * * *", "step must be at least 1"),
            ("5-1 * * * *", "goes backwards"),
            ("1,,2 * * * *", "empty list item"),
            ("0 0 30 2 *", "never matches"),
            ("@often", "unknown macro"),
        ];
        for (expr, want) in bad {
            let e = Schedule::parse(expr).expect_err(expr).to_string();
            assert!(e.contains(want), "{expr}: {e}");
        }
    }

    #[test]
    fn latest_in_picks_the_last_missed_occurrence() {
        let s = Schedule::parse("0 3 * * *").expect("parse");
        let got = s.latest_in(&utc("2025-01-01T04:00:00Z"), &utc("2025-01-05T10:00:00Z"));
        assert_eq!(got, Some(utc("2025-01-05T03:00:00Z")));
        assert_eq!(s.latest_in(&utc("2025-01-05T03:00:00Z"), &utc("2025-01-05T10:00:00Z")), None);
        let every = Schedule::parse("* * * * *").expect("parse");
        let got = every.latest_in(&utc("2024-01-01T00:00:00Z"), &utc("2025-01-05T10:00:30Z"));
        assert_eq!(got, Some(utc("2025-01-05T10:00:00Z")));
    }

    fn field_text(min: u32, max: u32) -> impl Strategy<Value = String> {
        let item = prop_oneof![
            Just("*".to_string()),
            (min..=max).prop_map(|v| v.to_string()),
            (min..=max, min..=max).prop_map(|(a, b)| format!("{}-{}", a.min(b), a.max(b))),
            (1..=max.max(1)).prop_map(|s| format!("*/{s}")),
            (min..=max, 1..=7u32).prop_map(|(a, s)| format!("{a}/{s}")),
        ];
        proptest::collection::vec(item, 1..3).prop_map(|v| v.join(","))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        /// The next occurrence matches, lies after the start, and no minute in between matches
        /// (checked minute by minute over up to four days).
        #[test]
        fn next_is_the_first_match(
            m in field_text(0, 59), h in field_text(0, 23), dom in field_text(1, 31),
            mon in field_text(1, 12), dow in field_text(0, 7), start in 1_600_000_000i64..1_900_000_000,
        ) {
            let expr = format!("{m} {h} {dom} {mon} {dow}");
            let Ok(s) = Schedule::parse(&expr) else { return Ok(()) };
            let after = DateTime::from_timestamp(start, 0).expect("time");
            let next = s.next_after(&after).expect("next");
            prop_assert!(next > after);
            prop_assert!(s.matches(next.naive_utc()), "{expr}: {next}");
            let mut t = after.naive_utc().with_second(0).expect("s") + Duration::minutes(1);
            let end = next.naive_utc().min(t + Duration::days(4));
            while t < end {
                prop_assert!(!s.matches(t), "{expr}: {t} matches before {next}");
                t += Duration::minutes(1);
            }
        }
    }
}
