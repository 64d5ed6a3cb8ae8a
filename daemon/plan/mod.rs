//! The support plan: the validated, typed form of `plan.toml`. Owns the plan's data model
//! and its loading (`load` = parse + validate, pure: no files, network or clock). It must not
//! compute firings, talk to plugins or perform I/O.

mod id_index;
pub mod quiet_hours;
pub mod schedule_spec;
pub mod stored;
pub mod template;
#[cfg(test)]
pub(crate) mod testing;
mod validate;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::NaiveDate;
use chrono_tz::Tz;

pub use id_index::IdIndex;
pub use quiet_hours::QuietHours;
pub use schedule_spec::{DaySet, ScheduleSpec};
pub use template::Template;

pub use crate::vocab::{Kind, PlanDuration, PluginCatalog, PluginInfo, SELF_ID};

use crate::diagnostic::{Diagnostic, SourceFile};

/// Plans of this size or more are large: read one item table at a time, and kept as a
/// validated copy between starts (`plan_cache`).
pub const LARGE_PLAN_BYTES: usize = 1 << 20;

/// A validated plan. Serialized without its items (`stored` writes those itself, sharing
/// what they share); a deserialized plan has none until `set_items`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Plan {
    pub person: Recipient,
    pub contacts: BTreeMap<String, Recipient>,
    pub channels: BTreeMap<String, Channel>,
    /// Contacts kithd must never message, whatever else the plan says.
    pub never_contact: Vec<String>,
    /// `[[away]]`: windows in which items don't fire.
    pub(crate) away: Vec<crate::vocab::Pause>,
    /// `[person] language`: a BCP 47 tag, `"en"` unless the plan says.
    pub language: String,
    /// `[person] id`: required when the plan is one of a directory of plans.
    pub id: Option<String>,
    /// The plan's id as its ledger keys it: set only when the plan runs as one of a
    /// directory of plans (delivery ids then include it). A plan run on its own keeps the
    /// ids it always had, with or without `[person] id`.
    pub scope: Option<String>,
    /// `crisis_text`: the person's own words and numbers for a hard moment.
    pub crisis_text: Option<String>,
    /// `history_retention`: answers and deliveries older than this are pruned daily.
    pub retention: crate::vocab::PlanDuration,
    /// `invite_message`: the person's own words opening an invitation.
    pub invite_message: Option<Template>,
    /// The answer server, when the plan has `[server]`.
    pub server: Option<ServerConfig>,
    /// Pings to an outside monitor, when the plan has `[heartbeat]`.
    pub heartbeat: Option<Heartbeat>,
    /// Shared so that the scheduler and dispatcher hold items without copying them.
    #[serde(skip)]
    pub items: Vec<Arc<Item>>,
    /// Item id → position in `items`: `item()` is called per firing and per delivery.
    #[serde(skip)]
    index: IdIndex,
}

/// The person, or one of their contacts.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Recipient {
    /// `self` for the person, the contact id otherwise.
    pub id: String,
    pub name: String,
    pub timezone: Tz,
    pub quiet_hours: Option<QuietHours>,
    /// Address fields (`email`, `phone`, `ntfy_topic`, …).
    pub addresses: BTreeMap<String, String>,
    /// Channel ids in order of preference.
    pub reach: Vec<String>,
    /// Contacts only.
    pub relation: Option<Relation>,
    /// Contacts only: the date they agreed to receive messages (in person, recorded here).
    pub consent: Option<NaiveDate>,
    /// Contacts only: asked by `kithd invite` instead (`invite = true`): alerts go to them
    /// only once their `YES` is in the ledger.
    pub invite: bool,
    /// Where the recipient's table starts, for diagnostics found after validation.
    pub span: std::ops::Range<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Relation {
    Family,
    Friend,
    Peer,
    Professional,
    Community,
}

impl Relation {
    pub const NAMES: [&'static str; 5] = ["family", "friend", "peer", "professional", "community"];

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "family" => Self::Family,
            "friend" => Self::Friend,
            "peer" => Self::Peer,
            "professional" => Self::Professional,
            "community" => Self::Community,
            _ => return None,
        })
    }

    pub fn as_str(&self) -> &'static str {
        Self::NAMES[*self as usize]
    }
}

/// A notification channel: a plugin plus its settings.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Channel {
    pub id: String,
    pub plugin: String,
    /// The recipient address field this channel delivers to, if any.
    pub address: Option<String>,
    pub settings: BTreeMap<String, Setting>,
    /// The host's own settings, typed.
    pub limits: ChannelLimits,
    /// Where the channel's `plugin = …` value is, for diagnostics found after validation.
    pub span: std::ops::Range<usize>,
    /// Where each setting's value is.
    pub setting_spans: BTreeMap<String, std::ops::Range<usize>>,
}

