//! `kithd history`: what was sent, when, to whom (recipient id), through which channel,
//! with outcome and attempts; and firings missed while kithd was down. Read-only; never
//! shows message text.

use std::io::Write;

use super::StateDir;
use crate::exit;
use crate::store::HistoryFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Text,
    Json,
}

pub(crate) fn run(
    state_dir: &StateDir,
    since: Option<&str>,
    item: Option<&str>,
    format: Format,
    out: &mut dyn Write,
) -> exit::Outcome {
    // Local times are the person's, as the daemon published their zone (like `preview --from`).
    let zone = crate::published::zone(&state_dir.path);
    let since = match since.map(|s| (s, super::preview::parse_from(s, zone))) {
        Some((s, None)) => {
            return Err(exit::Error::BadOption {
                option: "since",
                value: s.to_string(),
                expected: "RFC 3339, or `YYYY-MM-DD[THH:MM]` in the person's time zone",
            });
        }
        Some((_, t)) => t,
        None => None,
    };
    let ledger = state_dir.read_only()?;
    let filter = HistoryFilter {
        since,
        item: item.map(str::to_string),
        limit: None,
    };
    let deliveries = ledger.history(&filter)?;
    let missed = ledger.missed(&filter)?;
    // Answers, to show beside the message they answered.
    let answers: std::collections::HashMap<(String, i64), crate::store::JournalEntry> = ledger
        .journal(since.unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC))?
        .into_iter()
        .filter(|e| e.value.is_some())
        .map(|e| ((e.item.clone(), e.scheduled.timestamp()), e))
        .collect();
    for d in &deliveries {
        let line = match format {
            Format::Json => serde_json::to_string(d).unwrap_or_default(),
            Format::Text => {
                let outcome = match (d.state.as_str(), &d.gateway_id, &d.last_error) {
                    ("sent", Some(g), _) => format!("sent (gateway id {g})"),
                    (s, _, Some(e)) if s != "sent" => format!("{s}: {e}"),
                    (s, _, _) => s.to_string(),
                };
                let late = match (d.late, d.uncertain) {
                    (true, true) => {
                        " [late] [uncertain: sent again after an attempt that ended without an outcome; it may have arrived twice]"
                    }
                    (false, true) => {
                        " [uncertain: sent again after an attempt that ended without an outcome; it may have arrived twice]"
                    }
                    (true, false) => " [late]",
                    (false, false) => "",
                };
                let answer = match answers.get(&(d.item.clone(), d.scheduled.timestamp())) {
                    Some(a)
                        if d.purpose == crate::vocab::MAIN_KEY
                            && d.recipient == crate::plan::SELF_ID =>
                    {
                        let note = a
                            .note
                            .as_deref()
                            .map(|n| format!(", note: {n:?}"))
                            .unwrap_or_default();
                        format!(
                            "; answered {}{}{note}",
                            a.value.as_deref().unwrap_or(""),
                            if a.late { " (late)" } else { "" }
                        )
                    }
                    _ => String::new(),
                };
                let consent = d
                    .consent
                    .as_deref()
                    .map(|c| format!(" (consent: {c})"))
                    .unwrap_or_default();
                format!(
                    "{}  {:<11} {:<16} {} → {}{consent} via {}  {outcome}, {} attempt{}{late}{answer}",
                    crate::published::local(d.scheduled, zone),
                    d.kind,
                    d.item,
                    what(&d.purpose, d.kind),
                    d.recipient,
                    d.channel,
                    d.attempts,
                    if d.attempts == 1 { "" } else { "s" }
                )
            }
        };
        if writeln!(out, "{line}").is_err() {
            return Ok(exit::OK);
        }
    }
    for m in &missed {
        let line = match format {
            Format::Json => serde_json::json!({"scheduled": m.scheduled, "item": m.item, "kind": m.kind, "purpose": m.purpose, "state": m.outcome}).to_string(),
            Format::Text => format!(
                "{}  {:<11} {:<16} {}",
                crate::published::local(m.scheduled, zone),
                m.kind,
                m.item,
                if m.outcome == "paused" { "paused (not sent)" } else { "missed (kithd was not running)" }
            ),
        };
        if writeln!(out, "{line}").is_err() {
            return Ok(exit::OK);
        }
    }
    Ok(exit::OK)
}

/// What a delivery was, in words, from its purpose's ledger key.
fn what(purpose: &str, kind: crate::vocab::Kind) -> &'static str {
    use crate::vocab::{Kind, Purpose};
    match Purpose::from_ledger_key(purpose, &[]) {
        Some(Purpose::Main) => match kind {
            Kind::Checkin => "(check-in)",
            Kind::Medication => "(dose reminder)",
            Kind::Followup => "(follow-up)",
            Kind::Appointment => "(appointment)",
        },
        Some(Purpose::Reminder(_)) => "(reminder before)",
        Some(Purpose::FollowUp) => "(how did it go?)",
        Some(Purpose::Nag(_)) => "(nudge)",
        Some(Purpose::Escalate(_)) => "(alert to a contact)",
        Some(Purpose::Heard(_)) => "(alert to a contact, as the person asked)",
        Some(Purpose::AllClear) => "(all-clear to a contact)",
        Some(Purpose::Snooze(_)) => "(again, after a snooze)",
        None => "",
    }
}
