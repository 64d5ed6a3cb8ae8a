//! What an answer or a snooze changes, decided once for every ledger: which alerts an
//! answer cancels and who gets an all-clear, how much of a snooze the cap allows, and the
//! reminder a snooze sends again. Pure: no SQL, no I/O (the backends apply it in their own
//! transactions).

use chrono::{DateTime, Utc};

use super::{NewDelivery, NewFiring, OpenFiring};
use crate::vocab::{ALL_CLEAR_KEY, Purpose, SELF_ID, all_clear_id, delivery_id};

/// An alert of the answered firing, as stored: id, recipient, channel and state.
pub(crate) type Alert = (String, String, String, String);

/// What an answer does to its firing's alerts.
pub(crate) struct AfterAnswer {
    /// Alerts not sent yet: cancelled.
    pub cancel: Vec<String>,
    /// An all-clear to each contact an alert reached (once each, by the channel it took).
    pub all_clear: Option<(NewFiring, Vec<NewDelivery>)>,
    /// Who gets the all-clear.
    pub told: Vec<String>,
}

/// Whether an answer `value` to a firing recorded with `alert_on` (as the ledger keeps it)
/// is one the person wants their contacts told about.
pub(crate) fn heard(alert_on: Option<&str>, value: &str) -> bool {
    alert_on
        .and_then(crate::vocab::AlertOn::from_key)
        .is_some_and(|a| a.heard(value))
}

pub(crate) fn after_answer(
    plan: Option<&str>,
    firing: &OpenFiring,
    alerts: &[Alert],
    now: DateTime<Utc>,
) -> AfterAnswer {
    let mut cancel = Vec::new();
    let mut reached: Vec<(String, String)> = Vec::new();
    for (id, recipient, channel, state) in alerts {
        match state.as_str() {
            "pending" => cancel.push(id.clone()),
            "sent" if !reached.iter().any(|(r, _)| r == recipient) => {
                reached.push((recipient.clone(), channel.clone()))
            }
            _ => {}
        }
    }
    let all_clear = (!reached.is_empty()).then(|| {
        let deliveries = reached
            .iter()
            .map(|(recipient, channel)| NewDelivery {
                id: all_clear_id(plan, &firing.item, firing.scheduled, recipient, channel),
                recipient: recipient.clone(),
                channel: channel.clone(),
                channel_index: 0,
                due: now,
                late: false,
            })
            .collect();
        (
            NewFiring::new(
                &firing.item,
                firing.kind,
                ALL_CLEAR_KEY.into(),
                firing.scheduled,
            ),
            deliveries,
        )
    });
    AfterAnswer {
        cancel,
        all_clear,
        told: reached.into_iter().map(|(r, _)| r).collect(),
    }
}

/// How many seconds of `delay` a snooze may take when the firing's cap is `cap` seconds and
/// `used` are spent; `None` at the cap.
pub(crate) fn snooze_allowance(
    cap: Option<i64>,
    used: i64,
    delay: chrono::Duration,
) -> Option<i64> {
    let left = cap.unwrap_or(0) - used;
    let secs = delay.num_seconds().min(left);
    (secs > 0).then_some(secs)
}

/// The reminder the `n`th snooze sends again at `until`, to the person on the channel (and
/// its place in their list) it first went by.
pub(crate) fn sent_again(
    plan: Option<&str>,
    firing: &OpenFiring,
    n: u32,
    channel: String,
    channel_index: u32,
    until: DateTime<Utc>,
) -> (NewFiring, NewDelivery) {
    let purpose = Purpose::Snooze(n);
    let again = NewFiring::new(
        &firing.item,
        firing.kind,
        purpose.ledger_key(),
        firing.scheduled,
    );
    let delivery = NewDelivery {
        id: delivery_id(
            plan,
            &firing.item,
            firing.scheduled,
            purpose,
            SELF_ID,
            &channel,
        ),
        recipient: SELF_ID.into(),
        channel,
        channel_index,
        due: until,
        late: false,
    };
    (again, delivery)
}
