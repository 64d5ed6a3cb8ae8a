//! Firings: one occurrence of an item at an instant. Computes the next firing after an
//! instant for each schedule form; must not know about recipients or quiet hours.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use chrono::{DateTime, Datelike, Duration, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

use crate::clock::resolve_local;
use crate::plan::{Item, Plan, PlanDuration, ScheduleSpec};
use crate::vocab::Purpose;

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
pub(crate) fn appointment_firings(item: &Item) -> Vec<(DateTime<Utc>, Purpose)> {
    let ScheduleSpec::When(when) = item.schedule else {
        return Vec::new();
    };
    let mut out: Vec<(DateTime<Utc>, Purpose)> = item
        .remind_before()
        .iter()
        .map(|d| (before(item.timezone, when, *d), Purpose::Reminder(*d)))
        .collect();
    if let Some(d) = item.followup_after() {
        out.push((after(item.timezone, when, d), Purpose::FollowUp));
    }
    out.sort();
    out
}

/// The first firing of `item` strictly after `t`, if any: its instant and purpose. A firing
/// on one of the item's `except` dates (local) is skipped, with the rest of that day.
pub fn next_after(item: &Item, t: DateTime<Utc>) -> Option<(DateTime<Utc>, Purpose)> {
    let except = item.except();
    if except.is_empty() {
        return next_scheduled(item, t);
    }
    let appointment = item.kind == crate::plan::Kind::Appointment;
    let mut t = t;
    // Each pass returns, or moves past one excepted date (an appointment's: past one of
    // its reminders or its follow-up).
    let per_date = if appointment {
        item.remind_before().len() + 2
    } else {
        1
    };
    for _ in 0..=(except.len() * per_date) {
        let (at, purpose) = next_scheduled(item, t)?;
        // An appointment's reminders go with the appointment's own date.
        let on = if appointment {
            appointment_at(item, at, purpose).unwrap_or(at)
        } else {
            at
        };
        let date = on.with_timezone(&item.timezone).date_naive();
        if except.binary_search(&date).is_err() {
            return Some((at, purpose));
        }
        t = if appointment {
            at
        } else {
            let next_day = date.succ_opt()?.and_hms_opt(0, 0, 0)?;
            resolve_local(item.timezone, next_day) - Duration::seconds(1)
        };
    }
    None
}

/// `next_after` without `except`.
fn next_scheduled(item: &Item, t: DateTime<Utc>) -> Option<(DateTime<Utc>, Purpose)> {
    if item.kind == crate::plan::Kind::Appointment
        && !matches!(item.schedule, ScheduleSpec::When(_))
    {
        return next_recurring_appointment(item, t);
    }
    next_occurrence(item, t)
}

/// How far a reminder or follow-up can sit from its appointment, at most (for searching):
/// the duration plus an hour either way for a DST change.
fn reach(d: PlanDuration) -> Duration {
    Duration::days(d.days()) + Duration::seconds(d.clock_seconds()) + Duration::hours(2)
}

/// A recurring appointment's next reminder or follow-up after `t`: each occurrence of its
/// schedule is an appointment with its own reminders and follow-up.
fn next_recurring_appointment(item: &Item, t: DateTime<Utc>) -> Option<(DateTime<Utc>, Purpose)> {
    let tz = item.timezone;
    let mut best: Option<(DateTime<Utc>, Purpose)> = None;
    let mut consider = |at: DateTime<Utc>, p: Purpose| {
        if at > t && best.is_none_or(|(b, _)| at < b) {
            best = Some((at, p));
        }
    };
    // The occurrences whose reminder or follow-up can fall just after `t`: a few from the
    // earliest that could still have one ahead.
    // Where to start looking: a reminder `d` before its appointment falls just after `t`
    // for an occurrence near `t + d`; a follow-up `f` after, for one near `t - f` (an hour
    // of DST either way, and one more of margin).
    let mut starts: Vec<(Purpose, DateTime<Utc>)> = item
        .remind_before()
        .iter()
        .map(|d| (Purpose::Reminder(*d), t + reach(*d) - Duration::hours(4)))
        .collect();
    if let Some(f) = item.followup_after() {
        starts.push((Purpose::FollowUp, t - reach(f)));
    }
    for (purpose, start) in starts {
        let mut from = start;
        for _ in 0..8 {
            let Some((o, _)) = next_occurrence(item, from) else {
                break;
            };
            let local = o.with_timezone(&tz).naive_local();
            let at = match purpose {
                Purpose::Reminder(d) => before(tz, local, d),
                _ => after(tz, local, item.followup_after()?),
            };
            if at > t {
                consider(at, purpose);
                break;
            }
            from = o;
        }
    }
    best
}

