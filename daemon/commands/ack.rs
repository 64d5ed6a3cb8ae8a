//! `kithd ack ITEM [--value VALUE] [--note TEXT]`: answers the latest open check-in or dose
//! of an item (mood 1–5 or `ok` for a check-in; `taken` or `skipped` for a dose). Works while
//! the daemon runs; an answer after an escalation queues an all-clear to every contact who
//! was alerted (the daemon picks it up within 15 seconds).

use std::io::Write;
use std::path::Path;

use chrono::{DateTime, Utc};

use crate::answer::{Answer, parse_answer};
use crate::exit;
use crate::store::{AnswerResult, SqliteLedger, Steps};
use crate::vocab::{Kind, all_clear_id};

pub(crate) fn run(
    state_dir: &Path,
    item: &str,
    value: Option<&str>,
    note: Option<&str>,
    now: DateTime<Utc>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    let ledger = match SqliteLedger::open_client(state_dir) {
        Ok(l) => l,
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            return exit::NOINPUT;
        }
    };
    let firing = match ledger.open_firing(Some(item), &[Kind::Checkin, Kind::Medication], now) {
        Ok(Some(f)) => f,
        Ok(None) => {
            let _ = writeln!(err, "error: nothing of `{item}` is waiting for an answer");
            return exit::DATAERR;
        }
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            return exit::IOERR;
        }
    };
    let answer = match value {
        None if firing.kind == Kind::Medication => Answer::Taken,
        None => Answer::Ok,
        Some(v) => match parse_answer(v).filter(|a| a.fits(firing.kind)) {
            Some(a) => a,
            None => {
                let expected = if firing.kind == Kind::Medication {
                    "`taken` or `skipped`"
                } else {
                    "`ok` or a mood from 1 to 5"
                };
                let _ = writeln!(
                    err,
                    "error: `{v}` doesn't answer a {}: give {expected}",
                    firing.kind
                );
                return exit::USAGE;
            }
        },
    };
    let all_clear = |recipient: &str, channel: &str| {
        all_clear_id(&firing.item, firing.scheduled, recipient, channel)
    };
    match ledger.answer(&firing, &answer.as_value(), note, "cli", now, &all_clear) {
        Ok(AnswerResult::Recorded { late, all_clear_to }) => {
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
            exit::OK
        }
        Ok(AnswerResult::Already) => {
            let _ = writeln!(err, "error: `{item}` was answered already");
            exit::DATAERR
        }
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            exit::IOERR
        }
    }
}
