//! `kithd snooze ITEM [DURATION]`: puts off the latest open check-in or dose of an item
//! (30 minutes unless given): it is sent again then, and its answer deadline and any alert
//! move with it, up to the item's `max_snooze` in all. Works while the daemon runs (it picks
//! the change up within 15 seconds). Must not send anything itself.

use std::io::Write;

use chrono::{DateTime, Utc};

use super::StateDir;
use crate::answer::DEFAULT_SNOOZE;
use crate::exit;
use crate::store::SnoozeResult;

pub(crate) fn run(
    state: &StateDir,
    item: &str,
    duration: Option<&str>,
    now: DateTime<Utc>,
    out: &mut dyn Write,
) -> exit::Outcome {
    let delay = match duration {
        None => DEFAULT_SNOOZE,
        Some(text) => crate::answer::parse_snooze(&format!("snooze {text}")).ok_or_else(|| {
            exit::Error::BadOption {
                option: "",
                value: text.to_string(),
                expected: "a duration from 1m to 1d, e.g. `30m` or `1h`",
            }
        })?,
    };
    let ledger = state.client()?;
    let firing = super::ack::open_or_explain(ledger.as_ref(), item, now)?;
    match ledger.snooze(&firing, delay, "cli", now)? {
        SnoozeResult::Snoozed { until, delay, left } => {
            let zone = crate::published::zone(&state.path);
            let _ = writeln!(
                out,
                "snoozed `{item}`: sent again {}; its deadline and any alert move {} min later ({} min of snoozing left)",
                crate::published::local(until, zone),
                delay.num_minutes(),
                left.num_minutes()
            );
            Ok(exit::OK)
        }
        SnoozeResult::CapReached => Err(exit::Error::SnoozeCap(item.to_string())),
    }
}