/// The appointment a reminder or follow-up at `at` belongs to: for `when`, that instant;
/// for a recurring appointment, the occurrence whose reminder (or follow-up) is `at`.
pub(crate) fn appointment_at(
    item: &Item,
    at: DateTime<Utc>,
    purpose: Purpose,
) -> Option<DateTime<Utc>> {
    let tz = item.timezone;
    if let ScheduleSpec::When(when) = item.schedule {
        return Some(resolve_local(tz, when));
    }
    let (mut from, d) = match purpose {
        Purpose::Reminder(d) => (at + reach(d) - Duration::hours(4), d),
        Purpose::FollowUp => {
            let f = item.followup_after()?;
            (at - reach(f), f)
        }
        _ => return None,
    };
    for _ in 0..8 {
        let (o, _) = next_occurrence(item, from)?;
        let local = o.with_timezone(&tz).naive_local();
        let back = match purpose {
            Purpose::Reminder(_) => before(tz, local, d),
            _ => after(tz, local, d),
        };
        if back == at {
            return Some(o);
        }
        from = o;
    }
    None
}

/// The next occurrence of the item's own schedule after `t`.
fn next_occurrence(item: &Item, t: DateTime<Utc>) -> Option<(DateTime<Utc>, Purpose)> {
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
            let mut local =
                Utc.from_utc_datetime(&tz.from_utc_datetime(&t.naive_utc()).naive_local());
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
        ScheduleSpec::When(_) => appointment_firings(item)
            .into_iter()
            .find(|(at, _)| *at > t)?,
    };
    Some((at, purpose))
}

/// Firings of every item in `(from, until]`, in time order (ties by item order), at most
/// `limit` of them.
pub fn upcoming(
    plan: &Plan,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    limit: usize,
) -> Vec<Firing> {
    let items: Vec<&Item> = plan.items.iter().map(|i| i.as_ref()).collect();
    upcoming_of(&items, from, until, limit)
}

/// As `upcoming`, over `items` only; `Firing::item` indexes `items`.
pub fn upcoming_of(
    items: &[&Item],
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    limit: usize,
) -> Vec<Firing> {
    Upcoming::new(items, from)
        .take_while(|f| f.at <= until)
        .take(limit)
        .collect()
}

/// Every firing after an instant, in time order (ties by item order), computed lazily:
/// memory stays one entry per item however far it is followed.
pub struct Upcoming<'a> {
    items: &'a [&'a Item],
    heap: BinaryHeap<Reverse<Firing>>,
}

impl<'a> Upcoming<'a> {
    pub fn new(items: &'a [&'a Item], from: DateTime<Utc>) -> Self {
        let heap = items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| {
                next_after(item, from).map(|(at, purpose)| {
                    Reverse(Firing {
                        at,
                        item: i,
                        purpose,
                    })
                })
            })
            .collect();
        Self { items, heap }
    }
}

