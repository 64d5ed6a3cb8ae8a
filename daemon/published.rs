//! What the daemon publishes in its state directory for the other commands: the next
//! firings (for `status`) and the person's time zone (so `status` and `history` show local
//! times). A contract between them, kept below both. Item, kind, times and the zone only,
//! never message text. Must not read the ledger.

use std::path::Path;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::plan::Item;

/// The next-firings file's name in the state directory.
pub(crate) const NEXT_FILE: &str = "next.json";
/// The file holding the person's time zone (an IANA name).
pub(crate) const ZONE_FILE: &str = "zone";
/// The file holding the person's language (a BCP 47 tag).
pub(crate) const LANGUAGE_FILE: &str = "language";
/// A daemon that runs a directory of plans: which plans run, and which files can't.
pub(crate) const PLANS_FILE: &str = "plans.json";

/// What a directory's daemon publishes: plan ids running, and plan files with problems
/// (file name and how many problems). Never plan content.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Plans {
    pub running: Vec<String>,
    pub problems: Vec<(String, usize)>,
}

/// Writes the directory's plans (mode 0600, atomically) in the state directory.
pub(crate) fn write_plans(state_dir: &Path, plans: &Plans) -> std::io::Result<()> {
    let bytes = serde_json::to_vec(plans).map_err(std::io::Error::other)?;
    crate::store::write_state_file(state_dir, PLANS_FILE, &bytes)
}

/// The directory's plans as its daemon last published them, if one ever ran here.
pub(crate) fn plans(state_dir: &Path) -> Option<Plans> {
    serde_json::from_slice(&std::fs::read(state_dir.join(PLANS_FILE)).ok()?).ok()
}

/// One upcoming firing as published.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct NextFiring {
    pub at: String,
    pub item: String,
    pub kind: String,
}

/// The next ten firings of `items` within a week of `now`, as published.
pub(crate) fn next_firings(items: &[&Item], now: DateTime<Utc>) -> Vec<NextFiring> {
    crate::schedule::upcoming_of(items, now, now + chrono::Duration::days(7), 10)
        .into_iter()
        .map(|f| {
            let item = items[f.item];
            NextFiring {
                at: f.at.with_timezone(&item.timezone).to_rfc3339(),
                item: item.id.clone(),
                kind: item.kind.to_string(),
            }
        })
        .collect()
}

/// Writes the next firings (mode 0600, atomically) in the state directory.
pub(crate) fn write(state_dir: &Path, next: &[NextFiring]) -> std::io::Result<()> {
    let bytes = serde_json::to_vec(next).map_err(std::io::Error::other)?;
    crate::store::write_state_file(state_dir, NEXT_FILE, &bytes)
}

/// Writes the person's zone (mode 0600, atomically) in the state directory.
pub(crate) fn write_zone(state_dir: &Path, zone: Tz) -> std::io::Result<()> {
    crate::store::write_state_file(state_dir, ZONE_FILE, zone.name().as_bytes())
}

/// Writes the person's language (for `report --format html`) beside the zone.
pub(crate) fn write_language(state_dir: &Path, language: &str) -> std::io::Result<()> {
    crate::store::write_state_file(state_dir, LANGUAGE_FILE, language.as_bytes())
}

/// The person's language as the daemon last published it; English when it never has.
pub(crate) fn language(state_dir: &Path) -> String {
    std::fs::read_to_string(state_dir.join(LANGUAGE_FILE))
        .map(|l| l.trim().to_string())
        .unwrap_or_else(|_| "en".into())
}

/// The person's zone as the daemon last published it; UTC when it never has.
pub(crate) fn zone(state_dir: &Path) -> Tz {
    std::fs::read_to_string(state_dir.join(ZONE_FILE))
        .ok()
        .and_then(|z| z.trim().parse().ok())
        .unwrap_or(Tz::UTC)
}

/// A time as people read it: `Thu 2026-12-03 08:00 Europe/Lisbon`.
pub(crate) fn local(t: DateTime<Utc>, zone: Tz) -> String {
    format!(
        "{} {}",
        t.with_timezone(&zone).format("%a %Y-%m-%d %H:%M"),
        zone.name()
    )
}
