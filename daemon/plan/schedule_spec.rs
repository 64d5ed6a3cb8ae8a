//! The schedule forms an item can declare (`at` + `days`, `cron`, `every`, `when`) and the
//! syntax checks for each. Owns parsing of the forms; it must not compute firings (that is
//! `schedule`'s job) nor know about items or recipients.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime, Weekday};

use crate::vocab::PlanDuration;

/// Which weekdays an `at` schedule fires on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DaySet(u8);

impl DaySet {
    pub const DAILY: DaySet = DaySet(0b111_1111);
    pub const WEEKDAYS: DaySet = DaySet(0b001_1111);
    pub const WEEKENDS: DaySet = DaySet(0b110_0000);

    pub fn empty() -> Self {
        DaySet(0)
    }

    pub fn insert(&mut self, day: Weekday) {
        self.0 |= 1 << day.num_days_from_monday();
    }

    pub fn contains(&self, day: Weekday) -> bool {
        self.0 & (1 << day.num_days_from_monday()) != 0
    }

    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }
}

pub fn parse_weekday(s: &str) -> Option<Weekday> {
    Some(match s.to_ascii_lowercase().as_str() {
        "mon" | "monday" => Weekday::Mon,
        "tue" | "tuesday" => Weekday::Tue,
        "wed" | "wednesday" => Weekday::Wed,
        "thu" | "thursday" => Weekday::Thu,
        "fri" | "friday" => Weekday::Fri,
        "sat" | "saturday" => Weekday::Sat,
        "sun" | "sunday" => Weekday::Sun,
        _ => return None,
    })
}

/// When an item fires.
#[derive(Debug, Clone)]
pub enum ScheduleSpec {
    /// Local wall-clock times on the given days.
    At { times: Vec<NaiveTime>, days: DaySet },
    /// A cron expression, matched against local wall-clock time.
    Cron { cron: std::sync::Arc<croner::Cron> },
    /// Elapsed time from a local anchor.
    Every {
        period: PlanDuration,
        start: NaiveDateTime,
    },
    /// One local date-time (appointments).
    When(NaiveDateTime),
}

/// Parses `HH:MM` (or `HH:MM:SS`).
pub fn parse_clock(s: &str) -> Option<NaiveTime> {
    let ok_shape = s.len() >= 4 && s.chars().all(|c| c.is_ascii_digit() || c == ':');
    if !ok_shape {
        return None;
    }
    NaiveTime::parse_from_str(s, "%H:%M")
        .or_else(|_| NaiveTime::parse_from_str(s, "%H:%M:%S"))
        .ok()
}

/// Parses a local date-time such as `2026-12-03T15:00` (a space is accepted for the `T`).
pub fn parse_local_datetime(s: &str) -> Option<NaiveDateTime> {
    let s = s.trim();
    for fmt in [
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%d %H:%M:%S",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return in_range(t.date()).then_some(t);
        }
    }
    None
}

/// Parses `YYYY-MM-DD` between `MIN_YEAR` and `MAX_YEAR`.
pub fn parse_date(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .ok()
        .filter(|d| in_range(*d))
}

/// Dates in a plan lie in these years; the bound keeps every computation on them (a
/// reminder a week before, a follow-up a year after) far from chrono's limits.
pub const MIN_YEAR: i32 = 1970;
pub const MAX_YEAR: i32 = 9999;
/// Said in hints about dates.
pub const YEAR_RANGE: &str = "dates lie between the years 1970 and 9999";

fn in_range(d: NaiveDate) -> bool {
    (MIN_YEAR..=MAX_YEAR).contains(&chrono::Datelike::year(&d))
}

/// A problem inside a cron expression: byte range inside the expression text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronProblem {
    pub start: usize,
    pub end: usize,
    pub message: String,
    pub hint: Option<String>,
}

const CRON_FIELDS: [(&str, u32, u32); 6] = [
    ("second", 0, 59),
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 7),
];

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

/// Parses a 5-field cron expression, or a 6-field one with seconds first, pointing at the
/// offending field when it is wrong.
pub fn parse_cron(expr: &str) -> Result<croner::Cron, CronProblem> {
    let whole = |message: String, hint: Option<&str>| CronProblem {
        start: 0,
        end: expr.len(),
        message,
        hint: hint.map(str::to_string),
    };
    let trimmed = expr.trim();
    if !trimmed.starts_with('@') {
        let mut fields = Vec::new();
        let mut offset = 0;
        for part in expr.split(' ') {
            if !part.is_empty() {
                fields.push((offset, part));
            }
            offset += part.len() + 1;
        }
        if fields.len() != 5 && fields.len() != 6 {
            return Err(whole(
                format!(
                    "cron expression has {} fields, expected 5 or 6",
                    fields.len()
                ),
                Some(
                    "use `minute hour day-of-month month day-of-week`, e.g. `30 8 * * mon-fri`; a sixth field in front is seconds",
                ),
            ));
        }
        let first = if fields.len() == 5 { 1 } else { 0 };
        // Keep the seconds field, but one value only: kithd messages nobody more than once
        // a minute, as `every` already enforces.
        if let [(off, secs), ..] = fields.as_slice()
            && fields.len() == 6
            && !secs.chars().all(|c| c.is_ascii_digit())
        {
            return Err(CronProblem {
                start: *off,
                end: off + secs.len(),
                message: format!(
                    "the seconds field `{secs}` fires more than once a minute"
                ),
                hint: Some(
                    "kithd won't message anyone more than once a minute: give one second (`0 30 8 * * *`) or drop the seconds field".into(),
                ),
            });
        }
        for (idx, (off, text)) in fields.iter().enumerate() {
            let (name, lo, hi) = CRON_FIELDS[first + idx];
            if let Err((rel, len, message)) = check_cron_field(text, name, lo, hi) {
                return Err(CronProblem {
                    start: off + rel,
                    end: off + rel + len.max(1),
                    message,
                    hint: Some(format!(
                        "the {name} field takes values {lo}-{hi}, `*`, lists `a,b`, ranges `a-b` and steps `*/n`"
                    )),
                });
            }
        }
    }
    croner::Cron::new(trimmed)
        .with_seconds_optional()
        .parse()
        .map_err(|e| whole(format!("invalid cron expression: {e}"), None))
}

