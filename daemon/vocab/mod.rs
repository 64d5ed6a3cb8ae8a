//! The words every layer shares: the kinds of item, why an item fires (`Purpose`) and how
//! the ledger and delivery ids spell it, the steps taken when an answer doesn't come,
//! durations as a plan writes them, and what validation may ask about plugins. Defined once,
//! below `plan`, `schedule`, `store`, `plugin`, `dispatch` and `answer`; it depends on
//! nothing else in the crate and must not decide anything.

mod alert_on;
mod catalog;
pub(crate) mod duration;
mod language;
mod pause;
mod purpose;

use std::fmt;
use std::str::FromStr;

pub(crate) use alert_on::AlertOn;
pub use catalog::{PluginCatalog, PluginInfo};
pub use duration::PlanDuration;
pub(crate) use language::{
    DEFAULT_LANGUAGE, REPLY_LANGUAGES, ReplyWords, english, is_language_tag, reply_words,
};
pub(crate) use pause::{Pause, paused};
/// The recipient id that names the person themself.
pub const SELF_ID: &str = "self";

pub(crate) use purpose::{ALL_CLEAR_KEY, ESCALATE_KEY_PREFIX, MAIN_KEY, all_clear_id, delivery_id};

/// The four kinds of reminder item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Checkin,
    Medication,
    Followup,
    Appointment,
}

impl Kind {
    pub const ALL: [Kind; 4] = [
        Kind::Checkin,
        Kind::Medication,
        Kind::Followup,
        Kind::Appointment,
    ];

    /// The plan's table name for this kind (`[[checkin]]`), also used in output.
    pub fn as_str(&self) -> &'static str {
        match self {
            Kind::Checkin => "checkin",
            Kind::Medication => "medication",
            Kind::Followup => "followup",
            Kind::Appointment => "appointment",
        }
    }

    /// Whether items of this kind wait for the end of quiet hours unless the plan says.
    pub fn respects_quiet_hours_by_default(&self) -> bool {
        matches!(self, Kind::Followup | Kind::Appointment)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl serde::Serialize for Kind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Kind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl FromStr for Kind {
    type Err = UnknownWord;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownWord::new("kind", s))
    }
}

/// What a step does when its time comes; stored as `nag` or `escalate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum StepAction {
    /// Nudge the person again.
    Nag,
    /// Alert a contact who agreed to be told.
    Escalate,
}

impl StepAction {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            StepAction::Nag => "nag",
            StepAction::Escalate => "escalate",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "nag" => Some(StepAction::Nag),
            "escalate" => Some(StepAction::Escalate),
            _ => None,
        }
    }
}

impl fmt::Display for StepAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for StepAction {
    type Err = UnknownWord;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s).ok_or_else(|| UnknownWord::new("step action", s))
    }
}

/// Why an item fires at this instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Purpose {
    /// The item's own schedule.
    Main,
    /// An appointment's advance reminder, this long before it.
    Reminder(PlanDuration),
    /// An appointment's "how did it go?" nudge.
    FollowUp,
    /// A re-nudge of an unanswered check-in or dose (1-based).
    Nag(u32),
    /// An alert to the escalation contact at this step (0-based).
    Escalate(u32),
    /// An alert at this step (0-based) after an answer the person asked their contacts to
    /// hear about (`alert_on`: a low mood, a skipped dose).
    Heard(u32),
    /// "All clear" to a contact who was alerted, after a late answer.
    AllClear,
    /// The person snoozed the check-in or dose: it is sent again (1-based, per firing).
    Snooze(u32),
}

impl Purpose {
    pub fn as_str(&self) -> &'static str {
        match self {
            Purpose::Main => "main",
            Purpose::Reminder(_) => "reminder",
            Purpose::FollowUp => "followup",
            Purpose::Nag(_) => "nag",
            Purpose::Escalate(_) => "escalate",
            Purpose::Heard(_) => "heard",
            Purpose::AllClear => "allclear",
            Purpose::Snooze(_) => "snooze",
        }
    }
}

/// A stored word that is not one of the vocabulary's (a ledger from a newer kithd, or a
/// damaged one).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{word}`")]
pub struct UnknownWord {
    pub what: &'static str,
    pub word: String,
}

impl UnknownWord {
    fn new(what: &'static str, word: &str) -> Self {
        Self {
            what,
            word: word.chars().take(40).collect(),
        }
    }
}

/// Whether `s` can be a plan id (`[person] id`, `--plan`): letters, digits, `-` and `_`,
/// at most 64, not starting with `-`. It names a directory under the state directory, so
/// it can never be `..` or hold a `/`.
pub(crate) fn is_plan_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && !s.starts_with('-')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip_as_values() {
        for k in Kind::ALL {
            assert_eq!(k.to_string().parse::<Kind>(), Ok(k));
        }
        for a in [StepAction::Nag, StepAction::Escalate] {
            assert_eq!(a.to_string().parse::<StepAction>(), Ok(a));
        }
        assert!("Checkin".parse::<Kind>().is_err());
        // Columns in `history`, `status` and `report` line up.
        assert_eq!(format!("{:<11}|", Kind::Checkin), "checkin    |");
        assert!("".parse::<StepAction>().is_err());
    }
}
