//! `kithd export` and `kithd forget`: the person's history is theirs. `export` writes
//! everything the ledger holds about them as one JSON document (what each contact said
//! themselves too, and with the plan given, its items and contacts with the consent each
//! relied on); `forget` erases it
//! (all, or everything before a date), rebuilds the storage so the bytes are gone, and
//! records only that a deletion happened. Must not send anything.

use std::io::Write;
use std::path::Path;

use chrono::{DateTime, Utc};

use super::StateDir;
use crate::exit;
use crate::store::{HistoryFilter, SqliteLedger};

/// What `export` says about the plan (never message text or secrets).
fn plan_summary(
    plan: &Path,
    plugin_dir: &Path,
    now: DateTime<Utc>,
) -> Result<serde_json::Value, exit::Error> {
    let loaded = crate::load::load(&crate::load::Options {
        plan,
        plugin_dir,
        secrets: crate::load::Secrets::Offline,
        now,
        cache: None,
    })
    .map_err(exit::Error::Plan)?;
    let p = &loaded.snapshot.plan;
    Ok(serde_json::json!({
        "file": plan.display().to_string(),
        "person": {"name": p.person.name, "timezone": p.person.timezone.name()},
        "items": p.items.iter().map(|i| serde_json::json!({"id": i.id, "kind": i.kind})).collect::<Vec<_>>(),
        "contacts": p.contacts.values().map(|c| serde_json::json!({
            "id": c.id,
            "name": c.name,
            // Until kithd asks contacts itself, consent is what the person recorded.
            "consent": c.consent.map(|d| d.to_string()),
            "consent_given": c.consent.map(|_| "outside kithd, recorded in the plan"),
        })).collect::<Vec<_>>(),
        "history_retention_days": p.retention.as_secs() / 86_400,
    }))
}

pub(crate) fn export(
    state: &StateDir,
    plan: Option<&Path>,
    plugin_dir: &Path,
    now: DateTime<Utc>,
    out: &mut dyn Write,
) -> exit::Outcome {
    let summary = plan.map(|p| plan_summary(p, plugin_dir, now)).transpose()?;
    let ledger = state.read_only()?;
    let all = HistoryFilter::default();
    let doc = serde_json::json!({
        "exported_at": now.to_rfc3339(),
        "plan": summary,
        "deliveries": ledger.history(&all)?,
        "answers": ledger.journal(DateTime::<Utc>::MIN_UTC)?,
        "missed": ledger.missed(&all)?,
        "pauses": ledger.pauses(now)?,
        // What each contact said themselves (invited, yes, stop), with how and when.
        "consents": ledger.consents()?.into_iter().map(|c| serde_json::json!({
            "contact": c.contact,
            "state": c.state,
            "how": c.how,
            "at": c.at.to_rfc3339(),
        })).collect::<Vec<_>>(),
        "deletions": ledger.deletions()?.into_iter().map(|(at, before)| serde_json::json!({
            "at": at.to_rfc3339(),
            "before": before.map(|b| b.to_rfc3339()),
        })).collect::<Vec<_>>(),
    });
    let text = serde_json::to_string_pretty(&doc).map_err(|e| exit::Error::Busy(e.to_string()))?;
    let _ = writeln!(out, "{text}");
    Ok(exit::OK)
}

pub(crate) fn forget(
    state: &StateDir,
    before: Option<&str>,
    now: DateTime<Utc>,
    out: &mut dyn Write,
) -> exit::Outcome {
    let zone = crate::published::zone(&state.path);
    let before = match before.map(|s| (s, super::preview::parse_from(s, zone))) {
        Some((s, None)) => {
            return Err(exit::Error::BadOption {
                option: "before",
                value: s.to_string(),
                expected: "RFC 3339, or `YYYY-MM-DD[THH:MM]` in the person's time zone",
            });
        }
        Some((_, t)) => t,
        None => None,
    };
    // The file is rebuilt, which a running daemon's open ledger would keep from happening.
    if !state.shared() && SqliteLedger::daemon_running(&state.path) {
        return Err(exit::Error::Busy(format!(
            "a kithd is running on `{}`: stop it first (`systemctl stop kithd`), so that the ledger can be rebuilt without what is erased",
            state.path.display()
        )));
    }
    let ledger = state.client()?;
    let firings = ledger.forget(before, now)?;
    let _ = writeln!(
        out,
        "erased {firings} firings with their deliveries, answers and notes{}; the ledger keeps only that a deletion happened",
        before
            .map(|b| format!(" from before {}", b.to_rfc3339()))
            .unwrap_or_default()
    );
    Ok(exit::OK)
}
