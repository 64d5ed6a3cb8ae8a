//! Firings: one occurrence of an item at an instant. Computes the next firing after an
//! instant for each schedule form; must not know about recipients or quiet hours.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use chrono::{DateTime, Datelike, Duration, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

use crate::clock::resolve_local;
use crate::plan::{Item, Plan, PlanDuration, ScheduleSpec};

/// Why an item fires at this instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Purpose {
    /// The item's own schedule.
    Main,
    /// An appointment's advance reminder, this long before it.
    Reminder(PlanDuration),
    /// An appointment's "how did it go?" nudge.
    FollowUp,
}

impl Purpose {
    pub fn as_str(&self) -> &'static str {
        match self {
            Purpose::Main => "main",
            Purpose::Reminder(_) => "reminder",
            Purpose::FollowUp => "followup",
        }
    }
}

/// One occurrence of an item.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Firing {
    pub at: DateTime<Utc>,
    /// Index of the item in `Plan::items`.
    pub item: usize,
    pub purpose: Purpose,
}

/// Subtracts a plan duration from a local appointment time: whole days are calendar days
/// (same wall-clock time), hours/minutes/seconds are elapsed time.
fn before(tz: Tz, when: NaiveDateTime, d: PlanDuration) -> DateTime<Utc> {
    let day_shifted = when - Duration::days(d.days());
    resolve_local(tz, day_shifted) - Duration::seconds(d.clock_seconds())
}

fn after(tz: Tz, when: NaiveDateTime, d: PlanDuration) -> DateTime<Utc> {
    let day_shifted = when + Duration::days(d.days());
    resolve_local(tz, day_shifted) + Duration::seconds(d.clock_seconds())
}

/// All firings of an appointment, in time order.
pub fn appointment_firings(item: &Item) -> Vec<(DateTime<Utc>, Purpose)> {
    let ScheduleSpec::When(when) = item.schedule else {
        return Vec::new();
    };
    let mut out: Vec<(DateTime<Utc>, Purpose)> = item
        .remind_before
        .iter()
        .map(|d| (before(item.timezone, when, *d), Purpose::Reminder(*d)))
        .collect();
    if let Some(d) = item.followup_after {
        out.push((after(item.timezone, when, d), Purpose::FollowUp));
    }
    out.sort();
    out
}

/// The first firing of `item` strictly after `t`, if any.
pub fn next_after(item: &Item, index: usize, t: DateTime<Utc>) -> Option<Firing> {
    let tz = item.timezone;
    let (at, purpose) = match &item.schedule {
        ScheduleSpec::At { times, days } => {
            let local_date = tz.from_utc_datetime(&t.naive_utc()).date_naive();
            let mut found = None;
            // Start a day early: a fold or gap can move an instant across midnight.
            'days: for offset in -1..=8 {
                let date = local_date + Duration::days(offset);
                if !days.contains(date.weekday()) {
                    continue;
                }
                for time in times {
                    let at = resolve_local(tz, date.and_time(*time));
                    if at > t {
                        found = Some(at);
                        break 'days;
                    }
                }
            }
            (found?, Purpose::Main)
        }
        ScheduleSpec::Cron { cron, .. } => {
            // Cron matches local wall-clock time; evaluate it on the naive local clock
            // (represented as UTC, which has no transitions) and resolve each match.
            // Resolution is monotonic in local time and maps `t`'s own local time to `t` or
            // earlier, so no match at or before that local time can resolve after `t`.
            let mut local = Utc.from_utc_datetime(&tz.from_utc_datetime(&t.naive_utc()).naive_local());
            let mut found = None;
            for _ in 0..10_000 {
                let next = cron.find_next_occurrence(&local, false).ok()?;
                let at = resolve_local(tz, next.naive_utc());
                if at > t {
                    found = Some(at);
                    break;
                }
                local = next;
            }
            (found?, Purpose::Main)
        }
        ScheduleSpec::Every { period, start } => {
            let anchor = resolve_local(tz, *start);
            let p = period.as_secs();
            let at = if t < anchor {
                anchor
            } else {
                let k = (t - anchor).num_seconds() / p + 1;
                anchor + Duration::seconds(k * p)
            };
            (at, Purpose::Main)
        }
        ScheduleSpec::When(_) => appointment_firings(item).into_iter().find(|(at, _)| *at > t)?,
    };
    Some(Firing {
        at,
        item: index,
        purpose,
    })
}

/// Firings of every item in `(from, until]`, in time order (ties by item order), at most
/// `limit` of them.
pub fn upcoming(plan: &Plan, from: DateTime<Utc>, until: DateTime<Utc>, limit: usize) -> Vec<Firing> {
    let mut heap = BinaryHeap::new();
    for (i, item) in plan.items.iter().enumerate() {
        if let Some(f) = next_after(item, i, from) {
            heap.push(Reverse(f));
        }
    }
    let mut out = Vec::new();
    while let Some(Reverse(f)) = heap.pop() {
        if f.at > until || out.len() >= limit {
            break;
        }
        if let Some(next) = next_after(&plan.items[f.item], f.item, f.at) {
            heap.push(Reverse(next));
        }
        out.push(f);
    }
    out
}
