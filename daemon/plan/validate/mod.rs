//! Plan validation: walks the spanned TOML document and builds a `Plan`, collecting every
//! problem (with its byte span) instead of stopping at the first. Pure: no files, no network,
//! no clock. It must not compute firings.

use std::collections::{BTreeMap, BTreeSet};

// foldhash-seeded maps: validation hashes every item's id, cron and message.
use hashbrown::HashMap;
use std::ops::Range;
use std::sync::Arc;

use chrono::{NaiveDate, NaiveDateTime};
use chrono_tz::Tz;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::quiet_hours::QuietHours;
use super::schedule_spec::{self, DaySet, ScheduleSpec};
use super::template::Template;
use super::{
    CatchUp, Channel, ChannelLimits, Item, Kind, Loaded, Plan, PluginCatalog, Recipient, Relation,
    SELF_ID, Setting,
};
use crate::diagnostic::{Diagnostic, did_you_mean};
use crate::vocab::{PlanDuration, duration::DURATION_HINT};

mod answers;
mod away;
mod channels;
mod chunks;
mod items;
mod keys;
mod recipients;
mod schedules;
mod services;
pub(crate) use services::DEFAULT_RETENTION_DAYS;

use keys::*;

type Span = Range<usize>;
type Table<'a> = DeTable<'a>;

struct Validator<'s> {
    src: &'s str,
    diags: Vec<Diagnostic>,
    never_contact: BTreeSet<String>,
    has_server: bool,
    /// `[person] max_snooze`: the default for every item that expects an answer.
    max_snooze: PlanDuration,
    /// `[person] language`, a BCP 47 tag.
    language: String,
    /// `[person] id`: the plan's id (required in a directory of plans).
    plan_id: Option<String>,
    /// The plan's `invite = true`: contacts without `consent` are asked by `kithd invite`.
    invite_default: bool,
    /// Parsed cron expressions, shared between items that use the same one.
    crons: HashMap<String, Arc<croner::Cron>>,
    /// Parsed item messages, shared between items with the same text.
    messages: HashMap<String, Arc<Template>>,
    /// Recipient lists, shared between items with the same one.
    recipient_lists: HashMap<Vec<String>, Arc<[String]>>,
    /// Big plans: the items still to read, one table at a time (see `chunks`).
    segments: Option<Vec<chunks::Segment>>,
    /// An item the big-plan path could not read on its own: read the whole document.
    chunk_failed: bool,
}

pub(super) fn validate(src: &str, catalog: &dyn PluginCatalog) -> Result<Loaded, Vec<Diagnostic>> {
    validate_with(src, catalog, chunks::CHUNK_MIN)
}

/// As `validate`; plans of `chunk_min` bytes or more are read one item at a time.
fn validate_with(
    src: &str,
    catalog: &dyn PluginCatalog,
    chunk_min: usize,
) -> Result<Loaded, Vec<Diagnostic>> {
    if src.len() >= chunk_min
        && let Some(result) = chunks::validate(src, catalog)
    {
        return result;
    }
    let mut v = Validator::new(src);
    let (doc, syntax) = DeTable::parse_recoverable(src);
    if !syntax.is_empty() {
        // A syntax error makes later structure unreliable: report the syntax errors only,
        // one per line (the parser's recovery produces follow-on noise on the same line).
        let mut seen_lines = BTreeSet::new();
        for e in syntax {
            let span = e.span().unwrap_or(0..0);
            let line = src[..span.start.min(src.len())].matches('\n').count();
            if seen_lines.insert(line) {
                v.diags.push(
                    Diagnostic::error(span, format!("invalid TOML: {}", e.message().trim_end()))
                        .with_hint("see config/README.md for the plan syntax"),
                );
            }
        }
        return Err(v.finish_errors());
    }
    let mut doc = doc.into_inner();
    let plan = v.plan(&mut doc, catalog);
    v.finish(plan)
}

