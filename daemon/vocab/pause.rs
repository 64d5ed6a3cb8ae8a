//! A pause: a window in which some or all items don't fire and escalation waits, from the
//! plan (`[[away]]`) or from `kithd pause` (kept in the ledger). Shared by both.

use chrono::{DateTime, Utc};

use super::Kind;

/// Items that don't fire in `[from, until)`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Pause {
    pub from: DateTime<Utc>,
    pub until: DateTime<Utc>,
    /// Only these items (all when empty).
    #[serde(default)]
    pub items: Vec<String>,
    /// Only items of these kinds (all when empty).
    #[serde(default)]
    pub kinds: Vec<Kind>,
    /// Why, in the person's words (shown by `preview` and `status`).
    #[serde(default)]
    pub note: Option<String>,
}

impl Pause {
    /// Whether the pause holds `item` (of `kind`) at `at`.
    pub(crate) fn covers(&self, item: &str, kind: Kind, at: DateTime<Utc>) -> bool {
        self.from <= at
            && at < self.until
            && (self.items.is_empty() || self.items.iter().any(|i| i == item))
            && (self.kinds.is_empty() || self.kinds.contains(&kind))
    }
}

/// The pause among `pauses` that holds `item` at `at`, if any.
pub(crate) fn paused<'a>(
    pauses: &'a [Pause],
    item: &str,
    kind: Kind,
    at: DateTime<Utc>,
) -> Option<&'a Pause> {
    pauses.iter().find(|p| p.covers(item, kind, at))
}
