//! The next-firings file the daemon publishes in its state directory for `kithd status`:
//! a contract between the two, kept below both. Item, kind and local time only, never
//! message text. Must not read the ledger.

use std::path::Path;

use chrono::{DateTime, Utc};

use crate::plan::Item;

/// The file's name in the state directory.
pub(crate) const NEXT_FILE: &str = "next.json";

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

/// Writes the file (mode 0600, atomically) in the state directory.
pub(crate) fn write(state_dir: &Path, next: &[NextFiring]) -> std::io::Result<()> {
    let bytes = serde_json::to_vec(next).map_err(std::io::Error::other)?;
    crate::store::write_state_file(state_dir, NEXT_FILE, &bytes)
}
