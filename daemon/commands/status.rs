//! `kithd status [--state-dir DIR]`: next firings (as the daemon last published them),
//! deliveries pending or retrying with their next attempt, dead letters, and the last error
//! per channel. Reads the ledger read-only, so it works while the daemon runs. Never shows
//! message text.

use std::io::Write;

use chrono::{DateTime, Utc};

use super::StateDir;
use crate::exit;
use crate::published::{NEXT_FILE, NextFiring};
use crate::store::{SqliteLedger, State};

/// `kithd status --check`, for monitoring systems (the Nagios/Icinga plugin convention):
/// one line, exit 0 healthy, 1 degraded, 2 no running daemon or an unreadable ledger.
pub(crate) fn check(state: &StateDir, now: DateTime<Utc>, out: &mut dyn Write) -> exit::Outcome {
    let state_dir = state.path.as_path();
    if let Some(plans) = directory(state) {
        return Ok(match plans.problems.is_empty() {
            true => {
                let _ = writeln!(
                    out,
                    "KITHD OK - {} plans running (`--plan ID` for each)",
                    plans.running.len()
                );
                0
            }
            false => {
                let _ = writeln!(
                    out,
                    "KITHD WARNING - {} plans running, not running (problems): {}",
                    plans.running.len(),
                    plans
                        .problems
                        .iter()
                        .map(|(f, _)| f.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                1
            }
        });
    }
    if !state.shared() && !SqliteLedger::daemon_running(state_dir) {
        let _ = writeln!(
            out,
            "KITHD CRITICAL - no kithd is running on {}",
            state_dir.display()
        );
        return Ok(2);
    }
    let health = state.read_only().map_err(|e| e.to_string()).and_then(|l| {
        crate::health::assess(l.as_ref(), now, None, &crate::health::read_own(state_dir))
            .map_err(|e| e.to_string())
    });
    // The monitoring convention's codes are the answer, not a failure of the command.
    Ok(match health {
        Err(e) => {
            let _ = writeln!(out, "KITHD CRITICAL - the ledger can't be read: {e}");
            2
        }
        Ok(h) if h.is_degraded() => {
            let _ = writeln!(out, "KITHD WARNING - {}", h.summary());
            1
        }
        Ok(_) => {
            let _ = writeln!(out, "KITHD OK - healthy");
            0
        }
    })
}

/// What a directory's daemon published, when `state` is its state directory and no
/// `--plan` was given.
fn directory(state: &StateDir) -> Option<crate::published::Plans> {
    match state.plan {
        Some(_) => None,
        None => crate::published::plans(&state.path),
    }
}

/// `status` of a directory's daemon without `--plan`: which plans run, which can't.
fn overview(plans: &crate::published::Plans, out: &mut dyn Write) -> exit::Outcome {
    let _ = writeln!(out, "Plans running ({}):", plans.running.len());
    for id in &plans.running {
        let _ = writeln!(out, "  {id}");
    }
    if !plans.problems.is_empty() {
        let _ = writeln!(
            out,
            "\nNot running, with problems ({}; `kithd check` on the directory shows them):",
            plans.problems.len()
        );
        for (file, n) in &plans.problems {
            let _ = writeln!(
                out,
                "  {file}: {n} problem{}",
                if *n == 1 { "" } else { "s" }
            );
        }
    }
    let _ = writeln!(
        out,
        "\nFor one plan's reminders and health: kithd status --plan ID"
    );
    Ok(exit::OK)
}

pub(crate) fn run(state: &StateDir, now: DateTime<Utc>, out: &mut dyn Write) -> exit::Outcome {
    let state_dir = state.path.as_path();
    if let Some(plans) = directory(state) {
        return overview(&plans, out);
    }
    // Before the ledger is open: the check opens and closes the ledger file.
    let running = state.shared() || SqliteLedger::daemon_running(state_dir);
    let ledger = state.read_only()?;
    let zone = crate::published::zone(state_dir);
    {
        let health = crate::health::assess(
            ledger.as_ref(),
            now,
            None,
            &crate::health::read_own(state_dir),
        )?;
        let _ = writeln!(
            out,
            "Health: {}{}\n",
            health.summary(),
            if running {
                ""
            } else {
                " (no kithd is running on this state directory)"
            }
        );
        for c in ledger.consents()? {
            let since = crate::published::local(c.at, zone);
            let line = match c.state.as_str() {
                "withdrawn" => format!(
                    "Asked to stop: {} (since {since}): kithd sends them nothing more.",
                    c.contact
                ),
                "invited" => format!(
                    "Invited, no answer yet: {} (since {since}): no alert goes to them until they say yes.",
                    c.contact
                ),
                "given" => format!("Said yes: {} ({since}, by {}).", c.contact, c.how),
                _ => continue,
            };
            let _ = writeln!(out, "{line}\n");
        }
        if let Some(shared) = ledger.shared_state()? {
            let leader = match &shared.leader {
                Some((term, _)) => format!(
                    "maintenance led by {} since {}",
                    term.owner,
                    crate::published::local(term.elected_at, zone)
                ),
                None => {
                    "no instance leads maintenance now (none is running, or one is starting)".into()
                }
            };
            let sending = if shared.sending.is_empty() {
                "no instance is sending now".to_string()
            } else {
                shared
                    .sending
                    .iter()
                    .map(|(who, n)| format!("{who} sending {n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let _ = writeln!(out, "Shared ledger: {leader}; {sending}\n");
        }
        if let Some((_, set)) = ledger.passphrase()? {
            let _ = writeln!(
                out,
                "Your page (/me): open with the passphrase set {}\n",
                crate::published::local(set, zone)
            );
        }
        for p in ledger.pauses(now)? {
            let what = if p.items.is_empty() && p.kinds.is_empty() {
                "everything".to_string()
            } else {
                p.items
                    .iter()
                    .cloned()
                    .chain(p.kinds.iter().map(|k| format!("every {k}")))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let _ = writeln!(
                out,
                "Paused: {what} until {}{}\n",
                crate::published::local(p.until, zone),
                p.note.map(|n| format!(" ({n})")).unwrap_or_default()
            );
        }
        let _ = writeln!(out, "Next firings:");
        match std::fs::read(state_dir.join(NEXT_FILE))
            .ok()
            .and_then(|b| serde_json::from_slice::<Vec<NextFiring>>(&b).ok())
        {
            Some(next) if !next.is_empty() => {
                for n in next {
                    let at = DateTime::parse_from_rfc3339(&n.at)
                        .map(|t| crate::published::local(t.with_timezone(&Utc), zone))
                        .unwrap_or(n.at);
                    let _ = writeln!(out, "  {at}  {:<11} {}", n.kind, n.item);
                }
            }
            _ => {
                let _ = writeln!(
                    out,
                    "  (none published: is `kithd run` running on this state directory?)"
                );
            }
        }
        let pending = ledger.in_state(State::Pending, 200)?;
        let _ = writeln!(out, "\nPending or retrying ({}):", pending.len());
        for d in &pending {
            let retry = if d.attempts > 0 {
                format!(
                    ", attempt {} failed: {}",
                    d.attempts,
                    d.last_error.as_deref().unwrap_or("?")
                )
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "  {}  {} → {} via {}  next attempt {}{retry}",
                d.id,
                d.item,
                d.recipient,
                d.channel,
                crate::published::local(d.due, zone)
            );
        }
        let dead = ledger.in_state(State::Dead, 50)?;
        let _ = writeln!(out, "\nDead letters ({}):", dead.len());
        for d in &dead {
            let _ = writeln!(
                out,
                "  {}  {} ({}) → {} via {}  scheduled {}  {}",
                d.id,
                d.item,
                d.kind,
                d.recipient,
                d.channel,
                crate::published::local(d.scheduled, zone),
                d.last_error.as_deref().unwrap_or("")
            );
        }
        let errors = ledger.last_errors()?;
        let _ = writeln!(out, "\nLast error per channel:");
        if errors.is_empty() {
            let _ = writeln!(out, "  (none)");
        }
        for (channel, at, e) in errors {
            let _ = writeln!(
                out,
                "  {channel}  {}  {e}",
                crate::published::local(at, zone)
            );
        }
    }
    Ok(exit::OK)
}
