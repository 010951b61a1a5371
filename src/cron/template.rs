//! The run-time templates of a job's command line, and the dates a shell froze into it.
//!
//! `{date}` (YYYY-MM-DD) and `{time}` (HHMMSS) in a custom command, and in the archive names of a
//! backup job's `--dest`/`--out`, are replaced, in the server's time zone, with the run's start
//! before the command runs, so that every run writes its own name, and a scheduler on an injected
//! clock (`cron run-due --now`) names its archives by that clock. `{tenant}` and `{snapshot}` are left to `backup create`, which knows
//! them. A command written as `… $(date +%Y-%m-%d).zip` in a shell is expanded by that shell when
//! the job is added: [`literal_dates`] finds such a frozen date so `cron add` can say so.

use chrono::{DateTime, Local, NaiveDate, TimeZone};

/// The templates this module expands.
pub const DATE: &str = "{date}";
pub const TIME: &str = "{time}";

/// `text` with `{date}` and `{time}` replaced by `at` in the server's time zone.
pub fn expand<Tz: TimeZone>(text: &str, at: &DateTime<Tz>) -> String {
    if !text.contains(DATE) && !text.contains(TIME) {
        return text.to_string();
    }
    let at = at.with_timezone(&Local);
    text.replace(DATE, &at.format("%Y-%m-%d").to_string()).replace(TIME, &at.format("%H%M%S").to_string())
}

/// The spellings of `days` that `text` holds literally: `YYYY-MM-DD`, and `YYYYMMDD` standing alone
/// (not inside a longer run of digits), in the order of `days`.
pub fn literal_dates(text: &str, days: &[NaiveDate]) -> Vec<String> {
    let mut found = Vec::new();
    for d in days {
        for spelled in [d.format("%Y-%m-%d").to_string(), d.format("%Y%m%d").to_string()] {
            if !found.contains(&spelled) && holds_alone(text, &spelled) {
                found.push(spelled);
            }
        }
    }
    found
}

/// Whether `text` holds `needle` with no digit right before or after it.
fn holds_alone(text: &str, needle: &str) -> bool {
    let bytes = text.as_bytes();
    text.match_indices(needle).any(|(i, _)| {
        let before = i.checked_sub(1).and_then(|j| bytes.get(j)).is_some_and(u8::is_ascii_digit);
        let after = bytes.get(i + needle.len()).is_some_and(u8::is_ascii_digit);
        !before && !after
    })
}

/// Today in the server's time zone and in UTC (they differ around midnight): the dates a shell
/// that just expanded `$(date …)` may have written.
pub fn today() -> Vec<NaiveDate> {
    let local = Local::now().date_naive();
    let utc = chrono::Utc::now().date_naive();
    if local == utc {
        vec![local]
    } else {
        vec![local, utc]
    }
}

/// The warning `cron add`/`cron edit` print when `text` holds today's date literally, if it does.
pub fn frozen_date_warning(text: &str) -> Option<String> {
    let found = literal_dates(text, &today());
    let first = found.first()?;
    Some(format!(
        "the job's command holds today's date ({first}) as fixed text, probably expanded by your shell \
         (`$(date …)`) when the job was added: every run would write the same name. Write {DATE} instead \
         (quoted as is, e.g. `--dest s3://bucket/{DATE}.zip`): the scheduler replaces it with the date \
         of each run (and {TIME} with its time)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_found_alone_and_templates_expand() {
        let d = NaiveDate::from_ymd_opt(2026, 3, 7).expect("date");
        assert_eq!(
            literal_dates("sophon backup create --dest s3://b/2026-03-07.zip", &[d]),
            vec!["2026-03-07".to_string()]
        );
        assert_eq!(literal_dates("tar czf /srv/x-20260307/a.tgz .", &[d]), vec!["20260307".to_string()]);
        assert!(literal_dates("id 120260307 and 2026-03-08", &[d]).is_empty());
        let at = chrono::Utc.with_ymd_and_hms(2026, 3, 7, 12, 0, 0).single().expect("time");
        let local = at.with_timezone(&Local);
        let want = format!("s3://b/{}-{}.zip", local.format("%Y-%m-%d"), local.format("%H%M%S"));
        assert_eq!(expand("s3://b/{date}-{time}.zip", &at), want);
        assert_eq!(expand("echo {tenant}", &at), "echo {tenant}");
    }
}
