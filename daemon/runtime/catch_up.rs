//! Catch-up after downtime: firings missed while kithd was not running, from each item's
//! last recorded firing up to now, handled by the item's `catch_up` policy. At most one
//! late delivery per item and purpose (the most recent); the others are recorded as missed.
//! Must not dispatch; it only writes the ledger.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use tracing::info;

use crate::dispatch::fire::records;
use crate::plan::Plan;
use crate::schedule::{Purpose, next_after};
use crate::store::{Ledger, NewDelivery, NewFiring, StoreError};

/// Scanning stops after this many missed firings of one item (an every-minute item down
/// for months); the rest are not recorded.
const MAX_SCAN: usize = 100_000;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CatchUpReport {
    pub delivered_late: usize,
    pub missed: usize,
}

pub(crate) fn catch_up(
    plan: &Plan,
    ledger: &dyn Ledger,
    now: DateTime<Utc>,
) -> Result<CatchUpReport, StoreError> {
    let cursors: HashMap<String, DateTime<Utc>> = ledger.last_scheduled()?.into_iter().collect();
    // A firing a pause held is not missed: it is recorded as paused.
    let mut pauses = plan.away.clone();
    pauses.extend(ledger.pauses(now)?);
    let mut report = CatchUpReport::default();
    let mut deliver: Vec<(NewFiring, Vec<NewDelivery>)> = Vec::new();
    for item in &plan.items {
        let Some(cursor) = cursors.get(&item.id) else {
            continue;
        };
        let mut missed: Vec<(DateTime<Utc>, Purpose)> = Vec::new();
        let mut t = *cursor;
        while let Some((at, purpose)) = next_after(item, t) {
            if at > now || missed.len() >= MAX_SCAN {
                break;
            }
            missed.push((at, purpose));
            t = at;
        }
        // The most recent missed firing of each purpose may be delivered late.
        let mut latest: HashMap<String, DateTime<Utc>> = HashMap::new();
        for (at, p) in &missed {
            latest.insert(p.ledger_key(), *at);
        }
        for (at, purpose) in missed {
            if crate::vocab::paused(&pauses, &item.id, item.kind, at).is_some() {
                ledger.record_paused(&NewFiring::new(
                    &item.id,
                    item.kind,
                    purpose.ledger_key(),
                    at,
                ))?;
                continue;
            }
            let is_latest = latest.get(&purpose.ledger_key()) == Some(&at);
            if is_latest && item.catch_up.deliver_when_late_by(now - at) {
                deliver.push(records(plan, item, at, purpose, true, now));
                report.delivered_late += 1;
            } else {
                ledger.record_missed(&NewFiring::new(
                    &item.id,
                    item.kind,
                    purpose.ledger_key(),
                    at,
                ))?;
                report.missed += 1;
            }
        }
    }
    if !deliver.is_empty() {
        ledger.record_firings(&deliver)?;
    }
    if report != CatchUpReport::default() {
        info!(
            delivered_late = report.delivered_late,
            missed = report.missed,
            "Caught up on firings missed while kithd was not running."
        );
    }
    Ok(report)
}
