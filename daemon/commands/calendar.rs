//! `kithd calendar PLAN [--days N] [--details]`: the plan as iCalendar (RFC 5545), so the
//! person's calendar shows what kithd will do. One VEVENT per item (per time of day), with
//! an RRULE where the schedule is one (`at` + `days`: weekly by day, in the item's zone;
//! `every`: by elapsed minutes from a UTC start) and the occurrences themselves (RDATE)
//! where it isn't (`cron`). Where kithd and RFC 5545 read a local time differently (a time
//! inside a DST gap: RFC 5545 takes the offset before the gap, 02:30 → 03:30; kithd fires at
//! the first valid instant, 03:00) the day gets an EXDATE and kithd's instant as an RDATE,
//! so the calendar's occurrences are kithd's firings. `except` dates are EXDATEs;
//! appointment reminders are VALARMs. UIDs are stable and opaque; titles are generic unless
//! `--details`. Must not read the ledger or send anything.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;

use chrono::{
    DateTime, Datelike, Duration, NaiveDateTime, Offset, TimeZone, Timelike, Utc, Weekday,
};
use chrono_tz::{OffsetComponents, OffsetName, Tz};
use sha2::{Digest, Sha256};

use crate::clock::resolve_local;
use crate::exit;
use crate::plan::{Item, Kind, Plan, PlanDuration, ScheduleSpec};

pub(crate) struct Args<'a> {
    pub plan: &'a Path,
    pub plugin_dir: &'a Path,
    /// Start: RFC 3339 or a local date-time in the person's zone (default: now).
    pub from: Option<&'a str>,
    pub days: u32,
    pub details: bool,
    pub now: DateTime<Utc>,
}

pub(crate) fn run(args: Args, out: &mut dyn Write, err: &mut dyn Write) -> exit::Outcome {
    let loaded = super::load(
        args.plan,
        args.plugin_dir,
        crate::load::Secrets::Offline,
        false,
        args.now,
        err,
    )?;
    let plan = &loaded.snapshot.plan;
    let from = super::preview::start(args.from, plan.person.timezone, args.now)?;
    let until = from + Duration::days(i64::from(args.days));
    let text = render(plan, from, until, args.details);
    let _ = out.write_all(text.as_bytes());
    Ok(exit::OK)
}

/// The calendar for `(from, until]`.
pub(crate) fn render(
    plan: &Plan,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    details: bool,
) -> String {
    let mut events = String::new();
    // By name: `Tz` has no order of its own.
    let mut zones = BTreeSet::new();
    for item in &plan.items {
        for (n, event) in item_events(item, from, until, details)
            .into_iter()
            .enumerate()
        {
            let uid = uid(&item.id, n);
            events.push_str(&format!(
                "BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:{}\r\n",
                utc(from)
            ));
            events.push_str(&event.body);
            events.push_str("END:VEVENT\r\n");
            if event.zoned {
                zones.insert(item.timezone.name());
            }
        }
    }
    let mut out = String::from(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//kithd//calendar//EN\r\nCALSCALE:GREGORIAN\r\n",
    );
    for name in zones {
        if let Ok(tz) = name.parse::<Tz>() {
            out.push_str(&vtimezone(
                tz,
                from - Duration::days(366),
                until + Duration::days(366),
            ));
        }
    }
    out.push_str(&events);
    out.push_str("END:VCALENDAR\r\n");
    out
}

struct Event {
    body: String,
    /// Uses the item's zone (TZID), so the calendar needs its VTIMEZONE.
    zoned: bool,
}

/// A stable id that names nothing of the plan (item ids can name medication).
fn uid(item: &str, n: usize) -> String {
    let mut h = Sha256::new();
    h.update(format!("kithd calendar\0{item}\0{n}").as_bytes());
    format!("{}@kithd", &hex::encode(h.finalize())[..32])
}

