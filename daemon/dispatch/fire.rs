//! Firing → ledger records: one delivery per recipient, on the first channel of the
//! recipient's `reach`, due after their quiet hours. Never a contact without consent.
//! Pure: it must not write the ledger or send.

use chrono::{DateTime, Utc};

use crate::plan::{Item, Plan, PlanDuration, SELF_ID};
use crate::schedule::{Purpose, item_delivery_times};
use crate::store::{NewDelivery, NewFiring};

use super::render::delivery_id;

/// The ledger's name for a purpose.
pub fn purpose_key(p: Purpose) -> String {
    match p {
        Purpose::Main => "main".into(),
        Purpose::Reminder(d) => format!("reminder:{}", d.as_secs()),
        Purpose::FollowUp => "followup".into(),
    }
}

pub fn parse_purpose(s: &str) -> Option<Purpose> {
    match s {
        "main" => Some(Purpose::Main),
        "followup" => Some(Purpose::FollowUp),
        _ => {
            let secs: i64 = s.strip_prefix("reminder:")?.parse().ok()?;
            // Reminders are stored in seconds; whole days round-trip as calendar days.
            let text = if secs % 86_400 == 0 {
                format!("{}d", secs / 86_400)
            } else {
                format!("{secs}s")
            };
            PlanDuration::parse(&text).ok().map(Purpose::Reminder)
        }
    }
}

/// The records for one firing. `late` marks a catch-up after downtime: deliveries are
/// then due no earlier than `now`.
pub fn records(
    plan: &Plan,
    item: &Item,
    at: DateTime<Utc>,
    purpose: Purpose,
    late: bool,
    now: DateTime<Utc>,
) -> (NewFiring, Vec<NewDelivery>) {
    let firing = NewFiring {
        item: item.id.clone(),
        kind: item.kind.to_string(),
        purpose: purpose_key(purpose),
        scheduled: at,
    };
    let mut deliveries = Vec::new();
    for dt in item_delivery_times(plan, item, at) {
        let Some(recipient) = plan.recipient(&dt.recipient) else {
            continue;
        };
        if recipient.id != SELF_ID && recipient.consent.is_none() {
            continue; // validation forbids it; this is the second lock on the door
        }
        let Some(channel) = recipient.reach.first() else {
            continue;
        };
        deliveries.push(NewDelivery {
            id: delivery_id(&item.id, at, purpose, &recipient.id, channel),
            recipient: recipient.id.clone(),
            channel: channel.clone(),
            channel_index: 0,
            due: if late { dt.at.max(now) } else { dt.at },
            late,
        });
    }
    (firing, deliveries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purposes_round_trip() {
        for p in [
            Purpose::Main,
            Purpose::FollowUp,
            Purpose::Reminder(PlanDuration::parse("1d").unwrap()),
            Purpose::Reminder(PlanDuration::parse("2h").unwrap()),
        ] {
            let back = parse_purpose(&purpose_key(p)).unwrap();
            assert_eq!(purpose_key(back), purpose_key(p));
        }
        assert_eq!(parse_purpose("nonsense"), None);
    }
}