impl Iterator for Upcoming<'_> {
    type Item = Firing;

    fn next(&mut self) -> Option<Firing> {
        let Reverse(f) = self.heap.pop()?;
        if let Some((at, purpose)) = next_after(self.items[f.item], f.at) {
            self.heap.push(Reverse(Firing {
                at,
                item: f.item,
                purpose,
            }));
        }
        Some(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(zone: &str, item: &str) -> Plan {
        let text = format!(
            "[person]\nname = \"A\"\ntimezone = \"{zone}\"\nreach = [\"c\"]\n[channels.c]\nplugin = \"console\"\n{item}"
        );
        crate::plan::testing::test_plan(&text)
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn next(p: &Plan, from: &str) -> String {
        let (next, _) = next_after(&p.items[0], at(from)).unwrap();
        next.with_timezone(&p.items[0].timezone).to_rfc3339()
    }

    #[test]
    fn daily_time_keeps_local_wall_clock_across_dst() {
        let p = plan(
            "Europe/Berlin",
            "[[checkin]]\nid = \"m\"\nat = \"08:00\"\nmessage = \"x\"\n",
        );
        assert_eq!(
            next(&p, "2027-03-27T08:00:00+01:00"),
            "2027-03-28T08:00:00+02:00"
        );
        assert_eq!(
            next(&p, "2026-10-24T08:00:00+02:00"),
            "2026-10-25T08:00:00+01:00"
        );
    }

    #[test]
    fn gap_fires_at_first_valid_instant_and_fold_fires_once() {
        let p = plan(
            "Europe/Berlin",
            "[[checkin]]\nid = \"m\"\nat = \"02:30\"\nmessage = \"x\"\n",
        );
        assert_eq!(
            next(&p, "2027-03-28T00:00:00+01:00"),
            "2027-03-28T03:00:00+02:00"
        );
        assert_eq!(
            next(&p, "2026-10-25T00:00:00+02:00"),
            "2026-10-25T02:30:00+02:00"
        );
        // From inside the second pass of the fold, the next one is the following day.
        assert_eq!(
            next(&p, "2026-10-25T02:30:00+02:00"),
            "2026-10-26T02:30:00+01:00"
        );
        assert_eq!(
            next(&p, "2026-10-25T02:15:00+01:00"),
            "2026-10-26T02:30:00+01:00"
        );
    }

    #[test]
    fn cron_in_the_gap_and_the_fold() {
        let p = plan(
            "America/New_York",
            "[[checkin]]\nid = \"m\"\ncron = \"30 2 * * *\"\nmessage = \"x\"\n",
        );
        assert_eq!(
            next(&p, "2027-03-14T00:00:00-05:00"),
            "2027-03-14T03:00:00-04:00"
        );
        let p = plan(
            "America/New_York",
            "[[checkin]]\nid = \"m\"\ncron = \"30 1 * * *\"\nmessage = \"x\"\n",
        );
        assert_eq!(
            next(&p, "2026-11-01T00:00:00-04:00"),
            "2026-11-01T01:30:00-04:00"
        );
        assert_eq!(
            next(&p, "2026-11-01T01:30:00-04:00"),
            "2026-11-02T01:30:00-05:00"
        );
    }

    #[test]
    fn every_is_elapsed_time() {
        let p = plan(
            "Europe/Berlin",
            "[[checkin]]\nid = \"m\"\nevery = \"8h\"\nstart = \"2027-03-28T00:00\"\nmessage = \"x\"\n",
        );
        assert_eq!(
            next(&p, "2027-03-28T00:00:00+01:00"),
            "2027-03-28T09:00:00+02:00"
        );
        assert_eq!(
            next(&p, "2027-03-27T12:00:00+01:00"),
            "2027-03-28T00:00:00+01:00"
        );
    }

    #[test]
    fn weekday_filter_and_appointment_reminders() {
        let p = plan(
            "Europe/Berlin",
            "[[checkin]]\nid = \"m\"\nat = \"09:00\"\ndays = [\"mon\", \"thu\"]\nmessage = \"x\"\n",
        );
        assert_eq!(
            next(&p, "2026-11-25T12:00:00+01:00"),
            "2026-11-26T09:00:00+01:00"
        ); // Wed → Thu
        assert_eq!(
            next(&p, "2026-11-26T09:00:00+01:00"),
            "2026-11-30T09:00:00+01:00"
        ); // → Mon
        let p = plan(
            "Europe/Berlin",
            "[[appointment]]\nid = \"a\"\nwhen = \"2027-03-29T09:00\"\nremind_before = [\"1d\", \"2h\"]\nmessage = \"{in}\"\n",
        );
        // One calendar day before crosses the DST change: still 09:00 local.
        assert_eq!(
            next(&p, "2027-03-27T00:00:00+01:00"),
            "2027-03-28T09:00:00+02:00"
        );
        assert_eq!(
            next(&p, "2027-03-28T09:00:00+02:00"),
            "2027-03-29T07:00:00+02:00"
        );
        assert!(next_after(&p.items[0], at("2027-03-29T07:00:00+02:00")).is_none());
    }

    #[test]
    fn except_dates_are_skipped_whole() {
        let p = plan(
            "Europe/Berlin",
            "[[checkin]]\nid = \"x\"\nat = [\"09:00\", \"21:00\"]\nexcept = [\"2026-12-25\", 2026-12-26]\nmessage = \"m\"\n",
        );
        let item = &p.items[0];
        assert_eq!(item.except().len(), 2);
        let next = |t: &str| next_after(item, at(t)).unwrap().0.to_rfc3339();
        assert_eq!(
            next("2026-12-24T10:00:00+01:00"),
            "2026-12-24T20:00:00+00:00"
        );
        assert_eq!(
            next("2026-12-24T22:00:00+01:00"),
            "2026-12-27T08:00:00+00:00"
        );
        let p = plan(
            "UTC",
            "[[checkin]]\nid = \"x\"\nevery = \"1h\"\nexcept = [\"2026-12-25\"]\nmessage = \"m\"\n",
        );
        let next = |t: &str| next_after(&p.items[0], at(t)).unwrap().0.to_rfc3339();
        assert_eq!(next("2026-12-24T23:30:00Z"), "2026-12-26T00:00:00+00:00");
    }
}
