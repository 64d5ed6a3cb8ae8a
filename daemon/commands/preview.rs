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

/// Where a look ahead starts: `--from` (see `parse_from`), or `now`.
pub(crate) fn start(
    from: Option<&str>,
    tz: Tz,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, exit::Error> {
    let Some(text) = from else {
        return Ok(now);
    };
    parse_from(text, tz).ok_or_else(|| exit::Error::BadOption {
        option: "from",
        value: text.to_string(),
        expected: "RFC 3339 (`2026-03-29T00:00:00+01:00`) or a local date-time (`2026-03-29T00:00`)",
    })
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
    /// Set when an `[[away]]` window holds the firing: it won't be sent (its note, or "").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paused: Option<String>,
    /// For a check-in or dose to the person that expects an answer: what happens if none
    /// comes (nudges, then each alert to a contact, then the all-clear after a late answer).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<Step>,
    #[serde(skip)]
    sort_key: (DateTime<Utc>, usize),
    /// `at` and `deferred_from` as times, for the text form.
    #[serde(skip)]
    local: (DateTime<Tz>, Option<DateTime<Tz>>),
}

/// One step of the no-answer timeline.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub(crate) struct Step {
    /// When (RFC 3339, the recipient's local offset); none for the all-clear, which follows
    /// a late answer.
    pub at: Option<String>,
    /// `nudge`, `escalate` or `all_clear`.
    pub action: &'static str,
    /// The recipient id, and their name.
    pub to: String,
    pub name: String,
    pub channel: String,
    /// Set when the recipient's quiet hours moved the step: when it would have been.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deferred_from: Option<String>,
    #[serde(skip)]
    local: Option<DateTime<Tz>>,
}