/// The settings the host reads from every channel (the plugin's own are in `settings`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChannelLimits {
    /// The whole request, connect included.
    pub timeout: Option<PlanDuration>,
    pub max_attempts: Option<u32>,
    /// After this long from the scheduled time the channel stops retrying.
    pub give_up_after: Option<PlanDuration>,
    pub retry_base: Option<PlanDuration>,
    /// Deliveries in flight at once.
    pub concurrency: Option<u32>,
}

impl Channel {
    /// Every secret name the channel's settings reference, with the setting's key.
    pub fn secrets(&self) -> Vec<(&str, &str)> {
        fn walk<'a>(key: &'a str, s: &'a Setting, out: &mut Vec<(&'a str, &'a str)>) {
            match s {
                Setting::Secret(name) => out.push((key, name)),
                Setting::List(l) => l.iter().for_each(|v| walk(key, v, out)),
                Setting::Table(t) => t.values().for_each(|v| walk(key, v, out)),
                _ => {}
            }
        }
        let mut out = Vec::new();
        for (k, v) in &self.settings {
            walk(k, v, &mut out);
        }
        out
    }
}

/// A channel setting. Secrets are references, resolved only when a request is performed.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Setting {
    String(String),
    Integer(i64),
    Float(f64),
    Bool(bool),
    Secret(String),
    List(Vec<Setting>),
    Table(BTreeMap<String, Setting>),
}

/// What happens to a firing missed while kithd was not running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CatchUp {
    /// Deliver it late, however late.
    Always,
    /// Record it as missed.
    Skip,
    /// Deliver it if it is less than this late, otherwise record it as missed.
    Within(PlanDuration),
}

impl CatchUp {
    /// Defaults per kind: a dose 30 minutes late is still useful, a morning check-in
    /// nine hours late is not.
    pub fn default_for(kind: Kind) -> Self {
        let d = |s: &str| {
            CatchUp::Within(PlanDuration::parse(s).unwrap_or(PlanDuration::from_secs(3600)))
        };
        match kind {
            Kind::Checkin => d("1h"),
            Kind::Medication => d("2h"),
            Kind::Followup => d("1d"),
            Kind::Appointment => d("3h"),
        }
    }

    /// Whether a firing this late should still be delivered.
    pub fn deliver_when_late_by(&self, late: chrono::Duration) -> bool {
        match self {
            CatchUp::Always => true,
            CatchUp::Skip => false,
            CatchUp::Within(d) => late < d.to_chrono(),
        }
    }
}

/// The optional HTTP server for answers (`[server]`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ServerConfig {
    /// Where `[server]` is, for diagnostics about its secrets.
    pub span: std::ops::Range<usize>,
    pub listen: std::net::SocketAddr,
    /// Where people open answer links (no trailing slash).
    pub public_url: String,
    /// How long an answer link stays valid.
    pub link_ttl: PlanDuration,
}

/// `[heartbeat]`: kithd pings `url` (Healthchecks.io protocol) at start and every `every`,
/// `url/fail` while degraded, so that an outside monitor notices when kithd is down.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Heartbeat {
    pub url: String,
    pub every: PlanDuration,
}

/// How a check-in or dose is answered and what happens when it isn't.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct AnswerPolicy {
    /// `expect_reply_within` / `confirm_within`.
    pub within: PlanDuration,
    /// How long snoozes may put off one firing in all (`max_snooze`, default 2 h).
    pub max_snooze: PlanDuration,
    /// Re-nudge the person every interval, this many times.
    pub nag: Option<(PlanDuration, u32)>,
    /// Contacts to alert, in order, once `within` has passed without an answer.
    pub escalate: Vec<String>,
    /// Delay between escalation steps.
    pub escalate_every: PlanDuration,
    pub escalate_message: Template,
    pub all_clear_message: Template,
    /// `alert_on`: answers the person wants their contacts told about (a low mood, a
    /// skipped dose): such an answer escalates at once instead of cancelling.
    pub(crate) alert_on: Option<crate::vocab::AlertOn>,
    /// What the contacts are told after such an answer (`low_message`).
    pub heard_message: Template,
}

/// One reminder item.
#[derive(Debug, Clone)]
pub struct Item {
    pub id: String,
    /// Where the item's `id` is, for diagnostics found after validation.
    pub span: std::ops::Range<usize>,
    pub kind: Kind,
    pub schedule: ScheduleSpec,
    pub timezone: Tz,
    /// Shared between items with the same text (a large plan repeats its messages).
    pub message: Arc<Template>,
    /// Recipient ids (`self` or contact ids).
    /// Shared between items with the same list (most are just `self`).
    pub to: Arc<[String]>,
    pub urgent: bool,
    pub respect_quiet_hours: bool,
    /// `show_on_page`: the answer page may show the item's message (or a dose's name);
    /// otherwise it shows only its `title`, or "Your 21:00 dose".
    pub show_on_page: bool,
    /// What to do with firings missed while kithd was down.
    pub catch_up: CatchUp,
    /// Check-ins and medication: answers, nags and escalation.
    pub answer: Option<Box<AnswerPolicy>>,
    /// Kind-specific text fields available to templates (`name`, `dose`, `title`, …).
    pub fields: BTreeMap<String, String>,
    /// Appointment and followup settings, out of line: most items have none, and a large
    /// plan's size is mostly its items.
    pub extra: Option<Box<ItemExtra>>,
}

