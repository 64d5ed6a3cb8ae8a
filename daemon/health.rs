//! Healthy or degraded, and why: a dead letter in the last 24 hours, a channel whose latest
//! attempt failed permanently, or a problem the daemon itself reports (a reloaded plan it
//! refused, such as one missing a secret). The daemon and `kithd status --check` both judge
//! by `assess`. Reasons name channels and counts, never items or message text, since they
//! leave the machine in heartbeat pings. Must not send anything.

use std::path::Path;

use chrono::{DateTime, Utc};

use crate::store::{Ledger, StoreError};

/// Where the daemon publishes the reasons only it knows (JSON list of strings).
pub(crate) const HEALTH_FILE: &str = "health.json";
/// How far back a dead letter makes kithd degraded.
pub(crate) const DEAD_LETTER_WINDOW: chrono::Duration = chrono::Duration::hours(24);

/// Why kithd is degraded; empty when healthy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Health {
    pub reasons: Vec<String>,
}

impl Health {
    pub(crate) fn is_degraded(&self) -> bool {
        !self.reasons.is_empty()
    }

    /// `degraded: a; b`, or `healthy`.
    pub(crate) fn summary(&self) -> String {
        if self.is_degraded() {
            format!("degraded: {}", self.reasons.join("; "))
        } else {
            "healthy".into()
        }
    }
}

/// Judges health from the ledger, leaving out channels not in `channels` when given (a
/// channel removed from the plan can't recover), plus the daemon's `own` reasons.
pub(crate) fn assess(
    ledger: &dyn Ledger,
    now: DateTime<Utc>,
    channels: Option<&dyn Fn(&str) -> bool>,
    own: &[String],
) -> Result<Health, StoreError> {
    let facts = ledger.health(now - DEAD_LETTER_WINDOW)?;
    let mut reasons = own.to_vec();
    if facts.dead_letters > 0 {
        reasons.push(format!(
            "{} dead letter{} in the last 24 h",
            facts.dead_letters,
            if facts.dead_letters == 1 { "" } else { "s" }
        ));
    }
    for c in facts.failing_channels {
        if channels.is_none_or(|keep| keep(&c)) {
            reasons.push(format!(
                "channel `{c}`: its latest attempt failed permanently"
            ));
        }
    }
    Ok(Health { reasons })
}

/// Writes the daemon's own reasons for `status --check` (0600, replaced atomically).
pub(crate) fn publish_own(state_dir: &Path, own: &[String]) -> std::io::Result<()> {
    let bytes = serde_json::to_vec(own).map_err(std::io::Error::other)?;
    crate::store::write_state_file(state_dir, HEALTH_FILE, &bytes)
}

/// The daemon's own reasons as it last published them.
pub(crate) fn read_own(state_dir: &Path) -> Vec<String> {
    std::fs::read(state_dir.join(HEALTH_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}
