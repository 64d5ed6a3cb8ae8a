//! Quiet hours (`"22:00-07:30"`): a daily local window in which non-urgent messages wait.
//! Owns the window arithmetic; it must not decide which items respect it.

use chrono::{DateTime, NaiveTime, Utc};
use chrono_tz::Tz;

use crate::clock::resolve_local;

/// A daily window of local time; it may cross midnight (`22:00-07:30`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct QuietHours {
    pub start: NaiveTime,
    pub end: NaiveTime,
}

impl QuietHours {
    /// Parses `"HH:MM-HH:MM"`; start and end must differ.
    pub fn parse(s: &str) -> Option<Self> {
        let (a, b) = s.split_once('-')?;
        let start = super::schedule_spec::parse_clock(a.trim())?;
        let end = super::schedule_spec::parse_clock(b.trim())?;
        (start != end).then_some(Self { start, end })
    }

    fn contains_local(&self, t: NaiveTime) -> bool {
        if self.start < self.end {
            t >= self.start && t < self.end
        } else {
            t >= self.start || t < self.end
        }
    }

    /// If `at` falls inside the window (in `tz`), the instant the window ends; else `None`.
    pub fn defer(&self, at: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        let local = at.with_timezone(&tz).naive_local();
        if !self.contains_local(local.time()) {
            return None;
        }
        let mut date = local.date();
        if local.time() >= self.end {
            date = date.succ_opt()?;
        }
        Some(resolve_local(tz, date.and_time(self.end)))
    }
}

impl std::fmt::Display for QuietHours {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}-{}",
            self.start.format("%H:%M"),
            self.end.format("%H:%M")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_across_midnight_defers_to_its_end() {
        let q = QuietHours::parse("22:00-07:30").unwrap();
        let tz: Tz = "Europe/Berlin".parse().unwrap();
        let at = "2026-06-01T21:30:00Z".parse::<DateTime<Utc>>().unwrap(); // 23:30 local
        let until = q.defer(at, tz).unwrap();
        assert_eq!(until.to_rfc3339(), "2026-06-02T05:30:00+00:00");
        let early = "2026-06-02T04:00:00Z".parse::<DateTime<Utc>>().unwrap(); // 06:00 local
        assert_eq!(
            q.defer(early, tz).unwrap().to_rfc3339(),
            "2026-06-02T05:30:00+00:00"
        );
        let day = "2026-06-02T10:00:00Z".parse::<DateTime<Utc>>().unwrap();
        assert_eq!(q.defer(day, tz), None);
        assert!(QuietHours::parse("22:00-22:00").is_none());
        assert!(QuietHours::parse("22:00").is_none());
    }
}