/// What follows `item`'s firing at `at` if no answer comes, as the daemon would do it (the
/// same records and step rules), in time order.
fn no_answer_steps(plan: &Plan, item: &crate::plan::Item, at: DateTime<Utc>) -> Vec<Step> {
    use crate::dispatch::fire::{records, step_records};
    use crate::vocab::StepAction;
    let (firing, _) = records(plan, item, at, Purpose::Main, false, at);
    let mut watches = firing.watches;
    watches.sort_by_key(|w| (w.due, w.step));
    let mut steps = Vec::new();
    let mut alerted = Vec::new();
    for w in watches {
        let purpose = match w.action {
            StepAction::Nag => Purpose::Nag(w.step),
            StepAction::Escalate => Purpose::Escalate(w.step),
        };
        let Some((_, deliveries)) = step_records(plan, item, at, purpose, &w.recipient, w.due)
        else {
            continue; // never sent (no consent, never_contact): the daemon skips it too
        };
        let Some(r) = plan.recipient(&w.recipient) else {
            continue;
        };
        for d in deliveries {
            let local = d.due.with_timezone(&r.timezone);
            steps.push(Step {
                at: Some(local.to_rfc3339()),
                action: match w.action {
                    StepAction::Nag => "nudge",
                    StepAction::Escalate => "escalate",
                },
                to: r.id.clone(),
                name: r.name.clone(),
                channel: d.channel.clone(),
                deferred_from: (d.due != w.due)
                    .then(|| w.due.with_timezone(&r.timezone).to_rfc3339()),
                local: Some(local),
            });
            if w.action == StepAction::Escalate && !alerted.contains(&r.id) {
                alerted.push(r.id.clone());
            }
        }
    }
    // In the order they would happen (quiet hours can move an alert past a later one).
    steps.sort_by_key(|s| s.local.map(|t| t.with_timezone(&Utc)));
    for id in alerted {
        if let Some(r) = plan.recipient(&id) {
            steps.push(Step {
                at: None,
                action: "all_clear",
                to: r.id.clone(),
                name: r.name.clone(),
                channel: r.reach.first().cloned().unwrap_or_default(),
                deferred_from: None,
                local: None,
            });
        }
    }
    steps
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
            let to_person = dt.recipient == crate::plan::SELF_ID;
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
                paused: crate::vocab::paused(&plan.away, &item.id, item.kind, firing.at)
                    .map(|p| p.note.clone().unwrap_or_default()),
                steps: if firing.purpose == Purpose::Main && item.answer.is_some() && to_person {
                    no_answer_steps(plan, item, firing.at)
                } else {
                    Vec::new()
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
    if let Some(note) = &l.paused {
        s.push_str(&match note.is_empty() {
            true => "  [paused: away]".to_string(),
            false => format!("  [paused: {note}]"),
        });
    }
    if let Some(from) = l.local.1 {
        s.push_str(&format!(
            "  [quiet hours: moved from {}]",
            from.format("%H:%M")
        ));
    }
    for step in &l.steps {
        s.push_str(&match step.local {
            Some(at) => format!(
                "\n    if no answer: {}  {} to {} via {}",
                crate::published::local(at.with_timezone(&Utc), at.timezone()),
                if step.action == "nudge" {
                    "nudge"
                } else {
                    "alert"
                },
                step.name,
                step.channel
            ),
            None => format!(
                "\n    after an alert, a late answer sends an all-clear to {} via {}",
                step.name, step.channel
            ),
        });
        if let Some(from) = &step.deferred_from
            && let Ok(t) = DateTime::parse_from_rfc3339(from)
        {
            s.push_str(&format!(
                "  [quiet hours: moved from {}]",
                t.format("%H:%M")
            ));
        }
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
    if args.plan.is_dir() {
        return run_dir(args, out, err);
    }
    // Secrets don't change what fires when: a preview works on any machine.
    let loaded = super::load(
        args.plan,
        args.plugin_dir,
        crate::load::Secrets::Offline,
        false,
        args.now,
        err,
    )?;
    preview_plan(&args, &loaded.snapshot.plan, None, out)?;
    Ok(exit::OK)
}

/// Every valid plan of a directory, one after another (text: under a heading naming the
/// plan; JSON: each line with its `plan`); the invalid ones are reported (exit 65).
fn run_dir(args: Args, out: &mut dyn Write, err: &mut dyn Write) -> exit::Outcome {
    let plans = crate::plan_dir::load_dir(args.plan, args.plugin_dir, true, false, args.now, err)?;
    for p in &plans {
        if let Ok(loaded) = &p.loaded {
            let plan = &loaded.snapshot.plan;
            if args.format == Format::Text
                && writeln!(
                    out,
                    "# {} ({})",
                    plan.id.as_deref().unwrap_or(""),
                    p.path.display()
                )
                .is_err()
            {
                return Ok(exit::OK);
            }
            preview_plan(&args, plan, plan.id.as_deref(), out)?;
        }
    }
    Ok(crate::plan_dir::report_invalid(&plans, err))
}

/// A JSON line of one of several plans: `plan` first, then the line's own fields.
#[derive(serde::Serialize)]
struct OfPlan<'a, T: serde::Serialize> {
    plan: &'a str,
    #[serde(flatten)]
    line: T,
}

/// Streams one plan's firings; JSON lines carry `plan` when it is one of several.
fn preview_plan(
    args: &Args,
    plan: &crate::plan::Plan,
    id: Option<&str>,
    out: &mut dyn Write,
) -> Result<(), exit::Error> {
    let from = start(args.from, plan.person.timezone, args.now)?;
    // A closed pipe (`| head`) is not an error: stop quietly.
    stream(plan, from, args.horizon, |l| {
        let text = match args.format {
            Format::Json => match id {
                Some(plan) => serde_json::to_string(&OfPlan { plan, line: &l }),
                None => serde_json::to_string(&l),
            }
            .unwrap_or_default(),
            Format::Text => text_line(&l),
        };
        writeln!(out, "{text}").is_ok()
    });
    Ok(())
}