fn utc(t: DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

fn local(t: NaiveDateTime) -> String {
    t.format("%Y%m%dT%H%M%S").to_string()
}

fn title(item: &Item, details: bool) -> String {
    let generic = match item.kind {
        Kind::Checkin => "Check-in",
        Kind::Medication => "Medication",
        Kind::Followup => "Follow-up",
        Kind::Appointment => "Appointment",
    };
    if !details {
        return generic.into();
    }
    let named = ["title", "name"].iter().find_map(|k| item.fields.get(*k));
    match named {
        Some(n) => format!("{generic}: {n}"),
        None => format!("{generic}: {}", item.id),
    }
}

/// Text escaped for an iCalendar TEXT value.
fn text(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace(';', "\\;")
        .replace(',', "\\,")
        .replace('\n', "\\n")
}

/// An RFC 5545 duration for a reminder before (negative) an appointment.
fn trigger(d: PlanDuration) -> String {
    let (days, secs) = (d.days(), d.clock_seconds());
    let mut s = String::from("-P");
    if days > 0 {
        let _ = write!(s, "{days}D");
    }
    if secs > 0 || days == 0 {
        let _ = write!(s, "T{}S", secs);
    }
    s
}

fn byday(days: &crate::plan::DaySet) -> Option<String> {
    let all = [
        (Weekday::Mon, "MO"),
        (Weekday::Tue, "TU"),
        (Weekday::Wed, "WE"),
        (Weekday::Thu, "TH"),
        (Weekday::Fri, "FR"),
        (Weekday::Sat, "SA"),
        (Weekday::Sun, "SU"),
    ];
    let on: Vec<&str> = all
        .iter()
        .filter(|(d, _)| days.contains(*d))
        .map(|(_, n)| *n)
        .collect();
    (on.len() < 7).then(|| on.join(","))
}

/// The events of one item.
fn item_events(
    item: &Item,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    details: bool,
) -> Vec<Event> {
    let tz = item.timezone;
    let mut head = format!("SUMMARY:{}\r\n", text(&title(item, details)));
    if details {
        let _ = write!(head, "DESCRIPTION:{}\r\n", text(&item.message.source));
    }
    let alarms: String = item
        .remind_before()
        .iter()
        .map(|d| {
            format!(
                "BEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:{}\r\nTRIGGER:{}\r\nEND:VALARM\r\n",
                text(&title(item, details)),
                trigger(*d)
            )
        })
        .collect();
    let except = |t: DateTime<Utc>| {
        item.except()
            .binary_search(&t.with_timezone(&tz).date_naive())
            .is_ok()
    };
    match &item.schedule {
        ScheduleSpec::When(when) => {
            let at = resolve_local(tz, *when);
            if at <= from || at > until {
                return Vec::new();
            }
            vec![Event {
                body: format!(
                    "{head}DTSTART;TZID={}:{}\r\n{alarms}",
                    tz.name(),
                    local(at.with_timezone(&tz).naive_local())
                ),
                zoned: true,
            }]
        }
        ScheduleSpec::At { times, days } => times
            .iter()
            .filter_map(|time| {
                // Occurrences by the rule's reading and by kithd's, day by day.
                let first_day = from.with_timezone(&tz).date_naive();
                let last_day = until.with_timezone(&tz).date_naive();
                let mut first = None;
                let mut fixes = String::new();
                let mut day = first_day;
                while day <= last_day {
                    if days.contains(day.weekday()) {
                        let wall = day.and_time(*time);
                        let kithd = resolve_local(tz, wall);
                        if kithd > from && kithd <= until {
                            first.get_or_insert(wall);
                            let rfc = rfc5545_reading(tz, wall);
                            if except(kithd) {
                                let _ =
                                    write!(fixes, "EXDATE;TZID={}:{}\r\n", tz.name(), local(wall));
                            } else if rfc != kithd {
                                let _ = write!(
                                    fixes,
                                    "EXDATE;TZID={}:{}\r\nRDATE:{}\r\n",
                                    tz.name(),
                                    local(wall),
                                    utc(kithd)
                                );
                            }
                        }
                    }
                    day = day.succ_opt()?;
                }
                let first = first?;
                let rule = match byday(days) {
                    Some(d) => format!("FREQ=WEEKLY;BYDAY={d}"),
                    None => "FREQ=DAILY".into(),
                };
                Some(Event {
                    body: format!(
                        "{head}DTSTART;TZID={}:{}\r\nRRULE:{rule};UNTIL={}\r\n{fixes}{alarms}",
                        tz.name(),
                        local(first),
                        utc(until)
                    ),
                    zoned: true,
                })
            })
            .collect(),
        ScheduleSpec::Every { .. } | ScheduleSpec::Cron { .. } => {
            // The occurrences kithd computes, main firings only.
            let mut at = Vec::new();
            let mut t = from;
            while let Some((next, _)) = crate::schedule::next_after(item, t) {
                if next > until || at.len() >= 10_000 {
                    break;
                }
                at.push(next);
                t = next;
            }
            let Some((first, rest)) = at.split_first() else {
                return Vec::new();
            };
            let mut body = format!("{head}DTSTART:{}\r\n", utc(*first));
            match &item.schedule {
                ScheduleSpec::Every { period, .. }
                    if period.as_secs() % 60 == 0 && item.except().is_empty() =>
                {
                    // Elapsed time: minutes from a UTC start, exactly as kithd counts.
                    let _ = write!(
                        body,
                        "RRULE:FREQ=MINUTELY;INTERVAL={};UNTIL={}\r\n",
                        period.as_secs() / 60,
                        utc(until)
                    );
                }
                _ => {
                    for chunk in rest.chunks(20) {
                        let list: Vec<String> = chunk.iter().map(|t| utc(*t)).collect();
                        let _ = write!(body, "RDATE:{}\r\n", list.join(","));
                    }
                }
            }
            body.push_str(&alarms);
            vec![Event { body, zoned: false }]
        }
    }
}

/// How RFC 5545 reads a local time: a time in a gap takes the offset before the gap; a
/// time in a fold, its first occurrence.
fn rfc5545_reading(tz: Tz, wall: NaiveDateTime) -> DateTime<Utc> {
    match tz.from_local_datetime(&wall) {
        chrono::LocalResult::Single(t) => t.with_timezone(&Utc),
        chrono::LocalResult::Ambiguous(a, b) => a.min(b).with_timezone(&Utc),
        chrono::LocalResult::None => {
            let before = tz
                .offset_from_utc_datetime(&(wall - Duration::hours(3)))
                .fix();
            Utc.from_utc_datetime(&(wall - Duration::seconds(i64::from(before.local_minus_utc()))))
        }
    }
}

/// A VTIMEZONE with every transition of `tz` in `(from, until)`.
fn vtimezone(tz: Tz, from: DateTime<Utc>, until: DateTime<Utc>) -> String {
    let offset = |t: DateTime<Utc>| tz.offset_from_utc_datetime(&t.naive_utc());
    let hhmm = |secs: i32| {
        let sign = if secs < 0 { '-' } else { '+' };
        let s = secs.abs();
        format!("{sign}{:02}{:02}", s / 3600, (s % 3600) / 60)
    };
    let block = |at_local: NaiveDateTime, from_off: i32, o: chrono_tz::TzOffset| {
        let kind = if o.dst_offset().num_seconds() != 0 {
            "DAYLIGHT"
        } else {
            "STANDARD"
        };
        format!(
            "BEGIN:{kind}\r\nDTSTART:{}\r\nTZOFFSETFROM:{}\r\nTZOFFSETTO:{}\r\nTZNAME:{}\r\nEND:{kind}\r\n",
            local(at_local),
            hhmm(from_off),
            hhmm(o.fix().local_minus_utc()),
            o.abbreviation().unwrap_or(tz.name())
        )
    };
    // Whole hours, so that transitions (on minute boundaries) are found exactly.
    let from = from
        .with_nanosecond(0)
        .and_then(|t| t.with_second(0))
        .and_then(|t| t.with_minute(0))
        .unwrap_or(from);
    let mut out = format!("BEGIN:VTIMEZONE\r\nTZID:{}\r\n", tz.name());
    let start = offset(from);
    let start_secs = start.fix().local_minus_utc();
    out.push_str(&block(
        (from + Duration::seconds(i64::from(start_secs))).naive_utc(),
        start_secs,
        start,
    ));
    let mut t = from;
    let mut last = start_secs;
    while t < until {
        let next = t + Duration::hours(1);
        let off = offset(next).fix().local_minus_utc();
        if off != last {
            // Narrow the change down to the minute.
            let (mut lo, mut hi) = (t, next);
            while hi - lo > Duration::minutes(1) {
                let mid = lo + (hi - lo) / 2;
                if offset(mid).fix().local_minus_utc() == last {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            let at_local = (hi + Duration::seconds(i64::from(last))).naive_utc();
            out.push_str(&block(at_local, last, offset(hi)));
            last = off;
        }
        t = next;
    }
    out.push_str("END:VTIMEZONE\r\n");
    out
}