/// Checks one cron field; on error returns (offset, length, message) inside the field.
fn check_cron_field(
    text: &str,
    name: &str,
    lo: u32,
    hi: u32,
) -> Result<(), (usize, usize, String)> {
    let names: &[&str] = match name {
        "month" => &MONTHS,
        "day of week" => &DAYS,
        _ => &[],
    };
    let value = |s: &str, at: usize| -> Result<u32, (usize, usize, String)> {
        if let Ok(n) = s.parse::<u32>() {
            if n < lo || n > hi {
                return Err((
                    at,
                    s.len(),
                    format!("{name} `{n}` is out of range {lo}-{hi}"),
                ));
            }
            return Ok(n);
        }
        if let Some(i) = names.iter().position(|m| m.eq_ignore_ascii_case(s)) {
            return Ok(i as u32 + if name == "month" { 1 } else { 0 });
        }
        Err((at, s.len(), format!("`{s}` is not a valid {name}")))
    };
    let mut at = 0;
    for item in text.split(',') {
        if item.is_empty() {
            return Err((at, 1, format!("empty entry in the {name} field")));
        }
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => (r, Some(s)),
            None => (item, None),
        };
        if let Some(step) = step {
            let step_at = at + range.len() + 1;
            match step.parse::<u32>() {
                Ok(n) if n >= 1 && n <= hi.max(1) => {}
                _ => {
                    return Err((
                        step_at,
                        step.len(),
                        format!("`{step}` is not a valid step for the {name} field"),
                    ));
                }
            }
        }
        let special = matches!(range, "*" | "?")
            || (name == "day of month" && range.eq_ignore_ascii_case("L"))
            || (name == "day of week"
                && (range.contains('#') || range.to_ascii_uppercase().ends_with('L')));
        if !special {
            match range.split_once('-') {
                Some((a, b)) => {
                    let va = value(a, at)?;
                    let vb = value(b, at + a.len() + 1)?;
                    if va > vb && name != "day of week" {
                        return Err((at, range.len(), format!("range `{range}` runs backwards")));
                    }
                }
                None => {
                    value(range, at)?;
                }
            }
        }
        at += item.len() + 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cron_points_inside_the_expression() {
        let e = parse_cron("0 25 * * *").unwrap_err();
        assert_eq!((e.start, e.end), (2, 4));
        assert_eq!(e.message, "hour `25` is out of range 0-23");
        let e = parse_cron("*/0 * * * *").unwrap_err();
        assert_eq!(e.start, 2);
        let e = parse_cron("0 8 * * mon-fry").unwrap_err();
        assert_eq!(
            (e.start, e.message.as_str()),
            (12, "`fry` is not a valid day of week")
        );
        assert!(parse_cron("0 8 * *").is_err());
        assert!(parse_cron("30 0 8 * * mon-fri").is_ok());
        assert!(parse_cron("@daily").is_ok());
        assert!(parse_cron("0 9 1,15 jan-jun *").is_ok());
    }

    #[test]
    fn nothing_fires_more_than_once_a_minute() {
        for expr in [
            "* * * * * *",
            "*/10 * * * * *",
            "0,30 0 8 * * *",
            "0-5 0 8 * * *",
        ] {
            let e = parse_cron(expr).unwrap_err();
            assert_eq!(e.start, 0, "{expr}");
            assert!(e.message.contains("more than once a minute"), "{expr}");
        }
        assert!(parse_cron("15 * * * * *").is_ok());
    }

    #[test]
    fn dates_are_bounded() {
        assert!(parse_local_datetime("+262142-12-31T23:59").is_none());
        assert!(parse_local_datetime("9999-12-31T23:59").is_some());
        assert!(parse_local_datetime("10000-01-01T00:00").is_none());
        assert!(parse_local_datetime("1969-12-31T23:59").is_none());
        assert!(parse_date("1970-01-01").is_some());
        assert!(parse_date("0001-01-01").is_none());
    }

    #[test]
    fn clock_and_days() {
        assert_eq!(parse_clock("08:30"), NaiveTime::from_hms_opt(8, 30, 0));
        assert_eq!(parse_clock("8:30"), NaiveTime::from_hms_opt(8, 30, 0));
        assert_eq!(parse_clock("24:00"), None);
        assert_eq!(parse_clock("8h"), None);
        assert!(DaySet::WEEKDAYS.contains(Weekday::Fri));
        assert!(!DaySet::WEEKDAYS.contains(Weekday::Sat));
        assert_eq!(parse_weekday("Thu"), Some(Weekday::Thu));
    }
}
