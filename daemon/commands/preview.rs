//! `kithd preview PLAN`: upcoming firings in time order, in local time with offsets, with
//! recipients, channels and quiet-hour moves. `--format json` prints one object per line
//! (a contract later tests build on). Pure apart from reading the plan and the clock.

use std::io::Write;
use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;

use crate::clock::resolve_local;
use crate::exit;
use crate::plan::{Plan, schedule_spec};
use crate::schedule::{self, Purpose};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

/// How far to look.
#[derive(Debug, Clone, Copy)]
pub enum Horizon {
    Days(u32),
    Count(usize),
}

/// Parses `--from`: RFC 3339, or a local date-time (or date) in the person's zone.
pub fn parse_from(text: &str, tz: Tz) -> Option<DateTime<Utc>> {
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
pub struct Line {
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

/// Computes preview lines for `(from, …]`.
pub fn lines(plan: &Plan, from: DateTime<Utc>, horizon: Horizon) -> Vec<Line> {
    let (until, limit) = match horizon {
        Horizon::Days(d) => (from + Duration::days(i64::from(d)), usize::MAX),
        Horizon::Count(n) => (DateTime::<Utc>::MAX_UTC, n),
    };
    let mut out = Vec::new();
    for firing in schedule::upcoming(plan, from, until, limit) {
        let item = &plan.items[firing.item];
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
        out.extend(groups);
    }
    out.sort_by_key(|l| l.sort_key);
    if let Horizon::Count(n) = horizon {
        out.truncate(n);
    }
    out
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

pub struct Args<'a> {
    pub plan: &'a Path,
    pub plugin_dir: &'a Path,
    pub from: Option<&'a str>,
    pub horizon: Horizon,
    pub format: Format,
    pub now: DateTime<Utc>,
}

pub fn run(args: Args, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let (_registry, loaded, _source) =
        match super::load_with_plugins(args.plan, args.plugin_dir, err) {
            Ok(x) => x,
            Err(code) => return code,
        };
    let plan = &loaded.plan;
    let from = match args.from {
        None => args.now,
        Some(text) => match parse_from(text, plan.person.timezone) {
            Some(t) => t,
            None => {
                let _ = writeln!(
                    err,
                    "error: can't read `--from {text}`: give RFC 3339 (`2026-03-29T00:00:00+01:00`) or a local date-time (`2026-03-29T00:00`)"
                );
                return exit::USAGE;
            }
        },
    };
    for l in lines(plan, from, args.horizon) {
        let text = match args.format {
            Format::Json => serde_json::to_string(&l).unwrap_or_default(),
            Format::Text => text_line(&l),
        };
        if writeln!(out, "{text}").is_err() {
            return exit::OK; // a closed pipe (`| head`) is not an error
        }
    }
    exit::OK
}
