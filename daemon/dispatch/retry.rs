//! Retry policy: exponential backoff with jitter, honouring Retry-After, bounded per
//! channel by attempts and by a deadline after which a reminder is no longer useful.
//! Pure: it must not sleep or touch the ledger.

use std::time::Duration;

use crate::plan::ChannelLimits;
use chrono::{DateTime, Utc};

/// Per-channel limits, from the channel's `max_attempts`, `give_up_after` and `retry_base`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RetryPolicy {
    pub max_attempts: u32,
    pub give_up_after: Duration,
    pub base: Duration,
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            give_up_after: Duration::from_secs(6 * 3600),
            base: Duration::from_secs(30),
            cap: Duration::from_secs(3600),
        }
    }
}

impl RetryPolicy {
    /// The defaults, with the channel's own `max_attempts`, `give_up_after` and
    /// `retry_base` (typed and bounded at load).
    pub(crate) fn for_limits(limits: &ChannelLimits) -> Self {
        let mut p = Self::default();
        if let Some(n) = limits.max_attempts {
            p.max_attempts = n;
        }
        if let Some(d) = limits.give_up_after {
            p.give_up_after = d.to_std();
        }
        if let Some(d) = limits.retry_base {
            p.base = d.to_std().max(Duration::from_secs(1));
        }
        p
    }

    /// When to try again after `attempts` failed attempts, or `None` to give up on this
    /// channel. `jitter` is a number in [0, 1).
    pub(crate) fn next_attempt(
        &self,
        attempts: u32,
        now: DateTime<Utc>,
        scheduled: DateTime<Utc>,
        retry_after: Option<Duration>,
        jitter: f64,
    ) -> Option<DateTime<Utc>> {
        if attempts >= self.max_attempts {
            return None;
        }
        let exp = self
            .base
            .saturating_mul(1u32 << attempts.saturating_sub(1).min(16))
            .min(self.cap);
        // ±20 % jitter spreads retries from many deliveries that failed together.
        let factor = 0.8 + 0.4 * jitter.clamp(0.0, 1.0);
        let mut wait = exp.mul_f64(factor);
        if let Some(ra) = retry_after {
            if self.waits_too_long(ra) {
                return None;
            }
            wait = wait.max(ra);
        }
        let at = now.checked_add_signed(chrono::Duration::from_std(wait).ok()?)?;
        let deadline =
            scheduled.checked_add_signed(chrono::Duration::from_std(self.give_up_after).ok()?)?;
        (at <= deadline).then_some(at)
    }

    /// Whether a gateway's Retry-After is longer than this channel may take to deliver:
    /// then the channel can't deliver in time and the next one should be tried at once.
    pub(crate) fn waits_too_long(&self, retry_after: Duration) -> bool {
        retry_after > self.give_up_after
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backs_off_exponentially_within_limits() {
        let p = RetryPolicy::default();
        let t: DateTime<Utc> = "2026-12-01T08:00:00Z".parse().unwrap();
        let wait = |n, ra| (p.next_attempt(n, t, t, ra, 0.5).unwrap() - t).num_seconds();
        assert_eq!(wait(1, None), 30);
        assert_eq!(wait(2, None), 60);
        assert_eq!(wait(3, None), 120);
        assert_eq!(wait(1, Some(Duration::from_secs(300))), 300);
        assert_eq!(p.next_attempt(8, t, t, None, 0.5), None);
        // Past the deadline: give up on this channel.
        let late = t + chrono::Duration::hours(6);
        assert_eq!(p.next_attempt(1, late, t, None, 0.5), None);
        let lo = (p.next_attempt(1, t, t, None, 0.0).unwrap() - t).num_seconds();
        let hi = (p.next_attempt(1, t, t, None, 0.999).unwrap() - t).num_seconds();
        assert!(lo == 24 && hi == 35, "{lo} {hi}");
        // Any Retry-After, however absurd, gives a time or a clean "give up here".
        for secs in [10_000_000_000_000u64, u64::MAX, 6 * 3600 + 1] {
            assert_eq!(
                p.next_attempt(1, t, t, Some(Duration::from_secs(secs)), 0.5),
                None
            );
        }
        let far: DateTime<Utc> = DateTime::<Utc>::MAX_UTC;
        assert_eq!(p.next_attempt(1, far, far, None, 0.5), None);
    }
}
