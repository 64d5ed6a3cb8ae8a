//! Wall-clock time: the `Clock` trait (real or fixed, so tests and `--now` can inject time)
//! and the one rule that turns a local date-time into an instant. Must not know about plans.

use chrono::{DateTime, LocalResult, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

/// A source of the current wall-clock time.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that always says the same instant.
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub DateTime<Utc>);

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

/// Turns a local wall-clock time into an instant, following kithd's time rules:
/// - a time that happens twice (fall-back fold) resolves to its first occurrence;
/// - a time that does not exist (spring-forward gap) resolves to the first valid instant
///   after it, i.e. the moment the clocks jump (02:30 → 03:00 in Europe/Berlin).
pub fn resolve_local(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(a, b) => a.min(b).with_timezone(&Utc),
        LocalResult::None => {
            // Walk forward minute by minute from the start of this minute; zone transitions
            // fall on minute boundaries, and the longest gap on record is one day.
            let base = local
                .date()
                .and_hms_opt(
                    chrono::Timelike::hour(&local),
                    chrono::Timelike::minute(&local),
                    0,
                )
                .unwrap_or(local);
            for k in 1..=(26 * 60) {
                let candidate = base + chrono::Duration::minutes(k);
                match tz.from_local_datetime(&candidate) {
                    LocalResult::Single(t) => return t.with_timezone(&Utc),
                    LocalResult::Ambiguous(a, b) => return a.min(b).with_timezone(&Utc),
                    LocalResult::None => {}
                }
            }
            // Unreachable for any zone in the tz database; fall back to the UTC reading.
            Utc.from_utc_datetime(&local)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M").unwrap()
    }

    #[test]
    fn gap_moves_to_first_valid_instant() {
        let tz: Tz = "Europe/Berlin".parse().unwrap();
        let t = resolve_local(tz, naive("2027-03-28T02:30"));
        assert_eq!(
            t.with_timezone(&tz).to_rfc3339(),
            "2027-03-28T03:00:00+02:00"
        );
    }

    #[test]
    fn fold_takes_first_occurrence() {
        let tz: Tz = "America/New_York".parse().unwrap();
        let t = resolve_local(tz, naive("2026-11-01T01:30"));
        assert_eq!(
            t.with_timezone(&tz).to_rfc3339(),
            "2026-11-01T01:30:00-04:00"
        );
    }
}
