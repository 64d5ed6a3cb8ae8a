//! Durations written in a plan (`"8h"`, `"1d"`, `"2h30m"`, `"15m x3"` is handled by callers).
//! Owns the syntax only; it must not decide what a duration means for a schedule.

use std::fmt;

/// A non-negative span of time parsed from the plan, kept with the unit it was written in,
/// so that `1d` can mean one calendar day where the caller wants that.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct PlanDuration {
    seconds: i64,
    /// Whole calendar days (from `d` and `w` units), kept apart from `clock_seconds`.
    days: i64,
    clock_seconds: i64,
}

/// Why a duration did not parse, with the byte offset inside the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurationError {
    pub offset: usize,
    pub message: String,
}

pub(crate) const DURATION_HINT: &str =
    "write a number and a unit: `90s`, `15m`, `8h`, `1d`, `2w`, or a sum such as `1h30m`";

impl PlanDuration {
    pub fn from_secs(seconds: i64) -> Self {
        Self {
            seconds,
            days: 0,
            clock_seconds: seconds,
        }
    }

    /// Total elapsed seconds (a day counts as 86 400 s).
    pub fn as_secs(&self) -> i64 {
        self.seconds
    }

    /// The calendar-day part (from `d` and `w` units).
    pub fn days(&self) -> i64 {
        self.days
    }

    /// The clock part (from `s`, `m` and `h` units), in seconds.
    pub fn clock_seconds(&self) -> i64 {
        self.clock_seconds
    }

    pub fn to_chrono(self) -> chrono::Duration {
        chrono::Duration::seconds(self.seconds)
    }

    pub fn to_std(self) -> std::time::Duration {
        std::time::Duration::from_secs(self.seconds.max(0) as u64)
    }

    pub fn parse(text: &str) -> Result<Self, DurationError> {
        let trimmed_start = text.len() - text.trim_start().len();
        let body = text.trim();
        if body.is_empty() {
            return Err(DurationError {
                offset: 0,
                message: "empty duration".into(),
            });
        }
        let bytes = body.as_bytes();
        let mut i = 0;
        let (mut days, mut clock) = (0i64, 0i64);
        while i < bytes.len() {
            let num_start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            if i == num_start {
                return Err(DurationError {
                    offset: trimmed_start + i,
                    message: format!("expected a number in duration `{body}`"),
                });
            }
            let n: i64 = body[num_start..i].parse().map_err(|_| DurationError {
                offset: trimmed_start + num_start,
                message: format!("number too large in duration `{body}`"),
            })?;
            let unit_start = i;
            while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
                i += 1;
            }
            let unit = &body[unit_start..i];
            let overflow = || DurationError {
                offset: trimmed_start + num_start,
                message: format!("duration `{body}` is too long"),
            };
            match unit {
                "s" | "sec" | "secs" => clock = clock.checked_add(n).ok_or_else(overflow)?,
                "m" | "min" | "mins" => {
                    clock = n
                        .checked_mul(60)
                        .and_then(|v| clock.checked_add(v))
                        .ok_or_else(overflow)?
                }
                "h" | "hr" | "hrs" => {
                    clock = n
                        .checked_mul(3600)
                        .and_then(|v| clock.checked_add(v))
                        .ok_or_else(overflow)?
                }
                "d" | "day" | "days" => days = days.checked_add(n).ok_or_else(overflow)?,
                "w" | "wk" | "weeks" => {
                    days = n
                        .checked_mul(7)
                        .and_then(|v| days.checked_add(v))
                        .ok_or_else(overflow)?
                }
                "" => {
                    return Err(DurationError {
                        offset: trimmed_start + i,
                        message: format!("missing unit after `{n}` in duration `{body}`"),
                    });
                }
                other => {
                    return Err(DurationError {
                        offset: trimmed_start + unit_start,
                        message: format!("unknown duration unit `{other}`"),
                    });
                }
            }
        }
        // Ten years is far beyond any sensible reminder interval and keeps arithmetic safe.
        let seconds = days
            .checked_mul(86_400)
            .and_then(|d| d.checked_add(clock))
            .filter(|s| *s <= 10 * 366 * 86_400)
            .ok_or_else(|| DurationError {
                offset: trimmed_start,
                message: format!("duration `{body}` is longer than ten years"),
            })?;
        Ok(Self {
            seconds,
            days,
            clock_seconds: clock,
        })
    }
}

impl fmt::Display for PlanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = self.seconds;
        if s == 0 {
            return write!(f, "0s");
        }
        for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
            if s >= size {
                write!(f, "{}{unit}", s / size)?;
                s %= size;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_sums() {
        assert_eq!(PlanDuration::parse("8h").unwrap().as_secs(), 8 * 3600);
        assert_eq!(PlanDuration::parse("1h30m").unwrap().as_secs(), 5400);
        let d = PlanDuration::parse("1d2h").unwrap();
        assert_eq!((d.days(), d.clock_seconds()), (1, 7200));
        assert_eq!(PlanDuration::parse("2w").unwrap().days(), 14);
        assert_eq!(PlanDuration::parse("90s").unwrap().to_string(), "1m30s");
    }

    #[test]
    fn rejects_bad_input_with_offsets() {
        let e = PlanDuration::parse("8x").unwrap_err();
        assert_eq!(
            (e.offset, e.message.as_str()),
            (1, "unknown duration unit `x`")
        );
        let e = PlanDuration::parse("h").unwrap_err();
        assert_eq!(e.offset, 0);
        let e = PlanDuration::parse("15").unwrap_err();
        assert_eq!(e.message, "missing unit after `15` in duration `15`");
        assert!(PlanDuration::parse("").is_err());
        assert!(PlanDuration::parse("99999999999999999999d").is_err());
        assert!(PlanDuration::parse("9999999999d").is_err());
    }
}
