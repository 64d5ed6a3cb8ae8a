//! Health, judged from the loop: when it may be judged again, and what changes when it
//! does (the log, the file `status --check` reads, the heartbeat). The judgement itself is
//! `crate::health`; this must not decide what counts as degraded.

use std::time::Duration;

use tracing::{info, warn};

use super::{ASSESS_EVERY, Daemon};
use crate::store::StoreError;

impl Daemon {
    /// Judges health again (at most once a second unless `force`). A change is logged,
    /// published for `status --check` and, with `[heartbeat]`, pinged at once.
    pub(super) async fn assess(&mut self, force: bool) -> Result<(), StoreError> {
        let now = std::time::Instant::now();
        // Also once a minute, so that a dead letter ageing past 24 h clears by itself.
        let stale = self
            .assessed_at
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(60));
        if !force && !stale && (!self.health_due || self.assess_wait().is_some()) {
            return Ok(());
        }
        self.assessed_at = Some(now);
        self.health_due = false;
        let own: Vec<String> = self
            .reload_refused
            .map(|n| {
                format!(
                    "the reloaded plan has {n} problem{} (see the log), the previous plan keeps running",
                    if n == 1 { "" } else { "s" }
                )
            })
            .into_iter()
            .collect();
        let snap = self.dispatcher.snapshot();
        let (now, reasons) = (self.clock.now(), own.clone());
        let health = self
            .ledger
            .call(move |l| {
                let in_plan = |c: &str| snap.plan.channels.contains_key(c);
                crate::health::assess(l, now, Some(&in_plan), &reasons)
            })
            .await?;
        if health != self.health {
            if health.is_degraded() {
                warn!(health = %health.summary(), "kithd is degraded.");
            } else {
                info!("kithd is healthy again.");
            }
            if let Err(e) = crate::health::publish_own(&self.opts.state_dir, &own) {
                warn!(error = %e, "Could not publish health for `kithd status --check`.");
            }
            self.health = health;
            if let Some(p) = &self.pinger {
                p.ping(self.health.is_degraded().then(|| self.health.summary()));
            }
        }
        Ok(())
    }

    /// How long until health may be judged again, if it may not be now.
    pub(super) fn assess_wait(&self) -> Option<Duration> {
        let since = self.assessed_at?.elapsed();
        ASSESS_EVERY.checked_sub(since).filter(|d| !d.is_zero())
    }
}
