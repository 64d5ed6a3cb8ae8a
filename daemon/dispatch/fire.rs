//! Firing → ledger records: one delivery per recipient, on the first channel of the
//! recipient's `reach`, due after their quiet hours. Never a contact without consent.
//! Pure: it must not write the ledger or send.

use chrono::{DateTime, Utc};

use crate::plan::{Item, Plan, SELF_ID};
use crate::schedule::{Purpose, item_delivery_times};
use crate::store::{NewDelivery, NewFiring, NewWatch, StepAction};
use crate::vocab::delivery_id;

/// The ledger's name for a purpose.
/// The records for one firing. `late` marks a catch-up after downtime: deliveries are
/// then due no earlier than `now`.
pub(crate) fn records(
    plan: &Plan,
    item: &Item,
    at: DateTime<Utc>,
    purpose: Purpose,
    late: bool,
    now: DateTime<Utc>,
) -> (NewFiring, Vec<NewDelivery>) {
    let mut firing = NewFiring::new(&item.id, item.kind, purpose.ledger_key(), at);
    if purpose == Purpose::Main
        && let Some(policy) = &item.answer
    {
        // After downtime, the clock for answering starts when the message actually goes out.
        let base = if late { now.max(at) } else { at };
        let deadline = base + policy.within.to_chrono();
        firing.deadline = Some(deadline);
        firing.snooze_cap = Some(policy.max_snooze.to_chrono());
        firing.alert_on = policy.alert_on;
        if let Some((every, times)) = policy.nag {
            for k in 1..=times {
                firing.watches.push(NewWatch {
                    action: StepAction::Nag,
                    step: k,
                    recipient: SELF_ID.into(),
                    due: base + every.to_chrono() * k as i32,
                });
            }
        }
        for (j, contact) in policy.escalate.iter().enumerate() {
            firing.watches.push(NewWatch {
                action: StepAction::Escalate,
                step: j as u32,
                recipient: contact.clone(),
                due: deadline + policy.escalate_every.to_chrono() * j as i32,
            });
        }
    }
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
            id: delivery_id(
                plan.scope.as_deref(),
                &item.id,
                at,
                purpose,
                &recipient.id,
                channel,
            ),
            recipient: recipient.id.clone(),
            channel: channel.clone(),
            channel_index: 0,
            due: if late { dt.at.max(now) } else { dt.at },
            late,
        });
    }
    (firing, deliveries)
}

