//! Reloading on SIGHUP: whatever is due fires under the old plan first, then the new plan
//! is loaded with the same load step as at start (secrets included), the answer server
//! follows its `[server]`, and the scheduler and dispatcher swap to it. A plan that can't
//! be loaded or applied leaves the old one running and the daemon degraded until a good
//! reload. Must not touch the ledger except through the loop's own pass.

use std::sync::Arc;

use tracing::{error, info, warn};

use super::due_heap::Scheduler;
use super::{Daemon, answer_server, heartbeat, log_problems};
use crate::dispatch::worker::Snapshot;
use crate::plugin::SecretStore;

impl Daemon {
    pub(super) async fn reload(&mut self) {
        self.notifier.reloading();
        info!(plan = %self.opts.plan.display(), "Reloading the plan.");
        // Whatever is due now fires under the plan that was in force when it fell due.
        if let Err(e) = self.tick().await {
            error!(error = %e, "The delivery ledger failed during reload.");
        }
        // Debian 12's systemd passes no credentials to `ExecReload=`, so the unit's reload
        // check runs offline and the secrets are checked here, with the daemon's own.
        let store = SecretStore::from_env();
        let loaded = crate::load::load(&crate::load::Options {
            plan: &self.opts.plan,
            plugin_dir: &self.opts.plugin_dir,
            secrets: crate::load::Secrets::Check(&store),
            now: self.clock.now(),
            cache: Some(&self.opts.state_dir),
        });
        match loaded {
            Ok(loaded) => {
                for w in crate::load::one_lines(&loaded.source, &loaded.warnings) {
                    warn!("{w}");
                }
                self.swap(loaded.snapshot).await;
            }
            Err(failure) => {
                log_problems(&failure);
                error!(
                    problems = failure.errors(),
                    "The new plan has problems; the previous plan keeps running."
                );
                self.reload_refused = Some(failure.errors());
            }
        }
        self.finish_reload().await;
    }

    /// A plan of a directory: the supervisor loaded its new version.
    pub(super) async fn apply_reload(&mut self, snapshot: Snapshot) {
        info!(plan = %self.opts.plan.display(), "Reloading the plan.");
        if let Err(e) = self.tick().await {
            error!(error = %e, "The delivery ledger failed during reload.");
        }
        self.swap(snapshot).await;
        self.finish_reload().await;
    }

    /// A plan of a directory whose new version has problems: the old one keeps running.
    pub(super) async fn refuse_reload(&mut self, problems: usize) {
        error!(
            problems,
            "The new plan has problems; the previous plan keeps running."
        );
        self.reload_refused = Some(problems);
        self.finish_reload().await;
    }

    /// Swaps in a loaded plan: `[server]` first (if it can't be applied, nothing is
    /// swapped), then the scheduler and the dispatcher.
    async fn swap(&mut self, snapshot: Snapshot) {
        if let Err(e) = answer_server::reconcile(
            &mut self.answer,
            &snapshot,
            self.ledger.clone(),
            self.clock.clone(),
            self.wake.clone(),
        )
        .await
        {
            error!(error = %e, "The new plan can't be applied; the previous plan keeps running.");
            self.reload_refused = Some(1);
            return;
        }
        let now = self.clock.now();
        let old = self.dispatcher.snapshot();
        for item in &old.plan.items {
            if snapshot.plan.item(&item.id).is_none() {
                self.scheduler.remove(&item.id);
            }
        }
        for item in &snapshot.plan.items {
            self.scheduler.upsert(item, now);
        }
        let items = snapshot.plan.items.len();
        self.pinger = snapshot.plan.heartbeat.as_ref().map(heartbeat::Pinger::new);
        self.dispatcher.replace(Arc::new(snapshot));
        self.publish_zone();
        self.reload_refused = None;
        info!(items, "Plan reloaded.");
    }

    async fn finish_reload(&mut self) {
        if let Err(e) = self.assess(true).await {
            error!(error = %e, "The delivery ledger failed during reload.");
        }
        let status = self.status_text();
        self.notifier.ready(&status);
        self.tell_status();
        self.last_status = status;
    }
}
