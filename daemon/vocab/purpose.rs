//! The spellings of a firing's purpose: its key in the ledger (`reminder:SECONDS`) and its
//! part in a delivery id (`reminder-SECONDS`), and the delivery ids built from it. One place
//! for both, below everything that records, sends or answers. Must not change an existing
//! spelling: ledgers and gateways hold these ids (a test pins one).

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::{PlanDuration, Purpose};

/// The ledger key of an item's own firing.
pub(crate) const MAIN_KEY: &str = "main";
/// The ledger key of the all-clear after a late answer.
pub(crate) const ALL_CLEAR_KEY: &str = "allclear";
/// Ledger keys of escalation alerts start with this (`escalate:0`, `escalate:1`, …, and
/// `escalate:heard:0` for alerts after an answer the person asked to be heard).
pub(crate) const ESCALATE_KEY_PREFIX: &str = "escalate:";
/// Ledger keys of alerts after an answer the person asked to be heard (`alert_on`).
const HEARD_KEY_PREFIX: &str = "escalate:heard:";

impl Purpose {
    /// How the ledger stores this purpose (`firings.purpose`, `deliveries.purpose`).
    pub fn ledger_key(&self) -> String {
        match self {
            Purpose::Main => MAIN_KEY.into(),
            Purpose::Reminder(d) => format!("reminder:{}", d.as_secs()),
            Purpose::FollowUp => "followup".into(),
            Purpose::Nag(k) => format!("nag:{k}"),
            Purpose::Escalate(j) => format!("{ESCALATE_KEY_PREFIX}{j}"),
            Purpose::Heard(j) => format!("{HEARD_KEY_PREFIX}{j}"),
            Purpose::AllClear => ALL_CLEAR_KEY.into(),
            Purpose::Snooze(n) => format!("snooze:{n}"),
        }
    }

    /// Reads a ledger key back. A reminder is stored in seconds, so `24h` and `1d` look
    /// alike there: the item's own `remind_before` says which it was (falling back to
    /// whole days when the item no longer has it).
    pub fn from_ledger_key(key: &str, remind_before: &[PlanDuration]) -> Option<Purpose> {
        match key {
            MAIN_KEY => Some(Purpose::Main),
            "followup" => Some(Purpose::FollowUp),
            ALL_CLEAR_KEY => Some(Purpose::AllClear),
            _ if key.starts_with("nag:") => key[4..].parse().ok().map(Purpose::Nag),
            _ if key.starts_with("snooze:") => key[7..].parse().ok().map(Purpose::Snooze),
            _ if key.starts_with(HEARD_KEY_PREFIX) => key[HEARD_KEY_PREFIX.len()..]
                .parse()
                .ok()
                .map(Purpose::Heard),
            _ if key.starts_with(ESCALATE_KEY_PREFIX) => key[ESCALATE_KEY_PREFIX.len()..]
                .parse()
                .ok()
                .map(Purpose::Escalate),
            _ => {
                let secs: i64 = key.strip_prefix("reminder:")?.parse().ok()?;
                if let Some(d) = remind_before.iter().find(|d| d.as_secs() == secs) {
                    return Some(Purpose::Reminder(*d));
                }
                let text = if secs % 86_400 == 0 {
                    format!("{}d", secs / 86_400)
                } else {
                    format!("{secs}s")
                };
                PlanDuration::parse(&text).ok().map(Purpose::Reminder)
            }
        }
    }

    /// This purpose's part in a delivery id.
    fn id_part(&self) -> String {
        match self {
            Purpose::Main => "main".into(),
            Purpose::Reminder(d) => format!("reminder-{}", d.as_secs()),
            Purpose::FollowUp => "followup".into(),
            Purpose::Nag(k) => format!("nag-{k}"),
            Purpose::Escalate(j) => format!("escalate-{j}"),
            Purpose::Heard(j) => format!("heard-{j}"),
            Purpose::AllClear => "allclear".into(),
            Purpose::Snooze(n) => format!("snooze-{n}"),
        }
    }
}

