//! The daemon's ledger: opening it (the state directory's SQLite file, or a shared
//! PostgreSQL database), how long claims are leased on it, and waiting out a shared
//! ledger's outage (its database restarting) instead of stopping. Must not schedule or
//! send.

use std::sync::Arc;
use std::time::Duration;

use tracing::{error, info, warn};

use super::{Daemon, Options, catch_up};
use crate::store::{AsyncLedger, Ledger, PgLedger, Place, SqliteLedger, StoreError, Term};

/// A claimed delivery comes back if its lease is neither renewed nor ended by an outcome
/// within this long. The daemon renews the leases it holds every third of this.
pub(super) const LEASE: chrono::Duration = chrono::Duration::minutes(5);
/// The lease in a shared (PostgreSQL) ledger: short, so a dead instance's claims are taken
/// over within a minute.
const SHARED_LEASE: chrono::Duration = chrono::Duration::seconds(30);
/// How long a maintenance leadership lasts unless renewed (every `MAINTAIN_EVERY`).
const LEADER_TTL: chrono::Duration = chrono::Duration::seconds(15);
/// How long the daemon waits for a shared ledger that can't be reached before it stops.
const RECOVER_WITHIN: Duration = Duration::from_secs(120);
/// Test-only knob: the lease in seconds (so that the suite can watch a lease end without
/// waiting five minutes). Not for production use.
const LEASE_ENV: &str = "KITHD_TEST_LEASE_SECS";

pub(super) fn lease(shared: bool) -> chrono::Duration {
    std::env::var(LEASE_ENV)
        .ok()
        .and_then(|v| v.parse::<i64>().ok())
        .filter(|s| (1..=3600).contains(s))
        .map(chrono::Duration::seconds)
        .unwrap_or(if shared { SHARED_LEASE } else { LEASE })
}

/// Opens the ledger `opts` name: the state directory's SQLite file (taking its lock), or
/// the shared PostgreSQL database (connecting and migrating off the async workers). The
/// flag says whether it is shared.
pub(super) async fn open_ledger(opts: &Options) -> Result<(Arc<dyn Ledger>, bool), StoreError> {
    match Place::parse(opts.ledger.as_deref(), &opts.state_dir)? {
        Place::Sqlite(dir) => {
            let l = SqliteLedger::open(&dir)?.with_clock(opts.clock.clone());
            Ok((Arc::new(l), false))
        }
        Place::Postgres(url) => {
            // The state directory still holds what the daemon publishes for `status`.
            crate::store::prepare_state_dir(&opts.state_dir)?;
            let l = tokio::task::spawn_blocking(move || PgLedger::open(&url))
                .await
                .map_err(|e| StoreError::Call(e.to_string()))??;
            info!("Using the shared PostgreSQL ledger.");
            Ok((Arc::new(l), true))
        }
    }
}

impl Daemon {
    /// A shared ledger that can't be reached for a moment (its database restarting): wait
    /// for it, then catch up as a restart would, so a firing whose record failed is
    /// recorded now. Any other failure, or one that lasts past `RECOVER_WITHIN`, is
    /// returned (and stops the daemon).
    async fn recover(&mut self, e: StoreError) -> Result<(), StoreError> {
        if !e.is_transient() {
            return Err(e);
        }
        warn!(error = %e, "The ledger can't be reached; waiting for it, then catching up.");
        let started = std::time::Instant::now();
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let plan = self.dispatcher.snapshot().plan.clone();
            let now = self.clock.now();
            match self
                .ledger
                .call(move |l| catch_up::catch_up(&plan, l, now))
                .await
            {
                Ok(_) => {
                    info!("The ledger is back; caught up.");
                    self.wake.notify_one();
                    return Ok(());
                }
                Err(e) if e.is_transient() && started.elapsed() < RECOVER_WITHIN => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// After a ledger failure: `None` when the daemon carries on (a shared ledger came
    /// back), else the exit code it stops with.
    pub(super) async fn survive(&mut self, e: StoreError) -> Option<u8> {
        match self.recover(e).await {
            Ok(()) => None,
            Err(e) => Some(self.ledger_failed(e).await),
        }
    }

    /// On a shared ledger: stands for the maintenance leadership and, while it holds it,
    /// maintains. See `maintain_round`.
    pub(super) async fn maintain(&mut self) {
        maintain_round(&self.ledger, &mut self.term).await;
    }
}

/// One round of maintenance of a shared ledger: stands for the leadership and, while it
/// holds it, releases claims whose instance stopped, prunes old nonces and says when
/// deliveries were dead-lettered. A failure here is logged; sending goes on.
pub(super) async fn maintain_round(ledger: &AsyncLedger, held: &mut Option<Term>) {
    let round = ledger
        .call(move |l| match l.elect(LEADER_TTL)? {
            Some(term) => {
                let done = l.maintain(&term)?;
                Ok(Some((term, done)))
            }
            None => Ok(None),
        })
        .await;
    match round {
        Ok(Some((term, done))) => {
            if held.as_ref() != Some(&term) {
                info!(since = %term.elected_at.to_rfc3339(), "This instance now leads maintenance of the shared ledger.");
            }
            if done.rescued > 0 {
                warn!(
                    deliveries = done.rescued,
                    "Released deliveries whose instance stopped mid-send; they are sent again, marked uncertain."
                );
            }
            if done.pruned > 0 {
                info!(
                    nonces = done.pruned,
                    "Pruned used answer-link and gateway-message nonces."
                );
            }
            if done.dead_lettered > 0 {
                error!(
                    deliveries = done.dead_lettered,
                    "Deliveries were dead-lettered: every channel failed (see `kithd status`)."
                );
            }
            *held = Some(term);
        }
        Ok(None) => {
            if held.take().is_some() {
                info!("Another instance leads maintenance of the shared ledger now.");
            }
        }
        Err(e) => {
            warn!(error = %e, "Maintenance of the shared ledger failed; sending goes on.")
        }
    }
}