/// Settings only appointments and followups have.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct ItemExtra {
    /// Followups (required) and appointments (optional): the contact the item is about.
    pub with: Option<String>,
    /// Appointments: advance reminders.
    pub remind_before: Vec<PlanDuration>,
    /// Appointments: a "how did it go?" nudge this long after the appointment.
    pub followup_after: Option<PlanDuration>,
    pub followup_message: Option<Template>,
    /// Local dates the item skips (sorted).
    pub except: Vec<chrono::NaiveDate>,
}

impl Item {
    /// Local dates this item skips, sorted.
    pub fn except(&self) -> &[chrono::NaiveDate] {
        self.extra.as_ref().map_or(&[], |e| e.except.as_slice())
    }

    /// Appointments: advance reminders (none for other kinds).
    pub fn remind_before(&self) -> &[PlanDuration] {
        self.extra
            .as_ref()
            .map_or(&[], |e| e.remind_before.as_slice())
    }

    /// Appointments: how long after it the "how did it go?" nudge comes.
    pub fn followup_after(&self) -> Option<PlanDuration> {
        self.extra.as_ref().and_then(|e| e.followup_after)
    }

    pub fn followup_message(&self) -> Option<&Template> {
        self.extra
            .as_ref()
            .and_then(|e| e.followup_message.as_ref())
    }

    /// The contact a followup or appointment is about.
    pub fn with(&self) -> Option<&str> {
        self.extra.as_ref().and_then(|e| e.with.as_deref())
    }
}

impl Plan {
    /// The person (`self`) or a contact.
    pub fn recipient(&self, id: &str) -> Option<&Recipient> {
        if id == SELF_ID {
            Some(&self.person)
        } else {
            self.contacts.get(id)
        }
    }

    pub fn item(&self, id: &str) -> Option<&Item> {
        let items = &self.items;
        self.index
            .get(id, |p| items[p as usize].id.as_str())
            .map(|p| items[p as usize].as_ref())
    }

    #[allow(clippy::too_many_arguments)]
    pub fn new(
        person: Recipient,
        contacts: BTreeMap<String, Recipient>,
        channels: BTreeMap<String, Channel>,
        items: Vec<Arc<Item>>,
        never_contact: Vec<String>,
        server: Option<ServerConfig>,
        heartbeat: Option<Heartbeat>,
    ) -> Self {
        let mut plan = Self {
            person,
            contacts,
            channels,
            never_contact,
            away: Vec::new(),
            language: crate::vocab::DEFAULT_LANGUAGE.to_string(),
            id: None,
            scope: None,
            crisis_text: None,
            invite_message: None,
            retention: crate::vocab::PlanDuration::from_secs(
                validate::DEFAULT_RETENTION_DAYS * 86_400,
            ),
            server,
            heartbeat,
            items: Vec::new(),
            index: IdIndex::default(),
        };
        plan.set_items(items);
        plan
    }

    /// Replaces the items, and their index.
    pub(crate) fn set_items(&mut self, items: Vec<Arc<Item>>) {
        let mut index = IdIndex::with_capacity(items.len());
        for (p, item) in items.iter().enumerate() {
            index.insert(&item.id, p as u32, |q| items[q as usize].id.as_str());
        }
        self.items = items;
        self.index = index;
    }
}

/// A plan that loaded, with any warnings.
#[derive(Debug)]
pub struct Loaded {
    pub plan: Plan,
    pub warnings: Vec<Diagnostic>,
}

/// Parses and validates a plan. On failure returns every problem found (errors and
/// warnings), in source order.
pub fn load(source: &SourceFile, catalog: &dyn PluginCatalog) -> Result<Loaded, Vec<Diagnostic>> {
    validate::validate(&source.text, catalog)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_server_listens_on_loopback_unless_told_otherwise() {
        let text = "[person]\nname = \"A\"\ntimezone = \"UTC\"\nreach = [\"c\"]\n[server]\npublic_url = \"https://k.example/\"\n[channels.c]\nplugin = \"console\"\n";
        let plan = testing::test_plan(text);
        let server = plan.server.unwrap();
        assert!(server.listen.ip().is_loopback());
        assert_eq!(server.listen.port(), 8750);
        assert_eq!(server.public_url, "https://k.example");
        assert_eq!(server.link_ttl.as_secs(), 86_400);
    }
}
