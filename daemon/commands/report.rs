//! `kithd report [--days 30] [--format text|csv|json|html] [--output FILE]`: adherence per
//! medication (taken, skipped, no answer, missed), check-in answer rate and mood over time,
//! escalations sent and all-clears; as HTML, the charts of the person's page in one
//! self-contained document. Read-only; shows item ids and values, never message text.

use std::collections::BTreeMap;
use std::io::Write;

use chrono::{DateTime, Duration, Utc};

use super::StateDir;
use crate::exit;
use crate::store::JournalEntry;
use crate::vocab::Kind;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Text,
    Csv,
    Json,
    /// One self-contained HTML document with the charts of the person's page.
    Html,
}

#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct ItemSummary {
    pub item: String,
    pub kind: Kind,
    pub total: u32,
    pub taken: u32,
    pub skipped: u32,
    pub answered: u32,
    pub late: u32,
    pub no_answer: u32,
    /// Firings missed while kithd was not running.
    pub missed: u32,
    /// Snoozes, in all.
    pub snoozed: u32,
    /// Firings a pause held back (not counted in `total`: adherence leaves them out).
    pub paused: u32,
    /// Check-ins: mood per day (average), oldest first.
    pub mood_by_day: Vec<(String, f64)>,
}

pub(crate) fn summarise(entries: &[JournalEntry]) -> Vec<ItemSummary> {
    let mut items: BTreeMap<String, ItemSummary> = BTreeMap::new();
    let mut moods: BTreeMap<String, BTreeMap<String, Vec<f64>>> = BTreeMap::new();
    for e in entries {
        let s = items.entry(e.item.clone()).or_insert_with(|| ItemSummary {
            item: e.item.clone(),
            kind: e.kind,
            total: 0,
            taken: 0,
            skipped: 0,
            answered: 0,
            late: 0,
            no_answer: 0,
            missed: 0,
            snoozed: 0,
            paused: 0,
            mood_by_day: Vec::new(),
        });
        if e.outcome == "paused" {
            s.paused += 1;
            continue;
        }
        s.total += 1;
        s.snoozed += e.snoozes;
        if e.outcome == "missed" {
            s.missed += 1;
            continue;
        }
        match e.value.as_deref() {
            None => s.no_answer += 1,
            Some(v) => {
                s.answered += 1;
                if e.late {
                    s.late += 1;
                }
                match v {
                    "taken" => s.taken += 1,
                    "skipped" => s.skipped += 1,
                    m => {
                        if let Ok(m) = m.parse::<f64>() {
                            let day = e.scheduled.format("%Y-%m-%d").to_string();
                            moods
                                .entry(e.item.clone())
                                .or_default()
                                .entry(day)
                                .or_default()
                                .push(m);
                        }
                    }
                }
            }
        }
    }
    for (item, days) in moods {
        if let Some(s) = items.get_mut(&item) {
            s.mood_by_day = days
                .into_iter()
                .map(|(d, v)| (d, v.iter().sum::<f64>() / v.len() as f64))
                .collect();
        }
    }
    items.into_values().collect()
}

