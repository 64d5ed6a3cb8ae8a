//! `kithd ack ITEM [--value VALUE] [--note TEXT]`: answers the latest open check-in or dose
//! of an item (mood 1–5 or `ok` for a check-in; `taken` or `skipped` for a dose). Works while
//! the daemon runs; an answer after an escalation queues an all-clear to every contact who
//! was alerted (the daemon picks it up within 15 seconds).

use std::io::Write;

use chrono::{DateTime, Utc};

use super::StateDir;
use crate::answer::{Answer, parse_answer};
use crate::exit;
use crate::store::AnswerResult;
use crate::vocab::Kind;

pub(crate) fn run(
    state_dir: &StateDir,
    item: &str,
    value: Option<&str>,
    note: Option<&str>,
    now: DateTime<Utc>,
    out: &mut dyn Write,
) -> exit::Outcome {
    let ledger = state_dir.client()?;
    let firing = open_or_explain(ledger.as_ref(), item, now)?;
    let answer = match value {
        None if firing.kind == Kind::Medication => Answer::Taken,
        None => Answer::Ok,
        Some(v) => parse_answer(v)
            .filter(|a| a.fits(firing.kind))
            .ok_or_else(|| exit::Error::WrongAnswer {
                value: v.to_string(),
                kind: firing.kind,
            })?,
    };
    match ledger.answer(&firing, &answer.as_value(), note, "cli", now)? {
        AnswerResult::Recorded {
            late,
            all_clear_to,
            heard,
        } => {
            let _ = writeln!(
                out,
                "answered `{}` (due {}): {}{}",
                firing.item,
                firing.scheduled.to_rfc3339(),
                answer.as_value(),
                if late { " (late)" } else { "" }
            );
            if !all_clear_to.is_empty() {
                let _ = writeln!(out, "all-clear queued for: {}", all_clear_to.join(", "));
            }
            if heard {
                let _ = writeln!(
                    out,
                    "as the plan asks (`alert_on`), the contacts in its `escalate` will be told"
                );
            }
            Ok(exit::OK)
        }
        AnswerResult::Already => Err(exit::Error::AlreadyAnswered(item.to_string())),
    }
}

/// The latest open check-in or dose of `item`, or why there is none: nothing waiting, or
/// an item that never fired here (with a did-you-mean).
pub(crate) fn open_or_explain(
    ledger: &dyn crate::store::Ledger,
    item: &str,
    now: DateTime<Utc>,
) -> Result<crate::store::OpenFiring, exit::Error> {
    if let Some(firing) = ledger.open_firing(Some(item), &[Kind::Checkin, Kind::Medication], now)? {
        return Ok(firing);
    }
    // Nothing waiting, or no such item at all: say which.
    let seen: Vec<String> = ledger
        .last_scheduled()?
        .into_iter()
        .map(|(i, _)| i)
        .collect();
    if seen.iter().any(|i| i == item) {
        return Err(exit::Error::NothingOpen(item.to_string()));
    }
    let hint = crate::diagnostic::did_you_mean(item, seen.iter().map(String::as_str));
    Err(exit::Error::UnknownItem {
        item: item.to_string(),
        did_you_mean: hint.map(str::to_string),
    })
}
