//! The keys each table of a plan may have, the placeholders each kind of message may use,
//! and what makes an id or a key name acceptable. Data, not checks.

use super::*;

pub(super) const TOP_KEYS: &[&str] = &[
    "version",
    "person",
    "contacts",
    "channels",
    "checkin",
    "medication",
    "followup",
    "appointment",
    "never_contact",
    "away",
    "server",
    "heartbeat",
    "crisis_text",
    "history_retention",
    "invite",
    "invite_message",
];
pub(super) const SERVER_KEYS: &[&str] = &["listen", "public_url", "link_ttl"];
pub(super) const HEARTBEAT_KEYS: &[&str] = &["url", "every"];
/// Channel settings the host itself reads (besides `plugin` and `address`).
pub(crate) const HOST_CHANNEL_KEYS: &[&str] = &[
    "timeout",
    "max_attempts",
    "give_up_after",
    "retry_base",
    "concurrency",
    "tls_sha256",
];
pub(super) const ANSWER_KEYS: &[&str] = &[
    "max_snooze",
    "nag",
    "escalate",
    "escalate_every",
    "escalate_message",
    "all_clear_message",
    "alert_on",
    "low_message",
];
/// Placeholders an escalation or all-clear message may use: nothing about health.
pub(super) const ESCALATION_FIELDS: &[&str] = &["person", "recipient", "time", "date"];
/// Placeholders an invitation may use.
pub(super) const INVITE_FIELDS: &[&str] = &["person", "recipient"];
pub(super) const PERSON_KEYS: &[&str] = &[
    "id",
    "name",
    "timezone",
    "quiet_hours",
    "email",
    "phone",
    "reach",
    "max_snooze",
    "language",
];
/// How long a check-in or dose may be snoozed in all, unless the plan says.
pub(super) const DEFAULT_MAX_SNOOZE: &str = "2h";
pub(super) const CONTACT_KEYS: &[&str] = &[
    "name",
    "relation",
    "timezone",
    "quiet_hours",
    "email",
    "phone",
    "reach",
    "consent",
    "invite",
];
pub(super) const ITEM_KEYS: &[&str] = &[
    "id",
    "message",
    "to",
    "timezone",
    "urgent",
    "respect_quiet_hours",
    "at",
    "days",
    "cron",
    "every",
    "start",
    "when",
    "catch_up",
    "except",
];
/// The longest `title` an item may have.
pub(super) const MAX_TITLE: usize = 120;
pub(super) const SCHEDULE_KEYS: &[&str] = &["at", "cron", "every", "when"];
pub(super) const COMMON_FIELDS: &[&str] = &["person", "recipient", "item", "kind", "time", "date"];

/// Keys of one kind of item besides `ITEM_KEYS` (check-ins and doses also take
/// `ANSWER_KEYS`, see `answer_keys`).
pub(super) fn kind_keys(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Checkin => &["expect_reply_within", "title", "show_on_page"],
        Kind::Medication => &["name", "dose", "confirm_within", "title", "show_on_page"],
        Kind::Followup => &["with"],
        Kind::Appointment => &[
            "remind_before",
            "followup_after",
            "followup_message",
            "title",
            "location",
            "with",
        ],
    }
}

/// The answer-policy keys this kind of item takes.
pub(super) fn answer_keys(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Checkin | Kind::Medication => ANSWER_KEYS,
        Kind::Followup | Kind::Appointment => &[],
    }
}

/// Placeholders a message of this kind may use.
pub(crate) fn kind_fields(kind: Kind) -> Vec<&'static str> {
    let extra: &[&str] = match kind {
        Kind::Checkin => &["answer_url"],
        Kind::Medication => &["name", "dose", "answer_url"],
        Kind::Followup => &["with", "contact", "relation"],
        Kind::Appointment => &["title", "when", "in", "location", "with"],
    };
    COMMON_FIELDS.iter().chain(extra).copied().collect()
}

pub(super) fn looks_secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "token",
        "password",
        "secret",
        "api_key",
        "apikey",
        "auth",
        "passwd",
        "private_key",
    ]
    .iter()
    .any(|w| k.contains(w))
        || k.ends_with("_key")
}

pub(super) fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
}
