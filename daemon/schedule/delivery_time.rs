//! When each recipient's delivery of a firing is due: the firing instant, or the end of the
//! recipient's quiet hours for items that respect them. Must not dispatch anything.

use chrono::{DateTime, Utc};

use super::Firing;
use crate::plan::{Item, Plan};

/// When one recipient's delivery of a firing is due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryTime {
    pub recipient: String,
    pub at: DateTime<Utc>,
    /// True when quiet hours moved it from the firing instant.
    pub deferred: bool,
}

/// Delivery times for every recipient of a firing. Urgent items are never deferred; others
/// wait until the recipient's quiet hours end when the item respects quiet hours.
pub fn delivery_times(plan: &Plan, firing: &Firing) -> Vec<DeliveryTime> {
    item_delivery_times(plan, &plan.items[firing.item], firing.at)
}

/// Delivery times for every recipient of `item` firing at `at`.
pub fn item_delivery_times(plan: &Plan, item: &Item, at: DateTime<Utc>) -> Vec<DeliveryTime> {
    item.to
        .iter()
        .map(|id| {
            let deferred_to = if item.urgent || !item.respect_quiet_hours {
                None
            } else {
                plan.recipient(id)
                    .and_then(|r| r.quiet_hours.map(|q| (q, r.timezone)))
                    .and_then(|(q, tz)| q.defer(at, tz))
            };
            DeliveryTime {
                recipient: id.clone(),
                at: deferred_to.unwrap_or(at),
                deferred: deferred_to.is_some(),
            }
        })
        .collect()
}
