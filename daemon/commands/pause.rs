//! `kithd pause --until WHEN [--items …] [--kinds …] [--reason TEXT]` and `kithd resume`:
//! a pause kept in the ledger, no plan edit needed. While it holds, the items it names don't
//! fire (recorded as paused, not missed) and escalation waits. The daemon reads it on its
//! next pass. Must not send anything.

use std::io::Write;

use chrono::{DateTime, Utc};

use super::StateDir;
use crate::exit;
use crate::vocab::{Kind, Pause, PlanDuration};

/// The most a pause may last.
const MAX_PAUSE_DAYS: i64 = 366;

pub(crate) struct Args<'a> {
    pub until: &'a str,
    pub items: Vec<String>,
    pub kinds: Vec<String>,
    pub reason: Option<String>,
}

pub(crate) fn pause(
    state: &StateDir,
    args: Args,
    now: DateTime<Utc>,
    out: &mut dyn Write,
) -> exit::Outcome {
    let zone = crate::published::zone(&state.path);
    let bad = |value: &str| exit::Error::BadOption {
        option: "until",
        value: value.to_string(),
        expected: "a duration (`3d`, `12h`), or a local date (`2026-12-31`, the whole day) or date-time (`2026-12-31T18:00`) in the person's time zone, at most a year ahead",
    };
    let until = if let Ok(d) = PlanDuration::parse(args.until) {
        now + d.to_chrono()
    } else if let Some(day) = crate::plan::schedule_spec::parse_date(args.until) {
        let next = day
            .succ_opt()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .ok_or_else(|| bad(args.until))?;
        crate::clock::resolve_local(zone, next)
    } else {
        super::preview::parse_from(args.until, zone).ok_or_else(|| bad(args.until))?
    };
    if until <= now || until - now > chrono::Duration::days(MAX_PAUSE_DAYS) {
        return Err(bad(args.until));
    }
    let mut kinds = Vec::new();
    for k in &args.kinds {
        kinds.push(k.parse::<Kind>().map_err(|_| exit::Error::BadOption {
            option: "kinds",
            value: k.clone(),
            expected: "checkin, medication, followup or appointment",
        })?);
    }
    let pause = Pause {
        from: now,
        until,
        items: args.items,
        kinds,
        note: args.reason,
    };
    let ledger = state.client()?;
    ledger.add_pause(&pause, now)?;
    let what = match (pause.items.is_empty(), pause.kinds.is_empty()) {
        (true, true) => "everything".to_string(),
        _ => pause
            .items
            .iter()
            .cloned()
            .chain(pause.kinds.iter().map(|k| format!("every {k}")))
            .collect::<Vec<_>>()
            .join(", "),
    };
    let _ = writeln!(
        out,
        "paused {what} until {}: nothing of it is sent and no one is alerted until then (`kithd resume` ends it early)",
        crate::published::local(until, zone)
    );
    Ok(exit::OK)
}

pub(crate) fn resume(state: &StateDir, now: DateTime<Utc>, out: &mut dyn Write) -> exit::Outcome {
    let ended = state.client()?.end_pauses(now)?;
    let _ = match ended {
        0 => writeln!(
            out,
            "nothing was paused (a plan's [[away]] windows end only by editing the plan)"
        ),
        1 => writeln!(out, "resumed: the pause is over"),
        n => writeln!(out, "resumed: {n} pauses are over"),
    };
    Ok(exit::OK)
}
