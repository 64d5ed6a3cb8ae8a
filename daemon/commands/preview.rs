//! `kithd preview PLAN`: upcoming firings in time order, in local time with offsets, with
//! recipients, channels and quiet-hour moves. `--format json` prints one object per line
//! (a contract later tests build on). Pure apart from reading the plan and the clock.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;

use crate::clock::resolve_local;
use crate::exit;
use crate::plan::{Plan, schedule_spec};
use crate::schedule::{self, Purpose};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Text,
    Json,
}

/// How far to look.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Horizon {
    Days(u32),
    Count(usize),
}

/// Parses `--from`: RFC 3339, or a local date-time (or date) in the person's zone.
pub(crate) fn parse_from(text: &str, tz: Tz) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text.trim()) {
        return Some(t.with_timezone(&Utc));
    }
    if let Some(local) = schedule_spec::parse_local_datetime(text) {
        return Some(resolve_local(tz, local));
    }
    let d = schedule_spec::parse_date(text)?;
    Some(resolve_local(tz, d.and_hms_opt(0, 0, 0)?))
}

/// One line of preview output.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub(crate) struct Line {
    /// Delivery time, RFC 3339 with the item's local offset.
    pub at: String,
    pub item: String,
    pub kind: String,
    pub purpose: &'static str,
    pub to: Vec<String>,
    pub channels: Vec<String>,
    pub urgent: bool,
    /// Set when quiet hours moved the delivery: the original firing time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deferred_from: Option<String>,
    /// Appointment reminders: how long before the appointment (`1d`, `2h`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    #[serde(skip)]
    sort_key: (DateTime<Utc>, usize),
    /// `at` and `deferred_from` as times, for the text form.
    #[serde(skip)]
    local: (DateTime<Tz>, Option<DateTime<Tz>>),
}

/// The furthest `preview` looks, whatever it is asked.
pub(crate) const MAX_DAYS: u32 = 3660;

/// Streams preview lines for `(from, …]` to `emit` in delivery order, in bounded memory:
/// a line is held back only until no later firing can produce an earlier line (quiet
/// hours move a delivery later, never earlier). Stops when `emit` returns false.
pub(crate) fn stream(
    plan: &Plan,
    from: DateTime<Utc>,
    horizon: Horizon,
    mut emit: impl FnMut(Line) -> bool,
) {
    let (days, limit) = match horizon {
        Horizon::Days(d) => (d.min(MAX_DAYS), usize::MAX),
        Horizon::Count(n) => (MAX_DAYS, n),
    };
    let until = from
        .checked_add_signed(Duration::days(i64::from(days)))
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    let items: Vec<&crate::plan::Item> = plan.items.iter().map(|i| i.as_ref()).collect();
    let mut held = BTreeMap::new();
    let mut seq = 0u64;
    let mut emitted = 0usize;
    type Held = BTreeMap<(DateTime<Utc>, usize, u64), Line>;
    let mut flush = |held: &mut Held, before: Option<DateTime<Utc>>| -> bool {
        while let Some(entry) = held.first_entry() {
            if before.is_some_and(|b| entry.key().0 >= b) {
                break;
            }
            if emitted >= limit || !emit(entry.remove()) {
                return false;
            }
            emitted += 1;
        }
        emitted < limit
    };
    for firing in schedule::Upcoming::new(&items, from) {
        if firing.at > until || !flush(&mut held, Some(firing.at)) {
            break;
        }
        let item = items[firing.item];
        let tz = item.timezone;
        let mut groups: Vec<Line> = Vec::new();
        for dt in schedule::delivery_times(plan, &firing) {
            let channel = plan
                .recipient(&dt.recipient)
                .and_then(|r| r.reach.first())
                .cloned()
                .unwrap_or_default();
            if let Some(g) = groups.iter_mut().find(|g| g.sort_key.0 == dt.at) {
                g.to.push(dt.recipient);
                if !g.channels.contains(&channel) {
                    g.channels.push(channel);
                }
                continue;
            }
            groups.push(Line {
                at: dt.at.with_timezone(&tz).to_rfc3339(),
                item: item.id.clone(),
                kind: item.kind.to_string(),
                purpose: firing.purpose.as_str(),
                to: vec![dt.recipient],
                channels: vec![channel],
                urgent: item.urgent,
                deferred_from: dt
                    .deferred
                    .then(|| firing.at.with_timezone(&tz).to_rfc3339()),
                before: match firing.purpose {
                    Purpose::Reminder(d) => Some(d.to_string()),
                    _ => None,
                },
                sort_key: (dt.at, firing.item),
                local: (
                    dt.at.with_timezone(&tz),
                    dt.deferred.then(|| firing.at.with_timezone(&tz)),
                ),
            });
        }
        for g in groups {
            seq += 1;
            held.insert((g.sort_key.0, g.sort_key.1, seq), g);
        }
    }
    flush(&mut held, None);
}

fn text_line(l: &Line) -> String {
    let when = l.local.0.format("%a %Y-%m-%d %H:%M %:z");
    let mut s = format!("{when}  {:<11} {}", l.kind, l.item);
    match (&l.before, l.purpose) {
        (Some(b), _) => s.push_str(&format!(" (reminder, {b} before)")),
        (None, "followup") => s.push_str(" (follow-up)"),
        _ => {}
    }
    s.push_str(&format!(
        "  → {} via {}",
        l.to.join(", "),
        l.channels.join(", ")
    ));
    if l.urgent {
        s.push_str("  [urgent]");
    }
    if let Some(from) = l.local.1 {
        s.push_str(&format!(
            "  [quiet hours: moved from {}]",
            from.format("%H:%M")
        ));
    }
    s
}

pub(crate) struct Args<'a> {
    pub plan: &'a Path,
    pub plugin_dir: &'a Path,
    pub from: Option<&'a str>,
    pub horizon: Horizon,
    pub format: Format,
    pub now: DateTime<Utc>,
}

pub(crate) fn run(args: Args, out: &mut dyn Write, err: &mut dyn Write) -> exit::Outcome {
    // Secrets don't change what fires when: a preview works on any machine.
    let loaded = super::load(
        args.plan,
        args.plugin_dir,
        crate::load::Secrets::Offline,
        false,
        args.now,
        err,
    )?;
    let plan = &loaded.snapshot.plan;
    let from = match args.from {
        None => args.now,
        Some(text) => match parse_from(text, plan.person.timezone) {
            Some(t) => t,
            None => {
                return Err(exit::Error::BadOption {
                    option: "from",
                    value: text.to_string(),
                    expected: "RFC 3339 (`2026-03-29T00:00:00+01:00`) or a local date-time (`2026-03-29T00:00`)",
                });
            }
        },
    };
    // A closed pipe (`| head`) is not an error: stop quietly.
    stream(plan, from, args.horizon, |l| {
        let text = match args.format {
            Format::Json => serde_json::to_string(&l).unwrap_or_default(),
            Format::Text => text_line(&l),
        };
        writeln!(out, "{text}").is_ok()
    });
    Ok(exit::OK)
}