impl<'s> Validator<'s> {
    fn new(src: &'s str) -> Self {
        Validator {
            src,
            diags: Vec::new(),
            never_contact: BTreeSet::new(),
            has_server: false,
            max_snooze: PlanDuration::parse(DEFAULT_MAX_SNOOZE).expect("a valid default"),
            language: crate::vocab::DEFAULT_LANGUAGE.to_string(),
            plan_id: None,
            invite_default: false,
            crons: HashMap::new(),
            messages: HashMap::new(),
            recipient_lists: HashMap::new(),
            segments: None,
            chunk_failed: false,
        }
    }

    fn finish(mut self, plan: Option<Plan>) -> Result<Loaded, Vec<Diagnostic>> {
        let has_error = self.diags.iter().any(Diagnostic::is_error);
        match plan {
            Some(plan) if !has_error => {
                self.sort();
                Ok(Loaded {
                    plan,
                    warnings: self.diags,
                })
            }
            _ => Err(self.finish_errors()),
        }
    }

    fn sort(&mut self) {
        self.diags.sort_by(|a, b| {
            (a.span.start, a.severity, &a.message).cmp(&(b.span.start, b.severity, &b.message))
        });
        self.diags.dedup();
    }

    fn finish_errors(mut self) -> Vec<Diagnostic> {
        self.sort();
        self.diags
    }

    fn error(&mut self, span: Span, message: impl Into<String>, hint: Option<String>) {
        let mut d = Diagnostic::error(span, message);
        d.hint = hint;
        self.diags.push(d);
    }

    fn warn(&mut self, span: Span, message: impl Into<String>, hint: Option<String>) {
        let mut d = Diagnostic::warning(span, message);
        d.hint = hint;
        self.diags.push(d);
    }

    /// The span of the text inside a string value's quotes, when it maps one-to-one onto the
    /// source (no escapes); otherwise `None`.
    fn string_body(&self, value_span: &Span) -> Option<usize> {
        let raw = self.src.get(value_span.clone())?;
        let (open, basic) = if raw.starts_with("\"\"\"") {
            (3, true)
        } else if raw.starts_with("'''") {
            (3, false)
        } else if raw.starts_with('"') {
            (1, true)
        } else if raw.starts_with('\'') {
            (1, false)
        } else {
            return None;
        };
        if basic && raw.contains('\\') {
            return None;
        }
        Some(value_span.start + open)
    }

    /// A span inside a string value, or the whole value when it can't be mapped exactly.
    fn inner_span(&self, value_span: &Span, start: usize, end: usize) -> Span {
        match self.string_body(value_span) {
            Some(base) => base + start..base + end,
            None => value_span.clone(),
        }
    }

    fn check_keys(
        &mut self,
        table: &Table,
        section: &str,
        allowed: &[&str],
        extra: &dyn Fn(&str) -> bool,
    ) {
        for (k, _) in table.iter() {
            let name = k.get_ref().as_ref();
            if allowed.contains(&name) || extra(name) {
                continue;
            }
            let hint = match did_you_mean(name, allowed.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("allowed keys here: {}", list(allowed)),
            };
            self.error(
                k.span(),
                format!("unknown key `{name}` in {section}"),
                Some(hint),
            );
        }
    }

    fn get<'t, 'a>(
        &self,
        table: &'t Table<'a>,
        key: &str,
    ) -> Option<(&'t Spanned<DeValue<'a>>, Span)> {
        table
            .iter()
            .find(|(k, _)| k.get_ref().as_ref() == key)
            .map(|(_, v)| (v, v.span()))
    }

    fn key_span(&self, table: &Table, key: &str) -> Option<Span> {
        table
            .iter()
            .find(|(k, _)| k.get_ref().as_ref() == key)
            .map(|(k, _)| k.span())
    }

    fn type_error(&mut self, span: Span, key: &str, expected: &str, found: &DeValue) {
        self.error(
            span,
            format!("`{key}` must be {expected}, found {}", found.type_str()),
            None,
        );
    }