/// The stable id of one delivery: derived from item, scheduled instant, purpose, recipient
/// and channel, so a retry or a restart produces the same id (the webhook
/// Idempotency-Key). It is a hash, so it reveals nothing of the plan to a gateway.
///
/// `plan` is the plan's id when it runs as one of a directory of plans (`Plan::scope`):
/// it is hashed first, as `@PLAN` (an item id can't contain `@`, so no multi-plan id
/// equals a single-plan one), and two plans with the same item ids never share a delivery
/// id. With `None` (a plan run on its own) the id is what it always was, so existing
/// ledgers and gateways keep theirs.
pub(crate) fn delivery_id(
    plan: Option<&str>,
    item: &str,
    scheduled: DateTime<Utc>,
    purpose: Purpose,
    recipient: &str,
    channel: &str,
) -> String {
    let mut h = Sha256::new();
    if let Some(plan) = plan {
        h.update(format!("@{plan}").as_bytes());
        h.update([0u8]);
    }
    for part in [
        item,
        &scheduled.timestamp().to_string(),
        &purpose.id_part(),
        recipient,
        channel,
    ] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    let digest = h.finalize();
    format!("d_{}", &hex::encode(digest)[..24])
}

/// The id of the all-clear to `recipient` on `channel` after an answer to `item`'s firing.
pub(crate) fn all_clear_id(
    plan: Option<&str>,
    item: &str,
    scheduled: DateTime<Utc>,
    recipient: &str,
    channel: &str,
) -> String {
    delivery_id(plan, item, scheduled, Purpose::AllClear, recipient, channel)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> PlanDuration {
        PlanDuration::parse(text).unwrap()
    }

    #[test]
    fn delivery_ids_are_pinned() {
        // Ids in existing ledgers and at gateways (Idempotency-Key) must never change.
        // Computed independently: sha256 over item, unix seconds, purpose part, recipient
        // and channel, each followed by a NUL byte; the first 24 hex digits.
        let at: DateTime<Utc> = "2026-12-01T08:00:00Z".parse().unwrap();
        let cases = [
            (Purpose::Main, "self", "ntfy"),
            (Purpose::Reminder(d("1d")), "self", "sms"),
            (Purpose::Nag(2), "self", "ntfy"),
            (Purpose::Escalate(0), "sam", "sms"),
            (Purpose::AllClear, "sam", "sms"),
        ];
        let ids: Vec<String> = cases
            .iter()
            .map(|(p, r, c)| delivery_id(None, "mood", at, *p, r, c))
            .collect();
        assert_eq!(
            ids,
            [
                "d_a3311d18ff1ec5fbb0709f50",
                "d_908d4537aab2c975b8ebf5e6",
                "d_3008474a8d9be1be217f1915",
                "d_9b513baf6972ae775a3152bf",
                "d_f56779f489e4289b4df96b3a",
            ]
        );
        assert_eq!(all_clear_id(None, "mood", at, "sam", "sms"), ids[4]);
        // Room for a plan id: none is the single-plan id; two plans never share one.
        let (p, r, c) = cases[0];
        assert_eq!(delivery_id(None, "mood", at, p, r, c), ids[0]);
        let robin = delivery_id(Some("robin"), "mood", at, p, r, c);
        let sky = delivery_id(Some("sky"), "mood", at, p, r, c);
        assert!(robin != ids[0] && sky != ids[0] && robin != sky);
        // Every part counts.
        let main = &ids[0];
        assert_ne!(
            *main,
            delivery_id(None, "mood", at, Purpose::Main, "self", "sms")
        );
        assert_ne!(
            *main,
            delivery_id(None, "mood", at, Purpose::Main, "sam", "ntfy")
        );
        assert_ne!(
            *main,
            delivery_id(None, "meds", at, Purpose::Main, "self", "ntfy")
        );
    }

    #[test]
    fn purposes_round_trip_as_values() {
        let remind_before = [d("24h"), d("1d2h"), d("2w"), d("90m")];
        let mut all = vec![
            Purpose::Main,
            Purpose::FollowUp,
            Purpose::Nag(1),
            Purpose::Nag(3),
            Purpose::Escalate(0),
            Purpose::Escalate(2),
            Purpose::AllClear,
            Purpose::Snooze(1),
            Purpose::Snooze(4),
        ];
        all.extend(remind_before.iter().map(|r| Purpose::Reminder(*r)));
        for p in all {
            assert_eq!(
                Purpose::from_ledger_key(&p.ledger_key(), &remind_before),
                Some(p),
                "{}",
                p.ledger_key()
            );
        }
        // An item that no longer has the reminder: whole days come back as days.
        assert_eq!(
            Purpose::from_ledger_key("reminder:86400", &[]),
            Some(Purpose::Reminder(d("1d")))
        );
        for bad in ["nonsense", "nag:", "escalate:x", "reminder:", "reminder:-"] {
            assert_eq!(Purpose::from_ledger_key(bad, &[]), None, "{bad}");
        }
    }
}
