//! Nag and escalation steps whose time has come: each becomes the ledger records of its
//! delivery (unless an answer got there first) or is cancelled when it can no longer be
//! taken. Must not send: the queue delivers what this records.

use chrono::{DateTime, Utc};
use tracing::{info, warn};

use crate::dispatch::fire::step_records;
use crate::plan::Plan;
use crate::schedule::Purpose;
use crate::store::{Ledger, StepAction, StoreError};
use crate::vocab::{Pause, paused};

/// Steps taken per pass.
const BATCH: usize = 512;

/// The pauses in force for one pass of the loop: the plan's `[[away]]` windows and those
/// `kithd pause` stored, read from the ledger only when something is due (most passes
/// record and take nothing).
pub(super) struct Pauses<'a> {
    plan: &'a Plan,
    now: DateTime<Utc>,
    loaded: Option<Vec<Pause>>,
}

impl<'a> Pauses<'a> {
    pub(super) fn new(plan: &'a Plan, now: DateTime<Utc>) -> Self {
        Self {
            plan,
            now,
            loaded: None,
        }
    }

    pub(super) fn get(&mut self, ledger: &dyn Ledger) -> Result<&[Pause], StoreError> {
        if self.loaded.is_none() {
            let mut all = self.plan.away.clone();
            all.extend(ledger.pauses(self.now)?);
            self.loaded = Some(all);
        }
        Ok(self.loaded.as_deref().unwrap_or_default())
    }
}

/// Takes the steps due at `now` under `plan`; a step of an item paused now waits for the
/// pause to end (escalation timers don't run while paused).
pub(super) fn take_due(
    ledger: &dyn Ledger,
    plan: &Plan,
    now: DateTime<Utc>,
    pauses: &mut Pauses,
) -> Result<(), StoreError> {
    for w in ledger.due_watches(now, BATCH)? {
        let Some(item) = plan.item(&w.item) else {
            ledger.cancel_watch(w.id)?;
            continue;
        };
        if let Some(p) = paused(pauses.get(ledger)?, &item.id, item.kind, now) {
            info!(item = %w.item, step = w.step, until = %p.until.to_rfc3339(), "Paused: this step waits for the pause to end.");
            ledger.postpone_watch(w.id, p.until)?;
            continue;
        }
        let purpose = match w.action {
            StepAction::Nag => Purpose::Nag(w.step),
            StepAction::Escalate if w.heard => Purpose::Heard(w.step),
            StepAction::Escalate => Purpose::Escalate(w.step),
        };
        match step_records(plan, item, w.scheduled, purpose, &w.recipient, now) {
            Some(records) => {
                if ledger.run_watch(w.id, &records)? {
                    match w.action {
                        StepAction::Nag => {
                            info!(item = %w.item, step = w.step, "No answer yet; nudging again.")
                        }
                        StepAction::Escalate if w.heard => {
                            warn!(item = %w.item, step = w.step, contact = %w.recipient, "An answer the person asked to be heard; alerting a contact who agreed to be told.")
                        }
                        StepAction::Escalate => {
                            warn!(item = %w.item, step = w.step, contact = %w.recipient, "No answer in time; alerting a contact who agreed to be told.")
                        }
                    }
                }
            }
            None => {
                warn!(item = %w.item, contact = %w.recipient, "Escalation step skipped: the contact can't be messaged (consent, never_contact or no channel).");
                ledger.cancel_watch(w.id)?;
            }
        }
    }
    Ok(())
}