pub(crate) fn run(
    state_dir: &StateDir,
    days: u32,
    format: Format,
    now: DateTime<Utc>,
    out: &mut dyn Write,
) -> exit::Outcome {
    let ledger = state_dir.read_only()?;
    let since = now - Duration::days(i64::from(days));
    let entries = ledger.journal(since)?;
    let (escalations, all_clears) = ledger.escalation_counts(since)?;
    let summary = summarise(&entries);
    // Every message sent to a contact, and the consent it relied on.
    let filter = crate::store::HistoryFilter {
        since: Some(since),
        ..Default::default()
    };
    let to_contacts: Vec<serde_json::Value> = ledger
        .history(&filter)?
        .into_iter()
        .filter(|d| d.recipient != crate::plan::SELF_ID && d.state == crate::store::State::Sent)
        .map(|d| {
            serde_json::json!({
                "sent": d.sent_at.map(|t| t.to_rfc3339()),
                "to": d.recipient,
                "purpose": d.purpose,
                "consent": d.consent,
            })
        })
        .collect();
    let _ = match format {
        Format::Html => {
            let zone = crate::published::zone(&state_dir.path);
            let w = crate::answer::words::words(&crate::published::language(&state_dir.path));
            let label = |id: &str| id.to_string();
            let journal = crate::answer::charts::Journal {
                entries: &entries,
                alerts: escalations,
                all_clears,
                days,
                now,
                zone,
                label: &label,
            };
            let body = format!(
                "<p>{}</p>{}",
                crate::answer::page::escape(&crate::answer::words::fill(
                    w.last_days,
                    &[("n", &days.to_string())]
                )),
                crate::answer::charts::render(&journal, w)
            );
            write!(
                out,
                "{}",
                crate::answer::page::document(w.lang, w.gone, &body, true)
            )
        }
        Format::Json => writeln!(
            out,
            "{}",
            serde_json::json!({"days": days, "items": summary, "escalations_sent": escalations, "all_clears_sent": all_clears, "contact_messages": to_contacts})
        ),
        Format::Csv => {
            let _ = writeln!(
                out,
                "item,kind,total,taken,skipped,answered,late,no_answer,missed,mood_average,snoozed,paused"
            );
            for s in &summary {
                let avg = if s.mood_by_day.is_empty() {
                    String::new()
                } else {
                    format!(
                        "{:.2}",
                        s.mood_by_day.iter().map(|d| d.1).sum::<f64>() / s.mood_by_day.len() as f64
                    )
                };
                let _ = writeln!(
                    out,
                    "{},{},{},{},{},{},{},{},{},{avg},{},{}",
                    s.item,
                    s.kind,
                    s.total,
                    s.taken,
                    s.skipped,
                    s.answered,
                    s.late,
                    s.no_answer,
                    s.missed,
                    s.snoozed,
                    s.paused
                );
            }
            Ok(())
        }
        Format::Text => {
            let _ = writeln!(out, "Last {days} days");
            let _ = writeln!(out, "\nMedication adherence:");
            for s in summary.iter().filter(|s| s.kind == Kind::Medication) {
                let _ = writeln!(
                    out,
                    "  {:<20} taken {}/{}  skipped {}  no answer {}  missed {}{}{}",
                    s.item,
                    s.taken,
                    s.total,
                    s.skipped,
                    s.no_answer,
                    s.missed,
                    if s.late > 0 {
                        format!("  ({} late)", s.late)
                    } else {
                        String::new()
                    },
                    extras(s)
                );
            }
            let _ = writeln!(out, "\nCheck-ins:");
            for s in summary.iter().filter(|s| s.kind == Kind::Checkin) {
                let rate = if s.total > 0 {
                    100.0 * f64::from(s.answered) / f64::from(s.total)
                } else {
                    0.0
                };
                let _ = writeln!(
                    out,
                    "  {:<20} answered {}/{} ({rate:.0} %)  missed {}{}",
                    s.item,
                    s.answered,
                    s.total,
                    s.missed,
                    extras(s)
                );
                for (day, mood) in &s.mood_by_day {
                    let _ = writeln!(
                        out,
                        "    {day}  mood {mood:.1}  {}",
                        "#".repeat(mood.round() as usize)
                    );
                }
            }
            let _ = writeln!(
                out,
                "\nEscalations sent: {escalations}   All-clears sent: {all_clears}"
            );
            for m in &to_contacts {
                let _ = writeln!(
                    out,
                    "  {}  to {}  consent: {}",
                    m["sent"].as_str().unwrap_or("?"),
                    m["to"].as_str().unwrap_or("?"),
                    m["consent"]
                        .as_str()
                        .unwrap_or("not noted (sent before kithd noted it)")
                );
            }
            Ok(())
        }
    };
    Ok(exit::OK)
}

/// `run`, written to `file` (created or replaced, mode 0600: it is health data).
pub(crate) fn to_file(
    state_dir: &StateDir,
    days: u32,
    format: Format,
    now: DateTime<Utc>,
    file: &std::path::Path,
) -> exit::Outcome {
    use std::os::unix::fs::OpenOptionsExt;
    let mut buf = Vec::new();
    let code = run(state_dir, days, format, now, &mut buf)?;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(file)
        .and_then(|mut f| {
            // An existing file keeps its mode on open: make it the person's alone too.
            f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
            f.write_all(&buf)
        })
        .map_err(|source| exit::Error::Setup {
            what: "can't write the report",
            source,
        })?;
    Ok(code)
}

/// Snoozes and pauses, when there were any.
fn extras(s: &ItemSummary) -> String {
    let mut out = match s.snoozed {
        0 => String::new(),
        1 => "  snoozed once".into(),
        n => format!("  snoozed {n} times"),
    };
    if s.paused > 0 {
        out.push_str(&format!("  paused {} (not counted)", s.paused));
    }
    out
}