/// The records for a nag or escalation step of `item`'s firing at `scheduled`, to
/// `recipient`, due now (or when the recipient's quiet hours end, unless the item is
/// urgent). `None` when the recipient can't be messaged (no consent, `never_contact`, no
/// channel) — the step is then closed without sending.
pub(crate) fn step_records(
    plan: &Plan,
    item: &Item,
    scheduled: DateTime<Utc>,
    purpose: Purpose,
    recipient: &str,
    now: DateTime<Utc>,
) -> Option<(NewFiring, Vec<NewDelivery>)> {
    let r = plan.recipient(recipient)?;
    // An invited contact's step is recorded; the dispatcher sends it only after their YES.
    if r.id != SELF_ID && ((r.consent.is_none() && !r.invite) || plan.never_contact.contains(&r.id))
    {
        return None;
    }
    let channel = r.reach.first()?;
    let respects = r.id != SELF_ID || item.respect_quiet_hours;
    let due = match (item.urgent, respects, r.quiet_hours) {
        (false, true, Some(q)) => q.defer(now, r.timezone).unwrap_or(now),
        _ => now,
    };
    let firing = NewFiring::new(&item.id, item.kind, purpose.ledger_key(), scheduled);
    let delivery = NewDelivery {
        id: delivery_id(
            plan.scope.as_deref(),
            &item.id,
            scheduled,
            purpose,
            &r.id,
            channel,
        ),
        recipient: r.id.clone(),
        channel: channel.clone(),
        channel_index: 0,
        due,
        late: false,
    };
    Some((firing, vec![delivery]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(urgent: bool) -> Plan {
        let text = format!(
            "[person]\nname = \"A\"\ntimezone = \"UTC\"\nreach = [\"c\"]\n\
             [contacts.sam]\nname = \"S\"\ntimezone = \"UTC\"\nquiet_hours = \"22:00-07:00\"\nreach = [\"c\"]\nconsent = 2026-01-01\n\
             [contacts.kim]\nname = \"K\"\nreach = [\"c\"]\n\
             [channels.c]\nplugin = \"console\"\n\
             [[checkin]]\nid = \"x\"\nat = \"21:00\"\nurgent = {urgent}\nexpect_reply_within = \"1h\"\nnag = \"10m x2\"\nescalate = [\"sam\"]\nmessage = \"m\"\n"
        );
        crate::plan::testing::test_plan(&text)
    }

    #[test]
    fn escalation_steps_wait_for_a_contacts_quiet_hours_unless_urgent() {
        let at: DateTime<Utc> = "2026-12-01T21:00:00Z".parse().unwrap();
        let now: DateTime<Utc> = "2026-12-01T22:05:00Z".parse().unwrap();
        let p = plan(false);
        let item = &p.items[0];
        let (f, _) = records(&p, item, at, Purpose::Main, false, at);
        assert_eq!(f.deadline, Some(at + chrono::Duration::hours(1)));
        let steps: Vec<(&str, u32, String)> = f
            .watches
            .iter()
            .map(|w| (w.action.as_str(), w.step, w.due.format("%H:%M").to_string()))
            .collect();
        assert_eq!(
            steps,
            vec![
                ("nag", 1, "21:10".into()),
                ("nag", 2, "21:20".into()),
                ("escalate", 0, "22:00".into())
            ]
        );
        let (_, d) = step_records(&p, item, at, Purpose::Escalate(0), "sam", now).unwrap();
        assert_eq!(
            d[0].due.to_rfc3339(),
            "2026-12-02T07:00:00+00:00",
            "deferred to the end of Sam's quiet hours"
        );
        let p = plan(true);
        let (_, d) = step_records(&p, &p.items[0], at, Purpose::Escalate(0), "sam", now).unwrap();
        assert_eq!(d[0].due, now, "urgent items are not deferred");
        // A contact without consent is never stepped to.
        assert!(step_records(&p, &p.items[0], at, Purpose::Escalate(0), "kim", now).is_none());
    }
}

#[cfg(test)]
mod inherited_nights {
    use super::*;

    /// The person sleeps 22:00–08:00; Sam says nothing, Kim opts out, Lee has their own.
    fn plan() -> Plan {
        crate::plan::testing::test_plan(
            "[person]\nname = \"A\"\ntimezone = \"UTC\"\nquiet_hours = \"22:00-08:00\"\nreach = [\"c\"]\n\
             [contacts.sam]\nname = \"S\"\nreach = [\"c\"]\nconsent = 2026-01-01\n\
             [contacts.kim]\nname = \"K\"\nquiet_hours = \"none\"\nreach = [\"c\"]\nconsent = 2026-01-01\n\
             [contacts.lee]\nname = \"L\"\ntimezone = \"America/New_York\"\nquiet_hours = \"23:00-06:00\"\nreach = [\"c\"]\nconsent = 2026-01-01\n\
             [channels.c]\nplugin = \"console\"\n\
             [[checkin]]\nid = \"x\"\nat = \"21:00\"\nexpect_reply_within = \"10h\"\nescalate = [\"sam\", \"kim\", \"lee\"]\nmessage = \"m\"\n",
        )
    }

    #[test]
    fn contacts_keep_the_persons_quiet_hours_unless_they_say_otherwise() {
        let p = plan();
        let item = &p.items[0];
        let at: DateTime<Utc> = "2026-12-01T21:00:00Z".parse().unwrap();
        let now: DateTime<Utc> = "2026-12-02T07:05:00Z".parse().unwrap();
        let due = |who: &str| {
            let (_, d) = step_records(&p, item, at, Purpose::Escalate(0), who, now).unwrap();
            d[0].due.to_rfc3339()
        };
        assert_eq!(
            due("sam"),
            "2026-12-02T08:00:00+00:00",
            "Sam: the person's night"
        );
        assert_eq!(due("kim"), now.to_rfc3339(), "Kim: `none`");
        // Lee's own window, in New York: 02:05 there, so 06:00 New York = 11:00Z.
        assert_eq!(due("lee"), "2026-12-02T11:00:00+00:00");
    }
}