    fn string(&mut self, table: &Table, key: &str) -> Option<(String, Span)> {
        let (v, span) = self.get(table, key)?;
        match v.get_ref() {
            DeValue::String(s) => Some((s.to_string(), span)),
            other => {
                self.type_error(span, key, "a string", other);
                None
            }
        }
    }

    fn required_string(
        &mut self,
        table: &Table,
        key: &str,
        section: &str,
        at: &Span,
    ) -> Option<(String, Span)> {
        if self.get(table, key).is_none() {
            self.error(at.clone(), format!("missing `{key}` in {section}"), None);
            return None;
        }
        self.string(table, key)
    }

    fn boolean(&mut self, table: &Table, key: &str) -> Option<bool> {
        let (v, span) = self.get(table, key)?;
        match v.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            other => {
                self.type_error(span, key, "`true` or `false`", other);
                None
            }
        }
    }

    /// A string or a list of strings.
    fn strings(&mut self, table: &Table, key: &str) -> Option<Vec<(String, Span)>> {
        let (v, span) = self.get(table, key)?;
        match v.get_ref() {
            DeValue::String(s) => Some(vec![(s.to_string(), span)]),
            DeValue::Array(a) => {
                let mut out = Vec::new();
                for e in a.iter() {
                    match e.get_ref() {
                        DeValue::String(s) => out.push((s.to_string(), e.span())),
                        other => self.type_error(e.span(), key, "a list of strings", other),
                    }
                }
                Some(out)
            }
            other => {
                self.type_error(span, key, "a string or a list of strings", other);
                None
            }
        }
    }

    /// A string or a TOML date/datetime value, as text.
    fn textual(&mut self, table: &Table, key: &str) -> Option<(String, Span)> {
        let (v, span) = self.get(table, key)?;
        match v.get_ref() {
            DeValue::String(s) => Some((s.to_string(), span)),
            DeValue::Datetime(d) => Some((d.to_string(), span)),
            other => {
                self.type_error(span, key, "a date", other);
                None
            }
        }
    }

    fn timezone(&mut self, table: &Table) -> Option<Tz> {
        let (name, span) = self.string(table, "timezone")?;
        match name.parse::<Tz>() {
            Ok(tz) => Some(tz),
            Err(_) => {
                let names = chrono_tz::TZ_VARIANTS.iter().map(|t| t.name());
                let hint = match did_you_mean(&name, names) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => {
                        "use an IANA time zone name such as `Europe/Berlin` or `America/New_York`"
                            .into()
                    }
                };
                self.error(span, format!("unknown time zone `{name}`"), Some(hint));
                None
            }
        }
    }

    fn duration(&mut self, text: &str, span: &Span, key: &str) -> Option<PlanDuration> {
        match PlanDuration::parse(text) {
            Ok(d) if d.as_secs() > 0 => Some(d),
            Ok(_) => {
                self.error(
                    span.clone(),
                    format!("`{key}` must be longer than zero"),
                    None,
                );
                None
            }
            Err(e) => {
                let at = self.inner_span(span, e.offset, e.offset + 1);
                self.error(
                    at,
                    format!("bad duration in `{key}`: {}", e.message),
                    Some(DURATION_HINT.into()),
                );
                None
            }
        }
    }

    fn template(
        &mut self,
        text: &str,
        span: &Span,
        key: &str,
        allowed: &[&str],
    ) -> Option<Template> {
        match Template::parse(text) {
            Ok(t) => {
                let mut ok = true;
                for (name, offset) in t.fields() {
                    if allowed.contains(&name) {
                        continue;
                    }
                    ok = false;
                    let at = self.inner_span(span, offset, offset + name.len() + 2);
                    let hint = match did_you_mean(name, allowed.iter().copied()) {
                        Some(s) => format!("did you mean `{{{s}}}`?"),
                        None => format!(
                            "placeholders here: {}",
                            allowed
                                .iter()
                                .map(|a| format!("`{{{a}}}`"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    };
                    self.error(
                        at,
                        format!("unknown placeholder `{{{name}}}` in `{key}`"),
                        Some(hint),
                    );
                }
                ok.then_some(t)
            }
            Err(e) => {
                let at = self.inner_span(span, e.offset, e.offset + 1);
                self.error(
                    at,
                    format!("{} (`{key}`)", e.message),
                    Some("write `{{` or `}}` for a literal brace".into()),
                );
                None
            }
        }
    }

    /// `quiet_hours`: a window, or `"none"` (no quiet hours, when the default would give some).
    fn quiet_hours(&mut self, table: &Table) -> Option<QuietHours> {
        let (text, span) = self.string(table, "quiet_hours")?;
        if text.trim() == "none" {
            return None;
        }
        let q = QuietHours::parse(&text);
        if q.is_none() {
            self.error(
                span,
                format!("bad `quiet_hours` value `{text}`"),
                Some("write a daily window as `\"HH:MM-HH:MM\"`, e.g. `\"22:00-07:30\"`, or `\"none\"`".into()),
            );
        }
        q
    }

    fn plan(&mut self, doc: &mut Table, catalog: &dyn PluginCatalog) -> Option<Plan> {
        self.check_keys(doc, "the plan", TOP_KEYS, &|_| false);
        if let Some((v, span)) = self.get(doc, "version") {
            let ok = v
                .get_ref()
                .as_integer()
                .map(|i| i.as_str() == "1")
                .unwrap_or(false);
            if !ok {
                self.error(
                    span,
                    "unsupported plan `version`",
                    Some("this kithd reads plan version 1".into()),
                );
            }
        }
        let channels = self.channels(doc, catalog);
        let person = self.person(doc, &channels);
        let person_tz = person.as_ref().map(|p| p.timezone).unwrap_or(Tz::UTC);
        self.invite_default = self.boolean(doc, "invite").unwrap_or(false);
        let mut contacts = self.contacts(doc, &channels, person_tz);
        // A contact without `quiet_hours` keeps the person's: the same nightly window, in
        // the contact's own zone (`quiet_hours = "none"` opts out).
        if let Some(q) = person.as_ref().and_then(|p| p.quiet_hours) {
            let own = self.contacts_with_own_quiet_hours(doc);
            for c in contacts.values_mut().filter(|c| !own.contains(&c.id)) {
                c.quiet_hours = Some(q);
            }
        }
        let server = self.server(doc);
        self.has_server = server.is_some();
        let heartbeat = self.heartbeat(doc);
        let never_contact = self.never_contact(doc, &contacts);
        self.never_contact = never_contact.iter().cloned().collect();
        let items = self.items(doc, person.as_ref(), &contacts, person_tz);
        let away = self.away(doc, person_tz, &items);
        let mut plan = Plan::new(
            person?,
            contacts,
            channels,
            items,
            never_contact,
            server,
            heartbeat,
        );
        plan.away = away;
        plan.language = std::mem::take(&mut self.language);
        plan.id = self.plan_id.take();
        plan.crisis_text = self.crisis_text(doc);
        plan.retention = self.retention(doc);
        plan.invite_message = self.invite_message(doc);
        Some(plan)
    }
}

/// The recipient address fields the plan's channels deliver to.
fn address_fields(channels: &BTreeMap<String, Channel>) -> BTreeSet<String> {
    channels
        .values()
        .filter_map(|c| c.address.clone())
        .collect()
}

fn is_free_address(key: &str, v: &DeValue) -> bool {
    matches!(v, DeValue::String(_)) && valid_id(key) && !key.contains('.')
}

fn list(items: &[&str]) -> String {
    items
        .iter()
        .map(|s| format!("`{s}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn list_owned<'a>(items: impl Iterator<Item = &'a String>) -> String {
    items
        .map(|s| format!("`{s}`"))
        .collect::<Vec<_>>()
        .join(", ")
}
