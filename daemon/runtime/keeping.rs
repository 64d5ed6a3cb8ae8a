//! Keeping only as much history as the person chose (`history_retention`): pruned at
//! start and daily. Must not erase anything pending (the ledger keeps unfinished firings).

use tracing::{info, warn};

use super::Daemon;

/// How often old history is pruned.
pub(super) const PRUNE_EVERY: std::time::Duration = std::time::Duration::from_secs(86_400);

impl Daemon {
    pub(super) async fn prune(&mut self) {
        let retention = self.dispatcher.snapshot().plan.retention.to_chrono();
        let before = self.clock.now() - retention;
        match self.ledger.call(move |l| l.prune(before)).await {
            Ok(0) => {}
            Ok(firings) => info!(
                firings,
                before = %before.to_rfc3339(),
                "Pruned history older than the plan's history_retention."
            ),
            Err(e) => warn!(error = %e, "Could not prune old history; trying again tomorrow."),
        }
    }
}
