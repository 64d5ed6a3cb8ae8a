//! Rendering: the text and plugin `Message` for one delivery of a firing, and the stable
//! delivery id. Must not send anything or log message text.

use std::collections::BTreeMap;

use crate::plan::{Item, Kind, Plan, PlanDuration, Recipient};
use crate::plugin::Message;
use crate::schedule::{Firing, Purpose};

fn humanize(d: PlanDuration) -> String {
    let s = d.as_secs();
    let (n, unit) = if s % 604_800 == 0 {
        (s / 604_800, "week")
    } else if s % 86_400 == 0 {
        (s / 86_400, "day")
    } else if s % 3600 == 0 {
        (s / 3600, "hour")
    } else {
        ((s + 59) / 60, "minute")
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

pub(crate) fn title(kind: Kind, purpose: Purpose) -> &'static str {
    match (kind, purpose) {
        (_, Purpose::Escalate(_) | Purpose::Heard(_) | Purpose::AllClear) => "A note from kithd",
        (Kind::Checkin, _) => "Check-in",
        (Kind::Medication, _) => "Medication reminder",
        (Kind::Followup, _) => "Reach out",
        (Kind::Appointment, Purpose::FollowUp) => "How did it go?",
        (Kind::Appointment, _) => "Appointment reminder",
    }
}

/// Whether a purpose is a message to a contact about the person (escalation, all-clear):
/// such messages carry only what the person wrote, never the item, its kind or values.
pub(crate) fn is_about_person(purpose: Purpose) -> bool {
    matches!(
        purpose,
        Purpose::Escalate(_) | Purpose::Heard(_) | Purpose::AllClear
    )
}

/// The text of a delivery. `answer_url` fills `{answer_url}` where the message has it.
pub(crate) fn render_text(
    plan: &Plan,
    item: &Item,
    firing: &Firing,
    recipient: &Recipient,
    answer_url: Option<&str>,
) -> String {
    let local = firing.at.with_timezone(&item.timezone);
    let mut v: BTreeMap<&str, String> = BTreeMap::new();
    v.insert("person", plan.person.name.clone());
    v.insert("recipient", recipient.name.clone());
    v.insert("time", local.format("%H:%M").to_string());
    v.insert("date", local.format("%a %-d %b").to_string());
    if is_about_person(firing.purpose) {
        let Some(policy) = &item.answer else {
            return String::new();
        };
        let t = match firing.purpose {
            Purpose::AllClear => &policy.all_clear_message,
            Purpose::Heard(_) => &policy.heard_message,
            _ => &policy.escalate_message,
        };
        return t.render(&v);
    }
    v.insert("answer_url", answer_url.unwrap_or_default().to_string());
    v.insert("item", item.id.clone());
    v.insert("kind", item.kind.to_string());
    v.insert("time", local.format("%H:%M").to_string());
    v.insert("date", local.format("%a %-d %b").to_string());
    for (k, val) in &item.fields {
        v.insert(k.as_str(), val.clone());
    }
    if item.kind == Kind::Appointment {
        // The appointment this reminder or follow-up is about (for a recurring one, this
        // firing's occurrence).
        if let Some(when) = crate::schedule::appointment_at(item, firing.at, firing.purpose) {
            let local = when.with_timezone(&item.timezone);
            v.insert("when", local.format("%a %-d %b %H:%M").to_string());
        }
        v.entry("title").or_insert_with(|| item.id.clone());
    }
    if let Purpose::Reminder(d) = firing.purpose {
        v.insert("in", humanize(d));
    }
    match (firing.purpose, item.followup_message()) {
        (Purpose::FollowUp, Some(t)) => t.render(&v),
        (Purpose::FollowUp, None) => {
            format!(
                "How did {} go? It can help to note how you feel about it.",
                v.get("title").cloned().unwrap_or_default()
            )
        }
        (Purpose::Nag(_) | Purpose::Snooze(_), _) => {
            format!("Reminder: {}", item.message.render(&v))
        }
        _ => item.message.render(&v),
    }
}

/// The last line of every message to a contact: how to stop them. A reply `STOP` where the
/// contact's channel takes replies, else their own link (`link`, with `[server]`);
/// otherwise the person is the way.
pub(crate) fn how_to_stop(plan: &Plan, replies: bool, link: Option<&str>) -> String {
    match (replies, link) {
        (true, _) => "Reply STOP to get no more messages from kithd.".into(),
        (false, Some(link)) => format!("To get no more messages from kithd: {link}"),
        (false, None) => format!(
            "To get no more messages from kithd, tell {}: they can take you off their plan.",
            plan.person.name
        ),
    }
}

/// The plugin message for one delivery, under its ledger id.
pub(crate) fn message(
    plan: &Plan,
    item: &Item,
    firing: &Firing,
    recipient: &Recipient,
    delivery_id: &str,
    address: Option<String>,
    answer_url: Option<String>,
) -> Message {
    let about_person = is_about_person(firing.purpose);
    let choices = match (&answer_url, item.kind) {
        (None, _) => Vec::new(),
        (Some(_), Kind::Medication) => vec!["taken".to_string(), "skipped".to_string()],
        (Some(_), _) => vec![
            "ok".to_string(),
            "1".into(),
            "2".into(),
            "3".into(),
            "4".into(),
            "5".into(),
        ],
    };
    Message {
        delivery_id: delivery_id.to_string(),
        // A contact's message names neither the item nor its kind.
        item: if about_person {
            String::new()
        } else {
            item.id.clone()
        },
        kind: if about_person {
            firing.purpose.as_str().to_string()
        } else {
            item.kind.to_string()
        },
        scheduled: firing.at.with_timezone(&item.timezone).to_rfc3339(),
        text: render_text(plan, item, firing, recipient, answer_url.as_deref()),
        title: title(item.kind, firing.purpose).to_string(),
        recipient: recipient.id.clone(),
        recipient_name: recipient.name.clone(),
        address,
        urgent: item.urgent,
        answer_url: if about_person { None } else { answer_url },
        choices,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn humanizes_durations() {
        assert_eq!(humanize(PlanDuration::parse("1d").unwrap()), "1 day");
        assert_eq!(humanize(PlanDuration::parse("2h").unwrap()), "2 hours");
        assert_eq!(humanize(PlanDuration::parse("90m").unwrap()), "90 minutes");
    }

    #[test]
    fn a_recurring_appointments_reminder_names_its_own_session() {
        let plan = crate::plan::testing::test_plan(
            "[person]\nname = \"R\"\ntimezone = \"America/New_York\"\nreach = [\"c\"]\n[channels.c]\nplugin = \"console\"\n\
             [[appointment]]\nid = \"therapy\"\nat = \"17:00\"\ndays = [\"tue\"]\nremind_before = [\"1d\"]\nfollowup_after = \"3h\"\nmessage = \"{title} {in} ({when})\"\n",
        );
        let item = &plan.items[0];
        let me = plan.recipient(crate::plan::SELF_ID).unwrap();
        // Sunday 2027-03-14 the clocks go forward: Monday's reminder is at 17:00 EDT.
        let from: chrono::DateTime<chrono::Utc> = "2027-03-08T23:00:00Z".parse().unwrap();
        let (at, purpose) = crate::schedule::next_after(item, from).unwrap();
        assert_eq!(
            at.to_rfc3339(),
            "2027-03-10T01:00:00+00:00",
            "the follow-up of Tue 9th, 17:00 EST + 3h"
        );
        let (at, purpose2) = crate::schedule::next_after(item, at).unwrap();
        assert_eq!(
            at.to_rfc3339(),
            "2027-03-15T21:00:00+00:00",
            "Mon 15th 17:00 EDT"
        );
        let firing = Firing {
            at,
            item: 0,
            purpose: purpose2,
        };
        assert_eq!(
            render_text(&plan, item, &firing, me, None),
            "therapy 1 day (Tue 16 Mar 17:00)"
        );
        assert_eq!(purpose, Purpose::FollowUp);
    }
}
